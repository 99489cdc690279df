/*-------------------------------------------------------------------------
 *
 * forget.c
 *	  forget_user(): remove a user and their influence from a model.
 *
 * Forgetting a user deletes their row and re-solves every item they had
 * interacted with, against all remaining users, exactly as the item
 * half-step of training would (the same normal equations: AlsAccumulateRow
 * per remaining interaction, AlsSolve), so those items no longer carry the
 * user's interactions.  Items left with no interaction are deleted.  The
 * model gets a new version, so every backend reloads its item factors.
 *
 * What remains until the next full retrain (documented in the README):
 * other users' factors were last solved against item factors that included
 * the user, and the explicit model's global mean still counts the user's
 * ratings.  Both are second-order effects; a retrain removes them.
 *
 * IDENTIFICATION
 *	  src/forget.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "als.h"
#include "cache.h"
#include "catalog.h"
#include "fmgr.h"
#include "idmap.h"
#include "recommend.h"
#include "utils/builtins.h"

/* Normal equations of the items being re-solved */
typedef struct ForgetState
{
	const RecsysModelInfo *info;
	const CacheEntry *e;
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
	bool		explicit = info->method == RECSYS_METHOD_ALS;
	float	   *x = st->x;

	for (int j = 0; j < n; j++)
	{
		const RecsysUserRow *u = &rows[j];

		if (ids[j] == st->forgotten)
			continue;
		memcpy(x, u->factors, sizeof(float) * k);
		if (explicit)
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
			if (explicit)
				AlsAccumulateRow(a, b, d, x, v - info->global_mean - u->bias);
			else
			{
				/* Observed: w x x^T into A and (1 + w) x into b */
				double		w = RecsysConfidence(info->scaling, info->alpha,
												 info->epsilon, v);

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

PG_FUNCTION_INFO_V1(recsys_forget_user);

/*
 * forget_user(model, user_id): delete the user from the model and re-solve
 * the items they had; returns the number of items re-solved (0 for a user
 * the model does not know).
 */
Datum
recsys_forget_user(PG_FUNCTION_ARGS)
{
	char	   *model = ServeModelArg(fcinfo, 0);
	int64		user_id;
	RecsysModelInfo *info;
	CacheEntry *e;
	RecsysUserRow user;
	ForgetState st;
	AlsConfig	c;
	int			k;
	int			resolved = 0;
	int64	   *gone;
	int			ngone = 0;
	RecsysFactors upd;
	double	   *a;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_id must not be null")));
	user_id = PG_GETARG_INT64(1);

	/* Like a training: it changes items, so it excludes trainings and refreshes */
	info = CatalogLookupModel(model);
	CatalogLockModelName(info->name, true);
	info = CatalogLookupModelLatest(info->name);
	CatalogRequireTrain(info);
	CatalogLoadUser(info, user_id, true, &user);
	if (!user.found)
		PG_RETURN_INT32(0);
	e = CacheGetModel(info);
	(void) CatalogDeleteUser(info, user_id);

	k = info->factors;
	memset(&st, 0, sizeof(st));
	st.info = info;
	st.e = e;
	st.d = info->method == RECSYS_METHOD_ALS ? k + 1 : Max(k, 1);
	st.slot = IdMapCreate(Max(user.nseen, 1));
	for (int s = 0; s < user.nseen; s++)
		if (IdMapLookup(e->index, user.seen[s]) >= 0 &&
			IdMapLookup(st.slot, user.seen[s]) < 0)
			IdMapSet(st.slot, user.seen[s], st.naffected++);
	if (st.naffected == 0)
	{
		CatalogBumpVersion(info, 1, 0, user.nseen);
		PG_RETURN_INT32(0);
	}
	st.a = palloc_extended(sizeof(double) * AlsPackedSize(st.d) * st.naffected,
							MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	st.b = palloc0(sizeof(double) * st.d * st.naffected);
	st.count = palloc0(sizeof(int64) * st.naffected);
	st.gram = palloc0(sizeof(double) * AlsPackedSize(st.d));
	st.forgotten = user_id;
	st.x = palloc(sizeof(float) * st.d);
	st.sx = palloc(sizeof(float) * st.d);
	if (info->method != RECSYS_METHOD_POPULAR)
		CatalogForEachUserBatch(info, 1024, true, ForgetBatch, &st);

	/* Solve each affected item; items with nobody left are deleted */
	c = e->config;
	upd.k = k;
	upd.n = 0;
	upd.ids = palloc(sizeof(int64) * st.naffected);
	upd.factors = palloc0(sizeof(float) * Max(k, 1) * st.naffected);
	upd.bias = palloc0(sizeof(float) * st.naffected);
	upd.popularity = palloc(sizeof(int64) * st.naffected);
	gone = palloc(sizeof(int64) * st.naffected);
	a = palloc(sizeof(double) * st.d * st.d);
	for (int s = 0; s < user.nseen; s++)
	{
		int32		slot = IdMapLookup(st.slot, user.seen[s]);
		int32		row = IdMapLookup(e->index, user.seen[s]);
		double	   *b = st.b + (Size) slot * st.d;

		if (slot < 0 || row < 0 || st.count[slot] < 0)
			continue;
		if (st.count[slot] == 0)
		{
			gone[ngone++] = user.seen[s];
			st.count[slot] = -1;
			continue;
		}
		upd.ids[upd.n] = user.seen[s];
		upd.popularity[upd.n] = st.count[slot];
		if (info->method == RECSYS_METHOD_POPULAR)
			upd.bias[upd.n] = e->items.bias[row] -
				(info->value_col ? user.seen_values[s] : 1.0f);
		else
		{
			AlsUnpack(st.a + (Size) slot * AlsPackedSize(st.d), a, st.d);
			if (info->method == RECSYS_METHOD_IALS)
			{
				double	   *g = palloc(sizeof(double) * st.d * st.d);

				AlsUnpack(st.gram, g, st.d);
				for (int i = 0; i < st.d * st.d; i++)
					a[i] += g[i];
				pfree(g);
			}
			if (AlsSolve(a, b, st.d, AlsRowPenalty(&c, st.count[slot])) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("normal equations of item %lld are not positive definite",
								(long long) user.seen[s]),
						 errhint("Retrain the model with a positive regularization.")));
			for (int f = 0; f < k; f++)
				upd.factors[(Size) upd.n * k + f] = (float) b[f];
			if (info->method == RECSYS_METHOD_ALS)
				upd.bias[upd.n] = (float) b[k];
		}
		st.count[slot] = -1;
		upd.n++;
		resolved++;
	}
	CatalogUpdateItems(info, &upd, gone, ngone);
	CatalogBumpVersion(info, 1, ngone, user.nseen);
	PG_RETURN_INT32(resolved);
}
