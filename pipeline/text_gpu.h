/* The pipeline's text encoder on a GPU (--backend cuda): the prompts of one generation encoded on
 * the first GPU of --devices. In a build without CUDA it fails with OG_ERR_UNSUPPORTED naming the
 * rebuild. */
#ifndef OG_PIPELINE_TEXT_GPU_H
#define OG_PIPELINE_TEXT_GPU_H

#include <stdint.h>

#include "core/error.h"
#include "text/qwen3.h"

/* out[i] [n[i], og_qwen3_hidden(te)] host f32 = og_qwen3_encode(te, ids[i], n[i]) on the GPU, for
 * i < count. devices: a --devices list ("2,3" uses GPU 2) or NULL (GPU 0). The encoder's weights
 * (bf16) and activations for the longest prompt are reserved and uploaded for this call and given
 * back before it returns: the DiT's reservations, made after it, see the GPU as before. */
og_status og_text_gpu_encode(const og_qwen3 *te, const char *devices, int count,
                             const int32_t *const *ids, const int *n, float *const *out);

#endif
