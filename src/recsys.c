/*-------------------------------------------------------------------------
 *
 * recsys.c
 *	  Module entry: PG_MODULE_MAGIC, settings, and small shared helpers.
 *
 * IDENTIFICATION
 *	  src/recsys.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "parallel.h"
#include "recsys.h"
#include "shard.h"
#include "shared_cache.h"
#include "simd.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

/* recsys.default_model: the model that a NULL model argument means */
char	   *recsys_default_model = NULL;

void		_PG_init(void);

/* Define the settings; never touches BLAS (see STYLE: no BLAS in _PG_init) */
void
_PG_init(void)
{
	DefineCustomStringVariable("recsys.default_model",
							   "Model used when a function's model argument is NULL.",
							   "When empty, a NULL model means the only trained model.",
							   &recsys_default_model,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
	ParallelInit();
	DistributedInit();
	DistributedServeInit();
	SharedCacheInit();
	SimdInit();
	MarkGUCPrefixReserved("recsys");
}

/*
 * The extra confidence w = c - 1 of an implicit interaction with value v:
 * alpha * v (linear) or alpha * log(1 + v / epsilon) (log scaling, which
 * tames heavy users and items; Hu, Koren and Volinsky, section 4).
 */
double
RecsysConfidence(RecsysScaling scaling, double alpha, double epsilon,
				 double value)
{
	if (scaling == RECSYS_SCALING_LOG)
		return alpha * log1p(value / epsilon);
	return alpha * value;
}

/*
 * Memory a training run may use, in bytes.
 *
 * Training is a maintenance operation, so it follows maintenance_work_mem,
 * as CREATE INDEX does; doc/training.md documents how much a model needs.
 */
Size
RecsysMemoryBudget(void)
{
	return (Size) maintenance_work_mem * 1024;
}

/* Huge pages are this large (x86-64; arm64 with 4 kB base pages) */
#define RECSYS_HUGE_PAGE ((uintptr_t) 2 * 1024 * 1024)

/*
 * Map the memory of a large, freshly allocated array [p, p + size) before
 * it is first written: the whole huge pages inside it are marked for
 * transparent huge pages, and all of its pages are mapped in one system
 * call.  Why: otherwise the first write to each 4 kB page is a page fault,
 * which on the virtual machine measured costs 11 us (reading a 1M-row
 * source took 7,700 faults, 10M rows 73,000); mapped in bulk a page costs
 * 0.7 us, and a 2 MB huge page replaces 512 faults.  Both are
 * hints: where the kernel lacks them (before Linux 5.14, or with
 * transparent huge pages off) nothing changes and the pages fault as
 * before.  Only for memory that is about to be written in full.
 */
void
RecsysPrefault(void *p, Size size)
{
#if defined(MADV_POPULATE_WRITE) || defined(MADV_HUGEPAGE)
	uintptr_t	start = (uintptr_t) p;
	uintptr_t	page = (uintptr_t) sysconf(_SC_PAGESIZE);
	uintptr_t	begin;
	uintptr_t	end;

	if (size < 64 * page)
		return;					/* a few faults cost less than the calls */
#ifdef MADV_HUGEPAGE
	begin = (start + RECSYS_HUGE_PAGE - 1) & ~(RECSYS_HUGE_PAGE - 1);
	end = (start + size) & ~(RECSYS_HUGE_PAGE - 1);
	if (end > begin)
		(void) madvise((void *) begin, end - begin, MADV_HUGEPAGE);
#endif
#ifdef MADV_POPULATE_WRITE
	begin = (start + page - 1) & ~(page - 1);
	end = (start + size) & ~(page - 1);
	if (end > begin)
		(void) madvise((void *) begin, end - begin, MADV_POPULATE_WRITE);
#endif
#else
	(void) p;
	(void) size;
#endif
}

/* Error with the estimate and a hint when `required` exceeds the budget */
void
RecsysCheckMemory(Size required, const char *what)
{
	Size		budget = RecsysMemoryBudget();

	if (required > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training needs about %zu MB of memory, but maintenance_work_mem is %d MB",
						required / (1024 * 1024) + 1, maintenance_work_mem / 1024),
				 errdetail("%s", what),
				 errhint("Increase maintenance_work_mem for this session, for example SET maintenance_work_mem = '%zuMB' (the estimate plus 64 MB of headroom), or train on fewer interactions.",
						 required / (1024 * 1024) + 64)));
}

/* Seconds since `start` */
double
RecsysSecondsSince(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* Error unless x is finite and at least `min` (exclusive if strict) */
void
RecsysCheckNumber(const char *name, double x, double min, bool strict)
{
	if (isnan(x) || isinf(x) || x < min || (strict && x == min))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number %s %g, got %g",
						name, strict ? ">" : ">=", min, x)));
}
