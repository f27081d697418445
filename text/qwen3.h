/* Qwen decoder stacks as text encoders, CPU, fp32 activations, weights in their stored dtype:
 * Qwen3 (transformers Qwen3Model, Z-Image) and the text path of Qwen2.5-VL
 * (Qwen2_5_VLForConditionalGeneration, Qwen-Image; its vision tower is never read). One forward
 * with switches read from config.json; the caller picks which hidden state it returns:
 * hidden_states[-2] (ZImagePipeline: the residual stream after the second-to-last layer; the
 * last layer and the final norm never run) or hidden_states[-1] (QwenImagePipeline: the last
 * layer's output after the final RMSNorm, which is what transformers returns as [-1]).
 *
 *     og_qwen3 *te;
 *     OG_TRY(og_qwen3_load(&te, "models/zimage-tiny/text_encoder"));   // hidden_states[-2]
 *     float *emb = malloc((size_t)n * og_qwen3_hidden(te) * sizeof *emb);
 *     OG_TRY(og_qwen3_encode(te, ids, n, emb));     // ids from og_bpe_encode_chat
 *     ...
 *     og_qwen3_free(te);
 *
 * The folder holds config.json and safetensors shards with the checkpoint's names:
 * embed_tokens.weight, layers.{i}.input_layernorm.weight, layers.{i}.self_attn.{q,k,v,o}_proj
 * .weight (and .bias where present), layers.{i}.post_attention_layernorm.weight,
 * layers.{i}.mlp.{gate,up,down}_proj.weight, norm.weight, with no prefix, "model." (as
 * Qwen3ForCausalLM and Qwen2_5_VLForConditionalGeneration save them) or "model.language_model.".
 *
 * model_type qwen3: hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
 * head_dim, intermediate_size, rms_norm_eps, rope_theta or rope_parameters.rope_theta, vocab_size,
 * hidden_act silu, attention_bias (biases on q, k, v and o); per-head RMSNorm on q and k
 * (self_attn.{q,k}_norm.weight).
 * model_type qwen2_5_vl: the same keys, read from text_config when the file has one (else from the
 * top level, as older releases wrote them); head_dim = hidden_size / num_attention_heads; biases on
 * q, k and v, none on o; no q/k norm; RoPE type default or mrope. M-RoPE gives each of the three
 * sections of the rotary frequencies (mrope_section, summing to head_dim / 2) the position ids of
 * one axis (time, height, width); for text alone all three axes carry the same ids 0..n-1, so it
 * is exactly 1-D RoPE (checked against transformers by tools/make_qwenimage_text_fixtures.py).
 * Sliding-window attention is refused.
 *
 * Per layer: x += o_proj(attn(rope(qn(q)), rope(kn(k)), v)) on RMSNorm(x), qn/kn the q/k norms
 * where the model has them, causal with grouped KV heads, scale 1/sqrt(head_dim), rotate-half
 * RoPE at positions 0..n-1; then x += down(silu(gate(h)) * up(h)) with h = RMSNorm(x). Both
 * pipelines pad a batch on the right and mask the padding, so the real tokens' rows equal an
 * unpadded causal run: that is what og_qwen3_encode computes, on exactly n tokens. A loaded
 * model is read-only and can encode from several threads at once. */
#ifndef OG_TEXT_QWEN3_H
#define OG_TEXT_QWEN3_H

#include <stdint.h>

#include "core/error.h"

typedef struct og_qwen3 og_qwen3;

/* Which hidden state og_qwen3_encode returns. */
typedef enum {
    OG_QWEN3_OUT_PENULTIMATE, /* hidden_states[-2]: raw output of the second-to-last layer */
    OG_QWEN3_OUT_LAST_NORMED, /* hidden_states[-1]: last layer's output after the final norm */
} og_qwen3_output;

/* og_qwen3_load_output(out, dir, OG_QWEN3_OUT_PENULTIMATE), what Z-Image uses. */
og_status og_qwen3_load(og_qwen3 **out, const char *text_encoder_dir);
/* Reads config.json (model_type qwen3 or qwen2_5_vl) and the weights `which` needs. */
og_status og_qwen3_load_output(og_qwen3 **out, const char *text_encoder_dir,
                               og_qwen3_output which);
void og_qwen3_free(og_qwen3 *m);

/* out[n, hidden] = the chosen hidden state for ids[0..n). OG_ERR_INVALID_ARG for n < 1 or an id
 * outside the vocabulary. */
og_status og_qwen3_encode(const og_qwen3 *m, const int32_t *ids, int n, float *out);

/* The width of one output row (config hidden_size), the caption feature size of the DiT. */
int og_qwen3_hidden(const og_qwen3 *m);
/* Decoder layers in the checkpoint; og_qwen3_encode runs the first layers - 1 for
 * hidden_states[-2], all of them and the final norm for [-1]. */
int og_qwen3_layers(const og_qwen3 *m);

#endif
