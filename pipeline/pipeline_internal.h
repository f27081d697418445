/* The og_ctx behind the public API, shared by the loader (omnigen.c) and the Z-Image generation
 * (zimage_pipeline.c). Not part of the public interface. */
#ifndef OG_PIPELINE_INTERNAL_H
#define OG_PIPELINE_INTERNAL_H

#include <stdbool.h>

#include "dit/zimage.h"
#include "io/diffusers.h"
#include "pipeline/omnigen.h"

typedef struct og_vae og_vae;

struct og_ctx {
    char *root;
    og_load_params lp;
    og_model_dir *md;
    og_zimage_config dit_cfg;
    char dit_dir[4096], vae_dir[4096], text_dir[4096], tok_dir[4096], sched_path[4096];
    int vae_scale;       /* image pixels per latent pixel */
    int latent_channels; /* = the transformer's in_channels */
    /* Loaded on the first og_generate, after its parameters were validated. */
    og_zimage *dit;
    og_vae *vae;
};

/* Every check of og_validate, given the caption's token count (after the chat template and
 * truncation). Touches no weights. */
og_status og_validate_request(const og_ctx *ctx, const og_gen_params *p, int64_t cap_len);

/* Loads the weights once (no-op when loaded). */
og_status og_ctx_load_weights(og_ctx *ctx);

#endif
