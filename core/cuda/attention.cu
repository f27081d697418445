/* og_cuda_attention: flash attention forward that also returns the per-row log-sum-exp (Ring
 * needs it). Head dims 64 and 128 with 16-byte aligned rows run a tensor-core kernel (mma.sync
 * m16n8k16 bf16 -> fp32, ldmatrix from XOR-swizzled shared memory, cp.async double buffering of
 * K/V); anything else runs a plain warp-per-row kernel with the same online softmax. */
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>

#include "core/cuda/cuda_internal.h"

typedef __nv_bfloat16 bf16;

#define LOG2E 1.4426950408889634f

struct attn_params {
    const bf16 *q, *k, *v;
    void *out;
    float *lse;
    const uint8_t *kv_valid;
    int64_t sq, skv, q_stride, k_stride, v_stride, o_stride;
    int heads, group; /* group = heads / kv_heads */
    int head_dim;
    float scale_log2; /* scale * log2(e): the softmax runs in base 2 */
    bool causal, out_f32;
};

/* Key j is visible to query i unless it is past the end, masked out, or in the causal future. */
__device__ __forceinline__ bool key_visible(const attn_params &p, int64_t i, int64_t j)
{
    return og_fa_key_visible(p.kv_valid, p.causal, p.sq, p.skv, i, j);
}

__device__ __forceinline__ void store_out(const attn_params &p, int64_t off, float a, float b)
{
    if (p.out_f32) {
        *(float2 *)((float *)p.out + off) = make_float2(a, b);
    } else {
        *(__nv_bfloat162 *)((bf16 *)p.out + off) = __floats2bfloat162_rn(a, b);
    }
}

/* ---- tensor-core flash kernel --------------------------------------------------------------- */

#define FA_BM OG_FA_BM
#define FA_BN OG_FA_BN
#define FA_THREADS OG_FA_THREADS

__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* The swizzle and the fragment maps are cuda_plan.h's og_fa_* functions (tested on the CPU). */
template <int HD> __device__ __forceinline__ int swz(int row, int c) { return og_fa_swz(HD, row, c); }

/* Copies rows [r0, r0 + ROWS) of a token-major head slice into a swizzled tile; rows past `n`
 * are zero-filled (cp.async with source size 0 reads nothing). */
template <int HD, int ROWS>
__device__ __forceinline__ void load_tile(bf16 *tile, const bf16 *src, int64_t stride, int64_t r0,
                                          int64_t n)
{
    const int chunks = HD / 8;
    for (int i = threadIdx.x; i < ROWS * chunks; i += FA_THREADS) {
        int r = i / chunks, c = i % chunks;
        bool in = r0 + r < n;
        const bf16 *g = in ? src + (r0 + r) * stride + c * 8 : src;
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                         smem_u32(tile + swz<HD>(r, c))),
                     "l"(g), "r"(in ? 16 : 0));
    }
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait()
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t *r, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t *r, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* d[16x8] += a[16x16] (row) * b[16x8] (col), bf16 inputs, fp32 accumulators. */
__device__ __forceinline__ void mma_bf16(float *d, const uint32_t *a, uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&v;
}

/* Fragment layouts (PTX ISA, mma.m16n8k16): lane = 4 g + t. A regs: (g, 2t..), (g+8, 2t..),
 * (g, 2t+8..), (g+8, 2t+8..); B regs: (k 2t.., n g), (k 2t+8.., n g); C: (g, 2t..), (g+8, 2t..).
 * So a pair of S tiles in C layout is exactly one A fragment of P for the P V product. */
template <int HD>
__global__ void __launch_bounds__(FA_THREADS) flash_attn_kernel(const attn_params p)
{
    extern __shared__ __align__(16) unsigned char fa_smem[];
    bf16 *sQ = (bf16 *)fa_smem;
    bf16 *sK = sQ + FA_BM * HD; /* [2][FA_BN * HD] */
    bf16 *sV = sK + 2 * FA_BN * HD;

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int h = blockIdx.y, kvh = h / p.group;
    const int64_t m0 = (int64_t)blockIdx.x * FA_BM;
    const bf16 *q = p.q + (int64_t)h * HD, *k = p.k + (int64_t)kvh * HD, *v = p.v + (int64_t)kvh * HD;

    const int64_t kv_end = og_fa_kv_end(p.causal, m0, p.sq, p.skv);
    const int ntiles = (int)((kv_end + FA_BN - 1) / FA_BN);

    load_tile<HD, FA_BM>(sQ, q, p.q_stride, m0, p.sq);
    if (ntiles > 0) {
        load_tile<HD, FA_BN>(sK, k, p.k_stride, 0, p.skv);
        load_tile<HD, FA_BN>(sV, v, p.v_stride, 0, p.skv);
    }
    cp_async_commit();

    uint32_t qf[HD / 16][4];
    float o[HD / 8][4];
    for (int i = 0; i < HD / 8; i++)
        o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0, 0};
    const int64_t row[2] = {m0 + warp * 16 + og_fa_acc_row(lane, 0),
                            m0 + warp * 16 + og_fa_acc_row(lane, 2)};

    if (ntiles == 0) {
        cp_async_wait<0>();
        __syncthreads();
    }
    for (int j = 0; j < ntiles; j++) {
        const int buf = j & 1;
        if (j + 1 < ntiles) {
            load_tile<HD, FA_BN>(sK + (buf ^ 1) * FA_BN * HD, k, p.k_stride, (int64_t)(j + 1) * FA_BN, p.skv);
            load_tile<HD, FA_BN>(sV + (buf ^ 1) * FA_BN * HD, v, p.v_stride, (int64_t)(j + 1) * FA_BN, p.skv);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (j == 0)
            for (int ks = 0; ks < HD / 16; ks++) {
                int r, c;
                og_fa_ldsm_q(lane, ks, &r, &c);
                ldsm_x4(qf[ks], smem_u32(sQ + swz<HD>(warp * 16 + r, c)));
            }

        /* S = Q K^T for this warp's 16 rows and the tile's 64 keys. */
        const bf16 *tK = sK + buf * FA_BN * HD, *tV = sV + buf * FA_BN * HD;
        float s[FA_BN / 8][4];
        for (int i = 0; i < FA_BN / 8; i++)
            s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0;
        for (int np = 0; np < FA_BN / 16; np++)
            for (int ks = 0; ks < HD / 16; ks++) {
                uint32_t b[4];
                int key, c;
                og_fa_ldsm_k(lane, np, ks, &key, &c);
                ldsm_x4(b, smem_u32(tK + swz<HD>(key, c)));
                mma_bf16(s[2 * np], qf[ks], b[0], b[1]);
                mma_bf16(s[2 * np + 1], qf[ks], b[2], b[3]);
            }

        /* Mask, scale to base 2, and update the running max and sum of each of the two rows. */
        const int64_t key0 = (int64_t)j * FA_BN;
        float mx[2] = {-INFINITY, -INFINITY};
        for (int nt = 0; nt < FA_BN / 8; nt++)
            for (int e = 0; e < 4; e++) {
                int r = e / 2;
                int64_t key = key0 + nt * 8 + og_fa_acc_col(lane, e);
                float x = key_visible(p, row[r], key) ? s[nt][e] * p.scale_log2 : -INFINITY;
                s[nt][e] = x;
                mx[r] = fmaxf(mx[r], x);
            }
        float alpha[2], base[2];
        for (int r = 0; r < 2; r++) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            m[r] = og_fa_rescale(m[r], mx[r], &base[r], &alpha[r]);
            l[r] *= alpha[r];
        }
        for (int dn = 0; dn < HD / 8; dn++) {
            o[dn][0] *= alpha[0];
            o[dn][1] *= alpha[0];
            o[dn][2] *= alpha[1];
            o[dn][3] *= alpha[1];
        }
        for (int nt = 0; nt < FA_BN / 8; nt++)
            for (int e = 0; e < 4; e++) {
                float pe = exp2f(s[nt][e] - base[e / 2]);
                s[nt][e] = pe;
                l[e / 2] += pe;
            }

        /* O += P V: P's A fragments come straight from the S accumulators. */
        for (int kk = 0; kk < FA_BN / 16; kk++) {
            uint32_t a[4];
            for (int r = 0; r < 4; r++)
                a[r] = pack_bf16(s[og_fa_p_tile(kk, r)][og_fa_p_elem(r)],
                                 s[og_fa_p_tile(kk, r)][og_fa_p_elem(r) + 1]);
            for (int dp = 0; dp < HD / 16; dp++) {
                uint32_t b[4];
                int key, c;
                og_fa_ldsm_v(lane, kk, dp, &key, &c);
                ldsm_x4_trans(b, smem_u32(tV + swz<HD>(key, c)));
                mma_bf16(o[2 * dp], a, b[0], b[1]);
                mma_bf16(o[2 * dp + 1], a, b[2], b[3]);
            }
        }
        __syncthreads(); /* the next iteration's prefetch overwrites this buffer pair */
    }

    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    for (int r = 0; r < 2; r++) {
        if (row[r] >= p.sq)
            continue;
        float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        int64_t off = row[r] * p.o_stride + (int64_t)h * HD + og_fa_acc_col(lane, 2 * r);
        for (int dn = 0; dn < HD / 8; dn++)
            store_out(p, off + dn * 8, o[dn][2 * r] * inv, o[dn][2 * r + 1] * inv);
        if (p.lse && lane % 4 == 0) /* one lane of the row's quad */
            p.lse[row[r] * p.heads + h] = og_fa_lse(m[r], l[r]);
    }
}

/* ---- plain kernel: one warp per (query row, head), any even head_dim <= 512 (VAE attention) -- */

#define PLAIN_MAX_PER_LANE 16

__global__ void plain_attn_kernel(const attn_params p)
{
    int64_t gw = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    if (gw >= p.sq * p.heads)
        return;
    int64_t i = gw / p.heads;
    int h = (int)(gw % p.heads), kvh = h / p.group, hd = p.head_dim;
    const bf16 *q = p.q + i * p.q_stride + (int64_t)h * hd;
    float qv[PLAIN_MAX_PER_LANE], acc[PLAIN_MAX_PER_LANE];
    for (int e = 0; e < PLAIN_MAX_PER_LANE; e++) {
        int d = lane + 32 * e;
        qv[e] = d < hd ? __bfloat162float(q[d]) : 0.0f;
        acc[e] = 0;
    }
    float m = -INFINITY, l = 0;
    for (int64_t j = 0; j < p.skv; j++) {
        if (!key_visible(p, i, j))
            continue;
        const bf16 *k = p.k + j * p.k_stride + (int64_t)kvh * hd;
        float dot = 0;
        for (int e = 0; e < PLAIN_MAX_PER_LANE; e++) {
            int d = lane + 32 * e;
            if (d < hd)
                dot += qv[e] * __bfloat162float(k[d]);
        }
        for (int o = 16; o; o >>= 1)
            dot += __shfl_xor_sync(0xffffffffu, dot, o);
        float s = dot * p.scale_log2, mn = fmaxf(m, s);
        float alpha = exp2f(m - mn), pe = exp2f(s - mn);
        m = mn;
        l = l * alpha + pe;
        const bf16 *v = p.v + j * p.v_stride + (int64_t)kvh * hd;
        for (int e = 0; e < PLAIN_MAX_PER_LANE; e++) {
            int d = lane + 32 * e;
            acc[e] = acc[e] * alpha + (d < hd ? pe * __bfloat162float(v[d]) : 0.0f);
        }
    }
    float inv = l > 0 ? 1.0f / l : 0.0f;
    int64_t off = i * p.o_stride + (int64_t)h * hd;
    for (int e = 0; e < PLAIN_MAX_PER_LANE; e++) {
        int d = lane + 32 * e;
        if (d >= hd)
            continue;
        if (p.out_f32)
            ((float *)p.out)[off + d] = acc[e] * inv;
        else
            ((bf16 *)p.out)[off + d] = __float2bfloat16(acc[e] * inv);
    }
    if (p.lse && lane == 0)
        p.lse[i * p.heads + h] = og_fa_lse(m, l);
}

/* ---- launch --------------------------------------------------------------------------------- */

template <int HD> static og_status launch_flash(og_cuda_ctx *ctx, const attn_params &p)
{
    size_t smem = og_fa_smem_bytes(HD);
    OG_CUDA_TRY(cudaFuncSetAttribute(flash_attn_kernel<HD>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid((unsigned)((p.sq + FA_BM - 1) / FA_BM), (unsigned)p.heads);
    flash_attn_kernel<HD><<<grid, FA_THREADS, smem, ctx->stream>>>(p);
    OG_CUDA_LAUNCHED("flash attention");
    return OG_OK;
}

static bool aligned16(const void *ptr) { return ((uintptr_t)ptr & 15) == 0; }

extern "C" og_status og_cuda_attention(og_cuda_ctx *ctx, const og_attn_desc *d, const og_bf16 *q,
                                       const og_bf16 *k, const og_bf16 *v, void *out, og_dtype ot,
                                       float *lse)
{
    int kv_heads = d->kv_heads ? d->kv_heads : d->heads;
    /* heads is the flash kernel's gridDim.y, at most 65535. */
    if (d->heads <= 0 || d->heads > OG_CUDA_MAX_GRID_YZ || kv_heads <= 0 || d->heads % kv_heads ||
        d->head_dim <= 0 || d->head_dim > 32 * PLAIN_MAX_PER_LANE || d->head_dim % 2 || d->sq < 0 ||
        d->skv < 0)
        return og_fail(OG_ERR_INVALID_ARG, "attention: %d heads over %d kv heads of head_dim %d "
                       "(at most %lld heads; head_dim must be even and at most %d)", d->heads,
                       kv_heads, d->head_dim, OG_CUDA_MAX_GRID_YZ, 32 * PLAIN_MAX_PER_LANE);
    if (ot != OG_BF16 && ot != OG_F32)
        return og_fail(OG_ERR_UNSUPPORTED, "attention output of %s", og_dtype_name(ot));
    OG_TRY(og_cuda_use(ctx));
    attn_params p;
    p.q = (const bf16 *)q;
    p.k = (const bf16 *)k;
    p.v = (const bf16 *)v;
    p.out = out;
    p.lse = lse;
    p.kv_valid = d->kv_valid;
    p.sq = d->sq;
    p.skv = d->skv;
    p.q_stride = d->q_stride;
    p.k_stride = d->k_stride;
    p.v_stride = d->v_stride;
    p.o_stride = d->o_stride;
    p.heads = d->heads;
    p.group = d->heads / kv_heads;
    p.head_dim = d->head_dim;
    p.scale_log2 = d->scale * LOG2E;
    p.causal = d->causal;
    p.out_f32 = ot == OG_F32;
    if (p.sq == 0)
        return OG_OK;
    bool tc = (d->head_dim == 64 || d->head_dim == 128) && aligned16(q) && aligned16(k) &&
              aligned16(v) && aligned16(out) && d->q_stride % 8 == 0 && d->k_stride % 8 == 0 &&
              d->v_stride % 8 == 0 && d->o_stride % 8 == 0;
    if (tc && d->head_dim == 64)
        return launch_flash<64>(ctx, p);
    if (tc)
        return launch_flash<128>(ctx, p);
    int64_t warps = p.sq * p.heads;
    plain_attn_kernel<<<(unsigned)((warps + 7) / 8), 256, 0, ctx->stream>>>(p);
    OG_CUDA_LAUNCHED("attention");
    return OG_OK;
}
