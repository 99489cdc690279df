-- Content-based and hybrid models: item and user features from ordinary
-- relations, the content method's scores (checked by hand), hybrid factor
-- models' cold rows, refresh_item and recommend_for_features (checked
-- against the stored factors), and the errors of feature relations.
SET extra_float_digits = 0;
-- Training NOTICEs carry timings: only where they are the point
SET client_min_messages = warning;

-- Four users, five items with interactions; items 6 and 7 have features
-- only (new products), item 8 has nothing yet.
CREATE TABLE ft_events (user_id int, item_id int);
INSERT INTO ft_events VALUES (1, 1), (1, 2), (2, 2), (2, 3), (3, 4), (3, 5), (4, 5);
CREATE TABLE ft_tags (item_id int, feature text, weight real);
INSERT INTO ft_tags VALUES
    (1, 'drama', 1), (2, 'drama', 1), (2, '90s', 1), (3, 'comedy', 1),
    (4, 'action', 1), (5, 'action', 1), (5, '90s', 1),
    (6, 'drama', 1), (6, '90s', 1), (7, 'action', 2);
CREATE TABLE ft_text (item_id int, document text);
INSERT INTO ft_text VALUES (1, 'A sad story of love'), (6, 'Love and loss'), (7, 'Explosions and cars');
CREATE TABLE ft_users (user_id int, feature text);
INSERT INTO ft_users VALUES (1, 'age:18-24'), (2, 'age:18-24'), (3, 'age:45-54'), (4, 'age:45-54'),
    (5, 'age:45-54');

SELECT option, type, default_value FROM recsys.method_options('content');

--
-- 1. Content, weighting none: every profile is the unit vector of its
-- tags.  User 1 has items 1 (drama) and 2 ((drama + 90s) / sqrt 2), so
-- p_1 = (drama 1 + 1/sqrt 2, 90s 1/sqrt 2), |p_1| = 1.8478, and
--   item 6 = (drama + 90s) / sqrt 2:  (1.7071 + 0.7071) / sqrt 2 / 1.8478 = 0.9239
--   item 5 = (action + 90s) / sqrt 2:  0.7071 / sqrt 2 / 1.8478           = 0.2706
-- (cos 22.5 degrees and its complement's share); items 3, 4 and 7 share
-- nothing with user 1 and score 0.
--
CALL train('ft_plain', 'ft_events', method => 'content',
           options => '{"item_features": "ft_tags", "weighting": "none"}');
SELECT name, method, num_users, num_items, num_interactions, params
FROM recsys.models WHERE name = 'ft_plain';
SELECT * FROM recommend(1, 5, 'ft_plain');
-- Item 7 has tag action with weight 2: its unit profile is just action.
SELECT item_id, score FROM recommend(3, 3, 'ft_plain');
SELECT round(predict(1, 6, 'ft_plain')::numeric, 4) AS cos_22_5;
-- Explanations add up to the score: by history item, then by feature.
SELECT item_id, round(contribution::numeric, 4) FROM explain(1, 6, 5, 'ft_plain');
SELECT feature, round(contribution::numeric, 4) FROM explain_features(1, 6, 5, 'ft_plain');
-- Similar items: cosines of the item profiles, 1/sqrt 2 between 6 and 1.
SELECT item_id, round(score::numeric, 4) FROM similar_items(6, 3, 'ft_plain');
-- A visitor known by the features they chose.
SELECT item_id, round(score::numeric, 4) FROM recommend_for_features(ARRAY['90s'], 3, 'ft_plain');
SELECT item_id, round(score::numeric, 4)
FROM recommend_for_features(ARRAY['drama', 'action'], 3, 'ft_plain', ARRAY[1.0, 3.0]);
-- Nothing known: the popular items.
SELECT * FROM recommend_for_features(ARRAY['no such feature'], 2, 'ft_plain');

--
-- 2. TF-IDF (the default) and item texts through to_tsvector: N = 7 items
-- with features, so idf = ln(1 + 7 / df): drama (df 3) 1.2040, 90s (3)
-- 1.2040, action (3) 1.2040, comedy (1) 2.0794; each word of the texts
-- (df 1 or 2) becomes "word:<lexeme>".
--
CALL train('ft', 'ft_events', method => 'content',
           options => '{"item_features": "ft_tags", "item_text": "ft_text", "text_config": "english"}');
SELECT f.side, f.name, round(f.idf::numeric, 4) AS idf, f.factors IS NULL AS no_factors
FROM recsys.model_features f JOIN recsys.models m USING (model_id)
WHERE m.name = 'ft' ORDER BY f.side, f.feature_id;
-- Stemmed by PostgreSQL's english configuration: "love" is one word of
-- items 1 and 6, stop words ("a", "of", "and") are gone.
SELECT e.entity_id, array_length(e.features, 1) AS features,
       round((SELECT sum(w * w) FROM unnest(e.weights) w)::numeric, 4) AS norm2
FROM recsys.entity_features e JOIN recsys.models m USING (model_id)
WHERE m.name = 'ft' ORDER BY e.entity_id;
SELECT item_id, round(score::numeric, 4) FROM recommend(1, 3, 'ft');
SELECT feature, round(contribution::numeric, 4) FROM explain_features(1, 6, 3, 'ft');

-- A new item goes live without a retrain: features now, interactions later.
INSERT INTO ft_tags VALUES (8, 'drama', 1);
SELECT refresh_item('ft', 8);
SELECT item_id, round(score::numeric, 4) FROM recommend(1, 3, 'ft', candidates => ARRAY[6, 8]::bigint[]);
SELECT item_id, popularity, features_known FROM (
    SELECT f.item_id, f.popularity,
           EXISTS (SELECT FROM recsys.entity_features e
                   WHERE e.model_id = f.model_id AND e.entity_id = f.item_id) AS features_known
    FROM recsys.item_factors f JOIN recsys.models m USING (model_id)
    WHERE m.name = 'ft' AND f.item_id = 8) s;
-- An item with neither features nor interactions has nothing to refresh.
SELECT refresh_item('ft', 99);
DELETE FROM ft_tags WHERE item_id = 8;

--
-- 3. Hybrid iALS (item and user features): a row with features and no
-- interactions sits at its prior, the sum of its features' factors, and
-- a visitor known by attributes gets the same.
--
CALL train('fh', 'ft_events', method => 'ials',
           options => '{"factors": 3, "iterations": 10, "regularization": 0.5,
                        "item_features": "ft_tags", "user_features": "ft_users"}');
SELECT num_users, num_items, num_interactions, params FROM recsys.models WHERE name = 'fh';
-- Each step minimizes the same objective (the pull toward the priors and
-- the feature factors' penalty included), so the loss never goes up.
SELECT count(*) AS iterations, bool_and(l.loss <= l.previous * (1 + 1e-6)) AS never_up
FROM (SELECT t.loss, lag(t.loss, 1, 'Infinity') OVER (ORDER BY t.iteration) AS previous
      FROM recsys.training_log t JOIN recsys.models m USING (model_id) WHERE m.name = 'fh') l;
CREATE FUNCTION pg_temp.prior(model text, side text, entity bigint) RETURNS real[]
LANGUAGE sql AS $$
    SELECT array_agg(s ORDER BY d) FROM (
        SELECT d, sum(w * f.factors[d]) AS s
        FROM recsys.models m
        JOIN recsys.entity_features e ON e.model_id = m.model_id AND e.side = prior.side
        CROSS JOIN LATERAL unnest(e.features, e.weights) AS x(feature_id, w)
        JOIN recsys.model_features f ON f.model_id = m.model_id AND f.side = prior.side
                                     AND f.feature_id = x.feature_id
        CROSS JOIN generate_series(1, m.factors) d
        WHERE m.name = prior.model AND e.entity_id = prior.entity GROUP BY d) t $$;
CREATE FUNCTION pg_temp.max_diff(a real[], b real[]) RETURNS float8
LANGUAGE sql AS $$ SELECT max(abs(x - y)) FROM unnest(a, b) AS t(x, y) $$;
-- Items 6 and 7: factors = prior, popularity 0; user 5 (attributes only)
-- likewise.  Items with interactions are pulled toward it, not onto it.
SELECT f.item_id, f.popularity,
       pg_temp.max_diff(f.factors, pg_temp.prior('fh', 'item', f.item_id)) < 1e-6 AS at_prior
FROM recsys.item_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'fh' ORDER BY f.item_id;
SELECT u.user_id, array_length(u.seen, 1) AS seen,
       pg_temp.max_diff(u.factors, pg_temp.prior('fh', 'user', u.user_id)) < 1e-6 AS at_prior
FROM recsys.user_factors u JOIN recsys.models m USING (model_id)
WHERE m.name = 'fh' ORDER BY u.user_id;
-- recommend_for_features scores are the prior's dot products.
CREATE TEMP TABLE fh_expected AS
SELECT f.item_id, (SELECT sum(x * y) FROM unnest(f.factors, pg_temp.prior('fh', 'user', 5)) AS t(x, y)) AS score
FROM recsys.item_factors f JOIN recsys.models m USING (model_id) WHERE m.name = 'fh';
SELECT r.item_id, abs(r.score - e.score) < 1e-5 AS matches
FROM recommend_for_features(ARRAY['age:45-54'], 7, 'fh') r JOIN fh_expected e USING (item_id)
ORDER BY r.score DESC, r.item_id;
SELECT count(*) = 7 AS same_as_user_5
FROM recommend(5, 7, 'fh') a JOIN recommend_for_features(ARRAY['age:45-54'], 7, 'fh') b USING (item_id)
WHERE abs(a.score - b.score) < 1e-6;
-- Weights scale the attributes.
SELECT bool_and(abs(b.score - 2 * a.score) < 1e-5) AS doubled
FROM recommend_for_features(ARRAY['age:45-54'], 7, 'fh') a
JOIN recommend_for_features(ARRAY['age:45-54'], 7, 'fh', ARRAY[2.0]) b USING (item_id);
-- refresh_item: a cold item gets its prior again; after a first
-- interaction it moves and counts it.
CREATE TEMP TABLE fh_before AS
SELECT f.factors FROM recsys.item_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'fh' AND f.item_id = 6;
SELECT refresh_item('fh', 6);
SELECT pg_temp.max_diff(f.factors, b.factors) < 1e-6 AS unchanged, f.popularity
FROM recsys.item_factors f JOIN recsys.models m USING (model_id), fh_before b
WHERE m.name = 'fh' AND f.item_id = 6;
INSERT INTO ft_events VALUES (1, 6);
SELECT refresh_item('fh', 6);
SELECT pg_temp.max_diff(f.factors, b.factors) > 1e-3 AS moved, f.popularity
FROM recsys.item_factors f JOIN recsys.models m USING (model_id), fh_before b
WHERE m.name = 'fh' AND f.item_id = 6;
DELETE FROM ft_events WHERE item_id = 6;
-- Item 8 has features now: it joins the model at its prior.
INSERT INTO ft_tags VALUES (8, 'comedy', 1);
SELECT refresh_item('fh', 8);
SELECT f.popularity, pg_temp.max_diff(f.factors, pg_temp.prior('fh', 'item', 8)) < 1e-6 AS at_prior
FROM recsys.item_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'fh' AND f.item_id = 8;
DELETE FROM ft_tags WHERE item_id = 8;

-- refresh_user solves a user as the user half-step does, pulled toward
-- the prior of their attributes: with exact solves and unchanged items it
-- gives back the trained factors.  A user known only by attributes stays,
-- at the prior.
CALL train('fhx', 'ft_events', method => 'ials',
           options => '{"factors": 3, "iterations": 10, "regularization": 0.5, "solver": "cholesky",
                        "item_features": "ft_tags", "user_features": "ft_users"}');
CREATE TEMP TABLE fhx_before AS
SELECT f.user_id, f.factors FROM recsys.user_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'fhx';
SELECT refresh_user('fhx', u) FROM generate_series(1, 5) u;
SELECT b.user_id, pg_temp.max_diff(f.factors, b.factors) < 1e-4 AS same
FROM fhx_before b JOIN recsys.user_factors f ON f.user_id = b.user_id
JOIN recsys.models m ON m.model_id = f.model_id AND m.name = 'fhx' ORDER BY 1;
-- forget_user re-solves the user's items with their feature priors.
SELECT forget_user('fhx', 1);
SELECT count(*) AS items FROM recommend(2, 10, 'fhx');

-- Explicit ALS takes the same options; a visitor's predictions include
-- the global mean.
CREATE TABLE ft_ratings AS SELECT user_id, item_id, 3 + (user_id + item_id) % 3 AS rating FROM ft_events;
CALL train('fa', 'ft_ratings', value_col => 'rating', method => 'als',
           options => '{"factors": 2, "iterations": 5, "item_features": "ft_tags", "user_features": "ft_users"}');
SELECT f.item_id, f.popularity, f.bias,
       pg_temp.max_diff(f.factors, pg_temp.prior('fa', 'item', f.item_id)) < 1e-6 AS at_prior
FROM recsys.item_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'fa' AND f.popularity = 0 ORDER BY f.item_id;
SELECT bool_and(score BETWEEN 2 AND 6) AS near_the_mean
FROM recommend_for_features(ARRAY['age:18-24'], 7, 'fa');

--
-- 4. Errors.
--
-- Feature options only where a method uses them.
CALL train('bad', 'ft_events', method => 'popular', options => '{"item_features": "ft_tags"}');
CALL train('bad', 'ft_events', method => 'content');
CALL train('bad', 'ft_events', method => 'content', options => '{"user_features": "ft_users"}');
-- Relations and their columns.
CALL train('bad', 'ft_events', method => 'content', options => '{"item_features": "no_such_table"}');
CALL train('bad', 'ft_events', method => 'content', options => '{"item_features": "ft_users"}');
CALL train('bad', 'ft_events', method => 'content', options => '{"item_text": "ft_tags"}');
CREATE TABLE ft_badid (item_id text, feature text);
INSERT INTO ft_badid VALUES ('1', 'drama');
CALL train('bad', 'ft_events', method => 'content', options => '{"item_features": "ft_badid"}');
CREATE TABLE ft_badweight (item_id int, feature text, weight text);
CALL train('bad', 'ft_events', method => 'content', options => '{"item_features": "ft_badweight"}');
CREATE TABLE ft_rows (item_id int, feature int, weight float8);
INSERT INTO ft_rows VALUES (1, 7, -1);
CALL train('bad', 'ft_events', method => 'content', options => '{"item_features": "ft_rows"}');
TRUNCATE ft_rows;
INSERT INTO ft_rows VALUES (NULL, 7, 1);
CALL train('bad', 'ft_events', method => 'content', options => '{"item_features": "ft_rows"}');
CALL train('bad', 'ft_events', method => 'content',
           options => '{"item_text": "ft_text", "text_config": "klingon"}');
SELECT count(*) AS bad_models FROM recsys.models WHERE name = 'bad';
-- NULL features and weights are skipped, duplicates summed (item 1:
-- 7 -> 3, 9 -> 4, normalized to 0.6 and 0.8), integer features compared
-- as text.
TRUNCATE ft_rows;
INSERT INTO ft_rows VALUES (1, 7, 1), (1, 9, 4), (1, 7, 2), (2, NULL, 1), (3, 7, NULL), (4, 8, 0.5);
SET client_min_messages = notice;
CALL train('ft_rows', 'ft_events', method => 'content', options => '{"item_features": "ft_rows", "weighting": "none"}');
SET client_min_messages = warning;
SELECT e.entity_id, x.pos, f.name, x.weight
FROM recsys.entity_features e JOIN recsys.models m USING (model_id)
CROSS JOIN LATERAL unnest(e.features, e.weights) WITH ORDINALITY AS x(feature_id, weight, pos)
JOIN recsys.model_features f ON f.model_id = m.model_id AND f.feature_id = x.feature_id
WHERE m.name = 'ft_rows' ORDER BY 1, 2;
-- Serving.
SELECT * FROM recommend_for_features(ARRAY['age:18-24'], 3, 'ft_rows');
SELECT * FROM recommend_for_features(ARRAY['age:18-24'], 3, 'fh', ARRAY[1.0, 2.0]);
SELECT * FROM recommend_for_features(NULL, 3, 'fh');
SELECT * FROM recommend_for_features(ARRAY['age:18-24'], -1, 'fh');
SELECT * FROM recommend_for_features(ARRAY['age:18-24'], 3, 'fh', ARRAY['NaN']::float8[]);
CALL train('ft_ials', 'ft_events', method => 'ials', factors => 2, iterations => 2);
SELECT * FROM recommend_for_features(ARRAY['age:18-24'], 3, 'ft_ials');
SELECT * FROM explain_features(1, 6, 3, 'fh');
CALL train('ft_knn', 'ft_events', method => 'item_knn');
SELECT refresh_item('ft_knn', 6);
SELECT refresh_item('no_such_model', 6);
SELECT refresh_item('ft', NULL);
-- The reader's privileges: a role that cannot read the features cannot
-- train from them.
CREATE ROLE regress_ft_reader;
GRANT SELECT ON ft_events TO regress_ft_reader;
SET ROLE regress_ft_reader;
CALL train('ft_reader', 'ft_events', method => 'content', options => '{"item_features": "ft_tags"}');
RESET ROLE;
DROP OWNED BY regress_ft_reader;
DROP ROLE regress_ft_reader;

-- 5. A corrupted catalog: a superuser's UPDATE of a model's stored features
-- is an error (SQLSTATE XX001) naming the model, the row and the column,
-- not a crash.  Each case in a new session, whose cache loads the
-- features afresh, and rolled back.
--
-- Content: no idf at all (refresh_item crashed on it), or none for one
-- feature, or a non-finite one.
\c
BEGIN;
UPDATE recsys.model_features SET idf = NULL WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft');
SELECT refresh_item('ft', 6);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.model_features SET idf = NULL WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft') AND feature_id = 1;
SELECT * FROM recommend_for_features(ARRAY['drama'], 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.model_features SET idf = 'NaN' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft') AND feature_id = 2;
SELECT * FROM recommend(1, 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Content: the features' relations gone from the stored options (serving
-- crashed on it).
\c
BEGIN;
UPDATE recsys.models SET params = params - 'item_features' - 'item_text' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft');
SELECT * FROM recommend(1, 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Content: an item's stored features: a feature the model does not know,
-- NULL elements, weights that are not finite, lengths that differ.
\c
BEGIN;
UPDATE recsys.entity_features SET features = features || 1000, weights = weights || 1::real WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft') AND entity_id = 6;
SELECT * FROM similar_items(1, 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.entity_features SET features = features || NULL::int WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft') AND entity_id = 6;
SELECT * FROM explain_features(1, 6, 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.entity_features SET weights = array_fill('Infinity'::real, ARRAY[cardinality(weights)]) WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft') AND entity_id = 6;
SELECT * FROM recommend(1, 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.entity_features SET weights = weights || 1::real WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'ft') AND entity_id = 6;
SELECT * FROM recommend(1, 3, 'ft');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Hybrid: feature factors of the wrong length, missing, not finite, not
-- flat; a user attribute's too.
\c
BEGIN;
UPDATE recsys.model_features SET factors = '{1}' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'fh');
SELECT * FROM recommend_for_features(ARRAY['drama'], 3, 'fh');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.model_features SET factors = NULL, idf = NULL WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'fh') AND side = 'item' AND feature_id = 1;
SELECT * FROM recommend(1, 3, 'fh');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.model_features SET factors = '{1,NaN,1}' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'fh') AND side = 'item' AND feature_id = 0;
SELECT refresh_item('fh', 6);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.model_features SET factors = '{{1,1,1}}' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'fh') AND side = 'item' AND feature_id = 0;
SELECT * FROM recommend(1, 3, 'fh');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
BEGIN;
UPDATE recsys.model_features SET factors = factors[1:2] WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'fh') AND side = 'user';
SELECT * FROM recommend_for_features(ARRAY['age:18-24'], 3, 'fh');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- A hybrid model's row made a content model's: no idf (refresh_item
-- crashed on it).
\c
BEGIN;
UPDATE recsys.models SET method = 'content' WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'fh');
SELECT refresh_item('fh', 6);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
\c
SET client_min_messages = warning;
-- (all as before)
SELECT count(*) FROM recommend(1, 3, 'ft');
SELECT count(*) FROM recommend_for_features(ARRAY['drama'], 3, 'fh');

SELECT name, drop_model(name) FROM recsys.models WHERE name ~ '^(fa|fh|fhx|ft.*)$' ORDER BY name;
DROP TABLE ft_events, ft_tags, ft_text, ft_users, ft_ratings, ft_badid, ft_badweight, ft_rows;
