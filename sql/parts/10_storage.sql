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
