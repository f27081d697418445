/* VAE decode timing and peak memory:
 *   bench_vae VAE_DIR H W [TILE OVERLAP] [--latents FILE] [--image FILE] [--runs N]
 * decodes latents of H x W (untiled, or tiled when TILE is given) and prints the wall time, the
 * CPU time and the process's peak resident memory. The latents are random unless --latents names
 * a raw f32 [C, H, W] file; --image writes the decoded [3, 8H, 8W] f32 image in [0, 1] raw;
 * --runs decodes N times and prints the median (bench/vae_decode.sh compares with diffusers). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_util.h"
#include "core/threads.h"
#include "vae/autoencoder_kl.h"

int main(int argc, char **argv)
{
    const char *lat_path = NULL, *img_path = NULL;
    int runs = 1, npos = 0;
    const char *pos[5];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--latents") == 0)
            lat_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--image") == 0)
            img_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[++i]);
        else if (npos < 5 && argv[i][0] != '-')
            pos[npos++] = argv[i];
        else
            npos = -1000;
    }
    if ((npos != 3 && npos != 5) || runs < 1) {
        fprintf(stderr,
                "usage: %s VAE_DIR H W [TILE OVERLAP] [--latents FILE] [--image FILE] "
                "[--runs N]\n",
                argv[0]);
        return 2;
    }
    og_vae *vae;
    if (og_vae_load(&vae, pos[0]) != OG_OK) {
        fprintf(stderr, "%s\n", og_error_message());
        return 1;
    }
    const int64_t h = atoll(pos[1]), w = atoll(pos[2]);
    const int64_t c = og_vae_latent_channels(vae), f = og_vae_scale_factor(vae);
    const bool tiled = npos == 5;
    og_vae_tiling tiling = {.tile = tiled ? atoll(pos[3]) : 0,
                            .overlap = tiled ? atoll(pos[4]) : 0};
    const size_t nlat = (size_t)(c * h * w), nimg = (size_t)(3 * f * h * f * w);
    float *lat = malloc(sizeof(float) * nlat), *rgb = malloc(sizeof(float) * nimg);
    double *wall = malloc(sizeof(double) * (size_t)runs);
    double *cpu = malloc(sizeof(double) * (size_t)runs);
    if (!lat || !rgb || !wall || !cpu) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < nlat; i++)
        lat[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    if (lat_path && raw_io(lat_path, lat, nlat, false))
        return 1;
    for (int r = 0; r < runs; r++) {
        const double w0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        og_status s = og_vae_decode(vae, lat, h, w, rgb, tiled ? &tiling : NULL);
        wall[r] = seconds(CLOCK_MONOTONIC) - w0;
        cpu[r] = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (s != OG_OK) {
            fprintf(stderr, "%s\n", og_error_message());
            return 1;
        }
    }
    if (img_path && raw_io(img_path, rgb, nimg, true))
        return 1;
    qsort(wall, (size_t)runs, sizeof *wall, cmp_double);
    qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("decode %lldx%lld latents -> %lldx%lld image%s: %.2f s (median of %d), %.2f CPU-s, "
           "peak RSS %.0f MiB, %d threads\n",
           (long long)h, (long long)w, (long long)(f * h), (long long)(f * w),
           tiled ? " (tiled)" : "", wall[runs / 2], runs, cpu[runs / 2],
           (double)ru.ru_maxrss / 1024.0, og_get_threads());
    free(lat);
    free(rgb);
    free(wall);
    free(cpu);
    og_vae_free(vae);
    return 0;
}
