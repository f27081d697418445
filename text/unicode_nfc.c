/* UTF-8 decoding/encoding and Unicode NFC (decompose, order by combining class, compose), with
 * Hangul syllables handled algorithmically. Tables: text/unicode_nfc_tables.c (generated). */
#include "text/unicode_nfc.h"

#include <stdlib.h>
#include <string.h>

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7 };
enum { LCOUNT = 19, VCOUNT = 21, TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

int64_t og_utf8_decode(const char *str, size_t len, uint32_t *cps)
{
    const unsigned char *s = (const unsigned char *)str;
    int64_t n = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t c = s[i];
        int extra;
        uint32_t min;
        if (c < 0x80) {
            if (cps)
                cps[n] = c;
            n++;
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            extra = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, min = 0x10000, c &= 0x07;
        } else {
            return -1;
        }
        if (i + (size_t)extra >= len)
            return -1;
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return -1;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return -1;
        if (cps)
            cps[n] = c;
        n++;
        i += (size_t)extra + 1;
    }
    return n;
}

int og_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int ccc_of(uint32_t cp)
{
    if (cp < 0x300)
        return 0;
    int lo = 0, hi = og_nfc_ccc_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (og_nfc_ccc_table[mid].cp == cp)
            return og_nfc_ccc_table[mid].ccc;
        if (og_nfc_ccc_table[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

static const og_nfc_decomp *decomp_of(uint32_t cp)
{
    int lo = 0, hi = og_nfc_decomp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (og_nfc_decomp_table[mid].cp == cp)
            return &og_nfc_decomp_table[mid];
        if (og_nfc_decomp_table[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* Full canonical decomposition of cp appended to out; returns the new length. A code point
 * decomposes to at most 4 (Hangul: 3; table chains are short), so out needs 4 spare slots. */
static int64_t decompose(uint32_t cp, uint32_t *out, int64_t n)
{
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE;
        out[n++] = LBASE + s / NCOUNT;
        out[n++] = VBASE + (s % NCOUNT) / TCOUNT;
        if (s % TCOUNT)
            out[n++] = TBASE + s % TCOUNT;
        return n;
    }
    const og_nfc_decomp *d = cp >= 0xC0 ? decomp_of(cp) : NULL;
    if (!d) {
        out[n++] = cp;
        return n;
    }
    n = decompose(d->a, out, n);
    if (d->b)
        n = decompose(d->b, out, n);
    return n;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE &&
        b < TBASE + TCOUNT)
        return a + (b - TBASE);
    int lo = 0, hi = og_nfc_comp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const og_nfc_comp *c = &og_nfc_comp_table[mid];
        if (c->a == a && c->b == b)
            return c->cp;
        if (c->a < a || (c->a == a && c->b < b))
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

og_status og_nfc(const char *s, size_t len, char **out, size_t *out_len)
{
    /* Code points below U+0300 never change under NFC and never combine with what precedes
     * them; their UTF-8 lead bytes are all below 0xCC. */
    size_t k = 0;
    while (k < len && (unsigned char)s[k] < 0xCC)
        k++;
    uint32_t *cps = NULL, *dec = NULL;
    char *res = NULL;
    if (k == len) {
        res = malloc(len + 1);
        if (!res)
            return og_fail(OG_ERR_OOM, "NFC: out of memory");
        memcpy(res, s, len);
        res[len] = 0;
        *out = res;
        *out_len = len;
        return OG_OK;
    }
    cps = malloc((len + 1) * sizeof *cps);
    dec = malloc((4 * len + 4) * sizeof *dec);
    if (!cps || !dec) {
        free(cps);
        free(dec);
        return og_fail(OG_ERR_OOM, "NFC: out of memory");
    }
    int64_t n = og_utf8_decode(s, len, cps);
    if (n < 0) {
        free(cps);
        free(dec);
        return og_fail(OG_ERR_INVALID_ARG, "text is not valid UTF-8");
    }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        m = decompose(cps[i], dec, m);
    free(cps);

    /* Canonical ordering: a stable insertion sort of each run of non-starters by class. */
    for (int64_t i = 1; i < m; i++) {
        int ci = ccc_of(dec[i]);
        if (ci == 0)
            continue;
        uint32_t c = dec[i];
        int64_t j = i;
        while (j > 0) {
            int cj = ccc_of(dec[j - 1]);
            if (cj <= ci)
                break;
            dec[j] = dec[j - 1];
            j--;
        }
        dec[j] = c;
    }

    /* Canonical composition: after ordering, a mark is blocked from the last starter exactly
     * when the character just before it is not that starter and has a class >= its own. */
    int64_t j = 0, starter = -1;
    for (int64_t i = 0; i < m; i++) {
        uint32_t c = dec[i];
        int cc = ccc_of(c);
        if (starter >= 0) {
            int prev = j - 1 == starter ? -1 : ccc_of(dec[j - 1]);
            if (prev == -1 || (prev != 0 && prev < cc)) {
                uint32_t p = compose_pair(dec[starter], c);
                if (p) {
                    dec[starter] = p;
                    continue;
                }
            }
        }
        if (cc == 0)
            starter = j;
        dec[j++] = c;
    }

    res = malloc((size_t)j * 4 + 1);
    if (!res) {
        free(dec);
        return og_fail(OG_ERR_OOM, "NFC: out of memory");
    }
    size_t o = 0;
    for (int64_t i = 0; i < j; i++)
        o += (size_t)og_utf8_encode(dec[i], res + o);
    res[o] = 0;
    free(dec);
    *out = res;
    *out_len = o;
    return OG_OK;
}
