/* Classifier-free guidance combine, with the Z-Image pipeline's truncation and renormalisation. */
#include "samplers/cfg.h"

#include <math.h>

/* The reference rounds w * (pos - neg) before adding pos; a fused multiply-add would not. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

bool og_cfg_active(float guidance, float timestep, float truncation)
{
    if (!(guidance > 0.0f))
        return false;
    float t_norm = (1000.0f - timestep) / 1000.0f;
    return !(truncation <= 1.0f && t_norm > truncation);
}

void og_cfg_combine(float *out, const float *pos, const float *neg, int64_t n, float w,
                    float normalization)
{
    double pos_sq = 0.0, out_sq = 0.0;
#pragma omp parallel for reduction(+ : pos_sq, out_sq) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float p = pos[i], d = p - neg[i];
        float o = p + w * d;
        out[i] = o;
        pos_sq += (double)p * p;
        out_sq += (double)o * o;
    }
    if (!(normalization > 0.0f))
        return;
    float pos_norm = (float)sqrt(pos_sq), out_norm = (float)sqrt(out_sq);
    float max_norm = pos_norm * normalization;
    if (out_norm > max_norm) {
        float ratio = max_norm / out_norm;
#pragma omp parallel for if (n > 65536)
        for (int64_t i = 0; i < n; i++)
            out[i] = out[i] * ratio;
    }
}
