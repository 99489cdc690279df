/*
 * sgemm_peak: the machine's practical single-precision peak, for the recsys
 * benchmark (test/bench/run builds it with gcc into its temp dir).
 *
 *   sgemm_peak [N [RUNS]]      (default 2048 and 5)
 *
 * Multiplies two N x N float matrices with the BLAS the extension links
 * (-lblas, i.e. Debian's libblas.so.3 alternative; OpenBLAS here) through
 * the Fortran sgemm_, once untimed (warm-up: pages, threads, caches), then
 * RUNS times, and prints one line per timed run: the GFLOP/s of that run,
 * counting 2 * N^3 floating-point operations (a multiply-add is 2).  The
 * number of threads is the BLAS's own setting: run it with
 * OPENBLAS_NUM_THREADS=1 or =2.  At the end it prints "cpu_seconds S" on
 * stderr: the CPU time of the process, all its threads (the benchmark
 * compares it with the machine's to see whether anything else ran).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

extern void sgemm_(const char *transa, const char *transb, const int *m,
				   const int *n, const int *k, const float *alpha,
				   const float *a, const int *lda, const float *b,
				   const int *ldb, const float *beta, float *c,
				   const int *ldc, size_t transa_len, size_t transb_len);

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
	int			n = argc > 1 ? atoi(argv[1]) : 2048;
	int			runs = argc > 2 ? atoi(argv[2]) : 5;
	size_t		nn;
	float	   *a,
			   *b,
			   *c;
	float		one = 1.0f,
				zero = 0.0f;
	double		flops;
	unsigned	x = 12345;

	if (n < 1 || runs < 1)
	{
		fprintf(stderr, "usage: sgemm_peak [N [RUNS]]\n");
		return 2;
	}
	nn = (size_t) n * n;
	a = malloc(nn * sizeof(float));
	b = malloc(nn * sizeof(float));
	c = malloc(nn * sizeof(float));
	if (!a || !b || !c)
	{
		fprintf(stderr, "sgemm_peak: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < nn; i++)
	{
		x = x * 1103515245u + 12345u;
		a[i] = (float) ((x >> 8) & 0xffff) / 65536.0f - 0.5f;
		x = x * 1103515245u + 12345u;
		b[i] = (float) ((x >> 8) & 0xffff) / 65536.0f - 0.5f;
		c[i] = 0.0f;
	}
	flops = 2.0 * n * (double) n * n;

	sgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n, 1, 1);
	for (int r = 0; r < runs; r++)
	{
		double		t0 = now(),
					t;

		sgemm_("N", "N", &n, &n, &n, &one, a, &n, b, &n, &zero, c, &n, 1, 1);
		t = now() - t0;
		printf("%.3f\n", flops / t / 1e9);
	}
	{
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		fprintf(stderr, "cpu_seconds %.3f\n",
				ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
				ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6);
	}
	/* use the result, so nothing is optimized away */
	if (c[nn / 2] != c[nn / 2])
		fprintf(stderr, "sgemm_peak: NaN in the result\n");
	free(a);
	free(b);
	free(c);
	return 0;
}
