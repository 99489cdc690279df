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
	METHOD_OPTION_BOOL			/* bool */
} MethodOptionKind;

/* One name of a choice option and the value it stands for */
typedef struct MethodChoice
{
	const char *name;
	int			value;
} MethodChoice;

/* One option a method accepts (a table ends with name NULL) */
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
} MethodOption;

/* What a method's training produces, for the catalog to store */
typedef struct MethodTrained
{
	AlsModel	model;			/* factors and biases (k = 0: none) */
	KnnGraph   *graph;			/* item neighbour lists, or NULL */
	RecsysIteration *log;		/* one entry per iteration */
	int			iterations;		/* 0 for methods without iterations */
	float	   *seen_values;	/* raw values in by_user order, to store */
} MethodTrained;

/* A user's history mapped onto a cached model's items */
typedef struct ServeHistory
{
	int			n;				/* known items */
	int32	   *rows;			/* their rows in the cache */
	float	   *values;			/* the values as given */
	int64	   *ids;			/* their ids */
} ServeHistory;

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

	/* Checks across options and the source, after parsing (may be NULL) */
	void		(*check) (RecsysParams *p, const RatingsSource *src);

	/* Training memory beyond the interactions themselves, in bytes */
	Size		(*memory) (const RecsysParams *p, const RecsysRatings *r);

	/* Train on the interactions (which it may modify); fills out */
	void		(*train) (const RecsysParams *p, const RatingsSource *src,
						  RecsysRatings *r, MethodTrained *out);

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

	/* Remove a user's influence from the stored model (forget_user) */
	void		(*forget) (ForgetContext *fc);
} RecsysMethod;

/* The methods, in method_*.c */
extern const RecsysMethod MethodAls;
extern const RecsysMethod MethodIals;
extern const RecsysMethod MethodPopular;
extern const RecsysMethod MethodItemKnn;
extern const RecsysMethod MethodEase;

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
extern Size FactorMemory(const RecsysParams *p, const RecsysRatings *r);
extern void FactorTrain(const RecsysParams *p, const RatingsSource *src,
						RecsysRatings *r, MethodTrained *out);

/* Shared slots of item-neighbour models (neighbor_model.c) */
extern void NeighborScore(CacheEntry *e, const RecsysUserRow *user,
						  const ServeHistory *h, float *scores);
extern double NeighborPredict(CacheEntry *e, const RecsysUserRow *user,
							  const ServeHistory *h, int32 item);
extern double NeighborExplain(CacheEntry *e, const RecsysUserRow *user,
							  const ServeHistory *h, int32 item,
							  const char *model, float *contrib);
extern void NeighborSimilarItems(CacheEntry *e, int32 item, float *scores);

/* forget.c: forgetting by training again on the stored rows */
extern void ForgetByRetraining(ForgetContext *fc);

/* Option table entries shared by several methods */
#define METHOD_OPTION_END {NULL, 0, 0, 0, 0, 0, false, NULL, NULL}
#define METHOD_OPTION_FACTORS \
	{"factors", METHOD_OPTION_INT, offsetof(RecsysParams, factors), 64, 1, \
	RECSYS_MAX_FACTORS, false, NULL, "the number of latent factors per user and item"}
#define METHOD_OPTION_ITERATIONS \
	{"iterations", METHOD_OPTION_INT, offsetof(RecsysParams, iterations), 15, 1, \
	RECSYS_MAX_ITERATIONS, false, NULL, \
	"the number of ALS sweeps (each solves every item, then every user)"}
#define METHOD_OPTION_SEED \
	{"seed", METHOD_OPTION_INT, offsetof(RecsysParams, seed), 42, PG_INT32_MIN, \
	PG_INT32_MAX, false, NULL, "the seed of the initial user factors"}

#endif							/* METHOD_H */
