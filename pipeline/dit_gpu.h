/* The pipeline's DiT on GPUs (--backend cuda): the transformer's weights uploaded once per GPU of
 * --devices at load (under MPI the list is narrowed to this process's GPU), then per generation one context per
 * rank. Ranks map to the listed GPUs round-robin; when every rank has a GPU of its own they
 * exchange through NCCL, otherwise (several ranks on one GPU share its weights) through the
 * in-process device communicator; parallel/plan.h decides. In a build without CUDA every call
 * fails with OG_ERR_UNSUPPORTED naming the rebuild (without NCCL only the NCCL runs do). */
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
/* The GPUs a --devices list names (NULL: the visible ones), without touching them. */
og_status og_dit_gpus_listed(const char *devices, int *count);
/* The device number of list entry pick % count and its PCI bus id ("0000:3b:00.0"): which
 * physical GPU it is, however CUDA_VISIBLE_DEVICES numbers it, so that the processes of a node
 * can tell whether they share one. */
og_status og_dit_gpus_pick(const char *devices, int pick, int *device, char *bus, int cap);
/* devices: a --devices list ("0,1"), or NULL for every visible GPU. */
og_status og_dit_gpus_load(og_dit_gpus **out, const og_zimage *m, const char *devices);
void og_dit_gpus_free(og_dit_gpus *g);

/* og_run_ranks with the in-process communicator moving device memory. */
og_status og_dit_gpus_run_ranks(og_dit_gpus *g, int world, int threads_per_rank, og_rank_fn fn,
                                void *arg);
/* fn with a NCCL world bootstrapped over `host` (a host communicator: MPI, or in-process), on
 * loaded GPU host->rank % count. Collective over host. */
og_status og_dit_gpus_nccl(og_dit_gpus *g, og_comm *host, og_rank_fn fn, void *arg);
/* og_run_ranks with one thread per GPU, exchanging through NCCL (world <= loaded GPUs). */
og_status og_dit_gpus_run_ranks_nccl(og_dit_gpus *g, int world, int threads_per_rank,
                                     og_rank_fn fn, void *arg);

/* This rank's context on GPU devices[world_rank % count], its arena reserved for the request. */
og_status og_dit_rank_start(og_dit_rank **out, og_dit_gpus *g, og_sp *sp, int64_t lat_h,
                            int64_t lat_w, int64_t cap_max);
og_status og_dit_rank_forward(og_dit_rank *r, og_sp *sp, const float *latents, int64_t lat_h,
                              int64_t lat_w, float t_model, const float *cap_feats,
                              int64_t cap_len, float *out);
void og_dit_rank_free(og_dit_rank *r);

#endif
