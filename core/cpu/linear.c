/* og_linear on top of og_sgemm: f32 weights go straight to the GEMM; bf16/f16 weights are widened
 * to f32 one tile of output features at a time (32 MB, never the whole matrix, in the caller's
 * scratch), so the result is the exact f32 product with the de-quantised weights; for a few rows
 * (timestep and modulation MLPs) the weights are widened on the fly instead. With
 * og_gemm_set_precision(OG_GEMM_BF16) bf16 weights go to the library's bf16 path instead, on a
 * bf16 copy of x in the scratch. Also og_sgemm itself: the argument checks and empty cases before
 * either back end's library call. */
#include "core/cpu/gemm.h"

#ifdef __F16C__
#include <immintrin.h>
#endif

/* f32 weight tile: each tile makes the GEMM repack x once, so it should hold ~1000 rows or more */
#define OG_TILE_BYTES (32u << 20)

#define OG_GEMV_ROWS 4     /* up to this many rows, 16-bit weights are read directly (GEMV) */
#define OG_GEMV_CHUNK 1024 /* weights widened at a time on that path */

static _Atomic int og_precision = OG_GEMM_EXACT;

og_status og_gemm_set_precision(og_gemm_precision p)
{
    if (p != OG_GEMM_EXACT && p != OG_GEMM_BF16)
        return og_fail(OG_ERR_INVALID_ARG, "unknown GEMM precision %d", (int)p);
    if (p == OG_GEMM_BF16 && !og_gemm_bf16_available())
        return og_fail(OG_ERR_UNSUPPORTED, "bf16 GEMM precision needs oneDNN; this build uses %s",
                       og_gemm_library());
    og_precision = p;
    return OG_OK;
}

og_gemm_precision og_gemm_get_precision(void) { return (og_gemm_precision)og_precision; }

/* Refuses negative sizes and leading dimensions too small for row-major storage. */
static og_status sgemm_check(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                             int64_t ldb, int64_t ldc)
{
    int64_t amin = ta ? M : K, bmin = tb ? K : N;
    if (M < 0 || N < 0 || K < 0 || lda < (amin > 1 ? amin : 1) || ldb < (bmin > 1 ? bmin : 1) ||
        ldc < (N > 1 ? N : 1))
        return og_fail(OG_ERR_INVALID_ARG,
                       "sgemm: bad sizes M %lld N %lld K %lld with lda %lld ldb %lld ldc %lld",
                       (long long)M, (long long)N, (long long)K, (long long)lda, (long long)ldb,
                       (long long)ldc);
    return OG_OK;
}

/* C[M, N] *= beta (beta == 0 writes zeros, whatever C held). */
static void scale_matrix(float *C, int64_t M, int64_t N, int64_t ldc, float beta)
{
#pragma omp parallel for if (M * N > 65536)
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++)
            C[i * ldc + j] = beta == 0.0f ? 0.0f : C[i * ldc + j] * beta;
}

/* The checks and empty cases are the same for both libraries; the product itself is theirs. */
og_status og_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    OG_TRY(sgemm_check(ta, tb, M, N, K, lda, ldb, ldc));
    if (M == 0 || N == 0)
        return OG_OK;
    if (K == 0) {
        scale_matrix(C, M, N, ldc, beta);
        return OG_OK;
    }
    return og_gemm_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* dst[n] = f32(src[n]) for a 16-bit weight type; f16 through the F16C instructions when present
 * (og_to_f32 converts f16 one value at a time). */
static void widen_row(float *restrict dst, const uint16_t *restrict src, og_dtype wt, int64_t n)
{
    int64_t i = 0;
#ifdef __F16C__
    if (wt == OG_F16)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i,
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    og_to_f32(dst + i, src + i, wt, (size_t)(n - i));
}

void og_f32_to_bf16_rows(uint16_t *dst, const float *src, int64_t rows, int64_t cols, int64_t ld)
{
#pragma omp parallel for if (rows * cols > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        uint16_t *d = dst + r * cols;
#pragma omp simd
        for (int64_t c = 0; c < cols; c++)
            d[c] = og_f32_to_bf16(s[c]);
    }
}

/* y[M, N] = x . W^T for a few rows of x (M <= OG_GEMV_ROWS): a GEMV, bound by reading W. Each
 * weight row is widened a chunk at a time into a small buffer that stays in L1 and dotted with
 * every row of x, so W is read once at its stored 2 bytes per element. */
static void linear_few_rows(float *y, const float *x, int64_t M, int64_t K, const uint16_t *w,
                            og_dtype wt, int64_t N)
{
#pragma omp parallel for if (N * K > 65536)
    for (int64_t j = 0; j < N; j++) {
        float chunk[OG_GEMV_CHUNK], acc[OG_GEMV_ROWS] = {0};
        for (int64_t k0 = 0; k0 < K; k0 += OG_GEMV_CHUNK) {
            const int64_t n = K - k0 < OG_GEMV_CHUNK ? K - k0 : OG_GEMV_CHUNK;
            widen_row(chunk, w + j * K + k0, wt, n);
            for (int64_t m = 0; m < M; m++) {
                const float *xm = x + m * K + k0;
                float a = 0.0f;
#pragma omp simd reduction(+ : a)
                for (int64_t k = 0; k < n; k++)
                    a += xm[k] * chunk[k];
                acc[m] += a;
            }
        }
        for (int64_t m = 0; m < M; m++)
            y[m * N + j] = acc[m];
    }
}

/* How og_linear computes a product: f32 weights (or K = 0) straight through og_sgemm, 16-bit
 * weights as a GEMV for a few rows or tile by tile for more, bf16 weights on the library's bf16
 * units in the bf16 precision. */
typedef enum { LINEAR_DIRECT, LINEAR_GEMV, LINEAR_TILED, LINEAR_BF16 } linear_path;

static linear_path linear_path_for(int64_t M, int64_t K, og_dtype wt)
{
    if (wt == OG_BF16 && K > 0 && og_precision == OG_GEMM_BF16)
        return LINEAR_BF16;
    if (wt == OG_F32 || K == 0)
        return LINEAR_DIRECT;
    return M <= OG_GEMV_ROWS ? LINEAR_GEMV : LINEAR_TILED;
}

/* Weight rows widened per tile: about OG_TILE_BYTES, at least 16, at most N. */
static int64_t tile_rows(int64_t K, int64_t N)
{
    int64_t nt = (int64_t)(OG_TILE_BYTES / 4) / K;
    nt = nt < 16 ? 16 : nt;
    return nt > N ? N : nt;
}

size_t og_linear_scratch_bytes(int64_t M, int64_t K, og_dtype wt, int64_t N)
{
    if (M <= 0 || N <= 0 || K <= 0)
        return 0;
    switch (linear_path_for(M, K, wt)) {
    case LINEAR_BF16:
        return og_linear_packed_scratch_bytes(M, K);
    case LINEAR_TILED:
        return og_arena_need((size_t)(tile_rows(K, N) * K) * sizeof(float));
    default:
        return 0;
    }
}

size_t og_linear_packed_scratch_bytes(int64_t M, int64_t K)
{
    return M > 0 && K > 0 ? og_arena_need((size_t)(M * K) * sizeof(uint16_t)) : 0;
}

/* y[M, N] = x . W^T for 16-bit W, widening nt rows of W at a time into tile. */
static og_status linear_tiled(float *y, const float *x, int64_t M, int64_t K, const uint16_t *w,
                              og_dtype wt, int64_t N, float *tile)
{
    const int64_t nt = tile_rows(K, N);
    for (int64_t n0 = 0; n0 < N; n0 += nt) {
        int64_t nn = N - n0 < nt ? N - n0 : nt;
#pragma omp parallel for if (nn * K > 65536)
        for (int64_t r = 0; r < nn; r++)
            widen_row(tile + r * K, w + (n0 + r) * K, wt, K);
        OG_TRY(og_sgemm(false, true, M, nn, K, 1.0f, x, K, tile, K, 0.0f, y + n0, N));
    }
    return OG_OK;
}

og_status og_linear(float *y, const float *x, int64_t M, int64_t K, const void *w, og_dtype wt,
                    int64_t N, const float *bias, og_arena *scratch)
{
    if (wt != OG_F32 && wt != OG_BF16 && wt != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "linear: weights of type %s", og_dtype_name(wt));
    if (M < 0 || N < 0 || K < 0)
        return og_fail(OG_ERR_INVALID_ARG, "linear: bad sizes M %lld K %lld N %lld", (long long)M,
                       (long long)K, (long long)N);
    if (M == 0 || N == 0)
        return OG_OK;
    const linear_path path = linear_path_for(M, K, wt);
    if (path == LINEAR_DIRECT) {
        const int64_t ld = K > 0 ? K : 1; /* BLAS wants leading dimensions >= 1 even for K = 0 */
        OG_TRY(og_sgemm(false, true, M, N, K, 1.0f, x, ld, w, ld, 0.0f, y, N));
    } else if (path == LINEAR_GEMV) {
        linear_few_rows(y, x, M, K, w, wt, N);
    } else {
        og_op_scratch sc;
        OG_TRY(og_op_scratch_begin(&sc, scratch, og_linear_scratch_bytes(M, K, wt, N)));
        void *buf = og_arena_alloc(sc.a, path == LINEAR_BF16
                                             ? (size_t)(M * K) * sizeof(uint16_t)
                                             : (size_t)(tile_rows(K, N) * K) * sizeof(float));
        og_status st = buf ? OG_OK
                           : og_fail_context(OG_ERR_OOM, "linear: scratch for %lld x %lld x %lld "
                                             "(size it with og_linear_scratch_bytes)",
                                             (long long)M, (long long)K, (long long)N);
        if (st == OG_OK && path == LINEAR_BF16) {
            og_f32_to_bf16_rows(buf, x, M, K, K);
            st = og_gemm_bf16(y, buf, M, K, w, N, bias);
        } else if (st == OG_OK) {
            st = linear_tiled(y, x, M, K, w, wt, N, buf);
        }
        og_op_scratch_end(&sc);
        OG_TRY(st);
        if (path == LINEAR_BF16)
            return OG_OK; /* the library added the bias */
    }
    if (bias) {
#pragma omp parallel for if (M * N > 65536)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                y[i * N + j] += bias[j];
    }
    return OG_OK;
}
