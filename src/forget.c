/*-------------------------------------------------------------------------
 *
 * forget.c
 *	  forget_user(): remove a user and their influence from a model.
 *
 * Forgetting a user deletes their row and has the model's method remove
 * what the user contributed to the items (its forget slot):
 *	- factor models re-solve every item the user had against all remaining
 *	  users, exactly as the item half-step of training would
 *	  (factor_model.c);
 *	- the other methods train their item side again on the rows the model
 *	  stores for the remaining users (ForgetByRetraining below): a model
 *	  keeps every user's training items and values, so this gives exactly
 *	  the model a training without the user would have given.
 * Items left with no interaction are deleted.  The model gets a new
 * version, so every backend reloads its item data.
 *
 * What remains until the next full retrain (documented in
 * doc/access-control.md):
 * for factor models, other users' factors were last solved against item
 * factors that included the user, and the explicit model's global mean
 * still counts the user's ratings.  Both are second-order effects; a
 * retrain removes them.
 *
 * IDENTIFICATION
 *	  src/forget.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cache.h"
#include "catalog.h"
#include "fmgr.h"
#include "ids.h"
#include "method.h"
#include "recommend.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* What ForgetByRetraining collects from the stored user rows */
typedef struct RetrainState
{
	RatingsBuilder *builder;
	int64		forgotten;		/* the user being removed (the scan may see them) */
} RetrainState;

/* Add one batch of stored user rows to the interactions */
static void
RetrainBatch(void *arg, const int64 *ids, const RecsysUserRow *rows, int n)
{
	RetrainState *st = (RetrainState *) arg;

	for (int j = 0; j < n; j++)
	{
		if (ids[j] == st->forgotten)
			continue;
		for (int s = 0; s < rows[j].nseen; s++)
			RatingsBuilderAdd(st->builder, ids[j], rows[j].seen[s],
							  rows[j].seen_values[s]);
	}
}

/*
 * The forget slot of methods without factors: train the item side again
 * from the stored rows of every remaining user, with the options the model
 * was trained with, and replace the model's item rows.
 */
void
ForgetByRetraining(ForgetContext *fc)
{
	const RecsysModelInfo *info = fc->info;
	const RecsysMethod *m = info->method;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "recsys forget",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RetrainState st;
	RecsysRatings *r;
	RatingsSource src;
	MethodTrained out;
	MethodInput in;
	IdMap	   *kept;

	st.builder = RatingsBuilderCreate(0);
	st.forgotten = fc->user_id;
	CatalogForEachUserBatch(info, 1024, true, RetrainBatch, &st);
	if (RatingsBuilderCount(st.builder) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("user is the last one of model \"%s\"", info->name),
				 errhint("Drop the model with drop_model('%s') instead.", info->name)));
	/* The stored values are already merged: duplicates cannot occur */
	r = RatingsBuilderFinish(st.builder, !m->explicit_values);
	RecsysCheckMemory(add_size(RatingsMemory(r->nnz, r->nusers, r->nitems),
							   m->memory(&info->params, r)),
					  "Training the items again without the user needs this much.");

	memset(&src, 0, sizeof(src));
	src.user_col = info->user_col;
	src.item_col = info->item_col;
	src.value_col = info->value_col;
	src.sum_duplicates = !m->explicit_values;
	memset(&out, 0, sizeof(out));
	memset(&in, 0, sizeof(in));
	in.p = &info->params;
	in.src = &src;
	in.r = r;
	m->train(&in, &out);
	CatalogReplaceItems(info, r, &out.model, out.graph);

	/* The user's items that the model still has were rebuilt */
	kept = IdMapCreate(Max(r->nitems, 1));
	for (int i = 0; i < r->nitems; i++)
		IdMapSet(kept, r->item_ids[i], i);
	for (int s = 0; s < fc->user->nseen; s++)
		if (IdMapLookup(kept, fc->user->seen[s]) >= 0)
			fc->resolved++;
	CatalogBumpVersion(info, 1, info->num_items - r->nitems, fc->user->nseen);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

PG_FUNCTION_INFO_V1(recsys_forget_user);

/*
 * forget_user(model, user_id): delete the user from the model and remove
 * their influence on its items; returns the number of items re-solved or
 * rebuilt (0 for a user the model does not know).
 */
Datum
recsys_forget_user(PG_FUNCTION_ARGS)
{
	char	   *model = ServeModelArg(fcinfo, 0);
	int64		user_id;
	RecsysModelInfo *info;
	RecsysUserRow user;
	ForgetContext fc;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("user_id must not be null")));

	/* Like a training: it changes items, so it excludes trainings and refreshes */
	info = CatalogLookupModel(model);
	CatalogLockModelName(info->name, true);
	info = CatalogLookupModelLatest(info->name);
	CatalogRequireTrain(info);
	user_id = IdsUserArg(fcinfo, 1, info, false, NULL);
	CatalogLoadUser(info, user_id, true, &user);
	if (!user.found)
		PG_RETURN_INT32(0);

	memset(&fc, 0, sizeof(fc));
	fc.info = info;
	fc.e = CacheGetModel(info);
	fc.user = &user;
	fc.user_id = user_id;
	(void) CatalogDeleteUser(info, user_id);
	info->method->forget(&fc);
	PG_RETURN_INT32(fc.resolved);
}
