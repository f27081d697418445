/* umT5 encoder stack: config and weight loading by checkpoint name, relative position buckets and
 * the forward pass to last_hidden_state (see text/umt5.h for the math). */
#include "text/umt5.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "io/diffusers.h"
#include "io/weights.h"

typedef struct {
    const void *w; /* [out, in] in the checkpoint's dtype */
    og_dtype dt;
} umt5_linear;

typedef struct {
    const float *attn_norm, *ff_norm, *rel_bias; /* rel_bias [buckets, heads] */
    umt5_linear q, k, v, o, wi0, wi1, wo;
} umt5_layer;

struct og_umt5 {
    og_weights *w;
    int d_model, d_kv, d_ff, layers, heads, buckets, max_distance;
    double eps;
    og_tensor embed;
    const float *final_norm;
    umt5_layer *layer;
};

int og_umt5_hidden(const og_umt5 *m) { return m->d_model; }

void og_umt5_free(og_umt5 *m)
{
    if (!m)
        return;
    og_weights_free(m->w);
    free(m->layer);
    free(m);
}

static og_status read_config_values(og_umt5 *m, const og_config *c, const char *path)
{
    const char *model_type, *act, *ff;
    OG_TRY(og_config_string_or(c, "model_type", "umt5", &model_type));
    if (strcmp(model_type, "umt5") != 0)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: model_type %s is not umt5", path, model_type);
    OG_TRY(og_config_int_range(c, "d_model", 1, 1 << 16, &m->d_model));
    OG_TRY(og_config_int_range(c, "d_kv", 1, 1024, &m->d_kv));
    OG_TRY(og_config_int_range(c, "d_ff", 1, 1 << 20, &m->d_ff));
    OG_TRY(og_config_int_range(c, "num_layers", 1, 1024, &m->layers));
    OG_TRY(og_config_int_range(c, "num_heads", 1, 1024, &m->heads));
    OG_TRY(og_config_int_range(c, "relative_attention_num_buckets", 4, 1 << 16, &m->buckets));
    OG_TRY(og_config_int_range(c, "relative_attention_max_distance", 1, 1 << 24, &m->max_distance));
    OG_TRY(og_config_float_or(c, "layer_norm_epsilon", 1e-6, &m->eps));
    if (m->max_distance <= m->buckets / 4)
        return og_fail(OG_ERR_FORMAT, "%s: relative_attention_max_distance %d must exceed a "
                       "quarter of the %d buckets", path, m->max_distance, m->buckets);
    OG_TRY(og_config_string_or(c, "feed_forward_proj", "gated-gelu", &ff));
    OG_TRY(og_config_string_or(c, "dense_act_fn", "gelu_new", &act));
    bool gated = strncmp(ff, "gated-", 6) == 0;
    if (!gated || (strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: feed_forward_proj %s with dense_act_fn %s is not "
                       "supported (only the gated tanh GELU of umT5: gated-gelu, gelu_new)", path,
                       ff, act);
    bool decoder;
    OG_TRY(og_config_bool_or(c, "is_decoder", false, &decoder));
    if (decoder)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: is_decoder is true (only the encoder is supported)",
                       path);
    return OG_OK;
}

static og_status read_config(og_umt5 *m, const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder path too long: %s", dir);
    og_config *c;
    OG_TRY(og_config_load(&c, path));
    og_status s = read_config_values(m, c, path);
    og_config_free(c);
    return s;
}

static og_status get_linear(og_umt5 *m, int i, const char *name, int64_t out, int64_t in,
                            umt5_linear *l)
{
    char key[256];
    snprintf(key, sizeof key, "encoder.block.%d.%s.weight", i, name);
    og_tensor t;
    OG_TRY(og_weights_expect(m->w, key, 2, (int64_t[]){out, in}, &t));
    l->w = t.data;
    l->dt = t.dtype;
    return OG_OK;
}

static og_status get_vec(og_umt5 *m, int i, const char *name, int64_t n, const float **v)
{
    char key[256];
    snprintf(key, sizeof key, "encoder.block.%d.%s.weight", i, name);
    float *p;
    OG_TRY(og_weights_vector_f32(m->w, key, n, &p));
    *v = p;
    return OG_OK;
}

static og_status load_weights(og_umt5 *m)
{
    const char *key = og_weights_has(m->w, "shared.weight") ? "shared.weight"
                                                             : "encoder.embed_tokens.weight";
    OG_TRY(og_weights_get(m->w, key, &m->embed));
    if (m->embed.ndim != 2 || m->embed.shape[1] != m->d_model || m->embed.shape[0] < 1 ||
        m->embed.shape[0] > INT32_MAX)
        return og_fail(OG_ERR_SHAPE, "%s: %s is not [vocab, %d]", og_weights_source(m->w), key,
                       m->d_model);
    float *fn;
    OG_TRY(og_weights_vector_f32(m->w, "encoder.final_layer_norm.weight", m->d_model, &fn));
    m->final_norm = fn;
    const int64_t D = m->d_model, inner = (int64_t)m->heads * m->d_kv, F = m->d_ff;
    m->layer = calloc((size_t)m->layers, sizeof *m->layer);
    if (!m->layer)
        return og_fail(OG_ERR_OOM, "text encoder: out of memory");
    for (int i = 0; i < m->layers; i++) {
        umt5_layer *L = &m->layer[i];
        char name[256];
        snprintf(name, sizeof name,
                 "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight", i);
        og_tensor rb;
        OG_TRY(og_weights_expect(m->w, name, 2, (int64_t[]){m->buckets, m->heads}, &rb));
        float *rbf;
        OG_TRY(og_weights_vector_f32(m->w, name, (int64_t)m->buckets * m->heads, &rbf));
        L->rel_bias = rbf;
        OG_TRY(get_vec(m, i, "layer.0.layer_norm", D, &L->attn_norm));
        OG_TRY(get_vec(m, i, "layer.1.layer_norm", D, &L->ff_norm));
        OG_TRY(get_linear(m, i, "layer.0.SelfAttention.q", inner, D, &L->q));
        OG_TRY(get_linear(m, i, "layer.0.SelfAttention.k", inner, D, &L->k));
        OG_TRY(get_linear(m, i, "layer.0.SelfAttention.v", inner, D, &L->v));
        OG_TRY(get_linear(m, i, "layer.0.SelfAttention.o", D, inner, &L->o));
        OG_TRY(get_linear(m, i, "layer.1.DenseReluDense.wi_0", F, D, &L->wi0));
        OG_TRY(get_linear(m, i, "layer.1.DenseReluDense.wi_1", F, D, &L->wi1));
        OG_TRY(get_linear(m, i, "layer.1.DenseReluDense.wo", D, F, &L->wo));
    }
    return OG_OK;
}

og_status og_umt5_load(og_umt5 **out, const char *dir)
{
    *out = NULL;
    og_umt5 *m = calloc(1, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "text encoder: out of memory");
    og_status s = read_config(m, dir);
    if (s == OG_OK)
        s = og_weights_open_dir(&m->w, dir);
    if (s == OG_OK)
        s = load_weights(m);
    if (s != OG_OK) {
        og_umt5_free(m);
        return og_fail_context(s, "loading the umT5 text encoder from %s", dir);
    }
    *out = m;
    return OG_OK;
}

int og_umt5_bucket(int64_t rel, int num_buckets, int max_distance)
{
    /* Bidirectional: half the buckets for keys after the query. Of each half, the first
     * max_exact distances get a bucket each, the rest log-spaced bins up to max_distance (f32 as
     * in transformers: log of the f32 ratio, divided by the f32-rounded log of the range). */
    int half = num_buckets / 2, bucket = rel > 0 ? half : 0, max_exact = half / 2;
    int64_t a = rel < 0 ? -rel : rel;
    if (a < max_exact)
        return bucket + (int)a;
    float ratio = logf((float)a / (float)max_exact) /
                  (float)log((double)max_distance / (double)max_exact);
    float scaled = ratio * (float)(half - max_exact);
    int64_t large = max_exact + (int64_t)scaled;
    if (large > half - 1)
        large = half - 1;
    return bucket + (int)large;
}

void og_umt5_pad_embeds(float *emb, int n, int max_len, int dim)
{
    if (n < max_len)
        memset(emb + (size_t)n * dim, 0, (size_t)(max_len - n) * dim * sizeof *emb);
}

static og_status linear(float *y, const float *x, int64_t rows, int64_t in, const umt5_linear *l,
                        int64_t out, og_arena *scratch)
{
    return og_linear(y, x, rows, in, l->w, l->dt, out, NULL, scratch);
}

static size_t max_bytes(size_t a, size_t b) { return a > b ? a : b; }

/* The arena of one encode of n tokens: h, q, k, v, the attention output, gate, up, one head's
 * score matrix, the bucket of every distance, and above them the largest projection scratch. */
static size_t encode_scratch_bytes(const og_umt5 *m, int64_t n)
{
    const int64_t D = m->d_model, inner = (int64_t)m->heads * m->d_kv, F = m->d_ff;
    size_t ops = 0;
    for (int li = 0; li < m->layers; li++) {
        const umt5_layer *L = &m->layer[li];
        const struct {
            const umt5_linear *l;
            int64_t in, out;
        } proj[] = {{&L->q, D, inner}, {&L->k, D, inner},  {&L->v, D, inner}, {&L->o, inner, D},
                    {&L->wi0, D, F},   {&L->wi1, D, F},    {&L->wo, F, D}};
        for (size_t i = 0; i < sizeof proj / sizeof proj[0]; i++)
            ops = max_bytes(ops, og_linear_scratch_bytes(n, proj[i].in, proj[i].l->dt,
                                                         proj[i].out));
    }
    const size_t f = sizeof(float);
    return og_arena_need((size_t)(n * D) * f) + 4 * og_arena_need((size_t)(n * inner) * f) +
           2 * og_arena_need((size_t)(n * F) * f) + og_arena_need((size_t)(n * n) * f) +
           og_arena_need((size_t)(2 * n - 1) * sizeof(int)) + ops;
}

/* Self-attention of one layer: per head S = q kᵀ + bias, softmax over keys, out = S v. */
static og_status attention(const og_umt5 *m, const umt5_layer *L, const float *q, const float *k,
                           const float *v, float *out, float *scores, const int *bucket, int n)
{
    const int64_t inner = (int64_t)m->heads * m->d_kv, d = m->d_kv;
    for (int hd = 0; hd < m->heads; hd++) {
        OG_TRY(og_sgemm(false, true, n, n, d, 1.0f, q + hd * d, inner, k + hd * d, inner, 0.0f,
                        scores, n));
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                scores[(int64_t)i * n + j] +=
                    L->rel_bias[(int64_t)bucket[j - i + n - 1] * m->heads + hd];
        og_softmax(scores, n, n);
        OG_TRY(og_sgemm(false, false, n, d, n, 1.0f, scores, n, v + hd * d, inner, 0.0f,
                        out + hd * d, inner));
    }
    return OG_OK;
}

og_status og_umt5_encode(const og_umt5 *m, const int32_t *ids, int n, float *out)
{
    if (n < 1)
        return og_fail(OG_ERR_INVALID_ARG, "text encoder: no tokens to encode");
    const int64_t vocab = m->embed.shape[0];
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return og_fail(OG_ERR_INVALID_ARG,
                           "text encoder: token %d has id %d, outside the vocabulary of %lld", i,
                           ids[i], (long long)vocab);
    const int64_t D = m->d_model, inner = (int64_t)m->heads * m->d_kv, F = m->d_ff;
    const size_t es = og_dtype_size(m->embed.dtype);
    float *x = out; /* the residual stream lives in the output */
    for (int i = 0; i < n; i++)
        og_to_f32(x + (int64_t)i * D, (const char *)m->embed.data + (size_t)ids[i] * D * es,
                  m->embed.dtype, (size_t)D);

    og_arena a;
    OG_TRY(og_arena_init(&a, encode_scratch_bytes(m, n)));
    size_t nd = (size_t)n * D, ni = (size_t)n * inner, nf = (size_t)n * F;
    float *h = og_arena_alloc(&a, nd * sizeof *h), *q = og_arena_alloc(&a, ni * sizeof *q);
    float *k = og_arena_alloc(&a, ni * sizeof *k), *v = og_arena_alloc(&a, ni * sizeof *v);
    float *att = og_arena_alloc(&a, ni * sizeof *att);
    float *gate = og_arena_alloc(&a, nf * sizeof *gate), *up = og_arena_alloc(&a, nf * sizeof *up);
    float *scores = og_arena_alloc(&a, (size_t)n * n * sizeof *scores);
    int *bucket = og_arena_alloc(&a, (size_t)(2 * n - 1) * sizeof *bucket);
    og_status s = OG_OK;
    if (!h || !q || !k || !v || !att || !gate || !up || !scores || !bucket) {
        s = og_fail_context(OG_ERR_OOM, "text encoder: buffers for %d tokens", n);
        goto done;
    }
    for (int r = -(n - 1); r <= n - 1; r++)
        bucket[r + n - 1] = og_umt5_bucket(r, m->buckets, m->max_distance);
    const float eps = (float)m->eps;
    for (int li = 0; li < m->layers; li++) {
        const umt5_layer *L = &m->layer[li];
        og_rmsnorm(h, x, L->attn_norm, n, D, eps);
        if ((s = linear(q, h, n, D, &L->q, inner, &a)) ||
            (s = linear(k, h, n, D, &L->k, inner, &a)) ||
            (s = linear(v, h, n, D, &L->v, inner, &a)) ||
            (s = attention(m, L, q, k, v, att, scores, bucket, n)) ||
            (s = linear(h, att, n, inner, &L->o, D, &a)))
            break;
        og_gated_residual(x, h, NULL, n, D);

        og_rmsnorm(h, x, L->ff_norm, n, D, eps);
        if ((s = linear(gate, h, n, D, &L->wi0, F, &a)) ||
            (s = linear(up, h, n, D, &L->wi1, F, &a)))
            break;
        og_gelu_tanh(gate, (int64_t)nf);
        for (size_t i = 0; i < nf; i++)
            gate[i] *= up[i];
        if ((s = linear(h, gate, n, F, &L->wo, D, &a)))
            break;
        og_gated_residual(x, h, NULL, n, D);
    }
    if (s == OG_OK)
        og_rmsnorm(x, x, m->final_norm, n, D, eps);
done:
    og_arena_free(&a);
    return s;
}
