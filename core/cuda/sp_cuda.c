/* og_sp_ops for the CUDA backend: og_sp_attention (parallel/) on bf16 device buffers, with every
 * step enqueued on one rank's context stream. */
#include "core/cuda/cuda_backend.h"
#include "parallel/sp.h"

static og_status copy2d(void *user, void *dst, size_t dpitch, const void *src, size_t spitch,
                        size_t width, size_t rows)
{
    return og_cuda_copy2d(user, dst, dpitch, src, spitch, width, rows);
}

static og_status attend(void *user, const og_attn_desc *d, const void *q, const void *k,
                        const void *v, float *out, float *lse)
{
    return og_cuda_attention(user, d, q, k, v, out, OG_F32, lse);
}

static og_status merge(void *user, float *out, float *lse, const float *out_b, const float *lse_b,
                       int64_t sq, int heads, int head_dim)
{
    const int64_t stride = (int64_t)heads * head_dim;
    return og_cuda_lse_merge(user, out, lse, stride, out_b, OG_F32, lse_b, stride, sq, heads,
                             head_dim);
}

static og_status narrow(void *user, void *dst, const float *src, int64_t n)
{
    return og_cuda_f32_to_bf16(user, dst, src, n);
}

static og_status sync(void *user) { return og_cuda_sync(user); }

void og_cuda_sp_ops(og_cuda_ctx *ctx, struct og_sp_ops *out)
{
    *out = (og_sp_ops){.elem_bytes = sizeof(og_bf16), .copy2d = copy2d, .attend = attend,
                       .merge = merge, .narrow = narrow, .sync = sync, .user = ctx};
}
