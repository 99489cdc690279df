-- An ordinary login attacks another role's models and experiments: every
-- attack of the 1.1 security review, replayed, and its variations.  Each
-- must be refused or have no effect.  (Attacks that need two sessions at
-- once, lock squatting and forged shared-cache entries, are in TAP test
-- 013_attacks.pl.)
SET client_min_messages = warning;
CREATE ROLE regress_victim;
CREATE ROLE regress_attacker;
RESET client_min_messages;
CREATE TABLE victim_ratings AS SELECT * FROM ratings;
ALTER TABLE victim_ratings OWNER TO regress_victim;
CREATE TABLE attacker_ratings AS SELECT user_id, item_id + 100 AS item_id, rating FROM ratings;
ALTER TABLE attacker_ratings OWNER TO regress_attacker;
CREATE SCHEMA attacker AUTHORIZATION regress_attacker;

-- The error of a statement (SQLSTATE and message), or 'ok'
CREATE FUNCTION pg_temp.try(stmt text, OUT code text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    code := 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
END $$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

-- Every row of every recsys table, as a superuser sees it (for before and
-- after comparisons: an attack that changes nothing leaves it equal)
CREATE FUNCTION pg_temp.catalog_state()
RETURNS TABLE (tab text, rows bigint, digest text)
LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT cl.relname FROM pg_class cl
             WHERE cl.relnamespace = 'recsys'::regnamespace AND cl.relkind = 'r'
             ORDER BY cl.relname
    LOOP
        tab := c.relname;
        EXECUTE format('SELECT count(*), md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) FROM recsys.%I t',
                       c.relname) INTO rows, digest;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE TEMP TABLE start_state AS SELECT * FROM pg_temp.catalog_state();

-- The victim trains a model and runs an experiment.
SET ROLE regress_victim;
SET client_min_messages = warning;
CALL train('victim_model', 'victim_ratings', value_col => 'rating', factors => 2, iterations => 3);
CALL train('victim_gone', 'victim_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT create_experiment('victim_exp', '[{"name": "a", "model": "victim_model"}, {"name": "b", "model": "victim_model"}]');
SELECT log_exposure('victim_exp', 1, ARRAY[1, 2]) IS NOT NULL AS exposed;
RESET ROLE;

--
-- 1. Orphans after drop_model: a non-superuser owner's drop deletes every
--    row of the model (children first), so nothing is left to claim.
--
SELECT model_id AS gone_id FROM recsys.models WHERE name = 'victim_gone' \gset
SET ROLE regress_victim;
SELECT drop_model('victim_gone');
RESET ROLE;
SELECT (SELECT count(*) FROM recsys.user_factors WHERE model_id = :gone_id) AS user_rows,
       (SELECT count(*) FROM recsys.item_factors WHERE model_id = :gone_id) AS item_rows,
       (SELECT count(*) FROM recsys.training_log WHERE model_id = :gone_id) AS log_rows,
       (SELECT count(*) FROM recsys.model_grants WHERE model_id = :gone_id) AS grant_rows;
-- The temporary models of train_and_evaluate leave nothing either.
CREATE TABLE victim_train AS SELECT * FROM ratings WHERE (user_id + item_id) % 4 <> 0;
CREATE TABLE victim_test AS SELECT * FROM ratings WHERE (user_id + item_id) % 4 = 0;
ALTER TABLE victim_train OWNER TO regress_victim;
ALTER TABLE victim_test OWNER TO regress_victim;
SELECT max(model_id) AS last_id FROM recsys.models \gset
SET ROLE regress_victim;
SET client_min_messages = warning;
SELECT count(*) > 0 AS evaluated FROM train_and_evaluate('victim_train', 'victim_test',
    '{"method": "als", "factors": 2, "iterations": 2}', k => 3, value_col => 'rating');
RESET client_min_messages;
RESET ROLE;
SELECT (SELECT count(*) FROM recsys.user_factors WHERE model_id > :last_id) AS user_rows,
       (SELECT count(*) FROM recsys.item_factors WHERE model_id > :last_id) AS item_rows,
       (SELECT count(*) FROM recsys.training_log WHERE model_id > :last_id) AS log_rows,
       (SELECT count(*) FROM recsys.models WHERE model_id > :last_id) AS models;

CREATE TEMP TABLE before AS SELECT * FROM pg_temp.catalog_state();
SELECT model_id AS victim_id FROM recsys.models WHERE name = 'victim_model' \gset
SELECT experiment_id AS exp_id FROM recsys.experiments WHERE name = 'victim_exp' \gset

--
-- 2. Direct writes: every statement of an ordinary login on every recsys
--    table and sequence is refused, whatever the ids it names.
--
SET ROLE regress_attacker;
SELECT c.relname, string_agg(s.op || ' ' || (pg_temp.try(format(s.stmt, c.relname, a.attname))).code,
                             ', ' ORDER BY s.op) AS refused
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = 1,
     (VALUES ('insert', 'INSERT INTO recsys.%I DEFAULT VALUES'),
             ('update', 'UPDATE recsys.%I SET %I = %2$I'),
             ('delete', 'DELETE FROM recsys.%I'),
             ('truncate', 'TRUNCATE recsys.%I'),
             ('lock', 'LOCK TABLE recsys.%I IN ROW EXCLUSIVE MODE'),
             ('for update', 'SELECT FROM recsys.%I FOR UPDATE'),
             ('for key share', 'SELECT FROM recsys.%I FOR KEY SHARE')) AS s(op, stmt)
WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind = 'r'
GROUP BY c.relname ORDER BY 1;
-- The same with explicit ids: the model_id of the next training, a dropped
-- model's id, an existing model's id.
SELECT (pg_temp.try(format($$INSERT INTO recsys.models (model_id, name, method, factors, params,
        source, user_col, item_col, num_users, num_items, num_interactions, null_values,
        duplicates, global_mean, trained_at, train_seconds, owner, token)
        VALUES (%s, 'planted', 'als', 2, '{}', 'x', 'u', 'i', 1, 1, 1, 0, 0, 0, now(), 0,
        'regress_attacker', 0)$$, id))).code AS plant_model,
       (pg_temp.try(format($$INSERT INTO recsys.model_grants (model_id, grantee, privilege, granted_by)
        VALUES (%s, 'regress_attacker', 'train', 'regress_victim')$$, id))).code AS plant_grant,
       (pg_temp.try(format($$INSERT INTO recsys.item_factors VALUES (%s, 999, 100, '{1,1}', 1)$$, id))).code
           AS plant_item,
       (pg_temp.try(format($$INSERT INTO recsys.user_factors VALUES (%s, 1, 0, '{1,1}', '{}', '{}')$$, id))).code
           AS plant_user,
       (pg_temp.try(format($$INSERT INTO recsys.training_log VALUES (%s, 1, 1, 0, 0, 0)$$, id))).code
           AS plant_log
FROM (VALUES (:last_id + 1), (:gone_id), (:victim_id)) AS v(id);
-- Sequences: no next value, no setval, no reset.
SELECT s.relname, (pg_temp.try(format('SELECT nextval(''recsys.%I'')', s.relname))).code AS nextval,
       (pg_temp.try(format('SELECT setval(''recsys.%I'', 1000)', s.relname))).code AS setval,
       (pg_temp.try(format('ALTER SEQUENCE recsys.%I RESTART', s.relname))).code AS restart
FROM pg_class s WHERE s.relnamespace = 'recsys'::regnamespace AND s.relkind = 'S' ORDER BY 1;
-- Around the rules: turning row-level security off, policies, triggers,
-- foreign keys that would block deletes, objects in schema recsys, the
-- lock salt.
SELECT label, (pg_temp.try(stmt)).code FROM (VALUES
    ('row_security off', $$SET row_security = off; SELECT count(*) FROM recsys.user_factors$$),
    ('disable rls', $$ALTER TABLE recsys.models DISABLE ROW LEVEL SECURITY$$),
    ('create policy', $$CREATE POLICY mine ON recsys.models USING (true)$$),
    ('create trigger', $$CREATE TRIGGER t BEFORE INSERT ON recsys.models EXECUTE FUNCTION suppress_redundant_updates_trigger()$$),
    ('references', $$CREATE TABLE attacker.pin (id bigint REFERENCES recsys.models)$$),
    ('create in recsys', $$CREATE TABLE recsys.mine (x int)$$),
    ('function in recsys', $$CREATE FUNCTION recsys.model_privilege(bigint, text, int) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$),
    ('read lock salt', $$SELECT * FROM recsys.instance$$),
    ('drop a table', $$DROP TABLE recsys.model_grants$$)) AS v(label, stmt);
RESET row_security;
-- The write gates do only what their functions allow: on the victim's
-- model and experiment, nothing.
SELECT label, (pg_temp.try(stmt)).code FROM (VALUES
    ('grant to self', format($$SELECT recsys.write_model_grant(%s, 'regress_attacker', 'train')$$, :victim_id)),
    ('revoke', format($$SELECT recsys.write_model_revoke(%s, NULL, 'serve')$$, :victim_id)),
    ('grant future id', format($$SELECT recsys.write_model_grant(%s, 'regress_attacker', 'train')$$, :last_id + 100)),
    ('add variant', format($$SELECT recsys.write_experiment_variants(%s, '{c}', '{victim_model}', '{1}', '{"{}"}')$$, :exp_id)),
    ('end experiment', format($$SELECT recsys.write_experiment_end(%s, 'a')$$, :exp_id)),
    ('drop experiment', format($$SELECT recsys.write_experiment_drop(%s)$$, :exp_id)),
    ('grant experiment', format($$SELECT recsys.write_experiment_grant(%s, 'regress_attacker')$$, :exp_id)),
    ('log exposure', format($$SELECT recsys.write_experiment_exposure(%s, 'a', 1, '{1}', NULL)$$, :exp_id)),
    ('log outcome', format($$SELECT recsys.write_experiment_outcome(%s, 'a', 1, NULL, 'click', 1, NULL)$$, :exp_id)),
    ('drop model', $$SELECT drop_model('victim_model')$$),
    ('forget user', $$SELECT forget_user('victim_model', 1)$$),
    ('refresh user', $$SELECT refresh_user('victim_model', 1)$$),
    ('end through api', $$SELECT end_experiment('victim_exp')$$),
    ('log through api', $$SELECT log_outcome('victim_exp', 1)$$)) AS v(label, stmt);
-- Nothing of the victim is visible.
SELECT (SELECT count(*) FROM recsys.models) AS models, (SELECT count(*) FROM recsys.user_factors) AS user_rows,
       (SELECT count(*) FROM recsys.experiments) AS experiments,
       (SELECT count(*) FROM recsys.experiment_exposures) AS exposures;
RESET ROLE;
-- Nothing changed.
SELECT b.tab, b.rows = a.rows AND b.digest = a.digest AS unchanged
FROM before b JOIN pg_temp.catalog_state() a USING (tab) ORDER BY 1;

--
-- 3. Squatting a name: training a name another role holds fails before the
--    source is read, naming the owner only to a role that may see it.
--
SET ROLE regress_attacker;
SET client_min_messages = warning;
CALL train('recs', 'attacker_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
RESET ROLE;
SET ROLE regress_victim;
-- The victim cannot see 'recs': no owner named, and nothing read (the
-- source below says when it is read).
CREATE FUNCTION pg_temp.reading() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'the source is being read';
    RETURN true;
END $$;
CREATE TEMP VIEW victim_probe AS SELECT * FROM victim_ratings WHERE pg_temp.reading();
CALL train('recs', 'victim_probe', value_col => 'rating', factors => 2, iterations => 3);
RESET ROLE;
-- With a PUBLIC train grant, the squatter could once capture the victim's
-- next training (and its interactions): now the victim is told whose model
-- it is, and that only the owner changes its source.
SET ROLE regress_attacker;
SELECT grant_model('recs', NULL, 'train');
RESET ROLE;
SET ROLE regress_victim;
CALL train('recs', 'victim_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET ROLE;
SELECT m.num_items, m.owner, m.source FROM recsys.models m WHERE m.name = 'recs';
SELECT count(*) AS victim_items_in_recs FROM recsys.item_factors f
JOIN recsys.models m USING (model_id) WHERE m.name = 'recs' AND f.item_id < 100;
-- The squatter's model does not answer the victim's unqualified calls
-- either: only models a role owns or was granted by name count.
SET ROLE regress_victim;
SELECT count(*) AS rows FROM recommend(1, 3);
RESET ROLE;
SET ROLE regress_attacker;
SELECT drop_model('recs');
RESET ROLE;

--
-- 4. A train grantee retrains, but can neither become the owner nor point
--    the model at another source (a view of its own, which would run with
--    the owner's privileges on the owner's next refresh_user, or another of
--    the owner's tables).
--
SET ROLE regress_victim;
SELECT grant_model('victim_model', 'regress_attacker', 'train');
GRANT SELECT ON victim_ratings TO regress_attacker;
RESET ROLE;
SET ROLE regress_attacker;
CREATE VIEW attacker.attacker_view AS SELECT * FROM attacker_ratings;
CALL train('victim_model', 'attacker.attacker_view', value_col => 'rating', factors => 2, iterations => 3);
CALL train('victim_model', 'victim_ratings', user_col => 'item_id', item_col => 'user_id',
           value_col => 'rating', factors => 2, iterations => 3);
SELECT (pg_temp.try($$UPDATE recsys.models SET owner = 'regress_attacker' WHERE name = 'victim_model'$$)).code
    AS take_ownership;
SET client_min_messages = warning;
CALL train('victim_model', 'victim_ratings', value_col => 'rating', factors => 3, iterations => 3);
RESET client_min_messages;
RESET ROLE;
SELECT name, owner, source, factors FROM recsys.models WHERE name = 'victim_model';
SET ROLE regress_victim;
SELECT revoke_model('victim_model', 'regress_attacker', 'train');
REVOKE SELECT ON victim_ratings FROM regress_attacker;
RESET ROLE;

--
-- 5. Cache identity: every new version draws a new random token, which no
--    role but recsys can write.
--
SELECT token AS token_before, version AS version_before FROM recsys.models WHERE name = 'victim_model' \gset
SET ROLE regress_victim;
SELECT forget_user('victim_model', 8);
RESET ROLE;
SELECT version > :version_before AS new_version, token <> :token_before AS new_token
FROM recsys.models WHERE name = 'victim_model';

-- Clean up.
SET ROLE regress_victim;
SELECT drop_experiment('victim_exp');
SELECT drop_model('victim_model');
RESET ROLE;
-- Everything of the test is gone: the catalog is as it was at its start.
SELECT s.tab, s.rows = a.rows AND s.digest = a.digest AS as_before
FROM start_state s JOIN pg_temp.catalog_state() a USING (tab) ORDER BY 1;
SET client_min_messages = warning;
DROP OWNED BY regress_victim, regress_attacker;
DROP ROLE regress_victim;
DROP ROLE regress_attacker;
RESET client_min_messages;
