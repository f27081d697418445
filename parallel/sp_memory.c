/* Where SP attention's buffers live: the og_sp_ops element size, strided copy and sync, with the
 * host defaults (f32, memcpy, nothing to wait for) when no ops are given. */
#include <string.h>

#include "parallel/sp_internal.h"

size_t og_sp_elem(const og_sp_ops *ops) { return ops ? ops->elem_bytes : sizeof(float); }

og_status og_sp_copy2d(const og_sp_ops *ops, void *dst, size_t dpitch, const void *src,
                       size_t spitch, size_t width, size_t rows)
{
    if (ops)
        return ops->copy2d(ops->user, dst, dpitch, src, spitch, width, rows);
    char *d = dst;
    const char *s = src;
#pragma omp parallel for schedule(static) if (rows * width > 262144)
    for (int64_t r = 0; r < (int64_t)rows; r++)
        memcpy(d + r * dpitch, s + r * spitch, width);
    return OG_OK;
}

og_status og_sp_sync(const og_sp_ops *ops)
{
    return ops && ops->sync ? ops->sync(ops->user) : OG_OK;
}
