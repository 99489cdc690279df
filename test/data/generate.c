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
 * Random streams are derived from (seed, purpose, entity), so, for
 * instance, an item's parameters do not depend on the number of users.
 * Memory is O(U * r + I * r) plus one user's scratch; the rows are
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
} Options;

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

static const char *progname = "generate";

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
			"Options also accept the form --name=value.\n"
			"Constraints: min-per-user <= floor(items/2) and\n"
			"users * min-per-user <= rows <= users * floor(items/2).\n",
			progname);
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
			strcmp(name, "min-per-user") != 0 && strcmp(name, "truth") != 0)
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
		else
		{
			if (*val == '\0')
				bad_usage("option --truth needs a file name%s%s", "", "");
			opts->truth = val;
		}
	}

	/* cross-option checks */
	if (opts->continuous && opts->kind != KIND_EXPLICIT)
		bad_usage("--continuous requires --kind explicit%s%s", "", "");
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

/* Write the planted model to a CSV file. */
static void
write_truth(const Options *opts, const double *P, const double *bu,
			const double *Q, const double *bi)
{
	FILE	   *f = fopen(opts->truth, "w");
	int			rank = (int) opts->rank;
	long		n;
	int			k;

	if (f == NULL)
	{
		fprintf(stderr, "%s: could not open \"%s\" for writing: %s\n",
				progname, opts->truth, strerror(errno));
		exit(1);
	}
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
	if (ferror(f) || fclose(f) != 0)
	{
		fprintf(stderr, "%s: could not write \"%s\"\n", progname, opts->truth);
		exit(1);
	}
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
	if (opts.truth != NULL)
		write_truth(&opts, P, bu, Q, bi);

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
	free(logw);
	return 0;
}
