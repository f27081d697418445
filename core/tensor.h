/* A tensor is a typed, shaped view of memory it does not own: weights point into an mmap'd
 * checkpoint, activations into an arena. Shapes are checked at module boundaries with
 * og_tensor_expect(), not deep inside loops. */
#ifndef OG_TENSOR_H
#define OG_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"

#define OG_MAX_DIMS 6

typedef struct {
    og_dtype dtype;
    int ndim;
    int64_t shape[OG_MAX_DIMS];
    int64_t stride[OG_MAX_DIMS]; /* in elements */
    void *data;
} og_tensor;

/* A contiguous (row-major) view of `data`. */
og_tensor og_tensor_make(void *data, og_dtype dtype, int ndim, const int64_t *shape);
int64_t og_tensor_numel(const og_tensor *t);
size_t og_tensor_nbytes(const og_tensor *t);
bool og_tensor_is_contiguous(const og_tensor *t);
/* Fails with OG_ERR_SHAPE naming `what` unless t has exactly this shape (-1 matches any size). */
og_status og_tensor_expect(const og_tensor *t, const char *what, int ndim, const int64_t *shape);
/* Writes "[a, b, c]" into buf. */
const char *og_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

#endif
