/*-------------------------------------------------------------------------
 *
 * neighbor_model.c
 *	  What the item-neighbour methods (item_knn, ease) share: scoring,
 *	  predictions, explanations and similar items from neighbour lists.
 *
 * An item-neighbour model is a sparse items x items matrix B: row i holds
 * the items that item i recommends and their weights (item_knn: item i's
 * most similar items; ease: the largest entries of row i of the learned
 * matrix).  A user with history values x_uj (1 for binary models) scores
 *
 *		s_ui = sum_j x_uj B_ji
 *
 * so a new user needs no solve: the history is the user (fold-in is the
 * history itself), and an explanation is exact: history item j
 * contributes x_uj B_ji, and the contributions add up to the score.
 *
 * IDENTIFICATION
 *	  src/neighbor_model.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "method.h"
#include "score.h"
#include "topk.h"

/* The history's values as the model scores them (1 for binary models) */
static float *
ServingValues(const CacheEntry *e, const ServeHistory *h)
{
	float	   *v = palloc(sizeof(float) * Max(h->n, 1));

	for (int j = 0; j < h->n; j++)
		v[j] = e->params.binary ? 1.0f : h->values[j];
	return v;
}

/* Score every item: the history's values through the neighbour lists */
void
NeighborScore(CacheEntry *e, pg_attribute_unused() const RecsysUserRow *user,
			  const ServeHistory *h, float *scores)
{
	float	   *v = ServingValues(e, h);

	ScoreNeighbors(&e->neighbors, h->rows, v, h->n, scores);
	pfree(v);
}

/* The score of one item: sum_j x_uj B_ji */
double
NeighborPredict(CacheEntry *e, pg_attribute_unused() const RecsysUserRow *user,
				const ServeHistory *h, int32 item)
{
	double		score = 0.0;

	for (int j = 0; j < h->n; j++)
		score += (e->params.binary ? 1.0 : h->values[j]) *
			ScoreNeighborWeight(&e->neighbors, h->rows[j], item);
	return score;
}

/* Contributions x_uj B_ji of the history's items; they sum to the score */
double
NeighborExplain(CacheEntry *e, pg_attribute_unused() const RecsysUserRow *user,
				const ServeHistory *h, int32 item,
				pg_attribute_unused() const char *model, float *contrib)
{
	double		score = 0.0;

	for (int j = 0; j < h->n; j++)
	{
		contrib[j] = (float) ((e->params.binary ? 1.0 : h->values[j]) *
							  ScoreNeighborWeight(&e->neighbors, h->rows[j], item));
		score += contrib[j];
	}
	return score;
}

/* The item's neighbour list as scores; items not in it are excluded */
void
NeighborSimilarItems(CacheEntry *e, int32 item, float *scores)
{
	const RecsysSparse *g = &e->neighbors;

	for (int i = 0; i < e->items.n; i++)
		scores[i] = TOPK_EXCLUDED;
	for (int64 x = g->indptr[item]; x < g->indptr[item + 1]; x++)
		scores[g->indices[x]] = g->values[x];
	scores[item] = TOPK_EXCLUDED;
}
