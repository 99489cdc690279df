/*-------------------------------------------------------------------------
 *
 * knn.h
 *	  Item-item neighbourhood similarity on plain arrays (no fmgr, no SPI).
 *
 * IDENTIFICATION
 *	  src/knn.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef KNN_H
#define KNN_H

#include "recsys.h"

/* BM25 defaults, those of the implicit library's BM25Recommender */
#define KNN_DEFAULT_K1	1.2
#define KNN_DEFAULT_B	0.75

/* How interaction values are weighted before similarities (see knn.c) */
typedef enum KnnWeighting
{
	KNN_WEIGHTING_NONE,			/* w_ui = v_ui */
	KNN_WEIGHTING_TFIDF,		/* w_ui = sqrt(v_ui) idf_u */
	KNN_WEIGHTING_BM25			/* Okapi BM25, items as documents */
} KnnWeighting;

/* How two items' weighted vectors are compared (see knn.c) */
typedef enum KnnSimilarity
{
	KNN_SIMILARITY_COSINE,		/* w_i . w_j / (|w_i| |w_j| + shrink) */
	KNN_SIMILARITY_DOT,			/* w_i . w_j / (1 + shrink) */
	KNN_SIMILARITY_JACCARD		/* |U_i & U_j| / (|U_i | U_j| + shrink) */
} KnnSimilarity;

/*
 * Options of one build.  The caller checks them: neighbors >= 1,
 * shrink >= 0, k1 >= 0, 0 <= b <= 1, all finite.
 */
typedef struct KnnOptions
{
	int			neighbors;		/* most neighbours kept per item */
	KnnWeighting weighting;
	double		k1;				/* bm25: term-frequency saturation */
	double		b;				/* bm25: item-length normalization */
	KnnSimilarity similarity;
	double		shrink;			/* added to every similarity's denominator */
	bool		binary;			/* every interaction counts 1, not its value */
} KnnOptions;

/*
 * Each item's neighbours, best first (weight descending, ties by lower
 * row): item i's are rows[i * neighbors + r] and weights[i * neighbors + r]
 * for r < count[i].  Rows are dense item indices (0-based).
 */
typedef struct KnnGraph
{
	int			nitems;
	int			neighbors;		/* slots per item: min(asked, nitems - 1) */
	int32	   *count;			/* nitems: neighbours kept */
	int32	   *rows;			/* nitems x neighbors */
	float	   *weights;		/* nitems x neighbors (item_knn: all > 0;
								 * a dense ease model keeps negatives) */
} KnnGraph;

/*
 * The serving form of an item-item model (item_knn, or an EASE matrix) is
 * a RecsysSparse of nitems x nitems: row i holds the items j that item i
 * recommends and the weights B_ij, in stored order, so a user with history
 * x_u scores x_u B (KnnScoreUser).  Training produces a KnnGraph, ease too
 * (ease.c), which the catalog stores row by row.
 */

extern Size KnnMemory(int64 nnz, int nusers, int nitems, int neighbors,
					  int nthreads);
extern bool KnnBuild(const RecsysSparse *by_user, const RecsysSparse *by_item,
					 const KnnOptions *o, int nthreads, KnnGraph *out);
extern void KnnScoreUser(const RecsysSparse *m, const int32 *rows,
						 const float *values, int n, float *scores);

#endif							/* KNN_H */
