/*-------------------------------------------------------------------------
 *
 * compact.h
 *	  Compact scoring: 8-bit item codes with error bounds, exact answers.
 *
 * IDENTIFICATION
 *	  src/compact.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef COMPACT_H
#define COMPACT_H

#include "recsys.h"

/* Settings of recsys.compact_scoring */
#define COMPACT_OFF 0
#define COMPACT_ON 1			/* where it pays (catalog size, n) */
#define COMPACT_ALWAYS 2		/* whenever possible (tests) */

/*
 * A model's compact item codes: a view of one contiguous chunk (private,
 * or in a shared cache blob), which starts with its own header.
 */
typedef struct CompactItems
{
	int32		n;				/* items */
	int32		k;				/* factors */
	int32		groups;			/* 4-dimension groups, ceil(k / 4) */
	int32		nblocks;		/* blocks of SIMD_CODE_BLOCK items */
	float		max_qnorm;		/* largest qnorm */
	float		max_enorm;		/* largest enorm */
	float		max_bias;		/* largest |b_i| */
	const uint8 *codes;			/* nblocks x groups x 64: see compact.c */
	const float *scale;			/* per item, padded to whole blocks */
	const float *qnorm;			/* >= ||q_i|| */
	const float *enorm;			/* >= ||q_i - scale_i c_i|| */
	const float *bias;			/* padded copy of b_i, or NULL if all 0 */
} CompactItems;

extern int	recsys_compact_scoring;

extern void CompactInit(void);
extern char *CompactBuild(const RecsysFactors *items, Size *size);
extern Size CompactChunkSize(const char *chunk);
extern void CompactAttach(const char *chunk, CompactItems *c);
extern int	CompactPadded(const CompactItems *c);
extern bool CompactWanted(const CompactItems *c, int n);
extern bool CompactBounds(const CompactItems *c, const float *x, float base,
						  bool zero_bias, float *upper, float *lower);
extern int	CompactTopK(const CompactItems *c, const RecsysFactors *items,
						bool zero_bias, const float *x, float base,
						const float *upper, const float *lower, int n,
						float *scores, int32 *candidates, int32 *out);

#endif							/* COMPACT_H */
