/* dtype conversions: every bf16 and f16 value decodes exactly and survives a round trip; f32 ->
 * 16-bit rounding is checked against a nearest-value search (ties to even) on random and edge
 * inputs: halfway cases, overflow to infinity, subnormals, signed zeros, inf and NaN. */
#include <string.h>

#include "core/dtype.h"
#include "testutil.h"

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* f16 decoded from its fields in double: the independent reference. */
static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* Nearest representable 16-bit pattern to f, ties to the even pattern, by checking the two
 * neighbours found by a search over the monotone positive codes [0, maxcode]; half an ulp or more
 * beyond the largest finite value, infinity. */
static uint16_t nearest(float f, double (*value)(uint16_t), uint16_t maxcode, uint16_t inf,
                        uint16_t sign)
{
    double a = fabs((double)f);
    uint16_t lo = 0, hi = maxcode;
    if (a >= value(maxcode)) {
        double top = value(maxcode), ulp = top - value((uint16_t)(maxcode - 1));
        if (a >= top + ulp / 2) /* the top code is odd, so the tie goes to infinity */
            return (uint16_t)(sign | inf);
        return (uint16_t)(sign | maxcode);
    }
    while (hi - lo > 1) {
        uint16_t mid = (uint16_t)((lo + hi) / 2);
        if (value(mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    double dl = a - value(lo), dh = value(hi) - a;
    uint16_t pick = dl < dh ? lo : dh < dl ? hi : (lo & 1 ? hi : lo);
    return (uint16_t)(sign | pick);
}

static double bf16_value(uint16_t h) { return og_bf16_to_f32(h); }

int main(void)
{
    og_test_rng rng = {0xd7e0u};
    int bad = 0;

    /* Every 16-bit pattern decodes as the reference says and round-trips exactly. */
    for (uint32_t h = 0; h < 65536; h++) {
        double want = f16_value((uint16_t)h);
        float got = og_f16_to_f32((uint16_t)h);
        if (want != want) {
            uint16_t back = og_f32_to_f16(got); /* NaN stays NaN (made quiet), sign kept */
            bad += got == got || (back & 0x7e00) != 0x7e00 || (back ^ h) & 0x8000;
            continue;
        }
        bad += (double)got != want || og_f32_to_f16(got) != h ||
               !!signbit(got) != ((h & 0x8000) != 0);
    }
    CHECK(bad == 0, "f16: %d patterns decode or round-trip wrongly", bad);
    bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = og_bf16_to_f32((uint16_t)h);
        bad += f_bits(f) != h << 16;
        bad += f == f && og_f32_to_bf16(f) != h;
        bad += f != f && og_f32_to_bf16(f) != (h | 0x40); /* NaN stays NaN, made quiet */
    }
    CHECK(bad == 0, "bf16: %d patterns decode or round-trip wrongly", bad);

    /* Rounding of random f32 values: all exponents for bf16, the f16 range (incl. subnormals). */
    int bad16 = 0, badbf = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)og_test_next(&rng);
        float f = bits_f(u);
        if (f != f)
            continue;
        uint16_t sign = (uint16_t)(u >> 31 << 15);
        badbf += og_f32_to_bf16(f) != nearest(f, bf16_value, 0x7f7f, 0x7f80, sign);
        /* f16 range: exponents from 2^-26 (below the smallest subnormal) up to 2^17 */
        uint32_t e = 127 - 26 + (uint32_t)(og_test_next(&rng) % 44);
        float g = bits_f((u & 0x807fffffu) | e << 23);
        bad16 += og_f32_to_f16(g) != nearest(g, f16_value, 0x7bff, 0x7c00, sign);
    }
    CHECK(badbf == 0, "bf16 rounding: %d mismatches", badbf);
    CHECK(bad16 == 0, "f16 rounding: %d mismatches", bad16);

    /* Hand-picked edges. */
    CHECK(og_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie rounds down to even");
    CHECK(og_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16 tie rounds up to even");
    CHECK(og_f32_to_bf16(bits_f(0x7f7fffffu)) == 0x7f80, "bf16: FLT_MAX rounds to inf");
    CHECK(og_f32_to_bf16(-INFINITY) == 0xff80, "bf16 -inf");
    CHECK(og_f32_to_bf16(bits_f(0x00000001u)) == 0x0000, "bf16: tiny subnormal rounds to 0");
    CHECK(og_f32_to_bf16(bits_f(0x00018000u)) == 0x0002, "bf16: subnormal tie to even");
    CHECK(og_f32_to_f16(65504.0f) == 0x7bff && og_f32_to_f16(65519.99f) == 0x7bff,
          "f16 largest finite");
    CHECK(og_f32_to_f16(65520.0f) == 0x7c00, "f16: halfway past the top rounds to inf");
    CHECK(og_f32_to_f16(0x1p-25f) == 0x0000, "f16: half the smallest subnormal ties to 0");
    CHECK(og_f32_to_f16(0x1p-25f * 1.0001f) == 0x0001, "f16: just above rounds up");
    CHECK(og_f32_to_f16(3 * 0x1p-25f) == 0x0002, "f16: subnormal tie to even");
    CHECK(og_f32_to_f16(0x1p-14f - 0x1p-26f) == 0x0400, "f16: rounds up into the normals");
    CHECK(og_f32_to_f16(-0.0f) == 0x8000 && og_f32_to_f16(1e-30f) == 0, "f16 zeros");
    CHECK(og_f32_to_f16(NAN) == 0x7e00 || (og_f32_to_f16(NAN) & 0x7c00) == 0x7c00,
          "f16 NaN");
    CHECK(og_f16_to_f32(og_f32_to_f16(NAN)) != og_f16_to_f32(og_f32_to_f16(NAN)), "f16 NaN");
    CHECK(og_f32_to_f16(-INFINITY) == 0xfc00 && og_f32_to_f16(1e10f) == 0x7c00, "f16 inf");

    /* Bulk conversions and metadata. */
    float src[7] = {1.5f, -2.25f, 0.1f, 65504.0f, -0.0f, 3e-6f, 1e9f}, back[7];
    uint16_t h[7];
    og_from_f32(h, OG_F16, src, 7);
    og_to_f32(back, h, OG_F16, 7);
    for (int i = 0; i < 7; i++)
        CHECK(h[i] == og_f32_to_f16(src[i]) && back[i] == og_f16_to_f32(h[i]), "bulk f16 %d", i);
    og_from_f32(h, OG_BF16, src, 7);
    og_to_f32(back, h, OG_BF16, 7);
    for (int i = 0; i < 7; i++)
        CHECK(h[i] == og_f32_to_bf16(src[i]) && back[i] == og_bf16_to_f32(h[i]), "bulk bf16 %d", i);
    og_from_f32(back, OG_F32, src, 7);
    CHECK(memcmp(back, src, sizeof src) == 0, "bulk f32 copy");
    CHECK(og_dtype_size(OG_F32) == 4 && og_dtype_size(OG_BF16) == 2 && og_dtype_size(OG_I64) == 8 &&
              og_dtype_size(OG_U8) == 1 && og_dtype_size(OG_DTYPE_COUNT) == 0,
          "dtype sizes");
    CHECK(strcmp(og_dtype_name(OG_BF16), "BF16") == 0 &&
              strcmp(og_dtype_name(OG_DTYPE_COUNT), "?") == 0,
          "dtype names");
    return og_test_finish("test_dtype");
}
