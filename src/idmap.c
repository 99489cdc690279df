/*-------------------------------------------------------------------------
 *
 * idmap.c
 *	  Open-addressing hash map from original int64 ids to dense indexes.
 *
 * Training maps every (user, item) id pair of the source to dense indexes,
 * and serving maps item ids to rows of the cached factor matrix, so this map
 * is on the hot path of both: linear probing over a flat array (one cache
 * line per probe at low load) with a multiplicative hash, and no per-entry
 * allocation.
 *
 * IDENTIFICATION
 *	  src/idmap.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "idmap.h"
#include "utils/memutils.h"

/* Capacity for an expected number of keys: a power of two, load <= 1/2 */
static uint64
IdMapCapacity(int64 expected)
{
	uint64		cap = 16;

	while (cap < (uint64) Max(expected, 1) * 2)
		cap <<= 1;
	return cap;
}

/* Bytes an IdMap sized for `expected` keys occupies */
Size
IdMapMemory(int64 expected)
{
	return sizeof(IdMap) + IdMapCapacity(expected) * sizeof(IdMapEntry);
}

/* Allocate a map sized for `expected` keys in the current memory context */
IdMap *
IdMapCreate(int64 expected)
{
	IdMap	   *map = palloc(sizeof(IdMap));
	uint64		cap = IdMapCapacity(expected);

	map->cxt = CurrentMemoryContext;
	map->slots = palloc_extended(cap * sizeof(IdMapEntry), MCXT_ALLOC_HUGE);
	for (uint64 i = 0; i < cap; i++)
		map->slots[i].value = -1;
	map->mask = cap - 1;
	map->count = 0;
	return map;
}

/* Fibonacci hashing: spreads sequential ids over the whole table */
static inline uint64
IdHash(int64 key)
{
	uint64		h = (uint64) key * UINT64CONST(0x9E3779B97F4A7C15);

	return h ^ (h >> 29);
}

/* Double the capacity and reinsert every entry */
static void
IdMapGrow(IdMap *map)
{
	uint64		oldcap = map->mask + 1;
	IdMapEntry *old = map->slots;
	uint64		cap = oldcap * 2;

	map->slots = MemoryContextAllocExtended(map->cxt, cap * sizeof(IdMapEntry),
											MCXT_ALLOC_HUGE);
	for (uint64 i = 0; i < cap; i++)
		map->slots[i].value = -1;
	map->mask = cap - 1;
	for (uint64 i = 0; i < oldcap; i++)
	{
		if (old[i].value >= 0)
		{
			uint64		h = IdHash(old[i].key) & map->mask;

			while (map->slots[h].value >= 0)
				h = (h + 1) & map->mask;
			map->slots[h] = old[i];
		}
	}
	pfree(old);
}

/* Index of key, assigning the next dense index if the key is new */
int32
IdMapInsert(IdMap *map, int64 key)
{
	uint64		h;

	if ((uint64) map->count * 2 >= map->mask + 1)
		IdMapGrow(map);
	if (map->count == PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct ids: at most %d are supported", PG_INT32_MAX)));

	h = IdHash(key) & map->mask;
	while (map->slots[h].value >= 0)
	{
		if (map->slots[h].key == key)
			return map->slots[h].value;
		h = (h + 1) & map->mask;
	}
	map->slots[h].key = key;
	map->slots[h].value = map->count;
	return map->count++;
}

/* Store an explicit index for key (the key must not be present yet) */
void
IdMapSet(IdMap *map, int64 key, int32 value)
{
	uint64		h;

	if ((uint64) map->count * 2 >= map->mask + 1)
		IdMapGrow(map);
	h = IdHash(key) & map->mask;
	while (map->slots[h].value >= 0)
		h = (h + 1) & map->mask;
	map->slots[h].key = key;
	map->slots[h].value = value;
	map->count++;
}

/* Index of key, or -1 when absent */
int32
IdMapLookup(const IdMap *map, int64 key)
{
	uint64		h = IdHash(key) & map->mask;

	while (map->slots[h].value >= 0)
	{
		if (map->slots[h].key == key)
			return map->slots[h].value;
		h = (h + 1) & map->mask;
	}
	return -1;
}
