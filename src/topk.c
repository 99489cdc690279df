/*-------------------------------------------------------------------------
 *
 * topk.c
 *	  Selecting the n best of many scores with a bounded heap.
 *
 * A min-heap of the n best candidates so far makes selection O(count log n)
 * with n << count, and allocates only n slots; a full sort of the catalog
 * would cost O(count log count).  Ties are broken by ascending id, so
 * results are deterministic, and the n best are the same whatever superset
 * of them is searched (TopKRows).
 *
 * IDENTIFICATION
 *	  src/topk.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "topk.h"

/* True if candidate a ranks below candidate b */
static inline bool
Worse(const float *scores, const int64 *ids, int32 a, int32 b)
{
	if (scores[a] != scores[b])
		return scores[a] < scores[b];
	return ids[a] > ids[b];
}

/* Restore the heap property below position i (the worst is at the root) */
static void
SiftDown(int32 *heap, int size, int i, const float *scores, const int64 *ids)
{
	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			worst = i;
		int32		tmp;

		if (l < size && Worse(scores, ids, heap[l], heap[worst]))
			worst = l;
		if (r < size && Worse(scores, ids, heap[r], heap[worst]))
			worst = r;
		if (worst == i)
			return;
		tmp = heap[i];
		heap[i] = heap[worst];
		heap[worst] = tmp;
		i = worst;
	}
}

/* Restore the heap property above position i */
static void
SiftUp(int32 *heap, int i, const float *scores, const int64 *ids)
{
	while (i > 0)
	{
		int			parent = (i - 1) / 2;
		int32		tmp;

		if (!Worse(scores, ids, heap[i], heap[parent]))
			return;
		tmp = heap[i];
		heap[i] = heap[parent];
		heap[parent] = tmp;
		i = parent;
	}
}

/*
 * The n best of the candidates rows[0..count) (or 0..count when rows is
 * NULL) into out, best first; returns how many were written.  Inlined into
 * both callers, so the pass over a whole catalog keeps its tight loop.
 */
static pg_attribute_always_inline int
SelectBest(const float *scores, const int64 *ids, const int32 *rows,
		   int count, int n, int32 *out)
{
	int			size = 0;
	float		threshold = TOPK_EXCLUDED;	/* score of the heap's worst, once full */

	if (n <= 0)
		return 0;
	for (int32 j = 0; j < count; j++)
	{
		int32		i = rows ? rows[j] : j;
		float		s = scores[i];

		/*
		 * Most candidates lose to the current worst by score alone: one
		 * comparison, no heap access (ties need the id comparison below).
		 */
		if (s < threshold || s == TOPK_EXCLUDED)
			continue;
		if (size < n)
		{
			out[size] = i;
			SiftUp(out, size, scores, ids);
			size++;
			if (size == n)
				threshold = scores[out[0]];
		}
		else if (Worse(scores, ids, out[0], i))
		{
			out[0] = i;
			SiftDown(out, size, 0, scores, ids);
			threshold = scores[out[0]];
		}
	}

	/* Pop the worst to the end repeatedly: the array ends up best first */
	for (int end = size - 1; end > 0; end--)
	{
		int32		tmp = out[0];

		out[0] = out[end];
		out[end] = tmp;
		SiftDown(out, end, 0, scores, ids);
	}
	return size;
}

/*
 * Write the indexes of the n best scores (best first) into out, which must
 * hold n entries; returns how many were written (fewer than n when fewer
 * candidates are not excluded).
 */
int
TopK(const float *scores, const int64 *ids, int count, int n, int32 *out)
{
	return SelectBest(scores, ids, NULL, count, n, out);
}

/*
 * TopK over some rows only: the n best of scores[rows[j]], j < count (rows
 * distinct), best first, into out.  The order is TopK's (score, then id),
 * a total order, so when the rows include TopK's answer over all rows the
 * answer is the same (compact scoring relies on it).
 */
int
TopKRows(const float *scores, const int64 *ids, const int32 *rows, int count,
		 int n, int32 *out)
{
	return SelectBest(scores, ids, rows, count, n, out);
}
