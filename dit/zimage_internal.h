/* Internals of the Z-Image transformer shared by dit/zimage.c (loading, embedders, sequence
 * layout, final layer) and dit/zimage_block.c (one transformer block on a token shard). */
#ifndef OG_DIT_ZIMAGE_INTERNAL_H
#define OG_DIT_ZIMAGE_INTERNAL_H

#include "core/tensor.h"
#include "dit/zimage.h"

/* One ZImageTransformerBlock: attention (bias-free q/k/v/out, per-head RMSNorm on q and k),
 * SwiGLU FFN, four RMSNorms, and (modulated blocks only) adaLN_modulation.0. */
typedef struct {
    og_tensor to_q, to_k, to_v, to_out; /* [dim, dim], stored dtype */
    float *norm_q, *norm_k;             /* [head_dim]; NULL without qk_norm */
    og_tensor w1, w3;                   /* [ffn, dim] */
    og_tensor w2;                       /* [dim, ffn] */
    float *attention_norm1, *attention_norm2, *ffn_norm1, *ffn_norm2; /* [dim] */
    bool modulated;
    og_tensor ada_w; /* [4 * dim, adaln_dim] */
    float *ada_b;    /* [4 * dim] */
} zimage_block;

/* Where a block's attention runs: over the n tokens it is given (sp NULL), or as this rank's
 * shard of a `seq`-token sequence sharded by og_shard_range under sp. */
typedef struct {
    og_sp *sp;
    int64_t seq;
} zimage_attn_scope;

/* Floats of scratch zimage_block_forward takes for n tokens (its own buffers only). */
size_t zimage_block_scratch_floats(const og_zimage_config *c, int64_t n);

/* Runs block b on x[n, dim] in place. rope_cos/rope_sin are [n, head_dim / 2]. mod is the block's
 * [4 * dim] modulation prepared by the caller (scale_msa, tanh(gate_msa), scale_mlp,
 * tanh(gate_mlp), the scales still without the +1), or NULL for an unmodulated block. */
og_status zimage_block_forward(const og_zimage_config *c, const zimage_block *b, float *x,
                               int64_t n, const float *rope_cos, const float *rope_sin,
                               const float *mod, zimage_attn_scope scope, og_arena *scratch);

#endif
