/* How the ranks of a generation run and exchange: the launcher (threads of one process, or one
 * process per rank under MPI), the communicator the ranks use (in-process host or device copies,
 * MPI, NCCL), the GPU and CPU threads of each rank, and the collective status check that keeps the
 * processes of a multi-process world in step. The decisions are plain C so that CPU tests cover
 * every case; docs/parallelism.md ("Launching") describes the rules. */
#ifndef OG_PARALLEL_PLAN_H
#define OG_PARALLEL_PLAN_H

#include <stdbool.h>

#include "core/error.h"

typedef struct og_comm og_comm; /* parallel/comm.h */

/* ---- launcher ------------------------------------------------------------------------------- */

typedef enum { OG_LAUNCHER_AUTO = 0, OG_LAUNCHER_THREADS, OG_LAUNCHER_MPI } og_launcher;

/* "auto" / "threads" / "mpi"; OG_ERR_INVALID_ARG naming the valid values otherwise. */
og_status og_launcher_parse(const char *s, og_launcher *out);
const char *og_launcher_name(og_launcher l);
/* The process count an MPI launcher put in this process's environment (OMPI_COMM_WORLD_SIZE of
 * OpenMPI, PMI_SIZE of MPICH and Intel MPI); 0 when there is none. */
int og_launcher_env_size(void);
/* The launcher to use: auto is mpi when env_size > 1 (started by mpiexec with several
 * processes), threads otherwise. mpi (asked, or found by auto) in a build without MPI fails with
 * OG_ERR_UNSUPPORTED naming the fix. */
og_status og_launcher_resolve(og_launcher asked, int env_size, bool have_mpi, og_launcher *out);

/* ---- rank plan ------------------------------------------------------------------------------ */

typedef enum {
    OG_EXCHANGE_INPROC = 0,    /* threads of one process, host memcpy (CPU ranks) */
    OG_EXCHANGE_INPROC_DEVICE, /* threads of one process, device copies (GPU ranks sharing GPUs) */
    OG_EXCHANGE_MPI,           /* one process per rank, MPI (CPU ranks) */
    OG_EXCHANGE_NCCL           /* one GPU per rank: threads or processes, NCCL */
} og_exchange;

const char *og_exchange_name(og_exchange e);

typedef struct {
    int ranks;          /* cfg x ring x ulysses */
    int processes;      /* processes of the launch; 1 = the ranks are threads of this process */
    int node_processes; /* processes of the launch on this node (1 without MPI) */
    int gpus;           /* GPUs this process may use (--devices, else all visible); 0 = CPU */
    bool gpu_shared;    /* one process per rank: another process of the node has this one's GPU */
    bool have_nccl;     /* built with NCCL */
    int threads;        /* --threads: CPU threads of this process, <= 0 = its share of the cores */
    int cores;          /* cores of this node */
} og_rank_plan_in;

typedef struct {
    og_exchange exchange;
    int local_ranks;      /* ranks this process runs (as threads) */
    int threads_per_rank; /* CPU threads of each of them, >= 1 */
} og_rank_plan;

/* Threads of one process: CPU -> in-process; GPUs -> NCCL when every rank has a GPU of its own
 * (ranks <= gpus, ranks > 1, NCCL built), device copies otherwise (NCCL refuses two ranks on one
 * GPU). Several processes: their count must equal the ranks (one rank each); CPU -> MPI; GPUs ->
 * NCCL, which needs NCCL built and a GPU per process (no gpu_shared).
 * Threads: --threads split over the local ranks, else the node's cores over every rank of the
 * node. Impossible plans fail with OG_ERR_PARALLEL or OG_ERR_UNSUPPORTED naming the fix. */
og_status og_rank_plan_make(const og_rank_plan_in *in, og_rank_plan *out);
/* Index into this process's GPU list for a rank: world_rank % gpus for threads of one process;
 * node_rank % gpus (this process's place on its node) for one process per rank. */
int og_rank_plan_gpu(const og_rank_plan_in *in, int world_rank, int node_rank);

/* ---- collectives over a host communicator --------------------------------------------------- */

/* This rank's place among the ranks on the same node (same host name) and their count. */
og_status og_comm_node_rank(og_comm *c, int *node_rank, int *node_size);
/* Whether another rank on this node passed the same key (e.g. the PCI bus id of its GPU). */
og_status og_comm_node_key_shared(og_comm *c, const char *key, bool *shared);
/* Every rank passes its own status (its message in og_error_message()). Returns OG_OK on every
 * rank when all passed OG_OK; otherwise a failing rank keeps its status and message, and every
 * other rank gets the lowest failing rank's ("rank 2: <its message>"). Ranks that may diverge call it before the
 * next collective, so one rank's failure never leaves the others waiting. */
og_status og_comm_agree(og_comm *c, og_status st);

#endif
