/*-------------------------------------------------------------------------
 *
 * factor_model.c
 *	  What the factor methods (als, ials) share: training sweeps, fold-in,
 *	  scoring, explanations, similar items, forgetting a user.
 *
 * Training runs the ALS half-steps of als.c; each serving-time solve is the
 * same row solve (AlsExplicitNormal / AlsImplicitNormal and AlsSolveRow):
 *	- fold-in (recommend_for_items, refresh_user) solves one user's factors
 *	  against the stored item factors, exactly as a training half-step would;
 *	- forget_user re-solves every item the user had against all remaining
 *	  users, exactly as the item half-step would.
 *
 * Explanations decompose a score through the same normal equations.  With
 * A the user's regularized normal matrix and x_j, t_j the vector and target
 * of history item j, the user's solution is w = A^-1 sum_j t_j x_j, so for
 * a candidate item with vector x_i
 *
 *		x_i . w = sum_j t_j (x_j . A^-1 x_i)
 *
 * and item j contributes t_j (x_j . z) with z = A^-1 x_i (one solve).  For
 * implicit ALS, x_j = y_j and t_j = c_uj, and the contributions add up to
 * the whole score.  For explicit ALS, x_j = [q_j, 1] and t_j = r_uj - mu -
 * b_j, and they add up to the personal part b_u + p_u . q_i; mu + b_i is
 * left in the remainder, which also absorbs any difference between the
 * stored factors and an exact solve (conjugate-gradient training, or a
 * history changed by refresh_user).
 *
 * Which of the two a model is comes from its AlsConfig (is_explicit),
 * i.e. from its method's descriptor (method_als.c, method_ials.c).
 *
 * Hybrid models (item_features, item_text, user_features) follow the
 * regression-based latent factor model of Agarwal and Chen (KDD 2009), in
 * the MAP form that Cortes (2018) calls the offsets model: a row's factors
 * are penalized toward a prior mean set by its features rather than toward
 * zero,
 *
 *		lambda |y_i - G^T s_i|^2	 instead of	  lambda |y_i|^2,
 *
 * with G (features x k) a ridge regression of the factors on the features.
 * It stays an ALS: the half-step is the same set of independent row solves
 * (b gains lambda G^T s_i), and the feature step solves G by
 * preconditioned conjugate gradients (AlsFeatureStep).  A row with
 * features but no interactions (a new item, a visitor known by attributes)
 * gets its prior, G^T s_i.
 *
 * IDENTIFICATION
 *	  src/factor_model.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "method.h"
#include "miscadmin.h"
#include "parallel.h"
#include "portability/instr_time.h"
#include "score.h"

/*
 * Conjugate-gradient steps of each feature step: G is warm-started from
 * the previous sweep, so a few steps per sweep track the moving factors,
 * and the total over a training (iterations x 8) converges the ridge
 * regression of the last sweep closely.
 */
#define FEATURE_STEPS 8

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

/* The solver configuration of a model trained with p */
static void
ConfigOf(const RecsysParams *p, double mean, AlsConfig *c)
{
	memset(c, 0, sizeof(AlsConfig));
	c->is_explicit = p->method->explicit_values;
	c->k = p->factors;
	c->regularization = p->regularization;
	c->mean = c->is_explicit ? mean : 0.0;
	c->cg = p->solver == RECSYS_SOLVER_CG;
	c->cg_steps = p->cg_steps;
	/* The default block size may exceed small factor counts: lowered */
	if (p->solver == RECSYS_SOLVER_SUBSPACE && !c->is_explicit)
		c->block_size = Max(1, Min(p->block_size, p->factors));
}

/* One matrix's values to turn into confidences, for ParallelFor */
typedef struct WeightsTask
{
	RecsysSparse *m;
	const RecsysParams *p;
} WeightsTask;

/*
 * Turn the values of rows [begin, end) into confidences (a training
 * thread: no palloc, no ereport); false at a confidence out of range
 */
static bool
WeightsRows(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	WeightsTask *t = (WeightsTask *) arg;
	const RecsysParams *p = t->p;

	for (int64 e = t->m->indptr[begin]; e < t->m->indptr[end]; e++)
	{
		double		w = RecsysConfidence(p->scaling, p->alpha, p->epsilon,
										 t->m->values[e]);

		if (!(w < FLT_MAX))
			return false;
		t->m->values[e] = (float) w;
	}
	return true;
}

/*
 * Turn implicit values into extra confidences w = c - 1 in both matrices
 * (the kernels' input); the caller has checked that values are >= 0, and
 * `raw` holds the user-major values as they were (for the error).  On the
 * training threads: why, it was a tenth of a 1M training's setup (two
 * passes over every interaction), and each value is done alone, so the
 * result does not depend on the threads.
 */
static void
ImplicitWeights(RecsysRatings *r, const RecsysParams *p, const float *raw,
				int nthreads)
{
	WeightsTask users = {&r->by_user, p};
	WeightsTask items = {&r->by_item, p};

	/* Rows in blocks of 64 (a few thousand interactions each) */
	if (!ParallelFor(r->nusers, 64, nthreads, WeightsRows, &users) ||
		!ParallelFor(r->nitems, 64, nthreads, WeightsRows, &items))
	{
		/* The first value out of range, in user order, as a single pass */
		for (int64 e = 0; e < r->by_user.nnz; e++)
			if (!(RecsysConfidence(p->scaling, p->alpha, p->epsilon, raw[e]) < FLT_MAX))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("confidence of value %g with alpha %g is out of range for real",
								raw[e], p->alpha),
						 errhint("Use a smaller alpha, or scaling => 'log'.")));
		elog(ERROR, "a confidence was out of range, but no value gives one");
	}
}

/* Training memory of a factor model beyond the interactions */
Size
FactorMemory(const RecsysParams *p, const RecsysRatings *r)
{
	Size		subspace = 0;

	if (p->solver == RECSYS_SOLVER_SUBSPACE && !p->method->explicit_values)
	{
		/* The subspace solver's panels (the longest row) and basis */
		int64		longest = 0;

		for (int u = 0; u < r->nusers; u++)
			longest = Max(longest, r->by_user.indptr[u + 1] - r->by_user.indptr[u]);
		for (int i = 0; i < r->nitems; i++)
			longest = Max(longest, r->by_item.indptr[i + 1] - r->by_item.indptr[i]);
		subspace = AlsSubspaceMemory(p->factors, longest, Max(r->nusers, r->nitems),
									 ParallelThreads());
	}

	/* Implicit training keeps the raw values for storage besides weights */
	return add_size(add_size(add_size(AlsModelMemory(p->factors, r->nusers, r->nitems),
									  mul_size(ParallelThreads(),
											   AlsWorkspaceMemory(p->factors, 0))),
							 p->method->explicit_values ? 0 : mul_size(r->nnz, sizeof(float))),
					subspace);
}

/*
 * The hybrid part of the objective beyond the plain penalty (times
 * lambda): each side's pull toward the priors, and the feature factors'
 * own penalty, lambda_G |G|^2 relative to lambda.
 */
static double
HybridPenalty(const MethodInput *in, const MethodTrained *out, int k,
			  bool by_count)
{
	const RecsysParams *p = in->p;
	const AlsModel *m = &out->model;
	double		total = 0.0;

	if (in->items != NULL)
	{
		total += AlsPriorCorrection(&in->items->rows, &in->r->by_item, by_count,
									m->item_factors, out->item_feature_factors, k);
		for (Size i = 0; i < (Size) in->items->rows.ncols * k; i++)
			total += p->feature_regularization *
				out->item_feature_factors[i] * out->item_feature_factors[i];
	}
	if (in->users != NULL)
	{
		total += AlsPriorCorrection(&in->users->rows, &in->r->by_user, by_count,
									m->user_factors, out->user_feature_factors, k);
		for (Size i = 0; i < (Size) in->users->rows.ncols * k; i++)
			total += p->feature_regularization *
				out->user_feature_factors[i] * out->user_feature_factors[i];
	}
	return total;
}

/*
 * Train a factor model: the ALS sweeps of method als or ials, one NOTICE
 * and one log entry per iteration.
 */
void
FactorTrain(const MethodInput *in, MethodTrained *out)
{
	const RecsysParams *p = in->p;
	RecsysRatings *r = in->r;
	AlsModel   *m = &out->model;
	AlsWorkspace *ws;
	AlsConfig	c;
	AlsConfig	ci;
	AlsConfig	cu;
	int			nthreads = ParallelThreads();

	out->seen_values = r->by_user.values;
	if (!p->method->explicit_values)
	{
		out->seen_values = palloc_extended(sizeof(float) * Max(r->nnz, 1),
										   MCXT_ALLOC_HUGE);
		RecsysPrefault(out->seen_values, sizeof(float) * r->nnz);
		memcpy(out->seen_values, r->by_user.values, sizeof(float) * r->nnz);
		ImplicitWeights(r, p, out->seen_values, nthreads);
	}

	ConfigOf(p, r->mean, &c);
	AlsModelInit(m, c.k, r->nusers, r->nitems, c.mean, (uint64) (uint32) p->seed);
	ws = AlsWorkspacesCreate(nthreads, c.k + 1, 0);
	out->iterations = p->iterations;
	out->log = palloc0(sizeof(RecsysIteration) * Max(p->iterations, 1));

	/*
	 * Hybrid: each half-step pulls a row toward the prior its features give
	 * it, after a feature step has regressed the side's current factors on
	 * its features; rows of the other side known only by features stay out
	 * of its Gram.
	 */
	ci = c;
	cu = c;
	ci.other_rows = &r->by_user;
	cu.other_rows = &r->by_item;
	if (in->items != NULL)
	{
		out->item_feature_factors = palloc0(sizeof(float) * c.k *
											Max(in->items->rows.ncols, 1));
		ci.side = &in->items->rows;
		ci.side_factors = out->item_feature_factors;
	}
	if (in->users != NULL)
	{
		out->user_feature_factors = palloc0(sizeof(float) * c.k *
											Max(in->users->rows.ncols, 1));
		cu.side = &in->users->rows;
		cu.side_factors = out->user_feature_factors;
	}

	for (int it = 0; it < p->iterations; it++)
	{
		instr_time	start;
		int			failed;
		AlsLoss		loss;
		RecsysIteration *log = &out->log[it];
		double		item_seconds;
		double		user_seconds;

		INSTR_TIME_SET_CURRENT(start);

		/* Items first, so the stored users solve against the final items */
		if (ci.side != NULL)
			AlsFeatureStep(ci.side, &r->by_item, c.is_explicit, m->item_factors, c.k,
						   p->feature_regularization, FEATURE_STEPS,
						   out->item_feature_factors);
		failed = AlsHalfStep(&ci, &r->by_item, m->user_factors, m->user_bias,
							 r->nusers, m->item_factors, m->item_bias, ws, nthreads);
		if (failed >= 0)
			SolveFailed("item", r->item_ids[failed], p->regularization);
		item_seconds = RecsysSecondsSince(start);
		if (cu.side != NULL)
			AlsFeatureStep(cu.side, &r->by_user, c.is_explicit, m->user_factors, c.k,
						   p->feature_regularization, FEATURE_STEPS,
						   out->user_feature_factors);
		failed = AlsHalfStep(&cu, &r->by_user, m->item_factors, m->item_bias,
							 r->nitems, m->user_factors, m->user_bias, ws, nthreads);
		if (failed >= 0)
			SolveFailed("user", r->user_ids[failed], p->regularization);
		user_seconds = RecsysSecondsSince(start) - item_seconds;

		if (c.is_explicit)
			loss = AlsExplicitLoss(m, &r->by_user, &r->by_item, p->regularization,
								   nthreads);
		else
			loss = AlsImplicitLoss(m, &r->by_user, &r->by_item, p->regularization,
								   &ws[0], nthreads);
		if (ci.side != NULL || cu.side != NULL)
			loss.loss += p->regularization *
				HybridPenalty(in, out, c.k, c.is_explicit) / (double) r->nnz;
		log->loss = loss.loss;
		log->rmse = loss.rmse;
		log->seconds = RecsysSecondsSince(start);
		elog(DEBUG1, "iteration %d: item half-step %.3f s, user half-step %.3f s, loss %.3f s",
			 it + 1, item_seconds, user_seconds, log->seconds - item_seconds - user_seconds);
		if (!isfinite(loss.loss))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("training diverged at iteration %d: the loss is not finite",
							it + 1),
					 errhint("The values (or alpha times the values) are too large for real arithmetic; scale them down, or use scaling => 'log'.")));

		if (isnan(loss.rmse))
			ereport(NOTICE,
					(errmsg("iteration %d of %d: loss %.6f, %.3f s",
							it + 1, p->iterations, loss.loss, log->seconds)));
		else
			ereport(NOTICE,
					(errmsg("iteration %d of %d: loss %.6f, rmse %.6f, %.3f s",
							it + 1, p->iterations, loss.loss, loss.rmse,
							log->seconds)));
	}
}

/* The kernel value of a raw history value: a rating, or w = c - 1 */
static float
KernelValue(const CacheEntry *e, float raw)
{
	if (e->config.is_explicit)
		return raw;
	return (float) RecsysConfidence(e->params.scaling, e->params.alpha,
									e->params.epsilon, raw);
}

/* Error for a kernel that refused its arguments */
static void
SolveBug(void)
{
	elog(ERROR, "a BLAS or LAPACK call refused its arguments, please report a bug");
}

/* Build the normal equations of a history in e->ws (the training kernels) */
static void
BuildNormal(CacheEntry *e, const ServeHistory *h, float *kernel)
{
	const RecsysFactors *it = &e->items;

	bool		ok;

	for (int j = 0; j < h->n; j++)
		kernel[j] = KernelValue(e, h->values[j]);
	if (e->config.is_explicit)
		ok = AlsExplicitNormal(h->rows, kernel, h->n, e->config.mean, it->factors,
							   it->bias, it->k, &e->ws);
	else
	{
		CacheItemGram(e);
		ok = AlsImplicitNormal(h->rows, kernel, h->n, it->factors, it->k, &e->ws);
	}
	if (!ok)
		SolveBug();
}

/* Error for a user's normal equations that cannot be solved */
static void
FoldInFailed(const char *model)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("normal equations of the user are not positive definite in model \"%s\"",
					model),
			 errhint("Retrain the model with a positive regularization.")));
}

/* Solve a history for a user's factors and bias (fold-in) */
void
FactorFoldIn(CacheEntry *e, const ServeHistory *h, const char *model,
			 RecsysUserRow *row)
{
	float	   *kernel = palloc(sizeof(float) * Max(h->n, 1));
	int			info;

	row->bias = 0.0f;
	if (h->n == 0)
	{
		/* No interactions: the prior its features give, as in training */
		if (h->prior != NULL)
			memcpy(row->factors, h->prior, sizeof(float) * e->items.k);
		else
			memset(row->factors, 0, sizeof(float) * e->items.k);
		return;
	}
	BuildNormal(e, h, kernel);
	if (h->prior != NULL)
	{
		/* The penalty lambda |x - m|^2 adds lambda m to b */
		double		penalty = AlsRowPenalty(&e->config, h->n);

		for (int f = 0; f < e->items.k; f++)
			e->ws.b[f] += penalty * h->prior[f];
	}
	info = AlsSolveRow(&e->config, h->n, &e->ws, row->factors, &row->bias);
	if (info < 0)
		SolveBug();
	if (info > 0)
		FoldInFailed(model);
	pfree(kernel);
}

/* Score every item for a user's factors: mu + b_u + b_i + p_u . q_i */
void
FactorScore(CacheEntry *e, const RecsysUserRow *user,
			pg_attribute_unused() const ServeHistory *h, float *scores)
{
	ScoreFactors(&e->items, e->zero_bias, user->factors,
				 (float) (e->config.mean + user->bias), scores);
}

/* The predicted value of one item */
double
FactorPredict(CacheEntry *e, const RecsysUserRow *user,
			  pg_attribute_unused() const ServeHistory *h, int32 item)
{
	return e->config.mean + user->bias + e->items.bias[item] +
		ScoreDot(user->factors, e->items.factors + (Size) item * e->items.k,
				 e->items.k);
}

/*
 * Contributions of the history to item's score (see the file header);
 * returns the stored score mu + b_u + b_i + p_u . q_i.
 */
double
FactorExplain(CacheEntry *e, const RecsysUserRow *user, const ServeHistory *h,
			  int32 item, const char *model, float *contrib)
{
	int			k = e->items.k;
	bool		explicit = e->config.is_explicit;
	int			d = explicit ? k + 1 : k;
	double	   *z = palloc(sizeof(double) * d);
	float	   *kernel = palloc(sizeof(float) * Max(h->n, 1));

	/* z = A^-1 x_i, through the user's regularized normal equations */
	for (int f = 0; f < k; f++)
		z[f] = e->items.factors[(Size) item * k + f];
	if (explicit)
		z[k] = 1.0;
	if (h->n > 0)
	{
		int			info;

		BuildNormal(e, h, kernel);
		info = AlsSolve(e->ws.a, z, d, AlsRowPenalty(&e->config, h->n));
		if (info < 0)
			SolveBug();
		if (info > 0)
			FoldInFailed(model);
	}

	/* Contribution of history item j: t_j (x_j . z) */
	for (int j = 0; j < h->n; j++)
	{
		const float *x = e->items.factors + (Size) h->rows[j] * k;
		double		dot = explicit ? z[k] : 0.0;
		double		t = explicit ?
			kernel[j] - e->config.mean - e->items.bias[h->rows[j]] :
			1.0 + kernel[j];

		for (int f = 0; f < k; f++)
			dot += x[f] * z[f];
		contrib[j] = (float) (t * dot);
	}
	return FactorPredict(e, user, h, item);
}

/* Cosine similarity of the item's factors to every item's */
void
FactorSimilarItems(CacheEntry *e, int32 item, float *scores)
{
	ScoreCosine(&e->items, CacheItemNorms(e), item, scores);
}

/* Normal equations of the items being re-solved by FactorForget */
typedef struct ForgetState
{
	const RecsysModelInfo *info;
	bool		explicit;
	int			d;				/* unknowns per item */
	int			naffected;
	IdMap	   *slot;			/* affected item id -> slot */
	double	   *a;				/* naffected packed d x d triangles */
	double	   *b;				/* naffected x d right-hand sides */
	int64	   *count;			/* remaining interactions per item */
	double	   *gram;			/* implicit: packed sum of x_u x_u^T, all users */
	int64		forgotten;		/* the user being removed (the scan may see them) */
	float	   *x;				/* scratch: one user's vector */
	float	   *sx;				/* scratch: the same, scaled */
} ForgetState;

/* Add one batch of remaining users to the affected items' equations */
static void
ForgetBatch(void *arg, const int64 *ids, const RecsysUserRow *rows, int n)
{
	ForgetState *st = (ForgetState *) arg;
	const RecsysModelInfo *info = st->info;
	int			k = info->factors;
	int			d = st->d;
	float	   *x = st->x;

	for (int j = 0; j < n; j++)
	{
		const RecsysUserRow *u = &rows[j];

		/* Users known only by features are not in the objective */
		if (ids[j] == st->forgotten || u->nseen == 0)
			continue;
		memcpy(x, u->factors, sizeof(float) * k);
		if (st->explicit)
			x[k] = 1.0f;
		else
		{
			/* Y^T Y over all users: every item's confidence-1 baseline */
			AlsAccumulateRow(st->gram, NULL, d, x, 0.0);
		}

		for (int s = 0; s < u->nseen; s++)
		{
			int32		slot = IdMapLookup(st->slot, u->seen[s]);
			double		v = u->seen_values[s];
			double	   *a;
			double	   *b;

			if (slot < 0)
				continue;
			st->count[slot]++;
			a = st->a + (Size) slot * AlsPackedSize(d);
			b = st->b + (Size) slot * d;
			if (st->explicit)
				AlsAccumulateRow(a, b, d, x, v - info->global_mean - u->bias);
			else
			{
				/* Observed: w x x^T into A and (1 + w) x into b */
				double		w = RecsysConfidence(info->params.scaling,
												 info->params.alpha,
												 info->params.epsilon, v);

				for (int f = 0; f < d; f++)
				{
					b[f] += (1.0 + w) * x[f];
					st->sx[f] = (float) sqrt(w) * x[f];
				}
				AlsAccumulateRow(a, NULL, d, st->sx, 0.0);
			}
		}
	}
}

/*
 * forget_user for factor models: re-solve every item the user had against
 * all remaining users, as the item half-step would; items nobody else had
 * are deleted.  The user's row is already gone.
 */
void
FactorForget(ForgetContext *fc)
{
	const RecsysModelInfo *info = fc->info;
	const RecsysUserRow *user = fc->user;
	CacheEntry *e = fc->e;
	int			k = info->factors;
	ForgetState st;
	RecsysFactors upd;
	int64	   *gone;
	int			ngone = 0;
	double	   *a;

	memset(&st, 0, sizeof(st));
	st.info = info;
	st.explicit = e->config.is_explicit;
	st.d = st.explicit ? k + 1 : k;
	st.slot = IdMapCreate(Max(user->nseen, 1));
	for (int s = 0; s < user->nseen; s++)
		if (IdMapLookup(e->index, user->seen[s]) >= 0 &&
			IdMapLookup(st.slot, user->seen[s]) < 0)
			IdMapSet(st.slot, user->seen[s], st.naffected++);
	if (st.naffected == 0)
	{
		CatalogBumpVersion(info, 1, 0, user->nseen);
		return;
	}
	st.a = palloc_extended(sizeof(double) * AlsPackedSize(st.d) * st.naffected,
						   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st.b = palloc0(sizeof(double) * st.d * st.naffected);
	st.count = palloc0(sizeof(int64) * st.naffected);
	st.gram = palloc0(sizeof(double) * AlsPackedSize(st.d));
	st.forgotten = fc->user_id;
	st.x = palloc(sizeof(float) * st.d);
	st.sx = palloc(sizeof(float) * st.d);
	CatalogForEachUserBatch(info, 1024, true, ForgetBatch, &st);

	/* Solve each affected item; items with nobody left are deleted */
	upd.k = k;
	upd.n = 0;
	upd.ids = palloc(sizeof(int64) * st.naffected);
	upd.factors = palloc0(sizeof(float) * Max(k, 1) * st.naffected);
	upd.bias = palloc0(sizeof(float) * st.naffected);
	upd.popularity = palloc(sizeof(int64) * st.naffected);
	gone = palloc(sizeof(int64) * st.naffected);
	a = palloc(sizeof(double) * st.d * st.d);
	for (int s = 0; s < user->nseen; s++)
	{
		int32		slot = IdMapLookup(st.slot, user->seen[s]);
		int32		row = IdMapLookup(e->index, user->seen[s]);
		double	   *b = st.b + (Size) slot * st.d;
		int			info;

		if (slot < 0 || row < 0 || st.count[slot] < 0)
			continue;
		if (st.count[slot] == 0)
		{
			gone[ngone++] = user->seen[s];
			st.count[slot] = -1;
			continue;
		}
		upd.ids[upd.n] = user->seen[s];
		upd.popularity[upd.n] = st.count[slot];
		AlsUnpack(st.a + (Size) slot * AlsPackedSize(st.d), a, st.d);
		if (!st.explicit)
		{
			double	   *g = palloc(sizeof(double) * st.d * st.d);

			AlsUnpack(st.gram, g, st.d);
			for (int i = 0; i < st.d * st.d; i++)
				a[i] += g[i];
			pfree(g);
		}
		if (e->item_features.factors != NULL)
		{
			/* Hybrid: the item's prior from its features, as in training */
			const RecsysSparse *rows = &e->item_features.rows;
			double		penalty = AlsRowPenalty(&e->config, st.count[slot]);

			for (int64 x = rows->indptr[row]; x < rows->indptr[row + 1]; x++)
				for (int f = 0; f < k; f++)
					b[f] += penalty * rows->values[x] *
						e->item_features.factors[(Size) rows->indices[x] * k + f];
		}
		info = AlsSolve(a, b, st.d, AlsRowPenalty(&e->config, st.count[slot]));
		if (info < 0)
			SolveBug();
		if (info > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("normal equations of item %lld are not positive definite",
							(long long) user->seen[s]),
					 errhint("Retrain the model with a positive regularization.")));
		for (int f = 0; f < k; f++)
			upd.factors[(Size) upd.n * k + f] = (float) b[f];
		if (st.explicit)
			upd.bias[upd.n] = (float) b[k];
		st.count[slot] = -1;
		upd.n++;
		fc->resolved++;
	}
	CatalogUpdateItems(info, &upd, gone, ngone);
	CatalogBumpVersion(info, 1, ngone, user->nseen);
}

/*
 * recommend_for_features for hybrid models: a visitor known only by user
 * features g (weights t_g) gets the factors a user with no interactions
 * gets in training, the prior sum_g t_g h_g (user bias 0), and the items
 * are scored against them.
 */
bool
FactorScoreFeatures(CacheEntry *e, char **names, const float *weights, int n,
					const char *model, float *scores)
{
	const ModelFeatures *uf = &e->user_features;
	int			k = e->items.k;
	float	   *x = palloc0(sizeof(float) * k);
	bool		known = false;

	if (uf->nfeatures == 0 || uf->factors == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model \"%s\" was trained without user_features", model),
				 errhint("Train it with options => '{\"user_features\": \"...\"}' (user id, feature), or use recommend_for_items.")));
	for (int j = 0; j < n; j++)
	{
		int32		f = CacheFeatureRow(uf, names[j]);

		if (f < 0)
			continue;
		known = true;
		/* Auto-vectorized */
		for (int d = 0; d < k; d++)
			x[d] += weights[j] * uf->factors[(Size) f * k + d];
	}
	if (!known)
		return false;
	ScoreFactors(&e->items, e->zero_bias, x, (float) e->config.mean, scores);
	return true;
}

/*
 * refresh_item for factor models: the item's factors from its current
 * interactions (the stored factors of its users) and features, as the
 * item half-step of a hybrid training solves them; an item without
 * interactions is solved from its features alone.
 */
void
FactorRefreshItem(CacheEntry *e, const RecsysModelInfo *info,
				  pg_attribute_unused() int64 item_id,
				  const RatingsUser *users, const RecsysSparse *features,
				  MethodItemRow *out)
{
	int			k = e->items.k;
	AlsWorkspace *ws = &e->ws;
	const ModelFeatures *itf = &e->item_features;
	float	   *prior = palloc0(sizeof(float) * k);
	int32	   *rows = palloc(sizeof(int32) * Max(users->n, 1));
	float	   *vals = palloc(sizeof(float) * Max(users->n, 1));
	int			n = 0;
	int			result;
	float		bias = 0.0f;

	/* The users of the item that the model knows, with confidences */
	CacheLoadUsers(e, info);
	for (int j = 0; j < users->n; j++)
	{
		int32		u = IdMapLookup(e->user_index, users->items[j]);

		if (u < 0)
			continue;
		rows[n] = u;
		vals[n] = KernelValue(e, users->values[j]);
		n++;
	}

	/* The prior its features give it */
	if (itf->factors != NULL)
		for (int64 x = 0; x < features->nnz; x++)
			for (int d = 0; d < k; d++)
				prior[d] += features->values[x] *
					itf->factors[(Size) features->indices[x] * k + d];

	if (n == 0)
	{
		/* No interactions: the item sits at its prior, as in training */
		memcpy(out->factors, prior, sizeof(float) * k);
		out->bias = 0.0f;
		out->popularity = 0;
		out->nfeatures = (int) features->nnz;
		out->features = features->indices;
		out->weights = features->values;
		return;
	}
	if (e->config.is_explicit)
	{
		/* The item's ratings against its users' factors and biases */
		if (!AlsExplicitNormal(rows, vals, n, e->config.mean, e->users.factors,
							   e->users.bias, k, ws))
			SolveBug();
	}
	else
	{
		/* X^T X over the users with interactions, then the item's own */
		float	   *warm = palloc_extended(sizeof(float) * Max(e->users.n, 1) * k,
										   MCXT_ALLOC_HUGE);
		int			nwarm = 0;

		for (int u = 0; u < e->users.n; u++)
			if (e->users.popularity[u] > 0)
				memcpy(warm + (Size) nwarm++ * k, e->users.factors + (Size) u * k,
					   sizeof(float) * k);
		AlsGramInto(warm, nwarm, k, NULL, ws->yty, ws->yty_f, ws);
		pfree(warm);
		if (!AlsImplicitNormal(rows, vals, n, e->users.factors, k, ws))
			SolveBug();
	}
	/* The penalty lambda |y - m|^2 adds lambda m to b */
	for (int d = 0; d < k; d++)
		ws->b[d] += AlsRowPenalty(&e->config, n) * prior[d];
	result = AlsSolveRow(&e->config, n, ws, out->factors, &bias);
	if (result < 0)
		SolveBug();
	if (result > 0)
		FoldInFailed(info->name);
	/* Y^T Y of the items is computed anew by the next fold-in */
	e->has_gram = false;
	out->bias = bias;
	out->popularity = users->n;
	out->nfeatures = (int) features->nnz;
	out->features = features->indices;
	out->weights = features->values;
}
