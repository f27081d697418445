/* Checks shared by the public-API pipeline tests (test_pipeline_zimage.c, _qwenimage.c, _wan.c):
 * fixture tensors, the error measures, meta.json fields. Each failure counts in
 * og_test_failures (testutil.h). */
#ifndef OG_TEST_PIPELINE_UTIL_H
#define OG_TEST_PIPELINE_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "io/safetensors.h"
#include "testutil.h"

/* The fixture's f32 tensor name of numel values, or NULL (a failure) when absent or different. */
static inline const float *tensor_f32(og_st_file *f, const char *name, int64_t numel)
{
    og_tensor t;
    if (og_st_get(f, name, &t) != OG_OK || t.dtype != OG_F32 || og_tensor_numel(&t) != numel) {
        fprintf(stderr, "FAIL: fixture tensor %s missing or not %lld f32 values\n", name,
                (long long)numel);
        og_test_failures++;
        return NULL;
    }
    return t.data;
}

/* max |a - b| / max |b| in double (NaN counts as the worst). */
static inline double rel_err_f32(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num))
            num = d;
        if (fabs(b[i]) > den)
            den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Largest |a - b| over n bytes (the reference's uint8 image is HWC like ours). */
static inline int max_pixel_diff(const uint8_t *a, const uint8_t *b, int64_t n)
{
    int worst = 0;
    for (int64_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > worst)
            worst = d;
    }
    return worst;
}

/* A meta.json field, failing the test when absent or of the wrong type. */
static inline const cJSON *field(const cJSON *meta, const char *key,
                                 cJSON_bool (*is)(const cJSON *))
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    if (!v || !is(v)) {
        fprintf(stderr, "FAIL: meta.json: \"%s\" missing or of the wrong type\n", key);
        og_test_failures++;
        return NULL;
    }
    return v;
}

#endif
