/* The NCCL communicator: one GPU per rank, device buffers, one CUDA stream per communicator.
 * Variable-size exchanges are grouped point-to-point calls (all-to-all-v) or grouped broadcasts
 * (all-gather-v). Every operation but sendrecv_start synchronises its stream before returning,
 * so callers on the host see completed data; sendrecv_wait synchronises the started pair.
 * Send/receive and all-gather-v stage host buffers through a device buffer (the pipeline
 * exchanges its host velocities this way once per step). Compiled here, never run: no GPU. */
#include <stdbool.h>
#include <stdlib.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "parallel/comm.h"

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    float *one; /* a device float: the barrier is an all-reduce of it */
    int device;
    char *stage; /* device staging for host buffers, grown on demand */
    size_t stage_bytes;
    void *host_recv; /* a started send/receive into host memory: copied there by the wait */
    size_t host_recv_off, host_recv_bytes; /* where the received bytes sit in `stage` */
} nccl_comm;

static const og_comm_ops nccl_ops;

static nccl_comm *impl_of(const og_comm *c) { return c->impl; }

static og_status nccl_check(ncclResult_t rc, const char *what)
{
    if (rc == ncclSuccess)
        return OG_OK;
    return og_fail(OG_ERR_COMM, "NCCL %s failed: %s", what, ncclGetErrorString(rc));
}

static og_status cuda_check(cudaError_t rc, const char *what)
{
    if (rc == cudaSuccess)
        return OG_OK;
    return og_fail(OG_ERR_DEVICE, "CUDA %s failed: %s", what, cudaGetErrorString(rc));
}

/* Host memory (pageable or pinned) that NCCL cannot read or write directly. */
static bool on_host(const void *p)
{
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); /* older runtimes report plain host memory as an error */
        return true;
    }
    return a.type == cudaMemoryTypeUnregistered || a.type == cudaMemoryTypeHost;
}

/* At least `bytes` of device staging memory. */
static og_status stage_reserve(nccl_comm *n, size_t bytes)
{
    if (bytes <= n->stage_bytes)
        return OG_OK;
    OG_TRY(cuda_check(cudaStreamSynchronize(n->stream), "staging"));
    cudaFree(n->stage);
    n->stage = NULL;
    n->stage_bytes = 0;
    OG_TRY(cuda_check(cudaMalloc((void **)&n->stage, bytes), "staging malloc"));
    n->stage_bytes = bytes;
    return OG_OK;
}

static og_status stage_copy(nccl_comm *n, void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return OG_OK;
    return cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, n->stream),
                      "staging copy");
}

/* Closes a group of enqueued calls and waits for the stream. */
static og_status finish(nccl_comm *n, ncclResult_t rc, const char *what)
{
    ncclResult_t end = ncclGroupEnd();
    OG_TRY(nccl_check(rc != ncclSuccess ? rc : end, what));
    return cuda_check(cudaStreamSynchronize(n->stream), what);
}

static og_status nccl_all_to_all_v(og_comm *c, const void *send, const size_t *send_counts,
                                   const size_t *send_displs, void *recv,
                                   const size_t *recv_counts, const size_t *recv_displs)
{
    nccl_comm *n = impl_of(c);
    OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
    ncclResult_t rc = ncclGroupStart();
    for (int j = 0; j < c->size && rc == ncclSuccess; j++) {
        if (send_counts[j])
            rc = ncclSend((const char *)send + send_displs[j], send_counts[j], ncclUint8, j,
                          n->comm, n->stream);
        if (rc == ncclSuccess && recv_counts[j])
            rc = ncclRecv((char *)recv + recv_displs[j], recv_counts[j], ncclUint8, j, n->comm,
                          n->stream);
    }
    OG_TRY(finish(n, rc, "all-to-all-v"));
    for (int j = 0; j < c->size; j++)
        if (j != c->rank)
            c->bytes_sent += send_counts[j];
    return OG_OK;
}

static og_status nccl_all_gather_v(og_comm *c, const void *send, size_t send_bytes, void *recv,
                                   const size_t *recv_counts, const size_t *recv_displs)
{
    nccl_comm *n = impl_of(c);
    OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
    void *host_recv = NULL;
    size_t extent = 0;
    if (on_host(send) || on_host(recv)) {
        /* Gather in place in a device copy of recv, then copy the whole extent back. */
        for (int j = 0; j < c->size; j++)
            if (recv_counts[j] && recv_displs[j] + recv_counts[j] > extent)
                extent = recv_displs[j] + recv_counts[j];
        OG_TRY(stage_reserve(n, extent));
        OG_TRY(stage_copy(n, n->stage + recv_displs[c->rank], send, send_bytes));
        host_recv = recv;
        recv = n->stage;
        send = n->stage + recv_displs[c->rank];
    }
    ncclResult_t rc = ncclGroupStart();
    for (int j = 0; j < c->size && rc == ncclSuccess; j++)
        if (recv_counts[j])
            rc = ncclBroadcast(j == c->rank ? send : NULL, (char *)recv + recv_displs[j],
                               recv_counts[j], ncclUint8, j, n->comm, n->stream);
    ncclResult_t end = ncclGroupEnd();
    OG_TRY(nccl_check(rc != ncclSuccess ? rc : end, "all-gather-v"));
    if (host_recv)
        OG_TRY(stage_copy(n, host_recv, n->stage, extent));
    OG_TRY(cuda_check(cudaStreamSynchronize(n->stream), "all-gather-v"));
    c->bytes_sent += (uint64_t)(c->size - 1) * send_bytes;
    return OG_OK;
}

static og_status nccl_sendrecv_start(og_comm *c, const void *send, size_t send_bytes, int dst,
                                     void *recv, size_t recv_bytes, int src, og_comm_req *req)
{
    nccl_comm *n = impl_of(c);
    OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
    n->host_recv = NULL;
    if (on_host(send) || on_host(recv)) {
        /* [send | recv] in device memory; the wait copies the received bytes out. */
        OG_TRY(stage_reserve(n, send_bytes + recv_bytes));
        OG_TRY(stage_copy(n, n->stage, send, send_bytes));
        n->host_recv = recv;
        n->host_recv_off = send_bytes;
        n->host_recv_bytes = recv_bytes;
        send = n->stage;
        recv = n->stage + send_bytes;
    }
    ncclResult_t rc = ncclGroupStart();
    if (rc == ncclSuccess && send_bytes)
        rc = ncclSend(send, send_bytes, ncclUint8, dst, n->comm, n->stream);
    if (rc == ncclSuccess && recv_bytes)
        rc = ncclRecv(recv, recv_bytes, ncclUint8, src, n->comm, n->stream);
    ncclResult_t end = ncclGroupEnd();
    OG_TRY(nccl_check(rc != ncclSuccess ? rc : end, "send-receive"));
    if (dst != c->rank)
        c->bytes_sent += send_bytes;
    return OG_OK;
}

static og_status nccl_sendrecv_wait(og_comm_req *req)
{
    nccl_comm *n = impl_of(req->comm);
    if (n->host_recv) {
        void *dst = n->host_recv;
        n->host_recv = NULL;
        OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
        OG_TRY(stage_copy(n, dst, n->stage + n->host_recv_off, n->host_recv_bytes));
    }
    return cuda_check(cudaStreamSynchronize(n->stream), "send-receive wait");
}

static og_status nccl_broadcast(og_comm *c, void *buf, size_t bytes, int root)
{
    nccl_comm *n = impl_of(c);
    OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
    OG_TRY(finish(n, ncclGroupStart() == ncclSuccess
                         ? ncclBroadcast(buf, buf, bytes, ncclUint8, root, n->comm, n->stream)
                         : ncclInternalError,
                  "broadcast"));
    if (c->rank == root)
        c->bytes_sent += (uint64_t)(c->size - 1) * bytes;
    return OG_OK;
}

static og_status nccl_all_reduce_sum_f32(og_comm *c, const float *send, float *recv, size_t n_)
{
    nccl_comm *n = impl_of(c);
    OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
    OG_TRY(finish(n, ncclGroupStart() == ncclSuccess
                         ? ncclAllReduce(send, recv, n_, ncclFloat32, ncclSum, n->comm, n->stream)
                         : ncclInternalError,
                  "all-reduce"));
    c->bytes_sent += (uint64_t)(c->size - 1) * n_ * sizeof(float);
    return OG_OK;
}

static og_status nccl_barrier(og_comm *c)
{
    nccl_comm *n = impl_of(c);
    const uint64_t counted = c->bytes_sent; /* a barrier moves no payload */
    og_status st = nccl_all_reduce_sum_f32(c, n->one, n->one, 1);
    c->bytes_sent = counted;
    return st;
}

/* Wraps a NCCL communicator: its stream and barrier scratch on `device`. */
static og_status wrap(og_comm **out, ncclComm_t comm, int device)
{
    og_comm *c = calloc(1, sizeof *c + sizeof(nccl_comm));
    if (!c) {
        ncclCommDestroy(comm);
        return og_fail(OG_ERR_OOM, "cannot allocate a NCCL communicator");
    }
    nccl_comm *n = (nccl_comm *)(c + 1);
    *n = (nccl_comm){.comm = comm, .device = device};
    *c = (og_comm){.ops = &nccl_ops, .mem = OG_MEM_DEVICE, .impl = n};
    og_status st = nccl_check(ncclCommUserRank(comm, &c->rank), "rank");
    if (st == OG_OK)
        st = nccl_check(ncclCommCount(comm, &c->size), "size");
    if (st == OG_OK)
        st = cuda_check(cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking),
                        "stream create");
    if (st == OG_OK)
        st = cuda_check(cudaMalloc((void **)&n->one, sizeof(float)), "malloc");
    if (st != OG_OK) {
        if (n->stream)
            cudaStreamDestroy(n->stream);
        ncclCommDestroy(comm);
        free(c);
        return st;
    }
    *out = c;
    return OG_OK;
}

static og_status nccl_split(og_comm *c, int color, int key, og_comm **out)
{
    nccl_comm *n = impl_of(c);
    OG_TRY(cuda_check(cudaSetDevice(n->device), "set device"));
    ncclComm_t sub = NULL;
    OG_TRY(nccl_check(ncclCommSplit(n->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &sub,
                                    NULL),
                      "split"));
    return sub ? wrap(out, sub, n->device) : OG_OK;
}

static void nccl_destroy(og_comm *c)
{
    nccl_comm *n = impl_of(c);
    cudaSetDevice(n->device);
    ncclCommDestroy(n->comm);
    cudaStreamDestroy(n->stream);
    cudaFree(n->one);
    cudaFree(n->stage);
    free(c);
}

static const og_comm_ops nccl_ops = {
    .name = "nccl",
    .all_to_all_v = nccl_all_to_all_v,
    .all_gather_v = nccl_all_gather_v,
    .sendrecv_start = nccl_sendrecv_start,
    .sendrecv_wait = nccl_sendrecv_wait,
    .broadcast = nccl_broadcast,
    .barrier = nccl_barrier,
    .all_reduce_sum_f32 = nccl_all_reduce_sum_f32,
    .split = nccl_split,
    .destroy = nccl_destroy,
};

og_status og_comm_nccl_create(og_comm **out, og_comm *bootstrap, int device)
{
    *out = NULL;
    if (bootstrap->mem != OG_MEM_HOST)
        return og_fail(OG_ERR_INVALID_ARG, "NCCL bootstrap needs a host-memory communicator");
    OG_TRY(cuda_check(cudaSetDevice(device), "set device"));
    ncclUniqueId id;
    if (bootstrap->rank == 0)
        OG_TRY(nccl_check(ncclGetUniqueId(&id), "unique id"));
    OG_TRY(og_comm_broadcast(bootstrap, &id, sizeof id, 0));
    ncclComm_t comm;
    OG_TRY(nccl_check(ncclCommInitRank(&comm, bootstrap->size, id, bootstrap->rank), "init"));
    return wrap(out, comm, device);
}

void *og_comm_nccl_stream(og_comm *c) { return impl_of(c)->stream; }
