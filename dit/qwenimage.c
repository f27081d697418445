/* Qwen-Image transformer: config, weights, and the forward pass over this rank's image tokens and
 * the whole text.
 *
 * What the reference does (diffusers QwenImageTransformer2DModel, batch 1, no zero_cond_t):
 *   x    = img_in(tokens)                                 packed [N, in_channels] -> [N, D]
 *   txt  = txt_in(RMSNorm(text))                          RMSNorm over joint_dim, eps 1e-6
 *   temb = Linear SiLU Linear (sinusoid(1000 σ))          256 channels, [cos, sin], shift 0: the
 *          exponent, the frequency, σ·f and then 1000·(σ·f) each rounded to f32 in turn
 *   each block, per stream s in {img, txt}: (shift1, scale1, gate1, shift2, scale2, gate2) =
 *          s_mod.1(SiLU(temb)); LN = LayerNorm without affine, eps 1e-6
 *     q, k, v = to_q/k/v(LN(x)(1 + scale1) + shift1) for the image, add_q/k/v_proj for the text;
 *     per-head RMSNorm (norm_q, norm_k, norm_added_q, norm_added_k) on q and k; RoPE on q and k
 *     joint attention over [text, image] (text keys masked out where the mask is 0), scale
 *     1/sqrt(head_dim); x += gate1 · to_out.0(o_img), txt += gate1 · to_add_out(o_txt)
 *     x += gate2 · MLP(LN(x)(1 + scale2) + shift2)       MLP = Linear(4D) GELU-tanh Linear
 *   out = proj_out(LN(x)(1 + scale) + shift), (scale, shift) = norm_out.linear(SiLU(temb))
 *   RoPE: interleaved pairs (complex multiply); axis a owns axes[a] channels with frequencies
 *     1 / 10000^(2i / axes[a]) and the angle pos · f, all in f32 (cos/sin of the f32 angle). Image
 *     token (y, x) has positions (0, y - (hp - hp/2), x - (wp - wp/2)); text token i has i + max(hp/2,
 *     wp/2) on all three axes (the index in the unmasked text, padding included).
 *
 * Text padding: a masked text token is never a key, and every text-stream op is per token, so its
 * row cannot reach the image output. The forward therefore drops masked tokens up front (keeping
 * the RoPE positions of the others), which is exactly the reference's image output.
 *
 * Sequence parallelism: rank r of P holds image tokens og_shard_range(N, P, r) from img_in to
 * proj_out; the text stream runs replicated on every rank; og_sp_attention attends the image shard
 * with the text as its joint tokens and returns the complete text output on every rank;
 * og_sp_gather_seq collects the output rows. */
#include "dit/qwenimage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/tensor.h"
#include "dit/dit_common.h"
#include "io/diffusers.h"
#include "io/weights.h"

enum { QI_FREQ_DIM = 256, QI_ROPE_ROWS = 4096 };
static const float QI_EPS = 1e-6f;

/* One stream's weights in a block (image: to_q..., text: add_q_proj...). */
typedef struct {
    dit_linear mod, q, k, v, out, mlp1, mlp2;
    float *norm_q, *norm_k; /* [head_dim] */
} qi_stream;

typedef struct {
    qi_stream img, txt;
} qi_block;

struct og_qwenimage {
    og_qwenimage_config c;
    og_weights *w;
    dit_linear img_in, txt_in, time1, time2, norm_out, proj_out;
    float *txt_norm; /* [joint_dim] */
    qi_block *blocks;
};

/* ---- config ------------------------------------------------------------------------------- */

static og_status parse_config(const og_config *cfg, og_qwenimage_config *c)
{
    const char *path = og_config_path(cfg);
    if (og_config_has(cfg, "_class_name"))
        OG_TRY(og_config_expect_class(cfg, "QwenImageTransformer2DModel"));
    static const char *const variants[] = {"zero_cond_t", "use_additional_t_cond",
                                           "use_layer3d_rope", "guidance_embeds"};
    for (int i = 0; i < 4; i++) {
        bool on;
        OG_TRY(og_config_bool_or(cfg, variants[i], false, &on));
        if (on)
            return og_fail(OG_ERR_UNSUPPORTED,
                           "%s: %s is true: only the text-to-image Qwen-Image transformer (all "
                           "of zero_cond_t, use_additional_t_cond, use_layer3d_rope, "
                           "guidance_embeds false) is supported", path, variants[i]);
    }
    *c = (og_qwenimage_config){0};
    OG_TRY(dit_read_pos_int(cfg, "patch_size", 2, &c->patch));
    OG_TRY(dit_read_pos_int(cfg, "in_channels", 64, &c->in_channels));
    OG_TRY(dit_read_pos_int(cfg, "out_channels", 16, &c->out_channels));
    OG_TRY(dit_read_pos_int(cfg, "num_attention_heads", 24, &c->heads));
    OG_TRY(dit_read_pos_int(cfg, "attention_head_dim", 128, &c->head_dim));
    OG_TRY(dit_read_pos_int(cfg, "joint_attention_dim", 3584, &c->joint_dim));
    int64_t layers;
    OG_TRY(og_config_int_or(cfg, "num_layers", 60, &layers));
    if (layers < 0 || layers > 1000)
        return og_fail(OG_ERR_FORMAT, "%s: num_layers = %lld is out of range", path,
                       (long long)layers);
    c->n_layers = (int)layers;
    if (c->patch > 64)
        return og_fail(OG_ERR_FORMAT, "%s: patch_size %d is out of range", path, c->patch);
    if ((int64_t)c->heads * c->head_dim > (1 << 20))
        return og_fail(OG_ERR_FORMAT, "%s: %d heads x %d is too wide", path, c->heads,
                       c->head_dim);
    c->dim = c->heads * c->head_dim;
    int64_t ax[8] = {16, 56, 56};
    int nax = 3;
    if (og_config_has(cfg, "axes_dims_rope"))
        OG_TRY(og_config_int_array(cfg, "axes_dims_rope", ax, 8, &nax));
    if (nax != 3 || ax[0] < 0 || ax[1] < 0 || ax[2] < 0 || ax[0] % 2 || ax[1] % 2 || ax[2] % 2 ||
        ax[0] + ax[1] + ax[2] != c->head_dim)
        return og_fail(OG_ERR_FORMAT, "%s: axes_dims_rope must be three even sizes summing to "
                       "attention_head_dim %d", path, c->head_dim);
    for (int a = 0; a < 3; a++)
        c->axes[a] = (int)ax[a];
    return OG_OK;
}

og_status og_qwenimage_read_config(const char *transformer_dir, og_qwenimage_config *out)
{
    og_config *cfg;
    OG_TRY(dit_config_open(transformer_dir, &cfg));
    og_status st = parse_config(cfg, out);
    og_config_free(cfg);
    return st;
}

/* The first text position: the reference's max_vid_index. */
static int64_t text_pos0(int64_t hp, int64_t wp)
{
    return hp / 2 > wp / 2 ? hp / 2 : wp / 2;
}

og_status og_qwenimage_check_request(const og_qwenimage_config *c, int64_t hp, int64_t wp,
                                     int64_t text_len)
{
    (void)c;
    if (hp < 1 || wp < 1 || hp > 2 * QI_ROPE_ROWS || wp > 2 * QI_ROPE_ROWS)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image token grid %lld x %lld: each side must be "
                       "1 to %d tokens (the model's RoPE tables)", (long long)hp, (long long)wp,
                       2 * QI_ROPE_ROWS);
    if (text_len < 1)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image needs at least one text token (got %lld)",
                       (long long)text_len);
    if (text_pos0(hp, wp) + text_len > QI_ROPE_ROWS)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image: %lld text tokens after a %lld x %lld "
                       "token grid run past the model's %d RoPE positions; use at most %lld text "
                       "tokens", (long long)text_len, (long long)hp, (long long)wp, QI_ROPE_ROWS,
                       (long long)(QI_ROPE_ROWS - text_pos0(hp, wp)));
    return OG_OK;
}

og_status og_qwenimage_check_layout(const og_qwenimage_config *c, const og_parallel_config *pc,
                                    int64_t hp, int64_t wp, int64_t text_len,
                                    int world_available)
{
    OG_TRY(og_qwenimage_check_request(c, hp, wp, text_len));
    return og_parallel_config_validate(pc, c->heads, hp * wp, world_available);
}

/* ---- weights ------------------------------------------------------------------------------ */

/* One stream of block `blk`: img (to_q, norm_q, img_mod, img_mlp, ...) or txt (add_q_proj,
 * norm_added_q, txt_mod, txt_mlp, ...). */
static og_status load_stream(og_qwenimage *m, int blk, bool img, qi_stream *s)
{
    const int64_t D = m->c.dim, Dh = m->c.head_dim;
    og_weights *w = m->w;
    char k[192];
#define KEY(suffix) (snprintf(k, sizeof k, "transformer_blocks.%d.%s", blk, suffix), k)
    OG_TRY(dit_get_linear(w, KEY(img ? "img_mod.1" : "txt_mod.1"), 6 * D, D, &s->mod));
    OG_TRY(dit_get_linear(w, KEY(img ? "attn.to_q" : "attn.add_q_proj"), D, D, &s->q));
    OG_TRY(dit_get_linear(w, KEY(img ? "attn.to_k" : "attn.add_k_proj"), D, D, &s->k));
    OG_TRY(dit_get_linear(w, KEY(img ? "attn.to_v" : "attn.add_v_proj"), D, D, &s->v));
    OG_TRY(dit_get_linear(w, KEY(img ? "attn.to_out.0" : "attn.to_add_out"), D, D, &s->out));
    OG_TRY(og_weights_vector_f32(w, KEY(img ? "attn.norm_q.weight" : "attn.norm_added_q.weight"),
                                 Dh, &s->norm_q));
    OG_TRY(og_weights_vector_f32(w, KEY(img ? "attn.norm_k.weight" : "attn.norm_added_k.weight"),
                                 Dh, &s->norm_k));
    OG_TRY(dit_get_linear(w, KEY(img ? "img_mlp.net.0.proj" : "txt_mlp.net.0.proj"), 4 * D, D,
                          &s->mlp1));
    OG_TRY(dit_get_linear(w, KEY(img ? "img_mlp.net.2" : "txt_mlp.net.2"), D, 4 * D, &s->mlp2));
#undef KEY
    return OG_OK;
}

static og_status load_weights(og_qwenimage *m)
{
    const og_qwenimage_config *c = &m->c;
    const int64_t D = c->dim;
    og_weights *w = m->w;
    OG_TRY(dit_get_linear(w, "img_in", D, c->in_channels, &m->img_in));
    OG_TRY(og_weights_vector_f32(w, "txt_norm.weight", c->joint_dim, &m->txt_norm));
    OG_TRY(dit_get_linear(w, "txt_in", D, c->joint_dim, &m->txt_in));
    OG_TRY(
        dit_get_linear(w, "time_text_embed.timestep_embedder.linear_1", D, QI_FREQ_DIM, &m->time1));
    OG_TRY(dit_get_linear(w, "time_text_embed.timestep_embedder.linear_2", D, D, &m->time2));
    OG_TRY(dit_get_linear(w, "norm_out.linear", 2 * D, D, &m->norm_out));
    OG_TRY(dit_get_linear(w, "proj_out", (int64_t)c->out_channels * c->patch * c->patch, D,
                          &m->proj_out));
    m->blocks = calloc((size_t)(c->n_layers > 0 ? c->n_layers : 1), sizeof *m->blocks);
    if (!m->blocks)
        return og_fail(OG_ERR_OOM, "cannot allocate %d block descriptors", c->n_layers);
    for (int i = 0; i < c->n_layers; i++) {
        OG_TRY(load_stream(m, i, true, &m->blocks[i].img));
        OG_TRY(load_stream(m, i, false, &m->blocks[i].txt));
    }
    return OG_OK;
}

og_status og_qwenimage_load(og_qwenimage **out, const char *transformer_dir)
{
    *out = NULL;
    og_qwenimage *m = calloc(1, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "cannot allocate the Qwen-Image transformer");
    og_status st = og_qwenimage_read_config(transformer_dir, &m->c);
    if (st == OG_OK)
        st = og_weights_open_dir(&m->w, transformer_dir);
    if (st == OG_OK)
        st = load_weights(m);
    if (st != OG_OK) {
        og_qwenimage_free(m);
        return og_fail_context(st, "loading the Qwen-Image transformer from %s",
                               transformer_dir);
    }
    *out = m;
    return OG_OK;
}

void og_qwenimage_free(og_qwenimage *m)
{
    if (!m)
        return;
    free(m->blocks);
    og_weights_free(m->w);
    free(m);
}

const og_qwenimage_config *og_qwenimage_get_config(const og_qwenimage *m)
{
    return &m->c;
}

/* ---- scratch plan ------------------------------------------------------------------------- */

/* This rank's image tokens: og_shard_range of the hp·wp grid. */
typedef struct {
    int64_t hp, wp, N; /* the grid and its token count */
    int P;
    int64_t off, n;
} qi_shard;

static qi_shard shard_for(int64_t hp, int64_t wp, og_sp *sp)
{
    qi_shard s = {.hp = hp, .wp = wp, .N = hp * wp, .P = sp ? og_sp_size(sp) : 1, .off = 0,
                  .n = hp * wp};
    if (s.P > 1)
        og_shard_range(s.N, s.P, og_sp_rank(sp), &s.off, &s.n);
    return s;
}

/* Joint attention over sq queries and skv keys, q/k/v/out [tokens, dim]. */
static og_attn_desc attn_desc(const og_qwenimage_config *c, int64_t sq, int64_t skv)
{
    return dit_attn_desc(c->heads, c->head_dim, sq, skv);
}

static int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

/* One block's buffers: two modulations [6 dim], xn, q, k, v, o [T + n, dim], hid [max(n, T),
 * 4 dim]. */
static size_t block_buffers(const og_qwenimage_config *c, int64_t n, int64_t T)
{
    return 2 * dit_fbytes(6 * c->dim) + 5 * dit_fbytes((T + n) * c->dim) +
           dit_fbytes(max_i64(n, T) * 4 * c->dim);
}

static size_t stream_ops(const qi_stream *s, int64_t rows)
{
    const dit_linear *ls[] = {&s->q, &s->k, &s->v, &s->out, &s->mlp1, &s->mlp2};
    size_t ops = dit_linear_bytes(&s->mod, 1);
    for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++)
        ops = dit_max_bytes(ops, dit_linear_bytes(ls[i], rows));
    return ops;
}

size_t og_qwenimage_scratch_bytes(const og_qwenimage *m, int64_t hp, int64_t wp,
                                  int64_t text_len, og_sp *sp)
{
    const og_qwenimage_config *c = &m->c;
    if (og_qwenimage_check_request(c, hp, wp, text_len) != OG_OK)
        return 0; /* the forward reports the error */
    const qi_shard s = shard_for(hp, wp, sp);
    const int64_t D = c->dim, T = text_len, half = c->head_dim / 2;
    const int64_t Po = (int64_t)c->out_channels * c->patch * c->patch;
    /* Held through the forward: temb, SiLU(temb), the text stream, x, both RoPE tables. */
    size_t persist = 2 * dit_fbytes(D) + dit_fbytes(T * D) + dit_fbytes(s.n * D) +
                     2 * dit_fbytes(T * half) + 2 * dit_fbytes(s.n * half);
    /* Phases, each released before the next: time conditioning, text embedding, image
     * embedding, the blocks, the output layer. */
    size_t time = dit_fbytes(QI_FREQ_DIM) + dit_fbytes(D) +
                  dit_max_bytes(dit_linear_bytes(&m->time1, 1), dit_linear_bytes(&m->time2, 1));
    size_t text = dit_fbytes(T * c->joint_dim) + dit_linear_bytes(&m->txt_in, T);
    size_t image = dit_linear_bytes(&m->img_in, s.n);
    const og_attn_desc joint = attn_desc(c, T + s.n, T + s.n);
    size_t attn = s.P > 1 ? og_sp_attention_scratch_bytes(sp, s.N, c->heads, c->head_dim, T)
                          : og_attention_scratch_bytes(&joint);
    size_t blocks = 0;
    for (int i = 0; i < c->n_layers; i++)
        blocks = dit_max_bytes(
            blocks, dit_max_bytes(attn, dit_max_bytes(stream_ops(&m->blocks[i].img, s.n),
                                                      stream_ops(&m->blocks[i].txt, T))));
    blocks += block_buffers(c, s.n, T);
    size_t final =
        dit_fbytes(2 * D) + dit_fbytes(s.n * D) + (s.P > 1 ? dit_fbytes(s.n * Po) : 0) +
        dit_max_bytes(dit_linear_bytes(&m->norm_out, 1), dit_linear_bytes(&m->proj_out, s.n));
    size_t phase = dit_max_bytes(dit_max_bytes(time, text),
                                 dit_max_bytes(image, dit_max_bytes(blocks, final)));
    return persist + phase;
}

/* ---- forward ------------------------------------------------------------------------------- */

/* temb [dim] and SiLU(temb) of the model's timestep σ: the reference's Timesteps(256,
 * flip_sin_to_cos, shift 0, scale 1000) rounded step by step in f32, then linear_1 SiLU linear_2. */
static og_status time_conditioning(const og_qwenimage *m, float sigma, dit_allocator *al,
                                   float *temb, float *stemb)
{
    const int64_t D = m->c.dim;
    const int half = QI_FREQ_DIM / 2;
    float *freq = dit_alloc_f(al, QI_FREQ_DIM), *h = dit_alloc_f(al, D);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Qwen-Image time conditioning");
    const float neg_log = (float)-log(10000.0);
    for (int i = 0; i < half; i++) {
        const float f = expf(neg_log * (float)i / (float)half);
        const float arg = 1000.0f * (sigma * f);
        freq[i] = (float)cos((double)arg);
        freq[half + i] = (float)sin((double)arg);
    }
    OG_TRY(dit_linear_run(h, freq, 1, &m->time1, al->a));
    og_silu(h, D);
    OG_TRY(dit_linear_run(temb, h, 1, &m->time2, al->a));
    memcpy(stemb, temb, (size_t)D * sizeof(float));
    og_silu(stemb, D);
    return OG_OK;
}

/* cos/sin [half] of one token at positions pos[3]: the reference's f32 frequencies and angles. */
static void rope_row(const og_qwenimage_config *c, const int64_t pos[3], float *cos_t,
                     float *sin_t)
{
    int k = 0;
    for (int a = 0; a < 3; a++)
        for (int i = 0; i < c->axes[a] / 2; i++, k++) {
            const float f = 1.0f / powf(10000.0f, (float)(2 * i) / (float)c->axes[a]);
            const float ang = (float)pos[a] * f;
            cos_t[k] = (float)cos((double)ang);
            sin_t[k] = (float)sin((double)ang);
        }
}

/* The unmasked text tokens through txt_norm and txt_in into txt [T, dim], with their RoPE
 * tables (positions from their index in the full text). */
static og_status embed_text(const og_qwenimage *m, const qi_shard *s, const float *text,
                            const uint8_t *mask, int64_t L, int64_t T, dit_allocator *al,
                            float *txt, float *cos_t, float *sin_t)
{
    const og_qwenimage_config *c = &m->c;
    const int64_t J = c->joint_dim, half = c->head_dim / 2, p0 = text_pos0(s->hp, s->wp);
    float *rows = dit_alloc_f(al, T * J);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Qwen-Image text embedding");
    for (int64_t i = 0, t = 0; i < L; i++) {
        if (mask && !mask[i])
            continue;
        memcpy(rows + t * J, text + i * J, (size_t)J * sizeof(float));
        const int64_t pos[3] = {p0 + i, p0 + i, p0 + i};
        rope_row(c, pos, cos_t + t * half, sin_t + t * half);
        t++;
    }
    og_rmsnorm(rows, rows, m->txt_norm, T, J, QI_EPS);
    return dit_linear_run(txt, rows, T, &m->txt_in, al->a);
}

/* RoPE tables [n, half] of this rank's image tokens: centred rows and columns. */
static void image_rope(const og_qwenimage_config *c, const qi_shard *s, float *cos_t,
                       float *sin_t)
{
    const int64_t half = c->head_dim / 2;
#pragma omp parallel for if (s->n * half > 16384)
    for (int64_t j = 0; j < s->n; j++) {
        const int64_t g = s->off + j;
        const int64_t pos[3] = {0, g / s->wp - (s->hp - s->hp / 2),
                                g % s->wp - (s->wp - s->wp / 2)};
        rope_row(c, pos, cos_t + j * half, sin_t + j * half);
    }
}

/* y = proj(x) with per-head RMSNorm and RoPE: one stream's q or k. */
static og_status project_qk(const og_qwenimage_config *c, const dit_linear *l, const float *norm,
                            float *y, const float *x, int64_t rows, const float *cos_t,
                            const float *sin_t, og_arena *scratch)
{
    OG_TRY(dit_linear_run(y, x, rows, l, scratch));
    og_rmsnorm(y, y, norm, rows * c->heads, c->head_dim, QI_EPS);
    og_rope_interleaved(y, rows, c->heads, c->head_dim, c->dim, cos_t, sin_t);
    return OG_OK;
}

/* Buffers of one block: joint [T + n, dim] rows, text first. */
typedef struct {
    float *xn, *q, *k, *v, *o, *hid;
} qi_joint;

/* One stream's modulated input and its q, k, v into rows [row0, row0 + rows) of the joint
 * buffers. mod = s_mod.1(SiLU(temb)). */
static og_status stream_qkv(const og_qwenimage_config *c, const qi_stream *st, const float *mod,
                            const float *x, int64_t rows, int64_t row0, const float *cos_t,
                            const float *sin_t, const qi_joint *j, og_arena *a)
{
    const int64_t D = c->dim, at = row0 * D;
    og_layernorm(j->xn + at, x, NULL, NULL, rows, D, QI_EPS);
    og_modulate(j->xn + at, j->xn + at, mod + D, mod, rows, D);
    OG_TRY(project_qk(c, &st->q, st->norm_q, j->q + at, j->xn + at, rows, cos_t, sin_t, a));
    OG_TRY(project_qk(c, &st->k, st->norm_k, j->k + at, j->xn + at, rows, cos_t, sin_t, a));
    return dit_linear_run(j->v + at, j->xn + at, rows, &st->v, a);
}

/* The rest of one stream after attention: gated output projection, then the gated MLP. */
static og_status stream_finish(const og_qwenimage_config *c, const qi_stream *st,
                               const float *mod, float *x, int64_t rows, int64_t row0,
                               const qi_joint *j, og_arena *a)
{
    const int64_t D = c->dim, at = row0 * D;
    float *y = j->xn + at;
    OG_TRY(dit_linear_run(y, j->o + at, rows, &st->out, a));
    og_gated_residual(x, y, mod + 2 * D, rows, D);
    og_layernorm(y, x, NULL, NULL, rows, D, QI_EPS);
    og_modulate(y, y, mod + 4 * D, mod + 3 * D, rows, D);
    OG_TRY(dit_linear_run(j->hid, y, rows, &st->mlp1, a));
    og_gelu_tanh(j->hid, rows * 4 * D);
    OG_TRY(dit_linear_run(y, j->hid, rows, &st->mlp2, a));
    og_gated_residual(x, y, mod + 5 * D, rows, D);
    return OG_OK;
}

typedef struct {
    const float *img_cos, *img_sin, *txt_cos, *txt_sin;
} qi_rope;

static og_status block_forward(const og_qwenimage *m, const qi_block *b, const qi_shard *s,
                               og_sp *sp, float *x, float *txt, int64_t T, const float *stemb,
                               const qi_rope *r, dit_allocator *al)
{
    const og_qwenimage_config *c = &m->c;
    const int64_t D = c->dim, n = s->n, J = T + n;
    og_arena *a = al->a;
    float *img_mod = dit_alloc_f(al, 6 * D), *txt_mod = dit_alloc_f(al, 6 * D);
    qi_joint j = {.xn = dit_alloc_f(al, J * D), .q = dit_alloc_f(al, J * D),
                  .k = dit_alloc_f(al, J * D), .v = dit_alloc_f(al, J * D),
                  .o = dit_alloc_f(al, J * D),
                  .hid = dit_alloc_f(al, max_i64(n, T) * 4 * D)};
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Qwen-Image block scratch for %lld + %lld tokens",
                               (long long)T, (long long)n);
    OG_TRY(dit_linear_run(img_mod, stemb, 1, &b->img.mod, a));
    OG_TRY(dit_linear_run(txt_mod, stemb, 1, &b->txt.mod, a));
    OG_TRY(stream_qkv(c, &b->txt, txt_mod, txt, T, 0, r->txt_cos, r->txt_sin, &j, a));
    OG_TRY(stream_qkv(c, &b->img, img_mod, x, n, T, r->img_cos, r->img_sin, &j, a));
    if (s->P > 1) {
        og_sp_attn_args args = {.seq = s->N, .heads = c->heads, .head_dim = c->head_dim,
                                .scale = 1.0f / sqrtf((float)c->head_dim), .q = j.q + T * D,
                                .k = j.k + T * D, .v = j.v + T * D, .out = j.o + T * D,
                                .text_len = T, .text_q = j.q, .text_k = j.k, .text_v = j.v,
                                .text_out = j.o, .scratch = a};
        OG_TRY(og_sp_attention(sp, &args));
    } else {
        const og_attn_desc d = attn_desc(c, J, J);
        OG_TRY(og_attention(&d, j.q, j.k, j.v, j.o, NULL, a));
    }
    OG_TRY(stream_finish(c, &b->img, img_mod, x, n, T, &j, a));
    return stream_finish(c, &b->txt, txt_mod, txt, T, 0, &j, a);
}

/* norm_out (scale, then shift) and proj_out on this rank's tokens, gathered into out. */
static og_status output_layer(const og_qwenimage *m, og_sp *sp, const qi_shard *s, const float *x,
                              const float *stemb, float *out, dit_allocator *al)
{
    const og_qwenimage_config *c = &m->c;
    const int64_t D = c->dim, Po = (int64_t)c->out_channels * c->patch * c->patch, n = s->n;
    float *mod = dit_alloc_f(al, 2 * D), *xn = dit_alloc_f(al, n * D);
    float *local = s->P > 1 ? dit_alloc_f(al, n * Po) : out;
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Qwen-Image output layer");
    OG_TRY(dit_linear_run(mod, stemb, 1, &m->norm_out, al->a));
    og_layernorm(xn, x, NULL, NULL, n, D, QI_EPS);
    og_modulate(xn, xn, mod, mod + D, n, D);
    OG_TRY(dit_linear_run(local, xn, n, &m->proj_out, al->a));
    return s->P > 1 ? og_sp_gather_seq(sp, local, out, s->N, Po) : OG_OK;
}

static og_status forward(og_qwenimage *m, og_sp *sp, const float *tokens, int64_t hp,
                         int64_t wp, float timestep, const float *text, const uint8_t *mask,
                         int64_t L, float *out, og_arena *scratch)
{
    const og_qwenimage_config *c = &m->c;
    if (!tokens || !text || !out || !scratch)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image forward: tokens, text, output and scratch "
                                           "are required");
    if (!isfinite(timestep))
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image forward: timestep %g is not finite",
                       (double)timestep);
    OG_TRY(og_qwenimage_check_request(c, hp, wp, L));
    int64_t T = L;
    if (mask) {
        T = 0;
        for (int64_t i = 0; i < L; i++)
            T += mask[i] != 0;
        if (T == 0)
            return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image forward: the text mask leaves no "
                                               "token (pass at least one unmasked token)");
    }
    const qi_shard s = shard_for(hp, wp, sp);
    const int64_t D = c->dim, half = c->head_dim / 2;
    dit_allocator al = {scratch, false};
    float *temb = dit_alloc_f(&al, D), *stemb = dit_alloc_f(&al, D), *txt = dit_alloc_f(&al, L * D);
    float *x = dit_alloc_f(&al, s.n * D);
    float *tcos = dit_alloc_f(&al, L * half), *tsin = dit_alloc_f(&al, L * half);
    float *icos = dit_alloc_f(&al, s.n * half), *isin = dit_alloc_f(&al, s.n * half);
    if (al.failed)
        return og_fail_context(OG_ERR_OOM, "Qwen-Image forward (size the arena with "
                                           "og_qwenimage_scratch_bytes)");
    const size_t mark = og_arena_mark(scratch);
    OG_TRY(time_conditioning(m, timestep, &al, temb, stemb));
    og_arena_release(scratch, mark);
    OG_TRY(embed_text(m, &s, text, mask, L, T, &al, txt, tcos, tsin));
    og_arena_release(scratch, mark);
    OG_TRY(dit_linear_run(x, tokens + s.off * c->in_channels, s.n, &m->img_in, scratch));
    image_rope(c, &s, icos, isin);
    const qi_rope r = {icos, isin, tcos, tsin};
    for (int i = 0; i < c->n_layers; i++) {
        OG_TRY(block_forward(m, &m->blocks[i], &s, sp, x, txt, T, stemb, &r, &al));
        og_arena_release(scratch, mark);
    }
    return output_layer(m, sp, &s, x, stemb, out, &al);
}

og_status og_qwenimage_forward(og_qwenimage *m, og_sp *sp, const float *tokens, int64_t hp,
                               int64_t wp, float timestep, const float *text,
                               const uint8_t *mask, int64_t text_len, float *out,
                               og_arena *scratch)
{
    if (!m)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image forward: no model");
    const size_t mark = scratch ? og_arena_mark(scratch) : 0;
    og_status st = forward(m, sp, tokens, hp, wp, timestep, text, mask, text_len, out, scratch);
    if (scratch)
        og_arena_release(scratch, mark);
    return st;
}
