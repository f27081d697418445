/* The Z-Image transformer against diffusers: for every fixture variant (square, non-square with
 * odd token counts, CFG's positive and negative captions, 30 heads with bf16 weights), the first
 * and the last transformer call of the reference pipeline, serial fp32, within 1e-4 relative.
 * Then two variants again in the opt-in bf16 precision (bf16 block weights packed at load, AMX
 * GEMMs and attention) within bf16 error, where the build has it. Also a checkpoint split into two
 * shards with a Hugging Face index, the config reader, the model-time formula and the refusal of
 * bad requests. */
#include <math.h>
#include <stdlib.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/ops.h"
#include "core/threads.h"
#include "dit/zimage.h"
#include "io/safetensors.h"
#include "test_zimage_fixture.h"
#include "testutil.h"

static void check_call(og_zimage *m, const zfix *f, const char *prefix, int b, double tol)
{
    int failures_before = og_test_failures;
    char name[64];
    const float *x = NULL, *cap = NULL, *expect = NULL, *t = NULL;
    int64_t nx = 0, ncap = 0, nout = 0, nt = 0;
    og_tensor xs = {0}, caps = {0};
    snprintf(name, sizeof name, "%st", prefix);
    CHECK_OK(zfix_f32(f, name, &t, &nt, NULL));
    snprintf(name, sizeof name, "%sx_%d", prefix, b);
    CHECK_OK(zfix_f32(f, name, &x, &nx, &xs));
    snprintf(name, sizeof name, "%scap_%d", prefix, b);
    CHECK_OK(zfix_f32(f, name, &cap, &ncap, &caps));
    snprintf(name, sizeof name, "%sout_%d", prefix, b);
    CHECK_OK(zfix_f32(f, name, &expect, &nout, NULL));
    if (og_test_failures > failures_before)
        return;
    /* x is [C, 1, h, w]; the caption [len, cap_dim]. */
    int64_t h = xs.shape[2], w = xs.shape[3], cap_len = caps.shape[0];
    const og_zimage_config *c = og_zimage_get_config(m);
    CHECK(xs.shape[0] == c->in_channels && caps.shape[1] == c->cap_feat_dim && nout == nx,
          "fixture shapes");
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_zimage_scratch_bytes(m, h, w, cap_len, NULL)));
    float *out = calloc((size_t)nx, sizeof *out);
    CHECK_OK(og_zimage_forward(m, NULL, x, h, w, t[b < nt ? b : 0], cap, cap_len, out, &a));
    double err = og_test_rel_err_f(out, expect, (size_t)nx);
    printf("  %s %s%d: %lldx%lld latents, %lld caption tokens, t=%g: rel err %.3g (arena peak "
           "%zu of %zu)\n",
           f->dir, prefix, b, (long long)h, (long long)w, (long long)cap_len, t[b < nt ? b : 0],
           err, a.peak, a.cap);
    CHECK(err < tol, "%s %s%d: rel err %g", f->dir, prefix, b, err);
    CHECK(a.used == 0, "arena not released: %zu", a.used);
    free(out);
    og_arena_free(&a);
}

static void check_variant(const char *variant, int batch, double tol)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    og_zimage *m = NULL;
    CHECK_OK(og_zimage_load(&m, f.transformer_dir));
    if (m) {
        for (int b = 0; b < batch; b++) {
            check_call(m, &f, "dit_", b, tol);
            check_call(m, &f, "dit_last_", b, tol);
        }
        og_zimage_free(m);
    }
    zfix_close(&f);
}

/* The base model re-saved as two shards plus model.safetensors.index.json (the layout of the
 * released 6B checkpoint) loads and computes the same output. */
static void check_sharded(void)
{
    int failures_before = og_test_failures;
    char dir[] = "/tmp/og_zimage_shards_XXXXXX", path[256];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    og_weights *w = NULL;
    CHECK_OK(og_weights_open_dir(&w, "tests/fixtures/zimage/base/model/transformer"));
    if (og_test_failures > failures_before)
        return;
    int n = og_weights_count(w), half = n / 2;
    const char **names = calloc((size_t)n, sizeof *names);
    og_tensor *ts = calloc((size_t)n, sizeof *ts);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors.index.json", dir);
    FILE *idx = fopen(path, "w");
    fprintf(idx, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < n; i++) {
        names[i] = og_weights_name(w, i);
        CHECK_OK(og_weights_get(w, names[i], &ts[i]));
        fprintf(idx, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002.safetensors\"",
                i ? ", " : "", names[i], i < half ? 1 : 2);
    }
    fprintf(idx, "}}\n");
    fclose(idx);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model-00001-of-00002.safetensors", dir);
    CHECK_OK(og_st_write(path, half, names, ts, NULL));
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model-00002-of-00002.safetensors", dir);
    CHECK_OK(og_st_write(path, n - half, names + half, ts + half, NULL));
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(og_test_copy_file("tests/fixtures/zimage/base/model/transformer/config.json", path),
          "copy config.json");
    og_zimage *m = NULL;
    CHECK_OK(og_zimage_load(&m, dir));
    if (m) {
        zfix f;
        CHECK_OK(zfix_open(&f, "base"));
        check_call(m, &f, "dit_last_", 0, 1e-4);
        zfix_close(&f);
        og_zimage_free(m);
    }
    og_weights_free(w);
    free(names);
    free(ts);
    static const char *const files[] = {"config.json",
                                         "diffusion_pytorch_model.safetensors.index.json",
                                         "diffusion_pytorch_model-00001-of-00002.safetensors",
                                         "diffusion_pytorch_model-00002-of-00002.safetensors"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0, "cleanup of %s", dir);
}

static void check_config_and_errors(void)
{
    og_zimage_config c;
    CHECK_OK(og_zimage_read_config("models/zimage-tiny/transformer", &c));
    CHECK(c.dim == 48 && c.n_heads == 6 && c.head_dim == 8 && c.ffn_dim == 128 &&
              c.adaln_dim == 48 && c.n_layers == 2 && c.n_refiner_layers == 1 &&
              c.axes_dims[2] == 4 && c.axes_lens[0] == 1536 && c.cap_feat_dim == 32,
          "tiny config parsed: dim %d heads %d ffn %d adaln %d", c.dim, c.n_heads, c.ffn_dim,
          c.adaln_dim);
    og_status st = og_zimage_read_config("tests/fixtures/zimage/no-such-model", &c);
    CHECK(st == OG_ERR_NOT_FOUND, "missing folder -> %s", og_status_name(st));

    og_zimage_tokens t;
    CHECK_OK(og_zimage_tokens_for(&c, 14, 10, 35, &t));
    CHECK(t.img_len == 35 && t.img_pad_len == 64 && t.cap_pad_len == 64 && t.seq_len == 128,
          "token counts %lld %lld %lld", (long long)t.img_len, (long long)t.img_pad_len,
          (long long)t.cap_pad_len);
    CHECK(og_zimage_tokens_for(&c, 15, 10, 35, &t) == OG_ERR_INVALID_ARG, "odd latent side");
    CHECK(og_zimage_tokens_for(&c, 14, 10, 0, &t) == OG_ERR_INVALID_ARG, "empty caption");
    CHECK(og_zimage_tokens_for(&c, 2 * 513, 2, 10, &t) == OG_ERR_INVALID_ARG,
          "beyond the RoPE table");

    /* 6 heads need UAA for U = 4. */
    og_parallel_config pc = OG_PARALLEL_CONFIG_DEFAULT;
    pc.ulysses_degree = 4;
    CHECK(og_zimage_check_layout(&c, &pc, 16, 16, 20, 0) == OG_ERR_PARALLEL, "strict U=4, 6 heads");
    pc.ulysses_mode = OG_ULYSSES_ADVANCED_UAA;
    CHECK_OK(og_zimage_check_layout(&c, &pc, 16, 16, 20, 4));

    /* The pipeline's (1000 - t) / 1000 in fp32. */
    CHECK(og_zimage_model_time(1000.0f) == 0.0f, "t(1000)");
    CHECK(og_zimage_model_time(599.99994f) == (1000.0f - 599.99994f) / 1000.0f, "t(600)");
}

int main(void)
{
    og_set_threads(2);
    check_config_and_errors();
    check_variant("base", 1, 1e-4);
    check_variant("odd", 1, 1e-4);
    check_variant("cfg", 2, 1e-4);
    check_variant("h30", 1, 1e-4);
    check_sharded();
    /* bf16 rounding of every GEMM and attention input: 2-3e-3 measured, against 1e-6 in fp32. */
    if (og_gemm_set_precision(OG_GEMM_BF16) == OG_OK) {
        check_variant("base", 1, 1e-2);
        check_variant("h30", 1, 1e-2);
        CHECK_OK(og_gemm_set_precision(OG_GEMM_EXACT));
    }
    return og_test_finish("test_zimage");
}
