/* Sequence-parallel attention as the models see it: a rank's view of the parallel layout (its
 * Ulysses, Ring and CFG groups), the shard arithmetic every rank can compute locally, attention
 * over a sharded sequence (Ulysses, Ring, hybrid USP, unpadded UAA, joint replicated text), the
 * gathers after the last block, and the launcher that runs in-process ranks as threads.
 * See docs/parallelism.md for the algorithms and DESIGN.md for the rank layout. */
#ifndef OG_SP_H
#define OG_SP_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/ops.h"
#include "parallel/config.h"

typedef struct og_comm og_comm; /* parallel/comm.h */
typedef struct og_sp og_sp;

/* Builds this rank's view from a world communicator of size cfg·ring·ulysses, splitting it into
 * Ulysses groups (contiguous ranks), Ring groups (strided by U) and CFG groups (outermost). */
og_status og_sp_create(og_sp **out, const og_parallel_config *cfg, og_comm *world);
void og_sp_free(og_sp *sp);

const og_parallel_config *og_sp_config(const og_sp *sp);
int og_sp_world_rank(const og_sp *sp);
int og_sp_rank(const og_sp *sp);      /* sequence-parallel rank = ring_i * U + ulysses_i */
int og_sp_size(const og_sp *sp);      /* P = U * R */
int og_sp_cfg_index(const og_sp *sp); /* 0 = conditional branch, 1 = unconditional */

/* Contiguous shard r of P over S tokens: the first S % P shards are one token longer. */
void og_shard_range(int64_t S, int P, int r, int64_t *off, int64_t *len);
/* Contiguous head range of Ulysses rank u of U over H heads: the first H % U get one more. */
void og_head_range(int H, int U, int u, int *h0, int *hn);

/* Where og_sp_attention's buffers live and what computes on them. NULL (the default) means host
 * memory, f32 elements and the CPU ops. A device backend (core/cuda: og_cuda_sp_ops) fills it for
 * bf16 device buffers with a communicator on device memory. Partial results, the output before
 * the reverse exchange and the LSE are always f32; only q, k, v, out and text_* have elem_bytes.
 * Every hook returns a status and may be asynchronous; `sync` is called before a buffer is handed
 * to a communicator. */
typedef struct og_sp_ops {
    size_t elem_bytes;
    /* rows of `width` bytes from src (rows spitch bytes apart) to dst (dpitch apart). */
    og_status (*copy2d)(void *user, void *dst, size_t dpitch, const void *src, size_t spitch,
                        size_t width, size_t rows);
    /* og_attention with q, k, v of elem_bytes, out f32 at d->o_stride, lse [sq, heads] f32. */
    og_status (*attend)(void *user, const og_attn_desc *d, const void *q, const void *k,
                        const void *v, float *out, float *lse);
    /* og_lse_merge of [sq, heads, head_dim] f32 partials (contiguous). */
    og_status (*merge)(void *user, float *out, float *lse, const float *out_b,
                       const float *lse_b, int64_t sq, int heads, int head_dim);
    /* n f32 values to elements of elem_bytes. */
    og_status (*narrow)(void *user, void *dst, const float *src, int64_t n);
    og_status (*sync)(void *user);
    void *user;
} og_sp_ops;

typedef struct {
    int64_t seq;         /* S: the full sharded sequence; this rank holds shard og_sp_rank() */
    int heads, head_dim;
    float scale;
    const void *q, *k, *v; /* this rank's shard, [len, heads, head_dim] (f32 without ops) */
    void *out;             /* [len, heads, head_dim] contiguous */
    /* Optional joint text, replicated on every rank ([text_len, heads, head_dim] each). Text
     * queries attend to text + all image keys; text_out is complete on every rank on return. */
    int64_t text_len;
    const void *text_q, *text_k, *text_v;
    void *text_out;
    og_arena *scratch;      /* temporary buffers; released before return (required with ops) */
    int64_t qkv_stride;     /* elements between tokens of q, k, v; 0 = heads * head_dim (a fused
                             * [len, q | k | v] projection passes 3 * heads * head_dim) */
    const og_sp_ops *ops;   /* NULL = host f32 on the CPU */
} og_sp_attn_args;

/* Attention of this rank's shard against the whole (sharded) sequence under the layout of `sp`.
 * Equals single-rank og_attention() over the full sequence to fp32 rounding. */
og_status og_sp_attention(og_sp *sp, const og_sp_attn_args *a);
/* Scratch bytes og_sp_attention takes from args.scratch for this shape on this rank (an arena
 * with this much free never runs out; without an arena the call makes one of this size). It
 * includes the host og_attention's scratch of the ring steps (for the calling thread's OpenMP
 * team and GEMM precision, see core/ops.h), which device ops do not take: for them it is an
 * upper bound. */
size_t og_sp_attention_scratch_bytes(const og_sp *sp, int64_t seq, int heads, int head_dim,
                                     int64_t text_len);

/* Gathers every rank's shard of [S, row_elems] rows into `full` on every rank of the SP group. */
og_status og_sp_gather_seq(og_sp *sp, const float *local, float *full, int64_t seq,
                           int64_t row_elems);

/* CFG: with cfg_degree 2, exchanges `n` floats between the two CFG branches: on return `mine`
 * is unchanged and `other` holds the other branch's values. With cfg_degree 1 it fails. */
og_status og_sp_cfg_exchange(og_sp *sp, const float *mine, float *other, int64_t n);

/* Bytes this rank has sent through its communicators since creation (or the last reset). */
uint64_t og_sp_bytes_sent(const og_sp *sp);
void og_sp_reset_bytes(og_sp *sp);

/* Runs fn on `world` in-process ranks, one thread each, with an in-process world communicator.
 * Returns the first failing rank's status (its message is copied to the caller's error context).
 * Each rank thread runs with `threads_per_rank` OpenMP threads (<= 0: cores / world, at least 1). */
typedef og_status (*og_rank_fn)(og_comm *world, void *arg);
og_status og_run_ranks(int world, int threads_per_rank, og_rank_fn fn, void *arg);
/* The same with a chosen in-process copy (parallel/comm.h; NULL = host memcpy), e.g. for ranks
 * that share one GPU. */
typedef struct og_inproc_copy og_inproc_copy;
og_status og_run_ranks_copy(int world, int threads_per_rank, const og_inproc_copy *copy,
                            og_rank_fn fn, void *arg);

#endif
