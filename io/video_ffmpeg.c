/* The MP4 writer through FFmpeg: RGB frames -> swscale to YUV 4:2:0 -> libx264 (or mpeg4) ->
 * the mp4 muxer, into a temporary file beside the destination that is renamed on success. */
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <string.h>

#include "io/video.h"

static const AVCodec *pick_encoder(void)
{
    const AVCodec *c = avcodec_find_encoder_by_name("libx264");
    return c ? c : avcodec_find_encoder(AV_CODEC_ID_MPEG4);
}

const char *og_video_encoder_name(void)
{
    const AVCodec *c = pick_encoder();
    return c ? c->name : NULL;
}

typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *enc;
    AVStream *st;
    AVPacket *pkt;
} mp4_out;

static og_status av_err(const char *path, const char *what, int err)
{
    char buf[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(err, buf, sizeof buf);
    return og_fail(OG_ERR_IO, "cannot write %s: %s: %s", path, what, buf);
}

/* Sends one frame (NULL flushes) and writes every packet the encoder returns. */
static og_status encode(mp4_out *o, const AVFrame *frame, const char *path)
{
    int r = avcodec_send_frame(o->enc, frame);
    if (r < 0)
        return av_err(path, "encoding", r);
    for (;;) {
        r = avcodec_receive_packet(o->enc, o->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return OG_OK;
        if (r < 0)
            return av_err(path, "encoding", r);
        /* Every frame lasts one tick; without a duration the muxer's edit list cuts the last. */
        o->pkt->duration = 1;
        av_packet_rescale_ts(o->pkt, o->enc->time_base, o->st->time_base);
        o->pkt->stream_index = o->st->index;
        r = av_interleaved_write_frame(o->fmt, o->pkt);
        if (r < 0)
            return av_err(path, "writing", r);
    }
}

static og_status mp4_open(mp4_out *o, const char *tmp, const char *path, int w, int h, int fps,
                          const og_image_text *kv, int n_kv)
{
    const AVCodec *codec = pick_encoder();
    if (!codec)
        return og_fail(OG_ERR_UNSUPPORTED, "cannot write %s: FFmpeg has no H.264 or MPEG-4 encoder",
                       path);
    int r = avformat_alloc_output_context2(&o->fmt, NULL, "mp4", tmp);
    if (r < 0)
        return av_err(path, "mp4 muxer", r);
    for (int i = 0; i < n_kv; i++)
        av_dict_set(&o->fmt->metadata, kv[i].key, kv[i].value, 0);
    o->st = avformat_new_stream(o->fmt, NULL);
    o->enc = avcodec_alloc_context3(codec);
    o->pkt = av_packet_alloc();
    if (!o->st || !o->enc || !o->pkt)
        return og_fail(OG_ERR_OOM, "cannot write %s: out of memory", path);
    o->enc->width = w;
    o->enc->height = h;
    o->enc->pix_fmt = AV_PIX_FMT_YUV420P;
    o->enc->time_base = (AVRational){1, fps};
    o->enc->framerate = (AVRational){fps, 1};
    o->enc->gop_size = 12;
    if (strcmp(codec->name, "libx264") == 0) {
        av_opt_set(o->enc->priv_data, "preset", "medium", 0);
        av_opt_set(o->enc->priv_data, "crf", "18", 0);
    } else {
        o->enc->flags |= AV_CODEC_FLAG_QSCALE; /* constant quality, near-transparent */
        o->enc->global_quality = FF_QP2LAMBDA * 3;
    }
    if (o->fmt->oformat->flags & AVFMT_GLOBALHEADER)
        o->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((r = avcodec_open2(o->enc, codec, NULL)) < 0)
        return av_err(path, codec->name, r);
    if ((r = avcodec_parameters_from_context(o->st->codecpar, o->enc)) < 0)
        return av_err(path, "stream parameters", r);
    o->st->time_base = o->enc->time_base;
    if ((r = avio_open(&o->fmt->pb, tmp, AVIO_FLAG_WRITE)) < 0)
        return av_err(path, "opening the temporary file", r);
    AVDictionary *opts = NULL;
    av_dict_set(&opts, "movflags", "+faststart+use_metadata_tags", 0);
    r = avformat_write_header(o->fmt, &opts);
    av_dict_free(&opts);
    return r < 0 ? av_err(path, "mp4 header", r) : OG_OK;
}

static og_status mp4_frames(mp4_out *o, const uint8_t *frames, int n_frames, int w, int h,
                            const char *path)
{
    struct SwsContext *sws = sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, AV_PIX_FMT_YUV420P,
                                            SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    AVFrame *f = av_frame_alloc();
    og_status s = OG_OK;
    if (!sws || !f) {
        s = og_fail(OG_ERR_OOM, "cannot write %s: out of memory", path);
        goto done;
    }
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    int r = av_frame_get_buffer(f, 0);
    if (r < 0) {
        s = av_err(path, "frame buffer", r);
        goto done;
    }
    for (int i = 0; i < n_frames && s == OG_OK; i++) {
        if ((r = av_frame_make_writable(f)) < 0) {
            s = av_err(path, "frame buffer", r);
            break;
        }
        const uint8_t *src[1] = {frames + (size_t)i * w * h * 3};
        const int stride[1] = {w * 3};
        sws_scale(sws, src, stride, 0, h, f->data, f->linesize);
        f->pts = i;
        s = encode(o, f, path);
    }
    if (s == OG_OK)
        s = encode(o, NULL, path);
done:
    av_frame_free(&f);
    sws_freeContext(sws);
    return s;
}

og_status og_video_write_mp4(const char *path, const uint8_t *frames, int n_frames, int w, int h,
                             int fps, const og_image_text *kv, int n_kv)
{
    if (n_frames < 1 || !frames || w < 2 || h < 2 || w % 2 || h % 2 || w > 16384 || h > 16384 ||
        fps < 1)
        return og_fail(OG_ERR_INVALID_ARG,
                       "writing %s: bad video (%d frames of %dx%d at %d fps; width and height "
                       "must be even)",
                       path, n_frames, w, h, fps);
    OG_TRY(og_image_check_text(path, kv, n_kv));
    /* FFmpeg and x264 print progress at INFO; only omnigen's debug level lets that through. */
    av_log_set_level(og_log_get_level() >= OG_LOG_DEBUG ? AV_LOG_INFO : AV_LOG_ERROR);
    char tmp[4096];
    OG_TRY(og_output_begin(path, tmp, sizeof tmp));
    mp4_out o = {0};
    og_status s = mp4_open(&o, tmp, path, w, h, fps, kv, n_kv);
    if (s == OG_OK)
        s = mp4_frames(&o, frames, n_frames, w, h, path);
    if (s == OG_OK) {
        int r = av_write_trailer(o.fmt);
        if (r < 0)
            s = av_err(path, "mp4 trailer", r);
    }
    if (o.fmt && o.fmt->pb && avio_closep(&o.fmt->pb) < 0 && s == OG_OK)
        s = og_fail(OG_ERR_IO, "cannot write %s: closing the file failed", path);
    avcodec_free_context(&o.enc);
    av_packet_free(&o.pkt);
    avformat_free_context(o.fmt);
    if (s != OG_OK) {
        og_output_abort(tmp);
        return s;
    }
    return og_output_commit(tmp, path);
}
