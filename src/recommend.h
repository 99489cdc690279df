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

extern char *ServeModelArg(FunctionCallInfo fcinfo, int argno);
extern int	ServeCountArg(FunctionCallInfo fcinfo, int argno);
extern void ServeRequireFactors(const RecsysModelInfo *info, const char *function);
extern void ServeEmit(FunctionCallInfo fcinfo, const int64 *ids,
					  const float *scores, const int32 *chosen, int count);
extern void ServeScoreAll(const CacheEntry *e, const float *factors,
						  float user_bias, float *scores);
extern void ServeScorePopular(const CacheEntry *e, float *scores);
extern void ServeExcludeIds(const CacheEntry *e, const int64 *ids, int nids,
							float *scores);
extern void ServeTopK(FunctionCallInfo fcinfo, CacheEntry *e, int n);

#endif							/* RECOMMEND_H */
