/* The AutoencoderKL decoder on a GPU (see vae_cuda.h): the weight upload through the decoder's
 * tensor walk, and the forward of vae/autoencoder_kl.c with og_cuda_* ops on three bf16
 * ping-pong buffers. Compiled, never run (no GPU where it was written). */
#include "core/cuda/vae_cuda.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/cuda/cuda_internal.h"
#include "vae/autoencoder_kl_internal.h"

struct og_vae_cuda {
    og_cuda_ctx *ctx; /* holds the weights */
    og_vae dev;       /* the CPU record with every tensor pointer on the device */
};

/* ---- upload -------------------------------------------------------------------------------- */

typedef struct {
    og_cuda_ctx *ctx;
    og_status st;
} uploader;

/* Matrices become bf16, vectors stay f32; the walk stores the returned device pointer. */
static const void *upload_tensor(void *arg, const void *data, og_dtype *dt, int64_t n,
                                 bool matrix)
{
    uploader *u = arg;
    if (u->st != OG_OK)
        return NULL;
    const og_dtype to = matrix ? OG_BF16 : OG_F32;
    void *dst = og_arena_alloc(og_cuda_arena(u->ctx), (size_t)n * og_dtype_size(to));
    if (!dst) {
        u->st = og_fail(OG_ERR_INTERNAL, "VAE weights: the device arena is smaller than the plan");
        return NULL;
    }
    u->st = og_cuda_upload(u->ctx, dst, to, data, *dt, (size_t)n);
    *dt = to;
    return dst;
}

og_status og_vae_cuda_upload(og_vae_cuda **out, int device, const og_vae *v)
{
    *out = NULL;
    const int64_t top = v->block_out[v->n_blocks - 1];
    if (v->has_attn && (top > 512 || top % 2)) /* og_cuda_attention's plain kernel */
        return og_fail(OG_ERR_UNSUPPORTED, "the VAE's mid-block attention has head dim %lld; "
                       "the GPU attention takes even head dims up to 512", (long long)top);
    og_vae_device_plan plan;
    OG_TRY(og_vae_device_plan_for(v, 1, 1, &plan));
    og_vae_cuda *g = calloc(1, sizeof *g);
    if (!g)
        return og_fail(OG_ERR_OOM, "cannot allocate the GPU VAE record");
    og_status st = og_cuda_init(device, &g->ctx);
    if (st == OG_OK)
        st = og_cuda_reserve(g->ctx, plan.weights + 64, "the VAE decoder's weights (bf16)");
    if (st == OG_OK) {
        g->dev = *v;
        g->dev.w = NULL; /* the host weights stay the CPU record's */
        g->dev.arena = (og_arena){0};
        uploader u = {g->ctx, OG_OK};
        og_vae_walk_tensors(&g->dev, upload_tensor, &u);
        st = u.st == OG_OK ? OG_OK
                           : og_fail_context(u.st, "uploading the VAE weights to GPU %d", device);
    }
    if (st != OG_OK) {
        og_vae_cuda_free(g);
        return st;
    }
    *out = g;
    return OG_OK;
}

void og_vae_cuda_free(og_vae_cuda *g)
{
    if (!g)
        return;
    og_cuda_free(g->ctx);
    free(g);
}

int og_vae_cuda_device(const og_vae_cuda *g) { return og_cuda_ctx_device(g->ctx); }

/* ---- forward ------------------------------------------------------------------------------- */

typedef struct {
    og_cuda_ctx *g;
    const og_vae *v; /* device pointers */
    og_bf16 *buf[3];
    og_bf16 *q, *k, *val; /* [hw, top] each */
} pass;

static int other(int a, int b) { return 3 - a - b; }

static og_status conv(pass *p, const vae_conv *c, og_bf16 *y, const og_bf16 *x, int64_t h,
                      int64_t w)
{
    return og_cuda_conv2d(p->g, y, x, c->cin, h, w, c->w, c->b, c->cout, c->k, c->k, 1, c->k / 2);
}

static og_status norm(pass *p, const vae_norm *n, og_bf16 *y, const og_bf16 *x, int64_t c,
                      int64_t hw, bool silu)
{
    return og_cuda_groupnorm(p->g, y, x, n->w, n->b, c, hw, p->v->groups, VAE_EPS, silu);
}

/* ResnetBlock2D as the CPU's resnet(): the residual lands in the input buffer, or in the
 * shortcut's output when the channel count changes. */
static og_status resnet(pass *p, const vae_resnet *r, int *cur, int64_t h, int64_t w)
{
    const int64_t hw = h * w;
    int a = (*cur + 1) % 3, b = other(*cur, a);
    og_bf16 *x = p->buf[*cur], *t1 = p->buf[a], *t2 = p->buf[b];
    OG_TRY(norm(p, &r->norm1, t1, x, r->cin, hw, true));
    OG_TRY(conv(p, &r->conv1, t2, t1, h, w));
    OG_TRY(norm(p, &r->norm2, t2, t2, r->cout, hw, true));
    OG_TRY(conv(p, &r->conv2, t1, t2, h, w));
    if (r->shortcut.w) {
        OG_TRY(conv(p, &r->shortcut, t2, x, h, w));
        x = t2;
        *cur = b;
    }
    return og_cuda_gated_residual(p->g, x, t1, NULL, false, r->cout, hw);
}

/* The mid-block attention: GroupNorm over [c, hw], q/k/v as token-major [hw, c] straight from
 * the channel-major map (transposed GEMM operand), one head of head_dim c over all positions,
 * and the output projection accumulated into x in channel-major order (beta = 1). */
static og_status attention(pass *p, int cur, int64_t h, int64_t w)
{
    const og_vae *v = p->v;
    const int64_t c = v->block_out[v->n_blocks - 1], hw = h * w;
    const vae_attn *at = &v->attn;
    int a = (cur + 1) % 3, b = other(cur, a);
    og_bf16 *x = p->buf[cur], *xn = p->buf[a], *o = p->buf[b];
    OG_TRY(norm(p, &at->norm, xn, x, c, hw, false));
    const vae_linear *proj[3] = {&at->q, &at->k, &at->v};
    og_bf16 *dst[3] = {p->q, p->k, p->val};
    for (int i = 0; i < 3; i++) {
        OG_TRY(og_cuda_gemm(p->g, true, true, hw, c, c, 1.0f, xn, hw, proj[i]->w, c, 0.0f,
                            dst[i], OG_BF16, c));
        OG_TRY(og_cuda_add_row_bias(p->g, dst[i], proj[i]->b, hw, c, c));
    }
    const og_attn_desc d = {.sq = hw, .skv = hw, .heads = 1, .kv_heads = 1, .head_dim = (int)c,
                            .q_stride = c, .k_stride = c, .v_stride = c, .o_stride = c,
                            .scale = 1.0f / sqrtf((float)c)};
    OG_TRY(og_cuda_attention(p->g, &d, p->q, p->k, p->val, o, OG_BF16, NULL));
    OG_TRY(og_cuda_gemm(p->g, false, true, c, hw, c, 1.0f, at->o.w, c, o, c, 1.0f, x, OG_BF16,
                        hw));
    return og_cuda_add_channel_bias(p->g, x, at->o.b, c, hw);
}

/* The whole decoder on z [latent_c, h, w] (unscaled, bf16); the raw output [out_c, f*h, f*w]
 * ends in p->buf[*out]. */
static og_status forward(pass *p, const og_bf16 *z, int64_t h, int64_t w, int *out)
{
    const og_vae *v = p->v;
    int cur = 0;
    if (v->has_post_quant) {
        OG_TRY(conv(p, &v->post_quant, p->buf[1], z, h, w));
        z = p->buf[1];
    }
    OG_TRY(conv(p, &v->conv_in, p->buf[0], z, h, w));
    OG_TRY(resnet(p, &v->mid_res[0], &cur, h, w));
    if (v->has_attn)
        OG_TRY(attention(p, cur, h, w));
    OG_TRY(resnet(p, &v->mid_res[1], &cur, h, w));
    for (int i = 0; i < v->n_blocks; i++) {
        const vae_up_block *ub = &v->up[i];
        for (int j = 0; j < ub->n_res; j++)
            OG_TRY(resnet(p, &ub->res[j], &cur, h, w));
        if (ub->upsample) {
            int a = (cur + 1) % 3, b = other(cur, a);
            OG_TRY(og_cuda_upsample_nearest2x(p->g, p->buf[a], p->buf[cur], ub->up_conv.cin, h,
                                              w));
            h *= 2;
            w *= 2;
            OG_TRY(conv(p, &ub->up_conv, p->buf[b], p->buf[a], h, w));
            cur = b;
        }
    }
    int a = (cur + 1) % 3, b = other(cur, a);
    OG_TRY(norm(p, &v->norm_out, p->buf[a], p->buf[cur], v->block_out[0], h * w, true));
    OG_TRY(conv(p, &v->conv_out, p->buf[b], p->buf[a], h, w));
    *out = b;
    return OG_OK;
}

/* Takes the plan's buffers from the work arena, uploads the unscaled latents and decodes. */
static og_status decode_in(og_cuda_ctx *ctx, const og_vae *v, const og_vae_device_plan *plan,
                           const float *z, int64_t h, int64_t w, float *rgb)
{
    og_arena *ar = og_cuda_arena(ctx);
    pass p = {.g = ctx, .v = v};
    og_bf16 *zd = og_arena_alloc(ar, plan->latent);
    bool ok = zd != NULL;
    for (int i = 0; i < 3; i++)
        ok &= (p.buf[i] = og_arena_alloc(ar, plan->buffer)) != NULL;
    if (ok && v->has_attn) {
        const size_t each = plan->attention / 3;
        ok &= (p.q = og_arena_alloc(ar, each)) && (p.k = og_arena_alloc(ar, each)) &&
              (p.val = og_arena_alloc(ar, each));
    }
    if (!ok)
        return og_fail(OG_ERR_INTERNAL, "VAE decode: the work arena is smaller than its plan");
    OG_TRY(og_cuda_upload(ctx, zd, OG_BF16, z, OG_F32, (size_t)(v->latent_c * h * w)));
    int out;
    OG_TRY(forward(&p, zd, h, w, &out));
    OG_TRY(og_cuda_sync(ctx));
    const int64_t f = og_vae_scale_factor(v);
    return og_cuda_download(ctx, rgb, p.buf[out], OG_BF16, (size_t)(v->out_c * f * h * f * w));
}

og_status og_vae_cuda_decode(og_vae_cuda *g, const float *latents, int64_t h, int64_t w,
                             float *rgb)
{
    const og_vae *v = &g->dev;
    og_vae_device_plan plan;
    OG_TRY(og_vae_device_plan_for(v, h, w, &plan));
    const int64_t f = og_vae_scale_factor(v), n = v->latent_c * h * w;
    char what[96];
    snprintf(what, sizeof what, "VAE decode of a %lldx%lld image", (long long)(f * w),
             (long long)(f * h));
    if (plan.buffer / sizeof(og_bf16) > INT_MAX) /* og_cuda_conv2d would refuse it midway */
        return og_fail(OG_ERR_UNSUPPORTED, "%s on the GPU: its largest feature map has %zu "
                       "elements, more than the 2^31 cuDNN's descriptors take", what,
                       plan.buffer / sizeof(og_bf16));
    og_cuda_ctx *ctx = NULL;
    float *z = NULL;
    og_status st = og_cuda_init(og_cuda_ctx_device(g->ctx), &ctx);
    if (st == OG_OK) /* first, so that a decode too large for the GPU touches nothing */
        st = og_cuda_reserve(ctx, plan.work, what);
    if (st == OG_OK && !(z = malloc(sizeof(float) * (size_t)n)))
        st = og_fail(OG_ERR_OOM, "out of memory for the VAE's latents");
    if (st == OG_OK) {
        og_vae_unscale(v, z, latents, n);
        st = decode_in(ctx, v, &plan, z, h, w, rgb);
    }
    if (st == OG_OK) {
        og_log(OG_LOG_DEBUG, "%s on GPU %d: peak %zu MiB", what, og_cuda_ctx_device(ctx),
               og_cuda_peak_bytes(ctx) >> 20);
        og_vae_postprocess(rgb, v->out_c * f * h * f * w);
    }
    og_cuda_free(ctx);
    free(z);
    return st;
}
