/* Internals of the Z-Image transformer shared by dit/zimage.c (loading, embedders, sequence
 * layout, final layer) and dit/zimage_block.c (one transformer block on a token shard). */
#ifndef OG_DIT_ZIMAGE_INTERNAL_H
#define OG_DIT_ZIMAGE_INTERNAL_H

#include "core/ops.h"
#include "core/tensor.h"
#include "dit/zimage.h"
#include "io/weights.h"

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
    /* Made at load only in the bf16 GEMM precision (og_gemm_set_precision(OG_GEMM_BF16)) from
     * f32 or bf16 weights: packed bf16 copies, q/k/v stacked into qkv [3 dim, dim] and w1/w3 into
     * w13 [2 ffn, dim] so that each runs as one GEMM. NULL otherwise. */
    struct {
        og_packed_weights *qkv, *w13, *out, *w2;
    } bf16;
} zimage_block;

/* Where a block's attention runs: over the n tokens it is given (sp NULL), or as this rank's
 * shard of a `seq`-token sequence sharded by og_shard_range under sp. */
typedef struct {
    og_sp *sp;
    int64_t seq;
} zimage_attn_scope;

/* Bytes of scratch zimage_block_forward takes for block b on n tokens under scope: its buffers,
 * and above them the largest scratch of its ops (projections, serial or SP attention). */
size_t zimage_block_scratch_bytes(const og_zimage_config *c, const zimage_block *b, int64_t n,
                                  zimage_attn_scope scope);

/* Runs block b on x[n, dim] in place. rope_cos/rope_sin are [n, head_dim / 2]. mod is the block's
 * [4 * dim] modulation prepared by the caller (scale_msa, tanh(gate_msa), scale_mlp,
 * tanh(gate_mlp), the scales still without the +1), or NULL for an unmodulated block. */
og_status zimage_block_forward(const og_zimage_config *c, const zimage_block *b, float *x,
                               int64_t n, const float *rope_cos, const float *rope_sin,
                               const float *mod, zimage_attn_scope scope, og_arena *scratch);

/* The loaded model: config and every weight by its checkpoint role (block weights above). The
 * GPU forward (core/cuda/zimage_cuda.c) uploads from it. */
struct og_zimage {
    og_zimage_config c;
    og_weights *w;
    int t_freq_dim, t_mid_dim; /* t_embedder: sinusoid width (256) and hidden width (1024) */
    og_tensor t_w0, t_w2;
    float *t_b0, *t_b2;
    float *cap_norm;
    og_tensor cap_w;
    float *cap_b;
    og_tensor x_emb_w; /* [dim, patch_dim] */
    float *x_emb_b;
    float *x_pad_token, *cap_pad_token;
    zimage_block *noise_refiner, *context_refiner, *layers;
    og_tensor fin_w; /* [patch_dim, dim] */
    float *fin_b;
    og_tensor fin_ada_w; /* [dim, adaln_dim] */
    float *fin_ada_b;
    void *random_mem; /* og_zimage_random: the block every tensor above points into */
};

/* This rank's pieces of the sharded sequences (see the comment at the top). */
typedef struct {
    int P, r;
    int64_t img_off, img_n; /* image shard */
    int64_t cap_off, cap_n; /* caption slice that follows it in the unified shard */
    int64_t uni_n;          /* img_n + cap_n == og_shard_range(seq_len, P, r) length */
} zimage_split;

zimage_split zimage_split_for(const og_zimage_tokens *t, int P, int r);
/* RoPE positions (3 per token) of this rank's unified tokens: its image shard, then its caption
 * slice; and of the whole padded caption. */
void zimage_unified_positions(const og_zimage_tokens *t, const zimage_split *s, int64_t *pos);
void zimage_caption_positions(int64_t cap_pad_len, int64_t *pos);
/* The patch vectors of this rank's real image tokens into patches [img_n, patch_dim]; returns
 * how many are real (the rest of the shard is padding). */
int64_t zimage_patchify(const og_zimage_config *c, const og_zimage_tokens *t,
                        const zimage_split *s, const float *lat, int64_t lat_h, int64_t lat_w,
                        float *patches);
/* The final layer's [img_pad_len, patch_dim] rows back to out [in_channels, lat_h, lat_w]. */
void zimage_unpatchify(const og_zimage_config *c, const og_zimage_tokens *t, const float *full,
                       int64_t lat_h, int64_t lat_w, float *out);
/* Every modulated block's [4 * dim] modulation (scale_msa, tanh(gate_msa), scale_mlp,
 * tanh(gate_mlp); noise_refiner first, then layers; skipped when mods is NULL), the final layer's
 * [dim] scale and, when adaln is not NULL, the [adaln_dim] time embedding the modulations are
 * made from, on the host; temporaries from scratch, released. */
og_status zimage_time_conditioning(const og_zimage *m, float t_model, og_arena *scratch,
                                   float *mods, float *final_scale, float *adaln);

#endif
