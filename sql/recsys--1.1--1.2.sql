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
    IS 'train (or retrain) a model from a table of (user, item, value) interactions: method als, ials, item_knn, ease or popular; the named arguments (NULL: the method''s default) and options set the method''s options';

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
    OUT explain         boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_methods'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.methods()
    IS 'the training methods: what each learns from (ratings or feedback), what it stores, and which serving functions it supports';

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
