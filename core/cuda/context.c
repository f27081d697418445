/* Devices, contexts and device memory: device discovery that never crashes without a driver, the
 * --devices parser, one up-front arena per context with a shortfall message, and host transfers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/cuda_internal.h"

#define OG_CUDA_WORKSPACE (32u << 20) /* cuBLASLt's recommended workspace on Hopper */
#define OG_MIB(b) ((double)(b) / (1024.0 * 1024.0))

og_status og_cuda_fail(cudaError_t e, const char *what, const char *file, int line)
{
    return og_fail(OG_ERR_DEVICE, "CUDA error %s (%s) in %s at %s:%d", cudaGetErrorName(e),
                   cudaGetErrorString(e), what, file, line);
}

og_status og_cublas_fail(cublasStatus_t s, const char *what, const char *file, int line)
{
    return og_fail(OG_ERR_DEVICE, "cuBLAS error %d in %s at %s:%d", (int)s, what, file, line);
}

int og_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

const char *og_cuda_device_name(int d, char *buf, size_t cap)
{
    struct cudaDeviceProp p;
    if (cap)
        buf[0] = '\0';
    if (d < 0 || d >= og_cuda_device_count() || cudaGetDeviceProperties(&p, d) != cudaSuccess)
        return buf;
    snprintf(buf, cap, "%s, %.1f GiB, sm_%d%d", p.name, (double)p.totalGlobalMem / (1 << 30),
             p.major, p.minor);
    return buf;
}

og_status og_cuda_parse_devices(const char *list, int *devices, int max, int *count)
{
    int n = og_cuda_device_count();
    *count = 0;
    if (n == 0)
        return og_fail(OG_ERR_DEVICE, "--devices %s: no CUDA device is visible (no GPU, no driver, "
                       "or CUDA_VISIBLE_DEVICES hides them); use --backend cpu", list);
    const char *p = list;
    while (*p) {
        char *end;
        long d = strtol(p, &end, 10);
        if (end == p || !isdigit((unsigned char)*p))
            return og_fail(OG_ERR_INVALID_ARG, "--devices %s: expected a comma-separated list of "
                           "device indices such as 0,1", list);
        if (d >= n)
            return og_fail(OG_ERR_INVALID_ARG, "--devices %s: device %ld does not exist; this "
                           "machine has %d CUDA device(s), 0..%d", list, d, n, n - 1);
        for (int i = 0; i < *count; i++)
            if (devices[i] == d)
                return og_fail(OG_ERR_INVALID_ARG, "--devices %s: device %ld is listed twice; "
                               "ranks sharing one GPU need the in-process communicator "
                               "(one process, no --devices repeat)", list, d);
        if (*count == max)
            return og_fail(OG_ERR_INVALID_ARG, "--devices %s: more than %d devices", list, max);
        devices[(*count)++] = (int)d;
        if (*end == ',' && end[1] != '\0')
            p = end + 1;
        else if (*end == '\0')
            p = end;
        else
            return og_fail(OG_ERR_INVALID_ARG, "--devices %s: expected a comma-separated list of "
                           "device indices such as 0,1", list);
    }
    if (*count == 0)
        return og_fail(OG_ERR_INVALID_ARG, "--devices: empty list; give indices such as 0,1");
    return OG_OK;
}

og_status og_cuda_use(og_cuda_ctx *ctx)
{
    OG_CUDA_TRY(cudaSetDevice(ctx->device));
    return OG_OK;
}

static og_status ctx_create(int device, og_cuda_ctx *c)
{
    c->device = device;
    OG_CUDA_TRY(cudaSetDevice(device));
    OG_TRY(og_cuda_check_image(device));
    OG_CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    OG_CUBLAS_TRY(cublasLtCreate(&c->lt));
    c->workspace_bytes = OG_CUDA_WORKSPACE;
    OG_CUDA_TRY(cudaMalloc(&c->workspace, c->workspace_bytes));
#ifdef OG_HAVE_CUDNN
    cudnnStatus_t s = cudnnCreate(&c->dnn);
    if (s != CUDNN_STATUS_SUCCESS)
        return og_fail(OG_ERR_DEVICE, "cuDNN: %s", cudnnGetErrorString(s));
    s = cudnnSetStream(c->dnn, c->stream);
    if (s != CUDNN_STATUS_SUCCESS)
        return og_fail(OG_ERR_DEVICE, "cuDNN: %s", cudnnGetErrorString(s));
#endif
    return OG_OK;
}

og_status og_cuda_init(int device, og_cuda_ctx **out)
{
    *out = NULL;
    int n = og_cuda_device_count();
    if (n == 0)
        return og_fail(OG_ERR_DEVICE, "the CUDA backend needs a GPU, and none is visible (no "
                       "device, no driver, or CUDA_VISIBLE_DEVICES hides them); use --backend cpu");
    if (device < 0 || device >= n)
        return og_fail(OG_ERR_DEVICE, "CUDA device %d does not exist; this machine has %d (0..%d)",
                       device, n, n - 1);
    og_cuda_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return og_fail(OG_ERR_OOM, "cannot allocate a CUDA context");
    og_status s = ctx_create(device, c);
    if (s != OG_OK) {
        og_fail_context(s, "starting CUDA on device %d", device);
        og_cuda_free(c);
        return s;
    }
    *out = c;
    return OG_OK;
}

void og_cuda_free(og_cuda_ctx *c)
{
    if (!c)
        return;
    cudaSetDevice(c->device);
    if (c->stream)
        cudaStreamSynchronize(c->stream);
    og_cuda_lt_plans_free(c);
#ifdef OG_HAVE_CUDNN
    if (c->dnn)
        cudnnDestroy(c->dnn);
#endif
    if (c->lt)
        cublasLtDestroy(c->lt);
    cudaFree(c->workspace);
    cudaFree(c->arena.base);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    free(c);
}

int og_cuda_ctx_device(const og_cuda_ctx *ctx) { return ctx->device; }
struct CUstream_st *og_cuda_stream(const og_cuda_ctx *ctx) { return ctx->stream; }

og_status og_cuda_sync(og_cuda_ctx *ctx)
{
    OG_TRY(og_cuda_use(ctx));
    OG_CUDA_TRY(cudaStreamSynchronize(ctx->stream));
    OG_CUDA_TRY(cudaGetLastError());
    return OG_OK;
}

og_status og_cuda_mem_info(const og_cuda_ctx *ctx, size_t *free_bytes, size_t *total_bytes)
{
    OG_CUDA_TRY(cudaSetDevice(ctx->device));
    OG_CUDA_TRY(cudaMemGetInfo(free_bytes, total_bytes));
    return OG_OK;
}

og_status og_cuda_reserve(og_cuda_ctx *ctx, size_t bytes, const char *what)
{
    if (ctx->arena.base)
        return og_fail(OG_ERR_INTERNAL, "device arena of GPU %d reserved twice", ctx->device);
    size_t free_b, total_b;
    OG_TRY(og_cuda_mem_info(ctx, &free_b, &total_b));
    bytes = (bytes + 255) & ~(size_t)255;
    cudaError_t e = bytes <= free_b ? cudaMalloc((void **)&ctx->arena.base, bytes)
                                    : cudaErrorMemoryAllocation;
    if (e != cudaSuccess) {
        cudaGetLastError();
        ctx->arena.base = NULL;
        return og_fail(OG_ERR_OOM, "%s needs %.0f MiB on GPU %d, which has %.0f MiB free of "
                       "%.0f MiB: %.0f MiB short. Use a smaller size, spread the sequence over "
                       "more ranks or GPUs, or free the GPU", what, OG_MIB(bytes), ctx->device,
                       OG_MIB(free_b), OG_MIB(total_b),
                       OG_MIB(bytes > free_b ? bytes - free_b : 0));
    }
    ctx->arena.cap = bytes;
    ctx->arena.used = ctx->arena.peak = 0;
    return OG_OK;
}

og_arena *og_cuda_arena(og_cuda_ctx *ctx) { return &ctx->arena; }

size_t og_cuda_peak_bytes(const og_cuda_ctx *ctx)
{
    return ctx->arena.peak + ctx->workspace_bytes;
}

/* Host conversions go through dtype.c in chunks, so a weight of any size needs a bounded
 * staging buffer. */
#define OG_STAGE_ELEMS ((size_t)1 << 20)

og_status og_cuda_upload(og_cuda_ctx *ctx, void *dst, og_dtype dt, const void *host_src,
                         og_dtype st, size_t n)
{
    if (n == 0) /* malloc(0) below may return NULL */
        return OG_OK;
    OG_TRY(og_cuda_use(ctx));
    size_t es = og_dtype_size(dt);
    if (st == dt) {
        OG_CUDA_TRY(cudaMemcpyAsync(dst, host_src, n * es, cudaMemcpyHostToDevice, ctx->stream));
        OG_CUDA_TRY(cudaStreamSynchronize(ctx->stream));
        return OG_OK;
    }
    if ((dt != OG_F32 && dt != OG_BF16) || (st != OG_F32 && st != OG_BF16 && st != OG_F16))
        return og_fail(OG_ERR_UNSUPPORTED, "upload of %s as %s: device floats are f32 or bf16",
                       og_dtype_name(st), og_dtype_name(dt));
    size_t chunk = n < OG_STAGE_ELEMS ? n : OG_STAGE_ELEMS;
    float *f = malloc(chunk * sizeof(float));
    void *stage = malloc(chunk * es);
    og_status s = OG_OK;
    if (!f || !stage)
        s = og_fail(OG_ERR_OOM, "cannot allocate an upload staging buffer");
    for (size_t i = 0; s == OG_OK && i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        og_to_f32(f, (const char *)host_src + i * og_dtype_size(st), st, m);
        og_from_f32(stage, dt, f, m);
        cudaError_t e = cudaMemcpyAsync((char *)dst + i * es, stage, m * es,
                                        cudaMemcpyHostToDevice, ctx->stream);
        if (e == cudaSuccess)
            e = cudaStreamSynchronize(ctx->stream);
        if (e != cudaSuccess)
            s = og_cuda_fail(e, "upload", __FILE__, __LINE__);
    }
    free(f);
    free(stage);
    return s;
}

og_status og_cuda_download(og_cuda_ctx *ctx, float *host_dst, const void *src, og_dtype st,
                           size_t n)
{
    if (st != OG_F32 && st != OG_BF16)
        return og_fail(OG_ERR_UNSUPPORTED, "download of %s: device tensors are f32 or bf16",
                       og_dtype_name(st));
    if (n == 0)
        return OG_OK;
    OG_TRY(og_cuda_use(ctx));
    if (st == OG_F32) {
        OG_CUDA_TRY(cudaMemcpyAsync(host_dst, src, n * 4, cudaMemcpyDeviceToHost, ctx->stream));
        OG_CUDA_TRY(cudaStreamSynchronize(ctx->stream));
        return OG_OK;
    }
    uint16_t *h = malloc(n * 2);
    if (!h)
        return og_fail(OG_ERR_OOM, "cannot allocate a download staging buffer");
    cudaError_t e = cudaMemcpyAsync(h, src, n * 2, cudaMemcpyDeviceToHost, ctx->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(ctx->stream);
    if (e == cudaSuccess)
        og_to_f32(host_dst, h, OG_BF16, n);
    free(h);
    return e == cudaSuccess ? OG_OK : og_cuda_fail(e, "download", __FILE__, __LINE__);
}
