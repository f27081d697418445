/* The AutoencoderKL decoder (FLUX / Z-Image VAE) on a GPU: vae/autoencoder_kl.c's math with bf16
 * weights and activations (fp32 accumulation, f32 biases and norm parameters), decoded in one
 * piece. Host f32 latents in, host f32 rgb out, in the layout of og_vae_decode (tiling NULL).
 *
 *     og_vae_cuda *g;
 *     OG_TRY(og_vae_cuda_upload(&g, 0, vae));             // weights as bf16 on GPU 0, once
 *     OG_TRY(og_vae_cuda_decode(g, latents, h, w, rgb));  // rgb [3, f*h, f*w] in [0, 1]
 *     og_vae_cuda_free(g);
 *
 * Each decode makes a context of its own on the weights' GPU and reserves the plan's work bytes
 * there (og_vae_device_plan_for in vae/autoencoder_kl_internal.h) before any work; a shortfall
 * fails with og_cuda_reserve's message naming the bytes needed and free (OG_ERR_OOM), and an
 * image whose largest feature map passes 2^31 elements (cuDNN's limit; about 4096x4096 with the
 * FLUX VAE) with OG_ERR_UNSUPPORTED, both before any work. There is no tiling: the
 * GroupNorm statistics and the mid-block attention are global over the image, as in the
 * reference's untiled decode. */
#ifndef OG_CUDA_VAE_CUDA_H
#define OG_CUDA_VAE_CUDA_H

#include "core/cuda/cuda_backend.h"
#include "vae/autoencoder_kl.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct og_vae_cuda og_vae_cuda;

/* Uploads every weight of v to GPU `device` in a context of its own, reserved to exactly the
 * plan's weight bytes. v may be freed afterwards (the record keeps its configuration). A decoder
 * whose mid-block attention is wider than 512 channels (or odd) is OG_ERR_UNSUPPORTED. */
og_status og_vae_cuda_upload(og_vae_cuda **out, int device, const og_vae *v);
void og_vae_cuda_free(og_vae_cuda *g);
int og_vae_cuda_device(const og_vae_cuda *g);

/* latents [C, h, w] as sampled -> rgb [3, f*h, f*w] in [0, 1] (host memory both). */
og_status og_vae_cuda_decode(og_vae_cuda *g, const float *latents, int64_t h, int64_t w,
                             float *rgb);

#ifdef __cplusplus
}
#endif

#endif
