/* LayerNorm (affine, weight only, none), RMSNorm (with and without weight) and GroupNorm against
 * naive double references, in place and out of place, on odd sizes and an offset-heavy input. */
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

static void layernorm_ref(double *y, const float *x, const float *w, const float *b, int64_t rows,
                          int64_t dim, double eps)
{
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < dim; i++)
            mean += x[r * dim + i];
        mean /= dim;
        for (int64_t i = 0; i < dim; i++)
            var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
        var /= dim;
        for (int64_t i = 0; i < dim; i++)
            y[r * dim + i] = (x[r * dim + i] - mean) / sqrt(var + eps) * (w ? w[i] : 1.0) +
                             (b ? b[i] : 0.0);
    }
}

/* x[n] uniform in [-scale, scale) + offset, then w[nw] and b[nw] uniform in [-1, 1). */
static void fill_inputs(og_test_rng *rng, float *x, size_t n, float scale, float offset, float *w,
                        float *b, size_t nw)
{
    og_test_fill(rng, x, n, scale);
    for (size_t i = 0; i < n; i++)
        x[i] += offset;
    og_test_fill(rng, w, nw, 1.0f);
    og_test_fill(rng, b, nw, 1.0f);
}

static void check_layernorm(og_test_rng *rng, int64_t rows, int64_t dim, int affine, float offset)
{
    size_t n = (size_t)(rows * dim);
    float *x = malloc(n * 4), *y = malloc(n * 4);
    float *w = malloc((size_t)dim * 4), *b = malloc((size_t)dim * 4);
    double *ref = malloc(n * 8);
    fill_inputs(rng, x, n, 2.0f, offset, w, b, (size_t)dim);
    const float *wp = affine >= 1 ? w : NULL, *bp = affine == 2 ? b : NULL;
    layernorm_ref(ref, x, wp, bp, rows, dim, 1e-6);
    og_layernorm(y, x, wp, bp, rows, dim, 1e-6f);
    double e1 = og_test_rel_err(y, ref, n);
    og_layernorm(x, x, wp, bp, rows, dim, 1e-6f); /* in place */
    double e2 = og_test_rel_err(x, ref, n);
    CHECK(e1 < 1e-6 && e2 < 1e-6,
          "layernorm rows %lld dim %lld affine %d offset %g: err %.3g / %.3g",
          (long long)rows, (long long)dim, affine, offset, e1, e2);
    free(x), free(y), free(w), free(b), free(ref);
}

static void check_rmsnorm(og_test_rng *rng, int64_t rows, int64_t dim, bool weight)
{
    size_t n = (size_t)(rows * dim);
    float *x = malloc(n * 4), *y = malloc(n * 4), *w = malloc((size_t)dim * 4);
    double *ref = malloc(n * 8);
    og_test_fill(rng, x, n, 3.0f);
    og_test_fill(rng, w, (size_t)dim, 1.0f);
    for (int64_t r = 0; r < rows; r++) {
        double ms = 0;
        for (int64_t i = 0; i < dim; i++)
            ms += (double)x[r * dim + i] * x[r * dim + i];
        double rs = 1.0 / sqrt(ms / dim + 1e-5);
        for (int64_t i = 0; i < dim; i++)
            ref[r * dim + i] = x[r * dim + i] * rs * (weight ? w[i] : 1.0);
    }
    og_rmsnorm(y, x, weight ? w : NULL, rows, dim, 1e-5f);
    double e1 = og_test_rel_err(y, ref, n);
    og_rmsnorm(x, x, weight ? w : NULL, rows, dim, 1e-5f);
    double e2 = og_test_rel_err(x, ref, n);
    CHECK(e1 < 1e-6 && e2 < 1e-6, "rmsnorm rows %lld dim %lld weight %d: err %.3g / %.3g",
          (long long)rows, (long long)dim, weight, e1, e2);
    free(x), free(y), free(w), free(ref);
}

static void check_groupnorm(og_test_rng *rng, int64_t c, int64_t hw, int groups, bool affine)
{
    size_t n = (size_t)(c * hw);
    float *x = malloc(n * 4), *y = malloc(n * 4);
    float *w = malloc((size_t)c * 4), *b = malloc((size_t)c * 4);
    double *ref = malloc(n * 8);
    fill_inputs(rng, x, n, 1.5f, 0.75f, w, b, (size_t)c);
    /* A group is a LayerNorm row of its channels; the affine is per channel. */
    layernorm_ref(ref, x, NULL, NULL, groups, c / groups * hw, 1e-6);
    if (affine)
        for (size_t i = 0; i < n; i++)
            ref[i] = ref[i] * w[i / hw] + b[i / hw];
    og_groupnorm(y, x, affine ? w : NULL, affine ? b : NULL, c, hw, groups, 1e-6f);
    double e1 = og_test_rel_err(y, ref, n);
    og_groupnorm(x, x, affine ? w : NULL, affine ? b : NULL, c, hw, groups, 1e-6f);
    double e2 = og_test_rel_err(x, ref, n);
    CHECK(e1 < 1e-6 && e2 < 1e-6, "groupnorm c %lld hw %lld groups %d: err %.3g / %.3g",
          (long long)c, (long long)hw, groups, e1, e2);
    free(x), free(y), free(w), free(b), free(ref);
}

int main(void)
{
    og_test_rng rng = {0x1a2b3c4du};
    for (int affine = 0; affine < 3; affine++) {
        check_layernorm(&rng, 1, 1, affine, 0.0f);
        check_layernorm(&rng, 7, 13, affine, 0.0f);
        check_layernorm(&rng, 33, 3072, affine, 100.0f); /* large mean: needs the two-pass form */
    }
    check_rmsnorm(&rng, 1, 1, true);
    check_rmsnorm(&rng, 45, 128, true);
    check_rmsnorm(&rng, 9, 1001, false);
    check_groupnorm(&rng, 32, 1, 32, true);
    check_groupnorm(&rng, 64, 17 * 19, 32, true);
    check_groupnorm(&rng, 12, 5, 3, false);
    return og_test_finish("test_ops_norm");
}
