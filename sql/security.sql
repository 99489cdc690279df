-- Privileges: training reads the source with the caller's privileges, and
-- row-level security on the source applies; SQL built inside the extension
-- cannot be redirected through search_path.
SET client_min_messages = warning;
CREATE ROLE regress_recsys_reader;
CREATE ROLE regress_recsys_trainer;
GRANT USAGE ON SCHEMA recsys TO regress_recsys_reader, regress_recsys_trainer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA recsys
    TO regress_recsys_reader, regress_recsys_trainer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA recsys TO regress_recsys_reader, regress_recsys_trainer;
RESET client_min_messages;

CREATE TABLE secret_ratings AS SELECT * FROM ratings;
CREATE TABLE partly_visible AS SELECT * FROM ratings;
GRANT SELECT (user_id, item_id) ON partly_visible TO regress_recsys_reader;

SET ROLE regress_recsys_reader;
-- No privilege on the table: a permission error that reveals nothing about
-- its columns (a missing column gives the same error).
CALL train('stolen', 'secret_ratings', value_col => 'rating');
CALL train('stolen', 'secret_ratings', value_col => 'no_such_column');
-- Column privileges: the readable columns are not enough.
CALL train('stolen', 'partly_visible', value_col => 'rating');
RESET ROLE;
SELECT count(*) AS stolen_models FROM recsys.models WHERE name = 'stolen';

-- Row-level security: rows hidden from the trainer do not count.
CREATE TABLE rls_ratings AS SELECT * FROM ratings;
ALTER TABLE rls_ratings ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_first_group ON rls_ratings FOR SELECT USING (user_id <= 4);
GRANT SELECT ON rls_ratings TO regress_recsys_trainer;
SET ROLE regress_recsys_trainer;
SET client_min_messages = warning;
CALL train('rls', 'rls_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
RESET ROLE;
SELECT num_users, num_items, num_interactions FROM recsys.models WHERE name = 'rls';
SELECT max(user_id) AS max_user FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'rls';
SELECT drop_model('rls');

-- Shadowing objects first on search_path change nothing: the extension
-- schema-qualifies every table, function and type it uses.
CREATE SCHEMA evil;
CREATE TABLE evil.models (name text, model_id bigint);
CREATE TABLE evil.item_factors (model_id bigint);
CREATE FUNCTION evil.unnest(anyarray) RETURNS SETOF anyelement
    LANGUAGE sql AS 'SELECT NULL::anyelement';
CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz
    LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
CREATE FUNCTION evil.never(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.never);
CREATE FUNCTION evil.never(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.never);
-- pg_catalog listed after evil, so evil's objects win wherever a name is
-- not qualified.
SET search_path = evil, pg_catalog, public;
SET client_min_messages = warning;
CALL train('shadowed', 'public.ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT count(*) FROM public.recommend(1, 3, 'shadowed');
SELECT count(*) FROM public.similar_items(1, 3, 'shadowed');
SELECT public.predict(1, 3, 'shadowed') IS NOT NULL AS predicted;
SELECT public.drop_model('fixture_copy', if_exists => true);
RESET search_path;
SELECT num_users, num_items, trained_at > '2001-01-01' AS real_clock
FROM recsys.models WHERE name = 'shadowed';
SELECT count(*) AS user_rows FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'shadowed';
SELECT drop_model('shadowed');

SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;

-- Models belong to the role that trained them: others see nothing of them
-- until the owner grants them.
CREATE TABLE shared_ratings AS SELECT * FROM ratings;
GRANT SELECT ON shared_ratings TO regress_recsys_reader, regress_recsys_trainer;
SET ROLE regress_recsys_trainer;
SET client_min_messages = warning;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT name, owner FROM recsys.models;
SELECT count(*) FROM recommend(1, 3, 'private');
RESET ROLE;

SET ROLE regress_recsys_reader;
SELECT count(*) AS visible_models FROM recsys.models;
SELECT count(*) AS visible_factors FROM recsys.user_factors;
SELECT * FROM recommend(1, 3, 'private');
SELECT drop_model('private');
SELECT grant_model('private', 'regress_recsys_reader');
-- A name taken by an invisible model is found when the model is written.
SET client_min_messages = warning;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
RESET ROLE;

-- Granted 'serve': recommend works; retraining, refreshing, forgetting and
-- dropping do not.
SET ROLE regress_recsys_trainer;
SELECT grant_model('private', 'regress_recsys_reader', 'serve');
SELECT grant_model('private', 'regress_recsys_reader', 'own');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) FROM recommend(1, 3, 'private');
SELECT count(*) AS visible_factors FROM recsys.user_factors;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 2, iterations => 3);
SELECT refresh_user('private', 1);
SELECT forget_user('private', 1);
SELECT drop_model('private');
SELECT revoke_model('private', 'regress_recsys_reader');
RESET ROLE;

-- Granted 'train': the grantee retrains (the owner stays the owner).
SET ROLE regress_recsys_trainer;
SELECT grant_model('private', 'regress_recsys_reader', 'train');
RESET ROLE;
SET ROLE regress_recsys_reader;
SET client_min_messages = warning;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 3, iterations => 3);
RESET client_min_messages;
SELECT refresh_user('private', 1);
SELECT name, owner, factors FROM recsys.models;
RESET ROLE;

-- Revoking takes it back; grants to PUBLIC (NULL) reach every role.
SET ROLE regress_recsys_trainer;
SELECT revoke_model('private', 'regress_recsys_reader', 'train');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) AS visible_models FROM recsys.models;
RESET ROLE;
SET ROLE regress_recsys_trainer;
SELECT grant_model('private', NULL);
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) FROM recommend(1, 3, 'private');
RESET ROLE;
SELECT model_id > 0 AS has_model, grantee, privilege, granted_by FROM recsys.model_grants;
SELECT drop_model('private');
SELECT count(*) AS grants_left FROM recsys.model_grants;

SET client_min_messages = warning;
DROP OWNED BY regress_recsys_reader, regress_recsys_trainer;
DROP ROLE regress_recsys_reader;
DROP ROLE regress_recsys_trainer;
