/*-------------------------------------------------------------------------
 *
 * simd.h
 *	  Vector kernels over scattered factor rows, chosen for the CPU.
 *
 * IDENTIFICATION
 *	  src/simd.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SIMD_H
#define SIMD_H

#include "postgres.h"

/*
 * Dot product of two float vectors: the baseline kernel, for every CPU.
 *
 * Eight independent partial sums (lane j sums the products f = j mod 8)
 * break the serial dependency of one accumulator without -ffast-math.
 * Why vector types: GCC at -O2 turned the same loop written over an
 * array of eight floats into scalar loads and a stack round trip per
 * block (the training loss spent 27% of a 1M-row training there); two
 * 4-float vectors are two SSE registers on baseline x86-64 (a single
 * 8-float vector is lowered through memory there) and sum exactly the
 * same products in the same order.
 */
#if defined(__GNUC__)
typedef float SimdFloat4 __attribute__((vector_size(16)));
#endif

static inline float
SimdDotGeneric(const float *x, const float *y, int k)
{
	float		sum = 0.0f;
	int			f = 0;
#if defined(__GNUC__)
	SimdFloat4	lo = {0};
	SimdFloat4	hi = {0};

	for (; f + 8 <= k; f += 8)
	{
		SimdFloat4	a[2];
		SimdFloat4	b[2];

		memcpy(a, x + f, sizeof(a));	/* unaligned loads */
		memcpy(b, y + f, sizeof(b));
		lo += a[0] * b[0];
		hi += a[1] * b[1];
	}
	for (int j = f; j < k; j++)
		sum += x[j] * y[j];
	for (int j = 0; j < 4; j++)
		sum += lo[j];
	for (int j = 0; j < 4; j++)
		sum += hi[j];
#else
	float		acc[8] = {0};

	for (; f + 8 <= k; f += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += x[f + j] * y[f + j];
	for (int j = f; j < k; j++)
		sum += x[j] * y[j];
	for (int j = 0; j < 8; j++)
		sum += acc[j];
#endif
	return sum;
}

/*
 * acc += sum_j (c0 + w_j (c1 + c2 (y_j . v))) y_j over the rows y_j =
 * Y[cols[j]] (k floats each): the sparse part of an implicit ALS normal
 * matrix product (c0 = c1 = 0, c2 = 1) or right-hand side minus product.
 */
typedef void (*SimdSparseUpdateFn) (const float *Y, const int32 *cols,
									const float *w, int n, int k,
									float c0, float c1, float c2,
									const float *v, float *acc);

/* Dot product of two float vectors */
typedef float (*SimdDotFn) (const float *x, const float *y, int k);

/*
 * Exact scores of factor rows (src/score.c): out[i] = x . Q[i] for the
 * rows i < count when rows is NULL, else out[rows[j]] = x . Q[rows[j]] for
 * j < count (Q: k floats per row).  Both forms compute each row's dot
 * product with the same operations in the same order, so a row rescored
 * alone gets the very float it gets in a pass over all rows: the compact
 * scoring of src/compact.c relies on it.
 */
typedef void (*SimdScoreRowsFn) (const float *x, const float *Q, int k,
								 const int32 *rows, int count, float *out);

/* Items per block of compact codes (src/compact.c) */
#define SIMD_CODE_BLOCK 16

/*
 * One pass of compact scoring over every block of codes (src/compact.c
 * has the layout and the error analysis): for each item i, with
 * D_i = sum_f (codes_if - 128) d_f from the 8-bit codes and the quantized
 * user vector d (four int8 values per word of xwords),
 *	A_i = D_i (scale_i t) + a_i,  a_i = base + bias_i (0 unless add),
 *	w_i = ca qnorm_i + cb enorm_i + cz + cc |a_i|,
 * and upper_i = A_i + w_i, lower_i = A_i - w_i.
 */
typedef struct SimdCodeArgs
{
	const uint8 *codes;			/* nblocks x groups x 64 bytes */
	int			nblocks;
	int			groups;			/* words of xwords: dimensions / 4, rounded up */
	const int32 *xwords;		/* the quantized user vector, 4 int8 a word */
	int32		offset;			/* 128 * sum of the quantized user vector */
	float		t;				/* its quantization step */
	const float *scale;			/* per item, nblocks x SIMD_CODE_BLOCK */
	const float *qnorm;
	const float *enorm;
	const float *bias;			/* per item (padded), or NULL: all zero */
	float		base;
	bool		add;			/* add a_i = base + bias_i */
	float		ca;
	float		cb;
	float		cc;
	float		cz;
	float	   *upper;			/* out, nblocks x SIMD_CODE_BLOCK */
	float	   *lower;
} SimdCodeArgs;

typedef void (*SimdCodeBoundsFn) (const SimdCodeArgs *a);

/* The first i in [from, count) with v[i] >= theta, or count */
typedef int (*SimdNextAtLeastFn) (const float *v, int from, int count,
								  float theta);

/* Settings of recsys.vector_kernels */
#define SIMD_KERNELS_AUTO 0
#define SIMD_KERNELS_GENERIC 1
#define SIMD_KERNELS_AVX2 2		/* AVX2 and FMA, no AVX-512 (tests) */

extern SimdSparseUpdateFn SimdSparseUpdate;
extern SimdDotFn SimdDot;
extern SimdScoreRowsFn SimdScoreRows;
extern SimdCodeBoundsFn SimdCodeBounds;
extern SimdNextAtLeastFn SimdNextAtLeast;
extern int	SimdCodeLevels;
extern bool SimdCodesVector;

extern void SimdInit(void);

#endif							/* SIMD_H */
