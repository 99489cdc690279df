--
-- A/B experiments: named variants (a model plus serving options) with
-- integer traffic weights; deterministic salted assignment of users;
-- serving through an experiment; exposure and outcome logs; a report per
-- variant with confidence intervals and a test against the control.
-- doc/experiments.md has the formulas and the guarantees.
--
CREATE SEQUENCE recsys.experiment_id_seq;
CREATE SEQUENCE recsys.exposure_id_seq;
CREATE SEQUENCE recsys.outcome_id_seq;

CREATE TABLE recsys.experiments (
    experiment_id  bigint PRIMARY KEY DEFAULT pg_catalog.nextval('recsys.experiment_id_seq'),
    name           text NOT NULL UNIQUE,
    salt           text NOT NULL CHECK (salt <> ''),
    control        text NOT NULL,
    status         text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ended')),
    winner         text,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ended_at       timestamptz,
    owner          regrole NOT NULL,
    CHECK ((status = 'ended') = (ended_at IS NOT NULL)),
    CHECK ((status = 'ended') = (winner IS NOT NULL))
);
COMMENT ON TABLE recsys.experiments IS 'one row per A/B experiment: the assignment salt, the control variant, running or ended (then winner is served to everyone)';

CREATE TABLE recsys.experiment_variants (
    experiment_id  bigint NOT NULL REFERENCES recsys.experiments ON DELETE CASCADE,
    variant        text NOT NULL,
    position       integer NOT NULL CHECK (position > 0),
    model          text NOT NULL,
    weight         integer NOT NULL CHECK (weight > 0),
    options        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (experiment_id, variant),
    UNIQUE (experiment_id, position)
);
COMMENT ON TABLE recsys.experiment_variants IS 'the variants of each experiment, in assignment order: model, serving options and integer traffic weight; frozen once created';

CREATE TABLE recsys.experiment_exposures (
    exposure_id    bigint PRIMARY KEY DEFAULT pg_catalog.nextval('recsys.exposure_id_seq'),
    experiment_id  bigint NOT NULL,
    variant        text NOT NULL,
    user_id        bigint NOT NULL,
    items          bigint[] NOT NULL,
    model_version  bigint,
    shown_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    FOREIGN KEY (experiment_id, variant)
        REFERENCES recsys.experiment_variants (experiment_id, variant) ON DELETE CASCADE
);
CREATE INDEX experiment_exposures_user_idx
    ON recsys.experiment_exposures (experiment_id, user_id, exposure_id);
COMMENT ON TABLE recsys.experiment_exposures IS 'one row per recommendation list shown to a user in an experiment: the items in order and the version of the model that served them';

CREATE TABLE recsys.experiment_outcomes (
    outcome_id     bigint PRIMARY KEY DEFAULT pg_catalog.nextval('recsys.outcome_id_seq'),
    experiment_id  bigint NOT NULL,
    variant        text NOT NULL,
    user_id        bigint NOT NULL,
    item_id        bigint,
    kind           text NOT NULL,
    value          double precision NOT NULL,
    exposure_id    bigint REFERENCES recsys.experiment_exposures ON DELETE SET NULL,
    logged_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    FOREIGN KEY (experiment_id, variant)
        REFERENCES recsys.experiment_variants (experiment_id, variant) ON DELETE CASCADE
);
CREATE INDEX experiment_outcomes_kind_idx
    ON recsys.experiment_outcomes (experiment_id, kind);
CREATE INDEX experiment_outcomes_exposure_idx
    ON recsys.experiment_outcomes (exposure_id);
COMMENT ON TABLE recsys.experiment_outcomes IS 'one row per outcome (click, purchase, rating, ...) of a user in an experiment, attributed to the user''s variant and, when the user was exposed, to an exposure';

-- Experiments and their logs are user data: pg_dump must keep them.
SELECT pg_catalog.pg_extension_config_dump('recsys.experiments', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.experiment_variants', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.experiment_exposures', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.experiment_outcomes', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.experiment_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.exposure_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.outcome_id_seq', '');

-- Access, as for models (15_access.sql): an experiment belongs to the role
-- that created it.  Its owner (and members of the owner role) can serve
-- through it, log, read its report, grant it, end it and drop it; other
-- roles see it only through grant_experiment(), which lets them serve
-- through it, log exposures and outcomes, and read its logs and report.
-- Serving through a variant still needs the serve privilege on the
-- variant's model.  Nothing here is SECURITY DEFINER.  As for models, the
-- tables are readable under row-level security and written only by recsys
-- (the recsys.write_experiment_* gates, 80_catalog_writes.sql).
CREATE TABLE recsys.experiment_grants (
    experiment_id  bigint NOT NULL REFERENCES recsys.experiments ON DELETE CASCADE,
    grantee        regrole,              -- NULL: PUBLIC
    granted_by     regrole NOT NULL,
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
-- What recsys.experiment_privilege(experiment_id, 'serve') says, written
-- out so that it is planned into each statement's plan (see the models'
-- policies in 15_access.sql).
CREATE POLICY experiment_variants_serve ON recsys.experiment_variants FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_variants.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY experiment_exposures_read ON recsys.experiment_exposures FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_exposures.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY experiment_outcomes_read ON recsys.experiment_outcomes FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_outcomes.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
-- Grants are public knowledge.
CREATE POLICY experiment_grants_read ON recsys.experiment_grants FOR SELECT USING (true);

GRANT SELECT ON recsys.experiments, recsys.experiment_variants, recsys.experiment_exposures,
    recsys.experiment_outcomes, recsys.experiment_grants TO PUBLIC;

-- The experiment named experiment if the current role owns it; errors
-- otherwise (action names what was refused).  The write that follows
-- (recsys.write_experiment_*) locks the row and checks its state again.
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

-- Assignment and statistics, in C (src/experiment.c): the building blocks of
-- experiment_variant() and experiment_report(), in schema recsys, out of the
-- way of the users' schema

CREATE FUNCTION recsys.experiment_bucket(salt text, user_id bigint)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_experiment_bucket'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.experiment_bucket(text, bigint)
    IS 'a user''s bucket in [0, 1) for a salt: the top 53 bits of SipHash-2-4 (key 00..0f) of the salt and the user id as 8 bytes little-endian';

CREATE FUNCTION recsys.assign_variant(salt text, user_id bigint, weights integer[])
RETURNS integer
AS 'MODULE_PATHNAME', 'recsys_assign_variant'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.assign_variant(text, bigint, integer[])
    IS 'the 1-based variant a user gets for a salt and integer traffic weights: the first whose cumulative weight exceeds floor(experiment_bucket * total weight)';

CREATE FUNCTION recsys.wilson_interval(
    successes   bigint,
    trials      bigint,
    confidence  double precision DEFAULT 0.95,
    OUT low     double precision,
    OUT high    double precision)
AS 'MODULE_PATHNAME', 'recsys_wilson_interval'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.wilson_interval(bigint, bigint, double precision)
    IS 'Wilson score confidence interval of the proportion successes / trials';

CREATE FUNCTION recsys.two_proportion_test(
    control_successes  bigint,
    control_trials     bigint,
    successes          bigint,
    trials             bigint,
    confidence         double precision DEFAULT 0.95,
    OUT difference     double precision,
    OUT low            double precision,
    OUT high           double precision,
    OUT z              double precision,
    OUT p_value        double precision)
AS 'MODULE_PATHNAME', 'recsys_two_proportion_test'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.two_proportion_test(bigint, bigint, bigint, bigint, double precision)
    IS 'difference of two proportions (treatment minus control) with Newcombe''s score interval, and the pooled two-proportion z-test with its two-sided p-value';

CREATE FUNCTION recsys.sample_ratio_test(observed bigint[], weights double precision[])
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_sample_ratio_test'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.sample_ratio_test(bigint[], double precision[])
    IS 'p-value of the chi-square test of observed counts against expected shares (sample ratio mismatch)';

-- Guards: an experiment's assignment cannot change under its users

CREATE FUNCTION recsys.experiments_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.experiment_id <> OLD.experiment_id OR NEW.salt <> OLD.salt
       OR NEW.control <> OLD.control OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'the salt, control and identity of experiment "%" cannot be changed', OLD.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Changing them would move users between variants, or change what the report compares.',
                  HINT = 'Create a new experiment with create_experiment(...), and end this one with end_experiment(...).';
    END IF;
    IF OLD.status = 'ended' AND NEW.status <> 'ended' THEN
        RAISE EXCEPTION 'experiment "%" has ended and cannot be restarted', OLD.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Create a new experiment with create_experiment(...).';
    END IF;
    IF NEW.winner IS NOT NULL AND NOT EXISTS (
            SELECT FROM recsys.experiment_variants v
            WHERE v.experiment_id = NEW.experiment_id AND v.variant = NEW.winner) THEN
        RAISE EXCEPTION 'experiment "%" has no variant "%"', NEW.name, NEW.winner
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION recsys.experiments_guard()
    IS 'trigger: refuses changes of an experiment''s salt, control or identity, and restarting an ended experiment';

CREATE TRIGGER experiments_guard
    BEFORE UPDATE ON recsys.experiments
    FOR EACH ROW EXECUTE FUNCTION recsys.experiments_guard();

CREATE FUNCTION recsys.experiment_variants_guard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    exp_name  text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT e.name INTO exp_name FROM recsys.experiments e
        WHERE e.experiment_id = NEW.experiment_id;
        IF EXISTS (SELECT FROM recsys.experiment_exposures x WHERE x.experiment_id = NEW.experiment_id)
           OR EXISTS (SELECT FROM recsys.experiment_outcomes o WHERE o.experiment_id = NEW.experiment_id) THEN
            RAISE EXCEPTION 'cannot add variant "%" to experiment "%", which has logged exposures or outcomes',
                    NEW.variant, exp_name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Create a new experiment with the new variants, and end this one with end_experiment(...).';
        END IF;
        RETURN NEW;
    END IF;

    -- UPDATE or DELETE: allowed only when the experiment itself is gone
    -- (drop_experiment, or DELETE FROM recsys.experiments, cascades here).
    SELECT e.name INTO exp_name FROM recsys.experiments e
    WHERE e.experiment_id = OLD.experiment_id;
    IF NOT FOUND THEN
        RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'variant "%" cannot be removed from experiment "%"', OLD.variant, exp_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Drop the whole experiment with drop_experiment(...).';
    END IF;
    RAISE EXCEPTION 'variant "%" of experiment "%" cannot be changed', OLD.variant, exp_name
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = 'Weights, names, order, models and options are frozen: changing them would change what the users already assigned to the variant get.',
              HINT = 'Create a new experiment with create_experiment(...), and end this one with end_experiment(...).';
END
$$;
COMMENT ON FUNCTION recsys.experiment_variants_guard()
    IS 'trigger: variants are frozen; none can be changed or removed, nor added once exposures or outcomes are logged';

CREATE TRIGGER experiment_variants_guard
    BEFORE INSERT OR UPDATE OR DELETE ON recsys.experiment_variants
    FOR EACH ROW EXECUTE FUNCTION recsys.experiment_variants_guard();

-- Managing experiments

CREATE FUNCTION @extschema@.create_experiment(
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

CREATE FUNCTION @extschema@.end_experiment(experiment text, winner text DEFAULT NULL)
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

CREATE FUNCTION @extschema@.drop_experiment(experiment text, if_exists boolean DEFAULT false)
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
    PERFORM recsys.write_experiment_grant(exp_id, grantee);
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

-- Assignment and serving

CREATE FUNCTION @extschema@.experiment_variant(experiment text, user_id bigint)
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

CREATE FUNCTION @extschema@.recommend_experiment(
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

-- Logging

CREATE FUNCTION @extschema@.log_exposure(experiment text, user_id bigint, items bigint[] DEFAULT NULL)
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

CREATE FUNCTION @extschema@.log_outcome(
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

-- The report

CREATE FUNCTION @extschema@.experiment_report(
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
