--
-- Access: a model belongs to the role that first trained it.  Its owner
-- (and members of the owner role) can serve it, retrain it, grant it and
-- drop it; other roles see it only through grant_model().
--
-- Reading: the storage tables are readable by everyone (PUBLIC) at the
-- table level and closed at the row level by the policies below, the way
-- pg_class is readable but each table has its own ACL.  Superusers and the
-- extension's owner bypass row-level security, as they do everywhere.
--
-- Writing: only recsys writes its tables.  No other role holds INSERT,
-- UPDATE, DELETE or TRUNCATE on them or USAGE on their sequences; recsys's
-- C code checks the caller's rights and then performs each write as the
-- extension's owner (src/catalog_write.c explains why).  PL/pgSQL code
-- writes through the recsys.write_* gates (80_catalog_writes.sql).
--
-- Nothing here is SECURITY DEFINER: every check runs as the calling role.
--
CREATE TABLE recsys.model_grants (
    model_id          bigint NOT NULL,
    grantee           regrole,              -- NULL: PUBLIC
    privilege         text NOT NULL CHECK (privilege IN ('serve', 'train')),
    granted_by        regrole NOT NULL,
    UNIQUE NULLS NOT DISTINCT (model_id, grantee, privilege)
);
COMMENT ON TABLE recsys.model_grants IS 'who may serve (recommend, predict, ...) or train (retrain, refresh, forget) a model besides its owner';
SELECT pg_catalog.pg_extension_config_dump('recsys.model_grants', '');

-- Whether the current role may use model_id with the privilege ('serve',
-- 'train' or 'owner'); reads recsys.models under its own policy.
CREATE FUNCTION recsys.model_privilege(model_id bigint, privilege text)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) $1
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER')
               OR ($2 OPERATOR(pg_catalog.<>) 'owner' AND EXISTS (
                   SELECT 1 FROM recsys.model_grants g
                   WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                     AND (g.privilege OPERATOR(pg_catalog.=) 'train'
                          OR g.privilege OPERATOR(pg_catalog.=) $2)
                     AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))))
$$;
COMMENT ON FUNCTION recsys.model_privilege(bigint, text)
    IS 'whether the current role owns the model or holds the privilege (serve, train) on it';

ALTER TABLE recsys.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.training_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.user_factors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.item_factors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.item_neighbors ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.model_features ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.entity_features ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.id_map ENABLE ROW LEVEL SECURITY;
ALTER TABLE recsys.model_grants ENABLE ROW LEVEL SECURITY;

-- The models policy reads model_grants directly (not model_privilege,
-- which reads models: that would recurse).
CREATE POLICY models_serve ON recsys.models FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'MEMBER') OR EXISTS (
        SELECT 1 FROM recsys.model_grants g
        WHERE g.model_id OPERATOR(pg_catalog.=) models.model_id
          AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))));

-- The other tables' rows are visible with the 'serve' privilege on their
-- model: what recsys.model_privilege(model_id, 'serve') says, written out
-- because a policy's expression is planned into the statement's (cached)
-- plan, while a call of the SQL function is parsed and planned again in
-- every statement (it has a SET clause and a subquery, so the planner
-- cannot inline it): that made each recommend() of a role without
-- BYPASSRLS ten times slower than a superuser's.
CREATE POLICY training_log_serve ON recsys.training_log FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) training_log.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY user_factors_serve ON recsys.user_factors FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) user_factors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY item_factors_serve ON recsys.item_factors FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) item_factors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY item_neighbors_serve ON recsys.item_neighbors FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) item_neighbors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY model_features_serve ON recsys.model_features FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) model_features.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY entity_features_serve ON recsys.entity_features FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) entity_features.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
CREATE POLICY id_map_serve ON recsys.id_map FOR SELECT
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) id_map.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));

-- Grants are public knowledge, like the ACLs in pg_class.
CREATE POLICY model_grants_read ON recsys.model_grants FOR SELECT USING (true);

GRANT USAGE ON SCHEMA recsys TO PUBLIC;
GRANT SELECT ON recsys.models, recsys.training_log, recsys.user_factors,
    recsys.item_factors, recsys.item_neighbors, recsys.model_features,
    recsys.entity_features, recsys.id_map, recsys.model_grants TO PUBLIC;

-- Let another role (NULL: every role) serve or also train a model
CREATE FUNCTION @extschema@.grant_model(model text, grantee regrole, privilege text DEFAULT 'serve')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    IF privilege IS NULL OR privilege NOT IN ('serve', 'train') THEN
        RAISE EXCEPTION 'unknown model privilege "%"', privilege
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Model privileges are serve (recommend, predict, ...) and train (retrain, refresh_user, forget_user).';
    END IF;
    SELECT m.model_id INTO id FROM recsys.models m WHERE m.name = model;
    IF id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT recsys.model_privilege(id, 'owner') THEN
        RAISE EXCEPTION 'must be owner of model "%" to grant it', model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM recsys.write_model_grant(id, grantee, privilege);
END
$$;
COMMENT ON FUNCTION @extschema@.grant_model(text, regrole, text)
    IS 'let a role (NULL: PUBLIC) serve a model, or also train it';

-- Take back what grant_model gave
CREATE FUNCTION @extschema@.revoke_model(model text, grantee regrole, privilege text DEFAULT 'serve')
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    SELECT m.model_id INTO id FROM recsys.models m WHERE m.name = model;
    IF id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT recsys.model_privilege(id, 'owner') THEN
        RAISE EXCEPTION 'must be owner of model "%" to revoke it', model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN recsys.write_model_revoke(id, grantee, privilege);
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_model(text, regrole, text)
    IS 'take back a privilege granted with grant_model; returns whether it was granted';
