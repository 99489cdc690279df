/*-------------------------------------------------------------------------
 *
 * simd.c
 *	  Vector kernels over scattered factor rows, chosen for the CPU.
 *
 * The conjugate-gradient solver of implicit ALS multiplies, for every row
 * and step, the row's item vectors (scattered through the factor matrix)
 * by a vector and accumulates them back: per item one dot product and one
 * axpy of k floats.  These loops are most of its time, so they are written
 * with vector types here, once for baseline x86-64 (SSE2: two 4-float
 * vectors) and once for CPUs with AVX2 and FMA (8-float vectors, fused
 * multiply-adds), picked at load time with __builtin_cpu_supports: the
 * extension stays one portable binary (as Debian builds it) that uses the
 * wider units where they exist.  Why not BLAS: the rows are scattered, so
 * BLAS needs them gathered first (a copy of every row per half-step), and
 * OpenBLAS's sgemv is slow on matrices this small (tens to hundreds of
 * rows of 64); fusing the dot product and the axpy reads each row once per
 * step and keeps it in L1 for the second use.
 *
 * Results depend on the kernel (FMA rounds once, separate multiply and add
 * twice) but not on threads: each row is computed by one call, in a fixed
 * order.  recsys.vector_kernels = generic forces the baseline kernels (the
 * regression tests compare the two).
 *
 * Serving has kernels here too (src/score.c, src/compact.c): exact scores
 * of many factor rows, whose every row's float must not depend on which
 * other rows are scored with it; and the 8-bit kernels of compact scoring
 * (AVX-512 VNNI, AVX2, or plain C), which bound every item's score from a
 * quarter of the bytes.
 *
 * Nothing here calls PostgreSQL; the kernels run on training threads.
 *
 * IDENTIFICATION
 *	  src/simd.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SIMD_X86_DISPATCH 1
#include <immintrin.h>
#endif

#include "compact.h"
#include "simd.h"
#include "utils/guc.h"

/* acc += coef * y, 4 floats at a time */
static inline void
AxpyGeneric(float coef, const float *y, int k, float *acc)
{
	SimdFloat4	c = {coef, coef, coef, coef};
	int			f = 0;

	for (; f + 4 <= k; f += 4)
	{
		SimdFloat4	a;
		SimdFloat4	b;

		memcpy(&a, acc + f, sizeof(a));
		memcpy(&b, y + f, sizeof(b));
		a += c * b;
		memcpy(acc + f, &a, sizeof(a));
	}
	for (; f < k; f++)
		acc[f] += coef * y[f];
}

/* SimdSparseUpdate for any x86-64 (or other) CPU */
static void
SparseUpdateGeneric(const float *Y, const int32 *cols, const float *w, int n,
					int k, float c0, float c1, float c2, const float *v,
					float *acc)
{
	for (int j = 0; j < n; j++)
	{
		const float *y = Y + (Size) cols[j] * k;
		float		s = SimdDotGeneric(y, v, k);

		AxpyGeneric(c0 + w[j] * (c1 + c2 * s), y, k, acc);
	}
}

/* SimdScoreRows for any CPU: the baseline dot product, row by row */
static void
ScoreRowsGeneric(const float *x, const float *Q, int k, const int32 *rows,
				 int count, float *out)
{
	if (rows == NULL)
		for (int i = 0; i < count; i++)
			out[i] = SimdDotGeneric(x, Q + (Size) i * k, k);
	else
		for (int j = 0; j < count; j++)
			out[rows[j]] = SimdDotGeneric(x, Q + (Size) rows[j] * k, k);
}

/*
 * SimdCodeBounds for any CPU: integer dot products of each block's 16
 * items, then the bounds.  The same arithmetic as the vector kernels (an
 * exact integer sum, then the same float operations), in plain C.
 */
static void
CodeBoundsGeneric(const SimdCodeArgs *a)
{
	for (int b = 0; b < a->nblocks; b++)
	{
		const uint8 *c = a->codes + (Size) b * a->groups * 64;
		int32		acc[SIMD_CODE_BLOCK] = {0};

		for (int g = 0; g < a->groups; g++)
		{
			int8		d[4];

			memcpy(d, &a->xwords[g], sizeof(d));
			for (int l = 0; l < SIMD_CODE_BLOCK; l++)
			{
				const uint8 *u = c + (Size) g * 64 + l * 4;

				acc[l] += u[0] * d[0] + u[1] * d[1] + u[2] * d[2] + u[3] * d[3];
			}
		}
		for (int l = 0; l < SIMD_CODE_BLOCK; l++)
		{
			int			i = b * SIMD_CODE_BLOCK + l;
			float		approx = (float) (acc[l] - a->offset) * (a->scale[i] * a->t);
			float		w = (a->ca * a->qnorm[i] + a->cb * a->enorm[i]) + a->cz;

			if (a->add)
			{
				float		add = a->base + (a->bias ? a->bias[i] : 0.0f);

				approx += add;
				w += a->cc * fabsf(add);
			}
			a->upper[i] = approx + w;
			a->lower[i] = approx - w;
		}
	}
}

/* SimdNextAtLeast for any CPU */
static int
NextAtLeastGeneric(const float *v, int from, int count, float theta)
{
	for (int i = from; i < count; i++)
		if (v[i] >= theta)
			return i;
	return count;
}

#ifdef SIMD_X86_DISPATCH

typedef float Float8 __attribute__((vector_size(32)));

/*
 * Dot product with four 8-float vectors and fused multiply-adds.  Why four
 * accumulators and a pairwise final sum: each item's dot product is on the
 * critical path of its axpy, so its latency (not its throughput) counts;
 * four chains and a three-level sum of the lanes keep it short.
 */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline float
DotAvx2(const float *x, const float *y, int k)
{
	Float8		s0 = {0};
	Float8		s1 = {0};
	Float8		s2 = {0};
	Float8		s3 = {0};
	float		t[8];
	float		sum = 0.0f;
	int			f = 0;

	for (; f + 32 <= k; f += 32)
	{
		Float8		a0,
					a1,
					a2,
					a3,
					b0,
					b1,
					b2,
					b3;

		memcpy(&a0, x + f, sizeof(a0));
		memcpy(&a1, x + f + 8, sizeof(a1));
		memcpy(&a2, x + f + 16, sizeof(a2));
		memcpy(&a3, x + f + 24, sizeof(a3));
		memcpy(&b0, y + f, sizeof(b0));
		memcpy(&b1, y + f + 8, sizeof(b1));
		memcpy(&b2, y + f + 16, sizeof(b2));
		memcpy(&b3, y + f + 24, sizeof(b3));
		s0 += a0 * b0;
		s1 += a1 * b1;
		s2 += a2 * b2;
		s3 += a3 * b3;
	}
	for (; f + 8 <= k; f += 8)
	{
		Float8		a;
		Float8		b;

		memcpy(&a, x + f, sizeof(a));
		memcpy(&b, y + f, sizeof(b));
		s0 += a * b;
	}
	for (int j = f; j < k; j++)
		sum += x[j] * y[j];
	s0 = (s0 + s1) + (s2 + s3);
	memcpy(t, &s0, sizeof(t));
	return sum + (((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7])));
}

/* SimdSparseUpdate with AVX2 and FMA */
__attribute__((target("avx2,fma")))
static void
SparseUpdateAvx2(const float *Y, const int32 *cols, const float *w, int n,
				 int k, float c0, float c1, float c2, const float *v,
				 float *acc)
{
	for (int j = 0; j < n; j++)
	{
		const float *y = Y + (Size) cols[j] * k;
		float		coef;
		Float8		c;
		int			f = 0;

		coef = c0 + w[j] * (c1 + c2 * DotAvx2(y, v, k));
		c = (Float8) {coef, coef, coef, coef, coef, coef, coef, coef};

		/* The row was just read for the dot product: it is in L1 */
		for (; f + 8 <= k; f += 8)
		{
			Float8		a;
			Float8		b;

			memcpy(&a, acc + f, sizeof(a));
			memcpy(&b, y + f, sizeof(b));
			a += c * b;
			memcpy(acc + f, &a, sizeof(a));
		}
		for (; f < k; f++)
			acc[f] += coef * y[f];
	}
}

/*
 * The exact serving kernel, one row: x . q as eight-float partial sums
 * (four chains of fused multiply-adds, added pairwise), the eight lanes
 * summed in the fixed tree ((0+1)+(2+3))+((4+5)+(6+7)), then the k mod 8
 * trailing products.  Explicit intrinsics, so the compiler has no choice
 * of contraction or order: the batch form below must give the same float.
 */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline __m256
RowSumsAvx2(const float *x, const float *q, int k)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	__m256		s2 = _mm256_setzero_ps();
	__m256		s3 = _mm256_setzero_ps();
	int			f = 0;

	for (; f + 32 <= k; f += 32)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + f), _mm256_loadu_ps(q + f), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + f + 8), _mm256_loadu_ps(q + f + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + f + 16), _mm256_loadu_ps(q + f + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + f + 24), _mm256_loadu_ps(q + f + 24), s3);
	}
	for (; f + 8 <= k; f += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + f), _mm256_loadu_ps(q + f), s0);
	return _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
}

/* The k mod 8 trailing products of a row, in order */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline float
RowTailAvx2(const float *x, const float *q, int k)
{
	float		t = 0.0f;

	for (int f = k & ~7; f < k; f++)
		t = __builtin_fmaf(x[f], q[f], t);
	return t;
}

/* One row's exact score: the lanes' fixed tree, then the tail */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline float
RowDotAvx2(const float *x, const float *q, int k)
{
	float		t[8];
	float		r;

	_mm256_storeu_ps(t, RowSumsAvx2(x, q, k));
	r = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
	if (k & 7)
		r += RowTailAvx2(x, q, k);
	return r;
}

/*
 * SimdScoreRows with AVX2 and FMA.  Eight rows at a time share the lane
 * sums: two rounds of horizontal adds and one of 128-bit halves compute,
 * for each row, exactly the tree of RowDotAvx2 (a + b is b + a in IEEE
 * arithmetic, so only the tree's shape matters); leftover rows go one by
 * one.
 */
__attribute__((target("avx2,fma")))
static void
ScoreRowsAvx2(const float *x, const float *Q, int k, const int32 *rows,
			  int count, float *out)
{
	int			j = 0;

	for (; j + 8 <= count; j += 8)
	{
		__m256		a[8];
		__m256		h0;
		__m256		h1;
		float		sum[8];

		for (int r = 0; r < 8; r++)
			a[r] = RowSumsAvx2(x, Q + (Size) (rows ? rows[j + r] : j + r) * k, k);
		h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
		h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
		_mm256_storeu_ps(sum, _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20),
											_mm256_permute2f128_ps(h0, h1, 0x31)));
		for (int r = 0; r < 8; r++)
		{
			int32		row = rows ? rows[j + r] : j + r;
			float		v = sum[r];

			if (k & 7)
				v += RowTailAvx2(x, Q + (Size) row * k, k);
			out[row] = v;
		}
	}
	for (; j < count; j++)
	{
		int32		row = rows ? rows[j] : j;

		out[row] = RowDotAvx2(x, Q + (Size) row * k, k);
	}
}

/*
 * The float half of a code kernel for 8 items at i: A = D (scale t) [+ a],
 * w = ca qnorm + cb enorm [+ cc |a|], upper and lower.
 */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline void
BoundsAvx2(const SimdCodeArgs *a, int i, __m256i dot)
{
	__m256		d = _mm256_cvtepi32_ps(dot);
	__m256		approx = _mm256_mul_ps(d, _mm256_mul_ps(_mm256_loadu_ps(a->scale + i),
													   _mm256_set1_ps(a->t)));
	__m256		w = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(a->ca), _mm256_loadu_ps(a->qnorm + i)),
												_mm256_mul_ps(_mm256_set1_ps(a->cb), _mm256_loadu_ps(a->enorm + i))),
								  _mm256_set1_ps(a->cz));

	if (a->add)
	{
		__m256		add = _mm256_set1_ps(a->base);
		__m256		mag;

		if (a->bias)
			add = _mm256_add_ps(add, _mm256_loadu_ps(a->bias + i));
		mag = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), add);
		approx = _mm256_add_ps(approx, add);
		w = _mm256_add_ps(w, _mm256_mul_ps(_mm256_set1_ps(a->cc), mag));
	}
	_mm256_storeu_ps(a->upper + i, _mm256_add_ps(approx, w));
	_mm256_storeu_ps(a->lower + i, _mm256_sub_ps(approx, w));
}

/*
 * SimdCodeBounds with AVX2: per 4 dimensions and 8 items, one multiply of
 * unsigned codes by the signed user bytes into 16-bit pair sums
 * (vpmaddubsw: |d| <= 64 keeps 2 * 255 * 64 below its saturation), then
 * into 32-bit sums (vpmaddwd by ones).
 */
__attribute__((target("avx2,fma")))
static void
CodeBoundsAvx2(const SimdCodeArgs *a)
{
	const __m256i ones = _mm256_set1_epi16(1);
	const __m256i off = _mm256_set1_epi32(a->offset);

	for (int b = 0; b < a->nblocks; b++)
	{
		const uint8 *c = a->codes + (Size) b * a->groups * 64;
		__m256i		lo = _mm256_setzero_si256();
		__m256i		hi = _mm256_setzero_si256();

		for (int g = 0; g < a->groups; g++)
		{
			__m256i		xb = _mm256_set1_epi32(a->xwords[g]);
			__m256i		c0 = _mm256_loadu_si256((const __m256i *) (c + (Size) g * 64));
			__m256i		c1 = _mm256_loadu_si256((const __m256i *) (c + (Size) g * 64 + 32));

			lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_maddubs_epi16(c0, xb), ones));
			hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_maddubs_epi16(c1, xb), ones));
		}
		BoundsAvx2(a, b * SIMD_CODE_BLOCK, _mm256_sub_epi32(lo, off));
		BoundsAvx2(a, b * SIMD_CODE_BLOCK + 8, _mm256_sub_epi32(hi, off));
	}
}

/* The float half of a code kernel for the 16 items at i (see BoundsAvx2) */
__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
static pg_attribute_always_inline void
BoundsVnni(const SimdCodeArgs *a, int i, __m512i dot)
{
	__m512		approx = _mm512_mul_ps(_mm512_cvtepi32_ps(dot),
									   _mm512_mul_ps(_mm512_loadu_ps(a->scale + i),
													 _mm512_set1_ps(a->t)));
	__m512		w = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(a->ca),
															  _mm512_loadu_ps(a->qnorm + i)),
												_mm512_mul_ps(_mm512_set1_ps(a->cb),
															  _mm512_loadu_ps(a->enorm + i))),
								  _mm512_set1_ps(a->cz));

	if (a->add)
	{
		__m512		add = _mm512_set1_ps(a->base);

		if (a->bias)
			add = _mm512_add_ps(add, _mm512_loadu_ps(a->bias + i));
		approx = _mm512_add_ps(approx, add);
		w = _mm512_add_ps(w, _mm512_mul_ps(_mm512_set1_ps(a->cc), _mm512_abs_ps(add)));
	}
	_mm512_storeu_ps(a->upper + i, _mm512_add_ps(approx, w));
	_mm512_storeu_ps(a->lower + i, _mm512_sub_ps(approx, w));
}

/*
 * SimdCodeBounds with AVX-512 VNNI: one vpdpbusd per 4 dimensions and 16
 * items (unsigned codes times signed user bytes, summed into 32 bits with
 * no saturation).  Two blocks at a time share each broadcast of the user's
 * bytes and give two independent chains.
 */
__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma")))
static void
CodeBoundsVnni(const SimdCodeArgs *a)
{
	const __m512i off = _mm512_set1_epi32(a->offset);
	Size		stride = (Size) a->groups * 64;
	int			b = 0;

	for (; b + 2 <= a->nblocks; b += 2)
	{
		const uint8 *c = a->codes + (Size) b * stride;
		__m512i		s0 = _mm512_setzero_si512();
		__m512i		s1 = _mm512_setzero_si512();

		for (int g = 0; g < a->groups; g++)
		{
			__m512i		xb = _mm512_set1_epi32(a->xwords[g]);

			s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + (Size) g * 64), xb);
			s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(c + stride + (Size) g * 64), xb);
		}
		BoundsVnni(a, b * SIMD_CODE_BLOCK, _mm512_sub_epi32(s0, off));
		BoundsVnni(a, (b + 1) * SIMD_CODE_BLOCK, _mm512_sub_epi32(s1, off));
	}
	if (b < a->nblocks)
	{
		const uint8 *c = a->codes + (Size) b * stride;
		__m512i		s0 = _mm512_setzero_si512();

		for (int g = 0; g < a->groups; g++)
			s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + (Size) g * 64),
									 _mm512_set1_epi32(a->xwords[g]));
		BoundsVnni(a, b * SIMD_CODE_BLOCK, _mm512_sub_epi32(s0, off));
	}
}

/* SimdNextAtLeast with AVX2: 16 values per step, one test */
__attribute__((target("avx2")))
static int
NextAtLeastAvx2(const float *v, int from, int count, float theta)
{
	const __m256 th = _mm256_set1_ps(theta);
	int			i = from;

	for (; i + 16 <= count; i += 16)
	{
		__m256		m0 = _mm256_cmp_ps(_mm256_loadu_ps(v + i), th, _CMP_GE_OQ);
		__m256		m1 = _mm256_cmp_ps(_mm256_loadu_ps(v + i + 8), th, _CMP_GE_OQ);

		if (!_mm256_testz_ps(_mm256_or_ps(m0, m1), _mm256_or_ps(m0, m1)))
		{
			int			bits = _mm256_movemask_ps(m0) | (_mm256_movemask_ps(m1) << 8);

			return i + __builtin_ctz(bits);
		}
	}
	for (; i < count; i++)
		if (v[i] >= theta)
			return i;
	return count;
}

#endif							/* SIMD_X86_DISPATCH */

SimdSparseUpdateFn SimdSparseUpdate = SparseUpdateGeneric;
SimdDotFn	SimdDot = SimdDotGeneric;
SimdScoreRowsFn SimdScoreRows = ScoreRowsGeneric;
SimdCodeBoundsFn SimdCodeBounds = CodeBoundsGeneric;
SimdNextAtLeastFn SimdNextAtLeast = NextAtLeastGeneric;

/*
 * The quantized user vector's range for SimdCodeBounds: [-127, 127], or
 * [-64, 64] for the AVX2 kernel (see CodeBoundsAvx2)
 */
int			SimdCodeLevels = 127;

/*
 * Whether SimdCodeBounds is a vector kernel: the plain C one is slower than
 * scoring every item exactly, so compact scoring is then only for tests
 */
bool		SimdCodesVector = false;

/*
 * recsys.vector_kernels: auto (the best this CPU has), generic, or avx2
 * (no AVX-512 even where the CPU has it: to test the AVX2 kernels there)
 */
static int	vector_kernels = SIMD_KERNELS_AUTO;

static const struct config_enum_entry vector_kernel_options[] = {
	{"auto", SIMD_KERNELS_AUTO, false},
	{"generic", SIMD_KERNELS_GENERIC, false},
	{"avx2", SIMD_KERNELS_AVX2, false},
	{NULL, 0, false}
};

/* Point the kernels at the implementation the setting and the CPU allow */
static void
SelectKernels(int setting)
{
	SimdSparseUpdate = SparseUpdateGeneric;
	SimdDot = SimdDotGeneric;
	SimdScoreRows = ScoreRowsGeneric;
	SimdCodeBounds = CodeBoundsGeneric;
	SimdNextAtLeast = NextAtLeastGeneric;
	SimdCodeLevels = 127;
	SimdCodesVector = false;
#ifdef SIMD_X86_DISPATCH
	if (setting != SIMD_KERNELS_GENERIC &&
		__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		SimdSparseUpdate = SparseUpdateAvx2;
		SimdDot = DotAvx2;
		SimdScoreRows = ScoreRowsAvx2;
		SimdNextAtLeast = NextAtLeastAvx2;
		SimdCodeBounds = CodeBoundsAvx2;
		SimdCodeLevels = 64;
		SimdCodesVector = true;
		if (setting == SIMD_KERNELS_AUTO &&
			__builtin_cpu_supports("avx512f") &&
			__builtin_cpu_supports("avx512bw") &&
			__builtin_cpu_supports("avx512vnni"))
		{
			SimdCodeBounds = CodeBoundsVnni;
			SimdCodeLevels = 127;
		}
	}
#endif
}

/* Assign hook of recsys.vector_kernels */
static void
AssignVectorKernels(int newval, pg_attribute_unused() void *extra)
{
	SelectKernels(newval);
}

/*
 * Define recsys.vector_kernels and pick the kernels for this CPU (from
 * _PG_init; no BLAS involved).
 */
void
SimdInit(void)
{
#ifdef SIMD_X86_DISPATCH
	__builtin_cpu_init();
#endif
	DefineCustomEnumVariable("recsys.vector_kernels",
							 "Vector kernels of the conjugate-gradient solver, the training loss and serving.",
							 "auto uses AVX2 and FMA (and AVX-512 VNNI for compact scoring) where the CPU has them; generic runs the baseline kernels everywhere (to compare results); avx2 leaves AVX-512 out.",
							 &vector_kernels,
							 SIMD_KERNELS_AUTO,
							 vector_kernel_options,
							 PGC_USERSET,
							 0,
							 NULL, AssignVectorKernels, NULL);
	SelectKernels(vector_kernels);

	/*
	 * recsys.compact_scoring lives with its kernels' user, compact.c; it is
	 * defined from here so that _PG_init (recsys.c) needs no change.
	 */
	CompactInit();
}
