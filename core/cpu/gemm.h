/* Internals shared by the two og_sgemm back ends (gemm_dnnl.c, gemm_openblas.c) and og_linear. */
#ifndef OG_CPU_GEMM_H
#define OG_CPU_GEMM_H

#include "core/ops.h"

/* Refuses negative sizes and leading dimensions too small for row-major storage. */
og_status og_sgemm_check(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                         int64_t ldb, int64_t ldc);
/* C[M, N] *= beta (beta == 0 writes zeros, whatever C held). */
void og_scale_matrix(float *C, int64_t M, int64_t N, int64_t ldc, float beta);

/* Whether this GEMM library has the bf16 path behind og_gemm_set_precision(OG_GEMM_BF16). */
bool og_gemm_bf16_available(void);
/* y[M, N] = bf16(x) . W^T (+ bias), W bf16 [N, K], f32 accumulation and output. */
og_status og_gemm_bf16(float *y, const float *x, int64_t M, int64_t K, const uint16_t *w,
                       int64_t N, const float *bias);

#endif
