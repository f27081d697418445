/* The pipeline's DiT on GPUs (--backend cuda): the transformer's weights uploaded once per GPU of
 * --devices at load, then per generation one context per rank (ranks map to the listed GPUs
 * round-robin; several ranks on one GPU share its weights and exchange through the in-process
 * device communicator). Text encoder and VAE stay on the CPU. In a build without CUDA every
 * call fails with OG_ERR_UNSUPPORTED naming the rebuild. */
#ifndef OG_PIPELINE_DIT_GPU_H
#define OG_PIPELINE_DIT_GPU_H

#include "dit/zimage.h"
#include "parallel/sp.h"

typedef struct og_dit_gpus og_dit_gpus;
typedef struct og_dit_rank og_dit_rank;

/* Checks that the GPUs of a --devices list (NULL: all) can be used, without touching them:
 * OG_ERR_DEVICE without a GPU, OG_ERR_INVALID_ARG for a bad list, OG_ERR_UNSUPPORTED without
 * CUDA. og_load_dir calls it so that a wrong backend fails before any weight is read. */
og_status og_dit_gpus_check(const char *devices);
/* devices: a --devices list ("0,1"), or NULL for every visible GPU. */
og_status og_dit_gpus_load(og_dit_gpus **out, const og_zimage *m, const char *devices);
void og_dit_gpus_free(og_dit_gpus *g);

/* og_run_ranks with the in-process communicator moving device memory. */
og_status og_dit_gpus_run_ranks(og_dit_gpus *g, int world, int threads_per_rank, og_rank_fn fn,
                                void *arg);

/* This rank's context on GPU devices[world_rank % count], its arena reserved for the request. */
og_status og_dit_rank_start(og_dit_rank **out, og_dit_gpus *g, og_sp *sp, int64_t lat_h,
                            int64_t lat_w, int64_t cap_max);
og_status og_dit_rank_forward(og_dit_rank *r, og_sp *sp, const float *latents, int64_t lat_h,
                              int64_t lat_w, float t_model, const float *cap_feats,
                              int64_t cap_len, float *out);
void og_dit_rank_free(og_dit_rank *r);

#endif
