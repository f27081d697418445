/* Checks shared by the in-process tests and the MPI test: deterministic attention inputs, the
 * single-rank reference (og_attention over the whole image + text sequence), one rank's SP run
 * compared with it, and the bytes that rank must have sent, computed here from og_shard_range
 * and og_head_range independently of the implementation's own bookkeeping (DESIGN.md counting). */
#ifndef OG_TEST_PARALLEL_CHECKS_H
#define OG_TEST_PARALLEL_CHECKS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "parallel/comm.h"
#include "parallel/sp.h"
#include "testutil.h"

#define SP_TOL 1e-5

typedef struct {
    int heads, D;
    int64_t seq, text;
    uint64_t seed;
    float *q, *k, *v;       /* [seq, H, D] */
    float *tq, *tk, *tv;    /* [text, H, D] */
    float *ref;             /* [seq + text, H, D]: image rows, then text rows */
} sp_data;

/* Full-sequence inputs (identical on every rank and process) and the single-rank reference. */
static inline int sp_data_make(sp_data *d, int heads, int D, int64_t seq, int64_t text,
                               uint64_t seed)
{
    *d = (sp_data){.heads = heads, .D = D, .seq = seq, .text = text, .seed = seed};
    const int64_t row = (int64_t)heads * D, N = seq + text;
    float *q = malloc((size_t)(N * row) * sizeof *q), *k = malloc((size_t)(N * row) * sizeof *k);
    float *v = malloc((size_t)(N * row) * sizeof *v);
    d->ref = malloc((size_t)(N * row) * sizeof *d->ref);
    if (!q || !k || !v || !d->ref)
        return -1;
    og_test_rng rng = {seed * 0x9E3779B97F4A7C15ULL + 1};
    og_test_fill(&rng, q, (size_t)(N * row), 1.0f);
    og_test_fill(&rng, k, (size_t)(N * row), 1.0f);
    og_test_fill(&rng, v, (size_t)(N * row), 1.0f);
    d->q = q, d->k = k, d->v = v;
    d->tq = q + seq * row, d->tk = k + seq * row, d->tv = v + seq * row;
    const og_attn_desc desc = {.sq = N, .skv = N, .heads = heads, .head_dim = D,
                               .q_stride = row, .k_stride = row, .v_stride = row, .o_stride = row,
                               .scale = 1.0f / sqrtf((float)D)};
    return og_attention(&desc, q, k, v, d->ref, NULL, NULL) == OG_OK ? 0 : -1;
}

static inline void sp_data_free(sp_data *d)
{
    free(d->q);
    free(d->k);
    free(d->v);
    free(d->ref);
}

/* Bytes one attention call must send from SP rank `sp` (Ulysses both ways, the ring hops, the
 * text gather), counted in floats from the shard and head ranges. */
static inline uint64_t sp_expected_bytes(int U, int R, int sp, int64_t S, int64_t T, int H, int D)
{
    const int P = U * R, u = sp % U, r = sp / U;
    int64_t off, len, n = 0;
    int h0, hn, hv0, hvn;
    og_shard_range(S, P, sp, &off, &len);
    og_head_range(H, U, u, &h0, &hn);
    for (int v = 0; v < U; v++) {
        if (v == u)
            continue;
        int64_t voff, vlen;
        og_head_range(H, U, v, &hv0, &hvn);
        og_shard_range(S, P, r * U + v, &voff, &vlen);
        n += 3 * len * hvn * D; /* Q, K, V: my tokens, its heads */
        n += vlen * hn * D;     /* output: its tokens, my heads */
    }
    for (int s = 0; s < R - 1; s++) { /* hop s forwards the super-shard of ring rank r - s */
        const int j = ((r - s) % R + R) % R;
        for (int w = 0; w < U; w++) {
            int64_t woff, wlen;
            og_shard_range(S, P, j * U + w, &woff, &wlen);
            n += 2 * wlen * hn * D;
        }
    }
    if (T > 0) {
        int64_t toff, tlen;
        og_shard_range(T, R, r, &toff, &tlen);
        n += (int64_t)(P - 1) * tlen * hn * D;
    }
    return (uint64_t)n * sizeof(float);
}

typedef struct {
    int fails;
    double worst;
    char msg[512];
} sp_result;

static inline void sp_result_fail(sp_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void sp_result_fail(sp_result *res, const char *fmt, ...)
{
    if (res->fails++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->msg, sizeof res->msg, fmt, ap);
        va_end(ap);
    }
}

/* Byte b of the message rank `from` sends to rank `to` in round `round`: every check below can
 * tell a misplaced or stale byte. */
static inline unsigned char comm_byte(int round, int from, int to, size_t b)
{
    return (unsigned char)(round * 131 + from * 31 + to * 7 + b * 3 + 1);
}

/* Every operation of a communicator (any backend, host memory), with uneven sizes, and the
 * bytes_sent each must add. Collective: all ranks of c call it. */
static inline void comm_check_ops(og_comm *c, sp_result *res)
{
    const int P = c->size, me = c->rank;
    size_t sc[64] = {0}, sd[64] = {0}, rc[64] = {0}, rd[64] = {0}, at_s = 0, at_r = 0;
    unsigned char *send = calloc(64 * 64 + 1, 1), *recv = calloc(64 * 64 + 1, 1);
    if (P > 64 || !send || !recv) {
        sp_result_fail(res, "comm check: at most 64 ranks / out of memory");
        free(send);
        free(recv);
        return;
    }
    /* all-to-all-v: rank i sends (i + 2j) % 5 bytes to rank j (some zero). */
    uint64_t want_bytes = 0;
    for (int j = 0; j < P; j++) {
        sc[j] = (size_t)((me + 2 * j) % 5), sd[j] = at_s, at_s += sc[j];
        rc[j] = (size_t)((j + 2 * me) % 5), rd[j] = at_r, at_r += rc[j];
        for (size_t b = 0; b < sc[j]; b++)
            send[sd[j] + b] = comm_byte(0, me, j, b);
        if (j != me)
            want_bytes += sc[j];
    }
    c->bytes_sent = 0;
    og_status st = og_comm_all_to_all_v(c, send, sc, sd, recv, rc, rd);
    if (st != OG_OK)
        sp_result_fail(res, "all-to-all-v: %s", og_error_message());
    for (int j = 0; j < P && st == OG_OK; j++)
        for (size_t b = 0; b < rc[j]; b++)
            if (recv[rd[j] + b] != comm_byte(0, j, me, b)) {
                sp_result_fail(res, "all-to-all-v: rank %d byte %zu from %d wrong", me, b, j);
                break;
            }
    if (c->bytes_sent != want_bytes)
        sp_result_fail(res, "all-to-all-v counted %llu bytes, want %llu",
                       (unsigned long long)c->bytes_sent, (unsigned long long)want_bytes);

    /* all-gather-v: rank j contributes j + 1 bytes. */
    at_r = 0;
    for (int j = 0; j < P; j++)
        rc[j] = (size_t)j + 1, rd[j] = at_r, at_r += rc[j];
    for (size_t b = 0; b < rc[me]; b++)
        send[b] = comm_byte(1, me, 0, b);
    c->bytes_sent = 0;
    if ((st = og_comm_all_gather_v(c, send, rc[me], recv, rc, rd)) != OG_OK)
        sp_result_fail(res, "all-gather-v: %s", og_error_message());
    for (int j = 0; j < P && st == OG_OK; j++)
        for (size_t b = 0; b < rc[j]; b++)
            if (recv[rd[j] + b] != comm_byte(1, j, 0, b)) {
                sp_result_fail(res, "all-gather-v: rank %d byte %zu of block %d wrong", me, b, j);
                break;
            }
    if (c->bytes_sent != (uint64_t)(P - 1) * rc[me])
        sp_result_fail(res, "all-gather-v counted %llu bytes", (unsigned long long)c->bytes_sent);

    /* Ring send/receive, three rounds, sizes differing per sender, start then wait. */
    c->bytes_sent = 0;
    want_bytes = 0;
    for (int round = 0; round < 3; round++) {
        const int next = (me + 1) % P, prev = (me + P - 1) % P;
        const size_t ns = (size_t)(10 + me + round), nr = (size_t)(10 + prev + round);
        for (size_t b = 0; b < ns; b++)
            send[b] = comm_byte(2 + round, me, next, b);
        og_comm_req req;
        st = og_comm_sendrecv_start(c, send, ns, next, recv, nr, prev, &req);
        if (st == OG_OK)
            st = og_comm_sendrecv_wait(&req);
        if (st != OG_OK) {
            sp_result_fail(res, "send-receive round %d: %s", round, og_error_message());
            break;
        }
        for (size_t b = 0; b < nr; b++)
            if (recv[b] != comm_byte(2 + round, prev, me, b)) {
                sp_result_fail(res, "send-receive round %d: byte %zu from %d wrong", round, b,
                               prev);
                break;
            }
        want_bytes += next != me ? ns : 0;
    }
    if (c->bytes_sent != want_bytes)
        sp_result_fail(res, "send-receive counted %llu bytes, want %llu",
                       (unsigned long long)c->bytes_sent, (unsigned long long)want_bytes);

    /* Broadcast from every root. */
    for (int root = 0; root < P; root++) {
        for (size_t b = 0; b < 17; b++)
            send[b] = me == root ? comm_byte(9, root, 0, b) : 0;
        c->bytes_sent = 0;
        if (og_comm_broadcast(c, send, 17, root) != OG_OK) {
            sp_result_fail(res, "broadcast from %d: %s", root, og_error_message());
            break;
        }
        for (size_t b = 0; b < 17; b++)
            if (send[b] != comm_byte(9, root, 0, b)) {
                sp_result_fail(res, "broadcast from %d: byte %zu wrong on %d", root, b, me);
                break;
            }
        if (c->bytes_sent != (me == root ? (uint64_t)(P - 1) * 17 : 0))
            sp_result_fail(res, "broadcast counted %llu bytes", (unsigned long long)c->bytes_sent);
    }

    /* All-reduce, in place: sum over ranks of (r + 1) * (i + 1) is exact in fp32 here. */
    float x[5];
    for (int i = 0; i < 5; i++)
        x[i] = (float)((me + 1) * (i + 1));
    if (og_comm_all_reduce_sum_f32(c, x, x, 5) != OG_OK)
        sp_result_fail(res, "all-reduce: %s", og_error_message());
    for (int i = 0; i < 5; i++)
        if (x[i] != (float)(P * (P + 1) / 2 * (i + 1)))
            sp_result_fail(res, "all-reduce: element %d is %g", i, x[i]);
    if (og_comm_barrier(c) != OG_OK)
        sp_result_fail(res, "barrier: %s", og_error_message());

    /* Split into odd and even ranks, keys reversed; rank 0 sits out (negative color). */
    og_comm *sub = NULL;
    const int color = me == 0 && P > 1 ? -1 : me % 2;
    if (og_comm_split(c, color, -me, &sub) != OG_OK) {
        sp_result_fail(res, "split: %s", og_error_message());
    } else if (color < 0) {
        if (sub)
            sp_result_fail(res, "split: a negative color got a communicator");
    } else {
        int members = 0, above = 0;
        for (int j = P > 1 ? 1 : 0; j < P; j++)
            if (j % 2 == color) {
                members++;
                above += j > me;
            }
        if (!sub || sub->size != members || sub->rank != above)
            sp_result_fail(res, "split: rank %d got %d of %d, want %d of %d", me,
                           sub ? sub->rank : -1, sub ? sub->size : -1, above, members);
        else {
            /* The new communicator works: gather the old ranks in new-rank order. */
            int ids[64];
            size_t cnt[64], dsp[64];
            for (int j = 0; j < sub->size; j++)
                cnt[j] = sizeof(int), dsp[j] = j * sizeof(int);
            if (og_comm_all_gather_v(sub, &me, sizeof me, ids, cnt, dsp) != OG_OK)
                sp_result_fail(res, "gather on split: %s", og_error_message());
            for (int j = 1; j < sub->size; j++)
                if (ids[j] >= ids[j - 1])
                    sp_result_fail(res, "split: order by key broken (%d after %d)", ids[j],
                                   ids[j - 1]);
        }
    }
    og_comm_free(sub);
    free(send);
    free(recv);
}

/* One rank's SP attention on data d under sp, checked against the reference and against the
 * expected byte count. Records failures in res. */
static inline void sp_check_attention(og_sp *sp, const sp_data *d, sp_result *res)
{
    const og_parallel_config *c = og_sp_config(sp);
    const int U = c->ulysses_degree, R = c->ring_degree, P = U * R, me = og_sp_rank(sp);
    const int H = d->heads, D = d->D;
    const int64_t row = (int64_t)H * D;
    int64_t off, len;
    og_shard_range(d->seq, P, me, &off, &len);
    float *out = malloc((size_t)(len * row) * sizeof *out);
    float *tout = malloc((size_t)((d->text ? d->text : 1) * row) * sizeof *tout);
    /* Scratch from an arena of exactly the advertised size: too small a figure fails the call. */
    og_arena arena;
    if (!out || !tout ||
        og_arena_init(&arena, og_sp_attention_scratch_bytes(sp, d->seq, H, D, d->text)) != OG_OK) {
        sp_result_fail(res, "out of memory");
        free(out);
        free(tout);
        return;
    }
    const og_sp_attn_args a = {
        .seq = d->seq, .heads = H, .head_dim = D, .scale = 1.0f / sqrtf((float)D),
        .q = d->q + off * row, .k = d->k + off * row, .v = d->v + off * row, .out = out,
        .text_len = d->text, .text_q = d->tq, .text_k = d->tk, .text_v = d->tv, .text_out = tout,
        .scratch = &arena,
    };
    char what[160];
    snprintf(what, sizeof what, "U=%d R=%d cfg=%d %s H=%d S=%lld T=%lld rank %d",
             U, R, c->cfg_degree, og_ulysses_mode_name(c->ulysses_mode), H,
             (long long)d->seq, (long long)d->text, me);
    og_sp_reset_bytes(sp);
    og_status st = og_sp_attention(sp, &a);
    if (st != OG_OK) {
        sp_result_fail(res, "%s: og_sp_attention failed: %s", what, og_error_message());
    } else {
        double e = og_test_rel_err_f(out, d->ref + off * row, (size_t)(len * row));
        if (d->text > 0) {
            double et = og_test_rel_err_f(tout, d->ref + d->seq * row, (size_t)(d->text * row));
            e = et > e ? et : e;
        }
        if (e > res->worst)
            res->worst = e;
        if (!(e <= SP_TOL))
            sp_result_fail(res, "%s: relative error %.3g > %g", what, e, SP_TOL);
        const uint64_t want = sp_expected_bytes(U, R, me, d->seq, d->text, H, D);
        const uint64_t got = og_sp_bytes_sent(sp);
        if (got != want)
            sp_result_fail(res, "%s: sent %llu bytes, expected %llu", what,
                           (unsigned long long)got, (unsigned long long)want);
        /* The DESIGN.md closed forms, where the division is even. */
        if (d->text == 0 && d->seq % P == 0 && H % U == 0) {
            const uint64_t s = (uint64_t)(d->seq / P) * (uint64_t)H * (uint64_t)D;
            const uint64_t formula = (4 * s * (U - 1) / U + 2 * (uint64_t)(R - 1) * s) * 4;
            if (got != formula)
                sp_result_fail(res, "%s: sent %llu bytes, DESIGN.md formula gives %llu", what,
                               (unsigned long long)got, (unsigned long long)formula);
        }
    }
    if (arena.used != 0)
        sp_result_fail(res, "%s: scratch not released (%zu bytes)", what, arena.used);
    og_arena_free(&arena);
    free(out);
    free(tout);
}

#endif
