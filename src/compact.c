/*-------------------------------------------------------------------------
 *
 * compact.c
 *	  Compact scoring: 8-bit item codes with error bounds, exact answers.
 *
 * recommend() over a catalog of thousands of items is bound by reading the
 * item matrix (n x k floats: 2.7 MB at 10,677 items and k = 64, more than a
 * core's L2) for every call.  A copy with one byte per factor is a quarter
 * of that and stays in L2 up to ~15,000 items at k = 64.  It gives an
 * approximate score and a rigorous interval around the exact one for every
 * item; only the items whose interval can still reach the top n are scored
 * exactly, from the float matrix, with the very kernel the plain path uses
 * (SimdScoreRows), and the n best of them are picked with TopK's order.  The
 * answer (items, scores to the bit, order, ties by id) is the plain path's,
 * always: nothing here is a heuristic, only the amount of work depends on
 * how good the bounds are.
 *
 * The codes (built once per cached model version, kept with the item data:
 * private, or in the shared cache blob):
 *	q_i = s_i c_i + e_i,  s_i = max_f |q_if| / 127,  c_if = round(q_if / s_i)
 * in [-127, 127], stored as unsigned bytes c + 128; per item the scale s_i,
 * an upper bound of ||q_i|| and of ||e_i|| (computed in double from the
 * float factors and rounded up), and a padded copy of the biases when any
 * is non-zero.  Why one scale per item rather than per dimension or per
 * matrix: item vectors differ in length by orders of magnitude (popular
 * items are long), and a per-item scale keeps every item's relative error
 * the same, ~0.5%.  Why ||e_i||_2 rather than the s_i / 2 per dimension
 * that rounding guarantees: Cauchy-Schwarz with the measured ||e_i|| is
 * about sqrt(3) times tighter than (s_i / 2) ||x||_1 for these errors.
 *
 * The codes are laid out in blocks of 16 items: for each group of 4
 * dimensions, 16 x 4 bytes (item l's 4 bytes at 4 l).  One 512-bit
 * multiply-accumulate (AVX-512 VNNI vpdpbusd) then takes 4 dimensions of
 * 16 items against the user's 4 bytes broadcast, and leaves 16 sums in 16
 * lanes: no horizontal sums per item (which would cost more than the
 * products at k = 64); AVX2 does the same 8 items at a time.
 *
 * The user vector x is quantized the same way (x = t d + r, d in [-L, L],
 * L = 127, or 64 for the AVX2 kernel, whose 16-bit pair sums must not
 * saturate), so that the inner loop is integer: D_i = d . c_i exactly.
 * Why not keep x in float and convert the codes on the fly: that is three
 * instructions per 8 factors instead of one per 64; quantizing x costs one
 * more error term, which the bound carries.  With P_i = x . q_i (real):
 *	P_i = t s_i D_i + (t d) . e_i + r . q_i, so
 *	|P_i - t s_i D_i| <= ||t d|| ||e_i|| + ||r|| ||q_i||.
 * The float score F_i that the plain path returns differs from P_i (+ the
 * bias term a_i) by its rounding: at most gamma_k ||x|| ||q_i|| + u |a_i|
 * for any summation order (Higham, Accuracy and Stability of Numerical
 * Algorithms, 2nd ed., section 3.1), u = 2^-24; the approximate score A_i,
 * the bound w_i and A_i +- w_i are floats too.  CompactBounds folds all of
 * these into the coefficients with a factor of two to spare (gamma below),
 * plus an absolute 1e-36 for underflow, so that for every item
 *	lower_i = A_i - w_i <= F_i <= A_i + w_i = upper_i
 * holds for the floats themselves.  When a user vector or model is so large
 * that any of this could overflow, the plain path is used instead.
 *
 * Selection: theta = the n-th largest lower bound among the items that are
 * not excluded; an item with upper_j < theta is beaten by n items with
 * F >= lower >= theta > upper_j >= F_j, strictly, so it cannot be in the
 * top n whatever the tie-breaking.  The others (usually a few dozen) are
 * scored exactly.  One pass finds both: a heap of the n best lower bounds
 * so far gives a rising theta, and only items whose upper bound reaches the
 * current theta are looked at (a vector compare skips 16 at a time); a
 * final filter against the last theta drops the early ones.
 *
 * Excluded items (exclude_seen, exclude, candidates) get upper = -inf, the
 * same sentinel the plain path writes into its scores, by the same code
 * (recommend.c): -inf is below any theta, so they are never looked at.
 *
 * When it pays: recsys.compact_scoring = on uses it for catalogs of at
 * least COMPACT_MIN_ITEMS items when n is at most a COMPACT_MAX_SHARE-th
 * of them, on CPUs with AVX2 (the plain C kernel is slower than scoring
 * every item exactly); off never (the plain path, to compare); always
 * whenever a model has codes (tests, and recsys.vector_kernels = generic
 * to test the plain C kernel).
 *
 * IDENTIFICATION
 *	  src/compact.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "compact.h"
#include "simd.h"
#include "topk.h"
#include "utils/guc.h"

/*
 * Smallest catalog recsys.compact_scoring = on uses compact scoring for.
 * Below, the float matrix (256 bytes per item at k = 64) fits in L2 and
 * the first pass saves little; at 3,706 items compact scoring already
 * halves the p50 (doc/performance.md).
 */
#define COMPACT_MIN_ITEMS 1000

/*
 * Compact scoring for n up to a quarter of the catalog: measured at 3,706
 * items (p50, k = 64), 30% faster at n = 10 and 100, level at n = 500 and
 * 900 (emitting the rows dominates); at 10,677 items still 15-25% faster
 * at n = 500 and 900.
 */
#define COMPACT_MAX_SHARE 4

/* Unit roundoff of float */
#define FLOAT_U (1.0 / 16777216.0)

int			recsys_compact_scoring = COMPACT_ON;

static const struct config_enum_entry compact_scoring_options[] = {
	{"on", COMPACT_ON, false},
	{"off", COMPACT_OFF, false},
	{"always", COMPACT_ALWAYS, false},
	{"true", COMPACT_ON, true},
	{"false", COMPACT_OFF, true},
	{"yes", COMPACT_ON, true},
	{"no", COMPACT_OFF, true},
	{"1", COMPACT_ON, true},
	{"0", COMPACT_OFF, true},
	{NULL, 0, false}
};

/* The head of a chunk of codes; the arrays follow, each on a cache line */
typedef struct CompactHeader
{
	int32		n;
	int32		k;
	int32		groups;
	int32		nblocks;
	int32		has_bias;
	float		max_qnorm;
	float		max_enorm;
	float		max_bias;
} CompactHeader;

/* Where each array of a chunk starts */
typedef struct ChunkLayout
{
	Size		codes;
	Size		scale;
	Size		qnorm;
	Size		enorm;
	Size		bias;
	Size		total;
} ChunkLayout;

/* Define recsys.compact_scoring (from SimdInit, in _PG_init) */
void
CompactInit(void)
{
	DefineCustomEnumVariable("recsys.compact_scoring",
							 "Scores items from 8-bit codes first and exactly only where the answer can change.",
							 "on uses it where it is faster (large catalogs, small n); off always scores every item exactly; always uses it whenever a model has codes. Answers are the same either way.",
							 &recsys_compact_scoring,
							 COMPACT_ON,
							 compact_scoring_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/* The layout of a chunk for n items of k factors */
static ChunkLayout
LayoutChunk(int n, int k, bool has_bias)
{
	ChunkLayout l;
	int			groups = (k + 3) / 4;
	Size		npad = (Size) ((n + SIMD_CODE_BLOCK - 1) / SIMD_CODE_BLOCK) * SIMD_CODE_BLOCK;
	Size		off = TYPEALIGN(64, sizeof(CompactHeader));

	l.codes = off;
	off = TYPEALIGN(64, off + npad * groups * 4);
	l.scale = off;
	off = TYPEALIGN(64, off + sizeof(float) * npad);
	l.qnorm = off;
	off = TYPEALIGN(64, off + sizeof(float) * npad);
	l.enorm = off;
	off = TYPEALIGN(64, off + sizeof(float) * npad);
	l.bias = off;
	if (has_bias)
		off = TYPEALIGN(64, off + sizeof(float) * npad);
	l.total = off;
	return l;
}

/* The smallest float >= v (v >= 0; +inf past the float range) */
static float
FloatAtLeast(double v)
{
	float		f = (float) v;

	if ((double) f < v)
		f = nextafterf(f, INFINITY);
	return f;
}

/*
 * Build the codes of a model's item factors into a new chunk (palloc'd in
 * the current context, *size bytes, position independent: it may be
 * copied into shared memory as it is).
 */
char *
CompactBuild(const RecsysFactors *items, Size *size)
{
	int			n = items->n;
	int			k = items->k;
	bool		has_bias = false;
	ChunkLayout l;
	char	   *chunk;
	CompactHeader *h;
	uint8	   *codes;
	float	   *scale;
	float	   *qnorm;
	float	   *enorm;
	double		max_bias = 0.0;
	float		max_qnorm = 0.0f;
	float		max_enorm = 0.0f;

	Assert(k > 0 && k <= RECSYS_MAX_FACTORS);
	for (int i = 0; i < n; i++)
		if (items->bias[i] != 0.0f)
			has_bias = true;
	l = LayoutChunk(n, k, has_bias);
	chunk = palloc_extended(l.total, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	h = (CompactHeader *) chunk;
	h->n = n;
	h->k = k;
	h->groups = (k + 3) / 4;
	h->nblocks = (n + SIMD_CODE_BLOCK - 1) / SIMD_CODE_BLOCK;
	h->has_bias = has_bias;
	codes = (uint8 *) (chunk + l.codes);
	scale = (float *) (chunk + l.scale);
	qnorm = (float *) (chunk + l.qnorm);
	enorm = (float *) (chunk + l.enorm);

	/* Code 128 is 0: padding dimensions and items contribute nothing */
	memset(codes, 128, l.scale - l.codes);
	for (int i = 0; i < n; i++)
	{
		const float *q = items->factors + (Size) i * k;
		uint8	   *block = codes + (Size) (i / SIMD_CODE_BLOCK) * h->groups * 64 +
			(i % SIMD_CODE_BLOCK) * 4;
		double		maxabs = 0.0;
		double		sq = 0.0;
		double		se = 0.0;
		float		s;

		for (int f = 0; f < k; f++)
			maxabs = Max(maxabs, fabs((double) q[f]));
		s = (float) (maxabs / 127.0);
		for (int f = 0; f < k; f++)
		{
			/* s * c is exact in double (24 + 8 bits), so e is q's own error */
			double		c = s > 0.0f ? rint((double) q[f] / s) : 0.0;
			double		e;

			c = Max(-127.0, Min(127.0, c));
			e = (double) q[f] - (double) s * c;
			sq += (double) q[f] * q[f];
			se += e * e;
			block[(Size) (f / 4) * 64 + f % 4] = (uint8) (int) (c + 128.0);
		}
		scale[i] = s;
		/* Double sums of k <= 1024 terms err by < 1e-13 relative */
		qnorm[i] = FloatAtLeast(sqrt(sq) * (1.0 + 1e-12));
		enorm[i] = FloatAtLeast(sqrt(se) * (1.0 + 1e-12));
		max_qnorm = Max(max_qnorm, qnorm[i]);
		max_enorm = Max(max_enorm, enorm[i]);
	}
	if (has_bias)
	{
		float	   *bias = (float *) (chunk + l.bias);

		memcpy(bias, items->bias, sizeof(float) * n);
		for (int i = 0; i < n; i++)
			max_bias = Max(max_bias, fabs((double) bias[i]));
	}
	h->max_qnorm = max_qnorm;
	h->max_enorm = max_enorm;
	h->max_bias = (float) max_bias;
	*size = l.total;
	return chunk;
}

/* The bytes of a chunk built by CompactBuild */
Size
CompactChunkSize(const char *chunk)
{
	const CompactHeader *h = (const CompactHeader *) chunk;

	return LayoutChunk(h->n, h->k, h->has_bias).total;
}

/* A view of a chunk built by CompactBuild (wherever it now is) */
void
CompactAttach(const char *chunk, CompactItems *c)
{
	const CompactHeader *h = (const CompactHeader *) chunk;
	ChunkLayout l = LayoutChunk(h->n, h->k, h->has_bias);

	c->n = h->n;
	c->k = h->k;
	c->groups = h->groups;
	c->nblocks = h->nblocks;
	c->max_qnorm = h->max_qnorm;
	c->max_enorm = h->max_enorm;
	c->max_bias = h->max_bias;
	c->codes = (const uint8 *) (chunk + l.codes);
	c->scale = (const float *) (chunk + l.scale);
	c->qnorm = (const float *) (chunk + l.qnorm);
	c->enorm = (const float *) (chunk + l.enorm);
	c->bias = h->has_bias ? (const float *) (chunk + l.bias) : NULL;
}

/* Items rounded up to whole blocks: the length of the bound arrays */
int
CompactPadded(const CompactItems *c)
{
	return c->nblocks * SIMD_CODE_BLOCK;
}

/* Whether recommending n items should use compact scoring (the setting) */
bool
CompactWanted(const CompactItems *c, int n)
{
	if (c == NULL || recsys_compact_scoring == COMPACT_OFF)
		return false;
	if (recsys_compact_scoring == COMPACT_ALWAYS)
		return true;
	return SimdCodesVector && c->n >= COMPACT_MIN_ITEMS &&
		(int64) n * COMPACT_MAX_SHARE <= (int64) c->n;
}

/*
 * First pass: bounds of every item's score for the user vector x (k
 * floats) and base (mu + b_u) into upper and lower (CompactPadded floats
 * each; padding gets -inf): lower_i <= F_i <= upper_i, F_i the float score
 * ScoreFactors computes.  false when the numbers are too large for the
 * bounds to be safe (then score the plain way).
 */
bool
CompactBounds(const CompactItems *c, const float *x, float base,
			  bool zero_bias, float *upper, float *lower)
{
	int			k = c->k;
	int			levels = SimdCodeLevels;
	int8		d[RECSYS_MAX_FACTORS + 4];
	int32		words[(RECSYS_MAX_FACTORS + 4) / 4];
	double		maxabs = 0.0;
	double		nx = 0.0;		/* ||x||^2, then ||x|| */
	double		nxq = 0.0;		/* ||t d||^2, then ||t d|| */
	double		nr = 0.0;		/* ||x - t d||^2, then ||x - t d|| */
	double		gamma;
	int64		sumd = 0;
	float		t;
	SimdCodeArgs a;

	for (int f = 0; f < k; f++)
	{
		maxabs = Max(maxabs, fabs((double) x[f]));
		nx += (double) x[f] * x[f];
	}
	t = (float) (maxabs / levels);
	memset(d, 0, sizeof(int8) * c->groups * 4);
	for (int f = 0; f < k; f++)
	{
		double		v = t > 0.0f ? rint((double) x[f] / t) : 0.0;
		double		xq;

		v = Max(-levels, Min(levels, v));
		d[f] = (int8) v;
		sumd += (int64) v;
		xq = (double) t * v;	/* exact in double */
		nxq += xq * xq;
		nr += ((double) x[f] - xq) * ((double) x[f] - xq);
	}
	memcpy(words, d, sizeof(int32) * c->groups);
	nx = sqrt(nx) * (1.0 + 1e-12);
	nxq = sqrt(nxq) * (1.0 + 1e-12);
	nr = sqrt(nr) * (1.0 + 1e-12);

	/*
	 * Too large to bound safely in float (or not finite): scores or bounds
	 * near 1e36 would leave no room for the rounding terms.
	 */
	if (!(nx * c->max_qnorm + nxq * ((double) c->max_qnorm + c->max_enorm) +
		  fabs((double) base) + c->max_bias < 1e36))
		return false;

	/*
	 * gamma: twice the rounding the bound must absorb (see the file
	 * header): k + 2 roundings of the exact dot product and its bias sum,
	 * about 5 of the approximation, and 1 each of A +- w.
	 */
	gamma = 2.0 * (k + 8) * FLOAT_U;
	a.codes = c->codes;
	a.nblocks = c->nblocks;
	a.groups = c->groups;
	a.xwords = words;
	a.offset = (int32) (128 * sumd);
	a.t = t;
	a.scale = c->scale;
	a.qnorm = c->qnorm;
	a.enorm = c->enorm;
	a.bias = c->bias;
	a.base = base;
	/* The plain path adds base + b_i unless that adds only zeros */
	a.add = base != 0.0f || !zero_bias;
	a.ca = FloatAtLeast((nr + gamma * (nx + nxq)) * (1.0 + gamma));
	a.cb = FloatAtLeast(nxq * (1.0 + gamma));
	a.cc = FloatAtLeast(gamma);
	a.cz = 1e-36f;
	a.upper = upper;
	a.lower = lower;
	SimdCodeBounds(&a);
	for (int i = c->n; i < CompactPadded(c); i++)
		upper[i] = lower[i] = TOPK_EXCLUDED;
	return true;
}

/* Restore the min-heap property below position i */
static void
HeapDown(float *heap, int size, int i)
{
	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			least = i;
		float		tmp;

		if (l < size && heap[l] < heap[least])
			least = l;
		if (r < size && heap[r] < heap[least])
			least = r;
		if (least == i)
			return;
		tmp = heap[i];
		heap[i] = heap[least];
		heap[least] = tmp;
		i = least;
	}
}

/* Restore the min-heap property above position i */
static void
HeapUp(float *heap, int i)
{
	while (i > 0)
	{
		int			parent = (i - 1) / 2;
		float		tmp;

		if (heap[parent] <= heap[i])
			return;
		tmp = heap[i];
		heap[i] = heap[parent];
		heap[parent] = tmp;
		i = parent;
	}
}

/*
 * Second pass: the n best items (n <= items), exactly as TopK over the
 * plain path's scores would pick them, from the bounds of CompactBounds
 * (excluded items' upper bounds set to TOPK_EXCLUDED since).  The items
 * that can reach the top n are scored exactly into scores (by row; the
 * other entries are left alone), their rows go to candidates (one entry
 * per item), and the chosen rows, best first, to out (n entries).
 * Returns how many were chosen.
 */
int
CompactTopK(const CompactItems *c, const RecsysFactors *items, bool zero_bias,
			const float *x, float base, const float *upper,
			const float *lower, int n, float *scores, int32 *candidates,
			int32 *out)
{
	int			npad = CompactPadded(c);
	float	   *heap;
	int			size = 0;
	int			ncand = 0;
	int			kept = 0;
	float		theta = -FLT_MAX;	/* no threshold until n are seen */

	if (n <= 0)
		return 0;
	heap = palloc(sizeof(float) * n);
	for (int i = 0; (i = SimdNextAtLeast(upper, i, npad, theta)) < npad; i++)
	{
		float		lo = lower[i];

		candidates[ncand++] = i;
		if (size < n)
		{
			heap[size] = lo;
			HeapUp(heap, size++);
			if (size == n)
				theta = heap[0];
		}
		else if (lo > heap[0])
		{
			heap[0] = lo;
			HeapDown(heap, size, 0);
			theta = heap[0];
		}
	}
	pfree(heap);

	/* The threshold only rose: drop the candidates it overtook */
	for (int j = 0; j < ncand; j++)
		if (upper[candidates[j]] >= theta)
			candidates[kept++] = candidates[j];

	/* Exactly as ScoreFactors computes them, bit for bit */
	SimdScoreRows(x, items->factors, items->k, candidates, kept, scores);
	if (base != 0.0f || !zero_bias)
		for (int j = 0; j < kept; j++)
			scores[candidates[j]] += base + items->bias[candidates[j]];

	elog(DEBUG2, "compact scoring: %d of %d items scored exactly (%d looked at)",
		 kept, c->n, ncand);
	return TopKRows(scores, items->ids, candidates, kept, n, out);
}
