/*-------------------------------------------------------------------------
 *
 * score.h
 *	  Serving arithmetic: scores of items for a user, similarities.
 *
 * IDENTIFICATION
 *	  src/score.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCORE_H
#define SCORE_H

#include "recsys.h"

extern void ScoreFactors(const RecsysFactors *items, bool zero_bias,
						 const float *x, float base, float *scores);
extern bool ScoreFactorsBlock(const RecsysFactors *items, bool zero_bias,
							  const float *users, const float *base,
							  int nusers, float *scores);
extern void ScorePopularity(const RecsysFactors *items, float *scores);
extern void ScoreNeighbors(const RecsysSparse *graph, const int32 *rows,
						   const float *values, int n, float *scores);
extern double ScoreNeighborWeight(const RecsysSparse *graph, int32 row,
								  int32 col);
extern double ScoreDot(const float *x, const float *y, int k);
extern void ScoreNorms(const RecsysFactors *f, float *norms);
extern void ScoreCosine(const RecsysFactors *f, const float *norms, int32 row,
						float *scores);

#endif							/* SCORE_H */
