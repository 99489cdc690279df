/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  Backend-local cache of item factor matrices, keyed by model version.
 *
 * IDENTIFICATION
 *	  src/cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_H
#define CACHE_H

#include "catalog.h"
#include "idmap.h"

/* One cached model version; read-only for callers except `scores` */
typedef struct CacheEntry
{
	int64		model_id;
	int64		version;
	MemoryContext cxt;			/* holds everything below */
	RecsysItems items;
	IdMap	   *index;			/* item id -> row of items */
	float	   *norms;			/* item factor norms, computed on first use */
	float	   *scores;			/* one score per item: per-call scratch */
	int32	   *result;			/* top-n scratch, nitems entries */
	uint64		last_used;
} CacheEntry;

extern CacheEntry *CacheGetItems(const RecsysModelInfo *info);
extern const float *CacheItemNorms(CacheEntry *entry);

#endif							/* CACHE_H */
