/* Access to the Qwen-Image transformer reference fixtures (tests/fixtures/qwenimage/dit/<variant>/:
 * transformer/ and reference.safetensors, made by tools/make_qwenimage_dit_fixtures.py) for
 * test_qwenimage_dit and test_qwenimage_dit_sp. */
#ifndef OG_TEST_QWENIMAGE_DIT_FIXTURE_H
#define OG_TEST_QWENIMAGE_DIT_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "io/weights.h"
#include "testutil.h"

/* One reference call: x [hp·wp, in], text [L, joint], mask [L] or NULL, out [hp·wp, out·p²]. */
typedef struct {
    const float *x, *text, *out;
    uint8_t mask[64];
    bool has_mask;
    float t;
    int64_t hp, wp, L, n_out;
} qi_case;

static inline og_status qi_fix_open(og_weights **ref, char *transformer_dir, size_t cap,
                                    const char *variant)
{
    char path[512];
    snprintf(transformer_dir, cap, "tests/fixtures/qwenimage/dit/%s/transformer", variant);
    snprintf(path, sizeof path, "tests/fixtures/qwenimage/dit/%s/reference.safetensors", variant);
    return og_weights_open_file(ref, path);
}

static inline og_status qi_fix_case(const og_weights *ref, const char *cname, qi_case *c)
{
    og_tensor x, grid, t, text, out, mask;
    OG_TRY(og_test_fixture_f32(ref, cname, "x", &x));
    OG_TRY(og_test_fixture_f32(ref, cname, "grid", &grid));
    OG_TRY(og_test_fixture_f32(ref, cname, "t", &t));
    OG_TRY(og_test_fixture_f32(ref, cname, "text", &text));
    OG_TRY(og_test_fixture_f32(ref, cname, "out", &out));
    if (x.ndim != 2 || text.ndim != 2 || out.ndim != 2 || og_tensor_numel(&grid) != 2 ||
        text.shape[0] > 64)
        return og_fail(OG_ERR_SHAPE, "fixture case %s: unexpected shapes", cname);
    const float *g = grid.data;
    *c = (qi_case){.x = x.data, .text = text.data, .out = out.data, .t = *(const float *)t.data,
                   .hp = (int64_t)g[0], .wp = (int64_t)g[1], .L = text.shape[0],
                   .n_out = og_tensor_numel(&out)};
    char name[64];
    snprintf(name, sizeof name, "%s.mask", cname);
    if (og_weights_has(ref, name)) {
        OG_TRY(og_test_fixture_f32(ref, cname, "mask", &mask));
        if (og_tensor_numel(&mask) != c->L)
            return og_fail(OG_ERR_SHAPE, "fixture case %s: mask length", cname);
        for (int64_t i = 0; i < c->L; i++)
            c->mask[i] = ((const float *)mask.data)[i] != 0.0f;
        c->has_mask = true;
    }
    if (c->hp * c->wp != x.shape[0] || out.shape[0] != x.shape[0])
        return og_fail(OG_ERR_SHAPE, "fixture case %s: grid and token rows disagree", cname);
    return OG_OK;
}

#endif
