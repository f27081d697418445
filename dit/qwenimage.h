/* The Qwen-Image transformer (diffusers QwenImageTransformer2DModel, a dual-stream MMDiT) on the
 * CPU in fp32, serial or sequence-parallel under an og_sp.
 *
 *     og_qwenimage_config c;
 *     OG_TRY(og_qwenimage_read_config("/models/Qwen-Image/transformer", &c)); // no weights read
 *     OG_TRY(og_qwenimage_check_layout(&c, &pcfg, hp, wp, text_len, world));   // before loading
 *     og_qwenimage *m;
 *     OG_TRY(og_qwenimage_load(&m, "/models/Qwen-Image/transformer"));
 *     og_arena scratch;
 *     OG_TRY(og_arena_init(&scratch, og_qwenimage_scratch_bytes(m, hp, wp, text_len, sp)));
 *     for each step:
 *         OG_TRY(og_qwenimage_forward(m, sp, tokens, hp, wp, sigmas[i], text, mask, text_len,
 *                                     velocity, &scratch));
 *     og_qwenimage_free(m);
 *
 * tokens are the pipeline's packed latents [hp·wp, in_channels] for an hp × wp token grid (a
 * 2hp × 2wp latent with patch 2; rows in (y, x) order, each row the (c, ph, pw) patch vector):
 * the model's img_shapes is [(1, hp, wp)]. text is the text encoder's [text_len, joint_attention_dim]
 * output; mask [text_len] (1 = token, 0 = padding) or NULL for all tokens, as the reference's
 * encoder_hidden_states_mask. The timestep is what the pipeline passes the model (σ in [0, 1],
 * the reference scales it by 1000). The output [hp·wp, out_channels·patch²] is the model's
 * prediction in the same packed layout. Weights are read by their diffusers key names
 * (transformer_blocks.{i}.attn.to_q, ...) from single or sharded safetensors in their stored
 * dtype (f32, bf16, f16). Variants the reference builds differently (zero_cond_t,
 * use_additional_t_cond, use_layer3d_rope, guidance_embeds) are refused.
 *
 * Sequence parallelism: every rank gets the full tokens and text; it embeds and runs only its
 * contiguous shard (og_shard_range) of the image tokens through every image-stream op, while the
 * text stream (txt_in, norms, modulation, MLP, its q/k/v and output projections) runs replicated
 * on every rank. Joint attention is og_sp_attention with the text as its joint tokens (text K/V
 * attended once, the text output complete on every rank), and og_sp_gather_seq collects the
 * output rows so that `out` is complete on every rank. */
#ifndef OG_DIT_QWENIMAGE_H
#define OG_DIT_QWENIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/error.h"
#include "parallel/config.h"
#include "parallel/sp.h"

typedef struct {
    int patch;          /* patch_size: output rows hold out_channels · patch² values */
    int heads, head_dim, dim; /* dim = heads * head_dim */
    int in_channels, out_channels, joint_dim, n_layers;
    int axes[3];        /* axes_dims_rope: head_dim channels rotated by frame, row, column */
} og_qwenimage_config;

typedef struct og_qwenimage og_qwenimage;

/* Reads <transformer_dir>/config.json only. OG_ERR_UNSUPPORTED for variants the implementation
 * does not reproduce, OG_ERR_FORMAT for an inconsistent config (axes not summing to head_dim,
 * ...). */
og_status og_qwenimage_read_config(const char *transformer_dir, og_qwenimage_config *out);

/* hp, wp >= 1 and text_len >= 1 within the reference's 4096-row RoPE tables (max(hp/2, wp/2) +
 * text_len <= 4096, hp, wp <= 8192); OG_ERR_INVALID_ARG naming the limit otherwise. */
og_status og_qwenimage_check_request(const og_qwenimage_config *c, int64_t hp, int64_t wp,
                                     int64_t text_len);

/* og_qwenimage_check_request, then og_parallel_config_validate on the heads and the hp·wp image
 * tokens. world_available <= 0 skips the world-size check. */
og_status og_qwenimage_check_layout(const og_qwenimage_config *c, const og_parallel_config *pc,
                                    int64_t hp, int64_t wp, int64_t text_len,
                                    int world_available);

og_status og_qwenimage_load(og_qwenimage **out, const char *transformer_dir);
void og_qwenimage_free(og_qwenimage *m);
const og_qwenimage_config *og_qwenimage_get_config(const og_qwenimage *m);

/* Bytes of scratch one og_qwenimage_forward needs for this request and layout (sp NULL =
 * serial), og_sp_attention's and every op's temporaries included, for any mask; 0 for a request
 * og_qwenimage_check_request refuses. */
size_t og_qwenimage_scratch_bytes(const og_qwenimage *m, int64_t hp, int64_t wp,
                                  int64_t text_len, og_sp *sp);

/* One forward. tokens [hp·wp, in_channels], text [text_len, joint_dim] and mask (or NULL) are
 * complete on every rank; out [hp·wp, out_channels·patch²] is complete on every rank on return.
 * Scratch is taken from `scratch` and released before return. */
og_status og_qwenimage_forward(og_qwenimage *m, og_sp *sp, const float *tokens, int64_t hp,
                               int64_t wp, float timestep, const float *text,
                               const uint8_t *mask, int64_t text_len, float *out,
                               og_arena *scratch);

#endif
