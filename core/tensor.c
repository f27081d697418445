/* Tensor views: construction, sizes and shape checks. */
#include "core/tensor.h"

#include <stdio.h>

og_tensor og_tensor_make(void *data, og_dtype dtype, int ndim, const int64_t *shape)
{
    og_tensor t = {.dtype = dtype, .ndim = ndim, .data = data};
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t.shape[i] = shape[i];
        t.stride[i] = s;
        s *= shape[i];
    }
    return t;
}

int64_t og_tensor_numel(const og_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t og_tensor_nbytes(const og_tensor *t)
{
    return (size_t)og_tensor_numel(t) * og_dtype_size(t->dtype);
}

bool og_tensor_is_contiguous(const og_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s)
            return false;
        s *= t->shape[i];
    }
    return true;
}

const char *og_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

og_status og_tensor_expect(const og_tensor *t, const char *what, int ndim, const int64_t *shape)
{
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (ok)
        return OG_OK;
    char want[128], got[128];
    return og_fail(OG_ERR_SHAPE, "%s has shape %s, expected %s", what,
                   og_shape_str(got, sizeof got, t->ndim, t->shape),
                   og_shape_str(want, sizeof want, ndim, shape));
}
