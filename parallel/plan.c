/* The launcher and rank-plan decisions (see plan.h), and the two host collectives a
 * multi-process world needs outside attention: the node rank and the status agreement. */
#include "parallel/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parallel/comm.h"

og_status og_launcher_parse(const char *s, og_launcher *out)
{
    static const char *names[] = {"auto", "threads", "mpi"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (og_launcher)i;
            return OG_OK;
        }
    return og_fail(OG_ERR_INVALID_ARG, "unknown launcher '%s' (expected auto, threads or mpi)", s);
}

const char *og_launcher_name(og_launcher l)
{
    return l == OG_LAUNCHER_MPI ? "mpi" : l == OG_LAUNCHER_THREADS ? "threads" : "auto";
}

int og_launcher_env_size(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        char *end;
        long n = v ? strtol(v, &end, 10) : 0;
        if (v && *v && !*end && n > 0 && n <= 1 << 20)
            return (int)n;
    }
    return 0;
}

og_status og_launcher_resolve(og_launcher asked, int env_size, bool have_mpi, og_launcher *out)
{
    *out = asked == OG_LAUNCHER_AUTO ? (env_size > 1 ? OG_LAUNCHER_MPI : OG_LAUNCHER_THREADS)
                                     : asked;
    if (*out == OG_LAUNCHER_MPI && !have_mpi) {
        if (asked == OG_LAUNCHER_AUTO)
            return og_fail(OG_ERR_UNSUPPORTED, "started by an MPI launcher with %d processes, "
                           "but this omnigen was built without MPI: rebuild with OpenMPI "
                           "installed, or start one process (its ranks run as threads)",
                           env_size);
        return og_fail(OG_ERR_UNSUPPORTED, "--launcher mpi: this omnigen was built without MPI "
                       "(rebuild with OpenMPI installed, or use --launcher threads)");
    }
    return OG_OK;
}

const char *og_exchange_name(og_exchange e)
{
    static const char *names[] = {"in-process", "in-process device copies", "mpi", "nccl"};
    return names[e];
}

og_status og_rank_plan_make(const og_rank_plan_in *in, og_rank_plan *out)
{
    *out = (og_rank_plan){0};
    if (in->ranks < 1 || in->processes < 1 || in->node_processes < 1 || in->gpus < 0)
        return og_fail(OG_ERR_INVALID_ARG, "rank plan: %d ranks, %d processes (%d on this node), "
                       "%d GPUs", in->ranks, in->processes, in->node_processes, in->gpus);
    if (in->processes == 1) {
        out->local_ranks = in->ranks;
        out->exchange = in->gpus == 0 ? OG_EXCHANGE_INPROC
                        : in->ranks > 1 && in->ranks <= in->gpus && in->have_nccl
                            ? OG_EXCHANGE_NCCL
                            : OG_EXCHANGE_INPROC_DEVICE;
    } else {
        if (in->processes != in->ranks)
            return og_fail(OG_ERR_PARALLEL, "the layout needs cfg_degree x ring_degree x "
                           "ulysses_degree = %d ranks but the MPI launcher started %d processes "
                           "(one rank each): start mpiexec -np %d, or choose degrees whose "
                           "product is %d", in->ranks, in->processes, in->ranks, in->processes);
        out->local_ranks = 1;
        if (in->gpus == 0) {
            out->exchange = OG_EXCHANGE_MPI;
        } else if (!in->have_nccl) {
            return og_fail(OG_ERR_UNSUPPORTED, "GPU ranks in separate processes exchange through "
                           "NCCL, and this omnigen was built without it: rebuild with NCCL "
                           "installed, or run the ranks as threads of one process");
        } else if (in->gpu_shared) {
            return og_fail(OG_ERR_PARALLEL, "%d processes on this node would share its GPUs (%d "
                           "visible to each), but NCCL needs a GPU per rank: start at most one "
                           "process per GPU (mpiexec --map-by ppr:%d:node), or run the ranks as "
                           "threads of one process", in->node_processes, in->gpus, in->gpus);
        } else {
            out->exchange = OG_EXCHANGE_NCCL;
        }
    }
    int per_node = out->local_ranks * in->node_processes;
    int t = in->threads > 0 ? in->threads / out->local_ranks : in->cores / per_node;
    out->threads_per_rank = t > 0 ? t : 1;
    return OG_OK;
}

int og_rank_plan_gpu(const og_rank_plan_in *in, int world_rank, int node_rank)
{
    if (in->gpus <= 0)
        return -1;
    return (in->processes == 1 ? world_rank : node_rank) % in->gpus;
}

/* ---- host collectives ------------------------------------------------------------------------ */

enum { HOST_BYTES = 256, NOTE_BYTES = 512 };

/* Gathers one fixed-size block per rank (host memory). */
static og_status gather_blocks(og_comm *c, const void *mine, size_t bytes, char **all)
{
    *all = malloc((size_t)c->size * bytes);
    size_t *counts = malloc(2 * (size_t)c->size * sizeof *counts);
    if (!*all || !counts) {
        free(*all);
        free(counts);
        *all = NULL;
        return og_fail(OG_ERR_OOM, "cannot allocate %d ranks' blocks", c->size);
    }
    for (int j = 0; j < c->size; j++) {
        counts[j] = bytes;
        counts[c->size + j] = (size_t)j * bytes;
    }
    og_status st = og_comm_all_gather_v(c, mine, bytes, *all, counts, counts + c->size);
    free(counts);
    if (st != OG_OK) {
        free(*all);
        *all = NULL;
    }
    return st;
}

/* Gathers "host name|key" from every rank; counts the ranks with this rank's host name (and
 * those of them before it) and whether another has the same key too. */
static og_status node_gather(og_comm *c, const char *key, int *node_rank, int *node_size,
                             bool *same_key)
{
    char mine[2 * HOST_BYTES] = {0};
    if (gethostname(mine, HOST_BYTES - 1) != 0)
        snprintf(mine, HOST_BYTES, "?");
    const size_t host_len = strlen(mine);
    snprintf(mine + host_len, sizeof mine - host_len - 1, "|%s", key);
    char *all;
    OG_TRY(gather_blocks(c, mine, sizeof mine, &all));
    *node_rank = *node_size = 0;
    *same_key = false;
    for (int j = 0; j < c->size; j++) {
        const char *other = all + (size_t)j * sizeof mine;
        if (strncmp(other, mine, host_len) != 0 || other[host_len] != '|')
            continue;
        *node_rank += j < c->rank;
        (*node_size)++;
        *same_key |= j != c->rank && strncmp(other, mine, sizeof mine) == 0;
    }
    free(all);
    return OG_OK;
}

og_status og_comm_node_rank(og_comm *c, int *node_rank, int *node_size)
{
    bool same;
    return node_gather(c, "", node_rank, node_size, &same);
}

og_status og_comm_node_key_shared(og_comm *c, const char *key, bool *shared)
{
    int node_rank, node_size;
    return node_gather(c, key, &node_rank, &node_size, shared);
}

typedef struct {
    int status;
    char message[NOTE_BYTES - sizeof(int)];
} status_note;

og_status og_comm_agree(og_comm *c, og_status st)
{
    status_note mine = {.status = st};
    if (st != OG_OK)
        snprintf(mine.message, sizeof mine.message, "%s", og_error_message());
    char *all;
    og_status gathered = gather_blocks(c, &mine, sizeof mine, &all);
    if (st != OG_OK) {
        /* Keep this rank's own message, whatever the gather did. */
        free(all);
        return og_fail(st, "%s", mine.message);
    }
    OG_TRY(gathered);
    og_status out = OG_OK;
    for (int j = 0; j < c->size && out == OG_OK; j++) {
        status_note n;
        memcpy(&n, all + (size_t)j * sizeof n, sizeof n);
        n.message[sizeof n.message - 1] = '\0';
        if (n.status != OG_OK)
            out = og_fail((og_status)n.status, "rank %d: %s", j, n.message);
    }
    free(all);
    return out;
}
