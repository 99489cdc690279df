--
-- The ALS half-step as a parallel aggregate.  Its support functions live in
-- schema recsys, out of the way of the users' schema.
--
CREATE FUNCTION recsys.als_solve_transfn(internal, real[], double precision, double precision)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_transfn(internal, real[], double precision, double precision)
    IS 'transition function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_combinefn(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_combinefn(internal, internal)
    IS 'combine function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_serialfn(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_als_solve_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_serialfn(internal)
    IS 'serialization function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_deserialfn(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_deserialfn(bytea, internal)
    IS 'deserialization function of the als_solve aggregate';

CREATE FUNCTION recsys.als_solve_finalfn(internal)
RETURNS real[]
AS 'MODULE_PATHNAME', 'recsys_als_solve_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION recsys.als_solve_finalfn(internal)
    IS 'final function of the als_solve aggregate';

CREATE AGGREGATE @extschema@.als_solve(factors real[], value double precision, regularization double precision) (
    SFUNC = recsys.als_solve_transfn,
    STYPE = internal,
    FINALFUNC = recsys.als_solve_finalfn,
    COMBINEFUNC = recsys.als_solve_combinefn,
    SERIALFUNC = recsys.als_solve_serialfn,
    DESERIALFUNC = recsys.als_solve_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.als_solve(real[], double precision, double precision)
    IS 'least-squares solve of one ALS row: argmin_w sum (value - factors . w)^2 + regularization * count * |w|^2';
