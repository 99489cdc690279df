/*-------------------------------------------------------------------------
 *
 * evaluate.h
 *	  The per-user metrics of evaluate.c, shared with the shard side of
 *	  shard-local evaluation (shard_serve.c).
 *
 * IDENTIFICATION
 *	  src/evaluate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVALUATE_H
#define EVALUATE_H

/* A set of ids: sorted ascending, without duplicates */
typedef struct IdSet
{
	int64	   *ids;
	int			n;
} IdSet;

/* The per-user ranking metrics at k */
typedef struct RankMetrics
{
	double		precision;
	double		recall;
	double		ndcg;
	double		ap;
	double		hit;
	double		rr;
} RankMetrics;

extern void IdSetFromIds(const int64 *data, int n, IdSet *set);
extern int	IdSetFind(const IdSet *set, int64 id);
extern bool RankMetricsCompute(const int64 *rec, int nrec, const IdSet *rel,
							   int32 k, RankMetrics *m);
extern void RatingErrorAdd(double *slots, double predicted, double actual);
extern bool AucCompute(const int64 *ranked, int n, const IdSet *rel,
					   const IdSet *exclude, double *auc);

#endif							/* EVALUATE_H */
