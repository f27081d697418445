/* umT5 encoder (transformers UMT5EncoderModel), the text encoder of Wan2.1, on the CPU with fp32
 * activations and weights in their stored dtype.
 *
 *     og_umt5 *te;
 *     OG_TRY(og_umt5_load(&te, "models/wan/text_encoder"));
 *     float *emb = malloc((size_t)512 * og_umt5_hidden(te) * sizeof *emb);
 *     OG_TRY(og_umt5_encode(te, ids, n, emb));              // rows 0..n: last_hidden_state
 *     og_umt5_pad_embeds(emb, n, 512, og_umt5_hidden(te));   // WanPipeline's zero padding
 *     og_umt5_free(te);
 *
 * The folder holds config.json (d_model, d_kv, d_ff, num_layers, num_heads,
 * relative_attention_num_buckets, relative_attention_max_distance, layer_norm_epsilon,
 * dense_act_fn gelu_new / gelu_pytorch_tanh with is_gated_act or feed_forward_proj "gated-gelu",
 * vocab_size) and safetensors with the checkpoint's names: shared.weight (or
 * encoder.embed_tokens.weight), encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight,
 * encoder.block.{i}.layer.0.SelfAttention.relative_attention_bias.weight [buckets, heads],
 * encoder.block.{i}.layer.0.layer_norm.weight, encoder.block.{i}.layer.1.DenseReluDense.{wi_0,
 * wi_1,wo}.weight, encoder.block.{i}.layer.1.layer_norm.weight, encoder.final_layer_norm.weight.
 *
 * Per layer: h = RMS(x)·w (T5 norm: no mean, no bias); scores = q·kᵀ + bias[bucket(j - i)]
 * (no 1/sqrt(d) scaling; every layer has its own bias table; buckets bidirectional as T5's
 * encoder); x += o(softmax(scores)·v); x += wo(gelu_tanh(wi_0 h) * wi_1 h) with h = RMS(x)·w2;
 * the output is RMS(x)·final_layer_norm. WanPipeline pads to max_sequence_length and masks the
 * padding, so the real tokens' rows equal an unpadded run: og_umt5_encode runs exactly n tokens.
 * A loaded model is read-only and can encode from several threads at once. */
#ifndef OG_TEXT_UMT5_H
#define OG_TEXT_UMT5_H

#include <stdint.h>

#include "core/error.h"

typedef struct og_umt5 og_umt5;

og_status og_umt5_load(og_umt5 **out, const char *text_encoder_dir);
void og_umt5_free(og_umt5 *m);

/* out[n, d_model] = last_hidden_state of ids[0..n). OG_ERR_INVALID_ARG for n < 1 or an id outside
 * the embedding table. */
og_status og_umt5_encode(const og_umt5 *m, const int32_t *ids, int n, float *out);

/* WanPipeline's post-processing: rows n..max_len of emb[max_len, dim] set to zero (the rows of
 * the real tokens are kept as they are). */
void og_umt5_pad_embeds(float *emb, int n, int max_len, int dim);

/* T5's bidirectional relative-position bucket of key position minus query position, with the
 * float32 arithmetic transformers uses. */
int og_umt5_bucket(int64_t relative_position, int num_buckets, int max_distance);

/* d_model, the width of one output row (Wan's text_dim). */
int og_umt5_hidden(const og_umt5 *m);

#endif
