/* cuDNN convolutions against the CPU og_conv2d / og_conv3d_causal with the same bf16 weights and
 * inputs: 3x3 same-padding, strided downsampling, 1x1, and causal 3-D with and without a cache. */
#include "gpu_testutil.h"

static uint16_t *to_bf16(const float *x, size_t n)
{
    uint16_t *h = malloc(n * 2);
    og_from_f32(h, OG_BF16, x, n);
    return h;
}

static void check_conv2d(og_cuda_ctx *ctx, og_test_rng *r, int64_t cin, int64_t h, int64_t w,
                         int64_t cout, int k, int stride, int pad)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    size_t nx = (size_t)(cin * h * w), nw = (size_t)(cout * cin * k * k), ny = (size_t)(cout * ho * wo);
    float *x = og_gpu_rand(r, nx, 1.0f), *wt = og_gpu_rand(r, nw, 0.2f);
    float *b = og_gpu_rand(r, (size_t)cout, 0.5f), *ref = malloc(ny * sizeof *ref);
    uint16_t *w16 = to_bf16(wt, nw);
    CHECK_OK(og_conv2d(ref, x, cin, h, w, w16, OG_BF16, b, cout, k, k, stride, pad, NULL));
    og_bf16 *dx = og_gpu_put(ctx, x, nx, OG_BF16), *dw = og_gpu_put(ctx, wt, nw, OG_BF16);
    float *db = og_gpu_put(ctx, b, (size_t)cout, OG_F32);
    og_bf16 *dy = og_gpu_alloc(ctx, ny, OG_BF16);
    CHECK_OK(og_cuda_conv2d(ctx, dy, dx, cin, h, w, dw, db, cout, k, k, stride, pad));
    float *got = og_gpu_get(ctx, dy, ny, OG_BF16);
    double e = og_test_rel_err_f(got, ref, ny);
    CHECK(e < OG_BF16_TOL, "conv2d %lldx%lldx%lld -> %lld k=%d s=%d p=%d: rel err %.3g",
          (long long)cin, (long long)h, (long long)w, (long long)cout, k, stride, pad, e);
    free(x), free(wt), free(b), free(ref), free(w16), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_conv3d(og_cuda_ctx *ctx, og_test_rng *r, bool with_cache)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    const int64_t cin = 6, t = 3, h = 10, w = 12, cout = 5;
    const int kt = 3, k = 3;
    size_t nx = (size_t)(cin * t * h * w), nc = (size_t)(cin * (kt - 1) * h * w);
    size_t nw = (size_t)(cout * cin * kt * k * k), ny = (size_t)(cout * t * h * w);
    float *x = og_gpu_rand(r, nx, 1.0f), *cache = og_gpu_rand(r, nc, 1.0f);
    float *wt = og_gpu_rand(r, nw, 0.1f), *b = og_gpu_rand(r, (size_t)cout, 0.5f);
    float *ref = malloc(ny * sizeof *ref);
    uint16_t *w16 = to_bf16(wt, nw);
    CHECK_OK(og_conv3d_causal(ref, x, with_cache ? cache : NULL, cin, t, h, w, w16, OG_BF16, b,
                              cout, kt, k, k, 1, 1, NULL));
    og_bf16 *dx = og_gpu_put(ctx, x, nx, OG_BF16), *dc = og_gpu_put(ctx, cache, nc, OG_BF16);
    og_bf16 *dw = og_gpu_put(ctx, wt, nw, OG_BF16), *dy = og_gpu_alloc(ctx, ny, OG_BF16);
    float *db = og_gpu_put(ctx, b, (size_t)cout, OG_F32);
    CHECK_OK(og_cuda_conv3d_causal(ctx, dy, dx, with_cache ? dc : NULL, cin, t, h, w, dw, db, cout,
                                   kt, k, k, 1, 1));
    float *got = og_gpu_get(ctx, dy, ny, OG_BF16);
    double e = og_test_rel_err_f(got, ref, ny);
    CHECK(e < OG_BF16_TOL, "causal conv3d cache=%d: rel err %.3g", with_cache, e);
    free(x), free(cache), free(wt), free(b), free(ref), free(w16), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_conv", 256);
    if (!ctx)
        return OG_TEST_SKIP;
#ifndef OG_HAVE_CUDNN
    printf("test_cuda_conv: SKIPPED: built without cuDNN\n");
    og_cuda_free(ctx);
    return OG_TEST_SKIP;
#endif
    og_test_rng r = {11};
    check_conv2d(ctx, &r, 16, 20, 24, 32, 3, 1, 1);
    check_conv2d(ctx, &r, 8, 17, 15, 8, 3, 2, 0); /* the VAE encoder's downsample */
    check_conv2d(ctx, &r, 32, 9, 9, 16, 1, 1, 0);
    check_conv3d(ctx, &r, false);
    check_conv3d(ctx, &r, true);
    /* In place is refused (cuDNN reads x while writing y). */
    og_bf16 *buf = og_gpu_alloc(ctx, 4 * 8 * 8, OG_BF16), *wt = og_gpu_alloc(ctx, 4 * 4 * 9, OG_BF16);
    CHECK(og_cuda_conv2d(ctx, buf, buf, 4, 8, 8, wt, NULL, 4, 3, 3, 1, 1) == OG_ERR_INVALID_ARG,
          "conv2d with y == x must be refused");
    og_cuda_free(ctx);
    return og_test_finish("test_cuda_conv");
}
