/* Branch-free scalar math that GCC vectorises inside `#pragma omp simd` loops (no libm calls), so
 * the elementwise ops run at vector speed without per-ISA intrinsics. Accuracy: a few ulp. */
#ifndef OG_CPU_VMATH_H
#define OG_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

/* e^r for |r| <= ln2/2 by a degree-7 Taylor polynomial (relative error < 6e-9). */
static inline float og_vexp_poly(float r)
{
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r + 1.0f;
}

/* 2^n for an integral n in [-126, 127], built in the exponent bits. */
static inline float og_vpow2i(float n)
{
    int32_t bits = ((int32_t)n + 127) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Rounds to the nearest integer (|x| < 2^22) without a libm call. */
static inline float og_vround(float x)
{
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    return (x + shifter) - shifter;
}

/* e^x = 2^n e^r with x = n ln2 + r (ln2 split in two for an exact r). Below -87 the result is 0
 * (so e^-inf = 0, as a softmax over masked entries needs); above 88 it saturates at e^88. */
static inline float og_vexp(float x)
{
    float xc = x < -87.0f ? -87.0f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    float n = og_vround(xc * 1.44269504f);
    float r = xc - n * 0.693145752f;
    r = r - n * 1.42860677e-6f;
    float e = og_vexp_poly(r) * og_vpow2i(n);
    return x < -87.0f ? 0.0f : e;
}

/* 2^x for attention probabilities: exactly 0 below -126, so a masked score of -inf contributes
 * nothing. */
static inline float og_vexp2(float x)
{
    float xc = x < -126.0f ? -126.0f : x;
    xc = xc > 127.0f ? 127.0f : xc;
    float n = og_vround(xc);
    float e = og_vexp_poly((xc - n) * 0.693147181f) * og_vpow2i(n);
    return x < -126.0f ? 0.0f : e;
}

/* tanh(x) = sign(x) (1 - e) / (1 + e) with e = e^(-2|x|); below |x| = 0.25 an odd Taylor
 * polynomial instead, where 1 - e would lose relative precision. */
static inline float og_vtanh(float x)
{
    float a = x < 0.0f ? -x : x;
    float e = og_vexp(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    float x2 = a * a;
    float p = 62.0f / 2835;
    p = p * x2 - 17.0f / 315;
    p = p * x2 + 2.0f / 15;
    p = p * x2 - 1.0f / 3;
    p = p * x2 * a + a;
    float t = a < 0.25f ? p : big;
    return x < 0.0f ? -t : t;
}

#endif
