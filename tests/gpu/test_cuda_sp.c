/* Sequence-parallel attention on GPUs: for Ulysses, Ring and hybrid layouts (uneven heads as in
 * UAA, uneven shards) the ranks are threads, each with its own context, either all sharing GPU 0
 * through the in-process communicator on device memory, or one GPU each through NCCL where the
 * machine has enough GPUs. Ulysses packs head slices with 2-D device copies and exchanges them
 * with one all-to-all-v; K/V super-shards travel the ring as bf16 while attention runs on the
 * previous block; partials merge by LSE in fp32; the reverse all-to-all-v returns tokens. The
 * gathered output and the LSE must equal serial attention on the whole sequence, and each
 * communicator must have sent exactly the bytes the layout implies. (parallel/'s
 * og_sp_attention is host-only today; this drives the same steps on the device.) */
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_testutil.h"
#include "parallel/comm.h"
#include "parallel/sp.h"

#define MAXP 8

typedef struct {
    int U, R;
    int64_t S;
    int H, D;
    const float *q, *k, *v;     /* host, full [S, H, D], bf16-representable */
    const float *ref, *ref_lse; /* serial GPU attention, f32 */
} sp_case;

#define RANK_TRY(expr)                                                       \
    do {                                                                     \
        st = (expr);                                                         \
        if (st != OG_OK)                                                     \
            goto done;                                                       \
    } while (0)
#define CU(expr) RANK_TRY((expr) == cudaSuccess ? OG_OK : og_fail(OG_ERR_DEVICE, "%s failed", #expr))

/* One rank of layout (U, R) on `device`; world is the device-memory communicator of all ranks. */
static og_status sp_layout(og_comm *world, int device, const sp_case *c)
{
    const int U = c->U, R = c->R, P = U * R, me = world->rank, u = me % U, r = me / U;
    const int H = c->H, D = c->D;
    const int64_t row = (int64_t)H * D;
    int64_t off[MAXP], len[MAXP], boff[MAXP], blen[MAXP], maxb = 0;
    int h0[MAXP], hn[MAXP];
    for (int j = 0; j < P; j++)
        og_shard_range(c->S, P, j, &off[j], &len[j]);
    for (int j = 0; j < R; j++) { /* ring rank j's super-shard: SP shards j*U .. j*U+U-1 */
        boff[j] = off[j * U];
        blen[j] = off[j * U + U - 1] + len[j * U + U - 1] - boff[j];
        maxb = blen[j] > maxb ? blen[j] : maxb;
    }
    for (int j = 0; j < U; j++)
        og_head_range(H, U, j, &h0[j], &hn[j]);
    const int64_t n = len[me], Ls = blen[r], hrow = (int64_t)hn[u] * D;

    og_cuda_ctx *ctx = NULL;
    og_comm *uly = NULL, *ring = NULL;
    float *full = NULL, *my_lse = NULL;
    og_status st = OG_OK;
    RANK_TRY(og_comm_split(world, r, u, &uly));
    RANK_TRY(og_comm_split(world, u, r, &ring));
    RANK_TRY(og_cuda_init(device, &ctx));
    RANK_TRY(og_cuda_reserve(ctx, 96 << 20, "SP rank"));
    cudaStream_t s = og_cuda_stream(ctx);
    og_arena *a = og_cuda_arena(ctx);
    og_bf16 *x = og_arena_alloc(a, (size_t)(3 * n * row) * 2);        /* my q, k, v shards */
    og_bf16 *pack = og_arena_alloc(a, (size_t)(3 * n * row) * 2);
    og_bf16 *recv = og_arena_alloc(a, (size_t)(3 * Ls * hrow) * 2);
    og_bf16 *q = og_arena_alloc(a, (size_t)(Ls * hrow) * 2);
    og_bf16 *kv[2] = {og_arena_alloc(a, (size_t)(2 * maxb * hrow) * 2),
                      og_arena_alloc(a, (size_t)(2 * maxb * hrow) * 2)};
    float *out = og_arena_alloc(a, (size_t)(Ls * hrow) * 4), *lse = og_arena_alloc(a, (size_t)(Ls * hn[u]) * 4);
    float *tmp = og_arena_alloc(a, (size_t)(Ls * hrow) * 4), *tmp_lse = og_arena_alloc(a, (size_t)(Ls * hn[u]) * 4);
    float *back = og_arena_alloc(a, (size_t)(n * row) * 4), *mine = og_arena_alloc(a, (size_t)(n * row) * 4);
    float *gathered = og_arena_alloc(a, (size_t)(c->S * row) * 4);
    if (!gathered)
        RANK_TRY(OG_ERR_OOM);
    const float *src[3] = {c->q, c->k, c->v};
    for (int w = 0; w < 3; w++)
        RANK_TRY(og_cuda_upload(ctx, x + w * n * row, OG_BF16, src[w] + off[me] * row, OG_F32,
                                (size_t)(n * row)));

    /* Ulysses forward: to peer j go my tokens of its heads, [3, n, hn_j, D]. */
    size_t sc[MAXP], sd[MAXP], rc[MAXP], rd[MAXP], at = 0, rat = 0;
    for (int j = 0; j < U; j++) {
        sc[j] = (size_t)(3 * n * hn[j] * D) * 2, sd[j] = at, at += sc[j];
        rc[j] = (size_t)(3 * len[r * U + j] * hrow) * 2, rd[j] = rat, rat += rc[j];
        for (int w = 0; w < 3; w++)
            CU(cudaMemcpy2DAsync((char *)pack + sd[j] + (size_t)(w * n * hn[j] * D) * 2,
                                 (size_t)hn[j] * D * 2, x + w * n * row + (int64_t)h0[j] * D,
                                 (size_t)row * 2, (size_t)hn[j] * D * 2, (size_t)n,
                                 cudaMemcpyDeviceToDevice, s));
    }
    RANK_TRY(og_cuda_sync(ctx));
    RANK_TRY(og_comm_all_to_all_v(uly, pack, sc, sd, recv, rc, rd));
    /* Peer j's block holds shard r*U+j: its q, k, v land at its place in the super-shard. */
    for (int j = 0; j < U; j++) {
        int64_t lj = len[r * U + j], tj = off[r * U + j] - boff[r];
        const og_bf16 *b = (const og_bf16 *)((const char *)recv + rd[j]);
        CU(cudaMemcpyAsync(q + tj * hrow, b, (size_t)(lj * hrow) * 2, cudaMemcpyDeviceToDevice, s));
        CU(cudaMemcpyAsync(kv[0] + tj * hrow, b + lj * hrow, (size_t)(lj * hrow) * 2,
                           cudaMemcpyDeviceToDevice, s));
        CU(cudaMemcpyAsync(kv[0] + (Ls + tj) * hrow, b + 2 * lj * hrow, (size_t)(lj * hrow) * 2,
                           cudaMemcpyDeviceToDevice, s));
    }

    /* Ring over the super-shards: block blk is [2, blen[blk], hn, D] (K then V). */
    int cur = 0, blk = r;
    for (int step = 0; step < R; step++) {
        const int64_t bl = blen[blk];
        const int incoming = (blk + R - 1) % R;
        og_comm_req req;
        RANK_TRY(og_cuda_sync(ctx)); /* the receive buffer was read by the last step's kernels */
        if (step < R - 1)
            RANK_TRY(og_comm_sendrecv_start(ring, kv[cur], (size_t)(2 * bl * hrow) * 2,
                                            (r + 1) % R, kv[cur ^ 1],
                                            (size_t)(2 * blen[incoming] * hrow) * 2,
                                            (r + R - 1) % R, &req));
        og_attn_desc d = {.sq = Ls, .skv = bl, .heads = hn[u], .head_dim = D, .q_stride = hrow,
                          .k_stride = hrow, .v_stride = hrow, .o_stride = hrow,
                          .scale = 1.0f / sqrtf((float)D)};
        og_status ast = og_cuda_attention(ctx, &d, q, kv[cur], kv[cur] + bl * hrow,
                                          step == 0 ? out : tmp, OG_F32, step == 0 ? lse : tmp_lse);
        if (ast == OG_OK && step > 0)
            ast = og_cuda_lse_merge(ctx, out, lse, hrow, tmp, OG_F32, tmp_lse, hrow, Ls, hn[u], D);
        if (step < R - 1) {
            og_status wst = og_comm_sendrecv_wait(&req);
            if (ast == OG_OK)
                ast = wst;
        }
        RANK_TRY(ast);
        cur ^= 1;
        blk = incoming;
    }

    /* Ulysses reverse: peer j gets its tokens of my heads; I get my tokens of its heads. */
    at = rat = 0;
    for (int j = 0; j < U; j++) {
        int64_t lj = len[r * U + j];
        sc[j] = (size_t)(lj * hrow) * 4, sd[j] = (size_t)((off[r * U + j] - boff[r]) * hrow) * 4;
        rc[j] = (size_t)(n * hn[j] * D) * 4, rd[j] = rat, rat += rc[j];
    }
    RANK_TRY(og_cuda_sync(ctx));
    RANK_TRY(og_comm_all_to_all_v(uly, out, sc, sd, back, rc, rd));
    for (int j = 0; j < U; j++)
        CU(cudaMemcpy2DAsync(mine + (int64_t)h0[j] * D, (size_t)row * 4,
                             (const char *)back + rd[j], (size_t)hn[j] * D * 4,
                             (size_t)hn[j] * D * 4, (size_t)n, cudaMemcpyDeviceToDevice, s));

    /* Bytes: Ulysses q,k,v (bf16) out and o (f32) back to the U-1 peers; Ring R-1 K/V hops. */
    uint64_t ub = 0, rb = 0;
    for (int j = 0; j < U; j++)
        if (j != u)
            ub += (uint64_t)(3 * n * hn[j] * D) * 2 + (uint64_t)(len[r * U + j] * hrow) * 4;
    for (int step = 0, b = r; step < R - 1; step++, b = (b + R - 1) % R)
        rb += (uint64_t)(2 * blen[b] * hrow) * 2;
    if (uly->bytes_sent != ub || ring->bytes_sent != rb)
        RANK_TRY(og_fail(OG_ERR_INTERNAL, "U=%d R=%d rank %d sent %llu (Ulysses) + %llu (Ring) "
                         "bytes; the layout needs %llu + %llu", U, R, me,
                         (unsigned long long)uly->bytes_sent, (unsigned long long)ring->bytes_sent,
                         (unsigned long long)ub, (unsigned long long)rb));

    size_t gc[MAXP], gd[MAXP];
    for (int j = 0; j < P; j++)
        gc[j] = (size_t)(len[j] * row) * 4, gd[j] = (size_t)(off[j] * row) * 4;
    RANK_TRY(og_cuda_sync(ctx));
    RANK_TRY(og_comm_all_gather_v(world, mine, gc[me], gathered, gc, gd));
    full = malloc((size_t)(c->S * row) * sizeof *full);
    my_lse = malloc((size_t)(Ls * hn[u]) * sizeof *my_lse);
    RANK_TRY(og_cuda_download(ctx, full, gathered, OG_F32, (size_t)(c->S * row)));
    RANK_TRY(og_cuda_download(ctx, my_lse, lse, OG_F32, (size_t)(Ls * hn[u])));
    double e = og_test_rel_err_f(full, c->ref, (size_t)(c->S * row)), el = 0;
    for (int64_t t = 0; t < Ls; t++)
        for (int h = 0; h < hn[u]; h++) {
            double want = c->ref_lse[(boff[r] + t) * H + h0[u] + h];
            double d = fabs(my_lse[t * hn[u] + h] - want) / (1 + fabs(want));
            el = d > el || d != d ? d : el;
        }
    if (!(e < OG_BF16_TOL) || !(el < 1e-4))
        RANK_TRY(og_fail(OG_ERR_INTERNAL, "U=%d R=%d rank %d: out rel err %.3g, lse err %.3g", U,
                         R, me, e, el));
done:
    free(full);
    free(my_lse);
    og_cuda_free(ctx);
    og_comm_free(ring);
    og_comm_free(uly);
    return st;
}

/* All ranks share GPU 0 through the in-process communicator's device copy. */
static og_status one_gpu_rank(og_comm *world, void *arg) { return sp_layout(world, 0, arg); }

#ifdef OG_HAVE_NCCL
/* Rank r drives GPU r through NCCL, bootstrapped over the in-process host world. */
static og_status nccl_rank(og_comm *host, void *arg)
{
    og_comm *nccl;
    OG_TRY(og_comm_nccl_create(&nccl, host, host->rank));
    og_status st = sp_layout(nccl, host->rank, arg);
    og_comm_free(nccl);
    return st;
}
#endif

int main(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_cuda_sp", 64);
    if (!ctx)
        return OG_TEST_SKIP;
    og_test_rng rng = {31};
    int nccl_layouts = 0;
    /* (U, R): pure Ring, pure Ulysses (even and uneven heads), hybrids. */
    /* Every layout at head_dim 128 (the models'); the last, hybrid one also at 64. Each run
     * starts U*R contexts, so the list stays short. */
    const int layouts[][2] = {{1, 2}, {1, 3}, {1, 4}, {2, 1}, {4, 1}, {3, 1}, {4, 2}, {2, 3}, {2, 2}};
    const int nlayouts = sizeof layouts / sizeof layouts[0];
    const int dims[2] = {128, 64}, first[2] = {0, nlayouts - 1};
    struct og_inproc_copy copy;
    og_cuda_inproc_copy(0, &copy);
    for (int di = 0; di < 2; di++) {
        sp_case c = {.S = 301, .H = 6, .D = dims[di]};
        size_t n = (size_t)(c.S * c.H * c.D), nl = (size_t)(c.S * c.H);
        float *q = og_gpu_rand(&rng, n, 2.0f), *k = og_gpu_rand(&rng, n, 2.0f);
        float *v = og_gpu_rand(&rng, n, 1.0f);
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
        for (int i = first[di]; i < nlayouts; i++) {
            c.U = layouts[i][0], c.R = layouts[i][1];
            og_status s = og_run_ranks_copy(c.U * c.R, 1, &copy, one_gpu_rank, &c);
            CHECK(s == OG_OK, "one GPU, U=%d R=%d D=%d: %s", c.U, c.R, c.D, og_error_message());
#ifdef OG_HAVE_NCCL
            if (c.U * c.R <= og_cuda_device_count()) {
                s = og_run_ranks(c.U * c.R, 1, nccl_rank, &c);
                CHECK(s == OG_OK, "NCCL, U=%d R=%d D=%d: %s", c.U, c.R, c.D, og_error_message());
                nccl_layouts++;
            }
#endif
        }
        free(q), free(k), free(v), free(ref), free(ref_lse);
    }
    og_cuda_free(ctx);
    printf("test_cuda_sp: %d layout runs across GPUs through NCCL (layouts wider than the %d "
           "GPU(s) here run on one GPU only)\n", nccl_layouts, og_cuda_device_count());
    return og_test_finish("test_cuda_sp");
}
