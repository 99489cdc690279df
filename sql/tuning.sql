-- Tuning: train_and_evaluate, k-fold splits, cross_validate, grid and
-- random search, early stopping, and cleanup (also after errors).
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
-- Training and progress NOTICEs carry timings.
SET client_min_messages = warning;

-- train_and_evaluate is CALL train + evaluate + drop_model in one call.
SELECT * FROM split_per_user('ratings', 'tn_train', 'tn_test', test_count => 1);
CALL train('tn_direct', 'tn_train', value_col => 'rating', factors => 2, iterations => 10,
           regularization => 0.3);
SELECT count(*) AS metrics, bool_and(a.model_value = b.model_value) AS same_model,
       bool_and(a.baseline_value = b.baseline_value) AS same_baseline
FROM evaluate('tn_direct', 'tn_test', 2) a
JOIN train_and_evaluate('tn_train', 'tn_test',
                        '{"factors": 2, "iterations": 10, "regularization": 0.3}', 2,
                        value_col => 'rating') b USING (metric);
SELECT drop_model('tn_direct');
SELECT count(*) AS temporary_models FROM recsys.models WHERE name LIKE '\_\_recsys%';

-- The k-fold splits: distinct (user, item) pairs in seeded-hash order dealt
-- out in turn, so the 32 pairs of ratings make folds of 8; every pair is
-- in exactly one test fold, never in its own fold's training table.
CREATE TEMP TABLE folds AS
SELECT * FROM recsys.eval_make_splits('ratings', 4, NULL, 42, 'user_id', 'item_id', 'rating', 'tn_folds');
SELECT train_table, test_table FROM folds ORDER BY 1;
SELECT (SELECT count(*) FROM pg_temp.tn_folds_test_1) AS f1, (SELECT count(*) FROM pg_temp.tn_folds_test_2) AS f2,
       (SELECT count(*) FROM pg_temp.tn_folds_test_3) AS f3, (SELECT count(*) FROM pg_temp.tn_folds_test_4) AS f4,
       (SELECT count(*) FROM pg_temp.tn_folds_train_1) AS train_1;
SELECT count(*) AS pairs, count(DISTINCT (user_id, item_id)) AS distinct_pairs FROM (
    SELECT * FROM pg_temp.tn_folds_test_1 UNION ALL SELECT * FROM pg_temp.tn_folds_test_2
    UNION ALL SELECT * FROM pg_temp.tn_folds_test_3 UNION ALL SELECT * FROM pg_temp.tn_folds_test_4) t;
SELECT count(*) AS overlap FROM pg_temp.tn_folds_train_2 a JOIN pg_temp.tn_folds_test_2 b USING (user_id, item_id);
SELECT attname FROM pg_attribute WHERE attrelid = 'pg_temp.tn_folds_train_1'::regclass AND attnum > 0 ORDER BY attnum;
DROP TABLE pg_temp.tn_folds_train_1, pg_temp.tn_folds_train_2, pg_temp.tn_folds_train_3, pg_temp.tn_folds_train_4,
    pg_temp.tn_folds_test_1, pg_temp.tn_folds_test_2, pg_temp.tn_folds_test_3, pg_temp.tn_folds_test_4, folds;

-- cross_validate: a popular model by counts is the baseline itself, so
-- mean and baseline_mean agree for every metric; no rating error rows for
-- a model without values.
SELECT metric, at_k, round(mean::numeric, 4) AS mean, round(stddev::numeric, 4) AS stddev,
       mean = baseline_mean AS same_as_baseline, stddev = baseline_stddev AS same_spread
FROM cross_validate('ratings', '{"method": "popular"}', folds => 4, k => 2);
-- An explicit model: rating error and ranking rows; reproducible; a
-- different seed makes different folds.
CREATE TEMP TABLE cv1 AS
SELECT * FROM cross_validate('ratings', '{"factors": 2, "iterations": 5, "regularization": 0.3}',
                             folds => 4, k => 2, value_col => 'rating');
CREATE TEMP TABLE cv2 AS
SELECT * FROM cross_validate('ratings', '{"factors": 2, "iterations": 5, "regularization": 0.3}',
                             folds => 4, k => 2, value_col => 'rating');
CREATE TEMP TABLE cv3 AS
SELECT * FROM cross_validate('ratings', '{"factors": 2, "iterations": 5, "regularization": 0.3}',
                             folds => 4, k => 2, seed => 7, value_col => 'rating');
SELECT metric, at_k, stddev >= 0 AS has_spread FROM cv1;
SELECT bool_and(a.mean = b.mean AND a.stddev = b.stddev AND a.baseline_mean = b.baseline_mean) AS reproducible
FROM cv1 a JOIN cv2 b USING (metric);
SELECT bool_or(a.mean <> c.mean) AS seed_matters FROM cv1 a JOIN cv3 c USING (metric);
-- Implicit: the model beats the popular baseline on its own groups.
SELECT metric, mean > baseline_mean AS beats_popular
FROM cross_validate('events', '{"method": "ials", "factors": 2, "iterations": 10, "alpha": 2, "solver": "cholesky"}',
                    folds => 3, k => 2, value_col => 'clicks')
WHERE metric = 'recall';

-- grid_search: the cartesian product in key order (first key slowest),
-- every trial in the results table, the best by the metric returned and
-- flagged.
SELECT trial, params FROM grid_search('events', '{"method": "ials", "factors": [1, 2], "alpha": [1, 4],
                                                   "iterations": 5, "solver": "cholesky"}',
                                      'tn_grid', k => 2, value_col => 'clicks') \gset best_
SELECT trial, params, value IS NOT NULL AS has_value, stddev IS NULL AS single_split,
       seconds >= 0 AS timed, checkpoints IS NULL AS no_checkpoints
FROM tn_grid ORDER BY trial;
SELECT count(*) FILTER (WHERE best) AS best_rows,
       (SELECT trial FROM tn_grid WHERE best) = :best_trial AS returned_best,
       max(ndcg) = (SELECT ndcg FROM tn_grid WHERE best) AS best_is_max,
       bool_and(value = ndcg) AS value_is_metric, count(DISTINCT baseline) AS one_baseline
FROM tn_grid;
-- Lower is better for rating error; with folds, each trial is a
-- cross-validation (mean and its standard deviation).
SELECT trial, params FROM grid_search('ratings', '{"factors": 2, "iterations": 5, "regularization": [0.05, 3]}',
                                      'tn_grid_rmse', metric => 'rmse', k => 2, folds => 3,
                                      value_col => 'rating');
SELECT trial, best, rmse = (SELECT min(rmse) FROM tn_grid_rmse) AS is_min, stddev > 0 AS spread,
       auc IS NULL AS auc_skipped
FROM tn_grid_rmse ORDER BY trial;
-- An existing results table needs replace.
SELECT trial FROM grid_search('events', '{"method": "popular"}', 'tn_grid', k => 2);
SELECT trial FROM grid_search('events', '{"method": "popular"}', 'tn_grid', k => 2, replace => true);
SELECT count(*) FROM tn_grid;

-- Early stopping: train with 5, 10, ... iterations (each run from the same
-- seeded start) and stop after `patience` checkpoints without
-- improvement.  With an enormous regularization every factor and bias is
-- (numerically) zero, every prediction is the mean and the test error is
-- flat: stopped after 5, 10, 15, keeping 5.
SELECT trial, params FROM grid_search('ratings', '{"factors": 2, "iterations": 40, "regularization": 1e30}',
                                      'tn_early', metric => 'rmse', value_col => 'rating',
                                      early_stopping => true, patience => 2, iterations_step => 5);
SELECT params ->> 'iterations' AS iterations,
       (SELECT array_agg(k::int ORDER BY k::int) FROM jsonb_object_keys(checkpoints) k) AS checkpoints
FROM tn_early;
-- Explicit ALS on this data keeps improving its test error up to the
-- maximum (12), checked every 3 iterations.
SELECT trial FROM grid_search('ratings', '{"factors": 2, "iterations": 12, "regularization": 0.3}', 'tn_early',
                              metric => 'rmse', value_col => 'rating', early_stopping => true,
                              iterations_step => 3, replace => true);
SELECT params ->> 'iterations' AS iterations,
       (SELECT array_agg(k::int ORDER BY k::int) FROM jsonb_object_keys(checkpoints) k) AS checkpoints,
       value = (SELECT min(v::float8) FROM jsonb_each_text(checkpoints) c(k, v)) AS best_checkpoint
FROM tn_early;

-- random_search: a list is a uniform choice, {"min", "max"} a uniform
-- range ("log": true, log-uniform), integers for train's integer
-- parameters; draws come from a seeded hash, so the same seed gives the
-- same trials.
SELECT count(*) AS best
FROM random_search('events', '{"method": "ials", "solver": "cholesky", "factors": [1, 2, 3],
                             "alpha": {"min": 0.5, "max": 8, "log": true},
                             "iterations": {"min": 2, "max": 6}}',
                   4, 'tn_random', k => 2, value_col => 'clicks');
SELECT trial, params ->> 'factors' AS factors, round((params ->> 'alpha')::numeric, 4) AS alpha,
       params ->> 'iterations' AS iterations, params ->> 'method' AS method
FROM tn_random ORDER BY trial;
SELECT bool_and((params ->> 'alpha')::float8 BETWEEN 0.5 AND 8) AS alpha_in_range,
       bool_and(jsonb_typeof(params -> 'iterations') = 'number'
                AND (params ->> 'iterations') ~ '^[0-9]+$'
                AND (params ->> 'iterations')::int BETWEEN 2 AND 6) AS integer_iterations,
       count(*) FILTER (WHERE best) AS best_rows
FROM tn_random;
CREATE TEMP TABLE tn_random_first AS SELECT trial, params FROM tn_random;
SELECT count(*) AS best
FROM random_search('events', '{"method": "ials", "solver": "cholesky", "factors": [1, 2, 3],
                             "alpha": {"min": 0.5, "max": 8, "log": true},
                             "iterations": {"min": 2, "max": 6}}',
                   4, 'tn_random', k => 2, value_col => 'clicks', replace => true);
SELECT bool_and(a.params = b.params) AS same_trials FROM tn_random_first a JOIN tn_random b USING (trial);
SELECT count(*) AS best
FROM random_search('events', '{"method": "ials", "solver": "cholesky", "factors": [1, 2, 3],
                             "alpha": {"min": 0.5, "max": 8, "log": true},
                             "iterations": {"min": 2, "max": 6}}',
                   4, 'tn_random', k => 2, value_col => 'clicks', seed => 7, replace => true);
SELECT bool_or(a.params <> b.params) AS seed_matters FROM tn_random_first a JOIN tn_random b USING (trial);

-- Nothing temporary is left: no models, no tables.
SELECT count(*) AS temporary_models FROM recsys.models WHERE name LIKE '\_\_recsys%';
SELECT count(*) AS temporary_tables FROM pg_class WHERE relname LIKE 'recsys\_tune\_%';

-- Bad input (progress NOTICEs stay hidden: they carry timings)
SELECT * FROM train_and_evaluate('tn_train', 'tn_test', '{"factor": 2}', value_col => 'rating');
SELECT * FROM train_and_evaluate('tn_train', 'tn_test', '[1, 2]', value_col => 'rating');
SELECT * FROM train_and_evaluate('tn_train', 'tn_test', '{"factors": [2, 3]}', value_col => 'rating');
SELECT * FROM train_and_evaluate('tn_train', 'tn_test', '{"model": "other"}', value_col => 'rating');
SELECT * FROM train_and_evaluate('tn_train', 'tn_test', '{"factors": 0}', value_col => 'rating');
SELECT * FROM cross_validate('ratings', '{"method": "popular"}', folds => 1);
SELECT * FROM cross_validate('ratings', '{"method": "popular"}', folds => 33);
SELECT * FROM cross_validate('ratings', '{"method": "popular"}', folds => NULL);
SELECT * FROM cross_validate('ratings', '{"method": "popular"}', k => 0);
SELECT * FROM cross_validate('ratings', '{"method": "popular"}', value_col => 'nothing');
SELECT * FROM grid_search('events', '{"method": "popular"}', 'tn_bad', metric => 'accuracy');
SELECT * FROM grid_search('events', '{"method": "popular", "iterations": 10}', 'tn_bad', early_stopping => true);
SELECT * FROM grid_search('events', '[1]', 'tn_bad');
SELECT * FROM grid_search('events', '{"factors": []}', 'tn_bad');
SELECT * FROM grid_search('events', '{"method": "popular"}', 'tn_bad', folds => 1);
SELECT * FROM grid_search('events', '{"method": "popular"}', 'tn_bad', test_fraction => 1);
SELECT * FROM grid_search('events', '{"method": "popular"}', 'tn_bad', early_stopping => true);
SELECT * FROM grid_search('events', '{"method": "popular", "iterations": 5}', 'tn_bad',
                          early_stopping => true, patience => 0);
SELECT * FROM random_search('events', '{"method": "popular"}', 0, 'tn_bad');
SELECT * FROM random_search('events', '{"method": "popular"}', 10001, 'tn_bad');
SELECT * FROM grid_search('events', '{"a": [1,2,3,4,5,6,7,8,9,10], "b": [1,2,3,4,5,6,7,8,9,10],
                                      "c": [1,2,3,4,5,6,7,8,9,10], "d": [1,2,3,4,5,6,7,8,9,10], "e": [1,2]}',
                          'tn_bad');
SELECT * FROM cross_validate('ratings', '{"method": "popular"}', user_col => 'item_id');
SELECT * FROM random_search('events', '{"alpha": {"min": 2, "max": 1}}', 2, 'tn_bad');
SELECT * FROM random_search('events', '{"alpha": {"min": 0, "max": 1, "log": true}}', 2, 'tn_bad');
SELECT * FROM random_search('events', '{"alpha": {"low": 0, "high": 1}}', 2, 'tn_bad');
SELECT * FROM random_search('events', '{"factors": []}', 2, 'tn_bad');
-- A trial that fails (factors 0) fails the whole call; its rollback takes
-- the temporary models and tables, and the results table, with it.
SELECT * FROM grid_search('events', '{"method": "ials", "factors": [1, 0], "iterations": 2}', 'tn_bad');
SELECT to_regclass('tn_bad') IS NULL AS no_results_table,
       (SELECT count(*) FROM recsys.models WHERE name LIKE '\_\_recsys%') AS temporary_models,
       (SELECT count(*) FROM pg_class WHERE relname LIKE 'recsys\_tune\_%') AS temporary_tables;

DROP TABLE tn_train, tn_test, tn_grid, tn_grid_rmse, tn_early, tn_random;
