/* Qwen-Image's latents between the transformer and the VAE, as QwenImagePipeline (diffusers
 * 0.42) moves them: the transformer works on packed tokens [N, 4c] (2x2 patches, channel order
 * (c, ph, pw), tokens row-major over the (h/2) x (w/2) patch grid); the VAE
 * (AutoencoderKLQwenImage, loaded by og_wan_vae_load) decodes latents [c, 1, h, w].
 *
 *     int64_t h, w;
 *     OG_TRY(og_qwenimage_latent_size(1024, 1024, og_wan_vae_scale_factor(vae), &h, &w));
 *     og_qwenimage_pack(tokens, noise, 16, h, w);      // prepare_latents: [16, h, w] -> tokens
 *     ... sample ...
 *     OG_TRY(og_qwenimage_decode(vae, tokens, n, 64, h, w, image)); // [3, f*h, f*w] in [0, 1]
 *
 * The pipeline's decode step: _unpack_latents, then latents / (1 / latents_std) + latents_mean
 * (og_wan_vae_unscale), vae.decode(...)[0][:, :, 0] (the one frame) and
 * VaeImageProcessor.postprocess's clamp(x * 0.5 + 0.5, 0, 1); og_image_to_u8 (io/image.h) gives
 * the bytes of its PIL output. */
#ifndef OG_VAE_QWENIMAGE_LATENTS_H
#define OG_VAE_QWENIMAGE_LATENTS_H

#include <stdint.h>

#include "core/error.h"
#include "vae/autoencoder_kl_wan.h"

/* The latent size of a height x width image, as prepare_latents and _unpack_latents compute it:
 * 2 * (height // (2 * vae_scale)) (even, so that 2x2 patches tile it). OG_ERR_INVALID_ARG when
 * that is 0 or an argument is below 1. */
og_status og_qwenimage_latent_size(int64_t height, int64_t width, int64_t vae_scale, int64_t *h,
                                   int64_t *w);

/* _pack_latents: latents [c, h, w] (= [c, 1, h, w]) -> tokens [(h/2) * (w/2), 4c], where token
 * (i, j) channel c*4 + ph*2 + pw holds latents[c, 2i + ph, 2j + pw]. OG_ERR_INVALID_ARG for an
 * odd or non-positive h or w, or c < 1. */
og_status og_qwenimage_pack(float *tokens, const float *latents, int64_t c, int64_t h, int64_t w);

/* _unpack_latents, the inverse: tokens [n, channels] -> latents [channels / 4, 1, h, w].
 * OG_ERR_INVALID_ARG unless h and w are even and positive, channels is a positive multiple of 4
 * and n = (h/2) * (w/2). */
og_status og_qwenimage_unpack(float *latents, const float *tokens, int64_t n, int64_t channels,
                              int64_t h, int64_t w);

/* The pipeline's decode of the sampler's tokens [n, channels] (channels = 4 * z_dim) for h x w
 * latents: image [3, f*h, f*w] in [0, 1] (f = og_wan_vae_scale_factor). */
og_status og_qwenimage_decode(og_wan_vae *vae, const float *tokens, int64_t n, int64_t channels,
                              int64_t h, int64_t w, float *image);

#endif
