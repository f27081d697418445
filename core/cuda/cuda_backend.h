/* The CUDA backend: the operations of core/ops.h on device pointers, for C callers.
 *
 *   og_cuda_ctx *gpu;
 *   if (og_cuda_device_count() == 0) ...             // no driver or no GPU: 0, never a crash
 *   OG_TRY(og_cuda_init(0, &gpu));                   // stream, cuBLASLt, workspace on GPU 0
 *   OG_TRY(og_cuda_reserve(gpu, plan_bytes, "Z-Image 1024x1024"));  // all device memory, once
 *   og_bf16 *x = og_arena_alloc(og_cuda_arena(gpu), bytes);         // bump allocation from it
 *   OG_TRY(og_cuda_linear(gpu, y, OG_BF16, x, M, K, w, N, NULL, OG_CUDA_ACT_NONE));
 *   OG_TRY(og_cuda_sync(gpu));                       // ops are asynchronous on gpu's stream
 *   og_cuda_free(gpu);
 *
 * Conventions (as core/ops.h, on the device):
 *   - Activations and weights are bf16 (og_bf16 storage), accumulation is fp32. Linear weights keep
 *     the checkpoint layout W[N, K]. Vectors (norm weights, modulation scale/shift/gate, RoPE
 *     tables) are f32, as on the CPU; a linear's bias has the dtype of its output (cuBLASLt's
 *     epilogue reads it so).
 *   - Token-major activations [tokens, heads, head_dim] with a `*_stride` in elements between
 *     consecutive tokens; images [C, H, W]; video [C, T, H, W].
 *   - Every op is enqueued on the context's stream and returns at once; an og_status reports a
 *     bad argument or a launch error, not the outcome of the kernel (og_cuda_sync() does).
 *   - All pointers given to an op are device pointers unless a parameter says `host`.
 * A context belongs to one host thread at a time (one rank). Several contexts may share a GPU. */
#ifndef OG_CUDA_BACKEND_H
#define OG_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The core headers are C: kernels compiled as CUDA C++ see them with C linkage too. */
#ifdef __cplusplus
extern "C" {
#endif

#include "core/arena.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/ops.h"

typedef uint16_t og_bf16; /* bf16 storage; __nv_bfloat16 in kernels */
typedef struct og_cuda_ctx og_cuda_ctx;
struct CUstream_st;       /* cudaStream_t is struct CUstream_st * */

/* ---- devices ------------------------------------------------------------------------------- */

/* Number of usable CUDA devices; 0 when there is no driver, no device or CUDA fails to start. */
int og_cuda_device_count(void);
/* Parses a --devices list such as "0,1,3" into devices[0..*count). Fails with OG_ERR_DEVICE when
 * there is no GPU at all, and with OG_ERR_INVALID_ARG (naming the bad entry and the valid range)
 * for a malformed list, an index out of range, a repeat, or more than `max` entries. */
og_status og_cuda_parse_devices(const char *list, int *devices, int max, int *count);
/* Writes "NVIDIA H100 80GB HBM3, 79.1 GiB, sm_90" for device `d`; "" when it does not exist. */
const char *og_cuda_device_name(int d, char *buf, size_t cap);

/* ---- context and memory -------------------------------------------------------------------- */

/* A context on `device`: its own stream, a cuBLASLt handle and workspace (and a cuDNN handle when
 * built with cuDNN). Fails with OG_ERR_DEVICE naming the cause when the device cannot be used. */
og_status og_cuda_init(int device, og_cuda_ctx **out);
void og_cuda_free(og_cuda_ctx *ctx);
int og_cuda_ctx_device(const og_cuda_ctx *ctx);
struct CUstream_st *og_cuda_stream(const og_cuda_ctx *ctx);
/* Waits for all work enqueued on the context's stream; reports a failed kernel. */
og_status og_cuda_sync(og_cuda_ctx *ctx);

/* Reserves the context's whole device arena in one allocation. When it does not fit, fails with
 * OG_ERR_OOM and a message naming `what`, the bytes needed, the bytes free and the shortfall.
 * Call once; a second call fails. */
og_status og_cuda_reserve(og_cuda_ctx *ctx, size_t bytes, const char *what);
/* The device arena: allocate from it with og_arena_alloc(), og_arena_mark()/og_arena_release().
 * Its base is device memory: never og_arena_calloc() or og_arena_free() it. */
og_arena *og_cuda_arena(og_cuda_ctx *ctx);
/* Peak arena use plus the fixed per-context buffers (workspace), for the per-rank report. */
size_t og_cuda_peak_bytes(const og_cuda_ctx *ctx);
/* Bytes free and total on the context's device right now. */
og_status og_cuda_mem_info(const og_cuda_ctx *ctx, size_t *free_bytes, size_t *total_bytes);

/* Copies n elements of type st from host memory to the device, converting to dt (f32 or bf16;
 * st may be f32, bf16 or f16), or as they are when dt == st (masks, indices). Synchronous with
 * respect to the host buffer. */
og_status og_cuda_upload(og_cuda_ctx *ctx, void *dst, og_dtype dt, const void *host_src,
                         og_dtype st, size_t n);
/* Copies n elements of type st (f32 or bf16) from the device into f32 host memory; waits. */
og_status og_cuda_download(og_cuda_ctx *ctx, float *host_dst, const void *src, og_dtype st,
                           size_t n);

/* Copies `rows` rows of `width` bytes from src (rows spitch bytes apart) to dst (dpitch apart) on
 * the context's stream; either side may be device or host memory (unified addressing). */
og_status og_cuda_copy2d(og_cuda_ctx *ctx, void *dst, size_t dpitch, const void *src,
                         size_t spitch, size_t width, size_t rows);
/* y[i] = bf16(x[i]) for i < n, round to nearest even, on the device. */
og_status og_cuda_f32_to_bf16(og_cuda_ctx *ctx, og_bf16 *y, const float *x, int64_t n);

/* ---- sequence parallelism on the device ---------------------------------------------------- */

struct og_sp_ops; /* parallel/sp.h */
/* Fills the hooks that make og_sp_attention run on bf16 device buffers of this context: strided
 * copies and the f32 -> bf16 narrowing on its stream, og_cuda_attention with f32 partials and
 * LSE, og_cuda_lse_merge for the ring, og_cuda_sync before each exchange. The rank's og_sp must
 * sit on a device communicator (og_cuda_inproc_copy, or NCCL), and args.scratch must be this
 * context's arena. */
void og_cuda_sp_ops(og_cuda_ctx *ctx, struct og_sp_ops *out);

/* ---- ranks sharing a GPU ------------------------------------------------------------------- */

struct og_inproc_copy; /* parallel/comm.h */
/* Fills the copy hook that makes the in-process communicator (og_inproc_world_create,
 * og_run_ranks_copy) move device memory of `device`: every SP layout then runs with all its ranks
 * on one GPU. A rank synchronises its context (og_cuda_sync) before handing a buffer to a
 * collective or a send; received data is complete when the call (or sendrecv_wait) returns. */
void og_cuda_inproc_copy(int device, struct og_inproc_copy *out);

/* ---- GEMM ---------------------------------------------------------------------------------- */

typedef enum { OG_CUDA_ACT_NONE = 0, OG_CUDA_ACT_GELU_TANH } og_cuda_act;

/* y[M, N] = act(x[M, K] · W[N, K]^T + bias[N]) through cuBLASLt with fp32 accumulation; x and W
 * bf16, y bf16 or f32 (yt), bias NULL or of type yt. Bias and GELU run in cuBLASLt's epilogue. */
og_status og_cuda_linear(og_cuda_ctx *ctx, void *y, og_dtype yt, const og_bf16 *x, int64_t M,
                         int64_t K, const og_bf16 *w, int64_t N, const void *bias, og_cuda_act act);

/* As og_sgemm on bf16 operands: C[M, N] = alpha * op(A) · op(B) + beta * C, row-major with
 * leading dimensions, op = transpose when ta / tb; C bf16 or f32 (ct). For products that are not
 * a linear layer (a VAE's single-head attention as two GEMMs and a softmax). */
og_status og_cuda_gemm(og_cuda_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
                       float alpha, const og_bf16 *A, int64_t lda, const og_bf16 *B, int64_t ldb,
                       float beta, void *C, og_dtype ct, int64_t ldc);

/* ---- normalisation (fused with modulation) ------------------------------------------------- */

/* Row-wise norms over `dim` of every row, then an optional modulation y = y * (1 + scale) +
 * shift (scale, shift: [dim] f32 or NULL). Rows are `rows` consecutive vectors `stride` apart
 * in x and y (stride = dim when contiguous); y may be x. w, b: [dim] f32 or NULL. */
og_status og_cuda_layernorm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                            const float *b, int64_t rows, int64_t dim, int64_t stride, float eps,
                            const float *scale, const float *shift);
/* RMSNorm of every head of every token: x[t * stride + h * dim ...] for t < tokens, h < heads
 * (plain rows: heads = 1). Per-head q/k norm runs in place inside a fused QKV buffer this way. */
og_status og_cuda_rmsnorm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                          int64_t tokens, int heads, int64_t dim, int64_t stride, float eps,
                          const float *scale, const float *shift);
/* GroupNorm over x[C, HW] (groups of C/groups channels), optional SiLU after (the VAE's pair). */
og_status og_cuda_groupnorm(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *w,
                            const float *b, int64_t channels, int64_t hw, int groups, float eps,
                            bool silu);

/* ---- activations, modulation and residuals ------------------------------------------------- */

typedef enum { OG_CUDA_SILU = 0, OG_CUDA_GELU_TANH, OG_CUDA_TANH } og_cuda_unary;
og_status og_cuda_activate(og_cuda_ctx *ctx, og_bf16 *x, int64_t n, og_cuda_unary f);
/* out[r, c] = silu(gate[r, c]) * up[r, c] for r < rows, c < cols; gate and up rows are in_stride
 * apart (a fused [rows, 2*cols] gate|up GEMM output: up = gate + cols, in_stride = 2*cols), out is
 * contiguous [rows, cols] and may alias gate when in_stride == cols. */
og_status og_cuda_swiglu(og_cuda_ctx *ctx, og_bf16 *out, const og_bf16 *gate, const og_bf16 *up,
                         int64_t rows, int64_t cols, int64_t in_stride);
/* y[r, :] = x[r, :] * (1 + scale) + shift; shift may be NULL. */
og_status og_cuda_modulate(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, const float *scale,
                           const float *shift, int64_t rows, int64_t dim);
/* x[r, :] += g(gate) * y[r, :], g = identity or tanh (Z-Image gates through tanh); gate [dim]
 * f32 or NULL (meaning 1). */
og_status og_cuda_gated_residual(og_cuda_ctx *ctx, og_bf16 *x, const og_bf16 *y,
                                 const float *gate, bool tanh_gate, int64_t rows, int64_t dim);
og_status og_cuda_softmax(og_cuda_ctx *ctx, og_bf16 *x, int64_t rows, int64_t dim);
/* y[r * stride + c] += bias[c] for r < rows, c < cols: the bias of a token-major product that
 * og_cuda_gemm computed (bias f32 [cols]). */
og_status og_cuda_add_row_bias(og_cuda_ctx *ctx, og_bf16 *y, const float *bias, int64_t rows,
                               int64_t cols, int64_t stride);

/* ---- rotary position embedding ------------------------------------------------------------- */

/* As og_rope_interleaved / og_rope_half, in place, with f32 tables [tokens, head_dim/2] built on
 * the host by og_rope_table() and uploaded once per resolution. */
og_status og_cuda_rope(og_cuda_ctx *ctx, og_bf16 *x, int64_t tokens, int heads, int head_dim,
                       int64_t stride, const float *cos_t, const float *sin_t, bool interleaved);

/* ---- attention ----------------------------------------------------------------------------- */

/* og_attention on the device: q, k, v bf16 at the descriptor's strides (kv_valid a device
 * array or NULL), out of type ot (bf16, or f32 for ring partials that merge in fp32) at
 * o_stride, lse [sq, heads] f32 (natural log) or NULL. A row that sees no key gets out = 0 and
 * lse = -INFINITY. Head dims 64 and 128 with 16-byte aligned rows and strides run a tensor-core
 * flash kernel; any other even head_dim up to 512 runs a plain warp-per-row kernel. */
og_status og_cuda_attention(og_cuda_ctx *ctx, const og_attn_desc *d, const og_bf16 *q,
                            const og_bf16 *k, const og_bf16 *v, void *out, og_dtype ot,
                            float *lse);
/* Ring merge: folds a partial result (out_b of type bt at b_stride, lse_b) into the running one
 * (out f32 at o_stride, lse; finite, as og_cuda_attention writes it), both [sq, heads, head_dim]
 * / [sq, heads]; a side with lse = -INFINITY contributes nothing:
 *   lse' = log(exp(lse) + exp(lse_b)), out' = exp(lse - lse') out + exp(lse_b - lse') out_b. */
og_status og_cuda_lse_merge(og_cuda_ctx *ctx, float *out, float *lse, int64_t o_stride,
                            const void *out_b, og_dtype bt, const float *lse_b, int64_t b_stride,
                            int64_t sq, int heads, int head_dim);

/* ---- convolution and resampling ------------------------------------------------------------ */

/* As og_conv2d: x[cin, h, w] -> y[cout, ho, wo], weight bf16 [cout, cin, kh, kw], bias [cout]
 * f32 or NULL. Runs through cuDNN with its workspace taken from (and returned to) the context's
 * arena; OG_ERR_UNSUPPORTED in a build without cuDNN. */
og_status og_cuda_conv2d(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, int64_t cin, int64_t h,
                         int64_t w, const og_bf16 *wgt, const float *bias, int64_t cout, int kh,
                         int kw, int stride, int pad);
/* As og_conv3d_causal (stride 1, kt-1 frames of `cache` or zeros in front of time). The
 * time-padded input and cuDNN's workspace come from the context's arena and are released. */
og_status og_cuda_conv3d_causal(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x,
                                const og_bf16 *cache, int64_t cin, int64_t t, int64_t h, int64_t w,
                                const og_bf16 *wgt, const float *bias, int64_t cout, int kt,
                                int kh, int kw, int pad_h, int pad_w);
og_status og_cuda_upsample_nearest2x(og_cuda_ctx *ctx, og_bf16 *y, const og_bf16 *x, int64_t c,
                                     int64_t h, int64_t w);

#ifdef __cplusplus
}
#endif

#endif
