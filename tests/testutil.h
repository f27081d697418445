/* Shared test helpers: a deterministic RNG for inputs, error measures and assertions that report
 * what failed. Every test compares against an independent reference (a naive double-precision op,
 * the reference library's saved outputs, or the single-rank run). Exit 77 means skipped. */
#ifndef OG_TESTUTIL_H
#define OG_TESTUTIL_H

#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "io/file.h"
#include "io/weights.h"

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

/* Compares n bytes of two 8-bit images: returns how many differ by at most 1 and stores how many
 * are equal in *exact. */
static inline int64_t og_test_u8_within1(const uint8_t *a, const uint8_t *b, int64_t n,
                                         int64_t *exact)
{
    int64_t within1 = 0, same = 0;
    for (int64_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        within1 += d <= 1;
        same += d == 0;
    }
    *exact = same;
    return within1;
}

/* Runs check(dir) on every fixture variant folder: the command line's arguments when there are
 * any, else every root/<name> (names not starting with '.') holding the file `marker`, in
 * directory order. Returns the sum of check's results and copies into first[size] the first
 * folder, or the last one whose path contains `prefer` (when non-NULL and found). */
static inline int og_test_each_variant(int argc, char **argv, const char *root, const char *marker,
                                       int (*check)(const char *dir), const char *prefer,
                                       char *first, size_t size)
{
    int checked = 0;
    first[0] = '\0';
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            checked += check(argv[i]);
        snprintf(first, size, "%s", argv[1]);
        return checked;
    }
    DIR *d = opendir(root);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char dir[600];
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof dir, "%s/%s/%s", root, e->d_name, marker);
        if (access(dir, R_OK) != 0)
            continue;
        snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
        checked += check(dir);
        if (!first[0] || (prefer && strstr(dir, prefer)))
            snprintf(first, size, "%s", dir);
    }
    if (d)
        closedir(d);
    return checked;
}

/* The f32 tensor `<prefix>.<what>` of a reference fixture file; any other dtype is a shape error. */
static inline og_status og_test_fixture_f32(const og_weights *ref, const char *prefix,
                                            const char *what, og_tensor *t)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s", prefix, what);
    OG_TRY(og_weights_get(ref, name, t));
    if (t->dtype != OG_F32)
        return og_fail(OG_ERR_SHAPE, "fixture tensor %s is %s, expected f32", name,
                       og_dtype_name(t->dtype));
    return OG_OK;
}

/* A JSON object into out: `key`: `value` first, then every keys[i]: values[i] but `key` (the
 * values are JSON text). */
static inline void og_test_config_with(char *out, size_t cap, const char *const *keys,
                                       const char *const *values, int n, const char *key,
                                       const char *value)
{
    int at = snprintf(out, cap, "{\"%s\": %s", key, value);
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i], key) != 0)
            at += snprintf(out + at, cap - (size_t)at, ", \"%s\": %s", keys[i], values[i]);
    snprintf(out + at, cap - (size_t)at, "}");
}

/* A new model folder dir (a mkdtemp of `templ`, at most 63 characters) holding config.json =
 * `config` and a copy of the safetensors file `weights` as diffusion_pytorch_model.safetensors;
 * og_test_model_remove deletes it. */
static inline og_status og_test_model_folder(char dir[64], const char *templ, const char *config,
                                             const char *weights)
{
    char path[256];
    snprintf(dir, 64, "%s", templ);
    if (!mkdtemp(dir))
        return og_fail(OG_ERR_IO, "mkdtemp");
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(config, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    og_test_copy_file(weights, path);
    return OG_OK;
}

static inline void og_test_model_remove(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

/* The largest og_test_rel_err_f of the `world` per-rank outputs out[r] [n] against ref [n]; frees
 * them. */
static inline double og_test_worst_rank_err(float **out, int world, const float *ref, size_t n)
{
    double worst = 0;
    for (int r = 0; r < world; r++) {
        double e = og_test_rel_err_f(out[r], ref, n);
        worst = e > worst ? e : worst;
        free(out[r]);
    }
    return worst;
}

#endif
