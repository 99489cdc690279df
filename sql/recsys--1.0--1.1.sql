/* recsys--1.0--1.1.sql: upgrade a recsys 1.0 database to 1.1 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.1'" to load this file. \quit

--
-- Experiments get owners and grants, like models (see 70_experiments.sql).
-- Experiments made under 1.0 belong to the role running the upgrade.
--
ALTER TABLE recsys.experiments
    ADD COLUMN owner regrole NOT NULL DEFAULT pg_catalog.to_regrole(CURRENT_USER);

-- Access, as for models (15_access.sql): an experiment belongs to the role
-- that created it.  Its owner (and members of the owner role) can serve
-- through it, log, read its report, grant it, end it and drop it; other
-- roles see it only through grant_experiment(), which lets them serve
-- through it, log exposures and outcomes, and read its logs and report.
-- Serving through a variant still needs the serve privilege on the
-- variant's model.  Nothing here is SECURITY DEFINER.
CREATE TABLE recsys.experiment_grants (
    experiment_id  bigint NOT NULL REFERENCES recsys.experiments ON DELETE CASCADE,
    grantee        regrole,              -- NULL: PUBLIC
    granted_by     regrole NOT NULL DEFAULT pg_catalog.to_regrole(CURRENT_USER),
    UNIQUE NULLS NOT DISTINCT (experiment_id, grantee)
);
COMMENT ON TABLE recsys.experiment_grants IS 'who may serve through, log to and read the report of an experiment besides its owner';
SELECT pg_catalog.pg_extension_config_dump('recsys.experiment_grants', '');

-- Whether the current role may use experiment_id with the privilege
-- ('serve' or 'owner'); reads recsys.experiments under its own policy,
-- which reads only experiment_grants (no recursion).
CREATE FUNCTION recsys.experiment_privilege(experiment_id bigint, privilege text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) $1
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER')
               OR ($2 OPERATOR(pg_catalog.<>) 'owner' AND EXISTS (
                   SELECT 1 FROM recsys.experiment_grants g
                   WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                     AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))))
$$;
COMMENT ON FUNCTION recsys.experiment_privilege(bigint, text)
    IS 'whether the current role owns the experiment (owner) or may serve through it (serve)';

ALTER TABLE recsys.experiments ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.experiment_variants ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.experiment_exposures ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.experiment_outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.experiment_grants ENABLE ROW LEVEL SECURITY;

CREATE POLICY experiments_serve ON recsys.experiments FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'MEMBER') OR EXISTS (
        SELECT 1 FROM recsys.experiment_grants g
        WHERE g.experiment_id OPERATOR(pg_catalog.=) experiments.experiment_id
          AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))));
CREATE POLICY experiments_owner ON recsys.experiments FOR ALL
    USING (pg_catalog.pg_has_role(owner, 'MEMBER'))
    WITH CHECK (pg_catalog.pg_has_role(owner, 'MEMBER'));
CREATE POLICY experiment_variants_serve ON recsys.experiment_variants FOR SELECT
    USING (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_variants_owner ON recsys.experiment_variants FOR ALL
    USING (recsys.experiment_privilege(experiment_id, 'owner'))
    WITH CHECK (recsys.experiment_privilege(experiment_id, 'owner'));
-- Logging and reading the logs: serve; deleting them: the owner.
CREATE POLICY experiment_exposures_read ON recsys.experiment_exposures FOR SELECT
    USING (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_exposures_log ON recsys.experiment_exposures FOR INSERT
    WITH CHECK (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_exposures_delete ON recsys.experiment_exposures FOR DELETE
    USING (recsys.experiment_privilege(experiment_id, 'owner'));
CREATE POLICY experiment_outcomes_read ON recsys.experiment_outcomes FOR SELECT
    USING (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_outcomes_log ON recsys.experiment_outcomes FOR INSERT
    WITH CHECK (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_outcomes_delete ON recsys.experiment_outcomes FOR DELETE
    USING (recsys.experiment_privilege(experiment_id, 'owner'));
-- Grants are public knowledge; only an experiment's owner adds or removes them.
CREATE POLICY experiment_grants_read ON recsys.experiment_grants FOR SELECT USING (true);
CREATE POLICY experiment_grants_owner_add ON recsys.experiment_grants FOR INSERT
    WITH CHECK (recsys.experiment_privilege(experiment_id, 'owner'));
CREATE POLICY experiment_grants_owner_remove ON recsys.experiment_grants FOR DELETE
    USING (recsys.experiment_privilege(experiment_id, 'owner'));

GRANT SELECT, INSERT, UPDATE, DELETE ON recsys.experiments, recsys.experiment_variants TO PUBLIC;
GRANT SELECT, INSERT, DELETE ON recsys.experiment_exposures, recsys.experiment_outcomes,
    recsys.experiment_grants TO PUBLIC;
GRANT USAGE ON SEQUENCE recsys.experiment_id_seq, recsys.exposure_id_seq,
    recsys.outcome_id_seq TO PUBLIC;

-- The experiment named experiment, locked, if the current role owns it;
-- errors otherwise (action names what was refused).
CREATE FUNCTION recsys.owned_experiment(experiment text, action text)
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
    -- Read, check, then lock: FOR UPDATE alone would hide the rows the
    -- caller may see but not change, and report them as missing.
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
    SELECT * INTO e FROM recsys.experiments x WHERE x.experiment_id = e.experiment_id FOR UPDATE;
    RETURN e;
END
$$;
COMMENT ON FUNCTION recsys.owned_experiment(text, text)
    IS 'the named experiment, row-locked, when the current role owns it (NULL if not visible); insufficient_privilege otherwise';

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
        INSERT INTO recsys.experiments (name, salt, control)
        VALUES (exp_name, exp_salt, exp_ctl)
        RETURNING experiment_id INTO exp_id;
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'experiment "%" already exists', exp_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or drop it first with drop_experiment(...).';
    END;
    INSERT INTO recsys.experiment_variants (experiment_id, variant, position, model, weight, options)
    SELECT exp_id, u.n, u.p, u.m, u.w, u.o
    FROM unnest(names, models, weights, opts) WITH ORDINALITY AS u(n, m, w, o, p);
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
    UPDATE recsys.experiments x
    SET status = 'ended', ended_at = clock_timestamp(), winner = coalesce(end_experiment.winner, e.control)
    WHERE x.experiment_id = e.experiment_id;
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
    DELETE FROM recsys.experiment_outcomes o WHERE o.experiment_id = exp_id;
    DELETE FROM recsys.experiment_exposures x WHERE x.experiment_id = exp_id;
    -- The variants go with the experiment (ON DELETE CASCADE).
    DELETE FROM recsys.experiments x WHERE x.experiment_id = exp_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION @extschema@.drop_experiment(text, boolean)
    IS 'delete an experiment with its variants, exposures and outcomes; returns whether it existed';

-- Let another role (NULL: every role) serve through an experiment, log
-- to it and read its report
CREATE FUNCTION @extschema@.grant_experiment(experiment text, grantee regrole)
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
    INSERT INTO recsys.experiment_grants (experiment_id, grantee)
    VALUES (exp_id, grantee) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION @extschema@.grant_experiment(text, regrole)
    IS 'let a role (NULL: PUBLIC) serve through an experiment, log exposures and outcomes, and read its report';

-- Take back what grant_experiment gave
CREATE FUNCTION @extschema@.revoke_experiment(experiment text, grantee regrole)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict error
DECLARE
    exp_id  bigint;
    n       bigint;
BEGIN
    exp_id := (recsys.owned_experiment(experiment, 'revoke it')).experiment_id;
    IF exp_id IS NULL THEN
        RAISE EXCEPTION 'experiment "%" does not exist', experiment USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM recsys.experiment_grants g
    WHERE g.experiment_id = exp_id AND g.grantee IS NOT DISTINCT FROM revoke_experiment.grantee;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_experiment(text, regrole)
    IS 'take back what grant_experiment gave; returns whether it was granted';

--
-- The shared cache's monitoring functions (see 35_shared_cache.sql)
--
CREATE FUNCTION recsys.shared_cache(
    OUT database oid, OUT model_id bigint, OUT version bigint, OUT bytes bigint,
    OUT pins integer, OUT state text, OUT stale boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_shared_cache'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.shared_cache()
    IS 'one row per model version in the shared cache: its database, size, the backends using it (pins), ready or loading, stale (a newer version is published); no rows without the shared cache';

CREATE FUNCTION recsys.shared_cache_stats(
    OUT capacity bigint, OUT used bigint, OUT entries integer, OUT hits bigint,
    OUT publishes bigint, OUT evictions bigint, OUT no_room bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shared_cache_stats'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.shared_cache_stats()
    IS 'the shared cache''s size (recsys.shared_cache_size) and use, and since server start: backends served from it (hits), versions published, unpinned versions evicted for room, and loads that found no room (kept in the backend); NULL without the shared cache';

REVOKE EXECUTE ON FUNCTION recsys.shared_cache(), recsys.shared_cache_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recsys.shared_cache(), recsys.shared_cache_stats() TO pg_read_all_stats;
