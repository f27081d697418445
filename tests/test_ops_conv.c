/* conv2d (padding, stride, 1x1, 16-bit weights, row-banded cases), the causal 3-D convolution
 * (with and without a frame cache, and 1x1x1) and the x2 nearest upsample against naive double
 * loops. The convolutions run in arenas of exactly their *_scratch_bytes (which must be enough
 * and come back released), the 3-D ones without a cache with their own scratch (NULL); a too
 * small arena is refused. */
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

/* Weights rounded through `wt` and back, so the reference uses what the op sees. */
static void *make_weights(og_test_rng *rng, float *wf, size_t n, og_dtype wt, float scale)
{
    void *w = malloc(n * 4);
    og_test_fill(rng, wf, n, scale);
    og_from_f32(w, wt, wf, n);
    og_to_f32(wf, w, wt, n);
    return w;
}

static void conv2d_case(og_test_rng *rng, int64_t cin, int64_t h, int64_t w, int64_t cout, int k,
                        int stride, int pad, og_dtype wt, bool with_bias)
{
    int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
    size_t nx = (size_t)(cin * h * w), nw = (size_t)(cout * cin * k * k);
    size_t ny = (size_t)(cout * ho * wo);
    float *x = malloc(nx * 4), *wf = malloc(nw * 4), *b = malloc((size_t)cout * 4);
    float *y = malloc(ny * 4);
    double *ref = malloc(ny * 8);
    og_test_fill(rng, x, nx, 1.0f);
    og_test_fill(rng, b, (size_t)cout, 1.0f);
    void *wq = make_weights(rng, wf, nw, wt, 0.3f);
    for (int64_t co = 0; co < cout; co++)
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++) {
                double acc = with_bias ? b[co] : 0;
                for (int64_t ci = 0; ci < cin; ci++)
                    for (int dy = 0; dy < k; dy++)
                        for (int dx = 0; dx < k; dx++) {
                            int64_t iy = oy * stride - pad + dy, ix = ox * stride - pad + dx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            acc += (double)wf[((co * cin + ci) * k + dy) * k + dx] *
                                   x[(ci * h + iy) * w + ix];
                        }
                ref[(co * ho + oy) * wo + ox] = acc;
            }
    og_arena a;
    CHECK_OK(og_test_scratch(&a, og_conv2d_scratch_bytes(cin, h, w, cout, k, k, stride, pad)));
    CHECK_OK(og_conv2d(y, x, cin, h, w, wq, wt, with_bias ? b : NULL, cout, k, k, stride, pad,
                       &a));
    CHECK(a.used == 1, "conv2d left %zu bytes of its scratch in use", a.used - 1);
    og_arena_free(&a);
    double err = og_test_rel_err(y, ref, ny);
    CHECK(err < 1e-6, "conv2d cin %lld %lldx%lld cout %lld k %d s %d p %d %s: err %.3g",
          (long long)cin, (long long)h, (long long)w, (long long)cout, k, stride, pad,
          og_dtype_name(wt), err);
    free(x), free(wf), free(b), free(y), free(ref), free(wq);
}

static void conv3d_case(og_test_rng *rng, int64_t cin, int64_t t, int64_t h, int64_t w,
                        int64_t cout, int kt, int kh, int kw, int ph, int pw, bool use_cache)
{
    int64_t ho = h + 2 * ph - kh + 1, wo = w + 2 * pw - kw + 1;
    size_t nx = (size_t)(cin * t * h * w), nc = (size_t)(cin * (kt - 1) * h * w) + 1;
    size_t nw = (size_t)(cout * cin * kt * kh * kw), ny = (size_t)(cout * t * ho * wo);
    float *x = malloc(nx * 4), *cache = malloc(nc * 4), *wf = malloc(nw * 4);
    float *b = malloc((size_t)cout * 4), *y = malloc(ny * 4);
    double *ref = malloc(ny * 8);
    og_test_fill(rng, x, nx, 1.0f);
    og_test_fill(rng, cache, nc, 1.0f);
    og_test_fill(rng, b, (size_t)cout, 1.0f);
    void *wq = make_weights(rng, wf, nw, OG_BF16, 0.3f);
    for (int64_t co = 0; co < cout; co++)
        for (int64_t to = 0; to < t; to++)
            for (int64_t oy = 0; oy < ho; oy++)
                for (int64_t ox = 0; ox < wo; ox++) {
                    double acc = b[co];
                    for (int64_t ci = 0; ci < cin; ci++)
                        for (int dt = 0; dt < kt; dt++)
                            for (int dy = 0; dy < kh; dy++)
                                for (int dx = 0; dx < kw; dx++) {
                                    int64_t f = to + dt - (kt - 1), iy = oy - ph + dy;
                                    int64_t ix = ox - pw + dx;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                        continue;
                                    double v;
                                    if (f >= 0)
                                        v = x[((ci * t + f) * h + iy) * w + ix];
                                    else if (use_cache)
                                        v = cache[((ci * (kt - 1) + f + kt - 1) * h + iy) * w + ix];
                                    else
                                        v = 0;
                                    acc += v * wf[(((co * cin + ci) * kt + dt) * kh + dy) * kw +
                                                  dx];
                                }
                    ref[((co * t + to) * ho + oy) * wo + ox] = acc;
                }
    og_arena a = {0};
    if (use_cache)
        CHECK_OK(og_test_scratch(
            &a, og_conv3d_causal_scratch_bytes(cin, h, w, cout, kt, kh, kw, ph, pw)));
    CHECK_OK(og_conv3d_causal(y, x, use_cache ? cache : NULL, cin, t, h, w, wq, OG_BF16, b, cout,
                              kt, kh, kw, ph, pw, use_cache ? &a : NULL));
    CHECK(!use_cache || a.used == 1, "conv3d left %zu bytes of its scratch in use", a.used - 1);
    og_arena_free(&a);
    double err = og_test_rel_err(y, ref, ny);
    CHECK(err < 1e-6, "conv3d cin %lld t %lld %lldx%lld k %dx%dx%d cache %d: err %.3g",
          (long long)cin, (long long)t, (long long)h, (long long)w, kt, kh, kw, use_cache, err);
    free(x), free(cache), free(wf), free(b), free(y), free(ref), free(wq);
}

int main(void)
{
    og_test_rng rng = {0xc0ffeeu};
    conv2d_case(&rng, 3, 9, 11, 5, 3, 1, 1, OG_F32, true);
    conv2d_case(&rng, 4, 10, 7, 6, 3, 2, 1, OG_BF16, true);   /* downsample */
    conv2d_case(&rng, 7, 8, 8, 3, 1, 1, 0, OG_F16, false);    /* 1x1: the GEMM reads x directly */
    conv2d_case(&rng, 2, 5, 6, 4, 5, 1, 2, OG_F32, false);
    conv2d_case(&rng, 3, 4, 5, 2, 3, 3, 0, OG_F32, true);     /* stride 3, no padding */
    conv2d_case(&rng, 64, 3, 16384, 2, 3, 1, 1, OG_F32, true); /* one row per band */
    conv2d_case(&rng, 64, 40, 2048, 2, 3, 1, 1, OG_BF16, true); /* many bands, shifted rows */
    conv2d_case(&rng, 64, 40, 2048, 2, 3, 2, 1, OG_F32, false); /* many bands, strided */
    conv3d_case(&rng, 3, 4, 5, 6, 4, 3, 3, 3, 1, 1, true);
    conv3d_case(&rng, 3, 2, 4, 3, 2, 3, 3, 3, 1, 1, false);   /* t < kt - 1: zeros in front */
    conv3d_case(&rng, 5, 3, 4, 4, 3, 1, 1, 1, 0, 0, false);   /* 1x1x1: direct, strided channels */
    conv3d_case(&rng, 2, 3, 6, 5, 3, 2, 1, 3, 0, 1, true);
    conv3d_case(&rng, 32, 2, 20, 2048, 2, 3, 3, 3, 1, 1, true); /* many bands per frame */

    /* upsample */
    enum { C = 3, H = 5, W = 7 };
    float x[C * H * W], y[C * 4 * H * W];
    og_test_fill(&rng, x, C * H * W, 1.0f);
    og_upsample_nearest2x(y, x, C, H, W);
    int bad = 0;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < 2 * H; i++)
            for (int j = 0; j < 2 * W; j++)
                bad += y[(c * 2 * H + i) * 2 * W + j] != x[(c * H + i / 2) * W + j / 2];
    CHECK(bad == 0, "upsample: %d wrong elements", bad);

    float z[4] = {0};
    CHECK(og_conv2d(z, z, 1, 1, 1, z, OG_F32, NULL, 1, 3, 3, 1, 0, NULL) == OG_ERR_INVALID_ARG,
          "a kernel larger than the padded input must be refused");
    CHECK(og_conv2d_scratch_bytes(1, 1, 1, 1, 3, 3, 1, 0) == 0, "no scratch for refused sizes");

    /* An arena short of og_conv2d_scratch_bytes: OOM with a message, y untouched. */
    float x9[9] = {0}, w9[9] = {0}, y9[9] = {5.0f};
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_conv2d_scratch_bytes(1, 3, 3, 1, 3, 3, 1, 1) - 128));
    og_status st = og_conv2d(y9, x9, 1, 3, 3, w9, OG_F32, NULL, 1, 3, 3, 1, 1, &a);
    CHECK(st == OG_ERR_OOM && strstr(og_error_message(), "scratch_bytes"), "short arena: %s (%s)",
          og_status_name(st), og_error_message());
    CHECK(a.used == 0 && y9[0] == 5.0f, "short arena: nothing taken, nothing written");
    og_arena_free(&a);
    return og_test_finish("test_ops_conv");
}
