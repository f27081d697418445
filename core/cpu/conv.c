/* Convolutions on og_sgemm in bands of output rows, each thread taking whole bands with its own
 * column buffer of a few MB. A stride-1 convolution builds columns for the kw taps of a row only
 * (cin * kw rows, each band_rows + kh - 1 image rows long) and runs one GEMM per kernel row dy on
 * the columns shifted by dy image rows, accumulating into y: kh times less column data than a
 * full im2col. A strided convolution folds the kernel rows into the columns as well (plain
 * im2col). The causal 3-D convolution reuses the same machinery with kt input frames per output
 * frame. Also the nearest-neighbour x2 upsample. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu/gemm.h"

#define OG_COL_BYTES (4u << 20) /* column buffer budget per thread */
#define OG_MIN_BAND 4           /* output rows per band, at least */

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

/* Kernel rows folded into the columns: all kh for a strided convolution, else 1 (one GEMM per
 * kernel row reads the columns shifted by whole image rows, which needs stride 1). */
static int conv_fold(const conv_shape *s)
{
    return s->stride == 1 ? 1 : s->kh;
}

/* GEMM passes per frame (kernel rows not folded) and the K of each pass. */
static int conv_passes(const conv_shape *s)
{
    return s->kh / conv_fold(s);
}

static int64_t conv_pass_k(const conv_shape *s)
{
    return s->cin * conv_fold(s) * s->kw;
}

/* Output rows [oy0, oy0 + rows) of y[cout, ho*wo] (rows ldy apart) = sum over frames dt and
 * passes p of W[dt, p][cout, Kp] . columns(frame dt) shifted by p image rows, + bias. Runs on the
 * calling thread alone; col holds the band's columns. */
static og_status conv_band(float *y, int64_t ldy, const conv_frame *frames, const float *wp,
                           const float *bias, const conv_shape *s, float *col, int64_t oy0,
                           int64_t rows)
{
    const int fold = conv_fold(s), passes = conv_passes(s);
    const int64_t Kp = conv_pass_k(s), n = rows * s->wo;
    /* Column rows hold `span` image rows: the band plus the rows the passes shift over. */
    const int64_t span = rows + passes - 1, plane = span * s->wo;
    /* A 1x1 convolution (one frame, no stride or padding) multiplies the input in place. */
    const bool direct = s->kt == 1 && s->kh == 1 && s->kw == 1 && s->stride == 1 &&
                        s->pad_h == 0 && s->pad_w == 0;
    for (int dt = 0; dt < s->kt && !direct; dt++) {
        const conv_frame *f = &frames[dt];
        for (int64_t k = 0; k < Kp && f->data; k++) {
            const int dx = (int)(k % s->kw), fy = (int)(k / s->kw % fold);
            const int64_t ci = k / ((int64_t)s->kw * fold);
            float *dst = col + ((int64_t)dt * Kp + k) * plane;
            /* With stride 1 only the first and last few columns fall into the padding. */
            const int64_t off = dx - s->pad_w, lo = off < 0 ? -off : 0;
            const int64_t hi = s->w - off < s->wo ? s->w - off : s->wo;
            for (int64_t r = 0; r < span; r++) {
                const int64_t iy = (oy0 + r) * s->stride - s->pad_h + fy;
                float *d = dst + r * s->wo;
                if (iy < 0 || iy >= s->h) {
                    memset(d, 0, (size_t)s->wo * sizeof *d);
                    continue;
                }
                const float *src = f->data + ci * f->cstride + iy * s->w;
                if (s->stride == 1) {
                    for (int64_t ox = 0; ox < lo && ox < s->wo; ox++)
                        d[ox] = 0.0f;
                    if (hi > lo)
                        memcpy(d + lo, src + lo + off, (size_t)(hi - lo) * sizeof *d);
                    for (int64_t ox = hi > lo ? hi : lo; ox < s->wo; ox++)
                        d[ox] = 0.0f;
                    continue;
                }
                for (int64_t ox = 0; ox < s->wo; ox++) {
                    const int64_t ix = ox * s->stride - s->pad_w + dx;
                    d[ox] = ix >= 0 && ix < s->w ? src[ix] : 0.0f;
                }
            }
        }
    }
    float *yb = y + oy0 * s->wo;
    if (bias)
        for (int64_t c = 0; c < s->cout; c++)
            for (int64_t i = 0; i < n; i++)
                yb[c * ldy + i] = bias[c];
    float beta = bias ? 1.0f : 0.0f;
    for (int dt = 0; dt < s->kt; dt++) {
        if (!frames[dt].data)
            continue; /* a frame of zeros adds nothing; the causal layout always has the last */
        for (int p = 0; p < passes; p++) {
            const float *B = direct ? frames[0].data + oy0 * s->wo
                                    : col + (int64_t)dt * Kp * plane + p * s->wo;
            OG_TRY(og_sgemm(false, false, s->cout, n, Kp, 1.0f,
                            wp + ((int64_t)dt * passes + p) * s->cout * Kp, Kp, B,
                            direct ? frames[0].cstride : plane, beta, yb, ldy));
            beta = 1.0f;
        }
    }
    return OG_OK;
}

/* The whole output, band by band: each thread of the team takes whole bands with its own
 * column buffer (col + thread * col_floats), and the GEMM inside a band runs on that thread
 * alone. One barrier per convolution instead of several per band keeps the cores busy when the
 * machine is shared. */
static og_status conv_frames(float *y, int64_t ldy, const conv_frame *frames, const float *wp,
                             const float *bias, const conv_shape *s, float *col,
                             int64_t col_floats, int64_t band)
{
    const int64_t nbands = (s->ho + band - 1) / band;
    og_status st = OG_OK;
    char msg[512] = "";
#pragma omp parallel if (nbands > 1)
    {
        float *mine = col + (int64_t)omp_get_thread_num() * col_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < nbands; i++) {
            const int64_t oy0 = i * band, rows = s->ho - oy0 < band ? s->ho - oy0 : band;
            og_status bs = conv_band(y, ldy, frames, wp, bias, s, mine, oy0, rows);
            if (bs != OG_OK) {
#pragma omp critical(og_conv_error)
                if (st == OG_OK) {
                    st = bs;
                    snprintf(msg, sizeof msg, "%s", og_error_message());
                }
            }
        }
    }
    return st == OG_OK ? OG_OK : og_fail(st, "%s", msg);
}

/* Allocates the f32 weights in pass order, wp[dt, p][cout, Kp] with Kp = (ci, folded kernel row,
 * dx), and one column buffer of *col_floats per thread for bands of *band output rows: about
 * OG_COL_BYTES each (what keeps the GEMM's operands near the cache), at least OG_MIN_BAND rows so
 * that the shifted rows stay a small overhead, and at most an equal share of the rows per thread. */
static og_status conv_buffers(const void *wgt, og_dtype wt, const conv_shape *s, float **wp,
                              float **col, int64_t *col_floats, int64_t *band)
{
    if (wt != OG_F32 && wt != OG_BF16 && wt != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "conv: weights of type %s", og_dtype_name(wt));
    const int fold = conv_fold(s), passes = conv_passes(s), threads = omp_get_max_threads();
    const int64_t Kp = conv_pass_k(s), nw = s->cout * s->cin * s->kt * s->kh * s->kw;
    const int64_t per_row = s->kt * Kp * s->wo * (int64_t)sizeof(float);
    const int64_t share = (s->ho + threads - 1) / threads;
    *band = (int64_t)OG_COL_BYTES / per_row - (passes - 1);
    *band = *band < OG_MIN_BAND ? OG_MIN_BAND : *band;
    *band = *band > share ? share : *band;
    *col_floats = s->kt * Kp * (*band + passes - 1) * s->wo;
    float *wide = wt == OG_F32 ? NULL : malloc((size_t)nw * sizeof(float));
    *wp = malloc((size_t)nw * sizeof(float));
    *col = malloc((size_t)(threads * *col_floats) * sizeof(float) + 1);
    if ((wt != OG_F32 && !wide) || !*wp || !*col) {
        free(wide), free(*wp), free(*col);
        return og_fail(OG_ERR_OOM, "conv: cannot allocate %lld weights and the column buffers",
                       (long long)nw);
    }
    const float *wf = wgt;
    if (wide) {
        og_to_f32(wide, wgt, wt, (size_t)nw);
        wf = wide;
    }
#pragma omp parallel for collapse(2) schedule(static) if (nw > 65536)
    for (int64_t co = 0; co < s->cout; co++)
        for (int64_t ci = 0; ci < s->cin; ci++)
            for (int dt = 0; dt < s->kt; dt++)
                for (int ky = 0; ky < s->kh; ky++)
                    for (int dx = 0; dx < s->kw; dx++) {
                        const int p = ky / fold, fy = ky % fold;
                        (*wp)[(((int64_t)dt * passes + p) * s->cout + co) * Kp +
                              (ci * fold + fy) * s->kw + dx] =
                            wf[(((co * s->cin + ci) * s->kt + dt) * s->kh + ky) * s->kw + dx];
                    }
    free(wide);
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
    float *wp, *col;
    int64_t col_floats, band;
    OG_TRY(conv_buffers(wgt, wt, &s, &wp, &col, &col_floats, &band));
    conv_frame f = {x, h * w};
    og_status st = conv_frames(y, s.ho * s.wo, &f, wp, bias, &s, col, col_floats, band);
    free(col);
    free(wp);
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
    float *wp, *col;
    int64_t col_floats, band;
    OG_TRY(conv_buffers(wgt, wt, &s, &wp, &col, &col_floats, &band));
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
        st = conv_frames(y + to * plane, t * plane, frames, wp, bias, &s, col, col_floats,
                         band);
    }
    free(frames);
    free(col);
    free(wp);
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
