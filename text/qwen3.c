/* Qwen3 / Qwen2.5-VL decoder stack as a text encoder: config and weight loading by checkpoint
 * name, and the forward pass up to hidden_states[-2] or [-1] (see text/qwen3.h for the math). */
#include "text/qwen3.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "io/diffusers.h"
#include "io/weights.h"
#include "text/qwen3_internal.h"

int og_qwen3_hidden(const og_qwen3 *m) { return m->hidden; }
int og_qwen3_layers(const og_qwen3 *m) { return m->layers; }

void og_qwen3_free(og_qwen3 *m)
{
    if (!m)
        return;
    og_weights_free(m->w);
    free(m->layer);
    free(m);
}

/* "text_config.<name>" when the Qwen2.5-VL config nests its text model, else "<name>". */
static const char *ckey(char *buf, size_t size, const char *prefix, const char *name)
{
    snprintf(buf, size, "%s%s", prefix, name);
    return buf;
}

/* RoPE: rope_theta at the top level or in rope_parameters (transformers 5), the type in
 * rope_parameters or rope_scaling ("type" in older Qwen2.5-VL files). Only unscaled RoPE; for
 * Qwen2.5-VL also mrope, whose sections must cover head_dim / 2 (see text/qwen3.h). */
static og_status read_rope(og_qwen3 *m, const og_config *c, const char *pre, bool vl)
{
    char k[160];
    const char *path = og_config_path(c);
    if (og_config_has(c, ckey(k, sizeof k, pre, "rope_theta")))
        OG_TRY(og_config_float(c, k, &m->theta));
    else
        OG_TRY(og_config_float_or(c, ckey(k, sizeof k, pre, "rope_parameters.rope_theta"), 1e6,
                                  &m->theta));
    const char *rope_type = "default", *group = "rope_parameters";
    if (og_config_has(c, ckey(k, sizeof k, pre, "rope_scaling")))
        group = "rope_scaling";
    char name[64];
    snprintf(name, sizeof name, "%s.rope_type", group);
    if (!og_config_has(c, ckey(k, sizeof k, pre, name)))
        snprintf(name, sizeof name, "%s.type", group);
    if (og_config_has(c, ckey(k, sizeof k, pre, name)))
        OG_TRY(og_config_string(c, k, &rope_type));
    if (strcmp(rope_type, "default") != 0 && !(vl && strcmp(rope_type, "mrope") == 0))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: RoPE scaling %s is not supported", path, rope_type);
    snprintf(name, sizeof name, "%s.mrope_section", group);
    if (vl && og_config_has(c, ckey(k, sizeof k, pre, name))) {
        int64_t sec[8];
        int ns = 0;
        OG_TRY(og_config_int_array(c, k, sec, 8, &ns));
        int64_t sum = 0;
        bool positive = true;
        for (int i = 0; i < ns; i++) {
            sum += sec[i];
            positive = positive && sec[i] > 0;
        }
        if (ns != 3 || !positive || sum != m->head_dim / 2)
            return og_fail(OG_ERR_FORMAT, "%s: %s must be three positive sections summing to "
                           "head_dim / 2 = %d", path, k, m->head_dim / 2);
    }
    return OG_OK;
}

static og_status read_config(og_qwen3 *m, const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder path too long: %s", dir);
    og_config *c;
    OG_TRY(og_config_load(&c, path));
    og_status s = OG_OK;
    const char *act = NULL, *model_type = NULL;
    char k[160];
    int64_t hd;
#define TRY_C(expr)                 \
    do {                            \
        if ((s = (expr)) != OG_OK)  \
            goto done;              \
    } while (0)
    TRY_C(og_config_string_or(c, "model_type", "qwen3", &model_type));
    const bool vl = strcmp(model_type, "qwen2_5_vl") == 0;
    if (!vl && strcmp(model_type, "qwen3") != 0) {
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: model_type %s is neither qwen3 nor qwen2_5_vl", path,
                    model_type);
        goto done;
    }
    const char *pre = vl && og_config_has(c, "text_config") ? "text_config." : "";
    TRY_C(og_config_int_range(c, ckey(k, sizeof k, pre, "hidden_size"), 1, 1 << 16, &m->hidden));
    TRY_C(og_config_int_range(c, ckey(k, sizeof k, pre, "num_hidden_layers"), 1, 1024,
                              &m->layers));
    TRY_C(og_config_int_range(c, ckey(k, sizeof k, pre, "num_attention_heads"), 1, 1024,
                              &m->heads));
    TRY_C(og_config_int_range(c, ckey(k, sizeof k, pre, "intermediate_size"), 1, 1 << 20,
                              &m->inter));
    TRY_C(og_config_int_range(c, ckey(k, sizeof k, pre, "vocab_size"), 1, 1 << 24, &m->vocab));
    int64_t kvh;
    TRY_C(og_config_int_or(c, ckey(k, sizeof k, pre, "num_key_value_heads"), m->heads, &kvh));
    m->kv_heads = (int)kvh;
    if (vl) {
        /* Qwen2_5_VLAttention takes hidden_size / heads whatever head_dim says. */
        hd = m->hidden / m->heads;
        if ((int64_t)m->heads * hd != m->hidden) {
            s = og_fail(OG_ERR_FORMAT, "%s: hidden_size %d is not a multiple of %d heads", path,
                        m->hidden, m->heads);
            goto done;
        }
    } else {
        TRY_C(og_config_int_or(c, "head_dim", m->hidden / m->heads, &hd));
    }
    m->head_dim = (int)hd;
    if (m->kv_heads < 1 || m->heads % m->kv_heads || hd < 2 || hd % 2 || hd > 1024) {
        s = og_fail(OG_ERR_FORMAT,
                    "%s: %d attention heads, %d key/value heads and head_dim %lld do not fit "
                    "(heads must be a multiple of kv heads; head_dim even)", path, m->heads,
                    m->kv_heads, (long long)hd);
        goto done;
    }
    TRY_C(og_config_float_or(c, ckey(k, sizeof k, pre, "rms_norm_eps"), 1e-6, &m->eps));
    TRY_C(read_rope(m, c, pre, vl));
    TRY_C(og_config_string_or(c, ckey(k, sizeof k, pre, "hidden_act"), "silu", &act));
    if (strcmp(act, "silu") != 0) {
        s = og_fail(OG_ERR_UNSUPPORTED, "%s: hidden_act %s is not supported (only silu)", path, act);
        goto done;
    }
    if (vl) {
        bool sliding;
        TRY_C(og_config_bool_or(c, ckey(k, sizeof k, pre, "use_sliding_window"), false, &sliding));
        if (sliding) {
            s = og_fail(OG_ERR_UNSUPPORTED, "%s: sliding-window attention is not supported", path);
            goto done;
        }
        m->qk_norm = false;
        m->qkv_bias = true;
        m->o_bias = false;
    } else {
        bool bias;
        TRY_C(og_config_bool_or(c, "attention_bias", false, &bias));
        m->qk_norm = true;
        m->qkv_bias = m->o_bias = bias;
    }
#undef TRY_C
done:
    og_config_free(c);
    return s;
}

static og_status get_linear(og_qwen3 *m, const char *prefix, int i, const char *name, int64_t out,
                            int64_t in, bool bias, og_qwen3_linear *l)
{
    char key[256];
    snprintf(key, sizeof key, "%slayers.%d.%s.weight", prefix, i, name);
    og_tensor t;
    OG_TRY(og_weights_expect(m->w, key, 2, (int64_t[]){out, in}, &t));
    l->w = t.data;
    l->dt = t.dtype;
    l->bias = NULL;
    if (bias) {
        float *b;
        snprintf(key, sizeof key, "%slayers.%d.%s.bias", prefix, i, name);
        OG_TRY(og_weights_vector_f32(m->w, key, out, &b));
        l->bias = b;
    }
    return OG_OK;
}

static og_status get_vec(og_qwen3 *m, const char *prefix, int i, const char *name, int64_t n,
                         const float **v)
{
    char key[256];
    snprintf(key, sizeof key, "%slayers.%d.%s.weight", prefix, i, name);
    float *p;
    OG_TRY(og_weights_vector_f32(m->w, key, n, &p));
    *v = p;
    return OG_OK;
}

static og_status load_weights(og_qwen3 *m)
{
    static const char *const prefixes[] = {"", "model.", "model.language_model."};
    const char *prefix = "";
    char key[256];
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(key, sizeof key, "%sembed_tokens.weight", prefixes[i]);
        if (og_weights_has(m->w, key)) {
            prefix = prefixes[i];
            break;
        }
    }
    snprintf(key, sizeof key, "%sembed_tokens.weight", prefix);
    OG_TRY(og_weights_get(m->w, key, &m->embed));
    /* The embedding may have more rows than config vocab_size (Qwen pads it): the rows count. */
    if (m->embed.ndim != 2 || m->embed.shape[1] != m->hidden || m->embed.shape[0] < 1)
        return og_fail(OG_ERR_SHAPE, "%s: %s is not [vocab, %d]", og_weights_source(m->w), key,
                       m->hidden);
    m->vocab = (int)m->embed.shape[0];

    const int64_t H = m->hidden, q_dim = (int64_t)m->heads * m->head_dim,
                  kv_dim = (int64_t)m->kv_heads * m->head_dim, I = m->inter;
    m->layer = calloc((size_t)m->run, sizeof *m->layer);
    if (!m->layer)
        return og_fail(OG_ERR_OOM, "text encoder: out of memory");
    for (int i = 0; i < m->run; i++) {
        og_qwen3_layer *L = &m->layer[i];
        OG_TRY(get_vec(m, prefix, i, "input_layernorm", H, &L->in_norm));
        OG_TRY(get_vec(m, prefix, i, "post_attention_layernorm", H, &L->post_norm));
        if (m->qk_norm) {
            OG_TRY(get_vec(m, prefix, i, "self_attn.q_norm", m->head_dim, &L->q_norm));
            OG_TRY(get_vec(m, prefix, i, "self_attn.k_norm", m->head_dim, &L->k_norm));
        }
        OG_TRY(get_linear(m, prefix, i, "self_attn.q_proj", q_dim, H, m->qkv_bias, &L->q));
        OG_TRY(get_linear(m, prefix, i, "self_attn.k_proj", kv_dim, H, m->qkv_bias, &L->k));
        OG_TRY(get_linear(m, prefix, i, "self_attn.v_proj", kv_dim, H, m->qkv_bias, &L->v));
        OG_TRY(get_linear(m, prefix, i, "self_attn.o_proj", H, q_dim, m->o_bias, &L->o));
        OG_TRY(get_linear(m, prefix, i, "mlp.gate_proj", I, H, false, &L->gate));
        OG_TRY(get_linear(m, prefix, i, "mlp.up_proj", I, H, false, &L->up));
        OG_TRY(get_linear(m, prefix, i, "mlp.down_proj", H, I, false, &L->down));
    }
    if (m->run == m->layers) {
        float *norm;
        snprintf(key, sizeof key, "%snorm.weight", prefix);
        OG_TRY(og_weights_vector_f32(m->w, key, H, &norm));
        m->final_norm = norm;
        return OG_OK;
    }
    /* The last layer must exist even though hidden_states[-2] never runs it: a checkpoint with
     * fewer layers than its config says is broken. */
    snprintf(key, sizeof key, "%slayers.%d.mlp.down_proj.weight", prefix, m->layers - 1);
    if (!og_weights_has(m->w, key))
        return og_fail(OG_ERR_NOT_FOUND, "%s: %s is missing (config says %d layers)",
                       og_weights_source(m->w), key, m->layers);
    return OG_OK;
}

og_status og_qwen3_load(og_qwen3 **out, const char *dir)
{
    return og_qwen3_load_output(out, dir, OG_QWEN3_OUT_PENULTIMATE);
}

og_status og_qwen3_load_output(og_qwen3 **out, const char *dir, og_qwen3_output which)
{
    *out = NULL;
    if (which != OG_QWEN3_OUT_PENULTIMATE && which != OG_QWEN3_OUT_LAST_NORMED)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder: unknown output %d", (int)which);
    og_qwen3 *m = calloc(1, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "text encoder: out of memory");
    og_status s = read_config(m, dir);
    if (s == OG_OK) {
        m->run = which == OG_QWEN3_OUT_PENULTIMATE ? m->layers - 1 : m->layers;
        if (m->run < 1)
            s = og_fail(OG_ERR_FORMAT, "%s/config.json: hidden_states[-2] needs at least 2 "
                        "layers, the config has %d", dir, m->layers);
    }
    if (s == OG_OK)
        s = og_weights_open_dir(&m->w, dir);
    if (s == OG_OK)
        s = load_weights(m);
    if (s != OG_OK) {
        og_qwen3_free(m);
        return og_fail_context(s, "loading the Qwen text encoder from %s", dir);
    }
    *out = m;
    return OG_OK;
}

/* cos/sin [n, head_dim/2] as transformers builds them for Qwen3: inv_freq = 1/theta^(2i/d) in
 * f32, angle = inv_freq * position in f32, then cos/sin of that f32 angle. (The DiT table in
 * core/ops.h rounds differently, following diffusers.) */
void og_qwen3_rope_table(float *cos_t, float *sin_t, int n, int head_dim, double theta)
{
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float inv = 1.0f / powf((float)theta, (float)(2 * i) / (float)head_dim);
        for (int t = 0; t < n; t++) {
            float ang = inv * (float)t;
            cos_t[(int64_t)t * half + i] = (float)cos((double)ang);
            sin_t[(int64_t)t * half + i] = (float)sin((double)ang);
        }
    }
}

static size_t aligned64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

og_status og_qwen3_gpu_plan_for(const og_qwen3 *m, int max_tokens, og_qwen3_gpu_plan *out)
{
    if (max_tokens < 1)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder on the GPU: planned for %d tokens (at "
                       "least 1)", max_tokens);
    if (!m->qk_norm || m->final_norm)
        return og_fail(OG_ERR_UNSUPPORTED, "text encoder on the GPU: only Qwen3 up to "
                       "hidden_states[-2] (Z-Image) runs there; this Qwen2.5-VL encoder (no q/k "
                       "norm, final norm) runs on the CPU");
    const size_t H = (size_t)m->hidden, hd = (size_t)m->head_dim, I = (size_t)m->inter,
                 q_dim = (size_t)m->heads * hd, qkv = q_dim + 2 * (size_t)m->kv_heads * hd,
                 n = (size_t)max_tokens, b = 2, f = 4;
    size_t layer = aligned64(qkv * H * b) + aligned64(H * q_dim * b) + aligned64(2 * I * H * b) +
                   aligned64(H * I * b) + 2 * aligned64(H * f) + 2 * aligned64(hd * f);
    if (m->qkv_bias)
        layer += aligned64(qkv * b);
    if (m->o_bias)
        layer += aligned64(H * b);
    out->weight_bytes = (size_t)m->run * layer;
    /* x (residual), h (normed / projected), qkv, attention out, gate | up, SwiGLU, cos, sin. */
    out->work_bytes = 2 * aligned64(n * H * b) + aligned64(n * qkv * b) +
                      aligned64(n * q_dim * b) + aligned64(n * 2 * I * b) + aligned64(n * I * b) +
                      2 * aligned64(n * (hd / 2) * f);
    return OG_OK;
}

static og_status linear(float *y, const float *x, int64_t rows, int64_t in,
                        const og_qwen3_linear *l, int64_t out, og_arena *scratch)
{
    return og_linear(y, x, rows, in, l->w, l->dt, out, l->bias, scratch);
}

static size_t max_bytes(size_t a, size_t b) { return a > b ? a : b; }

/* The arena of one encode of n tokens: h, q, k, v, the attention output, gate, up, cos and sin,
 * and above them the largest op scratch (a projection or the attention ad). */
static size_t encode_scratch_bytes(const og_qwen3 *m, int64_t n, const og_attn_desc *ad)
{
    const int64_t H = m->hidden, hd = m->head_dim, q_dim = (int64_t)m->heads * hd,
                  kv_dim = (int64_t)m->kv_heads * hd, I = m->inter;
    size_t ops = og_attention_scratch_bytes(ad);
    for (int li = 0; li < m->run; li++) {
        const og_qwen3_layer *L = &m->layer[li];
        const struct {
            const og_qwen3_linear *l;
            int64_t in, out;
        } proj[] = {{&L->q, H, q_dim}, {&L->k, H, kv_dim}, {&L->v, H, kv_dim}, {&L->o, q_dim, H},
                    {&L->gate, H, I},  {&L->up, H, I},      {&L->down, I, H}};
        for (size_t i = 0; i < sizeof proj / sizeof proj[0]; i++)
            ops = max_bytes(ops, og_linear_scratch_bytes(n, proj[i].in, proj[i].l->dt,
                                                         proj[i].out));
    }
    const size_t f = sizeof(float);
    return og_arena_need((size_t)(n * H) * f) + 2 * og_arena_need((size_t)(n * q_dim) * f) +
           2 * og_arena_need((size_t)(n * kv_dim) * f) + 2 * og_arena_need((size_t)(n * I) * f) +
           2 * og_arena_need((size_t)(n * (hd / 2)) * f) + ops;
}

og_status og_qwen3_encode(const og_qwen3 *m, const int32_t *ids, int n, float *out)
{
    if (n < 1)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder: no tokens to encode");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return og_fail(OG_ERR_INVALID_ARG,
                           "text encoder: token %d has id %d, outside the vocabulary of %d", i,
                           ids[i], m->vocab);
    const int64_t H = m->hidden, hd = m->head_dim, q_dim = (int64_t)m->heads * hd,
                  kv_dim = (int64_t)m->kv_heads * hd, I = m->inter;
    const size_t es = og_dtype_size(m->embed.dtype);
    float *x = out; /* the residual stream lives in the output */
    for (int i = 0; i < n; i++)
        og_to_f32(x + (int64_t)i * H, (const char *)m->embed.data + (size_t)ids[i] * H * es,
                  m->embed.dtype, (size_t)H);

    const og_attn_desc ad = {
        .sq = n, .skv = n, .heads = m->heads, .kv_heads = m->kv_heads, .head_dim = (int)hd,
        .q_stride = q_dim, .k_stride = kv_dim, .v_stride = kv_dim, .o_stride = q_dim,
        .scale = (float)(1.0 / sqrt((double)hd)), .causal = true, .kv_valid = NULL,
    };
    /* Every buffer and op scratch of the encode from one arena, sized up front. */
    og_arena a;
    OG_TRY(og_arena_init(&a, encode_scratch_bytes(m, n, &ad)));
    size_t nh = (size_t)n * H, nq = (size_t)n * q_dim, nkv = (size_t)n * kv_dim,
           ni = (size_t)n * I, nr = (size_t)n * (hd / 2);
    float *h = og_arena_alloc(&a, nh * sizeof *h), *q = og_arena_alloc(&a, nq * sizeof *q);
    float *k = og_arena_alloc(&a, nkv * sizeof *k), *v = og_arena_alloc(&a, nkv * sizeof *v);
    float *att = og_arena_alloc(&a, nq * sizeof *att);
    float *gate = og_arena_alloc(&a, ni * sizeof *gate), *up = og_arena_alloc(&a, ni * sizeof *up);
    float *cos_t = og_arena_alloc(&a, nr * sizeof *cos_t);
    float *sin_t = og_arena_alloc(&a, nr * sizeof *sin_t);
    og_status s = OG_OK;
    if (!h || !q || !k || !v || !att || !gate || !up || !cos_t || !sin_t) {
        s = og_fail_context(OG_ERR_OOM, "text encoder: buffers for %d tokens", n);
        goto done;
    }
    og_qwen3_rope_table(cos_t, sin_t, n, (int)hd, m->theta);
    const float eps = (float)m->eps;
    for (int li = 0; li < m->run && s == OG_OK; li++) {
        const og_qwen3_layer *L = &m->layer[li];
        og_rmsnorm(h, x, L->in_norm, n, H, eps);
        if ((s = linear(q, h, n, H, &L->q, q_dim, &a)) ||
            (s = linear(k, h, n, H, &L->k, kv_dim, &a)) ||
            (s = linear(v, h, n, H, &L->v, kv_dim, &a)))
            break;
        if (m->qk_norm) {
            og_rmsnorm(q, q, L->q_norm, (int64_t)n * m->heads, hd, eps);
            og_rmsnorm(k, k, L->k_norm, (int64_t)n * m->kv_heads, hd, eps);
        }
        og_rope_half(q, n, m->heads, (int)hd, q_dim, cos_t, sin_t);
        og_rope_half(k, n, m->kv_heads, (int)hd, kv_dim, cos_t, sin_t);
        if ((s = og_attention(&ad, q, k, v, att, NULL, &a)) ||
            (s = linear(h, att, n, q_dim, &L->o, H, &a)))
            break;
        og_gated_residual(x, h, NULL, n, H);

        og_rmsnorm(h, x, L->post_norm, n, H, eps);
        if ((s = linear(gate, h, n, H, &L->gate, I, &a)) ||
            (s = linear(up, h, n, H, &L->up, I, &a)))
            break;
        og_swiglu(gate, gate, up, (int64_t)ni);
        if ((s = linear(h, gate, n, I, &L->down, H, &a)))
            break;
        og_gated_residual(x, h, NULL, n, H);
    }
    if (s == OG_OK && m->final_norm)
        og_rmsnorm(x, x, m->final_norm, n, H, eps);
done:
    og_arena_free(&a);
    return s;
}
