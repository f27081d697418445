/* omnigen bench attention: sequence-parallel attention over in-process ranks on random inputs,
 * timed, with its bytes per rank, and (--check) compared with single-rank attention. A refused
 * layout exits non-zero with the validation message. See docs/parallelism.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/ops.h"
#include "parallel/comm.h"
#include "parallel/sp.h"

#define CHECK_TOL 1e-5

typedef struct {
    og_parallel_config cfg;
    int heads, head_dim, iters;
    int64_t seq, text;
    const float *q, *k, *v; /* [seq + text, H, D]: image rows, then text rows */
    float *out;             /* same layout, filled by the ranks */
    uint64_t bytes[64];     /* per rank, one call */
    double ms;              /* mean per call, timed on rank 0 between barriers */
} bench;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static og_status bench_rank(og_comm *world, void *arg)
{
    bench *b = arg;
    og_sp *sp;
    OG_TRY(og_sp_create(&sp, &b->cfg, world));
    const int64_t row = (int64_t)b->heads * b->head_dim;
    int64_t off, len;
    og_shard_range(b->seq, og_sp_size(sp), og_sp_rank(sp), &off, &len);
    float *text_out = b->text ? malloc((size_t)(b->text * row) * sizeof(float)) : NULL;
    const float *tq = b->q + b->seq * row, *tk = b->k + b->seq * row, *tv = b->v + b->seq * row;
    const og_sp_attn_args a = {
        .seq = b->seq, .heads = b->heads, .head_dim = b->head_dim,
        .scale = 1.0f / sqrtf((float)b->head_dim),
        .q = b->q + off * row, .k = b->k + off * row, .v = b->v + off * row,
        .out = b->out + off * row, .text_len = b->text, .text_q = tq, .text_k = tk,
        .text_v = tv, .text_out = text_out,
    };
    og_status st = b->text && !text_out ? og_fail(OG_ERR_OOM, "cannot allocate text output")
                                        : og_sp_attention(sp, &a); /* warm-up, counted */
    b->bytes[world->rank] = og_sp_bytes_sent(sp);
    double t0 = 0;
    if (st == OG_OK)
        st = og_comm_barrier(world);
    if (world->rank == 0)
        t0 = now_ms();
    for (int i = 0; i < b->iters && st == OG_OK; i++)
        st = og_sp_attention(sp, &a);
    if (st == OG_OK)
        st = og_comm_barrier(world);
    if (world->rank == 0)
        b->ms = (now_ms() - t0) / b->iters;
    if (st == OG_OK && world->rank == 0 && b->text)
        memcpy(b->out + b->seq * row, text_out, (size_t)(b->text * row) * sizeof(float));
    free(text_out);
    og_sp_free(sp);
    return st;
}

static double max_rel_err(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= num))
            num = d; /* NaN sticks */
        if (fabs(ref[i]) > den)
            den = fabs(ref[i]);
    }
    return num / (den > 0 ? den : 1);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: omnigen bench attention --heads H --head-dim D --seq S [--text-seq T]\n"
               "         --ulysses-degree U --ring-degree R [--ulysses-mode strict|advanced_uaa]\n"
               "         [--iters N] [--threads-per-rank N] [--seed N] [--check]\n");
}

static int parse_int(const char *flag, const char *s, long long lo, long long *out)
{
    const long long hi = 1LL << 30;
    char *end;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "omnigen bench attention: %s needs an integer in [%lld, %lld] (got '%s')\n",
                flag, lo, hi, s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int og_cli_bench_attention(int argc, char **argv)
{
    long long heads = 0, dim = 0, seq = 0, text = 0, U = 1, R = 1, iters = 3, tpr = 0, seed = 1;
    og_ulysses_mode mode = OG_ULYSSES_STRICT;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long *dst = !strcmp(f, "--heads")              ? &heads
                         : !strcmp(f, "--head-dim")         ? &dim
                         : !strcmp(f, "--seq")              ? &seq
                         : !strcmp(f, "--text-seq")         ? &text
                         : !strcmp(f, "--ulysses-degree")   ? &U
                         : !strcmp(f, "--ring-degree")      ? &R
                         : !strcmp(f, "--iters")            ? &iters
                         : !strcmp(f, "--threads-per-rank") ? &tpr
                         : !strcmp(f, "--seed")             ? &seed
                                                            : NULL;
        if (dst) {
            /* Degrees may be anything here: the layout check below explains bad ones. */
            const long long lo = dst == &U || dst == &R ? -(1LL << 30)
                                 : dst == &text || dst == &tpr ? 0 : 1;
            if (parse_int(f, v, lo, dst))
                return 2;
            i++;
        } else if (!strcmp(f, "--ulysses-mode")) {
            if (og_ulysses_mode_parse(v, &mode) != OG_OK) {
                fprintf(stderr, "omnigen bench attention: %s\n", og_error_message());
                return 2;
            }
            i++;
        } else if (!strcmp(f, "--check")) {
            check = 1;
        } else if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "omnigen bench attention: unknown flag '%s'\n", f);
            usage(stderr);
            return 2;
        }
    }
    if (!heads || !dim || !seq) {
        fprintf(stderr, "omnigen bench attention: --heads, --head-dim and --seq are required\n");
        usage(stderr);
        return 2;
    }
    bench b = {.cfg = {.ulysses_degree = (int)U, .ring_degree = (int)R, .cfg_degree = 1,
                       .ulysses_mode = mode},
               .heads = (int)heads, .head_dim = (int)dim, .iters = (int)iters, .seq = seq,
               .text = text};
    if (og_parallel_config_validate(&b.cfg, b.heads, seq, 0) != OG_OK) {
        fprintf(stderr, "omnigen bench attention: %s\n", og_error_message());
        return 2;
    }
    if (heads > 65536 || dim > 65536 || U * R > 64) {
        fprintf(stderr, "omnigen bench attention: sizes out of range (heads and head dim at most "
                        "65536, at most 64 ranks)\n");
        return 2;
    }
    const int P = (int)(U * R);
    const size_t n = (size_t)((seq + text) * heads * dim);
    float *q = malloc(n * sizeof *q), *k = malloc(n * sizeof *k), *v = malloc(n * sizeof *v);
    b.out = malloc(n * sizeof *b.out);
    float *ref = check ? malloc(n * sizeof *ref) : NULL;
    int rc = 0;
    if (!q || !k || !v || !b.out || (check && !ref)) {
        fprintf(stderr, "omnigen bench attention: cannot allocate %zu floats per tensor\n", n);
        rc = 1;
        goto done;
    }
    uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)seed + 1;
    float *all[3] = {q, k, v};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < n; i++) { /* xorshift64*, uniform in [-1, 1) */
            s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
            all[t][i] = (float)((s * 0x2545F4914F6CDD1DULL >> 40) * (1.0 / 8388608.0) - 1.0);
        }
    b.q = q, b.k = k, b.v = v;
    if (og_run_ranks(P, (int)tpr, bench_rank, &b) != OG_OK) {
        fprintf(stderr, "omnigen bench attention: %s\n", og_error_message());
        rc = 1;
        goto done;
    }
    if (check) {
        const int64_t N = seq + text, row = heads * dim;
        const og_attn_desc d = {.sq = N, .skv = N, .heads = b.heads, .head_dim = b.head_dim,
                                .q_stride = row, .k_stride = row, .v_stride = row,
                                .o_stride = row, .scale = 1.0f / sqrtf((float)dim)};
        if (og_attention(&d, q, k, v, ref, NULL, NULL) != OG_OK) {
            fprintf(stderr, "omnigen bench attention: reference: %s\n", og_error_message());
            rc = 1;
            goto done;
        }
        const double e = max_rel_err(b.out, ref, n);
        printf("max_rel_err: %.3g\n", e);
        if (!(e <= CHECK_TOL)) {
            fprintf(stderr, "omnigen bench attention: error %.3g exceeds %g\n", e, CHECK_TOL);
            rc = 1;
        }
    }
    uint64_t most = 0;
    for (int r = 0; r < P; r++)
        most = b.bytes[r] > most ? b.bytes[r] : most;
    printf("bytes_per_rank: %llu\n", (unsigned long long)most);
    printf("ms_per_call: %.3f\n", b.ms);
done:
    free(q);
    free(k);
    free(v);
    free(b.out);
    free(ref);
    return rc;
}
