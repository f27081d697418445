/* FlowMatch Euler against diffusers: the schedules in tests/fixtures/flowmatch/schedules.json
 * (tools/make_flowmatch_fixtures.py: static shift, dynamic exponential and linear shift with mu,
 * shift_terminal, custom sigmas, invert_sigmas, the Z-Image pipeline's sigmas) to 1e-6 and in
 * practice bit for bit; torch.linspace(1, 1/N, N) exactly; calculate_shift; each config read back
 * from a scheduler_config.json. The Euler step and the CFG combine against plain double
 * references, the CFG truncation rule, and refusals of unsupported configs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json_file.h"
#include "samplers/cfg.h"
#include "samplers/flowmatch.h"
#include "json_testutil.h"
#include "testutil.h"

#define FIXTURE "tests/fixtures/flowmatch/schedules.json"

/* Writes a JSON object to a temporary scheduler_config.json and reads it back. */
static og_status read_config_json(const cJSON *obj, og_flowmatch_config *out)
{
    char path[] = "/tmp/og_flowmatch_XXXXXX";
    if (!og_test_json_temp(obj, path))
        return og_fail(OG_ERR_IO, "cannot write a temporary config");
    og_status st = og_flowmatch_config_read(path, out);
    unlink(path);
    return st;
}

static void check_schedules(const cJSON *root)
{
    const cJSON *c;
    int cases = 0, exact = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "schedules"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        og_flowmatch_config fc;
        CHECK_OK(read_config_json(cJSON_GetObjectItem(c, "config"), &fc));
        int n = cJSON_GetObjectItem(c, "num_inference_steps")->valueint;
        float custom[1024], want_s[1025], want_t[1024], sig[1025], ts[1024];
        const cJSON *cs = cJSON_GetObjectItem(c, "custom_sigmas"), *mu = cJSON_GetObjectItem(c, "mu");
        CHECK(n <= 1024 && og_test_json_floats(cJSON_GetObjectItem(c, "sigmas"), want_s, 1025) == n + 1 &&
                  og_test_json_floats(cJSON_GetObjectItem(c, "timesteps"), want_t, 1024) == n,
              "%s: fixture sizes", name);
        if (!cJSON_IsNull(cs))
            CHECK(og_test_json_floats(cs, custom, 1024) == n, "%s: custom sigmas", name);
        double muv = cJSON_IsNull(mu) ? 0.0 : mu->valuedouble;
        CHECK_OK(og_flowmatch_set_timesteps(&fc, n, cJSON_IsNull(cs) ? NULL : custom,
                                            cJSON_IsNull(mu) ? NULL : &muv, sig, ts));
        double worst = 0;
        int same = 1;
        for (int i = 0; i <= n; i++) {
            worst = fmax(worst, fabs((double)sig[i] - want_s[i]));
            same &= sig[i] == want_s[i];
            if (i < n) {
                worst = fmax(worst, fabs((double)ts[i] - want_t[i]) / 1000.0);
                same &= ts[i] == want_t[i];
            }
        }
        if (!cJSON_IsNull(cs)) { /* in place, as the pipeline calls it */
            float inplace[1025], ts2[1024];
            memcpy(inplace, custom, sizeof(float) * (size_t)n);
            CHECK_OK(og_flowmatch_set_timesteps(&fc, n, inplace, cJSON_IsNull(mu) ? NULL : &muv,
                                                inplace, ts2));
            CHECK(memcmp(inplace, sig, sizeof(float) * (size_t)(n + 1)) == 0 &&
                      memcmp(ts2, ts, sizeof(float) * (size_t)n) == 0,
                  "%s: custom sigmas given in the output array", name);
        }
        printf("  %-42s %3d steps: max err %.3g%s\n", name, n, worst, same ? " (bit-exact)" : "");
        CHECK(worst <= 1e-6, "%s: sigma/timestep error %g", name, worst);
        cases++;
        exact += same;
    }
    printf("  %d of %d schedules bit-exact\n", exact, cases);
    CHECK(cases >= 10, "only %d schedule cases", cases);
}

static void check_linspace_and_shift(const cJSON *root)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "linspace"))
    {
        int n = cJSON_GetObjectItem(c, "n")->valueint;
        float want[1024], got[1024];
        CHECK(og_test_json_floats(cJSON_GetObjectItem(c, "values"), want, 1024) == n, "linspace size");
        og_flowmatch_linspace(got, 1.0f, 1.0f / (float)n, n);
        for (int i = 0; i < n; i++)
            CHECK(got[i] == want[i], "linspace(1, 1/%d, %d)[%d] = %.9g, torch %.9g", n, n, i,
                  got[i], want[i]);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "calculate_shift"))
    {
        og_flowmatch_config fc;
        CHECK_OK(read_config_json(cJSON_GetObjectItem(c, "config"), &fc));
        double mu = og_flowmatch_calculate_shift(
            &fc, (int64_t)cJSON_GetObjectItem(c, "image_seq_len")->valuedouble);
        double want = cJSON_GetObjectItem(c, "mu")->valuedouble;
        CHECK(fabs(mu - want) <= 1e-15 * fabs(want), "calculate_shift %.17g vs %.17g", mu, want);
    }
}

static void check_step_and_cfg(void)
{
    og_test_rng rng = {0x1234567};
    enum { N = 1000 };
    float x[N], v[N], neg[N], out[N];
    double ref[N];
    og_test_fill(&rng, x, N, 2.0f);
    og_test_fill(&rng, v, N, 3.0f);
    og_test_fill(&rng, neg, N, 3.0f);
    const float sigmas[3] = {1.0f, 0.6f, 0.0f};
    float y[N];
    for (int i = 0; i < N; i++)
        y[i] = x[i];
    og_flowmatch_step(sigmas, 0, y, v, N, true);
    float dt = 0.6f - 1.0f;
    for (int i = 0; i < N; i++) {
        /* PyTorch's fp32: the product rounded to float, then the sum (volatile: not fused). */
        volatile float p = dt * -v[i];
        volatile float want = x[i] + p;
        CHECK(y[i] == want, "step[%d] %.9g vs %.9g", i, y[i], want);
    }
    og_flowmatch_step(sigmas, 1, y, v, N, false);
    for (int i = 0; i < N; i++)
        ref[i] = (double)x[i] + 0.4 * v[i] - 0.6 * v[i];
    CHECK(og_test_rel_err(y, ref, N) < 1e-6, "two steps");

    og_cfg_combine(out, v, neg, N, 4.0f, 0.0f);
    for (int i = 0; i < N; i++)
        ref[i] = (double)v[i] + 4.0 * ((double)v[i] - neg[i]);
    CHECK(og_test_rel_err(out, ref, N) < 1e-6, "cfg combine");
    /* Renormalisation with factor 1: out keeps its direction and takes |pos| as its norm (here
     * |pos + 4 (pos - neg)| > |pos|). */
    og_cfg_combine(out, v, neg, N, 4.0f, 1.0f);
    double pn = 0, on = 0;
    for (int i = 0; i < N; i++)
        pn += (double)v[i] * v[i], on += (double)out[i] * out[i];
    CHECK(fabs(sqrt(on) - sqrt(pn)) < 1e-5 * sqrt(pn), "renormalised norm %g vs %g", sqrt(on),
          sqrt(pn));
    double refn = 0;
    for (int i = 0; i < N; i++)
        refn += ref[i] * ref[i];
    for (int i = 0; i < N; i++)
        ref[i] *= sqrt(pn / refn);
    CHECK(og_test_rel_err(out, ref, N) < 1e-5, "renormalised direction");
    /* Aliasing: out may be pos. */
    float p2[N];
    for (int i = 0; i < N; i++)
        p2[i] = v[i];
    og_cfg_combine(p2, p2, neg, N, 4.0f, 0.0f);
    og_cfg_combine(out, v, neg, N, 4.0f, 0.0f);
    CHECK(memcmp(p2, out, sizeof out) == 0, "aliased combine");

    CHECK(!og_cfg_active(0.0f, 1000.0f, 1.0f), "guidance 0");
    CHECK(og_cfg_active(4.0f, 1000.0f, 1.0f) && og_cfg_active(4.0f, 0.5f, 1.0f), "no truncation");
    CHECK(og_cfg_active(4.0f, 700.0f, 0.5f) && !og_cfg_active(4.0f, 300.0f, 0.5f),
          "truncation 0.5: CFG while (1000 - t)/1000 <= 0.5");
    CHECK(og_cfg_active(4.0f, 0.0f, 1.5f), "truncation > 1 disables the check");
}

static void check_refusals(void)
{
    og_flowmatch_config fc = OG_FLOWMATCH_CONFIG_DEFAULT;
    float s[3], t[2];
    fc.use_dynamic_shifting = true;
    CHECK(og_flowmatch_set_timesteps(&fc, 2, NULL, NULL, s, t) == OG_ERR_INVALID_ARG,
          "dynamic shift without mu");
    CHECK(og_flowmatch_set_timesteps(&fc, 0, NULL, NULL, s, t) == OG_ERR_INVALID_ARG, "0 steps");
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddBoolToObject(obj, "use_karras_sigmas", 1);
    CHECK(read_config_json(obj, &fc) == OG_ERR_UNSUPPORTED, "karras sigmas refused");
    cJSON_Delete(obj);
    obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "time_shift_type", "cubic");
    CHECK(read_config_json(obj, &fc) == OG_ERR_FORMAT, "unknown time_shift_type");
    cJSON_Delete(obj);
    obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "_class_name", "UniPCMultistepScheduler");
    CHECK(read_config_json(obj, &fc) == OG_ERR_FORMAT, "other scheduler class");
    cJSON_Delete(obj);
    CHECK_OK(og_flowmatch_config_read("models/zimage-tiny/scheduler/scheduler_config.json", &fc));
    CHECK(fc.shift == 3.0 && !fc.use_dynamic_shifting && fc.shift_terminal == 0.0 &&
              fc.num_train_timesteps == 1000,
          "bundled scheduler config");
}

int main(void)
{
    cJSON *root = NULL;
    CHECK_OK(og_json_load(FIXTURE, &root));
    if (root) {
        check_schedules(root);
        check_linspace_and_shift(root);
        cJSON_Delete(root);
    }
    check_step_and_cfg();
    check_refusals();
    return og_test_finish("test_flowmatch");
}
