/* The safetensors writer used by tests and tools: builds the header with cJSON, lays tensors out
 * so every span stays aligned, and publishes the file by rename. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Layout order: I64, F32, I32, BF16, F16, U8, then by name. Element sizes never grow along it,
 * so spans stay aligned, and it is the order the reference (Rust) writer uses, so the same
 * tensors give the same bytes. */
static const int layout_rank[OG_DTYPE_COUNT] = {
    [OG_I64] = 0, [OG_F32] = 1, [OG_I32] = 2, [OG_BF16] = 3, [OG_F16] = 4, [OG_U8] = 5,
};

typedef struct {
    int rank;
    const char *name;
    int index;
} write_slot;

static int write_slot_cmp(const void *a, const void *b)
{
    const write_slot *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return strcmp(x->name, y->name);
}

static og_status check_inputs(const char *path, int n, const char *const *names,
                              const og_tensor *tensors, const char *const *metadata)
{
    for (int i = 0; metadata && metadata[i]; i += 2)
        if (!metadata[i + 1])
            return og_fail(OG_ERR_INVALID_ARG, "%s: metadata key \"%s\" has no value", path,
                           metadata[i]);
    for (int i = 0; i < n; i++) {
        const og_tensor *t = &tensors[i];
        if (!names[i] || strcmp(names[i], "__metadata__") == 0)
            return og_fail(OG_ERR_INVALID_ARG, "%s: tensor %d has no usable name", path, i);
        if ((unsigned)t->dtype >= OG_DTYPE_COUNT || t->ndim < 0 || t->ndim > OG_MAX_DIMS ||
            !og_tensor_is_contiguous(t) || (og_tensor_nbytes(t) > 0 && !t->data))
            return og_fail(OG_ERR_INVALID_ARG, "%s: tensor \"%s\" is not a contiguous tensor of "
                           "a known dtype", path, names[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return og_fail(OG_ERR_INVALID_ARG, "%s: tensor \"%s\" given twice", path,
                               names[i]);
    }
    return OG_OK;
}

/* The header JSON, NUL-terminated, for tensors laid out in `order`. */
static char *build_header(int n, const char *const *names, const og_tensor *tensors,
                          const int *order, const char *const *metadata)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && metadata && metadata[0]) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; ok && metadata[i]; i += 2)
            ok = meta && cJSON_AddStringToObject(meta, metadata[i], metadata[i + 1]);
    }
    uint64_t off = 0;
    for (int k = 0; ok && k < n; k++) {
        const og_tensor *t = &tensors[order[k]];
        cJSON *e = cJSON_AddObjectToObject(root, names[order[k]]);
        cJSON *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        ok = e && shape && offs && cJSON_AddStringToObject(e, "dtype", og_dtype_name(t->dtype));
        for (int d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        uint64_t end = off + og_tensor_nbytes(t);
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) &&
             cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)end));
        if (ok) {
            cJSON_AddItemToObject(e, "shape", shape);
            cJSON_AddItemToObject(e, "data_offsets", offs);
        } else {
            cJSON_Delete(shape);
            cJSON_Delete(offs);
        }
        off = end;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

static og_status write_all(FILE *fp, const char *tmp, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, fp) != n)
        return og_fail(OG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    return OG_OK;
}

static og_status write_file(FILE *fp, const char *tmp, const char *json, int n,
                            const og_tensor *tensors, const int *order)
{
    size_t len = strlen(json);
    size_t padded = (len + 7) / 8 * 8; /* keeps the data section 8-byte aligned */
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    OG_TRY(write_all(fp, tmp, lenbuf, 8));
    OG_TRY(write_all(fp, tmp, json, len));
    OG_TRY(write_all(fp, tmp, "       ", padded - len));
    for (int k = 0; k < n; k++)
        OG_TRY(write_all(fp, tmp, tensors[order[k]].data, og_tensor_nbytes(&tensors[order[k]])));
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        return og_fail(OG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    return OG_OK;
}

og_status og_st_write(const char *path, int n, const char *const *names, const og_tensor *tensors,
                      const char *const *metadata)
{
    OG_TRY(check_inputs(path, n, names, tensors, metadata));
    write_slot *slots = malloc(((size_t)n + 1) * sizeof *slots);
    int *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!slots || !order) {
        free(slots);
        free(order);
        return og_fail(OG_ERR_OOM, "out of memory writing %s", path);
    }
    for (int i = 0; i < n; i++)
        slots[i] = (write_slot){layout_rank[tensors[i].dtype], names[i], i};
    qsort(slots, (size_t)n, sizeof *slots, write_slot_cmp);
    for (int i = 0; i < n; i++)
        order[i] = slots[i].index;
    free(slots);

    char *json = build_header(n, names, tensors, order, metadata);
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    og_status s = OG_OK;
    if (!json || !tmp)
        s = og_fail(OG_ERR_OOM, "out of memory writing %s", path);
    FILE *fp = NULL;
    if (s == OG_OK) {
        snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
        fp = fopen(tmp, "wb");
        if (!fp)
            s = og_fail(OG_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
    }
    if (s == OG_OK)
        s = write_file(fp, tmp, json, n, tensors, order);
    if (fp && fclose(fp) != 0 && s == OG_OK)
        s = og_fail(OG_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    if (s == OG_OK && rename(tmp, path) != 0)
        s = og_fail(OG_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (s != OG_OK && fp)
        unlink(tmp);
    free(tmp);
    cJSON_free(json);
    free(order);
    return s;
}
