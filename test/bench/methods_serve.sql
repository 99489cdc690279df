-- The serving session of the methods benchmark (test/bench/methods).
--
-- A fresh backend per model: LOAD 'recsys' (timed from the client), the
-- first recommend() call (cold: it reads the model into the backend's
-- cache: the item factors, or the neighbour lists, or the item scores),
-- then recommend(u, n, model) once for each sampled user, each call timed
-- with clock_timestamp() inside the server; then fold-in:
-- recommend_for_items(items, n, model) for fixed pseudo-random sets of
-- foldin_size of the model's items, after one warm-up call (reported as the
-- first call: for ials it computes the item Gram matrix).
--
-- psql variables: model, sample (how many users), n (items per call),
-- foldin_size, foldin_calls.
-- Prints "key|value" lines (psql -At -F'|').

SELECT bench.sample_users(:'model', :sample) AS users \gset
SELECT 'users_sampled', cardinality(:'users'::bigint[]);

SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
LOAD 'recsys';
SELECT 'library_load_ms',
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1000, 3);
-- Compile the timing functions without calling recommend*().
SELECT count(*) AS ignored FROM bench.recommend_latency('{}', :n, :'model') \gset
SELECT count(*) AS ignored FROM bench.foldin_latency(:'model', :n, 1, 0, false) \gset

-- Cold: the first call reads the model into the backend's cache.
SELECT 'cold_call_ms', round(max_ms::numeric, 3)
FROM bench.recommend_latency((:'users'::bigint[])[1:1], :n, :'model');

-- Warm: one call per sampled user.
SELECT k, v
FROM bench.recommend_latency(:'users'::bigint[], :n, :'model') r,
LATERAL (VALUES
    ('latency_calls', r.calls::text),
    ('latency_rows', r.rows_returned::text),
    ('latency_p50_ms', round(r.p50_ms::numeric, 4)::text),
    ('latency_p90_ms', round(r.p90_ms::numeric, 4)::text),
    ('latency_p99_ms', round(r.p99_ms::numeric, 4)::text),
    ('latency_mean_ms', round(r.mean_ms::numeric, 4)::text),
    ('latency_max_ms', round(r.max_ms::numeric, 4)::text)
) AS kv(k, v);

-- Fold-in: the first call, then one per fixed set.
SELECT 'foldin_cold_call_ms', round(max_ms::numeric, 3)
FROM bench.foldin_latency(:'model', :n, :foldin_size, 1, false);
SELECT k, v
FROM bench.foldin_latency(:'model', :n, :foldin_size, :foldin_calls, false) r,
LATERAL (VALUES
    ('foldin_calls', r.calls::text),
    ('foldin_items_per_call', round(r.items_per_call::numeric, 1)::text),
    ('foldin_rows', r.rows_returned::text),
    ('foldin_p50_ms', round(r.p50_ms::numeric, 4)::text),
    ('foldin_p90_ms', round(r.p90_ms::numeric, 4)::text),
    ('foldin_p99_ms', round(r.p99_ms::numeric, 4)::text),
    ('foldin_mean_ms', round(r.mean_ms::numeric, 4)::text),
    ('foldin_max_ms', round(r.max_ms::numeric, 4)::text)
) AS kv(k, v);

SELECT 'serve_rss_anon_kb', bench.proc_status_kb('RssAnon');
