/* The in-process communicator on device memory: ranks that are threads sharing one GPU (or the
 * GPUs of one process, through unified addressing) move bytes with device-to-device copies on the
 * copying thread's own stream, so transfers overlap the kernels on the ranks' compute streams.
 * The copy direction is inferred (cudaMemcpyDefault), so host buffers may travel too (the
 * pipeline's CFG exchange of host velocities). */
#include <stdint.h>

#include "core/cuda/cuda_internal.h"
#include "parallel/comm.h"

static og_status device_copy(void *dst, const void *src, size_t bytes, void *user)
{
    OG_CUDA_TRY(cudaSetDevice((int)(intptr_t)user));
    /* D2D cudaMemcpy may return before the copy ends; the communicator needs it finished. */
    OG_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cudaStreamPerThread));
    OG_CUDA_TRY(cudaStreamSynchronize(cudaStreamPerThread));
    return OG_OK;
}

void og_cuda_inproc_copy(int device, struct og_inproc_copy *out)
{
    *out = (og_inproc_copy){.mem = OG_MEM_DEVICE, .copy = device_copy,
                            .user = (void *)(intptr_t)device};
}
