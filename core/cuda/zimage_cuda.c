/* The Z-Image forward on a GPU (see zimage_cuda.h): weight upload, device memory plan, and the
 * block / embedder / final-layer sequence of dit/zimage.c expressed with og_cuda_* ops. Fused
 * GEMMs: q | k | v in one [3 * dim, dim] weight, w1 | w3 in one [2 * ffn, dim] weight, every
 * modulated block's adaLN in one [n_mod * 4 * dim, adaln_dim] weight. A serial forward waits for
 * the stream only around its uploads (first) and its download (last). */
#include "core/cuda/zimage_cuda.h"

#include <math.h>
#include <stdlib.h>

#include "dit/zimage_internal.h"
#include "parallel/sp.h"

typedef struct {
    og_bf16 *qkv, *out, *w13, *w2;
    float *norm_q, *norm_k, *attn_norm1, *attn_norm2, *ffn_norm1, *ffn_norm2;
} gpu_block;

struct og_zimage_cuda {
    const og_zimage *m;
    int device;
    gpu_block *noise, *context, *layers; /* one allocation, in this order */
    og_bf16 *cap_w, *cap_b, *x_emb_w, *x_emb_b, *fin_w, *ada_w;
    float *cap_norm, *fin_b, *ada_b;
};

/* ---- upload: one pass counts the bytes, the second allocates and copies ------------------- */

typedef struct {
    og_cuda_ctx *ctx; /* NULL: count only */
    size_t bytes;
    og_status st;
} uploader;

static size_t aligned(size_t n) { return (n + 63) & ~(size_t)63; }

/* Device memory for `bytes` (counted only while counting: a non-NULL token, never used). */
static void *place(uploader *u, size_t bytes)
{
    if (u->st != OG_OK)
        return NULL;
    u->bytes += aligned(bytes);
    if (!u->ctx)
        return (void *)1;
    void *p = og_arena_alloc(og_cuda_arena(u->ctx), bytes);
    if (!p)
        u->st = og_fail(OG_ERR_OOM, "Z-Image weights: the device arena is too small");
    return p;
}

/* n host elements of type st to dst as dt (nothing while counting or after a failure). */
static void copy_in(uploader *u, void *dst, size_t at, og_dtype dt, const void *src, og_dtype st,
                    size_t n)
{
    if (u->st == OG_OK && u->ctx)
        u->st = og_cuda_upload(u->ctx, (char *)dst + at * og_dtype_size(dt), dt, src, st, n);
}

static void *put(uploader *u, og_dtype dt, const void *src, og_dtype st, size_t n)
{
    void *p = place(u, n * og_dtype_size(dt));
    copy_in(u, p, 0, dt, src, st, n);
    return p;
}

static og_bf16 *put_matrix(uploader *u, const og_tensor *t)
{
    return put(u, OG_BF16, t->data, t->dtype, (size_t)og_tensor_numel(t));
}

static float *put_vec(uploader *u, const float *v, int64_t n)
{
    return v ? put(u, OG_F32, v, OG_F32, (size_t)n) : NULL;
}

/* n matrices of the same width stacked row-wise into one bf16 weight. */
static og_bf16 *put_stack(uploader *u, const og_tensor *const *parts, int n)
{
    size_t total = 0, at = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)og_tensor_numel(parts[i]);
    og_bf16 *w = place(u, total * sizeof(og_bf16));
    for (int i = 0; i < n; i++) {
        copy_in(u, w, at, OG_BF16, parts[i]->data, parts[i]->dtype,
                (size_t)og_tensor_numel(parts[i]));
        at += (size_t)og_tensor_numel(parts[i]);
    }
    return w;
}

static void put_block(uploader *u, const og_zimage_config *c, const zimage_block *b, gpu_block *g)
{
    g->qkv = put_stack(u, (const og_tensor *[]){&b->to_q, &b->to_k, &b->to_v}, 3);
    g->out = put_matrix(u, &b->to_out);
    g->w13 = put_stack(u, (const og_tensor *[]){&b->w1, &b->w3}, 2);
    g->w2 = put_matrix(u, &b->w2);
    g->norm_q = put_vec(u, b->norm_q, c->head_dim);
    g->norm_k = put_vec(u, b->norm_k, c->head_dim);
    g->attn_norm1 = put_vec(u, b->attention_norm1, c->dim);
    g->attn_norm2 = put_vec(u, b->attention_norm2, c->dim);
    g->ffn_norm1 = put_vec(u, b->ffn_norm1, c->dim);
    g->ffn_norm2 = put_vec(u, b->ffn_norm2, c->dim);
}

/* Every modulated block's adaLN linear stacked in the order of the modulations (noise refiner,
 * then layers): [n_mod * 4 * dim, adaln_dim] bf16 and its f32 bias, so that one GEMV on the
 * device makes all of a step's modulations. */
static void put_adaln(uploader *u, const og_zimage *m, og_zimage_cuda *w)
{
    const og_zimage_config *c = &m->c;
    const int nr = c->n_refiner_layers, n_mod = nr + c->n_layers;
    const size_t rows = 4 * (size_t)c->dim, per = rows * (size_t)c->adaln_dim;
    if (n_mod == 0)
        return;
    w->ada_w = place(u, (size_t)n_mod * per * sizeof(og_bf16));
    w->ada_b = place(u, (size_t)n_mod * rows * sizeof(float));
    for (int i = 0; i < n_mod; i++) {
        const zimage_block *b = i < nr ? &m->noise_refiner[i] : &m->layers[i - nr];
        copy_in(u, w->ada_w, (size_t)i * per, OG_BF16, b->ada_w.data, b->ada_w.dtype, per);
        copy_in(u, w->ada_b, (size_t)i * rows, OG_F32, b->ada_b, OG_F32, rows);
    }
}

static void put_all(uploader *u, const og_zimage *m, og_zimage_cuda *w)
{
    const og_zimage_config *c = &m->c;
    const int64_t patch_dim = (int64_t)c->patch_size * c->patch_size * c->in_channels;
    w->cap_norm = put_vec(u, m->cap_norm, c->cap_feat_dim);
    w->cap_w = put_matrix(u, &m->cap_w);
    w->cap_b = put(u, OG_BF16, m->cap_b, OG_F32, (size_t)c->dim); /* bias of a bf16 GEMM */
    w->x_emb_w = put_matrix(u, &m->x_emb_w);
    w->x_emb_b = put(u, OG_BF16, m->x_emb_b, OG_F32, (size_t)c->dim);
    w->fin_w = put_matrix(u, &m->fin_w);
    w->fin_b = put_vec(u, m->fin_b, patch_dim); /* the final GEMM writes f32 */
    for (int i = 0; i < c->n_refiner_layers; i++) {
        put_block(u, c, &m->noise_refiner[i], &w->noise[i]);
        put_block(u, c, &m->context_refiner[i], &w->context[i]);
    }
    for (int i = 0; i < c->n_layers; i++)
        put_block(u, c, &m->layers[i], &w->layers[i]);
    put_adaln(u, m, w);
}

static og_zimage_cuda *record_new(const og_zimage *m)
{
    const og_zimage_config *c = &m->c;
    og_zimage_cuda *w = calloc(1, sizeof *w);
    size_t nb = 2 * (size_t)c->n_refiner_layers + (size_t)c->n_layers;
    gpu_block *b = calloc(nb > 0 ? nb : 1, sizeof *b);
    if (!w || !b) {
        free(w);
        free(b);
        return NULL;
    }
    w->m = m;
    w->noise = b;
    w->context = b + c->n_refiner_layers;
    w->layers = b + 2 * c->n_refiner_layers;
    return w;
}

void og_zimage_cuda_free(og_zimage_cuda *w)
{
    if (!w)
        return;
    free(w->noise);
    free(w);
}

int og_zimage_cuda_device(const og_zimage_cuda *w) { return w->device; }

size_t og_zimage_cuda_weight_bytes(const og_zimage *m)
{
    og_zimage_cuda *w = record_new(m);
    if (!w)
        return 0;
    uploader u = {NULL, 0, OG_OK};
    put_all(&u, m, w);
    og_zimage_cuda_free(w);
    return u.bytes + 64;
}

og_status og_zimage_cuda_upload(og_zimage_cuda **out, og_cuda_ctx *ctx, const og_zimage *m)
{
    *out = NULL;
    OG_TRY(og_cuda_reserve(ctx, og_zimage_cuda_weight_bytes(m), "the Z-Image weights (bf16)"));
    og_zimage_cuda *w = record_new(m);
    if (!w)
        return og_fail(OG_ERR_OOM, "cannot allocate the GPU weight record");
    w->device = og_cuda_ctx_device(ctx);
    uploader u = {ctx, 0, OG_OK};
    put_all(&u, m, w);
    if (u.st != OG_OK) {
        og_zimage_cuda_free(w);
        return og_fail_context(u.st, "uploading the Z-Image weights to GPU %d",
                               og_cuda_ctx_device(ctx));
    }
    *out = w;
    return OG_OK;
}

/* ---- memory plan --------------------------------------------------------------------------- */

static size_t bf(int64_t n) { return aligned((size_t)n * sizeof(og_bf16)); }
static size_t fl(int64_t n) { return aligned((size_t)n * sizeof(float)); }

static size_t block_bytes(const og_zimage_config *c, int64_t n)
{
    return 3 * bf(n * c->dim) + bf(3 * n * c->dim) + bf(2 * n * c->ffn_dim) + bf(n * c->ffn_dim);
}

size_t og_zimage_cuda_work_bytes(const og_zimage *m, int64_t lat_h, int64_t lat_w,
                                 int64_t cap_len, og_sp *sp)
{
    const og_zimage_config *c = &m->c;
    og_zimage_tokens t;
    if (og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t) != OG_OK)
        return 0; /* the forward reports the error */
    const int P = sp ? og_sp_size(sp) : 1;
    const zimage_split s = zimage_split_for(&t, P, sp ? og_sp_rank(sp) : 0);
    const int64_t dim = c->dim, half = c->head_dim / 2, L = t.cap_pad_len;
    const int64_t n_mod = c->n_refiner_layers + c->n_layers;
    const int64_t patch_dim = (int64_t)c->patch_size * c->patch_size * c->in_channels;
    const int64_t big = s.uni_n > L ? s.uni_n : L;
    size_t attn = 0;
    if (P > 1) {
        size_t a = og_sp_attention_scratch_bytes(sp, t.img_pad_len, c->n_heads, c->head_dim, 0);
        size_t b = og_sp_attention_scratch_bytes(sp, t.seq_len, c->n_heads, c->head_dim, 0);
        attn = a > b ? a : b;
    }
    return fl(n_mod * 4 * dim) + fl(dim) + bf(c->adaln_dim) + bf(s.uni_n * dim) +
           2 * fl(s.uni_n * half) +
           2 * fl(L * half) + bf(L * dim) + 2 * bf(cap_len * c->cap_feat_dim) +
           bf(s.img_n * patch_dim) + block_bytes(c, big) + attn + bf(s.img_n * dim) +
           fl(s.img_n * patch_dim) + fl(t.img_pad_len * patch_dim) + 64 * 64;
}

/* ---- forward ------------------------------------------------------------------------------- */

typedef struct {
    og_cuda_ctx *g;
    og_arena *a;
    bool failed;
} dalloc;

static void *dal(dalloc *d, size_t bytes)
{
    void *p = og_arena_alloc(d->a, bytes);
    d->failed |= p == NULL;
    return p;
}

/* Where a block's attention runs: serial over its n tokens, or as this rank's shard of seq. */
typedef struct {
    og_sp *sp;
    int64_t seq;
    const og_sp_ops *ops;
} attn_scope;

static og_status block_attention(og_cuda_ctx *g, const og_zimage_config *c, attn_scope sc,
                                 const og_bf16 *qkv, og_bf16 *out, int64_t n, og_arena *a)
{
    const int64_t dim = c->dim;
    const float scale = 1.0f / sqrtf((float)c->head_dim);
    if (sc.sp) {
        const og_sp_attn_args args = {.seq = sc.seq, .heads = c->n_heads,
                                      .head_dim = c->head_dim, .scale = scale, .q = qkv,
                                      .k = qkv + dim, .v = qkv + 2 * dim, .out = out,
                                      .scratch = a, .qkv_stride = 3 * dim, .ops = sc.ops};
        return og_sp_attention(sc.sp, &args);
    }
    const og_attn_desc d = {.sq = n, .skv = n, .heads = c->n_heads, .kv_heads = c->n_heads,
                            .head_dim = c->head_dim, .q_stride = 3 * dim, .k_stride = 3 * dim,
                            .v_stride = 3 * dim, .o_stride = dim, .scale = scale};
    return og_cuda_attention(g, &d, qkv, qkv + dim, qkv + 2 * dim, out, OG_BF16, NULL);
}

/* zimage_block_forward on the device: x [n, dim] bf16 in place; mod the block's [4 * dim] f32
 * modulation on the device (gates before their tanh, which the residual applies) or NULL. */
static og_status block_forward(og_cuda_ctx *g, const og_zimage_config *c, const gpu_block *b,
                               og_bf16 *x, int64_t n, const float *cos_t, const float *sin_t,
                               const float *mod, attn_scope sc)
{
    const int64_t dim = c->dim, ffn = c->ffn_dim;
    const float eps = c->norm_eps;
    og_arena *a = og_cuda_arena(g);
    const size_t mark = og_arena_mark(a);
    dalloc d = {g, a, false};
    og_bf16 *xn = dal(&d, (size_t)(n * dim) * 2), *qkv = dal(&d, (size_t)(3 * n * dim) * 2);
    og_bf16 *tmp = dal(&d, (size_t)(n * dim) * 2), *h13 = dal(&d, (size_t)(2 * n * ffn) * 2);
    og_bf16 *h = dal(&d, (size_t)(n * ffn) * 2);
    if (d.failed) {
        og_arena_release(a, mark);
        return og_fail(OG_ERR_OOM, "Z-Image block on the GPU: device arena too small for %lld "
                       "tokens (size it with og_zimage_cuda_work_bytes)", (long long)n);
    }
    const float *scale_msa = mod, *gate_msa = mod ? mod + dim : NULL;
    const float *scale_mlp = mod ? mod + 2 * dim : NULL, *gate_mlp = mod ? mod + 3 * dim : NULL;
    og_status st;
    if ((st = og_cuda_rmsnorm(g, xn, x, b->attn_norm1, n, 1, dim, dim, eps, scale_msa, NULL)) ||
        (st = og_cuda_linear(g, qkv, OG_BF16, xn, n, dim, b->qkv, 3 * dim, NULL,
                             OG_CUDA_ACT_NONE)))
        goto done;
    if (b->norm_q &&
        ((st = og_cuda_rmsnorm(g, qkv, qkv, b->norm_q, n, c->n_heads, c->head_dim, 3 * dim, 1e-5f,
                               NULL, NULL)) ||
         (st = og_cuda_rmsnorm(g, qkv + dim, qkv + dim, b->norm_k, n, c->n_heads, c->head_dim,
                               3 * dim, 1e-5f, NULL, NULL))))
        goto done;
    if ((st = og_cuda_rope(g, qkv, n, c->n_heads, c->head_dim, 3 * dim, cos_t, sin_t, true)) ||
        (st = og_cuda_rope(g, qkv + dim, n, c->n_heads, c->head_dim, 3 * dim, cos_t, sin_t,
                           true)) ||
        (st = block_attention(g, c, sc, qkv, xn, n, a)) ||
        (st = og_cuda_linear(g, tmp, OG_BF16, xn, n, dim, b->out, dim, NULL, OG_CUDA_ACT_NONE)) ||
        (st = og_cuda_rmsnorm(g, tmp, tmp, b->attn_norm2, n, 1, dim, dim, eps, NULL, NULL)) ||
        (st = og_cuda_gated_residual(g, x, tmp, gate_msa, mod != NULL, n, dim)))
        goto done;
    if ((st = og_cuda_rmsnorm(g, xn, x, b->ffn_norm1, n, 1, dim, dim, eps, scale_mlp, NULL)) ||
        (st = og_cuda_linear(g, h13, OG_BF16, xn, n, dim, b->w13, 2 * ffn, NULL,
                             OG_CUDA_ACT_NONE)) ||
        (st = og_cuda_swiglu(g, h, h13, h13 + ffn, n, ffn, 2 * ffn)) ||
        (st = og_cuda_linear(g, tmp, OG_BF16, h, n, ffn, b->w2, dim, NULL, OG_CUDA_ACT_NONE)) ||
        (st = og_cuda_rmsnorm(g, tmp, tmp, b->ffn_norm2, n, 1, dim, dim, eps, NULL, NULL)))
        goto done;
    st = og_cuda_gated_residual(g, x, tmp, gate_mlp, mod != NULL, n, dim);
done:
    og_arena_release(a, mark);
    return st;
}

/* Host-side inputs of one forward: time embedding, final scale, RoPE tables, patch vectors. */
typedef struct {
    float *adaln, *final_scale, *ucos, *usin, *ccos, *csin, *patches, *full;
    int64_t *pos;
} host_inputs;

static void host_free(host_inputs *h)
{
    free(h->adaln);
    free(h->final_scale);
    free(h->ucos);
    free(h->usin);
    free(h->ccos);
    free(h->csin);
    free(h->patches);
    free(h->full);
    free(h->pos);
}

static og_status host_prepare(const og_zimage *m, const og_zimage_tokens *t,
                              const zimage_split *s, float t_model, const float *lat,
                              int64_t lat_h, int64_t lat_w, host_inputs *h, int64_t *real)
{
    const og_zimage_config *c = &m->c;
    const int64_t dim = c->dim, half = c->head_dim / 2, L = t->cap_pad_len;
    const int64_t patch_dim = (int64_t)c->patch_size * c->patch_size * c->in_channels;
    const int64_t npos = s->uni_n > L ? s->uni_n : L;
    h->adaln = malloc((size_t)c->adaln_dim * sizeof(float));
    h->final_scale = malloc((size_t)dim * sizeof(float));
    h->ucos = malloc((size_t)(s->uni_n * half) * sizeof(float));
    h->usin = malloc((size_t)(s->uni_n * half) * sizeof(float));
    h->ccos = malloc((size_t)(L * half) * sizeof(float));
    h->csin = malloc((size_t)(L * half) * sizeof(float));
    h->patches = malloc((size_t)(s->img_n * patch_dim) * sizeof(float));
    h->full = malloc((size_t)(t->img_pad_len * patch_dim) * sizeof(float));
    h->pos = malloc((size_t)(3 * npos) * sizeof(int64_t));
    if (!h->adaln || !h->final_scale || !h->ucos || !h->usin || !h->ccos || !h->csin ||
        !h->patches || !h->full || !h->pos)
        return og_fail(OG_ERR_OOM, "Z-Image GPU forward: host buffers");
    /* Only the time embedder (two small GEMVs) and the final scale run here; the blocks'
     * modulations are one GEMV on the device. */
    og_arena tmp;
    OG_TRY(og_arena_init(&tmp, (size_t)(m->t_freq_dim + m->t_mid_dim + c->adaln_dim) * 4 + 4096));
    og_status st = zimage_time_conditioning(m, t_model, &tmp, NULL, h->final_scale, h->adaln);
    og_arena_free(&tmp);
    OG_TRY(st);
    zimage_unified_positions(t, s, h->pos);
    og_rope_table(h->ucos, h->usin, h->pos, s->uni_n, 3, c->axes_dims, c->rope_theta);
    zimage_caption_positions(L, h->pos);
    og_rope_table(h->ccos, h->csin, h->pos, L, 3, c->axes_dims, c->rope_theta);
    *real = zimage_patchify(c, t, s, lat, lat_h, lat_w, h->patches);
    return OG_OK;
}

/* Rows [from, to) of x [*, dim] bf16 set to a host f32 pad token. */
static og_status pad_rows(og_cuda_ctx *g, og_bf16 *x, int64_t from, int64_t to, int64_t dim,
                          const float *token)
{
    for (int64_t j = from; j < to; j++)
        OG_TRY(og_cuda_upload(g, x + j * dim, OG_BF16, token, OG_F32, (size_t)dim));
    return OG_OK;
}

static og_status forward(og_cuda_ctx *g, const og_zimage_cuda *w, og_sp *sp, int64_t lat_h,
                         int64_t lat_w, const float *cap_feats, int64_t cap_len,
                         float *out, const og_zimage_tokens *t, const zimage_split *s,
                         const host_inputs *h, int64_t real)
{
    const og_zimage *m = w->m;
    const og_zimage_config *c = &m->c;
    const int64_t dim = c->dim, half = c->head_dim / 2, L = t->cap_pad_len;
    const int64_t n_mod = c->n_refiner_layers + c->n_layers, F = c->cap_feat_dim;
    const int64_t patch_dim = (int64_t)c->patch_size * c->patch_size * c->in_channels;
    og_arena *a = og_cuda_arena(g);
    dalloc d = {g, a, false};
    float *mods = dal(&d, (size_t)(n_mod * 4 * dim) * 4), *fscale = dal(&d, (size_t)dim * 4);
    og_bf16 *adaln = dal(&d, (size_t)c->adaln_dim * 2);
    float *ucos = dal(&d, (size_t)(s->uni_n * half) * 4);
    float *usin = dal(&d, (size_t)(s->uni_n * half) * 4);
    float *ccos = dal(&d, (size_t)(L * half) * 4), *csin = dal(&d, (size_t)(L * half) * 4);
    og_bf16 *x = dal(&d, (size_t)(s->uni_n * dim) * 2), *cap = dal(&d, (size_t)(L * dim) * 2);
    og_bf16 *feats = dal(&d, (size_t)(cap_len * F) * 2);
    og_bf16 *normed = dal(&d, (size_t)(cap_len * F) * 2);
    og_bf16 *patches = dal(&d, (size_t)(s->img_n * patch_dim) * 2);
    if (d.failed)
        return og_fail(OG_ERR_OOM, "Z-Image GPU forward: device arena too small (size it with "
                                   "og_zimage_cuda_work_bytes)");
    /* Every upload first: each waits for the stream, which is idle only now. */
    OG_TRY(og_cuda_upload(g, adaln, OG_BF16, h->adaln, OG_F32, (size_t)c->adaln_dim));
    OG_TRY(og_cuda_upload(g, fscale, OG_F32, h->final_scale, OG_F32, (size_t)dim));
    OG_TRY(og_cuda_upload(g, ucos, OG_F32, h->ucos, OG_F32, (size_t)(s->uni_n * half)));
    OG_TRY(og_cuda_upload(g, usin, OG_F32, h->usin, OG_F32, (size_t)(s->uni_n * half)));
    OG_TRY(og_cuda_upload(g, ccos, OG_F32, h->ccos, OG_F32, (size_t)(L * half)));
    OG_TRY(og_cuda_upload(g, csin, OG_F32, h->csin, OG_F32, (size_t)(L * half)));
    if (real > 0)
        OG_TRY(og_cuda_upload(g, patches, OG_BF16, h->patches, OG_F32, (size_t)(real * patch_dim)));
    OG_TRY(pad_rows(g, x, real, s->img_n, dim, m->x_pad_token));
    OG_TRY(og_cuda_upload(g, feats, OG_BF16, cap_feats, OG_F32, (size_t)(cap_len * F)));
    OG_TRY(pad_rows(g, cap, cap_len, L, dim, m->cap_pad_token));

    /* All modulations of the step: [n_mod * 4 * dim] = ada_w . adaln + ada_b. */
    if (n_mod > 0)
        OG_TRY(og_cuda_linear(g, mods, OG_F32, adaln, 1, c->adaln_dim, w->ada_w,
                              n_mod * 4 * dim, w->ada_b, OG_CUDA_ACT_NONE));

    og_sp_ops ops;
    og_cuda_sp_ops(g, &ops);
    const bool par = s->P > 1;

    /* Image tokens: embed the real ones (pads are in place), noise_refiner over the image. */
    if (real > 0)
        OG_TRY(og_cuda_linear(g, x, OG_BF16, patches, real, patch_dim, w->x_emb_w, dim,
                              w->x_emb_b, OG_CUDA_ACT_NONE));
    const attn_scope img = {par ? sp : NULL, t->img_pad_len, &ops};
    for (int i = 0; i < c->n_refiner_layers; i++)
        OG_TRY(block_forward(g, c, &w->noise[i], x, s->img_n, ucos, usin, mods + i * 4 * dim,
                             img));

    /* The whole caption on every rank, then this rank's slice after its image shard. */
    OG_TRY(og_cuda_rmsnorm(g, normed, feats, w->cap_norm, cap_len, 1, F, F, c->norm_eps, NULL,
                           NULL));
    OG_TRY(og_cuda_linear(g, cap, OG_BF16, normed, cap_len, F, w->cap_w, dim, w->cap_b,
                          OG_CUDA_ACT_NONE));
    const attn_scope local = {NULL, L, NULL};
    for (int i = 0; i < c->n_refiner_layers; i++)
        OG_TRY(block_forward(g, c, &w->context[i], cap, L, ccos, csin, NULL, local));
    const size_t slice = (size_t)(s->cap_n * dim) * sizeof(og_bf16);
    OG_TRY(og_cuda_copy2d(g, x + s->img_n * dim, slice, cap + s->cap_off * dim, slice, slice, 1));

    const attn_scope uni = {par ? sp : NULL, t->seq_len, &ops};
    for (int i = 0; i < c->n_layers; i++)
        OG_TRY(block_forward(g, c, &w->layers[i], x, s->uni_n, ucos, usin,
                             mods + (c->n_refiner_layers + i) * 4 * dim, uni));

    /* Final layer on the image shard (f32 out), gathered over the sequence group, to the host. */
    og_bf16 *xn = dal(&d, (size_t)(s->img_n * dim) * 2);
    float *local_out = dal(&d, (size_t)(s->img_n * patch_dim) * 4);
    float *full = par ? dal(&d, (size_t)(t->img_pad_len * patch_dim) * 4) : local_out;
    if (d.failed)
        return og_fail(OG_ERR_OOM, "Z-Image GPU final layer: device arena too small");
    OG_TRY(og_cuda_layernorm(g, xn, x, NULL, NULL, s->img_n, dim, dim, 1e-6f, fscale, NULL));
    OG_TRY(og_cuda_linear(g, local_out, OG_F32, xn, s->img_n, dim, w->fin_w, patch_dim, w->fin_b,
                          OG_CUDA_ACT_NONE));
    OG_TRY(og_cuda_sync(g));
    if (par)
        OG_TRY(og_sp_gather_seq(sp, local_out, full, t->img_pad_len, patch_dim));
    OG_TRY(og_cuda_download(g, h->full, full, OG_F32, (size_t)(t->img_pad_len * patch_dim)));
    zimage_unpatchify(c, t, h->full, lat_h, lat_w, out);
    return OG_OK;
}

og_status og_zimage_cuda_forward(og_cuda_ctx *ctx, const og_zimage_cuda *w, og_sp *sp,
                                 const float *latents, int64_t lat_h, int64_t lat_w,
                                 float t_model, const float *cap_feats, int64_t cap_len,
                                 float *out)
{
    if (!ctx || !w || !latents || !cap_feats || !out)
        return og_fail(OG_ERR_INVALID_ARG, "Z-Image GPU forward: context, weights, latents, "
                                           "caption and output are required");
    if (og_cuda_ctx_device(ctx) != w->device)
        return og_fail(OG_ERR_INVALID_ARG, "Z-Image GPU forward: the weights are on GPU %d, the "
                       "rank's context on GPU %d", w->device, og_cuda_ctx_device(ctx));
    const og_zimage_config *c = &w->m->c;
    og_zimage_tokens t;
    OG_TRY(og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t));
    const zimage_split s = zimage_split_for(&t, sp ? og_sp_size(sp) : 1, sp ? og_sp_rank(sp) : 0);
    host_inputs h = {0};
    int64_t real = 0;
    og_arena *a = og_cuda_arena(ctx);
    const size_t mark = og_arena_mark(a);
    og_status st = host_prepare(w->m, &t, &s, t_model, latents, lat_h, lat_w, &h, &real);
    if (st == OG_OK)
        st = forward(ctx, w, sp, lat_h, lat_w, cap_feats, cap_len, out, &t, &s, &h,
                     real);
    /* Nothing may still write into the arena we release; after a failure the rank stops, and
     * a second error would overwrite the first one's message. */
    if (st == OG_OK)
        st = og_cuda_sync(ctx);
    og_arena_release(a, mark);
    host_free(&h);
    return st;
}
