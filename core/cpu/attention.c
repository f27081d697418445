/* Blockwise (flash-style) attention on the CPU: a block of BQ queries against blocks of BK keys,
 * with an online softmax in fp32, so memory is O(BQ x BK) per thread whatever sq and skv are.
 * Scores are kept in base 2 (q is pre-scaled by scale * log2(e)) so every exponential is an exp2.
 * The two inner products (Q.K^T and P.V) and the exp2 are AVX-512 kernels, with plain loops as
 * the portable fallback. Work is split over (head, query block) with OpenMP. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define BQ 64 /* queries per block (multiple of 4: the kernels take rows four at a time) */
#define BK 64 /* keys per block (the score kernel keeps one row of BK scores in 4 vectors) */
#define LOG2E 1.4426950408889634
#define LN2 0.6931471805599453

typedef struct {
    float *q;   /* [BQ, dp] pre-scaled queries; rows past the block are zero */
    float *kt;  /* [dp, BK] transposed keys; columns past the block are zero */
    float *s;   /* [BQ, BK] scores, then probabilities */
    float *o;   /* [BQ, dp] unnormalised output */
    float *m;   /* [BQ] running max (base-2 units) */
    float *l;   /* [BQ] running sum of exp2(s - m) */
    float *bias; /* [BK] 0 for a visible key, -inf for a masked or missing one */
} attn_scratch;

#ifdef __AVX512F__
/* 2^x for x <= 0 (larger values are fine too up to 128): x = n + f with |f| <= 1/2, 2^f by a
 * degree-7 Taylor polynomial of e^(f ln2) (relative error < 1e-8), scaled by 2^n with scalef,
 * which also flushes x < -150 (and -inf) to zero. */
static inline __m512 exp2_ps(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-150.0f));
    x = _mm512_min_ps(x, _mm512_set1_ps(128.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_mul_ps(_mm512_sub_ps(x, n), _mm512_set1_ps((float)LN2));
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline __mmask16 tail_mask(int64_t left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}
#endif

/* s[r, 0:BK] = q[r, :] . kt[:, 0:BK] for rows r < rows (rows a multiple of 4). */
static void scores_block(float *restrict s, const float *restrict q, const float *restrict kt,
                         int rows, int dp)
{
#ifdef __AVX512F__
    for (int r = 0; r < rows; r += 4) {
        __m512 acc[4][4];
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 4; c++)
                acc[i][c] = _mm512_setzero_ps();
        const float *q0 = q + (int64_t)r * dp;
        for (int d = 0; d < dp; d++) {
            const float *kd = kt + (int64_t)d * BK;
            __m512 k0 = _mm512_load_ps(kd), k1 = _mm512_load_ps(kd + 16);
            __m512 k2 = _mm512_load_ps(kd + 32), k3 = _mm512_load_ps(kd + 48);
            for (int i = 0; i < 4; i++) {
                __m512 qb = _mm512_set1_ps(q0[(int64_t)i * dp + d]);
                acc[i][0] = _mm512_fmadd_ps(qb, k0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(qb, k1, acc[i][1]);
                acc[i][2] = _mm512_fmadd_ps(qb, k2, acc[i][2]);
                acc[i][3] = _mm512_fmadd_ps(qb, k3, acc[i][3]);
            }
        }
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 4; c++)
                _mm512_store_ps(s + (int64_t)(r + i) * BK + 16 * c, acc[i][c]);
    }
#else
    for (int r = 0; r < rows; r++) {
        float *restrict sr = s + (int64_t)r * BK;
        for (int j = 0; j < BK; j++)
            sr[j] = 0.0f;
        for (int d = 0; d < dp; d++) {
            float qv = q[(int64_t)r * dp + d];
            const float *restrict kd = kt + (int64_t)d * BK;
            for (int j = 0; j < BK; j++)
                sr[j] += qv * kd[j];
        }
    }
#endif
}

/* Online-softmax update of one row: folds the block's scores (already masked) into m and l,
 * turns s into probabilities and returns the factor the row's old output must be scaled by. */
static float softmax_row(float *restrict s, const float *restrict bias, float *m, float *l)
{
#ifdef __AVX512F__
    __m512 v[4];
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int c = 0; c < 4; c++) {
        v[c] = _mm512_add_ps(_mm512_load_ps(s + 16 * c), _mm512_load_ps(bias + 16 * c));
        mx = _mm512_max_ps(mx, v[c]);
    }
    float bmax = _mm512_reduce_max_ps(mx);
#else
    float bmax = -INFINITY;
    for (int j = 0; j < BK; j++) {
        s[j] += bias[j];
        bmax = s[j] > bmax ? s[j] : bmax;
    }
#endif
    float mnew = bmax > *m ? bmax : *m;
    if (mnew == -INFINITY) { /* nothing visible yet: the row stays empty */
        memset(s, 0, BK * sizeof *s);
        return 1.0f;
    }
    float alpha = exp2f(*m - mnew);
#ifdef __AVX512F__
    __m512 sum = _mm512_setzero_ps(), mv = _mm512_set1_ps(mnew);
    for (int c = 0; c < 4; c++) {
        __m512 p = exp2_ps(_mm512_sub_ps(v[c], mv));
        _mm512_store_ps(s + 16 * c, p);
        sum = _mm512_add_ps(sum, p);
    }
    float bsum = _mm512_reduce_add_ps(sum);
#else
    float bsum = 0.0f;
    for (int j = 0; j < BK; j++) {
        s[j] = exp2f(s[j] - mnew);
        bsum += s[j];
    }
#endif
    *m = mnew;
    *l = *l * alpha + bsum;
    return alpha;
}

/* o[r, :] = alpha[r] * o[r, :] + p[r, 0:n] . v[0:n, :] for rows r < rows (a multiple of 4). */
static void pv_block(float *restrict o, const float *restrict p, const float *restrict alpha,
                     const float *restrict v, int64_t v_stride, int n, int rows, int dp, int dh)
{
#ifdef __AVX512F__
    for (int r = 0; r < rows; r += 4) {
        for (int c0 = 0; c0 < dh; c0 += 64) {
            __mmask16 mk[4];
            for (int c = 0; c < 4; c++)
                mk[c] = c0 + 16 * c < dh ? tail_mask(dh - c0 - 16 * c) : 0;
            __m512 acc[4][4];
            for (int i = 0; i < 4; i++) {
                __m512 a = _mm512_set1_ps(alpha[r + i]);
                for (int c = 0; c < 4; c++)
                    acc[i][c] = _mm512_mul_ps(
                        a, _mm512_maskz_loadu_ps(mk[c], o + (int64_t)(r + i) * dp + c0 + 16 * c));
            }
            for (int j = 0; j < n; j++) {
                const float *vj = v + (int64_t)j * v_stride + c0;
                __m512 v0 = _mm512_maskz_loadu_ps(mk[0], vj);
                __m512 v1 = _mm512_maskz_loadu_ps(mk[1], vj + 16);
                __m512 v2 = _mm512_maskz_loadu_ps(mk[2], vj + 32);
                __m512 v3 = _mm512_maskz_loadu_ps(mk[3], vj + 48);
                for (int i = 0; i < 4; i++) {
                    __m512 pb = _mm512_set1_ps(p[(int64_t)(r + i) * BK + j]);
                    acc[i][0] = _mm512_fmadd_ps(pb, v0, acc[i][0]);
                    acc[i][1] = _mm512_fmadd_ps(pb, v1, acc[i][1]);
                    acc[i][2] = _mm512_fmadd_ps(pb, v2, acc[i][2]);
                    acc[i][3] = _mm512_fmadd_ps(pb, v3, acc[i][3]);
                }
            }
            for (int i = 0; i < 4; i++)
                for (int c = 0; c < 4; c++)
                    _mm512_mask_storeu_ps(o + (int64_t)(r + i) * dp + c0 + 16 * c, mk[c],
                                          acc[i][c]);
        }
    }
#else
    for (int r = 0; r < rows; r++) {
        float *restrict orow = o + (int64_t)r * dp;
        for (int d = 0; d < dh; d++)
            orow[d] *= alpha[r];
        for (int j = 0; j < n; j++) {
            float pj = p[(int64_t)r * BK + j];
            const float *restrict vj = v + (int64_t)j * v_stride;
            for (int d = 0; d < dh; d++)
                orow[d] += pj * vj[d];
        }
    }
#endif
}

/* One (head, query block): queries q0..q0+nq of head h against every visible key. */
static void attn_block(const og_attn_desc *d, const float *q, const float *k, const float *v,
                       float *out, float *lse, int h, int64_t q0, int nq, int dp,
                       attn_scratch *w)
{
    const int dh = d->head_dim;
    const int group = d->heads / (d->kv_heads ? d->kv_heads : d->heads);
    const int kvh = h / group;
    const int rows = (nq + 3) & ~3;
    const float qs = (float)(d->scale * LOG2E);
    float alpha[BQ];

    memset(w->q, 0, (size_t)BQ * dp * sizeof(float));
    memset(w->o, 0, (size_t)BQ * dp * sizeof(float));
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (q0 + i) * d->q_stride + (int64_t)h * dh;
        for (int c = 0; c < dh; c++)
            w->q[(int64_t)i * dp + c] = qi[c] * qs;
        w->m[i] = -INFINITY;
        w->l[i] = 0.0f;
    }
    for (int i = nq; i < rows; i++)
        alpha[i] = 1.0f;

    /* Causal: query i sees keys j <= i + off. */
    const int64_t off = d->skv - d->sq;
    int64_t kv_end = d->skv;
    if (d->causal && q0 + nq - 1 + off + 1 < kv_end)
        kv_end = q0 + nq - 1 + off + 1;

    for (int64_t j0 = 0; j0 < kv_end; j0 += BK) {
        const int n = (int)(kv_end - j0 < BK ? kv_end - j0 : BK);
        for (int c = 0; c < dh; c++)
            for (int j = 0; j < BK; j++)
                w->kt[(int64_t)c * BK + j] =
                    j < n ? k[(j0 + j) * d->k_stride + (int64_t)kvh * dh + c] : 0.0f;
        bool any = false;
        for (int j = 0; j < BK; j++) {
            bool vis = j < n && (!d->kv_valid || d->kv_valid[j0 + j]);
            w->bias[j] = vis ? 0.0f : -INFINITY;
            any |= vis;
        }
        if (!any)
            continue;
        scores_block(w->s, w->q, w->kt, rows, dp);
        for (int i = 0; i < nq; i++) {
            float *si = w->s + (int64_t)i * BK;
            if (d->causal) {
                int64_t lim = q0 + i + off - j0 + 1; /* visible columns in this block */
                for (int64_t j = lim < 0 ? 0 : lim; j < BK; j++)
                    si[j] = -INFINITY;
            }
            alpha[i] = softmax_row(si, w->bias, &w->m[i], &w->l[i]);
        }
        pv_block(w->o, w->s, alpha, v + j0 * d->v_stride + (int64_t)kvh * dh, d->v_stride, n,
                 rows, dp, dh);
    }

    for (int i = 0; i < nq; i++) {
        float *oi = out + (q0 + i) * d->o_stride + (int64_t)h * dh;
        float l = w->l[i];
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int c = 0; c < dh; c++)
            oi[c] = w->o[(int64_t)i * dp + c] * inv;
        if (lse)
            lse[(q0 + i) * d->heads + h] =
                l > 0.0f ? (float)(((double)w->m[i] + log2((double)l)) * LN2) : -INFINITY;
    }
}

og_status og_attention(const og_attn_desc *d, const float *q, const float *k, const float *v,
                       float *out, float *lse)
{
    const int kvh = d->kv_heads ? d->kv_heads : d->heads;
    if (d->sq < 0 || d->skv < 0 || d->heads <= 0 || d->head_dim <= 0 || kvh <= 0 ||
        d->heads % kvh)
        return og_fail(OG_ERR_INVALID_ARG,
                       "attention: bad sizes (sq %lld, skv %lld, heads %d, kv_heads %d, head_dim "
                       "%d): heads must be a multiple of kv_heads",
                       (long long)d->sq, (long long)d->skv, d->heads, kvh, d->head_dim);
    if (d->q_stride < (int64_t)d->heads * d->head_dim || d->o_stride < (int64_t)d->heads * d->head_dim ||
        d->k_stride < (int64_t)kvh * d->head_dim || d->v_stride < (int64_t)kvh * d->head_dim)
        return og_fail(OG_ERR_INVALID_ARG, "attention: a token stride is smaller than heads x head_dim");
    if (d->sq == 0)
        return OG_OK;

    const int dp = (d->head_dim + 15) & ~15; /* rows padded to whole vectors, 64-byte aligned */
    const int64_t nqb = (d->sq + BQ - 1) / BQ;
    const int64_t items = nqb * d->heads;
    const size_t floats = (size_t)BQ * dp * 2 + (size_t)BQ * BK + (size_t)dp * BK + BK + 2 * BQ;
    int oom = 0;

#pragma omp parallel
    {
        float *buf = aligned_alloc(64, floats * sizeof(float));
        attn_scratch w = {0};
        if (buf) {
            /* Zeroed once: the K^T rows past head_dim (up to dp) are never written but are read
             * by the score kernel, and 0 * (uninitialised NaN) would poison the scores. */
            memset(buf, 0, floats * sizeof(float));
            w.q = buf;
            w.o = w.q + (size_t)BQ * dp;
            w.s = w.o + (size_t)BQ * dp;
            w.kt = w.s + (size_t)BQ * BK; /* BQ*BK is a multiple of 16: stays 64-byte aligned */
            w.bias = w.kt + (size_t)dp * BK;
            w.m = w.bias + BK;
            w.l = w.m + BQ;
        } else {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!buf)
                continue;
            int h = (int)(it % d->heads);
            int64_t qb = it / d->heads;
            int64_t q0 = qb * BQ;
            int nq = (int)(d->sq - q0 < BQ ? d->sq - q0 : BQ);
            attn_block(d, q, k, v, out, lse, h, q0, nq, dp, &w);
        }
        free(buf);
    }
    if (oom)
        return og_fail(OG_ERR_OOM, "attention: cannot allocate per-thread scratch");
    return OG_OK;
}
