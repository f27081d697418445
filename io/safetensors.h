/* One .safetensors file, memory-mapped read-only, and a writer for tests and tools.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON, then the data section.
 * The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the data section); an optional "__metadata__" object maps strings to strings.
 *
 *     og_st_file *f;
 *     OG_TRY(og_st_open(&f, "transformer/diffusion_pytorch_model.safetensors"));
 *     for (int i = 0; i < og_st_count(f); i++) {
 *         const og_st_entry *e = og_st_entry_at(f, i);
 *         printf("%s %s\n", e->name, e->dtype_name);
 *     }
 *     og_tensor t;
 *     OG_TRY(og_st_get(f, "x_pad_token", &t));   // t.data points into the mapping
 *     og_st_close(f);                             // invalidates every t.data
 *
 * Model code should not use this file directly: io/weights.h gathers the shards of a component
 * folder into one name -> tensor set.
 *
 * og_st_open trusts nothing in the file. It fails with OG_ERR_FORMAT and a message naming the
 * file, the tensor and the fault for: a file shorter than 8 bytes, a header length past the end
 * of the file (or over 100 MB), a header that is not a JSON object, an entry that is not an
 * object or lacks dtype/shape/data_offsets, a dtype that is not a safetensors dtype, a negative
 * or non-integer dimension or offset, a shape whose byte size overflows or differs from its span,
 * a span that ends before it begins or past the data section, two spans that overlap, two
 * tensors with one name, and a __metadata__ that is repeated or holds a non-string value. A
 * tensor with more than OG_MAX_DIMS dimensions is OG_ERR_UNSUPPORTED. Valid safetensors dtypes
 * that omnigen does not compute with (F64, I8, I16, BOOL, F8_*, ...) open fine and are listed;
 * og_st_get on them fails with OG_ERR_UNSUPPORTED.
 *
 * Tensor data inside the mapping is used in place when it is aligned to its element size;
 * a misaligned tensor (possible with hand-written files) is copied once at open into an
 * aligned buffer owned by the file, so every og_tensor.data is aligned. */
#ifndef OG_IO_SAFETENSORS_H
#define OG_IO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"

typedef struct og_st_file og_st_file;

typedef struct {
    const char *name;       /* the key in the header */
    const char *dtype_name; /* as the file spells it: "BF16", "F64", ... */
    bool supported;         /* dtype maps to an og_dtype */
    og_dtype dtype;         /* valid when supported */
    int ndim;
    int64_t shape[OG_MAX_DIMS];
    void *data;      /* aligned; NULL only when nbytes is 0 */
    uint64_t nbytes; /* product of shape times element size == the span in the file */
} og_st_entry;

og_status og_st_open(og_st_file **out, const char *path);
void og_st_close(og_st_file *f);

const char *og_st_path(const og_st_file *f);
/* Entries in the order of their names (strcmp). */
int og_st_count(const og_st_file *f);
const og_st_entry *og_st_entry_at(const og_st_file *f, int i);
/* NULL when absent. */
const og_st_entry *og_st_find(const og_st_file *f, const char *name);
/* The tensor as a contiguous view: OG_ERR_NOT_FOUND if absent, OG_ERR_UNSUPPORTED if its dtype
 * has no og_dtype. */
og_status og_st_get(const og_st_file *f, const char *name, og_tensor *out);
/* A __metadata__ value, or NULL. */
const char *og_st_metadata(const og_st_file *f, const char *key);
/* The same check on one entry, for callers that hold an entry already. */
og_status og_st_entry_tensor(const og_st_entry *e, const char *where, og_tensor *out);

/* Writes n contiguous tensors (f32, bf16, f16, i64, i32, u8) and optional metadata given as
 * key, value, key, value, ..., NULL (or NULL for none). The file is written under a temporary
 * name in the same folder and renamed into place, so a reader never sees a partial file.
 * Tensors are laid out largest element first (as the reference writer does: the same tensors
 * give the same bytes), so every span stays aligned. */
og_status og_st_write(const char *path, int n, const char *const *names, const og_tensor *tensors,
                      const char *const *metadata);

#endif
