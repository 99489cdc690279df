/*-------------------------------------------------------------------------
 *
 * ids.h
 *	  Serving with the source's own ids: integers as they are, text and
 *	  uuid ids through the model's dictionary (recsys.id_map).
 *
 * IDENTIFICATION
 *	  src/ids.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDS_H
#define IDS_H

#include "cache.h"
#include "fmgr.h"

/*
 * The model id standing for a text id the model does not know (of
 * text-keyed sides only: for bigint ids it is an ordinary id)
 */
#define IDS_UNKNOWN PG_INT64_MIN

extern int64 IdsUserArg(FunctionCallInfo fcinfo, int argno,
						const RecsysModelInfo *info, bool create,
						char **external);
extern int32 IdsItemRow(FunctionCallInfo fcinfo, int argno, CacheEntry *e,
						const RecsysModelInfo *info);
extern int64 IdsItemArg(FunctionCallInfo fcinfo, int argno, CacheEntry *e,
						const RecsysModelInfo *info, char **external);
extern int64 *IdsArrayArg(FunctionCallInfo fcinfo, int argno, CacheEntry *e,
						  const RecsysModelInfo *info, bool keep, int *nids);
extern void IdsPrepareItems(CacheEntry *e, const RecsysModelInfo *info);
extern Datum IdsDatum(CacheEntry *e, const RecsysModelInfo *info, bool users,
					  int64 id, Oid type);
extern int64 IdsResolveItem(void *arg, const char *id, int len);
extern int64 IdsResolveUser(void *arg, const char *id, int len);

#endif							/* IDS_H */
