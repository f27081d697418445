/* What both PNG back ends share: the float-to-byte conversion, text-chunk validation, and the
 * temporary-file-then-rename protocol that every output writer (PNG, MP4) goes through. */
#include "io/image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void og_image_to_u8(uint8_t *hwc, const float *rgb_chw, int64_t h, int64_t w)
{
    const int64_t plane = h * w;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < plane; i++) {
        for (int c = 0; c < 3; c++) {
            float x = rgb_chw[c * plane + i];
            x = x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; /* also maps NaN to 0 */
            hwc[i * 3 + c] = (uint8_t)rintf(x * 255.0f);
        }
    }
}

og_status og_image_check_text(const char *path, const og_image_text *kv, int n_kv)
{
    if (n_kv < 0 || (n_kv > 0 && !kv))
        return og_fail(OG_ERR_INVALID_ARG, "writing %s: bad text chunk list", path);
    for (int i = 0; i < n_kv; i++) {
        const char *k = kv[i].key;
        size_t n = k ? strlen(k) : 0;
        bool ok = n >= 1 && n <= 79 && k[0] != ' ' && k[n - 1] != ' ' && kv[i].value;
        for (size_t j = 0; ok && j < n; j++)
            ok = k[j] >= 0x20 && k[j] < 0x7f && !(k[j] == ' ' && k[j + 1] == ' ');
        if (!ok)
            return og_fail(OG_ERR_INVALID_ARG,
                           "writing %s: text key \"%s\" is not 1-79 printable ASCII characters "
                           "without leading, trailing or doubled spaces (or its value is NULL)",
                           path, k ? k : "(null)");
    }
    return OG_OK;
}

bool og_image_text_is_ascii(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p >= 0x7f || (*p < 0x20 && *p != '\n' && *p != '\t'))
            return false;
    return true;
}

og_status og_output_begin(const char *path, char *tmp, size_t cap)
{
    static atomic_uint counter;
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    const char *base = path + dir_len;
    if (!*base)
        return og_fail(OG_ERR_INVALID_ARG, "output path %s names a folder, not a file", path);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned id = atomic_fetch_add(&counter, 1);
        int n = snprintf(tmp, cap, "%.*s.%s.tmp.%ld.%u", dir_len, path, base, (long)getpid(), id);
        if (n < 0 || (size_t)n >= cap)
            return og_fail(OG_ERR_INVALID_ARG, "output path %s is too long", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return OG_OK;
        }
        if (errno != EEXIST)
            return og_fail(OG_ERR_IO, "cannot write %s: cannot create a file in %.*s: %s", path,
                           dir_len ? dir_len : 1, dir_len ? path : ".", strerror(errno));
    }
    return og_fail(OG_ERR_IO, "cannot write %s: no free temporary name beside it", path);
}

og_status og_output_commit(const char *tmp, const char *path)
{
    /* Flush the data before the rename makes it visible, so a crash never leaves a torn file
     * under the final name. */
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return og_fail(OG_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return og_fail(OG_ERR_IO, "cannot write %s: rename failed: %s", path, strerror(e));
    }
    return OG_OK;
}

void og_output_abort(const char *tmp)
{
    unlink(tmp);
}
