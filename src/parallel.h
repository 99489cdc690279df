/*-------------------------------------------------------------------------
 *
 * parallel.h
 *	  Running a loop over rows on several threads, interruptibly.
 *
 * IDENTIFICATION
 *	  src/parallel.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PARALLEL_H
#define PARALLEL_H

/*
 * The body of a parallel loop: process rows [begin, end) on thread `thread`
 * (0 .. nthreads - 1).  It runs outside PostgreSQL: no palloc, no ereport,
 * no PostgreSQL function at all; only plain C and BLAS/LAPACK.  It reports
 * failure by returning false.
 */
typedef bool (*ParallelBody) (void *arg, int thread, int begin, int end);

/* Most threads of one loop */
#define PARALLEL_MAX_THREADS 64

extern int	recsys_training_threads;

extern int	ParallelThreads(void);
extern bool ParallelFor(int nrows, int block, int nthreads, ParallelBody body,
						void *arg);
extern void ParallelInit(void);

#endif							/* PARALLEL_H */
