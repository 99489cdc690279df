/*-------------------------------------------------------------------------
 *
 * recommend.c
 *	  Serving: recommend(), predict(), similar_items() and similar_users().
 *
 * Each call resolves the model (one catalog probe), takes its item data
 * from the backend cache, and has the model's method score every item into
 * a reused buffer (its score slot: one matrix-vector product for factor
 * models, a sum over neighbour lists for item-neighbour models; the
 * arithmetic is in score.c); excluded items get a sentinel score and a
 * bounded heap picks the best n.  Nothing is allocated per call in
 * proportion to the catalog.
 *
 * recommend() for a known user of a factor model goes through compact
 * scoring (src/compact.c) where it pays: bounds of every item's score from
 * 8-bit codes, the same exclusions applied to the upper bounds, and exact
 * scores only for the items that can still make the top n.  The answer is
 * the one scoring every item exactly gives, to the bit.
 *
 * Answers for ids the model does not know (documented in doc/serving.md):
 *	- recommend() for an unknown user: the most popular training items,
 *	  scored by their number of training interactions (a method whose
 *	  scores are not personal, like popular, scores them as anyone).
 *	- predict(): the method's prediction for a user with no history (for
 *	  explicit ALS the global mean plus whichever biases are known).
 *	- similar_items(), similar_users() for an unknown id: no rows.
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
#include "compact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "ids.h"
#include "method.h"
#include "miscadmin.h"
#include "parallel.h"
#include "recommend.h"
#include "score.h"
#include "shard.h"
#include "topk.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

/* The model argument as a C string, or NULL for the default model */
char *
ServeModelArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* Check and return n, the number of rows asked for */
int
ServeCountArg(FunctionCallInfo fcinfo, int argno)
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

/* Emit the best `count` rows (ids[chosen[j]], scores[chosen[j]]) */
void
ServeEmit(FunctionCallInfo fcinfo, CacheEntry *e, const RecsysModelInfo *info,
		  bool users, const int64 *ids, const float *scores,
		  const int32 *chosen, int count)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			type = TupleDescAttr(rsinfo->setDesc, 0)->atttypid;

	/* bigint results would be the model's internal numbers: refuse */
	if (type == INT8OID && count > 0 &&
		(users ? info->text_users : info->text_items))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("model \"%s\" is keyed by text %s ids, which a bigint result cannot hold",
						info->name, users ? "user" : "item"),
				 errhint("Call the text overload, e.g. recommend(user_id::text, 10, '%s'); recommend_for_features results can be joined to recsys.id_map.",
						 info->name)));

	for (int j = 0; j < count; j++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		/* bigint, or text for the overloads taking the source's ids */
		values[0] = type == INT8OID ? Int64GetDatum(ids[chosen[j]]) :
			IdsDatum(e, info, users, ids[chosen[j]], type);
		values[1] = Float4GetDatum(scores[chosen[j]]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/*
 * Map (item id, value) pairs onto the cached items, dropping ids the model
 * does not know.
 */
void
ServeMapHistory(const CacheEntry *e, const int64 *items, const float *values,
				int n, ServeHistory *h)
{
	h->rows = palloc(sizeof(int32) * Max(n, 1));
	h->values = palloc(sizeof(float) * Max(n, 1));
	h->ids = palloc(sizeof(int64) * Max(n, 1));
	h->n = 0;
	h->prior = NULL;
	for (int j = 0; j < n; j++)
	{
		int32		i = IdMapLookup(e->index, items[j]);

		if (i < 0)
			continue;
		h->rows[h->n] = i;
		h->ids[h->n] = items[j];
		h->values[h->n] = values[j];
		h->n++;
	}
}

/*
 * Score every item into e->scores for a user row (found or not): through
 * the method, or by popularity for a user a personal method does not know.
 */
void
ServeScoreUser(CacheEntry *e, const RecsysUserRow *user)
{
	const RecsysMethod *m = e->method;
	ServeHistory h;

	if (!user->found && m->personal)
	{
		ScorePopularity(&e->items, e->scores);
		return;
	}
	ServeMapHistory(e, user->seen, user->seen_values, user->nseen, &h);
	m->score(e, user, &h, e->scores);
}

/* Give the listed item ids (unknown ones ignored) the excluded score */
void
ServeExcludeIds(const CacheEntry *e, const int64 *ids, int nids, float *scores)
{
	for (int j = 0; j < nids; j++)
	{
		int32		i = IdMapLookup(e->index, ids[j]);

		if (i >= 0)
			scores[i] = TOPK_EXCLUDED;
	}
}

/*
 * Keep only the listed candidate items: every other item gets the excluded
 * score.  Costs O(nitems + ncandidates); the scratch is sized by the
 * candidate list (which may repeat ids), never by the catalog.
 */
static void
KeepCandidates(CacheEntry *e, const int64 *ids, int nids, float *scores)
{
	int			nkept = 0;
	int32	   *rows = palloc(sizeof(int32) * Max(nids, 1));
	float	   *saved = palloc(sizeof(float) * Max(nids, 1));

	for (int j = 0; j < nids; j++)
	{
		int32		i = IdMapLookup(e->index, ids[j]);

		if (i >= 0)
		{
			rows[nkept] = i;
			saved[nkept++] = scores[i];
		}
	}
	for (int i = 0; i < e->items.n; i++)
		scores[i] = TOPK_EXCLUDED;
	for (int j = 0; j < nkept; j++)
		scores[rows[j]] = saved[j];
	pfree(rows);
	pfree(saved);
}

/* Pick the best n of e->scores and emit them */
void
ServeTopK(FunctionCallInfo fcinfo, CacheEntry *e, const RecsysModelInfo *info,
		  int n)
{
	int			count = TopK(e->scores, e->items.ids, e->items.n,
							 Min(n, e->items.n), e->result);

	ServeEmit(fcinfo, e, info, false, e->items.ids, e->scores, e->result, count);
}

/*
 * Whether recommend() scores this user through compact codes: a user the
 * model knows, of a method whose scores are ScoreFactors' (the score slot
 * of factor models, FactorScore: CompactTopK reproduces exactly that), a
 * model with codes, and recsys.compact_scoring says it pays for this n.
 */
static bool
UseCompact(const CacheEntry *e, const RecsysUserRow *user, int n)
{
	return user->found && e->method->score == FactorScore &&
		e->items.k > 0 && CompactWanted(e->compact, Min(n, e->items.n));
}

PG_FUNCTION_INFO_V1(recsys_recommend);

/*
 * recommend(user_id, n, model, exclude_seen, candidates, exclude): the n
 * best items for a user, best first.
 */
Datum
recsys_recommend(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 1);
	char	   *model = ServeModelArg(fcinfo, 2);
	bool		exclude_seen;
	int64	   *candidates;
	int64	   *exclude;
	int			ncandidates;
	int			nexclude;
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	bool		compact = false;
	float		base = 0.0f;
	float	   *marks;			/* what exclusions mark: scores or bounds */

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("exclude_seen must not be null")));
	exclude_seen = PG_GETARG_BOOL(3);

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	e = CacheGetModel(info);
	candidates = IdsArrayArg(fcinfo, 4, e, info, false, &ncandidates);
	exclude = IdsArrayArg(fcinfo, 5, e, info, false, &nexclude);
	CatalogLoadUser(info, IdsUserArg(fcinfo, 0, info, false, NULL), false, &user);

	/* Bounds from the codes (base as FactorScore computes it), or scores */
	if (UseCompact(e, &user, n))
	{
		base = (float) (e->config.mean + user.bias);
		compact = CompactBounds(e->compact, user.factors, base, e->zero_bias,
								e->compact_upper, e->compact_lower);
	}
	if (compact)
		marks = e->compact_upper;
	else
	{
		ServeScoreUser(e, &user);
		marks = e->scores;
	}

	/* Excluded items get TOPK_EXCLUDED: never chosen, either way */
	if (ncandidates >= 0)
		KeepCandidates(e, candidates, ncandidates, marks);
	if (user.found && exclude_seen)
		ServeExcludeIds(e, user.seen, user.nseen, marks);
	if (nexclude > 0)
		ServeExcludeIds(e, exclude, nexclude, marks);

	if (compact)
	{
		int			m = Min(n, e->items.n);
		int32	   *chosen = palloc(sizeof(int32) * m);
		int			count;

		count = CompactTopK(e->compact, &e->items, e->zero_bias, user.factors,
							base, e->compact_upper, e->compact_lower, m,
							e->scores, e->result, chosen);
		ServeEmit(fcinfo, e, info, false, e->items.ids, e->scores, chosen, count);
	}
	else
		ServeTopK(fcinfo, e, info, n);
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
	char	   *model = ServeModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	ServeHistory h;
	int32		item;
	double		result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();

	info = CatalogLookupModel(model);
	e = CacheGetModel(info);
	CatalogLoadUser(info, IdsUserArg(fcinfo, 0, info, false, NULL), false, &user);
	item = IdsItemRow(fcinfo, 1, e, info);
	if (!user.found)
	{
		/* A user with no history: no bias, zero factors */
		user.factors = palloc0(sizeof(float) * Max(e->items.k, 1));
		user.bias = 0.0f;
	}

	/* An item the model does not know: the mean and the user's bias */
	if (item < 0)
		result = e->config.mean + user.bias;
	else
	{
		ServeMapHistory(e, user.seen, user.seen_values, user.nseen, &h);
		result = info->method->predict(e, &user, &h, item);
	}
	PG_RETURN_FLOAT4((float4) result);
}

PG_FUNCTION_INFO_V1(recsys_similar_items);

/*
 * similar_items(item_id, n, model): the n items most similar to the item,
 * by the method (cosine similarity of factors, or the item's neighbour
 * list), the item itself excluded; no rows for an item the model does not
 * know.
 */
Datum
recsys_similar_items(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 1);
	char	   *model = ServeModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	int32		item;

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	if (info->method->similar_items == NULL)
		MethodNotSupported(info->method, info->name, "similar_items");
	e = CacheGetModel(info);
	item = IdsItemRow(fcinfo, 0, e, info);
	if (item < 0)
		return (Datum) 0;

	info->method->similar_items(e, item, e->scores);
	ServeTopK(fcinfo, e, info, n);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_similar_users);

/*
 * similar_users(user_id, n, model): the n users with the highest cosine
 * similarity of factors, the user excluded; no rows for an unknown user.
 */
Datum
recsys_similar_users(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 1);
	char	   *model = ServeModelArg(fcinfo, 2);
	RecsysModelInfo *info;
	CacheEntry *e;
	int32		user;
	float	   *scores;
	int32	   *chosen;
	int			count;

	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	info = CatalogLookupModel(model);
	if (!info->method->factors)
		MethodNotSupported(info->method, info->name, "similar_users");
	e = CacheGetModel(info);
	CacheLoadUsers(e, info);
	{
		int64		id = IdsUserArg(fcinfo, 0, info, false, NULL);

		user = info->text_users && id == IDS_UNKNOWN ? -1 : IdMapLookup(e->user_index, id);
	}
	if (user < 0)
		return (Datum) 0;

	/* Users outnumber items: per-call buffers, freed with the call */
	scores = palloc_extended(sizeof(float) * e->users.n, MCXT_ALLOC_HUGE);
	n = Min(n, e->users.n);
	chosen = palloc(sizeof(int32) * n);
	ScoreCosine(&e->users, e->user_norms, user, scores);
	count = TopK(scores, e->users.ids, e->users.n, n, chosen);
	ServeEmit(fcinfo, e, info, true, e->users.ids, scores, chosen, count);
	return (Datum) 0;
}

/* Users scored per sgemm in recommend_all */
#define BATCH_USERS 256

/* Users per thread task in recommend_all: one small sgemm and its top-n */
#define BATCH_TASK_USERS 16

/*
 * Score users [begin, end) of the current batch against every item (one
 * matrix product) and pick each one's best n (no PostgreSQL calls: runs on
 * worker threads; false on a failure, reported by the caller).
 */
static bool
BatchBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	ServeBatch *b = (ServeBatch *) arg;
	const RecsysFactors *it = &b->e->items;
	int			nitems = it->n;

	if (!ScoreFactorsBlock(it, b->e->zero_bias, b->users + (Size) begin * it->k,
						   b->base + begin, end - begin,
						   b->scores + (Size) begin * nitems))
		return false;
	for (int j = begin; j < end; j++)
	{
		float	   *s = b->scores + (Size) j * nitems;

		if (b->exclude_seen)
			ServeExcludeIds(b->e, b->rows[j].seen, b->rows[j].nseen, s);
		b->counts[j] = TopK(s, it->ids, nitems, b->n, b->chosen + (Size) j * b->n);
	}
	return true;
}

/*
 * Set up b for recommend_all's batches over entry e (n best items each);
 * returns the batch size: at most BATCH_USERS users, a score block of at
 * most about 64 MB whatever the catalog size.  Shard-local recommend_all
 * (shard_serve.c) scores the coordinator's batches with the same sizes, so
 * that every user is in the same matrix product as on the coordinator.
 */
int
ServeBatchInit(ServeBatch *b, CacheEntry *e, int n, bool exclude_seen)
{
	int			batch = ServeBatchSize(e->items.n);

	b->e = e;
	b->n = Min(n, e->items.n);
	b->exclude_seen = exclude_seen;
	b->nthreads = ParallelThreads();
	b->users = palloc(sizeof(float) * Max(batch * e->items.k, 1));
	b->base = palloc(sizeof(float) * batch);
	b->scores = palloc_extended(sizeof(float) * batch * e->items.n, MCXT_ALLOC_HUGE);
	b->chosen = palloc(sizeof(int32) * batch * Max(b->n, 1));
	b->counts = palloc(sizeof(int) * batch);
	return batch;
}

/* The number of users recommend_all scores per batch, for nitems items */
int
ServeBatchSize(int nitems)
{
	return (int) Max(1, Min(BATCH_USERS, (64 * 1024 * 1024 / sizeof(float)) / Max(nitems, 1)));
}

/*
 * Score one batch of users (at most the batch size) into b->scores,
 * b->chosen and b->counts: factor models a block of users per matrix
 * product on the training threads, other methods one user at a time
 * through their score slot.
 */
void
ServeBatchScore(ServeBatch *b, const RecsysUserRow *rows, int nrows)
{
	CacheEntry *e = b->e;
	int			k = e->items.k;
	int			nitems = e->items.n;

	b->rows = rows;
	if (e->method->factors)
	{
		for (int j = 0; j < nrows; j++)
		{
			memcpy(b->users + (Size) j * k, rows[j].factors, sizeof(float) * k);
			b->base[j] = (float) (e->config.mean + rows[j].bias);
		}
		if (!ParallelFor(nrows, BATCH_TASK_USERS, b->nthreads, BatchBody, b))
			elog(ERROR, "scoring a block of users failed, please report a bug");
	}
	else
	{
		for (int j = 0; j < nrows; j++)
		{
			float	   *s = b->scores + (Size) j * nitems;

			CHECK_FOR_INTERRUPTS();
			ServeScoreUser(e, &rows[j]);
			memcpy(s, e->scores, sizeof(float) * nitems);
			if (b->exclude_seen)
				ServeExcludeIds(e, rows[j].seen, rows[j].nseen, s);
			b->counts[j] = TopK(s, e->items.ids, nitems, b->n, b->chosen + (Size) j * b->n);
		}
	}
}

/* What recommend_all's batches share: the batch scratch and the call */
typedef struct BatchState
{
	ServeBatch	b;
	FunctionCallInfo fcinfo;
} BatchState;

/* Score one batch of users and emit their rows */
static void
BatchUsers(void *arg, const int64 *ids, const RecsysUserRow *rows, int nrows)
{
	BatchState *bs = (BatchState *) arg;
	ServeBatch *b = &bs->b;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) bs->fcinfo->resultinfo;
	CacheEntry *e = b->e;
	int			nitems = e->items.n;

	ServeBatchScore(b, rows, nrows);
	for (int j = 0; j < nrows; j++)
	{
		const float *s = b->scores + (Size) j * nitems;
		const int32 *chosen = b->chosen + (Size) j * b->n;

		for (int r = 0; r < b->counts[j]; r++)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			values[0] = Int64GetDatum(ids[j]);
			values[1] = Int64GetDatum(e->items.ids[chosen[r]]);
			values[2] = Float4GetDatum(s[chosen[r]]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
}

PG_FUNCTION_INFO_V1(recsys_recommend_all);

/*
 * recommend_all(n, model, exclude_seen): the n best items for every user of
 * the model; factor models score a block of users at a time with one
 * matrix product per block (BLAS-3) on the training threads.
 */
Datum
recsys_recommend_all(PG_FUNCTION_ARGS)
{
	int			n = ServeCountArg(fcinfo, 0);
	char	   *model = ServeModelArg(fcinfo, 1);
	RecsysModelInfo *info;
	BatchState	b;
	int			batch;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("exclude_seen must not be null")));
	InitMaterializedSRF(fcinfo, RECSYS_SRF_FLAGS);

	info = CatalogLookupModel(model);
	if (info->text_users || info->text_items)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("recommend_all serves models keyed by integers, and model \"%s\" is keyed by text",
						info->name),
				 errhint("Call recommend for each user, e.g. SELECT u.id, r.* FROM users u CROSS JOIN LATERAL recommend(u.id, 10, '%s') r.",
						 info->name)));
	/* A model trained from postgres_fdw shards: scored on them */
	if (DistributedRecommendAll(fcinfo, info, n, PG_GETARG_BOOL(2)))
		return (Datum) 0;
	b.fcinfo = fcinfo;
	batch = ServeBatchInit(&b.b, CacheGetModel(info), n, PG_GETARG_BOOL(2));
	CatalogForEachUserBatch(info, batch, false, BatchUsers, &b);
	return (Datum) 0;
}
