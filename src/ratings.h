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
} RatingsSource;

extern char *RatingsSourceName(Oid relid);
extern RecsysRatings *RatingsLoad(const RatingsSource *source);
extern Size RatingsMemory(int64 nnz, int nusers, int nitems);

#endif							/* RATINGS_H */
