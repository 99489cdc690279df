/*-------------------------------------------------------------------------
 *
 * shard_serve.c
 *	  The shard side of shard-local evaluation (distributed_serve.c drives
 *	  it).
 *
 * evaluate() on a test table partitioned by user over postgres_fdw shards
 * scores each user where its test rows are, in two calls in one session:
 *
 *	- shard_eval_open reads this shard's test pairs (duplicates merged as
 *	  evaluate merges them: a rating's mean, an event count's sum) into the
 *	  session, with the connecting role's privileges and row-level
 *	  security, and returns the distinct user ids;
 *	- shard_eval_score receives the model's items (ids, factors, biases,
 *	  popularity) and those users' rows (factors, bias, training items),
 *	  ranks every user's items with the serving code (FactorScore or
 *	  ScorePopularity, then TopK: the ranking recommend() returns) and the
 *	  popular baseline, and returns only sums and counts of the metrics
 *	  (evaluate.c's per-user functions) and which items the top k held
 *	  (coverage); it frees the session's state.
 *
 * Nothing is written: a failed or cancelled evaluation leaves only the
 * session's memory, which goes with its backend.
 *
 * IDENTIFICATION
 *	  src/shard_serve.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "cache.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "evaluate.h"
#include "funcapi.h"
#include "idmap.h"
#include "method.h"
#include "miscadmin.h"
#include "recommend.h"
#include "score.h"
#include "ratings.h"
#include "shard.h"
#include "topk.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* Test rows fetched per cursor round trip (bounded memory per fetch) */
#define EVAL_FETCH 10000

/* The test pairs of this shard, read by shard_eval_open, by user */
typedef struct EvalState
{
	MemoryContext cxt;
	int			nusers;
	int64	   *users;			/* distinct, ascending */
	int64	   *start;			/* nusers + 1: each user's first pair */
	int64		npairs;
	int64	   *items;
	double	   *values;
	bool	   *vnull;
} EvalState;

static EvalState *eval_state = NULL;

/* Free the session's evaluation state */
static void
EvalClose(void)
{
	if (eval_state != NULL)
	{
		MemoryContextDelete(eval_state->cxt);
		eval_state = NULL;
	}
}

/* Read the test pairs into s (in s's context) */
static void
EvalRead(EvalState *s, Oid relid, const char *ucol, const char *icol,
		 const char *vcol, bool mean_merge)
{
	char	   *rel = RatingsSourceName(relid);	/* errors for an unknown oid */
	char	   *vexpr;
	char	   *sql;
	Portal		portal;
	int64		cap = 1024;
	int64		ucap = 256;
	MemoryContext cxt = CurrentMemoryContext;

	if (vcol == NULL)
		vexpr = "NULL::pg_catalog.float8";
	else
		vexpr = psprintf("pg_catalog.%s(s.%s::pg_catalog.float8)",
						 mean_merge ? "avg" : "sum", quote_identifier(vcol));
	/* The pairs as evaluate's t: ids as bigint, duplicates merged */
	sql = psprintf("SELECT s.%1$s::pg_catalog.int8, s.%2$s::pg_catalog.int8, %3$s "
				   "FROM %4$s s WHERE s.%1$s IS NOT NULL AND s.%2$s IS NOT NULL "
				   "GROUP BY 1, 2 ORDER BY 1, 2",
				   quote_identifier(ucol), quote_identifier(icol), vexpr, rel);

	s->items = palloc(sizeof(int64) * cap);
	s->values = palloc(sizeof(double) * cap);
	s->vnull = palloc(sizeof(bool) * cap);
	s->users = palloc(sizeof(int64) * ucap);
	s->start = palloc(sizeof(int64) * (ucap + 1));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	portal = SPI_cursor_open_with_args(NULL, sql, 0, NULL, NULL, NULL, true,
									   CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		MemoryContext spi_cxt;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, EVAL_FETCH);
		if (SPI_processed == 0)
			break;
		spi_cxt = MemoryContextSwitchTo(cxt);
		for (uint64 j = 0; j < SPI_processed; j++)
		{
			HeapTuple	tup = SPI_tuptable->vals[j];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		u = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			int64		i = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			Datum		v = SPI_getbinval(tup, desc, 3, &isnull);

			if (s->npairs == cap)
			{
				cap *= 2;
				s->items = repalloc_huge(s->items, sizeof(int64) * cap);
				s->values = repalloc_huge(s->values, sizeof(double) * cap);
				s->vnull = repalloc_huge(s->vnull, sizeof(bool) * cap);
			}
			if (s->nusers == 0 || s->users[s->nusers - 1] != u)
			{
				if (s->nusers == ucap)
				{
					ucap *= 2;
					s->users = repalloc_huge(s->users, sizeof(int64) * ucap);
					s->start = repalloc_huge(s->start, sizeof(int64) * (ucap + 1));
				}
				s->start[s->nusers] = s->npairs;
				s->users[s->nusers++] = u;
			}
			s->items[s->npairs] = i;
			s->vnull[s->npairs] = isnull;
			s->values[s->npairs] = isnull ? 0.0 : DatumGetFloat8(v);
			s->npairs++;
		}
		MemoryContextSwitchTo(spi_cxt);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	s->start[s->nusers] = s->npairs;
}

PG_FUNCTION_INFO_V1(recsys_shard_eval_open);

/*
 * shard_eval_open(test, user_col, item_col, value_col, mean_merge): read
 * this shard's test pairs into the session; returns its distinct user ids
 * (ascending, packed).
 */
Datum
recsys_shard_eval_open(PG_FUNCTION_ARGS)
{
	MemoryContext cxt;
	MemoryContext old;
	EvalState  *s;
	bytea	   *result;

	for (int a = 0; a < 5; a++)
		if (a != 3 && PG_ARGISNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of shard_eval_open must not be null", a + 1)));
	EvalClose();

	/* The state becomes the session's only once complete */
	cxt = AllocSetContextCreate(TopMemoryContext, "recsys shard evaluation",
								ALLOCSET_DEFAULT_SIZES);
	s = MemoryContextAllocZero(cxt, sizeof(EvalState));
	s->cxt = cxt;
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		EvalRead(s, PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)),
				 NameStr(*PG_GETARG_NAME(2)),
				 PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3)),
				 PG_GETARG_BOOL(4));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	eval_state = s;
	result = ShardPack(s->users, s->nusers, sizeof(int64));
	PG_RETURN_BYTEA_P(result);
}

/* Slots of shard_eval_score's sums (a packed float8 array) */
#define ES_USERS	0			/* users with relevant items */
#define ES_MODEL	1			/* 6 ranking-metric sums of the model */
#define ES_BASE		7			/* 6 of the popular baseline */
#define ES_AUC		13			/* sum, count of the model's AUC */
#define ES_BAUC		15			/* sum, count of the baseline's */
#define ES_ERR		17			/* count, sum |e|, sum e^2 of predict */
#define ES_BERR		20			/* the same for the global mean */
#define ES_SLOTS	23

/* Slots of shard_eval_score's parameters (a packed float8 array) */
#define EP_K		0			/* the cutoff k */
#define EP_NRANK	1			/* how many items recommend() ranks */
#define EP_THRESHOLD 2			/* relevance threshold, NaN for none */
#define EP_AUC		3			/* compute AUC (0/1) */
#define EP_ERROR	4			/* rating error of predict (0/1) */
#define EP_MEAN		5			/* the cached model's mean (predict) */
#define EP_GLOBAL	6			/* recsys.models.global_mean (baseline) */
#define EP_ZERO_BIAS 7			/* every item bias is 0 (0/1) */
#define EP_FACTORS	8			/* k of the factors */
#define EP_SLOTS	9

/* Add the ranking metrics of rec against rel into sums[0..5] */
static void
AddMetrics(const int64 *rec, int nrec, const IdSet *rel, int32 k, double *sums)
{
	RankMetrics m;

	if (!RankMetricsCompute(rec, nrec, rel, k, &m))
		return;
	sums[0] += m.precision;
	sums[1] += m.recall;
	sums[2] += m.ndcg;
	sums[3] += m.ap;
	sums[4] += m.hit;
	sums[5] += m.rr;
}

/*
 * The model's items as the coordinator packed them (ids, factors, biases,
 * popularity) into a zeroed cache entry e, with their id index; enough for
 * the factor models' score and predict slots.
 */
static void
UnpackItems(CacheEntry *e, const char *data, Size len, int k)
{
	RecsysFactors *it = &e->items;
	int64		n;

	memset(e, 0, sizeof(CacheEntry));
	it->ids = ShardUnpackNext(&data, &len, sizeof(int64), &n);
	it->n = (int) n;
	it->k = k;
	it->factors = ShardUnpackNext(&data, &len, sizeof(float), &n);
	if (n != (int64) it->n * it->k)
		elog(ERROR, "item factors block has %lld floats, expected %lld",
			 (long long) n, (long long) it->n * it->k);
	it->bias = ShardUnpackNext(&data, &len, sizeof(float), &n);
	if (n != it->n)
		elog(ERROR, "item bias block has %lld floats, expected %d", (long long) n, it->n);
	it->popularity = ShardUnpackNext(&data, &len, sizeof(int64), &n);
	if (n != it->n)
		elog(ERROR, "item popularity block has %lld values, expected %d", (long long) n, it->n);
	e->index = IdMapCreate(it->n);
	for (int i = 0; i < it->n; i++)
		IdMapSet(e->index, it->ids[i], i);
	e->scores = palloc_extended(sizeof(float) * Max(it->n, 1), MCXT_ALLOC_HUGE);
}

/* qsort comparator: items by popularity descending, then id ascending */
static const RecsysFactors *pop_items;

static int
ComparePopularity(const void *a, const void *b)
{
	int32		x = *(const int32 *) a;
	int32		y = *(const int32 *) b;
	int64		px = pop_items->popularity[x];
	int64		py = pop_items->popularity[y];

	if (px != py)
		return px > py ? -1 : 1;
	return (pop_items->ids[x] > pop_items->ids[y]) - (pop_items->ids[x] < pop_items->ids[y]);
}

/*
 * Score every user of the session's test pairs; fills sums (ES_SLOTS) and
 * the coverage marks of the model's and the baseline's top k (nitems each).
 */
static void
EvalScore(EvalState *s, const char *items_data, Size items_len,
		  const char *users_data, Size users_len, const double *p,
		  double *sums, uint8 *cov, uint8 *bcov)
{
	CacheEntry	e;
	RecsysFactors *it = &e.items;
	int64		n;
	int64		nseen_total;
	int32	   *seen_counts;
	float	   *ufactors;
	float	   *ubias;
	int64	   *seen;
	int32	   *pop_rows;
	int64	   *pop_ids;
	int64	   *rel = palloc(sizeof(int64) * Max(s->npairs, 1));
	int32	   *chosen;
	int64	   *rec;
	int64	   *brec;
	float	   *zero;
	int32		k = (int32) p[EP_K];
	int			nrank;
	bool		has_threshold = !isnan(p[EP_THRESHOLD]);
	IdSet		none = {NULL, 0};
	int64		seen_at = 0;

	UnpackItems(&e, items_data, items_len, (int) p[EP_FACTORS]);
	e.zero_bias = p[EP_ZERO_BIAS] != 0.0;
	e.config.mean = p[EP_MEAN];

	seen_counts = ShardUnpackNext(&users_data, &users_len, sizeof(int32), &n);
	if (n != s->nusers)
		elog(ERROR, "user block has %lld users, expected %d", (long long) n, s->nusers);
	ufactors = ShardUnpackNext(&users_data, &users_len, sizeof(float), &n);
	if (n != (int64) s->nusers * it->k)
		elog(ERROR, "user factors block has %lld floats, expected %lld",
			 (long long) n, (long long) s->nusers * it->k);
	ubias = ShardUnpackNext(&users_data, &users_len, sizeof(float), &n);
	if (n != s->nusers)
		elog(ERROR, "user bias block has %lld floats, expected %d", (long long) n, s->nusers);
	seen = ShardUnpackNext(&users_data, &users_len, sizeof(int64), &nseen_total);

	/* The baseline's ranking: popularity descending, ties by id (evaluate's pop) */
	pop_rows = palloc(sizeof(int32) * Max(it->n, 1));
	pop_ids = palloc(sizeof(int64) * Max(it->n, 1));
	for (int i = 0; i < it->n; i++)
		pop_rows[i] = i;
	pop_items = it;
	qsort(pop_rows, it->n, sizeof(int32), ComparePopularity);
	for (int i = 0; i < it->n; i++)
		pop_ids[i] = it->ids[pop_rows[i]];

	nrank = (int) Min(p[EP_NRANK], (double) it->n);
	chosen = palloc(sizeof(int32) * Max(nrank, 1));
	rec = palloc(sizeof(int64) * Max(nrank, 1));
	brec = palloc(sizeof(int64) * Max(k, 1));
	zero = palloc0(sizeof(float) * Max(it->k, 1));

	for (int u = 0; u < s->nusers; u++)
	{
		RecsysUserRow row;
		IdSet		seen_set;
		IdSet		rel_set;
		int			nrel = 0;
		bool		any = false;
		int			count;
		int			nbrec = 0;
		double		auc;

		CHECK_FOR_INTERRUPTS();
		memset(&row, 0, sizeof(row));
		row.found = seen_counts[u] >= 0;
		row.factors = row.found ? ufactors + (Size) u * it->k : zero;
		row.bias = row.found ? ubias[u] : 0.0f;
		row.nseen = row.found ? seen_counts[u] : 0;
		if (seen_at + row.nseen > nseen_total)
			elog(ERROR, "seen block is shorter than its counts");
		row.seen = seen + seen_at;
		seen_at += row.nseen;
		IdSetFromIds(row.seen, row.nseen, &seen_set);

		/* Relevant: test items at or above the threshold, not seen */
		for (int64 j = s->start[u]; j < s->start[u + 1]; j++)
		{
			if (has_threshold && (s->vnull[j] || !(s->values[j] >= p[EP_THRESHOLD])))
				continue;
			any = true;
			if (IdSetFind(&seen_set, s->items[j]) < 0)
				rel[nrel++] = s->items[j];
		}

		/* Rating error of predict() over every pair with a value */
		if (p[EP_ERROR] != 0.0)
			for (int64 j = s->start[u]; j < s->start[u + 1]; j++)
			{
				int32		item;
				double		predicted;

				if (s->vnull[j])
					continue;
				item = IdMapLookup(e.index, s->items[j]);
				predicted = item < 0 ? e.config.mean + row.bias :
					FactorPredict(&e, &row, NULL, item);
				RatingErrorAdd(sums + ES_ERR, (double) (float4) predicted, s->values[j]);
				RatingErrorAdd(sums + ES_BERR, p[EP_GLOBAL], s->values[j]);
			}

		if (!any || nrel == 0)
			continue;
		IdSetFromIds(rel, nrel, &rel_set);
		sums[ES_USERS] += 1.0;

		/* The model's ranking, as recommend(u, nrank) returns it */
		if (row.found)
		{
			FactorScore(&e, &row, NULL, e.scores);
			ServeExcludeIds(&e, row.seen, row.nseen, e.scores);
		}
		else
			ScorePopularity(it, e.scores);
		count = TopK(e.scores, it->ids, it->n, nrank, chosen);
		for (int r = 0; r < count; r++)
		{
			rec[r] = it->ids[chosen[r]];
			if (r < k)
				cov[chosen[r]] = 1;
		}

		/* The baseline's: the popular items minus the training items */
		for (int i = 0; i < it->n && nbrec < k; i++)
			if (IdSetFind(&seen_set, pop_ids[i]) < 0)
			{
				brec[nbrec++] = pop_ids[i];
				bcov[pop_rows[i]] = 1;
			}

		AddMetrics(rec, count, &rel_set, k, sums + ES_MODEL);
		AddMetrics(brec, nbrec, &rel_set, k, sums + ES_BASE);
		if (p[EP_AUC] != 0.0)
		{
			if (AucCompute(rec, count, &rel_set, &none, &auc))
			{
				sums[ES_AUC] += auc;
				sums[ES_AUC + 1] += 1.0;
			}
			if (AucCompute(pop_ids, it->n, &rel_set, &seen_set, &auc))
			{
				sums[ES_BAUC] += auc;
				sums[ES_BAUC + 1] += 1.0;
			}
		}
		pfree(seen_set.ids);
		pfree(rel_set.ids);
	}
}

PG_FUNCTION_INFO_V1(recsys_shard_eval_score);

/*
 * shard_eval_score(items, users, params): score the session's test users
 * (see the file header) and end the evaluation; returns (sums, coverage,
 * baseline_coverage).
 */
Datum
recsys_shard_eval_score(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	bytea	   *items;
	bytea	   *users;
	bytea	   *params;
	const double *p;
	int64		np;
	int64		nitems;
	double		sums[ES_SLOTS];
	uint8	   *cov;
	uint8	   *bcov;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "shard_eval_score must return a row");
	for (int a = 0; a < 3; a++)
		if (PG_ARGISNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of shard_eval_score must not be null", a + 1)));
	if (eval_state == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no shard-local evaluation is open in this session"),
				 errhint("These functions are called by a coordinator's evaluate(); see doc/scale-out.md.")));
	items = PG_GETARG_BYTEA_PP(0);
	users = PG_GETARG_BYTEA_PP(1);
	params = PG_GETARG_BYTEA_PP(2);
	p = ShardUnpack(VARDATA_ANY(params), VARSIZE_ANY_EXHDR(params), sizeof(double), &np);
	if (np != EP_SLOTS)
		elog(ERROR, "shard_eval_score got %lld parameters, expected %d", (long long) np, EP_SLOTS);
	{
		/* The item count, to size the coverage marks */
		const char *d = VARDATA_ANY(items);
		Size		len = VARSIZE_ANY_EXHDR(items);

		pfree(ShardUnpackNext(&d, &len, sizeof(int64), &nitems));
	}
	memset(sums, 0, sizeof(sums));
	cov = palloc0(Max(nitems, 1));
	bcov = palloc0(Max(nitems, 1));
	PG_TRY();
	{
		double		pcopy[EP_SLOTS];

		memcpy(pcopy, p, sizeof(pcopy));
		EvalScore(eval_state, VARDATA_ANY(items), VARSIZE_ANY_EXHDR(items),
				  VARDATA_ANY(users), VARSIZE_ANY_EXHDR(users), pcopy,
				  sums, cov, bcov);
	}
	PG_CATCH();
	{
		EvalClose();
		PG_RE_THROW();
	}
	PG_END_TRY();
	EvalClose();
	values[0] = PointerGetDatum(ShardPack(sums, ES_SLOTS, sizeof(double)));
	values[1] = PointerGetDatum(ShardPack(cov, nitems, 1));
	values[2] = PointerGetDatum(ShardPack(bcov, nitems, 1));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * Shard-local recommend_all: the model's items, kept in the session by
 * shard_recommend_open for the rounds of shard_recommend.
 */
typedef struct RecommendState
{
	MemoryContext cxt;
	CacheEntry	e;
	ServeBatch	b;
	int			batch;
} RecommendState;

static RecommendState *recommend_state = NULL;

/* Free the session's recommend_all state */
static void
RecommendClose(void)
{
	if (recommend_state != NULL)
	{
		MemoryContextDelete(recommend_state->cxt);
		recommend_state = NULL;
	}
}

/* Slots of shard_recommend_open's parameters (a packed float8 array) */
#define RP_MEAN		0			/* the cached model's mean */
#define RP_ZERO_BIAS 1			/* every item bias is 0 (0/1) */
#define RP_FACTORS	2			/* k */
#define RP_N		3			/* best items per user */
#define RP_EXCLUDE	4			/* exclude_seen (0/1) */
#define RP_SLOTS	5

PG_FUNCTION_INFO_V1(recsys_shard_recommend_open);

/*
 * shard_recommend_open(items, method, params): keep the model's items for
 * shard_recommend; returns the batch size it scores users in (the
 * coordinator checks it is its own).
 */
Datum
recsys_shard_recommend_open(PG_FUNCTION_ARGS)
{
	MemoryContext cxt;
	MemoryContext old;
	RecommendState *s;
	double		p[RP_SLOTS];
	int64		np;

	for (int a = 0; a < 3; a++)
		if (PG_ARGISNULL(a))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of shard_recommend_open must not be null", a + 1)));
	RecommendClose();
	cxt = AllocSetContextCreate(TopMemoryContext, "recsys shard recommend_all",
								ALLOCSET_DEFAULT_SIZES);
	s = MemoryContextAllocZero(cxt, sizeof(RecommendState));
	s->cxt = cxt;
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bytea	   *items = PG_GETARG_BYTEA_PP(0);
		bytea	   *params = PG_GETARG_BYTEA_PP(2);
		const RecsysMethod *m = MethodLookup(text_to_cstring(PG_GETARG_TEXT_PP(1)));

		memcpy(p, ShardUnpack(VARDATA_ANY(params), VARSIZE_ANY_EXHDR(params), sizeof(double), &np),
			   sizeof(double) * Min(np, RP_SLOTS));
		if (np != RP_SLOTS)
			elog(ERROR, "shard_recommend_open got %lld parameters, expected %d",
				 (long long) np, RP_SLOTS);
		if (!m->factors)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("shard-local recommend_all of method \"%s\" is not supported", m->name)));
		UnpackItems(&s->e, VARDATA_ANY(items), VARSIZE_ANY_EXHDR(items), (int) p[RP_FACTORS]);
		s->e.method = m;
		s->e.zero_bias = p[RP_ZERO_BIAS] != 0.0;
		s->e.config.mean = p[RP_MEAN];
		s->batch = ServeBatchInit(&s->b, &s->e, (int) p[RP_N], p[RP_EXCLUDE] != 0.0);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	recommend_state = s;
	PG_RETURN_INT32(s->batch);
}

PG_FUNCTION_INFO_V1(recsys_shard_recommend);

/*
 * shard_recommend(users): the best items of a round of users, scored in
 * the coordinator's batches (their sizes lead the block) as recommend_all
 * scores them; returns (counts, items, scores): per user the number of
 * items, then every user's items and scores one after the other.
 */
Datum
recsys_shard_recommend(PG_FUNCTION_ARGS)
{
	RecommendState *s = recommend_state;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	bytea	   *users;
	const char *d;
	Size		len;
	int64		nbatches;
	int64		nusers;
	int64		n;
	int64		nseen;
	int32	   *sizes;
	int32	   *seen_counts;
	float	   *factors;
	float	   *bias;
	int64	   *seen;
	int32	   *counts;
	int64	   *items;
	float	   *scores;
	int64		out = 0;
	int64		at = 0;
	int64		seen_at = 0;
	RecsysUserRow *rows;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "shard_recommend must return a row");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument 1 of shard_recommend must not be null")));
	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no shard-local recommend_all is open in this session"),
				 errhint("These functions are called by a coordinator's recommend_all(); see doc/scale-out.md.")));
	users = PG_GETARG_BYTEA_PP(0);
	d = VARDATA_ANY(users);
	len = VARSIZE_ANY_EXHDR(users);
	sizes = ShardUnpackNext(&d, &len, sizeof(int32), &nbatches);
	seen_counts = ShardUnpackNext(&d, &len, sizeof(int32), &nusers);
	factors = ShardUnpackNext(&d, &len, sizeof(float), &n);
	if (n != nusers * s->e.items.k)
		elog(ERROR, "user factors block has %lld floats, expected %lld",
			 (long long) n, (long long) nusers * s->e.items.k);
	bias = ShardUnpackNext(&d, &len, sizeof(float), &n);
	if (n != nusers)
		elog(ERROR, "user bias block has %lld floats, expected %lld", (long long) n, (long long) nusers);
	seen = ShardUnpackNext(&d, &len, sizeof(int64), &nseen);

	counts = palloc(sizeof(int32) * Max(nusers, 1));
	items = palloc_extended(sizeof(int64) * Max(nusers * s->b.n, 1), MCXT_ALLOC_HUGE);
	scores = palloc_extended(sizeof(float) * Max(nusers * s->b.n, 1), MCXT_ALLOC_HUGE);
	rows = palloc0(sizeof(RecsysUserRow) * s->batch);
	for (int64 b = 0; b < nbatches; b++)
	{
		int			size = sizes[b];

		CHECK_FOR_INTERRUPTS();
		if (size <= 0 || size > s->batch || at + size > nusers)
			elog(ERROR, "a batch of %d users does not fit this round", size);
		for (int j = 0; j < size; j++)
		{
			RecsysUserRow *r = &rows[j];

			r->found = true;
			r->factors = factors + (Size) (at + j) * s->e.items.k;
			r->bias = bias[at + j];
			r->nseen = seen_counts[at + j];
			if (r->nseen < 0 || seen_at + r->nseen > nseen)
				elog(ERROR, "seen block is shorter than its counts");
			r->seen = seen + seen_at;
			seen_at += r->nseen;
		}
		ServeBatchScore(&s->b, rows, size);
		for (int j = 0; j < size; j++)
		{
			const float *sc = s->b.scores + (Size) j * s->e.items.n;
			const int32 *chosen = s->b.chosen + (Size) j * s->b.n;

			counts[at + j] = s->b.counts[j];
			for (int r = 0; r < s->b.counts[j]; r++)
			{
				items[out] = s->e.items.ids[chosen[r]];
				scores[out] = sc[chosen[r]];
				out++;
			}
		}
		at += size;
	}
	if (at != nusers)
		elog(ERROR, "the batches hold %lld users, expected %lld", (long long) at, (long long) nusers);
	values[0] = PointerGetDatum(ShardPack(counts, nusers, sizeof(int32)));
	values[1] = PointerGetDatum(ShardPack(items, out, sizeof(int64)));
	values[2] = PointerGetDatum(ShardPack(scores, out, sizeof(float)));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
