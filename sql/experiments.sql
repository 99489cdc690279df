-- A/B experiments: salted-hash assignment, serving through an experiment,
-- exposure and outcome logs, the report and its statistics, frozen
-- variants, bad input and privileges.  Runs after the 'fixture' (explicit)
-- and 'clicks' (implicit) models exist.
SET extra_float_digits = 0;
\set SHOW_CONTEXT never

--
-- Assignment hash: SipHash-2-4 with the key 00 01 .. 0f over the salt's
-- bytes and the user id as 8 bytes little-endian; the bucket is the top 53
-- bits.  The expected values were computed independently with OpenSSL:
--   printf 'abc\001\0\0\0\0\0\0\0' | openssl mac -macopt \
--     hexkey:000102030405060708090a0b0c0d0e0f -macopt size:8 SIPHASH
-- prints 391B673381FE71D6, read little-endian 0xd671fe8133671b39, whose top
-- 53 bits are 7545122864917731.
--
SELECT s.salt, s.user_id, (recsys.experiment_bucket(s.salt, s.user_id) * 2 ^ 53)::bigint AS top53
FROM (VALUES ('', 0::bigint), ('abc', 1), ('abc', -1), ('abc', 9223372036854775807),
             ('abc', -9223372036854775808), ('homepage-2024', 42),
             ('a salt longer than sixteen bytes', 123456789)) AS s(salt, user_id);
-- In [0, 1), the same on every call, and different salts are independent.
SELECT min(b) >= 0 AND max(b) < 1 AS in_range,
       bool_and(b = recsys.experiment_bucket('abc', u)) AS stable,
       abs(corr(b, recsys.experiment_bucket('xyz', u))) < 0.05 AS uncorrelated
FROM (SELECT u, recsys.experiment_bucket('abc', u) AS b FROM generate_series(1, 10000) u) s;

-- The split on 100,000 users matches the weights (exact counts; each
-- within 4 standard deviations of its expectation, and the chi-square test
-- of the counts against the weights does not reject them).
WITH w(weights) AS (VALUES ('{50,50}'::int[]), ('{90,10}'), ('{1,1,1}'), ('{2,1,1}')),
counts AS (
    SELECT w.weights, v, count(*) AS users
    FROM w CROSS JOIN generate_series(1, 100000) u
    CROSS JOIN LATERAL recsys.assign_variant('split-test', u, w.weights) v
    GROUP BY w.weights, v
)
SELECT c.weights, array_agg(c.users ORDER BY c.v) AS users,
       bool_and(abs(c.users - 100000.0 * c.weights[c.v] / t.total)
                < 4 * sqrt(100000.0 * c.weights[c.v] / t.total * (1 - c.weights[c.v]::float8 / t.total))) AS within_4_sd,
       recsys.sample_ratio_test(array_agg(c.users ORDER BY c.v), array_agg(c.weights[c.v]::float8 ORDER BY c.v)) > 0.001 AS no_mismatch
FROM counts c
CROSS JOIN LATERAL (SELECT sum(x) AS total FROM unnest(c.weights) x) t
GROUP BY c.weights ORDER BY c.weights;

-- The slot is floor(bucket * total weight), computed exactly: the same in
-- exact numeric arithmetic, also for a total weight near 2^31.
SELECT count(*) FILTER (WHERE v1 <> e1) AS mismatches_3,
       count(*) FILTER (WHERE v2 <> e2) AS mismatches_big,
       count(*) FILTER (WHERE v2 = 2) AS second_of_big
FROM (
    SELECT recsys.assign_variant('exact', u, '{1,1,1}') AS v1,
           floor(m * 3 / 9007199254740992) + 1 AS e1,
           recsys.assign_variant('exact', u, '{1500000000,647483647}') AS v2,
           CASE WHEN floor(m * 2147483647 / 9007199254740992) < 1500000000 THEN 1 ELSE 2 END AS e2
    FROM (SELECT u, (recsys.experiment_bucket('exact', u) * 2 ^ 53)::bigint::numeric AS m
          FROM generate_series(1, 100000) u) s
) t;

--
-- Creating an experiment: named variants, each a model with options and
-- an integer weight (default 1); salt defaults to the name, control to the
-- first variant.
--
SET client_min_messages = warning;
CALL train('exp_pop', 'ratings', method => 'popular');
RESET client_min_messages;

SELECT create_experiment('homepage', $$[
    {"name": "als", "model": "fixture", "weight": 50},
    {"name": "popular", "model": "exp_pop", "weight": 30, "options": {"n": 2, "exclude_seen": false}},
    {"name": "ials", "model": "clicks", "weight": 20.0, "options": {"exclude_seen": true}}
]$$);
SELECT name, salt, control, status, winner, ended_at IS NULL AS open, created_at <= now() AS created
FROM recsys.experiments;
SELECT v.variant, v.position, v.model, v.weight, v.options
FROM recsys.experiment_variants v JOIN recsys.experiments e USING (experiment_id)
WHERE e.name = 'homepage' ORDER BY v.position;

-- A user's variant is the assignment of the salt with the weights, the
-- same in every call and every session.
SELECT u, experiment_variant('homepage', u) AS variant,
       (ARRAY['als', 'popular', 'ials'])[recsys.assign_variant('homepage', u, '{50,30,20}')] AS by_hash
FROM generate_series(1, 9) u;
CREATE TABLE exp_assigned AS
SELECT u, experiment_variant('homepage', u) AS variant FROM generate_series(1, 2000) u;
SELECT variant, count(*) FROM exp_assigned GROUP BY variant ORDER BY variant;
\c
SET extra_float_digits = 0;
\set SHOW_CONTEXT never
SELECT count(*) FILTER (WHERE a.variant = experiment_variant('homepage', a.u)) AS same_in_new_session,
       count(*) AS users
FROM exp_assigned a;
DROP TABLE exp_assigned;
SELECT experiment_variant('homepage', NULL) IS NULL AS null_user;

-- Errors as rows: the SQLSTATE and the message of a statement.
CREATE FUNCTION pg_temp.fails(stmt text, OUT code text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    code := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
END $$;

--
-- Serving: the user's variant serves recommend() with its model and
-- options (n and exclude_seen override the call), and the list is logged.
-- Users 1, 2, 5 and 6 are in 'als', 4 and 7 in 'popular', 3 and 9 in 'ials'.
--
SELECT item_id, score > 0 AS scored, variant FROM recommend_experiment('homepage', 1, 3);
SELECT item_id, variant FROM recommend_experiment('homepage', 2, 3);
SELECT item_id, variant FROM recommend_experiment('homepage', 9, 2);
-- The same lists as recommend() with the variant's model and options.
SELECT bool_and(e.item_id = r.item_id AND e.score = r.score) AS same, count(*)
FROM recommend_experiment('homepage', 5, 5, log_exposure => false) WITH ORDINALITY e
JOIN recommend(5, 5, 'fixture') WITH ORDINALITY r USING (ordinality);
SELECT array_agg(item_id) AS items, array_agg(item_id) = (SELECT array_agg(item_id)
           FROM recommend(4, 2, 'exp_pop', exclude_seen => false)) AS same
FROM recommend_experiment('homepage', 4, 10, log_exposure => false);
-- candidates and exclude are passed through.
-- (User 6 has seen items 1, 3, 4 and 6.)
SELECT item_id FROM recommend_experiment('homepage', 6, 3, candidates => ARRAY[2, 3, 5],
                                         exclude => ARRAY[5], log_exposure => false);
-- A user the model does not know gets its popular items, still logged.
SELECT item_id, variant FROM recommend_experiment('homepage', 424242, 2);
-- A NULL user gets no rows and logs nothing.
SELECT count(*) FROM recommend_experiment('homepage', NULL);

-- One exposure per logged call, with the items in order and the model's
-- version at serving time; nothing for log_exposure => false.
SELECT x.user_id, x.variant, x.items, x.model_version = m.version AS current_version,
       x.shown_at <= clock_timestamp() AS stamped
FROM recsys.experiment_exposures x
JOIN recsys.experiments e USING (experiment_id)
JOIN recsys.experiment_variants v USING (experiment_id, variant)
JOIN recsys.models m ON m.name = v.model
WHERE e.name = 'homepage' ORDER BY x.exposure_id;

-- Retraining a variant's model is allowed: later exposures record the new
-- version.  (The variant's n = 2 overrides the call's 5.)
SELECT version AS old_version FROM recsys.models WHERE name = 'exp_pop' \gset
SET client_min_messages = warning;
CALL train('exp_pop', 'ratings', method => 'popular');
RESET client_min_messages;
SELECT min(u) AS pop_user FROM generate_series(10, 100) u WHERE experiment_variant('homepage', u) = 'popular' \gset
SELECT item_id, variant FROM recommend_experiment('homepage', :pop_user, 5);
SELECT x.variant, x.items, x.model_version > :old_version AS new_version
FROM recsys.experiment_exposures x JOIN recsys.experiments e USING (experiment_id)
WHERE e.name = 'homepage' AND x.user_id = :pop_user;

-- Lists served elsewhere are logged with log_exposure, which returns the
-- user's variant.
SELECT log_exposure('homepage', 1, ARRAY[5, 4]) AS variant;
SELECT log_exposure('homepage', 5) AS variant;

-- Outcomes go to the user's variant and to their latest exposure that
-- showed the item (else their latest exposure); a user never exposed gives
-- an unattributed outcome.
SELECT log_outcome('homepage', 1, 3) AS variant;                     -- the list with item 3
SELECT log_outcome('homepage', 1, 1) AS variant;                     -- not shown: latest list
SELECT log_outcome('homepage', 2, 5, 'purchase', 19.99) AS variant;
SELECT log_outcome('homepage', 9, kind => 'purchase', value => 5) AS variant;
SELECT log_outcome('homepage', 7) AS variant;                        -- never exposed
SELECT o.user_id, o.variant, o.item_id, o.kind, o.value, x.items AS attributed_to
FROM recsys.experiment_outcomes o
JOIN recsys.experiments e USING (experiment_id)
LEFT JOIN recsys.experiment_exposures x USING (exposure_id)
WHERE e.name = 'homepage' ORDER BY o.outcome_id;

SELECT variant, is_control, exposed_users, exposures, converted_users, outcomes,
       clicked_exposures, unattributed_outcomes, round(conversion_rate::numeric, 4) AS conversion
FROM experiment_report('homepage');
SELECT variant, outcomes, outcome_value, converted_users
FROM experiment_report('homepage', 'purchase');

--
-- Variants are frozen: no weight, model or name changes, no removal, no
-- new variant once something is logged; the salt and control stay.
--
SELECT * FROM pg_temp.fails($$UPDATE recsys.experiment_variants SET weight = 90 WHERE variant = 'als'$$);
SELECT * FROM pg_temp.fails($$UPDATE recsys.experiment_variants SET model = 'clicks' WHERE variant = 'als'$$);
SELECT * FROM pg_temp.fails($$DELETE FROM recsys.experiment_variants WHERE variant = 'ials'$$);
SELECT * FROM pg_temp.fails($$INSERT INTO recsys.experiment_variants
    SELECT experiment_id, 'late', 4, 'fixture', 10, '{}' FROM recsys.experiments WHERE name = 'homepage'$$);
SELECT * FROM pg_temp.fails($$UPDATE recsys.experiments SET salt = 'other' WHERE name = 'homepage'$$);
SELECT * FROM pg_temp.fails($$UPDATE recsys.experiments SET control = 'ials' WHERE name = 'homepage'$$);
UPDATE recsys.experiment_variants SET weight = 1 WHERE variant = 'als';
SELECT sum(weight) AS total_weight FROM recsys.experiment_variants;

-- A model dropped while the experiment runs: a clear error for its users.
SET client_min_messages = warning;
CALL train('exp_tmp', 'ratings', method => 'popular');
RESET client_min_messages;
SELECT create_experiment('short', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "exp_tmp"}]',
                         salt => 'short-salt', control => 'b');
SELECT min(u) AS b_user FROM generate_series(1, 100) u WHERE experiment_variant('short', u) = 'b' \gset
SELECT drop_model('exp_tmp');
SELECT * FROM recommend_experiment('short', :b_user);
SELECT count(*) FROM recommend_experiment('short', (SELECT min(u) FROM generate_series(1, 100) u
                                                   WHERE experiment_variant('short', u) = 'a'));

--
-- Ending: everyone gets the winner (default: the control), nothing more is
-- logged, and the log functions return NULL.
--
SELECT end_experiment('short', winner => 'a');
SELECT status, winner, control, ended_at >= created_at AS ended FROM recsys.experiments WHERE name = 'short';
SELECT count(*) AS rows, min(variant) AS variant FROM recommend_experiment('short', :b_user);
SELECT experiment_variant('short', :b_user) AS variant;
SELECT log_exposure('short', 1) AS exposure, log_outcome('short', 1, 3) AS outcome;
-- Only the list served to the 'a' user before the end was logged.
SELECT count(*) AS logged FROM recsys.experiment_exposures JOIN recsys.experiments USING (experiment_id)
WHERE name = 'short';
SELECT end_experiment('short');
SELECT * FROM pg_temp.fails($$UPDATE recsys.experiments SET status = 'running', ended_at = NULL, winner = NULL
    WHERE name = 'short'$$);
SELECT drop_experiment('short');
SELECT drop_experiment('short', if_exists => true);

--
-- Statistics, against values computed independently (40-digit mpmath):
-- Wilson 100/1000 at 95%: [0.0829094435930957, 0.120151963195348];
-- control 100/1000 vs 130/1000: difference 0.03, Newcombe interval
-- [0.00200234871528300, 0.0580704850222028], pooled z 2.10274060562211,
-- two-sided p 0.0354884504664747.
--
SELECT round(low::numeric, 12) AS low, round(high::numeric, 12) AS high FROM recsys.wilson_interval(100, 1000);
SELECT round(low::numeric, 12) AS low, round(high::numeric, 12) AS high FROM recsys.wilson_interval(100, 1000, 0.99);
SELECT round(difference::numeric, 12) AS difference, round(low::numeric, 12) AS low,
       round(high::numeric, 12) AS high, round(z::numeric, 12) AS z, round(p_value::numeric, 12) AS p_value
FROM recsys.two_proportion_test(100, 1000, 130, 1000);
-- Symmetric: swapping the sides flips the signs and keeps p.
SELECT round(difference::numeric, 12) AS difference, round(low::numeric, 12) AS low,
       round(high::numeric, 12) AS high, round(z::numeric, 12) AS z, round(p_value::numeric, 12) AS p_value
FROM recsys.two_proportion_test(130, 1000, 100, 1000);
-- Edges: no successes, all successes, no trials (NULL), no variation (no
-- test), unequal sizes.
SELECT low, round(high::numeric, 12) AS high FROM recsys.wilson_interval(0, 10);
SELECT round(low::numeric, 12) AS low, high FROM recsys.wilson_interval(10, 10);
SELECT low IS NULL AND high IS NULL AS undefined FROM recsys.wilson_interval(0, 0);
SELECT difference, low, high, z, p_value FROM recsys.two_proportion_test(0, 0, 1, 10);
SELECT difference, round(low::numeric, 12) AS low, round(high::numeric, 12) AS high, z, p_value
FROM recsys.two_proportion_test(0, 10, 0, 20);
SELECT round(difference::numeric, 12) AS difference, round(z::numeric, 12) AS z,
       round(p_value::numeric, 12) AS p_value
FROM recsys.two_proportion_test(5, 50, 30, 120);
-- Sample ratio mismatch: chi-square p-values (1 df: erfc(sqrt(X^2/2));
-- 2 df: exp(-X^2/2)).
SELECT round(recsys.sample_ratio_test('{510,490}', '{1,1}')::numeric, 12) AS p_1df,
       round(recsys.sample_ratio_test('{330,340,330}', '{1,1,1}')::numeric, 12) AS p_2df,
       round(recsys.sample_ratio_test('{600,400}', '{1,1}')::numeric * 1e10, 6) AS p_mismatch_e10,
       round(recsys.sample_ratio_test('{450,300,250}', '{45,30,25}')::numeric, 12) AS p_exact,
       recsys.sample_ratio_test('{0,0}', '{1,1}') AS p_nothing;

--
-- The report on fixed data: 1,000 exposed users per side, 100 converting
-- under the control and 130 under the treatment (the numbers above); the
-- first 200 users of each side saw two lists; 10 treatment users clicked
-- twice; one unexposed control user clicked.
--
SELECT create_experiment('fixed', '[{"name": "control", "model": "fixture"},
                                    {"name": "treatment", "model": "clicks"}]');
CREATE TEMP TABLE exp_users AS
SELECT u, v, row_number() OVER (PARTITION BY v ORDER BY u) AS rank
FROM (SELECT u, experiment_variant('fixed', u) AS v FROM generate_series(1, 3000) u) s;
SELECT count(*) FROM (
    SELECT log_exposure('fixed', u, ARRAY[1, 2, 3]) FROM exp_users WHERE rank <= 1000 ORDER BY u
) s;
SELECT count(*) FROM (
    SELECT log_exposure('fixed', u, ARRAY[4, 5, 6]) FROM exp_users WHERE rank <= 200 ORDER BY u
) s;
SELECT count(*) FROM (
    SELECT log_outcome('fixed', u, 2) FROM exp_users
    WHERE (v = 'control' AND rank <= 100) OR (v = 'treatment' AND rank <= 130) ORDER BY u
) s;
SELECT count(*) FROM (
    SELECT log_outcome('fixed', u, 2) FROM exp_users WHERE v = 'treatment' AND rank <= 10 ORDER BY u
) s;
SELECT log_outcome('fixed', (SELECT min(u) FROM exp_users WHERE v = 'control' AND rank > 1000), 1);

SELECT variant, is_control, exposed_users, exposures, converted_users, outcomes,
       clicked_exposures, unattributed_outcomes
FROM experiment_report('fixed');
SELECT variant, round(conversion_rate::numeric, 6) AS rate, round(conversion_low::numeric, 12) AS low,
       round(conversion_high::numeric, 12) AS high
FROM experiment_report('fixed');
SELECT variant, round(ctr::numeric, 6) AS ctr, round(ctr_low::numeric, 12) AS low,
       round(ctr_high::numeric, 12) AS high
FROM experiment_report('fixed');
SELECT variant, round(difference::numeric, 12) AS difference, round(difference_low::numeric, 12) AS low,
       round(difference_high::numeric, 12) AS high, round(relative_lift::numeric, 12) AS lift,
       round(z::numeric, 12) AS z, round(p_value::numeric, 12) AS p_value, significant,
       srm_p_value
FROM experiment_report('fixed');
-- At 99% the same difference is not significant.
SELECT variant, round(difference_low::numeric, 12) AS low, round(p_value::numeric, 12) AS p_value, significant
FROM experiment_report('fixed', confidence => 0.99);
-- An outcome kind nobody logged: zeros, and no test.
SELECT variant, exposed_users, converted_users, conversion_rate, z, p_value
FROM experiment_report('fixed', 'purchase');

--
-- Bad input: clean errors with the right SQLSTATE.
--
\set VERBOSITY default
SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "weight": 0}, {"name": "b", "model": "fixture"}]');
SELECT create_experiment('bad', '[{"name": "a", "model": "no_such_model"}, {"name": "b", "model": "fixture"}]');
SELECT create_experiment('bad', '[{"name": "a", "model": "fixture"}, {"name": "a", "model": "clicks"}]');
SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "wieght": 5}, {"name": "b", "model": "fixture"}]');
SELECT create_experiment('bad', '[{"name": "a", "model": "fixture"}]');
SELECT end_experiment('homepage', winner => 'nope');
SELECT * FROM experiment_report('homepage', confidence => 1);

SELECT c.label, f.code, f.message
FROM (VALUES
    ('name null',          $$SELECT create_experiment(NULL, '[]')$$),
    ('name empty',         $$SELECT create_experiment('', '[]')$$),
    ('name too long',      $$SELECT create_experiment(repeat('x', 129), '[]')$$),
    ('name taken',         $$SELECT create_experiment('homepage', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "fixture"}]')$$),
    ('variants null',      $$SELECT create_experiment('bad', NULL)$$),
    ('variants object',    $$SELECT create_experiment('bad', '{"name": "a"}')$$),
    ('no variants',        $$SELECT create_experiment('bad', '[]')$$),
    ('variant not object', $$SELECT create_experiment('bad', '[1, 2]')$$),
    ('no name',            $$SELECT create_experiment('bad', '[{"model": "fixture"}, {"name": "b", "model": "fixture"}]')$$),
    ('name not string',    $$SELECT create_experiment('bad', '[{"name": 5, "model": "fixture"}, {"name": "b", "model": "fixture"}]')$$),
    ('variant name empty', $$SELECT create_experiment('bad', '[{"name": "", "model": "fixture"}, {"name": "b", "model": "fixture"}]')$$),
    ('no model',           $$SELECT create_experiment('bad', '[{"name": "a"}, {"name": "b", "model": "fixture"}]')$$),
    ('negative weight',    $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "weight": -5}, {"name": "b", "model": "fixture"}]')$$),
    ('fractional weight',  $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "weight": 12.5}, {"name": "b", "model": "fixture"}]')$$),
    ('weight string',      $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "weight": "50"}, {"name": "b", "model": "fixture"}]')$$),
    ('weight null',        $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "weight": null}, {"name": "b", "model": "fixture"}]')$$),
    ('weights overflow',   $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "weight": 2147483647}, {"name": "b", "model": "fixture"}]')$$),
    ('options not object', $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "options": [1]}, {"name": "b", "model": "fixture"}]')$$),
    ('unknown option',     $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "options": {"k": 5}}, {"name": "b", "model": "fixture"}]')$$),
    ('option n zero',      $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "options": {"n": 0}}, {"name": "b", "model": "fixture"}]')$$),
    ('option n fraction',  $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "options": {"n": 2.5}}, {"name": "b", "model": "fixture"}]')$$),
    ('exclude_seen text',  $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture", "options": {"exclude_seen": "yes"}}, {"name": "b", "model": "fixture"}]')$$),
    ('unknown control',    $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "fixture"}]', control => 'c')$$),
    ('empty salt',         $$SELECT create_experiment('bad', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "fixture"}]', salt => '')$$),
    ('end null',           $$SELECT end_experiment(NULL)$$),
    ('end unknown',        $$SELECT end_experiment('nope')$$),
    ('drop null',          $$SELECT drop_experiment(NULL)$$),
    ('drop unknown',       $$SELECT drop_experiment('nope')$$),
    ('variant null exp',   $$SELECT experiment_variant(NULL, 1)$$),
    ('variant unknown',    $$SELECT experiment_variant('nope', 1)$$),
    ('serve null exp',     $$SELECT * FROM recommend_experiment(NULL, 1)$$),
    ('serve unknown',      $$SELECT * FROM recommend_experiment('nope', 1)$$),
    ('serve null n',       $$SELECT * FROM recommend_experiment('homepage', 1, NULL)$$),
    ('serve n zero',       $$SELECT * FROM recommend_experiment('homepage', 1, 0)$$),
    ('serve null log',     $$SELECT * FROM recommend_experiment('homepage', 1, log_exposure => NULL)$$),
    ('exposure null user', $$SELECT log_exposure('homepage', NULL)$$),
    ('exposure null item', $$SELECT log_exposure('homepage', 1, ARRAY[1, NULL])$$),
    ('exposure unknown',   $$SELECT log_exposure('nope', 1)$$),
    ('outcome null exp',   $$SELECT log_outcome(NULL, 1)$$),
    ('outcome null user',  $$SELECT log_outcome('homepage', NULL)$$),
    ('outcome null kind',  $$SELECT log_outcome('homepage', 1, kind => NULL)$$),
    ('outcome empty kind', $$SELECT log_outcome('homepage', 1, kind => '')$$),
    ('outcome null value', $$SELECT log_outcome('homepage', 1, value => NULL)$$),
    ('outcome NaN',        $$SELECT log_outcome('homepage', 1, value => 'NaN')$$),
    ('outcome infinite',   $$SELECT log_outcome('homepage', 1, value => '-Infinity')$$),
    ('outcome unknown',    $$SELECT log_outcome('nope', 1)$$),
    ('report null exp',    $$SELECT * FROM experiment_report(NULL)$$),
    ('report unknown',     $$SELECT * FROM experiment_report('nope')$$),
    ('report null kind',   $$SELECT * FROM experiment_report('homepage', NULL)$$),
    ('report conf null',   $$SELECT * FROM experiment_report('homepage', confidence => NULL)$$),
    ('report conf 0',      $$SELECT * FROM experiment_report('homepage', confidence => 0)$$),
    ('report conf 1.5',    $$SELECT * FROM experiment_report('homepage', confidence => 1.5)$$),
    ('report conf NaN',    $$SELECT * FROM experiment_report('homepage', confidence => 'NaN')$$),
    ('assign empty',       $$SELECT recsys.assign_variant('s', 1, '{}')$$),
    ('assign null weight', $$SELECT recsys.assign_variant('s', 1, '{1,NULL}')$$),
    ('assign zero weight', $$SELECT recsys.assign_variant('s', 1, '{1,0}')$$),
    ('assign 2-D',         $$SELECT recsys.assign_variant('s', 1, '{{1,1},{1,1}}')$$),
    ('assign overflow',    $$SELECT recsys.assign_variant('s', 1, '{2147483647,1}')$$),
    ('wilson x > n',       $$SELECT * FROM recsys.wilson_interval(11, 10)$$),
    ('wilson negative',    $$SELECT * FROM recsys.wilson_interval(-1, 10)$$),
    ('wilson conf 1',      $$SELECT * FROM recsys.wilson_interval(1, 10, 1)$$),
    ('test x > n',         $$SELECT * FROM recsys.two_proportion_test(1, 10, 11, 10)$$),
    ('test conf -1',       $$SELECT * FROM recsys.two_proportion_test(1, 10, 1, 10, -1)$$),
    ('srm lengths',        $$SELECT recsys.sample_ratio_test('{1,2}', '{1,1,1}')$$),
    ('srm one group',      $$SELECT recsys.sample_ratio_test('{1}', '{1}')$$),
    ('srm negative',       $$SELECT recsys.sample_ratio_test('{1,-2}', '{1,1}')$$),
    ('srm zero weight',    $$SELECT recsys.sample_ratio_test('{1,2}', '{1,0}')$$),
    ('srm null',           $$SELECT recsys.sample_ratio_test('{1,NULL}', '{1,1}')$$)
) AS c(label, stmt)
CROSS JOIN LATERAL pg_temp.fails(c.stmt) f;
-- Nothing was created, changed or logged by the failures.
SELECT name, status FROM recsys.experiments ORDER BY name;
SELECT count(*) AS outcomes FROM recsys.experiment_outcomes JOIN recsys.experiments USING (experiment_id)
WHERE name = 'homepage';
-- Strict helpers give NULL for NULL input.
SELECT recsys.experiment_bucket(NULL, 1) IS NULL AS a, recsys.assign_variant('s', NULL, '{1}') IS NULL AS b,
       (recsys.wilson_interval(NULL, 10)).low IS NULL AS c;

--
-- Privileges: nothing is SECURITY DEFINER; an application role with the
-- documented grants serves, logs and reads the report, and cannot create
-- or change experiments.
--
SELECT p.proname, p.provolatile, p.proparallel, p.prosecdef,
       coalesce(array_to_string(p.proconfig, ','), '') AS config
FROM pg_proc p
WHERE p.proname IN ('experiment_bucket', 'assign_variant', 'wilson_interval', 'two_proportion_test',
                    'sample_ratio_test', 'create_experiment', 'end_experiment', 'drop_experiment',
                    'experiment_variant', 'recommend_experiment', 'log_exposure', 'log_outcome',
                    'experiment_report', 'experiments_guard', 'experiment_variants_guard',
                    'grant_experiment', 'revoke_experiment', 'experiment_privilege', 'owned_experiment')
ORDER BY p.proname;

-- Ownership: an experiment belongs to the role that created it; other
-- roles see it only after grant_experiment(), and then may serve through
-- it, log and read the report, but not end, drop, grant or change it.
SET client_min_messages = warning;
CREATE ROLE regress_exp_app;
CREATE ROLE regress_exp_other;
RESET client_min_messages;
-- Serving a variant also needs what recommend() needs: serve on its model.
SELECT grant_model(m, 'regress_exp_app') FROM unnest(ARRAY['fixture', 'clicks', 'exp_pop']) m;
SELECT grant_model('fixture', 'regress_exp_other');
SELECT name, owner = current_user::regrole AS mine FROM recsys.experiments ORDER BY name;
SET ROLE regress_exp_app;
-- Not granted yet: the experiment does not exist for this role.
SELECT * FROM pg_temp.fails($$SELECT count(*) FROM recommend_experiment('homepage', 4, 2)$$);
SELECT * FROM pg_temp.fails($$SELECT log_outcome('homepage', 4, kind => 'purchase', value => 7.5)$$);
SELECT * FROM pg_temp.fails($$SELECT * FROM experiment_report('homepage')$$);
SELECT count(*) AS visible_rows FROM recsys.experiments, recsys.experiment_variants,
       recsys.experiment_exposures;
RESET ROLE;
SELECT grant_experiment('homepage', 'regress_exp_app');
SELECT e.name, g.grantee FROM recsys.experiment_grants g JOIN recsys.experiments e USING (experiment_id);
SET ROLE regress_exp_app;
SELECT count(*) AS served FROM recommend_experiment('homepage', 4, 2);
SELECT log_outcome('homepage', 4, kind => 'purchase', value => 7.5) AS variant;
SELECT variant, exposed_users FROM experiment_report('homepage') ORDER BY variant;
-- Only the owner ends, drops, grants, revokes and changes it; no role but
-- the extension's owner may write the tables directly.
SELECT * FROM pg_temp.fails($$SELECT end_experiment('homepage')$$);
SELECT * FROM pg_temp.fails($$SELECT drop_experiment('homepage')$$);
SELECT * FROM pg_temp.fails($$SELECT grant_experiment('homepage', 'regress_exp_other')$$);
SELECT * FROM pg_temp.fails($$SELECT revoke_experiment('homepage', 'regress_exp_app')$$);
SELECT * FROM pg_temp.fails($$DELETE FROM recsys.experiment_exposures$$);
SELECT * FROM pg_temp.fails($$UPDATE recsys.experiments SET status = 'ended', ended_at = now(), winner = control$$);
-- Its gates do no more than the functions: the app may log under the
-- user's variant, not another, and may not end the experiment.
SELECT * FROM pg_temp.fails($$SELECT recsys.write_experiment_end(
    (SELECT experiment_id FROM recsys.experiments WHERE name = 'homepage'), 'als')$$);
SELECT * FROM pg_temp.fails($$SELECT recsys.write_experiment_exposure(
    (SELECT experiment_id FROM recsys.experiments WHERE name = 'homepage'),
    CASE experiment_variant('homepage', 4) WHEN 'als' THEN 'ials' ELSE 'als' END, 4, '{1}', NULL)$$);
SELECT recsys.write_experiment_exposure(
    (SELECT experiment_id FROM recsys.experiments WHERE name = 'homepage'),
    experiment_variant('homepage', 4), 4, '{1}', NULL) > 0 AS logged_own_variant;
-- Any role may create its own experiments over models it can serve.
SELECT create_experiment('mine', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "clicks"}]');
SELECT experiment_variant('mine', 1) IS NOT NULL AS assigned;
RESET ROLE;
SELECT name, owner FROM recsys.experiments WHERE name = 'mine';
SET ROLE regress_exp_other;
SELECT * FROM pg_temp.fails($$SELECT experiment_variant('mine', 1)$$);
SELECT * FROM pg_temp.fails($$SELECT end_experiment('mine')$$);
-- The name is taken even though this role cannot see the experiment.
SELECT * FROM pg_temp.fails($$SELECT create_experiment('mine', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "fixture"}]')$$);
-- A variant's model it cannot serve is reported as not existing.
SELECT * FROM pg_temp.fails($$SELECT create_experiment('other', '[{"name": "a", "model": "fixture"}, {"name": "b", "model": "clicks"}]')$$);
SET ROLE regress_exp_app;
SELECT drop_experiment('mine');
RESET ROLE;
SELECT revoke_experiment('homepage', 'regress_exp_app') AS revoked,
       revoke_experiment('homepage', 'regress_exp_app') AS revoked_again;
SET ROLE regress_exp_app;
SELECT * FROM pg_temp.fails($$SELECT experiment_variant('homepage', 4)$$);
RESET ROLE;

-- Shadowing operators and tables on search_path changes nothing.
CREATE SCHEMA exp_evil;
CREATE TABLE exp_evil.experiments (name text, experiment_id bigint);
CREATE FUNCTION exp_evil.never(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR exp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = exp_evil.never);
CREATE FUNCTION exp_evil.never(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR exp_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = exp_evil.never);
SET search_path = exp_evil, pg_catalog, public;
SELECT public.experiment_variant('homepage', 1) AS variant;
SELECT count(*) AS served FROM public.recommend_experiment('homepage', 1, 2, log_exposure => false);
SELECT public.log_outcome('homepage', 1, 6) AS variant;
SELECT variant, exposed_users FROM public.experiment_report('homepage') ORDER BY variant;
RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA exp_evil CASCADE;
RESET client_min_messages;

--
-- Dropping: the variants, exposures and outcomes go too, also when the
-- experiment row is deleted directly.
--
SELECT drop_experiment('homepage');
DELETE FROM recsys.experiments WHERE name = 'fixed';
SELECT (SELECT count(*) FROM recsys.experiments) AS experiments,
       (SELECT count(*) FROM recsys.experiment_variants) AS variants,
       (SELECT count(*) FROM recsys.experiment_exposures) AS exposures,
       (SELECT count(*) FROM recsys.experiment_outcomes) AS outcomes;

SELECT revoke_model(m, 'regress_exp_app') FROM unnest(ARRAY['fixture', 'clicks', 'exp_pop']) m;
SELECT revoke_model('fixture', 'regress_exp_other');
SET client_min_messages = warning;
DROP OWNED BY regress_exp_app, regress_exp_other;
DROP ROLE regress_exp_app, regress_exp_other;
RESET client_min_messages;
SELECT drop_model('exp_pop');
