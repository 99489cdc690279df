/*-------------------------------------------------------------------------
 *
 * ease.c
 *	  EASE: a closed-form item-item model from one matrix inverse.
 *
 * EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
 * WWW 2019) learns an item-item weight matrix B with a zero diagonal that
 * minimizes |X - X B|^2 + lambda |B|^2, X the users x items interactions.
 * The solution is closed-form:
 *
 *		P = (X^T X + lambda I)^-1,		B_ij = -P_ij / P_jj  (i != j)
 *
 * and a user's score for item j is s_j = sum_i x_ui B_ij.  Row i of B is
 * what holding item i adds to every other item's score, so we store, per
 * item i, the largest entries of row i as its neighbours (KnnGraph, the
 * same shape item_knn produces, so serving is shared).
 *
 * The build has four phases, all in one n x n float matrix (n items):
 *	1. Gram: G = X^T X + lambda I by sparse accumulation, in column tiles
 *	   (GramBody): sum_u deg(u)^2 / 2 scattered additions.  A BLAS-3 syrk
 *	   over densified user rows costs nusers * n^2 / 2 multiply-adds
 *	   whatever the density; on one core it took 0.95 s against 0.13 s at
 *	   6,040 users x 3,706 items with 1M interactions, and would take
 *	   about 90 s against 2 s at 69,878 x 10,677 with 10M.  Dense only
 *	   pays for users holding over a sixth of all items, so there is no
 *	   dense path.
 *	2. Cholesky: G = U^T U (BlockedCholesky), n^3 / 3 multiply-adds.
 *	3. Inverse: W = U^-1, then P = W W^T (BlockedInverse, BlockedProduct):
 *	   LAPACK's potri (trtri, lauum) in panels, 2 n^3 / 3 multiply-adds.
 *	4. Extract: symmetrize P, turn column i into row i of B in place, keep
 *	   its best entries (ExtractBody); then free the matrix.
 *
 * Why blocked factorizations of our own rather than one spotrf + spotri:
 * a LAPACK call cannot be interrupted (at 10,677 items spotrf runs 4.6 s
 * and spotri 8.5 s on one core), and the server runs OpenBLAS on one
 * thread.  Here each panel of EASE_PANEL columns does its small diagonal
 * block in the backend's thread and its O(n^2 EASE_PANEL) update as tiles
 * over ParallelFor, which uses every training thread and checks for a
 * cancel between tiles.  The longest uninterruptible call is then one
 * tile: a BLAS call of at most 2 n EASE_TILE EASE_PANEL flops (2.8 GFLOP,
 * about 30 ms on one core at 10,677 items), or a gram tile (the first,
 * costliest ones take up to about 120 ms at the 10M shape); cancels sent
 * during 10,677-item builds were raised within 120 ms in the gram phase
 * and within 60 ms after it.  On one core the blocked code runs as fast
 * as the two LAPACK calls (within measurement noise), and on two threads
 * 1.9 times faster (7.3 s instead of 13.8 s for both phases).
 *
 * Why float: it halves the matrix (435 MB at 10,677 items) and the time
 * (dpotrf + dpotri take 30 s there on one core, spotrf + spotri 13.6 s).
 * Against double (dpotrf + dpotri of the same Gram matrix) on the 1M
 * shape, B differs by at most 3.2e-7 at lambda 3,000 (its largest entry
 * is 0.14) and 5.9e-6 at lambda 20 (largest 0.32): under 1e-4 of any
 * row's largest weight.  The top 100 entries of a row differed in 1 row
 * of 3,706 at lambda 3,000 and 8 rows at lambda 20, each by one swap of
 * two weights equal to six digits, and precision@10 on a 20% holdout was
 * identical to six digits.  The Gram matrix itself is exact in float for
 * binary data (counts below 2^24).
 *
 * Everything is allocated in the caller's memory context, in the backend's
 * thread; worker threads only compute into that memory.
 *
 * IDENTIFICATION
 *	  src/ease.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "ease.h"
#include "linalg.h"
#include "miscadmin.h"
#include "parallel.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"

/*
 * Panel width of the blocked factorizations: the inner dimension of most
 * of their BLAS-3 calls.  Why 512: at 10,677 items on one core, panels of
 * 256 to 768 ran within measurement noise of each other and of LAPACK on
 * the whole matrix, 512 at the fast end; the diagonal blocks, which only
 * the backend's thread works on, are 0.2% of the work at 10,677 items and
 * 2% at 3,706.
 */
#define EASE_PANEL 512

/*
 * Rows or columns of one parallel tile of a panel step.  Why 256: tiles
 * stay large BLAS-3 calls, short enough for a prompt cancel (see above),
 * and numerous enough to balance two threads: a simulation of the
 * schedule by flop counts gives 97% efficiency at 10,677 items and 91% at
 * 3,706 (the few tiles of the first panels of the product are the loss).
 */
#define EASE_TILE 256

/*
 * Columns of X^T X one gram task computes.  Why 128: every task reads all
 * user rows once, so narrow tiles multiply that pass (32 columns took 1.65
 * times as long at the 10M shape, 64 columns 1.2 times), while wide ones
 * spill the columns being written out of cache (512 took 1.35 times as
 * long; 256 was as fast, but makes fewer, longer tasks).
 */
#define EASE_GRAM_COLUMNS 128

/* Square tiles of the transposing copy (two fit in L1) */
#define EASE_COPY_TILE 64

/* Items one extraction task handles */
#define EASE_EXTRACT_ITEMS 16

/* What the threads of every phase share */
typedef struct EaseTask
{
	int			n;				/* items */
	float	   *a;				/* n x n column-major: G, U, W, P, B^T */
	/* gram */
	const RecsysSparse *by_user;
	float		lambda;
	bool		binary;
	/* factorizations: the current panel */
	int			k0;				/* its first row and column */
	int			kb;				/* its width */
	float	   *panel;			/* inverse: copy of rows 0..k0 of the panel */
	float	   *diagonal;		/* product: the diagonal block's update */
	/* extraction */
	const float *scale;			/* -1 / diag(P) */
	bool		dense;			/* keep every nonzero, not only positives */
	uint32	   *sort_keys;		/* dense: 2 n per thread, radix sort */
	int32	   *sort_rows;		/* dense: 2 n per thread */
	KnnGraph   *out;
	int			status[PARALLEL_MAX_THREADS];	/* per thread: failure code */
} EaseTask;

/* Address of A[i, j] */
static inline float *
At(const EaseTask *t, int i, int j)
{
	return t->a + (Size) j * t->n + i;
}

/* Number of EASE_TILE tiles covering n rows or columns */
static inline int
Tiles(int n)
{
	return (n + EASE_TILE - 1) / EASE_TILE;
}

/* Neighbours kept per item: all others when neighbors is 0 (dense) */
int
EaseNeighbors(int nitems, int neighbors)
{
	int			others = Max(nitems - 1, 0);

	return neighbors == 0 ? others : Min(neighbors, others);
}

/*
 * Bytes EaseBuild allocates at its peak for nitems items, to be checked
 * against maintenance_work_mem before calling it.
 *
 * The n x n float matrix dominates: 4 n^2 bytes, so 256 MB hold 8,192
 * items, 1 GB 16,384 items, 4 GB 32,768 and 16 GB 65,536 (3,706 items
 * take 52 MB, 10,677 items 435 MB).  The output adds 8 bytes per kept
 * neighbour and item while the matrix is still alive: little for a few
 * hundred neighbours (8 MB for 100 at 10,677 items), but with neighbors =
 * 0 (dense) it is 8 n (n - 1) bytes, about 12 n^2 in all: 1 GB then holds
 * 9,450 items, 4 GB 18,900 and 16 GB 37,800 (10,677 items take 1.3 GB).
 * The rest is small: the inverse's panel copy, 4 n EASE_PANEL bytes (2 MB
 * per 1,000 items, freed before the output is allocated), and a dense
 * sort's scratch, 16 n bytes per thread.
 */
Size
EaseMemory(int nitems, int neighbors, int nthreads)
{
	Size		n = (Size) Max(nitems, 1);
	Size		kept = mul_size(n, Max(EaseNeighbors(nitems, neighbors), 1));
	Size		threads = Max(1, Min(nthreads, PARALLEL_MAX_THREADS));
	Size		matrix = mul_size(mul_size(n, n), sizeof(float));
	Size		inverse;
	Size		extract;

	/* The inverse's panel copy and diagonal update, freed before extract */
	inverse = add_size(mul_size(mul_size(n, EASE_PANEL), sizeof(float)),
					   EASE_PANEL * EASE_PANEL * sizeof(float));

	/* -1 / diag(P), counts, neighbours, and a dense sort's scratch */
	extract = mul_size(n, sizeof(float) + sizeof(int32));
	extract = add_size(extract, mul_size(kept, sizeof(int32) + sizeof(float)));
	if (neighbors == 0)
		extract = add_size(extract,
						   mul_size(mul_size(n, threads),
									2 * (sizeof(uint32) + sizeof(int32))));
	return add_size(matrix, Max(inverse, extract));
}

/* Run a phase's tiles; a body fails only on a bug or a status it set */
static void
RunTiles(EaseTask *t, int ntiles, int block, ParallelBody body, int nthreads)
{
	if (ntiles <= 0)
		return;
	if (!ParallelFor(ntiles, block, nthreads, body, t))
	{
		for (int i = 0; i < PARALLEL_MAX_THREADS; i++)
			if (t->status[i] != 0)
				return;
		elog(ERROR, "invalid BLAS dimensions in EASE, please report a bug");
	}
}

/* First failure code a thread set, or 0 */
static int
TaskStatus(const EaseTask *t)
{
	for (int i = 0; i < PARALLEL_MAX_THREADS; i++)
		if (t->status[i] != 0)
			return t->status[i];
	return 0;
}

/* Entries of a sorted row with a column index <= j */
static inline int64
PrefixLength(const int32 *indices, int64 len, int32 j)
{
	int64		lo = 0;
	int64		hi = len;

	while (lo < hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (indices[mid] <= j)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Upper part of column tile c of G = X^T X + lambda I: columns [j0, j1)
 * (no PostgreSQL calls).
 *
 * G = sum_u x_u x_u^T, and a user's sorted row x_u adds to column j only
 * its entries up to j: for each user and each of its items j in the tile,
 * the row's prefix up to j is added into column j (cost sum_u deg(u)^2 / 2
 * in all).  The row stays in L1 while it is added to the tile's columns;
 * the tile's columns (EASE_GRAM_COLUMNS of them) stay in cache while all
 * the rows stream past.  Tasks own whole columns, so threads never write
 * the same entry.  Tiles are taken right to left: the rightmost columns
 * take the longest prefixes.  In float: counts are exact up to 2^24.
 */
static bool
GramBody(void *arg, int thread, int begin, int end)
{
	EaseTask   *t = (EaseTask *) arg;
	const RecsysSparse *x = t->by_user;
	int			n = t->n;
	int			ntiles = (n + EASE_GRAM_COLUMNS - 1) / EASE_GRAM_COLUMNS;
	bool		binary = t->binary;

	for (int c = begin; c < end; c++)
	{
		int			j0 = (ntiles - 1 - c) * EASE_GRAM_COLUMNS;
		int			j1 = Min(j0 + EASE_GRAM_COLUMNS, n);

		for (int j = j0; j < j1; j++)
			memset(At(t, 0, j), 0, sizeof(float) * (j + 1));

		for (int u = 0; u < x->nrows; u++)
		{
			int64		first = x->indptr[u];
			int64		len = x->indptr[u + 1] - first;
			const int32 *idx = x->indices + first;
			const float *val = x->values + first;

			if (len == 0 || idx[len - 1] < j0)
				continue;
			for (int64 q = PrefixLength(idx, len, j0 - 1);
				 q < len && idx[q] < j1; q++)
			{
				float	   *col = At(t, 0, idx[q]);

				if (binary)
				{
					for (int64 k = 0; k <= q; k++)
						col[idx[k]] += 1.0f;
				}
				else
				{
					float		xj = val[q];

					for (int64 k = 0; k <= q; k++)
						col[idx[k]] += xj * val[k];
				}
			}
		}

		for (int j = j0; j < j1; j++)
		{
			float	   *diag = At(t, j, j);

			*diag += t->lambda;

			/*
			 * |G_ij| <= sqrt(G_ii G_jj), and partial sums only grow: a
			 * finite diagonal means a finite column.
			 */
			if (isinf(*diag) || isnan(*diag))
			{
				t->status[thread] = EASE_VALUES_TOO_LARGE;
				return false;
			}
		}
	}
	return true;
}

/*
 * Cholesky panel, row solve: A[K, J] = U_KK^-T A[K, J] for column tiles J
 * right of the panel (no PostgreSQL calls).
 */
static bool
CholeskySolveBody(void *arg, pg_attribute_unused() int thread, int begin,
				  int end)
{
	EaseTask   *t = (EaseTask *) arg;
	int			k1 = t->k0 + t->kb;

	for (int c = begin; c < end; c++)
	{
		int			j0 = k1 + c * EASE_TILE;
		int			jb = Min(EASE_TILE, t->n - j0);

		if (!LinalgTrsm(true, true, t->kb, jb, 1.0f, At(t, t->k0, t->k0),
						t->n, At(t, t->k0, j0), t->n))
			return false;
	}
	return true;
}

/*
 * Cholesky panel, trailing update of column tile J: A[k1:j0, J] -=
 * A[K, k1:j0]^T A[K, J] and the upper triangle of A[J, J] -= A[K, J]^T
 * A[K, J] (no PostgreSQL calls).  Tiles are taken right to left, so the
 * tallest (costliest) go first and the short ones balance the end.
 */
static bool
CholeskyUpdateBody(void *arg, pg_attribute_unused() int thread, int begin,
				   int end)
{
	EaseTask   *t = (EaseTask *) arg;
	int			k0 = t->k0;
	int			k1 = k0 + t->kb;
	int			ntiles = Tiles(t->n - k1);

	for (int c = begin; c < end; c++)
	{
		int			j0 = k1 + (ntiles - 1 - c) * EASE_TILE;
		int			jb = Min(EASE_TILE, t->n - j0);

		if (!LinalgGemmAdd(true, false, j0 - k1, jb, t->kb, -1.0f,
						   At(t, k0, k1), t->n, At(t, k0, j0), t->n,
						   At(t, k1, j0), t->n) ||
			!LinalgSyrkAdd(true, jb, t->kb, -1.0f, At(t, k0, j0), t->n,
						   At(t, j0, j0), t->n))
			return false;
	}
	return true;
}

/*
 * G = U^T U in place (upper triangle), right-looking by panels: factor the
 * diagonal block in this thread, then solve the panel's row and update
 * the trailing matrix in parallel tiles.
 *
 * Returns 0, or k > 0 when the leading minor of order k is not positive
 * definite.
 */
static int
BlockedCholesky(EaseTask *t, int nthreads)
{
	int			n = t->n;

	for (int k0 = 0; k0 < n; k0 += EASE_PANEL)
	{
		int			kb = Min(EASE_PANEL, n - k0);
		int			info;

		/* Can take a while, so ensure we can interrupt */
		CHECK_FOR_INTERRUPTS();
		info = LinalgCholesky(kb, At(t, k0, k0), n);
		if (info > 0)
			return k0 + info;
		t->k0 = k0;
		t->kb = kb;
		RunTiles(t, Tiles(n - k0 - kb), 1, CholeskySolveBody, nthreads);
		RunTiles(t, Tiles(n - k0 - kb), 1, CholeskyUpdateBody, nthreads);
	}
	return 0;
}

/*
 * Inverse panel, row tile R of rows 0..k0 (no PostgreSQL calls):
 *
 *		A[R, K] = -(W[R, R:k0] U[R:k0, K]) U_KK^-1
 *
 * with W = U^-1 already in columns 0..k0; as strtri's strmm and strsm, but
 * row tiles run in parallel, so the strmm reads the other tiles' rows of
 * the panel from the copy t->panel (they may already be overwritten).
 */
static bool
InverseBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	EaseTask   *t = (EaseTask *) arg;
	int			k0 = t->k0;

	for (int c = begin; c < end; c++)
	{
		int			r0 = c * EASE_TILE;
		int			r1 = Min(r0 + EASE_TILE, k0);

		if (!LinalgTrmm(true, false, r1 - r0, t->kb, 1.0f, At(t, r0, r0),
						t->n, At(t, r0, k0), t->n) ||
			!LinalgGemmAdd(false, false, r1 - r0, t->kb, k0 - r1, 1.0f,
						   At(t, r0, r1), t->n, t->panel + r1, k0,
						   At(t, r0, k0), t->n) ||
			!LinalgTrsm(false, false, r1 - r0, t->kb, -1.0f,
						At(t, k0, k0), t->n, At(t, r0, k0), t->n))
			return false;
	}
	return true;
}

/* W = U^-1 in place (upper triangle), panel by panel, left to right */
static void
BlockedInverse(EaseTask *t, int nthreads)
{
	int			n = t->n;

	for (int k0 = 0; k0 < n; k0 += EASE_PANEL)
	{
		int			kb = Min(EASE_PANEL, n - k0);

		CHECK_FOR_INTERRUPTS();
		t->k0 = k0;
		t->kb = kb;
		if (k0 > 0)
		{
			for (int j = 0; j < kb; j++)
				memcpy(t->panel + (Size) j * k0, At(t, 0, k0 + j),
					   sizeof(float) * k0);
			RunTiles(t, Tiles(k0), 1, InverseBody, nthreads);
		}
		/* A Cholesky factor has a positive diagonal: cannot fail */
		if (LinalgTriangularInverse(kb, At(t, k0, k0), n) != 0)
			elog(ERROR, "singular Cholesky factor, please report a bug");
	}
}

/*
 * Product panel (no PostgreSQL calls).  Task 0 computes the update of the
 * diagonal block, W[K, k1:n] W[K, k1:n]^T, into t->diagonal (the block
 * itself is still read by the other tasks); task 1 + c does row tile c of
 * rows 0..k0:
 *
 *		A[R, K] = W[R, K] W_KK^T + W[R, k1:n] W[K, k1:n]^T
 *
 * as slauum's strmm and sgemm.  Row tiles write disjoint rows.
 */
static bool
ProductBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	EaseTask   *t = (EaseTask *) arg;
	int			k0 = t->k0;
	int			k1 = k0 + t->kb;

	for (int c = begin; c < end; c++)
	{
		if (c == 0)
		{
			memset(t->diagonal, 0, sizeof(float) * t->kb * t->kb);
			if (!LinalgSyrkAdd(false, t->kb, t->n - k1, 1.0f, At(t, k0, k1),
							   t->n, t->diagonal, t->kb))
				return false;
		}
		else
		{
			int			r0 = (c - 1) * EASE_TILE;
			int			r1 = Min(r0 + EASE_TILE, k0);

			if (!LinalgTrmm(false, true, r1 - r0, t->kb, 1.0f,
							At(t, k0, k0), t->n, At(t, r0, k0), t->n) ||
				!LinalgGemmAdd(false, true, r1 - r0, t->kb, t->n - k1, 1.0f,
							   At(t, r0, k1), t->n, At(t, k0, k1), t->n,
							   At(t, r0, k0), t->n))
				return false;
		}
	}
	return true;
}

/* P = W W^T in place (upper triangle), panel by panel, left to right */
static void
BlockedProduct(EaseTask *t, int nthreads)
{
	int			n = t->n;

	for (int k0 = 0; k0 < n; k0 += EASE_PANEL)
	{
		int			kb = Min(EASE_PANEL, n - k0);

		CHECK_FOR_INTERRUPTS();
		t->k0 = k0;
		t->kb = kb;
		RunTiles(t, 1 + Tiles(k0), 1, ProductBody, nthreads);
		LinalgLauum(kb, At(t, k0, k0), n);
		for (int j = 0; j < kb; j++)
		{
			float	   *col = At(t, k0, k0 + j);
			const float *add = t->diagonal + (Size) j * kb;

			for (int i = 0; i <= j; i++)
				col[i] += add[i];
		}
	}
}

/*
 * Copy the upper triangle of columns [begin, end) into the lower one: the
 * transposing copy goes tile by tile so both sides stay in L1 (no
 * PostgreSQL calls).
 */
static bool
SymmetrizeBody(void *arg, pg_attribute_unused() int thread, int begin,
			   int end)
{
	EaseTask   *t = (EaseTask *) arg;

	for (int i0 = begin; i0 < t->n; i0 += EASE_COPY_TILE)
	{
		int			i1 = Min(i0 + EASE_COPY_TILE, t->n);

		for (int j = begin; j < end; j++)
		{
			float	   *dst = At(t, 0, j);

			for (int i = Max(i0, j + 1); i < i1; i++)
				dst[i] = *At(t, j, i);
		}
	}
	return true;
}

/* Whether (wa, ra) ranks before (wb, rb): weight descending, then row */
static inline bool
Better(float wa, int32 ra, float wb, int32 rb)
{
	return wa > wb || (wa == wb && ra < rb);
}

/* Swap two heap entries */
static inline void
HeapSwap(int32 *rows, float *weights, int a, int b)
{
	int32		r = rows[a];
	float		w = weights[a];

	rows[a] = rows[b];
	weights[a] = weights[b];
	rows[b] = r;
	weights[b] = w;
}

/* Restore the heap below pos (root: the worst entry) */
static void
HeapDown(int32 *rows, float *weights, int count, int pos)
{
	for (;;)
	{
		int			worst = pos;
		int			l = 2 * pos + 1;

		if (l < count &&
			Better(weights[worst], rows[worst], weights[l], rows[l]))
			worst = l;
		if (l + 1 < count &&
			Better(weights[worst], rows[worst], weights[l + 1], rows[l + 1]))
			worst = l + 1;
		if (worst == pos)
			return;
		HeapSwap(rows, weights, pos, worst);
		pos = worst;
	}
}

/* Restore the heap above pos */
static void
HeapUp(int32 *rows, float *weights, int pos)
{
	while (pos > 0)
	{
		int			parent = (pos - 1) / 2;

		if (!Better(weights[parent], rows[parent], weights[pos], rows[pos]))
			return;
		HeapSwap(rows, weights, pos, parent);
		pos = parent;
	}
}

/*
 * A key whose ascending unsigned order is the weight's descending order.
 * IEEE floats order like sign-magnitude integers: positives (sign bit
 * clear) get their magnitude bits complemented, so they come first,
 * largest first; negatives keep their bits, so they follow, smallest
 * magnitude first.
 */
static inline uint32
DescendingKey(float w)
{
	uint32		u;

	memcpy(&u, &w, sizeof(u));
	return (u & 0x80000000) ? u : ~u & 0x7FFFFFFF;
}

/*
 * Sort count (key, row) pairs by key, stably, with an LSD radix sort of
 * one pass per byte (a pass is skipped when all keys share that byte);
 * key2/row2 are scratch of the same size.  Returns true when the result
 * ended up in key2/row2.
 */
static bool
RadixSort(uint32 *key, int32 *row, uint32 *key2, int32 *row2, int count)
{
	int			hist[4][256];
	bool		swapped = false;

	if (count <= 1)
		return false;
	memset(hist, 0, sizeof(hist));
	for (int q = 0; q < count; q++)
		for (int b = 0; b < 4; b++)
			hist[b][(key[q] >> (8 * b)) & 0xFF]++;

	for (int b = 0; b < 4; b++)
	{
		int		   *h = hist[b];
		const uint32 *ks = swapped ? key2 : key;
		const int32 *rs = swapped ? row2 : row;
		uint32	   *kd = swapped ? key : key2;
		int32	   *rd = swapped ? row : row2;
		int			offset = 0;

		if (h[(ks[0] >> (8 * b)) & 0xFF] == count)
			continue;
		for (int v = 0; v < 256; v++)
		{
			int			c = h[v];

			h[v] = offset;
			offset += c;
		}
		for (int q = 0; q < count; q++)
		{
			int			dst = h[(ks[q] >> (8 * b)) & 0xFF]++;

			kd[dst] = ks[q];
			rd[dst] = rs[q];
		}
		swapped = !swapped;
	}
	return swapped;
}

/*
 * Every nonzero entry of row b (n entries) into rows/weights, best first;
 * keys and order are 2 n scratch each.  Returns how many.
 *
 * Why a radix sort: heap-sorting the n - 1 entries of every row made the
 * extraction take 19.6 s of CPU at 10,677 items (n log n branchy steps
 * per row); with four counting passes it takes 6.3 s, mostly first
 * touches of the 870 MB output.  Rows go in ascending and the sort is
 * stable, so ties come out by lower row.
 */
static int
KeepAll(const float *b, int n, uint32 *keys, int32 *order, int32 *rows,
		float *weights)
{
	int			count = 0;

	for (int j = 0; j < n; j++)
	{
		if (b[j] == 0.0f)
			continue;
		keys[count] = DescendingKey(b[j]);
		order[count++] = j;
	}
	if (RadixSort(keys, order, keys + n, order + n, count))
		order += n;
	for (int k = 0; k < count; k++)
	{
		rows[k] = order[k];
		weights[k] = b[order[k]];
	}
	return count;
}

/*
 * The cap largest positive entries of row b (n entries) into rows/weights,
 * best first.  Returns how many.
 *
 * A bounded heap in the output slots, worst entry at the root: once it is
 * full, almost every candidate is rejected by one comparison with the
 * root.  Candidates come in ascending row order, so one that only ties
 * the root loses the tie.  Then the heap is sorted in place.
 */
static int
KeepBest(const float *b, int n, int cap, int32 *rows, float *weights)
{
	float		bar = 0.0f;		/* positives only, until the heap is full */
	int			count = 0;

	for (int j = 0; j < n && cap > 0; j++)
	{
		if (!(b[j] > bar))
			continue;
		if (count < cap)
		{
			rows[count] = j;
			weights[count] = b[j];
			HeapUp(rows, weights, count++);
			if (count < cap)
				continue;
		}
		else
		{
			rows[0] = j;
			weights[0] = b[j];
			HeapDown(rows, weights, count, 0);
		}
		bar = weights[0];
	}

	/* Move the worst to the end until the best comes first */
	for (int k = count - 1; k > 0; k--)
	{
		HeapSwap(rows, weights, 0, k);
		HeapDown(rows, weights, k, 0);
	}
	return count;
}

/*
 * Rows [begin, end) of B into the graph (no PostgreSQL calls).
 *
 * Column i of the symmetrized P is row i of P; it becomes row i of B in
 * place (no other task reads it; the divisors come from the saved
 * diagonal), and its best entries go into the item's output slots.
 */
static bool
ExtractBody(void *arg, int thread, int begin, int end)
{
	EaseTask   *t = (EaseTask *) arg;
	KnnGraph   *out = t->out;
	const float *scale = t->scale;
	int			n = t->n;
	int			cap = out->neighbors;

	for (int i = begin; i < end; i++)
	{
		float	   *b = At(t, 0, i);
		int32	   *rows = out->rows + (Size) i * cap;
		float	   *weights = out->weights + (Size) i * cap;

		/*
		 * B_ij = P_ij * (-1 / P_jj): a product is several times cheaper
		 * than a division, and the extra rounding (6e-8 relative) is far
		 * below the float error of P
		 */
		for (int j = 0; j < n; j++)
			b[j] *= scale[j];
		b[i] = 0.0f;

		if (t->dense)
			out->count[i] = KeepAll(b, n,
									t->sort_keys + (Size) thread * 2 * n,
									t->sort_rows + (Size) thread * 2 * n,
									rows, weights);
		else
			out->count[i] = KeepBest(b, n, cap, rows, weights);
	}
	return true;
}

/* Seconds since start, and restart the clock */
static double
Lap(instr_time *start)
{
	instr_time	now;
	double		seconds;

	INSTR_TIME_SET_CURRENT(now);
	seconds = INSTR_TIME_GET_DOUBLE(now) - INSTR_TIME_GET_DOUBLE(*start);
	*start = now;
	return seconds;
}

/*
 * Build the EASE model of the interactions by_user (nusers x nitems, rows
 * sorted) with regularization lambda > 0, on nthreads threads, into out
 * (allocated here, in the current memory context).
 *
 * binary uses 1 for every interaction instead of its value.
 *
 * neighbors > 0 keeps, per item, its `neighbors` largest weights, and
 * only positive ones: a negative weight lowers the scores of the items it
 * points to, and the negatives that would fill a row with few positives
 * are the smallest in magnitude, so they hardly move a ranking.  (On the
 * 1M shape every item had 1,800 to 3,100 positive weights of 3,705, so
 * for up to 500 neighbours no negative would have been kept anyway;
 * precision@10 on a 20% holdout at lambda 3,000 was 93.0%, 94.0%, 94.6%
 * and 95.0% of the dense model's with 50, 100, 200 and 500 neighbours.)
 * neighbors = 0 keeps every nonzero weight, negatives included: the exact
 * dense model, n - 1 neighbours per item.
 *
 * The caller checks EaseMemory(nitems, neighbors, nthreads) against
 * maintenance_work_mem first.  Returns 0, or (with out unset):
 * EASE_NOT_POSITIVE_DEFINITE, lambda too small for float precision (only
 * for lambda <= 0 or a tiny lambda with a singular X^T X), or
 * EASE_VALUES_TOO_LARGE, X^T X overflows float (values over about 1e17 in
 * magnitude); the caller turns these into errors.  A cancel raises an
 * error between tiles.  stats, if not NULL, receives the phase timings.
 */
int
EaseBuild(const RecsysSparse *by_user, double lambda, bool binary,
		  int neighbors, int nthreads, KnnGraph *out, EaseStats *stats)
{
	int			n = by_user->ncols;
	int			cap = EaseNeighbors(n, neighbors);
	EaseTask	t;
	instr_time	clock;
	float	   *scale;
	Size		kept;
	int			status;

	if (n <= 0 || neighbors < 0)
		elog(ERROR, "invalid EASE input, please report a bug");
	nthreads = Max(1, Min(nthreads, PARALLEL_MAX_THREADS));

	memset(&t, 0, sizeof(t));
	t.n = n;
	t.by_user = by_user;
	t.lambda = (float) lambda;
	t.binary = binary;
	t.dense = neighbors == 0;
	t.out = out;
	INSTR_TIME_SET_CURRENT(clock);

	/* Only upper triangles are written until the symmetrizing copy */
	t.a = palloc_extended(mul_size(mul_size(n, n), sizeof(float)),
						  MCXT_ALLOC_HUGE);
	RunTiles(&t, (n + EASE_GRAM_COLUMNS - 1) / EASE_GRAM_COLUMNS, 1, GramBody,
			 nthreads);
	if ((status = TaskStatus(&t)) != 0)
	{
		pfree(t.a);
		return status;
	}
	if (stats)
		stats->gram = Lap(&clock);

	if (BlockedCholesky(&t, nthreads) != 0)
	{
		pfree(t.a);
		return EASE_NOT_POSITIVE_DEFINITE;
	}
	if (stats)
		stats->cholesky = Lap(&clock);

	t.panel = palloc_extended(mul_size(mul_size(n, EASE_PANEL), sizeof(float)),
							  MCXT_ALLOC_HUGE);
	t.diagonal = palloc(sizeof(float) * EASE_PANEL * EASE_PANEL);
	BlockedInverse(&t, nthreads);
	BlockedProduct(&t, nthreads);
	pfree(t.panel);
	pfree(t.diagonal);
	if (stats)
		stats->inverse = Lap(&clock);

	/*
	 * A finite positive diag(P) means a finite P (|P_ij| <= sqrt(P_ii P_jj),
	 * also for the partial sums of W W^T) and finite weights; P_jj is at
	 * least 1 / U_jj^2, so only an overflow of W = U^-1, from a nearly
	 * singular matrix, can break this.
	 */
	scale = palloc(sizeof(float) * n);
	for (int j = 0; j < n; j++)
	{
		float		pjj = *At(&t, j, j);

		if (!(pjj > 0.0f) || isinf(pjj))
		{
			pfree(scale);
			pfree(t.a);
			return EASE_NOT_POSITIVE_DEFINITE;
		}
		scale[j] = -1.0f / pjj;
	}
	t.scale = scale;
	kept = Max(mul_size(n, cap), 1);
	out->nitems = n;
	out->neighbors = cap;
	out->count = palloc0(sizeof(int32) * n);
	out->rows = palloc_extended(mul_size(kept, sizeof(int32)),
								MCXT_ALLOC_HUGE);
	out->weights = palloc_extended(mul_size(kept, sizeof(float)),
								   MCXT_ALLOC_HUGE);
	if (t.dense)
	{
		Size		scratch = mul_size(mul_size(n, 2), nthreads);

		t.sort_keys = palloc_extended(mul_size(scratch, sizeof(uint32)),
									  MCXT_ALLOC_HUGE);
		t.sort_rows = palloc_extended(mul_size(scratch, sizeof(int32)),
									  MCXT_ALLOC_HUGE);
	}
	RunTiles(&t, n, EASE_COPY_TILE, SymmetrizeBody, nthreads);
	RunTiles(&t, n, EASE_EXTRACT_ITEMS, ExtractBody, nthreads);
	pfree(t.a);
	pfree(scale);
	if (t.dense)
	{
		pfree(t.sort_keys);
		pfree(t.sort_rows);
	}
	if (stats)
		stats->extract = Lap(&clock);
	return 0;
}
