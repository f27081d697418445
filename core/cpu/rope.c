/* Rotary position embedding: multi-axis cos/sin tables and the two rotation layouts (interleaved
 * pairs for DiTs, rotate-half for LLM text encoders). */
#include <math.h>

#include "core/ops.h"

void og_rope_table(float *cos_t, float *sin_t, const int64_t *pos, int64_t tokens, int naxes,
                   const int *axes_dim, double theta)
{
    int half = 0;
    for (int a = 0; a < naxes; a++)
        half += axes_dim[a] / 2;
#pragma omp parallel for if (tokens * half > 16384)
    for (int64_t t = 0; t < tokens; t++) {
        int k = 0;
        for (int a = 0; a < naxes; a++)
            for (int i = 0; i < axes_dim[a] / 2; i++, k++) {
                double freq = 1.0 / pow(theta, 2.0 * i / axes_dim[a]);
                /* The angle is rounded to f32 before cos/sin, as diffusers' Z-Image computes it
                 * in f64 and converts it to f32 before torch.polar. */
                double ang = (float)((double)pos[t * naxes + a] * freq);
                cos_t[t * half + k] = (float)cos(ang);
                sin_t[t * half + k] = (float)sin(ang);
            }
    }
}

void og_rope_interleaved(float *x, int64_t tokens, int heads, int head_dim, int64_t stride,
                         const float *cos_t, const float *sin_t)
{
    const int half = head_dim / 2;
#pragma omp parallel for if (tokens * heads * head_dim > 65536)
    for (int64_t t = 0; t < tokens; t++) {
        const float *c = cos_t + t * half, *s = sin_t + t * half;
        for (int h = 0; h < heads; h++) {
            float *xh = x + t * stride + (int64_t)h * head_dim;
#pragma omp simd
            for (int k = 0; k < half; k++) {
                float x0 = xh[2 * k], x1 = xh[2 * k + 1];
                xh[2 * k] = x0 * c[k] - x1 * s[k];
                xh[2 * k + 1] = x0 * s[k] + x1 * c[k];
            }
        }
    }
}

void og_rope_half(float *x, int64_t tokens, int heads, int head_dim, int64_t stride,
                  const float *cos_t, const float *sin_t)
{
    const int half = head_dim / 2;
#pragma omp parallel for if (tokens * heads * head_dim > 65536)
    for (int64_t t = 0; t < tokens; t++) {
        const float *c = cos_t + t * half, *s = sin_t + t * half;
        for (int h = 0; h < heads; h++) {
            float *lo = x + t * stride + (int64_t)h * head_dim, *hi = lo + half;
#pragma omp simd
            for (int k = 0; k < half; k++) {
                float x0 = lo[k], x1 = hi[k];
                lo[k] = x0 * c[k] - x1 * s[k];
                hi[k] = x1 * c[k] + x0 * s[k];
            }
        }
    }
}
