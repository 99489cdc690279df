-- Implicit-feedback ALS and the popular baseline.
SET extra_float_digits = 0;

-- Clicks: users 1-4 use items 1-3, users 5-8 items 4-6, each missing one
-- item of their group; two stray clicks cross the groups.
CREATE TABLE events (user_id int, item_id int, clicks int);
INSERT INTO events VALUES
    (1, 1, 3), (1, 2, 1),
    (2, 1, 2), (2, 3, 4),
    (3, 2, 5), (3, 3, 1),
    (4, 1, 1), (4, 2, 2), (4, 3, 3), (4, 4, 1),
    (5, 4, 2), (5, 5, 3),
    (6, 4, 1), (6, 6, 2),
    (7, 5, 4), (7, 6, 1),
    (8, 4, 3), (8, 5, 1), (8, 6, 2), (8, 1, 1);

SET client_min_messages = warning;
CALL train('clicks', 'events', value_col => 'clicks', method => 'ials', factors => 2,
           iterations => 10, regularization => 0.1, alpha => 2, solver => 'cholesky');
RESET client_min_messages;

SELECT name, method, factors, params, num_users, num_items, num_interactions,
       global_mean, final_rmse IS NULL AS no_rmse
FROM recsys.models WHERE name = 'clicks';

-- Users 1-3 and 5-7 get the item of their group they miss first.
SELECT u.id, array_agg(r.item_id ORDER BY r.score DESC, r.item_id) AS items
FROM generate_series(1, 8) AS u(id) CROSS JOIN LATERAL recommend(u.id, 2, 'clicks') r
GROUP BY u.id ORDER BY u.id;

-- No biases; scores are x_u . y_i; exact ALS never increases the loss.
SELECT bool_and(bias = 0) AS no_bias FROM recsys.item_factors JOIN recsys.models USING (model_id)
WHERE name = 'clicks';
SELECT count(*) AS iterations, bool_and(rmse IS NULL) AS no_rmse,
       bool_and(loss <= prev * (1 + 1e-6)) AS loss_never_increases
FROM (SELECT l.loss, l.rmse, lag(l.loss, 1, 'infinity') OVER (ORDER BY iteration) AS prev
      FROM recsys.training_log l JOIN recsys.models m USING (model_id)
      WHERE m.name = 'clicks') l;

-- The conjugate-gradient solver with as many steps as factors solves each
-- 2 x 2 system exactly, so it lands on the Cholesky solver's model; with
-- the default 3 steps it ranks the same way on this data.
SET client_min_messages = warning;
CALL train('clicks_cg', 'events', value_col => 'clicks', method => 'ials', factors => 2,
           iterations => 10, regularization => 0.1, alpha => 2, solver => 'cg', cg_steps => 2);
CALL train('clicks_cg3', 'events', value_col => 'clicks', method => 'ials', factors => 2,
           iterations => 10, regularization => 0.1, alpha => 2);
RESET client_min_messages;
SELECT params->>'solver' AS solver, params->>'cg_steps' AS steps
FROM recsys.models WHERE name = 'clicks_cg3';
SELECT max(abs(a.f - b.f)) < 1e-3 AS cg_matches_cholesky
FROM (SELECT u.user_id, f, i FROM recsys.user_factors u JOIN recsys.models m USING (model_id),
      unnest(u.factors) WITH ORDINALITY AS t(f, i) WHERE m.name = 'clicks') a
JOIN (SELECT u.user_id, f, i FROM recsys.user_factors u JOIN recsys.models m USING (model_id),
      unnest(u.factors) WITH ORDINALITY AS t(f, i) WHERE m.name = 'clicks_cg') b
USING (user_id, i);
SELECT bool_and((SELECT item_id FROM recommend(u.id, 1, 'clicks')) =
                (SELECT item_id FROM recommend(u.id, 1, 'clicks_cg3'))) AS same_top_item
FROM generate_series(1, 8) AS u(id);

-- Without a value column every row counts 1; duplicate events add up; the
-- raw values are kept in seen_values.
CREATE TABLE events_dup AS SELECT user_id, item_id FROM events;
INSERT INTO events_dup VALUES (1, 1), (1, 1);
SET client_min_messages = warning;
CALL train('plain', 'events_dup', method => 'ials', factors => 2, iterations => 3);
CALL train('logged', 'events', value_col => 'clicks', method => 'ials', factors => 2,
           iterations => 3, scaling => 'log', epsilon => 0.5, alpha => 4);
RESET client_min_messages;
SELECT num_interactions, duplicates, value_col FROM recsys.models WHERE name = 'plain';
SELECT user_id, seen, seen_values FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'plain' AND user_id IN (1, 2) ORDER BY user_id;
SELECT params FROM recsys.models WHERE name = 'logged';
SELECT count(*) FROM recommend(1, 3, 'logged');

-- The popular baseline: interaction counts without a value column, sums
-- of values with one; seen items excluded for known users.
SET client_min_messages = warning;
CALL train('pop', 'events', method => 'popular');
CALL train('pop_clicks', 'events', value_col => 'clicks', method => 'popular');
RESET client_min_messages;
SELECT name, method, factors, params, final_loss FROM recsys.models
WHERE name LIKE 'pop%' ORDER BY name;
SELECT * FROM recommend(424242, 3, 'pop');
SELECT * FROM recommend(424242, 3, 'pop_clicks');
SELECT * FROM recommend(1, 3, 'pop_clicks');
SELECT round(predict(1, 4, 'pop_clicks')::numeric, 2) AS item_4_clicks;
SELECT count(*) AS log_rows FROM recsys.training_log JOIN recsys.models USING (model_id)
WHERE name = 'pop';

-- The vector kernels: those for AVX2 and FMA (where the CPU has them)
-- and the baseline ones (recsys.vector_kernels = generic) train the same
-- model, up to float rounding: factors within 1e-3 of their largest
-- magnitude, losses within 1e-5 relative, the same top 10 for 9 in 10 users.
CREATE TABLE kernel_events AS
SELECT u AS user_id, i AS item_id, 1 + (u * 7 + i * 13) % 5 AS clicks
FROM generate_series(1, 300) u, generate_series(1, 200) i
WHERE (u * 31 + i * 17) % 7 = 0 OR (u % 10 = i % 10 AND i < 60);
SET client_min_messages = warning;
SET recsys.vector_kernels = generic;
CALL train('k_generic', 'kernel_events', value_col => 'clicks', method => 'ials',
           factors => 64, iterations => 5, regularization => 5, solver => 'cg');
RESET recsys.vector_kernels;
CALL train('k_auto', 'kernel_events', value_col => 'clicks', method => 'ials',
           factors => 64, iterations => 5, regularization => 5, solver => 'cg');
RESET client_min_messages;
SELECT max(abs(a.v - g.v)) <= 1e-3 * max(abs(g.v)) AS factors_agree
FROM (SELECT f.user_id, x.v, x.n FROM recsys.user_factors f JOIN recsys.models m USING (model_id),
             unnest(f.factors) WITH ORDINALITY AS x(v, n) WHERE m.name = 'k_auto') a
JOIN (SELECT f.user_id, x.v, x.n FROM recsys.user_factors f JOIN recsys.models m USING (model_id),
             unnest(f.factors) WITH ORDINALITY AS x(v, n) WHERE m.name = 'k_generic') g
  USING (user_id, n);
SELECT abs(a.final_loss - g.final_loss) <= 1e-5 * g.final_loss AS losses_agree
FROM recsys.models a, recsys.models g WHERE a.name = 'k_auto' AND g.name = 'k_generic';
SELECT count(*) FILTER (WHERE a = g) >= 0.9 * count(*) AS top10_agree
FROM (SELECT u, ARRAY(SELECT item_id FROM recommend(u, 10, 'k_auto') ORDER BY item_id) AS a,
             ARRAY(SELECT item_id FROM recommend(u, 10, 'k_generic') ORDER BY item_id) AS g
      FROM generate_series(1, 300) u) s;
SELECT drop_model('k_auto') AND drop_model('k_generic') AS dropped;
DROP TABLE kernel_events;

SELECT drop_model(name) FROM recsys.models WHERE name IN ('clicks_cg', 'clicks_cg3', 'plain', 'logged', 'pop_clicks') ORDER BY name;
