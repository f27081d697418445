/* The Z-Image transformer on a GPU: the math of dit/zimage.c with bf16 weights and activations
 * (fp32 accumulation, f32 norm weights, modulation and RoPE tables), serial or under the same
 * sequence-parallel layouts. The host keeps the tokenizer-side work (patchify, positions, the
 * time embedder's two tiny GEMVs and the final layer's scale) and gets the f32 velocity back;
 * every block's adaLN modulation is one GEMV on the device (the stacked adaLN weights).
 *
 *     og_cuda_ctx *wctx;                                   // one per GPU: holds the weights
 *     OG_TRY(og_cuda_init(dev, &wctx));
 *     og_zimage_cuda *w;
 *     OG_TRY(og_zimage_cuda_upload(&w, wctx, m));          // reserves exactly the weights' bytes
 *     og_cuda_ctx *rank;                                   // one per rank (may share the GPU)
 *     OG_TRY(og_cuda_init(dev, &rank));
 *     OG_TRY(og_cuda_reserve(rank, og_zimage_cuda_work_bytes(m, lat_h, lat_w, cap_max, sp),
 *                            "Z-Image 1024x1024"));
 *     OG_TRY(og_zimage_cuda_forward(rank, w, sp, latents, lat_h, lat_w, t, cap, cap_len, out));
 *
 * With sp of more than one rank, the og_sp must sit on a device communicator (the in-process
 * world with og_cuda_inproc_copy, or NCCL); latents, caption and out are host f32 as for
 * og_zimage_forward and complete on every rank. */
#ifndef OG_CUDA_ZIMAGE_CUDA_H
#define OG_CUDA_ZIMAGE_CUDA_H

#include "core/cuda/cuda_backend.h"
#include "dit/zimage.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct og_zimage_cuda og_zimage_cuda;

/* Device bytes every weight of m takes as bf16 (vectors f32), with the arena's alignment. */
size_t og_zimage_cuda_weight_bytes(const og_zimage *m);
/* Reserves og_zimage_cuda_weight_bytes in ctx's arena (a fresh context: the reservation is its
 * only one) and uploads every weight. The weights serve every context on the same GPU; ctx must
 * outlive them. m must outlive them too (its time embedder runs on the host). */
og_status og_zimage_cuda_upload(og_zimage_cuda **out, og_cuda_ctx *ctx, const og_zimage *m);
void og_zimage_cuda_free(og_zimage_cuda *w); /* the host record; the memory is ctx's */
int og_zimage_cuda_device(const og_zimage_cuda *w);

/* Device bytes one rank's forward takes from its context's arena for this request and layout,
 * og_sp_attention's scratch included. */
size_t og_zimage_cuda_work_bytes(const og_zimage *m, int64_t lat_h, int64_t lat_w,
                                 int64_t cap_len, og_sp *sp);

/* og_zimage_forward on the GPU of ctx, which must be the weights' GPU. */
og_status og_zimage_cuda_forward(og_cuda_ctx *ctx, const og_zimage_cuda *w, og_sp *sp,
                                 const float *latents, int64_t lat_h, int64_t lat_w,
                                 float t_model, const float *cap_feats, int64_t cap_len,
                                 float *out);

#ifdef __cplusplus
}
#endif

#endif
