/* The order of og_ring_attention's steps, seen through a recording communicator (rank 0 of a
 * 3-rank ring; the peers' blocks are served from memory) and recording hooks. Host attention: the
 * next block's transfer is posted before attention on the current block and waited for after it
 * (the output changes between start and wait). Device hooks (attention only queued): attention on
 * the current block is queued before the transfer starts, the transfer is waited for with no sync
 * in between, and a sync precedes every start (the peer writes the buffer the previous
 * attention read). Both give serial attention over all blocks (naive double reference, 1e-5) and
 * send the right block with the right sizes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/sp_internal.h"
#include "testutil.h"

enum { R = 3, HN = 2, D = 8, LQ = 5, MAXB = 5 };
static const int64_t block_len[R] = {4, 3, 5};
#define ROW (HN * D)

typedef enum { EV_SYNC, EV_ATTEND, EV_MERGE, EV_START, EV_WAIT } ev_kind;

typedef struct {
    float kv[R][2 * MAXB * ROW]; /* each ring rank's block: K then V, [len, HN, D] each */
    ev_kind ev[32];
    int ev_block[32];
    int n_ev, starts, waits;
    const float *out;                 /* the ring's result buffer, watched by the communicator */
    float out_at_start[LQ * ROW];     /* its contents when the last transfer started */
    int out_changed_in_transfer[R];   /* per transfer: did out change between start and wait? */
    int untouched_at_first_start;     /* out still the sentinel when transfer 1 started */
    int bad_transfer;
} recorder;

static recorder rec;

static void record(ev_kind k, int block)
{
    if (rec.n_ev < 32) {
        rec.ev[rec.n_ev] = k;
        rec.ev_block[rec.n_ev++] = block;
    }
}

/* Which ring rank's block k points at (its K rows), or -1. */
static int block_of(const void *k)
{
    for (int j = 0; j < R; j++)
        if (memcmp(k, rec.kv[j], (size_t)(block_len[j] * ROW) * sizeof(float)) == 0)
            return j;
    return -1;
}

/* ---- the communicator: rank 0 of R, next = 1, prev = R - 1 ---------------------------------- */

static og_status fake_start(og_comm *c, const void *send, size_t send_bytes, int dst, void *recv,
                            size_t recv_bytes, int src, og_comm_req *req)
{
    (void)c;
    (void)req;
    /* Transfer t (from 1) sends the block attended at step t - 1 and receives block R - t. */
    const int t = ++rec.starts, sent = (R - t + 1) % R, incoming = R - t;
    record(EV_START, incoming);
    if (dst != 1 || src != R - 1 || send_bytes != (size_t)(2 * block_len[sent] * ROW) * 4 ||
        recv_bytes != (size_t)(2 * block_len[incoming] * ROW) * 4 ||
        memcmp(send, rec.kv[sent], send_bytes) != 0)
        rec.bad_transfer++;
    memcpy(recv, rec.kv[incoming], (size_t)(2 * block_len[incoming] * ROW) * 4);
    if (t == 1) {
        rec.untouched_at_first_start = 1;
        for (int i = 0; i < LQ * ROW; i++)
            rec.untouched_at_first_start &= isnan(rec.out[i]) != 0;
    }
    memcpy(rec.out_at_start, rec.out, sizeof rec.out_at_start);
    return OG_OK;
}

static og_status fake_wait(og_comm_req *req)
{
    (void)req;
    record(EV_WAIT, R - ++rec.waits);
    rec.out_changed_in_transfer[rec.waits] =
        memcmp(rec.out_at_start, rec.out, sizeof rec.out_at_start) != 0;
    return OG_OK;
}

static const og_comm_ops fake_ops = {.name = "recorder", .sendrecv_start = fake_start,
                                     .sendrecv_wait = fake_wait};

/* ---- hooks: naive attention in double, recorded ----------------------------------------------- */

static void naive_attention(const og_attn_desc *d, const float *q, const float *k, const float *v,
                            float *out, float *lse)
{
    for (int64_t i = 0; i < d->sq; i++)
        for (int h = 0; h < d->heads; h++) {
            const float *qi = q + i * d->q_stride + h * d->head_dim;
            double m = -INFINITY, s[16], sum = 0, o[D] = {0};
            for (int64_t j = 0; j < d->skv; j++) {
                double dot = 0;
                for (int e = 0; e < d->head_dim; e++)
                    dot += (double)qi[e] * k[j * d->k_stride + h * d->head_dim + e];
                s[j] = dot * d->scale;
                m = s[j] > m ? s[j] : m;
            }
            for (int64_t j = 0; j < d->skv; j++) {
                const double p = exp(s[j] - m);
                sum += p;
                for (int e = 0; e < d->head_dim; e++)
                    o[e] += p * v[j * d->v_stride + h * d->head_dim + e];
            }
            for (int e = 0; e < d->head_dim; e++)
                out[i * d->o_stride + h * d->head_dim + e] = (float)(o[e] / sum);
            lse[i * d->heads + h] = (float)(m + log(sum));
        }
}

static og_status hook_attend(void *user, const og_attn_desc *d, const void *q, const void *k,
                             const void *v, float *out, float *lse)
{
    (void)user;
    record(EV_ATTEND, block_of(k));
    naive_attention(d, q, k, v, out, lse);
    return OG_OK;
}

static og_status hook_merge(void *user, float *out, float *lse, const float *out_b,
                            const float *lse_b, int64_t sq, int heads, int head_dim)
{
    (void)user;
    record(EV_MERGE, -1);
    og_lse_merge(out, lse, out_b, lse_b, sq * heads, head_dim);
    return OG_OK;
}

static og_status hook_sync(void *user)
{
    (void)user;
    record(EV_SYNC, -1);
    return OG_OK;
}

/* ---- one run ----------------------------------------------------------------------------------- */

static void run(const og_sp_ops *ops, const char *what)
{
    static float q[LQ * ROW], kv_a[2 * MAXB * ROW], kv_b[2 * MAXB * ROW];
    static float out[LQ * ROW], lse[LQ * HN], tmp_out[LQ * ROW], tmp_lse[LQ * HN];
    memset(&rec, 0, sizeof rec);
    og_test_rng rng = {42};
    og_test_fill(&rng, q, LQ * ROW, 1.0f);
    for (int j = 0; j < R; j++)
        og_test_fill(&rng, rec.kv[j], (size_t)(2 * block_len[j] * ROW), 1.0f);
    memcpy(kv_a, rec.kv[0], (size_t)(2 * block_len[0] * ROW) * 4);
    for (int i = 0; i < LQ * ROW; i++)
        out[i] = NAN;
    rec.out = out;
    og_comm ring = {.ops = &fake_ops, .rank = 0, .size = R, .mem = OG_MEM_HOST};
    const og_ring_args a = {.q = q, .lq = LQ, .hn = HN, .D = D, .scale = 0.35f,
                            .block_len = block_len, .kv_own = kv_a, .out = out, .lse = lse,
                            .kv_a = kv_a, .kv_b = kv_b, .tmp_out = tmp_out, .tmp_lse = tmp_lse,
                            .ops = ops};
    CHECK_OK(og_ring_attention(&ring, &a));
    CHECK(rec.starts == R - 1 && rec.waits == R - 1 && rec.bad_transfer == 0,
          "%s: %d starts, %d waits, %d transfers with a wrong block or size", what, rec.starts,
          rec.waits, rec.bad_transfer);

    /* Reference: every key of every block at once. */
    static float k_all[3 * MAXB * ROW], v_all[3 * MAXB * ROW], ref[LQ * ROW], ref_lse[LQ * HN];
    int64_t n = 0;
    for (int j = 0; j < R; j++) {
        const size_t bytes = (size_t)(block_len[j] * ROW) * 4;
        memcpy(k_all + n * ROW, rec.kv[j], bytes);
        memcpy(v_all + n * ROW, rec.kv[j] + block_len[j] * ROW, bytes);
        n += block_len[j];
    }
    const og_attn_desc d = {.sq = LQ, .skv = n, .heads = HN, .head_dim = D, .q_stride = ROW,
                            .k_stride = ROW, .v_stride = ROW, .o_stride = ROW, .scale = 0.35f};
    naive_attention(&d, q, k_all, v_all, ref, ref_lse);
    CHECK(og_test_rel_err_f(out, ref, LQ * ROW) < 1e-5, "%s: output vs serial %g", what,
          og_test_rel_err_f(out, ref, LQ * ROW));
    CHECK(og_test_rel_err_f(lse, ref_lse, LQ * HN) < 1e-5, "%s: LSE vs serial %g", what,
          og_test_rel_err_f(lse, ref_lse, LQ * HN));
}

static void test_host_order(void)
{
    run(NULL, "host");
    /* Transfer 1 is posted before block 0 is attended, and waited for after it; transfer 2 the
     * same around block 2 (its merge changes out). */
    CHECK(rec.untouched_at_first_start, "host: attention ran before the first transfer started");
    CHECK(rec.out_changed_in_transfer[1] && rec.out_changed_in_transfer[2],
          "host: no attention between start and wait (transfers 1, 2: %d, %d)",
          rec.out_changed_in_transfer[1], rec.out_changed_in_transfer[2]);
}

static void test_device_order(void)
{
    const og_sp_ops ops = {.elem_bytes = sizeof(float), .attend = hook_attend,
                           .merge = hook_merge, .sync = hook_sync};
    run(&ops, "device hooks");
    static const struct {
        ev_kind k;
        int block;
    } want[] = {
        {EV_SYNC, -1},   {EV_ATTEND, 0}, {EV_START, 2},  {EV_WAIT, 2},  /* block 0, get 2 */
        {EV_SYNC, -1},   {EV_ATTEND, 2}, {EV_MERGE, -1}, {EV_START, 1}, {EV_WAIT, 1}, /* 2, get 1 */
        {EV_ATTEND, 1},  {EV_MERGE, -1},                                  /* block 1, no transfer */
    };
    const int nw = (int)(sizeof want / sizeof want[0]);
    static const char *names[] = {"sync", "attend", "merge", "start", "wait"};
    CHECK(rec.n_ev == nw, "device hooks: %d events, expected %d", rec.n_ev, nw);
    for (int i = 0; i < nw && i < rec.n_ev; i++)
        CHECK(rec.ev[i] == want[i].k && rec.ev_block[i] == want[i].block,
              "device hooks: event %d is %s(%d), expected %s(%d)", i, names[rec.ev[i]],
              rec.ev_block[i], names[want[i].k], want[i].block);
}

int main(void)
{
    test_host_order();
    test_device_order();
    return og_test_finish("test_parallel_ring_order");
}
