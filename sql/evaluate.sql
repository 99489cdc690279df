-- Evaluation: ranking metrics and their aggregate, rating error, splits,
-- and evaluate() against the popular baseline.  Every metric value below
-- is checked by hand (see the comments); doc/evaluation.md has the
-- definitions.
SET extra_float_digits = 0;
\set SHOW_CONTEXT never

-- recommended {10,20,30,40,50}, relevant {20,50,60}: hits at positions 2
-- and 5.
--   k=5:  precision 2/5; recall 2/3; DCG 1/log2(3) + 1/log2(6) = 1.017782,
--         IDCG (3 positions) 1 + 1/log2(3) + 1/2 = 2.130930, NDCG 0.477624;
--         AP (1/3)(1/2 + 2/5) = 0.3; hit 1; RR 1/2
--   k=3:  precision 1/3; recall 1/3; NDCG 0.630930/2.130930 = 0.296082;
--         AP (1/3)(1/2) = 0.166667; hit 1; RR 1/2
--   k=1:  a miss: all 0
--   k=10: fewer than k recommended count as misses: precision 2/10; the
--         rest as for k=5
SELECT k, round(precision_at_k(r, l, k)::numeric, 6) AS "precision",
       round(recall_at_k(r, l, k)::numeric, 6) AS recall,
       round(ndcg_at_k(r, l, k)::numeric, 6) AS ndcg,
       round(average_precision_at_k(r, l, k)::numeric, 6) AS ap,
       hit_at_k(r, l, k) AS hit,
       round(reciprocal_rank_at_k(r, l, k)::numeric, 6) AS rr
FROM (VALUES ('{10,20,30,40,50}'::bigint[], '{20,50,60}'::bigint[])) v(r, l),
     unnest(ARRAY[1, 3, 5, 10]) AS k
ORDER BY k;

-- A perfect ranking scores 1 everywhere.
SELECT precision_at_k(r, l, 3), recall_at_k(r, l, 3), ndcg_at_k(r, l, 3),
       average_precision_at_k(r, l, 3), hit_at_k(r, l, 3), reciprocal_rank_at_k(r, l, 3)
FROM (VALUES ('{60,20,50}'::bigint[], '{20,50,60}'::bigint[])) v(r, l);

-- Fewer relevant items than k: recall, NDCG and AP normalize by
-- min(k, |relevant|) = 1 and reach 1; precision is 1/k.
SELECT precision_at_k(r, l, 4), recall_at_k(r, l, 4), ndcg_at_k(r, l, 4),
       average_precision_at_k(r, l, 4), hit_at_k(r, l, 4), reciprocal_rank_at_k(r, l, 4)
FROM (VALUES ('{1,2,3,4}'::bigint[], '{1}'::bigint[])) v(r, l);

-- Ties and duplicates: a repeated recommended id counts at its first
-- position only (the copy at position 2 is a miss), so {20,20,50} against
-- {20,50} has hits at 1 and 3: precision 2/3, recall 1,
-- NDCG (1 + 1/2) / (1 + 1/log2(3)) = 0.919721, AP (1/2)(1 + 2/3) = 0.833333.
-- Duplicates in relevant are ignored.
SELECT round(precision_at_k(r, l, 3)::numeric, 6) AS "precision", recall_at_k(r, l, 3) AS recall,
       round(ndcg_at_k(r, l, 3)::numeric, 6) AS ndcg,
       round(average_precision_at_k(r, l, 3)::numeric, 6) AS ap, reciprocal_rank_at_k(r, l, 3) AS rr
FROM (VALUES ('{20,20,50}'::bigint[], '{20,50}'::bigint[]),
             ('{20,20,50}', '{50,20,20,50}')) v(r, l);
-- Never more than 1, even when every slot repeats a relevant id.
SELECT precision_at_k('{7,7,7}', '{7}', 3) AS "precision", ndcg_at_k('{7,7,7}', '{7}', 3) AS ndcg,
       average_precision_at_k('{7,7,7}', '{7}', 3) AS ap;

-- Empty inputs: no relevant ids means the user cannot be evaluated (NULL,
-- which avg() skips); no recommendations means misses; NULL arrays give
-- NULL.
SELECT precision_at_k('{1,2}', '{}', 2) AS "precision", recall_at_k('{1,2}', '{}', 2) AS recall,
       ndcg_at_k('{1,2}', '{}', 2) AS ndcg, average_precision_at_k('{1,2}', '{}', 2) AS ap,
       hit_at_k('{1,2}', '{}', 2) AS hit, reciprocal_rank_at_k('{1,2}', '{}', 2) AS rr;
SELECT precision_at_k('{}', '{1}', 2) AS "precision", recall_at_k('{}', '{1}', 2) AS recall,
       ndcg_at_k('{}', '{1}', 2) AS ndcg, average_precision_at_k('{}', '{1}', 2) AS ap,
       hit_at_k('{}', '{1}', 2) AS hit, reciprocal_rank_at_k('{}', '{1}', 2) AS rr;
SELECT precision_at_k(NULL, '{1}', 2) IS NULL AS null_rec, ndcg_at_k('{1}', NULL, 2) IS NULL AS null_rel,
       recall_at_k('{1}', '{1}', NULL) IS NULL AS null_k;

-- AUC: the fraction of (relevant, non-relevant) pairs in the right order.
--   {1,2,3,4,5} vs {2,4}: 2 beats 3 and 5, 4 beats 5: 3 of 6 pairs
--   relevant first: 1; relevant last: 0
--   {1,2,3} vs {2,9}: 9 is not ranked, so it counts as last: 1 of 4 pairs
--   exclude {1,3}: ranking {2,4,5}, 2 and 4 beat 5: 1
--   excluding a relevant id removes it from the relevant set: 1
--   a repeated id counts at its first position: 2 beats only 3 of {1,3}
SELECT auc('{1,2,3,4,5}', '{2,4}') AS middle, auc('{2,4,1,3,5}', '{2,4}') AS best,
       auc('{1,3,5,2,4}', '{2,4}') AS worst, auc('{1,2,3}', '{2,9}') AS unranked,
       auc('{1,2,3,4,5}', '{2,4}', '{1,3}') AS excluded,
       auc('{1,2,3}', '{1,2}', '{1}') AS excluded_relevant,
       auc('{1,2,1,3}', '{2}') AS repeated;
-- No pairs: NULL.
SELECT auc('{1,2}', '{1,2}') IS NULL AS no_negatives, auc('{1,2}', '{}') IS NULL AS no_positives,
       auc('{}', '{1}') IS NULL AS empty_ranking, auc('{1,2}', '{1}', '{2}') IS NULL AS all_excluded;

-- The ranking_metrics aggregate: means over users with relevant ids; the
-- user without any, and the row with a NULL array, are skipped (users = 4:
-- the three above at k = 3, and one with no recommendations):
-- precision (1/3 + 1 + 2/3 + 0) / 4 = 0.5, recall (1/3 + 1 + 1 + 0) / 4,
-- NDCG (0.296082 + 1 + 0.919721 + 0) / 4, MAP (1/6 + 1 + 5/6 + 0) / 4,
-- hit rate 3/4, MRR (1/2 + 1 + 1 + 0) / 4.  Same values as avg() over the
-- scalar functions.
CREATE TEMP TABLE metric_users (u int, rec bigint[], rel bigint[]);
INSERT INTO metric_users VALUES
    (1, '{10,20,30,40,50}', '{20,50,60}'),
    (2, '{60,20,50}', '{20,50,60}'),
    (3, '{20,20,50}', '{20,50}'),
    (4, '{}', '{1}'),
    (5, '{1,2}', '{}'),
    (6, NULL, '{1}');
SELECT (m).users, round((m).precision::numeric, 6) AS "precision", round((m).recall::numeric, 6) AS recall,
       round((m).ndcg::numeric, 6) AS ndcg, round((m).map::numeric, 6) AS map,
       round((m).hit_rate::numeric, 6) AS hit_rate, round((m).mrr::numeric, 6) AS mrr
FROM (SELECT ranking_metrics(rec, rel, 3) AS m FROM metric_users) s;
SELECT round(avg(precision_at_k(rec, rel, 3))::numeric, 6) AS "precision",
       round(avg(recall_at_k(rec, rel, 3))::numeric, 6) AS recall,
       round(avg(ndcg_at_k(rec, rel, 3))::numeric, 6) AS ndcg,
       round(avg(average_precision_at_k(rec, rel, 3))::numeric, 6) AS map,
       round(avg(hit_at_k(rec, rel, 3))::numeric, 6) AS hit_rate,
       round(avg(reciprocal_rank_at_k(rec, rel, 3))::numeric, 6) AS mrr
FROM metric_users;
-- No rows (or only users without relevant ids): zero users, NULL means.
SELECT (ranking_metrics(rec, rel, 3)).* FROM metric_users WHERE false;
SELECT (ranking_metrics(rec, rel, 3)).* FROM metric_users WHERE u = 5;
-- Per group.
SELECT u % 2 AS grp, (ranking_metrics(rec, rel, 3)).users FROM metric_users GROUP BY 1 ORDER BY 1;

-- Rating error: errors -1 and 2 give RMSE sqrt(5/2) and MAE 3/2; rows with
-- a NULL are skipped; no rows give NULL.
SELECT round(rmse(p, a)::numeric, 6) AS rmse, mae(p, a) AS mae
FROM (VALUES (1.0::float8, 2.0::float8), (3.0, 1.0), (NULL, 5.0), (4.0, NULL)) v(p, a);
SELECT rmse(p, a) IS NULL AS rmse_null, mae(p, a) IS NULL AS mae_null
FROM (VALUES (1.0::float8, 2.0::float8)) v(p, a) WHERE false;

-- Both aggregates run in parallel (partial states combined, ranking
-- states serialized between processes) and give the serial result.
CREATE TABLE metric_rows AS
SELECT g AS u, ARRAY[g % 7, (g * 3) % 11, (g * 5) % 13]::bigint[] AS rec,
       ARRAY[g % 5, (g * 2) % 11]::bigint[] AS rel, (g % 9)::float8 AS p, (g % 4)::float8 AS a
FROM generate_series(1, 20000) g;
ANALYZE metric_rows;
CREATE TEMP TABLE metric_serial AS
SELECT ranking_metrics(rec, rel, 2) AS m, rmse(p, a) AS rmse, mae(p, a) AS mae FROM metric_rows;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT ranking_metrics(rec, rel, 2), rmse(p, a), mae(p, a) FROM metric_rows;
CREATE TEMP TABLE metric_parallel AS
SELECT ranking_metrics(rec, rel, 2) AS m, rmse(p, a) AS rmse, mae(p, a) AS mae FROM metric_rows;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT (s.m).users, (s.m).users = (p.m).users AS same_users,
       abs((s.m).ndcg - (p.m).ndcg) < 1e-12 AND abs((s.m).map - (p.m).map) < 1e-12
       AND abs((s.m).precision - (p.m).precision) < 1e-12 AND abs((s.m).mrr - (p.m).mrr) < 1e-12 AS same_means,
       abs(s.rmse - p.rmse) < 1e-12 AND abs(s.mae - p.mae) < 1e-12 AS same_error
FROM metric_serial s, metric_parallel p;
DROP TABLE metric_rows;

-- Bad input
SELECT precision_at_k('{1}', '{1}', 0);
SELECT ndcg_at_k('{1}', '{1}', -1);
SELECT recall_at_k('{1,NULL}', '{1}', 1);
SELECT hit_at_k('{1}', '{{1,2},{3,4}}', 1);
SELECT auc('{1,NULL}', '{1}');
SELECT ranking_metrics(rec, rel, k) FROM (VALUES ('{1}'::bigint[], '{1}'::bigint[], 1), ('{1}', '{1}', 2)) v(rec, rel, k);
SELECT ranking_metrics(rec, rel, NULL) FROM metric_users;
SELECT ranking_metrics(rec, rel, 0) FROM metric_users;
SELECT rmse(p, a) FROM (VALUES ('NaN'::float8, 1.0::float8)) v(p, a);
SELECT mae(p, a) FROM (VALUES (1.0::float8, 'Infinity'::float8)) v(p, a);

--
-- Splits
--
-- Six users with 3..8 items each (users 1-6: u + 2 items), ids and times
-- increasing per user; one duplicated (user, item) row; an extra column
-- that the splits must keep.
CREATE TABLE interactions (user_id int, item_id bigint, value real, ts timestamptz, note text);
INSERT INTO interactions
SELECT u, i, (u * i) % 5 + 1, '2024-01-01'::timestamptz + (u * 100 + i) * interval '1 hour', 'u' || u || 'i' || i
FROM generate_series(1, 6) u, generate_series(1, u + 2) i;
INSERT INTO interactions VALUES (1, 1, 2, '2024-06-01', 'again');
SELECT count(*) AS rows, count(DISTINCT (user_id, item_id)) AS pairs FROM interactions;

-- Random holdout: round(0.2 * 33) = 7 test pairs; both rows of the
-- duplicated pair land on the same side; every column is kept; the
-- tables go to the caller's current schema.
SELECT * FROM split_random('interactions', 'sr_train', 'sr_test', 0.2);
SELECT count(*) AS rows, count(DISTINCT (user_id, item_id)) AS pairs FROM sr_test;
SELECT count(*) AS in_both FROM sr_train a JOIN sr_test b USING (user_id, item_id);
SELECT (SELECT count(*) FROM sr_train) + (SELECT count(*) FROM sr_test) AS total;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'sr_test'::regclass AND attnum > 0 ORDER BY attnum;
SELECT count(*) AS duplicate_rows_together FROM (
    SELECT 'train' AS side FROM sr_train WHERE user_id = 1 AND item_id = 1
    UNION ALL SELECT 'test' FROM sr_test WHERE user_id = 1 AND item_id = 1) s
GROUP BY side;
-- Same seed, same split, whatever the physical row order; another seed,
-- another split.
CREATE TABLE interactions_reversed AS SELECT * FROM interactions ORDER BY ctid DESC;
SELECT * FROM split_random('interactions_reversed', 'sr2_train', 'sr2_test', 0.2);
SELECT count(*) AS differences FROM (
    (SELECT user_id, item_id, note FROM sr_test EXCEPT SELECT user_id, item_id, note FROM sr2_test)
    UNION ALL
    (SELECT user_id, item_id, note FROM sr2_test EXCEPT SELECT user_id, item_id, note FROM sr_test)) d;
SELECT * FROM split_random('interactions', 'sr2_train', 'sr2_test', 0.2, seed => 7, replace => true);
SELECT count(*) > 0 AS differs FROM (
    SELECT user_id, item_id FROM sr_test EXCEPT SELECT user_id, item_id FROM sr2_test) d;

-- Per-user holdout with a count: each user with at least min_history (4)
-- items gives exactly 2; user 1 (3 items) stays whole in training.
SELECT * FROM split_per_user('interactions', 'pu_train', 'pu_test', test_count => 2, min_history => 4);
SELECT user_id, count(DISTINCT item_id) AS test_items FROM pu_test GROUP BY user_id ORDER BY user_id;
SELECT user_id, count(*) AS train_rows FROM pu_train GROUP BY user_id ORDER BY user_id;
SELECT count(*) AS in_both FROM pu_train a JOIN pu_test b USING (user_id, item_id);
-- By fraction: round(0.25 n) half up, at least 1, at most n - 1:
-- n = 3, 4, 5 -> 1; n = 6, 7, 8 -> 2.
SELECT * FROM split_per_user('interactions', 'pu_train', 'pu_test', 0.25, replace => true);
SELECT user_id, count(DISTINCT item_id) AS test_items FROM pu_test GROUP BY user_id ORDER BY user_id;
-- A count larger than a user's history leaves one item to train on.
SELECT * FROM split_per_user('interactions', 'pu_train', 'pu_test', test_count => 5, replace => true);
SELECT user_id, count(DISTINCT item_id) AS test_items FROM pu_test GROUP BY user_id ORDER BY user_id;
-- Reproducible: the same call again gives the same test pairs.
CREATE TEMP TABLE pu_first AS SELECT user_id, item_id FROM pu_test;
SELECT * FROM split_per_user('interactions_reversed', 'pu_train', 'pu_test', test_count => 5, replace => true);
SELECT count(*) AS differences FROM (
    (SELECT user_id, item_id FROM pu_first EXCEPT SELECT user_id, item_id FROM pu_test)
    UNION ALL (SELECT user_id, item_id FROM pu_test EXCEPT SELECT user_id, item_id FROM pu_first)) d;

-- Temporal, global: the latest round(0.2 * 34) = 7 rows by time; every
-- test time is later than every training time.
SELECT * FROM split_temporal('interactions', 'tg_train', 'tg_test', 'ts');
SELECT (SELECT min(ts) FROM tg_test) > (SELECT max(ts) FROM tg_train) AS future_only;
SELECT user_id, item_id, note FROM tg_test ORDER BY ts;
-- Ties at the cutoff stay in training, so no test time equals a training
-- time: with all times equal, nothing can be held out.
CREATE TABLE same_time AS SELECT user_id, item_id, '2024-01-01'::date AS day FROM interactions;
SELECT * FROM split_temporal('same_time', 'st_train', 'st_test', 'day');
-- Temporal, per user: each user's latest rows (leave-last-one-out with
-- test_count => 1); each user's test rows are later than their training
-- rows.
SELECT * FROM split_temporal('interactions', 'tu_train', 'tu_test', 'ts', per_user => true, test_count => 1);
SELECT user_id, item_id, note FROM tu_test ORDER BY user_id;
SELECT bool_and(t.min_test > r.max_train) AS future_only
FROM (SELECT user_id, min(ts) AS min_test FROM tu_test GROUP BY 1) t
JOIN (SELECT user_id, max(ts) AS max_train FROM tu_train GROUP BY 1) r USING (user_id);
SELECT * FROM split_temporal('interactions', 'tu_train', 'tu_test', 'ts', 0.5, per_user => true,
                             min_history => 5, replace => true);
SELECT user_id, count(*) AS test_rows FROM tu_test GROUP BY user_id ORDER BY user_id;

-- Qualified and temporary targets.
CREATE SCHEMA eval_target;
SELECT * FROM split_random('interactions', 'eval_target.a', 'pg_temp.b');
SELECT c.oid::regclass, c.relpersistence FROM pg_class c
WHERE c.oid IN ('eval_target.a'::regclass, 'pg_temp.b'::regclass) ORDER BY 2;
SET search_path = eval_target, public;
SELECT * FROM split_random('public.interactions', 'c', 'd');
RESET search_path;
SELECT count(*) FROM eval_target.c;
DROP SCHEMA eval_target CASCADE;

-- Bad input
SELECT * FROM split_random('interactions', 'x_train', 'x_test', 0);
SELECT * FROM split_random('interactions', 'x_train', 'x_test', 1);
SELECT * FROM split_random('interactions', 'x_train', 'x_test', NULL);
SELECT * FROM split_per_user('interactions', 'x_train', 'x_test', test_count => 0);
SELECT * FROM split_per_user('interactions', 'x_train', 'x_test', min_history => 1);
SELECT * FROM split_random('interactions', 'x_train', 'x_test', user_col => 'nobody');
SELECT * FROM split_random('interactions', 'x_train', 'x_test', item_col => 'value');
SELECT * FROM split_random('interactions', 'x_train', 'x_test', item_col => 'user_id');
SELECT * FROM split_temporal('interactions', 'x_train', 'x_test', 'no_time');
SELECT * FROM split_temporal('interactions', 'x_train', 'x_test', 'ts', test_count => 1);
SELECT * FROM split_random('no_such_table', 'x_train', 'x_test');
SELECT * FROM split_random('interactions', 'sr_train', 'x_test');
SELECT * FROM split_random('interactions', 'interactions', 'x_test', replace => true);
SELECT * FROM split_random('interactions', 'x_same', 'x_same');
SELECT * FROM split_random('interactions', 'a.b.c', 'x_test');
SELECT * FROM split_random('interactions', 'no_schema.x', 'x_test');
SELECT * FROM split_random('interactions', NULL, 'x_test');
SELECT * FROM split_random('interactions', 'x_train', 'x_test', target_schema => NULL);
CREATE VIEW interactions_view AS SELECT * FROM interactions;
SELECT * FROM split_random('interactions', 'interactions_view', 'x_test', replace => true);
CREATE TABLE null_ids (user_id int, item_id int, ts int);
INSERT INTO null_ids VALUES (1, 1, 1), (NULL, 2, 2), (2, 2, 3);
SELECT * FROM split_random('null_ids', 'x_train', 'x_test');
SELECT * FROM split_per_user('null_ids', 'x_train', 'x_test');
SELECT * FROM split_temporal('null_ids', 'x_train', 'x_test', 'ts');
SELECT * FROM split_random('null_ids', 'x_train', 'x_test') WHERE false;
SELECT count(*) AS leftovers FROM pg_class WHERE relname LIKE 'x\_%';
DROP TABLE null_ids, same_time, interactions_reversed;
DROP VIEW interactions_view;

--
-- evaluate()
--
-- Popular models make hand-checkable rankings.  Training interactions
-- (user, item, value): item counts 1:3, 2:2, 3:1, 4:1, 5:1 (the baseline,
-- and what the models serve unknown users, ranks 1,2,3,4,5); value sums
-- 1:3, 2:2, 3:5, 4:1, 5:2 (the model 'ev_sum' ranks 3,1,2,5,4).
CREATE TABLE ev_train (user_id int, item_id int, value real);
INSERT INTO ev_train VALUES
    (1, 1, 1), (1, 2, 1),
    (2, 1, 1), (2, 3, 5),
    (3, 2, 1), (3, 4, 1),
    (4, 1, 1), (4, 5, 2);
-- Test: user 1 {3, 4}; user 2 {2 (twice: values 5 and 3), 1 (a training
-- item, never relevant)}; user 3 {1}; user 5 is unknown to the model;
-- user 6 only has item 9, unknown to the model.
CREATE TABLE ev_test (user_id int, item_id int, value real);
INSERT INTO ev_test VALUES
    (1, 3, 4), (1, 4, 1),
    (2, 2, 5), (2, 2, 3), (2, 1, 4),
    (3, 1, 1),
    (5, 1, 2), (5, 3, 1),
    (6, 9, 5),
    (NULL, 1, 1);
SET client_min_messages = warning;
CALL train('ev_sum', 'ev_train', value_col => 'value', method => 'popular');
RESET client_min_messages;
-- k = 2.  Model lists (training items excluded; a popular model ranks
-- unknown users by its own scores too): user 1 {3,5}, 2 {2,5}, 3 {3,1},
-- 5 {3,1}, 6 {3,1}.  Per user (precision, recall, NDCG, AP, RR):
--   1: rel {3,4}  hit at 1: 1/2, 1/2, 1/1.630930 = 0.613147, 1/2, 1
--   2: rel {2}    hit at 1: 1/2, 1, 1, 1, 1
--   3: rel {1}    hit at 2: 1/2, 1, 0.630930, 1/2, 1/2
--   5: rel {1,3}  hits at 1, 2: 1, 1, 1, 1, 1
--   6: rel {9}    no hit: 0
-- means: precision 0.5, recall 0.7, NDCG 0.648815, MAP 0.6, hit rate 0.8,
-- MRR 0.7.  Baseline lists: {3,4}, {2,4}, {1,3}, {1,2}, {1,2}; per user
-- 1: all 1; 2: 1/2, 1, 1, 1, 1; 3: 1/2, 1, 1, 1, 1;
-- 5: 1/2, 1/2, 0.613147, 1/2, 1; 6: 0; means: 0.5, 0.7, 0.722629, 0.7,
-- 0.8, 0.8.
-- AUC of the full rankings: model 1: {3,5,4}: 1/2; 2: {2,5,4}: 1;
-- 3: {3,1,5}: 1/2; 5: {3,1,2,5,4} vs {1,3}: 1; 6: item 9 is unranked, so
-- last: 0; mean 0.6.  Baseline: 1, 1, 1, {1,2,3,4,5} vs {1,3}: 5/6, 0;
-- mean 0.766667.
-- Coverage: model lists hold items {1,2,3,5}, baseline lists {1,2,3,4}:
-- 4 of 5 catalog items each.
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('ev_sum', 'ev_test', 2);
-- A relevance threshold on the test values; duplicate test rows merge as
-- in training (a sum for popular and ials models, a mean for als): user 2's
-- item 2 has 5 + 3 = 8.  With threshold 2 user 3 has no relevant item and
-- is skipped; users 1, 2 and 5 have one relevant item, found at positions
-- 1, 1 and 2 by the model (AUC 1, 1, 3/4), at 1, 1, 1 by the baseline;
-- user 6's is unknown.  With threshold 6 only user 2 is left.
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value,
       round(baseline_value::numeric, 6) AS baseline_value, evaluated
FROM evaluate('ev_sum', 'ev_test', 2, relevance_threshold => 2);
SELECT metric, model_value, evaluated FROM evaluate('ev_sum', 'ev_test', 2, relevance_threshold => 6)
WHERE metric IN ('precision', 'recall');
-- k larger than the catalog: the whole rankings.  precision@10
-- (2 + 1 + 1 + 2 + 0) / 50; NDCG (0.919721 + 1 + 0.630930 + 1 + 0) / 5.
-- AUC can be skipped (it needs full rankings).
SELECT metric, at_k, round(model_value::numeric, 6) AS model_value, evaluated
FROM evaluate('ev_sum', 'ev_test', 10, compute_auc => false);
-- The building blocks give the same numbers per user.
SELECT t.user_id, round(ndcg_at_k(rec, rel, 2)::numeric, 6) AS ndcg,
       round(auc(full_rec, rel)::numeric, 6) AS auc
FROM (SELECT user_id, array_agg(item_id) AS rel FROM ev_test
      WHERE user_id IS NOT NULL AND (user_id, item_id) NOT IN (SELECT user_id, item_id FROM ev_train)
      GROUP BY user_id) t
CROSS JOIN LATERAL (SELECT array_agg(item_id ORDER BY score DESC, item_id) AS rec FROM recommend(t.user_id, 2, 'ev_sum')) r
CROSS JOIN LATERAL (SELECT array_agg(item_id ORDER BY score DESC, item_id) AS full_rec FROM recommend(t.user_id, 5, 'ev_sum')) f
ORDER BY t.user_id;
-- The baseline's lists: the popular items in order, minus the user's
-- training items (an internal helper).
SELECT recsys.eval_exclude('{5,4,3,2,1}', '{4,2,9}', 2) AS top_2, recsys.eval_exclude('{5,4,3,2,1}', '{4,2}', 10) AS all,
       recsys.eval_exclude('{5,4}', '{}', 0) AS none;
SELECT recsys.eval_exclude('{5,4}', '{}', -1);
-- A popular model by counts ranks exactly as the baseline.
SET client_min_messages = warning;
CALL train('ev_count', 'ev_train', method => 'popular');
RESET client_min_messages;
SELECT bool_and(model_value = baseline_value) AS same_as_baseline, count(*) AS metrics
FROM evaluate('ev_count', 'ev_test', 2);
-- A test table with other column names.
CREATE TABLE ev_test_renamed AS SELECT user_id AS who, item_id AS what, value AS stars FROM ev_test;
SELECT metric, round(model_value::numeric, 6) AS model_value
FROM evaluate('ev_sum', 'ev_test_renamed', 2, user_col => 'who', item_col => 'what')
WHERE metric = 'ndcg';

-- Objects shadowing built-ins on search_path change nothing: every
-- function, operator and table inside is qualified.
CREATE SCHEMA evil_eval;
CREATE FUNCTION evil_eval.unnest(anyarray) RETURNS SETOF anyelement
    LANGUAGE sql AS 'SELECT NULL::anyelement';
CREATE FUNCTION evil_eval.hashint8extended(bigint, bigint) RETURNS bigint
    LANGUAGE sql AS 'SELECT 0::bigint';
CREATE FUNCTION evil_eval.cardinality(anyarray) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION evil_eval.never(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil_eval.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil_eval.never);
CREATE OPERATOR evil_eval.> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil_eval.never);
CREATE TABLE evil_eval.item_factors (model_id bigint, item_id bigint, popularity bigint);
SET search_path = evil_eval, pg_catalog, public;
SELECT metric, round(model_value::numeric, 6) AS model_value, round(baseline_value::numeric, 6) AS baseline_value
FROM public.evaluate('ev_sum', 'public.ev_test', 2) WHERE metric IN ('ndcg', 'auc');
SELECT * FROM public.split_random('public.interactions', 'public.sh_train', 'public.sh_test', 0.2);
RESET search_path;
SELECT count(*) AS differences FROM (
    (SELECT user_id, item_id FROM sr_test EXCEPT SELECT user_id, item_id FROM sh_test)
    UNION ALL (SELECT user_id, item_id FROM sh_test EXCEPT SELECT user_id, item_id FROM sr_test)) d;
DROP SCHEMA evil_eval CASCADE;
DROP TABLE sh_train, sh_test;

-- evaluate reads the model with the caller's privileges: a role that may
-- not serve the model does not see it; once granted, it gets the same
-- numbers.
SET client_min_messages = warning;
CREATE ROLE regress_recsys_evaluator;
RESET client_min_messages;
GRANT SELECT ON ev_test TO regress_recsys_evaluator;
SET ROLE regress_recsys_evaluator;
SELECT count(*) FROM evaluate('ev_sum', 'ev_test', 2);
RESET ROLE;
SELECT grant_model('ev_sum', 'regress_recsys_evaluator');
SET ROLE regress_recsys_evaluator;
SELECT metric, round(model_value::numeric, 6) AS model_value, round(baseline_value::numeric, 6) AS baseline_value
FROM evaluate('ev_sum', 'ev_test', 2) WHERE metric IN ('ndcg', 'auc');
RESET ROLE;
SELECT revoke_model('ev_sum', 'regress_recsys_evaluator');
REVOKE SELECT ON ev_test FROM regress_recsys_evaluator;
DROP ROLE regress_recsys_evaluator;

-- An explicit model on a per-user holdout of the shared ratings: rating
-- error over the test pairs (the baseline predicts the training mean),
-- and ranking metrics computed the long way agree.
SELECT * FROM split_per_user('ratings', 'ev_ratings_train', 'ev_ratings_test', test_count => 1);
SET client_min_messages = warning;
CALL train('ev_als', 'ev_ratings_train', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
RESET client_min_messages;
CREATE TEMP TABLE ev_als_result AS SELECT * FROM evaluate('ev_als', 'ev_ratings_test', 2);
SELECT metric, at_k, evaluated, model_value BETWEEN 0 AND 10 AS sane FROM ev_als_result;
SELECT abs(e.model_value - x.rmse) < 1e-9 AS rmse_ok, abs(m.model_value - x.mae) < 1e-9 AS mae_ok,
       abs(e.baseline_value - x.base_rmse) < 1e-9 AS baseline_ok, e.model_value < e.baseline_value AS beats_mean
FROM ev_als_result e, ev_als_result m,
     (SELECT sqrt(avg((predict(user_id, item_id, 'ev_als') - rating) ^ 2)) AS rmse,
             avg(abs(predict(user_id, item_id, 'ev_als') - rating)) AS mae,
             sqrt(avg((g.global_mean - rating) ^ 2)) AS base_rmse
      FROM ev_ratings_test, (SELECT global_mean FROM recsys.models WHERE name = 'ev_als') g) x
WHERE e.metric = 'rmse' AND m.metric = 'mae';
SELECT abs(e.model_value - x.ndcg) < 1e-9 AS ndcg_ok
FROM ev_als_result e,
     (SELECT avg(ndcg_at_k(r.rec, ARRAY[t.item_id::bigint], 2)) AS ndcg
      FROM ev_ratings_test t
      CROSS JOIN LATERAL (SELECT array_agg(item_id ORDER BY score DESC, item_id) AS rec
                          FROM recommend(t.user_id, 2, 'ev_als')) r) x
WHERE e.metric = 'ndcg';
-- Liked items only (ratings of 4 and 5): the model, which knows tastes,
-- finds them better than popularity does.
SELECT metric, model_value > baseline_value AS beats_popular, evaluated
FROM evaluate('ev_als', 'ev_ratings_test', 2, relevance_threshold => 4)
WHERE metric IN ('ndcg', 'auc');

-- The fixture models: on their own training data there is nothing left
-- to recommend correctly (test items that are training items are never
-- relevant), so no user is evaluated; rating error is still measured.
SELECT metric, model_value IS NULL AS undefined, evaluated FROM evaluate('fixture', 'ratings', 3);
SELECT metric, evaluated FROM evaluate('clicks', 'events', 3) WHERE metric IN ('ndcg', 'auc');

-- Bad input
SELECT * FROM evaluate('ev_sum', 'ev_test', 0);
SELECT * FROM evaluate('ev_sum', 'ev_test', NULL);
SELECT * FROM evaluate(NULL, 'ev_test');
SELECT * FROM evaluate('no_such_model', 'ev_test');
SELECT * FROM evaluate('ev_sum', 'no_such_table');
SELECT * FROM evaluate('ev_sum', 'ev_test', user_col => 'nobody');
SELECT * FROM evaluate('ev_sum', 'ev_test', value_col => 'nothing');
SELECT * FROM evaluate('ev_sum', 'ev_test', value_col => 'item_id');
SELECT * FROM evaluate('ev_count', 'ev_test', relevance_threshold => 3);
SELECT * FROM evaluate('ev_als', 'ev_test_renamed', user_col => 'who', item_col => 'what');
SELECT * FROM evaluate('ev_sum', 'ev_test', compute_auc => NULL);

SELECT drop_model('ev_sum'), drop_model('ev_count'), drop_model('ev_als');
DROP TABLE ev_train, ev_test, ev_test_renamed, ev_ratings_train, ev_ratings_test;
DROP TABLE sr_train, sr_test, sr2_train, sr2_test, pu_train, pu_test, tg_train, tg_test,
    st_train, st_test, tu_train, tu_test, interactions;
