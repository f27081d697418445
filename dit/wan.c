/* Wan2.1 transformer: config, weights, and the forward pass over this rank's video tokens.
 *
 * What the reference does (diffusers WanTransformer3DModel, text-to-video, batch 1):
 *   x    = Conv3d(kernel = stride = patch)(latents), tokens in (f, h, w) order, the patch vector
 *          (c, pt, ph, pw) as the conv weight flattens: one GEMM, weight as [dim, C·pt·ph·pw]
 *   temb = time_embedder(sinusoid(t))   sinusoid(freq_dim, [cos, sin], shift 0), Linear SiLU Linear
 *   proj = time_proj(SiLU(temb))        [6, dim]
 *   text = text_embedder(text)          Linear, GELU-tanh, Linear
 *   each block, (shift, scale, gate, c_shift, c_scale, c_gate) = scale_shift_table + proj:
 *     x += gate   * attn1(LN(x) (1 + scale) + shift)          LN without affine, eps
 *     x +=          attn2(norm2(x), text)                     norm2 affine LN or identity
 *     x += c_gate * FFN(LN(x) (1 + c_scale) + c_shift)        Linear GELU-tanh Linear
 *   attn: q, k, v, out Linears with biases; RMSNorm over the whole dim on q and k (before the head
 *     split; cross-attention too); self-attention rotates interleaved pairs by 3-D RoPE
 *   (shift, scale) = table + temb (not SiLU'd); out = proj_out(LN(x) (1 + scale) + shift),
 *     each token's (pt, ph, pw, c) vector unpatchified into [C, F, H, W].
 *   RoPE: head_dim splits into t = head_dim - 2 h, h = w = 2 (head_dim / 6) channels; axis pair i
 *     of d channels has frequency 10000^(-2i/d); the reference computes the angle and its cos/sin
 *     in f64 and rounds them to f32.
 *
 * Sequence parallelism: rank r of P holds tokens og_shard_range(n, P, r) from the embedding to
 * proj_out; self-attention is og_sp_attention over all n tokens; cross-attention's keys and values
 * are the whole text, projected on every rank; og_sp_gather_seq collects the [n, C·pt·ph·pw]
 * output rows (fewer floats than dim per token) and every rank unpatchifies them. */
#include "dit/wan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/tensor.h"
#include "dit/dit_common.h"
#include "io/diffusers.h"
#include "io/weights.h"

typedef struct {
    dit_linear q, k, v, out;
    float *norm_q, *norm_k; /* [dim] */
} wan_attn;

typedef struct {
    float *table; /* scale_shift_table [6, dim] */
    wan_attn self, cross;
    float *norm2_w, *norm2_b; /* [dim]; NULL without cross_attn_norm */
    dit_linear ff1, ff2;
} wan_block;

struct og_wan {
    og_wan_config c;
    og_weights *w;
    og_tensor patch_w; /* [dim, C, pt, ph, pw], used as [dim, C·pt·ph·pw] */
    float *patch_b;
    dit_linear time1, time2, time_proj, text1, text2, proj_out;
    float *out_table; /* [2, dim] */
    wan_block *blocks;
};

/* ---- config ------------------------------------------------------------------------------- */

static og_status parse_config(const og_config *cfg, og_wan_config *c)
{
    const char *path = og_config_path(cfg);
    if (og_config_has(cfg, "_class_name"))
        OG_TRY(og_config_expect_class(cfg, "WanTransformer3DModel"));
    static const char *const i2v[] = {"image_dim", "added_kv_proj_dim", "pos_embed_seq_len"};
    for (int i = 0; i < 3; i++)
        if (og_config_has(cfg, i2v[i]))
            return og_fail(OG_ERR_UNSUPPORTED,
                           "%s: %s is set: image-to-video Wan transformers (image embedder, added "
                           "K/V) are not supported, only text-to-video", path, i2v[i]);
    *c = (og_wan_config){0};
    int64_t p[8] = {1, 2, 2};
    int np = 3;
    if (og_config_has(cfg, "patch_size"))
        OG_TRY(og_config_int_array(cfg, "patch_size", p, 8, &np));
    if (np != 3 || p[0] < 1 || p[1] < 1 || p[2] < 1 || p[0] > 64 || p[1] > 64 || p[2] > 64)
        return og_fail(OG_ERR_FORMAT, "%s: patch_size must be three positive sizes", path);
    for (int a = 0; a < 3; a++)
        c->patch[a] = (int)p[a];
    OG_TRY(dit_read_pos_int(cfg, "num_attention_heads", 40, &c->heads));
    OG_TRY(dit_read_pos_int(cfg, "attention_head_dim", 128, &c->head_dim));
    OG_TRY(dit_read_pos_int(cfg, "in_channels", 16, &c->in_channels));
    OG_TRY(dit_read_pos_int(cfg, "out_channels", c->in_channels, &c->out_channels));
    OG_TRY(dit_read_pos_int(cfg, "text_dim", 4096, &c->text_dim));
    OG_TRY(dit_read_pos_int(cfg, "freq_dim", 256, &c->freq_dim));
    OG_TRY(dit_read_pos_int(cfg, "ffn_dim", 13824, &c->ffn_dim));
    int64_t layers;
    OG_TRY(og_config_int_or(cfg, "num_layers", 40, &layers));
    if (layers < 0 || layers > 1000)
        return og_fail(OG_ERR_FORMAT, "%s: num_layers = %lld is out of range", path,
                       (long long)layers);
    c->n_layers = (int)layers;
    OG_TRY(og_config_bool_or(cfg, "cross_attn_norm", true, &c->cross_attn_norm));
    double eps;
    OG_TRY(og_config_float_or(cfg, "eps", 1e-6, &eps));
    c->eps = (float)eps;
    OG_TRY(dit_read_pos_int(cfg, "rope_max_seq_len", 1024, &c->rope_max_seq_len));
    /* qk_norm is not read: the reference builds both RMSNorms whatever its value. */
    if ((int64_t)c->heads * c->head_dim > (1 << 20))
        return og_fail(OG_ERR_FORMAT, "%s: %d heads x %d is too wide", path, c->heads,
                       c->head_dim);
    c->dim = c->heads * c->head_dim;
    if (c->head_dim % 2 || c->head_dim < 6 || c->freq_dim % 2)
        return og_fail(OG_ERR_FORMAT, "%s: attention_head_dim %d must be even and at least 6 (its "
                       "RoPE splits it over three axes), freq_dim %d even", path, c->head_dim,
                       c->freq_dim);
    c->rope_dims[1] = c->rope_dims[2] = 2 * (c->head_dim / 6);
    c->rope_dims[0] = c->head_dim - 2 * c->rope_dims[1];
    return OG_OK;
}

og_status og_wan_read_config(const char *transformer_dir, og_wan_config *out)
{
    og_config *cfg;
    OG_TRY(dit_config_open(transformer_dir, &cfg));
    og_status st = parse_config(cfg, out);
    og_config_free(cfg);
    return st;
}

og_status og_wan_tokens_for(const og_wan_config *c, int64_t F, int64_t H, int64_t W,
                            int64_t text_len, og_wan_tokens *out)
{
    const int64_t size[3] = {F, H, W};
    int64_t tok[3];
    static const char *const axis[3] = {"frames", "height", "width"};
    for (int a = 0; a < 3; a++) {
        if (size[a] < c->patch[a] || size[a] % c->patch[a])
            return og_fail(OG_ERR_INVALID_ARG,
                           "Wan latents %lld x %lld x %lld: the %s (%lld) must be a positive "
                           "multiple of the patch size %d", (long long)F, (long long)H,
                           (long long)W, axis[a], (long long)size[a], c->patch[a]);
        tok[a] = size[a] / c->patch[a];
        if (tok[a] > c->rope_max_seq_len)
            return og_fail(OG_ERR_INVALID_ARG,
                           "Wan latents %lld x %lld x %lld: %lld tokens along the %s exceed the "
                           "model's RoPE table (rope_max_seq_len %d)", (long long)F,
                           (long long)H, (long long)W, (long long)tok[a], axis[a],
                           c->rope_max_seq_len);
    }
    if (text_len < 1)
        return og_fail(OG_ERR_INVALID_ARG, "Wan needs at least one text token (got %lld)",
                       (long long)text_len);
    *out = (og_wan_tokens){.f = tok[0], .h = tok[1], .w = tok[2], .n = tok[0] * tok[1] * tok[2]};
    return OG_OK;
}

og_status og_wan_check_layout(const og_wan_config *c, const og_parallel_config *pc, int64_t F,
                              int64_t H, int64_t W, int64_t text_len, int world_available)
{
    og_wan_tokens t = {0};
    OG_TRY(og_wan_tokens_for(c, F, H, W, text_len, &t));
    return og_parallel_config_validate(pc, c->heads, t.n, world_available);
}

/* ---- weights ------------------------------------------------------------------------------ */

static og_status load_attn(og_wan *m, const char *prefix, wan_attn *a)
{
    const int64_t D = m->c.dim;
    char k[256];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", prefix, suffix), k)
    OG_TRY(dit_get_linear(m->w, KEY("to_q"), D, D, &a->q));
    OG_TRY(dit_get_linear(m->w, KEY("to_k"), D, D, &a->k));
    OG_TRY(dit_get_linear(m->w, KEY("to_v"), D, D, &a->v));
    OG_TRY(dit_get_linear(m->w, KEY("to_out.0"), D, D, &a->out));
    OG_TRY(og_weights_vector_f32(m->w, KEY("norm_q.weight"), D, &a->norm_q));
    OG_TRY(og_weights_vector_f32(m->w, KEY("norm_k.weight"), D, &a->norm_k));
#undef KEY
    return OG_OK;
}

static og_status load_weights(og_wan *m)
{
    const og_wan_config *c = &m->c;
    const int64_t D = c->dim;
    og_weights *w = m->w;
    OG_TRY(og_weights_expect(w, "patch_embedding.weight", 5,
                             (int64_t[]){D, c->in_channels, c->patch[0], c->patch[1], c->patch[2]},
                             &m->patch_w));
    if (m->patch_w.dtype != OG_F32 && m->patch_w.dtype != OG_BF16 && m->patch_w.dtype != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "patch_embedding.weight: dtype %s",
                       og_dtype_name(m->patch_w.dtype));
    OG_TRY(og_weights_vector_f32(w, "patch_embedding.bias", D, &m->patch_b));
    OG_TRY(
        dit_get_linear(w, "condition_embedder.time_embedder.linear_1", D, c->freq_dim, &m->time1));
    OG_TRY(dit_get_linear(w, "condition_embedder.time_embedder.linear_2", D, D, &m->time2));
    OG_TRY(dit_get_linear(w, "condition_embedder.time_proj", 6 * D, D, &m->time_proj));
    OG_TRY(
        dit_get_linear(w, "condition_embedder.text_embedder.linear_1", D, c->text_dim, &m->text1));
    OG_TRY(dit_get_linear(w, "condition_embedder.text_embedder.linear_2", D, D, &m->text2));
    const int64_t patch_out = (int64_t)c->out_channels * c->patch[0] * c->patch[1] * c->patch[2];
    OG_TRY(dit_get_linear(w, "proj_out", patch_out, D, &m->proj_out));
    OG_TRY(og_weights_vector_f32(w, "scale_shift_table", 2 * D, &m->out_table));
    m->blocks = calloc((size_t)(c->n_layers > 0 ? c->n_layers : 1), sizeof *m->blocks);
    if (!m->blocks)
        return og_fail(OG_ERR_OOM, "cannot allocate %d block descriptors", c->n_layers);
    for (int i = 0; i < c->n_layers; i++) {
        wan_block *b = &m->blocks[i];
        char p[96], k[160];
        snprintf(p, sizeof p, "blocks.%d", i);
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", p, suffix), k)
        OG_TRY(og_weights_vector_f32(w, KEY("scale_shift_table"), 6 * D, &b->table));
        OG_TRY(load_attn(m, KEY("attn1"), &b->self));
        OG_TRY(load_attn(m, KEY("attn2"), &b->cross));
        if (og_weights_has(w, KEY("attn2.add_k_proj.weight")))
            return og_fail(OG_ERR_UNSUPPORTED, "%s: %s is an image-to-video weight; only "
                           "text-to-video Wan transformers are supported", og_weights_source(w),
                           k);
        if (c->cross_attn_norm) {
            OG_TRY(og_weights_vector_f32(w, KEY("norm2.weight"), D, &b->norm2_w));
            OG_TRY(og_weights_vector_f32(w, KEY("norm2.bias"), D, &b->norm2_b));
        }
        OG_TRY(dit_get_linear(w, KEY("ffn.net.0.proj"), c->ffn_dim, D, &b->ff1));
        OG_TRY(dit_get_linear(w, KEY("ffn.net.2"), D, c->ffn_dim, &b->ff2));
#undef KEY
    }
    return OG_OK;
}

og_status og_wan_load(og_wan **out, const char *transformer_dir)
{
    *out = NULL;
    og_wan *m = calloc(1, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "cannot allocate the Wan transformer");
    og_status st = og_wan_read_config(transformer_dir, &m->c);
    if (st == OG_OK)
        st = og_weights_open_dir(&m->w, transformer_dir);
    if (st == OG_OK)
        st = load_weights(m);
    if (st != OG_OK) {
        og_wan_free(m);
        return og_fail_context(st, "loading the Wan transformer from %s", transformer_dir);
    }
    *out = m;
    return OG_OK;
}

void og_wan_free(og_wan *m)
{
    if (!m)
        return;
    free(m->blocks);
    og_weights_free(m->w);
    free(m);
}

const og_wan_config *og_wan_get_config(const og_wan *m)
{
    return &m->c;
}

/* ---- scratch plan ------------------------------------------------------------------------- */

/* This rank's token shard. */
typedef struct {
    og_wan_tokens t;
    int P;
    int64_t off, n;
} wan_shard;

static wan_shard shard_for(const og_wan_tokens *t, og_sp *sp)
{
    wan_shard s = {.t = *t, .P = sp ? og_sp_size(sp) : 1, .off = 0, .n = t->n};
    if (s.P > 1)
        og_shard_range(t->n, s.P, og_sp_rank(sp), &s.off, &s.n);
    return s;
}

/* Attention over n query tokens and skv key tokens of one rank, q/k/v/out [tokens, dim]. */
static og_attn_desc attn_desc(const og_wan_config *c, int64_t n, int64_t skv)
{
    return dit_attn_desc(c->heads, c->head_dim, n, skv);
}

static int64_t patch_in(const og_wan_config *c)
{
    return (int64_t)c->in_channels * c->patch[0] * c->patch[1] * c->patch[2];
}

static int64_t patch_out(const og_wan_config *c)
{
    return (int64_t)c->out_channels * c->patch[0] * c->patch[1] * c->patch[2];
}

/* One block's buffers: xn, q, o [n, dim], k, v [max(n, L), dim], hid [n, ffn], mod [6 dim]. */
static size_t block_buffers(const og_wan_config *c, int64_t n, int64_t L)
{
    const int64_t kv = n > L ? n : L;
    return 3 * dit_fbytes(n * c->dim) + 2 * dit_fbytes(kv * c->dim) + dit_fbytes(n * c->ffn_dim) +
           dit_fbytes(6 * c->dim);
}

static size_t block_ops(const og_wan *m, const wan_block *b, const wan_shard *s, int64_t L,
                        og_sp *sp)
{
    const og_wan_config *c = &m->c;
    const og_attn_desc self = attn_desc(c, s->n, s->n), cross = attn_desc(c, s->n, L);
    size_t ops = s->P > 1 ? og_sp_attention_scratch_bytes(sp, s->t.n, c->heads, c->head_dim, 0)
                          : og_attention_scratch_bytes(&self);
    ops = dit_max_bytes(ops, og_attention_scratch_bytes(&cross));
    const dit_linear *rows_n[] = {&b->self.q, &b->self.k, &b->self.v, &b->self.out,
                                  &b->cross.q, &b->cross.out, &b->ff1, &b->ff2};
    for (size_t i = 0; i < sizeof rows_n / sizeof rows_n[0]; i++)
        ops = dit_max_bytes(ops, dit_linear_bytes(rows_n[i], s->n));
    ops = dit_max_bytes(ops, dit_linear_bytes(&b->cross.k, L));
    return dit_max_bytes(ops, dit_linear_bytes(&b->cross.v, L));
}

size_t og_wan_scratch_bytes(const og_wan *m, int64_t F, int64_t H, int64_t W, int64_t text_len,
                            og_sp *sp)
{
    const og_wan_config *c = &m->c;
    og_wan_tokens t = {0};
    if (og_wan_tokens_for(c, F, H, W, text_len, &t) != OG_OK)
        return 0; /* the forward reports the error */
    const wan_shard s = shard_for(&t, sp);
    const int64_t D = c->dim, L = text_len, half = c->head_dim / 2;
    /* Held through the forward: temb, proj [6 dim], the embedded text, x, the RoPE tables. */
    size_t persist = dit_fbytes(D) + dit_fbytes(6 * D) + dit_fbytes(L * D) + dit_fbytes(s.n * D) +
                     2 * dit_fbytes(s.n * half);
    /* Phases, each released before the next: time conditioning, text, patch embedding, the
     * blocks, the output layer. */
    size_t time =
        dit_fbytes(c->freq_dim) + dit_fbytes(D) +
        dit_max_bytes(dit_max_bytes(dit_linear_bytes(&m->time1, 1), dit_linear_bytes(&m->time2, 1)),
                      dit_linear_bytes(&m->time_proj, 1));
    size_t text = dit_fbytes(L * D) +
                  dit_max_bytes(dit_linear_bytes(&m->text1, L), dit_linear_bytes(&m->text2, L));
    size_t patch = dit_fbytes(s.n * patch_in(c)) +
                   og_linear_scratch_bytes(s.n, patch_in(c), m->patch_w.dtype, D);
    size_t blocks = 0;
    for (int i = 0; i < c->n_layers; i++)
        blocks = dit_max_bytes(blocks, block_ops(m, &m->blocks[i], &s, L, sp));
    blocks += block_buffers(c, s.n, L);
    size_t final = dit_fbytes(2 * D) + dit_fbytes(s.n * D) + dit_fbytes(s.n * patch_out(c)) +
                   (s.P > 1 ? dit_fbytes(t.n * patch_out(c)) : 0) +
                   dit_linear_bytes(&m->proj_out, s.n);
    size_t phase = dit_max_bytes(dit_max_bytes(time, text),
                                 dit_max_bytes(patch, dit_max_bytes(blocks, final)));
    return persist + phase;
}

/* ---- forward ------------------------------------------------------------------------------- */

/* temb [dim] and proj [6 dim] of the timestep. */
static og_status time_conditioning(const og_wan *m, float t, dit_allocator *al, float *temb,
                                   float *proj)
{
    const og_wan_config *c = &m->c;
    float *freq = dit_alloc_f(al, c->freq_dim), *h = dit_alloc_f(al, c->dim);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Wan time conditioning");
    og_timestep_embedding(freq, t, c->freq_dim, 10000.0, 0.0, true);
    OG_TRY(dit_linear_run(h, freq, 1, &m->time1, al->a));
    og_silu(h, c->dim);
    OG_TRY(dit_linear_run(temb, h, 1, &m->time2, al->a));
    memcpy(h, temb, (size_t)c->dim * sizeof(float));
    og_silu(h, c->dim);
    return dit_linear_run(proj, h, 1, &m->time_proj, al->a);
}

static og_status embed_text(const og_wan *m, const float *text, int64_t L, dit_allocator *al,
                            float *out)
{
    float *h = dit_alloc_f(al, L * m->c.dim);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Wan text embedding");
    OG_TRY(dit_linear_run(h, text, L, &m->text1, al->a));
    og_gelu_tanh(h, L * m->c.dim);
    return dit_linear_run(out, h, L, &m->text2, al->a);
}

/* The (f, h, w) token position of global token g. */
static void token_pos(const og_wan_tokens *t, int64_t g, int64_t pos[3])
{
    pos[0] = g / (t->h * t->w);
    pos[1] = g / t->w % t->h;
    pos[2] = g % t->w;
}

/* RoPE cos/sin [n, head_dim / 2] of this rank's tokens: axis a's pairs in turn, angles and their
 * cos/sin in f64 rounded to f32 as the reference's tables. */
static void rope_tables(const og_wan_config *c, const wan_shard *s, float *cos_t, float *sin_t)
{
    const int half = c->head_dim / 2;
#pragma omp parallel for if (s->n * half > 16384)
    for (int64_t j = 0; j < s->n; j++) {
        int64_t pos[3];
        token_pos(&s->t, s->off + j, pos);
        int k = 0;
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < c->rope_dims[a] / 2; i++, k++) {
                double freq = 1.0 / pow(10000.0, 2.0 * i / c->rope_dims[a]);
                double ang = (double)pos[a] * freq;
                cos_t[j * half + k] = (float)cos(ang);
                sin_t[j * half + k] = (float)sin(ang);
            }
    }
}

/* x[n, dim] = patch_embedding of this rank's tokens. */
static og_status embed_patches(const og_wan *m, const wan_shard *s, const float *lat, int64_t F,
                               int64_t H, int64_t W, dit_allocator *al, float *x)
{
    const og_wan_config *c = &m->c;
    const int pt = c->patch[0], ph = c->patch[1], pw = c->patch[2];
    const int64_t K = patch_in(c);
    float *patches = dit_alloc_f(al, s->n * K);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Wan patch embedding");
#pragma omp parallel for
    for (int64_t j = 0; j < s->n; j++) {
        int64_t pos[3];
        token_pos(&s->t, s->off + j, pos);
        float *v = patches + j * K;
        for (int ch = 0; ch < c->in_channels; ch++)
            for (int i = 0; i < pt; i++)
                for (int y = 0; y < ph; y++)
                    for (int xw = 0; xw < pw; xw++)
                        *v++ = lat[((ch * F + pos[0] * pt + i) * H + pos[1] * ph + y) * W +
                                   pos[2] * pw + xw];
    }
    return og_linear(x, patches, s->n, K, m->patch_w.data, m->patch_w.dtype, c->dim, m->patch_b,
                     al->a);
}

/* q and k projections followed by RMSNorm over the whole dim. */
static og_status project_normed(const dit_linear *l, const float *norm, float eps, float *y,
                                const float *x, int64_t rows, int64_t dim, og_arena *scratch)
{
    OG_TRY(dit_linear_run(y, x, rows, l, scratch));
    og_rmsnorm(y, y, norm, rows, dim, eps);
    return OG_OK;
}

static og_status block_forward(const og_wan *m, const wan_block *b, const wan_shard *s, og_sp *sp,
                               float *x, const float *text, int64_t L, const float *proj,
                               const float *rcos, const float *rsin, dit_allocator *al)
{
    const og_wan_config *c = &m->c;
    const int64_t D = c->dim, n = s->n, kv = n > L ? n : L;
    og_arena *a = al->a;
    float *xn = dit_alloc_f(al, n * D), *q = dit_alloc_f(al, n * D), *o = dit_alloc_f(al, n * D);
    float *k = dit_alloc_f(al, kv * D), *v = dit_alloc_f(al, kv * D);
    float *hid = dit_alloc_f(al, n * c->ffn_dim), *mod = dit_alloc_f(al, 6 * D);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Wan block scratch for %lld tokens", (long long)n);
    for (int64_t i = 0; i < 6 * D; i++)
        mod[i] = b->table[i] + proj[i];
    const float *shift = mod, *scale = mod + D, *gate = mod + 2 * D;
    const float *c_shift = mod + 3 * D, *c_scale = mod + 4 * D, *c_gate = mod + 5 * D;

    /* self-attention */
    og_layernorm(xn, x, NULL, NULL, n, D, c->eps);
    og_modulate(xn, xn, scale, shift, n, D);
    OG_TRY(project_normed(&b->self.q, b->self.norm_q, c->eps, q, xn, n, D, a));
    OG_TRY(project_normed(&b->self.k, b->self.norm_k, c->eps, k, xn, n, D, a));
    OG_TRY(dit_linear_run(v, xn, n, &b->self.v, a));
    og_rope_interleaved(q, n, c->heads, c->head_dim, D, rcos, rsin);
    og_rope_interleaved(k, n, c->heads, c->head_dim, D, rcos, rsin);
    if (s->P > 1) {
        og_sp_attn_args args = {.seq = s->t.n, .heads = c->heads, .head_dim = c->head_dim,
                                .scale = 1.0f / sqrtf((float)c->head_dim), .q = q, .k = k,
                                .v = v, .out = o, .scratch = a};
        OG_TRY(og_sp_attention(sp, &args));
    } else {
        const og_attn_desc d = attn_desc(c, n, n);
        OG_TRY(og_attention(&d, q, k, v, o, NULL, a));
    }
    OG_TRY(dit_linear_run(xn, o, n, &b->self.out, a));
    og_gated_residual(x, xn, gate, n, D);

    /* cross-attention to the whole text, on this rank alone */
    const float *xc = x;
    if (b->norm2_w) {
        og_layernorm(xn, x, b->norm2_w, b->norm2_b, n, D, c->eps);
        xc = xn;
    }
    OG_TRY(project_normed(&b->cross.q, b->cross.norm_q, c->eps, q, xc, n, D, a));
    OG_TRY(project_normed(&b->cross.k, b->cross.norm_k, c->eps, k, text, L, D, a));
    OG_TRY(dit_linear_run(v, text, L, &b->cross.v, a));
    const og_attn_desc d = attn_desc(c, n, L);
    OG_TRY(og_attention(&d, q, k, v, o, NULL, a));
    OG_TRY(dit_linear_run(xn, o, n, &b->cross.out, a));
    og_gated_residual(x, xn, NULL, n, D);

    /* feed-forward */
    og_layernorm(xn, x, NULL, NULL, n, D, c->eps);
    og_modulate(xn, xn, c_scale, c_shift, n, D);
    OG_TRY(dit_linear_run(hid, xn, n, &b->ff1, a));
    og_gelu_tanh(hid, n * c->ffn_dim);
    OG_TRY(dit_linear_run(xn, hid, n, &b->ff2, a));
    og_gated_residual(x, xn, c_gate, n, D);
    return OG_OK;
}

/* norm_out, modulation by table + temb, proj_out on this rank's tokens; gathered and
 * unpatchified into out on every rank. */
static og_status output_layer(const og_wan *m, og_sp *sp, const wan_shard *s, const float *x,
                              const float *temb, int64_t F, int64_t H, int64_t W, float *out,
                              dit_allocator *al)
{
    const og_wan_config *c = &m->c;
    const int64_t D = c->dim, Po = patch_out(c), n = s->n;
    float *mod = dit_alloc_f(al, 2 * D), *xn = dit_alloc_f(al, n * D);
    float *local = dit_alloc_f(al, n * Po);
    float *full = s->P > 1 ? dit_alloc_f(al, s->t.n * Po) : local;
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Wan output layer");
    for (int64_t i = 0; i < 2 * D; i++)
        mod[i] = m->out_table[i] + temb[i % D];
    og_layernorm(xn, x, NULL, NULL, n, D, c->eps);
    og_modulate(xn, xn, mod + D, mod, n, D);
    OG_TRY(dit_linear_run(local, xn, n, &m->proj_out, al->a));
    if (s->P > 1)
        OG_TRY(og_sp_gather_seq(sp, local, full, s->t.n, Po));
    const int pt = c->patch[0], ph = c->patch[1], pw = c->patch[2], C = c->out_channels;
#pragma omp parallel for
    for (int64_t g = 0; g < s->t.n; g++) {
        int64_t pos[3];
        token_pos(&s->t, g, pos);
        const float *v = full + g * Po;
        for (int i = 0; i < pt; i++)
            for (int y = 0; y < ph; y++)
                for (int xw = 0; xw < pw; xw++)
                    for (int ch = 0; ch < C; ch++)
                        out[((ch * F + pos[0] * pt + i) * H + pos[1] * ph + y) * W +
                            pos[2] * pw + xw] = *v++;
    }
    return OG_OK;
}

static og_status forward(og_wan *m, og_sp *sp, const float *latents, int64_t F, int64_t H,
                         int64_t W, float timestep, const float *text, int64_t L, float *out,
                         og_arena *scratch)
{
    const og_wan_config *c = &m->c;
    if (!latents || !text || !out || !scratch)
        return og_fail(OG_ERR_INVALID_ARG, "Wan forward: latents, text, output and scratch are "
                                           "required");
    if (!isfinite(timestep))
        return og_fail(OG_ERR_INVALID_ARG, "Wan forward: timestep %g is not finite",
                       (double)timestep);
    og_wan_tokens t = {0};
    OG_TRY(og_wan_tokens_for(c, F, H, W, L, &t));
    const wan_shard s = shard_for(&t, sp);
    const int64_t D = c->dim, half = c->head_dim / 2;
    dit_allocator al = {scratch, false};
    float *temb = dit_alloc_f(&al, D), *proj = dit_alloc_f(&al, 6 * D);
    float *txt = dit_alloc_f(&al, L * D), *x = dit_alloc_f(&al, s.n * D);
    float *rcos = dit_alloc_f(&al, s.n * half), *rsin = dit_alloc_f(&al, s.n * half);
    if (al.failed)
        return og_fail_context(OG_ERR_OOM, "Wan forward (size the arena with "
                                           "og_wan_scratch_bytes)");
    const size_t mark = og_arena_mark(scratch);
    OG_TRY(time_conditioning(m, timestep, &al, temb, proj));
    og_arena_release(scratch, mark);
    OG_TRY(embed_text(m, text, L, &al, txt));
    og_arena_release(scratch, mark);
    OG_TRY(embed_patches(m, &s, latents, F, H, W, &al, x));
    og_arena_release(scratch, mark);
    rope_tables(c, &s, rcos, rsin);
    for (int i = 0; i < c->n_layers; i++) {
        OG_TRY(block_forward(m, &m->blocks[i], &s, sp, x, txt, L, proj, rcos, rsin, &al));
        og_arena_release(scratch, mark);
    }
    return output_layer(m, sp, &s, x, temb, F, H, W, out, &al);
}

og_status og_wan_forward(og_wan *m, og_sp *sp, const float *latents, int64_t F, int64_t H,
                         int64_t W, float timestep, const float *text, int64_t text_len,
                         float *out, og_arena *scratch)
{
    if (!m)
        return og_fail(OG_ERR_INVALID_ARG, "Wan forward: no model");
    const size_t mark = scratch ? og_arena_mark(scratch) : 0;
    og_status st = forward(m, sp, latents, F, H, W, timestep, text, text_len, out, scratch);
    if (scratch)
        og_arena_release(scratch, mark);
    return st;
}
