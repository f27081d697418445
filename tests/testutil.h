/* Shared test helpers: a deterministic RNG for inputs, error measures and assertions that report
 * what failed. Every test compares against an independent reference (a naive double-precision op,
 * the reference library's saved outputs, or the single-rank run). Exit 77 means skipped. */
#ifndef OG_TESTUTIL_H
#define OG_TESTUTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "core/error.h"
#include "io/file.h"

#define OG_TEST_SKIP 77

static int og_test_failures;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
            og_test_failures++;                                          \
        }                                                                \
    } while (0)

/* Asserts a status is OG_OK and prints the error context if not. */
#define CHECK_OK(expr)                                                            \
    do {                                                                          \
        og_status s_ = (expr);                                                    \
        if (s_ != OG_OK) {                                                        \
            fprintf(stderr, "FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #expr, \
                    og_status_name(s_), og_error_message());                      \
            og_test_failures++;                                                   \
        }                                                                         \
    } while (0)

static inline int og_test_finish(const char *name)
{
    if (og_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, og_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

/* A whole file in memory, NUL-terminated (its length, without the NUL, goes to len when not
 * NULL), or NULL. */
static inline void *og_test_read_file(const char *path, size_t *len)
{
    char *data;
    size_t n;
    if (og_read_file(path, (size_t)1 << 30, &data, &n) != OG_OK)
        return NULL;
    if (len)
        *len = n;
    return data;
}

/* Copies a file; false if either side cannot be opened. */
static inline bool og_test_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[4096];
    size_t n;
    while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    bool ok = in && out;
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return ok;
}

/* xorshift64*: the same inputs on every machine. */
typedef struct { uint64_t s; } og_test_rng;

static inline uint64_t og_test_next(og_test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [-1, 1). */
static inline float og_test_uniform(og_test_rng *r)
{
    return (float)((og_test_next(r) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

static inline void og_test_fill(og_test_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = og_test_uniform(r) * scale;
}

/* max|a - b| / max|b|: the norm-wise relative error used throughout the suite. */
static inline double og_test_rel_err(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num || d != d)
            num = d != d ? INFINITY : d;
        if (fabs(b[i]) > den)
            den = fabs(b[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

/* An arena for one op call sized by the op's *_scratch_bytes: `bytes` free after a 1-byte
 * allocation, so that the op starts from a misaligned fill level. The op must leave `used` at 1. */
static inline og_status og_test_scratch(og_arena *a, size_t bytes)
{
    OG_TRY(og_arena_init(a, 64 + bytes));
    og_arena_alloc(a, 1);
    return OG_OK;
}

static inline double og_test_rel_err_f(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num || d != d)
            num = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > den)
            den = fabs((double)b[i]);
    }
    return num / (den > 1e-30 ? den : 1e-30);
}

#endif
