/* Layout validation: every refusal, word for word as docs/parallelism.md lists it; the accepted
 * layouts; mode names; and the shard and head arithmetic (contiguous, covering, first ones
 * longer). */
#include <string.h>

#include "parallel/config.h"
#include "parallel/sp.h"
#include "testutil.h"

static og_parallel_config layout(int U, int R, int cfg, og_ulysses_mode m)
{
    return (og_parallel_config){.ulysses_degree = U, .ring_degree = R, .cfg_degree = cfg,
                                .ulysses_mode = m};
}

static void expect_refusal(og_parallel_config c, int heads, int64_t seq, int world,
                           const char *message)
{
    og_status st = og_parallel_config_validate(&c, heads, seq, world);
    CHECK(st == OG_ERR_PARALLEL, "U=%d R=%d cfg=%d H=%d S=%lld world=%d: status %s",
          c.ulysses_degree, c.ring_degree, c.cfg_degree, heads, (long long)seq, world,
          og_status_name(st));
    CHECK(strcmp(og_error_message(), message) == 0, "message\n  got:  %s\n  want: %s",
          og_error_message(), message);
}

int main(void)
{
    const og_ulysses_mode S = OG_ULYSSES_STRICT, A = OG_ULYSSES_ADVANCED_UAA;

    expect_refusal(layout(0, 1, 1, S), 8, 64, 0,
                   "ulysses_degree must be at least 1 (got 0): use --ulysses-degree 1 to turn "
                   "Ulysses off");
    expect_refusal(layout(2, -1, 1, S), 8, 64, 0,
                   "ring_degree must be at least 1 (got -1): use --ring-degree 1 to turn Ring off");
    expect_refusal(layout(2, 1, 3, S), 8, 64, 0,
                   "cfg_degree must be 1 or 2 (got 3): use --cfg-degree 2 to run the two guidance "
                   "branches on separate ranks, 1 otherwise");
    expect_refusal(layout(4, 2, 1, S), 30, 4099, 0,
                   "ulysses_degree 4 does not divide the model's 30 attention heads (strict "
                   "mode): use a degree in {1, 2, 3, 5, 6, 10, 15, 30}, or --ulysses-mode "
                   "advanced_uaa to split the heads unevenly");
    for (og_ulysses_mode m = S; m <= A; m++) /* in either mode */
        expect_refusal(layout(8, 1, 1, m), 6, 64, 0,
                       "ulysses_degree 8 exceeds the model's 6 attention heads, so a rank would "
                       "hold no head: use --ulysses-degree 6 or less and add ranks with "
                       "--ring-degree");
    expect_refusal(layout(2, 4, 1, A), 6, 7, 0,
                   "the sequence of 7 tokens is shorter than ulysses_degree x ring_degree = 8, so "
                   "a rank would hold no token: lower the degrees or generate a larger image or "
                   "video");
    expect_refusal(layout(2, 2, 2, S), 6, 64, 4,
                   "the layout needs cfg_degree x ring_degree x ulysses_degree = 2 x 2 x 2 = 8 "
                   "ranks but 4 are available: choose degrees whose product is 4");

    /* Accepted: UAA lifts divisibility; heads/seq unknown (0) skip those checks. */
    og_parallel_config c = layout(4, 2, 1, A);
    CHECK_OK(og_parallel_config_validate(&c, 30, 4099, 8));
    c = layout(3, 1, 2, S);
    CHECK_OK(og_parallel_config_validate(&c, 24, 3, 6));
    CHECK_OK(og_parallel_config_validate(&c, 0, 0, 0));
    CHECK(og_parallel_world_size(&c) == 6, "world %d", og_parallel_world_size(&c));
    c = OG_PARALLEL_CONFIG_DEFAULT;
    CHECK_OK(og_parallel_config_validate(&c, 1, 1, 1));

    og_ulysses_mode m;
    CHECK_OK(og_ulysses_mode_parse("advanced_uaa", &m));
    CHECK(m == A && strcmp(og_ulysses_mode_name(m), "advanced_uaa") == 0, "uaa");
    CHECK_OK(og_ulysses_mode_parse("strict", &m));
    CHECK(m == S && strcmp(og_ulysses_mode_name(m), "strict") == 0, "strict");
    CHECK(og_ulysses_mode_parse("loose", &m) == OG_ERR_INVALID_ARG, "bad mode accepted");
    CHECK(strcmp(og_error_message(), "unknown ulysses mode 'loose': use --ulysses-mode strict "
                                     "or advanced_uaa") == 0, "%s", og_error_message());

    /* Shards: contiguous, covering, the first S % P one longer. */
    for (int64_t Sq = 1; Sq <= 40; Sq++)
        for (int P = 1; P <= Sq && P <= 9; P++) {
            int64_t at = 0;
            for (int r = 0; r < P; r++) {
                int64_t off, len;
                og_shard_range(Sq, P, r, &off, &len);
                CHECK(off == at && len == Sq / P + (r < Sq % P), "S=%lld P=%d r=%d: %lld+%lld",
                      (long long)Sq, P, r, (long long)off, (long long)len);
                at += len;
            }
            CHECK(at == Sq, "S=%lld P=%d covers %lld", (long long)Sq, P, (long long)at);
        }
    int h0, hn;
    og_head_range(30, 4, 0, &h0, &hn);
    CHECK(h0 == 0 && hn == 8, "30/4 rank 0: %d+%d", h0, hn);
    og_head_range(30, 4, 1, &h0, &hn);
    CHECK(h0 == 8 && hn == 8, "30/4 rank 1: %d+%d", h0, hn);
    og_head_range(30, 4, 2, &h0, &hn);
    CHECK(h0 == 16 && hn == 7, "30/4 rank 2: %d+%d", h0, hn);
    og_head_range(30, 4, 3, &h0, &hn);
    CHECK(h0 == 23 && hn == 7, "30/4 rank 3: %d+%d", h0, hn);
    return og_test_finish("test_parallel_config");
}
