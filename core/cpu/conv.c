/* Convolutions on og_sgemm in bands of output rows, each thread taking whole bands with its own
 * column buffer of a few MB. A stride-1 convolution builds columns for the kw taps of a row only
 * (cin * kw rows, each band_rows + kh - 1 image rows long) and runs one GEMM per kernel row dy on
 * the columns shifted by dy image rows, accumulating into y: kh times less column data than a
 * full im2col. A strided convolution folds the kernel rows into the columns as well (plain
 * im2col). The causal 3-D convolution reuses the same machinery with kt input frames per output
 * frame. The repacked weights and the column buffers are the caller's scratch. Also the
 * nearest-neighbour x2 upsample. */
#include <omp.h>
#include <stdio.h>
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

/* One call's scratch, one arena block: the f32 weights in pass order, wp[dt, p][cout, Kp] with
 * Kp = (ci, folded kernel row, dx); the kt frame descriptors; and a column buffer of col_floats
 * per thread of the team for bands of `band` output rows: about OG_COL_BYTES each (what keeps
 * the GEMM's operands near the cache), at least OG_MIN_BAND rows so that the shifted rows stay a
 * small overhead, and at most an equal share of the rows per thread. */
typedef struct {
    int threads;
    int64_t band, col_floats;
    size_t wp_bytes, frames_bytes, col_bytes;
} conv_plan;

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

static conv_plan conv_plan_for(const conv_shape *s)
{
    conv_plan p = {.threads = omp_get_max_threads()};
    const int passes = conv_passes(s);
    const int64_t Kp = conv_pass_k(s);
    const int64_t per_row = s->kt * Kp * s->wo * (int64_t)sizeof(float);
    const int64_t share = (s->ho + p.threads - 1) / p.threads;
    p.band = (int64_t)OG_COL_BYTES / per_row - (passes - 1);
    p.band = p.band < OG_MIN_BAND ? OG_MIN_BAND : p.band;
    p.band = p.band > share ? share : p.band;
    p.col_floats = s->kt * Kp * (p.band + passes - 1) * s->wo;
    p.wp_bytes = round64((size_t)(s->cout * s->cin * s->kt * s->kh * s->kw) * sizeof(float));
    p.frames_bytes = round64((size_t)s->kt * sizeof(conv_frame));
    p.col_bytes = round64((size_t)(p.threads * p.col_floats) * sizeof(float));
    return p;
}

static size_t conv_scratch_bytes(const conv_shape *s)
{
    const conv_plan p = conv_plan_for(s);
    return og_arena_need(p.wp_bytes + p.frames_bytes + p.col_bytes);
}

/* wp[dt, p][cout, Kp] = f32 of the checkpoint's weight [cout, cin, kt, kh, kw]: runs of kw taps
 * are contiguous on both sides. */
static void conv_weights(float *wp, const void *wgt, og_dtype wt, const conv_shape *s)
{
    const int fold = conv_fold(s), passes = conv_passes(s);
    const int64_t Kp = conv_pass_k(s), nw = s->cout * s->cin * s->kt * s->kh * s->kw;
    const size_t es = og_dtype_size(wt);
#pragma omp parallel for collapse(2) schedule(static) if (nw > 65536)
    for (int64_t co = 0; co < s->cout; co++)
        for (int64_t ci = 0; ci < s->cin; ci++)
            for (int dt = 0; dt < s->kt; dt++)
                for (int ky = 0; ky < s->kh; ky++) {
                    const int p = ky / fold, fy = ky % fold;
                    const int64_t from = (((co * s->cin + ci) * s->kt + dt) * s->kh + ky) * s->kw;
                    og_to_f32(wp + (((int64_t)dt * passes + p) * s->cout + co) * Kp +
                                  (ci * fold + fy) * s->kw,
                              (const char *)wgt + (size_t)from * es, wt, (size_t)s->kw);
                }
}

/* The convolution of every output frame: to = 0..t-1 reads padded input frames to..to+kt-1,
 * the first kt-1 of which come from `cache` ([cin, kt-1, h, w], or zeros when NULL); x is
 * [cin, t, h, w]. A 2-D convolution is one frame with kt = 1. */
static og_status conv_run(float *y, const float *x, const float *cache, int64_t t,
                          const void *wgt, og_dtype wt, const float *bias, const conv_shape *s,
                          og_arena *scratch)
{
    if (wt != OG_F32 && wt != OG_BF16 && wt != OG_F16)
        return og_fail(OG_ERR_UNSUPPORTED, "conv: weights of type %s", og_dtype_name(wt));
    const conv_plan p = conv_plan_for(s);
    og_op_scratch sc;
    OG_TRY(og_op_scratch_begin(&sc, scratch, conv_scratch_bytes(s)));
    char *base = og_arena_alloc(sc.a, p.wp_bytes + p.frames_bytes + p.col_bytes);
    if (!base) {
        og_op_scratch_end(&sc);
        return og_fail_context(OG_ERR_OOM, "conv: scratch for %lld -> %lld channels at %lldx%lld "
                               "(size it with the conv's *_scratch_bytes)", (long long)s->cin,
                               (long long)s->cout, (long long)s->h, (long long)s->w);
    }
    float *wp = (float *)base, *col = (float *)(base + p.wp_bytes + p.frames_bytes);
    conv_frame *frames = (conv_frame *)(base + p.wp_bytes);
    conv_weights(wp, wgt, wt, s);
    const int64_t plane = s->ho * s->wo, hw = s->h * s->w, kt = s->kt;
    og_status st = OG_OK;
    for (int64_t to = 0; to < t && st == OG_OK; to++) {
        for (int dt = 0; dt < kt; dt++) {
            int64_t f = to + dt - (kt - 1);
            if (f >= 0)
                frames[dt] = (conv_frame){x + f * hw, t * hw};
            else if (cache)
                frames[dt] = (conv_frame){cache + (f + kt - 1) * hw, (kt - 1) * hw};
            else
                frames[dt] = (conv_frame){NULL, 0};
        }
        st = conv_frames(y + to * plane, t * plane, frames, wp, bias, s, col, p.col_floats,
                         p.band);
    }
    og_op_scratch_end(&sc);
    return st;
}

static bool conv2d_sizes_ok(int64_t cin, int64_t h, int64_t w, int64_t cout, int kh, int kw,
                            int stride, int pad)
{
    return cin > 0 && h > 0 && w > 0 && cout > 0 && kh > 0 && kw > 0 && stride > 0 && pad >= 0 &&
           h + 2 * pad >= kh && w + 2 * pad >= kw;
}

static conv_shape conv2d_shape(int64_t cin, int64_t h, int64_t w, int64_t cout, int kh, int kw,
                               int stride, int pad)
{
    return (conv_shape){.cin = cin, .h = h, .w = w, .cout = cout, .kt = 1, .kh = kh, .kw = kw,
                        .stride = stride, .pad_h = pad, .pad_w = pad,
                        .ho = (h + 2 * pad - kh) / stride + 1,
                        .wo = (w + 2 * pad - kw) / stride + 1};
}

size_t og_conv2d_scratch_bytes(int64_t cin, int64_t h, int64_t w, int64_t cout, int kh, int kw,
                               int stride, int pad)
{
    if (!conv2d_sizes_ok(cin, h, w, cout, kh, kw, stride, pad))
        return 0; /* the call reports bad sizes */
    const conv_shape s = conv2d_shape(cin, h, w, cout, kh, kw, stride, pad);
    return conv_scratch_bytes(&s);
}

og_status og_conv2d(float *y, const float *x, int64_t cin, int64_t h, int64_t w, const void *wgt,
                    og_dtype wt, const float *bias, int64_t cout, int kh, int kw, int stride,
                    int pad, og_arena *scratch)
{
    if (!conv2d_sizes_ok(cin, h, w, cout, kh, kw, stride, pad))
        return og_fail(OG_ERR_INVALID_ARG,
                       "conv2d: bad sizes (cin %lld, %lldx%lld, kernel %dx%d, stride %d, pad %d)",
                       (long long)cin, (long long)h, (long long)w, kh, kw, stride, pad);
    const conv_shape s = conv2d_shape(cin, h, w, cout, kh, kw, stride, pad);
    return conv_run(y, x, NULL, 1, wgt, wt, bias, &s, scratch);
}

static bool conv3d_sizes_ok(int64_t cin, int64_t t, int64_t h, int64_t w, int64_t cout, int kt,
                            int kh, int kw, int pad_h, int pad_w)
{
    return cin > 0 && t >= 0 && h > 0 && w > 0 && cout > 0 && kt > 0 && kh > 0 && kw > 0 &&
           pad_h >= 0 && pad_w >= 0 && h + 2 * pad_h >= kh && w + 2 * pad_w >= kw;
}

static conv_shape conv3d_shape(int64_t cin, int64_t h, int64_t w, int64_t cout, int kt, int kh,
                               int kw, int pad_h, int pad_w)
{
    return (conv_shape){.cin = cin, .h = h, .w = w, .cout = cout, .kt = kt, .kh = kh, .kw = kw,
                        .stride = 1, .pad_h = pad_h, .pad_w = pad_w,
                        .ho = h + 2 * pad_h - kh + 1, .wo = w + 2 * pad_w - kw + 1};
}

size_t og_conv3d_causal_scratch_bytes(int64_t cin, int64_t h, int64_t w, int64_t cout, int kt,
                                      int kh, int kw, int pad_h, int pad_w)
{
    if (!conv3d_sizes_ok(cin, 1, h, w, cout, kt, kh, kw, pad_h, pad_w))
        return 0; /* the call reports bad sizes */
    const conv_shape s = conv3d_shape(cin, h, w, cout, kt, kh, kw, pad_h, pad_w);
    return conv_scratch_bytes(&s);
}

og_status og_conv3d_causal(float *y, const float *x, const float *cache, int64_t cin, int64_t t,
                           int64_t h, int64_t w, const void *wgt, og_dtype wt, const float *bias,
                           int64_t cout, int kt, int kh, int kw, int pad_h, int pad_w,
                           og_arena *scratch)
{
    if (!conv3d_sizes_ok(cin, t, h, w, cout, kt, kh, kw, pad_h, pad_w))
        return og_fail(OG_ERR_INVALID_ARG,
                       "conv3d: bad sizes (cin %lld, %lldx%lldx%lld, kernel %dx%dx%d, pad %d,%d)",
                       (long long)cin, (long long)t, (long long)h, (long long)w, kt, kh, kw, pad_h,
                       pad_w);
    if (t == 0)
        return OG_OK;
    const conv_shape s = conv3d_shape(cin, h, w, cout, kt, kh, kw, pad_h, pad_w);
    return conv_run(y, x, cache, t, wgt, wt, bias, &s, scratch);
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
