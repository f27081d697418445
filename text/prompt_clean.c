/* html.unescape (Python's rules) and the whitespace clean-up of diffusers' prompt_clean. */
#include "text/prompt_clean.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "text/unicode_nfc.h"

typedef struct {
    char *s;
    size_t n;
} out_buf; /* sized by the caller: no result is longer than its bound */

static void put(out_buf *o, const char *s, size_t n)
{
    memcpy(o->s + o->n, s, n);
    o->n += n;
}

static void put_cp(out_buf *o, uint32_t cp) { o->n += (size_t)og_utf8_encode(cp, o->s + o->n); }

static bool in_sorted(const uint32_t *list, int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (list[mid] == cp)
            return true;
        if (list[mid] < cp)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

static const char *entity(const char *name, size_t n)
{
    int lo = 0, hi = og_html_entity_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *k = og_html_entities[mid].name;
        size_t kl = strlen(k);
        int c = memcmp(name, k, n < kl ? n : kl);
        if (c == 0)
            c = (n > kl) - (n < kl);
        if (c == 0)
            return og_html_entities[mid].value;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* A numeric reference's replacement, as html._replace_charref (num saturates past U+10FFFF). */
static void put_numeric(out_buf *o, uint32_t num)
{
    for (int i = 0; i < og_html_invalid_charref_count; i++)
        if (og_html_invalid_charrefs[i].num == num) {
            put_cp(o, og_html_invalid_charrefs[i].cp);
            return;
        }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
        put_cp(o, 0xFFFD);
    else if (!in_sorted(og_html_invalid_codepoints, og_html_invalid_codepoint_count, num))
        put_cp(o, num);
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

/* One reference at s[i] == '&' (the regex &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * and its replacement); returns the index after it, or i when nothing matches there. */
static size_t charref(const char *s, size_t n, size_t i, out_buf *o)
{
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        size_t k = j + 1;
        int base = 10;
        if (k < n && (s[k] == 'x' || s[k] == 'X') && k + 1 < n && hex_value(s[k + 1]) >= 0) {
            base = 16;
            k++;
        } else if (!(k < n && s[k] >= '0' && s[k] <= '9')) {
            return i;
        }
        uint32_t num = 0;
        for (; k < n && (base == 16 ? hex_value(s[k]) >= 0 : s[k] >= '0' && s[k] <= '9'); k++) {
            num = num * (uint32_t)base + (uint32_t)hex_value(s[k]);
            if (num > 0x110000)
                num = 0x110000; /* past U+10FFFF: the result is U+FFFD whatever the digits */
        }
        if (k < n && s[k] == ';')
            k++;
        put_numeric(o, num);
        return k;
    }
    size_t e = j, cps = 0;
    while (e < n && cps < 32 && !memchr("\t\n\f <&#;", s[e], 8)) {
        e += utf8_len((unsigned char)s[e]);
        cps++;
    }
    if (cps == 0)
        return i;
    if (e < n && s[e] == ';') {
        e++;
        cps++;
    }
    const char *v = entity(s + j, e - j);
    if (v) {
        put(o, v, strlen(v));
        return e;
    }
    /* The longest name of at least two characters that prefixes the reference, the rest kept. */
    size_t *at = malloc((cps + 1) * sizeof *at), p = j;
    for (size_t c = 0; at && c <= cps; c++) {
        at[c] = p;
        if (p < e)
            p += utf8_len((unsigned char)s[p]);
    }
    for (size_t x = cps - 1; at && x >= 2 && x < cps; x--)
        if ((v = entity(s + j, at[x] - j))) {
            put(o, v, strlen(v));
            put(o, s + at[x], e - at[x]);
            free(at);
            return e;
        }
    free(at);
    put(o, s + i, e - i);
    return e;
}

og_status og_html_unescape(const char *s, size_t len, char **out, size_t *out_len)
{
    /* No replacement is longer than its reference, except for "&#0" (3 bytes -> U+FFFD, 3
     * bytes) and the like: 4 bytes per input byte bounds every case. */
    out_buf o = {malloc(len * 4 + 1), 0};
    if (!o.s)
        return og_fail(OG_ERR_OOM, "prompt clean-up: out of memory");
    for (size_t i = 0; i < len;) {
        if (s[i] == '&') {
            size_t e = charref(s, len, i, &o);
            if (e > i) {
                i = e;
                continue;
            }
        }
        put(&o, s + i, 1);
        i++;
    }
    o.s[o.n] = 0;
    *out = o.s;
    *out_len = o.n;
    return OG_OK;
}

og_status og_prompt_clean(const char *prompt, char **out)
{
    *out = NULL;
    size_t len = strlen(prompt);
    if (og_utf8_decode(prompt, len, NULL) < 0)
        return og_fail(OG_ERR_INVALID_ARG, "the prompt is not valid UTF-8");
    char *once, *twice;
    size_t n1, n2;
    OG_TRY(og_html_unescape(prompt, len, &once, &n1));
    og_status st = og_html_unescape(once, n1, &twice, &n2);
    free(once);
    OG_TRY(st);
    /* The unescaped text is valid UTF-8 (references become whole characters), so it decodes. */
    uint32_t *cps = malloc((n2 + 1) * sizeof *cps);
    char *res = malloc(n2 + 1);
    int64_t m = cps ? og_utf8_decode(twice, n2, cps) : -1;
    free(twice);
    if (!res || m < 0) {
        free(cps);
        free(res);
        return og_fail(OG_ERR_OOM, "prompt clean-up: out of memory");
    }
    /* str.strip removes isspace characters (a superset of \s) from the ends, including the
     * spaces runs became; inside, each run of \s becomes one space. */
    int64_t b = 0, e = m;
    while (b < e && in_sorted(og_python_space, og_python_space_count, cps[b]))
        b++;
    while (e > b && in_sorted(og_python_space, og_python_space_count, cps[e - 1]))
        e--;
    size_t k = 0;
    bool in_run = false;
    for (int64_t i = b; i < e; i++) {
        bool space = in_sorted(og_regex_space, og_regex_space_count, cps[i]);
        if (space && !in_run)
            res[k++] = ' ';
        in_run = space;
        if (!space)
            k += (size_t)og_utf8_encode(cps[i], res + k);
    }
    res[k] = 0;
    free(cps);
    *out = res;
    return OG_OK;
}
