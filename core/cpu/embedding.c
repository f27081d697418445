/* Sinusoidal timestep embedding. The arithmetic follows diffusers step by step in f32 (exponent,
 * exp, t * freq), so the angles round exactly as the reference's do; cos/sin are then taken in
 * double and rounded once. */
#include <math.h>

#include "core/ops.h"

void og_timestep_embedding(float *out, float t, int dim, double max_period, double freq_shift,
                           bool cos_first)
{
    const int half = dim / 2;
    const float neg_log = (float)-log(max_period), denom = (float)(half - freq_shift);
    for (int i = 0; i < half; i++) {
        float freq = expf(neg_log * (float)i / denom);
        double arg = t * freq;
        float c = (float)cos(arg), s = (float)sin(arg);
        out[i] = cos_first ? c : s;
        out[half + i] = cos_first ? s : c;
    }
    if (dim % 2)
        out[dim - 1] = 0.0f;
}
