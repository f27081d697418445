/* GPU benchmark: cuBLASLt GEMM TFLOP/s against the best measured large GEMM, flash attention
 * TFLOP/s, and the Z-Image DiT step as the pipeline runs it: og_zimage_cuda_forward on a
 * full-size random-weight model (og_zimage_random: dim 3840, 30 heads, 2 + 2 refiner and 30 main
 * layers, caption width 2560, bf16 weights) at 1024 x 1024 (64 x 64 patches = 4096 image tokens)
 * with a 100-token caption, with its MFU from og_zimage_flops. With --ulysses-degree and/or
 * --ring-degree (or --layouts for a standard set) the same step also runs under sequence
 * parallelism with every rank a thread on GPU 0 (og_run_ranks_copy + og_cuda_inproc_copy), so
 * the SP overhead of a layout shows against the serial step on the same GPU.
 *
 *   bench_cuda [--size 1024] [--layers 30] [--text 100] [--steps 5] [--peak TFLOPS]
 *              [--ulysses-degree U] [--ring-degree R] [--layouts] [--no-probes] [--quick]
 *
 * Step times are the median of --steps forwards after one warm-up, wall clock around the call
 * (it returns the host output, so the GPU work is complete). Prints one "name: value" line per
 * figure and a final "json: {...}" line for bench/gpu/run.sh. Compiled, never run: no GPU here. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cuda/cuda_backend.h"
#include "core/cuda/zimage_cuda.h"
#include "dit/zimage.h"
#include "parallel/comm.h"
#include "parallel/sp.h"

static void die(const char *what)
{
    fprintf(stderr, "bench_cuda: %s: %s\n", what, og_error_message());
    exit(1);
}

#define TRY(expr)              \
    do {                       \
        if ((expr) != OG_OK)   \
            die(#expr);        \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- GEMM and attention probes ---------------------------------------------------------------- */

/* Mean milliseconds of `iters` back-to-back runs of fn on ctx's stream after `warm` unmeasured
 * (kernels this short are timed with events, not one by one). */
static double time_ms(og_cuda_ctx *ctx, void (*fn)(void *), void *arg, int warm, int iters)
{
    cudaEvent_t e0, e1;
    float ms = 0;
    for (int i = 0; i < warm; i++)
        fn(arg);
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0, og_cuda_stream(ctx));
    for (int i = 0; i < iters; i++)
        fn(arg);
    cudaEventRecord(e1, og_cuda_stream(ctx));
    TRY(og_cuda_sync(ctx));
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms / iters;
}

static void *dalloc(og_cuda_ctx *ctx, size_t bytes)
{
    void *p = og_arena_alloc(og_cuda_arena(ctx), bytes);
    if (!p)
        die("device arena");
    return p;
}

/* n bf16 values in (-scale, scale) on the device, from a repeated host pattern: the values do
 * not change the speed. */
static og_bf16 *drand(og_cuda_ctx *ctx, size_t n, float scale)
{
    enum { PATTERN = 1 << 20 };
    static float pattern[PATTERN];
    static bool made;
    if (!made) {
        uint64_t s = 88172645463325252ull;
        for (size_t i = 0; i < PATTERN; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            pattern[i] = (float)((s >> 11) * 0x1p-53 * 2.0 - 1.0);
        }
        made = true;
    }
    og_bf16 *p = dalloc(ctx, n * sizeof(og_bf16));
    float *tmp = malloc(PATTERN * sizeof *tmp);
    for (size_t i = 0; i < n; i += PATTERN) {
        const size_t m = n - i < PATTERN ? n - i : PATTERN;
        for (size_t j = 0; j < m; j++)
            tmp[j] = pattern[j] * scale;
        TRY(og_cuda_upload(ctx, p + i, OG_BF16, tmp, OG_F32, m));
    }
    free(tmp);
    return p;
}

typedef struct {
    og_cuda_ctx *ctx;
    int64_t M, N, K;
    og_bf16 *x, *w, *y;
    og_attn_desc d;
    float *lse;
} probe;

static void run_gemm(void *arg)
{
    probe *p = arg;
    TRY(og_cuda_linear(p->ctx, p->y, OG_BF16, p->x, p->M, p->K, p->w, p->N, NULL,
                       OG_CUDA_ACT_NONE));
}

/* TFLOP/s of back-to-back GEMMs of one shape. */
static double gemm_tflops(og_cuda_ctx *ctx, int64_t M, int64_t N, int64_t K, int iters)
{
    const size_t mark = og_arena_mark(og_cuda_arena(ctx));
    probe p = {.ctx = ctx, .M = M, .N = N, .K = K, .x = drand(ctx, (size_t)(M * K), 1.0f),
               .w = drand(ctx, (size_t)(N * K), 0.02f), .y = dalloc(ctx, (size_t)(M * N) * 2)};
    const double ms = time_ms(ctx, run_gemm, &p, 3, iters);
    og_arena_release(og_cuda_arena(ctx), mark);
    return 2.0 * M * N * K / (ms * 1e-3) / 1e12;
}

static void run_attention(void *arg)
{
    probe *p = arg;
    const int64_t hd = (int64_t)p->d.heads * p->d.head_dim;
    TRY(og_cuda_attention(p->ctx, &p->d, p->x, p->x + hd, p->x + 2 * hd, p->y, OG_BF16, p->lse));
}

/* TFLOP/s of self-attention over S tokens read from a fused QKV buffer, as the DiT runs it. */
static double attention_tflops(og_cuda_ctx *ctx, int64_t S, int H, int D, int iters)
{
    const size_t mark = og_arena_mark(og_cuda_arena(ctx));
    const size_t n = (size_t)S * H * D;
    const int64_t st = 3LL * H * D;
    probe p = {.ctx = ctx, .x = drand(ctx, 3 * n, 1.0f), .y = dalloc(ctx, n * 2),
               .lse = dalloc(ctx, (size_t)S * H * 4),
               .d = {.sq = S, .skv = S, .heads = H, .kv_heads = H, .head_dim = D, .q_stride = st,
                     .k_stride = st, .v_stride = st, .o_stride = (int64_t)H * D,
                     .scale = 1.0f / sqrtf((float)D)}};
    const double ms = time_ms(ctx, run_attention, &p, 1, iters);
    og_arena_release(og_cuda_arena(ctx), mark);
    return 4.0 * S * S * H * D / (ms * 1e-3) / 1e12;
}

/* Dense bf16 tensor-core peak from the data sheet, for MFU; 0 when the GPU is not listed. */
static double spec_peak(const char *name)
{
    if (strstr(name, "H100 PCIe"))
        return 756;
    if (strstr(name, "H20 "))
        return 148;
    if (strstr(name, "H100") || strstr(name, "H200") || strstr(name, "H800"))
        return 989;
    if (strstr(name, "A100") || strstr(name, "A800"))
        return 312;
    if (strstr(name, "L40S"))
        return 362;
    return 0;
}

/* Prints the GEMM and attention probes; returns the measured GEMM peak, sets *att. */
static double run_probes(const og_zimage_config *c, int64_t S, double peak_spec, double *att)
{
    og_cuda_ctx *ctx;
    TRY(og_cuda_init(0, &ctx));
    const size_t big = (size_t)16384 * 16384 * 2 * 3 + (size_t)S * 2 * c->ffn_dim * 2 * 2;
    TRY(og_cuda_reserve(ctx, big + ((size_t)64 << 20), "the GEMM and attention probes"));
    double peak = 0;
    static const int64_t sq[][3] = {{8192, 8192, 8192}, {16384, 16384, 8192},
                                    {4096, 16384, 16384}};
    for (int i = 0; i < 3; i++) {
        const double t = gemm_tflops(ctx, sq[i][0], sq[i][1], sq[i][2], 10);
        printf("gemm %lldx%lldx%lld: %.1f TFLOP/s\n", (long long)sq[i][0], (long long)sq[i][1],
               (long long)sq[i][2], t);
        peak = t > peak ? t : peak;
    }
    printf("gemm measured peak: %.1f TFLOP/s (data-sheet dense bf16: %.0f)\n", peak, peak_spec);
    const int64_t D = c->dim, F = c->ffn_dim;
    const struct {
        const char *name;
        int64_t M, N, K;
    } shapes[] = {{"qkv", S, 3 * D, D}, {"attn out", S, D, D}, {"ffn w1|w3", S, 2 * F, D},
                  {"ffn w2", S, D, F}};
    for (int i = 0; i < 4; i++) {
        const double t = gemm_tflops(ctx, shapes[i].M, shapes[i].N, shapes[i].K, 20);
        printf("gemm %s %lldx%lldx%lld: %.1f TFLOP/s (%.0f%% of measured peak)\n", shapes[i].name,
               (long long)shapes[i].M, (long long)shapes[i].N, (long long)shapes[i].K, t,
               100 * t / peak);
    }
    *att = attention_tflops(ctx, S, c->n_heads, c->head_dim, 10);
    printf("attention S=%lld H=%d D=%d: %.1f TFLOP/s\n", (long long)S, c->n_heads, c->head_dim,
           *att);
    og_cuda_free(ctx); /* its memory goes back before the weights are uploaded */
    return peak;
}

/* ---- the DiT step ----------------------------------------------------------------------------- */

typedef struct {
    const og_zimage *m;
    const og_zimage_cuda *w;
    og_parallel_config cfg;
    const float *lat, *cap;
    int64_t hw, text, n_out;
    int warm, steps;
    double *ms;       /* [world][steps] */
    size_t *peak;     /* [world]: og_cuda_peak_bytes after the run */
    size_t *reserved; /* [world]: og_zimage_cuda_work_bytes */
    float *out;       /* rank 0's output */
} step_job;

/* One rank (or the serial run with world NULL): its own context on GPU 0, the work plan
 * reserved up front, warm-up, then timed forwards that start together (a barrier before each). */
static og_status step_rank(og_comm *world, step_job *j)
{
    const int r = world ? world->rank : 0;
    og_sp *sp = NULL;
    og_cuda_ctx *ctx = NULL;
    float *out = malloc((size_t)j->n_out * sizeof *out);
    og_status st = out ? OG_OK : og_fail(OG_ERR_OOM, "bench: output buffer");
    if (st == OG_OK && world)
        st = og_sp_create(&sp, &j->cfg, world);
    const size_t plan = st == OG_OK ? og_zimage_cuda_work_bytes(j->m, j->hw, j->hw, j->text, sp)
                                    : 0;
    if (st == OG_OK)
        st = og_cuda_init(0, &ctx);
    char what[96];
    snprintf(what, sizeof what, "Z-Image step, rank %d", r);
    if (st == OG_OK)
        st = og_cuda_reserve(ctx, plan, what);
    for (int i = 0; st == OG_OK && i < j->warm + j->steps; i++) {
        if (world)
            st = og_comm_barrier(world);
        const double t0 = now_ms();
        if (st == OG_OK)
            st = og_zimage_cuda_forward(ctx, j->w, sp, j->lat, j->hw, j->hw, 0.5f, j->cap,
                                        j->text, out);
        if (i >= j->warm)
            j->ms[r * j->steps + i - j->warm] = now_ms() - t0;
    }
    if (st == OG_OK) {
        j->peak[r] = og_cuda_peak_bytes(ctx);
        j->reserved[r] = plan;
        if (r == 0)
            memcpy(j->out, out, (size_t)j->n_out * sizeof *out);
    }
    og_cuda_free(ctx);
    og_sp_free(sp);
    free(out);
    return st;
}

static og_status sp_rank(og_comm *world, void *arg) { return step_rank(world, arg); }

/* Runs the step serially (U = R = 1) or under a layout; returns the median step time, the
 * slowest rank per step. */
static double run_step(step_job *j, const char *label, const float *serial, double *rel_err)
{
    const int world = j->cfg.ulysses_degree * j->cfg.ring_degree;
    j->ms = calloc((size_t)(world * j->steps), sizeof *j->ms);
    j->peak = calloc((size_t)world, sizeof *j->peak);
    j->reserved = calloc((size_t)world, sizeof *j->reserved);
    og_status st;
    if (world == 1) {
        st = step_rank(NULL, j);
    } else {
        og_inproc_copy copy;
        og_cuda_inproc_copy(0, &copy);
        st = og_run_ranks_copy(world, 0, &copy, sp_rank, j);
    }
    if (st != OG_OK)
        die(label);
    double *per_step = malloc((size_t)j->steps * sizeof *per_step);
    for (int i = 0; i < j->steps; i++) {
        per_step[i] = 0;
        for (int r = 0; r < world; r++)
            per_step[i] = fmax(per_step[i], j->ms[r * j->steps + i]);
    }
    const double med = median(per_step, j->steps);
    for (int r = 0; r < world; r++)
        printf("%s rank %d: peak device use %.0f MiB of %.0f MiB reserved (work plan + "
               "cuBLASLt workspace; the weights are shared)\n", label, r, j->peak[r] / 1048576.0,
               j->reserved[r] / 1048576.0);
    *rel_err = 0;
    if (serial) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < j->n_out; i++) {
            num = fmax(num, fabs((double)j->out[i] - serial[i]));
            den = fmax(den, fabs((double)serial[i]));
        }
        *rel_err = den > 0 ? num / den : num;
    }
    free(per_step);
    free(j->ms);
    free(j->peak);
    free(j->reserved);
    return med;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_cuda [--size N] [--layers N] [--text N] [--steps N] "
                    "[--peak TFLOPS] [--ulysses-degree U] [--ring-degree R] [--layouts] "
                    "[--no-probes] [--quick]\n");
    exit(2);
}

static int int_arg(int argc, char **argv, int *i, int lo)
{
    if (*i + 1 >= argc)
        usage();
    char *end;
    const long v = strtol(argv[++*i], &end, 10);
    if (*end || v < lo || v > 1 << 20) {
        fprintf(stderr, "bench_cuda: %s needs an integer >= %d, not '%s'\n", argv[*i - 1], lo,
                argv[*i]);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    int size = 1024, steps = 5, text = 100, layers = 30, U = 1, R = 1;
    bool probes = true, layouts = false;
    double peak_arg = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size"))
            size = int_arg(argc, argv, &i, 16);
        else if (!strcmp(argv[i], "--layers"))
            layers = int_arg(argc, argv, &i, 0);
        else if (!strcmp(argv[i], "--steps"))
            steps = int_arg(argc, argv, &i, 1);
        else if (!strcmp(argv[i], "--text"))
            text = int_arg(argc, argv, &i, 1);
        else if (!strcmp(argv[i], "--ulysses-degree"))
            U = int_arg(argc, argv, &i, 1);
        else if (!strcmp(argv[i], "--ring-degree"))
            R = int_arg(argc, argv, &i, 1);
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc)
            peak_arg = atof(argv[++i]);
        else if (!strcmp(argv[i], "--layouts"))
            layouts = true;
        else if (!strcmp(argv[i], "--no-probes"))
            probes = false;
        else if (!strcmp(argv[i], "--quick"))
            size = 256, layers = 2, steps = 2;
        else
            usage();
    }
    if (size % 16) {
        fprintf(stderr, "bench_cuda: --size %d is not a multiple of 16 pixels\n", size);
        return 2;
    }
    og_zimage_config c = og_zimage_config_default();
    c.n_layers = layers;
    TRY(og_zimage_config_finish(&c));
    const int64_t hw = size / 8; /* latent side: the VAE downsamples 8x */
    og_zimage_tokens t;
    TRY(og_zimage_tokens_for(&c, hw, hw, text, &t));
    /* The layouts to time besides the serial step: the one asked for, or a standard set. */
    og_parallel_config lay[8];
    int n_lay = 0;
    if (U * R > 1)
        lay[n_lay++] = (og_parallel_config){.ulysses_degree = U, .ring_degree = R,
                                            .cfg_degree = 1};
    static const int standard[][2] = {{2, 1}, {1, 2}, {2, 2}, {1, 4}};
    for (int i = 0; layouts && i < 4; i++)
        lay[n_lay++] = (og_parallel_config){.ulysses_degree = standard[i][0],
                                            .ring_degree = standard[i][1], .cfg_degree = 1};
    for (int i = 0; i < n_lay; i++)
        TRY(og_zimage_check_layout(&c, &lay[i], hw, hw, text, 0));

    if (og_cuda_device_count() == 0) {
        fprintf(stderr, "bench_cuda: no CUDA device; this benchmark needs a GPU\n");
        return 77;
    }
    char name[256];
    og_cuda_device_name(0, name, sizeof name);
    const double peak_spec = peak_arg > 0 ? peak_arg : spec_peak(name);
    printf("device: %s\n", name);

    double peak_meas = 0, att = 0;
    if (probes)
        peak_meas = run_probes(&c, t.seq_len, peak_spec, &att);

    /* The model: random bf16 weights built on the host, uploaded once. */
    double t0 = now_ms();
    og_zimage *m;
    TRY(og_zimage_random(&m, &c, 1, OG_BF16));
    const double built = now_ms() - t0;
    og_cuda_ctx *wctx;
    og_zimage_cuda *w;
    TRY(og_cuda_init(0, &wctx));
    t0 = now_ms();
    TRY(og_zimage_cuda_upload(&w, wctx, m));
    printf("model: random Z-Image, dim %d, %d heads, %d + %d + %d layers, bf16 weights %.0f MiB "
           "on GPU 0 (built in %.1f s, uploaded in %.1f s)\n", c.dim, c.n_heads,
           c.n_refiner_layers, c.n_refiner_layers, c.n_layers,
           og_zimage_cuda_weight_bytes(m) / 1048576.0, built * 1e-3, (now_ms() - t0) * 1e-3);

    /* Inputs: unit-variance latents and caption features (what the text encoder hands over is
     * of that order), model time 0.5. */
    const int64_t n_lat = (int64_t)c.in_channels * hw * hw, n_cap = (int64_t)text * c.cap_feat_dim;
    float *lat = malloc((size_t)n_lat * sizeof *lat), *cap = malloc((size_t)n_cap * sizeof *cap);
    float *serial = malloc((size_t)n_lat * sizeof *serial);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n_lat + n_cap; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const float v = (float)((s >> 11) * 0x1p-53 * 2.0 - 1.0) * 1.7320508f;
        if (i < n_lat)
            lat[i] = v;
        else
            cap[i - n_lat] = v;
    }

    double flops;
    TRY(og_zimage_flops(&c, hw, hw, text, &flops));
    step_job j = {.m = m, .w = w, .cfg = OG_PARALLEL_CONFIG_DEFAULT, .lat = lat, .cap = cap,
                  .hw = hw, .text = text, .n_out = n_lat, .warm = 1, .steps = steps,
                  .out = serial};
    double err;
    const double step = run_step(&j, "serial", NULL, &err);
    const double tf = flops / (step * 1e-3) / 1e12;
    printf("dit step (og_zimage_cuda_forward, %dx%d, %lld image + %lld caption tokens = S %lld, "
           "%d+%d+%d layers): %.1f ms median of %d, %.2f TFLOP, %.1f TFLOP/s\n", size, size,
           (long long)t.img_pad_len, (long long)t.cap_pad_len, (long long)t.seq_len,
           c.n_refiner_layers, c.n_refiner_layers, c.n_layers, step, steps, flops / 1e12, tf);
    if (peak_spec > 0)
        printf("dit MFU: %.1f%% of data-sheet peak (%.0f TFLOP/s)\n", 100 * tf / peak_spec,
               peak_spec);
    if (peak_meas > 0)
        printf("dit MFU vs measured GEMM peak: %.1f%%\n", 100 * tf / peak_meas);

    char lay_json[1024] = "";
    size_t at = 0;
    float *out = malloc((size_t)n_lat * sizeof *out);
    for (int i = 0; i < n_lay; i++) {
        char label[64];
        snprintf(label, sizeof label, "sp U%d R%d", lay[i].ulysses_degree, lay[i].ring_degree);
        step_job sj = j;
        sj.cfg = lay[i];
        sj.out = out;
        const double ms = run_step(&sj, label, serial, &err);
        printf("%s (%d ranks on GPU 0): %.1f ms median of %d, %.2fx the serial step, output vs "
               "serial %.2e\n", label, lay[i].ulysses_degree * lay[i].ring_degree, ms, steps,
               ms / step, err);
        at += (size_t)snprintf(lay_json + at, sizeof lay_json - at,
                               "%s{\"ulysses\": %d, \"ring\": %d, \"step_ms\": %.3f, "
                               "\"rel_err\": %.3g}", i ? ", " : "", lay[i].ulysses_degree,
                               lay[i].ring_degree, ms, err);
    }
    printf("json: {\"device\": \"%s\", \"size\": %d, \"layers\": %d, \"text\": %d, \"seq\": %lld, "
           "\"step_ms\": %.3f, \"step_tflop\": %.6f, \"gemm_peak_tflops\": %.1f, "
           "\"spec_peak_tflops\": %.0f, \"attention_tflops\": %.1f, \"layouts\": [%s]}\n", name,
           size, c.n_layers, text, (long long)t.seq_len, step, flops / 1e12, peak_meas, peak_spec,
           att, lay_json);
    free(out);
    free(lat);
    free(cap);
    free(serial);
    og_zimage_cuda_free(w);
    og_cuda_free(wctx);
    og_zimage_free(m);
    return 0;
}
