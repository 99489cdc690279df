--
-- Access: a model belongs to the role that first trained it.  Its owner
-- (and members of the owner role) can serve it, retrain it, grant it and
-- drop it; other roles see it only through grant_model().  The storage
-- tables are open to everyone (PUBLIC) at the table level and closed at
-- the row level by the policies below, the way pg_class is readable but
-- each table has its own ACL.  Superusers and the extension's owner bypass
-- row-level security, as they do everywhere.
--
-- Nothing here is SECURITY DEFINER: every check runs as the calling role.
--
CREATE TABLE recsys.model_grants (
    model_id          bigint NOT NULL,
    grantee           regrole,              -- NULL: PUBLIC
    privilege         text NOT NULL CHECK (privilege IN ('serve', 'train')),
    granted_by        regrole NOT NULL DEFAULT pg_catalog.to_regrole(CURRENT_USER),
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
ALTER TABLE recsys.model_grants ENABLE ROW LEVEL SECURITY;

-- The models policy reads model_grants directly (not model_privilege,
-- which reads models: that would recurse).
CREATE POLICY models_serve ON recsys.models FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'MEMBER') OR EXISTS (
        SELECT 1 FROM recsys.model_grants g
        WHERE g.model_id OPERATOR(pg_catalog.=) models.model_id
          AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))));
CREATE POLICY models_create ON recsys.models FOR INSERT
    WITH CHECK (pg_catalog.pg_has_role(owner, 'MEMBER'));
CREATE POLICY models_retrain ON recsys.models FOR UPDATE
    USING (pg_catalog.pg_has_role(owner, 'MEMBER') OR EXISTS (
        SELECT 1 FROM recsys.model_grants g
        WHERE g.model_id OPERATOR(pg_catalog.=) models.model_id
          AND g.privilege OPERATOR(pg_catalog.=) 'train'
          AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))));
CREATE POLICY models_drop ON recsys.models FOR DELETE
    USING (pg_catalog.pg_has_role(owner, 'MEMBER'));

CREATE POLICY training_log_serve ON recsys.training_log FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY training_log_train ON recsys.training_log FOR ALL
    USING (recsys.model_privilege(model_id, 'train'))
    WITH CHECK (recsys.model_privilege(model_id, 'train'));
CREATE POLICY user_factors_serve ON recsys.user_factors FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY user_factors_train ON recsys.user_factors FOR ALL
    USING (recsys.model_privilege(model_id, 'train'))
    WITH CHECK (recsys.model_privilege(model_id, 'train'));
CREATE POLICY item_factors_serve ON recsys.item_factors FOR SELECT
    USING (recsys.model_privilege(model_id, 'serve'));
CREATE POLICY item_factors_train ON recsys.item_factors FOR ALL
    USING (recsys.model_privilege(model_id, 'train'))
    WITH CHECK (recsys.model_privilege(model_id, 'train'));

-- Grants are public knowledge, like the ACLs in pg_class; only a model's
-- owner adds or removes them.
CREATE POLICY model_grants_read ON recsys.model_grants FOR SELECT USING (true);
CREATE POLICY model_grants_owner_add ON recsys.model_grants FOR INSERT
    WITH CHECK (recsys.model_privilege(model_id, 'owner'));
CREATE POLICY model_grants_owner_remove ON recsys.model_grants FOR DELETE
    USING (recsys.model_privilege(model_id, 'owner'));

GRANT USAGE ON SCHEMA recsys TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys.models, recsys.training_log,
    recsys.user_factors, recsys.item_factors TO PUBLIC;
GRANT SELECT, INSERT, DELETE ON recsys.model_grants TO PUBLIC;
GRANT USAGE ON SEQUENCE recsys.model_id_seq, recsys.version_seq TO PUBLIC;

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
    INSERT INTO recsys.model_grants (model_id, grantee, privilege)
    VALUES (id, grantee, privilege) ON CONFLICT DO NOTHING;
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
    n bigint;
BEGIN
    SELECT m.model_id INTO id FROM recsys.models m WHERE m.name = model;
    IF id IS NULL THEN
        RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT recsys.model_privilege(id, 'owner') THEN
        RAISE EXCEPTION 'must be owner of model "%" to revoke it', model
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM recsys.model_grants g
    WHERE g.model_id = id AND g.grantee IS NOT DISTINCT FROM revoke_model.grantee
      AND g.privilege = revoke_model.privilege;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n > 0;
END
$$;
COMMENT ON FUNCTION @extschema@.revoke_model(text, regrole, text)
    IS 'take back a privilege granted with grant_model; returns whether it was granted';
