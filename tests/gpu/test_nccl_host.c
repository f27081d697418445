/* The NCCL communicator with host buffers, as the pipeline uses it: one thread and GPU per rank
 * (1 rank on a one-GPU machine, up to 4), the NCCL world bootstrapped over the in-process host
 * world. Send/receive around a ring with pageable host buffers, with a device send buffer and a
 * host receive buffer, all-gather-v of uneven host blocks (separate and in place), each checked
 * value by value against what the sending rank wrote, and bytes_sent against the payload sent to
 * other ranks; with two GPUs also the CFG exchange of host velocities (og_sp_cfg_exchange), the
 * pipeline's own call. Skipped (77) without a GPU or NCCL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "core/cuda/cuda_backend.h"
#include "parallel/comm.h"
#include "parallel/sp.h"
#include "testutil.h"

#ifdef OG_HAVE_NCCL
#define MAXP 4

/* The value rank r writes at index i of its block: exact in f32. */
static float value(int r, size_t i) { return (float)(r * 100000 + (int)i); }

static size_t block(int r) { return 1000 + 37 * (size_t)r; }

static float *host_block(int r)
{
    float *x = malloc(block(r) * sizeof *x);
    for (size_t i = 0; x && i < block(r); i++)
        x[i] = value(r, i);
    return x;
}

/* Counts the values of rank src's block that differ in x. */
static int wrong(const float *x, int src)
{
    int bad = 0;
    for (size_t i = 0; i < block(src); i++)
        bad += x[i] != value(src, i);
    return bad;
}

#define RANK_CHECK(cond, ...)                                                            \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            st = og_fail(OG_ERR_INTERNAL, __VA_ARGS__);                                  \
            goto done;                                                                   \
        }                                                                                \
    } while (0)
#define RANK_TRY(expr)         \
    do {                       \
        st = (expr);           \
        if (st != OG_OK)       \
            goto done;         \
    } while (0)

static og_status host_rank(og_comm *host, void *arg)
{
    (void)arg;
    const int P = host->size, r = host->rank, dst = (r + 1) % P, src = (r + P - 1) % P;
    og_comm *c = NULL;
    float *mine = host_block(r), *got = malloc(block(src) * sizeof *got), *dev = NULL;
    float *all = NULL;
    og_status st = OG_OK;
    RANK_CHECK(mine && got, "rank %d: out of memory", r);
    RANK_TRY(og_comm_nccl_create(&c, host, r));
    uint64_t expect = 0;

    /* 1. ring send/receive, both buffers pageable host memory */
    memset(got, 0, block(src) * sizeof *got);
    RANK_TRY(og_comm_sendrecv(c, mine, block(r) * 4, dst, got, block(src) * 4, src));
    RANK_CHECK(wrong(got, src) == 0, "rank %d: host send/receive: %d values wrong", r,
               wrong(got, src));
    expect += dst != r ? block(r) * 4 : 0;

    /* 2. device send buffer, host receive buffer */
    RANK_CHECK(cudaMalloc((void **)&dev, block(r) * 4) == cudaSuccess, "cudaMalloc");
    RANK_CHECK(cudaMemcpy(dev, mine, block(r) * 4, cudaMemcpyHostToDevice) == cudaSuccess,
               "upload");
    memset(got, 0, block(src) * sizeof *got);
    RANK_TRY(og_comm_sendrecv(c, dev, block(r) * 4, dst, got, block(src) * 4, src));
    RANK_CHECK(wrong(got, src) == 0, "rank %d: device-to-host send/receive: %d values wrong", r,
               wrong(got, src));
    expect += dst != r ? block(r) * 4 : 0;

    /* 3. all-gather-v of uneven host blocks, from a separate buffer and in place */
    size_t counts[MAXP], displs[MAXP], total = 0;
    for (int j = 0; j < P; j++) {
        counts[j] = block(j) * 4;
        displs[j] = total;
        total += counts[j];
    }
    all = malloc(total);
    RANK_CHECK(all, "rank %d: out of memory", r);
    for (int in_place = 0; in_place < 2; in_place++) {
        memset(all, 0, total);
        if (in_place)
            memcpy((char *)all + displs[r], mine, counts[r]);
        const void *send = in_place ? (const void *)((char *)all + displs[r]) : mine;
        RANK_TRY(og_comm_all_gather_v(c, send, counts[r], all, counts, displs));
        for (int j = 0; j < P; j++)
            RANK_CHECK(wrong((const float *)((const char *)all + displs[j]), j) == 0,
                       "rank %d: all-gather-v (in place %d): rank %d's block wrong", r,
                       in_place, j);
        expect += (uint64_t)(P - 1) * counts[r];
    }
    RANK_CHECK(c->bytes_sent == expect, "rank %d: bytes_sent %llu, expected %llu", r,
               (unsigned long long)c->bytes_sent, (unsigned long long)expect);

    /* 4. the pipeline's CFG exchange of host velocities (two ranks: one per branch) */
    if (P == 2) {
        const og_parallel_config cfg = {.ulysses_degree = 1, .ring_degree = 1, .cfg_degree = 2,
                                        .ulysses_mode = OG_ULYSSES_STRICT};
        og_sp *sp;
        RANK_TRY(og_sp_create(&sp, &cfg, c));
        float *other = calloc(block(1 - r), sizeof *other);
        /* The branches exchange equal sizes: both send block(0) values. */
        st = other ? og_sp_cfg_exchange(sp, mine, other, (int64_t)block(0))
                   : og_fail(OG_ERR_OOM, "out of memory");
        int bad = 0;
        for (size_t i = 0; st == OG_OK && i < block(0); i++)
            bad += other[i] != value(1 - r, i);
        free(other);
        og_sp_free(sp);
        RANK_TRY(st);
        RANK_CHECK(bad == 0, "rank %d: CFG exchange: %d values wrong", r, bad);
    }
done:
    cudaFree(dev);
    free(all);
    free(mine);
    free(got);
    og_comm_free(c);
    return st;
}
#endif

int main(void)
{
    const int gpus = og_cuda_device_count();
    if (gpus == 0) {
        printf("test_nccl_host: SKIPPED: no CUDA device\n");
        return OG_TEST_SKIP;
    }
#ifdef OG_HAVE_NCCL
    for (int P = 1; P <= (gpus < MAXP ? gpus : MAXP); P++) {
        og_status st = og_run_ranks(P, 1, host_rank, NULL);
        CHECK(st == OG_OK, "%d ranks: %s", P, og_error_message());
    }
    printf("test_nccl_host: ran 1 to %d ranks (one GPU each)\n", gpus < MAXP ? gpus : MAXP);
    return og_test_finish("test_nccl_host");
#else
    printf("test_nccl_host: SKIPPED: built without NCCL\n");
    return OG_TEST_SKIP;
#endif
}
