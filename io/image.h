/* Image output: float [3, H, W] in [0, 1] to 8-bit HWC, and PNG files with text metadata.
 *
 *     uint8_t *px = malloc(3 * (size_t)w * h);
 *     og_image_to_u8(px, rgb, h, w);              // rounds as the reference pipeline does
 *     og_image_text kv[] = {{"prompt", "a cat"}, {"seed", "42"}};
 *     OG_TRY(og_image_write_png("cat.png", px, w, h, kv, 2));
 *
 * PNGs are written through libpng when the build found it (OG_HAVE_PNG), through
 * stb_image_write otherwise; both builds store the same text chunks: tEXt for Latin-1-safe
 * ASCII values, iTXt (UTF-8) for anything else. Every output file is written under a temporary
 * name in its own folder and renamed into place, so a failed write leaves neither the file nor
 * the temporary behind. */
#ifndef OG_IO_IMAGE_H
#define OG_IO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* One text chunk. Keys are 1..79 printable ASCII characters without leading, trailing or
 * doubled spaces (the PNG rule); values are UTF-8. */
typedef struct {
    const char *key;
    const char *value;
} og_image_text;

/* rgb_chw [3, h, w] floats -> hwc [h, w, 3] bytes: clamp to [0, 1], then round(x * 255) in f32
 * with ties to even, as VaeImageProcessor's (images * 255).round() does. */
void og_image_to_u8(uint8_t *hwc, const float *rgb_chw, int64_t h, int64_t w);

/* Writes an 8-bit RGB PNG (rgb is HWC, rows packed) with n_kv text chunks (kv may be NULL when
 * n_kv is 0). OG_ERR_INVALID_ARG for a bad size or key, OG_ERR_IO naming the path otherwise. */
og_status og_image_write_png(const char *path, const uint8_t *rgb, int w, int h,
                             const og_image_text *kv, int n_kv);

/* ---- atomic output files (shared by the PNG and MP4 writers) ------------------------------ */

/* Creates a new, empty temporary file beside `path` (same folder, name ".<base>.tmp.<unique>")
 * and writes its name into tmp (cap bytes). The caller writes it, then calls
 * og_output_commit (rename over path) or og_output_abort (unlink). OG_ERR_IO names the folder
 * when it cannot be created there. */
og_status og_output_begin(const char *path, char *tmp, size_t cap);
/* Renames tmp to path; on failure removes tmp and returns OG_ERR_IO naming path. */
og_status og_output_commit(const char *tmp, const char *path);
void og_output_abort(const char *tmp);

/* ---- shared by the two PNG back ends ------------------------------------------------------ */

/* OG_ERR_INVALID_ARG naming path and key unless every key follows the PNG rule above. */
og_status og_image_check_text(const char *path, const og_image_text *kv, int n_kv);
/* True when the value can go in a tEXt chunk (printable ASCII, tab or newline); otherwise the
 * back ends store it as UTF-8 in an iTXt chunk. */
bool og_image_text_is_ascii(const char *value);

#endif
