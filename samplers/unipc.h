/* UniPC multistep sampling (diffusers' UniPCMultistepScheduler, the Wan2.1 default) for flow
 * matching: the flow-sigma schedule with flow_shift (or dynamic shifting with mu, shift_terminal),
 * the final sigma (zero or sigma_min), the integer timesteps, and the step: the UniC corrector
 * followed by the UniP predictor, B(h) variants bh1/bh2, orders 1..3, with the lower-order warm-up,
 * lower_order_final and disable_corrector. Sample arithmetic is fp32 in the reference's order of
 * operations; the schedule is float64 as numpy computes it, then float32.
 *
 *     og_unipc_config uc;
 *     OG_TRY(og_unipc_config_read("model/scheduler/scheduler_config.json", &uc));
 *     og_unipc s;
 *     OG_TRY(og_unipc_init(&s, &uc, latent_elements));    // all buffers, sized once
 *     OG_TRY(og_unipc_set_timesteps(&s, 50, NULL));
 *     og_unipc_set_begin_index(&s, 0);                     // as WanPipeline does
 *     for (int i = 0; i < s.num_inference_steps; i++) {
 *         v = model(x, s.timesteps[i]);
 *         OG_TRY(og_unipc_step(&s, v, s.timesteps[i], x));  // x <- the next sample
 *     }
 *     og_unipc_free(&s);
 */
#ifndef OG_SAMPLERS_UNIPC_H
#define OG_SAMPLERS_UNIPC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "samplers/flowmatch.h"

#define OG_UNIPC_MAX_ORDER 3
#define OG_UNIPC_MAX_DISABLED 256

typedef enum { OG_UNIPC_BH1 = 0, OG_UNIPC_BH2 } og_unipc_solver_type;
typedef enum { OG_UNIPC_FINAL_ZERO = 0, OG_UNIPC_FINAL_SIGMA_MIN } og_unipc_final_sigma;

typedef struct {
    int num_train_timesteps;
    int solver_order; /* 1..OG_UNIPC_MAX_ORDER */
    og_unipc_solver_type solver_type;
    bool lower_order_final;
    og_unipc_final_sigma final_sigmas_type;
    double flow_shift;         /* static shift, used when use_dynamic_shifting is false */
    bool use_dynamic_shifting; /* then set_timesteps needs mu */
    og_time_shift_type time_shift_type;
    double shift_terminal;     /* 0: none (null in the JSON) */
    int n_disable_corrector;   /* step indices whose following corrector is skipped */
    int64_t disable_corrector[OG_UNIPC_MAX_DISABLED];
} og_unipc_config;

/* The scheduler_config.json of the Wan2.1 diffusers releases (flow_shift 3.0; 5.0 at 720p). */
#define OG_UNIPC_CONFIG_WAN                                                                     \
    ((og_unipc_config){.num_train_timesteps = 1000, .solver_order = 2,                          \
                       .solver_type = OG_UNIPC_BH2, .lower_order_final = true,                  \
                       .final_sigmas_type = OG_UNIPC_FINAL_ZERO, .flow_shift = 3.0,             \
                       .use_dynamic_shifting = false,                                           \
                       .time_shift_type = OG_TIME_SHIFT_EXPONENTIAL, .shift_terminal = 0.0,     \
                       .n_disable_corrector = 0})

/* Reads scheduler_config.json; absent keys take the scheduler's constructor defaults. Only the
 * flow-matching form is implemented: use_flow_sigmas must be true, prediction_type
 * "flow_prediction", predict_x0 true; Karras/exponential/beta sigmas, thresholding, solver_p and
 * solver_order > 3 are refused with OG_ERR_UNSUPPORTED naming the key; bad values (an unknown
 * solver_type, final_sigmas_type, timestep_spacing, order < 1) are OG_ERR_FORMAT. */
og_status og_unipc_config_read(const char *path, og_unipc_config *out);

/* The scheduler state. The public fields are valid after og_unipc_set_timesteps. */
typedef struct {
    og_unipc_config cfg;
    int64_t numel;           /* elements of one sample */
    int num_inference_steps;
    float *sigmas;           /* [num_inference_steps + 1] */
    int64_t *timesteps;      /* [num_inference_steps] */
    /* private */
    int cap_steps;
    int step_index;          /* -1 until the first step */
    int begin_index;         /* -1: the first step finds its index from its timestep */
    int lower_order_nums, this_order;
    bool have_last;
    int n_outputs;           /* converted outputs held, newest at outputs[(head + k) % slots] */
    int head;
    float *outputs;          /* [solver_order + 1][numel]: x0 predictions, one spare slot */
    float *last_sample;      /* [numel] */
} og_unipc;

/* Sizes every buffer for samples of numel floats; no allocation happens after this call except
 * in og_unipc_set_timesteps when it is given more steps than any call before. */
og_status og_unipc_init(og_unipc *s, const og_unipc_config *c, int64_t numel);
void og_unipc_free(og_unipc *s);

/* set_timesteps(n, mu=*mu): sigmas, timesteps, and a reset of the multistep history. mu may be
 * NULL unless use_dynamic_shifting. Refuses (OG_ERR_INVALID_ARG) sigmas outside (0, 1) (a
 * negative flow_shift, say) and a schedule whose steps would
 * produce non-finite values in the reference (a final sigma of zero with solver_type bh1, or with
 * an order > 1 last step when lower_order_final is off: diffusers returns NaN there). */
og_status og_unipc_set_timesteps(og_unipc *s, int n, const double *mu);

/* set_begin_index(i): the first step runs at index i (WanPipeline calls it with 0). Without it the
 * first step takes the index of its timestep as diffusers' index_for_timestep does (the second
 * match if the timestep occurs twice). */
void og_unipc_set_begin_index(og_unipc *s, int begin_index);

/* One scheduler step: sample[numel] is replaced by the previous (less noisy) sample. model_output
 * is the flow prediction at `timestep`. OG_ERR_INVALID_ARG before set_timesteps or past the last
 * step. */
og_status og_unipc_step(og_unipc *s, const float *model_output, int64_t timestep, float *sample);

#endif
