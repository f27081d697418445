/* The MPI communicator passes the in-process checks: every operation with uneven sizes and its
 * byte counts, the launch collectives (node rank, status agreement), then SP attention (Ulysses, Ring, hybrid, UAA, joint text, CFG) against
 * single-rank attention with the expected bytes per rank. Run by ctest as mpiexec -np 4. */
#include <mpi.h>
#include <string.h>

#include "parallel/plan.h"

#include "test_parallel_checks.h"

static sp_result res;

#ifdef __SANITIZE_ADDRESS__
/* OpenMPI's components are dlopen'ed and leak at exit after being unloaded, so LeakSanitizer
 * cannot name (or suppress) them. Leaks in omnigen's own code are covered by the in-process
 * tests, which run the same code apart from comm_mpi.c. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_leaks=0"; }
#endif

/* SP attention on the first U*R*cfg ranks of the world (the rest sit this layout out). */
static void check_layout(og_comm *world, int U, int R, int cfg, const sp_data *data, int ndata)
{
    const int n = U * R * cfg;
    og_comm *sub = NULL;
    if (og_comm_split(world, world->rank < n ? 0 : -1, world->rank, &sub) != OG_OK) {
        sp_result_fail(&res, "split for U=%d R=%d: %s", U, R, og_error_message());
        return;
    }
    if (!sub)
        return;
    for (og_ulysses_mode m = OG_ULYSSES_STRICT; m <= OG_ULYSSES_ADVANCED_UAA; m++) {
        const og_parallel_config c = {.ulysses_degree = U, .ring_degree = R, .cfg_degree = cfg,
                                      .ulysses_mode = m};
        og_sp *sp;
        if (og_parallel_config_validate(&c, data[0].heads, 0, n) != OG_OK)
            continue;
        if (og_sp_create(&sp, &c, sub) != OG_OK) {
            sp_result_fail(&res, "og_sp_create U=%d R=%d: %s", U, R, og_error_message());
            continue;
        }
        for (int i = 0; i < ndata; i++)
            if (data[i].seq >= U * R)
                sp_check_attention(sp, &data[i], &res);
        og_sp_free(sp);
    }
    og_comm_free(sub);
}

/* The launch collectives over MPI: every process of this (one-node) run is on the same node,
 * and a status agreement hands every rank the lowest failing rank's status and message. */
static void check_launch_collectives(og_comm *world)
{
    int node_rank = -1, node_size = -1;
    if (og_comm_node_rank(world, &node_rank, &node_size) != OG_OK ||
        node_rank != world->rank || node_size != world->size)
        sp_result_fail(&res, "node rank %d of %d, expected %d of %d (%s)", node_rank, node_size,
                       world->rank, world->size, og_error_message());
    for (int failing = -1; failing < world->size; failing++) {
        og_status mine = failing >= 0 && (world->rank == failing || world->rank == failing + 2)
                             ? og_fail(OG_ERR_IO, "disk full on rank %d", world->rank)
                             : OG_OK;
        og_status st = og_comm_agree(world, mine);
        char want[64] = "";
        if (mine != OG_OK)
            snprintf(want, sizeof want, "disk full on rank %d", world->rank);
        else if (failing >= 0)
            snprintf(want, sizeof want, "rank %d: disk full on rank %d", failing, failing);
        if (st != (failing >= 0 ? OG_ERR_IO : OG_OK) ||
            (failing >= 0 && strcmp(og_error_message(), want) != 0))
            sp_result_fail(&res, "agreement with rank %d failing: %d '%s', expected '%s'", failing,
                           (int)st, og_error_message(), want);
    }
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    og_comm *world;
    if (og_comm_mpi_world(&world) != OG_OK) {
        fprintf(stderr, "%s\n", og_error_message());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    comm_check_ops(world, &res);
    check_launch_collectives(world);

    static const int heads[] = {3, 5, 8, 30};
    static const int64_t seqs[] = {5, 37, 64};
    static const int layouts[][3] = {{1, 1, 1}, {2, 1, 1}, {1, 2, 1}, {4, 1, 1}, {1, 4, 1},
                                     {2, 2, 1}, {3, 1, 1}, {2, 1, 2}, {1, 2, 2}};
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++) {
        sp_data data[6];
        for (int i = 0; i < 6; i++)
            if (sp_data_make(&data[i], heads[h], 8, seqs[i / 2], i % 2 ? 3 : 0, 100 * h + i))
                sp_result_fail(&res, "reference data");
        for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++)
            if (layouts[l][0] <= heads[h])
                check_layout(world, layouts[l][0], layouts[l][1], layouts[l][2], data, 6);
        for (int i = 0; i < 6; i++)
            sp_data_free(&data[i]);
    }

    int fails = res.fails, total = 0;
    if (fails)
        fprintf(stderr, "rank %d: %d failure(s), first: %s\n", world->rank, fails, res.msg);
    MPI_Allreduce(&fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (world->rank == 0)
        printf("test_parallel_mpi: %s (%d ranks, worst relative error %.3g on rank 0)\n",
               total ? "FAILED" : "all checks passed", world->size, res.worst);
    og_comm_free(world);
    MPI_Finalize();
    return total ? 1 : 0;
}
