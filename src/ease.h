/*-------------------------------------------------------------------------
 *
 * ease.h
 *	  EASE item-item model on plain arrays (no fmgr, no SPI).
 *
 * IDENTIFICATION
 *	  src/ease.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EASE_H
#define EASE_H

#include "knn.h"
#include "recsys.h"


/* EaseBuild's results other than 0 (success) */
#define EASE_NOT_POSITIVE_DEFINITE	1	/* raise the regularization */
#define EASE_VALUES_TOO_LARGE		2	/* X^T X overflows float */

/* Seconds each phase of EaseBuild took */
typedef struct EaseStats
{
	double		gram;			/* X^T X + lambda I */
	double		cholesky;		/* blocked Cholesky factorization */
	double		inverse;		/* U^-1, then P = U^-1 U^-T */
	double		extract;		/* B = -P / diag(P) and top-k per item */
} EaseStats;

extern int	EaseNeighbors(int nitems, int neighbors);
extern Size EaseMemory(int nitems, int neighbors, int nthreads);
extern int	EaseBuild(const RecsysSparse *by_user, double lambda, bool binary,
					  int neighbors, int nthreads, KnnGraph *out,
					  EaseStats *stats);

#endif							/* EASE_H */
