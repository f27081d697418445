/* The launch decisions of parallel/plan.h: the launcher for each (flag, environment, build), the
 * communicator, threads and GPU of every rank for (ranks, processes, node processes, GPUs, NCCL),
 * the refusals word for word, and the host collectives (node rank, shared GPU keys, status
 * agreement) over in-process ranks, one of them failing. Expected values are written out by hand from the rules
 * in docs/parallelism.md ("Launching"), not computed by the code under test. */
#include <stdlib.h>
#include <string.h>

#include "parallel/comm.h"
#include "parallel/plan.h"
#include "parallel/sp.h"
#include "testutil.h"

static void check_launcher(void)
{
    og_launcher l;
    CHECK_OK(og_launcher_parse("mpi", &l));
    CHECK(l == OG_LAUNCHER_MPI, "%d", l);
    CHECK_OK(og_launcher_parse("threads", &l));
    CHECK(l == OG_LAUNCHER_THREADS, "%d", l);
    CHECK(og_launcher_parse("slurm", &l) == OG_ERR_INVALID_ARG, "slurm accepted");
    CHECK(strcmp(og_error_message(), "unknown launcher 'slurm' (expected auto, threads or mpi)") ==
              0, "%s", og_error_message());

    static const struct {
        og_launcher asked;
        int env;
        bool have_mpi;
        og_status st;
        og_launcher want;
    } cases[] = {
        {OG_LAUNCHER_AUTO, 0, true, OG_OK, OG_LAUNCHER_THREADS},
        {OG_LAUNCHER_AUTO, 1, true, OG_OK, OG_LAUNCHER_THREADS}, /* mpiexec -np 1 */
        {OG_LAUNCHER_AUTO, 4, true, OG_OK, OG_LAUNCHER_MPI},
        {OG_LAUNCHER_AUTO, 4, false, OG_ERR_UNSUPPORTED, OG_LAUNCHER_MPI},
        {OG_LAUNCHER_AUTO, 0, false, OG_OK, OG_LAUNCHER_THREADS},
        {OG_LAUNCHER_THREADS, 4, true, OG_OK, OG_LAUNCHER_THREADS},
        {OG_LAUNCHER_MPI, 0, true, OG_OK, OG_LAUNCHER_MPI},
        {OG_LAUNCHER_MPI, 4, false, OG_ERR_UNSUPPORTED, OG_LAUNCHER_MPI},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        og_status st = og_launcher_resolve(cases[i].asked, cases[i].env, cases[i].have_mpi, &l);
        CHECK(st == cases[i].st && (st != OG_OK || l == cases[i].want),
              "case %zu: status %s launcher %s", i, og_status_name(st), og_launcher_name(l));
    }
    og_launcher_resolve(OG_LAUNCHER_AUTO, 4, false, &l);
    CHECK(strcmp(og_error_message(), "started by an MPI launcher with 4 processes, but this "
                 "omnigen was built without MPI: rebuild with OpenMPI installed, or start one "
                 "process (its ranks run as threads)") == 0, "%s", og_error_message());

    setenv("OMPI_COMM_WORLD_SIZE", "6", 1);
    CHECK(og_launcher_env_size() == 6, "%d", og_launcher_env_size());
    setenv("OMPI_COMM_WORLD_SIZE", "x", 1);
    setenv("PMI_SIZE", "3", 1);
    CHECK(og_launcher_env_size() == 3, "%d", og_launcher_env_size());
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    CHECK(og_launcher_env_size() == 0, "%d", og_launcher_env_size());
}

typedef struct {
    int ranks, processes, node_processes, gpus;
    bool shared, nccl;
    int threads, cores;
    og_status st;
    og_exchange exchange;
    int local_ranks, threads_per_rank;
} plan_case;

static void check_plans(void)
{
    const og_exchange IN = OG_EXCHANGE_INPROC, DEV = OG_EXCHANGE_INPROC_DEVICE,
                      MPI = OG_EXCHANGE_MPI, NCCL = OG_EXCHANGE_NCCL;
    static const og_status P = OG_ERR_PARALLEL, U = OG_ERR_UNSUPPORTED;
    const plan_case cases[] = {
        /* threads of one process, CPU */
        {1, 1, 1, 0, false, true, 0, 16, OG_OK, IN, 1, 16},
        {4, 1, 1, 0, false, true, 0, 16, OG_OK, IN, 4, 4},
        {4, 1, 1, 0, false, true, 6, 16, OG_OK, IN, 4, 1},
        {8, 1, 1, 0, false, true, 0, 2, OG_OK, IN, 8, 1},
        /* threads of one process, GPUs */
        {4, 1, 1, 4, false, true, 0, 16, OG_OK, NCCL, 4, 4},
        {4, 1, 1, 8, false, true, 0, 16, OG_OK, NCCL, 4, 4},
        {4, 1, 1, 2, false, true, 0, 16, OG_OK, DEV, 4, 4},  /* two ranks per GPU */
        {4, 1, 1, 4, false, false, 0, 16, OG_OK, DEV, 4, 4}, /* no NCCL */
        {1, 1, 1, 1, false, true, 0, 16, OG_OK, DEV, 1, 16}, /* one rank: nothing to exchange */
        /* one process per rank, CPU */
        {4, 4, 4, 0, false, true, 0, 16, OG_OK, MPI, 1, 4},
        {4, 4, 2, 0, false, false, 0, 16, OG_OK, MPI, 1, 8}, /* two nodes */
        {4, 4, 4, 0, false, true, 3, 2, OG_OK, MPI, 1, 3},   /* --threads is per process */
        {4, 4, 4, 0, false, true, 0, 2, OG_OK, MPI, 1, 1},
        {4, 3, 3, 0, false, true, 0, 16, P, IN, 0, 0},
        {2, 4, 4, 0, false, true, 0, 16, P, IN, 0, 0},
        /* one process per rank, GPUs */
        {8, 8, 4, 4, false, true, 0, 64, OG_OK, NCCL, 1, 16},
        {8, 8, 8, 4, true, true, 0, 64, P, IN, 0, 0}, /* 8 processes on a node of 4 GPUs */
        {8, 8, 4, 1, false, true, 0, 64, OG_OK, NCCL, 1, 16}, /* CUDA_VISIBLE_DEVICES each */
        {4, 4, 4, 4, false, false, 0, 64, U, IN, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const plan_case *c = &cases[i];
        og_rank_plan_in in = {.ranks = c->ranks, .processes = c->processes,
                              .node_processes = c->node_processes, .gpus = c->gpus,
                              .gpu_shared = c->shared, .have_nccl = c->nccl, .threads = c->threads, .cores = c->cores};
        og_rank_plan plan;
        og_status st = og_rank_plan_make(&in, &plan);
        CHECK(st == c->st, "case %zu: status %s (%s)", i, og_status_name(st), og_error_message());
        if (st != OG_OK || c->st != OG_OK)
            continue;
        CHECK(plan.exchange == c->exchange && plan.local_ranks == c->local_ranks &&
                  plan.threads_per_rank == c->threads_per_rank,
              "case %zu: %s, %d local ranks, %d threads each; want %s, %d, %d", i,
              og_exchange_name(plan.exchange), plan.local_ranks, plan.threads_per_rank,
              og_exchange_name(c->exchange), c->local_ranks, c->threads_per_rank);
    }

    og_rank_plan plan;
    og_rank_plan_in in = {.ranks = 4, .processes = 3, .node_processes = 3, .cores = 2};
    og_rank_plan_make(&in, &plan);
    CHECK(strcmp(og_error_message(), "the layout needs cfg_degree x ring_degree x ulysses_degree "
                 "= 4 ranks but the MPI launcher started 3 processes (one rank each): start "
                 "mpiexec -np 4, or choose degrees whose product is 3") == 0,
          "%s", og_error_message());
    in = (og_rank_plan_in){.ranks = 8, .processes = 8, .node_processes = 8, .gpus = 4,
                           .gpu_shared = true, .have_nccl = true, .cores = 2};
    og_rank_plan_make(&in, &plan);
    CHECK(strcmp(og_error_message(), "8 processes on this node would share its GPUs (4 visible "
                 "to each), but NCCL needs a GPU per rank: start at most one process per GPU "
                 "(mpiexec --map-by ppr:4:node), or run the ranks as threads of one process") == 0,
          "%s", og_error_message());

    /* GPUs: threads take world rank % GPUs; processes their place on the node % GPUs. */
    in = (og_rank_plan_in){.ranks = 4, .processes = 1, .node_processes = 1, .gpus = 2};
    CHECK(og_rank_plan_gpu(&in, 3, 0) == 1 && og_rank_plan_gpu(&in, 2, 0) == 0, "threads");
    in = (og_rank_plan_in){.ranks = 8, .processes = 8, .node_processes = 4, .gpus = 4};
    CHECK(og_rank_plan_gpu(&in, 5, 1) == 1 && og_rank_plan_gpu(&in, 7, 3) == 3, "processes");
    in.gpus = 0;
    CHECK(og_rank_plan_gpu(&in, 5, 1) == -1, "cpu");
}

/* ---- collectives over in-process ranks -------------------------------------------------------- */

typedef struct {
    int failing; /* the rank that fails before agreeing; -1 none */
    int node_rank[8], node_size[8];
    bool shared[8];
    og_status agreed[8];
    char message[8][256];
} agree_job;

static og_status agree_rank(og_comm *world, void *arg)
{
    agree_job *j = arg;
    const int r = world->rank;
    OG_TRY(og_comm_node_rank(world, &j->node_rank[r], &j->node_size[r]));
    char key[16]; /* ranks 0 and 2 name the same GPU */
    snprintf(key, sizeof key, "gpu%d", r % 2 ? r : 0);
    OG_TRY(og_comm_node_key_shared(world, key, &j->shared[r]));
    og_status mine = r == j->failing ? og_fail(OG_ERR_IO, "cannot open x.png") : OG_OK;
    j->agreed[r] = og_comm_agree(world, mine);
    snprintf(j->message[r], sizeof j->message[r], "%s", og_error_message());
    /* A second agreement after a failed one still matches up. */
    return og_comm_agree(world, OG_OK);
}

static void check_collectives(void)
{
    for (int size = 1; size <= 5; size += 2)
        for (int failing = -1; failing < size; failing++) {
            agree_job j = {.failing = failing};
            CHECK_OK(og_run_ranks(size, 1, agree_rank, &j));
            for (int r = 0; r < size; r++) {
                CHECK(j.node_rank[r] == r && j.node_size[r] == size,
                      "size %d rank %d: node rank %d of %d", size, r, j.node_rank[r],
                      j.node_size[r]);
                CHECK(j.shared[r] == (size > 2 && r % 2 == 0), "size %d rank %d: shared %d", size,
                      r, j.shared[r]);
                if (failing < 0) {
                    CHECK(j.agreed[r] == OG_OK, "size %d rank %d: %s", size, r, j.message[r]);
                    continue;
                }
                char want[256];
                snprintf(want, sizeof want, r == failing ? "cannot open x.png"
                                                         : "rank %d: cannot open x.png", failing);
                CHECK(j.agreed[r] == OG_ERR_IO && strcmp(j.message[r], want) == 0,
                      "size %d failing %d rank %d: %s: %s", size, failing, r,
                      og_status_name(j.agreed[r]), j.message[r]);
            }
        }
}

int main(void)
{
    check_launcher();
    check_plans();
    check_collectives();
    return og_test_finish("test_parallel_plan");
}
