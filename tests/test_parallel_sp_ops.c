/* og_sp_attention through og_sp_ops, the path GPU ranks take, exercised on the CPU: host hooks
 * that keep q, k, v and the outputs as bf16 (2-byte elements, as on a device), read q, k, v from
 * one fused [len, q | k | v] buffer (qkv_stride), attend by widening to f32 for og_attention and
 * narrow the result. Every Ulysses / Ring / hybrid layout up to 6 ranks (and 4x2 UAA), 6 heads,
 * with and without joint text, against serial fp32 attention over the whole [image; text]
 * sequence on the same bf16 values: within 1e-2 relative (one bf16 rounding of the output). */
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/ops.h"
#include "parallel/comm.h"
#include "parallel/sp.h"
#include "testutil.h"

#define H 6
#define D 8
#define ROW (H * D)

typedef struct {
    int syncs;
} host_dev;

static og_status h_copy2d(void *user, void *dst, size_t dpitch, const void *src, size_t spitch,
                          size_t width, size_t rows)
{
    (void)user;
    for (size_t r = 0; r < rows; r++)
        memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    return OG_OK;
}

/* A bf16 strided span widened to f32 with the same strides. */
static float *widen(const void *x, int64_t rows, int64_t stride, int64_t row_elems)
{
    size_t n = rows > 0 ? (size_t)((rows - 1) * stride + row_elems) : 0;
    float *f = malloc((n ? n : 1) * sizeof *f);
    og_to_f32(f, x, OG_BF16, n);
    return f;
}

static og_status h_attend(void *user, const og_attn_desc *d, const void *q, const void *k,
                          const void *v, float *out, float *lse)
{
    (void)user;
    const int64_t w = (int64_t)d->heads * d->head_dim;
    float *qf = widen(q, d->sq, d->q_stride, w), *kf = widen(k, d->skv, d->k_stride, w);
    float *vf = widen(v, d->skv, d->v_stride, w);
    og_status st = og_attention(d, qf, kf, vf, out, lse, NULL);
    free(qf), free(kf), free(vf);
    return st;
}

static og_status h_merge(void *user, float *out, float *lse, const float *out_b,
                         const float *lse_b, int64_t sq, int heads, int head_dim)
{
    (void)user;
    /* The same fp32 formula, written out here as the reference for og_cuda_lse_merge's job. */
    for (int64_t i = 0; i < sq * heads; i++) {
        const float a = lse[i], b = lse_b[i];
        if (b == -INFINITY)
            continue;
        const float m = a > b ? a : b, ea = a == -INFINITY ? 0 : expf(a - m), eb = expf(b - m);
        for (int t = 0; t < head_dim; t++)
            out[i * head_dim + t] = (ea * out[i * head_dim + t] + eb * out_b[i * head_dim + t]) /
                                    (ea + eb);
        lse[i] = m + logf(ea + eb);
    }
    return OG_OK;
}

static og_status h_narrow(void *user, void *dst, const float *src, int64_t n)
{
    (void)user;
    og_from_f32(dst, OG_BF16, src, (size_t)n);
    return OG_OK;
}

static og_status h_sync(void *user)
{
    ((host_dev *)user)->syncs++;
    return OG_OK;
}

typedef struct {
    og_parallel_config cfg;
    int64_t S, T;
    const uint16_t *qkv;            /* [S, 3 * ROW] bf16: the fused projection of every token */
    const uint16_t *tq, *tk, *tv;   /* [T, ROW] bf16 */
    const float *ref;               /* [S + T, ROW] */
    double worst[8]; /* per world rank: ranks are threads */
    int fails[8];
} job;

static og_status rank_main(og_comm *world, void *arg)
{
    job *j = arg;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &j->cfg, world));
    int64_t off, len;
    og_shard_range(j->S, og_sp_size(sp), og_sp_rank(sp), &off, &len);
    host_dev dev = {0};
    const og_sp_ops ops = {.elem_bytes = 2, .copy2d = h_copy2d, .attend = h_attend,
                           .merge = h_merge, .narrow = h_narrow, .sync = h_sync, .user = &dev};
    uint16_t *out = calloc((size_t)(len * ROW), 2), *tout = calloc((size_t)(j->T * ROW + 1), 2);
    og_arena a;
    og_status st = og_arena_init(&a, og_sp_attention_scratch_bytes(sp, j->S, H, D, j->T));
    const uint16_t *mine = j->qkv + off * 3 * ROW;
    og_sp_attn_args args = {.seq = j->S, .heads = H, .head_dim = D, .scale = 0.35f,
                            .q = mine, .k = mine + ROW, .v = mine + 2 * ROW, .out = out,
                            .text_len = j->T, .text_q = j->tq, .text_k = j->tk,
                            .text_v = j->tv, .text_out = tout, .scratch = &a,
                            .qkv_stride = 3 * ROW, .ops = &ops};
    if (st == OG_OK)
        st = og_sp_attention(sp, &args);
    if (st == OG_OK) {
        float *got = malloc((size_t)((len + j->T) * ROW) * sizeof *got);
        og_to_f32(got, out, OG_BF16, (size_t)(len * ROW));
        double e = og_test_rel_err_f(got, j->ref + off * ROW, (size_t)(len * ROW));
        if (j->T > 0) {
            og_to_f32(got, tout, OG_BF16, (size_t)(j->T * ROW));
            double et = og_test_rel_err_f(got, j->ref + j->S * ROW, (size_t)(j->T * ROW));
            e = et > e ? et : e;
        }
        free(got);
        j->worst[world->rank] = e;
        j->fails[world->rank] = og_sp_size(sp) > 1 && dev.syncs == 0;
    }
    og_arena_free(&a);
    free(out), free(tout);
    og_sp_free(sp);
    return st;
}

static void bf16_rand(og_test_rng *r, uint16_t *x, size_t n)
{
    float *f = malloc(n * sizeof *f);
    og_test_fill(r, f, n, 1.0f);
    og_from_f32(x, OG_BF16, f, n);
    free(f);
}

int main(void)
{
    static const struct {
        int U, R;
        og_ulysses_mode mode;
    } layouts[] = {
        {1, 1, OG_ULYSSES_STRICT}, {2, 1, OG_ULYSSES_STRICT}, {1, 2, OG_ULYSSES_STRICT},
        {2, 2, OG_ULYSSES_STRICT}, {3, 1, OG_ULYSSES_STRICT}, {1, 3, OG_ULYSSES_STRICT},
        {2, 3, OG_ULYSSES_STRICT}, {4, 2, OG_ULYSSES_ADVANCED_UAA},
    };
    static const int64_t seqs[] = {37, 64}, texts[] = {0, 3};
    og_test_rng rng = {7};
    for (size_t si = 0; si < 2; si++)
        for (size_t ti = 0; ti < 2; ti++) {
            const int64_t S = seqs[si], T = texts[ti], N = S + T;
            uint16_t *qkv = malloc((size_t)(S * 3 * ROW) * 2);
            uint16_t *txt = malloc((size_t)(3 * T * ROW + 1) * 2);
            bf16_rand(&rng, qkv, (size_t)(S * 3 * ROW));
            bf16_rand(&rng, txt, (size_t)(3 * T * ROW));
            /* The reference: fp32 attention over [image; text] of the same bf16 values. */
            float *q = malloc((size_t)(N * ROW) * sizeof *q), *k = malloc((size_t)(N * ROW) * 4);
            float *v = malloc((size_t)(N * ROW) * 4), *ref = malloc((size_t)(N * ROW) * 4);
            for (int64_t t = 0; t < S; t++) {
                og_to_f32(q + t * ROW, qkv + t * 3 * ROW, OG_BF16, ROW);
                og_to_f32(k + t * ROW, qkv + t * 3 * ROW + ROW, OG_BF16, ROW);
                og_to_f32(v + t * ROW, qkv + t * 3 * ROW + 2 * ROW, OG_BF16, ROW);
            }
            og_to_f32(q + S * ROW, txt, OG_BF16, (size_t)(T * ROW));
            og_to_f32(k + S * ROW, txt + T * ROW, OG_BF16, (size_t)(T * ROW));
            og_to_f32(v + S * ROW, txt + 2 * T * ROW, OG_BF16, (size_t)(T * ROW));
            const og_attn_desc d = {.sq = N, .skv = N, .heads = H, .head_dim = D,
                                    .q_stride = ROW, .k_stride = ROW, .v_stride = ROW,
                                    .o_stride = ROW, .scale = 0.35f};
            CHECK_OK(og_attention(&d, q, k, v, ref, NULL, NULL));
            for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++) {
                job j = {.cfg = {.ulysses_degree = layouts[li].U, .ring_degree = layouts[li].R,
                                 .cfg_degree = 1, .ulysses_mode = layouts[li].mode},
                         .S = S, .T = T, .qkv = qkv, .tq = txt, .tk = txt + T * ROW,
                         .tv = txt + 2 * T * ROW, .ref = ref};
                int P = layouts[li].U * layouts[li].R;
                og_status st = og_run_ranks(P, 1, rank_main, &j);
                double worst = 0;
                int fails = 0;
                for (int r = 0; r < P; r++) {
                    worst = j.worst[r] > worst ? j.worst[r] : worst;
                    fails += j.fails[r];
                }
                CHECK(st == OG_OK, "%dx%d S %lld T %lld: %s", layouts[li].U, layouts[li].R,
                      (long long)S, (long long)T, og_error_message());
                CHECK(worst < 1e-2, "%dx%d S %lld T %lld: rel err %g", layouts[li].U,
                      layouts[li].R, (long long)S, (long long)T, worst);
                CHECK(fails == 0, "%dx%d: a rank exchanged without calling ops->sync",
                      layouts[li].U, layouts[li].R);
                printf("  %dx%d S %lld T %lld: rel err %.3g\n", layouts[li].U, layouts[li].R,
                       (long long)S, (long long)T, worst);
            }
            free(qkv), free(txt), free(q), free(k), free(v), free(ref);
        }
    return og_test_finish("test_parallel_sp_ops");
}
