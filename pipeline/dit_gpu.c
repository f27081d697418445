/* The pipeline's DiT on GPUs (see dit_gpu.h): per-GPU weights, per-rank contexts, the device
 * communicators for the ranks (in-process copies or NCCL). Compiled everywhere; without CUDA it
 * only refuses. The CUDA and NCCL paths are compiled here and have never run (no GPU). */
#include "pipeline/dit_gpu.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef OG_HAVE_CUDA
#include <cuda_runtime.h>

#include "core/cuda/zimage_cuda.h"
#include "parallel/comm.h"

#define OG_MAX_GPUS 64

struct og_dit_gpus {
    const og_zimage *m;
    int count, devices[OG_MAX_GPUS];
    og_cuda_ctx *ctx[OG_MAX_GPUS]; /* holds the weights of that GPU */
    og_zimage_cuda *w[OG_MAX_GPUS];
};

struct og_dit_rank {
    og_cuda_ctx *ctx;
    const og_zimage_cuda *w;
};

og_status og_dit_gpus_check(const char *devices)
{
    int list[OG_MAX_GPUS], count;
    if (og_cuda_device_count() == 0)
        return og_fail(OG_ERR_DEVICE, "--backend cuda: no CUDA GPU is visible on this machine "
                                      "(use --backend cpu)");
    return devices ? og_cuda_parse_devices(devices, list, OG_MAX_GPUS, &count) : OG_OK;
}

/* The device numbers of a --devices list, or of every visible GPU. */
static og_status list_devices(const char *devices, int *list, int *count)
{
    if (devices)
        return og_cuda_parse_devices(devices, list, OG_MAX_GPUS, count);
    *count = og_cuda_device_count();
    if (*count == 0)
        return og_fail(OG_ERR_DEVICE, "no CUDA GPU is visible on this machine (use --backend "
                                      "cpu)");
    *count = *count > OG_MAX_GPUS ? OG_MAX_GPUS : *count;
    for (int i = 0; i < *count; i++)
        list[i] = i;
    return OG_OK;
}

og_status og_dit_gpus_listed(const char *devices, int *count)
{
    int list[OG_MAX_GPUS];
    return list_devices(devices, list, count);
}

og_status og_dit_gpus_pick(const char *devices, int pick, int *device, char *bus, int cap)
{
    int list[OG_MAX_GPUS], count;
    OG_TRY(list_devices(devices, list, &count));
    *device = list[pick % count];
    cudaError_t rc = cudaDeviceGetPCIBusId(bus, cap, *device);
    if (rc != cudaSuccess)
        return og_fail(OG_ERR_DEVICE, "GPU %d: cannot read its PCI bus id: %s", *device,
                       cudaGetErrorString(rc));
    return OG_OK;
}

og_status og_dit_gpus_load(og_dit_gpus **out, const og_zimage *m, const char *devices)
{
    *out = NULL;
    og_dit_gpus *g = calloc(1, sizeof *g);
    if (!g)
        return og_fail(OG_ERR_OOM, "cannot allocate the GPU list");
    g->m = m;
    og_status st = list_devices(devices, g->devices, &g->count);
    for (int i = 0; i < g->count && st == OG_OK; i++) {
        st = og_cuda_init(g->devices[i], &g->ctx[i]);
        if (st == OG_OK)
            st = og_zimage_cuda_upload(&g->w[i], g->ctx[i], m);
    }
    if (st != OG_OK) {
        og_dit_gpus_free(g);
        return st;
    }
    *out = g;
    return OG_OK;
}

void og_dit_gpus_free(og_dit_gpus *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->count; i++) {
        og_zimage_cuda_free(g->w[i]);
        og_cuda_free(g->ctx[i]);
    }
    free(g);
}

og_status og_dit_gpus_run_ranks(og_dit_gpus *g, int world, int threads_per_rank, og_rank_fn fn,
                                void *arg)
{
    og_inproc_copy copy;
    og_cuda_inproc_copy(g->devices[0], &copy); /* the copy infers direction and device (UVA) */
    return og_run_ranks_copy(world, threads_per_rank, &copy, fn, arg);
}

#ifdef OG_HAVE_NCCL
og_status og_dit_gpus_nccl(og_dit_gpus *g, og_comm *host, og_rank_fn fn, void *arg)
{
    og_comm *nccl;
    OG_TRY(og_comm_nccl_create(&nccl, host, g->devices[host->rank % g->count]));
    og_status st = fn(nccl, arg);
    og_comm_free(nccl);
    return st;
}
#else
og_status og_dit_gpus_nccl(og_dit_gpus *g, og_comm *host, og_rank_fn fn, void *arg)
{
    (void)g, (void)host, (void)fn, (void)arg;
    return og_fail(OG_ERR_UNSUPPORTED, "this omnigen was built without NCCL (rebuild with NCCL "
                                       "installed, or run GPU ranks as threads of one process)");
}
#endif

typedef struct {
    og_dit_gpus *g;
    og_rank_fn fn;
    void *arg;
} nccl_job;

static og_status nccl_rank(og_comm *host, void *arg)
{
    nccl_job *j = arg;
    return og_dit_gpus_nccl(j->g, host, j->fn, j->arg);
}

og_status og_dit_gpus_run_ranks_nccl(og_dit_gpus *g, int world, int threads_per_rank,
                                     og_rank_fn fn, void *arg)
{
    nccl_job j = {.g = g, .fn = fn, .arg = arg};
    return og_run_ranks(world, threads_per_rank, nccl_rank, &j);
}

og_status og_dit_rank_start(og_dit_rank **out, og_dit_gpus *g, og_sp *sp, int64_t lat_h,
                            int64_t lat_w, int64_t cap_max)
{
    *out = NULL;
    og_dit_rank *r = calloc(1, sizeof *r);
    if (!r)
        return og_fail(OG_ERR_OOM, "cannot allocate a GPU rank");
    const int i = og_sp_world_rank(sp) % g->count;
    char what[96];
    snprintf(what, sizeof what, "Z-Image %lldx%lld latents, rank %d", (long long)lat_h,
             (long long)lat_w, og_sp_world_rank(sp));
    r->w = g->w[i];
    og_status st = og_cuda_init(g->devices[i], &r->ctx);
    if (st == OG_OK)
        st = og_cuda_reserve(r->ctx, og_zimage_cuda_work_bytes(g->m, lat_h, lat_w, cap_max, sp),
                             what);
    if (st != OG_OK) {
        og_dit_rank_free(r);
        return st;
    }
    *out = r;
    return OG_OK;
}

og_status og_dit_rank_forward(og_dit_rank *r, og_sp *sp, const float *latents, int64_t lat_h,
                              int64_t lat_w, float t_model, const float *cap_feats,
                              int64_t cap_len, float *out)
{
    return og_zimage_cuda_forward(r->ctx, r->w, og_sp_size(sp) > 1 ? sp : NULL, latents, lat_h,
                                  lat_w, t_model, cap_feats, cap_len, out);
}

void og_dit_rank_free(og_dit_rank *r)
{
    if (!r)
        return;
    if (r->ctx) /* per-rank device use for the run report (-v) */
        og_log(OG_LOG_INFO, "DiT rank on GPU %d: peak device use %.0f MiB (%.0f MiB reserved up "
               "front + the cuBLASLt workspace; the GPU's weights are shared)",
               og_cuda_ctx_device(r->ctx), (double)og_cuda_peak_bytes(r->ctx) / (1 << 20),
               (double)og_cuda_arena(r->ctx)->cap / (1 << 20));
    og_cuda_free(r->ctx);
    free(r);
}

#else

static og_status no_cuda(void)
{
    return og_fail(OG_ERR_UNSUPPORTED, "this omnigen was built without CUDA (rebuild with the "
                                       "CUDA toolkit installed, or use --backend cpu)");
}

og_status og_dit_gpus_check(const char *devices)
{
    (void)devices;
    return no_cuda();
}

og_status og_dit_gpus_listed(const char *devices, int *count)
{
    (void)devices;
    *count = 0;
    return no_cuda();
}

og_status og_dit_gpus_pick(const char *devices, int pick, int *device, char *bus, int cap)
{
    (void)devices, (void)pick, (void)device, (void)bus, (void)cap;
    return no_cuda();
}

og_status og_dit_gpus_load(og_dit_gpus **out, const og_zimage *m, const char *devices)
{
    (void)m, (void)devices;
    *out = NULL;
    return no_cuda();
}

void og_dit_gpus_free(og_dit_gpus *g) { (void)g; }

og_status og_dit_gpus_run_ranks(og_dit_gpus *g, int world, int threads_per_rank, og_rank_fn fn,
                                void *arg)
{
    (void)g, (void)world, (void)threads_per_rank, (void)fn, (void)arg;
    return no_cuda();
}

og_status og_dit_gpus_nccl(og_dit_gpus *g, og_comm *host, og_rank_fn fn, void *arg)
{
    (void)g, (void)host, (void)fn, (void)arg;
    return no_cuda();
}

og_status og_dit_gpus_run_ranks_nccl(og_dit_gpus *g, int world, int threads_per_rank,
                                     og_rank_fn fn, void *arg)
{
    (void)g, (void)world, (void)threads_per_rank, (void)fn, (void)arg;
    return no_cuda();
}

og_status og_dit_rank_start(og_dit_rank **out, og_dit_gpus *g, og_sp *sp, int64_t lat_h,
                            int64_t lat_w, int64_t cap_max)
{
    (void)g, (void)sp, (void)lat_h, (void)lat_w, (void)cap_max;
    *out = NULL;
    return no_cuda();
}

og_status og_dit_rank_forward(og_dit_rank *r, og_sp *sp, const float *latents, int64_t lat_h,
                              int64_t lat_w, float t_model, const float *cap_feats,
                              int64_t cap_len, float *out)
{
    (void)r, (void)sp, (void)latents, (void)lat_h, (void)lat_w, (void)t_model, (void)cap_feats;
    (void)cap_len, (void)out;
    return no_cuda();
}

void og_dit_rank_free(og_dit_rank *r) { (void)r; }

#endif
