/* og_video_write_mp4 for builds without FFmpeg's libraries: a clear refusal. */
#ifndef OG_HAVE_FFMPEG

#include "io/video.h"

og_status og_video_write_mp4(const char *path, const uint8_t *frames, int n_frames, int w, int h,
                             int fps, const og_image_text *kv, int n_kv)
{
    return og_fail(OG_ERR_UNSUPPORTED,
                   "cannot write %s: this build has no MP4 writer (install FFmpeg's development "
                   "libraries, libavcodec-dev libavformat-dev libswscale-dev, and rebuild)",
                   path);
}

const char *og_video_encoder_name(void)
{
    return NULL;
}

#endif
