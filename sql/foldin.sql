-- Serving options, similar users, cold start (fold-in), refresh_user and
-- explanations, on the 'clicks' (implicit) and 'fixture' (explicit) models.
SET extra_float_digits = 0;

-- candidates: score only these; exclude: never return these; exactly n
-- rows whenever n eligible items exist.
SELECT item_id FROM recommend(1, 10, 'clicks', exclude_seen => false);
SELECT item_id FROM recommend(1, 10, 'clicks', candidates => ARRAY[6, 5, 3, 1, 424242]);
SELECT item_id FROM recommend(1, 10, 'clicks', exclude => ARRAY[3, 424242]);
SELECT item_id FROM recommend(1, 2, 'clicks', exclude_seen => false, candidates => ARRAY[1, 2, 3, 4],
                              exclude => ARRAY[2]);
SELECT count(*) FROM recommend(1, 3, 'clicks');
SELECT count(*) FROM recommend(1, 1000, 'clicks');
SELECT count(*) AS all_seen FROM recommend(1, 5, 'clicks', candidates => ARRAY[1, 2]);
SELECT count(*) AS no_candidates FROM recommend(1, 5, 'clicks', candidates => '{}');
-- Candidate lists may repeat ids, far more often than the catalog has items.
SELECT count(*) AS repeated FROM recommend(1, 10, 'clicks', exclude_seen => false,
                                           candidates => array_fill(3::bigint, ARRAY[30000]));
SELECT count(*) AS repeated FROM recommend(2, 10, 'clicks', false,
                                           array_fill(1::bigint, ARRAY[100000]) || ARRAY[4::bigint]);

-- similar_users: cosine of user factors, the user excluded; the user's own
-- group first.
SELECT user_id, score BETWEEN -1 AND 1 AS in_range FROM similar_users(1, 3, 'clicks');
SELECT user_id FROM similar_users(5, 3, 'clicks');
SELECT count(*) FROM similar_users(424242, 3, 'clicks');

-- recommend_for_items: an anonymous user who clicked items 1 and 2 gets
-- item 3 first; the given items are never returned; unknown items are
-- ignored, and with none known the popular items come back.
SELECT item_id FROM recommend_for_items(ARRAY[1, 2], 2, 'clicks');
SELECT item_id FROM recommend_for_items(ARRAY[4, 5, 424242], 2, 'clicks');
SELECT * FROM recommend_for_items(ARRAY[424242], 3, 'clicks');
SELECT count(*) FROM recommend_for_items(ARRAY[1, 2, 3, 4, 5, 6], 3, 'clicks');
SELECT count(*) FROM recommend_for_items(NULL::bigint[], 3, 'clicks');

-- Folding in exactly a trained user's history reproduces the stored user
-- (training ends with an exact user half-step against the final items).
SELECT bool_and(abs(f.score - r.score) < 1e-4) AS same_scores, count(*)
FROM recommend_for_items(ARRAY[1, 2], 6, 'clicks', "values" => ARRAY[3, 1]) f
JOIN recommend(1, 6, 'clicks', exclude_seen => true) r USING (item_id);
SELECT bool_and(abs(f.score - r.score) < 1e-4) AS same_scores, count(*)
FROM recommend_for_items(ARRAY[1, 2, 4, 5], 6, 'fixture', "values" => ARRAY[5, 5, 1, 1]) f
JOIN recommend(1, 6, 'fixture') r USING (item_id);
-- Explicit models need the ratings; duplicates are merged by the model's rule.
SELECT item_id FROM recommend_for_items(ARRAY[1, 1, 2], 2, 'fixture', "values" => ARRAY[5, 3, 5]);

-- refresh_user: a new user's rows, inserted after training, count once the
-- user is refreshed; a statement trigger keeps users fresh as events
-- arrive.
SELECT * FROM recommend(9, 2, 'clicks');
INSERT INTO events VALUES (9, 4, 2), (9, 6, 1);
SELECT refresh_user('clicks', 9);
SELECT item_id FROM recommend(9, 2, 'clicks');
SELECT seen, seen_values FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'clicks' AND user_id = 9;

CREATE FUNCTION refresh_clicks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_user('clicks', u) FROM (SELECT DISTINCT user_id FROM new_rows) s(u);
    RETURN NULL;
END $$;
CREATE TRIGGER events_refresh AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION refresh_clicks();
INSERT INTO events VALUES (10, 1, 5), (10, 3, 2), (10, 3, 1);
SELECT seen, seen_values FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'clicks' AND user_id = 10;
SELECT item_id FROM recommend(10, 1, 'clicks');
DROP TRIGGER events_refresh ON events;

-- A user whose rows are gone loses their row (and gets popular items).
DELETE FROM events WHERE user_id = 9;
SELECT refresh_user('clicks', 9);
SELECT count(*) FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'clicks' AND user_id = 9;

-- explain: for implicit ALS the contributions of the user's items add up
-- to the score (the NULL row, the rest, is ~0 with an exact solver); for
-- explicit ALS the NULL row also holds mu + b_i.
SELECT item_id, round(contribution::numeric, 3) AS contribution FROM explain(1, 3, 5, 'clicks');
SELECT abs(sum(contribution) - predict(1, 3, 'clicks')) < 1e-5 AS adds_up,
       abs((SELECT contribution FROM explain(1, 3, 5, 'clicks') WHERE item_id IS NULL)) < 1e-4 AS exact
FROM explain(1, 3, 5, 'clicks');
SELECT count(*) FROM explain(1, 3, 1, 'clicks');
SELECT item_id IS NULL AS rest FROM explain(2, 2, 5, 'fixture');
SELECT abs(sum(contribution) - predict(2, 2, 'fixture')) < 1e-4 AS adds_up
FROM explain(2, 2, 5, 'fixture');
SELECT count(*) FROM explain(424242, 3, 5, 'clicks');
SELECT count(*) FROM explain(1, 424242, 5, 'clicks');

SELECT drop_model('pop');

-- forget_user: the user's row goes, and every item they had is re-solved
-- against the remaining users exactly as training's item half-step would:
-- the als_solve aggregate over the remaining ratings gives the same item
-- factors and biases.
SET client_min_messages = warning;
CALL train('forget_me', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
RESET client_min_messages;
SELECT version AS v0 FROM recsys.models WHERE name = 'forget_me' \gset
CREATE TEMP TABLE items_before AS
SELECT i.item_id, i.factors FROM recsys.item_factors i JOIN recsys.models m USING (model_id)
WHERE m.name = 'forget_me';
SELECT count(*) FROM similar_users(2, 10, 'forget_me') WHERE user_id = 1;
SELECT forget_user('forget_me', 1);
SELECT forget_user('forget_me', 1) AS again;
SELECT num_users, num_interactions, version > :v0 AS new_version
FROM recsys.models WHERE name = 'forget_me';
SELECT count(*) FROM similar_users(2, 10, 'forget_me') WHERE user_id = 1;
SELECT count(*) AS user_rows FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'forget_me' AND user_id = 1;
-- Items 1, 2, 4, 5 (user 1's) changed; items 3 and 6 did not.
SELECT b.item_id, b.factors <> i.factors AS changed, i.popularity
FROM items_before b JOIN recsys.item_factors i USING (item_id)
JOIN recsys.models m ON m.model_id = i.model_id AND m.name = 'forget_me'
ORDER BY b.item_id;
SELECT count(DISTINCT s.item_id) AS items, max(abs(s.w[j] - (i.factors || i.bias)[j])) < 1e-4 AS exact
FROM (SELECT r.item_id, als_solve(u.factors || 1::real, r.rating - m.global_mean - u.bias, 0.3) AS w
      FROM ratings r JOIN recsys.models m ON m.name = 'forget_me'
      JOIN recsys.user_factors u ON u.model_id = m.model_id AND u.user_id = r.user_id
      WHERE r.item_id IN (1, 2, 4, 5)
      GROUP BY r.item_id) s
JOIN recsys.models m ON m.name = 'forget_me'
JOIN recsys.item_factors i ON i.model_id = m.model_id AND i.item_id = s.item_id
CROSS JOIN generate_series(1, 3) j;
-- A forgotten user is unknown: popular items.
SELECT item_id, score FROM recommend(1, 2, 'forget_me');
-- An item whose only user is forgotten leaves the model.
INSERT INTO ratings_dup VALUES (42, 77, 4);
SET client_min_messages = warning;
CALL train('forget_lonely', 'ratings_dup', value_col => 'rating', factors => 2, iterations => 2);
RESET client_min_messages;
SELECT forget_user('forget_lonely', 42);
SELECT num_items, (SELECT count(*) FROM recsys.item_factors f WHERE f.model_id = m.model_id
                   AND f.item_id = 77) AS item_77
FROM recsys.models m WHERE name = 'forget_lonely';
SELECT drop_model('forget_me'), drop_model('forget_lonely');
