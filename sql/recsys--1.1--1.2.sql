/* recsys--1.1--1.2.sql: upgrade a recsys 1.1 database to 1.2 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.2'" to load this file. \quit

--
-- Only recsys writes its catalog (15_access.sql, src/catalog_write.c).
--
-- Rows that 1.1 could leave behind, or that any role could plant: factor,
-- log and grant rows whose model is gone (drop_model deleted the model row
-- first, and row-level security then hid its other rows from the deletes),
-- log rows of another version than their model's, and grants whose
-- granted_by is not a member of the model's owner role (a forged
-- granted_by).  Rows planted under the id of a model that exists cannot be
-- told apart: retraining a model replaces all its rows (see CHANGELOG.md).
--
DELETE FROM recsys.user_factors f
WHERE NOT EXISTS (SELECT FROM recsys.models m WHERE m.model_id = f.model_id);
DELETE FROM recsys.item_factors f
WHERE NOT EXISTS (SELECT FROM recsys.models m WHERE m.model_id = f.model_id);
DELETE FROM recsys.training_log l
WHERE NOT EXISTS (SELECT FROM recsys.models m
                  WHERE m.model_id = l.model_id AND m.version = l.version);
DELETE FROM recsys.model_grants g
WHERE NOT EXISTS (SELECT FROM recsys.models m
                  WHERE m.model_id = g.model_id
                    AND pg_catalog.pg_has_role(g.granted_by, m.owner, 'MEMBER'));
DELETE FROM recsys.experiment_grants g
WHERE NOT EXISTS (SELECT FROM recsys.experiments e
                  WHERE e.experiment_id = g.experiment_id
                    AND pg_catalog.pg_has_role(g.granted_by, e.owner, 'MEMBER'));

-- Owners and grantors are always the calling role, set by recsys: no defaults.
ALTER TABLE recsys.models ALTER COLUMN owner DROP DEFAULT;
ALTER TABLE recsys.model_grants ALTER COLUMN granted_by DROP DEFAULT;
ALTER TABLE recsys.experiments ALTER COLUMN owner DROP DEFAULT;
ALTER TABLE recsys.experiment_grants ALTER COLUMN granted_by DROP DEFAULT;

-- The cache token of every model version (catalog.c: NewToken)
ALTER TABLE recsys.models ADD COLUMN token bigint;
UPDATE recsys.models
SET token = ('x' || pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::pg_catalog.text), 1, 16))::pg_catalog.bit(64)::pg_catalog.int8;
ALTER TABLE recsys.models ALTER COLUMN token SET NOT NULL;
COMMENT ON COLUMN recsys.models.token IS 'random number drawn with every version: with model_id and version, the key of the serving caches';

-- What the preprocessing options did (train.c: Preprocess), and the
-- types of the source's ids (text-keyed models: recsys.id_map)
ALTER TABLE recsys.models ADD COLUMN preprocessing jsonb,
    ADD COLUMN user_id_type regtype, ADD COLUMN item_id_type regtype;
COMMENT ON COLUMN recsys.models.user_id_type IS 'the type of the source''s user ids: integers are the model''s ids; text, varchar and uuid ids go through recsys.id_map';
COMMENT ON COLUMN recsys.models.item_id_type IS 'the type of the source''s item ids, as user_id_type';
COMMENT ON COLUMN recsys.models.preprocessing IS 'what the preprocessing options did (values capped, rows without a time, the oldest decay factor, what k-core filtering left out); NULL when none was asked for';

-- The database's secret salt of recsys's lock keys (10_storage.sql)
CREATE TABLE recsys.instance (
    lock_salt         bigint NOT NULL
);
COMMENT ON TABLE recsys.instance IS 'secret salt of the keys of recsys''s locks (one row)';
INSERT INTO recsys.instance (lock_salt)
SELECT ('x' || pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::pg_catalog.text), 1, 16))::pg_catalog.bit(64)::pg_catalog.int8;
REVOKE ALL ON recsys.instance FROM PUBLIC;

-- Row-level security now only filters reads.
DROP POLICY models_create ON recsys.models;
DROP POLICY models_retrain ON recsys.models;
DROP POLICY models_drop ON recsys.models;
DROP POLICY training_log_train ON recsys.training_log;
DROP POLICY user_factors_train ON recsys.user_factors;
DROP POLICY item_factors_train ON recsys.item_factors;
DROP POLICY model_grants_owner_add ON recsys.model_grants;
DROP POLICY model_grants_owner_remove ON recsys.model_grants;
DROP POLICY experiments_owner ON recsys.experiments;
DROP POLICY experiment_variants_owner ON recsys.experiment_variants;
DROP POLICY experiment_exposures_log ON recsys.experiment_exposures;
DROP POLICY experiment_exposures_delete ON recsys.experiment_exposures;
DROP POLICY experiment_outcomes_log ON recsys.experiment_outcomes;
DROP POLICY experiment_outcomes_delete ON recsys.experiment_outcomes;
DROP POLICY experiment_grants_owner_add ON recsys.experiment_grants;
DROP POLICY experiment_grants_owner_remove ON recsys.experiment_grants;

-- No role writes the tables or draws ids but recsys (as the extension's owner).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA recsys FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA recsys FROM PUBLIC;

-- Write privileges a DBA gave to single roles are left alone, but named.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
             FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
             WHERE c.relnamespace = 'recsys'::regnamespace AND a.grantee <> 0
               AND a.grantee <> c.relowner
               AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'USAGE')
    LOOP
        RAISE NOTICE 'role % may still write recsys''s tables directly', r.grantee
            USING HINT = 'recsys writes its tables itself since 1.2; REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA recsys FROM ' || r.grantee || ' unless that is intended.';
    END LOOP;
END
$$;

--
-- The catalog write gates (80_catalog_writes.sql)
--
-- The variant a user is assigned to in a running experiment the current
-- role can see; NULL if it has ended (or is not visible).
CREATE FUNCTION recsys.assigned_variant(experiment_id bigint, user_id bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (array_agg(v.variant ORDER BY v.position))
           [@extschema@.assign_variant(e.salt, $2, array_agg(v.weight ORDER BY v.position))]
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.experiment_id = $1 AND e.status = 'running'
    GROUP BY e.experiment_id, e.salt
$$;
COMMENT ON FUNCTION recsys.assigned_variant(bigint, bigint)
    IS 'the variant a user is assigned to in a running experiment (NULL once ended, or if not visible)';

CREATE FUNCTION recsys.write_model_grant(model_id bigint, grantee regrole, privilege text)
RETURNS void AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_model_grant(bigint, regrole, text)
    IS 'catalog write of grant_model(): the model''s owner grants; granted_by is the caller';

CREATE FUNCTION recsys.write_model_revoke(model_id bigint, grantee regrole, privilege text)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_model_revoke(bigint, regrole, text)
    IS 'catalog write of revoke_model(): the model''s owner revokes; whether a grant was removed';

CREATE FUNCTION recsys.write_experiment_create(name text, salt text, control text)
RETURNS bigint AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_create(text, text, text)
    IS 'catalog write of create_experiment(): a new experiment owned by the caller; its id';

CREATE FUNCTION recsys.write_experiment_variants(
    experiment_id bigint, variants text[], models text[], weights integer[], options jsonb[])
RETURNS void AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_variants(bigint, text[], text[], integer[], jsonb[])
    IS 'catalog write of create_experiment(): the variants, in order, of an experiment the caller owns';

CREATE FUNCTION recsys.write_experiment_end(experiment_id bigint, winner text)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_end(bigint, text)
    IS 'catalog write of end_experiment(): the owner ends a running experiment; whether it was running';

CREATE FUNCTION recsys.write_experiment_drop(experiment_id bigint)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_drop(bigint)
    IS 'catalog write of drop_experiment(): the owner deletes an experiment with its logs; whether it existed';

CREATE FUNCTION recsys.write_experiment_grant(experiment_id bigint, grantee regrole)
RETURNS void AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_grant(bigint, regrole)
    IS 'catalog write of grant_experiment(): the owner grants; granted_by is the caller';

CREATE FUNCTION recsys.write_experiment_revoke(experiment_id bigint, grantee regrole)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_revoke(bigint, regrole)
    IS 'catalog write of revoke_experiment(): the owner revokes; whether a grant was removed';

CREATE FUNCTION recsys.write_experiment_exposure(
    experiment_id bigint, variant text, user_id bigint, items bigint[], model_version bigint)
RETURNS bigint AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_exposure(bigint, text, bigint, bigint[], bigint)
    IS 'catalog write of log_exposure() and recommend_experiment(): a role that may serve through a running experiment logs a list shown to a user, under the user''s variant; the exposure id';

CREATE FUNCTION recsys.write_experiment_outcome(
    experiment_id bigint, variant text, user_id bigint, item_id bigint, kind text,
    value double precision, exposure_id bigint)
RETURNS bigint AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_outcome(bigint, text, bigint, bigint, text, double precision, bigint)
    IS 'catalog write of log_outcome(): a role that may serve through a running experiment logs a user''s outcome, under the user''s variant and one of the user''s exposures; the outcome id';

-- Functions that now write through the gates
CREATE OR REPLACE FUNCTION @extschema@.grant_model(model text, grantee regrole, privilege text DEFAULT 'serve')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF privilege IS NULL OR privilege NOT IN ('serve', 'train') THEN
        RAISE EXCEPTION 'unknown model privilege "%"', privilege
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Model privileges are serve (recommend, predict, ...) and train (retrain, refresh_user, forget_user).';
    END IF;
    SELECT m.model_id INTO id FROM recsys.models m WHERE m.name = model;
    IF id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT recsys.model_privilege(id, 'owner') THEN
        RAISE EXCEPTION 'must be owner of model "%" to grant it', model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM recsys.write_model_grant(id, grantee, privilege);
END
$$;
COMMENT ON FUNCTION @extschema@.grant_model(text, regrole, text)
    IS 'let a role (NULL: PUBLIC) serve a model, or also train it';

CREATE OR REPLACE FUNCTION @extschema@.revoke_model(model text, grantee regrole, privilege text DEFAULT 'serve')
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    SELECT m.model_id INTO id FROM recsys.models m WHERE m.name = model;
    IF id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT recsys.model_privilege(id, 'owner') THEN
        RAISE EXCEPTION 'must be owner of model "%" to revoke it', model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN recsys.write_model_revoke(id, grantee, privilege);
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_model(text, regrole, text)
    IS 'take back a privilege granted with grant_model; returns whether it was granted';

CREATE OR REPLACE FUNCTION recsys.owned_experiment(experiment text, action text)
RETURNS recsys.experiments
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e  recsys.experiments;
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT * INTO e FROM recsys.experiments x WHERE x.name = experiment;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT pg_catalog.pg_has_role(e.owner, 'MEMBER') THEN
        RAISE EXCEPTION 'must be owner of experiment "%" to %', experiment, action
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Experiment "%s" belongs to role %s.', experiment, e.owner),
                  HINT = 'Ask its owner, or a member of the owner role.';
    END IF;
    RETURN e;
END
$$;
COMMENT ON FUNCTION recsys.owned_experiment(text, text)
    IS 'the named experiment when the current role owns it (NULL if not visible); insufficient_privilege otherwise';

CREATE OR REPLACE FUNCTION @extschema@.create_experiment(
    name      text,
    variants  jsonb,
    salt      text DEFAULT NULL,
    control   text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    exp_name   text := create_experiment.name;
    exp_salt   text := coalesce(create_experiment.salt, create_experiment.name);
    exp_ctl    text := create_experiment.control;
    exp_id     bigint;
    elem       jsonb;
    pos        integer := 0;
    k_name     text;
    v_name     text;
    v_model    text;
    v_weight   numeric;
    v_opts     jsonb;
    names      text[] := '{}';
    models     text[] := '{}';
    weights    integer[] := '{}';
    opts       jsonb[] := '{}';
    total      bigint := 0;
BEGIN
    IF exp_name IS NULL THEN
        RAISE EXCEPTION 'experiment name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF octet_length(exp_name) NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'experiment name must have 1 to 128 bytes, got %', octet_length(exp_name)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF variants IS NULL THEN
        RAISE EXCEPTION 'variants must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF exp_salt = '' THEN
        RAISE EXCEPTION 'salt must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it NULL to use the experiment name, or pass any non-empty text.';
    END IF;
    IF jsonb_typeof(variants) <> 'array' THEN
        RAISE EXCEPTION 'variants must be a JSON array, got a JSON %', jsonb_typeof(variants)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ''[{"name": "control", "model": "als_v1", "weight": 50}, {"name": "new", "model": "ials_v2", "weight": 50}]''.';
    END IF;
    IF jsonb_array_length(variants) < 2 THEN
        RAISE EXCEPTION 'an experiment needs at least 2 variants, got %', jsonb_array_length(variants)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Compare a model with another model, or with itself under other options.';
    END IF;

    FOR elem IN SELECT a.value FROM jsonb_array_elements(variants) AS a LOOP
        pos := pos + 1;
        IF jsonb_typeof(elem) <> 'object' THEN
            RAISE EXCEPTION 'variant % must be a JSON object, got a JSON %', pos, jsonb_typeof(elem)
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'A variant is {"name": ..., "model": ..., "weight": ..., "options": {...}}.';
        END IF;
        FOR k_name IN SELECT k FROM jsonb_object_keys(elem) AS k LOOP
            IF k_name NOT IN ('name', 'model', 'weight', 'options') THEN
                RAISE EXCEPTION 'variant % has unknown key "%"', pos, k_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'A variant has the keys name, model, weight (default 1) and options.';
            END IF;
        END LOOP;

        IF jsonb_typeof(elem -> 'name') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'variant % needs a name (a JSON string)', pos
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_name := elem ->> 'name';
        IF octet_length(v_name) NOT BETWEEN 1 AND 128 THEN
            RAISE EXCEPTION 'variant name must have 1 to 128 bytes, got %', octet_length(v_name)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_name = ANY (names) THEN
            RAISE EXCEPTION 'variant "%" is defined more than once', v_name
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Give every variant its own name.';
        END IF;

        IF jsonb_typeof(elem -> 'model') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'variant "%" needs a model (a JSON string)', v_name
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_model := elem ->> 'model';
        IF NOT EXISTS (SELECT FROM recsys.models m WHERE m.name = v_model) THEN
            RAISE EXCEPTION 'model "%" of variant "%" does not exist', v_model, v_name
                USING ERRCODE = 'undefined_object',
                      HINT = format('Train it first with CALL train(%L, ...), or see SELECT name FROM recsys.models.', v_model);
        END IF;

        IF elem ? 'weight' THEN
            IF jsonb_typeof(elem -> 'weight') <> 'number' THEN
                RAISE EXCEPTION 'weight of variant "%" must be a JSON number, got %', v_name, elem -> 'weight'
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            v_weight := (elem ->> 'weight')::numeric;
            IF v_weight <= 0 OR v_weight <> trunc(v_weight) OR v_weight > 2147483647 THEN
                RAISE EXCEPTION 'weight of variant "%" must be a positive integer, got %', v_name, v_weight
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'Weights are relative: for 12.5% and 87.5%, use 125 and 875.';
            END IF;
        ELSE
            v_weight := 1;
        END IF;
        total := total + v_weight::bigint;

        v_opts := coalesce(elem -> 'options', '{}');
        IF jsonb_typeof(v_opts) <> 'object' THEN
            RAISE EXCEPTION 'options of variant "%" must be a JSON object, got %', v_name, v_opts
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR k_name IN SELECT k FROM jsonb_object_keys(v_opts) AS k LOOP
            IF k_name NOT IN ('n', 'exclude_seen') THEN
                RAISE EXCEPTION 'variant "%" has unknown option "%"', v_name, k_name
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'The options are n (a positive integer: the number of items served) and exclude_seen (true or false).';
            END IF;
        END LOOP;
        IF v_opts ? 'n' AND (jsonb_typeof(v_opts -> 'n') <> 'number'
                             OR (v_opts ->> 'n')::numeric NOT BETWEEN 1 AND 2147483647
                             OR (v_opts ->> 'n')::numeric <> trunc((v_opts ->> 'n')::numeric)) THEN
            RAISE EXCEPTION 'option n of variant "%" must be a positive integer, got %', v_name, v_opts -> 'n'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF v_opts ? 'exclude_seen' AND jsonb_typeof(v_opts -> 'exclude_seen') <> 'boolean' THEN
            RAISE EXCEPTION 'option exclude_seen of variant "%" must be true or false, got %', v_name, v_opts -> 'exclude_seen'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;

        names := names || v_name;
        models := models || v_model;
        weights := weights || v_weight::integer;
        opts := opts || v_opts;
    END LOOP;

    IF total > 2147483647 THEN
        RAISE EXCEPTION 'weights must add up to at most 2147483647, got %', total
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Weights are relative: divide them by a common factor.';
    END IF;
    IF exp_ctl IS NULL THEN
        exp_ctl := names[1];
    ELSIF NOT exp_ctl = ANY (names) THEN
        RAISE EXCEPTION 'control "%" is not a variant of experiment "%"', exp_ctl, exp_name
            USING ERRCODE = 'undefined_object',
                  HINT = format('The variants are: %s.', array_to_string(names, ', '));
    END IF;
    -- The name may also be taken by an experiment of another role, which
    -- the caller cannot see: the unique index is the final word.
    BEGIN
        exp_id := recsys.write_experiment_create(exp_name, exp_salt, exp_ctl);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'experiment "%" already exists', exp_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or drop it first with drop_experiment(...).';
    END;
    PERFORM recsys.write_experiment_variants(exp_id, names, models, weights, opts);
END
$$;
COMMENT ON FUNCTION @extschema@.create_experiment(text, jsonb, text, text)
    IS 'create a running A/B experiment from a JSON array of variants {name, model, weight, options}; salt defaults to the name, control to the first variant';

CREATE OR REPLACE FUNCTION @extschema@.end_experiment(experiment text, winner text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e  recsys.experiments;
BEGIN
    e := recsys.owned_experiment(experiment, 'end it');
    IF e.experiment_id IS NULL THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    IF e.status = 'ended' THEN
        RAISE EXCEPTION 'experiment "%" has already ended', experiment
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Its winner %L is served to everyone; drop_experiment(%L) deletes it with its logs.',
                                e.winner, experiment);
    END IF;
    IF winner IS NOT NULL AND NOT EXISTS (
            SELECT FROM recsys.experiment_variants v
            WHERE v.experiment_id = e.experiment_id AND v.variant = winner) THEN
        RAISE EXCEPTION 'experiment "%" has no variant "%"', experiment, winner
            USING ERRCODE = 'undefined_object',
                  HINT = format('Its variants are: %s.',
                                (SELECT string_agg(v.variant, ', ' ORDER BY v.position)
                                 FROM recsys.experiment_variants v WHERE v.experiment_id = e.experiment_id));
    END IF;
    IF NOT recsys.write_experiment_end(e.experiment_id, coalesce(end_experiment.winner, e.control)) THEN
        RAISE EXCEPTION 'experiment "%" has already ended', experiment
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.end_experiment(text, text)
    IS 'end an experiment: from now on everyone is served the winner (default: the control) and nothing more is logged';

CREATE OR REPLACE FUNCTION @extschema@.drop_experiment(experiment text, if_exists boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    exp_id  bigint;
BEGIN
    IF if_exists IS NULL THEN
        RAISE EXCEPTION 'if_exists must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    exp_id := (recsys.owned_experiment(experiment, 'drop it')).experiment_id;
    IF exp_id IS NULL THEN
        IF if_exists THEN
            RETURN false;
        END IF;
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    -- Outcomes, exposures, then the experiment; variants and grants go
    -- with it (ON DELETE CASCADE).  False: dropped meanwhile.
    RETURN recsys.write_experiment_drop(exp_id);
END
$$;
COMMENT ON FUNCTION @extschema@.drop_experiment(text, boolean)
    IS 'delete an experiment with its variants, exposures and outcomes; returns whether it existed';

CREATE OR REPLACE FUNCTION @extschema@.grant_experiment(experiment text, grantee regrole)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    exp_id  bigint;
BEGIN
    exp_id := (recsys.owned_experiment(experiment, 'grant it')).experiment_id;
    IF exp_id IS NULL THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM recsys.write_experiment_grant(exp_id, grantee);
END
$$;
COMMENT ON FUNCTION @extschema@.grant_experiment(text, regrole)
    IS 'let a role (NULL: PUBLIC) serve through an experiment, log exposures and outcomes, and read its report';

CREATE OR REPLACE FUNCTION @extschema@.revoke_experiment(experiment text, grantee regrole)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    exp_id  bigint;
BEGIN
    exp_id := (recsys.owned_experiment(experiment, 'revoke it')).experiment_id;
    IF exp_id IS NULL THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment USING ERRCODE = 'undefined_object';
    END IF;
    RETURN recsys.write_experiment_revoke(exp_id, grantee);
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_experiment(text, regrole)
    IS 'take back what grant_experiment gave; returns whether it was granted';

CREATE OR REPLACE FUNCTION @extschema@.recommend_experiment(
    experiment    text,
    user_id       bigint,
    n             integer DEFAULT 10,
    candidates    bigint[] DEFAULT NULL,
    exclude       bigint[] DEFAULT NULL,
    log_exposure  boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score real, variant text)
LANGUAGE plpgsql VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id       bigint;
    e_status   text;
    e_winner   text;
    e_salt     text;
    names      text[];
    weights    integer[];
    models     text[];
    opts       jsonb[];
    idx        integer;
    v_opts     jsonb;
    v_version  bigint;
    shown      bigint[];
    scores     real[];
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF n IS NULL THEN
        RAISE EXCEPTION 'n must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF log_exposure IS NULL THEN
        RAISE EXCEPTION 'log_exposure must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.experiment_id, e.status, e.winner, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position),
           array_agg(v.model ORDER BY v.position), array_agg(v.options ORDER BY v.position)
    INTO e_id, e_status, e_winner, e_salt, names, weights, models, opts
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    -- A NULL user gets no rows, as from recommend().
    IF user_id IS NULL THEN
        RETURN;
    END IF;

    IF e_status = 'ended' THEN
        idx := array_position(names, e_winner);
    ELSE
        idx := @extschema@.assign_variant(e_salt, user_id, weights);
    END IF;
    v_opts := opts[idx];

    SELECT m.version INTO v_version FROM recsys.models m WHERE m.name = models[idx];
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" of variant "%" in experiment "%" does not exist', models[idx], names[idx], experiment
            USING ERRCODE = 'undefined_object',
                  HINT = format('Train it again with CALL train(%L, ...), or end the experiment with end_experiment(%L, winner => ...).',
                                models[idx], experiment);
    END IF;

    SELECT array_agg(r.item_id ORDER BY r.ord), array_agg(r.score ORDER BY r.ord)
    INTO shown, scores
    FROM @extschema@.recommend(user_id,
                               coalesce((v_opts ->> 'n')::integer, n),
                               models[idx],
                               coalesce((v_opts ->> 'exclude_seen')::boolean, true),
                               candidates,
                               exclude) WITH ORDINALITY AS r(item_id, score, ord);

    -- An exposure is a list that was shown: nothing shown, nothing logged.
    IF log_exposure AND e_status = 'running' AND shown IS NOT NULL THEN
        PERFORM recsys.write_experiment_exposure(e_id, names[idx], user_id, shown, v_version);
    END IF;

    RETURN QUERY
        SELECT s.i, s.s, names[idx]
        FROM unnest(shown, scores) WITH ORDINALITY AS s(i, s, ord)
        ORDER BY s.ord;
END
$$;
COMMENT ON FUNCTION @extschema@.recommend_experiment(text, bigint, integer, bigint[], bigint[], boolean)
    IS 'recommend through an experiment: the user''s variant serves recommend() with its model and options; logs the list as an exposure';

CREATE OR REPLACE FUNCTION @extschema@.log_exposure(experiment text, user_id bigint, items bigint[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id      bigint;
    e_status  text;
    e_salt    text;
    names     text[];
    weights   integer[];
    v_name    text;
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_position(items, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'items must not contain nulls' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.experiment_id, e.status, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position)
    INTO e_id, e_status, e_salt, names, weights
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    IF e_status = 'ended' THEN
        RETURN NULL;
    END IF;
    v_name := names[@extschema@.assign_variant(e_salt, user_id, weights)];
    PERFORM recsys.write_experiment_exposure(e_id, v_name, user_id, coalesce(items, '{}'), NULL);
    RETURN v_name;
END
$$;
COMMENT ON FUNCTION @extschema@.log_exposure(text, bigint, bigint[])
    IS 'log that a user was shown a list (items served some other way); returns the user''s variant, or NULL if the experiment has ended (nothing logged)';

CREATE OR REPLACE FUNCTION @extschema@.log_outcome(
    experiment  text,
    user_id     bigint,
    item_id     bigint DEFAULT NULL,
    kind        text DEFAULT 'click',
    value       double precision DEFAULT 1)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id      bigint;
    e_status  text;
    e_salt    text;
    names     text[];
    weights   integer[];
    v_name    text;
    x_id      bigint;
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind IS NULL OR value IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN kind IS NULL THEN 'kind' ELSE 'value' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind = '' THEN
        RAISE EXCEPTION 'kind must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ''click'', ''purchase'' or ''rating''.';
    END IF;
    IF value IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'value must be finite, got %', value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e.experiment_id, e.status, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position)
    INTO e_id, e_status, e_salt, names, weights
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    IF e_status = 'ended' THEN
        RETURN NULL;
    END IF;
    v_name := names[@extschema@.assign_variant(e_salt, user_id, weights)];

    -- Attribution: the user's latest exposure that showed the item, else
    -- the user's latest exposure; none if the user was never exposed.  Both
    -- are backward scans of the (experiment, user, exposure) index that stop
    -- at the first match.
    IF item_id IS NOT NULL THEN
        SELECT x.exposure_id INTO x_id
        FROM recsys.experiment_exposures x
        WHERE x.experiment_id = e_id AND x.user_id = log_outcome.user_id
          AND log_outcome.item_id = ANY (x.items)
        ORDER BY x.exposure_id DESC
        LIMIT 1;
    END IF;
    IF x_id IS NULL THEN
        SELECT x.exposure_id INTO x_id
        FROM recsys.experiment_exposures x
        WHERE x.experiment_id = e_id AND x.user_id = log_outcome.user_id
        ORDER BY x.exposure_id DESC
        LIMIT 1;
    END IF;

    PERFORM recsys.write_experiment_outcome(e_id, v_name, user_id, item_id, kind, value, x_id);
    RETURN v_name;
END
$$;
COMMENT ON FUNCTION @extschema@.log_outcome(text, bigint, bigint, text, double precision)
    IS 'log an outcome (click, purchase, rating, ...) of a user, attributed to their variant and latest exposure; returns the variant, or NULL if the experiment has ended (nothing logged)';

--
-- Methods behind one interface (src/method.h): train() takes the method's
-- options as jsonb; the named arguments default to NULL (the method's
-- default).  The 1.1 signature is replaced (its C function stays for
-- libraries serving 1.1 databases).
--
DROP PROCEDURE @extschema@.train(text, regclass, name, name, name, text, integer, integer,
    double precision, integer, double precision, text, integer, text, double precision);
CREATE PROCEDURE @extschema@.train(
    model           text,
    source          regclass,
    user_col        name DEFAULT 'user_id',
    item_col        name DEFAULT 'item_id',
    value_col       name DEFAULT NULL,
    method          text DEFAULT 'als',
    factors         integer DEFAULT NULL,
    iterations      integer DEFAULT NULL,
    regularization  double precision DEFAULT NULL,
    seed            integer DEFAULT NULL,
    alpha           double precision DEFAULT NULL,
    solver          text DEFAULT NULL,
    cg_steps        integer DEFAULT NULL,
    scaling         text DEFAULT NULL,
    epsilon         double precision DEFAULT NULL,
    options         jsonb DEFAULT '{}')
AS 'MODULE_PATHNAME', 'recsys_train_1_2'
LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.train(text, regclass, name, name, name, text, integer, integer, double precision, integer, double precision, text, integer, text, double precision, jsonb)
    IS 'train (or retrain) a model from a table of (user, item, value) interactions: method als, ials, item_knn, ease, content or popular; the named arguments (NULL: the method''s default) and options set the method''s options';

-- Item-neighbour models (item_knn, ease) store their lists here.
CREATE TABLE recsys.item_neighbors (
    model_id          bigint NOT NULL,
    item_id           bigint NOT NULL,
    neighbors         bigint[] NOT NULL,
    weights           real[] NOT NULL,
    PRIMARY KEY (model_id, item_id)
);
ALTER TABLE recsys.item_neighbors
    ALTER COLUMN neighbors SET STORAGE EXTERNAL,
    ALTER COLUMN weights SET STORAGE EXTERNAL;
COMMENT ON TABLE recsys.item_neighbors IS 'item-neighbour models (item_knn, ease): the items each item recommends, best first, and their weights';
SELECT pg_catalog.pg_extension_config_dump('recsys.item_neighbors', '');
ALTER TABLE recsys.item_neighbors ENABLE ROW LEVEL SECURITY;
CREATE POLICY item_neighbors_serve ON recsys.item_neighbors FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
GRANT SELECT ON recsys.item_neighbors TO PUBLIC;

-- Tuning passes the method's options to train, which checks them.
CREATE OR REPLACE FUNCTION recsys.eval_train(
    model      text,
    source     regclass,
    params     jsonb,
    user_col   name,
    item_col   name,
    value_col  name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    old_level text := pg_catalog.current_setting('client_min_messages');
BEGIN
    IF params IS NULL OR pg_catalog.jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('training parameters must be a jsonb object, got %s', coalesce(params::text, 'NULL')),
            HINT = 'For example ''{"method": "ials", "factors": 16, "alpha": 2}''.';
    END IF;
    IF params ? 'method' AND pg_catalog.jsonb_typeof(params -> 'method') <> 'string' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('training parameter "method" must be a string, got %s', params -> 'method'),
            HINT = 'For example ''{"method": "item_knn", "neighbors": 50}''.';
    END IF;

    IF old_level IN ('debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'log', 'notice') THEN
        PERFORM pg_catalog.set_config('client_min_messages', 'warning', true);
    END IF;
    CALL @extschema@.train(model, source, user_col => user_col, item_col => item_col,
                           value_col => value_col,
                           method => coalesce(params ->> 'method', 'als'),
                           options => params OPERATOR(pg_catalog.-) 'method');
    PERFORM pg_catalog.set_config('client_min_messages', old_level, true);
END
$$;
COMMENT ON FUNCTION recsys.eval_train(text, regclass, jsonb, name, name, name)
    IS 'internal: CALL train with hyperparameters from a jsonb object, without its NOTICEs';

-- The method table and each method's options
CREATE FUNCTION recsys.methods(
    OUT method          text,
    OUT description     text,
    OUT learns_from     text,
    OUT stores          text,
    OUT similar_items   boolean,
    OUT similar_users   boolean,
    OUT explain         boolean,
    OUT features        boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_methods'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.methods()
    IS 'the training methods: what each learns from (ratings or feedback), what it stores, which serving functions it supports, and whether it trains with item and user features';

CREATE FUNCTION recsys.method_options(
    method              text,
    OUT option          text,
    OUT type            text,
    OUT default_value   text,
    OUT allowed         text,
    OUT description     text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_method_options'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.method_options(text)
    IS 'the options train() accepts for a method (as named arguments or in options), with their type, default and allowed values';

-- Content-based and hybrid models store their features with the model
-- (10_storage.sql, 15_access.sql).
CREATE TABLE recsys.model_features (
    model_id          bigint NOT NULL,
    side              text NOT NULL CHECK (side IN ('item', 'user')),
    feature_id        integer NOT NULL,
    name              text NOT NULL,
    idf               real,
    factors           real[],
    PRIMARY KEY (model_id, side, feature_id)
);
COMMENT ON TABLE recsys.model_features IS 'the features a content or hybrid model knows, per side: name, idf (content) or factors (hybrid)';

CREATE TABLE recsys.entity_features (
    model_id          bigint NOT NULL,
    side              text NOT NULL CHECK (side IN ('item', 'user')),
    entity_id         bigint NOT NULL,
    features          integer[] NOT NULL,
    weights           real[] NOT NULL,
    PRIMARY KEY (model_id, side, entity_id)
);
COMMENT ON TABLE recsys.entity_features IS 'the features of each item and user of a content or hybrid model (feature ids of recsys.model_features) and their weights';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_features', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.entity_features', '');
ALTER TABLE recsys.model_features ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.entity_features ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_features_serve ON recsys.model_features FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY entity_features_serve ON recsys.entity_features FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
GRANT SELECT ON recsys.model_features, recsys.entity_features TO PUBLIC;

-- Serving by features, and one item's refresh (40_foldin.sql)
CREATE FUNCTION @extschema@.recommend_for_features(
    features  text[],
    n         integer DEFAULT 10,
    model     text DEFAULT NULL,
    weights   double precision[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_for_features'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_features(text[], integer, text, double precision[])
    IS 'recommendations for a visitor known only by features: user attributes (hybrid models) or item features of interest (content models); the popular items if none is known';

CREATE FUNCTION @extschema@.explain_features(
    user_id  bigint,
    item_id  bigint,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (feature text, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain_features'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain_features(bigint, bigint, integer, text)
    IS 'the features of the item that contribute most to its score for the user (content models); a last row with a NULL feature holds the rest';

CREATE FUNCTION @extschema@.refresh_item(model text, item_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_item'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_item(text, bigint)
    IS 'compute one item''s row from its current features and interactions (a new item goes live without a retrain); false if it has neither';

-- Cold-start evaluation (60_evaluate.sql): split_items, and evaluate's
-- candidates.  The "too little data" errors of the splits now carry
-- SQLSTATE 02000 (1.1 named a condition PL/pgSQL does not know).
CREATE FUNCTION recsys.eval_check_candidates(candidates text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF candidates IS NULL OR candidates NOT IN ('all', 'test', 'cold') THEN
        RAISE EXCEPTION USING
            ERRCODE = CASE WHEN candidates IS NULL THEN 'null_value_not_allowed' ELSE 'invalid_parameter_value' END,
            MESSAGE = CASE WHEN candidates IS NULL THEN 'candidates must not be null'
                           ELSE format('unknown candidates "%s"', candidates) END,
            HINT = 'Pass ''all'' (every item of the model), ''test'' (the items of the test table) or ''cold'' (the test items without training interactions in the model).';
    END IF;
END
$$;
COMMENT ON FUNCTION recsys.eval_check_candidates(text)
    IS 'internal: error unless candidates is all, test or cold';

CREATE FUNCTION @extschema@.split_items(
    source         regclass,
    train_table    text,
    test_table     text,
    test_fraction  double precision DEFAULT 0.2,
    seed           integer DEFAULT 42,
    user_col       name DEFAULT 'user_id',
    item_col       name DEFAULT 'item_id',
    replace        boolean DEFAULT false,
    target_schema  name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (train_rows bigint, test_rows bigint, test_items bigint, test_users bigint)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    i text := quote_ident(item_col);
    hash text;
    train_name text;
    test_name text;
    nitems bigint;
    nnull bigint;
    cut_h bigint;
    cut_i bigint;
BEGIN
    IF test_fraction IS NULL OR NOT (test_fraction > 0 AND test_fraction < 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('test_fraction must be between 0 and 1 (exclusive), got %s',
                             coalesce(test_fraction::text, 'NULL')),
            HINT = 'For example test_fraction => 0.2 holds out 20% of the items, with all their interactions.';
    END IF;
    PERFORM recsys.eval_check_split(test_fraction, NULL, 2, seed);
    PERFORM recsys.eval_column_type(source, user_col, 'user', 'id');
    PERFORM recsys.eval_column_type(source, item_col, 'item', 'id');
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, item_col], '{user,item}');
    train_name := recsys.eval_target_table(train_table, target_schema, replace, 'train table', source);
    test_name := recsys.eval_target_table(test_table, target_schema, replace, 'test table', source);
    IF train_name = test_name THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('train and test table are the same table %s', train_name);
    END IF;
    hash := format('pg_catalog.hashint8extended(s.%s::bigint, %s)', i, seed);

    EXECUTE format('SELECT count(DISTINCT s.%s), count(*) FILTER (WHERE s.%s IS NULL OR s.%s IS NULL) FROM %s s',
                   i, u, i, source)
        INTO nitems, nnull;
    IF nnull > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('user or item column of relation %s contains null values', source),
            HINT = 'Split a view that filters out rows with null ids.';
    END IF;
    IF nitems < 2 THEN
        RAISE EXCEPTION USING ERRCODE = '02000',  -- no_data, which PL/pgSQL cannot name
            MESSAGE = format('relation %s has %s distinct items, an item split needs at least 2',
                             source, nitems),
            HINT = 'At least one item must stay in training and one go to the test table.';
    END IF;
    -- round(test_fraction * items) half up, at least 1, at most items - 1.
    test_items := recsys.eval_test_size(nitems, test_fraction, NULL);

    -- The test items are the test_items smallest (hash, item); find the
    -- largest of them, then each table is one scan with a row comparison.
    EXECUTE format('SELECT p.h, p.i FROM (SELECT DISTINCT %s AS h, s.%s::bigint AS i FROM %s s) p
                    ORDER BY p.h, p.i OFFSET $1 LIMIT 1', hash, i, source)
        USING test_items - 1 INTO cut_h, cut_i;

    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, s.%s::bigint) <= ($1, $2)',
                   test_name, source, hash, i)
        USING cut_h, cut_i;
    GET DIAGNOSTICS test_rows = ROW_COUNT;
    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, s.%s::bigint) > ($1, $2)',
                   train_name, source, hash, i)
        USING cut_h, cut_i;
    GET DIAGNOSTICS train_rows = ROW_COUNT;
    EXECUTE format('SELECT count(DISTINCT t.%s) FROM %s t', u, test_name) INTO test_users;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.split_items(regclass, text, text, double precision, integer, name, name, boolean, name)
    IS 'item cold-start holdout: round(test_fraction * items) items, chosen by a seeded hash, go to the test table with all their interactions, the rest to the train table, so that no test item is in training';

CREATE OR REPLACE FUNCTION @extschema@.split_random(
    source         regclass,
    train_table    text,
    test_table     text,
    test_fraction  double precision DEFAULT 0.2,
    seed           integer DEFAULT 42,
    user_col       name DEFAULT 'user_id',
    item_col       name DEFAULT 'item_id',
    replace        boolean DEFAULT false,
    target_schema  name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (train_rows bigint, test_rows bigint, test_users bigint)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    i text := quote_ident(item_col);
    hash text;
    train_name text;
    test_name text;
    npairs bigint;
    nnull bigint;
    ntest bigint;
    cut_h bigint;
    cut_u bigint;
    cut_i bigint;
BEGIN
    PERFORM recsys.eval_check_split(test_fraction, NULL, 2, seed);
    PERFORM recsys.eval_column_type(source, user_col, 'user', 'id');
    PERFORM recsys.eval_column_type(source, item_col, 'item', 'id');
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, item_col], '{user,item}');
    train_name := recsys.eval_target_table(train_table, target_schema, replace, 'train table', source);
    test_name := recsys.eval_target_table(test_table, target_schema, replace, 'test table', source);
    IF train_name = test_name THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('train and test table are the same table %s', train_name);
    END IF;
    hash := format('pg_catalog.hashint8extended(s.%s::bigint, pg_catalog.hashint8extended(s.%s::bigint, %s))',
                   i, u, seed);

    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE p.u IS NULL OR p.i IS NULL)
                    FROM (SELECT DISTINCT s.%s AS u, s.%s AS i FROM %s s) p', u, i, source)
        INTO npairs, nnull;
    IF nnull > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('user or item column of relation %s contains null values', source),
            HINT = 'Split a view that filters out rows with null ids.';
    END IF;
    IF npairs < 2 THEN
        RAISE EXCEPTION USING ERRCODE = '02000',  -- no_data, which PL/pgSQL cannot name
            MESSAGE = format('relation %s has %s distinct (user, item) pairs, a split needs at least 2',
                             source, npairs);
    END IF;
    ntest := recsys.eval_test_size(npairs, test_fraction, NULL);

    -- The test pairs are the ntest smallest (hash, user, item); find the
    -- largest of them, then each table is one scan with a row comparison.
    EXECUTE format('SELECT p.h, p.u, p.i FROM (SELECT DISTINCT %s AS h, s.%s::bigint AS u, s.%s::bigint AS i
                                              FROM %s s) p
                    ORDER BY p.h, p.u, p.i OFFSET $1 LIMIT 1', hash, u, i, source)
        USING ntest - 1 INTO cut_h, cut_u, cut_i;

    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, s.%s::bigint, s.%s::bigint) <= ($1, $2, $3)',
                   test_name, source, hash, u, i)
        USING cut_h, cut_u, cut_i;
    GET DIAGNOSTICS test_rows = ROW_COUNT;
    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, s.%s::bigint, s.%s::bigint) > ($1, $2, $3)',
                   train_name, source, hash, u, i)
        USING cut_h, cut_u, cut_i;
    GET DIAGNOSTICS train_rows = ROW_COUNT;
    EXECUTE format('SELECT count(DISTINCT t.%s) FROM %s t', u, test_name) INTO test_users;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.split_random(regclass, text, text, double precision, integer, name, name, boolean, name)
    IS 'random holdout: round(test_fraction * pairs) (user, item) pairs, chosen by a seeded hash, go to the test table, the rest to the train table';

CREATE OR REPLACE FUNCTION @extschema@.split_temporal(
    source         regclass,
    train_table    text,
    test_table     text,
    time_col       name,
    test_fraction  double precision DEFAULT 0.2,
    per_user       boolean DEFAULT false,
    test_count     integer DEFAULT NULL,
    min_history    integer DEFAULT 2,
    user_col       name DEFAULT 'user_id',
    replace        boolean DEFAULT false,
    target_schema  name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (train_rows bigint, test_rows bigint, test_users bigint)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    t text := quote_ident(time_col);
    train_name text;
    test_name text;
    nrows bigint;
    nnull bigint;
    ntest bigint;
    cutoff text;
BEGIN
    IF per_user IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'per_user must not be null';
    END IF;
    IF test_count IS NOT NULL AND NOT per_user THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'test_count needs per_user => true',
            HINT = 'A global temporal split holds out a fraction of all rows: use test_fraction.';
    END IF;
    PERFORM recsys.eval_check_split(test_fraction, test_count, min_history, 0);
    PERFORM recsys.eval_column_type(source, user_col, 'user', 'id');
    PERFORM recsys.eval_column_type(source, time_col, 'time', 'any');
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, time_col], '{user,time}');
    train_name := recsys.eval_target_table(train_table, target_schema, replace, 'train table', source);
    test_name := recsys.eval_target_table(test_table, target_schema, replace, 'test table', source);
    IF train_name = test_name THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('train and test table are the same table %s', train_name);
    END IF;
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE s.%s IS NULL OR s.%s IS NULL) FROM %s s',
                   u, t, source)
        INTO nrows, nnull;
    IF nnull > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('user or time column of relation %s contains null values', source),
            HINT = 'Split a view that filters out rows without a user or a time.';
    END IF;
    IF nrows < 2 THEN
        RAISE EXCEPTION USING ERRCODE = '02000',  -- no_data, which PL/pgSQL cannot name
            MESSAGE = format('relation %s has %s rows, a split needs at least 2', source, nrows);
    END IF;

    -- The cutoff is the time of the last row that must stay in training
    -- (in time order); only rows strictly later go to the test table, so
    -- rows at the cutoff time all stay in training and every test time is
    -- later than every training time (of the user, with per_user).
    IF per_user THEN
        cutoff := format(
            'SELECT r.u, r.t AS cutoff
             FROM (SELECT s.%1$s AS u, s.%2$s AS t,
                          pg_catalog.row_number() OVER (PARTITION BY s.%1$s ORDER BY s.%2$s) AS rn,
                          pg_catalog.count(*) OVER (PARTITION BY s.%1$s) AS n
                   FROM %3$s s) r
             WHERE r.n >= $1 AND r.rn = r.n - recsys.eval_test_size(r.n, $2, $3)',
            u, t, source);
        EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s JOIN (%s) c ON c.u = s.%s WHERE s.%s > c.cutoff',
                       test_name, source, cutoff, u, t)
            USING min_history, test_fraction, test_count;
        GET DIAGNOSTICS test_rows = ROW_COUNT;
        EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s LEFT JOIN (%s) c ON c.u = s.%s
                        WHERE c.u IS NULL OR s.%s <= c.cutoff',
                       train_name, source, cutoff, u, t)
            USING min_history, test_fraction, test_count;
        GET DIAGNOSTICS train_rows = ROW_COUNT;
    ELSE
        ntest := recsys.eval_test_size(nrows, test_fraction, NULL);
        cutoff := format('(SELECT s.%1$s FROM %2$s s ORDER BY s.%1$s OFFSET %3$s LIMIT 1)',
                         t, source, nrows - ntest - 1);
        EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE s.%s > %s',
                       test_name, source, t, cutoff);
        GET DIAGNOSTICS test_rows = ROW_COUNT;
        EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE s.%s <= %s',
                       train_name, source, t, cutoff);
        GET DIAGNOSTICS train_rows = ROW_COUNT;
    END IF;
    EXECUTE format('SELECT count(DISTINCT t.%s) FROM %s t', u, test_name) INTO test_users;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.split_temporal(regclass, text, text, name, double precision, boolean, integer, integer, name, boolean, name)
    IS 'temporal split: the latest rows by time_col go to the test table (a fraction of all rows, or of each user''s rows with per_user), every test row strictly later than every training row (of that user)';

DROP FUNCTION @extschema@.evaluate(text, regclass, integer, name, name, name, double precision, boolean);
CREATE FUNCTION @extschema@.evaluate(
    model                text,
    test                 regclass,
    k                    integer DEFAULT 10,
    user_col             name DEFAULT NULL,
    item_col             name DEFAULT NULL,
    value_col            name DEFAULT NULL,
    relevance_threshold  double precision DEFAULT NULL,
    compute_auc          boolean DEFAULT true,
    candidates           text DEFAULT 'all')
RETURNS TABLE (metric text, at_k integer, model_value double precision,
               baseline_value double precision, evaluated bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m record;
    r record;
    ucol name;
    icol name;
    vcol name;
    vexpr text;
    nrank integer;
    catalog_size bigint;
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'model must not be null';
    END IF;
    IF k IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'k must not be null';
    END IF;
    IF k <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('k must be positive, got %s', k),
            HINT = 'k is the number of recommendations evaluated per user, for example 10.';
    END IF;
    IF compute_auc IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'compute_auc must not be null';
    END IF;
    PERFORM recsys.eval_check_candidates(candidates);
    SELECT mo.model_id, mo.method, mo.user_col, mo.item_col, mo.value_col, mo.num_items, mo.global_mean
    INTO m FROM recsys.models mo WHERE mo.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('model "%s" does not exist', model),
            HINT = 'See SELECT name FROM recsys.models.';
    END IF;

    ucol := coalesce(user_col, m.user_col);
    icol := coalesce(item_col, m.item_col);
    PERFORM recsys.eval_column_type(test, ucol, 'user', 'id');
    PERFORM recsys.eval_column_type(test, icol, 'item', 'id');
    PERFORM recsys.eval_distinct_columns(ARRAY[ucol, icol, value_col], '{user,item,value}');
    -- Values: the given column, else the model's value column if the test
    -- table has it.  Explicit models need them (rating error).
    vcol := value_col;
    IF vcol IS NULL AND m.value_col IS NOT NULL AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = test AND a.attname = m.value_col AND a.attnum > 0 AND NOT a.attisdropped) THEN
        vcol := m.value_col;
    END IF;
    IF vcol IS NULL AND m.method = 'als' THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = format('test relation %s has no value column "%s" for explicit model "%s"',
                             test, m.value_col, model),
            HINT = 'Pass value_col => the column that holds the test ratings.';
    END IF;
    IF vcol IS NULL AND relevance_threshold IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'relevance_threshold needs a value column',
            HINT = 'Pass value_col => the column the threshold applies to.';
    END IF;
    IF vcol IS NOT NULL THEN
        PERFORM recsys.eval_column_type(test, vcol, 'value', 'value');
        -- Duplicate test rows merge as in training: a rating's mean, an
        -- event count's sum.
        vexpr := format(CASE WHEN m.method = 'als' THEN 'pg_catalog.avg(s.%I::float8)'
                             ELSE 'pg_catalog.sum(s.%I::float8)' END, vcol);
    ELSE
        vexpr := 'NULL::float8';
    END IF;
    nrank := CASE WHEN compute_auc THEN greatest(k, m.num_items) ELSE k END;

    -- The candidates (NULL for 'all'): the distinct test items, for 'cold'
    -- only those without training interactions in the model.  Their
    -- number is the catalog that coverage and full rankings (AUC) use.
    -- Per test user: the relevant items (test items at or above the
    -- threshold, among the candidates, minus the user's training items,
    -- which no ranking may contain), the model's ranking (recommend among
    -- the candidates, training items excluded), and the baseline's: the
    -- candidates (for 'all', the model's training items) by training
    -- popularity (zero for an item without training interactions), ties
    -- by id as recommend serves unknown users, training items excluded.
    -- Users without relevant items are skipped.
    EXECUTE format($q$
        WITH t AS (
            SELECT s.%1$I::bigint AS u, s.%2$I::bigint AS i, %3$s AS v
            FROM %4$s s
            WHERE s.%1$I IS NOT NULL AND s.%2$I IS NOT NULL
            GROUP BY 1, 2),
        ci AS (
            SELECT DISTINCT t.i FROM t
            WHERE $7 = 'test'
               OR ($7 = 'cold' AND NOT EXISTS (
                       SELECT 1 FROM recsys.item_factors f
                       WHERE f.model_id = $1 AND f.item_id = t.i AND f.popularity > 0))),
        cand AS (
            SELECT CASE WHEN $7 = 'all' THEN NULL::bigint[]
                        ELSE coalesce((SELECT pg_catalog.array_agg(ci.i ORDER BY ci.i) FROM ci), '{}') END AS items),
        pop AS (
            SELECT CASE WHEN cand.items IS NULL THEN
                       (SELECT coalesce(pg_catalog.array_agg(f.item_id ORDER BY f.popularity DESC, f.item_id), '{}')
                        FROM recsys.item_factors f WHERE f.model_id = $1)
                   ELSE
                       (SELECT coalesce(pg_catalog.array_agg(c.i ORDER BY coalesce(f.popularity, 0) DESC, c.i), '{}')
                        FROM pg_catalog.unnest(cand.items) AS c(i)
                        LEFT JOIN recsys.item_factors f ON f.model_id = $1 AND f.item_id = c.i)
                   END AS items
            FROM cand),
        usr AS (
            SELECT g.u, coalesce(f.seen, '{}') AS seen,
                   recsys.eval_exclude(g.rel, coalesce(f.seen, '{}'), pg_catalog.cardinality(g.rel)) AS rel
            FROM (SELECT t.u, pg_catalog.array_agg(t.i) FILTER (WHERE ($4 IS NULL OR t.v >= $4)
                                                                  AND ($7 = 'all' OR ci.i IS NOT NULL)) AS rel
                  FROM t LEFT JOIN ci ON ci.i = t.i GROUP BY t.u) g
            LEFT JOIN recsys.user_factors f ON f.model_id = $1 AND f.user_id = g.u
            WHERE g.rel IS NOT NULL),
        ranked AS (
            SELECT usr.u, usr.seen, usr.rel,
                   ARRAY(SELECT r.item_id
                         FROM @extschema@.recommend(usr.u,
                                  CASE WHEN cand.items IS NOT NULL AND $6
                                       THEN greatest($3, pg_catalog.cardinality(cand.items)) ELSE $5 END,
                                  $2, candidates => cand.items) WITH ORDINALITY AS r(item_id, score, o)
                         ORDER BY r.o) AS rec,
                   recsys.eval_exclude(pop.items, usr.seen, $3) AS brec
            FROM usr, pop, cand
            WHERE pg_catalog.cardinality(usr.rel) > 0),
        scored AS (
            SELECT ranked.*,
                   CASE WHEN $6 THEN @extschema@.auc(ranked.rec, ranked.rel) END AS auc,
                   CASE WHEN $6 THEN @extschema@.auc(pop.items, ranked.rel, ranked.seen) END AS bauc
            FROM ranked, pop)
        SELECT @extschema@.ranking_metrics(sc.rec[1:$3], sc.rel, $3) AS mm,
               @extschema@.ranking_metrics(sc.brec, sc.rel, $3) AS bm,
               pg_catalog.avg(sc.auc) AS auc, pg_catalog.avg(sc.bauc) AS bauc,
               pg_catalog.count(sc.auc) AS auc_users,
               pg_catalog.count(*) AS users,
               (SELECT pg_catalog.count(DISTINCT x) FROM scored c, pg_catalog.unnest(c.rec[1:$3]) x) AS cov,
               (SELECT pg_catalog.count(DISTINCT x) FROM scored c, pg_catalog.unnest(c.brec) x) AS bcov,
               (SELECT cand.items FROM cand) AS cand
        FROM scored sc
        $q$, ucol, icol, vexpr, test)
    INTO r
    USING m.model_id, model, k, relevance_threshold, nrank, compute_auc, candidates;

    IF candidates = 'cold' AND pg_catalog.cardinality(r.cand) = 0 THEN
        RAISE WARNING 'test relation % has no item without training interactions in model "%"', test, model
            USING HINT = 'Hold out items with split_items and train the model on its train table: then the test items are cold.';
    END IF;
    catalog_size := CASE WHEN candidates = 'all' THEN m.num_items ELSE pg_catalog.cardinality(r.cand) END;

    IF m.method = 'als' THEN
        -- Rating error over the test pairs with a value (among the
        -- candidates); the baseline predicts the training mean (a
        -- popularity ranking predicts no ratings).
        RETURN QUERY EXECUTE format($q$
            WITH t AS (
                SELECT s.%1$I::bigint AS u, s.%2$I::bigint AS i, %3$s AS v
                FROM %4$s s
                WHERE s.%1$I IS NOT NULL AND s.%2$I IS NOT NULL
                  AND ($3::bigint[] IS NULL OR s.%2$I::bigint IN (SELECT pg_catalog.unnest($3::bigint[])))
                GROUP BY 1, 2),
            e AS (
                SELECT @extschema@.rmse(@extschema@.predict(t.u, t.i, $1)::float8, t.v) AS rmse,
                       @extschema@.mae(@extschema@.predict(t.u, t.i, $1)::float8, t.v) AS mae,
                       @extschema@.rmse($2, t.v) AS brmse,
                       @extschema@.mae($2, t.v) AS bmae,
                       pg_catalog.count(t.v) AS pairs
                FROM t)
            SELECT 'rmse'::text, NULL::integer, e.rmse, e.brmse, e.pairs FROM e
            UNION ALL
            SELECT 'mae'::text, NULL::integer, e.mae, e.bmae, e.pairs FROM e
            $q$, ucol, icol, vexpr, test)
        USING model, m.global_mean, r.cand;
    END IF;

    metric := 'precision'; at_k := k; evaluated := (r.mm).users;
    model_value := (r.mm).precision; baseline_value := (r.bm).precision;
    RETURN NEXT;
    metric := 'recall'; model_value := (r.mm).recall; baseline_value := (r.bm).recall;
    RETURN NEXT;
    metric := 'ndcg'; model_value := (r.mm).ndcg; baseline_value := (r.bm).ndcg;
    RETURN NEXT;
    metric := 'map'; model_value := (r.mm).map; baseline_value := (r.bm).map;
    RETURN NEXT;
    metric := 'hit_rate'; model_value := (r.mm).hit_rate; baseline_value := (r.bm).hit_rate;
    RETURN NEXT;
    metric := 'mrr'; model_value := (r.mm).mrr; baseline_value := (r.bm).mrr;
    RETURN NEXT;
    metric := 'auc'; at_k := NULL; evaluated := r.auc_users;
    model_value := r.auc; baseline_value := r.bauc;
    RETURN NEXT;
    metric := 'coverage'; at_k := k; evaluated := r.users;
    model_value := CASE WHEN r.users > 0 THEN r.cov::float8 / NULLIF(catalog_size, 0) END;
    baseline_value := CASE WHEN r.users > 0 THEN r.bcov::float8 / NULLIF(catalog_size, 0) END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.evaluate(text, regclass, integer, name, name, name, double precision, boolean, text)
    IS 'offline evaluation of a model on a test table, beside the popular baseline: rmse and mae (explicit models), precision, recall, ndcg, map, hit_rate and mrr at k, auc, and catalog coverage; candidates ''test'' or ''cold'' ranks only the test items, or those without training interactions (cold-start)';

DROP FUNCTION @extschema@.train_and_evaluate(regclass, regclass, jsonb, integer, name, name, name, double precision, boolean);
CREATE FUNCTION @extschema@.train_and_evaluate(
    train_table          regclass,
    test_table           regclass,
    params               jsonb DEFAULT '{}',
    k                    integer DEFAULT 10,
    user_col             name DEFAULT 'user_id',
    item_col             name DEFAULT 'item_id',
    value_col            name DEFAULT NULL,
    relevance_threshold  double precision DEFAULT NULL,
    compute_auc          boolean DEFAULT true,
    candidates           text DEFAULT 'all')
RETURNS TABLE (metric text, at_k integer, model_value double precision,
               baseline_value double precision, evaluated bigint)
LANGUAGE plpgsql VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    model_name text := format('__recsys_eval_%s_%s', pg_catalog.pg_backend_pid(),
                              (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint);
BEGIN
    PERFORM recsys.eval_check_candidates(candidates);
    PERFORM recsys.eval_train(model_name, train_table, params, user_col, item_col, value_col);
    RETURN QUERY SELECT * FROM @extschema@.evaluate(model_name, test_table, k, user_col, item_col,
                                                   value_col, relevance_threshold, compute_auc,
                                                   candidates);
    PERFORM @extschema@.drop_model(model_name);
END
$$;
COMMENT ON FUNCTION @extschema@.train_and_evaluate(regclass, regclass, jsonb, integer, name, name, name, double precision, boolean, text)
    IS 'train a temporary model on one table with the given hyperparameters (jsonb), evaluate it on another with evaluate() (candidates: all, test or cold), and drop it';

-- Internals out of the extension's schema (issue 12, item 4)
--
-- The extension's schema (public by default) keeps what a user calls; the
-- aggregates' support functions, the result type of ranking_metrics and the
-- experiments' assignment and statistics functions move to schema recsys
-- (their oids, privileges and dependents are kept).  The functions that call
-- them are replaced with their 1.2 definitions, which qualify the new names.
--
ALTER FUNCTION @extschema@.als_solve_transfn(internal, real[], double precision, double precision) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.als_solve_combinefn(internal, internal) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.als_solve_serialfn(internal) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.als_solve_deserialfn(bytea, internal) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.als_solve_finalfn(internal) SET SCHEMA recsys;
COMMENT ON FUNCTION recsys.als_solve_transfn(internal, real[], double precision, double precision)
    IS 'transition function of the als_solve aggregate';
COMMENT ON FUNCTION recsys.als_solve_combinefn(internal, internal)
    IS 'combine function of the als_solve aggregate';
COMMENT ON FUNCTION recsys.als_solve_serialfn(internal)
    IS 'serialization function of the als_solve aggregate';
COMMENT ON FUNCTION recsys.als_solve_deserialfn(bytea, internal)
    IS 'deserialization function of the als_solve aggregate';
COMMENT ON FUNCTION recsys.als_solve_finalfn(internal)
    IS 'final function of the als_solve aggregate';

ALTER TYPE @extschema@.ranking_metrics_result SET SCHEMA recsys;

ALTER FUNCTION @extschema@.experiment_bucket(text, bigint) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.assign_variant(text, bigint, integer[]) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.wilson_interval(bigint, bigint, double precision) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.two_proportion_test(bigint, bigint, bigint, bigint, double precision) SET SCHEMA recsys;
ALTER FUNCTION @extschema@.sample_ratio_test(bigint[], double precision[]) SET SCHEMA recsys;

-- Their callers (70_experiments.sql, 80_catalog_writes.sql)
CREATE OR REPLACE FUNCTION recsys.assigned_variant(experiment_id bigint, user_id bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (array_agg(v.variant ORDER BY v.position))
           [recsys.assign_variant(e.salt, $2, array_agg(v.weight ORDER BY v.position))]
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.experiment_id = $1 AND e.status = 'running'
    GROUP BY e.experiment_id, e.salt
$$;
COMMENT ON FUNCTION recsys.assigned_variant(bigint, bigint)
    IS 'the variant a user is assigned to in a running experiment (NULL once ended, or if not visible)';

CREATE OR REPLACE FUNCTION @extschema@.experiment_variant(experiment text, user_id bigint)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_status  text;
    e_winner  text;
    e_salt    text;
    names     text[];
    weights   integer[];
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.status, e.winner, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position)
    INTO e_status, e_winner, e_salt, names, weights
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    IF user_id IS NULL THEN
        RETURN NULL;
    END IF;
    IF e_status = 'ended' THEN
        RETURN e_winner;
    END IF;
    RETURN names[recsys.assign_variant(e_salt, user_id, weights)];
END
$$;
COMMENT ON FUNCTION @extschema@.experiment_variant(text, bigint)
    IS 'the variant a user is served: their salted-hash assignment while the experiment runs, the winner once it has ended';

CREATE OR REPLACE FUNCTION @extschema@.recommend_experiment(
    experiment    text,
    user_id       bigint,
    n             integer DEFAULT 10,
    candidates    bigint[] DEFAULT NULL,
    exclude       bigint[] DEFAULT NULL,
    log_exposure  boolean DEFAULT true)
RETURNS TABLE (item_id bigint, score real, variant text)
LANGUAGE plpgsql VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id       bigint;
    e_status   text;
    e_winner   text;
    e_salt     text;
    names      text[];
    weights    integer[];
    models     text[];
    opts       jsonb[];
    idx        integer;
    v_opts     jsonb;
    v_version  bigint;
    shown      bigint[];
    scores     real[];
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF n IS NULL THEN
        RAISE EXCEPTION 'n must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF log_exposure IS NULL THEN
        RAISE EXCEPTION 'log_exposure must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.experiment_id, e.status, e.winner, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position),
           array_agg(v.model ORDER BY v.position), array_agg(v.options ORDER BY v.position)
    INTO e_id, e_status, e_winner, e_salt, names, weights, models, opts
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    -- A NULL user gets no rows, as from recommend().
    IF user_id IS NULL THEN
        RETURN;
    END IF;

    IF e_status = 'ended' THEN
        idx := array_position(names, e_winner);
    ELSE
        idx := recsys.assign_variant(e_salt, user_id, weights);
    END IF;
    v_opts := opts[idx];

    SELECT m.version INTO v_version FROM recsys.models m WHERE m.name = models[idx];
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" of variant "%" in experiment "%" does not exist', models[idx], names[idx], experiment
            USING ERRCODE = 'undefined_object',
                  HINT = format('Train it again with CALL train(%L, ...), or end the experiment with end_experiment(%L, winner => ...).',
                                models[idx], experiment);
    END IF;

    SELECT array_agg(r.item_id ORDER BY r.ord), array_agg(r.score ORDER BY r.ord)
    INTO shown, scores
    FROM @extschema@.recommend(user_id,
                               coalesce((v_opts ->> 'n')::integer, n),
                               models[idx],
                               coalesce((v_opts ->> 'exclude_seen')::boolean, true),
                               candidates,
                               exclude) WITH ORDINALITY AS r(item_id, score, ord);

    -- An exposure is a list that was shown: nothing shown, nothing logged.
    IF log_exposure AND e_status = 'running' AND shown IS NOT NULL THEN
        PERFORM recsys.write_experiment_exposure(e_id, names[idx], user_id, shown, v_version);
    END IF;

    RETURN QUERY
        SELECT s.i, s.s, names[idx]
        FROM unnest(shown, scores) WITH ORDINALITY AS s(i, s, ord)
        ORDER BY s.ord;
END
$$;
COMMENT ON FUNCTION @extschema@.recommend_experiment(text, bigint, integer, bigint[], bigint[], boolean)
    IS 'recommend through an experiment: the user''s variant serves recommend() with its model and options; logs the list as an exposure';

CREATE OR REPLACE FUNCTION @extschema@.log_exposure(experiment text, user_id bigint, items bigint[] DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id      bigint;
    e_status  text;
    e_salt    text;
    names     text[];
    weights   integer[];
    v_name    text;
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF array_position(items, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'items must not contain nulls' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT e.experiment_id, e.status, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position)
    INTO e_id, e_status, e_salt, names, weights
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    IF e_status = 'ended' THEN
        RETURN NULL;
    END IF;
    v_name := names[recsys.assign_variant(e_salt, user_id, weights)];
    PERFORM recsys.write_experiment_exposure(e_id, v_name, user_id, coalesce(items, '{}'), NULL);
    RETURN v_name;
END
$$;
COMMENT ON FUNCTION @extschema@.log_exposure(text, bigint, bigint[])
    IS 'log that a user was shown a list (items served some other way); returns the user''s variant, or NULL if the experiment has ended (nothing logged)';

CREATE OR REPLACE FUNCTION @extschema@.log_outcome(
    experiment  text,
    user_id     bigint,
    item_id     bigint DEFAULT NULL,
    kind        text DEFAULT 'click',
    value       double precision DEFAULT 1)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id      bigint;
    e_status  text;
    e_salt    text;
    names     text[];
    weights   integer[];
    v_name    text;
    x_id      bigint;
BEGIN
    IF experiment IS NULL THEN
        RAISE EXCEPTION 'experiment must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'user_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind IS NULL OR value IS NULL THEN
        RAISE EXCEPTION '% must not be null', CASE WHEN kind IS NULL THEN 'kind' ELSE 'value' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kind = '' THEN
        RAISE EXCEPTION 'kind must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example ''click'', ''purchase'' or ''rating''.';
    END IF;
    IF value IN ('NaN', 'Infinity', '-Infinity') THEN
        RAISE EXCEPTION 'value must be finite, got %', value
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e.experiment_id, e.status, e.salt,
           array_agg(v.variant ORDER BY v.position), array_agg(v.weight ORDER BY v.position)
    INTO e_id, e_status, e_salt, names, weights
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.name = experiment
    GROUP BY e.experiment_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;
    IF e_status = 'ended' THEN
        RETURN NULL;
    END IF;
    v_name := names[recsys.assign_variant(e_salt, user_id, weights)];

    -- Attribution: the user's latest exposure that showed the item, else
    -- the user's latest exposure; none if the user was never exposed.  Both
    -- are backward scans of the (experiment, user, exposure) index that stop
    -- at the first match.
    IF item_id IS NOT NULL THEN
        SELECT x.exposure_id INTO x_id
        FROM recsys.experiment_exposures x
        WHERE x.experiment_id = e_id AND x.user_id = log_outcome.user_id
          AND log_outcome.item_id = ANY (x.items)
        ORDER BY x.exposure_id DESC
        LIMIT 1;
    END IF;
    IF x_id IS NULL THEN
        SELECT x.exposure_id INTO x_id
        FROM recsys.experiment_exposures x
        WHERE x.experiment_id = e_id AND x.user_id = log_outcome.user_id
        ORDER BY x.exposure_id DESC
        LIMIT 1;
    END IF;

    PERFORM recsys.write_experiment_outcome(e_id, v_name, user_id, item_id, kind, value, x_id);
    RETURN v_name;
END
$$;
COMMENT ON FUNCTION @extschema@.log_outcome(text, bigint, bigint, text, double precision)
    IS 'log an outcome (click, purchase, rating, ...) of a user, attributed to their variant and latest exposure; returns the variant, or NULL if the experiment has ended (nothing logged)';

CREATE OR REPLACE FUNCTION @extschema@.experiment_report(
    experiment  text,
    outcome     text DEFAULT 'click',
    confidence  double precision DEFAULT 0.95)
RETURNS TABLE (
    variant                text,
    is_control             boolean,
    exposed_users          bigint,
    exposures              bigint,
    converted_users        bigint,
    conversion_rate        double precision,
    conversion_low         double precision,
    conversion_high        double precision,
    outcomes               bigint,
    outcome_value          double precision,
    clicked_exposures      bigint,
    ctr                    double precision,
    ctr_low                double precision,
    ctr_high               double precision,
    difference             double precision,
    difference_low         double precision,
    difference_high        double precision,
    relative_lift          double precision,
    z                      double precision,
    p_value                double precision,
    significant            boolean,
    srm_p_value            double precision,
    unattributed_outcomes  bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    e_id     bigint;
    e_ctl    text;
BEGIN
    IF experiment IS NULL OR outcome IS NULL OR confidence IS NULL THEN
        RAISE EXCEPTION '% must not be null',
                CASE WHEN experiment IS NULL THEN 'experiment' WHEN outcome IS NULL THEN 'outcome' ELSE 'confidence' END
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT (confidence > 0 AND confidence < 1) THEN
        RAISE EXCEPTION 'confidence must be between 0 and 1 (exclusive), got %', confidence
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use for example 0.95 for 95% intervals.';
    END IF;
    SELECT e.experiment_id, e.control INTO e_id, e_ctl
    FROM recsys.experiments e WHERE e.name = experiment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment
            USING ERRCODE = 'undefined_object',
                  HINT = 'See SELECT name FROM recsys.experiments.';
    END IF;

    RETURN QUERY
    WITH shown AS (
        SELECT x.variant AS v, count(*) AS exposures, count(DISTINCT x.user_id) AS users
        FROM recsys.experiment_exposures x
        WHERE x.experiment_id = e_id
        GROUP BY x.variant
    ), done AS (
        -- Attributed outcomes come from exposed users, after an exposure.
        SELECT o.variant AS v,
               count(o.exposure_id) AS outcomes,
               sum(o.value) FILTER (WHERE o.exposure_id IS NOT NULL) AS total,
               count(DISTINCT o.user_id) FILTER (WHERE o.exposure_id IS NOT NULL) AS users,
               count(DISTINCT o.exposure_id) AS exposures,
               count(*) FILTER (WHERE o.exposure_id IS NULL) AS unattributed
        FROM recsys.experiment_outcomes o
        WHERE o.experiment_id = e_id AND o.kind = outcome
        GROUP BY o.variant
    ), per AS (
        SELECT v.variant AS v, v.position, v.weight,
               coalesce(s.users, 0) AS exposed_users,
               coalesce(s.exposures, 0) AS exposures,
               coalesce(d.users, 0) AS converted_users,
               coalesce(d.outcomes, 0) AS outcomes,
               coalesce(d.total, 0) AS outcome_value,
               coalesce(d.exposures, 0) AS clicked_exposures,
               coalesce(d.unattributed, 0) AS unattributed
        FROM recsys.experiment_variants v
        LEFT JOIN shown s ON s.v = v.variant
        LEFT JOIN done d ON d.v = v.variant
        WHERE v.experiment_id = e_id
    ), ctl AS (
        SELECT p.exposed_users, p.converted_users FROM per p WHERE p.v = e_ctl
    ), srm AS (
        SELECT recsys.sample_ratio_test(array_agg(p.exposed_users ORDER BY p.position),
                                        array_agg(p.weight::double precision ORDER BY p.position)) AS p
        FROM per p
    )
    SELECT p.v,
           p.v = e_ctl,
           p.exposed_users,
           p.exposures,
           p.converted_users,
           p.converted_users::double precision / nullif(p.exposed_users, 0),
           cw.low,
           cw.high,
           p.outcomes,
           p.outcome_value,
           p.clicked_exposures,
           p.clicked_exposures::double precision / nullif(p.exposures, 0),
           tw.low,
           tw.high,
           t.difference,
           t.low,
           t.high,
           t.difference / nullif(c.converted_users::double precision / nullif(c.exposed_users, 0), 0),
           t.z,
           t.p_value,
           t.p_value < 1 - confidence,
           srm.p,
           p.unattributed
    FROM per p
    CROSS JOIN ctl c
    CROSS JOIN srm
    CROSS JOIN LATERAL recsys.wilson_interval(p.converted_users, p.exposed_users, confidence) cw
    CROSS JOIN LATERAL recsys.wilson_interval(p.clicked_exposures, p.exposures, confidence) tw
    LEFT JOIN LATERAL recsys.two_proportion_test(c.converted_users, c.exposed_users,
                                                 p.converted_users, p.exposed_users, confidence) t
        ON p.v <> e_ctl
    ORDER BY p.position;
END
$$;
COMMENT ON FUNCTION @extschema@.experiment_report(text, text, double precision)
    IS 'per variant: exposed users, exposures, conversion rate and click-through rate with Wilson intervals, difference to the control (Newcombe interval), pooled two-proportion z-test, sample ratio mismatch p-value';

-- Models keyed by text, varchar or uuid ids: their dictionary (10_storage.sql,
-- 15_access.sql) and the serving functions by text id (45_text_ids.sql)
CREATE TABLE recsys.id_map (
    model_id          bigint NOT NULL,
    side              text NOT NULL CHECK (side IN ('item', 'user')),
    external          text NOT NULL,
    internal          bigint NOT NULL,
    PRIMARY KEY (model_id, side, external),
    -- internal before side: with side second, the planner can take this
    -- index for lookups by external id too (both look unique), and filter
    UNIQUE (model_id, internal, side)
);
COMMENT ON TABLE recsys.id_map IS 'for models trained on text, varchar or uuid ids: the model''s (internal) id of each external id';
SELECT pg_catalog.pg_extension_config_dump('recsys.id_map', '');
ALTER TABLE recsys.id_map ENABLE ROW LEVEL SECURITY;
CREATE POLICY id_map_serve ON recsys.id_map FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
GRANT SELECT ON recsys.id_map TO PUBLIC;
CREATE FUNCTION @extschema@.recommend(
    user_id       text,
    n             integer DEFAULT 10,
    model         text DEFAULT NULL,
    exclude_seen  boolean DEFAULT true,
    candidates    text[] DEFAULT NULL,
    exclude       text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, integer, text, boolean, text[], text[])
    IS 'top-n items for a user, by the source''s text (or uuid) ids; popular items for users unknown to the model';

CREATE FUNCTION @extschema@.predict(
    user_id  text,
    item_id  text,
    model    text DEFAULT NULL)
RETURNS real
AS 'MODULE_PATHNAME', 'recsys_predict'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.predict(text, text, text)
    IS 'predicted value of an item for a user, by text ids';

CREATE FUNCTION @extschema@.similar_items(
    item_id  text,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, integer, text)
    IS 'the n items most similar to the item, by text ids';

CREATE FUNCTION @extschema@.similar_users(
    user_id  text,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (user_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_users'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, integer, text)
    IS 'the n users most similar to the user, by text ids';

CREATE FUNCTION @extschema@.recommend_for_items(
    items    text[],
    n        integer DEFAULT 10,
    model    text DEFAULT NULL,
    "values" double precision[] DEFAULT NULL)
RETURNS TABLE (item_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_for_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(text[], integer, text, double precision[])
    IS 'top-n items for a new or anonymous user from the items they touched, by text ids';

CREATE FUNCTION @extschema@.explain(
    user_id  text,
    item_id  text,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id text, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain(text, text, integer, text)
    IS 'the items of the user''s history that contribute most to the item''s score, by text ids; a last row with a NULL item_id holds the rest';

CREATE FUNCTION @extschema@.explain_features(
    user_id  text,
    item_id  text,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (feature text, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain_features'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain_features(text, text, integer, text)
    IS 'the features of the item that contribute most to its score for the user, by text ids';

CREATE FUNCTION @extschema@.refresh_user(model text, user_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_user(text, text)
    IS 'recompute one user''s factors from their current rows in the model''s source, by text id (a new user gets an id); false if none are left';

CREATE FUNCTION @extschema@.refresh_item(model text, item_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_item'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_item(text, text)
    IS 'compute one item''s row from its current features and interactions, by text id (a new item gets an id); false if it has neither';

CREATE FUNCTION @extschema@.forget_user(model text, user_id text)
RETURNS integer
AS 'MODULE_PATHNAME', 'recsys_forget_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.forget_user(text, text)
    IS 'delete a user (by text id) from a model, with their id, and re-solve the items they had; returns the number of items re-solved';

-- train with the source given as text (20_train.sql)
-- The same with the source as text: a quoted name resolves here (string
-- literals prefer text), so that a query or a missing relation gets an
-- error that says what to pass (train.c: SourceArg)
CREATE PROCEDURE @extschema@.train(
    model           text,
    source          text,
    user_col        name DEFAULT 'user_id',
    item_col        name DEFAULT 'item_id',
    value_col       name DEFAULT NULL,
    method          text DEFAULT 'als',
    factors         integer DEFAULT NULL,
    iterations      integer DEFAULT NULL,
    regularization  double precision DEFAULT NULL,
    seed            integer DEFAULT NULL,
    alpha           double precision DEFAULT NULL,
    solver          text DEFAULT NULL,
    cg_steps        integer DEFAULT NULL,
    scaling         text DEFAULT NULL,
    epsilon         double precision DEFAULT NULL,
    options         jsonb DEFAULT '{}')
AS 'MODULE_PATHNAME', 'recsys_train_1_2'
LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.train(text, text, name, name, name, text, integer, integer, double precision, integer, double precision, text, integer, text, double precision, jsonb)
    IS 'train (or retrain) a model, the source given by name (a table or view on the search_path, or schema-qualified): as train(text, regclass, ...)';

-- Distributed training (22_distributed.sql, src/distributed.c, src/shard.c)
ALTER TABLE recsys.training_log ADD COLUMN bytes_shipped bigint;
COMMENT ON COLUMN recsys.training_log.bytes_shipped IS 'distributed training: the bytes sent to and received from the shards in the iteration';

--
-- Distributed training (src/distributed.c drives, src/shard.c works): the
-- functions a coordinator's train() calls on each shard, in one session
-- per shard and training.  Internal; they read the shard's rows with the
-- connecting role's privileges and write nothing.
--
CREATE FUNCTION recsys.shard_open(
    source      regclass,
    user_col    name,
    item_col    name,
    value_col   name,
    method      text,
    params      jsonb,
    OUT users       bytea,
    OUT items       bytea,
    OUT nnz         bigint,
    OUT value_sum   double precision,
    OUT null_values bigint,
    OUT duplicates  bigint,
    OUT item_counts bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shard_open'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_open(regclass, name, name, name, text, jsonb)
    IS 'internal (distributed training): read this shard''s rows into the session and return its user and item ids';

CREATE FUNCTION recsys.shard_setup(items bytea, mean double precision, init bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'recsys_shard_setup'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_setup(bytea, double precision, bytea)
    IS 'internal (distributed training): the global item order, the mean and this shard''s initial user factors';

CREATE FUNCTION recsys.shard_item_normals(OUT kind text, OUT data bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_shard_item_normals'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_item_normals()
    IS 'internal (distributed training): this shard''s partial normal equations of the item half-step';

CREATE FUNCTION recsys.shard_item_cg(p bytea, OUT gram bytea, OUT partial bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shard_item_cg'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_item_cg(bytea)
    IS 'internal (distributed training): one round of the conjugate-gradient item half-step over this shard''s users';

CREATE FUNCTION recsys.shard_user_step(items bytea, OUT loss_part double precision, OUT norms double precision)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shard_user_step'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_user_step(bytea)
    IS 'internal (distributed training): re-solve this shard''s users against the new item factors; its part of the loss';

CREATE FUNCTION recsys.shard_export(
    OUT ids bytea, OUT bias bytea, OUT factors bytea,
    OUT seen_counts bytea, OUT seen bytea, OUT seen_values bytea)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_shard_export'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_export()
    IS 'internal (distributed training): this shard''s final user rows, in blocks';

CREATE FUNCTION recsys.shard_close()
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_shard_close'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_close()
    IS 'internal (distributed training): end this session''s training and free its memory';

-- Evaluation with text ids (issue 12, item 3)
--
-- The splits, evaluate() and tuning (60_evaluate.sql) take text, varchar,
-- char and uuid ids as train does: the splits hash them with
-- hashtextextended (integer ids hash as before, so their splits are
-- unchanged); evaluate() matches test ids to the model's by their text and
-- serves text-keyed models through the text overloads; evaluate() runs
-- without JIT.  Signatures are unchanged.

CREATE OR REPLACE FUNCTION recsys.eval_column_type(rel regclass, col name, role text, kind text)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    typ oid;
    basetyp oid;
    relkind "char";
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('%s relation must not be null', role);
    END IF;
    SELECT c.relkind INTO relkind FROM pg_catalog.pg_class c WHERE c.oid = rel;
    IF relkind IS NULL OR relkind NOT IN ('r', 'v', 'm', 'f', 'p') THEN
        RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
            MESSAGE = format('%s is not a table, view, materialized view or foreign table', rel);
    END IF;
    IF NOT pg_catalog.has_table_privilege(rel, 'SELECT')
       AND NOT pg_catalog.has_any_column_privilege(rel, 'SELECT') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for relation %s', rel);
    END IF;
    IF col IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('%s column must not be null', role);
    END IF;
    SELECT a.atttypid INTO typ
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = format('column "%s" does not exist in relation %s', col, rel);
    END IF;
    IF NOT pg_catalog.has_column_privilege(rel, col, 'SELECT') THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied for column "%s" of relation %s', col, rel);
    END IF;
    -- Domains count as their base type, as in training.
    basetyp := typ;
    WHILE (SELECT t.typtype FROM pg_catalog.pg_type t WHERE t.oid = basetyp) = 'd' LOOP
        basetyp := (SELECT t.typbasetype FROM pg_catalog.pg_type t WHERE t.oid = basetyp);
    END LOOP;
    -- Ids are of the types train takes: integers, or text, varchar, char
    -- and uuid (compared as text).
    IF kind = 'id' AND basetyp NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype,
                                       'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype,
                                       'uuid'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = format('%s id column "%s" of relation %s has type %s, but an integer, text or uuid type is required',
                             role, col, rel, typ::regtype),
            HINT = 'Use a smallint, integer, bigint, text, varchar or uuid column, or a view that casts the ids to one.';
    ELSIF kind = 'value' AND basetyp NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype,
                                             'float4'::regtype, 'float8'::regtype, 'numeric'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'datatype_mismatch',
            MESSAGE = format('value column "%s" of relation %s has type %s, but a numeric type is required',
                             col, rel, typ::regtype);
    END IF;
    RETURN basetyp::regtype;
END
$$;
COMMENT ON FUNCTION recsys.eval_column_type(regclass, name, text, text)
    IS 'internal: check that a column exists, is readable and has the right kind of type (id: an integer, text, varchar, char or uuid; value: a number; or any); returns its base type';

CREATE OR REPLACE FUNCTION @extschema@.split_random(
    source         regclass,
    train_table    text,
    test_table     text,
    test_fraction  double precision DEFAULT 0.2,
    seed           integer DEFAULT 42,
    user_col       name DEFAULT 'user_id',
    item_col       name DEFAULT 'item_id',
    replace        boolean DEFAULT false,
    target_schema  name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (train_rows bigint, test_rows bigint, test_users bigint)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    i text := quote_ident(item_col);
    ukey text;
    ikey text;
    ucast text := '';
    icast text := '';
    hash text;
    train_name text;
    test_name text;
    npairs bigint;
    nnull bigint;
    ntest bigint;
    cut_h bigint;
    cut_u text;
    cut_i text;
BEGIN
    PERFORM recsys.eval_check_split(test_fraction, NULL, 2, seed);
    -- Each id as a key (integers as bigint, the others as text in byte
    -- order) and the hash of the pair.  The cut's ids travel as text.
    IF recsys.eval_column_type(source, user_col, 'user', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ukey := format('s.%s::bigint', u);
        ucast := '::bigint';
        hash := format('pg_catalog.hashint8extended(%s, %s)', ukey, seed);
    ELSE
        ukey := format('s.%s::text COLLATE "C"', u);
        hash := format('pg_catalog.hashtextextended(%s, %s)', ukey, seed);
    END IF;
    IF recsys.eval_column_type(source, item_col, 'item', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ikey := format('s.%s::bigint', i);
        icast := '::bigint';
        hash := format('pg_catalog.hashint8extended(%s, %s)', ikey, hash);
    ELSE
        ikey := format('s.%s::text COLLATE "C"', i);
        hash := format('pg_catalog.hashtextextended(%s, %s)', ikey, hash);
    END IF;
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, item_col], '{user,item}');
    train_name := recsys.eval_target_table(train_table, target_schema, replace, 'train table', source);
    test_name := recsys.eval_target_table(test_table, target_schema, replace, 'test table', source);
    IF train_name = test_name THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('train and test table are the same table %s', train_name);
    END IF;

    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE p.u IS NULL OR p.i IS NULL)
                    FROM (SELECT DISTINCT s.%s AS u, s.%s AS i FROM %s s) p', u, i, source)
        INTO npairs, nnull;
    IF nnull > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('user or item column of relation %s contains null values', source),
            HINT = 'Split a view that filters out rows with null ids.';
    END IF;
    IF npairs < 2 THEN
        RAISE EXCEPTION USING ERRCODE = '02000',  -- no_data, which PL/pgSQL cannot name
            MESSAGE = format('relation %s has %s distinct (user, item) pairs, a split needs at least 2',
                             source, npairs);
    END IF;
    ntest := recsys.eval_test_size(npairs, test_fraction, NULL);

    -- The test pairs are the ntest smallest (hash, user, item); find the
    -- largest of them, then each table is one scan with a row comparison.
    EXECUTE format('SELECT p.h, p.u, p.i FROM (SELECT DISTINCT %s AS h, %s AS u, %s AS i
                                              FROM %s s) p
                    ORDER BY p.h, p.u, p.i OFFSET $1 LIMIT 1', hash, ukey, ikey, source)
        USING ntest - 1 INTO cut_h, cut_u, cut_i;

    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, %s, %s) <= ($1, $2%s, $3%s)',
                   test_name, source, hash, ukey, ikey, ucast, icast)
        USING cut_h, cut_u, cut_i;
    GET DIAGNOSTICS test_rows = ROW_COUNT;
    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, %s, %s) > ($1, $2%s, $3%s)',
                   train_name, source, hash, ukey, ikey, ucast, icast)
        USING cut_h, cut_u, cut_i;
    GET DIAGNOSTICS train_rows = ROW_COUNT;
    EXECUTE format('SELECT count(DISTINCT t.%s) FROM %s t', u, test_name) INTO test_users;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.split_random(regclass, text, text, double precision, integer, name, name, boolean, name)
    IS 'random holdout: round(test_fraction * pairs) (user, item) pairs, chosen by a seeded hash, go to the test table, the rest to the train table';

CREATE OR REPLACE FUNCTION @extschema@.split_per_user(
    source         regclass,
    train_table    text,
    test_table     text,
    test_fraction  double precision DEFAULT 0.2,
    test_count     integer DEFAULT NULL,
    min_history    integer DEFAULT 2,
    seed           integer DEFAULT 42,
    user_col       name DEFAULT 'user_id',
    item_col       name DEFAULT 'item_id',
    replace        boolean DEFAULT false,
    target_schema  name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (train_rows bigint, test_rows bigint, test_users bigint)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    i text := quote_ident(item_col);
    ukey text;
    ikey text;
    hash text;
    train_name text;
    test_name text;
    nnull bigint;
BEGIN
    PERFORM recsys.eval_check_split(test_fraction, test_count, min_history, seed);
    -- Each id as a key (integers as bigint, the others as text in byte
    -- order) and the hash of the pair, seeded by $1.
    IF recsys.eval_column_type(source, user_col, 'user', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ukey := format('s.%s::bigint', u);
        hash := format('pg_catalog.hashint8extended(%s, $1)', ukey);
    ELSE
        ukey := format('s.%s::text COLLATE "C"', u);
        hash := format('pg_catalog.hashtextextended(%s, $1)', ukey);
    END IF;
    IF recsys.eval_column_type(source, item_col, 'item', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ikey := format('s.%s::bigint', i);
        hash := format('pg_catalog.hashint8extended(%s, %s)', ikey, hash);
    ELSE
        ikey := format('s.%s::text COLLATE "C"', i);
        hash := format('pg_catalog.hashtextextended(%s, %s)', ikey, hash);
    END IF;
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, item_col], '{user,item}');
    train_name := recsys.eval_target_table(train_table, target_schema, replace, 'train table', source);
    test_name := recsys.eval_target_table(test_table, target_schema, replace, 'test table', source);
    IF train_name = test_name THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('train and test table are the same table %s', train_name);
    END IF;
    EXECUTE format('SELECT count(*) FROM %s s WHERE s.%s IS NULL OR s.%s IS NULL', source, u, i)
        INTO nnull;
    IF nnull > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('user or item column of relation %s contains null values', source),
            HINT = 'Split a view that filters out rows with null ids.';
    END IF;

    -- Each user's distinct items in seeded-hash order; the first
    -- eval_test_size(n) of users with at least min_history items are
    -- held out.
    EXECUTE format(
        'CREATE TABLE %1$s AS
         SELECT s.* FROM %2$s s
         WHERE (%3$s, %4$s) IN (
             SELECT r.u, r.i
             FROM (SELECT p.u, p.i,
                          pg_catalog.row_number() OVER (PARTITION BY p.u ORDER BY p.h, p.i) AS rn,
                          pg_catalog.count(*) OVER (PARTITION BY p.u) AS n
                   FROM (SELECT DISTINCT %3$s AS u, %4$s AS i, %5$s AS h
                         FROM %2$s s) p) r
             WHERE r.n >= $2 AND r.rn <= recsys.eval_test_size(r.n, $3, $4))',
        test_name, source, ukey, ikey, hash)
        USING seed::bigint, min_history, test_fraction, test_count;
    GET DIAGNOSTICS test_rows = ROW_COUNT;
    EXECUTE format(
        'CREATE TABLE %1$s AS
         SELECT s.* FROM %2$s s
         WHERE NOT EXISTS (SELECT 1 FROM %3$s t WHERE t.%4$s = s.%4$s AND t.%5$s = s.%5$s)',
        train_name, source, test_name, u, i);
    GET DIAGNOSTICS train_rows = ROW_COUNT;
    EXECUTE format('SELECT count(DISTINCT t.%s) FROM %s t', u, test_name) INTO test_users;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.split_per_user(regclass, text, text, double precision, integer, integer, integer, name, name, boolean, name)
    IS 'per-user holdout: test_count (or round(test_fraction * n), at least 1) of the items of each user with at least min_history items, chosen by a seeded hash, go to the test table; every user keeps at least one item to train on';

CREATE OR REPLACE FUNCTION @extschema@.split_items(
    source         regclass,
    train_table    text,
    test_table     text,
    test_fraction  double precision DEFAULT 0.2,
    seed           integer DEFAULT 42,
    user_col       name DEFAULT 'user_id',
    item_col       name DEFAULT 'item_id',
    replace        boolean DEFAULT false,
    target_schema  name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (train_rows bigint, test_rows bigint, test_items bigint, test_users bigint)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    i text := quote_ident(item_col);
    ikey text;
    icast text := '';
    hash text;
    train_name text;
    test_name text;
    nitems bigint;
    nnull bigint;
    cut_h bigint;
    cut_i text;
BEGIN
    IF test_fraction IS NULL OR NOT (test_fraction > 0 AND test_fraction < 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('test_fraction must be between 0 and 1 (exclusive), got %s',
                             coalesce(test_fraction::text, 'NULL')),
            HINT = 'For example test_fraction => 0.2 holds out 20% of the items, with all their interactions.';
    END IF;
    PERFORM recsys.eval_check_split(test_fraction, NULL, 2, seed);
    PERFORM recsys.eval_column_type(source, user_col, 'user', 'id');
    -- The item id as a key (an integer as bigint, the others as text in
    -- byte order) and its hash.  The cut's id travels as text.
    IF recsys.eval_column_type(source, item_col, 'item', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ikey := format('s.%s::bigint', i);
        icast := '::bigint';
        hash := format('pg_catalog.hashint8extended(%s, %s)', ikey, seed);
    ELSE
        ikey := format('s.%s::text COLLATE "C"', i);
        hash := format('pg_catalog.hashtextextended(%s, %s)', ikey, seed);
    END IF;
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, item_col], '{user,item}');
    train_name := recsys.eval_target_table(train_table, target_schema, replace, 'train table', source);
    test_name := recsys.eval_target_table(test_table, target_schema, replace, 'test table', source);
    IF train_name = test_name THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('train and test table are the same table %s', train_name);
    END IF;

    EXECUTE format('SELECT count(DISTINCT s.%s), count(*) FILTER (WHERE s.%s IS NULL OR s.%s IS NULL) FROM %s s',
                   i, u, i, source)
        INTO nitems, nnull;
    IF nnull > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('user or item column of relation %s contains null values', source),
            HINT = 'Split a view that filters out rows with null ids.';
    END IF;
    IF nitems < 2 THEN
        RAISE EXCEPTION USING ERRCODE = '02000',  -- no_data, which PL/pgSQL cannot name
            MESSAGE = format('relation %s has %s distinct items, an item split needs at least 2',
                             source, nitems),
            HINT = 'At least one item must stay in training and one go to the test table.';
    END IF;
    -- round(test_fraction * items) half up, at least 1, at most items - 1.
    test_items := recsys.eval_test_size(nitems, test_fraction, NULL);

    -- The test items are the test_items smallest (hash, item); find the
    -- largest of them, then each table is one scan with a row comparison.
    EXECUTE format('SELECT p.h, p.i FROM (SELECT DISTINCT %s AS h, %s AS i FROM %s s) p
                    ORDER BY p.h, p.i OFFSET $1 LIMIT 1', hash, ikey, source)
        USING test_items - 1 INTO cut_h, cut_i;

    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, %s) <= ($1, $2%s)',
                   test_name, source, hash, ikey, icast)
        USING cut_h, cut_i;
    GET DIAGNOSTICS test_rows = ROW_COUNT;
    EXECUTE format('CREATE TABLE %s AS SELECT s.* FROM %s s WHERE (%s, %s) > ($1, $2%s)',
                   train_name, source, hash, ikey, icast)
        USING cut_h, cut_i;
    GET DIAGNOSTICS train_rows = ROW_COUNT;
    EXECUTE format('SELECT count(DISTINCT t.%s) FROM %s t', u, test_name) INTO test_users;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.split_items(regclass, text, text, double precision, integer, name, name, boolean, name)
    IS 'item cold-start holdout: round(test_fraction * items) items, chosen by a seeded hash, go to the test table with all their interactions, the rest to the train table, so that no test item is in training';

CREATE OR REPLACE FUNCTION @extschema@.evaluate(
    model                text,
    test                 regclass,
    k                    integer DEFAULT 10,
    user_col             name DEFAULT NULL,
    item_col             name DEFAULT NULL,
    value_col            name DEFAULT NULL,
    relevance_threshold  double precision DEFAULT NULL,
    compute_auc          boolean DEFAULT true,
    candidates           text DEFAULT 'all')
RETURNS TABLE (metric text, at_k integer, model_value double precision,
               baseline_value double precision, evaluated bigint)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED ROWS 10
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    int_types constant regtype[] := ARRAY['int2', 'int4', 'int8']::regtype[];
    -- A text that is an integer's decimal digits, as that bigint (else NULL)
    digits constant text := $f$CASE WHEN %1$s ~ '^(0|-?[1-9][0-9]{0,18})$' THEN
        CASE WHEN %1$s::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN %1$s::bigint END END$f$;
    m record;
    r record;
    ucol name;
    icol name;
    vcol name;
    vexpr text;
    nrank integer;
    catalog_size bigint;
    test_user_type regtype;
    test_item_type regtype;
    test_text_users boolean;
    test_text_items boolean;
    text_users boolean;
    text_items boolean;
    tdef text;
    rdef text;
    side record;
    matched boolean;
BEGIN
    IF model IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'model must not be null';
    END IF;
    IF k IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'k must not be null';
    END IF;
    IF k <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('k must be positive, got %s', k),
            HINT = 'k is the number of recommendations evaluated per user, for example 10.';
    END IF;
    IF compute_auc IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'compute_auc must not be null';
    END IF;
    PERFORM recsys.eval_check_candidates(candidates);
    SELECT mo.model_id, mo.method, mo.user_col, mo.item_col, mo.value_col, mo.num_items, mo.global_mean,
           mo.user_id_type, mo.item_id_type
    INTO m FROM recsys.models mo WHERE mo.name = model;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('model "%s" does not exist', model),
            HINT = 'See SELECT name FROM recsys.models.';
    END IF;

    ucol := coalesce(user_col, m.user_col);
    icol := coalesce(item_col, m.item_col);
    test_user_type := recsys.eval_column_type(test, ucol, 'user', 'id');
    test_item_type := recsys.eval_column_type(test, icol, 'item', 'id');
    test_text_users := NOT test_user_type = ANY (int_types);
    test_text_items := NOT test_item_type = ANY (int_types);
    -- Models trained before ids of other types (no id types) have integers.
    text_users := coalesce(NOT m.user_id_type = ANY (int_types), false);
    text_items := coalesce(NOT m.item_id_type = ANY (int_types), false);
    PERFORM recsys.eval_distinct_columns(ARRAY[ucol, icol, value_col], '{user,item,value}');
    -- Values: the given column, else the model's value column if the test
    -- table has it.  Explicit models need them (rating error).
    vcol := value_col;
    IF vcol IS NULL AND m.value_col IS NOT NULL AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = test AND a.attname = m.value_col AND a.attnum > 0 AND NOT a.attisdropped) THEN
        vcol := m.value_col;
    END IF;
    IF vcol IS NULL AND m.method = 'als' THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_column',
            MESSAGE = format('test relation %s has no value column "%s" for explicit model "%s"',
                             test, m.value_col, model),
            HINT = 'Pass value_col => the column that holds the test ratings.';
    END IF;
    IF vcol IS NULL AND relevance_threshold IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'relevance_threshold needs a value column',
            HINT = 'Pass value_col => the column the threshold applies to.';
    END IF;
    IF vcol IS NOT NULL THEN
        PERFORM recsys.eval_column_type(test, vcol, 'value', 'value');
        -- Duplicate test rows merge as in training: a rating's mean, an
        -- event count's sum.
        vexpr := format(CASE WHEN m.method = 'als' THEN 'pg_catalog.avg(s.%I::float8)'
                             ELSE 'pg_catalog.sum(s.%I::float8)' END, vcol);
    ELSE
        vexpr := 'NULL::float8';
    END IF;
    nrank := CASE WHEN compute_auc THEN greatest(k, m.num_items) ELSE k END;

    -- Integer test ids and text model ids (or the reverse) are compared as
    -- text: warn when none of one side's test ids is an id of the model
    -- (the items of a cold-start evaluation are meant to be unknown).
    FOR side IN SELECT * FROM (VALUES ('user', ucol, test_text_users, text_users, test_user_type, m.user_id_type),
                                      ('item', icol, test_text_items, text_items, test_item_type, m.item_id_type))
                                  AS x(name, col, test_text, model_text, test_type, model_type)
                WHERE x.test_text <> x.model_text AND (x.name = 'user' OR candidates <> 'cold') LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s s WHERE s.%I IS NOT NULL AND %s)', test, side.col,
                       CASE WHEN side.model_text
                            THEN format('EXISTS (SELECT 1 FROM recsys.id_map d WHERE d.model_id = $1 AND d.side = %L
                                                   AND d.external = s.%I::text COLLATE "default")', side.name, side.col)
                            WHEN side.name = 'user'
                            THEN format('EXISTS (SELECT 1 FROM recsys.user_factors f WHERE f.model_id = $1 AND f.user_id = %s)',
                                        format(digits, format('s.%I::text', side.col)))
                            ELSE format('EXISTS (SELECT 1 FROM recsys.item_factors f WHERE f.model_id = $1 AND f.item_id = %s)',
                                        format(digits, format('s.%I::text', side.col))) END)
            INTO matched USING m.model_id;
        IF NOT matched THEN
            RAISE WARNING 'no % id of test relation % is an id of model "%"', side.name, test, model
                USING HINT = format('The model''s %s ids are of type %s, the test relation''s of type %s: an id matches when its text is equal (an integer as its decimal digits).',
                                    side.name, coalesce(side.model_type, 'bigint'::regtype), side.test_type);
        END IF;
    END LOOP;

    -- The test pairs (u, i) in the model's ids, with their value v: t.
    IF NOT (text_users OR text_items OR test_text_users OR test_text_items) THEN
        tdef := format($q$t AS (
            SELECT s.%1$I::bigint AS u, s.%2$I::bigint AS i, %3$s AS v
            FROM %4$s s
            WHERE s.%1$I IS NOT NULL AND s.%2$I IS NOT NULL
            GROUP BY 1, 2)$q$, ucol, icol, vexpr, test);
    ELSE
        -- raw: the test pairs by text; uk, ik: each test id's model id
        -- (NULL if the model does not know it); um, im: unknown ones
        -- numbered after every other id.  For a text-keyed model t also
        -- holds the ids as the text overloads take them (ue, ie).  idict:
        -- the model's items, external id to model id.
        tdef := format($q$raw AS (
            SELECT s.%1$I::text COLLATE "default" AS ue, s.%2$I::text COLLATE "default" AS ie, %3$s AS v
            FROM %4$s s
            WHERE s.%1$I IS NOT NULL AND s.%2$I IS NOT NULL
            GROUP BY 1, 2),
        idict AS (
            SELECT pg_catalog.jsonb_object_agg(d.external, d.internal) AS m
            FROM recsys.id_map d WHERE d.model_id = $1 AND d.side = 'item'),
        uk AS (
            SELECT k.ue, %5$s AS id
            FROM (SELECT DISTINCT raw.ue FROM raw) k %6$s),
        ik AS (
            SELECT k.ie, %7$s AS id
            FROM (SELECT DISTINCT raw.ie FROM raw) k, idict),
        um AS (
            SELECT uk.ue, coalesce(uk.id, b.base + pg_catalog.row_number() OVER (PARTITION BY uk.id IS NULL
                                                                                ORDER BY uk.ue COLLATE "C")) AS u
            FROM uk, (SELECT coalesce(greatest(pg_catalog.max(x.id), %8$s), 0) AS base FROM uk x) b),
        im AS (
            SELECT ik.ie, coalesce(ik.id, b.base + pg_catalog.row_number() OVER (PARTITION BY ik.id IS NULL
                                                                                ORDER BY ik.ie COLLATE "C")) AS i
            FROM ik, (SELECT coalesce(greatest(pg_catalog.max(x.id), %9$s), 0) AS base FROM ik x) b),
        t AS (
            SELECT um.u, im.i, raw.v, %10$s AS ue, %11$s AS ie
            FROM raw JOIN um ON um.ue = raw.ue JOIN im ON im.ie = raw.ie)$q$,
            ucol, icol, vexpr, test,
            CASE WHEN text_users THEN 'd.internal' ELSE format(digits, 'k.ue') END,
            CASE WHEN text_users THEN 'LEFT JOIN recsys.id_map d ON d.model_id = $1 AND d.side = ''user'' AND d.external = k.ue'
                 ELSE '' END,
            CASE WHEN text_items THEN '(idict.m ->> k.ie)::bigint' ELSE format(digits, 'k.ie') END,
            CASE WHEN text_users THEN '(SELECT pg_catalog.max(d.internal) FROM recsys.id_map d WHERE d.model_id = $1 AND d.side = ''user'')'
                 ELSE '(SELECT pg_catalog.max(f.user_id) FROM recsys.user_factors f WHERE f.model_id = $1)' END,
            CASE WHEN text_items THEN '(SELECT pg_catalog.max(d.internal) FROM recsys.id_map d WHERE d.model_id = $1 AND d.side = ''item'')'
                 ELSE '(SELECT pg_catalog.max(f.item_id) FROM recsys.item_factors f WHERE f.model_id = $1)' END,
            CASE WHEN text_users THEN 'raw.ue' ELSE 'um.u::text' END,
            CASE WHEN text_items THEN 'raw.ie' ELSE 'im.i::text' END);
    END IF;

    -- Per test user (usr): the relevant items (test items at or above the
    -- threshold, among the candidates, minus the user's training items,
    -- which no ranking may contain); ranked: the model's ranking
    -- (recommend among the candidates, training items excluded) and the
    -- baseline's.  Users without relevant items are skipped.  ranked is
    -- materialized: scored reads its rankings twice, and inlined, each
    -- read would call recommend again.
    IF NOT (text_users OR text_items) THEN
        rdef := $q$usr AS (
            SELECT g.u, coalesce(f.seen, '{}') AS seen,
                   recsys.eval_exclude(g.rel, coalesce(f.seen, '{}'), pg_catalog.cardinality(g.rel)) AS rel
            FROM (SELECT t.u, pg_catalog.array_agg(t.i) FILTER (WHERE ($4 IS NULL OR t.v >= $4)
                                                                  AND ($7 = 'all' OR ci.i IS NOT NULL)) AS rel
                  FROM t LEFT JOIN ci ON ci.i = t.i GROUP BY t.u) g
            LEFT JOIN recsys.user_factors f ON f.model_id = $1 AND f.user_id = g.u
            WHERE g.rel IS NOT NULL),
        ranked AS MATERIALIZED (
            SELECT usr.u, usr.seen, usr.rel,
                   ARRAY(SELECT r.item_id
                         FROM @extschema@.recommend(usr.u,
                                  CASE WHEN cand.items IS NOT NULL AND $6
                                       THEN greatest($3, pg_catalog.cardinality(cand.items)) ELSE $5 END,
                                  $2, candidates => cand.items) WITH ORDINALITY AS r(item_id, score, o)
                         ORDER BY r.o) AS rec,
                   recsys.eval_exclude(pop.items, usr.seen, $3) AS brec
            FROM usr, pop, cand
            WHERE pg_catalog.cardinality(usr.rel) > 0)$q$;
    ELSE
        -- The text overload of recommend, with the candidates' text ids
        -- (tcand); the items it returns mapped back to the model's ids.
        rdef := format($q$usr AS (
            SELECT g.u, g.ue, coalesce(f.seen, '{}') AS seen,
                   recsys.eval_exclude(g.rel, coalesce(f.seen, '{}'), pg_catalog.cardinality(g.rel)) AS rel
            FROM (SELECT t.u, t.ue, pg_catalog.array_agg(t.i) FILTER (WHERE ($4 IS NULL OR t.v >= $4)
                                                                        AND ($7 = 'all' OR ci.i IS NOT NULL)) AS rel
                  FROM t LEFT JOIN ci ON ci.i = t.i GROUP BY t.u, t.ue) g
            LEFT JOIN recsys.user_factors f ON f.model_id = $1 AND f.user_id = g.u
            WHERE g.rel IS NOT NULL),
        tcand AS (
            SELECT CASE WHEN $7 = 'all' THEN NULL::text[]
                        ELSE coalesce((SELECT pg_catalog.array_agg(x.ie ORDER BY x.i)
                                       FROM (SELECT DISTINCT t.i, t.ie FROM t JOIN ci ON ci.i = t.i) x), '{}')
                   END AS items),
        ranked AS MATERIALIZED (
            SELECT usr.u, usr.seen, usr.rel,
                   ARRAY(SELECT %s
                         FROM @extschema@.recommend(usr.ue,
                                  CASE WHEN cand.items IS NOT NULL AND $6
                                       THEN greatest($3, pg_catalog.cardinality(cand.items)) ELSE $5 END,
                                  $2, candidates => tcand.items) WITH ORDINALITY AS r(item_id, score, o)
                         ORDER BY r.o) AS rec,
                   recsys.eval_exclude(pop.items, usr.seen, $3) AS brec
            FROM usr, pop, cand, tcand, idict
            WHERE pg_catalog.cardinality(usr.rel) > 0)$q$,
            CASE WHEN text_items THEN '(idict.m ->> r.item_id)::bigint' ELSE 'r.item_id::bigint' END);
    END IF;

    -- The candidates (NULL for 'all'): the distinct test items, for 'cold'
    -- only those without training interactions in the model.  Their
    -- number is the catalog that coverage and full rankings (AUC) use.
    -- The baseline ranks the candidates (for 'all', the model's training
    -- items) by training popularity (zero for an item without training
    -- interactions), ties by id as recommend serves unknown users,
    -- training items excluded.
    EXECUTE format($q$
        WITH %1$s,
        ci AS (
            SELECT DISTINCT t.i FROM t
            WHERE $7 = 'test'
               OR ($7 = 'cold' AND NOT EXISTS (
                       SELECT 1 FROM recsys.item_factors f
                       WHERE f.model_id = $1 AND f.item_id = t.i AND f.popularity > 0))),
        cand AS (
            SELECT CASE WHEN $7 = 'all' THEN NULL::bigint[]
                        ELSE coalesce((SELECT pg_catalog.array_agg(ci.i ORDER BY ci.i) FROM ci), '{}') END AS items),
        pop AS (
            SELECT CASE WHEN cand.items IS NULL THEN
                       (SELECT coalesce(pg_catalog.array_agg(f.item_id ORDER BY f.popularity DESC, f.item_id), '{}')
                        FROM recsys.item_factors f WHERE f.model_id = $1)
                   ELSE
                       (SELECT coalesce(pg_catalog.array_agg(c.i ORDER BY coalesce(f.popularity, 0) DESC, c.i), '{}')
                        FROM pg_catalog.unnest(cand.items) AS c(i)
                        LEFT JOIN recsys.item_factors f ON f.model_id = $1 AND f.item_id = c.i)
                   END AS items
            FROM cand),
        %2$s,
        scored AS (
            SELECT ranked.*,
                   CASE WHEN $6 THEN @extschema@.auc(ranked.rec, ranked.rel) END AS auc,
                   CASE WHEN $6 THEN @extschema@.auc(pop.items, ranked.rel, ranked.seen) END AS bauc
            FROM ranked, pop)
        SELECT @extschema@.ranking_metrics(sc.rec[1:$3], sc.rel, $3) AS mm,
               @extschema@.ranking_metrics(sc.brec, sc.rel, $3) AS bm,
               pg_catalog.avg(sc.auc) AS auc, pg_catalog.avg(sc.bauc) AS bauc,
               pg_catalog.count(sc.auc) AS auc_users,
               pg_catalog.count(*) AS users,
               (SELECT pg_catalog.count(DISTINCT x) FROM scored c, pg_catalog.unnest(c.rec[1:$3]) x) AS cov,
               (SELECT pg_catalog.count(DISTINCT x) FROM scored c, pg_catalog.unnest(c.brec) x) AS bcov,
               (SELECT cand.items FROM cand) AS cand
        FROM scored sc
        $q$, tdef, rdef)
    INTO r
    USING m.model_id, model, k, relevance_threshold, nrank, compute_auc, candidates;

    IF candidates = 'cold' AND pg_catalog.cardinality(r.cand) = 0 THEN
        RAISE WARNING 'test relation % has no item without training interactions in model "%"', test, model
            USING HINT = 'Hold out items with split_items and train the model on its train table: then the test items are cold.';
    END IF;
    catalog_size := CASE WHEN candidates = 'all' THEN m.num_items ELSE pg_catalog.cardinality(r.cand) END;

    IF m.method = 'als' THEN
        -- Rating error over the test pairs with a value (among the
        -- candidates); the baseline predicts the training mean (a
        -- popularity ranking predicts no ratings).
        RETURN QUERY EXECUTE format($q$
            WITH %1$s,
            e AS (
                SELECT @extschema@.rmse(@extschema@.predict(%2$s, %3$s, $4)::float8, t.v) AS rmse,
                       @extschema@.mae(@extschema@.predict(%2$s, %3$s, $4)::float8, t.v) AS mae,
                       @extschema@.rmse($2, t.v) AS brmse,
                       @extschema@.mae($2, t.v) AS bmae,
                       pg_catalog.count(t.v) AS pairs
                FROM t
                WHERE $3::bigint[] IS NULL OR t.i IN (SELECT pg_catalog.unnest($3::bigint[])))
            SELECT 'rmse'::text, NULL::integer, e.rmse, e.brmse, e.pairs FROM e
            UNION ALL
            SELECT 'mae'::text, NULL::integer, e.mae, e.bmae, e.pairs FROM e
            $q$, tdef,
            CASE WHEN text_users OR text_items THEN 't.ue' ELSE 't.u' END,
            CASE WHEN text_users OR text_items THEN 't.ie' ELSE 't.i' END)
        USING m.model_id, m.global_mean, r.cand, model;
    END IF;

    metric := 'precision'; at_k := k; evaluated := (r.mm).users;
    model_value := (r.mm).precision; baseline_value := (r.bm).precision;
    RETURN NEXT;
    metric := 'recall'; model_value := (r.mm).recall; baseline_value := (r.bm).recall;
    RETURN NEXT;
    metric := 'ndcg'; model_value := (r.mm).ndcg; baseline_value := (r.bm).ndcg;
    RETURN NEXT;
    metric := 'map'; model_value := (r.mm).map; baseline_value := (r.bm).map;
    RETURN NEXT;
    metric := 'hit_rate'; model_value := (r.mm).hit_rate; baseline_value := (r.bm).hit_rate;
    RETURN NEXT;
    metric := 'mrr'; model_value := (r.mm).mrr; baseline_value := (r.bm).mrr;
    RETURN NEXT;
    metric := 'auc'; at_k := NULL; evaluated := r.auc_users;
    model_value := r.auc; baseline_value := r.bauc;
    RETURN NEXT;
    metric := 'coverage'; at_k := k; evaluated := r.users;
    model_value := CASE WHEN r.users > 0 THEN r.cov::float8 / NULLIF(catalog_size, 0) END;
    baseline_value := CASE WHEN r.users > 0 THEN r.bcov::float8 / NULLIF(catalog_size, 0) END;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION @extschema@.evaluate(text, regclass, integer, name, name, name, double precision, boolean, text)
    IS 'offline evaluation of a model on a test table, beside the popular baseline: rmse and mae (explicit models), precision, recall, ndcg, map, hit_rate and mrr at k, auc, and catalog coverage; candidates ''test'' or ''cold'' ranks only the test items, or those without training interactions (cold-start); test ids of any type (integer, text, varchar, char, uuid) match the model''s ids with the same text (an integer as its decimal digits), others are new users and items';

CREATE OR REPLACE FUNCTION recsys.eval_make_splits(
    source         regclass,
    folds          integer,
    test_fraction  double precision,
    seed           integer,
    user_col       name,
    item_col       name,
    value_col      name,
    prefix         text)
RETURNS TABLE (train_table text, test_table text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u text := quote_ident(user_col);
    i text := quote_ident(item_col);
    ukey text;
    ikey text;
    ujoin text;
    ijoin text;
    hash text;
    cols text;
    pairs text := format('pg_temp.%I', prefix || '_folds');
    npairs bigint;
BEGIN
    cols := format('s.%s, s.%s', u, i) || coalesce(', s.' || quote_ident(value_col), '');
    IF folds IS NULL THEN
        train_table := format('pg_temp.%I', prefix || '_train_1');
        test_table := format('pg_temp.%I', prefix || '_test_1');
        PERFORM @extschema@.split_per_user(source, train_table, test_table, test_fraction,
                                           seed => seed, user_col => user_col, item_col => item_col);
        RETURN NEXT;
        RETURN;
    END IF;
    IF folds < 2 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('folds must be at least 2, got %s', folds),
            HINT = 'Pass folds => NULL for a single per-user holdout of test_fraction.';
    END IF;
    IF seed IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'seed must not be null';
    END IF;
    -- Each id as a key (integers as bigint, the others as text in byte
    -- order), what a source row joins its pair on, and the pair's hash, as
    -- in the splits (the caller checked the columns).
    IF recsys.eval_column_type(source, user_col, 'user', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ukey := format('s.%s::bigint', u);
        ujoin := format('s.%s', u);
        hash := format('pg_catalog.hashint8extended(%s, $1)', ukey);
    ELSE
        ukey := format('s.%s::text COLLATE "C"', u);
        ujoin := ukey;
        hash := format('pg_catalog.hashtextextended(%s, $1)', ukey);
    END IF;
    IF recsys.eval_column_type(source, item_col, 'item', 'id') IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN
        ikey := format('s.%s::bigint', i);
        ijoin := format('s.%s', i);
        hash := format('pg_catalog.hashint8extended(%s, %s)', ikey, hash);
    ELSE
        ikey := format('s.%s::text COLLATE "C"', i);
        ijoin := ikey;
        hash := format('pg_catalog.hashtextextended(%s, %s)', ikey, hash);
    END IF;
    EXECUTE format(
        'CREATE TABLE %1$s AS
         SELECT p.u, p.i, ((pg_catalog.row_number() OVER (ORDER BY p.h, p.u, p.i) - 1) %% $2)::integer AS fold
         FROM (SELECT DISTINCT %2$s AS u, %3$s AS i, %4$s AS h
               FROM %5$s s WHERE s.%6$s IS NOT NULL AND s.%7$s IS NOT NULL) p',
        pairs, ukey, ikey, hash, source, u, i)
        USING seed::bigint, folds;
    GET DIAGNOSTICS npairs = ROW_COUNT;
    IF npairs < folds THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('folds must not exceed the %s distinct (user, item) pairs of %s, got %s',
                             npairs, source, folds);
    END IF;
    FOR f IN 1 .. folds LOOP
        train_table := format('pg_temp.%I', prefix || '_train_' || f);
        test_table := format('pg_temp.%I', prefix || '_test_' || f);
        EXECUTE format('CREATE TABLE %s AS SELECT %s FROM %s s JOIN %s p ON p.u = %s AND p.i = %s WHERE p.fold <> $1',
                       train_table, cols, source, pairs, ujoin, ijoin)
            USING f - 1;
        EXECUTE format('CREATE TABLE %s AS SELECT %s FROM %s s JOIN %s p ON p.u = %s AND p.i = %s WHERE p.fold = $1',
                       test_table, cols, source, pairs, ujoin, ijoin)
            USING f - 1;
        RETURN NEXT;
    END LOOP;
    EXECUTE format('DROP TABLE %s', pairs);
END
$$;
COMMENT ON FUNCTION recsys.eval_make_splits(regclass, integer, double precision, integer, name, name, name, text)
    IS 'internal: temporary train/test tables for k-fold cross-validation or a per-user holdout';
