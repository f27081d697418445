/* Seeded Gaussian noise that does not depend on how the work is split: element i of a stream is
 * a pure function of (seed, i), computed from a counter-based generator (Philox4x32-10) and the
 * Box-Muller transform. Every rank, layout and thread count gets bit-identical noise for the same
 * seed, and any slice can be generated on its own. See docs/sampling.md. */
#ifndef OG_SAMPLERS_NOISE_H
#define OG_SAMPLERS_NOISE_H

#include <stdint.h>

/* Philox4x32 with 10 rounds (Salmon et al., SC'11): out = bijection of ctr under key. */
void og_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* out[i] = standard normal number at index offset + i of the stream `seed`, i in [0, n), as f32.
 * Index j uses Philox block j / 4 (counter = {low32(j/4), high32(j/4), 0, 0}, key = {low32(seed),
 * high32(seed)}); the block's four 32-bit words u0..u3 become uniforms (u + 0.5) / 2^32 and the
 * pairs (u0, u1), (u2, u3) go through Box-Muller: r = sqrt(-2 ln a), z = r cos(2 pi b), r sin(2 pi b)
 * for lanes 0, 1 (2, 3), computed in double. */
void og_noise_normal(float *out, int64_t n, uint64_t seed, uint64_t offset);

#endif
