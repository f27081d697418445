/* The pipeline's VAE decode on a GPU (--backend cuda): the decoder's weights uploaded as bf16 to
 * the first GPU of --devices at the first decode and kept, each decode's activations reserved
 * for that decode only. In a build without CUDA it fails with OG_ERR_UNSUPPORTED naming the
 * rebuild (og_load_dir refuses --backend cuda there before it could be called). */
#ifndef OG_PIPELINE_VAE_GPU_H
#define OG_PIPELINE_VAE_GPU_H

#include <stdint.h>

#include "core/error.h"
#include "vae/autoencoder_kl.h"

typedef struct og_vae_gpu og_vae_gpu;

/* og_vae_decode(vae, latents, h, w, rgb, NULL) on the GPU: rgb [3, f*h, f*w] host f32 in [0, 1].
 * *gpu NULL uploads the weights first (to list entry 0 of devices, a --devices list, or GPU 0
 * when NULL) and keeps them there for the next call. Decodes in one piece. When the GPU cannot
 * take the decode (OG_ERR_OOM: its memory, with the bytes needed and free; OG_ERR_UNSUPPORTED:
 * past cuDNN's size limit, or no cuDNN), it logs that as a warning and decodes on the CPU as
 * --backend cpu does (tiled above 1024x1024, using vae's scratch), so the denoised latents are
 * not lost. */
og_status og_vae_gpu_decode(og_vae_gpu **gpu, og_vae *vae, const char *devices,
                            const float *latents, int64_t h, int64_t w, float *rgb);
void og_vae_gpu_free(og_vae_gpu *gpu);

#endif
