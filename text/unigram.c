/* SentencePiece-Unigram from tokenizer.json: loading (pieces, added tokens, normalizers,
 * pre-tokenizers, template), the Precompiled charsmap lookup, Metaspace splitting, Viterbi
 * segmentation and the post-processor. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/unigram.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/unicode_grapheme.h"
#include "text/tokenizer_common.h"
#include "text/unicode_nfc.h"

#define MAX_NORMALIZERS 8
#define MAX_TEMPLATE 16

typedef struct {
    const char *s; /* points into pieces[] */
    size_t len;
    int32_t id;
} sorted_piece;

typedef enum { NORM_PRECOMPILED, NORM_REPLACE, NORM_STRIP, NORM_NFC } norm_kind;

typedef struct {
    norm_kind kind;
    /* Precompiled: the double-array units and the NUL-separated replacement strings. */
    uint32_t *units;
    size_t n_units;
    char *repl;
    size_t repl_len;
    /* Replace: a literal pattern or a regex, and the replacement content. */
    char *literal;
    pcre2_code *re;
    char *content;
    /* Strip */
    bool left, right;
} normalizer;

struct og_unigram {
    char **pieces;
    double *scores;
    int n_pieces;
    sorted_piece *sorted; /* by bytes, duplicates removed (the last id wins, as tokenizers' map) */
    int n_sorted;
    size_t max_piece_len;
    int32_t unk_id;
    double unk_score;
    bool byte_fallback;
    int32_t byte_id[256]; /* <0xXX> pieces, -1 when absent */
    og_tok_added *added;
    int n_added;
    normalizer norm[MAX_NORMALIZERS];
    int n_norm;
    bool whitespace_split, metaspace, prepend, meta_split;
    char meta_char[5];
    size_t meta_len;
    int32_t prefix[MAX_TEMPLATE], suffix[MAX_TEMPLATE];
    int n_prefix, n_suffix;
    int vocab_size;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static bool json_true(const cJSON *o, const char *key, bool def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* Rust's char::is_whitespace: the White_Space property. */
static bool is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Length of the UTF-8 sequence starting with byte b (the text is valid UTF-8). */
static size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

static uint32_t utf8_at(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = utf8_len(u[0]);
    uint32_t c = n == 1 ? u[0] : n == 2 ? u[0] & 0x1F : n == 3 ? u[0] & 0x0F : u[0] & 0x07;
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (u[i] & 0x3F);
    *len = n;
    return c;
}

typedef struct {
    char *s;
    size_t n, cap;
} buf;

static og_status buf_put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns)
            return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return OG_OK;
}

/* ---- pieces -------------------------------------------------------------------------------- */

static int cmp_bytes(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int cmp_sorted(const void *x, const void *y)
{
    const sorted_piece *a = x, *b = y;
    int c = cmp_bytes(a->s, a->len, b->s, b->len);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

static int32_t piece_id(const og_unigram *t, const char *s, size_t n)
{
    int lo = 0, hi = t->n_sorted - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = cmp_bytes(s, n, t->sorted[mid].s, t->sorted[mid].len);
        if (c == 0)
            return t->sorted[mid].id;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

/* ---- loading ------------------------------------------------------------------------------- */

static void normalizer_free(normalizer *nm)
{
    free(nm->units);
    free(nm->repl);
    free(nm->literal);
    free(nm->content);
    if (nm->re)
        pcre2_code_free(nm->re);
}

void og_unigram_free(og_unigram *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_pieces; i++)
        free(t->pieces[i]);
    free(t->pieces);
    free(t->scores);
    free(t->sorted);
    og_tok_added_free(t->added, t->n_added);
    for (int i = 0; i < t->n_norm; i++)
        normalizer_free(&t->norm[i]);
    free(t);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 with '=' padding; returns false on any other character. */
static bool b64_decode(const char *s, unsigned char **out, size_t *out_len)
{
    size_t n = strlen(s);
    unsigned char *o = malloc(n / 4 * 3 + 3);
    if (!o)
        return false;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            free(o);
            return false;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
        }
    }
    *out = o;
    *out_len = k;
    return true;
}

/* SentencePiece's precompiled charsmap: a little-endian u32 with the trie's size in bytes, the
 * darts-clone units (little-endian u32), then the replacement strings, each NUL-terminated. */
static og_status load_precompiled(normalizer *nm, const cJSON *n, const char *path)
{
    const cJSON *cm = cJSON_GetObjectItemCaseSensitive(n, "precompiled_charsmap");
    if (!cJSON_IsString(cm))
        return og_fail(OG_ERR_FORMAT, "%s: Precompiled normalizer without a precompiled_charsmap",
                       path);
    unsigned char *raw;
    size_t len;
    if (!b64_decode(cm->valuestring, &raw, &len))
        return og_fail(OG_ERR_FORMAT, "%s: precompiled_charsmap is not base64", path);
    og_status s = OG_OK;
    uint32_t trie_bytes = len >= 4 ? (uint32_t)raw[0] | (uint32_t)raw[1] << 8 |
                                         (uint32_t)raw[2] << 16 | (uint32_t)raw[3] << 24
                                   : 0;
    if (len < 4 || trie_bytes < 4 || trie_bytes % 4 || trie_bytes > len - 4) {
        s = og_fail(OG_ERR_FORMAT, "%s: precompiled_charsmap of %zu bytes has a trie of %u bytes "
                    "(corrupt)", path, len, trie_bytes);
        goto done;
    }
    nm->n_units = trie_bytes / 4;
    nm->units = malloc(trie_bytes);
    nm->repl_len = len - 4 - trie_bytes;
    nm->repl = malloc(nm->repl_len + 1);
    if (!nm->units || !nm->repl) {
        s = og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < nm->n_units; i++) {
        const unsigned char *u = raw + 4 + 4 * i;
        nm->units[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
                       (uint32_t)u[3] << 24;
    }
    memcpy(nm->repl, raw + 4 + trie_bytes, nm->repl_len);
    nm->repl[nm->repl_len] = 0; /* a last string without its NUL still ends */
done:
    free(raw);
    return s;
}

static og_status compile_regex(pcre2_code **re, const char *pattern, const char *path)
{
    int err;
    PCRE2_SIZE off;
    *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                        &off, NULL);
    if (!*re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return og_fail(OG_ERR_FORMAT, "%s: Replace regex does not compile at offset %zu: %s", path,
                       (size_t)off, (const char *)msg);
    }
    return OG_OK;
}

static og_status load_normalizer(og_unigram *t, const cJSON *n, const char *path)
{
    if (!n || cJSON_IsNull(n))
        return OG_OK;
    if (og_tok_json_type_is(n, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(n, "normalizers"))
            OG_TRY(load_normalizer(t, e, path));
        return OG_OK;
    }
    if (t->n_norm == MAX_NORMALIZERS)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: more than %d normalizers", path, MAX_NORMALIZERS);
    normalizer *nm = &t->norm[t->n_norm];
    memset(nm, 0, sizeof *nm);
    if (og_tok_json_type_is(n, "Precompiled")) {
        nm->kind = NORM_PRECOMPILED;
        t->n_norm++; /* counted before loading so that a failure frees what was allocated */
        return load_precompiled(nm, n, path);
    }
    if (og_tok_json_type_is(n, "Replace")) {
        nm->kind = NORM_REPLACE;
        t->n_norm++;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(n, "content");
        if (!cJSON_IsString(content) || !(cJSON_IsString(str) || cJSON_IsString(rx)))
            return og_fail(OG_ERR_FORMAT, "%s: Replace normalizer without a String or Regex "
                           "pattern and a content", path);
        if (cJSON_IsString(str) && !str->valuestring[0])
            return og_fail(OG_ERR_FORMAT, "%s: Replace normalizer with an empty pattern", path);
        nm->content = strdup(content->valuestring);
        if (cJSON_IsString(str))
            nm->literal = strdup(str->valuestring);
        else
            OG_TRY(compile_regex(&nm->re, rx->valuestring, path));
        if (!nm->content || (cJSON_IsString(str) && !nm->literal))
            return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        return OG_OK;
    }
    if (og_tok_json_type_is(n, "Strip")) {
        nm->kind = NORM_STRIP;
        nm->left = json_true(n, "strip_left", false);
        nm->right = json_true(n, "strip_right", false);
        t->n_norm++;
        return OG_OK;
    }
    if (og_tok_json_type_is(n, "NFC")) {
        nm->kind = NORM_NFC;
        t->n_norm++;
        return OG_OK;
    }
    return og_fail(OG_ERR_UNSUPPORTED, "%s: normalizer %s is not supported (only Precompiled, "
                   "Replace, Strip, NFC and Sequence)", path, og_tok_json_type(n));
}

static og_status load_metaspace(og_unigram *t, const cJSON *p, const char *path)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(p, "replacement");
    if (!cJSON_IsString(r))
        return og_fail(OG_ERR_FORMAT, "%s: Metaspace without a replacement", path);
    size_t rl = strlen(r->valuestring), cl = 0;
    if (rl == 0 || rl >= sizeof t->meta_char || (utf8_at(r->valuestring, &cl), cl != rl))
        return og_fail(OG_ERR_FORMAT, "%s: Metaspace replacement \"%s\" is not one character",
                       path, r->valuestring);
    memcpy(t->meta_char, r->valuestring, rl + 1);
    t->meta_len = rl;
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(p, "prepend_scheme");
    if (cJSON_IsString(scheme)) {
        if (strcmp(scheme->valuestring, "always") == 0)
            t->prepend = true;
        else if (strcmp(scheme->valuestring, "never") == 0)
            t->prepend = false;
        else
            return og_fail(OG_ERR_UNSUPPORTED, "%s: Metaspace prepend_scheme %s is not supported "
                           "(only always and never)", path, scheme->valuestring);
    } else {
        t->prepend = json_true(p, "add_prefix_space", true);
    }
    t->meta_split = json_true(p, "split", true);
    t->metaspace = true;
    return OG_OK;
}

static og_status load_pre_tokenizer(og_unigram *t, const cJSON *p, const char *path)
{
    if (!p || cJSON_IsNull(p))
        return OG_OK;
    if (og_tok_json_type_is(p, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"))
            OG_TRY(load_pre_tokenizer(t, e, path));
        return OG_OK;
    }
    if (og_tok_json_type_is(p, "WhitespaceSplit")) {
        if (t->metaspace || t->whitespace_split)
            return og_fail(OG_ERR_UNSUPPORTED, "%s: WhitespaceSplit after Metaspace or twice is "
                           "not supported", path);
        t->whitespace_split = true;
        return OG_OK;
    }
    if (og_tok_json_type_is(p, "Metaspace")) {
        if (t->metaspace)
            return og_fail(OG_ERR_UNSUPPORTED, "%s: two Metaspace pre-tokenizers", path);
        return load_metaspace(t, p, path);
    }
    return og_fail(OG_ERR_UNSUPPORTED, "%s: pre_tokenizer %s is not supported (only "
                   "WhitespaceSplit, Metaspace and Sequence)", path, og_tok_json_type(p));
}

static og_status load_template(og_unigram *t, const cJSON *pp, const char *path)
{
    if (!pp || cJSON_IsNull(pp))
        return OG_OK;
    if (!og_tok_json_type_is(pp, "TemplateProcessing"))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: post_processor %s is not supported (only "
                       "TemplateProcessing)", path, og_tok_json_type(pp));
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pp, "special_tokens");
    bool seen_a = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, single)
    {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
        if (seq) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(seq, "id");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, "A") != 0 || seen_a)
                return og_fail(OG_ERR_UNSUPPORTED, "%s: the single template must hold $A once",
                               path);
            seen_a = true;
            continue;
        }
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
        const cJSON *tok = cJSON_IsString(name)
                               ? cJSON_GetObjectItemCaseSensitive(specials, name->valuestring)
                               : NULL;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(tok, "ids");
        if (!cJSON_IsArray(ids))
            return og_fail(OG_ERR_FORMAT, "%s: template token %s is not in special_tokens", path,
                           cJSON_IsString(name) ? name->valuestring : "?");
        const cJSON *v;
        cJSON_ArrayForEach(v, ids)
        {
            int *count = seen_a ? &t->n_suffix : &t->n_prefix;
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT32_MAX)
                return og_fail(OG_ERR_FORMAT, "%s: template token with a bad id", path);
            if (*count == MAX_TEMPLATE)
                return og_fail(OG_ERR_UNSUPPORTED, "%s: template with too many tokens", path);
            (seen_a ? t->suffix : t->prefix)[(*count)++] = (int32_t)v->valuedouble;
        }
    }
    if (!seen_a)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: the single template must hold $A once", path);
    return OG_OK;
}

static og_status load_model(og_unigram *t, const cJSON *m, const char *path)
{
    if (!m || !og_tok_json_type_is(m, "Unigram"))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: model %s is not supported (only Unigram)", path,
                       m ? og_tok_json_type(m) : "null");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    int n = cJSON_GetArraySize(vocab);
    if (!cJSON_IsArray(vocab) || n < 1)
        return og_fail(OG_ERR_FORMAT, "%s: model.vocab is not a list of [piece, score]", path);
    t->pieces = calloc((size_t)n, sizeof *t->pieces);
    t->scores = malloc((size_t)n * sizeof *t->scores);
    t->sorted = malloc((size_t)n * sizeof *t->sorted);
    if (!t->pieces || !t->scores || !t->sorted)
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory for %d pieces", n);
    double min_score = INFINITY;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab)
    {
        const cJSON *p = cJSON_GetArrayItem(e, 0), *sc = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(p) ||
            !cJSON_IsNumber(sc))
            return og_fail(OG_ERR_FORMAT, "%s: vocab entry %d is not [piece, score]", path,
                           t->n_pieces);
        int i = t->n_pieces;
        t->pieces[i] = strdup(p->valuestring);
        if (!t->pieces[i])
            return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        t->n_pieces++;
        t->scores[i] = sc->valuedouble;
        if (sc->valuedouble < min_score)
            min_score = sc->valuedouble;
        size_t len = strlen(p->valuestring);
        t->sorted[i] = (sorted_piece){t->pieces[i], len, i};
        if (len > t->max_piece_len)
            t->max_piece_len = len;
    }
    /* tokenizers' piece -> id map keeps the last of equal pieces: sort by (bytes, id), keep the
     * last of each run. */
    qsort(t->sorted, (size_t)n, sizeof *t->sorted, cmp_sorted);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && cmp_bytes(t->sorted[k - 1].s, t->sorted[k - 1].len, t->sorted[i].s,
                               t->sorted[i].len) == 0)
            k--;
        t->sorted[k++] = t->sorted[i];
    }
    t->n_sorted = k;
    t->unk_score = min_score - 10.0;
    if (t->vocab_size < n)
        t->vocab_size = n;

    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(m, "unk_id");
    if (!cJSON_IsNumber(unk) || unk->valuedouble < 0 || unk->valuedouble >= n)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: Unigram without a valid unk_id (needed for text "
                       "no piece covers)", path);
    t->unk_id = (int32_t)unk->valuedouble;
    t->byte_fallback = json_true(m, "byte_fallback", false);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = piece_id(t, name, 6);
    }
    return OG_OK;
}

static og_status load_json(og_unigram *t, const cJSON *root, const char *path)
{
    OG_TRY(load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), path));
    OG_TRY(og_tok_load_added(&t->added, &t->n_added, &t->vocab_size,
                             cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path));
    OG_TRY(load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), path));
    OG_TRY(load_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path));
    OG_TRY(load_template(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), path));
    for (int i = 0; i < t->n_prefix + t->n_suffix; i++) {
        int32_t id = i < t->n_prefix ? t->prefix[i] : t->suffix[i - t->n_prefix];
        if (id >= t->vocab_size)
            return og_fail(OG_ERR_FORMAT, "%s: template token id %d is outside the vocabulary",
                           path, id);
    }
    return OG_OK;
}

og_status og_unigram_load(og_unigram **out, const char *path)
{
    *out = NULL;
    char file[4096];
    cJSON *root;
    OG_TRY(og_tok_json_open(path, file, sizeof file, &root));
    og_unigram *t = calloc(1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    }
    og_status s = load_json(t, root, file);
    cJSON_Delete(root);
    if (s != OG_OK) {
        og_unigram_free(t);
        return s;
    }
    *out = t;
    return OG_OK;
}

int og_unigram_vocab_size(const og_unigram *t) { return t->vocab_size; }

int32_t og_unigram_token_id(const og_unigram *t, const char *token)
{
    int32_t id = og_tok_added_id(t->added, t->n_added, token);
    if (id >= 0)
        return id;
    return piece_id(t, token, strlen(token));
}

/* ---- normalizers --------------------------------------------------------------------------- */

/* darts-clone: the value of the shortest key that is a prefix of s[0..n), or -1 (tokenizers'
 * Precompiled takes the first common-prefix match). Units: bit 8 has_leaf, bits 0-30 value,
 * label = bits 0-7 plus bit 31, offset = (unit >> 10) << ((unit & (1 << 9)) >> 6). */
static int64_t trie_first_prefix(const normalizer *nm, const char *s, size_t n)
{
    const uint32_t *u = nm->units;
    size_t pos = 0;
    uint32_t unit = u[0];
    pos ^= (size_t)((unit >> 10) << ((unit & (1u << 9)) >> 6));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        pos ^= c;
        if (pos >= nm->n_units)
            return -1;
        unit = u[pos];
        if ((unit & ((1u << 31) | 0xFF)) != c)
            return -1;
        pos ^= (size_t)((unit >> 10) << ((unit & (1u << 9)) >> 6));
        if (pos >= nm->n_units)
            return -1;
        if ((unit >> 8) & 1)
            return (int64_t)(u[pos] & 0x7FFFFFFFu);
    }
    return -1;
}

/* Appends the replacement of s[0..n) if the charsmap has one; false if not. */
static og_status charsmap_put(const normalizer *nm, const char *s, size_t n, buf *out, bool *hit)
{
    int64_t v = trie_first_prefix(nm, s, n);
    *hit = v >= 0 && (size_t)v < nm->repl_len;
    if (!*hit)
        return OG_OK;
    return buf_put(out, nm->repl + v, strlen(nm->repl + v));
}

/* tokenizers' Precompiled: per extended grapheme cluster, a cluster under 6 bytes is looked up
 * whole first (its shortest matching prefix replaces the whole cluster); otherwise each character
 * is looked up alone and kept when it has no entry. */
static og_status apply_precompiled(const normalizer *nm, const char *s, size_t n, buf *out)
{
    uint32_t *cps = malloc((n + 1) * sizeof *cps);
    size_t *at = malloc((n + 1) * sizeof *at);
    og_status st = OG_OK;
    if (!cps || !at) {
        st = og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        at[m] = i;
        cps[m++] = utf8_at(s + i, &l);
        i += l;
    }
    at[m] = n;
    for (size_t g = 0; g < m && st == OG_OK;) {
        size_t e = og_grapheme_next(cps, m, g);
        bool hit = false;
        if (at[e] - at[g] < 6)
            st = charsmap_put(nm, s + at[g], at[e] - at[g], out, &hit);
        for (size_t c = g; !hit && c < e && st == OG_OK; c++) {
            bool one;
            st = charsmap_put(nm, s + at[c], at[c + 1] - at[c], out, &one);
            if (st == OG_OK && !one)
                st = buf_put(out, s + at[c], at[c + 1] - at[c]);
        }
        g = e;
    }
done:
    free(cps);
    free(at);
    return st;
}

static og_status apply_replace(const normalizer *nm, const char *s, size_t n, buf *out)
{
    size_t cl = strlen(nm->content), pos = 0;
    if (nm->literal) {
        size_t pl = strlen(nm->literal);
        while (pos < n) {
            const char *hit = NULL;
            for (size_t i = pos; i + pl <= n && !hit; i++)
                if (memcmp(s + i, nm->literal, pl) == 0)
                    hit = s + i;
            if (!hit)
                break;
            OG_TRY(buf_put(out, s + pos, (size_t)(hit - s) - pos));
            OG_TRY(buf_put(out, nm->content, cl));
            pos = (size_t)(hit - s) + pl;
        }
        return buf_put(out, s + pos, n - pos);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(nm->re, NULL);
    if (!md)
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    og_status st = OG_OK;
    size_t from = 0;
    while (st == OG_OK && from < n) {
        int rc = pcre2_match(nm->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            st = og_fail(OG_ERR_INTERNAL, "Replace normalizer regex failed (%d)", rc);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) { /* an empty match replaces nothing: step over one character */
            from = ov[0] + (ov[0] < n ? utf8_len((unsigned char)s[ov[0]]) : 1);
            continue;
        }
        st = buf_put(out, s + pos, ov[0] - pos);
        if (st == OG_OK)
            st = buf_put(out, nm->content, cl);
        pos = from = ov[1];
    }
    pcre2_match_data_free(md);
    OG_TRY(st);
    return buf_put(out, s + pos, n - pos);
}

static og_status apply_strip(const normalizer *nm, const char *s, size_t n, buf *out)
{
    size_t b = 0, e = n, l;
    while (nm->left && b < e && is_white_space(utf8_at(s + b, &l)))
        b += l;
    while (nm->right && e > b) {
        size_t k = e - 1;
        while (k > b && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        if (!is_white_space(utf8_at(s + k, &l)))
            break;
        e = k;
    }
    return buf_put(out, s + b, e - b);
}

static og_status normalize(const og_unigram *t, const char *s, size_t n, char **out,
                           size_t *out_len)
{
    buf cur = {0};
    OG_TRY(buf_put(&cur, s, n));
    for (int i = 0; i < t->n_norm; i++) {
        const normalizer *nm = &t->norm[i];
        buf next = {0};
        og_status st = OG_OK;
        if (nm->kind == NORM_NFC) {
            char *o;
            size_t ol;
            st = og_nfc(cur.s, cur.n, &o, &ol);
            if (st == OG_OK) {
                next.s = o;
                next.n = next.cap = ol;
            }
        } else if (nm->kind == NORM_PRECOMPILED) {
            st = apply_precompiled(nm, cur.s, cur.n, &next);
        } else if (nm->kind == NORM_REPLACE) {
            st = apply_replace(nm, cur.s, cur.n, &next);
        } else {
            st = apply_strip(nm, cur.s, cur.n, &next);
        }
        if (st == OG_OK && !next.s)
            st = buf_put(&next, "", 0);
        free(cur.s);
        if (st != OG_OK) {
            free(next.s);
            return st;
        }
        cur = next;
    }
    *out = cur.s;
    *out_len = cur.n;
    return OG_OK;
}

/* ---- the model ----------------------------------------------------------------------------- */

typedef struct {
    double score;
    int start; /* -1: not reached */
    int32_t id;
} lattice_node;

/* An unknown span: its exact piece if one exists, else bytes with byte_fallback, else <unk>. */
static og_status push_unknown(const og_unigram *t, const char *s, size_t n, og_tok_ids *out)
{
    int32_t id = piece_id(t, s, n);
    if (id >= 0)
        return og_tok_push_id(out, id);
    if (t->byte_fallback) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all &= t->byte_id[(unsigned char)s[i]] >= 0;
        if (all) {
            for (size_t i = 0; i < n; i++)
                OG_TRY(og_tok_push_id(out, t->byte_id[(unsigned char)s[i]]));
            return OG_OK;
        }
    }
    return og_tok_push_id(out, t->unk_id);
}

/* Viterbi over one pre-token: node[e] holds the best path ending at byte e. Candidates at each
 * start are tried shortest first and replace a node only when strictly better (tokenizers' order);
 * a start whose first character no piece covers gets <unk> over that character. The path is read
 * back to front; adjacent <unk> nodes are fused into one span. */
static og_status viterbi(const og_unigram *t, const char *s, size_t n, og_tok_ids *out)
{
    if (n == 0)
        return OG_OK;
    lattice_node *node = malloc((n + 1) * sizeof *node);
    int32_t *rev = malloc((n + 1) * sizeof *rev);
    int *rev_start = malloc((n + 1) * sizeof *rev_start);
    og_status st = OG_OK;
    if (!node || !rev || !rev_start) {
        st = og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i <= n; i++)
        node[i] = (lattice_node){0.0, -1, -1};
    for (size_t b = 0; b < n;) {
        size_t first = utf8_len((unsigned char)s[b]);
        double base = node[b].score;
        bool single = false;
        for (size_t e = b + first; e <= n && e - b <= t->max_piece_len;
             e += utf8_len((unsigned char)s[e])) {
            int32_t id = piece_id(t, s + b, e - b);
            if (id >= 0) {
                double cand = base + t->scores[id];
                if (node[e].start < 0 || cand > node[e].score)
                    node[e] = (lattice_node){cand, (int)b, id};
                single |= e - b == first;
            }
            if (e == n)
                break;
        }
        if (!single) {
            double cand = base + t->unk_score;
            if (node[b + first].start < 0 || cand > node[b + first].score)
                node[b + first] = (lattice_node){cand, (int)b, t->unk_id};
        }
        b += first;
    }
    int k = 0;
    for (size_t e = n; e > 0; e = (size_t)node[e].start) {
        rev[k] = node[e].id;
        rev_start[k++] = node[e].start;
    }
    for (int i = k - 1; i >= 0 && st == OG_OK; i--) {
        size_t b = (size_t)rev_start[i], e = i > 0 ? (size_t)rev_start[i - 1] : n;
        if (rev[i] != t->unk_id) {
            st = og_tok_push_id(out, rev[i]);
            continue;
        }
        while (i > 0 && rev[i - 1] == t->unk_id) { /* fuse the run of unknowns */
            i--;
            e = i > 0 ? (size_t)rev_start[i - 1] : n;
        }
        st = push_unknown(t, s + b, e - b, out);
    }
done:
    free(node);
    free(rev);
    free(rev_start);
    return st;
}

/* Metaspace on one word: spaces become the replacement character, which is prepended unless the
 * word starts with it, and with split the word is cut before every replacement character. */
static og_status metaspace_word(const og_unigram *t, const char *s, size_t n, og_tok_ids *out)
{
    buf w = {0};
    og_status st = OG_OK;
    /* The check for a leading replacement character comes after spaces became one. */
    bool starts = s[0] == ' ' || (n >= t->meta_len && memcmp(s, t->meta_char, t->meta_len) == 0);
    if (t->prepend && !starts)
        st = buf_put(&w, t->meta_char, t->meta_len);
    for (size_t i = 0; i < n && st == OG_OK; i++)
        st = s[i] == ' ' ? buf_put(&w, t->meta_char, t->meta_len) : buf_put(&w, s + i, 1);
    size_t start = 0;
    for (size_t i = 0; st == OG_OK && t->meta_split && i < w.n;
         i += utf8_len((unsigned char)w.s[i]))
        if (i > start && i + t->meta_len <= w.n &&
            memcmp(w.s + i, t->meta_char, t->meta_len) == 0) {
            st = viterbi(t, w.s + start, i - start, out);
            start = i;
        }
    if (st == OG_OK)
        st = viterbi(t, w.s + start, w.n - start, out);
    free(w.s);
    return st;
}

static og_status pre_tokenize(const og_unigram *t, const char *s, size_t n, og_tok_ids *out)
{
    if (!t->whitespace_split)
        return t->metaspace ? (n ? metaspace_word(t, s, n, out) : OG_OK) : viterbi(t, s, n, out);
    size_t i = 0;
    while (i < n) {
        size_t l;
        while (i < n && is_white_space(utf8_at(s + i, &l)))
            i += l;
        size_t b = i;
        while (i < n && !is_white_space(utf8_at(s + i, &l)))
            i += l;
        if (i > b)
            OG_TRY(t->metaspace ? metaspace_word(t, s + b, i - b, out)
                                : viterbi(t, s + b, i - b, out));
    }
    return OG_OK;
}

static og_status pre_tokenize_piece(const void *t, const char *s, size_t n, og_tok_ids *out)
{
    return pre_tokenize(t, s, n, out);
}

/* Text between raw added tokens: normalize, split on normalized added tokens, pre-tokenize. */
static og_status encode_plain(const void *ctx, const char *s, size_t n, og_tok_ids *out)
{
    const og_unigram *t = ctx;
    if (n == 0)
        return OG_OK;
    char *norm;
    size_t nn;
    OG_TRY(normalize(t, s, n, &norm, &nn));
    og_status st =
        og_tok_split_added(t->added, t->n_added, norm, nn, true, pre_tokenize_piece, t, out);
    free(norm);
    return st;
}

og_status og_unigram_normalize(const og_unigram *t, const char *text, size_t len, char **out,
                               size_t *out_len)
{
    *out = NULL;
    OG_TRY(og_tok_check_utf8(text, len));
    return normalize(t, text, len, out, out_len);
}

og_status og_unigram_encode(const og_unigram *t, const char *text, size_t len, bool add_special,
                            int max_len, int32_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    int n_special = add_special ? t->n_prefix + t->n_suffix : 0;
    if (max_len > 0 && max_len < n_special)
        return og_fail(OG_ERR_INVALID_ARG, "a maximum length of %d is shorter than the %d tokens "
                       "the tokenizer's template adds", max_len, n_special);
    OG_TRY(og_tok_check_utf8(text, len));
    og_tok_ids body = {0};
    og_status st =
        og_tok_split_added(t->added, t->n_added, text, len, false, encode_plain, t, &body);
    int keep = body.n;
    if (st == OG_OK && max_len > 0 && body.n + n_special > max_len) {
        keep = max_len - n_special;
        og_log(OG_LOG_WARN, "the prompt is %d tokens; only the first %d are used (the reference "
               "truncates the same way)", body.n + n_special, max_len);
    }
    int32_t *res = st == OG_OK ? malloc((size_t)(keep + n_special + 1) * sizeof *res) : NULL;
    if (st == OG_OK && !res)
        st = og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    if (st != OG_OK) {
        free(body.ids);
        return st;
    }
    int k = 0;
    for (int i = 0; add_special && i < t->n_prefix; i++)
        res[k++] = t->prefix[i];
    for (int i = 0; i < keep; i++)
        res[k++] = body.ids[i];
    for (int i = 0; add_special && i < t->n_suffix; i++)
        res[k++] = t->suffix[i];
    free(body.ids);
    *ids = res;
    *n = k;
    return OG_OK;
}
