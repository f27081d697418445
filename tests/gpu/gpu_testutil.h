/* Helpers for the CUDA kernel tests: skip without a GPU (exit 77, never a pass), a context with a
 * small arena, and bf16 round trips. Inputs are rounded to bf16 on the host first, so the CPU op
 * and the GPU kernel see identical values and only the kernels' own rounding differs. */
#ifndef OG_GPU_TESTUTIL_H
#define OG_GPU_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "core/cuda/cuda_backend.h"
#include "testutil.h"

/* Returns a context with a `arena_mib` device arena, or NULL after printing SKIPPED when this
 * machine has no GPU (the caller then returns OG_TEST_SKIP). Exits 1 if the GPU fails to start. */
static inline og_cuda_ctx *og_gpu_test_start(const char *name, size_t arena_mib)
{
    if (og_cuda_device_count() == 0) {
        printf("%s: SKIPPED: no CUDA device\n", name);
        return NULL;
    }
    og_cuda_ctx *ctx;
    if (og_cuda_init(0, &ctx) != OG_OK || og_cuda_reserve(ctx, arena_mib << 20, name) != OG_OK) {
        fprintf(stderr, "%s: cannot start CUDA: %s\n", name, og_error_message());
        exit(1);
    }
    return ctx;
}

static inline void og_round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = og_bf16_to_f32(og_f32_to_bf16(x[i]));
}

/* A host buffer of n random values in [-scale, scale), already representable in bf16. */
static inline float *og_gpu_rand(og_test_rng *r, size_t n, float scale)
{
    float *x = malloc(n * sizeof *x);
    og_test_fill(r, x, n, scale);
    og_round_bf16(x, n);
    return x;
}

/* Device copy of host f32 values as type t, from the arena. */
static inline void *og_gpu_put(og_cuda_ctx *ctx, const float *host, size_t n, og_dtype t)
{
    void *d = og_arena_alloc(og_cuda_arena(ctx), n * og_dtype_size(t));
    if (!d || og_cuda_upload(ctx, d, t, host, OG_F32, n) != OG_OK) {
        fprintf(stderr, "upload failed: %s\n", og_error_message());
        exit(1);
    }
    return d;
}

static inline void *og_gpu_alloc(og_cuda_ctx *ctx, size_t n, og_dtype t)
{
    void *d = og_arena_alloc(og_cuda_arena(ctx), n * og_dtype_size(t));
    if (!d) {
        fprintf(stderr, "arena: %s\n", og_error_message());
        exit(1);
    }
    return d;
}

/* Waits for the GPU and returns a new host f32 copy of n elements of type t. */
static inline float *og_gpu_get(og_cuda_ctx *ctx, const void *dev, size_t n, og_dtype t)
{
    float *h = malloc(n * sizeof *h);
    if (og_cuda_sync(ctx) != OG_OK || og_cuda_download(ctx, h, dev, t, n) != OG_OK) {
        fprintf(stderr, "download failed: %s\n", og_error_message());
        exit(1);
    }
    return h;
}

/* Relative tolerance of a bf16 result against an fp32 reference (a few bf16 ulps, norm-wise). */
#define OG_BF16_TOL 1.5e-2

#endif
