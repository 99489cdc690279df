-- The als_solve aggregate: hand-checkable solves, agreement with training,
-- parallel execution, and bad input.
SET extra_float_digits = 0;

-- One unknown: w = sum(x y) / (sum(x^2) + lambda n).
SELECT als_solve(x, y, 0) FROM (VALUES ('{1}'::real[], 2.0), ('{1}', 4.0)) v(x, y);
SELECT als_solve(x, y, 0.5) FROM (VALUES ('{1}'::real[], 2.0), ('{1}', 4.0)) v(x, y);

-- Two unknowns, exact fit: y = 2 a - b.
SELECT als_solve(x, y, 0)
FROM (VALUES ('{1,0}'::real[], 2.0), ('{0,1}', -1.0), ('{1,1}', 1.0)) v(x, y);

-- Rows with a NULL array or value are skipped; no rows give NULL.
SELECT als_solve(x, y, 0)
FROM (VALUES ('{1}'::real[], 2.0), (NULL, 5.0), ('{1}', NULL)) v(x, y);
SELECT als_solve(x, y, 0.1) IS NULL AS empty
FROM (VALUES ('{1}'::real[], 2.0)) v(x, y) WHERE false;

-- One GROUP BY query is one ALS half-step: with the stored item factors
-- augmented by a 1 for the bias, and targets net of mean and item bias, it
-- reproduces the user factors and biases that training stored.
SET client_min_messages = warning;
CALL train('fixture', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
RESET client_min_messages;
CREATE TEMP TABLE solved AS
SELECT r.user_id, als_solve(i.factors || 1::real, r.rating - m.global_mean - i.bias, 0.3) AS w
FROM ratings r
JOIN recsys.models m ON m.name = 'fixture'
JOIN recsys.item_factors i ON i.model_id = m.model_id AND i.item_id = r.item_id
GROUP BY r.user_id;
SELECT count(DISTINCT s.user_id) AS users, max(abs(s.w[j] - (u.factors || u.bias)[j])) < 1e-4 AS matches_training
FROM solved s
JOIN recsys.models m ON m.name = 'fixture'
JOIN recsys.user_factors u ON u.model_id = m.model_id AND u.user_id = s.user_id
CROSS JOIN generate_series(1, 3) AS j;

-- Run as a parallel aggregate (partial states serialized between
-- processes and combined), it gives the same result.
CREATE TABLE agg_rows AS
SELECT g % 50 AS grp, ARRAY[sin(g), cos(g), 1]::real[] AS x, (g % 7)::float8 AS y
FROM generate_series(1, 20000) g;
ANALYZE agg_rows;
CREATE TEMP TABLE serial AS SELECT grp, als_solve(x, y, 0.01) AS w FROM agg_rows GROUP BY grp;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT grp, als_solve(x, y, 0.01) FROM agg_rows GROUP BY grp;
CREATE TEMP TABLE par AS SELECT grp, als_solve(x, y, 0.01) AS w FROM agg_rows GROUP BY grp;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT count(DISTINCT grp) AS groups, max(abs(s.w[j] - p.w[j])) < 1e-5 AS same
FROM serial s JOIN par p USING (grp) CROSS JOIN generate_series(1, 3) j;

-- Bad input
SELECT als_solve(x, 1, 0.1) FROM (VALUES ('{1,NULL}'::real[])) v(x);
SELECT als_solve(x, 1, 0.1) FROM (VALUES ('{{1,2},{3,4}}'::real[])) v(x);
SELECT als_solve(x, 1, 0.1) FROM (VALUES ('{}'::real[])) v(x);
SELECT als_solve(x, 1, 0.1) FROM (VALUES ('{1,2}'::real[]), ('{1,2,3}')) v(x);
SELECT als_solve(x, 1, 0.1) FROM (VALUES ('{1,NaN}'::real[])) v(x);
SELECT als_solve(x, 1, 0.1) FROM (VALUES ('{1,Infinity}'::real[])) v(x);
SELECT als_solve('{1}', 'NaN', 0.1);
SELECT als_solve('{1}', 1, -0.1);
SELECT als_solve('{1}', 1, 'Infinity');
SELECT als_solve('{1}', 1, NULL);
SELECT als_solve(x, 1, r) FROM (VALUES ('{1}'::real[], 0.1), ('{1}', 0.2)) v(x, r);
-- Singular without regularization: two unknowns, one row.
SELECT als_solve('{1,1}', 1, 0);
