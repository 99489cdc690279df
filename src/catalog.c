/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  The model catalog: schema recsys's tables, read and written via SPI.
 *
 * A model is one row of recsys.models plus one row per user and per item in
 * recsys.user_factors and recsys.item_factors.  Retraining replaces all of
 * them in the training transaction, so MVCC gives atomicity for free:
 * readers keep seeing the previous version until commit, and an error or a
 * cancel rolls everything back.  Every retrain draws a new version number,
 * which is what backend caches compare.
 *
 * Factors are written in batches with one INSERT ... SELECT over arrays per
 * batch (slices of one flat array per row), not one statement per row.
 *
 * All SQL here is fully schema-qualified (tables, functions, operators and
 * types), so the caller's search_path cannot redirect it.
 *
 * A model's row is read as the calling role, under the table's row-level
 * security, on every call: that is the privilege check.  Once it is
 * visible, the model's own rows are read as the extension's owner
 * (ExecuteModelRead): the other tables' policies would pass them all.
 * Writes run as the extension's owner (CatalogExecuteAsOwner, see
 * catalog_write.c), after this file has checked the caller's privilege on
 * the model: no other role can write these tables.  A model's rows are
 * deleted children first (factors, log, grants, then the model row), so
 * none is ever left without its model.
 *
 * IDENTIFICATION
 *	  src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/genam.h"
#include "access/hash.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "method.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/*
 * The fourth field of those locks.  SQL's pg_advisory_* functions always
 * set it to 1 (one bigint key) or 2 (two integer keys), so no session can
 * take or block a recsys lock from SQL.
 */
#define CATALOG_LOCK_FIELD4 0x7273	/* "rs" */
#define CATALOG_ID_LOCK_FIELD4 0x7274	/* new ids of a text-keyed model */

/*
 * Upper bound of array elements sent in one INSERT batch.  Why this size:
 * a batch holds its arrays two or three times over (ours, the array
 * datums, the executor's copies), so 256k elements keep the write phase
 * within a few MB beyond the model, while a 10M-row model still needs
 * only about 40 statements.
 */
#define CATALOG_BATCH_ELEMENTS (256 * 1024)

/*
 * Catalog versions this library reads and writes: the token column and
 * recsys.instance came with 1.2; a database still on 1.0 or 1.1 SQL (before
 * ALTER EXTENSION recsys UPDATE) is served without them.
 */
#define CATALOG_VERSION_TOKENS 102

/* Saved plans, prepared on first use (for the catalog version plans_version) */
static int	plans_version = 0;
static SPIPlanPtr lookup_plan = NULL;
static SPIPlanPtr only_model_plan = NULL;
static SPIPlanPtr user_plan = NULL;
static SPIPlanPtr items_plan = NULL;
static SPIPlanPtr users_plan = NULL;
static SPIPlanPtr id_plan = NULL;
static SPIPlanPtr external_plan = NULL;
static SPIPlanPtr probe_plan = NULL;

/*
 * Models looked up by this backend, as they were at (model_id, version,
 * token).  Why: every serving call looks its model up by name, and turning
 * the row into a RecsysModelInfo (the params jsonb parsed against the
 * method's options, the strings copied) cost as much as the executor's
 * part of the lookup; a probe of those three columns tells whether the
 * copy made last time still holds.  Every change of a model row draws a
 * new version, and the random token tells apart rows of another database
 * life (a restore) that reuse a version.  The probe still runs under the
 * caller's row-level security on every call, so privileges are checked
 * as before.
 */
#define INFO_CACHE_SIZE 16

typedef struct InfoCacheEntry
{
	MemoryContext cxt;			/* holds info and its strings; NULL: free */
	RecsysModelInfo *info;
	uint64		last_used;
} InfoCacheEntry;

static InfoCacheEntry info_cache[INFO_CACHE_SIZE];
static uint64 info_cache_clock = 0;

/* The columns of recsys.user_factors, as the direct read and write expect them */
static const char *const user_columns[] = {"model_id", "user_id", "bias",
"factors", "seen", "seen_values"};
static const Oid user_types[] = {INT8OID, INT8OID, FLOAT4OID,
FLOAT4ARRAYOID, INT8ARRAYOID, FLOAT4ARRAYOID};

static void InsertFactorsSQL(int64 model_id, bool users, const RecsysRatings *r,
							 const AlsModel *m, const float *seen_values);

/* Connect to SPI or fail */
static void
Connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Whether the installed SQL has the cache tokens and the lock salt */
static bool
HasTokens(void)
{
	return CatalogVersion() >= CATALOG_VERSION_TOKENS;
}

/*
 * Prepare a statement once per backend and keep it; every saved plan is
 * dropped when the installed SQL version changes (ALTER EXTENSION UPDATE
 * in this session), as some statements differ between versions.
 */
static SPIPlanPtr
Prepare(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types)
{
	if (plans_version != CatalogVersion())
	{
		SPIPlanPtr *plans[] = {&lookup_plan, &only_model_plan, &user_plan,
		&items_plan, &users_plan, &id_plan, &external_plan, &probe_plan};

		for (int i = 0; i < (int) lengthof(plans); i++)
		{
			if (*plans[i] != NULL)
				SPI_freeplan(*plans[i]);
			*plans[i] = NULL;
		}
		/* The rows may be another version's too: forget them */
		for (int i = 0; i < INFO_CACHE_SIZE; i++)
		{
			if (info_cache[i].cxt != NULL)
				MemoryContextDelete(info_cache[i].cxt);
			info_cache[i].cxt = NULL;
			info_cache[i].info = NULL;
		}
		plans_version = CatalogVersion();
	}
	if (*cache == NULL)
	{
		/*
		 * Generic plans: these are key lookups, and a custom plan per call
		 * (which the plan cache may keep choosing when the statistics make
		 * the generic one look worse) costs more than the lookup itself
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/* Run a statement built at run time; error unless it returns `expected` */
static void
Execute(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL,
										   false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
}

/*
 * Run a prepared lookup of one model's rows (its model_id is $1) as the
 * extension's owner.  `info` must come from CatalogLookupModel or
 * CatalogLookupModelLatest, which read recsys.models under the caller's
 * row-level policy: a role sees a model's row exactly when it owns the
 * model or holds a grant on it, and every grant ('serve' or 'train')
 * lets it serve, which is all the policies of the other tables ask
 * (recsys.model_privilege(model_id, 'serve')).  So the policies would
 * pass every row; skipping them saves their per-call evaluation.
 */
static int
ExecuteModelRead(const RecsysModelInfo *info, SPIPlanPtr plan, Datum *values,
				 bool read_only, long count)
{
	Assert(DatumGetInt64(values[0]) == info->model_id);
	(void) info;
	return CatalogExecutePlanAsOwner(plan, values, NULL, read_only, count);
}

/* Execute, as the extension's owner (a write the caller was checked for) */
static void
ExecuteAsOwner(const char *sql, int nargs, Oid *types, Datum *values,
			   const char *nulls, int expected)
{
	int			rc = CatalogExecuteAsOwner(sql, nargs, types, values, nulls,
										   false, 0);

	if (rc != expected)
		elog(ERROR, "SPI_execute_with_args failed for \"%s\": %s", sql,
			 SPI_result_code_string(rc));
}

/*
 * Serialize trainings and drops of one model name until the transaction
 * ends: a second CALL train of the same model waits for the first to
 * commit or abort instead of interleaving with it.  Refreshing users takes
 * the lock in share mode: refreshes run side by side, but not during a
 * training of the same model.
 *
 * The lock's key is a hash of the name seeded with the database's secret
 * salt (recsys.instance, readable by the extension's owner only), so
 * pg_locks does not tell other roles which names are being trained; its
 * fourth field is one SQL cannot use (CATALOG_LOCK_FIELD4).
 */
void
CatalogLockModelName(const char *name, bool exclusive)
{
	LOCKTAG		tag;
	uint64		salt;
	bool		isnull;
	uint64		key;

	Connect();
	salt = 0;
	if (HasTokens())
	{
		ExecuteAsOwner("SELECT lock_salt FROM recsys.instance", 0, NULL, NULL, NULL,
					   SPI_OK_SELECT);
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("recsys catalog table recsys.instance must have exactly one row"),
					 errhint("Reinstall the extension, or restore the row from a backup.")));
		salt = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();

	key = DatumGetUInt64(hash_any_extended((const unsigned char *) name,
										   strlen(name), salt));
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key,
						 CATALOG_LOCK_FIELD4);
	(void) LockAcquire(&tag, exclusive ? ExclusiveLock : ShareLock, false, false);
}

/*
 * The model's id of an external (text) id of a text-keyed side, or -1 if
 * it has none.  With `create`, a user the model does not know yet gets a
 * new id (refresh_user of a new user): the next after the largest, taken
 * under a lock of the model's dictionary (its fourth field is one SQL
 * cannot use), so that concurrent refreshes draw different ids.
 */
int64
CatalogInternalId(const RecsysModelInfo *info, bool users, const char *external,
				  bool create)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	bool		isnull;
	int64		id = -1;

	values[0] = Int64GetDatum(info->model_id);
	values[1] = CStringGetTextDatum(users ? "user" : "item");
	values[2] = CStringGetTextDatum(external);
	Connect();
	/* Prepared once: one index probe per call of a serving function */
	if (ExecuteModelRead(info, Prepare(&id_plan,
									   "SELECT internal FROM recsys.id_map WHERE model_id OPERATOR(pg_catalog.=) $1 "
									   "AND side OPERATOR(pg_catalog.=) $2 AND external OPERATOR(pg_catalog.=) $3",
									   3, types),
						 values, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "looking up an id failed");
	if (SPI_processed > 0)
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										 &isnull));
	else if (create)
	{
		LOCKTAG		tag;

		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (info->model_id >> 32),
							 (uint32) info->model_id, CATALOG_ID_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		ExecuteAsOwner("INSERT INTO recsys.id_map (model_id, side, external, internal) "
					   "SELECT $1, $2, $3, COALESCE(pg_catalog.max(internal), 0) OPERATOR(pg_catalog.+) 1 "
					   "FROM recsys.id_map WHERE model_id OPERATOR(pg_catalog.=) $1 "
					   "AND side OPERATOR(pg_catalog.=) $2 RETURNING internal",
					   3, types, values, NULL, SPI_OK_INSERT_RETURNING);
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										 &isnull));
	}
	SPI_finish();
	return id;
}

/* The external id of a model's id of a text-keyed side, or NULL */
char *
CatalogExternalId(const RecsysModelInfo *info, bool users, int64 internal)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];
	bool		isnull;
	char	   *result = NULL;

	values[0] = Int64GetDatum(info->model_id);
	values[1] = CStringGetTextDatum(users ? "user" : "item");
	values[2] = Int64GetDatum(internal);
	Connect();
	if (ExecuteModelRead(info, Prepare(&external_plan,
									   "SELECT external FROM recsys.id_map WHERE model_id OPERATOR(pg_catalog.=) $1 "
									   "AND side OPERATOR(pg_catalog.=) $2 AND internal OPERATOR(pg_catalog.=) $3",
									   3, types),
						 values, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "looking up an id failed");
	if (SPI_processed > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									  &isnull);
		MemoryContext spi_cxt = MemoryContextSwitchTo(outer);

		result = TextDatumGetCString(d);
		MemoryContextSwitchTo(spi_cxt);
	}
	SPI_finish();
	return result;
}

/*
 * The external ids of one side of a text-keyed model into names[], at the
 * rows `index` gives their model ids (n rows; rows not in the dictionary
 * stay NULL); allocated in the current memory context.
 */
void
CatalogLoadIdNames(const RecsysModelInfo *info, bool users, const IdMap *index,
				   int n, char **names)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	Portal		portal;

	values[0] = Int64GetDatum(info->model_id);
	values[1] = CStringGetTextDatum(users ? "user" : "item");
	memset(names, 0, sizeof(char *) * n);
	Connect();
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT internal, external FROM recsys.id_map "
									   "WHERE model_id OPERATOR(pg_catalog.=) $1 "
									   "AND side OPERATOR(pg_catalog.=) $2",
									   2, types, values, NULL, true, CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int64		internal = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r],
															   SPI_tuptable->tupdesc, 1, &isnull));
			Datum		ext = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2,
											&isnull);
			int32		row = IdMapLookup(index, internal);

			if (row >= 0 && row < n)
			{
				MemoryContext spi_cxt = MemoryContextSwitchTo(outer);

				names[row] = TextDatumGetCString(ext);
				MemoryContextSwitchTo(spi_cxt);
			}
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/*
 * Error unless an SPI result has the columns this library reads: a
 * catalog created by another version of the extension must not be read
 * by position.
 */
static void
CheckShape(int natts, const char *what)
{
	if (SPI_tuptable == NULL || SPI_tuptable->tupdesc->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("recsys catalog %s does not match the installed library", what),
				 errhint("Run ALTER EXTENSION recsys UPDATE, or reinstall the extension.")));
}

/* Copy the model row of the first result tuple into a new info struct */
static RecsysModelInfo *
InfoFromTuple(MemoryContext cxt)
{
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	RecsysModelInfo *info = MemoryContextAllocZero(cxt, sizeof(RecsysModelInfo));
	MemoryContext old;
	char	   *method;
	Datum		d;

	CheckShape(16, "table recsys.models");
	info->model_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	info->version = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
	info->name = MemoryContextStrdup(cxt, TextDatumGetCString(SPI_getbinval(tup, desc, 8, &isnull)));
	method = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
	info->method = MethodByName(method);
	if (info->method == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model \"%s\" has unknown method \"%s\"", info->name, method),
				 errhint("Install the version of recsys that trained it, or retrain the model.")));
	info->factors = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
	info->num_users = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	info->num_items = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
	info->global_mean = DatumGetFloat8(SPI_getbinval(tup, desc, 7, &isnull));
	info->source = MemoryContextStrdup(cxt, TextDatumGetCString(SPI_getbinval(tup, desc, 9, &isnull)));
	info->user_col = MemoryContextStrdup(cxt, TextDatumGetCString(SPI_getbinval(tup, desc, 10, &isnull)));
	info->item_col = MemoryContextStrdup(cxt, TextDatumGetCString(SPI_getbinval(tup, desc, 11, &isnull)));
	d = SPI_getbinval(tup, desc, 12, &isnull);
	info->value_col = isnull ? NULL : MemoryContextStrdup(cxt, TextDatumGetCString(d));

	/* The options it was trained with (older keys ignored, missing ones default) */
	MethodDefaults(info->method, &info->params);
	d = SPI_getbinval(tup, desc, 13, &isnull);
	if (!isnull)
	{
		old = MemoryContextSwitchTo(cxt);
		MethodParseOptions(info->method, &info->params, DatumGetJsonbP(d), true, NULL);
		MemoryContextSwitchTo(old);
	}
	info->token = DatumGetInt64(SPI_getbinval(tup, desc, 14, &isnull));
	d = SPI_getbinval(tup, desc, 15, &isnull);
	info->user_id_type = isnull ? InvalidOid : DatumGetObjectId(d);
	d = SPI_getbinval(tup, desc, 16, &isnull);
	info->item_id_type = isnull ? InvalidOid : DatumGetObjectId(d);
	info->text_users = RatingsIsTextIdType(info->user_id_type);
	info->text_items = RatingsIsTextIdType(info->item_id_type);

	if (info->factors < (info->method->factors ? 1 : 0) ||
		info->factors > RECSYS_MAX_FACTORS ||
		(info->method->factors && info->factors != info->params.factors))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model \"%s\" has invalid number of factors %d",
						info->name, info->factors)));
	return info;
}

/* A copy of `info` and everything it points to, allocated in `cxt` */
static RecsysModelInfo *
CopyInfo(const RecsysModelInfo *info, MemoryContext cxt)
{
	RecsysModelInfo *copy = MemoryContextAlloc(cxt, sizeof(RecsysModelInfo));
	char	  **strings[] = {&copy->name, &copy->source, &copy->user_col,
		&copy->item_col, &copy->value_col, &copy->params.item_features,
		&copy->params.item_text, &copy->params.text_config,
	&copy->params.user_features, &copy->params.time_col, &copy->params.half_life,
	&copy->params.as_of};

	memcpy(copy, info, sizeof(RecsysModelInfo));
	for (int i = 0; i < (int) lengthof(strings); i++)
		if (*strings[i] != NULL)
			*strings[i] = MemoryContextStrdup(cxt, *strings[i]);
	return copy;
}

/* The cached copy of a model row still current at (model_id, version, token), or NULL */
static const RecsysModelInfo *
InfoCacheGet(const char *name, int64 model_id, int64 version, int64 token)
{
	for (int i = 0; i < INFO_CACHE_SIZE; i++)
	{
		RecsysModelInfo *info = info_cache[i].info;

		if (info != NULL && info->model_id == model_id && info->version == version &&
			info->token == token && strcmp(info->name, name) == 0)
		{
			info_cache[i].last_used = ++info_cache_clock;
			return info;
		}
	}
	return NULL;
}

/* Keep a copy of `info`, in place of the least recently used one */
static void
InfoCachePut(const RecsysModelInfo *info)
{
	int			victim = 0;
	MemoryContext cxt;

	for (int i = 0; i < INFO_CACHE_SIZE; i++)
	{
		if (info_cache[i].cxt == NULL)
		{
			victim = i;
			break;
		}
		if (info_cache[i].last_used < info_cache[victim].last_used)
			victim = i;
	}
	/* Callers hold copies of their own (CopyInfo), never this one */
	if (info_cache[victim].cxt != NULL)
		MemoryContextDelete(info_cache[victim].cxt);
	info_cache[victim].cxt = NULL;
	info_cache[victim].info = NULL;
	cxt = AllocSetContextCreate(TopMemoryContext, "recsys model info",
								ALLOCSET_SMALL_SIZES);
	info_cache[victim].info = CopyInfo(info, cxt);
	info_cache[victim].cxt = cxt;
	info_cache[victim].last_used = ++info_cache_clock;
}

#define MODEL_COLUMNS \
	"model_id, version, method, factors, num_users, num_items, global_mean, name, " \
	"source, user_col::pg_catalog.text, item_col::pg_catalog.text, " \
	"value_col::pg_catalog.text, params, "
/* The columns that came with 1.2, and what stands for them before */
#define MODEL_COLUMNS_1_2 \
	"token, user_id_type::pg_catalog.oid, item_id_type::pg_catalog.oid"
#define MODEL_COLUMNS_1_1 \
	"0::pg_catalog.int8, 0::pg_catalog.oid, 0::pg_catalog.oid"

/* Look up a model by name, with a new snapshot if `latest` */
static RecsysModelInfo *
LookupModel(const char *name, bool latest)
{
	MemoryContext outer = CurrentMemoryContext;
	RecsysModelInfo *info;

	if (name == NULL && recsys_default_model != NULL && recsys_default_model[0] != '\0')
		name = recsys_default_model;

	Connect();
	if (name != NULL)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(name)};
		SPIPlanPtr	probe = Prepare(&probe_plan,
									HasTokens() ?
									"SELECT model_id, version, token"
									" FROM recsys.models WHERE name OPERATOR(pg_catalog.=) $1" :
									"SELECT model_id, version, 0::pg_catalog.int8"
									" FROM recsys.models WHERE name OPERATOR(pg_catalog.=) $1",
									1, types);
		SPIPlanPtr	plan;

		if (SPI_execute_plan(probe, values, NULL, !latest, 1) != SPI_OK_SELECT)
			elog(ERROR, "model lookup failed");
		if (SPI_processed == 1)
		{
			HeapTuple	tup = SPI_tuptable->vals[0];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			const RecsysModelInfo *cached;

			CheckShape(3, "table recsys.models");
			cached = InfoCacheGet(name,
								  DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)),
								  DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)),
								  DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull)));
			if (cached != NULL)
			{
				info = CopyInfo(cached, outer);
				SPI_finish();
				return info;
			}
		}
		plan = Prepare(&lookup_plan,
								   HasTokens() ?
								   "SELECT " MODEL_COLUMNS MODEL_COLUMNS_1_2
								   " FROM recsys.models WHERE name OPERATOR(pg_catalog.=) $1" :
								   "SELECT " MODEL_COLUMNS MODEL_COLUMNS_1_1
								   " FROM recsys.models WHERE name OPERATOR(pg_catalog.=) $1",
								   1, types);

		if (SPI_execute_plan(plan, values, NULL, !latest, 1) != SPI_OK_SELECT)
			elog(ERROR, "model lookup failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", name),
					 errhint("Train it with CALL train('%s', ...), or see SELECT name FROM recsys.models.",
							 name)));
	}
	else
	{
		/*
		 * Only models the role owns or was granted by name: a model another
		 * role granted to PUBLIC must not make every role's unqualified
		 * calls ambiguous (or answer them).
		 */
		SPIPlanPtr	plan = Prepare(&only_model_plan,
								   HasTokens() ?
								   "SELECT " MODEL_COLUMNS MODEL_COLUMNS_1_2
								   " FROM recsys.models m"
								   " WHERE pg_catalog.pg_has_role(m.owner, 'MEMBER')"
								   " OR EXISTS (SELECT 1 FROM recsys.model_grants g"
								   " WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id"
								   " AND g.grantee IS NOT NULL"
								   " AND pg_catalog.pg_has_role(g.grantee, 'MEMBER'))"
								   " ORDER BY name LIMIT 2" :
								   "SELECT " MODEL_COLUMNS MODEL_COLUMNS_1_1
								   " FROM recsys.models m"
								   " WHERE pg_catalog.pg_has_role(m.owner, 'MEMBER')"
								   " OR EXISTS (SELECT 1 FROM recsys.model_grants g"
								   " WHERE g.model_id OPERATOR(pg_catalog.=) m.model_id"
								   " AND g.grantee IS NOT NULL"
								   " AND pg_catalog.pg_has_role(g.grantee, 'MEMBER'))"
								   " ORDER BY name LIMIT 2",
								   0, NULL);

		if (SPI_execute_plan(plan, NULL, NULL, !latest, 2) != SPI_OK_SELECT)
			elog(ERROR, "model lookup failed");
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("no model has been trained"),
					 errhint("Train one with CALL train('name', 'table', ...); a model granted to PUBLIC is only used when named, or with SET recsys.default_model.")));
		if (SPI_processed > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model name is required when more than one model exists"),
					 errhint("Pass model => 'name', or SET recsys.default_model = 'name'.")));
	}
	info = InfoFromTuple(outer);
	SPI_finish();
	if (name != NULL)
		InfoCachePut(info);
	return info;
}

/*
 * Look up a model by name; NULL name means recsys.default_model, or the
 * only model when that setting is empty.  Errors if there is no such model.
 * Reads with the calling query's snapshot (serving functions are STABLE).
 */
RecsysModelInfo *
CatalogLookupModel(const char *name)
{
	return LookupModel(name, false);
}

/*
 * The same with a new snapshot, for functions that change a model: after
 * waiting for a lock they must see what was committed meanwhile.
 */
RecsysModelInfo *
CatalogLookupModelLatest(const char *name)
{
	return LookupModel(name, true);
}

/*
 * Whether the current role holds a privilege ('serve', 'train', 'owner')
 * on a model it can see (recsys.model_privilege, under row-level
 * security).  Call inside an SPI connection.
 */
static bool
HasPrivilege(Datum model_id, const char *privilege)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {model_id, CStringGetTextDatum(privilege)};
	bool		isnull;

	Execute("SELECT recsys.model_privilege($1, $2)", 2, types, values, SPI_OK_SELECT);
	return SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
								   &isnull)) && !isnull;
}

/* Error unless the current role holds the privilege on the model */
static void
RequirePrivilege(Datum model_id, const char *name, const char *privilege)
{
	if (!HasPrivilege(model_id, privilege))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s model \"%s\"",
						strcmp(privilege, "owner") == 0 ? "drop or grant" : privilege, name),
				 strcmp(privilege, "owner") == 0 ?
				 errhint("Only the model's owner can do this.") :
				 errhint("The model's owner can allow it with grant_model('%s', <role>, '%s').",
						 name, privilege)));
}

/* Error unless the current role may change the model (retrain, refresh, forget) */
void
CatalogRequireTrain(const RecsysModelInfo *info)
{
	Connect();
	RequirePrivilege(Int64GetDatum(info->model_id), info->name, "train");
	SPI_finish();
}

/* Whether two optional names are equal (both NULL counts as equal) */
static bool
SameName(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Whether the calling role may (re)train the model `name` from `src`.
 * Looks the name up in all models, as the extension's owner, so that a
 * name taken by a model the role cannot see is refused before anything is
 * read.  Returns the model's id, or 0 when the name is free.  Errors:
 *	- the role lacks the train privilege: the owner is named only to roles
 *	  that may see the model;
 *	- the role has it but does not own the model, and asks for another
 *	  source, other columns or other feature relations: only the owner
 *	  changes what a model is trained from (a grantee's retrain would otherwise let it point the
 *	  owner's next refresh_user at a view of its own, or at another of the
 *	  owner's tables).
 * Call inside an SPI connection.
 */
static int64
CheckTrainable(const char *name, const RatingsSource *src, const RecsysParams *p)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		model_id;
	char	   *owner;
	char	   *source;
	char	   *user_col;
	char	   *item_col;
	char	   *value_col;
	char	   *requested;
	char	   *stored_features;
	char	   *requested_features;
	Datum		d;

	ExecuteAsOwner("SELECT model_id, owner::pg_catalog.text, source, "
				   "user_col::pg_catalog.text, item_col::pg_catalog.text, "
				   "value_col::pg_catalog.text, "
				   "pg_catalog.concat_ws(',', params OPERATOR(pg_catalog.->>) 'item_features', "
				   "params OPERATOR(pg_catalog.->>) 'item_text', "
				   "params OPERATOR(pg_catalog.->>) 'user_features') "
				   "FROM recsys.models WHERE name OPERATOR(pg_catalog.=) $1",
				   1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	model_id = SPI_getbinval(tup, desc, 1, &isnull);
	owner = SPI_getvalue(tup, desc, 2);
	source = SPI_getvalue(tup, desc, 3);
	user_col = SPI_getvalue(tup, desc, 4);
	item_col = SPI_getvalue(tup, desc, 5);
	d = SPI_getbinval(tup, desc, 6, &isnull);
	value_col = isnull ? NULL : TextDatumGetCString(d);
	stored_features = SPI_getvalue(tup, desc, 7);

	if (!HasPrivilege(model_id, "train"))
	{
		if (HasPrivilege(model_id, "serve"))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to train model \"%s\"", name),
					 errdetail("Model \"%s\" belongs to role %s.", name, owner),
					 errhint("The model's owner can allow it with grant_model('%s', <role>, 'train').",
							 name)));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("model name \"%s\" is taken by another role", name),
				 errhint("Choose another model name.")));
	}

	requested = RatingsSourceName(src->relid);
	/* The relations of features: as concat_ws above makes of them */
	requested_features = psprintf("%s%s%s%s%s",
								  p->item_features ? p->item_features : "",
								  p->item_features && (p->item_text || p->user_features) ? "," : "",
								  p->item_text ? p->item_text : "",
								  p->item_text && p->user_features ? "," : "",
								  p->user_features ? p->user_features : "");
	if (!HasPrivilege(model_id, "owner") &&
		(strcmp(requested, source) != 0 || strcmp(src->user_col, user_col) != 0 ||
		 strcmp(src->item_col, item_col) != 0 ||
		 !SameName(src->value_col, value_col) ||
		 strcmp(requested_features, stored_features ? stored_features : "") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only the owner of model \"%s\" can change its source, columns or features",
						name),
				 errdetail("Model \"%s\" belongs to role %s and is trained from %s "
						   "(user_col %s, item_col %s, value_col %s); this call asks for %s "
						   "(user_col %s, item_col %s, value_col %s).",
						   name, owner, source, user_col, item_col,
						   value_col ? value_col : "none", requested, src->user_col,
						   src->item_col, src->value_col ? src->value_col : "none"),
				 errhint("Retrain it from the same source and columns, or ask its owner.")));
	return DatumGetInt64(model_id);
}

/*
 * Before a training reads anything: error unless the calling role may
 * train the model `name` from `src` (see CheckTrainable).
 */
void
CatalogCheckTrainable(const char *name, const RatingsSource *src,
					  const RecsysParams *p)
{
	Connect();
	(void) CheckTrainable(name, src, p);
	SPI_finish();
}

/*
 * Delete a model's factor and log rows (not its models row).
 *
 * The rows are found through the primary key (model_id first) however
 * large a share of the table the model holds: the planner picks a
 * sequential scan once the model is a third of the table, and that scan
 * reads and deforms every model's rows and every dead row the earlier
 * versions left until VACUUM (in a 1M retrain it was half of this
 * delete's time, and grew with the table).  The setting holds for these
 * statements only.
 */
static void
DeleteModelRows(Datum model_id)
{
	Oid			type = INT8OID;
	int			save_nestlevel = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	ExecuteAsOwner("DELETE FROM recsys.user_factors WHERE model_id OPERATOR(pg_catalog.=) $1",
				   1, &type, &model_id, NULL, SPI_OK_DELETE);
	ExecuteAsOwner("DELETE FROM recsys.item_factors WHERE model_id OPERATOR(pg_catalog.=) $1",
				   1, &type, &model_id, NULL, SPI_OK_DELETE);
	ExecuteAsOwner("DELETE FROM recsys.training_log WHERE model_id OPERATOR(pg_catalog.=) $1",
				   1, &type, &model_id, NULL, SPI_OK_DELETE);
	if (HasTokens())
	{
		ExecuteAsOwner("DELETE FROM recsys.item_neighbors WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, &type, &model_id, NULL, SPI_OK_DELETE);
		ExecuteAsOwner("DELETE FROM recsys.entity_features WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, &type, &model_id, NULL, SPI_OK_DELETE);
		ExecuteAsOwner("DELETE FROM recsys.model_features WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, &type, &model_id, NULL, SPI_OK_DELETE);
		ExecuteAsOwner("DELETE FROM recsys.id_map WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, &type, &model_id, NULL, SPI_OK_DELETE);
	}
	AtEOXact_GUC(true, save_nestlevel);
}

/*
 * A new cache token: a random number drawn for every new version of a
 * model.  The shared and backend caches key on (database, model, version,
 * token): ids and versions come from sequences only recsys advances, and
 * the token also tells apart versions of the same number in a database
 * whose extension was dropped and created again, or restored.
 */
static int64
NewToken(void)
{
	int64		token;

	if (!pg_strong_random(&token, sizeof(token)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random cache token")));
	return token;
}

/*
 * Create or update the model row, as the extension's owner, after checking
 * (again, under the model's lock) that the caller may; returns its
 * model_id.  A new model belongs to the calling role; a retrain keeps the
 * owner.
 */
static int64
UpsertModelRow(const RecsysTrained *t)
{
	const RecsysRatings *r = t->ratings;
	const RecsysIteration *last = t->iterations > 0 ? &t->log[t->iterations - 1] : NULL;
	Oid			types[22] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID,
		NAMEOID, NAMEOID, NAMEOID, INT4OID, INT4OID, INT8OID, FLOAT8OID,
		FLOAT8OID, FLOAT8OID, FLOAT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, TEXTOID, OIDOID, OIDOID};
	Datum		values[22];
	char		nulls[22];
	bool		tokens = HasTokens();
	int64		model_id;
	bool		isnull;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(t->name);
	values[1] = CStringGetTextDatum(t->params->method->name);
	values[2] = Int32GetDatum(t->params->method->factors ? t->params->factors : 0);
	values[3] = CStringGetTextDatum(MethodParamsJson(t->params));
	values[4] = CStringGetTextDatum(RatingsSourceName(t->source->relid));
	values[5] = CStringGetDatum(t->source->user_col);
	values[6] = CStringGetDatum(t->source->item_col);
	values[7] = CStringGetDatum(t->source->value_col ? t->source->value_col : "");
	if (t->source->value_col == NULL)
		nulls[7] = 'n';
	values[8] = Int32GetDatum(r->nusers);
	values[9] = Int32GetDatum(r->nitems);
	values[10] = Int64GetDatum(r->nnz);
	values[11] = Float8GetDatum(t->model->mean);
	values[12] = Float8GetDatum(t->seconds);
	values[13] = Float8GetDatum(last ? last->loss : 0.0);
	values[14] = Float8GetDatum(last ? last->rmse : 0.0);
	if (last == NULL)
		nulls[13] = 'n';
	if (last == NULL || isnan(last->rmse))
		nulls[14] = 'n';
	values[15] = Int64GetDatum(r->null_values);
	values[16] = Int64GetDatum(r->duplicates);
	values[18] = Int64GetDatum(NewToken());
	values[19] = CStringGetTextDatum(t->preprocessing ? t->preprocessing : "");
	if (t->preprocessing == NULL)
		nulls[19] = 'n';
	values[20] = ObjectIdGetDatum(t->user_id_type);
	values[21] = ObjectIdGetDatum(t->item_id_type);

	/* NAME parameters must be NAMEDATALEN-padded Name data */
	for (int i = 5; i <= 7; i++)
	{
		if (nulls[i] == ' ')
		{
			Name		n = palloc0(NAMEDATALEN);

			namestrcpy(n, DatumGetCString(values[i]));
			values[i] = NameGetDatum(n);
		}
	}

	model_id = CheckTrainable(t->name, t->source, t->params);
	if (model_id != 0)
	{
		values[17] = Int64GetDatum(model_id);
		/* Catalogs before 1.2 have no token column ($19, $20 unused) */
		ExecuteAsOwner(tokens ?
					   "UPDATE recsys.models SET method = $2, factors = $3, "
					   "params = $4::pg_catalog.jsonb, source = $5, user_col = $6, "
					   "item_col = $7, value_col = $8, num_users = $9, num_items = $10, "
					   "num_interactions = $11, global_mean = $12, "
					   "version = DEFAULT, token = $19, preprocessing = $20::pg_catalog.jsonb, "
					   "user_id_type = $21::pg_catalog.regtype, item_id_type = $22::pg_catalog.regtype, "
					   "trained_at = pg_catalog.clock_timestamp(), "
					   "train_seconds = $13, final_loss = $14, final_rmse = $15, "
					   "null_values = $16, duplicates = $17 "
					   "WHERE model_id OPERATOR(pg_catalog.=) $18 AND name OPERATOR(pg_catalog.=) $1" :
					   "UPDATE recsys.models SET method = $2, factors = $3, "
					   "params = $4::pg_catalog.jsonb, source = $5, user_col = $6, "
					   "item_col = $7, value_col = $8, num_users = $9, num_items = $10, "
					   "num_interactions = $11, global_mean = $12, "
					   "version = DEFAULT, "
					   "trained_at = pg_catalog.clock_timestamp(), "
					   "train_seconds = $13, final_loss = $14, final_rmse = $15, "
					   "null_values = $16, duplicates = $17 "
					   "WHERE model_id OPERATOR(pg_catalog.=) $18 AND name OPERATOR(pg_catalog.=) $1",
					   tokens ? 22 : 18, types, values, nulls, SPI_OK_UPDATE);
		if (SPI_processed != 1)
			elog(ERROR, "model row of \"%s\" vanished under its lock", t->name);

		/* The previous version's rows stay visible to others until commit */
		DeleteModelRows(values[17]);
	}
	else
	{
		/* $18: the calling role owns the new model */
		types[17] = OIDOID;
		values[17] = ObjectIdGetDatum(GetUserId());
		ExecuteAsOwner(tokens ?
					   "INSERT INTO recsys.models (name, method, factors, params, "
					   "source, user_col, item_col, value_col, num_users, num_items, "
					   "num_interactions, global_mean, trained_at, train_seconds, "
					   "final_loss, final_rmse, null_values, duplicates, owner, token, "
					   "preprocessing, user_id_type, item_id_type) "
					   "VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5, $6, $7, $8, $9, $10, "
					   "$11, $12, pg_catalog.clock_timestamp(), $13, $14, $15, $16, $17, "
					   "$18::pg_catalog.regrole, $19, $20::pg_catalog.jsonb, "
					   "$21::pg_catalog.regtype, $22::pg_catalog.regtype) RETURNING model_id" :
					   "INSERT INTO recsys.models (name, method, factors, params, "
					   "source, user_col, item_col, value_col, num_users, num_items, "
					   "num_interactions, global_mean, trained_at, train_seconds, "
					   "final_loss, final_rmse, null_values, duplicates, owner) "
					   "VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5, $6, $7, $8, $9, $10, "
					   "$11, $12, pg_catalog.clock_timestamp(), $13, $14, $15, $16, $17, "
					   "$18::pg_catalog.regrole) RETURNING model_id",
					   tokens ? 22 : 18, types, values, nulls, SPI_OK_INSERT_RETURNING);
		model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	}
	return model_id;
}

/*
 * Insert one side's factor rows straight into the table (CatalogBulk*):
 * the arrays of each row are built from the model's and the ratings'
 * arrays and handed to the table access method, with no statement to
 * parse, no unnest or slicing, and whole-page WAL records.  The rows are
 * the same as InsertFactorsSQL's (the same array bytes: one dimension,
 * lower bound 1, no NULLs; empty arrays without dimensions).  Returns
 * false, having written nothing, when the table is not one the direct
 * path may write (see catalog_write.c).
 */
static bool
InsertFactorsDirect(int64 model_id, bool users, const RecsysRatings *r,
					const AlsModel *m, const float *seen_values)
{
	static const char *const item_columns[] = {"model_id", "item_id", "bias",
	"factors", "popularity"};
	static const Oid item_types[] = {INT8OID, INT8OID, FLOAT4OID,
	FLOAT4ARRAYOID, INT8OID};
	int			k = m->k;
	int			nrows = users ? r->nusers : r->nitems;
	const int64 *ids = users ? r->user_ids : r->item_ids;
	const float *factors = users ? m->user_factors : m->item_factors;
	const float *bias = users ? m->user_bias : m->item_bias;
	const RecsysSparse *sp = users ? &r->by_user : &r->by_item;
	CatalogBulk *b;
	MemoryContext row_cxt;
	int64		maxlen = 0;
	int64	   *seen = NULL;

	b = users ? CatalogBulkBegin("user_factors", user_columns, user_types,
								 lengthof(user_columns)) :
		CatalogBulkBegin("item_factors", item_columns, item_types,
						 lengthof(item_columns));
	if (b == NULL)
		return false;

	/* One buffer of original item ids, as long as the longest user's row */
	if (users)
	{
		for (int row = 0; row < nrows; row++)
			maxlen = Max(maxlen, sp->indptr[row + 1] - sp->indptr[row]);
		seen = palloc_extended(sizeof(int64) * Max(maxlen, 1), MCXT_ALLOC_HUGE);
	}
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys factor row",
									ALLOCSET_DEFAULT_SIZES);
	for (int row = 0; row < nrows; row++)
	{
		Datum		values[6];
		MemoryContext old = MemoryContextSwitchTo(row_cxt);

		values[0] = Int64GetDatum(model_id);
		values[1] = Int64GetDatum(ids[row]);
		values[2] = Float4GetDatum(bias[row]);
		values[3] = PointerGetDatum(ArrayFromFloat4(k > 0 ? factors + (Size) row * k : NULL,
													k));
		if (users)
		{
			int64		start = sp->indptr[row];
			int			len = (int) (sp->indptr[row + 1] - start);

			for (int j = 0; j < len; j++)
				seen[j] = r->item_ids[sp->indices[start + j]];
			values[4] = PointerGetDatum(ArrayFromInt8(seen, len));
			values[5] = PointerGetDatum(ArrayFromFloat4(len > 0 ? seen_values + start : NULL,
														len));
		}
		else
			values[4] = Int64GetDatum(sp->indptr[row + 1] - sp->indptr[row]);
		CatalogBulkAdd(b, values);
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
	}
	MemoryContextDelete(row_cxt);
	if (seen != NULL)
		pfree(seen);
	CatalogBulkEnd(b);
	return true;
}

/*
 * Insert one side's factor rows: directly (InsertFactorsDirect), or, when
 * the table has triggers, rules or the like that only an INSERT runs, in
 * batches of INSERT ... SELECT over arrays.  For users, `seen` (the user's
 * training items, as original ids) is stored too; for items, popularity.
 */
static void
InsertFactors(int64 model_id, bool users, const RecsysRatings *r,
			  const AlsModel *m, const float *seen_values)
{
	if (!InsertFactorsDirect(model_id, users, r, m, seen_values))
		InsertFactorsSQL(model_id, users, r, m, seen_values);
}

/*
 * Insert one side's factor rows in batches of one INSERT ... SELECT over
 * arrays (slices of one flat array per row).
 */
static void
InsertFactorsSQL(int64 model_id, bool users, const RecsysRatings *r,
				 const AlsModel *m, const float *seen_values)
{
	int			k = m->k;
	int			nrows = users ? r->nusers : r->nitems;
	const int64 *ids = users ? r->user_ids : r->item_ids;
	const float *factors = users ? m->user_factors : m->item_factors;
	const float *bias = users ? m->user_bias : m->item_bias;
	const RecsysSparse *sp = users ? &r->by_user : &r->by_item;
	const char *sql = users ?
	"INSERT INTO recsys.user_factors (model_id, user_id, bias, factors, seen, seen_values) "
	"SELECT $1, u.id, u.bias, $4[u.lo:u.hi], $7[u.slo:u.shi], $10[u.slo:u.shi] "
	"FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
	"pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($8), "
	"pg_catalog.unnest($9)) AS u(id, bias, lo, hi, slo, shi)" :
	"INSERT INTO recsys.item_factors (model_id, item_id, bias, factors, popularity) "
	"SELECT $1, u.id, u.bias, $4[u.lo:u.hi], u.pop "
	"FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
	"pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) "
	"AS u(id, bias, lo, hi, pop)";
	Oid			types[10] = {INT8OID, INT8ARRAYOID, FLOAT4ARRAYOID, FLOAT4ARRAYOID,
		INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
	INT4ARRAYOID, INT4ARRAYOID, FLOAT4ARRAYOID};
	int			nargs = users ? 10 : 7;
	int			max_rows = CATALOG_BATCH_ELEMENTS / Max(k, 64);
	int32	   *lo = palloc(sizeof(int32) * max_rows);
	int32	   *hi = palloc(sizeof(int32) * max_rows);
	int32	   *slo = palloc(sizeof(int32) * max_rows);
	int32	   *shi = palloc(sizeof(int32) * max_rows);
	int64	   *extra = palloc(sizeof(int64) * max_rows);
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"recsys factor batch",
													ALLOCSET_DEFAULT_SIZES);

	for (int start = 0; start < nrows;)
	{
		int			count = 0;
		int64		nseen = 0;
		Datum		values[10];
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();

		/* Fill a batch, bounded by factor elements and seen ids */
		while (start + count < nrows && count < max_rows)
		{
			int			row = start + count;
			int64		len = users ? sp->indptr[row + 1] - sp->indptr[row] : 0;

			if (users && count > 0 && nseen + len > CATALOG_BATCH_ELEMENTS)
				break;
			lo[count] = count * k + 1;
			hi[count] = (count + 1) * k;
			if (users)
			{
				slo[count] = (int32) nseen + 1;
				shi[count] = (int32) (nseen + len);
				nseen += len;
			}
			count++;
		}

		old = MemoryContextSwitchTo(batch_cxt);
		values[0] = Int64GetDatum(model_id);
		values[1] = PointerGetDatum(ArrayFromInt8(ids + start, count));
		values[2] = PointerGetDatum(ArrayFromFloat4(bias + start, count));
		values[3] = PointerGetDatum(ArrayFromFloat4(factors + (Size) start * k,
													count * k));
		values[4] = PointerGetDatum(ArrayFromInt4(lo, count));
		values[5] = PointerGetDatum(ArrayFromInt4(hi, count));
		if (users)
		{
			int64		pos = 0;
			int64	   *seen = palloc_extended(sizeof(int64) * Max(nseen, 1),
											   MCXT_ALLOC_HUGE);

			for (int row = start; row < start + count; row++)
				for (int64 e = sp->indptr[row]; e < sp->indptr[row + 1]; e++)
					seen[pos++] = r->item_ids[sp->indices[e]];
			values[6] = PointerGetDatum(ArrayFromInt8(seen, (int) nseen));
			values[7] = PointerGetDatum(ArrayFromInt4(slo, count));
			values[8] = PointerGetDatum(ArrayFromInt4(shi, count));
			values[9] = PointerGetDatum(ArrayFromFloat4(seen_values + sp->indptr[start],
														(int) nseen));
		}
		else
		{
			for (int j = 0; j < count; j++)
				extra[j] = sp->indptr[start + j + 1] - sp->indptr[start + j];
			values[6] = PointerGetDatum(ArrayFromInt8(extra, count));
		}
		ExecuteAsOwner(sql, nargs, types, values, NULL, SPI_OK_INSERT);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
		start += count;
	}
	MemoryContextDelete(batch_cxt);
}

/*
 * Insert each item's neighbour list (ids and weights, best first) in
 * batches of about CATALOG_BATCH_ELEMENTS entries.
 */
static void
InsertNeighbors(int64 model_id, const RecsysRatings *r, const KnnGraph *g)
{
	Oid			types[6] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID, FLOAT4ARRAYOID,
	INT4ARRAYOID, INT4ARRAYOID};
	int			max_rows = Max(1, CATALOG_BATCH_ELEMENTS / Max(g->neighbors, 1));
	int64	   *ids = palloc(sizeof(int64) * max_rows);
	int32	   *lo = palloc(sizeof(int32) * max_rows);
	int32	   *hi = palloc(sizeof(int32) * max_rows);
	int64	   *nbr = palloc(sizeof(int64) * (Size) max_rows * Max(g->neighbors, 1));
	float	   *w = palloc(sizeof(float) * (Size) max_rows * Max(g->neighbors, 1));
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"recsys neighbour batch",
													ALLOCSET_DEFAULT_SIZES);

	for (int start = 0; start < g->nitems; start += max_rows)
	{
		int			count = Min(max_rows, g->nitems - start);
		int			pos = 0;
		Datum		values[6];
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < count; j++)
		{
			int			i = start + j;
			const int32 *rows = g->rows + (Size) i * g->neighbors;
			const float *ws = g->weights + (Size) i * g->neighbors;

			ids[j] = r->item_ids[i];
			lo[j] = pos + 1;
			for (int x = 0; x < g->count[i]; x++, pos++)
			{
				nbr[pos] = r->item_ids[rows[x]];
				w[pos] = ws[x];
			}
			hi[j] = pos;
		}
		old = MemoryContextSwitchTo(batch_cxt);
		values[0] = Int64GetDatum(model_id);
		values[1] = PointerGetDatum(ArrayFromInt8(ids, count));
		values[2] = PointerGetDatum(ArrayFromInt8(nbr, pos));
		values[3] = PointerGetDatum(ArrayFromFloat4(w, pos));
		values[4] = PointerGetDatum(ArrayFromInt4(lo, count));
		values[5] = PointerGetDatum(ArrayFromInt4(hi, count));
		ExecuteAsOwner("INSERT INTO recsys.item_neighbors (model_id, item_id, neighbors, weights) "
					   "SELECT $1, u.id, $3[u.lo:u.hi], $4[u.lo:u.hi] "
					   "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($5), "
					   "pg_catalog.unnest($6)) AS u(id, lo, hi)",
					   6, types, values, NULL, SPI_OK_INSERT);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
	}
	MemoryContextDelete(batch_cxt);
}

/*
 * Insert one side's features: the vocabulary (name, idf, factors) and each
 * entity's features and weights, in batches.
 */
static void
InsertFeatures(int64 model_id, const char *side, const ModelFeatures *f,
			   const int64 *ids)
{
	Oid			vtypes[6] = {INT8OID, TEXTOID, TEXTARRAYOID, FLOAT4ARRAYOID,
	FLOAT4ARRAYOID, INT4OID};
	Oid			etypes[7] = {INT8OID, TEXTOID, INT8ARRAYOID, INT4ARRAYOID,
	FLOAT4ARRAYOID, INT4ARRAYOID, INT4ARRAYOID};
	int			max_rows = Max(1, CATALOG_BATCH_ELEMENTS / Max(f->k, 64));
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"recsys feature batch",
													ALLOCSET_DEFAULT_SIZES);
	int			nrows = f->rows.nrows;

	/* The vocabulary */
	for (int start = 0; start < f->nfeatures; start += max_rows)
	{
		int			count = Min(max_rows, f->nfeatures - start);
		Datum		values[6];
		Datum	   *names;
		MemoryContext old = MemoryContextSwitchTo(batch_cxt);

		CHECK_FOR_INTERRUPTS();
		names = palloc(sizeof(Datum) * count);
		for (int j = 0; j < count; j++)
			names[j] = CStringGetTextDatum(f->names[start + j]);
		values[0] = Int64GetDatum(model_id);
		values[1] = CStringGetTextDatum(side);
		values[2] = PointerGetDatum(construct_array_builtin(names, count, TEXTOID));
		values[3] = PointerGetDatum(ArrayFromFloat4(f->idf ? f->idf + start : NULL,
													f->idf ? count : 0));
		values[4] = PointerGetDatum(ArrayFromFloat4(f->factors ? f->factors + (Size) start * f->k : NULL,
													f->factors ? count * f->k : 0));
		values[5] = Int32GetDatum(f->k);
		ExecuteAsOwner("INSERT INTO recsys.model_features (model_id, side, feature_id, name, idf, factors) "
					   "SELECT $1, $2, u.ord::pg_catalog.int4 OPERATOR(pg_catalog.+) $7 OPERATOR(pg_catalog.-) 1, u.name, $4[u.ord], "
					   "CASE WHEN pg_catalog.cardinality($5) OPERATOR(pg_catalog.=) 0 THEN NULL "
					   "ELSE $5[(u.ord OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.*) $6 OPERATOR(pg_catalog.+) 1 : "
					   "u.ord OPERATOR(pg_catalog.*) $6] END "
					   "FROM pg_catalog.unnest($3) WITH ORDINALITY AS u(name, ord)",
					   7, (Oid[]) {vtypes[0], vtypes[1], vtypes[2], vtypes[3], vtypes[4], vtypes[5], INT4OID},
					   (Datum[]) {values[0], values[1], values[2], values[3], values[4], values[5],
						   Int32GetDatum(start)}, NULL, SPI_OK_INSERT);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
	}

	/* Each entity's features */
	for (int start = 0; start < nrows;)
	{
		int			count = 0;
		int64		nvals = 0;
		int64	   *eids;
		int32	   *lo;
		int32	   *hi;
		Datum		values[7];
		MemoryContext old = MemoryContextSwitchTo(batch_cxt);

		CHECK_FOR_INTERRUPTS();
		eids = palloc(sizeof(int64) * Min(max_rows, nrows - start));
		lo = palloc(sizeof(int32) * Min(max_rows, nrows - start));
		hi = palloc(sizeof(int32) * Min(max_rows, nrows - start));
		while (start < nrows && count < max_rows)
		{
			int64		len = f->rows.indptr[start + 1] - f->rows.indptr[start];

			if (len > 0)
			{
				if (count > 0 && nvals + len > CATALOG_BATCH_ELEMENTS)
					break;
				eids[count] = ids[start];
				lo[count] = (int32) (f->rows.indptr[start] + 1);
				hi[count] = (int32) f->rows.indptr[start + 1];
				nvals += len;
				count++;
			}
			start++;
		}
		if (count > 0)
		{
			int64		first = lo[0] - 1;
			int64		last = hi[count - 1];

			for (int j = 0; j < count; j++)
			{
				lo[j] -= first;
				hi[j] -= first;
			}
			values[0] = Int64GetDatum(model_id);
			values[1] = CStringGetTextDatum(side);
			values[2] = PointerGetDatum(ArrayFromInt8(eids, count));
			values[3] = PointerGetDatum(ArrayFromInt4(f->rows.indices + first, (int) (last - first)));
			values[4] = PointerGetDatum(ArrayFromFloat4(f->rows.values + first, (int) (last - first)));
			values[5] = PointerGetDatum(ArrayFromInt4(lo, count));
			values[6] = PointerGetDatum(ArrayFromInt4(hi, count));
			ExecuteAsOwner("INSERT INTO recsys.entity_features (model_id, side, entity_id, features, weights) "
						   "SELECT $1, $2, u.id, $4[u.lo:u.hi], $5[u.lo:u.hi] "
						   "FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($6), "
						   "pg_catalog.unnest($7)) AS u(id, lo, hi)",
						   7, etypes, values, NULL, SPI_OK_INSERT);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
	}
	MemoryContextDelete(batch_cxt);
}

/*
 * Insert one side's dictionary of text ids, in batches: id ids[j] is the
 * external id names[ids[j] - 1].
 */
static void
InsertIdMap(int64 model_id, const char *side, const int64 *ids, int n,
			char **names)
{
	Oid			types[4] = {INT8OID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID};
	int			max_rows = CATALOG_BATCH_ELEMENTS / 4;
	MemoryContext batch_cxt = AllocSetContextCreate(CurrentMemoryContext,
													"recsys id batch",
													ALLOCSET_DEFAULT_SIZES);

	for (int start = 0; start < n; start += max_rows)
	{
		int			count = Min(max_rows, n - start);
		Datum		values[4];
		Datum	   *ext;
		MemoryContext old = MemoryContextSwitchTo(batch_cxt);

		CHECK_FOR_INTERRUPTS();
		ext = palloc(sizeof(Datum) * count);
		for (int j = 0; j < count; j++)
			ext[j] = CStringGetTextDatum(names[ids[start + j] - 1]);
		values[0] = Int64GetDatum(model_id);
		values[1] = CStringGetTextDatum(side);
		values[2] = PointerGetDatum(construct_array_builtin(ext, count, TEXTOID));
		values[3] = PointerGetDatum(ArrayFromInt8(ids + start, count));
		ExecuteAsOwner("INSERT INTO recsys.id_map (model_id, side, external, internal) "
					   "SELECT $1, $2, u.e, u.i FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) AS u(e, i)",
					   4, types, values, NULL, SPI_OK_INSERT);
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_cxt);
	}
	MemoryContextDelete(batch_cxt);
}

/* Insert the training log rows */
static void
InsertLog(int64 model_id, const RecsysTrained *t)
{
	int			n = t->iterations;
	int32	   *iters = palloc(sizeof(int32) * n);
	double	   *loss = palloc(sizeof(double) * n);
	double	   *rmse = palloc(sizeof(double) * n);
	double	   *secs = palloc(sizeof(double) * n);
	int64	   *bytes = palloc(sizeof(int64) * n);
	Oid			types[6] = {INT8OID, INT4ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID,
	FLOAT8ARRAYOID, INT8ARRAYOID};
	Datum		values[6];

	for (int i = 0; i < n; i++)
	{
		iters[i] = i + 1;
		loss[i] = t->log[i].loss;
		rmse[i] = t->log[i].rmse;
		secs[i] = t->log[i].seconds;
		bytes[i] = t->log[i].bytes;
	}
	values[0] = Int64GetDatum(model_id);
	values[1] = PointerGetDatum(ArrayFromInt4(iters, n));
	values[2] = PointerGetDatum(ArrayFromFloat8(loss, n));
	values[3] = PointerGetDatum(ArrayFromFloat8(rmse, n));
	values[4] = PointerGetDatum(ArrayFromFloat8(secs, n));
	values[5] = PointerGetDatum(ArrayFromInt8(bytes, n));
	/* bytes_shipped (distributed trainings only) came with 1.2 */
	ExecuteAsOwner(HasTokens() ?
			"INSERT INTO recsys.training_log (model_id, version, iteration, loss, rmse, seconds, bytes_shipped) "
			"SELECT $1, m.version, u.it, u.loss, "
			"CASE WHEN pg_catalog.float8eq(u.rmse, 'NaN') THEN NULL ELSE u.rmse END, u.secs, "
			"NULLIF(u.bytes, 0) "
			"FROM recsys.models m, ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
			"pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)) AS u(it, loss, rmse, secs, bytes) "
			"WHERE m.model_id OPERATOR(pg_catalog.=) $1" :
			"INSERT INTO recsys.training_log (model_id, version, iteration, loss, rmse, seconds) "
			"SELECT $1, m.version, u.it, u.loss, "
			"CASE WHEN pg_catalog.float8eq(u.rmse, 'NaN') THEN NULL ELSE u.rmse END, u.secs "
			"FROM recsys.models m, ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
			"pg_catalog.unnest($4), pg_catalog.unnest($5)) AS u(it, loss, rmse, secs) "
			"WHERE m.model_id OPERATOR(pg_catalog.=) $1",
			HasTokens() ? 6 : 5, types, values, NULL, SPI_OK_INSERT);
}

/*
 * Store a finished training run: the model row (new version), the factors
 * of every user and item, and the training log, replacing any previous
 * version of the model in the current transaction.
 */
int64
CatalogStoreModel(const RecsysTrained *t)
{
	int64		model_id;

	Connect();
	model_id = UpsertModelRow(t);
	if (!t->users_elsewhere)
		InsertFactors(model_id, true, t->ratings, t->model, t->seen_values);
	InsertFactors(model_id, false, t->ratings, t->model, NULL);
	if (t->graph != NULL)
		InsertNeighbors(model_id, t->ratings, t->graph);
	if (t->item_features != NULL)
		InsertFeatures(model_id, "item", t->item_features, t->ratings->item_ids);
	if (t->user_features != NULL)
		InsertFeatures(model_id, "user", t->user_features, t->ratings->user_ids);
	if (t->ratings->user_names != NULL)
		InsertIdMap(model_id, "user", t->ratings->user_ids, t->ratings->nusers,
					t->ratings->user_names);
	if (t->ratings->item_names != NULL)
		InsertIdMap(model_id, "item", t->ratings->item_ids, t->ratings->nitems,
					t->ratings->item_names);
	if (t->iterations > 0)
		InsertLog(model_id, t);
	SPI_finish();
	return model_id;
}

/*
 * Insert a block of user rows of a model being stored (distributed
 * training: the shards' users, one block at a time): r's users, their seen
 * items as indexes into r->item_ids, m's user factors.
 */
void
CatalogInsertUserChunk(int64 model_id, const RecsysRatings *r, const AlsModel *m,
					   const float *seen_values)
{
	Connect();
	InsertFactors(model_id, true, r, m, seen_values);
	SPI_finish();
}

/*
 * Replace every item row of a model (factors, popularity, neighbour lists)
 * by those of a new training of its item side (forget_user); user rows are
 * left alone.
 */
void
CatalogReplaceItems(const RecsysModelInfo *info, const RecsysRatings *r,
					const AlsModel *m, const KnnGraph *g)
{
	Oid			type = INT8OID;
	Datum		model_id = Int64GetDatum(info->model_id);

	Connect();
	ExecuteAsOwner("DELETE FROM recsys.item_factors WHERE model_id OPERATOR(pg_catalog.=) $1",
				   1, &type, &model_id, NULL, SPI_OK_DELETE);
	if (HasTokens())
		ExecuteAsOwner("DELETE FROM recsys.item_neighbors WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, &type, &model_id, NULL, SPI_OK_DELETE);
	InsertFactors(info->model_id, false, r, m, NULL);
	if (g != NULL)
		InsertNeighbors(info->model_id, r, g);
	SPI_finish();
}

/* Delete a model and its rows; false if it did not exist */
bool
CatalogDropModel(const char *name, int64 *dropped_id)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	bool		found;
	bool		isnull;
	Datum		model_id;

	Connect();
	Execute("SELECT model_id FROM recsys.models WHERE name OPERATOR(pg_catalog.=) $1",
			1, types, values, SPI_OK_SELECT);
	found = SPI_processed > 0;
	if (found)
	{
		model_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
								 &isnull);
		RequirePrivilege(model_id, name, "owner");
		/* Children first: no row is ever left without its model */
		DeleteModelRows(model_id);
		ExecuteAsOwner("DELETE FROM recsys.model_grants WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, (Oid[]) {INT8OID}, &model_id, NULL, SPI_OK_DELETE);
		ExecuteAsOwner("DELETE FROM recsys.models WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, (Oid[]) {INT8OID}, &model_id, NULL, SPI_OK_DELETE);
		*dropped_id = DatumGetInt64(model_id);
	}
	SPI_finish();
	return found;
}

/* Error for a stored row that does not match its model */
static void
CorruptRow(const RecsysModelInfo *info, const char *side, int64 id,
		   const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("stored %s %lld of model \"%s\" is invalid: %s", side,
					(long long) id, info->name, what),
			 errhint("Retrain the model with CALL train(...).")));
}

/*
 * Load one side of a model (items, or users when `users`) into `out`,
 * allocated in the current memory context.  The caller must not rely on
 * any row order.
 */
void
CatalogLoadFactors(const RecsysModelInfo *info, bool users, RecsysFactors *out)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(info->model_id)};
	SPIPlanPtr	plan;
	int			k = info->factors;
	const char *side = users ? "user" : "item";
	uint64		n;

	Connect();
	if (users)
		plan = Prepare(&users_plan,
					   "SELECT user_id, bias, factors, "
					   "pg_catalog.cardinality(seen)::pg_catalog.int8 "
					   "FROM recsys.user_factors WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, types);
	else
		plan = Prepare(&items_plan,
					   "SELECT item_id, bias, factors, popularity "
					   "FROM recsys.item_factors WHERE model_id OPERATOR(pg_catalog.=) $1",
					   1, types);
	if (ExecuteModelRead(info, plan, values, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading %s factors failed", side);
	n = SPI_processed;
	CheckShape(4, users ? "table recsys.user_factors" : "table recsys.item_factors");
	if (n == 0 || n > PG_INT32_MAX)
		CorruptRow(info, users ? "user count" : "item count", (int64) n,
				   "a model has at least one user and one item");

	out->n = (int) n;
	out->k = k;
	out->ids = MemoryContextAllocExtended(outer, sizeof(int64) * n, MCXT_ALLOC_HUGE);
	out->bias = MemoryContextAllocExtended(outer, sizeof(float) * n, MCXT_ALLOC_HUGE);
	out->popularity = MemoryContextAllocExtended(outer, sizeof(int64) * n, MCXT_ALLOC_HUGE);
	out->factors = MemoryContextAllocExtended(outer, sizeof(float) * Max(n * k, 1),
											  MCXT_ALLOC_HUGE);
	for (uint64 row = 0; row < n; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			len;
		float	   *f;

		out->ids[row] = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		out->bias[row] = DatumGetFloat4(SPI_getbinval(tup, desc, 2, &isnull));
		f = ArrayGetFloat4(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)),
						   0, &len);
		if (len != k)
			CorruptRow(info, side, out->ids[row], "wrong number of factors");
		memcpy(out->factors + row * k, f, sizeof(float) * k);
		out->popularity[row] = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
	}
	SPI_finish();
}

/*
 * Load the neighbour lists of a model into `out`, an items x items sparse
 * matrix over the rows of `index` (each row in its stored order, best
 * first), allocated in the current memory context.  Neighbours the model
 * no longer has (forget_user removed them) are skipped.  Each row's arrays
 * are detoasted once: the rows are read, then copied into place.
 */
void
CatalogLoadNeighbors(const RecsysModelInfo *info, const IdMap *index,
					 RecsysSparse *out)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(info->model_id)};
	int			n = index->count;
	uint64		nrows;
	int32	   *row_of;
	int64	  **nbr;
	float	  **w;
	int		   *len;
	int64		total = 0;

	Connect();
	if (SPI_execute_with_args("SELECT item_id, neighbors, weights FROM recsys.item_neighbors "
							  "WHERE model_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading item neighbours failed");
	CheckShape(3, "table recsys.item_neighbors");
	nrows = SPI_processed;
	row_of = palloc(sizeof(int32) * Max(nrows, 1));
	nbr = palloc(sizeof(int64 *) * Max(nrows, 1));
	w = palloc(sizeof(float *) * Max(nrows, 1));
	len = palloc(sizeof(int) * Max(nrows, 1));

	out->nrows = out->ncols = n;
	out->indptr = MemoryContextAllocExtended(outer, sizeof(int64) * ((Size) n + 1),
											 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (uint64 r = 0; r < nrows; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		int			nw;

		row_of[r] = IdMapLookup(index, id);
		if (row_of[r] < 0)
			continue;
		if (out->indptr[row_of[r] + 1] != 0)
			CorruptRow(info, "item", id, "its neighbours are stored twice");
		nbr[r] = ArrayGetInt8(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 2, &isnull)), &len[r]);
		w[r] = ArrayGetFloat4(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 3, &isnull)), 0, &nw);
		if (nw != len[r] || len[r] > n)
			CorruptRow(info, "item", id, "neighbors and weights differ in length");
		out->indptr[row_of[r] + 1] = Max(len[r], 1);	/* nonzero: seen */
		total += len[r];
	}

	/* Offsets by row; rows without stored neighbours are empty */
	out->indices = MemoryContextAllocExtended(outer, sizeof(int32) * Max(total, 1),
											  MCXT_ALLOC_HUGE);
	out->values = MemoryContextAllocExtended(outer, sizeof(float) * Max(total, 1),
											 MCXT_ALLOC_HUGE);
	memset(out->indptr, 0, sizeof(int64) * ((Size) n + 1));
	for (uint64 r = 0; r < nrows; r++)
		if (row_of[r] >= 0)
			out->indptr[row_of[r] + 1] = len[r];
	for (int i = 0; i < n; i++)
		out->indptr[i + 1] += out->indptr[i];

	/* Copy each row, mapping ids to rows; dropped items leave room unused */
	for (uint64 r = 0; r < nrows; r++)
	{
		int64		at;
		int			kept = 0;

		if (row_of[r] < 0)
			continue;
		at = out->indptr[row_of[r]];
		for (int x = 0; x < len[r]; x++)
		{
			int32		col = IdMapLookup(index, nbr[r][x]);

			if (col < 0)
				continue;
			out->indices[at + kept] = col;
			out->values[at + kept] = w[r][x];
			kept++;
		}
		len[r] = kept;
	}

	/* Close the gaps of skipped neighbours: rows only move left */
	total = 0;
	{
		int		   *kept = palloc0(sizeof(int) * Max(n, 1));

		for (uint64 r = 0; r < nrows; r++)
			if (row_of[r] >= 0)
				kept[row_of[r]] = len[r];
		for (int i = 0; i < n; i++)
		{
			int64		from = out->indptr[i];

			memmove(out->indices + total, out->indices + from, sizeof(int32) * kept[i]);
			memmove(out->values + total, out->values + from, sizeof(float) * kept[i]);
			out->indptr[i] = total;
			total += kept[i];
		}
		pfree(kept);
	}
	out->indptr[n] = total;
	out->nnz = total;
	SPI_finish();
}

/*
 * The array of a stored feature row's column (recsys.model_features or
 * recsys.entity_features), checked so that a corrupted catalog row is an
 * error naming the model, the row and the column, not a crash: present,
 * flat, without NULLs, of the element type, and for real[] finite.  *len
 * receives its length.  (ArrayGetFloat4 and ArrayGetInt4 check the same,
 * but with messages about factor arrays that name neither.)  Returns the
 * array's data in place.
 */
static void *
FeatureArray(const RecsysModelInfo *info, const char *what, int64 id,
			 const char *column, Datum d, bool isnull, Oid elemtype, int *len)
{
	ArrayType  *a;
	char		msg[160];

	snprintf(msg, sizeof(msg), "its column %s is NULL", column);
	if (isnull)
		CorruptRow(info, what, id, msg);
	a = DatumGetArrayTypeP(d);
	snprintf(msg, sizeof(msg), "its column %s is not a flat array of %s without NULLs",
			 column, format_type_be(elemtype));
	if (ARR_NDIM(a) > 1 || ARR_ELEMTYPE(a) != elemtype ||
		(ARR_HASNULL(a) && array_contains_nulls(a)))
		CorruptRow(info, what, id, msg);
	*len = ARR_NDIM(a) == 0 ? 0 : ARR_DIMS(a)[0];
	if (elemtype == FLOAT4OID)
	{
		float	   *data = (float *) ARR_DATA_PTR(a);

		snprintf(msg, sizeof(msg), "its column %s holds a value that is not finite", column);
		for (int i = 0; i < *len; i++)
			if (isnan(data[i]) || isinf(data[i]))
				CorruptRow(info, what, id, msg);
	}
	return ARR_DATA_PTR(a);
}

/*
 * Load one side's features of a model (users, or items) into out, over the
 * rows of `index` (the cache's), allocated in the current memory context:
 * the vocabulary (names, idf, factors of k = info->factors) and each
 * entity's features.  Entities the index does not know are skipped.
 */
void
CatalogLoadFeatures(const RecsysModelInfo *info, bool users, const IdMap *index,
					ModelFeatures *out)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(info->model_id),
	CStringGetTextDatum(users ? "user" : "item")};
	const char *side = users ? "user" : "item";
	const char *feature = users ? "user feature" : "item feature";
	int			n = index->count;
	int64		total = 0;
	bool		has_idf = true;

	memset(out, 0, sizeof(ModelFeatures));
	Connect();
	if (SPI_execute_with_args("SELECT feature_id, name, idf, factors FROM recsys.model_features "
							  "WHERE model_id OPERATOR(pg_catalog.=) $1 AND side OPERATOR(pg_catalog.=) $2 "
							  "ORDER BY feature_id",
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading the features of model \"%s\" failed", info->name);
	CheckShape(4, "table recsys.model_features");
	out->nfeatures = (int) SPI_processed;
	out->k = info->method->factors ? info->factors : 0;
	out->names = MemoryContextAlloc(outer, sizeof(char *) * Max(out->nfeatures, 1));
	out->idf = MemoryContextAlloc(outer, sizeof(float) * Max(out->nfeatures, 1));
	if (out->k > 0)
		out->factors = MemoryContextAllocExtended(outer, sizeof(float) * Max(out->nfeatures, 1) * out->k,
												  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (int f = 0; f < out->nfeatures; f++)
	{
		HeapTuple	tup = SPI_tuptable->vals[f];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;

		if (DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull)) != f)
			CorruptRow(info, feature, f, "the features are not numbered 0, 1, ... (column recsys.model_features.feature_id)");
		d = SPI_getbinval(tup, desc, 2, &isnull);
		if (isnull)
			CorruptRow(info, feature, f, "its column recsys.model_features.name is NULL");
		out->names[f] = MemoryContextStrdup(outer, TextDatumGetCString(d));
		if (f > 0 && strcmp(out->names[f - 1], out->names[f]) >= 0)
			CorruptRow(info, feature, f, "the feature names are not in byte order (column recsys.model_features.name)");
		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (isnull)
			has_idf = false;
		else
		{
			out->idf[f] = DatumGetFloat4(d);

			/*
			 * Training stores a positive idf (1 without weighting): a
			 * negative or non-finite one would flip or poison every score
			 */
			if (!(out->idf[f] >= 0.0f && out->idf[f] <= FLT_MAX))
				CorruptRow(info, feature, f, "its column recsys.model_features.idf is negative or not finite");
		}
		/* A content model (no factors) scores with the idf of every feature */
		if (out->k == 0 && isnull)
			CorruptRow(info, feature, f, "its column recsys.model_features.idf is NULL (a content model has the idf of every feature)");
		d = SPI_getbinval(tup, desc, 4, &isnull);
		if (out->k > 0)
		{
			int			len;
			float	   *z;

			if (isnull)
				CorruptRow(info, feature, f, "its column recsys.model_features.factors is NULL (a factor model has factors for every feature)");
			z = FeatureArray(info, feature, f, "recsys.model_features.factors", d, isnull, FLOAT4OID, &len);
			if (len != out->k)
			{
				char		msg[160];

				snprintf(msg, sizeof(msg), "its column recsys.model_features.factors has length %d, the model has %d factors",
						 len, out->k);
				CorruptRow(info, feature, f, msg);
			}
			memcpy(out->factors + (Size) f * out->k, z, sizeof(float) * out->k);
		}
	}
	if (!has_idf)
		out->idf = NULL;

	if (SPI_execute_with_args("SELECT entity_id, features, weights FROM recsys.entity_features "
							  "WHERE model_id OPERATOR(pg_catalog.=) $1 AND side OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "loading the features of model \"%s\" failed", info->name);
	CheckShape(3, "table recsys.entity_features");
	out->rows.nrows = n;
	out->rows.ncols = out->nfeatures;
	out->rows.indptr = MemoryContextAllocExtended(outer, sizeof(int64) * ((Size) n + 1),
												  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	{
		int32	   *row_of = palloc(sizeof(int32) * Max(SPI_processed, 1));
		int32	  **feats = palloc(sizeof(int32 *) * Max(SPI_processed, 1));
		float	  **ws = palloc(sizeof(float *) * Max(SPI_processed, 1));
		int		   *len = palloc(sizeof(int) * Max(SPI_processed, 1));

		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			int			nw;
			Datum		d;

			row_of[r] = IdMapLookup(index, id);
			if (row_of[r] < 0)
				continue;
			d = SPI_getbinval(tup, desc, 2, &isnull);
			feats[r] = FeatureArray(info, side, id, "recsys.entity_features.features", d, isnull, INT4OID, &len[r]);
			d = SPI_getbinval(tup, desc, 3, &isnull);
			ws[r] = FeatureArray(info, side, id, "recsys.entity_features.weights", d, isnull, FLOAT4OID, &nw);
			if (nw != len[r])
				CorruptRow(info, side, id, "its columns features and weights of recsys.entity_features differ in length");
			for (int x = 0; x < len[r]; x++)
				if (feats[r][x] < 0 || feats[r][x] >= out->nfeatures)
					CorruptRow(info, side, id,
							   "its column recsys.entity_features.features names a feature that is not in the model's vocabulary");
			out->rows.indptr[row_of[r] + 1] = len[r];
			total += len[r];
		}
		for (int i = 0; i < n; i++)
			out->rows.indptr[i + 1] += out->rows.indptr[i];
		out->rows.nnz = total;
		out->rows.indices = MemoryContextAllocExtended(outer, sizeof(int32) * Max(total, 1),
													   MCXT_ALLOC_HUGE);
		out->rows.values = MemoryContextAllocExtended(outer, sizeof(float) * Max(total, 1),
													  MCXT_ALLOC_HUGE);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			if (row_of[r] < 0)
				continue;
			memcpy(out->rows.indices + out->rows.indptr[row_of[r]], feats[r], sizeof(int32) * len[r]);
			memcpy(out->rows.values + out->rows.indptr[row_of[r]], ws[r], sizeof(float) * len[r]);
		}
	}
	SPI_finish();
}

/*
 * Insert or replace one item's row of a model (refresh_item), in the
 * current transaction.
 */
void
CatalogStoreItem(const RecsysModelInfo *info, int64 item_id, const float *factors,
				 float bias, int64 popularity)
{
	Oid			types[5] = {INT8OID, INT8OID, FLOAT4OID, FLOAT4ARRAYOID, INT8OID};
	Datum		values[5];

	values[0] = Int64GetDatum(info->model_id);
	values[1] = Int64GetDatum(item_id);
	values[2] = Float4GetDatum(bias);
	values[3] = PointerGetDatum(ArrayFromFloat4(factors, info->factors));
	values[4] = Int64GetDatum(popularity);
	Connect();
	ExecuteAsOwner("INSERT INTO recsys.item_factors (model_id, item_id, bias, factors, popularity) "
				   "VALUES ($1, $2, $3, $4, $5) "
				   "ON CONFLICT (model_id, item_id) DO UPDATE SET bias = EXCLUDED.bias, "
				   "factors = EXCLUDED.factors, popularity = EXCLUDED.popularity",
				   5, types, values, NULL, SPI_OK_INSERT);
	SPI_finish();
}

/*
 * Insert or replace one item's or user's stored features (refresh_item,
 * refresh_user; none: delete them), in the current transaction.
 */
void
CatalogStoreEntityFeatures(const RecsysModelInfo *info, bool users, int64 id,
						   const int32 *features, const float *weights, int n)
{
	Oid			types[5] = {INT8OID, INT8OID, INT4ARRAYOID, FLOAT4ARRAYOID, TEXTOID};
	Datum		values[5];

	values[0] = Int64GetDatum(info->model_id);
	values[1] = Int64GetDatum(id);
	values[2] = PointerGetDatum(ArrayFromInt4(features, n));
	values[3] = PointerGetDatum(ArrayFromFloat4(weights, n));
	values[4] = CStringGetTextDatum(users ? "user" : "item");
	Connect();
	if (n > 0)
		ExecuteAsOwner("INSERT INTO recsys.entity_features (model_id, side, entity_id, features, weights) "
					   "VALUES ($1, $5, $2, $3, $4) "
					   "ON CONFLICT (model_id, side, entity_id) DO UPDATE "
					   "SET features = EXCLUDED.features, weights = EXCLUDED.weights",
					   5, types, values, NULL, SPI_OK_INSERT);
	else
		ExecuteAsOwner("DELETE FROM recsys.entity_features WHERE model_id OPERATOR(pg_catalog.=) $1 "
					   "AND side OPERATOR(pg_catalog.=) $5 AND entity_id OPERATOR(pg_catalog.=) $2",
					   5, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();
}

/*
 * Parse a stored user row from an SPI tuple whose columns first .. first+3
 * are bias, factors, seen and seen_values, checking them against the model;
 * the arrays point into the (detoasted) tuple, in the current context.
 */
static void
UserRowFromTuple(const RecsysModelInfo *info, HeapTuple tup, TupleDesc desc,
				 int first, int64 user_id, RecsysUserRow *row)
{
	bool		isnull;
	int			len;
	int			nvalues;

	row->found = true;
	row->bias = DatumGetFloat4(SPI_getbinval(tup, desc, first, &isnull));
	row->factors = ArrayGetFloat4(DatumGetArrayTypeP(SPI_getbinval(tup, desc, first + 1, &isnull)),
								  0, &len);
	if (len != info->factors)
		CorruptRow(info, "user", user_id, "wrong number of factors");
	row->seen = ArrayGetInt8(DatumGetArrayTypeP(SPI_getbinval(tup, desc, first + 2, &isnull)),
							 &row->nseen);
	row->seen_values = ArrayGetFloat4(DatumGetArrayTypeP(SPI_getbinval(tup, desc, first + 3, &isnull)),
									  0, &nvalues);
	if (nvalues != row->nseen)
		CorruptRow(info, "user", user_id, "seen and seen_values differ in length");
}

/*
 * Copy a parsed user row (pointing into memory about to be freed: SPI's,
 * or the detoasted copies of LoadUserDirect) into the current context.
 */
static void
UserRowCopy(const RecsysModelInfo *info, const RecsysUserRow *stored, RecsysUserRow *row)
{
	*row = *stored;
	row->factors = palloc(sizeof(float) * Max(info->factors, 1));
	memcpy(row->factors, stored->factors, sizeof(float) * info->factors);
	row->seen = palloc(sizeof(int64) * Max(row->nseen, 1));
	memcpy(row->seen, stored->seen, sizeof(int64) * row->nseen);
	row->seen_values = palloc(sizeof(float) * Max(row->nseen, 1));
	memcpy(row->seen_values, stored->seen_values, sizeof(float) * row->nseen);
}

/*
 * Load one user's row with the calling query's snapshot straight through
 * recsys.user_factors's primary key, as the SPI path of CatalogLoadUser
 * would as the extension's owner (see ExecuteModelRead for why that is the
 * caller's right once `info` was looked up).  Why: starting and ending an
 * executor for a one-row key lookup was 19% of a recommend() call, the
 * index probe itself a small part of it.  False, with nothing read, when
 * the table is not laid out as this library expects (another version's
 * catalog): the caller then goes through SPI, which checks the shape.
 */
static bool
LoadUserDirect(const RecsysModelInfo *info, int64 user_id, RecsysUserRow *row)
{
	static MemoryContext scratch = NULL;
	MemoryContext outer = CurrentMemoryContext;
	Oid			nsp = get_namespace_oid("recsys", false);
	Oid			relid = get_relname_relid("user_factors", nsp);
	Relation	rel;
	Relation	index;
	Oid			indexid;
	TupleDesc	desc;
	ScanKeyData keys[2];
	IndexScanDesc scan;
	TupleTableSlot *slot;

	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	indexid = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(indexid) ||
		!CatalogColumnsAre(desc, user_columns, user_types, lengthof(user_columns)))
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	index = index_open(indexid, AccessShareLock);
	if (index->rd_index->indnkeyatts != 2 || index->rd_index->indkey.values[0] != 1 ||
		index->rd_index->indkey.values[1] != 2)
	{
		index_close(index, AccessShareLock);
		table_close(rel, AccessShareLock);
		return false;
	}

	/* Detoasted copies live here until copied out: nothing left per call */
	if (scratch == NULL)
		scratch = AllocSetContextCreate(TopMemoryContext, "recsys user row",
										ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(scratch);	/* what an error left behind */
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(info->model_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(user_id));
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, GetActiveSnapshot(), 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		free_tuple;
		HeapTuple	tup = ExecFetchSlotHeapTuple(slot, false, &free_tuple);
		RecsysUserRow stored;

		MemoryContextSwitchTo(scratch);
		UserRowFromTuple(info, tup, desc, 3, user_id, &stored);
		MemoryContextSwitchTo(outer);
		UserRowCopy(info, &stored, row);
		MemoryContextReset(scratch);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return true;
}

/*
 * Load one user's row.  row->found is false for a user the model does not
 * know; otherwise factors, seen and seen_values are allocated in the
 * current context.  `latest` reads with a new snapshot (for functions that
 * change the model, so they see their own and committed changes), else
 * with the calling query's.
 */
void
CatalogLoadUser(const RecsysModelInfo *info, int64 user_id, bool latest,
				RecsysUserRow *row)
{
	MemoryContext outer = CurrentMemoryContext;
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(info->model_id), Int64GetDatum(user_id)};
	SPIPlanPtr	plan;

	memset(row, 0, sizeof(RecsysUserRow));
	/* The serving path; `latest` (a new snapshot) goes through SPI */
	if (!latest && LoadUserDirect(info, user_id, row))
		return;
	Connect();
	plan = Prepare(&user_plan,
				   "SELECT bias, factors, seen, seen_values FROM recsys.user_factors "
				   "WHERE model_id OPERATOR(pg_catalog.=) $1 AND user_id OPERATOR(pg_catalog.=) $2",
				   2, types);
	if (ExecuteModelRead(info, plan, values, !latest, 1) != SPI_OK_SELECT)
		elog(ERROR, "loading user factors failed");
	if (SPI_processed > 0)
	{
		RecsysUserRow stored;
		MemoryContext spi_cxt;

		CheckShape(4, "table recsys.user_factors");
		UserRowFromTuple(info, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						 user_id, &stored);

		/* The parsed row points into SPI memory: copy it out */
		spi_cxt = MemoryContextSwitchTo(outer);
		UserRowCopy(info, &stored, row);
		MemoryContextSwitchTo(spi_cxt);
	}
	SPI_finish();
}

/*
 * Insert or replace one user's row of a model (refresh_user), in the
 * current transaction.
 */
void
CatalogStoreUser(const RecsysModelInfo *info, int64 user_id,
				 const RecsysUserRow *row)
{
	Oid			types[6] = {INT8OID, INT8OID, FLOAT4OID, FLOAT4ARRAYOID,
	INT8ARRAYOID, FLOAT4ARRAYOID};
	Datum		values[6];

	values[0] = Int64GetDatum(info->model_id);
	values[1] = Int64GetDatum(user_id);
	values[2] = Float4GetDatum(row->bias);
	values[3] = PointerGetDatum(ArrayFromFloat4(row->factors, info->factors));
	values[4] = PointerGetDatum(ArrayFromInt8(row->seen, row->nseen));
	values[5] = PointerGetDatum(ArrayFromFloat4(row->seen_values, row->nseen));

	Connect();
	ExecuteAsOwner("INSERT INTO recsys.user_factors AS u "
			"(model_id, user_id, bias, factors, seen, seen_values) "
			"VALUES ($1, $2, $3, $4, $5, $6) "
			"ON CONFLICT (model_id, user_id) DO UPDATE SET bias = EXCLUDED.bias, "
			"factors = EXCLUDED.factors, seen = EXCLUDED.seen, "
			"seen_values = EXCLUDED.seen_values",
			6, types, values, NULL, SPI_OK_INSERT);
	SPI_finish();
}

/* Delete one user's row of a model; false if there was none */
bool
CatalogDeleteUser(const RecsysModelInfo *info, int64 user_id)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(info->model_id), Int64GetDatum(user_id)};
	bool		found;

	Connect();
	ExecuteAsOwner("DELETE FROM recsys.user_factors WHERE model_id OPERATOR(pg_catalog.=) $1 "
				   "AND user_id OPERATOR(pg_catalog.=) $2",
				   2, types, values, NULL, SPI_OK_DELETE);
	found = SPI_processed > 0;
	/* A user forgotten by a text-keyed model: their id goes too */
	if (info->text_users)
		ExecuteAsOwner("DELETE FROM recsys.id_map WHERE model_id OPERATOR(pg_catalog.=) $1 "
					   "AND side OPERATOR(pg_catalog.=) 'user' AND internal OPERATOR(pg_catalog.=) $2",
					   2, types, values, NULL, SPI_OK_DELETE);
	SPI_finish();
	return found;
}

/*
 * Read every user row of a model in batches of up to `batch` rows and hand
 * each batch to fn (inside the SPI connection; what fn allocates in the
 * current context is freed after the batch); `latest` as for
 * CatalogLoadUser.
 */
void
CatalogForEachUserBatch(const RecsysModelInfo *info, int batch, bool latest,
						CatalogUserBatchFn fn, void *arg)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext batch_cxt = AllocSetContextCreate(outer, "recsys user batch",
													ALLOCSET_DEFAULT_SIZES);
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(info->model_id)};
	RecsysUserRow *rows = palloc(sizeof(RecsysUserRow) * batch);
	int64	   *ids = palloc(sizeof(int64) * batch);
	Portal		portal;

	Connect();
	portal = SPI_cursor_open_with_args(NULL,
									   "SELECT user_id, bias, factors, seen, seen_values "
									   "FROM recsys.user_factors "
									   "WHERE model_id OPERATOR(pg_catalog.=) $1",
									   1, types, values, NULL, !latest,
									   CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		uint64		n;
		MemoryContext spi_cxt;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, batch);
		n = SPI_processed;
		if (n == 0)
			break;
		CheckShape(5, "table recsys.user_factors");

		spi_cxt = MemoryContextSwitchTo(batch_cxt);
		for (uint64 j = 0; j < n; j++)
		{
			HeapTuple	tup = SPI_tuptable->vals[j];
			bool		isnull;

			ids[j] = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
			UserRowFromTuple(info, tup, SPI_tuptable->tupdesc, 2, ids[j], &rows[j]);
		}
		fn(arg, ids, rows, (int) n);
		MemoryContextSwitchTo(spi_cxt);
		MemoryContextReset(batch_cxt);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	MemoryContextDelete(batch_cxt);
}

/*
 * Replace the factors, bias and popularity of some items of a model and
 * delete others (forget_user), in the current transaction.
 */
void
CatalogUpdateItems(const RecsysModelInfo *info, const RecsysFactors *upd,
				   const int64 *gone, int ngone)
{
	Oid			types[6] = {INT8OID, INT8ARRAYOID, FLOAT4ARRAYOID, FLOAT4ARRAYOID,
	INT4OID, INT8ARRAYOID};
	Datum		values[6];

	Connect();
	if (upd->n > 0)
	{
		values[0] = Int64GetDatum(info->model_id);
		values[1] = PointerGetDatum(ArrayFromInt8(upd->ids, upd->n));
		values[2] = PointerGetDatum(ArrayFromFloat4(upd->bias, upd->n));
		values[3] = PointerGetDatum(ArrayFromFloat4(upd->factors, upd->n * upd->k));
		values[4] = Int32GetDatum(upd->k);
		values[5] = PointerGetDatum(ArrayFromInt8(upd->popularity, upd->n));
		ExecuteAsOwner("UPDATE recsys.item_factors AS f SET bias = u.bias, "
				"factors = $4[(u.ord OPERATOR(pg_catalog.-) 1) OPERATOR(pg_catalog.*) $5 OPERATOR(pg_catalog.+) 1 : "
				"u.ord OPERATOR(pg_catalog.*) $5], popularity = u.pop "
				"FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
				"pg_catalog.unnest($6)) WITH ORDINALITY AS u(id, bias, pop, ord) "
				"WHERE f.model_id OPERATOR(pg_catalog.=) $1 AND f.item_id OPERATOR(pg_catalog.=) u.id",
				6, types, values, NULL, SPI_OK_UPDATE);
	}
	if (ngone > 0)
	{
		values[0] = Int64GetDatum(info->model_id);
		values[1] = PointerGetDatum(ArrayFromInt8(gone, ngone));
		ExecuteAsOwner("DELETE FROM recsys.item_factors WHERE model_id OPERATOR(pg_catalog.=) $1 "
					   "AND item_id OPERATOR(pg_catalog.=) ANY ($2)",
					   2, types, values, NULL, SPI_OK_DELETE);
	}
	SPI_finish();
}

/*
 * Give a model a new version after forget_user changed it, so that every
 * backend reloads it, and update its counts.
 */
void
CatalogBumpVersion(const RecsysModelInfo *info, int64 users, int64 items,
				   int64 interactions)
{
	Oid			types[5] = {INT8OID, INT4OID, INT4OID, INT8OID, INT8OID};
	Datum		values[5];

	values[0] = Int64GetDatum(info->model_id);
	values[1] = Int32GetDatum((int32) users);
	values[2] = Int32GetDatum((int32) items);
	values[3] = Int64GetDatum(interactions);
	values[4] = Int64GetDatum(NewToken());
	Connect();
	/* Catalogs before 1.2 have no token column */
	ExecuteAsOwner(HasTokens() ?
				   "UPDATE recsys.models SET version = DEFAULT, token = $5, "
				   "num_users = num_users OPERATOR(pg_catalog.-) $2, "
				   "num_items = num_items OPERATOR(pg_catalog.-) $3, "
				   "num_interactions = num_interactions OPERATOR(pg_catalog.-) $4 "
				   "WHERE model_id OPERATOR(pg_catalog.=) $1" :
				   "UPDATE recsys.models SET version = DEFAULT, "
				   "num_users = num_users OPERATOR(pg_catalog.-) $2, "
				   "num_items = num_items OPERATOR(pg_catalog.-) $3, "
				   "num_interactions = num_interactions OPERATOR(pg_catalog.-) $4 "
				   "WHERE model_id OPERATOR(pg_catalog.=) $1",
				   HasTokens() ? 5 : 4, types, values, NULL, SPI_OK_UPDATE);
	SPI_finish();
}
