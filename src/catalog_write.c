/*-------------------------------------------------------------------------
 *
 * catalog_write.c
 *	  The only way into recsys's storage tables: checked writes, run as the
 *	  extension's owner.
 *
 * No role other than the extension's owner (and superusers) holds INSERT,
 * UPDATE, DELETE or TRUNCATE on a recsys.* table, or USAGE on its
 * sequences.  Models, grants and experiments are written by recsys itself,
 * the way PostgreSQL's own catalogs are written by the server and never by
 * the user: recsys first checks, as the calling role, that the caller may
 * make this change (with the functions the row-level security policies
 * use for reading), and then runs one fixed, schema-qualified statement
 * as the extension's owner, for exactly that statement.
 *
 * Why not table privileges for PUBLIC under row-level security (recsys
 * 1.1): a policy cannot say "ids come from the sequence", "granted_by is
 * the caller", "no factor row without its model" or "only the owner
 * changes the source"; and a DELETE under a policy that reads another
 * table silently deletes nothing once that row is gone, which left a
 * dropped model's interactions readable by whoever recreated its id.
 *
 * Why not SECURITY DEFINER functions: inside one, the caller's identity is
 * gone (current_user is the definer), so the check could not run there;
 * and the statement that runs as the owner would be callable directly with
 * any arguments.  Here the check and the write are one C function, and the
 * caller's role is taken from GetUserId(), never from an argument.
 *
 * While a statement runs as the owner:
 *	- SetUserIdAndSecContext with SECURITY_LOCAL_USERID_CHANGE (no SET ROLE
 *	  inside) and SECURITY_RESTRICTED_OPERATION (no temporary objects, no
 *	  session-level changes), as PostgreSQL does for index expressions run
 *	  as a table's owner; the caller's identity is restored on every path,
 *	  errors included (PG_FINALLY), not left to transaction abort;
 *	- search_path is pg_catalog, pg_temp, so that no operator or function a
 *	  user created can be picked up by a statement running with the owner's
 *	  rights (every statement is schema-qualified as well).
 *
 * Two ways in:
 *	- C code of the extension (training, drop_model, refresh_user,
 *	  forget_user in catalog.c) checks the caller's rights itself and calls
 *	  CatalogExecuteAsOwner for each write;
 *	- PL/pgSQL functions (grants, experiments) call the write gates: SQL
 *	  functions in schema recsys, all bound to recsys_catalog_write, which
 *	  finds the gate by the function's name in the table below, runs its
 *	  check as the caller and its statements as the owner.  Every write
 *	  that PL/pgSQL can make is listed in that one table.
 *
 * IDENTIFICATION
 *	  src/catalog_write.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

/* The search_path of every statement recsys runs as the extension's owner */
#define OWNER_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Rows buffered by a bulk insert before they go to the table in one
 * table_multi_insert.  Why 1000 (COPY FROM's figure): heap_multi_insert
 * then fills whole pages per WAL record, while the buffered rows of a
 * factor table stay within a few hundred kB (their long seen arrays are
 * toasted at insertion, one row at a time).
 */
#define BULK_ROWS 1000

/* Most statements one gate runs */
#define GATE_MAX_WRITES 3

/*
 * One write that PL/pgSQL may ask for.  $1 .. $n are the SQL function's
 * arguments, $n+1 is the calling role (regrole).  The check runs as the
 * caller and must return one true; the writes then run in order as the
 * owner.  The function's result: nothing (void), whether the last write
 * touched a row (boolean), or the first column of its first row.
 */
typedef struct CatalogGate
{
	const char *name;			/* recsys.<name>(...) in SQL */
	const char *check;
	const char *writes[GATE_MAX_WRITES];
} CatalogGate;

/*
 * Every write of a recsys table that SQL-language code can make.  All run
 * with search_path = pg_catalog, pg_temp (operators and functions resolve
 * in pg_catalog only); tables are always qualified.
 */
static const CatalogGate gates[] = {
	/* grant_model(): the owner lets a role (NULL: PUBLIC) serve or train */
	{"write_model_grant",
		"SELECT recsys.model_privilege($1, 'owner')",
		{"INSERT INTO recsys.model_grants (model_id, grantee, privilege, granted_by) "
		"VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"}},
	/* revoke_model() */
	{"write_model_revoke",
		"SELECT recsys.model_privilege($1, 'owner')",
		{"DELETE FROM recsys.model_grants WHERE model_id = $1 "
		"AND grantee IS NOT DISTINCT FROM $2 AND privilege = $3"}},
	/* create_experiment(): anyone may create one; it belongs to the caller */
	{"write_experiment_create",
		"SELECT true",
		{"INSERT INTO recsys.experiments (name, salt, control, owner) "
		"VALUES ($1, $2, $3, $4) RETURNING experiment_id"}},
	/* create_experiment(): its variants (frozen by a trigger once logged) */
	{"write_experiment_variants",
		"SELECT recsys.experiment_privilege($1, 'owner')",
		{"INSERT INTO recsys.experiment_variants "
		"(experiment_id, variant, position, model, weight, options) "
		"SELECT $1, u.n, u.p, u.m, u.w, u.o "
		"FROM unnest($2, $3, $4, $5) WITH ORDINALITY AS u(n, m, w, o, p)"}},
	/* end_experiment(): the winner is checked by the experiments trigger */
	{"write_experiment_end",
		"SELECT recsys.experiment_privilege($1, 'owner')",
		{"UPDATE recsys.experiments SET status = 'ended', "
		"ended_at = clock_timestamp(), winner = $2 "
		"WHERE experiment_id = $1 AND status = 'running'"}},
	/* drop_experiment(): logs first, then the rest by ON DELETE CASCADE */
	{"write_experiment_drop",
		"SELECT recsys.experiment_privilege($1, 'owner')",
		{"DELETE FROM recsys.experiment_outcomes WHERE experiment_id = $1",
			"DELETE FROM recsys.experiment_exposures WHERE experiment_id = $1",
		"DELETE FROM recsys.experiments WHERE experiment_id = $1"}},
	/* grant_experiment() */
	{"write_experiment_grant",
		"SELECT recsys.experiment_privilege($1, 'owner')",
		{"INSERT INTO recsys.experiment_grants (experiment_id, grantee, granted_by) "
		"VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"}},
	/* revoke_experiment() */
	{"write_experiment_revoke",
		"SELECT recsys.experiment_privilege($1, 'owner')",
		{"DELETE FROM recsys.experiment_grants WHERE experiment_id = $1 "
		"AND grantee IS NOT DISTINCT FROM $2"}},

	/*
	 * log_exposure(), recommend_experiment(): a role that may serve through
	 * a running experiment logs what a user was shown, under the variant
	 * the user is assigned to (never another).
	 */
	{"write_experiment_exposure",
		"SELECT recsys.experiment_privilege($1, 'serve') "
		"AND recsys.assigned_variant($1, $3) IS NOT DISTINCT FROM $2",
		{"INSERT INTO recsys.experiment_exposures "
		"(experiment_id, variant, user_id, items, model_version, shown_at) "
		"VALUES ($1, $2, $3, $4, $5, clock_timestamp()) RETURNING exposure_id"}},
	/* log_outcome(): the same, attributed to one of the user's exposures */
	{"write_experiment_outcome",
		"SELECT recsys.experiment_privilege($1, 'serve') "
		"AND recsys.assigned_variant($1, $3) IS NOT DISTINCT FROM $2 "
		"AND ($7 IS NULL OR EXISTS (SELECT FROM recsys.experiment_exposures x "
		"WHERE x.exposure_id = $7 AND x.experiment_id = $1 AND x.user_id = $3))",
		{"INSERT INTO recsys.experiment_outcomes "
		"(experiment_id, variant, user_id, item_id, kind, value, exposure_id, logged_at) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp()) RETURNING outcome_id"}},
};

/* The extension's row, looked up once per transaction */
static LocalTransactionId ext_lxid = InvalidLocalTransactionId;
static Oid	ext_oid = InvalidOid;
static Oid	ext_owner = InvalidOid;
static int	ext_version = 0;

/*
 * Look up the extension's oid, owner and installed SQL version (cached for
 * the transaction).
 */
static void
LookupExtension(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (ext_lxid == MyProc->lxid && OidIsValid(ext_owner))
		return;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("recsys"));
	rel = table_open(ExtensionRelationId, AccessShareLock);
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"recsys\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION recsys.")));
	ext_oid = ((Form_pg_extension) GETSTRUCT(tup))->oid;
	ext_owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);
		int			major = 0;
		int			minor = 0;

		if (!isnull)
			(void) sscanf(TextDatumGetCString(d), "%d.%d", &major, &minor);
		ext_version = major * 100 + minor;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	ext_lxid = MyProc->lxid;
}

/*
 * The version of the extension's SQL objects installed in this database,
 * as major * 100 + minor (102 for 1.2).  A newly installed library serves
 * databases whose SQL is older until ALTER EXTENSION recsys UPDATE runs,
 * so code that reads or writes what a version added asks first.
 */
int
CatalogVersion(void)
{
	LookupExtension();
	return ext_version;
}

/*
 * Run one statement in the current SPI connection as the extension's
 * owner, with search_path = pg_catalog, pg_temp.  The caller has checked
 * that the calling role may make this change.  Returns the SPI result code.
 */
int
CatalogExecuteAsOwner(const char *sql, int nargs, Oid *types, Datum *values,
					  const char *nulls, bool read_only, long count)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	volatile int rc = 0;

	LookupExtension();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);

	/* Undone at the end of this function, or by the (sub)transaction's abort */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", OWNER_SEARCH_PATH, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		SetUserIdAndSecContext(ext_owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only,
								   count);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, save_nestlevel);
	return rc;
}

/*
 * Run a prepared, fully schema-qualified read of recsys's storage in the
 * current SPI connection as the extension's owner; the caller has already
 * established that the calling role may read what it selects (see
 * ExecuteModelRead in catalog.c).  Returns the SPI result code.
 *
 * Why: the storage tables' row-level policies are the access rule for
 * SQL, and a serving function's lookups are key probes whose model the
 * caller has just been shown under those policies; evaluating them again
 * per lookup made a recommend() of a role without BYPASSRLS cost three
 * times a superuser's.  No search_path change is needed: the statement
 * was parsed once, at prepare time, and names nothing unqualified.
 */
int
CatalogExecutePlanAsOwner(SPIPlanPtr plan, Datum *values, const char *nulls,
						  bool read_only, long count)
{
	Oid			save_userid;
	int			save_sec_context;
	volatile int rc = 0;

	LookupExtension();
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	PG_TRY();
	{
		SetUserIdAndSecContext(ext_owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		rc = SPI_execute_plan(plan, values, nulls, read_only, count);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return rc;
}

/*
 * The gate of a recsys.write_* function, checked to be the extension's own;
 * its declared argument types go to argtypes (pronargs of them).
 */
static const CatalogGate *
FindGate(Oid fn_oid, Oid *argtypes, int nargs)
{
	HeapTuple	tup;
	Form_pg_proc proc;
	const char *name;

	LookupExtension();
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for function %u", fn_oid);
	proc = (Form_pg_proc) GETSTRUCT(tup);
	name = NameStr(proc->proname);

	/* Only the extension's own declarations may reach the owner's rights */
	if (proc->pronamespace != get_namespace_oid("recsys", false) ||
		getExtensionOfObject(ProcedureRelationId, fn_oid) != ext_oid)
		elog(ERROR, "function %s is not a recsys catalog write", name);
	if (proc->pronargs != nargs)
		elog(ERROR, "recsys.%s called with %d arguments, declared with %d",
			 name, nargs, proc->pronargs);
	memcpy(argtypes, proc->proargtypes.values, sizeof(Oid) * nargs);
	for (int i = 0; i < (int) lengthof(gates); i++)
	{
		if (strcmp(gates[i].name, name) == 0)
		{
			ReleaseSysCache(tup);
			return &gates[i];
		}
	}
	elog(ERROR, "function recsys.%s is not a recsys catalog write", name);
	return NULL;				/* keep compiler quiet */
}

PG_FUNCTION_INFO_V1(recsys_catalog_write);

/*
 * recsys.write_*(...): the write gates of the table above; see the file
 * header.  Not for direct use, though calling one directly is harmless: it
 * does only what its check allows the calling role.
 */
Datum
recsys_catalog_write(PG_FUNCTION_ARGS)
{
	Oid			fn_oid = fcinfo->flinfo->fn_oid;
	int			nargs = PG_NARGS();
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 1));
	const CatalogGate *gate = FindGate(fn_oid, types, nargs);
	Oid			rettype = get_func_rettype(fn_oid);
	Datum	   *values = palloc(sizeof(Datum) * (nargs + 1));
	char	   *nulls = palloc(nargs + 1);
	int			save_nestlevel;
	bool		allowed;
	bool		isnull;
	bool		touched = false;
	Datum		result = (Datum) 0;
	bool		result_null = true;

	for (int i = 0; i < nargs; i++)
	{
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	/* The caller's identity comes from the session, never from an argument */
	types[nargs] = REGROLEOID;
	values[nargs] = ObjectIdGetDatum(GetUserId());
	nulls[nargs] = ' ';

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* The check, as the caller, with the same pinned search_path */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", OWNER_SEARCH_PATH, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_execute_with_args(gate->check, nargs + 1, types, values, nulls,
							  true, 1) != SPI_OK_SELECT)
		elog(ERROR, "check of recsys.%s failed", gate->name);
	allowed = SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								   1, &isnull)) && !isnull;
	AtEOXact_GUC(true, save_nestlevel);
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for recsys.%s", gate->name),
				 errdetail("The current role may not make this change."),
				 errhint("Use the documented functions (grant_model, create_experiment, log_outcome, ...).")));

	for (int w = 0; w < GATE_MAX_WRITES && gate->writes[w] != NULL; w++)
	{
		int			rc = CatalogExecuteAsOwner(gate->writes[w], nargs + 1, types,
											   values, nulls, false, 0);

		if (rc < 0)
			elog(ERROR, "recsys.%s failed: %s", gate->name,
				 SPI_result_code_string(rc));
		touched = SPI_processed > 0;
		if (SPI_tuptable != NULL && SPI_processed > 0)
		{
			if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) != rettype)
				elog(ERROR, "recsys.%s returns %s, but its statement gives %s",
					 gate->name, format_type_be(rettype),
					 format_type_be(SPI_gettypeid(SPI_tuptable->tupdesc, 1)));
			result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								   1, &result_null);
			if (!result_null)
				result = SPI_datumTransfer(result, get_typbyval(rettype),
										   get_typlen(rettype));
		}
	}
	SPI_finish();

	if (rettype == VOIDOID)
		PG_RETURN_VOID();
	if (rettype == BOOLOID)
		PG_RETURN_BOOL(touched);
	if (result_null)
		PG_RETURN_NULL();
	return result;
}

/*
 * A bulk insert into one recsys storage table: the factor rows of a model
 * being stored go straight to the table access method (table_multi_insert,
 * then each row's index entries), without an SQL statement per batch.
 *
 * Why this is the same write as CatalogExecuteAsOwner's INSERT: it runs
 * only where that INSERT would (the caller has checked the calling role's
 * privilege on the model), the extension's owner must hold INSERT on the
 * table, and index entries are made by ExecInsertIndexTuples as the
 * owner, in a restricted security context, with the pinned search_path.
 * What an INSERT would do besides, and this path does not, is excluded by
 * CatalogBulkBegin: it declines (returns NULL, and the caller falls back
 * to SQL) when the table has triggers, rules, CHECK constraints, forced
 * row-level security or columns other than the expected ones.  Row-level
 * security without FORCE does not apply to the table's owner, so the
 * INSERT skipped no policy either (and the tables have no INSERT policy).
 * The rows are ordinary heap inserts: WAL-logged, toasted, visible to
 * other sessions at commit, rolled back with the transaction.
 */
struct CatalogBulk
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;
	CommandId	cid;
	MemoryContext cxt;			/* slots and the rows they hold */
	TupleTableSlot *slots[BULK_ROWS];
	int			nslots;
};

/*
 * Whether a storage table's descriptor has exactly the expected columns
 * (names and types, in order, none dropped or generated): what reading or
 * writing its rows by position, without SQL, takes.
 */
bool
CatalogColumnsAre(TupleDesc desc, const char *const *columns, const Oid *types,
				  int ncolumns)
{
	if (desc->natts != ncolumns)
		return false;
	for (int i = 0; i < ncolumns; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != types[i] ||
			att->attgenerated != '\0' ||
			strcmp(NameStr(att->attname), columns[i]) != 0)
			return false;
	}
	return true;
}

/*
 * Whether relation rel has exactly the expected columns and nothing an
 * INSERT would run besides storing the row and its index entries.
 */
static bool
BulkInsertable(Relation rel, const char *const *columns, const Oid *types,
			   int ncolumns)
{
	TupleDesc	desc = RelationGetDescr(rel);

	return rel->rd_rel->relkind == RELKIND_RELATION &&
		rel->trigdesc == NULL && rel->rd_rules == NULL &&
		!rel->rd_rel->relforcerowsecurity &&
		(desc->constr == NULL || desc->constr->num_check == 0) &&
		CatalogColumnsAre(desc, columns, types, ncolumns);
}

/*
 * Begin a bulk insert into recsys.<table>, whose columns must be `columns`
 * of `types`; NULL when the table is not one this path may write (see
 * struct CatalogBulk), and the caller then writes with SQL.  The caller
 * has checked that the calling role may make this change.
 */
CatalogBulk *
CatalogBulkBegin(const char *table, const char *const *columns,
				 const Oid *types, int ncolumns)
{
	Oid			relid;
	Relation	rel;
	CatalogBulk *b;
	MemoryContext old;

	LookupExtension();
	relid = get_relname_relid(table, get_namespace_oid("recsys", false));
	if (!OidIsValid(relid))
		elog(ERROR, "table recsys.%s does not exist", table);
	rel = table_open(relid, RowExclusiveLock);
	/* The INSERT would have run as the owner, with the owner's rights */
	if (pg_class_aclcheck(relid, ext_owner, ACL_INSERT) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	if (!BulkInsertable(rel, columns, types, ncolumns))
	{
		table_close(rel, NoLock);
		return NULL;
	}

	b = palloc0(sizeof(CatalogBulk));
	b->cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys bulk insert",
								   ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(b->cxt);
	b->rel = rel;
	b->estate = CreateExecutorState();
	b->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(b->rri, rel, 1, NULL, 0);
	ExecOpenIndices(b->rri, false);
	b->bistate = GetBulkInsertState();
	MemoryContextSwitchTo(old);

	/* Earlier statements of this transaction (a delete) come first */
	CommandCounterIncrement();
	b->cid = GetCurrentCommandId(true);
	return b;
}

/*
 * Write the buffered rows: heap tuples by table_multi_insert, then each
 * one's index entries (a duplicate key fails here, as in an INSERT), as
 * the extension's owner with the pinned search_path, restored on error.
 */
static void
BulkFlush(CatalogBulk *b)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;

	if (b->nslots == 0)
		return;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", OWNER_SEARCH_PATH, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		MemoryContext old;

		SetUserIdAndSecContext(ext_owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		old = MemoryContextSwitchTo(GetPerTupleMemoryContext(b->estate));
		table_multi_insert(b->rel, b->slots, b->nslots, b->cid, 0, b->bistate);
		for (int i = 0; i < b->nslots; i++)
		{
			if (b->rri->ri_NumIndices > 0)
				(void) ExecInsertIndexTuples(b->rri, b->slots[i], b->estate,
											 false, false, NULL, NIL);
			ExecClearTuple(b->slots[i]);
		}
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(b->estate);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, save_nestlevel);
	b->nslots = 0;
}

/*
 * Add one row (no NULLs: every column of the storage tables is NOT NULL).
 * The values are copied at once, so the caller may free them after.
 */
void
CatalogBulkAdd(CatalogBulk *b, const Datum *values)
{
	TupleTableSlot *slot;
	int			natts = RelationGetDescr(b->rel)->natts;

	if (b->nslots == BULK_ROWS)
	{
		BulkFlush(b);
		CHECK_FOR_INTERRUPTS();
	}
	if (b->slots[b->nslots] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(b->cxt);

		b->slots[b->nslots] = table_slot_create(b->rel, NULL);
		MemoryContextSwitchTo(old);
	}
	slot = b->slots[b->nslots];
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memset(slot->tts_isnull, false, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
	/* The row's own copy, in the slot's memory */
	ExecMaterializeSlot(slot);
	b->nslots++;
}

/* Write the remaining rows and release the bulk insert's resources */
void
CatalogBulkEnd(CatalogBulk *b)
{
	BulkFlush(b);
	for (int i = 0; i < BULK_ROWS && b->slots[i] != NULL; i++)
		ExecDropSingleTupleTableSlot(b->slots[i]);
	FreeBulkInsertState(b->bistate);
	ExecCloseIndices(b->rri);
	FreeExecutorState(b->estate);
	table_close(b->rel, NoLock);
	MemoryContextDelete(b->cxt);
	pfree(b);
	/* Later statements of the transaction see the rows */
	CommandCounterIncrement();
}
