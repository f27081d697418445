/* Blockwise (flash-style) attention on the CPU: a block of BQ queries against blocks of BK keys,
 * with an online softmax in fp32, so scores take O(BQ x BK) per thread whatever sq and skv are
 * (keys and values are packed head by head once per call, a copy of their size; that and the
 * per-thread buffers are the caller's scratch). The query block is transposed once
 * ([head_dim, BQ]), so scores come out key-major
 * (s[key][query]) straight from K's rows, and the softmax statistics (max, sum, rescale) are
 * vector operations across the block's queries. Scores are kept in base 2 (q is pre-scaled by
 * scale * log2(e)), so every exponential is an exp2. The two products (Q.K^T, P.V) are AVX-512
 * register-blocked kernels with plain loops as the portable fallback. Work is split over
 * (head, query block) with OpenMP, a head's query blocks next to each other so that the threads
 * share its keys and values in cache.
 * In the opt-in bf16 precision (og_gemm_set_precision(OG_GEMM_BF16)) the two products run on the
 * GEMM library's bf16 units instead, whole score rows at a time (attention_bf16). */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "core/cpu/gemm.h"
#include "core/cpu/vmath.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define BQ 64 /* queries per block: one key's scores are 4 vectors of 16 */
#define BK 128 /* keys per block (a multiple of 4: the score kernel takes keys four at a time) */
#define LOG2E 1.4426950408889634
#define LN2 0.6931471805599453
#define SCORE_FLOATS (1 << 17) /* bf16 path: f32 scores held at a time (4 MB) */

/* One call's scratch, one arena block of pieces in this order, each 64-byte aligned. fp32: keys
 * and values packed per head ([kv_heads, skv, dh] each), then `threads` block buffers of
 * thread_floats each (attn_scratch below). bf16: q, k, v rounded to bf16 head-major, the
 * probabilities [qc, skv] in bf16, the f32 scores [qc, skv] with the output chunk [qc, dh]
 * after them, and the row max and sum [2, qc]. */
enum { PIECE_QKV_B = 0, PIECE_K_B, PIECE_V_B, PIECE_P_B, PIECE_S, PIECE_M, NPIECES };
enum { PIECE_KV = 0, PIECE_THREADS };

typedef struct {
    bool bf16;
    int threads;          /* fp32 */
    size_t thread_floats; /* fp32 */
    int64_t qc;           /* bf16: query rows per chunk of scores */
    size_t bytes[NPIECES];
} attn_plan;

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* The path og_attention takes for d (already checked) and its scratch; kvh = kv heads. */
static attn_plan plan_for(const og_attn_desc *d, int kvh)
{
    attn_plan p = {.bf16 = og_gemm_get_precision() == OG_GEMM_BF16 && d->skv > 0};
    const int dh = d->head_dim, dp = (dh + 15) & ~15;
    const int64_t sq = d->sq, skv = d->skv, kw = (int64_t)kvh * dh;
    if (p.bf16) {
        int64_t chunks = (sq * skv + SCORE_FLOATS - 1) / SCORE_FLOATS;
        chunks = chunks < 1 ? 1 : chunks > sq ? sq : chunks;
        p.qc = (sq + chunks - 1) / chunks;
        p.bytes[PIECE_QKV_B] = (size_t)(sq * d->heads * dh) * 2;
        p.bytes[PIECE_K_B] = p.bytes[PIECE_V_B] = (size_t)(skv * kw) * 2;
        p.bytes[PIECE_P_B] = (size_t)(p.qc * skv) * 2;
        p.bytes[PIECE_S] = (size_t)(p.qc * (skv + dh)) * sizeof(float);
        p.bytes[PIECE_M] = (size_t)(2 * p.qc) * sizeof(float);
    } else {
        /* Every part of a thread's buffers is a multiple of 16 floats, so each stays aligned. */
        p.threads = omp_get_max_threads();
        p.thread_floats = (size_t)dp * BQ + (size_t)BK * BQ + (size_t)BQ * dp + dp + 3 * BQ;
        p.bytes[PIECE_KV] = (size_t)(2 * skv * kw) * sizeof(float);
        p.bytes[PIECE_THREADS] = (size_t)p.threads * p.thread_floats * sizeof(float);
    }
    return p;
}

static size_t plan_total(const attn_plan *p)
{
    size_t total = 0;
    for (int i = 0; i < NPIECES; i++)
        total += round64(p->bytes[i]);
    return total;
}

/* The plan's pieces carved out of one block taken from the arena, or NULL when it is full. */
static char *plan_carve(const attn_plan *p, og_arena *a, char *piece[NPIECES])
{
    char *base = og_arena_alloc(a, plan_total(p));
    for (size_t i = 0, at = 0; base && i < NPIECES; at += round64(p->bytes[i]), i++)
        piece[i] = base + at;
    return base;
}

typedef struct {
    float *qt;    /* [head_dim, BQ] pre-scaled queries, transposed; columns past the block are 0 */
    float *s;     /* [BK, BQ] scores, then probabilities */
    float *o;     /* [BQ, dp] unnormalised output */
    float *zero;  /* [dp] zeros: the key row read for keys past the end of a block */
    float *m;     /* [BQ] running max (base-2 units; -inf while a query has seen nothing) */
    float *l;     /* [BQ] running sum of exp2(s - m) */
    float *alpha; /* [BQ] factor the old output is scaled by in this step */
} attn_scratch;

/* s[j, 0:BQ] = k[j, :] . qt[:, 0:BQ] for keys j < n (rows up to n rounded to 4 are written). */
static void scores_block(float *restrict s, const float *restrict qt, const float *k,
                         int64_t k_stride, int n, int dh, const float *zero)
{
#ifdef __AVX512F__
    for (int j = 0; j < n; j += 4) {
        const float *kr[4];
        for (int r = 0; r < 4; r++)
            kr[r] = j + r < n ? k + (int64_t)(j + r) * k_stride : zero;
        __m512 acc[4][4];
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                acc[r][c] = _mm512_setzero_ps();
        for (int d = 0; d < dh; d++) {
            const float *qd = qt + (int64_t)d * BQ;
            __m512 q0 = _mm512_load_ps(qd), q1 = _mm512_load_ps(qd + 16);
            __m512 q2 = _mm512_load_ps(qd + 32), q3 = _mm512_load_ps(qd + 48);
            for (int r = 0; r < 4; r++) {
                __m512 kb = _mm512_set1_ps(kr[r][d]);
                acc[r][0] = _mm512_fmadd_ps(kb, q0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(kb, q1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(kb, q2, acc[r][2]);
                acc[r][3] = _mm512_fmadd_ps(kb, q3, acc[r][3]);
            }
        }
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                _mm512_store_ps(s + (int64_t)(j + r) * BQ + 16 * c, acc[r][c]);
    }
#else
    (void)zero;
    for (int j = 0; j < n; j++) {
        float *restrict sj = s + (int64_t)j * BQ;
        const float *kj = k + (int64_t)j * k_stride;
        for (int i = 0; i < BQ; i++)
            sj[i] = 0.0f;
        for (int d = 0; d < dh; d++) {
            const float kv = kj[d], *restrict qd = qt + (int64_t)d * BQ;
            for (int i = 0; i < BQ; i++)
                sj[i] += kv * qd[i];
        }
    }
#endif
}

/* Online-softmax step over keys 0..n-1 of the block (scores already masked with -inf): updates
 * m and l, turns s into probabilities and sets alpha, all across the block's BQ queries. */
static void softmax_block(float *restrict s, int n, float *restrict m, float *restrict l,
                          float *restrict alpha)
{
    float bmax[BQ], msafe[BQ], sum[BQ];
#pragma omp simd
    for (int i = 0; i < BQ; i++)
        bmax[i] = -INFINITY, sum[i] = 0.0f;
    for (int j = 0; j < n; j++) {
        const float *restrict sj = s + (int64_t)j * BQ;
#pragma omp simd
        for (int i = 0; i < BQ; i++)
            bmax[i] = sj[i] > bmax[i] ? sj[i] : bmax[i];
    }
#pragma omp simd
    for (int i = 0; i < BQ; i++) {
        float mnew = bmax[i] > m[i] ? bmax[i] : m[i];
        /* A query that has seen no key yet keeps -inf; subtracting 0 then gives exp2(-inf) = 0. */
        msafe[i] = mnew == -INFINITY ? 0.0f : mnew;
        alpha[i] = og_vexp2(m[i] - msafe[i]);
        m[i] = mnew;
    }
    for (int j = 0; j < n; j++) {
        float *restrict sj = s + (int64_t)j * BQ;
#pragma omp simd
        for (int i = 0; i < BQ; i++) {
            sj[i] = og_vexp2(sj[i] - msafe[i]);
            sum[i] += sj[i];
        }
    }
#pragma omp simd
    for (int i = 0; i < BQ; i++)
        l[i] = l[i] * alpha[i] + sum[i];
}

#ifdef __AVX512F__
static inline __mmask16 tail_mask(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
}
#endif

/* o[i, :] = alpha[i] o[i, :] + sum_j p[j, i] v[j, :] for queries i < rows (a multiple of 4). */
static void pv_block(float *restrict o, const float *restrict p, const float *restrict alpha,
                     const float *v, int64_t v_stride, int n, int rows, int dp, int dh)
{
#ifdef __AVX512F__
    for (int i0 = 0; i0 < rows; i0 += 4) {
        for (int c0 = 0; c0 < dh; c0 += 64) {
            __mmask16 mk[4];
            for (int c = 0; c < 4; c++)
                mk[c] = tail_mask(dh - c0 - 16 * c);
            __m512 acc[4][4];
            for (int i = 0; i < 4; i++) {
                __m512 a = _mm512_set1_ps(alpha[i0 + i]);
                const float *oi = o + (int64_t)(i0 + i) * dp + c0;
                for (int c = 0; c < 4; c++)
                    acc[i][c] = _mm512_mul_ps(a, _mm512_maskz_loadu_ps(mk[c], oi + 16 * c));
            }
            for (int j = 0; j < n; j++) {
                const float *vj = v + (int64_t)j * v_stride + c0;
                const float *pj = p + (int64_t)j * BQ + i0;
                __m512 v0 = _mm512_maskz_loadu_ps(mk[0], vj);
                __m512 v1 = _mm512_maskz_loadu_ps(mk[1], vj + 16);
                __m512 v2 = _mm512_maskz_loadu_ps(mk[2], vj + 32);
                __m512 v3 = _mm512_maskz_loadu_ps(mk[3], vj + 48);
                for (int i = 0; i < 4; i++) {
                    __m512 pb = _mm512_set1_ps(pj[i]);
                    acc[i][0] = _mm512_fmadd_ps(pb, v0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(pb, v1, acc[i][1]);
                    acc[i][2] = _mm512_fmadd_ps(pb, v2, acc[i][2]);
                    acc[i][3] = _mm512_fmadd_ps(pb, v3, acc[i][3]);
                }
            }
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < 4; c++)
                    _mm512_mask_storeu_ps(o + (int64_t)(i0 + i) * dp + c0 + 16 * c, mk[c],
                                          acc[i][c]);
        }
    }
#else
    for (int i = 0; i < rows; i++) {
        float *restrict oi = o + (int64_t)i * dp;
        for (int d = 0; d < dh; d++)
            oi[d] *= alpha[i];
        for (int j = 0; j < n; j++) {
            const float pj = p[(int64_t)j * BQ + i], *restrict vj = v + (int64_t)j * v_stride;
            for (int d = 0; d < dh; d++)
                oi[d] += pj * vj[d];
        }
    }
#endif
}

/* One (head, query block): queries q0..q0+nq of head h against every visible key; kh and vh are
 * the head's keys and values packed [skv, dh]. */
static void attn_block(const og_attn_desc *d, const float *q, const float *kh, const float *vh,
                       float *out, float *lse, int h, int64_t q0, int nq, int dp,
                       attn_scratch *w)
{
    const int dh = d->head_dim;
    const int rows = (nq + 3) & ~3;
    const float qs = (float)(d->scale * LOG2E);

    memset(w->qt, 0, (size_t)dh * BQ * sizeof(float));
    memset(w->o, 0, (size_t)BQ * dp * sizeof(float));
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (q0 + i) * d->q_stride + (int64_t)h * dh;
        for (int c = 0; c < dh; c++)
            w->qt[(int64_t)c * BQ + i] = qi[c] * qs;
    }
    for (int i = 0; i < BQ; i++)
        w->m[i] = -INFINITY, w->l[i] = 0.0f;

    /* Causal: query i sees keys j <= i + off, so the block needs keys below q0 + nq + off. */
    const int64_t off = d->skv - d->sq;
    int64_t kv_end = d->skv;
    if (d->causal && q0 + nq + off < kv_end)
        kv_end = q0 + nq + off;

    for (int64_t j0 = 0; j0 < kv_end; j0 += BK) {
        const int n = (int)(kv_end - j0 < BK ? kv_end - j0 : BK);
        bool any = !d->kv_valid;
        for (int j = 0; j < n && !any; j++)
            any = d->kv_valid[j0 + j] != 0;
        if (!any)
            continue;
        scores_block(w->s, w->qt, kh + j0 * dh, dh, n, dh, w->zero);
        for (int j = 0; j < n; j++) {
            float *sj = w->s + (int64_t)j * BQ;
            int64_t first = 0; /* queries before `first` do not see key j0 + j */
            if (d->kv_valid && !d->kv_valid[j0 + j])
                first = BQ;
            else if (d->causal)
                first = j0 + j - off - q0;
            first = first < 0 ? 0 : first > BQ ? BQ : first;
            for (int64_t i = 0; i < first; i++)
                sj[i] = -INFINITY;
        }
        softmax_block(w->s, n, w->m, w->l, w->alpha);
        pv_block(w->o, w->s, w->alpha, vh + j0 * dh, dh, n, rows, dp, dh);
    }

    for (int i = 0; i < nq; i++) {
        float *oi = out + (q0 + i) * d->o_stride + (int64_t)h * dh;
        const float l = w->l[i], inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int c = 0; c < dh; c++)
            oi[c] = w->o[(int64_t)i * dp + c] * inv;
        if (lse)
            lse[(q0 + i) * d->heads + h] =
                l > 0.0f ? (float)(((double)w->m[i] + log2((double)l)) * LN2) : -INFINITY;
    }
}

/* Softmax numerators of one bf16-path score row: p[j] = bf16(2^(s[j] c - m)) over the keys the
 * query sees (j < lim and valid; the rest get 0), m the row's max of s[j] c. Returns the sum of
 * the rounded p (the P.V product multiplies exactly those) and stores m; a row that sees no key
 * gets m = -inf and sum 0. Masked scores are set to -inf first so that the loops vectorise, and
 * in 512-bit vectors (GCC's default for this CPU is 256): the row's exp2 is a good part of the
 * bf16 attention's time. */
__attribute__((target("prefer-vector-width=512"))) static float softmax_row_bf16(uint16_t *restrict p, float *restrict s, int64_t skv, int64_t lim,
                              const uint8_t *valid, float c, float *m_out)
{
    if (valid || lim < skv) {
#pragma omp simd
        for (int64_t j = 0; j < skv; j++)
            s[j] = j >= lim || (valid && !valid[j]) ? -INFINITY : s[j];
    }
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < skv; j++)
        mx = s[j] > mx ? s[j] : mx;
    const float m = mx * c;
    float sum = 0.0f;
    if (mx == -INFINITY) {
        memset(p, 0, (size_t)skv * sizeof *p);
    } else {
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < skv; j++) {
            uint16_t b = og_f32_to_bf16(og_vexp2(s[j] * c - m));
            p[j] = b;
            sum += og_bf16_to_f32(b);
        }
    }
    *m_out = m;
    return sum;
}

/* dst[h, t, :] = bf16(src[t * stride + h * dh + :]): head-major, so that every matrix the bf16
 * matmuls read is dense (the library's AMX kernels take dense operands only). */
static void to_bf16_heads(uint16_t *dst, const float *src, int64_t tokens, int heads, int dh,
                          int64_t stride)
{
#pragma omp parallel for if (tokens * heads * dh > 65536)
    for (int64_t t = 0; t < tokens; t++)
        for (int h = 0; h < heads; h++) {
            const float *s = src + t * stride + (int64_t)h * dh;
            uint16_t *o = dst + ((int64_t)h * tokens + t) * dh;
#pragma omp simd
            for (int c = 0; c < dh; c++)
                o[c] = og_f32_to_bf16(s[c]);
        }
}

/* q, k and v rounded to bf16 once, head-major; then per head and chunk of queries, S = q.k^T and
 * O = P.v as two bf16 matmuls of the GEMM library with the exact f32 softmax between them.
 * Memory: the bf16 copies and a [chunk, skv] block of scores, never sq x skv (the plan's
 * pieces). */
static og_status attention_bf16(const og_attn_desc *d, int kvh, const float *q, const float *k,
                                const float *v, float *out, float *lse, const attn_plan *p,
                                char *const piece[NPIECES])
{
    const int dh = d->head_dim, group = d->heads / kvh;
    const int64_t sq = d->sq, skv = d->skv, qc = p->qc, off = skv - sq;
    const float c = (float)(d->scale * LOG2E);
    uint16_t *qb = (uint16_t *)piece[PIECE_QKV_B], *kb = (uint16_t *)piece[PIECE_K_B];
    uint16_t *vb = (uint16_t *)piece[PIECE_V_B], *pb = (uint16_t *)piece[PIECE_P_B];
    float *s = (float *)piece[PIECE_S], *m = (float *)piece[PIECE_M];
    float *l = m + qc, *ob = s + qc * skv;
    og_status st = OG_OK;
    to_bf16_heads(qb, q, sq, d->heads, dh, d->q_stride);
    to_bf16_heads(kb, k, skv, kvh, dh, d->k_stride);
    to_bf16_heads(vb, v, skv, kvh, dh, d->v_stride);
    for (int h = 0; h < d->heads && st == OG_OK; h++) {
        const uint16_t *kh = kb + (int64_t)(h / group) * skv * dh;
        const uint16_t *vh = vb + (int64_t)(h / group) * skv * dh;
        for (int64_t q0 = 0; q0 < sq && st == OG_OK; q0 += qc) {
            const int64_t nq = sq - q0 < qc ? sq - q0 : qc;
            if ((st = og_gemm_bf16_strided(nq, skv, dh, qb + ((int64_t)h * sq + q0) * dh, dh, kh,
                                           1, dh, s, skv)))
                break;
#pragma omp parallel for
            for (int64_t i = 0; i < nq; i++) {
                int64_t lim = d->causal ? q0 + i + off + 1 : skv;
                lim = lim < 0 ? 0 : lim > skv ? skv : lim;
                l[i] = softmax_row_bf16(pb + i * skv, s + i * skv, skv, lim, d->kv_valid, c,
                                        &m[i]);
            }
            if ((st = og_gemm_bf16_strided(nq, dh, skv, pb, skv, vh, dh, 1, ob, dh)))
                break;
#pragma omp parallel for if (nq * dh > 65536)
            for (int64_t i = 0; i < nq; i++) {
                const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
                float *o = out + (q0 + i) * d->o_stride + (int64_t)h * dh;
#pragma omp simd
                for (int c0 = 0; c0 < dh; c0++)
                    o[c0] = ob[i * dh + c0] * inv;
                if (lse)
                    lse[(q0 + i) * d->heads + h] =
                        l[i] > 0.0f ? (float)(((double)m[i] + log2((double)l[i])) * LN2)
                                    : -INFINITY;
            }
        }
    }
    return st;
}

/* Attention's fp32 path: keys and values packed once, then (head, query block) items over the
 * team, each thread with its own block buffers (the plan's pieces). */
static void attention_f32(const og_attn_desc *d, int kvh, const float *q, const float *k,
                          const float *v, float *out, float *lse, const attn_plan *p,
                          char *const piece[NPIECES])
{
    const int dh = d->head_dim, dp = (dh + 15) & ~15; /* output rows padded to whole vectors */
    const int64_t nqb = (d->sq + BQ - 1) / BQ, items = nqb * d->heads, skv = d->skv;
    const int64_t kw = (int64_t)kvh * dh;
    /* Keys and values packed head by head, once per call: the kernels then read contiguous
     * rows, where tokens of one head are heads * head_dim apart (a page or more, a TLB miss per
     * row), and no query block packs them again. */
    float *kp = (float *)piece[PIECE_KV], *vp = kp + skv * kw;

    /* The team is at most omp_get_max_threads() = p->threads strong: one buffer each. */
#pragma omp parallel
    {
#pragma omp for
        for (int64_t j = 0; j < skv; j++)
            for (int hh = 0; hh < kvh; hh++) {
                memcpy(kp + (hh * skv + j) * dh, k + j * d->k_stride + (int64_t)hh * dh,
                       (size_t)dh * sizeof *kp);
                memcpy(vp + (hh * skv + j) * dh, v + j * d->v_stride + (int64_t)hh * dh,
                       (size_t)dh * sizeof *vp);
            }
        float *buf = (float *)piece[PIECE_THREADS] +
                     (size_t)omp_get_thread_num() * p->thread_floats;
        attn_scratch w = {.qt = buf};
        w.s = w.qt + (size_t)dp * BQ;
        w.o = w.s + (size_t)BK * BQ;
        w.zero = w.o + (size_t)BQ * dp;
        w.m = w.zero + dp;
        w.l = w.m + BQ;
        w.alpha = w.l + BQ;
        memset(w.zero, 0, (size_t)dp * sizeof(float));
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            const int h = (int)(it / nqb);
            const int64_t q0 = it % nqb * BQ;
            const int nq = (int)(d->sq - q0 < BQ ? d->sq - q0 : BQ);
            const int64_t kvoff = (int64_t)(h / (d->heads / kvh)) * skv * dh;
            attn_block(d, q, kp + kvoff, vp + kvoff, out, lse, h, q0, nq, dp, &w);
        }
    }
}

static int kv_heads_of(const og_attn_desc *d) { return d->kv_heads ? d->kv_heads : d->heads; }

/* Whether the sizes are consistent: heads a multiple of kv_heads, strides at least a row. */
static bool attn_sizes_ok(const og_attn_desc *d)
{
    const int kvh = kv_heads_of(d);
    if (d->sq < 0 || d->skv < 0 || d->heads <= 0 || d->head_dim <= 0 || kvh <= 0 ||
        d->heads % kvh)
        return false;
    const int64_t qw = (int64_t)d->heads * d->head_dim, kw = (int64_t)kvh * d->head_dim;
    return d->q_stride >= qw && d->o_stride >= qw && d->k_stride >= kw && d->v_stride >= kw;
}

size_t og_attention_scratch_bytes(const og_attn_desc *d)
{
    if (!attn_sizes_ok(d) || d->sq == 0)
        return 0; /* a bad descriptor is the call's error to report */
    attn_plan p = plan_for(d, kv_heads_of(d));
    return og_arena_need(plan_total(&p));
}

og_status og_attention(const og_attn_desc *d, const float *q, const float *k, const float *v,
                       float *out, float *lse, og_arena *scratch)
{
    const int kvh = kv_heads_of(d);
    if (!attn_sizes_ok(d))
        return og_fail(OG_ERR_INVALID_ARG,
                       "attention: bad sizes (sq %lld, skv %lld, heads %d, kv_heads %d, head_dim "
                       "%d, strides q %lld k %lld v %lld o %lld): heads must be a multiple of "
                       "kv_heads and each stride at least heads x head_dim",
                       (long long)d->sq, (long long)d->skv, d->heads, kvh, d->head_dim,
                       (long long)d->q_stride, (long long)d->k_stride, (long long)d->v_stride,
                       (long long)d->o_stride);
    if (d->sq == 0)
        return OG_OK;
    const attn_plan p = plan_for(d, kvh);
    og_op_scratch sc;
    OG_TRY(og_op_scratch_begin(&sc, scratch, og_arena_need(plan_total(&p))));
    char *piece[NPIECES];
    og_status st = OG_OK;
    if (!plan_carve(&p, sc.a, piece))
        st = og_fail_context(OG_ERR_OOM, "attention: %lld x %lld scratch (size it with "
                             "og_attention_scratch_bytes)", (long long)d->sq, (long long)d->skv);
    else if (p.bf16)
        st = attention_bf16(d, kvh, q, k, v, out, lse, &p, piece);
    else
        attention_f32(d, kvh, q, k, v, out, lse, &p, piece);
    og_op_scratch_end(&sc);
    return st;
}
