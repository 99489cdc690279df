/*-------------------------------------------------------------------------
 *
 * method_item_knn.c
 *	  Method "item_knn": item-item neighbourhood collaborative filtering.
 *
 * Each item keeps its `neighbors` most similar items (cosine, dot product
 * or Jaccard similarity of the items' user vectors, optionally TF-IDF or
 * BM25 weighted and shrunk: knn.c), and a user's score of an item is the
 * sum over the user's history of value times the item's similarity to
 * each history item (Sarwar, Karypis, Konstan and Riedl, WWW 2001; Deshpande
 * and Karypis, TOIS 2004).  Serving, explanations and similar items are
 * shared with ease (neighbor_model.c); forgetting a user builds the lists
 * again from the stored rows (forget.c).
 *
 * IDENTIFICATION
 *	  src/method_item_knn.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "method.h"
#include "parallel.h"

/* Most neighbours per item */
#define ITEM_KNN_MAX_NEIGHBORS 10000

/* How values are weighted before similarities */
static const MethodChoice knn_weightings[] = {
	{"none", KNN_WEIGHTING_NONE},
	{"tfidf", KNN_WEIGHTING_TFIDF},
	{"bm25", KNN_WEIGHTING_BM25},
	{NULL, 0}
};

/* How two items' vectors are compared */
static const MethodChoice knn_similarities[] = {
	{"cosine", KNN_SIMILARITY_COSINE},
	{"dot", KNN_SIMILARITY_DOT},
	{"jaccard", KNN_SIMILARITY_JACCARD},
	{NULL, 0}
};

/* The options of method item_knn */
static const MethodOption item_knn_options[] = {
	{"neighbors", METHOD_OPTION_INT, offsetof(RecsysParams, neighbors), 100, 1,
	ITEM_KNN_MAX_NEIGHBORS, false, NULL, "the most similar items kept per item", OPTION_SHOW_ALWAYS},
	{"similarity", METHOD_OPTION_CHOICE, offsetof(RecsysParams, similarity), KNN_SIMILARITY_COSINE, 0,
	0, false, knn_similarities, "cosine, dot (the weighted co-occurrence) or jaccard (of the sets of users)", OPTION_SHOW_ALWAYS},
	{"weighting", METHOD_OPTION_CHOICE, offsetof(RecsysParams, weighting), KNN_WEIGHTING_NONE, 0,
	0, false, knn_weightings, "none, tfidf or bm25 weighting of the interactions (users as terms, items as documents)", OPTION_SHOW_ALWAYS},
	{"k1", METHOD_OPTION_REAL, offsetof(RecsysParams, k1), KNN_DEFAULT_K1, 0,
	DBL_MAX, false, NULL, "bm25: how fast a value's weight saturates", OPTION_SHOW_ALWAYS},
	{"b", METHOD_OPTION_REAL, offsetof(RecsysParams, b), KNN_DEFAULT_B, 0,
	1, false, NULL, "bm25: how much an item's popularity normalizes its weights (0 to 1)", OPTION_SHOW_ALWAYS},
	{"shrink", METHOD_OPTION_REAL, offsetof(RecsysParams, shrink), 0, 0,
	DBL_MAX, false, NULL, "added to each similarity's denominator: shrinks similarities of rarely co-occurring items", OPTION_SHOW_ALWAYS},
	{"binary", METHOD_OPTION_BOOL, offsetof(RecsysParams, binary), 0, 0,
	1, false, NULL, "every interaction counts 1 instead of its value", OPTION_SHOW_ALWAYS},
	METHOD_OPTIONS_PREPROCESS,
	METHOD_OPTION_END
};

/* The build options of a model's params */
static void
KnnOptionsOf(const RecsysParams *p, KnnOptions *o)
{
	o->neighbors = p->neighbors;
	o->weighting = (KnnWeighting) p->weighting;
	o->k1 = p->k1;
	o->b = p->b;
	o->similarity = (KnnSimilarity) p->similarity;
	o->shrink = p->shrink;
	o->binary = p->binary;
}

/* Training memory: the build's buffers and the lists */
static Size
ItemKnnMemory(const RecsysParams *p, const RecsysRatings *r)
{
	return KnnMemory(r->nnz, r->nusers, r->nitems, p->neighbors, ParallelThreads());
}

/* Build every item's neighbour list */
static void
ItemKnnTrain(const MethodInput *in, MethodTrained *out)
{
	const RecsysParams *p = in->p;
	RecsysRatings *r = in->r;
	KnnOptions	o;

	KnnOptionsOf(p, &o);
	AlsModelInit(&out->model, 0, r->nusers, r->nitems, 0.0, 0);
	out->seen_values = r->by_user.values;
	out->graph = palloc0(sizeof(KnnGraph));
	if (!KnnBuild(&r->by_user, &r->by_item, &o, ParallelThreads(), out->graph))
		elog(ERROR, "item_knn build stopped early, please report a bug");
}

const RecsysMethod MethodItemKnn = {
	.name = "item_knn",
	.code = 4,
	.summary = "item-item neighbourhood",
	.options = item_knn_options,
	.factors = false,
	.neighbors = true,
	.explicit_values = false,
	.personal = true,
	.check = NULL,
	.memory = ItemKnnMemory,
	.train = ItemKnnTrain,
	.fold_in = NULL,
	.score = NeighborScore,
	.predict = NeighborPredict,
	.explain = NeighborExplain,
	.similar_items = NeighborSimilarItems,
	.forget = ForgetByRetraining,
};
