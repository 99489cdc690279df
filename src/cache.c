/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Backend-local cache of model factors, keyed by model version.
 *
 * Scoring a user against every item needs the item factors as one
 * contiguous matrix.  Reading them from recsys.item_factors on every call
 * would dominate serving time, so each backend keeps the matrix of each
 * model it serves, tagged with the model's version.  Every call looks the
 * model row up (one index probe); a different version means the model was
 * retrained, and the entry is rebuilt.  A transaction that still sees an
 * older version simply reloads that one.
 *
 * What only some calls need is computed on first use and kept with the
 * entry: item norms (similar_items), the items' Gram matrix (implicit
 * fold-in and explanations), and the user factors (similar_users).
 *
 * Entries live in their own memory contexts under a cache context in
 * TopMemoryContext.  A new entry is built in a context parented to the
 * caller's (transaction-lifetime) context and moved under the cache only
 * once it is complete, so an error or cancel while loading leaks nothing.
 * At most CACHE_MAX_ENTRIES models are kept; the least recently used goes.
 *
 * Memory per entry is about nitems * (4 * k + 40) bytes: 2.6 MB for 10,000
 * items at k = 64, plus nusers * (4 * k + 40) once similar_users is used.
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

/* An id -> row map of loaded factors; duplicate ids mean a corrupt model */
static IdMap *
IndexIds(const RecsysFactors *f, const char *model, const char *side)
{
	IdMap	   *index = IdMapCreate(f->n);

	for (int i = 0; i < f->n; i++)
	{
		if (IdMapLookup(index, f->ids[i]) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("model \"%s\" stores %s %lld twice",
							model, side, (long long) f->ids[i])));
		IdMapSet(index, f->ids[i], i);
	}
	return index;
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
	e->config.method = info->method;
	e->config.k = info->factors;
	e->config.regularization = info->regularization;
	e->config.mean = info->global_mean;
	e->scaling = info->scaling;
	e->alpha = info->alpha;
	e->epsilon = info->epsilon;
	CatalogLoadFactors(info, false, &e->items);
	e->index = IndexIds(&e->items, info->name, "item");
	AlsWorkspaceInit(&e->ws, info->factors + 1, 0);
	e->scores = palloc_extended(sizeof(float) * e->items.n, MCXT_ALLOC_HUGE);
	e->result = palloc_extended(sizeof(int32) * e->items.n, MCXT_ALLOC_HUGE);
	MemoryContextSwitchTo(old);
	return e;
}

/*
 * The cached factors of the model version described by info, loading them
 * if this backend has not seen that version.
 */
CacheEntry *
CacheGetModel(const RecsysModelInfo *info)
{
	CacheEntry *e;

	for (int i = 0; i < nentries; i++)
	{
		if (entries[i]->model_id == info->model_id)
		{
			/*
			 * The shape is compared too: a model row edited by hand keeps
			 * its version, and the cached matrix must never be read with
			 * another k.
			 */
			if (entries[i]->version == info->version &&
				entries[i]->config.k == info->factors &&
				entries[i]->config.method == info->method)
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

/* Euclidean norms of factor vectors, allocated in the current context */
static float *
FactorNorms(const RecsysFactors *f)
{
	float	   *norms = palloc_extended(sizeof(float) * Max(f->n, 1), MCXT_ALLOC_HUGE);

	for (int i = 0; i < f->n; i++)
		norms[i] = sqrtf(Max(0.0f, AlsDot(f->factors + (Size) i * f->k,
										  f->factors + (Size) i * f->k, f->k)));
	return norms;
}

/* Item factor norms, computed once per entry */
const float *
CacheItemNorms(CacheEntry *e)
{
	if (e->norms == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(e->cxt);

		e->norms = FactorNorms(&e->items);
		MemoryContextSwitchTo(old);
	}
	return e->norms;
}

/* Make e->ws.yty the Gram matrix of the item factors, once per entry */
void
CacheItemGram(CacheEntry *e)
{
	if (!e->has_gram)
	{
		AlsGram(e->items.factors, e->items.n, e->items.k, &e->ws);
		e->has_gram = true;
	}
}

/* Load the user factors and their norms, once per entry */
void
CacheLoadUsers(CacheEntry *e, const RecsysModelInfo *info)
{
	MemoryContext cxt;
	MemoryContext old;
	RecsysFactors users;
	IdMap	   *index;
	float	   *norms;

	if (e->user_index != NULL)
		return;

	/* Loaded in a child context, attached only when complete */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys user factors",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	CatalogLoadFactors(info, true, &users);
	index = IndexIds(&users, info->name, "user");
	norms = FactorNorms(&users);
	MemoryContextSwitchTo(old);

	MemoryContextSetParent(cxt, e->cxt);
	e->users = users;
	e->user_norms = norms;
	e->user_index = index;
}

/*
 * Drop the cached user factors (after refresh_user changed one), so the
 * next similar_users call reads them again.
 */
void
CacheForgetUsers(CacheEntry *e)
{
	/* They live in a child context of the entry's; free it with them */
	if (e->user_index != NULL)
	{
		MemoryContext cxt = GetMemoryChunkContext(e->user_norms);

		MemoryContextDelete(cxt);
		e->user_index = NULL;
		e->user_norms = NULL;
		memset(&e->users, 0, sizeof(RecsysFactors));
	}
}
