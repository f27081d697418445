/* The rank mesh: a rank's Ulysses, Ring, CFG and sequence groups split from a world
 * communicator (rank = (cfg_i * R + ring_i) * U + ulysses_i), the shard arithmetic, and the
 * exchanges outside attention (sequence gather, CFG exchange). */
#include <stdlib.h>

#include "parallel/sp_internal.h"

void og_shard_range(int64_t S, int P, int r, int64_t *off, int64_t *len)
{
    const int64_t base = S / P, extra = S % P;
    *len = base + (r < extra);
    *off = r * base + (r < extra ? r : extra);
}

void og_head_range(int H, int U, int u, int *h0, int *hn)
{
    const int base = H / U, extra = H % U;
    *hn = base + (u < extra);
    *h0 = u * base + (u < extra ? u : extra);
}

void og_sp_geom_init(og_sp_geom *g, const og_sp *sp, int64_t S, int H, int D)
{
    *g = (og_sp_geom){.U = sp->cfg.ulysses_degree, .R = sp->cfg.ring_degree,
                      .u = sp->ulysses_i, .r = sp->ring_i, .S = S, .H = H, .D = D};
    og_head_range(H, g->U, g->u, &g->h0, &g->hn);
    og_shard_range(S, g->U * g->R, sp->sp_rank, &g->off, &g->len);
    og_sp_super_range(g, g->r, &g->super_off, &g->super_len);
}

void og_sp_super_range(const og_sp_geom *g, int j, int64_t *off, int64_t *len)
{
    int64_t last_off, last_len;
    og_shard_range(g->S, g->U * g->R, j * g->U, off, len);
    og_shard_range(g->S, g->U * g->R, j * g->U + g->U - 1, &last_off, &last_len);
    *len = last_off + last_len - *off;
}

og_status og_sp_create(og_sp **out, const og_parallel_config *cfg, og_comm *world)
{
    *out = NULL;
    OG_TRY(og_parallel_config_validate(cfg, 0, 0, world->size));
    og_sp *sp = calloc(1, sizeof *sp);
    if (!sp)
        return og_fail(OG_ERR_OOM, "cannot allocate the sequence-parallel state");
    const int U = cfg->ulysses_degree, R = cfg->ring_degree, P = U * R;
    sp->cfg = *cfg;
    sp->world_rank = world->rank;
    sp->ulysses_i = world->rank % U;
    sp->ring_i = world->rank / U % R;
    sp->cfg_i = world->rank / P;
    sp->sp_rank = sp->ring_i * U + sp->ulysses_i;
    sp->counts = malloc(4 * (size_t)P * sizeof *sp->counts);
    sp->block_len = malloc((size_t)R * sizeof *sp->block_len);
    og_status st = sp->counts && sp->block_len
                       ? OG_OK
                       : og_fail(OG_ERR_OOM, "cannot allocate %d counts", 4 * P + R);
    if (st == OG_OK)
        st = og_comm_split(world, world->rank / U, sp->ulysses_i, &sp->ulysses);
    if (st == OG_OK)
        st = og_comm_split(world, sp->cfg_i * U + sp->ulysses_i, sp->ring_i, &sp->ring);
    if (st == OG_OK)
        st = og_comm_split(world, sp->sp_rank, sp->cfg_i, &sp->cfg_group);
    if (st == OG_OK)
        st = og_comm_split(world, sp->cfg_i, sp->sp_rank, &sp->seq);
    if (st != OG_OK) {
        og_sp_free(sp);
        return og_fail_context(st, "building the rank mesh");
    }
    *out = sp;
    return OG_OK;
}

void og_sp_free(og_sp *sp)
{
    if (!sp)
        return;
    og_comm_free(sp->ulysses);
    og_comm_free(sp->ring);
    og_comm_free(sp->cfg_group);
    og_comm_free(sp->seq);
    free(sp->counts);
    free(sp->block_len);
    free(sp);
}

const og_parallel_config *og_sp_config(const og_sp *sp) { return &sp->cfg; }
int og_sp_world_rank(const og_sp *sp) { return sp->world_rank; }
int og_sp_rank(const og_sp *sp) { return sp->sp_rank; }
int og_sp_size(const og_sp *sp) { return sp->cfg.ulysses_degree * sp->cfg.ring_degree; }
int og_sp_cfg_index(const og_sp *sp) { return sp->cfg_i; }

uint64_t og_sp_bytes_sent(const og_sp *sp)
{
    return sp->ulysses->bytes_sent + sp->ring->bytes_sent + sp->cfg_group->bytes_sent +
           sp->seq->bytes_sent;
}

void og_sp_reset_bytes(og_sp *sp)
{
    sp->ulysses->bytes_sent = sp->ring->bytes_sent = 0;
    sp->cfg_group->bytes_sent = sp->seq->bytes_sent = 0;
}

og_status og_sp_gather_seq(og_sp *sp, const float *local, float *full, int64_t seq,
                           int64_t row_elems)
{
    const int P = og_sp_size(sp);
    if (seq < P)
        return og_fail(OG_ERR_PARALLEL, "cannot gather %lld tokens over %d sequence ranks",
                       (long long)seq, P);
    size_t *counts = sp->counts, *displs = counts + P;
    for (int j = 0; j < P; j++) {
        int64_t off, len;
        og_shard_range(seq, P, j, &off, &len);
        counts[j] = (size_t)(len * row_elems) * sizeof(float);
        displs[j] = (size_t)(off * row_elems) * sizeof(float);
    }
    return og_comm_all_gather_v(sp->seq, local, counts[sp->sp_rank], full, counts, displs);
}

og_status og_sp_cfg_exchange(og_sp *sp, const float *mine, float *other, int64_t n)
{
    if (sp->cfg.cfg_degree != 2)
        return og_fail(OG_ERR_PARALLEL, "CFG exchange needs cfg_degree 2 (this layout has %d)",
                       sp->cfg.cfg_degree);
    const int peer = 1 - sp->cfg_i;
    const size_t bytes = (size_t)n * sizeof(float);
    return og_comm_sendrecv(sp->cfg_group, mine, bytes, peer, other, bytes, peer);
}
