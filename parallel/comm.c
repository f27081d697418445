/* The communicator calls every caller uses: argument checks shared by all backends, then the
 * backend's function table. */
#include "parallel/comm.h"

static og_status check_peer(const og_comm *c, int r, const char *what)
{
    if (r < 0 || r >= c->size)
        return og_fail(OG_ERR_INVALID_ARG, "%s rank %d is outside the %s communicator of %d ranks",
                       what, r, c->ops->name, c->size);
    return OG_OK;
}

og_status og_comm_all_to_all_v(og_comm *c, const void *send, const size_t *send_counts,
                               const size_t *send_displs, void *recv, const size_t *recv_counts,
                               const size_t *recv_displs)
{
    return c->ops->all_to_all_v(c, send, send_counts, send_displs, recv, recv_counts,
                                recv_displs);
}

og_status og_comm_all_gather_v(og_comm *c, const void *send, size_t send_bytes, void *recv,
                               const size_t *recv_counts, const size_t *recv_displs)
{
    if (recv_counts[c->rank] != send_bytes)
        return og_fail(OG_ERR_INVALID_ARG, "all-gather-v: rank %d sends %zu bytes but its slot "
                       "holds %zu", c->rank, send_bytes, recv_counts[c->rank]);
    return c->ops->all_gather_v(c, send, send_bytes, recv, recv_counts, recv_displs);
}

og_status og_comm_sendrecv_start(og_comm *c, const void *send, size_t send_bytes, int dst,
                                 void *recv, size_t recv_bytes, int src, og_comm_req *req)
{
    OG_TRY(check_peer(c, dst, "send-receive: destination"));
    OG_TRY(check_peer(c, src, "send-receive: source"));
    req->comm = c;
    return c->ops->sendrecv_start(c, send, send_bytes, dst, recv, recv_bytes, src, req);
}

og_status og_comm_sendrecv_wait(og_comm_req *req)
{
    return req->comm->ops->sendrecv_wait(req);
}

og_status og_comm_sendrecv(og_comm *c, const void *send, size_t send_bytes, int dst, void *recv,
                           size_t recv_bytes, int src)
{
    og_comm_req req;
    OG_TRY(og_comm_sendrecv_start(c, send, send_bytes, dst, recv, recv_bytes, src, &req));
    return og_comm_sendrecv_wait(&req);
}

og_status og_comm_broadcast(og_comm *c, void *buf, size_t bytes, int root)
{
    OG_TRY(check_peer(c, root, "broadcast: root"));
    return c->ops->broadcast(c, buf, bytes, root);
}

og_status og_comm_barrier(og_comm *c) { return c->ops->barrier(c); }

og_status og_comm_all_reduce_sum_f32(og_comm *c, const float *send, float *recv, size_t n)
{
    return c->ops->all_reduce_sum_f32(c, send, recv, n);
}

og_status og_comm_split(og_comm *c, int color, int key, og_comm **out)
{
    *out = NULL;
    return c->ops->split(c, color, key, out);
}

void og_comm_free(og_comm *c)
{
    if (c)
        c->ops->destroy(c);
}

void og_comm_abort(og_comm *c, const char *message)
{
    if (c && c->ops->abort)
        c->ops->abort(c, message);
}
