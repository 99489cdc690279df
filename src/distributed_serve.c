/*-------------------------------------------------------------------------
 *
 * distributed_serve.c
 *	  Shard-local evaluation over postgres_fdw shards: the coordinator.
 *
 * When evaluate()'s test table is partitioned by the user column and its
 * partitions are all postgres_fdw foreign tables (the layout distributed
 * training reads, doc/scale-out.md), the users are scored where their test
 * rows are, with the shards working concurrently (shard_serve.c):
 *
 *	1. each shard reads its test pairs into its session and returns its
 *	   distinct user ids (8 bytes per test user);
 *	2. the coordinator reads the model's user rows once (one scan of
 *	   recsys.user_factors) and sends each shard the model's items (ids,
 *	   factors, biases, popularity: the same block to every shard) and the
 *	   rows of that shard's test users only (factors, bias, training items);
 *	3. each shard ranks its users as recommend() does and returns sums and
 *	   counts of the metrics and the items its top k lists held (coverage),
 *	   which the coordinator adds up into evaluate()'s rows.
 *
 * The test rows and the rankings never travel; what does is the items
 * (4 I (k + 3) bytes per shard) and the test users' rows (4 k + 12 bytes
 * plus 8 per training item each).  The counts (users evaluated, pairs,
 * coverage) equal the coordinator path's exactly; the means are the same
 * sums taken in another order, equal within float rounding (about 1e-15
 * relative).
 *
 * Shard-local applies to factor models (als, ials) keyed by integers with
 * candidates => 'all'; anything else, a test table of another layout, or
 * recsys.shard_local_serving = off takes the coordinator path (evaluate's
 * SQL).  recommend_all() runs shard-local too, for a model trained from
 * such a table, with recsys.shard_local_serving = on (see below).  A shard that fails, is stopped or a cancel ends every session;
 * nothing is written on a shard.
 *
 * IDENTIFICATION
 *	  src/distributed_serve.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "cache.h"
#include "catalog.h"
#include "catalog/pg_class.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "distributed.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "idmap.h"
#include "lib/stringinfo.h"
#include "method.h"
#include "miscadmin.h"
#include "recommend.h"
#include "shard.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/regproc.h"

/*
 * What runs shard-local on postgres_fdw partitions: nothing, evaluate()
 * (the default: measured twice as fast as the coordinator path at 1M rows
 * over 3 shards on one machine), or evaluate() and recommend_all() (which
 * ships every user's row to score it elsewhere: 2.9 times slower than the
 * coordinator on that machine, where the shards share its CPUs; it pays
 * only where the shards have CPUs of their own, doc/scale-out.md)
 */
int			recsys_shard_local_serving = SHARD_LOCAL_EVALUATE;

static const struct config_enum_entry shard_local_options[] = {
	{"off", SHARD_LOCAL_OFF, false},
	{"evaluate", SHARD_LOCAL_EVALUATE, false},
	{"on", SHARD_LOCAL_ALL, false},
	{"false", SHARD_LOCAL_OFF, true},
	{"true", SHARD_LOCAL_ALL, true},
	{"no", SHARD_LOCAL_OFF, true},
	{"yes", SHARD_LOCAL_ALL, true},
	{"0", SHARD_LOCAL_OFF, true},
	{"1", SHARD_LOCAL_ALL, true},
	{NULL, 0, false}
};

/* Define recsys.shard_local_serving */
void
DistributedServeInit(void)
{
	DefineCustomEnumVariable("recsys.shard_local_serving",
							 "What runs on postgres_fdw shards: off, evaluate, or on (evaluate and recommend_all).",
							 "evaluate: evaluate() on a test table partitioned by user over postgres_fdw scores on the shards; "
							 "on: also recommend_all() of a model trained from such a table; off: both on the coordinator.",
							 &recsys_shard_local_serving,
							 SHARD_LOCAL_EVALUATE,
							 shard_local_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/*
 * Whether relid is partitioned by user_col alone into postgres_fdw foreign
 * tables only (no error otherwise: the caller then takes the coordinator
 * path, which reads any table).
 */
static bool
ShardedByUser(Oid relid, const char *user_col)
{
	int			leaves;
	int			foreign;
	bool		by_user;

	DistributedLayout(relid, user_col, &leaves, &foreign, &by_user);
	return leaves > 0 && foreign == leaves && by_user;
}

/*
 * Whether the caller has a user mapping for the server (its own or
 * PUBLIC's) that ShardConnect accepts (with a password, unless a
 * superuser), without the errors GetUserMapping and ShardConnect give:
 * without one, evaluate and recommend_all take the coordinator path
 * (recommend_all reads nothing through postgres_fdw and must keep working;
 * evaluate's reading may, with a mapping that sets password_required).
 */
static bool
HasUserMapping(Oid serverid)
{
	HeapTuple	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
									 ObjectIdGetDatum(GetUserId()),
									 ObjectIdGetDatum(serverid));
	ListCell   *lc;

	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return false;
	ReleaseSysCache(tp);
	if (superuser())
		return true;
	foreach(lc, GetUserMapping(GetUserId(), serverid)->options)
		if (strcmp(((DefElem *) lfirst(lc))->defname, "password") == 0)
			return true;
	return false;
}

/* Per shard: the rows of its test users, filled from recsys.user_factors */
typedef struct ShardUsers
{
	int			n;
	int32	   *seen_counts;	/* -1: a user the model does not know */
	float	   *factors;
	float	   *bias;
	int64	  **seen;
} ShardUsers;

/* What the user scan fills */
typedef struct UserScan
{
	MemoryContext cxt;			/* outlives each batch */
	IdMap	   *map;			/* test user id -> index into where */
	int		   *shard;			/* by index: the user's shard */
	int		   *pos;			/* and its position there */
	ShardUsers *users;			/* per shard */
	int			k;
} UserScan;

/* Copy the test users of one batch of user rows into their shards' blocks */
static void
ScanUsers(void *arg, const int64 *ids, const RecsysUserRow *rows, int nrows)
{
	UserScan   *scan = (UserScan *) arg;

	for (int j = 0; j < nrows; j++)
	{
		int32		g = IdMapLookup(scan->map, ids[j]);
		ShardUsers *su;
		int			at;

		if (g < 0 || !rows[j].found)
			continue;
		su = &scan->users[scan->shard[g]];
		at = scan->pos[g];
		su->seen_counts[at] = rows[j].nseen;
		memcpy(su->factors + (Size) at * scan->k, rows[j].factors, sizeof(float) * scan->k);
		su->bias[at] = rows[j].bias;
		su->seen[at] = MemoryContextAlloc(scan->cxt, sizeof(int64) * Max(rows[j].nseen, 1));
		memcpy(su->seen[at], rows[j].seen, sizeof(int64) * rows[j].nseen);
	}
}

/* Slots of shard_eval_score's sums and parameters (as shard_serve.c) */
#define ES_USERS	0
#define ES_MODEL	1
#define ES_BASE		7
#define ES_AUC		13
#define ES_BAUC		15
#define ES_ERR		17
#define ES_BERR		20
#define ES_SLOTS	23
#define EP_SLOTS	9

/* Arguments of eval_shards */
typedef struct EvalArgs
{
	int32		k;
	int32		nrank;
	char	   *user_col;
	char	   *item_col;
	char	   *value_col;
	bool		has_threshold;
	double		threshold;
	bool		compute_auc;
	bool		mean_merge;
	bool		rating_error;
	double		global_mean;
	int64		num_items;
} EvalArgs;

/*
 * Run the evaluation on the shards of d; sums (ES_SLOTS) and the number
 * of distinct items in the model's and the baseline's top k lists.
 */
static void
EvalOnShards(Dist *d, const RecsysModelInfo *info, CacheEntry *e,
			 const EvalArgs *a, double *sums, int64 *cov, int64 *bcov)
{
	const RecsysFactors *it = &e->items;
	int			k = it->k;
	const char *items_param;
	int			items_len;
	const char *params_param;
	int			params_len;
	UserScan	scan;
	int			total = 0;
	uint8	   *cov_any = palloc0(Max(it->n, 1));
	uint8	   *bcov_any = palloc0(Max(it->n, 1));

	/* 1. Each shard reads its test pairs and names its users */
	for (int i = 0; i < d->nshards; i++)
	{
		PGresult   *res;

		ShardConnect(&d->shards[i]);
		res = PQexec(d->shards[i].conn, "SET search_path = pg_catalog, pg_temp");
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ShardError(&d->shards[i], res, "setup");
		PQclear(res);
	}
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		const char *sql = "SELECT recsys.shard_eval_open($1::pg_catalog.text::pg_catalog.regclass, $2, $3, $4, $5)";
		Oid			types[5] = {TEXTOID, NAMEOID, NAMEOID, NAMEOID, BOOLOID};
		const char *values[5] = {s->remote_rel, s->user_col, s->item_col, s->value_col,
		a->mean_merge ? "true" : "false"};

		if (!PQsendQueryParams(s->conn, sql, 5, types, values, NULL, NULL, 1))
			ShardError(s, NULL, "shard_eval_open");
		s->busy = true;
	}
	WaitAll(d, "shard_eval_open (reading the shard's test rows)");

	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		int64		n;
		const int64 *ids;

		if (PQntuples(s->result) != 1)
			ShardError(s, s->result, "shard_eval_open");
		ids = ResultPack(s->result, 0, 0, sizeof(int64), &n);
		s->nusers = (int) n;
		s->users = palloc_extended(sizeof(int64) * Max(n, 1), MCXT_ALLOC_HUGE);
		memcpy(s->users, ids, sizeof(int64) * n);
		PQclear(s->result);
		s->result = NULL;
		total += s->nusers;
	}

	/* 2. The rows of each shard's test users, from one scan of the model's */
	memset(&scan, 0, sizeof(scan));
	scan.cxt = CurrentMemoryContext;
	scan.k = k;
	scan.map = IdMapCreate(Max(total, 1));
	scan.shard = palloc(sizeof(int) * Max(total, 1));
	scan.pos = palloc(sizeof(int) * Max(total, 1));
	scan.users = palloc0(sizeof(ShardUsers) * d->nshards);
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		ShardUsers *su = &scan.users[i];

		su->n = s->nusers;
		su->seen_counts = palloc(sizeof(int32) * Max(s->nusers, 1));
		su->factors = palloc_extended(sizeof(float) * Max((Size) s->nusers * k, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		su->bias = palloc0(sizeof(float) * Max(s->nusers, 1));
		su->seen = palloc0(sizeof(int64 *) * Max(s->nusers, 1));
		for (int u = 0; u < s->nusers; u++)
		{
			int32		before = IdMapLookup(scan.map, s->users[u]);
			int32		g;

			if (before >= 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("user %lld has test rows on shards %s and %s",
								(long long) s->users[u], d->shards[scan.shard[before]].server,
								s->server),
						 errhint("Partition the test table by its user column, or SET recsys.shard_local_serving = off.")));
			g = IdMapInsert(scan.map, s->users[u]);
			scan.shard[g] = i;
			scan.pos[g] = u;
			su->seen_counts[u] = -1;
		}
	}
	/* 1,024 rows per fetch: the scan's memory stays small, its calls few */
	CatalogForEachUserBatch(info, 1024, false, ScanUsers, &scan);

	/* 3. The same items to every shard, its users to each */
	{
		ShardBlock	blocks[4] = {
			{it->ids, it->n, sizeof(int64)},
			{it->factors, (int64) it->n * k, sizeof(float)},
			{it->bias, it->n, sizeof(float)},
			{it->popularity, it->n, sizeof(int64)}};
		double		p[EP_SLOTS];

		items_param = ShardPackBlocks(blocks, 4, &items_len);
		p[0] = a->k;
		p[1] = a->nrank;
		p[2] = a->has_threshold ? a->threshold : NAN;
		p[3] = a->compute_auc ? 1.0 : 0.0;
		p[4] = a->rating_error ? 1.0 : 0.0;
		p[5] = e->config.mean;
		p[6] = a->global_mean;
		p[7] = e->zero_bias ? 1.0 : 0.0;
		p[8] = k;
		params_param = PackParam(p, EP_SLOTS, sizeof(double), &params_len);
	}
	{
		const char ***values = palloc(sizeof(char **) * d->nshards);
		int		  **lengths = palloc(sizeof(int *) * d->nshards);
		Oid			types[3] = {BYTEAOID, BYTEAOID, BYTEAOID};

		for (int i = 0; i < d->nshards; i++)
		{
			ShardUsers *su = &scan.users[i];
			int64		nseen = 0;
			int64	   *seen;
			ShardBlock	blocks[4];

			for (int u = 0; u < su->n; u++)
				nseen += Max(su->seen_counts[u], 0);
			seen = palloc_extended(sizeof(int64) * Max(nseen, 1), MCXT_ALLOC_HUGE);
			nseen = 0;
			for (int u = 0; u < su->n; u++)
				if (su->seen_counts[u] > 0)
				{
					memcpy(seen + nseen, su->seen[u], sizeof(int64) * su->seen_counts[u]);
					nseen += su->seen_counts[u];
				}
			blocks[0] = (ShardBlock) {su->seen_counts, su->n, sizeof(int32)};
			blocks[1] = (ShardBlock) {su->factors, (int64) su->n * k, sizeof(float)};
			blocks[2] = (ShardBlock) {su->bias, su->n, sizeof(float)};
			blocks[3] = (ShardBlock) {seen, nseen, sizeof(int64)};
			values[i] = palloc(sizeof(char *) * 3);
			lengths[i] = palloc(sizeof(int) * 3);
			values[i][0] = items_param;
			lengths[i][0] = items_len;
			values[i][1] = ShardPackBlocks(blocks, 4, &lengths[i][1]);
			values[i][2] = params_param;
			lengths[i][2] = params_len;
			pfree(seen);
		}
		SendAll(d, "SELECT sums, cov, bcov FROM recsys.shard_eval_score($1, $2, $3)",
				3, types, (const char *const *const *) values, (const int *const *) lengths,
				true, "shard_eval_score");
		WaitAll(d, "shard-local evaluation");
	}

	/* 4. Add up */
	memset(sums, 0, sizeof(double) * ES_SLOTS);
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		int64		n;
		const char *part;
		const uint8 *marks;

		if (PQntuples(s->result) != 1)
			ShardError(s, s->result, "shard_eval_score");
		part = ResultPack(s->result, 0, 0, sizeof(double), &n);
		if (n != ES_SLOTS)
			ShardError(s, NULL, "shard-local evaluation (a block of the wrong size)");
		for (int j = 0; j < ES_SLOTS; j++)
		{
			double		v;

			memcpy(&v, part + sizeof(double) * j, sizeof(double));
			sums[j] += v;
		}
		for (int c = 1; c <= 2; c++)
		{
			uint8	   *into = c == 1 ? cov_any : bcov_any;

			marks = ResultPack(s->result, 0, c, 1, &n);
			if (n != it->n)
				ShardError(s, NULL, "shard-local evaluation (a block of the wrong size)");
			for (int j = 0; j < it->n; j++)
				into[j] |= marks[j];
		}
		PQclear(s->result);
		s->result = NULL;
	}
	*cov = 0;
	*bcov = 0;
	for (int j = 0; j < it->n; j++)
	{
		*cov += cov_any[j] != 0;
		*bcov += bcov_any[j] != 0;
	}
}

/* Emit one row of evaluate()'s result */
static void
EmitRow(ReturnSetInfo *rsinfo, const char *metric, bool has_k, int32 k,
		bool has_model, double model, bool has_base, double base, int64 evaluated)
{
	Datum		values[5];
	bool		nulls[5] = {false, !has_k, !has_model, !has_base, false};

	values[0] = CStringGetTextDatum(metric);
	values[1] = Int32GetDatum(k);
	values[2] = Float8GetDatum(model);
	values[3] = Float8GetDatum(base);
	values[4] = Int64GetDatum(evaluated);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(recsys_eval_shards);

/*
 * recsys.eval_shards(model, test, k, nrank, user_col, item_col, value_col,
 * relevance_threshold, compute_auc, mean_merge, rating_error, global_mean,
 * num_items): evaluate()'s rows computed shard-local, or no rows when the
 * test table or the model is not one shard-local evaluation handles (then
 * evaluate() takes the coordinator path).  evaluate() has checked the
 * arguments, the caller's privileges on the test table and computed nrank.
 */
Datum
recsys_eval_shards(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *model;
	Oid			test;
	EvalArgs	a;
	RecsysModelInfo *info;
	CacheEntry *e;
	Dist		d;
	double		sums[ES_SLOTS];
	int64		cov;
	int64		bcov;
	int64		users;
	MemoryContext cxt;
	MemoryContext old;
	ListCell   *lc;
	static const char *const names[6] = {"precision", "recall", "ndcg", "map", "hit_rate", "mrr"};

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < 13; i++)
		if (i != 6 && i != 7 && PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d of eval_shards must not be null", i + 1)));
	model = text_to_cstring(PG_GETARG_TEXT_PP(0));
	test = PG_GETARG_OID(1);
	memset(&a, 0, sizeof(a));
	a.k = PG_GETARG_INT32(2);
	a.nrank = PG_GETARG_INT32(3);
	a.user_col = NameStr(*PG_GETARG_NAME(4));
	a.item_col = NameStr(*PG_GETARG_NAME(5));
	a.value_col = PG_ARGISNULL(6) ? NULL : NameStr(*PG_GETARG_NAME(6));
	a.has_threshold = !PG_ARGISNULL(7);
	a.threshold = a.has_threshold ? PG_GETARG_FLOAT8(7) : 0.0;
	a.compute_auc = PG_GETARG_BOOL(8);
	a.mean_merge = PG_GETARG_BOOL(9);
	a.rating_error = PG_GETARG_BOOL(10);
	a.global_mean = PG_GETARG_FLOAT8(11);
	a.num_items = PG_GETARG_INT64(12);

	if (recsys_shard_local_serving == SHARD_LOCAL_OFF || !ShardedByUser(test, a.user_col))
		return (Datum) 0;
	foreach(lc, LeafPartitions(test))
		if (!HasUserMapping(GetForeignTable(lfirst_oid(lc))->serverid))
			return (Datum) 0;
	info = CatalogLookupModel(model);
	if (info->text_users || info->text_items || !info->method->personal ||
		info->method->score != FactorScore || info->method->predict != FactorPredict)
		return (Datum) 0;
	e = CacheGetModel(info);

	cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys shard-local evaluation",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	DistributedShards(&d, LeafPartitions(test), a.user_col, a.item_col, a.value_col);
	PG_TRY();
	{
		EvalOnShards(&d, info, e, &a, sums, &cov, &bcov);
	}
	PG_CATCH();
	{
		ShardsDisconnect(&d);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ShardsDisconnect(&d);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);

	/* The rows of evaluate(), in its order */
	if (a.rating_error)
	{
		double		n = sums[ES_ERR];

		EmitRow(rsinfo, "rmse", false, 0, n > 0, n > 0 ? sqrt(sums[ES_ERR + 2] / n) : 0,
				n > 0, n > 0 ? sqrt(sums[ES_BERR + 2] / n) : 0, (int64) n);
		EmitRow(rsinfo, "mae", false, 0, n > 0, n > 0 ? sums[ES_ERR + 1] / n : 0,
				n > 0, n > 0 ? sums[ES_BERR + 1] / n : 0, (int64) n);
	}
	users = (int64) sums[ES_USERS];
	for (int m = 0; m < 6; m++)
		EmitRow(rsinfo, names[m], true, a.k,
				users > 0, users > 0 ? sums[ES_MODEL + m] / (double) users : 0,
				users > 0, users > 0 ? sums[ES_BASE + m] / (double) users : 0, users);
	EmitRow(rsinfo, "auc", false, 0,
			sums[ES_AUC + 1] > 0, sums[ES_AUC + 1] > 0 ? sums[ES_AUC] / sums[ES_AUC + 1] : 0,
			sums[ES_BAUC + 1] > 0, sums[ES_BAUC + 1] > 0 ? sums[ES_BAUC] / sums[ES_BAUC + 1] : 0,
			(int64) sums[ES_AUC + 1]);
	EmitRow(rsinfo, "coverage", true, a.k,
			users > 0 && a.num_items > 0, a.num_items > 0 ? (double) cov / (double) a.num_items : 0,
			users > 0 && a.num_items > 0, a.num_items > 0 ? (double) bcov / (double) a.num_items : 0,
			users);
	return (Datum) 0;
}

/*
 * Shard-local recommend_all.  The model (every user's factors and training
 * items) lives on the coordinator, so the shards are scorers: the
 * coordinator reads the users in recommend_all's batches and deals whole
 * batches to the shards in turn (not by where each user's rows are: the
 * user rows travel either way, and a batch scored on a shard is the very
 * matrix product the coordinator would compute, so the scores are the
 * same to the bit).  Rounds of about ROUND_USERS users per shard are in
 * flight while the coordinator reads the next round, and each shard
 * returns only each user's best n items and scores.
 */
#define ROUND_USERS 1024

/* The round being filled for one shard */
typedef struct RoundBuffer
{
	int			nbatches;
	int			nusers;
	int64		nseen;
	StringInfoData sizes;		/* int32 per batch */
	StringInfoData ids;			/* int64 per user */
	StringInfoData seen_counts; /* int32 per user */
	StringInfoData factors;		/* k floats per user */
	StringInfoData bias;		/* float per user */
	StringInfoData seen;		/* int64 per training item */
} RoundBuffer;

/* A shard-local recommend_all in progress */
typedef struct RecommendRun
{
	Dist	   *d;
	ReturnSetInfo *rsinfo;
	int			k;
	bool		exclude_seen;
	int			next;			/* the shard that gets the next batch */
	RoundBuffer *bufs;			/* the round being filled, per shard */
	int64	  **inflight_ids;	/* per shard: the users of the round sent */
	int		   *inflight_n;
	bool		inflight;
	MemoryContext cxt;			/* outlives the user batches */
} RecommendRun;

/* Empty a round buffer */
static void
RoundReset(RoundBuffer *rb)
{
	rb->nbatches = 0;
	rb->nusers = 0;
	rb->nseen = 0;
	resetStringInfo(&rb->sizes);
	resetStringInfo(&rb->ids);
	resetStringInfo(&rb->seen_counts);
	resetStringInfo(&rb->factors);
	resetStringInfo(&rb->bias);
	resetStringInfo(&rb->seen);
}

/* Wait for the round in flight and emit its rows */
static void
RecommendCollect(RecommendRun *run)
{
	Dist	   *d = run->d;

	if (!run->inflight)
		return;
	WaitAll(d, "shard-local recommend_all");
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		int64		nusers;
		int64		nitems;
		int64		nscores;
		const char *counts;
		const char *items;
		const char *scores;
		int64		at = 0;

		if (PQntuples(s->result) != 1)
			ShardError(s, s->result, "shard_recommend");
		counts = ResultPack(s->result, 0, 0, sizeof(int32), &nusers);
		items = ResultPack(s->result, 0, 1, sizeof(int64), &nitems);
		scores = ResultPack(s->result, 0, 2, sizeof(float), &nscores);
		if (nusers != run->inflight_n[i] || nitems != nscores)
			ShardError(s, NULL, "shard-local recommend_all (a block of the wrong size)");
		for (int64 j = 0; j < nusers; j++)
		{
			int32		count;

			memcpy(&count, counts + sizeof(int32) * j, sizeof(int32));
			if (count < 0 || at + count > nitems)
				ShardError(s, NULL, "shard-local recommend_all (a block of the wrong size)");
			for (int r = 0; r < count; r++, at++)
			{
				Datum		values[3];
				bool		nulls[3] = {false, false, false};
				int64		item;
				float		score;

				memcpy(&item, items + sizeof(int64) * at, sizeof(int64));
				memcpy(&score, scores + sizeof(float) * at, sizeof(float));
				values[0] = Int64GetDatum(run->inflight_ids[i][j]);
				values[1] = Int64GetDatum(item);
				values[2] = Float4GetDatum(score);
				tuplestore_putvalues(run->rsinfo->setResult, run->rsinfo->setDesc, values, nulls);
			}
		}
		PQclear(s->result);
		s->result = NULL;
	}
	run->inflight = false;
}

/* Collect the round in flight, then send the one filled (if any) */
static void
RecommendFlush(RecommendRun *run)
{
	Dist	   *d = run->d;
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	const char ***values = palloc(sizeof(char **) * d->nshards);
	int		  **lengths = palloc(sizeof(int *) * d->nshards);
	Oid			types[1] = {BYTEAOID};
	bool		any = false;

	RecommendCollect(run);
	for (int i = 0; i < d->nshards; i++)
		any |= run->bufs[i].nusers > 0;
	if (any)
	{
		for (int i = 0; i < d->nshards; i++)
		{
			RoundBuffer *rb = &run->bufs[i];
			ShardBlock	blocks[5] = {
				{rb->sizes.data, rb->nbatches, sizeof(int32)},
				{rb->seen_counts.data, rb->nusers, sizeof(int32)},
				{rb->factors.data, (int64) rb->nusers * run->k, sizeof(float)},
				{rb->bias.data, rb->nusers, sizeof(float)},
				{rb->seen.data, rb->nseen, sizeof(int64)}};

			values[i] = palloc(sizeof(char *));
			lengths[i] = palloc(sizeof(int));
			values[i][0] = ShardPackBlocks(blocks, 5, &lengths[i][0]);
			if (run->inflight_ids[i])
				pfree(run->inflight_ids[i]);
			run->inflight_ids[i] = palloc(sizeof(int64) * Max(rb->nusers, 1));
			memcpy(run->inflight_ids[i], rb->ids.data, sizeof(int64) * rb->nusers);
			run->inflight_n[i] = rb->nusers;
		}
		SendAll(d, "SELECT counts, items, scores FROM recsys.shard_recommend($1)", 1, types,
				(const char *const *const *) values, (const int *const *) lengths, true,
				"shard_recommend");
		run->inflight = true;
		for (int i = 0; i < d->nshards; i++)
		{
			pfree((void *) values[i][0]);
			RoundReset(&run->bufs[i]);
		}
	}
	MemoryContextSwitchTo(old);
}

/* Deal one batch of users (recommend_all's batch) to the next shard */
static void
RecommendDeal(void *arg, const int64 *ids, const RecsysUserRow *rows, int nrows)
{
	RecommendRun *run = (RecommendRun *) arg;
	RoundBuffer *rb = &run->bufs[run->next];
	int32		size = nrows;

	appendBinaryStringInfo(&rb->sizes, (char *) &size, sizeof(int32));
	for (int j = 0; j < nrows; j++)
	{
		/* The training items only matter to exclude them */
		int32		nseen = run->exclude_seen ? rows[j].nseen : 0;

		appendBinaryStringInfo(&rb->ids, (const char *) &ids[j], sizeof(int64));
		appendBinaryStringInfo(&rb->seen_counts, (char *) &nseen, sizeof(int32));
		appendBinaryStringInfo(&rb->factors, (const char *) rows[j].factors, sizeof(float) * run->k);
		appendBinaryStringInfo(&rb->bias, (const char *) &rows[j].bias, sizeof(float));
		appendBinaryStringInfo(&rb->seen, (const char *) rows[j].seen, sizeof(int64) * nseen);
		rb->nseen += nseen;
	}
	rb->nbatches++;
	rb->nusers += nrows;
	run->next = (run->next + 1) % run->d->nshards;
	/* A full round: every shard has had its share (dealt in turn) */
	if (run->next == 0 && rb->nusers >= ROUND_USERS)
		RecommendFlush(run);
}

/*
 * recommend_all's rows computed shard-local, into the call's tuplestore:
 * true when done, false when it does not apply (the setting is off, a
 * model without factors, a source that is not partitioned by user over
 * postgres_fdw, a shard without a user mapping for the caller), and
 * recommend_all scores on the coordinator.
 */
bool
DistributedRecommendAll(FunctionCallInfo fcinfo, const RecsysModelInfo *info,
						int n, bool exclude_seen)
{
	Oid			source;
	List	   *leaves;
	ListCell   *lc;
	CacheEntry *e;
	Dist		d;
	RecommendRun run;
	MemoryContext cxt;
	MemoryContext old;
	int			batch;

	if (recsys_shard_local_serving != SHARD_LOCAL_ALL || !info->method->factors ||
		info->source == NULL)
		return false;
	source = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(info->source)),
							  NoLock, true);
	if (!OidIsValid(source) || !ShardedByUser(source, info->user_col))
		return false;
	leaves = LeafPartitions(source);
	foreach(lc, leaves)
		if (!HasUserMapping(GetForeignTable(lfirst_oid(lc))->serverid))
			return false;

	e = CacheGetModel(info);
	batch = ServeBatchSize(e->items.n);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys shard-local recommend_all",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	DistributedShards(&d, leaves, info->user_col, info->item_col, NULL);
	memset(&run, 0, sizeof(run));
	run.d = &d;
	run.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	run.k = e->items.k;
	run.exclude_seen = exclude_seen;
	run.cxt = cxt;
	run.bufs = palloc0(sizeof(RoundBuffer) * d.nshards);
	run.inflight_ids = palloc0(sizeof(int64 *) * d.nshards);
	run.inflight_n = palloc0(sizeof(int) * d.nshards);
	for (int i = 0; i < d.nshards; i++)
	{
		initStringInfo(&run.bufs[i].sizes);
		initStringInfo(&run.bufs[i].ids);
		initStringInfo(&run.bufs[i].seen_counts);
		initStringInfo(&run.bufs[i].factors);
		initStringInfo(&run.bufs[i].bias);
		initStringInfo(&run.bufs[i].seen);
	}
	PG_TRY();
	{
		const RecsysFactors *it = &e->items;
		ShardBlock	blocks[4] = {
			{it->ids, it->n, sizeof(int64)},
			{it->factors, (int64) it->n * it->k, sizeof(float)},
			{it->bias, it->n, sizeof(float)},
			{it->popularity, it->n, sizeof(int64)}};
		const char *values[3];
		int			lengths[3];
		const char *const *vp[1] = {values};
		const int  *lp[1] = {lengths};
		Oid			types[3] = {BYTEAOID, TEXTOID, BYTEAOID};
		double		p[5];

		for (int i = 0; i < d.nshards; i++)
		{
			PGresult   *res;

			ShardConnect(&d.shards[i]);
			res = PQexec(d.shards[i].conn, "SET search_path = pg_catalog, pg_temp");
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				ShardError(&d.shards[i], res, "setup");
			PQclear(res);
		}
		values[0] = ShardPackBlocks(blocks, 4, &lengths[0]);
		values[1] = info->method->name;
		lengths[1] = strlen(info->method->name);
		p[0] = e->config.mean;
		p[1] = e->zero_bias ? 1.0 : 0.0;
		p[2] = it->k;
		p[3] = n;
		p[4] = exclude_seen ? 1.0 : 0.0;
		values[2] = PackParam(p, 5, sizeof(double), &lengths[2]);
		SendAll(&d, "SELECT recsys.shard_recommend_open($1, $2, $3)", 3, types,
				vp, lp, false, "shard_recommend_open");
		WaitAll(&d, "shard_recommend_open");
		for (int i = 0; i < d.nshards; i++)
		{
			Shard	   *s = &d.shards[i];
			const unsigned char *v;
			int32		theirs;

			if (PQntuples(s->result) != 1 || PQgetlength(s->result, 0, 0) != 4)
				ShardError(s, s->result, "shard_recommend_open");
			v = (const unsigned char *) PQgetvalue(s->result, 0, 0);
			theirs = (int32) (((uint32) v[0] << 24) | ((uint32) v[1] << 16) | ((uint32) v[2] << 8) | v[3]);
			if (theirs != batch)
				ShardError(s, NULL, "shard_recommend_open (another batch size: another recsys version)");
			PQclear(s->result);
			s->result = NULL;
		}
		MemoryContextSwitchTo(old);
		CatalogForEachUserBatch(info, batch, false, RecommendDeal, &run);
		RecommendFlush(&run);
		RecommendCollect(&run);
	}
	PG_CATCH();
	{
		ShardsDisconnect(&d);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ShardsDisconnect(&d);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return true;
}
