/* Normalisation kernels with fp32 statistics: LayerNorm and RMSNorm (one warp per row, fused with
 * the adaLN modulation that follows them in every DiT block) and GroupNorm (+SiLU) for the VAE,
 * whose few huge groups are split over many blocks and merged with Chan's formula. */
#include <cuda_bf16.h>
#include <math.h>

#include "core/cuda/cuda_internal.h"

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float modulated(float v, int64_t c, const float *w, const float *b,
                                           const float *scale, const float *shift)
{
    if (w)
        v *= w[c];
    if (b)
        v += b[c];
    if (scale)
        v *= 1.0f + scale[c];
    if (shift)
        v += shift[c];
    return v;
}

/* Row r of `rows` lives at (r / per_token) * stride + (r % per_token) * dim. */
__global__ void row_norm_kernel(bf16 *y, const bf16 *x, const float *w, const float *b,
                                int64_t rows, int per_token, int64_t dim, int64_t stride, float eps,
                                bool rms, const float *scale, const float *shift)
{
    int64_t r = blockIdx.x * (int64_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (r >= rows)
        return;
    int64_t off = (r / per_token) * stride + (r % per_token) * dim;
    const bf16 *xr = x + off;
    bf16 *yr = y + off;
    float mean = 0;
    if (!rms) {
        float s = 0;
        for (int64_t c = lane; c < dim; c += 32)
            s += __bfloat162float(xr[c]);
        mean = warp_sum(s) / (float)dim;
    }
    float ss = 0;
    for (int64_t c = lane; c < dim; c += 32) {
        float d = __bfloat162float(xr[c]) - mean;
        ss += d * d;
    }
    float inv = rsqrtf(warp_sum(ss) / (float)dim + eps);
    for (int64_t c = lane; c < dim; c += 32) {
        float v = (__bfloat162float(xr[c]) - mean) * inv;
        yr[c] = __float2bfloat16(modulated(v, c, w, b, scale, shift));
    }
}

static og_status row_norm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                          const float *b, int64_t rows, int per_token, int64_t dim, int64_t stride,
                          float eps, bool rms, const float *scale, const float *shift)
{
    if (dim <= 0 || stride < dim * per_token)
        return og_fail(OG_ERR_INVALID_ARG, "norm: stride %lld is shorter than %d x %lld",
                       (long long)stride, per_token, (long long)dim);
    OG_TRY(og_cuda_use(ctx));
    const int warps = 8;
    if (rows > 0)
        row_norm_kernel<<<(unsigned)((rows + warps - 1) / warps), warps * 32, 0, ctx->stream>>>(
            (bf16 *)y, (const bf16 *)x, w, b, rows, per_token, dim, stride, eps, rms, scale, shift);
    OG_CUDA_LAUNCHED("norm");
    return OG_OK;
}

/* Partial statistics of one chunk of one group: count, mean and the sum of squared deviations,
 * computed in two passes over the chunk so large means do not cancel. */
__global__ void group_stats_kernel(float *part, const bf16 *x, int64_t gsize, int64_t chunk)
{
    __shared__ float red[32];
    int g = blockIdx.y, c = blockIdx.x;
    int64_t lo = (int64_t)c * chunk, hi = lo + chunk < gsize ? lo + chunk : gsize;
    const bf16 *xg = x + (int64_t)g * gsize;
    float n = (float)(hi > lo ? hi - lo : 0);
    float acc[2] = {0, 0};
    float mean = 0;
    for (int pass = 0; pass < 2; pass++) {
        float s = 0;
        for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
            float v = __bfloat162float(xg[i]) - mean;
            s += pass ? v * v : v;
        }
        s = warp_sum(s);
        if ((threadIdx.x & 31) == 0)
            red[threadIdx.x >> 5] = s;
        __syncthreads();
        s = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++)
            s += red[i];
        __syncthreads();
        acc[pass] = s;
        if (pass == 0)
            mean = n > 0 ? s / n : 0;
    }
    if (threadIdx.x == 0) {
        float *p = part + ((int64_t)g * gridDim.x + c) * 3;
        p[0] = n;
        p[1] = mean;
        p[2] = acc[1];
    }
}

/* Merges a group's chunk statistics (Chan et al.) into mean and 1/std. */
__global__ void group_finish_kernel(float *stat, const float *part, int groups, int chunks,
                                    float eps)
{
    int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups)
        return;
    double n = 0, mean = 0, m2 = 0;
    for (int c = 0; c < chunks; c++) {
        const float *p = part + ((int64_t)g * chunks + c) * 3;
        double nb = p[0];
        if (nb == 0)
            continue;
        double d = p[1] - mean, nn = n + nb;
        mean += d * nb / nn;
        m2 += p[2] + d * d * n * nb / nn;
        n = nn;
    }
    stat[2 * g] = (float)mean;
    stat[2 * g + 1] = (float)(1.0 / sqrt(m2 / n + eps));
}

__global__ void group_apply_kernel(bf16 *y, const bf16 *x, const float *stat, const float *w,
                                   const float *b, int64_t channels, int64_t hw, int64_t cpg,
                                   bool silu)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < channels * hw;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = i / hw, g = c / cpg;
        float v = (__bfloat162float(x[i]) - stat[2 * g]) * stat[2 * g + 1];
        v = modulated(v, c, w, b, NULL, NULL);
        if (silu)
            v = v / (1.0f + __expf(-v));
        y[i] = __float2bfloat16(v);
    }
}

extern "C" {

og_status og_cuda_layernorm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                            const float *b, int64_t rows, int64_t dim, int64_t stride, float eps,
                            const float *scale, const float *shift)
{
    return row_norm(ctx, y, x, w, b, rows, 1, dim, stride, eps, false, scale, shift);
}

og_status og_cuda_rmsnorm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                          int64_t tokens, int heads, int64_t dim, int64_t stride, float eps,
                          const float *scale, const float *shift)
{
    return row_norm(ctx, y, x, w, NULL, tokens * heads, heads, dim, stride, eps, true, scale,
                    shift);
}

og_status og_cuda_groupnorm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                            const float *b, int64_t channels, int64_t hw, int groups, float eps,
                            bool silu)
{
    if (groups <= 0 || groups > OG_CUDA_MAX_GRID_YZ || channels % groups)
        return og_fail(OG_ERR_INVALID_ARG, "groupnorm: %lld channels in %d groups (at most %lld "
                       "groups, dividing the channels)", (long long)channels, groups,
                       OG_CUDA_MAX_GRID_YZ);
    OG_TRY(og_cuda_use(ctx));
    int64_t cpg = channels / groups, gsize = cpg * hw;
    if (gsize == 0)
        return OG_OK;
    int64_t chunks, chunk;
    og_cuda_gn_chunks(gsize, &chunks, &chunk);
    /* The statistics live in the cuBLASLt workspace: same stream, so no GEMM can overlap them. */
    float *part = (float *)ctx->workspace, *stat = part + groups * chunks * 3;
    if ((size_t)(groups * chunks * 3 + groups * 2) * sizeof(float) > ctx->workspace_bytes)
        return og_fail(OG_ERR_INVALID_ARG, "groupnorm: %d groups need more workspace", groups);
    group_stats_kernel<<<dim3((unsigned)chunks, (unsigned)groups), 256, 0, ctx->stream>>>(
        part, (const bf16 *)x, gsize, chunk);
    OG_CUDA_LAUNCHED("groupnorm stats");
    group_finish_kernel<<<(groups + 127) / 128, 128, 0, ctx->stream>>>(stat, part, groups,
                                                                        (int)chunks, eps);
    OG_CUDA_LAUNCHED("groupnorm finish");
    group_apply_kernel<<<og_cuda_blocks(channels * hw, 256), 256, 0, ctx->stream>>>(
        (bf16 *)y, (const bf16 *)x, stat, w, b, channels, hw, cpg, silu);
    OG_CUDA_LAUNCHED("groupnorm apply");
    return OG_OK;
}

} /* extern "C" */
