/*-------------------------------------------------------------------------
 *
 * evaluate.c
 *	  Offline evaluation metrics: ranking metrics at k, AUC, rating error,
 *	  and parallel aggregates over users.
 *
 * Everything here works on plain id arrays, so the metrics are usable on
 * their own in SQL (for rankings from any source) and evaluate() (SQL, in
 * the install script) only has to assemble the arrays per user.  The
 * definitions are the usual ones of the literature (Manning, Raghavan and
 * Schuetze, "Introduction to Information Retrieval", ch. 8; Jarvelin and
 * Kekalainen, TOIS 2002, for DCG; Rendle et al., UAI 2009, for per-user
 * AUC), with binary relevance:
 *
 *		hits@k		= |{ distinct ids among the first k of recommended } & relevant|
 *		precision@k = hits@k / k
 *		recall@k	= hits@k / |relevant|
 *		DCG@k		= sum over positions i = 1..k holding a hit of 1 / log2(i + 1)
 *		NDCG@k		= DCG@k / IDCG@k, IDCG@k = sum i = 1..min(k, |relevant|) of 1 / log2(i + 1)
 *		AP@k		= (1 / min(k, |relevant|)) sum over hit positions i <= k of hits@i / i
 *		hit@k		= 1 if hits@k > 0, else 0
 *		RR@k		= 1 / (position of the first hit), 0 if none within k
 *
 * An id repeated in `recommended` counts at its first position only; the
 * later copies occupy their positions but are never hits, so no metric can
 * exceed 1 and precision@k equals the set formula.  `relevant` is a set
 * (duplicates are ignored).  With no relevant id every metric is NULL: the
 * user cannot be evaluated, and avg() and the ranking_metrics aggregate then
 * skip them.  Fewer than k recommendations count as misses (precision@k
 * still divides by k).
 *
 * The aggregates keep small fixed-size states (sums and counts), which add
 * up, so they have combine functions and run as partial aggregates in
 * parallel workers, like als_solve.
 *
 * IDENTIFICATION
 *	  src/evaluate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "evaluate.h"
#include "recsys.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* Number of per-user ranking metrics summed by the aggregate */
#define RANK_METRICS 6

/* State of the ranking_metrics aggregate: sums over evaluated users */
typedef struct RankingState
{
	int32		k;
	int32		pad;			/* keeps the wire form free of holes */
	int64		users;			/* users with at least one relevant id */
	double		sums[RANK_METRICS]; /* precision, recall, ndcg, ap, hit, rr */
} RankingState;

/* Slots of the rating-error state, a double precision[] */
#define ERR_COUNT	0
#define ERR_ABS		1
#define ERR_SQUARED 2
#define ERR_SLOTS	3

/* qsort comparator for int64 */
static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/* Build a set from a bigint[] (checked: 1-D, no NULLs) */
static void
IdSetFromArray(ArrayType *a, IdSet *set)
{
	int			n;
	int64	   *data = ArrayGetInt8(a, &n);

	IdSetFromIds(data, n, set);
}

/* Build a set from n ids (copied, sorted, duplicates dropped) */
void
IdSetFromIds(const int64 *data, int n, IdSet *set)
{
	int			unique = 0;

	set->ids = palloc(sizeof(int64) * Max(n, 1));
	memcpy(set->ids, data, sizeof(int64) * n);
	qsort(set->ids, n, sizeof(int64), CompareInt64);
	for (int i = 0; i < n; i++)
	{
		if (unique == 0 || set->ids[unique - 1] != set->ids[i])
			set->ids[unique++] = set->ids[i];
	}
	set->n = unique;
}

/* Position of id in the set, or -1 */
int
IdSetFind(const IdSet *set, int64 id)
{
	int			lo = 0;
	int			hi = set->n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (set->ids[mid] == id)
			return mid;
		if (set->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* Error unless k is a positive cutoff */
static int32
CheckCutoff(int32 k)
{
	if (k <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be positive, got %d", k),
				 errhint("k is the length of the ranking prefix that is evaluated, for example 10.")));
	return k;
}

/*
 * The ranking metrics at k of one ranked list against a set of relevant ids;
 * false (and nothing computed) when the set is empty.
 */
bool
RankMetricsCompute(const int64 *rec, int nrec, const IdSet *rel, int32 k,
				   RankMetrics *m)
{
	int			depth = Min(nrec, k);
	int			ideal = Min(rel->n, k);
	bool	   *hit;
	int64		hits = 0;
	double		dcg = 0.0;
	double		idcg = 0.0;
	double		ap = 0.0;
	double		rr = 0.0;

	if (rel->n == 0)
		return false;

	/* hit[j]: relevant id j was already found (a repeated id is no hit) */
	hit = palloc0(sizeof(bool) * rel->n);
	for (int i = 0; i < depth; i++)
	{
		int			j = IdSetFind(rel, rec[i]);

		if (j < 0 || hit[j])
			continue;
		hit[j] = true;
		hits++;
		dcg += 1.0 / log2((double) i + 2.0);
		ap += (double) hits / (double) (i + 1);
		if (hits == 1)
			rr = 1.0 / (double) (i + 1);
	}
	pfree(hit);

	for (int i = 0; i < ideal; i++)
		idcg += 1.0 / log2((double) i + 2.0);

	m->precision = (double) hits / (double) k;
	m->recall = (double) hits / (double) rel->n;
	m->ndcg = dcg / idcg;
	m->ap = ap / (double) ideal;
	m->hit = hits > 0 ? 1.0 : 0.0;
	m->rr = rr;
	return true;
}

/* Which ranking metric a scalar SQL function returns */
typedef enum RankMetricKind
{
	METRIC_PRECISION,
	METRIC_RECALL,
	METRIC_NDCG,
	METRIC_AP,
	METRIC_HIT,
	METRIC_RR
} RankMetricKind;

/* Shared body of the scalar ranking metrics (recommended, relevant, k) */
static Datum
RankMetricDatum(FunctionCallInfo fcinfo, RankMetricKind kind)
{
	ArrayType  *recommended = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *relevant = PG_GETARG_ARRAYTYPE_P(1);
	int32		k = CheckCutoff(PG_GETARG_INT32(2));
	int			nrec;
	int64	   *rec = ArrayGetInt8(recommended, &nrec);
	IdSet		rel;
	RankMetrics m;

	IdSetFromArray(relevant, &rel);
	if (!RankMetricsCompute(rec, nrec, &rel, k, &m))
		PG_RETURN_NULL();
	switch (kind)
	{
		case METRIC_PRECISION:
			PG_RETURN_FLOAT8(m.precision);
		case METRIC_RECALL:
			PG_RETURN_FLOAT8(m.recall);
		case METRIC_NDCG:
			PG_RETURN_FLOAT8(m.ndcg);
		case METRIC_AP:
			PG_RETURN_FLOAT8(m.ap);
		case METRIC_HIT:
			PG_RETURN_FLOAT8(m.hit);
		case METRIC_RR:
			PG_RETURN_FLOAT8(m.rr);
	}
	elog(ERROR, "unknown ranking metric %d", (int) kind);
	PG_RETURN_NULL();			/* keep the compiler quiet */
}

PG_FUNCTION_INFO_V1(recsys_precision_at_k);

/* precision_at_k(recommended, relevant, k): hits in the top k / k */
Datum
recsys_precision_at_k(PG_FUNCTION_ARGS)
{
	return RankMetricDatum(fcinfo, METRIC_PRECISION);
}

PG_FUNCTION_INFO_V1(recsys_recall_at_k);

/* recall_at_k(recommended, relevant, k): hits in the top k / |relevant| */
Datum
recsys_recall_at_k(PG_FUNCTION_ARGS)
{
	return RankMetricDatum(fcinfo, METRIC_RECALL);
}

PG_FUNCTION_INFO_V1(recsys_ndcg_at_k);

/* ndcg_at_k(recommended, relevant, k): DCG with binary gains over the ideal DCG */
Datum
recsys_ndcg_at_k(PG_FUNCTION_ARGS)
{
	return RankMetricDatum(fcinfo, METRIC_NDCG);
}

PG_FUNCTION_INFO_V1(recsys_average_precision_at_k);

/* average_precision_at_k(recommended, relevant, k): AP@k, mean over users is MAP@k */
Datum
recsys_average_precision_at_k(PG_FUNCTION_ARGS)
{
	return RankMetricDatum(fcinfo, METRIC_AP);
}

PG_FUNCTION_INFO_V1(recsys_hit_at_k);

/* hit_at_k(recommended, relevant, k): 1 if any of the top k is relevant, else 0 */
Datum
recsys_hit_at_k(PG_FUNCTION_ARGS)
{
	return RankMetricDatum(fcinfo, METRIC_HIT);
}

PG_FUNCTION_INFO_V1(recsys_reciprocal_rank_at_k);

/* reciprocal_rank_at_k(recommended, relevant, k): 1 / rank of the first hit */
Datum
recsys_reciprocal_rank_at_k(PG_FUNCTION_ARGS)
{
	return RankMetricDatum(fcinfo, METRIC_RR);
}

/* An id and its position in a ranking, for finding repeated ids */
typedef struct RankedId
{
	int64		id;
	int32		pos;
} RankedId;

/* qsort comparator: by id, then by position */
static int
CompareRankedId(const void *a, const void *b)
{
	const RankedId *x = (const RankedId *) a;
	const RankedId *y = (const RankedId *) b;

	if (x->id != y->id)
		return (x->id > y->id) - (x->id < y->id);
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/*
 * Per-user AUC of a full ranking (Rendle et al., UAI 2009, eq. 12 for one
 * user): the fraction of (positive, negative) pairs that the ranking puts
 * in the right order,
 *
 *		AUC = 1 / (|P| |N|) * sum over p in P of |{ n in N ranked below p }|
 *
 * with P = relevant minus exclude and N = the distinct ranked ids that are
 * neither relevant nor excluded.  Excluded ids (a user's training items)
 * are removed from the ranking and from P before anything is counted.  A
 * positive missing from the ranking counts as ranked below every negative
 * (the pessimistic choice: the model could not rank it).  A repeated id
 * counts at its first position.  False when P or N is empty.
 */
bool
AucCompute(const int64 *ranked, int n, const IdSet *rel, const IdSet *exclude,
		   double *auc)
{
	RankedId   *sorted;
	bool	   *first;
	int64		npos = 0;
	int64		nneg = 0;
	int64		negatives_above = 0;
	double		correct = 0.0;

	for (int j = 0; j < rel->n; j++)
	{
		if (IdSetFind(exclude, rel->ids[j]) < 0)
			npos++;
	}
	if (npos == 0)
		return false;

	/* first[i]: ranked[i] is the first copy of an id that is not excluded */
	sorted = palloc(sizeof(RankedId) * Max(n, 1));
	first = palloc0(sizeof(bool) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		sorted[i].id = ranked[i];
		sorted[i].pos = i;
	}
	qsort(sorted, n, sizeof(RankedId), CompareRankedId);
	for (int i = 0; i < n; i++)
	{
		if (i > 0 && sorted[i].id == sorted[i - 1].id)
			continue;
		if (IdSetFind(exclude, sorted[i].id) >= 0)
			continue;
		first[sorted[i].pos] = true;
		if (IdSetFind(rel, sorted[i].id) < 0)
			nneg++;
	}
	pfree(sorted);
	if (nneg == 0)
	{
		pfree(first);
		return false;
	}

	/* Each positive scores the negatives below it */
	for (int i = 0; i < n; i++)
	{
		if (!first[i])
			continue;
		if (IdSetFind(rel, ranked[i]) >= 0)
			correct += (double) (nneg - negatives_above);
		else
			negatives_above++;
	}
	pfree(first);

	*auc = correct / ((double) npos * (double) nneg);
	return true;
}

PG_FUNCTION_INFO_V1(recsys_auc);

/* auc(ranked, relevant, exclude): per-user AUC of a full ranking */
Datum
recsys_auc(PG_FUNCTION_ARGS)
{
	ArrayType  *ranked_arr = PG_GETARG_ARRAYTYPE_P(0);
	int			n;
	int64	   *ranked = ArrayGetInt8(ranked_arr, &n);
	IdSet		rel;
	IdSet		exclude;
	double		auc;

	IdSetFromArray(PG_GETARG_ARRAYTYPE_P(1), &rel);
	IdSetFromArray(PG_GETARG_ARRAYTYPE_P(2), &exclude);
	if (!AucCompute(ranked, n, &rel, &exclude, &auc))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(auc);
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

/* A new, empty ranking state for cutoff k in the aggregate's context */
static RankingState *
RankingStateCreate(MemoryContext aggcxt, int32 k)
{
	RankingState *s = MemoryContextAllocZero(aggcxt, sizeof(RankingState));

	s->k = k;
	return s;
}

/* Error unless all rows of a group use the same cutoff */
static void
RankingCheckCutoff(const RankingState *s, int32 k)
{
	if (s->k != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be the same for all rows of a group, got %d and %d",
						s->k, k)));
}

PG_FUNCTION_INFO_V1(recsys_ranking_metrics_transfn);

/*
 * Transition: add one user's ranked list; rows with a NULL array, and users
 * without relevant ids, are skipped
 */
Datum
recsys_ranking_metrics_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = AggContext(fcinfo, "ranking_metrics_transfn");
	RankingState *s = PG_ARGISNULL(0) ? NULL : (RankingState *) PG_GETARG_POINTER(0);
	int32		k;
	int			nrec;
	int64	   *rec;
	IdSet		rel;
	RankMetrics m;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k must not be null")));
	k = CheckCutoff(PG_GETARG_INT32(3));
	if (s == NULL)
		s = RankingStateCreate(aggcxt, k);
	else
		RankingCheckCutoff(s, k);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(s);

	rec = ArrayGetInt8(PG_GETARG_ARRAYTYPE_P(1), &nrec);
	IdSetFromArray(PG_GETARG_ARRAYTYPE_P(2), &rel);
	if (RankMetricsCompute(rec, nrec, &rel, k, &m))
	{
		s->users++;
		s->sums[0] += m.precision;
		s->sums[1] += m.recall;
		s->sums[2] += m.ndcg;
		s->sums[3] += m.ap;
		s->sums[4] += m.hit;
		s->sums[5] += m.rr;
	}
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(recsys_ranking_metrics_combinefn);

/* Combine: sums and user counts of two partial groups add up */
Datum
recsys_ranking_metrics_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = AggContext(fcinfo, "ranking_metrics_combinefn");
	RankingState *s1 = PG_ARGISNULL(0) ? NULL : (RankingState *) PG_GETARG_POINTER(0);
	RankingState *s2 = PG_ARGISNULL(1) ? NULL : (RankingState *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
	{
		/* The first state must be copied into the aggregate's context */
		s1 = RankingStateCreate(aggcxt, s2->k);
	}
	else
		RankingCheckCutoff(s1, s2->k);
	s1->users += s2->users;
	for (int i = 0; i < RANK_METRICS; i++)
		s1->sums[i] += s2->sums[i];
	PG_RETURN_POINTER(s1);
}

PG_FUNCTION_INFO_V1(recsys_ranking_metrics_serialfn);

/* Serialize a state to bytea for transfer between processes */
Datum
recsys_ranking_metrics_serialfn(PG_FUNCTION_ARGS)
{
	RankingState *s = (RankingState *) PG_GETARG_POINTER(0);
	bytea	   *result = palloc(VARHDRSZ + sizeof(RankingState));

	SET_VARSIZE(result, VARHDRSZ + sizeof(RankingState));
	memcpy(VARDATA(result), s, sizeof(RankingState));
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(recsys_ranking_metrics_deserialfn);

/* Rebuild a state from its serialized form, checking its size */
Datum
recsys_ranking_metrics_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	RankingState *s;

	(void) AggContext(fcinfo, "ranking_metrics_deserialfn");
	if (VARSIZE_ANY_EXHDR(bytes) != sizeof(RankingState))
		elog(ERROR, "invalid ranking_metrics state: %zu bytes",
			 (Size) VARSIZE_ANY_EXHDR(bytes));
	/* The combine function copies it into the aggregate's context */
	s = palloc(sizeof(RankingState));
	/* Copy out: the bytea data is not necessarily aligned for doubles */
	memcpy(s, VARDATA_ANY(bytes), sizeof(RankingState));
	if (s->k <= 0 || s->users < 0)
		elog(ERROR, "invalid ranking_metrics state: k %d, %lld users",
			 s->k, (long long) s->users);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(recsys_ranking_metrics_finalfn);

/*
 * Final: (users, precision, recall, ndcg, map, hit_rate, mrr), the means
 * over users with relevant ids; the means are NULL when there are none
 */
Datum
recsys_ranking_metrics_finalfn(PG_FUNCTION_ARGS)
{
	RankingState *s = PG_ARGISNULL(0) ? NULL : (RankingState *) PG_GETARG_POINTER(0);
	TupleDesc	desc;
	Datum		values[RANK_METRICS + 1];
	bool		nulls[RANK_METRICS + 1];
	int64		users = s ? s->users : 0;

	(void) AggContext(fcinfo, "ranking_metrics_finalfn");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type of ranking_metrics must be a row type");
	desc = BlessTupleDesc(desc);
	if (desc->natts != RANK_METRICS + 1)
		elog(ERROR, "return type of ranking_metrics has %d columns, expected %d",
			 desc->natts, RANK_METRICS + 1);

	values[0] = Int64GetDatum(users);
	nulls[0] = false;
	for (int i = 0; i < RANK_METRICS; i++)
	{
		nulls[i + 1] = users == 0;
		values[i + 1] = users == 0 ? (Datum) 0 :
			Float8GetDatum(s->sums[i] / (double) users);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* Checked pointer to the slots of a rating-error state */
static double *
ErrorState(ArrayType *a)
{
	int			n;
	double	   *slots = ArrayGetFloat8(a, &n);

	if (n != ERR_SLOTS)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("rating error state has %d elements, expected %d",
						n, ERR_SLOTS)));
	return slots;
}

/* Error unless a predicted or actual value is finite */
static double
CheckFinite(double value, const char *what)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s value must be finite, got %g", what, value)));
	return value;
}

/*
 * Add one (predicted, actual) pair to the slots of a rating-error state
 * {count, sum |error|, sum error^2}: rmse's and mae's transition, and the
 * shard side of shard-local evaluate.
 */
void
RatingErrorAdd(double *slots, double predicted, double actual)
{
	double		error;

	CheckFinite(predicted, "predicted");
	CheckFinite(actual, "actual");
	error = predicted - actual;
	slots[ERR_COUNT] += 1.0;
	slots[ERR_ABS] += fabs(error);
	slots[ERR_SQUARED] += error * error;
}

PG_FUNCTION_INFO_V1(recsys_rating_error_accum);

/*
 * Transition of rmse and mae: add one (predicted, actual) pair to the state
 * {count, sum |error|, sum error^2}; updated in place inside an aggregate
 */
Datum
recsys_rating_error_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	double		predicted = CheckFinite(PG_GETARG_FLOAT8(1), "predicted");
	double		actual = CheckFinite(PG_GETARG_FLOAT8(2), "actual");

	/* Outside an aggregate the input must not change: work on a copy */
	if (!AggCheckCallContext(fcinfo, NULL))
		state = DatumGetArrayTypePCopy(PointerGetDatum(state));
	RatingErrorAdd(ErrorState(state), predicted, actual);
	PG_RETURN_ARRAYTYPE_P(state);
}

PG_FUNCTION_INFO_V1(recsys_rating_error_combine);

/* Combine of rmse and mae: the slots of two partial states add up */
Datum
recsys_rating_error_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	double	   *sa;
	double	   *sb = ErrorState(PG_GETARG_ARRAYTYPE_P(1));

	if (!AggCheckCallContext(fcinfo, NULL))
		a = DatumGetArrayTypePCopy(PointerGetDatum(a));
	sa = ErrorState(a);
	for (int i = 0; i < ERR_SLOTS; i++)
		sa[i] += sb[i];
	PG_RETURN_ARRAYTYPE_P(a);
}

PG_FUNCTION_INFO_V1(recsys_rmse_final);

/* Final of rmse: sqrt(sum error^2 / count), NULL without pairs */
Datum
recsys_rmse_final(PG_FUNCTION_ARGS)
{
	double	   *slots = ErrorState(PG_GETARG_ARRAYTYPE_P(0));

	if (slots[ERR_COUNT] == 0.0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(sqrt(slots[ERR_SQUARED] / slots[ERR_COUNT]));
}

PG_FUNCTION_INFO_V1(recsys_mae_final);

/* Final of mae: sum |error| / count, NULL without pairs */
Datum
recsys_mae_final(PG_FUNCTION_ARGS)
{
	double	   *slots = ErrorState(PG_GETARG_ARRAYTYPE_P(0));

	if (slots[ERR_COUNT] == 0.0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(slots[ERR_ABS] / slots[ERR_COUNT]);
}

PG_FUNCTION_INFO_V1(recsys_eval_exclude);

/*
 * recsys.eval_exclude(ids, exclude, n): the first n of ids, in order, that
 * are not in exclude.  evaluate() uses it for the baseline's lists (the
 * popular items minus a user's training items) and the relevant sets, in
 * O((n + skipped) log |exclude|) instead of a quadratic SQL filter.
 */
Datum
recsys_eval_exclude(PG_FUNCTION_ARGS)
{
	int			nids;
	int64	   *ids = ArrayGetInt8(PG_GETARG_ARRAYTYPE_P(0), &nids);
	int32		n = PG_GETARG_INT32(2);
	IdSet		exclude;
	int64	   *kept;
	int			nkept = 0;

	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must not be negative, got %d", n)));
	IdSetFromArray(PG_GETARG_ARRAYTYPE_P(1), &exclude);
	kept = palloc(sizeof(int64) * Max(Min(n, nids), 1));
	for (int i = 0; i < nids && nkept < n; i++)
	{
		if (IdSetFind(&exclude, ids[i]) < 0)
			kept[nkept++] = ids[i];
	}
	PG_RETURN_ARRAYTYPE_P(ArrayFromInt8(kept, nkept));
}
