/* Whole-file reads with a size limit and messages that name the path. */
#include "io/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

og_status og_read_file(const char *path, size_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return og_fail(errno == ENOENT ? OG_ERR_NOT_FOUND : OG_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    size_t cap = 0, n = 0;
    char *buf = NULL;
    og_status s = OG_OK;
    /* Grow by doubling rather than trusting a size from stat: pipes and /proc files have none.
     * Reading at most max_bytes + 1 bytes is enough to tell that a file is too large. */
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                s = og_fail(OG_ERR_OOM, "out of memory reading %s", path);
                break;
            }
            buf = nb;
        }
        size_t want = cap - 1 - n;
        if (want > max_bytes + 1 - n)
            want = max_bytes + 1 - n;
        size_t got = fread(buf + n, 1, want, fp);
        n += got;
        if (n > max_bytes) {
            s = og_fail(OG_ERR_FORMAT, "%s is over the %zu-byte limit for this kind of file", path,
                        max_bytes);
            break;
        }
        if (got < want) {
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
    *data = buf;
    *len = n;
    return OG_OK;
}
