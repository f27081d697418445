/* UniPC multistep against diffusers (tests/fixtures/unipc/cases.json from
 * tools/make_unipc_fixtures.py): the sigma and timestep schedules of 29 configs and step counts
 * (Wan2.1 with flow_shift 3 and 5, N = 1..100 and 1000, sigma_min, dynamic shifting,
 * shift_terminal) bit for bit; 18 full sampling runs on a [1, 2, 3, 4] sample, fed the model
 * outputs diffusers saw, within 2e-7 relative after every step (measured: 3.4e-8; orders 1/2/3,
 * bh1/bh2, lower_order_final off, disabled correctors, with and without set_begin_index, the
 * repeated-timestep index rule); and the refusals of configs and calls omnigen does not serve or
 * that would produce NaN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json_file.h"
#include "samplers/unipc.h"
#include "json_testutil.h"
#include "testutil.h"

#define FIXTURE "tests/fixtures/unipc/cases.json"
#define NUMEL 24

/* Writes a JSON object to a temporary scheduler_config.json and reads it back. */
static og_status read_config_json(const cJSON *obj, og_unipc_config *out)
{
    char path[] = "/tmp/og_unipc_XXXXXX";
    if (!og_test_json_temp(obj, path))
        return og_fail(OG_ERR_IO, "cannot write a temporary config");
    og_status st = og_unipc_config_read(path, out);
    unlink(path);
    return st;
}

/* A config made of the Wan release's plus one key set from JSON text. */
static og_status read_wan_with(const cJSON *wan, const char *key, const char *json,
                               og_unipc_config *out)
{
    cJSON *obj = cJSON_Duplicate(wan, 1);
    cJSON_DeleteItemFromObject(obj, key);
    cJSON_AddItemToObject(obj, key, cJSON_Parse(json));
    og_status st = read_config_json(obj, out);
    cJSON_Delete(obj);
    return st;
}

/* Sets up a scheduler from a fixture case; false (and a failed check) if that fails. */
static bool setup(const cJSON *c, int64_t numel, og_unipc *s)
{
    og_unipc_config uc;
    const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
    const cJSON *mu = cJSON_GetObjectItem(c, "mu");
    double muv = cJSON_IsNull(mu) ? 0.0 : mu->valuedouble;
    og_status st = read_config_json(cJSON_GetObjectItem(c, "config"), &uc);
    if (st == OG_OK && (st = og_unipc_init(s, &uc, numel)) == OG_OK)
        st = og_unipc_set_timesteps(s, cJSON_GetObjectItem(c, "num_inference_steps")->valueint,
                                    cJSON_IsNull(mu) ? NULL : &muv);
    CHECK(st == OG_OK, "%s: %s", name, og_error_message());
    return st == OG_OK;
}

/* The schedule equals the fixture's; returns whether it is bit-exact. */
static bool same_schedule(const og_unipc *s, const cJSON *c, const char *name)
{
    const int n = s->num_inference_steps;
    float *want = malloc(sizeof(float) * (size_t)(n + 2));
    bool ok = og_test_json_floats(cJSON_GetObjectItem(c, "sigmas"), want, n + 2) == n + 1 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(c, "timesteps")) == n;
    CHECK(ok, "%s: fixture sizes", name);
    int bad_s = 0, bad_t = 0, i = 0;
    const cJSON *t;
    for (int j = 0; ok && j <= n; j++)
        bad_s += s->sigmas[j] != want[j];
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "timesteps"))
    {
        if (ok && s->timesteps[i] != (int64_t)t->valuedouble) {
            if (!bad_t)
                fprintf(stderr, "  %s: timestep %d = %lld, diffusers %.0f\n", name, i,
                        (long long)s->timesteps[i], t->valuedouble);
            bad_t++;
        }
        i++;
    }
    CHECK(ok && bad_s == 0 && bad_t == 0, "%s: %d sigmas and %d timesteps differ", name, bad_s,
          bad_t);
    free(want);
    return ok && bad_s == 0 && bad_t == 0;
}

static void check_schedules(const cJSON *root)
{
    const cJSON *c;
    int cases = 0, exact = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "schedules"))
    {
        og_unipc s;
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        if (!setup(c, 1, &s))
            continue;
        exact += same_schedule(&s, c, name);
        cases++;
        og_unipc_free(&s);
    }
    printf("  %d of %d schedules bit-exact (sigmas and timesteps)\n", exact, cases);
    CHECK(cases >= 25, "only %d schedule cases", cases);
}

static void check_trajectories(const cJSON *root)
{
    const cJSON *c;
    int cases = 0;
    double worst_all = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "trajectories"))
    {
        og_unipc s;
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        if (!setup(c, NUMEL, &s))
            continue;
        same_schedule(&s, c, name);
        if (cJSON_IsTrue(cJSON_GetObjectItem(c, "begin_index")))
            og_unipc_set_begin_index(&s, 0);
        const cJSON *outs = cJSON_GetObjectItem(c, "model_outputs"),
                    *samples = cJSON_GetObjectItem(c, "samples");
        const int n = s.num_inference_steps;
        CHECK(cJSON_GetArraySize(outs) == n && cJSON_GetArraySize(samples) == n + 1,
              "%s: fixture sizes", name);
        float x[NUMEL], v[NUMEL], want[NUMEL];
        double ref[NUMEL], worst = 0;
        int exact = 0;
        CHECK(og_test_json_floats(cJSON_GetArrayItem(samples, 0), x, NUMEL) == NUMEL, "%s: sample 0", name);
        for (int i = 0; i < n && i < cJSON_GetArraySize(outs); i++) {
            CHECK(og_test_json_floats(cJSON_GetArrayItem(outs, i), v, NUMEL) == NUMEL &&
                      og_test_json_floats(cJSON_GetArrayItem(samples, i + 1), want, NUMEL) == NUMEL,
                  "%s: step %d sizes", name, i);
            CHECK_OK(og_unipc_step(&s, v, s.timesteps[i], x));
            for (int j = 0; j < NUMEL; j++)
                ref[j] = want[j];
            double e = og_test_rel_err(x, ref, NUMEL);
            CHECK(e <= 2e-7, "%s: step %d relative error %.3g", name, i, e);
            worst = fmax(worst, e);
            exact += memcmp(x, want, sizeof x) == 0;
        }
        printf("  %-44s %2d steps: max rel err %.2g, %d steps bit-exact\n", name, n, worst,
               exact);
        worst_all = fmax(worst_all, worst);
        /* One step too many is refused. */
        CHECK(og_unipc_step(&s, v, 0, x) == OG_ERR_INVALID_ARG, "%s: step past the end", name);
        og_unipc_free(&s);
        cases++;
    }
    printf("  %d trajectories, worst relative error %.3g\n", cases, worst_all);
    CHECK(cases >= 15, "only %d trajectories", cases);
}

static void check_config_and_refusals(const cJSON *root)
{
    const cJSON *wan = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root,
                                                                                  "trajectories"),
                                                              0),
                                           "config");
    og_unipc_config uc;
    CHECK_OK(read_config_json(wan, &uc));
    og_unipc_config w = OG_UNIPC_CONFIG_WAN;
    CHECK(uc.num_train_timesteps == w.num_train_timesteps && uc.solver_order == 2 &&
              uc.solver_type == OG_UNIPC_BH2 && uc.lower_order_final &&
              uc.final_sigmas_type == OG_UNIPC_FINAL_ZERO && uc.flow_shift == 3.0 &&
              !uc.use_dynamic_shifting && uc.shift_terminal == 0.0 && uc.n_disable_corrector == 0,
          "the Wan2.1 scheduler_config.json reads as OG_UNIPC_CONFIG_WAN");
    CHECK_OK(read_wan_with(wan, "disable_corrector", "[0, 3, 7]", &uc));
    CHECK(uc.n_disable_corrector == 3 && uc.disable_corrector[2] == 7, "disable_corrector list");
    CHECK_OK(read_wan_with(wan, "solver_type", "\"midpoint\"", &uc));
    CHECK(uc.solver_type == OG_UNIPC_BH2, "midpoint maps to bh2 as in diffusers");

    static const struct {
        const char *key, *json;
        og_status want;
    } bad[] = {
        {"use_karras_sigmas", "true", OG_ERR_UNSUPPORTED},
        {"use_exponential_sigmas", "true", OG_ERR_UNSUPPORTED},
        {"use_beta_sigmas", "true", OG_ERR_UNSUPPORTED},
        {"thresholding", "true", OG_ERR_UNSUPPORTED},
        {"use_flow_sigmas", "false", OG_ERR_UNSUPPORTED},
        {"prediction_type", "\"epsilon\"", OG_ERR_UNSUPPORTED},
        {"predict_x0", "false", OG_ERR_FORMAT},
        {"solver_order", "4", OG_ERR_UNSUPPORTED},
        {"solver_order", "0", OG_ERR_FORMAT},
        {"solver_type", "\"bh3\"", OG_ERR_FORMAT},
        {"final_sigmas_type", "\"one\"", OG_ERR_FORMAT},
        {"timestep_spacing", "\"sideways\"", OG_ERR_FORMAT},
        {"time_shift_type", "\"cubic\"", OG_ERR_FORMAT},
        {"solver_p", "{}", OG_ERR_UNSUPPORTED},
        {"disable_corrector", "[\"x\"]", OG_ERR_FORMAT},
        {"flow_shift", "\"3\"", OG_ERR_FORMAT},
        {"_class_name", "\"FlowMatchEulerDiscreteScheduler\"", OG_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        og_status st = read_wan_with(wan, bad[i].key, bad[i].json, &uc);
        CHECK(st == bad[i].want, "%s: %s gave %s (%s), expected %s", bad[i].key, bad[i].json,
              og_status_name(st), og_error_message(), og_status_name(bad[i].want));
        if (i == 0)
            printf("  e.g. %s\n", og_error_message());
    }

    /* Schedules diffusers turns into NaN are refused; the same with one step, or with
     * final_sigmas_type sigma_min, are fine. */
    og_unipc s;
    og_unipc_config c = OG_UNIPC_CONFIG_WAN;
    c.solver_type = OG_UNIPC_BH1;
    CHECK_OK(og_unipc_init(&s, &c, 4));
    CHECK(og_unipc_set_timesteps(&s, 10, NULL) == OG_ERR_INVALID_ARG, "bh1 with a zero final");
    printf("  e.g. %s\n", og_error_message());
    float x[4] = {0}, v[4] = {0};
    CHECK(og_unipc_step(&s, v, 999, x) == OG_ERR_INVALID_ARG, "step after a refused schedule");
    og_unipc_free(&s);
    c = OG_UNIPC_CONFIG_WAN;
    c.lower_order_final = false;
    CHECK_OK(og_unipc_init(&s, &c, 4));
    CHECK(og_unipc_set_timesteps(&s, 5, NULL) == OG_ERR_INVALID_ARG,
          "lower_order_final off with a zero final");
    CHECK_OK(og_unipc_set_timesteps(&s, 1, NULL));
    CHECK(og_unipc_set_timesteps(&s, 0, NULL) == OG_ERR_INVALID_ARG, "0 steps");
    og_unipc_free(&s);
    c.final_sigmas_type = OG_UNIPC_FINAL_SIGMA_MIN;
    CHECK_OK(og_unipc_init(&s, &c, 4));
    CHECK_OK(og_unipc_set_timesteps(&s, 5, NULL));
    og_unipc_free(&s);
    c = OG_UNIPC_CONFIG_WAN;
    c.use_dynamic_shifting = true;
    CHECK_OK(og_unipc_init(&s, &c, 4));
    CHECK(og_unipc_step(&s, v, 999, x) == OG_ERR_INVALID_ARG, "step before set_timesteps");
    CHECK(og_unipc_set_timesteps(&s, 5, NULL) == OG_ERR_INVALID_ARG, "dynamic shift without mu");
    og_unipc_free(&s);
    c = OG_UNIPC_CONFIG_WAN;
    c.flow_shift = -2.0;
    CHECK_OK(og_unipc_init(&s, &c, 4));
    CHECK(og_unipc_set_timesteps(&s, 4, NULL) == OG_ERR_INVALID_ARG, "negative flow_shift");
    og_unipc_free(&s);
    /* Shift 1 with 1000 steps repeats timestep 999 (indices 0 and 1): without set_begin_index
     * the first step runs at index 1, as diffusers' index_for_timestep picks the second match. */
    c = OG_UNIPC_CONFIG_WAN;
    c.flow_shift = 1.0;
    CHECK_OK(og_unipc_init(&s, &c, 4));
    CHECK_OK(og_unipc_set_timesteps(&s, 1000, NULL));
    CHECK(s.timesteps[0] == 999 && s.timesteps[1] == 999, "repeated timestep 999");
    CHECK_OK(og_unipc_step(&s, v, 999, x));
    CHECK(s.step_index == 2, "first step at index %d, expected 1", s.step_index - 1);
    og_unipc_free(&s);
    c.solver_order = 4;
    CHECK(og_unipc_init(&s, &c, 4) == OG_ERR_INVALID_ARG, "order 4 at init");
}

int main(void)
{
    cJSON *root = NULL;
    CHECK_OK(og_json_load(FIXTURE, &root));
    if (root) {
        check_schedules(root);
        check_trajectories(root);
        check_config_and_refusals(root);
        cJSON_Delete(root);
    }
    return og_test_finish("test_unipc");
}
