-- Helpers of the recsys benchmark (test/bench/run), created in a schema
-- "bench" of the benchmark's throwaway server.  Nothing here is part of the
-- extension.

CREATE SCHEMA bench;

-- A "Name:   123 kB" field of this backend's /proc/self/status, in kB:
-- VmHWM (peak resident set since the backend started), VmRSS (resident
-- now), RssAnon (private memory), RssShmem (shared buffers touched), ...
CREATE FUNCTION bench.proc_status_kb(field text) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT substring(pg_read_file('/proc/self/status')
                     FROM '(?n)^' || field || ':\s+(\d+) kB')::bigint
$$;

-- The BLAS/LAPACK shared objects this backend has mapped, i.e. the ones
-- recsys.so really uses (after Debian's alternatives are resolved).
CREATE FUNCTION bench.blas_libraries() RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(string_agg(DISTINCT m[1], ', '), '')
    FROM regexp_matches(pg_read_file('/proc/self/maps'),
                        '(/\S*(?:blas|lapack)\S*)', 'g') AS m
$$;

-- The benchmark's users: `how_many` user ids the model knows, in a fixed
-- pseudo-random order (by hashint8 of the id), so every run and every
-- machine asks for the same users; when the model has fewer users, the
-- order repeats (the 1M shape has 6,040 users for 10,000 calls).
CREATE FUNCTION bench.sample_users(model text, how_many int) RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    WITH users AS (
        SELECT uf.user_id, hashint8(uf.user_id) AS h
        FROM recsys.user_factors uf
        JOIN recsys.models m USING (model_id)
        WHERE m.name = model)
    SELECT (array_agg(user_id ORDER BY rep, h, user_id))[1:how_many]
    FROM users,
         generate_series(1, 1 + how_many / greatest((SELECT count(*) FROM users), 1)::int) rep
$$;

-- Latency of recommend(u, n, model), one call per user, each timed with
-- clock_timestamp() inside the server (so no client round trip is
-- included, but the executor's per-statement overhead is).
CREATE FUNCTION bench.recommend_latency(users bigint[], n int, model text)
RETURNS TABLE (calls int, rows_returned bigint, p50_ms float8, p90_ms float8,
               p99_ms float8, mean_ms float8, max_ms float8)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    u       bigint;
    c       bigint;
    t0      timestamptz;
    ms      float8[] := '{}';
    total   bigint := 0;
BEGIN
    FOREACH u IN ARRAY users LOOP
        t0 := clock_timestamp();
        SELECT count(*) INTO c FROM recommend(u, n, model);
        ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
        total := total + c;
    END LOOP;
    RETURN QUERY
        SELECT cardinality(ms), total,
               percentile_cont(0.50) WITHIN GROUP (ORDER BY x),
               percentile_cont(0.90) WITHIN GROUP (ORDER BY x),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY x),
               avg(x), max(x)
        FROM unnest(ms) AS x;
END
$$;

-- Milliseconds of one statement that asks recommend(u, n, model) for all
-- users at once through a LATERAL join, run `runs` times; one row per run.
CREATE FUNCTION bench.lateral_ms(users bigint[], n int, model text, runs int)
RETURNS TABLE (run int, ms float8, rows_returned bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR i IN 1 .. runs LOOP
        run := i;
        t0 := clock_timestamp();
        SELECT count(*) INTO rows_returned
        FROM unnest(users) AS u CROSS JOIN LATERAL recommend(u, n, model);
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        RETURN NEXT;
    END LOOP;
END
$$;

-- CPU seconds (user + system) this backend has used so far, from
-- /proc/self/stat; clk_tck is the kernel's clock ticks per second
-- (getconf CLK_TCK).  Compared with wall time it shows whether the backend
-- had to wait for a CPU (e.g. other load on the machine).
CREATE FUNCTION bench.cpu_seconds(clk_tck int) RETURNS float8
LANGUAGE sql VOLATILE AS $$
    SELECT (f[12]::bigint + f[13]::bigint)::float8 / clk_tck
    FROM (SELECT string_to_array(
                     substring(pg_read_file('/proc/self/stat') FROM '\) (.*)$'),
                     ' ') AS f) s
$$;

-- `sets` fixed pseudo-random sets of `set_size` distinct items of the
-- model (all its items when it has fewer), as a 2-D array with one set per
-- row: set s holds the items with the smallest hashint8extended(item_id, s),
-- so every run and every machine asks for the same sets.  NULL when sets is
-- 0.
CREATE FUNCTION bench.item_sets(model text, set_size int, sets int)
RETURNS bigint[]
LANGUAGE sql STABLE AS $$
    WITH catalog AS MATERIALIZED (
        SELECT i.item_id
        FROM recsys.item_factors i
        JOIN recsys.models m USING (model_id)
        WHERE m.name = model)
    SELECT array_agg(x.items ORDER BY s)
    FROM generate_series(1, sets) AS s,
    LATERAL (SELECT array_agg(item_id ORDER BY h, item_id) AS items
             FROM (SELECT item_id, hashint8extended(item_id, s) AS h
                   FROM catalog
                   ORDER BY h, item_id
                   LIMIT set_size) t) x
$$;

-- Latency of the fold-in recommend_for_items(items, n, model [, values]),
-- one call per set of bench.item_sets(model, set_size, sets), each timed
-- with clock_timestamp() inside the server (the sets, and the values, are
-- made before any call is timed).  with_values: pass "values", pseudo-random
-- ratings 1..5 (required for an explicit model); otherwise NULL (implicit:
-- every item counts once).
CREATE FUNCTION bench.foldin_latency(model text, n int, set_size int, sets int,
                                     with_values boolean)
RETURNS TABLE (calls int, items_per_call float8, rows_returned bigint,
               p50_ms float8, p90_ms float8, p99_ms float8, mean_ms float8,
               max_ms float8)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    all_sets  bigint[] := bench.item_sets(model, set_size, sets);
    items     bigint[];
    vals      float8[];
    c         bigint;
    t0        timestamptz;
    ms        float8[] := '{}';
    given     bigint := 0;
    total     bigint := 0;
BEGIN
    IF all_sets IS NOT NULL THEN
        FOREACH items SLICE 1 IN ARRAY all_sets LOOP
            IF with_values THEN
                SELECT array_agg((1 + ((hashint8extended(x, -1) % 5) + 5) % 5)::float8
                                 ORDER BY o)
                INTO vals
                FROM unnest(items) WITH ORDINALITY AS u(x, o);
            END IF;
            t0 := clock_timestamp();
            SELECT count(*) INTO c FROM recommend_for_items(items, n, model, vals);
            ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::float8;
            total := total + c;
            given := given + cardinality(items);
        END LOOP;
    END IF;
    RETURN QUERY
        SELECT cardinality(ms), given::float8 / nullif(cardinality(ms), 0), total,
               percentile_cont(0.50) WITHIN GROUP (ORDER BY x),
               percentile_cont(0.90) WITHIN GROUP (ORDER BY x),
               percentile_cont(0.99) WITHIN GROUP (ORDER BY x),
               avg(x), max(x)
        FROM unnest(ms) AS x;
END
$$;

-- Milliseconds of a statement `sql` that returns one bigint (e.g.
-- SELECT count(*) FROM ...), run `runs` times; one row per run with the
-- value it returned.
CREATE FUNCTION bench.statement_ms(sql text, runs int)
RETURNS TABLE (run int, ms float8, rows_returned bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR i IN 1 .. runs LOOP
        run := i;
        t0 := clock_timestamp();
        EXECUTE sql INTO rows_returned;
        ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        RETURN NEXT;
    END LOOP;
END
$$;
