/* Access to the Z-Image reference fixtures (tests/fixtures/zimage/<variant>/: model/, meta.json
 * and reference.safetensors, made by tools/make_zimage_fixtures.py) for the dit and sampler
 * tests. */
#ifndef OG_TEST_ZIMAGE_FIXTURE_H
#define OG_TEST_ZIMAGE_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "core/tensor.h"
#include "io/diffusers.h"
#include "io/weights.h"

typedef struct {
    char dir[512];
    char transformer_dir[600]; /* the model's transformer/ folder */
    char scheduler_config[640];
    og_config *meta;
    og_weights *tensors;
} zfix;

static inline og_status zfix_open(zfix *f, const char *variant)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "tests/fixtures/zimage/%s", variant);
    char path[600];
    snprintf(path, sizeof path, "%s/meta.json", f->dir);
    OG_TRY(og_config_load(&f->meta, path));
    snprintf(f->transformer_dir, sizeof f->transformer_dir, "%s/model/transformer", f->dir);
    snprintf(f->scheduler_config, sizeof f->scheduler_config,
             "%s/model/scheduler/scheduler_config.json", f->dir);
    snprintf(path, sizeof path, "%s/reference.safetensors", f->dir);
    return og_weights_open_file(&f->tensors, path);
}

static inline void zfix_close(zfix *f)
{
    og_weights_free(f->tensors);
    og_config_free(f->meta);
    memset(f, 0, sizeof *f);
}

static inline bool zfix_has(const zfix *f, const char *name)
{
    return og_weights_has(f->tensors, name);
}

/* An f32 tensor of the fixture; its shape goes to shape/ndim when not NULL. */
static inline og_status zfix_f32(const zfix *f, const char *name, const float **data,
                                 int64_t *numel, og_tensor *shape)
{
    og_tensor t;
    OG_TRY(og_weights_get(f->tensors, name, &t));
    if (t.dtype != OG_F32)
        return og_fail(OG_ERR_SHAPE, "fixture %s/%s is %s, expected f32", f->dir, name,
                       og_dtype_name(t.dtype));
    *data = t.data;
    if (numel)
        *numel = og_tensor_numel(&t);
    if (shape)
        *shape = t;
    return OG_OK;
}

static inline og_status zfix_int(const zfix *f, const char *key, int64_t *out)
{
    return og_config_int(f->meta, key, out);
}

#endif
