/* Extended grapheme cluster boundaries (UAX #29 rules GB3-GB13 with GB9c). */
#include "text/unicode_grapheme.h"

#include <stdbool.h>

enum {
    GCB_OTHER, GCB_CR, GCB_LF, GCB_CONTROL, GCB_EXTEND, GCB_ZWJ, GCB_RI, GCB_PREPEND,
    GCB_SPACINGMARK, GCB_L, GCB_V, GCB_T, GCB_LV, GCB_LVT
};
enum { INCB_NONE, INCB_CONSONANT, INCB_LINKER, INCB_EXTEND };
#define EXTPICT 0x10

static uint8_t prop_of(uint32_t cp)
{
    int lo = 0, hi = og_grapheme_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < og_grapheme_table[mid].lo)
            hi = mid - 1;
        else if (cp > og_grapheme_table[mid].hi)
            lo = mid + 1;
        else
            return og_grapheme_table[mid].prop;
    }
    return 0;
}

static int gcb(uint8_t p) { return p & 0x0F; }
static int incb(uint8_t p) { return (p >> 5) & 3; }

size_t og_grapheme_next(const uint32_t *cps, size_t n, size_t i)
{
    uint8_t p = prop_of(cps[i]);
    int ri = gcb(p) == GCB_RI;                  /* regional indicators in a row */
    int emoji = (p & EXTPICT) ? 1 : 0;          /* 1: ExtPict Extend*, 2: ... ZWJ */
    int conj = incb(p) == INCB_CONSONANT;       /* 1: Consonant [Extend|Linker]*, 2: a Linker */
    size_t j = i + 1;
    for (; j < n; j++) {
        uint8_t c = prop_of(cps[j]);
        int a = gcb(p), b = gcb(c);
        bool join;
        if (a == GCB_CR && b == GCB_LF)
            join = true; /* GB3 */
        else if (a == GCB_CONTROL || a == GCB_CR || a == GCB_LF || b == GCB_CONTROL ||
                 b == GCB_CR || b == GCB_LF)
            join = false; /* GB4, GB5 */
        else if (a == GCB_L && (b == GCB_L || b == GCB_V || b == GCB_LV || b == GCB_LVT))
            join = true; /* GB6 */
        else if ((a == GCB_LV || a == GCB_V) && (b == GCB_V || b == GCB_T))
            join = true; /* GB7 */
        else if ((a == GCB_LVT || a == GCB_T) && b == GCB_T)
            join = true; /* GB8 */
        else if (b == GCB_EXTEND || b == GCB_ZWJ || b == GCB_SPACINGMARK || a == GCB_PREPEND)
            join = true; /* GB9, GB9a, GB9b */
        else if (conj == 2 && incb(c) == INCB_CONSONANT)
            join = true; /* GB9c */
        else if (emoji == 2 && (c & EXTPICT))
            join = true; /* GB11 */
        else
            join = a == GCB_RI && b == GCB_RI && ri % 2 == 1; /* GB12, GB13; else GB999 */
        if (!join)
            break;
        ri = b == GCB_RI ? ri + 1 : 0;
        if (c & EXTPICT)
            emoji = 1;
        else if (emoji == 1 && (b == GCB_EXTEND || b == GCB_ZWJ))
            emoji = b == GCB_ZWJ ? 2 : 1;
        else
            emoji = 0;
        if (incb(c) == INCB_CONSONANT)
            conj = 1;
        else if (conj && incb(c) == INCB_LINKER)
            conj = 2;
        else if (!(conj && incb(c) == INCB_EXTEND))
            conj = 0;
        p = c;
    }
    return j;
}
