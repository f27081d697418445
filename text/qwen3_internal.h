/* The loaded Qwen3 / Qwen2.5-VL encoder's layout, for the files that run it elsewhere than
 * text/qwen3.c (the GPU encoder in core/cuda/qwen3_cuda.c, the Qwen-Image prompt encoder) and the
 * plain-C device memory plan the GPU encoder reserves by. Not part of the public interface. */
#ifndef OG_TEXT_QWEN3_INTERNAL_H
#define OG_TEXT_QWEN3_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/tensor.h"
#include "io/weights.h"
#include "text/qwen3.h"

typedef struct {
    const void *w; /* [out, in] in the checkpoint's dtype */
    og_dtype dt;
    const float *bias; /* NULL unless the checkpoint's layer has one */
} og_qwen3_linear;

typedef struct {
    const float *in_norm, *post_norm, *q_norm, *k_norm; /* q_norm, k_norm: NULL unless qk_norm */
    og_qwen3_linear q, k, v, o, gate, up, down;
} og_qwen3_layer;

struct og_qwen3 {
    og_weights *w;
    int hidden, layers, heads, kv_heads, head_dim, inter, vocab;
    int run;          /* decoder layers the output needs: layers - 1 for [-2], layers for [-1] */
    bool qk_norm;     /* per-head RMSNorm on q and k (Qwen3; Qwen2.5-VL has none) */
    bool qkv_bias;    /* q, k and v have biases (Qwen3 attention_bias; always in Qwen2.5-VL) */
    bool o_bias;      /* o has a bias (Qwen3 attention_bias; never in Qwen2.5-VL) */
    double eps, theta;
    og_tensor embed;
    const float *final_norm; /* the model's final RMSNorm; NULL unless the output is [-1] */
    og_qwen3_layer *layer;   /* the first `run` */
};

/* cos/sin [n, head_dim/2] as transformers builds them for Qwen3 (see text/qwen3.c). */
void og_qwen3_rope_table(float *cos_t, float *sin_t, int n, int head_dim, double theta);

/* Device memory of the GPU encoder (Qwen3 up to hidden_states[-2] only: anything else is refused
 * with OG_ERR_UNSUPPORTED, and the GPU encoder with it), every buffer rounded up to the arena's
 * 64-byte alignment.
 * Weights: the matrices of the layers hidden_states[-2] runs as bf16, q | k | v and gate | up
 * each stacked into one matrix (plus bf16 biases with attention_bias), the norm vectors f32; the
 * embedding table stays on the host (a prompt's rows are gathered there and uploaded). Work: the
 * residual stream and the activations of one layer for max_tokens tokens (bf16) and the RoPE
 * tables (f32). */
typedef struct {
    size_t weight_bytes, work_bytes;
} og_qwen3_gpu_plan;

/* OG_ERR_INVALID_ARG for max_tokens < 1. */
og_status og_qwen3_gpu_plan_for(const og_qwen3 *m, int max_tokens, og_qwen3_gpu_plan *out);

#endif
