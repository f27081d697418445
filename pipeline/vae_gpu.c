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

/* The weights on list entry 0 of devices (GPU 0 when NULL). */
static og_status upload(og_vae_gpu **gpu, const og_vae *vae, const char *devices)
{
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
    return OG_OK;
}

og_status og_vae_gpu_decode(og_vae_gpu **gpu, og_vae *vae, const char *devices,
                            const float *latents, int64_t h, int64_t w, float *rgb)
{
    og_status st = *gpu ? OG_OK : upload(gpu, vae, devices);
    if (st == OG_OK) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        st = og_vae_cuda_decode((*gpu)->w, latents, h, w, rgb);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (st == OG_OK) {
            og_log(OG_LOG_INFO, "VAE decode on GPU %d: %.2f s", og_vae_cuda_device((*gpu)->w),
                   (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
            return OG_OK;
        }
    }
    /* Too large for this GPU (or this build): the denoised latents are worth keeping. */
    if (st != OG_ERR_OOM && st != OG_ERR_UNSUPPORTED)
        return og_fail_context(st, "decoding the VAE on the GPU");
    og_log(OG_LOG_WARN, "%s; decoding on the CPU instead", og_error_message());
    og_vae_tiling tiling = OG_VAE_TILING_DEFAULT;
    return og_vae_decode(vae, latents, h, w, rgb, &tiling);
}

void og_vae_gpu_free(og_vae_gpu *gpu)
{
    if (!gpu)
        return;
    og_vae_cuda_free(gpu->w);
    free(gpu);
}

#else

og_status og_vae_gpu_decode(og_vae_gpu **gpu, og_vae *vae, const char *devices,
                            const float *latents, int64_t h, int64_t w, float *rgb)
{
    (void)gpu, (void)vae, (void)devices, (void)latents, (void)h, (void)w, (void)rgb;
    return og_fail(OG_ERR_UNSUPPORTED, "this omnigen was built without CUDA (rebuild with the "
                                       "CUDA toolkit installed, or use --backend cpu)");
}

void og_vae_gpu_free(og_vae_gpu *gpu) { (void)gpu; }

#endif
