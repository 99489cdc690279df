--
-- The shared cache (src/shared_cache.c): with recsys in
-- shared_preload_libraries, item factors are kept once in shared memory
-- for all backends.  What it holds spans every database, so reading it is
-- for monitoring roles (pg_read_all_stats), like pg_stat_activity's
-- details of other sessions.
--
CREATE FUNCTION recsys.shared_cache(
    OUT database oid, OUT model_id bigint, OUT version bigint, OUT bytes bigint,
    OUT pins integer, OUT state text, OUT stale boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'recsys_shared_cache'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.shared_cache()
    IS 'one row per model version in the shared cache: its database, size, the backends using it (pins), ready or loading, stale (a newer version is published); no rows without the shared cache';

CREATE FUNCTION recsys.shared_cache_stats(
    OUT capacity bigint, OUT used bigint, OUT entries integer, OUT hits bigint,
    OUT publishes bigint, OUT evictions bigint, OUT no_room bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'recsys_shared_cache_stats'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.shared_cache_stats()
    IS 'the shared cache''s size (recsys.shared_cache_size) and use, and since server start: backends served from it (hits), versions published, unpinned versions evicted for room, and loads that found no room (kept in the backend); NULL without the shared cache';

REVOKE EXECUTE ON FUNCTION recsys.shared_cache(), recsys.shared_cache_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION recsys.shared_cache(), recsys.shared_cache_stats() TO pg_read_all_stats;
