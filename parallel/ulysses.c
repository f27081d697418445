/* Ulysses: heads scattered, tokens gathered within a group of U ranks by all-to-all-v, with the
 * exact per-rank head counts and shard lengths (no padding is sent or computed). Q, K and V go in
 * one fused exchange; the output comes back in a second one. */
#include "parallel/sp_internal.h"

/* Counts and displacements for a U-rank all-to-all-v, in the caller's 4 U entries. */
typedef struct {
    size_t *send_counts, *send_displs, *recv_counts, *recv_displs;
} a2a_plan;

static a2a_plan plan_in(size_t *m, int U)
{
    return (a2a_plan){m, m + U, m + 2 * U, m + 3 * U};
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

og_status og_ulysses_scatter_heads(og_comm *ulysses, const og_sp_geom *g, const og_sp_ops *ops,
                                   const void *q, const void *k, const void *v, int64_t stride,
                                   void *q_ss, void *kv_ss, void *pack, void *recv,
                                   size_t *counts)
{
    const int U = g->U, H = g->H, D = g->D;
    const int64_t L = g->len;
    const size_t e = og_sp_elem(ops);
    const a2a_plan p = plan_in(counts, U);
    for (int j = 0; j < U; j++) {
        int h0, hn;
        int64_t off, len;
        og_head_range(H, U, j, &h0, &hn);
        peer_shard(g, j, &off, &len);
        p.send_counts[j] = (size_t)(3 * L * hn * D) * e;
        p.recv_counts[j] = (size_t)(3 * len * g->hn * D) * e;
    }
    plan_displs(p.send_displs, p.send_counts, U);
    plan_displs(p.recv_displs, p.recv_counts, U);

    /* Pack: for each destination j, [3][L][hn_j][D] (its heads of Q, then K, then V). */
    og_status st = OG_OK;
    const char *src[3] = {q, k, v};
    for (int j = 0; j < U && st == OG_OK; j++) {
        int h0, hn;
        og_head_range(H, U, j, &h0, &hn);
        char *dst = (char *)pack + p.send_displs[j];
        const size_t width = (size_t)hn * D * e;
        for (int part = 0; part < 3 && st == OG_OK; part++)
            st = og_sp_copy2d(ops, dst + (size_t)(part * L) * width, width,
                              src[part] + (size_t)h0 * D * e, (size_t)stride * e, width,
                              (size_t)L);
    }
    if (st == OG_OK)
        st = og_sp_sync(ops);
    if (st == OG_OK)
        st = og_comm_all_to_all_v(ulysses, pack, p.send_counts, p.send_displs, recv,
                                  p.recv_counts, p.recv_displs);
    /* Unpack: peer w's tokens are rows [off_w - super_off, + len_w) of the super-shard. */
    const int64_t row = (int64_t)g->hn * D, Ls = g->super_len;
    for (int w = 0; w < U && st == OG_OK; w++) {
        int64_t off, len;
        peer_shard(g, w, &off, &len);
        const char *blk = (const char *)recv + p.recv_displs[w];
        const size_t at = (size_t)((off - g->super_off) * row) * e, n = (size_t)(len * row) * e;
        if ((st = og_sp_copy2d(ops, (char *)q_ss + at, n, blk, n, n, 1)) == OG_OK &&
            (st = og_sp_copy2d(ops, (char *)kv_ss + at, n, blk + n, n, n, 1)) == OG_OK)
            st = og_sp_copy2d(ops, (char *)kv_ss + (size_t)(Ls * row) * e + at, n, blk + 2 * n,
                              n, n, 1);
    }
    return st;
}

og_status og_ulysses_gather_heads(og_comm *ulysses, const og_sp_geom *g, const og_sp_ops *ops,
                                  const void *o_ss, void *out, void *recv, size_t *counts)
{
    const int U = g->U, H = g->H, D = g->D;
    const int64_t L = g->len, row = (int64_t)g->hn * D;
    const size_t e = og_sp_elem(ops);
    const a2a_plan p = plan_in(counts, U);
    for (int j = 0; j < U; j++) {
        int h0, hn;
        int64_t off, len;
        og_head_range(H, U, j, &h0, &hn);
        peer_shard(g, j, &off, &len);
        /* To peer j: its tokens, which sit contiguously in o_ss, for this rank's heads. */
        p.send_counts[j] = (size_t)(len * row) * e;
        p.send_displs[j] = (size_t)((off - g->super_off) * row) * e;
        p.recv_counts[j] = (size_t)(L * hn * D) * e;
    }
    plan_displs(p.recv_displs, p.recv_counts, U);
    og_status st = og_sp_sync(ops);
    if (st == OG_OK)
        st = og_comm_all_to_all_v(ulysses, o_ss, p.send_counts, p.send_displs, recv,
                                  p.recv_counts, p.recv_displs);
    for (int w = 0; w < U && st == OG_OK; w++) {
        int h0, hn;
        og_head_range(H, U, w, &h0, &hn);
        const size_t width = (size_t)hn * D * e;
        st = og_sp_copy2d(ops, (char *)out + (size_t)h0 * D * e, (size_t)H * D * e,
                          (const char *)recv + p.recv_displs[w], width, width, (size_t)L);
    }
    return st;
}
