/* Device-side data movement that is not a model op: strided 2-D copies on the context's stream
 * (head packing for sequence parallelism, row slices) and f32 -> bf16 narrowing. */
#include <cuda_bf16.h>

#include "core/cuda/cuda_internal.h"

__global__ void f32_to_bf16_kernel(__nv_bfloat16 *y, const float *x, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}

extern "C" og_status og_cuda_copy2d(og_cuda_ctx *ctx, void *dst, size_t dpitch, const void *src,
                                    size_t spitch, size_t width, size_t rows)
{
    if (width == 0 || rows == 0)
        return OG_OK;
    OG_TRY(og_cuda_use(ctx));
    OG_CUDA_TRY(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyDefault,
                                  ctx->stream));
    return OG_OK;
}

extern "C" og_status og_cuda_f32_to_bf16(og_cuda_ctx *ctx, og_bf16 *y, const float *x, int64_t n)
{
    if (n <= 0)
        return OG_OK;
    OG_TRY(og_cuda_use(ctx));
    f32_to_bf16_kernel<<<og_cuda_blocks(n, 256), 256, 0, ctx->stream>>>((__nv_bfloat16 *)y, x, n);
    OG_CUDA_LAUNCHED("f32_to_bf16");
    return OG_OK;
}
