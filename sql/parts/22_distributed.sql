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

CREATE FUNCTION recsys.shard_gram()
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_shard_gram'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_gram()
    IS 'internal (distributed training): the Gram matrix of this shard''s users, in double';

CREATE FUNCTION recsys.shard_item_subspace(first integer, whitened boolean, basis bytea, deltas bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_shard_item_subspace'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_item_subspace(integer, boolean, bytea, bytea)
    IS 'internal (distributed training): one block of the subspace (iALS++) item half-step over this shard''s users';

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
