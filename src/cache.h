/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  Backend-local cache of model factors, keyed by model version.
 *
 * IDENTIFICATION
 *	  src/cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CACHE_H
#define CACHE_H

#include "als.h"
#include "catalog.h"
#include "compact.h"
#include "idmap.h"

/* One cached model version; read-only for callers except the scratch */
typedef struct CacheEntry
{
	int64		model_id;
	int64		version;
	int64		token;			/* the version's random cache token */
	MemoryContext cxt;			/* holds everything below */
	const struct RecsysMethod *method;
	RecsysParams params;		/* the options the model was trained with */
	AlsConfig	config;			/* k, penalty, mean: for fold-in */
	RecsysFactors items;
	IdMap	   *index;			/* item id -> row of items */
	RecsysSparse neighbors;		/* item-neighbour models: items x items */
	ModelFeatures item_features;	/* content and hybrid models: rows are */
	ModelFeatures user_features;	/* the entry's item (and user) rows */
	RecsysSparse feature_items; /* content: features x items (transpose) */
	float	   *feature_scratch;	/* content: one weight per item feature */
	float	   *norms;			/* item factor norms, on first use */
	bool		zero_bias;		/* every item bias is 0 (implicit models) */
	bool		has_gram;		/* ws.yty holds the items' Gram, on first use */
	RecsysFactors users;		/* user factors, on first use (similar_users) */
	IdMap	   *user_index;
	float	   *user_norms;
	AlsWorkspace ws;			/* fold-in scratch */
	float	   *scores;			/* one score per item: per-call scratch */
	int32	   *result;			/* top-n scratch, one entry per item */
	CompactItems *compact;		/* factor models: 8-bit codes, or NULL */
	char	   *compact_chunk;	/* their private chunk (NULL when shared) */
	float	   *compact_upper;	/* compact scoring scratch: bounds per */
	float	   *compact_lower;	/* item, padded to whole blocks */
	char	  **item_names;		/* text-keyed items: external id by row, on
								 * first use (ids.c) */
	struct TextDict *item_dict; /* external id -> row, alike */
	uint64		last_used;
	int			shared_slot;	/* the shared blob items point into, or -1 */
} CacheEntry;

extern CacheEntry *CacheGetModel(const RecsysModelInfo *info);
extern const float *CacheItemNorms(CacheEntry *entry);
extern void CacheItemGram(CacheEntry *entry);
extern void CacheLoadUsers(CacheEntry *entry, const RecsysModelInfo *info);
extern void CacheForgetUsers(CacheEntry *entry);
extern void CacheDropModel(int64 model_id);

#endif							/* CACHE_H */
