/*-------------------------------------------------------------------------
 *
 * idmap.h
 *	  Open-addressing hash map from original int64 ids to dense indexes.
 *
 * IDENTIFICATION
 *	  src/idmap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDMAP_H
#define IDMAP_H

typedef struct IdMapEntry
{
	int64		key;
	int32		value;			/* -1 marks an empty slot */
} IdMapEntry;

typedef struct IdMap
{
	IdMapEntry *slots;
	uint64		mask;			/* capacity - 1, capacity a power of two */
	int32		count;
	MemoryContext cxt;			/* where the slots live, also after growth */
} IdMap;

extern IdMap *IdMapCreate(int64 expected);
extern int32 IdMapInsert(IdMap *map, int64 key);
extern int32 IdMapLookup(const IdMap *map, int64 key);
extern void IdMapSet(IdMap *map, int64 key, int32 value);
extern Size IdMapMemory(int64 expected);

#endif							/* IDMAP_H */
