/* Bump allocation with a peak counter, so a run can report how much scratch it needed. */
#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

#define OG_ARENA_ALIGN 64

og_status og_arena_init(og_arena *a, size_t cap)
{
    *a = (og_arena){0};
    cap = (cap + OG_ARENA_ALIGN - 1) & ~(size_t)(OG_ARENA_ALIGN - 1);
    if (cap == 0)
        return OG_OK;
    a->base = aligned_alloc(OG_ARENA_ALIGN, cap);
    if (!a->base)
        return og_fail(OG_ERR_OOM, "cannot allocate a %zu-byte arena", cap);
    a->cap = cap;
    return OG_OK;
}

void og_arena_free(og_arena *a)
{
    free(a->base);
    *a = (og_arena){0};
}

void *og_arena_alloc(og_arena *a, size_t bytes)
{
    size_t start = (a->used + OG_ARENA_ALIGN - 1) & ~(size_t)(OG_ARENA_ALIGN - 1);
    if (start > a->cap || bytes > a->cap - start) {
        og_fail(OG_ERR_OOM, "arena exhausted: %zu bytes requested, %zu of %zu in use", bytes,
                a->used, a->cap);
        return NULL;
    }
    a->used = start + bytes;
    if (a->used > a->peak)
        a->peak = a->used;
    return a->base + start;
}

void *og_arena_calloc(og_arena *a, size_t bytes)
{
    void *p = og_arena_alloc(a, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

size_t og_arena_need(size_t bytes)
{
    return ((bytes + OG_ARENA_ALIGN - 1) & ~(size_t)(OG_ARENA_ALIGN - 1)) + OG_ARENA_ALIGN;
}

og_status og_op_scratch_begin(og_op_scratch *s, og_arena *given, size_t bytes)
{
    *s = (og_op_scratch){0};
    if (given) {
        s->a = given;
        s->mark = og_arena_mark(given);
        return OG_OK;
    }
    OG_TRY(og_arena_init(&s->own, bytes));
    s->a = &s->own;
    return OG_OK;
}

void og_op_scratch_end(og_op_scratch *s)
{
    if (s->a == &s->own)
        og_arena_free(&s->own);
    else if (s->a)
        og_arena_release(s->a, s->mark);
    s->a = NULL;
}
