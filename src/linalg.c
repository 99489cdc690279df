/*-------------------------------------------------------------------------
 *
 * linalg.c
 *	  Thin, checked wrappers around the BLAS and LAPACK routines recsys uses.
 *
 * This is the only file that calls BLAS or LAPACK.  The Fortran symbols are
 * declared here by hand so that no LAPACKE/CBLAS headers are needed (Debian's
 * OpenBLAS ships none); the trailing size_t arguments are the hidden lengths
 * of Fortran CHARACTER arguments.
 *
 * Every dimension is checked before a call, because the reference XERBLA
 * prints a message and stops the whole process on an illegal argument.
 *
 * Every output is zeroed before a call with beta = 0.  BLAS promises not to
 * read C (or y) then, but OpenBLAS 0.3.21's kernels for AVX-512 CPUs
 * (SkylakeX, Cooperlake) multiply it by beta instead, so garbage in the
 * buffer (NaN times 0 is NaN) made training results vary from run to run
 * on such machines; zeroed outputs make every kernel exact and repeatable.
 *
 * IDENTIFICATION
 *	  src/linalg.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>

#include "linalg.h"

extern void ssyrk_(const char *uplo, const char *trans, const int *n,
				   const int *k, const float *alpha, const float *a,
				   const int *lda, const float *beta, float *c,
				   const int *ldc, size_t uplo_len, size_t trans_len);
extern void sgemv_(const char *trans, const int *m, const int *n,
				   const float *alpha, const float *a, const int *lda,
				   const float *x, const int *incx, const float *beta,
				   float *y, const int *incy, size_t trans_len);
extern void sgemm_(const char *transa, const char *transb, const int *m,
				   const int *n, const int *k, const float *alpha,
				   const float *a, const int *lda, const float *b,
				   const int *ldb, const float *beta, float *c,
				   const int *ldc, size_t transa_len, size_t transb_len);
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
					int *info, size_t uplo_len);
extern void dpotf2_(const char *uplo, const int *n, double *a, const int *lda,
					int *info, size_t uplo_len);
extern void dtrsv_(const char *uplo, const char *trans, const char *diag,
				   const int *n, const double *a, const int *lda, double *x,
				   const int *incx, size_t uplo_len, size_t trans_len,
				   size_t diag_len);

/*
 * Keep OpenBLAS single-threaded in this process, once, on first use (not
 * in _PG_init: loading a library must not call into BLAS).  recsys runs
 * many small BLAS calls on its own threads; OpenBLAS threads on top of
 * them would only compete for the same cores.  The server should still
 * run with OPENBLAS_NUM_THREADS=1 (README), so that OpenBLAS starts no
 * threads at all when the library loads; this is the safety net.
 * Several threads may race here harmlessly: the call is idempotent.
 */
static void
BlasSingleThreaded(void)
{
	static volatile bool done = false;

	if (!done)
	{
		void		(*set_threads) (int) =
			(void (*) (int)) dlsym(RTLD_DEFAULT, "openblas_set_num_threads");

		if (set_threads)
			set_threads(1);
		done = true;
	}
}

/* Fail loudly on a dimension that would make BLAS abort the process */
static inline void
CheckDim(bool ok, const char *routine)
{
	BlasSingleThreaded();
	if (!ok)
		elog(ERROR, "invalid dimensions for %s, please report a bug", routine);
}

/*
 * Whether dimensions are legal, for wrappers that run on worker threads
 * (ALS half-steps, recommend_all, EASE tiles): they must not raise an
 * error, as an ereport from a thread other than the backend's would
 * longjmp onto the backend's stack from the wrong thread.  They return
 * false (or a negative code) instead; the worker's body returns false, and
 * the caller reports the bug from the backend's thread once the threads
 * are joined.
 */
static inline bool
ThreadDimOk(bool ok)
{
	BlasSingleThreaded();
	return ok;
}

/*
 * Upper triangle of C = A A^T, A n x k (column-major, leading dimension lda).
 *
 * With A the transpose of a block of gathered factor rows this is the Gram
 * matrix of those rows, the dominant cost of an ALS half-step (BLAS-3).
 * Runs on worker threads: false on invalid dimensions.
 */
bool
LinalgSyrk(int n, int k, const float *a, int lda, float *c, int ldc)
{
	const float one = 1.0f;
	const float zero = 0.0f;

	if (!ThreadDimOk(n > 0 && k >= 0 && lda >= n && ldc >= n))
		return false;
	for (int j = 0; j < n; j++)
		memset(c + (size_t) j * ldc, 0, sizeof(float) * (j + 1));
	if (k == 0)
		return true;
	ssyrk_("U", "N", &n, &k, &one, a, &lda, &zero, c, &ldc, 1, 1);
	return true;
}

/*
 * y = A^T x for A m x n (column-major, leading dimension lda).
 *
 * With A the row-major item factor matrix seen as k x nitems this scores
 * every item against one user vector in a single pass over memory.
 */
void
LinalgGemvT(int m, int n, const float *a, int lda, const float *x, float *y)
{
	const float one = 1.0f;
	const float zero = 0.0f;
	const int	inc = 1;

	CheckDim(m > 0 && n > 0 && lda >= m, "sgemv");
	memset(y, 0, sizeof(float) * n);
	sgemv_("T", &m, &n, &one, a, &lda, x, &inc, &zero, y, &inc, 1);
}

/*
 * C = A^T B for A k x m and B k x n (column-major, leading dimension k);
 * C is m x n with leading dimension ldc.
 *
 * With A the item factors and B a block of user factors (both row-major,
 * one vector per row) this scores the block against every item: column j
 * of C holds user j's scores (BLAS-3).  Runs on worker threads: false on
 * invalid dimensions.
 */
bool
LinalgGemmTN(int m, int n, int k, const float *a, const float *b, float *c,
			 int ldc)
{
	const float one = 1.0f;
	const float zero = 0.0f;

	if (!ThreadDimOk(m > 0 && n > 0 && k > 0 && ldc >= m))
		return false;
	for (int j = 0; j < n; j++)
		memset(c + (size_t) j * ldc, 0, sizeof(float) * m);
	sgemm_("T", "N", &m, &n, &k, &one, a, &k, b, &k, &zero, c, &ldc, 1, 1);
	return true;
}

/*
 * y = A x for A m x n (column-major, leading dimension lda).
 *
 * With A a block of gathered factor vectors (one per column) this forms the
 * right-hand side X^T y of a row's normal equations.  Runs on worker
 * threads: false on invalid dimensions.
 */
bool
LinalgGemvN(int m, int n, const float *a, int lda, const float *x, float *y)
{
	const float one = 1.0f;
	const float zero = 0.0f;
	const int	inc = 1;

	if (!ThreadDimOk(m > 0 && n > 0 && lda >= m))
		return false;
	memset(y, 0, sizeof(float) * m);
	sgemv_("N", &m, &n, &one, a, &lda, x, &inc, &zero, y, &inc, 1);
	return true;
}

/*
 * Solve A x = b for symmetric positive definite A (n x n, upper triangle
 * used, overwritten by its Cholesky factor); b is overwritten by x.
 *
 * Returns 0 on success, k > 0 when the leading minor of order k is not
 * positive definite, which the caller reports as a data error, and
 * LINALG_BAD_ARGUMENT for an invalid order (a bug: runs on worker threads,
 * so it cannot raise the error itself).  Double
 * precision because normal equations square the condition number.  The two
 * triangular solves use BLAS-2 trsv: dpotrs would go through trsm, whose
 * blocking overhead dominates for a single right-hand side.
 */
/*
 * Largest order factored by the unblocked dpotf2.  Why: for the small
 * systems of ALS (k + 1 unknowns), dpotrf's blocking spends more in its
 * dtrsm, dsyrk and dgemm calls than in the arithmetic (its dtrsm was 16%
 * of an exact-solver training profile at k = 64); same factor, fewer calls.
 */
#define LINALG_UNBLOCKED_CHOLESKY 128

int
LinalgCholeskySolve(int n, double *a, double *b)
{
	const int	inc = 1;
	int			info = 0;

	if (!ThreadDimOk(n > 0))
		return LINALG_BAD_ARGUMENT;
	if (n <= LINALG_UNBLOCKED_CHOLESKY)
		dpotf2_("U", &n, a, &n, &info, 1);
	else
		dpotrf_("U", &n, a, &n, &info, 1);
	if (info < 0)
		return LINALG_BAD_ARGUMENT;
	if (info > 0)
		return info;

	/* A = U^T U: solve U^T z = b, then U x = z */
	dtrsv_("U", "T", "N", &n, a, &n, b, &inc, 1, 1, 1);
	dtrsv_("U", "N", "N", &n, a, &n, b, &inc, 1, 1, 1);
	return 0;
}

/*
 * Blocked dense factorizations (EASE, ease.c)
 *
 * EASE inverts an items x items matrix.  One LAPACK call on the whole
 * matrix would run for seconds with no way to cancel it and on one core
 * (the server runs OpenBLAS single-threaded), so ease.c splits the
 * factorization into panels and tiles and calls the routines below on
 * each: the tile calls run on worker threads, the small diagonal-block
 * calls in the backend's thread between them.
 *
 * The tile wrappers (LinalgGemmAdd, LinalgSyrkAdd, LinalgTrsm, LinalgTrmm)
 * run inside ParallelFor bodies, so they must not raise an error: an
 * ereport from a thread other than the backend's would longjmp onto the
 * backend's stack from the wrong thread.  They return false on an invalid
 * dimension instead, the body returns false, and the caller reports the
 * bug from the backend's thread.  They accumulate (beta = 1) or work in
 * place, so no output needs zeroing (see the top of this file).
 */

extern void spotrf_(const char *uplo, const int *n, float *a, const int *lda,
					int *info, size_t uplo_len);
extern void strtri_(const char *uplo, const char *diag, const int *n,
					float *a, const int *lda, int *info, size_t uplo_len,
					size_t diag_len);
extern void slauum_(const char *uplo, const int *n, float *a, const int *lda,
					int *info, size_t uplo_len);
extern void strsm_(const char *side, const char *uplo, const char *transa,
				   const char *diag, const int *m, const int *n,
				   const float *alpha, const float *a, const int *lda,
				   float *b, const int *ldb, size_t side_len,
				   size_t uplo_len, size_t transa_len, size_t diag_len);
extern void strmm_(const char *side, const char *uplo, const char *transa,
				   const char *diag, const int *m, const int *n,
				   const float *alpha, const float *a, const int *lda,
				   float *b, const int *ldb, size_t side_len,
				   size_t uplo_len, size_t transa_len, size_t diag_len);


/*
 * C += alpha op(A) op(B) for op(A) m x k and op(B) k x n (op is the
 * transpose when trans is set); C is m x n.  Worker-thread safe: returns
 * false on an invalid dimension.
 */
bool
LinalgGemmAdd(bool transa, bool transb, int m, int n, int k, float alpha,
			  const float *a, int lda, const float *b, int ldb, float *c,
			  int ldc)
{
	const float one = 1.0f;

	if (!ThreadDimOk(m >= 0 && n >= 0 && k >= 0 &&
			   lda >= Max(1, transa ? k : m) &&
			   ldb >= Max(1, transb ? n : k) && ldc >= Max(1, m)))
		return false;
	if (m == 0 || n == 0 || k == 0)
		return true;
	sgemm_(transa ? "T" : "N", transb ? "T" : "N", &m, &n, &k, &alpha, a,
		   &lda, b, &ldb, &one, c, &ldc, 1, 1);
	return true;
}

/*
 * Upper triangle of C += alpha op(A) op(A)^T for op(A) n x k: A itself
 * when trans is false, A^T (A is k x n) when it is set.  Worker-thread
 * safe: returns false on an invalid dimension.
 */
bool
LinalgSyrkAdd(bool trans, int n, int k, float alpha, const float *a, int lda,
			  float *c, int ldc)
{
	const float one = 1.0f;

	if (!ThreadDimOk(n >= 0 && k >= 0 && lda >= Max(1, trans ? k : n) &&
			   ldc >= Max(1, n)))
		return false;
	if (n == 0 || k == 0)
		return true;
	ssyrk_("U", trans ? "T" : "N", &n, &k, &alpha, a, &lda, &one, c, &ldc,
		   1, 1);
	return true;
}

/*
 * B = alpha op(U)^-1 B (left) or B = alpha B op(U)^-1 (right), for B m x n
 * and U upper triangular with a non-zero diagonal, of order m (left) or n
 * (right).  Worker-thread safe: returns false on an invalid dimension.
 */
bool
LinalgTrsm(bool left, bool trans, int m, int n, float alpha, const float *u,
		   int ldu, float *b, int ldb)
{
	if (!ThreadDimOk(m >= 0 && n >= 0 && ldu >= Max(1, left ? m : n) &&
			   ldb >= Max(1, m)))
		return false;
	if (m == 0 || n == 0)
		return true;
	strsm_(left ? "L" : "R", "U", trans ? "T" : "N", "N", &m, &n, &alpha, u,
		   &ldu, b, &ldb, 1, 1, 1, 1);
	return true;
}

/*
 * B = alpha op(U) B (left) or B = alpha B op(U) (right), for B m x n and U
 * upper triangular of order m (left) or n (right).  Worker-thread safe:
 * returns false on an invalid dimension.
 */
bool
LinalgTrmm(bool left, bool trans, int m, int n, float alpha, const float *u,
		   int ldu, float *b, int ldb)
{
	if (!ThreadDimOk(m >= 0 && n >= 0 && ldu >= Max(1, left ? m : n) &&
			   ldb >= Max(1, m)))
		return false;
	if (m == 0 || n == 0)
		return true;
	strmm_(left ? "L" : "R", "U", trans ? "T" : "N", "N", &m, &n, &alpha, u,
		   &ldu, b, &ldb, 1, 1, 1, 1);
	return true;
}

/*
 * Cholesky factor A = U^T U of a symmetric positive definite n x n block
 * (upper triangle used and overwritten by U), in float.
 *
 * Returns 0 on success and k > 0 when the leading minor of order k is not
 * positive definite, which the caller reports as a data error.  Backend
 * thread only (it raises an error on a bug).
 */
int
LinalgCholesky(int n, float *a, int lda)
{
	int			info = 0;

	CheckDim(n > 0 && lda >= n, "spotrf");
	spotrf_("U", &n, a, &lda, &info, 1);
	if (info < 0)
		elog(ERROR, "spotrf rejected argument %d, please report a bug", -info);
	return info;
}

/*
 * Invert an n x n upper triangular block in place (non-unit diagonal).
 *
 * Returns 0 on success and k > 0 when U_kk is exactly zero (impossible for
 * a Cholesky factor).  Backend thread only.
 */
int
LinalgTriangularInverse(int n, float *a, int lda)
{
	int			info = 0;

	CheckDim(n > 0 && lda >= n, "strtri");
	strtri_("U", "N", &n, a, &lda, &info, 1, 1);
	if (info < 0)
		elog(ERROR, "strtri rejected argument %d, please report a bug", -info);
	return info;
}

/*
 * Upper triangle of W W^T for an upper triangular n x n block W, in place
 * (the last step of inverting A = U^T U as U^-1 U^-T).  Backend thread
 * only.
 */
void
LinalgLauum(int n, float *a, int lda)
{
	int			info = 0;

	CheckDim(n > 0 && lda >= n, "slauum");
	slauum_("U", &n, a, &lda, &info, 1);
	if (info < 0)
		elog(ERROR, "slauum rejected argument %d, please report a bug", -info);
}
