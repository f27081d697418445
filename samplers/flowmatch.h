/* FlowMatch Euler sampling as diffusers' FlowMatchEulerDiscreteScheduler computes it: the sigma
 * schedule (static shift, dynamic exponential/linear shift with mu, shift_terminal, custom
 * sigmas, invert_sigmas), the final sigma appended, timesteps = sigma * num_train_timesteps, and
 * the Euler step x <- x + (sigma[i+1] - sigma[i]) * v in fp32. Each value is rounded as the
 * reference rounds it (numpy float64 on its default path, float32 when given sigmas), so the
 * schedule matches it to the last bit in the cases the tests cover.
 *
 *     og_flowmatch_config fc;
 *     OG_TRY(og_flowmatch_config_read("model/scheduler/scheduler_config.json", &fc));
 *     float in[N], sigmas[N + 1], timesteps[N];
 *     og_flowmatch_linspace(in, 1.0f, 1.0f / N, N);          // the Z-Image pipeline's sigmas
 *     double mu = og_flowmatch_calculate_shift(&fc, image_tokens);
 *     OG_TRY(og_flowmatch_set_timesteps(&fc, N, in, &mu, sigmas, timesteps));
 *     for (int i = 0; i < N; i++) {
 *         v = model(x, timesteps[i]);
 *         og_flowmatch_step(sigmas, i, x, v, n, true);       // Z-Image negates the model output
 *     }
 */
#ifndef OG_SAMPLERS_FLOWMATCH_H
#define OG_SAMPLERS_FLOWMATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

typedef enum { OG_TIME_SHIFT_EXPONENTIAL = 0, OG_TIME_SHIFT_LINEAR } og_time_shift_type;

typedef struct {
    int num_train_timesteps;
    double shift;              /* static shift, used when use_dynamic_shifting is false */
    bool use_dynamic_shifting; /* then set_timesteps needs mu */
    double base_shift, max_shift;
    int64_t base_image_seq_len, max_image_seq_len;
    bool invert_sigmas;
    double shift_terminal;     /* 0: none (null in the JSON) */
    og_time_shift_type time_shift_type;
} og_flowmatch_config;

/* The scheduler's constructor defaults. */
#define OG_FLOWMATCH_CONFIG_DEFAULT                                                            \
    ((og_flowmatch_config){.num_train_timesteps = 1000, .shift = 1.0,                          \
                           .use_dynamic_shifting = false, .base_shift = 0.5, .max_shift = 1.15, \
                           .base_image_seq_len = 256, .max_image_seq_len = 4096,               \
                           .invert_sigmas = false, .shift_terminal = 0.0,                      \
                           .time_shift_type = OG_TIME_SHIFT_EXPONENTIAL})

/* Reads scheduler_config.json. Options this sampler does not implement (use_karras_sigmas,
 * use_exponential_sigmas, use_beta_sigmas, stochastic_sampling set to true) are refused with
 * OG_ERR_UNSUPPORTED; absent keys keep their defaults. */
og_status og_flowmatch_config_read(const char *path, og_flowmatch_config *out);

/* mu for dynamic shifting, linear in the image token count (diffusers' calculate_shift, with the
 * config's base/max shift and sequence lengths), in double as Python computes it. */
double og_flowmatch_calculate_shift(const og_flowmatch_config *c, int64_t image_seq_len);

/* torch.linspace(start, end, n) in float32 as PyTorch's CPU kernel evaluates it (first half from
 * start, second half from end). The Z-Image pipeline's sigmas are linspace(1, 1/N, N). */
void og_flowmatch_linspace(float *out, float start, float end, int n);

/* np.linspace(start, end, n) in float64 (i * step + start, the last element exactly end), each
 * then rounded to float32 as set_timesteps converts given sigmas. QwenImagePipeline's sigmas are
 * this linspace(1, 1/N, N); it can differ from og_flowmatch_linspace in the last bit. */
void og_flowmatch_linspace_f64(float *out, double start, double end, int n);

/* set_timesteps(n, sigmas=custom, mu=*mu): sigmas [n + 1] (the appended 0, or 1 with
 * invert_sigmas) and timesteps [n]. custom_sigmas is [n] or NULL (the default schedule from the
 * training sigmas) and may be the same array as sigmas. mu may be NULL unless
 * use_dynamic_shifting. */
og_status og_flowmatch_set_timesteps(const og_flowmatch_config *c, int n,
                                     const float *custom_sigmas, const double *mu, float *sigmas,
                                     float *timesteps);

/* x[j] <- x[j] + (sigmas[i + 1] - sigmas[i]) * v[j] in fp32, with -v[j] when negate (the Z-Image
 * pipeline's `noise_pred = -noise_pred`). */
void og_flowmatch_step(const float *sigmas, int i, float *x, const float *v, int64_t n,
                       bool negate);

#endif
