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
/*
 * How each row's value is preprocessed as it is read (train.c resolves
 * the options): capped at max_value, then decayed by its age,
 * value * 2^(-age / half_life), age = reference - time (at least 0).
 */
typedef struct RatingsPrep
{
	const char *time_col;		/* NULL: no decay */
	double		half_life;		/* seconds (or the time column's unit) */
	double		reference;		/* the same unit; NaN: the newest row's */
	double		max_value;		/* 0: no cap */
} RatingsPrep;

/* A text id of the other side as the model's id, or -1 if unknown */
typedef int64 (*RatingsResolveFn) (void *arg, const char *id, int len);

typedef struct RatingsSource
{
	Oid			relid;
	const char *user_col;
	const char *item_col;
	const char *value_col;		/* NULL: every row has value 1 */
	bool		sum_duplicates; /* merge duplicates by sum, not mean */
	RatingsPrep prep;

	/*
	 * Reading one user's (or item's) rows of a model keyed by text: the
	 * model's ids of the items (or users) they name
	 */
	RatingsResolveFn resolve;
	void	   *resolve_arg;

	/* Training of a model keyed by text: the ids read (RatingsIdDicts) */
	struct TextDict *user_dict;
	struct TextDict *item_dict;
} RatingsSource;

/* What k-core filtering left out (RatingsKCore) */
typedef struct RatingsKCoreStats
{
	int			rounds;
	int			users;			/* users whose interactions all went */
	int			items;
	int64		interactions;
} RatingsKCoreStats;

/* A relation of features or texts of one side (ratings.c) */
typedef struct FeatureSource
{
	Oid			relid;
	const char *id_col;			/* the entity id column */
	bool		text;			/* (id, document); else (id, feature, weight) */
	const char *config;			/* text: the text search configuration */
	bool		one;			/* only the rows of entity `id` */
	int64		id;
	const char *id_text;		/* text-keyed: the entity, when one */
	struct TextDict *dict;		/* text-keyed: ids interned here */
} FeatureSource;

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
extern RecsysRatings *RatingsKCore(RecsysRatings *r, int min_user, int min_item,
								   const RecsysFeatures *user_features,
								   const RecsysFeatures *item_features,
								   RatingsKCoreStats *stats);
extern void RatingsPrepare(RatingsSource *src, const RecsysParams *p);
extern RecsysRatings *RatingsLoad(const RatingsSource *source,
								  RecsysFeatures *user_features,
								  RecsysFeatures *item_features);
extern RecsysFeatures *RatingsLoadFeatures(const FeatureSource *sources,
										   int nsources);
extern void RatingsAlignFeatures(const RecsysFeatures *f, const int64 *ids,
								 int n, RecsysSparse *out);
extern Size RatingsMemory(int64 nnz, int nusers, int nitems);
extern void RatingsReleaseForStore(RecsysRatings *r, bool keep_user_values);
extern Oid	RatingsSourceOid(const char *qualified_name);
extern void RatingsLoadItem(const RatingsSource *src, int64 item_id,
							const char *item_text, RatingsUser *out);
extern bool RatingsIsTextIdType(Oid type);
extern void RatingsIdDicts(RatingsSource *src);
extern void RatingsValidate(const RatingsSource *src);
extern Oid	RatingsIdType(Oid relid, const char *col);
extern void RatingsLoadUser(const RatingsSource *src, int64 user_id,
							const char *user_text, RatingsUser *out);
extern void RatingsMerge(ItemValue *pairs, int npairs, bool sum_duplicates,
						 RatingsUser *out);

#endif							/* RATINGS_H */
