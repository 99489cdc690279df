-- The serving session of the recsys benchmark (test/bench/run).
--
-- A fresh backend: loading the library is timed, then the first recommend()
-- call, which loads the model's item matrix into the backend's cache (the
-- cold call); then every sampled user is asked once, each call timed inside
-- the server; then the same users are asked in one LATERAL statement, a few
-- times.
--
-- psql variables: model, sample (how many users), n (items per call),
-- lateral_runs.
-- Prints "key|value" lines (psql -At -F'|').

SELECT bench.sample_users(:'model', :sample) AS users \gset

SELECT 'users_sampled', cardinality(:'users'::bigint[]);
-- The model's user ids (the generator's are 1..U), for pgbench's random user
SELECT k, v
FROM (SELECT min(uf.user_id) AS lo, max(uf.user_id) AS hi
      FROM recsys.user_factors uf JOIN recsys.models m USING (model_id)
      WHERE m.name = :'model') s,
LATERAL (VALUES ('user_id_min', lo), ('user_id_max', hi)) AS kv(k, v);

-- Loading recsys.so (and with it OpenBLAS) into the backend, which a new
-- backend's first call pays too; timed from the client, round trip included.
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
LOAD 'recsys';
SELECT 'library_load_ms',
       round((extract(epoch FROM clock_timestamp()) - :t0) * 1000, 3);
-- Compile the timing function without calling recommend().
SELECT count(*) AS ignored FROM bench.recommend_latency('{}', :n, :'model') \gset

-- Cold: the first call reads the item matrix into the backend's cache.
SELECT 'cold_call_ms', round(max_ms::numeric, 3)
FROM bench.recommend_latency((:'users'::bigint[])[1:1], :n, :'model');

-- Warm: one call per user.
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

-- All users in one statement.
SELECT k, v
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
             string_agg(round(ms::numeric, 1)::text, ' ' ORDER BY run) AS all_ms,
             min(rows_returned) AS min_rows
      FROM bench.lateral_ms(:'users'::bigint[], :n, :'model', :lateral_runs)) s,
LATERAL (VALUES
    ('lateral_total_ms', round(median_ms::numeric, 2)::text),
    ('lateral_runs_ms', all_ms),
    ('lateral_rows', min_rows::text),
    ('lateral_mean_ms_per_call',
     round((median_ms / cardinality(:'users'::bigint[]))::numeric, 4)::text)
) AS kv(k, v);

SELECT 'serve_rss_kb', bench.proc_status_kb('VmRSS');
