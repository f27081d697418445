/* The CUDA backend's pure index math (core/cuda/cuda_plan.h, the functions the kernels and host
 * files call) checked on the CPU, in every build, against models written from the documentation:
 *   - the flash kernel's swizzled tiles, ldmatrix addresses and accumulator maps, run through a
 *     model of ldmatrix (.trans) and mma.m16n8k16 built from the PTX ISA's fragment tables, must
 *     give exactly Q K^T and P V (small integers, exact in fp32), conflict-free and aligned;
 *   - the kernel's masking and online-softmax rules, run tile by tile, against softmax attention;
 *   - the row-major -> cuBLASLt column-major operand mapping, run through a model of cuBLASLt's
 *     column-major D = op(A) op(B), must equal a naive row-major GEMM for every transpose pair;
 *   - the causal convolution's two 2-D copies, run with cudaMemcpy2D's semantics, must build the
 *     time-padded input;
 *   - launch geometry stays inside the grid limits and covers the work. */
#include <string.h>

#include "core/cuda/cuda_plan.h"
#include "core/dtype.h"
#include "testutil.h"

/* ---- a warp of the PTX ISA, modelled from its documented layouts ---------------------------- */

typedef uint16_t bf16_t;

static float bf(bf16_t v) { return og_bf16_to_f32(v); }
static uint32_t pack2(bf16_t lo, bf16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }

/* ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16: lanes 8m..8m+7 give the start (element
 * offset) of rows 0..7 of matrix m; each row is 8 consecutive b16. Register m of lane L holds
 * row L/4, columns 2(L%4) and 2(L%4)+1 of matrix m, or with .trans (column-major load) column L/4,
 * rows 2(L%4) and 2(L%4)+1. */
static void ldmatrix_x4(const bf16_t *smem, const int addr[32], bool trans, uint32_t out[32][4])
{
    for (int lane = 0; lane < 32; lane++)
        for (int m = 0; m < 4; m++) {
            int i = lane / 4, j = 2 * (lane % 4);
            bf16_t lo, hi;
            if (!trans) {
                lo = smem[addr[8 * m + i] + j];
                hi = smem[addr[8 * m + i] + j + 1];
            } else {
                lo = smem[addr[8 * m + j] + i];
                hi = smem[addr[8 * m + j + 1] + i];
            }
            out[lane][m] = pack2(lo, hi);
        }
}

/* mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d = a b + d, with the fragment tables:
 * groupID g = lane >> 2, threadID_in_group t = lane % 4;
 * A (a0..a7, two per register): row g for a0,a1,a4,a5, g+8 otherwise; col 2t + (i & 1), +8 for
 * i >= 4. B (b0..b3): row 2t + (i & 1), +8 for i >= 2; col g. C/D (c0..c3): row g for i < 2,
 * g+8 otherwise; col 2t + (i & 1). */
static void mma_m16n8k16(float d[32][4], const uint32_t a[32][4], const uint32_t b[32][2])
{
    double A[16][16], B[16][8], D[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane % 4;
        for (int i = 0; i < 8; i++) {
            bf16_t v = (bf16_t)(a[lane][i / 2] >> (16 * (i % 2)));
            int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
            int col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
            A[row][col] = bf(v);
        }
        for (int i = 0; i < 4; i++) {
            bf16_t v = (bf16_t)(b[lane][i / 2] >> (16 * (i % 2)));
            B[2 * t + (i & 1) + (i >= 2 ? 8 : 0)][g] = bf(v);
        }
        for (int i = 0; i < 4; i++)
            D[i < 2 ? g : g + 8][2 * t + (i & 1)] = d[lane][i];
    }
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++)
            for (int k = 0; k < 16; k++)
                D[r][c] += A[r][k] * B[k][c];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane >> 2, t = lane % 4;
        for (int i = 0; i < 4; i++)
            d[lane][i] = (float)D[i < 2 ? g : g + 8][2 * t + (i & 1)];
    }
}

/* An ldmatrix phase (one 8x8 matrix) is free of bank conflicts when its eight 16-byte rows fall
 * in eight different 16-byte bank groups of a 128-byte line; every row must be 16-byte aligned. */
static int ldsm_conflicts(const int addr[32])
{
    int bad = 0;
    for (int m = 0; m < 4; m++) {
        int used = 0;
        for (int r = 0; r < 8; r++) {
            int byte = addr[8 * m + r] * 2;
            bad += byte % 16 != 0;
            int group = (byte / 16) % 8;
            bad += (used >> group) & 1;
            used |= 1 << group;
        }
    }
    return bad;
}

/* Values in -3..3, exact in bf16, so every product and sum below is exact in fp32. */
static bf16_t small(og_test_rng *r)
{
    float x;
    og_test_fill(r, &x, 1, 3.5f);
    return og_f32_to_bf16((float)(int)x);
}

/* One block of the flash kernel: 4 warps x 16 query rows against one 64-key tile, for head dim
 * hd. Loads Q, K, V into swizzled tiles as load_tile does, then runs each warp's S = Q K^T and
 * O = P V through the kernel's maps and the PTX model. */
static void check_flash_tile(int hd, uint64_t seed)
{
    og_test_rng rng = {seed};
    const int rows = OG_FA_BM, keys = OG_FA_BN, chunks = hd / 8;
    bf16_t *Q = malloc(sizeof(bf16_t) * (size_t)(rows * hd));
    bf16_t *K = malloc(sizeof(bf16_t) * (size_t)(keys * hd));
    bf16_t *V = malloc(sizeof(bf16_t) * (size_t)(keys * hd));
    bf16_t *P = malloc(sizeof(bf16_t) * (size_t)(rows * keys));
    for (int i = 0; i < rows * hd; i++)
        Q[i] = small(&rng);
    for (int i = 0; i < keys * hd; i++) {
        K[i] = small(&rng);
        V[i] = small(&rng);
    }
    for (int i = 0; i < rows * keys; i++)
        P[i] = small(&rng);

    /* Tiles: global (row, chunk) -> og_fa_swz; every slot must be written exactly once. */
    bf16_t *sQ = calloc((size_t)(rows * hd), sizeof(bf16_t));
    bf16_t *sK = calloc((size_t)(keys * hd), sizeof(bf16_t));
    bf16_t *sV = calloc((size_t)(keys * hd), sizeof(bf16_t));
    int *hits = calloc((size_t)(rows * hd), sizeof(int));
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < chunks; c++) {
            int o = og_fa_swz(hd, r, c);
            CHECK(o >= r * hd && o + 8 <= (r + 1) * hd && o % 8 == 0,
                  "hd %d: swizzled chunk (%d, %d) at %d leaves its row", hd, r, c, o);
            if (o < 0 || o + 8 > rows * hd)
                continue;
            for (int e = 0; e < 8; e++) {
                hits[o + e]++;
                sQ[o + e] = Q[r * hd + c * 8 + e];
                if (r < keys) {
                    sK[o + e] = K[r * hd + c * 8 + e];
                    sV[o + e] = V[r * hd + c * 8 + e];
                }
            }
        }
    int twice = 0;
    for (int i = 0; i < rows * hd; i++)
        twice += hits[i] != 1;
    CHECK(twice == 0, "hd %d: the swizzle is not a permutation (%d slots)", hd, twice);

    int s_bad = 0, o_bad = 0, conflicts = 0;
    int addr[32];
    for (int warp = 0; warp < 4; warp++) {
        /* Q fragments, one per k-step, loaded once. */
        uint32_t(*qf)[32][4] = malloc(sizeof *qf * (size_t)(hd / 16));
        for (int ks = 0; ks < hd / 16; ks++) {
            for (int lane = 0; lane < 32; lane++) {
                int r, c;
                og_fa_ldsm_q(lane, ks, &r, &c);
                addr[lane] = og_fa_swz(hd, warp * 16 + r, c);
            }
            conflicts += ldsm_conflicts(addr);
            ldmatrix_x4(sQ, addr, false, qf[ks]);
        }
        /* S = Q K^T: 8 accumulator tiles of 8 keys. */
        float s[OG_FA_BN / 8][32][4];
        memset(s, 0, sizeof s);
        for (int np = 0; np < keys / 16; np++)
            for (int ks = 0; ks < hd / 16; ks++) {
                uint32_t b[32][4], b01[32][2], b23[32][2];
                for (int lane = 0; lane < 32; lane++) {
                    int r, c;
                    og_fa_ldsm_k(lane, np, ks, &r, &c);
                    addr[lane] = og_fa_swz(hd, r, c);
                }
                conflicts += ldsm_conflicts(addr);
                ldmatrix_x4(sK, addr, false, b);
                for (int lane = 0; lane < 32; lane++) {
                    b01[lane][0] = b[lane][0], b01[lane][1] = b[lane][1];
                    b23[lane][0] = b[lane][2], b23[lane][1] = b[lane][3];
                }
                mma_m16n8k16(s[2 * np], qf[ks], b01);
                mma_m16n8k16(s[2 * np + 1], qf[ks], b23);
            }
        for (int nt = 0; nt < keys / 8; nt++)
            for (int lane = 0; lane < 32; lane++)
                for (int e = 0; e < 4; e++) {
                    int i = warp * 16 + og_fa_acc_row(lane, e), j = nt * 8 + og_fa_acc_col(lane, e);
                    double ref = 0;
                    for (int d = 0; d < hd; d++)
                        ref += (double)bf(Q[i * hd + d]) * bf(K[j * hd + d]);
                    s_bad += s[nt][lane][e] != (float)ref;
                }

        /* P in the S accumulators (where the kernel's softmax leaves it), O = P V. */
        for (int nt = 0; nt < keys / 8; nt++)
            for (int lane = 0; lane < 32; lane++)
                for (int e = 0; e < 4; e++)
                    s[nt][lane][e] = bf(P[(warp * 16 + og_fa_acc_row(lane, e)) * keys + nt * 8 +
                                          og_fa_acc_col(lane, e)]);
        float(*o)[32][4] = calloc((size_t)(hd / 8), sizeof *o);
        for (int kk = 0; kk < keys / 16; kk++) {
            uint32_t a[32][4];
            for (int lane = 0; lane < 32; lane++)
                for (int r = 0; r < 4; r++) {
                    const float *src = s[og_fa_p_tile(kk, r)][lane];
                    a[lane][r] = pack2(og_f32_to_bf16(src[og_fa_p_elem(r)]),
                                       og_f32_to_bf16(src[og_fa_p_elem(r) + 1]));
                }
            for (int dp = 0; dp < hd / 16; dp++) {
                uint32_t b[32][4], b01[32][2], b23[32][2];
                for (int lane = 0; lane < 32; lane++) {
                    int r, c;
                    og_fa_ldsm_v(lane, kk, dp, &r, &c);
                    addr[lane] = og_fa_swz(hd, r, c);
                }
                conflicts += ldsm_conflicts(addr);
                ldmatrix_x4(sV, addr, true, b);
                for (int lane = 0; lane < 32; lane++) {
                    b01[lane][0] = b[lane][0], b01[lane][1] = b[lane][1];
                    b23[lane][0] = b[lane][2], b23[lane][1] = b[lane][3];
                }
                mma_m16n8k16(o[2 * dp], a, b01);
                mma_m16n8k16(o[2 * dp + 1], a, b23);
            }
        }
        for (int dn = 0; dn < hd / 8; dn++)
            for (int lane = 0; lane < 32; lane++)
                for (int e = 0; e < 4; e++) {
                    int i = warp * 16 + og_fa_acc_row(lane, e), d = dn * 8 + og_fa_acc_col(lane, e);
                    double ref = 0;
                    for (int j = 0; j < keys; j++)
                        ref += (double)bf(P[i * keys + j]) * bf(V[j * hd + d]);
                    o_bad += o[dn][lane][e] != (float)ref;
                }
        free(qf);
        free(o);
    }
    CHECK(s_bad == 0, "hd %d: %d elements of S = Q K^T differ from the naive product", hd, s_bad);
    CHECK(o_bad == 0, "hd %d: %d elements of O = P V differ from the naive product", hd, o_bad);
    CHECK(conflicts == 0, "hd %d: %d misaligned or bank-conflicting ldmatrix rows", hd, conflicts);
    /* Every (row, column) of an m16n8 tile is held by exactly one (lane, element). */
    int seen[16][8] = {{0}};
    for (int lane = 0; lane < 32; lane++)
        for (int e = 0; e < 4; e++)
            seen[og_fa_acc_row(lane, e)][og_fa_acc_col(lane, e)]++;
    int cover = 0;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 8; c++)
            cover += seen[r][c] != 1;
    CHECK(cover == 0, "accumulator map is not one-to-one (%d cells)", cover);
    CHECK(og_fa_smem_bytes(hd) <= 227 * 1024, "hd %d: %zu bytes of shared memory exceed sm_90's "
          "227 KiB per block", hd, og_fa_smem_bytes(hd));
    free(Q), free(K), free(V), free(P), free(sQ), free(sK), free(sV), free(hits);
}

/* The flash kernel's row algorithm with its own rules (og_fa_kv_end, og_fa_key_visible,
 * og_fa_rescale, og_fa_lse), tile by tile per block of OG_FA_BM queries, in fp32 without the bf16
 * rounding of P, against softmax attention in double: causal with sq != skv, padding masks, rows
 * that see no key at all, rows whose first tiles are fully masked. */
typedef struct {
    int64_t sq, skv;
    bool causal;
    int mask; /* 0: none; 1: keys 0..99 and every 7th masked; 2: all masked */
} fa_case;

static void check_flash_rows(fa_case c, uint64_t seed)
{
    og_test_rng rng = {seed};
    const int D = 8;
    float *q = malloc(sizeof(float) * (size_t)(c.sq * D)), *k = malloc(sizeof(float) * (size_t)(c.skv * D));
    float *v = malloc(sizeof(float) * (size_t)(c.skv * D));
    uint8_t *valid = malloc((size_t)c.skv + 1);
    og_test_fill(&rng, q, (size_t)(c.sq * D), 2.0f);
    og_test_fill(&rng, k, (size_t)(c.skv * D), 2.0f);
    og_test_fill(&rng, v, (size_t)(c.skv * D), 1.0f);
    for (int64_t j = 0; j < c.skv; j++)
        valid[j] = c.mask == 0 || (c.mask == 1 && j >= 100 && j % 7 != 3);
    const uint8_t *kv_valid = c.mask ? valid : NULL;
    const float scale = 0.35f, scale_log2 = scale * 1.4426950408889634f;
    int bad = 0, ninf = 0;
    for (int64_t m0 = 0; m0 < c.sq; m0 += OG_FA_BM) {
        const int64_t kv_end = og_fa_kv_end(c.causal, m0, c.sq, c.skv);
        for (int64_t i = m0; i < m0 + OG_FA_BM && i < c.sq; i++) {
            float m = -INFINITY, l = 0, o[8] = {0};
            for (int64_t key0 = 0; key0 < kv_end; key0 += OG_FA_BN) {
                float s[OG_FA_BN], mx = -INFINITY, base, alpha;
                for (int jj = 0; jj < OG_FA_BN; jj++) {
                    int64_t j = key0 + jj;
                    float dot = 0;
                    for (int d = 0; j < c.skv && d < D; d++)
                        dot += q[i * D + d] * k[j * D + d];
                    s[jj] = og_fa_key_visible(kv_valid, c.causal, c.sq, c.skv, i, j)
                                ? dot * scale_log2 : -INFINITY;
                    mx = fmaxf(mx, s[jj]);
                }
                m = og_fa_rescale(m, mx, &base, &alpha);
                l *= alpha;
                for (int d = 0; d < D; d++)
                    o[d] *= alpha;
                for (int jj = 0; jj < OG_FA_BN; jj++) {
                    float pe = exp2f(s[jj] - base);
                    l += pe;
                    for (int d = 0; pe != 0 && d < D; d++)
                        o[d] += pe * v[(key0 + jj) * D + d];
                }
            }
            float lse = og_fa_lse(m, l);
            /* Reference: every key, visibility by the plain rule, in double. */
            double mref = -INFINITY, lref = 0, oref[8] = {0};
            for (int64_t j = 0; j < c.skv; j++) {
                bool vis = (!kv_valid || kv_valid[j]) && (!c.causal || j - (c.skv - c.sq) <= i);
                if (!vis)
                    continue;
                double dot = 0;
                for (int d = 0; d < D; d++)
                    dot += (double)q[i * D + d] * k[j * D + d];
                mref = fmax(mref, dot * scale);
            }
            for (int64_t j = 0; j < c.skv && mref > -INFINITY; j++) {
                bool vis = (!kv_valid || kv_valid[j]) && (!c.causal || j - (c.skv - c.sq) <= i);
                if (!vis)
                    continue;
                double dot = 0;
                for (int d = 0; d < D; d++)
                    dot += (double)q[i * D + d] * k[j * D + d];
                double pe = exp(dot * scale - mref);
                lref += pe;
                for (int d = 0; d < D; d++)
                    oref[d] += pe * v[j * D + d];
            }
            if (lref == 0) {
                ninf++;
                bad += !(lse == -INFINITY && l == 0);
                for (int d = 0; d < D; d++)
                    bad += o[d] != 0;
                continue;
            }
            double want = mref + log(lref);
            bad += !(fabs(lse - want) <= 1e-5 * (1 + fabs(want)));
            for (int d = 0; d < D; d++)
                bad += !(fabs(o[d] / l - oref[d] / lref) <= 1e-5);
        }
    }
    CHECK(bad == 0, "flash rows sq=%lld skv=%lld causal=%d mask=%d: %d values differ from softmax "
          "attention", (long long)c.sq, (long long)c.skv, c.causal, c.mask, bad);
    if (c.mask == 2 || (c.causal && c.sq > c.skv))
        CHECK(ninf > 0, "sq=%lld skv=%lld: the case was meant to have rows with no key",
              (long long)c.sq, (long long)c.skv);
    free(q), free(k), free(v), free(valid);
}

/* ---- cuBLASLt operand mapping --------------------------------------------------------------- */

/* Element (i, j) of a cuBLASLt operand as the library reads it: column-major storage, then op. */
static double lt_at(const float *p, const og_lt_operand *o, uint64_t i, uint64_t j)
{
    if (o->trans) {
        uint64_t t = i;
        i = j;
        j = t;
    }
    return p[i + j * (uint64_t)o->ld];
}

/* cuBLASLt's D[m, n] = op(A)[m, k] op(B)[k, n], column-major, checked for consistent shapes and
 * ld >= rows as the library requires; D is written into c at its leading dimension. */
static bool lt_matmul(const float *pa, const og_lt_operand *a, const float *pb,
                      const og_lt_operand *b, float *pc, const og_lt_operand *c)
{
    uint64_t m = a->trans ? a->cols : a->rows, k = a->trans ? a->rows : a->cols;
    uint64_t kb = b->trans ? b->cols : b->rows, n = b->trans ? b->rows : b->cols;
    if (k != kb || c->rows != m || c->cols != n || a->ld < (int64_t)a->rows ||
        b->ld < (int64_t)b->rows || c->ld < (int64_t)c->rows)
        return false;
    for (uint64_t i = 0; i < m; i++)
        for (uint64_t j = 0; j < n; j++) {
            double acc = 0;
            for (uint64_t l = 0; l < k; l++)
                acc += lt_at(pa, a, i, l) * lt_at(pb, b, l, j);
            pc[i + j * (uint64_t)c->ld] = (float)acc;
        }
    return true;
}

static void check_lt_operands(bool ta, bool tb, int64_t M, int64_t N, int64_t K)
{
    og_test_rng rng = {(uint64_t)(1000 + 2 * ta + tb)};
    /* Row-major storage with padded rows, as og_cuda_gemm takes it. */
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int64_t lda = ac + 2, ldb = bc + 5, ldc = N + 3;
    float *A = malloc(sizeof(float) * (size_t)(ar * lda)), *B = malloc(sizeof(float) * (size_t)(br * ldb));
    float *C = calloc((size_t)(M * ldc), sizeof(float));
    og_test_fill(&rng, A, (size_t)(ar * lda), 1.0f);
    og_test_fill(&rng, B, (size_t)(br * ldb), 1.0f);
    og_lt_operand a, b, c;
    og_lt_operands(ta, tb, M, N, K, lda, ldb, ldc, &a, &b, &c);
    /* cuBLASLt's first operand is our B, its second our A. */
    CHECK(lt_matmul(B, &a, A, &b, C, &c), "ta=%d tb=%d: operand shapes do not chain", ta, tb);
    double worst = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double ref = 0;
            for (int64_t l = 0; l < K; l++)
                ref += (double)(ta ? A[l * lda + i] : A[i * lda + l]) *
                       (tb ? B[j * ldb + l] : B[l * ldb + j]);
            double e = fabs(C[i * ldc + j] - ref);
            worst = e > worst ? e : worst;
        }
    CHECK(worst < 1e-4, "ta=%d tb=%d %lldx%lldx%lld: cuBLASLt mapping differs from the row-major "
          "GEMM by %g", ta, tb, (long long)M, (long long)N, (long long)K, worst);
    free(A), free(B), free(C);
}

/* ---- the causal convolution's time padding ------------------------------------------------- */

/* cudaMemcpy2D's documented semantics: `rows` rows of `width` bytes, pitches in bytes, width no
 * more than either pitch. NULL src: cudaMemset2D with 0. */
static bool copy2d(char *dst, const char *src, const og_copy2d_plan *p)
{
    if (p->width > p->dpitch || (src && p->width > p->spitch))
        return false;
    for (size_t r = 0; r < p->rows; r++) {
        if (src)
            memcpy(dst + p->dst_off + r * p->dpitch, src + p->src_off + r * p->spitch, p->width);
        else
            memset(dst + p->dst_off + r * p->dpitch, 0, p->width);
    }
    return true;
}

/* xp[c, tau] is cache[c, tau] (or 0) for tau < kt-1, then x[c, tau - (kt-1)], frame by frame. */
static void check_causal_pad(int64_t cin, int64_t t, int kt, int64_t frame, bool with_cache)
{
    const int64_t tp = t + kt - 1;
    char *x = malloc((size_t)(cin * t * frame)), *cache = malloc((size_t)(cin * (kt - 1) * frame));
    char *xp = malloc((size_t)(cin * tp * frame));
    for (int64_t i = 0; i < cin * t * frame; i++)
        x[i] = (char)(i * 7 + 1);
    for (int64_t i = 0; i < cin * (kt - 1) * frame; i++)
        cache[i] = (char)(i * 5 + 3);
    memset(xp, 0x55, (size_t)(cin * tp * frame));
    og_copy2d_plan f, b;
    og_cuda_causal_pad_plan(cin, t, kt, frame, &f, &b);
    CHECK(copy2d(xp, with_cache ? cache : NULL, &f) && copy2d(xp, x, &b),
          "causal pad: a copy is wider than its pitch");
    int bad = 0;
    for (int64_t c = 0; c < cin; c++)
        for (int64_t tau = 0; tau < tp; tau++)
            for (int64_t i = 0; i < frame; i++) {
                char want = tau < kt - 1 ? (with_cache ? cache[(c * (kt - 1) + tau) * frame + i] : 0)
                                         : x[(c * t + tau - (kt - 1)) * frame + i];
                bad += xp[(c * tp + tau) * frame + i] != want;
            }
    CHECK(bad == 0, "causal pad cin=%lld t=%lld kt=%d cache=%d: %d bytes wrong", (long long)cin,
          (long long)t, kt, with_cache, bad);
    free(x), free(cache), free(xp);
}

/* ---- launch geometry ------------------------------------------------------------------------ */

static void check_geometry(void)
{
    const int64_t ns[] = {1, 255, 256, 257, 1LL << 20, 65535LL * 16 * 256, 65535LL * 16 * 256 + 1,
                          1LL << 40};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        unsigned b = og_cuda_blocks(ns[i], 256);
        CHECK(b >= 1 && (int64_t)b <= OG_CUDA_MAX_GRID_X, "n=%lld: %u blocks", (long long)ns[i], b);
        /* A grid-stride loop covers n with b blocks; without the cap it is one element each. */
        CHECK((int64_t)b * 256 >= ns[i] || b == 65535u * 16, "n=%lld: %u blocks too few",
              (long long)ns[i], b);
    }
    const int64_t gs[] = {1, 7, 16384, 16385, 800012, 4LL << 20, 1LL << 33};
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
        int64_t chunks, chunk;
        og_cuda_gn_chunks(gs[i], &chunks, &chunk);
        CHECK(chunks >= 1 && chunks <= 256 && chunks * chunk >= gs[i] &&
                  (chunks - 1) * chunk < gs[i],
              "group of %lld: %lld chunks of %lld", (long long)gs[i], (long long)chunks,
              (long long)chunk);
    }
}

int main(void)
{
    check_flash_tile(64, 1);
    check_flash_tile(128, 2);
    const fa_case rows[] = {
        {150, 90, true, 0},   /* the early queries see no key */
        {100, 250, true, 0},  /* more keys than queries: the causal edge moves past tile ends */
        {128, 193, true, 0},  /* a block's last row sees exactly one key of a further tile */
        {130, 333, false, 1}, /* the first two tiles masked for every row */
        {40, 70, false, 2},   /* no key at all */
        {64, 64, true, 1},
        {1, 1, true, 0},
        {77, 200, false, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        check_flash_rows(rows[i], 10 + i);
    for (int t = 0; t < 4; t++)
        check_lt_operands(t & 1, t >> 1, 13, 9, 21);
    check_lt_operands(false, true, 1, 40, 16); /* a linear layer with one token */
    check_causal_pad(3, 4, 3, 24, true);
    check_causal_pad(5, 1, 3, 10, false);
    check_causal_pad(2, 6, 2, 8, true);
    check_geometry();
    return og_test_finish("test_cuda_layouts");
}
