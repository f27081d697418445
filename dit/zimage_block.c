/* One Z-Image transformer block on this rank's tokens, as ZImageTransformerBlock.forward computes
 * it (no shift terms; gates are tanh'd; every norm is RMSNorm):
 *     x += gate_msa * norm2(Attn(norm1(x) * (1 + scale_msa)))
 *     x += gate_mlp * ffn_norm2(W2(silu(W1 h) * W3 h)),   h = ffn_norm1(x) * (1 + scale_mlp)
 * Unmodulated blocks (context_refiner) drop the scales and gates. Attention is per-head
 * RMSNorm on q and k, interleaved-pair RoPE, softmax(q k^T / sqrt(head_dim)) v. */
#include <math.h>

#include "core/ops.h"
#include "dit/zimage_internal.h"

/* Serial attention over n tokens whose q, k and v rows are `stride` floats apart. */
static og_attn_desc block_attn_desc(const og_zimage_config *c, int64_t n, int64_t stride)
{
    return (og_attn_desc){.sq = n, .skv = n, .heads = c->n_heads, .kv_heads = c->n_heads,
                          .head_dim = c->head_dim, .q_stride = stride, .k_stride = stride,
                          .v_stride = stride, .o_stride = c->dim,
                          .scale = 1.0f / sqrtf((float)c->head_dim)};
}

static og_status block_attention(const og_zimage_config *c, zimage_attn_scope scope,
                                 const float *q, const float *k, const float *v, int64_t stride,
                                 float *out, int64_t n, og_arena *scratch)
{
    const og_attn_desc d = block_attn_desc(c, n, stride);
    if (scope.sp) {
        og_sp_attn_args a = {.seq = scope.seq, .heads = c->n_heads, .head_dim = c->head_dim,
                             .scale = d.scale, .q = q, .k = k, .v = v, .out = out,
                             .scratch = scratch, .qkv_stride = stride};
        return og_sp_attention(scope.sp, &a);
    }
    return og_attention(&d, q, k, v, out, NULL, scratch);
}

static size_t max_bytes(size_t a, size_t b) { return a > b ? a : b; }

/* Scratch of one projection of n rows: og_linear_packed with packed weights, else og_linear
 * with w [N, K] (the packed copy, when there is one, has w's K). */
static size_t proj_bytes(const og_tensor *w, const og_packed_weights *packed, int64_t n)
{
    return packed ? og_linear_packed_scratch_bytes(n, w->shape[1])
                  : og_linear_scratch_bytes(n, w->shape[1], w->dtype, w->shape[0]);
}

size_t zimage_block_scratch_bytes(const og_zimage_config *c, const zimage_block *b, int64_t n,
                                  zimage_attn_scope scope)
{
    const int64_t dim = c->dim, ffn = c->ffn_dim;
    const bool fused = b->bf16.qkv != NULL;
    const og_attn_desc d = block_attn_desc(c, n, fused ? 3 * dim : dim);
    size_t ops = scope.sp ? og_sp_attention_scratch_bytes(scope.sp, scope.seq, c->n_heads,
                                                          c->head_dim, 0)
                          : og_attention_scratch_bytes(&d);
    ops = max_bytes(ops, proj_bytes(&b->to_q, b->bf16.qkv, n)); /* to_k, to_v alike */
    ops = max_bytes(ops, proj_bytes(&b->to_out, b->bf16.out, n));
    ops = max_bytes(ops, proj_bytes(&b->w1, b->bf16.w13, n)); /* w3 alike */
    ops = max_bytes(ops, proj_bytes(&b->w2, b->bf16.w2, n));
    /* xn [n, dim], q/k/v [n, 3 dim], the FFN's two hidden activations [n, 2 ffn]. */
    return og_arena_need((size_t)(n * dim) * sizeof(float)) +
           og_arena_need((size_t)(3 * n * dim) * sizeof(float)) +
           og_arena_need((size_t)(2 * n * ffn) * sizeof(float)) + ops;
}

/* Per-head RMSNorm of q or k whose tokens are `stride` floats apart. */
static void head_rmsnorm(const og_zimage_config *c, float *x, const float *w, int64_t n,
                         int64_t stride)
{
    if (stride == c->dim) {
        og_rmsnorm(x, x, w, n * c->n_heads, c->head_dim, 1e-5f);
        return;
    }
#pragma omp parallel for
    for (int64_t t = 0; t < n; t++)
        og_rmsnorm(x + t * stride, x + t * stride, w, c->n_heads, c->head_dim, 1e-5f);
}

/* g[t, :] = silu(gate[t, :]) * up[t, :] for ffn-wide rows `stride` floats apart in gate and up. */
static void swiglu_rows(float *g, const float *gate, const float *up, int64_t n, int64_t ffn,
                        int64_t stride)
{
    if (stride == ffn) {
        og_swiglu(g, gate, up, n * ffn);
        return;
    }
#pragma omp parallel for
    for (int64_t t = 0; t < n; t++)
        og_swiglu(g + t * ffn, gate + t * stride, up + t * stride, ffn);
}

og_status zimage_block_forward(const og_zimage_config *c, const zimage_block *b, float *x,
                               int64_t n, const float *rope_cos, const float *rope_sin,
                               const float *mod, zimage_attn_scope scope, og_arena *scratch)
{
    const int64_t dim = c->dim, ffn = c->ffn_dim;
    const float eps = c->norm_eps;
    size_t mark = og_arena_mark(scratch);
    float *xn = og_arena_alloc(scratch, (size_t)(n * dim) * sizeof(float));
    float *qkv = og_arena_alloc(scratch, (size_t)(3 * n * dim) * sizeof(float));
    float *hid = og_arena_alloc(scratch, (size_t)(2 * n * ffn) * sizeof(float));
    if (!xn || !qkv || !hid)
        return og_fail_context(OG_ERR_OOM, "Z-Image block scratch for %lld tokens", (long long)n);
    const float *scale_msa = mod, *gate_msa = mod ? mod + dim : NULL;
    const float *scale_mlp = mod ? mod + 2 * dim : NULL, *gate_mlp = mod ? mod + 3 * dim : NULL;
    /* With the packed bf16 weights, q/k/v come out of one GEMM as [n, q | k | v] rows and the FFN's gate
     * and up halves as [n, w1 | w3] rows; otherwise each is its own [n, width] block. */
    const bool fused = b->bf16.qkv != NULL;
    const int64_t qs = fused ? 3 * dim : dim, hs = fused ? 2 * ffn : ffn;
    float *q = qkv, *k = fused ? qkv + dim : qkv + n * dim, *v = fused ? qkv + 2 * dim
                                                                      : qkv + 2 * n * dim;
    float *gate = hid, *up = fused ? hid + ffn : hid + n * ffn;

    /* attention */
    og_rmsnorm(xn, x, b->attention_norm1, n, dim, eps);
    if (scale_msa)
        og_modulate(xn, xn, scale_msa, NULL, n, dim);
    og_status st = OG_OK;
    if (fused)
        st = og_linear_packed(qkv, xn, n, b->bf16.qkv, NULL, scratch);
    else if ((st = og_linear(q, xn, n, dim, b->to_q.data, b->to_q.dtype, dim, NULL, scratch)) ==
                 OG_OK &&
             (st = og_linear(k, xn, n, dim, b->to_k.data, b->to_k.dtype, dim, NULL, scratch)) ==
                 OG_OK)
        st = og_linear(v, xn, n, dim, b->to_v.data, b->to_v.dtype, dim, NULL, scratch);
    if (st)
        goto done;
    if (b->norm_q) {
        head_rmsnorm(c, q, b->norm_q, n, qs);
        head_rmsnorm(c, k, b->norm_k, n, qs);
    }
    og_rope_interleaved(q, n, c->n_heads, c->head_dim, qs, rope_cos, rope_sin);
    og_rope_interleaved(k, n, c->n_heads, c->head_dim, qs, rope_cos, rope_sin);
    if ((st = block_attention(c, scope, q, k, v, qs, xn, n, scratch)))
        goto done;
    st = fused ? og_linear_packed(q, xn, n, b->bf16.out, NULL, scratch)
               : og_linear(q, xn, n, dim, b->to_out.data, b->to_out.dtype, dim, NULL, scratch);
    if (st)
        goto done;
    og_rmsnorm(q, q, b->attention_norm2, n, dim, eps);
    og_gated_residual(x, q, gate_msa, n, dim);

    /* feed-forward; silu(w1 h) * w3 h goes to the q/k/v buffer, free by now and wide enough
     * (3 dim >= ffn) */
    og_rmsnorm(xn, x, b->ffn_norm1, n, dim, eps);
    if (scale_mlp)
        og_modulate(xn, xn, scale_mlp, NULL, n, dim);
    if (fused)
        st = og_linear_packed(hid, xn, n, b->bf16.w13, NULL, scratch);
    else if ((st = og_linear(gate, xn, n, dim, b->w1.data, b->w1.dtype, ffn, NULL, scratch)) ==
             OG_OK)
        st = og_linear(up, xn, n, dim, b->w3.data, b->w3.dtype, ffn, NULL, scratch);
    if (st)
        goto done;
    swiglu_rows(qkv, gate, up, n, ffn, hs);
    st = fused ? og_linear_packed(xn, qkv, n, b->bf16.w2, NULL, scratch)
               : og_linear(xn, qkv, n, ffn, b->w2.data, b->w2.dtype, dim, NULL, scratch);
    if (st)
        goto done;
    og_rmsnorm(xn, xn, b->ffn_norm2, n, dim, eps);
    og_gated_residual(x, xn, gate_mlp, n, dim);
done:
    og_arena_release(scratch, mark);
    return st;
}
