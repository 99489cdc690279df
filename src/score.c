/*-------------------------------------------------------------------------
 *
 * score.c
 *	  Serving arithmetic: scores of items for a user, similarities.
 *
 * Everything a serving call computes per item lives here, on plain arrays
 * (no fmgr, no SPI), so the entry points (recommend.c, foldin.c) and the
 * methods' serving slots never call BLAS or the SIMD kernels themselves:
 *	- factor models: mu + b_u + b_i + p_u . q_i for every item, a pass of
 *	  SimdScoreRows over the item matrix (recommend), or a block of users
 *	  at once (BLAS-3, recommend_all);
 *	- item-neighbour models: the sum over the user's history of value times
 *	  the item's weight in each history item's neighbour list;
 *	- cosine similarity of one factor vector to all of its side's.
 *
 * ScoreFactorsBlock runs on worker threads (recommend_all): it calls no
 * PostgreSQL function and reports a bad dimension by its return value.
 *
 * IDENTIFICATION
 *	  src/score.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "knn.h"
#include "linalg.h"
#include "score.h"
#include "simd.h"
#include "topk.h"

/*
 * Score every item for a user vector: base + b_i + q_i . x (base = mu + b_u;
 * mu and the biases are 0 for implicit models; for models without factors
 * k = 0 and b_i is the item's score).
 *
 * Why SimdScoreRows and not BLAS sgemv: compact scoring (compact.c) scores
 * a few items again alone and must get the very floats of this pass, and
 * sgemv's rounding for an item depends on the library, the CPU and the
 * item's position among its neighbours (OpenBLAS sums 4 columns at a time,
 * the rest by another kernel).  SimdScoreRows computes every row the same
 * way wherever it is; it reads the matrix as fast as OpenBLAS's sgemv
 * (doc/performance.md).  Scores changed in the last bit when this came in.
 */
void
ScoreFactors(const RecsysFactors *items, bool zero_bias, const float *x,
			 float base, float *scores)
{
	if (items->k > 0)
		SimdScoreRows(x, items->factors, items->k, NULL, items->n, scores);
	else
		memset(scores, 0, sizeof(float) * items->n);

	/*
	 * Auto-vectorized; skipped when it would add zeros (implicit models):
	 * a pass over the scores is 8% of a recommend call at 10k items.
	 */
	if (base != 0.0f || !zero_bias)
		for (int i = 0; i < items->n; i++)
			scores[i] += base + items->bias[i];
}

/*
 * Score items for a block of users (recommend_all): column j of scores
 * (nitems floats) gets base[j] + b_i + q_i . x_j, x_j the j-th of nusers
 * vectors in users.  One matrix product (BLAS-3).  Runs on worker threads:
 * false on an invalid dimension, which the caller reports.
 */
bool
ScoreFactorsBlock(const RecsysFactors *items, bool zero_bias,
				  const float *users, const float *base, int nusers,
				  float *scores)
{
	int			n = items->n;

	if (items->k > 0)
	{
		if (!LinalgGemmTN(n, nusers, items->k, items->factors, users, scores, n))
			return false;
	}
	else
		memset(scores, 0, sizeof(float) * n * (Size) nusers);
	for (int j = 0; j < nusers; j++)
	{
		float	   *s = scores + (Size) j * n;

		/* Auto-vectorized */
		if (base[j] != 0.0f || !zero_bias)
			for (int i = 0; i < n; i++)
				s[i] += base[j] + items->bias[i];
	}
	return true;
}

/* Scores for a user the model does not know: the items' popularity */
void
ScorePopularity(const RecsysFactors *items, float *scores)
{
	for (int i = 0; i < items->n; i++)
		scores[i] = (float) items->popularity[i];
}

/*
 * Score every item for a history through item-neighbour lists: scores[j]
 * = sum_t values[t] B[rows[t], j] (0 for items no history item reaches).
 */
void
ScoreNeighbors(const RecsysSparse *graph, const int32 *rows,
			   const float *values, int n, float *scores)
{
	memset(scores, 0, sizeof(float) * graph->ncols);
	KnnScoreUser(graph, rows, values, n, scores);
}

/*
 * The weight of column `col` in row `row` of a neighbour graph, or 0.  Rows
 * are in their stored order (best first), a few hundred entries: a scan.
 */
double
ScoreNeighborWeight(const RecsysSparse *graph, int32 row, int32 col)
{
	for (int64 x = graph->indptr[row]; x < graph->indptr[row + 1]; x++)
		if (graph->indices[x] == col)
			return graph->values[x];
	return 0.0;
}

/* Dot product of two factor vectors */
double
ScoreDot(const float *x, const float *y, int k)
{
	return (double) SimdDotGeneric(x, y, k);
}

/* Euclidean norms of factor vectors, into norms (f->n floats) */
void
ScoreNorms(const RecsysFactors *f, float *norms)
{
	for (int i = 0; i < f->n; i++)
		norms[i] = sqrtf(Max(0.0f, SimdDotGeneric(f->factors + (Size) i * f->k,
												  f->factors + (Size) i * f->k, f->k)));
}

/*
 * Cosine similarity of row `row` of f to every row, into scores, with the
 * row itself excluded.
 */
void
ScoreCosine(const RecsysFactors *f, const float *norms, int32 row,
			float *scores)
{
	float		qnorm = norms[row];

	LinalgGemvT(f->k, f->n, f->factors, f->k, f->factors + (Size) row * f->k,
				scores);
	for (int i = 0; i < f->n; i++)
	{
		/* Zero vectors have no direction: similarity 0, not NaN */
		float		denom = norms[i] * qnorm;
		float		cosine = denom > 0.0f ? scores[i] / denom : 0.0f;

		/* Rounding can push |cosine| just past 1 */
		scores[i] = Max(-1.0f, Min(1.0f, cosine));
	}
	scores[row] = TOPK_EXCLUDED;
}
