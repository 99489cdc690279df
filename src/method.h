/*-------------------------------------------------------------------------
 *
 * method.h
 *	  Training methods: one descriptor per method, one method per file.
 *
 * A method (als, ials, popular, item_knn, ease, ...) is a RecsysMethod:
 * its options (what train(..., options => ...) accepts, with defaults and
 * ranges), what it stores, and the slots through which the entry points
 * train, score, fold in, explain, find similar items and forget a user.
 * Entry points look the method up once (MethodLookup, or the model's
 * info->method) and call through the slots; a slot a method lacks is NULL
 * and yields one "not supported" error (MethodNotSupported).  No entry
 * point switches on the method.
 *
 * The descriptors live in method_*.c; the table of all of them, option
 * parsing and the stored params JSON are in method.c.
 *
 * IDENTIFICATION
 *	  src/method.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef METHOD_H
#define METHOD_H

#include "als.h"
#include "cache.h"
#include "catalog.h"
#include "knn.h"
#include "ratings.h"
#include "recsys.h"
#include "utils/jsonb.h"

/* Kinds of option values */
typedef enum MethodOptionKind
{
	METHOD_OPTION_INT,			/* int, in RecsysParams */
	METHOD_OPTION_REAL,			/* double */
	METHOD_OPTION_CHOICE,		/* int: the value of the chosen name */
	METHOD_OPTION_BOOL,			/* bool */
	METHOD_OPTION_TEXT			/* char *, NULL when not given (checked by
								 * the method's check slot) */
} MethodOptionKind;

/* One name of a choice option and the value it stands for */
typedef struct MethodChoice
{
	const char *name;
	int			value;
} MethodChoice;

/* One option a method accepts (a table ends with name NULL) */
/*
 * When an option is recorded in recsys.models.params: options that came
 * later stay out unless used, so earlier models' params read as before
 * (serving fills in the default of an option that is not there).
 */
typedef enum MethodOptionShow
{
	OPTION_SHOW_ALWAYS = 0,
	OPTION_SHOW_WITH_FEATURES,	/* when the training reads features */
	OPTION_SHOW_IF_SET,			/* when not the default */
	OPTION_SHOW_WITH_SUBSPACE	/* when the solver is subspace (ials) */
} MethodOptionShow;

typedef struct MethodOption
{
	const char *name;
	MethodOptionKind kind;
	Size		offset;			/* offsetof the value in RecsysParams */
	double		def;			/* default: number, choice value, or 0/1 */
	double		min;			/* numbers: smallest value allowed */
	double		max;			/* numbers: largest value allowed */
	bool		min_open;		/* numbers: min itself is not allowed */
	const MethodChoice *choices;	/* choices: the names, ending with NULL */
	const char *help;			/* what it means, for hints and docs */
	MethodOptionShow show;		/* when recsys.models.params records it */
} MethodOption;

/* The features of one side a method trains with */
typedef struct MethodFeatures
{
	const RecsysFeatures *vocabulary;	/* names (and what was read) */
	RecsysSparse rows;			/* model rows x features: weights */
} MethodFeatures;

/* What a method trains on */
typedef struct MethodInput
{
	const RecsysParams *p;
	const RatingsSource *src;
	RecsysRatings *r;			/* interactions (the method may change values) */
	MethodFeatures *items;		/* item features, or NULL */
	MethodFeatures *users;		/* user features, or NULL */
} MethodInput;

/* What a method's training produces, for the catalog to store */
typedef struct MethodTrained
{
	AlsModel	model;			/* factors and biases (k = 0: none) */
	KnnGraph   *graph;			/* item neighbour lists, or NULL */
	RecsysIteration *log;		/* one entry per iteration */
	int			iterations;		/* 0 for methods without iterations */
	float	   *seen_values;	/* raw values in by_user order, to store */
	/* Features stored with the model (content, hybrid); NULL: none */
	float	   *item_feature_idf;	/* per item feature */
	float	   *item_feature_factors;	/* item features x k */
	float	   *user_feature_factors;	/* user features x k */
} MethodTrained;

/* A user's history mapped onto a cached model's items */
typedef struct ServeHistory
{
	int			n;				/* known items */
	int32	   *rows;			/* their rows in the cache */
	float	   *values;			/* the values as given */
	int64	   *ids;			/* their ids */
	const float *prior;			/* hybrid: the user's prior from their
								 * features (refresh_user), or NULL */
} ServeHistory;

/* One item's row computed by refresh_item */
typedef struct MethodItemRow
{
	float	   *factors;		/* k */
	float		bias;
	int64		popularity;		/* its users */
	int32	   *features;		/* stored features: vocabulary rows */
	float	   *weights;		/* and their weights */
	int			nfeatures;
} MethodItemRow;

/* State a method's forget slot works on (forget.c) */
typedef struct ForgetContext
{
	const RecsysModelInfo *info;
	CacheEntry *e;
	const RecsysUserRow *user;	/* the forgotten user's stored row */
	int64		user_id;
	int			resolved;		/* out: items re-solved or rebuilt */
} ForgetContext;

typedef struct RecsysMethod
{
	const char *name;
	int32		code;			/* stable: part of shared cache keys */
	const char *summary;		/* one line, for hints */
	const MethodOption *options;
	bool		factors;		/* stores factor vectors */
	bool		neighbors;		/* stores item neighbour lists */
	bool		explicit_values;	/* values are ratings: required, averaged
									 * over duplicates, any sign; else they are
									 * feedback: >= 0, summed */
	bool		personal;		/* scores depend on the user (else unknown
								 * users get the method's own scores, not
								 * the popularity fallback) */
	bool		features;		/* stores features (a cache entry loads them) */

	/* Checks across options and the source, after parsing (may be NULL) */
	void		(*check) (RecsysParams *p, const RatingsSource *src);

	/* Training memory beyond the interactions themselves, in bytes */
	Size		(*memory) (const RecsysParams *p, const RecsysRatings *r);

	/* Train (on interactions it may modify, and features); fills out */
	void		(*train) (const MethodInput *in, MethodTrained *out);

	/*
	 * Fill a user row's factors and bias from a history (recommend_for_items,
	 * refresh_user); NULL when the history itself is what scores.
	 */
	void		(*fold_in) (CacheEntry *e, const ServeHistory *h,
							const char *model, RecsysUserRow *row);

	/* Score every item for a user row and its history, into scores */
	void		(*score) (CacheEntry *e, const RecsysUserRow *user,
						  const ServeHistory *h, float *scores);

	/* The score of one item (row) for a user row and its history */
	double		(*predict) (CacheEntry *e, const RecsysUserRow *user,
							const ServeHistory *h, int32 item);

	/*
	 * Contributions of the history's items to item's score (contrib[j] for
	 * h->rows[j]); returns the whole score, of which the contributions are
	 * a part (the rest is reported as the remainder).  NULL: unsupported.
	 */
	double		(*explain) (CacheEntry *e, const RecsysUserRow *user,
							const ServeHistory *h, int32 item,
							const char *model, float *contrib);

	/* Similarity of item to every item, into scores; NULL: unsupported */
	void		(*similar_items) (CacheEntry *e, int32 item, float *scores);

	/*
	 * Score every item for a visitor known only by features (names and
	 * weights; names the model does not know are ignored); false when no
	 * feature is known.  NULL: unsupported.
	 */
	bool		(*score_features) (CacheEntry *e, char **names,
								   const float *weights, int n,
								   const char *model, float *scores);

	/*
	 * Contributions of features to item's score for a user (contrib per
	 * feature of the item's side, *nfeatures of them); returns the
	 * score.  NULL: unsupported.
	 */
	double		(*explain_features) (CacheEntry *e, const RecsysUserRow *user,
									 const ServeHistory *h, int32 item,
									 float *contrib);

	/*
	 * Compute one item's row from its current features and interactions
	 * (refresh_item); fills the item's factors, bias and stored feature
	 * weights.  NULL: unsupported.
	 */
	void		(*refresh_item) (CacheEntry *e, const RecsysModelInfo *info,
								 int64 item_id, const RatingsUser *users,
								 const RecsysSparse *features,
								 MethodItemRow *out);

	/* Remove a user's influence from the stored model (forget_user) */
	void		(*forget) (ForgetContext *fc);
} RecsysMethod;

/* The methods, in method_*.c */
extern const RecsysMethod MethodAls;
extern const RecsysMethod MethodIals;
extern const RecsysMethod MethodPopular;
extern const RecsysMethod MethodItemKnn;
extern const RecsysMethod MethodEase;
extern const RecsysMethod MethodContent;

/* method.c */
extern const RecsysMethod *MethodLookup(const char *name);
extern const RecsysMethod *MethodByName(const char *name);
extern void MethodNotSupported(const RecsysMethod *m, const char *model,
							   const char *what) pg_attribute_noreturn();
extern void MethodDefaults(const RecsysMethod *m, RecsysParams *p);
extern void MethodSetOption(const RecsysMethod *m, RecsysParams *p,
							const char *key, JsonbValue *v, bool *given);
extern void MethodParseOptions(const RecsysMethod *m, RecsysParams *p,
							   Jsonb *options, bool lenient, bool *given);
extern bool MethodHasOption(const RecsysMethod *m, const char *key);
extern char *MethodParamsJson(const RecsysParams *p);
extern const char *MethodChoiceName(const RecsysMethod *m, const char *option,
									int value);

/* Shared slots of factor models (factor_model.c) */
extern void FactorFoldIn(CacheEntry *e, const ServeHistory *h,
						 const char *model, RecsysUserRow *row);
extern void FactorScore(CacheEntry *e, const RecsysUserRow *user,
						const ServeHistory *h, float *scores);
extern double FactorPredict(CacheEntry *e, const RecsysUserRow *user,
							const ServeHistory *h, int32 item);
extern double FactorExplain(CacheEntry *e, const RecsysUserRow *user,
							const ServeHistory *h, int32 item,
							const char *model, float *contrib);
extern void FactorSimilarItems(CacheEntry *e, int32 item, float *scores);
extern void FactorForget(ForgetContext *fc);
extern bool FactorScoreFeatures(CacheEntry *e, char **names,
								const float *weights, int n,
								const char *model, float *scores);
extern void FactorRefreshItem(CacheEntry *e, const RecsysModelInfo *info,
							  int64 item_id, const RatingsUser *users,
							  const RecsysSparse *features,
							  MethodItemRow *out);
extern Size FactorMemory(const RecsysParams *p, const RecsysRatings *r);
extern void FactorTrain(const MethodInput *in, MethodTrained *out);

/* Shared slots of item-neighbour models (neighbor_model.c) */
extern void NeighborScore(CacheEntry *e, const RecsysUserRow *user,
						  const ServeHistory *h, float *scores);
extern double NeighborPredict(CacheEntry *e, const RecsysUserRow *user,
							  const ServeHistory *h, int32 item);
extern double NeighborExplain(CacheEntry *e, const RecsysUserRow *user,
							  const ServeHistory *h, int32 item,
							  const char *model, float *contrib);
extern void NeighborSimilarItems(CacheEntry *e, int32 item, float *scores);

/* cache.c: a feature's row in a vocabulary, or -1 */
extern int32 CacheFeatureRow(const ModelFeatures *f, const char *name);

/* forget.c: forgetting by training again on the stored rows */
extern void ForgetByRetraining(ForgetContext *fc);

/* Option table entries shared by several methods */
#define METHOD_OPTION_END {NULL, 0, 0, 0, 0, 0, false, NULL, NULL, OPTION_SHOW_ALWAYS}
#define METHOD_OPTION_FACTORS \
	{"factors", METHOD_OPTION_INT, offsetof(RecsysParams, factors), 64, 1, \
	RECSYS_MAX_FACTORS, false, NULL, "the number of latent factors per user and item", OPTION_SHOW_ALWAYS}
#define METHOD_OPTION_ITERATIONS \
	{"iterations", METHOD_OPTION_INT, offsetof(RecsysParams, iterations), 15, 1, \
	RECSYS_MAX_ITERATIONS, false, NULL, \
	"the number of ALS sweeps (each solves every item, then every user)", OPTION_SHOW_ALWAYS}
#define METHOD_OPTION_SEED \
	{"seed", METHOD_OPTION_INT, offsetof(RecsysParams, seed), 42, PG_INT32_MIN, \
	PG_INT32_MAX, false, NULL, "the seed of the initial user factors", OPTION_SHOW_ALWAYS}

/* The options of a hybrid factor model (factor_model.c) */
#define METHOD_OPTIONS_HYBRID \
	{"item_features", METHOD_OPTION_TEXT, offsetof(RecsysParams, item_features), 0, 0, \
	0, false, NULL, "hybrid: a table or view of (item id, feature, optional weight); items known only here get factors", OPTION_SHOW_ALWAYS}, \
	{"item_text", METHOD_OPTION_TEXT, offsetof(RecsysParams, item_text), 0, 0, \
	0, false, NULL, "hybrid: a table or view of (item id, document text or tsvector), its words as item features", OPTION_SHOW_ALWAYS}, \
	{"text_config", METHOD_OPTION_TEXT, offsetof(RecsysParams, text_config), 0, 0, \
	0, false, NULL, "the text search configuration of item_text (default simple)", OPTION_SHOW_ALWAYS}, \
	{"user_features", METHOD_OPTION_TEXT, offsetof(RecsysParams, user_features), 0, 0, \
	0, false, NULL, "hybrid: a table or view of (user id, feature, optional weight): attributes such as age band or region", OPTION_SHOW_ALWAYS}, \
	{"feature_regularization", METHOD_OPTION_REAL, offsetof(RecsysParams, feature_regularization), 1.0, 0, \
	DBL_MAX, true, NULL, "hybrid: ridge penalty of the regression of the factors on the features", OPTION_SHOW_WITH_FEATURES}

/* The preprocessing options of every method (ratings.c, train.c) */
#define METHOD_OPTIONS_PREPROCESS \
	{"min_user_interactions", METHOD_OPTION_INT, offsetof(RecsysParams, min_user_interactions), 1, 1, \
	PG_INT32_MAX, false, NULL, "k-core: users with fewer interactions are left out, repeatedly with min_item_interactions", OPTION_SHOW_IF_SET}, \
	{"min_item_interactions", METHOD_OPTION_INT, offsetof(RecsysParams, min_item_interactions), 1, 1, \
	PG_INT32_MAX, false, NULL, "k-core: items with fewer interactions are left out, repeatedly with min_user_interactions", OPTION_SHOW_IF_SET}, \
	{"max_value", METHOD_OPTION_REAL, offsetof(RecsysParams, max_value), 0, 0, \
	DBL_MAX, false, NULL, "values above it are capped to it (winsorizing heavy counts); 0: no cap", OPTION_SHOW_IF_SET}, \
	{"time_col", METHOD_OPTION_TEXT, offsetof(RecsysParams, time_col), 0, 0, \
	0, false, NULL, "recency decay: the source's time column (timestamp, timestamptz, date or a number)", OPTION_SHOW_IF_SET}, \
	{"half_life", METHOD_OPTION_TEXT, offsetof(RecsysParams, half_life), 0, 0, \
	0, false, NULL, "recency decay: an interaction's value halves every half_life (an interval such as '30 days', or a number in the time column's unit)", OPTION_SHOW_IF_SET}, \
	{"as_of", METHOD_OPTION_TEXT, offsetof(RecsysParams, as_of), 0, 0, \
	0, false, NULL, "recency decay: the time ages are counted from (default: the newest row)", OPTION_SHOW_IF_SET}

#endif							/* METHOD_H */
