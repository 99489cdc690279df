/*-------------------------------------------------------------------------
 *
 * textdict.c
 *	  Open-addressing hash dictionary from strings to dense indexes.
 *
 * A model whose source keys users or items by text (or varchar, or uuid)
 * interns each distinct id while the source is read, so the scan costs a
 * hash and a probe per id, like the integer path (idmap.c).  Slots hold
 * the 64-bit hash and the index; strings are compared only when hashes
 * match, so a probe touches one slot array and, on a hit, one string.
 *
 * IDENTIFICATION
 *	  src/textdict.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "textdict.h"
#include "utils/memutils.h"

/* Capacity for an expected number of keys: a power of two, load <= 1/2 */
static uint64
TextDictCapacity(int64 expected)
{
	uint64		cap = 16;

	while (cap < (uint64) Max(expected, 1) * 2)
		cap <<= 1;
	return cap;
}

/* Allocate a dictionary for about `expected` strings (current context) */
TextDict *
TextDictCreate(int64 expected)
{
	TextDict   *d = palloc0(sizeof(TextDict));
	uint64		cap = TextDictCapacity(expected);

	d->cxt = CurrentMemoryContext;
	d->slots = palloc_extended(cap * sizeof(TextDictSlot), MCXT_ALLOC_HUGE);
	for (uint64 i = 0; i < cap; i++)
		d->slots[i].index = -1;
	d->mask = cap - 1;
	d->names_cap = 64;
	d->names = palloc(sizeof(char *) * d->names_cap);
	return d;
}

/* The hash of a string */
static inline uint64
TextHash(const char *s, int len)
{
	return hash_bytes_extended((const unsigned char *) s, len, 0);
}

/* Whether slot holds exactly the string s */
static inline bool
SlotMatches(const TextDict *d, const TextDictSlot *slot, uint64 h,
			const char *s, int len)
{
	const char *name;

	if (slot->hash != h)
		return false;
	name = d->names[slot->index];
	return strncmp(name, s, len) == 0 && name[len] == '\0';
}

/* Double the capacity and reinsert every slot */
static void
TextDictGrow(TextDict *d)
{
	uint64		oldcap = d->mask + 1;
	TextDictSlot *old = d->slots;
	uint64		cap = oldcap * 2;

	d->slots = MemoryContextAllocExtended(d->cxt, cap * sizeof(TextDictSlot),
										  MCXT_ALLOC_HUGE);
	for (uint64 i = 0; i < cap; i++)
		d->slots[i].index = -1;
	d->mask = cap - 1;
	for (uint64 i = 0; i < oldcap; i++)
	{
		if (old[i].index >= 0)
		{
			uint64		p = old[i].hash & d->mask;

			while (d->slots[p].index >= 0)
				p = (p + 1) & d->mask;
			d->slots[p] = old[i];
		}
	}
	pfree(old);
}

/* Index of the string s[0..len), adding it if it is new */
int32
TextDictIntern(TextDict *d, const char *s, int len)
{
	uint64		h = TextHash(s, len);
	uint64		p;
	char	   *copy;

	if ((uint64) d->count * 2 >= d->mask + 1)
		TextDictGrow(d);
	if (d->count == PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct ids: at most %d are supported", PG_INT32_MAX)));
	p = h & d->mask;
	while (d->slots[p].index >= 0)
	{
		if (SlotMatches(d, &d->slots[p], h, s, len))
			return d->slots[p].index;
		p = (p + 1) & d->mask;
	}
	if (d->count == d->names_cap)
	{
		d->names_cap *= 2;
		d->names = repalloc_huge(d->names, sizeof(char *) * d->names_cap);
	}
	copy = MemoryContextAlloc(d->cxt, len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	d->names[d->count] = copy;
	d->slots[p].hash = h;
	d->slots[p].index = d->count;
	return d->count++;
}

/* Index of the string s[0..len), or -1 when absent */
int32
TextDictLookup(const TextDict *d, const char *s, int len)
{
	uint64		h = TextHash(s, len);
	uint64		p = h & d->mask;

	while (d->slots[p].index >= 0)
	{
		if (SlotMatches(d, &d->slots[p], h, s, len))
			return d->slots[p].index;
		p = (p + 1) & d->mask;
	}
	return -1;
}

/* qsort_arg comparator: indexes by their strings, in byte order */
static int
CompareByName(const void *a, const void *b, void *arg)
{
	const TextDict *d = (const TextDict *) arg;

	return strcmp(d->names[*(const int32 *) a], d->names[*(const int32 *) b]);
}

/*
 * The rank of every index when the strings are sorted in byte order
 * (palloc'd, count entries): numbering ids by rank makes a model
 * independent of the order the source returned its rows in.
 */
int32 *
TextDictRanks(const TextDict *d)
{
	int32	   *order = palloc_extended(sizeof(int32) * Max(d->count, 1), MCXT_ALLOC_HUGE);
	int32	   *rank = palloc_extended(sizeof(int32) * Max(d->count, 1), MCXT_ALLOC_HUGE);

	for (int32 i = 0; i < d->count; i++)
		order[i] = i;
	qsort_arg(order, d->count, sizeof(int32), CompareByName, (void *) d);
	for (int32 i = 0; i < d->count; i++)
		rank[order[i]] = i;
	pfree(order);
	return rank;
}
