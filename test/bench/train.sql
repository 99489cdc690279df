-- The training session of the recsys benchmark (test/bench/run).
--
-- One backend: it records its own memory, runs CALL train(...), and reads
-- its memory again, from /proc/self/status.  VmHWM is the peak resident set
-- of the process since it started, so "after" minus "before" is what
-- training added at its peak (including the shared buffers it touched,
-- shown separately as RssShmem).
--
-- psql variables: model, source (table), value_col, ials (true: method =>
-- 'ials' with solver => :solver; false: explicit ALS, the default method),
-- factors, iterations, clk_tck, and optionally threads (SET as
-- recsys.training_threads; without it, the extension's default).
-- Environment: BENCH_WORK (the benchmark's temp dir; the backend pid and a
-- "done" marker go there for the memory sampler).  Prints "key|value" lines
-- (psql -At -F'|').

SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_BACKEND_PID :pid
\! echo "$BENCH_BACKEND_PID" > "$BENCH_WORK/train.pid"

\if :{?threads}
SET recsys.training_threads = :threads;
\endif

SELECT 'vmhwm_before_kb', bench.proc_status_kb('VmHWM');
SELECT 'rss_before_kb', bench.proc_status_kb('VmRSS');

SELECT bench.cpu_seconds(:clk_tck) AS cpu0 \gset
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
\if :ials
CALL train(:'model', :'source', value_col => :'value_col', method => 'ials',
           factors => :factors, iterations => :iterations, solver => :'solver');
\else
CALL train(:'model', :'source', value_col => :'value_col',
           factors => :factors, iterations => :iterations);
\endif
SELECT extract(epoch FROM clock_timestamp()) AS t1 \gset
SELECT bench.cpu_seconds(:clk_tck) AS cpu1 \gset
\! touch "$BENCH_WORK/train.done"

SELECT 'vmhwm_after_kb', bench.proc_status_kb('VmHWM');
SELECT 'rss_after_kb', bench.proc_status_kb('VmRSS');
SELECT 'rss_anon_after_kb', bench.proc_status_kb('RssAnon');
SELECT 'rss_shmem_after_kb', bench.proc_status_kb('RssShmem');
SELECT 'blas_mapped', bench.blas_libraries();
-- (recsys.so is loaded by now, so its settings are defined)
SELECT 'training_threads_setting', current_setting('recsys.training_threads', true);
SELECT 'max_parallel_maintenance_workers', current_setting('max_parallel_maintenance_workers');

-- Wall time of the CALL, and where it went.  models.train_seconds is
-- measured by train() itself up to (not including) writing the model.
SELECT 'train_wall_s', round(:t1 - :t0, 3);
-- CPU time the backend used during the CALL: well below the wall time
-- means it waited (for a CPU taken by something else, or for I/O).
SELECT 'train_cpu_s', round((:cpu1 - :cpu0)::numeric, 3);
SELECT k, v
FROM (SELECT m.train_seconds, m.num_users, m.num_items, m.num_interactions,
             m.method, m.params,
             m.final_rmse, m.final_loss,
             count(*) AS n_iter,
             sum(l.seconds) AS iter_sum,
             avg(l.seconds) AS iter_mean,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY l.seconds) AS iter_median,
             min(l.seconds) AS iter_min,
             max(l.seconds) AS iter_max,
             string_agg(round(l.seconds::numeric, 3)::text, ' '
                        ORDER BY l.iteration) AS iter_all
      FROM recsys.models m
      JOIN recsys.training_log l USING (model_id, version)
      WHERE m.name = :'model'
      GROUP BY m.model_id) s,
LATERAL (VALUES
    ('num_users', num_users::text),
    ('num_items', num_items::text),
    ('num_interactions', num_interactions::text),
    -- what the FLOP model needs besides the sizes and factors
    ('method', method),
    ('param_solver', params ->> 'solver'),
    ('param_cg_steps', params ->> 'cg_steps'),
    ('final_rmse', round(final_rmse::numeric, 6)::text),
    ('final_loss', round(final_loss::numeric, 6)::text),
    ('iterations_logged', n_iter::text),
    ('iter_median_s', round(iter_median::numeric, 4)::text),
    ('iter_mean_s', round(iter_mean::numeric, 4)::text),
    ('iter_min_s', round(iter_min::numeric, 4)::text),
    ('iter_max_s', round(iter_max::numeric, 4)::text),
    ('iter_sum_s', round(iter_sum::numeric, 3)::text),
    ('iter_all_s', iter_all),
    ('train_seconds_reported', round(train_seconds::numeric, 3)::text),
    -- reading the source into CSR form and setting up, before iteration 1
    ('read_setup_s', round((train_seconds - iter_sum)::numeric, 3)::text),
    -- writing the model rows (and the CALL's own overhead)
    ('write_model_s', round((:t1 - :t0) - train_seconds::numeric, 3)::text),
    ('non_iteration_s', round((:t1 - :t0) - iter_sum::numeric, 3)::text)
) AS kv(k, v);
