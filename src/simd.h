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

/* Settings of recsys.vector_kernels */
#define SIMD_KERNELS_AUTO 0
#define SIMD_KERNELS_GENERIC 1

extern SimdSparseUpdateFn SimdSparseUpdate;
extern SimdDotFn SimdDot;

extern void SimdInit(void);

#endif							/* SIMD_H */
