/*-------------------------------------------------------------------------
 *
 * foldin.c
 *	  Serving-time users: recommend_for_items(), refresh_user(), explain().
 *
 * A user the model has not trained on is served from their history alone,
 * through the model's method:
 *	- recommend_for_items(): an anonymous or new user given the items they
 *	  touched; nothing is stored;
 *	- refresh_user(): a known or new user from their current rows in the
 *	  model's source table; the user's row is replaced in the current
 *	  transaction.
 * Factor models fold the history in (one user solve against the stored
 * item factors, exactly as a training half-step would: factor_model.c);
 * item-neighbour models score the history directly.
 *
 * explain() asks the method for the contribution of each history item to
 * an item's score (factor_model.c and neighbor_model.c describe how).
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
#include "method.h"
#include "ratings.h"
#include "recommend.h"
#include "score.h"
#include "topk.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

/* A user row for a history, with room for factors (found, not stored) */
static void
HistoryRow(const CacheEntry *e, const RatingsUser *given, RecsysUserRow *row)
{
	memset(row, 0, sizeof(RecsysUserRow));
	row->found = true;
	row->factors = palloc0(sizeof(float) * Max(e->items.k, 1));
	row->seen = given->items;
	row->seen_values = given->values;
	row->nseen = given->n;
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
		if (info->method->explicit_values)
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
			if (!info->method->explicit_values && values[j] < 0.0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("value %g of item %lld is negative", values[j],
								(long long) items[j]),
						 errhint("Implicit feedback values must be >= 0.")));
			pairs[j].item = items[j];
			pairs[j].value = values[j];
		}
	}
	RatingsMerge(pairs, nitems, !info->method->explicit_values, out);
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
	const RecsysMethod *m;
	CacheEntry *e;
	RatingsUser given;
	ServeHistory h;
	RecsysUserRow row;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	m = info->method;
	ItemsArgs(fcinfo, info, &given);
	e = CacheGetModel(info);
	ServeMapHistory(e, given.items, given.values, given.n, &h);
	HistoryRow(e, &given, &row);

	/* With no known item, a personal method serves the popular items */
	row.found = h.n > 0;
	if (row.found && m->fold_in)
		m->fold_in(e, &h, info->name, &row);
	ServeScoreUser(e, &row);
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
	ServeHistory h;
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
	src.sum_duplicates = !info->method->explicit_values;
	RatingsLoadUser(&src, user_id, &rows);
	ServeMapHistory(e, rows.items, rows.values, rows.n, &h);

	if (h.n == 0)
	{
		(void) CatalogDeleteUser(info, user_id);
		CacheForgetUsers(e);
		PG_RETURN_BOOL(false);
	}

	/* The stored history: the items the model knows, as the user has them */
	rows.items = h.ids;
	rows.values = h.values;
	rows.n = h.n;
	HistoryRow(e, &rows, &row);
	if (info->method->fold_in)
		info->method->fold_in(e, &h, info->name, &row);
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
	ServeHistory h;
	int32		item;
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
	if (info->method->explain == NULL)
		MethodNotSupported(info->method, info->name, "explain");
	e = CacheGetModel(info);
	CatalogLoadUser(info, PG_GETARG_INT64(0), false, &user);
	item = IdMapLookup(e->index, PG_GETARG_INT64(1));
	if (!user.found || item < 0)
		return (Datum) 0;

	ServeMapHistory(e, user.seen, user.seen_values, user.nseen, &h);
	contrib = palloc(sizeof(float) * Max(h.n, 1));
	score = info->method->explain(e, &user, &h, item, info->name, contrib);

	n = Min(n, Max(h.n, 1));
	chosen = palloc(sizeof(int32) * n);
	count = TopK(contrib, h.ids, h.n, n, chosen);
	ServeEmit(fcinfo, h.ids, contrib, chosen, count);
	for (int j = 0; j < count; j++)
		shown += contrib[chosen[j]];

	/* The rest: other history items, what is not personal, inexactness */
	values[1] = Float4GetDatum((float) (score - shown));
	nulls[0] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
