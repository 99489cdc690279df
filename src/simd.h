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
extern const char *SimdKernelName(void);

#endif							/* SIMD_H */
