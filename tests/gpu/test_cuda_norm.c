/* The CUDA norms against the CPU ones on the same bf16 inputs: LayerNorm fused with modulation on
 * strided rows, per-head RMSNorm inside a fused QKV buffer, and GroupNorm(+SiLU) with groups large
 * enough to be split over many blocks. */
#include <string.h>

#include "gpu_testutil.h"

static void check_layernorm(og_cuda_ctx *ctx, og_test_rng *r, int64_t rows, int64_t dim,
                            int64_t stride, bool affine, bool modulate)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)(rows * stride);
    float *x = og_gpu_rand(r, n, 3.0f);
    for (size_t i = 0; i < n; i++)
        x[i] += 5.0f; /* an offset mean: the variance must not cancel */
    og_round_bf16(x, n);
    float *w = og_gpu_rand(r, (size_t)dim, 1.0f), *b = og_gpu_rand(r, (size_t)dim, 1.0f);
    float *sc = og_gpu_rand(r, (size_t)dim, 0.5f), *sh = og_gpu_rand(r, (size_t)dim, 0.5f);
    float *ref = malloc((size_t)(rows * dim) * sizeof *ref);
    for (int64_t i = 0; i < rows; i++)
        memcpy(ref + i * dim, x + i * stride, (size_t)dim * sizeof *ref);
    og_layernorm(ref, ref, affine ? w : NULL, affine ? b : NULL, rows, dim, 1e-6f);
    if (modulate)
        og_modulate(ref, ref, sc, sh, rows, dim);

    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16);
    float *dw = og_gpu_put(ctx, w, (size_t)dim, OG_F32), *db = og_gpu_put(ctx, b, (size_t)dim, OG_F32);
    float *dsc = og_gpu_put(ctx, sc, (size_t)dim, OG_F32), *dsh = og_gpu_put(ctx, sh, (size_t)dim, OG_F32);
    CHECK_OK(og_cuda_layernorm(ctx, dx, dx, affine ? dw : NULL, affine ? db : NULL, rows, dim,
                               stride, 1e-6f, modulate ? dsc : NULL, modulate ? dsh : NULL));
    float *all = og_gpu_get(ctx, dx, n, OG_BF16);
    float *got = malloc((size_t)(rows * dim) * sizeof *got);
    for (int64_t i = 0; i < rows; i++)
        memcpy(got + i * dim, all + i * stride, (size_t)dim * sizeof *got);
    double e = og_test_rel_err_f(got, ref, (size_t)(rows * dim));
    CHECK(e < OG_BF16_TOL, "layernorm rows=%lld dim=%lld stride=%lld affine=%d modulate=%d: %.3g",
          (long long)rows, (long long)dim, (long long)stride, affine, modulate, e);
    /* Columns past dim in each row are not touched. */
    int touched = 0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = dim; c < stride; c++)
            touched += all[i * stride + c] != x[i * stride + c];
    CHECK(touched == 0, "layernorm wrote %d elements outside its rows", touched);
    free(x), free(w), free(b), free(sc), free(sh), free(ref), free(all), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

/* Per-head RMSNorm of q inside [tokens, q | k | v]: heads of hd at stride 3 * heads * hd. */
static void check_rmsnorm_heads(og_cuda_ctx *ctx, og_test_rng *r, int64_t tokens, int heads, int hd)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    int64_t stride = 3LL * heads * hd;
    size_t n = (size_t)(tokens * stride);
    float *x = og_gpu_rand(r, n, 2.0f), *w = og_gpu_rand(r, (size_t)hd, 1.0f);
    float *ref = malloc((size_t)(tokens * heads * hd) * sizeof *ref);
    for (int64_t t = 0; t < tokens; t++)
        memcpy(ref + t * heads * hd, x + t * stride, (size_t)(heads * hd) * sizeof *ref);
    og_rmsnorm(ref, ref, w, tokens * heads, hd, 1e-5f);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16);
    float *dw = og_gpu_put(ctx, w, (size_t)hd, OG_F32);
    CHECK_OK(og_cuda_rmsnorm(ctx, dx, dx, dw, tokens, heads, hd, stride, 1e-5f, NULL, NULL));
    float *all = og_gpu_get(ctx, dx, n, OG_BF16);
    float *got = malloc((size_t)(tokens * heads * hd) * sizeof *got);
    for (int64_t t = 0; t < tokens; t++)
        memcpy(got + t * heads * hd, all + t * stride, (size_t)(heads * hd) * sizeof *got);
    double e = og_test_rel_err_f(got, ref, (size_t)(tokens * heads * hd));
    CHECK(e < OG_BF16_TOL, "per-head rmsnorm tokens=%lld heads=%d hd=%d: %.3g", (long long)tokens,
          heads, hd, e);
    int touched = 0;
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t c = heads * hd; c < stride; c++)
            touched += all[t * stride + c] != x[t * stride + c];
    CHECK(touched == 0, "rmsnorm wrote %d elements of k or v", touched);
    free(x), free(w), free(ref), free(all), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

/* Plain RMSNorm rows fused with a Z-Image style modulation (scale only). */
static void check_rmsnorm_modulated(og_cuda_ctx *ctx, og_test_rng *r, int64_t rows, int64_t dim)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)(rows * dim);
    float *x = og_gpu_rand(r, n, 2.0f), *w = og_gpu_rand(r, (size_t)dim, 1.0f);
    float *sc = og_gpu_rand(r, (size_t)dim, 0.5f);
    float *ref = malloc(n * sizeof *ref);
    og_rmsnorm(ref, x, w, rows, dim, 1e-5f);
    og_modulate(ref, ref, sc, NULL, rows, dim);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16), *dy = og_gpu_alloc(ctx, n, OG_BF16);
    float *dw = og_gpu_put(ctx, w, (size_t)dim, OG_F32), *dsc = og_gpu_put(ctx, sc, (size_t)dim, OG_F32);
    CHECK_OK(og_cuda_rmsnorm(ctx, dy, dx, dw, rows, 1, dim, dim, 1e-5f, dsc, NULL));
    float *got = og_gpu_get(ctx, dy, n, OG_BF16);
    double e = og_test_rel_err_f(got, ref, n);
    CHECK(e < OG_BF16_TOL, "rmsnorm + modulate rows=%lld dim=%lld: %.3g", (long long)rows,
          (long long)dim, e);
    free(x), free(w), free(sc), free(ref), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_groupnorm(og_cuda_ctx *ctx, og_test_rng *r, int64_t c, int64_t hw, int groups,
                            bool silu)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)(c * hw);
    float *x = og_gpu_rand(r, n, 2.0f);
    for (size_t i = 0; i < n; i++)
        x[i] += 3.0f;
    og_round_bf16(x, n);
    float *w = og_gpu_rand(r, (size_t)c, 1.0f), *b = og_gpu_rand(r, (size_t)c, 1.0f);
    float *ref = malloc(n * sizeof *ref);
    og_groupnorm(ref, x, w, b, c, hw, groups, 1e-6f);
    if (silu)
        og_silu(ref, (int64_t)n);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16), *dy = og_gpu_alloc(ctx, n, OG_BF16);
    float *dw = og_gpu_put(ctx, w, (size_t)c, OG_F32), *db = og_gpu_put(ctx, b, (size_t)c, OG_F32);
    CHECK_OK(og_cuda_groupnorm(ctx, dy, dx, dw, db, c, hw, groups, 1e-6f, silu));
    float *got = og_gpu_get(ctx, dy, n, OG_BF16);
    double e = og_test_rel_err_f(got, ref, n);
    CHECK(e < OG_BF16_TOL, "groupnorm C=%lld hw=%lld groups=%d silu=%d: %.3g", (long long)c,
          (long long)hw, groups, silu, e);
    free(x), free(w), free(b), free(ref), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_norm", 256);
    if (!ctx)
        return OG_TEST_SKIP;
    og_test_rng r = {99};
    check_layernorm(ctx, &r, 37, 3840, 3840, false, true); /* Wan / final layer form */
    check_layernorm(ctx, &r, 20, 100, 130, true, false);
    check_layernorm(ctx, &r, 5, 31, 31, true, true);
    check_rmsnorm_heads(ctx, &r, 45, 3, 128);
    check_rmsnorm_heads(ctx, &r, 17, 5, 64);
    check_rmsnorm_modulated(ctx, &r, 29, 3840);
    check_groupnorm(ctx, &r, 64, 1024, 32, true);
    check_groupnorm(ctx, &r, 32, 100003, 4, false); /* 800k-element groups over many blocks */
    check_groupnorm(ctx, &r, 6, 7, 3, true);
    og_cuda_free(ctx);
    return og_test_finish("test_cuda_norm");
}
