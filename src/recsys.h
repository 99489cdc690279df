/*-------------------------------------------------------------------------
 *
 * recsys.h
 *	  Shared types, limits and module entry points of the recsys extension.
 *
 * The extension is layered: SQL entry points (train.c, recommend.c,
 * aggregate.c) call the catalog and data-loading code (catalog.c,
 * ratings.c, the only code that runs SPI) and the backend cache (cache.c),
 * which call the numeric core (als.c, idmap.c), which calls linalg.c, the
 * only code that touches BLAS/LAPACK.
 *
 * IDENTIFICATION
 *	  src/recsys.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RECSYS_H
#define RECSYS_H

#include "common/pg_prng.h"
#include "portability/instr_time.h"
#include "utils/array.h"

/* Largest number of latent factors a model may have */
#define RECSYS_MAX_FACTORS		1024

/* Largest number of training iterations */
#define RECSYS_MAX_ITERATIONS	10000

/* Most conjugate-gradient steps per row and half-step */
#define RECSYS_MAX_CG_STEPS		100

/* Longest model name, in bytes */
#define RECSYS_MAX_NAME_LEN		128

struct RecsysMethod;				/* method.h */

/* How implicit values become confidences */
typedef enum RecsysScaling
{
	RECSYS_SCALING_LINEAR,		/* c = 1 + alpha * v */
	RECSYS_SCALING_LOG			/* c = 1 + alpha * log(1 + v / epsilon) */
} RecsysScaling;

/* How factor models solve a row's normal equations */
typedef enum RecsysSolver
{
	RECSYS_SOLVER_CHOLESKY,		/* exact */
	RECSYS_SOLVER_CG,			/* a few conjugate-gradient steps (ials) */
	RECSYS_SOLVER_SUBSPACE		/* one sweep of block coordinate descent
								 * (ials: iALS++, als.c) */
} RecsysSolver;

/*
 * The options of one training run, frozen into the model row as
 * recsys.models.params.  Every method uses the fields its option table
 * names (method.h) and leaves the others at zero.
 */
typedef struct RecsysParams
{
	const struct RecsysMethod *method;
	/* factor models (als, ials) */
	int			factors;
	int			iterations;
	double		regularization; /* also ease's lambda */
	int			seed;
	int			solver;			/* RecsysSolver */
	int			cg_steps;
	int			block_size;		/* subspace solver: coordinates per block */
	/* implicit feedback (ials) */
	double		alpha;			/* confidence scale */
	int			scaling;		/* RecsysScaling */
	double		epsilon;		/* log scaling's value unit */
	/* item neighbour models (item_knn, ease) */
	int			neighbors;		/* most neighbours kept per item */
	int			weighting;		/* KnnWeighting */
	double		k1;				/* bm25 */
	double		b;				/* bm25 */
	int			similarity;		/* KnnSimilarity */
	double		shrink;
	bool		binary;			/* every interaction counts 1 */
	/* features (content, and hybrid factor models): qualified relations */
	char	   *item_features;	/* (item id, feature, weight) */
	char	   *item_text;		/* (item id, document) */
	char	   *text_config;	/* text search configuration of item_text */
	char	   *user_features;	/* (user id, feature, weight) */
	double		feature_regularization;	/* hybrid: ridge penalty of the
										 * feature factors */
	/* preprocessing (every method): ratings.c */
	int			min_user_interactions;	/* k-core: fewer drop the user */
	int			min_item_interactions;	/* k-core: fewer drop the item */
	char	   *time_col;		/* recency decay: the time column */
	char	   *half_life;		/* an interval, or a number (numeric time) */
	char	   *as_of;			/* the reference time (epoch seconds once
								 * trained) */
	double		max_value;		/* values above are capped (0: none) */
} RecsysParams;

/*
 * A sparse matrix in compressed sparse row form.  Column indices within a row
 * are sorted ascending and unique.  int64 offsets because a source may hold
 * more than 2^31 interactions; int32 column indices because no side has more
 * than 2^31 distinct ids.
 */
typedef struct RecsysSparse
{
	int			nrows;
	int			ncols;
	int64		nnz;
	int64	   *indptr;			/* nrows + 1 offsets into indices/values */
	int32	   *indices;		/* column index of each entry */
	float	   *values;			/* value of each entry */
} RecsysSparse;

/* Interactions read from a source relation, with dense id maps */
typedef struct RecsysRatings
{
	int			nusers;
	int			nitems;
	int64		nnz;			/* distinct (user, item) pairs */
	int64		rows_read;		/* rows returned by the source query */
	int64		null_values;	/* rows skipped because the value was NULL */
	int64		duplicates;		/* rows merged into an earlier (user, item) */
	int64		null_times;		/* rows skipped because the time was NULL */
	int64		capped;			/* values capped at max_value */
	double		reference;		/* decay: the reference time used */
	double		oldest_weight;	/* decay: the smallest factor applied */
	double		mean;			/* mean value over the nnz pairs */
	int64	   *user_ids;		/* dense user index -> original id, ascending */
	int64	   *item_ids;		/* dense item index -> original id, ascending */
	char	  **user_names;		/* text-keyed users: id j -> user_names[j - 1]
								 * (byte order); NULL for integer ids */
	char	  **item_names;		/* the same for items */
	int64		nuser_names;
	int64		nitem_names;
	RecsysSparse by_user;		/* nusers x nitems */
	RecsysSparse by_item;		/* nitems x nusers */
} RecsysRatings;

/*
 * Features of one side of a model (items or users), read from relations:
 * the vocabulary and each entity's (feature, weight) pairs (ratings.c).
 */
typedef struct RecsysFeatures
{
	int			nfeatures;
	char	  **names;			/* feature index -> name, in byte order */
	int			nentities;
	int64	   *ids;			/* entity ids with features, ascending */
	RecsysSparse by_entity;		/* nentities x nfeatures: weights */
	int64		null_features;	/* rows skipped: NULL feature or weight */
	int64		duplicates;		/* rows merged into an earlier (id, feature) */
} RecsysFeatures;

/*
 * One side's features as a model stores and serves them: the vocabulary
 * (names in byte order, so a name is found by binary search; the idf of
 * content models, the factors of hybrid ones) and each entity's features.
 */
typedef struct ModelFeatures
{
	int			nfeatures;
	char	  **names;
	float	   *idf;			/* per feature, or NULL */
	float	   *factors;		/* nfeatures x k, or NULL */
	int			k;
	RecsysSparse rows;			/* entities (model or cache rows) x features */
} ModelFeatures;

/*
 * InitMaterializedSRF flags of the serving functions.  Why the expected
 * descriptor: it is the executor's, built once per statement; without the
 * flag every call builds the row type again from pg_proc (its argument
 * names detoasted and parsed), 11% of a recommend() call's time.
 */
#define RECSYS_SRF_FLAGS MAT_SRF_USE_EXPECTED_DESC

/* What the catalog knows about one trained model */
typedef struct RecsysModelInfo
{
	int64		model_id;
	int64		version;
	int64		token;			/* random per version: part of the cache key */
	char	   *name;
	const struct RecsysMethod *method;
	RecsysParams params;		/* the options it was trained with */
	int			factors;		/* 0 for methods without factors */
	int			num_users;
	int			num_items;
	double		global_mean;
	char	   *source;			/* qualified source relation, as trained */
	char	   *user_col;
	char	   *item_col;
	char	   *value_col;		/* NULL when trained without values */
	bool		text_users;		/* users keyed by text (recsys.id_map) */
	bool		text_items;		/* items keyed by text */
	Oid			user_id_type;	/* the source's id column types */
	Oid			item_id_type;
} RecsysModelInfo;

/* One side (items or users) of a stored model, as the cache holds it */
typedef struct RecsysFactors
{
	int			n;
	int			k;
	int64	   *ids;
	float	   *factors;		/* nitems x k, row-major */
	float	   *bias;
	int64	   *popularity;		/* items: training interactions; users: seen */
} RecsysFactors;

/* One user's stored row */
typedef struct RecsysUserRow
{
	bool		found;
	float	   *factors;		/* k values */
	float		bias;
	int64	   *seen;			/* item ids the user had in training, sorted */
	float	   *seen_values;	/* their values (after merging duplicates) */
	int			nseen;
} RecsysUserRow;

/* recsys.c */
extern char *recsys_default_model;
extern double RecsysConfidence(RecsysScaling scaling, double alpha,
							   double epsilon, double value);
extern Size RecsysMemoryBudget(void);
extern void RecsysCheckMemory(Size required, const char *what);
extern void RecsysPrefault(void *p, Size size);
extern double RecsysSecondsSince(instr_time start);
extern void RecsysCheckNumber(const char *name, double x, double min,
							  bool strict);

/* array.c */
extern float *ArrayGetFloat4(ArrayType *a, int expected, int *len);
extern ArrayType *ArrayFromFloat4(const float *values, int n);
extern ArrayType *ArrayFromInt8(const int64 *values, int n);
extern ArrayType *ArrayFromFloat8(const double *values, int n);
extern ArrayType *ArrayFromInt4(const int32 *values, int n);
extern int64 *ArrayGetInt8(ArrayType *a, int *len);
extern int32 *ArrayGetInt4(ArrayType *a, int *len);
extern double *ArrayGetFloat8(ArrayType *a, int *len);

#endif							/* RECSYS_H */
