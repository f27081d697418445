/* Convolutions as im2col + og_sgemm, one band of output rows at a time so the column buffer stays
 * a few tens of MB whatever the image size; the causal 3-D convolution reuses the same machinery
 * with kt input frames per output frame. Also the nearest-neighbour x2 upsample. */
#include <stdlib.h>
#include <string.h>

#include "core/cpu/gemm.h"

#define OG_COL_BYTES (32u << 20) /* column buffer budget per band */

/* Where one of the kt input frames of an output frame comes from: [cin, h, w] with `cstride`
 * elements between channels, or NULL for a frame of zeros. */
typedef struct {
    const float *data;
    int64_t cstride;
} conv_frame;

typedef struct {
    int64_t cin, h, w, cout, ho, wo;
    int kt, kh, kw, stride, pad_h, pad_w;
} conv_shape;

/* y[cout, ho*wo] (rows ldy apart) = W[cout, cin*kt*kh*kw] . im2col(frames) + bias. */
static og_status conv_frames(float *y, int64_t ldy, const conv_frame *frames, const float *wf,
                             const float *bias, const conv_shape *s, float *col, int64_t band)
{
    const int64_t K = s->cin * s->kt * s->kh * s->kw;
    /* A 1x1 convolution (one frame, no stride or padding) multiplies the input in place. */
    const bool direct = K == s->cin && s->stride == 1 && s->pad_h == 0 && s->pad_w == 0 &&
                        frames[0].data;
    for (int64_t oy0 = 0; oy0 < s->ho; oy0 += band) {
        const int64_t rows = s->ho - oy0 < band ? s->ho - oy0 : band, n = rows * s->wo;
        const float *B = frames[0].data + oy0 * s->wo;
        int64_t ldb = frames[0].cstride;
        if (!direct) {
            B = col;
            ldb = n;
#pragma omp parallel for if (K * n > 65536)
            for (int64_t k = 0; k < K; k++) {
                const int dx = (int)(k % s->kw), dy = (int)(k / s->kw % s->kh);
                const int dt = (int)(k / ((int64_t)s->kw * s->kh) % s->kt);
                const int64_t ci = k / ((int64_t)s->kw * s->kh * s->kt);
                const conv_frame *f = &frames[dt];
                float *dst = col + k * n;
                for (int64_t r = 0; r < rows; r++) {
                    const int64_t iy = (oy0 + r) * s->stride - s->pad_h + dy;
                    float *d = dst + r * s->wo;
                    if (!f->data || iy < 0 || iy >= s->h) {
                        memset(d, 0, (size_t)s->wo * sizeof *d);
                        continue;
                    }
                    const float *src = f->data + ci * f->cstride + iy * s->w;
                    for (int64_t ox = 0; ox < s->wo; ox++) {
                        const int64_t ix = ox * s->stride - s->pad_w + dx;
                        d[ox] = ix >= 0 && ix < s->w ? src[ix] : 0.0f;
                    }
                }
            }
        }
        float *yb = y + oy0 * s->wo;
        if (bias) {
            for (int64_t c = 0; c < s->cout; c++)
                for (int64_t i = 0; i < n; i++)
                    yb[c * ldy + i] = bias[c];
        }
        OG_TRY(og_sgemm(false, false, s->cout, n, K, 1.0f, wf, K, B, ldb, bias ? 1.0f : 0.0f, yb,
                        ldy));
    }
    return OG_OK;
}

/* Allocates the f32 weights (a copy only for 16-bit types) and a column buffer for `band` output
 * rows; *band is chosen to fit OG_COL_BYTES. */
static og_status conv_buffers(const void *wgt, og_dtype wt, const conv_shape *s, float **wf,
                              float **wcopy, float **col, int64_t *band)
{
    const int64_t K = s->cin * s->kt * s->kh * s->kw;
    if (wt != OG_F32 && wt != OG_BF16 && wt != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "conv: weights of type %s", og_dtype_name(wt));
    int64_t per_row = K * s->wo * (int64_t)sizeof(float);
    *band = per_row > 0 ? (int64_t)OG_COL_BYTES / per_row : s->ho;
    *band = *band < 1 ? 1 : *band > s->ho ? s->ho : *band;
    *wcopy = NULL;
    *wf = (float *)wgt;
    if (wt != OG_F32) {
        *wcopy = malloc((size_t)(s->cout * K) * sizeof(float));
        if (!*wcopy)
            return og_fail(OG_ERR_OOM, "conv: cannot widen %lld weights", (long long)(s->cout * K));
        og_to_f32(*wcopy, wgt, wt, (size_t)(s->cout * K));
        *wf = *wcopy;
    }
    *col = malloc((size_t)(*band * s->wo * K) * sizeof(float) + 1);
    if (!*col) {
        free(*wcopy);
        return og_fail(OG_ERR_OOM, "conv: cannot allocate the column buffer");
    }
    return OG_OK;
}

og_status og_conv2d(float *y, const float *x, int64_t cin, int64_t h, int64_t w, const void *wgt,
                    og_dtype wt, const float *bias, int64_t cout, int kh, int kw, int stride,
                    int pad)
{
    if (cin <= 0 || h <= 0 || w <= 0 || cout <= 0 || kh <= 0 || kw <= 0 || stride <= 0 || pad < 0 ||
        h + 2 * pad < kh || w + 2 * pad < kw)
        return og_fail(OG_ERR_INVALID_ARG,
                       "conv2d: bad sizes (cin %lld, %lldx%lld, kernel %dx%d, stride %d, pad %d)",
                       (long long)cin, (long long)h, (long long)w, kh, kw, stride, pad);
    conv_shape s = {.cin = cin, .h = h, .w = w, .cout = cout, .kt = 1, .kh = kh, .kw = kw,
                    .stride = stride, .pad_h = pad, .pad_w = pad,
                    .ho = (h + 2 * pad - kh) / stride + 1, .wo = (w + 2 * pad - kw) / stride + 1};
    float *wf, *wcopy, *col;
    int64_t band;
    OG_TRY(conv_buffers(wgt, wt, &s, &wf, &wcopy, &col, &band));
    conv_frame f = {x, h * w};
    og_status st = conv_frames(y, s.ho * s.wo, &f, wf, bias, &s, col, band);
    free(col);
    free(wcopy);
    return st;
}

og_status og_conv3d_causal(float *y, const float *x, const float *cache, int64_t cin, int64_t t,
                           int64_t h, int64_t w, const void *wgt, og_dtype wt, const float *bias,
                           int64_t cout, int kt, int kh, int kw, int pad_h, int pad_w)
{
    if (cin <= 0 || t < 0 || h <= 0 || w <= 0 || cout <= 0 || kt <= 0 || kh <= 0 || kw <= 0 ||
        pad_h < 0 || pad_w < 0 || h + 2 * pad_h < kh || w + 2 * pad_w < kw)
        return og_fail(OG_ERR_INVALID_ARG,
                       "conv3d: bad sizes (cin %lld, %lldx%lldx%lld, kernel %dx%dx%d, pad %d,%d)",
                       (long long)cin, (long long)t, (long long)h, (long long)w, kt, kh, kw, pad_h,
                       pad_w);
    conv_shape s = {.cin = cin, .h = h, .w = w, .cout = cout, .kt = kt, .kh = kh, .kw = kw,
                    .stride = 1, .pad_h = pad_h, .pad_w = pad_w,
                    .ho = h + 2 * pad_h - kh + 1, .wo = w + 2 * pad_w - kw + 1};
    if (t == 0)
        return OG_OK;
    float *wf, *wcopy, *col;
    int64_t band;
    OG_TRY(conv_buffers(wgt, wt, &s, &wf, &wcopy, &col, &band));
    conv_frame *frames = malloc((size_t)kt * sizeof *frames);
    og_status st = frames ? OG_OK : og_fail(OG_ERR_OOM, "conv3d: out of memory");
    const int64_t plane = s.ho * s.wo;
    for (int64_t to = 0; to < t && st == OG_OK; to++) {
        /* Output frame `to` reads padded frames to..to+kt-1: the first kt-1 come from the cache. */
        for (int dt = 0; dt < kt; dt++) {
            int64_t f = to + dt - (kt - 1);
            if (f >= 0)
                frames[dt] = (conv_frame){x + f * h * w, t * h * w};
            else if (cache)
                frames[dt] = (conv_frame){cache + (f + kt - 1) * h * w, (int64_t)(kt - 1) * h * w};
            else
                frames[dt] = (conv_frame){NULL, 0};
        }
        st = conv_frames(y + to * plane, t * plane, frames, wf, bias, &s, col, band);
    }
    free(frames);
    free(col);
    free(wcopy);
    return st;
}

void og_upsample_nearest2x(float *y, const float *x, int64_t c, int64_t h, int64_t w)
{
#pragma omp parallel for if (c * h * w > 65536)
    for (int64_t r = 0; r < c * h; r++) {
        const float *xr = x + r * w;
        float *y0 = y + r * 4 * w, *y1 = y0 + 2 * w;
        for (int64_t i = 0; i < w; i++)
            y0[2 * i] = y0[2 * i + 1] = xr[i];
        memcpy(y1, y0, (size_t)(2 * w) * sizeof *y1);
    }
}
