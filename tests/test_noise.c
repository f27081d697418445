/* Seeded noise: Philox4x32-10 against the published known-answer vectors (Random123), the
 * Gaussian stream bit-identical across thread counts and when generated in arbitrary slices (as
 * ranks or tiles would), different for different seeds, and with the moments of N(0, 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "samplers/noise.h"
#include "testutil.h"

static void check_kat(void)
{
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        og_philox4x32_10(kat[i].ctr, kat[i].key, out);
        CHECK(memcmp(out, kat[i].out, sizeof out) == 0, "KAT %zu: %08x %08x %08x %08x", i, out[0],
              out[1], out[2], out[3]);
    }
}

/* Element j of the stream, computed independently of og_noise_normal's loop. */
static float expected_element(uint64_t seed, uint64_t j)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)(j / 4), (uint32_t)(j / 4 >> 32), 0, 0};
    uint32_t u[4];
    og_philox4x32_10(ctr, key, u);
    int pair = (int)(j % 4) / 2;
    double a = (u[2 * pair] + 0.5) / 4294967296.0, b = (u[2 * pair + 1] + 0.5) / 4294967296.0;
    double r = sqrt(-2.0 * log(a)), ang = 2.0 * M_PI * b;
    return (float)(j % 2 ? r * sin(ang) : r * cos(ang));
}

int main(void)
{
    check_kat();

    const int64_t n = 1 << 20;
    const uint64_t seed = 42;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);

    og_set_threads(1);
    og_noise_normal(a, n, seed, 0);
    og_set_threads(2);
    og_noise_normal(b, n, seed, 0);
    CHECK(memcmp(a, b, (size_t)n * sizeof *a) == 0, "1 thread vs 2 threads");
    for (uint64_t j = 0; j < (uint64_t)n; j += 4099)
        CHECK(a[j] == expected_element(seed, j), "element %llu", (unsigned long long)j);

    /* Slices at unaligned offsets and lengths reproduce the same elements. */
    static const int64_t cuts[] = {0, 1, 3, 4, 7, 1001, 65537, 300000, 1 << 20};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++)
        og_noise_normal(b + cuts[i], cuts[i + 1] - cuts[i], seed, (uint64_t)cuts[i]);
    CHECK(memcmp(a, b, (size_t)n * sizeof *a) == 0, "sliced generation");

    /* Moments of N(0, 1): standard errors for n = 2^20 are ~1e-3 (mean, variance) and ~5e-3
     * (kurtosis); the bounds are about 5 of them. */
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = a[i];
        bad += !isfinite(x);
        m1 += x;
        m2 += x * x;
        m3 += x * x * x;
        m4 += x * x * x * x;
    }
    m1 /= n, m2 /= n, m3 /= n, m4 /= n;
    printf("mean %.5f var %.5f skew %.5f kurt %.5f\n", m1, m2 - m1 * m1, m3, m4);
    CHECK(bad == 0, "%d non-finite values", bad);
    CHECK(fabs(m1) < 5e-3, "mean %g", m1);
    CHECK(fabs(m2 - 1.0) < 8e-3, "variance %g", m2);
    CHECK(fabs(m3) < 1.2e-2, "third moment %g", m3);
    CHECK(fabs(m4 - 3.0) < 4e-2, "fourth moment %g", m4);
    int64_t tail = 0;
    for (int64_t i = 0; i < n; i++)
        tail += fabs(a[i]) > 1.959964;
    double frac = (double)tail / n; /* 5% of N(0, 1) lies outside +-1.96 */
    CHECK(fabs(frac - 0.05) < 2e-3, "two-sided 5%% tail holds %g", frac);

    /* Another seed gives another stream (and adjacent seeds are not shifted copies). */
    og_noise_normal(b, n, seed + 1, 0);
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++)
        same += a[i] == b[i];
    CHECK(same < 16, "seeds %llu and %llu share %lld values", (unsigned long long)seed,
          (unsigned long long)seed + 1, (long long)same);
    double corr = 0;
    for (int64_t i = 0; i < n; i++)
        corr += (double)a[i] * b[i];
    CHECK(fabs(corr / n) < 5e-3, "seed correlation %g", corr / n);

    free(a);
    free(b);
    return og_test_finish("test_noise");
}
