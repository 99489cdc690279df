/*-------------------------------------------------------------------------
 *
 * train.c
 *	  CALL train(...) and drop_model(): argument checks and the training loop.
 *
 * Training happens in four steps, all inside the caller's transaction:
 *	1. take a lock on the model name, so that concurrent trainings of the
 *	   same model run one after the other;
 *	2. read the source once into sparse matrices (ratings.c);
 *	3. train in memory through the method's descriptor (method_*.c), e.g.
 *	   the ALS sweeps of als and ials, reporting each iteration;
 *	4. write the new version of the model (catalog.c).
 * Nothing is written before step 4, and what step 4 writes becomes visible
 * only at commit, so a failed, cancelled or timed-out training leaves the
 * previous version serving.
 *
 * IDENTIFICATION
 *	  src/train.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "cache.h"
#include "catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "method.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "ratings.h"
#include "shard.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/varlena.h"

/* Error if argument argno is NULL */
static void
RequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/* Check a model name: non-empty and not too long */
static char *
ModelNameArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name;

	RequireArg(fcinfo, argno, "model");
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (name[0] == '\0' || strlen(name) > RECSYS_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model name must have 1 to %d bytes, got %zu",
						RECSYS_MAX_NAME_LEN, strlen(name))));
	return name;
}

/* Most options one method has */
#define TRAIN_MAX_OPTIONS 32

/* train()'s named arguments that predate options, in argument order */
static const struct
{
	const char *name;
	Oid			type;
}			named_args[] = {
	{"factors", INT4OID},
	{"iterations", INT4OID},
	{"regularization", FLOAT8OID},
	{"seed", INT4OID},
	{"alpha", FLOAT8OID},
	{"solver", TEXTOID},
	{"cg_steps", INT4OID},
	{"scaling", TEXTOID},
	{"epsilon", FLOAT8OID},
};

/* The first of them is argument 6 (after model .. method) */
#define TRAIN_FIRST_NAMED_ARG 6

/*
 * Read the method and its options: the named arguments that are not NULL,
 * then the options object.  With `legacy` (the 1.0/1.1 SQL signature,
 * whose named arguments all had non-NULL defaults), arguments the method
 * does not take are ignored, as they were then.
 */
static void
ParamsFromArgs(FunctionCallInfo fcinfo, bool legacy, RecsysParams *p)
{
	const RecsysMethod *m;
	bool		given[TRAIN_MAX_OPTIONS];
	int			options_arg = TRAIN_FIRST_NAMED_ARG + (int) lengthof(named_args);

	RequireArg(fcinfo, 5, "method");
	m = MethodLookup(text_to_cstring(PG_GETARG_TEXT_PP(5)));
	MethodDefaults(m, p);
	memset(given, 0, sizeof(given));

	for (int i = 0; i < (int) lengthof(named_args); i++)
	{
		int			argno = TRAIN_FIRST_NAMED_ARG + i;
		Datum		d;
		JsonbValue	v;

		if (PG_ARGISNULL(argno) || (legacy && !MethodHasOption(m, named_args[i].name)))
			continue;
		d = PG_GETARG_DATUM(argno);
		switch (named_args[i].type)
		{
			case INT4OID:
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int4_numeric, d));
				break;
			case FLOAT8OID:
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric, d));
				break;
			default:
				v.type = jbvString;
				v.val.string.val = text_to_cstring(DatumGetTextPP(d));
				v.val.string.len = strlen(v.val.string.val);
				break;
		}
		MethodSetOption(m, p, named_args[i].name, &v, given);
	}
	if (!legacy)
	{
		RequireArg(fcinfo, options_arg, "options");
		MethodParseOptions(m, p, PG_GETARG_JSONB_P(options_arg), false, given);
	}
}

/*
 * Feedback methods take values >= 0 (counts, durations, weights); explicit
 * ratings may have any sign.
 */
static void
CheckFeedbackValues(const RecsysRatings *r, const char *value_col)
{
	for (int u = 0; u < r->nusers; u++)
		for (int64 e = r->by_user.indptr[u]; e < r->by_user.indptr[u + 1]; e++)
			if (r->by_user.values[e] < 0.0f)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("value column \"%s\" contains negative value %g for user %lld, item %lld",
								value_col, r->by_user.values[e], (long long) r->user_ids[u],
								(long long) r->item_ids[r->by_user.indices[e]]),
						 errhint("Implicit feedback values (counts, durations, weights) must be >= 0.")));
}

/*
 * Replace a relation option (item_features, ...) by the relation's
 * qualified name, resolved with the caller's search_path; errors if there
 * is no such relation.
 */
static void
ResolveRelation(char **name, const char *option)
{
	List	   *names;
	Oid			relid;

	if (*name == NULL)
		return;
	names = stringToQualifiedNameList(*name);
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" of option %s does not exist", *name, option),
				 errhint("Give the name of a table or view, schema-qualified if it is not on the search_path.")));
	*name = RatingsSourceName(relid);
}

/* Whether a source name is really a query, by its first word */
static bool
LooksLikeQuery(const char *s)
{
	static const char *const words[] = {"select", "with", "values", "table", "("};

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	for (int i = 0; i < (int) lengthof(words); i++)
	{
		size_t		len = strlen(words[i]);

		if (pg_strncasecmp(s, words[i], len) == 0 &&
			(words[i][0] == '(' || s[len] == ' ' || s[len] == '\t' ||
			 s[len] == '\n' || s[len] == '\r' || s[len] == '('))
			return true;
	}
	return false;
}

/*
 * The source relation of train: a regclass, or (the overload a quoted
 * name resolves to) a name looked up with the caller's search_path, with
 * errors that say what to pass instead of a query or a missing name.
 */
static Oid
SourceArg(FunctionCallInfo fcinfo, int argno)
{
	char	   *name;
	char	   *copy;
	List	   *parts;
	Oid			relid;

	if (get_fn_expr_argtype(fcinfo->flinfo, argno) != TEXTOID)
		return PG_GETARG_OID(argno);
	name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	copy = pstrdup(name);
	if (LooksLikeQuery(name) || !SplitIdentifierString(copy, '.', &parts) ||
		list_length(parts) == 0 || list_length(parts) > 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("source must be the name of a table or view, got \"%s\"", name),
				 errhint("To train from a query, create a view: CREATE VIEW my_source AS SELECT ...; then CALL train(..., 'my_source', ...).")));
	relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(name)),
							 AccessShareLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" does not exist", name),
				 errhint("Check the name, schema-qualify it, or see SHOW search_path.")));
	return relid;
}

/*
 * Load the features of one side, as the method's options name them (NULL
 * when none): a features relation and, for items, a text relation.
 */
static RecsysFeatures *
LoadFeatures(const char *features, const char *text, const char *config,
			 const char *id_col, struct TextDict *dict, const char *side)
{
	FeatureSource fs[2];
	int			n = 0;
	RecsysFeatures *f;

	memset(fs, 0, sizeof(fs));
	if (features != NULL)
	{
		fs[n].relid = RatingsSourceOid(features);
		fs[n].id_col = id_col;
		fs[n].text = false;
		fs[n].config = NULL;
		fs[n].dict = dict;
		n++;
	}
	if (text != NULL)
	{
		fs[n].relid = RatingsSourceOid(text);
		fs[n].id_col = id_col;
		fs[n].text = true;
		fs[n].config = config;
		fs[n].dict = dict;
		n++;
	}
	if (n == 0)
		return NULL;
	f = RatingsLoadFeatures(fs, n);
	if (f->null_features > 0)
		ereport(NOTICE,
				(errmsg_plural("skipped %lld %s feature row with a null feature or weight",
							   "skipped %lld %s feature rows with a null feature or weight",
							   f->null_features, (long long) f->null_features, side)));
	if (f->duplicates > 0)
		ereport(NOTICE,
				(errmsg_plural("merged %lld duplicate (%s, feature) row into the sum of its weights",
							   "merged %lld duplicate (%s, feature) rows into the sum of their weights",
							   f->duplicates, (long long) f->duplicates, side)));
	return f;
}

/* The features of one side, over the model's rows (ids ascending) */
static MethodFeatures *
AlignFeatures(const RecsysFeatures *f, const int64 *ids, int n)
{
	MethodFeatures *mf;

	if (f == NULL)
		return NULL;
	mf = palloc0(sizeof(MethodFeatures));
	mf->vocabulary = f;
	RatingsAlignFeatures(f, ids, n, &mf->rows);
	return mf;
}

/* What the catalog stores of one side's features */
static ModelFeatures *
StoredFeatures(const MethodFeatures *mf, const float *idf, const float *factors,
			   int k)
{
	ModelFeatures *s;

	if (mf == NULL)
		return NULL;
	s = palloc0(sizeof(ModelFeatures));
	s->nfeatures = mf->vocabulary->nfeatures;
	s->names = mf->vocabulary->names;
	s->idf = (float *) idf;
	s->factors = (float *) factors;
	s->k = factors ? k : 0;
	s->rows = mf->rows;
	return s;
}

/*
 * The preprocessing after the source is read (capping and decay happened
 * while reading it): k-core filtering, a NOTICE for each step, and what
 * was done as jsonb text for recsys.models.preprocessing (NULL: nothing).
 * The decay's reference time goes into the params, so that fold-in and
 * refresh_user decay a user's rows as training did.
 */
static RecsysRatings *
Preprocess(RecsysParams *p, const RatingsSource *src, RecsysRatings *r,
		   const RecsysFeatures *user_features,
		   const RecsysFeatures *item_features, char **json)
{
	StringInfoData s;
	RatingsKCoreStats kcore;
	int64		before = r->nnz;

	initStringInfo(&s);
	if (src->prep.max_value > 0.0)
	{
		ereport(NOTICE,
				(errmsg_plural("capped %lld value at max_value %g",
							   "capped %lld values at max_value %g",
							   r->capped, (long long) r->capped, src->prep.max_value)));
		appendStringInfo(&s, ", \"capped_values\": %lld", (long long) r->capped);
	}
	if (src->prep.time_col != NULL)
	{
		if (r->null_times > 0)
			ereport(NOTICE,
					(errmsg_plural("skipped %lld row with a null or infinite time",
								   "skipped %lld rows with a null or infinite time",
								   r->null_times, (long long) r->null_times)));
		ereport(NOTICE,
				(errmsg("decayed values with half-life %s of time column \"%s\": the oldest by a factor of %.6g",
						p->half_life, src->prep.time_col, r->oldest_weight)));
		p->as_of = pstrdup(float8out_internal(r->reference));
		appendStringInfo(&s, ", \"null_times\": %lld, \"oldest_weight\": %s",
						 (long long) r->null_times, float8out_internal(r->oldest_weight));
	}
	r = RatingsKCore(r, p->min_user_interactions, p->min_item_interactions,
					 user_features, item_features, &kcore);
	if (kcore.rounds > 0)
	{
		ereport(NOTICE,
				(errmsg("k-core filtering left out %d users, %d items and %lld of %lld interactions in %d passes",
						kcore.users, kcore.items, (long long) kcore.interactions,
						(long long) before, kcore.rounds)));
		appendStringInfo(&s, ", \"kcore_users\": %d, \"kcore_items\": %d, "
						 "\"kcore_interactions\": %lld, \"kcore_passes\": %d",
						 kcore.users, kcore.items, (long long) kcore.interactions,
						 kcore.rounds);
	}
	if (s.len > 0)
		*json = psprintf("{%s}", s.data + 2);
	return r;
}

/*
 * Error unless a distributed training can do what the call asks: als and
 * ials, solvers cg, cholesky and subspace, integer ids, no features and no
 * preprocessing (whose counts and reference times are global); checks
 * that the caller can read the partitioned table's columns.
 */
static void
CheckDistributable(const RecsysParams *p, RatingsSource *source)
{
	const char *missing = NULL;

	if (!p->method->factors)
		missing = psprintf("method %s", p->method->name);
	else if (p->solver != RECSYS_SOLVER_CG && p->solver != RECSYS_SOLVER_CHOLESKY &&
			 p->solver != RECSYS_SOLVER_SUBSPACE)
		missing = psprintf("solver \"%s\"",
						   MethodChoiceName(p->method, "solver", p->solver));
	else if (p->item_features || p->item_text || p->user_features)
		missing = "features";
	else if (p->time_col || p->max_value > 0.0 || p->min_user_interactions > 1 ||
			 p->min_item_interactions > 1)
		missing = "preprocessing options";
	else if (RatingsIsTextIdType(RatingsIdType(source->relid, source->user_col)) ||
			 RatingsIsTextIdType(RatingsIdType(source->relid, source->item_col)))
		missing = "text ids";
	if (missing)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distributed training does not support %s yet", missing),
				 errdetail("Source %s is partitioned over postgres_fdw servers, which trains als and ials (solvers cg, cholesky and subspace) on integer ids.",
						   RatingsSourceName(source->relid)),
				 errhint("SET recsys.distributed_training = off to read every partition here and train as usual.")));
	RatingsValidate(source);
}

/*
 * Train (or retrain) a model, in four steps, all inside the caller's
 * transaction (see the file header).  `legacy`: called through the 1.0/1.1
 * SQL signature.
 */
static void
Train(FunctionCallInfo fcinfo, bool legacy)
{
	char	   *name = ModelNameArg(fcinfo, 0);
	RecsysParams params;
	const RecsysMethod *m;
	RatingsSource source;
	RecsysRatings *ratings;
	RecsysFeatures *item_features;
	RecsysFeatures *user_features;
	MethodInput in;
	MethodTrained out;
	RecsysTrained trained;
	MemoryContext train_cxt;
	MemoryContext old;
	instr_time	start;
	double		read_seconds;
	double		train_seconds;
	char	   *preprocessing = NULL;

	INSTR_TIME_SET_CURRENT(start);
	RequireArg(fcinfo, 1, "source");
	RequireArg(fcinfo, 2, "user_col");
	RequireArg(fcinfo, 3, "item_col");
	ParamsFromArgs(fcinfo, legacy, &params);
	m = params.method;

	memset(&source, 0, sizeof(source));
	source.relid = SourceArg(fcinfo, 1);
	source.user_col = NameStr(*PG_GETARG_NAME(2));
	source.item_col = NameStr(*PG_GETARG_NAME(3));
	source.value_col = PG_ARGISNULL(4) ? NULL : NameStr(*PG_GETARG_NAME(4));
	source.sum_duplicates = !m->explicit_values;
	if (source.value_col == NULL && m->explicit_values)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"%s\" needs a value column", m->name),
				 errhint("Pass value_col => 'rating' (the column with the explicit ratings), or use method => 'ials' for implicit feedback.")));
	if (params.time_col != NULL && m->explicit_values)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("method \"%s\" cannot decay values by age", m->name),
				 errdetail("Its values are ratings to predict; a decayed rating would be a different rating."),
				 errhint("Train from a view of the recent ratings instead.")));
	RatingsPrepare(&source, &params);
	ResolveRelation(&params.item_features, "item_features");
	ResolveRelation(&params.item_text, "item_text");
	ResolveRelation(&params.user_features, "user_features");
	if (m->check)
		m->check(&params, &source);

	CatalogLockModelName(name, true);
	CatalogCheckTrainable(name, &source, &params);

	/* A source partitioned over postgres_fdw shards trains there */
	if (DistributedSource(source.relid, source.user_col))
	{
		CheckDistributable(&params, &source);
		DistributedTrain(name, &params, &source);
		return;
	}

	/* All training memory goes away at once, also on error */
	train_cxt = AllocSetContextCreate(CurrentMemoryContext, "recsys training",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(train_cxt);

	/* Text ids get dictionaries, which the feature relations share */
	RatingsIdDicts(&source);
	item_features = LoadFeatures(params.item_features, params.item_text,
								 params.text_config, source.item_col,
								 source.item_dict, "item");
	user_features = LoadFeatures(params.user_features, NULL, NULL,
								 source.user_col, source.user_dict, "user");
	ratings = RatingsLoad(&source, user_features, item_features);
	if (ratings->null_values > 0)
		ereport(NOTICE,
				(errmsg_plural("skipped %lld row with a null value",
							   "skipped %lld rows with a null value",
							   ratings->null_values, (long long) ratings->null_values)));
	if (ratings->duplicates > 0)
		ereport(NOTICE,
				(errmsg_plural("merged %lld duplicate (user, item) row into the %s",
							   "merged %lld duplicate (user, item) rows into the %s",
							   ratings->duplicates, (long long) ratings->duplicates,
							   source.sum_duplicates ? "sum of their values" : "mean of their values")));
	ratings = Preprocess(&params, &source, ratings, user_features, item_features,
						 &preprocessing);
	if (!m->explicit_values && source.value_col != NULL)
		CheckFeedbackValues(ratings, source.value_col);
	read_seconds = RecsysSecondsSince(start);

	RecsysCheckMemory(add_size(RatingsMemory(ratings->nnz, ratings->nusers,
											 ratings->nitems),
							   m->memory(&params, ratings)),
					  "The interactions and what the method builds from them need this much.");

	memset(&in, 0, sizeof(in));
	in.p = &params;
	in.src = &source;
	in.r = ratings;
	in.items = AlignFeatures(item_features, ratings->item_ids, ratings->nitems);
	in.users = AlignFeatures(user_features, ratings->user_ids, ratings->nusers);
	memset(&out, 0, sizeof(out));
	m->train(&in, &out);
	RatingsReleaseForStore(ratings, out.seen_values == ratings->by_user.values);

	memset(&trained, 0, sizeof(trained));
	trained.name = name;
	trained.params = &params;
	trained.source = &source;
	trained.ratings = ratings;
	trained.model = &out.model;
	trained.graph = out.graph;
	trained.item_features = StoredFeatures(in.items, out.item_feature_idf,
										   out.item_feature_factors, params.factors);
	trained.user_features = StoredFeatures(in.users, NULL, out.user_feature_factors,
										   params.factors);
	trained.log = out.log;
	trained.seen_values = out.seen_values;
	trained.iterations = out.iterations;
	trained.seconds = RecsysSecondsSince(start);
	train_seconds = trained.seconds - read_seconds;
	trained.preprocessing = preprocessing;
	trained.user_id_type = RatingsIdType(source.relid, source.user_col);
	trained.item_id_type = RatingsIdType(source.relid, source.item_col);
	CatalogStoreModel(&trained);
	/* Where a CALL's time goes (SET client_min_messages = debug1) */
	ereport(DEBUG1,
			(errmsg("model \"%s\": read %.3f s, training %.3f s, store %.3f s",
					name, read_seconds, train_seconds,
					RecsysSecondsSince(start) - trained.seconds)));

	MemoryContextSwitchTo(old);
	MemoryContextDelete(train_cxt);
}

PG_FUNCTION_INFO_V1(recsys_train_1_2);

/*
 * CALL train(model, source, user_col, item_col, value_col, method, factors,
 * iterations, regularization, seed, alpha, solver, cg_steps, scaling,
 * epsilon, options): the named arguments are NULL unless given, and
 * options holds the rest of the method's options.
 */
Datum
recsys_train_1_2(PG_FUNCTION_ARGS)
{
	Train(fcinfo, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(recsys_train);

/*
 * CALL train(...) as declared by the 1.0 and 1.1 SQL (no options): kept so
 * that a newly installed library serves a database until ALTER EXTENSION
 * recsys UPDATE.
 */
Datum
recsys_train(PG_FUNCTION_ARGS)
{
	Train(fcinfo, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(recsys_drop_model);

/* drop_model(model, if_exists): delete a model; returns whether it existed */
Datum
recsys_drop_model(PG_FUNCTION_ARGS)
{
	char	   *name = ModelNameArg(fcinfo, 0);
	bool		if_exists = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	bool		found;
	int64		model_id;

	CatalogLockModelName(name, true);
	found = CatalogDropModel(name, &model_id);
	if (found)
		CacheDropModel(model_id);
	if (!found && !if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name)));
	PG_RETURN_BOOL(found);
}
