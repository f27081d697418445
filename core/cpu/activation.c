/* Elementwise activations, AdaLN modulation, gated residuals and row softmax. The exponentials come
 * from vmath.h so every loop vectorises. */
#include "core/cpu/vmath.h"
#include "core/ops.h"

#define OG_PAR_MIN 65536 /* below this many elements a parallel region costs more than it saves */
/* Elementwise loops run as a parallel loop over chunks of this many elements with a simd loop
 * inside: GCC leaves a `parallel for simd` loop scalar when its if() clause is false, which made
 * row-sized calls several times slower. */
#define OG_CHUNK 4096

/* The end of the chunk that starts at i0 in a loop over n elements. */
#define OG_CHUNK_END(i0, n) ((n) - (i0) < OG_CHUNK ? (n) : (i0) + OG_CHUNK)

void og_silu(float *x, int64_t n)
{
#pragma omp parallel for if (n > OG_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += OG_CHUNK)
#pragma omp simd
        for (int64_t i = i0; i < OG_CHUNK_END(i0, n); i++)
            x[i] = x[i] / (1.0f + og_vexp(-x[i]));
}

void og_gelu_tanh(float *x, int64_t n)
{
#pragma omp parallel for if (n > OG_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += OG_CHUNK)
#pragma omp simd
        for (int64_t i = i0; i < OG_CHUNK_END(i0, n); i++) {
            /* 0.5 (1 + tanh(u)) = 1 / (1 + e^(-2u)): no cancellation for negative inputs. */
            float v = x[i];
            x[i] = v / (1.0f + og_vexp(-1.5957691216f * (v + 0.044715f * v * v * v)));
        }
}

void og_tanh(float *x, int64_t n)
{
#pragma omp parallel for if (n > OG_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += OG_CHUNK)
#pragma omp simd
        for (int64_t i = i0; i < OG_CHUNK_END(i0, n); i++)
            x[i] = og_vtanh(x[i]);
}

void og_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
#pragma omp parallel for if (n > OG_PAR_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += OG_CHUNK)
#pragma omp simd
        for (int64_t i = i0; i < OG_CHUNK_END(i0, n); i++) {
            float g = gate[i];
            out[i] = g / (1.0f + og_vexp(-g)) * up[i];
        }
}

void og_modulate(float *y, const float *x, const float *scale, const float *shift, int64_t rows,
                 int64_t dim)
{
#pragma omp parallel for if (rows * dim > OG_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
#pragma omp simd
        for (int64_t i = 0; i < dim; i++)
            yr[i] = xr[i] * (1.0f + scale[i]) + (shift ? shift[i] : 0.0f);
    }
}

void og_gated_residual(float *x, const float *y, const float *gate, int64_t rows, int64_t dim)
{
#pragma omp parallel for if (rows * dim > OG_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        const float *yr = y + r * dim;
#pragma omp simd
        for (int64_t i = 0; i < dim; i++)
            xr[i] += (gate ? gate[i] : 1.0f) * yr[i];
    }
}

void og_softmax(float *x, int64_t rows, int64_t dim)
{
    if (dim <= 0)
        return;
#pragma omp parallel for if (rows * dim > OG_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        float mx = xr[0];
        for (int64_t i = 1; i < dim; i++)
            mx = xr[i] > mx ? xr[i] : mx;
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < dim; i++) {
            xr[i] = og_vexp(xr[i] - mx);
            sum += xr[i];
        }
        float inv = 1.0f / sum;
#pragma omp simd
        for (int64_t i = 0; i < dim; i++)
            xr[i] *= inv;
    }
}
