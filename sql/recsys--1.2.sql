/* recsys--1.2.sql: the SQL surface of recsys 1.2 */

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
    final_rmse        double precision,
    owner             regrole NOT NULL,
    token             bigint NOT NULL,
    preprocessing     jsonb,
    user_id_type      regtype,
    item_id_type      regtype
);
COMMENT ON TABLE recsys.models IS 'one row per trained model; version changes on every retrain';
COMMENT ON COLUMN recsys.models.token IS 'random number drawn with every version: with model_id and version, the key of the serving caches';
COMMENT ON COLUMN recsys.models.user_id_type IS 'the type of the source''s user ids: integers are the model''s ids; text, varchar and uuid ids go through recsys.id_map';
COMMENT ON COLUMN recsys.models.item_id_type IS 'the type of the source''s item ids, as user_id_type';
COMMENT ON COLUMN recsys.models.preprocessing IS 'what the preprocessing options did (values capped, rows without a time, the oldest decay factor, what k-core filtering left out); NULL when none was asked for';

CREATE TABLE recsys.training_log (
    model_id          bigint NOT NULL,
    version           bigint NOT NULL,
    iteration         integer NOT NULL,
    loss              double precision NOT NULL,
    rmse              double precision,
    seconds           double precision NOT NULL,
    bytes_shipped     bigint,
    PRIMARY KEY (model_id, iteration)
);
COMMENT ON TABLE recsys.training_log IS 'per-iteration loss and time of each model''s latest training';
COMMENT ON COLUMN recsys.training_log.bytes_shipped IS 'distributed training: the bytes sent to and received from the shards in the iteration';

CREATE TABLE recsys.user_factors (
    model_id          bigint NOT NULL,
    user_id           bigint NOT NULL,
    bias              real NOT NULL,
    factors           real[] NOT NULL,
    seen              bigint[] NOT NULL,
    seen_values       real[] NOT NULL,
    PRIMARY KEY (model_id, user_id)
);
-- Sorted id arrays barely compress, and compressing them costs more than
-- writing them: store the long ones out of line, uncompressed.
ALTER TABLE recsys.user_factors
    ALTER COLUMN seen SET STORAGE EXTERNAL,
    ALTER COLUMN seen_values SET STORAGE EXTERNAL;
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

CREATE TABLE recsys.item_neighbors (
    model_id          bigint NOT NULL,
    item_id           bigint NOT NULL,
    neighbors         bigint[] NOT NULL,
    weights           real[] NOT NULL,
    PRIMARY KEY (model_id, item_id)
);
-- Ids and weights barely compress: out of line, uncompressed, when long.
ALTER TABLE recsys.item_neighbors
    ALTER COLUMN neighbors SET STORAGE EXTERNAL,
    ALTER COLUMN weights SET STORAGE EXTERNAL;
COMMENT ON TABLE recsys.item_neighbors IS 'item-neighbour models (item_knn, ease): the items each item recommends, best first, and their weights';

-- Features stored with a model (content and hybrid models): each side's
-- vocabulary (with the feature's idf, or its factors), and each entity's
-- features with their weights (content: its normalized profile).
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

-- The dictionary of a model keyed by text (or uuid) ids: the model's id
-- of each external id, per side, numbered in byte order at training.
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

-- The database's secret salt of recsys's lock keys (catalog.c), so that
-- pg_locks does not tell other roles which model names are being trained.
-- One row, readable by the extension's owner only; not dumped: a restored
-- database draws its own.
CREATE TABLE recsys.instance (
    lock_salt         bigint NOT NULL
);
COMMENT ON TABLE recsys.instance IS 'secret salt of the keys of recsys''s locks (one row)';
INSERT INTO recsys.instance (lock_salt)
SELECT ('x' || pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::pg_catalog.text), 1, 16))::pg_catalog.bit(64)::pg_catalog.int8;
REVOKE ALL ON recsys.instance FROM PUBLIC;

-- Trained models are user data: pg_dump must keep them.
SELECT pg_catalog.pg_extension_config_dump('recsys.models', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.training_log', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.user_factors', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_factors', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.item_neighbors', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.model_features', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.entity_features', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.id_map', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.model_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('recsys.version_seq', '');

--
-- Access: a model belongs to the role that first trained it.  Its owner
-- (and members of the owner role) can serve it, retrain it, grant it and
-- drop it; other roles see it only through grant_model().
--
-- Reading: the storage tables are readable by everyone (PUBLIC) at the
-- table level and closed at the row level by the policies below, the way
-- pg_class is readable but each table has its own ACL.  Superusers and the
-- extension's owner bypass row-level security, as they do everywhere.
--
-- Writing: only recsys writes its tables.  No other role holds INSERT,
-- UPDATE, DELETE or TRUNCATE on them or USAGE on their sequences; recsys's
-- C code checks the caller's rights and then performs each write as the
-- extension's owner (src/catalog_write.c explains why).  PL/pgSQL code
-- writes through the recsys.write_* gates (80_catalog_writes.sql).
--
-- Nothing here is SECURITY DEFINER: every check runs as the calling role.
--
CREATE TABLE recsys.model_grants (
    model_id          bigint NOT NULL,
    grantee           regrole,              -- NULL: PUBLIC
    privilege         text NOT NULL CHECK (privilege IN ('serve', 'train')),
    granted_by        regrole NOT NULL,
    UNIQUE NULLS NOT DISTINCT (model_id, grantee, privilege)
);
COMMENT ON TABLE recsys.model_grants IS 'who may serve (recommend, predict, ...) or train (retrain, refresh, forget) a model besides its owner';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_grants', '');

-- Whether the current role may use model_id with the privilege ('serve',
-- 'train' or 'owner'); reads recsys.models under its own policy.
CREATE FUNCTION recsys.model_privilege(model_id bigint, privilege text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) $1
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER')
               OR ($2 OPERATOR(pg_catalog.<>) 'owner' AND EXISTS (
                   SELECT 1 FROM recsys.model_grants g
                   WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                     AND (g.privilege OPERATOR(pg_catalog.=) 'train'
                          OR g.privilege OPERATOR(pg_catalog.=) $2)
                     AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))))
$$;
COMMENT ON FUNCTION recsys.model_privilege(bigint, text)
    IS 'whether the current role owns the model or holds the privilege (serve, train) on it';

ALTER TABLE recsys.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.training_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.user_factors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.item_factors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.item_neighbors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.model_features ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.entity_features ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.id_map ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.model_grants ENABLE ROW LEVEL SECURITY;

-- The models policy reads model_grants directly (not model_privilege,
-- which reads models: that would recurse).
CREATE POLICY models_serve ON recsys.models FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'MEMBER') OR EXISTS (
        SELECT 1 FROM recsys.model_grants g
        WHERE g.model_id OPERATOR(pg_catalog.=) models.model_id
          AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))));
CREATE POLICY training_log_serve ON recsys.training_log FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY user_factors_serve ON recsys.user_factors FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY item_factors_serve ON recsys.item_factors FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY item_neighbors_serve ON recsys.item_neighbors FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY model_features_serve ON recsys.model_features FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY entity_features_serve ON recsys.entity_features FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY id_map_serve ON recsys.id_map FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));

-- Grants are public knowledge, like the ACLs in pg_class.
CREATE POLICY model_grants_read ON recsys.model_grants FOR SELECT USING (true);

GRANT USAGE ON SCHEMA recsys TO PUBLIC;
GRANT SELECT ON recsys.models, recsys.training_log, recsys.user_factors,
    recsys.item_factors, recsys.item_neighbors, recsys.model_features,
    recsys.entity_features, recsys.id_map, recsys.model_grants TO PUBLIC;

-- Let another role (NULL: every role) serve or also train a model
CREATE FUNCTION @extschema@.grant_model(model text, grantee regrole, privilege text DEFAULT 'serve')
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

-- Take back what grant_model gave
CREATE FUNCTION @extschema@.revoke_model(model text, grantee regrole, privilege text DEFAULT 'serve')
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

CREATE FUNCTION @extschema@.drop_model(model text, if_exists boolean DEFAULT false)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_drop_model'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.drop_model(text, boolean)
    IS 'delete a model with its factors and training log; returns whether it existed';

-- The method table, for people and programs choosing a method
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

CREATE FUNCTION @extschema@.recommend_all(
    n             integer DEFAULT 10,
    model         text DEFAULT NULL,
    exclude_seen  boolean DEFAULT true)
RETURNS TABLE (user_id bigint, item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_all'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION @extschema@.recommend_all(integer, text, boolean)
    IS 'the top-n items of every user of the model, computed in blocks of users with one matrix product each';

--
-- The shared cache (src/shared_cache.c): with recsys in
-- shared_preload_libraries, item factors are kept once in shared memory
-- for all backends.  What it holds spans every database, so reading it is
-- for monitoring roles (pg_read_all_stats), like pg_stat_activity's
-- details of other sessions.
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

CREATE FUNCTION @extschema@.forget_user(model text, user_id bigint)
RETURNS integer
AS 'MODULE_PATHNAME', 'recsys_forget_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.forget_user(text, bigint)
    IS 'delete a user from a model and re-solve the items they had; returns the number of items re-solved';

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

--
-- The serving functions with the source's own ids, when they are text,
-- varchar or uuid (ids.c): the same C functions, which convert each
-- argument and result by its declared type; on a model keyed by integers
-- they take and return the integers as text.  uuid callers cast
-- (user_id::text).
--
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

--
-- The ALS half-step as a parallel aggregate.  Its support functions live in
-- schema recsys, out of the way of the users' schema.
--
CREATE FUNCTION recsys.als_solve_transfn(internal, real[], double precision, double precision)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_transfn(internal, real[], double precision, double precision)
    IS 'transition function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_combinefn(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_combinefn(internal, internal)
    IS 'combine function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_serialfn(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_als_solve_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_serialfn(internal)
    IS 'serialization function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_deserialfn(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_deserialfn(bytea, internal)
    IS 'deserialization function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_finalfn(internal)
RETURNS real[]
AS 'MODULE_PATHNAME', 'recsys_als_solve_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_finalfn(internal)
    IS 'final function of the als_solve aggregate';

CREATE AGGREGATE @extschema@.als_solve(factors real[], value double precision, regularization double precision) (
    SFUNC = recsys.als_solve_transfn,
    STYPE = internal,
    FINALFUNC = recsys.als_solve_finalfn,
    COMBINEFUNC = recsys.als_solve_combinefn,
    SERIALFUNC = recsys.als_solve_serialfn,
    DESERIALFUNC = recsys.als_solve_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.als_solve(real[], double precision, double precision)
    IS 'least-squares solve of one ALS row: argmin_w sum (value - factors . w)^2 + regularization * count * |w|^2';

--
-- Evaluation: metrics, splits, evaluate() and tuning
--
-- Metric definitions are in src/evaluate.c and doc/evaluation.md.  The
-- PL/pgSQL functions below run with search_path = pg_catalog, pg_temp,
-- qualify every extension function and every table with its schema, and
-- quote every identifier they put into dynamic SQL (values go in as
-- parameters).  Internal helpers live in schema recsys.
--

-- Ranking metrics of one user: recommended ids best first, relevant ids.
CREATE FUNCTION @extschema@.precision_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_precision_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.precision_at_k(bigint[], bigint[], integer)
    IS 'precision@k: relevant ids among the first k recommended, divided by k; NULL without relevant ids';

CREATE FUNCTION @extschema@.recall_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_recall_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.recall_at_k(bigint[], bigint[], integer)
    IS 'recall@k: relevant ids among the first k recommended, divided by the number of relevant ids; NULL without relevant ids';

CREATE FUNCTION @extschema@.ndcg_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_ndcg_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.ndcg_at_k(bigint[], bigint[], integer)
    IS 'NDCG@k with binary gains: sum of 1/log2(i+1) over hit positions i <= k, divided by its ideal value over min(k, relevant) positions; NULL without relevant ids';

CREATE FUNCTION @extschema@.average_precision_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_average_precision_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.average_precision_at_k(bigint[], bigint[], integer)
    IS 'AP@k: sum of precision@i over hit positions i <= k, divided by min(k, relevant); its mean over users is MAP@k; NULL without relevant ids';

CREATE FUNCTION @extschema@.hit_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_hit_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.hit_at_k(bigint[], bigint[], integer)
    IS '1 if any of the first k recommended ids is relevant, else 0 (its mean over users is the hit rate); NULL without relevant ids';

CREATE FUNCTION @extschema@.reciprocal_rank_at_k(recommended bigint[], relevant bigint[], k integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_reciprocal_rank_at_k'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.reciprocal_rank_at_k(bigint[], bigint[], integer)
    IS '1 / position of the first relevant id among the first k recommended, 0 if none (its mean is MRR@k); NULL without relevant ids';

CREATE FUNCTION @extschema@.auc(ranked bigint[], relevant bigint[], exclude bigint[] DEFAULT '{}')
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_auc'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.auc(bigint[], bigint[], bigint[])
    IS 'AUC of a full ranking: the fraction of (relevant, non-relevant) pairs ranked in the right order; excluded ids are removed first; relevant ids missing from the ranking count as ranked last; NULL without relevant or non-relevant ids';

-- The aggregates.  Their support functions and the result type of
-- ranking_metrics live in schema recsys, out of the way of the users' schema.
--
-- One row of means over users, the result of the ranking_metrics aggregate.
CREATE TYPE recsys.ranking_metrics_result AS (
    users       bigint,
    "precision" double precision,
    recall      double precision,
    ndcg        double precision,
    map         double precision,
    hit_rate    double precision,
    mrr         double precision);
COMMENT ON TYPE recsys.ranking_metrics_result
    IS 'means over users of the ranking metrics at k (users: how many had relevant ids)';

CREATE FUNCTION recsys.ranking_metrics_transfn(internal, bigint[], bigint[], integer)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ranking_metrics_transfn(internal, bigint[], bigint[], integer)
    IS 'transition function of the ranking_metrics aggregate';

CREATE FUNCTION recsys.ranking_metrics_combinefn(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ranking_metrics_combinefn(internal, internal)
    IS 'combine function of the ranking_metrics aggregate';

CREATE FUNCTION recsys.ranking_metrics_serialfn(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ranking_metrics_serialfn(internal)
    IS 'serialization function of the ranking_metrics aggregate';

CREATE FUNCTION recsys.ranking_metrics_deserialfn(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ranking_metrics_deserialfn(bytea, internal)
    IS 'deserialization function of the ranking_metrics aggregate';

CREATE FUNCTION recsys.ranking_metrics_finalfn(internal)
RETURNS recsys.ranking_metrics_result
AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.ranking_metrics_finalfn(internal)
    IS 'final function of the ranking_metrics aggregate';

CREATE AGGREGATE @extschema@.ranking_metrics(recommended bigint[], relevant bigint[], k integer) (
    SFUNC = recsys.ranking_metrics_transfn,
    STYPE = internal,
    FINALFUNC = recsys.ranking_metrics_finalfn,
    COMBINEFUNC = recsys.ranking_metrics_combinefn,
    SERIALFUNC = recsys.ranking_metrics_serialfn,
    DESERIALFUNC = recsys.ranking_metrics_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.ranking_metrics(bigint[], bigint[], integer)
    IS 'means over users (rows) of precision, recall, NDCG, AP, hit and reciprocal rank at k; users without relevant ids are skipped';

-- Rating error: state {count, sum |error|, sum error^2}.
CREATE FUNCTION recsys.rating_error_accum(double precision[], double precision, double precision)
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'recsys_rating_error_accum'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.rating_error_accum(double precision[], double precision, double precision)
    IS 'transition function of the rmse and mae aggregates';

CREATE FUNCTION recsys.rating_error_combine(double precision[], double precision[])
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'recsys_rating_error_combine'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.rating_error_combine(double precision[], double precision[])
    IS 'combine function of the rmse and mae aggregates';

CREATE FUNCTION recsys.rmse_final(double precision[])
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_rmse_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.rmse_final(double precision[])
    IS 'final function of the rmse aggregate';

CREATE FUNCTION recsys.mae_final(double precision[])
RETURNS double precision
AS 'MODULE_PATHNAME', 'recsys_mae_final'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.mae_final(double precision[])
    IS 'final function of the mae aggregate';

CREATE AGGREGATE @extschema@.rmse(predicted double precision, actual double precision) (
    SFUNC = recsys.rating_error_accum,
    STYPE = double precision[],
    INITCOND = '{0,0,0}',
    FINALFUNC = recsys.rmse_final,
    COMBINEFUNC = recsys.rating_error_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.rmse(double precision, double precision)
    IS 'root mean squared error of predicted against actual values; rows with a NULL are skipped';

CREATE AGGREGATE @extschema@.mae(predicted double precision, actual double precision) (
    SFUNC = recsys.rating_error_accum,
    STYPE = double precision[],
    INITCOND = '{0,0,0}',
    FINALFUNC = recsys.mae_final,
    COMBINEFUNC = recsys.rating_error_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.mae(double precision, double precision)
    IS 'mean absolute error of predicted against actual values; rows with a NULL are skipped';

--
-- Internal helpers of the splits, evaluate() and tuning, in schema recsys
-- (beside recsys.model_privilege), out of the way of the users' schema
--

-- The base type of a column of a relation the caller may read; errors name
-- the column's role.  Privileges are checked before anything about the
-- columns is revealed, as training does.
CREATE FUNCTION recsys.eval_column_type(rel regclass, col name, role text, kind text)
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

-- The quoted, schema-qualified name of a table to create: an unqualified
-- name goes to target_schema; an existing table is dropped only with
-- replace, and never when it is the source.
CREATE FUNCTION recsys.eval_target_table(
    target         text,
    target_schema  name,
    replace        boolean,
    role           text,
    source         regclass)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    qualified text;
    existing regclass;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = format('%s must not be null', role);
    END IF;
    parts := pg_catalog.parse_ident(target);
    IF pg_catalog.cardinality(parts) = 1 THEN
        IF target_schema IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_schema_name',
                MESSAGE = format('no schema has been selected to create %s "%s" in', role, target),
                HINT = 'Qualify the table name (for example pg_temp.name for a temporary table), or pass target_schema.';
        END IF;
        parts := ARRAY[target_schema::text] || parts;
    ELSIF pg_catalog.cardinality(parts) <> 2 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_name',
            MESSAGE = format('%s "%s" must be a table name, optionally qualified by a schema', role, target);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = parts[1])
       AND parts[1] <> 'pg_temp' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_schema_name',
            MESSAGE = format('schema "%s" of %s does not exist', parts[1], role);
    END IF;
    qualified := format('%I.%I', parts[1], parts[2]);
    existing := pg_catalog.to_regclass(qualified);
    IF existing IS NOT NULL THEN
        IF existing = source THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('%s %s is the source relation', role, existing),
                HINT = 'Choose another name.';
        END IF;
        IF NOT coalesce(replace, false) THEN
            RAISE EXCEPTION USING ERRCODE = 'duplicate_table',
                MESSAGE = format('%s %s already exists', role, existing),
                HINT = 'Pass replace => true to drop and recreate it, or choose another name.';
        END IF;
        IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = existing) <> 'r' THEN
            RAISE EXCEPTION USING ERRCODE = 'wrong_object_type',
                MESSAGE = format('cannot replace %s %s: it is not a table', role, existing);
        END IF;
        EXECUTE format('DROP TABLE %s', qualified);
    END IF;
    RETURN qualified;
END
$$;
COMMENT ON FUNCTION recsys.eval_target_table(text, name, boolean, text, regclass)
    IS 'internal: resolve (and with replace, drop) a table that a split or a search creates';

-- The first n of ids, in order, that are not in exclude.
CREATE FUNCTION recsys.eval_exclude(ids bigint[], exclude bigint[], n integer)
RETURNS bigint[]
AS 'MODULE_PATHNAME', 'recsys_eval_exclude'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.eval_exclude(bigint[], bigint[], integer)
    IS 'internal: the first n ids, in order, that are not in exclude';

-- The number of test rows of a group of n: test_count, or the fraction
-- rounded half up, at least 1, always leaving at least one row to train on.
-- A standard SQL body is parsed when it is created (with its operators
-- qualified), so it needs no search_path of its own, and without one it
-- can be inlined into the splits' per-row queries.
CREATE FUNCTION recsys.eval_test_size(n bigint, test_fraction double precision, test_count integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN test_count IS NOT NULL THEN least(test_count::bigint, n OPERATOR(pg_catalog.-) 1)
    ELSE greatest(1, least(n OPERATOR(pg_catalog.-) 1,
             pg_catalog.round((test_fraction OPERATOR(pg_catalog.*) n)::numeric)::bigint))
END;
COMMENT ON FUNCTION recsys.eval_test_size(bigint, double precision, integer)
    IS 'internal: test rows of a group of n rows (test_count, or round(test_fraction * n) half up), clamped to 1 .. n - 1';

-- Error unless the split parameters are usable.
CREATE FUNCTION recsys.eval_check_split(
    test_fraction  double precision,
    test_count     integer,
    min_history    integer,
    seed           integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF test_count IS NULL AND (test_fraction IS NULL OR NOT (test_fraction > 0 AND test_fraction < 1)) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('test_fraction must be between 0 and 1 (exclusive), got %s',
                             coalesce(test_fraction::text, 'NULL')),
            HINT = 'For example test_fraction => 0.2 holds out 20% of the interactions.';
    END IF;
    IF test_count IS NOT NULL AND test_count < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('test_count must be at least 1, got %s', test_count);
    END IF;
    IF min_history IS NULL OR min_history < 2 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('min_history must be at least 2, got %s', coalesce(min_history::text, 'NULL')),
            HINT = 'A user needs at least one interaction to train on and one to test on.';
    END IF;
    IF seed IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'seed must not be null';
    END IF;
END
$$;
COMMENT ON FUNCTION recsys.eval_check_split(double precision, integer, integer, integer)
    IS 'internal: validate the parameters of a split';

-- Error unless candidates names a candidate set of evaluate().
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

-- Error unless the columns given for different roles (user, item, value,
-- time) are different columns; NULL columns are not given.
CREATE FUNCTION recsys.eval_distinct_columns(cols name[], roles text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    FOR i IN 1 .. coalesce(pg_catalog.cardinality(cols), 0) LOOP
        FOR j IN i + 1 .. pg_catalog.cardinality(cols) LOOP
            IF cols[i] = cols[j] THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('column "%s" cannot be both the %s and the %s column',
                                     cols[i], roles[i], roles[j]);
            END IF;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION recsys.eval_distinct_columns(name[], text[])
    IS 'internal: error unless the columns given for different roles differ';

--
-- Splits.  A pair's place is decided by the seeded hash
--     h(user, item) = hash(item, hash(user, seed))
-- (an item's, in split_items, by h(item) = hash(item, seed)), where hash
-- is hashint8extended(id::bigint, ...) for integer ids and
-- hashtextextended(id::text, ...) for text, varchar, char and uuid ids,
-- and ties by the ids (integers by value, the others by their text byte by
-- byte), never by the physical order of the rows, so the same data and
-- seed give the same split.  Rows of the same (user, item) pair stay
-- together.  The tables keep all source columns.
--

CREATE FUNCTION @extschema@.split_random(
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

CREATE FUNCTION @extschema@.split_per_user(
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

CREATE FUNCTION @extschema@.split_temporal(
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

-- Item cold-start holdout: a seeded fraction of the items goes to the test
-- table with every interaction it has, so that no test item occurs in the
-- training table (evaluate(..., candidates => 'cold') then ranks them).
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

--
-- evaluate(): the model against the popular baseline on a test table
--
-- candidates chooses the items every ranking is drawn from:
--   'all'   every item of the model (the usual protocol);
--   'test'  the distinct items of the test table;
--   'cold'  the items of the test table without training interactions in
--           the model (no recsys.item_factors row with popularity > 0):
--           after split_items, the held-out items.  Models trained with
--           item features know such items; the others cannot rank them.
-- With 'test' or 'cold', relevant items, the baseline, rating error and
-- coverage are restricted to the candidates too.
--
-- Ids of any type.  A test id is the model's id with the same text: the
-- external id of a model trained on text, varchar, char or uuid ids
-- (recsys.id_map), the decimal digits of an integer model's id ('7' is 7;
-- '07' and 'seven' are no id of it), so either kind of test table
-- evaluates either kind of model.  Test ids the model does not know are
-- new users (served the popular items) and new items (never recommended),
-- as unknown integers are; they are numbered after the model's ids, in
-- byte order.  A model and a test table both keyed by integers take the
-- test ids as they are; otherwise the test rows are mapped to the model's
-- ids first, and a text-keyed model is served through the text overloads
-- of recommend and predict, whose items are mapped back through the
-- model's dictionary (one jsonb object, looked up by key).
--
-- Without JIT: the work is in recommend and the metric functions, which
-- compiling the queries' expressions cannot speed up, and with the row
-- counts of a view or a table not yet analyzed misestimated, compiling
-- alone took seconds.
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

--
-- Tuning: train on one table, evaluate on another; k-fold cross-validation;
-- grid and random search with optional early stopping.  These functions
-- CALL train (which does no transaction control, so a function may call
-- it): the temporary models and tables they create live in the caller's
-- transaction and are dropped before they return; if anything fails, the
-- transaction's rollback removes them with everything else.
--

-- CALL train with hyperparameters from a jsonb object ("method" and the
-- method's options, checked by train); train's NOTICEs are held back
-- (tuning reports its own progress).
CREATE FUNCTION recsys.eval_train(
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

-- Temporary train/test tables for k-fold cross-validation (folds >= 2) or
-- a per-user holdout (folds NULL), holding the user, item and value
-- columns; named <prefix>_train_<f> and <prefix>_test_<f>.  Folds: the
-- distinct (user, item) pairs in seeded-hash order (the hash of the splits,
-- ties by the ids), dealt out in turn, so fold sizes differ by at most one
-- pair.
CREATE FUNCTION recsys.eval_make_splits(
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

-- One parameter set on prepared splits: the mean and sample standard
-- deviation of each metric over the splits.  With a label, one progress
-- NOTICE per split.
CREATE FUNCTION recsys.eval_splits(
    train_tables         text[],
    test_tables          text[],
    params               jsonb,
    k                    integer,
    user_col             name,
    item_col             name,
    value_col            name,
    relevance_threshold  double precision,
    compute_auc          boolean,
    progress_metric      text,
    prefix               text)
RETURNS TABLE (metric text, at_k integer, mean double precision, stddev double precision,
               baseline_mean double precision, baseline_stddev double precision)
LANGUAGE plpgsql VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    acc text := format('pg_temp.%I', prefix || '_acc');
    n integer := pg_catalog.cardinality(train_tables);
    started timestamptz := pg_catalog.clock_timestamp();
    r record;
BEGIN
    EXECUTE format('CREATE TABLE %s (split integer, ord integer, metric text, at_k integer,
                                     model_value double precision, baseline_value double precision)', acc);
    FOR f IN 1 .. n LOOP
        EXECUTE format('INSERT INTO %s SELECT $1, e.ord, e.metric, e.at_k, e.model_value, e.baseline_value
                        FROM @extschema@.train_and_evaluate($2::regclass, $3::regclass, $4, $5, $6, $7, $8, $9, $10)
                             WITH ORDINALITY AS e(metric, at_k, model_value, baseline_value, evaluated, ord)', acc)
            USING f, train_tables[f], test_tables[f], params, k, user_col, item_col, value_col,
                  relevance_threshold, compute_auc;
        IF progress_metric IS NOT NULL AND n > 1 THEN
            EXECUTE format('SELECT a.model_value, a.baseline_value FROM %s a WHERE a.split = $1 AND a.metric = $2', acc)
                INTO r USING f, progress_metric;
            RAISE NOTICE 'fold % of %: % = % (baseline %), % s elapsed', f, n, progress_metric,
                coalesce(pg_catalog.round(r.model_value::numeric, 4)::text, 'NULL'),
                coalesce(pg_catalog.round(r.baseline_value::numeric, 4)::text, 'NULL'),
                pg_catalog.round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
        END IF;
    END LOOP;
    RETURN QUERY EXECUTE format(
        'SELECT a.metric, a.at_k, pg_catalog.avg(a.model_value), pg_catalog.stddev_samp(a.model_value),
                pg_catalog.avg(a.baseline_value), pg_catalog.stddev_samp(a.baseline_value)
         FROM %s a GROUP BY a.metric, a.at_k ORDER BY pg_catalog.min(a.ord)', acc);
    EXECUTE format('DROP TABLE %s', acc);
END
$$;
COMMENT ON FUNCTION recsys.eval_splits(text[], text[], jsonb, integer, name, name, name, double precision, boolean, text, text)
    IS 'internal: mean and standard deviation of every metric of one parameter set over prepared train/test splits';

-- Error unless the source columns are usable; a prefix for temporary names.
CREATE FUNCTION recsys.eval_tuning_prefix(
    source     regclass,
    user_col   name,
    item_col   name,
    value_col  name,
    k          integer)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM recsys.eval_column_type(source, user_col, 'user', 'id');
    PERFORM recsys.eval_column_type(source, item_col, 'item', 'id');
    PERFORM recsys.eval_distinct_columns(ARRAY[user_col, item_col, value_col], '{user,item,value}');
    IF value_col IS NOT NULL THEN
        PERFORM recsys.eval_column_type(source, value_col, 'value', 'value');
    END IF;
    IF k IS NULL OR k <= 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('k must be positive, got %s', coalesce(k::text, 'NULL')),
            HINT = 'k is the number of recommendations evaluated per user, for example 10.';
    END IF;
    RETURN format('recsys_tune_%s_%s', pg_catalog.pg_backend_pid(),
                  (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint);
END
$$;
COMMENT ON FUNCTION recsys.eval_tuning_prefix(regclass, name, name, name, integer)
    IS 'internal: check the source columns and k of a tuning run; a unique prefix for its temporary tables';

CREATE FUNCTION @extschema@.cross_validate(
    source               regclass,
    params               jsonb DEFAULT '{}',
    folds                integer DEFAULT 5,
    k                    integer DEFAULT 10,
    seed                 integer DEFAULT 42,
    user_col             name DEFAULT 'user_id',
    item_col             name DEFAULT 'item_id',
    value_col            name DEFAULT NULL,
    relevance_threshold  double precision DEFAULT NULL,
    compute_auc          boolean DEFAULT true)
RETURNS TABLE (metric text, at_k integer, mean double precision, stddev double precision,
               baseline_mean double precision, baseline_stddev double precision)
LANGUAGE plpgsql VOLATILE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prefix text;
    trains text[];
    tests text[];
    progress text;
BEGIN
    IF folds IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'folds must not be null';
    END IF;
    prefix := recsys.eval_tuning_prefix(source, user_col, item_col, value_col, k);
    SELECT pg_catalog.array_agg(s.train_table), pg_catalog.array_agg(s.test_table) INTO trains, tests
    FROM recsys.eval_make_splits(source, folds, NULL, seed, user_col, item_col, value_col, prefix) s;
    progress := CASE WHEN coalesce(params ->> 'method', 'als') = 'als' THEN 'rmse' ELSE 'ndcg' END;
    RETURN QUERY SELECT * FROM recsys.eval_splits(trains, tests, params, k, user_col, item_col,
                                                                  value_col, relevance_threshold, compute_auc,
                                                                  progress, prefix);
    FOR f IN 1 .. pg_catalog.cardinality(trains) LOOP
        EXECUTE format('DROP TABLE %s, %s', trains[f], tests[f]);
    END LOOP;
END
$$;
COMMENT ON FUNCTION @extschema@.cross_validate(regclass, jsonb, integer, integer, integer, name, name, name, double precision, boolean)
    IS 'k-fold cross-validation of one set of training hyperparameters (jsonb): folds of (user, item) pairs by seeded hash; mean and sample standard deviation of every evaluate() metric, model and popular baseline';

-- The shared body of grid_search and random_search: every parameter set on
-- the same splits, each trial a row of the results table.
CREATE FUNCTION recsys.eval_search(
    source               regclass,
    trials               jsonb[],
    results_table        text,
    metric               text,
    k                    integer,
    folds                integer,
    test_fraction        double precision,
    seed                 integer,
    user_col             name,
    item_col             name,
    value_col            name,
    relevance_threshold  double precision,
    early_stopping       boolean,
    patience             integer,
    iterations_step      integer,
    replace              boolean,
    target_schema        name)
RETURNS TABLE (trial integer, params jsonb, value double precision)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    metrics constant text[] := ARRAY['rmse', 'mae', 'precision', 'recall', 'ndcg', 'map',
                                     'hit_rate', 'mrr', 'auc', 'coverage'];
    lower_is_better boolean;
    prefix text;
    results text;
    trains text[];
    tests text[];
    n integer := pg_catalog.cardinality(trials);
    started timestamptz := pg_catalog.clock_timestamp();
    trial_started timestamptz;
    p jsonb;
    checkpoint_params jsonb;
    checkpoints jsonb;
    max_iterations integer;
    its integer;
    since_best integer;
    cur record;
    row_best record;
    row_best_value double precision;
    cur_value double precision;
    best_value double precision;
    best_trial integer;
BEGIN
    IF metric IS NULL OR NOT metric = ANY (metrics) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unknown metric "%s"', coalesce(metric, 'NULL')),
            HINT = format('Metrics are %s.', pg_catalog.array_to_string(metrics, ', '));
    END IF;
    lower_is_better := metric IN ('rmse', 'mae');
    IF n IS NULL OR n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'no parameter sets to try';
    END IF;
    IF early_stopping IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'early_stopping must not be null';
    END IF;
    IF early_stopping AND (patience IS NULL OR patience < 1 OR iterations_step IS NULL OR iterations_step < 1) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('early stopping needs patience >= 1 and iterations_step >= 1, got %s and %s',
                             coalesce(patience::text, 'NULL'), coalesce(iterations_step::text, 'NULL'));
    END IF;
    IF folds IS NULL THEN
        PERFORM recsys.eval_check_split(test_fraction, NULL, 2, seed);
    END IF;
    prefix := recsys.eval_tuning_prefix(source, user_col, item_col, value_col, k);
    results := recsys.eval_target_table(results_table, target_schema, replace, 'results table', source);
    EXECUTE format('CREATE TABLE %s (trial integer, params jsonb, value double precision,
                                     stddev double precision, baseline double precision,
                                     rmse double precision, mae double precision,
                                     "precision" double precision, recall double precision,
                                     ndcg double precision, map double precision,
                                     hit_rate double precision, mrr double precision,
                                     auc double precision, coverage double precision,
                                     checkpoints jsonb, seconds double precision, best boolean)', results);
    SELECT pg_catalog.array_agg(s.train_table), pg_catalog.array_agg(s.test_table) INTO trains, tests
    FROM recsys.eval_make_splits(source, folds, test_fraction, seed, user_col, item_col, value_col, prefix) s;

    FOR t IN 1 .. n LOOP
        p := trials[t];
        trial_started := pg_catalog.clock_timestamp();
        checkpoints := NULL;
        IF early_stopping THEN
            -- Train with step, 2 step, ... iterations up to the trial's
            -- iterations (each run from the same seeded start, so a run of
            -- n iterations is the first n of any longer one); stop after
            -- `patience` checkpoints without improvement, keep the best.
            max_iterations := (p ->> 'iterations')::integer;
            IF max_iterations IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                    MESSAGE = format('early stopping needs "iterations" (the most to try) in every parameter set, trial %s has none', t);
            END IF;
            checkpoints := '{}';
            row_best_value := NULL;
            since_best := 0;
            its := least(iterations_step, max_iterations);
            LOOP
                checkpoint_params := p || jsonb_build_object('iterations', its);
                SELECT pg_catalog.jsonb_object_agg(e.metric, e.mean) AS m,
                       pg_catalog.jsonb_object_agg(e.metric, e.stddev) AS s,
                       pg_catalog.jsonb_object_agg(e.metric, e.baseline_mean) AS b
                INTO cur
                FROM recsys.eval_splits(trains, tests, checkpoint_params, k, user_col, item_col,
                                                        value_col, relevance_threshold, metric = 'auc', NULL, prefix) e;
                checkpoints := checkpoints || jsonb_build_object(its::text, cur.m -> metric);
                RAISE NOTICE 'trial % of %, % iterations: % = %', t, n, its, metric,
                    coalesce(pg_catalog.round((cur.m ->> metric)::numeric, 4)::text, 'NULL');
                cur_value := (cur.m ->> metric)::float8;
                IF its = least(iterations_step, max_iterations)
                   OR (cur_value IS NOT NULL
                       AND (row_best_value IS NULL
                            OR CASE WHEN lower_is_better THEN cur_value < row_best_value
                                    ELSE cur_value > row_best_value END)) THEN
                    row_best := cur;
                    row_best_value := cur_value;
                    p := checkpoint_params;
                    since_best := 0;
                ELSE
                    since_best := since_best + 1;
                END IF;
                EXIT WHEN since_best >= patience OR its >= max_iterations;
                its := least(its + iterations_step, max_iterations);
            END LOOP;
            cur := row_best;
        ELSE
            SELECT pg_catalog.jsonb_object_agg(e.metric, e.mean) AS m,
                   pg_catalog.jsonb_object_agg(e.metric, e.stddev) AS s,
                   pg_catalog.jsonb_object_agg(e.metric, e.baseline_mean) AS b
            INTO cur
            FROM recsys.eval_splits(trains, tests, p, k, user_col, item_col,
                                                    value_col, relevance_threshold, metric = 'auc', NULL, prefix) e;
        END IF;

        EXECUTE format('INSERT INTO %s SELECT $1, $2, ($3 ->> $6)::float8, ($4 ->> $6)::float8, ($5 ->> $6)::float8,
                               ($3 ->> ''rmse'')::float8, ($3 ->> ''mae'')::float8, ($3 ->> ''precision'')::float8,
                               ($3 ->> ''recall'')::float8, ($3 ->> ''ndcg'')::float8, ($3 ->> ''map'')::float8,
                               ($3 ->> ''hit_rate'')::float8, ($3 ->> ''mrr'')::float8, ($3 ->> ''auc'')::float8,
                               ($3 ->> ''coverage'')::float8, $7, $8, false', results)
            USING t, p, cur.m, cur.s, cur.b, metric, checkpoints,
                  extract(epoch FROM pg_catalog.clock_timestamp() - trial_started)::float8;
        IF (cur.m ->> metric) IS NOT NULL
           AND (best_value IS NULL OR CASE WHEN lower_is_better THEN (cur.m ->> metric)::float8 < best_value
                                           ELSE (cur.m ->> metric)::float8 > best_value END) THEN
            best_value := (cur.m ->> metric)::float8;
            best_trial := t;
        END IF;
        RAISE NOTICE 'trial % of %: % = % with %; best so far % (trial %), % s elapsed',
            t, n, metric, coalesce(pg_catalog.round((cur.m ->> metric)::numeric, 4)::text, 'NULL'), p,
            coalesce(pg_catalog.round(best_value::numeric, 4)::text, 'NULL'), coalesce(best_trial::text, 'none'),
            pg_catalog.round(extract(epoch FROM pg_catalog.clock_timestamp() - started)::numeric, 1);
    END LOOP;

    FOR f IN 1 .. pg_catalog.cardinality(trains) LOOP
        EXECUTE format('DROP TABLE %s, %s', trains[f], tests[f]);
    END LOOP;
    IF best_trial IS NULL THEN
        RAISE WARNING 'no trial has a value for metric "%"', metric
            USING HINT = 'rmse and mae need explicit (als) models; ranking metrics need test users with relevant items.';
        RETURN;
    END IF;
    EXECUTE format('UPDATE %s r SET best = (r.trial = $1)', results) USING best_trial;
    RETURN QUERY EXECUTE format('SELECT r.trial, r.params, r.value FROM %s r WHERE r.best', results);
END
$$;
COMMENT ON FUNCTION recsys.eval_search(regclass, jsonb[], text, text, integer, integer, double precision, integer, name, name, name, double precision, boolean, integer, integer, boolean, name)
    IS 'internal: run parameter sets on shared splits, write every trial to a results table, return the best';

CREATE FUNCTION @extschema@.grid_search(
    source               regclass,
    grid                 jsonb,
    results_table        text,
    metric               text DEFAULT 'ndcg',
    k                    integer DEFAULT 10,
    folds                integer DEFAULT NULL,
    test_fraction        double precision DEFAULT 0.2,
    seed                 integer DEFAULT 42,
    user_col             name DEFAULT 'user_id',
    item_col             name DEFAULT 'item_id',
    value_col            name DEFAULT NULL,
    relevance_threshold  double precision DEFAULT NULL,
    early_stopping       boolean DEFAULT false,
    patience             integer DEFAULT 2,
    iterations_step      integer DEFAULT 5,
    replace              boolean DEFAULT false,
    target_schema        name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (trial integer, params jsonb, value double precision)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    combos jsonb[] := ARRAY['{}'::jsonb];
    e record;
BEGIN
    IF grid IS NULL OR pg_catalog.jsonb_typeof(grid) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('grid must be a jsonb object, got %s', coalesce(grid::text, 'NULL')),
            HINT = 'For example ''{"method": "ials", "factors": [8, 16], "regularization": [0.01, 0.1]}''.';
    END IF;
    -- The cartesian product of the value lists (a scalar is a list of
    -- one), in key order, the first key varying slowest.
    FOR e IN SELECT g.key, CASE WHEN pg_catalog.jsonb_typeof(g.value) = 'array' THEN g.value
                                ELSE pg_catalog.jsonb_build_array(g.value) END AS vals
             FROM pg_catalog.jsonb_each(grid) g ORDER BY g.key COLLATE "C" LOOP
        IF pg_catalog.jsonb_array_length(e.vals) = 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('grid parameter "%s" has no values', e.key);
        END IF;
        -- Every trial trains a model: a grid this large is a mistake.
        IF pg_catalog.cardinality(combos)::bigint * pg_catalog.jsonb_array_length(e.vals) > 10000 THEN
            RAISE EXCEPTION USING ERRCODE = 'program_limit_exceeded',
                MESSAGE = 'grid has more than 10000 combinations',
                HINT = 'Search a smaller grid, or draw a number of trials with random_search.';
        END IF;
        combos := ARRAY(SELECT c.c || pg_catalog.jsonb_build_object(e.key, v.v)
                        FROM pg_catalog.unnest(combos) WITH ORDINALITY AS c(c, o),
                             pg_catalog.jsonb_array_elements(e.vals) WITH ORDINALITY AS v(v, vo)
                        ORDER BY c.o, v.vo);
    END LOOP;
    RETURN QUERY SELECT * FROM recsys.eval_search(source, combos, results_table, metric, k, folds,
                                                         test_fraction, seed, user_col, item_col, value_col,
                                                         relevance_threshold, early_stopping, patience,
                                                         iterations_step, replace, target_schema);
END
$$;
COMMENT ON FUNCTION @extschema@.grid_search(regclass, jsonb, text, text, integer, integer, double precision, integer, name, name, name, double precision, boolean, integer, integer, boolean, name)
    IS 'train and evaluate every combination of the grid''s hyperparameter lists on the same holdout (or folds), write each trial to results_table, return the best by the metric';

CREATE FUNCTION @extschema@.random_search(
    source               regclass,
    space                jsonb,
    trials               integer,
    results_table        text,
    metric               text DEFAULT 'ndcg',
    k                    integer DEFAULT 10,
    folds                integer DEFAULT NULL,
    test_fraction        double precision DEFAULT 0.2,
    seed                 integer DEFAULT 42,
    user_col             name DEFAULT 'user_id',
    item_col             name DEFAULT 'item_id',
    value_col            name DEFAULT NULL,
    relevance_threshold  double precision DEFAULT NULL,
    early_stopping       boolean DEFAULT false,
    patience             integer DEFAULT 2,
    iterations_step      integer DEFAULT 5,
    replace              boolean DEFAULT false,
    target_schema        name DEFAULT pg_catalog.current_schema())
RETURNS TABLE (trial integer, params jsonb, value double precision)
LANGUAGE plpgsql VOLATILE ROWS 1
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    combos jsonb[] := '{}';
    int_params text[];
    p jsonb;
    e record;
    d integer;
    u double precision;
    lo double precision;
    hi double precision;
    x double precision;
    is_log boolean;
BEGIN
    IF space IS NULL OR pg_catalog.jsonb_typeof(space) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('space must be a jsonb object, got %s', coalesce(space::text, 'NULL')),
            HINT = 'For example ''{"factors": [8, 16, 32], "regularization": {"min": 0.001, "max": 1, "log": true}}''.';
    END IF;
    IF trials IS NULL OR trials < 1 OR trials > 10000 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('trials must be between 1 and 10000, got %s', coalesce(trials::text, 'NULL'));
    END IF;
    IF seed IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'seed must not be null';
    END IF;
    -- train's integer parameters get integer samples.
    SELECT pg_catalog.array_agg(a.n) INTO int_params
    FROM (SELECT pr.proargnames, pr.proargtypes FROM pg_catalog.pg_proc pr
          WHERE pr.proname = 'train' AND pr.prokind = 'p'
            AND pr.pronamespace = '@extschema@'::regnamespace
          ORDER BY pr.pronargs DESC LIMIT 1) t,
         ROWS FROM (pg_catalog.unnest(t.proargnames), pg_catalog.unnest(t.proargtypes::oid[])) AS a(n, typ)
    WHERE a.typ IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype);
    -- Draw u in [0, 1) for trial t and the d-th parameter (in key order)
    -- from 53 bits of a seeded hash: reproducible, and the session's
    -- random() is left alone.
    FOR t IN 1 .. trials LOOP
        p := '{}';
        d := 0;
        FOR e IN SELECT g.key, g.value FROM pg_catalog.jsonb_each(space) g ORDER BY g.key COLLATE "C" LOOP
            d := d + 1;
            u := ((pg_catalog.hashint8extended(t::bigint * 1000003 + d, seed) >> 11)
                  & 9007199254740991)::float8 / 9007199254740992.0;
            IF pg_catalog.jsonb_typeof(e.value) = 'array' THEN
                IF pg_catalog.jsonb_array_length(e.value) = 0 THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search parameter "%s" has no values', e.key);
                END IF;
                p := p || pg_catalog.jsonb_build_object(e.key,
                         e.value -> floor(u * pg_catalog.jsonb_array_length(e.value))::integer);
            ELSIF pg_catalog.jsonb_typeof(e.value) = 'object' THEN
                IF pg_catalog.jsonb_typeof(e.value -> 'min') <> 'number'
                   OR pg_catalog.jsonb_typeof(e.value -> 'max') <> 'number'
                   OR (e.value ? 'log' AND pg_catalog.jsonb_typeof(e.value -> 'log') <> 'boolean')
                   OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_object_keys(e.value) o
                              WHERE o NOT IN ('min', 'max', 'log'))
                   OR (e.value ->> 'min')::float8 > (e.value ->> 'max')::float8 THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('search range of "%s" must be {"min": number, "max": number, "log": boolean} with min <= max, got %s',
                                         e.key, e.value);
                END IF;
                lo := (e.value ->> 'min')::float8;
                hi := (e.value ->> 'max')::float8;
                is_log := coalesce((e.value ->> 'log')::boolean, false);
                IF is_log AND lo <= 0 THEN
                    RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                        MESSAGE = format('log-uniform range of "%s" needs min > 0, got %s', e.key, lo);
                END IF;
                IF is_log THEN
                    x := exp(ln(lo) + u * (ln(hi) - ln(lo)));
                ELSE
                    x := lo + u * (hi - lo);
                END IF;
                IF e.key = ANY (int_params) THEN
                    -- Integers: uniform over lo .. hi, or the log draw rounded.
                    IF is_log THEN
                        p := p || pg_catalog.jsonb_build_object(e.key, pg_catalog.round(x::numeric)::bigint);
                    ELSE
                        p := p || pg_catalog.jsonb_build_object(e.key,
                                 least(floor(hi), ceil(lo) + floor(u * (floor(hi) - ceil(lo) + 1)))::bigint);
                    END IF;
                ELSE
                    p := p || pg_catalog.jsonb_build_object(e.key, x);
                END IF;
            ELSE
                p := p || pg_catalog.jsonb_build_object(e.key, e.value);
            END IF;
        END LOOP;
        combos := combos || p;
    END LOOP;
    RETURN QUERY SELECT * FROM recsys.eval_search(source, combos, results_table, metric, k, folds,
                                                         test_fraction, seed, user_col, item_col, value_col,
                                                         relevance_threshold, early_stopping, patience,
                                                         iterations_step, replace, target_schema);
END
$$;
COMMENT ON FUNCTION @extschema@.random_search(regclass, jsonb, integer, text, text, integer, integer, double precision, integer, name, name, name, double precision, boolean, integer, integer, boolean, name)
    IS 'train and evaluate `trials` hyperparameter sets drawn (seeded) from the space: a list is a uniform choice, {"min", "max", "log"} a (log-)uniform range, integers for integer parameters; write each trial to results_table, return the best by the metric';

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
CREATE POLICY experiment_variants_serve ON recsys.experiment_variants FOR SELECT
    USING (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_exposures_read ON recsys.experiment_exposures FOR SELECT
    USING (recsys.experiment_privilege(experiment_id, 'serve'));
CREATE POLICY experiment_outcomes_read ON recsys.experiment_outcomes FOR SELECT
    USING (recsys.experiment_privilege(experiment_id, 'serve'));
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

--
-- Catalog writes.  Only recsys writes its tables (15_access.sql); these
-- are the writes its PL/pgSQL code may ask for, each bound to one entry of
-- the table in src/catalog_write.c that says who may make it (checked as
-- the caller) and what it does (run as the extension's owner).  The
-- caller's role is taken from the session, never from an argument, so a
-- direct call does no more than the documented functions allow.
--

-- The variant a user is assigned to in a running experiment the current
-- role can see; NULL if it has ended (or is not visible).
CREATE FUNCTION recsys.assigned_variant(experiment_id bigint, user_id bigint)
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

-- Ids and versions come from sequences only recsys advances (written out
-- so that an upgraded database has the same ACLs as a fresh one).
REVOKE ALL ON ALL SEQUENCES IN SCHEMA recsys FROM PUBLIC;
