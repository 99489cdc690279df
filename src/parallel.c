/*-------------------------------------------------------------------------
 *
 * parallel.c
 *	  Running a loop over rows on several threads, interruptibly.
 *
 * An ALS half-step solves thousands of independent rows, each a few
 * microseconds to milliseconds of BLAS work: the natural unit of
 * parallelism, far finer than PostgreSQL's parallel workers (which would
 * need the factors copied into dynamic shared memory at every half-step).
 * So recsys uses plain threads, with the rules that make threads safe in a
 * backend:
 *	- worker threads run only the loop body, which calls no PostgreSQL
 *	  code (no palloc, no ereport, no locks), only plain C and BLAS;
 *	- they are created with every signal blocked, so PostgreSQL's signal
 *	  handlers always run in the backend's own thread;
 *	- the backend's thread takes part in the loop, and between blocks of
 *	  rows it watches InterruptPending; on a cancel it tells the workers
 *	  to stop, joins them all, and only then lets CHECK_FOR_INTERRUPTS
 *	  throw, so no thread outlives the error;
 *	- a thread that cannot be created is not an error: its share of rows
 *	  is done by the others.
 * Rows are handed out in blocks through an atomic counter, so threads
 * that get cheap rows simply take more blocks.
 *
 * IDENTIFICATION
 *	  src/parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "miscadmin.h"
#include "parallel.h"
#include "port/atomics.h"
#include "utils/guc.h"

/* recsys.training_threads; -1 means max_parallel_maintenance_workers + 1 */
int			recsys_training_threads = -1;

/* State shared by the threads of one loop */
typedef struct ParallelLoop
{
	ParallelBody body;
	void	   *arg;
	int			nrows;
	int			block;			/* rows handed out at a time */
	pg_atomic_uint32 next;		/* first row of the next block */
	pg_atomic_uint32 stop;		/* set on failure or cancel */
	pg_atomic_uint32 failed;	/* a body returned false */
} ParallelLoop;

/* One thread's view of the loop */
typedef struct ParallelWorker
{
	ParallelLoop *loop;
	int			thread;
	pthread_t	handle;
	bool		started;
} ParallelWorker;

/* Define recsys.training_threads */
void
ParallelInit(void)
{
	DefineCustomIntVariable("recsys.training_threads",
							"Threads one training uses.",
							"-1 means max_parallel_maintenance_workers + 1, "
							"capped by the number of CPUs; other values are "
							"capped the same way except for superusers.",
							&recsys_training_threads,
							-1, -1, PARALLEL_MAX_THREADS,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}

/*
 * The number of threads a training should use now.  -1 (the default) is
 * max_parallel_maintenance_workers + 1; for roles other than superusers,
 * any value is capped by the number of CPUs and by that same bound, so
 * that an ordinary login cannot make one training take every core of a
 * shared server (superusers may go up to PARALLEL_MAX_THREADS).
 */
int
ParallelThreads(void)
{
	long		cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int			n = recsys_training_threads;
	int			cap = max_parallel_maintenance_workers + 1;

	if (cpus > 0)
		cap = Min(cap, (int) cpus);
	if (n < 0 || (n > cap && !superuser()))
		n = cap;
	return Max(1, Min(n, PARALLEL_MAX_THREADS));
}

/*
 * Take and run one block of rows; false when there are none left or the
 * loop was stopped.
 */
static bool
RunBlock(ParallelLoop *loop, int thread)
{
	uint32		begin;

	if (pg_atomic_read_u32(&loop->stop))
		return false;
	begin = pg_atomic_fetch_add_u32(&loop->next, (uint32) loop->block);
	if (begin >= (uint32) loop->nrows)
		return false;
	if (!loop->body(loop->arg, thread, (int) begin,
					(int) Min(begin + (uint32) loop->block, (uint32) loop->nrows)))
	{
		pg_atomic_write_u32(&loop->failed, 1);
		pg_atomic_write_u32(&loop->stop, 1);
		return false;
	}
	return true;
}

/* A worker thread: run blocks until none are left */
static void *
WorkerMain(void *arg)
{
	ParallelWorker *w = (ParallelWorker *) arg;

	while (RunBlock(w->loop, w->thread))
		;
	return NULL;
}

/*
 * Run body over rows [0, nrows) on up to nthreads threads, the calling
 * backend's among them, in blocks of `block` rows (each call of body gets
 * exactly one block, aligned to a multiple of `block`; keep blocks small
 * enough for a prompt cancel).  Returns false if a body failed.  A pending
 * cancel stops the loop and is raised once every thread has finished.
 *
 * An interrupt that does not raise an error (a ProcSignalBarrier, a
 * request to log memory contexts, a client connection check) stops the
 * threads too: it is served once they are joined, and then the loop goes
 * on with the blocks not yet handed out.  Every block below the counter
 * `next` has been run (a thread takes a block only after checking `stop`,
 * and runs every block it takes), so nothing runs twice or not at all.
 */
bool
ParallelFor(int nrows, int block, int nthreads, ParallelBody body, void *arg)
{
	ParallelLoop loop;
	ParallelWorker workers[PARALLEL_MAX_THREADS];
	sigset_t	all;
	sigset_t	saved;

	loop.body = body;
	loop.arg = arg;
	loop.nrows = nrows;
	loop.block = Max(block, 1);
	pg_atomic_init_u32(&loop.next, 0);
	pg_atomic_init_u32(&loop.stop, 0);
	pg_atomic_init_u32(&loop.failed, 0);
	nthreads = Max(1, Min(nthreads, PARALLEL_MAX_THREADS));
	if (nrows <= loop.block)
		nthreads = 1;

	for (;;)
	{
		/* Threads inherit the creator's mask: create them with all blocked */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &saved);
		for (int t = 1; t < nthreads; t++)
		{
			workers[t].loop = &loop;
			workers[t].thread = t;
			workers[t].started =
				pthread_create(&workers[t].handle, NULL, WorkerMain, &workers[t]) == 0;
		}
		pthread_sigmask(SIG_SETMASK, &saved, NULL);

		/*
		 * The backend's thread works too, and watches for interrupts (that it
		 * can serve: while they are held off, it just works on)
		 */
		for (;;)
		{
			if (InterruptPending && INTERRUPTS_CAN_BE_PROCESSED())
			{
				pg_atomic_write_u32(&loop.stop, 1);
				break;
			}
			if (!RunBlock(&loop, 0))
				break;
		}

		for (int t = 1; t < nthreads; t++)
			if (workers[t].started)
				pthread_join(workers[t].handle, NULL);

		/* Every thread is gone: now a cancel may throw */
		CHECK_FOR_INTERRUPTS();
		if (pg_atomic_read_u32(&loop.failed) != 0)
			return false;
		if (pg_atomic_read_u32(&loop.next) >= (uint32) nrows)
			return true;

		/* Stopped by an interrupt that raised no error: the rest of the rows */
		pg_atomic_write_u32(&loop.stop, 0);
	}
}
