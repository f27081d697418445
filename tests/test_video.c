/* MP4 writer: frames written, then demuxed and decoded with libavformat/libavcodec: the stream
 * must have the size and frame count written, and each frame's colours must survive the lossy
 * encoding; a write into a missing folder fails naming the path and leaves nothing. */
#include <string.h>
#include <unistd.h>

#include "io/video.h"
#include "dirutil.h"
#include "testutil.h"

#ifdef OG_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

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

/* Decodes every frame of the file to RGB, comparing each to make_frame; returns frame count. */
static int read_back(const char *path, int *w, int *h, double *worst_mean_abs)
{
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0)
        return -1;
    avformat_find_stream_info(fmt, NULL);
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    const AVCodecParameters *par = fmt->streams[si]->codecpar;
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    AVCodecContext *dec = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(dec, par);
    avcodec_open2(dec, codec, NULL);
    *w = par->width;
    *h = par->height;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    struct SwsContext *sws = sws_getContext(par->width, par->height, par->format, W, H,
                                            AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    uint8_t got[W * H * 3], want[W * H * 3];
    int n = 0;
    *worst_mean_abs = 0;
    for (int flushing = 0;;) {
        if (!flushing) {
            if (av_read_frame(fmt, pkt) < 0) {
                flushing = 1;
                avcodec_send_packet(dec, NULL);
            } else {
                if (pkt->stream_index == si)
                    avcodec_send_packet(dec, pkt);
                av_packet_unref(pkt);
            }
        }
        int r;
        while ((r = avcodec_receive_frame(dec, f)) == 0) {
            uint8_t *dst[1] = {got};
            int stride[1] = {W * 3};
            sws_scale(sws, (const uint8_t *const *)f->data, f->linesize, 0, H, dst, stride);
            make_frame(want, n);
            double sum = 0;
            for (int i = 0; i < W * H * 3; i++)
                sum += abs((int)got[i] - (int)want[i]);
            if (sum / (W * H * 3) > *worst_mean_abs)
                *worst_mean_abs = sum / (W * H * 3);
            n++;
        }
        if (flushing && r == AVERROR_EOF)
            break;
    }
    sws_freeContext(sws);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return n;
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
    int n = read_back(path, &w, &h, &worst);
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
