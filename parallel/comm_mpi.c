/* The MPI communicator (OpenMPI): CPU ranks across processes and nodes, with byte counts mapped
 * onto MPI_BYTE. Errors come back as return codes (MPI_ERRORS_RETURN), never as an abort. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "parallel/comm.h"

typedef struct {
    MPI_Comm comm;
    int owned; /* from a split: MPI_Comm_free on destroy */
} mpi_comm;

_Static_assert(2 * sizeof(MPI_Request) <= sizeof(((og_comm_req *)0)->state),
               "og_comm_req must hold two MPI requests");

static const og_comm_ops mpi_ops;

static MPI_Comm comm_of(const og_comm *c) { return ((mpi_comm *)c->impl)->comm; }

static og_status mpi_check(int rc, const char *what)
{
    if (rc == MPI_SUCCESS)
        return OG_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, msg, &n);
    return og_fail(OG_ERR_COMM, "MPI %s failed: %.*s", what, n, msg);
}

/* MPI counts are int: refuse (rather than truncate) anything larger. */
static og_status to_ints(int *out, const size_t *in, int n, const char *what)
{
    for (int i = 0; i < n; i++) {
        if (in[i] > INT_MAX)
            return og_fail(OG_ERR_UNSUPPORTED, "MPI %s: %zu bytes exceed the int range of MPI "
                           "counts", what, in[i]);
        out[i] = (int)in[i];
    }
    return OG_OK;
}

static og_status mpi_all_to_all_v(og_comm *c, const void *send, const size_t *send_counts,
                                  const size_t *send_displs, void *recv, const size_t *recv_counts,
                                  const size_t *recv_displs)
{
    const int P = c->size;
    int *m = calloc(4 * (size_t)P, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "MPI all-to-all-v: cannot allocate counts");
    og_status st = to_ints(m, send_counts, P, "all-to-all-v");
    if (st == OG_OK)
        st = to_ints(m + P, send_displs, P, "all-to-all-v");
    if (st == OG_OK)
        st = to_ints(m + 2 * P, recv_counts, P, "all-to-all-v");
    if (st == OG_OK)
        st = to_ints(m + 3 * P, recv_displs, P, "all-to-all-v");
    if (st == OG_OK)
        st = mpi_check(MPI_Alltoallv(send, m, m + P, MPI_BYTE, recv, m + 2 * P, m + 3 * P,
                                     MPI_BYTE, comm_of(c)),
                       "all-to-all-v");
    free(m);
    for (int j = 0; j < P && st == OG_OK; j++)
        if (j != c->rank)
            c->bytes_sent += send_counts[j];
    return st;
}

static og_status mpi_all_gather_v(og_comm *c, const void *send, size_t send_bytes, void *recv,
                                  const size_t *recv_counts, const size_t *recv_displs)
{
    const int P = c->size;
    int *m = calloc(2 * (size_t)P, sizeof *m);
    if (!m)
        return og_fail(OG_ERR_OOM, "MPI all-gather-v: cannot allocate counts");
    og_status st = to_ints(m, recv_counts, P, "all-gather-v");
    if (st == OG_OK)
        st = to_ints(m + P, recv_displs, P, "all-gather-v");
    /* A rank whose block already sits in its slot sends in place. */
    const int in_place = send == (const char *)recv + recv_displs[c->rank];
    if (st == OG_OK)
        st = mpi_check(MPI_Allgatherv(in_place ? MPI_IN_PLACE : send, (int)send_bytes, MPI_BYTE,
                                      recv, m, m + P, MPI_BYTE, comm_of(c)),
                       "all-gather-v");
    free(m);
    if (st == OG_OK)
        c->bytes_sent += (uint64_t)(P - 1) * send_bytes;
    return st;
}

static og_status mpi_sendrecv_start(og_comm *c, const void *send, size_t send_bytes, int dst,
                                    void *recv, size_t recv_bytes, int src, og_comm_req *req)
{
    if (send_bytes > INT_MAX || recv_bytes > INT_MAX)
        return og_fail(OG_ERR_UNSUPPORTED, "MPI send-receive: more than INT_MAX bytes");
    MPI_Request *r = (MPI_Request *)req->state;
    OG_TRY(mpi_check(MPI_Irecv(recv, (int)recv_bytes, MPI_BYTE, src, 0, comm_of(c), &r[0]),
                     "receive"));
    og_status st = mpi_check(MPI_Isend(send, (int)send_bytes, MPI_BYTE, dst, 0, comm_of(c), &r[1]),
                             "send");
    if (st != OG_OK) {
        MPI_Cancel(&r[0]);
        MPI_Request_free(&r[0]);
        return st;
    }
    if (dst != c->rank)
        c->bytes_sent += send_bytes;
    return OG_OK;
}

static og_status mpi_sendrecv_wait(og_comm_req *req)
{
    MPI_Status status[2];
    int rc = MPI_Waitall(2, (MPI_Request *)req->state, status);
    if (rc == MPI_ERR_IN_STATUS)
        rc = status[0].MPI_ERROR != MPI_SUCCESS ? status[0].MPI_ERROR : status[1].MPI_ERROR;
    return mpi_check(rc, "send-receive wait");
}

static og_status mpi_broadcast(og_comm *c, void *buf, size_t bytes, int root)
{
    if (bytes > INT_MAX)
        return og_fail(OG_ERR_UNSUPPORTED, "MPI broadcast: more than INT_MAX bytes");
    OG_TRY(mpi_check(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, comm_of(c)), "broadcast"));
    if (c->rank == root)
        c->bytes_sent += (uint64_t)(c->size - 1) * bytes;
    return OG_OK;
}

static og_status mpi_barrier(og_comm *c) { return mpi_check(MPI_Barrier(comm_of(c)), "barrier"); }

static og_status mpi_all_reduce_sum_f32(og_comm *c, const float *send, float *recv, size_t n)
{
    if (n > INT_MAX)
        return og_fail(OG_ERR_UNSUPPORTED, "MPI all-reduce: more than INT_MAX floats");
    OG_TRY(mpi_check(MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)n, MPI_FLOAT,
                                   MPI_SUM, comm_of(c)),
                     "all-reduce"));
    c->bytes_sent += (uint64_t)(c->size - 1) * n * sizeof(float);
    return OG_OK;
}

static og_status wrap(og_comm **out, MPI_Comm comm, int owned)
{
    og_comm *c = calloc(1, sizeof *c + sizeof(mpi_comm));
    if (!c)
        return og_fail(OG_ERR_OOM, "cannot allocate an MPI communicator");
    mpi_comm *mc = (mpi_comm *)(c + 1);
    *mc = (mpi_comm){.comm = comm, .owned = owned};
    *c = (og_comm){.ops = &mpi_ops, .mem = OG_MEM_HOST, .impl = mc};
    MPI_Comm_rank(comm, &c->rank);
    MPI_Comm_size(comm, &c->size);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    *out = c;
    return OG_OK;
}

static og_status mpi_split(og_comm *c, int color, int key, og_comm **out)
{
    MPI_Comm sub;
    OG_TRY(mpi_check(MPI_Comm_split(comm_of(c), color < 0 ? MPI_UNDEFINED : color, key, &sub),
                     "split"));
    if (sub == MPI_COMM_NULL)
        return OG_OK;
    og_status st = wrap(out, sub, 1);
    if (st != OG_OK)
        MPI_Comm_free(&sub);
    return st;
}

static void mpi_destroy(og_comm *c)
{
    mpi_comm *mc = c->impl;
    if (mc->owned)
        MPI_Comm_free(&mc->comm);
    free(c);
}

/* A rank that failed while its peers may wait in a collective ends the job: the launcher then
 * stops every process (non-zero exit), instead of leaving them waiting forever. */
static void mpi_abort(og_comm *c, const char *message)
{
    fprintf(stderr, "omnigen: rank %d: %s\n", c->rank, message);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static const og_comm_ops mpi_ops = {
    .name = "mpi",
    .all_to_all_v = mpi_all_to_all_v,
    .all_gather_v = mpi_all_gather_v,
    .sendrecv_start = mpi_sendrecv_start,
    .sendrecv_wait = mpi_sendrecv_wait,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .all_reduce_sum_f32 = mpi_all_reduce_sum_f32,
    .split = mpi_split,
    .destroy = mpi_destroy,
    .abort = mpi_abort,
};

og_status og_comm_mpi_world(og_comm **out)
{
    *out = NULL;
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready)
        return og_fail(OG_ERR_COMM, "MPI is not initialised: call MPI_Init_thread first");
    return wrap(out, MPI_COMM_WORLD, 0);
}

og_status og_mpi_init(int *argc, char ***argv)
{
    int provided = 0;
    OG_TRY(mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "init"));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        return og_fail(OG_ERR_COMM, "this MPI library offers no MPI_THREAD_FUNNELED support, "
                                    "which omnigen's threaded CPU ops need");
    }
    return OG_OK;
}

void og_mpi_finalize(void)
{
    int started = 0, ended = 0;
    MPI_Initialized(&started);
    MPI_Finalized(&ended);
    if (started && !ended)
        MPI_Finalize();
}
