/* Qwen-Image through the public C API against diffusers' QwenImagePipeline (fp32, fixtures from
 * tools/make_qwenimage_fixtures.py on models/qwenimage-tiny): the reference's initial noise is
 * injected (og_gen_params.initial_latents), then the final latents and the image must match.
 * Every parallel layout (2x1, 1x2, 2x2, cfg 2, cfg 2 x ulysses 2) must equal the serial run and
 * the reference. The schedule the pipeline builds (np.linspace sigmas, the released scheduler
 * config's dynamic shift and shift_terminal) equals the reference's bit for bit at real sizes.
 * Then the folder's reported properties, the refusals, and seeded noise. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "pipeline/omnigen.h"
#include "samplers/flowmatch.h"
#include "test_pipeline_util.h"
#include "testutil.h"

#define MODEL "models/qwenimage-tiny"

static og_parallel_config layout(int u, int r, int c)
{
    og_parallel_config pc = OG_PARALLEL_CONFIG_DEFAULT;
    pc.ulysses_degree = u;
    pc.ring_degree = r;
    pc.cfg_degree = c;
    return pc;
}

static void run_case(og_ctx *ctx, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/qwenimage/pipeline/%s/meta.json", name);
    cJSON *meta = NULL;
    CHECK_OK(og_json_load(path, &meta));
    if (!meta)
        return;
    const cJSON *prompt = field(meta, "prompt", cJSON_IsString);
    const cJSON *width = field(meta, "width", cJSON_IsNumber);
    const cJSON *height = field(meta, "height", cJSON_IsNumber);
    const cJSON *steps = field(meta, "steps", cJSON_IsNumber);
    const cJSON *scale = field(meta, "true_cfg_scale", cJSON_IsNumber);
    const cJSON *max_seq = field(meta, "max_sequence_length", cJSON_IsNumber);
    const cJSON *cfg = field(meta, "do_true_cfg", cJSON_IsBool);
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(meta, "negative_prompt");
    og_st_file *ref = NULL;
    snprintf(path, sizeof path, "tests/fixtures/qwenimage/pipeline/%s/reference.safetensors",
             name);
    CHECK_OK(og_st_open(&ref, path));
    if (!prompt || !width || !height || !steps || !scale || !max_seq || !cfg || !ref) {
        og_st_close(ref);
        cJSON_Delete(meta);
        return;
    }
    og_gen_params p = OG_GEN_PARAMS_DEFAULT;
    p.prompt = prompt->valuestring;
    p.negative_prompt = cJSON_IsString(neg) ? neg->valuestring : NULL;
    p.width = width->valueint;
    p.height = height->valueint;
    p.steps = steps->valueint;
    p.guidance_scale = (float)scale->valuedouble;
    p.max_sequence_length = max_seq->valueint;
    const int lh = p.height / 8, lw = p.width / 8;
    const int64_t n_lat = 16LL * lh * lw, n_img = 3LL * p.width * p.height;
    const float *init = tensor_f32(ref, "latents_init", n_lat);
    const float *final = tensor_f32(ref, "latents_final", n_lat);
    og_tensor image;
    bool have_image = og_st_get(ref, "image_u8", &image) == OG_OK && image.dtype == OG_U8 &&
                      og_tensor_numel(&image) == n_img;
    CHECK(have_image, "%s: no U8 image_u8 of %lld bytes", name, (long long)n_img);
    if (!init || !final || !have_image) {
        og_st_close(ref);
        cJSON_Delete(meta);
        return;
    }
    p.initial_latents = init;
    og_parallel_config layouts[6] = {layout(1, 1, 1), layout(2, 1, 1), layout(1, 2, 1),
                                     layout(2, 2, 1), layout(1, 1, 2), layout(2, 1, 2)};
    const int n_layouts = cJSON_IsTrue(cfg) ? 6 : 4;
    og_image_result serial = {0};
    for (int l = 0; l < n_layouts; l++) {
        p.parallel = layouts[l];
        og_image_result img;
        og_status s = og_generate(ctx, &p, &img);
        CHECK(s == OG_OK, "%s U%d R%d C%d: %s", name, p.parallel.ulysses_degree,
              p.parallel.ring_degree, p.parallel.cfg_degree, og_error_message());
        if (s != OG_OK)
            continue;
        CHECK(img.width == p.width && img.height == p.height && img.latent_channels == 16 &&
                  img.latent_height == lh && img.latent_width == lw && img.frames == 1,
              "%s: result is %dx%d, latents %dx%dx%d", name, img.width, img.height,
              img.latent_channels, img.latent_height, img.latent_width);
        double e = rel_err_f32(img.latents, final, n_lat);
        int d = max_pixel_diff(img.rgb, image.data, n_img);
        double es = l == 0 ? 0.0 : rel_err_f32(img.latents, serial.latents, n_lat);
        printf("%-4s U%d R%d C%d  latents rel err %.2e (vs serial %.2e), max pixel diff %d/255\n",
               name, p.parallel.ulysses_degree, p.parallel.ring_degree, p.parallel.cfg_degree, e,
               es, d);
        CHECK(e < 1e-5, "%s: final latents differ from the reference by %.3e", name, e);
        CHECK(d <= 1, "%s: pixels differ from the reference by %d/255", name, d);
        CHECK(es < 1e-5, "%s: layout differs from the serial run by %.3e", name, es);
        if (l == 0)
            serial = img;
        else
            og_image_result_free(&img);
    }
    og_image_result_free(&serial);
    og_st_close(ref);
    cJSON_Delete(meta);
}

/* Bad requests: the status, a message naming the problem, a zeroed result and no file. */
static void test_refusals(og_ctx *ctx)
{
    char out[] = "/tmp/og_qwen_refused_XXXXXX";
    CHECK(mkdtemp(out) != NULL, "mkdtemp");
    char png[600];
    snprintf(png, sizeof png, "%s/x.png", out);
    og_gen_params base = OG_GEN_PARAMS_DEFAULT;
    base.prompt = "x";
    base.width = base.height = 32;
    base.steps = 1;
    base.output = png;
    og_gen_params p;
    og_image_result img;
#define REFUSE(edit, want, msg)                                                              \
    do {                                                                                     \
        p = base;                                                                            \
        edit;                                                                                \
        og_status s_ = og_generate(ctx, &p, &img);                                           \
        CHECK(s_ == (want), "%s: got %s (%s)", #edit, og_status_name(s_), og_error_message()); \
        CHECK(strstr(og_error_message(), msg), "%s: message '%s' lacks '%s'", #edit,         \
              og_error_message(), msg);                                                      \
        CHECK(!img.rgb && !img.latents && img.width == 0, "%s: result not zeroed", #edit);   \
        CHECK(access(png, F_OK) != 0, "%s: left %s behind", #edit, png);                     \
    } while (0)
    REFUSE(p.width = 40, OG_ERR_INVALID_ARG, "width 40 is not a multiple of 16");
    REFUSE(p.height = 0, OG_ERR_INVALID_ARG, "height must be positive");
    REFUSE(p.steps = 0, OG_ERR_INVALID_ARG, "steps must be at least 1");
    REFUSE(p.prompt = NULL, OG_ERR_INVALID_ARG, "no prompt");
    REFUSE(p.frames = 5, OG_ERR_INVALID_ARG, "this is an image model");
    REFUSE(p.guidance_scale = -1, OG_ERR_INVALID_ARG, "guidance_scale");
    REFUSE(p.max_sequence_length = 1025, OG_ERR_INVALID_ARG, "max_sequence_length");
    REFUSE(p.parallel.ulysses_degree = 3, OG_ERR_PARALLEL, "advanced_uaa");
    /* cfg 2 needs true CFG: a negative prompt and a scale above 1. */
    REFUSE((p.guidance_scale = 4, p.parallel.cfg_degree = 2), OG_ERR_PARALLEL,
           "no negative prompt");
    REFUSE((p.negative_prompt = "y", p.guidance_scale = 1, p.parallel.cfg_degree = 2),
           OG_ERR_PARALLEL, "cfg_degree 2");
    REFUSE(p.output = "/tmp/og-no-such-dir/x.png", OG_ERR_IO, "/tmp/og-no-such-dir");
#undef REFUSE
    rmdir(out);
}

/* Seeded noise: the same seed gives the same image on every layout; another seed does not. A
 * negative prompt with scale 1 (or none at scale 4) runs no CFG: equal to no negative prompt. */
static void test_seeds(og_ctx *ctx)
{
    og_gen_params p = OG_GEN_PARAMS_DEFAULT;
    p.prompt = "a fox";
    p.width = 48;
    p.height = 32;
    p.steps = 2;
    p.guidance_scale = 4;
    og_image_result a, b, c, d;
    CHECK_OK(og_generate(ctx, &p, &a));
    p.parallel = layout(2, 2, 1);
    CHECK_OK(og_generate(ctx, &p, &b));
    p.parallel = layout(1, 1, 1);
    p.seed++;
    CHECK_OK(og_generate(ctx, &p, &c));
    p.seed--;
    p.negative_prompt = "blurry";
    p.guidance_scale = 1;
    CHECK_OK(og_generate(ctx, &p, &d));
    if (a.latents && b.latents && c.latents && d.latents) {
        int64_t n = 16LL * a.latent_height * a.latent_width;
        CHECK(rel_err_f32(b.latents, a.latents, n) < 1e-5, "seeded 2x2 differs from serial");
        CHECK(rel_err_f32(c.latents, a.latents, n) > 1e-2, "another seed gave the same latents");
        CHECK(memcmp(d.latents, a.latents, sizeof(float) * n) == 0,
              "a negative prompt at scale 1 changed the result");
    }
    og_image_result_free(&a);
    og_image_result_free(&b);
    og_image_result_free(&c);
    og_image_result_free(&d);
}

/* QwenImagePipeline's schedule: sigmas = np.linspace(1, 1/N, N) (float64, then float32), then
 * set_timesteps(sigmas, mu = calculate_shift(image tokens)) with the bundled (released) config. */
static void test_schedules(void)
{
    og_flowmatch_config fc;
    og_st_file *ref = NULL;
    CHECK_OK(og_flowmatch_config_read(MODEL "/scheduler/scheduler_config.json", &fc));
    CHECK_OK(og_st_open(&ref, "tests/fixtures/qwenimage/pipeline/schedules.safetensors"));
    if (!ref)
        return;
    const struct { int n; int64_t tokens; } cases[] = {{50, 4096}, {28, 1024}, {7, 6}, {13, 16384}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int n = cases[c].n;
        char name[64];
        snprintf(name, sizeof name, "linspace_%d", n);
        const float *lin = tensor_f32(ref, name, n);
        snprintf(name, sizeof name, "sigmas_%d_%lld", n, (long long)cases[c].tokens);
        const float *sig_ref = tensor_f32(ref, name, n + 1);
        snprintf(name, sizeof name, "timesteps_%d_%lld", n, (long long)cases[c].tokens);
        const float *ts_ref = tensor_f32(ref, name, n);
        float sig[64], ts[64];
        og_flowmatch_linspace_f64(sig, 1.0, 1.0 / n, n);
        if (lin)
            CHECK(memcmp(sig, lin, sizeof(float) * n) == 0, "linspace %d differs from numpy's", n);
        const double mu = og_flowmatch_calculate_shift(&fc, cases[c].tokens);
        CHECK_OK(og_flowmatch_set_timesteps(&fc, n, sig, &mu, sig, ts));
        if (sig_ref && ts_ref) {
            CHECK(memcmp(sig, sig_ref, sizeof(float) * (n + 1)) == 0,
                  "%d steps, %lld tokens: sigmas differ from the reference", n,
                  (long long)cases[c].tokens);
            CHECK(memcmp(ts, ts_ref, sizeof(float) * n) == 0,
                  "%d steps, %lld tokens: timesteps differ from the reference", n,
                  (long long)cases[c].tokens);
        }
    }
    og_st_close(ref);
}

static void test_folder(void)
{
    og_ctx *ctx = NULL;
    CHECK_OK(og_load_dir(&ctx, MODEL, NULL));
    if (!ctx)
        return;
    CHECK(og_size_multiple(ctx) == 16, "size multiple %d, expected 16", og_size_multiple(ctx));
    CHECK(og_model_heads(ctx) == 4, "heads %d, expected 4", og_model_heads(ctx));
    CHECK(!og_model_is_video(ctx), "Qwen-Image reported as a video model");
    og_gen_params d = OG_GEN_PARAMS_DEFAULT;
    og_model_defaults(ctx, &d);
    CHECK(d.width == 1024 && d.height == 1024 && d.steps == 50 && d.guidance_scale == 4.0f,
          "defaults %dx%d, %d steps, scale %g", d.width, d.height, d.steps, d.guidance_scale);
    og_free(ctx);
    og_load_params lp = OG_LOAD_PARAMS_DEFAULT;
    lp.precision = OG_PRECISION_BF16;
    ctx = NULL;
    og_status s = og_load_dir(&ctx, MODEL, &lp);
    CHECK(s == OG_ERR_UNSUPPORTED && strstr(og_error_message(), "fp32") && !ctx,
          "bf16: got %s (%s)", og_status_name(s), og_error_message());
}

int main(void)
{
    if (access(MODEL "/model_index.json", F_OK) != 0) {
        printf("SKIPPED: " MODEL " is missing\n");
        return OG_TEST_SKIP;
    }
    test_schedules();
    test_folder();
    og_ctx *ctx = NULL;
    CHECK_OK(og_load_dir(&ctx, MODEL, NULL));
    if (ctx) {
        run_case(ctx, "base");
        run_case(ctx, "cfg");
        test_refusals(ctx);
        test_seeds(ctx);
    }
    og_free(ctx);
    return og_test_finish("test_pipeline_qwenimage");
}
