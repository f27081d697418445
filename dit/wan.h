/* The Wan2.1 text-to-video transformer (diffusers WanTransformer3DModel: 1.3B, 14B) on the CPU in
 * fp32, serial or sequence-parallel under an og_sp.
 *
 *     og_wan_config c;
 *     OG_TRY(og_wan_read_config("/models/Wan2.1-T2V-1.3B/transformer", &c)); // no weights read
 *     OG_TRY(og_wan_check_layout(&c, &pcfg, F, H, W, text_len, world));        // before loading
 *     og_wan *m;
 *     OG_TRY(og_wan_load(&m, "/models/Wan2.1-T2V-1.3B/transformer"));
 *     og_arena scratch;
 *     OG_TRY(og_arena_init(&scratch, og_wan_scratch_bytes(m, F, H, W, text_len, sp)));
 *     for each step:
 *         OG_TRY(og_wan_forward(m, sp, latents, F, H, W, timesteps[i], text, text_len,
 *                               velocity, &scratch));
 *     og_wan_free(m);
 *
 * Latents are [in_channels, F, H, W] (batch 1); text is the encoder's [text_len, text_dim] output
 * (the pipeline pads it to 512 tokens with zeros; every row is attended, as in the reference);
 * the timestep is the scheduler's, unscaled. The output [out_channels, F, H, W] is the model's
 * flow prediction. Weights are read by their diffusers key names (blocks.{i}.attn1.to_q, ...)
 * from single or sharded safetensors in their stored dtype (f32, bf16, f16: the products use the
 * exactly widened weights). Image-to-video checkpoints (image_dim / added_kv_proj_dim set) are
 * refused.
 *
 * Sequence parallelism: every rank gets the full latents and text, embeds and runs only its
 * contiguous shard (og_shard_range) of the F'·H'·W' video tokens through every linear, norm and
 * FFN, runs self-attention through og_sp_attention (Ulysses, Ring, hybrid, UAA), cross-attention
 * locally against the whole text (each rank projects the text's K/V itself: no exchange), and
 * gathers the projected output so that `out` is complete on every rank. */
#ifndef OG_DIT_WAN_H
#define OG_DIT_WAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "parallel/config.h"
#include "parallel/sp.h"

typedef struct {
    int patch[3];       /* (t, h, w) kernel = stride of the patch embedding */
    int heads, head_dim, dim; /* dim = heads * head_dim */
    int in_channels, out_channels;
    int text_dim, freq_dim, ffn_dim, n_layers;
    bool cross_attn_norm; /* norm2 (affine LayerNorm) before cross-attention, else identity */
    float eps;
    int rope_max_seq_len; /* RoPE table rows: the most tokens along any axis */
    int rope_dims[3];     /* head_dim channels rotated by frame, row, column position */
} og_wan_config;

typedef struct og_wan og_wan;

/* Reads <transformer_dir>/config.json only. OG_ERR_UNSUPPORTED for image-to-video configs,
 * OG_ERR_FORMAT for a config this implementation cannot reproduce (odd head_dim, ...). */
og_status og_wan_read_config(const char *transformer_dir, og_wan_config *out);

/* Token grid of one forward: latents [C, F, H, W] -> F' x H' x W' tokens. */
typedef struct {
    int64_t f, h, w; /* tokens along each axis */
    int64_t n;       /* f * h * w */
} og_wan_tokens;

/* F, H, W must be positive multiples of the patch, each token count at most rope_max_seq_len,
 * text_len at least 1; OG_ERR_INVALID_ARG naming the fix otherwise. */
og_status og_wan_tokens_for(const og_wan_config *c, int64_t F, int64_t H, int64_t W,
                            int64_t text_len, og_wan_tokens *out);

/* Checks a request and parallel layout before any weight is loaded: og_wan_tokens_for, then
 * og_parallel_config_validate on the heads and the video tokens. world_available <= 0 skips the
 * world-size check. */
og_status og_wan_check_layout(const og_wan_config *c, const og_parallel_config *pc, int64_t F,
                              int64_t H, int64_t W, int64_t text_len, int world_available);

og_status og_wan_load(og_wan **out, const char *transformer_dir);
void og_wan_free(og_wan *m);
const og_wan_config *og_wan_get_config(const og_wan *m);

/* Bytes of scratch one og_wan_forward needs for this request and layout (sp NULL = serial),
 * og_sp_attention's and every op's temporaries included; 0 for a request og_wan_tokens_for
 * refuses. */
size_t og_wan_scratch_bytes(const og_wan *m, int64_t F, int64_t H, int64_t W, int64_t text_len,
                            og_sp *sp);

/* One forward. latents [in_channels, F, H, W] and text [text_len, text_dim] are complete on
 * every rank; out [out_channels, F, H, W] is complete on every rank on return. Scratch is taken
 * from `scratch` and released before return. */
og_status og_wan_forward(og_wan *m, og_sp *sp, const float *latents, int64_t F, int64_t H,
                         int64_t W, float timestep, const float *text, int64_t text_len,
                         float *out, og_arena *scratch);

#endif
