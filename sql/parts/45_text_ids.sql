--
-- The serving functions with the source's own ids, when they are text,
-- varchar or uuid (ids.c): the same C functions, which convert each
-- argument and result by its declared type; on a model keyed by integers
-- they take and return the integers as text.  uuid callers cast
-- (user_id::text).
--
CREATE FUNCTION @extschema@.recommend(
    user_id       text,
    n             integer DEFAULT 10,
    model         text DEFAULT NULL,
    exclude_seen  boolean DEFAULT true,
    candidates    text[] DEFAULT NULL,
    exclude       text[] DEFAULT NULL)
RETURNS TABLE (item_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, integer, text, boolean, text[], text[])
    IS 'top-n items for a user, by the source''s text (or uuid) ids; popular items for users unknown to the model';

CREATE FUNCTION @extschema@.predict(
    user_id  text,
    item_id  text,
    model    text DEFAULT NULL)
RETURNS real
AS 'MODULE_PATHNAME', 'recsys_predict'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.predict(text, text, text)
    IS 'predicted value of an item for a user, by text ids';

CREATE FUNCTION @extschema@.similar_items(
    item_id  text,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, integer, text)
    IS 'the n items most similar to the item, by text ids';

CREATE FUNCTION @extschema@.similar_users(
    user_id  text,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (user_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_users'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, integer, text)
    IS 'the n users most similar to the user, by text ids';

CREATE FUNCTION @extschema@.recommend_for_items(
    items    text[],
    n        integer DEFAULT 10,
    model    text DEFAULT NULL,
    "values" double precision[] DEFAULT NULL)
RETURNS TABLE (item_id text, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_for_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(text[], integer, text, double precision[])
    IS 'top-n items for a new or anonymous user from the items they touched, by text ids';

CREATE FUNCTION @extschema@.explain(
    user_id  text,
    item_id  text,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id text, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain(text, text, integer, text)
    IS 'the items of the user''s history that contribute most to the item''s score, by text ids; a last row with a NULL item_id holds the rest';

CREATE FUNCTION @extschema@.explain_features(
    user_id  text,
    item_id  text,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (feature text, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain_features'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain_features(text, text, integer, text)
    IS 'the features of the item that contribute most to its score for the user, by text ids';

CREATE FUNCTION @extschema@.refresh_user(model text, user_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_user(text, text)
    IS 'recompute one user''s factors from their current rows in the model''s source, by text id (a new user gets an id); false if none are left';

CREATE FUNCTION @extschema@.refresh_item(model text, item_id text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_item'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_item(text, text)
    IS 'compute one item''s row from its current features and interactions, by text id (a new item gets an id); false if it has neither';

CREATE FUNCTION @extschema@.forget_user(model text, user_id text)
RETURNS integer
AS 'MODULE_PATHNAME', 'recsys_forget_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.forget_user(text, text)
    IS 'delete a user (by text id) from a model, with their id, and re-solve the items they had; returns the number of items re-solved';
