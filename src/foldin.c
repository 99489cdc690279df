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
#include "ids.h"
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
ItemsArgs(FunctionCallInfo fcinfo, CacheEntry *e, const RecsysModelInfo *info,
		  RatingsUser *out)
{
	int			nitems;
	int64	   *items = IdsArrayArg(fcinfo, 0, e, info, true, &nitems);
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
					 errhint("Pass the user's ratings of the items, e.g. \"values\" => ARRAY[4, 5, 3] (quoted: VALUES is a keyword).")));
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

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	m = info->method;
	e = CacheGetModel(info);
	ItemsArgs(fcinfo, e, info, &given);
	ServeMapHistory(e, given.items, given.values, given.n, &h);
	HistoryRow(e, &given, &row);

	/* With no known item, a personal method serves the popular items */
	row.found = h.n > 0;
	if (row.found && m->fold_in)
		m->fold_in(e, &h, info->name, &row);
	ServeScoreUser(e, &row);
	ServeExcludeIds(e, given.items, given.n, e->scores);
	ServeTopK(fcinfo, e, info, n);
	return (Datum) 0;
}

/*
 * One item's or user's current features, read from the model's feature
 * relations with the caller's privileges, as numbers of the model's
 * vocabulary (features it does not know are left out): a one-row matrix
 * in out (current memory context).
 */
static void
EntityFeatures(const RecsysModelInfo *info, const ModelFeatures *vocab,
			   bool users, int64 id, const char *id_text, RecsysSparse *out)
{
	FeatureSource fs[2];
	int			nfs = 0;
	const char *features = users ? info->params.user_features : info->params.item_features;
	const char *text = users ? NULL : info->params.item_text;
	RecsysFeatures *read;

	memset(fs, 0, sizeof(fs));
	if (features)
	{
		fs[nfs].relid = RatingsSourceOid(features);
		fs[nfs].id_col = users ? info->user_col : info->item_col;
		fs[nfs].one = true;
		fs[nfs].id = id;
		fs[nfs].id_text = id_text;
		nfs++;
	}
	if (text)
	{
		fs[nfs].relid = RatingsSourceOid(text);
		fs[nfs].id_col = info->item_col;
		fs[nfs].text = true;
		fs[nfs].config = info->params.text_config;
		fs[nfs].one = true;
		fs[nfs].id = id;
		fs[nfs].id_text = id_text;
		nfs++;
	}
	memset(out, 0, sizeof(*out));
	out->indptr = palloc0(sizeof(int64) * 2);
	read = nfs > 0 ? RatingsLoadFeatures(fs, nfs) : NULL;
	if (read != NULL && read->nentities == 1)
	{
		int64		len = read->by_entity.indptr[1];

		out->indices = palloc(sizeof(int32) * Max(len, 1));
		out->values = palloc(sizeof(float) * Max(len, 1));
		for (int64 x = 0; x < len; x++)
		{
			int32		f = CacheFeatureRow(vocab, read->names[read->by_entity.indices[x]]);

			if (f < 0)
				continue;
			out->indices[out->nnz] = f;
			out->values[out->nnz] = read->by_entity.values[x];
			out->nnz++;
		}
	}
	out->nrows = 1;
	out->ncols = vocab->nfeatures;
	out->indptr[1] = out->nnz;
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
	char	   *user_text;
	RecsysSparse attrs;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_id must not be null")));

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
	/* A text id the model does not know yet gets a new model id */
	user_id = IdsUserArg(fcinfo, 1, info, true, &user_text);

	memset(&src, 0, sizeof(src));
	src.relid = RatingsSourceOid(info->source);
	src.user_col = info->user_col;
	src.item_col = info->item_col;
	src.value_col = info->value_col;
	src.sum_duplicates = !info->method->explicit_values;
	if (info->text_items)
	{
		IdsPrepareItems(e, info);
		src.resolve = IdsResolveItem;
		src.resolve_arg = e;
	}
	/* Capped and decayed as training did, against its reference time */
	RatingsPrepare(&src, &info->params);
	RatingsLoadUser(&src, user_id, user_text, &rows);
	ServeMapHistory(e, rows.items, rows.values, rows.n, &h);

	/* Hybrid: the user's current attributes give their prior */
	memset(&attrs, 0, sizeof(attrs));
	if (info->params.user_features != NULL && e->user_features.factors != NULL)
	{
		int			k = e->items.k;
		float	   *prior = palloc0(sizeof(float) * k);

		EntityFeatures(info, &e->user_features, true, user_id, user_text, &attrs);
		for (int64 x = 0; x < attrs.nnz; x++)
			for (int f = 0; f < k; f++)
				prior[f] += attrs.values[x] *
					e->user_features.factors[(Size) attrs.indices[x] * k + f];
		h.prior = prior;
	}

	if (h.n == 0 && attrs.nnz == 0)
	{
		(void) CatalogDeleteUser(info, user_id);
		if (info->params.user_features != NULL)
			CatalogStoreEntityFeatures(info, true, user_id, NULL, NULL, 0);
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
	if (info->params.user_features != NULL)
		CatalogStoreEntityFeatures(info, true, user_id, attrs.indices, attrs.values,
								   (int) attrs.nnz);
	CacheForgetUsers(e);
	PG_RETURN_BOOL(true);
}

/*
 * What explain and explain_features both start from: the model (erroring
 * if its method lacks the function), the user's stored row and history, and
 * the item's cached row.  False when the user or the item is unknown.
 */
static bool
ExplainTarget(FunctionCallInfo fcinfo, const char *model, bool features,
			  RecsysModelInfo **info, CacheEntry **e, RecsysUserRow *user,
			  int32 *item, ServeHistory *h)
{
	*info = CatalogLookupModel(model);
	if (features ? (*info)->method->explain_features == NULL : (*info)->method->explain == NULL)
		MethodNotSupported((*info)->method, (*info)->name,
						   features ? "explain_features" : "explain");
	*e = CacheGetModel(*info);
	CatalogLoadUser(*info, IdsUserArg(fcinfo, 0, *info, false, NULL), false, user);
	*item = IdsItemRow(fcinfo, 1, *e, *info);
	if (!user->found || *item < 0)
		return false;
	ServeMapHistory(*e, user->seen, user->seen_values, user->nseen, h);
	return true;
}

/* The last row of explain and explain_features: NULL, what the rows left out */
static void
ExplainRest(FunctionCallInfo fcinfo, double rest)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[2] = {(Datum) 0, Float4GetDatum((float) rest)};
	bool		nulls[2] = {true, false};

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
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

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	if (!ExplainTarget(fcinfo, model, false, &info, &e, &user, &item, &h))
		return (Datum) 0;

	contrib = palloc(sizeof(float) * Max(h.n, 1));
	score = info->method->explain(e, &user, &h, item, info->name, contrib);

	n = Min(n, Max(h.n, 1));
	chosen = palloc(sizeof(int32) * n);
	count = TopK(contrib, h.ids, h.n, n, chosen);
	ServeEmit(fcinfo, e, info, false, h.ids, contrib, chosen, count);
	for (int j = 0; j < count; j++)
		shown += contrib[chosen[j]];

	/* The rest: other history items, what is not personal, inexactness */
	ExplainRest(fcinfo, score - shown);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_recommend_for_features);

/*
 * recommend_for_features(features, n, model, weights): recommendations for
 * a visitor known only by features (attributes such as 'region:north' for
 * hybrid models, features of interest such as 'genre:drama' for content
 * models); the popular items when the model knows none of them.
 */
Datum
recsys_recommend_for_features(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 1);
	char	   *model = ServeModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nnames;
	char	  **names;
	float	   *weights;

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	if (info->method->score_features == NULL)
		MethodNotSupported(info->method, info->name, "recommend_for_features");
	deconstruct_array_builtin(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, &elems, &elem_nulls, &nnames);
	if (nnames == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must not be empty"),
				 errhint("For example ARRAY['region:north', 'age:25-34'].")));
	names = palloc(sizeof(char *) * nnames);
	weights = palloc(sizeof(float) * nnames);
	for (int j = 0; j < nnames; j++)
	{
		if (elem_nulls[j])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("features must not contain nulls")));
		names[j] = TextDatumGetCString(elems[j]);
		weights[j] = 1.0f;
	}
	if (!PG_ARGISNULL(3))
	{
		int			nw;
		double	   *w = ArrayGetFloat8(PG_GETARG_ARRAYTYPE_P(3), &nw);

		if (nw != nnames)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("weights has %d elements, but features has %d", nw, nnames)));
		for (int j = 0; j < nnames; j++)
		{
			if (isnan(w[j]) || isinf(w[j]) || w[j] < 0.0 || w[j] > FLT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("weight %g of feature \"%s\" is not a finite real >= 0",
								w[j], names[j])));
			weights[j] = (float) w[j];
		}
	}

	e = CacheGetModel(info);
	if (!info->method->score_features(e, names, weights, nnames, info->name, e->scores))
		ScorePopularity(&e->items, e->scores);
	/* Weights near real's maximum can overflow a score: refuse, never rank NaN */
	for (int i = 0; i < e->items.n; i++)
		if (!isfinite(e->scores[i]))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the weights given to recommend_for_features make the scores of model \"%s\" overflow",
							info->name),
					 errhint("Use smaller weights: only their ratios matter to the ranking of a content model; a hybrid model's weights scale the visitor's factors.")));
	if (info->text_items)
	{
		/*
		 * No id argument to overload on: a text-keyed model's items come
		 * back as its numbers, which recsys.id_map maps (documented)
		 */
		ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
		int			count = TopK(e->scores, e->items.ids, e->items.n,
								 Min(n, e->items.n), e->result);

		for (int j = 0; j < count; j++)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = Int64GetDatum(e->items.ids[e->result[j]]);
			values[1] = Float4GetDatum(e->scores[e->result[j]]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		return (Datum) 0;
	}
	ServeTopK(fcinfo, e, info, n);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_explain_features);

/*
 * explain_features(user_id, item_id, n, model): the n features of the item
 * that contribute most to its score for the user, and a last row with a
 * NULL feature holding the rest, so that the rows add up to the score.
 */
Datum
recsys_explain_features(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 2);
	char	   *model = ServeModelArg(fcinfo, 3);
	ReturnSetInfo *rsinfo;
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	ServeHistory h;
	int32		item;
	int			nf;
	float	   *contrib;
	int64	   *order;
	int32	   *chosen;
	int			count;
	double		score;
	double		shown = 0.0;
	const ModelFeatures *f;

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return (Datum) 0;
	if (!ExplainTarget(fcinfo, model, true, &info, &e, &user, &item, &h))
		return (Datum) 0;

	f = &e->item_features;
	nf = (int) (f->rows.indptr[item + 1] - f->rows.indptr[item]);
	contrib = palloc(sizeof(float) * Max(nf, 1));
	score = info->method->explain_features(e, &user, &h, item, contrib);

	/* Ties by feature number, i.e. by name */
	order = palloc(sizeof(int64) * Max(nf, 1));
	for (int x = 0; x < nf; x++)
		order[x] = f->rows.indices[f->rows.indptr[item] + x];
	n = Min(n, Max(nf, 1));
	chosen = palloc(sizeof(int32) * n);
	count = TopK(contrib, order, nf, n, chosen);
	for (int j = 0; j < count; j++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(f->names[order[chosen[j]]]);
		values[1] = Float4GetDatum(contrib[chosen[j]]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		shown += contrib[chosen[j]];
	}
	ExplainRest(fcinfo, score - shown);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_refresh_item);

/*
 * refresh_item(model, item_id): compute one item's row from its current
 * features (in the model's feature relations) and interactions (in its
 * source), read with the caller's privileges, and store it: a new product
 * goes live without a retrain.  Features the model does not know are left
 * out.  Returns false (and removes the item) when it has neither.
 */
Datum
recsys_refresh_item(PG_FUNCTION_ARGS)
{
	char	   *model = ServeModelArg(fcinfo, 0);
	int64		item_id;
	RecsysModelInfo *info;
	CacheEntry *e;
	RatingsSource src;
	RatingsUser users;
	RecsysSparse feats;
	MethodItemRow row;
	bool		known;
	char	   *item_text;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("item_id must not be null")));

	/* As refresh_user: side by side with refreshes, never during a training */
	info = CatalogLookupModel(model);
	CatalogLockModelName(info->name, false);
	info = CatalogLookupModelLatest(info->name);
	CatalogRequireTrain(info);
	if (info->method->refresh_item == NULL)
		MethodNotSupported(info->method, info->name, "refresh_item");
	e = CacheGetModel(info);
	item_id = IdsItemArg(fcinfo, 1, e, info, &item_text);
	known = (!info->text_items || item_id != IDS_UNKNOWN) && IdMapLookup(e->index, item_id) >= 0;

	memset(&src, 0, sizeof(src));
	src.relid = RatingsSourceOid(info->source);
	src.user_col = info->user_col;
	src.item_col = info->item_col;
	src.value_col = info->value_col;
	src.sum_duplicates = !info->method->explicit_values;
	if (info->text_users)
	{
		/* The item's users as the model's ids (the read swaps the sides) */
		src.resolve = IdsResolveUser;
		src.resolve_arg = info;
	}
	RatingsPrepare(&src, &info->params);
	RatingsLoadItem(&src, item_id, item_text, &users);

	/* The item's features, as numbers of the model's vocabulary */
	EntityFeatures(info, &e->item_features, false, item_id, item_text, &feats);

	if (users.n == 0 && feats.nnz == 0)
	{
		/* Nothing left to know the item by: it leaves the model */
		if (known)
		{
			RecsysFactors none;

			memset(&none, 0, sizeof(none));
			CatalogUpdateItems(info, &none, &item_id, 1);
			CatalogStoreEntityFeatures(info, false, item_id, NULL, NULL, 0);
			CatalogBumpVersion(info, 0, 1, 0);
		}
		PG_RETURN_BOOL(false);
	}

	/* A text id the model does not know yet gets a new model id */
	if (info->text_items && item_id == IDS_UNKNOWN)
		item_id = CatalogInternalId(info, false, item_text, true);

	memset(&row, 0, sizeof(row));
	row.factors = palloc0(sizeof(float) * Max(info->factors, 1));
	info->method->refresh_item(e, info, item_id, &users, &feats, &row);
	/* Weights near real's maximum overflow the solve: never store such a row */
	{
		bool		finite = isfinite(row.bias);

		for (int d = 0; d < info->factors && finite; d++)
			finite = isfinite(row.factors[d]);
		for (int j = 0; j < row.nfeatures && finite; j++)
			finite = isfinite(row.weights[j]);
		if (!finite)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("refresh_item of item %s of model \"%s\" gives values out of the range of real",
							item_text ? item_text : psprintf(INT64_FORMAT, item_id), info->name),
					 errhint("Its interaction values or feature weights are too large: scale them down, then call refresh_item again.")));
	}
	CatalogStoreItem(info, item_id, row.factors, row.bias, row.popularity);
	CatalogStoreEntityFeatures(info, false, item_id, row.features, row.weights, row.nfeatures);
	/* A new version: every backend reloads the item data */
	CatalogBumpVersion(info, 0, known ? 0 : -1, 0);
	PG_RETURN_BOOL(true);
}
