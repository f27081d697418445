/* Ulysses: heads scattered, tokens gathered within a group of U ranks by all-to-all-v, with the
 * exact per-rank head counts and shard lengths (no padding is sent or computed). Q, K and V go in
 * one fused exchange; the output comes back in a second one. */
#include <stdlib.h>
#include <string.h>

#include "parallel/sp_internal.h"

/* Counts and displacements for a U-rank all-to-all-v, in one allocation. */
typedef struct {
    size_t *send_counts, *send_displs, *recv_counts, *recv_displs;
} a2a_plan;

static og_status plan_alloc(a2a_plan *p, int U)
{
    size_t *m = malloc(4 * (size_t)U * sizeof *m);
    *p = (a2a_plan){0};
    if (!m)
        return og_fail(OG_ERR_OOM, "Ulysses: cannot allocate counts for %d ranks", U);
    *p = (a2a_plan){m, m + U, m + 2 * U, m + 3 * U};
    return OG_OK;
}

static void plan_displs(size_t *displs, const size_t *counts, int U)
{
    size_t at = 0;
    for (int j = 0; j < U; j++) {
        displs[j] = at;
        at += counts[j];
    }
}

/* Shard of Ulysses peer w of this group (SP rank r*U + w). */
static void peer_shard(const og_sp_geom *g, int w, int64_t *off, int64_t *len)
{
    og_shard_range(g->S, g->U * g->R, g->r * g->U + w, off, len);
}

og_status og_ulysses_scatter_heads(og_comm *ulysses, const og_sp_geom *g, const float *q,
                                   const float *k, const float *v, float *q_ss, float *kv_ss,
                                   float *pack, float *recv)
{
    const int U = g->U, H = g->H, D = g->D;
    const int64_t L = g->len;
    a2a_plan p;
    OG_TRY(plan_alloc(&p, U));
    for (int j = 0; j < U; j++) {
        int h0, hn;
        int64_t off, len;
        og_head_range(H, U, j, &h0, &hn);
        peer_shard(g, j, &off, &len);
        p.send_counts[j] = (size_t)(3 * L * hn * D) * sizeof(float);
        p.recv_counts[j] = (size_t)(3 * len * g->hn * D) * sizeof(float);
    }
    plan_displs(p.send_displs, p.send_counts, U);
    plan_displs(p.recv_displs, p.recv_counts, U);

    /* Pack: for each destination j, [3][L][hn_j][D] (its heads of Q, then K, then V). */
    for (int j = 0; j < U; j++) {
        int h0, hn;
        og_head_range(H, U, j, &h0, &hn);
        float *dst = pack + p.send_displs[j] / sizeof(float);
        const float *src[3] = {q, k, v};
#pragma omp parallel for schedule(static) if (L * H * D > 65536)
        for (int64_t t = 0; t < L; t++)
            for (int part = 0; part < 3; part++)
                memcpy(dst + ((part * L + t) * hn) * D, src[part] + (t * H + h0) * D,
                       (size_t)hn * D * sizeof(float));
    }
    og_status st = og_comm_all_to_all_v(ulysses, pack, p.send_counts, p.send_displs, recv,
                                        p.recv_counts, p.recv_displs);
    /* Unpack: peer w's tokens are rows [off_w - super_off, + len_w) of the super-shard. */
    const int64_t row = (int64_t)g->hn * D, Ls = g->super_len;
    for (int w = 0; w < U && st == OG_OK; w++) {
        int64_t off, len;
        peer_shard(g, w, &off, &len);
        const float *blk = recv + p.recv_displs[w] / sizeof(float);
        const int64_t at = (off - g->super_off) * row, n = len * row;
        memcpy(q_ss + at, blk, (size_t)n * sizeof(float));
        memcpy(kv_ss + at, blk + n, (size_t)n * sizeof(float));
        memcpy(kv_ss + Ls * row + at, blk + 2 * n, (size_t)n * sizeof(float));
    }
    free(p.send_counts);
    return st;
}

og_status og_ulysses_gather_heads(og_comm *ulysses, const og_sp_geom *g, const float *o_ss,
                                  float *out, float *recv)
{
    const int U = g->U, H = g->H, D = g->D;
    const int64_t L = g->len, row = (int64_t)g->hn * D;
    a2a_plan p;
    OG_TRY(plan_alloc(&p, U));
    for (int j = 0; j < U; j++) {
        int h0, hn;
        int64_t off, len;
        og_head_range(H, U, j, &h0, &hn);
        peer_shard(g, j, &off, &len);
        /* To peer j: its tokens, which sit contiguously in o_ss, for this rank's heads. */
        p.send_counts[j] = (size_t)(len * row) * sizeof(float);
        p.send_displs[j] = (size_t)((off - g->super_off) * row) * sizeof(float);
        p.recv_counts[j] = (size_t)(L * hn * D) * sizeof(float);
    }
    plan_displs(p.recv_displs, p.recv_counts, U);
    og_status st = og_comm_all_to_all_v(ulysses, o_ss, p.send_counts, p.send_displs, recv,
                                        p.recv_counts, p.recv_displs);
    for (int w = 0; w < U && st == OG_OK; w++) {
        int h0, hn;
        og_head_range(H, U, w, &h0, &hn);
        const float *blk = recv + p.recv_displs[w] / sizeof(float);
#pragma omp parallel for schedule(static) if (L * H * D > 65536)
        for (int64_t t = 0; t < L; t++)
            memcpy(out + (t * H + h0) * D, blk + t * hn * D, (size_t)hn * D * sizeof(float));
    }
    free(p.send_counts);
    return st;
}
