/* UniPCMultistepScheduler for flow matching, rounded as diffusers rounds.
 *
 * The schedule is numpy float64 (np.linspace, the shift, the 1e-6 nudge of a first sigma of 1),
 * then float32 for the sigmas and a truncation to int64 for the timesteps. The step's scalars
 * (lambda = log(alpha) - log(sigma), h, r_k, the B(h) coefficients) are 0-d float32 torch
 * tensors in the reference: each is computed here as one float operation, log and expm1 in double
 * rounded to float (torch's SIMD versions are within 1 ulp of that and differ from it in about one
 * argument in a thousand). The small linear systems of orders >= 3 (torch.linalg.solve, LAPACK
 * in float32) are solved in double and rounded. The per-element update is fp32 in the reference's
 * order of operations. */
#include "samplers/unipc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/diffusers.h"

/* Each product is rounded before the sum that follows, as in PyTorch's fp32 kernels. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- config ------------------------------------------------------------------------------- */

static og_status one_of(const og_config *cfg, const char *key, const char *def,
                        const char *const *names, int n, int *out)
{
    const char *s;
    OG_TRY(og_config_string_or(cfg, key, def, &s));
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return OG_OK;
        }
    return og_fail(OG_ERR_FORMAT, "%s: %s \"%s\" is not one of the values UniPC accepts",
                   og_config_path(cfg), key, s);
}

static og_status read_config(const og_config *cfg, og_unipc_config *c)
{
    const char *path = og_config_path(cfg);
    int64_t v;
    bool b;
    int idx;
    if (og_config_has(cfg, "_class_name"))
        OG_TRY(og_config_expect_class(cfg, "UniPCMultistepScheduler"));
    /* Options outside the flow-matching form the Wan releases use. */
    static const char *const refused_true[] = {"use_karras_sigmas", "use_exponential_sigmas",
                                               "use_beta_sigmas", "thresholding"};
    for (int i = 0; i < 4; i++) {
        OG_TRY(og_config_bool_or(cfg, refused_true[i], false, &b));
        if (b)
            return og_fail(OG_ERR_UNSUPPORTED, "%s: %s is not supported by omnigen's UniPC "
                           "sampler (set it to false)", path, refused_true[i]);
    }
    OG_TRY(og_config_bool_or(cfg, "use_flow_sigmas", false, &b));
    if (!b)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: use_flow_sigmas is false; omnigen's UniPC "
                       "sampler implements only flow-matching schedules (use_flow_sigmas: true)",
                       path);
    if (og_config_has(cfg, "solver_p"))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: solver_p is not supported (must be null)", path);
    const char *pt;
    OG_TRY(og_config_string_or(cfg, "prediction_type", "epsilon", &pt));
    if (strcmp(pt, "flow_prediction") != 0)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: prediction_type \"%s\": omnigen's UniPC sampler "
                       "implements only \"flow_prediction\"", path, pt);
    OG_TRY(og_config_bool_or(cfg, "predict_x0", true, &b));
    if (!b)
        return og_fail(OG_ERR_FORMAT, "%s: predict_x0 false cannot be used with "
                       "flow_prediction (set predict_x0: true)", path);

    OG_TRY(og_config_int_or(cfg, "num_train_timesteps", 1000, &v));
    if (v < 1 || v > 1000000)
        return og_fail(OG_ERR_FORMAT, "%s: num_train_timesteps %lld out of range", path,
                       (long long)v);
    c->num_train_timesteps = (int)v;
    OG_TRY(og_config_int_or(cfg, "solver_order", 2, &v));
    if (v < 1)
        return og_fail(OG_ERR_FORMAT, "%s: solver_order %lld (must be >= 1)", path, (long long)v);
    if (v > OG_UNIPC_MAX_ORDER)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: solver_order %lld; omnigen's UniPC sampler "
                       "supports orders 1 to %d", path, (long long)v, OG_UNIPC_MAX_ORDER);
    c->solver_order = (int)v;
    /* diffusers maps the DPM-Solver names midpoint/heun/logrho to bh2. */
    static const char *const solvers[] = {"bh1", "bh2", "midpoint", "heun", "logrho"};
    OG_TRY(one_of(cfg, "solver_type", "bh2", solvers, 5, &idx));
    c->solver_type = idx == 0 ? OG_UNIPC_BH1 : OG_UNIPC_BH2;
    OG_TRY(og_config_bool_or(cfg, "lower_order_final", true, &c->lower_order_final));
    static const char *const finals[] = {"zero", "sigma_min"};
    OG_TRY(one_of(cfg, "final_sigmas_type", "zero", finals, 2, &idx));
    c->final_sigmas_type = (og_unipc_final_sigma)idx;
    /* Computed and then discarded by the flow-sigma path, but still validated there. */
    static const char *const spacings[] = {"linspace", "leading", "trailing"};
    OG_TRY(one_of(cfg, "timestep_spacing", "linspace", spacings, 3, &idx));
    OG_TRY(og_config_float_or(cfg, "flow_shift", 1.0, &c->flow_shift));
    OG_TRY(og_config_bool_or(cfg, "use_dynamic_shifting", false, &c->use_dynamic_shifting));
    static const char *const shifts[] = {"exponential", "linear"};
    OG_TRY(one_of(cfg, "time_shift_type", "exponential", shifts, 2, &idx));
    c->time_shift_type = (og_time_shift_type)idx;
    OG_TRY(og_config_float_or(cfg, "shift_terminal", 0.0, &c->shift_terminal));
    if (c->shift_terminal == 1.0)
        return og_fail(OG_ERR_FORMAT, "%s: shift_terminal 1.0 divides by zero", path);
    c->n_disable_corrector = 0;
    if (og_config_has(cfg, "disable_corrector"))
        OG_TRY(og_config_int_array(cfg, "disable_corrector", c->disable_corrector,
                                   OG_UNIPC_MAX_DISABLED, &c->n_disable_corrector));
    return OG_OK;
}

og_status og_unipc_config_read(const char *path, og_unipc_config *out)
{
    og_config *cfg;
    OG_TRY(og_config_load(&cfg, path));
    og_unipc_config c = OG_UNIPC_CONFIG_WAN;
    og_status st = read_config(cfg, &c);
    og_config_free(cfg);
    if (st == OG_OK)
        *out = c;
    return st;
}

/* ---- state -------------------------------------------------------------------------------- */

og_status og_unipc_init(og_unipc *s, const og_unipc_config *c, int64_t numel)
{
    memset(s, 0, sizeof *s);
    if (c->solver_order < 1 || c->solver_order > OG_UNIPC_MAX_ORDER || numel < 1)
        return og_fail(OG_ERR_INVALID_ARG, "UniPC: solver_order %d (1..%d) and %lld elements",
                       c->solver_order, OG_UNIPC_MAX_ORDER, (long long)numel);
    s->cfg = *c;
    s->numel = numel;
    s->step_index = s->begin_index = -1;
    s->outputs = malloc(sizeof(float) * (size_t)numel * (size_t)(c->solver_order + 1));
    s->last_sample = malloc(sizeof(float) * (size_t)numel);
    if (!s->outputs || !s->last_sample) {
        og_unipc_free(s);
        return og_fail(OG_ERR_OOM, "UniPC: no memory for %lld-element histories",
                       (long long)numel);
    }
    return OG_OK;
}

void og_unipc_free(og_unipc *s)
{
    free(s->sigmas);
    free(s->timesteps);
    free(s->outputs);
    free(s->last_sample);
    memset(s, 0, sizeof *s);
}

/* ---- the step's scalar coefficients ------------------------------------------------------- */

typedef struct {
    int n_d;          /* history differences D_k = (m_k - m0) / r_k, k = 1..n_d */
    float a, c, e;    /* sigma_t / sigma_s0, alpha_t * h phi_1(h), alpha_t * B(h) */
    float rk[OG_UNIPC_MAX_ORDER];
    float rho[OG_UNIPC_MAX_ORDER]; /* predictor: n_d weights; corrector: n_d + 1 */
} coefs;

static float logf_rn(float x) { return (float)log((double)x); }
static float expm1f_rn(float x) { return (float)expm1((double)x); }

/* lambda = log(alpha) - log(sigma) with alpha = 1 - sigma (flow sigmas). */
static float lambda_of(float sigma) { return logf_rn(1.0f - sigma) - logf_rn(sigma); }

/* Solves A x = b (n <= 3) by Gaussian elimination with partial pivoting in double. */
static void solve_small(int n, double a[OG_UNIPC_MAX_ORDER][OG_UNIPC_MAX_ORDER], double *b,
                        float *x)
{
    for (int k = 0; k < n; k++) {
        int p = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(a[i][k]) > fabs(a[p][k]))
                p = i;
        for (int j = 0; j < n; j++) {
            double t = a[k][j];
            a[k][j] = a[p][j];
            a[p][j] = t;
        }
        double t = b[k];
        b[k] = b[p];
        b[p] = t;
        for (int i = k + 1; i < n; i++) {
            double l = a[i][k] / a[k][k];
            for (int j = k; j < n; j++)
                a[i][j] -= l * a[k][j];
            b[i] -= l * b[k];
        }
    }
    double y[OG_UNIPC_MAX_ORDER];
    for (int i = n - 1; i >= 0; i--) {
        double r = b[i];
        for (int j = i + 1; j < n; j++)
            r -= a[i][j] * y[j];
        y[i] = r / a[i][i];
        x[i] = (float)y[i];
    }
}

/* The coefficients of a UniP (corrector false: from s0 = index to t = index + 1) or UniC
 * (corrector true: from s0 = index - 1 to t = index) update of the given order. False when one
 * that the update uses is not finite. */
static bool coefs_at(const og_unipc *s, int index, int order, bool corrector, coefs *k)
{
    const float *sg = s->sigmas;
    const int t = corrector ? index : index + 1, s0 = t - 1;
    const float sigma_t = sg[t], sigma_s0 = sg[s0], alpha_t = 1.0f - sigma_t;
    const float lambda_s0 = lambda_of(sigma_s0);
    const float h = lambda_of(sigma_t) - lambda_s0;
    float rks[OG_UNIPC_MAX_ORDER];
    for (int i = 1; i < order; i++)
        rks[i - 1] = (lambda_of(sg[s0 - i]) - lambda_s0) / h;
    rks[order - 1] = 1.0f;
    const float hh = -h; /* predict_x0 */
    const float h_phi_1 = expm1f_rn(hh);
    const float b_h = s->cfg.solver_type == OG_UNIPC_BH1 ? hh : expm1f_rn(hh);
    float h_phi_k = h_phi_1 / hh - 1.0f, bv[OG_UNIPC_MAX_ORDER];
    int64_t factorial = 1;
    for (int i = 1; i <= order; i++) {
        bv[i - 1] = h_phi_k * (float)factorial / b_h;
        factorial *= i + 1;
        h_phi_k = h_phi_k / hh - (float)(1.0 / (double)factorial);
    }
    k->n_d = order - 1;
    k->a = sigma_t / sigma_s0;
    k->c = alpha_t * h_phi_1;
    k->e = alpha_t * b_h;
    memcpy(k->rk, rks, sizeof rks);
    /* Predictor: rho = 0.5 at order 2, else R[:-1, :-1] rho = b[:-1]; corrector: 0.5 at order 1,
     * else R rho = b; R[i][j] = rks[j]^i. */
    const int n = corrector ? order : order - 1;
    if (n == 1 && order <= 2) {
        k->rho[0] = 0.5f;
    } else if (n > 0) {
        double r[OG_UNIPC_MAX_ORDER][OG_UNIPC_MAX_ORDER], rhs[OG_UNIPC_MAX_ORDER];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++)
                r[i][j] = i == 0 ? 1.0 : i == 1 ? rks[j] : (double)(rks[j] * rks[j]);
            rhs[i] = bv[i];
        }
        solve_small(n, r, rhs, k->rho);
    }
    bool ok = isfinite(k->a) && isfinite(k->c) && isfinite(k->e);
    for (int i = 0; i < k->n_d; i++)
        ok = ok && !isnan(k->rk[i]) && k->rk[i] != 0.0f;
    for (int i = 0; i < n; i++)
        ok = ok && isfinite(k->rho[i]);
    return ok;
}

/* The order of the predictor at `index` after `lower_order_nums` earlier steps. */
static int predictor_order(const og_unipc *s, int index, int lower_order_nums)
{
    int order = s->cfg.solver_order;
    if (s->cfg.lower_order_final && s->num_inference_steps - index < order)
        order = s->num_inference_steps - index;
    return order < lower_order_nums + 1 ? order : lower_order_nums + 1;
}

static bool corrector_enabled(const og_unipc *s, int index)
{
    for (int i = 0; i < s->cfg.n_disable_corrector; i++)
        if (s->cfg.disable_corrector[i] == index - 1)
            return false;
    return index > 0;
}

/* ---- set_timesteps ------------------------------------------------------------------------ */

og_status og_unipc_set_timesteps(og_unipc *s, int n, const double *mu)
{
    const og_unipc_config *c = &s->cfg;
    if (!s->outputs)
        return og_fail(OG_ERR_INVALID_ARG, "UniPC: set_timesteps before og_unipc_init");
    if (n < 1 || n > 1000000)
        return og_fail(OG_ERR_INVALID_ARG, "UniPC: %d inference steps (need 1 to 1000000)", n);
    if (c->use_dynamic_shifting && !mu)
        return og_fail(OG_ERR_INVALID_ARG,
                       "UniPC: dynamic shifting is configured but no mu was given");
    if (n > s->cap_steps) {
        float *sg = realloc(s->sigmas, sizeof(float) * (size_t)(n + 1));
        if (sg)
            s->sigmas = sg;
        int64_t *ts = realloc(s->timesteps, sizeof(int64_t) * (size_t)n);
        if (ts)
            s->timesteps = ts;
        if (!sg || !ts)
            return og_fail(OG_ERR_OOM, "UniPC: no memory for %d steps", n);
        s->cap_steps = n;
    }
    const double T = c->num_train_timesteps;
    /* np.linspace(1, 1/T, n + 1)[:-1]: i * step + start, step = (stop - start) / n. */
    const double step = (1.0 / T - 1.0) / (double)n;
    double last = 0, scale = 1.0;
    for (int pass = c->shift_terminal != 0.0 ? 0 : 1; pass < 2; pass++) {
        for (int i = pass == 0 ? n - 1 : 0; i < n; i++) {
            double x = (double)i * step + 1.0;
            if (c->use_dynamic_shifting) {
                double k = c->time_shift_type == OG_TIME_SHIFT_EXPONENTIAL ? exp(*mu) : *mu;
                x = k / (k + (1.0 / x - 1.0));
            } else {
                x = c->flow_shift * x / (1.0 + (c->flow_shift - 1.0) * x);
            }
            if (pass == 0) { /* stretch_shift_to_terminal's scale from the last sigma */
                scale = (1.0 - x) / (1.0 - c->shift_terminal);
                continue;
            }
            if (c->shift_terminal != 0.0)
                x = 1.0 - (1.0 - x) / scale;
            if (i == 0 && fabs(x - 1.0) < 1e-6)
                x -= 1e-6; /* keeps log(alpha) finite at the first step */
            if (!(x > 0.0 && x < 1.0)) {
                s->num_inference_steps = 0;
                return og_fail(OG_ERR_INVALID_ARG, "UniPC: sigma %d of %d is %g, outside (0, 1): "
                               "check flow_shift, mu and shift_terminal", i, n, x);
            }
            last = x;
            s->sigmas[i] = (float)x;
            s->timesteps[i] = (int64_t)(x * T);
        }
    }
    s->sigmas[n] = c->final_sigmas_type == OG_UNIPC_FINAL_ZERO ? 0.0f : (float)last;
    s->num_inference_steps = n;
    s->step_index = s->begin_index = -1;
    s->lower_order_nums = s->this_order = 0;
    s->have_last = false;
    s->n_outputs = s->head = 0;

    /* A dry run of the coefficients from the first step, as the pipeline runs them. */
    int prev_order = 0;
    for (int i = 0, lower = 0; i < n; i++) {
        coefs k;
        int order = predictor_order(s, i, lower);
        if ((i > 0 && corrector_enabled(s, i) && !coefs_at(s, i, prev_order, true, &k)) ||
            !coefs_at(s, i, order, false, &k)) {
            s->num_inference_steps = 0;
            return og_fail(OG_ERR_INVALID_ARG,
                           "UniPC: step %d of %d has non-finite coefficients (diffusers returns "
                           "NaN here): a final sigma of 0 needs solver_type bh2 and "
                           "lower_order_final true, or use final_sigmas_type sigma_min", i, n);
        }
        prev_order = order;
        lower += lower < c->solver_order;
    }
    return OG_OK;
}

void og_unipc_set_begin_index(og_unipc *s, int begin_index) { s->begin_index = begin_index; }

/* ---- step --------------------------------------------------------------------------------- */

static const float *history(const og_unipc *s, int back)
{
    const int slots = s->cfg.solver_order + 1;
    return s->outputs + (size_t)s->numel * (size_t)((s->head - back + slots) % slots);
}

/* out[j] = a x - c m0 - e * (sum_k rho_k D_k [+ rho_last (mt - m0)]), D_k = (m_k - m0) / r_k:
 * the UniP update (mt NULL) or the UniC one. m[0] is m0, m[k] the k-th older x0 prediction. */
static void update(const coefs *k, const float *x, const float *const *m, const float *mt,
                   float *out, int64_t n)
{
    const float a = k->a, c = k->c, e = k->e;
#pragma omp parallel for if (n > 65536)
    for (int64_t j = 0; j < n; j++) {
        const float m0 = m[0][j];
        const float xt = a * x[j] - c * m0;
        float res;
        if (k->n_d == 0) {
            res = mt ? k->rho[0] * (mt[j] - m0) : 0.0f;
        } else {
            res = k->rho[0] * ((m[1][j] - m0) / k->rk[0]);
            if (k->n_d == 2)
                res = res + k->rho[1] * ((m[2][j] - m0) / k->rk[1]);
            if (mt)
                res = res + k->rho[k->n_d] * (mt[j] - m0);
        }
        out[j] = xt - e * res;
    }
}

static int index_for_timestep(const og_unipc *s, int64_t timestep)
{
    int found = 0, index = s->num_inference_steps - 1;
    for (int i = 0; i < s->num_inference_steps && found < 2; i++)
        if (s->timesteps[i] == timestep)
            index = i, found++;
    return index;
}

og_status og_unipc_step(og_unipc *s, const float *model_output, int64_t timestep, float *sample)
{
    if (s->num_inference_steps < 1)
        return og_fail(OG_ERR_INVALID_ARG, "UniPC: step before set_timesteps");
    if (s->step_index < 0)
        s->step_index = s->begin_index >= 0 ? s->begin_index : index_for_timestep(s, timestep);
    const int idx = s->step_index;
    if (idx >= s->num_inference_steps)
        return og_fail(OG_ERR_INVALID_ARG, "UniPC: step %d past the last of %d steps", idx,
                       s->num_inference_steps);
    const int64_t n = s->numel;
    const int slots = s->cfg.solver_order + 1;
    const int fresh = (s->head + 1) % slots;
    float *x0 = s->outputs + (size_t)n * (size_t)fresh;
    const float sigma = s->sigmas[idx];
#pragma omp parallel for if (n > 65536)
    for (int64_t j = 0; j < n; j++)
        x0[j] = sample[j] - sigma * model_output[j];

    const float *m[OG_UNIPC_MAX_ORDER];
    coefs k;
    if (idx > 0 && corrector_enabled(s, idx) && s->have_last) {
        if (!coefs_at(s, idx, s->this_order, true, &k))
            return og_fail(OG_ERR_INVALID_ARG, "UniPC: non-finite corrector at step %d", idx);
        for (int i = 0; i < s->this_order; i++)
            m[i] = history(s, i);
        update(&k, s->last_sample, m, x0, s->last_sample, n);
    } else {
        memcpy(s->last_sample, sample, sizeof(float) * (size_t)n);
    }
    s->head = fresh;
    if (s->n_outputs < s->cfg.solver_order)
        s->n_outputs++;
    s->this_order = predictor_order(s, idx, s->lower_order_nums);
    s->have_last = true;
    if (!coefs_at(s, idx, s->this_order, false, &k))
        return og_fail(OG_ERR_INVALID_ARG, "UniPC: non-finite predictor at step %d", idx);
    for (int i = 0; i < s->this_order; i++)
        m[i] = history(s, i);
    update(&k, s->last_sample, m, NULL, sample, n);
    if (s->lower_order_nums < s->cfg.solver_order)
        s->lower_order_nums++;
    s->step_index++;
    return OG_OK;
}
