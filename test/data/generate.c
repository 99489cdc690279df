/*-------------------------------------------------------------------------
 *
 * generate.c
 *	  Seeded generator of synthetic recommender interaction data.
 *
 * Writes CSV rows "user_id,item_id,rating" (explicit) or
 * "user_id,item_id,count" (implicit), optionally with a fourth column "ts",
 * on stdout.  The output is a deterministic function of the options: the
 * same options give byte-identical output.  Only our own PRNG drives the
 * sampling decisions; libm (exp, log, log1p, pow, sqrt, cos, sin) is the
 * only outside code involved in producing the numbers.
 *
 * Generative model
 * ----------------
 * There are U users (ids 1..U), I items (ids 1..I) and a latent rank r.
 *
 * 1. Every user u gets a factor vector p_u and every item i a vector q_i,
 *	  with i.i.d. N(0, 1/sqrt(r)) entries (variance 1/sqrt(r), i.e. standard
 *	  deviation r^-1/4), so that the dot product p_u.q_i has variance about
 *	  1 whatever r is.  Users and items also get biases b_u, b_i with
 *	  standard deviation 0.3.
 *
 * 2. Item popularity is Zipf-like: the items are put in a random order
 *	  (a seeded permutation, so item 1 is not special) and the item at
 *	  popularity rank k gets weight 1/k^s (s = --zipf).  Candidates are
 *	  drawn from these weights with Walker's alias method, O(1) per draw.
 *
 * 3. User activity is skewed: every user draws x_u from a log-normal with
 *	  sigma 1, and n_u = clamp(c * x_u, min_per_user, floor(I/2)), where the
 *	  scale c is found by bisection so that the n_u add up to --rows; the
 *	  real-valued n_u are then rounded so that the total is exactly --rows.
 *
 * 4. User u then picks n_u distinct items: draw a candidate item i from the
 *	  popularity weights, skip it if u already has it, otherwise accept it
 *	  with probability sigmoid(beta * p_u.q_i).  This is successive sampling
 *	  without replacement with weights w_i * sigmoid(beta * p_u.q_i), so the
 *	  interactions themselves carry the planted preferences.  When
 *	  duplicates get frequent (steep popularity), the user continues with
 *	  draws from a Fenwick tree from which the user's items are removed;
 *	  for very active users, or when acceptance stalls, the remaining picks
 *	  are made with the Efraimidis-Spirakis method (exponential keys,
 *	  smallest keys win).  All three draw from exactly the same
 *	  distribution, so every user always gets exactly n_u rows.  Each
 *	  user's items are then shuffled, so rows are grouped by increasing
 *	  user id but items within a user come in a random order.
 *
 * 5. The value of a row is
 *	  explicit:  mu + b_u + b_i + p_u.q_i + eps, eps ~ N(0, sigma), rounded
 *				 to the nearest integer and clamped to 1..5, or printed
 *				 unrounded with 4 decimals under --continuous;
 *	  implicit:  1 + G, G geometric on {0, 1, ...} with mean
 *				 3 * sigmoid(beta * p_u.q_i).
 *
 * 6. With --timestamps, every user gets an activity window inside
 *	  [1600000000, 1700000000) and the user's rows, in output order, get
 *	  non-decreasing times spread over that window (sorted uniform times),
 *	  so "later rows of a user are later", which temporal splits rely on.
 *
 * Item features and user attributes
 * ---------------------------------
 * With --features N (N >= 1; the default 0 is off), items get features
 * and users get attributes, and both shape the factors of step 1 before
 * steps 2 to 6 use them, so that side information predicts preferences
 * (cold-start items and users become predictable).  Write the features
 * with --item-features FILE and the attributes with --user-attributes
 * FILE (CSV with a header line, whatever --no-header says); the
 * interactions still go to stdout.
 *
 * a. Features are named f1..fN.  Their popularity is Zipf-like like that of
 *	  the items: a seeded permutation gives feature f a rank k_f and the
 *	  weight 1/k_f^z (z = --feature-zipf), so a few features are common and
 *	  most are rare.  Every feature gets a latent vector e_f with the same
 *	  i.i.d. N(0, 1/sqrt(r)) entries as the factors of step 1.
 *
 * b. Item i draws m_i = min(N, 1 + Poisson(M - 1)) features, M =
 *	  --features-per-item (so the mean is M, up to that clamp), distinct,
 *	  by successive sampling without replacement from the feature weights
 *	  (rejection of repeats, or exponential keys when repeats stall).  Each
 *	  (i, f) gets a weight w_if: 1 by default, or with --feature-weights
 *	  real uniform in [0.1, 1] rounded to 4 decimals (the value written).
 *
 * c. With S = --feature-share, item i's factors become
 *		q_i = sqrt(1 - S) * q_i' + sqrt(S) * sum_f w_if e_f / sqrt(sum_f w_if^2)
 *	  where q_i' is the vector of step 1 and both sums run over i's
 *	  features.  The second term has the same entry variance 1/sqrt(r) as
 *	  q_i', so q_i does too and p_u.q_i keeps variance about 1; items with
 *	  shared features get correlated factors.  S = 0 keeps step 1 as is,
 *	  S = 1 makes an item's factors a function of its features only.
 *
 * d. Users get one value from each of G = 4 attribute groups: age
 *	  (25-34, 35-44, 18-24, 45-54, 55-64, 65+), region (north, south, east,
 *	  west, central), device (mobile, desktop, tablet) and plan (free,
 *	  basic, standard, premium), written "age:25-34" and so on.  The j-th
 *	  value of a group (in that order) is drawn with probability
 *	  proportional to 1/j.  Every attribute value a gets a latent vector
 *	  e_a like the features, and with T = --attribute-share
 *		p_u = sqrt(1 - T) * p_u' + sqrt(T) * sum_a e_a / sqrt(G)
 *	  over u's G attribute values (sqrt(G) times their mean), which again
 *	  keeps the entry variance.  T defaults to S when N >= 1 and to 0
 *	  otherwise; --attribute-share and --user-attributes also work
 *	  without --features (with T = 0 the attributes are drawn and written
 *	  but carry no signal).
 *
 * Biases are not affected.  The features of an item, the attributes of a
 * user and the latent vectors come from their own random streams, so they
 * depend neither on the number of users or rows nor on S and T, and with
 * S = T = 0 the interactions are byte-identical to those without
 * --features.
 *
 * Random streams are derived from (seed, purpose, entity), so, for
 * instance, an item's parameters do not depend on the number of users.
 * Memory is O(U * r + I * r + N * r) plus one user's scratch; the rows are
 * streamed, never stored.
 *
 * test/data/generate.c
 *
 *-------------------------------------------------------------------------
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Range of the optional timestamps, in unix-epoch seconds. */
#define TS_MIN			1600000000LL
#define TS_MAX			1700000000LL

/* Standard deviation of the user and item biases. */
#define BIAS_SD			0.3

/* Standard deviation of the log-normal user activity. */
#define ACTIVITY_SIGMA	1.0

/* Size of the stdout buffer and of our own line buffer. */
#define OUT_BUFSIZE		(1 << 20)

/* Largest line we ever append before flushing (generous). */
#define MAX_LINE		256

/* Purposes for the independent random streams. */
#define STREAM_PERM		1
#define STREAM_ITEM		2
#define STREAM_USER		3
#define STREAM_ACTIVITY	4
#define STREAM_SAMPLE	5
#define STREAM_FEATURE_PERM 6
#define STREAM_FEATURE	7
#define STREAM_ITEM_FEATURES 8
#define STREAM_ATTRIBUTE 9
#define STREAM_USER_ATTRIBUTES 10

/* Range of the weights under --feature-weights real. */
#define FEATURE_WEIGHT_MIN 0.1
#define FEATURE_WEIGHT_MAX 1.0

/* Largest --features. */
#define MAX_FEATURES	10000000

/* Largest number of values of one attribute group. */
#define MAX_GROUP_VALUES 8

typedef enum
{
	KIND_EXPLICIT,
	KIND_IMPLICIT
} Kind;

/* All command-line settings. */
typedef struct Options
{
	long		users;
	long		items;
	long long	rows;
	long		rank;
	double		noise;
	double		zipf;
	double		beta;
	double		mean;
	uint64_t	seed;
	Kind		kind;
	int			continuous;
	int			timestamps;
	int			header;
	long		min_per_user;
	const char *truth;
	long		features;		/* --features N, 0 = off */
	double		features_per_item;	/* mean m_i, M */
	double		feature_zipf;
	double		feature_share;	/* S */
	double		attribute_share;	/* T */
	int			real_weights;	/* --feature-weights real */
	const char *item_features;	/* output file or NULL */
	const char *user_attributes;	/* output file or NULL */
} Options;

/* One attribute group of the users, e.g. age; see the file header. */
typedef struct AttributeGroup
{
	const char *name;
	int			nvalues;
	const char *values[MAX_GROUP_VALUES];	/* most frequent first */
} AttributeGroup;

/* xoshiro256** state plus a cached second Box-Muller normal. */
typedef struct Rng
{
	uint64_t	s[4];
	double		spare;
	int			has_spare;
} Rng;

/* One cell of Walker's alias table. */
typedef struct AliasCell
{
	uint64_t	thresh;			/* keep own index if low 32 bits < thresh */
	int			alias;			/* otherwise take this index */
} AliasCell;

/*
 * Fenwick tree over integer item weights, from which a user's chosen items
 * are removed (and put back afterwards), so draws never hit duplicates.
 * Integer weights make removing and restoring exact.
 */
typedef struct Fenwick
{
	uint64_t   *tree;			/* 1-based partial sums */
	uint64_t   *weight;			/* integer weight of each item */
	uint64_t	total;			/* current sum of all weights */
	int			n;
	int			top;			/* highest power of two <= n */
} Fenwick;

/* An item candidate with its sampling key, for Efraimidis-Spirakis. */
typedef struct KeyedItem
{
	double		key;
	double		dot;
	int			item;
} KeyedItem;

/* Everything the per-user item selection needs. */
typedef struct Sampler
{
	const Options *opts;
	int			nitems;
	int			rank;
	const double *Q;			/* item factors, nitems x rank */
	const double *w;			/* popularity weights */
	const double *logw;			/* their logarithms */
	double		wsum;			/* sum of w */
	AliasCell  *alias;			/* alias table over w */
	Fenwick    *fenwick;		/* built on first use */
	KeyedItem  *keyed;			/* allocated on first use */
	unsigned   *mark;			/* mark[i] == stamp: user has item i */
} Sampler;

/* Feature popularity plus the scratch to draw one item's features. */
typedef struct FeatureSampler
{
	int			n;				/* number of features */
	double	   *logw;			/* logarithms of the popularity weights */
	AliasCell  *alias;			/* alias table over the weights */
	unsigned   *mark;			/* mark[f] == stamp: item has feature f */
	KeyedItem  *keyed;			/* allocated on first use */
} FeatureSampler;

static const char *progname = "generate";

/* The user attribute groups; the j-th value has weight 1/j. */
static const AttributeGroup attribute_groups[] = {
	{"age", 6, {"25-34", "35-44", "18-24", "45-54", "55-64", "65+"}},
	{"region", 5, {"north", "south", "east", "west", "central"}},
	{"device", 3, {"mobile", "desktop", "tablet"}},
	{"plan", 4, {"free", "basic", "standard", "premium"}}
};

#define N_ATTRIBUTE_GROUPS \
	((int) (sizeof(attribute_groups) / sizeof(attribute_groups[0])))

/* Output buffer state. */
static char *outbuf;
static size_t outlen;


/* Finalizer of splitmix64: a bijective 64-bit mixing function. */
static inline uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Next value of a splitmix64 sequence, used only for seeding. */
static inline uint64_t
splitmix64(uint64_t *x)
{
	*x += UINT64_C(0x9e3779b97f4a7c15);
	return mix64(*x);
}

/* Rotate left, for xoshiro. */
static inline uint64_t
rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Seed a stream from the global seed, a purpose and an entity index. */
static void
rng_init(Rng *rng, uint64_t seed, uint64_t purpose, uint64_t index)
{
	uint64_t	x;
	int			k;

	x = mix64(seed) ^
		(mix64(purpose) + mix64(index ^ UINT64_C(0x5851f42d4c957f2d)));

	for (k = 0; k < 4; k++)
		rng->s[k] = splitmix64(&x);
	rng->has_spare = 0;
	rng->spare = 0.0;
}

/* Next 64 random bits from xoshiro256**. */
static inline uint64_t
rng_next(Rng *rng)
{
	uint64_t   *s = rng->s;
	uint64_t	result = rotl64(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

/* Uniform double in the open interval (0, 1). */
static inline double
rng_uniform(Rng *rng)
{
	return ((double) (rng_next(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n), n >= 1, without bias (Lemire's method). */
static uint32_t
rng_below(Rng *rng, uint32_t n)
{
	uint64_t	m = (uint64_t) (uint32_t) (rng_next(rng) >> 32) * n;
	uint32_t	low = (uint32_t) m;

	if (low < n)
	{
		uint32_t	t = (uint32_t) (0u - n) % n;

		while (low < t)
		{
			m = (uint64_t) (uint32_t) (rng_next(rng) >> 32) * n;
			low = (uint32_t) m;
		}
	}
	return (uint32_t) (m >> 32);
}

/* Standard normal deviate by the Box-Muller transform. */
static double
rng_normal(Rng *rng)
{
	double		r,
				theta;

	if (rng->has_spare)
	{
		rng->has_spare = 0;
		return rng->spare;
	}
	r = sqrt(-2.0 * log(rng_uniform(rng)));
	theta = 2.0 * 3.14159265358979323846 * rng_uniform(rng);
	rng->spare = r * sin(theta);
	rng->has_spare = 1;
	return r * cos(theta);
}

/* Report a fatal runtime error and exit with status 1. */
static void
fatal(const char *msg)
{
	fprintf(stderr, "%s: %s\n", progname, msg);
	exit(1);
}

/* malloc of n elements of size sz, exiting on overflow or failure. */
static void *
xmalloc(size_t n, size_t sz)
{
	void	   *p;

	if (sz != 0 && n > SIZE_MAX / sz)
		fatal("out of memory");
	p = malloc(n * sz == 0 ? 1 : n * sz);
	if (p == NULL)
		fatal("out of memory");
	return p;
}

/* Print the usage message to the given stream. */
static void
usage(FILE *f)
{
	fprintf(f,
			"Usage: %s [OPTION]...\n"
			"Write seeded synthetic recommender interactions as CSV on stdout.\n"
			"\n"
			"  --users U          number of users, ids 1..U (default 6040)\n"
			"  --items I          number of items, ids 1..I (default 3706)\n"
			"  --rows N           total number of rows (default 1000000)\n"
			"  --rank R           latent rank, 1..1000 (default 10)\n"
			"  --kind K           explicit (ratings) or implicit (counts)\n"
			"                     (default explicit)\n"
			"  --noise SIGMA      std. deviation of the rating noise (default 0.5)\n"
			"  --mean MU          global mean rating (default 3.5)\n"
			"  --continuous       explicit only: print unrounded, unclamped values\n"
			"                     with 4 decimals instead of integer stars 1..5\n"
			"  --zipf S           item popularity exponent, weight 1/rank^S\n"
			"                     (default 0.8)\n"
			"  --beta B           how strongly item choice follows preference,\n"
			"                     accept with sigmoid(B * p.q) (default 2.0)\n"
			"  --min-per-user M   minimum rows per user (default 5)\n"
			"  --timestamps       add a ts column: unix seconds in\n"
			"                     [1600000000, 1700000000), increasing per user\n"
			"  --no-header        do not write the CSV header line\n"
			"  --truth FILE       also write the planted model to FILE as CSV:\n"
			"                     mu,<mu>,<sigma> then u,<id>,<bias>,<f1..fR>\n"
			"                     and i,<id>,<bias>,<f1..fR>\n"
			"  --seed S           PRNG seed, 0..2^64-1 (default 42)\n"
			"  --help             show this help and exit\n"
			"\n"
			"Item features and user attributes (model: see the header of generate.c):\n"
			"  --features N       number of distinct item features f1..fN, 0..%d;\n"
			"                     they shape the item factors (default 0: off)\n"
			"  --features-per-item M\n"
			"                     mean number of features of an item, 1..N\n"
			"                     (default 10, or N if smaller)\n"
			"  --feature-zipf Z   feature popularity exponent, weight 1/rank^Z\n"
			"                     (default 0.8)\n"
			"  --feature-weights W\n"
			"                     one (every weight is 1) or real (weights in\n"
			"                     [0.1, 1] that also weigh the features in the\n"
			"                     item factors) (default one)\n"
			"  --feature-share S  share of the item factors' variance that comes\n"
			"                     from the item's features, 0..1 (default 0.5)\n"
			"  --attribute-share T\n"
			"                     share of the user factors' variance that comes\n"
			"                     from the user's attributes, 0..1 (default S\n"
			"                     with --features, otherwise 0)\n"
			"  --item-features FILE\n"
			"                     write CSV item_id,feature,weight to FILE, e.g.\n"
			"                     7,f17,1 (needs --features)\n"
			"  --user-attributes FILE\n"
			"                     write CSV user_id,attribute to FILE: per user\n"
			"                     one value of each group age, region, device,\n"
			"                     plan, e.g. 7,age:25-34 (they shape the user\n"
			"                     factors when the attribute share is above 0)\n"
			"Both files have a header line.  The --truth file also gets lines\n"
			"f,<feature>,<e1..eR> (with --features) and a,<attribute>,<e1..eR>\n"
			"(when the attribute share is above 0).\n"
			"\n"
			"Options also accept the form --name=value.\n"
			"Constraints: min-per-user <= floor(items/2) and\n"
			"users * min-per-user <= rows <= users * floor(items/2).\n",
			progname, MAX_FEATURES);
}

/* Report a bad command line, print the usage and exit with status 2. */
static void
bad_usage(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "%s: ", progname);
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	usage(stderr);
	exit(2);
}

/* Parse a decimal integer option value within [min, max]. */
static long long
parse_int(const char *name, const char *s, long long min, long long max)
{
	char	   *end;
	long long	v;
	char		range[96];

	errno = 0;
	v = strtoll(s, &end, 10);
	snprintf(range, sizeof(range), "an integer in %lld..%lld", min, max);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
	{
		fprintf(stderr, "%s: invalid value for --%s: \"%s\" (expected %s)\n",
				progname, name, s, range);
		usage(stderr);
		exit(2);
	}
	return v;
}

/* Parse a finite floating-point option value within [min, max]. */
static double
parse_real(const char *name, const char *s, double min, double max)
{
	char	   *end;
	double		v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
	{
		fprintf(stderr, "%s: invalid value for --%s: \"%s\" (expected a number in [%g, %g])\n",
				progname, name, s, min, max);
		usage(stderr);
		exit(2);
	}
	return v;
}

/* Parse the seed, an unsigned 64-bit decimal integer. */
static uint64_t
parse_seed(const char *s)
{
	char	   *end;
	unsigned long long v;
	const char *p = s;

	while (*p == ' ' || *p == '\t')
		p++;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (*p == '-' || *p == '+' || errno != 0 || end == p || *end != '\0')
		bad_usage("invalid value for --seed: \"%s\"%s", s,
				  " (expected an integer in 0..18446744073709551615)");
	return (uint64_t) v;
}

/* Fill opts from argv, exiting with status 2 on any error. */
static void
parse_options(int argc, char **argv, Options *opts)
{
	int			k;
	int			fpi_given = 0,
				fzipf_given = 0,
				fweights_given = 0,
				fshare_given = 0,
				ashare_given = 0;

	opts->users = 6040;
	opts->items = 3706;
	opts->rows = 1000000;
	opts->rank = 10;
	opts->noise = 0.5;
	opts->zipf = 0.8;
	opts->beta = 2.0;
	opts->mean = 3.5;
	opts->seed = 42;
	opts->kind = KIND_EXPLICIT;
	opts->continuous = 0;
	opts->timestamps = 0;
	opts->header = 1;
	opts->min_per_user = 5;
	opts->truth = NULL;
	opts->features = 0;
	opts->features_per_item = 10.0;
	opts->feature_zipf = 0.8;
	opts->feature_share = 0.5;
	opts->attribute_share = 0.0;
	opts->real_weights = 0;
	opts->item_features = NULL;
	opts->user_attributes = NULL;

	for (k = 1; k < argc; k++)
	{
		const char *arg = argv[k];
		char		name[64];
		const char *val = NULL;
		const char *eq;

		if (strncmp(arg, "--", 2) != 0)
			bad_usage("unexpected argument \"%s\"%s", arg, "");
		arg += 2;
		eq = strchr(arg, '=');
		if (eq != NULL)
		{
			size_t		len = (size_t) (eq - arg);

			if (len >= sizeof(name))
				bad_usage("unknown option \"%s\"%s", argv[k], "");
			memcpy(name, arg, len);
			name[len] = '\0';
			val = eq + 1;
		}
		else
		{
			if (strlen(arg) >= sizeof(name))
				bad_usage("unknown option \"%s\"%s", argv[k], "");
			strcpy(name, arg);
		}

		/* flags without a value */
		if (strcmp(name, "help") == 0 || strcmp(name, "continuous") == 0 ||
			strcmp(name, "timestamps") == 0 || strcmp(name, "no-header") == 0)
		{
			if (val != NULL)
				bad_usage("option --%s takes no value%s", name, "");
			if (strcmp(name, "help") == 0)
			{
				usage(stdout);
				exit(0);
			}
			else if (strcmp(name, "continuous") == 0)
				opts->continuous = 1;
			else if (strcmp(name, "timestamps") == 0)
				opts->timestamps = 1;
			else
				opts->header = 0;
			continue;
		}

		/* everything else takes a value */
		if (strcmp(name, "users") != 0 && strcmp(name, "items") != 0 &&
			strcmp(name, "rows") != 0 && strcmp(name, "rank") != 0 &&
			strcmp(name, "noise") != 0 && strcmp(name, "zipf") != 0 &&
			strcmp(name, "beta") != 0 && strcmp(name, "mean") != 0 &&
			strcmp(name, "seed") != 0 && strcmp(name, "kind") != 0 &&
			strcmp(name, "min-per-user") != 0 && strcmp(name, "truth") != 0 &&
			strcmp(name, "features") != 0 &&
			strcmp(name, "features-per-item") != 0 &&
			strcmp(name, "feature-zipf") != 0 &&
			strcmp(name, "feature-weights") != 0 &&
			strcmp(name, "feature-share") != 0 &&
			strcmp(name, "attribute-share") != 0 &&
			strcmp(name, "item-features") != 0 &&
			strcmp(name, "user-attributes") != 0)
			bad_usage("unknown option \"%s\"%s", argv[k], "");
		if (val == NULL)
		{
			if (k + 1 >= argc)
				bad_usage("option --%s needs a value%s", name, "");
			val = argv[++k];
		}

		if (strcmp(name, "users") == 0)
			opts->users = (long) parse_int(name, val, 1, INT_MAX - 1);
		else if (strcmp(name, "items") == 0)
			opts->items = (long) parse_int(name, val, 2, INT_MAX - 1);
		else if (strcmp(name, "rows") == 0)
			opts->rows = parse_int(name, val, 1, LLONG_MAX / 2);
		else if (strcmp(name, "rank") == 0)
			opts->rank = (long) parse_int(name, val, 1, 1000);
		else if (strcmp(name, "min-per-user") == 0)
			opts->min_per_user = (long) parse_int(name, val, 0, INT_MAX / 2);
		else if (strcmp(name, "noise") == 0)
			opts->noise = parse_real(name, val, 0.0, 1e4);
		else if (strcmp(name, "zipf") == 0)
			opts->zipf = parse_real(name, val, 0.0, 10.0);
		else if (strcmp(name, "beta") == 0)
			opts->beta = parse_real(name, val, -1e3, 1e3);
		else if (strcmp(name, "mean") == 0)
			opts->mean = parse_real(name, val, -1e6, 1e6);
		else if (strcmp(name, "seed") == 0)
			opts->seed = parse_seed(val);
		else if (strcmp(name, "kind") == 0)
		{
			if (strcmp(val, "explicit") == 0)
				opts->kind = KIND_EXPLICIT;
			else if (strcmp(val, "implicit") == 0)
				opts->kind = KIND_IMPLICIT;
			else
				bad_usage("invalid value for --kind: \"%s\"%s", val,
						  " (expected explicit or implicit)");
		}
		else if (strcmp(name, "features") == 0)
			opts->features = (long) parse_int(name, val, 0, MAX_FEATURES);
		else if (strcmp(name, "features-per-item") == 0)
		{
			opts->features_per_item = parse_real(name, val, 1.0, MAX_FEATURES);
			fpi_given = 1;
		}
		else if (strcmp(name, "feature-zipf") == 0)
		{
			opts->feature_zipf = parse_real(name, val, 0.0, 10.0);
			fzipf_given = 1;
		}
		else if (strcmp(name, "feature-weights") == 0)
		{
			if (strcmp(val, "one") == 0)
				opts->real_weights = 0;
			else if (strcmp(val, "real") == 0)
				opts->real_weights = 1;
			else
				bad_usage("invalid value for --feature-weights: \"%s\"%s", val,
						  " (expected one or real)");
			fweights_given = 1;
		}
		else if (strcmp(name, "feature-share") == 0)
		{
			opts->feature_share = parse_real(name, val, 0.0, 1.0);
			fshare_given = 1;
		}
		else if (strcmp(name, "attribute-share") == 0)
		{
			opts->attribute_share = parse_real(name, val, 0.0, 1.0);
			ashare_given = 1;
		}
		else
		{
			if (*val == '\0')
				bad_usage("option --%s needs a file name%s", name, "");
			if (strcmp(name, "truth") == 0)
				opts->truth = val;
			else if (strcmp(name, "item-features") == 0)
				opts->item_features = val;
			else
				opts->user_attributes = val;
		}
	}

	/* cross-option checks */
	if (opts->continuous && opts->kind != KIND_EXPLICIT)
		bad_usage("--continuous requires --kind explicit%s%s", "", "");
	if (opts->features == 0)
	{
		const char *needs = fpi_given ? "--features-per-item" :
			fzipf_given ? "--feature-zipf" :
			fweights_given ? "--feature-weights" :
			fshare_given ? "--feature-share" :
			opts->item_features != NULL ? "--item-features" : NULL;

		if (needs != NULL)
			bad_usage("%s requires --features N with N >= 1%s", needs, "");
	}
	else if (!fpi_given)
	{
		if (opts->features_per_item > (double) opts->features)
			opts->features_per_item = (double) opts->features;
	}
	else if (opts->features_per_item > (double) opts->features)
	{
		char		buf[2][64];

		snprintf(buf[0], sizeof(buf[0]), "%g", opts->features_per_item);
		snprintf(buf[1], sizeof(buf[1]), "%ld", opts->features);
		bad_usage("--features-per-item %s exceeds --features %s", buf[0], buf[1]);
	}
	if (!ashare_given)
		opts->attribute_share = opts->features > 0 ? opts->feature_share : 0.0;
	{
		long long	cap = opts->items / 2;
		char		buf[2][64];

		if (opts->min_per_user > cap)
		{
			snprintf(buf[0], sizeof(buf[0]), "%ld", opts->min_per_user);
			snprintf(buf[1], sizeof(buf[1]), "%lld", cap);
			bad_usage("--min-per-user %s exceeds floor(items/2) = %s", buf[0], buf[1]);
		}
		if (opts->rows > (long long) opts->users * cap)
		{
			snprintf(buf[0], sizeof(buf[0]), "%lld", opts->rows);
			snprintf(buf[1], sizeof(buf[1]), "%lld", (long long) opts->users * cap);
			bad_usage("--rows %s exceeds users * floor(items/2) = %s", buf[0], buf[1]);
		}
		if (opts->rows < (long long) opts->users * opts->min_per_user)
		{
			snprintf(buf[0], sizeof(buf[0]), "%lld", opts->rows);
			snprintf(buf[1], sizeof(buf[1]), "%lld",
					 (long long) opts->users * opts->min_per_user);
			bad_usage("--rows %s is below users * min-per-user = %s "
					  "(lower --min-per-user or --users)", buf[0], buf[1]);
		}
	}
}

/* Seconds on a monotonic clock. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* Write out the line buffer. */
static void
out_flush(void)
{
	if (outlen > 0 && fwrite(outbuf, 1, outlen, stdout) != outlen)
		fatal("error writing to stdout");
	outlen = 0;
}

/* Append the decimal digits of v at p and return the new end. */
static inline char *
put_uint(char *p, uint64_t v)
{
	char		tmp[20];
	int			n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Append v with exactly 4 decimals (round half away from zero). */
static char *
put_fixed4(char *p, double v)
{
	double		a = fabs(v);
	uint64_t	scaled,
				frac;

	if (!(a < 1e14))
		return p + snprintf(p, MAX_LINE / 2, "%.4f", v);
	scaled = (uint64_t) (a * 10000.0 + 0.5);
	if (v < 0 && scaled != 0)
		*p++ = '-';
	p = put_uint(p, scaled / 10000);
	*p++ = '.';
	frac = scaled % 10000;
	p[0] = (char) ('0' + frac / 1000);
	p[1] = (char) ('0' + frac / 100 % 10);
	p[2] = (char) ('0' + frac / 10 % 10);
	p[3] = (char) ('0' + frac % 10);
	return p + 4;
}

/* Dot product of two rank-long vectors. */
static inline double
dot(const double *a, const double *b, int rank)
{
	double		s = 0.0;
	int			k;

	for (k = 0; k < rank; k++)
		s += a[k] * b[k];
	return s;
}

/* log(sigmoid(z)), computed without overflow. */
static double
log_sigmoid(double z)
{
	if (z >= 0)
		return -log1p(exp(-z));
	return z - log1p(exp(z));
}

/* Build Walker's alias table for weights w[0..n-1] (Vose's method). */
static AliasCell *
build_alias(const double *w, int n)
{
	AliasCell  *cells = xmalloc((size_t) n, sizeof(AliasCell));
	double	   *p = xmalloc((size_t) n, sizeof(double));
	int		   *small = xmalloc((size_t) n, sizeof(int));
	int		   *large = xmalloc((size_t) n, sizeof(int));
	int			nsmall = 0,
				nlarge = 0;
	double		total = 0.0;
	int			i;

	for (i = 0; i < n; i++)
		total += w[i];
	for (i = 0; i < n; i++)
	{
		p[i] = w[i] * n / total;
		cells[i].alias = i;
		if (p[i] < 1.0)
			small[nsmall++] = i;
		else
			large[nlarge++] = i;
	}
	while (nsmall > 0 && nlarge > 0)
	{
		int			s = small[--nsmall];
		int			l = large[--nlarge];

		cells[s].thresh = (uint64_t) (p[s] * 4294967296.0);
		cells[s].alias = l;
		p[l] = (p[l] + p[s]) - 1.0;
		if (p[l] < 1.0)
			small[nsmall++] = l;
		else
			large[nlarge++] = l;
	}
	/* leftovers are 1 up to rounding error */
	while (nlarge > 0)
		cells[large[--nlarge]].thresh = UINT64_C(1) << 32;
	while (nsmall > 0)
		cells[small[--nsmall]].thresh = UINT64_C(1) << 32;

	free(p);
	free(small);
	free(large);
	return cells;
}

/* Draw an index from an alias table with one 64-bit random value. */
static inline int
alias_draw(const AliasCell *cells, uint32_t n, Rng *rng)
{
	uint64_t	x = rng_next(rng);
	uint32_t	idx = (uint32_t) (((x >> 32) * n) >> 32);

	if ((x & UINT64_C(0xffffffff)) < cells[idx].thresh)
		return (int) idx;
	return cells[idx].alias;
}

/* Build the Fenwick tree from popularity weights w[0..n-1] (sum wsum). */
static Fenwick *
fenwick_build(const double *w, double wsum, int n)
{
	Fenwick    *f = xmalloc(1, sizeof(Fenwick));
	int			i;

	f->n = n;
	f->tree = xmalloc((size_t) n + 1, sizeof(uint64_t));
	f->weight = xmalloc((size_t) n, sizeof(uint64_t));
	f->total = 0;
	memset(f->tree, 0, ((size_t) n + 1) * sizeof(uint64_t));
	for (i = 0; i < n; i++)
	{
		/* scale so the total stays below 2^53 + n */
		double		x = ldexp(w[i] / wsum, 52);

		f->weight[i] = x < 1.0 ? 1 : (uint64_t) x;
		f->total += f->weight[i];
	}
	/* linear-time construction */
	for (i = 1; i <= n; i++)
	{
		int			parent = i + (i & -i);

		f->tree[i] += f->weight[i - 1];
		if (parent <= n)
			f->tree[parent] += f->tree[i];
	}
	for (f->top = 1; f->top <= n / 2; f->top <<= 1)
		;
	return f;
}

/* Add delta (modulo 2^64, so "negative" deltas work) to item i's weight. */
static void
fenwick_add(Fenwick *f, int i, uint64_t delta)
{
	int			k;

	f->total += delta;
	for (k = i + 1; k <= f->n; k += k & -k)
		f->tree[k] += delta;
}

/* Draw an item with probability proportional to its current weight. */
static int
fenwick_draw(const Fenwick *f, Rng *rng)
{
	uint64_t	mask = f->total - 1;
	uint64_t	r;
	int			pos = 0;
	int			step;

	mask |= mask >> 1;
	mask |= mask >> 2;
	mask |= mask >> 4;
	mask |= mask >> 8;
	mask |= mask >> 16;
	mask |= mask >> 32;
	do
		r = rng_next(rng) & mask;
	while (r >= f->total);

	for (step = f->top; step > 0; step >>= 1)
	{
		if (pos + step <= f->n && f->tree[pos + step] <= r)
		{
			pos += step;
			r -= f->tree[pos];
		}
	}
	return pos;
}

/* Order KeyedItems by key, ties by item, so the order is total. */
static int
cmp_keyed(const void *a, const void *b)
{
	const KeyedItem *x = a;
	const KeyedItem *y = b;

	if (x->key < y->key)
		return -1;
	if (x->key > y->key)
		return 1;
	return (x->item > y->item) - (x->item < y->item);
}

/* Total of clamp(c * x[u], lo, hi) over all users. */
static double
activity_total(const double *x, long n, double c, double lo, double hi)
{
	double		total = 0.0;
	long		u;

	for (u = 0; u < n; u++)
	{
		double		y = c * x[u];

		total += y < lo ? lo : (y > hi ? hi : y);
	}
	return total;
}

/* Draw the number of rows of every user; they add up to opts->rows. */
static int *
draw_activity(const Options *opts)
{
	long		nusers = opts->users;
	double	   *x = xmalloc((size_t) nusers, sizeof(double));
	int		   *nu = xmalloc((size_t) nusers, sizeof(int));
	double		lo = (double) opts->min_per_user;
	double		hi = (double) (opts->items / 2);
	double		target = (double) opts->rows;
	double		clo = 0.0,
				chi = 1.0,
				c,
				cum = 0.0;
	long long	prev = 0,
				diff;
	long		u;
	int			iter;

	for (u = 0; u < nusers; u++)
	{
		Rng			rng;

		rng_init(&rng, opts->seed, STREAM_ACTIVITY, (uint64_t) u);
		x[u] = exp(ACTIVITY_SIGMA * rng_normal(&rng));
	}

	/* find the scale c with sum clamp(c * x_u) = rows, by bisection */
	for (iter = 0; iter < 2000 && activity_total(x, nusers, chi, lo, hi) < target; iter++)
		chi *= 2.0;
	for (iter = 0; iter < 200; iter++)
	{
		double		mid = 0.5 * (clo + chi);

		if (mid <= clo || mid >= chi)
			break;
		if (activity_total(x, nusers, mid, lo, hi) < target)
			clo = mid;
		else
			chi = mid;
	}
	c = chi;

	/* round the real-valued counts so that the running total stays exact */
	for (u = 0; u < nusers; u++)
	{
		double		y = c * x[u];
		long long	cur;

		y = y < lo ? lo : (y > hi ? hi : y);
		cum += y;
		cur = (long long) floor(cum + 0.5);
		nu[u] = (int) (cur - prev);
		if (nu[u] < opts->min_per_user)
			nu[u] = (int) opts->min_per_user;
		if (nu[u] > opts->items / 2)
			nu[u] = (int) (opts->items / 2);
		prev = cur;
	}

	/* repair any floating-point slack so the total is exactly rows */
	diff = opts->rows;
	for (u = 0; u < nusers; u++)
		diff -= nu[u];
	for (u = 0; u < nusers && diff > 0; u++)
		while (diff > 0 && nu[u] < opts->items / 2)
		{
			nu[u]++;
			diff--;
		}
	for (u = 0; u < nusers && diff < 0; u++)
		while (diff < 0 && nu[u] > opts->min_per_user)
		{
			nu[u]--;
			diff++;
		}

	free(x);
	return nu;
}

/* Draw the factors and bias of one user or item from its own stream. */
static void
draw_entity(Rng *rng, double *factors, double *bias, int rank, double factor_sd)
{
	int			k;

	for (k = 0; k < rank; k++)
		factors[k] = factor_sd * rng_normal(rng);
	*bias = BIAS_SD * rng_normal(rng);
}

/* Number of events of a unit-rate Poisson process in [0, lambda]. */
static long
rng_poisson(Rng *rng, double lambda)
{
	long		n = 0;
	double		t = -log(rng_uniform(rng));

	while (t <= lambda)
	{
		n++;
		t -= log(rng_uniform(rng));
	}
	return n;
}

/* Order ints increasingly, for qsort. */
static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* Open a file for writing, exiting with status 1 on failure. */
static FILE *
open_output(const char *path)
{
	FILE	   *f = fopen(path, "w");

	if (f == NULL)
	{
		fprintf(stderr, "%s: could not open \"%s\" for writing: %s\n",
				progname, path, strerror(errno));
		exit(1);
	}
	return f;
}

/* Close a file from open_output, exiting with status 1 if writing failed. */
static void
close_output(FILE *f, const char *path)
{
	if (ferror(f) || fclose(f) != 0)
	{
		fprintf(stderr, "%s: could not write \"%s\"\n", progname, path);
		exit(1);
	}
}

/*
 * Draw n latent vectors of rank entries with standard deviation sd, vector
 * j from its own stream (seed, purpose, j); returns them as an n x rank
 * array.
 */
static double *
draw_latent(const Options *opts, uint64_t purpose, long n, double sd)
{
	int			rank = (int) opts->rank;
	double	   *v = xmalloc((size_t) n * rank, sizeof(double));
	long		j;
	int			k;

	for (j = 0; j < n; j++)
	{
		Rng			rng;

		rng_init(&rng, opts->seed, purpose, (uint64_t) j);
		for (k = 0; k < rank; k++)
			v[(size_t) j * rank + k] = sd * rng_normal(&rng);
	}
	return v;
}

/*
 * Choose 'want' distinct features (1 <= want <= number of features) into
 * sel by successive sampling without replacement from the feature
 * popularity weights (step b of "Item features and user attributes" in the
 * file header), marking them with 'stamp'; returns want.
 *
 * Like select_items: rejection of repeats from the alias table while that
 * works, then exponential keys over the features not yet chosen, which
 * draws from the same distribution.
 */
static int
draw_features(FeatureSampler *fs, Rng *rng, unsigned stamp, int *sel, int want)
{
	long long	tries = 0,
				max_tries = 50LL * want + 64;
	int			got = 0;
	int			f,
				m,
				k;

	while (got < want && tries++ < max_tries)
	{
		f = alias_draw(fs->alias, (uint32_t) fs->n, rng);
		if (fs->mark[f] == stamp)
			continue;
		fs->mark[f] = stamp;
		sel[got++] = f;
	}
	if (got < want)
	{
		if (fs->keyed == NULL)
			fs->keyed = xmalloc((size_t) fs->n, sizeof(KeyedItem));
		m = 0;
		for (f = 0; f < fs->n; f++)
		{
			if (fs->mark[f] == stamp)
				continue;
			/* log of E / weight with E ~ Exp(1); the smallest keys win */
			fs->keyed[m].key = log(-log(rng_uniform(rng))) - fs->logw[f];
			fs->keyed[m].dot = 0.0;
			fs->keyed[m].item = f;
			m++;
		}
		qsort(fs->keyed, (size_t) m, sizeof(KeyedItem), cmp_keyed);
		for (k = 0; k < m && got < want; k++)
		{
			fs->mark[fs->keyed[k].item] = stamp;
			sel[got++] = fs->keyed[k].item;
		}
	}
	return got;
}

/*
 * Give every item its features and weights, mix the features' latent
 * vectors E (features x rank) into the item factors Q (steps a to c of
 * "Item features and user attributes" in the file header), and write the
 * features to the --item-features file if asked.
 */
static void
plant_item_features(const Options *opts, double *Q, const double *E)
{
	int			rank = (int) opts->rank;
	int			nfeatures = (int) opts->features;
	double		share = opts->feature_share;
	double		own = sqrt(1.0 - share);
	FeatureSampler fs;
	FILE	   *out = NULL;
	double	   *w,
			   *acc,
			   *wt = NULL;
	int		   *perm,
			   *sel = NULL;
	unsigned char *used;
	int			cap = 0;
	long		nused = 0;
	long long	total = 0;
	Rng			rng;
	long		i;
	int			f,
				j,
				k;

	/* feature popularity, exactly like item popularity in step 2 */
	perm = xmalloc((size_t) nfeatures, sizeof(int));
	for (f = 0; f < nfeatures; f++)
		perm[f] = f;
	rng_init(&rng, opts->seed, STREAM_FEATURE_PERM, 0);
	for (f = nfeatures - 1; f > 0; f--)
	{
		int			r = (int) rng_below(&rng, (uint32_t) f + 1);
		int			t = perm[f];

		perm[f] = perm[r];
		perm[r] = t;
	}
	w = xmalloc((size_t) nfeatures, sizeof(double));
	fs.logw = xmalloc((size_t) nfeatures, sizeof(double));
	for (f = 0; f < nfeatures; f++)
	{
		/* perm[f] is the feature at popularity rank f + 1 */
		fs.logw[perm[f]] = -opts->feature_zipf * log((double) f + 1.0);
		w[perm[f]] = exp(fs.logw[perm[f]]);
	}
	free(perm);
	fs.n = nfeatures;
	fs.alias = build_alias(w, nfeatures);
	fs.mark = xmalloc((size_t) nfeatures, sizeof(unsigned));
	memset(fs.mark, 0, (size_t) nfeatures * sizeof(unsigned));
	fs.keyed = NULL;
	used = xmalloc((size_t) nfeatures, 1);
	memset(used, 0, (size_t) nfeatures);
	acc = xmalloc((size_t) rank, sizeof(double));

	if (opts->item_features != NULL)
	{
		out = open_output(opts->item_features);
		fputs("item_id,feature,weight\n", out);
	}

	for (i = 0; i < opts->items; i++)
	{
		double	   *q = Q + (size_t) i * rank;
		long		m;
		int			got;
		double		ss = 0.0;

		rng_init(&rng, opts->seed, STREAM_ITEM_FEATURES, (uint64_t) i);
		m = 1 + rng_poisson(&rng, opts->features_per_item - 1.0);
		if (m > nfeatures)
			m = nfeatures;
		if (m > cap)
		{
			free(sel);
			free(wt);
			/* grow geometrically, but never beyond the number of features */
			cap = 2 * cap > m ? 2 * cap : (int) m;
			if (cap > nfeatures)
				cap = nfeatures;
			sel = xmalloc((size_t) cap, sizeof(int));
			wt = xmalloc((size_t) cap, sizeof(double));
		}
		got = draw_features(&fs, &rng, (unsigned) i + 1, sel, (int) m);
		qsort(sel, (size_t) got, sizeof(int), cmp_int);

		/* weights, drawn after the features so those do not depend on them */
		for (j = 0; j < got; j++)
		{
			if (opts->real_weights)
				wt[j] = floor((FEATURE_WEIGHT_MIN + (FEATURE_WEIGHT_MAX - FEATURE_WEIGHT_MIN) *
							   rng_uniform(&rng)) * 10000.0 + 0.5) / 10000.0;
			else
				wt[j] = 1.0;
			ss += wt[j] * wt[j];
			if (!used[sel[j]])
			{
				used[sel[j]] = 1;
				nused++;
			}
		}
		total += got;

		/* q_i = sqrt(1 - S) q_i' + sqrt(S) sum w e_f / sqrt(sum w^2) */
		if (share > 0.0)
		{
			double		scale = sqrt(share / ss);

			for (k = 0; k < rank; k++)
				acc[k] = 0.0;
			for (j = 0; j < got; j++)
			{
				const double *e = E + (size_t) sel[j] * rank;

				for (k = 0; k < rank; k++)
					acc[k] += wt[j] * e[k];
			}
			for (k = 0; k < rank; k++)
				q[k] = own * q[k] + scale * acc[k];
		}

		if (out != NULL)
			for (j = 0; j < got; j++)
			{
				if (opts->real_weights)
					fprintf(out, "%ld,f%d,%.4f\n", i + 1, sel[j] + 1, wt[j]);
				else
					fprintf(out, "%ld,f%d,1\n", i + 1, sel[j] + 1);
			}
	}
	if (out != NULL)
		close_output(out, opts->item_features);

	fprintf(stderr, "%s: item features: %ld of %d features used, %.2f per item\n",
			progname, nused, nfeatures, (double) total / (double) opts->items);

	free(acc);
	free(used);
	free(sel);
	free(wt);
	free(fs.keyed);
	free(fs.mark);
	free(fs.alias);
	free(fs.logw);
	free(w);
}

/*
 * Give every user one value of each attribute group; with A (the latent
 * vectors of all attribute values, in group order, x rank) mix them into
 * the user factors P (step d of "Item features and user attributes" in the
 * file header), and write the attributes to the --user-attributes file if
 * asked.  A is NULL when the attribute share is 0.
 */
static void
plant_user_attributes(const Options *opts, double *P, const double *A)
{
	int			rank = (int) opts->rank;
	double		share = opts->attribute_share;
	double		own = sqrt(1.0 - share);
	double		scale = sqrt(share / N_ATTRIBUTE_GROUPS);
	int			offset[N_ATTRIBUTE_GROUPS];
	double		gsum[N_ATTRIBUTE_GROUPS];
	int			value[N_ATTRIBUTE_GROUPS];
	double	   *acc = xmalloc((size_t) rank, sizeof(double));
	FILE	   *out = NULL;
	long		u;
	int			g,
				j,
				k,
				n = 0;

	for (g = 0; g < N_ATTRIBUTE_GROUPS; g++)
	{
		offset[g] = n;
		n += attribute_groups[g].nvalues;
		gsum[g] = 0.0;
		for (j = 0; j < attribute_groups[g].nvalues; j++)
			gsum[g] += 1.0 / (j + 1.0);
	}
	if (opts->user_attributes != NULL)
	{
		out = open_output(opts->user_attributes);
		fputs("user_id,attribute\n", out);
	}

	for (u = 0; u < opts->users; u++)
	{
		Rng			rng;

		rng_init(&rng, opts->seed, STREAM_USER_ATTRIBUTES, (uint64_t) u);
		for (g = 0; g < N_ATTRIBUTE_GROUPS; g++)
		{
			/* value j (from 0) with probability proportional to 1/(j + 1) */
			double		x = rng_uniform(&rng) * gsum[g];

			for (j = 0; j < attribute_groups[g].nvalues - 1 && x >= 1.0 / (j + 1.0); j++)
				x -= 1.0 / (j + 1.0);
			value[g] = j;
		}

		/* p_u = sqrt(1 - T) p_u' + sqrt(T) sum e_a / sqrt(G) */
		if (A != NULL)
		{
			double	   *p = P + (size_t) u * rank;

			for (k = 0; k < rank; k++)
				acc[k] = 0.0;
			for (g = 0; g < N_ATTRIBUTE_GROUPS; g++)
			{
				const double *e = A + (size_t) (offset[g] + value[g]) * rank;

				for (k = 0; k < rank; k++)
					acc[k] += e[k];
			}
			for (k = 0; k < rank; k++)
				p[k] = own * p[k] + scale * acc[k];
		}

		if (out != NULL)
			for (g = 0; g < N_ATTRIBUTE_GROUPS; g++)
				fprintf(out, "%ld,%s:%s\n", u + 1, attribute_groups[g].name,
						attribute_groups[g].values[value[g]]);
	}
	if (out != NULL)
		close_output(out, opts->user_attributes);
	free(acc);
}

/*
 * Write the planted model to a CSV file; E (feature vectors) and A
 * (attribute value vectors, in group order) are written when not NULL.
 */
static void
write_truth(const Options *opts, const double *P, const double *bu,
			const double *Q, const double *bi, const double *E,
			const double *A)
{
	FILE	   *f = open_output(opts->truth);
	int			rank = (int) opts->rank;
	long		n;
	int			g,
				j,
				k;

	fprintf(f, "mu,%.6f,%.6f\n", opts->mean, opts->noise);
	for (n = 0; n < opts->users; n++)
	{
		fprintf(f, "u,%ld,%.6f", n + 1, bu[n]);
		for (k = 0; k < rank; k++)
			fprintf(f, ",%.6f", P[(size_t) n * rank + k]);
		fputc('\n', f);
	}
	for (n = 0; n < opts->items; n++)
	{
		fprintf(f, "i,%ld,%.6f", n + 1, bi[n]);
		for (k = 0; k < rank; k++)
			fprintf(f, ",%.6f", Q[(size_t) n * rank + k]);
		fputc('\n', f);
	}
	for (n = 0; E != NULL && n < opts->features; n++)
	{
		fprintf(f, "f,f%ld", n + 1);
		for (k = 0; k < rank; k++)
			fprintf(f, ",%.6f", E[(size_t) n * rank + k]);
		fputc('\n', f);
	}
	n = 0;
	for (g = 0; A != NULL && g < N_ATTRIBUTE_GROUPS; g++)
		for (j = 0; j < attribute_groups[g].nvalues; j++, n++)
		{
			fprintf(f, "a,%s:%s", attribute_groups[g].name,
					attribute_groups[g].values[j]);
			for (k = 0; k < rank; k++)
				fprintf(f, ",%.6f", A[(size_t) n * rank + k]);
			fputc('\n', f);
		}
	close_output(f, opts->truth);
}

/*
 * Complete a user's selection (sel/dots hold 'got' items already marked
 * with 'stamp') up to 'want' items by Efraimidis-Spirakis sampling with
 * weights w_i * sigmoid(beta * p.q_i) over the items not yet chosen.
 */
static int
complete_by_keys(Sampler *smp, Rng *rng, const double *pu, unsigned stamp,
				 int *sel, double *dots, int got, int want)
{
	KeyedItem  *keyed;
	int			m = 0;
	int			i,
				k;

	if (smp->keyed == NULL)
		smp->keyed = xmalloc((size_t) smp->nitems, sizeof(KeyedItem));
	keyed = smp->keyed;
	for (i = 0; i < smp->nitems; i++)
	{
		double		d;

		if (smp->mark[i] == stamp)
			continue;
		d = dot(pu, smp->Q + (size_t) i * smp->rank, smp->rank);
		/* log of E / weight with E ~ Exp(1); the smallest keys win */
		keyed[m].key = log(-log(rng_uniform(rng))) - smp->logw[i]
			- log_sigmoid(smp->opts->beta * d);
		keyed[m].dot = d;
		keyed[m].item = i;
		m++;
	}
	qsort(keyed, (size_t) m, sizeof(KeyedItem), cmp_keyed);
	for (k = 0; k < m && got < want; k++)
	{
		smp->mark[keyed[k].item] = stamp;
		sel[got] = keyed[k].item;
		dots[got] = keyed[k].dot;
		got++;
	}
	return got;
}

/*
 * Choose 'want' distinct items for one user (step 4 of the file header)
 * into sel, with their dot products p.q_i into dots; returns the count.
 *
 * All three methods below sample from the same distribution (successive
 * sampling without replacement with weights w_i * sigmoid(beta * p.q_i)),
 * so switching between them only changes the speed:
 *	 - rejection from the alias table, O(1) a draw, while duplicates are rare;
 *	 - rejection from a Fenwick tree with the user's items removed,
 *	   O(log I) a draw, once duplicates get frequent (steep popularity);
 *	 - exponential keys over all items, O(I log I), for users with many
 *	   items or when acceptance is so rare that rejection stalls.
 */
static int
select_items(Sampler *smp, Rng *rng, const double *pu, unsigned stamp,
			 int *sel, double *dots, int want)
{
	const double *Q = smp->Q;
	double		beta = smp->opts->beta;
	int			rank = smp->rank;
	unsigned   *mark = smp->mark;
	int			got = 0;
	int			removed = 0;
	int			k;

	if ((long long) want * 8 < smp->nitems)
	{
		long long	tries = 0,
					dupes = 0;
		long long	max_tries = 50LL * want + 64;
		long long	max_dupes = (long long) want + 32;

		while (got < want)
		{
			int			it = alias_draw(smp->alias, (uint32_t) smp->nitems, rng);
			double		d;

			if (mark[it] == stamp)
			{
				if (++dupes > max_dupes)
					break;
				continue;
			}
			if (++tries > max_tries)
				break;
			d = dot(pu, Q + (size_t) it * rank, rank);
			/* accept with probability 1 / (1 + exp(-beta * d)) */
			if (rng_uniform(rng) * (1.0 + exp(-beta * d)) < 1.0)
			{
				mark[it] = stamp;
				sel[got] = it;
				dots[got] = d;
				got++;
			}
		}

		if (got < want && dupes > max_dupes)
		{
			Fenwick    *f;

			if (smp->fenwick == NULL)
				smp->fenwick = fenwick_build(smp->w, smp->wsum, smp->nitems);
			f = smp->fenwick;
			for (; removed < got; removed++)
				fenwick_add(f, sel[removed], 0 - f->weight[sel[removed]]);
			tries = 0;
			max_tries = 50LL * (want - got) + 64;
			while (got < want && tries++ < max_tries)
			{
				int			it = fenwick_draw(f, rng);
				double		d = dot(pu, Q + (size_t) it * rank, rank);

				if (rng_uniform(rng) * (1.0 + exp(-beta * d)) < 1.0)
				{
					mark[it] = stamp;
					sel[got] = it;
					dots[got] = d;
					got++;
					fenwick_add(f, it, 0 - f->weight[it]);
					removed++;
				}
			}
		}
	}
	if (got < want)
		got = complete_by_keys(smp, rng, pu, stamp, sel, dots, got, want);

	/* put the removed items back into the Fenwick tree */
	for (k = 0; k < removed; k++)
		fenwick_add(smp->fenwick, sel[k], smp->fenwick->weight[sel[k]]);
	return got;
}

/* Generate everything; see the file header for the model. */
int
main(int argc, char **argv)
{
	Options		opts;
	double		t0 = now_seconds();
	int			rank,
				nitems,
				cap;
	long		nusers,
				u;
	double		factor_sd;
	double	   *P,
			   *Q,
			   *E = NULL,
			   *A = NULL,
			   *bu,
			   *bi,
			   *w,
			   *logw,
			   *dots,
			   *gaps;
	int		   *perm,
			   *nu,
			   *sel;
	unsigned   *mark;
	unsigned char *seen;
	Sampler		smp;
	double		wsum = 0.0;
	unsigned	stamp = 0;
	long long	nrows = 0;
	long		active_users = 0,
				active_items = 0;
	Rng			rng;
	int			i;

	if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0')
	{
		const char *slash = strrchr(argv[0], '/');

		progname = slash ? slash + 1 : argv[0];
	}
	parse_options(argc, argv, &opts);

	rank = (int) opts.rank;
	nitems = (int) opts.items;
	nusers = opts.users;
	cap = nitems / 2;
	factor_sd = pow((double) rank, -0.25);

	/* item popularity: a random permutation gives each item its rank */
	perm = xmalloc((size_t) nitems, sizeof(int));
	for (i = 0; i < nitems; i++)
		perm[i] = i;
	rng_init(&rng, opts.seed, STREAM_PERM, 0);
	for (i = nitems - 1; i > 0; i--)
	{
		int			j = (int) rng_below(&rng, (uint32_t) i + 1);
		int			t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	w = xmalloc((size_t) nitems, sizeof(double));
	logw = xmalloc((size_t) nitems, sizeof(double));
	for (i = 0; i < nitems; i++)
	{
		/* perm[i] is the item at popularity rank i + 1 */
		logw[perm[i]] = -opts.zipf * log((double) i + 1.0);
		w[perm[i]] = exp(logw[perm[i]]);
	}
	for (i = 0; i < nitems; i++)
		wsum += w[i];
	free(perm);

	/* planted factors and biases */
	P = xmalloc((size_t) nusers * rank, sizeof(double));
	bu = xmalloc((size_t) nusers, sizeof(double));
	Q = xmalloc((size_t) nitems * rank, sizeof(double));
	bi = xmalloc((size_t) nitems, sizeof(double));
	for (i = 0; i < nitems; i++)
	{
		rng_init(&rng, opts.seed, STREAM_ITEM, (uint64_t) i);
		draw_entity(&rng, Q + (size_t) i * rank, &bi[i], rank, factor_sd);
	}
	for (u = 0; u < nusers; u++)
	{
		rng_init(&rng, opts.seed, STREAM_USER, (uint64_t) u);
		draw_entity(&rng, P + (size_t) u * rank, &bu[u], rank, factor_sd);
	}

	/* item features and user attributes (see the file header) */
	if (opts.features > 0)
	{
		E = draw_latent(&opts, STREAM_FEATURE, opts.features, factor_sd);
		plant_item_features(&opts, Q, E);
	}
	if (opts.attribute_share > 0.0)
	{
		int			nvalues = 0;
		int			g;

		for (g = 0; g < N_ATTRIBUTE_GROUPS; g++)
			nvalues += attribute_groups[g].nvalues;
		A = draw_latent(&opts, STREAM_ATTRIBUTE, nvalues, factor_sd);
	}
	if (A != NULL || opts.user_attributes != NULL)
		plant_user_attributes(&opts, P, A);

	if (opts.truth != NULL)
		write_truth(&opts, P, bu, Q, bi, E, A);

	nu = draw_activity(&opts);

	/* per-user scratch */
	sel = xmalloc((size_t) cap, sizeof(int));
	dots = xmalloc((size_t) cap, sizeof(double));
	gaps = xmalloc((size_t) cap + 1, sizeof(double));
	mark = xmalloc((size_t) nitems, sizeof(unsigned));
	memset(mark, 0, (size_t) nitems * sizeof(unsigned));

	smp.opts = &opts;
	smp.nitems = nitems;
	smp.rank = rank;
	smp.Q = Q;
	smp.w = w;
	smp.logw = logw;
	smp.wsum = wsum;
	smp.alias = build_alias(w, nitems);
	smp.fenwick = NULL;
	smp.keyed = NULL;
	smp.mark = mark;

	seen = xmalloc((size_t) nitems, 1);
	memset(seen, 0, (size_t) nitems);

	setvbuf(stdout, NULL, _IOFBF, OUT_BUFSIZE);
	outbuf = xmalloc(OUT_BUFSIZE, 1);
	outlen = 0;

	if (opts.header)
	{
		const char *h = opts.kind == KIND_EXPLICIT ?
			"user_id,item_id,rating" : "user_id,item_id,count";

		outlen += (size_t) sprintf(outbuf, "%s%s\n", h,
								   opts.timestamps ? ",ts" : "");
	}

	for (u = 0; u < nusers; u++)
	{
		int			want = nu[u];
		int			got;
		const double *pu = P + (size_t) u * rank;
		long long	ts_start = 0;
		double		ts_span = 0.0,
					gap_total = 0.0,
					gap_cum = 0.0;
		char		uid[16];
		size_t		uidlen;
		int			k;

		if (want <= 0)
			continue;
		active_users++;
		rng_init(&rng, opts.seed, STREAM_SAMPLE, (uint64_t) u);
		if (++stamp == 0)
		{
			memset(mark, 0, (size_t) nitems * sizeof(unsigned));
			stamp = 1;
		}

		got = select_items(&smp, &rng, pu, stamp, sel, dots, want);

		/* random order within the user */
		for (k = got - 1; k > 0; k--)
		{
			int			j = (int) rng_below(&rng, (uint32_t) k + 1);
			int			ti = sel[k];
			double		td = dots[k];

			sel[k] = sel[j];
			dots[k] = dots[j];
			sel[j] = ti;
			dots[j] = td;
		}

		/* activity window and sorted uniform times via exponential gaps */
		if (opts.timestamps)
		{
			double		range = (double) (TS_MAX - TS_MIN);

			ts_span = range * (0.02 + 0.98 * rng_uniform(&rng));
			ts_start = TS_MIN + (long long) floor(rng_uniform(&rng) * (range - ts_span));
			for (k = 0; k <= got; k++)
			{
				gaps[k] = -log(rng_uniform(&rng));
				gap_total += gaps[k];
			}
		}

		uidlen = (size_t) (put_uint(uid, (uint64_t) u + 1) - uid);
		for (k = 0; k < got; k++)
		{
			int			it = sel[k];
			char	   *p;

			if (outlen > OUT_BUFSIZE - MAX_LINE)
				out_flush();
			p = outbuf + outlen;
			memcpy(p, uid, uidlen);
			p += uidlen;
			*p++ = ',';
			p = put_uint(p, (uint64_t) it + 1);
			*p++ = ',';

			if (opts.kind == KIND_EXPLICIT)
			{
				double		v = opts.mean + bu[u] + bi[it] + dots[k]
					+ opts.noise * rng_normal(&rng);

				if (opts.continuous)
					p = put_fixed4(p, v);
				else
				{
					double		r = floor(v + 0.5);

					*p++ = (char) ('0' + (r < 1.0 ? 1 : (r > 5.0 ? 5 : (int) r)));
				}
			}
			else
			{
				/* 1 + geometric count on {0, 1, ...} with mean m */
				double		m = 3.0 / (1.0 + exp(-opts.beta * dots[k]));
				double		g = floor(log(rng_uniform(&rng)) / log(m / (1.0 + m)));

				if (!(g >= 0.0))
					g = 0.0;
				if (g > 1e9)
					g = 1e9;
				p = put_uint(p, (uint64_t) g + 1);
			}

			if (opts.timestamps)
			{
				long long	ts;

				gap_cum += gaps[k];
				ts = ts_start + (long long) floor(gap_cum / gap_total * ts_span);
				if (ts >= TS_MAX)
					ts = TS_MAX - 1;
				*p++ = ',';
				p = put_uint(p, (uint64_t) ts);
			}
			*p++ = '\n';
			outlen = (size_t) (p - outbuf);

			if (!seen[it])
			{
				seen[it] = 1;
				active_items++;
			}
		}
		nrows += got;
	}
	out_flush();
	if (fflush(stdout) != 0 || ferror(stdout))
		fatal("error writing to stdout");

	fprintf(stderr, "%s: wrote %lld rows; %ld users and %ld items with >=1 row; %.2f s\n",
			progname, nrows, active_users, active_items, now_seconds() - t0);

	free(outbuf);
	free(smp.keyed);
	if (smp.fenwick != NULL)
	{
		free(smp.fenwick->tree);
		free(smp.fenwick->weight);
		free(smp.fenwick);
	}
	free(seen);
	free(mark);
	free(gaps);
	free(dots);
	free(sel);
	free(nu);
	free(smp.alias);
	free(w);
	free(P);
	free(Q);
	free(bu);
	free(bi);
	free(E);
	free(A);
	free(logw);
	return 0;
}
