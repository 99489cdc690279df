-- The training session of the methods benchmark (test/bench/methods).
--
-- One fresh backend per model: it loads recsys.so first (so that the
-- library's loading is not in the CALL's time), records its memory, runs
-- CALL train(model, source, value_col => 'count', <args>), and reports the
-- CALL's wall and CPU time, the model's catalog row (train_seconds is
-- measured by train() itself, from its start until the model is written),
-- its training log (per-iteration seconds: ials only; item_knn, ease and
-- popular log no iterations), and the stored size of its rows.
--
-- psql variables: model, source (table), args (the rest of train's
-- arguments, inserted as they are, e.g. method => 'item_knn', options =>
-- '{"weighting": "bm25"}'), clk_tck, and optionally threads (SET as
-- recsys.training_threads; without it, the extension's default).
-- Environment: BENCH_WORK (the benchmark's temp dir; the backend pid and a
-- "done" marker go there for the memory sampler).  Prints "key|value" lines
-- (psql -At -F'|').

SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_BACKEND_PID :pid
\! echo "$BENCH_BACKEND_PID" > "$BENCH_WORK/train.pid"

LOAD 'recsys';
\if :{?threads}
SET recsys.training_threads = :threads;
\endif

SELECT 'vmhwm_before_kb', bench.proc_status_kb('VmHWM');
SELECT 'rss_anon_before_kb', bench.proc_status_kb('RssAnon');

SELECT bench.cpu_seconds(:clk_tck) AS cpu0 \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
CALL train(:'model', :'source', value_col => 'count', :args);
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
SELECT bench.cpu_seconds(:clk_tck) AS cpu1 \gset
\! touch "$BENCH_WORK/train.done"

SELECT 'vmhwm_after_kb', bench.proc_status_kb('VmHWM');
SELECT 'rss_anon_after_kb', bench.proc_status_kb('RssAnon');
SELECT 'rss_shmem_after_kb', bench.proc_status_kb('RssShmem');
SELECT 'blas_mapped', bench.blas_libraries();
SELECT 'training_threads_setting', current_setting('recsys.training_threads', true);
SELECT 'max_parallel_maintenance_workers', current_setting('max_parallel_maintenance_workers');

SELECT 'train_wall_s', round(:t1 - :t0, 3);
SELECT 'train_cpu_s', round((:cpu1 - :cpu0)::numeric, 3);

-- The model and its training log (no rows for methods without iterations)
SELECT k, v
FROM (SELECT m.model_id, m.method, m.params, m.factors, m.num_users, m.num_items,
             m.num_interactions, m.train_seconds, m.final_loss,
             count(l.iteration) AS n_iter,
             sum(l.seconds) AS iter_sum,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY l.seconds) AS iter_median,
             min(l.seconds) AS iter_min,
             max(l.seconds) AS iter_max,
             string_agg(round(l.seconds::numeric, 3)::text, ' '
                        ORDER BY l.iteration) AS iter_all
      FROM recsys.models m
      LEFT JOIN recsys.training_log l USING (model_id, version)
      WHERE m.name = :'model'
      GROUP BY m.model_id) s,
LATERAL (VALUES
    ('model_id', model_id::text),
    ('method', method),
    ('params', params::text),
    ('factors', factors::text),
    ('num_users', num_users::text),
    ('num_items', num_items::text),
    ('num_interactions', num_interactions::text),
    ('final_loss', round(final_loss::numeric, 6)::text),
    ('train_seconds', round(train_seconds::numeric, 3)::text),
    ('write_s', round((:t1 - :t0) - train_seconds::numeric, 3)::text),
    ('iterations_logged', n_iter::text),
    ('iter_sum_s', round(iter_sum::numeric, 3)::text),
    ('iter_median_s', round(iter_median::numeric, 4)::text),
    ('iter_min_s', round(iter_min::numeric, 4)::text),
    ('iter_max_s', round(iter_max::numeric, 4)::text),
    ('iter_all_s', iter_all),
    -- ials: reading the source (and setting up) before iteration 1
    ('ials_read_s', CASE WHEN n_iter > 0
                         THEN round((train_seconds - iter_sum)::numeric, 3)::text END)
) AS kv(k, v);

-- The stored model: its rows in each table and their size (pg_column_size
-- of the whole row: the tuple with its values as stored, out-of-line values
-- included, uncompressed when stored so)
SELECT model_id AS mid FROM recsys.models WHERE name = :'model' \gset
SELECT k, v
FROM (SELECT 'user_factors' AS t, count(*) AS n, coalesce(sum(pg_column_size(x.*)), 0) AS b
      FROM recsys.user_factors x WHERE x.model_id = :mid
      UNION ALL
      SELECT 'item_factors', count(*), coalesce(sum(pg_column_size(x.*)), 0)
      FROM recsys.item_factors x WHERE x.model_id = :mid
      UNION ALL
      SELECT 'item_neighbors', count(*), coalesce(sum(pg_column_size(x.*)), 0)
      FROM recsys.item_neighbors x WHERE x.model_id = :mid) s,
LATERAL (VALUES ('stored_rows_' || t, n::text), ('stored_bytes_' || t, b::text)) AS kv(k, v);
SELECT 'neighbors_stored',
       coalesce(sum(cardinality(x.neighbors)), 0)
FROM recsys.item_neighbors x WHERE x.model_id = :mid;
