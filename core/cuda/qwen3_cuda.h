/* The Qwen3 text encoder on a GPU: text/qwen3.c's forward up to hidden_states[-2] with bf16
 * weights and activations (fp32 accumulation, f32 norm weights and RoPE tables), in a context of
 * its own whose one reservation holds the weights and the activations for max_tokens tokens.
 *
 *     og_qwen3_cuda *g;
 *     OG_TRY(og_qwen3_cuda_load(&g, te, 0, 512));   // te from og_qwen3_load; GPU 0
 *     OG_TRY(og_qwen3_cuda_encode(g, ids, n, out));  // out[n, hidden] host f32, as og_qwen3_encode
 *     og_qwen3_cuda_free(g);                         // gives all its device memory back
 *
 * The embedding table stays on the host (the prompt's rows are gathered there and uploaded), so
 * te must outlive g. One host thread at a time per encoder, as for any og_cuda_ctx. Qwen3 with
 * hidden_states[-2] only: a Qwen2.5-VL encoder (Qwen-Image) is refused by og_qwen3_gpu_plan_for
 * with OG_ERR_UNSUPPORTED and runs on the CPU. */
#ifndef OG_CUDA_QWEN3_CUDA_H
#define OG_CUDA_QWEN3_CUDA_H

#include "core/cuda/cuda_backend.h"
#include "text/qwen3.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct og_qwen3_cuda og_qwen3_cuda;

/* Starts a context on `device`, reserves og_qwen3_gpu_plan_for(te, max_tokens) (a shortfall
 * fails with OG_ERR_OOM naming the bytes needed and free) and uploads the weights. */
og_status og_qwen3_cuda_load(og_qwen3_cuda **out, const og_qwen3 *te, int device,
                             int max_tokens);
void og_qwen3_cuda_free(og_qwen3_cuda *g);
int og_qwen3_cuda_device(const og_qwen3_cuda *g);
/* The context (for og_cuda_peak_bytes in a report). */
og_cuda_ctx *og_qwen3_cuda_ctx(og_qwen3_cuda *g);

/* out[n, hidden] = hidden_states[-2] for ids[0..n), host f32. OG_ERR_INVALID_ARG for n < 1, n
 * over the planned max_tokens, or an id outside the vocabulary. */
og_status og_qwen3_cuda_encode(og_qwen3_cuda *g, const int32_t *ids, int n, float *out);

#ifdef __cplusplus
}
#endif

#endif
