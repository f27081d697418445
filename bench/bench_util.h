/* Small helpers shared by the CPU benchmark programs in bench/: clocks, the median's sort order
 * and raw f32 file input/output. Header-only (each bench/ program is one translation unit). */
#ifndef OG_BENCH_UTIL_H
#define OG_BENCH_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

/* The time of `clock` (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID...) in seconds. */
static inline double seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* qsort order for doubles, ascending. */
static inline int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reads or writes exactly n floats of a raw file; returns 0 on success. */
static inline int raw_io(const char *path, float *data, size_t n, bool write)
{
    FILE *f = fopen(path, write ? "wb" : "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    size_t done = write ? fwrite(data, sizeof *data, n, f) : fread(data, sizeof *data, n, f);
    int extra = !write && fgetc(f) != EOF;
    if (fclose(f) != 0 || done != n || extra) {
        fprintf(stderr, "%s: expected exactly %zu f32 values\n", path, n);
        return 1;
    }
    return 0;
}

#endif
