/* DiffusionParallelConfig: the user's parallel layout and its validation. Bad layouts are refused
 * before any weight is loaded, with a message that names the fix. */
#ifndef OG_PARALLEL_CONFIG_H
#define OG_PARALLEL_CONFIG_H

#include <stdint.h>

#include "core/error.h"

typedef enum { OG_ULYSSES_STRICT = 0, OG_ULYSSES_ADVANCED_UAA } og_ulysses_mode;

typedef struct {
    int ulysses_degree;
    int ring_degree;
    int cfg_degree;
    og_ulysses_mode ulysses_mode;
} og_parallel_config;

#define OG_PARALLEL_CONFIG_DEFAULT \
    ((og_parallel_config){.ulysses_degree = 1, .ring_degree = 1, .cfg_degree = 1, \
                          .ulysses_mode = OG_ULYSSES_STRICT})

int og_parallel_world_size(const og_parallel_config *c);
/* "strict" or "advanced_uaa". */
og_status og_ulysses_mode_parse(const char *s, og_ulysses_mode *out);
const char *og_ulysses_mode_name(og_ulysses_mode m);

/* Checks the layout against the model and the machine: degrees >= 1, cfg_degree 1 or 2, strict
 * mode with heads % U != 0 (lists the valid degrees, suggests advanced_uaa), U > heads, a sharded
 * sequence shorter than U*R, and world size != world_available (when world_available > 0). */
og_status og_parallel_config_validate(const og_parallel_config *c, int heads, int64_t seq_len,
                                      int world_available);

#endif
