/*-------------------------------------------------------------------------
 *
 * method_content.c
 *	  Method "content": content-based recommendation from item features.
 *
 * Each item gets a profile from its features and words (item_features,
 * item_text): a vector over the model's feature vocabulary, weighted by
 * TF-IDF (default), BM25 or not at all, and normalized to unit length
 * (Salton and Buckley, "Term-weighting approaches in automatic text
 * retrieval", 1988; Robertson and Zaragoza, "The Probabilistic Relevance
 * Framework: BM25 and Beyond", 2009).  A user's profile is the sum of the
 * profiles of the items in their history, weighted by the values (1 each
 * with binary), and an item's score is the cosine of the two:
 *
 *		p_u = sum_j x_uj v_j,	s_ui = p_u . v_i / |p_u|
 *
 * so an item with features and no interactions is recommendable at once.
 * Explanations are exact, by history item (x_uj v_j . v_i / |p_u|) or by
 * feature (p_uf v_if / |p_u|, explain_features).  With N the items that
 * have features, df_f those that have feature f, tf its weight for an item
 * and L an item's total weight (avgL the mean):
 *
 *		tfidf:	w = tf log(1 + N / df)
 *		bm25:	w = tf (k1 + 1) / (k1 (1 - b + b L / avgL) + tf) *
 *					log(1 + (N - df + 0.5) / (df + 0.5))
 *
 * (both idf forms stay positive, so a feature every item has still
 * counts).  The model stores each item's normalized profile and each
 * feature's idf (recsys.entity_features, recsys.model_features).
 *
 * IDENTIFICATION
 *	  src/method_content.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "knn.h"
#include "method.h"
#include "miscadmin.h"
#include "topk.h"

/* The options of method content */
static const MethodChoice content_weightings[] = {
	{"none", KNN_WEIGHTING_NONE},
	{"tfidf", KNN_WEIGHTING_TFIDF},
	{"bm25", KNN_WEIGHTING_BM25},
	{NULL, 0}
};

static const MethodOption content_options[] = {
	{"item_features", METHOD_OPTION_TEXT, offsetof(RecsysParams, item_features), 0, 0,
	0, false, NULL, "a table or view of (item id, feature, optional weight): categories, tags, brands ...", OPTION_SHOW_ALWAYS},
	{"item_text", METHOD_OPTION_TEXT, offsetof(RecsysParams, item_text), 0, 0,
	0, false, NULL, "a table or view of (item id, document text or tsvector): words through to_tsvector", OPTION_SHOW_ALWAYS},
	{"text_config", METHOD_OPTION_TEXT, offsetof(RecsysParams, text_config), 0, 0,
	0, false, NULL, "the text search configuration of item_text (default simple)", OPTION_SHOW_ALWAYS},
	{"weighting", METHOD_OPTION_CHOICE, offsetof(RecsysParams, weighting), KNN_WEIGHTING_TFIDF, 0,
	0, false, content_weightings, "none, tfidf or bm25 weighting of the features (items as documents)", OPTION_SHOW_ALWAYS},
	{"k1", METHOD_OPTION_REAL, offsetof(RecsysParams, k1), KNN_DEFAULT_K1, 0,
	DBL_MAX, false, NULL, "bm25: how fast a feature's weight saturates", OPTION_SHOW_ALWAYS},
	{"b", METHOD_OPTION_REAL, offsetof(RecsysParams, b), KNN_DEFAULT_B, 0,
	1, false, NULL, "bm25: how much an item's number of features normalizes its weights (0 to 1)", OPTION_SHOW_ALWAYS},
	{"binary", METHOD_OPTION_BOOL, offsetof(RecsysParams, binary), 0, 0,
	1, false, NULL, "every item of a user's history counts 1 instead of its value", OPTION_SHOW_ALWAYS},
	METHOD_OPTIONS_PREPROCESS,
	METHOD_OPTION_END
};

/* A content model needs features */
static void
ContentCheck(RecsysParams *p, pg_attribute_unused() const RatingsSource *src)
{
	if (p->item_features == NULL && p->item_text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"content\" needs item_features or item_text"),
				 errhint("For example options => '{\"item_features\": \"item_tags\"}', a table of (item_id, feature).")));
}

/* Training memory: the profiles, the idf and the counts */
static Size
ContentMemory(pg_attribute_unused() const RecsysParams *p, const RecsysRatings *r)
{
	return mul_size(r->nitems, 2 * sizeof(double));
}

/* The idf of a feature held by df of n items, by the weighting */
static double
Idf(int weighting, double n, double df)
{
	if (weighting == KNN_WEIGHTING_BM25)
		return log(1.0 + (n - df + 0.5) / (df + 0.5));
	if (weighting == KNN_WEIGHTING_TFIDF)
		return log(1.0 + n / df);
	return 1.0;
}

/*
 * Weight and normalize one item's features in place (weights: the raw tf
 * on entry), by the weighting, with idf per feature and avglen the mean
 * total weight of an item.
 */
static void
Profile(const RecsysParams *p, const float *idf, double avglen, const int32 *feats,
		float *weights, int n)
{
	double		len = 0.0;
	double		norm = 0.0;
	float	   *scratch = palloc(sizeof(float) * Max(n, 1));

	for (int x = 0; x < n; x++)
		len += weights[x];

	/*
	 * Weighted and normalized in double: weights near the top of real's
	 * range (legal in the feature relations) overflow float before the
	 * normalization, and an infinite weight poisons every score
	 */
	for (int pass = 0; pass < 2; pass++)
	{
		for (int x = 0; x < n; x++)
		{
			double		tf = weights[x];
			double		w = tf;

			if (p->weighting == KNN_WEIGHTING_BM25)
				w = tf > 0.0 ? tf * (p->k1 + 1.0) /
					(p->k1 * (1.0 - p->b + p->b * len / Max(avglen, 1e-30)) + tf) : 0.0;
			w *= idf[feats[x]];
			if (pass == 0)
				norm += w * w;
			else
				scratch[x] = norm > 0.0 ? (float) (w / norm) : 0.0f;
		}
		if (pass == 0)
			norm = sqrt(norm);
	}
	memcpy(weights, scratch, sizeof(float) * n);
	pfree(scratch);
}

/* Every item's profile; the idf of every feature */
static void
ContentTrain(const MethodInput *in, MethodTrained *out)
{
	const RecsysParams *p = in->p;
	RecsysRatings *r = in->r;
	RecsysSparse *rows = &in->items->rows;
	int			nfeatures = in->items->vocabulary->nfeatures;
	double	   *df = palloc0(sizeof(double) * Max(nfeatures, 1));
	float	   *idf = palloc(sizeof(float) * Max(nfeatures, 1));
	double		nitems = 0.0;
	double		total = 0.0;

	AlsModelInit(&out->model, 0, r->nusers, r->nitems, 0.0, 0);
	out->seen_values = r->by_user.values;

	for (int i = 0; i < rows->nrows; i++)
	{
		if (rows->indptr[i + 1] == rows->indptr[i])
			continue;
		nitems += 1.0;
		for (int64 x = rows->indptr[i]; x < rows->indptr[i + 1]; x++)
		{
			df[rows->indices[x]] += 1.0;
			total += rows->values[x];
		}
	}
	for (int f = 0; f < nfeatures; f++)
		idf[f] = (float) Idf(p->weighting, nitems, Max(df[f], 1.0));
	for (int i = 0; i < rows->nrows; i++)
	{
		if ((i % 1024) == 0)
			CHECK_FOR_INTERRUPTS();
		Profile(p, idf, total / Max(nitems, 1.0), rows->indices + rows->indptr[i],
				rows->values + rows->indptr[i],
				(int) (rows->indptr[i + 1] - rows->indptr[i]));
	}
	out->item_feature_idf = idf;
	pfree(df);
}

/*
 * The user's profile p_u = sum_j x_uj v_j into e->feature_scratch; the
 * features it touched (to reset) into touched; returns |p_u|.
 */
static double
UserProfile(CacheEntry *e, const ServeHistory *h, int32 *touched, int *ntouched)
{
	const RecsysSparse *rows = &e->item_features.rows;
	float	   *pf = e->feature_scratch;
	double		norm = 0.0;

	*ntouched = 0;
	for (int j = 0; j < h->n; j++)
	{
		float		v = e->params.binary ? 1.0f : h->values[j];

		for (int64 x = rows->indptr[h->rows[j]]; x < rows->indptr[h->rows[j] + 1]; x++)
		{
			int32		f = rows->indices[x];

			if (pf[f] == 0.0f)
				touched[(*ntouched)++] = f;
			pf[f] += v * rows->values[x];
			/* A sum that returns to exactly 0 stays touched: harmless */
			if (pf[f] == 0.0f)
				pf[f] = FLT_MIN;
		}
	}
	for (int t = 0; t < *ntouched; t++)
		norm += (double) pf[touched[t]] * pf[touched[t]];
	return sqrt(norm);
}

/* Clear the features a profile touched */
static void
ClearProfile(CacheEntry *e, const int32 *touched, int ntouched)
{
	for (int t = 0; t < ntouched; t++)
		e->feature_scratch[touched[t]] = 0.0f;
}

/* Scratch for the features a profile touches (at most all of them) */
static int32 *
TouchedBuffer(const CacheEntry *e)
{
	return palloc(sizeof(int32) * Max(e->item_features.nfeatures, 1));
}

/* Add the cosine scores of the profile in the scratch to every item */
static void
ScoreProfile(CacheEntry *e, const int32 *touched, int ntouched, double norm,
			 float *scores)
{
	const RecsysSparse *t = &e->feature_items;

	memset(scores, 0, sizeof(float) * e->items.n);
	if (norm <= 0.0)
		return;
	for (int k = 0; k < ntouched; k++)
	{
		int32		f = touched[k];
		float		pf = (float) (e->feature_scratch[f] / norm);

		/* Auto-vectorized (a scatter-add over the feature's items) */
		for (int64 x = t->indptr[f]; x < t->indptr[f + 1]; x++)
			scores[t->indices[x]] += pf * t->values[x];
	}
}

/* Score every item: the cosine of the user's and the item's profiles */
static void
ContentScore(CacheEntry *e, pg_attribute_unused() const RecsysUserRow *user,
			 const ServeHistory *h, float *scores)
{
	int32	   *touched = TouchedBuffer(e);
	int			ntouched;
	double		norm = UserProfile(e, h, touched, &ntouched);

	ScoreProfile(e, touched, ntouched, norm, scores);
	ClearProfile(e, touched, ntouched);
	pfree(touched);
}

/* The item's row as (feature, weight) pairs */
#define ITEM_ROW(e, i) \
	((e)->item_features.rows.indices + (e)->item_features.rows.indptr[i])
#define ITEM_WEIGHTS(e, i) \
	((e)->item_features.rows.values + (e)->item_features.rows.indptr[i])
#define ITEM_LEN(e, i) \
	((int) ((e)->item_features.rows.indptr[(i) + 1] - (e)->item_features.rows.indptr[i]))

/*
 * Contributions of the item's features, p_uf v_if / |p_u| (contrib[x] for
 * the item's x-th feature); returns the score.
 */
static double
ContentExplainFeatures(CacheEntry *e, pg_attribute_unused() const RecsysUserRow *user,
					   const ServeHistory *h, int32 item, float *contrib)
{
	int32	   *touched = TouchedBuffer(e);
	int			ntouched;
	double		norm = UserProfile(e, h, touched, &ntouched);
	double		score = 0.0;

	for (int x = 0; x < ITEM_LEN(e, item); x++)
	{
		contrib[x] = norm > 0.0 ?
			(float) (e->feature_scratch[ITEM_ROW(e, item)[x]] * ITEM_WEIGHTS(e, item)[x] / norm) :
			0.0f;
		score += contrib[x];
	}
	ClearProfile(e, touched, ntouched);
	pfree(touched);
	return score;
}

/* The score of one item */
static double
ContentPredict(CacheEntry *e, const RecsysUserRow *user, const ServeHistory *h,
			   int32 item)
{
	float	   *contrib = palloc(sizeof(float) * Max(ITEM_LEN(e, item), 1));
	double		score = ContentExplainFeatures(e, user, h, item, contrib);

	pfree(contrib);
	return score;
}

/*
 * Contributions of the history's items, x_uj v_j . v_i / |p_u|; they add
 * up to the score.
 */
static double
ContentExplain(CacheEntry *e, const RecsysUserRow *user, const ServeHistory *h,
			   int32 item, pg_attribute_unused() const char *model, float *contrib)
{
	int32	   *touched = TouchedBuffer(e);
	int			ntouched;
	double		norm = UserProfile(e, h, touched, &ntouched);
	float	   *vi = e->feature_scratch;
	const RecsysSparse *rows = &e->item_features.rows;
	double		score = 0.0;

	/* The scratch now holds the item's profile instead of the user's */
	ClearProfile(e, touched, ntouched);
	for (int x = 0; x < ITEM_LEN(e, item); x++)
		vi[ITEM_ROW(e, item)[x]] = ITEM_WEIGHTS(e, item)[x];
	for (int j = 0; j < h->n; j++)
	{
		double		dot = 0.0;
		float		v = e->params.binary ? 1.0f : h->values[j];

		for (int64 x = rows->indptr[h->rows[j]]; x < rows->indptr[h->rows[j] + 1]; x++)
			dot += vi[rows->indices[x]] * rows->values[x];
		contrib[j] = norm > 0.0 ? (float) (v * dot / norm) : 0.0f;
		score += contrib[j];
	}
	for (int x = 0; x < ITEM_LEN(e, item); x++)
		vi[ITEM_ROW(e, item)[x]] = 0.0f;
	pfree(touched);
	(void) user;
	return score;
}

/* Items similar to an item: the cosine of their profiles */
static void
ContentSimilarItems(CacheEntry *e, int32 item, float *scores)
{
	const RecsysSparse *t = &e->feature_items;

	memset(scores, 0, sizeof(float) * e->items.n);
	for (int x = 0; x < ITEM_LEN(e, item); x++)
	{
		int32		f = ITEM_ROW(e, item)[x];
		float		w = ITEM_WEIGHTS(e, item)[x];

		for (int64 y = t->indptr[f]; y < t->indptr[f + 1]; y++)
			scores[t->indices[y]] += w * t->values[y];
	}
	/* Items sharing no feature are not similar at all */
	for (int i = 0; i < e->items.n; i++)
		if (scores[i] <= 0.0f)
			scores[i] = TOPK_EXCLUDED;
	scores[item] = TOPK_EXCLUDED;
}

/*
 * A visitor known by features of interest (rows of the item vocabulary,
 * with weights): the cosine of the query's profile and the items'.
 */
static bool
ContentScoreFeatures(CacheEntry *e, char **names, const float *weights,
					 int n, const char *model, float *scores)
{
	int32	   *touched = TouchedBuffer(e);
	int			ntouched = 0;
	double		norm = 0.0;
	const float *idf = e->item_features.idf;

	for (int j = 0; j < n; j++)
	{
		int32		f = CacheFeatureRow(&e->item_features, names[j]);

		if (f < 0)
			continue;
		if (e->feature_scratch[f] == 0.0f)
			touched[ntouched++] = f;
		e->feature_scratch[f] += weights[j] * (idf ? idf[f] : 1.0f);
		if (e->feature_scratch[f] == 0.0f)
			e->feature_scratch[f] = FLT_MIN;
	}
	for (int t = 0; t < ntouched; t++)
		norm += (double) e->feature_scratch[touched[t]] * e->feature_scratch[touched[t]];
	/* Weights whose sums overflow real would make every score NaN */
	if (isinf(norm) || isnan(norm))
	{
		ClearProfile(e, touched, ntouched);
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("the weighted features of the visitor overflow in model \"%s\"", model),
				 errhint("Use smaller weights.")));
	}
	ScoreProfile(e, touched, ntouched, sqrt(norm), scores);
	ClearProfile(e, touched, ntouched);
	pfree(touched);
	return ntouched > 0;
}

/*
 * refresh_item: the item's profile from its current features, with the
 * model's idf (features the model does not know are left out; with bm25,
 * the item's length is taken as the average).
 */
static void
ContentRefreshItem(CacheEntry *e, pg_attribute_unused() const RecsysModelInfo *info,
				   pg_attribute_unused() int64 item_id, const RatingsUser *users,
				   const RecsysSparse *features, MethodItemRow *out)
{
	int			n = (int) features->nnz;
	double		len = 0.0;

	out->nfeatures = n;
	out->features = palloc(sizeof(int32) * Max(n, 1));
	out->weights = palloc(sizeof(float) * Max(n, 1));
	memcpy(out->features, features->indices, sizeof(int32) * n);
	memcpy(out->weights, features->values, sizeof(float) * n);
	for (int x = 0; x < n; x++)
		len += out->weights[x];
	Profile(&e->params, e->item_features.idf, len, out->features, out->weights, n);
	out->bias = 0.0f;
	out->popularity = users->n;
}

/*
 * forget_user: a content model's items do not depend on the users, only
 * their popularity (the fallback for unknown users) does.
 */
static void
ContentForget(ForgetContext *fc)
{
	const RecsysModelInfo *info = fc->info;
	const RecsysUserRow *user = fc->user;
	CacheEntry *e = fc->e;
	RecsysFactors upd;

	upd.k = 0;
	upd.n = 0;
	upd.ids = palloc(sizeof(int64) * Max(user->nseen, 1));
	upd.factors = NULL;
	upd.bias = palloc0(sizeof(float) * Max(user->nseen, 1));
	upd.popularity = palloc(sizeof(int64) * Max(user->nseen, 1));
	for (int s = 0; s < user->nseen; s++)
	{
		int32		row = IdMapLookup(e->index, user->seen[s]);

		if (row < 0)
			continue;
		upd.ids[upd.n] = user->seen[s];
		upd.popularity[upd.n] = Max(e->items.popularity[row] - 1, 0);
		upd.n++;
		fc->resolved++;
	}
	CatalogUpdateItems(info, &upd, NULL, 0);
	CatalogBumpVersion(info, 1, 0, user->nseen);
}

const RecsysMethod MethodContent = {
	.name = "content",
	.code = 6,
	.summary = "content-based, from item features and texts",
	.options = content_options,
	.factors = false,
	.neighbors = false,
	.explicit_values = false,
	.personal = true,
	.features = true,
	.check = ContentCheck,
	.memory = ContentMemory,
	.train = ContentTrain,
	.fold_in = NULL,
	.score = ContentScore,
	.predict = ContentPredict,
	.explain = ContentExplain,
	.similar_items = ContentSimilarItems,
	.score_features = ContentScoreFeatures,
	.explain_features = ContentExplainFeatures,
	.refresh_item = ContentRefreshItem,
	.forget = ContentForget,
};
