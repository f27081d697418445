/* JSON helpers shared by the tests that read the reference library's fixtures (cJSON). */
#ifndef OG_TESTS_JSON_TESTUTIL_H
#define OG_TESTS_JSON_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* Copies up to cap numbers of a JSON array into out as floats; returns the array's length. */
static inline int og_test_json_floats(const cJSON *arr, float *out, int cap)
{
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        if (n < cap)
            out[n] = (float)v->valuedouble;
        n++;
    }
    return n;
}

/* Writes obj to a fresh temporary file made from `path` (a mkstemp template, rewritten in
 * place). Returns false when the file cannot be made; the caller unlinks it. */
static inline bool og_test_json_temp(const cJSON *obj, char *path)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    char *text = cJSON_Print(obj);
    FILE *f = fdopen(fd, "w");
    bool ok = f && text && fputs(text, f) >= 0;
    if (f)
        ok = fclose(f) == 0 && ok;
    else
        close(fd);
    free(text);
    return ok;
}

/* ids[0..n) == the JSON array exp; prints the first difference (labelled what, case case_i). */
static inline bool og_test_same_ids(const int32_t *ids, int n, const cJSON *exp, const char *what,
                                    int case_i)
{
    int m = cJSON_GetArraySize(exp);
    for (int i = 0; i < n && i < m; i++) {
        int e = cJSON_GetArrayItem(exp, i)->valueint;
        if (ids[i] != e) {
            fprintf(stderr, "case %d %s: id %d is %d, expected %d\n", case_i, what, i, ids[i], e);
            return false;
        }
    }
    if (n != m) {
        fprintf(stderr, "case %d %s: %d ids, expected %d\n", case_i, what, n, m);
        return false;
    }
    return true;
}

/* Writes text to path (a file the test then loads; a failed write shows as a failed load). */
static inline void og_test_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

#endif
