/* Qwen3 text encoder (transformers Qwen3Model), CPU, fp32 activations, weights in their stored
 * dtype. It returns what ZImagePipeline feeds its DiT: hidden_states[-2] of the real tokens, i.e.
 * the residual stream after the second-to-last decoder layer (the last layer and the final norm
 * are never run).
 *
 *     og_qwen3 *te;
 *     OG_TRY(og_qwen3_load(&te, "models/zimage-tiny/text_encoder"));
 *     float *emb = malloc((size_t)n * og_qwen3_hidden(te) * sizeof *emb);
 *     OG_TRY(og_qwen3_encode(te, ids, n, emb));     // ids from og_bpe_encode_chat
 *     ...
 *     og_qwen3_free(te);
 *
 * The folder holds config.json (hidden_size, num_hidden_layers, num_attention_heads,
 * num_key_value_heads, head_dim, intermediate_size, rms_norm_eps, rope_theta or
 * rope_parameters.rope_theta, vocab_size, hidden_act silu, attention_bias) and safetensors
 * shards with the checkpoint's names: embed_tokens.weight, layers.{i}.input_layernorm.weight,
 * layers.{i}.self_attn.{q,k,v,o}_proj.weight, layers.{i}.self_attn.{q,k}_norm.weight,
 * layers.{i}.post_attention_layernorm.weight, layers.{i}.mlp.{gate,up,down}_proj.weight
 * (a "model." prefix, as Qwen3ForCausalLM saves them, is accepted too).
 *
 * Per layer: x += o_proj(attn(rope(q_norm(q)), rope(k_norm(k)), v)) on RMSNorm(x), causal with
 * grouped KV heads, scale 1/sqrt(head_dim), rotate-half RoPE at positions 0..n-1; then
 * x += down(silu(gate(h)) * up(h)) with h = RMSNorm(x). The pipeline pads to 512 on the right
 * and masks the padding, so the real tokens' rows equal an unpadded causal run: that is what
 * og_qwen3_encode computes, on exactly n tokens. A loaded model is read-only and can encode from
 * several threads at once. */
#ifndef OG_TEXT_QWEN3_H
#define OG_TEXT_QWEN3_H

#include <stdint.h>

#include "core/error.h"

typedef struct og_qwen3 og_qwen3;

og_status og_qwen3_load(og_qwen3 **out, const char *text_encoder_dir);
void og_qwen3_free(og_qwen3 *m);

/* out[n, hidden] = hidden_states[-2] for ids[0..n). OG_ERR_INVALID_ARG for n < 1 or an id
 * outside the vocabulary. */
og_status og_qwen3_encode(const og_qwen3 *m, const int32_t *ids, int n, float *out);

/* The width of one output row (config hidden_size), the caption feature size of the DiT. */
int og_qwen3_hidden(const og_qwen3 *m);
/* Decoder layers in the checkpoint; og_qwen3_encode runs the first layers - 1. */
int og_qwen3_layers(const og_qwen3 *m);

#endif
