/* The pure index and plan math of the CUDA backend, in plain C with no CUDA header, so the CPU
 * test tests/test_cuda_layouts.c runs the same functions the kernels and host files use: the flash
 * kernel's shared-memory swizzle and ldmatrix/mma fragment maps, the row-major -> cuBLASLt
 * column-major operand mapping, and launch geometry within the grid limits. */
#ifndef OG_CUDA_PLAN_H
#define OG_CUDA_PLAN_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define OG_HD static __host__ __device__ __forceinline__
#else
#define OG_HD static inline
#endif

/* ---- launch geometry ----------------------------------------------------------------------- */

#define OG_CUDA_MAX_GRID_X 2147483647LL /* gridDim.x limit (sm_30 and newer) */
#define OG_CUDA_MAX_GRID_YZ 65535LL     /* gridDim.y and gridDim.z limit */

/* Blocks for a grid-stride loop over n elements: enough to fill any GPU, never past the limit. */
OG_HD unsigned og_cuda_blocks(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 65535 * 16 ? b : 65535 * 16);
}

/* GroupNorm statistics: a group of gsize elements is cut into *chunks (<= 256) pieces of *chunk
 * elements (the last may be shorter or empty), one block each. */
OG_HD void og_cuda_gn_chunks(int64_t gsize, int64_t *chunks, int64_t *chunk)
{
    int64_t c = (gsize + 16383) / 16384;
    c = c < 1 ? 1 : c > 256 ? 256 : c;
    *chunks = c;
    *chunk = (gsize + c - 1) / c;
}

/* One cudaMemcpy2DAsync (or cudaMemset2DAsync): `rows` rows of `width` bytes, row i from
 * src + src_off + i * spitch to dst + dst_off + i * dpitch. */
typedef struct {
    size_t dst_off, dpitch, src_off, spitch, width, rows;
} og_copy2d_plan;

/* The causal 3-D convolution's time padding (conv.c): x[cin, t, h, w] becomes
 * xp[cin, kt-1 + t, h, w], per channel kt-1 frames of cache[cin, kt-1, h, w] (or zeros: a memset
 * with front's dst side) then x's t frames. frame = h * w * element bytes. */
OG_HD void og_cuda_causal_pad_plan(int64_t cin, int64_t t, int kt, int64_t frame,
                                   og_copy2d_plan *front, og_copy2d_plan *body)
{
    size_t dpitch = (size_t)((t + kt - 1) * frame), lead = (size_t)((kt - 1) * frame);
    *front = (og_copy2d_plan){.dst_off = 0, .dpitch = dpitch, .src_off = 0, .spitch = lead,
                              .width = lead, .rows = (size_t)cin};
    *body = (og_copy2d_plan){.dst_off = lead, .dpitch = dpitch, .src_off = 0,
                             .spitch = (size_t)(t * frame), .width = (size_t)(t * frame),
                             .rows = (size_t)cin};
}

/* ---- tensor-core flash attention (attention.cu) -------------------------------------------- */

#define OG_FA_BM 64       /* query rows per block: 4 warps x 16 */
#define OG_FA_BN 64       /* keys per K/V tile */
#define OG_FA_THREADS 128

/* Key j is visible to query i unless it is past the end, masked out (kv_valid NULL: none are),
 * or in the causal future (the last query sees the last key, as the CPU op). */
OG_HD bool og_fa_key_visible(const uint8_t *kv_valid, bool causal, int64_t sq, int64_t skv,
                             int64_t i, int64_t j)
{
    return j < skv && (!kv_valid || kv_valid[j]) && (!causal || j <= i + skv - sq);
}

/* Keys a block of queries m0 .. m0 + OG_FA_BM - 1 may see: [0, end). */
OG_HD int64_t og_fa_kv_end(bool causal, int64_t m0, int64_t sq, int64_t skv)
{
    int64_t end = skv;
    if (causal && m0 + OG_FA_BM + skv - sq < end)
        end = m0 + OG_FA_BM + skv - sq;
    return end > 0 ? end : 0;
}

/* One online-softmax step of a row, in base 2: m is the running max (-inf before any visible
 * key), mx the new tile's max. Returns the new max; *base is what the tile's exponents subtract
 * (0 while the row has seen no key, so exp2(-inf - 0) = 0 and no -inf - -inf NaN appears) and
 * *alpha the factor that rescales the running sum and output. */
OG_HD float og_fa_rescale(float m, float mx, float *base, float *alpha)
{
    float mn = fmaxf(m, mx);
    *base = mn == -INFINITY ? 0.0f : mn;
    *alpha = exp2f(m - *base);
    return mn;
}

/* The natural-log LSE of a row from its base-2 running max and sum; -inf when it saw no key. */
OG_HD float og_fa_lse(float m, float l)
{
    return l > 0 ? (m + log2f(l)) * 0.6931471805599453f : -INFINITY;
}

/* Dynamic shared memory of the flash kernel: the Q tile and two K and two V tiles, bf16. */
OG_HD size_t og_fa_smem_bytes(int hd) { return (size_t)(OG_FA_BM + 4 * OG_FA_BN) * hd * 2; }

/* Element offset of (row, 16-byte chunk c) in a [rows][hd] bf16 tile: the chunk index is XORed
 * with the row's low three bits, so the eight rows one ldmatrix phase reads (same logical chunk,
 * eight consecutive rows) sit in eight different 16-byte bank groups. */
OG_HD int og_fa_swz(int hd, int row, int c) { return row * hd + ((c ^ (row & 7)) << 3); }

/* The (tile row, 16-byte chunk) whose address `lane` hands ldmatrix.x4; lanes 8m..8m+7 give the
 * rows of matrix m, and matrix m lands in register m.
 * Q, A operand of k-step ks, rows relative to the warp's 16: matrices (rows 0-7, k 0-7),
 * (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = A registers 0..3. */
OG_HD void og_fa_ldsm_q(int lane, int ks, int *row, int *chunk)
{
    *row = lane % 16;
    *chunk = ks * 2 + lane / 16;
}
/* K, B operands of keys np*16.. for k-step ks: (keys 0-7, k 0-7), (keys 0-7, k 8-15),
 * (keys 8-15, k 0-7), (keys 8-15, k 8-15) = B registers {0, 1} of key tile 2np and of 2np+1. */
OG_HD void og_fa_ldsm_k(int lane, int np, int ks, int *row, int *chunk)
{
    *row = np * 16 + lane % 8 + (lane / 16) * 8;
    *chunk = ks * 2 + (lane / 8) % 2;
}
/* V, B operands (ldmatrix .trans) of keys kk*16.. and head dims dp*16..: (keys 0-7, d 0-7),
 * (keys 8-15, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15) = B registers {0, 1} of dim tile
 * 2dp and of 2dp+1. */
OG_HD void og_fa_ldsm_v(int lane, int kk, int dp, int *row, int *chunk)
{
    *row = kk * 16 + lane % 8 + ((lane / 8) % 2) * 8;
    *chunk = dp * 2 + lane / 16;
}

/* Row and column of accumulator element e (0..3) of an m16n8 tile held by `lane`. */
OG_HD int og_fa_acc_row(int lane, int e) { return lane / 4 + 8 * (e / 2); }
OG_HD int og_fa_acc_col(int lane, int e) { return 2 * (lane % 4) + (e & 1); }

/* P = softmax(S) is reused as the A operand of P V straight from the S accumulators: A register
 * r (0..3) of key step kk packs elements og_fa_p_elem(r) and +1 of S tile og_fa_p_tile(kk, r). */
OG_HD int og_fa_p_tile(int kk, int r) { return 2 * kk + r / 2; }
OG_HD int og_fa_p_elem(int r) { return 2 * (r % 2); }

/* ---- cuBLASLt operands (linear.c) ---------------------------------------------------------- */

/* One cuBLASLt matrix: column-major rows x cols with leading dimension ld, used transposed or
 * not. */
typedef struct {
    uint64_t rows, cols;
    int64_t ld;
    bool trans;
} og_lt_operand;

/* Row-major C[M, N] = op(A) op(B) is column-major C^T[N, M] = op(B)^T op(A)^T: cuBLASLt's first
 * operand (*a) is our B and its second (*b) our A, each seen column-major as stored, so a
 * row-major [r, c] matrix is a column-major [c, r] one with the same leading dimension. */
OG_HD void og_lt_operands(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
                          int64_t ldb, int64_t ldc, og_lt_operand *a, og_lt_operand *b,
                          og_lt_operand *c)
{
    /* B is [K, N] row-major (tb: [N, K]); op(B)^T is [N, K]. */
    a->rows = (uint64_t)(tb ? K : N);
    a->cols = (uint64_t)(tb ? N : K);
    a->ld = ldb;
    a->trans = tb;
    /* A is [M, K] row-major (ta: [K, M]); op(A)^T is [K, M]. */
    b->rows = (uint64_t)(ta ? M : K);
    b->cols = (uint64_t)(ta ? K : M);
    b->ld = lda;
    b->trans = ta;
    c->rows = (uint64_t)N;
    c->cols = (uint64_t)M;
    c->ld = ldc;
    c->trans = false;
}

#endif
