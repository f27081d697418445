/* GEMMs through cuBLASLt: bf16 inputs, fp32 accumulation, bf16 or f32 output, bias and GELU in the
 * epilogue. Row-major C[M, N] = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, so cuBLASLt's
 * first operand is B and its second A, each seen column-major as stored (og_lt_operands in
 * cuda_plan.h, tested on the CPU). A plan (descriptors and the heuristic's algorithm) is cached
 * per shape and alignment, so a step pays the query once per shape. */
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

/* `bias` is the first call's bias (NULL without one): the heuristic reads its address for the
 * alignment it may assume, and the plan key holds that alignment. */
static og_status plan_create(og_cuda_ctx *ctx, og_cuda_lt_plan *p, const void *bias)
{
    cudaDataType_t ct = p->yt == OG_F32 ? CUDA_R_32F : CUDA_R_16BF;
    og_lt_operand a, b, c;
    og_lt_operands(p->ta, p->tb, p->M, p->N, p->K, p->lda, p->ldb, p->ldc, &a, &b, &c);
    cublasOperation_t op_a = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtEpilogue_t ep = (cublasLtEpilogue_t)p->epilogue;
    OG_CUBLAS_TRY(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a));
    OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b));
    OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    if (bias)
        OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof bias));
    OG_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, a.rows, a.cols, a.ld));
    OG_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, b.rows, b.cols, b.ld));
    OG_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&p->c, ct, c.rows, c.cols, c.ld));

    cublasLtMatmulPreference_t pref;
    OG_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&pref));
    uint32_t al = (uint32_t)p->align;
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
        return og_fail(OG_ERR_UNSUPPORTED, "cuBLASLt has no kernel for a %lld x %lld x %lld GEMM "
                       "(transposes %d %d, %s output, %d-byte alignment; status %d)",
                       (long long)p->M, (long long)p->N, (long long)p->K, p->ta, p->tb,
                       og_dtype_name((og_dtype)p->yt), p->align, (int)s);
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

static bool same_shape(const og_cuda_lt_plan *p, const og_cuda_lt_plan *k)
{
    return p->M == k->M && p->N == k->N && p->K == k->K && p->lda == k->lda && p->ldb == k->ldb &&
           p->ldc == k->ldc && p->ta == k->ta && p->tb == k->tb && p->yt == k->yt &&
           p->epilogue == k->epilogue && p->align == k->align && p->bias_align == k->bias_align;
}

static og_status plan_get(og_cuda_ctx *ctx, const og_cuda_lt_plan *key, const void *bias,
                          og_cuda_lt_plan **out)
{
    for (int i = 0; i < ctx->nplans; i++)
        if (same_shape(&ctx->plans[i], key)) {
            *out = &ctx->plans[i];
            return OG_OK;
        }
    /* A full cache recycles the oldest plan: shapes change only with resolution or model. */
    int slot = ctx->nplans < OG_CUDA_LT_CACHE ? ctx->nplans++ : ctx->next_evict++ % OG_CUDA_LT_CACHE;
    og_cuda_lt_plan *p = &ctx->plans[slot];
    plan_destroy(p);
    *p = *key;
    og_status s = plan_create(ctx, p, bias);
    if (s != OG_OK) {
        plan_destroy(p);
        return s;
    }
    *out = p;
    return OG_OK;
}

/* C = act(alpha op(A) op(B) + bias + beta C) with everything checked and planned. */
static og_status gemm(og_cuda_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                      float alpha, const og_bf16 *A, int64_t lda, const og_bf16 *B, int64_t ldb,
                      float beta, void *C, og_dtype ct, int64_t ldc, const void *bias,
                      og_cuda_act act)
{
    if (M <= 0 || N <= 0 || K <= 0)
        return og_fail(OG_ERR_INVALID_ARG, "GEMM: empty %lld x %lld x %lld", (long long)M,
                       (long long)N, (long long)K);
    if (lda < (ta ? M : K) || ldb < (tb ? K : N) || ldc < N)
        return og_fail(OG_ERR_INVALID_ARG, "GEMM: leading dimensions %lld %lld %lld are shorter "
                       "than the rows", (long long)lda, (long long)ldb, (long long)ldc);
    if (ct != OG_BF16 && ct != OG_F32)
        return og_fail(OG_ERR_UNSUPPORTED, "GEMM: output must be bf16 or f32, not %s",
                       og_dtype_name(ct));
    OG_TRY(og_cuda_use(ctx));
    cublasLtEpilogue_t ep = act == OG_CUDA_ACT_GELU_TANH
                                ? (bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU)
                                : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    int align = ptr_align(A), al_b = ptr_align(B), al_c = ptr_align(C);
    align = al_b < align ? al_b : align;
    align = al_c < align ? al_c : align;
    og_cuda_lt_plan key = {.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .ta = ta,
                           .tb = tb, .yt = ct, .epilogue = ep, .align = align,
                           .bias_align = bias ? ptr_align(bias) : 0};
    og_cuda_lt_plan *p;
    OG_TRY(plan_get(ctx, &key, bias, &p));
    if (bias)
        OG_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof bias));
    OG_CUBLAS_TRY(cublasLtMatmul(ctx->lt, p->op, &alpha, B, p->a, A, p->b, &beta, C, p->c, C, p->c,
                                 &p->algo, ctx->workspace, ctx->workspace_bytes, ctx->stream));
    return OG_OK;
}

og_status og_cuda_linear(og_cuda_ctx *ctx, void *y, og_dtype yt, const og_bf16 *x, int64_t M,
                         int64_t K, const og_bf16 *w, int64_t N, const void *bias, og_cuda_act act)
{
    return gemm(ctx, false, true, M, N, K, 1.0f, x, K, w, K, 0.0f, y, yt, N, bias, act);
}

og_status og_cuda_gemm(og_cuda_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       float alpha, const og_bf16 *A, int64_t lda, const og_bf16 *B, int64_t ldb,
                       float beta, void *C, og_dtype ct, int64_t ldc)
{
    return gemm(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ct, ldc, NULL,
                OG_CUDA_ACT_NONE);
}
