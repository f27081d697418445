/* SiLU, tanh-GELU, tanh, SwiGLU, modulation, gated residual and softmax against double references
 * over a range that covers the small-argument and saturated branches. */
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

enum { N = 5003 };

/* Elementwise: max |got - want| / max(|want|, 1e-3) over all elements (relative where it matters,
 * absolute near zero). */
static double elem_err(const float *got, const double *want, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / fmax(fabs(want[i]), 1e-3);
        worst = d > worst || d != d ? d : worst;
    }
    return worst;
}

/* Inputs: a sweep over [-lim, lim] plus tiny values, so every branch is reached. */
static void sweep(float *x, int64_t n, float lim)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = -lim + 2 * lim * (float)i / (float)(n - 1);
    x[0] = 1e-6f, x[1] = -3e-5f, x[2] = 0.0f, x[3] = 0.2499f, x[4] = -0.2501f;
}

int main(void)
{
    og_test_rng rng = {0xabcdefu};
    float *x = malloc(N * 4), *y = malloc(N * 4), *g = malloc(N * 4), *u = malloc(N * 4);
    double *ref = malloc(N * 8);

    sweep(x, N, 30.0f);
    for (int i = 0; i < N; i++)
        ref[i] = x[i] / (1.0 + exp(-(double)x[i]));
    memcpy(y, x, N * 4);
    og_silu(y, N);
    CHECK(elem_err(y, ref, N) < 1e-6, "silu err %.3g", elem_err(y, ref, N));

    sweep(x, N, 12.0f);
    for (int i = 0; i < N; i++) {
        double v = x[i];
        ref[i] = 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    }
    memcpy(y, x, N * 4);
    og_gelu_tanh(y, N);
    CHECK(elem_err(y, ref, N) < 1e-6, "gelu_tanh err %.3g", elem_err(y, ref, N));

    sweep(x, N, 10.0f);
    for (int i = 0; i < N; i++)
        ref[i] = tanh((double)x[i]);
    memcpy(y, x, N * 4);
    og_tanh(y, N);
    double e = 0;
    for (int i = 0; i < N; i++) /* tanh is checked relatively even at tiny arguments */
        e = fmax(e, fabs(y[i] - ref[i]) / fmax(fabs(ref[i]), 1e-30));
    CHECK(e < 1e-6, "tanh rel err %.3g", e);

    og_test_fill(&rng, g, N, 20.0f);
    og_test_fill(&rng, u, N, 2.0f);
    for (int i = 0; i < N; i++)
        ref[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    og_swiglu(y, g, u, N);
    CHECK(elem_err(y, ref, N) < 1e-6, "swiglu err %.3g", elem_err(y, ref, N));
    og_swiglu(g, g, u, N); /* out aliases gate */
    CHECK(elem_err(g, ref, N) < 1e-6, "swiglu in place err %.3g", elem_err(g, ref, N));

    /* modulate / gated residual on [rows, dim] = [29, 141] */
    const int rows = 29, dim = 141;
    float *sc = malloc(dim * 4), *sh = malloc(dim * 4);
    og_test_fill(&rng, x, (size_t)rows * dim, 2.0f);
    og_test_fill(&rng, sc, dim, 1.0f);
    og_test_fill(&rng, sh, dim, 1.0f);
    for (int pass = 0; pass < 2; pass++) {
        const float *shp = pass ? NULL : sh;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < dim; i++)
                ref[r * dim + i] = (double)x[r * dim + i] * (1.0 + sc[i]) + (shp ? shp[i] : 0.0);
        og_modulate(y, x, sc, shp, rows, dim);
        double err = og_test_rel_err(y, ref, (size_t)rows * dim);
        CHECK(err < 1e-6, "modulate shift %d err %.3g", !pass, err);
    }
    og_test_fill(&rng, y, (size_t)rows * dim, 1.0f);
    for (int pass = 0; pass < 2; pass++) {
        const float *gate = pass ? NULL : sc;
        memcpy(u, x, (size_t)rows * dim * 4);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < dim; i++)
                ref[r * dim + i] = (double)u[r * dim + i] + (gate ? gate[i] : 1.0) * y[r * dim + i];
        og_gated_residual(u, y, gate, rows, dim);
        double err = og_test_rel_err(u, ref, (size_t)rows * dim);
        CHECK(err < 1e-6, "gated_residual gate %d err %.3g", !pass, err);
    }

    /* softmax, including a row with a -inf entry and a row of one element */
    static const int dims[] = {1, 7, 1000};
    for (int k = 0; k < 3; k++) {
        int d = dims[k], rr = 5;
        og_test_fill(&rng, x, (size_t)rr * d, 15.0f);
        x[d - 1] = -INFINITY;
        if (d == 1)
            x[0] = 3.0f;
        for (int r = 0; r < rr; r++) {
            double mx = -INFINITY, s = 0;
            for (int i = 0; i < d; i++)
                mx = fmax(mx, x[r * d + i]);
            for (int i = 0; i < d; i++)
                s += exp(x[r * d + i] - mx);
            for (int i = 0; i < d; i++)
                ref[r * d + i] = exp(x[r * d + i] - mx) / s;
        }
        og_softmax(x, rr, d);
        double err = og_test_rel_err(x, ref, (size_t)rr * d);
        CHECK(err < 1e-6, "softmax dim %d err %.3g", d, err);
        CHECK(d == 1 || x[d - 1] == 0.0f, "softmax: a -inf entry must give exactly 0, got %g",
              x[d - 1]);
    }

    free(x), free(y), free(g), free(u), free(ref), free(sc), free(sh);
    return og_test_finish("test_ops_activation");
}
