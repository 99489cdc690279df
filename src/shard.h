/*-------------------------------------------------------------------------
 *
 * shard.h
 *	  Distributed training: the shard side (shard.c) and the coordinator
 *	  (distributed.c), and how they pack arrays into bytea.
 *
 * IDENTIFICATION
 *	  src/shard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SHARD_H
#define SHARD_H

#include "ratings.h"
#include "recsys.h"

/* One array of ShardPackBlocks */
typedef struct ShardBlock
{
	const void *data;
	int64		n;
	uint32		elem;
} ShardBlock;

extern char *ShardPackBlocks(const ShardBlock *blocks, int n, int *len);
extern bytea *ShardPack(const void *data, int64 n, uint32 elem);
extern const void *ShardUnpack(const char *data, Size len, uint32 elem, int64 *n);
extern void *ShardUnpackNext(const char **data, Size *len, uint32 elem, int64 *n);

/* distributed.c */
extern bool recsys_distributed_training;
extern void DistributedInit(void);
extern bool DistributedSource(Oid relid, const char *user_col);
extern void DistributedTrain(const char *name, RecsysParams *params,
							 RatingsSource *source);

/* distributed_serve.c */
/* Values of recsys.shard_local_serving */
#define SHARD_LOCAL_OFF 0
#define SHARD_LOCAL_EVALUATE 1
#define SHARD_LOCAL_ALL 2
extern int	recsys_shard_local_serving;
extern void DistributedServeInit(void);
extern bool DistributedRecommendAll(FunctionCallInfo fcinfo,
									const RecsysModelInfo *info, int n,
									bool exclude_seen);

#endif							/* SHARD_H */
