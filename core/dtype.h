/* Element types and conversions. Weights are stored as f32, bf16 or f16; activations on the CPU
 * are f32. Conversions round to nearest even, as PyTorch does. */
#ifndef OG_DTYPE_H
#define OG_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { OG_F32 = 0, OG_BF16, OG_F16, OG_I64, OG_I32, OG_U8, OG_DTYPE_COUNT } og_dtype;

size_t og_dtype_size(og_dtype t);
const char *og_dtype_name(og_dtype t);

static inline float og_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t og_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a quiet NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float og_f16_to_f32(uint16_t h);
uint16_t og_f32_to_f16(float f);

/* Converts n elements of type `t` at src to f32. */
void og_to_f32(float *dst, const void *src, og_dtype t, size_t n);
/* Converts n f32 values to type `t` (f32, bf16 or f16). */
void og_from_f32(void *dst, og_dtype t, const float *src, size_t n);

#endif
