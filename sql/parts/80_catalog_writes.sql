--
-- Catalog writes.  Only recsys writes its tables (15_access.sql); these
-- are the writes its PL/pgSQL code may ask for, each bound to one entry of
-- the table in src/catalog_write.c that says who may make it (checked as
-- the caller) and what it does (run as the extension's owner).  The
-- caller's role is taken from the session, never from an argument, so a
-- direct call does no more than the documented functions allow.
--

-- The variant a user is assigned to in a running experiment the current
-- role can see; NULL if it has ended (or is not visible).
CREATE FUNCTION recsys.assigned_variant(experiment_id bigint, user_id bigint)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (array_agg(v.variant ORDER BY v.position))
           [recsys.assign_variant(e.salt, $2, array_agg(v.weight ORDER BY v.position))]
    FROM recsys.experiments e JOIN recsys.experiment_variants v USING (experiment_id)
    WHERE e.experiment_id = $1 AND e.status = 'running'
    GROUP BY e.experiment_id, e.salt
$$;
COMMENT ON FUNCTION recsys.assigned_variant(bigint, bigint)
    IS 'the variant a user is assigned to in a running experiment (NULL once ended, or if not visible)';

CREATE FUNCTION recsys.write_model_grant(model_id bigint, grantee regrole, privilege text)
RETURNS void AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_model_grant(bigint, regrole, text)
    IS 'catalog write of grant_model(): the model''s owner grants; granted_by is the caller';

CREATE FUNCTION recsys.write_model_revoke(model_id bigint, grantee regrole, privilege text)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_model_revoke(bigint, regrole, text)
    IS 'catalog write of revoke_model(): the model''s owner revokes; whether a grant was removed';

CREATE FUNCTION recsys.write_experiment_create(name text, salt text, control text)
RETURNS bigint AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_create(text, text, text)
    IS 'catalog write of create_experiment(): a new experiment owned by the caller; its id';

CREATE FUNCTION recsys.write_experiment_variants(
    experiment_id bigint, variants text[], models text[], weights integer[], options jsonb[])
RETURNS void AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_variants(bigint, text[], text[], integer[], jsonb[])
    IS 'catalog write of create_experiment(): the variants, in order, of an experiment the caller owns';

CREATE FUNCTION recsys.write_experiment_end(experiment_id bigint, winner text)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_end(bigint, text)
    IS 'catalog write of end_experiment(): the owner ends a running experiment; whether it was running';

CREATE FUNCTION recsys.write_experiment_drop(experiment_id bigint)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_drop(bigint)
    IS 'catalog write of drop_experiment(): the owner deletes an experiment with its logs; whether it existed';

CREATE FUNCTION recsys.write_experiment_grant(experiment_id bigint, grantee regrole)
RETURNS void AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_grant(bigint, regrole)
    IS 'catalog write of grant_experiment(): the owner grants; granted_by is the caller';

CREATE FUNCTION recsys.write_experiment_revoke(experiment_id bigint, grantee regrole)
RETURNS boolean AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_revoke(bigint, regrole)
    IS 'catalog write of revoke_experiment(): the owner revokes; whether a grant was removed';

CREATE FUNCTION recsys.write_experiment_exposure(
    experiment_id bigint, variant text, user_id bigint, items bigint[], model_version bigint)
RETURNS bigint AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_exposure(bigint, text, bigint, bigint[], bigint)
    IS 'catalog write of log_exposure() and recommend_experiment(): a role that may serve through a running experiment logs a list shown to a user, under the user''s variant; the exposure id';

CREATE FUNCTION recsys.write_experiment_outcome(
    experiment_id bigint, variant text, user_id bigint, item_id bigint, kind text,
    value double precision, exposure_id bigint)
RETURNS bigint AS 'MODULE_PATHNAME', 'recsys_catalog_write' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.write_experiment_outcome(bigint, text, bigint, bigint, text, double precision, bigint)
    IS 'catalog write of log_outcome(): a role that may serve through a running experiment logs a user''s outcome, under the user''s variant and one of the user''s exposures; the outcome id';

-- Ids and versions come from sequences only recsys advances (written out
-- so that an upgraded database has the same ACLs as a fresh one).
REVOKE ALL ON ALL SEQUENCES IN SCHEMA recsys FROM PUBLIC;
