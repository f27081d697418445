/* AutoencoderKL decoder: loading from a diffusers vae/ folder, the forward pass over one latent
 * region (three ping-pong activation buffers from the arena), and tiled decoding with linear
 * blending of the overlaps. Keys are the checkpoint's: decoder.mid_block.resnets.0.conv1, ... */
#include "vae/autoencoder_kl.h"

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

/* ---- loading ------------------------------------------------------------------------------ */

static og_status load_vec(og_vae *v, const char *prefix, const char *suffix, int64_t n,
                          const float **out)
{
    char name[320];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    float *p;
    OG_TRY(og_weights_vector_f32(v->w, name, n, &p));
    *out = p;
    return OG_OK;
}

static og_status load_conv(og_vae *v, vae_conv *c, const char *prefix, int64_t cin, int64_t cout,
                           int k)
{
    char name[320];
    snprintf(name, sizeof name, "%s.weight", prefix);
    og_tensor t;
    OG_TRY(og_weights_expect(v->w, name, 4, (int64_t[]){cout, cin, k, k}, &t));
    *c = (vae_conv){.w = t.data, .wt = t.dtype, .cin = cin, .cout = cout, .k = k};
    return load_vec(v, prefix, "bias", cout, &c->b);
}

static og_status load_norm(og_vae *v, vae_norm *n, const char *prefix, int64_t c)
{
    OG_TRY(load_vec(v, prefix, "weight", c, &n->w));
    return load_vec(v, prefix, "bias", c, &n->b);
}

static og_status load_linear(og_vae *v, vae_linear *l, const char *prefix, int64_t c)
{
    char name[320];
    snprintf(name, sizeof name, "%s.weight", prefix);
    og_tensor t;
    OG_TRY(og_weights_expect(v->w, name, 2, (int64_t[]){c, c}, &t));
    l->w = t.data;
    l->wt = t.dtype;
    return load_vec(v, prefix, "bias", c, &l->b);
}

static og_status load_resnet(og_vae *v, vae_resnet *r, const char *prefix, int64_t cin,
                             int64_t cout)
{
    char p[300];
    r->cin = cin;
    r->cout = cout;
    snprintf(p, sizeof p, "%s.norm1", prefix);
    OG_TRY(load_norm(v, &r->norm1, p, cin));
    snprintf(p, sizeof p, "%s.conv1", prefix);
    OG_TRY(load_conv(v, &r->conv1, p, cin, cout, 3));
    snprintf(p, sizeof p, "%s.norm2", prefix);
    OG_TRY(load_norm(v, &r->norm2, p, cout));
    snprintf(p, sizeof p, "%s.conv2", prefix);
    OG_TRY(load_conv(v, &r->conv2, p, cout, cout, 3));
    r->shortcut = (vae_conv){0};
    if (cin != cout) {
        snprintf(p, sizeof p, "%s.conv_shortcut", prefix);
        OG_TRY(load_conv(v, &r->shortcut, p, cin, cout, 1));
    }
    return OG_OK;
}

static og_status vae_read_config(og_vae *v, const char *vae_dir)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", vae_dir) >= sizeof path)
        return og_fail(OG_ERR_INVALID_ARG, "VAE folder path is too long: %s", vae_dir);
    og_config *cfg;
    OG_TRY(og_config_load(&cfg, path));
    og_status s = og_config_expect_class(cfg, "AutoencoderKL");
    int64_t blocks[VAE_MAX_BLOCKS], layers = 1, latent = 4, groups = 32, out_c = 3;
    int nb = 0;
    double scaling = 0.18215, shift = 0.0;
    bool post_quant = true, attn = true;
    const char *act = "silu";
    if (s == OG_OK)
        s = og_config_int_array(cfg, "block_out_channels", blocks, VAE_MAX_BLOCKS, &nb);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "layers_per_block", 1, &layers);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "latent_channels", 4, &latent);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "norm_num_groups", 32, &groups);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "out_channels", 3, &out_c);
    if (s == OG_OK)
        s = og_config_float_or(cfg, "scaling_factor", 0.18215, &scaling);
    if (s == OG_OK)
        s = og_config_float_or(cfg, "shift_factor", 0.0, &shift);
    if (s == OG_OK)
        s = og_config_bool_or(cfg, "use_post_quant_conv", true, &post_quant);
    if (s == OG_OK)
        s = og_config_bool_or(cfg, "mid_block_add_attention", true, &attn);
    if (s == OG_OK)
        s = og_config_string_or(cfg, "act_fn", "silu", &act);
    if (s == OG_OK && strcmp(act, "silu") != 0)
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: act_fn \"%s\" is not supported (only silu)", path,
                    act);
    if (s == OG_OK && (nb < 1 || layers < 1 || layers + 1 > VAE_MAX_RESNETS || latent < 1 ||
                       groups < 1 || scaling == 0.0))
        s = og_fail(OG_ERR_FORMAT, "%s: invalid decoder configuration", path);
    if (s == OG_OK && out_c != 3)
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: out_channels %lld (only RGB, 3, is supported)", path,
                    (long long)out_c);
    for (int i = 0; s == OG_OK && i < nb; i++)
        if (blocks[i] < 1 || blocks[i] % groups != 0)
            s = og_fail(OG_ERR_FORMAT,
                        "%s: block_out_channels[%d] = %lld is not a multiple of "
                        "norm_num_groups %lld",
                        path, i, (long long)blocks[i], (long long)groups);
    og_config_free(cfg);
    OG_TRY(s);
    v->n_blocks = nb;
    memcpy(v->block_out, blocks, sizeof(int64_t) * (size_t)nb);
    v->latent_c = latent;
    v->out_c = out_c;
    v->groups = (int)groups;
    v->scaling = (float)scaling;
    v->shift = (float)shift;
    v->has_post_quant = post_quant;
    v->has_attn = attn;
    for (int i = 0; i < nb; i++)
        v->up[i].n_res = (int)layers + 1;
    return OG_OK;
}

static og_status vae_load_weights(og_vae *v)
{
    const int nb = v->n_blocks;
    const int64_t top = v->block_out[nb - 1];
    if (v->has_post_quant)
        OG_TRY(load_conv(v, &v->post_quant, "post_quant_conv", v->latent_c, v->latent_c, 1));
    OG_TRY(load_conv(v, &v->conv_in, "decoder.conv_in", v->latent_c, top, 3));
    OG_TRY(load_resnet(v, &v->mid_res[0], "decoder.mid_block.resnets.0", top, top));
    OG_TRY(load_resnet(v, &v->mid_res[1], "decoder.mid_block.resnets.1", top, top));
    if (v->has_attn) {
        const char *a = "decoder.mid_block.attentions.0";
        char p[256];
        snprintf(p, sizeof p, "%s.group_norm", a);
        OG_TRY(load_norm(v, &v->attn.norm, p, top));
        snprintf(p, sizeof p, "%s.to_q", a);
        OG_TRY(load_linear(v, &v->attn.q, p, top));
        snprintf(p, sizeof p, "%s.to_k", a);
        OG_TRY(load_linear(v, &v->attn.k, p, top));
        snprintf(p, sizeof p, "%s.to_v", a);
        OG_TRY(load_linear(v, &v->attn.v, p, top));
        snprintf(p, sizeof p, "%s.to_out.0", a);
        OG_TRY(load_linear(v, &v->attn.o, p, top));
    }
    int64_t cin = top;
    for (int i = 0; i < nb; i++) {
        vae_up_block *ub = &v->up[i];
        const int64_t cout = v->block_out[nb - 1 - i];
        for (int j = 0; j < ub->n_res; j++) {
            char p[256];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            OG_TRY(load_resnet(v, &ub->res[j], p, j == 0 ? cin : cout, cout));
        }
        ub->upsample = i < nb - 1;
        if (ub->upsample) {
            char p[256];
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            OG_TRY(load_conv(v, &ub->up_conv, p, cout, cout, 3));
        }
        cin = cout;
    }
    OG_TRY(load_norm(v, &v->norm_out, "decoder.conv_norm_out", v->block_out[0]));
    return load_conv(v, &v->conv_out, "decoder.conv_out", v->block_out[0], v->out_c, 3);
}

og_status og_vae_load(og_vae **out, const char *vae_dir)
{
    *out = NULL;
    og_vae *v = calloc(1, sizeof *v);
    if (!v)
        return og_fail(OG_ERR_OOM, "loading VAE: out of memory");
    og_status s = vae_read_config(v, vae_dir);
    if (s == OG_OK)
        s = og_weights_open_dir(&v->w, vae_dir);
    if (s == OG_OK)
        s = vae_load_weights(v);
    if (s != OG_OK) {
        og_vae_free(v);
        return og_fail_context(s, "loading VAE from %s", vae_dir);
    }
    *out = v;
    return OG_OK;
}

void og_vae_free(og_vae *v)
{
    if (!v)
        return;
    og_weights_free(v->w);
    og_arena_free(&v->arena);
    free(v);
}

int64_t og_vae_scale_factor(const og_vae *v)
{
    return (int64_t)1 << (v->n_blocks - 1);
}

int64_t og_vae_latent_channels(const og_vae *v)
{
    return v->latent_c;
}

/* ---- forward over one region ---------------------------------------------------------------- */

/* Three activation buffers, each as large as the biggest feature map of the pass: a layer reads
 * the current one and writes into the other two, so nothing is allocated inside the pass; the
 * ops take their scratch from the same arena, above the buffers. */
typedef struct {
    float *buf[3];
    float *attn; /* 3 * top * h * w floats for q, k, v */
    og_arena *ops;
} vae_scratch;

static int other(int a, int b)
{
    return 3 - a - b;
}

static og_status conv(const vae_conv *c, float *y, const float *x, int64_t h, int64_t w,
                      og_arena *scratch)
{
    return og_conv2d(y, x, c->cin, h, w, c->w, c->wt, c->b, c->cout, c->k, c->k, 1, c->k / 2,
                     scratch);
}

/* Scratch of conv() at h x w (none for an absent shortcut). */
static size_t conv_scratch_bytes(const vae_conv *c, int64_t h, int64_t w)
{
    return c->w ? og_conv2d_scratch_bytes(c->cin, h, w, c->cout, c->k, c->k, 1, c->k / 2) : 0;
}

static void norm_silu(const og_vae *v, const vae_norm *n, float *y, const float *x, int64_t c,
                      int64_t hw)
{
    og_groupnorm(y, x, n->w, n->b, c, hw, v->groups, VAE_EPS);
    og_silu(y, c * hw);
}

/* ResnetBlock2D: x + conv2(silu(norm2(conv1(silu(norm1(x)))))), x through conv_shortcut when
 * the channel count changes. */
static og_status resnet(const og_vae *v, const vae_resnet *r, vae_scratch *s, int *cur,
                        int64_t h, int64_t w)
{
    const int64_t hw = h * w;
    int a = (*cur + 1) % 3, b = other(*cur, a);
    float *x = s->buf[*cur], *t1 = s->buf[a], *t2 = s->buf[b];
    norm_silu(v, &r->norm1, t1, x, r->cin, hw);
    OG_TRY(conv(&r->conv1, t2, t1, h, w, s->ops));
    norm_silu(v, &r->norm2, t2, t2, r->cout, hw);
    OG_TRY(conv(&r->conv2, t1, t2, h, w, s->ops));
    if (r->shortcut.w) {
        OG_TRY(conv(&r->shortcut, t2, x, h, w, s->ops));
        x = t2;
        *cur = b;
    }
    const int64_t n = r->cout * hw;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        x[i] += t1[i];
    return OG_OK;
}

static void transpose(float *y, const float *x, int64_t rows, int64_t cols)
{
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < cols; j++)
        for (int64_t i = 0; i < rows; i++)
            y[j * rows + i] = x[i * cols + j];
}

/* The mid-block attention's one head over hw positions of c channels. */
static og_attn_desc vae_attn_desc(int64_t c, int64_t hw)
{
    return (og_attn_desc){.sq = hw, .skv = hw, .heads = 1, .kv_heads = 1, .head_dim = (int)c,
                          .q_stride = c, .k_stride = c, .v_stride = c, .o_stride = c,
                          .scale = 1.0f / sqrtf((float)c)};
}

/* The mid-block attention: one head over all h*w positions, channels as the head dim,
 * GroupNorm before the projections and a residual after. */
static og_status attention(const og_vae *v, vae_scratch *s, int cur, int64_t h, int64_t w)
{
    const int64_t c = v->block_out[v->n_blocks - 1], hw = h * w;
    const vae_attn *at = &v->attn;
    int a = (cur + 1) % 3, b = other(cur, a);
    float *x = s->buf[cur], *t1 = s->buf[a], *t2 = s->buf[b];
    float *q = s->attn, *k = q + c * hw, *val = k + c * hw;
    og_groupnorm(t1, x, at->norm.w, at->norm.b, c, hw, v->groups, VAE_EPS);
    transpose(t2, t1, c, hw); /* [c, hw] -> tokens [hw, c] */
    OG_TRY(og_linear(q, t2, hw, c, at->q.w, at->q.wt, c, at->q.b, s->ops));
    OG_TRY(og_linear(k, t2, hw, c, at->k.w, at->k.wt, c, at->k.b, s->ops));
    OG_TRY(og_linear(val, t2, hw, c, at->v.w, at->v.wt, c, at->v.b, s->ops));
    const og_attn_desc d = vae_attn_desc(c, hw);
    OG_TRY(og_attention(&d, q, k, val, t1, NULL, s->ops));
    OG_TRY(og_linear(t2, t1, hw, c, at->o.w, at->o.wt, c, at->o.b, s->ops));
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < hw; i++)
            x[ch * hw + i] += t2[i * c + ch];
    return OG_OK;
}

/* Channels entering up block i. */
static int64_t block_in_channels(const og_vae *v, int i)
{
    return v->block_out[v->n_blocks - (i == 0 ? 1 : i)];
}

/* The largest activation, in floats, of up blocks [b0, b1) entered at h x w; b0 = 0 includes
 * conv_in and the mid block, b1 = n_blocks the output head. */
static int64_t vae_buffer_floats(const og_vae *v, int b0, int b1, int64_t h, int64_t w)
{
    int64_t hw = h * w, m = 0;
    if (b0 == 0)
        m = (v->latent_c > block_in_channels(v, 0) ? v->latent_c : block_in_channels(v, 0)) * hw;
    for (int i = b0; i < b1; i++) {
        const int64_t cin = block_in_channels(v, i), cout = v->block_out[v->n_blocks - 1 - i];
        if ((cin > cout ? cin : cout) * hw > m)
            m = (cin > cout ? cin : cout) * hw;
        if (v->up[i].upsample) {
            hw *= 4;
            if (cout * hw > m)
                m = cout * hw;
        }
    }
    if (b1 == v->n_blocks && v->out_c * hw > m)
        m = v->out_c * hw;
    return m;
}

/* ---- the GPU decoder's tensor walk and memory plan ------------------------------------------ */

static const float *walk_vec(og_vae_tensor_fn fn, void *arg, const float *x, int64_t n)
{
    og_dtype dt = OG_F32;
    return fn(arg, x, &dt, n, false);
}

static void walk_conv(vae_conv *c, og_vae_tensor_fn fn, void *arg)
{
    if (!c->w)
        return;
    c->w = fn(arg, c->w, &c->wt, c->cout * c->cin * c->k * c->k, true);
    c->b = walk_vec(fn, arg, c->b, c->cout);
}

static void walk_norm(vae_norm *n, int64_t c, og_vae_tensor_fn fn, void *arg)
{
    n->w = walk_vec(fn, arg, n->w, c);
    n->b = walk_vec(fn, arg, n->b, c);
}

static void walk_linear(vae_linear *l, int64_t c, og_vae_tensor_fn fn, void *arg)
{
    l->w = fn(arg, l->w, &l->wt, c * c, true);
    l->b = walk_vec(fn, arg, l->b, c);
}

static void walk_resnet(vae_resnet *r, og_vae_tensor_fn fn, void *arg)
{
    walk_norm(&r->norm1, r->cin, fn, arg);
    walk_conv(&r->conv1, fn, arg);
    walk_norm(&r->norm2, r->cout, fn, arg);
    walk_conv(&r->conv2, fn, arg);
    walk_conv(&r->shortcut, fn, arg);
}

void og_vae_walk_tensors(og_vae *v, og_vae_tensor_fn fn, void *arg)
{
    const int64_t top = v->block_out[v->n_blocks - 1];
    if (v->has_post_quant)
        walk_conv(&v->post_quant, fn, arg);
    walk_conv(&v->conv_in, fn, arg);
    walk_resnet(&v->mid_res[0], fn, arg);
    walk_resnet(&v->mid_res[1], fn, arg);
    if (v->has_attn) {
        walk_norm(&v->attn.norm, top, fn, arg);
        walk_linear(&v->attn.q, top, fn, arg);
        walk_linear(&v->attn.k, top, fn, arg);
        walk_linear(&v->attn.v, top, fn, arg);
        walk_linear(&v->attn.o, top, fn, arg);
    }
    for (int i = 0; i < v->n_blocks; i++) {
        for (int j = 0; j < v->up[i].n_res; j++)
            walk_resnet(&v->up[i].res[j], fn, arg);
        if (v->up[i].upsample)
            walk_conv(&v->up[i].up_conv, fn, arg);
    }
    walk_norm(&v->norm_out, v->block_out[0], fn, arg);
    walk_conv(&v->conv_out, fn, arg);
}

static size_t aligned64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static const void *count_device_bytes(void *arg, const void *data, og_dtype *dt, int64_t n,
                                      bool matrix)
{
    *(size_t *)arg += aligned64((size_t)n * (matrix ? 2 : 4)); /* bf16 matrices, f32 vectors */
    return data;
}

og_status og_vae_device_plan_for(const og_vae *v, int64_t h, int64_t w, og_vae_device_plan *out)
{
    if (h < 1 || w < 1 || h > 65536 || w > 65536)
        return og_fail(OG_ERR_INVALID_ARG, "VAE decode on the GPU: bad latent size %lldx%lld",
                       (long long)h, (long long)w);
    og_vae copy = *v; /* the walk rewrites pointers; counting returns them unchanged anyway */
    size_t weights = 0;
    og_vae_walk_tensors(&copy, count_device_bytes, &weights);
    const size_t hw = (size_t)(h * w), bf16 = sizeof(uint16_t);
    out->weights = weights;
    out->latent = aligned64((size_t)v->latent_c * hw * bf16);
    out->buffer = aligned64((size_t)vae_buffer_floats(v, 0, v->n_blocks, h, w) * bf16);
    out->attention =
        v->has_attn ? 3 * aligned64(hw * (size_t)v->block_out[v->n_blocks - 1] * bf16) : 0;
    out->workspace = OG_VAE_CONV_WORKSPACE;
    out->work = out->latent + 3 * out->buffer + out->attention + out->workspace;
    return OG_OK;
}

static size_t max_bytes(size_t a, size_t b)
{
    return a > b ? a : b;
}

static size_t resnet_scratch_bytes(const vae_resnet *r, int64_t h, int64_t w)
{
    return max_bytes(max_bytes(conv_scratch_bytes(&r->conv1, h, w),
                               conv_scratch_bytes(&r->conv2, h, w)),
                     conv_scratch_bytes(&r->shortcut, h, w));
}

/* The largest op scratch of the layers vae_buffer_floats(v, b0, b1, h, w) covers: their
 * convolutions, and with b0 = 0 the mid-block attention's projections and attention. */
static size_t vae_op_scratch_bytes(const og_vae *v, int b0, int b1, int64_t h, int64_t w)
{
    size_t m = 0;
    if (b0 == 0) {
        const int64_t c = v->block_out[v->n_blocks - 1];
        if (v->has_post_quant)
            m = conv_scratch_bytes(&v->post_quant, h, w);
        m = max_bytes(m, conv_scratch_bytes(&v->conv_in, h, w));
        m = max_bytes(m, resnet_scratch_bytes(&v->mid_res[0], h, w));
        m = max_bytes(m, resnet_scratch_bytes(&v->mid_res[1], h, w));
        if (v->has_attn) {
            const og_attn_desc d = vae_attn_desc(c, h * w);
            const vae_linear *proj[] = {&v->attn.q, &v->attn.k, &v->attn.v, &v->attn.o};
            m = max_bytes(m, og_attention_scratch_bytes(&d));
            for (int i = 0; i < 4; i++)
                m = max_bytes(m, og_linear_scratch_bytes(h * w, c, proj[i]->wt, c));
        }
    }
    for (int i = b0; i < b1; i++) {
        for (int j = 0; j < v->up[i].n_res; j++)
            m = max_bytes(m, resnet_scratch_bytes(&v->up[i].res[j], h, w));
        if (v->up[i].upsample) {
            h *= 2;
            w *= 2;
            m = max_bytes(m, conv_scratch_bytes(&v->up[i].up_conv, h, w));
        }
    }
    if (b1 == v->n_blocks)
        m = max_bytes(m, conv_scratch_bytes(&v->conv_out, h, w));
    return m;
}

/* Sets up the arena for one decode: three activation buffers of buf_floats each, q/k/v for a
 * mid-block attention over attn_hw positions, room for `extra` floats that the caller takes
 * with vae_take, and above them op_bytes for the ops' scratch (vae_op_scratch_bytes). The arena
 * grows only when a larger decode needs it. */
static og_status vae_scratch_setup(og_vae *v, vae_scratch *s, int64_t buf_floats, int64_t attn_hw,
                                   int64_t extra, size_t op_bytes)
{
    const int64_t attn = v->has_attn ? 3 * v->block_out[v->n_blocks - 1] * attn_hw : 0;
    const size_t bytes =
        sizeof(float) * (size_t)(3 * buf_floats + attn + extra) + 16 * 64 + op_bytes;
    if (v->arena.cap < bytes) {
        og_arena_free(&v->arena);
        OG_TRY(og_arena_init(&v->arena, bytes));
    }
    og_arena_reset(&v->arena);
    for (int i = 0; i < 3; i++)
        s->buf[i] = og_arena_alloc(&v->arena, sizeof(float) * (size_t)buf_floats);
    s->attn = attn ? og_arena_alloc(&v->arena, sizeof(float) * (size_t)attn) : NULL;
    s->ops = &v->arena;
    return OG_OK; /* `bytes` covers these and the caller's `extra`, so no allocation can fail */
}

static float *vae_take(og_vae *v, int64_t n)
{
    return og_arena_alloc(&v->arena, sizeof(float) * (size_t)n);
}

/* conv_in and the mid block: z [latent_c, h, w] (already unscaled) -> s->buf[*cur] holding
 * [top, h, w]. */
static og_status vae_forward_mid(const og_vae *v, vae_scratch *s, const float *z, int64_t h,
                                 int64_t w, int *cur)
{
    *cur = 0;
    if (v->has_post_quant) {
        OG_TRY(conv(&v->post_quant, s->buf[1], z, h, w, s->ops));
        z = s->buf[1];
    }
    OG_TRY(conv(&v->conv_in, s->buf[0], z, h, w, s->ops));
    OG_TRY(resnet(v, &v->mid_res[0], s, cur, h, w));
    if (v->has_attn)
        OG_TRY(attention(v, s, *cur, h, w));
    return resnet(v, &v->mid_res[1], s, cur, h, w);
}

/* Up blocks [b0, b1) on s->buf[*cur] [block_in_channels(b0), *h, *w]; updates cur, h, w. */
static og_status vae_forward_blocks(const og_vae *v, vae_scratch *s, int b0, int b1, int *cur,
                                    int64_t *h, int64_t *w)
{
    for (int i = b0; i < b1; i++) {
        const vae_up_block *ub = &v->up[i];
        for (int j = 0; j < ub->n_res; j++)
            OG_TRY(resnet(v, &ub->res[j], s, cur, *h, *w));
        if (ub->upsample) {
            int a = (*cur + 1) % 3, b = other(*cur, a);
            og_upsample_nearest2x(s->buf[a], s->buf[*cur], ub->up_conv.cin, *h, *w);
            *h *= 2;
            *w *= 2;
            OG_TRY(conv(&ub->up_conv, s->buf[b], s->buf[a], *h, *w, s->ops));
            *cur = b;
        }
    }
    return OG_OK;
}

/* GroupNorm, SiLU, conv_out: s->buf[cur] [block_out[0], h, w] -> out [out_c, h, w], the raw
 * decoder output. */
static og_status vae_forward_head(const og_vae *v, vae_scratch *s, int cur, int64_t h, int64_t w,
                                  float *out)
{
    int a = (cur + 1) % 3;
    norm_silu(v, &v->norm_out, s->buf[a], s->buf[cur], v->block_out[0], h * w);
    return conv(&v->conv_out, out, s->buf[a], h, w, s->ops);
}

/* ---- decode, untiled or tiled --------------------------------------------------------------- */

void og_vae_unscale(const og_vae *v, float *z, const float *lat, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        z[i] = lat[i] / v->scaling + v->shift;
}

void og_vae_postprocess(float *rgb, int64_t n)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float x = rgb[i] * 0.5f + 0.5f;
        rgb[i] = x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
    }
}

/* The fewest tiles along one axis that cover len while neighbours share >= overlap pixels. */
static int64_t tile_count(int64_t len, int64_t tile, int64_t overlap)
{
    if (len <= tile)
        return 1;
    return 1 + (len - tile + (tile - overlap) - 1) / (tile - overlap);
}

/* Start of tile i of n, spread evenly so the first starts at 0 and the last ends at len. */
static int64_t tile_start(int64_t i, int64_t n, int64_t len, int64_t tile)
{
    return n == 1 ? 0 : (i * (len - tile) + (n - 1) / 2) / (n - 1);
}

/* Blend weight of output pixel p (image pixels) in tile i along one axis. Near an inner tile
 * edge the zero padding of the convolutions makes a tile wrong, so across each overlap of
 * length L the weight is 0 over the quarter next to the edge and ramps linearly to 1 over the
 * middle half; with the neighbour's mirror-image ramp the two sum to 1. A floor of 1e-6 keeps
 * the sum positive where three tiles meet. */
static float tile_weight(int64_t p, int64_t i, int64_t n, int64_t len, int64_t tile, int64_t f)
{
    const int64_t s = tile_start(i, n, len, tile) * f, e = s + tile * f;
    float wgt = 1.0f;
    if (i > 0) {
        const int64_t L = tile_start(i - 1, n, len, tile) * f + tile * f - s, m = L / 4;
        const float r = ((float)(p - s - m) + 0.5f) / (float)(L - 2 * m);
        wgt = r < wgt ? r : wgt;
    }
    if (i < n - 1) {
        const int64_t L = e - tile_start(i + 1, n, len, tile) * f, m = L / 4;
        const float r = ((float)(e - m - p) - 0.5f) / (float)(L - 2 * m);
        wgt = r < wgt ? r : wgt;
    }
    return wgt > 1e-6f ? wgt : 1e-6f;
}

/* sum[p] = the total blend weight of all n tiles at image pixel p along one axis. */
static void weight_sums(float *sum, int64_t n, int64_t len, int64_t tile, int64_t f)
{
    const int64_t span = (len < tile ? len : tile) * f;
    memset(sum, 0, sizeof(float) * (size_t)(len * f));
    for (int64_t i = 0; i < n; i++)
        for (int64_t p = tile_start(i, n, len, tile) * f, e = p + span; p < e; p++)
            sum[p] += tile_weight(p, i, n, len, tile, f);
}

/* Tiled decode. conv_in, the mid block (whose attention is global) and as many up blocks as fit
 * in the memory one tile needs anyway run over the whole latent; the remaining up blocks, where
 * the memory goes, run tile by tile on crops of that output, and the tiles are blended. */
static og_status decode_tiled(og_vae *v, const float *lat, int64_t h, int64_t w, float *rgb,
                              int64_t tile, int64_t overlap)
{
    const int nb = v->n_blocks;
    const int64_t f = og_vae_scale_factor(v), c = v->latent_c, oc = v->out_c;
    const int64_t H = f * h, W = f * w;
    const int64_t ny = tile_count(h, tile, overlap), nx = tile_count(w, tile, overlap);
    const int64_t th = h < tile ? h : tile, tw = w < tile ? w : tile, TH = th * f, TW = tw * f;
    int g = 0; /* up blocks [0, g) run globally */
    while (g + 1 < nb && vae_buffer_floats(v, 0, g + 1, h, w) <=
                             vae_buffer_floats(v, g + 1, nb, th << (g + 1), tw << (g + 1)))
        g++;
    const int64_t gh = h << g, gw = w << g, gc = block_in_channels(v, g);
    int64_t buf = vae_buffer_floats(v, 0, g, h, w);
    if (vae_buffer_floats(v, g, nb, th << g, tw << g) > buf)
        buf = vae_buffer_floats(v, g, nb, th << g, tw << g);
    vae_scratch s;
    OG_TRY(vae_scratch_setup(v, &s, buf, h * w,
                             c * h * w + gc * gh * gw + oc * TH * TW + H + W + TW,
                             max_bytes(vae_op_scratch_bytes(v, 0, g, h, w),
                                       vae_op_scratch_bytes(v, g, nb, th << g, tw << g))));
    float *z = vae_take(v, c * h * w), *glob = vae_take(v, gc * gh * gw);
    float *out = vae_take(v, oc * TH * TW), *wy_sum = vae_take(v, H), *wx_sum = vae_take(v, W);
    float *wx = vae_take(v, TW);

    og_vae_unscale(v, z, lat, c * h * w);
    int cur;
    int64_t hh = h, ww = w;
    OG_TRY(vae_forward_mid(v, &s, z, h, w, &cur));
    OG_TRY(vae_forward_blocks(v, &s, 0, g, &cur, &hh, &ww));
    memcpy(glob, s.buf[cur], sizeof(float) * (size_t)(gc * gh * gw));

    memset(rgb, 0, sizeof(float) * (size_t)(oc * H * W));
    weight_sums(wy_sum, ny, h, tile, f);
    weight_sums(wx_sum, nx, w, tile, f);

    for (int64_t i = 0; i < ny; i++) {
        for (int64_t j = 0; j < nx; j++) {
            const int64_t y0 = tile_start(i, ny, h, tile), x0 = tile_start(j, nx, w, tile);
            const int64_t cy = y0 << g, cx = x0 << g, crop_h = th << g, crop_w = tw << g;
            for (int64_t ch = 0; ch < gc; ch++)
                for (int64_t y = 0; y < crop_h; y++)
                    memcpy(s.buf[0] + (ch * crop_h + y) * crop_w,
                           glob + (ch * gh + cy + y) * gw + cx, sizeof(float) * (size_t)crop_w);
            int tcur = 0;
            hh = crop_h;
            ww = crop_w;
            OG_TRY(vae_forward_blocks(v, &s, g, nb, &tcur, &hh, &ww));
            OG_TRY(vae_forward_head(v, &s, tcur, hh, ww, out));
            for (int64_t x = 0; x < TW; x++)
                wx[x] = tile_weight(x0 * f + x, j, nx, w, tile, f) / wx_sum[x0 * f + x];
#pragma omp parallel for schedule(static)
            for (int64_t y = 0; y < TH; y++) {
                const int64_t py = y0 * f + y;
                const float wy = tile_weight(py, i, ny, h, tile, f) / wy_sum[py];
                for (int64_t ch = 0; ch < oc; ch++) {
                    float *dst = rgb + (ch * H + py) * W + x0 * f;
                    const float *src = out + (ch * TH + y) * TW;
                    for (int64_t x = 0; x < TW; x++)
                        dst[x] += wy * wx[x] * src[x];
                }
            }
        }
    }
    return OG_OK;
}

og_status og_vae_decode(og_vae *v, const float *latents, int64_t h, int64_t w, float *rgb,
                        const og_vae_tiling *tiling)
{
    if (h < 1 || w < 1)
        return og_fail(OG_ERR_INVALID_ARG, "VAE decode: bad latent size %lldx%lld", (long long)h,
                       (long long)w);
    const int64_t f = og_vae_scale_factor(v), c = v->latent_c;
    if (tiling && (h > tiling->tile || w > tiling->tile)) {
        if (tiling->tile < 1 || tiling->overlap < 0 || 2 * tiling->overlap > tiling->tile)
            return og_fail(OG_ERR_INVALID_ARG,
                           "VAE tiling: tile %lld with overlap %lld (need tile >= 1 and "
                           "0 <= overlap <= tile / 2)",
                           (long long)tiling->tile, (long long)tiling->overlap);
        OG_TRY(decode_tiled(v, latents, h, w, rgb, tiling->tile, tiling->overlap));
    } else {
        vae_scratch s;
        OG_TRY(vae_scratch_setup(v, &s, vae_buffer_floats(v, 0, v->n_blocks, h, w), h * w,
                                 c * h * w, vae_op_scratch_bytes(v, 0, v->n_blocks, h, w)));
        float *z = vae_take(v, c * h * w);
        og_vae_unscale(v, z, latents, c * h * w);
        int cur;
        int64_t hh = h, ww = w;
        OG_TRY(vae_forward_mid(v, &s, z, h, w, &cur));
        OG_TRY(vae_forward_blocks(v, &s, 0, v->n_blocks, &cur, &hh, &ww));
        OG_TRY(vae_forward_head(v, &s, cur, hh, ww, rgb));
    }
    og_vae_postprocess(rgb, v->out_c * f * h * f * w);
    return OG_OK;
}
