/*-------------------------------------------------------------------------
 *
 * method_als.c
 *	  Method "als": explicit ratings, matrix factorization with biases.
 *
 * The model (Koren, Bell and Volinsky, IEEE Computer 2009) predicts
 * r_ui ~ mu + b_u + b_i + p_u . q_i, trained by alternating least squares
 * with ALS-WR regularization (Zhou et al., AAIM 2008); the math is in
 * als.c, what factor models share in factor_model.c.
 *
 * IDENTIFICATION
 *	  src/method_als.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "method.h"

/* Solvers of explicit ALS: the normal equations are small and exact */
static const MethodChoice als_solvers[] = {
	{"cholesky", RECSYS_SOLVER_CHOLESKY},
	{NULL, 0}
};

/* The options of method als */
static const MethodOption als_options[] = {
	METHOD_OPTION_FACTORS,
	METHOD_OPTION_ITERATIONS,
	{"regularization", METHOD_OPTION_REAL, offsetof(RecsysParams, regularization), 0.1, 0,
	DBL_MAX, false, NULL, "lambda of the ALS-WR penalty, per rating of each user and item", OPTION_SHOW_ALWAYS},
	METHOD_OPTION_SEED,
	{"solver", METHOD_OPTION_CHOICE, offsetof(RecsysParams, solver), RECSYS_SOLVER_CHOLESKY, 0,
	0, false, als_solvers, "how each row's normal equations are solved", OPTION_SHOW_ALWAYS},
	METHOD_OPTIONS_HYBRID,
	METHOD_OPTIONS_PREPROCESS,
	METHOD_OPTION_END
};

const RecsysMethod MethodAls = {
	.name = "als",
	.code = 1,
	.summary = "explicit ratings",
	.options = als_options,
	.factors = true,
	.neighbors = false,
	.explicit_values = true,
	.personal = true,
	.features = true,
	.check = NULL,
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
