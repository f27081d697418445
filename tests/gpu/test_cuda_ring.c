/* Ring attention with all its ranks on one GPU, through the in-process communicator on device
 * memory: R = 2, 3, 4 rank threads share GPU 0, each keeps its (uneven) query shard, K/V blocks
 * travel the ring as bf16 device buffers while attention runs on the previous block, and partials
 * merge by LSE in fp32. The gathered result must equal serial attention on the whole sequence, and
 * each rank must have sent exactly the K/V bytes of R-1 hops. */
#include <string.h>

#include "gpu_testutil.h"
#include "parallel/comm.h"
#include "parallel/sp.h"

typedef struct {
    int64_t S;
    int H, D;
    const float *q, *k, *v;      /* host, full [S, H, D], bf16-representable */
    const float *ref, *ref_lse;  /* serial GPU attention, f32 */
} ring_case;

#define RANK_TRY(expr)                                                       \
    do {                                                                     \
        st = (expr);                                                         \
        if (st != OG_OK)                                                     \
            goto done;                                                       \
    } while (0)

static og_status ring_rank(og_comm *world, void *arg)
{
    const ring_case *c = arg;
    const int R = world->size, me = world->rank, next = (me + 1) % R, prev = (me + R - 1) % R;
    const int64_t row = (int64_t)c->H * c->D;
    int64_t off[8], len[8], maxlen = 0;
    for (int j = 0; j < R; j++) {
        og_shard_range(c->S, R, j, &off[j], &len[j]);
        maxlen = len[j] > maxlen ? len[j] : maxlen;
    }
    og_cuda_ctx *ctx = NULL;
    float *full = NULL;
    og_status st = OG_OK;
    RANK_TRY(og_cuda_init(0, &ctx));
    RANK_TRY(og_cuda_reserve(ctx, 64 << 20, "ring rank"));
    og_arena *a = og_cuda_arena(ctx);
    const int64_t n = len[me];
    og_bf16 *q = og_arena_alloc(a, (size_t)(n * row) * 2);
    og_bf16 *kv[2] = {og_arena_alloc(a, (size_t)(2 * maxlen * row) * 2),
                      og_arena_alloc(a, (size_t)(2 * maxlen * row) * 2)};
    float *out = og_arena_alloc(a, (size_t)(n * row) * 4), *lse = og_arena_alloc(a, (size_t)(n * c->H) * 4);
    float *tmp = og_arena_alloc(a, (size_t)(n * row) * 4), *tmp_lse = og_arena_alloc(a, (size_t)(n * c->H) * 4);
    float *gathered = og_arena_alloc(a, (size_t)(c->S * row) * 4);
    if (!q || !kv[1] || !tmp_lse || !gathered)
        RANK_TRY(OG_ERR_OOM);
    RANK_TRY(og_cuda_upload(ctx, q, OG_BF16, c->q + off[me] * row, OG_F32, (size_t)(n * row)));
    RANK_TRY(og_cuda_upload(ctx, kv[0], OG_BF16, c->k + off[me] * row, OG_F32, (size_t)(n * row)));
    RANK_TRY(og_cuda_upload(ctx, kv[0] + n * row, OG_BF16, c->v + off[me] * row, OG_F32,
                            (size_t)(n * row)));

    int cur = 0, blk = me;
    for (int step = 0; step < R; step++) {
        const int64_t bl = len[blk];
        const int incoming = (blk + R - 1) % R;
        og_comm_req req;
        /* The receive buffer was read by the previous step's kernels: let them finish. */
        RANK_TRY(og_cuda_sync(ctx));
        if (step < R - 1)
            RANK_TRY(og_comm_sendrecv_start(world, kv[cur], (size_t)(2 * bl * row) * 2, next,
                                            kv[cur ^ 1], (size_t)(2 * len[incoming] * row) * 2,
                                            prev, &req));
        og_attn_desc d = {.sq = n, .skv = bl, .heads = c->H, .head_dim = c->D, .q_stride = row,
                          .k_stride = row, .v_stride = row, .o_stride = row,
                          .scale = 1.0f / sqrtf((float)c->D)};
        og_status ast = og_cuda_attention(ctx, &d, q, kv[cur], kv[cur] + bl * row,
                                          step == 0 ? out : tmp, OG_F32, step == 0 ? lse : tmp_lse);
        if (ast == OG_OK && step > 0)
            ast = og_cuda_lse_merge(ctx, out, lse, row, tmp, OG_F32, tmp_lse, row, n, c->H, c->D);
        if (step < R - 1) {
            og_status wst = og_comm_sendrecv_wait(&req);
            if (ast == OG_OK)
                ast = wst;
        }
        RANK_TRY(ast);
        cur ^= 1;
        blk = incoming;
    }
    uint64_t expect = 0;
    for (int step = 0, b = me; step < R - 1; step++, b = (b + R - 1) % R)
        expect += (uint64_t)(2 * len[b] * row) * 2;
    if (world->bytes_sent != expect)
        RANK_TRY(og_fail(OG_ERR_INTERNAL, "rank %d sent %llu bytes, the ring needs %llu", me,
                         (unsigned long long)world->bytes_sent, (unsigned long long)expect));

    size_t counts[8], displs[8];
    for (int j = 0; j < R; j++) {
        counts[j] = (size_t)(len[j] * row) * 4;
        displs[j] = (size_t)(off[j] * row) * 4;
    }
    RANK_TRY(og_cuda_sync(ctx));
    RANK_TRY(og_comm_all_gather_v(world, out, counts[me], gathered, counts, displs));
    full = malloc((size_t)(c->S * row) * sizeof *full);
    float *my_lse = malloc((size_t)(n * c->H) * sizeof *my_lse);
    RANK_TRY(og_cuda_download(ctx, full, gathered, OG_F32, (size_t)(c->S * row)));
    RANK_TRY(og_cuda_download(ctx, my_lse, lse, OG_F32, (size_t)(n * c->H)));
    double e = og_test_rel_err_f(full, c->ref, (size_t)(c->S * row));
    double el = og_test_rel_err_f(my_lse, c->ref_lse + off[me] * c->H, (size_t)(n * c->H));
    free(my_lse);
    if (!(e < OG_BF16_TOL) || !(el < 1e-4))
        RANK_TRY(og_fail(OG_ERR_INTERNAL, "ring R=%d rank %d: out rel err %.3g, lse rel err %.3g",
                         R, me, e, el));
done:
    free(full);
    og_cuda_free(ctx);
    return st;
}

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_ring", 64);
    if (!ctx)
        return OG_TEST_SKIP;
    og_test_rng r = {31};
    const int dims[2] = {128, 64};
    for (int di = 0; di < 2; di++) {
        ring_case c = {.S = 301, .H = 3, .D = dims[di]};
        size_t n = (size_t)(c.S * c.H * c.D), nl = (size_t)(c.S * c.H);
        float *q = og_gpu_rand(&r, n, 2.0f), *k = og_gpu_rand(&r, n, 2.0f), *v = og_gpu_rand(&r, n, 1.0f);
        size_t mark = og_arena_mark(og_cuda_arena(ctx));
        og_bf16 *dq = og_gpu_put(ctx, q, n, OG_BF16), *dk = og_gpu_put(ctx, k, n, OG_BF16);
        og_bf16 *dv = og_gpu_put(ctx, v, n, OG_BF16);
        float *dout = og_gpu_alloc(ctx, n, OG_F32), *dlse = og_gpu_alloc(ctx, nl, OG_F32);
        int64_t row = (int64_t)c.H * c.D;
        og_attn_desc d = {.sq = c.S, .skv = c.S, .heads = c.H, .head_dim = c.D, .q_stride = row,
                          .k_stride = row, .v_stride = row, .o_stride = row,
                          .scale = 1.0f / sqrtf((float)c.D)};
        CHECK_OK(og_cuda_attention(ctx, &d, dq, dk, dv, dout, OG_F32, dlse));
        float *ref = og_gpu_get(ctx, dout, n, OG_F32), *ref_lse = og_gpu_get(ctx, dlse, nl, OG_F32);
        og_arena_release(og_cuda_arena(ctx), mark);
        c.q = q, c.k = k, c.v = v, c.ref = ref, c.ref_lse = ref_lse;
        struct og_inproc_copy copy;
        og_cuda_inproc_copy(0, &copy);
        for (int R = 2; R <= 4; R++)
            CHECK_OK(og_run_ranks_copy(R, 1, &copy, ring_rank, &c));
        free(q), free(k), free(v), free(ref), free(ref_lse);
    }
    og_cuda_free(ctx);
    return og_test_finish("test_cuda_ring");
}
