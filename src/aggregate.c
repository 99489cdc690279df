/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  The als_solve(factors, value, regularization) aggregate.
 *
 * One group of rows (for example one user's ratings joined to the item
 * factors) is one ridge regression:
 *
 *		w = argmin sum (value - factors . w)^2 + regularization * n * |w|^2
 *
 * with n the number of rows in the group (ALS-WR weighting, as in
 * training).  The state is the normal equations: the packed upper triangle
 * of sum x x^T, the vector sum value x, and n, about d^2/2 doubles for d
 * factors whatever the group size, so HashAggregate's memory stays
 * predictable.  States add up, which gives the combine function, and they
 * serialize to a flat bytea, so PostgreSQL can run the aggregate in
 * parallel workers or push it down to remote shards.
 *
 * Passing factors || 1 and value - mu - item_bias reproduces exactly the
 * user half-step of explicit training (factors and bias); AlsSolve is the
 * same code the training half-step ends with.
 *
 * IDENTIFICATION
 *	  src/aggregate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "als.h"
#include "fmgr.h"
#include "recsys.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* Normal equations of one group */
typedef struct AlsSolveState
{
	int32		d;				/* number of unknowns (array length) */
	int64		count;			/* rows accumulated */
	double		regularization;
	double	   *a;				/* packed upper triangle of sum x x^T */
	double	   *b;				/* sum value * x */
} AlsSolveState;

/* Serialized form: this header followed by the packed a, then b */
typedef struct AlsSolveWire
{
	int32		d;
	int32		pad;
	int64		count;
	double		regularization;
} AlsSolveWire;

/* Allocate an empty state for d unknowns in the current context */
static AlsSolveState *
StateCreate(int d, double regularization)
{
	AlsSolveState *s = palloc(sizeof(AlsSolveState));

	s->d = d;
	s->count = 0;
	s->regularization = regularization;
	s->a = palloc0(sizeof(double) * AlsPackedSize(d));
	s->b = palloc0(sizeof(double) * d);
	return s;
}

/* The aggregate memory context, or an error outside an aggregate */
static MemoryContext
AggContext(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return cxt;
}

/* Error unless two states describe the same problem size and penalty */
static void
CheckCompatible(const AlsSolveState *s, int d, double regularization)
{
	if (s->d != d)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("factor array has %d elements, expected %d", d, s->d),
				 errdetail("All factor arrays of a group must have the same length.")));
	if (s->regularization != regularization)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("regularization must be the same for all rows of a group, got %g and %g",
						s->regularization, regularization)));
}

PG_FUNCTION_INFO_V1(recsys_als_solve_transfn);

/* Transition: add one (factors, value) row; NULL factors or value skip it */
Datum
recsys_als_solve_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = AggContext(fcinfo, "als_solve_transfn");
	AlsSolveState *s = PG_ARGISNULL(0) ? NULL : (AlsSolveState *) PG_GETARG_POINTER(0);
	ArrayType  *arr;
	float	   *x;
	int			d;
	double		value;
	double		regularization;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s);
	}
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("regularization must not be null")));

	regularization = PG_GETARG_FLOAT8(3);
	RecsysCheckNumber("regularization", regularization, 0.0, false);
	value = PG_GETARG_FLOAT8(2);
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("value must be finite, got %g", value)));

	arr = PG_GETARG_ARRAYTYPE_P(1);
	x = ArrayGetFloat4(arr, s ? s->d : 0, &d);
	if (d < 1 || d > RECSYS_MAX_FACTORS + 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("factor array must have 1 to %d elements, got %d",
						RECSYS_MAX_FACTORS + 1, d)));

	if (s == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		s = StateCreate(d, regularization);
		MemoryContextSwitchTo(old);
	}
	else
		CheckCompatible(s, d, regularization);

	AlsAccumulateRow(s->a, s->b, d, x, value);
	s->count++;
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(recsys_als_solve_combinefn);

/* Combine: the normal equations of two partial groups add up */
Datum
recsys_als_solve_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = AggContext(fcinfo, "als_solve_combinefn");
	AlsSolveState *s1 = PG_ARGISNULL(0) ? NULL : (AlsSolveState *) PG_GETARG_POINTER(0);
	AlsSolveState *s2 = PG_ARGISNULL(1) ? NULL : (AlsSolveState *) PG_GETARG_POINTER(1);
	Size		packed;

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	packed = AlsPackedSize(s2->d);
	if (s1 == NULL)
	{
		/* The first state must be copied into the aggregate's context */
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		s1 = StateCreate(s2->d, s2->regularization);
		MemoryContextSwitchTo(old);
	}
	else
		CheckCompatible(s1, s2->d, s2->regularization);

	/* Auto-vectorized */
	for (Size i = 0; i < packed; i++)
		s1->a[i] += s2->a[i];
	for (int i = 0; i < s2->d; i++)
		s1->b[i] += s2->b[i];
	s1->count += s2->count;
	PG_RETURN_POINTER(s1);
}

PG_FUNCTION_INFO_V1(recsys_als_solve_serialfn);

/* Serialize a state to bytea for transfer between processes */
Datum
recsys_als_solve_serialfn(PG_FUNCTION_ARGS)
{
	AlsSolveState *s = (AlsSolveState *) PG_GETARG_POINTER(0);
	Size		packed = AlsPackedSize(s->d);
	Size		len = sizeof(AlsSolveWire) + sizeof(double) * (packed + s->d);
	bytea	   *result = palloc(VARHDRSZ + len);
	AlsSolveWire *w = (AlsSolveWire *) VARDATA(result);
	double	   *data = (double *) (w + 1);

	SET_VARSIZE(result, VARHDRSZ + len);
	w->d = s->d;
	w->pad = 0;
	w->count = s->count;
	w->regularization = s->regularization;
	memcpy(data, s->a, sizeof(double) * packed);
	memcpy(data + packed, s->b, sizeof(double) * s->d);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(recsys_als_solve_deserialfn);

/* Rebuild a state from its serialized form, checking its size */
Datum
recsys_als_solve_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	Size		len = VARSIZE_ANY_EXHDR(bytes);
	AlsSolveWire w;
	AlsSolveState *s;
	Size		packed;
	const char *data;

	(void) AggContext(fcinfo, "als_solve_deserialfn");
	if (len < sizeof(AlsSolveWire))
		elog(ERROR, "invalid als_solve state: %zu bytes", len);
	data = VARDATA_ANY(bytes);
	memcpy(&w, data, sizeof(AlsSolveWire));
	if (w.d < 1 || w.d > RECSYS_MAX_FACTORS + 1)
		elog(ERROR, "invalid als_solve state: dimension %d", w.d);
	packed = AlsPackedSize(w.d);
	if (len != sizeof(AlsSolveWire) + sizeof(double) * (packed + w.d))
		elog(ERROR, "invalid als_solve state: %zu bytes for dimension %d", len, w.d);

	/* Copy out: the bytea data is not necessarily aligned for doubles */
	s = StateCreate(w.d, w.regularization);
	s->count = w.count;
	memcpy(s->a, data + sizeof(AlsSolveWire), sizeof(double) * packed);
	memcpy(s->b, data + sizeof(AlsSolveWire) + sizeof(double) * packed,
		   sizeof(double) * w.d);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(recsys_als_solve_finalfn);

/* Final: solve the group's regularized normal equations */
Datum
recsys_als_solve_finalfn(PG_FUNCTION_ARGS)
{
	AlsSolveState *s;
	int			info;
	double	   *a;
	double	   *b;
	float	   *w;
	int			d;

	(void) AggContext(fcinfo, "als_solve_finalfn");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (AlsSolveState *) PG_GETARG_POINTER(0);
	d = s->d;

	/* Solve on copies: a final function must not change the state */
	a = palloc(sizeof(double) * d * d);
	b = palloc(sizeof(double) * d);
	AlsUnpack(s->a, a, d);
	memcpy(b, s->b, sizeof(double) * d);
	info = AlsSolve(a, b, d, s->regularization * (double) s->count);
	if (info < 0)
		elog(ERROR, "dpotrf refused the order %d, please report a bug", d);
	if (info > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("normal equations of a group of %lld rows are not positive definite",
						(long long) s->count),
				 errhint("Use a positive regularization, or groups with at least as many rows as factors.")));

	w = palloc(sizeof(float) * d);
	for (int i = 0; i < d; i++)
		w[i] = (float) b[i];
	PG_RETURN_ARRAYTYPE_P(ArrayFromFloat4(w, d));
}
