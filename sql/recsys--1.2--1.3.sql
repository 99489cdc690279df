/* recsys--1.2--1.3.sql: upgrade a recsys 1.2 database to 1.3 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.3'" to load this file. \quit

-- Serving as a role without BYPASSRLS: the row-level policies of the
-- storage tables spell out recsys.model_privilege(model_id, 'serve'), so
-- they are planned once into each cached plan instead of running the SQL
-- function (parsed and planned again in every statement) for each row.
ALTER POLICY training_log_serve ON recsys.training_log
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) training_log.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY user_factors_serve ON recsys.user_factors
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) user_factors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY item_factors_serve ON recsys.item_factors
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) item_factors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY item_neighbors_serve ON recsys.item_neighbors
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) item_neighbors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY model_features_serve ON recsys.model_features
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) model_features.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY entity_features_serve ON recsys.entity_features
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) entity_features.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY id_map_serve ON recsys.id_map
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) id_map.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY experiment_variants_serve ON recsys.experiment_variants
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_variants.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY experiment_exposures_read ON recsys.experiment_exposures
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_exposures.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY experiment_outcomes_read ON recsys.experiment_outcomes
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_outcomes.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));

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

-- evaluate() tries the shard-local path first (recsys.eval_shards).
CREATE OR REPLACE FUNCTION @extschema@.evaluate(
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

-- Distributed training with solver subspace (iALS++): the shards' users'
-- Gram matrix in double, and one block of the item half-step per call.
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
