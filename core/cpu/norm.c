/* Normalisations over f32 rows: LayerNorm, RMSNorm and GroupNorm. Statistics use two passes (mean,
 * then centred variance) with double accumulators, and the mean is subtracted as an f32 pair
 * (m + mlo), so long rows, large groups and large offsets lose nothing. */
#include <math.h>

#include "core/ops.h"

/* The mean of x[0..n) as the f32 pair m + mlo, and 1 / sqrt(variance + eps). */
static inline void mean_rstd(const float *x, int64_t n, float eps, float *m, float *mlo,
                             float *rstd)
{
    double sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / (double)n;
#pragma omp simd reduction(+ : sq)
    for (int64_t i = 0; i < n; i++)
        sq += ((double)x[i] - mean) * ((double)x[i] - mean);
    *rstd = (float)(1.0 / sqrt(sq / (double)n + eps));
    *m = (float)mean;
    *mlo = (float)(mean - *m);
}

void og_layernorm(float *y, const float *x, const float *w, const float *b, int64_t rows,
                  int64_t dim, float eps)
{
#pragma omp parallel for if (rows * dim > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        float m, mlo, rstd;
        mean_rstd(xr, dim, eps, &m, &mlo, &rstd);
#pragma omp simd
        for (int64_t i = 0; i < dim; i++) {
            float v = (xr[i] - m - mlo) * rstd;
            if (w)
                v *= w[i];
            if (b)
                v += b[i];
            yr[i] = v;
        }
    }
}

void og_rmsnorm(float *y, const float *x, const float *w, int64_t rows, int64_t dim, float eps)
{
#pragma omp parallel for if (rows * dim > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double sq = 0;
#pragma omp simd reduction(+ : sq)
        for (int64_t i = 0; i < dim; i++)
            sq += (double)xr[i] * xr[i];
        float rs = (float)(1.0 / sqrt(sq / (double)dim + eps));
#pragma omp simd
        for (int64_t i = 0; i < dim; i++)
            yr[i] = w ? xr[i] * rs * w[i] : xr[i] * rs;
    }
}

void og_groupnorm(float *y, const float *x, const float *w, const float *b, int64_t channels,
                  int64_t hw, int groups, float eps)
{
    const int64_t cpg = channels / groups, n = cpg * hw;
#pragma omp parallel for schedule(dynamic, 1)
    for (int g = 0; g < groups; g++) {
        const float *xg = x + g * n;
        float *yg = y + g * n;
        float m, mlo, rstd;
        mean_rstd(xg, n, eps, &m, &mlo, &rstd);
        for (int64_t c = 0; c < cpg; c++) {
            int64_t ch = g * cpg + c;
            float s = w ? w[ch] * rstd : rstd, t = b ? b[ch] : 0.0f;
#pragma omp simd
            for (int64_t i = 0; i < hw; i++)
                yg[c * hw + i] = (xg[c * hw + i] - m - mlo) * s + t;
        }
    }
}
