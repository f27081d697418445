/* The Z-Image transformer (diffusers ZImageTransformer2DModel, basic single-image mode) on the CPU,
 * serial or sequence-parallel under an og_sp.
 *
 *     og_zimage_config c;
 *     OG_TRY(og_zimage_read_config("/models/Z-Image-Turbo/transformer", &c)); // no weights read
 *     OG_TRY(og_zimage_check_layout(&c, &pcfg, lat_h, lat_w, cap_len, world)); // before loading
 *     og_zimage *m;
 *     OG_TRY(og_zimage_load(&m, "/models/Z-Image-Turbo/transformer"));
 *     og_arena scratch;
 *     OG_TRY(og_arena_init(&scratch, og_zimage_scratch_bytes(m, lat_h, lat_w, cap_len, sp)));
 *     for each step:
 *         float t = og_zimage_model_time(timesteps[i]);          // (1000 - t) / 1000
 *         OG_TRY(og_zimage_forward(m, sp, latents, t, cap, cap_len, velocity_out, &scratch));
 *     og_zimage_free(m);
 *
 * Latents are [in_channels, H, W] (the pipeline's latent frame, batch 1, one frame); the output
 * is the raw model output of the same shape, which the Z-Image pipeline NEGATES before the
 * scheduler step. Weights are read by their diffusers key names (layers.{i}.attention.to_q, ...)
 * from single or sharded safetensors, in their stored dtype (f32, bf16, f16). With
 * og_gemm_set_precision(OG_GEMM_BF16) set before og_zimage_load, the block weights (f32 or bf16)
 * are also packed as bf16 at load and the forward runs its GEMMs and attention on the bf16 units
 * (AMX): ~2x faster on the CPU, ~3e-3 relative error against fp32.
 *
 * Sequence parallelism (see docs/sampling.md and the comment at the top of dit/zimage.c): every
 * rank gets the full latents and caption, computes only its own token shard through every
 * linear, norm and FFN, runs attention through og_sp_attention, and returns the full output. */
#ifndef OG_DIT_ZIMAGE_H
#define OG_DIT_ZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/error.h"
#include "parallel/config.h"
#include "parallel/sp.h"

#define OG_ZIMAGE_SEQ_MULTIPLE 32 /* image and caption token counts are padded to this */

typedef struct {
    int in_channels;
    int dim;
    int n_layers;
    int n_refiner_layers;
    int n_heads;
    int head_dim;       /* dim / n_heads == sum(axes_dims) */
    float norm_eps;
    bool qk_norm;
    int cap_feat_dim;
    double rope_theta;
    float t_scale;
    int axes_dims[3];
    int axes_lens[3];
    int patch_size;     /* the forward's default patch (2, 1), which config must list */
    int f_patch_size;
    int ffn_dim;        /* int(dim / 3 * 8) */
    int adaln_dim;      /* min(dim, 256) */
} og_zimage_config;

typedef struct og_zimage og_zimage;

/* Reads <transformer_dir>/config.json only. Fails with OG_ERR_FORMAT on a config this
 * implementation cannot reproduce (e.g. dim not divisible by n_heads, axes_dims not summing to
 * head_dim, no (2, 1) patch entry). */
og_status og_zimage_read_config(const char *transformer_dir, og_zimage_config *out);

/* Z-Image-Turbo's transformer config (diffusers' defaults: dim 3840, 30 + 2 + 2 layers, 30
 * heads, caption width 2560; axes_lens 1536/512/512 as the released config.json), derived fields
 * filled in. */
og_zimage_config og_zimage_config_default(void);
/* Recomputes head_dim, ffn_dim and adaln_dim from dim and n_heads and checks the config as
 * og_zimage_read_config does; call it after changing dim, n_heads, axes_dims or layer counts. */
og_status og_zimage_config_finish(og_zimage_config *c);

/* Token counts of one forward: image tokens before and after padding to 32, caption tokens
 * after padding. Latent H and W must be multiples of patch_size. */
typedef struct {
    int64_t h_tokens, w_tokens;
    int64_t img_len, img_pad_len;
    int64_t cap_len, cap_pad_len;
    int64_t seq_len; /* img_pad_len + cap_pad_len: the unified sequence */
} og_zimage_tokens;

og_status og_zimage_tokens_for(const og_zimage_config *c, int64_t lat_h, int64_t lat_w,
                               int64_t cap_len, og_zimage_tokens *out);

/* Checks a request and parallel layout against this model before any weight is loaded: the
 * latent size and RoPE table bounds (og_zimage_tokens_for), then og_parallel_config_validate on
 * the heads and the shortest sharded sequence (the padded image tokens). world_available <= 0
 * skips the world-size check. */
og_status og_zimage_check_layout(const og_zimage_config *c, const og_parallel_config *pc,
                                 int64_t lat_h, int64_t lat_w, int64_t cap_len,
                                 int world_available);

og_status og_zimage_load(og_zimage **out, const char *transformer_dir);
/* A model with random weights held in memory, for benchmarks and tests without a checkpoint:
 * matrices in `dtype` (OG_F32 or OG_BF16) uniform with standard deviation 1 / sqrt(fan_in),
 * RMSNorm weights 1 + U(-0.1, 0.1), biases U(-0.1, 0.1), pad tokens U(-1, 1); all f32 vectors.
 * The time embedder is diffusers' (256 sinusoid channels, 1024 hidden). Values depend only on
 * the seed (a counter-based stream per tensor), not on the thread count. Config derived fields
 * are recomputed (og_zimage_config_finish). Freed with og_zimage_free. */
og_status og_zimage_random(og_zimage **out, const og_zimage_config *c, uint64_t seed,
                           og_dtype dtype);
void og_zimage_free(og_zimage *m);
const og_zimage_config *og_zimage_get_config(const og_zimage *m);

/* Bytes of scratch one og_zimage_forward needs for this request and layout (sp NULL = serial),
 * including og_sp_attention's temporaries. */
size_t og_zimage_scratch_bytes(const og_zimage *m, int64_t lat_h, int64_t lat_w, int64_t cap_len,
                               og_sp *sp);

/* FLOPs of one forward, 2 per multiply-add, counted as the forward computes them: every GEMM
 * (the time embedder and adaLN GEMVs, the embedders on the real tokens, q, k, v, out, w1 | w3
 * and w2 of each block on its padded tokens, the final linear on the padded image tokens) and
 * attention's two products (4 * n^2 * dim per block of n tokens); norms, RoPE and other
 * elementwise work are not counted. The MFU figures of bench/gpu use it. */
og_status og_zimage_flops(const og_zimage_config *c, int64_t lat_h, int64_t lat_w,
                          int64_t cap_len, double *out);

/* The pipeline's model time for a scheduler timestep: (1000 - t) / 1000 in fp32. */
float og_zimage_model_time(float timestep);

/* One forward. latents [in_channels, lat_h, lat_w] and cap_feats [cap_len, cap_feat_dim] are
 * complete on every rank; out [in_channels, lat_h, lat_w] is complete on every rank on return.
 * t_model is the pipeline's (1000 - timestep) / 1000; it is multiplied by t_scale inside.
 * Scratch is taken from `scratch` and released before return. */
og_status og_zimage_forward(og_zimage *m, og_sp *sp, const float *latents, int64_t lat_h,
                            int64_t lat_w, float t_model, const float *cap_feats, int64_t cap_len,
                            float *out, og_arena *scratch);

#endif
