/* The in-process communicator on device memory: ranks that are threads sharing one GPU (or the
 * GPUs of one process, through unified addressing) move bytes with device-to-device copies on the
 * copying thread's own stream, so transfers overlap the kernels on the ranks' compute streams.
 * The copy direction is inferred (cudaMemcpyDefault), so host buffers may travel too (the
 * pipeline's CFG exchange of host velocities). */
#include <stdint.h>

#include "core/cuda/cuda_internal.h"
#include "parallel/comm.h"

/* Runs on the rank thread that completes the transfer (in a ring step, after that rank queued
 * its attention: the copy overlaps it). The thread's current device is its rank's, which its
 * later launches need, so it is restored after the copy (ranks on other GPUs of the process). */
static og_status device_copy(void *dst, const void *src, size_t bytes, void *user)
{
    int own;
    OG_CUDA_TRY(cudaGetDevice(&own));
    OG_CUDA_TRY(cudaSetDevice((int)(intptr_t)user));
    /* D2D cudaMemcpy may return before the copy ends; the communicator needs it finished. */
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cudaStreamPerThread);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(cudaStreamPerThread);
    const cudaError_t back = cudaSetDevice(own);
    OG_CUDA_TRY(e);
    OG_CUDA_TRY(back);
    return OG_OK;
}

void og_cuda_inproc_copy(int device, struct og_inproc_copy *out)
{
    *out = (og_inproc_copy){.mem = OG_MEM_DEVICE, .copy = device_copy,
                            .user = (void *)(intptr_t)device};
}
