/*-------------------------------------------------------------------------
 *
 * method_popular.c
 *	  Method "popular": items ranked by their number of interactions.
 *
 * The baseline every personal method must beat: each item's score is its
 * number of distinct users, or the sum of its values when the model has a
 * value column; everyone gets the same ranking (minus what they have seen).
 *
 * IDENTIFICATION
 *	  src/method_popular.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "method.h"

/* The options of method popular: the preprocessing */
static const MethodOption popular_options[] = {
	METHOD_OPTIONS_PREPROCESS,
	METHOD_OPTION_END
};

/* No memory beyond the interactions and one score per item */
static Size
PopularMemory(pg_attribute_unused() const RecsysParams *p, const RecsysRatings *r)
{
	return mul_size(r->nitems, sizeof(float));
}

/* Each item's score: its distinct users, or the sum of its values */
static void
PopularTrain(const MethodInput *in, MethodTrained *out)
{
	RecsysRatings *r = in->r;
	const RatingsSource *src = in->src;
	AlsModel   *m = &out->model;

	AlsModelInit(m, 0, r->nusers, r->nitems, 0.0, 0);
	out->seen_values = r->by_user.values;
	for (int i = 0; i < r->nitems; i++)
	{
		double		score = 0.0;

		for (int64 e = r->by_item.indptr[i]; e < r->by_item.indptr[i + 1]; e++)
			score += src->value_col ? r->by_item.values[e] : 1.0;
		if (!(fabs(score) < FLT_MAX))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the sum of the values of item %lld is out of range for real",
							(long long) r->item_ids[i]),
					 errhint("Scale the values down, or train without value_col to rank by counts.")));
		m->item_bias[i] = (float) score;
	}
}

const RecsysMethod MethodPopular = {
	.name = "popular",
	.code = 3,
	.summary = "the most popular items, a baseline",
	.options = popular_options,
	.factors = false,
	.neighbors = false,
	.explicit_values = false,
	.personal = false,
	.check = NULL,
	.memory = PopularMemory,
	.train = PopularTrain,
	.fold_in = NULL,
	.score = FactorScore,
	.predict = FactorPredict,
	.explain = NULL,
	.similar_items = NULL,
	.forget = ForgetByRetraining,
};
