/*-------------------------------------------------------------------------
 *
 * shared_cache.h
 *	  Blobs of model data shared by all backends, in shared memory.
 *
 * IDENTIFICATION
 *	  src/shared_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARED_CACHE_H
#define SHARED_CACHE_H

#include "postgres.h"

/* What a blob holds: one model version's item data, in one database */
typedef struct SharedCacheKey
{
	Oid			dbid;
	int64		model_id;
	int64		version;
	int64		token;			/* random per version, written only by recsys */
	int32		k;
	int32		method;
} SharedCacheKey;

extern void SharedCacheInit(void);
extern bool SharedCacheAvailable(void);
extern char *SharedCacheAcquire(const SharedCacheKey *key, int *slot);
extern char *SharedCacheReserve(const SharedCacheKey *key, Size size, int *slot);
extern void SharedCachePublish(int slot);
extern void SharedCacheRelease(int slot);
extern void SharedCacheForget(Oid dbid, int64 model_id);

#endif							/* SHARED_CACHE_H */
