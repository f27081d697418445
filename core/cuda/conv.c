/* Convolutions for the VAEs through cuDNN: 2-D, and causal 3-D as a time-padded 3-D convolution.
 * bf16 tensors with fp32 accumulation on tensor cores; cuDNN's workspace and the padded input
 * come from the context's arena and are returned before the call ends (the stream orders reuse). */
#include <limits.h>

#include "core/cuda/cuda_internal.h"

#ifdef OG_HAVE_CUDNN

#define DNN_TRY(call)                                                                  \
    do {                                                                               \
        cudnnStatus_t og_d_ = (call);                                                  \
        if (og_d_ != CUDNN_STATUS_SUCCESS) {                                           \
            s = og_fail(OG_ERR_DEVICE, "cuDNN %s in %s", cudnnGetErrorString(og_d_), #call); \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

/* Packed strides of an n-dim tensor; false when it holds more than INT_MAX elements, which the
 * legacy cuDNN descriptors (int dims and strides) cannot describe. */
static bool packed_strides(int n, const int64_t *dim, int *stride)
{
    int64_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        stride[i] = (int)s;
        s *= dim[i];
        if (dim[i] <= 0 || s > INT_MAX)
            return false;
    }
    return true;
}

/* y[cout, out...] = conv(x[cin, in...], w[cout, cin, k...]) over nsp spatial dims (2 or 3). */
static og_status conv_nd(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, int nsp, int64_t cin,
                         const int64_t *in, const og_bf16 *wgt, int64_t cout, const int *ksz,
                         const int *stride, const int *pad)
{
    if ((const void *)y == (const void *)x)
        return og_fail(OG_ERR_INVALID_ARG, "conv: the output may not alias the input");
    og_status s = OG_OK;
    cudnnTensorDescriptor_t xd = NULL, yd = NULL;
    cudnnFilterDescriptor_t wd = NULL;
    cudnnConvolutionDescriptor_t cd = NULL;
    size_t mark = og_arena_mark(&ctx->arena);
    int nd = nsp + 2, xdim[5], ydim[5], wdim[5] = {(int)cout, (int)cin}, xs[5], ys[5];
    int64_t xdim64[5] = {1, cin}, ydim64[5];
    int dil[3] = {1, 1, 1};
    for (int i = 0; i < nsp; i++) {
        xdim64[2 + i] = in[i];
        wdim[2 + i] = ksz[i];
    }
    if (!packed_strides(nd, xdim64, xs) || cout <= 0 || cout > INT_MAX)
        return og_fail(OG_ERR_UNSUPPORTED, "conv %lld -> %lld channels: the input has more than "
                       "2^31 elements, past what cuDNN's descriptors take; split it (tiles or "
                       "frames)", (long long)cin, (long long)cout);
    for (int i = 0; i < nd; i++)
        xdim[i] = (int)xdim64[i];
    DNN_TRY(cudnnCreateTensorDescriptor(&xd));
    DNN_TRY(cudnnCreateTensorDescriptor(&yd));
    DNN_TRY(cudnnCreateFilterDescriptor(&wd));
    DNN_TRY(cudnnCreateConvolutionDescriptor(&cd));
    DNN_TRY(cudnnSetTensorNdDescriptor(xd, CUDNN_DATA_BFLOAT16, nd, xdim, xs));
    DNN_TRY(cudnnSetFilterNdDescriptor(wd, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NCHW, nd, wdim));
    DNN_TRY(cudnnSetConvolutionNdDescriptor(cd, nsp, pad, stride, dil, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT));
    DNN_TRY(cudnnSetConvolutionMathType(cd, CUDNN_TENSOR_OP_MATH));
    DNN_TRY(cudnnGetConvolutionNdForwardOutputDim(cd, xd, wd, nd, ydim));
    for (int i = 0; i < nd; i++)
        ydim64[i] = ydim[i];
    if (!packed_strides(nd, ydim64, ys)) {
        s = og_fail(OG_ERR_UNSUPPORTED, "conv %lld -> %lld channels: the output is empty or has "
                    "more than 2^31 elements, past what cuDNN's descriptors take; split the input "
                    "(tiles or frames)", (long long)cin, (long long)cout);
        goto done;
    }
    DNN_TRY(cudnnSetTensorNdDescriptor(yd, CUDNN_DATA_BFLOAT16, nd, ydim, ys));

    /* The fastest algorithm (by cuDNN's heuristic) whose workspace the arena can give. */
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    int found = 0;
    DNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(ctx->dnn, xd, wd, cd, yd, 8, &found, perf));
    size_t room = ctx->arena.cap - og_arena_mark(&ctx->arena);
    int pick = -1, usable = 0;
    for (int i = 0; i < found && pick < 0; i++) {
        usable += perf[i].status == CUDNN_STATUS_SUCCESS;
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory + 256 <= room)
            pick = i;
    }
    if (pick < 0) {
        s = usable ? og_fail(OG_ERR_OOM, "conv %lld -> %lld channels: no cuDNN algorithm fits "
                             "the %zu bytes left in the device arena", (long long)cin,
                             (long long)cout, room)
                   : og_fail(OG_ERR_UNSUPPORTED, "conv %lld -> %lld channels: cuDNN has no "
                             "bf16 algorithm for this shape on this GPU", (long long)cin,
                             (long long)cout);
        goto done;
    }
    void *ws = NULL;
    if (perf[pick].memory && !(ws = og_arena_alloc(&ctx->arena, perf[pick].memory))) {
        s = OG_ERR_OOM;
        goto done;
    }
    /* The heuristic reports the math type each algorithm was ranked with (it may fall back from
     * tensor-op math); run the algorithm with that one. */
    DNN_TRY(cudnnSetConvolutionMathType(cd, perf[pick].mathType));
    const float one = 1.0f, zero = 0.0f;
    DNN_TRY(cudnnConvolutionForward(ctx->dnn, &one, xd, x, wd, wgt, cd, perf[pick].algo, ws,
                                    perf[pick].memory, &zero, yd, y));
done:
    og_arena_release(&ctx->arena, mark);
    if (cd)
        cudnnDestroyConvolutionDescriptor(cd);
    if (wd)
        cudnnDestroyFilterDescriptor(wd);
    if (yd)
        cudnnDestroyTensorDescriptor(yd);
    if (xd)
        cudnnDestroyTensorDescriptor(xd);
    return s;
}

static og_status need_arena(og_cuda_ctx *ctx, const char *op)
{
    if (!ctx->arena.base)
        return og_fail(OG_ERR_INVALID_ARG, "%s needs the device arena: call og_cuda_reserve first",
                       op);
    return OG_OK;
}

og_status og_cuda_conv2d(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, int64_t cin, int64_t h,
                         int64_t w, const og_bf16 *wgt, const float *bias, int64_t cout, int kh,
                         int kw, int stride, int pad)
{
    OG_TRY(need_arena(ctx, "conv2d"));
    OG_TRY(og_cuda_use(ctx));
    int64_t in[2] = {h, w};
    int k[2] = {kh, kw}, st[2] = {stride, stride}, pd[2] = {pad, pad};
    OG_TRY(conv_nd(ctx, y, x, 2, cin, in, wgt, cout, k, st, pd));
    if (bias) {
        int64_t ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
        OG_TRY(og_cuda_add_channel_bias(ctx, y, bias, cout, ho * wo));
    }
    return OG_OK;
}

og_status og_cuda_conv3d_causal(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x,
                                const og_bf16 *cache, int64_t cin, int64_t t, int64_t h, int64_t w,
                                const og_bf16 *wgt, const float *bias, int64_t cout, int kt,
                                int kh, int kw, int pad_h, int pad_w)
{
    OG_TRY(need_arena(ctx, "conv3d"));
    OG_TRY(og_cuda_use(ctx));
    size_t mark = og_arena_mark(&ctx->arena);
    const og_bf16 *xin = x;
    int64_t tp = t + kt - 1, frame = h * w * (int64_t)sizeof(og_bf16);
    if (kt > 1) {
        /* [cin, kt-1 + t, h, w]: per channel the cached (or zero) frames, then x's frames. */
        og_bf16 *xp = og_arena_alloc(&ctx->arena, (size_t)(cin * tp * frame));
        if (!xp)
            return og_fail_context(OG_ERR_OOM, "causal conv3d padding");
        og_copy2d_plan f, b;
        og_cuda_causal_pad_plan(cin, t, kt, frame, &f, &b);
        char *dst = (char *)xp;
        cudaError_t e = cache ? cudaMemcpy2DAsync(dst + f.dst_off, f.dpitch,
                                                  (const char *)cache + f.src_off, f.spitch,
                                                  f.width, f.rows, cudaMemcpyDeviceToDevice,
                                                  ctx->stream)
                              : cudaMemset2DAsync(dst + f.dst_off, f.dpitch, 0, f.width, f.rows,
                                                  ctx->stream);
        if (e == cudaSuccess)
            e = cudaMemcpy2DAsync(dst + b.dst_off, b.dpitch, (const char *)x + b.src_off,
                                  b.spitch, b.width, b.rows, cudaMemcpyDeviceToDevice,
                                  ctx->stream);
        if (e != cudaSuccess) {
            og_arena_release(&ctx->arena, mark);
            return og_cuda_fail(e, "causal conv3d padding", __FILE__, __LINE__);
        }
        xin = xp;
    }
    int64_t in[3] = {tp, h, w};
    int k[3] = {kt, kh, kw}, st[3] = {1, 1, 1}, pd[3] = {0, pad_h, pad_w};
    og_status s = conv_nd(ctx, y, xin, 3, cin, in, wgt, cout, k, st, pd);
    og_arena_release(&ctx->arena, mark);
    OG_TRY(s);
    if (bias) {
        int64_t ho = h + 2 * pad_h - kh + 1, wo = w + 2 * pad_w - kw + 1;
        OG_TRY(og_cuda_add_channel_bias(ctx, y, bias, cout, t * ho * wo));
    }
    return OG_OK;
}

#else

og_status og_cuda_conv2d(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, int64_t cin, int64_t h,
                         int64_t w, const og_bf16 *wgt, const float *bias, int64_t cout, int kh,
                         int kw, int stride, int pad)
{
    return og_fail(OG_ERR_UNSUPPORTED, "conv2d on the GPU needs cuDNN, which this build lacks");
}

og_status og_cuda_conv3d_causal(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x,
                                const og_bf16 *cache, int64_t cin, int64_t t, int64_t h, int64_t w,
                                const og_bf16 *wgt, const float *bias, int64_t cout, int kt,
                                int kh, int kw, int pad_h, int pad_w)
{
    return og_fail(OG_ERR_UNSUPPORTED, "conv3d on the GPU needs cuDNN, which this build lacks");
}

#endif
