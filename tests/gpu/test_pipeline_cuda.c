/* The whole pipeline with --backend cuda (text encoder, DiT and VAE on GPU 0 in bf16, the captions
 * within about 1e-2 of the CPU's, the VAE within 2e-2) against the same request on the CPU (fp32,
 * itself checked against diffusers by test_pipeline_zimage), from the fixtures' injected initial
 * noise: the final latents within 5e-2 relative (max-norm), the 8-bit pixels within a mean |diff|
 * of 2 and a max of 24 levels. Run serial and under a layout with 2 ranks sharing GPU 0
 * (Ulysses 2, and CFG 2 with guidance). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "core/cuda/cuda_backend.h"
#include "io/json_file.h"
#include "pipeline/omnigen.h"
#include "testutil.h"
#include "test_zimage_fixture.h"

#define LATENT_TOL 5e-2
#define PIXEL_MEAN_TOL 2.0
#define PIXEL_MAX_TOL 24

static double max_rel(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        num = d > num || d != d ? d : num;
        den = fabs(b[i]) > den ? fabs(b[i]) : den;
    }
    return den > 0 ? num / den : num;
}

static void run_variant(const char *variant, og_parallel_config layout)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    int64_t width = 0, height = 0, steps = 0, max_seq = 0;
    double guidance = 0;
    const char *prompt = NULL, *neg = NULL;
    CHECK_OK(zfix_int(&f, "width", &width));
    CHECK_OK(zfix_int(&f, "height", &height));
    CHECK_OK(zfix_int(&f, "steps", &steps));
    CHECK_OK(zfix_int(&f, "max_sequence_length", &max_seq));
    CHECK_OK(og_config_float_or(f.meta, "guidance_scale", 0.0, &guidance));
    CHECK_OK(og_config_string(f.meta, "prompt", &prompt));
    if (og_config_has(f.meta, "negative_prompt"))
        (void)og_config_string(f.meta, "negative_prompt", &neg); /* null when there is none */
    const float *init = NULL;
    int64_t n_lat = 0;
    CHECK_OK(zfix_f32(&f, "latents_init", &init, &n_lat, NULL));
    char model[600];
    snprintf(model, sizeof model, "%s/model", f.dir);
    og_ctx *cpu = NULL, *gpu = NULL;
    og_load_params lp_cpu = OG_LOAD_PARAMS_DEFAULT, lp_gpu = {.backend = OG_BACKEND_CUDA,
                                                              .devices = "0"};
    CHECK_OK(og_load_dir(&cpu, model, &lp_cpu));
    CHECK_OK(og_load_dir(&gpu, model, &lp_gpu));
    if (og_test_failures > failures_before)
        goto done;
    og_gen_params p = OG_GEN_PARAMS_DEFAULT;
    p.prompt = prompt;
    p.negative_prompt = neg;
    p.width = (int)width;
    p.height = (int)height;
    p.steps = (int)steps;
    p.guidance_scale = (float)guidance;
    p.max_sequence_length = (int)max_seq;
    p.initial_latents = init;
    og_parallel_config layouts[2] = {OG_PARALLEL_CONFIG_DEFAULT, layout};
    for (int l = 0; l < 2; l++) {
        p.parallel = layouts[l];
        og_image_result a = {0}, b = {0};
        CHECK_OK(og_generate(cpu, &p, &a));
        og_status s = og_generate(gpu, &p, &b);
        CHECK(s == OG_OK, "%s U%d R%d C%d on the GPU: %s", variant, p.parallel.ulysses_degree,
              p.parallel.ring_degree, p.parallel.cfg_degree, og_error_message());
        if (s == OG_OK && a.rgb) {
            double e = max_rel(b.latents, a.latents, n_lat);
            int64_t n_px = 3LL * p.width * p.height;
            double sum = 0;
            int worst = 0;
            for (int64_t i = 0; i < n_px; i++) {
                int d = abs((int)a.rgb[i] - (int)b.rgb[i]);
                sum += d;
                worst = d > worst ? d : worst;
            }
            printf("  %s U%d R%d C%d: latents rel err %.3g, pixels mean |diff| %.3g, max %d\n",
                   variant, p.parallel.ulysses_degree, p.parallel.ring_degree,
                   p.parallel.cfg_degree, e, sum / n_px, worst);
            CHECK(e < LATENT_TOL, "%s: GPU latents rel err %g", variant, e);
            CHECK(sum / n_px <= PIXEL_MEAN_TOL && worst <= PIXEL_MAX_TOL,
                  "%s: GPU pixels differ by %g on average, %d at most", variant, sum / n_px,
                  worst);
        }
        og_image_result_free(&a);
        og_image_result_free(&b);
    }
done:
    og_free(cpu);
    og_free(gpu);
    zfix_close(&f);
}

int main(void)
{
    if (og_cuda_device_count() == 0) {
        printf("test_pipeline_cuda: SKIPPED: no CUDA device\n");
        return OG_TEST_SKIP;
    }
    og_parallel_config u2 = OG_PARALLEL_CONFIG_DEFAULT, cfg2 = OG_PARALLEL_CONFIG_DEFAULT;
    u2.ulysses_degree = 2;
    cfg2.cfg_degree = 2;
    run_variant("base", u2);
    run_variant("cfg", cfg2);
    return og_test_finish("test_pipeline_cuda");
}
