/* GPU benchmark: cuBLASLt GEMM TFLOP/s against the best measured large GEMM, flash attention
 * TFLOP/s, and one Z-Image DiT step at full size (dim 3840, 30 layers + 2 + 2 refiner layers, 30
 * heads, 1024x1024, random bf16 weights) assembled from the og_cuda ops, with its MFU. The step
 * is the block op sequence of the reference transformer (see docs/cuda.md), run on device memory
 * reserved up front; embedders and unpatchify (tiny) are included, the text encoder is not.
 *
 *   bench_cuda [--size 1024] [--layers 30] [--text 128] [--steps 5] [--peak TFLOPS] [--quick]
 *
 * Prints one "name: value" line per figure and a final "json: {...}" line for bench/gpu/run.sh. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda/cuda_backend.h"

typedef struct {
    int dim, heads, hd, ffn, layers, refiners, tdim, cap_dim, patch_ch;
} zcfg;

typedef struct {
    og_bf16 *qkv, *out, *w13, *w2, *ada; /* ada: [4*dim, tdim] (modulated blocks only) */
    float *ada_b, *nq, *nk, *n1, *n2, *f1, *f2;
} zlayer;

typedef struct {
    og_cuda_ctx *ctx;
    zcfg c;
    int64_t img, cap, S;
    zlayer *L;  /* refiners (noise, then context), then main layers */
    og_bf16 *x_emb, *cap_emb, *fin_ada, *fin_lin, *tvec, *latent, *capfeat, *out;
    float *cap_norm, *fin_ada_b, *cos_t, *sin_t, *mods;
    og_bf16 *x, *h, *qkv, *o, *gu, *u;
    double flops; /* counted while the step runs */
} zbench;

/* Mean milliseconds of `iters` back-to-back runs of fn on ctx's stream after `warm` unmeasured. */
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
    if (og_cuda_sync(ctx) != OG_OK) {
        fprintf(stderr, "bench_cuda: %s\n", og_error_message());
        exit(1);
    }
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return ms / iters;
}

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

static void *dalloc(og_cuda_ctx *ctx, size_t bytes)
{
    void *p = og_arena_alloc(og_cuda_arena(ctx), bytes);
    if (!p)
        die("device arena");
    return p;
}

/* Fills device bf16 (or f32) memory with small random values from one reusable host pattern:
 * the values do not change the speed, and generating 12 GB on the host would dominate. */
static float *g_pattern;
static size_t g_pattern_n;

static void *drand(og_cuda_ctx *ctx, size_t n, og_dtype t, float scale)
{
    void *p = dalloc(ctx, n * og_dtype_size(t));
    for (size_t i = 0; i < n; i += g_pattern_n) {
        size_t m = n - i < g_pattern_n ? n - i : g_pattern_n;
        float *tmp = malloc(m * sizeof *tmp);
        for (size_t j = 0; j < m; j++)
            tmp[j] = g_pattern[j] * scale;
        TRY(og_cuda_upload(ctx, (char *)p + i * og_dtype_size(t), t, tmp, OG_F32, m));
        free(tmp);
    }
    return p;
}

static void linear(zbench *b, void *y, og_dtype yt, const og_bf16 *x, int64_t M, int64_t K,
                   const og_bf16 *w, int64_t N, const void *bias)
{
    TRY(og_cuda_linear(b->ctx, y, yt, x, M, K, w, N, bias, OG_CUDA_ACT_NONE));
    b->flops += 2.0 * M * N * K;
}

/* One Z-Image transformer block on rows [r0, r0 + n) of b->x; modulated blocks take their
 * adaLN vectors from layer weights applied to the timestep vector. */
static void zblock(zbench *b, const zlayer *w, int64_t r0, int64_t n, bool modulated)
{
    og_cuda_ctx *ctx = b->ctx;
    const zcfg *c = &b->c;
    const int64_t D = c->dim;
    og_bf16 *x = b->x + r0 * D;
    float *scale_msa = NULL, *gate_msa = NULL, *scale_mlp = NULL, *gate_mlp = NULL;
    if (modulated) {
        linear(b, b->mods, OG_F32, b->tvec, 1, c->tdim, w->ada, 4 * D, w->ada_b);
        scale_msa = b->mods, gate_msa = b->mods + D, scale_mlp = b->mods + 2 * D,
        gate_mlp = b->mods + 3 * D;
    }
    TRY(og_cuda_rmsnorm(ctx, b->h, x, w->n1, n, 1, D, D, 1e-5f, scale_msa, NULL));
    linear(b, b->qkv, OG_BF16, b->h, n, D, w->qkv, 3 * D, NULL);
    TRY(og_cuda_rmsnorm(ctx, b->qkv, b->qkv, w->nq, n, c->heads, c->hd, 3 * D, 1e-5f, NULL, NULL));
    TRY(og_cuda_rmsnorm(ctx, b->qkv + D, b->qkv + D, w->nk, n, c->heads, c->hd, 3 * D, 1e-5f,
                        NULL, NULL));
    const float *ct = b->cos_t + r0 * (c->hd / 2), *st = b->sin_t + r0 * (c->hd / 2);
    TRY(og_cuda_rope(ctx, b->qkv, n, c->heads, c->hd, 3 * D, ct, st, true));
    TRY(og_cuda_rope(ctx, b->qkv + D, n, c->heads, c->hd, 3 * D, ct, st, true));
    og_attn_desc ad = {.sq = n, .skv = n, .heads = c->heads, .head_dim = c->hd,
                       .q_stride = 3 * D, .k_stride = 3 * D, .v_stride = 3 * D, .o_stride = D,
                       .scale = 1.0f / sqrtf((float)c->hd)};
    TRY(og_cuda_attention(ctx, &ad, b->qkv, b->qkv + D, b->qkv + 2 * D, b->o, OG_BF16, NULL));
    b->flops += 4.0 * n * n * c->heads * c->hd;
    linear(b, b->h, OG_BF16, b->o, n, D, w->out, D, NULL);
    TRY(og_cuda_rmsnorm(ctx, b->h, b->h, w->n2, n, 1, D, D, 1e-5f, NULL, NULL));
    TRY(og_cuda_gated_residual(ctx, x, b->h, gate_msa, modulated, n, D));
    TRY(og_cuda_rmsnorm(ctx, b->h, x, w->f1, n, 1, D, D, 1e-5f, scale_mlp, NULL));
    linear(b, b->gu, OG_BF16, b->h, n, D, w->w13, 2 * (int64_t)c->ffn, NULL);
    TRY(og_cuda_swiglu(ctx, b->u, b->gu, b->gu + c->ffn, n, c->ffn, 2 * (int64_t)c->ffn));
    linear(b, b->h, OG_BF16, b->u, n, c->ffn, w->w2, D, NULL);
    TRY(og_cuda_rmsnorm(ctx, b->h, b->h, w->f2, n, 1, D, D, 1e-5f, NULL, NULL));
    TRY(og_cuda_gated_residual(ctx, x, b->h, gate_mlp, modulated, n, D));
}

/* One DiT forward: embed, refine image and caption tokens, 30 joint blocks, final layer. */
static void zstep(void *arg)
{
    zbench *b = arg;
    const zcfg *c = &b->c;
    const int64_t D = c->dim;
    b->flops = 0;
    linear(b, b->x, OG_BF16, b->latent, b->img, c->patch_ch, b->x_emb, D, NULL);
    TRY(og_cuda_rmsnorm(b->ctx, b->capfeat, b->capfeat, b->cap_norm, b->cap, 1, c->cap_dim,
                        c->cap_dim, 1e-5f, NULL, NULL));
    linear(b, b->x + b->img * D, OG_BF16, b->capfeat, b->cap, c->cap_dim, b->cap_emb, D, NULL);
    for (int i = 0; i < c->refiners; i++)
        zblock(b, &b->L[i], 0, b->img, true);
    for (int i = 0; i < c->refiners; i++)
        zblock(b, &b->L[c->refiners + i], b->img, b->cap, false);
    for (int i = 0; i < c->layers; i++)
        zblock(b, &b->L[2 * c->refiners + i], 0, b->S, true);
    linear(b, b->mods, OG_F32, b->tvec, 1, c->tdim, b->fin_ada, D, b->fin_ada_b);
    TRY(og_cuda_layernorm(b->ctx, b->h, b->x, NULL, NULL, b->img, D, D, 1e-6f, b->mods, NULL));
    linear(b, b->out, OG_BF16, b->h, b->img, D, b->fin_lin, c->patch_ch, NULL);
}

static size_t layer_bytes(const zcfg *c, bool modulated)
{
    size_t D = (size_t)c->dim, w = 4 * D * D + 3 * D * (size_t)c->ffn;
    if (modulated)
        w += 4 * D * (size_t)c->tdim;
    return w * 2 + (modulated ? 4 * D * 4 : 0) + (2 * (size_t)c->hd + 4 * D) * 4 + 16 * 256;
}

static void layer_init(og_cuda_ctx *ctx, const zcfg *c, zlayer *l, bool modulated)
{
    size_t D = (size_t)c->dim, F = (size_t)c->ffn;
    float ws = 1.0f / sqrtf((float)D);
    l->qkv = drand(ctx, 3 * D * D, OG_BF16, ws);
    l->out = drand(ctx, D * D, OG_BF16, ws);
    l->w13 = drand(ctx, 2 * F * D, OG_BF16, ws);
    l->w2 = drand(ctx, D * F, OG_BF16, 1.0f / sqrtf((float)F));
    if (modulated) {
        l->ada = drand(ctx, 4 * D * (size_t)c->tdim, OG_BF16, 0.05f);
        l->ada_b = drand(ctx, 4 * D, OG_F32, 0.05f);
    }
    l->nq = drand(ctx, (size_t)c->hd, OG_F32, 1.0f);
    l->nk = drand(ctx, (size_t)c->hd, OG_F32, 1.0f);
    l->n1 = drand(ctx, D, OG_F32, 1.0f);
    l->n2 = drand(ctx, D, OG_F32, 1.0f);
    l->f1 = drand(ctx, D, OG_F32, 1.0f);
    l->f2 = drand(ctx, D, OG_F32, 1.0f);
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
    TRY(og_cuda_linear(p->ctx, p->y, OG_BF16, p->x, p->M, p->K, p->w, p->N, NULL, OG_CUDA_ACT_NONE));
}

/* TFLOP/s of back-to-back GEMMs of one shape. */
static double gemm_tflops(og_cuda_ctx *ctx, int64_t M, int64_t N, int64_t K, int iters)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    probe p = {.ctx = ctx, .M = M, .N = N, .K = K,
               .x = drand(ctx, (size_t)(M * K), OG_BF16, 1.0f),
               .w = drand(ctx, (size_t)(N * K), OG_BF16, 0.02f),
               .y = dalloc(ctx, (size_t)(M * N) * 2)};
    double ms = time_ms(ctx, run_gemm, &p, 3, iters);
    og_arena_release(og_cuda_arena(ctx), mark);
    return 2.0 * M * N * K / (ms * 1e-3) / 1e12;
}

static void run_attention(void *arg)
{
    probe *p = arg;
    int64_t hd = (int64_t)p->d.heads * p->d.head_dim;
    TRY(og_cuda_attention(p->ctx, &p->d, p->x, p->x + hd, p->x + 2 * hd, p->y, OG_BF16, p->lse));
}

/* TFLOP/s of self-attention over S tokens read from a fused QKV buffer, as the DiT runs it. */
static double attention_tflops(og_cuda_ctx *ctx, int64_t S, int H, int D, int iters)
{
    size_t mark = og_arena_mark(og_cuda_arena(ctx));
    size_t n = (size_t)S * H * D;
    int64_t st = 3LL * H * D;
    probe p = {.ctx = ctx, .x = drand(ctx, 3 * n, OG_BF16, 1.0f), .y = dalloc(ctx, n * 2),
               .lse = dalloc(ctx, (size_t)S * H * 4),
               .d = {.sq = S, .skv = S, .heads = H, .head_dim = D, .q_stride = st,
                     .k_stride = st, .v_stride = st, .o_stride = (int64_t)H * D,
                     .scale = 1.0f / sqrtf((float)D)}};
    double ms = time_ms(ctx, run_attention, &p, 1, iters);
    og_arena_release(og_cuda_arena(ctx), mark);
    return 4.0 * S * S * H * D / (ms * 1e-3) / 1e12;
}

/* Dense bf16 tensor-core peak from the data sheet, for MFU; 0 when the GPU is not listed. */
static double spec_peak(const char *name)
{
    if (strstr(name, "H100 PCIe"))
        return 756;
    if (strstr(name, "H100") || strstr(name, "H200") || strstr(name, "H800") || strstr(name, "H20 "))
        return strstr(name, "H20 ") ? 148 : 989;
    if (strstr(name, "A100") || strstr(name, "A800"))
        return 312;
    if (strstr(name, "L40S"))
        return 362;
    return 0;
}

int main(int argc, char **argv)
{
    int size = 1024, steps = 5, text = 128;
    double peak_arg = 0;
    zcfg c = {.dim = 3840, .heads = 30, .hd = 128, .ffn = 10240, .layers = 30, .refiners = 2,
              .tdim = 256, .cap_dim = 2560, .patch_ch = 64};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            c.layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--text") && i + 1 < argc)
            text = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peak") && i + 1 < argc)
            peak_arg = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            size = 256, c.layers = 2, steps = 2;
        else {
            fprintf(stderr, "usage: bench_cuda [--size N] [--layers N] [--text N] [--steps N] "
                            "[--peak TFLOPS] [--quick]\n");
            return 2;
        }
    }
    if (og_cuda_device_count() == 0) {
        fprintf(stderr, "bench_cuda: no CUDA device; this benchmark needs a GPU\n");
        return 77;
    }
    char name[256];
    og_cuda_device_name(0, name, sizeof name);
    double peak_spec = peak_arg > 0 ? peak_arg : spec_peak(name);
    printf("device: %s\n", name);

    zbench b = {.c = c};
    TRY(og_cuda_init(0, &b.ctx));
    og_cuda_ctx *ctx = b.ctx;
    /* Latent side = size/8, patch 2: (size/16)^2 image tokens; caption padded to 32. */
    b.img = (int64_t)(size / 16) * (size / 16);
    b.cap = (text + 31) / 32 * 32;
    b.S = b.img + b.cap;
    const int64_t D = c.dim, S = b.S;
    int nl = 2 * c.refiners + c.layers;
    size_t weights = (size_t)c.refiners * (layer_bytes(&c, true) + layer_bytes(&c, false)) +
                     (size_t)c.layers * layer_bytes(&c, true) +
                     2 * ((size_t)c.patch_ch * D * 2 + (size_t)c.cap_dim * D + D * (size_t)c.tdim) +
                     (size_t)(D + c.cap_dim) * 4 + 64 * 256;
    size_t acts = (size_t)S * D * 2 * 3 + (size_t)S * 3 * D * 2 + (size_t)S * 2 * c.ffn * 2 +
                  (size_t)S * c.ffn * 2 + (size_t)S * c.hd * 4 + (size_t)b.cap * c.cap_dim * 2 +
                  (size_t)b.img * c.patch_ch * 4 + 4 * D * 4 + 32 * 256;
    /* The GEMM and attention probes below reuse the space the step's activations will take. */
    size_t probe = (size_t)16384 * 16384 * 2 * 3 + 64 * 256;
    size_t plan = weights + (acts > probe ? acts : probe);
    char what[128];
    snprintf(what, sizeof what, "Z-Image %dx%d (%d layers)", size, size, c.layers);
    TRY(og_cuda_reserve(ctx, plan, what));
    printf("memory plan: weights %.0f MiB + activations %.0f MiB\n", weights / 1048576.0,
           (plan - weights) / 1048576.0);

    g_pattern_n = (size_t)1 << 22;
    g_pattern = malloc(g_pattern_n * sizeof *g_pattern);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < g_pattern_n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        g_pattern[i] = (float)((s >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
    }

    /* ---- GEMM and attention probes ---- */
    double peak_meas = 0;
    const int64_t sq[][3] = {{8192, 8192, 8192}, {16384, 16384, 8192}, {4096, 16384, 16384}};
    for (int i = 0; i < 3; i++) {
        double t = gemm_tflops(ctx, sq[i][0], sq[i][1], sq[i][2], 10);
        printf("gemm %lldx%lldx%lld: %.1f TFLOP/s\n", (long long)sq[i][0], (long long)sq[i][1],
               (long long)sq[i][2], t);
        peak_meas = t > peak_meas ? t : peak_meas;
    }
    printf("gemm measured peak: %.1f TFLOP/s (data-sheet dense bf16: %.0f)\n", peak_meas, peak_spec);
    const struct { const char *name; int64_t M, N, K; } dit_gemms[] = {
        {"qkv", S, 3 * D, D}, {"attn out", S, D, D}, {"ffn w1|w3", S, 2LL * c.ffn, D},
        {"ffn w2", S, D, c.ffn}};
    double dit_gemm[4];
    for (int i = 0; i < 4; i++) {
        dit_gemm[i] = gemm_tflops(ctx, dit_gemms[i].M, dit_gemms[i].N, dit_gemms[i].K, 20);
        printf("gemm %s %lldx%lldx%lld: %.1f TFLOP/s (%.0f%% of measured peak)\n",
               dit_gemms[i].name, (long long)dit_gemms[i].M, (long long)dit_gemms[i].N,
               (long long)dit_gemms[i].K, dit_gemm[i], 100 * dit_gemm[i] / peak_meas);
    }
    double att = attention_tflops(ctx, S, c.heads, c.hd, 10);
    printf("attention S=%lld H=%d D=%d: %.1f TFLOP/s\n", (long long)S, c.heads, c.hd, att);

    /* ---- the DiT step ---- */
    b.L = calloc((size_t)nl, sizeof *b.L);
    for (int i = 0; i < nl; i++)
        layer_init(ctx, &c, &b.L[i], i < c.refiners || i >= 2 * c.refiners);
    b.x_emb = drand(ctx, (size_t)c.patch_ch * D, OG_BF16, 0.1f);
    b.cap_emb = drand(ctx, (size_t)c.cap_dim * D, OG_BF16, 0.02f);
    b.cap_norm = drand(ctx, (size_t)c.cap_dim, OG_F32, 1.0f);
    b.fin_ada = drand(ctx, D * (size_t)c.tdim, OG_BF16, 0.05f);
    b.fin_ada_b = drand(ctx, (size_t)D, OG_F32, 0.05f);
    b.fin_lin = drand(ctx, D * (size_t)c.patch_ch, OG_BF16, 0.02f);
    b.tvec = drand(ctx, (size_t)c.tdim, OG_BF16, 1.0f);
    b.latent = drand(ctx, (size_t)(b.img * c.patch_ch), OG_BF16, 1.0f);
    b.capfeat = drand(ctx, (size_t)(b.cap * c.cap_dim), OG_BF16, 1.0f);
    b.out = dalloc(ctx, (size_t)(b.img * c.patch_ch) * 2);
    b.mods = dalloc(ctx, 4 * (size_t)D * 4);
    b.x = dalloc(ctx, (size_t)(S * D) * 2);
    b.h = dalloc(ctx, (size_t)(S * D) * 2);
    b.o = dalloc(ctx, (size_t)(S * D) * 2);
    b.qkv = dalloc(ctx, (size_t)(S * 3 * D) * 2);
    b.gu = dalloc(ctx, (size_t)(S * 2 * c.ffn) * 2);
    b.u = dalloc(ctx, (size_t)(S * c.ffn) * 2);
    /* RoPE tables with Z-Image's positions: image (cap+1, h, w), caption (1+i, 0, 0). */
    int64_t *pos = calloc((size_t)S * 3, sizeof *pos);
    int side = size / 16;
    for (int64_t t = 0; t < b.img; t++)
        pos[t * 3] = b.cap + 1, pos[t * 3 + 1] = t / side, pos[t * 3 + 2] = t % side;
    for (int64_t t = 0; t < b.cap; t++)
        pos[(b.img + t) * 3] = 1 + t;
    const int axes[3] = {32, 48, 48};
    size_t nt = (size_t)S * (c.hd / 2);
    float *ct = malloc(nt * 4), *st = malloc(nt * 4);
    og_rope_table(ct, st, pos, S, 3, axes, 256.0);
    b.cos_t = dalloc(ctx, nt * 4);
    b.sin_t = dalloc(ctx, nt * 4);
    TRY(og_cuda_upload(ctx, b.cos_t, OG_F32, ct, OG_F32, nt));
    TRY(og_cuda_upload(ctx, b.sin_t, OG_F32, st, OG_F32, nt));
    free(pos), free(ct), free(st);

    double mean = time_ms(ctx, zstep, &b, 1, steps); /* the warm-up builds the GEMM plans */
    double tf = b.flops / (mean * 1e-3) / 1e12; /* zstep counts the FLOPs of one step */
    printf("dit step (Z-Image %dx%d, S=%lld, %d+%d+%d layers, random weights): %.1f ms, "
           "%.2f TFLOP, %.1f TFLOP/s\n", size, size, (long long)S, c.refiners, c.refiners,
           c.layers, mean, b.flops / 1e12, tf);
    if (peak_spec > 0)
        printf("dit MFU: %.1f%% of data-sheet peak (%.0f TFLOP/s)\n", 100 * tf / peak_spec, peak_spec);
    printf("dit MFU vs measured GEMM peak: %.1f%%\n", 100 * tf / peak_meas);
    printf("memory peak on GPU 0: %.0f MiB\n", og_cuda_peak_bytes(ctx) / 1048576.0);
    printf("json: {\"device\": \"%s\", \"size\": %d, \"layers\": %d, \"seq\": %lld, "
           "\"step_ms\": %.3f, \"step_tflop\": %.4f, \"gemm_peak_tflops\": %.1f, "
           "\"spec_peak_tflops\": %.0f, \"attention_tflops\": %.1f}\n", name, size, c.layers,
           (long long)S, mean, b.flops / 1e12, peak_meas, peak_spec, att);
    free(b.L);
    free(g_pattern);
    og_cuda_free(ctx);
    return 0;
}
