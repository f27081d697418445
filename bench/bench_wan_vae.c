/* Wan VAE decode timing and peak memory:
 *   bench_wan_vae VAE_DIR T H W [--latents FILE] [--video FILE] [--runs N]
 * decodes VAE inputs z [z_dim, T, H, W] and prints the wall time, the CPU time, the process's
 * peak resident memory and og_wan_vae_plan_for's arena size. z is random unless --latents names a
 * raw f32 file of it; --video writes the decoded [3, F, 8H, 8W] f32 video in [-1, 1] raw; --runs
 * decodes N times and prints the median (bench/wan_vae_decode.sh compares with diffusers). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_util.h"
#include "core/threads.h"
#include "vae/autoencoder_kl_wan.h"

int main(int argc, char **argv)
{
    const char *lat_path = NULL, *vid_path = NULL;
    int runs = 1, npos = 0;
    const char *pos[4];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--latents") == 0)
            lat_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--video") == 0)
            vid_path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[++i]);
        else if (npos < 4 && argv[i][0] != '-')
            pos[npos++] = argv[i];
        else
            npos = -1000;
    }
    if (npos != 4 || runs < 1) {
        fprintf(stderr, "usage: %s VAE_DIR T H W [--latents FILE] [--video FILE] [--runs N]\n",
                argv[0]);
        return 2;
    }
    og_wan_vae *vae;
    if (og_wan_vae_load(&vae, pos[0]) != OG_OK) {
        fprintf(stderr, "%s\n", og_error_message());
        return 1;
    }
    const int64_t t = atoll(pos[1]), h = atoll(pos[2]), w = atoll(pos[3]);
    const int64_t c = og_wan_vae_z_dim(vae), f = og_wan_vae_scale_factor(vae);
    const int64_t F = og_wan_vae_frames(vae, t);
    og_wan_vae_plan plan;
    if (t < 1 || og_wan_vae_plan_for(vae, h, w, &plan) != OG_OK) {
        fprintf(stderr, "bad size: %s\n", og_error_message());
        return 2;
    }
    const size_t nlat = (size_t)(c * t * h * w), nvid = (size_t)(3 * F * f * h * f * w);
    float *lat = malloc(sizeof(float) * nlat), *video = malloc(sizeof(float) * nvid);
    double *wall = malloc(sizeof(double) * (size_t)runs);
    double *cpu = malloc(sizeof(double) * (size_t)runs);
    if (!lat || !video || !wall || !cpu) {
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
        og_status s = og_wan_vae_decode(vae, lat, c, t, h, w, video);
        wall[r] = seconds(CLOCK_MONOTONIC) - w0;
        cpu[r] = seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (s != OG_OK) {
            fprintf(stderr, "%s\n", og_error_message());
            return 1;
        }
    }
    if (vid_path && raw_io(vid_path, video, nvid, true))
        return 1;
    qsort(wall, (size_t)runs, sizeof *wall, cmp_double);
    qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("decode [%lld, %lld, %lld, %lld] -> %lld frames of %lldx%lld: %.2f s (median of %d), "
           "%.2f CPU-s, peak RSS %.0f MiB, arena %.0f MiB, %d threads\n",
           (long long)c, (long long)t, (long long)h, (long long)w, (long long)F,
           (long long)(f * h), (long long)(f * w), wall[runs / 2], runs, cpu[runs / 2],
           (double)ru.ru_maxrss / 1024.0, (double)plan.total / 1048576.0, og_get_threads());
    free(lat);
    free(video);
    free(wall);
    free(cpu);
    og_wan_vae_free(vae);
    return 0;
}
