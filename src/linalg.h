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

/* LinalgCholeskySolve's answer to an invalid order */
#define LINALG_BAD_ARGUMENT (-1)

/* These four run on worker threads: invalid dimensions give false (or < 0) */
extern bool LinalgSyrk(int n, int k, const float *a, int lda, float *c, int ldc);
extern void LinalgGemvT(int m, int n, const float *a, int lda, const float *x,
						float *y);
extern bool LinalgGemvN(int m, int n, const float *a, int lda, const float *x,
						float *y);
extern bool LinalgGemmTN(int m, int n, int k, const float *a, const float *b,
						 float *c, int ldc);
extern int	LinalgCholeskySolve(int n, double *a, double *b);

/* Blocked dense factorizations (ease.c); the tile calls are thread-safe */
extern bool LinalgGemmAdd(bool transa, bool transb, int m, int n, int k,
						  float alpha, const float *a, int lda,
						  const float *b, int ldb, float *c, int ldc);
extern bool LinalgSyrkAdd(bool trans, int n, int k, float alpha,
						  const float *a, int lda, float *c, int ldc);
extern bool LinalgTrsm(bool left, bool trans, int m, int n, float alpha,
					   const float *u, int ldu, float *b, int ldb);
extern bool LinalgTrmm(bool left, bool trans, int m, int n, float alpha,
					   const float *u, int ldu, float *b, int ldb);
extern int	LinalgCholesky(int n, float *a, int lda);
extern int	LinalgTriangularInverse(int n, float *a, int lda);
extern void LinalgLauum(int n, float *a, int lda);

#endif							/* LINALG_H */
