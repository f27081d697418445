/* The Z-Image forward under sequence parallelism equals the serial forward (fp32, 1e-5 relative)
 * on every rank: Ulysses, Ring and both (1x1 under an og_sp, 2x1, 1x2, 2x2, 3x1, 1x3, 4x1 UAA,
 * 4x2 UAA, 2x3), on the square fixture (6 heads), the non-square one (35 image tokens, 35 caption
 * tokens: uneven shards and caption slices), and the 30-head one (U = 4 needs advanced_uaa).
 * Each run's output is also held against the diffusers reference output (1e-4). */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/zimage.h"
#include "parallel/comm.h"
#include "test_zimage_fixture.h"
#include "testutil.h"

typedef struct {
    og_zimage *m;
    og_parallel_config cfg;
    const float *x, *cap;
    int64_t h, w, cap_len, n;
    float t;
    float *out[8]; /* per world rank */
} sp_job;

static og_status rank_main(og_comm *world, void *arg)
{
    sp_job *j = arg;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &j->cfg, world));
    og_arena a;
    og_status st = og_arena_init(&a, og_zimage_scratch_bytes(j->m, j->h, j->w, j->cap_len, sp));
    if (st == OG_OK) {
        /* Two steps through one arena: the second must see exactly what the first did. */
        st = og_zimage_forward(j->m, sp, j->x, j->h, j->w, j->t, j->cap, j->cap_len,
                               j->out[world->rank], &a);
        if (st == OG_OK && a.used != 0)
            st = og_fail(OG_ERR_INTERNAL, "rank %d left %zu arena bytes in use", world->rank,
                         a.used);
        if (st == OG_OK)
            st = og_zimage_forward(j->m, sp, j->x, j->h, j->w, j->t, j->cap, j->cap_len,
                                   j->out[world->rank], &a);
    }
    og_arena_free(&a);
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
    const float *x = NULL, *cap = NULL, *ref = NULL, *t = NULL;
    og_tensor xs, caps;
    int64_t n = 0;
    CHECK_OK(og_zimage_load(&m, f.transformer_dir));
    CHECK_OK(zfix_f32(&f, "dit_last_x_0", &x, &n, &xs));
    CHECK_OK(zfix_f32(&f, "dit_last_cap_0", &cap, NULL, &caps));
    CHECK_OK(zfix_f32(&f, "dit_last_out_0", &ref, NULL, NULL));
    CHECK_OK(zfix_f32(&f, "dit_last_t", &t, NULL, NULL));
    if (og_test_failures > failures_before)
        goto done;
    sp_job j = {.m = m, .x = x, .cap = cap, .h = xs.shape[2], .w = xs.shape[3],
                .cap_len = caps.shape[0], .n = n, .t = t[0]};

    float *serial = malloc((size_t)n * sizeof *serial);
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_zimage_scratch_bytes(m, j.h, j.w, j.cap_len, NULL)));
    CHECK_OK(og_zimage_forward(m, NULL, x, j.h, j.w, j.t, cap, j.cap_len, serial, &a));
    og_arena_free(&a);
    double ref_err = og_test_rel_err_f(serial, ref, (size_t)n);
    CHECK(ref_err < 1e-4, "%s serial vs reference: %g", variant, ref_err);

    static const struct {
        int U, R;
        og_ulysses_mode mode;
    } layouts[] = {
        {1, 1, OG_ULYSSES_STRICT}, {2, 1, OG_ULYSSES_STRICT}, {1, 2, OG_ULYSSES_STRICT},
        {2, 2, OG_ULYSSES_STRICT}, {3, 1, OG_ULYSSES_STRICT}, {1, 3, OG_ULYSSES_STRICT},
        {4, 1, OG_ULYSSES_ADVANCED_UAA}, {4, 2, OG_ULYSSES_ADVANCED_UAA},
        {2, 3, OG_ULYSSES_STRICT},
    };
    const og_zimage_config *c = og_zimage_get_config(m);
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        j.cfg = (og_parallel_config){.ulysses_degree = layouts[li].U,
                                     .ring_degree = layouts[li].R, .cfg_degree = 1,
                                     .ulysses_mode = layouts[li].mode};
        int world = layouts[li].U * layouts[li].R;
        og_status valid = og_zimage_check_layout(c, &j.cfg, j.h, j.w, j.cap_len, world);
        if (valid != OG_OK) {
            /* Only strict Ulysses with heads % U != 0 may be refused here. */
            CHECK(layouts[li].mode == OG_ULYSSES_STRICT && c->n_heads % layouts[li].U != 0,
                  "%s %dx%d refused: %s", variant, layouts[li].U, layouts[li].R,
                  og_error_message());
            continue;
        }
        for (int r = 0; r < world; r++)
            j.out[r] = calloc((size_t)n, sizeof(float));
        CHECK_OK(og_run_ranks(world, 1, rank_main, &j));
        double worst = og_test_worst_rank_err(j.out, world, serial, (size_t)n);
        printf("  %s %dx%d %s: max rel err vs serial %.3g over %d ranks\n", variant,
               layouts[li].U, layouts[li].R, og_ulysses_mode_name(layouts[li].mode), worst, world);
        CHECK(worst < 1e-5, "%s %dx%d %s: rel err %g", variant, layouts[li].U, layouts[li].R,
              og_ulysses_mode_name(layouts[li].mode), worst);
    }
    free(serial);
done:
    og_zimage_free(m);
    zfix_close(&f);
}

int main(void)
{
    og_set_threads(2);
    check_variant("base");
    check_variant("odd");
    check_variant("h30");
    return og_test_finish("test_zimage_sp");
}
