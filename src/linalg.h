/*-------------------------------------------------------------------------
 *
 * linalg.h
 *	  The only interface to BLAS and LAPACK.
 *
 * All matrices are column-major, as BLAS expects.  A row-major n x k
 * matrix of factors (one vector per row) is, to BLAS, a k x n column-major
 * matrix with leading dimension k.
 *
 * IDENTIFICATION
 *	  src/linalg.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef LINALG_H
#define LINALG_H

extern void LinalgSyrk(int n, int k, const float *a, int lda, float *c, int ldc);
extern void LinalgGemvT(int m, int n, const float *a, int lda, const float *x,
						float *y);
extern void LinalgGemvN(int m, int n, const float *a, int lda, const float *x,
						float *y);
extern void LinalgGemmTN(int m, int n, int k, const float *a, const float *b,
						 float *c, int ldc);
extern int	LinalgCholeskySolve(int n, double *a, double *b);

#endif							/* LINALG_H */
