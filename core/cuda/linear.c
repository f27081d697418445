/* og_cuda_linear: y = act(x · W^T + bias) through cuBLASLt, bf16 inputs, fp32 accumulation, bias
 * and GELU in the epilogue. Row-major y[M, N] is column-major D[N, M] = W^T(op T) · x(op N) with
 * W seen as column-major [K, N]; a plan (descriptors + heuristic's algorithm) is cached per shape. */
#include <string.h>

#include "core/cuda/cuda_internal.h"

/* Largest power of two (<= 256) dividing the address: cuBLASLt picks kernels by alignment. */
static int ptr_align(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 2 && (a % (uintptr_t)al) != 0)
        al /= 2;
    return al;
}

static og_status plan_create(og_cuda_ctx *ctx, og_cuda_lt_plan *p, int align)
{
    cudaDataType_t yt = p->yt == OG_F32 ? CUDA_R_32F : CUDA_R_16BF;
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasLtEpilogue_t ep = (cublasLtEpilogue_t)p->epilogue;
    OG_CUBLAS_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    OG_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, (uint64_t)p->K, (uint64_t)p->N, p->K));
    OG_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, (uint64_t)p->K, (uint64_t)p->M, p->K));
    OG_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->c, yt, (uint64_t)p->N, (uint64_t)p->M, p->N));

    cublasLtMatmulPreference_t pref;
    OG_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref));
    uint32_t al = (uint32_t)align;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &ctx->workspace_bytes, sizeof ctx->workspace_bytes);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->op, p->a, p->b, p->c, p->c, pref,
                                                      1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || found == 0)
        return og_fail(OG_ERR_UNSUPPORTED, "cuBLASLt has no kernel for a [%lld x %lld] x "
                       "[%lld x %lld]^T GEMM with %s output (status %d)", (long long)p->M,
                       (long long)p->K, (long long)p->N, (long long)p->K,
                       og_dtype_name((og_dtype)p->yt), (int)s);
    p->algo = res.algo;
    return OG_OK;
}

static void plan_destroy(og_cuda_lt_plan *p)
{
    if (p->op)
        cublasLtMatmulDescDestroy(p->op);
    if (p->a)
        cublasLtMatrixLayoutDestroy(p->a);
    if (p->b)
        cublasLtMatrixLayoutDestroy(p->b);
    if (p->c)
        cublasLtMatrixLayoutDestroy(p->c);
    memset(p, 0, sizeof *p);
}

void og_cuda_lt_plans_free(og_cuda_ctx *ctx)
{
    for (int i = 0; i < ctx->nplans; i++)
        plan_destroy(&ctx->plans[i]);
    ctx->nplans = ctx->next_evict = 0;
}

static og_status plan_get(og_cuda_ctx *ctx, const og_cuda_lt_plan *key, int align,
                          og_cuda_lt_plan **out)
{
    for (int i = 0; i < ctx->nplans; i++) {
        og_cuda_lt_plan *p = &ctx->plans[i];
        if (p->M == key->M && p->N == key->N && p->K == key->K && p->yt == key->yt &&
            p->epilogue == key->epilogue && p->has_bias == key->has_bias && p->align == align) {
            *out = p;
            return OG_OK;
        }
    }
    /* A full cache recycles the oldest plan: shapes change only with resolution or model. */
    int slot = ctx->nplans < OG_CUDA_LT_CACHE ? ctx->nplans++ : ctx->next_evict++ % OG_CUDA_LT_CACHE;
    og_cuda_lt_plan *p = &ctx->plans[slot];
    plan_destroy(p);
    *p = *key;
    p->align = align;
    og_status s = plan_create(ctx, p, align);
    if (s != OG_OK) {
        plan_destroy(p);
        return s;
    }
    *out = p;
    return OG_OK;
}

og_status og_cuda_linear(og_cuda_ctx *ctx, void *y, og_dtype yt, const og_bf16 *x, int64_t M,
                         int64_t K, const og_bf16 *w, int64_t N, const void *bias, og_cuda_act act)
{
    if (M <= 0 || N <= 0 || K <= 0)
        return og_fail(OG_ERR_INVALID_ARG, "linear: empty GEMM %lld x %lld x %lld", (long long)M,
                       (long long)N, (long long)K);
    if (yt != OG_BF16 && yt != OG_F32)
        return og_fail(OG_ERR_UNSUPPORTED, "linear: output must be bf16 or f32, not %s",
                       og_dtype_name(yt));
    OG_TRY(og_cuda_use(ctx));
    cublasLtEpilogue_t ep = act == OG_CUDA_ACT_GELU_TANH
                                ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    og_cuda_lt_plan key = {.M = M, .N = N, .K = K, .yt = yt, .epilogue = ep, .has_bias = bias != NULL};
    int align = ptr_align(x);
    int al_w = ptr_align(w), al_y = ptr_align(y);
    if (al_w < align)
        align = al_w;
    if (al_y < align)
        align = al_y;
    og_cuda_lt_plan *p;
    OG_TRY(plan_get(ctx, &key, align, &p));
    if (bias)
        OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof bias));
    const float one = 1.0f, zero = 0.0f;
    OG_CUBLAS_TRY(cublasLtMatmul(ctx->lt, p->op, &one, w, p->a, x, p->b, &zero, y, p->c, y, p->c,
                                 &p->algo, ctx->workspace, ctx->workspace_bytes, ctx->stream));
    return OG_OK;
}
