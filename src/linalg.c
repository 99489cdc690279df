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
 * Upper triangle of C = A A^T, A n x k (column-major, leading dimension lda).
 *
 * With A the transpose of a block of gathered factor rows this is the Gram
 * matrix of those rows, the dominant cost of an ALS half-step (BLAS-3).
 */
void
LinalgSyrk(int n, int k, const float *a, int lda, float *c, int ldc)
{
	const float one = 1.0f;
	const float zero = 0.0f;

	CheckDim(n > 0 && k >= 0 && lda >= n && ldc >= n, "ssyrk");
	for (int j = 0; j < n; j++)
		memset(c + (size_t) j * ldc, 0, sizeof(float) * (j + 1));
	if (k == 0)
		return;
	ssyrk_("U", "N", &n, &k, &one, a, &lda, &zero, c, &ldc, 1, 1);
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
 * of C holds user j's scores (BLAS-3).
 */
void
LinalgGemmTN(int m, int n, int k, const float *a, const float *b, float *c,
			 int ldc)
{
	const float one = 1.0f;
	const float zero = 0.0f;

	CheckDim(m > 0 && n > 0 && k > 0 && ldc >= m, "sgemm");
	for (int j = 0; j < n; j++)
		memset(c + (size_t) j * ldc, 0, sizeof(float) * m);
	sgemm_("T", "N", &m, &n, &k, &one, a, &k, b, &k, &zero, c, &ldc, 1, 1);
}

/*
 * y = A x for A m x n (column-major, leading dimension lda).
 *
 * With A a block of gathered factor vectors (one per column) this forms the
 * right-hand side X^T y of a row's normal equations.
 */
void
LinalgGemvN(int m, int n, const float *a, int lda, const float *x, float *y)
{
	const float one = 1.0f;
	const float zero = 0.0f;
	const int	inc = 1;

	CheckDim(m > 0 && n > 0 && lda >= m, "sgemv");
	memset(y, 0, sizeof(float) * m);
	sgemv_("N", &m, &n, &one, a, &lda, x, &inc, &zero, y, &inc, 1);
}

/*
 * Solve A x = b for symmetric positive definite A (n x n, upper triangle
 * used, overwritten by its Cholesky factor); b is overwritten by x.
 *
 * Returns 0 on success and k > 0 when the leading minor of order k is not
 * positive definite, which the caller reports as a data error.  Double
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

	CheckDim(n > 0, "dpotrf");
	if (n <= LINALG_UNBLOCKED_CHOLESKY)
		dpotf2_("U", &n, a, &n, &info, 1);
	else
		dpotrf_("U", &n, a, &n, &info, 1);
	if (info < 0)
		elog(ERROR, "dpotrf rejected argument %d, please report a bug", -info);
	if (info > 0)
		return info;

	/* A = U^T U: solve U^T z = b, then U x = z */
	dtrsv_("U", "T", "N", &n, a, &n, b, &inc, 1, 1, 1);
	dtrsv_("U", "N", "N", &n, a, &n, b, &inc, 1, 1, 1);
	return 0;
}
