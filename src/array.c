/*-------------------------------------------------------------------------
 *
 * array.c
 *	  Conversions between SQL arrays and plain C vectors, with checks.
 *
 * Factor vectors are real[] in SQL.  Everything that reads one goes through
 * ArrayGetFloat4, which rejects (in this order) multi-dimensional arrays,
 * arrays containing NULLs, the wrong element type, the wrong length and
 * non-finite values, so that the numeric core only ever sees clean data.
 *
 * IDENTIFICATION
 *	  src/array.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "recsys.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* Reject arrays that are not flat, NULL-free arrays of the given type */
static int
CheckArray(ArrayType *a, Oid elemtype)
{
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be 1-D, got %d dimensions", ARR_NDIM(a))));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls")));
	if (ARR_ELEMTYPE(a) != elemtype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("array has element type %s, expected %s",
						format_type_be(ARR_ELEMTYPE(a)), format_type_be(elemtype))));
	return ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
}

/*
 * Checked pointer to the float4 data of a real[] (no copy).
 *
 * expected > 0 demands that length; *len receives the length.
 */
float *
ArrayGetFloat4(ArrayType *a, int expected, int *len)
{
	int			n = CheckArray(a, FLOAT4OID);
	float	   *data = (float *) ARR_DATA_PTR(a);

	if (expected > 0 && n != expected)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("factor array has %d elements, expected %d", n, expected)));
	for (int i = 0; i < n; i++)
	{
		if (isnan(data[i]) || isinf(data[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("factor array element %d is not finite", i + 1)));
	}
	*len = n;
	return data;
}

/* Checked pointer to the int8 data of a bigint[] (no copy) */
int64 *
ArrayGetInt8(ArrayType *a, int *len)
{
	*len = CheckArray(a, INT8OID);
	return (int64 *) ARR_DATA_PTR(a);
}

/* Checked pointer to the int4 data of an integer[] (no copy) */
int32 *
ArrayGetInt4(ArrayType *a, int *len)
{
	*len = CheckArray(a, INT4OID);
	return (int32 *) ARR_DATA_PTR(a);
}

/* Checked pointer to the float8 data of a double precision[] (no copy) */
double *
ArrayGetFloat8(ArrayType *a, int *len)
{
	*len = CheckArray(a, FLOAT8OID);
	return (double *) ARR_DATA_PTR(a);
}

/* Build a 1-D array of a fixed-width, pass-by-value element type directly */
static ArrayType *
ArrayFromFixed(const void *values, int n, Oid elemtype, int elemsize)
{
	Size		nbytes = ARR_OVERHEAD_NONULLS(1) + (Size) n * elemsize;
	ArrayType  *a;

	/*
	 * Skips the Datum array and per-element copies of construct_array; the
	 * data offset is MAXALIGNed, which suits every fixed-width type.
	 */
	a = palloc0(nbytes);
	SET_VARSIZE(a, nbytes);
	a->ndim = n > 0 ? 1 : 0;
	a->dataoffset = 0;
	a->elemtype = elemtype;
	if (n > 0)
	{
		ARR_DIMS(a)[0] = n;
		ARR_LBOUND(a)[0] = 1;
		memcpy(ARR_DATA_PTR(a), values, (Size) n * elemsize);
	}
	else
		SET_VARSIZE(a, ARR_OVERHEAD_NONULLS(0));
	return a;
}

/* real[] holding a copy of n floats */
ArrayType *
ArrayFromFloat4(const float *values, int n)
{
	return ArrayFromFixed(values, n, FLOAT4OID, sizeof(float));
}

/* bigint[] holding a copy of n int64 values */
ArrayType *
ArrayFromInt8(const int64 *values, int n)
{
	return ArrayFromFixed(values, n, INT8OID, sizeof(int64));
}

/* double precision[] holding a copy of n doubles */
ArrayType *
ArrayFromFloat8(const double *values, int n)
{
	return ArrayFromFixed(values, n, FLOAT8OID, sizeof(double));
}

/* integer[] holding a copy of n int32 values */
ArrayType *
ArrayFromInt4(const int32 *values, int n)
{
	return ArrayFromFixed(values, n, INT4OID, sizeof(int32));
}
