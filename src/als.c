/*-------------------------------------------------------------------------
 *
 * als.c
 *	  Alternating least squares for explicit feedback, on plain arrays.
 *
 * The model (Koren, Bell and Volinsky, IEEE Computer 2009) predicts
 *
 *		r_ui ~ mu + b_u + b_i + p_u . q_i
 *
 * and training minimizes the squared error plus ALS-WR regularization (Zhou
 * et al., AAIM 2008), which weights each row's penalty by its number of
 * ratings:
 *
 *		sum (r_ui - pred)^2 + lambda (sum_u n_u (|p_u|^2 + b_u^2)
 *									  + sum_i n_i (|q_i|^2 + b_i^2))
 *
 * With the item side fixed, each user's [p_u, b_u] is an independent ridge
 * regression on the augmented vectors x_i = [q_i, 1] against the targets
 * r_ui - mu - b_i; its normal equations are
 *
 *		(X^T X + lambda n_u I) w = X^T y
 *
 * A half-step gathers a row's x_i in blocks, forms X^T X with BLAS-3 syrk,
 * and solves with a double-precision Cholesky factorization.  The als_solve
 * aggregate (aggregate.c) builds the same equations one input row at a time
 * with AlsAccumulateRow and solves them with the same AlsSolve.
 *
 * Nothing here calls fmgr or SPI; it only needs palloc and interrupts.
 *
 * IDENTIFICATION
 *	  src/als.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "als.h"
#include "linalg.h"
#include "miscadmin.h"
#include "utils/memutils.h"

/* Rows solved between interrupt checks; keeps cancel well under a second */
#define ALS_INTERRUPT_ROWS 64

/* Standard deviation of the initial factors */
#define ALS_INIT_STDDEV 0.1

/* Bytes the factor arrays of a model take */
Size
AlsModelMemory(int k, int nusers, int nitems)
{
	Size		rows = add_size(nusers, nitems);

	return mul_size(rows, mul_size(k + 1, sizeof(float)));
}

/* Bytes a workspace for k factors takes */
Size
AlsWorkspaceMemory(int k)
{
	Size		d = k + 1;

	return ALS_GATHER_ROWS * (d + 1) * sizeof(float) + (d * d + d) * sizeof(float)
		+ d * d * sizeof(double) + d * sizeof(double);
}

/* One standard normal draw (Box-Muller; PG15 has no pg_prng_double_normal) */
static double
NormalDraw(pg_prng_state *rng)
{
	double		u1 = 1.0 - pg_prng_double(rng);	/* (0, 1], safe for log */
	double		u2 = pg_prng_double(rng);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/*
 * Allocate a model and draw its initial user factors from the seed.
 *
 * Users are indexed in ascending id order, so the same seed and data give
 * the same model whatever order the source returns its rows in.  Item
 * factors start at zero: the first half-step solves the items.
 */
void
AlsModelInit(AlsModel *m, int k, int nusers, int nitems, double mean,
			 uint64 seed)
{
	pg_prng_state rng;

	m->k = k;
	m->nusers = nusers;
	m->nitems = nitems;
	m->mean = mean;
	m->user_factors = palloc_extended(sizeof(float) * k * (Size) nusers,
									  MCXT_ALLOC_HUGE);
	m->user_bias = palloc0_array(float, nusers);
	m->item_factors = palloc_extended(sizeof(float) * k * (Size) nitems,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	m->item_bias = palloc0_array(float, nitems);

	pg_prng_seed(&rng, seed);
	for (Size i = 0; i < (Size) k * nusers; i++)
		m->user_factors[i] = (float) (ALS_INIT_STDDEV * NormalDraw(&rng));
}

/* Allocate scratch space for rows with d unknowns */
void
AlsWorkspaceInit(AlsWorkspace *ws, int d)
{
	ws->d = d;
	ws->gather = palloc_array(float, (Size) ALS_GATHER_ROWS * d);
	ws->targets = palloc_array(float, ALS_GATHER_ROWS);
	ws->rhs = palloc_array(float, d);
	ws->gram = palloc_array(float, (Size) d * d);
	ws->a = palloc_array(double, (Size) d * d);
	ws->b = palloc_array(double, d);
}

/* Offset of column j of a packed upper-triangular matrix */
#define PACKED_COLUMN(j) ((Size) (j) * ((j) + 1) / 2)

/* Doubles in the packed upper triangle of a d x d matrix */
Size
AlsPackedSize(int d)
{
	return PACKED_COLUMN(d);
}

/*
 * Add one observation (x, y) to normal equations: a += x x^T, b += y x.
 *
 * a is the packed upper triangle of a d x d matrix (LAPACK's 'U' packed
 * layout), half the size of a full one: the aggregate keeps one per group
 * and sends it between parallel workers.
 */
void
AlsAccumulateRow(double *a, double *b, int d, const float *x, double y)
{
	for (int j = 0; j < d; j++)
	{
		double		xj = x[j];
		double	   *col = a + PACKED_COLUMN(j);

		/* Auto-vectorized */
		for (int i = 0; i <= j; i++)
			col[i] += (double) x[i] * xj;
		b[j] += y * xj;
	}
}

/* Expand a packed upper triangle into the upper part of a full matrix */
void
AlsUnpack(const double *packed, double *a, int d)
{
	for (int j = 0; j < d; j++)
		memcpy(a + (Size) j * d, packed + PACKED_COLUMN(j), sizeof(double) * (j + 1));
}

/*
 * Solve (A + lambda I) w = b in place; w replaces b, A is destroyed.
 *
 * Only the upper triangle of the column-major d x d matrix A is read.
 * Returns 0 on success, or > 0 if the system is not positive definite.
 */
int
AlsSolve(double *a, double *b, int d, double lambda)
{
	for (int i = 0; i < d; i++)
		a[(Size) i * d + i] += lambda;
	return LinalgCholeskySolve(d, a, b);
}

/*
 * Solve one row: given the row's entries (cols, vals, n of them) and the
 * other side's factors, write the row's k factors and its bias.
 *
 * Returns the LinalgCholeskySolve result (0 on success).
 */
static int
AlsExplicitRow(const int32 *cols, const float *vals, int64 n, double mean,
			   const float *other_factors, const float *other_bias,
			   int k, double regularization, AlsWorkspace *ws,
			   float *factors_out, float *bias_out)
{
	int			d = k + 1;
	double	   *a = ws->a;
	double	   *b = ws->b;
	int			info;

	memset(a, 0, sizeof(double) * d * d);
	memset(b, 0, sizeof(double) * d);

	for (int64 start = 0; start < n; start += ALS_GATHER_ROWS)
	{
		int			m = (int) Min(ALS_GATHER_ROWS, n - start);

		/* Gather [q_i, 1] rows and their targets */
		for (int j = 0; j < m; j++)
		{
			int32		col = cols[start + j];
			float	   *x = ws->gather + (Size) j * d;

			memcpy(x, other_factors + (Size) col * k, sizeof(float) * k);
			x[k] = 1.0f;
			ws->targets[j] = (float) (vals[start + j] - mean - other_bias[col]);
		}

		/*
		 * The gathered block is d x m column-major; its Gram matrix (BLAS-3)
		 * and X^T y (BLAS-2) come in float and are summed in double across
		 * blocks, so rows with many entries do not lose precision.
		 */
		LinalgSyrk(d, m, ws->gather, d, ws->gram, d);
		LinalgGemvN(d, m, ws->gather, d, ws->targets, ws->rhs);
		for (int j = 0; j < d; j++)
		{
			const float *g = ws->gram + (Size) j * d;
			double	   *col = a + (Size) j * d;

			/* Auto-vectorized */
			for (int i = 0; i <= j; i++)
				col[i] += g[i];
			b[j] += ws->rhs[j];
		}
	}

	/* ALS-WR: the penalty grows with the row's number of ratings */
	info = AlsSolve(a, b, d, regularization * (double) n);
	if (info != 0)
		return info;

	for (int i = 0; i < k; i++)
		factors_out[i] = (float) b[i];
	*bias_out = (float) b[k];
	return 0;
}

/*
 * One explicit ALS half-step: re-solve every row of `rows` with the other
 * side fixed.
 *
 * Returns -1 on success, or the index of the first row whose normal
 * equations were not positive definite (only possible with zero
 * regularization), which the caller reports.
 */
int
AlsExplicitHalfStep(const RecsysSparse *rows, double mean,
					const float *other_factors, const float *other_bias,
					float *factors, float *bias, int k,
					double regularization, AlsWorkspace *ws)
{
	for (int r = 0; r < rows->nrows; r++)
	{
		int64		begin = rows->indptr[r];
		int64		n = rows->indptr[r + 1] - begin;

		if ((r % ALS_INTERRUPT_ROWS) == 0)
			CHECK_FOR_INTERRUPTS();

		if (AlsExplicitRow(rows->indices + begin, rows->values + begin, n,
						   mean, other_factors, other_bias, k, regularization,
						   ws, factors + (Size) r * k, bias + r) != 0)
			return r;
	}
	return -1;
}

/* Sum of squares of a float vector, in double */
static inline double
SquaredNorm(const float *x, int k)
{
	double		s = 0.0;

	for (int i = 0; i < k; i++)
		s += (double) x[i] * x[i];
	return s;
}

/* Regularization term of one side: sum_r n_r (|f_r|^2 + b_r^2) */
static double
PenaltyOf(const RecsysSparse *rows, const float *factors, const float *bias,
		  int k)
{
	double		total = 0.0;

	for (int r = 0; r < rows->nrows; r++)
	{
		double		n = (double) (rows->indptr[r + 1] - rows->indptr[r]);

		total += n * (SquaredNorm(factors + (Size) r * k, k)
					  + (double) bias[r] * bias[r]);
	}
	return total;
}

/*
 * Training loss: the regularized objective divided by the number of
 * interactions (so it is comparable across data sizes), and training RMSE.
 */
AlsLoss
AlsExplicitLoss(const AlsModel *m, const RecsysSparse *by_user,
				const RecsysSparse *by_item, double regularization)
{
	int			k = m->k;
	double		sse = 0.0;
	AlsLoss		result;

	for (int u = 0; u < by_user->nrows; u++)
	{
		const float *p = m->user_factors + (Size) u * k;
		double		base = m->mean + m->user_bias[u];

		if ((u % (ALS_INTERRUPT_ROWS * 16)) == 0)
			CHECK_FOR_INTERRUPTS();

		for (int64 e = by_user->indptr[u]; e < by_user->indptr[u + 1]; e++)
		{
			int32		i = by_user->indices[e];
			double		err;

			err = by_user->values[e] - (base + m->item_bias[i] +
										AlsDot(p, m->item_factors + (Size) i * k, k));
			sse += err * err;
		}
	}

	result.rmse = sqrt(sse / (double) by_user->nnz);
	result.loss = (sse + regularization *
				   (PenaltyOf(by_user, m->user_factors, m->user_bias, k) +
					PenaltyOf(by_item, m->item_factors, m->item_bias, k)))
		/ (double) by_user->nnz;
	return result;
}
