/* Z-Image transformer: config, weights, and the forward pass over this rank's tokens.
 *
 * What the reference does (diffusers ZImageTransformer2DModel, basic mode, batch 1):
 *   adaln = t_embedder(t * t_scale)           sinusoid(256, [cos, sin]) -> Linear -> SiLU -> Linear
 *   image: patchify (token (h, w), patch vector (ph, pw, c), c fastest) -> all_x_embedder, padded
 *          to a multiple of 32 with x_pad_token; RoPE positions (cap_pad_len + 1, h, w), pad
 *          tokens (0, 0, 0); noise_refiner (modulated blocks) over the image tokens alone.
 *   caption: RMSNorm -> Linear, padded to a multiple of 32 with cap_pad_token; positions
 *          (1 + i, 0, 0) for EVERY caption row, pad rows included (the reference builds its
 *          position grid over the padded length); context_refiner (unmodulated) over the caption.
 *   unified = [image, caption] through `layers`; final layer (LayerNorm without affine,
 *          * (1 + Linear(SiLU(adaln))), Linear) on the image tokens; unpatchify the real ones.
 *   Pad tokens are attended like any other token: the reference builds no mask for batch 1.
 *
 * Sequence parallelism, with P = U*R ranks and r = this rank's sequence-parallel index:
 *   - Image tokens (img_pad_len of them) are sharded with og_shard_range(img_pad_len, P, r); the
 *     noise_refiner runs on the shard with og_sp_attention over the image sequence.
 *   - The caption refiner is small (cap_pad_len tokens, 2 layers): every rank runs it on the whole
 *     caption with local attention, which needs no exchange at all.
 *   - The unified sequence needs no re-shard either. Attention is permutation-invariant over its
 *     tokens (non-causal, no mask, each token carries its own RoPE angles), so the sharded
 *     sequence is a permutation of [image, caption]: rank r holds its image shard followed by a
 *     caption slice of length u_r - i_r, where u_r = og_shard_range(seq_len, P, r) and i_r its
 *     image shard. Shard lengths then match og_shard_range(seq_len, P, r) exactly, as
 *     og_sp_attention requires, and the caption slices tile the caption in rank order. u_r - i_r is
 *     never negative: with img_pad_len = aP + x and cap_pad_len = bP + l (0 <= x, l < P) it is
 *     b + [r < x + l] - [r < x] when x + l < P, else b + 1 + [r < x + l - P] - [r < x].
 *   - The final layer runs on the image shard; og_sp_gather_seq gathers its [img_pad_len, 64]
 *     output (64 floats per token instead of dim) and every rank unpatchifies the full latent. */
#include "dit/zimage.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "dit/dit_common.h"
#include "dit/zimage_internal.h"
#include "io/diffusers.h"
#include "io/weights.h"


/* ---- config ------------------------------------------------------------------------------- */

static og_status read_int(const og_config *cfg, const char *key, int64_t def, int lo, int *out)
{
    int64_t v;
    OG_TRY(og_config_int_or(cfg, key, def, &v));
    if (v < lo || v > (1 << 24))
        return og_fail(OG_ERR_FORMAT, "%s: %s = %lld is out of range", og_config_path(cfg), key,
                       (long long)v);
    *out = (int)v;
    return OG_OK;
}

static og_status config_finish(og_zimage_config *c, const char *path);

static og_status parse_config(const og_config *cfg, og_zimage_config *c)
{
    const char *path = og_config_path(cfg);
    if (og_config_has(cfg, "_class_name"))
        OG_TRY(og_config_expect_class(cfg, "ZImageTransformer2DModel"));
    *c = (og_zimage_config){0};
    double d;
    OG_TRY(read_int(cfg, "in_channels", 16, 1, &c->in_channels));
    OG_TRY(read_int(cfg, "dim", 3840, 1, &c->dim));
    OG_TRY(read_int(cfg, "n_layers", 30, 0, &c->n_layers));
    OG_TRY(read_int(cfg, "n_refiner_layers", 2, 0, &c->n_refiner_layers));
    OG_TRY(read_int(cfg, "n_heads", 30, 1, &c->n_heads));
    OG_TRY(read_int(cfg, "cap_feat_dim", 2560, 1, &c->cap_feat_dim));
    OG_TRY(og_config_float_or(cfg, "norm_eps", 1e-5, &d));
    c->norm_eps = (float)d;
    OG_TRY(og_config_bool_or(cfg, "qk_norm", true, &c->qk_norm));
    OG_TRY(og_config_float_or(cfg, "rope_theta", 256.0, &c->rope_theta));
    OG_TRY(og_config_float_or(cfg, "t_scale", 1000.0, &d));
    c->t_scale = (float)d;

    int64_t v[8];
    int n;
    static const int64_t def_dims[3] = {32, 48, 48}, def_lens[3] = {1024, 512, 512};
    if (og_config_has(cfg, "axes_dims")) {
        OG_TRY(og_config_int_array(cfg, "axes_dims", v, 8, &n));
        if (n != 3)
            return og_fail(OG_ERR_FORMAT, "%s: axes_dims has %d entries, expected 3", path, n);
    } else {
        memcpy(v, def_dims, sizeof def_dims);
    }
    for (int a = 0; a < 3; a++)
        c->axes_dims[a] = (int)v[a];
    if (og_config_has(cfg, "axes_lens")) {
        OG_TRY(og_config_int_array(cfg, "axes_lens", v, 8, &n));
        if (n != 3)
            return og_fail(OG_ERR_FORMAT, "%s: axes_lens has %d entries, expected 3", path, n);
    } else {
        memcpy(v, def_lens, sizeof def_lens);
    }
    for (int a = 0; a < 3; a++)
        c->axes_lens[a] = (int)v[a];

    /* The pipeline calls forward with its defaults patch_size 2, f_patch_size 1, which the
     * reference asserts are one of the configured (patch, f_patch) pairs. */
    c->patch_size = 2;
    c->f_patch_size = 1;
    int64_t ps[8] = {2}, fps[8] = {1};
    int nps = 1, nfps = 1;
    if (og_config_has(cfg, "all_patch_size"))
        OG_TRY(og_config_int_array(cfg, "all_patch_size", ps, 8, &nps));
    if (og_config_has(cfg, "all_f_patch_size"))
        OG_TRY(og_config_int_array(cfg, "all_f_patch_size", fps, 8, &nfps));
    bool found = false;
    for (int i = 0; i < nps && i < nfps; i++)
        found |= ps[i] == c->patch_size && fps[i] == c->f_patch_size;
    if (!found)
        return og_fail(OG_ERR_UNSUPPORTED,
                       "%s: no (patch 2, f_patch 1) embedder, which the pipeline uses", path);

    return config_finish(c, path);
}

/* The derived fields (head_dim, ffn_dim, adaln_dim) and the checks every config passes. */
static og_status config_finish(og_zimage_config *c, const char *path)
{
    if (c->dim < 1 || c->n_heads < 1 || c->n_layers < 0 || c->n_refiner_layers < 0 ||
        c->in_channels < 1 || c->cap_feat_dim < 1 || c->patch_size != 2 || c->f_patch_size != 1)
        return og_fail(OG_ERR_FORMAT, "%s: dim, n_heads, in_channels and cap_feat_dim must be "
                       "positive, layer counts non-negative, the patch (2, 1)", path);
    if (c->dim % c->n_heads)
        return og_fail(OG_ERR_FORMAT, "%s: dim %d is not divisible by n_heads %d", path, c->dim,
                       c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    int sum = 0;
    for (int a = 0; a < 3; a++) {
        if (c->axes_dims[a] < 0 || c->axes_dims[a] % 2 || c->axes_lens[a] < 1)
            return og_fail(OG_ERR_FORMAT, "%s: bad axes_dims/axes_lens entry %d", path, a);
        sum += c->axes_dims[a];
    }
    if (sum != c->head_dim)
        return og_fail(OG_ERR_FORMAT, "%s: axes_dims sum to %d, but head_dim is %d", path, sum,
                       c->head_dim);
    c->ffn_dim = (int)((double)c->dim / 3.0 * 8.0); /* int(dim / 3 * 8), as the reference */
    c->adaln_dim = c->dim < 256 ? c->dim : 256;
    return OG_OK;
}

og_status og_zimage_read_config(const char *transformer_dir, og_zimage_config *out)
{
    og_config *cfg;
    OG_TRY(dit_config_open(transformer_dir, &cfg));
    og_status st = parse_config(cfg, out);
    og_config_free(cfg);
    return st;
}

og_zimage_config og_zimage_config_default(void)
{
    og_zimage_config c = {.in_channels = 16, .dim = 3840, .n_layers = 30, .n_refiner_layers = 2,
                          .n_heads = 30, .norm_eps = 1e-5f, .qk_norm = true, .cap_feat_dim = 2560,
                          .rope_theta = 256.0, .t_scale = 1000.0f, .axes_dims = {32, 48, 48},
                          .axes_lens = {1536, 512, 512}, .patch_size = 2, .f_patch_size = 1};
    config_finish(&c, "the default Z-Image config"); /* cannot fail: the values above pass */
    return c;
}

og_status og_zimage_config_finish(og_zimage_config *c)
{
    return config_finish(c, "Z-Image config");
}

/* ---- token counts and the sequence layout -------------------------------------------------- */

static int64_t pad32(int64_t n)
{
    return n + (-n % OG_ZIMAGE_SEQ_MULTIPLE + OG_ZIMAGE_SEQ_MULTIPLE) % OG_ZIMAGE_SEQ_MULTIPLE;
}

og_status og_zimage_tokens_for(const og_zimage_config *c, int64_t lat_h, int64_t lat_w,
                               int64_t cap_len, og_zimage_tokens *out)
{
    int p = c->patch_size;
    if (lat_h < p || lat_w < p || lat_h % p || lat_w % p)
        return og_fail(OG_ERR_INVALID_ARG,
                       "Z-Image latents %lld x %lld: both sides must be positive multiples of the "
                       "patch size %d (image sides multiples of 16 pixels)",
                       (long long)lat_h, (long long)lat_w, p);
    if (cap_len < 1)
        return og_fail(OG_ERR_INVALID_ARG, "Z-Image needs at least one caption token");
    og_zimage_tokens t;
    t.h_tokens = lat_h / p;
    t.w_tokens = lat_w / p;
    t.img_len = t.h_tokens * t.w_tokens;
    t.img_pad_len = pad32(t.img_len);
    t.cap_len = cap_len;
    t.cap_pad_len = pad32(cap_len);
    t.seq_len = t.img_pad_len + t.cap_pad_len;
    /* Positions index the reference's RoPE tables of axes_lens rows: caption frames run to
     * cap_pad_len, the image frame is cap_pad_len + 1. */
    if (t.cap_pad_len + 1 >= c->axes_lens[0] || t.h_tokens > c->axes_lens[1] ||
        t.w_tokens > c->axes_lens[2])
        return og_fail(OG_ERR_INVALID_ARG,
                       "Z-Image request too large for the model's RoPE tables: %lld caption tokens "
                       "(padded %lld, limit %d) and %lld x %lld image tokens (limits %d x %d)",
                       (long long)cap_len, (long long)t.cap_pad_len, c->axes_lens[0] - 2,
                       (long long)t.h_tokens, (long long)t.w_tokens, c->axes_lens[1],
                       c->axes_lens[2]);
    *out = t;
    return OG_OK;
}


static void shard(int64_t S, int P, int r, int64_t *off, int64_t *len)
{
    if (P == 1) {
        *off = 0;
        *len = S;
    } else {
        og_shard_range(S, P, r, off, len);
    }
}

zimage_split zimage_split_for(const og_zimage_tokens *t, int P, int r)
{
    zimage_split s = {.P = P, .r = r};
    for (int q = 0; q <= r; q++) {
        int64_t io, in, uo, un;
        shard(t->img_pad_len, P, q, &io, &in);
        shard(t->seq_len, P, q, &uo, &un);
        if (q < r)
            s.cap_off += un - in;
        s.img_off = io;
        s.img_n = in;
        s.cap_n = un - in;
        s.uni_n = un;
    }
    return s;
}

og_status og_zimage_check_layout(const og_zimage_config *c, const og_parallel_config *pc,
                                 int64_t lat_h, int64_t lat_w, int64_t cap_len,
                                 int world_available)
{
    og_zimage_tokens t = {0};
    OG_TRY(og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t));
    return og_parallel_config_validate(pc, c->n_heads, t.img_pad_len, world_available);
}

/* ---- weights ------------------------------------------------------------------------------ */

static og_status get_matrix(og_weights *w, const char *name, int64_t rows, int64_t cols,
                            og_tensor *out)
{
    OG_TRY(og_weights_expect(w, name, 2, (int64_t[]){rows, cols}, out));
    if (out->dtype != OG_F32 && out->dtype != OG_BF16 && out->dtype != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "%s in %s: dtype %s (expected f32, bf16 or f16)", name,
                       og_weights_source(w), og_dtype_name(out->dtype));
    return OG_OK;
}

/* Packs the stacked rows of n weight matrices (f32 or bf16, K columns each) for the bf16
 * precision, through one bf16 buffer. */
static og_status pack_stacked(og_packed_weights **out, const og_tensor *const *src, int n,
                              int64_t K)
{
    int64_t rows = 0;
    for (int i = 0; i < n; i++)
        rows += src[i]->shape[0];
    uint16_t *buf = malloc((size_t)(rows * K) * sizeof *buf), *p = buf;
    if (!buf)
        return og_fail(OG_ERR_OOM, "cannot allocate %lld x %lld bf16 weights", (long long)rows,
                       (long long)K);
    for (int i = 0; i < n; i++) {
        size_t count = (size_t)og_tensor_numel(src[i]);
        if (src[i]->dtype == OG_BF16)
            memcpy(p, src[i]->data, count * sizeof *p);
        else
            og_from_f32(p, OG_BF16, src[i]->data, count);
        p += count;
    }
    og_status st = og_pack_weights_bf16(out, buf, OG_BF16, rows, K);
    free(buf);
    return st;
}

/* The block's packed weights for the bf16 GEMM precision (see zimage_block.bf16). A block with
 * f16 weights keeps them: og_linear runs f16 on the exact path in either precision. */
static og_status block_pack_bf16(const og_zimage_config *c, zimage_block *b)
{
    const og_tensor *all[7] = {&b->to_q, &b->to_k, &b->to_v, &b->w1, &b->w3, &b->to_out, &b->w2};
    for (int i = 0; i < 7; i++)
        if (all[i]->dtype == OG_F16)
            return OG_OK;
    OG_TRY(pack_stacked(&b->bf16.qkv, all, 3, c->dim));
    OG_TRY(pack_stacked(&b->bf16.w13, all + 3, 2, c->dim));
    OG_TRY(pack_stacked(&b->bf16.out, all + 5, 1, c->dim));
    return pack_stacked(&b->bf16.w2, all + 6, 1, c->ffn_dim);
}

static og_status load_block(og_zimage *m, const char *prefix, bool modulated, zimage_block *b)
{
    const og_zimage_config *c = &m->c;
    og_weights *w = m->w;
    char k[256];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", prefix, suffix), k)
    b->modulated = modulated;
    OG_TRY(get_matrix(w, KEY("attention.to_q.weight"), c->dim, c->dim, &b->to_q));
    OG_TRY(get_matrix(w, KEY("attention.to_k.weight"), c->dim, c->dim, &b->to_k));
    OG_TRY(get_matrix(w, KEY("attention.to_v.weight"), c->dim, c->dim, &b->to_v));
    OG_TRY(get_matrix(w, KEY("attention.to_out.0.weight"), c->dim, c->dim, &b->to_out));
    if (c->qk_norm) {
        OG_TRY(og_weights_vector_f32(w, KEY("attention.norm_q.weight"), c->head_dim, &b->norm_q));
        OG_TRY(og_weights_vector_f32(w, KEY("attention.norm_k.weight"), c->head_dim, &b->norm_k));
    }
    OG_TRY(get_matrix(w, KEY("feed_forward.w1.weight"), c->ffn_dim, c->dim, &b->w1));
    OG_TRY(get_matrix(w, KEY("feed_forward.w2.weight"), c->dim, c->ffn_dim, &b->w2));
    OG_TRY(get_matrix(w, KEY("feed_forward.w3.weight"), c->ffn_dim, c->dim, &b->w3));
    OG_TRY(og_weights_vector_f32(w, KEY("attention_norm1.weight"), c->dim, &b->attention_norm1));
    OG_TRY(og_weights_vector_f32(w, KEY("attention_norm2.weight"), c->dim, &b->attention_norm2));
    OG_TRY(og_weights_vector_f32(w, KEY("ffn_norm1.weight"), c->dim, &b->ffn_norm1));
    OG_TRY(og_weights_vector_f32(w, KEY("ffn_norm2.weight"), c->dim, &b->ffn_norm2));
    if (modulated) {
        OG_TRY(get_matrix(w, KEY("adaLN_modulation.0.weight"), 4 * (int64_t)c->dim, c->adaln_dim,
                          &b->ada_w));
        OG_TRY(og_weights_vector_f32(w, KEY("adaLN_modulation.0.bias"), 4 * (int64_t)c->dim,
                                     &b->ada_b));
    }
#undef KEY
    if (og_gemm_get_precision() == OG_GEMM_BF16)
        OG_TRY(block_pack_bf16(c, b));
    return OG_OK;
}

static og_status load_blocks(og_zimage *m, const char *group, int n, bool modulated,
                             zimage_block **out)
{
    *out = calloc((size_t)(n > 0 ? n : 1), sizeof **out);
    if (!*out)
        return og_fail(OG_ERR_OOM, "cannot allocate %d block descriptors", n);
    char prefix[64];
    for (int i = 0; i < n; i++) {
        snprintf(prefix, sizeof prefix, "%s.%d", group, i);
        OG_TRY(load_block(m, prefix, modulated, &(*out)[i]));
    }
    return OG_OK;
}

static og_status load_weights(og_zimage *m)
{
    const og_zimage_config *c = &m->c;
    og_weights *w = m->w;
    int64_t patch_dim = (int64_t)c->f_patch_size * c->patch_size * c->patch_size * c->in_channels;
    og_tensor t;
    OG_TRY(og_weights_expect(w, "t_embedder.mlp.0.weight", 2, (int64_t[]){-1, -1}, &t));
    m->t_mid_dim = (int)t.shape[0];
    m->t_freq_dim = (int)t.shape[1];
    if (m->t_freq_dim % 2)
        return og_fail(OG_ERR_SHAPE, "t_embedder.mlp.0.weight: odd sinusoid width %d",
                       m->t_freq_dim);
    OG_TRY(get_matrix(w, "t_embedder.mlp.0.weight", m->t_mid_dim, m->t_freq_dim, &m->t_w0));
    OG_TRY(og_weights_vector_f32(w, "t_embedder.mlp.0.bias", m->t_mid_dim, &m->t_b0));
    OG_TRY(get_matrix(w, "t_embedder.mlp.2.weight", c->adaln_dim, m->t_mid_dim, &m->t_w2));
    OG_TRY(og_weights_vector_f32(w, "t_embedder.mlp.2.bias", c->adaln_dim, &m->t_b2));
    OG_TRY(og_weights_vector_f32(w, "cap_embedder.0.weight", c->cap_feat_dim, &m->cap_norm));
    OG_TRY(get_matrix(w, "cap_embedder.1.weight", c->dim, c->cap_feat_dim, &m->cap_w));
    OG_TRY(og_weights_vector_f32(w, "cap_embedder.1.bias", c->dim, &m->cap_b));
    OG_TRY(get_matrix(w, "all_x_embedder.2-1.weight", c->dim, patch_dim, &m->x_emb_w));
    OG_TRY(og_weights_vector_f32(w, "all_x_embedder.2-1.bias", c->dim, &m->x_emb_b));
    OG_TRY(og_weights_vector_f32(w, "x_pad_token", c->dim, &m->x_pad_token));
    OG_TRY(og_weights_vector_f32(w, "cap_pad_token", c->dim, &m->cap_pad_token));
    OG_TRY(get_matrix(w, "all_final_layer.2-1.linear.weight", patch_dim, c->dim, &m->fin_w));
    OG_TRY(og_weights_vector_f32(w, "all_final_layer.2-1.linear.bias", patch_dim, &m->fin_b));
    OG_TRY(get_matrix(w, "all_final_layer.2-1.adaLN_modulation.1.weight", c->dim, c->adaln_dim,
                      &m->fin_ada_w));
    OG_TRY(og_weights_vector_f32(w, "all_final_layer.2-1.adaLN_modulation.1.bias", c->dim,
                                 &m->fin_ada_b));
    OG_TRY(load_blocks(m, "noise_refiner", c->n_refiner_layers, true, &m->noise_refiner));
    OG_TRY(load_blocks(m, "context_refiner", c->n_refiner_layers, false, &m->context_refiner));
    OG_TRY(load_blocks(m, "layers", c->n_layers, true, &m->layers));
    return OG_OK;
}

og_status og_zimage_load(og_zimage **out, const char *transformer_dir)
{
    *out = NULL;
    og_zimage *m = calloc(1, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "cannot allocate the Z-Image model");
    og_status st = og_zimage_read_config(transformer_dir, &m->c);
    if (st == OG_OK)
        st = og_weights_open_dir(&m->w, transformer_dir);
    if (st == OG_OK)
        st = load_weights(m);
    if (st != OG_OK) {
        og_zimage_free(m);
        return og_fail_context(st, "loading the Z-Image transformer from %s", transformer_dir);
    }
    *out = m;
    return OG_OK;
}

void og_zimage_free(og_zimage *m)
{
    if (!m)
        return;
    zimage_block *groups[3] = {m->noise_refiner, m->context_refiner, m->layers};
    int counts[3] = {m->c.n_refiner_layers, m->c.n_refiner_layers, m->c.n_layers};
    for (int g = 0; g < 3; g++) {
        for (int i = 0; groups[g] && i < counts[g]; i++) {
            og_packed_weights_free(groups[g][i].bf16.qkv);
            og_packed_weights_free(groups[g][i].bf16.w13);
            og_packed_weights_free(groups[g][i].bf16.out);
            og_packed_weights_free(groups[g][i].bf16.w2);
        }
        free(groups[g]);
    }
    og_weights_free(m->w);
    free(m->random_mem);
    free(m);
}

/* ---- random weights ------------------------------------------------------------------------ */

/* Lays the random model's tensors out in one block: the first pass (base NULL) only counts the
 * bytes, the second fills them. Every tensor draws from its own counter-based stream, so values
 * do not depend on the thread count. */
typedef struct {
    char *base;
    size_t at;
    uint64_t seed, id;
    og_dtype dtype; /* of the matrices */
} rnd_maker;

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1): element i of stream `key`. */
static float rnd_unit(uint64_t key, uint64_t i)
{
    return (float)((double)(mix64(key + i * 0x9E3779B97F4A7C15ull) >> 40) * 0x1p-23 - 1.0);
}

static void *rnd_place(rnd_maker *mk, size_t bytes)
{
    const size_t at = mk->at;
    mk->at += (bytes + 63) & ~(size_t)63;
    return mk->base ? mk->base + at : NULL;
}

/* n values of center + U(-half, half) converted to dt, into dst. */
static void rnd_fill(rnd_maker *mk, void *dst, og_dtype dt, int64_t n, float center, float half)
{
    const uint64_t key = mix64(mk->seed ^ mix64(++mk->id));
    if (!dst)
        return;
    const int64_t chunk = 4096, es = (int64_t)og_dtype_size(dt);
#pragma omp parallel for schedule(static)
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
        float tmp[4096];
        const int64_t m = n - c0 < chunk ? n - c0 : chunk;
        for (int64_t i = 0; i < m; i++)
            tmp[i] = center + half * rnd_unit(key, (uint64_t)(c0 + i));
        og_from_f32((char *)dst + c0 * es, dt, tmp, (size_t)m);
    }
}

static float *rnd_vec(rnd_maker *mk, int64_t n, float center, float half)
{
    float *v = rnd_place(mk, (size_t)n * sizeof(float));
    rnd_fill(mk, v, OG_F32, n, center, half);
    return v;
}

/* [rows, cols] with standard deviation 1 / sqrt(cols), the fan-in. */
static og_tensor rnd_matrix(rnd_maker *mk, int64_t rows, int64_t cols)
{
    void *p = rnd_place(mk, (size_t)(rows * cols) * og_dtype_size(mk->dtype));
    rnd_fill(mk, p, mk->dtype, rows * cols, 0.0f, sqrtf(3.0f / (float)cols));
    return og_tensor_make(p, mk->dtype, 2, (int64_t[]){rows, cols});
}

static void rnd_block(rnd_maker *mk, const og_zimage_config *c, bool modulated, zimage_block *b)
{
    const int64_t D = c->dim, F = c->ffn_dim;
    b->modulated = modulated;
    b->to_q = rnd_matrix(mk, D, D);
    b->to_k = rnd_matrix(mk, D, D);
    b->to_v = rnd_matrix(mk, D, D);
    b->to_out = rnd_matrix(mk, D, D);
    if (c->qk_norm) {
        b->norm_q = rnd_vec(mk, c->head_dim, 1.0f, 0.1f);
        b->norm_k = rnd_vec(mk, c->head_dim, 1.0f, 0.1f);
    }
    b->w1 = rnd_matrix(mk, F, D);
    b->w2 = rnd_matrix(mk, D, F);
    b->w3 = rnd_matrix(mk, F, D);
    b->attention_norm1 = rnd_vec(mk, D, 1.0f, 0.1f);
    b->attention_norm2 = rnd_vec(mk, D, 1.0f, 0.1f);
    b->ffn_norm1 = rnd_vec(mk, D, 1.0f, 0.1f);
    b->ffn_norm2 = rnd_vec(mk, D, 1.0f, 0.1f);
    if (modulated) {
        b->ada_w = rnd_matrix(mk, 4 * D, c->adaln_dim);
        b->ada_b = rnd_vec(mk, 4 * D, 0.0f, 0.1f);
    }
}

static void rnd_model(rnd_maker *mk, og_zimage *m)
{
    const og_zimage_config *c = &m->c;
    const int64_t D = c->dim, patch_dim = (int64_t)c->patch_size * c->patch_size *
                                          c->f_patch_size * c->in_channels;
    m->t_w0 = rnd_matrix(mk, m->t_mid_dim, m->t_freq_dim);
    m->t_b0 = rnd_vec(mk, m->t_mid_dim, 0.0f, 0.1f);
    m->t_w2 = rnd_matrix(mk, c->adaln_dim, m->t_mid_dim);
    m->t_b2 = rnd_vec(mk, c->adaln_dim, 0.0f, 0.1f);
    m->cap_norm = rnd_vec(mk, c->cap_feat_dim, 1.0f, 0.1f);
    m->cap_w = rnd_matrix(mk, D, c->cap_feat_dim);
    m->cap_b = rnd_vec(mk, D, 0.0f, 0.1f);
    m->x_emb_w = rnd_matrix(mk, D, patch_dim);
    m->x_emb_b = rnd_vec(mk, D, 0.0f, 0.1f);
    m->x_pad_token = rnd_vec(mk, D, 0.0f, 1.0f);
    m->cap_pad_token = rnd_vec(mk, D, 0.0f, 1.0f);
    m->fin_w = rnd_matrix(mk, patch_dim, D);
    m->fin_b = rnd_vec(mk, patch_dim, 0.0f, 0.1f);
    m->fin_ada_w = rnd_matrix(mk, D, c->adaln_dim);
    m->fin_ada_b = rnd_vec(mk, D, 0.0f, 0.1f);
    for (int i = 0; i < c->n_refiner_layers; i++)
        rnd_block(mk, c, true, &m->noise_refiner[i]);
    for (int i = 0; i < c->n_refiner_layers; i++)
        rnd_block(mk, c, false, &m->context_refiner[i]);
    for (int i = 0; i < c->n_layers; i++)
        rnd_block(mk, c, true, &m->layers[i]);
}

og_status og_zimage_random(og_zimage **out, const og_zimage_config *config, uint64_t seed,
                           og_dtype dtype)
{
    *out = NULL;
    if (dtype != OG_F32 && dtype != OG_BF16)
        return og_fail(OG_ERR_INVALID_ARG, "random Z-Image: weights are f32 or bf16, not %s",
                       og_dtype_name(dtype));
    og_zimage *m = calloc(1, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "cannot allocate the Z-Image model");
    m->c = *config;
    og_status st = og_zimage_config_finish(&m->c);
    const og_zimage_config *c = &m->c;
    m->t_freq_dim = 256; /* diffusers' TimestepEmbedder: 256 sinusoid channels, 1024 hidden */
    m->t_mid_dim = 1024;
    const size_t nr = (size_t)(c->n_refiner_layers > 0 ? c->n_refiner_layers : 1);
    if (st == OG_OK) {
        m->noise_refiner = calloc(nr, sizeof *m->noise_refiner);
        m->context_refiner = calloc(nr, sizeof *m->context_refiner);
        m->layers = calloc((size_t)(c->n_layers > 0 ? c->n_layers : 1), sizeof *m->layers);
        if (!m->noise_refiner || !m->context_refiner || !m->layers)
            st = og_fail(OG_ERR_OOM, "cannot allocate the block descriptors");
    }
    rnd_maker mk = {.seed = seed, .dtype = dtype};
    if (st == OG_OK) {
        rnd_model(&mk, m); /* counts */
        m->random_mem = aligned_alloc(64, mk.at);
        if (!m->random_mem)
            st = og_fail(OG_ERR_OOM, "random Z-Image: cannot allocate %zu MiB of weights",
                         mk.at >> 20);
    }
    if (st == OG_OK) {
        mk = (rnd_maker){.base = m->random_mem, .seed = seed, .dtype = dtype};
        rnd_model(&mk, m);
    }
    /* As og_zimage_load: the bf16 GEMM precision runs on packed copies. */
    zimage_block *groups[3] = {m->noise_refiner, m->context_refiner, m->layers};
    const int counts[3] = {c->n_refiner_layers, c->n_refiner_layers, c->n_layers};
    for (int g = 0; g < 3 && og_gemm_get_precision() == OG_GEMM_BF16; g++)
        for (int i = 0; st == OG_OK && i < counts[g]; i++)
            st = block_pack_bf16(c, &groups[g][i]);
    if (st != OG_OK) {
        og_zimage_free(m);
        return st;
    }
    *out = m;
    return OG_OK;
}

/* ---- FLOP count ---------------------------------------------------------------------------- */

/* One block over n tokens: q, k, v, out, w1 | w3 and w2 GEMMs and attention's two products. */
static double block_flops(const og_zimage_config *c, int64_t n)
{
    const double D = c->dim, F = c->ffn_dim, N = (double)n;
    return 2.0 * N * D * (4 * D + 3 * F) + 4.0 * N * N * D;
}

og_status og_zimage_flops(const og_zimage_config *c, int64_t lat_h, int64_t lat_w,
                          int64_t cap_len, double *out)
{
    og_zimage_tokens t = {0};
    OG_TRY(og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t));
    const double D = c->dim, A = c->adaln_dim;
    const double patch_dim = (double)c->patch_size * c->patch_size * c->f_patch_size *
                             c->in_channels;
    *out = 2.0 * (256.0 * 1024 + 1024 * A) +                                  /* t_embedder */
           2.0 * A * 4 * D * (c->n_refiner_layers + c->n_layers) + 2.0 * A * D + /* adaLN */
           2.0 * (double)t.img_len * patch_dim * D +
           2.0 * (double)t.cap_len * c->cap_feat_dim * D +
           c->n_refiner_layers * (block_flops(c, t.img_pad_len) + block_flops(c, t.cap_pad_len)) +
           c->n_layers * block_flops(c, t.seq_len) + 2.0 * (double)t.img_pad_len * D * patch_dim;
    return OG_OK;
}

const og_zimage_config *og_zimage_get_config(const og_zimage *m) { return &m->c; }

float og_zimage_model_time(float timestep)
{
    return (1000.0f - timestep) / 1000.0f; /* two fp32 roundings, as the pipeline's tensor ops */
}

/* ---- scratch sizing ------------------------------------------------------------------------ */

static size_t fbytes(int64_t n) { return ((size_t)n * sizeof(float) + 63) & ~(size_t)63; }

static size_t max_bytes(size_t a, size_t b) { return a > b ? a : b; }

/* Scratch of og_linear on M rows through w [N, K]. */
static size_t linear_bytes(const og_tensor *w, int64_t M)
{
    return og_linear_scratch_bytes(M, w->shape[1], w->dtype, w->shape[0]);
}

/* The largest scratch of `count` blocks on n tokens under scope. */
static size_t blocks_bytes(const og_zimage_config *c, const zimage_block *b, int count, int64_t n,
                           zimage_attn_scope scope)
{
    size_t most = 0;
    for (int i = 0; i < count; i++)
        most = max_bytes(most, zimage_block_scratch_bytes(c, &b[i], n, scope));
    return most;
}

/* The op scratch of time_conditioning: its one-row linears. */
static size_t time_conditioning_bytes(const og_zimage *m)
{
    const og_zimage_config *c = &m->c;
    size_t most = max_bytes(linear_bytes(&m->t_w0, 1), linear_bytes(&m->t_w2, 1));
    most = max_bytes(most, linear_bytes(&m->fin_ada_w, 1));
    for (int i = 0; i < c->n_refiner_layers + c->n_layers; i++) {
        const zimage_block *b = i < c->n_refiner_layers ? &m->noise_refiner[i]
                                                        : &m->layers[i - c->n_refiner_layers];
        most = max_bytes(most, linear_bytes(&b->ada_w, 1));
    }
    return most;
}

size_t og_zimage_scratch_bytes(const og_zimage *m, int64_t lat_h, int64_t lat_w, int64_t cap_len,
                               og_sp *sp)
{
    const og_zimage_config *c = &m->c;
    og_zimage_tokens t = {0};
    zimage_split s;
    if (og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t) != OG_OK)
        return 0; /* the forward reports the error */
    s = zimage_split_for(&t, sp ? og_sp_size(sp) : 1, sp ? og_sp_rank(sp) : 0);
    int64_t dim = c->dim, half = c->head_dim / 2, n_mod = c->n_refiner_layers + c->n_layers;
    int64_t patch_dim = (int64_t)c->patch_size * c->patch_size * c->f_patch_size * c->in_channels;
    int64_t big = s.uni_n > t.cap_pad_len ? s.uni_n : t.cap_pad_len;
    const zimage_attn_scope img_scope = {s.P > 1 ? sp : NULL, t.img_pad_len};
    const zimage_attn_scope uni_scope = {s.P > 1 ? sp : NULL, t.seq_len};
    const zimage_attn_scope cap_scope = {NULL, t.cap_pad_len};
    /* What the whole forward holds, then the largest of its phases (each released before the
     * next): time conditioning, image embedding and noise refiner, caption path, main layers,
     * final layer. Every op's scratch sits on top of its phase's buffers. */
    size_t persist = fbytes(m->t_freq_dim) + fbytes(m->t_mid_dim) + fbytes(c->adaln_dim) +
                     fbytes(n_mod * 4 * dim) + fbytes(dim) + fbytes(s.uni_n * dim) +
                     2 * fbytes(s.uni_n * half) + fbytes(2 * big * 3);
    size_t tc = time_conditioning_bytes(m);
    size_t a = max_bytes(fbytes(s.img_n * patch_dim) + linear_bytes(&m->x_emb_w, s.img_n),
                         blocks_bytes(c, m->noise_refiner, c->n_refiner_layers, s.img_n,
                                      img_scope));
    size_t b = fbytes(t.cap_pad_len * dim) + 2 * fbytes(t.cap_pad_len * half) +
               fbytes(t.cap_len * c->cap_feat_dim) + fbytes(2 * t.cap_pad_len * 3) +
               max_bytes(linear_bytes(&m->cap_w, t.cap_len),
                         blocks_bytes(c, m->context_refiner, c->n_refiner_layers, t.cap_pad_len,
                                      cap_scope));
    size_t cc = blocks_bytes(c, m->layers, c->n_layers, s.uni_n, uni_scope);
    size_t d = fbytes(s.img_n * dim) + fbytes(s.img_n * patch_dim) +
               fbytes(t.img_pad_len * patch_dim) + linear_bytes(&m->fin_w, s.img_n);
    size_t phase = max_bytes(max_bytes(tc, a), max_bytes(max_bytes(b, cc), d));
    return persist + phase + 4096;
}

/* ---- forward ------------------------------------------------------------------------------- */

typedef struct {
    og_arena *a;
    bool failed;
} allocator;

static float *alloc_f(allocator *al, int64_t n)
{
    float *p = og_arena_alloc(al->a, (size_t)n * sizeof(float));
    al->failed |= p == NULL;
    return p;
}

/* adaln = t_embedder(t_model * t_scale), then every modulated block's [4 * dim] modulation
 * (gates tanh'd) and the final layer's scale, all from the same adaln. */
static og_status time_conditioning(const og_zimage *m, float t_model, allocator *al, float *mods,
                                   float *final_scale, float *adaln_out)
{
    const og_zimage_config *c = &m->c;
    float *freq = alloc_f(al, m->t_freq_dim), *mid = alloc_f(al, m->t_mid_dim);
    float *adaln = alloc_f(al, c->adaln_dim);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Z-Image time conditioning");
    og_timestep_embedding(freq, t_model * c->t_scale, m->t_freq_dim, 10000.0, 0.0, true);
    OG_TRY(og_linear(mid, freq, 1, m->t_freq_dim, m->t_w0.data, m->t_w0.dtype, m->t_mid_dim,
                     m->t_b0, al->a));
    og_silu(mid, m->t_mid_dim);
    OG_TRY(og_linear(adaln, mid, 1, m->t_mid_dim, m->t_w2.data, m->t_w2.dtype, c->adaln_dim,
                     m->t_b2, al->a));
    int64_t dim = c->dim;
    if (adaln_out)
        memcpy(adaln_out, adaln, (size_t)c->adaln_dim * sizeof(float));
    for (int i = 0; mods && i < c->n_refiner_layers + c->n_layers; i++) {
        const zimage_block *b = i < c->n_refiner_layers ? &m->noise_refiner[i]
                                                        : &m->layers[i - c->n_refiner_layers];
        float *mod = mods + (int64_t)i * 4 * dim;
        OG_TRY(og_linear(mod, adaln, 1, c->adaln_dim, b->ada_w.data, b->ada_w.dtype, 4 * dim,
                         b->ada_b, al->a));
        og_tanh(mod + dim, dim);
        og_tanh(mod + 3 * dim, dim);
    }
    og_silu(adaln, c->adaln_dim); /* the final layer's adaLN_modulation is SiLU -> Linear */
    OG_TRY(og_linear(final_scale, adaln, 1, c->adaln_dim, m->fin_ada_w.data, m->fin_ada_w.dtype,
                     dim, m->fin_ada_b, al->a));
    return OG_OK;
}

og_status zimage_time_conditioning(const og_zimage *m, float t_model, og_arena *scratch,
                                   float *mods, float *final_scale, float *adaln)
{
    allocator al = {scratch, false};
    size_t mark = og_arena_mark(scratch);
    og_status st = time_conditioning(m, t_model, &al, mods, final_scale, adaln);
    og_arena_release(scratch, mark);
    return st;
}

/* RoPE tables for this rank's unified tokens: its image shard, then its caption slice. */
void zimage_unified_positions(const og_zimage_tokens *t, const zimage_split *s, int64_t *pos)
{
    for (int64_t j = 0; j < s->img_n; j++) {
        int64_t g = s->img_off + j, *p = pos + 3 * j;
        bool real = g < t->img_len;
        p[0] = real ? t->cap_pad_len + 1 : 0;
        p[1] = real ? g / t->w_tokens : 0;
        p[2] = real ? g % t->w_tokens : 0;
    }
    for (int64_t j = 0; j < s->cap_n; j++) {
        int64_t *p = pos + 3 * (s->img_n + j);
        p[0] = 1 + s->cap_off + j;
        p[1] = p[2] = 0;
    }
}

int64_t zimage_patchify(const og_zimage_config *c, const og_zimage_tokens *t,
                        const zimage_split *s, const float *lat, int64_t lat_h, int64_t lat_w,
                        float *patches)
{
    int p = c->patch_size, C = c->in_channels;
    int64_t patch_dim = (int64_t)p * p * C;
    int64_t real = t->img_len - s->img_off;
    real = real < 0 ? 0 : real > s->img_n ? s->img_n : real;
#pragma omp parallel for
    for (int64_t j = 0; j < real; j++) {
        int64_t g = s->img_off + j, ht = g / t->w_tokens, wt = g % t->w_tokens;
        float *v = patches + j * patch_dim;
        for (int ph = 0; ph < p; ph++)
            for (int pw = 0; pw < p; pw++)
                for (int ch = 0; ch < C; ch++)
                    v[(ph * p + pw) * C + ch] =
                        lat[((int64_t)ch * lat_h + ht * p + ph) * lat_w + wt * p + pw];
    }
    return real;
}

void zimage_unpatchify(const og_zimage_config *c, const og_zimage_tokens *t, const float *full,
                       int64_t lat_h, int64_t lat_w, float *out)
{
    int p = c->patch_size, C = c->in_channels;
    int64_t patch_dim = (int64_t)p * p * C;
#pragma omp parallel for
    for (int64_t g = 0; g < t->img_len; g++) {
        int64_t ht = g / t->w_tokens, wt = g % t->w_tokens;
        const float *v = full + g * patch_dim;
        for (int ph = 0; ph < p; ph++)
            for (int pw = 0; pw < p; pw++)
                for (int ch = 0; ch < C; ch++)
                    out[((int64_t)ch * lat_h + ht * p + ph) * lat_w + wt * p + pw] =
                        v[(ph * p + pw) * C + ch];
    }
}

void zimage_caption_positions(int64_t cap_pad_len, int64_t *pos)
{
    for (int64_t i = 0; i < cap_pad_len; i++) {
        pos[3 * i] = 1 + i;
        pos[3 * i + 1] = pos[3 * i + 2] = 0;
    }
}

/* x[rows of this rank's image shard] = x_embedder(patches), pad rows = x_pad_token. */
static og_status embed_image(const og_zimage *m, const og_zimage_tokens *t, const zimage_split *s,
                             const float *lat, int64_t lat_h, int64_t lat_w, float *x,
                             allocator *al)
{
    const og_zimage_config *c = &m->c;
    int64_t patch_dim = (int64_t)c->patch_size * c->patch_size * c->in_channels, dim = c->dim;
    float *patches = alloc_f(al, s->img_n * patch_dim);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Z-Image patchify");
    int64_t real = zimage_patchify(c, t, s, lat, lat_h, lat_w, patches);
    OG_TRY(og_linear(x, patches, real, patch_dim, m->x_emb_w.data, m->x_emb_w.dtype, dim,
                     m->x_emb_b, al->a));
    for (int64_t j = real; j < s->img_n; j++)
        memcpy(x + j * dim, m->x_pad_token, (size_t)dim * sizeof(float));
    return OG_OK;
}

/* The whole caption on this rank: embed, pad, context_refiner; then its slice into x_slice. */
static og_status caption_path(const og_zimage *m, const og_zimage_tokens *t, const zimage_split *s,
                              const float *cap_feats, float *x_slice, allocator *al)
{
    const og_zimage_config *c = &m->c;
    int64_t dim = c->dim, L = t->cap_pad_len, half = c->head_dim / 2;
    float *cap = alloc_f(al, L * dim), *cs = alloc_f(al, L * half), *sn = alloc_f(al, L * half);
    float *normed = alloc_f(al, t->cap_len * c->cap_feat_dim);
    int64_t *pos = (int64_t *)alloc_f(al, 2 * L * 3);
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Z-Image caption refiner");
    og_rmsnorm(normed, cap_feats, m->cap_norm, t->cap_len, c->cap_feat_dim, c->norm_eps);
    OG_TRY(og_linear(cap, normed, t->cap_len, c->cap_feat_dim, m->cap_w.data, m->cap_w.dtype, dim,
                     m->cap_b, al->a));
    for (int64_t i = t->cap_len; i < L; i++)
        memcpy(cap + i * dim, m->cap_pad_token, (size_t)dim * sizeof(float));
    zimage_caption_positions(L, pos);
    og_rope_table(cs, sn, pos, L, 3, c->axes_dims, c->rope_theta);
    for (int i = 0; i < c->n_refiner_layers; i++)
        OG_TRY(zimage_block_forward(c, &m->context_refiner[i], cap, L, cs, sn, NULL,
                                    (zimage_attn_scope){NULL, L}, al->a));
    memcpy(x_slice, cap + s->cap_off * dim, (size_t)(s->cap_n * dim) * sizeof(float));
    return OG_OK;
}

/* Final layer on this rank's image shard, gathered over ranks and unpatchified into out. */
static og_status final_layer(const og_zimage *m, og_sp *sp, const og_zimage_tokens *t,
                             const zimage_split *s, const float *x, const float *final_scale,
                             int64_t lat_h, int64_t lat_w, float *out, allocator *al)
{
    const og_zimage_config *c = &m->c;
    int p = c->patch_size, C = c->in_channels;
    int64_t dim = c->dim, patch_dim = (int64_t)p * p * C;
    float *xn = alloc_f(al, s->img_n * dim), *local = alloc_f(al, s->img_n * patch_dim);
    float *full = s->P > 1 ? alloc_f(al, t->img_pad_len * patch_dim) : local;
    if (al->failed)
        return og_fail_context(OG_ERR_OOM, "Z-Image final layer");
    og_layernorm(xn, x, NULL, NULL, s->img_n, dim, 1e-6f);
    og_modulate(xn, xn, final_scale, NULL, s->img_n, dim);
    OG_TRY(og_linear(local, xn, s->img_n, dim, m->fin_w.data, m->fin_w.dtype, patch_dim,
                     m->fin_b, al->a));
    if (s->P > 1)
        OG_TRY(og_sp_gather_seq(sp, local, full, t->img_pad_len, patch_dim));
    zimage_unpatchify(c, t, full, lat_h, lat_w, out);
    return OG_OK;
}

static og_status forward(og_zimage *m, og_sp *sp, const float *latents, int64_t lat_h,
                         int64_t lat_w, float t_model, const float *cap_feats, int64_t cap_len,
                         float *out, og_arena *scratch)
{
    const og_zimage_config *c = &m->c;
    if (!latents || !cap_feats || !out || !scratch)
        return og_fail(OG_ERR_INVALID_ARG, "Z-Image forward: latents, caption, output and "
                                           "scratch are required");
    og_zimage_tokens t = {0};
    zimage_split s;
    OG_TRY(og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t));
    s = zimage_split_for(&t, sp ? og_sp_size(sp) : 1, sp ? og_sp_rank(sp) : 0);
    allocator al = {scratch, false};
    int64_t dim = c->dim, half = c->head_dim / 2, n_mod = c->n_refiner_layers + c->n_layers;

    float *mods = alloc_f(&al, n_mod * 4 * dim), *final_scale = alloc_f(&al, dim);
    float *x = alloc_f(&al, s.uni_n * dim);
    float *ucos = alloc_f(&al, s.uni_n * half), *usin = alloc_f(&al, s.uni_n * half);
    if (al.failed)
        return og_fail_context(OG_ERR_OOM, "Z-Image forward (size the arena with "
                                           "og_zimage_scratch_bytes)");
    size_t mark = og_arena_mark(scratch);
    OG_TRY(time_conditioning(m, t_model, &al, mods, final_scale, NULL));
    int64_t *pos = (int64_t *)alloc_f(&al, 2 * s.uni_n * 3);
    if (al.failed)
        return og_fail_context(OG_ERR_OOM, "Z-Image positions");
    zimage_unified_positions(&t, &s, pos);
    og_rope_table(ucos, usin, pos, s.uni_n, 3, c->axes_dims, c->rope_theta);
    og_arena_release(scratch, mark);

    /* Image tokens: rows [0, img_n) of x; the image RoPE rows are the unified table's first rows. */
    OG_TRY(embed_image(m, &t, &s, latents, lat_h, lat_w, x, &al));
    og_arena_release(scratch, mark);
    zimage_attn_scope img_scope = {s.P > 1 ? sp : NULL, t.img_pad_len};
    for (int i = 0; i < c->n_refiner_layers; i++)
        OG_TRY(zimage_block_forward(c, &m->noise_refiner[i], x, s.img_n, ucos, usin,
                                    mods + (int64_t)i * 4 * dim, img_scope, scratch));

    OG_TRY(caption_path(m, &t, &s, cap_feats, x + s.img_n * dim, &al));
    og_arena_release(scratch, mark);

    zimage_attn_scope uni_scope = {s.P > 1 ? sp : NULL, t.seq_len};
    for (int i = 0; i < c->n_layers; i++)
        OG_TRY(zimage_block_forward(c, &m->layers[i], x, s.uni_n, ucos, usin,
                                    mods + (int64_t)(c->n_refiner_layers + i) * 4 * dim, uni_scope,
                                    scratch));

    return final_layer(m, sp, &t, &s, x, final_scale, lat_h, lat_w, out, &al);
}

og_status og_zimage_forward(og_zimage *m, og_sp *sp, const float *latents, int64_t lat_h,
                            int64_t lat_w, float t_model, const float *cap_feats, int64_t cap_len,
                            float *out, og_arena *scratch)
{
    size_t mark = og_arena_mark(scratch);
    og_status st =
        forward(m, sp, latents, lat_h, lat_w, t_model, cap_feats, cap_len, out, scratch);
    og_arena_release(scratch, mark);
    return st;
}
