/* og_sgemm through oneDNN's row-major sgemm (JIT AVX-512 kernels, OpenMP threads of the calling
 * thread's team), and the opt-in bf16 path of og_linear: a oneDNN matmul on bf16 activations and
 * bf16 weights with f32 output (AMX or AVX512-BF16 kernels). Matmul primitives are cached by shape,
 * under a lock, and never evicted while the process runs, since other rank threads may be executing
 * them; they are safe to execute concurrently. Selected by CMake with OG_GEMM=dnnl. */
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>

#include "core/cpu/gemm.h"

#define OG_MATMUL_CACHE 64

typedef struct {
    int64_t M, K, N;
    bool bias;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src, wei, dst, b;
} matmul_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static matmul_entry cache[OG_MATMUL_CACHE];
static int cache_used;
static dnnl_engine_t engine;

const char *og_gemm_library(void) { return "oneDNN"; }

og_status og_gemm_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                        float *C, int64_t ldc)
{
    dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                                  beta, C, ldc);
    if (st != dnnl_success)
        return og_fail(OG_ERR_INTERNAL, "oneDNN sgemm failed (status %d) for M %lld N %lld K %lld",
                       (int)st, (long long)M, (long long)N, (long long)K);
    return OG_OK;
}

bool og_gemm_bf16_available(void) { return true; }

/* Builds the matmul src[M,K] bf16 x wei[K,N] bf16 (stored as W[N,K]) -> dst[M,N] f32 (+ bias). */
static dnnl_status_t matmul_create(matmul_entry *e)
{
    dnnl_status_t st = dnnl_success;
    if (!engine)
        st = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->src, 2, (dnnl_dims_t){e->M, e->K}, dnnl_bf16,
                                          dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->wei, 2, (dnnl_dims_t){e->K, e->N}, dnnl_bf16,
                                          dnnl_ba);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->dst, 2, (dnnl_dims_t){e->M, e->N}, dnnl_f32, dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&e->b, 2, (dnnl_dims_t){1, e->N}, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&md, &e->src, &e->wei, e->bias ? &e->b : NULL, &e->dst);
    dnnl_primitive_desc_t pd = NULL;
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&e->prim, pd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

/* Finds or builds the primitive for this shape. *owned is set when the cache was full and the
 * caller must destroy the primitive after use. */
static dnnl_status_t matmul_get(matmul_entry *out, bool *owned)
{
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < cache_used; i++) {
        const matmul_entry *e = &cache[i];
        if (e->M == out->M && e->K == out->K && e->N == out->N && e->bias == out->bias) {
            *out = *e;
            *owned = false;
            pthread_mutex_unlock(&cache_lock);
            return dnnl_success;
        }
    }
    dnnl_status_t st = matmul_create(out);
    *owned = cache_used == OG_MATMUL_CACHE;
    if (st == dnnl_success && !*owned)
        cache[cache_used++] = *out;
    pthread_mutex_unlock(&cache_lock);
    return st;
}

og_status og_gemm_bf16(float *y, const float *x, int64_t M, int64_t K, const uint16_t *w,
                       int64_t N, const float *bias)
{
    uint16_t *xb = malloc((size_t)(M * K) * sizeof *xb);
    if (!xb)
        return og_fail(OG_ERR_OOM, "linear (bf16): cannot allocate %lld x %lld activations",
                       (long long)M, (long long)K);
#pragma omp parallel for if (M * K > 65536)
    for (int64_t i = 0; i < M * K; i++)
        xb[i] = og_f32_to_bf16(x[i]);

    matmul_entry e = {.M = M, .K = K, .N = N, .bias = bias != NULL};
    bool owned = false;
    dnnl_status_t st = matmul_get(&e, &owned);
    dnnl_stream_t stream = NULL;
    dnnl_memory_t mem[4] = {NULL, NULL, NULL, NULL};
    if (st == dnnl_success)
        st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (st == dnnl_success)
        st = dnnl_memory_create(&mem[0], &e.src, engine, xb);
    if (st == dnnl_success)
        st = dnnl_memory_create(&mem[1], &e.wei, engine, (void *)w);
    if (st == dnnl_success)
        st = dnnl_memory_create(&mem[2], &e.dst, engine, y);
    if (st == dnnl_success && bias)
        st = dnnl_memory_create(&mem[3], &e.b, engine, (void *)bias);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]},
                                   {DNNL_ARG_DST, mem[2]}, {DNNL_ARG_BIAS, mem[3]}};
        st = dnnl_primitive_execute(e.prim, stream, bias ? 4 : 3, args);
    }
    if (st == dnnl_success)
        st = dnnl_stream_wait(stream);
    for (int i = 0; i < 4; i++)
        if (mem[i])
            dnnl_memory_destroy(mem[i]);
    if (stream)
        dnnl_stream_destroy(stream);
    if (owned)
        dnnl_primitive_destroy(e.prim);
    free(xb);
    if (st != dnnl_success)
        return og_fail(OG_ERR_UNSUPPORTED,
                       "linear (bf16): oneDNN matmul failed (status %d) for M %lld K %lld N %lld",
                       (int)st, (long long)M, (long long)K, (long long)N);
    return OG_OK;
}
