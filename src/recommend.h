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
/* recommend_all's scratch for one batch of users */
typedef struct ServeBatch
{
	CacheEntry *e;
	int			n;				/* best items per user */
	bool		exclude_seen;
	int			nthreads;
	const RecsysUserRow *rows;	/* the current batch */
	float	   *users;			/* batch x k user factors */
	float	   *base;			/* batch: mu + b_u */
	float	   *scores;			/* nitems x batch, column per user */
	int32	   *chosen;			/* batch x n best item rows */
	int		   *counts;			/* per user: rows chosen */
} ServeBatch;

extern int	ServeBatchSize(int nitems);
extern int	ServeBatchInit(ServeBatch *b, CacheEntry *e, int n, bool exclude_seen);
extern void ServeBatchScore(ServeBatch *b, const RecsysUserRow *rows, int nrows);
extern void ServeTopK(FunctionCallInfo fcinfo, CacheEntry *e,
					  const RecsysModelInfo *info, int n);

#endif							/* RECOMMEND_H */
