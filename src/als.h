/*-------------------------------------------------------------------------
 *
 * als.h
 *	  Alternating least squares on plain arrays (no fmgr, no SPI).
 *
 * IDENTIFICATION
 *	  src/als.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ALS_H
#define ALS_H

#include "recsys.h"

/* Rows of the other side gathered per BLAS call; bounds workspace memory */
#define ALS_GATHER_ROWS 512

/* Entries per tile of the subspace solver's panels (one 8-float vector) */
#define ALS_SUBSPACE_TILE 8

/* Factors of a model being trained: row-major, one vector per user/item */
typedef struct AlsModel
{
	int			k;
	int			nusers;
	int			nitems;
	double		mean;
	float	   *user_factors;	/* nusers x k */
	float	   *user_bias;		/* nusers */
	float	   *item_factors;	/* nitems x k */
	float	   *item_bias;		/* nitems */
} AlsModel;

/* Scratch space for solving one row at a time */
typedef struct AlsWorkspace
{
	int			d;				/* unknowns per row: k factors + 1 bias */
	int64		capacity;		/* rows gather and targets hold */
	float	   *gather;			/* capacity x d gathered vectors */
	float	   *targets;		/* capacity targets of one block */
	float	   *rhs;			/* d right-hand side of one block */
	float	   *gram;			/* d x d Gram matrix of one gather block */
	double	   *a;				/* d x d normal equations */
	double	   *b;				/* d right-hand side, then solution */
	double	   *yty;			/* k x k Gram of the fixed side (implicit) */
	float	   *yty_f;			/* the same in float, for products */
	float	   *cg_r;			/* conjugate gradient vectors, k each */
	float	   *cg_p;
	float	   *cg_ap;
	float	   *cg_tmp;
	float	   *prior;			/* hybrid: one row's prior mean sum_f s_f g_f */

	/*
	 * Subspace solver (allocated by the first half-step that needs them):
	 * one row's vectors in tiles of 8, its predictions, weights and targets;
	 * the first workspace also holds the half-step's basis and the other
	 * side's vectors in it, which every thread reads.
	 */
	float	   *panel;			/* tiles of 8 rows x k, transposed */
	float	   *pred;			/* padded length: y_j . x per entry */
	float	   *panel_w;		/* the entries' weights w_j, 0 for padding */
	float	   *panel_t;		/* targets 1 + w_j - w_j (y_j . x) */
	double	   *packed;			/* one block's sums: packed triangle */
	int64		panel_cap;		/* entries the four hold */
	float	   *zero_row;		/* k zeros: the padding's vector */
	float	   *basis;			/* k x k (first workspace) */
	float	   *vectors;		/* the other side in the basis (first) */
	Size		vectors_cap;	/* floats it holds */
} AlsWorkspace;

/* What a half-step needs to know about the model being trained */
typedef struct AlsConfig
{
	bool		is_explicit;	/* explicit ALS (biases, ALS-WR), else implicit */
	int			k;
	double		regularization;
	double		mean;			/* explicit: global mean */
	bool		cg;				/* implicit: conjugate gradient, not Cholesky */
	int			cg_steps;
	int			block_size;		/* implicit: > 0 for the subspace solver
								 * (iALS++), its coordinates per block */

	/*
	 * Hybrid models: the features of the rows being solved, or NULL (the
	 * rows' priors are regressed on their features: factor_model.c)
	 */
	const RecsysSparse *side;	/* rows x features: weights s_rf */
	const float *side_factors;	/* features x k: g_f */
	const RecsysSparse *other_rows; /* rows of the other side; those without
									 * entries stay out of its Gram (or NULL) */
} AlsConfig;

/* Loss of a model on its training data */
typedef struct AlsLoss
{
	double		loss;			/* regularized objective / nnz */
	double		rmse;			/* root mean squared training error */
} AlsLoss;

extern Size AlsModelMemory(int k, int nusers, int nitems);
extern Size AlsWorkspaceMemory(int k, int64 rows);
extern void AlsModelInit(AlsModel *m, int k, int nusers, int nitems,
						 double mean, uint64 seed);
extern void AlsWorkspaceInit(AlsWorkspace *ws, int d, int64 rows);
extern Size AlsPackedSize(int d);
extern void AlsAccumulateRow(double *a, double *b, int d, const float *x,
							 double y);
extern void AlsUnpack(const double *packed, double *a, int d);
extern int	AlsSolve(double *a, double *b, int d, double lambda);
extern bool AlsExplicitNormal(const int32 *cols, const float *vals, int64 n,
							  double mean, const float *other_factors,
							  const float *other_bias, int k,
							  AlsWorkspace *ws);
extern void AlsGram(const float *factors, int n, int k, AlsWorkspace *ws);
extern void AlsGramInto(const float *factors, int n, int k,
						const RecsysSparse *skip_empty,
						double *g, float *g_f, AlsWorkspace *ws);
extern void AlsFeatureStep(const RecsysSparse *s, const RecsysSparse *kept,
						   bool by_count, const float *row_factors, int k,
						   double lambda, int steps, float *g);
extern double AlsPriorCorrection(const RecsysSparse *s, const RecsysSparse *kept,
								 bool by_count, const float *row_factors,
								 const float *g, int k);
extern void AlsPrior(const RecsysSparse *features, const float *feature_factors,
					 int k, int row, float *out);
extern bool AlsImplicitNormal(const int32 *cols, const float *w, int64 n,
							  const float *other_factors, int k,
							  AlsWorkspace *ws);
extern double AlsRowPenalty(const AlsConfig *c, int64 n);
extern int	AlsSolveRow(const AlsConfig *c, int64 n, AlsWorkspace *ws,
						float *factors_out, float *bias_out);
extern AlsWorkspace *AlsWorkspacesCreate(int nthreads, int d, int64 rows);
extern Size AlsSubspaceMemory(int k, int64 longest, int nother, int nthreads);
extern bool AlsSubspaceBasis(int k, double lambda, const double *yty,
							 const float *yty_f, float *basis, double *s,
							 double *b);
extern bool AlsSubspaceUseAvx2(void);
extern void AlsSubspaceShardPass(bool avx2, const float *rows, int pb, int b,
								 int64 nrows, const int32 *cols, int ntiles,
								 float *pred, const float *pw, const float *delta,
								 float *panel, float *pt, double *h, double *r);
extern int	AlsSubspaceBlockSolve(bool whitened, const float *basis, int k,
								  int f0, int b, const double *h, double *r,
								  const float *zs, const float *mhat,
								  double *a);
extern int	AlsHalfStep(const AlsConfig *c, const RecsysSparse *rows,
						const float *other_factors, const float *other_bias,
						int nother, float *factors, float *bias,
						AlsWorkspace *ws, int nthreads);
extern AlsLoss AlsExplicitLoss(const AlsModel *m, const RecsysSparse *by_user,
							   const RecsysSparse *by_item,
							   double regularization, int nthreads);
extern AlsLoss AlsImplicitLoss(const AlsModel *m, const RecsysSparse *by_user,
							   const RecsysSparse *by_item,
							   double regularization, AlsWorkspace *ws,
							   int nthreads);

#endif							/* ALS_H */
