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

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "idmap.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "ratings.h"
#include "textdict.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
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
 * Check that a relation can be read (in some columns at least) by the
 * current user; returns whether the whole table may be read.  Checked
 * before anything about its columns is revealed.
 */
static bool
CheckReadable(Oid relid, const char *relname)
{
	char		relkind = get_rel_relkind(relid);
	bool		table_ok;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_VIEW &&
		relkind != RELKIND_MATVIEW && relkind != RELKIND_FOREIGN_TABLE &&
		relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s is not a table, view, materialized view or foreign table",
						relname)));

	table_ok = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
	if (!table_ok &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT,
								  ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for relation %s", relname),
				 errhint("Training reads the source with your privileges; ask its owner for SELECT.")));
	return table_ok;
}

/*
 * Whether ids of this type are kept as text, with a dictionary in the model
 * (text, varchar, char, uuid); integer ids are the model's ids themselves
 */
bool
RatingsIsTextIdType(Oid type)
{
	return type == TEXTOID || type == VARCHAROID || type == BPCHAROID ||
		type == UUIDOID;
}

/*
 * Before training: a dictionary for each side whose id column is text-like
 * (src->user_dict, src->item_dict; NULL for integer ids), in the current
 * memory context.  Feature relations intern their ids into the same.
 */
void
RatingsIdDicts(RatingsSource *src)
{
	src->user_dict = RatingsIsTextIdType(RatingsIdType(src->relid, src->user_col)) ?
		TextDictCreate(1024) : NULL;
	src->item_dict = RatingsIsTextIdType(RatingsIdType(src->relid, src->item_col)) ?
		TextDictCreate(1024) : NULL;
}


/* The base type of a relation's column, or InvalidOid */
Oid
RatingsIdType(Oid relid, const char *col)
{
	AttrNumber	attnum = get_attnum(relid, col);

	if (attnum <= 0)
		return InvalidOid;
	return getBaseType(get_atttype(relid, attnum));
}

/* Whether a column type is one of the numbers a value may have */
static bool
IsNumberType(Oid type)
{
	return type == INT2OID || type == INT4OID || type == INT8OID ||
		type == FLOAT4OID || type == FLOAT8OID || type == NUMERICOID;
}

/* Error unless a time column's type is a date, a timestamp or a number */
static void
CheckTimeType(Oid type, const char *col, const char *relname)
{
	if (!IsNumberType(type) && type != TIMESTAMPOID && type != TIMESTAMPTZOID &&
		type != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("time column \"%s\" of relation %s has type %s, but timestamp, timestamptz, date or a numeric type is required",
						col, relname, format_type_be(type))));
}

/*
 * Check that the source can be read by the current user and has the right
 * column types; return the types of the user, item, value and time
 * columns (InvalidOid for those not used).
 *
 * Privileges are checked before anything about the columns is revealed.
 */
static void
ValidateSource(const RatingsSource *src, const char *relname, Oid *types)
{
	bool		table_ok = CheckReadable(src->relid, relname);
	AttrNumber	attnum;
	const char *cols[4] = {src->user_col, src->item_col, src->value_col,
	src->prep.time_col};
	const char *roles[2] = {"user", "item"};

	for (int c = 0; c < 4; c++)
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

		if (c < 2 && type != INT2OID && type != INT4OID && type != INT8OID &&
			!RatingsIsTextIdType(type))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("%s id column \"%s\" of relation %s has type %s, but an integer, text or uuid type is required",
							roles[c], cols[c], relname, format_type_be(type)),
					 errhint("Use a smallint, integer, bigint, text, varchar or uuid column, or train from a view that casts the ids to one.")));
		if (c == 2 && !IsNumberType(type))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("value column \"%s\" of relation %s has type %s, but a numeric type is required",
							cols[c], relname, format_type_be(type)),
					 type == BOOLOID ?
					 errhint("Train from a view with the column as a number, e.g. CREATE VIEW v AS SELECT user_id, item_id, %s::int AS value FROM ..., or leave value_col out if every row counts 1.",
							 quote_identifier(cols[c])) :
					 (type == TEXTOID || type == VARCHAROID || type == BPCHAROID) ?
					 errhint("Train from a view that converts the column, e.g. CREATE VIEW v AS SELECT user_id, item_id, %s::numeric AS value FROM ....",
							 quote_identifier(cols[c])) :
					 errhint("Use a smallint, integer, bigint, real, double precision or numeric column.")));
		if (c == 3)
			CheckTimeType(type, cols[c], relname);
	}
}

/*
 * Check that the caller may read the source's columns and that their types
 * fit (what RatingsLoad checks first), without reading it
 */
void
RatingsValidate(const RatingsSource *src)
{
	Oid			types[4];

	ValidateSource(src, RatingsSourceName(src->relid), types);
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
	int64		old = t->capacity;

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

	/* The new part, which the scan is about to write */
	RecsysPrefault(t->users + old, (cap - old) * sizeof(int32));
	RecsysPrefault(t->items + old, (cap - old) * sizeof(int32));
	RecsysPrefault(t->values + old, (cap - old) * sizeof(float));
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

/*
 * Sort a run of duplicate values ascending (insertion sort: runs are a
 * handful of entries), so that merging them sums in a canonical order
 */
static void
SortDuplicateValues(float *v, int64 n)
{
	for (int64 i = 1; i < n; i++)
	{
		float		x = v[i];
		int64		j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/*
 * Build the user-major matrix from triplets (which are freed), items
 * ascending within each user, with two counting sorts (a least significant
 * key first radix sort): by item into a scratch copy, then, stably, by
 * user straight into the matrix.  Why: sorting each user's row by
 * comparisons was the largest part of building the matrices (n log n,
 * the row sort was 17% of a 1M read's profile); two passes over the
 * entries are linear.  At the peak the triplets and the scratch copy are
 * allocated together (20 bytes per row, as before).  Duplicates, now
 * adjacent, are merged into their mean or sum, added in ascending order
 * of value so that the merged value does not depend on the scan order.
 *
 * The matrix takes over the triplets' user and value arrays, and the
 * scratch copy is handed back (*spare_indices, *spare_values, room for
 * t->count entries) for the item-major matrix.  Why: memory that the
 * process touches for the first time costs a page fault per 4 kB (such
 * faults were 15% of a `popular` training's profile, doc/performance.md);
 * memory written over costs none.
 */
static void
BuildByUser(RecsysRatings *r, Triplets *t, bool sum_duplicates,
			int32 **spare_indices, float **spare_values)
{
	int64		n = t->count;
	RecsysSparse *m = &r->by_user;
	int64	   *next;			/* counts by user, then where each row goes on */
	int64	   *item_end;
	int32	   *scratch_users;
	float	   *scratch_values;
	int64		out;
	int64		from;

	/* By item: item i's entries end up in [item_end[i - 1], item_end[i]) */
	item_end = palloc0_extended_huge(sizeof(int64) * ((Size) r->nitems + 1));
	next = palloc0_extended_huge(sizeof(int64) * ((Size) r->nusers + 1));
	for (int64 e = 0; e < n; e++)
	{
		item_end[t->items[e] + 1]++;
		next[t->users[e] + 1]++;
	}
	for (int i = 0; i < r->nitems; i++)
		item_end[i + 1] += item_end[i];
	scratch_users = palloc_extended(sizeof(int32) * Max(n, 1), MCXT_ALLOC_HUGE);
	scratch_values = palloc_extended(sizeof(float) * Max(n, 1), MCXT_ALLOC_HUGE);
	RecsysPrefault(scratch_users, sizeof(int32) * n);
	RecsysPrefault(scratch_values, sizeof(float) * n);
	for (int64 e = 0; e < n; e++)
	{
		int64		pos = item_end[t->items[e]]++;

		scratch_users[pos] = t->users[e];
		scratch_values[pos] = t->values[e];
	}
	CHECK_FOR_INTERRUPTS();

	/* Then by user, stably, into the triplets' arrays: rows by item */
	pfree(t->items);
	for (int u = 0; u < r->nusers; u++)
		next[u + 1] += next[u];
	m->nrows = r->nusers;
	m->ncols = r->nitems;
	m->indptr = palloc_extended(sizeof(int64) * ((Size) r->nusers + 1), MCXT_ALLOC_HUGE);
	m->indices = t->users;
	m->values = t->values;
	memcpy(m->indptr, next, sizeof(int64) * ((Size) r->nusers + 1));
	from = 0;
	for (int i = 0; i < r->nitems; i++)
	{
		if ((i % 1024) == 0)
			CHECK_FOR_INTERRUPTS();
		for (; from < item_end[i]; from++)
		{
			int64		pos = next[scratch_users[from]]++;

			m->indices[pos] = i;
			m->values[pos] = scratch_values[from];
		}
	}
	pfree(next);
	pfree(item_end);
	*spare_indices = scratch_users;
	*spare_values = scratch_values;

	/* Merge adjacent duplicates, compacting */
	out = 0;
	for (int u = 0; u < r->nusers; u++)
	{
		int64		begin = m->indptr[u];
		int64		end = m->indptr[u + 1];

		m->indptr[u] = out;
		for (int64 j = begin; j < end;)
		{
			int32		item = m->indices[j];
			int64		run = j + 1;
			double		sum = 0.0;

			while (run < end && m->indices[run] == item)
				run++;
			if (run - j > 1)
				SortDuplicateValues(m->values + j, run - j);
			for (int64 x = j; x < run; x++)
				sum += m->values[x];
			m->indices[out] = item;
			m->values[out] = (float) (sum_duplicates ? sum : sum / (run - j));
			out++;
			r->duplicates += run - j - 1;
			j = run;
		}
	}
	m->indptr[r->nusers] = out;
	m->nnz = out;
	r->nnz = out;

	/* Give back the triplets' spare capacity (shrinking does not copy) */
	if (t->capacity > Max(out, 1))
	{
		m->indices = repalloc_huge(m->indices, sizeof(int32) * Max(out, 1));
		m->values = repalloc_huge(m->values, sizeof(float) * Max(out, 1));
	}
}

/*
 * Build the item-major matrix from the user-major one, into indices and
 * values if given (room for the nnz entries; the matrix takes them over),
 * else into new arrays
 */
static void
BuildByItem(RecsysRatings *r, int32 *indices, float *values)
{
	const RecsysSparse *src = &r->by_user;
	RecsysSparse *m = &r->by_item;
	int64	   *next;

	if (indices != NULL)
	{
		m->nrows = r->nitems;
		m->ncols = r->nusers;
		m->nnz = src->nnz;
		m->indptr = palloc0_extended_huge(sizeof(int64) * ((Size) r->nitems + 1));
		m->indices = indices;
		m->values = values;
	}
	else
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

/* Mark which of n ascending ids are among the ascending ids of f */
static void
MarkFeatured(const int64 *ids, int n, const RecsysFeatures *f, bool *out)
{
	int			j = 0;

	memset(out, 0, sizeof(bool) * n);
	if (f == NULL)
		return;
	for (int i = 0; i < n; i++)
	{
		while (j < f->nentities && f->ids[j] < ids[i])
			j++;
		out[i] = j < f->nentities && f->ids[j] == ids[i];
	}
}

/*
 * Iterated k-core filtering: leave out users with fewer than min_user and
 * items with fewer than min_item interactions, again and again, since
 * each removal lowers the others' counts, until every user and item left
 * has enough (Batagelj and Zaversnik's peeling, each pass linear in the
 * interactions).  Users and items that have features stay in the model
 * as rows without interactions (cold rows).  Returns a new RecsysRatings
 * (current memory context), or r itself when nothing is filtered.
 */
RecsysRatings *
RatingsKCore(RecsysRatings *r, int min_user, int min_item,
			 const RecsysFeatures *user_features,
			 const RecsysFeatures *item_features, RatingsKCoreStats *stats)
{
	const RecsysSparse *bu = &r->by_user;
	const RecsysSparse *bi = &r->by_item;
	bool	   *keep_u = palloc(sizeof(bool) * Max(r->nusers, 1));
	bool	   *keep_i = palloc(sizeof(bool) * Max(r->nitems, 1));
	bool	   *feat_u = palloc(sizeof(bool) * Max(r->nusers, 1));
	bool	   *feat_i = palloc(sizeof(bool) * Max(r->nitems, 1));
	int64	   *count_u = palloc(sizeof(int64) * Max(r->nusers, 1));
	int64	   *count_i = palloc(sizeof(int64) * Max(r->nitems, 1));
	int32	   *new_u = palloc(sizeof(int32) * Max(r->nusers, 1));
	int32	   *new_i = palloc(sizeof(int32) * Max(r->nitems, 1));
	RecsysRatings *out;
	bool		changed = true;
	int64		nnz = 0;
	double		sum = 0.0;

	memset(stats, 0, sizeof(*stats));
	if (min_user <= 1 && min_item <= 1)
		return r;

	/* Rows without interactions (features only) are not in the core */
	for (int u = 0; u < r->nusers; u++)
	{
		count_u[u] = bu->indptr[u + 1] - bu->indptr[u];
		keep_u[u] = count_u[u] > 0;
	}
	for (int i = 0; i < r->nitems; i++)
	{
		count_i[i] = bi->indptr[i + 1] - bi->indptr[i];
		keep_i[i] = count_i[i] > 0;
	}
	while (changed)
	{
		CHECK_FOR_INTERRUPTS();
		changed = false;
		stats->rounds++;
		for (int u = 0; u < r->nusers; u++)
		{
			if (!keep_u[u] || count_u[u] >= min_user)
				continue;
			keep_u[u] = false;
			changed = true;
			for (int64 e = bu->indptr[u]; e < bu->indptr[u + 1]; e++)
				if (keep_i[bu->indices[e]])
					count_i[bu->indices[e]]--;
		}
		for (int i = 0; i < r->nitems; i++)
		{
			if (!keep_i[i] || count_i[i] >= min_item)
				continue;
			keep_i[i] = false;
			changed = true;
			for (int64 e = bi->indptr[i]; e < bi->indptr[i + 1]; e++)
				if (keep_u[bi->indices[e]])
					count_u[bi->indices[e]]--;
		}
	}

	/* The new numbering: the core, and the rows that have features */
	MarkFeatured(r->user_ids, r->nusers, user_features, feat_u);
	MarkFeatured(r->item_ids, r->nitems, item_features, feat_i);
	out = palloc0(sizeof(RecsysRatings));
	*out = *r;
	out->nusers = out->nitems = 0;
	for (int u = 0; u < r->nusers; u++)
	{
		if (!keep_u[u] && bu->indptr[u + 1] > bu->indptr[u])
			stats->users++;
		new_u[u] = (keep_u[u] || feat_u[u]) ? out->nusers++ : -1;
	}
	for (int i = 0; i < r->nitems; i++)
	{
		if (!keep_i[i] && bi->indptr[i + 1] > bi->indptr[i])
			stats->items++;
		new_i[i] = (keep_i[i] || feat_i[i]) ? out->nitems++ : -1;
	}
	for (int u = 0; u < r->nusers; u++)
		if (keep_u[u])
			for (int64 e = bu->indptr[u]; e < bu->indptr[u + 1]; e++)
				nnz += keep_i[bu->indices[e]];
	stats->interactions = r->nnz - nnz;
	if (nnz == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("no interactions are left after k-core filtering with min_user_interactions %d and min_item_interactions %d",
						min_user, min_item),
				 errdetail("All %lld interactions were left out, in %d passes.",
						   (long long) r->nnz, stats->rounds),
				 errhint("Use smaller minimums.")));

	out->user_ids = palloc_extended(sizeof(int64) * Max(out->nusers, 1), MCXT_ALLOC_HUGE);
	out->item_ids = palloc_extended(sizeof(int64) * Max(out->nitems, 1), MCXT_ALLOC_HUGE);
	for (int u = 0; u < r->nusers; u++)
		if (new_u[u] >= 0)
			out->user_ids[new_u[u]] = r->user_ids[u];
	for (int i = 0; i < r->nitems; i++)
		if (new_i[i] >= 0)
			out->item_ids[new_i[i]] = r->item_ids[i];
	SparseAlloc(&out->by_user, out->nusers, out->nitems, nnz);
	nnz = 0;
	for (int u = 0; u < r->nusers; u++)
	{
		if (new_u[u] < 0)
			continue;
		if (keep_u[u])
			for (int64 e = bu->indptr[u]; e < bu->indptr[u + 1]; e++)
			{
				if (!keep_i[bu->indices[e]])
					continue;
				out->by_user.indices[nnz] = new_i[bu->indices[e]];
				out->by_user.values[nnz] = bu->values[e];
				sum += bu->values[e];
				nnz++;
			}
		out->by_user.indptr[new_u[u] + 1] = nnz;
	}
	out->nnz = nnz;
	out->mean = sum / (double) nnz;
	BuildByItem(out, NULL, NULL);

	/* The unfiltered interactions are no longer needed */
	pfree(r->by_user.indptr);
	pfree(r->by_user.indices);
	pfree(r->by_user.values);
	pfree(r->by_item.indptr);
	pfree(r->by_item.indices);
	pfree(r->by_item.values);
	pfree(r->user_ids);
	pfree(r->item_ids);
	pfree(keep_u);
	pfree(keep_i);
	pfree(feat_u);
	pfree(feat_i);
	pfree(count_u);
	pfree(count_i);
	pfree(new_u);
	pfree(new_i);
	return out;
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
 * The query reading the source: user, item and (if any) value and time
 * columns, quoted, from the qualified relation; for one user ($1) if
 * by_user.
 */
static void
SelectSql(StringInfo sql, const RatingsSource *src, const char *relname,
		  const Oid *types, bool by_user)
{
	Oid			time_type = types[3];

	/* Text-like ids are read as text, whatever their type */
	initStringInfo(sql);
	appendStringInfo(sql, "SELECT %s%s, %s%s", quote_identifier(src->user_col),
					 RatingsIsTextIdType(types[0]) ? "::pg_catalog.text" : "",
					 quote_identifier(src->item_col),
					 RatingsIsTextIdType(types[1]) ? "::pg_catalog.text" : "");
	if (src->value_col)
		appendStringInfo(sql, ", %s", quote_identifier(src->value_col));
	if (src->prep.time_col)
	{
		/* Seconds since the epoch, or the number itself */
		if (OidIsValid(time_type) && (time_type == TIMESTAMPOID ||
									  time_type == TIMESTAMPTZOID ||
									  time_type == DATEOID))
			appendStringInfo(sql, ", pg_catalog.date_part('epoch', %s)",
							 quote_identifier(src->prep.time_col));
		else
			appendStringInfo(sql, ", %s::pg_catalog.float8",
							 quote_identifier(src->prep.time_col));
	}
	appendStringInfo(sql, " FROM %s", relname);
	/* The key in the column's own type, so that an index on it serves */
	if (by_user && RatingsIsTextIdType(types[0]))
		appendStringInfo(sql, " WHERE %s OPERATOR(pg_catalog.=) $1::pg_catalog.text::%s",
						 quote_identifier(src->user_col),
						 format_type_be_qualified(types[0]));
	else if (by_user)
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

/*
 * One side's ids (users or items) as they are seen: each new id gets the
 * next dense index.  Ids in [0, ndirect) are also found through `direct`,
 * an array indexed by the id itself; the hash map is then probed only the
 * first time an id is seen.  Why: ids are most often small dense integers
 * (or text ids, which are numbered densely by their dictionary), and the
 * hash probe of every row's two ids was a tenth of reading the source.
 * Sparse or negative ids simply stay in the hash map.
 */
typedef struct IdIndex
{
	IdMap	   *map;			/* id -> dense index, the authority */
	int64	   *first;			/* dense index -> id, in first-seen order */
	int64		cap;			/* allocated entries of first */
	int32	   *direct;			/* direct[id]: dense index, or -1 if not yet */
	int64		ndirect;
} IdIndex;

/*
 * The most entries the direct array may have for `count` distinct ids:
 * 16 per id plus 64k (4 bytes each: at most 64 bytes per distinct id, as
 * much as the hash map's slots, plus 256 kB), so sparse ids cannot make
 * it large.
 */
#define ID_DIRECT_LIMIT(count) (16 * ((int64) (count) + 1) + 65536)

/* Interactions collected one at a time, before they become CSR */
struct RatingsBuilder
{
	MemoryContext cxt;			/* where its arrays and maps live */
	RecsysRatings *r;
	IdIndex		users;
	IdIndex		items;
	Triplets	t;
};

/* Everything the scan of the source builds, as the DestReceiver sees it */
typedef struct LoadState
{
	DestReceiver pub;			/* must be first */
	const RatingsSource *src;
	const char *relname;
	Oid			types[4];
	RecsysRatings *r;
	MemoryContext outer;		/* where the results live */
	MemoryContext batch_cxt;	/* per-row garbage, reset now and then */
	RatingsBuilder b;
	double	   *times;			/* decay: each triplet's time */
	int64		times_cap;
	TextDict   *dict[2];		/* text-keyed users, items: their ids */
} LoadState;

/* The text of a text datum (detoasted if need be) and its length */
static inline const char *
TextOf(Datum d, int *len)
{
	text	   *t = DatumGetTextPP(d);

	*len = VARSIZE_ANY_EXHDR(t);
	return VARDATA_ANY(t);
}

/*
 * A text id's provisional id while the source is read: its dictionary
 * index + 1 (numbered by byte order once all are known, RatingsLoad)
 */
static int64
TextRowId(Datum d, bool isnull, TextDict *dict, const char *relname,
		  const char *col, const char *role)
{
	const char *s;
	int			len;

	if (isnull)
		(void) RowId(d, isnull, TEXTOID, relname, col, role);
	s = TextOf(d, &len);
	return (int64) TextDictIntern(dict, s, len) + 1;
}

/* A value capped at max_value (counted in *capped) */
static inline double
CapValue(const RatingsPrep *p, double v, int64 *capped)
{
	if (p->max_value > 0.0 && v > p->max_value)
	{
		(*capped)++;
		return p->max_value;
	}
	return v;
}

/* The decay factor of a row of time t: 2^(-age / half_life), age >= 0 */
static inline double
DecayFactor(const RatingsPrep *p, double t, double reference)
{
	double		age = reference - t;

	/* Rows newer than the reference count in full */
	return age > 0.0 ? exp2(-age / p->half_life) : 1.0;
}

/* A row's time (epoch seconds or the number): false if it is NULL */
static inline bool
RowTime(Datum d, bool isnull, double *t)
{
	if (isnull)
		return false;
	*t = DatumGetFloat8(d);
	return isfinite(*t);
}

/* Start an id index (in the current memory context) */
static void
IdIndexInit(IdIndex *x)
{
	/*
	 * The map starts small and grows with the distinct ids: sized by rows it
	 * would be far larger than the ids and miss the cache on every probe.
	 */
	x->map = IdMapCreate(1024);
	x->cap = 1024;
	x->first = palloc(sizeof(int64) * x->cap);
	x->direct = NULL;
	x->ndirect = 0;
}

/* Let the direct array cover id (0 <= id < ID_DIRECT_LIMIT) */
static void
IdIndexGrowDirect(IdIndex *x, int64 id)
{
	int64		n = Max(Max(x->ndirect * 2, id + 1), 1024);

	n = Min(n, ID_DIRECT_LIMIT(x->map->count));
	Assert(n > id);
	x->direct = x->direct == NULL ?
		palloc_extended(sizeof(int32) * n, MCXT_ALLOC_HUGE) :
		repalloc_huge(x->direct, sizeof(int32) * n);
	for (int64 i = x->ndirect; i < n; i++)
		x->direct[i] = -1;
	x->ndirect = n;
}

/* Free an id index's lookup structures (first stays) */
static void
IdIndexFreeLookup(IdIndex *x)
{
	pfree(x->map->slots);
	pfree(x->map);
	if (x->direct != NULL)
		pfree(x->direct);
	x->map = NULL;
	x->direct = NULL;
}

/*
 * An id's dense index: a new one the first time it is seen (recorded in
 * first, which grows as needed)
 */
static inline int32
MapId(IdIndex *x, int64 id)
{
	int32		idx;

	if ((uint64) id < (uint64) x->ndirect)
	{
		idx = x->direct[id];
		if (likely(idx >= 0))
			return idx;
	}
	else if (id >= 0 && id < ID_DIRECT_LIMIT(x->map->count))
		IdIndexGrowDirect(x, id);

	/* First seen (or first seen since the direct array covers it) */
	idx = IdMapInsert(x->map, id);
	if (idx >= x->cap)
	{
		x->cap *= 2;
		x->first = repalloc_huge(x->first, sizeof(int64) * x->cap);
	}
	x->first[idx] = id;
	if ((uint64) id < (uint64) x->ndirect)
		x->direct[id] = idx;
	return idx;
}

/*
 * Take one source row: values[] and isnull[] hold the user id, the item id
 * and (if any) the value and the time, in this order.
 */
static void
LoadRow(LoadState *st, const Datum *values, const bool *isnull)
{
	const RatingsSource *src = st->src;
	RecsysRatings *r = st->r;
	double		v = 1.0;
	double		t = 0.0;
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
	if (st->dict[0])
	{
		/* The dictionary lives in the outer context */
		MemoryContextSwitchTo(st->outer);
		uid = TextRowId(values[0], isnull[0], st->dict[0],
						st->relname, src->user_col, "user");
		MemoryContextSwitchTo(st->batch_cxt);
	}
	else
		uid = RowId(values[0], isnull[0], st->types[0],
					st->relname, src->user_col, "user");
	if (st->dict[1])
	{
		MemoryContextSwitchTo(st->outer);
		iid = TextRowId(values[1], isnull[1], st->dict[1],
						st->relname, src->item_col, "item");
		MemoryContextSwitchTo(st->batch_cxt);
	}
	else
		iid = RowId(values[1], isnull[1], st->types[1],
					st->relname, src->item_col, "item");
	if (src->value_col &&
		!RowValue(values[2], isnull[2], st->types[2],
				  st->relname, src->value_col, uid, iid, &v))
	{
		r->null_values++;
		MemoryContextSwitchTo(old);
		return;
	}
	if (src->prep.time_col)
	{
		int			col = src->value_col ? 3 : 2;

		if (!RowTime(values[col], isnull[col], &t))
		{
			r->null_times++;
			MemoryContextSwitchTo(old);
			return;
		}
	}
	v = CapValue(&src->prep, v, &r->capped);

	/* The maps and triplets live in the outer context */
	MemoryContextSwitchTo(st->outer);
	RatingsBuilderAdd(&st->b, uid, iid, (float) v);
	if (src->prep.time_col)
	{
		/* Decayed once the newest time is known (RatingsLoad) */
		if (st->b.t.count > st->times_cap)
		{
			st->times_cap = Max(st->times_cap * 2, st->b.t.capacity);
			st->times = st->times == NULL ?
				palloc_extended(sizeof(double) * st->times_cap, MCXT_ALLOC_HUGE) :
				repalloc_huge(st->times, sizeof(double) * st->times_cap);
		}
		st->times[st->b.t.count - 1] = t;
	}
	MemoryContextSwitchTo(old);
}

/*
 * Receive one source row straight from the executor: no tuple is copied
 * into an SPI tuple table, which makes reading several times cheaper.
 */
static bool
LoadReceiveSlot(TupleTableSlot *slot, DestReceiver *self)
{
	slot_getallattrs(slot);
	LoadRow((LoadState *) self, slot->tts_values, slot->tts_isnull);
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
	b->cxt = CurrentMemoryContext;
	b->r = r;
	/* Start at the estimate, so a fresh table needs no growth */
	if (estimate > 0)
		TripletsGrow(&b->t, estimate + estimate / 16);
	IdIndexInit(&b->users);
	IdIndexInit(&b->items);
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

/*
 * Add one interaction.  What it allocates (the first triplet arrays, a
 * map's new parts) goes into the builder's memory context, whichever is
 * current: forget_user adds from a callback whose context is reset after
 * each batch of stored rows.
 */
void
RatingsBuilderAdd(RatingsBuilder *b, int64 user, int64 item, float value)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);

	TripletsReserve(&b->t);
	b->t.users[b->t.count] = MapId(&b->users, user);
	b->t.items[b->t.count] = MapId(&b->items, item);
	b->t.values[b->t.count] = value;
	b->t.count++;
	MemoryContextSwitchTo(old);
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
	int32	   *spare_indices;
	float	   *spare_values;
	double		sum = 0.0;

	r->nusers = b->users.map->count;
	r->nitems = b->items.map->count;
	RecsysCheckMemory(add_size(RatingsMemory(t.count, r->nusers, r->nitems),
							   mul_size(t.capacity, 3 * sizeof(int32))),
					  "Sorting the interactions needs this much.");

	/* Renumber ids in ascending order, so that row order does not matter */
	IdIndexFreeLookup(&b->users);
	IdIndexFreeLookup(&b->items);
	remap = RenumberIds(b->users.first, r->nusers);
	for (int64 e = 0; e < t.count; e++)
		t.users[e] = remap[t.users[e]];
	pfree(remap);
	remap = RenumberIds(b->items.first, r->nitems);
	for (int64 e = 0; e < t.count; e++)
		t.items[e] = remap[t.items[e]];
	pfree(remap);
	r->user_ids = b->users.first;
	r->item_ids = b->items.first;
	BuildByUser(r, &t, sum_duplicates, &spare_indices, &spare_values);
	if (r->nnz < t.count)
	{
		/* Duplicates were merged: the item-major matrix needs less */
		spare_indices = repalloc_huge(spare_indices, sizeof(int32) * Max(r->nnz, 1));
		spare_values = repalloc_huge(spare_values, sizeof(float) * Max(r->nnz, 1));
	}
	BuildByItem(r, spare_indices, spare_values);

	for (int64 e = 0; e < r->nnz; e++)
		sum += r->by_user.values[e];
	r->mean = sum / (double) Max(r->nnz, 1);
	return r;
}

/* Order (id, row) pairs by id */
static int
CompareIdRow(const void *a, const void *b)
{
	const int64 *x = (const int64 *) a;
	const int64 *y = (const int64 *) b;

	return (x[0] > y[0]) - (x[0] < y[0]);
}

/*
 * Give text ids their final numbers: id j for the j-th string in byte
 * order, so that a model does not depend on the order rows were read in.
 * Renumbers the builder's first-seen ids and a side's features (ids and
 * their rows, kept ascending), and returns the strings by id (*names,
 * names[j - 1]).
 */
static void
NumberTextIds(const TextDict *dict, int64 *first, int nfirst,
			  RecsysFeatures *features, char ***names, int64 *nnames)
{
	int32	   *rank = TextDictRanks(dict);

	*names = palloc_extended(sizeof(char *) * Max(dict->count, 1), MCXT_ALLOC_HUGE);
	for (int32 i = 0; i < dict->count; i++)
		(*names)[rank[i]] = dict->names[i];
	*nnames = dict->count;
	for (int i = 0; i < nfirst; i++)
		first[i] = (int64) rank[first[i] - 1] + 1;

	if (features != NULL && features->nentities > 0)
	{
		int			n = features->nentities;
		int64	   *pairs = palloc(sizeof(int64) * 2 * n);
		RecsysSparse old = features->by_entity;
		RecsysSparse *m = &features->by_entity;
		int64		out = 0;

		for (int e = 0; e < n; e++)
		{
			pairs[2 * e] = (int64) rank[features->ids[e] - 1] + 1;
			pairs[2 * e + 1] = e;
		}
		qsort(pairs, n, 2 * sizeof(int64), CompareIdRow);
		m->indptr = palloc0(sizeof(int64) * ((Size) n + 1));
		m->indices = palloc(sizeof(int32) * Max(old.nnz, 1));
		m->values = palloc(sizeof(float) * Max(old.nnz, 1));
		for (int e = 0; e < n; e++)
		{
			int64		row = pairs[2 * e + 1];

			features->ids[e] = pairs[2 * e];
			for (int64 x = old.indptr[row]; x < old.indptr[row + 1]; x++)
			{
				m->indices[out] = old.indices[x];
				m->values[out] = old.values[x];
				out++;
			}
			m->indptr[e + 1] = out;
		}
		pfree(pairs);
	}
	pfree(rank);
}

/*
 * Whether the source may be read by a direct scan of its heap instead of
 * a query (DirectScan), and if so its attribute numbers (user, item, value).
 *
 * The query and the direct scan must see the same rows with the same
 * checks, so the direct scan is taken only when nothing but a plain read
 * of the one heap is involved:
 *	- a plain table (not a view, partitioned or foreign table, which need the
 *	  executor), with no inheritance children (which the query would read
 *	  too), in the heap access method (heap_getnext), not another session's
 *	  temporary table (whose pages only that session has);
 *	- no row-level security applying to the caller (check_enable_rls; when
 *	  it would apply, its policies need the executor; with row_security off
 *	  it raises the error the query would);
 *	- no ExecutorCheckPerms_hook (e.g. sepgsql): the query would consult it;
 *	- the privileges the query's permission check needs were already
 *	  checked by ValidateSource (SELECT on the table or on each column read,
 *	  as the current user, as the executor checks them);
 *	- ids of integer, text or varchar type and no time column: the query
 *	  converts nothing for those (it casts bpchar and uuid ids to text and
 *	  times to epoch seconds, which the direct scan does not repeat);
 *	- an active snapshot, which both read with (SPI read-only uses it).
 * Both lock the table AccessShareLock until the end of the transaction.
 */
static bool
DirectScanAllowed(const RatingsSource *src, const Oid *types,
				  AttrNumber *attnums)
{
	Relation	rel;
	bool		ok;

	if (src->prep.time_col != NULL || ExecutorCheckPerms_hook != NULL ||
		!ActiveSnapshotSet())
		return false;
	for (int c = 0; c < 2; c++)
		if (types[c] != INT2OID && types[c] != INT4OID && types[c] != INT8OID &&
			types[c] != TEXTOID && types[c] != VARCHAROID)
			return false;
	if (get_rel_relkind(src->relid) != RELKIND_RELATION)
		return false;
	if (check_enable_rls(src->relid, InvalidOid, false) == RLS_ENABLED)
		return false;

	rel = table_open(src->relid, AccessShareLock);
	ok = rel->rd_rel->relam == HEAP_TABLE_AM_OID &&
		!rel->rd_rel->relhassubclass && !RELATION_IS_OTHER_TEMP(rel);
	table_close(rel, NoLock);
	if (!ok)
		return false;

	attnums[0] = get_attnum(src->relid, src->user_col);
	attnums[1] = get_attnum(src->relid, src->item_col);
	attnums[2] = src->value_col ? get_attnum(src->relid, src->value_col) :
		InvalidAttrNumber;
	return attnums[0] > 0 && attnums[1] > 0 &&
		(src->value_col == NULL || attnums[2] > 0);
}

/*
 * Read the source's rows by scanning its heap directly (see
 * DirectScanAllowed for when): each tuple's columns are taken in place,
 * by their cached offsets.  Why: the executor's per-row work (a slot per
 * tuple, with a buffer pin and release each, the scan node, the
 * DestReceiver) was about half of reading a 1M-row table.
 */
static void
DirectScan(LoadState *st, const AttrNumber *attnums)
{
	Relation	rel = table_open(st->src->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	Snapshot	snapshot = RegisterSnapshot(GetActiveSnapshot());
	TableScanDesc scan = table_beginscan(rel, snapshot, 0, NULL);
	int			ncols = st->src->value_col ? 3 : 2;
	HeapTuple	tuple;

	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Datum		values[3];
		bool		isnull[3];

		for (int c = 0; c < ncols; c++)
			values[c] = heap_getattr(tuple, attnums[c], desc, &isnull[c]);
		LoadRow(st, values, isnull);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, NoLock);
}

/*
 * Read the source relation into a RecsysRatings allocated in the current
 * memory context.  Users and items that have features (either may be NULL)
 * are part of the model even without interactions: they get empty rows.
 */
RecsysRatings *
RatingsLoad(const RatingsSource *src, RecsysFeatures *user_features,
			RecsysFeatures *item_features)
{
	LoadState	st;
	RecsysRatings *r = palloc0(sizeof(RecsysRatings));
	StringInfoData sql;
	SPIExecuteOptions options;
	const char *relname;
	int			rc;
	AttrNumber	attnums[3];

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
	st.dict[0] = src->user_dict;
	st.dict[1] = src->item_dict;
	if ((st.dict[0] != NULL) != RatingsIsTextIdType(st.types[0]) ||
		(st.dict[1] != NULL) != RatingsIsTextIdType(st.types[1]))
		elog(ERROR, "the id dictionaries do not match the source's id types");

	/* Start at the planner's estimate */
	BuilderInit(&st.b, r, EstimatedRows(src->relid));
	st.batch_cxt = AllocSetContextCreate(st.outer, "recsys load batch",
										 ALLOCSET_DEFAULT_SIZES);

	if (DirectScanAllowed(src, st.types, attnums))
		DirectScan(&st, attnums);
	else
	{
	SelectSql(&sql, src, relname, st.types, false);
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
	}
	MemoryContextDelete(st.batch_cxt);

	if (st.b.t.count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA),
				 errmsg("source relation %s has no usable interactions", relname),
				 r->null_values + r->null_times > 0 ?
				 errdetail("All %lld rows have a null value or time.",
						   (long long) (r->null_values + r->null_times)) :
				 errdetail("The relation is empty, or row-level security hides every row.")));
	if (src->prep.time_col)
	{
		/* Ages from the reference: as_of, or the newest row */
		double		reference = src->prep.reference;

		if (isnan(reference))
		{
			reference = -DBL_MAX;
			for (int64 e = 0; e < st.b.t.count; e++)
				reference = Max(reference, st.times[e]);
		}
		r->reference = reference;
		r->oldest_weight = 1.0;
		for (int64 e = 0; e < st.b.t.count; e++)
		{
			double		w = DecayFactor(&src->prep, st.times[e], reference);

			st.b.t.values[e] = (float) (st.b.t.values[e] * w);
			r->oldest_weight = Min(r->oldest_weight, w);
		}
		pfree(st.times);
	}
	if (user_features)
		for (int e = 0; e < user_features->nentities; e++)
			(void) MapId(&st.b.users, user_features->ids[e]);
	if (item_features)
		for (int e = 0; e < item_features->nentities; e++)
			(void) MapId(&st.b.items, item_features->ids[e]);
	if (st.dict[0])
		NumberTextIds(st.dict[0], st.b.users.first, st.b.users.map->count,
					  user_features, &r->user_names, &r->nuser_names);
	if (st.dict[1])
		NumberTextIds(st.dict[1], st.b.items.first, st.b.items.map->count,
					  item_features, &r->item_names, &r->nitem_names);
	return RatingsBuilderFinish(&st.b, src->sum_duplicates);
}

/* A number option of the preprocessing: finite, or an error */
static double
PrepNumber(const char *option, const char *text)
{
	char	   *end;
	double		v = strtod(text, &end);

	if (end == text || *end != '\0' || !isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a number for a numeric time column, got \"%s\"",
						option, text)));
	return v;
}

/* A time, as text of the time column's type, in epoch seconds */
static double
PrepEpoch(Oid type, const char *text)
{
	Datum		ts;
	char	   *end;
	double		v = strtod(text, &end);

	/* A plain number is already epoch seconds (as training records it) */
	if (end != text && *end == '\0' && isfinite(v))
		return v;
	switch (type)
	{
		case TIMESTAMPTZOID:
			ts = DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
									 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			return DatumGetFloat8(DirectFunctionCall2(timestamptz_part,
													  CStringGetTextDatum("epoch"), ts));
		case DATEOID:
			ts = DirectFunctionCall1(date_timestamp,
									 DirectFunctionCall1(date_in, CStringGetDatum(text)));
			break;
		default:
			ts = DirectFunctionCall3(timestamp_in, CStringGetDatum(text),
									 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			break;
	}
	return DatumGetFloat8(DirectFunctionCall2(timestamp_part,
											  CStringGetTextDatum("epoch"), ts));
}

/*
 * Resolve a model's preprocessing options into src->prep: time_col is
 * checked against the source, half_life (an interval for date and
 * timestamp columns, a number for numeric ones) and as_of become numbers
 * in the column's unit.  as_of NULL: the newest row's time (training
 * records it in params, so serving decays alike).
 */
void
RatingsPrepare(RatingsSource *src, const RecsysParams *p)
{
	RatingsPrep *prep = &src->prep;
	char	   *relname;
	bool		table_ok;
	AttrNumber	attnum;
	Oid			type;

	memset(prep, 0, sizeof(*prep));
	prep->max_value = p->max_value;
	prep->reference = NAN;
	if (p->time_col == NULL)
	{
		if (p->half_life != NULL || p->as_of != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("options half_life and as_of need time_col"),
					 errhint("Name the column with each interaction's time, e.g. options => '{\"time_col\": \"ts\", \"half_life\": \"30 days\"}'.")));
		return;
	}
	if (p->half_life == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option time_col needs half_life"),
				 errhint("For example \"half_life\": \"30 days\": an interaction's value halves every 30 days of age.")));
	prep->time_col = p->time_col;

	/* Privileges first, as ValidateSource does */
	relname = RatingsSourceName(src->relid);
	table_ok = CheckReadable(src->relid, relname);
	type = ColumnType(src->relid, relname, p->time_col, &attnum);
	CheckColumnPrivilege(src->relid, attnum, relname, p->time_col, table_ok);
	CheckTimeType(type, p->time_col, relname);
	if (IsNumberType(type))
	{
		prep->half_life = PrepNumber("half_life", p->half_life);
		if (p->as_of != NULL)
			prep->reference = PrepNumber("as_of", p->as_of);
	}
	else
	{
		Datum		iv = DirectFunctionCall3(interval_in, CStringGetDatum(p->half_life),
											 ObjectIdGetDatum(InvalidOid),
											 Int32GetDatum(-1));

		prep->half_life = DatumGetFloat8(DirectFunctionCall2(interval_part,
															 CStringGetTextDatum("epoch"), iv));
		if (p->as_of != NULL)
			prep->reference = PrepEpoch(type, p->as_of);
	}
	if (!(prep->half_life > 0.0) || !isfinite(prep->half_life))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"half_life\" must be positive, got \"%s\"", p->half_life)));
	if (p->as_of != NULL && !isfinite(prep->reference))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"as_of\" must be a finite time, got \"%s\"", p->as_of)));
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
RatingsLoadUser(const RatingsSource *src, int64 user_id, const char *user_text,
				RatingsUser *out)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *relname = RatingsSourceName(src->relid);
	Oid			types[4];
	StringInfoData sql;
	Oid			argtypes[1];
	int64		capped = 0;
	Datum		args[1];
	ItemValue  *pairs;
	int			npairs = 0;
	uint64		nrows;
	SPITupleTable *tuptable;

	ValidateSource(src, relname, types);
	if (RatingsIsTextIdType(types[0]) != (user_text != NULL) ||
		RatingsIsTextIdType(types[1]) != (src->resolve != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the id columns of relation %s changed type since the model was trained",
						relname),
				 errhint("Train the model again.")));
	SelectSql(&sql, src, relname, types, true);
	argtypes[0] = user_text ? TEXTOID : INT8OID;
	args[0] = user_text ? CStringGetTextDatum(user_text) : Int64GetDatum(user_id);

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
	/* Kept: resolving an id may run a query of its own */
	tuptable = SPI_tuptable;
	for (uint64 row = 0; row < nrows; row++)
	{
		HeapTuple	tup = tuptable->vals[row];
		TupleDesc	desc = tuptable->tupdesc;
		bool		isnull;
		Datum		d = SPI_getbinval(tup, desc, 2, &isnull);
		int64		iid;
		double		v = 1.0;

		if (src->resolve != NULL)
		{
			int			len;
			const char *s;

			/* An item the model does not know cannot be part of its rows */
			(void) RowId(d, isnull, TEXTOID, relname, src->item_col, "item");
			s = TextOf(d, &len);
			iid = src->resolve(src->resolve_arg, s, len);
			if (iid < 0)
				continue;
		}
		else
			iid = RowId(d, isnull, types[1], relname, src->item_col, "item");
		if (src->value_col)
		{
			d = SPI_getbinval(tup, desc, 3, &isnull);
			if (!RowValue(d, isnull, types[2], relname, src->value_col, user_id, iid, &v))
				continue;
		}
		v = CapValue(&src->prep, v, &capped);
		if (src->prep.time_col)
		{
			double		t;

			/* As training did, against the model's reference time */
			d = SPI_getbinval(tup, desc, src->value_col ? 4 : 3, &isnull);
			if (!RowTime(d, isnull, &t))
				continue;
			v *= DecayFactor(&src->prep, t, src->prep.reference);
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
 * Read the current rows of one item from the source (with a new snapshot,
 * as RatingsLoadUser), as (user, value) pairs merged by the training's
 * rule, sorted by user, into out (current memory context).
 */
void
RatingsLoadItem(const RatingsSource *src, int64 item_id, const char *item_text,
				RatingsUser *out)
{
	RatingsSource swapped = *src;

	/* The same read with the roles of the id columns swapped */
	swapped.user_col = src->item_col;
	swapped.item_col = src->user_col;
	RatingsLoadUser(&swapped, item_id, item_text, out);
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

/*
 * Features
 *
 * Item features (categories, tags, brands, price buckets ...), words of
 * item texts, and user attributes come from ordinary relations, read once
 * with the caller's privileges like the interactions:
 *	- a features relation has the entity's id column (named like the
 *	  training's user_col or item_col), a column `feature` of any type,
 *	  compared as text, and optionally a numeric `weight` (default 1);
 *	- a text relation has the item id column and a column `document` of
 *	  type text, varchar or tsvector; text goes through PostgreSQL's own
 *	  to_tsvector with the given configuration, so stemming and stop words
 *	  are PostgreSQL's; each lexeme becomes the feature "word:<lexeme>"
 *	  with its number of occurrences as weight.
 * Rules for bad rows, as for interactions: a NULL id is an error; a NULL
 * feature or weight skips the row (counted); a negative, NaN or infinite
 * weight is an error; duplicate (id, feature) rows are merged into the sum
 * of their weights (counted).  Feature names are numbered in byte order
 * (strcmp), entity ids ascending, so a model does not depend on row order.
 */

/* One (entity id, feature name, weight) row of a features relation */
typedef struct FeatureRow
{
	int64		id;
	char	   *name;
	float		weight;
} FeatureRow;

/* The rows of all feature relations of one side */
typedef struct FeatureRows
{
	FeatureRow *rows;
	int64		count;
	int64		capacity;
} FeatureRows;

/* Order feature rows by name, then entity id */
static int
CompareFeatureName(const void *a, const void *b)
{
	const FeatureRow *x = *(FeatureRow *const *) a;
	const FeatureRow *y = *(FeatureRow *const *) b;
	int			c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return (x->id > y->id) - (x->id < y->id);
}

/* Base type of a column, or InvalidOid if there is none */
static Oid
OptionalColumnType(Oid relid, const char *colname, AttrNumber *attnum)
{
	*attnum = get_attnum(relid, colname);
	if (*attnum <= 0)
		return InvalidOid;
	return getBaseType(get_atttype(relid, *attnum));
}

/* Read one features or text relation's rows into out (current context) */
static void
ReadFeatureRelation(const FeatureSource *fs, FeatureRows *out,
					RecsysFeatures *f)
{
	MemoryContext outer = CurrentMemoryContext;
	char	   *relname = RatingsSourceName(fs->relid);
	bool		table_ok = CheckReadable(fs->relid, relname);
	const char *value_col = fs->text ? "document" : "feature";
	AttrNumber	attnum;
	Oid			id_type = ColumnType(fs->relid, relname, fs->id_col, &attnum);
	Oid			value_type;
	Oid			weight_type = InvalidOid;
	StringInfoData sql;
	Oid			argtypes[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		args[3];
	Portal		portal;
	bool		text_ids;

	CheckColumnPrivilege(fs->relid, attnum, relname, fs->id_col, table_ok);
	text_ids = fs->dict != NULL || fs->id_text != NULL;
	if (text_ids ? !RatingsIsTextIdType(id_type) :
		(id_type != INT2OID && id_type != INT4OID && id_type != INT8OID))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("id column \"%s\" of relation %s has type %s, but %s type is required, as in the interactions",
						fs->id_col, relname, format_type_be(id_type),
						text_ids ? "a text or uuid" : "an integer"),
				 errhint("Name the id column like the training's id column, with the same ids.")));
	value_type = ColumnType(fs->relid, relname, value_col, &attnum);
	CheckColumnPrivilege(fs->relid, attnum, relname, value_col, table_ok);
	if (fs->text && value_type != TEXTOID && value_type != VARCHAROID &&
		value_type != BPCHAROID && value_type != TSVECTOROID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"document\" of relation %s has type %s, but text or tsvector is required",
						relname, format_type_be(value_type))));
	if (!fs->text)
	{
		weight_type = OptionalColumnType(fs->relid, "weight", &attnum);
		if (OidIsValid(weight_type))
		{
			CheckColumnPrivilege(fs->relid, attnum, relname, "weight", table_ok);
			if (weight_type != INT2OID && weight_type != INT4OID && weight_type != INT8OID &&
				weight_type != FLOAT4OID && weight_type != FLOAT8OID &&
				weight_type != NUMERICOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"weight\" of relation %s has type %s, but a numeric type is required",
								relname, format_type_be(weight_type))));
		}
	}

	initStringInfo(&sql);
	if (fs->text)
		appendStringInfo(&sql,
						 "SELECT t.%s%s, u.lexeme, COALESCE(pg_catalog.array_length(u.positions, 1), 1) "
						 "FROM %s t CROSS JOIN LATERAL pg_catalog.unnest(%s) u",
						 quote_identifier(fs->id_col), text_ids ? "::pg_catalog.text" : "",
						 relname,
						 value_type == TSVECTOROID ? "t.document" :
						 "pg_catalog.to_tsvector($1::pg_catalog.regconfig, t.document::pg_catalog.text)");
	else
		appendStringInfo(&sql, "SELECT t.%s%s, t.feature::pg_catalog.text, %s FROM %s t",
						 quote_identifier(fs->id_col), text_ids ? "::pg_catalog.text" : "",
						 OidIsValid(weight_type) ? "t.weight" : "1", relname);
	if (fs->one && fs->id_text != NULL)
		appendStringInfo(&sql, " WHERE t.%s OPERATOR(pg_catalog.=) $3::pg_catalog.text::%s",
						 quote_identifier(fs->id_col), format_type_be_qualified(id_type));
	else if (fs->one)
		appendStringInfo(&sql, " WHERE t.%s OPERATOR(pg_catalog.=) $2",
						 quote_identifier(fs->id_col));
	args[0] = CStringGetTextDatum(fs->config ? fs->config : "simple");
	args[1] = Int64GetDatum(fs->id);
	args[2] = CStringGetTextDatum(fs->id_text ? fs->id_text : "");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* refresh_item (one entity) must see the rows of its own transaction */
	portal = SPI_cursor_open_with_args(NULL, sql.data, 3, argtypes, args, NULL, !fs->one,
									   CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		Oid			wtype = fs->text ? INT4OID :
			(OidIsValid(weight_type) ? weight_type : INT4OID);

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, RATINGS_BATCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d = SPI_getbinval(tup, desc, 1, &isnull);
			int64		id;
			Datum		name;
			Datum		w;
			bool		wnull;
			double		weight;
			MemoryContext spi_cxt;

			/* Separate statements: argument evaluation order is unspecified */
			if (fs->one)
			{
				/* One entity: the caller's id, whatever its type */
				(void) RowId(d, isnull, INT8OID, relname, fs->id_col, "the");
				id = fs->id;
			}
			else if (fs->dict != NULL)
				id = TextRowId(d, isnull, fs->dict, relname, fs->id_col, "the");
			else
				id = RowId(d, isnull, id_type, relname, fs->id_col, "the");
			name = SPI_getbinval(tup, desc, 2, &isnull);
			w = SPI_getbinval(tup, desc, 3, &wnull);
			if (isnull || wnull)
			{
				f->null_features++;
				continue;
			}
			weight = ValueFromDatum(w, wtype);
			if (isnan(weight) || isinf(weight) || weight < 0.0 || weight > FLT_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("column \"weight\" of relation %s contains invalid weight %g for id %lld",
								relname, weight, (long long) id),
						 errhint("Feature weights must be finite, >= 0 and fit in real.")));

			spi_cxt = MemoryContextSwitchTo(outer);
			if (out->count == out->capacity)
			{
				out->capacity = Max(out->capacity * 2, 1024);
				out->rows = out->rows == NULL ?
					palloc_extended(sizeof(FeatureRow) * out->capacity, MCXT_ALLOC_HUGE) :
					repalloc_huge(out->rows, sizeof(FeatureRow) * out->capacity);
			}
			out->rows[out->count].id = id;
			out->rows[out->count].weight = (float) weight;
			if (fs->text)
				out->rows[out->count].name = psprintf("word:%s", TextDatumGetCString(name));
			else
				out->rows[out->count].name = TextDatumGetCString(name);
			out->count++;
			MemoryContextSwitchTo(spi_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/*
 * Read the features of one side (items or users) from its relations into
 * a RecsysFeatures allocated in the current memory context: the names
 * numbered in byte order, the entities in ascending id order, and each
 * entity's (feature, weight) pairs sorted by feature, duplicates summed.
 */
RecsysFeatures *
RatingsLoadFeatures(const FeatureSource *sources, int nsources)
{
	RecsysFeatures *f = palloc0(sizeof(RecsysFeatures));
	FeatureRows rows;
	FeatureRow **byname;
	int32	   *feature_of;
	IdMap	   *entities;
	int64	   *next;
	RecsysSparse *m = &f->by_entity;

	memset(&rows, 0, sizeof(rows));
	for (int s = 0; s < nsources; s++)
		ReadFeatureRelation(&sources[s], &rows, f);
	if (rows.count > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many feature rows: %lld", (long long) rows.count)));

	/* Number the names in byte order */
	byname = palloc_extended(sizeof(FeatureRow *) * Max(rows.count, 1), MCXT_ALLOC_HUGE);
	for (int64 r = 0; r < rows.count; r++)
		byname[r] = &rows.rows[r];
	qsort(byname, rows.count, sizeof(FeatureRow *), CompareFeatureName);
	feature_of = palloc_extended(sizeof(int32) * Max(rows.count, 1), MCXT_ALLOC_HUGE);
	f->names = palloc(sizeof(char *) * Max(rows.count, 1));
	for (int64 r = 0; r < rows.count; r++)
	{
		if (r == 0 || strcmp(byname[r]->name, byname[r - 1]->name) != 0)
			f->names[f->nfeatures++] = byname[r]->name;
		feature_of[byname[r] - rows.rows] = f->nfeatures - 1;
	}

	/* Number the entities in ascending id order */
	entities = IdMapCreate(1024);
	f->ids = palloc_extended(sizeof(int64) * Max(rows.count, 1), MCXT_ALLOC_HUGE);
	for (int64 r = 0; r < rows.count; r++)
		if (IdMapLookup(entities, rows.rows[r].id) < 0)
		{
			IdMapSet(entities, rows.rows[r].id, f->nentities);
			f->ids[f->nentities++] = rows.rows[r].id;
		}
	qsort(f->ids, f->nentities, sizeof(int64), CompareInt64);
	for (int e = 0; e < f->nentities; e++)
		IdMapSet(entities, f->ids[e], e);

	/* The entity-major matrix: a counting sort, then each row by feature */
	SparseAlloc(m, f->nentities, f->nfeatures, rows.count);
	for (int64 r = 0; r < rows.count; r++)
		m->indptr[IdMapLookup(entities, rows.rows[r].id) + 1]++;
	for (int e = 0; e < f->nentities; e++)
		m->indptr[e + 1] += m->indptr[e];
	next = palloc(sizeof(int64) * ((Size) f->nentities + 1));
	memcpy(next, m->indptr, sizeof(int64) * ((Size) f->nentities + 1));
	/* byname order: within an entity, features come ascending */
	for (int64 r = 0; r < rows.count; r++)
	{
		const FeatureRow *row = byname[r];
		int64		pos = next[IdMapLookup(entities, row->id)]++;

		m->indices[pos] = feature_of[row - rows.rows];
		m->values[pos] = row->weight;
	}
	pfree(next);

	/* Merge duplicates, now adjacent, into their sum, compacting */
	{
		int64		out = 0;

		for (int e = 0; e < f->nentities; e++)
		{
			int64		begin = m->indptr[e];
			int64		end = m->indptr[e + 1];

			m->indptr[e] = out;
			for (int64 x = begin; x < end; x++)
			{
				if (x > begin && m->indices[x] == m->indices[out - 1])
				{
					m->values[out - 1] += m->values[x];
					f->duplicates++;
					continue;
				}
				m->indices[out] = m->indices[x];
				m->values[out] = m->values[x];
				out++;
			}
		}
		m->indptr[f->nentities] = out;
		m->nnz = out;
	}
	pfree(byname);
	pfree(feature_of);
	return f;
}

/*
 * The features of a model's entities (ids: the model's, ascending), as an
 * n x nfeatures matrix into out (entities without features: empty rows),
 * allocated in the current memory context.
 */
void
RatingsAlignFeatures(const RecsysFeatures *f, const int64 *ids, int n,
					 RecsysSparse *out)
{
	const RecsysSparse *m = &f->by_entity;
	int			e = 0;

	SparseAlloc(out, n, f->nfeatures, m->nnz);
	out->nnz = 0;
	/* Both id lists ascending: a merge */
	for (int i = 0; i < n; i++)
	{
		while (e < f->nentities && f->ids[e] < ids[i])
			e++;
		if (e < f->nentities && f->ids[e] == ids[i])
		{
			int64		len = m->indptr[e + 1] - m->indptr[e];

			memcpy(out->indices + out->nnz, m->indices + m->indptr[e], sizeof(int32) * len);
			memcpy(out->values + out->nnz, m->values + m->indptr[e], sizeof(float) * len);
			out->nnz += len;
		}
		out->indptr[i + 1] = out->nnz;
	}
}
