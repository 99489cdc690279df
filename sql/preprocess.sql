-- Preprocessing options of every method: values capped at max_value,
-- recency decay by time_col and half_life (relative to the newest row or
-- to as_of), and iterated k-core filtering; each reported in a NOTICE and
-- in recsys.models.preprocessing.  Method popular ranks items by the sum
-- of their (preprocessed) values, which makes every step checkable by
-- hand.
SET extra_float_digits = 0;

CREATE TABLE pp_events (user_id int, item_id int, clicks int, at timestamptz, day int);
INSERT INTO pp_events VALUES
    (1, 1, 1, '2026-01-10 12:00+00', 10), (1, 2, 50, '2026-01-09 12:00+00', 9),
    (2, 1, 2, '2026-01-08 12:00+00', 8),  (2, 3, 1, '2026-01-10 12:00+00', 10),
    (3, 2, 1, '2026-01-10 12:00+00', 10), (3, 3, 4, '2026-01-06 12:00+00', 6),
    (4, 4, 1, '2026-01-10 12:00+00', 10), (4, 1, 1, NULL, NULL);
SET client_min_messages = notice;

-- 1. max_value: 50 clicks count 5.  Item 2: 5 + 1 = 6.
CALL train('pp_cap', 'pp_events', value_col => 'clicks', method => 'popular',
           options => '{"max_value": 5}');
SELECT * FROM recommend(99, 4, 'pp_cap');
SELECT params, preprocessing FROM recsys.models WHERE name = 'pp_cap';

-- 2. Recency decay, half-life one day, ages from the newest row
-- (2026-01-10 12:00): item 1: 1 + 2 * 2^-2 = 1.5, item 2: 50 / 2 + 1 =
-- 26, item 3: 1 + 4 * 2^-4 = 1.25, item 4: 1.  The row without a time is
-- skipped.
CALL train('pp_decay', 'pp_events', value_col => 'clicks', method => 'popular',
           options => '{"time_col": "at", "half_life": "1 day"}');
SELECT * FROM recommend(99, 4, 'pp_decay');
SELECT params ->> 'as_of' AS as_of_epoch, pg_catalog.to_timestamp((params ->> 'as_of')::float8) AS as_of,
       preprocessing FROM recsys.models WHERE name = 'pp_decay';
-- Capped first, then decayed: item 2: 5 / 2 + 1 = 3.5.
CALL train('pp_both', 'pp_events', value_col => 'clicks', method => 'popular',
           options => '{"time_col": "at", "half_life": "1 day", "max_value": 5}');
SELECT * FROM recommend(99, 2, 'pp_both');
-- as_of two days later: every factor a quarter of the above; rows
-- newer than as_of would count in full.
CALL train('pp_asof', 'pp_events', value_col => 'clicks', method => 'popular',
           options => '{"time_col": "at", "half_life": "1 day", "as_of": "2026-01-12 12:00+00"}');
SELECT * FROM recommend(99, 4, 'pp_asof');
-- A numeric time column takes numbers, in its unit (days here).
CALL train('pp_days', 'pp_events', value_col => 'clicks', method => 'popular',
           options => '{"time_col": "day", "half_life": "2", "as_of": "10"}');
SELECT * FROM recommend(99, 4, 'pp_days');

-- 3. Iterated k-core, at least 2 interactions per user and per item:
-- users 1 {1, 2}, 2 {1, 2}, 3 {2, 3}, 4 {3, 4}, 5 {4}.
-- Pass 1: user 5 (one item) goes, which leaves item 4 with user 4 only:
-- it goes.  Pass 2: user 4 has item 3 only and goes, then item 3 (user 3
-- only).  Pass 3: user 3 has item 2 only and goes; item 2 keeps users 1
-- and 2.  Pass 4 changes nothing: users 1, 2 and items 1, 2 remain, 4 of
-- the 9 interactions.
CREATE TABLE pp_core (user_id int, item_id int);
INSERT INTO pp_core VALUES (1, 1), (1, 2), (2, 1), (2, 2), (3, 2), (3, 3), (4, 3), (4, 4), (5, 4);
CALL train('pp_core', 'pp_core', method => 'popular',
           options => '{"min_user_interactions": 2, "min_item_interactions": 2}');
SELECT num_users, num_items, num_interactions, preprocessing FROM recsys.models WHERE name = 'pp_core';
SELECT * FROM recommend(99, 5, 'pp_core');
-- A user left out is served as an unknown user.
SELECT count(*) AS known FROM recsys.user_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'pp_core' AND f.user_id = 5;
-- Items known by their features stay, as cold rows.
CREATE TABLE pp_tags (item_id int, feature text);
INSERT INTO pp_tags VALUES (3, 'a'), (4, 'b');
CALL train('pp_core_content', 'pp_core', method => 'content',
           options => '{"min_user_interactions": 2, "min_item_interactions": 2, "item_features": "pp_tags"}');
SELECT f.item_id, f.popularity FROM recsys.item_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'pp_core_content' ORDER BY 1;

-- 4. Fold-in decays a user's rows as training did, against the stored
-- reference time.
SET client_min_messages = warning;  -- the iterations' NOTICEs carry timings
CALL train('pp_ials', 'pp_events', value_col => 'clicks', method => 'ials',
           options => '{"factors": 2, "iterations": 3, "time_col": "at", "half_life": "1 day"}');
SELECT f.seen, f.seen_values FROM recsys.user_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'pp_ials' AND f.user_id = 2;
INSERT INTO pp_events VALUES (2, 4, 8, '2026-01-07 12:00+00', 7);
SELECT refresh_user('pp_ials', 2);
SELECT f.seen, f.seen_values FROM recsys.user_factors f JOIN recsys.models m USING (model_id)
WHERE m.name = 'pp_ials' AND f.user_id = 2;
DELETE FROM pp_events WHERE item_id = 4 AND user_id = 2;
RESET client_min_messages;

-- 5. Errors.
CALL train('bad', 'pp_events', method => 'popular', options => '{"half_life": "1 day"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"as_of": "2026-01-01"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "at"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "no_such", "half_life": "1 day"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "user_id", "half_life": "soon"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "at", "half_life": "soon"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "at", "half_life": "-1 day"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "at", "half_life": "0"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "at", "half_life": "1 day", "as_of": "someday"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "at", "half_life": "1 day", "as_of": "infinity"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"time_col": "day", "half_life": "1 day"}');
CREATE TABLE pp_text_time (user_id int, item_id int, at text);
INSERT INTO pp_text_time VALUES (1, 1, 'yesterday');
CALL train('bad', 'pp_text_time', method => 'popular', options => '{"time_col": "at", "half_life": "1 day"}');
CALL train('bad', 'pp_events', value_col => 'clicks', method => 'als',
           options => '{"time_col": "at", "half_life": "1 day"}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"max_value": -1}');
CALL train('bad', 'pp_events', method => 'popular', options => '{"min_user_interactions": 0}');
CALL train('bad', 'pp_core', method => 'popular', options => '{"min_user_interactions": 100}');
SELECT count(*) AS bad_models FROM recsys.models WHERE name = 'bad';

SELECT name, drop_model(name) FROM recsys.models WHERE name LIKE 'pp\_%' ORDER BY name;
DROP TABLE pp_events, pp_core, pp_tags, pp_text_time;
