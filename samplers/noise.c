/* Philox4x32-10 and the counter-indexed Gaussian stream built on it. */
#include "samplers/noise.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void og_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The four normals of Philox block `block`. */
static void normal_block(uint64_t block, const uint32_t key[2], float z[4])
{
    const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
    uint32_t u[4];
    og_philox4x32_10(ctr, key, u);
    const double two_pi = 6.283185307179586476925286766559, inv = 1.0 / 4294967296.0;
    for (int p = 0; p < 2; p++) {
        double a = ((double)u[2 * p] + 0.5) * inv, b = ((double)u[2 * p + 1] + 0.5) * inv;
        double r = sqrt(-2.0 * log(a));
        z[2 * p] = (float)(r * cos(two_pi * b));
        z[2 * p + 1] = (float)(r * sin(two_pi * b));
    }
}

void og_noise_normal(float *out, int64_t n, uint64_t seed, uint64_t offset)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    if (n <= 0)
        return;
    const uint64_t first = offset / 4, last = (offset + (uint64_t)n - 1) / 4;
#pragma omp parallel for if (n > 16384)
    for (int64_t b = 0; b <= (int64_t)(last - first); b++) {
        float z[4];
        normal_block(first + (uint64_t)b, key, z);
        for (int lane = 0; lane < 4; lane++) {
            uint64_t j = (first + (uint64_t)b) * 4 + (uint64_t)lane;
            if (j >= offset && j < offset + (uint64_t)n)
                out[j - offset] = z[lane];
        }
    }
}
