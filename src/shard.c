/*-------------------------------------------------------------------------
 *
 * shard.c
 *	  The shard side of distributed training (distributed.c drives it).
 *
 * A source partitioned by user over postgres_fdw servers trains as
 * Spark MLlib's blocked ALS does, with PostgreSQL's own connections: the
 * coordinator opens one session per shard for the whole training, and each
 * shard's backend keeps its part of the work in that session's memory:
 *
 *	- shard_open reads the shard's local rows (with the mapped role's
 *	  privileges and row-level security) into user- and item-major
 *	  matrices and returns its user and item ids;
 *	- shard_setup receives the global item order (the union of all
 *	  shards' items, ascending, as a single-node training numbers them),
 *	  the global mean and the initial factors of its users;
 *	- per iteration, the item half-step by the model's solver:
 *	  shard_item_normals returns, for each item its users touched, the
 *	  partial normal equations of the item half-step over those users
 *	  (summed by the coordinator, which solves the items), and for
 *	  implicit models the partial Gram matrix of its users; or
 *	  shard_item_cg, one round of the distributed CG steps; or shard_gram
 *	  (the users' Gram matrix, in double) and then shard_item_subspace,
 *	  one block of the subspace (iALS++) sweep per call: the users'
 *	  vectors in the coordinator's basis and a prediction per row are kept
 *	  between the calls, and each call takes the previous block's steps
 *	  and returns each item's partial b x b system;
 *	  shard_user_step receives the new item factors and re-solves its
 *	  users with the same kernels as a single-node training (AlsHalfStep),
 *	  returning its part of the training loss;
 *	- shard_export streams the final user rows; shard_close frees it all.
 *
 * The user factors never leave the shard until the end, and no table is
 * written on a shard: a failed or cancelled training leaves nothing behind
 * there (the session's memory goes with its backend).  Bulk data travels
 * as bytea in the binary protocol (ShardPack*, a header then raw arrays),
 * between builds of the same library on machines of the same byte order
 * (checked by the header).
 *
 * IDENTIFICATION
 *	  src/shard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "als.h"
#include "catalog/pg_type.h"
#include "linalg.h"
#include "funcapi.h"
#include "method.h"
#include "miscadmin.h"
#include "parallel.h"
#include "ratings.h"
#include "shard.h"
#include "simd.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

/* One training's state on this shard, in this session */
typedef struct ShardState
{
	MemoryContext cxt;
	RecsysParams params;
	AlsConfig	config;
	RecsysRatings *r;			/* local rows; columns: local item indexes */
	RecsysSparse by_user;		/* the same, columns: global item indexes */
	float	   *raw_values;		/* implicit: the values before weighting */
	int32	   *global_item;	/* local item index -> global index */
	int			nitems_global;
	float	   *x;				/* local users' factors */
	float	   *xbias;
	float	   *y;				/* the global item factors, as last sent */
	float	   *ybias;
	AlsWorkspace *ws;
	int64		export_next;	/* shard_export: the next user */
	bool		ready;			/* shard_setup has completed */

	/*
	 * The subspace item half-step (shard_item_subspace): the users'
	 * vectors in the half-step's basis, block-major, each block's then a
	 * zero vector (the block from f0 of b coordinates holds user u's at
	 * sub_vectors[(nusers + 1) f0 + u b + a], zeros for u = nusers), each
	 * block call's rows (user u's coordinates of the previous block then
	 * of this one, from sub_vectors), and per entry of by_item, each
	 * item's entries padded to whole tiles from sub_off[i], the user
	 * (nusers, the zero vector, for padding), the prediction and the
	 * weight (0 for padding).
	 */
	float	   *sub_vectors;
	float	   *sub_rows;
	int32	   *sub_cols;
	float	   *sub_pred;
	int32	   *sub_pos;		/* by_user entry -> its sub_pred, or NULL */
	bool		sub_pred_fresh; /* sub_pred holds the last user step's dots */
	float	   *sub_w;
	int64	   *sub_off;		/* nitems + 1 */
	float	  **sub_panel;		/* per thread: one item's panel */
	float	  **sub_pt;			/* per thread: its targets (general kernel) */
	double	  **sub_sums;		/* per thread: one item's h and r */
	int			sub_threads;	/* threads the buffers were made for */
	int			sub_next;		/* the next block's first coordinate, or -1 */
	int			sub_prev_b;		/* the size of the last block sent back */
	bool		sub_avx2;
} ShardState;

static ShardState *shard = NULL;

/*
 * The session's training, erroring unless it is open and (ready) set up by
 * shard_setup, or (!ready) opened but not yet set up: the functions are
 * callable by hand, and each step dereferences what the one before built.
 */
static ShardState *
CurrentShard(bool ready)
{
	if (shard == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no distributed training is open in this session"),
				 errhint("These functions are called by a coordinator's train(); see doc/scale-out.md.")));
	if (shard->ready != ready)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg(ready ? "the distributed training of this session is not set up"
						: "the distributed training of this session is already set up"),
				 errhint("These functions are called by a coordinator's train(); see doc/scale-out.md.")));
	return shard;
}

/* Error if argument argno is NULL */
static void
RequireArg(FunctionCallInfo fcinfo, int argno, const char *func)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument %d of %s must not be null", argno + 1, func)));
}

/* Header of a packed array: magic, element size, count */
typedef struct ShardPackHeader
{
	uint32		magic;
	uint32		elem;
	int64		count;
} ShardPackHeader;

#define SHARD_PACK_MAGIC 0x52535953	/* "RSYS" in this byte order */

/* A bytea holding a header and n elements of size elem from data */
bytea *
ShardPack(const void *data, int64 n, uint32 elem)
{
	Size		len = sizeof(ShardPackHeader) + (Size) n * elem;
	bytea	   *b;
	ShardPackHeader h;

	if (len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a block of %lld elements is too large to send", (long long) n)));
	b = palloc(len + VARHDRSZ);
	SET_VARSIZE(b, len + VARHDRSZ);
	h.magic = SHARD_PACK_MAGIC;
	h.elem = elem;
	h.count = n;
	memcpy(VARDATA(b), &h, sizeof(h));
	if (n > 0)
		memcpy(VARDATA(b) + sizeof(h), data, (Size) n * elem);
	return b;
}

/* The elements of a packed bytea (pointing into it), checking the header */
const void *
ShardUnpack(const char *data, Size len, uint32 elem, int64 *n)
{
	ShardPackHeader h;

	if (len < sizeof(h))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a distributed training block is truncated")));
	memcpy(&h, data, sizeof(h));
	if (h.magic != SHARD_PACK_MAGIC || h.elem != elem || h.count < 0 ||
		sizeof(h) + (Size) h.count * elem != len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a distributed training block is not what this build of recsys sends"),
				 errhint("Install the same version of recsys on the coordinator and every shard, on machines of the same byte order.")));
	*n = h.count;
	return data + sizeof(h);
}

/*
 * Several arrays packed one after the other (each as ShardPack packs it)
 * into one buffer, for one bytea parameter: each element is copied once.
 * *len is the buffer's length, which a libpq parameter holds in an int.
 */
char *
ShardPackBlocks(const ShardBlock *blocks, int n, int *len)
{
	Size		total = 0;
	char	   *out;
	char	   *p;

	for (int b = 0; b < n; b++)
		total += sizeof(ShardPackHeader) + (Size) blocks[b].n * blocks[b].elem;
	if (total > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a block of %zu bytes is too large to send to a shard", total),
				 errhint("SET recsys.shard_local_serving = off to serve on the coordinator.")));
	out = palloc_extended(Max(total, 1), MCXT_ALLOC_HUGE);
	p = out;
	for (int b = 0; b < n; b++)
	{
		ShardPackHeader h;

		h.magic = SHARD_PACK_MAGIC;
		h.elem = blocks[b].elem;
		h.count = blocks[b].n;
		memcpy(p, &h, sizeof(h));
		p += sizeof(h);
		if (blocks[b].n > 0)
			memcpy(p, blocks[b].data, (Size) blocks[b].n * blocks[b].elem);
		p += (Size) blocks[b].n * blocks[b].elem;
	}
	*len = (int) total;
	return out;
}

/*
 * The next packed block of a concatenation of blocks (several arrays sent
 * as one bytea), copied to MAXALIGNed memory; advances *data and *len.
 */
void *
ShardUnpackNext(const char **data, Size *len, uint32 elem, int64 *n)
{
	ShardPackHeader h;
	Size		size;
	const void *p;
	void	   *copy;

	if (*len < sizeof(h))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a distributed serving block is truncated")));
	memcpy(&h, *data, sizeof(h));
	if (h.count < 0 || h.elem != elem || (Size) h.count > (*len - sizeof(h)) / Max(elem, 1))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("a distributed serving block is not what this build of recsys sends"),
				 errhint("Install the same version of recsys on the coordinator and every shard, on machines of the same byte order.")));
	size = sizeof(h) + (Size) h.count * elem;
	p = ShardUnpack(*data, size, elem, n);
	copy = palloc_extended(Max((Size) *n * elem, 1), MCXT_ALLOC_HUGE);
	if (*n > 0)
		memcpy(copy, p, (Size) *n * elem);
	*data += size;
	*len -= size;
	return copy;
}

/* The elements of a bytea argument */
static const void *
PackArg(FunctionCallInfo fcinfo, int argno, uint32 elem, int64 *n)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(argno);

	return ShardUnpack(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), elem, n);
}

/* Free a training's state */
static void
CloseShard(void)
{
	if (shard != NULL)
	{
		MemoryContextDelete(shard->cxt);
		shard = NULL;
	}
}

/*
 * Read this shard's rows into a new training state s and fill the result
 * row of shard_open (values[0..6]), in s's context.
 */
static void
ShardOpenRead(FunctionCallInfo fcinfo, ShardState *s, Datum *values)
{
	RatingsSource src;
	int64	   *counts;
	double		sum = 0.0;

	s->params.method = MethodLookup(text_to_cstring(PG_GETARG_TEXT_PP(4)));
	if (!s->params.method->factors)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distributed training of method \"%s\" is not supported",
						s->params.method->name)));
	MethodDefaults(s->params.method, &s->params);
	MethodParseOptions(s->params.method, &s->params, PG_GETARG_JSONB_P(5), true, NULL);

	memset(&src, 0, sizeof(src));
	src.relid = PG_GETARG_OID(0);
	src.user_col = NameStr(*PG_GETARG_NAME(1));
	src.item_col = NameStr(*PG_GETARG_NAME(2));
	src.value_col = PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3));
	src.sum_duplicates = !s->params.method->explicit_values;
	RatingsPrepare(&src, &s->params);
	s->r = RatingsLoad(&src, NULL, NULL);
	for (int64 e = 0; e < s->r->nnz; e++)
		sum += s->r->by_user.values[e];

	values[0] = PointerGetDatum(ShardPack(s->r->user_ids, s->r->nusers, sizeof(int64)));
	values[1] = PointerGetDatum(ShardPack(s->r->item_ids, s->r->nitems, sizeof(int64)));
	values[2] = Int64GetDatum(s->r->nnz);
	values[3] = Float8GetDatum(sum);
	values[4] = Int64GetDatum(s->r->null_values);
	values[5] = Int64GetDatum(s->r->duplicates);
	counts = palloc(sizeof(int64) * Max(s->r->nitems, 1));
	for (int i = 0; i < s->r->nitems; i++)
		counts[i] = s->r->by_item.indptr[i + 1] - s->r->by_item.indptr[i];
	values[6] = PointerGetDatum(ShardPack(counts, s->r->nitems, sizeof(int64)));
}

PG_FUNCTION_INFO_V1(recsys_shard_open);

/*
 * shard_open(source, user_col, item_col, value_col, method, params): read
 * the shard's rows and open a training; returns (users, items, nnz,
 * value_sum, null_values, duplicates, item_counts): the sorted user and
 * item ids packed, and what the coordinator adds up.
 */
Datum
recsys_shard_open(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	MemoryContext old;
	MemoryContext cxt;
	ShardState *s;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "shard_open must return a row");
	for (int a = 0; a < 6; a++)
		if (a != 3)
			RequireArg(fcinfo, a, "shard_open");
	CloseShard();

	/*
	 * The state becomes the session's only once complete: a failed open
	 * must not leave a half-built one for the next call to dereference.
	 */
	cxt = AllocSetContextCreate(TopMemoryContext, "recsys shard training",
								ALLOCSET_DEFAULT_SIZES);
	s = MemoryContextAllocZero(cxt, sizeof(ShardState));
	s->cxt = cxt;
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		ShardOpenRead(fcinfo, s, values);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	shard = s;
	MemoryContextSwitchTo(old);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

PG_FUNCTION_INFO_V1(recsys_shard_setup);

/*
 * shard_setup(items, mean, init): the global item ids (ascending), the
 * global mean (explicit models) and the initial factors of this shard's
 * users (in its user order).
 */
Datum
recsys_shard_setup(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(false);
	const RecsysParams *p = &s->params;
	int64		nglobal;
	const int64 *items;
	int64		ninit;
	const float *init;
	int			k = p->factors;
	MemoryContext old;
	RecsysRatings *r = s->r;
	int			g = 0;

	RequireArg(fcinfo, 0, "shard_setup");
	RequireArg(fcinfo, 2, "shard_setup");
	items = PackArg(fcinfo, 0, sizeof(int64), &nglobal);
	init = PackArg(fcinfo, 2, sizeof(float), &ninit);
	if (ninit != (int64) r->nusers * k || nglobal > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard_setup got %lld initial factors for %d users of %d factors",
						(long long) ninit, r->nusers, k)));
	for (int64 j = 1; j < nglobal; j++)
		if (items[j - 1] >= items[j])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("shard_setup got item ids out of ascending order at position %lld",
							(long long) j)));
	old = MemoryContextSwitchTo(s->cxt);

	/* Both id lists ascending: a merge maps local items to global ones */
	s->nitems_global = (int) nglobal;
	s->global_item = palloc(sizeof(int32) * Max(r->nitems, 1));
	for (int i = 0; i < r->nitems; i++)
	{
		while (g < nglobal && items[g] < r->item_ids[i])
			g++;
		if (g == nglobal || items[g] != r->item_ids[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("item %lld of this shard is not in the coordinator's item list",
							(long long) r->item_ids[i])));
		s->global_item[i] = g;
	}

	/* The user-major matrix over global item columns */
	s->by_user = r->by_user;
	s->by_user.ncols = s->nitems_global;
	s->by_user.indices = palloc_extended(sizeof(int32) * Max(r->nnz, 1), MCXT_ALLOC_HUGE);
	for (int64 e = 0; e < r->nnz; e++)
		s->by_user.indices[e] = s->global_item[r->by_user.indices[e]];

	/* Implicit: keep the raw values (stored), weight the kernels' copies */
	if (!p->method->explicit_values)
	{
		s->raw_values = palloc_extended(sizeof(float) * Max(r->nnz, 1), MCXT_ALLOC_HUGE);
		memcpy(s->raw_values, r->by_user.values, sizeof(float) * r->nnz);
		s->by_user.values = palloc_extended(sizeof(float) * Max(r->nnz, 1), MCXT_ALLOC_HUGE);
		for (int64 e = 0; e < r->nnz; e++)
			s->by_user.values[e] = (float) RecsysConfidence(p->scaling, p->alpha,
															p->epsilon, s->raw_values[e]);
		for (int64 e = 0; e < r->by_item.nnz; e++)
			r->by_item.values[e] = (float) RecsysConfidence(p->scaling, p->alpha,
															p->epsilon, r->by_item.values[e]);
	}

	memset(&s->config, 0, sizeof(AlsConfig));
	s->config.is_explicit = p->method->explicit_values;
	s->config.k = k;
	s->config.regularization = p->regularization;
	s->config.mean = s->config.is_explicit && !PG_ARGISNULL(1) ? PG_GETARG_FLOAT8(1) : 0.0;
	s->config.cg = p->solver == RECSYS_SOLVER_CG;
	s->config.cg_steps = p->cg_steps;
	/* As a single-node training configures it (factor_model.c ConfigOf) */
	if (p->solver == RECSYS_SOLVER_SUBSPACE && !s->config.is_explicit)
		s->config.block_size = Max(1, Min(p->block_size, k));
	s->sub_next = -1;

	s->x = palloc_extended(sizeof(float) * Max((Size) r->nusers * k, 1), MCXT_ALLOC_HUGE);
	memcpy(s->x, init, sizeof(float) * (Size) r->nusers * k);
	s->xbias = palloc0(sizeof(float) * Max(r->nusers, 1));
	s->y = palloc0(sizeof(float) * Max((Size) s->nitems_global * k, 1));
	s->ybias = palloc0(sizeof(float) * Max(s->nitems_global, 1));
	s->ws = AlsWorkspacesCreate(ParallelThreads(), k + 1, 0);
	/* Only now may the steps run (an error above leaves it not ready) */
	s->ready = true;
	MemoryContextSwitchTo(old);
	PG_RETURN_VOID();
}

/* Items per row of shard_item_normals: bounds each bytea */
#define SHARD_NORMAL_BLOCK 256

PG_FUNCTION_INFO_V1(recsys_shard_item_normals);

/*
 * shard_item_normals(): the item half-step's partial normal equations over
 * this shard's users, for every item they touched, in blocks: rows of
 * (kind, data), kind 'gram' (implicit: X^T X of the users, k x k) or
 * 'items': per item int32 global index, int32 count, then floats: the
 * packed upper triangle of A and b (d = k, or k + 1 for explicit models,
 * whose targets are the values minus the mean and the user biases).
 */
Datum
recsys_shard_item_normals(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(true);
	RecsysRatings *r = s->r;
	const AlsConfig *c = &s->config;
	int			k = c->k;
	int			d = c->is_explicit ? k + 1 : k;
	Size		packed = AlsPackedSize(d);
	Size		per_item = 2 + packed + d;	/* in 4-byte words */
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AlsWorkspace *ws = &s->ws[0];
	float	   *block = palloc(sizeof(float) * per_item * SHARD_NORMAL_BLOCK);
	int			inblock = 0;

	InitMaterializedSRF(fcinfo, 0);

	if (!c->is_explicit)
	{
		/* The users' Gram matrix, partial: X_s^T X_s */
		Datum		values[2];
		bool		nulls[2] = {false, false};
		float	   *g = palloc(sizeof(float) * k * k);

		AlsGram(s->x, r->nusers, k, ws);
		for (int i = 0; i < k * k; i++)
			g[i] = (float) ws->yty[i];
		values[0] = CStringGetTextDatum("gram");
		values[1] = PointerGetDatum(ShardPack(g, (int64) k * k, sizeof(float)));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	for (int i = 0; i < r->nitems; i++)
	{
		int64		first = r->by_item.indptr[i];
		int64		n = r->by_item.indptr[i + 1] - first;
		const int32 *cols = r->by_item.indices + first;
		const float *vals = r->by_item.values + first;
		float	   *out = block + (Size) inblock * per_item;
		int32		head[2];
		bool		ok;
		Size		pos = 0;

		if ((i % 256) == 0)
			CHECK_FOR_INTERRUPTS();
		if (c->is_explicit)
			ok = AlsExplicitNormal(cols, vals, n, c->mean, s->x, s->xbias, k, ws);
		else
		{
			/* The item's own part only: the Gram is summed once, above */
			memset(ws->yty, 0, sizeof(double) * k * k);
			ok = AlsImplicitNormal(cols, vals, n, s->x, k, ws);
		}
		if (!ok)
			elog(ERROR, "a BLAS call of the shard's item normals refused its arguments, please report a bug");
		head[0] = s->global_item[i];
		head[1] = (int32) n;
		memcpy(out, head, sizeof(head));
		pos = 2;
		for (int j = 0; j < d; j++)
			for (int l = 0; l <= j; l++)
				out[pos++] = (float) ws->a[(Size) j * d + l];
		for (int j = 0; j < d; j++)
			out[pos++] = (float) ws->b[j];

		if (++inblock == SHARD_NORMAL_BLOCK || i == r->nitems - 1)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = CStringGetTextDatum("items");
			values[1] = PointerGetDatum(ShardPack(block, (int64) inblock * per_item,
												  sizeof(float)));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			inblock = 0;
		}
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_shard_item_cg);

/*
 * shard_item_cg(p): one round of the distributed conjugate-gradient item
 * half-step (implicit models), over this shard's users, for its items in
 * its own (ascending id) order.  With p NULL, the first round: the users'
 * Gram matrix (k x k) and, per item, sum_u (1 + w - w (x_u . y_i)) x_u,
 * the right-hand side minus the item's own product (the current item
 * factors are those of the last shard_user_step); otherwise, per item,
 * sum_u w (x_u . p_i) x_u for the directions p (k floats per item).  The
 * same kernel as the single-node solver (SimdSparseUpdate).
 */
Datum
recsys_shard_item_cg(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(true);
	RecsysRatings *r = s->r;
	int			k = s->config.k;
	const float *p = NULL;
	float	   *out = palloc0(sizeof(float) * Max((Size) r->nitems * k, 1));
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "shard_item_cg must return a row");
	if (s->config.is_explicit)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("shard_item_cg serves implicit models")));
	if (!PG_ARGISNULL(0))
	{
		int64		n;

		p = PackArg(fcinfo, 0, sizeof(float), &n);
		if (n != (int64) r->nitems * k)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("shard_item_cg got %lld floats for %d items of %d factors",
							(long long) n, r->nitems, k)));
	}
	for (int i = 0; i < r->nitems; i++)
	{
		int64		first = r->by_item.indptr[i];
		int			n = (int) (r->by_item.indptr[i + 1] - first);

		if ((i % 256) == 0)
			CHECK_FOR_INTERRUPTS();
		if (p == NULL)
			SimdSparseUpdate(s->x, r->by_item.indices + first, r->by_item.values + first, n, k,
							 1.0f, 1.0f, -1.0f, s->y + (Size) s->global_item[i] * k,
							 out + (Size) i * k);
		else
			SimdSparseUpdate(s->x, r->by_item.indices + first, r->by_item.values + first, n, k,
							 0.0f, 0.0f, 1.0f, p + (Size) i * k, out + (Size) i * k);
	}
	nulls[0] = p != NULL;
	if (p == NULL)
	{
		float	   *g = palloc(sizeof(float) * k * k);

		AlsGram(s->x, r->nusers, k, &s->ws[0]);
		for (int i = 0; i < k * k; i++)
			g[i] = (float) s->ws[0].yty[i];
		values[0] = PointerGetDatum(ShardPack(g, (int64) k * k, sizeof(float)));
	}
	values[1] = PointerGetDatum(ShardPack(out, (int64) r->nitems * k, sizeof(float)));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

PG_FUNCTION_INFO_V1(recsys_shard_gram);

/*
 * shard_gram(): X^T X of this shard's users (k x k doubles, packed): the
 * coordinator sums them and chooses the subspace item half-step's basis
 * from the sum, as the single-node half-step does from its Gram matrix
 * (in double: the choice and the Cholesky factor depend on it).
 */
Datum
recsys_shard_gram(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(true);
	int			k = s->config.k;

	AlsGram(s->x, s->r->nusers, k, &s->ws[0]);
	PG_RETURN_BYTEA_P(ShardPack(s->ws[0].yty, (int64) k * k, sizeof(double)));
}

/*
 * Start a subspace item half-step in `basis` (U, whitened, or S): the
 * users' vectors into the basis (x' = U^-T x), and each entry's
 * prediction x_u . y_i (y_i: the item factors of the last
 * shard_user_step), which that step's loss left in sub_pred (sub_pos).
 */
static void
SubspaceStart(ShardState *s, bool whitened, const float *basis)
{
	RecsysRatings *r = s->r;
	int			k = s->config.k;
	int			bs = s->config.block_size;
	int64		nvectors = (int64) r->nusers + 1;
	float	   *xb;
	MemoryContext old = MemoryContextSwitchTo(s->cxt);

	if (s->sub_off == NULL)
	{
		/* Once per training: the layout, the padded weights, the panels */
		int			nthreads = ParallelThreads();
		int64		longest = 0;
		Size		layout;

		s->sub_off = palloc(sizeof(int64) * ((Size) r->nitems + 1));
		s->sub_off[0] = 0;
		for (int i = 0; i < r->nitems; i++)
		{
			int64		n = r->by_item.indptr[i + 1] - r->by_item.indptr[i];

			longest = Max(longest, n);
			s->sub_off[i + 1] = s->sub_off[i] + TYPEALIGN(ALS_SUBSPACE_TILE, n);
		}
		/*
		 * Within this session's budget, beside the rows it holds: per entry
		 * (padded) a prediction, a weight and a user, per entry a position,
		 * and the users' vectors in the basis twice (all of them, then a
		 * call's rows)
		 */
		layout = add_size(mul_size(s->sub_off[r->nitems], 3 * sizeof(float)),
						  add_size(mul_size(r->nnz, sizeof(int32)),
								   mul_size(nvectors, (Size) (k + 2 * bs) * sizeof(float))));
		RecsysCheckMemory(add_size(RatingsMemory(r->nnz, r->nusers, r->nitems),
								   add_size(mul_size(r->nnz, 3 * sizeof(float)), layout)),
						  "A shard's subspace item half-step keeps its rows, and per interaction a prediction, a weight, its user and its place.");
		s->sub_pred = palloc_extended(sizeof(float) * Max(s->sub_off[r->nitems], 1),
									  MCXT_ALLOC_HUGE);
		s->sub_w = palloc_extended(sizeof(float) * Max(s->sub_off[r->nitems], 1),
								   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		s->sub_cols = palloc_extended(sizeof(int32) * Max(s->sub_off[r->nitems], 1),
									  MCXT_ALLOC_HUGE);
		for (int i = 0; i < r->nitems; i++)
		{
			int64		first = r->by_item.indptr[i];
			int64		n = r->by_item.indptr[i + 1] - first;

			memcpy(s->sub_w + s->sub_off[i], r->by_item.values + first, sizeof(float) * n);
			memcpy(s->sub_cols + s->sub_off[i], r->by_item.indices + first, sizeof(int32) * n);
			for (int64 j = s->sub_off[i] + n; j < s->sub_off[i + 1]; j++)
				s->sub_cols[j] = r->nusers;
		}
		/*
		 * Where each entry of by_user sits in this layout, for the loss of
		 * shard_user_step to leave its dots there: each user's entries are
		 * in ascending item order, as the items are walked here.  Positions
		 * are 32-bit (4 bytes per entry); a larger shard takes the dots
		 * again in each half-step.
		 */
		if (s->sub_off[r->nitems] <= PG_INT32_MAX)
		{
			int64	   *next = palloc_extended(sizeof(int64) * Max(r->nusers, 1),
											   MCXT_ALLOC_HUGE);

			s->sub_pos = palloc_extended(sizeof(int32) * Max(r->nnz, 1), MCXT_ALLOC_HUGE);
			memcpy(next, r->by_user.indptr, sizeof(int64) * r->nusers);
			for (int i = 0; i < r->nitems; i++)
				for (int64 j = r->by_item.indptr[i]; j < r->by_item.indptr[i + 1]; j++)
				{
					int64		e = next[r->by_item.indices[j]]++;

					if (r->by_user.indices[e] != i)
						elog(ERROR, "a shard's rows are not in the order of its items, please report a bug");
					s->sub_pos[e] = (int32) (s->sub_off[i] + j - r->by_item.indptr[i]);
				}
			pfree(next);
		}
		/* zeroed: each block's last vector stays the padding's zero vector */
		s->sub_vectors = palloc_extended(sizeof(float) * (Size) nvectors * k,
										 MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
		s->sub_rows = palloc_extended(sizeof(float) * (Size) nvectors * 2 * bs,
									  MCXT_ALLOC_HUGE);
		longest = TYPEALIGN(ALS_SUBSPACE_TILE, Max(longest, 1));
		s->sub_threads = nthreads;
		s->sub_panel = palloc(sizeof(float *) * nthreads);
		s->sub_pt = palloc(sizeof(float *) * nthreads);
		s->sub_sums = palloc(sizeof(double *) * nthreads);
		for (int t = 0; t < nthreads; t++)
		{
			/* Two blocks' coordinates: the previous block's and this one's */
			s->sub_panel[t] = palloc_extended(sizeof(float) * (Size) longest * 2 * bs,
											  MCXT_ALLOC_HUGE);
			s->sub_pt[t] = palloc_extended(sizeof(float) * (Size) longest, MCXT_ALLOC_HUGE);
			s->sub_sums[t] = palloc(sizeof(double) * ((Size) bs * (bs + 1) / 2 + bs));
		}
		s->sub_avx2 = AlsSubspaceUseAvx2();
	}
	MemoryContextSwitchTo(old);

	/* x' = U^-T x (whitened), as SubspaceBasisBody */
	xb = palloc_extended(sizeof(float) * Max((Size) r->nusers * k, 1), MCXT_ALLOC_HUGE);
	memcpy(xb, s->x, sizeof(float) * (Size) r->nusers * k);
	if (whitened && !LinalgTrsm(true, true, k, r->nusers, 1.0f, basis, k, xb, k))
		elog(ERROR, "a BLAS call of the shard's subspace half-step refused its arguments, please report a bug");

	/*
	 * The predictions: from the last user step's loss (x . y, the same
	 * value), or in the first half-step x' . z with z = U y, as
	 * SubspaceBody takes them
	 */
	if (!s->sub_pred_fresh)
	{
		float	   *z = palloc_extended(sizeof(float) * Max((Size) r->nitems * k, 1),
										MCXT_ALLOC_HUGE);

		for (int i = 0; i < r->nitems; i++)
			memcpy(z + (Size) i * k, s->y + (Size) s->global_item[i] * k, sizeof(float) * k);
		if (whitened && !LinalgTrmm(true, false, k, r->nitems, 1.0f, basis, k, z, k))
			elog(ERROR, "a BLAS call of the shard's subspace half-step refused its arguments, please report a bug");
		for (int i = 0; i < r->nitems; i++)
		{
			int64		first = r->by_item.indptr[i];
			int64		n = r->by_item.indptr[i + 1] - first;
			float	   *pred = s->sub_pred + s->sub_off[i];

			if ((i % 256) == 0)
				CHECK_FOR_INTERRUPTS();
			for (int64 j = 0; j < n; j++)
				pred[j] = SimdDot(xb + (Size) r->by_item.indices[first + j] * k, z + (Size) i * k, k);
			for (int64 j = n; j < s->sub_off[i + 1] - s->sub_off[i]; j++)
				pred[j] = 0.0f;
		}
		pfree(z);
	}
	/* Consumed: the blocks move them on */
	s->sub_pred_fresh = false;

	/*
	 * Block-major, so that a block call reads its two blocks' coordinates
	 * of every user as two sequential runs (strided out of x', they cost a
	 * tenth of the call)
	 */
	for (int f0 = 0; f0 < k; f0 += bs)
	{
		int			b = Min(bs, k - f0);
		float	   *to = s->sub_vectors + (Size) nvectors * f0;

		for (int u = 0; u < r->nusers; u++)
			for (int a = 0; a < b; a++)
				to[(Size) u * b + a] = xb[(Size) u * k + f0 + a];
	}
	pfree(xb);
}

/* What the threads of one block of shard_item_subspace share */
typedef struct SubspaceBlockTask
{
	ShardState *s;
	int			pb;				/* the previous block's size (0: none) */
	const float *deltas;		/* its steps, pb per item */
	int			f0;				/* this block */
	int			b;
	float	   *out;			/* per item: h (packed), then r */
} SubspaceBlockTask;

/*
 * Items [begin, end) of a block: the single-node kernel's sums over each
 * item's users, from the two blocks' coordinates of its users
 * (AlsSubspaceShardPass; no PostgreSQL calls: runs on threads)
 */
static bool
SubspaceBlockBody(void *arg, int thread, int begin, int end)
{
	SubspaceBlockTask *t = (SubspaceBlockTask *) arg;
	ShardState *s = t->s;
	RecsysRatings *r = s->r;
	int			pb = t->pb;
	int			b = t->b;
	int			nh = b * (b + 1) / 2;
	int64		nvectors = (int64) r->nusers + 1;
	float	   *panel = s->sub_panel[thread];
	double	   *h = s->sub_sums[thread];
	double	   *rr = h + nh;

	for (int i = begin; i < end; i++)
	{
		int64		off = s->sub_off[i];
		int			ntiles = (int) ((s->sub_off[i + 1] - off) / ALS_SUBSPACE_TILE);
		float	   *o = t->out + (Size) i * (nh + b);

		AlsSubspaceShardPass(s->sub_avx2, s->sub_rows, pb, b, nvectors, s->sub_cols + off,
							 ntiles, s->sub_pred + off, s->sub_w + off,
							 pb > 0 ? t->deltas + (Size) i * pb : NULL, panel,
							 s->sub_pt[thread], h, rr);
		for (int q = 0; q < nh; q++)
			o[q] = (float) h[q];
		for (int q = 0; q < b; q++)
			o[nh + q] = (float) rr[q];
	}
	return true;
}

PG_FUNCTION_INFO_V1(recsys_shard_item_subspace);

/*
 * shard_item_subspace(first, whitened, basis, deltas): one block of the
 * subspace item half-step (implicit models, solver subspace) over this
 * shard's users, for its items in its own order.  first = 0 starts the
 * half-step in `basis` (k x k floats: U when whitened, else S); a later
 * block's first coordinate comes with `deltas`, the coordinator's steps of
 * the block before (its size floats per item), which the predictions take
 * first.  Returns per item the block's sums over this shard's users,
 * b (b + 1) / 2 + b floats: sum w x'_B x'_B^T (packed lower triangle) and
 * sum (1 + w - w s) x'_B, as the single-node kernel computes them for a
 * row; the coordinator adds the shards' and solves.
 */
Datum
recsys_shard_item_subspace(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(true);
	RecsysRatings *r = s->r;
	int			k = s->config.k;
	int			bs = s->config.block_size;
	int			f0;
	int			b;
	SubspaceBlockTask task;

	if (s->config.is_explicit || bs < 1)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("shard_item_subspace serves implicit models with solver subspace")));
	RequireArg(fcinfo, 0, "shard_item_subspace");
	f0 = PG_GETARG_INT32(0);
	memset(&task, 0, sizeof(task));
	if (f0 != 0 && (f0 < 0 || f0 >= k || f0 != s->sub_next))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard_item_subspace got block %d where block %d was next",
						f0, s->sub_next)));
	/* Until this block is complete, only a new half-step may follow */
	s->sub_next = -1;
	if (f0 == 0)
	{
		int64		n;
		const float *basis;

		RequireArg(fcinfo, 1, "shard_item_subspace");
		RequireArg(fcinfo, 2, "shard_item_subspace");
		basis = PackArg(fcinfo, 2, sizeof(float), &n);
		if (n != (int64) k * k)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("shard_item_subspace got a basis of %lld floats for %d factors",
							(long long) n, k)));
		SubspaceStart(s, PG_GETARG_BOOL(1), basis);
	}
	else
	{
		int64		n;

		RequireArg(fcinfo, 3, "shard_item_subspace");
		task.deltas = PackArg(fcinfo, 3, sizeof(float), &n);
		if (n != (int64) r->nitems * s->sub_prev_b)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("shard_item_subspace got %lld steps for %d items of block size %d",
							(long long) n, r->nitems, s->sub_prev_b)));
		task.pb = s->sub_prev_b;
	}
	b = Min(bs, k - f0);
	task.s = s;
	task.f0 = f0;
	task.b = b;

	/*
	 * This call's rows: each user's coordinates of the previous block
	 * (which ends where this one begins) and of this one, side by side, so
	 * that a pass reads one short row per entry
	 */
	{
		int			pb = task.pb;
		int			kk = pb + b;
		int64		nvectors = (int64) r->nusers + 1;
		const float *prev = s->sub_vectors + (Size) nvectors * (f0 - pb);
		const float *cur = s->sub_vectors + (Size) nvectors * f0;

		for (int64 u = 0; u < nvectors; u++)
		{
			for (int a = 0; a < pb; a++)
				s->sub_rows[u * kk + a] = prev[u * pb + a];
			for (int a = 0; a < b; a++)
				s->sub_rows[u * kk + pb + a] = cur[u * b + a];
		}
	}
	task.out = palloc_extended(sizeof(float) * Max((Size) r->nitems * (b * (b + 1) / 2 + b), 1),
							   MCXT_ALLOC_HUGE);
	/* Blocks of 64 items: balance and a prompt cancel */
	if (!ParallelFor(r->nitems, 64, s->sub_threads, SubspaceBlockBody, &task))
		elog(ERROR, "the shard's subspace half-step failed, please report a bug");
	s->sub_prev_b = b;
	s->sub_next = f0 + b < k ? f0 + b : -1;
	PG_RETURN_BYTEA_P(ShardPack(task.out, (int64) r->nitems * (b * (b + 1) / 2 + b),
								sizeof(float)));
}

PG_FUNCTION_INFO_V1(recsys_shard_user_step);

/*
 * shard_user_step(items): the new item factors (and biases, explicit)
 * of every global item; re-solve this shard's users against them as a
 * single-node user half-step would, and return this shard's part of the
 * training loss: (loss_part, sse, norms): implicit: sum_u x_u^T Y^T Y x_u
 * plus the observed corrections; explicit: the squared errors and
 * lambda * sum_u n_u (|x_u|^2 + b_u^2).
 */
Datum
recsys_shard_user_step(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(true);
	RecsysRatings *r = s->r;
	const AlsConfig *c = &s->config;
	int			k = c->k;
	int64		n;
	const float *data;
	int			nthreads = ParallelThreads();
	int			failed;
	double		total = 0.0;
	double		norms = 0.0;
	float		gx[RECSYS_MAX_FACTORS];
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "shard_user_step must return a row");
	RequireArg(fcinfo, 0, "shard_user_step");
	data = PackArg(fcinfo, 0, sizeof(float), &n);
	if (n != (int64) s->nitems_global * (k + 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("shard_user_step got %lld floats for %d items of %d factors",
						(long long) n, s->nitems_global, k)));
	memcpy(s->y, data, sizeof(float) * (Size) s->nitems_global * k);
	memcpy(s->ybias, data + (Size) s->nitems_global * k, sizeof(float) * s->nitems_global);
	s->sub_next = -1;			/* a subspace item half-step restarts from its basis */

	failed = AlsHalfStep(c, &s->by_user, s->y, s->ybias, s->nitems_global,
						 s->x, s->xbias, s->ws, nthreads);
	if (failed >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("normal equations of user %lld are not positive definite",
						(long long) r->user_ids[failed]),
				 errhint("Use a positive regularization.")));

	/*
	 * This shard's part of the loss, as AlsImplicitLoss / AlsExplicitLoss.
	 * The entries' dots x_u . y_i are the predictions the subspace
	 * solver's next item half-step starts from (x'_u . z_i in its basis,
	 * the same value): they go into its layout (sub_pos), so that it does
	 * not take a dot per entry again.
	 */
	if (!c->is_explicit)
		AlsGram(s->y, s->nitems_global, k, &s->ws[0]);
	for (int u = 0; u < r->nusers; u++)
	{
		const float *x = s->x + (Size) u * k;
		int64		cnt = s->by_user.indptr[u + 1] - s->by_user.indptr[u];
		double		sq = 0.0;

		if ((u % 1024) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int f = 0; f < k; f++)
			sq += (double) x[f] * x[f];
		if (!c->is_explicit)
		{
			/* x^T (Y^T Y) x as LossBody takes it: float Gram, generic dot */
			if (!LinalgGemvN(k, k, s->ws[0].yty_f, k, x, gx))
				elog(ERROR, "a BLAS call of the shard's training loss refused its arguments, please report a bug");
			total += SimdDotGeneric(x, gx, k);
			norms += sq;
		}
		else
			norms += (double) cnt * (sq + (double) s->xbias[u] * s->xbias[u]);
		for (int64 e = s->by_user.indptr[u]; e < s->by_user.indptr[u + 1]; e++)
		{
			int32		i = s->by_user.indices[e];

			/*
			 * The float dot of LossBody (als.c): with these loops in double,
			 * one product at a time, the loss took a fifth of the shard's
			 * CPU in a subspace training at the 1M shape (perf)
			 */
			float		dot = SimdDot(x, s->y + (Size) i * k, k);

			if (s->sub_pos != NULL)
				s->sub_pred[s->sub_pos[e]] = dot;
			if (!c->is_explicit)
			{
				double		w = s->by_user.values[e];

				total += (1.0 + w) * (1.0 - dot) * (1.0 - dot) - (double) dot * dot;
			}
			else
			{
				double		err = s->by_user.values[e] -
					(c->mean + s->xbias[u] + s->ybias[i] + dot);

				total += err * err;
			}
		}
	}
	s->sub_pred_fresh = s->sub_pos != NULL;
	values[0] = Float8GetDatum(total);
	values[1] = Float8GetDatum(norms);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* Users per row of shard_export */
#define SHARD_EXPORT_USERS 4096

PG_FUNCTION_INFO_V1(recsys_shard_export);

/*
 * shard_export(): the final user rows in blocks, as (ids, bias, factors,
 * seen_counts, seen (global item indexes), seen_values) packed arrays,
 * one row per block of users; the coordinator stores them.
 */
Datum
recsys_shard_export(PG_FUNCTION_ARGS)
{
	ShardState *s = CurrentShard(true);
	RecsysRatings *r = s->r;
	int			k = s->config.k;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const float *seen_values = s->raw_values ? s->raw_values : s->by_user.values;

	InitMaterializedSRF(fcinfo, 0);
	for (int start = 0; start < r->nusers; start += SHARD_EXPORT_USERS)
	{
		int			count = Min(SHARD_EXPORT_USERS, r->nusers - start);
		int64		lo = s->by_user.indptr[start];
		int64		hi = s->by_user.indptr[start + count];
		int32	   *counts = palloc(sizeof(int32) * count);
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < count; j++)
			counts[j] = (int32) (s->by_user.indptr[start + j + 1] - s->by_user.indptr[start + j]);
		values[0] = PointerGetDatum(ShardPack(r->user_ids + start, count, sizeof(int64)));
		values[1] = PointerGetDatum(ShardPack(s->xbias + start, count, sizeof(float)));
		values[2] = PointerGetDatum(ShardPack(s->x + (Size) start * k, (int64) count * k,
											  sizeof(float)));
		values[3] = PointerGetDatum(ShardPack(counts, count, sizeof(int32)));
		values[4] = PointerGetDatum(ShardPack(s->by_user.indices + lo, hi - lo, sizeof(int32)));
		values[5] = PointerGetDatum(ShardPack(seen_values + lo, hi - lo, sizeof(float)));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		pfree(counts);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(recsys_shard_close);

/* shard_close(): end the session's training and free its memory */
Datum
recsys_shard_close(PG_FUNCTION_ARGS)
{
	bool		was_open = shard != NULL;

	CloseShard();
	PG_RETURN_BOOL(was_open);
}
