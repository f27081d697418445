/* DiffusionParallelConfig validation: every refusal names the fix. The messages are documented in
 * docs/parallelism.md and asserted word for word by tests/test_parallel_config.c. */
#include "parallel/config.h"

#include <stdio.h>
#include <string.h>

int og_parallel_world_size(const og_parallel_config *c)
{
    return c->cfg_degree * c->ring_degree * c->ulysses_degree;
}

og_status og_ulysses_mode_parse(const char *s, og_ulysses_mode *out)
{
    if (s && strcmp(s, "strict") == 0)
        *out = OG_ULYSSES_STRICT;
    else if (s && strcmp(s, "advanced_uaa") == 0)
        *out = OG_ULYSSES_ADVANCED_UAA;
    else
        return og_fail(OG_ERR_INVALID_ARG,
                       "unknown ulysses mode '%s': use --ulysses-mode strict or advanced_uaa",
                       s ? s : "");
    return OG_OK;
}

const char *og_ulysses_mode_name(og_ulysses_mode m)
{
    return m == OG_ULYSSES_ADVANCED_UAA ? "advanced_uaa" : "strict";
}

og_status og_parallel_config_validate(const og_parallel_config *c, int heads, int64_t seq_len,
                                      int world_available)
{
    const int U = c->ulysses_degree, R = c->ring_degree;
    if (U < 1)
        return og_fail(OG_ERR_PARALLEL, "ulysses_degree must be at least 1 (got %d): use "
                       "--ulysses-degree 1 to turn Ulysses off", U);
    if (R < 1)
        return og_fail(OG_ERR_PARALLEL, "ring_degree must be at least 1 (got %d): use "
                       "--ring-degree 1 to turn Ring off", R);
    if (c->cfg_degree != 1 && c->cfg_degree != 2)
        return og_fail(OG_ERR_PARALLEL, "cfg_degree must be 1 or 2 (got %d): use --cfg-degree 2 "
                       "to run the two guidance branches on separate ranks, 1 otherwise",
                       c->cfg_degree);
    if (c->ulysses_mode != OG_ULYSSES_STRICT && c->ulysses_mode != OG_ULYSSES_ADVANCED_UAA)
        return og_fail(OG_ERR_PARALLEL, "unknown ulysses mode %d: use strict or advanced_uaa",
                       (int)c->ulysses_mode);
    if (heads > 0 && U > heads)
        return og_fail(OG_ERR_PARALLEL, "ulysses_degree %d exceeds the model's %d attention "
                       "heads, so a rank would hold no head: use --ulysses-degree %d or less and "
                       "add ranks with --ring-degree", U, heads, heads);
    if (heads > 0 && c->ulysses_mode == OG_ULYSSES_STRICT && heads % U != 0) {
        char valid[256] = "";
        size_t n = 0;
        for (int d = 1; d <= heads && n < sizeof valid - 16; d++)
            if (heads % d == 0)
                n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%d", n ? ", " : "", d);
        return og_fail(OG_ERR_PARALLEL, "ulysses_degree %d does not divide the model's %d "
                       "attention heads (strict mode): use a degree in {%s}, or "
                       "--ulysses-mode advanced_uaa to split the heads unevenly", U, heads, valid);
    }
    if (seq_len > 0 && seq_len < (int64_t)U * R)
        return og_fail(OG_ERR_PARALLEL, "the sequence of %lld tokens is shorter than "
                       "ulysses_degree x ring_degree = %d, so a rank would hold no token: lower "
                       "the degrees or generate a larger image or video", (long long)seq_len,
                       U * R);
    const int world = og_parallel_world_size(c);
    if (world_available > 0 && world != world_available)
        return og_fail(OG_ERR_PARALLEL, "the layout needs cfg_degree x ring_degree x "
                       "ulysses_degree = %d x %d x %d = %d ranks but %d are available: choose "
                       "degrees whose product is %d", c->cfg_degree, R, U, world,
                       world_available, world_available);
    return OG_OK;
}
