/* og_cuda_linear against the CPU og_linear on the same bf16 inputs: bf16 and f32 outputs, with and
 * without the bias and GELU epilogues, odd and aligned shapes, and a misaligned input view; and
 * og_cuda_gemm against og_sgemm for every transpose pair with padded leading dimensions. */
#include "gpu_testutil.h"

/* x_offset, b_offset: elements by which x and the bias start past an aligned address. */
static void check_linear(og_cuda_ctx *ctx, og_test_rng *r, int64_t M, int64_t K, int64_t N,
                         og_dtype yt, bool bias, og_cuda_act act, int64_t x_offset,
                         int64_t b_offset)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    float *x = og_gpu_rand(r, (size_t)(M * K + x_offset), 1.0f);
    float *w = og_gpu_rand(r, (size_t)(N * K), 0.05f);
    float *b = og_gpu_rand(r, (size_t)(N + b_offset), 0.5f);
    uint16_t *w16 = malloc((size_t)(N * K) * 2);
    og_from_f32(w16, OG_BF16, w, (size_t)(N * K));
    float *ref = malloc((size_t)(M * N) * sizeof *ref);
    CHECK_OK(og_linear(ref, x + x_offset, M, K, w16, OG_BF16, N, bias ? b + b_offset : NULL, NULL));
    if (act == OG_CUDA_ACT_GELU_TANH)
        og_gelu_tanh(ref, M * N);

    og_bf16 *dx = og_gpu_put(ctx, x, (size_t)(M * K + x_offset), OG_BF16);
    og_bf16 *dw = og_gpu_put(ctx, w, (size_t)(N * K), OG_BF16);
    /* The bias has the output's dtype. */
    char *db = (char *)og_gpu_put(ctx, b, (size_t)(N + b_offset), yt) + b_offset * og_dtype_size(yt);
    void *dy = og_gpu_alloc(ctx, (size_t)(M * N), yt);
    CHECK_OK(og_cuda_linear(ctx, dy, yt, dx + x_offset, M, K, dw, N, bias ? db : NULL, act));
    float *got = og_gpu_get(ctx, dy, (size_t)(M * N), yt);
    /* f32 output differs from the CPU only by summation order; bf16 output by its rounding
     * (and a bf16 bias when yt is bf16). */
    double tol = yt == OG_F32 ? 1e-4 : OG_BF16_TOL;
    double e = og_test_rel_err_f(got, ref, (size_t)(M * N));
    CHECK(e < tol, "linear M=%lld K=%lld N=%lld %s bias=%d act=%d offsets=%lld,%lld: rel err %.3g",
          (long long)M, (long long)K, (long long)N, og_dtype_name(yt), bias, (int)act,
          (long long)x_offset, (long long)b_offset, e);
    free(x);
    free(w);
    free(b);
    free(w16);
    free(ref);
    free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

static void check_gemm(og_cuda_ctx *ctx, og_test_rng *r, bool ta, bool tb, int64_t M, int64_t N,
                       int64_t K, float alpha, float beta, og_dtype ct)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    /* Stored shapes: A [M, K] or [K, M], B [K, N] or [N, K], each row padded by 3. */
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int64_t lda = ac + 3, ldb = bc + 3, ldc = N + 3;
    size_t na = (size_t)(ar * lda), nb = (size_t)(br * ldb), nc = (size_t)(M * ldc);
    float *a = og_gpu_rand(r, na, 1.0f), *b = og_gpu_rand(r, nb, 1.0f), *c = og_gpu_rand(r, nc, 1.0f);
    og_bf16 *da = og_gpu_put(ctx, a, na, OG_BF16), *db = og_gpu_put(ctx, b, nb, OG_BF16);
    void *dc = og_gpu_put(ctx, c, nc, ct);
    CHECK_OK(og_sgemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc));
    CHECK_OK(og_cuda_gemm(ctx, ta, tb, M, N, K, alpha, da, lda, db, ldb, beta, dc, ct, ldc));
    float *got = og_gpu_get(ctx, dc, nc, ct);
    double e = og_test_rel_err_f(got, c, nc); /* padding columns must come back untouched too */
    CHECK(e < (ct == OG_F32 ? 1e-4 : OG_BF16_TOL), "gemm ta=%d tb=%d %lldx%lldx%lld alpha=%g "
          "beta=%g %s: rel err %.3g", ta, tb, (long long)M, (long long)N, (long long)K, alpha,
          beta, og_dtype_name(ct), e);
    free(a), free(b), free(c), free(got);
    og_arena_release(og_cuda_arena(ctx), mark);
}

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_linear", 256);
    if (!ctx)
        return OG_TEST_SKIP;
    og_test_rng r = {42};
    check_linear(ctx, &r, 37, 256, 96, OG_BF16, false, OG_CUDA_ACT_NONE, 0, 0);
    check_linear(ctx, &r, 37, 256, 96, OG_F32, true, OG_CUDA_ACT_NONE, 0, 0);
    check_linear(ctx, &r, 64, 320, 200, OG_BF16, true, OG_CUDA_ACT_NONE, 0, 0);
    check_linear(ctx, &r, 64, 320, 200, OG_BF16, true, OG_CUDA_ACT_GELU_TANH, 0, 0);
    check_linear(ctx, &r, 64, 320, 200, OG_BF16, false, OG_CUDA_ACT_GELU_TANH, 0, 0);
    check_linear(ctx, &r, 1, 256, 1536, OG_F32, true, OG_CUDA_ACT_NONE, 0, 0); /* adaLN: M = 1 */
    check_linear(ctx, &r, 512, 1024, 768, OG_BF16, true, OG_CUDA_ACT_NONE, 0, 0);
    check_linear(ctx, &r, 33, 64, 48, OG_BF16, false, OG_CUDA_ACT_NONE, 1, 0); /* 2-byte aligned x */
    /* The same shape again reuses the cached plan and must give the same answer; with a bias
     * that is only 2-byte aligned it must not reuse the plan chosen for an aligned one. */
    check_linear(ctx, &r, 37, 256, 96, OG_BF16, false, OG_CUDA_ACT_NONE, 0, 0);
    check_linear(ctx, &r, 64, 320, 200, OG_BF16, true, OG_CUDA_ACT_NONE, 0, 1);
    for (int t = 0; t < 4; t++)
        check_gemm(ctx, &r, t & 1, t >> 1, 45, 70, 96, 0.5f, t == 3 ? 0.0f : 1.0f,
                   t == 2 ? OG_BF16 : OG_F32);
    check_gemm(ctx, &r, false, true, 300, 300, 512, 1.0f / 16, 0.0f, OG_F32); /* VAE scores */
    og_cuda_free(ctx);
    return og_test_finish("test_cuda_linear");
}
