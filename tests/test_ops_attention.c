/* og_attention against a naive double-precision softmax attention: odd sizes, GQA, causal with
 * sq != skv, key padding masks, rows that see no key, strided token layouts and the LSE output;
 * then every case again in the bf16 precision (OG_GEMM_BF16) where the build has it. Each case
 * runs in an arena of exactly og_attention_scratch_bytes (which must be enough and come back
 * released) and again with its own scratch (NULL); a too small arena is refused. */
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

/* out[i, h, :] and lse[i, h] in double, one row at a time. */
static void attention_ref(const og_attn_desc *d, const float *q, const float *k, const float *v,
                          double *out, double *lse)
{
    int kvh = d->kv_heads ? d->kv_heads : d->heads;
    int group = d->heads / kvh, dh = d->head_dim;
    double *s = malloc((size_t)(d->skv ? d->skv : 1) * sizeof *s);
    for (int64_t i = 0; i < d->sq; i++)
        for (int h = 0; h < d->heads; h++) {
            const float *qi = q + i * d->q_stride + (int64_t)h * dh;
            double mx = -INFINITY;
            for (int64_t j = 0; j < d->skv; j++) {
                bool vis = (!d->kv_valid || d->kv_valid[j]) &&
                           (!d->causal || j <= i + (d->skv - d->sq));
                if (!vis) {
                    s[j] = -INFINITY;
                    continue;
                }
                const float *kj = k + j * d->k_stride + (int64_t)(h / group) * dh;
                double acc = 0;
                for (int c = 0; c < dh; c++)
                    acc += (double)qi[c] * kj[c];
                s[j] = acc * d->scale;
                if (s[j] > mx)
                    mx = s[j];
            }
            double *o = out + (i * d->heads + h) * dh;
            for (int c = 0; c < dh; c++)
                o[c] = 0;
            if (mx == -INFINITY) {
                lse[i * d->heads + h] = -INFINITY;
                continue;
            }
            double sum = 0;
            for (int64_t j = 0; j < d->skv; j++) {
                if (s[j] == -INFINITY)
                    continue;
                double p = exp(s[j] - mx);
                sum += p;
                const float *vj = v + j * d->v_stride + (int64_t)(h / group) * dh;
                for (int c = 0; c < dh; c++)
                    o[c] += p * vj[c];
            }
            for (int c = 0; c < dh; c++)
                o[c] /= sum;
            lse[i * d->heads + h] = mx + log(sum);
        }
    free(s);
}

typedef struct {
    int64_t sq, skv;
    int heads, kv_heads, head_dim;
    bool causal;
    int mask;      /* 0 none, 1 random padding, 2 all keys masked, 3 the first keys masked */
    int pad;       /* extra elements per token (strided layout) */
    float qscale;  /* input magnitude: larger values give peaky softmaxes */
} attn_case;

/* x[i] = bf16(x[i]) as f32: the inputs the bf16 precision computes with. */
static void round_bf16(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = og_bf16_to_f32(og_f32_to_bf16(x[i]));
}

/* With bf16, q, k and v are rounded to bf16 first, so the double reference sees what the bf16
 * path multiplies; what is left is its bf16 rounding of the probabilities (~2^-9 relative). */
static void run_case(const attn_case *c, og_test_rng *rng, bool bf16)
{
    int kvh = c->kv_heads ? c->kv_heads : c->heads;
    og_attn_desc d = {
        .sq = c->sq, .skv = c->skv, .heads = c->heads, .kv_heads = c->kv_heads,
        .head_dim = c->head_dim, .causal = c->causal,
        .q_stride = (int64_t)c->heads * c->head_dim + c->pad,
        .k_stride = (int64_t)kvh * c->head_dim + 2 * c->pad,
        .v_stride = (int64_t)kvh * c->head_dim + 3 * c->pad,
        .o_stride = (int64_t)c->heads * c->head_dim + c->pad,
        .scale = 1.0f / sqrtf((float)c->head_dim),
    };
    size_t nq = (size_t)(c->sq * d.q_stride), nk = (size_t)(c->skv * d.k_stride) + 1,
           nv = (size_t)(c->skv * d.v_stride) + 1, no = (size_t)(c->sq * d.o_stride);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nv * 4), *o = malloc(no * 4);
    float *lse = malloc((size_t)(c->sq * c->heads) * 4);
    double *ro = malloc((size_t)(c->sq * c->heads * c->head_dim) * 8 + 8);
    double *rl = malloc((size_t)(c->sq * c->heads) * 8 + 8);
    uint8_t *valid = malloc((size_t)c->skv + 1);
    og_test_fill(rng, q, nq, c->qscale);
    og_test_fill(rng, k, nk, c->qscale);
    og_test_fill(rng, v, nv, 1.0f);
    if (bf16) {
        round_bf16(q, nq);
        round_bf16(k, nk);
        round_bf16(v, nv);
    }
    for (size_t i = 0; i < no; i++)
        o[i] = 12345.0f; /* padding between tokens must stay untouched */
    for (int64_t j = 0; j < c->skv; j++) {
        if (c->mask == 1)
            valid[j] = (og_test_next(rng) % 4) != 0;
        else if (c->mask == 2)
            valid[j] = 0;
        else if (c->mask == 3)
            valid[j] = j >= 5;
        else
            valid[j] = 1;
    }
    d.kv_valid = c->mask ? valid : NULL;

    og_arena a;
    CHECK_OK(og_test_scratch(&a, og_attention_scratch_bytes(&d)));
    CHECK_OK(og_attention(&d, q, k, v, o, lse, &a));
    CHECK(a.used == 1, "attention left %zu bytes of its scratch in use", a.used - 1);
    og_arena_free(&a);
    attention_ref(&d, q, k, v, ro, rl);

    double num = 0, den = 1e-30, lse_err = 0;
    int lse_bad = 0, pad_bad = 0;
    for (int64_t i = 0; i < c->sq; i++) {
        for (int h = 0; h < c->heads; h++) {
            for (int e = 0; e < c->head_dim; e++) {
                double got = o[i * d.o_stride + (int64_t)h * c->head_dim + e];
                double want = ro[(i * c->heads + h) * c->head_dim + e];
                double diff = fabs(got - want);
                if (!(diff <= num))
                    num = diff == diff ? diff : INFINITY;
                if (fabs(want) > den)
                    den = fabs(want);
            }
            double gl = lse[i * c->heads + h], wl = rl[i * c->heads + h];
            if (wl == -INFINITY) {
                lse_bad += gl != -INFINITY;
            } else {
                double e = fabs(gl - wl);
                if (!(e <= lse_err))
                    lse_err = e == e ? e : INFINITY;
            }
        }
        for (int e = c->heads * c->head_dim; e < d.o_stride; e++)
            pad_bad += o[i * d.o_stride + e] != 12345.0f;
    }
    /* A fully masked row must be exactly zero: den stays tiny then, so check it absolutely. */
    double err = num / (den > 1e-3 ? den : 1.0);
    char name[160];
    snprintf(name, sizeof name,
             "%ssq %lld skv %lld heads %d/%d dim %d causal %d mask %d pad %d", bf16 ? "bf16 " : "",
             (long long)c->sq, (long long)c->skv, c->heads, kvh, c->head_dim, c->causal, c->mask,
             c->pad);
    CHECK(err < (bf16 ? 8e-3 : 1e-5), "%s: output rel err %.3g", name, err);
    CHECK(lse_err < (bf16 ? 4e-3 : 2e-5), "%s: lse abs err %.3g", name, lse_err);
    CHECK(lse_bad == 0, "%s: %d fully masked rows without lse = -inf", name, lse_bad);
    CHECK(pad_bad == 0, "%s: %d padding elements written", name, pad_bad);

    /* lse is optional; without an arena the op makes its own scratch. */
    CHECK_OK(og_attention(&d, q, k, v, o, NULL, NULL));

    free(q), free(k), free(v), free(o), free(lse), free(ro), free(rl), free(valid);
}

int main(void)
{
    og_test_rng rng = {0x5eed1234u};
    static const attn_case cases[] = {
        {1, 1, 1, 0, 8, false, 0, 0, 1.0f},
        {1, 1, 2, 1, 3, true, 0, 0, 1.0f},
        {1, 97, 3, 0, 16, false, 0, 0, 1.0f},
        {97, 1, 3, 0, 16, false, 0, 0, 1.0f},
        {7, 13, 3, 0, 5, false, 0, 0, 1.0f},
        {67, 131, 4, 2, 64, true, 0, 0, 1.0f},   /* GQA + causal, sq < skv */
        {131, 67, 4, 1, 64, true, 0, 0, 1.0f},   /* causal with sq > skv: early rows see nothing */
        {130, 190, 2, 0, 128, false, 1, 5, 1.0f}, /* padding mask, strided tokens */
        {61, 71, 6, 3, 96, false, 1, 0, 3.0f},   /* peaky softmax, D not a multiple of 64 */
        {33, 65, 2, 0, 17, false, 2, 1, 1.0f},   /* every key masked */
        {70, 70, 2, 2, 40, true, 3, 0, 1.0f},    /* causal + masked prefix: rows 0..4 see none */
        {200, 257, 2, 1, 80, false, 0, 3, 2.0f},
        {0, 5, 2, 0, 8, false, 0, 0, 1.0f},      /* nothing to do */
        {5, 0, 2, 0, 8, false, 0, 0, 1.0f},      /* no keys at all */
        {300, 600, 3, 1, 64, true, 1, 2, 1.0f},  /* bf16 path: scores in several query chunks */
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < ncases; i++)
        run_case(&cases[i], &rng, false);
    if (og_gemm_set_precision(OG_GEMM_BF16) == OG_OK) {
        for (size_t i = 0; i < ncases; i++)
            run_case(&cases[i], &rng, true);
        CHECK_OK(og_gemm_set_precision(OG_GEMM_EXACT));
    }

    og_attn_desc bad = {.sq = 4, .skv = 4, .heads = 3, .kv_heads = 2, .head_dim = 8,
                        .q_stride = 24, .k_stride = 16, .v_stride = 16, .o_stride = 24,
                        .scale = 1.0f};
    float buf[96] = {0};
    CHECK(og_attention(&bad, buf, buf, buf, buf, NULL, NULL) == OG_ERR_INVALID_ARG,
          "heads not a multiple of kv_heads must be refused");
    CHECK(og_attention_scratch_bytes(&bad) == 0, "no scratch for a refused descriptor");

    /* An arena short of og_attention_scratch_bytes: OOM with a message, output untouched. */
    og_attn_desc small = {.sq = 4, .skv = 4, .heads = 2, .head_dim = 8, .q_stride = 16,
                          .k_stride = 16, .v_stride = 16, .o_stride = 16, .scale = 1.0f};
    og_arena a;
    CHECK_OK(og_arena_init(&a, og_attention_scratch_bytes(&small) - 128));
    for (int i = 0; i < 96; i++)
        buf[i] = 1.0f;
    og_status st = og_attention(&small, buf, buf, buf, buf + 32, NULL, &a);
    CHECK(st == OG_ERR_OOM && strstr(og_error_message(), "og_attention_scratch_bytes"),
          "short arena: %s (%s)", og_status_name(st), og_error_message());
    CHECK(a.used == 0 && buf[32] == 1.0f, "short arena: nothing taken, nothing written");
    og_arena_free(&a);
    return og_test_finish("test_ops_attention");
}
