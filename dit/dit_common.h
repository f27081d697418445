/* Pieces the transformers in dit/ share: the config.json loader (all three), and for Wan2.1
 * (dit/wan.c) and Qwen-Image (dit/qwenimage.c) a Linear layer's weights and how it is loaded, run
 * and planned for, a bounded config integer, the forward's arena allocator that remembers a
 * failure, and the scratch plan's byte arithmetic. */
#ifndef OG_DIT_COMMON_H
#define OG_DIT_COMMON_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "io/diffusers.h"
#include "io/weights.h"

/* A Linear with bias: y = x wᵀ + b. */
typedef struct {
    og_tensor w; /* [N, K], stored dtype (f32, bf16 or f16) */
    float *b;    /* [N] */
} dit_linear;

/* Loads <transformer_dir>/config.json (a path too long is an invalid argument). */
og_status dit_config_open(const char *transformer_dir, og_config **out);

/* `key` of the config as an int in 1 .. 2^20, `def` when absent; out of range is a format
 * error naming the file and the key. */
og_status dit_read_pos_int(const og_config *cfg, const char *key, int64_t def, int *out);

/* <name>.weight [n, k] (f32, bf16 or f16, kept as stored) and <name>.bias [n] (as f32). */
og_status dit_get_linear(og_weights *w, const char *name, int64_t n, int64_t k, dit_linear *out);

/* y [rows, N] = x [rows, K] through l. */
static inline og_status dit_linear_run(float *y, const float *x, int64_t rows,
                                       const dit_linear *l, og_arena *scratch)
{
    return og_linear(y, x, rows, l->w.shape[1], l->w.data, l->w.dtype, l->w.shape[0], l->b,
                     scratch);
}

/* The scratch dit_linear_run needs for `rows` rows. */
static inline size_t dit_linear_bytes(const dit_linear *l, int64_t rows)
{
    return og_linear_scratch_bytes(rows, l->w.shape[1], l->w.dtype, l->w.shape[0]);
}

static inline size_t dit_max_bytes(size_t a, size_t b) { return a > b ? a : b; }

/* The arena bytes of n floats. */
static inline size_t dit_fbytes(int64_t n) { return og_arena_need((size_t)n * sizeof(float)); }

/* Attention over sq queries and skv keys, all heads, q/k/v/out [tokens, heads · head_dim]. */
static inline og_attn_desc dit_attn_desc(int heads, int head_dim, int64_t sq, int64_t skv)
{
    const int64_t dim = (int64_t)heads * head_dim;
    return (og_attn_desc){.sq = sq, .skv = skv, .heads = heads, .kv_heads = heads,
                          .head_dim = head_dim, .q_stride = dim, .k_stride = dim,
                          .v_stride = dim, .o_stride = dim,
                          .scale = 1.0f / sqrtf((float)head_dim)};
}

/* Float buffers from the arena; a failed allocation sets `failed`, checked once after a group. */
typedef struct {
    og_arena *a;
    bool failed;
} dit_allocator;

static inline float *dit_alloc_f(dit_allocator *al, int64_t n)
{
    float *p = og_arena_alloc(al->a, (size_t)n * sizeof(float));
    al->failed |= p == NULL;
    return p;
}

#endif
