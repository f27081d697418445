/* The og_ctx behind the public API, shared by the loader (omnigen.c) and the Z-Image generation
 * (zimage_pipeline.c). Not part of the public interface. */
#ifndef OG_PIPELINE_INTERNAL_H
#define OG_PIPELINE_INTERNAL_H

#include <stdbool.h>

#include "dit/zimage.h"
#include "io/diffusers.h"
#include "pipeline/dit_gpu.h"
#include "pipeline/omnigen.h"
#include "samplers/flowmatch.h"
#include "text/bpe.h"

typedef struct og_vae og_vae;
typedef struct og_qwen3 og_qwen3;

struct og_ctx {
    char *root;
    og_load_params lp;
    og_model_dir *md;
    og_zimage_config dit_cfg;
    char dit_dir[4096], vae_dir[4096], text_dir[4096], tok_dir[4096], sched_path[4096];
    int vae_scale;       /* image pixels per latent pixel */
    int latent_channels; /* = the transformer's in_channels */
    og_bpe *tok;         /* loaded with the folder: validation counts prompt tokens */
    og_flowmatch_config sched;
    /* Loaded on the first og_generate, after its parameters were validated. */
    og_qwen3 *text;
    og_zimage *dit;
    og_dit_gpus *gpus; /* --backend cuda: the transformer's weights on each GPU */
    og_vae *vae;
};

/* Token ids (malloc'd) of the prompt (branch 0) or the negative prompt (branch 1, "" when
 * none), chat template applied, truncated to p->max_sequence_length. */
og_status og_prompt_ids(const og_ctx *ctx, const og_gen_params *p, int branch, int32_t **ids,
                        int *n);

/* Loads the weights once (no-op when loaded). */
og_status og_ctx_load_weights(og_ctx *ctx);

#endif
