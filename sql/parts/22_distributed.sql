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

--
-- Shard-local evaluation (src/distributed_serve.c drives, src/shard_serve.c
-- works): evaluate() on a test table partitioned by user over postgres_fdw
-- shards scores each user on its shard.  Internal; the shard functions
-- read the test rows with the connecting role's privileges and write
-- nothing.
--
CREATE FUNCTION recsys.shard_eval_open(
    test        regclass,
    user_col    name,
    item_col    name,
    value_col   name,
    mean_merge  boolean)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_shard_eval_open'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_eval_open(regclass, name, name, name, boolean)
    IS 'internal (shard-local evaluate): read this shard''s test pairs into the session and return its user ids';

CREATE FUNCTION recsys.shard_eval_score(items bytea, users bytea, params bytea,
    OUT sums bytea, OUT cov bytea, OUT bcov bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shard_eval_score'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_eval_score(bytea, bytea, bytea)
    IS 'internal (shard-local evaluate): rank this shard''s test users against the model''s items; sums and counts of the metrics';

CREATE FUNCTION recsys.eval_shards(
    model               text,
    test                regclass,
    k                   integer,
    nrank               integer,
    user_col            name,
    item_col            name,
    value_col           name,
    relevance_threshold double precision,
    compute_auc         boolean,
    mean_merge          boolean,
    rating_error        boolean,
    global_mean         double precision,
    num_items           bigint)
RETURNS TABLE (metric text, at_k integer, model_value double precision,
               baseline_value double precision, evaluated bigint)
AS 'MODULE_PATHNAME', 'recsys_eval_shards'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.eval_shards(text, regclass, integer, integer, name, name, name, double precision, boolean, boolean, boolean, double precision, bigint)
    IS 'internal (evaluate): evaluate''s rows computed on the shards of a test table partitioned by user over postgres_fdw, or no rows';

-- Shard-local recommend_all (src/distributed_serve.c): a model trained from
-- postgres_fdw shards is scored on them, batches of users dealt in turn.
CREATE FUNCTION recsys.shard_recommend_open(items bytea, method text, params bytea)
RETURNS integer
AS 'MODULE_PATHNAME', 'recsys_shard_recommend_open'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_recommend_open(bytea, text, bytea)
    IS 'internal (shard-local recommend_all): keep the model''s items in the session; returns the batch size';

CREATE FUNCTION recsys.shard_recommend(users bytea,
    OUT counts bytea, OUT items bytea, OUT scores bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shard_recommend'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_recommend(bytea)
    IS 'internal (shard-local recommend_all): the best items of a round of users';
