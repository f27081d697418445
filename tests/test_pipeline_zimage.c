/* The public C API end to end against the reference pipeline (diffusers ZImagePipeline, fp32),
 * on the fixture variants: the reference's initial noise is injected (og_gen_params.
 * initial_latents), then the final latents and the decoded image must match latents_final and
 * image. Each variant also runs under a parallel layout, which must match the reference just
 * as well. Then the API's refusals: bad requests fail before any work, with the right status. */
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
#include "test_pipeline_util.h"
#include "testutil.h"

typedef struct {
    const char *variant;
    og_parallel_config layout; /* a non-trivial layout to run besides 1x1 */
} variant_case;

static void run_variant(const variant_case *vc)
{
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/meta.json", vc->variant);
    cJSON *meta = NULL;
    CHECK_OK(og_json_load(path, &meta));
    if (!meta)
        return;
    const cJSON *model = field(meta, "model", cJSON_IsString);
    const cJSON *prompt = field(meta, "prompt", cJSON_IsString);
    const cJSON *width = field(meta, "width", cJSON_IsNumber);
    const cJSON *height = field(meta, "height", cJSON_IsNumber);
    const cJSON *steps = field(meta, "steps", cJSON_IsNumber);
    const cJSON *guidance = field(meta, "guidance_scale", cJSON_IsNumber);
    const cJSON *max_seq = field(meta, "max_sequence_length", cJSON_IsNumber);
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(meta, "negative_prompt");
    if (!model || !prompt || !width || !height || !steps || !guidance || !max_seq) {
        cJSON_Delete(meta);
        return;
    }
    og_gen_params p = OG_GEN_PARAMS_DEFAULT;
    p.prompt = prompt->valuestring;
    p.negative_prompt = cJSON_IsString(neg) ? neg->valuestring : NULL;
    p.width = width->valueint;
    p.height = height->valueint;
    p.steps = steps->valueint;
    p.guidance_scale = (float)guidance->valuedouble;
    p.max_sequence_length = max_seq->valueint;

    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/reference.safetensors", vc->variant);
    og_st_file *ref;
    og_ctx *ctx = NULL;
    CHECK_OK(og_st_open(&ref, path));
    CHECK_OK(og_load_dir(&ctx, model->valuestring, NULL));
    if (!ctx) {
        cJSON_Delete(meta);
        return;
    }
    int lh = p.height / 8, lw = p.width / 8;
    int64_t n_lat = 16LL * lh * lw, n_img = 3LL * p.width * p.height;
    const float *init = tensor_f32(ref, "latents_init", n_lat);
    const float *final = tensor_f32(ref, "latents_final", n_lat);
    og_tensor image;
    bool have_image = og_st_get(ref, "image_u8", &image) == OG_OK && image.dtype == OG_U8 &&
                      og_tensor_numel(&image) == n_img;
    CHECK(have_image, "%s: no U8 image_u8 of %lld bytes", vc->variant, (long long)n_img);
    if (init && final && have_image) {
        p.initial_latents = init;
        og_parallel_config layouts[2] = {OG_PARALLEL_CONFIG_DEFAULT, vc->layout};
        for (int l = 0; l < 2; l++) {
            p.parallel = layouts[l];
            og_image_result img;
            og_status s = og_generate(ctx, &p, &img);
            CHECK(s == OG_OK, "%s U%d R%d C%d: %s", vc->variant, p.parallel.ulysses_degree,
                  p.parallel.ring_degree, p.parallel.cfg_degree, og_error_message());
            if (s != OG_OK)
                continue;
            CHECK(img.width == p.width && img.height == p.height && img.latent_channels == 16 &&
                      img.latent_height == lh && img.latent_width == lw,
                  "%s: result is %dx%d, latents %dx%dx%d", vc->variant, img.width, img.height,
                  img.latent_channels, img.latent_height, img.latent_width);
            double e = rel_err_f32(img.latents, final, n_lat);
            int d = max_pixel_diff(img.rgb, image.data, n_img);
            printf("%-5s U%d R%d C%d %-12s latents rel err %.2e, max pixel diff %d/255\n",
                   vc->variant, p.parallel.ulysses_degree, p.parallel.ring_degree,
                   p.parallel.cfg_degree, og_ulysses_mode_name(p.parallel.ulysses_mode), e, d);
            CHECK(e < 1e-5, "%s: final latents differ from the reference by %.3e", vc->variant,
                  e);
            CHECK(d <= 1, "%s: pixels differ from the reference by %d/255", vc->variant, d);
            og_image_result_free(&img);
        }
    }
    og_free(ctx);
    og_st_close(ref);
    cJSON_Delete(meta);
}

/* Bad requests: the status, a message naming the problem, a zeroed result and no file. */
static void test_refusals(void)
{
    og_ctx *ctx = NULL;
    CHECK(og_load_dir(&ctx, "tests/fixtures/zimage/no-such-model", NULL) == OG_ERR_NOT_FOUND,
          "missing folder: %s", og_error_message());
    CHECK(!ctx, "a failed load returned a context");
    CHECK_OK(og_load_dir(&ctx, "models/zimage-tiny", NULL));
    if (!ctx)
        return;
    CHECK(og_size_multiple(ctx) == 16, "size multiple %d, expected 16", og_size_multiple(ctx));
    CHECK(og_model_heads(ctx) == 6, "heads %d, expected 6", og_model_heads(ctx));

    char out[] = "/tmp/og_refused_XXXXXX";
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
    REFUSE(p.width = 72, OG_ERR_INVALID_ARG, "width 72 is not a multiple of 16");
    REFUSE(p.height = 0, OG_ERR_INVALID_ARG, "height must be positive");
    REFUSE(p.steps = 0, OG_ERR_INVALID_ARG, "steps must be at least 1");
    REFUSE(p.prompt = NULL, OG_ERR_INVALID_ARG, "no prompt");
    REFUSE(p.guidance_scale = -1, OG_ERR_INVALID_ARG, "guidance_scale");
    REFUSE(p.parallel.ulysses_degree = 4, OG_ERR_PARALLEL, "advanced_uaa");
    REFUSE(p.parallel.cfg_degree = 2, OG_ERR_PARALLEL, "cfg_degree 2");
    REFUSE(p.output = "/tmp/og-no-such-dir/x.png", OG_ERR_IO, "/tmp/og-no-such-dir");
#undef REFUSE

    /* The same request twice gives the same bytes; another seed does not. */
    p = base;
    p.output = NULL;
    og_image_result a, b;
    CHECK_OK(og_generate(ctx, &p, &a));
    CHECK_OK(og_generate(ctx, &p, &b));
    p.seed = base.seed + 1;
    og_image_result c;
    CHECK_OK(og_generate(ctx, &p, &c));
    if (a.rgb && b.rgb && c.rgb) {
        size_t bytes = 3 * (size_t)a.width * a.height;
        CHECK(memcmp(a.rgb, b.rgb, bytes) == 0, "the same seed gave different images");
        CHECK(memcmp(a.rgb, c.rgb, bytes) != 0, "another seed gave the same image");
    }
    og_image_result_free(&a);
    og_image_result_free(&b);
    og_image_result_free(&c);
    rmdir(out);
    og_free(ctx);
}

int main(void)
{
    if (access("models/zimage-tiny/model_index.json", F_OK) != 0) {
        printf("SKIPPED: models/zimage-tiny is missing\n");
        return OG_TEST_SKIP;
    }
    og_parallel_config uaa = OG_PARALLEL_CONFIG_DEFAULT;
    uaa.ulysses_degree = 4;
    uaa.ulysses_mode = OG_ULYSSES_ADVANCED_UAA;
    og_parallel_config usp = OG_PARALLEL_CONFIG_DEFAULT;
    usp.ulysses_degree = 2;
    usp.ring_degree = 2;
    og_parallel_config cfg2 = OG_PARALLEL_CONFIG_DEFAULT;
    cfg2.cfg_degree = 2;
    og_parallel_config h30 = uaa;
    h30.ring_degree = 2;
    variant_case cases[] = {
        {"base", usp}, {"odd", uaa}, {"cfg", cfg2}, {"h30", h30},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_variant(&cases[i]);
    test_refusals();
    return og_test_finish("test_pipeline_zimage");
}
