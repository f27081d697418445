/* FlowMatchEulerDiscreteScheduler: config, schedule and Euler step, rounded as diffusers rounds.
 *
 * diffusers evaluates set_timesteps in numpy: in float64 when it builds the schedule itself
 * (np.linspace over the training timesteps), in float32 when it is given sigmas (it converts them
 * with astype(np.float32), and numpy keeps Python scalars "weak", so every later operation stays
 * float32). Both are reproduced by computing in double and, in float32 mode, rounding after every
 * elementary operation: a single +, -, *, / computed in double and rounded to float equals the
 * float operation. The result is then converted to float32 (torch.from_numpy(...).to(float32)),
 * and timesteps = sigmas * num_train_timesteps in float32. */
#include "samplers/flowmatch.h"

#include <math.h>
#include <string.h>

#include "io/diffusers.h"

/* The reference rounds each product before the sum that follows (PyTorch's fp32 step, numpy);
 * contracting them into one fused multiply-add would change the last bit. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

og_status og_flowmatch_config_read(const char *path, og_flowmatch_config *out)
{
    og_config *cfg;
    OG_TRY(og_config_load(&cfg, path));
    og_flowmatch_config c = OG_FLOWMATCH_CONFIG_DEFAULT;
    og_status st = OG_OK;
    int64_t v;
    const char *s;
    bool unsupported[4] = {false};
    static const char *const unsupported_keys[4] = {"use_karras_sigmas", "use_exponential_sigmas",
                                                    "use_beta_sigmas", "stochastic_sampling"};
    if (og_config_has(cfg, "_class_name"))
        st = og_config_expect_class(cfg, "FlowMatchEulerDiscreteScheduler");
    if (st == OG_OK && (st = og_config_int_or(cfg, "num_train_timesteps", 1000, &v)) == OG_OK)
        c.num_train_timesteps = (int)v;
    if (st == OG_OK)
        st = og_config_float_or(cfg, "shift", c.shift, &c.shift);
    if (st == OG_OK)
        st = og_config_bool_or(cfg, "use_dynamic_shifting", false, &c.use_dynamic_shifting);
    if (st == OG_OK)
        st = og_config_float_or(cfg, "base_shift", c.base_shift, &c.base_shift);
    if (st == OG_OK)
        st = og_config_float_or(cfg, "max_shift", c.max_shift, &c.max_shift);
    if (st == OG_OK)
        st = og_config_int_or(cfg, "base_image_seq_len", c.base_image_seq_len,
                              &c.base_image_seq_len);
    if (st == OG_OK)
        st = og_config_int_or(cfg, "max_image_seq_len", c.max_image_seq_len, &c.max_image_seq_len);
    if (st == OG_OK)
        st = og_config_bool_or(cfg, "invert_sigmas", false, &c.invert_sigmas);
    if (st == OG_OK)
        st = og_config_float_or(cfg, "shift_terminal", 0.0, &c.shift_terminal);
    if (st == OG_OK && (st = og_config_string_or(cfg, "time_shift_type", "exponential", &s)) ==
                           OG_OK) {
        if (strcmp(s, "exponential") == 0)
            c.time_shift_type = OG_TIME_SHIFT_EXPONENTIAL;
        else if (strcmp(s, "linear") == 0)
            c.time_shift_type = OG_TIME_SHIFT_LINEAR;
        else
            st = og_fail(OG_ERR_FORMAT, "%s: time_shift_type \"%s\" (expected exponential or "
                         "linear)", path, s);
    }
    for (int i = 0; i < 4 && st == OG_OK; i++)
        if ((st = og_config_bool_or(cfg, unsupported_keys[i], false, &unsupported[i])) == OG_OK &&
            unsupported[i])
            st = og_fail(OG_ERR_UNSUPPORTED, "%s: %s is not supported by omnigen's FlowMatch "
                         "Euler sampler", path, unsupported_keys[i]);
    if (st == OG_OK && (c.num_train_timesteps < 1 || c.base_image_seq_len == c.max_image_seq_len))
        st = og_fail(OG_ERR_FORMAT, "%s: num_train_timesteps must be >= 1 and "
                     "base_image_seq_len != max_image_seq_len", path);
    og_config_free(cfg);
    if (st == OG_OK)
        *out = c;
    return st;
}

double og_flowmatch_calculate_shift(const og_flowmatch_config *c, int64_t image_seq_len)
{
    double m = (c->max_shift - c->base_shift) /
               (double)(c->max_image_seq_len - c->base_image_seq_len);
    double b = c->base_shift - m * (double)c->base_image_seq_len;
    return (double)image_seq_len * m + b;
}

void og_flowmatch_linspace(float *out, float start, float end, int n)
{
    if (n == 1) {
        out[0] = start;
        return;
    }
    /* PyTorch's CPU kernel: start + step * i for the first half, end - step * (n - 1 - i) for
     * the second, each a fused multiply-add in its build. */
    float step = (end - start) / (float)(n - 1);
    for (int i = 0; i < n; i++)
        out[i] = i < n / 2 ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - 1 - i), end);
}

void og_flowmatch_linspace_f64(float *out, double start, double end, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (float)(n == 1        ? start
                         : i == n - 1 ? end
                                      : (double)i * ((end - start) / (n - 1)) + start);
}

/* One value of the schedule in the arithmetic of the reference path (see the top comment). */
typedef struct {
    bool f32;
} arith;

static double rnd(arith a, double x) { return a.f32 ? (double)(float)x : x; }

static double time_shift(const og_flowmatch_config *c, arith a, double mu, double t)
{
    /* exp(mu) / (exp(mu) + (1/t - 1)^1), or mu / (mu + (1/t - 1)^1) for the linear type; the
     * Python scalar enters the array arithmetic rounded to the array's type. */
    double k = rnd(a, c->time_shift_type == OG_TIME_SHIFT_EXPONENTIAL ? exp(mu) : mu);
    double u = rnd(a, rnd(a, 1.0 / t) - 1.0);
    return rnd(a, k / rnd(a, k + u));
}

/* sigma i of the schedule after the static or dynamic shift, before shift_terminal. */
static double shifted_sigma(const og_flowmatch_config *c, arith a, int n, int i,
                            const float *custom_sigmas, double s_max, double s_min, double mu)
{
    const double T = c->num_train_timesteps;
    double s;
    if (custom_sigmas) {
        s = custom_sigmas[i];
    } else {
        /* np.linspace(sigma_max * T, sigma_min * T, n) / T in float64: i * step + start, the
         * last element exactly stop. */
        double start = s_max * T, stop = s_min * T;
        double t = n == 1 ? start : i == n - 1 ? stop : (double)i * ((stop - start) / (n - 1)) + start;
        s = t / T;
    }
    if (c->use_dynamic_shifting)
        return time_shift(c, a, mu, s);
    double sh = rnd(a, c->shift), shm1 = rnd(a, c->shift - 1.0);
    return rnd(a, rnd(a, sh * s) / rnd(a, 1.0 + rnd(a, shm1 * s)));
}

og_status og_flowmatch_set_timesteps(const og_flowmatch_config *c, int n,
                                     const float *custom_sigmas, const double *mu, float *sigmas,
                                     float *timesteps)
{
    if (n < 1)
        return og_fail(OG_ERR_INVALID_ARG, "FlowMatch: %d inference steps (need at least 1)", n);
    if (c->use_dynamic_shifting && !mu)
        return og_fail(OG_ERR_INVALID_ARG,
                       "FlowMatch: dynamic shifting is configured but no mu was given");
    const double T = c->num_train_timesteps;
    const arith a = {custom_sigmas != NULL};
    const double m = mu ? *mu : 0.0;
    double s_max = 1.0, s_min = 0.0;
    if (!custom_sigmas) {
        /* The constructor's training sigmas, in float32 torch ops, give sigma_max/sigma_min. */
        float f_max = 1.0f, f_min = 1.0f / (float)T;
        if (!c->use_dynamic_shifting) {
            float sh = (float)c->shift, shm1 = (float)(c->shift - 1.0);
            f_max = sh * f_max / (1.0f + shm1 * f_max);
            f_min = sh * f_min / (1.0f + shm1 * f_min);
        }
        s_max = f_max;
        s_min = f_min;
    }
    /* stretch_shift_to_terminal: 1 - (1 - s) / ((1 - s_last) / (1 - shift_terminal)). */
    double scale = 0.0;
    if (c->shift_terminal != 0.0) {
        double last = shifted_sigma(c, a, n, n - 1, custom_sigmas, s_max, s_min, m);
        scale = rnd(a, rnd(a, 1.0 - last) / rnd(a, 1.0 - c->shift_terminal));
    }
    for (int i = 0; i < n; i++) {
        double s = shifted_sigma(c, a, n, i, custom_sigmas, s_max, s_min, m);
        if (c->shift_terminal != 0.0)
            s = rnd(a, 1.0 - rnd(a, rnd(a, 1.0 - s) / scale));
        sigmas[i] = (float)s;
        if (c->invert_sigmas)
            sigmas[i] = 1.0f - sigmas[i];
        timesteps[i] = sigmas[i] * (float)T;
    }
    sigmas[n] = c->invert_sigmas ? 1.0f : 0.0f;
    return OG_OK;
}

void og_flowmatch_step(const float *sigmas, int i, float *x, const float *v, int64_t n,
                       bool negate)
{
    const float dt = sigmas[i + 1] - sigmas[i];
#pragma omp parallel for simd if (n > 65536)
    for (int64_t j = 0; j < n; j++)
        x[j] = x[j] + dt * (negate ? -v[j] : v[j]);
}
