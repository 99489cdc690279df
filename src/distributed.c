/*-------------------------------------------------------------------------
 *
 * distributed.c
 *	  Distributed training of als and ials over postgres_fdw shards: the
 *	  coordinator.
 *
 * When train()'s source is a partitioned table partitioned by the user
 * column whose partitions are all postgres_fdw foreign tables, and the
 * setting recsys.distributed_training is on (the default), the model is
 * trained where the rows are: the coordinator opens one session per shard
 * (the foreign server's connection options and the caller's user mapping,
 * as postgres_fdw does) and drives the ALS sweeps, the shards doing the
 * work on their own rows (shard.c):
 *
 *	- item half-step, by the model's solver:
 *	  - normal equations (als; ials with solver cholesky): every shard
 *		sends, for each item its users touched, the partial normal
 *		equations over those users; the coordinator adds them up per item
 *		(and the users' Gram matrix, implicit) and solves the items as a
 *		single-node half-step would (ItemStepNormals);
 *	  - conjugate gradient (ials, solver cg): the coordinator runs each
 *		item's cg_steps steps, one round trip per step for all items, the
 *		shards computing the sparse part of each product (ItemStepCG);
 *	  - subspace (ials, solver subspace, iALS++): one round trip per block
 *		of block_size coordinates for all items, the shards summing each
 *		item's b x b system over their users from the predictions they
 *		keep, the coordinator solving it and sending the steps back with
 *		the next block (ItemStepSubspace);
 *	- user half-step: the coordinator sends the item factors to every
 *	  shard, which re-solves its users with the single-node kernels and
 *	  keeps them; it returns its part of the loss.
 *
 * The shards work concurrently (the queries are sent to all, then waited
 * for together), the coordinator never reads the interactions, and its
 * memory grows with the items (their summed equations, CG vectors or
 * block sums) and, once, the users' initial factors, not with the
 * interactions; the user rows are streamed from the shards into
 * recsys.user_factors at the end.  The bytes sent and received per
 * iteration are reported in its NOTICE and stored in
 * recsys.training_log.bytes_shipped.
 *
 * Choice and its cost, per item and shard and iteration at k = 64: the
 * user half-step ships k + 1 floats (the item factors); the item
 * half-step k (k + 1) / 2 + k floats with normal equations (8.6 KB),
 * k (2 c + 1) with c CG steps (1.8 KB at c = 3), and
 * (k / b) (b (b + 1) / 2 + b) + (k / b - 1) b with subspace blocks of b
 * (0.9 KB at b = 2).  At the 10M shape (3 shards, 69,878 users x 10,677
 * items) that is 13.7x, 3.2x and 1.8x the factor matrices' bytes per
 * iteration.  A second copy of the rows partitioned by item would ship
 * user factors instead (nshards x 18 MB at the 10M shape);
 * doc/scale-out.md measures the choices.
 *
 * Equivalence: the items are numbered as a single-node training numbers
 * them (ascending ids over all shards), the initial user factors are drawn
 * in the same order from the same seed, and each step solves the same
 * equations, so the model equals a single-node training's up to float
 * rounding (the normal equations and block sums travel as float and are
 * summed in a different order; the CG solver runs on the summed matrices
 * in double; the subspace solver chooses the same basis from the summed
 * Gram matrix and solves each block as the single-node sweep does).
 *
 * Atomicity: the model is stored in the caller's transaction only after
 * the last sweep; a shard that fails, stops or times out, or a cancel,
 * ends every session (their memory goes with them: nothing is written on
 * the shards) and leaves the previous model serving.
 *
 * IDENTIFICATION
 *	  src/distributed.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/table.h"
#include "als.h"
#include "catalog.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "linalg.h"
#include "mb/pg_wchar.h"
#include "method.h"
#include "miscadmin.h"
#include "parallel.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "distributed.h"
#include "shard.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/rel.h"

/* Whether a source partitioned over postgres_fdw trains distributed */
bool		recsys_distributed_training = true;

/* Define recsys.distributed_training */
void
DistributedInit(void)
{
	DefineCustomBoolVariable("recsys.distributed_training",
							 "Train from postgres_fdw partitions where the rows are.",
							 "Off: read every partition's rows into the coordinator, as for any source.",
							 &recsys_distributed_training,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/* The value of a column's postgres_fdw option column_name, or the name */
char *
RemoteColumn(Oid relid, const char *col)
{
	AttrNumber	attnum = get_attnum(relid, col);
	ListCell   *lc;

	if (attnum <= 0)
		return pstrdup(col);
	foreach(lc, GetForeignColumnOptions(relid, attnum))
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "column_name") == 0)
			return defGetString(def);
	}
	return pstrdup(col);
}

/* The leaf partitions of a partitioned table */
List *
LeafPartitions(Oid relid)
{
	List	   *all = find_all_inheritors(relid, AccessShareLock, NULL);
	List	   *leaves = NIL;
	ListCell   *lc;

	foreach(lc, all)
	{
		Oid			child = lfirst_oid(lc);
		char		kind = get_rel_relkind(child);

		if (kind != RELKIND_PARTITIONED_TABLE)
			leaves = lappend_oid(leaves, child);
	}
	return leaves;
}

/*
 * Fill d with one shard per foreign partition in `leaves`: its server, the
 * remote relation (schema-qualified, quoted) and the remote names of the
 * user, item and (optional) value columns.  No session is opened.
 */
void
DistributedShards(Dist *d, List *leaves, const char *user_col,
				  const char *item_col, const char *value_col)
{
	int			i = 0;
	ListCell   *lc;

	memset(d, 0, sizeof(Dist));
	d->nshards = list_length(leaves);
	d->shards = palloc0(sizeof(Shard) * Max(d->nshards, 1));
	foreach(lc, leaves)
	{
		Oid			relid = lfirst_oid(lc);
		Shard	   *s = &d->shards[i++];
		ForeignTable *ft = GetForeignTable(relid);
		char	   *schema = get_namespace_name(get_rel_namespace(relid));
		char	   *table = get_rel_name(relid);
		ListCell   *oc;

		s->relid = relid;
		s->serverid = ft->serverid;
		s->server = GetForeignServer(ft->serverid)->servername;
		foreach(oc, ft->options)
		{
			DefElem    *def = (DefElem *) lfirst(oc);

			if (strcmp(def->defname, "schema_name") == 0)
				schema = defGetString(def);
			else if (strcmp(def->defname, "table_name") == 0)
				table = defGetString(def);
		}
		s->remote_rel = quote_qualified_identifier(schema, table);
		s->user_col = RemoteColumn(relid, user_col);
		s->item_col = RemoteColumn(relid, item_col);
		s->value_col = value_col ? RemoteColumn(relid, value_col) : NULL;
	}
}

/*
 * How `relid` is laid out over shards: its leaf partitions, how many of
 * them are postgres_fdw foreign tables, and whether it is partitioned by
 * user_col alone (all zero and false for a table that is not partitioned).
 * Training (DistributedSource) and shard-local serving (ShardedByUser)
 * decide from the same facts.
 */
void
DistributedLayout(Oid relid, const char *user_col, int *leaves, int *foreign,
				  bool *by_user)
{
	List	   *leaf_list;
	ListCell   *lc;
	Relation	rel;
	PartitionKey key;

	*leaves = *foreign = 0;
	*by_user = false;
	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return;
	leaf_list = LeafPartitions(relid);
	*leaves = list_length(leaf_list);
	foreach(lc, leaf_list)
	{
		Oid			child = lfirst_oid(lc);

		if (get_rel_relkind(child) == RELKIND_FOREIGN_TABLE)
		{
			ForeignServer *server = GetForeignServer(GetForeignTable(child)->serverid);
			ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

			if (strcmp(fdw->fdwname, "postgres_fdw") == 0)
				(*foreign)++;
		}
	}
	rel = table_open(relid, AccessShareLock);
	key = RelationGetPartitionKey(rel);
	*by_user = key->partnatts == 1 && key->partattrs[0] == get_attnum(relid, user_col);
	table_close(rel, AccessShareLock);
}

/*
 * Whether train() reads `relid` distributed: a table partitioned by the
 * user column whose partitions are all postgres_fdw foreign tables (and
 * recsys.distributed_training on).  Errors when only some partitions are
 * foreign, or when the partition key is not the user column.
 */
bool
DistributedSource(Oid relid, const char *user_col)
{
	int			leaves;
	int			foreign;
	bool		by_user;

	if (!recsys_distributed_training)
		return false;
	DistributedLayout(relid, user_col, &leaves, &foreign, &by_user);
	if (foreign == 0)
		return false;
	if (foreign != leaves)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("source %s mixes postgres_fdw partitions with other partitions",
						RatingsSourceName(relid)),
				 errhint("Make every partition a postgres_fdw foreign table, or SET recsys.distributed_training = off to read them all here.")));
	if (!by_user)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distributed training needs source %s partitioned by its user column \"%s\"",
						RatingsSourceName(relid), user_col),
				 errhint("Partition it BY HASH (%s), or SET recsys.distributed_training = off to read every partition here.",
						 quote_identifier(user_col))));
	return true;
}

/* Error with a shard's message and SQLSTATE (as postgres_fdw reports) */
void
ShardError(Shard *s, PGresult *res, const char *what)
{
	const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	int			code = ERRCODE_CONNECTION_FAILURE;
	char	   *message;

	if (sqlstate && strlen(sqlstate) == 5)
		code = MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4]);
	message = pchomp(primary ? primary : PQerrorMessage(s->conn));

	/*
	 * The shard's memory budget is its session's: its hint (SET ... for
	 * this session) would send the caller to the wrong server
	 */
	if (code == ERRCODE_PROGRAM_LIMIT_EXCEEDED && strstr(message, "maintenance_work_mem") != NULL)
	{
		const char *role = PQuser(s->conn);

		hint = psprintf("Raise maintenance_work_mem on shard %s for the role this server connects as (ALTER ROLE %s SET maintenance_work_mem there, or its postgresql.conf): a SET here does not reach the shard's session.%s%s",
						s->server, quote_identifier(role ? role : "?"),
						hint ? " The shard's hint: " : "", hint ? hint : "");
	}
	ereport(ERROR,
			(errcode(code),
			 errmsg("shard %s failed during %s: %s", s->server, what, message),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Open a session to a shard with the foreign server's options and the
 * caller's user mapping.  As postgres_fdw, a role without superuser
 * must connect with a password of its user mapping, so that it cannot
 * borrow the coordinator's own credentials (peer or trust).
 */
void
ShardConnect(Shard *s)
{
	ForeignServer *server = GetForeignServer(s->serverid);
	UserMapping *um = GetUserMapping(GetUserId(), s->serverid);
	List	   *options = list_concat(list_copy(server->options), um->options);
	PQconninfoOption *defaults = PQconndefaults();
	const char **keys = palloc0(sizeof(char *) * (list_length(options) + 3));
	const char **vals = palloc0(sizeof(char *) * (list_length(options) + 3));
	int			n = 0;
	bool		has_password = false;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		bool		libpq_option = false;

		/* Only libpq's own keywords: the others are postgres_fdw's */
		for (PQconninfoOption *o = defaults; o && o->keyword; o++)
			if (strcmp(o->keyword, def->defname) == 0)
				libpq_option = true;
		if (!libpq_option)
			continue;
		if (strcmp(def->defname, "password") == 0)
			has_password = true;
		keys[n] = def->defname;
		vals[n] = defGetString(def);
		n++;
	}
	PQconninfoFree(defaults);
	keys[n] = "fallback_application_name";
	vals[n] = "recsys distributed training";
	n++;
	keys[n] = "client_encoding";
	vals[n] = GetDatabaseEncodingName();
	n++;
	keys[n] = NULL;
	vals[n] = NULL;

	if (!superuser() && !has_password)
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("a password is required to train from shard %s", s->server),
				 errhint("Non-superusers must give a password in the user mapping, as for postgres_fdw.")));

	s->conn = PQconnectdbParams(keys, vals, false);
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to shard %s: %s", s->server,
						s->conn ? pchomp(PQerrorMessage(s->conn)) : "out of memory")));
	if (!superuser() && !PQconnectionUsedPassword(s->conn))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("shard %s did not ask for the password of the user mapping", s->server),
				 errhint("Non-superusers must connect with password authentication, as for postgres_fdw.")));
}

/* End every session, cancelling what still runs (on errors too) */
void
ShardsDisconnect(Dist *d)
{
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];

		if (s->result)
			PQclear(s->result);
		s->result = NULL;
		if (s->conn)
		{
			if (s->busy)
			{
				PGcancel   *cancel = PQgetCancel(s->conn);
				char		buf[256];

				if (cancel)
				{
					(void) PQcancel(cancel, buf, sizeof(buf));
					PQfreeCancel(cancel);
				}
			}
			PQfinish(s->conn);
			s->conn = NULL;
		}
		s->busy = false;
	}
}

/*
 * Send one query to every shard (params: per shard, or the same for all
 * when per_shard is false), binary parameters and results.
 */
void
SendAll(Dist *d, const char *sql, int nparams, const Oid *types,
		const char *const *const *values, const int *const *lengths,
		bool per_shard, const char *what)
{
	int			formats[8];

	for (int p = 0; p < nparams; p++)
		formats[p] = 1;
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		const char *const *v = values ? values[per_shard ? i : 0] : NULL;
		const int  *l = lengths ? lengths[per_shard ? i : 0] : NULL;

		for (int p = 0; p < nparams; p++)
			d->bytes += l ? l[p] : 0;
		if (!PQsendQueryParams(s->conn, sql, nparams, types, v, l, formats, 1))
			ShardError(s, NULL, what);
		s->busy = true;
	}
}

/*
 * Wait for every shard's result (the queries run concurrently), reacting
 * to cancels and timeouts; each shard's result is left in s->result.
 */
void
WaitAll(Dist *d, const char *what)
{
	for (;;)
	{
		int			pending = 0;
		WaitEventSet *set;
		WaitEvent	event;

		for (int i = 0; i < d->nshards; i++)
		{
			Shard	   *s = &d->shards[i];

			if (!s->busy)
				continue;
			if (!PQconsumeInput(s->conn))
				ShardError(s, NULL, what);
			while (!PQisBusy(s->conn))
			{
				PGresult   *res = PQgetResult(s->conn);

				if (res == NULL)
				{
					s->busy = false;
					break;
				}
				if (PQresultStatus(res) != PGRES_TUPLES_OK &&
					PQresultStatus(res) != PGRES_COMMAND_OK)
				{
					s->busy = false;	/* the query is over */
					ShardError(s, res, what);
				}
				if (s->result)
					PQclear(s->result);
				s->result = res;
			}
			if (s->busy)
				pending++;
		}
		if (pending == 0)
			break;

		set = CreateWaitEventSet(CurrentMemoryContext, pending + 2);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (int i = 0; i < d->nshards; i++)
			if (d->shards[i].busy)
				AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(d->shards[i].conn),
								  NULL, NULL);
		(void) WaitEventSetWait(set, -1, &event, 1, PG_WAIT_EXTENSION);
		FreeWaitEventSet(set);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	for (int i = 0; i < d->nshards; i++)
	{
		PGresult   *res = d->shards[i].result;

		if (res)
			for (int r = 0; r < PQntuples(res); r++)
				for (int c = 0; c < PQnfields(res); c++)
					d->bytes += PQgetlength(res, r, c);
	}
}

/* A packed bytea field of a binary result */
const void *
ResultPack(PGresult *res, int row, int col, uint32 elem, int64 *n)
{
	return ShardUnpack(PQgetvalue(res, row, col), PQgetlength(res, row, col), elem, n);
}

/* A bigint field of a binary result */
int64
ResultInt8(PGresult *res, int row, int col)
{
	uint64		v = 0;
	const unsigned char *p = (const unsigned char *) PQgetvalue(res, row, col);

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return (int64) v;
}

/* A double precision field of a binary result */
double
ResultFloat8(PGresult *res, int row, int col)
{
	int64		bits = ResultInt8(res, row, col);
	double		v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

/* A bytea parameter (packed) as a binary value */
const char *
PackParam(const void *data, int64 n, uint32 elem, int *len)
{
	bytea	   *b = ShardPack(data, n, elem);

	*len = VARSIZE(b) - VARHDRSZ;
	return VARDATA(b);
}

/* What the item-solving threads share */
typedef struct ItemSolveTask
{
	const AlsConfig *c;
	int			d;
	const double *packed;		/* nitems x packed(d): summed A */
	const double *rhs;			/* nitems x d: summed b */
	const int64 *counts;
	const double *gram;			/* implicit: the users' Gram, k x k */
	float	   *y;
	float	   *ybias;
	double	  **scratch;		/* per thread: d x d + 3 d */
	int		   *failed;
} ItemSolveTask;

/*
 * Solve items [begin, end) from their summed normal equations, as the
 * single-node item half-step does (no PostgreSQL calls: threads)
 */
static bool
ItemSolveBody(void *arg, int thread, int begin, int end)
{
	ItemSolveTask *t = (ItemSolveTask *) arg;
	const AlsConfig *c = t->c;
	int			d = t->d;
	int			k = c->k;
	double	   *a = t->scratch[thread];
	double	   *b = a + (Size) d * d;
	double	   *r = b + d;
	double	   *p = r + d;
	double	   *ap = p + d;

	for (int i = begin; i < end; i++)
	{
		double		penalty = c->is_explicit ? c->regularization * (double) t->counts[i]
			: c->regularization;
		float	   *y = t->y + (Size) i * k;

		/* The full symmetric matrix: CG multiplies by all of it */
		AlsUnpack(t->packed + (Size) i * AlsPackedSize(d), a, d);
		for (int j = 0; j < d; j++)
			for (int l = j + 1; l < d; l++)
				a[(Size) j * d + l] = a[(Size) l * d + j];
		memcpy(b, t->rhs + (Size) i * d, sizeof(double) * d);
		if (!c->is_explicit)
			for (int j = 0; j < k * k; j++)
				a[j] += t->gram[j];

		if (!c->is_explicit && c->cg)
		{
			/*
			 * cg_steps conjugate-gradient steps warm-started from the
			 * current factors, as AlsImplicitRowCG, on the summed matrix
			 * (in double: truncated CG carries rounding differences from
			 * sweep to sweep, so it agrees with a single-node training to
			 * about 1e-4 relative, where exact solves agree to 1e-6)
			 */
			double		rsold = 0.0;

			for (int f = 0; f < k; f++)
			{
				double		sum = 0.0;

				for (int g = 0; g < k; g++)
					sum += a[(Size) g * k + f] * y[g];
				r[f] = b[f] - sum - penalty * y[f];
				p[f] = r[f];
				rsold += r[f] * r[f];
			}
			for (int step = 0; step < c->cg_steps; step++)
			{
				double		pap = 0.0;
				double		alpha;
				double		rsnew = 0.0;

				if (rsold < 1e-20)
					break;
				for (int f = 0; f < k; f++)
				{
					double		sum = 0.0;

					for (int g = 0; g < k; g++)
						sum += a[(Size) g * k + f] * p[g];
					ap[f] = sum + penalty * p[f];
					pap += p[f] * ap[f];
				}
				if (pap <= 0.0)
					break;
				alpha = rsold / pap;
				for (int f = 0; f < k; f++)
				{
					y[f] = (float) (y[f] + alpha * p[f]);
					r[f] -= alpha * ap[f];
					rsnew += r[f] * r[f];
				}
				for (int f = 0; f < k; f++)
					p[f] = r[f] + (rsnew / rsold) * p[f];
				rsold = rsnew;
			}
			continue;
		}

		if (AlsSolve(a, b, d, penalty) != 0)
		{
			t->failed[thread] = i;
			return false;
		}
		for (int f = 0; f < k; f++)
			y[f] = (float) b[f];
		if (c->is_explicit)
			t->ybias[i] = (float) b[k];
	}
	return true;
}

/*
 * The item half-step of implicit models with the CG solver, distributed:
 * cg_steps conjugate-gradient steps per item, warm-started from the current
 * factors, as AlsImplicitRowCG takes them, where each product of an item's
 * normal matrix with a vector adds the users' Gram matrix (summed once)
 * and the shards' sparse parts (one round trip per step, all items at
 * once).  It ships 2 k floats per item and shard and step, against the
 * k (k + 1) / 2 + k of the normal equations, and costs the shards
 * O(interactions x k) per step, as the single-node solver does.
 */
/*
 * Add a shard's per-item part (column 1 of its shard_item_cg row: k floats
 * per item of the shard, in its order) into the global rows of `into`.
 */
static void
AddShardPart(Shard *s, int k, double *into)
{
	int64		np;
	const float *part = ResultPack(s->result, 0, 1, sizeof(float), &np);

	if (np != (int64) s->nitems * k)
		ShardError(s, NULL, "the item half-step (a block of the wrong size)");
	for (int it = 0; it < s->nitems; it++)
	{
		double	   *to = into + (Size) s->item_pos[it] * k;

		for (int f = 0; f < k; f++)
			to[f] += part[(Size) it * k + f];
	}
}

static void
ItemStepCG(Dist *d, const AlsConfig *c, int nitems, float *y, double *gram)
{
	int			k = c->k;
	Size		n = (Size) nitems * k;
	double	   *r = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	double	   *p = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	double	   *q = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	double	   *rsold = palloc(sizeof(double) * Max(nitems, 1));
	bool	   *active = palloc(sizeof(bool) * Max(nitems, 1));
	double		lambda = c->regularization;

	/* Round 0: r = sum_u (1 + w - w x.y) x - (G + lambda I) y */
	SendAll(d, "SELECT gram, partial FROM recsys.shard_item_cg(NULL)", 0, NULL, NULL, NULL,
			false, "shard_item_cg");
	WaitAll(d, "the item half-step");
	memset(gram, 0, sizeof(double) * k * k);
	memset(r, 0, sizeof(double) * n);
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		int64		ng;
		const float *g = ResultPack(s->result, 0, 0, sizeof(float), &ng);

		if (ng != (int64) k * k)
			ShardError(s, NULL, "the item half-step (a block of the wrong size)");
		for (int j = 0; j < k * k; j++)
			gram[j] += g[j];
		AddShardPart(s, k, r);
		PQclear(s->result);
		s->result = NULL;
	}
	for (int i = 0; i < nitems; i++)
	{
		double	   *ri = r + (Size) i * k;
		const float *yi = y + (Size) i * k;

		rsold[i] = 0.0;
		for (int f = 0; f < k; f++)
		{
			double		sum = lambda * yi[f];

			for (int g = 0; g < k; g++)
				sum += gram[(Size) g * k + f] * yi[g];
			ri[f] -= sum;
			p[(Size) i * k + f] = ri[f];
			rsold[i] += ri[f] * ri[f];
		}
		active[i] = true;
	}
	for (int step = 0; step < c->cg_steps; step++)
	{
		const char ***values = palloc(sizeof(char **) * d->nshards);
		int		  **lengths = palloc(sizeof(int *) * d->nshards);
		Oid			types[1] = {BYTEAOID};
		bool		any = false;

		/* Converged items stop, as the single-node loop breaks */
		for (int i = 0; i < nitems; i++)
		{
			if (active[i] && rsold[i] < 1e-20)
				active[i] = false;
			any |= active[i];
		}
		if (!any)
			break;

		/* Each shard gets the directions of its items, in its order */
		for (int i = 0; i < d->nshards; i++)
		{
			Shard	   *s = &d->shards[i];
			float	   *pl = palloc(sizeof(float) * Max((Size) s->nitems * k, 1));

			for (int it = 0; it < s->nitems; it++)
			{
				int			g = s->item_pos[it];

				for (int f = 0; f < k; f++)
					pl[(Size) it * k + f] = active[g] ? (float) p[(Size) g * k + f] : 0.0f;
			}
			values[i] = palloc(sizeof(char *));
			lengths[i] = palloc(sizeof(int));
			values[i][0] = PackParam(pl, (int64) s->nitems * k, sizeof(float), &lengths[i][0]);
		}
		SendAll(d, "SELECT gram, partial FROM recsys.shard_item_cg($1)", 1, types,
				(const char *const *const *) values, (const int *const *) lengths, true,
				"shard_item_cg");
		WaitAll(d, "the item half-step");
		memset(q, 0, sizeof(double) * n);
		for (int i = 0; i < d->nshards; i++)
		{
			Shard	   *s = &d->shards[i];

			AddShardPart(s, k, q);
			PQclear(s->result);
			s->result = NULL;
		}

		for (int i = 0; i < nitems; i++)
		{
			double	   *pi = p + (Size) i * k;
			double	   *ri = r + (Size) i * k;
			double	   *qi = q + (Size) i * k;
			float	   *yi = y + (Size) i * k;
			double		pap = 0.0;
			double		alpha;
			double		rsnew = 0.0;

			if (!active[i])
				continue;
			/* ap = (G + lambda I) p + the shards' sparse parts, into q */
			for (int f = 0; f < k; f++)
			{
				double		sum = lambda * pi[f] + qi[f];

				for (int g = 0; g < k; g++)
					sum += gram[(Size) g * k + f] * pi[g];
				qi[f] = sum;
				pap += pi[f] * sum;
			}
			if (pap <= 0.0)
			{
				active[i] = false;
				continue;
			}
			alpha = rsold[i] / pap;
			for (int f = 0; f < k; f++)
			{
				yi[f] = (float) (yi[f] + alpha * pi[f]);
				ri[f] -= alpha * qi[f];
				rsnew += ri[f] * ri[f];
			}
			for (int f = 0; f < k; f++)
				pi[f] = ri[f] + (rsnew / rsold[i]) * pi[f];
			rsold[i] = rsnew;
		}
	}
	pfree(r);
	pfree(p);
	pfree(q);
	pfree(rsold);
	pfree(active);
}

/* A per-shard array of item values (per items of `per` floats, global order) in the shard's order, packed */
static const char *
ShardItemsParam(Shard *s, const float *all, int per, int *len)
{
	float	   *local = palloc_extended(sizeof(float) * Max((Size) s->nitems * per, 1),
										MCXT_ALLOC_HUGE);

	for (int it = 0; it < s->nitems; it++)
		memcpy(local + (Size) it * per, all + (Size) s->item_pos[it] * per,
			   sizeof(float) * per);
	return PackParam(local, (int64) s->nitems * per, sizeof(float), len);
}

/*
 * The item half-step of implicit models with the subspace solver (iALS++,
 * als.c), distributed: one sweep of block coordinate descent for every
 * item at once, as the single-node half-step sweeps each item.  The
 * coordinator sums the shards' user Gram matrices (in double), chooses
 * the basis as the single-node solver does (AlsSubspaceBasis: whitened,
 * z = U y, or the original coordinates, keeping S y), and sends it; then
 * for each block B of b coordinates every shard returns, per item its
 * users touched, its part of the block's sums, sum w x'_B x'_B^T (packed)
 * and sum (1 + w - w s) x'_B with the predictions s it keeps per row; the
 * coordinator adds them up, adds S_BB (or I) and subtracts (S z)_B (or
 * z_B) as the single-node kernel does (AlsSubspaceBlockSolve), solves
 * every item's b x b system, and sends the steps with the next block's
 * request, so that the shards' predictions take them first.  Per item and
 * shard: b (b + 1) / 2 + b floats back and b out per block, k / b blocks
 * (224 floats at k = 64, b = 2, against 64 (2 c + 2) = 512 for CG).
 */
static void
ItemStepSubspace(Dist *d, const AlsConfig *c, int nitems, const int64 *items, float *y,
				 double *gram)
{
	int			k = c->k;
	int			bs = c->block_size;
	float	   *gram_f = palloc(sizeof(float) * k * k);
	float	   *basis = palloc(sizeof(float) * k * k);
	double	   *scratch = palloc(sizeof(double) * ((Size) k * k + k));
	double	   *a = palloc(sizeof(double) * (Size) bs * bs);
	double	   *sums = palloc_extended(sizeof(double) *
									   Max((Size) nitems * (bs * (bs + 1) / 2 + bs), 1),
									   MCXT_ALLOC_HUGE);
	float	   *deltas = palloc_extended(sizeof(float) * Max((Size) nitems * bs, 1),
										 MCXT_ALLOC_HUGE);
	float	   *sz = NULL;
	bool		whitened;
	int			bplen;
	const char *bpack;
	int			pb = 0;
	double		serial = 0.0;	/* the coordinator's own time between blocks */
	instr_time	tserial;
	instr_time	tstart;

	INSTR_TIME_SET_CURRENT(tstart);
	/* The users' Gram matrix, summed in double, and the basis from it */
	SendAll(d, "SELECT recsys.shard_gram()", 0, NULL, NULL, NULL, false, "shard_gram");
	WaitAll(d, "the item half-step");
	memset(gram, 0, sizeof(double) * k * k);
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];
		int64		ng;
		const double *g = ResultPack(s->result, 0, 0, sizeof(double), &ng);

		if (ng != (int64) k * k)
			ShardError(s, NULL, "the item half-step (a Gram matrix of the wrong size)");
		for (int j = 0; j < k * k; j++)
			gram[j] += g[j];
		PQclear(s->result);
		s->result = NULL;
	}
	for (int j = 0; j < k * k; j++)
		gram_f[j] = (float) gram[j];
	whitened = AlsSubspaceBasis(k, c->regularization, gram, gram_f, basis, scratch,
								scratch + (Size) k * k);

	/* The items into the basis (z = U y, in place), or S z kept beside them */
	if (whitened)
	{
		if (!LinalgTrmm(true, false, k, nitems, 1.0f, basis, k, y, k))
			elog(ERROR, "a BLAS call of the subspace item half-step refused its arguments, please report a bug");
	}
	else
	{
		sz = palloc_extended(sizeof(float) * Max((Size) nitems * k, 1), MCXT_ALLOC_HUGE);
		for (int i = 0; i < nitems; i++)
			if (!LinalgGemvN(k, k, basis, k, y + (Size) i * k, sz + (Size) i * k))
				elog(ERROR, "a BLAS call of the subspace item half-step refused its arguments, please report a bug");
	}
	bpack = PackParam(basis, (int64) k * k, sizeof(float), &bplen);

	for (int f0 = 0; f0 < k; f0 += bs)
	{
		int			b = Min(bs, k - f0);
		int			nh = b * (b + 1) / 2;
		const char ***values = palloc(sizeof(char **) * d->nshards);
		int		  **lengths = palloc(sizeof(int *) * d->nshards);
		Oid			types[4] = {INT4OID, BOOLOID, BYTEAOID, BYTEAOID};
		char	   *first = palloc(4);
		char	   *white = palloc(1);

		/* Binary int4 and bool parameters: network byte order */
		for (int q = 0; q < 4; q++)
			first[q] = (char) ((uint32) f0 >> (24 - 8 * q));
		white[0] = whitened ? 1 : 0;
		for (int i = 0; i < d->nshards; i++)
		{
			values[i] = palloc0(sizeof(char *) * 4);
			lengths[i] = palloc0(sizeof(int) * 4);
			values[i][0] = first;
			lengths[i][0] = 4;
			values[i][1] = white;
			lengths[i][1] = 1;
			if (f0 == 0)
			{
				values[i][2] = bpack;
				lengths[i][2] = bplen;
			}
			else
				values[i][3] = ShardItemsParam(&d->shards[i], deltas, pb, &lengths[i][3]);
		}
		if (f0 > 0)
			serial += RecsysSecondsSince(tserial);
		SendAll(d, "SELECT recsys.shard_item_subspace($1, $2, $3, $4)", 4, types,
				(const char *const *const *) values, (const int *const *) lengths, true,
				"shard_item_subspace");
		WaitAll(d, "the item half-step");
		INSTR_TIME_SET_CURRENT(tserial);

		memset(sums, 0, sizeof(double) * (Size) nitems * (nh + b));
		for (int i = 0; i < d->nshards; i++)
		{
			Shard	   *s = &d->shards[i];
			int64		n;
			const float *part;

			if (PQgetisnull(s->result, 0, 0))
				ShardError(s, NULL, "the item half-step (no block)");
			part = ResultPack(s->result, 0, 0, sizeof(float), &n);
			if (n != (int64) s->nitems * (nh + b))
				ShardError(s, NULL, "the item half-step (a block of the wrong size)");
			for (int it = 0; it < s->nitems; it++)
			{
				double	   *to = sums + (Size) s->item_pos[it] * (nh + b);
				const float *from = part + (Size) it * (nh + b);

				for (int q = 0; q < nh + b; q++)
					to[q] += from[q];
			}
			PQclear(s->result);
			s->result = NULL;
		}

		/* Every item's block, as the single-node sweep solves a row's */
		for (int i = 0; i < nitems; i++)
		{
			double	   *h = sums + (Size) i * (nh + b);
			double	   *r = h + nh;
			float	   *z = y + (Size) i * k;
			float	   *szi = sz ? sz + (Size) i * k : NULL;
			int			info;

			info = AlsSubspaceBlockSolve(whitened, basis, k, f0, b, h, r,
										 whitened ? z : szi, NULL, a);
			if (info > 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("normal equations of item %lld are not positive definite",
								(long long) items[i]),
						 errhint("Use a positive regularization.")));
			if (info < 0)
				elog(ERROR, "a LAPACK call of the subspace item half-step refused its arguments, please report a bug");
			for (int q = 0; q < b; q++)
			{
				float		delta = (float) r[q];

				z[f0 + q] += delta;
				deltas[(Size) i * b + q] = delta;
			}
			if (!whitened)
			{
				/* S z follows z: S is symmetric, so its column f0 + q is that row */
				for (int q = 0; q < b; q++)
				{
					const float *col = basis + (Size) (f0 + q) * k;

					for (int f = 0; f < k; f++)
						szi[f] += deltas[(Size) i * b + q] * col[f];
				}
			}
		}
		pb = b;
	}

	/* Back from the basis: y = U^-1 z */
	if (whitened && !LinalgTrsm(true, false, k, nitems, 1.0f, basis, k, y, k))
		elog(ERROR, "a BLAS call of the subspace item half-step refused its arguments, please report a bug");
	serial += RecsysSecondsSince(tserial);
	elog(DEBUG1, "subspace item half-step: %.3f s, of which %.3f s between blocks on the coordinator (the shards wait)",
		 RecsysSecondsSince(tstart), serial);
}

/*
 * The item half-step from the shards' normal equations (explicit models,
 * and the exact solver): sum them per item (and the users' Gram matrix,
 * implicit) and solve every item as the single-node half-step does.
 */
static void
ItemStepNormals(Dist *dist, const AlsConfig *c, int dim, int nitems, const int64 *items,
				float *y, float *ybias, const int64 *counts, double *packed, double *rhs,
				double *gram, double **scratch, int nthreads)
{
	int			k = c->k;
	int			failed[PARALLEL_MAX_THREADS];
	ItemSolveTask task;

	SendAll(dist, "SELECT kind, data FROM recsys.shard_item_normals()", 0, NULL,
			NULL, NULL, false, "shard_item_normals");
	WaitAll(dist, "the item half-step");
	memset(packed, 0, sizeof(double) * (Size) nitems * AlsPackedSize(dim));
	memset(rhs, 0, sizeof(double) * (Size) nitems * dim);
	memset(gram, 0, sizeof(double) * k * k);
	for (int i = 0; i < dist->nshards; i++)
	{
		Shard	   *s = &dist->shards[i];
		PGresult   *res = s->result;
		Size		per_item = 2 + AlsPackedSize(dim) + dim;

		for (int row = 0; row < PQntuples(res); row++)
		{
			const char *kind = PQgetvalue(res, row, 0);
			int64		n;
			const float *data = ResultPack(res, row, 1, sizeof(float), &n);

			if (strcmp(kind, "gram") == 0)
			{
				if (n != (int64) k * k)
					ShardError(s, NULL, "the item half-step (a Gram matrix of the wrong size)");
				for (int j = 0; j < k * k; j++)
					gram[j] += data[j];
				continue;
			}
			if (n % per_item != 0)
				ShardError(s, NULL, "the item half-step (a block of the wrong size)");
			for (int64 b = 0; b < n / (int64) per_item; b++)
			{
				const float *e = data + b * per_item;
				int32		head[2];
				double	   *pa;
				double	   *pb;

				memcpy(head, e, sizeof(head));
				if (head[0] < 0 || head[0] >= nitems)
					ShardError(s, NULL, "the item half-step (an item out of range)");
				pa = packed + (Size) head[0] * AlsPackedSize(dim);
				pb = rhs + (Size) head[0] * dim;
				if (head[1] > counts[head[0]])
					ShardError(s, NULL, "the item half-step (an item count out of range)");
				for (Size j = 0; j < AlsPackedSize(dim); j++)
					pa[j] += e[2 + j];
				for (int j = 0; j < dim; j++)
					pb[j] += e[2 + AlsPackedSize(dim) + j];
			}
		}
		PQclear(res);
		s->result = NULL;
	}
	/* AlsUnpack reads the packed upper triangle column by column */
	task.c = c;
	task.d = dim;
	task.packed = packed;
	task.rhs = rhs;
	task.counts = counts;
	task.gram = gram;
	task.y = y;
	task.ybias = ybias;
	task.scratch = scratch;
	task.failed = failed;
	for (int th = 0; th < nthreads; th++)
		failed[th] = -1;
	if (!ParallelFor(nitems, 16, nthreads, ItemSolveBody, &task))
	{
		for (int th = 0; th < nthreads; th++)
			if (failed[th] >= 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("normal equations of item %lld are not positive definite",
								(long long) items[failed[th]]),
						 errhint("Use a positive regularization.")));
	}
}

/* The users' initial factors, as AlsModelInit draws them, per shard */
static void
InitialFactors(Dist *d, const RecsysParams *p, int nusers, int nitems, double mean,
			   float **per_shard)
{
	AlsModel	m;

	/* Drawn in the global (ascending id) order of a single-node training */
	AlsModelInit(&m, p->factors, nusers, nitems, mean, (uint64) (uint32) p->seed);
	for (int i = 0; i < d->nshards; i++)
	{
		Shard	   *s = &d->shards[i];

		per_shard[i] = palloc_extended(sizeof(float) * Max((Size) s->nusers * p->factors, 1),
									   MCXT_ALLOC_HUGE);
		for (int u = 0; u < s->nusers; u++)
			memcpy(per_shard[i] + (Size) u * p->factors,
				   m.user_factors + (Size) s->user_pos[u] * p->factors,
				   sizeof(float) * p->factors);
	}
	pfree(m.user_factors);
	pfree(m.user_bias);
	pfree(m.item_factors);
	pfree(m.item_bias);
}

/*
 * Train model `name` from the partitioned source's shards and store it
 * (the caller has checked the method and options); see the file header.
 */
void
DistributedTrain(const char *name, RecsysParams *params, RatingsSource *source)
{
	Dist		d;
	List	   *leaves = LeafPartitions(source->relid);
	instr_time	start;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "recsys distributed training",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	INSTR_TIME_SET_CURRENT(start);
	DistributedShards(&d, leaves, source->user_col, source->item_col, source->value_col);

	PG_TRY();
	{
		char	   *params_json = MethodParamsJson(params);
		int			k = params->factors;
		bool		is_explicit = params->method->explicit_values;
		int			dim = is_explicit ? k + 1 : k;
		int64		nnz = 0;
		double		sum = 0.0;
		int64		null_values = 0;
		int64		duplicates = 0;
		int64	   *items;
		int			nitems = 0;
		int			nusers = 0;
		double		mean;
		float	  **init;
		float	   *y;
		float	   *ybias;
		int64	   *counts;
		double	   *packed;
		double	   *rhs;
		double	   *gram;
		RecsysIteration *log;
		AlsConfig	c;
		int			nthreads = ParallelThreads();
		double	  **scratch;
		RecsysRatings r;
		AlsModel	m;
		RecsysTrained t;
		int64		model_id;
		MemoryContext iter_cxt;
		bool		normals;
		Size		item_state;

		/* 1. Open a session per shard and read each shard's rows there */
		for (int i = 0; i < d.nshards; i++)
		{
			PGresult   *res;

			ShardConnect(&d.shards[i]);
			res = PQexec(d.shards[i].conn, "SET search_path = pg_catalog, pg_temp");
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				ShardError(&d.shards[i], res, "setup");
			PQclear(res);
		}
		{
			const char *sql = "SELECT users, items, nnz, value_sum, null_values, duplicates, item_counts "
				"FROM recsys.shard_open($1::pg_catalog.text::pg_catalog.regclass, $2, $3, $4, $5, $6::pg_catalog.jsonb)";
			Oid			types[6] = {TEXTOID, NAMEOID, NAMEOID, NAMEOID, TEXTOID, TEXTOID};
			const char ***values = palloc(sizeof(char **) * d.nshards);
			int		  **lengths = palloc(sizeof(int *) * d.nshards);

			for (int i = 0; i < d.nshards; i++)
			{
				Shard	   *s = &d.shards[i];

				values[i] = palloc0(sizeof(char *) * 6);
				lengths[i] = palloc0(sizeof(int) * 6);
				values[i][0] = s->remote_rel;
				values[i][1] = s->user_col;
				values[i][2] = s->item_col;
				values[i][3] = s->value_col;
				values[i][4] = params->method->name;
				values[i][5] = params_json;
				for (int p = 0; p < 6; p++)
					lengths[i][p] = values[i][p] ? strlen(values[i][p]) : 0;
			}
			/* Text parameters here: send them as text */
			for (int i = 0; i < d.nshards; i++)
			{
				Shard	   *s = &d.shards[i];

				if (!PQsendQueryParams(s->conn, sql, 6, types, values[i], NULL, NULL, 1))
					ShardError(s, NULL, "shard_open");
				s->busy = true;
			}
			WaitAll(&d, "shard_open (reading the shard's rows)");
		}
		for (int i = 0; i < d.nshards; i++)
		{
			Shard	   *s = &d.shards[i];
			PGresult   *res = s->result;
			int64		n;
			const int64 *ids;

			if (PQntuples(res) != 1)
				ShardError(s, res, "shard_open");
			ids = ResultPack(res, 0, 0, sizeof(int64), &n);
			s->nusers = (int) n;
			s->users = palloc_extended(sizeof(int64) * Max(n, 1), MCXT_ALLOC_HUGE);
			memcpy(s->users, ids, sizeof(int64) * n);
			ids = ResultPack(res, 0, 1, sizeof(int64), &n);
			s->nitems = (int) n;
			s->items = palloc_extended(sizeof(int64) * Max(n, 1), MCXT_ALLOC_HUGE);
			memcpy(s->items, ids, sizeof(int64) * n);
			s->nnz = ResultInt8(res, 0, 2);
			s->value_sum = ResultFloat8(res, 0, 3);
			s->null_values = ResultInt8(res, 0, 4);
			s->duplicates = ResultInt8(res, 0, 5);
			ids = ResultPack(res, 0, 6, sizeof(int64), &n);
			if (n != s->nitems)
				ShardError(s, NULL, "shard_open (item counts)");
			s->item_counts = palloc(sizeof(int64) * Max(n, 1));
			memcpy(s->item_counts, ids, sizeof(int64) * n);
			nnz += s->nnz;
			sum += s->value_sum;
			null_values += s->null_values;
			duplicates += s->duplicates;
			nusers += s->nusers;
			PQclear(res);
			s->result = NULL;
		}
		if (nnz == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA),
					 errmsg("source relation %s has no usable interactions on any shard",
							RatingsSourceName(source->relid))));
		mean = sum / (double) nnz;

		/*
		 * 2. The global numbering: items ascending over all shards (their
		 * union), users ascending (each shard's users are its own: a user
		 * on two shards means the source is not partitioned by user)
		 */
		{
			int			total = 0;
			int		   *next = palloc0(sizeof(int) * d.nshards);
			int64		last = PG_INT64_MIN;
			bool		first = true;

			for (int i = 0; i < d.nshards; i++)
				total += d.shards[i].nitems;
			items = palloc_extended(sizeof(int64) * Max(total, 1), MCXT_ALLOC_HUGE);
			for (int i = 0; i < d.nshards; i++)
				d.shards[i].item_pos = palloc(sizeof(int) * Max(d.shards[i].nitems, 1));
			for (;;)
			{
				int			best = -1;

				for (int i = 0; i < d.nshards; i++)
					if (next[i] < d.shards[i].nitems &&
						(best < 0 || d.shards[i].items[next[i]] < d.shards[best].items[next[best]]))
						best = i;
				if (best < 0)
					break;
				if (first || d.shards[best].items[next[best]] != last)
				{
					last = d.shards[best].items[next[best]];
					items[nitems++] = last;
					first = false;
				}
				d.shards[best].item_pos[next[best]] = nitems - 1;
				next[best]++;
			}
			memset(next, 0, sizeof(int) * d.nshards);
			for (int i = 0; i < d.nshards; i++)
				d.shards[i].user_pos = palloc(sizeof(int) * Max(d.shards[i].nusers, 1));
			first = true;
			for (int pos = 0;; pos++)
			{
				int			best = -1;

				for (int i = 0; i < d.nshards; i++)
					if (next[i] < d.shards[i].nusers &&
						(best < 0 || d.shards[i].users[next[i]] < d.shards[best].users[next[best]]))
						best = i;
				if (best < 0)
					break;
				if (!first && d.shards[best].users[next[best]] == last)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("user %lld has rows on more than one shard",
									(long long) last),
							 errhint("Distributed training needs the rows of a user on one shard: partition by the user column.")));
				last = d.shards[best].users[next[best]];
				first = false;
				d.shards[best].user_pos[next[best]++] = pos;
			}
		}

		/*
		 * The items' state of the item half-step: summed normal equations,
		 * CG's three vectors, or a block's sums, its steps and S y
		 */
		normals = is_explicit || params->solver == RECSYS_SOLVER_CHOLESKY;
		if (normals)
			item_state = (AlsPackedSize(dim) + dim) * sizeof(double);
		else if (params->solver == RECSYS_SOLVER_SUBSPACE)
		{
			Size		b = Max(1, Min(params->block_size, k));

			item_state = (b * (b + 1) / 2 + b) * sizeof(double) + (b + k) * sizeof(float);
		}
		else
			item_state = 3 * (Size) k * sizeof(double);
		RecsysCheckMemory(add_size(mul_size((Size) nitems, item_state),
								   mul_size((Size) nusers, (Size) k * sizeof(float))),
						  "The coordinator keeps the items' state of the item half-step and draws the users' initial factors.");

		/* 3. Every shard gets the item order, the mean, its initial factors */
		init = palloc(sizeof(float *) * d.nshards);
		InitialFactors(&d, params, nusers, nitems, mean, init);
		{
			const char *sql = "SELECT recsys.shard_setup($1, $2, $3)";
			Oid			types[3] = {BYTEAOID, FLOAT8OID, BYTEAOID};
			const char ***values = palloc(sizeof(char **) * d.nshards);
			int		  **lengths = palloc(sizeof(int *) * d.nshards);
			int			ilen;
			const char *ipack = PackParam(items, nitems, sizeof(int64), &ilen);
			uint64		meanbits;
			char	   *meanbuf = palloc(8);

			memcpy(&meanbits, &mean, 8);
			for (int b = 0; b < 8; b++)
				meanbuf[b] = (char) (meanbits >> (56 - 8 * b));
			for (int i = 0; i < d.nshards; i++)
			{
				values[i] = palloc(sizeof(char *) * 3);
				lengths[i] = palloc(sizeof(int) * 3);
				values[i][0] = ipack;
				lengths[i][0] = ilen;
				values[i][1] = meanbuf;
				lengths[i][1] = 8;
				values[i][2] = PackParam(init[i], (int64) d.shards[i].nusers * k,
										 sizeof(float), &lengths[i][2]);
			}
			SendAll(&d, sql, 3, types, (const char *const *const *) values,
					(const int *const *) lengths, true, "shard_setup");
			WaitAll(&d, "shard_setup");
		}

		/* 4. The sweeps */
		memset(&c, 0, sizeof(c));
		c.is_explicit = is_explicit;
		c.k = k;
		c.regularization = params->regularization;
		c.mean = is_explicit ? mean : 0.0;
		c.cg = params->solver == RECSYS_SOLVER_CG;
		c.cg_steps = params->cg_steps;
		/* As a single-node training configures it (factor_model.c ConfigOf) */
		if (params->solver == RECSYS_SOLVER_SUBSPACE && !is_explicit)
			c.block_size = Max(1, Min(params->block_size, k));
		y = palloc0_array(float, (Size) Max(nitems, 1) * (k + 1));
		ybias = y + (Size) nitems * k;
		counts = palloc0_array(int64, Max(nitems, 1));
		for (int i = 0; i < d.nshards; i++)
			for (int it = 0; it < d.shards[i].nitems; it++)
				counts[d.shards[i].item_pos[it]] += d.shards[i].item_counts[it];
		/* Only the normal equations' solver sums them (the others: NULL) */
		packed = NULL;
		rhs = NULL;
		if (normals)
		{
			packed = palloc_extended(sizeof(double) * Max((Size) nitems * AlsPackedSize(dim), 1),
									 MCXT_ALLOC_HUGE);
			rhs = palloc_extended(sizeof(double) * Max((Size) nitems * dim, 1), MCXT_ALLOC_HUGE);
		}
		gram = palloc0_array(double, (Size) k * k);
		scratch = palloc(sizeof(double *) * nthreads);
		for (int th = 0; th < nthreads; th++)
			scratch[th] = palloc(sizeof(double) * ((Size) dim * dim + 4 * dim));
		log = palloc0(sizeof(RecsysIteration) * Max(params->iterations, 1));

		/*
		 * What one iteration packs and sends (the item factors, each CG
		 * step's directions: I k floats each) is freed after it, so the
		 * coordinator's memory does not grow with the iterations
		 */
		iter_cxt = AllocSetContextCreate(cxt, "recsys distributed iteration",
										 ALLOCSET_DEFAULT_SIZES);
		for (int it = 0; it < params->iterations; it++)
		{
			instr_time	istart;
			double		total = 0.0;
			double		norms = 0.0;
			double		item_norms = 0.0;
			double		item_seconds;
			MemoryContext loop_old = MemoryContextSwitchTo(iter_cxt);

			INSTR_TIME_SET_CURRENT(istart);
			d.bytes = 0;

			/* Item half-step: distributed subspace blocks, CG rounds ... */
			if (!is_explicit && c.block_size > 0)
				ItemStepSubspace(&d, &c, nitems, items, y, gram);
			else if (!is_explicit && c.cg)
				ItemStepCG(&d, &c, nitems, y, gram);
			else
				ItemStepNormals(&d, &c, dim, nitems, items, y, ybias, counts, packed, rhs,
								gram, scratch, nthreads);

			item_seconds = RecsysSecondsSince(istart);
			/* User half-step on the shards, against the new items */
			{
				int			len;
				const char *ypack = PackParam(y, (int64) nitems * (k + 1), sizeof(float), &len);
				Oid			types[1] = {BYTEAOID};
				const char *vals[1] = {ypack};
				int			lens[1] = {len};
				const char *const *vp = vals;
				const int  *lp = lens;

				SendAll(&d, "SELECT loss_part, norms FROM recsys.shard_user_step($1)", 1, types,
						&vp, &lp, false, "shard_user_step");
				WaitAll(&d, "the user half-step");
			}
			for (int i = 0; i < d.nshards; i++)
			{
				Shard	   *s = &d.shards[i];

				total += ResultFloat8(s->result, 0, 0);
				norms += ResultFloat8(s->result, 0, 1);
				PQclear(s->result);
				s->result = NULL;
			}

			/* The loss, as the single-node loss functions compute it */
			for (int i = 0; i < nitems; i++)
			{
				double		sq = 0.0;

				for (int f = 0; f < k; f++)
					sq += (double) y[(Size) i * k + f] * y[(Size) i * k + f];
				item_norms += is_explicit ?
					(double) counts[i] * (sq + (double) ybias[i] * ybias[i]) : sq;
			}
			log[it].loss = (total + params->regularization * (norms + item_norms)) / (double) nnz;
			log[it].rmse = is_explicit ? sqrt(total / (double) nnz) : NAN;
			log[it].seconds = RecsysSecondsSince(istart);
			log[it].bytes = d.bytes;
			elog(DEBUG1, "iteration %d: item half-step %.3f s, user half-step %.3f s",
				 it + 1, item_seconds, log[it].seconds - item_seconds);
			if (!isfinite(log[it].loss))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("training diverged at iteration %d: the loss is not finite", it + 1)));
			if (is_explicit)
				ereport(NOTICE,
						(errmsg("iteration %d of %d: loss %.6f, rmse %.6f, %.3f s, %.1f MB shipped",
								it + 1, params->iterations, log[it].loss, log[it].rmse,
								log[it].seconds, d.bytes / 1048576.0)));
			else
				ereport(NOTICE,
						(errmsg("iteration %d of %d: loss %.6f, %.3f s, %.1f MB shipped",
								it + 1, params->iterations, log[it].loss,
								log[it].seconds, d.bytes / 1048576.0)));
			MemoryContextSwitchTo(loop_old);
			MemoryContextReset(iter_cxt);
		}

		/*
		 * 5. Store: the model row, the items and the log from here, then
		 * each shard's users streamed in blocks (single-row mode: one
		 * block in memory at a time)
		 */
		memset(&r, 0, sizeof(r));
		r.nusers = nusers;
		r.nitems = nitems;
		r.nnz = nnz;
		r.null_values = null_values;
		r.duplicates = duplicates;
		r.mean = mean;
		r.item_ids = items;
		r.by_item.nrows = nitems;
		r.by_item.indptr = palloc0(sizeof(int64) * ((Size) nitems + 1));
		for (int i = 0; i < nitems; i++)
			r.by_item.indptr[i + 1] = r.by_item.indptr[i] + counts[i];
		memset(&m, 0, sizeof(m));
		m.k = k;
		m.nusers = nusers;
		m.nitems = nitems;
		m.mean = c.mean;
		m.item_factors = y;
		m.item_bias = ybias;
		memset(&t, 0, sizeof(t));
		t.name = name;
		t.params = params;
		t.source = source;
		t.ratings = &r;
		t.model = &m;
		t.log = log;
		t.iterations = params->iterations;
		t.seconds = RecsysSecondsSince(start);
		t.user_id_type = RatingsIdType(source->relid, source->user_col);
		t.item_id_type = RatingsIdType(source->relid, source->item_col);
		t.users_elsewhere = true;
		model_id = CatalogStoreModel(&t);

		for (int i = 0; i < d.nshards; i++)
		{
			Shard	   *s = &d.shards[i];
			PGresult   *res;

			if (!PQsendQueryParams(s->conn, "SELECT * FROM recsys.shard_export()", 0, NULL, NULL,
								   NULL, NULL, 1) || !PQsetSingleRowMode(s->conn))
				ShardError(s, NULL, "shard_export");
			s->busy = true;
			while ((res = PQgetResult(s->conn)) != NULL)
			{
				CHECK_FOR_INTERRUPTS();
				if (PQresultStatus(res) == PGRES_SINGLE_TUPLE)
				{
					int64		n;
					int64		nf;
					int64		nc;
					int64		ns;
					int64		nv;
					RecsysRatings chunk;
					AlsModel	cm;
					const int64 *ids = ResultPack(res, 0, 0, sizeof(int64), &n);
					const float *bias = ResultPack(res, 0, 1, sizeof(float), &nf);
					const float *fac = ResultPack(res, 0, 2, sizeof(float), &nf);
					const int32 *cnt = ResultPack(res, 0, 3, sizeof(int32), &nc);
					const int32 *seen = ResultPack(res, 0, 4, sizeof(int32), &ns);
					const float *sv = ResultPack(res, 0, 5, sizeof(float), &nv);

					if (nf != n * k || nc != n || nv != ns)
						ShardError(s, NULL, "storing the users (a block of the wrong size)");
					memset(&chunk, 0, sizeof(chunk));
					chunk.nusers = (int) n;
					chunk.nitems = nitems;
					chunk.user_ids = (int64 *) ids;
					chunk.item_ids = items;
					chunk.by_user.nrows = (int) n;
					chunk.by_user.ncols = nitems;
					chunk.by_user.nnz = ns;
					chunk.by_user.indptr = palloc(sizeof(int64) * ((Size) n + 1));
					chunk.by_user.indptr[0] = 0;
					for (int64 u = 0; u < n; u++)
						chunk.by_user.indptr[u + 1] = chunk.by_user.indptr[u] + cnt[u];
					if (chunk.by_user.indptr[n] != ns)
						ShardError(s, NULL, "storing the users (inconsistent counts)");
					for (int64 e = 0; e < ns; e++)
						if (seen[e] < 0 || seen[e] >= nitems)
							ShardError(s, NULL, "storing the users (an item out of range)");
					chunk.by_user.indices = (int32 *) seen;
					memset(&cm, 0, sizeof(cm));
					cm.k = k;
					cm.user_factors = (float *) fac;
					cm.user_bias = (float *) bias;
					CatalogInsertUserChunk(model_id, &chunk, &cm, sv);
					pfree(chunk.by_user.indptr);
					d.bytes += PQgetlength(res, 0, 0) + PQgetlength(res, 0, 2) +
						PQgetlength(res, 0, 4) + PQgetlength(res, 0, 5);
				}
				else if (PQresultStatus(res) != PGRES_TUPLES_OK)
				{
					s->busy = false;
					ShardError(s, res, "storing the users");
				}
				PQclear(res);
			}
			s->busy = false;
		}

		/* 6. Close the sessions: each shard frees its training */
		for (int i = 0; i < d.nshards; i++)
			PQclear(PQexec(d.shards[i].conn, "SELECT recsys.shard_close()"));
	}
	PG_FINALLY();
	{
		ShardsDisconnect(&d);
	}
	PG_END_TRY();

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
