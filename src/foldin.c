/*-------------------------------------------------------------------------
 *
 * foldin.c
 *	  Serving-time solves: recommend_for_items(), refresh_user(), explain().
 *
 * Fold-in (cold start and freshness) solves one user's factors against the
 * stored item factors, exactly as a training half-step would (the same
 * AlsExplicitNormal / AlsImplicitNormal and AlsSolveRow), without
 * retraining:
 *	- recommend_for_items(): for an anonymous or new user given the items
 *	  they touched; nothing is stored.
 *	- refresh_user(): for a known or new user from their current rows in
 *	  the model's source table; the user's row is replaced in the current
 *	  transaction.
 *
 * explain() decomposes a score through the same normal equations.  With
 * A the user's regularized normal matrix and x_j, t_j the vector and
 * target of history item j, the user's solution is w = A^-1 sum_j t_j x_j,
 * so for a candidate item with vector x_i
 *
 *		x_i . w = sum_j t_j (x_j . A^-1 x_i)
 *
 * and item j contributes t_j (x_j . z) with z = A^-1 x_i (one solve).  For
 * implicit ALS, x_j = y_j and t_j = c_uj, and the contributions add up to
 * the whole score.  For explicit ALS, x_j = [q_j, 1] and t_j = r_uj - mu -
 * b_j, and they add up to the personal part b_u + p_u . q_i; mu + b_i is
 * left in the remainder.  The remainder row also absorbs any difference
 * between the stored factors and an exact solve (conjugate-gradient
 * training, or history changed by refresh_user).
 *
 * IDENTIFICATION
 *	  src/foldin.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "ratings.h"
#include "recommend.h"
#include "simd.h"
#include "topk.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

/* A user history mapped onto the cached items */
typedef struct History
{
	int			n;				/* known items */
	int32	   *cols;			/* their rows in the cache */
	float	   *vals;			/* kernel values: ratings, or w = c - 1 */
	int64	   *ids;			/* their ids */
	float	   *raw;			/* the values as given */
} History;

/*
 * Map (item id, value) pairs onto the cached items, dropping unknown ids,
 * with values turned into the kernel's input (w = c - 1 for implicit).
 */
static void
MapHistory(const CacheEntry *e, const int64 *items, const float *values,
		   int n, History *h)
{
	h->cols = palloc(sizeof(int32) * Max(n, 1));
	h->vals = palloc(sizeof(float) * Max(n, 1));
	h->ids = palloc(sizeof(int64) * Max(n, 1));
	h->raw = palloc(sizeof(float) * Max(n, 1));
	h->n = 0;
	for (int j = 0; j < n; j++)
	{
		int32		i = IdMapLookup(e->index, items[j]);

		if (i < 0)
			continue;
		h->cols[h->n] = i;
		h->ids[h->n] = items[j];
		h->raw[h->n] = values[j];
		h->vals[h->n] = e->config.method == RECSYS_METHOD_IALS ?
			(float) RecsysConfidence(e->scaling, e->alpha, e->epsilon, values[j]) :
			values[j];
		h->n++;
	}
}

/* Build the normal equations of a history in e->ws (the training kernels) */
static void
BuildNormal(CacheEntry *e, const History *h)
{
	const RecsysFactors *it = &e->items;

	if (e->config.method == RECSYS_METHOD_ALS)
		AlsExplicitNormal(h->cols, h->vals, h->n, e->config.mean, it->factors,
						  it->bias, it->k, &e->ws);
	else
	{
		CacheItemGram(e);
		AlsImplicitNormal(h->cols, h->vals, h->n, it->factors, it->k, &e->ws);
	}
}

/* Error for normal equations that cannot be solved */
static void
FoldInFailed(const char *model)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("normal equations of the user are not positive definite in model \"%s\"",
					model),
			 errhint("Retrain the model with a positive regularization.")));
}

/* Solve a history for a user's factors and bias (fold-in) */
static void
FoldIn(CacheEntry *e, const History *h, const char *model, float *factors,
	   float *bias)
{
	*bias = 0.0f;
	BuildNormal(e, h);
	if (AlsSolveRow(&e->config, h->n, &e->ws, factors, bias) != 0)
		FoldInFailed(model);
}

/*
 * Check and merge the items/values arguments of recommend_for_items into
 * sorted, duplicate-free (item, value) pairs, by the model's rule.
 */
static void
ItemsArgs(FunctionCallInfo fcinfo, const RecsysModelInfo *info, RatingsUser *out)
{
	ArrayType  *items_arr = PG_GETARG_ARRAYTYPE_P(0);
	int			nitems;
	int64	   *items = ArrayGetInt8(items_arr, &nitems);
	ItemValue  *pairs;

	if (nitems == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("items must not be empty"),
				 errhint("For a user with no history, recommend() for an unknown user returns the popular items.")));

	pairs = palloc(sizeof(ItemValue) * nitems);
	if (PG_ARGISNULL(3))
	{
		if (info->method == RECSYS_METHOD_ALS)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("values are required for explicit model \"%s\"", info->name),
					 errhint("Pass the user's ratings of the items, values => ARRAY[...].")));
		for (int j = 0; j < nitems; j++)
		{
			pairs[j].item = items[j];
			pairs[j].value = 1.0;
		}
	}
	else
	{
		int			nvalues;
		double	   *values = ArrayGetFloat8(PG_GETARG_ARRAYTYPE_P(3), &nvalues);

		if (nvalues != nitems)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("values has %d elements, but items has %d", nvalues, nitems)));
		for (int j = 0; j < nitems; j++)
		{
			if (isnan(values[j]) || isinf(values[j]) || fabs(values[j]) > FLT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("value %g of item %lld is not a finite real",
								values[j], (long long) items[j])));
			if (info->method != RECSYS_METHOD_ALS && values[j] < 0.0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("value %g of item %lld is negative", values[j],
								(long long) items[j]),
						 errhint("Implicit feedback values must be >= 0.")));
			pairs[j].item = items[j];
			pairs[j].value = values[j];
		}
	}
	RatingsMerge(pairs, nitems, info->method != RECSYS_METHOD_ALS, out);
}

PG_FUNCTION_INFO_V1(recsys_recommend_for_items);

/*
 * recommend_for_items(items, n, model, values): recommendations for a new
 * or anonymous user from the items they touched, by one exact fold-in
 * solve against the item factors; the given items are excluded.  Unknown
 * items are ignored; with no known item, the popular items are returned.
 */
Datum
recsys_recommend_for_items(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 1);
	char	   *model = ServeModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	RatingsUser given;
	History		h;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	ItemsArgs(fcinfo, info, &given);
	e = CacheGetModel(info);
	MapHistory(e, given.items, given.values, given.n, &h);

	if (info->method == RECSYS_METHOD_POPULAR)
		ServeScoreAll(e, NULL, 0.0f, e->scores);
	else if (h.n == 0)
		ServeScorePopular(e, e->scores);
	else
	{
		float	   *factors = palloc(sizeof(float) * e->items.k);
		float		bias;

		FoldIn(e, &h, info->name, factors, &bias);
		ServeScoreAll(e, factors, bias, e->scores);
	}
	ServeExcludeIds(e, given.items, given.n, e->scores);
	ServeTopK(fcinfo, e, n);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_refresh_user);

/*
 * refresh_user(model, user_id): recompute one user's factors from their
 * current rows in the model's source (read with the caller's privileges),
 * against the stored item factors, and store them.  Returns false (and
 * removes the user's row) when the user has no usable rows left.
 */
Datum
recsys_refresh_user(PG_FUNCTION_ARGS)
{
	char	   *model = ServeModelArg(fcinfo, 0);
	int64		user_id;
	RecsysModelInfo *info;
	CacheEntry *e;
	RatingsSource src;
	RatingsUser rows;
	History		h;
	RecsysUserRow row;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_id must not be null")));
	user_id = PG_GETARG_INT64(1);

	/*
	 * Refreshes of a model run side by side, but never during its training:
	 * look the model up again once the lock is held, as a training may just
	 * have committed a new version.
	 */
	info = CatalogLookupModel(model);
	CatalogLockModelName(info->name, false);
	info = CatalogLookupModelLatest(info->name);
	CatalogRequireTrain(info);
	e = CacheGetModel(info);

	src.relid = RatingsSourceOid(info->source);
	src.user_col = info->user_col;
	src.item_col = info->item_col;
	src.value_col = info->value_col;
	src.sum_duplicates = info->method != RECSYS_METHOD_ALS;
	RatingsLoadUser(&src, user_id, &rows);
	MapHistory(e, rows.items, rows.values, rows.n, &h);

	if (h.n == 0)
	{
		(void) CatalogDeleteUser(info, user_id);
		CacheForgetUsers(e);
		PG_RETURN_BOOL(false);
	}

	row.found = true;
	row.factors = palloc0(sizeof(float) * Max(e->items.k, 1));
	row.bias = 0.0f;
	if (info->method != RECSYS_METHOD_POPULAR)
		FoldIn(e, &h, info->name, row.factors, &row.bias);
	row.seen = h.ids;
	row.seen_values = h.raw;
	row.nseen = h.n;
	CatalogStoreUser(info, user_id, &row);
	CacheForgetUsers(e);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(recsys_explain);

/*
 * explain(user_id, item_id, n, model): the n items of the user's training
 * history that contribute most to the item's score, and a last row with a
 * NULL item_id holding the rest, so that the rows add up to the score.
 */
Datum
recsys_explain(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 2);
	char	   *model = ServeModelArg(fcinfo, 3);
	ReturnSetInfo *rsinfo;
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	History		h;
	int32		item;
	int			k;
	int			d;
	bool		explicit;
	double	   *z;
	float	   *contrib;
	int32	   *chosen;
	int			count;
	double		score;
	double		shown = 0.0;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	ServeRequireFactors(info, "explain");
	e = CacheGetModel(info);
	CatalogLoadUser(info, PG_GETARG_INT64(0), false, &user);
	item = IdMapLookup(e->index, PG_GETARG_INT64(1));
	if (!user.found || item < 0)
		return (Datum) 0;

	k = e->items.k;
	explicit = info->method == RECSYS_METHOD_ALS;
	d = explicit ? k + 1 : k;
	MapHistory(e, user.seen, user.seen_values, user.nseen, &h);

	/* z = A^-1 x_i, through the user's regularized normal equations */
	z = palloc(sizeof(double) * d);
	for (int f = 0; f < k; f++)
		z[f] = e->items.factors[(Size) item * k + f];
	if (explicit)
		z[k] = 1.0;
	if (h.n > 0)
	{
		BuildNormal(e, &h);
		if (AlsSolve(e->ws.a, z, d, AlsRowPenalty(&e->config, h.n)) != 0)
			FoldInFailed(info->name);
	}

	/* Contribution of history item j: t_j (x_j . z) */
	contrib = palloc(sizeof(float) * Max(h.n, 1));
	for (int j = 0; j < h.n; j++)
	{
		const float *x = e->items.factors + (Size) h.cols[j] * k;
		double		dot = explicit ? z[k] : 0.0;
		double		t = explicit ?
			h.vals[j] - e->config.mean - e->items.bias[h.cols[j]] :
			1.0 + h.vals[j];

		for (int f = 0; f < k; f++)
			dot += x[f] * z[f];
		contrib[j] = (float) (t * dot);
	}

	score = e->config.mean + user.bias + e->items.bias[item] +
		SimdDotGeneric(user.factors, e->items.factors + (Size) item * k, k);
	n = Min(n, Max(h.n, 1));
	chosen = palloc(sizeof(int32) * n);
	count = TopK(contrib, h.ids, h.n, n, chosen);
	ServeEmit(fcinfo, h.ids, contrib, chosen, count);
	for (int j = 0; j < count; j++)
		shown += contrib[chosen[j]];

	/* The rest: other history items, mu + b_i, and any inexactness */
	values[1] = Float4GetDatum((float) (score - shown));
	nulls[0] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
