/* A bump allocator. Each forward pass takes its scratch from an arena sized once up front, so a
 * sampler step allocates nothing; reset() or a mark/release pair recycles it. */
#ifndef OG_ARENA_H
#define OG_ARENA_H

#include <stddef.h>

#include "core/error.h"

typedef struct {
    char *base;
    size_t cap;
    size_t used;
    size_t peak;
} og_arena;

og_status og_arena_init(og_arena *a, size_t cap);
void og_arena_free(og_arena *a);
/* 64-byte aligned; returns NULL and sets OG_ERR_OOM in the error context when full. */
void *og_arena_alloc(og_arena *a, size_t bytes);
/* Same, zero-filled. */
void *og_arena_calloc(og_arena *a, size_t bytes);
static inline size_t og_arena_mark(const og_arena *a) { return a->used; }
static inline void og_arena_release(og_arena *a, size_t mark) { a->used = mark; }
static inline void og_arena_reset(og_arena *a) { a->used = 0; }

#endif
