/* CPU op throughput on DiT shapes: og_linear with f32 and bf16 weights (exact, and with the opt-in
 * bf16 precision where the library has it), and og_attention, each printed beside the best GEMM
 * rate the library reaches on this machine in the same run (a large square og_sgemm), so the
 * ratios say how close each op gets to what the hardware gives us.
 * Two rates per line, best of a few runs after a warm-up: wall-clock GFLOP/s, and GFLOP per
 * CPU-second of the process ("per core"), which other processes on a shared machine disturb much
 * less; the load average is printed too. Each op takes its scratch from an arena sized once by
 * its *_scratch_bytes, as the models do.
 * Usage: bench_cpu_ops [--quick]  (--quick: smaller shapes, for a smoke run) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "core/ops.h"
#include "core/threads.h"

typedef struct {
    double wall, cpu; /* seconds */
} timing;

static void must(og_status s)
{
    if (s != OG_OK) {
        fprintf(stderr, "bench: %s\n", og_error_message());
        exit(1);
    }
}

/* Runs fn once to warm up, then `reps` times; the smallest wall and CPU times. */
static timing best_of(int reps, void (*fn)(void *), void *ctx)
{
    fn(ctx);
    timing best = {1e30, 1e30};
    for (int r = 0; r < reps; r++) {
        double w0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        fn(ctx);
        double w = seconds(CLOCK_MONOTONIC) - w0, c = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
        best.wall = w < best.wall ? w : best.wall;
        best.cpu = c < best.cpu ? c : best.cpu;
    }
    return best;
}

static float *random_floats(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x);
    if (!x) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = ((float)(s >> 40) / 16777216.0f * 2.0f - 1.0f) * scale;
    }
    return x;
}

typedef struct {
    int64_t M, K, N;
    og_dtype wt;
    const float *x, *bias;
    const void *w;
    float *y;
    og_arena *scratch;
} linear_job;

static void run_linear(void *p)
{
    linear_job *j = p;
    must(og_linear(j->y, j->x, j->M, j->K, j->w, j->wt, j->N, j->bias, j->scratch));
}

static void run_sgemm(void *p)
{
    linear_job *j = p; /* C[M, N] = x[M, K] . w[K, N], all f32 */
    must(og_sgemm(false, false, j->M, j->N, j->K, 1.0f, j->x, j->K, j->w, j->N, 0.0f, j->y, j->N));
}

typedef struct {
    og_attn_desc d;
    const float *q, *k, *v;
    float *o, *lse;
    og_arena *scratch;
} attn_job;

static void run_attention(void *p)
{
    attn_job *j = p;
    must(og_attention(&j->d, j->q, j->k, j->v, j->o, j->lse, j->scratch));
}

static timing ref; /* the square sgemm, in GFLOP/s (wall) and GFLOP per CPU-second */

static void report(const char *name, double gflop, timing t)
{
    double wall = gflop / t.wall, cpu = gflop / t.cpu;
    printf("%-52s %7.1f GFLOP/s (%5.1f%%)  %6.1f per core (%5.1f%%)\n", name, wall,
           100 * wall / ref.wall, cpu, 100 * cpu / ref.cpu);
}

static timing time_linear(int64_t M, int64_t K, int64_t N, og_dtype wt, bool sgemm, int reps)
{
    float *x = random_floats((size_t)(M * K), 1), *wf = random_floats((size_t)(N * K), 0.05f);
    float *bias = random_floats((size_t)N, 1), *y = malloc((size_t)(M * N) * sizeof *y);
    void *w = malloc((size_t)(N * K) * og_dtype_size(wt));
    og_from_f32(w, wt, wf, (size_t)(N * K));
    og_arena a;
    must(og_arena_init(&a, og_linear_scratch_bytes(M, K, wt, N)));
    linear_job j = {M, K, N, wt, x, bias, w, y, &a};
    timing t = best_of(reps, sgemm ? run_sgemm : run_linear, &j);
    og_arena_free(&a);
    free(x), free(wf), free(bias), free(y), free(w);
    return t;
}

static timing time_attention(int64_t s, int heads, int dim, int reps)
{
    int64_t stride = (int64_t)heads * dim;
    attn_job j = {
        .d = {.sq = s, .skv = s, .heads = heads, .head_dim = dim, .q_stride = stride,
              .k_stride = stride, .v_stride = stride, .o_stride = stride,
              .scale = 1.0f / sqrtf((float)dim)},
        .q = random_floats((size_t)(s * stride), 1), .k = random_floats((size_t)(s * stride), 1),
        .v = random_floats((size_t)(s * stride), 1),
        .o = malloc((size_t)(s * stride) * sizeof(float)),
        .lse = malloc((size_t)(s * heads) * sizeof(float)),
    };
    og_arena a;
    must(og_arena_init(&a, og_attention_scratch_bytes(&j.d)));
    j.scratch = &a;
    timing t = best_of(reps, run_attention, &j);
    og_arena_free(&a);
    free((void *)j.q), free((void *)j.k), free((void *)j.v), free(j.o), free(j.lse);
    return t;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    printf("omnigen CPU ops benchmark: %d threads, GEMM library %s%s, load average %.2f\n",
           og_get_threads(), og_gemm_library(), quick ? " (quick)" : "", load);

    int64_t sq = quick ? 1024 : 3072;
    timing t = time_linear(sq, sq, sq, OG_F32, true, 3);
    double g = 2.0 * sq * sq * sq * 1e-9;
    ref = (timing){g / t.wall, g / t.cpu};
    char name[96];
    snprintf(name, sizeof name, "sgemm %lld^3 (reference)", (long long)sq);
    report(name, g, t);

    static const int64_t shapes[][3] = {
        {4096, 3840, 3840},  /* Z-Image attention projections, 64x64 latent */
        {4096, 3840, 10240}, /* Z-Image FFN up (w1/w3) */
        {4096, 10240, 3840}, /* Z-Image FFN down */
        {1024, 1024, 4096},  /* small DiT MLP */
        {1, 256, 3840},      /* timestep embedder: one row */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t M = quick ? shapes[i][0] / 4 + 1 : shapes[i][0], K = shapes[i][1], N = shapes[i][2];
        g = 2.0 * M * N * K * 1e-9;
        for (int v = 0; v < 3; v++) {
            /* f32 weights; bf16 weights exact; bf16 weights in the opt-in bf16 precision */
            og_dtype wt = v ? OG_BF16 : OG_F32;
            if (v == 2 && og_gemm_set_precision(OG_GEMM_BF16) != OG_OK)
                break;
            t = time_linear(M, K, N, wt, false, M == 1 ? 20 : g > 200 ? 1 : 2);
            must(og_gemm_set_precision(OG_GEMM_EXACT));
            snprintf(name, sizeof name, "linear M %lld K %lld N %lld %s%s", (long long)M,
                     (long long)K, (long long)N, og_dtype_name(wt), v == 2 ? " bf16-prec" : "");
            report(name, g, t);
        }
    }
    static const int64_t seqs[] = {1024, 4096};
    for (int i = 0; i < 2; i++) {
        int64_t s = quick ? seqs[i] / 4 : seqs[i];
        g = 4.0 * s * s * 128 * 24 * 1e-9;
        t = time_attention(s, 24, 128, s > 2048 ? 1 : 2);
        snprintf(name, sizeof name, "attention S %lld heads 24 dim 128", (long long)s);
        report(name, g, t);
    }
    return 0;
}
