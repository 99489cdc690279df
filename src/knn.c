/*-------------------------------------------------------------------------
 *
 * knn.c
 *	  Item-item neighbourhood similarity (item_knn) and its scoring.
 *
 * Item-based collaborative filtering (Sarwar, Karypis, Konstan and Riedl,
 * WWW 2001; Deshpande and Karypis, ACM TOIS 2004) keeps, for every item i,
 * its `neighbors` most similar items j with weights s_ij, and scores
 *
 *		score_uj = sum_{i in I_u} v_ui s_ij
 *
 * over the items i of user u that have j among their neighbours.
 *
 * Weighting.  Items are the documents and users the terms, as in the
 * implicit library's tfidf_weight and bm25_weight applied to the item-user
 * matrix.  With v_ui the interaction value (1 if binary), N the number of
 * items, df_u the number of items of user u, L_i = sum_u v_ui the length of
 * item i and avgL = sum_i L_i / N:
 *
 *		idf_u = log(N) - log(1 + df_u)
 *		none:	w_ui = v_ui
 *		tfidf:	w_ui = sqrt(v_ui) idf_u
 *		bm25:	w_ui = v_ui (k1 + 1) / (k1 (1 - b + b L_i / avgL) + v_ui) idf_u
 *
 * (Okapi BM25: Robertson and Zaragoza, Found. Trends Inf. Retr. 2009), with
 * w_ui = 0 when v_ui = 0 (and L_i / avgL taken as 0 when avgL = 0), which
 * avoids 0 / 0 at k1 = 0.  As in implicit the idf is not clamped: a user
 * with N - 1 items or more has idf <= 0, so zero or negative weights.
 *
 * Similarity of items i and j on the weighted vectors w_i = (w_ui)_u, with
 * U_i the users who have item i (whatever the value):
 *
 *		cosine:		s_ij = w_i . w_j / (|w_i| |w_j| + shrink), at most 1
 *		dot:		s_ij = w_i . w_j / (1 + shrink)
 *		jaccard:	s_ij = |U_i & U_j| / (|U_i| + |U_j| - |U_i & U_j| + shrink)
 *
 * Shrinkage is added to the denominator, as in the ItemKNN baseline of
 * Dacrema, Cremonesi and Jannach (RecSys 2019): it pulls down similarities
 * of items with little data.  For dot the denominator is 1, so shrink only
 * scales every weight alike and changes no ranking.  Jaccard ignores values
 * and weighting.  An item is never its own neighbour, an all-zero vector
 * has no neighbours, and only similarities > 0 are kept.  implicit's
 * CosineRecommender, TFIDFRecommender and BM25Recommender compute
 * (none, cosine), (tfidf, cosine) and (bm25, dot) with shrink 0, except
 * that they keep the item itself among its K neighbours.
 *
 * Algorithm.  The products are sparse, as in implicit's all_pairs_knn:
 * item i's dot products with every other item,
 *
 *		acc[j] = sum_{u in U_i} w_ui sum_{j in I_u} w_uj,
 *
 * are a scatter of each of its users' weighted rows into an accumulator of
 * nitems doubles per thread, never a dense items x items matrix.  The cost
 * is sum_u |I_u|^2 multiply-adds (4.2e8 for MovieLens-1M's shape, 3.9e9
 * for 10M's), most of the time.  The weights of the user rows are computed
 * once, in parallel, so the inner loop reads two contiguous arrays.  The
 * neighbours are then chosen with a bounded heap of integer keys,
 * O(candidates log neighbors).  Computing only j > i and giving s_ij to
 * both items would halve the scatter, but the heaps then become shared and
 * scattered: a trial with per-item locks gained nothing at 1M.
 *
 * Each item is computed by one thread, summing its users in CSR order, so
 * the result does not depend on the number of threads; and since w_ui is
 * the same float in both orientations and products of floats are exact in
 * double, s_ij and s_ji are the same number.
 *
 * Nothing here calls fmgr or SPI; only palloc, in the backend's thread.
 *
 * IDENTIFICATION
 *	  src/knn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "knn.h"
#include "parallel.h"

/*
 * Items per block of the similarity loop: a popular item of a large data
 * set costs milliseconds, so small blocks keep threads balanced and a
 * cancel prompt.
 */
#define KNN_BLOCK_ITEMS 4

/* Rows per block of the O(nnz) weighting loops */
#define KNN_BLOCK_ROWS 256

/*
 * An item whose users' rows add up to at least nitems / KNN_DENSE_DIVISOR
 * entries scans the whole accumulator for candidates; one that reaches
 * fewer keeps a list of the rows it touched, which costs a check per entry
 * but keeps a small item's work independent of the catalogue size.  Both
 * find the same candidates: rows left at 0 have similarity 0.
 */
#define KNN_DENSE_DIVISOR 4

/* One thread's scratch space */
typedef struct KnnWorkspace
{
	double	   *acc;			/* nitems: dot products with the item */
	int32	   *stamp;			/* nitems: the last item that touched a row */
	int32	   *touched;		/* rows the item touched (sparse mode) */
	uint64	   *heap;			/* neighbors: the best candidates' keys */
} KnnWorkspace;

/* What the threads of one build share */
typedef struct KnnTask
{
	const RecsysSparse *by_user;
	const RecsysSparse *by_item;
	const KnnOptions *o;
	bool		unit;			/* every weight is 1: jaccard, binary none */
	double	   *idf;			/* nusers: idf_u (tfidf, bm25) */
	double	   *ratio;			/* nitems: L_i, then L_i / avgL (bm25) */
	float	   *weights;		/* by_user->nnz w_uj computed (tfidf, bm25) */
	const float *user_weights;	/* what the scatter reads: weights or values */
	double	   *norms;			/* nitems: |w_i| (cosine) */
	KnnWorkspace *ws;			/* one per thread */
	KnnGraph   *out;
} KnnTask;

/* Allocate a buffer that may exceed 1 GB */
static void *
KnnAlloc(Size size)
{
	return palloc_extended(Max(size, 1), MCXT_ALLOC_HUGE);
}

/* Neighbour slots per item: no item has more than nitems - 1 */
static int
KnnCapacity(int nitems, int neighbors)
{
	return Max(0, Min(neighbors, nitems - 1));
}

/*
 * Bytes KnnBuild allocates, the graph included, plus as much again for
 * the batches that store it: an upper bound of the peak, for
 * RecsysCheckMemory.
 */
Size
KnnMemory(int64 nnz, int nusers, int nitems, int neighbors, int nthreads)
{
	int			cap = KnnCapacity(nitems, neighbors);
	Size		slots = mul_size(nitems, cap);
	Size		pair = sizeof(int32) + sizeof(float);
	Size		offsets = mul_size(add_size(nitems, 1), sizeof(int64));
	Size		per_thread;
	Size		total;

	/* The graph, and as much again while it is written and read back */
	total = add_size(mul_size(nitems, sizeof(int32)), mul_size(slots, pair));
	total = add_size(total, add_size(mul_size(3, offsets),
									 mul_size(slots, 2 * pair)));
	/* Weighted user rows, idf, item lengths, norms, block flags */
	total = add_size(total, mul_size(nnz, sizeof(float)));
	total = add_size(total, mul_size(nusers, sizeof(double)));
	total = add_size(total, mul_size(nitems, 3 * sizeof(double)));
	/* Per thread: accumulator, stamps, touched rows, heap */
	per_thread = add_size(mul_size(nitems, sizeof(double) + 2 * sizeof(int32)),
						  mul_size(cap, sizeof(uint64)));
	return add_size(total, mul_size(nthreads, per_thread));
}

/*
 * The weight w_ui of an interaction of value `value` between user u and
 * item i (see the file header).  Out of line on purpose: the user-row and
 * item-row passes both call this one copy, so the compiler cannot contract
 * the arithmetic differently in two places, and both orientations see the
 * same float.
 */
static pg_noinline float
EntryWeight(const KnnTask *t, float value, int32 u, int32 i)
{
	const KnnOptions *o = t->o;
	double		v = o->binary ? 1.0 : (double) value;

	switch (o->weighting)
	{
		case KNN_WEIGHTING_NONE:
			return (float) v;
		case KNN_WEIGHTING_TFIDF:
			return (float) (sqrt(v) * t->idf[u]);
		case KNN_WEIGHTING_BM25:
			if (v == 0.0)
				return 0.0f;
			return (float) (v * (o->k1 + 1.0) /
							(o->k1 * (1.0 - o->b + o->b * t->ratio[i]) + v) *
							t->idf[u]);
	}
	return 0.0f;
}

/* The weight of entry e of item i's row of by_item */
static inline double
ItemWeight(const KnnTask *t, int32 i, int64 e)
{
	if (t->unit)
		return 1.0;
	return EntryWeight(t, t->by_item->values[e], t->by_item->indices[e], i);
}

/* L_i = sum_u v_ui for items [begin, end) (no PostgreSQL calls) */
static bool
LengthBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	KnnTask    *t = (KnnTask *) arg;
	const RecsysSparse *m = t->by_item;

	for (int i = begin; i < end; i++)
	{
		double		sum = 0.0;

		if (t->o->binary)
			sum = (double) (m->indptr[i + 1] - m->indptr[i]);
		else
			for (int64 e = m->indptr[i]; e < m->indptr[i + 1]; e++)
				sum += m->values[e];
		t->ratio[i] = sum;
	}
	return true;
}

/* Weight the rows of users [begin, end) (no PostgreSQL calls) */
static bool
UserWeightBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	KnnTask    *t = (KnnTask *) arg;
	const RecsysSparse *m = t->by_user;

	for (int u = begin; u < end; u++)
		for (int64 e = m->indptr[u]; e < m->indptr[u + 1]; e++)
			t->weights[e] = EntryWeight(t, m->values[e], u, m->indices[e]);
	return true;
}

/* |w_i| for items [begin, end) (no PostgreSQL calls) */
static bool
NormBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	KnnTask    *t = (KnnTask *) arg;
	const RecsysSparse *m = t->by_item;

	for (int i = begin; i < end; i++)
	{
		double		sq = 0.0;

		for (int64 e = m->indptr[i]; e < m->indptr[i + 1]; e++)
		{
			double		w = ItemWeight(t, i, e);

			sq += w * w;
		}
		t->norms[i] = sqrt(sq);
	}
	return true;
}

/*
 * acc[cols[f]] += w vals[f] over one user's row.  A scatter, which
 * baseline x86-64 cannot vectorize: one load, multiply-add and store per
 * entry, into an accumulator that stays in L1/L2 (30 KB at 3,706 items,
 * 85 KB at 10,677).  Doubles: the product of two floats is exact in
 * double, so only the sum rounds, and float accumulators (half the cache)
 * were not measurably faster at 1M.
 */
static inline void
Scatter(double *pg_restrict acc, const int32 *pg_restrict cols,
		const float *pg_restrict vals, int64 n, double w)
{
	for (int64 f = 0; f < n; f++)
		acc[cols[f]] += w * vals[f];
}

/* acc[cols[f]] += 1 over one user's row: all weights are 1 */
static inline void
ScatterUnit(double *pg_restrict acc, const int32 *pg_restrict cols, int64 n)
{
	for (int64 f = 0; f < n; f++)
		acc[cols[f]] += 1.0;
}

/* s_ij from the dot product (or common users) d of items i and j */
static inline double
Similarity(const KnnTask *t, int32 i, int32 j, double d)
{
	const KnnOptions *o = t->o;
	const int64 *deg = t->by_item->indptr;
	double		denom;

	switch (o->similarity)
	{
		case KNN_SIMILARITY_COSINE:
			denom = t->norms[i] * t->norms[j] + o->shrink;
			/* Rounding can take d / (|w_i| |w_j|) just over 1 */
			return denom > 0.0 ? Min(d / denom, 1.0) : 0.0;
		case KNN_SIMILARITY_DOT:
			return d / (1.0 + o->shrink);
		case KNN_SIMILARITY_JACCARD:
			denom = (double) (deg[i + 1] - deg[i]) +
				(double) (deg[j + 1] - deg[j]) - d + o->shrink;
			return denom > 0.0 ? d / denom : 0.0;
	}
	return 0.0;
}

/*
 * The rank of a candidate: its similarity's bits above, which order like
 * the values since it is > 0, and ~row below, so that the lower row wins a
 * tie.  Every key is distinct, and comparing two is one instruction.
 */
static inline uint64
CandidateKey(float s, int32 j)
{
	uint32		bits;

	memcpy(&bits, &s, sizeof(bits));
	return ((uint64) bits << 32) | (uint32) ~(uint32) j;
}

/* Restore the min-heap below position p (the worst key is at the root) */
static void
HeapSiftDown(uint64 *heap, int size, int p)
{
	uint64		key = heap[p];

	for (;;)
	{
		int			c = 2 * p + 1;

		if (c >= size)
			break;
		/* The smaller child, without a branch: which one is a coin flip */
		if (c + 1 < size)
			c += heap[c + 1] < heap[c];
		if (key <= heap[c])
			break;
		heap[p] = heap[c];
		p = c;
	}
	heap[p] = key;
}

/* Add key to a heap of fewer than its capacity */
static void
HeapPush(uint64 *heap, int size, uint64 key)
{
	int			p = size;

	while (p > 0 && key < heap[(p - 1) / 2])
	{
		heap[p] = heap[(p - 1) / 2];
		p = (p - 1) / 2;
	}
	heap[p] = key;
}

/*
 * Offer row j to item i's heap of the `cap` best candidates so far, a
 * bounded min-heap: O(log cap) per replacement, and most candidates lose to
 * the root at once.  Returns the new heap size.
 */
static pg_attribute_always_inline int
Offer(const KnnTask *t, KnnWorkspace *ws, int32 i, int32 j, int cap,
	  int size)
{
	float		s;
	uint64		key;

	if (j == i)
		return size;
	s = (float) Similarity(t, i, j, ws->acc[j]);
	if (!(s > 0.0f))
		return size;
	key = CandidateKey(s, j);
	if (size < cap)
	{
		HeapPush(ws->heap, size, key);
		return size + 1;
	}
	if (key > ws->heap[0])
	{
		ws->heap[0] = key;
		HeapSiftDown(ws->heap, cap, 0);
	}
	return size;
}

/* Find item i's neighbours and write them to the graph */
static void
ItemNeighbours(const KnnTask *t, KnnWorkspace *ws, int32 i)
{
	const RecsysSparse *bi = t->by_item;
	const RecsysSparse *bu = t->by_user;
	const float *vals = t->user_weights;
	KnnGraph   *g = t->out;
	int32	   *slots = g->rows + (Size) i * g->neighbors;
	float	   *weights = g->weights + (Size) i * g->neighbors;
	int			cap = g->neighbors;
	int64		reach = 0;
	int			ntouched = 0;
	int			size = 0;
	bool		dense;

	g->count[i] = 0;
	if (cap == 0 || bi->indptr[i] == bi->indptr[i + 1])
		return;
	if (t->o->similarity == KNN_SIMILARITY_COSINE && t->norms[i] == 0.0)
		return;

	for (int64 e = bi->indptr[i]; e < bi->indptr[i + 1]; e++)
	{
		int32		u = bi->indices[e];

		reach += bu->indptr[u + 1] - bu->indptr[u];
	}
	dense = reach >= bu->ncols / KNN_DENSE_DIVISOR;

	/* acc[j] = sum_u w_ui w_uj, users in CSR order */
	for (int64 e = bi->indptr[i]; e < bi->indptr[i + 1]; e++)
	{
		int32		u = bi->indices[e];
		int64		first = bu->indptr[u];
		int64		n = bu->indptr[u + 1] - first;
		const int32 *cols = bu->indices + first;
		double		w = ItemWeight(t, i, e);

		/* A zero weight adds nothing, and so touches nothing */
		if (w == 0.0)
			continue;
		if (!dense)
		{
			for (int64 f = 0; f < n; f++)
			{
				if (ws->stamp[cols[f]] != i)
				{
					ws->stamp[cols[f]] = i;
					ws->touched[ntouched++] = cols[f];
				}
			}
		}
		if (t->unit)
			ScatterUnit(ws->acc, cols, n);
		else
			Scatter(ws->acc, cols, vals + first, n, w);
	}

	/* Candidates, clearing the accumulator for the next item */
	if (dense)
	{
		for (int32 j = 0; j < bu->ncols; j++)
		{
			if (ws->acc[j] != 0.0)
			{
				size = Offer(t, ws, i, j, cap, size);
				ws->acc[j] = 0.0;
			}
		}
	}
	else
	{
		for (int r = 0; r < ntouched; r++)
		{
			size = Offer(t, ws, i, ws->touched[r], cap, size);
			ws->acc[ws->touched[r]] = 0.0;
		}
	}

	/* Pop the worst to the end repeatedly: the heap ends up best first */
	for (int end = size - 1; end > 0; end--)
	{
		uint64		worst = ws->heap[0];

		ws->heap[0] = ws->heap[end];
		ws->heap[end] = worst;
		HeapSiftDown(ws->heap, end, 0);
	}
	for (int r = 0; r < size; r++)
	{
		uint32		bits = (uint32) (ws->heap[r] >> 32);

		slots[r] = (int32) ~(uint32) ws->heap[r];
		memcpy(&weights[r], &bits, sizeof(float));
	}
	g->count[i] = size;
}

/* Neighbours of items [begin, end) (no PostgreSQL calls) */
static bool
NeighbourBody(void *arg, int thread, int begin, int end)
{
	KnnTask    *t = (KnnTask *) arg;

	for (int i = begin; i < end; i++)
		ItemNeighbours(t, &t->ws[thread], i);
	return true;
}

/*
 * Compute every item's neighbours (see the file header) on nthreads
 * threads into *out, allocated here in the current memory context.
 *
 * by_user (nusers x nitems) and by_item (nitems x nusers) hold the same
 * interactions, values >= 0 and finite (the caller checks).  Returns false
 * if a thread's loop failed (it cannot, today) and the caller must report
 * an error; a cancel throws from ParallelFor.
 */
bool
KnnBuild(const RecsysSparse *by_user, const RecsysSparse *by_item,
		 const KnnOptions *o, int nthreads, KnnGraph *out)
{
	KnnTask		t;
	int			nusers = by_user->nrows;
	int			nitems = by_item->nrows;
	int			cap = KnnCapacity(nitems, o->neighbors);
	bool		ok;

	Assert(by_user->ncols == nitems && by_item->ncols == nusers);
	Assert(by_user->nnz == by_item->nnz);
	Assert(o->neighbors >= 1 && o->shrink >= 0.0);
	Assert(o->k1 >= 0.0 && o->b >= 0.0 && o->b <= 1.0);

	nthreads = Max(1, Min(nthreads, PARALLEL_MAX_THREADS));
	out->nitems = nitems;
	out->neighbors = cap;
	out->count = KnnAlloc(sizeof(int32) * (Size) nitems);
	out->rows = KnnAlloc(mul_size(sizeof(int32), mul_size(nitems, cap)));
	out->weights = KnnAlloc(mul_size(sizeof(float), mul_size(nitems, cap)));

	memset(&t, 0, sizeof(t));
	t.by_user = by_user;
	t.by_item = by_item;
	t.o = o;
	t.out = out;
	t.unit = o->similarity == KNN_SIMILARITY_JACCARD ||
		(o->binary && o->weighting == KNN_WEIGHTING_NONE);
	t.user_weights = by_user->values;

	if (!t.unit && o->weighting != KNN_WEIGHTING_NONE)
	{
		double		log_n = log((double) nitems);

		/* idf_u from the user's row length; computed before the threads */
		t.idf = KnnAlloc(sizeof(double) * (Size) nusers);
		for (int u = 0; u < nusers; u++)
			t.idf[u] = log_n -
				log1p((double) (by_user->indptr[u + 1] - by_user->indptr[u]));

		if (o->weighting == KNN_WEIGHTING_BM25)
		{
			double		total = 0.0;
			double		avg;

			t.ratio = KnnAlloc(sizeof(double) * (Size) nitems);
			if (!ParallelFor(nitems, KNN_BLOCK_ROWS, nthreads, LengthBody, &t))
				return false;
			/* Summed in item order: the same whatever the threads */
			for (int i = 0; i < nitems; i++)
				total += t.ratio[i];
			avg = nitems > 0 ? total / nitems : 0.0;
			for (int i = 0; i < nitems; i++)
				t.ratio[i] = avg > 0.0 ? t.ratio[i] / avg : 0.0;
		}

		t.weights = KnnAlloc(mul_size(sizeof(float), by_user->nnz));
		t.user_weights = t.weights;
		if (!ParallelFor(nusers, KNN_BLOCK_ROWS, nthreads, UserWeightBody, &t))
			return false;
	}

	if (o->similarity == KNN_SIMILARITY_COSINE)
	{
		t.norms = KnnAlloc(sizeof(double) * (Size) nitems);
		if (!ParallelFor(nitems, KNN_BLOCK_ROWS, nthreads, NormBody, &t))
			return false;
	}

	t.ws = palloc(sizeof(KnnWorkspace) * nthreads);
	for (int w = 0; w < nthreads; w++)
	{
		KnnWorkspace *ws = &t.ws[w];

		ws->acc = KnnAlloc(sizeof(double) * (Size) nitems);
		memset(ws->acc, 0, sizeof(double) * (Size) nitems);
		ws->stamp = KnnAlloc(sizeof(int32) * (Size) nitems);
		memset(ws->stamp, 0xff, sizeof(int32) * (Size) nitems);	/* -1 */
		ws->touched = KnnAlloc(sizeof(int32) * (Size) nitems);
		ws->heap = KnnAlloc(sizeof(uint64) * (Size) cap);
	}

	ok = ParallelFor(nitems, KNN_BLOCK_ITEMS, nthreads, NeighbourBody, &t);

	for (int w = 0; w < nthreads; w++)
	{
		pfree(t.ws[w].acc);
		pfree(t.ws[w].stamp);
		pfree(t.ws[w].touched);
		pfree(t.ws[w].heap);
	}
	pfree(t.ws);
	if (t.norms)
		pfree(t.norms);
	if (t.weights)
		pfree(t.weights);
	if (t.ratio)
		pfree(t.ratio);
	if (t.idf)
		pfree(t.idf);
	return ok;
}

/*
 * scores[j] += sum_t values[t] B[rows[t], j]: add the scores of a history
 * of n items (rows[t] with values[t], or 1 each if values is NULL) under
 * an item-item model m in the serving form.  The caller zeroes scores
 * (nitems); items no history item reaches keep their score.  Plain C, no
 * PostgreSQL calls: safe on worker threads.
 */
void
KnnScoreUser(const RecsysSparse *m, const int32 *rows, const float *values,
			 int n, float *scores)
{
	for (int t = 0; t < n; t++)
	{
		int32		r = rows[t];
		float		v = values ? values[t] : 1.0f;

		/* A scatter along the row; its columns ascend, so memory does too */
		for (int64 e = m->indptr[r]; e < m->indptr[r + 1]; e++)
			scores[m->indices[e]] += v * m->values[e];
	}
}
