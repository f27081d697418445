/* Between og_sgemm and og_linear (linear.c) and the two GEMM back ends (gemm_dnnl.c,
 * gemm_openblas.c). */
#ifndef OG_CPU_GEMM_H
#define OG_CPU_GEMM_H

#include "core/ops.h"

/* The library's row-major sgemm, as og_sgemm, once og_sgemm has checked the sizes and handled
 * the empty cases (M, N and K are all positive here). */
og_status og_gemm_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                        float *C, int64_t ldc);

/* Whether this GEMM library has the bf16 path behind og_gemm_set_precision(OG_GEMM_BF16). */
bool og_gemm_bf16_available(void);
/* y[M, N] = xb . W^T (+ bias), xb bf16 [M, K] (og_linear rounds x into its scratch), W bf16
 * [N, K], f32 accumulation and output. */
og_status og_gemm_bf16(float *y, const uint16_t *xb, int64_t M, int64_t K, const uint16_t *w,
                       int64_t N, const float *bias);
/* C[M, N] = A[M, K] . B[K, N] on the bf16 units, f32 accumulation and output, at any strides:
 * A[i, k] is A[i * lda + k], B[k, j] is B[k * bk + j * bn], C[i, j] is C[i * ldc + j]. The
 * attention's bf16 path runs its two products through it. */
og_status og_gemm_bf16_strided(int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda,
                               const uint16_t *B, int64_t bk, int64_t bn, float *C, int64_t ldc);

/* dst[r, c] = bf16(src[r * ld + c]) for a [rows, cols] block, dst contiguous (linear.c). */
void og_f32_to_bf16_rows(uint16_t *dst, const float *src, int64_t rows, int64_t cols, int64_t ld);

#endif
