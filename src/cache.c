/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  Backend-local cache of model factors, keyed by model version.
 *
 * Scoring a user against every item needs the item factors as one
 * contiguous matrix.  Reading them from recsys.item_factors on every call
 * would dominate serving time, so each backend keeps the matrix of each
 * model it serves, tagged with the model's version.  Every call looks the
 * model row up (one index probe); a different version means the model was
 * retrained, and the entry is rebuilt.  A transaction that still sees an
 * older version simply reloads that one.
 *
 * What only some calls need is computed on first use and kept with the
 * entry: item norms (similar_items), the items' Gram matrix (implicit
 * fold-in and explanations), and the user factors (similar_users).
 *
 * Entries live in their own memory contexts under a cache context in
 * TopMemoryContext.  A new entry is built in a context parented to the
 * caller's (transaction-lifetime) context and moved under the cache only
 * once it is complete, so an error or cancel while loading leaks nothing.
 * At most CACHE_MAX_ENTRIES models are kept; the least recently used goes.
 *
 * Memory per entry is about nitems * (4 * k + 40) bytes: 2.6 MB for 10,000
 * items at k = 64, plus nusers * (4 * k + 40) once similar_users is used.
 * Factor models also keep compact codes of their items (src/compact.c,
 * built when the version is loaded, beside the factors: in the shared blob
 * when there is one): nitems * (k + 12) bytes, plus 4 for models with item
 * biases, 0.8 MB at 10,677 items and k = 64; and 8 bytes per item of
 * per-backend scratch for the bounds.
 *
 * With the shared cache (src/shared_cache.c: recsys preloaded), the item
 * data of an entry lives once in shared memory for all backends: the first
 * backend to load a version publishes it there, the others point their
 * entries into it, and each backend keeps only its scratch (8 bytes per
 * item, 16 with compact codes) and what only it has used (users, Gram).
 * An entry holds a pin on its blob for as long as it exists; a callback
 * on the entry's memory context drops the pin, however the entry goes.
 *
 * IDENTIFICATION
 *	  src/cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "cache.h"
#include "method.h"
#include "miscadmin.h"
#include "score.h"
#include "shared_cache.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

/* Most models one backend keeps cached */
#define CACHE_MAX_ENTRIES 8

static MemoryContext CacheContext = NULL;
static CacheEntry *entries[CACHE_MAX_ENTRIES];
static int	nentries = 0;
static uint64 use_counter = 0;
static bool exit_callback_registered = false;

/* The head of a published blob of item data; the arrays follow */
typedef struct SharedItems
{
	int32		n;
	int32		k;
	uint64		index_mask;
	int32		index_count;
	int64		nedges;			/* entries of the neighbour lists (or 0) */
	Size		compact_size;	/* bytes of the compact codes chunk (or 0) */
} SharedItems;

/* Where each array of a blob starts, and its size */
typedef struct ItemsLayout
{
	Size		ids;
	Size		popularity;
	Size		factors;
	Size		bias;
	Size		norms;
	Size		index;
	Size		nbr_indptr;		/* neighbour lists, when nedges > 0 */
	Size		nbr_indices;
	Size		nbr_values;
	Size		compact;		/* the compact codes chunk, when any */
	Size		total;
} ItemsLayout;

/* Remove entry i and free its memory */
static void
CacheEvict(int i)
{
	MemoryContextDelete(entries[i]->cxt);
	entries[i] = entries[--nentries];
}

/* An id -> row map of loaded factors; duplicate ids mean a corrupt model */
static IdMap *
IndexIds(const RecsysFactors *f, const char *model, const char *side)
{
	IdMap	   *index = IdMapCreate(f->n);

	for (int i = 0; i < f->n; i++)
	{
		if (IdMapLookup(index, f->ids[i]) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("model \"%s\" stores %s %lld twice",
							model, side, (long long) f->ids[i])));
		IdMapSet(index, f->ids[i], i);
	}
	return index;
}

/* Drop an entry's pin on its shared blob (memory context callback) */
static void
ReleaseShared(void *arg)
{
	CacheEntry *e = (CacheEntry *) arg;

	if (e->shared_slot >= 0)
	{
		SharedCacheRelease(e->shared_slot);
		e->shared_slot = -1;
	}
}

/* At backend exit, drop the pins of every cached entry */
static void
ReleaseAllShared(pg_attribute_unused() int code, pg_attribute_unused() Datum arg)
{
	for (int i = 0; i < nentries; i++)
		ReleaseShared(entries[i]);
}

/* The shared cache key of a model version in this database */
static SharedCacheKey
SharedKey(const RecsysModelInfo *info)
{
	SharedCacheKey key;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.model_id = info->model_id;
	key.version = info->version;
	key.token = info->token;
	key.k = info->factors;
	key.method = info->method->code;
	return key;
}

/*
 * The layout of a blob for n items of k factors, an index of cap slots,
 * nedges neighbour-list entries and a compact codes chunk of compact_size
 * bytes
 */
static ItemsLayout
LayoutItems(int n, int k, uint64 cap, int64 nedges, Size compact_size)
{
	ItemsLayout l;
	Size		off = TYPEALIGN(64, sizeof(SharedItems));

	/* Each array on its own cache line, as palloc would not promise */
	l.ids = off;
	off = TYPEALIGN(64, off + sizeof(int64) * (Size) n);
	l.popularity = off;
	off = TYPEALIGN(64, off + sizeof(int64) * (Size) n);
	l.factors = off;
	off = TYPEALIGN(64, off + sizeof(float) * (Size) n * k);
	l.bias = off;
	off = TYPEALIGN(64, off + sizeof(float) * (Size) n);
	l.norms = off;
	off = TYPEALIGN(64, off + sizeof(float) * (Size) n);
	l.index = off;
	off = TYPEALIGN(64, off + sizeof(IdMapEntry) * cap);
	l.nbr_indptr = off;
	off = TYPEALIGN(64, off + (nedges > 0 ? sizeof(int64) * ((Size) n + 1) : 0));
	l.nbr_indices = off;
	off = TYPEALIGN(64, off + sizeof(int32) * (Size) nedges);
	l.nbr_values = off;
	off = TYPEALIGN(64, off + sizeof(float) * (Size) nedges);
	l.compact = off;
	l.total = off + compact_size;
	return l;
}

/* Point an entry's item data into a published blob */
static void
UseBlob(CacheEntry *e, char *blob)
{
	SharedItems *h = (SharedItems *) blob;
	ItemsLayout l = LayoutItems(h->n, h->k, h->index_mask + 1, h->nedges,
								h->compact_size);
	IdMap	   *index = MemoryContextAlloc(e->cxt, sizeof(IdMap));

	e->items.n = h->n;
	e->items.k = h->k;
	e->items.ids = (int64 *) (blob + l.ids);
	e->items.popularity = (int64 *) (blob + l.popularity);
	e->items.factors = (float *) (blob + l.factors);
	e->items.bias = (float *) (blob + l.bias);
	e->norms = (float *) (blob + l.norms);
	/* Read-only: nothing is ever inserted, so it never grows */
	index->slots = (IdMapEntry *) (blob + l.index);
	index->mask = h->index_mask;
	index->count = h->index_count;
	index->cxt = NULL;
	e->index = index;
	if (h->nedges > 0)
	{
		e->neighbors.nrows = e->neighbors.ncols = h->n;
		e->neighbors.nnz = h->nedges;
		e->neighbors.indptr = (int64 *) (blob + l.nbr_indptr);
		e->neighbors.indices = (int32 *) (blob + l.nbr_indices);
		e->neighbors.values = (float *) (blob + l.nbr_values);
	}
	if (h->compact_size > 0)
	{
		if (e->compact == NULL)
			e->compact = MemoryContextAlloc(e->cxt, sizeof(CompactItems));
		CompactAttach(blob + l.compact, e->compact);
	}
}

/* An empty entry for a model version, in its own context */
static CacheEntry *
NewEntry(const RecsysModelInfo *info)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "recsys model cache entry",
											  ALLOCSET_DEFAULT_SIZES);
	CacheEntry *e = MemoryContextAllocZero(cxt, sizeof(CacheEntry));
	MemoryContextCallback *cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

	e->cxt = cxt;
	e->shared_slot = -1;
	cb->func = ReleaseShared;
	cb->arg = e;
	MemoryContextRegisterResetCallback(cxt, cb);
	e->model_id = info->model_id;
	e->version = info->version;
	e->token = info->token;
	e->cxt = cxt;
	e->method = info->method;
	e->params = info->params;
	e->config.is_explicit = info->method->explicit_values;
	e->config.k = info->factors;
	e->config.regularization = info->params.regularization;
	e->config.mean = info->method->explicit_values ? info->global_mean : 0.0;
	e->config.cg = false;		/* serving solves exactly */
	e->config.cg_steps = 0;
	return e;
}

/* The per-backend scratch of an entry whose items are in place */
static void
AllocScratch(CacheEntry *e)
{
	MemoryContext old = MemoryContextSwitchTo(e->cxt);

	/* Serving skips adding biases that are all zero (see ServeScoreAll) */
	e->zero_bias = true;
	for (int i = 0; i < e->items.n && e->zero_bias; i++)
		e->zero_bias = e->items.bias[i] == 0.0f;

	AlsWorkspaceInit(&e->ws, e->config.k + 1, 0);
	e->scores = palloc_extended(sizeof(float) * Max(e->items.n, 1), MCXT_ALLOC_HUGE);
	e->result = palloc_extended(sizeof(int32) * Max(e->items.n, 1), MCXT_ALLOC_HUGE);
	if (e->compact != NULL)
	{
		Size		npad = CompactPadded(e->compact);

		e->compact_upper = palloc_extended(sizeof(float) * npad, MCXT_ALLOC_HUGE);
		e->compact_lower = palloc_extended(sizeof(float) * npad, MCXT_ALLOC_HUGE);
	}
	MemoryContextSwitchTo(old);
}

/* An entry on the published shared blob of the version, or NULL */
static CacheEntry *
AttachShared(const RecsysModelInfo *info)
{
	SharedCacheKey key = SharedKey(info);
	CacheEntry *e = NewEntry(info);
	char	   *blob;
	int			slot;

	blob = SharedCacheAcquire(&key, &slot);
	if (blob == NULL)
	{
		MemoryContextDelete(e->cxt);
		return NULL;
	}
	/* From here the context callback owns the pin, also on error */
	e->shared_slot = slot;
	UseBlob(e, blob);
	AllocScratch(e);
	return e;
}

/*
 * Copy a private entry's item data into a new shared blob and point the
 * entry there, freeing the private copy; nothing changes when the shared
 * cache has no room (or another backend is publishing the same version).
 */
static void
PublishShared(CacheEntry *e, const RecsysModelInfo *info)
{
	SharedCacheKey key = SharedKey(info);
	Size		compact_size = e->compact_chunk ? CompactChunkSize(e->compact_chunk) : 0;
	ItemsLayout l = LayoutItems(e->items.n, e->items.k, e->index->mask + 1,
								e->neighbors.nnz, compact_size);
	int			n = e->items.n;
	int			k = e->items.k;
	char	   *blob;
	SharedItems *h;
	int			slot;

	blob = SharedCacheReserve(&key, l.total, &slot);
	if (blob == NULL)
		return;
	/* An error from here on frees the reserved blob (context callback) */
	e->shared_slot = slot;

	h = (SharedItems *) blob;
	h->n = n;
	h->k = k;
	h->index_mask = e->index->mask;
	h->index_count = e->index->count;
	h->nedges = e->neighbors.nnz;
	h->compact_size = compact_size;
	memcpy(blob + l.ids, e->items.ids, sizeof(int64) * n);
	memcpy(blob + l.popularity, e->items.popularity, sizeof(int64) * n);
	memcpy(blob + l.factors, e->items.factors, sizeof(float) * (Size) n * k);
	memcpy(blob + l.bias, e->items.bias, sizeof(float) * n);
	ScoreNorms(&e->items, (float *) (blob + l.norms));
	memcpy(blob + l.index, e->index->slots, sizeof(IdMapEntry) * (e->index->mask + 1));
	if (h->nedges > 0)
	{
		memcpy(blob + l.nbr_indptr, e->neighbors.indptr, sizeof(int64) * ((Size) n + 1));
		memcpy(blob + l.nbr_indices, e->neighbors.indices, sizeof(int32) * (Size) h->nedges);
		memcpy(blob + l.nbr_values, e->neighbors.values, sizeof(float) * (Size) h->nedges);
	}
	if (compact_size > 0)
		memcpy(blob + l.compact, e->compact_chunk, compact_size);
	SharedCachePublish(slot);

	/* The private copy goes; the entry reads the blob from now on */
	pfree(e->items.ids);
	pfree(e->items.popularity);
	pfree(e->items.factors);
	pfree(e->items.bias);
	pfree(e->index->slots);
	pfree(e->index);
	if (e->norms != NULL)
		pfree(e->norms);
	if (e->neighbors.nnz > 0)
	{
		pfree(e->neighbors.indptr);
		pfree(e->neighbors.indices);
		pfree(e->neighbors.values);
	}
	if (e->compact_chunk != NULL)
	{
		pfree(e->compact_chunk);
		e->compact_chunk = NULL;
	}
	UseBlob(e, blob);
}

/* Build a complete private entry for a model version, or error leaving nothing */
static CacheEntry *
CacheLoad(const RecsysModelInfo *info)
{
	CacheEntry *e = NewEntry(info);
	MemoryContext old = MemoryContextSwitchTo(e->cxt);

	CatalogLoadFactors(info, false, &e->items);
	e->index = IndexIds(&e->items, info->name, "item");
	if (info->method->neighbors)
		CatalogLoadNeighbors(info, e->index, &e->neighbors);
	/* Compact codes for the scoring of factor models (src/compact.c) */
	if (info->method->factors && e->items.k > 0 && e->items.n > 0)
	{
		Size		size;

		e->compact_chunk = CompactBuild(&e->items, &size);
		e->compact = palloc(sizeof(CompactItems));
		CompactAttach(e->compact_chunk, e->compact);
	}
	MemoryContextSwitchTo(old);
	AllocScratch(e);
	return e;
}

/*
 * Load an entry's features (content and hybrid models) into its context:
 * always private, beside the shared item data.  Item features are over the
 * entry's item rows; user features are a vocabulary with factors only
 * (recommend_for_features), over no rows.
 */
static void
LoadFeatures(CacheEntry *e, const RecsysModelInfo *info)
{
	MemoryContext old = MemoryContextSwitchTo(e->cxt);
	ModelFeatures *f = &e->item_features;
	RecsysSparse *t = &e->feature_items;
	IdMap	   *none = IdMapCreate(1);
	int64	   *next;

	CatalogLoadFeatures(info, false, e->index, f);
	CatalogLoadFeatures(info, true, none, &e->user_features);

	/* The transpose, features x items, for scoring by feature */
	t->nrows = f->nfeatures;
	t->ncols = f->rows.nrows;
	t->nnz = f->rows.nnz;
	t->indptr = palloc0(sizeof(int64) * ((Size) f->nfeatures + 1));
	t->indices = palloc_extended(sizeof(int32) * Max(t->nnz, 1), MCXT_ALLOC_HUGE);
	t->values = palloc_extended(sizeof(float) * Max(t->nnz, 1), MCXT_ALLOC_HUGE);
	for (int64 x = 0; x < f->rows.nnz; x++)
		t->indptr[f->rows.indices[x] + 1]++;
	for (int j = 0; j < f->nfeatures; j++)
		t->indptr[j + 1] += t->indptr[j];
	next = palloc(sizeof(int64) * ((Size) f->nfeatures + 1));
	memcpy(next, t->indptr, sizeof(int64) * ((Size) f->nfeatures + 1));
	for (int i = 0; i < f->rows.nrows; i++)
		for (int64 x = f->rows.indptr[i]; x < f->rows.indptr[i + 1]; x++)
		{
			int64		pos = next[f->rows.indices[x]]++;

			t->indices[pos] = i;
			t->values[pos] = f->rows.values[x];
		}
	pfree(next);
	e->feature_scratch = palloc0(sizeof(float) * Max(f->nfeatures, 1));
	MemoryContextSwitchTo(old);
}

/* A feature's row in a vocabulary (names in byte order), or -1 */
int32
CacheFeatureRow(const ModelFeatures *f, const char *name)
{
	int			lo = 0;
	int			hi = f->nfeatures - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(f->names[mid], name);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * The cached factors of the model version described by info, loading them
 * if this backend has not seen that version.
 */
CacheEntry *
CacheGetModel(const RecsysModelInfo *info)
{
	CacheEntry *e;

	for (int i = 0; i < nentries; i++)
	{
		if (entries[i]->model_id == info->model_id)
		{
			/*
			 * The shape is compared too: a model row edited by hand keeps
			 * its version, and the cached matrix must never be read with
			 * another k.
			 */
			if (entries[i]->version == info->version &&
				entries[i]->token == info->token &&
				entries[i]->config.k == info->factors &&
				entries[i]->method == info->method)
			{
				entries[i]->last_used = ++use_counter;
				return entries[i];
			}
			CacheEvict(i);
			break;
		}
	}

	if (CacheContext == NULL)
		CacheContext = AllocSetContextCreate(TopMemoryContext,
											 "recsys model cache",
											 ALLOCSET_SMALL_SIZES);
	if (SharedCacheAvailable() && !exit_callback_registered)
	{
		before_shmem_exit(ReleaseAllShared, 0);
		exit_callback_registered = true;
	}

	e = SharedCacheAvailable() ? AttachShared(info) : NULL;
	if (e == NULL)
	{
		e = CacheLoad(info);
		if (SharedCacheAvailable())
			PublishShared(e, info);
	}

	/* Only models trained with features have any (none before 1.2) */
	if (info->params.item_features != NULL || info->params.item_text != NULL ||
		info->params.user_features != NULL)
		LoadFeatures(e, info);
	else if (info->method->features && !info->method->factors)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("model \"%s\" of method \"%s\" has no item_features or item_text in recsys.models.params",
						info->name, info->method->name),
				 errhint("Retrain the model with CALL train(...).")));

	if (nentries == CACHE_MAX_ENTRIES)
	{
		int			oldest = 0;

		for (int i = 1; i < nentries; i++)
			if (entries[i]->last_used < entries[oldest]->last_used)
				oldest = i;
		CacheEvict(oldest);
	}
	MemoryContextSetParent(e->cxt, CacheContext);
	e->last_used = ++use_counter;
	entries[nentries++] = e;
	return e;
}

/* Item factor norms, computed once per entry */
const float *
CacheItemNorms(CacheEntry *e)
{
	if (e->norms == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(e->cxt);

		e->norms = palloc_extended(sizeof(float) * Max(e->items.n, 1), MCXT_ALLOC_HUGE);
		ScoreNorms(&e->items, e->norms);
		MemoryContextSwitchTo(old);
	}
	return e->norms;
}

/* Make e->ws.yty the Gram matrix of the item factors, once per entry */
void
CacheItemGram(CacheEntry *e)
{
	if (!e->has_gram)
	{
		if (e->item_features.factors != NULL)
		{
			/*
			 * Hybrid: items known only by features (popularity 0) stay
			 * out, as they did in training: unknown is not disliked
			 */
			RecsysSparse with_users;

			memset(&with_users, 0, sizeof(with_users));
			with_users.nrows = e->items.n;
			with_users.indptr = palloc(sizeof(int64) * ((Size) e->items.n + 1));
			with_users.indptr[0] = 0;
			for (int i = 0; i < e->items.n; i++)
				with_users.indptr[i + 1] = with_users.indptr[i] +
					(e->items.popularity[i] > 0 ? 1 : 0);
			AlsGramInto(e->items.factors, e->items.n, e->items.k, &with_users,
						e->ws.yty, e->ws.yty_f, &e->ws);
			pfree(with_users.indptr);
		}
		else
			AlsGram(e->items.factors, e->items.n, e->items.k, &e->ws);
		e->has_gram = true;
	}
}

/* Load the user factors and their norms, once per entry */
void
CacheLoadUsers(CacheEntry *e, const RecsysModelInfo *info)
{
	MemoryContext cxt;
	MemoryContext old;
	RecsysFactors users;
	IdMap	   *index;
	float	   *norms;

	if (e->user_index != NULL)
		return;

	/* Loaded in a child context, attached only when complete */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys user factors",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	CatalogLoadFactors(info, true, &users);
	index = IndexIds(&users, info->name, "user");
	norms = palloc_extended(sizeof(float) * Max(users.n, 1), MCXT_ALLOC_HUGE);
	ScoreNorms(&users, norms);
	MemoryContextSwitchTo(old);

	MemoryContextSetParent(cxt, e->cxt);
	e->users = users;
	e->user_norms = norms;
	e->user_index = index;
}

/*
 * Drop the cached user factors (after refresh_user changed one), so the
 * next similar_users call reads them again.
 */
void
CacheForgetUsers(CacheEntry *e)
{
	/* They live in a child context of the entry's; free it with them */
	if (e->user_index != NULL)
	{
		MemoryContext cxt = GetMemoryChunkContext(e->user_norms);

		MemoryContextDelete(cxt);
		e->user_index = NULL;
		e->user_norms = NULL;
		memset(&e->users, 0, sizeof(RecsysFactors));
	}
}

/*
 * A dropped model: free this backend's entry and let the shared cache
 * free the model's versions as soon as no backend uses them.  Harmless if
 * the drop is rolled back: the next call loads the model again.
 */
void
CacheDropModel(int64 model_id)
{
	for (int i = 0; i < nentries; i++)
	{
		if (entries[i]->model_id == model_id)
		{
			CacheEvict(i);
			break;
		}
	}
	SharedCacheForget(MyDatabaseId, model_id);
}
