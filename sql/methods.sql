-- Methods behind one interface: the method table, options, and the two
-- item-neighbour methods (item_knn, ease) through every serving,
-- fold-in, explanation, forgetting and evaluation function, on fixtures
-- small enough to check by hand.
SET extra_float_digits = 0;

SELECT * FROM recsys.methods();
SELECT * FROM recsys.method_options('item_knn');
SELECT * FROM recsys.method_options('ease');
SELECT option, default_value FROM recsys.method_options('ials');
SELECT * FROM recsys.method_options('no_such_method');

-- Options are checked by key, type and range, whichever way they come.
CALL train('bad', 'ratings', method => 'item_knn', options => '{"neighbours": 5}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"neighbors": "5"}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"neighbors": 2.5}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"neighbors": 0}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"similarity": "pearson"}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"b": 1.5}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"binary": 1}');
CALL train('bad', 'ratings', method => 'item_knn', options => '{"shrink": -1}');
CALL train('bad', 'ratings', method => 'item_knn', factors => 8);
CALL train('bad', 'ratings', method => 'ease', options => '{"regularization": 0}');
CALL train('bad', 'ratings', method => 'ials', factors => 8, options => '{"factors": 16}');
CALL train('bad', 'ratings', value_col => 'rating', options => '{"factors": [2, 3]}');
CALL train('bad', 'ratings', value_col => 'rating', options => '{"factors": null}');
SELECT count(*) AS bad_models FROM recsys.models WHERE name = 'bad';

--
-- A 4 x 5 fixture (binary: every interaction counts 1)
--
--          item 1  2  3  4  5
--   user 1      x  x  x
--   user 2      x  x
--   user 3         x  x  x
--   user 4                x  x
--
-- Cosine similarity |U_i & U_j| / sqrt(|U_i| |U_j|) of the items' users:
--   1-2: 2/sqrt(6) = 0.8165   1-3: 1/2 = 0.5   2-3: 2/sqrt(6) = 0.8165
--   2-4: 1/sqrt(6) = 0.4082   3-4: 1/2 = 0.5   4-5: 1/sqrt(2) = 0.7071
-- (all other pairs 0).  With neighbors = 2, best first, ties by id:
--   1: 2 (0.8165), 3 (0.5)      2: 1 (0.8165), 3 (0.8165)
--   3: 2 (0.8165), 1 (0.5)      4: 5 (0.7071), 3 (0.5)      5: 4 (0.7071)
--
CREATE TABLE tiny (user_id int, item_id int);
INSERT INTO tiny VALUES (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 2), (3, 3), (3, 4), (4, 4), (4, 5);
CALL train('knn', 'tiny', method => 'item_knn', options => '{"neighbors": 2}');
SELECT name, method, factors, params, num_users, num_items, final_loss FROM recsys.models WHERE name = 'knn';
SELECT f.item_id, f.neighbors, (SELECT array_agg(round(w::numeric, 4)) FROM unnest(f.weights) w) AS weights
FROM recsys.item_neighbors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'knn' ORDER BY f.item_id;

-- User 4 (items 4, 5): item 4's list gives 3 0.5 (5 is seen), item 5's
-- gives 4 (seen); 1 and 2 are reached by no list: score 0, ties by id.
SELECT item_id, round(score::numeric, 4) AS score FROM recommend(4, 3, 'knn');
-- User 2 (1, 2): 3 gets 0.5 (from 1) + 0.8165 (from 2) = 1.3165.
SELECT item_id, round(score::numeric, 4) AS score FROM recommend(2, 1, 'knn');
SELECT round(predict(2, 3, 'knn')::numeric, 4) AS predicted, round(predict(2, 5, 'knn')::numeric, 4) AS unreached;
-- The explanation is exact: its rows add up to the score.
SELECT item_id, round(contribution::numeric, 4) AS contribution FROM explain(2, 3, 5, 'knn');
SELECT round(sum(contribution)::numeric, 4) AS total FROM explain(2, 3, 5, 'knn');
-- A new user is just a list of items: no solve.
SELECT item_id, round(score::numeric, 4) AS score FROM recommend_for_items(ARRAY[4, 5], 3, 'knn');
SELECT item_id, round(score::numeric, 4) AS score FROM recommend_for_items(ARRAY[99], 2, 'knn');
-- Similar items: the item's own list.
SELECT item_id, round(score::numeric, 4) AS score FROM similar_items(4, 5, 'knn');
SELECT * FROM similar_users(1, 2, 'knn');
SELECT user_id, item_id, round(score::numeric, 4) AS score FROM recommend_all(1, 'knn') ORDER BY user_id;
-- Values count unless binary: item 1 three times as much gives item 3
-- 3 * 0.5 + 0.8165 = 2.3165.
SELECT item_id, round(score::numeric, 4) AS score
FROM recommend_for_items(ARRAY[1, 2], 1, 'knn', "values" => ARRAY[3, 1]);

-- Other similarities and weightings.  Jaccard |U_i & U_j| / |U_i | U_j|:
-- 1-2 and 2-3: 2/3, 4-5: 1/2, 1-3 and 3-4: 1/3, 2-4: 1/4.
CALL train('knn_jaccard', 'tiny', method => 'item_knn', options => '{"similarity": "jaccard", "neighbors": 4}');
SELECT item_id, round(score::numeric, 4) AS score FROM similar_items(2, 4, 'knn_jaccard');
-- Shrinkage 1: 1-2 becomes 2 / (sqrt(6) + 1) = 0.5798.
CALL train('knn_shrunk', 'tiny', method => 'item_knn', options => '{"neighbors": 4, "shrink": 1}');
SELECT item_id, round(score::numeric, 4) AS score FROM similar_items(1, 1, 'knn_shrunk');
CALL train('knn_bm25', 'tiny', method => 'item_knn', options => '{"weighting": "bm25", "similarity": "dot"}');
CALL train('knn_tfidf', 'tiny', method => 'item_knn', options => '{"weighting": "tfidf"}');
SELECT m.name, count(*) AS items, sum(cardinality(f.neighbors)) AS neighbours,
       bool_and(0 < ALL (f.weights)) AS positive
FROM recsys.item_neighbors f JOIN recsys.models m USING (model_id)
WHERE m.name IN ('knn_bm25', 'knn_tfidf', 'knn_jaccard', 'knn_shrunk') GROUP BY 1 ORDER BY 1;
SELECT drop_model(n) FROM unnest(ARRAY['knn_jaccard', 'knn_shrunk', 'knn_bm25', 'knn_tfidf']) n;

--
-- EASE on the same fixture with lambda = 1.  G = X^T X + I is
--   [[3,2,1,0,0],[2,4,2,1,0],[1,2,3,1,0],[0,1,1,3,1],[0,0,0,1,2]]
-- and its inverse P = 1/32 [[17,-9,-1,4,-2],[-9,17,-7,-4,2],
--   [-1,-7,17,-4,2],[4,-4,-4,16,-8],[-2,2,2,-8,20]]
-- (check: G P = I).  B_ij = -P_ij / P_jj, diag(B) = 0:
--   row 1:    0    9/17   1/17  -1/4   1/10
--   row 2:  9/17    0     7/17   1/4  -1/10
--   row 3:  1/17  7/17     0     1/4  -1/10
--   row 4: -4/17  4/17   4/17     0    2/5
--   row 5:  2/17 -2/17  -2/17   1/2     0
-- neighbors = 0 keeps whole rows (negative weights too).
--
CALL train('ease', 'tiny', method => 'ease', options => '{"regularization": 1, "neighbors": 0}');
SELECT f.item_id, f.neighbors, (SELECT array_agg(round(w::numeric, 4)) FROM unnest(f.weights) w) AS weights
FROM recsys.item_neighbors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'ease' ORDER BY f.item_id;
-- User 4 (4, 5): item 2 scores 4/17 - 2/17 = 2/17 = 0.1176, as does 3;
-- item 1 -4/17 + 2/17 = -0.1176.
SELECT item_id, round(score::numeric, 4) AS score FROM recommend(4, 3, 'ease');
SELECT item_id, round(contribution::numeric, 4) AS contribution FROM explain(4, 2, 5, 'ease');
SELECT item_id, round(score::numeric, 4) AS score FROM recommend_for_items(ARRAY[1, 2], 2, 'ease');
SELECT item_id, round(score::numeric, 4) AS score FROM similar_items(5, 2, 'ease');
-- Sparsified to each row's 2 largest positive weights
CALL train('ease2', 'tiny', method => 'ease', options => '{"regularization": 1, "neighbors": 2}');
SELECT f.item_id, f.neighbors, (SELECT array_agg(round(w::numeric, 4)) FROM unnest(f.weights) w) AS weights
FROM recsys.item_neighbors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'ease2' ORDER BY f.item_id;
SELECT drop_model('ease2');

--
-- Fold-in, forgetting and grants work the same for every method.
--
-- refresh_user stores the user's current rows (no solve).
INSERT INTO tiny VALUES (4, 3);
SELECT refresh_user('knn', 4);
SELECT f.seen, f.seen_values, f.factors FROM recsys.user_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'knn' AND f.user_id = 4;
DELETE FROM tiny WHERE user_id = 4 AND item_id = 3;
-- forget_user builds the lists again without the user: item 5 had only
-- user 4 and goes; item 4 keeps only user 3, so its list changes.
SELECT version AS v_before FROM recsys.models WHERE name = 'knn' \gset
SELECT forget_user('knn', 4);
SELECT version > :v_before AS new_version, num_users, num_items FROM recsys.models WHERE name = 'knn';
SELECT f.item_id, f.neighbors, (SELECT array_agg(round(w::numeric, 4)) FROM unnest(f.weights) w) AS weights
FROM recsys.item_neighbors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'knn' ORDER BY f.item_id;
SELECT forget_user('ease', 4);
SELECT count(*) AS items FROM recsys.item_neighbors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'ease';
SELECT item_id, round(score::numeric, 4) AS score FROM recommend(2, 2, 'ease');

--
-- Evaluation, cross-validation and tuning on the 8 x 6 fixture (ratings
-- 4 and 5 are relevant).
--
CREATE TABLE m_train AS SELECT * FROM ratings WHERE (user_id + item_id) % 4 <> 0;
CREATE TABLE m_test AS SELECT * FROM ratings WHERE (user_id + item_id) % 4 = 0;
SELECT metric, round(model_value::numeric, 4) AS model, round(baseline_value::numeric, 4) AS popular
FROM train_and_evaluate('m_train', 'm_test', '{"method": "item_knn", "neighbors": 3}', k => 2,
                        value_col => 'rating', relevance_threshold => 4)
WHERE metric IN ('precision', 'ndcg') ORDER BY metric;
-- (the progress NOTICEs carry timings)
SET client_min_messages = warning;
SELECT metric, round(mean::numeric, 4) AS mean, round(baseline_mean::numeric, 4) AS popular
FROM cross_validate('ratings', '{"method": "ease", "regularization": 10}', folds => 2, k => 2,
                    value_col => 'rating', relevance_threshold => 4)
WHERE metric IN ('precision', 'recall') ORDER BY metric;
DROP TABLE m_train, m_test;
SELECT trial, params FROM grid_search('ratings', '{"method": "item_knn", "neighbors": [1, 5]}', 'tn_knn',
                                      k => 2);
RESET client_min_messages;
DROP TABLE tn_knn;

-- Dump-and-restore and privileges cover item_neighbors like the other tables.
SELECT count(*) > 0 AS dumped FROM pg_extension e, unnest(e.extconfig) c
WHERE e.extname = 'recsys' AND c = 'recsys.item_neighbors'::regclass;
SELECT drop_model('knn'), drop_model('ease');
SELECT count(*) AS left_behind FROM recsys.item_neighbors;
DROP TABLE tiny;
