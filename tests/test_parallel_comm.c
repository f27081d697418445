/* The in-process communicator: every operation on worlds of 1..8 ranks with uneven sizes and the
 * byte counts each adds (the checks the MPI test runs too), a custom copy hook, mismatched
 * sizes refused on both sides, and a failing rank that makes its peers return instead of hang. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "test_parallel_checks.h"

static sp_result results[8];

static og_status ops_rank(og_comm *world, void *arg)
{
    comm_check_ops(world, &results[world->rank]);
    return OG_OK;
}

static atomic_int hook_calls;

static og_status counting_copy(void *dst, const void *src, size_t bytes, void *user)
{
    atomic_fetch_add(&hook_calls, 1);
    memcpy(dst, src, bytes);
    return OG_OK;
}

/* Rank 0 sends 8 bytes to rank 1, which expects 9: both must fail, neither hang. */
static og_status mismatch_rank(og_comm *world, void *arg)
{
    og_status *out = arg;
    char buf[16] = {0};
    const int peer = 1 - world->rank;
    out[world->rank] = og_comm_sendrecv(world, buf, 8, peer, buf + 8, world->rank == 0 ? 8 : 9,
                                        peer);
    return OG_OK;
}

/* Rank 2 fails at once; the others are in a barrier, a send-receive with it, or a split. */
static og_status abort_rank(og_comm *world, void *arg)
{
    og_status *out = arg;
    og_status st;
    char buf[4] = {0};
    og_comm *sub = NULL;
    switch (world->rank) {
    case 2:
        usleep(20000);
        return og_fail(OG_ERR_INVALID_ARG, "rank 2 gives up");
    case 1:
        st = og_comm_sendrecv(world, buf, 4, 2, buf, 4, 2);
        break;
    case 3:
        st = og_comm_split(world, 0, 0, &sub);
        break;
    default:
        st = og_comm_barrier(world);
    }
    og_comm_free(sub);
    out[world->rank] = st;
    return st;
}

int main(void)
{
    alarm(60); /* a hang is a failure */
    for (int P = 1; P <= 8; P++) {
        memset(results, 0, sizeof results);
        CHECK_OK(og_run_ranks(P, 1, ops_rank, NULL));
        for (int r = 0; r < P; r++)
            CHECK(results[r].fails == 0, "P=%d rank %d: %d failure(s), first: %s", P, r,
                  results[r].fails, results[r].msg);
    }

    const og_inproc_copy hook = {.mem = OG_MEM_HOST, .copy = counting_copy};
    memset(results, 0, sizeof results);
    CHECK_OK(og_run_ranks_copy(3, 1, &hook, ops_rank, NULL));
    CHECK(results[0].fails + results[1].fails + results[2].fails == 0, "with a copy hook: %s%s%s",
          results[0].msg, results[1].msg, results[2].msg);
    CHECK(atomic_load(&hook_calls) > 0, "the copy hook was never called");

    og_status st2[2] = {OG_OK, OG_OK};
    CHECK_OK(og_run_ranks(2, 1, mismatch_rank, st2));
    CHECK(st2[0] == OG_ERR_COMM && st2[1] == OG_ERR_COMM, "mismatch gave %s / %s",
          og_status_name(st2[0]), og_status_name(st2[1]));

    og_status st4[4] = {OG_OK, OG_OK, OG_OK, OG_OK};
    og_status st = og_run_ranks(4, 1, abort_rank, st4);
    CHECK(st == OG_ERR_INVALID_ARG, "run returned %s", og_status_name(st));
    CHECK(strcmp(og_error_message(), "rank 2 gives up") == 0, "message: %s", og_error_message());
    for (int r = 0; r < 4; r++)
        if (r != 2)
            CHECK(st4[r] == OG_ERR_COMM, "rank %d returned %s", r, og_status_name(st4[r]));
    return og_test_finish("test_parallel_comm");
}
