/* VAE decode timing and peak memory: bench_vae VAE_DIR H W [TILE OVERLAP]
 * decodes random latents of H x W (untiled, or tiled when TILE is given) and prints the wall
 * time and the process's peak resident memory. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "core/threads.h"
#include "vae/autoencoder_kl.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: %s VAE_DIR H W [TILE OVERLAP]\n", argv[0]);
        return 2;
    }
    og_vae *vae;
    if (og_vae_load(&vae, argv[1]) != OG_OK) {
        fprintf(stderr, "%s\n", og_error_message());
        return 1;
    }
    const int64_t h = atoll(argv[2]), w = atoll(argv[3]);
    const int64_t c = og_vae_latent_channels(vae), f = og_vae_scale_factor(vae);
    og_vae_tiling tiling = {.tile = argc == 6 ? atoll(argv[4]) : 0,
                            .overlap = argc == 6 ? atoll(argv[5]) : 0};
    float *lat = malloc(sizeof(float) * (size_t)(c * h * w));
    float *rgb = malloc(sizeof(float) * (size_t)(3 * f * h * f * w));
    srand(1);
    for (int64_t i = 0; i < c * h * w; i++)
        lat[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    og_status s = og_vae_decode(vae, lat, h, w, rgb, argc == 6 ? &tiling : NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (s != OG_OK) {
        fprintf(stderr, "%s\n", og_error_message());
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("decode %lldx%lld latents -> %lldx%lld image%s: %.2f s, peak RSS %.0f MiB, %d threads\n",
           (long long)h, (long long)w, (long long)(f * h), (long long)(f * w),
           argc == 6 ? " (tiled)" : "",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
           (double)ru.ru_maxrss / 1024.0, og_get_threads());
    free(lat);
    free(rgb);
    og_vae_free(vae);
    return 0;
}
