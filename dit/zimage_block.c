/* One Z-Image transformer block on this rank's tokens, as ZImageTransformerBlock.forward computes
 * it (no shift terms; gates are tanh'd; every norm is RMSNorm):
 *     x += gate_msa * norm2(Attn(norm1(x) * (1 + scale_msa)))
 *     x += gate_mlp * ffn_norm2(W2(silu(W1 h) * W3 h)),   h = ffn_norm1(x) * (1 + scale_mlp)
 * Unmodulated blocks (context_refiner) drop the scales and gates. Attention is per-head
 * RMSNorm on q and k, interleaved-pair RoPE, softmax(q k^T / sqrt(head_dim)) v. */
#include <math.h>

#include "core/ops.h"
#include "dit/zimage_internal.h"

size_t zimage_block_scratch_floats(const og_zimage_config *c, int64_t n)
{
    /* xn, q, k, v at [n, dim]; the FFN's two hidden activations at [n, ffn]; +16 per buffer
     * for the arena's 64-byte alignment. */
    return (size_t)(4 * (n * c->dim + 16) + 2 * (n * c->ffn_dim + 16));
}

static og_status block_attention(const og_zimage_config *c, zimage_attn_scope scope,
                                 const float *q, const float *k, const float *v, float *out,
                                 int64_t n, og_arena *scratch)
{
    float scale = 1.0f / sqrtf((float)c->head_dim);
    if (scope.sp) {
        og_sp_attn_args a = {.seq = scope.seq, .heads = c->n_heads, .head_dim = c->head_dim,
                             .scale = scale, .q = q, .k = k, .v = v, .out = out,
                             .scratch = scratch};
        return og_sp_attention(scope.sp, &a);
    }
    og_attn_desc d = {.sq = n, .skv = n, .heads = c->n_heads, .kv_heads = c->n_heads,
                      .head_dim = c->head_dim, .q_stride = c->dim, .k_stride = c->dim,
                      .v_stride = c->dim, .o_stride = c->dim, .scale = scale};
    return og_attention(&d, q, k, v, out, NULL);
}

og_status zimage_block_forward(const og_zimage_config *c, const zimage_block *b, float *x,
                               int64_t n, const float *rope_cos, const float *rope_sin,
                               const float *mod, zimage_attn_scope scope, og_arena *scratch)
{
    const int64_t dim = c->dim, ffn = c->ffn_dim;
    const float eps = c->norm_eps;
    size_t mark = og_arena_mark(scratch);
    float *xn = og_arena_alloc(scratch, (size_t)(n * dim) * sizeof(float));
    float *q = og_arena_alloc(scratch, (size_t)(n * dim) * sizeof(float));
    float *k = og_arena_alloc(scratch, (size_t)(n * dim) * sizeof(float));
    float *v = og_arena_alloc(scratch, (size_t)(n * dim) * sizeof(float));
    float *h1 = og_arena_alloc(scratch, (size_t)(n * ffn) * sizeof(float));
    float *h3 = og_arena_alloc(scratch, (size_t)(n * ffn) * sizeof(float));
    if (!xn || !q || !k || !v || !h1 || !h3)
        return og_fail_context(OG_ERR_OOM, "Z-Image block scratch for %lld tokens", (long long)n);
    const float *scale_msa = mod, *gate_msa = mod ? mod + dim : NULL;
    const float *scale_mlp = mod ? mod + 2 * dim : NULL, *gate_mlp = mod ? mod + 3 * dim : NULL;

    /* attention */
    og_rmsnorm(xn, x, b->attention_norm1, n, dim, eps);
    if (scale_msa)
        og_modulate(xn, xn, scale_msa, NULL, n, dim);
    og_status st = OG_OK;
    if ((st = og_linear(q, xn, n, dim, b->to_q.data, b->to_q.dtype, dim, NULL)) ||
        (st = og_linear(k, xn, n, dim, b->to_k.data, b->to_k.dtype, dim, NULL)) ||
        (st = og_linear(v, xn, n, dim, b->to_v.data, b->to_v.dtype, dim, NULL)))
        goto done;
    if (b->norm_q) {
        og_rmsnorm(q, q, b->norm_q, n * c->n_heads, c->head_dim, 1e-5f);
        og_rmsnorm(k, k, b->norm_k, n * c->n_heads, c->head_dim, 1e-5f);
    }
    og_rope_interleaved(q, n, c->n_heads, c->head_dim, dim, rope_cos, rope_sin);
    og_rope_interleaved(k, n, c->n_heads, c->head_dim, dim, rope_cos, rope_sin);
    if ((st = block_attention(c, scope, q, k, v, xn, n, scratch)) ||
        (st = og_linear(q, xn, n, dim, b->to_out.data, b->to_out.dtype, dim, NULL)))
        goto done;
    og_rmsnorm(q, q, b->attention_norm2, n, dim, eps);
    og_gated_residual(x, q, gate_msa, n, dim);

    /* feed-forward */
    og_rmsnorm(xn, x, b->ffn_norm1, n, dim, eps);
    if (scale_mlp)
        og_modulate(xn, xn, scale_mlp, NULL, n, dim);
    if ((st = og_linear(h1, xn, n, dim, b->w1.data, b->w1.dtype, ffn, NULL)) ||
        (st = og_linear(h3, xn, n, dim, b->w3.data, b->w3.dtype, ffn, NULL)))
        goto done;
    og_swiglu(h1, h1, h3, n * ffn);
    if ((st = og_linear(q, h1, n, ffn, b->w2.data, b->w2.dtype, dim, NULL)))
        goto done;
    og_rmsnorm(q, q, b->ffn_norm2, n, dim, eps);
    og_gated_residual(x, q, gate_mlp, n, dim);
done:
    og_arena_release(scratch, mark);
    return st;
}
