/* og_zimage_random (the benchmark's in-memory model) and og_zimage_flops: the random weights have
 * the checkpoint's shapes and the stated statistics, depend only on the seed, round to bf16
 * exactly; a tiny random model's forward agrees between the serial run and Ulysses, Ring and
 * hybrid layouts (1e-5); the FLOP count equals a GEMM-by-GEMM hand count; bad requests fail. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "dit/zimage.h"
#include "dit/zimage_internal.h"
#include "testutil.h"

static og_zimage_config tiny_config(void)
{
    og_zimage_config c = og_zimage_config_default();
    c.dim = 64;
    c.n_heads = 2; /* head_dim 32 = 8 + 12 + 12 */
    c.axes_dims[0] = 8, c.axes_dims[1] = 12, c.axes_dims[2] = 12;
    c.n_layers = 2;
    c.n_refiner_layers = 1;
    c.cap_feat_dim = 40;
    CHECK_OK(og_zimage_config_finish(&c));
    return c;
}

static void check_shape(const og_tensor *t, const char *what, int64_t rows, int64_t cols,
                        og_dtype dt)
{
    CHECK(t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols && t->dtype == dt,
          "%s: [%lld, %lld] %s, expected [%lld, %lld] %s", what, (long long)t->shape[0],
          (long long)t->shape[1], og_dtype_name(t->dtype), (long long)rows, (long long)cols,
          og_dtype_name(dt));
}

/* Mean, standard deviation and largest magnitude of n values. */
static void stats(const float *v, size_t n, double *mean, double *sd, double *amax)
{
    double s = 0, s2 = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        m = fabs(v[i]) > m ? fabs(v[i]) : m;
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
    *amax = m;
}

static void check_matrix_stats(const og_tensor *t, const char *what)
{
    double mean, sd, amax;
    const size_t n = (size_t)og_tensor_numel(t);
    const double want = 1.0 / sqrt((double)t->shape[1]);
    stats(t->data, n, &mean, &sd, &amax);
    CHECK(fabs(sd / want - 1) < 0.05, "%s: sd %g, expected %g", what, sd, want);
    CHECK(fabs(mean) < 4 * want / sqrt((double)n), "%s: mean %g", what, mean);
    CHECK(amax <= want * sqrt(3.0) * (1 + 1e-6), "%s: |max| %g beyond the uniform bound %g",
          what, amax, want * sqrt(3.0));
}

static void check_norm_stats(const float *v, int64_t n, const char *what)
{
    double mean, sd, amax;
    stats(v, (size_t)n, &mean, &sd, &amax);
    int outside = 0;
    for (int64_t i = 0; i < n; i++)
        outside += v[i] < 0.9f || v[i] > 1.1f;
    CHECK(outside == 0 && fabs(mean - 1) < 0.03 && sd > 0.03 && sd < 0.08,
          "%s: %d values outside [0.9, 1.1], mean %g, sd %g", what, outside, mean, sd);
}

static void test_weights(void)
{
    const og_zimage_config c = tiny_config();
    og_zimage *m = NULL, *same = NULL, *other = NULL, *half = NULL;
    CHECK_OK(og_zimage_random(&m, &c, 7, OG_F32));
    CHECK_OK(og_zimage_random(&same, &c, 7, OG_F32));
    CHECK_OK(og_zimage_random(&other, &c, 8, OG_F32));
    CHECK_OK(og_zimage_random(&half, &c, 7, OG_BF16));
    if (!m || !same || !other || !half)
        goto done;
    const og_zimage_config *mc = og_zimage_get_config(m);
    CHECK(mc->head_dim == 32 && mc->ffn_dim == 170 && mc->adaln_dim == 64,
          "derived fields: head_dim %d ffn %d adaln %d", mc->head_dim, mc->ffn_dim,
          mc->adaln_dim);
    CHECK(m->t_freq_dim == 256 && m->t_mid_dim == 1024, "time embedder %d -> %d",
          m->t_freq_dim, m->t_mid_dim);
    check_shape(&m->t_w0, "t_embedder.mlp.0", 1024, 256, OG_F32);
    check_shape(&m->t_w2, "t_embedder.mlp.2", 64, 1024, OG_F32);
    check_shape(&m->cap_w, "cap_embedder.1", 64, 40, OG_F32);
    check_shape(&m->x_emb_w, "all_x_embedder", 64, 64, OG_F32);
    check_shape(&m->fin_w, "final linear", 64, 64, OG_F32);
    check_shape(&m->fin_ada_w, "final adaLN", 64, 64, OG_F32);
    const zimage_block *groups[3] = {m->noise_refiner, m->context_refiner, m->layers};
    const int counts[3] = {1, 1, 2};
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < counts[g]; i++) {
            const zimage_block *b = &groups[g][i];
            check_shape(&b->to_q, "to_q", 64, 64, OG_F32);
            check_shape(&b->to_out, "to_out", 64, 64, OG_F32);
            check_shape(&b->w1, "w1", 170, 64, OG_F32);
            check_shape(&b->w2, "w2", 64, 170, OG_F32);
            check_shape(&b->w3, "w3", 170, 64, OG_F32);
            CHECK(b->modulated == (g != 1), "group %d block %d modulated %d", g, i, b->modulated);
            if (b->modulated)
                check_shape(&b->ada_w, "adaLN", 256, 64, OG_F32);
            CHECK(b->norm_q && b->norm_k && b->attention_norm1 && b->attention_norm2 &&
                      b->ffn_norm1 && b->ffn_norm2 && (b->ada_b != NULL) == b->modulated,
                  "group %d block %d: norm or adaLN vectors missing", g, i);
        }
    check_matrix_stats(&m->layers[1].w1, "layers.1.w1");
    check_matrix_stats(&m->layers[0].w2, "layers.0.w2");
    check_matrix_stats(&m->t_w0, "t_embedder.mlp.0");
    check_norm_stats(m->layers[0].attention_norm1, 64, "layers.0.attention_norm1");
    check_norm_stats(m->cap_norm, 40, "cap_norm");

    /* The seed alone fixes the values; another seed changes them. */
    const size_t w1_bytes = og_tensor_nbytes(&m->layers[1].w1);
    CHECK(memcmp(m->layers[1].w1.data, same->layers[1].w1.data, w1_bytes) == 0,
          "same seed, different w1");
    CHECK(memcmp(m->layers[0].ada_b, same->layers[0].ada_b, 256 * sizeof(float)) == 0,
          "same seed, different adaLN bias");
    CHECK(memcmp(m->layers[1].w1.data, other->layers[1].w1.data, w1_bytes) != 0,
          "seeds 7 and 8 give the same w1");
    /* Tensors draw separate streams: to_q and to_k of one block differ. */
    CHECK(memcmp(m->layers[0].to_q.data, m->layers[0].to_k.data, 64 * 64 * 4) != 0,
          "to_q and to_k are equal");
    /* bf16 weights are the f32 ones rounded; vectors stay f32 and equal. */
    check_shape(&half->layers[1].w2, "bf16 w2", 64, 170, OG_BF16);
    int bad = 0;
    const float *w = m->layers[1].w2.data;
    const uint16_t *h = half->layers[1].w2.data;
    for (int i = 0; i < 64 * 170; i++)
        bad += h[i] != og_f32_to_bf16(w[i]);
    CHECK(bad == 0, "%d bf16 weights are not the rounded f32 ones", bad);
    CHECK(memcmp(m->x_pad_token, half->x_pad_token, 64 * sizeof(float)) == 0,
          "the bf16 model's f32 vectors differ");
done:
    og_zimage_free(m);
    og_zimage_free(same);
    og_zimage_free(other);
    og_zimage_free(half);
}

typedef struct {
    og_zimage *m;
    og_parallel_config cfg;
    const float *x, *cap;
    int64_t h, w, cap_len;
    float *out[4];
} sp_job;

static og_status rank_main(og_comm *world, void *arg)
{
    sp_job *j = arg;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &j->cfg, world));
    og_arena a;
    og_status st = og_arena_init(&a, og_zimage_scratch_bytes(j->m, j->h, j->w, j->cap_len, sp));
    if (st == OG_OK)
        st = og_zimage_forward(j->m, sp, j->x, j->h, j->w, 0.37f, j->cap, j->cap_len,
                               j->out[og_sp_world_rank(sp)], &a);
    og_arena_free(&a);
    og_sp_free(sp);
    return st;
}

static void test_forward_layouts(void)
{
    const og_zimage_config c = tiny_config();
    og_zimage *m = NULL;
    CHECK_OK(og_zimage_random(&m, &c, 11, OG_F32));
    if (!m)
        return;
    /* 8 x 6 latents: 12 image tokens (padded to 32), 5 caption tokens (padded to 32). */
    const int64_t h = 8, w = 6, cap_len = 5, n = 16 * h * w;
    float *x = malloc((size_t)n * sizeof *x), *cap = malloc((size_t)(cap_len * 40) * sizeof *cap);
    float *serial = malloc((size_t)n * sizeof *serial);
    og_test_rng rng = {0x5EED};
    og_test_fill(&rng, x, (size_t)n, 1.0f);
    og_test_fill(&rng, cap, (size_t)(cap_len * 40), 1.0f);
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_zimage_scratch_bytes(m, h, w, cap_len, NULL)));
    CHECK_OK(og_zimage_forward(m, NULL, x, h, w, 0.37f, cap, cap_len, serial, &a));
    og_arena_free(&a);
    double norm = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        norm += (double)serial[i] * serial[i];
        finite &= isfinite(serial[i]) != 0;
    }
    CHECK(finite && norm > 1e-3 * (double)n, "serial output: finite %d, mean square %g", finite,
          norm / (double)n);

    static const int layouts[][2] = {{2, 1}, {1, 2}, {2, 2}, {1, 3}};
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        sp_job j = {.m = m, .cfg = OG_PARALLEL_CONFIG_DEFAULT, .x = x, .cap = cap, .h = h,
                    .w = w, .cap_len = cap_len};
        j.cfg.ulysses_degree = layouts[l][0];
        j.cfg.ring_degree = layouts[l][1];
        const int world = layouts[l][0] * layouts[l][1];
        for (int r = 0; r < world; r++)
            j.out[r] = calloc((size_t)n, sizeof(float));
        CHECK_OK(og_run_ranks(world, 1, rank_main, &j));
        for (int r = 0; r < world; r++) {
            double err = og_test_rel_err_f(j.out[r], serial, (size_t)n);
            CHECK(err < 1e-5, "U%d R%d rank %d vs serial: %g", layouts[l][0], layouts[l][1], r,
                  err);
            free(j.out[r]);
        }
    }
    free(x);
    free(cap);
    free(serial);
    og_zimage_free(m);
}

/* 2 * M * N * K of every GEMM the forward runs, listed one by one, plus 4 * n^2 * dim of
 * attention per block. */
static void test_flops(void)
{
    const og_zimage_config c = tiny_config();
    double f = 0;
    CHECK_OK(og_zimage_flops(&c, 8, 6, 5, &f));
    /* dim 64, ffn 170, adaLN 64, patch 64; 12 image tokens (32 padded), 5 caption (32), 64. */
    const double gemms[][3] = {
        {1, 1024, 256}, {1, 64, 1024},           /* t_embedder */
        {1, 256, 64},   {1, 256, 64}, {1, 256, 64}, /* adaLN: noise refiner, layers 0 and 1 */
        {1, 64, 64},                               /* final adaLN */
        {12, 64, 64},                              /* x embedder on the real image tokens */
        {5, 64, 40},                               /* caption embedder on the real tokens */
        {32, 64, 64},                              /* final linear on the padded image tokens */
    };
    double want = 0;
    for (size_t i = 0; i < sizeof gemms / sizeof gemms[0]; i++)
        want += 2 * gemms[i][0] * gemms[i][1] * gemms[i][2];
    const double tokens[] = {32, 32, 64, 64}; /* noise refiner, context refiner, 2 layers */
    for (int b = 0; b < 4; b++) {
        const double n = tokens[b];
        want += 2 * n * 64 * 64 * 3 + 2 * n * 64 * 64 + 2 * n * 64 * 340 + 2 * n * 170 * 64;
        want += 2 * (2 * n * n * 32) * 2; /* QK^T and PV, 2 heads of 32 */
    }
    CHECK(f == want, "og_zimage_flops %.0f, hand count %.0f", f, want);

    /* Full size, 1024 x 1024 and 100 caption tokens: 4096 + 128 tokens. */
    const og_zimage_config full = og_zimage_config_default();
    CHECK_OK(og_zimage_flops(&full, 128, 128, 100, &f));
    CHECK(f > 5.5e13 && f < 6.0e13, "full-size step %.4g FLOP, expected about 5.7e13", f);
    CHECK(og_zimage_flops(&full, 127, 128, 100, &f) == OG_ERR_INVALID_ARG,
          "odd latent height accepted");
}

static void test_errors(void)
{
    og_zimage_config c = tiny_config();
    og_zimage *m = (og_zimage *)&c;
    CHECK(og_zimage_random(&m, &c, 1, OG_F16) == OG_ERR_INVALID_ARG && m == NULL,
          "f16 random weights accepted");
    c.n_heads = 3; /* 64 % 3 != 0 */
    CHECK(og_zimage_random(&m, &c, 1, OG_F32) == OG_ERR_FORMAT && m == NULL,
          "dim 64 with 3 heads accepted");
    c = tiny_config();
    c.axes_dims[0] = 10; /* sums to 34, not 32 */
    CHECK(og_zimage_random(&m, &c, 1, OG_F32) == OG_ERR_FORMAT, "axes_dims not summing accepted");
}

int main(void)
{
    test_weights();
    test_forward_layouts();
    test_flops();
    test_errors();
    return og_test_finish("test_zimage_random");
}
