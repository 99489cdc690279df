-- Evaluation with ids of any type: the splits, evaluate(), and tuning on
-- text, varchar, char and uuid ids.  The same data keyed by integers and by
-- text evaluate the same; the splits hash text ids with hashtextextended
-- (doc/evaluation.md), reproducibly.
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
SET client_min_messages = warning;

--
-- A small fixture checked by hand: text ids, a popularity model
--
-- Training popularity: x 3, y 2, z 1 (model ids 1, 2, 3 in byte order).
-- Test: bob (trained on x) has y and z; dan (z) has x; eve, unknown to the
-- model, has w (unknown too) and y.
CREATE TABLE te_train (who text, what varchar(10));
INSERT INTO te_train VALUES ('ann', 'x'), ('ann', 'y'), ('bob', 'x'), ('cat', 'x'), ('cat', 'y'), ('dan', 'z');
CREATE TABLE te_test (who text, what varchar(10));
INSERT INTO te_test VALUES ('bob', 'y'), ('bob', 'z'), ('dan', 'x'), ('eve', 'w'), ('eve', 'y');
CALL train('te_pop', 'te_train', user_col => 'who', item_col => 'what', method => 'popular');
-- At k = 2 the model (and the baseline) recommend bob y, z (both hits);
-- dan x, y (one relevant item, a hit at 1); eve x, y (a hit at 2 of her
-- 2 relevant items):
--   precision (1 + 1/2 + 1/2) / 3 = 0.666667   recall (1 + 1 + 1/2) / 3 = 0.833333
--   ndcg (1 + 1 + (1/log2(3)) / (1 + 1/log2(3))) / 3 = 0.795617
--   map (1 + 1 + (1/2) / 2) / 3 = 0.75         hit_rate 1    mrr (1 + 1 + 1/2) / 3 = 0.833333
-- AUC over the full ranking without training items: bob's ranks y, z
-- and nothing else (undefined); dan's x above y (1); eve's x, y, z with w
-- last: of the pairs (y, x), (y, z), (w, x), (w, z) only (y, z) is right
-- (1/4): (1 + 1/4) / 2 = 0.625 over 2 users.  Coverage: x, y, z of 3.
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('te_pop', 'te_test', 2);
-- The same with integer ids (ann..eve 1..5; w, x, y, z 22..25):
-- the same numbers.
CREATE TABLE te_train_int AS
SELECT ascii(who) - ascii('a') + 1 AS who, ascii(what) - ascii('a') AS what FROM te_train;
CREATE TABLE te_test_int AS
SELECT (ascii(who) - ascii('a') + 1)::bigint AS who, (ascii(what) - ascii('a'))::smallint AS what FROM te_test;
SELECT DISTINCT who, what FROM te_test_int ORDER BY 1, 2;
CALL train('te_pop_int', 'te_train_int', user_col => 'who', item_col => 'what', method => 'popular');
SELECT count(*) AS metrics,
       bool_and(a.model_value IS NOT DISTINCT FROM b.model_value
                AND a.baseline_value IS NOT DISTINCT FROM b.baseline_value
                AND a.evaluated = b.evaluated) AS same
FROM evaluate('te_pop', 'te_test', 2) a JOIN evaluate('te_pop_int', 'te_test_int', 2) b USING (metric);
-- candidates => 'test': the test items x, y, z and w.  The model cannot
-- rank w, the baseline ranks it last (popularity 0): bob now has a
-- non-relevant item in the baseline's ranking (w: AUC 1), eve's baseline
-- AUC stays 1/4 (w after z): (1 + 1 + 1/4) / 3 = 0.75.  Coverage: 3 of 4.
-- 'cold': only w, relevant for eve, which only the baseline recommends.
SELECT c.candidates, e.metric, round(e.model_value::numeric, 6) AS model_value,
       round(e.baseline_value::numeric, 6) AS baseline_value, e.evaluated
FROM (VALUES ('test'), ('cold')) c(candidates),
     evaluate('te_pop', 'te_test', 2, candidates => c.candidates) e
WHERE e.metric IN ('precision', 'ndcg', 'auc', 'coverage') ORDER BY 1 DESC, 2;
SELECT c.candidates, count(*) AS metrics,
       bool_and(a.model_value IS NOT DISTINCT FROM b.model_value
                AND a.baseline_value IS NOT DISTINCT FROM b.baseline_value
                AND a.evaluated = b.evaluated) AS same
FROM (VALUES ('test'), ('cold')) c(candidates),
     evaluate('te_pop', 'te_test', 2, candidates => c.candidates) a
JOIN evaluate('te_pop_int', 'te_test_int', 2, candidates => c.candidates) b USING (metric)
GROUP BY 1 ORDER BY 1 DESC;

--
-- A larger fixture: 40 users (10..49) and 30 items (10..39) in two taste
-- groups, keyed by integers, by names and uuids, by varchar codes, and by
-- the integers' digits as text.  Two-digit ids sort the same way as
-- numbers and as text, so every keying numbers the ids alike and each
-- model ranks (ties included) alike.
--
CREATE TABLE te_events (user_id int, item_id int, clicks int, rating real);
INSERT INTO te_events
SELECT u, i, 1 + (u * i) % 4, CASE WHEN u % 2 = i % 2 THEN 4 + (u + i) % 2 ELSE 1 + (u * i) % 2 END
FROM generate_series(10, 49) u, generate_series(10, 39) i
WHERE (u * 37 + i * 17) % 11 < CASE WHEN u % 2 = i % 2 THEN 6 ELSE 2 END;
SELECT count(*) AS rows, count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS items FROM te_events;
CREATE TABLE te_users AS SELECT u AS user_id, 'user-' || u AS name FROM generate_series(10, 49) u;
CREATE TABLE te_items AS
SELECT i AS item_id, ('00000000-0000-4000-8000-0000000000' || i)::uuid AS code, ('sku ' || i)::char(8) AS sku
FROM generate_series(10, 39) i;
-- The integer split, then its tables keyed by text: identical data.
SELECT * FROM split_per_user('te_events', 'te_ev_train', 'te_ev_test', test_fraction => 0.25);
CREATE VIEW te_ev_train_t AS
SELECT u.name AS customer, i.code AS product, i.sku, e.clicks, e.rating
FROM te_ev_train e JOIN te_users u USING (user_id) JOIN te_items i USING (item_id);
CREATE VIEW te_ev_test_t AS
SELECT u.name AS customer, i.code AS product, i.sku, e.clicks, e.rating
FROM te_ev_test e JOIN te_users u USING (user_id) JOIN te_items i USING (item_id);
CREATE VIEW te_ev_train_d AS SELECT user_id::text, item_id::text, clicks, rating FROM te_ev_train;
CREATE VIEW te_ev_test_d AS SELECT user_id::text, item_id::text, clicks, rating FROM te_ev_test;

-- Implicit models on each keying.
CALL train('te_i', 'te_ev_train', value_col => 'clicks', method => 'ials',
           options => '{"factors": 4, "iterations": 8, "alpha": 2}');
CALL train('te_t', 'te_ev_train_t', user_col => 'customer', item_col => 'product', value_col => 'clicks',
           method => 'ials', options => '{"factors": 4, "iterations": 8, "alpha": 2}');
CALL train('te_s', 'te_ev_train_t', user_col => 'customer', item_col => 'sku', value_col => 'clicks',
           method => 'ials', options => '{"factors": 4, "iterations": 8, "alpha": 2}');
CALL train('te_d', 'te_ev_train_d', value_col => 'clicks', method => 'ials',
           options => '{"factors": 4, "iterations": 8, "alpha": 2}');
SELECT name, user_id_type, item_id_type FROM recsys.models WHERE name IN ('te_i', 'te_t', 'te_s', 'te_d') ORDER BY name;

-- The reference: the integer model on the integer test table.
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('te_i', 'te_ev_test', 3);
-- Every other keying, with every candidate set, gives the same (to 12
-- digits: the means add up users in another order): the text-keyed models
-- on text test tables; the text-keyed models on integer test tables and
-- the integer model on text test tables (ids compared as text).
SELECT v.model, v.test, c.candidates, count(*) AS metrics,
       bool_and(round(a.model_value::numeric, 12) IS NOT DISTINCT FROM round(b.model_value::numeric, 12)
                AND round(a.baseline_value::numeric, 12) IS NOT DISTINCT FROM round(b.baseline_value::numeric, 12)
                AND a.at_k IS NOT DISTINCT FROM b.at_k AND a.evaluated = b.evaluated) AS same
FROM (VALUES ('te_t', 'te_ev_test_t', 'customer', 'product'),
             ('te_s', 'te_ev_test_t', 'customer', 'sku'),
             ('te_d', 'te_ev_test_d', NULL, NULL),
             ('te_d', 'te_ev_test', NULL, NULL),
             ('te_i', 'te_ev_test_d', NULL, NULL)) v(model, test, ucol, icol),
     (VALUES ('all'), ('test')) c(candidates),
     evaluate(v.model, v.test::regclass, 3, v.ucol, v.icol, candidates => c.candidates) a
JOIN evaluate('te_i', 'te_ev_test', 3, candidates => c.candidates) b USING (metric)
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- Without AUC, and with a relevance threshold on the values.
SELECT count(*) AS metrics,
       bool_and(round(a.model_value::numeric, 12) IS NOT DISTINCT FROM round(b.model_value::numeric, 12)
                AND round(a.baseline_value::numeric, 12) IS NOT DISTINCT FROM round(b.baseline_value::numeric, 12)
                AND a.evaluated = b.evaluated) AS same
FROM evaluate('te_t', 'te_ev_test_t', 5, 'customer', 'product', 'clicks', relevance_threshold => 3, compute_auc => false) a
JOIN evaluate('te_i', 'te_ev_test', 5, value_col => 'clicks', relevance_threshold => 3, compute_auc => false) b
USING (metric);

-- Explicit models: the rating error too.
CALL train('te_als_i', 'te_ev_train', value_col => 'rating', factors => 3, iterations => 8, regularization => 0.1);
CALL train('te_als_t', 'te_ev_train_t', user_col => 'customer', item_col => 'product', value_col => 'rating',
           factors => 3, iterations => 8, regularization => 0.1);
SELECT a.metric, round(b.model_value::numeric, 6) AS model_value, round(b.baseline_value::numeric, 6) AS baseline_value,
       b.evaluated,
       round(a.model_value::numeric, 12) IS NOT DISTINCT FROM round(b.model_value::numeric, 12)
       AND round(a.baseline_value::numeric, 12) IS NOT DISTINCT FROM round(b.baseline_value::numeric, 12)
       AND a.evaluated = b.evaluated AS same
FROM evaluate('te_als_t', 'te_ev_test_t', 3, 'customer', 'product') a
JOIN evaluate('te_als_i', 'te_ev_test', 3) b USING (metric)
WHERE a.metric IN ('rmse', 'mae', 'ndcg', 'auc');
-- rmse by hand, through the text overload of predict.
SELECT round(sqrt(avg((predict(customer, product::text, 'te_als_t') - rating) ^ 2))::numeric, 6) AS rmse
FROM te_ev_test_t;

-- Cold start: items held out with split_items, a hybrid model that knows
-- them by their features, keyed both ways.
SELECT * FROM split_items('te_events', 'te_cold_train', 'te_cold_test', test_fraction => 0.2);
CREATE VIEW te_tags AS SELECT item_id, 'group ' || item_id % 2 AS feature FROM te_items;
CREATE VIEW te_tags_t AS SELECT code AS product, 'group ' || item_id % 2 AS feature FROM te_items;
CREATE VIEW te_cold_train_t AS
SELECT u.name AS customer, i.code AS product, e.clicks
FROM te_cold_train e JOIN te_users u USING (user_id) JOIN te_items i USING (item_id);
CREATE VIEW te_cold_test_t AS
SELECT u.name AS customer, i.code AS product, e.clicks
FROM te_cold_test e JOIN te_users u USING (user_id) JOIN te_items i USING (item_id);
CALL train('te_cold_i', 'te_cold_train', value_col => 'clicks', method => 'ials',
           options => '{"factors": 2, "iterations": 5, "item_features": "te_tags"}');
CALL train('te_cold_t', 'te_cold_train_t', user_col => 'customer', item_col => 'product', value_col => 'clicks',
           method => 'ials', options => '{"factors": 2, "iterations": 5, "item_features": "te_tags_t"}');
SELECT metric, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('te_cold_i', 'te_cold_test', 3, candidates => 'cold');
SELECT c.candidates, count(*) AS metrics,
       bool_and(round(a.model_value::numeric, 12) IS NOT DISTINCT FROM round(b.model_value::numeric, 12)
                AND round(a.baseline_value::numeric, 12) IS NOT DISTINCT FROM round(b.baseline_value::numeric, 12)
                AND a.evaluated = b.evaluated) AS same
FROM (VALUES ('all'), ('test'), ('cold')) c(candidates),
     evaluate('te_cold_t', 'te_cold_test_t', 3, candidates => c.candidates) a
JOIN evaluate('te_cold_i', 'te_cold_test', 3, candidates => c.candidates) b USING (metric)
GROUP BY 1 ORDER BY 1;
-- A model without features cannot rank the cold items; the same both ways.
SELECT count(*) AS metrics,
       bool_and(a.model_value IS NOT DISTINCT FROM b.model_value
                AND round(a.baseline_value::numeric, 12) IS NOT DISTINCT FROM round(b.baseline_value::numeric, 12)
                AND a.evaluated = b.evaluated) AS same
FROM train_and_evaluate('te_cold_train_t', 'te_cold_test_t', '{"method": "ials", "factors": 2, "iterations": 3}', 3,
                        'customer', 'product', 'clicks', candidates => 'cold') a
JOIN train_and_evaluate('te_cold_train', 'te_cold_test', '{"method": "ials", "factors": 2, "iterations": 3}', 3,
                        value_col => 'clicks', candidates => 'cold') b USING (metric);

-- train_and_evaluate on text tables is train + evaluate.
SELECT count(*) AS metrics,
       bool_and(a.model_value IS NOT DISTINCT FROM b.model_value
                AND a.baseline_value IS NOT DISTINCT FROM b.baseline_value AND a.evaluated = b.evaluated) AS same
FROM train_and_evaluate('te_ev_train_t', 'te_ev_test_t', '{"method": "ials", "factors": 4, "iterations": 8, "alpha": 2}', 3,
                        'customer', 'product', 'clicks') a
JOIN evaluate('te_t', 'te_ev_test_t', 3, 'customer', 'product') b USING (metric);
SELECT count(*) AS temporary_models FROM recsys.models WHERE name LIKE '\_\_recsys%';

--
-- Splits of text ids
--
-- The text fixture: names, uuids, varchar and char codes, and times.
CREATE TABLE te_src AS
SELECT u.name AS customer, i.code AS product, i.sku, i.sku::varchar AS sku_v, e.user_id, e.item_id, e.clicks,
       '2024-01-01'::timestamptz + (e.user_id * 100 + e.item_id) * interval '1 hour' AS ts
FROM te_events e JOIN te_users u USING (user_id) JOIN te_items i USING (item_id);
-- One duplicated (customer, product) pair: its rows stay together.
INSERT INTO te_src SELECT customer, product, sku, sku_v, user_id, item_id, 9, ts + interval '1 day'
FROM te_src WHERE customer = 'user-10' AND sku = 'sku 10';
SELECT count(*) AS rows, count(DISTINCT (customer, product)) AS pairs FROM te_src;

-- split_random: round(0.2 * 438) = 88 pairs, the smallest by
--     (hashtextextended(product::text, hashtextextended(customer, seed)), customer, product::text)
-- (text in byte order).
SELECT * FROM split_random('te_src', 'te_r_train', 'te_r_test', user_col => 'customer', item_col => 'product');
SELECT count(*) AS test_pairs, count(*) FILTER (WHERE (customer, product) NOT IN (
           SELECT customer, product FROM (SELECT DISTINCT customer, product FROM te_src) p
           ORDER BY hashtextextended(product::text, hashtextextended(customer, 42)), customer COLLATE "C",
                    product::text COLLATE "C" LIMIT 88)) AS wrong_pairs
FROM (SELECT DISTINCT customer, product FROM te_r_test) t;
-- The first three by hand.
SELECT customer, product, hashtextextended(product::text, hashtextextended(customer, 42)) AS h
FROM (SELECT DISTINCT customer, product FROM te_src) p ORDER BY h LIMIT 3;
SELECT customer, product, clicks FROM te_r_test
WHERE (customer, product) IN (('user-46', '00000000-0000-4000-8000-000000000016'),
                              ('user-12', '00000000-0000-4000-8000-000000000038'),
                              ('user-14', '00000000-0000-4000-8000-000000000030'))
ORDER BY 1;
-- Every row in exactly one table, with its columns and their types; the
-- duplicated pair on one side; reproducible; another seed, another split.
SELECT count(*) AS missing FROM (
    (SELECT * FROM te_src EXCEPT ALL (SELECT * FROM te_r_train UNION ALL SELECT * FROM te_r_test))
    UNION ALL
    ((SELECT * FROM te_r_train UNION ALL SELECT * FROM te_r_test) EXCEPT ALL SELECT * FROM te_src)) d;
SELECT attname, atttypid::regtype FROM pg_attribute
WHERE attrelid = 'te_r_test'::regclass AND attnum > 0 ORDER BY attnum;
SELECT (SELECT count(*) FROM te_r_train WHERE customer = 'user-10' AND sku = 'sku 10') AS in_train,
       (SELECT count(*) FROM te_r_test WHERE customer = 'user-10' AND sku = 'sku 10') AS in_test;
SELECT * FROM split_random('te_src', 'te_r2_train', 'te_r2_test', user_col => 'customer', item_col => 'product');
SELECT * FROM split_random('te_src', 'te_r3_train', 'te_r3_test', seed => 7, user_col => 'customer', item_col => 'product');
SELECT (SELECT count(*) FROM (SELECT * FROM te_r_test EXCEPT SELECT * FROM te_r2_test) d) AS differ_same_seed,
       (SELECT count(*) FROM (SELECT * FROM te_r_test EXCEPT SELECT * FROM te_r3_test) d) > 0 AS differ_other_seed;
-- char ids hash as their text, without the padding (as train interns
-- them); varchar the same: the same split.
SELECT * FROM split_random('te_src', 'te_r4_train', 'te_r4_test', user_col => 'customer', item_col => 'sku');
SELECT * FROM split_random('te_src', 'te_r5_train', 'te_r5_test', user_col => 'customer', item_col => 'sku_v');
SELECT count(*) AS differ FROM (SELECT * FROM te_r4_test EXCEPT SELECT * FROM te_r5_test) d;
-- Integer users with text items: each id hashed by its type.
SELECT * FROM split_random('te_src', 'te_r6_train', 'te_r6_test', item_col => 'product');
SELECT count(*) AS test_pairs, count(*) FILTER (WHERE (user_id, product) NOT IN (
           SELECT user_id, product FROM (SELECT DISTINCT user_id, product FROM te_src) p
           ORDER BY hashtextextended(product::text, hashint8extended(user_id, 42)), user_id,
                    product::text COLLATE "C" LIMIT 88)) AS wrong_pairs
FROM (SELECT DISTINCT user_id, product FROM te_r6_test) t;

-- split_per_user: of each user's distinct items in order of the same
-- hash, the first round(0.25 * n) (here test_count 2) go to the test table.
SELECT * FROM split_per_user('te_src', 'te_u_train', 'te_u_test', test_count => 2,
                             user_col => 'customer', item_col => 'product');
SELECT count(*) AS test_pairs, count(*) FILTER (WHERE (customer, product) NOT IN (
           SELECT customer, product FROM (
               SELECT customer, product,
                      row_number() OVER (PARTITION BY customer
                                         ORDER BY hashtextextended(product::text, hashtextextended(customer, 42)),
                                                  product::text COLLATE "C") AS rn
               FROM (SELECT DISTINCT customer, product FROM te_src) p) r WHERE rn <= 2)) AS wrong_pairs
FROM (SELECT DISTINCT customer, product FROM te_u_test) t;
SELECT count(DISTINCT customer) AS users, min(n) AS min_items, max(n) AS max_items
FROM (SELECT customer, count(DISTINCT product) AS n FROM te_u_test GROUP BY 1) c;
SELECT count(*) AS test_pairs_in_train FROM te_u_train r JOIN te_u_test t USING (customer, product);
SELECT * FROM split_per_user('te_src', 'te_u2_train', 'te_u2_test', test_count => 2,
                             user_col => 'customer', item_col => 'product');
SELECT count(*) AS differ_same_seed FROM (SELECT * FROM te_u_test EXCEPT SELECT * FROM te_u2_test) d;

-- split_temporal groups by any id type: the last 2 rows of each user.
SELECT * FROM split_temporal('te_src', 'te_t_train', 'te_t_test', 'ts', per_user => true, test_count => 2,
                             user_col => 'customer');
SELECT count(*) AS not_later
FROM te_t_test t JOIN te_t_train r USING (customer) WHERE t.ts <= r.ts;

-- split_items: round(0.2 * 30) = 6 items, the smallest by
-- (hashtextextended(product::text, seed), product::text), with all their
-- rows; none of them in training.
SELECT * FROM split_items('te_src', 'te_i_train', 'te_i_test', user_col => 'customer', item_col => 'product');
SELECT array_agg(product ORDER BY product) = (
           SELECT array_agg(product ORDER BY product) FROM (
               SELECT product FROM (SELECT DISTINCT product FROM te_src) p
               ORDER BY hashtextextended(product::text, 42), product::text COLLATE "C" LIMIT 6) x) AS same_items,
       count(*) AS items
FROM (SELECT DISTINCT product FROM te_i_test) t;
SELECT count(*) AS test_items_in_train FROM te_i_train WHERE product IN (SELECT product FROM te_i_test);
SELECT * FROM split_items('te_src', 'te_i2_train', 'te_i2_test', user_col => 'customer', item_col => 'product');
SELECT count(*) AS differ_same_seed FROM (SELECT * FROM te_i_test EXCEPT SELECT * FROM te_i2_test) d;

-- Objects shadowing built-ins on search_path change nothing.
CREATE SCHEMA te_evil;
CREATE FUNCTION te_evil.hashtextextended(text, bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';
CREATE FUNCTION te_evil.never(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR te_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = te_evil.never);
CREATE OPERATOR te_evil.<= (LEFTARG = text, RIGHTARG = text, FUNCTION = te_evil.never);
CREATE TABLE te_evil.id_map (model_id bigint, side text, external text, internal bigint);
SET search_path = te_evil, pg_catalog, public;
SELECT * FROM public.split_random('public.te_src', 'pg_temp.x_train', 'pg_temp.x_test',
                                  user_col => 'customer', item_col => 'product');
SELECT count(*) AS differ FROM (SELECT * FROM pg_temp.x_test EXCEPT SELECT * FROM public.te_r_test) d;
SELECT round(model_value::numeric, 6) AS ndcg FROM public.evaluate('te_t', 'public.te_ev_test_t', 3, 'customer', 'product')
WHERE metric OPERATOR(pg_catalog.=) 'ndcg';
RESET search_path;
DROP SCHEMA te_evil CASCADE;
DROP TABLE pg_temp.x_train, pg_temp.x_test;

--
-- Tuning on text ids
--
-- The k-fold splits: the pairs in hash order dealt out in turn; every
-- pair in exactly one test fold, never in its own fold's training table.
CREATE TEMP TABLE te_folds AS
SELECT * FROM recsys.eval_make_splits('te_src', 4, NULL, 42, 'customer', 'product', 'clicks', 'te_f');
SELECT count(*) AS pairs, count(DISTINCT (customer, product)) AS distinct_pairs,
       min(n) AS min_fold, max(n) AS max_fold
FROM (SELECT customer, product, count(*) OVER (PARTITION BY f) AS n
      FROM (SELECT DISTINCT 1 AS f, customer, product FROM pg_temp.te_f_test_1
            UNION ALL SELECT DISTINCT 2, customer, product FROM pg_temp.te_f_test_2
            UNION ALL SELECT DISTINCT 3, customer, product FROM pg_temp.te_f_test_3
            UNION ALL SELECT DISTINCT 4, customer, product FROM pg_temp.te_f_test_4) t) c;
SELECT count(*) AS leaks FROM pg_temp.te_f_train_1 r JOIN pg_temp.te_f_test_1 t USING (customer, product);
SELECT (SELECT count(*) FROM pg_temp.te_f_train_2) + (SELECT count(*) FROM pg_temp.te_f_test_2) AS rows_fold_2;
DROP TABLE pg_temp.te_f_train_1, pg_temp.te_f_test_1, pg_temp.te_f_train_2, pg_temp.te_f_test_2,
           pg_temp.te_f_train_3, pg_temp.te_f_test_3, pg_temp.te_f_train_4, pg_temp.te_f_test_4;
-- cross_validate, grid_search and random_search run on text ids,
-- reproducibly.
CREATE TEMP TABLE te_cv AS
SELECT * FROM cross_validate('te_src', '{"method": "ials", "factors": 2, "iterations": 5}', folds => 3, k => 3,
                             user_col => 'customer', item_col => 'product', value_col => 'clicks');
SELECT metric, mean > baseline_mean AS beats_popular FROM te_cv WHERE metric IN ('ndcg', 'auc');
SELECT count(*) AS differ FROM (
    SELECT * FROM te_cv
    EXCEPT
    SELECT * FROM cross_validate('te_src', '{"method": "ials", "factors": 2, "iterations": 5}', folds => 3, k => 3,
                                 user_col => 'customer', item_col => 'product', value_col => 'clicks')) d;
SELECT trial, params FROM grid_search('te_src', '{"method": "ials", "factors": [1, 2], "iterations": 4}', 'pg_temp.te_grid',
                                      k => 3, user_col => 'customer', item_col => 'sku', value_col => 'clicks');
SELECT trial, value IS NOT NULL AS has_value, best FROM pg_temp.te_grid ORDER BY trial;
SELECT trial FROM random_search('te_src', '{"method": "ials", "factors": [1, 2], "iterations": 4}', 2, 'pg_temp.te_random',
                                k => 3, user_col => 'customer', item_col => 'product', value_col => 'clicks');
SELECT count(*) AS trials FROM pg_temp.te_random;
SELECT count(*) AS temporary_models FROM recsys.models WHERE name LIKE '\_\_recsys%';
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'recsys\_tune\_%';

--
-- Ids compared as text, and errors
--
-- An integer model and a text test table: '12' is 12, '012' is no id of
-- the model (a new user), and neither is 'twelve'; item '10' is 10, '012'
-- a new item.  The two new users are served the popular items, where 10
-- is 4th (below 3 of the 29 others: AUC 26/29, no hit in the top 3); user
-- 12's test item is new, ranked last (AUC 0): AUC (2 * 26/29 + 0) / 3 =
-- 0.597701.  Coverage: the same 3 popular items, and 3 others for user 12,
-- of 30.
CREATE TABLE te_odd (user_id text, item_id text);
INSERT INTO te_odd VALUES ('012', '10'), ('twelve', '10'), ('12', '012');
SELECT place FROM (
    SELECT f.item_id, row_number() OVER (ORDER BY f.popularity DESC, f.item_id) AS place
    FROM recsys.item_factors f JOIN recsys.models m USING (model_id) WHERE m.name = 'te_i') p
WHERE item_id = 10;
SELECT metric, round(model_value::numeric, 6) AS model_value, evaluated
FROM evaluate('te_i', 'te_odd', 3) WHERE metric IN ('precision', 'auc', 'coverage');
-- Test ids none of which the model knows: a warning (items of a cold-start
-- evaluation are meant to be unknown: no warning for them).
CREATE TABLE te_unrelated (user_id int, item_id int);
INSERT INTO te_unrelated VALUES (1, 2), (3, 4);
CREATE TABLE te_names (user_id text, item_id text);
INSERT INTO te_names VALUES ('ann', 'x');
SET client_min_messages = notice;
SELECT metric, evaluated FROM evaluate('te_t', 'te_unrelated', 3, 'user_id', 'item_id') WHERE metric = 'ndcg';
SELECT metric, evaluated FROM evaluate('te_i', 'te_names', 3) WHERE metric = 'ndcg';
SELECT metric, evaluated FROM evaluate('te_d', 'te_unrelated', 3, candidates => 'cold') WHERE metric = 'ndcg';
SET client_min_messages = warning;
-- Id columns of other types are refused, by evaluate and by every split.
CREATE TABLE te_float (user_id float8, item_id text);
INSERT INTO te_float VALUES (1.5, 'x');
SELECT * FROM evaluate('te_t', 'te_float', 3, 'user_id', 'item_id');
SELECT * FROM split_random('te_float', 'x_train', 'x_test');
SELECT * FROM split_per_user('te_float', 'x_train', 'x_test');
SELECT * FROM split_temporal('te_float', 'x_train', 'x_test', 'item_id');
SELECT * FROM split_items('te_float', 'x_train', 'x_test', user_col => 'item_id', item_col => 'user_id');
SELECT * FROM cross_validate('te_float');
-- NULL text ids are errors; one text pair cannot be split.
CREATE TABLE te_nulls (customer text, product uuid);
INSERT INTO te_nulls VALUES ('a', '00000000-0000-4000-8000-000000000001'), ('b', NULL);
SELECT * FROM split_random('te_nulls', 'x_train', 'x_test', user_col => 'customer', item_col => 'product');
SELECT * FROM split_items('te_nulls', 'x_train', 'x_test', user_col => 'customer', item_col => 'product');
DELETE FROM te_nulls WHERE product IS NULL;
SELECT * FROM split_random('te_nulls', 'x_train', 'x_test', user_col => 'customer', item_col => 'product');
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'x\_%';

SELECT name, drop_model(name) FROM recsys.models WHERE name LIKE 'te\_%' ORDER BY name;
SELECT count(*) AS ids_left FROM recsys.id_map;
DROP VIEW te_ev_train_t, te_ev_test_t, te_ev_train_d, te_ev_test_d, te_tags, te_tags_t,
          te_cold_train_t, te_cold_test_t;
DROP TABLE te_train, te_test, te_train_int, te_test_int, te_events, te_users, te_items,
           te_ev_train, te_ev_test, te_cold_train, te_cold_test, te_src,
           te_r_train, te_r_test, te_r2_train, te_r2_test, te_r3_train, te_r3_test,
           te_r4_train, te_r4_test, te_r5_train, te_r5_test, te_r6_train, te_r6_test,
           te_u_train, te_u_test, te_u2_train, te_u2_test, te_t_train, te_t_test,
           te_i_train, te_i_test, te_i2_train, te_i2_test, te_odd, te_unrelated, te_names, te_float, te_nulls;
