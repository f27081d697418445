/* The Z-Image forward on a GPU against the CPU forward (fp32, itself within 1e-4 of diffusers) on
 * the fixture models: serial bf16 within 3e-2 relative (norm-wise), and every SP layout of
 * test_zimage_sp with all ranks sharing GPU 0 through the in-process device communicator,
 * within 2e-2 of the serial GPU run on every rank. Also: a too-small arena fails with the
 * sizing hint instead of writing past it. */
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
    const og_zimage_cuda *w;
    og_parallel_config cfg;
    const float *x, *cap;
    int64_t h, w_, cap_len, n;
    float t;
    float *out[8];
} gpu_job;

/* One rank: its own context (stream, arena) on GPU 0, the shared weights, one forward. */
static og_status rank_main(og_comm *world, void *arg)
{
    gpu_job *j = arg;
    og_sp *sp = NULL;
    og_cuda_ctx *ctx = NULL;
    og_status st = og_sp_create(&sp, &j->cfg, world);
    if (st == OG_OK)
        st = og_cuda_init(0, &ctx);
    if (st == OG_OK)
        st = og_cuda_reserve(ctx, og_zimage_cuda_work_bytes(j->m, j->h, j->w_, j->cap_len, sp),
                             "Z-Image SP test rank");
    if (st == OG_OK)
        st = og_zimage_cuda_forward(ctx, j->w, sp, j->x, j->h, j->w_, j->t, j->cap, j->cap_len,
                                    j->out[world->rank]);
    og_cuda_free(ctx);
    og_sp_free(sp);
    return st;
}

static void check_variant(const char *variant)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    og_zimage *m = NULL;
    og_zimage_cuda *w = NULL;
    og_cuda_ctx *wctx = NULL, *ctx = NULL;
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

    CHECK_OK(og_cuda_init(0, &wctx));
    CHECK_OK(og_zimage_cuda_upload(&w, wctx, m));
    CHECK_OK(og_cuda_init(0, &ctx));
    if (og_test_failures > failures_before)
        goto free_out;
    /* A context without a reservation has no room: the forward must say how to size it. */
    og_status small = og_zimage_cuda_forward(ctx, w, NULL, x, j.h, j.w_, j.t, cap, j.cap_len, gpu);
    CHECK(small == OG_ERR_OOM && strstr(og_error_message(), "og_zimage_cuda_work_bytes"),
          "%s: forward without an arena: status %d, %s", variant, small, og_error_message());
    CHECK_OK(og_cuda_reserve(ctx, og_zimage_cuda_work_bytes(m, j.h, j.w_, j.cap_len, NULL),
                             "Z-Image serial test"));
    CHECK_OK(og_zimage_cuda_forward(ctx, w, NULL, x, j.h, j.w_, j.t, cap, j.cap_len, gpu));
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
    j.w = w;
    const og_zimage_config *c = og_zimage_get_config(m);
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        j.cfg = (og_parallel_config){.ulysses_degree = layouts[li].U,
                                     .ring_degree = layouts[li].R, .cfg_degree = 1,
                                     .ulysses_mode = layouts[li].mode};
        int world = layouts[li].U * layouts[li].R;
        if (og_zimage_check_layout(c, &j.cfg, j.h, j.w_, j.cap_len, world) != OG_OK)
            continue; /* strict Ulysses over a head count it does not divide: test_zimage_sp */
        for (int r = 0; r < world; r++)
            j.out[r] = calloc((size_t)n, sizeof(float));
        og_status st = og_run_ranks_copy(world, 1, &copy, rank_main, &j);
        CHECK(st == OG_OK, "%s %dx%d on one GPU: %s", variant, layouts[li].U, layouts[li].R,
              og_error_message());
        double worst = 0;
        for (int r = 0; r < world; r++) {
            double er = og_test_rel_err_f(j.out[r], gpu, (size_t)n);
            worst = er > worst ? er : worst;
            free(j.out[r]);
        }
        printf("  %s %dx%d %s: max rel err vs serial GPU %.3g over %d ranks\n", variant,
               layouts[li].U, layouts[li].R, og_ulysses_mode_name(layouts[li].mode), worst, world);
        CHECK(worst < SP_VS_SERIAL_TOL, "%s %dx%d: rel err %g vs the serial GPU run", variant,
              layouts[li].U, layouts[li].R, worst);
    }
free_out:
    og_zimage_cuda_free(w);
    og_cuda_free(ctx);
    og_cuda_free(wctx);
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
