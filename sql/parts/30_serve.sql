--
-- Serving
--
CREATE FUNCTION @extschema@.recommend(
    user_id       bigint,
    n             integer DEFAULT 10,
    model         text DEFAULT NULL,
    exclude_seen  boolean DEFAULT true,
    candidates    bigint[] DEFAULT NULL,
    exclude       bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(bigint, integer, text, boolean, bigint[], bigint[])
    IS 'top-n items for a user, best first; popular items for users unknown to the model';

CREATE FUNCTION @extschema@.predict(
    user_id  bigint,
    item_id  bigint,
    model    text DEFAULT NULL)
RETURNS real
AS 'MODULE_PATHNAME', 'recsys_predict'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.predict(bigint, bigint, text)
    IS 'predicted value of an item for a user';

CREATE FUNCTION @extschema@.similar_items(
    item_id  bigint,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_items'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(bigint, integer, text)
    IS 'the n items whose factors have the highest cosine similarity to the item''s';

CREATE FUNCTION @extschema@.similar_users(
    user_id  bigint,
    n        integer DEFAULT 10,
    model    text DEFAULT NULL)
RETURNS TABLE (user_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_similar_users'
LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(bigint, integer, text)
    IS 'the n users whose factors have the highest cosine similarity to the user''s';

CREATE FUNCTION @extschema@.recommend_all(
    n             integer DEFAULT 10,
    model         text DEFAULT NULL,
    exclude_seen  boolean DEFAULT true)
RETURNS TABLE (user_id bigint, item_id bigint, score real)
AS 'MODULE_PATHNAME', 'recsys_recommend_all'
LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 100000;
COMMENT ON FUNCTION @extschema@.recommend_all(integer, text, boolean)
    IS 'the top-n items of every user of the model, computed in blocks of users with one matrix product each';
