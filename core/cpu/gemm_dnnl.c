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

#define OG_PACK_M 1024 /* rows the packed weight layout is chosen for; it serves any M */

/* One matmul shape: sizes, strides (A[i, k] at i * lda + k, B[k, j] at k * bk + j * bn, C[i, j]
 * at i * ldc + j) and whether a bias row is added; or, with `packed`, B in the library's own
 * layout for (K, N), wei set by the caller. */
typedef struct {
    int64_t M, K, N, lda, bk, bn, ldc;
    bool bias, packed;
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

/* Builds the matmul src[M,K] bf16 x wei[K,N] bf16 -> dst[M,N] f32 (+ bias) at e's strides. */
static dnnl_status_t matmul_create(matmul_entry *e)
{
    dnnl_status_t st = dnnl_success;
    if (!engine)
        st = dnnl_engine_create(&engine, dnnl_cpu, 0);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&e->src, 2, (dnnl_dims_t){e->M, e->K}, dnnl_bf16,
                                              (dnnl_dims_t){e->lda, 1});
    if (st == dnnl_success && !e->packed)
        st = dnnl_memory_desc_init_by_strides(&e->wei, 2, (dnnl_dims_t){e->K, e->N}, dnnl_bf16,
                                              (dnnl_dims_t){e->bk, e->bn});
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_strides(&e->dst, 2, (dnnl_dims_t){e->M, e->N}, dnnl_f32,
                                              (dnnl_dims_t){e->ldc, 1});
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
        if (e->M == out->M && e->K == out->K && e->N == out->N && e->lda == out->lda &&
            e->bk == out->bk && e->bn == out->bn && e->ldc == out->ldc && e->bias == out->bias &&
            e->packed == out->packed) {
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

/* Runs the cached primitive for e's shape on a (bf16), b (bf16), c (f32) and bias (or NULL). */
static og_status matmul_run(matmul_entry e, const uint16_t *a, const uint16_t *b, float *c,
                            const float *bias)
{
    bool owned = false;
    dnnl_status_t st = matmul_get(&e, &owned);
    dnnl_stream_t stream = NULL;
    dnnl_memory_t mem[4] = {NULL, NULL, NULL, NULL};
    if (st == dnnl_success)
        st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (st == dnnl_success)
        st = dnnl_memory_create(&mem[0], &e.src, engine, (void *)a);
    if (st == dnnl_success)
        st = dnnl_memory_create(&mem[1], &e.wei, engine, (void *)b);
    if (st == dnnl_success)
        st = dnnl_memory_create(&mem[2], &e.dst, engine, c);
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
    if (st != dnnl_success)
        return og_fail(OG_ERR_UNSUPPORTED,
                       "bf16 GEMM: oneDNN matmul failed (status %d) for M %lld K %lld N %lld",
                       (int)st, (long long)e.M, (long long)e.K, (long long)e.N);
    return OG_OK;
}

og_status og_gemm_bf16(float *y, const uint16_t *xb, int64_t M, int64_t K, const uint16_t *w,
                       int64_t N, const float *bias)
{
    matmul_entry e = {.M = M, .K = K, .N = N, .lda = K, .bk = 1, .bn = K, .ldc = N,
                      .bias = bias != NULL};
    return matmul_run(e, xb, w, y, bias);
}

og_status og_gemm_bf16_strided(int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda,
                               const uint16_t *B, int64_t bk, int64_t bn, float *C, int64_t ldc)
{
    matmul_entry e = {.M = M, .K = K, .N = N, .lda = lda, .bk = bk, .bn = bn, .ldc = ldc};
    return matmul_run(e, A, B, C, NULL);
}

struct og_packed_weights {
    int64_t N, K;
    dnnl_memory_desc_t md; /* the layout a matmul with format "any" weights picks for (K, N) */
    void *data;
};

/* The packed layout: what the matmul for OG_PACK_M rows asks for, filled by a reorder from the
 * plain bf16 W[N, K]. */
static dnnl_status_t pack_reorder(og_packed_weights *p, const uint16_t *w)
{
    dnnl_memory_desc_t plain, any, src, dst;
    dnnl_status_t st = dnnl_memory_desc_init_by_strides(&plain, 2, (dnnl_dims_t){p->K, p->N},
                                                        dnnl_bf16, (dnnl_dims_t){1, p->K});
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&any, 2, (dnnl_dims_t){p->K, p->N}, dnnl_bf16,
                                          dnnl_format_tag_any);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&src, 2, (dnnl_dims_t){OG_PACK_M, p->K}, dnnl_bf16,
                                          dnnl_ab);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&dst, 2, (dnnl_dims_t){OG_PACK_M, p->N}, dnnl_f32,
                                          dnnl_ab);
    dnnl_matmul_desc_t md;
    if (st == dnnl_success)
        st = dnnl_matmul_desc_init(&md, &src, &any, NULL, &dst);
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL);
    if (st == dnnl_success) {
        p->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        p->data = aligned_alloc(64, (dnnl_memory_desc_get_size(&p->md) + 63) & ~(size_t)63);
        st = p->data ? dnnl_success : dnnl_out_of_memory;
    }
    if (st == dnnl_success)
        st = dnnl_reorder_primitive_desc_create(&rpd, &plain, engine, &p->md, engine, NULL);
    dnnl_primitive_t reorder = NULL;
    dnnl_stream_t stream = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    if (st == dnnl_success)
        st = dnnl_primitive_create(&reorder, rpd);
    if (st == dnnl_success)
        st = dnnl_stream_create(&stream, engine, dnnl_stream_default_flags);
    if (st == dnnl_success)
        st = dnnl_memory_create(&from, &plain, engine, (void *)w);
    if (st == dnnl_success)
        st = dnnl_memory_create(&to, &p->md, engine, p->data);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        st = dnnl_primitive_execute(reorder, stream, 2, args);
    }
    if (st == dnnl_success)
        st = dnnl_stream_wait(stream);
    if (from)
        dnnl_memory_destroy(from);
    if (to)
        dnnl_memory_destroy(to);
    if (stream)
        dnnl_stream_destroy(stream);
    if (reorder)
        dnnl_primitive_destroy(reorder);
    if (rpd)
        dnnl_primitive_desc_destroy(rpd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

og_status og_pack_weights_bf16(og_packed_weights **out, const void *w, og_dtype wt, int64_t N,
                               int64_t K)
{
    *out = NULL;
    if ((wt != OG_F32 && wt != OG_BF16) || N < 1 || K < 1)
        return og_fail(OG_ERR_INVALID_ARG, "packing %s weights of %lld x %lld for bf16",
                       og_dtype_name(wt), (long long)N, (long long)K);
    og_packed_weights *p = calloc(1, sizeof *p);
    uint16_t *w16 = wt == OG_F32 ? malloc((size_t)(N * K) * sizeof *w16) : NULL;
    if (!p || (wt == OG_F32 && !w16)) {
        free(p);
        free(w16);
        return og_fail(OG_ERR_OOM, "packing %lld x %lld weights for bf16", (long long)N,
                       (long long)K);
    }
    if (w16)
        og_f32_to_bf16_rows(w16, w, N, K, K);
    p->N = N;
    p->K = K;
    pthread_mutex_lock(&cache_lock);
    dnnl_status_t st = engine ? dnnl_success : dnnl_engine_create(&engine, dnnl_cpu, 0);
    pthread_mutex_unlock(&cache_lock);
    if (st == dnnl_success)
        st = pack_reorder(p, w16 ? w16 : w);
    free(w16);
    if (st != dnnl_success) {
        og_packed_weights_free(p);
        return og_fail(OG_ERR_UNSUPPORTED, "oneDNN cannot pack %lld x %lld bf16 weights (status "
                       "%d)", (long long)N, (long long)K, (int)st);
    }
    *out = p;
    return OG_OK;
}

og_status og_linear_packed(float *y, const float *x, int64_t M, const og_packed_weights *w,
                           const float *bias, og_arena *scratch)
{
    if (M < 0)
        return og_fail(OG_ERR_INVALID_ARG, "linear (packed): bad row count %lld", (long long)M);
    if (M == 0)
        return OG_OK;
    og_op_scratch sc;
    OG_TRY(og_op_scratch_begin(&sc, scratch, og_linear_packed_scratch_bytes(M, w->K)));
    uint16_t *xb = og_arena_alloc(sc.a, (size_t)(M * w->K) * sizeof *xb);
    og_status st = OG_OK;
    if (!xb) {
        st = og_fail_context(OG_ERR_OOM, "linear (packed): %lld x %lld bf16 activations (size "
                             "the scratch with og_linear_packed_scratch_bytes)",
                             (long long)M, (long long)w->K);
    } else {
        og_f32_to_bf16_rows(xb, x, M, w->K, w->K);
        matmul_entry e = {.M = M, .K = w->K, .N = w->N, .lda = w->K, .ldc = w->N,
                          .bias = bias != NULL, .packed = true, .wei = w->md};
        st = matmul_run(e, xb, w->data, y, bias);
    }
    og_op_scratch_end(&sc);
    return st;
}

void og_packed_weights_free(og_packed_weights *w)
{
    if (!w)
        return;
    free(w->data);
    free(w);
}
