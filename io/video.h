/* Video output: a sequence of 8-bit RGB frames to an MP4 file (H.264 through libx264 when
 * FFmpeg has it, MPEG-4 Part 2 otherwise), written under a temporary name and renamed into
 * place like the PNG writer, so a failed write leaves nothing behind.
 *
 *     // frames: n_frames x [h, w, 3] bytes, back to back (og_image_to_u8 per frame)
 *     og_image_text kv[] = {{"prompt", "a fox in the snow"}, {"seed", "7"}};
 *     OG_TRY(og_video_write_mp4("fox.mp4", frames, n_frames, w, h, 16, kv, 2));
 *
 * Builds without FFmpeg's libraries (OG_HAVE_FFMPEG unset) return OG_ERR_UNSUPPORTED. */
#ifndef OG_IO_VIDEO_H
#define OG_IO_VIDEO_H

#include <stdint.h>

#include "core/error.h"
#include "io/image.h"

/* Width and height must be even (4:2:0 chroma); fps >= 1. The key/values go into the
 * container's metadata. */
og_status og_video_write_mp4(const char *path, const uint8_t *frames, int n_frames, int w, int h,
                             int fps, const og_image_text *kv, int n_kv);

/* The encoder this build uses ("libx264", "mpeg4"), or NULL without FFmpeg. */
const char *og_video_encoder_name(void);

#endif
