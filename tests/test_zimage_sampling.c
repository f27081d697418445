/* The Z-Image denoising loop against the diffusers pipeline: sigmas and timesteps from the
 * model's scheduler_config.json and the pipeline's linspace(1, 1/N, N) (exact), then from the
 * fixture's latents_init and prompt embeddings: model time (1000 - t)/1000, transformer forward,
 * CFG pos + w (pos - neg) when guidance > 0, negation, Euler step. Latents after every step and
 * the final latents within 1e-4 relative, for every variant (including CFG). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/zimage.h"
#include "samplers/cfg.h"
#include "samplers/flowmatch.h"
#include "test_zimage_fixture.h"
#include "testutil.h"

static void check_variant(const char *variant)
{
    int failures_before = og_test_failures;
    zfix f;
    CHECK_OK(zfix_open(&f, variant));
    if (og_test_failures > failures_before)
        return;
    int64_t steps, height, width;
    double guidance = 0.0, truncation = 1.0;
    CHECK_OK(zfix_int(&f, "steps", &steps));
    CHECK_OK(zfix_int(&f, "height", &height));
    CHECK_OK(zfix_int(&f, "width", &width));
    CHECK_OK(og_config_float_or(f.meta, "guidance_scale", 0.0, &guidance));
    CHECK_OK(og_config_float_or(f.meta, "cfg_truncation", 1.0, &truncation));
    og_flowmatch_config fc;
    CHECK_OK(og_flowmatch_config_read(f.scheduler_config, &fc));
    og_zimage *m = NULL;
    CHECK_OK(og_zimage_load(&m, f.transformer_dir));
    const float *init = NULL, *pe = NULL, *ne = NULL, *want_s = NULL, *want_t = NULL;
    int64_t n = 0, nsig = 0;
    og_tensor pes, nes = {0};
    CHECK_OK(zfix_f32(&f, "latents_init", &init, &n, NULL));
    CHECK_OK(zfix_f32(&f, "prompt_embeds", &pe, NULL, &pes));
    CHECK_OK(zfix_f32(&f, "sigmas", &want_s, &nsig, NULL));
    CHECK_OK(zfix_f32(&f, "timesteps", &want_t, NULL, NULL));
    const bool cfg = guidance > 0.0;
    if (cfg)
        CHECK_OK(zfix_f32(&f, "neg_prompt_embeds", &ne, NULL, &nes));
    if (og_test_failures > failures_before)
        goto done;

    /* The pipeline's schedule: latents are 2*(H//16) x 2*(W//16), image_seq_len = (h/2)(w/2). */
    const int N = (int)steps;
    const int64_t h = 2 * (height / 16), w = 2 * (width / 16);
    CHECK(n == 16 * h * w && nsig == N + 1, "%s: latent/sigma sizes", variant);
    float *in = malloc(sizeof(float) * N), *sig = malloc(sizeof(float) * (N + 1));
    float *ts = malloc(sizeof(float) * N);
    og_flowmatch_linspace(in, 1.0f, 1.0f / (float)N, N);
    double mu = og_flowmatch_calculate_shift(&fc, (h / 2) * (w / 2));
    CHECK_OK(og_flowmatch_set_timesteps(&fc, N, in, &mu, sig, ts));
    for (int i = 0; i <= N; i++)
        CHECK(fabsf(sig[i] - want_s[i]) <= 1e-6f, "%s sigma[%d] %.9g vs %.9g", variant, i, sig[i],
              want_s[i]);
    for (int i = 0; i < N; i++)
        CHECK(fabsf(ts[i] - want_t[i]) <= 1e-6f * 1000, "%s timestep[%d] %.9g vs %.9g", variant, i,
              ts[i], want_t[i]);

    float *x = malloc(sizeof(float) * n), *pos = malloc(sizeof(float) * n);
    float *neg = malloc(sizeof(float) * n);
    memcpy(x, init, sizeof(float) * n);
    int64_t cap_max = pes.shape[0] > nes.shape[0] ? pes.shape[0] : nes.shape[0];
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_zimage_scratch_bytes(m, h, w, cap_max, NULL)));
    for (int i = 0; i < N && og_test_failures == failures_before; i++) {
        float t_model = og_zimage_model_time(ts[i]);
        CHECK_OK(og_zimage_forward(m, NULL, x, h, w, t_model, pe, pes.shape[0], pos, &a));
        if (og_cfg_active((float)guidance, ts[i], (float)truncation)) {
            CHECK_OK(og_zimage_forward(m, NULL, x, h, w, t_model, ne, nes.shape[0], neg, &a));
            og_cfg_combine(pos, pos, neg, n, (float)guidance, 0.0f);
        }
        og_flowmatch_step(sig, i, x, pos, n, true);
        char name[32];
        const float *want = NULL;
        snprintf(name, sizeof name, "latents_step%d", i + 1);
        CHECK_OK(zfix_f32(&f, name, &want, NULL, NULL));
        if (!want)
            break;
        double err = og_test_rel_err_f(x, want, (size_t)n);
        printf("  %s step %d/%d (t=%g%s): rel err %.3g\n", variant, i + 1, N, ts[i],
               cfg ? ", cfg" : "", err);
        CHECK(err < 1e-4, "%s after step %d: rel err %g", variant, i + 1, err);
    }
    const float *final = NULL;
    CHECK_OK(zfix_f32(&f, "latents_final", &final, NULL, NULL));
    if (final) {
        double err = og_test_rel_err_f(x, final, (size_t)n);
        CHECK(err < 1e-4, "%s final latents: rel err %g", variant, err);
    }
    og_arena_free(&a);
    free(x);
    free(pos);
    free(neg);
    free(in);
    free(sig);
    free(ts);
done:
    og_zimage_free(m);
    zfix_close(&f);
}

int main(void)
{
    og_set_threads(2);
    check_variant("base");
    check_variant("odd");
    check_variant("cfg");
    check_variant("h30");
    return og_test_finish("test_zimage_sampling");
}
