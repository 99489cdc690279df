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
 * Nothing here calls PostgreSQL; the kernels run on training threads.
 *
 * IDENTIFICATION
 *	  src/simd.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "simd.h"
#include "utils/guc.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SIMD_X86_DISPATCH 1
#endif

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

#endif							/* SIMD_X86_DISPATCH */

SimdSparseUpdateFn SimdSparseUpdate = SparseUpdateGeneric;
SimdDotFn	SimdDot = SimdDotGeneric;

/* recsys.vector_kernels: auto (the best this CPU has) or generic */
static int	vector_kernels = SIMD_KERNELS_AUTO;

static const struct config_enum_entry vector_kernel_options[] = {
	{"auto", SIMD_KERNELS_AUTO, false},
	{"generic", SIMD_KERNELS_GENERIC, false},
	{NULL, 0, false}
};

/* Point the kernels at the implementation the setting and the CPU allow */
static void
SelectKernels(int setting)
{
	SimdSparseUpdate = SparseUpdateGeneric;
	SimdDot = SimdDotGeneric;
#ifdef SIMD_X86_DISPATCH
	if (setting == SIMD_KERNELS_AUTO &&
		__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
	{
		SimdSparseUpdate = SparseUpdateAvx2;
		SimdDot = DotAvx2;
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
							 "Vector kernels of the conjugate-gradient solver and the training loss.",
							 "auto uses AVX2 and FMA where the CPU has them; generic runs the baseline kernels everywhere (to compare results).",
							 &vector_kernels,
							 SIMD_KERNELS_AUTO,
							 vector_kernel_options,
							 PGC_USERSET,
							 0,
							 NULL, AssignVectorKernels, NULL);
	SelectKernels(vector_kernels);
}
