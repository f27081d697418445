/* The CUDA element-wise kernels against the CPU ops on the same bf16 inputs: SiLU, GELU-tanh,
 * tanh, SwiGLU on a fused gate|up buffer, modulation, gated residual (plain and tanh gate),
 * softmax, both RoPE forms on strided heads, nearest upsampling, and the ring's LSE merge. */
#include <string.h>

#include "gpu_testutil.h"

static void expect(const char *what, const float *got, const float *ref, size_t n, double tol)
{
    double e = og_test_rel_err_f(got, ref, n);
    CHECK(e < tol, "%s: rel err %.3g", what, e);
}

static void check_unary(og_cuda_ctx *ctx, og_test_rng *r)
{
    const size_t n = 5001;
    void (*cpu[3])(float *, int64_t) = {og_silu, og_gelu_tanh, og_tanh};
    const char *names[3] = {"silu", "gelu_tanh", "tanh"};
    for (int f = 0; f < 3; f++) {
        size_t mark = og_arena_mark(og_cuda_arena(ctx));
        float *x = og_gpu_rand(r, n, 6.0f);
        og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16);
        cpu[f](x, (int64_t)n);
        CHECK_OK(og_cuda_activate(ctx, dx, (int64_t)n, (og_cuda_unary)f));
        float *got = og_gpu_get(ctx, dx, n, OG_BF16);
        expect(names[f], got, x, n, OG_BF16_TOL);
        free(x);
        free(got);
        og_arena_release(og_cuda_arena(ctx), mark);
    }
}

static void check_swiglu(og_cuda_ctx *ctx, og_test_rng *r, int64_t rows, int64_t cols)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)(rows * 2 * cols);
    float *gu = og_gpu_rand(r, n, 4.0f);
    float *gate = malloc((size_t)(rows * cols) * 4), *up = malloc((size_t)(rows * cols) * 4);
    for (int64_t i = 0; i < rows; i++) {
        memcpy(gate + i * cols, gu + i * 2 * cols, (size_t)cols * 4);
        memcpy(up + i * cols, gu + i * 2 * cols + cols, (size_t)cols * 4);
    }
    og_swiglu(gate, gate, up, rows * cols);
    og_bf16 *dgu = og_gpu_put(ctx, gu, n, OG_BF16);
    og_bf16 *dout = og_gpu_alloc(ctx, (size_t)(rows * cols), OG_BF16);
    CHECK_OK(og_cuda_swiglu(ctx, dout, dgu, dgu + cols, rows, cols, 2 * cols));
    float *got = og_gpu_get(ctx, dout, (size_t)(rows * cols), OG_BF16);
    expect("swiglu (fused gate|up)", got, gate, (size_t)(rows * cols), OG_BF16_TOL);
    free(gu), free(gate), free(up), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_modulate_residual(og_cuda_ctx *ctx, og_test_rng *r, int64_t rows, int64_t dim)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)(rows * dim);
    float *x = og_gpu_rand(r, n, 2.0f), *y = og_gpu_rand(r, n, 2.0f);
    float *sc = og_gpu_rand(r, (size_t)dim, 1.0f), *sh = og_gpu_rand(r, (size_t)dim, 1.0f);
    float *g = og_gpu_rand(r, (size_t)dim, 2.0f);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16), *dy = og_gpu_put(ctx, y, n, OG_BF16);
    og_bf16 *dm = og_gpu_alloc(ctx, n, OG_BF16);
    float *dsc = og_gpu_put(ctx, sc, (size_t)dim, OG_F32), *dsh = og_gpu_put(ctx, sh, (size_t)dim, OG_F32);
    float *dg = og_gpu_put(ctx, g, (size_t)dim, OG_F32);

    float *ref = malloc(n * sizeof *ref);
    og_modulate(ref, x, sc, sh, rows, dim);
    CHECK_OK(og_cuda_modulate(ctx, dm, dx, dsc, dsh, rows, dim));
    float *got = og_gpu_get(ctx, dm, n, OG_BF16);
    expect("modulate", got, ref, n, OG_BF16_TOL);
    free(got);

    /* Z-Image's gate goes through tanh; the CPU form takes the gate as given. */
    float *tg = malloc((size_t)dim * sizeof *tg);
    for (int64_t c = 0; c < dim; c++)
        tg[c] = tanhf(g[c]);
    memcpy(ref, x, n * sizeof *ref);
    og_gated_residual(ref, y, tg, rows, dim);
    CHECK_OK(og_cuda_gated_residual(ctx, dx, dy, dg, true, rows, dim));
    got = og_gpu_get(ctx, dx, n, OG_BF16);
    expect("gated residual (tanh gate)", got, ref, n, OG_BF16_TOL);
    og_gated_residual(ref, y, g, rows, dim);
    og_gated_residual(ref, y, NULL, rows, dim);
    free(got); /* dx holds the GPU's result; both sides go on from their own */
    CHECK_OK(og_cuda_gated_residual(ctx, dx, dy, dg, false, rows, dim));
    CHECK_OK(og_cuda_gated_residual(ctx, dx, dy, NULL, false, rows, dim));
    got = og_gpu_get(ctx, dx, n, OG_BF16);
    expect("gated residual (plain gate, no gate)", got, ref, n, 2 * OG_BF16_TOL);
    free(x), free(y), free(sc), free(sh), free(g), free(tg), free(ref), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_softmax(og_cuda_ctx *ctx, og_test_rng *r, int64_t rows, int64_t dim)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)(rows * dim);
    float *x = og_gpu_rand(r, n, 8.0f);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16);
    og_softmax(x, rows, dim);
    CHECK_OK(og_cuda_softmax(ctx, dx, rows, dim));
    float *got = og_gpu_get(ctx, dx, n, OG_BF16);
    expect("softmax", got, x, n, OG_BF16_TOL);
    free(x), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_rope(og_cuda_ctx *ctx, og_test_rng *r, bool interleaved)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    const int64_t tokens = 40;
    const int heads = 3, hd = 128, axes[3] = {32, 48, 48};
    const int64_t stride = 3LL * heads * hd; /* q inside a fused QKV buffer */
    int64_t *pos = malloc((size_t)tokens * 3 * sizeof *pos);
    for (int64_t t = 0; t < tokens; t++) {
        pos[t * 3] = 1 + t / 20;
        pos[t * 3 + 1] = t / 5 % 4;
        pos[t * 3 + 2] = t % 5;
    }
    size_t nt = (size_t)(tokens * hd / 2), n = (size_t)(tokens * stride);
    float *ct = malloc(nt * 4), *st = malloc(nt * 4);
    og_rope_table(ct, st, pos, tokens, 3, axes, 256.0);
    float *x = og_gpu_rand(r, n, 2.0f);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16);
    float *dct = og_gpu_put(ctx, ct, nt, OG_F32), *dst = og_gpu_put(ctx, st, nt, OG_F32);
    (interleaved ? og_rope_interleaved : og_rope_half)(x, tokens, heads, hd, stride, ct, st);
    CHECK_OK(og_cuda_rope(ctx, dx, tokens, heads, hd, stride, dct, dst, interleaved));
    float *got = og_gpu_get(ctx, dx, n, OG_BF16);
    expect(interleaved ? "rope interleaved" : "rope half", got, x, n, OG_BF16_TOL);
    free(pos), free(ct), free(st), free(x), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_upsample(og_cuda_ctx *ctx, og_test_rng *r)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    const int64_t c = 5, h = 7, w = 9;
    size_t n = (size_t)(c * h * w);
    float *x = og_gpu_rand(r, n, 1.0f), *ref = malloc(4 * n * sizeof *ref);
    og_upsample_nearest2x(ref, x, c, h, w);
    og_bf16 *dx = og_gpu_put(ctx, x, n, OG_BF16), *dy = og_gpu_alloc(ctx, 4 * n, OG_BF16);
    CHECK_OK(og_cuda_upsample_nearest2x(ctx, dy, dx, c, h, w));
    float *got = og_gpu_get(ctx, dy, 4 * n, OG_BF16);
    CHECK(memcmp(got, ref, 4 * n * sizeof *ref) == 0, "upsample must copy exactly");
    free(x), free(ref), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

/* Two partial results with known LSEs merge to the formula's value, computed here in double;
 * -inf rows (a block that saw no key) leave the other side unchanged. */
static void check_lse_merge(og_cuda_ctx *ctx, og_test_rng *r, og_dtype bt)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    const int64_t sq = 19;
    const int heads = 3, hd = 64;
    size_t n = (size_t)(sq * heads * hd), nl = (size_t)(sq * heads);
    float *a = og_gpu_rand(r, n, 1.0f), *b = og_gpu_rand(r, n, 1.0f);
    float *la = og_gpu_rand(r, nl, 5.0f), *lb = og_gpu_rand(r, nl, 5.0f);
    la[1] = -INFINITY;
    lb[2] = -INFINITY;
    la[4] = lb[4] = -INFINITY;
    double *ref = malloc(n * sizeof *ref), *ref_l = malloc(nl * sizeof *ref_l);
    for (size_t i = 0; i < nl; i++) {
        double m = fmax(la[i], lb[i]);
        double wa = m == -INFINITY ? 0 : exp(la[i] - m), wb = m == -INFINITY ? 0 : exp(lb[i] - m);
        double s = wa + wb;
        ref_l[i] = s > 0 ? m + log(s) : -INFINITY;
        for (int d = 0; d < hd; d++)
            ref[i * hd + d] = s > 0 ? (wa * a[i * hd + d] + wb * b[i * hd + d]) / s : 0;
    }
    float *da = og_gpu_put(ctx, a, n, OG_F32), *dla = og_gpu_put(ctx, la, nl, OG_F32);
    void *db = og_gpu_put(ctx, b, n, bt);
    float *dlb = og_gpu_put(ctx, lb, nl, OG_F32);
    CHECK_OK(og_cuda_lse_merge(ctx, da, dla, (int64_t)heads * hd, db, bt, dlb,
                               (int64_t)heads * hd, sq, heads, hd));
    float *got = og_gpu_get(ctx, da, n, OG_F32), *got_l = og_gpu_get(ctx, dla, nl, OG_F32);
    double e = og_test_rel_err(got, ref, n);
    CHECK(e < 1e-5, "lse merge (%s partial): out rel err %.3g", og_dtype_name(bt), e);
    int bad = 0;
    for (size_t i = 0; i < nl; i++)
        bad += !(ref_l[i] == -INFINITY ? got_l[i] == -INFINITY
                                       : fabs(got_l[i] - ref_l[i]) < 1e-5 * (1 + fabs(ref_l[i])));
    CHECK(bad == 0, "lse merge: %d LSE values differ", bad);
    free(a), free(b), free(la), free(lb), free(ref), free(ref_l), free(got), free(got_l);
    og_arena_release(og_cuda_arena(ctx), mark);
}

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_elementwise", 128);
    if (!ctx)
        return OG_TEST_SKIP;
    og_test_rng r = {5};
    check_unary(ctx, &r);
    check_swiglu(ctx, &r, 13, 1000);
    check_modulate_residual(ctx, &r, 17, 384);
    check_softmax(ctx, &r, 9, 1000);
    check_rope(ctx, &r, true);
    check_rope(ctx, &r, false);
    check_upsample(ctx, &r);
    check_lse_merge(ctx, &r, OG_F32);
    check_lse_merge(ctx, &r, OG_BF16);
    og_cuda_free(ctx);
    return og_test_finish("test_cuda_elementwise");
}
