/* The Wan2.1 video VAE decoder (diffusers AutoencoderKLWan, and AutoencoderKLQwenImage, which
 * Qwen-Image uses on one frame: vae/qwenimage_latents.h) on the CPU in fp32, as diffusers
 * computes it: one latent frame at a time, each causal 3-D convolution keeping the last two
 * frames of its input from the frames before.
 *
 *     og_wan_vae *vae;
 *     OG_TRY(og_wan_vae_load(&vae, "/models/Wan2.1-T2V-1.3B-Diffusers/vae"));
 *     const int64_t f = og_wan_vae_scale_factor(vae), F = og_wan_vae_frames(vae, t);
 *     og_wan_vae_unscale(vae, z, latents, t, h, w);          // the pipeline's step, see below
 *     float *video = malloc(sizeof(float) * 3 * F * (f * h) * (f * w));
 *     OG_TRY(og_wan_vae_decode(vae, z, 16, t, h, w, video)); // [3, F, f*h, f*w] in [-1, 1]
 *     og_wan_vae_to_frames(frames, video, F, f * h, f * w);  // [F, 3, H, W] in [0, 1]
 *     og_wan_vae_free(vae);
 *
 * Who does what, as in diffusers 0.42: WanPipeline turns the sampler's latents into the VAE's
 * input with `latents / (1 / latents_std) + latents_mean` (per channel, values from the VAE's
 * config): og_wan_vae_unscale. AutoencoderKLWan.decode then runs post_quant_conv, the decoder
 * latent frame by latent frame (conv_in; mid block resnet, per-frame attention, resnet; up blocks
 * of num_res_blocks + 1 residual blocks and a resample; RMS norm, SiLU, conv_out) and clamps to
 * [-1, 1]: og_wan_vae_decode. VideoProcessor.postprocess_video's `x * 0.5 + 0.5` clamped to
 * [0, 1], frame-major: og_wan_vae_to_frames; og_image_to_u8 (io/image.h) on each frame gives the
 * bytes of its PIL path (`export_to_video` on "np" frames truncates instead of rounding).
 *
 * Frames: the first latent frame gives one video frame, every later one 2^n (n = the up blocks
 * with a time upsample, 2 in Wan2.1: F = 1 + 4 (T - 1)).
 *
 * Memory: one arena owned by the og_wan_vae, sized by og_wan_vae_plan_for from the latent size
 * alone (not the frame count): three activation buffers for one latent frame's chunk, the
 * two-frame cache of every causal convolution and the ops' scratch. Decode is not thread-safe per
 * og_wan_vae. Not supported: Wan2.2's residual VAE (is_residual) and patch_size, encoding, tiling. */
#ifndef OG_VAE_AUTOENCODER_KL_WAN_H
#define OG_VAE_AUTOENCODER_KL_WAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct og_wan_vae og_wan_vae;

/* Reads <vae_dir>/config.json (class AutoencoderKLWan, or AutoencoderKLQwenImage: Qwen-Image's
 * VAE, the same decoder with its output channels under `input_channels`) and the decoder's
 * weights (post_quant_conv and decoder.*; the encoder's, if present, are not read). */
og_status og_wan_vae_load(og_wan_vae **out, const char *vae_dir);
void og_wan_vae_free(og_wan_vae *vae);

/* Latent channels (config z_dim). */
int64_t og_wan_vae_z_dim(const og_wan_vae *vae);
/* Video pixels per latent pixel: 2^(len(dim_mult) - 1). */
int64_t og_wan_vae_scale_factor(const og_wan_vae *vae);
/* Video frames decoded from `latent_frames` (>= 1) latent frames. */
int64_t og_wan_vae_frames(const og_wan_vae *vae, int64_t latent_frames);

/* The decode's memory for h x w latents, in bytes (each part rounded up to 64). */
typedef struct {
    size_t buffer;    /* each of the three activation buffers: the largest chunk [t, C, H, W] */
    size_t attention; /* q, k, v of the mid-block attention for one frame */
    size_t caches;    /* the two-frame caches of all causal convolutions */
    size_t scratch;   /* the largest op scratch */
    size_t total;     /* the arena: all of the above */
} og_wan_vae_plan;

/* OG_ERR_INVALID_ARG for a latent size below 1 or above 65536. */
og_status og_wan_vae_plan_for(const og_wan_vae *vae, int64_t h, int64_t w, og_wan_vae_plan *out);

/* The pipeline's unscale: z = latents / (1 / std[c]) + mean[c] in f32, over [z_dim, t, h, w]. */
void og_wan_vae_unscale(const og_wan_vae *vae, float *z, const float *latents, int64_t t,
                        int64_t h, int64_t w);

/* z [c, t, h, w] (the VAE's input, c must be z_dim) -> video [3, F, f*h, f*w] in [-1, 1]. */
og_status og_wan_vae_decode(og_wan_vae *vae, const float *z, int64_t c, int64_t t, int64_t h,
                            int64_t w, float *video);

/* video [3, F, H, W] in [-1, 1] -> frames [F, 3, H, W], clamp(x * 0.5 + 0.5, 0, 1). */
void og_wan_vae_to_frames(float *frames, const float *video, int64_t n_frames, int64_t H,
                          int64_t W);

#endif
