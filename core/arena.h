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

/* An op's scratch for one call: the caller's arena (`given`, released to its mark by
 * og_op_scratch_end), or, when given is NULL, an arena of its own of `bytes` (the op's
 * *_scratch_bytes), made and freed around the call. Either way the op allocates from `a`. */
typedef struct {
    og_arena *a;
    og_arena own;
    size_t mark;
} og_op_scratch;
og_status og_op_scratch_begin(og_op_scratch *s, og_arena *given, size_t bytes);
void og_op_scratch_end(og_op_scratch *s);
/* Bytes an arena needs free for one og_arena_alloc of `bytes` whatever its fill level: the
 * request rounded to the alignment, plus the alignment the start may be moved by. */
size_t og_arena_need(size_t bytes);

#endif
