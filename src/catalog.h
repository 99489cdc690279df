/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  The model catalog: schema recsys's tables, read and written via SPI.
 *
 * IDENTIFICATION
 *	  src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef CATALOG_H
#define CATALOG_H

#include "als.h"
#include "ratings.h"
#include "recsys.h"

/* Item side of a stored model, as the cache holds it */
typedef struct RecsysItems
{
	int			nitems;
	int			k;
	int64	   *ids;
	float	   *factors;		/* nitems x k, row-major */
	float	   *bias;
	int64	   *popularity;
} RecsysItems;

/* One iteration of a training run */
typedef struct RecsysIteration
{
	double		loss;
	double		rmse;
	double		seconds;
} RecsysIteration;

/* Everything a finished training run stores */
typedef struct RecsysTrained
{
	const char *name;
	const RecsysParams *params;
	const RatingsSource *source;
	const RecsysRatings *ratings;
	const AlsModel *model;
	const RecsysIteration *log;
	int			iterations;
	double		seconds;
} RecsysTrained;

extern void CatalogLockModelName(const char *name);
extern RecsysModelInfo *CatalogLookupModel(const char *name);
extern void CatalogStoreModel(const RecsysTrained *t);
extern bool CatalogDropModel(const char *name);
extern void CatalogLoadItems(const RecsysModelInfo *info, RecsysItems *items);
extern void CatalogLoadUser(const RecsysModelInfo *info, int64 user_id,
							RecsysUserRow *row);

#endif							/* CATALOG_H */
