/*-------------------------------------------------------------------------
 *
 * als.c
 *	  Alternating least squares for explicit and implicit feedback.
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
 * Implicit feedback (Hu, Koren and Volinsky, ICDM 2008) has no biases; every
 * user-item pair has preference p_ui = 1 if observed, else 0, with
 * confidence c_ui = 1 + w_ui (w from the observed value, see train.c), and
 * training minimizes
 *
 *		sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)
 *
 * Each row solves (Y^T Y + Y^T (C_u - I) Y + lambda I) x_u = Y^T C_u p_u
 * exactly (Cholesky), or approximately by a few conjugate-gradient steps
 * warm-started from the previous factors, or by one sweep of block
 * coordinate descent (iALS++, the subspace solver below).
 *
 * The same row-level functions serve fold-in and explanations at serving
 * time (recommend.c), so there is one implementation of each solve.
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

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SUBSPACE_X86 1
#include <immintrin.h>
#endif

#include "als.h"
#include "linalg.h"
#include "miscadmin.h"
#include "parallel.h"
#include "simd.h"
#include "utils/guc.h"
#include "utils/memutils.h"

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
AlsWorkspaceMemory(int k, int64 rows)
{
	Size		d = k + 1;
	Size		cap = Max(rows, ALS_GATHER_ROWS);

	return cap * (d + 1) * sizeof(float) + (2 * d * d + 4 * d) * sizeof(float)
		+ 2 * d * d * sizeof(double) + d * sizeof(double);
}

/*
 * Initial factors drawn per block: the uniforms of a block (16 bytes per
 * factor, 1 MB) are drawn in order on the backend's thread, then turned
 * into normal draws on the training threads
 */
#define INIT_DRAW_BLOCK 65536

/* A block of uniform pairs to turn into initial factors, for ParallelFor */
typedef struct InitDrawTask
{
	const double *uniforms;		/* u1, u2 of each factor */
	float	   *out;
} InitDrawTask;

/*
 * Factors [begin, end) of a block: one standard normal draw each from its
 * pair of uniforms (Box-Muller; PG15 has no pg_prng_double_normal), times
 * the initial scale.  Why on threads: the logarithm and cosine of every
 * user factor were a fifth of a 1M training's setup; the pseudo-random
 * sequence itself stays sequential, so the factors are those of one thread.
 */
static bool
InitDrawRows(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	InitDrawTask *t = (InitDrawTask *) arg;

	for (int i = begin; i < end; i++)
	{
		double		u1 = t->uniforms[2 * i];
		double		u2 = t->uniforms[2 * i + 1];

		t->out[i] = (float) (ALS_INIT_STDDEV *
							 (sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2)));
	}
	return true;
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
	Size		total = (Size) k * nusers;
	double	   *uniforms;

	m->k = k;
	m->nusers = nusers;
	m->nitems = nitems;
	m->mean = mean;
	m->user_factors = palloc_extended(sizeof(float) * k * (Size) nusers,
									  MCXT_ALLOC_HUGE);
	RecsysPrefault(m->user_factors, sizeof(float) * k * (Size) nusers);
	m->user_bias = palloc0_array(float, nusers);
	/* Mapped in bulk before it is zeroed (RecsysPrefault) */
	m->item_factors = palloc_extended(sizeof(float) * k * (Size) nitems,
									  MCXT_ALLOC_HUGE);
	RecsysPrefault(m->item_factors, sizeof(float) * k * (Size) nitems);
	memset(m->item_factors, 0, sizeof(float) * k * (Size) nitems);
	m->item_bias = palloc0_array(float, nitems);

	pg_prng_seed(&rng, seed);
	if (total == 0)
		return;
	uniforms = palloc(sizeof(double) * 2 * Min(total, INIT_DRAW_BLOCK));
	for (Size start = 0; start < total; start += INIT_DRAW_BLOCK)
	{
		int			n = (int) Min(total - start, INIT_DRAW_BLOCK);
		InitDrawTask task = {uniforms, m->user_factors + start};

		for (int i = 0; i < n; i++)
		{
			uniforms[2 * i] = 1.0 - pg_prng_double(&rng);	/* (0, 1], for log */
			uniforms[2 * i + 1] = pg_prng_double(&rng);
		}
		(void) ParallelFor(n, 4096, ParallelThreads(), InitDrawRows, &task);
	}
	pfree(uniforms);
}

/*
 * Allocate scratch space for rows with d unknowns; the conjugate-gradient
 * solver gathers whole rows, so it needs `rows` = the longest row.
 */
void
AlsWorkspaceInit(AlsWorkspace *ws, int d, int64 rows)
{
	ws->d = d;
	ws->capacity = Max(rows, ALS_GATHER_ROWS);
	ws->gather = palloc_extended(sizeof(float) * ws->capacity * d, MCXT_ALLOC_HUGE);
	ws->targets = palloc_extended(sizeof(float) * ws->capacity, MCXT_ALLOC_HUGE);
	ws->rhs = palloc_array(float, d);
	ws->gram = palloc_array(float, (Size) d * d);
	ws->a = palloc_array(double, (Size) d * d);
	ws->b = palloc_array(double, d);
	ws->yty = palloc_array(double, (Size) d * d);
	ws->yty_f = palloc_array(float, (Size) d * d);
	ws->cg_r = palloc_array(float, d);
	ws->cg_p = palloc_array(float, d);
	ws->cg_ap = palloc_array(float, d);
	ws->cg_tmp = palloc_array(float, d);
	ws->prior = palloc0_array(float, d);
	ws->panel = NULL;
	ws->pred = NULL;
	ws->panel_w = NULL;
	ws->panel_t = NULL;
	ws->packed = NULL;
	ws->panel_cap = 0;
	ws->zero_row = NULL;
	ws->basis = NULL;
	ws->vectors = NULL;
	ws->vectors_cap = 0;
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
 * Add one observation (x, y) to normal equations: a += x x^T, b += y x
 * (b may be NULL to update a only).
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
		if (b)
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
 * nthreads workspaces for rows with d unknowns (see AlsWorkspaceInit); the
 * Gram matrix of the fixed side (yty) is computed into the first and shared
 * by all.
 */
AlsWorkspace *
AlsWorkspacesCreate(int nthreads, int d, int64 rows)
{
	AlsWorkspace *ws = palloc(sizeof(AlsWorkspace) * nthreads);

	for (int t = 0; t < nthreads; t++)
	{
		AlsWorkspaceInit(&ws[t], d, rows);
		if (t > 0)
		{
			pfree(ws[t].yty);
			pfree(ws[t].yty_f);
			ws[t].yty = ws[0].yty;
			ws[t].yty_f = ws[0].yty_f;
		}
	}
	return ws;
}

/* Add the block's float d x d upper triangle into a, and (if b) rhs into b */
static void
AddBlock(const AlsWorkspace *ws, int d, double *a, double *b)
{
	for (int j = 0; j < d; j++)
	{
		const float *g = ws->gram + (Size) j * d;
		double	   *col = a + (Size) j * d;

		/* Auto-vectorized */
		for (int i = 0; i <= j; i++)
			col[i] += g[i];
		if (b)
			b[j] += ws->rhs[j];
	}
}

/*
 * Build the explicit normal equations of one row in ws->a and ws->b:
 * sum x_j x_j^T and sum t_j x_j over the row's entries, with x_j = [q_j, 1]
 * and t_j = value_j - mean - bias_j; d = k + 1 unknowns.
 *
 * The entries are gathered in blocks: the block's Gram matrix (BLAS-3 syrk)
 * and X^T t (BLAS-2) come in float and are summed in double across blocks,
 * so rows with many entries do not lose precision.
 */
bool
AlsExplicitNormal(const int32 *cols, const float *vals, int64 n, double mean,
				  const float *other_factors, const float *other_bias, int k,
				  AlsWorkspace *ws)
{
	int			d = k + 1;

	memset(ws->a, 0, sizeof(double) * d * d);
	memset(ws->b, 0, sizeof(double) * d);

	for (int64 start = 0; start < n; start += ALS_GATHER_ROWS)
	{
		int			m = (int) Min(ALS_GATHER_ROWS, n - start);

		for (int j = 0; j < m; j++)
		{
			int32		col = cols[start + j];
			float	   *x = ws->gather + (Size) j * d;

			memcpy(x, other_factors + (Size) col * k, sizeof(float) * k);
			x[k] = 1.0f;
			ws->targets[j] = (float) (vals[start + j] - mean - other_bias[col]);
		}
		if (!LinalgSyrk(d, m, ws->gather, d, ws->gram, d) ||
			!LinalgGemvN(d, m, ws->gather, d, ws->targets, ws->rhs))
			return false;
		AddBlock(ws, d, ws->a, ws->b);
	}
	return true;
}

/*
 * Gram matrix G = F^T F of n row-major factor vectors (n x k), full and
 * symmetric, in double; also a float copy for matrix-vector products.
 *
 * This is Y^T Y of implicit ALS, shared by every row of a half-step: the
 * trick of Hu, Koren and Volinsky that makes the unobserved entries free.
 */
void
AlsGram(const float *factors, int n, int k, AlsWorkspace *ws)
{
	AlsGramInto(factors, n, k, NULL, ws->yty, ws->yty_f, ws);
}

/*
 * F^T F into g (double, k x k, full) and g_f (float), leaving out
 * the rows that have no entries in skip_empty (when given: items nobody
 * interacted with are unknown to users, not disliked).  Uses ws's gather
 * buffer.
 */
void
AlsGramInto(const float *factors, int n, int k, const RecsysSparse *skip_empty,
			double *g, float *g_f, AlsWorkspace *ws)
{
	memset(g, 0, sizeof(double) * k * k);
	for (int start = 0; start < n; start += ALS_GATHER_ROWS)
	{
		int			m = Min(ALS_GATHER_ROWS, n - start);
		const float *block = factors + (Size) start * k;

		if (skip_empty != NULL)
		{
			/* Gather the rows with entries (a contiguous k x m block) */
			int			kept = 0;

			for (int r = start; r < start + m; r++)
				if (skip_empty->indptr[r + 1] > skip_empty->indptr[r])
					memcpy(ws->gather + (Size) kept++ * k, factors + (Size) r * k,
						   sizeof(float) * k);
			block = ws->gather;
			m = kept;
			if (m == 0)
				continue;
		}
		/* Rows are contiguous: the block is k x m column-major already */
		if (!LinalgSyrk(k, m, block, k, ws->gram, k))
			elog(ERROR, "invalid dimensions of a Gram matrix (k = %d), please report a bug", k);
		for (int j = 0; j < k; j++)
			for (int i = 0; i <= j; i++)
				g[(Size) j * k + i] += ws->gram[(Size) j * k + i];
	}
	for (int j = 0; j < k; j++)
		for (int i = j + 1; i < k; i++)
			g[(Size) j * k + i] = g[(Size) i * k + j];
	for (Size i = 0; i < (Size) k * k; i++)
		g_f[i] = (float) g[i];
}

/*
 * out = sum_f s_rf g_f over the features of row `row`: the prior mean of a
 * hybrid row's factors, where its features put it (no PostgreSQL calls).
 */
void
AlsPrior(const RecsysSparse *features, const float *feature_factors, int k,
		 int row, float *out)
{
	memset(out, 0, sizeof(float) * k);
	for (int64 x = features->indptr[row]; x < features->indptr[row + 1]; x++)
	{
		const float *g = feature_factors + (Size) features->indices[x] * k;
		float		s = features->values[x];

		/* Auto-vectorized */
		for (int f = 0; f < k; f++)
			out[f] += s * g[f];
	}
}

/* The weight of row r in the feature regression: its penalty weight */
static inline float
FeatureRowWeight(const RecsysSparse *kept, bool by_count, int r)
{
	return by_count ? (float) (kept->indptr[r + 1] - kept->indptr[r]) : 1.0f;
}

/*
 * How much a hybrid side's penalty differs from the plain one the loss
 * functions count: sum over rows with interactions of
 * w_r (|y_r - m_r|^2 - |y_r|^2), m_r the row's prior, w_r its penalty
 * weight (by_count: its number of interactions).  Rows without
 * interactions sit at their prior and are not in the objective.
 */
double
AlsPriorCorrection(const RecsysSparse *s, const RecsysSparse *kept,
				   bool by_count, const float *row_factors,
				   const float *g, int k)
{
	float	   *m = palloc(sizeof(float) * k);
	double		total = 0.0;

	for (int r = 0; r < s->nrows; r++)
	{
		const float *y = row_factors + (Size) r * k;
		double		d = 0.0;

		if (kept->indptr[r + 1] == kept->indptr[r])
			continue;
		AlsPrior(s, g, k, r, m);
		for (int f = 0; f < k; f++)
			d += ((double) y[f] - m[f]) * ((double) y[f] - m[f]) -
				(double) y[f] * y[f];
		total += FeatureRowWeight(kept, by_count, r) * d;
	}
	pfree(m);
	return total;
}

/*
 * out (features x k) = sum over kept rows r of w_r s_r (s_r^T v):
 * S^T W S v
 */
static void
FeatureNormalTimes(const RecsysSparse *s, const RecsysSparse *kept,
				   bool by_count, int k, const float *v, float *t, float *out)
{
	memset(out, 0, sizeof(float) * (Size) s->ncols * k);
	for (int r = 0; r < s->nrows; r++)
	{
		float		w;

		if (kept->indptr[r + 1] == kept->indptr[r])
			continue;
		w = FeatureRowWeight(kept, by_count, r);
		memset(t, 0, sizeof(float) * k);
		for (int64 x = s->indptr[r]; x < s->indptr[r + 1]; x++)
		{
			const float *vf = v + (Size) s->indices[x] * k;
			float		sv = s->values[x];

			for (int f = 0; f < k; f++)
				t[f] += sv * vf[f];
		}
		for (int f = 0; f < k; f++)
			t[f] *= w;
		for (int64 x = s->indptr[r]; x < s->indptr[r + 1]; x++)
		{
			float	   *of = out + (Size) s->indices[x] * k;
			float		sv = s->values[x];

			for (int f = 0; f < k; f++)
				of[f] += sv * t[f];
		}
	}
}

/*
 * The feature step of a hybrid model: with the rows' factors Y fixed, the
 * feature factors G (features x k, updated in place) are the ridge
 * regression of Y on the features S, over the rows with interactions,
 * each weighted as its penalty is (by_count: by its number of
 * interactions, as ALS-WR weighs it; otherwise 1):
 *
 *	  (S^T W S + lambda I) G = S^T W Y
 *
 * one least-squares problem per factor, all sharing the matrix.  It is
 * solved by `steps` steps of Jacobi-preconditioned conjugate gradients,
 * warm-started from the current G, with S^T S never formed: a text
 * vocabulary can have 10^5 features, where a dense F x F matrix would not
 * fit, while each step costs only 4 nnz(S) k flops.  Feature popularity
 * varies over orders of magnitude, so the diagonal preconditioner (the
 * feature counts) is what makes a few steps per sweep enough.
 */
void
AlsFeatureStep(const RecsysSparse *s, const RecsysSparse *kept, bool by_count,
			   const float *row_factors, int k, double lambda, int steps,
			   float *g)
{
	int			nf = s->ncols;
	Size		n = (Size) Max(nf, 1) * k;
	float	   *r = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
	float	   *z = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
	float	   *p = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
	float	   *ap = palloc_extended(sizeof(float) * n, MCXT_ALLOC_HUGE);
	double	   *diag = palloc0(sizeof(double) * Max(nf, 1));
	double	   *rz = palloc0(sizeof(double) * k);
	double	   *pap = palloc(sizeof(double) * k);
	float	   *t = palloc(sizeof(float) * k);

	/* r = S^T Y - (S^T S + lambda I) G; the diagonal of S^T S */
	FeatureNormalTimes(s, kept, by_count, k, g, t, ap);
	memset(r, 0, sizeof(float) * n);
	for (int row = 0; row < s->nrows; row++)
	{
		const float *y = row_factors + (Size) row * k;
		float		w;

		if (kept->indptr[row + 1] == kept->indptr[row])
			continue;
		w = FeatureRowWeight(kept, by_count, row);
		for (int64 x = s->indptr[row]; x < s->indptr[row + 1]; x++)
		{
			float	   *rf = r + (Size) s->indices[x] * k;
			float		sv = s->values[x] * w;

			diag[s->indices[x]] += (double) sv * s->values[x];
			for (int f = 0; f < k; f++)
				rf[f] += sv * y[f];
		}
	}
	for (Size i = 0; i < n; i++)
		r[i] -= ap[i] + (float) lambda * g[i];
	for (int j = 0; j < nf; j++)
		for (int f = 0; f < k; f++)
		{
			Size		i = (Size) j * k + f;

			z[i] = (float) (r[i] / (diag[j] + lambda));
			p[i] = z[i];
			rz[f] += (double) r[i] * z[i];
		}

	for (int step = 0; step < steps; step++)
	{
		CHECK_FOR_INTERRUPTS();
		FeatureNormalTimes(s, kept, by_count, k, p, t, ap);
		for (Size i = 0; i < n; i++)
			ap[i] += (float) lambda * p[i];
		memset(pap, 0, sizeof(double) * k);
		for (Size i = 0; i < n; i++)
			pap[i % k] += (double) p[i] * ap[i];
		for (int f = 0; f < k; f++)
		{
			/* A converged column keeps its value (and avoids 0 / 0) */
			pap[f] = (rz[f] > 1e-30 && pap[f] > 0.0) ? rz[f] / pap[f] : 0.0;
		}
		for (Size i = 0; i < n; i++)
		{
			g[i] += (float) pap[i % k] * p[i];
			r[i] -= (float) pap[i % k] * ap[i];
		}
		/* pap now holds the new r.z per column, rz the old */
		memset(pap, 0, sizeof(double) * k);
		for (int j = 0; j < nf; j++)
			for (int f = 0; f < k; f++)
			{
				Size		i = (Size) j * k + f;

				z[i] = (float) (r[i] / (diag[j] + lambda));
				pap[f] += (double) r[i] * z[i];
			}
		for (int f = 0; f < k; f++)
		{
			double		beta = rz[f] > 1e-30 ? pap[f] / rz[f] : 0.0;

			rz[f] = pap[f];
			for (int j = 0; j < nf; j++)
			{
				Size		i = (Size) j * k + f;

				p[i] = z[i] + (float) beta * p[i];
			}
		}
	}
	pfree(r);
	pfree(z);
	pfree(p);
	pfree(ap);
	pfree(diag);
	pfree(rz);
	pfree(pap);
	pfree(t);
}

/*
 * Build the implicit normal equations of one row in ws->a and ws->b:
 *
 *		A = Y^T Y + sum_j w_j y_j y_j^T,	b = sum_j (1 + w_j) y_j
 *
 * where w_j = c_j - 1 is the extra confidence of observed entry j and Y^T Y
 * (AlsGram) covers every item with confidence 1 and preference 0.
 */
bool
AlsImplicitNormal(const int32 *cols, const float *w, int64 n,
				  const float *other_factors, int k, AlsWorkspace *ws)
{
	memcpy(ws->a, ws->yty, sizeof(double) * k * k);
	memset(ws->b, 0, sizeof(double) * k);

	for (int64 start = 0; start < n; start += ALS_GATHER_ROWS)
	{
		int			m = (int) Min(ALS_GATHER_ROWS, n - start);

		/*
		 * Rows scaled by sqrt(w_j) make syrk produce sum w_j y_j y_j^T; the
		 * targets (1 + w_j) / sqrt(w_j) then give b from the same block.
		 * An entry with w_j = 0 only adds y_j to b.
		 */
		for (int j = 0; j < m; j++)
		{
			int32		col = cols[start + j];
			const float *y = other_factors + (Size) col * k;
			float	   *x = ws->gather + (Size) j * k;
			double		wj = w[start + j];

			if (wj > 0.0)
			{
				float		s = (float) sqrt(wj);

				for (int f = 0; f < k; f++)
					x[f] = s * y[f];
				ws->targets[j] = (float) ((1.0 + wj) / sqrt(wj));
			}
			else
			{
				memset(x, 0, sizeof(float) * k);
				ws->targets[j] = 0.0f;
				for (int f = 0; f < k; f++)
					ws->b[f] += y[f];
			}
		}
		if (!LinalgSyrk(k, m, ws->gather, k, ws->gram, k) ||
			!LinalgGemvN(k, m, ws->gather, k, ws->targets, ws->rhs))
			return false;
		AddBlock(ws, k, ws->a, ws->b);
	}
	return true;
}

/* The penalty of a row with n entries: ALS-WR for explicit, plain implicit */
double
AlsRowPenalty(const AlsConfig *c, int64 n)
{
	return c->is_explicit ? c->regularization * (double) n
		: c->regularization;
}

/*
 * Solve the normal equations in ws (built by AlsExplicitNormal or
 * AlsImplicitNormal for a row of n entries) with the method's penalty and
 * write the row's factors, and for explicit ALS its bias.
 *
 * Returns 0 on success, > 0 if the system is not positive definite, < 0
 * on a bug (LINALG_BAD_ARGUMENT), which the caller reports.
 */
int
AlsSolveRow(const AlsConfig *c, int64 n, AlsWorkspace *ws, float *factors_out,
			float *bias_out)
{
	int			k = c->k;
	bool		explicit = c->is_explicit;
	int			info = AlsSolve(ws->a, ws->b, explicit ? k + 1 : k,
								AlsRowPenalty(c, n));

	if (info != 0)
		return info;
	for (int i = 0; i < k; i++)
		factors_out[i] = (float) ws->b[i];
	if (explicit)
		*bias_out = (float) ws->b[k];
	return 0;
}

/*
 * out = (Y^T Y + lambda I) v + Y_u^T diag(w) Y_u v: the implicit normal
 * matrix times v, the row's item vectors Y_u read in place (SimdSparseUpdate)
 */
static bool
ImplicitTimes(const AlsWorkspace *ws, int k, const int32 *cols, int n,
			  const float *w, const float *other_factors, double lambda,
			  const float *v, float *out)
{
	if (!LinalgGemvN(k, k, ws->yty_f, k, v, out))
		return false;
	for (int f = 0; f < k; f++)
		out[f] += (float) lambda * v[f];
	SimdSparseUpdate(other_factors, cols, w, n, k, 0.0f, 0.0f, 1.0f, v, out);
	return true;
}

/* Dot product of two float vectors accumulated in double */
static inline double
DotD(const float *x, const float *y, int k)
{
	return (double) SimdDotGeneric(x, y, k);
}

/*
 * A few conjugate-gradient steps on one row's implicit normal equations,
 * warm-started from the row's current factors x (updated in place).
 *
 * Following Takacs, Pilaszy and Tikk (RecSys 2011), the k x k matrix is
 * never formed: each step costs O(k^2 + n k) instead of O(n k^2).  The
 * row's item vectors are read where they are, each once per step, by the
 * fused dot-and-axpy kernel of simd.c.
 */
static bool
AlsImplicitRowCG(const AlsConfig *c, const int32 *cols, const float *w,
				 int64 n64, const float *other_factors, AlsWorkspace *ws,
				 const float *prior, float *x)
{
	int			k = c->k;
	int			n = (int) n64;
	double		lambda = c->regularization;
	float	   *r = ws->cg_r;
	float	   *p = ws->cg_p;
	float	   *ap = ws->cg_ap;
	double		rsold;

	/*
	 * r = b - A x = sum_j (1 + w_j - w_j (y_j . x)) y_j - (Y^T Y + lambda I) x,
	 * with b = sum_j (1 + w_j) y_j
	 */
	if (!LinalgGemvN(k, k, ws->yty_f, k, x, ap))
		return false;
	for (int f = 0; f < k; f++)
		r[f] = -(ap[f] + (float) lambda * x[f]);
	if (prior != NULL)
	{
		/* Hybrid rows: the penalty pulls toward the prior, b gains lambda m */
		for (int f = 0; f < k; f++)
			r[f] += (float) lambda * prior[f];
	}
	SimdSparseUpdate(other_factors, cols, w, n, k, 1.0f, 1.0f, -1.0f, x, r);
	memcpy(p, r, sizeof(float) * k);
	rsold = DotD(r, r, k);

	for (int step = 0; step < c->cg_steps; step++)
	{
		double		pap;
		float		alpha;
		float		beta;
		double		rsnew;

		/* Converged (also guards the divisions below) */
		if (rsold < 1e-20)
			break;
		if (!ImplicitTimes(ws, k, cols, n, w, other_factors, lambda, p, ap))
			return false;
		pap = DotD(p, ap, k);
		if (pap <= 0.0)
			break;
		alpha = (float) (rsold / pap);
		for (int f = 0; f < k; f++)
		{
			x[f] += alpha * p[f];
			r[f] -= alpha * ap[f];
		}
		rsnew = DotD(r, r, k);
		beta = (float) (rsnew / rsold);
		for (int f = 0; f < k; f++)
			p[f] = r[f] + beta * p[f];
		rsold = rsnew;
	}
	return true;
}

/*
 * The subspace solver: iALS++ (Rendle, Krichene, Zhang and Koren,
 * "iALS++: Speeding up Matrix Factorization with Subspace Optimization",
 * 2021), one sweep of block coordinate descent per row and half-step.
 *
 * With the other side fixed, a row's objective is
 *
 *		f(x) = x^T S x - 2 x^T (sum_j (1 + w_j) y_j + lambda m)
 *			   + sum_j w_j (y_j . x)^2,		S = Y^T Y + lambda I
 *
 * (m the hybrid prior, else 0).  Block coordinate descent minimizes it
 * exactly over block_size coordinates B at a time, the others fixed:
 *
 *		(S_BB + sum_j w_j y_jB y_jB^T) delta = r_B,
 *		r = sum_j (1 + w_j - w_j s_j) y_j + lambda m - S x
 *
 * keeping the predictions s_j = y_j . x up to date (s_j += y_jB . delta),
 * so that a block costs O(n b^2 + b^3) for a row of n entries and a sweep
 * O(n k b + k^2 b); the exact solve costs O(n k^2 + k^3).  S is shared by
 * every row (the Gram trick) and computed once per half-step.  With b = k
 * one block is the exact solve.
 *
 * A change of basis (ours, not the paper's): with S = U^T U (Cholesky,
 * once per half-step), z = U x and y'_j = U^-T y_j, the objective becomes
 *
 *		|z|^2 - 2 z^T (sum_j (1 + w_j) y'_j + lambda U^-T m)
 *		+ sum_j w_j (y'_j . z)^2
 *
 * with the same predictions y'_j . z = y_j . x: S becomes the identity, and
 * only the row's own entries couple the blocks.  Measured on generated data
 * of the MovieLens-1M shape (k = 64): in the original coordinates one sweep
 * with blocks of 8 reached after 15 iterations the loss three
 * conjugate-gradient steps reach after 8, because S couples the blocks
 * strongly; in the new ones one sweep with blocks of 1 to 32 reaches,
 * iteration for iteration, the loss of CG within 0.02%.  The other side's
 * vectors are transformed once per half-step (BLAS-3 strsm), each block of
 * rows into and out of the basis (strmm, strsm).  In float the basis is as
 * good as S is conditioned, so it is used only when trace(S) / lambda, a
 * bound of S's condition number, is at most SUBSPACE_MAX_CONDITION;
 * otherwise (and with lambda = 0) the solver works in the original
 * coordinates, keeping S x up to date.
 *
 * Speed: the row's vectors are gathered once, with prefetching, into a
 * panel of tiles, each the k coordinates of 8 entries as 8-float vectors;
 * every block then runs over contiguous memory, one entry per vector lane,
 * with its sums in registers (kernels for each block size up to 8).  The
 * gather is the only scattered read of the row, where CG reads the row's
 * vectors at every step.  Sums go from float to double every
 * SUBSPACE_FLUSH_TILES tiles, so long rows keep their precision.
 */

/* Entries per tile of a row's panel: one 8-float vector per coordinate */
#define SUBSPACE_TILE ALS_SUBSPACE_TILE

/* Tiles summed in float before their sums go into double */
#define SUBSPACE_FLUSH_TILES 64

/* Block sizes with a kernel of their own, sums held in registers */
#define SUBSPACE_FIXED_MAX 8

/* Largest block solved by the solver's own Cholesky (LAPACK beyond) */
#define SUBSPACE_SMALL_SOLVE 32

/* Largest bound trace(S) / lambda of S's condition for the change of basis */
#define SUBSPACE_MAX_CONDITION 1e10

/* Rows of the other side per block of the change of basis */
#define SUBSPACE_BASIS_ROWS 256

/* Eight floats, one lane per entry of a tile */
typedef float SubFloat8 __attribute__((vector_size(32)));

/* The coordinates a half-step solves in, shared by its threads */
typedef struct SubspaceBasis
{
	bool		whitened;		/* z = U x, S = I there */
	const float *basis;			/* U (upper, column-major), or S (full) */
	const float *vectors;		/* the other side: y'_j, or y_j */
	bool		avx2;			/* the AVX2 and FMA kernels */
} SubspaceBasis;

/*
 * Sum of the lanes, in a fixed order (pairwise, in float: each lane holds
 * at most SUBSPACE_FLUSH_TILES entries' sum, the caller adds it to double)
 */
static inline double
LaneSum(const SubFloat8 *v)
{
	float		t[8];

	memcpy(t, v, sizeof(t));
	return (double) (((t[0] + t[4]) + (t[2] + t[6])) +
					 ((t[1] + t[5]) + (t[3] + t[7])));
}

/*
 * Gather a row's n vectors (rows cols[j] of `vectors`, k floats each) into
 * tiles of 8 (tile g holds coordinate f of entries 8g .. 8g + 7 at
 * panel + (g k + f) 8), their weights into pw and their predictions
 * vector . z into pred, padding the last tile with zero vectors and
 * weights.  Baseline version, for any CPU.
 */
static void
SubspaceGatherGeneric(const float *vectors, const int32 *cols, const float *w,
					  int n, int k, const float *zero, const float *z,
					  float *panel, float *pred, float *pw)
{
	int			ntiles = (n + SUBSPACE_TILE - 1) / SUBSPACE_TILE;

	for (int g = 0; g < ntiles; g++)
	{
		float	   *tile = panel + (Size) g * k * SUBSPACE_TILE;

		for (int l = 0; l < SUBSPACE_TILE; l++)
		{
			int			j = g * SUBSPACE_TILE + l;
			const float *y = j < n ? vectors + (Size) cols[j] * k : zero;

			pw[j] = j < n ? w[j] : 0.0f;
			pred[j] = SimdDotGeneric(y, z, k);
			for (int f = 0; f < k; f++)
				tile[f * SUBSPACE_TILE + l] = y[f];
		}
	}
}

#ifdef SUBSPACE_X86
/*
 * SubspaceGatherGeneric with AVX2 and FMA: 8 x 8 blocks transposed in
 * registers, the predictions summed from the transposed vectors, and the
 * next tile's vectors prefetched (the scattered reads are most of the
 * gather's time).
 */
__attribute__((target("avx2,fma")))
static void
SubspaceGatherAvx2(const float *vectors, const int32 *cols, const float *w,
				   int n, int k, const float *zero, const float *z,
				   float *panel, float *pred, float *pw)
{
	int			ntiles = (n + SUBSPACE_TILE - 1) / SUBSPACE_TILE;
	int			k8 = k & ~7;

	for (int g = 0; g < ntiles; g++)
	{
		const float *y[SUBSPACE_TILE];
		float	   *tile = panel + (Size) g * k * SUBSPACE_TILE;
		__m256		s = _mm256_setzero_ps();

		for (int l = 0; l < SUBSPACE_TILE; l++)
		{
			int			j = g * SUBSPACE_TILE + l;

			y[l] = j < n ? vectors + (Size) cols[j] * k : zero;
			pw[j] = j < n ? w[j] : 0.0f;
		}
		for (int j = (g + 1) * SUBSPACE_TILE; j < Min(n, (g + 2) * SUBSPACE_TILE); j++)
		{
			const char *p = (const char *) (vectors + (Size) cols[j] * k);

			for (int off = 0; off < k * (int) sizeof(float); off += 64)
				_mm_prefetch(p + off, _MM_HINT_T0);
		}
		for (int f = 0; f < k8; f += 8)
		{
			__m256		a0 = _mm256_loadu_ps(y[0] + f);
			__m256		a1 = _mm256_loadu_ps(y[1] + f);
			__m256		a2 = _mm256_loadu_ps(y[2] + f);
			__m256		a3 = _mm256_loadu_ps(y[3] + f);
			__m256		a4 = _mm256_loadu_ps(y[4] + f);
			__m256		a5 = _mm256_loadu_ps(y[5] + f);
			__m256		a6 = _mm256_loadu_ps(y[6] + f);
			__m256		a7 = _mm256_loadu_ps(y[7] + f);
			__m256		t0 = _mm256_unpacklo_ps(a0, a1);
			__m256		t1 = _mm256_unpackhi_ps(a0, a1);
			__m256		t2 = _mm256_unpacklo_ps(a2, a3);
			__m256		t3 = _mm256_unpackhi_ps(a2, a3);
			__m256		t4 = _mm256_unpacklo_ps(a4, a5);
			__m256		t5 = _mm256_unpackhi_ps(a4, a5);
			__m256		t6 = _mm256_unpacklo_ps(a6, a7);
			__m256		t7 = _mm256_unpackhi_ps(a6, a7);
			__m256		u0 = _mm256_shuffle_ps(t0, t2, 0x44);
			__m256		u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
			__m256		u2 = _mm256_shuffle_ps(t1, t3, 0x44);
			__m256		u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
			__m256		u4 = _mm256_shuffle_ps(t4, t6, 0x44);
			__m256		u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
			__m256		u6 = _mm256_shuffle_ps(t5, t7, 0x44);
			__m256		u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
			__m256		c[8];
			float	   *d = tile + f * SUBSPACE_TILE;

			c[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
			c[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
			c[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
			c[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
			c[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
			c[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
			c[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
			c[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
			for (int q = 0; q < 8; q++)
			{
				_mm256_storeu_ps(d + q * SUBSPACE_TILE, c[q]);
				s = _mm256_fmadd_ps(_mm256_set1_ps(z[f + q]), c[q], s);
			}
		}
		for (int f = k8; f < k; f++)
		{
			float		v[SUBSPACE_TILE];
			__m256		c;

			for (int l = 0; l < SUBSPACE_TILE; l++)
				v[l] = y[l][f];
			c = _mm256_loadu_ps(v);
			_mm256_storeu_ps(tile + f * SUBSPACE_TILE, c);
			s = _mm256_fmadd_ps(_mm256_set1_ps(z[f]), c, s);
		}
		_mm256_storeu_ps(pred + g * SUBSPACE_TILE, s);
	}
}
#endif							/* SUBSPACE_X86 */

/*
 * One block's pass over a row's panel (ntiles tiles of k coordinates):
 * first the predictions take the previous block's step (pb coordinates
 * from pf0, delta), then the sums of the block of b coordinates from f0:
 * h = sum_j w_j y_jB y_jB^T (packed lower triangle: row a, column c <= a
 * at a (a + 1) / 2 + c) and r = sum_j (1 + w_j - w_j s_j) y_jB.
 *
 * For a constant b (inlined with b = 1 .. SUBSPACE_FIXED_MAX) the sums of
 * each lane stay in registers: the loops over the block are unrolled
 * (GCC at -O2 left them rolled from b = 3 on, with every sum on the stack).
 */
static pg_attribute_always_inline void
SubspacePassTiles(const float *panel, float *pred, const float *pw,
				  int ntiles, int k, int pf0, int pb, const float *delta,
				  int f0, const int b, double *h, double *r)
{
	SubFloat8	hv[SUBSPACE_FIXED_MAX * (SUBSPACE_FIXED_MAX + 1) / 2];
	SubFloat8	rv[SUBSPACE_FIXED_MAX];
	int			nh = b * (b + 1) / 2;

#pragma GCC unroll 8
	for (int q = 0; q < nh; q++)
		h[q] = 0.0;
#pragma GCC unroll 8
	for (int a = 0; a < b; a++)
		r[a] = 0.0;
	for (int g0 = 0; g0 < ntiles; g0 += SUBSPACE_FLUSH_TILES)
	{
		int			g1 = Min(ntiles, g0 + SUBSPACE_FLUSH_TILES);

#pragma GCC unroll 8
		for (int q = 0; q < nh; q++)
			hv[q] = (SubFloat8) {0};
#pragma GCC unroll 8
		for (int a = 0; a < b; a++)
			rv[a] = (SubFloat8) {0};
		for (int g = g0; g < g1; g++)
		{
			const float *tile = panel + (Size) g * k * SUBSPACE_TILE;
			SubFloat8	s;
			SubFloat8	wv;
			SubFloat8	t;
			SubFloat8	p[SUBSPACE_FIXED_MAX];

			memcpy(&s, pred + g * SUBSPACE_TILE, sizeof(s));
			for (int q = 0; q < pb; q++)
			{
				SubFloat8	v;

				memcpy(&v, tile + (pf0 + q) * SUBSPACE_TILE, sizeof(v));
				s += delta[q] * v;
			}
			memcpy(pred + g * SUBSPACE_TILE, &s, sizeof(s));
			memcpy(&wv, pw + g * SUBSPACE_TILE, sizeof(wv));
			t = 1.0f + wv - wv * s;
#pragma GCC unroll 8
			for (int a = 0; a < b; a++)
				memcpy(&p[a], tile + (f0 + a) * SUBSPACE_TILE, sizeof(p[a]));
#pragma GCC unroll 8
			for (int a = 0, q = 0; a < b; a++)
			{
				SubFloat8	wp = wv * p[a];

				rv[a] += t * p[a];
#pragma GCC unroll 8
				for (int c = 0; c <= a; c++)
					hv[q++] += wp * p[c];
			}
		}
#pragma GCC unroll 8
		for (int q = 0; q < nh; q++)
			h[q] += LaneSum(&hv[q]);
#pragma GCC unroll 8
		for (int a = 0; a < b; a++)
			r[a] += LaneSum(&rv[a]);
	}
}

/*
 * SubspacePassTiles for a constant b, and the previous block's size pb
 * constant too in the usual case, pb = b (all but the first and the last
 * block)
 */
static pg_attribute_always_inline void
SubspacePassFixed(const float *panel, float *pred, const float *pw,
				  int ntiles, int k, int pf0, int pb, const float *delta,
				  int f0, const int b, double *h, double *r)
{
	if (pb == b)
		SubspacePassTiles(panel, pred, pw, ntiles, k, pf0, b, delta, f0, b, h, r);
	else
		SubspacePassTiles(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, b, h, r);
}

/*
 * SubspacePassTiles for any block size: the predictions and targets in
 * one pass (targets kept in pt), then each sum in a pass of its own.
 */
static pg_attribute_always_inline void
SubspacePassLoop(const float *panel, float *pred, const float *pw, float *pt,
				 int ntiles, int k, int pf0, int pb, const float *delta,
				 int f0, int b, double *h, double *r)
{
	for (int g = 0; g < ntiles; g++)
	{
		const float *tile = panel + (Size) g * k * SUBSPACE_TILE;
		SubFloat8	s;
		SubFloat8	wv;

		memcpy(&s, pred + g * SUBSPACE_TILE, sizeof(s));
		for (int q = 0; q < pb; q++)
		{
			SubFloat8	v;

			memcpy(&v, tile + (pf0 + q) * SUBSPACE_TILE, sizeof(v));
			s += delta[q] * v;
		}
		memcpy(pred + g * SUBSPACE_TILE, &s, sizeof(s));
		memcpy(&wv, pw + g * SUBSPACE_TILE, sizeof(wv));
		s = 1.0f + wv - wv * s;
		memcpy(pt + g * SUBSPACE_TILE, &s, sizeof(s));
	}
	for (int a = 0; a < b; a++)
	{
		for (int c = 0; c <= a + 1; c++)
		{
			/* c <= a: h_ac = sum w y_a y_c; c = a + 1: r_a = sum t y_a */
			bool		rhs = c == a + 1;
			double		total = 0.0;

			for (int g0 = 0; g0 < ntiles; g0 += SUBSPACE_FLUSH_TILES)
			{
				int			g1 = Min(ntiles, g0 + SUBSPACE_FLUSH_TILES);
				SubFloat8	acc = {0};

				for (int g = g0; g < g1; g++)
				{
					const float *tile = panel + (Size) g * k * SUBSPACE_TILE;
					SubFloat8	pa;
					SubFloat8	pc;

					memcpy(&pa, tile + (f0 + a) * SUBSPACE_TILE, sizeof(pa));
					if (rhs)
						memcpy(&pc, pt + g * SUBSPACE_TILE, sizeof(pc));
					else
					{
						SubFloat8	wv;

						memcpy(&pc, tile + (f0 + c) * SUBSPACE_TILE, sizeof(pc));
						memcpy(&wv, pw + g * SUBSPACE_TILE, sizeof(wv));
						pc *= wv;
					}
					acc += pa * pc;
				}
				total += LaneSum(&acc);
			}
			if (rhs)
				r[a] = total;
			else
				h[a * (a + 1) / 2 + c] = total;
		}
	}
}

/* A block's pass with the kernel of its size (see SubspacePassFixed) */
static pg_attribute_always_inline void
SubspacePassAny(const float *panel, float *pred, const float *pw, float *pt,
				int ntiles, int k, int pf0, int pb, const float *delta,
				int f0, int b, double *h, double *r)
{
	switch (b)
	{
		case 1:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 1, h, r);
			break;
		case 2:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 2, h, r);
			break;
		case 3:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 3, h, r);
			break;
		case 4:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 4, h, r);
			break;
		case 5:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 5, h, r);
			break;
		case 6:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 6, h, r);
			break;
		case 7:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 7, h, r);
			break;
		case 8:
			SubspacePassFixed(panel, pred, pw, ntiles, k, pf0, pb, delta, f0, 8, h, r);
			break;
		default:
			SubspacePassLoop(panel, pred, pw, pt, ntiles, k, pf0, pb, delta, f0, b, h, r);
			break;
	}
}

/* SubspacePassAny for any CPU (GCC splits the 8-float vectors as needed) */
static void
SubspacePassGeneric(const float *panel, float *pred, const float *pw,
					float *pt, int ntiles, int k, int pf0, int pb,
					const float *delta, int f0, int b, double *h, double *r)
{
	SubspacePassAny(panel, pred, pw, pt, ntiles, k, pf0, pb, delta, f0, b, h, r);
}

#ifdef SUBSPACE_X86
/* SubspacePassAny with AVX2 and FMA (the same code, wider units) */
__attribute__((target("avx2,fma")))
static void
SubspacePassAvx2(const float *panel, float *pred, const float *pw, float *pt,
				 int ntiles, int k, int pf0, int pb, const float *delta,
				 int f0, int b, double *h, double *r)
{
	SubspacePassAny(panel, pred, pw, pt, ntiles, k, pf0, pb, delta, f0, b, h, r);
}
#endif

/*
 * One block's pass over a panel (SubspacePassTiles: the previous block's
 * step into the predictions, then the block's sums h and r), with the
 * AVX2 kernel when avx2 (AlsSubspaceUseAvx2).  For the shards' item
 * half-step (AlsSubspaceShardPass), whose panels hold only the two
 * blocks' coordinates (k = pb + b there).
 */
static void
AlsSubspacePass(bool avx2, const float *panel, float *pred, const float *pw,
				float *pt, int ntiles, int k, int pf0, int pb, const float *delta,
				int f0, int b, double *h, double *r)
{
#ifdef SUBSPACE_X86
	if (avx2)
		SubspacePassAvx2(panel, pred, pw, pt, ntiles, k, pf0, pb, delta, f0, b, h, r);
	else
#endif
		SubspacePassGeneric(panel, pred, pw, pt, ntiles, k, pf0, pb, delta, f0, b, h, r);
}

/*
 * Tiles a shard's block call prefetches ahead (1.5 KB of each of its three
 * streams: an item's entries are contiguous, but most items are short for
 * the hardware's prefetcher).  Measured on one shard's half-step at the 10M
 * shape: 9.2 ns per tile without, 5.7 at 16 tiles, 4.6 to 5.0 at 32 to 64.
 */
#define SHARD_PREFETCH_TILES 48

/*
 * A shard's panel for one block call, for any CPU: tile g holds coordinate
 * q of entries 8g .. 8g + 7 at panel + (g kk + q) 8, from rows cols[j] of
 * rows (kk floats each), for the ntiles whole tiles of cols
 */
static void
SubspaceGatherRowsGeneric(const float *rows, int kk, const int32 *cols, int ntiles,
						  float *panel)
{
	for (int j = 0; j < ntiles * SUBSPACE_TILE; j++)
	{
		float	   *lane = panel + (Size) (j / SUBSPACE_TILE) * kk * SUBSPACE_TILE +
			j % SUBSPACE_TILE;
		const float *v = rows + (Size) cols[j] * kk;

		for (int q = 0; q < kk; q++)
			lane[q * SUBSPACE_TILE] = v[q];
	}
}

#ifdef SUBSPACE_X86
/* SubspaceGatherRowsGeneric with one AVX2 hardware gather per coordinate and tile */
__attribute__((target("avx2,fma")))
static void
SubspaceGatherRowsAvx2(const float *rows, int kk, const int32 *cols, int ntiles,
					   float *panel)
{
	__m256i		vkk = _mm256_set1_epi32(kk);

	for (int g = 0; g < ntiles; g++)
	{
		float	   *tile = panel + (Size) g * kk * SUBSPACE_TILE;
		__m256i		idx = _mm256_loadu_si256((const __m256i *) (cols + g * SUBSPACE_TILE));
		__m256i		at = _mm256_mullo_epi32(idx, vkk);

		for (int q = 0; q < kk; q++)
			_mm256_storeu_ps(tile + q * SUBSPACE_TILE, _mm256_i32gather_ps(rows + q, at, 4));
	}
}

/*
 * The pairs (2 floats per row) of 8 rows cols[0 .. 7] of v as two tile
 * vectors: first coordinates in q[0], second in q[1].  Plain 8-byte loads
 * and shuffles: on the AMD EPYC measured, hardware gathers of the same
 * floats took about 2.5 times as long (perf of the shards, 1M shape).
 */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline void
SubspacePairs8(const float *v, const int32 *cols, __m256 *q)
{
	__m128		zero = _mm_setzero_ps();
	__m128		a = _mm_loadh_pi(_mm_loadl_pi(zero, (const __m64 *) (v + (Size) cols[0] * 2)),
								 (const __m64 *) (v + (Size) cols[1] * 2));
	__m128		b = _mm_loadh_pi(_mm_loadl_pi(zero, (const __m64 *) (v + (Size) cols[2] * 2)),
								 (const __m64 *) (v + (Size) cols[3] * 2));
	__m128		c = _mm_loadh_pi(_mm_loadl_pi(zero, (const __m64 *) (v + (Size) cols[4] * 2)),
								 (const __m64 *) (v + (Size) cols[5] * 2));
	__m128		d = _mm_loadh_pi(_mm_loadl_pi(zero, (const __m64 *) (v + (Size) cols[6] * 2)),
								 (const __m64 *) (v + (Size) cols[7] * 2));
	/* lo: rows 0 1 | 4 5, hi: rows 2 3 | 6 7, each as (first, second) */
	__m256		lo = _mm256_insertf128_ps(_mm256_castps128_ps256(a), c, 1);
	__m256		hi = _mm256_insertf128_ps(_mm256_castps128_ps256(b), d, 1);

	/* Per 128-bit half: the firsts (0 and 2 of each pair), the seconds */
	q[0] = _mm256_shuffle_ps(lo, hi, 0x88);
	q[1] = _mm256_shuffle_ps(lo, hi, 0xDD);
}

/*
 * The quads (4 floats per row) of 8 rows cols[0 .. 7] of v as four tile
 * vectors q[0 .. 3]: one 16-byte load per row, then a 4 x 4 transpose in
 * each 128-bit half
 */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline void
SubspaceQuads8(const float *v, const int32 *cols, __m256 *q)
{
	__m256		r04 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + (Size) cols[0] * 4)),
										   _mm_loadu_ps(v + (Size) cols[4] * 4), 1);
	__m256		r15 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + (Size) cols[1] * 4)),
										   _mm_loadu_ps(v + (Size) cols[5] * 4), 1);
	__m256		r26 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + (Size) cols[2] * 4)),
										   _mm_loadu_ps(v + (Size) cols[6] * 4), 1);
	__m256		r37 = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(v + (Size) cols[3] * 4)),
										   _mm_loadu_ps(v + (Size) cols[7] * 4), 1);
	__m256		t0 = _mm256_unpacklo_ps(r04, r15);
	__m256		t1 = _mm256_unpackhi_ps(r04, r15);
	__m256		t2 = _mm256_unpacklo_ps(r26, r37);
	__m256		t3 = _mm256_unpackhi_ps(r26, r37);

	q[0] = _mm256_shuffle_ps(t0, t2, 0x44);
	q[1] = _mm256_shuffle_ps(t0, t2, 0xEE);
	q[2] = _mm256_shuffle_ps(t1, t3, 0x44);
	q[3] = _mm256_shuffle_ps(t1, t3, 0xEE);
}

/*
 * AlsSubspaceShardPass for blocks of 2, after a block of 2 (has_prev: rows
 * of 4 floats, loaded by SubspaceQuads8) or first (rows of 2, by
 * SubspacePairs8): SubspacePassTiles's arithmetic with b = 2 on each
 * tile's coordinates kept in registers.  The panel made a shard's block
 * call two passes over memory (the gather's stores, then the pass's
 * loads), and two 8-byte loads per entry where one 16-byte load does;
 * these are the same floats and operations, so the same sums.
 */
__attribute__((target("avx2,fma")))
static pg_attribute_always_inline void
SubspaceShardPass2(const float *rows, const bool has_prev, const int32 *cols,
				   int ntiles, float *pred, const float *pw, const float *delta,
				   double *h, double *r)
{
	for (int q = 0; q < 3; q++)
		h[q] = 0.0;
	r[0] = r[1] = 0.0;
	for (int g0 = 0; g0 < ntiles; g0 += SUBSPACE_FLUSH_TILES)
	{
		int			g1 = Min(ntiles, g0 + SUBSPACE_FLUSH_TILES);
		SubFloat8	h0 = {0};
		SubFloat8	h1 = {0};
		SubFloat8	h2 = {0};
		SubFloat8	r0 = {0};
		SubFloat8	r1 = {0};

		for (int g = g0; g < g1; g++)
		{
			const int32 *c = cols + g * SUBSPACE_TILE;
			__m256		v[4];
			SubFloat8	p0;
			SubFloat8	p1;
			SubFloat8	s;
			SubFloat8	wv;
			SubFloat8	t;
			SubFloat8	wp;

			/* The streams ahead: no stride for the hardware to learn per item */
			_mm_prefetch((const char *) (pred + (g + SHARD_PREFETCH_TILES) * SUBSPACE_TILE),
						 _MM_HINT_T0);
			_mm_prefetch((const char *) (pw + (g + SHARD_PREFETCH_TILES) * SUBSPACE_TILE),
						 _MM_HINT_T0);
			_mm_prefetch((const char *) (c + SHARD_PREFETCH_TILES * SUBSPACE_TILE), _MM_HINT_T0);
			/* Every load before the store to pred, which may alias them */
			if (has_prev)
				SubspaceQuads8(rows, c, v);
			else
				SubspacePairs8(rows, c, v + 2);
			memcpy(&s, pred + g * SUBSPACE_TILE, sizeof(s));
			memcpy(&wv, pw + g * SUBSPACE_TILE, sizeof(wv));
			if (has_prev)
			{
				s += delta[0] * (SubFloat8) v[0];
				s += delta[1] * (SubFloat8) v[1];
				memcpy(pred + g * SUBSPACE_TILE, &s, sizeof(s));
			}
			p0 = (SubFloat8) v[2];
			p1 = (SubFloat8) v[3];
			t = 1.0f + wv - wv * s;
			wp = wv * p0;
			r0 += t * p0;
			h0 += wp * p0;
			wp = wv * p1;
			r1 += t * p1;
			h1 += wp * p0;
			h2 += wp * p1;
		}
		h[0] += LaneSum(&h0);
		h[1] += LaneSum(&h1);
		h[2] += LaneSum(&h2);
		r[0] += LaneSum(&r0);
		r[1] += LaneSum(&r1);
	}
}

/* SubspaceShardPass2 after a block of 2 */
__attribute__((target("avx2,fma")))
static void
SubspaceShardPass22(const float *rows, const int32 *cols, int ntiles, float *pred,
					const float *pw, const float *delta, double *h, double *r)
{
	SubspaceShardPass2(rows, true, cols, ntiles, pred, pw, delta, h, r);
}

/* SubspaceShardPass2 for the first block */
__attribute__((target("avx2,fma")))
static void
SubspaceShardPass02(const float *rows, const int32 *cols, int ntiles, float *pred,
					const float *pw, double *h, double *r)
{
	SubspaceShardPass2(rows, false, cols, ntiles, pred, pw, NULL, h, r);
}
#endif

/*
 * One block call of a shard's subspace item half-step for one item
 * (shard.c): its ntiles tiles of entries cols (the padding entries name a
 * zero row), whose predictions take the previous block's steps delta
 * (pb coordinates) and whose sums h and r of this block (b coordinates)
 * come back, as the single-node kernel (AlsSubspacePass) computes them
 * for a row.  Row u of rows (nrows rows of pb + b floats) holds user u's
 * pb coordinates of the previous block then the b of this one.  The
 * general path gathers a panel first (panel: ntiles (pb + b) tiles; pt:
 * ntiles); blocks of 2 with AVX2 skip it (SubspaceShardPass2).
 */
void
AlsSubspaceShardPass(bool avx2, const float *rows, int pb, int b, int64 nrows,
					 const int32 *cols, int ntiles, float *pred, const float *pw,
					 const float *delta, float *panel, float *pt, double *h, double *r)
{
	int			kk = pb + b;

#ifdef SUBSPACE_X86
	/* The hardware gathers' indexes cols[j] * kk are 32-bit */
	if (avx2 && nrows * kk <= PG_INT32_MAX)
	{
		if (b == 2 && pb == 2)
		{
			SubspaceShardPass22(rows, cols, ntiles, pred, pw, delta, h, r);
			return;
		}
		if (b == 2 && pb == 0)
		{
			SubspaceShardPass02(rows, cols, ntiles, pred, pw, h, r);
			return;
		}
		SubspaceGatherRowsAvx2(rows, kk, cols, ntiles, panel);
	}
	else
#endif
		SubspaceGatherRowsGeneric(rows, kk, cols, ntiles, panel);
	AlsSubspacePass(avx2, panel, pred, pw, pt, ntiles, kk, 0, pb, delta, pb, b, h, r);
}

/*
 * Solve the b x b system a delta = r in place (r becomes delta; a, full
 * and symmetric, is destroyed): 0 on success, > 0 if a is not positive
 * definite, < 0 on a bug.  Small blocks by an inline Cholesky
 * factorization: the library call would cost more than the arithmetic.
 */
static int
SubspaceSolve(double *a, double *r, int b)
{
	if (b > SUBSPACE_SMALL_SOLVE)
		return LinalgCholeskySolve(b, a, r);
	if (b == 1)
	{
		if (!(a[0] > 0.0))
			return 1;
		r[0] /= a[0];
		return 0;
	}
	if (b == 2)
	{
		/* Cramer's rule: one division on the critical path */
		double		det = a[0] * a[3] - a[1] * a[1];
		double		r0 = r[0];

		if (!(a[0] > 0.0) || !(det > 0.0))
			return !(a[0] > 0.0) ? 1 : 2;
		det = 1.0 / det;
		r[0] = (a[3] * r0 - a[1] * r[1]) * det;
		r[1] = (a[0] * r[1] - a[1] * r0) * det;
		return 0;
	}

	/* a = L L^T, L in the lower triangle (row-major) */
	for (int j = 0; j < b; j++)
	{
		double		d = a[j * b + j];

		for (int q = 0; q < j; q++)
			d -= a[j * b + q] * a[j * b + q];
		if (!(d > 0.0))
			return j + 1;
		d = sqrt(d);
		a[j * b + j] = d;
		for (int i = j + 1; i < b; i++)
		{
			double		v = a[i * b + j];

			for (int q = 0; q < j; q++)
				v -= a[i * b + q] * a[j * b + q];
			a[i * b + j] = v / d;
		}
	}
	for (int i = 0; i < b; i++)
	{
		double		v = r[i];

		for (int q = 0; q < i; q++)
			v -= a[i * b + q] * r[q];
		r[i] = v / a[i * b + i];
	}
	for (int i = b - 1; i >= 0; i--)
	{
		double		v = r[i];

		for (int q = i + 1; q < b; q++)
			v -= a[q * b + i] * r[q];
		r[i] = v / a[i * b + i];
	}
	return 0;
}

/*
 * Solve a block's system from its sums (h = sum_j w_j y_jB y_jB^T packed
 * as SubspacePassTiles leaves it, r = sum_j (1 + w_j - w_j s_j) y_jB):
 * a = S_BB + h (I + h in the whitened basis), r_B - (S z)_B (zs = S z), or
 * r_B - z_B (zs = z), plus mhat_B unless NULL; r becomes the step delta.
 * a: b x b scratch.  Returns as SubspaceSolve.  The single-node row sweep
 * and the distributed item half-step (distributed.c) share it.
 */
int
AlsSubspaceBlockSolve(bool whitened, const float *basis, int k, int f0, int b,
					  const double *h, double *r, const float *zs,
					  const float *mhat, double *a)
{
	/* The block's system: S_BB + the sums; r_B = sums + mhat_B - (S z)_B */
	for (int i = 0; i < b; i++)
	{
		for (int j = 0; j <= i; j++)
		{
			double		v = h[i * (i + 1) / 2 + j];

			if (whitened)
				v += i == j ? 1.0 : 0.0;
			else
				v += basis[(Size) (f0 + i) * k + f0 + j];
			a[i * b + j] = v;
			a[j * b + i] = v;
		}
		r[i] -= zs[f0 + i];
		if (mhat != NULL)
			r[i] += mhat[f0 + i];
	}
	return SubspaceSolve(a, r, b);
}

/*
 * One sweep of block coordinate descent over a row's coordinates z (in
 * the basis sb, updated in place), for the row's n entries (cols, extra
 * confidences w) and the prior's term mhat (lambda U^-T m, or lambda m;
 * NULL without a prior).  Returns 0, > 0 if a block's system is not
 * positive definite (only possible without the change of basis), < 0 on
 * a bug.
 */
static int
AlsImplicitRowSubspace(const AlsConfig *c, const SubspaceBasis *sb,
					   const int32 *cols, const float *w, int n,
					   AlsWorkspace *ws, const float *mhat, float *z)
{
	int			k = c->k;
	int			ntiles = (n + SUBSPACE_TILE - 1) / SUBSPACE_TILE;
	float	   *sz = ws->cg_r;		/* S z, without the change of basis */
	float	   *delta = ws->cg_p;
	double	   *a = ws->a;
	double	   *r = ws->b;
	int			pf0 = 0;
	int			pb = 0;

	if (!sb->whitened && !LinalgGemvN(k, k, sb->basis, k, z, sz))
		return LINALG_BAD_ARGUMENT;
#ifdef SUBSPACE_X86
	if (sb->avx2)
		SubspaceGatherAvx2(sb->vectors, cols, w, n, k, ws->zero_row, z,
						   ws->panel, ws->pred, ws->panel_w);
	else
#endif
		SubspaceGatherGeneric(sb->vectors, cols, w, n, k, ws->zero_row, z,
							  ws->panel, ws->pred, ws->panel_w);

	for (int f0 = 0; f0 < k; f0 += c->block_size)
	{
		int			b = Min(c->block_size, k - f0);
		int			info;

#ifdef SUBSPACE_X86
		if (sb->avx2)
			SubspacePassAvx2(ws->panel, ws->pred, ws->panel_w, ws->panel_t, ntiles,
							 k, pf0, pb, delta, f0, b, ws->packed, r);
		else
#endif
			SubspacePassGeneric(ws->panel, ws->pred, ws->panel_w, ws->panel_t,
								ntiles, k, pf0, pb, delta, f0, b, ws->packed, r);

		info = AlsSubspaceBlockSolve(sb->whitened, sb->basis, k, f0, b, ws->packed, r,
									 sb->whitened ? z : sz, mhat, a);
		if (info != 0)
			return info;
		for (int i = 0; i < b; i++)
		{
			delta[i] = (float) r[i];
			z[f0 + i] += delta[i];
		}
		if (!sb->whitened)
		{
			/* S z follows z: S is symmetric, so its column f0 + i is that row */
			for (int i = 0; i < b; i++)
			{
				const float *col = sb->basis + (Size) (f0 + i) * k;

				for (int f = 0; f < k; f++)
					sz[f] += delta[i] * col[f];
			}
		}
		pf0 = f0;
		pb = b;
	}
	return 0;
}

/* What the threads of a subspace half-step share */
typedef struct SubspaceTask
{
	const AlsConfig *c;
	const RecsysSparse *rows;
	const float *other_factors;
	int			nother;
	float	   *factors;
	SubspaceBasis sb;
	AlsWorkspace *ws;			/* one per thread */
	int		   *failed;			/* per thread: first failing row, or -1 */
	bool	   *bug;			/* per thread: a kernel refused its arguments */
} SubspaceTask;

/*
 * Rows [begin, end) of the other side into the basis: y' = U^-T y (no
 * PostgreSQL calls: runs on the half-step's threads)
 */
static bool
SubspaceBasisBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	SubspaceTask *t = (SubspaceTask *) arg;
	int			k = t->c->k;
	float	   *out = (float *) t->sb.vectors + (Size) begin * k;

	memcpy(out, t->other_factors + (Size) begin * k,
		   sizeof(float) * k * (Size) (end - begin));
	return LinalgTrsm(true, true, k, end - begin, 1.0f, t->sb.basis, k, out, k);
}

/*
 * Solve rows [begin, end) of a subspace half-step on one thread: the
 * block's factors into the basis (z = U x, in place), a sweep per row, and
 * back (x = U^-1 z); rows known only by features get their prior.  No
 * PostgreSQL calls: failures are recorded for the backend's thread.
 */
static bool
SubspaceBody(void *arg, int thread, int begin, int end)
{
	SubspaceTask *t = (SubspaceTask *) arg;
	const AlsConfig *c = t->c;
	const SubspaceBasis *sb = &t->sb;
	AlsWorkspace *ws = &t->ws[thread];
	int			k = c->k;
	float	   *block = t->factors + (Size) begin * k;

	if (sb->whitened &&
		!LinalgTrmm(true, false, k, end - begin, 1.0f, sb->basis, k, block, k))
	{
		t->bug[thread] = true;
		return false;
	}
	for (int r = begin; r < end; r++)
	{
		int64		first = t->rows->indptr[r];
		int			n = (int) (t->rows->indptr[r + 1] - first);
		float	   *mhat = NULL;
		int			info;

		if (c->side != NULL)
		{
			/* Rows known only by features are set below */
			if (n == 0)
				continue;
			/* The penalty lambda |x - m|^2 adds lambda m, here U^-T lambda m */
			AlsPrior(c->side, c->side_factors, k, r, ws->prior);
			for (int f = 0; f < k; f++)
				ws->prior[f] *= (float) c->regularization;
			if (sb->whitened &&
				!LinalgTrsm(true, true, k, 1, 1.0f, sb->basis, k, ws->prior, k))
			{
				t->bug[thread] = true;
				return false;
			}
			mhat = ws->prior;
		}
		info = AlsImplicitRowSubspace(c, sb, t->rows->indices + first,
									  t->rows->values + first, n, ws, mhat,
									  t->factors + (Size) r * k);
		if (info != 0)
		{
			t->failed[thread] = info > 0 ? r : -1;
			t->bug[thread] = info < 0;
			return false;
		}
	}
	if (sb->whitened &&
		!LinalgTrsm(true, false, k, end - begin, 1.0f, sb->basis, k, block, k))
	{
		t->bug[thread] = true;
		return false;
	}
	if (c->side != NULL)
	{
		/* Rows known only by features sit at their prior (see HalfStepBody) */
		for (int r = begin; r < end; r++)
			if (t->rows->indptr[r + 1] == t->rows->indptr[r])
				AlsPrior(c->side, c->side_factors, k, r, t->factors + (Size) r * k);
	}
	return true;
}

/* Bytes a memory block of n bytes takes, aligned for vector loads */
#define SUBSPACE_ALIGNED(n) add_size((n), 64)

/* Allocate n bytes in cxt, 64-byte aligned */
static void *
SubspaceAlloc(MemoryContext cxt, Size n)
{
	char	   *p = MemoryContextAllocExtended(cxt, SUBSPACE_ALIGNED(n),
											   MCXT_ALLOC_HUGE);

	return (void *) TYPEALIGN(64, p);
}

/*
 * Memory of the subspace solver beyond the workspaces: per thread a panel
 * for the longest row (and its predictions, weights, targets), and the
 * other side's vectors in the basis (nother: the larger side).
 */
Size
AlsSubspaceMemory(int k, int64 longest, int nother, int nthreads)
{
	Size		cap = (Size) TYPEALIGN(SUBSPACE_TILE, Max(longest, 1));
	Size		per_thread = add_size(mul_size(cap, mul_size(k + 3, sizeof(float))),
									  (Size) k * (k + 1) / 2 * sizeof(double) +
									  k * sizeof(float) + 6 * 64);

	return add_size(mul_size(per_thread, nthreads),
					add_size(mul_size(mul_size(nother, k), sizeof(float)),
							 (Size) k * k * sizeof(float) + 128));
}

/*
 * The subspace buffers of the workspaces, for rows of up to `longest`
 * entries and nother rows of the other side (backend thread; kept and
 * reused by later half-steps)
 */
static void
SubspaceEnsure(AlsWorkspace *ws, int nthreads, int k, int64 longest, int nother)
{
	MemoryContext cxt = GetMemoryChunkContext(ws[0].a);
	int64		cap = TYPEALIGN(SUBSPACE_TILE, Max(longest, 1));

	if (ws[0].basis == NULL)
		ws[0].basis = SubspaceAlloc(cxt, sizeof(float) * k * k);
	if (ws[0].vectors_cap < (Size) nother * k)
	{
		ws[0].vectors = SubspaceAlloc(cxt, mul_size(sizeof(float), mul_size(nother, k)));
		ws[0].vectors_cap = (Size) nother * k;
	}
	for (int t = 0; t < nthreads; t++)
	{
		if (ws[t].packed == NULL)
		{
			ws[t].packed = MemoryContextAlloc(cxt, sizeof(double) * k * (k + 1) / 2);
			ws[t].zero_row = MemoryContextAllocZero(cxt, sizeof(float) * k);
		}
		if (ws[t].panel_cap < cap)
		{
			/* Old buffers stay until the context goes (grown rarely) */
			ws[t].panel = SubspaceAlloc(cxt, mul_size(mul_size(cap, k), sizeof(float)));
			ws[t].pred = SubspaceAlloc(cxt, sizeof(float) * cap);
			ws[t].panel_w = SubspaceAlloc(cxt, sizeof(float) * cap);
			ws[t].panel_t = SubspaceAlloc(cxt, sizeof(float) * cap);
			ws[t].panel_cap = cap;
		}
	}
}

/* Whether the subspace kernels may use AVX2 and FMA (recsys.vector_kernels) */
bool
AlsSubspaceUseAvx2(void)
{
#ifdef SUBSPACE_X86
	const char *setting = GetConfigOption("recsys.vector_kernels", true, false);

	if (setting != NULL && strcmp(setting, "generic") == 0)
		return false;
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	return false;
#endif
}

/*
 * The coordinates of a subspace half-step, from the other side's Gram
 * matrix (yty in double, yty_f the same in float, k x k) and lambda, with
 * S = yty + lambda I: the change of basis S = U^T U when S is well enough
 * conditioned (returns true, basis = U: upper, column-major, zeros
 * below), else the original coordinates (returns false, basis = S in
 * float).  s: k x k and b: k doubles of scratch.  The single-node
 * half-step and the distributed one (distributed.c) choose alike.
 */
bool
AlsSubspaceBasis(int k, double lambda, const double *yty, const float *yty_f,
				 float *basis, double *s, double *b)
{
	double		trace = 0.0;

	/* The change of basis, S = U^T U, when S is well enough conditioned */
	for (int i = 0; i < k; i++)
		trace += yty[(Size) i * k + i] + lambda;
	if (lambda > 0.0 && trace / lambda <= SUBSPACE_MAX_CONDITION)
	{
		int			info;

		memcpy(s, yty, sizeof(double) * k * k);
		for (int i = 0; i < k; i++)
			s[(Size) i * k + i] += lambda;
		memset(b, 0, sizeof(double) * k);
		info = LinalgCholeskySolve(k, s, b);
		if (info < 0)
			elog(ERROR, "the Cholesky factorization of a Gram matrix refused its arguments, please report a bug");
		if (info == 0)
		{
			/* U: the upper triangle (column-major), zeros below */
			for (int j = 0; j < k; j++)
				for (int i = 0; i < k; i++)
					basis[(Size) j * k + i] = i <= j ? (float) s[(Size) j * k + i] : 0.0f;
			return true;
		}
	}
	/* The original coordinates: S itself */
	for (int i = 0; i < k * k; i++)
		basis[i] = yty_f[i];
	for (int i = 0; i < k; i++)
		basis[(Size) i * k + i] += (float) lambda;
	return false;
}

/*
 * A half-step of the subspace solver (AlsHalfStep, with ws[0].yty the
 * Gram matrix of the other side): choose the basis, move the other side
 * into it, then sweep every row.  Returns as AlsHalfStep.
 */
static int
SubspaceHalfStep(const AlsConfig *c, const RecsysSparse *rows,
				 const float *other_factors, int nother, float *factors,
				 AlsWorkspace *ws, int nthreads)
{
	int			k = c->k;
	double		lambda = c->regularization;
	int64		longest = 0;
	float	   *basis;
	SubspaceTask task;
	int			failed[PARALLEL_MAX_THREADS];
	bool		bug[PARALLEL_MAX_THREADS];

	if (c->block_size < 1 || c->block_size > k)
		elog(ERROR, "invalid block size %d for %d factors, please report a bug",
			 c->block_size, k);
	for (int r = 0; r < rows->nrows; r++)
		longest = Max(longest, rows->indptr[r + 1] - rows->indptr[r]);
	SubspaceEnsure(ws, nthreads, k, longest, nother);
	basis = ws[0].basis;

	memset(&task, 0, sizeof(task));
	task.sb.avx2 = AlsSubspaceUseAvx2();

	task.sb.whitened = AlsSubspaceBasis(k, lambda, ws[0].yty, ws[0].yty_f, basis,
										ws[0].a, ws[0].b);
	task.sb.basis = basis;
	task.sb.vectors = task.sb.whitened ? ws[0].vectors : other_factors;

	for (int t = 0; t < nthreads; t++)
	{
		failed[t] = -1;
		bug[t] = false;
	}
	task.c = c;
	task.rows = rows;
	task.other_factors = other_factors;
	task.nother = nother;
	task.factors = factors;
	task.ws = ws;
	task.failed = failed;
	task.bug = bug;
	if (task.sb.whitened &&
		!ParallelFor(nother, SUBSPACE_BASIS_ROWS, nthreads, SubspaceBasisBody, &task))
		elog(ERROR, "a BLAS call of a subspace half-step refused its arguments, please report a bug");

	/* Blocks of 32 rows, as AlsHalfStep */
	if (!ParallelFor(rows->nrows, 32, nthreads, SubspaceBody, &task))
	{
		for (int t = 0; t < nthreads; t++)
			if (bug[t])
				elog(ERROR, "a BLAS or LAPACK call of an ALS half-step refused its arguments, please report a bug");
		for (int t = 0; t < nthreads; t++)
			if (failed[t] >= 0)
				return failed[t];
	}
	return -1;
}

/* What the threads of one half-step share */
typedef struct HalfStepTask
{
	const AlsConfig *c;
	const RecsysSparse *rows;
	const float *other_factors;
	const float *other_bias;
	float	   *factors;
	float	   *bias;
	AlsWorkspace *ws;			/* one per thread */
	int		   *failed;			/* per thread: first failing row, or -1 */
	bool	   *bug;			/* per thread: a kernel refused its arguments */
} HalfStepTask;

/*
 * Solve rows [begin, end) of a half-step on one thread (no PostgreSQL
 * calls: failures are recorded for the backend's thread to report)
 */
static bool
HalfStepBody(void *arg, int thread, int begin, int end)
{
	HalfStepTask *t = (HalfStepTask *) arg;
	const AlsConfig *c = t->c;
	AlsWorkspace *ws = &t->ws[thread];
	int			k = c->k;

	for (int r = begin; r < end; r++)
	{
		int64		first = t->rows->indptr[r];
		int64		n = t->rows->indptr[r + 1] - first;
		const int32 *cols = t->rows->indices + first;
		const float *vals = t->rows->values + first;
		float	   *out = t->factors + (Size) r * k;
		const float *prior = NULL;
		bool		ok;
		int			info;

		if (c->side != NULL)
		{
			AlsPrior(c->side, c->side_factors, k, r, ws->prior);
			prior = ws->prior;
		}
		if (prior != NULL && n == 0)
		{
			/*
			 * A row known only by its features (a cold item or user): its
			 * interactions are unknown, not absent, so it sits at its prior
			 * mean, where its features put it.
			 */
			memcpy(out, prior, sizeof(float) * k);
			if (c->is_explicit)
				t->bias[r] = 0.0f;
			continue;
		}
		if (c->is_explicit)
			ok = AlsExplicitNormal(cols, vals, n, c->mean, t->other_factors,
								   t->other_bias, k, ws);
		else if (c->cg)
		{
			if (!AlsImplicitRowCG(c, cols, vals, n, t->other_factors, ws, prior, out))
			{
				t->bug[thread] = true;
				return false;
			}
			continue;
		}
		else
			ok = AlsImplicitNormal(cols, vals, n, t->other_factors, k, ws);
		if (ok && prior != NULL)
		{
			/* The penalty lambda |x - m|^2 adds lambda m to b */
			double		penalty = AlsRowPenalty(c, n);

			for (int f = 0; f < k; f++)
				ws->b[f] += penalty * prior[f];
		}
		if (!ok)
		{
			t->bug[thread] = true;
			return false;
		}

		info = AlsSolveRow(c, n, ws, out, t->bias + r);
		if (info != 0)
		{
			t->failed[thread] = r;
			t->bug[thread] = info < 0;
			return false;
		}
	}
	return true;
}

/*
 * One ALS half-step: re-solve every row of `rows` with the other side (of
 * nother rows) fixed, by the method's solver, on nthreads threads with one
 * workspace each (AlsWorkspacesCreate).  Rows are independent, so the
 * result does not depend on the number of threads.
 *
 * Returns -1 on success, or the index of a row whose normal equations were
 * not positive definite (only possible with zero regularization), which
 * the caller reports.  A kernel that refused its arguments (a bug) is
 * reported here, from the backend's thread, once the workers are joined.
 */
int
AlsHalfStep(const AlsConfig *c, const RecsysSparse *rows,
			const float *other_factors, const float *other_bias, int nother,
			float *factors, float *bias, AlsWorkspace *ws, int nthreads)
{
	HalfStepTask task;
	int			failed[PARALLEL_MAX_THREADS];
	bool		bug[PARALLEL_MAX_THREADS];

	/* Checked here, not in the threads: the kernels' dimensions follow */
	if (c->k < 1 || c->k > RECSYS_MAX_FACTORS || ws[0].d < c->k + (c->is_explicit ? 1 : 0))
		elog(ERROR, "invalid half-step dimensions (k = %d, workspace %d), please report a bug",
			 c->k, ws[0].d);

	/*
	 * Y^T Y is shared by every row: once per half-step, before the threads
	 * (rows of the other side with no entries, known only by features, stay
	 * out: unknown is not disliked).
	 */
	if (!c->is_explicit)
		AlsGramInto(other_factors, nother, c->k, c->other_rows, ws[0].yty,
					ws[0].yty_f, &ws[0]);
	if (!c->is_explicit && c->block_size > 0)
		return SubspaceHalfStep(c, rows, other_factors, nother, factors, ws,
								nthreads);

	for (int t = 0; t < nthreads; t++)
	{
		failed[t] = -1;
		bug[t] = false;
	}
	task.c = c;
	task.rows = rows;
	task.other_factors = other_factors;
	task.other_bias = other_bias;
	task.factors = factors;
	task.bias = bias;
	task.ws = ws;
	task.failed = failed;
	task.bug = bug;
	/* Blocks of 32 rows: fine-grained balance, prompt cancel */
	if (!ParallelFor(rows->nrows, 32, nthreads, HalfStepBody, &task))
	{
		for (int t = 0; t < nthreads; t++)
			if (bug[t])
				elog(ERROR, "a BLAS or LAPACK call of an ALS half-step refused its arguments, please report a bug");
		for (int t = 0; t < nthreads; t++)
			if (failed[t] >= 0)
				return failed[t];
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

/* What the threads computing a loss share */
typedef struct LossTask
{
	const AlsModel *m;
	const RecsysSparse *by_user;
	const AlsWorkspace *ws;		/* implicit: yty_f of the items */
	bool		implicit;
	double	   *blocks;			/* one partial sum per block of users */
	double	   *norms;			/* implicit: one partial |x_u|^2 per block */
} LossTask;

/* Rows of users per partial sum; fixed so the total does not vary */
#define LOSS_BLOCK_USERS 256

/*
 * Partial loss sums over users [begin, end) (no PostgreSQL calls).
 *
 * Explicit: the squared errors.  Implicit: x_u^T (Y^T Y) x_u plus, for each
 * observed pair, c (1 - s)^2 - s^2, which replaces the confidence-1,
 * preference-0 term of that pair by the real one.
 */
static bool
LossBody(void *arg, pg_attribute_unused() int thread, int begin, int end)
{
	LossTask   *t = (LossTask *) arg;
	const AlsModel *m = t->m;
	const RecsysSparse *by_user = t->by_user;
	int			k = m->k;
	float		gx[RECSYS_MAX_FACTORS];
	double		total = 0.0;
	double		norms = 0.0;

	for (int u = begin; u < end; u++)
	{
		const float *x = m->user_factors + (Size) u * k;
		double		base = m->mean + m->user_bias[u];

		/* A user known only by features is not in the objective */
		if (by_user->indptr[u + 1] == by_user->indptr[u])
			continue;
		if (t->implicit)
		{
			if (!LinalgGemvN(k, k, t->ws->yty_f, k, x, gx))
				return false;
			total += SimdDotGeneric(x, gx, k);
			norms += SquaredNorm(x, k);
		}
		for (int64 e = by_user->indptr[u]; e < by_user->indptr[u + 1]; e++)
		{
			int32		i = by_user->indices[e];
			double		s = SimdDot(x, m->item_factors + (Size) i * k, k);

			if (t->implicit)
			{
				double		c = 1.0 + by_user->values[e];

				total += c * (1.0 - s) * (1.0 - s) - s * s;
			}
			else
			{
				double		err = by_user->values[e] - (base + m->item_bias[i] + s);

				total += err * err;
			}
		}
	}

	/* ParallelFor hands out exactly one aligned block per call */
	t->blocks[begin / LOSS_BLOCK_USERS] = total;
	t->norms[begin / LOSS_BLOCK_USERS] = norms;
	return true;
}

/* Run LossBody over all users; returns the sum, adds user norms to *norms */
static double
LossSum(LossTask *t, int nthreads, double *norms)
{
	int			nusers = t->by_user->nrows;
	int			nblocks = (nusers + LOSS_BLOCK_USERS - 1) / LOSS_BLOCK_USERS;
	double		total = 0.0;

	t->blocks = palloc0(sizeof(double) * Max(nblocks, 1));
	t->norms = palloc0(sizeof(double) * Max(nblocks, 1));

	/* Threads take whole blocks, so each partial sum is computed alike */
	if (!ParallelFor(nusers, LOSS_BLOCK_USERS, nthreads, LossBody, t))
		elog(ERROR, "a BLAS call of the training loss refused its arguments, please report a bug");

	/* Summed in block order: the same result whatever the threads did */
	for (int b = 0; b < nblocks; b++)
	{
		total += t->blocks[b];
		*norms += t->norms[b];
	}
	pfree(t->blocks);
	pfree(t->norms);
	return total;
}

/*
 * Explicit training loss: the regularized objective divided by the number
 * of interactions (so it is comparable across data sizes), and training
 * RMSE.
 */
AlsLoss
AlsExplicitLoss(const AlsModel *m, const RecsysSparse *by_user,
				const RecsysSparse *by_item, double regularization,
				int nthreads)
{
	LossTask	t = {m, by_user, NULL, false, NULL, NULL};
	double		unused = 0.0;
	double		sse = LossSum(&t, nthreads, &unused);
	AlsLoss		result;

	result.rmse = sqrt(sse / (double) by_user->nnz);
	result.loss = (sse + regularization *
				   (PenaltyOf(by_user, m->user_factors, m->user_bias, m->k) +
					PenaltyOf(by_item, m->item_factors, m->item_bias, m->k)))
		/ (double) by_user->nnz;
	return result;
}

/*
 * Implicit training loss, divided by the number of interactions:
 *
 *	sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum |x_u|^2 + sum |y_i|^2)
 *
 * over all user-item pairs (of users and items with interactions),
 * computed in O(nnz k + nusers k^2) as
 * sum_u x_u^T (Y^T Y) x_u plus corrections for the observed pairs.
 */
AlsLoss
AlsImplicitLoss(const AlsModel *m, const RecsysSparse *by_user,
				const RecsysSparse *by_item, double regularization,
				AlsWorkspace *ws, int nthreads)
{
	LossTask	t = {m, by_user, ws, true, NULL, NULL};
	double		norms = 0.0;
	double		total;
	AlsLoss		result;

	/* Items known only by features are not in it either (as in training) */
	AlsGramInto(m->item_factors, m->nitems, m->k, by_item, ws->yty, ws->yty_f, ws);
	total = LossSum(&t, nthreads, &norms);
	for (int i = 0; i < m->nitems; i++)
		if (by_item->indptr[i + 1] > by_item->indptr[i])
			norms += SquaredNorm(m->item_factors + (Size) i * m->k, m->k);

	result.loss = (total + regularization * norms) / (double) by_user->nnz;
	result.rmse = NAN;
	return result;
}
