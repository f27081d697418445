/* The in-process communicator: ranks are threads sharing one address space. A collective
 * publishes each rank's buffer pointers in a per-group slot, meets at a barrier, lets every rank
 * copy what it receives straight from its peers' buffers, and meets again. Paired send/receive
 * goes through one mailbox per (source, destination): whichever side arrives second copies.
 * Copies go through a hook (memcpy by default), so ranks sharing one GPU can plug in a device
 * copy. After an abort every wait returns OG_ERR_COMM, but only once no peer still copies from
 * a buffer the returning rank might free. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parallel/comm.h"

typedef struct inproc_group inproc_group;

typedef struct { /* what a rank publishes for the collective in progress */
    const void *send;
    const size_t *counts, *displs;
    size_t bytes;
    int color, key;
    inproc_group *made; /* split: the group its leader created */
} inproc_slot;

typedef struct { /* transfers from one rank to another, in posting order */
    const void *send;
    size_t send_bytes;
    void *recv;
    size_t recv_bytes;
    uint64_t sends, recvs, done; /* posted sends, posted receives, completed transfers */
    bool busy;                   /* a copy is running outside the lock */
    og_status status;            /* of the last completed transfer */
    size_t bad_send, bad_recv;   /* its sizes when they did not match */
} inproc_mailbox;

struct inproc_group {
    og_inproc_world *w;
    int size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    uint64_t gen;      /* barrier generation */
    int copying;       /* ranks between a collective's two barriers */
    inproc_slot *slots;
    inproc_mailbox *mbox; /* [src * size + dst] */
    int refs;             /* communicators still using the group */
    inproc_group *next;   /* the world's registry, for abort */
};

typedef struct {
    inproc_group *g;
    bool owned; /* the og_comm came from split and is freed with destroy */
} inproc_comm;

struct og_inproc_world {
    int size;
    og_inproc_copy copy;
    atomic_bool aborted;
    pthread_mutex_t reg;
    inproc_group *groups;
    og_comm *comms;
    inproc_comm *impls;
};

static const og_comm_ops inproc_ops;

static inproc_group *group_of(const og_comm *c) { return ((inproc_comm *)c->impl)->g; }

static og_status aborted_error(void)
{
    return og_fail(OG_ERR_COMM, "in-process communicator aborted: another rank failed");
}

static og_status host_copy(void *dst, const void *src, size_t bytes, void *user)
{
    memcpy(dst, src, bytes);
    return OG_OK;
}

static og_status group_copy(inproc_group *g, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0 || dst == src)
        return OG_OK;
    return g->w->copy.copy(dst, src, bytes, g->w->copy.user);
}

static inproc_group *group_new(og_inproc_world *w, int size, int refs)
{
    inproc_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->slots = calloc((size_t)size, sizeof *g->slots);
    g->mbox = calloc((size_t)size * (size_t)size, sizeof *g->mbox);
    if (!g->slots || !g->mbox) {
        free(g->slots);
        free(g->mbox);
        free(g);
        return NULL;
    }
    g->w = w;
    g->size = size;
    g->refs = refs;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    pthread_mutex_lock(&w->reg);
    g->next = w->groups;
    w->groups = g;
    pthread_mutex_unlock(&w->reg);
    return g;
}

static void group_delete(inproc_group *g)
{
    og_inproc_world *w = g->w;
    pthread_mutex_lock(&w->reg);
    for (inproc_group **p = &w->groups; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    pthread_mutex_unlock(&w->reg);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g->slots);
    free(g->mbox);
    free(g);
}

/* Waits under g->mu after an abort until no peer is still copying within this group. */
static og_status abort_locked(inproc_group *g)
{
    while (g->copying > 0)
        pthread_cond_wait(&g->cv, &g->mu);
    for (int i = 0; i < g->size * g->size; i++)
        while (g->mbox[i].busy)
            pthread_cond_wait(&g->cv, &g->mu);
    return aborted_error();
}

/* A barrier; with start_copy, the ranks it releases enter a copy phase that copy_done ends. */
static og_status group_sync(inproc_group *g, bool start_copy)
{
    og_status st = OG_OK;
    pthread_mutex_lock(&g->mu);
    if (atomic_load(&g->w->aborted)) {
        st = abort_locked(g);
        pthread_mutex_unlock(&g->mu);
        return st;
    }
    const uint64_t gen = g->gen;
    if (++g->arrived == g->size) {
        g->arrived = 0;
        g->gen++;
        if (start_copy)
            g->copying = g->size;
        pthread_cond_broadcast(&g->cv);
    } else {
        while (g->gen == gen && !atomic_load(&g->w->aborted))
            pthread_cond_wait(&g->cv, &g->mu);
        if (g->gen == gen)
            st = abort_locked(g);
    }
    pthread_mutex_unlock(&g->mu);
    return st;
}

static void copy_done(inproc_group *g)
{
    pthread_mutex_lock(&g->mu);
    if (--g->copying == 0)
        pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Ends a collective: the copy phase, then a barrier so no slot is reused while a peer reads it.
 * Returns the first failure of this rank's copies, or the barrier's. */
static og_status finish_collective(inproc_group *g, og_status copy_status)
{
    copy_done(g);
    og_status st = group_sync(g, false);
    return copy_status != OG_OK ? copy_status : st;
}

static og_status inproc_all_to_all_v(og_comm *c, const void *send, const size_t *send_counts,
                                     const size_t *send_displs, void *recv,
                                     const size_t *recv_counts, const size_t *recv_displs)
{
    inproc_group *g = group_of(c);
    const int me = c->rank;
    g->slots[me] = (inproc_slot){.send = send, .counts = send_counts, .displs = send_displs};
    OG_TRY(group_sync(g, true));
    og_status st = OG_OK;
    for (int j = 0; j < g->size && st == OG_OK; j++) {
        const inproc_slot *s = &g->slots[j];
        if (s->counts[me] != recv_counts[j])
            st = og_fail(OG_ERR_COMM, "all-to-all-v: rank %d sends %zu bytes to rank %d, which "
                         "expects %zu", j, s->counts[me], me, recv_counts[j]);
        else
            st = group_copy(g, (char *)recv + recv_displs[j],
                            (const char *)s->send + s->displs[me], recv_counts[j]);
    }
    st = finish_collective(g, st);
    for (int j = 0; j < g->size; j++)
        if (j != me)
            c->bytes_sent += send_counts[j];
    return st;
}

static og_status inproc_all_gather_v(og_comm *c, const void *send, size_t send_bytes, void *recv,
                                     const size_t *recv_counts, const size_t *recv_displs)
{
    inproc_group *g = group_of(c);
    const int me = c->rank;
    g->slots[me] = (inproc_slot){.send = send, .bytes = send_bytes};
    OG_TRY(group_sync(g, true));
    og_status st = OG_OK;
    for (int j = 0; j < g->size && st == OG_OK; j++) {
        if (g->slots[j].bytes != recv_counts[j])
            st = og_fail(OG_ERR_COMM, "all-gather-v: rank %d contributes %zu bytes, rank %d "
                         "expects %zu", j, g->slots[j].bytes, me, recv_counts[j]);
        else
            st = group_copy(g, (char *)recv + recv_displs[j], g->slots[j].send, recv_counts[j]);
    }
    st = finish_collective(g, st);
    c->bytes_sent += (uint64_t)(g->size - 1) * send_bytes;
    return st;
}

static og_status inproc_broadcast(og_comm *c, void *buf, size_t bytes, int root)
{
    inproc_group *g = group_of(c);
    g->slots[c->rank] = (inproc_slot){.send = buf, .bytes = bytes};
    OG_TRY(group_sync(g, true));
    og_status st = OG_OK;
    if (g->slots[root].bytes != bytes)
        st = og_fail(OG_ERR_COMM, "broadcast: root %d sends %zu bytes, rank %d expects %zu", root,
                     g->slots[root].bytes, c->rank, bytes);
    else if (c->rank != root)
        st = group_copy(g, buf, g->slots[root].send, bytes);
    st = finish_collective(g, st);
    if (c->rank == root)
        c->bytes_sent += (uint64_t)(g->size - 1) * bytes;
    return st;
}

static og_status inproc_barrier(og_comm *c) { return group_sync(group_of(c), false); }

static og_status inproc_all_reduce_sum_f32(og_comm *c, const float *send, float *recv, size_t n)
{
    inproc_group *g = group_of(c);
    if (c->mem != OG_MEM_HOST)
        return og_fail(OG_ERR_UNSUPPORTED, "the in-process all-reduce needs host memory");
    float *sum = malloc((n ? n : 1) * sizeof *sum);
    if (!sum)
        return og_fail(OG_ERR_OOM, "all-reduce: cannot allocate %zu floats", n);
    g->slots[c->rank] = (inproc_slot){.send = send, .bytes = n * sizeof(float)};
    og_status st = group_sync(g, true);
    if (st == OG_OK) {
        og_status cst = OG_OK;
        for (int j = 0; j < g->size && cst == OG_OK; j++)
            if (g->slots[j].bytes != n * sizeof(float))
                cst = og_fail(OG_ERR_COMM, "all-reduce: rank %d has %zu bytes, rank %d has %zu",
                              j, g->slots[j].bytes, c->rank, n * sizeof(float));
        /* Summing in rank order gives every rank bit-identical results. */
        for (size_t i = 0; i < n && cst == OG_OK; i++) {
            float s = 0;
            for (int j = 0; j < g->size; j++)
                s += ((const float *)g->slots[j].send)[i];
            sum[i] = s;
        }
        st = finish_collective(g, cst);
        if (st == OG_OK)
            memcpy(recv, sum, n * sizeof(float));
        c->bytes_sent += (uint64_t)(g->size - 1) * n * sizeof(float);
    }
    free(sum);
    return st;
}

/* Called under g->mu by whichever side posted second: copies outside the lock, then completes. */
static void transfer_locked(inproc_group *g, inproc_mailbox *mb)
{
    og_status st = OG_OK;
    if (mb->send_bytes != mb->recv_bytes) {
        st = OG_ERR_COMM;
        mb->bad_send = mb->send_bytes;
        mb->bad_recv = mb->recv_bytes;
    } else {
        mb->busy = true;
        pthread_mutex_unlock(&g->mu);
        st = group_copy(g, mb->recv, mb->send, mb->send_bytes);
        pthread_mutex_lock(&g->mu);
        mb->busy = false;
    }
    mb->status = st;
    mb->done++;
    pthread_cond_broadcast(&g->cv);
}

/* req->state: [0] dst, [1] src, [2] send ticket, [3] receive ticket. */
static og_status inproc_sendrecv_start(og_comm *c, const void *send, size_t send_bytes, int dst,
                                       void *recv, size_t recv_bytes, int src, og_comm_req *req)
{
    inproc_group *g = group_of(c);
    const int me = c->rank, P = g->size;
    inproc_mailbox *out = &g->mbox[me * P + dst], *in = &g->mbox[src * P + me];
    og_status st = OG_OK;
    pthread_mutex_lock(&g->mu);
    /* One transfer per direction at a time: a second start waits for the first to complete. */
    while ((out->sends > out->done || in->recvs > in->done) && !atomic_load(&g->w->aborted))
        pthread_cond_wait(&g->cv, &g->mu);
    if (atomic_load(&g->w->aborted)) {
        st = abort_locked(g);
        pthread_mutex_unlock(&g->mu);
        return st;
    }
    req->state[0] = (uint64_t)dst;
    req->state[1] = (uint64_t)src;
    req->state[2] = out->sends;
    req->state[3] = in->recvs;
    out->send = send;
    out->send_bytes = send_bytes;
    if (out->recvs > out->sends++)
        transfer_locked(g, out);
    in->recv = recv;
    in->recv_bytes = recv_bytes;
    if (in->sends > in->recvs++)
        transfer_locked(g, in);
    pthread_mutex_unlock(&g->mu);
    if (dst != me)
        c->bytes_sent += send_bytes;
    return OG_OK;
}

static og_status mailbox_status(const inproc_mailbox *mb, const char *side)
{
    if (mb->status == OG_OK)
        return OG_OK;
    if (mb->status == OG_ERR_COMM && mb->bad_send != mb->bad_recv)
        return og_fail(OG_ERR_COMM, "send-receive (%s): %zu bytes sent but %zu expected", side,
                       mb->bad_send, mb->bad_recv);
    return og_fail(mb->status, "send-receive (%s): copy failed", side);
}

static og_status inproc_sendrecv_wait(og_comm_req *req)
{
    og_comm *c = req->comm;
    inproc_group *g = group_of(c);
    const int me = c->rank, P = g->size;
    inproc_mailbox *out = &g->mbox[me * P + (int)req->state[0]];
    inproc_mailbox *in = &g->mbox[(int)req->state[1] * P + me];
    og_status st = OG_OK;
    pthread_mutex_lock(&g->mu);
    while ((out->done <= req->state[2] || in->done <= req->state[3]) &&
           !atomic_load(&g->w->aborted))
        pthread_cond_wait(&g->cv, &g->mu);
    if (out->done <= req->state[2] || in->done <= req->state[3])
        st = abort_locked(g);
    else if ((st = mailbox_status(out, "send")) == OG_OK)
        st = mailbox_status(in, "receive");
    pthread_mutex_unlock(&g->mu);
    return st;
}

static og_comm *comm_new(inproc_group *g, int rank, og_mem_kind mem)
{
    og_comm *c = calloc(1, sizeof *c + sizeof(inproc_comm));
    if (!c)
        return NULL;
    inproc_comm *ic = (inproc_comm *)(c + 1);
    *ic = (inproc_comm){.g = g, .owned = true};
    *c = (og_comm){.ops = &inproc_ops, .rank = rank, .size = g->size, .mem = mem, .impl = ic};
    return c;
}

static og_status inproc_split(og_comm *c, int color, int key, og_comm **out)
{
    inproc_group *g = group_of(c);
    const int me = c->rank;
    g->slots[me] = (inproc_slot){.color = color, .key = key};
    OG_TRY(group_sync(g, false));
    int leader = -1, members = 0, newrank = 0;
    for (int j = 0; j < g->size && color >= 0; j++) {
        const inproc_slot *s = &g->slots[j];
        if (s->color != color)
            continue;
        if (leader < 0)
            leader = j;
        members++;
        if (s->key < key || (s->key == key && j < me))
            newrank++;
    }
    if (leader == me)
        g->slots[me].made = group_new(g->w, members, members);
    OG_TRY(group_sync(g, false));
    og_status st = OG_OK;
    if (color >= 0) {
        inproc_group *ng = g->slots[leader].made;
        if (!ng)
            st = og_fail(OG_ERR_OOM, "split: cannot allocate a communicator group");
        else if (!(*out = comm_new(ng, newrank, c->mem))) {
            st = og_fail(OG_ERR_OOM, "split: cannot allocate a communicator");
            pthread_mutex_lock(&ng->mu);
            bool last = --ng->refs == 0;
            pthread_mutex_unlock(&ng->mu);
            if (last)
                group_delete(ng);
        }
    }
    og_status bst = group_sync(g, false);
    return st != OG_OK ? st : bst;
}

static void inproc_destroy(og_comm *c)
{
    inproc_comm *ic = c->impl;
    if (!ic->owned)
        return; /* a world rank's communicator lives as long as its world */
    inproc_group *g = ic->g;
    pthread_mutex_lock(&g->mu);
    bool last = --g->refs == 0;
    pthread_mutex_unlock(&g->mu);
    if (last)
        group_delete(g);
    free(c);
}

static const og_comm_ops inproc_ops = {
    .name = "inproc",
    .all_to_all_v = inproc_all_to_all_v,
    .all_gather_v = inproc_all_gather_v,
    .sendrecv_start = inproc_sendrecv_start,
    .sendrecv_wait = inproc_sendrecv_wait,
    .broadcast = inproc_broadcast,
    .barrier = inproc_barrier,
    .all_reduce_sum_f32 = inproc_all_reduce_sum_f32,
    .split = inproc_split,
    .destroy = inproc_destroy,
};

og_status og_inproc_world_create(og_inproc_world **out, int size, const og_inproc_copy *copy)
{
    *out = NULL;
    if (size < 1)
        return og_fail(OG_ERR_INVALID_ARG, "an in-process world needs at least 1 rank (got %d)",
                       size);
    og_inproc_world *w = calloc(1, sizeof *w);
    if (!w)
        return og_fail(OG_ERR_OOM, "cannot allocate an in-process world");
    w->size = size;
    w->copy = copy ? *copy : (og_inproc_copy){.mem = OG_MEM_HOST, .copy = host_copy};
    atomic_init(&w->aborted, false);
    pthread_mutex_init(&w->reg, NULL);
    w->comms = calloc((size_t)size, sizeof *w->comms);
    w->impls = calloc((size_t)size, sizeof *w->impls);
    inproc_group *g = w->comms && w->impls ? group_new(w, size, size) : NULL;
    if (!g) {
        og_inproc_world_free(w);
        return og_fail(OG_ERR_OOM, "cannot allocate an in-process world of %d ranks", size);
    }
    for (int r = 0; r < size; r++) {
        w->impls[r] = (inproc_comm){.g = g, .owned = false};
        w->comms[r] = (og_comm){.ops = &inproc_ops, .rank = r, .size = size,
                                .mem = w->copy.mem, .impl = &w->impls[r]};
    }
    *out = w;
    return OG_OK;
}

og_comm *og_inproc_comm(og_inproc_world *w, int rank) { return &w->comms[rank]; }

void og_inproc_world_abort(og_inproc_world *w)
{
    atomic_store(&w->aborted, true);
    pthread_mutex_lock(&w->reg);
    for (inproc_group *g = w->groups; g; g = g->next) {
        pthread_mutex_lock(&g->mu);
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
    }
    pthread_mutex_unlock(&w->reg);
}

void og_inproc_world_free(og_inproc_world *w)
{
    if (!w)
        return;
    while (w->groups) /* the world group, and any split a rank did not free */
        group_delete(w->groups);
    pthread_mutex_destroy(&w->reg);
    free(w->comms);
    free(w->impls);
    free(w);
}
