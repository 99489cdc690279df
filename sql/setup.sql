-- Install the extension and the small, hand-checkable fixture that the
-- other regression tests share.
CREATE EXTENSION recsys;

SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname = 'recsys';

-- The user-facing functions land in the extension's schema (public here),
-- the internals (support functions of the aggregates, helpers, types) and
-- the storage tables in schema recsys.
SELECT p.oid::regprocedure AS function, p.prokind
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')
ORDER BY p.oid::regprocedure::text COLLATE "C";

SELECT t.oid::regtype AS type, t.typtype
FROM pg_type t JOIN pg_depend d ON d.objid = t.oid AND d.classid = 'pg_type'::regclass
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'recsys')
ORDER BY t.oid::regtype::text COLLATE "C";

SELECT c.oid::regclass AS relation, c.relkind
FROM pg_class c WHERE c.relnamespace = 'recsys'::regnamespace AND c.relkind IN ('r', 'S')
ORDER BY c.relname COLLATE "C";

-- Every configuration table is dumped by pg_dump.
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'recsys';

-- Two groups of users with opposite tastes: users 1-4 like items 1-3 and
-- dislike 4-6, users 5-8 the reverse.  Each user rated four items.
CREATE TABLE ratings (user_id int, item_id int, rating real);
INSERT INTO ratings VALUES
    (1, 1, 5), (1, 2, 5), (1, 4, 1), (1, 5, 1),
    (2, 1, 5), (2, 3, 4), (2, 4, 2), (2, 6, 1),
    (3, 2, 4), (3, 3, 5), (3, 5, 1), (3, 6, 2),
    (4, 1, 4), (4, 2, 5), (4, 3, 5), (4, 4, 1),
    (5, 4, 5), (5, 5, 5), (5, 1, 1), (5, 2, 1),
    (6, 4, 4), (6, 6, 5), (6, 1, 2), (6, 3, 1),
    (7, 5, 4), (7, 6, 5), (7, 2, 1), (7, 3, 2),
    (8, 4, 5), (8, 5, 4), (8, 6, 5), (8, 1, 1);

CREATE TABLE items (item_id int PRIMARY KEY, title text, genre text);
INSERT INTO items VALUES
    (1, 'Alpha', 'drama'), (2, 'Bravo', 'drama'), (3, 'Charlie', 'drama'),
    (4, 'Delta', 'action'), (5, 'Echo', 'action'), (6, 'Foxtrot', 'action');
