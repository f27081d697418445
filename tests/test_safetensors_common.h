/* Helpers shared by the safetensors tests: loading the fixture manifests written by
 * tools/make_safetensors_fixtures.py and comparing stored elements with the values recorded there
 * (floats as repr strings, integers in decimal, bf16/f16 also as raw bits). */
#ifndef OG_TEST_SAFETENSORS_COMMON_H
#define OG_TEST_SAFETENSORS_COMMON_H

#include <cjson/cJSON.h>
#include <string.h>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "testutil.h"

#define ST_FIXTURES OG_SOURCE_DIR "/tests/fixtures/safetensors"

static inline cJSON *st_load_manifest(const char *path)
{
    cJSON *j = NULL;
    og_status s = og_json_load(path, &j);
    if (s != OG_OK) {
        fprintf(stderr, "cannot load %s: %s\n", path, og_error_message());
        exit(1);
    }
    return j;
}

/* Element i of raw data in a safetensors dtype: a float dtype sets *f and returns true, an
 * integer one sets *n and returns false. */
static inline bool st_elem(const char *dtype, const void *data, int64_t i, double *f, long long *n)
{
    const unsigned char *b = data;
    union {
        float f32;
        double f64;
        uint16_t u16;
        int64_t i64;
        int32_t i32;
        int16_t i16;
        int8_t i8;
        uint8_t u8;
    } u;
    size_t size = !strcmp(dtype, "F64") || !strcmp(dtype, "I64")                          ? 8
                  : !strcmp(dtype, "F32") || !strcmp(dtype, "I32")                        ? 4
                  : !strcmp(dtype, "BF16") || !strcmp(dtype, "F16") || !strcmp(dtype, "I16") ? 2
                                                                                          : 1;
    memcpy(&u, b + i * (int64_t)size, size);
    if (!strcmp(dtype, "F32"))
        *f = u.f32;
    else if (!strcmp(dtype, "F64"))
        *f = u.f64;
    else if (!strcmp(dtype, "BF16"))
        *f = og_bf16_to_f32(u.u16);
    else if (!strcmp(dtype, "F16"))
        *f = og_f16_to_f32(u.u16);
    else {
        *n = size == 8 ? u.i64 : size == 4 ? u.i32 : size == 2 ? u.i16 : !strcmp(dtype, "I8") ? u.i8 : u.u8;
        return false;
    }
    return true;
}

/* Same value, bit for bit in sign: -0.0 differs from 0.0 and inf equals inf. */
static inline bool st_same_double(double a, double b)
{
    return a == b && signbit(a) == signbit(b);
}

/* Checks one tensor (dtype, shape, every element, raw bits for 16-bit floats) against its
 * manifest description. */
static inline void st_check_entry(const char *where, const og_st_entry *e, const cJSON *want)
{
    const char *dtype = cJSON_GetObjectItem(want, "dtype")->valuestring;
    const cJSON *shape = cJSON_GetObjectItem(want, "shape");
    const cJSON *values = cJSON_GetObjectItem(want, "values");
    const cJSON *bits = cJSON_GetObjectItem(want, "bits");
    CHECK(!strcmp(e->dtype_name, dtype), "%s %s: dtype %s, expected %s", where, e->name,
          e->dtype_name, dtype);
    CHECK(e->ndim == cJSON_GetArraySize(shape), "%s %s: ndim %d", where, e->name, e->ndim);
    int64_t numel = 1;
    for (int d = 0; d < e->ndim && d < cJSON_GetArraySize(shape); d++) {
        int64_t w = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble;
        CHECK(e->shape[d] == w, "%s %s: shape[%d] %lld, expected %lld", where, e->name, d,
              (long long)e->shape[d], (long long)w);
        numel *= w;
    }
    CHECK(cJSON_GetArraySize(values) == numel, "%s %s: manifest has %d values for %lld elements",
          where, e->name, cJSON_GetArraySize(values), (long long)numel);
    if (numel == 0) {
        CHECK(e->nbytes == 0, "%s %s: empty tensor has %llu bytes", where, e->name,
              (unsigned long long)e->nbytes);
        return;
    }
    int64_t i = 0;
    for (const cJSON *v = values->child; v && i < numel; v = v->next, i++) {
        double f = 0;
        long long n = 0;
        if (st_elem(dtype, e->data, i, &f, &n)) {
            double w = strtod(v->valuestring, NULL);
            CHECK(st_same_double(f, w), "%s %s[%lld] = %.9g, expected %s", where, e->name,
                  (long long)i, f, v->valuestring);
        } else {
            long long w = strtoll(v->valuestring, NULL, 10);
            CHECK(n == w, "%s %s[%lld] = %lld, expected %s", where, e->name, (long long)i, n,
                  v->valuestring);
        }
    }
    i = 0;
    for (const cJSON *b = bits ? bits->child : NULL; b; b = b->next, i++) {
        uint16_t h;
        memcpy(&h, (const char *)e->data + 2 * i, 2);
        CHECK(h == (uint16_t)b->valuedouble, "%s %s: bits[%lld] = 0x%04x, expected 0x%04x", where,
              e->name, (long long)i, h, (unsigned)b->valuedouble);
    }
}

/* The same check on a tensor handed out by a weight set. */
static inline void st_check_tensor(const char *where, const char *name, const og_tensor *t,
                                   const cJSON *want)
{
    og_st_entry e = {.name = name, .dtype_name = og_dtype_name(t->dtype), .ndim = t->ndim,
                     .data = t->data, .nbytes = og_tensor_nbytes(t)};
    memcpy(e.shape, t->shape, sizeof e.shape);
    st_check_entry(where, &e, want);
}

/* The status name and a message substring the manifest expects, for one failed call. */
static inline void st_check_failure(const char *what, og_status s, const cJSON *want)
{
    const char *status = cJSON_GetObjectItem(want, "status")->valuestring;
    const char *msg = cJSON_GetObjectItem(want, "message")->valuestring;
    CHECK(s != OG_OK && !strcmp(og_status_name(s), status), "%s: status \"%s\", expected \"%s\"",
          what, og_status_name(s), status);
    CHECK(strstr(og_error_message(), msg) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
          og_error_message(), msg);
}

#endif
