/* Wan2.1 VAE decoder: loading from a diffusers vae/ folder, the memory plan, and the decode one
 * latent frame at a time. Inside a chunk activations are frame-major [t, C, h, w], so every
 * per-frame step (norm, attention, resample, 1x1 conv) works on a contiguous [C, h, w] frame and
 * a causal convolution runs frame after frame, pushing each input frame into its cache.
 * Keys are the checkpoint's: decoder.up_blocks.0.upsamplers.0.time_conv, ... */
#include "vae/autoencoder_kl_wan.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "io/diffusers.h"
#include "io/weights.h"
#include "vae/autoencoder_kl_internal.h"

#define WAN_MAX_BLOCKS 8
#define WAN_MAX_RES 8
#define WAN_MAX_Z 256
#define WAN_CACHE_T 2         /* frames a causal convolution keeps (kernel 3 in time) */
#define WAN_NORM_EPS 1e-12f   /* F.normalize's clamp on the norm */

typedef struct {
    const void *w; /* [cout, cin, kt, k, k] (kt = 1 for 2-D ones), stored dtype */
    og_dtype wt;
    const float *b;
    int64_t cin, cout;
    int kt, k;
    float *cache; /* kt == 3: [cin, 2, h, w], set up per decode */
} wan_conv;

typedef struct {
    int64_t cin, cout;
    const float *gamma1, *gamma2;
    wan_conv conv1, conv2;
    wan_conv shortcut; /* 1x1x1, only when cin != cout (w == NULL otherwise) */
} wan_resnet;

typedef enum { WAN_UP_NONE = 0, WAN_UP_2D, WAN_UP_3D } wan_up_mode;

typedef struct {
    int n_res;
    wan_resnet res[WAN_MAX_RES];
    wan_up_mode mode;
    wan_conv time_conv; /* upsample3d: [2c, c, 3, 1, 1] */
    wan_conv up_conv;   /* [c / 2, c, 3, 3] after the nearest 2x upsample */
} wan_up_block;

struct og_wan_vae {
    og_weights *w;
    int n_blocks;
    int64_t z_dim, out_c, top; /* top: the mid block's channels */
    float mean[WAN_MAX_Z], inv_std[WAN_MAX_Z];
    wan_conv post_quant, conv_in, conv_out;
    wan_resnet mid[2];
    const float *attn_gamma;
    wan_conv qkv, proj; /* 1x1 2-D convs, used as linears [3c, c] and [c, c] */
    wan_up_block up[WAN_MAX_BLOCKS];
    const float *gamma_out;
    og_arena arena;
};

/* ---- loading ------------------------------------------------------------------------------ */

/* Wan2.1's latents_mean / latents_std, the defaults of AutoencoderKLWan and of
 * AutoencoderKLQwenImage (the same values) for z_dim 16. */
static const double default_mean[16] = {-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653,
                                        -0.1517, 1.5508,  0.4134,  -0.0715, 0.5517,  -0.3632,
                                        -0.1922, -0.9497, 0.2503,  -0.2921};
static const double default_std[16] = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708,
                                       2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579,
                                       1.6382, 1.1253, 2.8251, 1.9160};

static og_status load_gamma(og_wan_vae *v, const char *prefix, int64_t c, const float **out)
{
    char name[320];
    snprintf(name, sizeof name, "%s.gamma", prefix);
    float *p;
    OG_TRY(og_weights_vector_f32(v->w, name, c, &p));
    *out = p;
    return OG_OK;
}

/* A conv with weight [cout, cin, kt, k, k] (ndim 5) or [cout, cin, k, k] (ndim 4) and a bias. */
static og_status load_conv(og_wan_vae *v, wan_conv *c, const char *prefix, int ndim, int64_t cin,
                           int64_t cout, int kt, int k)
{
    char name[320];
    snprintf(name, sizeof name, "%s.weight", prefix);
    og_tensor t;
    const int64_t s5[5] = {cout, cin, kt, k, k}, s4[4] = {cout, cin, k, k};
    OG_TRY(og_weights_expect(v->w, name, ndim, ndim == 5 ? s5 : s4, &t));
    *c = (wan_conv){.w = t.data, .wt = t.dtype, .cin = cin, .cout = cout, .kt = kt, .k = k};
    snprintf(name, sizeof name, "%s.bias", prefix);
    float *b;
    OG_TRY(og_weights_vector_f32(v->w, name, cout, &b));
    c->b = b;
    return OG_OK;
}

static og_status load_resnet(og_wan_vae *v, wan_resnet *r, const char *prefix, int64_t cin,
                             int64_t cout)
{
    char p[300];
    r->cin = cin;
    r->cout = cout;
    snprintf(p, sizeof p, "%s.norm1", prefix);
    OG_TRY(load_gamma(v, p, cin, &r->gamma1));
    snprintf(p, sizeof p, "%s.conv1", prefix);
    OG_TRY(load_conv(v, &r->conv1, p, 5, cin, cout, 3, 3));
    snprintf(p, sizeof p, "%s.norm2", prefix);
    OG_TRY(load_gamma(v, p, cout, &r->gamma2));
    snprintf(p, sizeof p, "%s.conv2", prefix);
    OG_TRY(load_conv(v, &r->conv2, p, 5, cout, cout, 3, 3));
    r->shortcut = (wan_conv){0};
    if (cin != cout) {
        snprintf(p, sizeof p, "%s.conv_shortcut", prefix);
        OG_TRY(load_conv(v, &r->shortcut, p, 5, cin, cout, 1, 1));
    }
    return OG_OK;
}

typedef struct {
    int64_t base, z, mult[WAN_MAX_BLOCKS], res_blocks;
    int n_mult;
    bool time_down[WAN_MAX_BLOCKS];
} wan_config;

static og_status wan_read_config(og_wan_vae *v, const char *vae_dir, wan_config *c)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", vae_dir) >= sizeof path)
        return og_fail(OG_ERR_INVALID_ARG, "VAE folder path is too long: %s", vae_dir);
    og_config *cfg;
    OG_TRY(og_config_load(&cfg, path));
    const char *cls = NULL;
    og_status s = og_config_string(cfg, "_class_name", &cls);
    if (s != OG_OK)
        s = og_fail_context(s, "expected class AutoencoderKLWan or AutoencoderKLQwenImage");
    else if (strcmp(cls, "AutoencoderKLWan") != 0 && strcmp(cls, "AutoencoderKLQwenImage") != 0)
        s = og_fail(OG_ERR_FORMAT,
                    "%s has _class_name %s, expected AutoencoderKLWan or AutoencoderKLQwenImage",
                    path, cls);
    /* AutoencoderKLQwenImage is AutoencoderKLWan's 2.1 decoder under other config keys: the
     * output channels are `input_channels`, and it has none of decoder_base_dim, is_residual,
     * patch_size or out_channels (its constructor ignores them, and so does this loader). */
    const bool qwen = s == OG_OK && strcmp(cls, "AutoencoderKLQwenImage") == 0;
    double mean[WAN_MAX_Z], std[WAN_MAX_Z];
    int n_td = 0, n_mean = 0, n_std = 0;
    bool residual = false;
    if (s == OG_OK)
        s = og_config_int_or(cfg, "base_dim", 96, &c->base);
    if (s == OG_OK && !qwen && og_config_has(cfg, "decoder_base_dim"))
        s = og_config_int(cfg, "decoder_base_dim", &c->base);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "z_dim", 16, &c->z);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "num_res_blocks", 2, &c->res_blocks);
    if (s == OG_OK)
        s = og_config_int_or(cfg, qwen ? "input_channels" : "out_channels", 3, &v->out_c);
    if (s == OG_OK && !qwen)
        s = og_config_bool_or(cfg, "is_residual", false, &residual);
    if (s == OG_OK && og_config_has(cfg, "dim_mult")) {
        s = og_config_int_array(cfg, "dim_mult", c->mult, WAN_MAX_BLOCKS, &c->n_mult);
    } else if (s == OG_OK) {
        const int64_t m[4] = {1, 2, 4, 4};
        memcpy(c->mult, m, sizeof m);
        c->n_mult = 4;
    }
    if (s == OG_OK && og_config_has(cfg, "temperal_downsample")) {
        s = og_config_bool_array(cfg, "temperal_downsample", c->time_down, WAN_MAX_BLOCKS, &n_td);
    } else if (s == OG_OK) {
        c->time_down[0] = false;
        c->time_down[1] = c->time_down[2] = true;
        n_td = 3;
    }
    if (s == OG_OK && og_config_has(cfg, "latents_mean"))
        s = og_config_float_array(cfg, "latents_mean", mean, WAN_MAX_Z, &n_mean);
    if (s == OG_OK && og_config_has(cfg, "latents_std"))
        s = og_config_float_array(cfg, "latents_std", std, WAN_MAX_Z, &n_std);
    if (s == OG_OK && residual)
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: is_residual (the Wan2.2 VAE) is not supported", path);
    if (s == OG_OK && !qwen && og_config_has(cfg, "patch_size"))
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: patch_size (the Wan2.2 VAE) is not supported", path);
    if (s == OG_OK && v->out_c != 3)
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: %s %lld (only RGB, 3, is supported)", path,
                    qwen ? "input_channels" : "out_channels", (long long)v->out_c);
    if (s == OG_OK && (c->base < 1 || c->z < 1 || c->z > WAN_MAX_Z || c->res_blocks < 0 ||
                       c->res_blocks + 1 > WAN_MAX_RES || c->n_mult < 1))
        s = og_fail(OG_ERR_FORMAT, "%s: invalid decoder configuration", path);
    for (int i = 0; s == OG_OK && i < c->n_mult; i++)
        if (c->mult[i] < 1 || c->base * c->mult[i] < 2)
            s = og_fail(OG_ERR_FORMAT, "%s: dim_mult[%d] = %lld gives too few channels", path, i,
                        (long long)c->mult[i]);
    if (s == OG_OK && n_td != c->n_mult - 1)
        s = og_fail(OG_ERR_FORMAT,
                    "%s: temperal_downsample has %d entries, expected %d (len(dim_mult) - 1)",
                    path, n_td, c->n_mult - 1);
    if (s == OG_OK && n_mean == 0 && n_std == 0 && c->z == 16) {
        memcpy(mean, default_mean, sizeof default_mean);
        memcpy(std, default_std, sizeof default_std);
        n_mean = n_std = 16;
    }
    if (s == OG_OK && (n_mean != c->z || n_std != c->z))
        s = og_fail(OG_ERR_FORMAT, "%s: latents_mean / latents_std need z_dim = %lld values",
                    path, (long long)c->z);
    for (int i = 0; s == OG_OK && i < n_std; i++)
        if (!(std[i] > 0.0))
            s = og_fail(OG_ERR_FORMAT, "%s: latents_std[%d] = %g is not positive", path, i, std[i]);
    og_config_free(cfg);
    OG_TRY(s);
    v->z_dim = c->z;
    for (int i = 0; i < n_mean; i++) {
        v->mean[i] = (float)mean[i];
        v->inv_std[i] = 1.0f / (float)std[i]; /* the pipeline's 1.0 / tensor(std), in f32 */
    }
    return OG_OK;
}

/* WanDecoder3d's layout: dims = base * [mult[-1]] + reversed(mult); up block i goes dims[i] ->
 * dims[i + 1] (entered with dims[i] / 2 for i > 0: the resample before it halves), and
 * upsamples (with time when temperal_downsample reversed says so) unless it is the last. */
static og_status wan_load_weights(og_wan_vae *v, const wan_config *c)
{
    const int nb = c->n_mult;
    int64_t dims[WAN_MAX_BLOCKS + 1];
    dims[0] = c->base * c->mult[nb - 1];
    for (int i = 0; i < nb; i++)
        dims[i + 1] = c->base * c->mult[nb - 1 - i];
    v->n_blocks = nb;
    v->top = dims[0];
    OG_TRY(load_conv(v, &v->post_quant, "post_quant_conv", 5, v->z_dim, v->z_dim, 1, 1));
    OG_TRY(load_conv(v, &v->conv_in, "decoder.conv_in", 5, v->z_dim, v->top, 3, 3));
    OG_TRY(load_resnet(v, &v->mid[0], "decoder.mid_block.resnets.0", v->top, v->top));
    OG_TRY(load_resnet(v, &v->mid[1], "decoder.mid_block.resnets.1", v->top, v->top));
    OG_TRY(load_gamma(v, "decoder.mid_block.attentions.0.norm", v->top, &v->attn_gamma));
    OG_TRY(load_conv(v, &v->qkv, "decoder.mid_block.attentions.0.to_qkv", 4, v->top,
                     3 * v->top, 1, 1));
    OG_TRY(load_conv(v, &v->proj, "decoder.mid_block.attentions.0.proj", 4, v->top, v->top, 1,
                     1));
    for (int i = 0; i < nb; i++) {
        wan_up_block *ub = &v->up[i];
        const int64_t out = dims[i + 1];
        int64_t in = i > 0 ? dims[i] / 2 : dims[i];
        ub->n_res = (int)c->res_blocks + 1;
        for (int j = 0; j < ub->n_res; j++) {
            char p[256];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            OG_TRY(load_resnet(v, &ub->res[j], p, in, out));
            in = out;
        }
        ub->mode = i == nb - 1 ? WAN_UP_NONE
                   : c->time_down[nb - 2 - i] ? WAN_UP_3D
                                               : WAN_UP_2D;
        if (ub->mode != WAN_UP_NONE) {
            char p[256];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.resample.1", i);
            OG_TRY(load_conv(v, &ub->up_conv, p, 4, out, out / 2, 1, 3));
        }
        if (ub->mode == WAN_UP_3D) {
            char p[256];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.time_conv", i);
            OG_TRY(load_conv(v, &ub->time_conv, p, 5, out, 2 * out, 3, 1));
        }
    }
    OG_TRY(load_gamma(v, "decoder.norm_out", dims[nb], &v->gamma_out));
    return load_conv(v, &v->conv_out, "decoder.conv_out", 5, dims[nb], v->out_c, 3, 3);
}

og_status og_wan_vae_load(og_wan_vae **out, const char *vae_dir)
{
    *out = NULL;
    og_wan_vae *v = calloc(1, sizeof *v);
    if (!v)
        return og_fail(OG_ERR_OOM, "loading the Wan VAE: out of memory");
    wan_config c;
    og_status s = wan_read_config(v, vae_dir, &c);
    if (s == OG_OK)
        s = og_weights_open_dir(&v->w, vae_dir);
    if (s == OG_OK)
        s = wan_load_weights(v, &c);
    if (s != OG_OK) {
        og_wan_vae_free(v);
        return og_fail_context(s, "loading the Wan VAE from %s", vae_dir);
    }
    *out = v;
    return OG_OK;
}

void og_wan_vae_free(og_wan_vae *v)
{
    if (!v)
        return;
    og_weights_free(v->w);
    og_arena_free(&v->arena);
    free(v);
}

int64_t og_wan_vae_z_dim(const og_wan_vae *v)
{
    return v->z_dim;
}

int64_t og_wan_vae_scale_factor(const og_wan_vae *v)
{
    return (int64_t)1 << (v->n_blocks - 1);
}

/* Video frames one latent frame after the first becomes: 2 per time upsample. */
static int64_t frames_per_chunk(const og_wan_vae *v)
{
    int64_t t = 1;
    for (int i = 0; i < v->n_blocks; i++)
        t *= v->up[i].mode == WAN_UP_3D ? 2 : 1;
    return t;
}

int64_t og_wan_vae_frames(const og_wan_vae *v, int64_t latent_frames)
{
    return 1 + frames_per_chunk(v) * (latent_frames - 1);
}

/* ---- memory plan -------------------------------------------------------------------------- */

typedef struct {
    int64_t buf;   /* floats of the largest chunk activation */
    int64_t cache; /* floats of all caches */
    size_t ops;    /* bytes of the largest op scratch */
    float *next;   /* where the next cache goes when assigning, NULL when only counting */
} wan_sizes;

static void grow(int64_t *m, int64_t x)
{
    *m = x > *m ? x : *m;
}

static void grow_bytes(size_t *m, size_t x)
{
    *m = x > *m ? x : *m;
}

/* Counts (and with s->next, places) the cache and scratch of one conv at h x w. */
static void size_conv(wan_conv *c, int64_t h, int64_t w, wan_sizes *s)
{
    if (!c->w)
        return;
    if (c->kt == 3) {
        const int64_t n = c->cin * WAN_CACHE_T * h * w;
        grow_bytes(&s->ops, og_conv3d_causal_scratch_bytes(c->cin, h, w, c->cout, 3, c->k, c->k,
                                                           c->k / 2, c->k / 2));
        s->cache += (n + 15) / 16 * 16; /* 64-byte steps */
        if (s->next) {
            c->cache = s->next;
            s->next += (n + 15) / 16 * 16;
        }
    } else {
        grow_bytes(&s->ops, og_conv2d_scratch_bytes(c->cin, h, w, c->cout, c->k, c->k, 1,
                                                    c->k / 2));
    }
}

static void size_resnet(wan_resnet *r, int64_t t, int64_t h, int64_t w, wan_sizes *s)
{
    grow(&s->buf, (r->cin > r->cout ? r->cin : r->cout) * t * h * w);
    size_conv(&r->conv1, h, w, s);
    size_conv(&r->conv2, h, w, s);
    size_conv(&r->shortcut, h, w, s);
}

static og_attn_desc wan_attn_desc(int64_t c, int64_t hw)
{
    return (og_attn_desc){.sq = hw, .skv = hw, .heads = 1, .kv_heads = 1, .head_dim = (int)c,
                          .q_stride = 3 * c, .k_stride = 3 * c, .v_stride = 3 * c,
                          .o_stride = c, .scale = 1.0f / sqrtf((float)c)};
}

/* Walks the decoder as a non-first chunk runs it (the largest: every time upsample doubles t). */
static void wan_walk_sizes(og_wan_vae *v, int64_t h, int64_t w, wan_sizes *s)
{
    const int64_t hw = h * w, c = v->top;
    grow(&s->buf, (v->z_dim > c ? v->z_dim : c) * hw);
    size_conv(&v->post_quant, h, w, s);
    size_conv(&v->conv_in, h, w, s);
    size_resnet(&v->mid[0], 1, h, w, s);
    size_resnet(&v->mid[1], 1, h, w, s);
    const og_attn_desc d = wan_attn_desc(c, hw);
    grow_bytes(&s->ops, og_attention_scratch_bytes(&d));
    grow_bytes(&s->ops, og_linear_scratch_bytes(hw, c, v->qkv.wt, 3 * c));
    grow_bytes(&s->ops, og_linear_scratch_bytes(hw, c, v->proj.wt, c));
    int64_t t = 1;
    for (int i = 0; i < v->n_blocks; i++) {
        wan_up_block *ub = &v->up[i];
        for (int j = 0; j < ub->n_res; j++)
            size_resnet(&ub->res[j], t, h, w, s);
        if (ub->mode == WAN_UP_3D) {
            size_conv(&ub->time_conv, h, w, s);
            t *= 2;
            grow(&s->buf, ub->time_conv.cin * t * h * w);
        }
        if (ub->mode != WAN_UP_NONE) {
            h *= 2;
            w *= 2;
            grow(&s->buf, ub->up_conv.cin * h * w); /* one upsampled frame */
            grow(&s->buf, ub->up_conv.cout * t * h * w);
            size_conv(&ub->up_conv, h, w, s);
        }
    }
    grow(&s->buf, (v->conv_out.cin > v->out_c ? v->conv_out.cin : v->out_c) * t * h * w);
    size_conv(&v->conv_out, h, w, s);
}

static size_t aligned64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

og_status og_wan_vae_plan_for(const og_wan_vae *v, int64_t h, int64_t w, og_wan_vae_plan *out)
{
    if (h < 1 || w < 1 || h > 65536 || w > 65536)
        return og_fail(OG_ERR_INVALID_ARG, "Wan VAE decode: bad latent size %lldx%lld",
                       (long long)h, (long long)w);
    og_wan_vae copy = *v; /* counting leaves the record as it is, but takes it non-const */
    wan_sizes s = {0};
    wan_walk_sizes(&copy, h, w, &s);
    out->buffer = aligned64(sizeof(float) * (size_t)s.buf);
    out->attention = aligned64(sizeof(float) * (size_t)(3 * v->top * h * w));
    out->caches = aligned64(sizeof(float) * (size_t)s.cache);
    out->scratch = s.ops;
    /* + 64 per arena allocation that may need realigning (3 buffers, attention, caches) */
    out->total = 3 * out->buffer + out->attention + out->caches + out->scratch + 5 * 64;
    return OG_OK;
}

/* ---- the pieces of one chunk ---------------------------------------------------------------- */

typedef struct {
    float *buf[3];
    float *qkv; /* [hw, 3c] of one frame */
    og_arena *ops;
} wan_scratch;

static int other(int a, int b)
{
    return 3 - a - b;
}

/* WanRMS_norm over channels: y = x / max(|x|_2, 1e-12) * sqrt(C) * gamma per pixel of every
 * frame of x [t, c, hw], then SiLU when asked. y may be x. */
static void rms_norm(float *y, const float *x, const float *gamma, int64_t t, int64_t c,
                     int64_t hw, bool silu)
{
    enum { PIX = 64 };
    const float scale = (float)sqrt((double)c);
    const int64_t nblk = (hw + PIX - 1) / PIX;
#pragma omp parallel for schedule(static)
    for (int64_t job = 0; job < t * nblk; job++) {
        const int64_t f = job / nblk, p0 = job % nblk * PIX;
        const int64_t np = hw - p0 < PIX ? hw - p0 : PIX;
        const float *xf = x + f * c * hw + p0;
        float *yf = y + f * c * hw + p0;
        double acc[PIX] = {0};
        float norm[PIX];
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t p = 0; p < np; p++)
                acc[p] += (double)xf[ch * hw + p] * xf[ch * hw + p];
        for (int64_t p = 0; p < np; p++) {
            norm[p] = (float)sqrt(acc[p]);
            norm[p] = norm[p] > WAN_NORM_EPS ? norm[p] : WAN_NORM_EPS;
        }
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t p = 0; p < np; p++) {
                float val = xf[ch * hw + p] / norm[p] * scale * gamma[ch];
                yf[ch * hw + p] = silu ? val / (1.0f + expf(-val)) : val;
            }
    }
}

/* A causal conv over the t frames of x [t, cin, h, w] -> y [t, cout, h, w]: each frame sees the
 * two before it (the cache, then earlier frames of x) and then enters the cache. */
static og_status causal_conv(wan_conv *c, float *y, const float *x, int64_t t, int64_t h,
                             int64_t w, og_arena *ops)
{
    const int64_t hw = h * w;
    for (int64_t f = 0; f < t; f++) {
        const float *xf = x + f * c->cin * hw;
        OG_TRY(og_conv3d_causal(y + f * c->cout * hw, xf, c->cache, c->cin, 1, h, w, c->w, c->wt,
                                c->b, c->cout, 3, c->k, c->k, c->k / 2, c->k / 2, ops));
        for (int64_t ch = 0; ch < c->cin; ch++) {
            float *slot = c->cache + ch * WAN_CACHE_T * hw;
            memmove(slot, slot + hw, sizeof(float) * (size_t)hw);
            memcpy(slot + hw, xf + ch * hw, sizeof(float) * (size_t)hw);
        }
    }
    return OG_OK;
}

/* A 2-D conv on each frame of x [t, cin, h, w] (the 1x1x1 ones: post_quant, shortcuts). */
static og_status frame_conv(const wan_conv *c, float *y, const float *x, int64_t t, int64_t h,
                            int64_t w, og_arena *ops)
{
    const int64_t hw = h * w;
    for (int64_t f = 0; f < t; f++)
        OG_TRY(og_conv2d(y + f * c->cout * hw, x + f * c->cin * hw, c->cin, h, w, c->w, c->wt,
                         c->b, c->cout, c->k, c->k, 1, c->k / 2, ops));
    return OG_OK;
}

/* WanResidualBlock: shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x)))))). */
static og_status resnet(wan_resnet *r, wan_scratch *s, int *cur, int64_t t, int64_t h, int64_t w)
{
    const int64_t hw = h * w;
    int a = (*cur + 1) % 3, b = other(*cur, a);
    float *x = s->buf[*cur], *t1 = s->buf[a], *t2 = s->buf[b];
    rms_norm(t1, x, r->gamma1, t, r->cin, hw, true);
    OG_TRY(causal_conv(&r->conv1, t2, t1, t, h, w, s->ops));
    rms_norm(t2, t2, r->gamma2, t, r->cout, hw, true);
    OG_TRY(causal_conv(&r->conv2, t1, t2, t, h, w, s->ops));
    if (r->shortcut.w) {
        OG_TRY(frame_conv(&r->shortcut, t2, x, t, h, w, s->ops));
        x = t2;
        *cur = b;
    }
    const int64_t n = t * r->cout * hw;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        x[i] += t1[i];
    return OG_OK;
}

/* WanAttentionBlock on each frame: one head over the h*w positions, channels as the head dim,
 * RMS norm before the fused q/k/v projection and a residual after the output projection. */
static og_status attention(og_wan_vae *v, wan_scratch *s, int cur, int64_t t, int64_t h,
                           int64_t w)
{
    const int64_t c = v->top, hw = h * w;
    int a = (cur + 1) % 3, b = other(cur, a);
    float *tok = s->buf[a], *o = s->buf[b];
    const og_attn_desc d = wan_attn_desc(c, hw);
    for (int64_t f = 0; f < t; f++) {
        float *x = s->buf[cur] + f * c * hw;
        rms_norm(o, x, v->attn_gamma, 1, c, hw, false);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < hw; i++) /* [c, hw] -> tokens [hw, c] */
            for (int64_t ch = 0; ch < c; ch++)
                tok[i * c + ch] = o[ch * hw + i];
        OG_TRY(og_linear(s->qkv, tok, hw, c, v->qkv.w, v->qkv.wt, 3 * c, v->qkv.b, s->ops));
        OG_TRY(og_attention(&d, s->qkv, s->qkv + c, s->qkv + 2 * c, tok, NULL, s->ops));
        OG_TRY(og_linear(o, tok, hw, c, v->proj.w, v->proj.wt, c, v->proj.b, s->ops));
#pragma omp parallel for schedule(static)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++)
                x[ch * hw + i] += o[i * c + ch];
    }
    return OG_OK;
}

/* WanResample upsample2d/3d: on a chunk after the first, upsample3d's time_conv turns each frame
 * into two (channels [0, c) then [c, 2c) of its output, which frame-major is already two
 * frames); on the first chunk it is skipped and its cache stays zero, as diffusers' "Rep" marker
 * does. Then each frame goes through nearest 2x and the 3x3 conv to c / 2 channels. */
static og_status upsample(wan_up_block *ub, wan_scratch *s, int *cur, bool first, int64_t *t,
                          int64_t *h, int64_t *w)
{
    const int64_t c = ub->up_conv.cin, co = ub->up_conv.cout;
    int src = *cur, tmp = (*cur + 1) % 3, dst = other(*cur, tmp);
    if (ub->mode == WAN_UP_3D && !first) {
        OG_TRY(causal_conv(&ub->time_conv, s->buf[tmp], s->buf[src], *t, *h, *w, s->ops));
        *t *= 2;
        int t2 = src;
        src = tmp;
        tmp = t2;
    }
    const int64_t hw = *h * *w, H = 2 * *h, W = 2 * *w;
    for (int64_t f = 0; f < *t; f++) {
        og_upsample_nearest2x(s->buf[tmp], s->buf[src] + f * c * hw, c, *h, *w);
        OG_TRY(og_conv2d(s->buf[dst] + f * co * H * W, s->buf[tmp], c, H, W, ub->up_conv.w,
                         ub->up_conv.wt, ub->up_conv.b, co, 3, 3, 1, 1, s->ops));
    }
    *h = H;
    *w = W;
    *cur = dst;
    return OG_OK;
}

/* One latent frame zf [z_dim, h, w] through post_quant_conv and the decoder: out receives the
 * chunk's frames [t, out_c, H, W] (unclamped) and *t their count. */
static og_status decode_chunk(og_wan_vae *v, wan_scratch *s, const float *zf, bool first,
                              int64_t h, int64_t w, float **out, int64_t *t_out)
{
    int cur = 0;
    int64_t t = 1;
    OG_TRY(frame_conv(&v->post_quant, s->buf[1], zf, 1, h, w, s->ops));
    OG_TRY(causal_conv(&v->conv_in, s->buf[0], s->buf[1], 1, h, w, s->ops));
    OG_TRY(resnet(&v->mid[0], s, &cur, 1, h, w));
    OG_TRY(attention(v, s, cur, 1, h, w));
    OG_TRY(resnet(&v->mid[1], s, &cur, 1, h, w));
    for (int i = 0; i < v->n_blocks; i++) {
        wan_up_block *ub = &v->up[i];
        for (int j = 0; j < ub->n_res; j++)
            OG_TRY(resnet(&ub->res[j], s, &cur, t, h, w));
        if (ub->mode != WAN_UP_NONE)
            OG_TRY(upsample(ub, s, &cur, first, &t, &h, &w));
    }
    int a = (cur + 1) % 3, b = other(cur, a);
    rms_norm(s->buf[a], s->buf[cur], v->gamma_out, t, v->conv_out.cin, h * w, true);
    OG_TRY(causal_conv(&v->conv_out, s->buf[b], s->buf[a], t, h, w, s->ops));
    *out = s->buf[b];
    *t_out = t;
    return OG_OK;
}

/* ---- decode --------------------------------------------------------------------------------- */

void og_wan_vae_unscale(const og_wan_vae *v, float *z, const float *lat, int64_t t, int64_t h,
                        int64_t w)
{
    const int64_t n = t * h * w;
    for (int64_t c = 0; c < v->z_dim; c++)
        for (int64_t i = 0; i < n; i++)
            z[c * n + i] = lat[c * n + i] / v->inv_std[c] + v->mean[c];
}

og_status og_wan_vae_decode(og_wan_vae *v, const float *z, int64_t c, int64_t t, int64_t h,
                            int64_t w, float *video)
{
    if (c != v->z_dim)
        return og_fail(OG_ERR_INVALID_ARG,
                       "Wan VAE decode: the latents have %lld channels, the VAE takes %lld "
                       "(z_dim)",
                       (long long)c, (long long)v->z_dim);
    if (t < 1 || t > 65536)
        return og_fail(OG_ERR_INVALID_ARG, "Wan VAE decode: bad latent frame count %lld",
                       (long long)t);
    og_wan_vae_plan plan;
    OG_TRY(og_wan_vae_plan_for(v, h, w, &plan));
    if (v->arena.cap < plan.total) {
        og_arena_free(&v->arena);
        OG_TRY(og_arena_init(&v->arena, plan.total));
    }
    og_arena_reset(&v->arena);
    wan_scratch s;
    for (int i = 0; i < 3; i++)
        s.buf[i] = og_arena_alloc(&v->arena, plan.buffer);
    s.qkv = og_arena_alloc(&v->arena, plan.attention);
    float *caches = og_arena_calloc(&v->arena, plan.caches); /* diffusers' clear_cache */
    s.ops = &v->arena;
    wan_sizes sz = {.next = caches};
    wan_walk_sizes(v, h, w, &sz);

    const int64_t f = og_wan_vae_scale_factor(v), H = f * h, W = f * w, HW = H * W;
    const int64_t F = og_wan_vae_frames(v, t), hw = h * w;
    int64_t frame0 = 0;
    for (int64_t k = 0; k < t; k++) {
        /* latent frame k, [c, h, w], into the third buffer (post_quant reads it into buf[1]) */
        float *zf = s.buf[2];
        for (int64_t ch = 0; ch < c; ch++)
            memcpy(zf + ch * hw, z + (ch * t + k) * hw, sizeof(float) * (size_t)hw);
        float *out;
        int64_t n;
        OG_TRY(decode_chunk(v, &s, zf, k == 0, h, w, &out, &n));
        for (int64_t i = 0; i < n; i++)
            for (int64_t ch = 0; ch < v->out_c; ch++) {
                const float *src = out + (i * v->out_c + ch) * HW;
                float *dst = video + (ch * F + frame0 + i) * HW;
                for (int64_t p = 0; p < HW; p++)
                    dst[p] = src[p] < -1.0f ? -1.0f : (src[p] > 1.0f ? 1.0f : src[p]);
            }
        frame0 += n;
    }
    return OG_OK;
}

void og_wan_vae_to_frames(float *frames, const float *video, int64_t n_frames, int64_t H,
                          int64_t W)
{
    const int64_t HW = H * W;
    for (int64_t f = 0; f < n_frames; f++)
        for (int64_t ch = 0; ch < 3; ch++)
            memcpy(frames + (f * 3 + ch) * HW, video + (ch * n_frames + f) * HW,
                   sizeof(float) * (size_t)HW);
    og_vae_postprocess(frames, 3 * n_frames * HW);
}
