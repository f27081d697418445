/* og_sgemm (every transpose, alpha/beta, padded leading dimensions) and og_linear (f32, bf16 and
 * f16 weights, with and without bias, sizes that span several weight tiles) against naive double
 * GEMMs. For 16-bit weights the reference multiplies the de-quantised weights. The opt-in bf16
 * precision is checked against a double GEMM on bf16-rounded activations, from several threads at
 * once and over more shapes than its primitive cache holds. og_linear and og_linear_packed run in
 * arenas of exactly their *_scratch_bytes (which must be enough and come back released), and
 * og_linear again with its own scratch (NULL), to the same bits; a too small arena is refused. */
#include <pthread.h>
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

static void sgemm_case(og_test_rng *rng, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       float alpha, float beta, int64_t pad)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    size_t na = (size_t)(arows * lda) + 1, nb = (size_t)(brows * ldb) + 1;
    size_t nc = (size_t)(M * ldc) + 1;
    float *A = malloc(na * 4), *B = malloc(nb * 4), *C = malloc(nc * 4), *C0 = malloc(nc * 4);
    double *R = malloc((size_t)(M * N + 1) * 8);
    og_test_fill(rng, A, na, 1.0f);
    og_test_fill(rng, B, nb, 1.0f);
    og_test_fill(rng, C, nc, 1.0f);
    memcpy(C0, C, nc * 4);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)(ta ? A[k * lda + i] : A[i * lda + k]) *
                       (tb ? B[j * ldb + k] : B[k * ldb + j]);
            R[i * N + j] = alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * C0[i * ldc + j]);
        }
    CHECK_OK(og_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
    double num = 0, den = 1e-30;
    int outside = 0;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double d = fabs(C[i * ldc + j] - R[i * N + j]);
            num = d > num || d != d ? d : num;
            den = fabs(R[i * N + j]) > den ? fabs(R[i * N + j]) : den;
        }
        for (int64_t j = N; j < ldc; j++)
            outside += C[i * ldc + j] != C0[i * ldc + j];
    }
    CHECK(num / den < 1e-5, "sgemm ta %d tb %d M %lld N %lld K %lld: rel err %.3g", ta, tb,
          (long long)M, (long long)N, (long long)K, num / den);
    CHECK(outside == 0, "sgemm wrote %d elements outside C", outside);
    free(A), free(B), free(C), free(C0), free(R);
}

static void linear_case(og_test_rng *rng, og_dtype wt, int64_t M, int64_t K, int64_t N,
                        bool with_bias)
{
    float *x = malloc((size_t)(M * K) * 4 + 4), *wf = malloc((size_t)(N * K) * 4 + 4);
    float *b = malloc((size_t)N * 4 + 4), *y = malloc((size_t)(M * N) * 4 + 4);
    void *w = malloc((size_t)(N * K) * 4 + 4);
    double *R = malloc((size_t)(M * N) * 8 + 8);
    og_test_fill(rng, x, (size_t)(M * K), 1.0f);
    og_test_fill(rng, wf, (size_t)(N * K), 0.5f);
    og_test_fill(rng, b, (size_t)N, 1.0f);
    og_from_f32(w, wt, wf, (size_t)(N * K));
    og_to_f32(wf, w, wt, (size_t)(N * K)); /* the de-quantised weights the reference uses */
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = with_bias ? b[j] : 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)x[i * K + k] * wf[j * K + k];
            R[i * N + j] = acc;
        }
    og_arena a;
    CHECK_OK(og_test_scratch(&a, og_linear_scratch_bytes(M, K, wt, N)));
    CHECK_OK(og_linear(y, x, M, K, w, wt, N, with_bias ? b : NULL, &a));
    CHECK(a.used == 1, "linear left %zu bytes of its scratch in use", a.used - 1);
    og_arena_free(&a);
    double err = og_test_rel_err(y, R, (size_t)(M * N));
    CHECK(err < 1e-5, "linear %s M %lld K %lld N %lld bias %d: rel err %.3g", og_dtype_name(wt),
          (long long)M, (long long)K, (long long)N, with_bias, err);
    float *y2 = malloc((size_t)(M * N) * 4 + 4);
    CHECK_OK(og_linear(y2, x, M, K, w, wt, N, with_bias ? b : NULL, NULL));
    CHECK(memcmp(y, y2, (size_t)(M * N) * 4) == 0, "linear %s M %lld: own scratch differs",
          og_dtype_name(wt), (long long)M);
    free(x), free(wf), free(b), free(y), free(y2), free(w), free(R);
}

/* og_linear in OG_GEMM_BF16 precision vs double on bf16(x) . bf16(W)^T: the products are exact
 * in f32 and only the accumulation rounds. Returns the number of failed cases. */
static int bf16_case(uint64_t seed, int64_t M, int64_t K, int64_t N, bool with_bias)
{
    og_test_rng rng = {seed};
    float *x = malloc((size_t)(M * K) * 4), *wf = malloc((size_t)(N * K) * 4);
    float *b = malloc((size_t)N * 4), *y = malloc((size_t)(M * N) * 4);
    uint16_t *w = malloc((size_t)(N * K) * 2);
    double *R = malloc((size_t)(M * N) * 8);
    og_test_fill(&rng, x, (size_t)(M * K), 1.0f);
    og_test_fill(&rng, wf, (size_t)(N * K), 0.5f);
    og_test_fill(&rng, b, (size_t)N, 1.0f);
    og_from_f32(w, OG_BF16, wf, (size_t)(N * K));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = with_bias ? b[j] : 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)og_bf16_to_f32(og_f32_to_bf16(x[i * K + k])) *
                       og_bf16_to_f32(w[j * K + k]);
            R[i * N + j] = acc;
        }
    og_arena a;
    og_status st = og_test_scratch(&a, og_linear_scratch_bytes(M, K, OG_BF16, N));
    if (st == OG_OK)
        st = og_linear(y, x, M, K, w, OG_BF16, N, with_bias ? b : NULL, &a);
    double err = st == OG_OK && a.used == 1 ? og_test_rel_err(y, R, (size_t)(M * N)) : INFINITY;
    og_arena_free(&a);
    if (!(err < 1e-5))
        fprintf(stderr, "bf16 linear M %lld K %lld N %lld: %s, rel err %.3g\n", (long long)M,
                (long long)K, (long long)N, st == OG_OK ? "ok" : og_error_message(), err);
    free(x), free(wf), free(b), free(y), free(w), free(R);
    return !(err < 1e-5);
}

/* og_pack_weights_bf16 from f32 weights, then og_linear_packed, vs double on
 * bf16(x) . bf16(W)^T (+ bias): the packed layout serves any row count. */
static void packed_case(og_test_rng *rng, int64_t M, int64_t K, int64_t N, bool with_bias)
{
    float *x = malloc((size_t)(M * K) * 4), *w = malloc((size_t)(N * K) * 4);
    float *b = malloc((size_t)N * 4), *y = malloc((size_t)(M * N) * 4);
    double *R = malloc((size_t)(M * N) * 8);
    og_test_fill(rng, x, (size_t)(M * K), 1.0f);
    og_test_fill(rng, w, (size_t)(N * K), 0.5f);
    og_test_fill(rng, b, (size_t)N, 1.0f);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = with_bias ? b[j] : 0.0;
            for (int64_t k = 0; k < K; k++)
                acc += (double)og_bf16_to_f32(og_f32_to_bf16(x[i * K + k])) *
                       og_bf16_to_f32(og_f32_to_bf16(w[j * K + k]));
            R[i * N + j] = acc;
        }
    og_packed_weights *p = NULL;
    CHECK_OK(og_pack_weights_bf16(&p, w, OG_F32, N, K));
    if (p) {
        og_arena a;
        CHECK_OK(og_test_scratch(&a, og_linear_packed_scratch_bytes(M, K)));
        CHECK_OK(og_linear_packed(y, x, M, p, with_bias ? b : NULL, &a));
        CHECK(a.used == 1, "packed linear left %zu bytes of its scratch in use", a.used - 1);
        og_arena_free(&a);
        double err = og_test_rel_err(y, R, (size_t)(M * N));
        CHECK(err < 1e-5, "packed bf16 linear M %lld K %lld N %lld: rel err %.3g", (long long)M,
              (long long)K, (long long)N, err);
    }
    og_packed_weights_free(p);
    free(x), free(w), free(b), free(y), free(R);
}

/* Each thread runs shapes M = first, first + 2, ...: 70 shapes in all, beyond the cache size. */
static void *bf16_worker(void *arg)
{
    int first = *(int *)arg, bad = 0;
    for (int m = first; m <= 70; m += 2)
        bad += bf16_case(0x1234u + (uint64_t)m, m, 40, 24, m % 3 != 0);
    *(int *)arg = bad;
    return NULL;
}

int main(void)
{
    og_test_rng rng = {0xfeedbeefu};
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        sgemm_case(&rng, ta, tb, 37, 29, 53, 1.0f, 0.0f, 0);
        sgemm_case(&rng, ta, tb, 64, 48, 100, 0.5f, 1.5f, 3);
        sgemm_case(&rng, ta, tb, 1, 17, 9, -2.0f, 1.0f, 1);
        sgemm_case(&rng, ta, tb, 13, 1, 1, 1.0f, 0.0f, 0);
    }
    sgemm_case(&rng, false, true, 5, 7, 0, 1.0f, 0.25f, 2); /* K = 0: C = beta * C */
    sgemm_case(&rng, false, false, 3, 4, 0, 1.0f, 0.0f, 1);

    static const og_dtype types[] = {OG_F32, OG_BF16, OG_F16};
    for (int i = 0; i < 3; i++) {
        linear_case(&rng, types[i], 1, 1, 1, true);
        linear_case(&rng, types[i], 7, 33, 19, true);
        linear_case(&rng, types[i], 50, 96, 130, false);
        linear_case(&rng, types[i], 2, 4099, 300, true); /* few rows: weights widened on the fly */
        if (types[i] != OG_F32)
            linear_case(&rng, types[i], 5, 4099, 2100, true); /* two 32 MB weight tiles */
    }
    const float dummy_w[4] = {0};
    if (og_gemm_set_precision(OG_GEMM_BF16) == OG_OK) {
        CHECK(og_gemm_get_precision() == OG_GEMM_BF16, "precision readback");
        CHECK(bf16_case(7, 300, 513, 129, true) == 0, "bf16 precision, large");
        int args[2] = {1, 2};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&th[i], NULL, bf16_worker, &args[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        CHECK(args[0] == 0 && args[1] == 0, "bf16 precision from two threads: %d + %d failures",
              args[0], args[1]);
        packed_case(&rng, 300, 513, 129, true);
        packed_case(&rng, 1, 64, 1030, false);
        packed_case(&rng, 1100, 96, 70, false);
        CHECK_OK(og_gemm_set_precision(OG_GEMM_EXACT));
        linear_case(&rng, OG_BF16, 7, 33, 19, true); /* exact again */
    } else {
        CHECK(strcmp(og_gemm_library(), "OpenBLAS") == 0, "bf16 precision refused with %s: %s",
              og_gemm_library(), og_error_message());
        CHECK(og_gemm_get_precision() == OG_GEMM_EXACT, "a refused setting changes nothing");
        og_packed_weights *p = NULL;
        CHECK(og_pack_weights_bf16(&p, dummy_w, OG_F32, 2, 2) == OG_ERR_UNSUPPORTED && !p,
              "packing refused with %s", og_gemm_library());
    }

    float dummy[4] = {0};
    CHECK(og_sgemm(false, false, 2, 2, 2, 1.0f, dummy, 1, dummy, 2, 0.0f, dummy, 2) ==
              OG_ERR_INVALID_ARG, "lda < K must be refused");
    CHECK(og_linear(dummy, dummy, 1, 1, dummy, OG_I32, 1, NULL, NULL) == OG_ERR_UNSUPPORTED,
          "integer weights must be refused");

    /* 16-bit weights on 8 rows widen a tile: an arena short of it is refused, y untouched. */
    uint16_t w16[8 * 8] = {0};
    float x8[8 * 8] = {0}, y8[8 * 8];
    for (int i = 0; i < 64; i++)
        y8[i] = 7.0f;
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_linear_scratch_bytes(8, 8, OG_F16, 8) - 128));
    og_status st = og_linear(y8, x8, 8, 8, w16, OG_F16, 8, NULL, &a);
    CHECK(st == OG_ERR_OOM && strstr(og_error_message(), "og_linear_scratch_bytes"),
          "short arena: %s (%s)", og_status_name(st), og_error_message());
    CHECK(a.used == 0 && y8[0] == 7.0f, "short arena: nothing taken, nothing written");
    CHECK(og_linear_scratch_bytes(8, 8, OG_F32, 8) == 0 && og_linear_scratch_bytes(4, 8, OG_F16, 8) == 0,
          "f32 weights and few rows need no scratch");
    og_arena_free(&a);
    printf("GEMM library: %s\n", og_gemm_library());
    return og_test_finish("test_ops_gemm");
}
