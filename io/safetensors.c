/* The safetensors reader: maps the file, validates the header and every span before handing out
 * a pointer, and keeps the entries sorted by name for binary search. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation refuses headers over 100 MB; a real one is a few hundred KB. */
#define OG_ST_MAX_HEADER 100000000ull

struct og_st_file {
    char *path;
    unsigned char *map;
    size_t map_size;
    int count;
    og_st_entry *entries; /* sorted by name */
    int meta_count;
    char **meta; /* key, value, key, value, ... */
    int copy_count;
    void **copies; /* aligned copies of misaligned tensors */
};

/* Every dtype the safetensors format defines; `og` is -1 where omnigen has no og_dtype. */
static const struct {
    const char *name;
    int bits;
    int og;
} st_dtypes[] = {
    {"F32", 32, OG_F32},     {"BF16", 16, OG_BF16},   {"F16", 16, OG_F16},  {"I64", 64, OG_I64},
    {"I32", 32, OG_I32},     {"U8", 8, OG_U8},        {"F64", 64, -1},      {"I16", 16, -1},
    {"I8", 8, -1},           {"U16", 16, -1},         {"U32", 32, -1},      {"U64", 64, -1},
    {"BOOL", 8, -1},         {"F8_E4M3", 8, -1},      {"F8_E5M2", 8, -1},   {"F8_E8M0", 8, -1},
    {"F6_E2M3", 6, -1},      {"F6_E3M2", 6, -1},      {"F4", 4, -1},        {"C64", 64, -1},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

void og_st_close(og_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->count; i++)
        free((char *)f->entries[i].name);
    free(f->entries);
    for (int i = 0; i < 2 * f->meta_count; i++)
        free(f->meta[i]);
    free(f->meta);
    for (int i = 0; i < f->copy_count; i++)
        free(f->copies[i]);
    free(f->copies);
    if (f->map)
        munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

/* A JSON number that is a whole number in [0, 2^53], where doubles are still exact. */
static bool json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d > 9007199254740992.0 || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

typedef struct {
    uint64_t begin, end;
} st_span;

/* Parses one tensor entry into e (name already set) and its span. */
static og_status parse_entry(const og_st_file *f, const cJSON *item, og_st_entry *e, st_span *span,
                             int *bits)
{
    const char *p = f->path, *n = e->name;
    if (!cJSON_IsObject(item))
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": entry is not a JSON object", p, n);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!dtype || !shape || !offs)
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": entry lacks \"%s\"", p, n,
                       !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dtype))
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": dtype is not a string", p, n);
    int d = 0;
    while (d < ST_NDTYPES && strcmp(st_dtypes[d].name, dtype->valuestring) != 0)
        d++;
    if (d == ST_NDTYPES)
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.32s\"", p, n,
                       dtype->valuestring);
    e->dtype_name = st_dtypes[d].name;
    e->supported = st_dtypes[d].og >= 0;
    e->dtype = e->supported ? (og_dtype)st_dtypes[d].og : OG_F32;
    *bits = st_dtypes[d].bits;

    if (!cJSON_IsArray(shape))
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": shape is not an array", p, n);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > OG_MAX_DIMS)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: tensor \"%s\" has %d dimensions, more than the %d "
                       "omnigen supports", p, n, ndim, OG_MAX_DIMS);
    e->ndim = ndim;
    uint64_t numel = 1;
    bool overflow = false;
    int i = 0;
    for (const cJSON *dim = shape->child; dim; dim = dim->next, i++) {
        uint64_t v;
        if (!json_uint(dim, &v))
            return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": shape[%d] is not a non-negative "
                           "integer", p, n, i);
        e->shape[i] = (int64_t)v;
        overflow |= __builtin_mul_overflow(numel, v, &numel);
    }

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(offs->child, &span->begin) || !json_uint(offs->child->next, &span->end))
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": data_offsets is not a pair of "
                       "non-negative integers", p, n);
    if (span->end < span->begin)
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] end before "
                       "they begin", p, n, (unsigned long long)span->begin,
                       (unsigned long long)span->end);

    uint64_t nbits;
    char sbuf[160];
    og_shape_str(sbuf, sizeof sbuf, e->ndim, e->shape);
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)*bits, &nbits))
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s overflows a 64-bit byte "
                       "count", p, n, sbuf, e->dtype_name);
    if (nbits % 8 != 0)
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s is %llu bits, not a whole "
                       "number of bytes", p, n, sbuf, e->dtype_name, (unsigned long long)nbits);
    if (nbits / 8 != span->end - span->begin)
        return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s needs %llu bytes but "
                       "data_offsets [%llu, %llu] span %llu", p, n, sbuf, e->dtype_name,
                       (unsigned long long)(nbits / 8), (unsigned long long)span->begin,
                       (unsigned long long)span->end,
                       (unsigned long long)(span->end - span->begin));
    e->nbytes = nbits / 8;
    return OG_OK;
}

static og_status parse_metadata(og_st_file *f, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return og_fail(OG_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
    if (f->meta)
        return og_fail(OG_ERR_FORMAT, "%s: __metadata__ appears twice in the header", f->path);
    int n = cJSON_GetArraySize(meta);
    f->meta = calloc((size_t)n * 2 + 1, sizeof *f->meta);
    if (!f->meta)
        return og_fail(OG_ERR_OOM, "%s: out of memory for metadata", f->path);
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv))
            return og_fail(OG_ERR_FORMAT, "%s: __metadata__ value \"%s\" is not a string",
                           f->path, kv->string);
        char *k = strdup(kv->string), *v = strdup(kv->valuestring);
        f->meta[2 * f->meta_count] = k;
        f->meta[2 * f->meta_count + 1] = v;
        f->meta_count++;
        if (!k || !v)
            return og_fail(OG_ERR_OOM, "%s: out of memory for metadata", f->path);
    }
    return OG_OK;
}

static int entry_name_cmp(const void *a, const void *b)
{
    return strcmp(((const og_st_entry *)a)->name, ((const og_st_entry *)b)->name);
}

typedef struct {
    uint64_t begin, end;
    int entry;
} st_placed;

static int placed_cmp(const void *a, const void *b)
{
    const st_placed *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Spans must lie inside the data section and not overlap; empty spans overlap nothing. */
static og_status check_spans(const og_st_file *f, st_placed *pl, int n, uint64_t data_size)
{
    for (int i = 0; i < n; i++)
        if (pl[i].end > data_size)
            return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] run past "
                           "the end of the data section (%llu bytes)", f->path,
                           f->entries[pl[i].entry].name, (unsigned long long)pl[i].begin,
                           (unsigned long long)pl[i].end, (unsigned long long)data_size);
    qsort(pl, (size_t)n, sizeof *pl, placed_cmp);
    int last = -1; /* the non-empty span reaching furthest so far */
    for (int i = 0; i < n; i++) {
        if (pl[i].begin == pl[i].end)
            continue;
        if (last >= 0 && pl[i].begin < pl[last].end)
            return og_fail(OG_ERR_FORMAT, "%s: tensors \"%s\" [%llu, %llu] and \"%s\" [%llu, %llu] "
                           "overlap", f->path, f->entries[pl[last].entry].name,
                           (unsigned long long)pl[last].begin, (unsigned long long)pl[last].end,
                           f->entries[pl[i].entry].name, (unsigned long long)pl[i].begin,
                           (unsigned long long)pl[i].end);
        if (last < 0 || pl[i].end > pl[last].end)
            last = i;
    }
    return OG_OK;
}

/* Points each entry at its bytes, copying a misaligned one so that typed loads are legal. */
static og_status place_data(og_st_file *f, const st_placed *pl, int n, int *bits,
                            const unsigned char *data)
{
    f->copies = calloc((size_t)n + 1, sizeof *f->copies);
    if (!f->copies)
        return og_fail(OG_ERR_OOM, "%s: out of memory", f->path);
    for (int i = 0; i < n; i++) {
        og_st_entry *e = &f->entries[pl[i].entry];
        if (e->nbytes == 0)
            continue;
        const unsigned char *src = data + pl[i].begin;
        size_t align = bits[pl[i].entry] >= 8 ? (size_t)bits[pl[i].entry] / 8 : 1;
        if ((uintptr_t)src % align == 0) {
            e->data = (void *)src;
            continue;
        }
        void *copy = aligned_alloc(64, (e->nbytes + 63) / 64 * 64);
        if (!copy)
            return og_fail(OG_ERR_OOM, "%s: out of memory copying tensor \"%s\"", f->path, e->name);
        memcpy(copy, src, e->nbytes);
        f->copies[f->copy_count++] = copy;
        e->data = copy;
    }
    return OG_OK;
}

static og_status parse_header(og_st_file *f, const cJSON *root, uint64_t data_size,
                              const unsigned char *data)
{
    if (!cJSON_IsObject(root))
        return og_fail(OG_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__") == 0)
            OG_TRY(parse_metadata(f, it));
        else
            n++;
    f->entries = calloc((size_t)n + 1, sizeof *f->entries);
    st_placed *pl = calloc((size_t)n + 1, sizeof *pl);
    int *bits = calloc((size_t)n + 1, sizeof *bits);
    og_status s = OG_OK;
    if (!f->entries || !pl || !bits)
        s = og_fail(OG_ERR_OOM, "%s: out of memory for %d tensor entries", f->path, n);
    for (const cJSON *it = root->child; s == OG_OK && it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0)
            continue;
        og_st_entry *e = &f->entries[f->count];
        e->name = strdup(it->string);
        if (!e->name) {
            s = og_fail(OG_ERR_OOM, "%s: out of memory", f->path);
            break;
        }
        st_span span = {0, 0};
        s = parse_entry(f, it, e, &span, &bits[f->count]);
        pl[f->count] = (st_placed){span.begin, span.end, f->count};
        f->count++;
    }
    if (s == OG_OK)
        s = check_spans(f, pl, n, data_size);
    if (s == OG_OK)
        s = place_data(f, pl, n, bits, data);
    free(pl);
    free(bits);
    if (s != OG_OK)
        return s;
    qsort(f->entries, (size_t)n, sizeof *f->entries, entry_name_cmp);
    for (int i = 1; i < n; i++)
        if (strcmp(f->entries[i - 1].name, f->entries[i].name) == 0)
            return og_fail(OG_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", f->path,
                           f->entries[i].name);
    return OG_OK;
}

static og_status map_file(og_st_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return og_fail(errno == ENOENT ? OG_ERR_NOT_FOUND : OG_ERR_IO, "cannot open %s: %s",
                       f->path, strerror(errno));
    struct stat st;
    og_status s = OG_OK;
    if (fstat(fd, &st) != 0)
        s = og_fail(OG_ERR_IO, "cannot stat %s: %s", f->path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = og_fail(OG_ERR_IO, "%s is not a regular file", f->path);
    else if (st.st_size < 8)
        s = og_fail(OG_ERR_FORMAT, "%s: file is %lld bytes, too short for the 8-byte header "
                    "length (truncated?)", f->path, (long long)st.st_size);
    if (s == OG_OK) {
        f->map_size = (size_t)st.st_size;
        void *m = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            s = og_fail(OG_ERR_IO, "cannot map %s: %s", f->path, strerror(errno));
        else
            f->map = m;
    }
    close(fd);
    return s;
}

og_status og_st_open(og_st_file **out, const char *path)
{
    *out = NULL;
    og_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return og_fail(OG_ERR_OOM, "out of memory opening %s", path);
    }
    og_status s = map_file(f);
    if (s != OG_OK) {
        og_st_close(f);
        return s;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->map[i];
    uint64_t avail = f->map_size - 8;
    if (hlen > OG_ST_MAX_HEADER)
        s = og_fail(OG_ERR_FORMAT, "%s: header length %llu is absurd (over %llu bytes)", path,
                    (unsigned long long)hlen, OG_ST_MAX_HEADER);
    else if (hlen > avail)
        s = og_fail(OG_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu "
                    "bytes; truncated?)", path, (unsigned long long)hlen, f->map_size);
    if (s != OG_OK) {
        og_st_close(f);
        return s;
    }
    const char *hdr = (const char *)f->map + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        s = og_fail(OG_ERR_FORMAT, "%s: header is not valid JSON (error at byte %lld of %llu)",
                    path, end ? (long long)(end - hdr) : -1LL, (unsigned long long)hlen);
    } else {
        /* Writers pad the header with spaces to align the data section; nothing else may follow. */
        for (const char *c = end; c < hdr + hlen && s == OG_OK; c++)
            if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r')
                s = og_fail(OG_ERR_FORMAT, "%s: header has bytes after its JSON object (at byte "
                            "%lld)", path, (long long)(c - hdr));
        if (s == OG_OK)
            s = parse_header(f, root, avail - hlen, f->map + 8 + hlen);
        cJSON_Delete(root);
    }
    if (s != OG_OK) {
        og_st_close(f);
        return s;
    }
    *out = f;
    return OG_OK;
}

const char *og_st_path(const og_st_file *f) { return f->path; }
int og_st_count(const og_st_file *f) { return f->count; }
const og_st_entry *og_st_entry_at(const og_st_file *f, int i) { return &f->entries[i]; }

const og_st_entry *og_st_find(const og_st_file *f, const char *name)
{
    og_st_entry key = {.name = name};
    return bsearch(&key, f->entries, (size_t)f->count, sizeof key, entry_name_cmp);
}

og_status og_st_entry_tensor(const og_st_entry *e, const char *where, og_tensor *out)
{
    if (!e->supported)
        return og_fail(OG_ERR_UNSUPPORTED, "tensor \"%s\" in %s has dtype %s, which omnigen does "
                       "not compute with (F32, BF16, F16, I64, I32, U8)", e->name, where,
                       e->dtype_name);
    *out = og_tensor_make(e->data, e->dtype, e->ndim, e->shape);
    return OG_OK;
}

og_status og_st_get(const og_st_file *f, const char *name, og_tensor *out)
{
    const og_st_entry *e = og_st_find(f, name);
    if (!e)
        return og_fail(OG_ERR_NOT_FOUND, "no tensor \"%s\" in %s", name, f->path);
    return og_st_entry_tensor(e, f->path, out);
}

const char *og_st_metadata(const og_st_file *f, const char *key)
{
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}
