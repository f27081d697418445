/* Ring attention: each rank keeps its queries while the K/V super-shards travel the ring (send to
 * the next rank, receive from the previous), double-buffered so that the transfer of the next
 * block runs while attention works on the current one, and is waited for only after. Blocks may
 * differ in length. Partial results merge in fp32 by log-sum-exp. A local block (replicated text
 * K/V) is attended exactly once, after the ring, on every rank: it never travels. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "core/ops.h"
#include "parallel/sp_internal.h"

void og_lse_merge(float *out, float *lse, const float *out_b, const float *lse_b, int64_t rows,
                  int D)
{
#pragma omp parallel for schedule(static) if (rows * D > 65536)
    for (int64_t i = 0; i < rows; i++) {
        const float a = lse[i], b = lse_b[i];
        float *o = out + i * D;
        const float *ob = out_b + i * D;
        if (b == -INFINITY)
            continue;
        if (a == -INFINITY) {
            memcpy(o, ob, (size_t)D * sizeof(float));
            lse[i] = b;
            continue;
        }
        const float m = a > b ? a : b;
        const float ea = expf(a - m), eb = expf(b - m), s = ea + eb;
        const float wa = ea / s, wb = eb / s;
        for (int d = 0; d < D; d++)
            o[d] = wa * o[d] + wb * ob[d];
        lse[i] = m + logf(s);
    }
}

og_attn_desc og_ring_block_desc(const og_ring_args *a, int64_t len, int64_t stride)
{
    return (og_attn_desc){.sq = a->lq, .skv = len, .heads = a->hn, .head_dim = a->D,
                          .q_stride = (int64_t)a->hn * a->D, .k_stride = stride,
                          .v_stride = stride, .o_stride = (int64_t)a->hn * a->D,
                          .scale = a->scale};
}

/* Attention of all queries against one K/V block; the first block writes the result, later ones
 * merge into it. */
static og_status attend_block(const og_ring_args *a, const void *k, const void *v, int64_t len,
                              int64_t stride, int first)
{
    const og_attn_desc d = og_ring_block_desc(a, len, stride);
    float *out = first ? a->out : a->tmp_out, *lse = first ? a->lse : a->tmp_lse;
    const og_sp_ops *ops = a->ops;
    if (ops)
        OG_TRY(ops->attend(ops->user, &d, a->q, k, v, out, lse));
    else
        OG_TRY(og_attention(&d, a->q, k, v, out, lse, a->scratch));
    if (first)
        return OG_OK;
    if (ops)
        return ops->merge(ops->user, a->out, a->lse, a->tmp_out, a->tmp_lse, a->lq, a->hn, a->D);
    og_lse_merge(a->out, a->lse, a->tmp_out, a->tmp_lse, a->lq * a->hn, a->D);
    return OG_OK;
}

og_status og_ring_attention(og_comm *ring, const og_ring_args *a)
{
    const int R = ring->size, me = ring->rank;
    const int next = (me + 1) % R, prev = (me + R - 1) % R;
    const size_t e = og_sp_elem(a->ops);
    const int64_t row = (int64_t)a->hn * a->D;
    const char *cur = a->kv_own;
    int blk = me;
    /* Device hooks only queue attention: it is queued first and runs while the transfer below
     * goes on (an in-process device copy may run inside sendrecv_start, on the calling thread).
     * Host attention computes on the calling thread, so the transfer is posted first. */
    const bool queued = a->ops != NULL;
    for (int step = 0; step < R; step++) {
        const int64_t len = a->block_len[blk];
        const int incoming = (blk + R - 1) % R;
        char *nxt = cur == (const char *)a->kv_a ? a->kv_b : a->kv_a;
        const bool transfer = step < R - 1;
        og_comm_req req;
        /* The peer overwrites nxt, which the previous step's (asynchronous) attention read, and
         * reads cur, which the previous step received or the Ulysses step wrote. Attention on
         * cur neither writes cur nor touches nxt, so it may run during the transfer. */
        if (transfer)
            OG_TRY(og_sp_sync(a->ops));
        og_status st = OG_OK;
        if (queued)
            st = attend_block(a, cur, cur + (size_t)(len * row) * e, len, row, step == 0);
        /* Posted even after a failed attention: the peers' transfers need their partner. */
        if (transfer) {
            const size_t in_bytes = (size_t)(2 * a->block_len[incoming] * row) * e;
            og_status sst = og_comm_sendrecv_start(ring, cur, (size_t)(2 * len * row) * e, next,
                                                   nxt, in_bytes, prev, &req);
            if (sst != OG_OK)
                return st != OG_OK ? st : sst;
        }
        if (!queued)
            st = attend_block(a, cur, cur + (size_t)(len * row) * e, len, row, step == 0);
        if (transfer) {
            og_status wst = og_comm_sendrecv_wait(&req);
            if (st == OG_OK)
                st = wst;
        }
        OG_TRY(st);
        cur = nxt;
        blk = incoming;
    }
    if (a->extra_len > 0)
        OG_TRY(attend_block(a, a->extra_k, a->extra_v, a->extra_len, a->extra_stride, 0));
    return OG_OK;
}
