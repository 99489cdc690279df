-- Training: the catalog rows a training writes, determinism, the rules for
-- duplicates and NULLs, id types, quoting, and atomic retraining.
SET extra_float_digits = 0;

-- Per-iteration NOTICEs carry timings; the log table is checked instead.
SET client_min_messages = warning;
CALL train('fixture', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
RESET client_min_messages;

SELECT name, method, factors, params, source, user_col, item_col, value_col,
       num_users, num_items, num_interactions, round(global_mean::numeric, 4) AS mean,
       version > 0 AS has_version, trained_at <= now() + interval '1 hour' AS has_time,
       round(final_rmse::numeric, 2) AS rmse
FROM recsys.models;

-- One log row per iteration, and ALS never increases its objective.
SELECT count(*) AS iterations,
       bool_and(loss <= prev_loss * (1 + 1e-6)) AS loss_never_increases,
       bool_and(seconds >= 0) AS has_seconds
FROM (SELECT loss, lag(loss, 1, 'infinity') OVER (ORDER BY iteration) AS prev_loss, seconds
      FROM recsys.training_log) l;

-- One row per user and item; seen holds exactly the user's training items.
SELECT count(*) AS users,
       bool_and(array_length(factors, 1) = 2) AS k_factors,
       bool_and(seen = (SELECT array_agg(r.item_id::bigint ORDER BY r.item_id)
                        FROM ratings r WHERE r.user_id = u.user_id)) AS seen_ok
FROM recsys.user_factors u;
SELECT item_id, popularity, array_length(factors, 1) AS k
FROM recsys.item_factors ORDER BY item_id;

-- The model fits the fixture far better than the global mean does.
SELECT sqrt(avg((predict(user_id, item_id, 'fixture') - rating) ^ 2))
       < 0.4 * sqrt(avg((3.1875 - rating) ^ 2)) AS fits
FROM ratings;

-- The same seed reproduces the model exactly, whatever the row order of
-- the source; a new version number is drawn every time.
CREATE TEMP TABLE before AS
    SELECT u.user_id, u.factors, u.bias, m.version
    FROM recsys.user_factors u JOIN recsys.models m USING (model_id);
CREATE VIEW ratings_reversed AS
    SELECT * FROM ratings ORDER BY user_id DESC, item_id DESC;
SET client_min_messages = warning;
CALL train('fixture', 'ratings_reversed', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
RESET client_min_messages;
SELECT count(*) AS users,
       bool_and(u.factors = b.factors AND u.bias = b.bias) AS identical,
       bool_and(m.version > b.version) AS new_version
FROM recsys.user_factors u JOIN recsys.models m USING (model_id)
JOIN before b USING (user_id);

-- A different seed gives a different model.
SET client_min_messages = warning;
CALL train('fixture_seed7', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3, seed => 7);
RESET client_min_messages;
SELECT bool_or(u.factors <> b.factors) AS differs
FROM recsys.user_factors u JOIN recsys.models m USING (model_id)
JOIN before b USING (user_id) WHERE m.name = 'fixture_seed7';
SELECT drop_model('fixture_seed7');

-- Retraining inside a transaction that rolls back leaves the model as it was.
BEGIN;
SET LOCAL client_min_messages = warning;
CALL train('fixture', 'ratings', value_col => 'rating', factors => 3, iterations => 2);
SELECT factors FROM recsys.models WHERE name = 'fixture';
ROLLBACK;
SELECT factors, (SELECT count(*) FROM recsys.user_factors) AS user_rows,
       (SELECT count(*) FROM recsys.training_log) AS log_rows
FROM recsys.models WHERE name = 'fixture';

-- Any integer id type; ids come back as bigint.  Value columns may be any
-- numeric type.
CREATE TABLE ratings_types (u smallint, i bigint, v numeric);
INSERT INTO ratings_types SELECT user_id, item_id + 5000000000, rating FROM ratings;
SET client_min_messages = warning;
CALL train('types', 'ratings_types', 'u', 'i', 'v', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT min(item_id), max(item_id), pg_typeof(min(item_id))
FROM recsys.item_factors JOIN recsys.models USING (model_id) WHERE name = 'types';
SELECT pg_typeof(item_id), count(*) FROM recommend(1, 2, 'types') GROUP BY 1;

CREATE TABLE ratings_int (user_id int8, item_id int2, stars int);
INSERT INTO ratings_int SELECT * FROM ratings;
SET client_min_messages = warning;
CALL train('types', 'ratings_int', value_col => 'stars', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT num_users, num_items, num_interactions, value_col FROM recsys.models WHERE name = 'types';

-- Duplicate (user, item) rows are merged into their mean; rows with a NULL
-- value are skipped (user 9 has only such rows, so is not in the model).
-- Both are counted in the model row (and reported as NOTICEs).
CREATE TABLE ratings_dup AS SELECT * FROM ratings;
INSERT INTO ratings_dup VALUES (1, 1, 3), (1, 1, 1), (2, 1, NULL), (9, 1, NULL);
SET client_min_messages = warning;
CALL train('dup', 'ratings_dup', value_col => 'rating', factors => 2, iterations => 1);
RESET client_min_messages;
SELECT num_users, num_items, num_interactions, null_values, duplicates
FROM recsys.models WHERE name = 'dup';
-- The merged rating of (1, 1) is the mean of 5, 3 and 1, which the global
-- mean reflects.
SELECT round(global_mean::numeric, 4) AS mean,
       round(((SELECT sum(rating) FROM ratings) - 5 + 3)::numeric / 32, 4) AS expected
FROM recsys.models WHERE name = 'dup';
SELECT drop_model('dup');
SELECT drop_model('types');

-- Identifiers that need quoting, in a schema that needs quoting.
CREATE SCHEMA "Odd Schema";
CREATE TABLE "Odd Schema"."My Ratings" ("user id" int, "item id" int, "Rating!" real);
INSERT INTO "Odd Schema"."My Ratings" SELECT * FROM ratings;
SET client_min_messages = warning;
CALL train('odd "name"', '"Odd Schema"."My Ratings"', 'user id', 'item id', 'Rating!',
           factors => 2, iterations => 3);
RESET client_min_messages;
SELECT name, source, user_col, item_col, value_col, num_interactions
FROM recsys.models WHERE name = 'odd "name"';
SELECT count(*) FROM recommend(1, 2, 'odd "name"');
SELECT drop_model('odd "name"');

-- Views and materialized views are sources too.
CREATE MATERIALIZED VIEW ratings_mv AS SELECT * FROM ratings WHERE user_id <= 6;
SET client_min_messages = warning;
CALL train('mv', 'ratings_mv', value_col => 'rating', factors => 2, iterations => 3);
RESET client_min_messages;
SELECT num_users, num_items, num_interactions FROM recsys.models WHERE name = 'mv';

-- drop_model removes every row of the model.
SELECT drop_model('mv');
SELECT drop_model('mv', if_exists => true);
SELECT count(*) FROM recsys.models WHERE name = 'mv';
SELECT count(*) AS stray_rows FROM (
    SELECT model_id FROM recsys.user_factors
    UNION ALL SELECT model_id FROM recsys.item_factors
    UNION ALL SELECT model_id FROM recsys.training_log) r
WHERE model_id NOT IN (SELECT model_id FROM recsys.models);

-- Training threads (recsys.training_threads) solve rows independently:
-- the model is the same, bit for bit, with 1 thread or 3.
CREATE TABLE ratings_many AS
SELECT u AS user_id, i AS item_id, 1 + (hashint4(u * 1000 + i) & 3) AS rating
FROM generate_series(1, 600) u, generate_series(1, 80) i
WHERE hashint4(u * 7919 + i) % 4 = 0;
SET client_min_messages = warning;
SET recsys.training_threads = 1;
CALL train('one_thread', 'ratings_many', value_col => 'rating', factors => 8, iterations => 3);
CALL train('one_thread_i', 'ratings_many', method => 'ials', factors => 8, iterations => 3);
SET recsys.training_threads = 3;
CALL train('three_threads', 'ratings_many', value_col => 'rating', factors => 8, iterations => 3);
CALL train('three_threads_i', 'ratings_many', method => 'ials', factors => 8, iterations => 3);
RESET recsys.training_threads;
RESET client_min_messages;
SELECT a.name, count(*) AS users, bool_and(u.factors = v.factors AND u.bias = v.bias) AS identical,
       bool_and(a.final_loss = b.final_loss) AS same_loss
FROM recsys.models a
JOIN recsys.models b ON b.name = replace(a.name, 'one_thread', 'three_threads')
JOIN recsys.user_factors u ON u.model_id = a.model_id
JOIN recsys.user_factors v ON v.model_id = b.model_id AND v.user_id = u.user_id
WHERE a.name LIKE 'one_thread%'
GROUP BY a.name ORDER BY a.name;
SELECT drop_model(name) FROM recsys.models WHERE name LIKE '%thread%' ORDER BY name;

-- Factor rows are written straight to the tables (table_multi_insert and
-- each row's index entries), but through INSERT statements when a table
-- has a trigger (or rules, CHECK constraints, ...) that only a statement
-- runs.  Both give the same rows, stored the same way (the long seen
-- arrays toasted), and the indexes hold every row (amcheck), also after a
-- retrain that deletes the previous version's rows first.
CREATE EXTENSION amcheck;
CREATE TABLE ratings_long AS
SELECT u AS user_id, i AS item_id, 1 + (hashint4(u * 31 + i) & 3) AS rating
FROM generate_series(1, 40) u, generate_series(1, 600) i
WHERE u <= 3 OR hashint4(u * 13 + i) % 5 = 0;
CREATE TABLE trigger_rows (user_id bigint);
CREATE FUNCTION count_trigger_rows() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.trigger_rows VALUES (NEW.user_id); RETURN NULL; END$$;
SET client_min_messages = warning;
CALL train('direct', 'ratings_long', value_col => 'rating', factors => 4, iterations => 2);
CALL train('direct', 'ratings_long', value_col => 'rating', factors => 4, iterations => 2);
CREATE TRIGGER count_trigger_rows AFTER INSERT ON recsys.user_factors
    FOR EACH ROW EXECUTE FUNCTION count_trigger_rows();
CALL train('via_sql', 'ratings_long', value_col => 'rating', factors => 4, iterations => 2);
DROP TRIGGER count_trigger_rows ON recsys.user_factors;
RESET client_min_messages;
SELECT count(*) AS rows_through_insert, count(DISTINCT user_id) AS users FROM trigger_rows;
SELECT count(*) AS users, bool_and(u.bias = v.bias AND u.factors = v.factors
           AND u.seen = v.seen AND u.seen_values = v.seen_values) AS same_rows,
       bool_and(pg_column_size(u.*) = pg_column_size(v.*)) AS same_size,
       sum((pg_column_size(u.seen) > 2000)::int) > 0 AS some_toasted
FROM recsys.user_factors u
JOIN recsys.user_factors v ON v.user_id = u.user_id
WHERE u.model_id = (SELECT model_id FROM recsys.models WHERE name = 'direct')
  AND v.model_id = (SELECT model_id FROM recsys.models WHERE name = 'via_sql');
SELECT count(*) AS items, bool_and(u.bias = v.bias AND u.factors = v.factors
           AND u.popularity = v.popularity) AS same_rows
FROM recsys.item_factors u
JOIN recsys.item_factors v ON v.item_id = u.item_id
WHERE u.model_id = (SELECT model_id FROM recsys.models WHERE name = 'direct')
  AND v.model_id = (SELECT model_id FROM recsys.models WHERE name = 'via_sql');
SELECT CASE WHEN c.relname LIKE 'pg_toast%' THEN 'toast index of user_factors'
            ELSE c.relname END AS index, bt_index_check(i.indexrelid, true)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('recsys.user_factors'::regclass, 'recsys.item_factors'::regclass,
                     (SELECT reltoastrelid FROM pg_class WHERE oid = 'recsys.user_factors'::regclass))
ORDER BY c.relname LIKE 'pg_toast%', c.relname;
SELECT count(*) AS corrupt FROM verify_heapam('recsys.user_factors');
SELECT drop_model('direct'), drop_model('via_sql');
DROP TABLE ratings_long, trigger_rows;
DROP FUNCTION count_trigger_rows();
DROP EXTENSION amcheck;
