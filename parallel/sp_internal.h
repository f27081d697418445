/* Inside sequence parallelism: a rank's groups, the geometry of one attention call (who holds
 * which tokens and heads), and the Ulysses and Ring steps og_sp_attention strings together. */
#ifndef OG_SP_INTERNAL_H
#define OG_SP_INTERNAL_H

#include <stdint.h>

#include "parallel/comm.h"
#include "parallel/sp.h"

struct og_sp {
    og_parallel_config cfg;
    int world_rank, sp_rank, ulysses_i, ring_i, cfg_i;
    og_comm *ulysses; /* U contiguous ranks: same ring index, same CFG branch */
    og_comm *ring;    /* R ranks strided by U: same Ulysses index, same CFG branch */
    og_comm *cfg_group; /* the cfg_degree ranks with the same SP rank */
    og_comm *seq;     /* the P = U*R ranks of one CFG branch, ordered by SP rank */
    size_t *counts;   /* 4 P: counts and displacements of one collective, reused by each call */
    int64_t *block_len; /* R: the ring's super-shard lengths in one attention call */
};

/* Who holds what in one attention call; every rank derives all of it from (S, H, layout). */
typedef struct {
    int U, R, u, r;        /* degrees, this rank's Ulysses and Ring indices */
    int64_t S;             /* sharded sequence */
    int H, D;
    int h0, hn;            /* this rank's heads after the all-to-all */
    int64_t off, len;      /* this rank's token shard */
    int64_t super_off, super_len; /* this ring rank's super-shard: the U shards of its group */
} og_sp_geom;

void og_sp_geom_init(og_sp_geom *g, const og_sp *sp, int64_t S, int H, int D);
/* Super-shard of ring rank j: the contiguous tokens of SP shards j*U .. j*U+U-1. */
void og_sp_super_range(const og_sp_geom *g, int j, int64_t *off, int64_t *len);

/* Element size, strided copy and "buffers ready" of og_sp_ops, with the host defaults for ops
 * NULL (f32, memcpy, nothing to wait for). */
size_t og_sp_elem(const og_sp_ops *ops);
og_status og_sp_copy2d(const og_sp_ops *ops, void *dst, size_t dpitch, const void *src,
                       size_t spitch, size_t width, size_t rows);
og_status og_sp_sync(const og_sp_ops *ops);

/* Ulysses forward: this rank's shard of q, k, v ([len, H, D] each, tokens `stride` elements
 * apart) to its heads over the group's super-shard, with one fused all-to-all(-v): q_ss
 * [super_len, hn, D] and kv_ss [2, super_len, hn, D] (K then V). `pack` holds 3*len*H*D
 * elements, `recv` 3*super_len*hn*D. Elements are og_sp_elem(ops) bytes. `counts` has room for
 * 4 U entries (og_sp's counts). */
og_status og_ulysses_scatter_heads(og_comm *ulysses, const og_sp_geom *g, const og_sp_ops *ops,
                                   const void *q, const void *k, const void *v, int64_t stride,
                                   void *q_ss, void *kv_ss, void *pack, void *recv,
                                   size_t *counts);
/* Ulysses reverse: o_ss [super_len, hn, D] back to this rank's tokens with all heads, out [len,
 * H, D]. `recv` holds len*H*D elements; `counts` as above. */
og_status og_ulysses_gather_heads(og_comm *ulysses, const og_sp_geom *g, const og_sp_ops *ops,
                                  const void *o_ss, void *out, void *recv, size_t *counts);

/* Ring attention of queries q [lq, hn, D] against every ring rank's K/V super-shard (K then V,
 * [2, block_len[j], hn, D], this rank's in kv_own) plus an optional local block attended once
 * (extra_len > 0: extra_k/extra_v at extra_stride elements per token). q and K/V have
 * og_sp_elem(ops) bytes per element; out, lse and the partials are f32. */
typedef struct {
    const void *q;
    int64_t lq;
    int hn, D;
    float scale;
    const int64_t *block_len; /* [R]: super-shard length of each ring rank */
    const void *kv_own;         /* may be kv_a */
    int64_t extra_len, extra_stride;
    const void *extra_k, *extra_v;
    float *out, *lse;           /* [lq, hn, D], [lq, hn] */
    void *kv_a, *kv_b;          /* 2 * max(block_len) * hn * D elements each (kv_b: R > 1) */
    float *tmp_out, *tmp_lse;   /* [lq, hn, D], [lq, hn] */
    const og_sp_ops *ops;
    og_arena *scratch;          /* og_attention's scratch on host buffers (ops NULL) */
} og_ring_args;

/* The og_attention call of the ring for a block of len keys `stride` elements apart; its
 * scratch is og_attention_scratch_bytes of this, largest for the longest block. */
og_attn_desc og_ring_block_desc(const og_ring_args *a, int64_t len, int64_t stride);

og_status og_ring_attention(og_comm *ring, const og_ring_args *a);

/* Merges a partial attention result (out_b, lse_b) into (out, lse) in fp32 by log-sum-exp.
 * rows = tokens * heads; rows with lse_b = -inf leave (out, lse) as they are. */
void og_lse_merge(float *out, float *lse, const float *out_b, const float *lse_b, int64_t rows,
                  int D);

#endif
