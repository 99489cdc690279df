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
