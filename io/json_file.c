/* Whole-file JSON loading with messages that point at the fault. */
#include "io/json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Configs and weight indexes are kilobytes to a few megabytes. */
#define OG_JSON_MAX_BYTES (256u << 20)

static og_status read_text(const char *path, char **text, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return og_fail(errno == ENOENT ? OG_ERR_NOT_FOUND : OG_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    size_t cap = 0, n = 0;
    char *buf = NULL;
    og_status s = OG_OK;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = cap <= OG_JSON_MAX_BYTES ? realloc(buf, cap) : NULL;
            if (!nb) {
                s = cap > OG_JSON_MAX_BYTES
                        ? og_fail(OG_ERR_FORMAT, "%s is over %u MB, too large for a JSON file",
                                  path, OG_JSON_MAX_BYTES >> 20)
                        : og_fail(OG_ERR_OOM, "out of memory reading %s", path);
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp))
                s = og_fail(OG_ERR_IO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
    }
    fclose(fp);
    if (s != OG_OK) {
        free(buf);
        return s;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return OG_OK;
}

og_status og_json_load(const char *path, cJSON **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    OG_TRY(read_text(path, &text, &len));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    og_status s = OG_OK;
    if (!root || strspn(end, " \t\r\n") != (size_t)(text + len - end)) {
        int line = 1, col = 1;
        for (const char *c = text; end && c < end; c++, col++)
            if (*c == '\n') {
                line++;
                col = 0;
            }
        s = og_fail(OG_ERR_FORMAT, "%s is not valid JSON (line %d, column %d)", path, line, col);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    *out = root;
    return s;
}
