-- Privileges: training reads the source with the caller's privileges, and
-- row-level security on the source applies; SQL built inside the extension
-- cannot be redirected through search_path.
SET client_min_messages = warning;
CREATE ROLE regress_recsys_reader;
CREATE ROLE regress_recsys_trainer;
RESET client_min_messages;

CREATE TABLE secret_ratings AS SELECT * FROM ratings;
CREATE TABLE partly_visible AS SELECT * FROM ratings;
GRANT SELECT (user_id, item_id) ON partly_visible TO regress_recsys_reader;

SET ROLE regress_recsys_reader;
-- No privilege on the table: a permission error that reveals nothing about
-- its columns (a missing column gives the same error).
CALL train('stolen', 'secret_ratings', value_col => 'rating');
CALL train('stolen', 'secret_ratings', value_col => 'no_such_column');
-- Column privileges: the readable columns are not enough.
CALL train('stolen', 'partly_visible', value_col => 'rating');
RESET ROLE;
SELECT count(*) AS stolen_models FROM recsys.models WHERE name = 'stolen';

-- Row-level security: rows hidden from the trainer do not count.
CREATE TABLE rls_ratings AS SELECT * FROM ratings;
ALTER TABLE rls_ratings ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_first_group ON rls_ratings FOR SELECT USING (user_id <= 4);
GRANT SELECT ON rls_ratings TO regress_recsys_trainer;
SET ROLE regress_recsys_trainer;
SET client_min_messages = warning;
CALL train('rls', 'rls_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
RESET ROLE;
SELECT num_users, num_items, num_interactions FROM recsys.models WHERE name = 'rls';
SELECT max(user_id) AS max_user FROM recsys.user_factors JOIN recsys.models USING (model_id)
WHERE name = 'rls';
SELECT drop_model('rls');

-- A plain table is read by a direct scan of its heap, anything else through
-- a query (src/ratings.c, DirectScanAllowed): both must read the same rows.
-- The same rows through a view (a query) give the same model, bit for bit.
CREATE VIEW ratings_view AS SELECT * FROM ratings;
SET client_min_messages = warning;
CALL train('direct', 'ratings', value_col => 'rating', factors => 3, iterations => 3);
CALL train('queried', 'ratings_view', value_col => 'rating', factors => 3, iterations => 3);
RESET client_min_messages;
-- Column privileges on every column read are enough, as for the query; the
-- columns are found by name, whatever their order (and a dropped one).
CREATE TABLE column_granted (junk int, rating real, item_id int, user_id int);
ALTER TABLE column_granted DROP COLUMN junk;
INSERT INTO column_granted SELECT rating, item_id, user_id FROM ratings;
GRANT SELECT (user_id, item_id, rating) ON column_granted TO regress_recsys_reader;
SET ROLE regress_recsys_reader;
SET client_min_messages = warning;
CALL train('columns', 'column_granted', value_col => 'rating', factors => 3, iterations => 3);
RESET client_min_messages;
RESET ROLE;
SELECT qm.name, count(*) AS users, count(*) FILTER (WHERE d.factors = q.factors
       AND d.bias = q.bias AND d.seen = q.seen AND d.seen_values = q.seen_values) AS identical
FROM recsys.user_factors d JOIN recsys.models dm ON dm.model_id = d.model_id AND dm.name = 'direct'
JOIN recsys.user_factors q ON q.user_id = d.user_id
JOIN recsys.models qm ON qm.model_id = q.model_id AND qm.name IN ('queried', 'columns')
GROUP BY qm.name ORDER BY qm.name;
-- Row-level security: the owner is exempt (a direct scan sees every row),
-- unless it is forced on the owner too (a query then applies the policy).
ALTER TABLE rls_ratings OWNER TO regress_recsys_trainer;
SET ROLE regress_recsys_trainer;
SET client_min_messages = warning;
CALL train('rls_owner', 'rls_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET ROLE;
ALTER TABLE rls_ratings FORCE ROW LEVEL SECURITY;
SET ROLE regress_recsys_trainer;
CALL train('rls_forced', 'rls_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
RESET ROLE;
-- Inheritance: the children's rows count (the query reads them too).
CREATE TABLE parent_ratings AS SELECT * FROM ratings WHERE user_id % 2 = 0;
CREATE TABLE child_ratings () INHERITS (parent_ratings);
INSERT INTO child_ratings SELECT * FROM ratings WHERE user_id % 2 = 1;
SET client_min_messages = warning;
CALL train('inherited', 'parent_ratings', value_col => 'rating', factors => 2, iterations => 3);
-- The snapshot: rows deleted earlier in the transaction are gone.
BEGIN;
DELETE FROM column_granted WHERE user_id > 4;
CALL train('deleted', 'column_granted', value_col => 'rating', factors => 2, iterations => 3);
SELECT num_users FROM recsys.models WHERE name = 'deleted';
ROLLBACK;
RESET client_min_messages;
SELECT name, num_users, num_interactions, num_interactions = (SELECT count(*) FROM ratings) AS all_rows
FROM recsys.models
WHERE name IN ('direct', 'queried', 'columns', 'rls_owner', 'rls_forced', 'inherited')
ORDER BY name;
SELECT drop_model(name) FROM recsys.models
WHERE name IN ('direct', 'queried', 'columns', 'rls_owner', 'rls_forced', 'inherited');
DROP TABLE child_ratings, parent_ratings, column_granted;
DROP VIEW ratings_view;

-- Shadowing objects first on search_path change nothing: the extension
-- schema-qualifies every table, function, operator and type it uses.
-- An unprivileged role (the attacker) creates, in public and in its own
-- schema evil: an operator of the same name and argument types as every
-- pg_catalog operator on integers, floats, numeric, text, name, oid,
-- boolean, jsonb and timestamptz; functions and aggregates of the same
-- signature as pg_catalog functions a query may call by their bare name
-- (unnest, clock_timestamp, pg_has_role, ...); a table or sequence of the
-- same name and columns as every recsys storage object.  Every shadow
-- gives a wrong answer.  The same calls then run four times: without
-- shadows (the reference); with search_path = public, pg_catalog as a
-- superuser; with search_path = evil, pg_catalog, public as a role
-- subject to row-level security; and with the tables also shadowed in
-- pg_temp, which is searched first for tables.  Every answer must be
-- identical to the reference, and the shadow objects untouched.
CREATE ROLE regress_recsys_shadow;
GRANT CREATE ON SCHEMA public TO regress_recsys_shadow;
CREATE SCHEMA evil AUTHORIZATION regress_recsys_shadow;
GRANT SELECT ON ratings TO regress_recsys_trainer;

-- Every answer of a pass: one row per result row of each call.
CREATE TEMP TABLE shadow_answers (
    label text, call text, ord bigint, id bigint,
    val double precision, val2 double precision, txt text);
GRANT INSERT ON shadow_answers TO regress_recsys_trainer;

-- The calls of a pass, under the caller's search_path (this procedure has
-- none of its own, and its statements qualify every operator and function,
-- so the shadows can only reach recsys).
CREATE PROCEDURE pg_temp.shadow_calls(label text, model text)
LANGUAGE plpgsql AS $$
BEGIN
    -- A first training, then a retrain of the same model.
    CALL public.train(model, 'ratings', value_col => 'rating', factors => 2, iterations => 3);
    CALL public.train(model, 'ratings', value_col => 'rating', factors => 2, iterations => 3);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'recommend', r.o, r.item_id, r.score
    FROM public.recommend(1, 6, model, exclude_seen => false) WITH ORDINALITY AS r(item_id, score, o);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'recommend unseen', r.o, r.item_id, r.score
    FROM public.recommend(2, 3, model) WITH ORDINALITY AS r(item_id, score, o);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'recommend candidates', r.o, r.item_id, r.score
    FROM public.recommend(3, 3, model, exclude_seen => false, candidates => ARRAY[1, 4, 5, 6],
                          exclude => ARRAY[6]) WITH ORDINALITY AS r(item_id, score, o);
    INSERT INTO pg_temp.shadow_answers (label, call, id, val)
    SELECT label, 'predict', 3, public.predict(1, 3, model)
    UNION ALL
    SELECT label, 'predict', 4, public.predict(5, 4, model);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'similar_items', r.o, r.item_id, r.score
    FROM public.similar_items(1, 3, model) WITH ORDINALITY AS r(item_id, score, o);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'similar_users', r.o, r.user_id, r.score
    FROM public.similar_users(1, 3, model) WITH ORDINALITY AS r(user_id, score, o);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'recommend_for_items', r.o, r.item_id, r.score
    FROM public.recommend_for_items(ARRAY[1, 2], 3, model, ARRAY[5, 4]) WITH ORDINALITY AS r(item_id, score, o);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'explain', r.o, r.item_id, r.contribution
    FROM public.explain(1, 3, 3, model) WITH ORDINALITY AS r(item_id, contribution, o);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'recommend_all', r.user_id, r.item_id, r.score
    FROM public.recommend_all(2, model) AS r;
    INSERT INTO pg_temp.shadow_answers (label, call, id, val, val2, txt)
    SELECT label, 'evaluate', e.evaluated, e.model_value, e.baseline_value, e.metric
    FROM public.evaluate(model, 'ratings', k => 2) AS e;
    -- Grants are written to and removed from recsys.model_grants.
    PERFORM public.grant_model(model, NULL);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, txt)
    SELECT label, 'grant_model', (g.grantee IS NULL)::integer, g.privilege
    FROM recsys.model_grants g JOIN recsys.models mo ON g.model_id OPERATOR(pg_catalog.=) mo.model_id
    WHERE mo.name OPERATOR(pg_catalog.=) model;
    PERFORM public.revoke_model(model, NULL);
    INSERT INTO pg_temp.shadow_answers (label, call, id)
    SELECT label, 'revoke_model', pg_catalog.count(*)
    FROM recsys.model_grants g JOIN recsys.models mo ON g.model_id OPERATOR(pg_catalog.=) mo.model_id
    WHERE mo.name OPERATOR(pg_catalog.=) model;
    -- Refreshing and forgetting users rewrite the model's rows.
    INSERT INTO pg_temp.shadow_answers (label, call, txt)
    SELECT label, 'refresh_user', public.refresh_user(model, 2)::text;
    INSERT INTO pg_temp.shadow_answers (label, call, id)
    SELECT label, 'forget_user', public.forget_user(model, 1);
    INSERT INTO pg_temp.shadow_answers (label, call, ord, id, val)
    SELECT label, 'recommend after forget_user', r.o, r.item_id, r.score
    FROM public.recommend(2, 6, model, exclude_seen => false) WITH ORDINALITY AS r(item_id, score, o);
END
$$;

-- What the pass stored, read afterwards with the normal search_path.
CREATE PROCEDURE pg_temp.shadow_stored(label text, model text)
LANGUAGE sql AS $$
    INSERT INTO pg_temp.shadow_answers (label, call, txt)
    SELECT label, 'stored model row',
           (to_jsonb(mo) - '{model_id, name, version, token, trained_at, train_seconds, owner}'::text[])::text
           || ', clock ' || (mo.trained_at > '2001-01-01')::text
    FROM recsys.models mo WHERE mo.name = model;
    INSERT INTO pg_temp.shadow_answers (label, call, id, val, txt)
    SELECT label, 'stored user_factors', f.user_id, f.bias,
           f.factors::text || f.seen::text || f.seen_values::text
    FROM recsys.user_factors f JOIN recsys.models mo USING (model_id) WHERE mo.name = model;
    INSERT INTO pg_temp.shadow_answers (label, call, id, val, val2, txt)
    SELECT label, 'stored item_factors', f.item_id, f.bias, f.popularity, f.factors::text
    FROM recsys.item_factors f JOIN recsys.models mo USING (model_id) WHERE mo.name = model;
    INSERT INTO pg_temp.shadow_answers (label, call, ord, val, val2)
    SELECT label, 'stored training_log', l.iteration, l.loss, l.rmse
    FROM recsys.training_log l JOIN recsys.models mo USING (model_id) WHERE mo.name = model;
$$;

-- The reference, before any shadow exists.
SET client_min_messages = warning;
CALL pg_temp.shadow_calls('reference', 'shadow_reference');
RESET client_min_messages;
CALL pg_temp.shadow_stored('reference', 'shadow_reference');
SELECT drop_model('shadow_reference');

-- The shadows, created by the attacker in schema nsp: same name and
-- argument types as the pg_catalog original, a wrong answer.
CREATE FUNCTION pg_temp.create_shadows(nsp name, routines boolean)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    o record;
    f record;
    c record;
    fn text;
BEGIN
    -- Tables and sequences: every storage object of recsys.
    FOR c IN SELECT cl.relname, cl.relkind FROM pg_class cl
             WHERE cl.relnamespace = 'recsys'::regnamespace AND cl.relkind IN ('r', 'S')
    LOOP
        IF c.relkind = 'r' THEN
            -- The same columns (from pg_attribute: LIKE needs SELECT, which
            -- recsys.instance does not grant)
            EXECUTE format('CREATE TABLE %I.%I (%s)', nsp, c.relname,
                           (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)),
                                              ', ' ORDER BY a.attnum)
                            FROM pg_attribute a
                            WHERE a.attrelid = format('recsys.%I', c.relname)::regclass
                              AND a.attnum > 0 AND NOT a.attisdropped));
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO PUBLIC', nsp, c.relname);
        ELSE
            EXECUTE format('CREATE SEQUENCE %I.%I', nsp, c.relname);
            EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %I.%I TO PUBLIC', nsp, c.relname);
        END IF;
    END LOOP;
    IF NOT routines THEN
        RETURN;
    END IF;
    -- Operators: every pg_catalog operator on integers, floats, numeric,
    -- text, name, oid, boolean, jsonb and timestamptz; each one answers NULL.
    FOR o IN SELECT op.oprname, op.oprleft, op.oprright, op.oprresult, op.oprcode::text AS code
             FROM pg_operator op
             WHERE op.oprnamespace = 'pg_catalog'::regnamespace
               AND op.oprright IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype,
                                   'float4'::regtype, 'float8'::regtype, 'numeric'::regtype,
                                   'text'::regtype, 'name'::regtype, 'oid'::regtype,
                                   'bool'::regtype, 'jsonb'::regtype, 'timestamptz'::regtype)
               AND (op.oprleft = 0 OR op.oprleft IN (
                                   'int2'::regtype, 'int4'::regtype, 'int8'::regtype,
                                   'float4'::regtype, 'float8'::regtype, 'numeric'::regtype,
                                   'text'::regtype, 'name'::regtype, 'oid'::regtype,
                                   'bool'::regtype, 'jsonb'::regtype, 'timestamptz'::regtype))
    LOOP
        fn := format('%I.%I', nsp, 'shadow_' || o.code);
        IF o.oprleft = 0 THEN
            EXECUTE format('CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE sql AS %L',
                           fn, o.oprright::regtype, o.oprresult::regtype,
                           format('SELECT NULL::%s', o.oprresult::regtype));
            EXECUTE format('CREATE OPERATOR %I.%s (RIGHTARG = %s, FUNCTION = %s)',
                           nsp, o.oprname, o.oprright::regtype, fn);
        ELSE
            EXECUTE format('CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE sql AS %L',
                           fn, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
                           format('SELECT NULL::%s', o.oprresult::regtype));
            EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)',
                           nsp, o.oprname, o.oprleft::regtype, o.oprright::regtype, fn);
        END IF;
    END LOOP;
    -- Functions and aggregates a query may call by their bare name.
    FOR f IN SELECT * FROM (VALUES
        ('unnest(anyarray)', 'SETOF anyelement', 'SELECT $1[1]'),
        ('cardinality(anyarray)', 'integer', 'SELECT 0'),
        ('array_length(anyarray, integer)', 'integer', 'SELECT 0'),
        ('clock_timestamp()', 'timestamptz', $q$SELECT '2000-01-01'::timestamptz$q$),
        ('now()', 'timestamptz', $q$SELECT '2000-01-01'::timestamptz$q$),
        ('statement_timestamp()', 'timestamptz', $q$SELECT '2000-01-01'::timestamptz$q$),
        ('transaction_timestamp()', 'timestamptz', $q$SELECT '2000-01-01'::timestamptz$q$),
        ('float8eq(double precision, double precision)', 'boolean', 'SELECT true'),
        ('to_regrole(text)', 'regrole', 'SELECT NULL::regrole'),
        ('pg_has_role(oid, text)', 'boolean', 'SELECT true'),
        ('pg_has_role(name, text)', 'boolean', 'SELECT true'),
        ('nextval(regclass)', 'bigint', 'SELECT 1::bigint'),
        ('current_setting(text)', 'text', 'SELECT NULL::text'),
        ('set_config(text, text, boolean)', 'text', 'SELECT NULL::text'),
        ('quote_ident(text)', 'text', $q$SELECT 'x'$q$),
        ('random()', 'double precision', 'SELECT 0.5::float8'),
        ('generate_series(integer, integer)', 'SETOF integer', 'SELECT 1'),
        ('generate_series(bigint, bigint)', 'SETOF bigint', 'SELECT 1::bigint'),
        ('jsonb_typeof(jsonb)', 'text', $q$SELECT 'null'$q$),
        ('array_position(anycompatiblearray, anycompatible)', 'integer', 'SELECT 1')
        ) AS v(sig, ret, body)
    LOOP
        EXECUTE format('CREATE FUNCTION %I.%s RETURNS %s LANGUAGE sql AS %L', nsp, f.sig, f.ret, f.body);
    END LOOP;
    EXECUTE format('CREATE AGGREGATE %I.sum(double precision) (SFUNC = float8mi, STYPE = double precision)', nsp);
    EXECUTE format('CREATE AGGREGATE %I.max(bigint) (SFUNC = int8smaller, STYPE = bigint)', nsp);
    EXECUTE format('CREATE AGGREGATE %I.min(bigint) (SFUNC = int8larger, STYPE = bigint)', nsp);
END
$$;
SET ROLE regress_recsys_shadow;
SELECT pg_temp.create_shadows('public', true);
SELECT pg_temp.create_shadows('evil', true);
GRANT USAGE ON SCHEMA evil TO PUBLIC;
RESET ROLE;
-- The shadows exist (so that the passes below can tell), and with the
-- default search_path (pg_catalog searched first) none of them is used.
SELECT s.nspname AS schema,
       (SELECT count(*) FROM pg_operator o WHERE o.oprnamespace = s.oid) AS operators,
       (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = s.oid
          AND p.proowner = 'regress_recsys_shadow'::regrole) AS functions,
       (SELECT count(*) FROM pg_class c WHERE c.relnamespace = s.oid
          AND c.relowner = 'regress_recsys_shadow'::regrole) AS relations
FROM pg_namespace s WHERE s.nspname IN ('public', 'evil')
ORDER BY 1;
SELECT 2::bigint = 2::bigint AS equal, 3 - 1 AS difference, now() > '2001-01-01' AS real_clock;

-- Pass 1: a superuser with the shadows in public before pg_catalog.
SET search_path = public, pg_catalog;
SELECT 2::bigint = 2::bigint AS shadowed_equal, 3 - 1 AS shadowed_difference;
SET client_min_messages = warning;
CALL pg_temp.shadow_calls('public first', 'shadowed');
RESET client_min_messages;
RESET search_path;
CALL pg_temp.shadow_stored('public first', 'shadowed');
SET search_path = public, pg_catalog;
SELECT public.drop_model('shadowed');
RESET search_path;

-- Pass 2: a role subject to row-level security, with evil, then
-- pg_catalog, then public (whose shadows stay in place).
SET ROLE regress_recsys_trainer;
SET search_path = evil, pg_catalog, public;
SELECT 2::bigint = 2::bigint AS shadowed_equal, 3 - 1 AS shadowed_difference;
SET client_min_messages = warning;
CALL pg_temp.shadow_calls('evil first', 'shadowed');
RESET client_min_messages;
RESET search_path;
RESET ROLE;
CALL pg_temp.shadow_stored('evil first', 'shadowed');
SET ROLE regress_recsys_trainer;
SET search_path = evil, pg_catalog, public;
SELECT public.drop_model('shadowed');
RESET search_path;
RESET ROLE;

-- Pass 3: the tables also shadowed in pg_temp.  search_path = public,
-- pg_catalog as in pass 1, and pg_temp, not listed, is searched first for
-- tables.
SET ROLE regress_recsys_shadow;
SELECT pg_temp.create_shadows('pg_temp', false);
RESET ROLE;
SET search_path = public, pg_catalog;
SET client_min_messages = warning;
CALL pg_temp.shadow_calls('temp first', 'shadowed');
RESET client_min_messages;
RESET search_path;
CALL pg_temp.shadow_stored('temp first', 'shadowed');
SET search_path = public, pg_catalog;
SELECT public.drop_model('shadowed');
RESET search_path;

-- Differences with the reference: rows in one but not the other.
CREATE FUNCTION pg_temp.shadow_differences(label text, call text) RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(*) FROM (
        (SELECT ord, id, val, val2, txt FROM pg_temp.shadow_answers a
         WHERE a.label = 'reference' AND a.call = $2
         EXCEPT ALL
         SELECT ord, id, val, val2, txt FROM pg_temp.shadow_answers a
         WHERE a.label = $1 AND a.call = $2)
        UNION ALL
        (SELECT ord, id, val, val2, txt FROM pg_temp.shadow_answers a
         WHERE a.label = $1 AND a.call = $2
         EXCEPT ALL
         SELECT ord, id, val, val2, txt FROM pg_temp.shadow_answers a
         WHERE a.label = 'reference' AND a.call = $2)) d
$$;
SELECT call, count(*) FILTER (WHERE label = 'reference') AS reference_rows,
       pg_temp.shadow_differences('public first', call) AS public_first_differs,
       pg_temp.shadow_differences('evil first', call) AS evil_first_differs,
       pg_temp.shadow_differences('temp first', call) AS temp_first_differs
FROM shadow_answers GROUP BY call ORDER BY call COLLATE "C";

-- Nothing was written to a shadow table or drawn from a shadow sequence,
-- and the dropped models left no rows behind.
CREATE FUNCTION pg_temp.rows_in(rel regclass) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', rel) INTO n;
    RETURN n;
END
$$;
SELECT CASE WHEN c.relpersistence = 't' THEN 'pg_temp' ELSE c.relnamespace::regnamespace::text END AS schema,
       count(*) FILTER (WHERE c.relkind = 'r') AS tables,
       sum(pg_temp.rows_in(c.oid)) FILTER (WHERE c.relkind = 'r') AS table_rows,
       count(*) FILTER (WHERE c.relkind = 'S') AS sequences,
       count(pg_sequence_last_value(c.oid)) FILTER (WHERE c.relkind = 'S') AS sequences_used
FROM pg_class c WHERE c.relowner = 'regress_recsys_shadow'::regrole AND c.relkind IN ('r', 'S')
GROUP BY 1 ORDER BY 1;
SELECT (SELECT count(*) FROM recsys.models WHERE name LIKE 'shadow%') AS models,
       (SELECT count(*) FROM recsys.user_factors f
        WHERE NOT EXISTS (SELECT 1 FROM recsys.models mo WHERE mo.model_id = f.model_id)) AS orphan_users,
       (SELECT count(*) FROM recsys.item_factors f
        WHERE NOT EXISTS (SELECT 1 FROM recsys.models mo WHERE mo.model_id = f.model_id)) AS orphan_items,
       (SELECT count(*) FROM recsys.training_log l
        WHERE NOT EXISTS (SELECT 1 FROM recsys.models mo WHERE mo.model_id = l.model_id)) AS orphan_log,
       (SELECT count(*) FROM recsys.model_grants g
        WHERE NOT EXISTS (SELECT 1 FROM recsys.models mo WHERE mo.model_id = g.model_id)) AS orphan_grants;

-- Remove the shadows and everything of this test.
SET client_min_messages = warning;
DROP OWNED BY regress_recsys_shadow;
RESET client_min_messages;
DROP ROLE regress_recsys_shadow;
REVOKE SELECT ON ratings FROM regress_recsys_trainer;
DROP TABLE shadow_answers;
DROP ROUTINE pg_temp.shadow_calls(text, text), pg_temp.shadow_stored(text, text),
    pg_temp.create_shadows(name, boolean), pg_temp.shadow_differences(text, text),
    pg_temp.rows_in(regclass);
SELECT count(*) AS operators_in_public FROM pg_operator WHERE oprnamespace = 'public'::regnamespace;
SELECT count(*) AS evil_schemas FROM pg_namespace WHERE nspname = 'evil';

-- Models belong to the role that trained them: others see nothing of them
-- until the owner grants them.
CREATE TABLE shared_ratings AS SELECT * FROM ratings;
GRANT SELECT ON shared_ratings TO regress_recsys_reader, regress_recsys_trainer;
SET ROLE regress_recsys_trainer;
SET client_min_messages = warning;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT name, owner FROM recsys.models;
SELECT count(*) FROM recommend(1, 3, 'private');
RESET ROLE;

SET ROLE regress_recsys_reader;
SELECT count(*) AS visible_models FROM recsys.models;
SELECT count(*) AS visible_factors FROM recsys.user_factors;
SELECT * FROM recommend(1, 3, 'private');
SELECT drop_model('private');
SELECT grant_model('private', 'regress_recsys_reader');
-- A name taken by an invisible model is refused before the source is read.
SET client_min_messages = warning;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
RESET ROLE;

-- Granted 'serve': recommend works; retraining, refreshing, forgetting and
-- dropping do not.
SET ROLE regress_recsys_trainer;
SELECT grant_model('private', 'regress_recsys_reader', 'serve');
SELECT grant_model('private', 'regress_recsys_reader', 'own');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) FROM recommend(1, 3, 'private');
SELECT count(*) AS visible_factors FROM recsys.user_factors;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 2, iterations => 3);
SELECT refresh_user('private', 1);
SELECT forget_user('private', 1);
SELECT drop_model('private');
SELECT revoke_model('private', 'regress_recsys_reader');
RESET ROLE;

-- Granted 'train': the grantee retrains (the owner stays the owner).
SET ROLE regress_recsys_trainer;
SELECT grant_model('private', 'regress_recsys_reader', 'train');
RESET ROLE;
SET ROLE regress_recsys_reader;
SET client_min_messages = warning;
CALL train('private', 'shared_ratings', value_col => 'rating', factors => 3, iterations => 3);
RESET client_min_messages;
SELECT refresh_user('private', 1);
SELECT name, owner, factors FROM recsys.models;
RESET ROLE;

-- Revoking takes it back; grants to PUBLIC (NULL) reach every role.
SET ROLE regress_recsys_trainer;
SELECT revoke_model('private', 'regress_recsys_reader', 'train');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) AS visible_models FROM recsys.models;
RESET ROLE;
-- This session served the model while granted 'serve': its cached copy must
-- not outlive the grant (the model's own rows are read as the extension's
-- owner once the model is found under row-level security, which is checked
-- on every call).
SET ROLE regress_recsys_trainer;
SELECT revoke_model('private', 'regress_recsys_reader', 'serve');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) AS visible_models FROM recsys.models;
SELECT count(*) FROM recommend(1, 3, 'private');
RESET ROLE;
-- The same for a model keyed by text ids (its id dictionary is read the
-- same way): served when granted, refused once revoked.
CREATE TABLE shared_named AS
SELECT 'u' || user_id AS customer, 'i' || item_id AS product, rating FROM ratings;
GRANT SELECT ON shared_named TO regress_recsys_trainer;
SET ROLE regress_recsys_trainer;
SET client_min_messages = warning;
CALL train('private_named', 'shared_named', user_col => 'customer', item_col => 'product',
           value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT grant_model('private_named', 'regress_recsys_reader', 'serve');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) FROM recommend('u1', 3, 'private_named');
SELECT count(*) FROM recommend_for_items(ARRAY['i1', 'i2'], 3, 'private_named', ARRAY[5, 4]);
RESET ROLE;
SET ROLE regress_recsys_trainer;
SELECT revoke_model('private_named', 'regress_recsys_reader', 'serve');
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) FROM recommend('u1', 3, 'private_named');
SELECT count(*) FROM recommend_for_items(ARRAY['i1', 'i2'], 3, 'private_named', ARRAY[5, 4]);
RESET ROLE;
SELECT drop_model('private_named');
DROP TABLE shared_named;
SET ROLE regress_recsys_trainer;
SELECT grant_model('private', NULL);
RESET ROLE;
SET ROLE regress_recsys_reader;
SELECT count(*) FROM recommend(1, 3, 'private');
RESET ROLE;
SELECT model_id > 0 AS has_model, grantee, privilege, granted_by FROM recsys.model_grants;
SELECT drop_model('private');
SELECT count(*) AS grants_left FROM recsys.model_grants;

SET client_min_messages = warning;
DROP OWNED BY regress_recsys_reader, regress_recsys_trainer;
DROP ROLE regress_recsys_reader;
DROP ROLE regress_recsys_trainer;
