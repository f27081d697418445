/* Wan2.1 text-to-video through the public C API against diffusers' WanPipeline
 * (tools/make_wan_fixtures.py on models/wan-tiny, with UniPC, and with FlowMatch Euler): with the reference's initial latents injected,
 * the final latents must match (fp32, ~1e-5) and the frames must be within 1/255 of the
 * reference's "np" frames; the parallel layouts 2x1, 1x2, 2x2, cfg 2 and cfg 2 x ulysses 2
 * must equal the serial run; the MP4 written must read back (libavformat) with the frame count,
 * size and colours; bad requests are refused before any work, leaving no file. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dirutil.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/video.h"
#include "pipeline/omnigen.h"
#include "test_pipeline_util.h"
#include "testutil.h"
#include "video_testutil.h"

#define MODEL "models/wan-tiny"

/* The reference's frames [F, H, W, 3] in [0, 1] against ours (bytes): the largest difference
 * after rounding the reference to 8 bits, in 1/255. */
static int max_frame_diff(const uint8_t *ours, const float *ref, int64_t n)
{
    int worst = 0;
    for (int64_t i = 0; i < n; i++) {
        int want = (int)lrint(fmin(fmax(ref[i], 0.0), 1.0) * 255.0);
        int d = abs((int)ours[i] - want);
        if (d > worst)
            worst = d;
    }
    return worst;
}

typedef struct {
    og_gen_params p;
    int frames, T;
} wan_case;

static bool load_case(const cJSON *cases, const char *name, wan_case *c)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(cases, name);
    const char *keys[] = {"height", "width", "num_frames", "num_inference_steps", "guidance_scale"};
    for (int i = 0; i < 5; i++)
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, keys[i]))) {
            CHECK(false, "meta.json: case %s lacks %s", name, keys[i]);
            return false;
        }
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(o, "negative_prompt");
    CHECK(cJSON_IsString(prompt), "meta.json: case %s lacks a prompt", name);
    if (!cJSON_IsString(prompt))
        return false;
    c->p = OG_GEN_PARAMS_DEFAULT;
    c->p.prompt = prompt->valuestring;
    c->p.negative_prompt = cJSON_IsString(neg) ? neg->valuestring : NULL;
    c->p.height = cJSON_GetObjectItemCaseSensitive(o, "height")->valueint;
    c->p.width = cJSON_GetObjectItemCaseSensitive(o, "width")->valueint;
    c->p.frames = c->frames = cJSON_GetObjectItemCaseSensitive(o, "num_frames")->valueint;
    c->p.steps = cJSON_GetObjectItemCaseSensitive(o, "num_inference_steps")->valueint;
    c->p.guidance_scale =
        (float)cJSON_GetObjectItemCaseSensitive(o, "guidance_scale")->valuedouble;
    c->p.max_sequence_length = 512;
    c->T = (c->frames - 1) / 4 + 1;
    return true;
}

/* One case against the reference, serially, then under each layout (nlayouts of them) against
 * the serial run. */
static void run_case(og_ctx *ctx, og_st_file *ref, const cJSON *cases, const char *name,
                     const og_parallel_config *layouts, int nlayouts)
{
    wan_case c;
    if (!load_case(cases, name, &c))
        return;
    const int lh = c.p.height / 8, lw = c.p.width / 8;
    const int64_t n_lat = 16LL * c.T * lh * lw, n_px = 3LL * c.frames * c.p.height * c.p.width;
    char key[64];
    snprintf(key, sizeof key, "%s.init", name);
    const float *init = tensor_f32(ref, key, n_lat);
    snprintf(key, sizeof key, "%s.final", name);
    const float *final = tensor_f32(ref, key, n_lat);
    snprintf(key, sizeof key, "%s.frames", name);
    const float *frames = tensor_f32(ref, key, n_px);
    if (!init || !final || !frames)
        return;
    c.p.initial_latents = init;
    og_image_result serial;
    og_status s = og_generate(ctx, &c.p, &serial);
    CHECK(s == OG_OK, "%s: %s", name, og_error_message());
    if (s != OG_OK)
        return;
    CHECK(serial.frames == c.frames && serial.width == c.p.width &&
              serial.height == c.p.height && serial.latent_frames == c.T &&
              serial.latent_channels == 16 && serial.latent_height == lh &&
              serial.latent_width == lw,
          "%s: result %d frames %dx%d, latents %dx%dx%dx%d", name, serial.frames, serial.width,
          serial.height, serial.latent_channels, serial.latent_frames, serial.latent_height,
          serial.latent_width);
    double e = og_test_rel_err_f(serial.latents, final, (size_t)n_lat);
    int d = max_frame_diff(serial.rgb, frames, n_px);
    printf("%-5s serial   latents rel err %.2e vs diffusers, frames max diff %d/255\n", name, e,
           d);
    CHECK(e < 1e-5, "%s: final latents differ from diffusers by %.3e", name, e);
    CHECK(d <= 1, "%s: frames differ from diffusers by %d/255", name, d);
    for (int l = 0; l < nlayouts; l++) {
        og_gen_params p = c.p;
        p.parallel = layouts[l];
        og_image_result r;
        s = og_generate(ctx, &p, &r);
        CHECK(s == OG_OK, "%s U%d R%d C%d: %s", name, p.parallel.ulysses_degree,
              p.parallel.ring_degree, p.parallel.cfg_degree, og_error_message());
        if (s != OG_OK)
            continue;
        double es = og_test_rel_err_f(r.latents, serial.latents, (size_t)n_lat);
        int ds = 0;
        for (int64_t i = 0; i < n_px; i++)
            if (abs((int)r.rgb[i] - serial.rgb[i]) > ds)
                ds = abs((int)r.rgb[i] - serial.rgb[i]);
        printf("%-5s U%d R%d C%d latents rel err %.2e vs serial, frames max diff %d/255\n", name,
               p.parallel.ulysses_degree, p.parallel.ring_degree, p.parallel.cfg_degree, es, ds);
        CHECK(es < 1e-5, "%s U%d R%d C%d: latents differ from serial by %.3e", name,
              p.parallel.ulysses_degree, p.parallel.ring_degree, p.parallel.cfg_degree, es);
        CHECK(ds <= 1, "%s: frames differ from serial by %d/255", name, ds);
        og_image_result_free(&r);
    }
    og_image_result_free(&serial);
}


/* og_generate writing an MP4 (read back) and a 1-frame PNG; bad requests refused. */
static void test_outputs_and_refusals(og_ctx *ctx)
{
    char dir[] = "/tmp/og_test_wan_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char mp4[600], png[600];
    snprintf(mp4, sizeof mp4, "%s/clip.mp4", dir);
    snprintf(png, sizeof png, "%s/frame.png", dir);
    og_gen_params base = OG_GEN_PARAMS_DEFAULT;
    base.prompt = "a boat on a lake";
    base.width = 48;
    base.height = 32;
    base.frames = 5;
    base.steps = 2;
    base.guidance_scale = 5.0f;
    base.seed = 3;
    og_image_result img;
    og_gen_params p = base;
    p.output = mp4;
    og_status s = og_generate(ctx, &p, &img);
#ifdef OG_HAVE_FFMPEG
    CHECK(s == OG_OK, "mp4: %s", og_error_message());
    if (s == OG_OK) {
        int w = 0, h = 0;
        double worst = 0;
        int n = og_test_mp4_compare(mp4, img.rgb, img.frames, 48, 32, &w, &h, &worst);
        printf("mp4 (%s): %d frames %dx%d, worst per-frame mean abs error %.2f/255\n",
               og_video_encoder_name(), n, w, h, worst);
        CHECK(n == 5 && w == 48 && h == 32, "mp4 read back %d frames %dx%d", n, w, h);
        CHECK(worst < 12.0, "mp4 frames differ from the result by %.2f/255 on average", worst);
        CHECK(og_test_count_entries(dir) == 1, "%d entries beside the video",
              og_test_count_entries(dir));
        og_image_result_free(&img);
        unlink(mp4);
    }
#else
    CHECK(s == OG_ERR_UNSUPPORTED, "mp4 without FFmpeg: %s", og_status_name(s));
#endif
    /* The seeded noise: the same seed twice gives the same bytes. */
    p = base;
    p.frames = 1;
    p.output = png;
    og_image_result a, b;
    CHECK_OK(og_generate(ctx, &p, &a));
    CHECK(access(png, F_OK) == 0, "no PNG written for a 1-frame request");
    p.output = NULL;
    CHECK_OK(og_generate(ctx, &p, &b));
    CHECK(a.rgb && b.rgb && a.frames == 1 && memcmp(a.rgb, b.rgb, 3 * 48 * 32) == 0,
          "the same seed gave different frames");
    og_image_result_free(&a);
    og_image_result_free(&b);
    unlink(png);

#define REFUSE(edit, want, msg)                                                              \
    do {                                                                                     \
        p = base;                                                                            \
        p.output = mp4;                                                                      \
        edit;                                                                                \
        og_status s_ = og_generate(ctx, &p, &img);                                           \
        CHECK(s_ == (want), "%s: got %s (%s)", #edit, og_status_name(s_), og_error_message()); \
        CHECK(strstr(og_error_message(), msg), "%s: message '%s' lacks '%s'", #edit,         \
              og_error_message(), msg);                                                      \
        CHECK(!img.rgb && !img.latents && img.frames == 0, "%s: result not zeroed", #edit);  \
        CHECK(og_test_count_entries(dir) == 0, "%s: left a file behind", #edit);             \
    } while (0)
    REFUSE(p.frames = 4, OG_ERR_INVALID_ARG, "frames 4 is not 1 + 4k");
    REFUSE(p.frames = 8, OG_ERR_INVALID_ARG, "try 5 or 9");
    REFUSE(p.frames = -3, OG_ERR_INVALID_ARG, "frames must be at least 1");
    REFUSE(p.width = 40, OG_ERR_INVALID_ARG, "width 40 is not a multiple of 16");
    REFUSE(p.output = png, OG_ERR_INVALID_ARG, "a PNG holds one frame");
    REFUSE(p.output = "/tmp/x.gif", OG_ERR_INVALID_ARG, "writes .mp4 files");
    REFUSE((p.guidance_scale = 1.0f, p.parallel.cfg_degree = 2), OG_ERR_PARALLEL, "cfg_degree 2");
    REFUSE(p.parallel.ulysses_degree = 4, OG_ERR_PARALLEL, "");
    REFUSE(p.frames = 1 + 4 * 40, OG_ERR_INVALID_ARG, "");  /* 41 latent frames > RoPE table */
    REFUSE(p.prompt = NULL, OG_ERR_INVALID_ARG, "no prompt");
    REFUSE(p.steps = 0, OG_ERR_INVALID_ARG, "steps must be at least 1");
#undef REFUSE
    rmdir(dir);
}

int main(void)
{
    cJSON *meta = NULL;
    CHECK_OK(og_json_load("tests/fixtures/wan/pipeline/meta.json", &meta));
    og_st_file *ref = NULL;
    CHECK_OK(og_st_open(&ref, "tests/fixtures/wan/pipeline/reference.safetensors"));
    og_ctx *ctx = NULL;
    CHECK_OK(og_load_dir(&ctx, MODEL, NULL));
    if (!meta || !ref || !ctx)
        return og_test_finish("test_pipeline_wan");
    CHECK(og_model_is_video(ctx), "models/wan-tiny is not reported as a video model");
    CHECK(og_size_multiple(ctx) == 16, "size multiple %d", og_size_multiple(ctx));
    CHECK(og_model_heads(ctx) == 2, "heads %d", og_model_heads(ctx));
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(meta, "cases");
    og_parallel_config u2 = OG_PARALLEL_CONFIG_DEFAULT, r2 = u2, u2r2 = u2, c2 = u2, c2u2 = u2;
    u2.ulysses_degree = 2;
    r2.ring_degree = 2;
    u2r2.ulysses_degree = u2r2.ring_degree = 2;
    c2.cfg_degree = 2;
    c2u2.cfg_degree = c2u2.ulysses_degree = 2;
    const og_parallel_config cfg_layouts[] = {u2, r2, u2r2, c2, c2u2};
    run_case(ctx, ref, cases, "cfg", cfg_layouts, 5);
    run_case(ctx, ref, cases, "plain", &r2, 1);
    test_outputs_and_refusals(ctx);
    og_free(ctx);

    /* The same model with FlowMatchEulerDiscreteScheduler in its folder. */
    ctx = NULL;
    CHECK_OK(og_load_dir(&ctx, "tests/fixtures/wan/pipeline/euler", NULL));
    if (ctx)
        run_case(ctx, ref, cases, "euler", &u2r2, 1);
    og_free(ctx);
    ctx = NULL;

    /* A Wan folder on the CUDA backend or in bf16 is refused at load with a clear message. */
    og_load_params lp = OG_LOAD_PARAMS_DEFAULT;
    lp.precision = OG_PRECISION_BF16;
    og_status s = og_load_dir(&ctx, MODEL, &lp);
    CHECK(s == OG_ERR_UNSUPPORTED && !ctx && strstr(og_error_message(), "fp32"),
          "bf16 Wan: %s (%s)", og_status_name(s), og_error_message());
    og_st_close(ref);
    cJSON_Delete(meta);
    return og_test_finish("test_pipeline_wan");
}
