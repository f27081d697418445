/* The pipeline's VAE decode on a GPU (see vae_gpu.h). Compiled everywhere; without CUDA it only
 * refuses. The CUDA path is compiled here and has never run (no GPU). */
#include "pipeline/vae_gpu.h"

#ifdef OG_HAVE_CUDA
#include <stdlib.h>
#include <time.h>

#include "core/cuda/vae_cuda.h"

struct og_vae_gpu {
    og_vae_cuda *w;
};

og_status og_vae_gpu_decode(og_vae_gpu **gpu, const og_vae *vae, const char *devices,
                            const float *latents, int64_t h, int64_t w, float *rgb)
{
    if (!*gpu) {
        int list[64], listed = 1;
        list[0] = 0;
        if (devices)
            OG_TRY(og_cuda_parse_devices(devices, list, 64, &listed));
        og_vae_gpu *g = calloc(1, sizeof *g);
        if (!g)
            return og_fail(OG_ERR_OOM, "cannot allocate the GPU VAE");
        og_status st = og_vae_cuda_upload(&g->w, list[0], vae);
        if (st != OG_OK) {
            free(g);
            return og_fail_context(st, "putting the VAE on GPU %d", list[0]);
        }
        *gpu = g;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    og_status st = og_vae_cuda_decode((*gpu)->w, latents, h, w, rgb);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st != OG_OK)
        return og_fail_context(st, "decoding on GPU %d", og_vae_cuda_device((*gpu)->w));
    og_log(OG_LOG_INFO, "VAE decode on GPU %d: %.2f s", og_vae_cuda_device((*gpu)->w),
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    return OG_OK;
}

void og_vae_gpu_free(og_vae_gpu *gpu)
{
    if (!gpu)
        return;
    og_vae_cuda_free(gpu->w);
    free(gpu);
}

#else

og_status og_vae_gpu_decode(og_vae_gpu **gpu, const og_vae *vae, const char *devices,
                            const float *latents, int64_t h, int64_t w, float *rgb)
{
    (void)gpu, (void)vae, (void)devices, (void)latents, (void)h, (void)w, (void)rgb;
    return og_fail(OG_ERR_UNSUPPORTED, "this omnigen was built without CUDA (rebuild with the "
                                       "CUDA toolkit installed, or use --backend cpu)");
}

void og_vae_gpu_free(og_vae_gpu *gpu) { (void)gpu; }

#endif
