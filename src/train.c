/*-------------------------------------------------------------------------
 *
 * train.c
 *	  CALL train(...) and drop_model(): argument checks and the training loop.
 *
 * Training happens in four steps, all inside the caller's transaction:
 *	1. take a lock on the model name, so that concurrent trainings of the
 *	   same model run one after the other;
 *	2. read the source once into sparse matrices (ratings.c);
 *	3. run the ALS sweeps in memory (als.c), reporting each iteration (the
 *	   popular method just counts);
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

#include <float.h>
#include <math.h>

#include "als.h"
#include "cache.h"
#include "catalog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parallel.h"
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
	char	   *scaling;

	RequireArg(fcinfo, 5, "method");
	RequireArg(fcinfo, 6, "factors");
	RequireArg(fcinfo, 7, "iterations");
	RequireArg(fcinfo, 8, "regularization");
	RequireArg(fcinfo, 9, "seed");
	RequireArg(fcinfo, 10, "alpha");
	RequireArg(fcinfo, 12, "cg_steps");
	RequireArg(fcinfo, 13, "scaling");
	RequireArg(fcinfo, 14, "epsilon");

	method = text_to_cstring(PG_GETARG_TEXT_PP(5));
	if (!RecsysParseMethod(method, &p->method))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown method \"%s\"", method),
				 errhint("Supported methods: als (explicit ratings), ials (implicit feedback), popular.")));
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
	RecsysCheckNumber("regularization", p->regularization, 0.0, false);
	p->seed = PG_GETARG_INT32(9);
	p->alpha = PG_GETARG_FLOAT8(10);
	RecsysCheckNumber("alpha", p->alpha, 0.0, false);

	/* Cholesky for explicit ALS; conjugate gradient by default for implicit */
	if (PG_ARGISNULL(11))
		p->cg = p->method == RECSYS_METHOD_IALS;
	else
	{
		char	   *solver = text_to_cstring(PG_GETARG_TEXT_PP(11));

		if (strcmp(solver, "cg") == 0)
			p->cg = true;
		else if (strcmp(solver, "cholesky") == 0)
			p->cg = false;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown solver \"%s\"", solver),
					 errhint("Supported solvers: cholesky (exact), cg (conjugate gradient, method ials).")));
		if (p->cg && p->method != RECSYS_METHOD_IALS)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("solver \"cg\" is only available for method \"ials\"")));
	}
	p->cg_steps = PG_GETARG_INT32(12);
	if (p->cg_steps < 1 || p->cg_steps > RECSYS_MAX_CG_STEPS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cg_steps must be between 1 and %d, got %d",
						RECSYS_MAX_CG_STEPS, p->cg_steps)));
	scaling = text_to_cstring(PG_GETARG_TEXT_PP(13));
	if (strcmp(scaling, "linear") == 0)
		p->scaling = RECSYS_SCALING_LINEAR;
	else if (strcmp(scaling, "log") == 0)
		p->scaling = RECSYS_SCALING_LOG;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown scaling \"%s\"", scaling),
				 errhint("Supported scalings: linear (1 + alpha * value), log (1 + alpha * log(1 + value / epsilon)).")));
	p->epsilon = PG_GETARG_FLOAT8(14);
	RecsysCheckNumber("epsilon", p->epsilon, 0.0, true);

	/* The popular baseline has no factors and no sweeps */
	if (p->method == RECSYS_METHOD_POPULAR)
	{
		p->factors = 0;
		p->iterations = 0;
	}
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
			 errhint("Use a positive regularization; with very large values, scale them down.")));
}

/*
 * Turn implicit values into extra confidences w = c - 1 in both matrices
 * (the kernels' input); values must be >= 0.
 */
static void
ImplicitWeights(RecsysRatings *r, const RecsysParams *p, const char *value_col)
{
	for (int u = 0; u < r->nusers; u++)
	{
		for (int64 e = r->by_user.indptr[u]; e < r->by_user.indptr[u + 1]; e++)
		{
			float		v = r->by_user.values[e];
			double		w;

			if (v < 0.0f)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("value column \"%s\" contains negative value %g for user %lld, item %lld",
								value_col, v, (long long) r->user_ids[u],
								(long long) r->item_ids[r->by_user.indices[e]]),
						 errhint("Implicit feedback values (counts, durations, weights) must be >= 0.")));
			w = RecsysConfidence(p->scaling, p->alpha, p->epsilon, v);
			if (!(w < FLT_MAX))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("confidence of value %g with alpha %g is out of range for real",
								v, p->alpha),
						 errhint("Use a smaller alpha, or scaling => 'log'.")));
			r->by_user.values[e] = (float) w;
		}
	}
	for (int64 e = 0; e < r->by_item.nnz; e++)
		r->by_item.values[e] = (float) RecsysConfidence(p->scaling, p->alpha,
														p->epsilon,
														r->by_item.values[e]);
}

/* Run the ALS sweeps of method als or ials; fills log[0 .. iterations - 1] */
static void
TrainAls(const RecsysRatings *r, const RecsysParams *p, AlsModel *m,
		 RecsysIteration *log)
{
	AlsWorkspace *ws;
	AlsConfig	c;
	int			k = p->factors;
	int			nthreads = ParallelThreads();

	c.method = p->method;
	c.k = k;
	c.regularization = p->regularization;
	c.mean = p->method == RECSYS_METHOD_ALS ? r->mean : 0.0;
	c.cg = p->cg;
	c.cg_steps = p->cg_steps;

	AlsModelInit(m, k, r->nusers, r->nitems, c.mean, (uint64) (uint32) p->seed);
	ws = AlsWorkspacesCreate(nthreads, k + 1, 0);

	for (int it = 0; it < p->iterations; it++)
	{
		instr_time	start;
		int			failed;
		AlsLoss		loss;

		INSTR_TIME_SET_CURRENT(start);

		/* Items first, so the stored users solve against the final items */
		failed = AlsHalfStep(&c, &r->by_item, m->user_factors, m->user_bias,
							 r->nusers, m->item_factors, m->item_bias, ws, nthreads);
		if (failed >= 0)
			SolveFailed("item", r->item_ids[failed], p->regularization);
		failed = AlsHalfStep(&c, &r->by_user, m->item_factors, m->item_bias,
							 r->nitems, m->user_factors, m->user_bias, ws, nthreads);
		if (failed >= 0)
			SolveFailed("user", r->user_ids[failed], p->regularization);

		if (p->method == RECSYS_METHOD_ALS)
			loss = AlsExplicitLoss(m, &r->by_user, &r->by_item, p->regularization,
								   nthreads);
		else
			loss = AlsImplicitLoss(m, &r->by_user, p->regularization, &ws[0], nthreads);
		log[it].loss = loss.loss;
		log[it].rmse = loss.rmse;
		log[it].seconds = SecondsSince(start);
		if (!isfinite(loss.loss))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("training diverged at iteration %d: the loss is not finite",
							it + 1),
					 errhint("The values (or alpha times the values) are too large for real arithmetic; scale them down, or use scaling => 'log'.")));

		if (isnan(loss.rmse))
			ereport(NOTICE,
					(errmsg("iteration %d of %d: loss %.6f, %.3f s",
							it + 1, p->iterations, loss.loss, log[it].seconds)));
		else
			ereport(NOTICE,
					(errmsg("iteration %d of %d: loss %.6f, rmse %.6f, %.3f s",
							it + 1, p->iterations, loss.loss, loss.rmse,
							log[it].seconds)));
	}
}

/*
 * The popular baseline: each item's score is its number of interactions,
 * or the sum of its values when the model has a value column.
 */
static void
TrainPopular(const RecsysRatings *r, bool has_values, AlsModel *m)
{
	AlsModelInit(m, 0, r->nusers, r->nitems, 0.0, 0);
	for (int i = 0; i < r->nitems; i++)
	{
		double		score = 0.0;

		for (int64 e = r->by_item.indptr[i]; e < r->by_item.indptr[i + 1]; e++)
			score += has_values ? r->by_item.values[e] : 1.0;
		if (!(fabs(score) < FLT_MAX))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the sum of the values of item %lld is out of range for real",
							(long long) r->item_ids[i]),
					 errhint("Scale the values down, or train without value_col to rank by counts.")));
		m->item_bias[i] = (float) score;
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
	float	   *seen_values;
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
	source.sum_duplicates = params.method != RECSYS_METHOD_ALS;
	if (source.value_col == NULL && params.method == RECSYS_METHOD_ALS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"als\" needs a value column"),
				 errhint("Pass value_col => 'rating' (the column with the explicit ratings), or use method => 'ials' for implicit feedback.")));

	CatalogLockModelName(name, true);
	CatalogCheckTrainable(name, &source);

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
				(errmsg("merged %lld duplicate (user, item) rows into their %s",
						(long long) ratings->duplicates,
						source.sum_duplicates ? "sum" : "mean value")));

	/* Implicit training keeps the raw values for storage besides weights */
	RecsysCheckMemory(add_size(add_size(RatingsMemory(ratings->nnz, ratings->nusers,
													  ratings->nitems),
										mul_size(ratings->nnz, sizeof(float))),
							   add_size(AlsModelMemory(params.factors, ratings->nusers,
													   ratings->nitems),
										mul_size(ParallelThreads(),
												 AlsWorkspaceMemory(params.factors, 0)))),
					  "The interactions, the factors and the solver workspace need this much.");

	log = palloc0(sizeof(RecsysIteration) * Max(params.iterations, 1));
	seen_values = ratings->by_user.values;
	if (params.method == RECSYS_METHOD_POPULAR)
		TrainPopular(ratings, source.value_col != NULL, &model);
	else
	{
		if (params.method == RECSYS_METHOD_IALS)
		{
			seen_values = palloc_extended(sizeof(float) * Max(ratings->nnz, 1),
										  MCXT_ALLOC_HUGE);
			memcpy(seen_values, ratings->by_user.values, sizeof(float) * ratings->nnz);
			ImplicitWeights(ratings, &params,
							source.value_col ? source.value_col : "(none)");
		}
		TrainAls(ratings, &params, &model, log);
	}

	RatingsReleaseForStore(ratings, seen_values == ratings->by_user.values);

	trained.name = name;
	trained.params = &params;
	trained.source = &source;
	trained.ratings = ratings;
	trained.model = &model;
	trained.log = log;
	trained.seen_values = seen_values;
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
	int64		model_id;

	CatalogLockModelName(name, true);
	found = CatalogDropModel(name, &model_id);
	if (found)
		CacheDropModel(model_id);
	if (!found && !if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name)));
	PG_RETURN_BOOL(found);
}
