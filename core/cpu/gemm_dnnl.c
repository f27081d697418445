/* og_sgemm through oneDNN's row-major sgemm (JIT AVX-512 kernels, OpenMP threads of the calling
 * thread's team, no primitive to create or cache). Selected by CMake with OG_GEMM=dnnl. */
#include <oneapi/dnnl/dnnl.h>

#include "core/cpu/gemm.h"

const char *og_gemm_library(void) { return "oneDNN"; }

og_status og_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    OG_TRY(og_sgemm_check(ta, tb, M, N, K, lda, ldb, ldc));
    if (M == 0 || N == 0)
        return OG_OK;
    if (K == 0) {
        og_scale_matrix(C, M, N, ldc, beta);
        return OG_OK;
    }
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                                  beta, C, ldc);
    if (st != dnnl_success)
        return og_fail(OG_ERR_INTERNAL, "oneDNN sgemm failed (status %d) for M %lld N %lld K %lld",
                       (int)st, (long long)M, (long long)N, (long long)K);
    return OG_OK;
}
