/* The libpng back end of og_image_write_png (built when CMake finds libpng). libpng reports
 * errors by longjmp; the message is kept so the caller's error names the path and the cause. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

typedef struct {
    jmp_buf jmp;
    char msg[256];
} png_err_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_err_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    longjmp(ctx->jmp, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {}

/* Writes the whole PNG to an open stream; returns 0 or -1 with ctx->msg set. */
static int png_write_stream(FILE *fp, const uint8_t *rgb, int w, int h, const og_image_text *kv,
                            int n_kv, png_err_ctx *ctx)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_text *volatile text = calloc(n_kv > 0 ? (size_t)n_kv : 1, sizeof(png_text));
    if (!png || !info || !text) {
        snprintf(ctx->msg, sizeof ctx->msg, "out of memory");
        png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
        free(text);
        return -1;
    }
    if (setjmp(ctx->jmp)) {
        png_destroy_write_struct(&png, &info);
        free(text);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    for (int i = 0; i < n_kv; i++) {
        text[i].key = (png_charp)kv[i].key;
        text[i].text = (png_charp)kv[i].value;
        text[i].text_length = strlen(kv[i].value);
        if (og_image_text_is_ascii(kv[i].value)) {
            text[i].compression = PNG_TEXT_COMPRESSION_NONE;
        } else {
            text[i].compression = PNG_ITXT_COMPRESSION_NONE;
            text[i].lang = (png_charp) "";
            text[i].lang_key = (png_charp) "";
        }
    }
    if (n_kv > 0)
        png_set_text(png, info, text, n_kv);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)w * 3));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(text);
    return 0;
}

og_status og_image_write_png(const char *path, const uint8_t *rgb, int w, int h,
                             const og_image_text *kv, int n_kv)
{
    if (w <= 0 || h <= 0 || w > 1000000 || h > 1000000 || !rgb)
        return og_fail(OG_ERR_INVALID_ARG, "writing %s: bad image size %dx%d", path, w, h);
    OG_TRY(og_image_check_text(path, kv, n_kv));
    char tmp[4096];
    OG_TRY(og_output_begin(path, tmp, sizeof tmp));
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        og_output_abort(tmp);
        return og_fail(OG_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    png_err_ctx ctx = {.msg = ""};
    int rc = png_write_stream(fp, rgb, w, h, kv, n_kv, &ctx);
    if (fflush(fp) != 0 || ferror(fp)) {
        rc = -1;
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
    }
    if (fclose(fp) != 0 && rc == 0) {
        rc = -1;
        snprintf(ctx.msg, sizeof ctx.msg, "%s", strerror(errno));
    }
    if (rc != 0) {
        og_output_abort(tmp);
        return og_fail(OG_ERR_IO, "cannot write %s: %s", path, ctx.msg);
    }
    return og_output_commit(tmp, path);
}
