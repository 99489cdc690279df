--
-- Cold start, freshness and explanations: serving-time solves
--
CREATE FUNCTION @extschema@.recommend_for_items(
    items    bigint[],
    n        integer DEFAULT 10,
    model    text DEFAULT NULL,
    "values" double precision[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_for_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(bigint[], integer, text, double precision[])
    IS 'top-n items for a new or anonymous user from the items they touched (fold-in, no retraining)';

CREATE FUNCTION @extschema@.refresh_user(model text, user_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_user(text, bigint)
    IS 'recompute one user''s factors from their current rows in the model''s source; false if none are left';

CREATE FUNCTION @extschema@.explain(
    user_id  bigint,
    item_id  bigint,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id bigint, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain(bigint, bigint, integer, text)
    IS 'the items of the user''s history that contribute most to the item''s score; a last row with a NULL item_id holds the rest';

CREATE FUNCTION @extschema@.forget_user(model text, user_id bigint)
RETURNS integer
AS 'MODULE_PATHNAME', 'recsys_forget_user'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.forget_user(text, bigint)
    IS 'delete a user from a model and re-solve the items they had; returns the number of items re-solved';

CREATE FUNCTION @extschema@.recommend_for_features(
    features  text[],
    n         integer DEFAULT 10,
    model     text DEFAULT NULL,
    weights   double precision[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_for_features'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_features(text[], integer, text, double precision[])
    IS 'recommendations for a visitor known only by features: user attributes (hybrid models) or item features of interest (content models); the popular items if none is known';

CREATE FUNCTION @extschema@.explain_features(
    user_id  bigint,
    item_id  bigint,
    n        integer DEFAULT 5,
    model    text DEFAULT NULL)
RETURNS TABLE (feature text, contribution real)
AS 'MODULE_PATHNAME', 'recsys_explain_features'
LANGUAGE C STABLE PARALLEL SAFE ROWS 6;
COMMENT ON FUNCTION @extschema@.explain_features(bigint, bigint, integer, text)
    IS 'the features of the item that contribute most to its score for the user (content models); a last row with a NULL feature holds the rest';

CREATE FUNCTION @extschema@.refresh_item(model text, item_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'recsys_refresh_item'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.refresh_item(text, bigint)
    IS 'compute one item''s row from its current features and interactions (a new item goes live without a retrain); false if it has neither';
