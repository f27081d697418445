/* og_sp_attention: hybrid USP. Ulysses all-to-all(-v) to heads over the group's super-shard, Ring
 * attention across super-shards, reverse all-to-all(-v) back to tokens. With U = 1 it is pure
 * Ring, with R = 1 pure Ulysses. Joint text (replicated on every rank): each rank takes its head
 * slice of the text K/V and attends it once locally; the text queries are split over the ring
 * ranks (each attends them against every image block as they pass), and the text output is
 * all-gathered over the sequence group (heads from Ulysses peers, tokens from ring peers). */
#include "parallel/sp_internal.h"

#define FLOAT_ALIGN 16 /* 64 bytes */

static size_t round_up(size_t n) { return (n + FLOAT_ALIGN - 1) & ~(size_t)(FLOAT_ALIGN - 1); }

static og_status check_args(const og_sp *sp, const og_sp_attn_args *a)
{
    OG_TRY(og_parallel_config_validate(&sp->cfg, a->heads, a->seq, 0));
    if (a->heads < 1 || a->head_dim < 1 || a->seq < 1 || a->text_len < 0)
        return og_fail(OG_ERR_SHAPE, "SP attention: bad shape (seq %lld, text %lld, heads %d, "
                       "head_dim %d)", (long long)a->seq, (long long)a->text_len, a->heads,
                       a->head_dim);
    if (!a->q || !a->k || !a->v || !a->out ||
        (a->text_len > 0 && (!a->text_q || !a->text_k || !a->text_v || !a->text_out)))
        return og_fail(OG_ERR_INVALID_ARG, "SP attention: a buffer is missing");
    if (a->qkv_stride != 0 && a->qkv_stride < (int64_t)a->heads * a->head_dim)
        return og_fail(OG_ERR_SHAPE, "SP attention: token stride %lld is below heads x head_dim",
                       (long long)a->qkv_stride);
    if (a->ops && !a->scratch)
        return og_fail(OG_ERR_INVALID_ARG, "SP attention: buffers on a device need a scratch "
                                           "arena on that device");
    return OG_OK;
}

/* The text output pieces: SP rank j holds text tokens of ring index j / U, heads of Ulysses
 * index j % U. Gathered over the sequence group, then placed in text_out [T, H, D]. */
static og_status gather_text(og_sp *sp, const og_sp_geom *g, const og_sp_ops *ops, int64_t T,
                             const void *mine, void *recv, void *text_out)
{
    const int P = g->U * g->R, D = g->D;
    const size_t e = og_sp_elem(ops);
    size_t *counts = sp->counts, *displs = counts + P, at = 0;
    for (int j = 0; j < P; j++) {
        int64_t toff, tlen;
        int h0, hn;
        og_shard_range(T, g->R, j / g->U, &toff, &tlen);
        og_head_range(g->H, g->U, j % g->U, &h0, &hn);
        counts[j] = (size_t)(tlen * hn * D) * e;
        displs[j] = at;
        at += counts[j];
    }
    const int me = g->r * g->U + g->u;
    og_status st = og_sp_sync(ops);
    if (st == OG_OK)
        st = og_comm_all_gather_v(sp->seq, mine, counts[me], recv, counts, displs);
    for (int j = 0; j < P && st == OG_OK; j++) {
        int64_t toff, tlen;
        int h0, hn;
        og_shard_range(T, g->R, j / g->U, &toff, &tlen);
        og_head_range(g->H, g->U, j % g->U, &h0, &hn);
        const size_t width = (size_t)hn * D * e;
        st = og_sp_copy2d(ops, (char *)text_out + (size_t)((toff * g->H + h0) * D) * e,
                          (size_t)g->H * D * e, (const char *)recv + displs[j], width, width,
                          (size_t)tlen);
    }
    return st;
}

/* The scratch of one call, in floats, each piece 64-byte aligned. The receive buffer of the
 * first all-to-all is dead once the ring starts, so the ring's second K/V buffer and its
 * per-block partial results take its place (it comes last, so they may run past its end).
 * The block lives where the buffers do (a device arena with device ops); the host-side counts
 * and block lengths are og_sp's. On host buffers og_attention's scratch comes after the block. */
enum { PACK, Q, KV_A, OUT, LSE, TEXT, RECV, KV_B, TMP_OUT, TMP_LSE, NBUF }; /* RECV last */

typedef struct {
    og_sp_geom g;
    int64_t toff, tlen, lq, max_block;
    size_t at[NBUF], total; /* offsets into one block, and its size */
} attn_plan;

static void plan_init(attn_plan *p, const og_sp *sp, int64_t S, int H, int D, int64_t T)
{
    og_sp_geom_init(&p->g, sp, S, H, D);
    const og_sp_geom *g = &p->g;
    og_shard_range(T, g->R, g->r, &p->toff, &p->tlen);
    p->lq = g->super_len + p->tlen;
    p->max_block = 0;
    for (int j = 0; j < g->R; j++) {
        int64_t off, len;
        og_sp_super_range(g, j, &off, &len);
        p->max_block = len > p->max_block ? len : p->max_block;
    }
    const int64_t row = (int64_t)g->hn * D;
    const size_t n[NBUF] = {
        [PACK] = (size_t)(3 * g->len * H * D), [RECV] = (size_t)(3 * g->super_len * row),
        [Q] = (size_t)(p->lq * row),           [KV_A] = (size_t)(2 * p->max_block * row),
        [OUT] = (size_t)(p->lq * row),         [LSE] = (size_t)(p->lq * g->hn),
        [TEXT] = (size_t)(T * H * D),
        [KV_B] = g->R > 1 ? (size_t)(2 * p->max_block * row) : 0,
        [TMP_OUT] = (size_t)(p->lq * row),     [TMP_LSE] = (size_t)(p->lq * g->hn),
    };
    size_t at = 0;
    for (int i = 0; i < KV_B; i++) {
        p->at[i] = at;
        at += round_up(n[i]);
    }
    size_t in_recv = p->at[RECV]; /* the ring's buffers, laid over RECV */
    for (int i = KV_B; i < NBUF; i++) {
        p->at[i] = in_recv;
        in_recv += round_up(n[i]);
    }
    p->total = in_recv > at ? in_recv : at;
}

/* The ring's largest og_attention call on host buffers: every query against the longest
 * super-shard or the text, whichever is longer. */
static og_attn_desc largest_ring_attention(const attn_plan *p, int64_t T)
{
    const og_ring_args ra = {.lq = p->lq, .hn = p->g.hn, .D = p->g.D};
    const int64_t row = (int64_t)p->g.hn * p->g.D;
    return og_ring_block_desc(&ra, p->max_block > T ? p->max_block : T,
                              T > 0 ? (int64_t)p->g.H * p->g.D : row);
}

size_t og_sp_attention_scratch_bytes(const og_sp *sp, int64_t seq, int heads, int head_dim,
                                     int64_t text_len)
{
    attn_plan p;
    plan_init(&p, sp, seq, heads, head_dim, text_len);
    const og_attn_desc d = largest_ring_attention(&p, text_len);
    return og_arena_need(p.total * sizeof(float)) + og_attention_scratch_bytes(&d);
}

og_status og_sp_attention(og_sp *sp, const og_sp_attn_args *a)
{
    OG_TRY(check_args(sp, a));
    attn_plan p;
    plan_init(&p, sp, a->seq, a->heads, a->head_dim, a->text_len);
    const og_sp_geom *g = &p.g;
    const int D = g->D, H = g->H, R = g->R;
    const int64_t T = a->text_len, Ls = g->super_len, row = (int64_t)g->hn * D;

    og_op_scratch sc;
    OG_TRY(og_op_scratch_begin(&sc, a->scratch,
                               og_sp_attention_scratch_bytes(sp, a->seq, H, D, T)));
    float *base = og_arena_alloc(sc.a, p.total * sizeof(float));
    if (!base) {
        og_op_scratch_end(&sc);
        return og_fail_context(OG_ERR_OOM, "SP attention: %zu bytes of scratch (size it with "
                               "og_sp_attention_scratch_bytes)", p.total * sizeof(float));
    }
    float *buf[NBUF];
    for (int i = 0; i < NBUF; i++)
        buf[i] = base + p.at[i];
    int64_t *block_len = sp->block_len;
    for (int j = 0; j < R; j++) {
        int64_t off;
        og_sp_super_range(g, j, &off, &block_len[j]);
    }

    const og_sp_ops *ops = a->ops;
    const size_t e = og_sp_elem(ops);
    const int64_t in_stride = a->qkv_stride ? a->qkv_stride : (int64_t)H * D;
    og_status st = og_ulysses_scatter_heads(sp->ulysses, g, ops, a->q, a->k, a->v, in_stride,
                                            buf[Q], buf[KV_A], buf[PACK], buf[RECV], sp->counts);
    if (st == OG_OK && p.tlen > 0)
        st = og_sp_copy2d(ops, (char *)buf[Q] + (size_t)(Ls * row) * e, (size_t)row * e,
                          (const char *)a->text_q + (size_t)((p.toff * H + g->h0) * D) * e,
                          (size_t)H * D * e, (size_t)row * e, (size_t)p.tlen);
    if (st == OG_OK) {
        const og_ring_args ra = {
            .q = buf[Q], .lq = p.lq, .hn = g->hn, .D = D, .scale = a->scale,
            .block_len = block_len, .kv_own = buf[KV_A],
            .extra_len = T, .extra_stride = (int64_t)H * D,
            .extra_k = T > 0 ? (const char *)a->text_k + (size_t)g->h0 * D * e : NULL,
            .extra_v = T > 0 ? (const char *)a->text_v + (size_t)g->h0 * D * e : NULL,
            .out = buf[OUT], .lse = buf[LSE], .kv_a = buf[KV_A], .kv_b = buf[KV_B],
            .tmp_out = buf[TMP_OUT], .tmp_lse = buf[TMP_LSE], .ops = ops, .scratch = sc.a,
        };
        st = og_ring_attention(sp->ring, &ra);
    }
    /* The f32 result goes back in the buffers' element type; the dead queries' place holds it. */
    void *o = buf[OUT];
    if (st == OG_OK && ops) {
        o = buf[Q];
        st = ops->narrow(ops->user, o, buf[OUT], p.lq * row);
    }
    if (st == OG_OK)
        st = og_ulysses_gather_heads(sp->ulysses, g, ops, o, a->out, buf[PACK], sp->counts);
    if (st == OG_OK && T > 0)
        st = gather_text(sp, g, ops, T, (char *)o + (size_t)(Ls * row) * e, buf[TEXT],
                         a->text_out);
    og_op_scratch_end(&sc);
    return st;
}
