/*-------------------------------------------------------------------------
 *
 * recommend.c
 *	  Serving: recommend(), predict() and similar_items().
 *
 * Each call resolves the model (one catalog probe), takes the item matrix
 * from the backend cache, and scores all items with one matrix-vector
 * product into a reused buffer; excluded items get a sentinel score and a
 * bounded heap picks the best n.  Nothing is allocated per call in
 * proportion to the catalog.
 *
 * Answers for ids the model does not know (documented in the README):
 *	- recommend() for an unknown user: the most popular training items,
 *	  scored by their number of training interactions.
 *	- predict(): global mean plus whichever biases are known.
 *	- similar_items() for an unknown item: no rows.
 *
 * IDENTIFICATION
 *	  src/recommend.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "cache.h"
#include "catalog.h"
#include "fmgr.h"
#include "funcapi.h"
#include "linalg.h"
#include "miscadmin.h"
#include "topk.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

/* The model argument as a C string, or NULL for the default model */
static char *
ModelArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* Check and return n, the number of rows asked for */
static int
CountArg(FunctionCallInfo fcinfo, int argno)
{
	int			n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n must not be null")));
	n = PG_GETARG_INT32(argno);
	if (n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be positive, got %d", n)));
	return n;
}

/* Emit the chosen (item id, score) rows into the materialized result */
static void
EmitRows(FunctionCallInfo fcinfo, const CacheEntry *e, const float *scores,
		 const int32 *chosen, int count)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (int j = 0; j < count; j++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(e->items.ids[chosen[j]]);
		values[1] = Float4GetDatum(scores[chosen[j]]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * Score every item for a user: mu + b_u + b_i + p_u . q_i, the predicted
 * value, so that scores are on the scale of the training values.
 */
static void
ScoreUser(const RecsysModelInfo *info, const CacheEntry *e,
		  const RecsysUserRow *user, float *scores)
{
	const RecsysItems *it = &e->items;
	float		base = (float) (info->global_mean + user->bias);

	LinalgGemvT(it->k, it->nitems, it->factors, it->k, user->factors, scores);

	/* Auto-vectorized */
	for (int i = 0; i < it->nitems; i++)
		scores[i] += base + it->bias[i];
}

/* Give items in a sorted id list the excluded sentinel score */
static void
ExcludeIds(const CacheEntry *e, const int64 *ids, int nids, float *scores)
{
	for (int j = 0; j < nids; j++)
	{
		int32		i = IdMapLookup(e->index, ids[j]);

		if (i >= 0)
			scores[i] = TOPK_EXCLUDED;
	}
}

PG_FUNCTION_INFO_V1(recsys_recommend);

/*
 * recommend(user_id, n, model, exclude_seen): the n best items for a user,
 * best first.
 */
Datum
recsys_recommend(PG_FUNCTION_ARGS)
{
	int			n = CountArg(fcinfo, 1);
	char	   *model = ModelArg(fcinfo, 2);
	bool		exclude_seen;
	int64		user_id;
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	int			count;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("exclude_seen must not be null")));
	exclude_seen = PG_GETARG_BOOL(3);

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	user_id = PG_GETARG_INT64(0);

	info = CatalogLookupModel(model);
	e = CacheGetItems(info);
	CatalogLoadUser(info, user_id, &user);
	n = Min(n, e->items.nitems);

	if (user.found)
	{
		ScoreUser(info, e, &user, e->scores);
		if (exclude_seen)
			ExcludeIds(e, user.seen, user.nseen, e->scores);
	}
	else
	{
		/* Unknown user: most popular items, scored by interaction count */
		for (int i = 0; i < e->items.nitems; i++)
			e->scores[i] = (float) e->items.popularity[i];
	}

	count = TopK(e->scores, e->items.ids, e->items.nitems, n, e->result);
	EmitRows(fcinfo, e, e->scores, e->result, count);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_predict);

/*
 * predict(user_id, item_id, model): the predicted value; global mean plus
 * the known biases when the user or item is unknown to the model.
 */
Datum
recsys_predict(PG_FUNCTION_ARGS)
{
	char	   *model = ModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	int32		item;
	double		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();

	info = CatalogLookupModel(model);
	e = CacheGetItems(info);
	CatalogLoadUser(info, PG_GETARG_INT64(0), &user);
	item = IdMapLookup(e->index, PG_GETARG_INT64(1));

	result = info->global_mean;
	if (user.found)
		result += user.bias;
	if (item >= 0)
		result += e->items.bias[item];
	if (user.found && item >= 0)
	{
		const float *q = e->items.factors + (Size) item * e->items.k;
		double		dot = 0.0;

		for (int f = 0; f < e->items.k; f++)
			dot += (double) user.factors[f] * q[f];
		result += dot;
	}
	PG_RETURN_FLOAT4((float4) result);
}

PG_FUNCTION_INFO_V1(recsys_similar_items);

/*
 * similar_items(item_id, n, model): the n items with the highest cosine
 * similarity of factors, the item itself excluded; no rows for an item the
 * model does not know.
 */
Datum
recsys_similar_items(PG_FUNCTION_ARGS)
{
	int			n = CountArg(fcinfo, 1);
	char	   *model = ModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	const float *norms;
	int32		item;
	float		qnorm;
	int			count;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	e = CacheGetItems(info);
	item = IdMapLookup(e->index, PG_GETARG_INT64(0));
	if (item < 0)
		return (Datum) 0;

	norms = CacheItemNorms(e);
	qnorm = norms[item];
	LinalgGemvT(e->items.k, e->items.nitems, e->items.factors, e->items.k,
				e->items.factors + (Size) item * e->items.k, e->scores);
	for (int i = 0; i < e->items.nitems; i++)
	{
		/* Zero vectors have no direction: similarity 0, not NaN */
		float		denom = norms[i] * qnorm;

		float		cosine = denom > 0.0f ? e->scores[i] / denom : 0.0f;

		/* Rounding can push |cosine| just past 1 */
		e->scores[i] = Max(-1.0f, Min(1.0f, cosine));
	}
	e->scores[item] = TOPK_EXCLUDED;

	count = TopK(e->scores, e->items.ids, e->items.nitems,
				 Min(n, e->items.nitems), e->result);
	EmitRows(fcinfo, e, e->scores, e->result, count);
	return (Datum) 0;
}
