/*-------------------------------------------------------------------------
 *
 * method_ials.c
 *	  Method "ials": implicit feedback, weighted matrix factorization.
 *
 * Implicit ALS (Hu, Koren and Volinsky, ICDM 2008): every user-item pair
 * has preference 1 if observed, else 0, with confidence 1 + alpha * v
 * (linear) or 1 + alpha * log(1 + v / epsilon) (log scaling), solved
 * exactly (Cholesky) or by a few conjugate-gradient steps per row
 * (Takacs, Pilaszy and Tikk, RecSys 2011).  With item_features,
 * item_text or user_features it is a hybrid model: each row is pulled
 * toward a prior its features give (the regression-based latent factor
 * model of Agarwal and Chen, KDD 2009; factor_model.c).  The math is in
 * als.c, what factor models share in factor_model.c.
 *
 * IDENTIFICATION
 *	  src/method_ials.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "method.h"

/*
 * Coordinates per block of the subspace solver.  Why 2: in the basis the
 * solver works in (als.c) the block size hardly changes the loss an
 * iteration reaches (blocks of 1 to 32 within 0.02% at k = 64), so the
 * fastest kernel decides: 2 (measured by test/bench/solvers, see doc/training.md).
 */
#define IALS_DEFAULT_BLOCK_SIZE 2

/* Solvers of implicit ALS, conjugate gradient by default */
static const MethodChoice ials_solvers[] = {
	{"cg", RECSYS_SOLVER_CG},
	{"cholesky", RECSYS_SOLVER_CHOLESKY},
	{"subspace", RECSYS_SOLVER_SUBSPACE},
	{NULL, 0}
};

/* How values become confidences */
static const MethodChoice ials_scalings[] = {
	{"linear", RECSYS_SCALING_LINEAR},
	{"log", RECSYS_SCALING_LOG},
	{NULL, 0}
};

/* The options of method ials */
static const MethodOption ials_options[] = {
	METHOD_OPTION_FACTORS,
	METHOD_OPTION_ITERATIONS,
	{"regularization", METHOD_OPTION_REAL, offsetof(RecsysParams, regularization), 0.1, 0,
	DBL_MAX, false, NULL, "lambda, the penalty on the squared norms of the factors", OPTION_SHOW_ALWAYS},
	METHOD_OPTION_SEED,
	{"alpha", METHOD_OPTION_REAL, offsetof(RecsysParams, alpha), 1.0, 0,
	DBL_MAX, false, NULL, "the confidence scale: confidence is 1 + alpha * value (linear scaling)", OPTION_SHOW_ALWAYS},
	{"scaling", METHOD_OPTION_CHOICE, offsetof(RecsysParams, scaling), RECSYS_SCALING_LINEAR, 0,
	0, false, ials_scalings, "linear (1 + alpha * value) or log (1 + alpha * log(1 + value / epsilon))", OPTION_SHOW_ALWAYS},
	{"epsilon", METHOD_OPTION_REAL, offsetof(RecsysParams, epsilon), 1.0, 0,
	DBL_MAX, true, NULL, "the value unit of log scaling", OPTION_SHOW_ALWAYS},
	{"solver", METHOD_OPTION_CHOICE, offsetof(RecsysParams, solver), RECSYS_SOLVER_CG, 0,
	0, false, ials_solvers, "cg (a few conjugate-gradient steps per row), cholesky (exact) or subspace (a sweep of block coordinate descent per row, iALS++)", OPTION_SHOW_ALWAYS},
	{"cg_steps", METHOD_OPTION_INT, offsetof(RecsysParams, cg_steps), 3, 1,
	RECSYS_MAX_CG_STEPS, false, NULL, "conjugate-gradient steps per row and half-step", OPTION_SHOW_ALWAYS},
	{"block_size", METHOD_OPTION_INT, offsetof(RecsysParams, block_size), IALS_DEFAULT_BLOCK_SIZE, 1,
	RECSYS_MAX_FACTORS, false, NULL, "subspace solver: coordinates solved together, 1 to factors (factors: exact)", OPTION_SHOW_WITH_SUBSPACE},
	METHOD_OPTIONS_HYBRID,
	METHOD_OPTIONS_PREPROCESS,
	METHOD_OPTION_END
};

/*
 * Options across each other: block_size belongs to the subspace solver and
 * is at most factors.  A default larger than factors is lowered to it, so
 * the stored params show the block size the training used.
 */
static void
IalsCheck(RecsysParams *p, pg_attribute_unused() const RatingsSource *src)
{
	if (p->solver != RECSYS_SOLVER_SUBSPACE)
	{
		if (p->block_size != IALS_DEFAULT_BLOCK_SIZE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"block_size\" of method \"ials\" applies only to solver \"subspace\", got block_size %d with solver \"%s\"",
							p->block_size, MethodChoiceName(p->method, "solver", p->solver)),
					 errhint("Add solver => 'subspace', or leave block_size out.")));
		return;
	}
	if (p->block_size > p->factors && p->block_size == IALS_DEFAULT_BLOCK_SIZE)
		p->block_size = p->factors;
	if (p->block_size > p->factors)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"block_size\" of method \"ials\" must be between 1 and factors (%d), got %d",
						p->factors, p->block_size),
				 errhint("block_size = factors solves each row exactly, like solver => 'cholesky'.")));
}

const RecsysMethod MethodIals = {
	.name = "ials",
	.code = 2,
	.summary = "implicit feedback",
	.options = ials_options,
	.factors = true,
	.neighbors = false,
	.explicit_values = false,
	.personal = true,
	.features = true,
	.check = IalsCheck,
	.memory = FactorMemory,
	.train = FactorTrain,
	.fold_in = FactorFoldIn,
	.score = FactorScore,
	.predict = FactorPredict,
	.explain = FactorExplain,
	.similar_items = FactorSimilarItems,
	.score_features = FactorScoreFeatures,
	.refresh_item = FactorRefreshItem,
	.forget = FactorForget,
};
