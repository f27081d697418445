/* Reading MP4 files back in the tests (FFmpeg builds only). */
#ifndef OG_TESTS_VIDEO_TESTUTIL_H
#define OG_TESTS_VIDEO_TESTUTIL_H

#ifdef OG_HAVE_FFMPEG
#include <stdint.h>
#include <stdlib.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

/* Decodes every frame of an MP4 to RGB at W x H: returns the frame count (-1 when the file does
 * not open), the stored size in w, h, and in worst the largest per-frame mean |difference| to
 * want ([nwant, H, W, 3] bytes; frames past nwant are counted, not compared). */
static inline int og_test_mp4_compare(const char *path, const uint8_t *want, int nwant, int W,
                                      int H, int *w, int *h, double *worst)
{
    AVFormatContext *fmt = NULL;
    if (avformat_open_input(&fmt, path, NULL, NULL) < 0)
        return -1;
    avformat_find_stream_info(fmt, NULL);
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (si < 0) {
        avformat_close_input(&fmt);
        return -1;
    }
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
    uint8_t *got = malloc((size_t)W * H * 3);
    int n = 0;
    *worst = 0;
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
            if (n < nwant) {
                double sum = 0;
                for (int i = 0; i < W * H * 3; i++)
                    sum += abs((int)got[i] - (int)want[(size_t)n * W * H * 3 + i]);
                if (sum / (W * H * 3) > *worst)
                    *worst = sum / (W * H * 3);
            }
            n++;
        }
        if (flushing && r == AVERROR_EOF)
            break;
    }
    free(got);
    sws_freeContext(sws);
    av_frame_free(&f);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    return n;
}
#endif

#endif
