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

    -- Shard-local (src/distributed_serve.c, doc/scale-out.md): a test table
    -- partitioned by user over postgres_fdw shards and a factor model keyed
    -- by integers are scored on the shards; no rows otherwise (or with
    -- recsys.shard_local_serving off), and the coordinator path below.
    IF candidates = 'all' AND NOT (text_users OR text_items OR test_text_users OR test_text_items) THEN
        RETURN QUERY SELECT * FROM recsys.eval_shards(model, test, k, nrank, ucol, icol, vcol,
            relevance_threshold, compute_auc, m.method = 'als', m.method = 'als',
            coalesce(m.global_mean, 0), coalesce(m.num_items, 0));
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

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
