--
-- The ALS half-step as a parallel aggregate
--
CREATE FUNCTION @extschema@.als_solve_transfn(internal, real[], double precision, double precision)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_combinefn(internal, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_serialfn(internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'recsys_als_solve_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_deserialfn(bytea, internal)
RETURNS internal
AS 'MODULE_PATHNAME', 'recsys_als_solve_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION @extschema@.als_solve_finalfn(internal)
RETURNS real[]
AS 'MODULE_PATHNAME', 'recsys_als_solve_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE @extschema@.als_solve(factors real[], value double precision, regularization double precision) (
    SFUNC = @extschema@.als_solve_transfn,
    STYPE = internal,
    FINALFUNC = @extschema@.als_solve_finalfn,
    COMBINEFUNC = @extschema@.als_solve_combinefn,
    SERIALFUNC = @extschema@.als_solve_serialfn,
    DESERIALFUNC = @extschema@.als_solve_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.als_solve(real[], double precision, double precision)
    IS 'least-squares solve of one ALS row: argmin_w sum (value - factors . w)^2 + regularization * count * |w|^2';
