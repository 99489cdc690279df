-- Serving: recommend, predict and similar_items on the fixture model.
SET extra_float_digits = 0;
SET client_min_messages = warning;
CALL train('fixture', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
RESET client_min_messages;

-- User 1 (likes items 1-2, dislikes 4-5) has only items 3 and 6 left: the
-- item their group likes comes first.
SELECT item_id, round(score::numeric, 2) AS score FROM recommend(1, 10, 'fixture');
SELECT item_id FROM recommend(5, 10, 'fixture');

-- Scores are predictions: mu + b_u + b_i + p_u . q_i, computed here from
-- the stored factors in plain SQL.
SELECT bool_and(abs(r.score - p.pred) < 1e-4) AS scores_match, count(*)
FROM generate_series(1, 8) AS u(id)
CROSS JOIN LATERAL recommend(u.id, 10, 'fixture', exclude_seen => false) r
JOIN LATERAL (
    SELECT m.global_mean + uf.bias + itf.bias +
           (SELECT sum(a * b) FROM unnest(uf.factors, itf.factors) AS t(a, b)) AS pred
    FROM recsys.models m
    JOIN recsys.user_factors uf ON uf.model_id = m.model_id AND uf.user_id = u.id
    JOIN recsys.item_factors itf ON itf.model_id = m.model_id AND itf.item_id = r.item_id
    WHERE m.name = 'fixture') p ON true;

-- Best first, ties by item id; n caps the rows; exclude_seen => false
-- ranks every item; predict agrees with recommend.
SELECT item_id FROM recommend(2, 3, 'fixture', exclude_seen => false);
SELECT bool_and(score >= next_score) AS sorted FROM (
    SELECT score, lead(score, 1, '-infinity') OVER () AS next_score
    FROM recommend(2, 6, 'fixture', exclude_seen => false)) s;
SELECT count(*) FROM recommend(2, 1000, 'fixture', exclude_seen => false);
SELECT bool_and(abs(score - predict(3, item_id, 'fixture')) < 1e-5) AS predict_agrees
FROM recommend(3, 6, 'fixture', false);

-- A user the model does not know gets the most popular items, scored by
-- their number of training interactions (ties by item id).
SELECT * FROM recommend(424242, 3, 'fixture');
SELECT * FROM recommend(NULL, 3, 'fixture');

-- predict for unknown ids: global mean plus the known biases.
SELECT round(predict(424242, 424242, 'fixture')::numeric, 4) AS mean_only,
       round(predict(1, 424242, 'fixture')::numeric, 4) =
       round((SELECT global_mean + bias FROM recsys.models m JOIN recsys.user_factors u
              USING (model_id) WHERE name = 'fixture' AND user_id = 1)::numeric, 4) AS user_bias,
       predict(NULL, 1, 'fixture') IS NULL AS null_in_null_out;

-- similar_items: cosine of item factors, the item itself excluded; items of
-- the same group come first.
SELECT item_id, score BETWEEN -1 AND 1 AS in_range FROM similar_items(1, 5, 'fixture');
SELECT count(*) FROM similar_items(1, 100, 'fixture');
SELECT count(*) FROM similar_items(424242, 5, 'fixture');
SELECT count(*) FROM similar_items(NULL, 5, 'fixture');

-- In analytics queries: LATERAL over users, joins to item tables,
-- aggregates over the results.
SELECT u.id, string_agg(i.title, ', ' ORDER BY r.score DESC) AS titles
FROM generate_series(1, 4) AS u(id)
CROSS JOIN LATERAL recommend(u.id, 2, 'fixture') r
JOIN items i ON i.item_id = r.item_id
GROUP BY u.id ORDER BY u.id;
SELECT i.genre, count(*) AS recommendations
FROM generate_series(1, 8) AS u(id)
CROSS JOIN LATERAL recommend(u.id, 1, 'fixture') r
JOIN items i ON i.item_id = r.item_id
GROUP BY i.genre ORDER BY i.genre;

-- The default model: the only model when recsys.default_model is empty,
-- else the named one; with several models the name is required.
SELECT count(*) FROM recommend(1, 2);
SET client_min_messages = warning;
CALL train('second', 'ratings', value_col => 'rating', factors => 3, iterations => 3);
RESET client_min_messages;
SELECT count(*) FROM recommend(1, 2);
SET recsys.default_model = 'second';
SELECT count(*) FROM recommend(1, 2);
SELECT round(predict(1, 3)::numeric, 4) = round(predict(1, 3, 'second')::numeric, 4) AS uses_default;
RESET recsys.default_model;
SELECT drop_model('second');

-- The backend cache follows retraining: after a retrain with other
-- hyperparameters in this session, recommend serves the new factors.
SELECT version AS old_version FROM recsys.models WHERE name = 'fixture' \gset
SELECT item_id, round(score::numeric, 2) FROM recommend(1, 10, 'fixture');
SET client_min_messages = warning;
CALL train('fixture', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 2.0);
RESET client_min_messages;
SELECT version > :old_version AS retrained FROM recsys.models WHERE name = 'fixture';
SELECT item_id, round(score::numeric, 2) FROM recommend(1, 10, 'fixture');
SELECT bool_and(abs(score - predict(1, item_id, 'fixture')) < 1e-5) AS fresh
FROM recommend(1, 10, 'fixture');

-- recommend_all: every user's top n in one call (blocks of users scored by
-- one matrix product), the same rows as recommend() per user.
SELECT count(*) AS rows, count(DISTINCT user_id) AS users FROM recommend_all(2, 'fixture');
SELECT es, count(*) AS rows,
       bool_and(a.item_id = b.item_id AND abs(a.score - b.score) < 1e-4) AS same
FROM (VALUES (true), (false)) AS x(es)
CROSS JOIN LATERAL (SELECT user_id, item_id, score,
                           row_number() OVER (PARTITION BY user_id ORDER BY score DESC, item_id) AS rank
                    FROM recommend_all(3, 'fixture', x.es)) a
JOIN LATERAL (SELECT u AS user_id, r.item_id, r.score,
                     row_number() OVER (PARTITION BY u ORDER BY r.score DESC, r.item_id) AS rank
              FROM generate_series(1, 8) u, recommend(u, 3, 'fixture', x.es) r) b
  ON a.user_id = b.user_id AND a.rank = b.rank
GROUP BY es ORDER BY es;

-- A user with a long history: the stored row's arrays are out of line
-- (TOAST), and recommend() reads them (the seen items it excludes) straight
-- from the table.  User 1 has seen 900 of 1,000 items; user 2 only 10.
CREATE TABLE long_history AS
SELECT 1 AS user_id, i AS item_id, 1 + i % 3 AS clicks FROM generate_series(1, 900) i
UNION ALL SELECT 2, i, 1 FROM generate_series(991, 1000) i
UNION ALL SELECT 3, i, 1 FROM generate_series(1, 1000, 7) i;
SET client_min_messages = warning;
CALL train('long_history', 'long_history', value_col => 'clicks', method => 'ials',
           options => '{"factors": 4, "iterations": 3}');
RESET client_min_messages;
SELECT pg_column_size(seen) > 2000 AS out_of_line, array_length(seen, 1) AS seen
FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'long_history' AND user_id = 1;
SELECT count(*) AS recommended, count(*) FILTER (WHERE item_id <= 900) AS seen_ones,
       min(item_id) > 900 AS only_unseen
FROM recommend(1, 200, 'long_history');
SELECT count(*) AS recommended_with_seen FROM recommend(1, 950, 'long_history', exclude_seen => false);
SELECT drop_model('long_history');
DROP TABLE long_history;
