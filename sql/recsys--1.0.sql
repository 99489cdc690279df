/* recsys--1.0.sql: the SQL surface of recsys 1.0 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

--
-- Storage.  Functions and the procedure live in the extension's schema
-- (public by default); trained models live in schema recsys.
--
CREATE SCHEMA recsys;
COMMENT ON SCHEMA recsys IS 'recsys model storage: models, training log, factors';

CREATE SEQUENCE recsys.model_id_seq;
CREATE SEQUENCE recsys.version_seq;

CREATE TABLE recsys.models (
    model_id          bigint PRIMARY KEY DEFAULT nextval('recsys.model_id_seq'),
    name              text NOT NULL UNIQUE,
    method            text NOT NULL,
    factors           integer NOT NULL,
    params            jsonb NOT NULL,
    source            text NOT NULL,
    user_col          name NOT NULL,
    item_col          name NOT NULL,
    value_col         name,
    num_users         integer NOT NULL,
    num_items         integer NOT NULL,
    num_interactions  bigint NOT NULL,
    null_values       bigint NOT NULL,
    duplicates        bigint NOT NULL,
    global_mean       double precision NOT NULL,
    version           bigint NOT NULL DEFAULT nextval('recsys.version_seq'),
    trained_at        timestamptz NOT NULL,
    train_seconds     double precision NOT NULL,
    final_loss        double precision,
    final_rmse        double precision
);
COMMENT ON TABLE recsys.models IS 'one row per trained model; version changes on every retrain';

CREATE TABLE recsys.training_log (
    model_id          bigint NOT NULL,
    version           bigint NOT NULL,
    iteration         integer NOT NULL,
    loss              double precision NOT NULL,
    rmse              double precision,
    seconds           double precision NOT NULL,
    PRIMARY KEY (model_id, iteration)
);
COMMENT ON TABLE recsys.training_log IS 'per-iteration loss and time of each model''s latest training';

CREATE TABLE recsys.user_factors (
    model_id          bigint NOT NULL,
    user_id           bigint NOT NULL,
    bias              real NOT NULL,
    factors           real[] NOT NULL,
    seen              bigint[] NOT NULL,
    seen_values       real[] NOT NULL,
    PRIMARY KEY (model_id, user_id)
);
COMMENT ON TABLE recsys.user_factors IS 'user factors and bias per model; seen and seen_values hold the user''s training items, sorted, and their values';

CREATE TABLE recsys.item_factors (
    model_id          bigint NOT NULL,
    item_id           bigint NOT NULL,
    bias              real NOT NULL,
    factors           real[] NOT NULL,
    popularity        bigint NOT NULL,
    PRIMARY KEY (model_id, item_id)
);
COMMENT ON TABLE recsys.item_factors IS 'item factors and bias per model; popularity is the item''s number of training interactions';

-- Trained models are user data: pg_dump must keep them.
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.user_factors', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_factors', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.version_seq', '');

--
-- Training
--
CREATE PROCEDURE @extschema@.train(
    model           text,
    source          regclass,
    user_col        name DEFAULT 'user_id',
    item_col        name DEFAULT 'item_id',
    value_col       name DEFAULT NULL,
    method          text DEFAULT 'als',
    factors         integer DEFAULT 64,
    iterations      integer DEFAULT 15,
    regularization  double precision DEFAULT 0.1,
    seed            integer DEFAULT 42,
    alpha           double precision DEFAULT 1.0,
    solver          text DEFAULT NULL,
    cg_steps        integer DEFAULT 3,
    scaling         text DEFAULT 'linear',
    epsilon         double precision DEFAULT 1.0)
AS 'MODULE_PATHNAME', 'recsys_train'
LANGUAGE C;
COMMENT ON PROCEDURE @extschema@.train(text, regclass, name, name, name, text, integer, integer, double precision, integer, double precision, text, integer, text, double precision)
    IS 'train (or retrain) a model from a table of (user, item, value) interactions: method als, ials or popular';

CREATE FUNCTION @extschema@.drop_model(model text, if_exists boolean DEFAULT false)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_drop_model'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.drop_model(text, boolean)
    IS 'delete a model with its factors and training log; returns whether it existed';

--
-- Serving
--
CREATE FUNCTION @extschema@.recommend(
    user_id       bigint,
    n             integer DEFAULT 10,
    model         text DEFAULT NULL,
    exclude_seen  boolean DEFAULT true,
    candidates    bigint[] DEFAULT NULL,
    exclude       bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(bigint, integer, text, boolean, bigint[], bigint[])
    IS 'top-n items for a user, best first; popular items for users unknown to the model';

CREATE FUNCTION @extschema@.predict(
    user_id  bigint,
    item_id  bigint,
    model    text DEFAULT NULL)
RETURNS real
AS 'MODULE_PATHNAME', 'recsys_predict'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.predict(bigint, bigint, text)
    IS 'predicted value of an item for a user';

CREATE FUNCTION @extschema@.similar_items(
    item_id  bigint,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(bigint, integer, text)
    IS 'the n items whose factors have the highest cosine similarity to the item''s';

CREATE FUNCTION @extschema@.similar_users(
    user_id  bigint,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (user_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_users'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(bigint, integer, text)
    IS 'the n users whose factors have the highest cosine similarity to the user''s';

--
-- Cold start, freshness and explanations: serving-time solves
--
CREATE FUNCTION @extschema@.recommend_for_items(
    items    bigint[],
    n        integer DEFAULT 10,
    model    text DEFAULT NULL,
    "values" double precision[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_for_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(bigint[], integer, text, double precision[])
    IS 'top-n items for a new or anonymous user from the items they touched (fold-in, no retraining)';

CREATE FUNCTION @extschema@.refresh_user(model text, user_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_user(text, bigint)
    IS 'recompute one user''s factors from their current rows in the model''s source; false if none are left';

CREATE FUNCTION @extschema@.explain(
    user_id  bigint,
    item_id  bigint,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id bigint, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain(bigint, bigint, integer, text)
    IS 'the items of the user''s history that contribute most to the item''s score; a last row with a NULL item_id holds the rest';

--
-- The ALS half-step as a parallel aggregate
--
CREATE FUNCTION @extschema@.als_solve_transfn(internal, real[], double precision, double precision)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_combinefn(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_serialfn(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_als_solve_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_deserialfn(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_finalfn(internal)
RETURNS real[]
AS 'MODULE_PATHNAME', 'recsys_als_solve_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE @extschema@.als_solve(factors real[], value double precision, regularization double precision) (
    SFUNC = @extschema@.als_solve_transfn,
    STYPE = internal,
    FINALFUNC = @extschema@.als_solve_finalfn,
    COMBINEFUNC = @extschema@.als_solve_combinefn,
    SERIALFUNC = @extschema@.als_solve_serialfn,
    DESERIALFUNC = @extschema@.als_solve_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.als_solve(real[], double precision, double precision)
    IS 'least-squares solve of one ALS row: argmin_w sum (value - factors . w)^2 + regularization * count * |w|^2';
