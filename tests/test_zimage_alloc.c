/* A steady-state generation step allocates nothing from the heap: after warm-up, Z-Image
 * forwards on the fixture models (f32 and bf16 weights; exact and, where the build has it, the
 * bf16 precision with packed weights; serial and on two in-process ranks under Ulysses and under
 * Ring) and a repeated VAE decode (Z-Image's and Wan's) make no malloc-family call from omnigen's
 * code, and still match the reference pipeline's outputs.
 * The count: this executable is linked with --wrap for malloc, calloc, realloc, aligned_alloc and
 * posix_memalign (CMakeLists.txt), so every such call in the test and in the static omnigen
 * libraries lands in __wrap_* below, counted, then goes to the C library. Calls made inside
 * shared libraries (oneDNN, OpenMP, libc itself) are not ours and not seen (docs/status.md, "Op
 * scratch", lists what they still allocate). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/ops.h"
#include "core/threads.h"
#include "dit/zimage.h"
#include "io/safetensors.h"
#include "parallel/comm.h"
#include "parallel/sp.h"
#include "test_zimage_fixture.h"
#include "testutil.h"
#include "vae/autoencoder_kl.h"
#include "vae/autoencoder_kl_wan.h"

static atomic_long heap_calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

void *__wrap_malloc(size_t n)
{
    atomic_fetch_add(&heap_calls, 1);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    atomic_fetch_add(&heap_calls, 1);
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    atomic_fetch_add(&heap_calls, 1);
    return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
    atomic_fetch_add(&heap_calls, 1);
    return __real_aligned_alloc(align, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
    atomic_fetch_add(&heap_calls, 1);
    return __real_posix_memalign(p, align, n);
}

/* The counter sees the test's own calls and the library's (an op without an arena makes one). */
static void check_counter(void)
{
    long before = atomic_load(&heap_calls);
    void *volatile p = malloc(16); /* volatile: the compiler may not drop the pair */
    CHECK(atomic_load(&heap_calls) == before + 1, "malloc in the test is counted");
    free(p);
    float q[8 * 2] = {0}, o[8 * 2];
    const og_attn_desc d = {.sq = 2, .skv = 2, .heads = 1, .head_dim = 8, .q_stride = 8,
                            .k_stride = 8, .v_stride = 8, .o_stride = 8, .scale = 1.0f};
    before = atomic_load(&heap_calls);
    CHECK_OK(og_attention(&d, q, q, q, o, NULL, NULL));
    CHECK(atomic_load(&heap_calls) > before, "og_attention without an arena allocates: counted");
}

/* Forwards of one fixture call: two to warm up, then `steps` more with the counter watched; the
 * last output against the reference's. */
static void check_forward(const char *variant, const char *precision, double tol)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    const float *x = NULL, *cap = NULL, *expect = NULL, *t = NULL;
    int64_t nx = 0, nout = 0;
    og_tensor xs = {0}, caps = {0};
    CHECK_OK(zfix_f32(&f, "dit_t", &t, NULL, NULL));
    CHECK_OK(zfix_f32(&f, "dit_x_0", &x, &nx, &xs));
    CHECK_OK(zfix_f32(&f, "dit_cap_0", &cap, NULL, &caps));
    CHECK_OK(zfix_f32(&f, "dit_out_0", &expect, &nout, NULL));
    og_zimage *m = NULL;
    CHECK_OK(og_zimage_load(&m, f.transformer_dir));
    if (og_test_failures > failures_before) {
        og_zimage_free(m);
        zfix_close(&f);
        return;
    }
    const int64_t h = xs.shape[2], w = xs.shape[3], cap_len = caps.shape[0];
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_zimage_scratch_bytes(m, h, w, cap_len, NULL)));
    float *out = calloc((size_t)nx, sizeof *out);
    for (int i = 0; i < 2; i++)
        CHECK_OK(og_zimage_forward(m, NULL, x, h, w, t[0], cap, cap_len, out, &a));
    const int steps = 3;
    const long before = atomic_load(&heap_calls);
    for (int i = 0; i < steps; i++)
        CHECK_OK(og_zimage_forward(m, NULL, x, h, w, t[0], cap, cap_len, out, &a));
    const long calls = atomic_load(&heap_calls) - before;
    const double err = og_test_rel_err_f(out, expect, (size_t)nout);
    printf("  %s %s: %d steady forwards, %ld heap allocations, arena peak %zu of %zu, rel err "
           "%.3g\n", variant, precision, steps, calls, a.peak, a.cap, err);
    CHECK(calls == 0, "%s %s: %ld heap allocations in %d steady-state forwards", variant,
          precision, calls, steps);
    CHECK(err < tol, "%s %s: rel err %g against the reference", variant, precision, err);
    CHECK(a.used == 0, "%s %s: arena not released (%zu)", variant, precision, a.used);
    free(out);
    og_arena_free(&a);
    og_zimage_free(m);
    zfix_close(&f);
}

typedef struct {
    og_zimage *m;
    og_parallel_config cfg;
    const float *x, *cap;
    int64_t h, w, cap_len, n;
    float t;
    float *out; /* rank 0's */
    long calls; /* over both ranks' steady forwards */
} sp_job;

/* Each rank: an arena sized up front, two warm-up forwards, then three counted between barriers
 * (nothing else runs then: the barriers themselves are counted too). */
static og_status sp_rank(og_comm *world, void *arg)
{
    sp_job *j = arg;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &j->cfg, world));
    og_arena a;
    float *out = malloc((size_t)j->n * sizeof *out);
    og_status st = out ? og_arena_init(&a, og_zimage_scratch_bytes(j->m, j->h, j->w, j->cap_len,
                                                                   sp))
                       : og_fail(OG_ERR_OOM, "output");
    for (int i = 0; i < 2 && st == OG_OK; i++)
        st = og_zimage_forward(j->m, sp, j->x, j->h, j->w, j->t, j->cap, j->cap_len, out, &a);
    long before = 0;
    if (st == OG_OK)
        st = og_comm_barrier(world);
    if (world->rank == 0)
        before = atomic_load(&heap_calls);
    if (st == OG_OK)
        st = og_comm_barrier(world);
    for (int i = 0; i < 3 && st == OG_OK; i++)
        st = og_zimage_forward(j->m, sp, j->x, j->h, j->w, j->t, j->cap, j->cap_len, out, &a);
    if (st == OG_OK)
        st = og_comm_barrier(world);
    if (st == OG_OK && world->rank == 0) {
        j->calls = atomic_load(&heap_calls) - before;
        memcpy(j->out, out, (size_t)j->n * sizeof *out);
    }
    if (out)
        og_arena_free(&a);
    free(out);
    og_sp_free(sp);
    return st;
}

static void check_sp(const char *variant, int U, int R)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    og_tensor xs = {0}, caps = {0};
    const float *expect = NULL, *t = NULL;
    sp_job j = {.cfg = OG_PARALLEL_CONFIG_DEFAULT};
    j.cfg.ulysses_degree = U;
    j.cfg.ring_degree = R;
    CHECK_OK(zfix_f32(&f, "dit_t", &t, NULL, NULL));
    CHECK_OK(zfix_f32(&f, "dit_x_0", &j.x, &j.n, &xs));
    CHECK_OK(zfix_f32(&f, "dit_cap_0", &j.cap, NULL, &caps));
    CHECK_OK(zfix_f32(&f, "dit_out_0", &expect, NULL, NULL));
    CHECK_OK(og_zimage_load(&j.m, f.transformer_dir));
    if (og_test_failures == failures_before) {
        j.h = xs.shape[2], j.w = xs.shape[3], j.cap_len = caps.shape[0], j.t = t[0];
        j.out = calloc((size_t)j.n, sizeof *j.out);
        CHECK_OK(og_run_ranks(U * R, 1, sp_rank, &j));
        const double err = og_test_rel_err_f(j.out, expect, (size_t)j.n);
        printf("  %s Ulysses %d x Ring %d: 3 steady forwards on 2 ranks, %ld heap allocations, "
               "rel err %.3g\n", variant, U, R, j.calls, err);
        CHECK(j.calls == 0, "%s U%d R%d: %ld heap allocations in steady-state forwards", variant,
              U, R, j.calls);
        CHECK(err < 1e-4, "%s U%d R%d: rel err %g against the reference", variant, U, R, err);
        free(j.out);
    }
    og_zimage_free(j.m);
    zfix_close(&f);
}

/* The VAE keeps its arena between decodes: the second decode of the same size allocates
 * nothing and decodes the same pixels as the first, which match the reference's image. */
static void check_vae(const char *variant)
{
    int failures_before = og_test_failures;
    char path[1024];
    og_st_file *ref = NULL;
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/reference.safetensors", variant);
    CHECK_OK(og_st_open(&ref, path));
    og_tensor lat, img;
    og_vae *vae = NULL;
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/model/vae", variant);
    if (ref) {
        CHECK_OK(og_st_get(ref, "latents_final", &lat));
        CHECK_OK(og_st_get(ref, "image", &img));
        CHECK_OK(og_vae_load(&vae, path));
    }
    if (og_test_failures > failures_before) {
        og_st_close(ref);
        return;
    }
    const int64_t h = lat.shape[1], w = lat.shape[2], f = og_vae_scale_factor(vae);
    const size_t n = (size_t)(3 * f * h * f * w);
    float *first = malloc(n * sizeof *first), *rgb = malloc(n * sizeof *rgb);
    CHECK_OK(og_vae_decode(vae, lat.data, h, w, first, NULL));
    const long before = atomic_load(&heap_calls);
    CHECK_OK(og_vae_decode(vae, lat.data, h, w, rgb, NULL));
    const long calls = atomic_load(&heap_calls) - before;
    const double err = og_test_rel_err_f(rgb, img.data, n);
    printf("  %s VAE decode %lldx%lld: %ld heap allocations on the second decode, rel err %.3g\n",
           variant, (long long)h, (long long)w, calls, err);
    CHECK(calls == 0, "VAE: %ld heap allocations in a repeated decode", calls);
    CHECK(memcmp(first, rgb, n * sizeof *rgb) == 0, "VAE: the second decode differs");
    CHECK(err < 1e-4, "VAE: rel err %g against the reference image", err);
    free(first);
    free(rgb);
    og_vae_free(vae);
    og_st_close(ref);
}

/* The Wan VAE likewise: a repeated decode of T = 3 latent frames (bf16 weights, every causal
 * conv's cache, the per-frame attention) allocates nothing and matches diffusers' video. */
static void check_wan_vae(void)
{
    int failures_before = og_test_failures;
    og_st_file *ref = NULL;
    og_wan_vae *vae = NULL;
    og_tensor z, video;
    CHECK_OK(og_st_open(&ref, "tests/fixtures/wan/vae/wide/cases.safetensors"));
    if (ref) {
        CHECK_OK(og_st_get(ref, "t3.z", &z));
        CHECK_OK(og_st_get(ref, "t3.video", &video));
        CHECK_OK(og_wan_vae_load(&vae, "tests/fixtures/wan/vae/wide/vae"));
    }
    if (og_test_failures > failures_before) {
        og_wan_vae_free(vae);
        og_st_close(ref);
        return;
    }
    const int64_t c = z.shape[0], t = z.shape[1], h = z.shape[2], w = z.shape[3];
    const int64_t f = og_wan_vae_scale_factor(vae);
    const size_t n = (size_t)(3 * og_wan_vae_frames(vae, t) * f * h * f * w);
    float *first = malloc(n * sizeof *first), *out = malloc(n * sizeof *out);
    CHECK_OK(og_wan_vae_decode(vae, z.data, c, t, h, w, first));
    const long before = atomic_load(&heap_calls);
    CHECK_OK(og_wan_vae_decode(vae, z.data, c, t, h, w, out));
    const long calls = atomic_load(&heap_calls) - before;
    const double err = og_test_rel_err_f(out, video.data, n);
    printf("  Wan VAE decode [%lld, %lld, %lld, %lld]: %ld heap allocations on the second decode, "
           "rel err %.3g\n",
           (long long)c, (long long)t, (long long)h, (long long)w, calls, err);
    CHECK(calls == 0, "Wan VAE: %ld heap allocations in a repeated decode", calls);
    CHECK(memcmp(first, out, n * sizeof *out) == 0, "Wan VAE: the second decode differs");
    CHECK(err < 1e-5, "Wan VAE: rel err %g against the reference video", err);
    free(first);
    free(out);
    og_wan_vae_free(vae);
    og_st_close(ref);
}

int main(void)
{
    og_set_threads(2);
    check_counter();
    check_forward("base", "fp32", 1e-4); /* f32 weights */
    check_forward("h30", "fp32", 1e-4);  /* bf16 weights: widened tile by tile */
    if (og_gemm_set_precision(OG_GEMM_BF16) == OG_OK) {
        check_forward("base", "bf16", 1e-2); /* packed weights, bf16 attention */
        check_forward("h30", "bf16", 1e-2);
        CHECK_OK(og_gemm_set_precision(OG_GEMM_EXACT));
    }
    check_sp("base", 2, 1);
    check_sp("base", 1, 2);
    check_vae("base");
    check_wan_vae();
    return og_test_finish("test_zimage_alloc");
}
