/* The stb_image_write back end of og_image_write_png, for builds without libpng. stb encodes
 * the image in memory; the text chunks (which stb cannot write) are spliced in after IHDR. */
#ifndef OG_HAVE_PNG

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

enum { PNG_SIG_AND_IHDR = 8 + 4 + 4 + 13 + 4 };

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Writes one tEXt (ASCII value) or iTXt (UTF-8 value, uncompressed) chunk. */
static int write_text_chunk(FILE *fp, const og_image_text *t)
{
    bool ascii = og_image_text_is_ascii(t->value);
    size_t klen = strlen(t->key), vlen = strlen(t->value);
    /* iTXt: key\0, compression flag, method, language\0, translated key\0, text. */
    size_t len = klen + 1 + (ascii ? 0 : 4) + vlen;
    if (len > 0x7fffffffu - 8)
        return -1;
    unsigned char *c = malloc(len + 12);
    if (!c)
        return -1;
    put_be32(c, (uint32_t)len);
    memcpy(c + 4, ascii ? "tEXt" : "iTXt", 4);
    unsigned char *p = c + 8;
    memcpy(p, t->key, klen + 1);
    p += klen + 1;
    if (!ascii) {
        memset(p, 0, 4);
        p += 4;
    }
    memcpy(p, t->value, vlen);
    put_be32(c + 8 + len, stbiw__crc32(c + 4, (int)len + 4));
    int rc = fwrite(c, 1, len + 12, fp) == len + 12 ? 0 : -1;
    free(c);
    return rc;
}

og_status og_image_write_png(const char *path, const uint8_t *rgb, int w, int h,
                             const og_image_text *kv, int n_kv)
{
    if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000 || !rgb)
        return og_fail(OG_ERR_INVALID_ARG, "writing %s: bad image size %dx%d", path, w, h);
    OG_TRY(og_image_check_text(path, kv, n_kv));
    int png_len = 0;
    unsigned char *png = stbi_write_png_to_mem(rgb, w * 3, w, h, 3, &png_len);
    if (!png || png_len < PNG_SIG_AND_IHDR)
        return og_fail(OG_ERR_OOM, "writing %s: cannot encode the PNG", path);
    char tmp[4096];
    og_status s = og_output_begin(path, tmp, sizeof tmp);
    if (s != OG_OK) {
        STBIW_FREE(png);
        return s;
    }
    FILE *fp = fopen(tmp, "wb");
    int ok = fp != NULL;
    ok = ok && fwrite(png, 1, PNG_SIG_AND_IHDR, fp) == PNG_SIG_AND_IHDR;
    for (int i = 0; ok && i < n_kv; i++)
        ok = write_text_chunk(fp, &kv[i]) == 0;
    ok = ok && fwrite(png + PNG_SIG_AND_IHDR, 1, (size_t)png_len - PNG_SIG_AND_IHDR, fp) ==
                   (size_t)png_len - PNG_SIG_AND_IHDR;
    int e = errno;
    if (fp && fclose(fp) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    STBIW_FREE(png);
    if (!ok) {
        og_output_abort(tmp);
        return og_fail(OG_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return og_output_commit(tmp, path);
}

#endif
