-- The batch serving session of the recsys benchmark (test/bench/run).
--
-- A fresh backend: every user's top n at once, with recommend_all(n, model)
-- (blocks of users scored by one matrix product each, on
-- recsys.training_threads threads): one cold statement (it reads the item
-- and user matrices), then batch_runs timed ones; then, when
-- lateral_all_runs > 0, the same through a LATERAL join of recommend(u, n,
-- model) over all the model's users, for comparison.  Each statement is
-- SELECT count(*) FROM ..., timed inside the server.
--
-- psql variables: model, n, batch_runs, lateral_all_runs, and threads
-- (optional: recsys.training_threads).
-- Prints "key|value" lines (psql -At -F'|').

LOAD 'recsys';
\if :{?threads}
SET recsys.training_threads = :threads;
\endif
SELECT 'threads_setting', current_setting('recsys.training_threads');

SELECT 'all_users', count(*)
FROM recsys.user_factors uf JOIN recsys.models m USING (model_id)
WHERE m.name = :'model';

SELECT format('SELECT count(*) FROM recommend_all(%s, %L)', :n, :'model') AS batch_sql \gset
SELECT format('SELECT count(*) FROM recsys.user_factors uf '
              'JOIN recsys.models m USING (model_id) '
              'CROSS JOIN LATERAL recommend(uf.user_id, %s, m.name) '
              'WHERE m.name = %L', :n, :'model') AS lateral_sql \gset

SELECT 'batch_cold_ms', round(ms::numeric, 1)
FROM bench.statement_ms(:'batch_sql', 1);

SELECT k, v
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
             string_agg(round(ms::numeric, 1)::text, ' ' ORDER BY run) AS all_ms,
             min(rows_returned) AS min_rows
      FROM bench.statement_ms(:'batch_sql', :batch_runs)) s,
LATERAL (VALUES
    ('batch_ms', round(median_ms::numeric, 1)::text),
    ('batch_runs_ms', all_ms),
    ('batch_rows', min_rows::text)
) AS kv(k, v);

SELECT k, v
FROM (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS median_ms,
             string_agg(round(ms::numeric, 1)::text, ' ' ORDER BY run) AS all_ms,
             min(rows_returned) AS min_rows
      FROM bench.statement_ms(:'lateral_sql', :lateral_all_runs)) s,
LATERAL (VALUES
    ('lateral_all_ms', round(median_ms::numeric, 1)::text),
    ('lateral_all_runs_ms', all_ms),
    ('lateral_all_rows', min_rows::text)
) AS kv(k, v)
WHERE median_ms IS NOT NULL;
