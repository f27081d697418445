/* What the CUDA backend's files share and callers do not see: the context, status conversion
 * from CUDA/cuBLAS/cuDNN codes into the error context, and the launchers that host files call. */
#ifndef OG_CUDA_INTERNAL_H
#define OG_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_runtime.h>
#ifdef OG_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "core/cuda/cuda_backend.h"
#include "core/cuda/cuda_plan.h" /* og_cuda_blocks and the other pure index math */

#ifdef __cplusplus
extern "C" {
#endif

#define OG_CUDA_LT_CACHE 64

/* A cuBLASLt plan for one GEMM shape: descriptors and the chosen algorithm, reused by every call
 * of the same shape so a step pays the heuristic query once per shape. */
typedef struct {
    int64_t M, N, K, lda, ldb, ldc;
    bool ta, tb;
    int yt, epilogue; /* the epilogue says whether there is a bias */
    int align;        /* smallest pointer alignment of A, B and C, in bytes */
    int bias_align;   /* the bias pointer's alignment (0: no bias): the heuristic reads it */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} og_cuda_lt_plan;

struct og_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    og_cuda_lt_plan plans[OG_CUDA_LT_CACHE];
    int nplans, next_evict;
#ifdef OG_HAVE_CUDNN
    cudnnHandle_t dnn;
#endif
    og_arena arena; /* base is device memory; only the bookkeeping of og_arena is used */
};

/* Records a failed CUDA call in the error context with the call site; returns OG_ERR_DEVICE. */
og_status og_cuda_fail(cudaError_t e, const char *what, const char *file, int line);
og_status og_cublas_fail(cublasStatus_t s, const char *what, const char *file, int line);

#define OG_CUDA_TRY(call)                                          \
    do {                                                           \
        cudaError_t og_e_ = (call);                                \
        if (og_e_ != cudaSuccess)                                  \
            return og_cuda_fail(og_e_, #call, __FILE__, __LINE__); \
    } while (0)
#define OG_CUBLAS_TRY(call)                                          \
    do {                                                             \
        cublasStatus_t og_s_ = (call);                               \
        if (og_s_ != CUBLAS_STATUS_SUCCESS)                          \
            return og_cublas_fail(og_s_, #call, __FILE__, __LINE__); \
    } while (0)
/* After a kernel launch: reports a bad launch configuration at once. */
#define OG_CUDA_LAUNCHED(what) OG_CUDA_TRY(cudaGetLastError())

/* Makes ctx's device current for the calling thread (ranks sharing a process switch devices). */
og_status og_cuda_use(og_cuda_ctx *ctx);

/* Fails with a rebuild hint when the device cannot run the kernels compiled into this build. */
og_status og_cuda_check_image(int device);

/* Releases the context's cuBLASLt plans (linear.c). */
void og_cuda_lt_plans_free(og_cuda_ctx *ctx);

/* y[c, :] += bias[c] over channels of hw elements (conv bias; cuDNN has no mixed-type add). */
og_status og_cuda_add_channel_bias(og_cuda_ctx *ctx, og_bf16 *y, const float *bias,
                                   int64_t channels, int64_t hw);

#ifdef __cplusplus
}
#endif

#endif
