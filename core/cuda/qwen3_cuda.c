/* The Qwen3 text encoder on a GPU (see qwen3_cuda.h): weight upload into one reservation sized by
 * og_qwen3_gpu_plan_for, and text/qwen3.c's layer sequence expressed with og_cuda_* ops. Fused
 * GEMMs: q | k | v in one [q_dim + 2 kv_dim, hidden] weight, gate | up in one [2 inter, hidden]. */
#include "core/cuda/qwen3_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#include "text/qwen3_internal.h"

typedef struct {
    og_bf16 *qkv, *o, *gate_up, *down;
    og_bf16 *qkv_bias, *o_bias; /* NULL unless attention_bias */
    float *in_norm, *post_norm, *q_norm, *k_norm;
} gpu_layer;

struct og_qwen3_cuda {
    const og_qwen3 *m;
    og_cuda_ctx *ctx;
    int max_tokens;
    gpu_layer *layer; /* the first layers - 1, as the CPU encoder */
};

/* ---- upload -------------------------------------------------------------------------------- */

/* n elements of the host array src (type st) placed as dt at dst + at (elements of dt). */
static og_status put_at(og_cuda_ctx *g, void *dst, size_t at, og_dtype dt, const void *src,
                        og_dtype st, size_t n)
{
    return og_cuda_upload(g, (char *)dst + at * og_dtype_size(dt), dt, src, st, n);
}

static void *dev_alloc(og_cuda_ctx *g, size_t n, og_dtype dt)
{
    return og_arena_alloc(og_cuda_arena(g), n * og_dtype_size(dt));
}

/* One bf16 matrix of rows stacked from up to three [rows_i, in] checkpoint matrices. */
static og_status put_stack(og_cuda_ctx *g, og_bf16 **out, int64_t in, const og_qwen3_linear *a,
                           int64_t ra, const og_qwen3_linear *b, int64_t rb,
                           const og_qwen3_linear *c, int64_t rc)
{
    const og_qwen3_linear *parts[3] = {a, b, c};
    const int64_t rows[3] = {ra, rb, rc};
    *out = dev_alloc(g, (size_t)((ra + rb + rc) * in), OG_BF16);
    if (!*out)
        return OG_ERR_OOM; /* the arena's message */
    size_t at = 0;
    for (int i = 0; i < 3 && parts[i]; i++) {
        OG_TRY(put_at(g, *out, at, OG_BF16, parts[i]->w, parts[i]->dt, (size_t)(rows[i] * in)));
        at += (size_t)(rows[i] * in);
    }
    return OG_OK;
}

/* The biases of q | k | v (or of o alone) as one bf16 vector: cuBLASLt's bias epilogue reads it
 * in the GEMM's output type. */
static og_status put_bias(og_cuda_ctx *g, og_bf16 **out, const og_qwen3_linear *a, int64_t ra,
                          const og_qwen3_linear *b, int64_t rb, const og_qwen3_linear *c,
                          int64_t rc)
{
    *out = dev_alloc(g, (size_t)(ra + rb + rc), OG_BF16);
    if (!*out)
        return OG_ERR_OOM;
    OG_TRY(put_at(g, *out, 0, OG_BF16, a->bias, OG_F32, (size_t)ra));
    if (b)
        OG_TRY(put_at(g, *out, (size_t)ra, OG_BF16, b->bias, OG_F32, (size_t)rb));
    if (c)
        OG_TRY(put_at(g, *out, (size_t)(ra + rb), OG_BF16, c->bias, OG_F32, (size_t)rc));
    return OG_OK;
}

static og_status put_vec(og_cuda_ctx *g, float **out, const float *v, int64_t n)
{
    *out = dev_alloc(g, (size_t)n, OG_F32);
    if (!*out)
        return OG_ERR_OOM;
    return put_at(g, *out, 0, OG_F32, v, OG_F32, (size_t)n);
}

static og_status put_layer(og_cuda_ctx *g, const og_qwen3 *m, const og_qwen3_layer *L,
                           gpu_layer *d)
{
    const int64_t H = m->hidden, I = m->inter, q_dim = (int64_t)m->heads * m->head_dim,
                  kv_dim = (int64_t)m->kv_heads * m->head_dim;
    OG_TRY(put_stack(g, &d->qkv, H, &L->q, q_dim, &L->k, kv_dim, &L->v, kv_dim));
    OG_TRY(put_stack(g, &d->o, q_dim, &L->o, H, NULL, 0, NULL, 0));
    OG_TRY(put_stack(g, &d->gate_up, H, &L->gate, I, &L->up, I, NULL, 0));
    OG_TRY(put_stack(g, &d->down, I, &L->down, H, NULL, 0, NULL, 0));
    if (m->qkv_bias)
        OG_TRY(put_bias(g, &d->qkv_bias, &L->q, q_dim, &L->k, kv_dim, &L->v, kv_dim));
    if (m->o_bias)
        OG_TRY(put_bias(g, &d->o_bias, &L->o, H, NULL, 0, NULL, 0));
    OG_TRY(put_vec(g, &d->in_norm, L->in_norm, H));
    OG_TRY(put_vec(g, &d->post_norm, L->post_norm, H));
    OG_TRY(put_vec(g, &d->q_norm, L->q_norm, m->head_dim));
    OG_TRY(put_vec(g, &d->k_norm, L->k_norm, m->head_dim));
    return OG_OK;
}

void og_qwen3_cuda_free(og_qwen3_cuda *g)
{
    if (!g)
        return;
    og_cuda_free(g->ctx);
    free(g->layer);
    free(g);
}

int og_qwen3_cuda_device(const og_qwen3_cuda *g) { return og_cuda_ctx_device(g->ctx); }
og_cuda_ctx *og_qwen3_cuda_ctx(og_qwen3_cuda *g) { return g->ctx; }

og_status og_qwen3_cuda_load(og_qwen3_cuda **out, const og_qwen3 *te, int device,
                             int max_tokens)
{
    *out = NULL;
    og_qwen3_gpu_plan plan;
    OG_TRY(og_qwen3_gpu_plan_for(te, max_tokens, &plan));
    og_qwen3_cuda *g = calloc(1, sizeof *g);
    if (!g || !(g->layer = calloc((size_t)(te->layers - 1), sizeof *g->layer))) {
        free(g);
        return og_fail(OG_ERR_OOM, "cannot allocate the GPU text encoder record");
    }
    g->m = te;
    g->max_tokens = max_tokens;
    char what[96];
    snprintf(what, sizeof what, "the Qwen3 text encoder (bf16, up to %d tokens)", max_tokens);
    og_status st = og_cuda_init(device, &g->ctx);
    if (st == OG_OK)
        st = og_cuda_reserve(g->ctx, plan.weight_bytes + plan.work_bytes, what);
    for (int i = 0; i < te->layers - 1 && st == OG_OK; i++)
        st = put_layer(g->ctx, te, &te->layer[i], &g->layer[i]);
    if (st != OG_OK) {
        og_qwen3_cuda_free(g);
        return og_fail_context(st, "putting the text encoder on GPU %d", device);
    }
    *out = g;
    return OG_OK;
}

/* ---- forward ------------------------------------------------------------------------------- */

/* One decoder layer, text/qwen3.c's sequence: x [n, H] bf16 updated in place. */
static og_status layer_forward(og_cuda_ctx *g, const og_qwen3 *m, const gpu_layer *L, og_bf16 *x,
                               og_bf16 *h, og_bf16 *qkv, og_bf16 *att, og_bf16 *gu,
                               og_bf16 *act, int64_t n, const float *cos_t, const float *sin_t)
{
    const int64_t H = m->hidden, I = m->inter, hd = m->head_dim,
                  q_dim = (int64_t)m->heads * hd, kv_dim = (int64_t)m->kv_heads * hd,
                  QKV = q_dim + 2 * kv_dim;
    const float eps = (float)m->eps;
    og_bf16 *q = qkv, *k = qkv + q_dim, *v = qkv + q_dim + kv_dim;
    /* Unpadded causal attention over exactly n tokens: the pipeline's right padding is masked,
     * so its real rows equal this (text/qwen3.h). */
    const og_attn_desc ad = {
        .sq = n, .skv = n, .heads = m->heads, .kv_heads = m->kv_heads, .head_dim = (int)hd,
        .q_stride = QKV, .k_stride = QKV, .v_stride = QKV, .o_stride = q_dim,
        .scale = (float)(1.0 / sqrt((double)hd)), .causal = true, .kv_valid = NULL,
    };
    OG_TRY(og_cuda_rmsnorm(g, h, x, L->in_norm, n, 1, H, H, eps, NULL, NULL));
    OG_TRY(og_cuda_linear(g, qkv, OG_BF16, h, n, H, L->qkv, QKV, L->qkv_bias, OG_CUDA_ACT_NONE));
    OG_TRY(og_cuda_rmsnorm(g, q, q, L->q_norm, n, m->heads, hd, QKV, eps, NULL, NULL));
    OG_TRY(og_cuda_rmsnorm(g, k, k, L->k_norm, n, m->kv_heads, hd, QKV, eps, NULL, NULL));
    OG_TRY(og_cuda_rope(g, q, n, m->heads, (int)hd, QKV, cos_t, sin_t, false));
    OG_TRY(og_cuda_rope(g, k, n, m->kv_heads, (int)hd, QKV, cos_t, sin_t, false));
    OG_TRY(og_cuda_attention(g, &ad, q, k, v, att, OG_BF16, NULL));
    OG_TRY(og_cuda_linear(g, h, OG_BF16, att, n, q_dim, L->o, H, L->o_bias, OG_CUDA_ACT_NONE));
    OG_TRY(og_cuda_gated_residual(g, x, h, NULL, false, n, H));

    OG_TRY(og_cuda_rmsnorm(g, h, x, L->post_norm, n, 1, H, H, eps, NULL, NULL));
    OG_TRY(og_cuda_linear(g, gu, OG_BF16, h, n, H, L->gate_up, 2 * I, NULL, OG_CUDA_ACT_NONE));
    OG_TRY(og_cuda_swiglu(g, act, gu, gu + I, n, I, 2 * I));
    OG_TRY(og_cuda_linear(g, h, OG_BF16, act, n, I, L->down, H, NULL, OG_CUDA_ACT_NONE));
    return og_cuda_gated_residual(g, x, h, NULL, false, n, H);
}

/* Host side of one encode: the prompt's embedding rows (f32) and the RoPE tables. */
static void host_inputs(const og_qwen3 *m, const int32_t *ids, int n, float *emb, float *cos_t,
                        float *sin_t)
{
    const int64_t H = m->hidden;
    const size_t es = og_dtype_size(m->embed.dtype);
    for (int i = 0; i < n; i++)
        og_to_f32(emb + (int64_t)i * H, (const char *)m->embed.data + (size_t)ids[i] * H * es,
                  m->embed.dtype, (size_t)H);
    og_qwen3_rope_table(cos_t, sin_t, n, m->head_dim, m->theta);
}

static og_status encode(og_qwen3_cuda *gq, const int32_t *ids, int n, float *out, float *cos_h,
                        float *sin_h)
{
    const og_qwen3 *m = gq->m;
    og_cuda_ctx *g = gq->ctx;
    const int64_t H = m->hidden, I = m->inter, hd = m->head_dim,
                  q_dim = (int64_t)m->heads * hd, QKV = q_dim + 2 * (int64_t)m->kv_heads * hd;
    const size_t N = (size_t)n, half = (size_t)(hd / 2);
    og_bf16 *x = dev_alloc(g, N * H, OG_BF16), *h = dev_alloc(g, N * H, OG_BF16);
    og_bf16 *qkv = dev_alloc(g, N * QKV, OG_BF16), *att = dev_alloc(g, N * q_dim, OG_BF16);
    og_bf16 *gu = dev_alloc(g, N * 2 * I, OG_BF16), *act = dev_alloc(g, N * I, OG_BF16);
    float *cos_t = dev_alloc(g, N * half, OG_F32), *sin_t = dev_alloc(g, N * half, OG_F32);
    if (!x || !h || !qkv || !att || !gu || !act || !cos_t || !sin_t)
        return og_fail(OG_ERR_OOM, "text encoder on GPU %d: device arena too small for %d "
                       "tokens (og_qwen3_gpu_plan_for sizes it)", og_cuda_ctx_device(g), n);
    /* The residual stream starts as the embedding rows; out is their host staging. */
    host_inputs(m, ids, n, out, cos_h, sin_h);
    OG_TRY(og_cuda_upload(g, x, OG_BF16, out, OG_F32, N * H));
    OG_TRY(og_cuda_upload(g, cos_t, OG_F32, cos_h, OG_F32, N * half));
    OG_TRY(og_cuda_upload(g, sin_t, OG_F32, sin_h, OG_F32, N * half));
    for (int li = 0; li < m->layers - 1; li++)
        OG_TRY(layer_forward(g, m, &gq->layer[li], x, h, qkv, att, gu, act, n, cos_t, sin_t));
    OG_TRY(og_cuda_sync(g));
    return og_cuda_download(g, out, x, OG_BF16, N * H);
}

og_status og_qwen3_cuda_encode(og_qwen3_cuda *g, const int32_t *ids, int n, float *out)
{
    const og_qwen3 *m = g->m;
    if (n < 1 || n > g->max_tokens)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder on the GPU: %d tokens, planned for 1 to "
                       "%d", n, g->max_tokens);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return og_fail(OG_ERR_INVALID_ARG,
                           "text encoder: token %d has id %d, outside the vocabulary of %d", i,
                           ids[i], m->vocab);
    const size_t nr = (size_t)n * (size_t)(m->head_dim / 2);
    float *cos_h = malloc(nr * sizeof *cos_h), *sin_h = malloc(nr * sizeof *sin_h);
    og_arena *a = og_cuda_arena(g->ctx);
    const size_t mark = og_arena_mark(a);
    og_status st = cos_h && sin_h ? encode(g, ids, n, out, cos_h, sin_h)
                                  : og_fail(OG_ERR_OOM, "text encoder: host RoPE tables");
    /* Nothing may still write into the buffers we release (after a failure: a kernel queued
     * before it); keep the first error's message. */
    if (st != OG_OK)
        cudaStreamSynchronize(og_cuda_stream(g->ctx));
    og_arena_release(a, mark);
    free(cos_h);
    free(sin_h);
    return st;
}
