/* omnigen side of bench/zimage_step.sh: times one Z-Image DiT step (og_zimage_forward, serial,
 * CPU) on the model and inputs bench/zimage_step_ref.py wrote, and checks the output against the
 * reference's. --precision bf16 sets og_gemm_set_precision(OG_GEMM_BF16) before loading (the block
 * weights are rounded to bf16 once, GEMMs and attention products run on AMX); the default fp32 is
 * the exact path. Prints one JSON line: wall-clock median and minimum, and CPU seconds per step
 * (all threads), which a busy machine disturbs less.
 *
 *     zimage_step DIR [--threads N] [--runs K] [--precision fp32|bf16] [--reference FILE] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_util.h"
#include "core/arena.h"
#include "core/ops.h"
#include "core/threads.h"
#include "dit/zimage.h"
#include "io/weights.h"

static og_status get_f32(og_weights *w, const char *name, og_tensor *t)
{
    OG_TRY(og_weights_get(w, name, t));
    if (t->dtype != OG_F32)
        return og_fail(OG_ERR_SHAPE, "%s: expected f32", name);
    return OG_OK;
}

static og_status run(const char *dir, const char *ref_file, int threads, int runs, bool bf16)
{
    char path[4096];
    og_set_threads(threads);
    if (bf16)
        OG_TRY(og_gemm_set_precision(OG_GEMM_BF16));
    og_zimage *m;
    snprintf(path, sizeof path, "%s/transformer", dir);
    OG_TRY(og_zimage_load(&m, path));
    og_weights *in = NULL, *ref = NULL;
    og_tensor lat, cap, t, want;
    og_arena a = {0};
    float *out = NULL;
    double *times = calloc((size_t)runs, sizeof *times), cpu = 0;
    og_status st;
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if ((st = og_weights_open_file(&in, path)) || (st = get_f32(in, "latents", &lat)) ||
        (st = get_f32(in, "cap_feats", &cap)) || (st = get_f32(in, "t", &t)))
        goto done;
    snprintf(path, sizeof path, "%s/%s", dir, ref_file);
    if ((st = og_weights_open_file(&ref, path)) || (st = get_f32(ref, "out", &want)))
        goto done;
    int64_t h = lat.shape[1], w = lat.shape[2], L = cap.shape[0], n = og_tensor_numel(&lat);
    if ((st = og_arena_init(&a, og_zimage_scratch_bytes(m, h, w, L, NULL))))
        goto done;
    out = malloc((size_t)n * sizeof *out);
    const float tm = *(const float *)t.data;
    if ((st = og_zimage_forward(m, NULL, lat.data, h, w, tm, cap.data, L, out, &a))) /* warm-up */
        goto done;
    for (int r = 0; r < runs; r++) {
        double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        if ((st = og_zimage_forward(m, NULL, lat.data, h, w, tm, cap.data, L, out, &a)))
            goto done;
        times[r] = seconds(CLOCK_MONOTONIC) - t0;
        cpu += seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    double num = 0, den = 0;
    const float *ref_out = want.data;
    for (int64_t i = 0; i < n; i++) {
        double d = out[i] - (double)ref_out[i];
        num = d * d > num ? d * d : num;
        den = ref_out[i] * (double)ref_out[i] > den ? ref_out[i] * (double)ref_out[i] : den;
    }
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    printf("{\"impl\": \"omnigen\", \"precision\": \"%s\", \"threads\": %d, \"median_s\": "
           "%.4f, \"min_s\": %.4f, \"cpu_s_per_step\": %.4f, \"reference\": \"%s\", "
           "\"rel_err_vs_reference\": %.3g, \"scratch_mb\": %.1f}\n",
           bf16 ? "bf16" : "fp32", threads, times[runs / 2], times[0], cpu / runs, ref_file,
           den > 0 ? sqrt(num / den) : 0.0, a.cap / 1048576.0);
done:
    free(times);
    free(out);
    og_arena_free(&a);
    og_weights_free(in);
    og_weights_free(ref);
    og_zimage_free(m);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s DIR [--threads N] [--runs K] [--precision fp32|bf16] "
                "[--reference FILE]\n",
                argv[0]);
        return 2;
    }
    int threads = og_num_cores(), runs = 3;
    bool bf16 = false;
    const char *ref_file = "reference_out.safetensors";
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--threads") == 0) {
            threads = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--runs") == 0) {
            runs = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--reference") == 0) {
            ref_file = argv[i + 1];
        } else if (strcmp(argv[i], "--precision") == 0 &&
                   (strcmp(argv[i + 1], "fp32") == 0 || strcmp(argv[i + 1], "bf16") == 0)) {
            bf16 = strcmp(argv[i + 1], "bf16") == 0;
        } else {
            fprintf(stderr, "zimage_step: unknown option %s %s (--precision takes fp32 or bf16)\n",
                    argv[i], argv[i + 1]);
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    og_status st = run(argv[1], ref_file, threads, runs, bf16);
    if (st != OG_OK) {
        fprintf(stderr, "zimage_step: %s\n", og_error_message());
        return 1;
    }
    return 0;
}
