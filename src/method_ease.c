/*-------------------------------------------------------------------------
 *
 * method_ease.c
 *	  Method "ease": the Embarrassingly Shallow Autoencoder.
 *
 * EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
 * WWW 2019) learns an item-item matrix in closed form:
 *
 *		P = (X^T X + lambda I)^-1,	B = I - P diagMat(1 / diag(P)),
 *		diag(B) = 0,  i.e.  B_ij = -P_ij / P_jj  (i != j)
 *
 * and scores a user's history x_u as x_u B.  One dense Cholesky inverse of
 * an items x items matrix (ease.c): memory grows with the square of the
 * catalog, so the estimate is checked against maintenance_work_mem before
 * anything is allocated.  Each item's row of B is stored sparsified to its
 * `neighbors` largest weights (0: all of them), and served like item_knn
 * (neighbor_model.c).
 *
 * IDENTIFICATION
 *	  src/method_ease.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "ease.h"
#include "method.h"
#include "miscadmin.h"
#include "parallel.h"

/* Most neighbours per item (0 keeps them all) */
#define EASE_MAX_NEIGHBORS 100000

/* The options of method ease */
static const MethodOption ease_options[] = {
	{"regularization", METHOD_OPTION_REAL, offsetof(RecsysParams, regularization), 500, 0,
	DBL_MAX, true, NULL, "lambda, added to the diagonal of X^T X (the paper's range: 100 to 1000s)", OPTION_SHOW_ALWAYS},
	{"neighbors", METHOD_OPTION_INT, offsetof(RecsysParams, neighbors), 200, 0,
	EASE_MAX_NEIGHBORS, false, NULL, "the largest weights kept per item (0: the whole row)", OPTION_SHOW_ALWAYS},
	{"binary", METHOD_OPTION_BOOL, offsetof(RecsysParams, binary), 1, 0,
	1, false, NULL, "every interaction counts 1 instead of its value", OPTION_SHOW_ALWAYS},
	METHOD_OPTIONS_PREPROCESS,
	METHOD_OPTION_END
};

/*
 * Training memory, checked here with its own message: it grows with the
 * square of the catalog, not with the interactions.
 */
static Size
EaseTrainMemory(const RecsysParams *p, const RecsysRatings *r)
{
	Size		need = EaseMemory(r->nitems, p->neighbors, ParallelThreads());
	Size		budget = RecsysMemoryBudget();

	if (need > budget)
	{
		/* The largest catalog that fits, by bisection on EaseMemory */
		int			lo = 1;
		int			hi = r->nitems;

		while (lo < hi)
		{
			int			mid = lo + (hi - lo + 1) / 2;

			if (EaseMemory(mid, p->neighbors, ParallelThreads()) <= budget)
				lo = mid;
			else
				hi = mid - 1;
		}

		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("method \"ease\" needs about %zu MB for %d items, but maintenance_work_mem is %d MB",
						need / (1024 * 1024) + 1, r->nitems, maintenance_work_mem / 1024),
				 errdetail("EASE inverts an items x items matrix: 4 bytes times the square of the number of items, three times that with neighbors 0 (about %d items fit in %d MB; 16,384 items need 1 GB).",
						   lo, maintenance_work_mem / 1024),
				 errhint("SET maintenance_work_mem = '%zuMB', or use method => 'item_knn', whose memory grows with the interactions.",
						 need / (1024 * 1024) + 64)));
	}
	return need;
}

/* Learn B and keep each item's largest weights */
static void
EaseTrain(const MethodInput *in, MethodTrained *out)
{
	const RecsysParams *p = in->p;
	RecsysRatings *r = in->r;
	int			rc;

	AlsModelInit(&out->model, 0, r->nusers, r->nitems, 0.0, 0);
	out->seen_values = r->by_user.values;
	out->graph = palloc0(sizeof(KnnGraph));
	rc = EaseBuild(&r->by_user, p->regularization, p->binary, p->neighbors,
				   ParallelThreads(), out->graph, NULL);
	if (rc == EASE_NOT_POSITIVE_DEFINITE)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("X^T X + lambda I is not positive definite in single precision with regularization %g",
						p->regularization),
				 errhint("Use a larger regularization, for example 500.")));
	if (rc == EASE_VALUES_TOO_LARGE)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the values are too large: X^T X overflows real"),
				 errhint("Train with options => '{\"binary\": true}', or scale the values down.")));
	if (rc != 0)
		elog(ERROR, "EaseBuild failed with code %d, please report a bug", rc);
}

const RecsysMethod MethodEase = {
	.name = "ease",
	.code = 5,
	.summary = "closed-form item-item model for catalogs up to about 20,000 items",
	.options = ease_options,
	.factors = false,
	.neighbors = true,
	.explicit_values = false,
	.personal = true,
	.check = NULL,
	.memory = EaseTrainMemory,
	.train = EaseTrain,
	.fold_in = NULL,
	.score = NeighborScore,
	.predict = NeighborPredict,
	.explain = NeighborExplain,
	.similar_items = NeighborSimilarItems,
	.forget = ForgetByRetraining,
};
