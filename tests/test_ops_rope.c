/* RoPE tables (multi-axis, as Z-Image builds them) and both rotation layouts against double
 * references, on a strided head slice so untouched elements can be checked too. */
#include <string.h>

#include "core/ops.h"
#include "testutil.h"

int main(void)
{
    og_test_rng rng = {0x90909u};
    enum { T = 37, NAXES = 3, HEADS = 3, HD = 32, STRIDE = HEADS * HD + 7 };
    static const int axes[NAXES] = {8, 12, 12}; /* 4 + 6 + 6 = 16 pairs = HD / 2 */
    int64_t pos[T * NAXES];
    for (int t = 0; t < T; t++)
        for (int a = 0; a < NAXES; a++)
            pos[t * NAXES + a] = (int64_t)(og_test_next(&rng) % 200);
    float cs[T * HD / 2], sn[T * HD / 2];
    og_rope_table(cs, sn, pos, T, NAXES, axes, 256.0);

    /* Reference table: the angle computed in double, then rounded to f32 (as diffusers does). */
    double rc[T * HD / 2], rs[T * HD / 2];
    for (int t = 0; t < T; t++) {
        int k = 0;
        for (int a = 0; a < NAXES; a++)
            for (int i = 0; i < axes[a] / 2; i++, k++) {
                float ang = (float)(pos[t * NAXES + a] / pow(256.0, (double)(2 * i) / axes[a]));
                rc[t * HD / 2 + k] = cos((double)ang);
                rs[t * HD / 2 + k] = sin((double)ang);
            }
    }
    double ec = og_test_rel_err(cs, rc, T * HD / 2), es = og_test_rel_err(sn, rs, T * HD / 2);
    CHECK(ec < 1e-7 && es < 1e-7, "rope table err cos %.3g sin %.3g", ec, es);
    /* Pair 0 of every axis has frequency 1: angle = position exactly. */
    CHECK(fabs(cs[5 * HD / 2 + 4] - cos((double)pos[5 * NAXES + 1])) < 1e-7, "axis offset wrong");

    float *x = malloc(T * STRIDE * 4), *y = malloc(T * STRIDE * 4);
    double *ref = malloc(T * STRIDE * 8);
    for (int layout = 0; layout < 2; layout++) {
        og_test_fill(&rng, x, T * STRIDE, 1.0f);
        memcpy(y, x, T * STRIDE * 4);
        for (int i = 0; i < T * STRIDE; i++)
            ref[i] = x[i];
        for (int t = 0; t < T; t++)
            for (int h = 0; h < HEADS; h++)
                for (int k = 0; k < HD / 2; k++) {
                    int i0 = t * STRIDE + h * HD + (layout ? k : 2 * k);
                    int i1 = layout ? i0 + HD / 2 : i0 + 1;
                    double c = cs[t * HD / 2 + k], s = sn[t * HD / 2 + k];
                    ref[i0] = x[i0] * c - x[i1] * s;
                    ref[i1] = x[i0] * s + x[i1] * c;
                }
        if (layout)
            og_rope_half(y, T, HEADS, HD, STRIDE, cs, sn);
        else
            og_rope_interleaved(y, T, HEADS, HD, STRIDE, cs, sn);
        double err = og_test_rel_err(y, ref, T * STRIDE); /* includes the untouched padding */
        CHECK(err < 3e-7, "rope %s err %.3g", layout ? "half" : "interleaved", err);
    }
    free(x), free(y), free(ref);
    return og_test_finish("test_ops_rope");
}
