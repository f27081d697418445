/* The rank mesh with CFG: rank = (cfg_i * R + ring_i) * U + ulysses_i; Ulysses groups are
 * contiguous ranks, ring groups strided by U, CFG outermost. Each CFG branch runs its own SP
 * attention on its own inputs (the groups must not mix), the CFG exchange swaps the branches'
 * values, og_sp_gather_seq rebuilds the full sequence, and both count their bytes. */
#include "parallel/sp_internal.h"
#include "test_parallel_checks.h"

typedef struct {
    int U, R;
    const sp_data *data; /* [2]: one per CFG branch */
    sp_result res[8];
} mesh_case;

/* World ranks of a group, in group-rank order. */
static void group_members(og_comm *g, int world_rank, int *ids)
{
    size_t cnt[8], dsp[8];
    for (int j = 0; j < g->size; j++)
        cnt[j] = sizeof(int), dsp[j] = j * sizeof(int);
    og_comm_all_gather_v(g, &world_rank, sizeof world_rank, ids, cnt, dsp);
}

static og_status mesh_rank(og_comm *world, void *arg)
{
    mesh_case *mc = arg;
    const int U = mc->U, R = mc->R, P = U * R, w = world->rank;
    sp_result *res = &mc->res[w];
    const og_parallel_config cfg = {.ulysses_degree = U, .ring_degree = R, .cfg_degree = 2,
                                    .ulysses_mode = OG_ULYSSES_ADVANCED_UAA};
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &cfg, world));
    const int u = w % U, r = w / U % R, c = w / P;
    if (og_sp_world_rank(sp) != w || og_sp_rank(sp) != r * U + u || og_sp_cfg_index(sp) != c ||
        og_sp_size(sp) != P)
        sp_result_fail(res, "rank %d: sp rank %d cfg %d size %d", w, og_sp_rank(sp),
                       og_sp_cfg_index(sp), og_sp_size(sp));
    int ids[8];
    group_members(sp->ulysses, w, ids);
    for (int j = 0; j < U; j++)
        if (ids[j] != (c * R + r) * U + j)
            sp_result_fail(res, "rank %d: Ulysses member %d is %d", w, j, ids[j]);
    group_members(sp->ring, w, ids);
    for (int j = 0; j < R; j++)
        if (ids[j] != (c * R + j) * U + u)
            sp_result_fail(res, "rank %d: ring member %d is %d", w, j, ids[j]);
    group_members(sp->cfg_group, w, ids);
    if (ids[0] != r * U + u || ids[1] != P + r * U + u)
        sp_result_fail(res, "rank %d: CFG members %d, %d", w, ids[0], ids[1]);

    sp_check_attention(sp, &mc->data[c], res);

    /* CFG exchange: 5 values named after the sender. */
    float mine[5], other[5];
    for (int i = 0; i < 5; i++)
        mine[i] = (float)(100 * w + i);
    og_sp_reset_bytes(sp);
    if (og_sp_cfg_exchange(sp, mine, other, 5) != OG_OK)
        sp_result_fail(res, "cfg exchange: %s", og_error_message());
    const int peer = c ? w - P : w + P;
    for (int i = 0; i < 5; i++)
        if (other[i] != (float)(100 * peer + i) || mine[i] != (float)(100 * w + i))
            sp_result_fail(res, "rank %d: cfg exchange value %d is %g", w, i, other[i]);
    if (og_sp_bytes_sent(sp) != 5 * sizeof(float))
        sp_result_fail(res, "cfg exchange counted %llu bytes",
                       (unsigned long long)og_sp_bytes_sent(sp));

    /* Sequence gather: row t of branch c holds t * 10 + column + 1000 * c. */
    const int64_t S = mc->data[0].seq, cols = 3;
    int64_t off, len;
    og_shard_range(S, P, og_sp_rank(sp), &off, &len);
    float *local = malloc((size_t)(len * cols) * sizeof *local);
    float *full = malloc((size_t)(S * cols) * sizeof *full);
    for (int64_t t = 0; t < len; t++)
        for (int64_t j = 0; j < cols; j++)
            local[t * cols + j] = (float)((off + t) * 10 + j + 1000 * c);
    og_sp_reset_bytes(sp);
    if (og_sp_gather_seq(sp, local, full, S, cols) != OG_OK)
        sp_result_fail(res, "gather: %s", og_error_message());
    for (int64_t t = 0; t < S * cols; t++)
        if (full[t] != (float)(t / cols * 10 + t % cols + 1000 * c)) {
            sp_result_fail(res, "rank %d: gathered element %lld is %g", w, (long long)t, full[t]);
            break;
        }
    if (og_sp_bytes_sent(sp) != (uint64_t)(P - 1) * len * cols * sizeof(float))
        sp_result_fail(res, "gather counted %llu bytes", (unsigned long long)og_sp_bytes_sent(sp));
    free(local);
    free(full);
    og_sp_free(sp);
    return OG_OK;
}

static og_status refuse_rank(og_comm *world, void *arg)
{
    og_status *out = arg;
    const og_parallel_config one = {.ulysses_degree = 1, .ring_degree = 2, .cfg_degree = 1};
    og_sp *sp = NULL;
    OG_TRY(og_sp_create(&sp, &one, world));
    float x = 1, y;
    out[world->rank] = og_sp_cfg_exchange(sp, &x, &y, 1);
    og_sp_free(sp);
    return OG_OK;
}

int main(void)
{
    static const int layouts[][2] = {{1, 1}, {2, 1}, {1, 2}, {2, 2}, {3, 1}, {1, 3}, {4, 1},
                                     {1, 4}};
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        mesh_case mc = {.U = layouts[i][0], .R = layouts[i][1]};
        sp_data data[2];
        CHECK(sp_data_make(&data[0], 5, 8, 23, 4, 2 * i) == 0, "data");
        CHECK(sp_data_make(&data[1], 5, 8, 23, 4, 2 * i + 1) == 0, "data");
        mc.data = data;
        CHECK_OK(og_run_ranks(2 * mc.U * mc.R, 1, mesh_rank, &mc));
        for (int r = 0; r < 2 * mc.U * mc.R; r++)
            CHECK(mc.res[r].fails == 0, "U=%d R=%d rank %d: %d failure(s), first: %s", mc.U, mc.R,
                  r, mc.res[r].fails, mc.res[r].msg);
        sp_data_free(&data[0]);
        sp_data_free(&data[1]);
    }

    og_status st[2] = {OG_OK, OG_OK};
    CHECK_OK(og_run_ranks(2, 1, refuse_rank, st));
    CHECK(st[0] == OG_ERR_PARALLEL && st[1] == OG_ERR_PARALLEL, "cfg exchange without CFG");

    /* A world that does not match the layout is refused by og_sp_create. */
    og_status cs = og_run_ranks(2, 1, mesh_rank, &(mesh_case){.U = 2, .R = 2});
    CHECK(cs == OG_ERR_PARALLEL, "mismatched world gave %s", og_status_name(cs));
    CHECK(strstr(og_error_message(), "needs cfg_degree x ring_degree x ulysses_degree = 2 x 2 x 2"
                                     " = 8 ranks but 2 are available") != NULL,
          "%s", og_error_message());
    return og_test_finish("test_parallel_mesh");
}
