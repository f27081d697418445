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
/* y[M, N] = bf16(x) . W^T (+ bias), W bf16 [N, K], f32 accumulation and output. */
og_status og_gemm_bf16(float *y, const float *x, int64_t M, int64_t K, const uint16_t *w,
                       int64_t N, const float *bias);

#endif
