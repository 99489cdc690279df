/*-------------------------------------------------------------------------
 *
 * ids.c
 *	  Serving with the source's own ids.
 *
 * A model trained on integer ids uses them as its ids.  A model trained
 * on text, varchar or uuid ids numbers them 1, 2, ... in byte order and
 * stores the dictionary with the model (recsys.id_map, ratings.c and
 * catalog.c); every serving function then has an overload that takes and
 * returns text.  The overloads share the C functions of the bigint ones:
 * each argument and result column is converted by its declared type, so
 * a text call on an integer model works too (the ids as text), and the
 * integer path costs one type check.
 *
 * Items are converted through the cache entry: the dictionary of a text-
 * keyed model's items is loaded once per cached version (item_names and
 * item_dict), as the item factors are.  Users are converted one at a time
 * through an index scan of recsys.id_map: a call serves one user, and a
 * model may have far more users than items.
 *
 * IDENTIFICATION
 *	  src/ids.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "ids.h"
#include "textdict.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

/* The declared type of argument argno (bigint when unknown) */
static Oid
ArgType(FunctionCallInfo fcinfo, int argno)
{
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, argno);

	return OidIsValid(type) ? type : INT8OID;
}

/* A text id given to a model keyed by integers: the integer it spells */
static int64
IntegerId(const char *s, const RecsysModelInfo *info, const char *side)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno == ERANGE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("model \"%s\" has integer %s ids, but got \"%s\"",
						info->name, side, s),
				 errhint("Pass one of the model's %s ids, as a number or as its text.", side)));
	return (int64) v;
}

/* Load the external ids of a text-keyed model's items into the entry */
static void
EnsureItemNames(CacheEntry *e, const RecsysModelInfo *info)
{
	MemoryContext old;

	if (e->item_names != NULL)
		return;
	old = MemoryContextSwitchTo(e->cxt);
	e->item_names = palloc_extended(sizeof(char *) * Max(e->items.n, 1), MCXT_ALLOC_HUGE);
	CatalogLoadIdNames(info, false, e->index, e->items.n, e->item_names);
	e->item_dict = TextDictCreate(e->items.n);
	for (int i = 0; i < e->items.n; i++)
	{
		int32		got;

		if (e->item_names[i] == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("item %lld of model \"%s\" has no external id in recsys.id_map",
							(long long) e->items.ids[i], info->name),
					 errhint("Train the model again.")));
		got = TextDictIntern(e->item_dict, e->item_names[i], strlen(e->item_names[i]));
		if (got != i)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("model \"%s\" has two items with external id \"%s\"",
							info->name, e->item_names[i])));
	}
	MemoryContextSwitchTo(old);
}

/* An id datum of type `type` as text */
static char *
IdText(Datum d, Oid type)
{
	if (type == INT8OID)
		return psprintf(INT64_FORMAT, DatumGetInt64(d));
	if (type == INT4OID)
		return psprintf("%d", DatumGetInt32(d));
	return TextDatumGetCString(d);
}

/*
 * The model's id of the user in argument argno (bigint or text), or
 * IDS_UNKNOWN for a text id the model does not know; with `create`, a new
 * id for such a user (refresh_user).  *external gets the text id of a
 * text-keyed model's user (NULL otherwise).  The argument must not be NULL.
 */
int64
IdsUserArg(FunctionCallInfo fcinfo, int argno, const RecsysModelInfo *info,
		   bool create, char **external)
{
	Oid			type = ArgType(fcinfo, argno);
	Datum		d = PG_GETARG_DATUM(argno);

	if (external)
		*external = NULL;
	if (!info->text_users)
		return type == INT8OID ? DatumGetInt64(d) :
			IntegerId(IdText(d, type), info, "user");
	if (external)
		*external = IdText(d, type);
	{
		int64		id = CatalogInternalId(info, true, IdText(d, type), create);

		return id < 0 ? IDS_UNKNOWN : id;
	}
}

/* The model id of a text user id, or -1 (RatingsResolveFn, refresh_item) */
int64
IdsResolveUser(void *arg, const char *id, int len)
{
	const RecsysModelInfo *info = (const RecsysModelInfo *) arg;
	char	   *s = pnstrdup(id, len);
	int64		result = CatalogInternalId(info, true, s, false);

	pfree(s);
	return result;
}

/* The model id of a text item id, or -1 (RatingsResolveFn for fold-in) */
int64
IdsResolveItem(void *arg, const char *id, int len)
{
	CacheEntry *e = (CacheEntry *) arg;
	int32		row = TextDictLookup(e->item_dict, id, len);

	return row < 0 ? -1 : e->items.ids[row];
}

/*
 * The model id of the item in argument argno (bigint or text): IDS_UNKNOWN
 * for a text id the model does not know.  *external as for IdsUserArg.
 */
int64
IdsItemArg(FunctionCallInfo fcinfo, int argno, CacheEntry *e,
		   const RecsysModelInfo *info, char **external)
{
	Oid			type = ArgType(fcinfo, argno);
	Datum		d = PG_GETARG_DATUM(argno);
	char	   *s;
	int32		row;

	if (external)
		*external = NULL;
	if (!info->text_items)
		return type == INT8OID ? DatumGetInt64(d) :
			IntegerId(IdText(d, type), info, "item");
	s = IdText(d, type);
	if (external)
		*external = s;
	EnsureItemNames(e, info);
	row = TextDictLookup(e->item_dict, s, strlen(s));
	return row < 0 ? IDS_UNKNOWN : e->items.ids[row];
}

/* The cached row of the item in argument argno, or -1 if not in the model */
int32
IdsItemRow(FunctionCallInfo fcinfo, int argno, CacheEntry *e,
		   const RecsysModelInfo *info)
{
	int64		id = IdsItemArg(fcinfo, argno, e, info, NULL);

	/* (IDS_UNKNOWN is an ordinary id of a bigint-keyed model) */
	return info->text_items && id == IDS_UNKNOWN ? -1 : IdMapLookup(e->index, id);
}

/*
 * An array argument of item ids (bigint[] or text[]) as model ids: NULL
 * and *nids = -1 for a NULL array.  Ids the model does not know are left
 * out (they could not be recommended or excluded anyway), or with `keep`
 * kept in place as IDS_UNKNOWN (recommend_for_items pairs them with
 * values).  As for bigint[], the array must be 1-D and without NULLs.
 */
int64 *
IdsArrayArg(FunctionCallInfo fcinfo, int argno, CacheEntry *e,
			const RecsysModelInfo *info, bool keep, int *nids)
{
	ArrayType  *a;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int64	   *ids;
	Oid			elemtype;

	if (PG_ARGISNULL(argno))
	{
		*nids = -1;
		return NULL;
	}
	a = PG_GETARG_ARRAYTYPE_P(argno);
	elemtype = ARR_ELEMTYPE(a);
	if (elemtype != TEXTOID)
	{
		int64	   *given = ArrayGetInt8(a, &n);

		if (!info->text_items)
		{
			*nids = n;
			return given;
		}
		elems = palloc(sizeof(Datum) * Max(n, 1));
		for (int j = 0; j < n; j++)
			elems[j] = CStringGetTextDatum(psprintf(INT64_FORMAT, given[j]));
	}
	else
	{
		if (ARR_NDIM(a) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("array must be 1-D, got %d dimensions", ARR_NDIM(a))));
		deconstruct_array_builtin(a, TEXTOID, &elems, &nulls, &n);
		for (int j = 0; j < n; j++)
			if (nulls[j])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("array must not contain nulls")));
	}
	ids = palloc(sizeof(int64) * Max(n, 1));
	*nids = 0;
	if (info->text_items)
		EnsureItemNames(e, info);
	for (int j = 0; j < n; j++)
	{
		char	   *s = TextDatumGetCString(elems[j]);
		int32		row;

		if (!info->text_items)
		{
			ids[(*nids)++] = IntegerId(s, info, "item");
			continue;
		}
		row = TextDictLookup(e->item_dict, s, strlen(s));
		if (row >= 0)
			ids[(*nids)++] = e->items.ids[row];
		else if (keep)
			ids[(*nids)++] = IDS_UNKNOWN;
	}
	return ids;
}

/* Make IdsResolveItem ready: load a text-keyed model's item ids */
void
IdsPrepareItems(CacheEntry *e, const RecsysModelInfo *info)
{
	if (info->text_items)
		EnsureItemNames(e, info);
}

/*
 * A model id as a result column of type `type`: itself for bigint, its
 * external id (or its digits) for text.
 */
Datum
IdsDatum(CacheEntry *e, const RecsysModelInfo *info, bool users, int64 id,
		 Oid type)
{
	char	   *s;

	if (type == INT8OID)
		return Int64GetDatum(id);
	if (!(users ? info->text_users : info->text_items))
		return CStringGetTextDatum(psprintf(INT64_FORMAT, id));
	if (users)
		s = CatalogExternalId(info, true, id);
	else
	{
		int32		row = IdMapLookup(e->index, id);

		EnsureItemNames(e, info);
		s = row >= 0 ? e->item_names[row] : NULL;
	}
	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s %lld of model \"%s\" has no external id in recsys.id_map",
						users ? "user" : "item", (long long) id, info->name),
				 errhint("Train the model again.")));
	return CStringGetTextDatum(s);
}
