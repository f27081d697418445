/* SP attention equals single-rank attention: every layout with U*R <= 8 (U 1..8, R 1..4), both
 * Ulysses modes, heads in {1,2,3,5,7,8,12,24,30} where the layout is valid, sequence lengths just
 * above every U*R plus primes and an evenly divided one, with and without joint text tokens (3 of
 * them, so with R = 4 one ring rank holds no text query). fp32, tolerance 1e-5 relative. Each
 * rank's byte counter must equal the count derived from the shard and head ranges, and the
 * DESIGN.md closed forms where the split is even. Refused layouts are refused exactly when the
 * rules say so. Then head_dim 64 with 30 heads and text on the hybrid layouts. */
#include "test_parallel_checks.h"

static const int heads_list[] = {1, 2, 3, 5, 7, 8, 12, 24, 30};
static const int64_t seq_list[] = {2, 3, 4, 5, 6, 7, 8, 9, 13, 37, 64, 97};
static const int64_t text_list[] = {0, 3};
#define NSEQ (sizeof seq_list / sizeof seq_list[0])
#define NTEXT (sizeof text_list / sizeof text_list[0])
#define D 8

typedef struct {
    int U, R;
    const sp_data *data; /* ndata cases for one head count */
    size_t ndata;
    sp_result res[8];
    int runs[8];
} sweep;

static og_status sweep_rank(og_comm *world, void *arg)
{
    sweep *sw = arg;
    const int H = sw->data[0].heads, P = sw->U * sw->R;
    for (og_ulysses_mode mode = OG_ULYSSES_STRICT; mode <= OG_ULYSSES_ADVANCED_UAA; mode++) {
        const og_parallel_config cfg = {.ulysses_degree = sw->U, .ring_degree = sw->R,
                                        .cfg_degree = 1, .ulysses_mode = mode};
        if (og_parallel_config_validate(&cfg, H, 0, 0) != OG_OK)
            continue;
        og_sp *sp;
        OG_TRY(og_sp_create(&sp, &cfg, world));
        for (size_t i = 0; i < sw->ndata; i++) {
            if (sw->data[i].seq < P)
                continue;
            sp_check_attention(sp, &sw->data[i], &sw->res[world->rank]);
            sw->runs[world->rank]++;
        }
        og_sp_free(sp);
    }
    return OG_OK;
}

/* The refusal rules, restated independently of the validator. */
static int should_refuse(int U, int R, og_ulysses_mode mode, int H, int64_t S)
{
    return U > H || (mode == OG_ULYSSES_STRICT && H % U != 0) || S < (int64_t)U * R;
}

int main(void)
{
    int total_runs = 0;
    double worst = 0;
    for (size_t hi = 0; hi < sizeof heads_list / sizeof heads_list[0]; hi++) {
        const int H = heads_list[hi];
        sp_data data[NSEQ * NTEXT];
        for (size_t si = 0; si < NSEQ; si++)
            for (size_t ti = 0; ti < NTEXT; ti++)
                CHECK(sp_data_make(&data[si * NTEXT + ti], H, D, seq_list[si], text_list[ti],
                                   1000 * hi + 10 * si + ti) == 0,
                      "reference for H=%d S=%lld", H, (long long)seq_list[si]);
        for (int U = 1; U <= 8; U++)
            for (int R = 1; R <= 4 && U * R <= 8; R++) {
                for (og_ulysses_mode m = OG_ULYSSES_STRICT; m <= OG_ULYSSES_ADVANCED_UAA; m++)
                    for (size_t si = 0; si < NSEQ; si++) {
                        const og_parallel_config cfg = {.ulysses_degree = U, .ring_degree = R,
                                                        .cfg_degree = 1, .ulysses_mode = m};
                        const int refused =
                            og_parallel_config_validate(&cfg, H, seq_list[si], U * R) != OG_OK;
                        CHECK(refused == should_refuse(U, R, m, H, seq_list[si]),
                              "U=%d R=%d %s H=%d S=%lld: refused=%d (%s)", U, R,
                              og_ulysses_mode_name(m), H, (long long)seq_list[si], refused,
                              refused ? og_error_message() : "accepted");
                    }
                if (U > H)
                    continue;
                sweep sw = {.U = U, .R = R, .data = data, .ndata = NSEQ * NTEXT};
                CHECK_OK(og_run_ranks(U * R, 1, sweep_rank, &sw));
                for (int r = 0; r < U * R; r++) {
                    CHECK(sw.res[r].fails == 0, "%d failure(s), first: %s", sw.res[r].fails,
                          sw.res[r].msg);
                    total_runs += sw.runs[r];
                    if (sw.res[r].worst > worst)
                        worst = sw.res[r].worst;
                }
            }
        for (size_t i = 0; i < NSEQ * NTEXT; i++)
            sp_data_free(&data[i]);
    }
    /* A realistic head size (64: the kernel's vector path with no padding), 30 heads, longer
     * uneven sequence and text, on the hybrid layouts. */
    sp_data big;
    CHECK(sp_data_make(&big, 30, 64, 523, 11, 7) == 0, "reference for head_dim 64");
    static const int hybrid[][2] = {{4, 2}, {2, 4}, {3, 2}, {8, 1}, {1, 8}};
    for (size_t i = 0; i < sizeof hybrid / sizeof hybrid[0]; i++) {
        sweep sw = {.U = hybrid[i][0], .R = hybrid[i][1], .data = &big, .ndata = 1};
        CHECK_OK(og_run_ranks(sw.U * sw.R, 1, sweep_rank, &sw));
        for (int r = 0; r < sw.U * sw.R; r++) {
            CHECK(sw.res[r].fails == 0 && sw.runs[r] > 0, "head_dim 64: %d failure(s), first: %s",
                  sw.res[r].fails, sw.res[r].msg);
            total_runs += sw.runs[r];
            worst = sw.res[r].worst > worst ? sw.res[r].worst : worst;
        }
    }
    sp_data_free(&big);
    printf("%d rank-runs checked, worst relative error %.3g\n", total_runs, worst);
    CHECK(total_runs > 10000, "only %d rank-runs", total_runs);
    return og_test_finish("test_parallel_attention");
}
