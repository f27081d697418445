/* Element-wise CUDA kernels on bf16 activations with fp32 math: activations, SwiGLU, modulation,
 * gated residuals, softmax, RoPE, nearest upsampling, conv bias and the ring's LSE merge. */
#include <cuda_bf16.h>
#include <math.h>

#include "core/cuda/cuda_internal.h"

typedef __nv_bfloat16 bf16;

#define GRID_STRIDE(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + __expf(-x)); }
__device__ __forceinline__ float gelu_tanh_f(float x)
{
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

__global__ void activate_kernel(bf16 *x, int64_t n, int f)
{
    GRID_STRIDE(i, n) {
        float v = __bfloat162float(x[i]);
        v = f == OG_CUDA_SILU ? silu_f(v) : f == OG_CUDA_GELU_TANH ? gelu_tanh_f(v) : tanhf(v);
        x[i] = __float2bfloat16(v);
    }
}

__global__ void swiglu_kernel(bf16 *out, const bf16 *gate, const bf16 *up, int64_t rows,
                              int64_t cols, int64_t in_stride)
{
    GRID_STRIDE(i, rows * cols) {
        int64_t r = i / cols, c = i % cols;
        float g = __bfloat162float(gate[r * in_stride + c]);
        float u = __bfloat162float(up[r * in_stride + c]);
        out[i] = __float2bfloat16(silu_f(g) * u);
    }
}

__global__ void modulate_kernel(bf16 *y, const bf16 *x, const float *scale, const float *shift,
                                int64_t rows, int64_t dim)
{
    GRID_STRIDE(i, rows * dim) {
        int64_t c = i % dim;
        float v = __bfloat162float(x[i]) * (1.0f + scale[c]);
        if (shift)
            v += shift[c];
        y[i] = __float2bfloat16(v);
    }
}

__global__ void gated_residual_kernel(bf16 *x, const bf16 *y, const float *gate, bool tanh_gate,
                                      int64_t rows, int64_t dim)
{
    GRID_STRIDE(i, rows * dim) {
        float g = gate ? gate[i % dim] : 1.0f;
        if (tanh_gate)
            g = tanhf(g);
        x[i] = __float2bfloat16(__bfloat162float(x[i]) + g * __bfloat162float(y[i]));
    }
}

/* One block per row; rows are short in the models (attention runs fused elsewhere). */
__global__ void softmax_kernel(bf16 *x, int64_t dim)
{
    __shared__ float red[32];
    bf16 *row = x + blockIdx.x * dim;
    float m = -INFINITY;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
        m = fmaxf(m, __bfloat162float(row[c]));
    for (int o = 16; o; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x >> 5] = m;
    __syncthreads();
    m = red[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        m = fmaxf(m, red[w]);
    __syncthreads();
    float s = 0;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
        s += __expf(__bfloat162float(row[c]) - m);
    for (int o = 16; o; o >>= 1)
        s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x >> 5] = s;
    __syncthreads();
    s = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        s += red[w];
    float inv = 1.0f / s;
    for (int64_t c = threadIdx.x; c < dim; c += blockDim.x)
        row[c] = __float2bfloat16(__expf(__bfloat162float(row[c]) - m) * inv);
}

/* One thread per rotated pair: pair k of head h of token t. */
__global__ void rope_kernel(bf16 *x, int64_t tokens, int heads, int head_dim, int64_t stride,
                            const float *cos_t, const float *sin_t, bool interleaved)
{
    int half = head_dim / 2;
    GRID_STRIDE(i, tokens * heads * half) {
        int64_t t = i / ((int64_t)heads * half);
        int h = (int)(i / half % heads), k = (int)(i % half);
        bf16 *p = x + t * stride + (int64_t)h * head_dim;
        int a = interleaved ? 2 * k : k, b = interleaved ? 2 * k + 1 : k + half;
        float c = cos_t[t * half + k], s = sin_t[t * half + k];
        float x0 = __bfloat162float(p[a]), x1 = __bfloat162float(p[b]);
        p[a] = __float2bfloat16(x0 * c - x1 * s);
        p[b] = __float2bfloat16(x0 * s + x1 * c);
    }
}

__global__ void upsample2x_kernel(bf16 *y, const bf16 *x, int64_t c, int64_t h, int64_t w)
{
    GRID_STRIDE(i, c * 4 * h * w) {
        int64_t xo = i % (2 * w), yo = i / (2 * w) % (2 * h), ch = i / (4 * h * w);
        y[i] = x[(ch * h + yo / 2) * w + xo / 2];
    }
}

__global__ void channel_bias_kernel(bf16 *y, const float *bias, int64_t channels, int64_t hw)
{
    GRID_STRIDE(i, channels * hw)
        y[i] = __float2bfloat16(__bfloat162float(y[i]) + bias[i / hw]);
}

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<bf16>(bf16 v) { return __bfloat162float(v); }

/* One block per (row, head): every thread reads the old lse, the barrier keeps thread 0's
 * update from overtaking a slower warp's read. */
template <typename T>
__global__ void lse_merge_kernel(float *out, float *lse, int64_t o_stride, const T *out_b,
                                 const float *lse_b, int64_t b_stride, int64_t sq, int heads,
                                 int head_dim)
{
    int64_t rh = blockIdx.x;
    int64_t r = rh / heads;
    int h = (int)(rh % heads);
    float la = lse[rh], lb = lse_b[rh];
    float m = fmaxf(la, lb);
    float wa = 0, wb = 0, l = -INFINITY;
    if (m != -INFINITY) {
        float ea = __expf(la - m), eb = __expf(lb - m);
        l = m + __logf(ea + eb);
        wa = ea / (ea + eb);
        wb = eb / (ea + eb);
    }
    float *o = out + r * o_stride + (int64_t)h * head_dim;
    const T *ob = out_b + r * b_stride + (int64_t)h * head_dim;
    for (int e = threadIdx.x; e < head_dim; e += blockDim.x)
        o[e] = wa * o[e] + wb * to_f(ob[e]);
    __syncthreads();
    if (threadIdx.x == 0)
        lse[rh] = l;
}

#define LAUNCH_1D(kernel, n, ...)                                           \
    do {                                                                    \
        OG_TRY(og_cuda_use(ctx));                                           \
        if ((n) > 0)                                                        \
            kernel<<<og_cuda_blocks((n), 256), 256, 0, ctx->stream>>>(__VA_ARGS__); \
        OG_CUDA_LAUNCHED(#kernel);                                          \
    } while (0)

extern "C" {

og_status og_cuda_check_image(int device)
{
    struct cudaFuncAttributes attr;
    cudaError_t e = cudaFuncGetAttributes(&attr, activate_kernel);
    if (e == cudaSuccess)
        return OG_OK;
    cudaGetLastError();
    struct cudaDeviceProp p;
    int major = 0, minor = 0;
    if (cudaGetDeviceProperties(&p, device) == cudaSuccess)
        major = p.major, minor = p.minor;
    return og_fail(OG_ERR_DEVICE, "GPU %d (sm_%d%d) cannot run this build's kernels (%s): "
                   "rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d (sm_80 or newer)", device, major,
                   minor, cudaGetErrorString(e), major, minor);
}

og_status og_cuda_activate(og_cuda_ctx *ctx, og_bf16 *x, int64_t n, og_cuda_unary f)
{
    LAUNCH_1D(activate_kernel, n, (bf16 *)x, n, (int)f);
    return OG_OK;
}

og_status og_cuda_swiglu(og_cuda_ctx *ctx, og_bf16 *out, const og_bf16 *gate, const og_bf16 *up,
                         int64_t rows, int64_t cols, int64_t in_stride)
{
    if (in_stride < cols || (out == gate && in_stride != cols) || (out == up && in_stride != cols))
        return og_fail(OG_ERR_INVALID_ARG, "swiglu: in_stride %lld with %lld columns and out "
                       "aliasing an input", (long long)in_stride, (long long)cols);
    LAUNCH_1D(swiglu_kernel, rows * cols, (bf16 *)out, (const bf16 *)gate, (const bf16 *)up, rows,
              cols, in_stride);
    return OG_OK;
}

og_status og_cuda_modulate(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *scale,
                           const float *shift, int64_t rows, int64_t dim)
{
    if (!scale)
        return og_fail(OG_ERR_INVALID_ARG, "modulate: scale is required (shift may be NULL)");
    LAUNCH_1D(modulate_kernel, rows * dim, (bf16 *)y, (const bf16 *)x, scale, shift, rows, dim);
    return OG_OK;
}

og_status og_cuda_gated_residual(og_cuda_ctx *ctx, og_bf16 *x, const og_bf16 *y,
                                 const float *gate, bool tanh_gate, int64_t rows, int64_t dim)
{
    LAUNCH_1D(gated_residual_kernel, rows * dim, (bf16 *)x, (const bf16 *)y, gate, tanh_gate,
              rows, dim);
    return OG_OK;
}

og_status og_cuda_softmax(og_cuda_ctx *ctx, og_bf16 *x, int64_t rows, int64_t dim)
{
    OG_TRY(og_cuda_use(ctx));
    if (rows > 0 && dim > 0)
        softmax_kernel<<<(unsigned)rows, 256, 0, ctx->stream>>>((bf16 *)x, dim);
    OG_CUDA_LAUNCHED("softmax");
    return OG_OK;
}

og_status og_cuda_rope(og_cuda_ctx *ctx, og_bf16 *x, int64_t tokens, int heads, int head_dim,
                       int64_t stride, const float *cos_t, const float *sin_t, bool interleaved)
{
    if (head_dim % 2)
        return og_fail(OG_ERR_INVALID_ARG, "rope: odd head_dim %d", head_dim);
    LAUNCH_1D(rope_kernel, tokens * heads * (head_dim / 2), (bf16 *)x, tokens, heads, head_dim,
              stride, cos_t, sin_t, interleaved);
    return OG_OK;
}

og_status og_cuda_upsample_nearest2x(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, int64_t c,
                                     int64_t h, int64_t w)
{
    LAUNCH_1D(upsample2x_kernel, c * 4 * h * w, (bf16 *)y, (const bf16 *)x, c, h, w);
    return OG_OK;
}

og_status og_cuda_add_channel_bias(og_cuda_ctx *ctx, og_bf16 *y, const float *bias,
                                   int64_t channels, int64_t hw)
{
    LAUNCH_1D(channel_bias_kernel, channels * hw, (bf16 *)y, bias, channels, hw);
    return OG_OK;
}

og_status og_cuda_lse_merge(og_cuda_ctx *ctx, float *out, float *lse, int64_t o_stride,
                            const void *out_b, og_dtype bt, const float *lse_b, int64_t b_stride,
                            int64_t sq, int heads, int head_dim)
{
    if (bt != OG_F32 && bt != OG_BF16)
        return og_fail(OG_ERR_UNSUPPORTED, "lse merge of %s partials", og_dtype_name(bt));
    OG_TRY(og_cuda_use(ctx));
    unsigned blocks = (unsigned)(sq * heads);
    int threads = head_dim < 128 ? 64 : 128;
    if (blocks == 0)
        return OG_OK;
    if (bt == OG_F32)
        lse_merge_kernel<float><<<blocks, threads, 0, ctx->stream>>>(
            out, lse, o_stride, (const float *)out_b, lse_b, b_stride, sq, heads, head_dim);
    else
        lse_merge_kernel<bf16><<<blocks, threads, 0, ctx->stream>>>(
            out, lse, o_stride, (const bf16 *)out_b, lse_b, b_stride, sq, heads, head_dim);
    OG_CUDA_LAUNCHED("lse merge");
    return OG_OK;
}

} /* extern "C" */
