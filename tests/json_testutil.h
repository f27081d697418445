/* JSON helpers shared by the tests that read the reference library's fixtures (cJSON). */
#ifndef OG_TESTS_JSON_TESTUTIL_H
#define OG_TESTS_JSON_TESTUTIL_H

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

#endif
