/* CPU operations on f32 activations. Every op is plain C on raw row-major pointers (batch 1),
 * parallelised with OpenMP, and has a naive double-precision reference in tests/.
 *
 * Conventions
 *   - Linear weights keep the checkpoint's layout W[N, K] (PyTorch nn.Linear) and stored dtype
 *     (f32, bf16 or f16). Vectors (biases, norm weights, modulation tables) are f32: loaders
 *     convert them once at load time.
 *   - Token-major activations: [tokens, heads, head_dim]; a `*_stride` argument is the number of
 *     elements between consecutive tokens, so a head slice of a wider tensor is a pointer offset.
 *   - Images/feature maps are [C, H, W] (NCHW with batch 1); video is [C, T, H, W].
 *   - Functions that can fail return og_status; pure elementwise ops return void.
 *   - Scratch: an op that needs temporary memory (og_linear with 16-bit weights,
 *     og_linear_packed, og_attention, the convolutions) takes it from `scratch`, an arena with at
 *     least the op's *_scratch_bytes free, and releases it before returning, so that a forward
 *     pass sized once up front allocates nothing. NULL makes the op allocate an arena of that
 *     size for the call. The sizes hold for the calling thread's OpenMP team (og_set_threads)
 *     and the GEMM precision in effect, both as they are when the op runs. */
#ifndef OG_OPS_H
#define OG_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/error.h"

/* ---- GEMM ---------------------------------------------------------------------------------- */

/* y[M, N] = x[M, K] · W[N, K]^T (+ bias[N]). x and y are f32; W is f32, bf16 or f16. The result is
 * the f32 product with the de-quantised weights (16-bit weights are widened tile by tile). */
og_status og_linear(float *y, const float *x, int64_t M, int64_t K, const void *w, og_dtype wt,
                    int64_t N, const float *bias, og_arena *scratch);
/* Scratch of og_linear: a widened weight tile (16-bit weights, more than a few rows) or the bf16
 * copy of x (bf16 weights in the bf16 precision); none for f32 weights. */
size_t og_linear_scratch_bytes(int64_t M, int64_t K, og_dtype wt, int64_t N);

/* Plain f32 GEMM: C[M,N] = alpha * op(A) · op(B) + beta * C, row-major, op = transpose if t*. */
og_status og_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* The library behind og_sgemm ("oneDNN" or "OpenBLAS"), for logs and benchmarks. */
const char *og_gemm_library(void);

/* Precision of og_linear with bf16 weights, process-wide. OG_GEMM_EXACT (the default): f32
 * activations times the exactly widened weights. OG_GEMM_BF16 (opt-in): activations are rounded to
 * bf16 as well and the product runs on the CPU's bf16 units (AMX / AVX512-BF16 through oneDNN),
 * about 3x faster on this CPU but with bf16 input error (~1e-3 relative). f32 and f16 weights
 * always take the exact path. Setting OG_GEMM_BF16 fails with OG_ERR_UNSUPPORTED in an OpenBLAS
 * build. */
typedef enum { OG_GEMM_EXACT = 0, OG_GEMM_BF16 } og_gemm_precision;
og_status og_gemm_set_precision(og_gemm_precision p);
og_gemm_precision og_gemm_get_precision(void);

/* Linear weights prepared once for OG_GEMM_BF16: W[N, K] (f32 or bf16) rounded to bf16 and laid
 * out the way the library's bf16 kernels read them, so that no call repacks them. Fails with
 * OG_ERR_UNSUPPORTED in an OpenBLAS build. With OG_GEMM_BF16 og_attention's two products run on
 * the bf16 units as well (q, k, v and the probabilities rounded to bf16, softmax in f32). */
typedef struct og_packed_weights og_packed_weights;
og_status og_pack_weights_bf16(og_packed_weights **out, const void *w, og_dtype wt, int64_t N,
                               int64_t K);
/* y[M, N] = bf16(x[M, K]) . W^T (+ bias[N]) with packed weights; f32 accumulation and output. */
og_status og_linear_packed(float *y, const float *x, int64_t M, const og_packed_weights *w,
                           const float *bias, og_arena *scratch);
/* Scratch of og_linear_packed for M rows of K inputs: the bf16 copy of x. */
size_t og_linear_packed_scratch_bytes(int64_t M, int64_t K);
void og_packed_weights_free(og_packed_weights *w);

/* ---- normalisation ------------------------------------------------------------------------- */

/* y = (x - mean) / sqrt(var + eps) * w + b over the last dim; w and/or b may be NULL. y may be x. */
void og_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows,
                  int64_t dim, float eps);
/* y = x / sqrt(mean(x^2) + eps) * w; w may be NULL. Per-head RMSNorm is rows = tokens*heads,
 * dim = head_dim. y may be x. */
void og_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int64_t dim, float eps);
/* GroupNorm over x[C, HW] with `groups` groups (C a multiple of groups); w, b are [C] (may be
 * NULL). y may be x. */
void og_groupnorm(float *y, const float *x, const float *w, const float *b, int64_t channels,
                  int64_t hw, int groups, float eps);

/* ---- activations and modulation ------------------------------------------------------------ */

void og_silu(float *x, int64_t n);
void og_gelu_tanh(float *x, int64_t n);
void og_tanh(float *x, int64_t n);
/* out[i] = silu(gate[i]) * up[i]; out may alias gate or up. */
void og_swiglu(float *out, const float *gate, const float *up, int64_t n);
/* y[r, :] = x[r, :] * (1 + scale) + shift, scale/shift are [dim] vectors; shift may be NULL. */
void og_modulate(float *y, const float *x, const float *scale, const float *shift, int64_t rows,
                 int64_t dim);
/* x[r, :] += gate * y[r, :]; gate is a [dim] vector or NULL (meaning 1). */
void og_gated_residual(float *x, const float *y, const float *gate, int64_t rows, int64_t dim);
/* Softmax over the last dim, in place. */
void og_softmax(float *x, int64_t rows, int64_t dim);

/* ---- rotary position embedding ------------------------------------------------------------- */

/* Builds per-token cos/sin tables [tokens, head_dim/2] for multi-axis RoPE: axis a owns
 * axes_dim[a] channels (axes_dim[a]/2 pairs), frequency theta^(-2i/axes_dim[a]), angle
 * pos[t*naxes + a] * freq, computed in double and rounded to f32 before cos/sin (as diffusers'
 * Z-Image does). Pairs are laid out axis after axis. */
void og_rope_table(float *cos_t, float *sin_t, const int64_t *pos, int64_t tokens, int naxes,
                   const int *axes_dim, double theta);
/* Rotates interleaved pairs (x[2k], x[2k+1]) of every head by the token's angle k (DiT form). */
void og_rope_interleaved(float *x, int64_t tokens, int heads, int head_dim, int64_t stride,
                         const float *cos_t, const float *sin_t);
/* Rotate-half form (LLMs): pairs (x[k], x[k + head_dim/2]). */
void og_rope_half(float *x, int64_t tokens, int heads, int head_dim, int64_t stride,
                  const float *cos_t, const float *sin_t);

/* ---- attention ----------------------------------------------------------------------------- */

typedef struct {
    int64_t sq, skv;      /* query and key/value tokens */
    int heads;            /* query heads */
    int kv_heads;         /* key/value heads (GQA); 0 means = heads */
    int head_dim;
    int64_t q_stride, k_stride, v_stride, o_stride; /* elements between consecutive tokens */
    float scale;          /* usually 1/sqrt(head_dim) */
    bool causal;          /* query i sees keys j <= i + (skv - sq) */
    const uint8_t *kv_valid; /* optional [skv]: 0 masks a key out (padding); NULL = all valid */
} og_attn_desc;

/* Non-causal (or causal) multi-head attention, computed blockwise with an online softmax in fp32:
 * memory is O(block), never sq x skv. out is [sq, heads, head_dim] at o_stride. lse, if not NULL,
 * receives the natural-log sum of exp(scaled scores) per row, laid out [sq, heads]; a row that
 * sees no key gets out = 0 and lse = -INFINITY. */
og_status og_attention(const og_attn_desc *d, const float *q, const float *k, const float *v,
                       float *out, float *lse, og_arena *scratch);
/* Scratch of og_attention: keys and values packed per head and each thread's block buffers, or
 * in the bf16 precision the bf16 copies of q, k, v and one chunk of score rows. */
size_t og_attention_scratch_bytes(const og_attn_desc *d);

/* ---- convolution and resampling ------------------------------------------------------------ */

/* 2-D convolution, x[cin, h, w] -> y[cout, ho, wo], weight [cout, cin, kh, kw] (dtype wt),
 * bias [cout] f32 or NULL, zero padding; ho = (h + 2 pad - kh) / stride + 1. Stride 1 builds
 * only the kw horizontal taps and runs kh GEMMs over them shifted by whole rows, in bands of
 * output columns; other strides use im2col; a 1x1 stride-1 convolution multiplies x directly. */
og_status og_conv2d(float *y, const float *x, int64_t cin, int64_t h, int64_t w, const void *wgt,
                    og_dtype wt, const float *bias, int64_t cout, int kh, int kw, int stride,
                    int pad, og_arena *scratch);
/* Scratch of og_conv2d: the f32 weights in GEMM order and each thread's column buffer. */
size_t og_conv2d_scratch_bytes(int64_t cin, int64_t h, int64_t w, int64_t cout, int kh, int kw,
                               int stride, int pad);
/* Causal 3-D convolution, x[cin, t, h, w] -> y[cout, t, ho, wo] with stride 1: time is padded with
 * kt-1 frames in front (from `cache`, [cin, kt-1, h, w], or zeros if NULL), space with pad_h/pad_w
 * zeros. Weight [cout, cin, kt, kh, kw]. */
og_status og_conv3d_causal(float *y, const float *x, const float *cache, int64_t cin, int64_t t,
                           int64_t h, int64_t w, const void *wgt, og_dtype wt, const float *bias,
                           int64_t cout, int kt, int kh, int kw, int pad_h, int pad_w,
                           og_arena *scratch);
/* Scratch of og_conv3d_causal (the same for any number of frames). */
size_t og_conv3d_causal_scratch_bytes(int64_t cin, int64_t h, int64_t w, int64_t cout, int kt,
                                      int kh, int kw, int pad_h, int pad_w);
/* Nearest-neighbour x2 upsample in space: x[c, h, w] -> y[c, 2h, 2w]. */
void og_upsample_nearest2x(float *y, const float *x, int64_t c, int64_t h, int64_t w);

/* ---- embeddings ---------------------------------------------------------------------------- */

/* Sinusoidal timestep embedding of dim channels: freq_i = exp(-ln(max_period) * i / (half -
 * freq_shift)), emb = [cos(t*f), sin(t*f)] if cos_first, else [sin, cos]; an odd dim gets a zero
 * last channel. freq and t*f are computed in f32 step by step as diffusers does. */
void og_timestep_embedding(float *out, float t, int dim, double max_period, double freq_shift,
                           bool cos_first);

#endif
