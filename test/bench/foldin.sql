-- The fold-in session of the recsys benchmark (test/bench/run).
--
-- A fresh backend: recommend_for_items(items, n, model [, values]) solves
-- one anonymous user's factors from the given items (one exact least-squares
-- solve against the item factors) and scores all items.  One warm-up call
-- (it reads the model's item matrix into the backend's cache, and for an
-- implicit model computes the item Gram matrix), then, for each set size,
-- one call per fixed pseudo-random set of that many of the model's items,
-- each timed inside the server.
--
-- psql variables: model, n (items per call), calls (sets per size), sizes
-- (an int[] literal, e.g. {10,1000}), with_values (true: pass pseudo-random
-- ratings 1..5 as "values", as an explicit model requires; false: none).
-- Prints "key|value" lines (psql -At -F'|').

LOAD 'recsys';
-- Compile the timing function without calling recommend_for_items().
SELECT count(*) AS ignored
FROM bench.foldin_latency(:'model', :n, 1, 0, :with_values) \gset

-- Warm-up (cold): the first call of the backend.
SELECT 'foldin_cold_call_ms', round(max_ms::numeric, 3)
FROM bench.foldin_latency(:'model', :n, 10, 1, :with_values);

-- Warm: one call per set, for each size.
SELECT 'foldin_' || s.size || '_' || kv.k, kv.v
FROM unnest(:'sizes'::int[]) WITH ORDINALITY AS s(size, o)
CROSS JOIN LATERAL bench.foldin_latency(:'model', :n, s.size, :calls, :with_values) r
CROSS JOIN LATERAL (VALUES
    ('calls', r.calls::text),
    ('items_per_call', round(r.items_per_call::numeric, 1)::text),
    ('rows', r.rows_returned::text),
    ('p50_ms', round(r.p50_ms::numeric, 4)::text),
    ('p90_ms', round(r.p90_ms::numeric, 4)::text),
    ('p99_ms', round(r.p99_ms::numeric, 4)::text),
    ('mean_ms', round(r.mean_ms::numeric, 4)::text),
    ('max_ms', round(r.max_ms::numeric, 4)::text)
) AS kv(k, v)
ORDER BY s.o;
