/* MP4 writer: frames written, then demuxed and decoded with libavformat/libavcodec: the stream
 * must have the size and frame count written, and each frame's colours must survive the lossy
 * encoding; a write into a missing folder fails naming the path and leaves nothing. */
#include <string.h>
#include <unistd.h>

#include "io/video.h"
#include "dirutil.h"
#include "testutil.h"
#include "video_testutil.h"

#ifdef OG_HAVE_FFMPEG

enum { W = 64, H = 48, N = 6, FPS = 8 };

/* A frame per index: a smooth gradient plus a colour that changes from frame to frame. */
static void make_frame(uint8_t *px, int i)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + (y * W + x) * 3;
            p[0] = (uint8_t)(40 * i + 2 * x);
            p[1] = (uint8_t)(200 - 25 * i + y);
            p[2] = (uint8_t)(128 + (x + y) / 2);
        }
}

int main(void)
{
    char dir[] = "/tmp/og_test_video_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    static uint8_t frames[N][W * H * 3];
    for (int i = 0; i < N; i++)
        make_frame(frames[i], i);
    char path[600];
    snprintf(path, sizeof path, "%s/clip.mp4", dir);
    og_image_text kv[] = {{"prompt", "a fox in the snow"}, {"seed", "7"}};
    CHECK_OK(og_video_write_mp4(path, frames[0], N, W, H, FPS, kv, 2));
    int w = 0, h = 0;
    double worst = 0;
    int n = og_test_mp4_compare(path, frames[0], N, W, H, &w, &h, &worst);
    printf("%s: %d frames %dx%d, worst per-frame mean abs error %.2f / 255\n",
           og_video_encoder_name(), n, w, h, worst);
    CHECK(n == N, "read back %d frames, wrote %d", n, N);
    CHECK(w == W && h == H, "read back %dx%d", w, h);
    CHECK(worst < 4.0, "frames differ by %.2f on average", worst);
    CHECK(og_test_count_entries(dir) == 1, "%d entries beside the video",
          og_test_count_entries(dir));
    unlink(path);

    snprintf(path, sizeof path, "%s/missing/clip.mp4", dir);
    og_status s = og_video_write_mp4(path, frames[0], N, W, H, FPS, NULL, 0);
    CHECK(s == OG_ERR_IO, "missing folder -> %s", og_status_name(s));
    CHECK(strstr(og_error_message(), path) != NULL, "message: %s", og_error_message());
    snprintf(path, sizeof path, "%s/odd.mp4", dir);
    CHECK(og_video_write_mp4(path, frames[0], N, W - 1, H, FPS, NULL, 0) == OG_ERR_INVALID_ARG,
          "odd width accepted");
    CHECK(og_test_count_entries(dir) == 0, "failed writes left %d entries",
          og_test_count_entries(dir));
    rmdir(dir);
    return og_test_finish("test_video");
}
#else
int main(void)
{
    uint8_t px[12] = {0};
    og_status s = og_video_write_mp4("/tmp/x.mp4", px, 1, 2, 2, 1, NULL, 0);
    if (s != OG_ERR_UNSUPPORTED) {
        fprintf(stderr, "FAIL: a build without FFmpeg returned %s\n", og_status_name(s));
        return 1;
    }
    printf("SKIPPED: built without FFmpeg (the writer refuses with OG_ERR_UNSUPPORTED)\n");
    return OG_TEST_SKIP;
}
#endif
