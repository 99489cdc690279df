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
