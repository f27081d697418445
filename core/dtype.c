/* dtype sizes, names and the f16 conversions (bf16 ones are inline in dtype.h). */
#include "core/dtype.h"

size_t og_dtype_size(og_dtype t)
{
    static const size_t sizes[] = {4, 2, 2, 8, 4, 1};
    return (unsigned)t < OG_DTYPE_COUNT ? sizes[t] : 0;
}

const char *og_dtype_name(og_dtype t)
{
    static const char *names[] = {"F32", "BF16", "F16", "I64", "I32", "U8"};
    return (unsigned)t < OG_DTYPE_COUNT ? names[t] : "?";
}

float og_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t og_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = (int32_t)((u >> 23) & 0xffu) - 127 + 15;
    uint32_t man = u & 0x7fffffu;
    if (((u >> 23) & 0xffu) == 0xffu) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
        h++; /* may carry into the exponent, which is correct rounding */
    return (uint16_t)h;
}

void og_to_f32(float *dst, const void *src, og_dtype t, size_t n)
{
    const uint16_t *h = src;
    switch (t) {
    case OG_F32:
        memcpy(dst, src, n * 4);
        break;
    case OG_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = og_bf16_to_f32(h[i]);
        break;
    case OG_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = og_f16_to_f32(h[i]);
        break;
    default:
        for (size_t i = 0; i < n; i++)
            dst[i] = 0.0f;
        break;
    }
}

void og_from_f32(void *dst, og_dtype t, const float *src, size_t n)
{
    uint16_t *h = dst;
    switch (t) {
    case OG_F32:
        memcpy(dst, src, n * 4);
        break;
    case OG_BF16:
        for (size_t i = 0; i < n; i++)
            h[i] = og_f32_to_bf16(src[i]);
        break;
    case OG_F16:
        for (size_t i = 0; i < n; i++)
            h[i] = og_f32_to_f16(src[i]);
        break;
    default:
        break;
    }
}
