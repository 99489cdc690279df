/*-------------------------------------------------------------------------
 *
 * ratings.h
 *	  Reading interactions from a source relation into sparse form.
 *
 * IDENTIFICATION
 *	  src/ratings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RATINGS_H
#define RATINGS_H

#include "recsys.h"

/* Where to read interactions from, as given to train() */
typedef struct RatingsSource
{
	Oid			relid;
	const char *user_col;
	const char *item_col;
	const char *value_col;		/* NULL: every row has value 1 */
	bool		sum_duplicates; /* merge duplicates by sum, not mean */
} RatingsSource;

/* An (item id, value) pair of one user's rows */
typedef struct ItemValue
{
	int64		item;
	double		value;
} ItemValue;

/* One user's interactions, sorted by item id, duplicates merged */
typedef struct RatingsUser
{
	int			n;
	int64	   *items;
	float	   *values;
} RatingsUser;

/* Interactions collected one at a time (ratings.c) */
typedef struct RatingsBuilder RatingsBuilder;

extern char *RatingsSourceName(Oid relid);
extern RatingsBuilder *RatingsBuilderCreate(int64 estimate);
extern void RatingsBuilderAdd(RatingsBuilder *b, int64 user, int64 item,
							  float value);
extern int64 RatingsBuilderCount(const RatingsBuilder *b);
extern RecsysRatings *RatingsBuilderFinish(RatingsBuilder *b,
										   bool sum_duplicates);
extern RecsysRatings *RatingsLoad(const RatingsSource *source);
extern Size RatingsMemory(int64 nnz, int nusers, int nitems);
extern void RatingsReleaseForStore(RecsysRatings *r, bool keep_user_values);
extern Oid	RatingsSourceOid(const char *qualified_name);
extern void RatingsLoadUser(const RatingsSource *src, int64 user_id,
							RatingsUser *out);
extern void RatingsMerge(ItemValue *pairs, int npairs, bool sum_duplicates,
						 RatingsUser *out);

#endif							/* RATINGS_H */
