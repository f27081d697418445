/* Sinusoidal timestep embedding against a double reference (both orders, a frequency shift, an odd
 * dim) and against the exact f32 steps diffusers takes for the frequencies. */
#include "core/ops.h"
#include "testutil.h"

static void check(float t, int dim, double max_period, double shift, bool cos_first)
{
    float out[301];
    double ref[301];
    int half = dim / 2;
    og_timestep_embedding(out, t, dim, max_period, shift, cos_first);
    for (int i = 0; i < half; i++) {
        double arg = t * exp(-log(max_period) * i / (half - shift));
        ref[i] = cos_first ? cos(arg) : sin(arg);
        ref[half + i] = cos_first ? sin(arg) : cos(arg);
    }
    if (dim % 2)
        ref[dim - 1] = 0;
    /* Angles up to t are rounded to f32 as the reference rounds them: allow ulp(t) of phase. */
    double tol = fmax(2e-7, 2.0 * t * 6e-8);
    double err = 0;
    for (int i = 0; i < dim; i++)
        err = fmax(err, fabs(out[i] - ref[i]));
    CHECK(err < tol, "t %g dim %d shift %g cos_first %d: max err %.3g", t, dim, shift, cos_first,
          err);
    if (dim % 2)
        CHECK(out[dim - 1] == 0.0f, "odd dim: last channel must be zero");
}

int main(void)
{
    check(0.0f, 8, 10000, 0, true);
    check(1.0f, 256, 10000, 0, true);     /* Z-Image */
    check(999.0f, 256, 10000, 1, false);  /* diffusers Timesteps(flip_sin_to_cos=False) */
    check(500.5f, 256, 10000, 0, true);   /* Wan: flip_sin_to_cos=True, shift 0 */
    check(0.25f, 33, 100, 0, false);
    /* The frequency at i = 1 for dim 256 is exp(-ln(1e4) / 128) computed in f32. */
    float out[256];
    og_timestep_embedding(out, 1.0f, 256, 10000, 0, false);
    float f1 = expf((float)-log(10000.0) * 1.0f / 128.0f);
    CHECK(fabs(out[1] - sin((double)f1)) < 1e-7, "f32 frequency path differs: %.9g", out[1]);
    return og_test_finish("test_ops_embedding");
}
