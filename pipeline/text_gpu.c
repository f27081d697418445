/* The pipeline's text encoder on a GPU (see text_gpu.h). Compiled everywhere; without CUDA it
 * only refuses. */
#include "pipeline/text_gpu.h"

#include "core/error.h"

#ifdef OG_HAVE_CUDA
#include <time.h>

#include "core/cuda/qwen3_cuda.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

og_status og_text_gpu_encode(const og_qwen3 *te, const char *devices, int count,
                             const int32_t *const *ids, const int *n, float *const *out)
{
    int list[64], listed = 1, max_tokens = 1;
    list[0] = 0;
    if (devices)
        OG_TRY(og_cuda_parse_devices(devices, list, 64, &listed));
    for (int i = 0; i < count; i++)
        max_tokens = n[i] > max_tokens ? n[i] : max_tokens;
    double t0 = now_s();
    og_qwen3_cuda *g;
    OG_TRY(og_qwen3_cuda_load(&g, te, list[0], max_tokens));
    double t1 = now_s();
    og_status st = OG_OK;
    for (int i = 0; i < count && st == OG_OK; i++)
        st = og_qwen3_cuda_encode(g, ids[i], n[i], out[i]);
    if (st == OG_OK)
        og_log(OG_LOG_INFO, "text encoder on GPU %d: upload %.2f s, %d prompt(s) %.2f s, peak "
               "%.0f MiB (given back)", list[0], t1 - t0, count, now_s() - t1,
               (double)og_cuda_peak_bytes(og_qwen3_cuda_ctx(g)) / (1 << 20));
    og_qwen3_cuda_free(g);
    return st == OG_OK ? OG_OK : og_fail_context(st, "encoding the prompt on GPU %d", list[0]);
}

#else

og_status og_text_gpu_encode(const og_qwen3 *te, const char *devices, int count,
                             const int32_t *const *ids, const int *n, float *const *out)
{
    (void)te, (void)devices, (void)count, (void)ids, (void)n, (void)out;
    return og_fail(OG_ERR_UNSUPPORTED, "this omnigen was built without CUDA (rebuild with the "
                                       "CUDA toolkit installed, or use --backend cpu)");
}

#endif
