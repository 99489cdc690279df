-- Bad input: every case is a clean error with a useful message, never a
-- crash, and never a changed model.
SET client_min_messages = warning;
CALL train('fixture', 'ratings', value_col => 'rating', factors => 2,
           iterations => 10, regularization => 0.3);
SELECT version AS fixture_version FROM recsys.models WHERE name = 'fixture' \gset
\set VERBOSITY default

-- The source: missing table or column, wrong object kind, wrong types.
CALL train('bad', 'no_such_table', value_col => 'rating');
-- A query where a table or view name belongs, and names that resolve.
CALL train('bad', 'SELECT user_id, item_id FROM ratings');
CALL train('bad', '  with r AS (SELECT 1) SELECT * FROM r');
CALL train('bad', 'public.ratings.extra.part', value_col => 'rating');
CREATE TABLE bool_ratings (user_id int, item_id int, liked boolean);
INSERT INTO bool_ratings VALUES (1, 1, true);
CALL train('bad', 'bool_ratings', value_col => 'liked', method => 'ials');
DROP TABLE bool_ratings;
CALL train('bad', 'ratings', user_col => 'no_such_column', value_col => 'rating');
CALL train('bad', 'ratings', value_col => 'no_such_column');
CALL train('bad', 'items_pkey', value_col => 'rating');
CREATE TABLE typed (user_id int, item_id int, label text, fuzzy float8, stamp timestamptz);
INSERT INTO typed VALUES (1, 1, 'good', 1.5, now());
CALL train('bad', 'typed', value_col => 'label');
CALL train('bad', 'typed', value_col => 'stamp');
CALL train('bad', 'typed', user_col => 'fuzzy', value_col => 'fuzzy');
CALL train('bad', 'typed', user_col => 'ctid', value_col => 'fuzzy');

-- The data: NULL ids, non-finite and out-of-range values, nothing to train on.
CREATE TABLE bad_rows (user_id int, item_id int, rating float8);
INSERT INTO bad_rows VALUES (1, 1, 5), (NULL, 2, 3);
CALL train('bad', 'bad_rows', value_col => 'rating');
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 5), (1, NULL, 3);
CALL train('bad', 'bad_rows', value_col => 'rating');
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 5), (2, 7, 'NaN');
CALL train('bad', 'bad_rows', value_col => 'rating');
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 5), (2, 7, 'Infinity');
CALL train('bad', 'bad_rows', value_col => 'rating');
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 5), (2, 7, '-Infinity');
CALL train('bad', 'bad_rows', value_col => 'rating');
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 5), (2, 7, 1e300);
CALL train('bad', 'bad_rows', value_col => 'rating');
TRUNCATE bad_rows;
CALL train('bad', 'bad_rows', value_col => 'rating');
INSERT INTO bad_rows VALUES (1, 1, NULL), (2, 2, NULL);
CALL train('bad', 'bad_rows', value_col => 'rating');

-- Hyperparameters.
CALL train('bad', 'ratings', value_col => 'rating', factors => 0);
CALL train('bad', 'ratings', value_col => 'rating', factors => -3);
CALL train('bad', 'ratings', value_col => 'rating', factors => 1025);
CALL train('bad', 'ratings', value_col => 'rating', iterations => 0);
CALL train('bad', 'ratings', value_col => 'rating', iterations => 10001);
CALL train('bad', 'ratings', value_col => 'rating', regularization => -0.1);
CALL train('bad', 'ratings', value_col => 'rating', regularization => 'NaN');
CALL train('bad', 'ratings', value_col => 'rating', regularization => 'Infinity');
CALL train('bad', 'ratings', value_col => 'rating', method => 'svd');
CALL train('bad', 'ratings', value_col => 'rating', method => NULL);
CALL train('bad', 'ratings', value_col => 'rating', options => NULL);
CALL train('bad', 'ratings');
CALL train(NULL, 'ratings', value_col => 'rating');
CALL train('', 'ratings', value_col => 'rating');
CALL train(repeat('x', 129), 'ratings', value_col => 'rating');
CALL train('bad', NULL, value_col => 'rating');
CALL train('bad', 'ratings', user_col => NULL, value_col => 'rating');

-- Implicit-feedback and popular parameters.
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', alpha => -1);
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', alpha => 'NaN');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', solver => 'lu');
CALL train('bad', 'ratings', value_col => 'rating', solver => 'cg');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', cg_steps => 0);
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', cg_steps => 101);
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', options => '{"solver": "subspace", "block_size": 0}');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', options => '{"solver": "subspace", "block_size": 2.5}');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', factors => 16, options => '{"solver": "subspace", "block_size": 17}');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', options => '{"block_size": 8}');
CALL train('bad', 'ratings', value_col => 'rating', options => '{"block_size": 8}');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', scaling => 'sqrt');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', scaling => 'log', epsilon => 0);
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', options => '[1, 2]');
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 5), (2, 7, -1);
CALL train('bad', 'bad_rows', value_col => 'rating', method => 'ials');
CALL train('bad', 'ratings', value_col => 'rating', method => 'ials', alpha => 1e308);
TRUNCATE bad_rows;
INSERT INTO bad_rows VALUES (1, 1, 3e38), (2, 1, -3e38), (1, 2, 3e38), (2, 2, 3e38);
CALL train('bad', 'bad_rows', value_col => 'rating', factors => 1, iterations => 1);

-- Zero regularization with fewer ratings than unknowns cannot be solved.
CALL train('bad', 'ratings', value_col => 'rating', factors => 8, regularization => 0);

-- The memory budget is checked before the big allocations (each training
-- thread has its own solver workspace).
SET recsys.training_threads = 2;
SET maintenance_work_mem = '1MB';
CALL train('bad', 'ratings', value_col => 'rating', factors => 1024);
RESET maintenance_work_mem;
RESET recsys.training_threads;

-- Serving.
SELECT * FROM recommend(1, 0, 'fixture');
SELECT * FROM recommend(1, -5, 'fixture');
SELECT * FROM recommend(1, NULL, 'fixture');
SELECT * FROM recommend(1, 5, 'fixture', exclude_seen => NULL);
SELECT * FROM recommend(1, 5, 'no_such_model');
SELECT predict(1, 1, 'no_such_model');
SELECT * FROM similar_items(1, 0, 'fixture');
SELECT * FROM similar_items(1, 5, 'no_such_model');
SELECT drop_model('no_such_model');
SELECT * FROM recommend(1, 5, 'fixture', candidates => ARRAY[1, NULL]);
SELECT * FROM recommend(1, 5, 'fixture', exclude => '{{1,2},{3,4}}');
SELECT * FROM similar_users(1, 0, 'fixture');
SELECT * FROM recommend_all(0, 'fixture');
SELECT * FROM recommend_all(3, 'fixture', NULL);

-- Fold-in, refresh and explanations.
SELECT * FROM recommend_for_items('{}'::bigint[], 5, 'fixture');
SELECT * FROM recommend_for_items(ARRAY[1, 2], 5, 'fixture');
SELECT * FROM recommend_for_items(ARRAY[1, 2], 5, 'fixture', "values" => ARRAY[5]);
SELECT * FROM recommend_for_items(ARRAY[1, 2], 5, 'fixture', "values" => ARRAY[5, 'NaN'::float8]);
SELECT * FROM recommend_for_items(ARRAY[1, NULL], 5, 'fixture', "values" => ARRAY[5, 4]);
SELECT * FROM recommend_for_items(ARRAY[1, 2], 0, 'fixture', "values" => ARRAY[5, 4]);
SELECT * FROM recommend_for_items(ARRAY[1, 2], 5, 'clicks', "values" => ARRAY[1, -2]);
SELECT refresh_user('fixture', NULL);
SELECT forget_user('fixture', NULL);
SELECT forget_user('no_such_model', 1);
SELECT refresh_user('no_such_model', 1);
SELECT * FROM explain(1, 3, 0, 'fixture');
SET client_min_messages = warning;
CALL train('pop', 'ratings', method => 'popular');
RESET client_min_messages;
SELECT * FROM similar_items(1, 5, 'pop');
SELECT * FROM similar_users(1, 5, 'pop');
SELECT * FROM explain(1, 3, 5, 'pop');
SELECT drop_model('pop');
-- A source renamed after training cannot be refreshed from.
SET client_min_messages = warning;
CREATE TABLE moving AS SELECT * FROM ratings;
CALL train('moving', 'moving', value_col => 'rating', factors => 2, iterations => 2);
ALTER TABLE moving RENAME TO moved;
SELECT refresh_user('moving', 1);
SELECT drop_model('moving');
RESET client_min_messages;
SELECT drop_model(NULL);
SET recsys.default_model = 'no_such_model';
SELECT * FROM recommend(1, 5);
RESET recsys.default_model;
SET recsys.no_such_setting = 1;

-- The shard-side functions of distributed training, called by hand out of
-- order: errors, never a crash (each step uses what the one before built).
SELECT recsys.shard_export();
SELECT recsys.shard_setup(NULL, 0.5, '\x');
SELECT * FROM recsys.shard_open('ratings', 'user_id', 'item_id', 'rating', 'item_knn', '{}');
SELECT * FROM recsys.shard_item_cg('\xffffffffffffffff');
SELECT recsys.shard_gram();
SELECT count(*) FROM recsys.shard_open('ratings', 'user_id', 'item_id', 'rating', 'ials', '{"factors": 2}');
SELECT * FROM recsys.shard_item_normals();
SELECT * FROM recsys.shard_user_step(NULL);
SELECT recsys.shard_item_subspace(0, true, '\x', NULL);
SELECT recsys.shard_setup('\x', 0.5, NULL);
SELECT recsys.shard_setup('\x', 0.5, '\x');
SELECT recsys.shard_close(), recsys.shard_close();

-- The smallest bigint is an id like any other of an integer-keyed model
-- (text-keyed models use it internally for "unknown").
CREATE TABLE extreme_ids (user_id bigint, item_id bigint, rating real);
INSERT INTO extreme_ids VALUES (-9223372036854775808, -9223372036854775808, 5),
    (-9223372036854775808, 1, 1), (1, -9223372036854775808, 4), (1, 2, 2), (2, 1, 3), (2, 2, 5);
SET client_min_messages = warning;
CALL train('extreme', 'extreme_ids', value_col => 'rating', factors => 2, iterations => 2);
RESET client_min_messages;
SELECT refresh_item('extreme', -9223372036854775808);
SELECT num_items FROM recsys.models WHERE name = 'extreme';
SELECT count(*) FROM similar_users(-9223372036854775808, 5, 'extreme');
SELECT count(*) FROM recommend(-9223372036854775808, 5, 'extreme');
SELECT drop_model('extreme');
DROP TABLE extreme_ids;

-- None of this touched the fixture model or left a model behind.
SELECT version = :fixture_version AS unchanged FROM recsys.models WHERE name = 'fixture';
SELECT count(*) AS bad_models FROM recsys.models WHERE name = 'bad';
