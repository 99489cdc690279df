/*-------------------------------------------------------------------------
 *
 * experiment.c
 *	  A/B experiments: portable user assignment and the statistics of the
 *	  experiment report.
 *
 * Assignment.  A user's place in an experiment is a pure function of the
 * experiment's salt and the user id, so every session, server, replica and
 * application computes the same answer without storing an assignment:
 *
 *		h = SipHash-2-4(key, salt || le64(user_id))
 *		u = (h >> 11) / 2^53						(53 bits, in [0, 1))
 *
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * INDOCRYPT 2012) is used with the fixed key 00 01 02 ... 0f, the key of the
 * reference test vectors, so any implementation (for example OpenSSL's
 * "openssl mac -macopt hexkey:000102030405060708090a0b0c0d0e0f SIPHASH")
 * reproduces the hash.  The salt is taken as the bytes of the text in the
 * database encoding, followed by the user id as 8 bytes little-endian.  The
 * arithmetic is on fixed-width unsigned integers, so the result does not
 * depend on the platform's byte order or on PostgreSQL's own hash functions
 * (hashtext may change between major versions).
 *
 * With integer weights w_1..w_k and W = sum w_i, the user gets the first
 * variant i whose cumulative weight exceeds slot = floor(u * W).  The slot
 * is computed exactly in integers, never in floating point, so a user at a
 * boundary lands in the same variant on every machine.
 *
 * Statistics (formulas in doc/experiments.md):
 *	- wilson_interval(): Wilson score interval of a proportion.
 *	- two_proportion_test(): difference of two proportions with Newcombe's
 *	  hybrid score interval (Statistics in Medicine 17:873, 1998, method 10)
 *	  and the pooled two-proportion z-test with a two-sided p-value.
 *	- sample_ratio_test(): chi-square goodness-of-fit of observed counts
 *	  against the traffic weights (sample ratio mismatch).
 * The normal distribution comes from the C library's erfc(); its quantile
 * is found by bisection on erfc, which is exact to the last bit or two of
 * a double; the chi-square tail is the regularized upper incomplete gamma
 * function.
 *
 * IDENTIFICATION
 *	  src/experiment.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* SipHash key: the bytes 00 01 ... 0f read as two little-endian words */
#define SIPHASH_K0	UINT64CONST(0x0706050403020100)
#define SIPHASH_K1	UINT64CONST(0x0f0e0d0c0b0a0908)

/* Rotate a 64-bit word left by b bits */
#define ROTL64(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

/* One SipRound on the four state words */
#define SIPROUND(v0, v1, v2, v3) \
	do { \
		(v0) += (v1); (v1) = ROTL64((v1), 13); (v1) ^= (v0); (v0) = ROTL64((v0), 32); \
		(v2) += (v3); (v3) = ROTL64((v3), 16); (v3) ^= (v2); \
		(v0) += (v3); (v3) = ROTL64((v3), 21); (v3) ^= (v0); \
		(v2) += (v1); (v1) = ROTL64((v1), 17); (v1) ^= (v2); (v2) = ROTL64((v2), 32); \
	} while (0)

/* Bits of the hash kept for the bucket: the 53 of a double's mantissa */
#define BUCKET_BITS		53

/* Read 8 bytes as a little-endian word, whatever the machine's byte order */
static uint64
ReadLE64(const unsigned char *p)
{
	uint64		w = 0;

	for (int i = 7; i >= 0; i--)
		w = (w << 8) | p[i];
	return w;
}

/* SipHash-2-4 of a byte string with the fixed reference key */
static uint64
SipHash24(const unsigned char *msg, size_t len)
{
	uint64		v0 = SIPHASH_K0 ^ UINT64CONST(0x736f6d6570736575);
	uint64		v1 = SIPHASH_K1 ^ UINT64CONST(0x646f72616e646f6d);
	uint64		v2 = SIPHASH_K0 ^ UINT64CONST(0x6c7967656e657261);
	uint64		v3 = SIPHASH_K1 ^ UINT64CONST(0x7465646279746573);
	size_t		full = len - len % 8;
	uint64		last;

	/* Compression: two rounds per 8-byte block */
	for (size_t off = 0; off < full; off += 8)
	{
		uint64		m = ReadLE64(msg + off);

		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}

	/* The last block: the remaining bytes, and the length mod 256 on top */
	last = ((uint64) (len & 0xff)) << 56;
	for (size_t i = 0; i < len % 8; i++)
		last |= ((uint64) msg[full + i]) << (8 * i);
	v3 ^= last;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= last;

	/* Finalization: four rounds */
	v2 ^= 0xff;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The user's 53-bit bucket for a salt: the top 53 bits of the SipHash */
static uint64
UserBucketBits(text *salt, int64 user_id)
{
	size_t		slen = VARSIZE_ANY_EXHDR(salt);
	unsigned char *msg = palloc(slen + 8);
	uint64		uid = (uint64) user_id;
	uint64		h;

	memcpy(msg, VARDATA_ANY(salt), slen);
	/* Two's complement user id, least significant byte first */
	for (int i = 0; i < 8; i++)
		msg[slen + i] = (unsigned char) ((uid >> (8 * i)) & 0xff);
	h = SipHash24(msg, slen + 8);
	pfree(msg);
	return h >> (64 - BUCKET_BITS);
}

/*
 * floor(m * total / 2^53) in integers, for m < 2^53 and total < 2^32.
 * With m = hi 2^32 + lo, floor((hi total 2^32 + lo total) / 2^53) equals
 * (hi total + floor(lo total / 2^32)) >> 21; no term overflows 64 bits
 * (hi total < 2^53, lo total < 2^64).
 */
static uint64
ScaleBucket(uint64 m, uint64 total)
{
	uint64		hi = m >> 32;
	uint64		lo = m & UINT64CONST(0xffffffff);

	return (hi * total + ((lo * total) >> 32)) >> (BUCKET_BITS - 32);
}

/* Check a 1-D array without NULLs; returns its number of elements */
static int
CheckArray(ArrayType *a, const char *what)
{
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	if (ARR_HASNULL(a) && array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain nulls", what)));
	return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
}

/* Check a confidence level: strictly between 0 and 1 */
static void
CheckConfidence(double confidence)
{
	if (!(confidence > 0.0 && confidence < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("confidence must be between 0 and 1 (exclusive), got %g", confidence),
				 errhint("Use for example 0.95 for 95%% intervals.")));
}

/* Check a count of successes out of trials: 0 <= successes <= trials */
static void
CheckCounts(int64 successes, int64 trials, const char *what)
{
	if (trials < 0 || successes < 0 || successes > trials)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must satisfy 0 <= successes <= trials, got " INT64_FORMAT " of " INT64_FORMAT,
						what, successes, trials)));
}

/*
 * The standard normal quantile z with two-sided tail probability alpha,
 * that is P(|Z| > z) = alpha = erfc(z / sqrt 2), for 0 < alpha < 1.
 * erfc is decreasing, so bisection on [0, 40] converges to the double
 * nearest the root; about 60 halvings, run once per report row.
 */
static double
NormalTwoSidedQuantile(double alpha)
{
	double		lo = 0.0;
	double		hi = 40.0;

	for (;;)
	{
		double		mid = lo + (hi - lo) / 2.0;

		if (mid <= lo || mid >= hi)
			break;
		if (erfc(mid / M_SQRT2) > alpha)
			lo = mid;
		else
			hi = mid;
	}
	return lo + (hi - lo) / 2.0;
}

/*
 * Wilson score interval of x successes in n > 0 trials with normal
 * quantile z:  (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
 * The ends are exactly 0 for x = 0 and 1 for x = n.
 */
static void
Wilson(int64 x, int64 n, double z, double *low, double *high)
{
	double		nn = (double) n;
	double		p = (double) x / nn;
	double		z2 = z * z;
	double		denom = 1.0 + z2 / nn;
	double		center = (p + z2 / (2.0 * nn)) / denom;
	double		half = z / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));

	*low = (x == 0) ? 0.0 : Max(0.0, center - half);
	*high = (x == n) ? 1.0 : Min(1.0, center + half);
}

/*
 * Regularized upper incomplete gamma function Q(a, x) = Gamma(a, x) /
 * Gamma(a), for a > 0 and x >= 0: by the power series of P = 1 - Q when
 * x < a + 1, by the continued fraction of Q otherwise (evaluated with the
 * modified Lentz method); both converge fast in their region.
 */
static double
GammaQ(double a, double x)
{
	const double eps = DBL_EPSILON;
	const double tiny = DBL_MIN / DBL_EPSILON;
	double		logprefix;

	if (x <= 0.0)
		return 1.0;
	/* x^a e^-x / Gamma(a), in logarithms */
	logprefix = a * log(x) - x - lgamma(a);

	if (x < a + 1.0)
	{
		/* P(a, x) = x^a e^-x / Gamma(a) * sum_n x^n / (a (a+1) ... (a+n)) */
		double		term = 1.0 / a;
		double		sum = term;

		for (int n = 1; n < 10000; n++)
		{
			term *= x / (a + n);
			sum += term;
			if (fabs(term) < fabs(sum) * eps)
				break;
		}
		return Max(0.0, 1.0 - sum * exp(logprefix));
	}
	else
	{
		/*
		 * Q(a, x) = x^a e^-x / Gamma(a) * 1 / (x+1-a - 1(1-a) / (x+3-a -
		 * 2(2-a) / (x+5-a - ...)))
		 */
		double		b = x + 1.0 - a;
		double		c = 1.0 / tiny;
		double		d = 1.0 / b;
		double		f = d;

		for (int i = 1; i < 10000; i++)
		{
			double		an = -i * (i - a);
			double		delta;

			b += 2.0;
			d = an * d + b;
			if (fabs(d) < tiny)
				d = tiny;
			c = b + an / c;
			if (fabs(c) < tiny)
				c = tiny;
			d = 1.0 / d;
			delta = d * c;
			f *= delta;
			if (fabs(delta - 1.0) < eps)
				break;
		}
		return Min(1.0, exp(logprefix) * f);
	}
}

/* Build a result tuple of float8 columns (NaN input marks a NULL) */
static Datum
Float8Record(FunctionCallInfo fcinfo, const double *vals, int n)
{
	TupleDesc	tupdesc;
	Datum	   *values = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (tupdesc->natts != n)
		elog(ERROR, "expected %d result columns, got %d", n, tupdesc->natts);
	for (int i = 0; i < n; i++)
	{
		nulls[i] = isnan(vals[i]);
		values[i] = Float8GetDatum(vals[i]);
	}
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* The user's bucket in [0, 1) for a salt: 53 bits of SipHash-2-4 */
PG_FUNCTION_INFO_V1(recsys_experiment_bucket);

/*
 * experiment_bucket(salt text, user_id bigint) -> double precision
 */
Datum
recsys_experiment_bucket(PG_FUNCTION_ARGS)
{
	uint64		m = UserBucketBits(PG_GETARG_TEXT_PP(0), PG_GETARG_INT64(1));

	/* m < 2^53, so the double is exact */
	PG_RETURN_FLOAT8(ldexp((double) m, -BUCKET_BITS));
}

/* The 1-based variant a user gets for a salt and integer traffic weights */
PG_FUNCTION_INFO_V1(recsys_assign_variant);

/*
 * assign_variant(salt text, user_id bigint, weights integer[]) -> integer
 */
Datum
recsys_assign_variant(PG_FUNCTION_ARGS)
{
	text	   *salt = PG_GETARG_TEXT_PP(0);
	int64		user_id = PG_GETARG_INT64(1);
	ArrayType  *weights = PG_GETARG_ARRAYTYPE_P(2);
	int			n = CheckArray(weights, "weights");
	int32	   *w;
	int64		total = 0;
	uint64		slot;
	int64		cumulative = 0;

	if (ARR_ELEMTYPE(weights) != INT4OID)
		elog(ERROR, "weights must be an integer array");
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights must not be empty")));
	w = (int32 *) ARR_DATA_PTR(weights);
	for (int i = 0; i < n; i++)
	{
		if (w[i] <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight %d must be a positive integer, got %d", i + 1, w[i])));
		total += w[i];
	}
	if (total > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("weights must add up to at most %d, got " INT64_FORMAT, PG_INT32_MAX, total),
				 errhint("Weights are relative: divide them by a common factor.")));

	slot = ScaleBucket(UserBucketBits(salt, user_id), (uint64) total);
	for (int i = 0; i < n; i++)
	{
		cumulative += w[i];
		if (slot < (uint64) cumulative)
			PG_RETURN_INT32(i + 1);
	}
	/* slot < total always; the loop has returned */
	elog(ERROR, "variant slot " UINT64_FORMAT " out of range " INT64_FORMAT, slot, total);
	PG_RETURN_NULL();
}

/* Wilson score interval of a proportion */
PG_FUNCTION_INFO_V1(recsys_wilson_interval);

/*
 * wilson_interval(successes bigint, trials bigint, confidence float8,
 *				   OUT low float8, OUT high float8)
 * Both ends are NULL when there are no trials.
 */
Datum
recsys_wilson_interval(PG_FUNCTION_ARGS)
{
	int64		x = PG_GETARG_INT64(0);
	int64		n = PG_GETARG_INT64(1);
	double		confidence = PG_GETARG_FLOAT8(2);
	double		out[2] = {NAN, NAN};

	CheckCounts(x, n, "successes and trials");
	CheckConfidence(confidence);
	if (n > 0)
		Wilson(x, n, NormalTwoSidedQuantile(1.0 - confidence), &out[0], &out[1]);
	return Float8Record(fcinfo, out, 2);
}

/* Treatment minus control: difference, Newcombe interval, pooled z-test */
PG_FUNCTION_INFO_V1(recsys_two_proportion_test);

/*
 * two_proportion_test(control_successes bigint, control_trials bigint,
 *					   successes bigint, trials bigint, confidence float8,
 *					   OUT difference, OUT low, OUT high, OUT z, OUT p_value)
 *
 * difference = p2 - p1 with p1 = x1/n1 (control) and p2 = x2/n2.
 * Everything is NULL when either side has no trials; z and p_value are NULL
 * when the pooled proportion is 0 or 1 (no variation: the test is
 * undefined).
 */
Datum
recsys_two_proportion_test(PG_FUNCTION_ARGS)
{
	int64		x1 = PG_GETARG_INT64(0);
	int64		n1 = PG_GETARG_INT64(1);
	int64		x2 = PG_GETARG_INT64(2);
	int64		n2 = PG_GETARG_INT64(3);
	double		confidence = PG_GETARG_FLOAT8(4);
	double		out[5] = {NAN, NAN, NAN, NAN, NAN};

	CheckCounts(x1, n1, "control successes and trials");
	CheckCounts(x2, n2, "successes and trials");
	CheckConfidence(confidence);

	if (n1 > 0 && n2 > 0)
	{
		double		zq = NormalTwoSidedQuantile(1.0 - confidence);
		double		p1 = (double) x1 / (double) n1;
		double		p2 = (double) x2 / (double) n2;
		double		l1,
					u1,
					l2,
					u2;
		double		pooled = (double) (x1 + x2) / ((double) n1 + (double) n2);
		double		se = sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2));

		Wilson(x1, n1, zq, &l1, &u1);
		Wilson(x2, n2, zq, &l2, &u2);
		out[0] = p2 - p1;
		/* Newcombe's hybrid score interval from the two Wilson intervals */
		out[1] = out[0] - sqrt((p2 - l2) * (p2 - l2) + (u1 - p1) * (u1 - p1));
		out[2] = out[0] + sqrt((u2 - p2) * (u2 - p2) + (p1 - l1) * (p1 - l1));
		if (se > 0.0)
		{
			out[3] = (p2 - p1) / se;
			/* Two-sided: P(|Z| >= |z|) = erfc(|z| / sqrt 2) */
			out[4] = erfc(fabs(out[3]) / M_SQRT2);
		}
	}
	return Float8Record(fcinfo, out, 5);
}

/* Chi-square test of observed counts against expected shares */
PG_FUNCTION_INFO_V1(recsys_sample_ratio_test);

/*
 * sample_ratio_test(observed bigint[], weights float8[]) -> float8
 *
 * p-value of Pearson's chi-square goodness-of-fit test with k - 1 degrees
 * of freedom: X^2 = sum (o_i - e_i)^2 / e_i, e_i = N w_i / sum w, and
 * p = Q((k - 1) / 2, X^2 / 2).  NULL when nothing was observed.
 */
Datum
recsys_sample_ratio_test(PG_FUNCTION_ARGS)
{
	ArrayType  *observed = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *weights = PG_GETARG_ARRAYTYPE_P(1);
	int			k = CheckArray(observed, "observed");
	int			kw = CheckArray(weights, "weights");
	int64	   *o;
	double	   *w;
	double		total_w = 0.0;
	double		total_o = 0.0;
	double		chi2 = 0.0;

	if (ARR_ELEMTYPE(observed) != INT8OID || ARR_ELEMTYPE(weights) != FLOAT8OID)
		elog(ERROR, "sample_ratio_test expects bigint[] and double precision[]");
	if (k != kw)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("observed and weights must have the same length, got %d and %d", k, kw)));
	if (k < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sample_ratio_test needs at least 2 groups, got %d", k)));
	o = (int64 *) ARR_DATA_PTR(observed);
	w = (double *) ARR_DATA_PTR(weights);
	for (int i = 0; i < k; i++)
	{
		if (o[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("observed count %d must not be negative, got " INT64_FORMAT, i + 1, o[i])));
		if (!(w[i] > 0.0) || isinf(w[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("weight %d must be positive and finite, got %g", i + 1, w[i])));
		total_w += w[i];
		total_o += (double) o[i];
	}
	if (total_o == 0.0)
		PG_RETURN_NULL();
	for (int i = 0; i < k; i++)
	{
		double		e = total_o * w[i] / total_w;
		double		d = (double) o[i] - e;

		chi2 += d * d / e;
	}
	PG_RETURN_FLOAT8(GammaQ((k - 1) / 2.0, chi2 / 2.0));
}
