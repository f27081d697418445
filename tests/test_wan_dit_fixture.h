/* Access to the Wan transformer reference fixtures (tests/fixtures/wan/dit/<variant>/:
 * transformer/ and reference.safetensors, made by tools/make_wan_dit_fixtures.py) for
 * test_wan_dit and test_wan_dit_sp. */
#ifndef OG_TEST_WAN_DIT_FIXTURE_H
#define OG_TEST_WAN_DIT_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "core/tensor.h"
#include "io/weights.h"
#include "testutil.h"

/* One reference call: x [C, F, H, W], t [1], text [L, text_dim], out [C_out, F, H, W]. */
typedef struct {
    const float *x, *text, *out;
    float t;
    int64_t F, H, W, L, n_out;
} wan_case;

static inline og_status wan_fix_open(og_weights **ref, char *transformer_dir, size_t cap,
                                     const char *variant)
{
    char path[512];
    snprintf(transformer_dir, cap, "tests/fixtures/wan/dit/%s/transformer", variant);
    snprintf(path, sizeof path, "tests/fixtures/wan/dit/%s/reference.safetensors", variant);
    return og_weights_open_file(ref, path);
}

static inline og_status wan_fix_case(const og_weights *ref, const char *cname, wan_case *c)
{
    og_tensor x, t, text, out;
    OG_TRY(og_test_fixture_f32(ref, cname, "x", &x));
    OG_TRY(og_test_fixture_f32(ref, cname, "t", &t));
    OG_TRY(og_test_fixture_f32(ref, cname, "text", &text));
    OG_TRY(og_test_fixture_f32(ref, cname, "out", &out));
    if (x.ndim != 4 || text.ndim != 2 || out.ndim != 4)
        return og_fail(OG_ERR_SHAPE, "fixture case %s: unexpected ranks", cname);
    *c = (wan_case){.x = x.data, .text = text.data, .out = out.data, .t = *(const float *)t.data,
                    .F = x.shape[1], .H = x.shape[2], .W = x.shape[3], .L = text.shape[0],
                    .n_out = og_tensor_numel(&out)};
    return OG_OK;
}

#endif
