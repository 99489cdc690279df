/*-------------------------------------------------------------------------
 *
 * distributed.h
 *	  The coordinator's sessions to postgres_fdw shards, shared by
 *	  distributed training (distributed.c) and shard-local serving
 *	  (distributed_serve.c).
 *
 * IDENTIFICATION
 *	  src/distributed.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTRIBUTED_H
#define DISTRIBUTED_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

/* One shard: a foreign partition, its server and its session */
typedef struct Shard
{
	Oid			relid;			/* the foreign table */
	char	   *server;			/* the foreign server's name */
	Oid			serverid;
	char	   *remote_rel;		/* schema-qualified remote relation */
	char	   *user_col;		/* remote column names */
	char	   *item_col;
	char	   *value_col;
	PGconn	   *conn;
	PGresult   *result;			/* the last query's result */
	bool		busy;
	/* what shard_open returned */
	int64	   *users;
	int			nusers;
	int64	   *items;
	int			nitems;
	int64		nnz;
	double		value_sum;
	int64		null_values;
	int64		duplicates;
	int		   *user_pos;		/* its users' global indexes */
	int		   *item_pos;		/* its items' global indexes */
	int64	   *item_counts;	/* its interactions per item */
} Shard;

/* A distributed training (or shard-local serving call) in progress */
typedef struct Dist
{
	Shard	   *shards;
	int			nshards;
	int64		bytes;			/* sent and received, this iteration */
} Dist;

extern List *LeafPartitions(Oid relid);
extern void DistributedLayout(Oid relid, const char *user_col, int *leaves,
							  int *foreign, bool *by_user);
extern char *RemoteColumn(Oid relid, const char *col);
extern void DistributedShards(Dist *d, List *leaves, const char *user_col,
							  const char *item_col, const char *value_col);
extern void ShardError(Shard *s, PGresult *res, const char *what);
extern void ShardConnect(Shard *s);
extern void ShardsDisconnect(Dist *d);
extern void SendAll(Dist *d, const char *sql, int nparams, const Oid *types,
					const char *const *const *values, const int *const *lengths,
					bool per_shard, const char *what);
extern void WaitAll(Dist *d, const char *what);
extern const void *ResultPack(PGresult *res, int row, int col, uint32 elem,
							  int64 *n);
extern int64 ResultInt8(PGresult *res, int row, int col);
extern double ResultFloat8(PGresult *res, int row, int col);
extern const char *PackParam(const void *data, int64 n, uint32 elem, int *len);

#endif							/* DISTRIBUTED_H */
