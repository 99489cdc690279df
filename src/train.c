/*-------------------------------------------------------------------------
 *
 * train.c
 *	  CALL train(...) and drop_model(): argument checks and the training loop.
 *
 * Training happens in four steps, all inside the caller's transaction:
 *	1. take a lock on the model name, so that concurrent trainings of the
 *	   same model run one after the other;
 *	2. read the source once into sparse matrices (ratings.c);
 *	3. run the ALS sweeps in memory (als.c), reporting each iteration;
 *	4. write the new version of the model (catalog.c).
 * Nothing is written before step 4, and what step 4 writes becomes visible
 * only at commit, so a failed, cancelled or timed-out training leaves the
 * previous version serving.
 *
 * IDENTIFICATION
 *	  src/train.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "als.h"
#include "catalog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "ratings.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* Error if argument argno is NULL */
static void
RequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/* Check a model name: non-empty and not too long */
static char *
ModelNameArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name;

	RequireArg(fcinfo, argno, "model");
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (name[0] == '\0' || strlen(name) > RECSYS_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must have 1 to %d bytes, got %zu",
						RECSYS_MAX_NAME_LEN, strlen(name))));
	return name;
}

/* Read and check the hyperparameters */
static void
ParamsFromArgs(FunctionCallInfo fcinfo, RecsysParams *p)
{
	char	   *method;

	RequireArg(fcinfo, 5, "method");
	RequireArg(fcinfo, 6, "factors");
	RequireArg(fcinfo, 7, "iterations");
	RequireArg(fcinfo, 8, "regularization");
	RequireArg(fcinfo, 9, "seed");

	method = text_to_cstring(PG_GETARG_TEXT_PP(5));
	if (!RecsysParseMethod(method, &p->method))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown method \"%s\"", method),
				 errhint("Supported methods: als.")));
	p->factors = PG_GETARG_INT32(6);
	if (p->factors < 1 || p->factors > RECSYS_MAX_FACTORS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("factors must be between 1 and %d, got %d",
						RECSYS_MAX_FACTORS, p->factors)));
	p->iterations = PG_GETARG_INT32(7);
	if (p->iterations < 1 || p->iterations > RECSYS_MAX_ITERATIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be between 1 and %d, got %d",
						RECSYS_MAX_ITERATIONS, p->iterations)));
	p->regularization = PG_GETARG_FLOAT8(8);
	if (!(p->regularization >= 0.0) || isinf(p->regularization))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("regularization must be a finite number >= 0, got %g",
						p->regularization)));
	p->seed = PG_GETARG_INT32(9);
}

/* Seconds since `start` */
static double
SecondsSince(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* Report a row whose normal equations could not be solved */
static void
SolveFailed(const char *side, int64 id, double regularization)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("normal equations of %s %lld are not positive definite",
					side, (long long) id),
			 errdetail("regularization is %g.", regularization),
			 errhint("Use a positive regularization.")));
}

/* Run the explicit ALS sweeps; fills log[0 .. iterations - 1] */
static void
TrainExplicit(const RecsysRatings *r, const RecsysParams *p, AlsModel *m,
			  RecsysIteration *log)
{
	AlsWorkspace ws;
	int			k = p->factors;

	AlsModelInit(m, k, r->nusers, r->nitems, r->mean, (uint64) (uint32) p->seed);
	AlsWorkspaceInit(&ws, k + 1);

	for (int it = 0; it < p->iterations; it++)
	{
		instr_time	start;
		int			failed;
		AlsLoss		loss;

		INSTR_TIME_SET_CURRENT(start);

		/* Items first, so the stored users solve against the final items */
		failed = AlsExplicitHalfStep(&r->by_item, r->mean, m->user_factors,
									 m->user_bias, m->item_factors,
									 m->item_bias, k, p->regularization, &ws);
		if (failed >= 0)
			SolveFailed("item", r->item_ids[failed], p->regularization);
		failed = AlsExplicitHalfStep(&r->by_user, r->mean, m->item_factors,
									 m->item_bias, m->user_factors,
									 m->user_bias, k, p->regularization, &ws);
		if (failed >= 0)
			SolveFailed("user", r->user_ids[failed], p->regularization);

		loss = AlsExplicitLoss(m, &r->by_user, &r->by_item, p->regularization);
		log[it].loss = loss.loss;
		log[it].rmse = loss.rmse;
		log[it].seconds = SecondsSince(start);
		if (!isfinite(loss.loss))
			elog(ERROR, "training diverged at iteration %d, please report a bug",
				 it + 1);

		ereport(NOTICE,
				(errmsg("iteration %d of %d: loss %.6f, rmse %.6f, %.3f s",
						it + 1, p->iterations, loss.loss, loss.rmse,
						log[it].seconds)));
	}
}

PG_FUNCTION_INFO_V1(recsys_train);

/*
 * CALL train(model, source, user_col, item_col, value_col, method, factors,
 * iterations, regularization, seed)
 */
Datum
recsys_train(PG_FUNCTION_ARGS)
{
	char	   *name = ModelNameArg(fcinfo, 0);
	RecsysParams params;
	RatingsSource source;
	RecsysRatings *ratings;
	AlsModel	model;
	RecsysIteration *log;
	RecsysTrained trained;
	MemoryContext train_cxt;
	MemoryContext old;
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	RequireArg(fcinfo, 1, "source");
	RequireArg(fcinfo, 2, "user_col");
	RequireArg(fcinfo, 3, "item_col");
	ParamsFromArgs(fcinfo, &params);

	source.relid = PG_GETARG_OID(1);
	source.user_col = NameStr(*PG_GETARG_NAME(2));
	source.item_col = NameStr(*PG_GETARG_NAME(3));
	source.value_col = PG_ARGISNULL(4) ? NULL : NameStr(*PG_GETARG_NAME(4));
	if (source.value_col == NULL && params.method == RECSYS_METHOD_ALS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"als\" needs a value column"),
				 errhint("Pass value_col => 'rating' (the column with the explicit ratings).")));

	CatalogLockModelName(name);

	/* All training memory goes away at once, also on error */
	train_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys training",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(train_cxt);

	ratings = RatingsLoad(&source);
	if (ratings->null_values > 0)
		ereport(NOTICE,
				(errmsg("skipped %lld rows with a null value",
						(long long) ratings->null_values)));
	if (ratings->duplicates > 0)
		ereport(NOTICE,
				(errmsg("merged %lld duplicate (user, item) rows into their mean value",
						(long long) ratings->duplicates)));

	RecsysCheckMemory(add_size(RatingsMemory(ratings->nnz, ratings->nusers, ratings->nitems),
							   add_size(AlsModelMemory(params.factors, ratings->nusers,
													   ratings->nitems),
										AlsWorkspaceMemory(params.factors))),
					  "The interactions, the factors and the solver workspace need this much.");

	log = palloc0(sizeof(RecsysIteration) * params.iterations);
	TrainExplicit(ratings, &params, &model, log);

	trained.name = name;
	trained.params = &params;
	trained.source = &source;
	trained.ratings = ratings;
	trained.model = &model;
	trained.log = log;
	trained.iterations = params.iterations;
	trained.seconds = SecondsSince(start);
	CatalogStoreModel(&trained);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(train_cxt);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(recsys_drop_model);

/* drop_model(model, if_exists): delete a model; returns whether it existed */
Datum
recsys_drop_model(PG_FUNCTION_ARGS)
{
	char	   *name = ModelNameArg(fcinfo, 0);
	bool		if_exists = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	bool		found;

	CatalogLockModelName(name);
	found = CatalogDropModel(name);
	if (!found && !if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name)));
	PG_RETURN_BOOL(found);
}
