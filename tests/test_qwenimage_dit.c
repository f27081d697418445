/* The Qwen-Image transformer against diffusers: every case of every fixture variant (the tiny
 * 3-head model, 5 heads x 8 with a 3x5 and a 5x2 token grid in a sharded checkpoint, the tiny
 * config stored in bf16; cases with and without a text mask), serial fp32; an all-ones mask equals
 * no mask; the config reader; and the refusal of bad configs, requests and arenas with their
 * messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/qwenimage.h"
#include "test_qwenimage_dit_fixture.h"
#include "testutil.h"

static void check_case(og_qwenimage *m, const og_weights *ref, const char *variant,
                       const char *cname)
{
    int failures_before = og_test_failures;
    qi_case k = {0};
    CHECK_OK(qi_fix_case(ref, cname, &k));
    if (og_test_failures > failures_before)
        return;
    const uint8_t *mask = k.has_mask ? k.mask : NULL;
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_qwenimage_scratch_bytes(m, k.hp, k.wp, k.L, NULL)));
    float *out = calloc((size_t)k.n_out, sizeof *out);
    CHECK_OK(og_qwenimage_forward(m, NULL, k.x, k.hp, k.wp, k.t, k.text, mask, k.L, out, &a));
    double err = og_test_rel_err_f(out, k.out, (size_t)k.n_out);
    printf("  %s %s: %lldx%lld tokens, %lld text tokens%s, t=%g: rel err %.3g (arena peak %zu "
           "of %zu)\n", variant, cname, (long long)k.hp, (long long)k.wp, (long long)k.L,
           mask ? " (masked)" : "", k.t, err, a.peak, a.cap);
    CHECK(err < 2e-6, "%s %s: rel err %g", variant, cname, err);
    CHECK(a.used == 0, "arena not released: %zu", a.used);

    if (!mask) {
        /* An all-ones mask is the same request. */
        uint8_t ones[64];
        memset(ones, 1, sizeof ones);
        float *out1 = calloc((size_t)k.n_out, sizeof *out1);
        CHECK_OK(og_qwenimage_forward(m, NULL, k.x, k.hp, k.wp, k.t, k.text, ones, k.L, out1,
                                      &a));
        CHECK(memcmp(out, out1, (size_t)k.n_out * sizeof *out) == 0, "%s %s: all-ones mask "
              "differs from no mask", variant, cname);
        free(out1);
    }

    /* An arena one page short of the plan is refused, not overrun. */
    og_arena small;
    CHECK_OK(og_arena_init(&small, a.peak - 4096));
    og_status st = og_qwenimage_forward(m, NULL, k.x, k.hp, k.wp, k.t, k.text, mask, k.L, out,
                                        &small);
    CHECK(st == OG_ERR_OOM, "short arena -> %s", og_status_name(st));
    og_arena_free(&small);
    free(out);
    og_arena_free(&a);
}

static void check_variant(const char *variant, const char *const *cases, int ncases)
{
    int failures_before = og_test_failures;
    char dir[512];
    og_weights *ref = NULL;
    CHECK_OK(qi_fix_open(&ref, dir, sizeof dir, variant));
    og_qwenimage *m = NULL;
    CHECK_OK(og_qwenimage_load(&m, dir));
    if (og_test_failures == failures_before)
        for (int i = 0; i < ncases; i++)
            check_case(m, ref, variant, cases[i]);
    og_qwenimage_free(m);
    og_weights_free(ref);
}

/* A copy of the tiny model's folder with its config.json replaced by `config`. */
static og_status load_with_config(const char *config, og_qwenimage **m, char *dir)
{
    OG_TRY(og_test_model_folder(dir, "/tmp/og_qi_cfg_XXXXXX", config, "tests/fixtures/qwenimage/"
                                "dit/tiny/transformer/diffusion_pytorch_model.safetensors"));
    return og_qwenimage_load(m, dir);
}

/* The tiny model's config with `key` set to `value` (added when the config lacks it) must be
 * refused at load with `want` and a message holding `needle`. */
static void expect_refused(const char *key, const char *value, og_status want, const char *needle)
{
    static const char *const keys[] = {"_class_name", "attention_head_dim", "num_attention_heads",
                                       "in_channels", "out_channels", "joint_attention_dim",
                                       "num_layers", "patch_size", "axes_dims_rope"};
    static const char *const values[] = {"\"QwenImageTransformer2DModel\"", "16", "3", "16", "4",
                                         "16", "2", "2", "[8, 4, 4]"};
    char config[1024];
    og_test_config_with(config, sizeof config, keys, values, 9, key, value);
    og_qwenimage *m = NULL;
    char dir[64];
    og_status st = load_with_config(config, &m, dir);
    const char *msg = og_error_message();
    CHECK(st == want && strstr(msg, needle) != NULL, "%s = %s: got %s \"%s\", expected %s "
          "mentioning \"%s\"", key, value, og_status_name(st), msg, og_status_name(want),
          needle);
    CHECK(m == NULL, "refused load returned a model");
    og_qwenimage_free(m);
    og_test_model_remove(dir);
}

static void check_config_and_errors(void)
{
    og_qwenimage_config c;
    CHECK_OK(og_qwenimage_read_config("tests/fixtures/qwenimage/dit/tiny/transformer", &c));
    CHECK(c.dim == 48 && c.heads == 3 && c.head_dim == 16 && c.n_layers == 2 &&
              c.in_channels == 16 && c.out_channels == 4 && c.joint_dim == 16 && c.patch == 2 &&
              c.axes[0] == 8 && c.axes[1] == 4 && c.axes[2] == 4,
          "tiny config parsed: dim %d heads %d axes %d/%d/%d", c.dim, c.heads, c.axes[0],
          c.axes[1], c.axes[2]);
    CHECK_OK(og_qwenimage_read_config("tests/fixtures/qwenimage/dit/h5/transformer", &c));
    CHECK(c.dim == 40 && c.heads == 5 && c.axes[0] == 4 && c.axes[1] == 2 && c.axes[2] == 2,
          "h5 config: dim %d", c.dim);
    og_status st = og_qwenimage_read_config("tests/fixtures/qwenimage/dit/no-such-model", &c);
    CHECK(st == OG_ERR_NOT_FOUND, "missing folder -> %s", og_status_name(st));

    /* Requests: the RoPE tables hold 4096 positions; text starts at max(hp/2, wp/2). */
    CHECK_OK(og_qwenimage_check_request(&c, 3, 5, 7));
    CHECK_OK(og_qwenimage_check_request(&c, 64, 128, 4096 - 64));
    CHECK(og_qwenimage_check_request(&c, 64, 128, 4096 - 63) == OG_ERR_INVALID_ARG &&
              strstr(og_error_message(), "at most 4032 text tokens"), "long text: %s",
          og_error_message());
    CHECK(og_qwenimage_check_request(&c, 0, 4, 7) == OG_ERR_INVALID_ARG, "empty grid");
    CHECK(og_qwenimage_check_request(&c, 8193, 4, 7) == OG_ERR_INVALID_ARG &&
              strstr(og_error_message(), "RoPE"), "tall grid: %s", og_error_message());
    CHECK(og_qwenimage_check_request(&c, 2, 4, 0) == OG_ERR_INVALID_ARG, "no text");

    /* 5 heads: U = 6 is impossible even with UAA; 6 tokens cannot feed 8 ranks. */
    og_parallel_config pc = OG_PARALLEL_CONFIG_DEFAULT;
    pc.ulysses_degree = 6;
    pc.ulysses_mode = OG_ULYSSES_ADVANCED_UAA;
    CHECK(og_qwenimage_check_layout(&c, &pc, 4, 4, 7, 6) == OG_ERR_PARALLEL, "U=6 with 5 heads");
    pc = OG_PARALLEL_CONFIG_DEFAULT;
    pc.ring_degree = 8;
    CHECK(og_qwenimage_check_layout(&c, &pc, 2, 3, 7, 8) == OG_ERR_PARALLEL, "R=8 over 6 tokens");
    pc.ring_degree = 4;
    CHECK_OK(og_qwenimage_check_layout(&c, &pc, 2, 3, 7, 4));

    expect_refused("zero_cond_t", "true", OG_ERR_UNSUPPORTED, "zero_cond_t");
    expect_refused("use_layer3d_rope", "true", OG_ERR_UNSUPPORTED, "use_layer3d_rope");
    expect_refused("guidance_embeds", "true", OG_ERR_UNSUPPORTED, "guidance_embeds");
    expect_refused("_class_name", "\"WanTransformer3DModel\"", OG_ERR_FORMAT,
                   "WanTransformer3DModel");
    expect_refused("axes_dims_rope", "[8, 4, 6]", OG_ERR_FORMAT, "axes_dims_rope");
    expect_refused("axes_dims_rope", "[7, 5, 4]", OG_ERR_FORMAT, "even");
    expect_refused("num_attention_heads", "0", OG_ERR_FORMAT, "num_attention_heads");
    /* Shapes that disagree with the weights: a wider text encoder, a layer that is not there. */
    expect_refused("joint_attention_dim", "20", OG_ERR_SHAPE, "txt_norm.weight");
    expect_refused("num_layers", "3", OG_ERR_NOT_FOUND, "transformer_blocks.2");
    expect_refused("out_channels", "16", OG_ERR_SHAPE, "proj_out.weight");

    /* Requests the forward refuses. */
    og_qwenimage *m = NULL;
    CHECK_OK(og_qwenimage_load(&m, "tests/fixtures/qwenimage/dit/tiny/transformer"));
    if (m) {
        og_arena a;
        CHECK_OK(og_arena_init(&a, og_qwenimage_scratch_bytes(m, 2, 3, 5, NULL)));
        float *x = calloc(6 * 16, sizeof *x), *txt = calloc(5 * 16, sizeof *txt);
        float *out = calloc(6 * 16, sizeof *out);
        const uint8_t none[5] = {0};
        CHECK(og_qwenimage_scratch_bytes(m, 0, 3, 5, NULL) == 0, "plan for a refused request");
        st = og_qwenimage_forward(m, NULL, x, 2, 3, NAN, txt, NULL, 5, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG, "NaN timestep -> %s", og_status_name(st));
        st = og_qwenimage_forward(m, NULL, x, 2, 3, 0.5f, NULL, NULL, 5, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG, "no text -> %s", og_status_name(st));
        st = og_qwenimage_forward(m, NULL, x, 2, 3, 0.5f, txt, none, 5, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG && strstr(og_error_message(), "mask"),
              "all-masked text -> %s: %s", og_status_name(st), og_error_message());
        st = og_qwenimage_forward(m, NULL, x, 2, 3, 0.5f, txt, NULL, 0, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG, "zero text tokens -> %s", og_status_name(st));
        CHECK(a.used == 0, "arena released after refusals");
        free(x);
        free(txt);
        free(out);
        og_arena_free(&a);
        og_qwenimage_free(m);
    }
}

int main(void)
{
    og_set_threads(2);
    check_config_and_errors();
    static const char *const ab[] = {"a", "b"}, *const a_only[] = {"a"};
    check_variant("tiny", ab, 2);
    check_variant("h5", ab, 2);
    check_variant("bf16", a_only, 1);
    return og_test_finish("test_qwenimage_dit");
}
