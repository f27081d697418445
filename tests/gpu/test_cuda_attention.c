/* og_cuda_attention against the CPU og_attention on the same bf16 inputs: the tensor-core kernel
 * (head dims 64 and 128) and the plain one, strided fused-QKV layouts, uneven lengths, GQA,
 * causal masks, padding masks, rows that see no key, bf16 and f32 outputs, and the LSE. */
#include "gpu_testutil.h"

typedef struct {
    int64_t sq, skv;
    int heads, kv_heads, hd;
    bool causal, fused, mask, out_f32;
    int masked_from; /* with mask: keys >= this are padding */
} attn_case;

static void check_attention(og_cuda_ctx *ctx, og_test_rng *r, attn_case c)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    int kvh = c.kv_heads ? c.kv_heads : c.heads;
    int64_t qw = (int64_t)c.heads * c.hd, kw = (int64_t)kvh * c.hd;
    /* Fused: one [tokens, q | k | v] buffer, as a fused QKV GEMM writes it (sq == skv). */
    int64_t qs = c.fused ? qw + 2 * kw : qw, ks = c.fused ? qw + 2 * kw : kw;
    size_t nq = (size_t)(c.sq * qs), nk = (size_t)(c.skv * ks);
    float *q = og_gpu_rand(r, nq, 2.0f);
    float *k = c.fused ? q + qw : og_gpu_rand(r, nk, 2.0f);
    float *v = c.fused ? q + qw + kw : og_gpu_rand(r, nk, 1.0f);
    uint8_t *valid = NULL;
    if (c.mask) {
        valid = malloc((size_t)c.skv);
        for (int64_t j = 0; j < c.skv; j++)
            valid[j] = j < c.masked_from && (j % 7) != 3;
    }
    og_attn_desc d = {.sq = c.sq, .skv = c.skv, .heads = c.heads, .kv_heads = c.kv_heads,
                      .head_dim = c.hd, .q_stride = qs, .k_stride = ks, .v_stride = ks,
                      .o_stride = qw, .scale = 1.0f / sqrtf((float)c.hd), .causal = c.causal,
                      .kv_valid = valid};
    size_t no = (size_t)(c.sq * qw), nl = (size_t)(c.sq * c.heads);
    float *ref = malloc(no * sizeof *ref), *ref_lse = malloc(nl * sizeof *ref_lse);
    CHECK_OK(og_attention(&d, q, k, v, ref, ref_lse, NULL));

    og_bf16 *dq = og_gpu_put(ctx, q, nq, OG_BF16);
    og_bf16 *dk = c.fused ? dq + qw : og_gpu_put(ctx, k, nk, OG_BF16);
    og_bf16 *dv = c.fused ? dq + qw + kw : og_gpu_put(ctx, v, nk, OG_BF16);
    if (valid) {
        uint8_t *dvalid = og_arena_alloc(og_cuda_arena(ctx), (size_t)c.skv);
        CHECK_OK(og_cuda_upload(ctx, dvalid, OG_U8, valid, OG_U8, (size_t)c.skv));
        d.kv_valid = dvalid;
    }
    og_dtype ot = c.out_f32 ? OG_F32 : OG_BF16;
    void *dout = og_gpu_alloc(ctx, no, ot);
    float *dlse = og_gpu_alloc(ctx, nl, OG_F32);
    CHECK_OK(og_cuda_attention(ctx, &d, dq, dk, dv, dout, ot, dlse));
    float *got = og_gpu_get(ctx, dout, no, ot), *got_lse = og_gpu_get(ctx, dlse, nl, OG_F32);

    /* P is rounded to bf16 before P V on tensor cores: a bf16-level error even for f32 output. */
    double e = og_test_rel_err_f(got, ref, no);
    CHECK(e < OG_BF16_TOL, "attention sq=%lld skv=%lld h=%d/%d hd=%d causal=%d fused=%d mask=%d: "
          "out rel err %.3g", (long long)c.sq, (long long)c.skv, c.heads, kvh, c.hd, c.causal,
          c.fused, c.mask, e);
    int lse_bad = 0;
    for (size_t i = 0; i < nl; i++) {
        bool both_inf = isinf(ref_lse[i]) && isinf(got_lse[i]) && ref_lse[i] < 0 && got_lse[i] < 0;
        if (!both_inf && !(fabsf(got_lse[i] - ref_lse[i]) <= 1e-3f * (1.0f + fabsf(ref_lse[i]))))
            lse_bad++;
    }
    CHECK(lse_bad == 0, "attention hd=%d: %d of %zu LSE values differ", c.hd, lse_bad, nl);
    free(q);
    if (!c.fused) {
        free(k);
        free(v);
    }
    free(valid);
    free(ref);
    free(ref_lse);
    free(got);
    free(got_lse);
    og_arena_release(og_cuda_arena(ctx), mark);
}

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_attention", 256);
    if (!ctx)
        return OG_TEST_SKIP;
    og_test_rng r = {2024};
    const attn_case cases[] = {
        {.sq = 200, .skv = 200, .heads = 3, .hd = 128, .fused = true},          /* Z-Image layout */
        {.sq = 130, .skv = 333, .heads = 4, .hd = 128},                         /* partial tiles */
        {.sq = 64, .skv = 64, .heads = 2, .hd = 64, .out_f32 = true},           /* ring partials */
        {.sq = 100, .skv = 150, .heads = 8, .kv_heads = 2, .hd = 64, .causal = true}, /* GQA */
        {.sq = 150, .skv = 90, .heads = 2, .hd = 128, .causal = true}, /* early rows see nothing */
        {.sq = 128, .skv = 193, .heads = 2, .hd = 64, .causal = true}, /* row 63 sees key 128 */
        {.sq = 77, .skv = 300, .heads = 2, .hd = 128, .mask = true, .masked_from = 250},
        {.sq = 40, .skv = 70, .heads = 2, .hd = 64, .mask = true, .masked_from = 0}, /* no key */
        {.sq = 50, .skv = 61, .heads = 3, .hd = 32, .mask = true, .masked_from = 55}, /* plain */
        {.sq = 33, .skv = 47, .heads = 5, .kv_heads = 1, .hd = 48, .causal = true,
         .out_f32 = true},                                                      /* plain, GQA */
        {.sq = 20, .skv = 20, .heads = 2, .hd = 128, .fused = true, .kv_heads = 1},
        {.sq = 45, .skv = 45, .heads = 1, .hd = 512},                 /* VAE mid-block, plain */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_attention(ctx, &r, cases[i]);
    /* More heads than gridDim.y allows is refused before any launch. */
    og_attn_desc wide = {.sq = 1, .skv = 1, .heads = 70000, .head_dim = 64, .q_stride = 70000 * 64,
                         .k_stride = 70000 * 64, .v_stride = 70000 * 64, .o_stride = 70000 * 64,
                         .scale = 0.125f};
    CHECK(og_cuda_attention(ctx, &wide, NULL, NULL, NULL, NULL, OG_BF16, NULL) ==
              OG_ERR_INVALID_ARG, "70000 heads must be refused");
    og_cuda_free(ctx);
    return og_test_finish("test_cuda_attention");
}
