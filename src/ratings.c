/*-------------------------------------------------------------------------
 *
 * ratings.c
 *	  Read (user, item, value) rows from a source relation into CSR form.
 *
 * The source is read once, through SPI and with the caller's privileges (so
 * row-level security applies), with a cursor in batches.  Each row's ids are
 * mapped to dense indexes on the fly and kept as compact triplets; after the
 * scan, ids are renumbered in ascending id order (so a model does not depend
 * on the physical row order), a counting sort by user and a sort of each
 * user's row build the matrix by user (items ascending within a user, which
 * makes duplicates adjacent), and a counting sort builds it by item.
 *
 * Rules for bad rows (also in doc/training.md):
 *	- NULL user or item id: error.
 *	- NULL value: the row is skipped and counted (a NOTICE reports them).
 *	- NaN or infinite value, or one outside the range of real: error.
 *	- Duplicate (user, item) rows: merged into one, with their mean value
 *	  (explicit ratings) or their sum (implicit events add up).
 *
 * IDENTIFICATION
 *	  src/ratings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "idmap.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "ratings.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/regproc.h"

/* Rows fetched from the cursor per batch */
#define RATINGS_BATCH_ROWS 10000

/*
 * Bytes per source row while loading, at the peak: the triplets (12 bytes,
 * with up to half again as spare capacity) and the user-major matrix (8).
 */
#define RATINGS_LOAD_BYTES_PER_ROW 26

/* Schema-qualified, quoted name of a relation, for messages and SQL */
char *
RatingsSourceName(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname;

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	nspname = get_namespace_name(get_rel_namespace(relid));
	return quote_qualified_identifier(nspname, relname);
}

/* Bytes the loaded, sorted interactions take */
Size
RatingsMemory(int64 nnz, int nusers, int nitems)
{
	Size		entries = mul_size(nnz, 2 * (sizeof(int32) + sizeof(float)));
	Size		offsets = mul_size(add_size(nusers, nitems) + 2, sizeof(int64));
	Size		ids = mul_size(add_size(nusers, nitems), sizeof(int64));

	return add_size(entries, add_size(offsets, ids));
}

/* Base type of a column, or error if the column does not exist */
static Oid
ColumnType(Oid relid, const char *relname, const char *colname,
		   AttrNumber *attnum)
{
	*attnum = get_attnum(relid, colname);
	if (*attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" does not exist in relation %s",
						colname, relname)));
	return getBaseType(get_atttype(relid, *attnum));
}

/* Error unless the caller may read the column (after the table check) */
static void
CheckColumnPrivilege(Oid relid, AttrNumber attnum, const char *relname,
					 const char *colname, bool table_ok)
{
	if (table_ok)
		return;
	if (pg_attribute_aclcheck(relid, attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for column \"%s\" of relation %s",
						colname, relname)));
}

/*
 * Check that the source can be read by the current user and has the right
 * column types; return the types of the user, item and value columns.
 *
 * Privileges are checked before anything about the columns is revealed.
 */
static void
ValidateSource(const RatingsSource *src, const char *relname, Oid *types)
{
	char		relkind = get_rel_relkind(src->relid);
	bool		table_ok;
	AttrNumber	attnum;
	const char *cols[3] = {src->user_col, src->item_col, src->value_col};
	const char *roles[3] = {"user", "item", "value"};

	if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW &&
		relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE &&
		relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table, view, materialized view or foreign table",
						relname)));

	table_ok = pg_class_aclcheck(src->relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	if (!table_ok &&
		pg_attribute_aclcheck_all(src->relid, GetUserId(), ACL_SELECT,
								  ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for relation %s", relname),
				 errhint("Training reads the source with your privileges; ask its owner for SELECT.")));

	for (int c = 0; c < 3; c++)
	{
		Oid			type;

		if (cols[c] == NULL)
		{
			types[c] = InvalidOid;
			continue;
		}
		type = ColumnType(src->relid, relname, cols[c], &attnum);
		CheckColumnPrivilege(src->relid, attnum, relname, cols[c], table_ok);
		types[c] = type;

		if (c < 2 && type != INT2OID && type != INT4OID && type != INT8OID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s id column \"%s\" of relation %s has type %s, but an integer type is required",
							roles[c], cols[c], relname, format_type_be(type)),
					 errhint("Use a smallint, integer or bigint column, or train from a view that maps ids to integers.")));
		if (c == 2 && type != INT2OID && type != INT4OID && type != INT8OID &&
			type != FLOAT4OID && type != FLOAT8OID && type != NUMERICOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("value column \"%s\" of relation %s has type %s, but a numeric type is required",
							cols[c], relname, format_type_be(type))));
	}
}

/* An integer id datum of type `type` as int64 */
static inline int64
IdFromDatum(Datum d, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

/* A numeric value datum of type `type` as double */
static inline double
ValueFromDatum(Datum d, Oid type)
{
	switch (type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	}
}

/* Growable triplet arrays filled while scanning */
typedef struct Triplets
{
	int64		count;
	int64		capacity;
	int32	   *users;
	int32	   *items;
	float	   *values;
} Triplets;

/* Resize the triplet arrays to `cap` entries, within the memory budget */
static void
TripletsGrow(Triplets *t, int64 cap)
{
	RecsysCheckMemory(mul_size(cap, RATINGS_LOAD_BYTES_PER_ROW),
					  "Reading the source relation needs this much for its rows.");
	if (t->users == NULL)
	{
		t->users = palloc_extended(cap * sizeof(int32), MCXT_ALLOC_HUGE);
		t->items = palloc_extended(cap * sizeof(int32), MCXT_ALLOC_HUGE);
		t->values = palloc_extended(cap * sizeof(float), MCXT_ALLOC_HUGE);
	}
	else
	{
		t->users = repalloc_huge(t->users, cap * sizeof(int32));
		t->items = repalloc_huge(t->items, cap * sizeof(int32));
		t->values = repalloc_huge(t->values, cap * sizeof(float));
	}
	t->capacity = cap;
}

/* Make room for one more triplet; grow by half (repalloc holds both) */
static inline void
TripletsReserve(Triplets *t)
{
	if (t->count >= t->capacity)
		TripletsGrow(t, Max(t->capacity + t->capacity / 2, 1024));
}

/* Ascending comparison of int64 for qsort */
static int
CompareInt64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Sort the distinct ids (given in first-seen order) ascending and return
 * remap[first_seen_index] = ascending rank; ids is sorted in place.
 */
static int32 *
RenumberIds(int64 *ids, int n)
{
	int64	   *sorted = palloc_extended(sizeof(int64) * Max(n, 1), MCXT_ALLOC_HUGE);
	int32	   *remap = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);
	IdMap	   *rank = IdMapCreate(n);

	memcpy(sorted, ids, sizeof(int64) * n);
	qsort(sorted, n, sizeof(int64), CompareInt64);
	for (int i = 0; i < n; i++)
		IdMapSet(rank, sorted[i], i);
	for (int i = 0; i < n; i++)
		remap[i] = IdMapLookup(rank, ids[i]);
	memcpy(ids, sorted, sizeof(int64) * n);
	pfree(sorted);
	pfree(rank->slots);
	pfree(rank);
	return remap;
}

/* palloc0 with MCXT_ALLOC_HUGE */
static void *
palloc0_extended_huge(Size size)
{
	return palloc_extended(size, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
}

/* Allocate a CSR matrix's arrays */
static void
SparseAlloc(RecsysSparse *m, int nrows, int ncols, int64 nnz)
{
	m->nrows = nrows;
	m->ncols = ncols;
	m->nnz = nnz;
	m->indptr = palloc0_extended_huge(sizeof(int64) * ((Size) nrows + 1));
	m->indices = palloc_extended(sizeof(int32) * Max(nnz, 1), MCXT_ALLOC_HUGE);
	m->values = palloc_extended(sizeof(float) * Max(nnz, 1), MCXT_ALLOC_HUGE);
}

/* An entry of one user's row while it is sorted */
typedef struct RowEntry
{
	int32		item;
	float		value;
} RowEntry;

/* Order row entries by item, then value (a canonical order for merging) */
static int
CompareRowEntry(const void *a, const void *b)
{
	const RowEntry *x = (const RowEntry *) a;
	const RowEntry *y = (const RowEntry *) b;

	if (x->item != y->item)
		return (x->item > y->item) - (x->item < y->item);
	return (x->value > y->value) - (x->value < y->value);
}

/*
 * Build the user-major matrix from triplets (which are freed): a counting
 * sort by user straight into the matrix, then each row sorted by item.
 * Only the triplets and the matrix are ever allocated together (20 bytes
 * per row at the peak).  Duplicates, now adjacent, are merged into their
 * mean or sum; sorting them by value first makes the merged value
 * independent of the scan order.
 */
static void
BuildByUser(RecsysRatings *r, Triplets *t, bool sum_duplicates)
{
	int64		n = t->count;
	RecsysSparse *m = &r->by_user;
	int64	   *next;
	int64		out;
	int64		longest = 0;
	RowEntry   *row;

	SparseAlloc(m, r->nusers, r->nitems, n);
	for (int64 e = 0; e < n; e++)
		m->indptr[t->users[e] + 1]++;
	for (int u = 0; u < r->nusers; u++)
	{
		m->indptr[u + 1] += m->indptr[u];
		longest = Max(longest, m->indptr[u + 1] - m->indptr[u]);
	}
	next = palloc_extended(sizeof(int64) * ((Size) r->nusers + 1), MCXT_ALLOC_HUGE);
	memcpy(next, m->indptr, sizeof(int64) * ((Size) r->nusers + 1));
	for (int64 e = 0; e < n; e++)
	{
		int64		pos = next[t->users[e]]++;

		m->indices[pos] = t->items[e];
		m->values[pos] = t->values[e];
	}
	pfree(next);
	pfree(t->users);
	pfree(t->items);
	pfree(t->values);

	/* Sort each row by item and merge adjacent duplicates, compacting */
	row = palloc_extended(sizeof(RowEntry) * Max(longest, 1), MCXT_ALLOC_HUGE);
	out = 0;
	for (int u = 0; u < r->nusers; u++)
	{
		int64		begin = m->indptr[u];
		int64		len = m->indptr[u + 1] - begin;

		if ((u % 1024) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int64 j = 0; j < len; j++)
		{
			row[j].item = m->indices[begin + j];
			row[j].value = m->values[begin + j];
		}
		qsort(row, len, sizeof(RowEntry), CompareRowEntry);

		m->indptr[u] = out;
		for (int64 j = 0; j < len;)
		{
			int32		item = row[j].item;
			double		sum = 0.0;
			int64		count = 0;

			for (; j < len && row[j].item == item; j++, count++)
				sum += row[j].value;
			m->indices[out] = item;
			m->values[out] = (float) (sum_duplicates ? sum : sum / count);
			out++;
			r->duplicates += count - 1;
		}
	}
	m->indptr[r->nusers] = out;
	m->nnz = out;
	r->nnz = out;
	pfree(row);
}

/* Build the item-major matrix from the user-major one */
static void
BuildByItem(RecsysRatings *r)
{
	const RecsysSparse *src = &r->by_user;
	RecsysSparse *m = &r->by_item;
	int64	   *next;

	SparseAlloc(m, r->nitems, r->nusers, src->nnz);
	for (int64 e = 0; e < src->nnz; e++)
		m->indptr[src->indices[e] + 1]++;
	for (int i = 0; i < r->nitems; i++)
		m->indptr[i + 1] += m->indptr[i];
	next = palloc_extended(sizeof(int64) * ((Size) r->nitems + 1), MCXT_ALLOC_HUGE);
	memcpy(next, m->indptr, sizeof(int64) * ((Size) r->nitems + 1));
	for (int u = 0; u < r->nusers; u++)
	{
		for (int64 e = src->indptr[u]; e < src->indptr[u + 1]; e++)
		{
			int64		pos = next[src->indices[e]]++;

			m->indices[pos] = u;
			m->values[pos] = src->values[e];
		}
	}
	pfree(next);
}

/*
 * After training, storing the model needs only the user-major structure
 * (the seen items), the item rows' lengths (popularity) and, when they
 * are what gets stored, the user-major values: free the rest, so that
 * the write phase's batches fit in the memory training has given back.
 */
void
RatingsReleaseForStore(RecsysRatings *r, bool keep_user_values)
{
	pfree(r->by_item.indices);
	pfree(r->by_item.values);
	r->by_item.indices = NULL;
	r->by_item.values = NULL;
	if (!keep_user_values)
	{
		pfree(r->by_user.values);
		r->by_user.values = NULL;
	}
}

/* The relation's row estimate, for sizing the first buffers */
static int64
EstimatedRows(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int64		rows = 0;

	if (HeapTupleIsValid(tuple))
	{
		float4		reltuples = ((Form_pg_class) GETSTRUCT(tuple))->reltuples;

		if (reltuples > 0)
			rows = (int64) reltuples;
		ReleaseSysCache(tuple);
	}
	return rows;
}

/* Error for a non-finite or out-of-range value */
static void
BadValue(const char *relname, const char *col, double v, int64 user,
		 int64 item)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("value column \"%s\" of relation %s contains %s value %g for user %lld, item %lld",
					col, relname, isfinite(v) ? "out-of-range" : "non-finite",
					v, (long long) user, (long long) item),
			 errhint("Values must be finite and fit in real; train from a view that filters or repairs such rows.")));
}

/*
 * The query reading the source: user, item and (if any) value columns,
 * quoted, from the qualified relation; for one user ($1) if by_user.
 */
static void
SelectSql(StringInfo sql, const RatingsSource *src, const char *relname,
		  bool by_user)
{
	initStringInfo(sql);
	appendStringInfo(sql, "SELECT %s, %s", quote_identifier(src->user_col),
					 quote_identifier(src->item_col));
	if (src->value_col)
		appendStringInfo(sql, ", %s", quote_identifier(src->value_col));
	appendStringInfo(sql, " FROM %s", relname);
	if (by_user)
		appendStringInfo(sql, " WHERE %s OPERATOR(pg_catalog.=) $1",
						 quote_identifier(src->user_col));
}

/*
 * A row's value as double: false for a NULL value (the row is to be
 * skipped); errors for non-finite or out-of-range values.
 */
static bool
RowValue(Datum d, bool isnull, Oid type, const char *relname, const char *col,
		 int64 uid, int64 iid, double *value)
{
	double		v;

	if (isnull)
		return false;
	v = ValueFromDatum(d, type);
	if (isnan(v) || isinf(v) || fabs(v) > FLT_MAX)
		BadValue(relname, col, v, uid, iid);
	*value = v;
	return true;
}

/* A row's id as int64; NULL ids are an error */
static int64
RowId(Datum d, bool isnull, Oid type, const char *relname, const char *col,
	  const char *role)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s id column \"%s\" of relation %s contains null values",
						role, col, relname),
				 errhint("Train from a view that filters out rows with null ids.")));
	return IdFromDatum(d, type);
}

/* Interactions collected one at a time, before they become CSR */
struct RatingsBuilder
{
	RecsysRatings *r;
	IdMap	   *users;
	IdMap	   *items;
	int64	   *user_first;		/* dense index -> id, in first-seen order */
	int64	   *item_first;
	int64		user_cap;
	int64		item_cap;
	Triplets	t;
};

/* Everything the scan of the source builds, as the DestReceiver sees it */
typedef struct LoadState
{
	DestReceiver pub;			/* must be first */
	const RatingsSource *src;
	const char *relname;
	Oid			types[3];
	RecsysRatings *r;
	MemoryContext outer;		/* where the results live */
	MemoryContext batch_cxt;	/* per-row garbage, reset now and then */
	RatingsBuilder b;
} LoadState;

/* Record one id, growing the first-seen array as needed */
static inline int32
MapId(IdMap *map, int64 id, int64 **first, int64 *cap)
{
	int32		idx = IdMapInsert(map, id);

	if (idx >= *cap)
	{
		*cap *= 2;
		*first = repalloc_huge(*first, sizeof(int64) * *cap);
	}
	(*first)[idx] = id;
	return idx;
}

/*
 * Receive one source row straight from the executor: no tuple is copied
 * into an SPI tuple table, which makes reading several times cheaper.
 */
static bool
LoadReceiveSlot(TupleTableSlot *slot, DestReceiver *self)
{
	LoadState  *st = (LoadState *) self;
	const RatingsSource *src = st->src;
	RecsysRatings *r = st->r;
	double		v = 1.0;
	int64		uid,
				iid;
	MemoryContext old;

	if ((r->rows_read % RATINGS_BATCH_ROWS) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(st->batch_cxt);
	}
	r->rows_read++;

	old = MemoryContextSwitchTo(st->batch_cxt);
	slot_getallattrs(slot);
	uid = RowId(slot->tts_values[0], slot->tts_isnull[0], st->types[0],
				st->relname, src->user_col, "user");
	iid = RowId(slot->tts_values[1], slot->tts_isnull[1], st->types[1],
				st->relname, src->item_col, "item");
	if (src->value_col &&
		!RowValue(slot->tts_values[2], slot->tts_isnull[2], st->types[2],
				  st->relname, src->value_col, uid, iid, &v))
	{
		r->null_values++;
		MemoryContextSwitchTo(old);
		return true;
	}

	/* The maps and triplets live in the outer context */
	MemoryContextSwitchTo(st->outer);
	RatingsBuilderAdd(&st->b, uid, iid, (float) v);
	MemoryContextSwitchTo(old);
	return true;
}

/* DestReceiver callbacks with nothing to do */
static void
LoadStartup(pg_attribute_unused() DestReceiver *self,
			pg_attribute_unused() int operation,
			pg_attribute_unused() TupleDesc typeinfo)
{
}

/* DestReceiver shutdown: nothing to release */
static void
LoadShutdown(pg_attribute_unused() DestReceiver *self)
{
}

/* DestReceiver destroy: the state lives in the caller's memory */
static void
LoadDestroy(pg_attribute_unused() DestReceiver *self)
{
}

/* Initialize a builder (in the current memory context) */
static void
BuilderInit(RatingsBuilder *b, RecsysRatings *r, int64 estimate)
{
	memset(b, 0, sizeof(RatingsBuilder));
	b->r = r;
	/* Start at the estimate, so a fresh table needs no growth */
	if (estimate > 0)
		TripletsGrow(&b->t, estimate + estimate / 16);

	/*
	 * The maps start small and grow with the distinct ids: sized by rows
	 * they would be far larger than the ids and miss the cache on every
	 * probe.
	 */
	b->users = IdMapCreate(1024);
	b->items = IdMapCreate(1024);
	b->user_cap = b->item_cap = 1024;
	b->user_first = palloc(sizeof(int64) * b->user_cap);
	b->item_first = palloc(sizeof(int64) * b->item_cap);
}

/*
 * A builder for interactions given one at a time (forget_user trains again
 * on a model's stored rows), in the current memory context.
 */
RatingsBuilder *
RatingsBuilderCreate(int64 estimate)
{
	RatingsBuilder *b = palloc(sizeof(RatingsBuilder));

	BuilderInit(b, palloc0(sizeof(RecsysRatings)), estimate);
	return b;
}

/* Add one interaction (in the builder's memory context) */
void
RatingsBuilderAdd(RatingsBuilder *b, int64 user, int64 item, float value)
{
	TripletsReserve(&b->t);
	b->t.users[b->t.count] = MapId(b->users, user, &b->user_first, &b->user_cap);
	b->t.items[b->t.count] = MapId(b->items, item, &b->item_first, &b->item_cap);
	b->t.values[b->t.count] = value;
	b->t.count++;
}

/* The number of interactions added so far */
int64
RatingsBuilderCount(const RatingsBuilder *b)
{
	return b->t.count;
}

/*
 * Turn the interactions into sorted CSR matrices (ids ascending, so that
 * their order does not matter), merging duplicates by sum or mean.  The
 * builder is used up.
 */
RecsysRatings *
RatingsBuilderFinish(RatingsBuilder *b, bool sum_duplicates)
{
	RecsysRatings *r = b->r;
	Triplets	t = b->t;
	int32	   *remap;
	double		sum = 0.0;

	r->nusers = b->users->count;
	r->nitems = b->items->count;
	RecsysCheckMemory(add_size(RatingsMemory(t.count, r->nusers, r->nitems),
							   mul_size(t.capacity, 3 * sizeof(int32))),
					  "Sorting the interactions needs this much.");

	/* Renumber ids in ascending order, so that row order does not matter */
	remap = RenumberIds(b->user_first, r->nusers);
	for (int64 e = 0; e < t.count; e++)
		t.users[e] = remap[t.users[e]];
	pfree(remap);
	remap = RenumberIds(b->item_first, r->nitems);
	for (int64 e = 0; e < t.count; e++)
		t.items[e] = remap[t.items[e]];
	pfree(remap);
	pfree(b->users->slots);
	pfree(b->items->slots);
	r->user_ids = b->user_first;
	r->item_ids = b->item_first;

	BuildByUser(r, &t, sum_duplicates);
	BuildByItem(r);

	for (int64 e = 0; e < r->nnz; e++)
		sum += r->by_user.values[e];
	r->mean = sum / (double) Max(r->nnz, 1);
	return r;
}

/*
 * Read the source relation into a RecsysRatings allocated in the current
 * memory context.
 */
RecsysRatings *
RatingsLoad(const RatingsSource *src)
{
	LoadState	st;
	RecsysRatings *r = palloc0(sizeof(RecsysRatings));
	StringInfoData sql;
	SPIExecuteOptions options;
	const char *relname;
	int			rc;

	memset(&st, 0, sizeof(st));
	st.pub.receiveSlot = LoadReceiveSlot;
	st.pub.rStartup = LoadStartup;
	st.pub.rShutdown = LoadShutdown;
	st.pub.rDestroy = LoadDestroy;
	st.pub.mydest = DestNone;
	st.src = src;
	st.relname = relname = RatingsSourceName(src->relid);
	st.r = r;
	st.outer = CurrentMemoryContext;
	ValidateSource(src, relname, st.types);

	/* Start at the planner's estimate */
	BuilderInit(&st.b, r, EstimatedRows(src->relid));
	st.batch_cxt = AllocSetContextCreate(st.outer, "recsys load batch",
										 ALLOCSET_DEFAULT_SIZES);

	SelectSql(&sql, src, relname, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	memset(&options, 0, sizeof(options));
	options.read_only = true;
	options.dest = (DestReceiver *) &st;
	rc = SPI_execute_extended(sql.data, &options);

	/* With a DestReceiver of ours, SPI reports a SELECT as a utility */
	if (rc != SPI_OK_SELECT && rc != SPI_OK_UTILITY)
		elog(ERROR, "reading %s failed: %s", relname, SPI_result_code_string(rc));
	SPI_finish();
	MemoryContextDelete(st.batch_cxt);

	if (st.b.t.count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("source relation %s has no usable interactions", relname),
				 r->null_values > 0 ?
				 errdetail("All %lld rows have a null value.", (long long) r->null_values) :
				 errdetail("The relation is empty, or row-level security hides every row.")));
	return RatingsBuilderFinish(&st.b, src->sum_duplicates);
}

/* The OID of a relation given by its stored, qualified and quoted name */
Oid
RatingsSourceOid(const char *qualified_name)
{
	List	   *names = stringToQualifiedNameList(qualified_name);

	return RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock,
							false);
}

/* Order (item, value) pairs by item id */
static int
CompareItemValue(const void *a, const void *b)
{
	return CompareInt64(a, b);
}

/*
 * Read one user's current rows from the source, with the same rules as
 * training (NULL values skipped, duplicates merged, bad values rejected),
 * into `out`, allocated in the current memory context.
 */
void
RatingsLoadUser(const RatingsSource *src, int64 user_id, RatingsUser *out)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *relname = RatingsSourceName(src->relid);
	Oid			types[3];
	StringInfoData sql;
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(user_id)};
	ItemValue  *pairs;
	int			npairs = 0;
	uint64		nrows;

	ValidateSource(src, relname, types);
	SelectSql(&sql, src, relname, true);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* A new snapshot: rows inserted earlier in this transaction count */
	if (SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "reading the rows of user %lld failed", (long long) user_id);
	nrows = SPI_processed;
	if (nrows > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("user %lld has too many rows", (long long) user_id)));

	pairs = MemoryContextAllocExtended(outer, sizeof(ItemValue) * Max(nrows, 1),
									   MCXT_ALLOC_HUGE);
	for (uint64 row = 0; row < nrows; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d = SPI_getbinval(tup, desc, 2, &isnull);
		int64		iid = RowId(d, isnull, types[1], relname, src->item_col, "item");
		double		v = 1.0;

		if (src->value_col)
		{
			d = SPI_getbinval(tup, desc, 3, &isnull);
			if (!RowValue(d, isnull, types[2], relname, src->value_col, user_id, iid, &v))
				continue;
		}
		pairs[npairs].item = iid;
		pairs[npairs].value = v;
		npairs++;
	}
	SPI_finish();

	RatingsMerge(pairs, npairs, src->sum_duplicates, out);
	pfree(pairs);
}

/*
 * Sort (item, value) pairs by item and merge duplicates by sum or mean, as
 * training does; `out` is allocated in the current memory context.
 */
void
RatingsMerge(ItemValue *pairs, int npairs, bool sum_duplicates, RatingsUser *out)
{
	qsort(pairs, npairs, sizeof(ItemValue), CompareItemValue);
	out->items = palloc(sizeof(int64) * Max(npairs, 1));
	out->values = palloc(sizeof(float) * Max(npairs, 1));
	out->n = 0;
	for (int i = 0; i < npairs;)
	{
		int64		item = pairs[i].item;
		double		sum = 0.0;
		int			count = 0;

		for (; i < npairs && pairs[i].item == item; i++, count++)
			sum += pairs[i].value;
		out->items[out->n] = item;
		out->values[out->n] = (float) (sum_duplicates ? sum : sum / count);
		out->n++;
	}
}
