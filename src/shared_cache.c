/*-------------------------------------------------------------------------
 *
 * shared_cache.c
 *	  Blobs of model data shared by all backends, in shared memory.
 *
 * With recsys in shared_preload_libraries, recsys.shared_cache_size bytes
 * of the server's main shared memory segment are reserved at start.  The
 * first backend that serves a model version copies the version's item data
 * there (src/cache.c decides the layout); every other backend then serves
 * from that one copy instead of reading the catalog and keeping its own
 * (nitems * (4 k + 40) bytes per backend, and a catalog read of every item
 * on the first call).
 *
 * A directory of SHARED_CACHE_SLOTS slots, under one LWLock, describes the
 * blobs: their key (database, model id, version, k, method), their place
 * in the region and how many backends hold them (pins).  A backend pins a
 * blob when one of its cache entries starts using it and unpins it when
 * the entry goes (another version, eviction, error, backend exit); the
 * lock is taken only then, never per recommendation.  A blob is written
 * once by the backend that reserved it (state LOADING), published (READY)
 * and never changed again.  When a newer version of a model is published,
 * older ones become stale and are freed with their last pin.  When the
 * region is full, unpinned blobs are evicted (stale first, then the least
 * recently used); when that is not enough, the backend keeps a private copy
 * exactly as without the shared cache.
 *
 * Why the main segment rather than dynamic shared memory: its size is
 * fixed when the server starts, like shared_buffers, so publishing can
 * never fail half-way because /dev/shm is full, and every backend sees it
 * at the same address.
 *
 * IDENTIFICATION
 *	  src/shared_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "shared_cache.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"

/* Most blobs at once: a few versions of a few dozen models */
#define SHARED_CACHE_SLOTS 64

/* Blobs start on cache lines, so their arrays do too */
#define SHARED_CACHE_ALIGN(x) TYPEALIGN(64, (x))

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_LOADING,				/* reserved; its reserver is writing it */
	SLOT_READY					/* complete and read-only */
} SlotState;

/* One blob of the region */
typedef struct SharedCacheSlot
{
	SlotState	state;
	SharedCacheKey key;
	Size		offset;			/* from the region's start */
	Size		size;
	int32		pins;			/* backends whose cache entries use it */
	bool		stale;			/* a newer version of the model is published */
	uint64		last_used;
} SharedCacheSlot;

/* The shared state; the region follows it */
typedef struct SharedCacheControl
{
	LWLock	   *lock;
	Size		capacity;		/* bytes in the region */
	uint64		clock;			/* for last_used */
	int64		hits;			/* entries served from a published blob */
	int64		publishes;
	int64		evictions;		/* unpinned blobs dropped to make room */
	int64		no_room;		/* reservations that fell back to a copy */
	SharedCacheSlot slots[SHARED_CACHE_SLOTS];
} SharedCacheControl;

/* recsys.shared_cache_size, in kB (0 disables the shared cache) */
static int	shared_cache_size_kb = 64 * 1024;

static SharedCacheControl *control = NULL;
static char *region = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Bytes of the control struct, padded so the region starts aligned */
static Size
ControlSize(void)
{
	return SHARED_CACHE_ALIGN(sizeof(SharedCacheControl));
}

/* Ask for the shared memory and the lock (shmem_request_hook) */
static void
SharedCacheShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	/* 64 extra bytes: ShmemInitStruct only promises MAXALIGN */
	RequestAddinShmemSpace(add_size(add_size(ControlSize(), 64),
									mul_size((Size) shared_cache_size_kb, 1024)));
	RequestNamedLWLockTranche("recsys shared cache", 1);
}

/* Create or find the shared state (shmem_startup_hook) */
static void
SharedCacheShmemStartup(void)
{
	bool		found;
	char	   *base;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct("recsys shared cache",
						   add_size(add_size(ControlSize(), 64),
									mul_size((Size) shared_cache_size_kb, 1024)),
						   &found);
	control = (SharedCacheControl *) SHARED_CACHE_ALIGN((uintptr_t) base);
	if (!found)
	{
		memset(control, 0, sizeof(SharedCacheControl));
		control->lock = &(GetNamedLWLockTranche("recsys shared cache"))->lock;
		control->capacity = (Size) shared_cache_size_kb * 1024;
	}
	region = (char *) control + ControlSize();
	LWLockRelease(AddinShmemInitLock);
}

/*
 * When the library is being preloaded: define recsys.shared_cache_size and
 * ask for the shared memory (called from _PG_init).
 */
void
SharedCacheInit(void)
{
	/* A PGC_POSTMASTER setting can only be defined while preloading */
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("recsys.shared_cache_size",
							"Shared memory for item factors shared by all backends.",
							"Reserved at server start when recsys is in shared_preload_libraries; 0 disables the shared cache.",
							&shared_cache_size_kb,
							64 * 1024,
							0,
							INT_MAX / 2,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = SharedCacheShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = SharedCacheShmemStartup;
}

/* Whether this server has a shared cache */
bool
SharedCacheAvailable(void)
{
	return control != NULL && control->capacity > 0;
}

/* Whether two keys are equal, field by field (no padding compared) */
static bool
KeyEqual(const SharedCacheKey *a, const SharedCacheKey *b)
{
	return a->dbid == b->dbid && a->model_id == b->model_id &&
		a->version == b->version && a->token == b->token && a->k == b->k &&
		a->method == b->method;
}

/* Mark a slot free; its bytes are free once no slot covers them */
static void
FreeSlot(SharedCacheSlot *s)
{
	s->state = SLOT_FREE;
	s->pins = 0;
	s->stale = false;
	s->size = 0;
}

/*
 * Pin the published blob of key; returns its address and sets *slot, or
 * NULL when there is none.
 */
char *
SharedCacheAcquire(const SharedCacheKey *key, int *slot)
{
	char	   *blob = NULL;

	if (!SharedCacheAvailable())
		return NULL;
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		SharedCacheSlot *s = &control->slots[i];

		if (s->state == SLOT_READY && KeyEqual(&s->key, key))
		{
			s->pins++;
			s->last_used = ++control->clock;
			control->hits++;
			*slot = i;
			blob = region + s->offset;
			break;
		}
	}
	LWLockRelease(control->lock);
	return blob;
}

/* Order (offset, size) pairs by offset */
static int
CompareExtent(const void *a, const void *b)
{
	Size		x = ((const Size *) a)[0];
	Size		y = ((const Size *) b)[0];

	return (x > y) - (x < y);
}

/* Offset of a free run of size bytes in the region, or -1 (lock held) */
static int64
FindGap(Size size)
{
	Size		used[SHARED_CACHE_SLOTS][2];
	int			n = 0;
	Size		cur = 0;

	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		if (control->slots[i].state != SLOT_FREE)
		{
			used[n][0] = control->slots[i].offset;
			used[n][1] = control->slots[i].size;
			n++;
		}
	}
	qsort(used, n, sizeof(used[0]), CompareExtent);
	for (int i = 0; i < n; i++)
	{
		if (used[i][0] >= cur && used[i][0] - cur >= size)
			return (int64) cur;
		cur = Max(cur, used[i][0] + used[i][1]);
	}
	if (control->capacity >= cur && control->capacity - cur >= size)
		return (int64) cur;
	return -1;
}

/* Evict one unpinned published blob, stale ones first; false if none */
static bool
EvictOne(void)
{
	int			victim = -1;

	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		SharedCacheSlot *s = &control->slots[i];

		if (s->state != SLOT_READY || s->pins > 0)
			continue;
		if (victim < 0 ||
			(s->stale && !control->slots[victim].stale) ||
			(s->stale == control->slots[victim].stale &&
			 s->last_used < control->slots[victim].last_used))
			victim = i;
	}
	if (victim < 0)
		return false;
	FreeSlot(&control->slots[victim]);
	control->evictions++;
	return true;
}

/*
 * Reserve size bytes for key's blob, pinned by the caller, who writes it
 * and then calls SharedCachePublish (or SharedCacheRelease to give up).
 * Returns NULL (keep a private copy) when the blob exists or is being
 * written already, or when there is no room even after evicting every
 * unpinned blob.
 */
char *
SharedCacheReserve(const SharedCacheKey *key, Size size, int *slot)
{
	int			free_slot = -1;
	int64		offset = -1;

	if (!SharedCacheAvailable())
		return NULL;
	size = SHARED_CACHE_ALIGN(size);
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		if (control->slots[i].state != SLOT_FREE &&
			KeyEqual(&control->slots[i].key, key))
		{
			LWLockRelease(control->lock);
			return NULL;
		}
	}
	if (size <= control->capacity)
	{
		for (;;)
		{
			for (int i = 0; i < SHARED_CACHE_SLOTS && free_slot < 0; i++)
				if (control->slots[i].state == SLOT_FREE)
					free_slot = i;
			if (free_slot >= 0)
				offset = FindGap(size);
			if (offset >= 0 || !EvictOne())
				break;
		}
	}
	if (offset < 0)
	{
		control->no_room++;
		LWLockRelease(control->lock);
		return NULL;
	}
	control->slots[free_slot].state = SLOT_LOADING;
	control->slots[free_slot].key = *key;
	control->slots[free_slot].offset = (Size) offset;
	control->slots[free_slot].size = size;
	control->slots[free_slot].pins = 1;
	control->slots[free_slot].stale = false;
	control->slots[free_slot].last_used = ++control->clock;
	LWLockRelease(control->lock);
	*slot = free_slot;
	return region + offset;
}

/*
 * Make a reserved blob visible to other backends; older versions of its
 * model become stale (freed now if unpinned), and so does this one if a
 * newer version is already published.
 */
void
SharedCachePublish(int slot)
{
	SharedCacheSlot *p = &control->slots[slot];

	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	Assert(p->state == SLOT_LOADING);
	p->state = SLOT_READY;
	control->publishes++;
	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		SharedCacheSlot *s = &control->slots[i];

		if (i == slot || s->state == SLOT_FREE ||
			s->key.dbid != p->key.dbid || s->key.model_id != p->key.model_id)
			continue;
		if (s->key.version > p->key.version)
			p->stale = true;
		else if (s->state == SLOT_READY)
		{
			s->stale = true;
			if (s->pins == 0)
				FreeSlot(s);
		}
	}
	LWLockRelease(control->lock);
}

/*
 * Unpin a blob: the caller's cache entry no longer uses it.  A stale blob,
 * or one that was never published, goes with its last pin.
 */
void
SharedCacheRelease(int slot)
{
	SharedCacheSlot *s = &control->slots[slot];

	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	Assert(s->pins > 0);
	s->pins--;
	if (s->pins == 0 && (s->stale || s->state == SLOT_LOADING))
		FreeSlot(s);
	LWLockRelease(control->lock);
}

/*
 * Every version of a model is stale (the model was dropped): free those no
 * backend uses, and the others with their last pin.
 */
void
SharedCacheForget(Oid dbid, int64 model_id)
{
	if (!SharedCacheAvailable())
		return;
	LWLockAcquire(control->lock, LW_EXCLUSIVE);
	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		SharedCacheSlot *s = &control->slots[i];

		if (s->state != SLOT_READY || s->key.dbid != dbid || s->key.model_id != model_id)
			continue;
		s->stale = true;
		if (s->pins == 0)
			FreeSlot(s);
	}
	LWLockRelease(control->lock);
}

/* A consistent copy of the shared state; false without a shared cache */
static bool
SnapshotControl(SharedCacheControl *copy)
{
	if (!SharedCacheAvailable())
		return false;
	LWLockAcquire(control->lock, LW_SHARED);
	memcpy(copy, control, sizeof(SharedCacheControl));
	LWLockRelease(control->lock);
	return true;
}

PG_FUNCTION_INFO_V1(recsys_shared_cache);

/*
 * recsys.shared_cache(): one row per blob of the shared cache, of every
 * database; no rows without a shared cache.
 */
Datum
recsys_shared_cache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SharedCacheControl copy;

	InitMaterializedSRF(fcinfo, 0);
	if (!SnapshotControl(&copy))
		PG_RETURN_VOID();
	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		Datum		values[7];
		bool		nulls[7] = {false};
		SharedCacheSlot *s = &copy.slots[i];

		if (s->state == SLOT_FREE)
			continue;
		values[0] = ObjectIdGetDatum(s->key.dbid);
		values[1] = Int64GetDatum(s->key.model_id);
		values[2] = Int64GetDatum(s->key.version);
		values[3] = Int64GetDatum((int64) s->size);
		values[4] = Int32GetDatum(s->pins);
		values[5] = CStringGetTextDatum(s->state == SLOT_READY ? "ready" : "loading");
		values[6] = BoolGetDatum(s->stale);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(recsys_shared_cache_stats);

/*
 * recsys.shared_cache_stats(): the region's size and use, and what the
 * cache has done since the server started; NULL without a shared cache.
 */
Datum
recsys_shared_cache_stats(PG_FUNCTION_ARGS)
{
	SharedCacheControl copy;
	TupleDesc	desc;
	Datum		values[7];
	bool		nulls[7] = {false};
	int64		used = 0;
	int			blobs = 0;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!SnapshotControl(&copy))
		PG_RETURN_NULL();
	for (int i = 0; i < SHARED_CACHE_SLOTS; i++)
	{
		if (copy.slots[i].state != SLOT_FREE)
		{
			used += (int64) copy.slots[i].size;
			blobs++;
		}
	}
	values[0] = Int64GetDatum((int64) copy.capacity);
	values[1] = Int64GetDatum(used);
	values[2] = Int32GetDatum(blobs);
	values[3] = Int64GetDatum(copy.hits);
	values[4] = Int64GetDatum(copy.publishes);
	values[5] = Int64GetDatum(copy.evictions);
	values[6] = Int64GetDatum(copy.no_room);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
