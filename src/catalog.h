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
#include "executor/spi.h"
#include "idmap.h"
#include "knn.h"
#include "ratings.h"
#include "recsys.h"

/* One iteration of a training run */
typedef struct RecsysIteration
{
	double		loss;
	double		rmse;
	double		seconds;
	int64		bytes;			/* distributed: bytes shipped, else 0 */
} RecsysIteration;

/* Everything a finished training run stores */
typedef struct RecsysTrained
{
	const char *name;
	const RecsysParams *params;
	const RatingsSource *source;
	const RecsysRatings *ratings;
	const AlsModel *model;
	const KnnGraph *graph;		/* item neighbour lists, or NULL */
	const ModelFeatures *item_features; /* rows: r->nitems; or NULL */
	const ModelFeatures *user_features; /* rows: r->nusers; or NULL */
	const RecsysIteration *log;
	const float *seen_values;	/* raw values in by_user order */
	int			iterations;		/* 0 for the popular method */
	double		seconds;
	const char *preprocessing;	/* jsonb text of what preprocessing did, or
								 * NULL */
	Oid			user_id_type;	/* the source's id column types */
	Oid			item_id_type;
	bool		users_elsewhere;	/* distributed: the user rows are stored
									 * by CatalogInsertUserChunk */
} RecsysTrained;

/* Called with each batch of user rows by CatalogForEachUserBatch */
typedef void (*CatalogUserBatchFn) (void *arg, const int64 *ids,
									const RecsysUserRow *rows, int n);

extern void CatalogForEachUserBatch(const RecsysModelInfo *info, int batch,
									bool latest, CatalogUserBatchFn fn,
									void *arg);
extern void CatalogLockModelName(const char *name, bool exclusive);
extern int64 CatalogInternalId(const RecsysModelInfo *info, bool users,
							   const char *external, bool create);
extern char *CatalogExternalId(const RecsysModelInfo *info, bool users,
							   int64 internal);
extern void CatalogLoadIdNames(const RecsysModelInfo *info, bool users,
							   const IdMap *index, int n, char **names);
extern RecsysModelInfo *CatalogLookupModel(const char *name);
extern RecsysModelInfo *CatalogLookupModelLatest(const char *name);
extern int64 CatalogStoreModel(const RecsysTrained *t);
extern void CatalogInsertUserChunk(int64 model_id, const RecsysRatings *r,
								   const AlsModel *m, const float *seen_values);
extern bool CatalogDropModel(const char *name, int64 *dropped_id);
extern void CatalogRequireTrain(const RecsysModelInfo *info);
extern void CatalogCheckTrainable(const char *name, const RatingsSource *src,
								  const RecsysParams *p);
extern void CatalogLoadFactors(const RecsysModelInfo *info, bool users,
							   RecsysFactors *out);
extern void CatalogLoadNeighbors(const RecsysModelInfo *info,
								 const IdMap *index, RecsysSparse *out);
extern void CatalogLoadFeatures(const RecsysModelInfo *info, bool users,
								const IdMap *index, ModelFeatures *out);
extern void CatalogStoreItem(const RecsysModelInfo *info, int64 item_id,
							 const float *factors, float bias,
							 int64 popularity);
extern void CatalogStoreEntityFeatures(const RecsysModelInfo *info, bool users,
									   int64 id, const int32 *features,
									   const float *weights, int n);
extern void CatalogLoadUser(const RecsysModelInfo *info, int64 user_id,
							bool latest, RecsysUserRow *row);
extern void CatalogStoreUser(const RecsysModelInfo *info, int64 user_id,
							 const RecsysUserRow *row);
extern bool CatalogDeleteUser(const RecsysModelInfo *info, int64 user_id);
extern void CatalogUpdateItems(const RecsysModelInfo *info,
							   const RecsysFactors *upd, const int64 *gone,
							   int ngone);
extern void CatalogReplaceItems(const RecsysModelInfo *info,
								const RecsysRatings *r, const AlsModel *m,
								const KnnGraph *g);
extern void CatalogBumpVersion(const RecsysModelInfo *info, int64 users,
							   int64 items, int64 interactions);

/* catalog_write.c: the only code that writes recsys's tables */
extern int	CatalogVersion(void);
extern int	CatalogExecuteAsOwner(const char *sql, int nargs, Oid *types,
								  Datum *values, const char *nulls,
								  bool read_only, long count);
extern int	CatalogExecutePlanAsOwner(SPIPlanPtr plan, Datum *values,
									  const char *nulls, bool read_only,
									  long count);
extern bool CatalogColumnsAre(TupleDesc desc, const char *const *columns,
							  const Oid *types, int ncolumns);
typedef struct CatalogBulk CatalogBulk;
extern CatalogBulk *CatalogBulkBegin(const char *table,
									 const char *const *columns,
									 const Oid *types, int ncolumns);
extern void CatalogBulkAdd(CatalogBulk *b, const Datum *values);
extern void CatalogBulkEnd(CatalogBulk *b);

#endif							/* CATALOG_H */
