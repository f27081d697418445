/* Communicators: one C interface (a function table) over three transports. In-process (ranks are
 * threads of one process; the default, and what CI runs), MPI (CPU ranks across processes, and
 * the bootstrap that hands NCCL its unique id) and NCCL (one GPU per rank). Another backend plugs
 * in from outside by filling an og_comm_ops table; see docs/parallelism.md.
 *
 * Conventions
 *   - Counts and displacements are in BYTES, so one interface serves f32 on the CPU and bf16 on a
 *     GPU alike. Buffers are plain pointers of the communicator's memory kind (`og_comm.mem`):
 *     host memory for in-process and MPI, device memory for NCCL.
 *   - Every operation is collective over the communicator (all ranks call it, in the same order),
 *     except the paired send/receive, which only the two peers of each pair join.
 *   - Every call returns a status. In-process, a rank that fails aborts the world, so its peers
 *     fail instead of waiting forever. Across processes the callers agree on their statuses where
 *     they can diverge (og_comm_agree, parallel/plan.h), and a rank that fails where its peers may
 *     wait inside a collective ends the job (og_comm_abort: MPI_Abort).
 *   - bytes_sent counts the payload this rank delivers to OTHER ranks' buffers (copies to itself
 *     are free): all-to-all-v sum of send counts to peers; all-gather-v (size-1) x own block;
 *     send/receive the send size when the peer is another rank; broadcast (size-1) x bytes at the
 *     root, 0 elsewhere; all-reduce (size-1) x bytes; barrier and split 0. */
#ifndef OG_COMM_H
#define OG_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct og_comm og_comm;

/* Where a communicator's buffers live. */
typedef enum { OG_MEM_HOST = 0, OG_MEM_DEVICE } og_mem_kind;

/* A started paired send/receive. Caller-owned storage (a local variable is fine); the backend
 * keeps its state in `state`. At most one may be outstanding per communicator and rank. */
typedef struct {
    og_comm *comm;
    uint64_t state[8];
} og_comm_req;

typedef struct {
    const char *name; /* "inproc", "mpi", "nccl", ... */
    /* Rank r sends send_counts[j] bytes from send + send_displs[j] to rank j, and receives
     * recv_counts[j] bytes from rank j into recv + recv_displs[j]. recv_counts[j] must equal rank
     * j's send_counts[r]. Send and receive regions must not overlap. */
    og_status (*all_to_all_v)(og_comm *c, const void *send, const size_t *send_counts,
                              const size_t *send_displs, void *recv, const size_t *recv_counts,
                              const size_t *recv_displs);
    /* Every rank contributes send_bytes; rank j's block lands at recv + recv_displs[j] on every
     * rank (recv_counts[j] must equal rank j's send_bytes). send may alias its own slot. */
    og_status (*all_gather_v)(og_comm *c, const void *send, size_t send_bytes, void *recv,
                              const size_t *recv_counts, const size_t *recv_displs);
    /* Starts sending send_bytes to rank dst and receiving recv_bytes from rank src. Neither
     * buffer may be touched until wait returns. dst's matching call names this rank as src. */
    og_status (*sendrecv_start)(og_comm *c, const void *send, size_t send_bytes, int dst,
                                void *recv, size_t recv_bytes, int src, og_comm_req *req);
    og_status (*sendrecv_wait)(og_comm_req *req);
    og_status (*broadcast)(og_comm *c, void *buf, size_t bytes, int root);
    og_status (*barrier)(og_comm *c);
    /* Element-wise sum of n floats over all ranks; recv may equal send. */
    og_status (*all_reduce_sum_f32)(og_comm *c, const float *send, float *recv, size_t n);
    /* Collective: ranks with the same color form a new communicator, ordered by (key, rank).
     * A negative color gives *out = NULL. */
    og_status (*split)(og_comm *c, int color, int key, og_comm **out);
    void (*destroy)(og_comm *c);
    /* Optional. Ends the whole world for a rank that failed where its peers cannot learn of it
     * (they may be waiting inside a collective): MPI ends the job. NULL: nothing to do (the
     * in-process launcher aborts its own world). */
    void (*abort)(og_comm *c, const char *message);
} og_comm_ops;

struct og_comm {
    const og_comm_ops *ops;
    int rank, size;
    og_mem_kind mem;
    uint64_t bytes_sent; /* see the header comment */
    void *impl;          /* the backend's own state */
};

/* ---- calls (thin wrappers over the table, with argument checks) ----------------------------- */

og_status og_comm_all_to_all_v(og_comm *c, const void *send, const size_t *send_counts,
                               const size_t *send_displs, void *recv, const size_t *recv_counts,
                               const size_t *recv_displs);
og_status og_comm_all_gather_v(og_comm *c, const void *send, size_t send_bytes, void *recv,
                               const size_t *recv_counts, const size_t *recv_displs);
og_status og_comm_sendrecv_start(og_comm *c, const void *send, size_t send_bytes, int dst,
                                 void *recv, size_t recv_bytes, int src, og_comm_req *req);
og_status og_comm_sendrecv_wait(og_comm_req *req);
/* start + wait. */
og_status og_comm_sendrecv(og_comm *c, const void *send, size_t send_bytes, int dst, void *recv,
                           size_t recv_bytes, int src);
og_status og_comm_broadcast(og_comm *c, void *buf, size_t bytes, int root);
og_status og_comm_barrier(og_comm *c);
og_status og_comm_all_reduce_sum_f32(og_comm *c, const float *send, float *recv, size_t n);
og_status og_comm_split(og_comm *c, int color, int key, og_comm **out);
void og_comm_free(og_comm *c); /* NULL is fine */
/* The backend's abort (see og_comm_ops.abort); returns only when it has none. */
void og_comm_abort(og_comm *c, const char *message);

/* ---- in-process: ranks are threads ---------------------------------------------------------- */

/* How in-process ranks move bytes between each other's buffers. NULL means host memcpy. Ranks
 * sharing one GPU pass a device copy (e.g. cudaMemcpy device-to-device) and OG_MEM_DEVICE. */
typedef struct og_inproc_copy {
    og_mem_kind mem;
    og_status (*copy)(void *dst, const void *src, size_t bytes, void *user);
    void *user;
} og_inproc_copy;

typedef struct og_inproc_world og_inproc_world;

/* A world of `size` ranks; og_inproc_comm() hands out rank r's communicator (owned by the world,
 * freed with it; do not og_comm_free it). Sub-communicators from split are the caller's to free. */
og_status og_inproc_world_create(og_inproc_world **out, int size, const og_inproc_copy *copy);
og_comm *og_inproc_comm(og_inproc_world *w, int rank);
/* Makes every pending and future operation on this world (and its splits) fail with OG_ERR_COMM:
 * a rank that fails calls this so its peers return instead of waiting for it forever. */
void og_inproc_world_abort(og_inproc_world *w);
void og_inproc_world_free(og_inproc_world *w);

/* og_run_ranks_copy (parallel/sp.h) runs a function on in-process ranks with a chosen copy. */

/* ---- MPI (built when MPI is found: OG_HAVE_MPI) --------------------------------------------- */

/* Wraps MPI_COMM_WORLD (MPI must be initialised by the caller, with MPI_THREAD_FUNNELED or
 * better). og_comm_free releases the wrapper, never MPI_COMM_WORLD itself. */
og_status og_comm_mpi_world(og_comm **out);
/* MPI_Init_thread with MPI_THREAD_FUNNELED (only the calling thread makes MPI calls) and
 * errors returned, not fatal; og_mpi_finalize ends it (no-op when it was never started). The
 * abort of an MPI communicator prints the message and calls MPI_Abort on MPI_COMM_WORLD. */
og_status og_mpi_init(int *argc, char ***argv);
void og_mpi_finalize(void);

/* ---- NCCL (built when NCCL is found: OG_HAVE_NCCL) ------------------------------------------ */

/* One rank per GPU. `bootstrap` is any host communicator over the same ranks (MPI across
 * processes, or in-process for one thread per GPU): rank 0 makes the NCCL unique id and
 * broadcasts it. Binds the calling thread to `device`, creates a stream for the communicator.
 * Buffers are device pointers; operations are enqueued on that stream and complete (host-side)
 * before they return, except sendrecv_start whose completion is sendrecv_wait. The send/receive
 * and all-gather-v also take host buffers (the pipeline's CFG exchange of host velocities), which
 * they stage through device memory. */
og_status og_comm_nccl_create(og_comm **out, og_comm *bootstrap, int device);
/* The cudaStream_t (as void *) the communicator enqueues on, for event-based ordering. */
void *og_comm_nccl_stream(og_comm *c);

#endif
