/* The Wan2.1 transformer under sequence parallelism equals the serial forward (fp32, 1e-5
 * relative) on every rank: 1x1 under an og_sp, Ulysses 2x1, Ring 1x2, hybrid 2x2, 3x1 and 4x1
 * (UAA where the heads do not divide), 1x3, 2x3 and 4x2, on the 2-head tiny model (12 tokens), the
 * 5-head model with odd 3x6x10 latents (45 tokens: uneven shards, uneven heads) and the 3-head
 * bf16 model. Each serial output is also held against the diffusers reference. */
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/wan.h"
#include "parallel/comm.h"
#include "test_wan_dit_fixture.h"
#include "testutil.h"

typedef struct {
    og_wan *m;
    og_parallel_config cfg;
    wan_case k;
    float *out[8]; /* per world rank */
} sp_job;

static og_status rank_main(og_comm *world, void *arg)
{
    sp_job *j = arg;
    const wan_case *k = &j->k;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &j->cfg, world));
    og_arena a;
    og_status st = og_arena_init(&a, og_wan_scratch_bytes(j->m, k->F, k->H, k->W, k->L, sp));
    if (st == OG_OK) {
        /* Two steps through one arena: the second must see exactly what the first did. */
        st = og_wan_forward(j->m, sp, k->x, k->F, k->H, k->W, k->t, k->text, k->L,
                            j->out[world->rank], &a);
        if (st == OG_OK && a.used != 0)
            st = og_fail(OG_ERR_INTERNAL, "rank %d left %zu arena bytes in use", world->rank,
                         a.used);
        if (st == OG_OK)
            st = og_wan_forward(j->m, sp, k->x, k->F, k->H, k->W, k->t, k->text, k->L,
                                j->out[world->rank], &a);
    }
    og_arena_free(&a);
    og_sp_free(sp);
    return st;
}

static void check_variant(const char *variant)
{
    int failures_before = og_test_failures;
    char dir[512];
    og_weights *ref = NULL;
    og_wan *m = NULL;
    sp_job j = {0};
    CHECK_OK(wan_fix_open(&ref, dir, sizeof dir, variant));
    CHECK_OK(og_wan_load(&m, dir));
    if (og_test_failures == failures_before)
        CHECK_OK(wan_fix_case(ref, "a", &j.k));
    if (og_test_failures > failures_before)
        goto done;
    j.m = m;
    const wan_case *k = &j.k;
    const int64_t n = k->n_out;

    float *serial = malloc((size_t)n * sizeof *serial);
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_wan_scratch_bytes(m, k->F, k->H, k->W, k->L, NULL)));
    CHECK_OK(og_wan_forward(m, NULL, k->x, k->F, k->H, k->W, k->t, k->text, k->L, serial, &a));
    og_arena_free(&a);
    double ref_err = og_test_rel_err_f(serial, k->out, (size_t)n);
    CHECK(ref_err < 2e-6, "%s serial vs reference: %g", variant, ref_err);

    static const struct {
        int U, R;
    } layouts[] = {{1, 1}, {2, 1}, {1, 2}, {2, 2}, {3, 1}, {4, 1}, {1, 3}, {2, 3}, {4, 2}};
    const og_wan_config *c = og_wan_get_config(m);
    int ran = 0;
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
        const int U = layouts[li].U, R = layouts[li].R, world = U * R;
        const og_ulysses_mode mode = c->heads % U ? OG_ULYSSES_ADVANCED_UAA : OG_ULYSSES_STRICT;
        j.cfg = (og_parallel_config){.ulysses_degree = U, .ring_degree = R, .cfg_degree = 1,
                                     .ulysses_mode = mode};
        if (og_wan_check_layout(c, &j.cfg, k->F, k->H, k->W, k->L, world) != OG_OK) {
            /* Only more Ulysses ranks than heads may be refused here. */
            CHECK(U > c->heads, "%s %dx%d refused: %s", variant, U, R, og_error_message());
            continue;
        }
        for (int r = 0; r < world; r++)
            j.out[r] = calloc((size_t)n, sizeof(float));
        CHECK_OK(og_run_ranks(world, 1, rank_main, &j));
        double worst = og_test_worst_rank_err(j.out, world, serial, (size_t)n);
        printf("  %s %dx%d %s: max rel err vs serial %.3g over %d ranks\n", variant, U, R,
               og_ulysses_mode_name(mode), worst, world);
        CHECK(worst < 1e-5, "%s %dx%d %s: rel err %g", variant, U, R, og_ulysses_mode_name(mode),
              worst);
        ran++;
    }
    CHECK(ran >= 6, "%s: only %d layouts ran", variant, ran);
    free(serial);
done:
    og_wan_free(m);
    og_weights_free(ref);
}

int main(void)
{
    og_set_threads(2);
    check_variant("tiny");
    check_variant("h5");
    check_variant("plain");
    return og_test_finish("test_wan_dit_sp");
}
