/* The AutoencoderKL decoder (the FLUX VAE that Z-Image uses), as diffusers computes it, with
 * optional tiled decoding for large images.
 *
 *     og_vae *vae;
 *     OG_TRY(og_vae_load(&vae, "/models/Z-Image-Turbo/vae"));
 *     int64_t f = og_vae_scale_factor(vae);                    // 8: image = latent * f
 *     float *rgb = malloc(sizeof(float) * 3 * (f * h) * (f * w));
 *     og_vae_tiling tiling = OG_VAE_TILING_DEFAULT;            // tiles only above tiling.tile
 *     OG_TRY(og_vae_decode(vae, latents, h, w, rgb, &tiling)); // latents [C, h, w] as sampled
 *     og_vae_free(vae);
 *
 * og_vae_decode takes the sampler's latents and applies the pipeline's
 * `latents / scaling_factor + shift_factor` itself, then post_quant_conv (if the config has one),
 * the decoder (conv_in, mid block resnet/attention/resnet, up blocks of layers_per_block+1
 * resnets with a nearest x2 upsample + conv on all but the last, GroupNorm, SiLU, conv_out) and
 * VaeImageProcessor's `clamp(x / 2 + 0.5, 0, 1)`. rgb is [3, f*h, f*w] in [0, 1];
 * og_image_to_u8 (io/image.h) turns it into the bytes the reference pipeline saves.
 *
 * Scratch memory is one arena owned by the og_vae, sized from the resolution (or the tile) at
 * the first decode of that size and reused after; decode is not thread-safe per og_vae.
 *
 * Tiling. The latent is cut into tile x tile squares that share `overlap` latent pixels with
 * their neighbours (spread evenly so the last tile ends at the border); each tile is decoded on
 * its own and the overlaps are blended with linear ramps. GroupNorm statistics and the mid-block
 * attention are global over the image, so a tiled decode differs from an untiled one: see
 * docs/outputs.md for the measured difference at the default setting. */
#ifndef OG_VAE_AUTOENCODER_KL_H
#define OG_VAE_AUTOENCODER_KL_H

#include <stdint.h>

#include "core/error.h"

typedef struct og_vae og_vae;

typedef struct {
    int64_t tile;    /* tile side in latent pixels; tiling happens only when h or w exceeds it */
    int64_t overlap; /* latent pixels shared by neighbouring tiles, 0 <= overlap <= tile / 2 */
} og_vae_tiling;

/* 128 latent pixels = 1024 image pixels: images up to 1024x1024 decode untiled (exactly as the
 * reference); larger ones go by 1024-pixel tiles overlapping by 256 pixels. */
#define OG_VAE_TILING_DEFAULT {.tile = 128, .overlap = 32}

/* Reads <vae_dir>/config.json (class AutoencoderKL) and the weights in that folder. */
og_status og_vae_load(og_vae **out, const char *vae_dir);
void og_vae_free(og_vae *vae);

/* Image pixels per latent pixel: 2^(len(block_out_channels) - 1). */
int64_t og_vae_scale_factor(const og_vae *vae);
/* The latent channel count the decoder expects (config latent_channels). */
int64_t og_vae_latent_channels(const og_vae *vae);

/* latents [C, h, w] -> rgb [3, f*h, f*w] in [0, 1]. tiling NULL decodes in one piece. */
og_status og_vae_decode(og_vae *vae, const float *latents, int64_t h, int64_t w, float *rgb,
                        const og_vae_tiling *tiling);

#endif
