/* Bias of a token-major GEMM whose epilogue cannot take it: og_cuda_gemm has none, and the VAE's
 * attention projections multiply a transposed (channel-major) input. bf16 rows, f32 bias. */
#include <cuda_bf16.h>

#include "core/cuda/cuda_internal.h"

typedef __nv_bfloat16 bf16;

__global__ void row_bias_kernel(bf16 *y, const float *bias, int64_t rows, int64_t cols,
                                int64_t stride)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * cols;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols;
        bf16 *p = y + r * stride + c;
        *p = __float2bfloat16(__bfloat162float(*p) + bias[c]);
    }
}

extern "C" og_status og_cuda_add_row_bias(og_cuda_ctx *ctx, og_bf16 *y, const float *bias,
                                          int64_t rows, int64_t cols, int64_t stride)
{
    if (rows < 0 || cols < 0 || stride < cols)
        return og_fail(OG_ERR_INVALID_ARG, "row bias: %lld rows of %lld columns at stride %lld",
                       (long long)rows, (long long)cols, (long long)stride);
    OG_TRY(og_cuda_use(ctx));
    if (rows * cols > 0)
        row_bias_kernel<<<og_cuda_blocks(rows * cols, 256), 256, 0, ctx->stream>>>(
            (bf16 *)y, bias, rows, cols, stride);
    OG_CUDA_LAUNCHED("row bias");
    return OG_OK;
}
