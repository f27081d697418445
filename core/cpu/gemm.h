/* Internals shared by the two og_sgemm back ends (gemm_dnnl.c, gemm_openblas.c) and og_linear. */
#ifndef OG_CPU_GEMM_H
#define OG_CPU_GEMM_H

#include "core/ops.h"

/* Refuses negative sizes and leading dimensions too small for row-major storage. */
og_status og_sgemm_check(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                         int64_t ldb, int64_t ldc);
/* C[M, N] *= beta (beta == 0 writes zeros, whatever C held). */
void og_scale_matrix(float *C, int64_t M, int64_t N, int64_t ldc, float beta);

#endif
