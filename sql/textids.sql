-- Models keyed by text, varchar or uuid ids: the dictionary stored with
-- the model (recsys.id_map), the text overloads of the serving functions,
-- fold-in of new users and items by text id, forgetting a user with their
-- id, and integer models served through the text overloads.
SET extra_float_digits = 0;
SET client_min_messages = warning;

-- The integer fixture of train.sql (two groups of users with opposite
-- tastes), keyed by names and uuids instead.
CREATE TABLE tx_users (user_id int, name text);
INSERT INTO tx_users SELECT u, 'user-' || chr(ascii('a') + u - 1) FROM generate_series(1, 8) u;
CREATE TABLE tx_items (item_id int, code uuid, title varchar(20));
INSERT INTO tx_items SELECT i, ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'title ' || i
FROM generate_series(1, 6) i;
CREATE VIEW tx_events AS
SELECT u.name AS customer, i.code AS product, r.clicks
FROM (VALUES (1, 1, 3), (1, 2, 1), (2, 1, 2), (2, 2, 2), (2, 3, 1), (3, 2, 3), (3, 3, 2),
             (4, 1, 1), (4, 3, 2), (5, 4, 3), (5, 5, 1), (6, 4, 2), (6, 5, 2), (6, 6, 1),
             (7, 5, 3), (7, 6, 2), (8, 4, 1), (8, 6, 2)) AS r(u, i, clicks)
JOIN tx_users u ON u.user_id = r.u JOIN tx_items i ON i.item_id = r.i;

CALL train('tx', 'tx_events', user_col => 'customer', item_col => 'product', value_col => 'clicks',
           method => 'ials', options => '{"factors": 2, "iterations": 10, "regularization": 0.1}');
SELECT num_users, num_items, num_interactions, user_id_type, item_id_type
FROM recsys.models WHERE name = 'tx';
-- Ids are numbered in byte order of the external ids.
SELECT m.side, m.internal, m.external FROM recsys.id_map m JOIN recsys.models USING (model_id)
WHERE name = 'tx' ORDER BY m.side, m.internal;

-- The same model on integer ids, for comparison: the answers must agree.
CREATE VIEW tx_int AS
SELECT u.user_id, i.item_id, e.clicks FROM tx_events e
JOIN tx_users u ON u.name = e.customer JOIN tx_items i ON i.code = e.product;
CALL train('tx_int', 'tx_int', value_col => 'clicks',
           method => 'ials', options => '{"factors": 2, "iterations": 10, "regularization": 0.1}');
SELECT t.item_id = i.code::text AS same_item, abs(t.score - r.score) < 1e-5 AS same_score
FROM recommend('user-a', 3, 'tx') WITH ORDINALITY t(item_id, score, k)
JOIN recommend(1, 3, 'tx_int') WITH ORDINALITY r(item_id, score, k) USING (k)
JOIN tx_items i ON i.item_id = r.item_id ORDER BY k;

-- Every serving function by text id, joined with the catalogue as an
-- application would (uuid cast to text).
SELECT i.title, r.score > 0 AS positive
FROM recommend('user-a', 2, 'tx') r JOIN tx_items i ON i.code::text = r.item_id ORDER BY r.score DESC;
SELECT u.name, r.item_id IS NOT NULL AS served
FROM tx_users u CROSS JOIN LATERAL recommend(u.name, 1, 'tx') r WHERE u.user_id <= 2 ORDER BY u.name;
SELECT round(predict('user-a', '00000000-0000-4000-8000-000000000003', 'tx')::numeric, 4) =
       round(predict(1, 3, 'tx_int')::numeric, 4) AS same_prediction;
SELECT item_id FROM similar_items('00000000-0000-4000-8000-000000000001', 2, 'tx');
-- The other three of user-a's group (nearly parallel factors: compared as a set).
SELECT user_id FROM similar_users('user-a', 3, 'tx') ORDER BY user_id;
SELECT item_id FROM recommend_for_items(ARRAY['00000000-0000-4000-8000-000000000004', 'no such item'], 2, 'tx');
SELECT item_id, round(contribution::numeric, 4) IS NOT NULL AS has_value
FROM explain('user-a', '00000000-0000-4000-8000-000000000003', 5, 'tx');
SELECT item_id FROM recommend('user-a', 5, 'tx',
       candidates => ARRAY['00000000-0000-4000-8000-000000000004', '00000000-0000-4000-8000-000000000005'],
       exclude => ARRAY['00000000-0000-4000-8000-000000000005']);
-- Unknown ids: an unknown user gets the popular items, an unknown item
-- nothing.
SELECT item_id, score FROM recommend('nobody', 2, 'tx');
SELECT count(*) FROM similar_items('nothing', 2, 'tx');
SELECT predict('nobody', 'nothing', 'tx') = 0 AS zero;

-- A new user is folded in by text id and gets the next id; forgetting
-- them deletes their id too.
CREATE TABLE tx_new (customer text, product uuid, clicks int);
CREATE VIEW tx_all AS SELECT * FROM tx_events UNION ALL SELECT * FROM tx_new;
CALL train('tx_live', 'tx_all', user_col => 'customer', item_col => 'product', value_col => 'clicks',
           method => 'ials', options => '{"factors": 2, "iterations": 10, "regularization": 0.1}');
INSERT INTO tx_new VALUES ('user-new', '00000000-0000-4000-8000-000000000004', 2),
                          ('user-new', '00000000-0000-4000-8000-0000000000ff', 5);
SELECT refresh_user('tx_live', 'user-new');
SELECT m.internal, f.seen FROM recsys.id_map m JOIN recsys.models USING (model_id)
JOIN recsys.user_factors f ON f.model_id = m.model_id AND f.user_id = m.internal
WHERE name = 'tx_live' AND m.external = 'user-new';
SELECT item_id FROM recommend('user-new', 1, 'tx_live');
SELECT forget_user('tx_live', 'user-new') > 0 AS forgotten;
SELECT count(*) AS ids_left FROM recsys.id_map m JOIN recsys.models USING (model_id)
WHERE name = 'tx_live' AND m.external = 'user-new';
-- A user whose rows are all gone is removed, with their id.
INSERT INTO tx_new VALUES ('user-gone', '00000000-0000-4000-8000-000000000001', 1);
SELECT refresh_user('tx_live', 'user-gone');
DELETE FROM tx_new;
SELECT refresh_user('tx_live', 'user-gone');
SELECT count(*) AS ids_left FROM recsys.id_map m JOIN recsys.models USING (model_id)
WHERE name = 'tx_live' AND m.external = 'user-gone';
-- A user unknown to the model, with no rows: nothing is created.
SELECT refresh_user('tx_live', 'never-seen');
SELECT count(*) AS ids_left FROM recsys.id_map m JOIN recsys.models USING (model_id)
WHERE name = 'tx_live' AND m.external = 'never-seen';

-- Integer models answer the text overloads with their ids as text.
SELECT item_id FROM recommend('1', 2, 'tx_int');
SELECT item_id FROM similar_items('1', 1, 'tx_int');
SELECT * FROM recommend('one', 2, 'tx_int');
-- recommend_all serves integer models only, and bigint results of a
-- text-keyed model are refused (they would be internal numbers).
SELECT * FROM recommend_all(1, 'tx');
SELECT * FROM recommend(1, 2, 'tx');
-- Text ids are interned, not parsed: '01' and '1' are different users.
CREATE TABLE tx_digits (u text, i text);
INSERT INTO tx_digits VALUES ('1', 'a'), ('01', 'b'), ('1', 'b');
CALL train('tx_digits', 'tx_digits', user_col => 'u', item_col => 'i', method => 'popular');
SELECT external, internal FROM recsys.id_map m JOIN recsys.models USING (model_id)
WHERE name = 'tx_digits' AND side = 'user' ORDER BY internal;
SELECT num_users FROM recsys.models WHERE name = 'tx_digits';
-- NULL ids are errors, as for integers; other types are refused.
INSERT INTO tx_digits VALUES (NULL, 'a');
CALL train('bad', 'tx_digits', user_col => 'u', item_col => 'i', method => 'popular');
CREATE TABLE tx_float (u float8, i int);
INSERT INTO tx_float VALUES (1.5, 1);
CALL train('bad', 'tx_float', user_col => 'u', item_col => 'i', method => 'popular');

-- Hybrid models take text-keyed feature relations, sharing the dictionary.
CREATE VIEW tx_tags AS SELECT code AS product, CASE WHEN item_id <= 3 THEN 'group:a' ELSE 'group:b' END AS feature
FROM tx_items UNION ALL SELECT '00000000-0000-4000-8000-000000000099'::uuid, 'group:a';
CALL train('tx_hybrid', 'tx_events', user_col => 'customer', item_col => 'product', value_col => 'clicks',
           method => 'ials', options => '{"factors": 2, "iterations": 5, "item_features": "tx_tags"}');
SELECT num_items FROM recsys.models WHERE name = 'tx_hybrid';
SELECT count(*) AS cold_item_served FROM recommend('user-a', 10, 'tx_hybrid')
WHERE item_id = '00000000-0000-4000-8000-000000000099';

-- recommend_for_features has no id argument to overload on: on a
-- text-keyed model it returns the model's numbers, mapped by recsys.id_map.
CALL train('tx_content', 'tx_events', user_col => 'customer', item_col => 'product',
           method => 'content', options => '{"item_features": "tx_tags", "weighting": "none"}');
SELECT m.external AS product, round(r.score::numeric, 4) AS score
FROM recommend_for_features(ARRAY['group:a'], 2, 'tx_content') r
JOIN recsys.id_map m ON m.model_id = (SELECT model_id FROM recsys.models WHERE name = 'tx_content')
                    AND m.side = 'item' AND m.internal = r.item_id
ORDER BY r.score DESC, m.external;

SELECT name, drop_model(name) FROM recsys.models WHERE name LIKE 'tx%' ORDER BY name;
SELECT count(*) AS ids_left FROM recsys.id_map;
DROP VIEW tx_tags, tx_all, tx_int, tx_events;
DROP TABLE tx_users, tx_items, tx_new, tx_digits, tx_float;
