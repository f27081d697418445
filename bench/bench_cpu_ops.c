/* CPU op throughput on DiT shapes: og_linear with f32 and bf16 weights (exact, and with the opt-in
 * bf16 precision where the library has it), and og_attention, each printed beside the best GEMM
 * rate the library reaches on this machine in the same run (a large square og_sgemm), so the
 * ratios say how close each op gets to what the hardware gives us. Times are wall-clock, best of
 * a few runs after a warm-up; the load average is printed since other work skews them.
 * Usage: bench_cpu_ops [--quick]  (--quick: smaller shapes, for a smoke run) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ops.h"
#include "core/threads.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
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

static void must(og_status s)
{
    if (s != OG_OK) {
        fprintf(stderr, "bench: %s\n", og_error_message());
        exit(1);
    }
}

/* Best time of `reps` runs after one warm-up run. */
#define BEST_OF(reps, stmt)                         \
    ({                                              \
        stmt;                                       \
        double best_ = 1e30;                        \
        for (int r_ = 0; r_ < (reps); r_++) {       \
            double t0_ = now();                     \
            stmt;                                   \
            double dt_ = now() - t0_;               \
            best_ = dt_ < best_ ? dt_ : best_;      \
        }                                           \
        best_;                                      \
    })

static double bench_sgemm(int64_t n, int reps)
{
    float *a = random_floats((size_t)(n * n), 1), *b = random_floats((size_t)(n * n), 1);
    float *c = calloc((size_t)(n * n), sizeof *c);
    double t = BEST_OF(reps, must(og_sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n)));
    free(a), free(b), free(c);
    return 2.0 * n * n * n / t * 1e-9;
}

static double bench_linear(int64_t M, int64_t K, int64_t N, og_dtype wt, int reps)
{
    float *x = random_floats((size_t)(M * K), 1), *wf = random_floats((size_t)(N * K), 0.05f);
    float *bias = random_floats((size_t)N, 1), *y = malloc((size_t)(M * N) * sizeof *y);
    void *w = malloc((size_t)(N * K) * og_dtype_size(wt));
    og_from_f32(w, wt, wf, (size_t)(N * K));
    double t = BEST_OF(reps, must(og_linear(y, x, M, K, w, wt, N, bias)));
    free(x), free(wf), free(bias), free(y), free(w);
    return 2.0 * M * N * K / t * 1e-9;
}

static double bench_attention(int64_t s, int heads, int dim, int reps)
{
    int64_t stride = (int64_t)heads * dim;
    float *q = random_floats((size_t)(s * stride), 1), *k = random_floats((size_t)(s * stride), 1);
    float *v = random_floats((size_t)(s * stride), 1), *o = malloc((size_t)(s * stride) * sizeof *o);
    float *lse = malloc((size_t)(s * heads) * sizeof *lse);
    og_attn_desc d = {.sq = s, .skv = s, .heads = heads, .head_dim = dim, .q_stride = stride,
                      .k_stride = stride, .v_stride = stride, .o_stride = stride,
                      .scale = 1.0f / sqrtf((float)dim)};
    double t = BEST_OF(reps, must(og_attention(&d, q, k, v, o, lse)));
    free(q), free(k), free(v), free(o), free(lse);
    return 4.0 * s * s * dim * heads / t * 1e-9;
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
    double peak = bench_sgemm(sq, 3);
    char sqname[64];
    snprintf(sqname, sizeof sqname, "sgemm %lld^3 (reference)", (long long)sq);
    printf("%-58s %8.1f GFLOP/s  (100.0%%)\n", sqname, peak);

    static const int64_t shapes[][3] = {
        {4096, 3840, 3840}, /* Z-Image attention projections, 64x64 latent */
        {4096, 3840, 10240}, /* Z-Image FFN up (w1/w3) */
        {4096, 10240, 3840}, /* Z-Image FFN down */
        {1024, 1024, 4096}, /* small DiT MLP */
        {1, 256, 3840},     /* timestep embedder: one row */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t M = quick ? shapes[i][0] / 4 + 1 : shapes[i][0], K = shapes[i][1], N = shapes[i][2];
        for (int t = 0; t < 3; t++) {
            /* f32 weights; bf16 weights exact; bf16 weights in the opt-in bf16 precision */
            og_dtype wt = t ? OG_BF16 : OG_F32;
            if (t == 2 && og_gemm_set_precision(OG_GEMM_BF16) != OG_OK)
                break;
            double g = bench_linear(M, K, N, wt, M == 1 ? 20 : 2.0 * M * N * K > 2e11 ? 1 : 2);
            must(og_gemm_set_precision(OG_GEMM_EXACT));
            char name[80];
            snprintf(name, sizeof name, "linear M %lld K %lld N %lld %s%s", (long long)M,
                     (long long)K, (long long)N, og_dtype_name(wt), t == 2 ? " bf16-precision" : "");
            printf("%-58s %8.1f GFLOP/s  (%5.1f%%)\n", name, g, 100 * g / peak);
        }
    }
    static const int64_t seqs[] = {1024, 4096};
    for (int i = 0; i < 2; i++) {
        int64_t s = quick ? seqs[i] / 4 : seqs[i];
        double g = bench_attention(s, 24, 128, s > 2048 ? 1 : 2);
        char name[64];
        snprintf(name, sizeof name, "attention S %lld heads 24 dim 128", (long long)s);
        printf("%-58s %8.1f GFLOP/s  (%5.1f%%)\n", name, g, 100 * g / peak);
    }
    return 0;
}
