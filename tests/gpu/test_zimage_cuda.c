/* The Z-Image forward on a GPU against the CPU forward (fp32, itself within 1e-4 of diffusers) on
 * the fixture models: serial bf16 within 3e-2 relative (norm-wise), and every SP layout of
 * test_zimage_sp with all ranks sharing GPU 0 through the in-process device communicator,
 * within 2e-2 of the serial GPU run on every rank; with NCCL and several GPUs, the layouts that
 * fit also run one GPU per rank through NCCL. Also: a too-small arena fails with the sizing hint
 * instead of writing past it. */
#include <stdlib.h>
#include <string.h>

#include "core/cuda/zimage_cuda.h"
#include "core/threads.h"
#include "gpu_testutil.h"
#include "parallel/comm.h"
#include "test_zimage_fixture.h"

#define GPU_VS_CPU_TOL 3e-2
#define SP_VS_SERIAL_TOL 2e-2

typedef struct {
    og_zimage *m;
    const og_zimage_cuda *w[8]; /* per GPU */
    og_parallel_config cfg;
    const float *x, *cap;
    int64_t h, w_, cap_len, n;
    float t;
    float *out[8];
} gpu_job;

/* One rank: its own context (stream, arena) on `device`, that GPU's weights, one forward. */
static og_status rank_run(og_comm *world, int device, gpu_job *j, int rank)
{
    og_sp *sp = NULL;
    og_cuda_ctx *ctx = NULL;
    og_status st = og_sp_create(&sp, &j->cfg, world);
    if (st == OG_OK)
        st = og_cuda_init(device, &ctx);
    if (st == OG_OK)
        st = og_cuda_reserve(ctx, og_zimage_cuda_work_bytes(j->m, j->h, j->w_, j->cap_len, sp),
                             "Z-Image SP test rank");
    if (st == OG_OK)
        st = og_zimage_cuda_forward(ctx, j->w[device], sp, j->x, j->h, j->w_, j->t, j->cap,
                                    j->cap_len, j->out[rank]);
    og_cuda_free(ctx);
    og_sp_free(sp);
    return st;
}

/* Every rank on GPU 0, exchanging through the in-process device communicator. */
static og_status one_gpu_rank(og_comm *world, void *arg)
{
    return rank_run(world, 0, arg, world->rank);
}

#ifdef OG_HAVE_NCCL
/* Rank r on GPU r, exchanging through NCCL (bootstrapped over the host world). */
static og_status nccl_rank(og_comm *host, void *arg)
{
    og_comm *nccl;
    OG_TRY(og_comm_nccl_create(&nccl, host, host->rank));
    og_status st = rank_run(nccl, host->rank, arg, host->rank);
    og_comm_free(nccl);
    return st;
}
#endif

/* Runs one layout and checks every rank's output against `serial`. */
static void check_layout(gpu_job *j, const char *variant, const char *how, og_rank_fn fn,
                         const og_inproc_copy *copy, const float *serial)
{
    const int world = j->cfg.ulysses_degree * j->cfg.ring_degree;
    for (int r = 0; r < world; r++)
        j->out[r] = calloc((size_t)j->n, sizeof(float));
    og_status st = copy ? og_run_ranks_copy(world, 1, copy, fn, j) : og_run_ranks(world, 1, fn, j);
    CHECK(st == OG_OK, "%s %dx%d %s: %s", variant, j->cfg.ulysses_degree, j->cfg.ring_degree, how,
          og_error_message());
    double worst = 0;
    for (int r = 0; r < world; r++) {
        double er = og_test_rel_err_f(j->out[r], serial, (size_t)j->n);
        worst = er > worst ? er : worst;
        free(j->out[r]);
    }
    printf("  %s %dx%d %s %s: max rel err vs serial GPU %.3g over %d ranks\n", variant,
           j->cfg.ulysses_degree, j->cfg.ring_degree, og_ulysses_mode_name(j->cfg.ulysses_mode),
           how, worst, world);
    CHECK(worst < SP_VS_SERIAL_TOL, "%s %dx%d %s: rel err %g vs the serial GPU run", variant,
          j->cfg.ulysses_degree, j->cfg.ring_degree, how, worst);
}

static void check_variant(const char *variant)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    og_zimage *m = NULL;
    og_zimage_cuda *w[8] = {0};
    og_cuda_ctx *wctx[8] = {0}, *ctx = NULL;
    int gpus = og_cuda_device_count() < 8 ? og_cuda_device_count() : 8;
    const float *x = NULL, *cap = NULL, *t = NULL;
    og_tensor xs, caps;
    int64_t n = 0;
    CHECK_OK(og_zimage_load(&m, f.transformer_dir));
    CHECK_OK(zfix_f32(&f, "dit_last_x_0", &x, &n, &xs));
    CHECK_OK(zfix_f32(&f, "dit_last_cap_0", &cap, NULL, &caps));
    CHECK_OK(zfix_f32(&f, "dit_last_t", &t, NULL, NULL));
    if (og_test_failures > failures_before)
        goto done;
    gpu_job j = {.m = m, .x = x, .cap = cap, .h = xs.shape[2], .w_ = xs.shape[3],
                 .cap_len = caps.shape[0], .n = n, .t = t[0]};
    float *cpu = malloc((size_t)n * sizeof *cpu), *gpu = calloc((size_t)n, sizeof *gpu);
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_zimage_scratch_bytes(m, j.h, j.w_, j.cap_len, NULL)));
    CHECK_OK(og_zimage_forward(m, NULL, x, j.h, j.w_, j.t, cap, j.cap_len, cpu, &a));
    og_arena_free(&a);

#ifndef OG_HAVE_NCCL
    gpus = 1; /* only NCCL runs use the other GPUs */
#endif
    for (int d = 0; d < gpus; d++) {
        CHECK_OK(og_cuda_init(d, &wctx[d]));
        CHECK_OK(og_zimage_cuda_upload(&w[d], wctx[d], m));
        j.w[d] = w[d];
    }
    CHECK_OK(og_cuda_init(0, &ctx));
    if (og_test_failures > failures_before)
        goto free_out;
    /* A context without a reservation has no room: the forward must say how to size it. */
    og_status small =
        og_zimage_cuda_forward(ctx, w[0], NULL, x, j.h, j.w_, j.t, cap, j.cap_len, gpu);
    CHECK(small == OG_ERR_OOM && strstr(og_error_message(), "og_zimage_cuda_work_bytes"),
          "%s: forward without an arena: status %d, %s", variant, small, og_error_message());
    CHECK_OK(og_cuda_reserve(ctx, og_zimage_cuda_work_bytes(m, j.h, j.w_, j.cap_len, NULL),
                             "Z-Image serial test"));
    CHECK_OK(og_zimage_cuda_forward(ctx, w[0], NULL, x, j.h, j.w_, j.t, cap, j.cap_len, gpu));
    double e = og_test_rel_err_f(gpu, cpu, (size_t)n);
    printf("  %s: serial GPU (bf16) vs CPU (fp32) rel err %.3g\n", variant, e);
    CHECK(e < GPU_VS_CPU_TOL, "%s serial GPU vs CPU: rel err %g", variant, e);
    CHECK(og_cuda_arena(ctx)->used == 0, "%s: the forward left %zu arena bytes in use", variant,
          og_cuda_arena(ctx)->used);

    static const struct {
        int U, R;
        og_ulysses_mode mode;
    } layouts[] = {
        {1, 1, OG_ULYSSES_STRICT}, {2, 1, OG_ULYSSES_STRICT}, {1, 2, OG_ULYSSES_STRICT},
        {2, 2, OG_ULYSSES_STRICT}, {3, 1, OG_ULYSSES_STRICT}, {1, 3, OG_ULYSSES_STRICT},
        {4, 1, OG_ULYSSES_ADVANCED_UAA}, {4, 2, OG_ULYSSES_ADVANCED_UAA},
        {2, 3, OG_ULYSSES_STRICT},
    };
    og_inproc_copy copy;
    og_cuda_inproc_copy(0, &copy);
    const og_zimage_config *c = og_zimage_get_config(m);
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        j.cfg = (og_parallel_config){.ulysses_degree = layouts[li].U,
                                     .ring_degree = layouts[li].R, .cfg_degree = 1,
                                     .ulysses_mode = layouts[li].mode};
        int world = layouts[li].U * layouts[li].R;
        if (og_zimage_check_layout(c, &j.cfg, j.h, j.w_, j.cap_len, world) != OG_OK)
            continue; /* strict Ulysses over a head count it does not divide: test_zimage_sp */
        check_layout(&j, variant, "one GPU", one_gpu_rank, &copy, gpu);
#ifdef OG_HAVE_NCCL
        if (world > 1 && world <= gpus)
            check_layout(&j, variant, "NCCL", nccl_rank, NULL, gpu);
#endif
    }
free_out:
    og_cuda_free(ctx);
    for (int d = 0; d < 8; d++) {
        og_zimage_cuda_free(w[d]);
        og_cuda_free(wctx[d]);
    }
    free(cpu);
    free(gpu);
done:
    og_zimage_free(m);
    zfix_close(&f);
}

int main(void)
{
    if (og_cuda_device_count() == 0) {
        printf("test_zimage_cuda: SKIPPED: no CUDA device\n");
        return OG_TEST_SKIP;
    }
    og_set_threads(2);
    check_variant("base");
    check_variant("odd");
    check_variant("h30");
    return og_test_finish("test_zimage_cuda");
}
