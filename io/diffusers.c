/* Diffusers folders: model_index.json, per-component JSON configs with typed getters, and the
 * class checks that catch a folder of the wrong model before any weight is read. */
#include "io/diffusers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_file.h"

struct og_config {
    char *path;
    cJSON *root;
};

og_status og_config_load(og_config **out, const char *path)
{
    *out = NULL;
    cJSON *root;
    OG_TRY(og_json_load(path, &root));
    og_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->path = strdup(path))) {
        free(cfg);
        cJSON_Delete(root);
        return og_fail(OG_ERR_OOM, "out of memory loading %s", path);
    }
    cfg->root = root;
    if (!cJSON_IsObject(root)) {
        og_config_free(cfg);
        return og_fail(OG_ERR_FORMAT, "%s is not a JSON object", path);
    }
    *out = cfg;
    return OG_OK;
}

void og_config_free(og_config *cfg)
{
    if (!cfg)
        return;
    cJSON_Delete(cfg->root);
    free(cfg->path);
    free(cfg);
}

const char *og_config_path(const og_config *cfg) { return cfg->path; }

/* The value at a dotted key, or NULL when it (or an object on the way) is absent or null. */
static const cJSON *lookup(const og_config *cfg, const char *key)
{
    const cJSON *node = cfg->root;
    char part[256];
    for (const char *k = key; node;) {
        size_t len = strcspn(k, ".");
        if (len >= sizeof part || !cJSON_IsObject(node))
            return NULL;
        memcpy(part, k, len);
        part[len] = '\0';
        node = cJSON_GetObjectItemCaseSensitive(node, part);
        if (!k[len])
            break;
        k += len + 1;
    }
    return cJSON_IsNull(node) ? NULL : node;
}

bool og_config_has(const og_config *cfg, const char *key) { return lookup(cfg, key) != NULL; }

/* The present, non-null value at key, or OG_ERR_NOT_FOUND. */
static og_status require(const og_config *cfg, const char *key, const cJSON **v)
{
    *v = lookup(cfg, key);
    if (!*v)
        return og_fail(OG_ERR_NOT_FOUND, "%s has no \"%s\"", cfg->path, key);
    return OG_OK;
}

static og_status wrong_type(const og_config *cfg, const char *key, const char *want)
{
    return og_fail(OG_ERR_FORMAT, "%s: \"%s\" is not %s", cfg->path, key, want);
}

/* Integral JSON numbers within +-2^53, where doubles hold integers exactly. */
static bool as_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(fabs(d) <= 9007199254740992.0) || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

og_status og_config_int(const og_config *cfg, const char *key, int64_t *out)
{
    const cJSON *v;
    OG_TRY(require(cfg, key, &v));
    if (!as_int(v, out))
        return wrong_type(cfg, key, "an integer");
    return OG_OK;
}

og_status og_config_float(const og_config *cfg, const char *key, double *out)
{
    const cJSON *v;
    OG_TRY(require(cfg, key, &v));
    if (!cJSON_IsNumber(v))
        return wrong_type(cfg, key, "a number");
    *out = v->valuedouble;
    return OG_OK;
}

og_status og_config_bool(const og_config *cfg, const char *key, bool *out)
{
    const cJSON *v;
    OG_TRY(require(cfg, key, &v));
    if (!cJSON_IsBool(v))
        return wrong_type(cfg, key, "true or false");
    *out = cJSON_IsTrue(v);
    return OG_OK;
}

og_status og_config_string(const og_config *cfg, const char *key, const char **out)
{
    const cJSON *v;
    OG_TRY(require(cfg, key, &v));
    if (!cJSON_IsString(v))
        return wrong_type(cfg, key, "a string");
    *out = v->valuestring;
    return OG_OK;
}

og_status og_config_int_array(const og_config *cfg, const char *key, int64_t *out, int cap, int *n)
{
    const cJSON *v;
    OG_TRY(require(cfg, key, &v));
    if (!cJSON_IsArray(v))
        return wrong_type(cfg, key, "an array of integers");
    int len = cJSON_GetArraySize(v);
    if (len > cap)
        return og_fail(OG_ERR_FORMAT, "%s: \"%s\" has %d elements, more than the %d expected",
                       cfg->path, key, len, cap);
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++)
        if (!as_int(e, &out[i]))
            return wrong_type(cfg, key, "an array of integers");
    *n = len;
    return OG_OK;
}

/* The array at key with at most cap elements, or the error naming the key. */
static og_status require_array(const og_config *cfg, const char *key, int cap, const char *want,
                               const cJSON **v)
{
    OG_TRY(require(cfg, key, v));
    if (!cJSON_IsArray(*v))
        return wrong_type(cfg, key, want);
    int len = cJSON_GetArraySize(*v);
    if (len > cap)
        return og_fail(OG_ERR_FORMAT, "%s: \"%s\" has %d elements, more than the %d expected",
                       cfg->path, key, len, cap);
    return OG_OK;
}

og_status og_config_float_array(const og_config *cfg, const char *key, double *out, int cap,
                                int *n)
{
    const cJSON *v;
    OG_TRY(require_array(cfg, key, cap, "an array of numbers", &v));
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e))
            return wrong_type(cfg, key, "an array of numbers");
        out[i] = e->valuedouble;
    }
    *n = i;
    return OG_OK;
}

og_status og_config_bool_array(const og_config *cfg, const char *key, bool *out, int cap, int *n)
{
    const cJSON *v;
    OG_TRY(require_array(cfg, key, cap, "an array of true/false", &v));
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (!cJSON_IsBool(e))
            return wrong_type(cfg, key, "an array of true/false");
        out[i] = cJSON_IsTrue(e);
    }
    *n = i;
    return OG_OK;
}

og_status og_config_int_range(const og_config *cfg, const char *key, int64_t lo, int64_t hi,
                              int *out)
{
    int64_t v = 0;
    OG_TRY(og_config_int(cfg, key, &v));
    if (v < lo || v > hi)
        return og_fail(OG_ERR_FORMAT, "%s: %s = %lld is out of range [%lld, %lld]",
                       og_config_path(cfg), key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return OG_OK;
}

og_status og_config_int_or(const og_config *cfg, const char *key, int64_t def, int64_t *out)
{
    *out = def;
    return og_config_has(cfg, key) ? og_config_int(cfg, key, out) : OG_OK;
}

og_status og_config_float_or(const og_config *cfg, const char *key, double def, double *out)
{
    *out = def;
    return og_config_has(cfg, key) ? og_config_float(cfg, key, out) : OG_OK;
}

og_status og_config_bool_or(const og_config *cfg, const char *key, bool def, bool *out)
{
    *out = def;
    return og_config_has(cfg, key) ? og_config_bool(cfg, key, out) : OG_OK;
}

og_status og_config_string_or(const og_config *cfg, const char *key, const char *def,
                              const char **out)
{
    *out = def;
    return og_config_has(cfg, key) ? og_config_string(cfg, key, out) : OG_OK;
}

og_status og_config_expect_class(const og_config *cfg, const char *expected)
{
    const char *cls = NULL;
    og_status s = og_config_string(cfg, "_class_name", &cls);
    if (s != OG_OK)
        return og_fail_context(s, "expected class %s", expected);
    if (strcmp(cls, expected) != 0)
        return og_fail(OG_ERR_FORMAT, "%s has _class_name %s, expected %s", cfg->path, cls,
                       expected);
    return OG_OK;
}

/* ---- model folders ------------------------------------------------------------------------ */

struct og_model_dir {
    char *root;
    og_config *index;
    int ncomp;
    const char **comp; /* names of listed components, pointing into index */
};

void og_model_dir_free(og_model_dir *md)
{
    if (!md)
        return;
    og_config_free(md->index);
    free(md->comp);
    free(md->root);
    free(md);
}

/* A component entry is [library, class] with both strings, or [null, null] for an absent one. */
static bool is_component(const cJSON *v, bool *absent)
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return false;
    const cJSON *lib = v->child, *cls = v->child->next;
    *absent = cJSON_IsNull(lib) && cJSON_IsNull(cls);
    return *absent || (cJSON_IsString(lib) && cJSON_IsString(cls));
}

og_status og_model_dir_open(og_model_dir **out, const char *root)
{
    *out = NULL;
    og_model_dir *md = calloc(1, sizeof *md);
    if (!md || !(md->root = strdup(root))) {
        free(md);
        return og_fail(OG_ERR_OOM, "out of memory opening %s", root);
    }
    char path[4096];
    og_status s = OG_OK;
    if (snprintf(path, sizeof path, "%s/model_index.json", root) >= (int)sizeof path)
        s = og_fail(OG_ERR_INVALID_ARG, "model folder path %s is too long", root);
    if (s == OG_OK)
        s = og_config_load(&md->index, path);
    if (s == OG_OK) {
        const cJSON *top = md->index->root;
        md->comp = calloc((size_t)cJSON_GetArraySize(top) + 1, sizeof *md->comp);
        if (!md->comp)
            s = og_fail(OG_ERR_OOM, "out of memory reading %s", path);
        for (const cJSON *kv = top->child; s == OG_OK && kv; kv = kv->next) {
            bool absent;
            /* "_class_name", "_diffusers_version" and plain flags are not components. */
            if (kv->string[0] == '_' || !cJSON_IsArray(kv))
                continue;
            if (!is_component(kv, &absent))
                s = og_fail(OG_ERR_FORMAT, "%s: component \"%s\" is not [library, class]", path,
                            kv->string);
            else if (!absent)
                md->comp[md->ncomp++] = kv->string;
        }
    }
    if (s != OG_OK) {
        og_model_dir_free(md);
        return s;
    }
    *out = md;
    return OG_OK;
}

const char *og_model_dir_root(const og_model_dir *md) { return md->root; }

const char *og_model_dir_class(const og_model_dir *md)
{
    const char *cls;
    return og_config_string_or(md->index, "_class_name", NULL, &cls) == OG_OK ? cls : NULL;
}

int og_model_dir_component_count(const og_model_dir *md) { return md->ncomp; }
const char *og_model_dir_component_name(const og_model_dir *md, int i) { return md->comp[i]; }

og_status og_model_dir_component(const og_model_dir *md, const char *component,
                                 const char **library, const char **class_name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md->index->root, component);
    bool absent = false;
    if (!v || component[0] == '_' || !is_component(v, &absent))
        return og_fail(OG_ERR_NOT_FOUND, "%s lists no component \"%s\"", md->index->path,
                       component);
    if (absent)
        return og_fail(OG_ERR_NOT_FOUND, "%s lists component \"%s\" as absent ([null, null])",
                       md->index->path, component);
    if (library)
        *library = v->child->valuestring;
    if (class_name)
        *class_name = v->child->next->valuestring;
    return OG_OK;
}

og_status og_model_dir_path(const og_model_dir *md, const char *component, const char *file,
                            char *buf, size_t cap)
{
    int n = file ? snprintf(buf, cap, "%s/%s/%s", md->root, component, file)
                 : snprintf(buf, cap, "%s/%s", md->root, component);
    if (n < 0 || (size_t)n >= cap)
        return og_fail(OG_ERR_INVALID_ARG, "path of %s in %s is too long", component, md->root);
    return OG_OK;
}

og_status og_model_dir_config(const og_model_dir *md, const char *component, const char *file,
                              const char *expected_class, og_config **out)
{
    *out = NULL;
    if (expected_class) {
        const char *cls;
        OG_TRY(og_model_dir_component(md, component, NULL, &cls));
        if (strcmp(cls, expected_class) != 0)
            return og_fail(OG_ERR_FORMAT, "%s lists %s as %s, expected %s", md->index->path,
                           component, cls, expected_class);
    }
    char path[4096];
    OG_TRY(og_model_dir_path(md, component, file ? file : "config.json", path, sizeof path));
    og_config *cfg;
    OG_TRY(og_config_load(&cfg, path));
    if (expected_class && og_config_has(cfg, "_class_name")) {
        og_status s = og_config_expect_class(cfg, expected_class);
        if (s != OG_OK) {
            og_config_free(cfg);
            return s;
        }
    }
    *out = cfg;
    return OG_OK;
}

og_status og_model_dir_weights(const og_model_dir *md, const char *component, og_weights **out)
{
    *out = NULL;
    char path[4096];
    OG_TRY(og_model_dir_path(md, component, NULL, path, sizeof path));
    return og_weights_open_dir(out, path);
}
