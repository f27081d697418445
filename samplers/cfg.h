/* Classifier-free guidance as the Z-Image pipeline applies it: when it is active at a step, the
 * prediction pos + w * (pos - neg) in fp32, optionally renormalised so its norm is at most
 * `normalization` times the positive prediction's norm (the pipeline's cfg_normalization). */
#ifndef OG_SAMPLERS_CFG_H
#define OG_SAMPLERS_CFG_H

#include <stdbool.h>
#include <stdint.h>

/* Whether the step at scheduler timestep t runs the negative branch: guidance > 0, and, when
 * truncation <= 1, (1000 - t) / 1000 <= truncation (the pipeline's cfg_truncation; its default
 * 1.0 never truncates). */
bool og_cfg_active(float guidance, float timestep, float truncation);

/* out[i] = pos[i] + w * (pos[i] - neg[i]) in fp32; out may alias pos or neg. With
 * normalization > 0 (the pipeline's cfg_normalization, 0 = off), out is scaled by
 * normalization * |pos| / |out| when |out| exceeds normalization * |pos| (L2 norms over all n). */
void og_cfg_combine(float *out, const float *pos, const float *neg, int64_t n, float w,
                    float normalization);

#endif
