/* Whole-file JSON loading with messages that point at the fault. */
#include "io/json_file.h"

#include <stdlib.h>
#include <string.h>

#include "io/file.h"

/* Configs and weight indexes are kilobytes to a few megabytes. */
#define OG_JSON_MAX_BYTES ((size_t)256 << 20)

og_status og_json_load(const char *path, cJSON **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    OG_TRY(og_read_file(path, OG_JSON_MAX_BYTES, &text, &len));
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
