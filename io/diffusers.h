/* Diffusers model folders and their JSON configs.
 *
 * A folder holds model_index.json ({"_class_name": "ZImagePipeline", "transformer":
 * ["diffusers", "ZImageTransformer2DModel"], "scheduler": [...], ...}) and one subfolder per
 * component with its config (config.json; scheduler_config.json for schedulers) and weights.
 *
 *     og_model_dir *md;
 *     OG_TRY(og_model_dir_open(&md, "/models/Z-Image-Turbo"));
 *     og_config *cfg;
 *     OG_TRY(og_model_dir_config(md, "transformer", "config.json", "ZImageTransformer2DModel",
 *                                &cfg));
 *     int64_t layers, dim;
 *     double eps;
 *     OG_TRY(og_config_int(cfg, "n_layers", &layers));          // required
 *     OG_TRY(og_config_int_or(cfg, "dim", 3840, &dim));          // default when absent or null
 *     OG_TRY(og_config_float_or(cfg, "norm_eps", 1e-5, &eps));
 *     og_weights *w;
 *     OG_TRY(og_model_dir_weights(md, "transformer", &w));
 *     ...
 *     og_config_free(cfg);
 *     og_model_dir_free(md);
 *
 * Errors: a missing file or component is OG_ERR_NOT_FOUND naming the path; bad JSON, a value
 * of the wrong type, or a class other than the expected one is OG_ERR_FORMAT naming the file
 * and the key ("transformer/config.json has _class_name X, expected ZImageTransformer2DModel").
 * Keys may be dotted to reach nested objects: "text_config.hidden_size". */
#ifndef OG_IO_DIFFUSERS_H
#define OG_IO_DIFFUSERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/weights.h"

/* ---- one JSON config ---------------------------------------------------------------------- */

typedef struct og_config og_config;

og_status og_config_load(og_config **out, const char *path);
void og_config_free(og_config *cfg);
const char *og_config_path(const og_config *cfg);

/* True when the key is present and not null. */
bool og_config_has(const og_config *cfg, const char *key);

/* Required values: OG_ERR_NOT_FOUND when absent or null, OG_ERR_FORMAT when of another type.
 * Integers must be integral JSON numbers; floats accept any number; strings are owned by cfg. */
og_status og_config_int(const og_config *cfg, const char *key, int64_t *out);
og_status og_config_float(const og_config *cfg, const char *key, double *out);
og_status og_config_bool(const og_config *cfg, const char *key, bool *out);
og_status og_config_string(const og_config *cfg, const char *key, const char **out);
/* An array of integers; OG_ERR_FORMAT if it has more than cap elements. */
og_status og_config_int_array(const og_config *cfg, const char *key, int64_t *out, int cap,
                              int *n);
/* An array of numbers (doubles) or of booleans, with the same cap rule. */
og_status og_config_float_array(const og_config *cfg, const char *key, double *out, int cap,
                                int *n);
og_status og_config_bool_array(const og_config *cfg, const char *key, bool *out, int cap, int *n);

/* A required integer in [lo, hi] as an int (OG_ERR_FORMAT outside it, naming the range). */
og_status og_config_int_range(const og_config *cfg, const char *key, int64_t lo, int64_t hi,
                              int *out);

/* With a default used when the key is absent or null; a present value of the wrong type is
 * still an error. */
og_status og_config_int_or(const og_config *cfg, const char *key, int64_t def, int64_t *out);
og_status og_config_float_or(const og_config *cfg, const char *key, double def, double *out);
og_status og_config_bool_or(const og_config *cfg, const char *key, bool def, bool *out);
og_status og_config_string_or(const og_config *cfg, const char *key, const char *def,
                              const char **out);

/* OG_ERR_FORMAT unless "_class_name" equals `expected`. */
og_status og_config_expect_class(const og_config *cfg, const char *expected);

/* ---- a model folder ----------------------------------------------------------------------- */

typedef struct og_model_dir og_model_dir;

/* Reads <root>/model_index.json. */
og_status og_model_dir_open(og_model_dir **out, const char *root);
void og_model_dir_free(og_model_dir *md);

const char *og_model_dir_root(const og_model_dir *md);
/* model_index.json's "_class_name" (the pipeline, e.g. "ZImagePipeline"), or NULL. */
const char *og_model_dir_class(const og_model_dir *md);

/* The components model_index.json lists as [library, class] (absent [null, null] ones are
 * skipped), in file order. */
int og_model_dir_component_count(const og_model_dir *md);
const char *og_model_dir_component_name(const og_model_dir *md, int i);

/* A component's library and class from model_index.json. OG_ERR_NOT_FOUND if it is not listed
 * or listed as [null, null]. Either output may be NULL. */
og_status og_model_dir_component(const og_model_dir *md, const char *component,
                                 const char **library, const char **class_name);

/* "<root>/<component>/<file>" (file NULL: the component folder) into buf;
 * OG_ERR_INVALID_ARG if it does not fit. */
og_status og_model_dir_path(const og_model_dir *md, const char *component, const char *file,
                            char *buf, size_t cap);

/* Loads <root>/<component>/<file> (file NULL means "config.json"). When expected_class is not
 * NULL, model_index.json must list the component with that class, and the config's
 * "_class_name", where the file has one (transformers configs do not), must equal it. */
og_status og_model_dir_config(const og_model_dir *md, const char *component, const char *file,
                              const char *expected_class, og_config **out);

/* og_weights_open_dir on <root>/<component>. */
og_status og_model_dir_weights(const og_model_dir *md, const char *component, og_weights **out);

#endif
