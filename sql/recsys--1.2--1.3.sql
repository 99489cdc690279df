/* recsys--1.2--1.3.sql: upgrade a recsys 1.2 database to 1.3 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.3'" to load this file. \quit

-- Serving as a role without BYPASSRLS: the row-level policies of the
-- storage tables spell out recsys.model_privilege(model_id, 'serve'), so
-- they are planned once into each cached plan instead of running the SQL
-- function (parsed and planned again in every statement) for each row.
ALTER POLICY training_log_serve ON recsys.training_log
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) training_log.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY user_factors_serve ON recsys.user_factors
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) user_factors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY item_factors_serve ON recsys.item_factors
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) item_factors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY item_neighbors_serve ON recsys.item_neighbors
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) item_neighbors.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY model_features_serve ON recsys.model_features
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) model_features.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY entity_features_serve ON recsys.entity_features
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) entity_features.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY id_map_serve ON recsys.id_map
    USING (EXISTS (
        SELECT 1 FROM recsys.models m
        WHERE m.model_id OPERATOR(pg_catalog.=) id_map.model_id
          AND (pg_catalog.pg_has_role(m.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.model_grants g
              WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id
                AND g.privilege OPERATOR(pg_catalog.=) ANY ('{serve,train}'::pg_catalog.text[])
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY experiment_variants_serve ON recsys.experiment_variants
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_variants.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY experiment_exposures_read ON recsys.experiment_exposures
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_exposures.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));
ALTER POLICY experiment_outcomes_read ON recsys.experiment_outcomes
    USING (EXISTS (
        SELECT 1 FROM recsys.experiments e
        WHERE e.experiment_id OPERATOR(pg_catalog.=) experiment_outcomes.experiment_id
          AND (pg_catalog.pg_has_role(e.owner, 'MEMBER') OR EXISTS (
              SELECT 1 FROM recsys.experiment_grants g
              WHERE g.experiment_id OPERATOR(pg_catalog.=) e.experiment_id
                AND (g.grantee IS NULL OR pg_catalog.pg_has_role(g.grantee, 'MEMBER'))))));

-- Distributed training with solver subspace (iALS++): the shards' users'
-- Gram matrix in double, and one block of the item half-step per call.
CREATE FUNCTION recsys.shard_gram()
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_shard_gram'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_gram()
    IS 'internal (distributed training): the Gram matrix of this shard''s users, in double';

CREATE FUNCTION recsys.shard_item_subspace(first integer, whitened boolean, basis bytea, deltas bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_shard_item_subspace'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION recsys.shard_item_subspace(integer, boolean, bytea, bytea)
    IS 'internal (distributed training): one block of the subspace (iALS++) item half-step over this shard''s users';
