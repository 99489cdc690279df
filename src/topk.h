/*-------------------------------------------------------------------------
 *
 * topk.h
 *	  Selecting the n best of many scores with a bounded heap.
 *
 * IDENTIFICATION
 *	  src/topk.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TOPK_H
#define TOPK_H

/* Scores equal to this are never selected (excluded items) */
#define TOPK_EXCLUDED (-INFINITY)

extern int	TopK(const float *scores, const int64 *ids, int count, int n,
				 int32 *out);
extern int	TopKRows(const float *scores, const int64 *ids, const int32 *rows,
					 int count, int n, int32 *out);

#endif							/* TOPK_H */
