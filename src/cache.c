/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Backend-local cache of item factor matrices, keyed by model version.
 *
 * Scoring a user against every item needs the item factors as one
 * contiguous matrix.  Reading them from recsys.item_factors on every call
 * would dominate serving time, so each backend keeps the matrix of each
 * model it serves, tagged with the model's version.  Every call looks the
 * model row up (one index probe); a different version means the model was
 * retrained, and the entry is rebuilt.  A transaction that still sees an
 * older version simply reloads that one.
 *
 * Entries live in their own memory contexts under a cache context in
 * TopMemoryContext.  A new entry is built in a context parented to the
 * caller's (transaction-lifetime) context and moved under the cache only
 * once it is complete, so an error or cancel while loading leaks nothing.
 * At most CACHE_MAX_ENTRIES models are kept; the least recently used goes.
 *
 * Memory per entry is about nitems * (4 * k + 40) bytes: 2.6 MB for 10,000
 * items at k = 64.
 *
 * IDENTIFICATION
 *	  src/cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "cache.h"
#include "utils/memutils.h"

/* Most models one backend keeps cached */
#define CACHE_MAX_ENTRIES 8

static MemoryContext CacheContext = NULL;
static CacheEntry *entries[CACHE_MAX_ENTRIES];
static int	nentries = 0;
static uint64 use_counter = 0;

/* Remove entry i and free its memory */
static void
CacheEvict(int i)
{
	MemoryContextDelete(entries[i]->cxt);
	entries[i] = entries[--nentries];
}

/* Build a complete entry for a model version, or error leaving nothing */
static CacheEntry *
CacheLoad(const RecsysModelInfo *info)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "recsys model cache entry",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	CacheEntry *e = palloc0(sizeof(CacheEntry));

	e->model_id = info->model_id;
	e->version = info->version;
	e->cxt = cxt;
	CatalogLoadItems(info, &e->items);
	e->index = IdMapCreate(e->items.nitems);
	for (int i = 0; i < e->items.nitems; i++)
	{
		if (IdMapLookup(e->index, e->items.ids[i]) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("model \"%s\" stores item %lld twice",
							info->name, (long long) e->items.ids[i])));
		IdMapSet(e->index, e->items.ids[i], i);
	}
	e->scores = palloc_extended(sizeof(float) * e->items.nitems, MCXT_ALLOC_HUGE);
	e->result = palloc_extended(sizeof(int32) * e->items.nitems, MCXT_ALLOC_HUGE);
	MemoryContextSwitchTo(old);
	return e;
}

/*
 * The cached item side of the model version described by info, loading it
 * if this backend has not seen that version.
 */
CacheEntry *
CacheGetItems(const RecsysModelInfo *info)
{
	CacheEntry *e;

	for (int i = 0; i < nentries; i++)
	{
		if (entries[i]->model_id == info->model_id)
		{
			if (entries[i]->version == info->version)
			{
				entries[i]->last_used = ++use_counter;
				return entries[i];
			}
			CacheEvict(i);
			break;
		}
	}

	e = CacheLoad(info);

	if (CacheContext == NULL)
		CacheContext = AllocSetContextCreate(TopMemoryContext,
											 "recsys model cache",
											 ALLOCSET_SMALL_SIZES);
	if (nentries == CACHE_MAX_ENTRIES)
	{
		int			oldest = 0;

		for (int i = 1; i < nentries; i++)
			if (entries[i]->last_used < entries[oldest]->last_used)
				oldest = i;
		CacheEvict(oldest);
	}
	MemoryContextSetParent(e->cxt, CacheContext);
	e->last_used = ++use_counter;
	entries[nentries++] = e;
	return e;
}

/* Euclidean norms of the item factors, computed once per entry */
const float *
CacheItemNorms(CacheEntry *e)
{
	if (e->norms == NULL)
	{
		int			k = e->items.k;
		float	   *norms = MemoryContextAllocExtended(e->cxt,
													   sizeof(float) * e->items.nitems,
													   MCXT_ALLOC_HUGE);

		for (int i = 0; i < e->items.nitems; i++)
		{
			const float *q = e->items.factors + (Size) i * k;
			double		s = 0.0;

			for (int f = 0; f < k; f++)
				s += (double) q[f] * q[f];
			norms[i] = (float) sqrt(s);
		}
		e->norms = norms;
	}
	return e->norms;
}
