-- Cold-start evaluation: split_items holds out items with all their
-- interactions, and evaluate(..., candidates => 'test' | 'cold') ranks only
-- the test items, or those the model has no training interactions for.
-- Every metric value below is checked by hand (see the comments);
-- doc/evaluation.md describes the protocol.
SET extra_float_digits = 0;
\set SHOW_CONTEXT never

-- Six users, eight items: odd items are dramas, even items action films
-- (users 1-3 mostly watch dramas, 4-6 action).  (user, item, clicks); the
-- pair (4, 4) has two rows; note is an extra column the split keeps.
CREATE TABLE cs_events (user_id int, item_id int, clicks int, note text);
INSERT INTO cs_events (user_id, item_id, clicks) VALUES
    (1, 1, 3), (1, 3, 2), (1, 5, 1), (1, 7, 1),
    (2, 1, 1), (2, 3, 1), (2, 5, 2),
    (3, 3, 1), (3, 7, 2), (3, 2, 1),
    (4, 2, 2), (4, 4, 1), (4, 6, 1), (4, 4, 2),
    (5, 2, 1), (5, 4, 3), (5, 8, 1), (5, 1, 1),
    (6, 6, 2), (6, 8, 5), (6, 7, 1);
UPDATE cs_events SET note = 'u' || user_id || 'i' || item_id;

--
-- split_items
--
-- The items in the order of their seeded hash hashint8extended(item, 42):
-- round(0.25 * 8) = 2 items are held out, the first two: 3 and 4.
SELECT item_id, row_number() OVER (ORDER BY hashint8extended(item_id, 42), item_id) AS place
FROM (SELECT DISTINCT item_id FROM cs_events) i ORDER BY place;
-- Items 3 and 4 have 3 + 3 rows (of 5 users: 1, 2, 3 and 4, 5); the other
-- 15 rows train.
SELECT * FROM split_items('cs_events', 'cs_train', 'cs_test', 0.25);
SELECT item_id, count(*) AS rows, array_agg(user_id ORDER BY user_id) AS users
FROM cs_test GROUP BY item_id ORDER BY item_id;
-- No test item is in the training table; every source row is in exactly
-- one of them, with all its columns.
SELECT count(*) AS test_items_in_train FROM cs_train WHERE item_id IN (SELECT item_id FROM cs_test);
SELECT count(*) AS missing FROM (
    (SELECT * FROM cs_events EXCEPT ALL (SELECT * FROM cs_train UNION ALL SELECT * FROM cs_test))
    UNION ALL
    ((SELECT * FROM cs_train UNION ALL SELECT * FROM cs_test) EXCEPT ALL SELECT * FROM cs_events)) d;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'cs_test'::regclass AND attnum > 0 ORDER BY attnum;
-- Same seed, same items, whatever the physical row order; another seed,
-- other items (seed 7 orders the items 1, 2, 3, 4, 6, 7, 8, 5).
CREATE TABLE cs_events_reversed AS SELECT * FROM cs_events ORDER BY ctid DESC;
SELECT * FROM split_items('cs_events_reversed', 'pg_temp.x_train', 'pg_temp.x_test', 0.25);
SELECT array_agg(DISTINCT item_id) AS test_items FROM pg_temp.x_test;
SELECT * FROM split_items('cs_events', 'pg_temp.x_train', 'pg_temp.x_test', 0.25, seed => 7, replace => true);
SELECT array_agg(DISTINCT item_id) AS test_items FROM pg_temp.x_test;
-- Rounding: 0.2 * 8 = 1.6 -> 2 items; a tiny fraction still holds out 1;
-- a large one leaves 1 item to train on.
SELECT f AS test_fraction, s.test_items, s.train_rows + s.test_rows AS total
FROM unnest(ARRAY[0.2, 0.01, 0.99]) AS f,
     LATERAL split_items('cs_events', 'pg_temp.x_train', 'pg_temp.x_test', f, replace => true) s;
-- Other column names; a qualified target.
CREATE TABLE cs_renamed AS SELECT user_id AS who, item_id AS what FROM cs_events;
CREATE SCHEMA cs_target;
SELECT * FROM split_items('cs_renamed', 'cs_target.a', 'cs_target.b', 0.25, user_col => 'who', item_col => 'what');
SELECT array_agg(DISTINCT what) AS test_items FROM cs_target.b;
DROP SCHEMA cs_target CASCADE;
DROP TABLE cs_renamed, cs_events_reversed;

--
-- evaluate(..., candidates)
--
-- A popular model by click sums ranks hand-checkably.  Trained on the
-- split's training table, it knows items 1, 2, 5, 6, 7, 8 (not 3, 4) with
--   click sums   8: 6, 1: 5, 2: 4, 7: 4, 5: 3, 6: 3 (model order 8,1,2,7,5,6)
--   popularity   1: 3, 2: 3, 7: 3, 5: 2, 6: 2, 8: 2 (baseline 1,2,7,5,6,8)
-- and the users' training items: 1 {1,5,7}, 2 {1,5}, 3 {2,7}, 4 {2,6},
-- 5 {1,2,8}, 6 {6,7,8}.
SET client_min_messages = warning;
CALL train('cs_pop', 'cs_train', value_col => 'clicks', method => 'popular');
RESET client_min_messages;
SELECT item_id, popularity FROM recsys.item_factors
WHERE model_id = (SELECT model_id FROM recsys.models WHERE name = 'cs_pop') ORDER BY item_id;
-- A test table of the two cold items' rows and two warm pairs, (2, 7) and
-- (4, 8): per user the test items are 1 {3}, 2 {3,7}, 3 {3}, 4 {4,8},
-- 5 {4}.
CREATE TABLE cs_mixed AS
SELECT user_id, item_id, clicks FROM cs_test
UNION ALL VALUES (2, 7, 1), (4, 8, 1);

-- candidates => 'all' (the default): every item of the model; the cold
-- items are relevant but no list can hold them.  k = 2.  Model lists
-- (training items excluded): 1 {8,2}, 2 {8,2}, 3 {8,1}, 4 {8,1}, 5 {7,5}:
-- only user 4 hits (8 at 1: precision 1/2, recall 1/2, NDCG 1/1.630930 =
-- 0.613147, AP 1/2, RR 1), means over 5 users 0.1, 0.1, 0.122629, 0.1,
-- 0.2, 0.2.  Baseline lists 1 {2,6}, 2 {2,7}, 3 {1,5}, 4 {1,7}, 5 {7,5}:
-- only user 2 hits (7 at 2: 1/2, 1/2, 0.630930/1.630930 = 0.386853, 1/4,
-- 1/2), means 0.1, 0.1, 0.077371, 0.05, 0.2, 0.1.  Coverage: 5 of the 6
-- model items each ({1,2,5,7,8} and {1,2,5,6,7}).
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('cs_pop', 'cs_mixed', 2, compute_auc => false);

-- candidates => 'test': the test table's items {3,4,7,8}.  The model
-- ranks those it knows, 8 then 7 (training items excluded): 1 {8}, 2 {8,7},
-- 3 {8}, 4 {8,7}, 5 {7}, as recommend with these candidates does:
SELECT u AS user_id, ARRAY(SELECT r.item_id FROM recommend(u, 2, 'cs_pop', candidates => '{3,4,7,8}') r) AS list
FROM generate_series(1, 5) u;
-- Per user (precision, recall, NDCG, AP, hit, RR):
--   2: rel {3,7}, hit at 2: 1/2, 1/2, 0.386853, 1/4, 1, 1/2
--   4: rel {4,8}, hit at 1: 1/2, 1/2, 0.613147, 1/2, 1, 1
--   1, 3, 5: no hit: 0
-- means 0.2, 0.2, 0.2, 0.15, 0.4, 0.3.  AUC of the lists (an unranked
-- relevant item counts as last): 1: 0, 2: 0 (7 below 8, 3 unranked), 3: 0,
-- 4: 1/2 (8 above 7, 4 unranked), 5: 0; mean 0.1.  Coverage {7,8}: 2 of
-- the 4 candidates.
-- The baseline ranks every candidate by training popularity, ties by id:
-- 7 (3), 8 (2), 3 (0), 4 (0); its lists (training items excluded) 1 {8,3},
-- 2 {7,8}, 3 {8,3}, 4 {7,8}, 5 {7,3}; per user
--   1: hit at 2: 1/2, 1, 0.630930, 1/2, 1, 1/2      (3: the same)
--   2: hit at 1: 1/2, 1/2, 0.613147, 1/2, 1, 1
--   4: hit at 2: 1/2, 1/2, 0.386853, 1/4, 1, 1/2
--   5: no hit
-- means 0.4, 0.6, 0.452372, 0.35, 0.8, 0.5.  AUC over the full ranking
-- {7,8,3,4} minus training items: 1: 1/2, 2: 3/4, 3: 1/2, 4: 1/4, 5: 0;
-- mean 0.4.  Coverage {3,7,8}: 3 of 4.
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('cs_pop', 'cs_mixed', 2, candidates => 'test');

-- candidates => 'cold': the test items without training interactions in
-- the model, {3,4}; relevant items are restricted to them: 1, 2, 3 {3},
-- 4, 5 {4}.  The model knows neither item, so its lists are empty: every
-- ranking metric 0, AUC undefined (no ranked items), coverage 0.  The
-- baseline has no popularity to go by (0 for both): it ranks the cold
-- items by id, {3,4} for every user, a ranking that knows nothing of them:
-- users 1-3 hit at 1 (1/2, 1, 1, 1, 1, 1), users 4, 5 at 2 (1/2, 1,
-- 0.630930, 1/2, 1, 1/2); means 0.5, 1, 0.852372, 0.8, 1, 0.8; AUC 1, 1,
-- 1, 0, 0: 0.6; coverage 2 of 2.
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('cs_pop', 'cs_mixed', 2, candidates => 'cold');
-- On the split's own test table every test item is cold, so 'test' and
-- 'cold' agree.
SELECT bool_and(a.model_value IS NOT DISTINCT FROM b.model_value
                AND a.baseline_value IS NOT DISTINCT FROM b.baseline_value
                AND a.evaluated = b.evaluated) AS same, count(*) AS metrics
FROM evaluate('cs_pop', 'cs_test', 2, candidates => 'test') a
JOIN evaluate('cs_pop', 'cs_test', 2, candidates => 'cold') b USING (metric);

-- A collaborative model trained on the training table cannot rank items
-- it never saw: with 'cold' it scores 0 beside the same id-order baseline
-- as above (train_and_evaluate passes candidates on).  A model trained
-- with item features knows the cold items and is measured the same way.
SELECT metric, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM train_and_evaluate('cs_train', 'cs_test', '{"method": "ials", "factors": 2, "iterations": 3}', 2,
                        value_col => 'clicks', candidates => 'cold');
SELECT count(*) AS temporary_models FROM recsys.models WHERE name LIKE '\_\_recsys%';

-- Rating error (explicit models) is measured on the candidates' test
-- pairs too: 7 pairs with 'all' ((4, 4)'s two ratings averaged), the 5
-- cold ones with 'cold', where the prediction of an unknown item is the
-- training mean plus the user's bias.
SET client_min_messages = warning;
CALL train('cs_als', 'cs_train', value_col => 'clicks', factors => 2, iterations => 5, regularization => 0.1);
RESET client_min_messages;
SELECT c.metric, a.evaluated AS all_pairs, c.evaluated AS cold_pairs,
       abs(c.model_value - x.rmse) < 1e-9 AS rmse_ok
FROM evaluate('cs_als', 'cs_mixed', 2, candidates => 'cold') c
JOIN evaluate('cs_als', 'cs_mixed', 2) a USING (metric),
     (SELECT sqrt(avg((predict(user_id, item_id, 'cs_als') - v) ^ 2)) AS rmse
      FROM (SELECT user_id, item_id, avg(clicks) AS v FROM cs_mixed WHERE item_id IN (3, 4)
            GROUP BY 1, 2) t) x
WHERE c.metric = 'rmse';

-- A model trained on every item has no cold test item: nothing is
-- evaluated, and a warning says why.
SET client_min_messages = warning;
CALL train('cs_full', 'cs_events', value_col => 'clicks', method => 'popular');
SELECT metric, model_value, baseline_value, evaluated
FROM evaluate('cs_full', 'cs_test', 2, candidates => 'cold') WHERE metric IN ('ndcg', 'coverage');
RESET client_min_messages;

-- Objects shadowing built-ins on search_path change nothing.
CREATE SCHEMA evil_cold;
CREATE FUNCTION evil_cold.hashint8extended(bigint, bigint) RETURNS bigint
    LANGUAGE sql AS 'SELECT 0::bigint';
CREATE FUNCTION evil_cold.unnest(anyarray) RETURNS SETOF anyelement
    LANGUAGE sql AS 'SELECT NULL::anyelement';
CREATE FUNCTION evil_cold.never(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil_cold.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil_cold.never);
CREATE OPERATOR evil_cold.<= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil_cold.never);
CREATE TABLE evil_cold.item_factors (model_id bigint, item_id bigint, popularity bigint);
SET search_path = evil_cold, pg_catalog, public;
SELECT * FROM public.split_items('public.cs_events', 'pg_temp.x_train', 'pg_temp.x_test', 0.25, replace => true);
SELECT metric, round(model_value::numeric, 6) AS model_value, round(baseline_value::numeric, 6) AS baseline_value
FROM public.evaluate('cs_pop', 'public.cs_mixed', 2, candidates => 'cold') WHERE metric IN ('ndcg', 'auc');
RESET search_path;
SELECT array_agg(DISTINCT item_id) AS test_items FROM pg_temp.x_test;
DROP SCHEMA evil_cold CASCADE;

-- Bad input
SELECT * FROM split_items('cs_events', 'x_train', 'x_test', 0);
SELECT * FROM split_items('cs_events', 'x_train', 'x_test', 1);
SELECT * FROM split_items('cs_events', 'x_train', 'x_test', NULL);
SELECT * FROM split_items('cs_events', 'x_train', 'x_test', seed => NULL);
CREATE VIEW cs_real_ids AS SELECT user_id, item_id::real AS item_id FROM cs_events;
SELECT * FROM split_items('cs_real_ids', 'x_train', 'x_test');
DROP VIEW cs_real_ids;
SELECT * FROM split_items('cs_events', 'x_train', 'x_test', item_col => 'user_id');
SELECT * FROM split_items('cs_events', 'x_train', 'x_test', user_col => 'nobody');
SELECT * FROM split_items('cs_events', 'cs_train', 'x_test');
SELECT * FROM split_items('cs_events', 'x_same', 'x_same');
SELECT * FROM split_items('cs_events', 'cs_events', 'x_test', replace => true);
SELECT * FROM split_items('no_such_table', 'x_train', 'x_test');
-- Ids must not be NULL; one item cannot be split (the fraction would
-- leave no item on one side).
CREATE TABLE cs_bad (user_id int, item_id int);
INSERT INTO cs_bad VALUES (1, 1), (2, NULL);
SELECT * FROM split_items('cs_bad', 'x_train', 'x_test');
DELETE FROM cs_bad WHERE item_id IS NULL;
INSERT INTO cs_bad VALUES (2, 1), (3, 1);
SELECT * FROM split_items('cs_bad', 'x_train', 'x_test', 0.5);
TRUNCATE cs_bad;
SELECT * FROM split_items('cs_bad', 'x_train', 'x_test');
-- The other splits report too little data the same way, with SQLSTATE
-- 02000 (no_data).
SELECT * FROM split_random('cs_bad', 'x_train', 'x_test');
SELECT * FROM split_temporal('cs_bad', 'x_train', 'x_test', 'item_id');
\set VERBOSITY sqlstate
SELECT * FROM split_items('cs_bad', 'x_train', 'x_test');
SELECT * FROM split_random('cs_bad', 'x_train', 'x_test');
\set VERBOSITY default
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'x\_%' AND relpersistence = 'p';
SELECT * FROM evaluate('cs_pop', 'cs_test', 2, candidates => 'warm');
SELECT * FROM evaluate('cs_pop', 'cs_test', 2, candidates => NULL);
-- train_and_evaluate checks candidates before it trains (the bad option
-- would fail the training).
SELECT * FROM train_and_evaluate('cs_train', 'cs_test', '{"method": "popular", "factors": 0}', candidates => 'Cold');

SELECT drop_model('cs_pop'), drop_model('cs_als'), drop_model('cs_full');
DROP TABLE cs_events, cs_train, cs_test, cs_mixed, cs_bad;
