/* The Wan2.1 transformer against diffusers: every case of every fixture variant (the tiny
 * 2-head model, 5 heads with odd 3x6x10 and 5x2x4 latents in a sharded checkpoint, 3 heads x 16
 * with bf16 weights and no cross-attention norm), serial fp32, within 2e-6 relative (4.5e-7
 * measured); the config reader; and the refusal of bad configs, requests and arenas with their
 * messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/wan.h"
#include "test_wan_dit_fixture.h"
#include "testutil.h"

static void check_case(og_wan *m, const og_weights *ref, const char *variant, const char *cname)
{
    int failures_before = og_test_failures;
    wan_case k = {0};
    CHECK_OK(wan_fix_case(ref, cname, &k));
    if (og_test_failures > failures_before)
        return;
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_wan_scratch_bytes(m, k.F, k.H, k.W, k.L, NULL)));
    float *out = calloc((size_t)k.n_out, sizeof *out);
    CHECK_OK(og_wan_forward(m, NULL, k.x, k.F, k.H, k.W, k.t, k.text, k.L, out, &a));
    double err = og_test_rel_err_f(out, k.out, (size_t)k.n_out);
    printf("  %s %s: %lldx%lldx%lld latents, %lld text tokens, t=%g: rel err %.3g (arena peak "
           "%zu of %zu)\n", variant, cname, (long long)k.F, (long long)k.H, (long long)k.W,
           (long long)k.L, k.t, err, a.peak, a.cap);
    CHECK(err < 2e-6, "%s %s: rel err %g", variant, cname, err);
    CHECK(a.used == 0, "arena not released: %zu", a.used);

    /* An arena one page short of the plan is refused, not overrun. */
    og_arena small;
    CHECK_OK(og_arena_init(&small, a.peak - 4096));
    og_status st = og_wan_forward(m, NULL, k.x, k.F, k.H, k.W, k.t, k.text, k.L, out, &small);
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
    CHECK_OK(wan_fix_open(&ref, dir, sizeof dir, variant));
    og_wan *m = NULL;
    CHECK_OK(og_wan_load(&m, dir));
    if (og_test_failures == failures_before)
        for (int i = 0; i < ncases; i++)
            check_case(m, ref, variant, cases[i]);
    og_wan_free(m);
    og_weights_free(ref);
}

/* A copy of the tiny model's folder with its config.json replaced by `config`. */
static og_status load_with_config(const char *config, og_wan **m, char *dir)
{
    OG_TRY(og_test_model_folder(dir, "/tmp/og_wan_cfg_XXXXXX", config, "tests/fixtures/wan/dit/"
                                "tiny/transformer/diffusion_pytorch_model.safetensors"));
    return og_wan_load(m, dir);
}

/* The tiny model's config with `key` set to `value` (added when the config lacks it) must be
 * refused at load with `want` and a message holding `needle`. */
static void expect_refused(const char *key, const char *value, og_status want, const char *needle)
{
    static const char *const keys[] = {"_class_name", "attention_head_dim", "num_attention_heads",
                                       "in_channels", "out_channels", "text_dim", "ffn_dim",
                                       "num_layers", "rope_max_seq_len", "patch_size"};
    static const char *const values[] = {"\"WanTransformer3DModel\"", "12", "2", "16", "16",
                                         "32", "32", "2", "32", "[1, 2, 2]"};
    char config[1024];
    og_test_config_with(config, sizeof config, keys, values, 10, key, value);
    og_wan *m = NULL;
    char dir[64];
    og_status st = load_with_config(config, &m, dir);
    const char *msg = og_error_message();
    CHECK(st == want && strstr(msg, needle) != NULL, "%s = %s: got %s \"%s\", expected %s "
          "mentioning \"%s\"", key, value, og_status_name(st), msg, og_status_name(want),
          needle);
    CHECK(m == NULL, "refused load returned a model");
    og_wan_free(m);
    og_test_model_remove(dir);
}

static void check_config_and_errors(void)
{
    og_wan_config c;
    CHECK_OK(og_wan_read_config("tests/fixtures/wan/dit/tiny/transformer", &c));
    CHECK(c.dim == 24 && c.heads == 2 && c.head_dim == 12 && c.ffn_dim == 32 && c.n_layers == 2 &&
              c.text_dim == 32 && c.freq_dim == 256 && c.rope_max_seq_len == 32 &&
              c.patch[0] == 1 && c.patch[1] == 2 && c.patch[2] == 2 && c.cross_attn_norm &&
              c.rope_dims[0] == 4 && c.rope_dims[1] == 4 && c.rope_dims[2] == 4 &&
              c.eps == 1e-6f && c.out_channels == 16,
          "tiny config parsed: dim %d heads %d rope %d/%d/%d", c.dim, c.heads, c.rope_dims[0],
          c.rope_dims[1], c.rope_dims[2]);
    CHECK_OK(og_wan_read_config("tests/fixtures/wan/dit/plain/transformer", &c));
    CHECK(c.rope_dims[0] == 8 && c.rope_dims[1] == 4 && !c.cross_attn_norm && c.eps == 1e-5f,
          "plain config: rope %d/%d/%d", c.rope_dims[0], c.rope_dims[1], c.rope_dims[2]);
    og_status st = og_wan_read_config("tests/fixtures/wan/dit/no-such-model", &c);
    CHECK(st == OG_ERR_NOT_FOUND, "missing folder -> %s", og_status_name(st));

    CHECK_OK(og_wan_read_config("tests/fixtures/wan/dit/tiny/transformer", &c));
    og_wan_tokens t = {0};
    CHECK_OK(og_wan_tokens_for(&c, 3, 6, 10, 9, &t));
    CHECK(t.f == 3 && t.h == 3 && t.w == 5 && t.n == 45, "tokens %lld", (long long)t.n);
    CHECK(og_wan_tokens_for(&c, 3, 5, 10, 9, &t) == OG_ERR_INVALID_ARG &&
              strstr(og_error_message(), "multiple of the patch"), "odd height: %s",
          og_error_message());
    CHECK(og_wan_tokens_for(&c, 0, 4, 4, 9, &t) == OG_ERR_INVALID_ARG, "no frames");
    CHECK(og_wan_tokens_for(&c, 33, 4, 4, 9, &t) == OG_ERR_INVALID_ARG &&
              strstr(og_error_message(), "rope_max_seq_len"), "33 frames: %s",
          og_error_message());
    CHECK(og_wan_tokens_for(&c, 2, 4, 4, 0, &t) == OG_ERR_INVALID_ARG, "no text");

    /* 2 heads: U = 4 is impossible even with UAA; 4 tokens cannot feed 8 ranks. */
    og_parallel_config pc = OG_PARALLEL_CONFIG_DEFAULT;
    pc.ulysses_degree = 4;
    pc.ulysses_mode = OG_ULYSSES_ADVANCED_UAA;
    CHECK(og_wan_check_layout(&c, &pc, 2, 4, 6, 7, 4) == OG_ERR_PARALLEL, "U=4 with 2 heads");
    pc = OG_PARALLEL_CONFIG_DEFAULT;
    pc.ring_degree = 8;
    CHECK(og_wan_check_layout(&c, &pc, 1, 4, 4, 7, 8) == OG_ERR_PARALLEL, "R=8 over 4 tokens");
    pc.ring_degree = 4;
    CHECK_OK(og_wan_check_layout(&c, &pc, 1, 4, 4, 7, 4));

    expect_refused("image_dim", "1280", OG_ERR_UNSUPPORTED, "image-to-video");
    expect_refused("added_kv_proj_dim", "24", OG_ERR_UNSUPPORTED, "image-to-video");
    expect_refused("_class_name", "\"ZImageTransformer2DModel\"", OG_ERR_FORMAT,
                   "ZImageTransformer2DModel");
    expect_refused("patch_size", "[2, 2]", OG_ERR_FORMAT, "patch_size");
    expect_refused("attention_head_dim", "13", OG_ERR_FORMAT, "even");
    expect_refused("num_attention_heads", "0", OG_ERR_FORMAT, "num_attention_heads");
    /* Shapes that disagree with the weights: a wider text encoder, a layer that is not there. */
    expect_refused("text_dim", "40", OG_ERR_SHAPE, "text_embedder.linear_1.weight");
    expect_refused("num_layers", "3", OG_ERR_NOT_FOUND, "blocks.2");

    /* Requests the forward refuses. */
    og_wan *m = NULL;
    CHECK_OK(og_wan_load(&m, "tests/fixtures/wan/dit/tiny/transformer"));
    if (m) {
        og_arena a;
        CHECK_OK(og_arena_init(&a, og_wan_scratch_bytes(m, 2, 4, 6, 7, NULL)));
        float *x = calloc(16 * 2 * 4 * 6, sizeof *x), *txt = calloc(7 * 32, sizeof *txt);
        float *out = calloc(16 * 2 * 4 * 6, sizeof *out);
        CHECK(og_wan_scratch_bytes(m, 2, 5, 6, 7, NULL) == 0, "plan for a refused request");
        st = og_wan_forward(m, NULL, x, 2, 5, 6, 500.0f, txt, 7, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG, "odd latent height -> %s", og_status_name(st));
        st = og_wan_forward(m, NULL, x, 2, 4, 6, NAN, txt, 7, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG, "NaN timestep -> %s", og_status_name(st));
        st = og_wan_forward(m, NULL, x, 2, 4, 6, 500.0f, NULL, 7, out, &a);
        CHECK(st == OG_ERR_INVALID_ARG, "no text -> %s", og_status_name(st));
        CHECK(a.used == 0, "arena released after refusals");
        free(x);
        free(txt);
        free(out);
        og_arena_free(&a);
        og_wan_free(m);
    }
}

int main(void)
{
    og_set_threads(2);
    check_config_and_errors();
    static const char *const ab[] = {"a", "b"}, *const a_only[] = {"a"};
    check_variant("tiny", ab, 2);
    check_variant("h5", ab, 2);
    check_variant("plain", a_only, 1);
    return og_test_finish("test_wan_dit");
}
