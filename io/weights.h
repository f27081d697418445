/* A weight set: every tensor of one model component (transformer/, vae/, text_encoder/ ...),
 * across all its safetensors shards, looked up by the name the checkpoint uses.
 *
 *     og_weights *w;
 *     OG_TRY(og_weights_open_dir(&w, "/models/Z-Image-Turbo/transformer"));
 *     og_tensor wq;   // stored dtype (bf16/f16/f32), pointing into the mmap
 *     OG_TRY(og_weights_expect(w, "layers.0.attention.to_q.weight", 2,
 *                              (int64_t[]){3840, 3840}, &wq));
 *     float *norm;    // an f32 copy, owned by w
 *     OG_TRY(og_weights_vector_f32(w, "layers.0.attention_norm1.weight", 3840, &norm));
 *     ...
 *     og_weights_free(w);   // unmaps the files and frees the f32 copies
 *
 * Which files make up the component: if the folder holds a "*.safetensors.index.json" (the
 * Hugging Face sharded layout, {"weight_map": {name: shard file}}), the shards it names; a
 * folder with two index files is refused as ambiguous. Otherwise every "*.safetensors" file in
 * the folder (normally exactly one). Every shard is validated by og_st_open; each weight_map entry
 * must be present in the shard it names; a name found in two files is an error naming both.
 *
 * Lookups are read-only and safe from many threads (in-process ranks share one set);
 * og_weights_vector_f32 converts once per tensor under a lock and returns the same copy after. */
#ifndef OG_IO_WEIGHTS_H
#define OG_IO_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/tensor.h"

typedef struct og_weights og_weights;

og_status og_weights_open_dir(og_weights **out, const char *component_dir);
/* One safetensors file as a weight set (tools, tests). */
og_status og_weights_open_file(og_weights **out, const char *path);
void og_weights_free(og_weights *w);

/* The folder (or file) the set was opened from, for messages. */
const char *og_weights_source(const og_weights *w);

/* Number of tensors, and their names in strcmp order (i in [0, count)). */
int og_weights_count(const og_weights *w);
const char *og_weights_name(const og_weights *w, int i);
bool og_weights_has(const og_weights *w, const char *name);

/* OG_ERR_NOT_FOUND naming the key and the folder; OG_ERR_UNSUPPORTED for a dtype omnigen does
 * not compute with (F64, BOOL, ...). */
og_status og_weights_get(const og_weights *w, const char *name, og_tensor *out);
/* og_weights_get, then OG_ERR_SHAPE unless the shape is exactly `shape` (-1 matches any size);
 * the message holds both shapes. */
og_status og_weights_expect(const og_weights *w, const char *name, int ndim, const int64_t *shape,
                            og_tensor *out);
/* An f32 copy of a tensor with exactly n elements (any shape: biases, norm weights, pad tokens),
 * from f32, bf16 or f16. Owned by w and freed with it. OG_ERR_SHAPE if the count differs. */
og_status og_weights_vector_f32(og_weights *w, const char *name, int64_t n, float **out);

#endif
