/* og_sgemm through OpenBLAS's cblas_sgemm (row-major). Selected by CMake with OG_GEMM=openblas. */
#include <cblas.h>

#include "core/cpu/gemm.h"

const char *og_gemm_library(void) { return "OpenBLAS"; }

og_status og_gemm_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                        float *C, int64_t ldc)
{
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || lda > INT32_MAX || ldb > INT32_MAX ||
        ldc > INT32_MAX)
        return og_fail(OG_ERR_UNSUPPORTED,
                       "OpenBLAS sgemm takes 32-bit sizes (M %lld N %lld K %lld)",
                       (long long)M, (long long)N, (long long)K);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta,
                C,
                (blasint)ldc);
    return OG_OK;
}

/* Debian's OpenBLAS is built without its bf16 GEMM (cblas_sbgemm is not exported), so the
 * opt-in bf16 precision is refused in this build and og_linear keeps the exact path. */
bool og_gemm_bf16_available(void) { return false; }

og_status og_gemm_bf16(float *y, const uint16_t *xb, int64_t M, int64_t K, const uint16_t *w,
                       int64_t N, const float *bias)
{
    return og_fail(OG_ERR_UNSUPPORTED, "bf16 GEMM needs oneDNN (build with -DOG_GEMM=dnnl)");
}

og_status og_gemm_bf16_strided(int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda,
                               const uint16_t *B, int64_t bk, int64_t bn, float *C, int64_t ldc)
{
    return og_fail(OG_ERR_UNSUPPORTED, "bf16 GEMM needs oneDNN (build with -DOG_GEMM=dnnl)");
}

og_status og_pack_weights_bf16(og_packed_weights **out, const void *w, og_dtype wt, int64_t N,
                               int64_t K)
{
    *out = NULL;
    return og_fail(OG_ERR_UNSUPPORTED, "bf16 GEMM needs oneDNN (build with -DOG_GEMM=dnnl)");
}

og_status og_linear_packed(float *y, const float *x, int64_t M, const og_packed_weights *w,
                           const float *bias, og_arena *scratch)
{
    return og_fail(OG_ERR_UNSUPPORTED, "bf16 GEMM needs oneDNN (build with -DOG_GEMM=dnnl)");
}

/* og_pack_weights_bf16 never makes one in this build. */
void og_packed_weights_free(og_packed_weights *w) { (void)w; }
