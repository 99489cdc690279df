-- recsys quick-start demo, run by test/demo.sh:
--
--   test/data/generate --users 2000 --items 1000 --rows 100000 --rank 5 --beta 20 --seed 42 \
--     | psql -X -v ON_ERROR_STOP=1 -f test/demo.sql
--
-- The ratings CSV (user_id,item_id,rating with a header line) is read from
-- psql's standard input.

\echo '==> CREATE EXTENSION recsys'
CREATE EXTENSION recsys;

\echo '==> loading sample ratings'
CREATE TABLE ratings (user_id int, item_id int, rating real);
\copy ratings FROM pstdin WITH (FORMAT csv, HEADER true)
CREATE TABLE items AS
    SELECT DISTINCT item_id, 'Item ' || item_id AS title FROM ratings;
ANALYZE ratings;
ANALYZE items;
SELECT count(*) AS ratings, count(DISTINCT user_id) AS users,
       count(DISTINCT item_id) AS items
FROM ratings;

\echo '==> training model "demo" (ALS, 32 factors, 10 iterations)'
\timing on
CALL train('demo', 'ratings', value_col => 'rating', factors => 32, iterations => 10);
\timing off

\echo '==> top 10 recommendations for user 42'
SELECT * FROM recommend(42, 10);

\echo '==> the same, joined with item titles'
SELECT r.item_id, i.title, round(r.score::numeric, 3) AS score
FROM recommend(42, 10) r
JOIN items i USING (item_id)
ORDER BY r.score DESC, r.item_id;

\echo '==> 5 items most similar to item 7'
SELECT * FROM similar_items(7, 5);

\echo '==> trained models'
SELECT name, method, num_users, num_items, num_interactions, final_loss
FROM recsys.models;

\echo '==> evaluation: hold out 20% of each user''s ratings, train on the rest'
SELECT * FROM split_per_user('ratings', 'ratings_train', 'ratings_test');
SET client_min_messages = warning;
CALL train('demo_ratings', 'ratings_train', value_col => 'rating', factors => 32, iterations => 10);
CALL train('demo_ranking', 'ratings_train', method => 'ials', factors => 32, iterations => 10,
           regularization => 30, alpha => 3);
RESET client_min_messages;

\echo '==> rating prediction (explicit ALS) next to the baseline (the training mean)'
SELECT metric, round(model_value::numeric, 4) AS model,
       round(baseline_value::numeric, 4) AS baseline, evaluated
FROM evaluate('demo_ratings', 'ratings_test', k => 10)
WHERE metric IN ('rmse', 'mae');

\echo '==> top-10 ranking (implicit ALS on who rated what) next to the popular baseline'
SELECT metric, at_k, round(model_value::numeric, 4) AS model,
       round(baseline_value::numeric, 4) AS popular_baseline, evaluated
FROM evaluate('demo_ranking', 'ratings_test', k => 10);
