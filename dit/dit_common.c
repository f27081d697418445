/* Shared loading helpers of the transformers in dit/ (see dit/dit_common.h). */
#include "dit/dit_common.h"

#include <stdio.h>

og_status dit_config_open(const char *transformer_dir, og_config **out)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/config.json", transformer_dir) >= (int)sizeof path)
        return og_fail(OG_ERR_INVALID_ARG, "transformer folder path too long");
    return og_config_load(out, path);
}

og_status dit_read_pos_int(const og_config *cfg, const char *key, int64_t def, int *out)
{
    int64_t v;
    OG_TRY(og_config_int_or(cfg, key, def, &v));
    if (v < 1 || v > (1 << 20))
        return og_fail(OG_ERR_FORMAT, "%s: %s = %lld is out of range", og_config_path(cfg), key,
                       (long long)v);
    *out = (int)v;
    return OG_OK;
}

og_status dit_get_linear(og_weights *w, const char *name, int64_t n, int64_t k, dit_linear *out)
{
    char key[256];
    snprintf(key, sizeof key, "%s.weight", name);
    OG_TRY(og_weights_expect(w, key, 2, (int64_t[]){n, k}, &out->w));
    if (out->w.dtype != OG_F32 && out->w.dtype != OG_BF16 && out->w.dtype != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "%s in %s: dtype %s (expected f32, bf16 or f16)", key,
                       og_weights_source(w), og_dtype_name(out->w.dtype));
    snprintf(key, sizeof key, "%s.bias", name);
    return og_weights_vector_f32(w, key, n, &out->b);
}
