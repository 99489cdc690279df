/*-------------------------------------------------------------------------
 *
 * recommend.h
 *	  Serving helpers shared by recommend.c and foldin.c.
 *
 * IDENTIFICATION
 *	  src/recommend.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RECOMMEND_H
#define RECOMMEND_H

#include "cache.h"
#include "fmgr.h"
#include "method.h"

extern char *ServeModelArg(FunctionCallInfo fcinfo, int argno);
extern int	ServeCountArg(FunctionCallInfo fcinfo, int argno);
extern void ServeEmit(FunctionCallInfo fcinfo, CacheEntry *e,
					  const RecsysModelInfo *info, bool users,
					  const int64 *ids, const float *scores,
					  const int32 *chosen, int count);
extern void ServeMapHistory(const CacheEntry *e, const int64 *items,
							const float *values, int n, ServeHistory *h);
extern void ServeScoreUser(CacheEntry *e, const RecsysUserRow *user);
extern void ServeExcludeIds(const CacheEntry *e, const int64 *ids, int nids,
							float *scores);
extern void ServeTopK(FunctionCallInfo fcinfo, CacheEntry *e,
					  const RecsysModelInfo *info, int n);

#endif							/* RECOMMEND_H */
