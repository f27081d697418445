/* og_zimage_cuda_work_bytes (the bytes a rank reserves up front) against a buffer-by-buffer tally
 * of what og_zimage_cuda_forward takes from the rank's arena: the persistent buffers, then the
 * largest of a block's buffers (plus og_sp_attention's scratch under SP) and the final layer's,
 * which reuse the same space. The plan must cover the tally and may exceed it only by its known
 * simplifications (it adds the phases instead of taking their maximum). Serial and SP layouts at
 * full size (1024 x 1024, 100 caption tokens) and an odd one (uneven shards, padding). Host
 * arithmetic only: it runs, and must pass, without a GPU. */
#include <stdio.h>
#include <stdlib.h>

#include "core/cuda/zimage_cuda.h"
#include "dit/zimage_internal.h"
#include "parallel/comm.h"
#include "testutil.h"

static size_t al(int64_t bytes) { return ((size_t)bytes + 63) & ~(size_t)63; }
static size_t max2(size_t a, size_t b) { return a > b ? a : b; }

/* One block on n tokens: normed input, fused qkv, projection output, w1|w3, SwiGLU (bf16). */
static size_t block(int64_t D, int64_t F, int64_t n)
{
    return al(n * D * 2) + al(3 * n * D * 2) + al(n * D * 2) + al(2 * n * F * 2) + al(n * F * 2);
}

/* What the forward allocates on rank r of P (shards from og_shard_range, as the model's split). */
static size_t tally(const og_zimage_config *c, int64_t lat_h, int64_t lat_w, int64_t cap_len,
                    og_sp *sp)
{
    og_zimage_tokens t;
    if (og_zimage_tokens_for(c, lat_h, lat_w, cap_len, &t) != OG_OK)
        return 0;
    const int P = sp ? og_sp_size(sp) : 1, r = sp ? og_sp_rank(sp) : 0;
    int64_t off, img_n = t.img_pad_len, uni_n = t.seq_len;
    if (P > 1) {
        og_shard_range(t.img_pad_len, P, r, &off, &img_n);
        og_shard_range(t.seq_len, P, r, &off, &uni_n);
    }
    const int64_t D = c->dim, F = c->ffn_dim, half = c->head_dim / 2, L = t.cap_pad_len;
    const int64_t n_mod = c->n_refiner_layers + c->n_layers, patch = 64;
    /* Held for the whole forward: modulations, final scale, time embedding, RoPE tables, the
     * residual stream, the caption, its features before and after the norm, the patches. */
    size_t persist = al(n_mod * 4 * D * 4) + al(D * 4) + al(c->adaln_dim * 2) +
                     2 * al(uni_n * half * 4) + 2 * al(L * half * 4) + al(uni_n * D * 2) +
                     al(L * D * 2) + 2 * al(cap_len * c->cap_feat_dim * 2) + al(img_n * patch * 2);
    size_t sp_img = 0, sp_seq = 0;
    if (P > 1) {
        sp_img = og_sp_attention_scratch_bytes(sp, t.img_pad_len, c->n_heads, c->head_dim, 0);
        sp_seq = og_sp_attention_scratch_bytes(sp, t.seq_len, c->n_heads, c->head_dim, 0);
    }
    size_t phase = max2(block(D, F, img_n) + sp_img, block(D, F, L));
    phase = max2(phase, block(D, F, uni_n) + sp_seq);
    const size_t final = al(img_n * D * 2) + al(img_n * patch * 4) +
                         (P > 1 ? al(t.img_pad_len * patch * 4) : 0);
    return persist + max2(phase, final);
}

typedef struct {
    og_parallel_config cfg;
    const og_zimage *m;
    int64_t lat_h, lat_w, cap_len;
} plan_job;

static void check_plan(const og_zimage *m, int64_t lat_h, int64_t lat_w, int64_t cap_len,
                       og_sp *sp, const char *what)
{
    const size_t plan = og_zimage_cuda_work_bytes(m, lat_h, lat_w, cap_len, sp);
    const size_t need = tally(&m->c, lat_h, lat_w, cap_len, sp);
    const int rank = sp ? og_sp_rank(sp) : 0;
    CHECK(need > 0 && plan >= need, "%s rank %d: plan %zu bytes < tally %zu", what, rank, plan,
          need);
    /* Its simplifications: a block's phase, the final layer's and SP scratch added, not maxed;
     * one spare [n, dim] bf16 buffer per block; the gather buffer counted serially too. */
    CHECK(plan <= need + need / 2 + (1u << 20), "%s rank %d: plan %zu bytes, tally %zu: more "
          "than 1.5x", what, rank, plan, need);
}

static og_status plan_rank(og_comm *world, void *arg)
{
    plan_job *j = arg;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &j->cfg, world));
    char what[64];
    snprintf(what, sizeof what, "U%d R%d", j->cfg.ulysses_degree, j->cfg.ring_degree);
    check_plan(j->m, j->lat_h, j->lat_w, j->cap_len, sp, what);
    og_sp_free(sp);
    return OG_OK;
}

int main(void)
{
    /* Only the config matters to the plan: no weights are made. */
    og_zimage m = {.c = og_zimage_config_default()};
    static const struct {
        int64_t h, w, cap;
    } sizes[] = {{128, 128, 100}, {36, 50, 7}};
    for (int i = 0; i < 2; i++) {
        check_plan(&m, sizes[i].h, sizes[i].w, sizes[i].cap, NULL, "serial");
        static const int layouts[][2] = {{2, 1}, {1, 2}, {2, 2}, {3, 1}, {1, 3}};
        for (int l = 0; l < 5; l++) {
            plan_job j = {.cfg = OG_PARALLEL_CONFIG_DEFAULT, .m = &m, .lat_h = sizes[i].h,
                          .lat_w = sizes[i].w, .cap_len = sizes[i].cap};
            j.cfg.ulysses_degree = layouts[l][0];
            j.cfg.ring_degree = layouts[l][1];
            CHECK_OK(og_run_ranks(layouts[l][0] * layouts[l][1], 1, plan_rank, &j));
        }
    }
    /* Full size, serial: about 0.5 GiB of work next to 11.5 GiB of bf16 weights. */
    const size_t full = og_zimage_cuda_work_bytes(&m, 128, 128, 100, NULL);
    CHECK(full > (400u << 20) && full < (1000u << 20), "1024x1024 serial plan %zu MiB",
          full >> 20);
    /* More ranks, less per rank; a bigger image, more. */
    CHECK(og_zimage_cuda_work_bytes(&m, 256, 256, 100, NULL) > full, "2048x2048 plan not larger");
    CHECK(og_zimage_cuda_work_bytes(&m, 127, 128, 100, NULL) == 0, "odd latent height planned");
    return og_test_finish("test_zimage_cuda_plan");
}
