/*-------------------------------------------------------------------------
 *
 * textdict.h
 *	  Open-addressing hash dictionary from strings to dense indexes: the
 *	  external ids (text, varchar, uuid) of a model keyed by text.
 *
 * IDENTIFICATION
 *	  src/textdict.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEXTDICT_H
#define TEXTDICT_H

typedef struct TextDictSlot
{
	uint64		hash;
	int32		index;			/* -1 marks an empty slot */
} TextDictSlot;

typedef struct TextDict
{
	TextDictSlot *slots;
	uint64		mask;			/* capacity - 1, a power of two */
	int32		count;
	char	  **names;			/* index -> string (NUL-terminated) */
	int32		names_cap;
	MemoryContext cxt;			/* where everything lives */
} TextDict;

extern TextDict *TextDictCreate(int64 expected);
extern int32 TextDictIntern(TextDict *d, const char *s, int len);
extern int32 TextDictLookup(const TextDict *d, const char *s, int len);
extern int32 *TextDictRanks(const TextDict *d);

#endif							/* TEXTDICT_H */
