/* Byte-level BPE from tokenizer.json: loading (vocab, merges, added tokens, normalizer,
 * pre-tokenizer), added-token splitting, regex pre-tokenization and rank-ordered merging. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/bpe.h"

#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/tokenizer_common.h"
#include "text/unicode_nfc.h"

#define OG_BPE_MAX_REGEX 4

/* The GPT-2 pattern ByteLevel uses when use_regex is true. */
static const char GPT2_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ---- open-addressing hash maps ------------------------------------------------------------ */

typedef struct {
    char **keys; /* owned strings, NULL = empty */
    int32_t *vals;
    size_t cap;  /* a power of two */
} str_map;

typedef struct {
    uint64_t *keys; /* (a << 32 | b) + 1, 0 = empty */
    int32_t *rank, *merged;
    size_t cap;
} pair_map;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

static og_status str_map_init(str_map *m, size_t n)
{
    m->cap = pow2_at_least(n * 2 + 1);
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals)
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    return OG_OK;
}

static void str_map_free(str_map *m)
{
    if (m->keys)
        for (size_t i = 0; i < m->cap; i++)
            free(m->keys[i]);
    free(m->keys);
    free(m->vals);
}

/* Slot of key (n bytes): where it is, or the empty slot where it would go. */
static size_t str_map_slot(const str_map *m, const char *key, size_t n)
{
    size_t i = hash_bytes(key, n) & (m->cap - 1);
    while (m->keys[i] && !(strlen(m->keys[i]) == n && memcmp(m->keys[i], key, n) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int32_t str_map_get(const str_map *m, const char *key, size_t n)
{
    size_t i = str_map_slot(m, key, n);
    return m->keys[i] ? m->vals[i] : -1;
}

/* Inserts (or overwrites); the map must have room (it is sized at init). */
static og_status str_map_put(str_map *m, const char *key, int32_t val)
{
    size_t n = strlen(key);
    size_t i = str_map_slot(m, key, n);
    if (!m->keys[i]) {
        m->keys[i] = strdup(key);
        if (!m->keys[i])
            return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    }
    m->vals[i] = val;
    return OG_OK;
}

static size_t pair_slot(const pair_map *m, uint64_t key)
{
    size_t i = hash_u64(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static uint64_t pair_key(int32_t a, int32_t b)
{
    return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

/* ---- the tokenizer ------------------------------------------------------------------------ */

struct og_bpe {
    str_map vocab;
    pair_map merges;
    og_tok_added *added;
    int n_added;
    bool nfc;
    pcre2_code *regex[OG_BPE_MAX_REGEX];
    int n_regex;
    bool ignore_merges;
    int32_t byte_id[256];    /* vocab id of each byte's byte-level character */
    char byte_char[256][3];  /* that character in UTF-8 (1 or 2 bytes) + NUL */
    int vocab_size;
};

static void byte_level_alphabet(og_bpe *t)
{
    /* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to
     * U+0100 upwards in byte order. */
    int next = 256;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = keep ? b : next++;
        int n = og_utf8_encode((uint32_t)cp, t->byte_char[b]);
        t->byte_char[b][n] = 0;
    }
}

void og_bpe_free(og_bpe *t)
{
    if (!t)
        return;
    str_map_free(&t->vocab);
    free(t->merges.keys);
    free(t->merges.rank);
    free(t->merges.merged);
    og_tok_added_free(t->added, t->n_added);
    for (int i = 0; i < t->n_regex; i++)
        pcre2_code_free(t->regex[i]);
    free(t);
}

static og_status add_regex(og_bpe *t, const char *pattern, const char *path)
{
    if (t->n_regex == OG_BPE_MAX_REGEX)
        return og_fail(OG_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizer regexes", path,
                       OG_BPE_MAX_REGEX);
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return og_fail(OG_ERR_FORMAT, "%s: pre-tokenizer regex does not compile at offset %zu: %s",
                       path, (size_t)off, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional speed-up; the interpreter is the fallback */
    t->regex[t->n_regex++] = re;
    return OG_OK;
}

static og_status load_normalizer(og_bpe *t, const cJSON *n, const char *path)
{
    if (!n || cJSON_IsNull(n))
        return OG_OK;
    if (og_tok_json_type_is(n, "NFC")) {
        t->nfc = true;
        return OG_OK;
    }
    if (og_tok_json_type_is(n, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        const cJSON *e;
        cJSON_ArrayForEach(e, list) OG_TRY(load_normalizer(t, e, path));
        return OG_OK;
    }
    return og_fail(OG_ERR_UNSUPPORTED, "%s: normalizer %s is not supported (only NFC)", path,
                   og_tok_json_type(n));
}

static og_status load_byte_level(og_bpe *t, const cJSON *p, const char *path)
{
    if (!og_tok_json_is_false_or_null(p, "add_prefix_space"))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: ByteLevel add_prefix_space=true is not supported",
                       path);
    const cJSON *re = cJSON_GetObjectItemCaseSensitive(p, "use_regex");
    if (!re || cJSON_IsTrue(re))
        OG_TRY(add_regex(t, GPT2_REGEX, path));
    return OG_OK;
}

static og_status load_pre_tokenizer(og_bpe *t, const cJSON *p, const char *path)
{
    if (p && og_tok_json_type_is(p, "ByteLevel"))
        return load_byte_level(t, p, path);
    if (!p || !og_tok_json_type_is(p, "Sequence"))
        return og_fail(OG_ERR_UNSUPPORTED,
                       "%s: pre_tokenizer %s is not supported (byte-level BPE needs ByteLevel)",
                       path, p ? og_tok_json_type(p) : "null");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers");
    int n = cJSON_GetArraySize(list), i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        bool last = ++i == n;
        if (og_tok_json_type_is(e, "ByteLevel") && last)
            return load_byte_level(t, e, path);
        if (!og_tok_json_type_is(e, "Split") || last)
            return og_fail(OG_ERR_UNSUPPORTED,
                           "%s: pre-tokenizer %s at position %d is not supported (expected Splits "
                           "then one ByteLevel)", path, og_tok_json_type(e), i);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(e, "pattern");
        const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(e, "behavior");
        if (!cJSON_IsString(rx))
            return og_fail(OG_ERR_UNSUPPORTED, "%s: Split without a Regex pattern", path);
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") != 0 ||
            !og_tok_json_is_false_or_null(e, "invert"))
            return og_fail(OG_ERR_UNSUPPORTED,
                           "%s: Split behaviour %s / invert is not supported (only Isolated)", path,
                           cJSON_IsString(beh) ? beh->valuestring : "?");
        OG_TRY(add_regex(t, rx->valuestring, path));
    }
    return og_fail(OG_ERR_UNSUPPORTED, "%s: pre_tokenizer Sequence without a final ByteLevel", path);
}

static og_status load_model(og_bpe *t, const cJSON *m, const char *path)
{
    if (!m || !og_tok_json_type_is(m, "BPE"))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: model %s is not supported (only BPE)", path,
                       m ? og_tok_json_type(m) : "null");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (d && !cJSON_IsNull(d) && !(cJSON_IsNumber(d) && d->valuedouble == 0))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: BPE dropout is not supported", path);
    if (!og_tok_json_is_false_or_null(m, "byte_fallback"))
        return og_fail(OG_ERR_UNSUPPORTED, "%s: BPE byte_fallback is not supported", path);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, affixes[i]);
        if (a && !cJSON_IsNull(a) && !(cJSON_IsString(a) && a->valuestring[0] == 0))
            return og_fail(OG_ERR_UNSUPPORTED, "%s: BPE %s is not supported", path, affixes[i]);
    }
    t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "ignore_merges"));

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(vocab))
        return og_fail(OG_ERR_FORMAT, "%s: model.vocab is not an object", path);
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    if (!cJSON_IsArray(merges))
        return og_fail(OG_ERR_FORMAT, "%s: model.merges is not an array", path);
    int nv = cJSON_GetArraySize(vocab), nm = cJSON_GetArraySize(merges);

    OG_TRY(str_map_init(&t->vocab, (size_t)nv + 4096));
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > INT32_MAX - 1 ||
            e->valuedouble != (double)(int32_t)e->valuedouble)
            return og_fail(OG_ERR_FORMAT, "%s: vocab entry \"%s\" has no valid id", path,
                           e->string);
        int32_t id = (int32_t)e->valuedouble;
        OG_TRY(str_map_put(&t->vocab, e->string, id));
        if (id + 1 > t->vocab_size)
            t->vocab_size = id + 1;
    }

    t->merges.cap = pow2_at_least((size_t)nm * 2 + 1);
    t->merges.keys = calloc(t->merges.cap, sizeof *t->merges.keys);
    t->merges.rank = malloc(t->merges.cap * sizeof *t->merges.rank);
    t->merges.merged = malloc(t->merges.cap * sizeof *t->merges.merged);
    if (!t->merges.keys || !t->merges.rank || !t->merges.merged)
        return og_fail(OG_ERR_OOM, "%s: out of memory for %d merges", path, nm);
    int rank = 0;
    char buf[1024];
    cJSON_ArrayForEach(e, merges)
    {
        const char *a, *b;
        size_t la, lb;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return og_fail(OG_ERR_FORMAT, "%s: merge %d \"%s\" is not two tokens", path, rank,
                               e->valuestring);
            a = e->valuestring, la = (size_t)(sp - a), b = sp + 1, lb = strlen(b);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring, la = strlen(a);
            b = cJSON_GetArrayItem(e, 1)->valuestring, lb = strlen(b);
        } else {
            return og_fail(OG_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [a, b]", path, rank);
        }
        if (la + lb >= sizeof buf)
            return og_fail(OG_ERR_FORMAT, "%s: merge %d is too long", path, rank);
        int32_t ia = str_map_get(&t->vocab, a, la), ib = str_map_get(&t->vocab, b, lb);
        memcpy(buf, a, la);
        memcpy(buf + la, b, lb);
        int32_t im = str_map_get(&t->vocab, buf, la + lb);
        if (ia < 0 || ib < 0 || im < 0)
            return og_fail(OG_ERR_FORMAT, "%s: merge %d (%.*s + %.*s) uses a token not in the vocab",
                           path, rank, (int)la, a, (int)lb, b);
        size_t s = pair_slot(&t->merges, pair_key(ia, ib));
        if (!t->merges.keys[s]) { /* a repeated merge keeps its first (best) rank */
            t->merges.keys[s] = pair_key(ia, ib);
            t->merges.rank[s] = rank;
            t->merges.merged[s] = im;
        }
        rank++;
    }
    return OG_OK;
}

static og_status load_json(og_bpe *t, const cJSON *root, const char *path)
{
    byte_level_alphabet(t);
    OG_TRY(load_model(t, cJSON_GetObjectItemCaseSensitive(root, "model"), path));
    OG_TRY(og_tok_load_added(&t->added, &t->n_added, &t->vocab_size,
                             cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), path));
    OG_TRY(load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), path));
    OG_TRY(load_pre_tokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path));
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (pp && !cJSON_IsNull(pp) && !og_tok_json_type_is(pp, "ByteLevel"))
        return og_fail(OG_ERR_UNSUPPORTED,
                       "%s: post_processor %s is not supported (it would add ids)", path,
                       og_tok_json_type(pp));
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = str_map_get(&t->vocab, t->byte_char[b], strlen(t->byte_char[b]));
        if (t->byte_id[b] < 0)
            return og_fail(OG_ERR_FORMAT,
                           "%s: the vocab lacks the byte-level character for byte 0x%02X", path, b);
    }
    return OG_OK;
}

og_status og_bpe_load(og_bpe **out, const char *path)
{
    *out = NULL;
    char file[4096];
    cJSON *root;
    OG_TRY(og_tok_json_open(path, file, sizeof file, &root));
    og_bpe *t = calloc(1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    }
    og_status s = load_json(t, root, file);
    cJSON_Delete(root);
    if (s != OG_OK) {
        og_bpe_free(t);
        return s;
    }
    *out = t;
    return OG_OK;
}

int og_bpe_vocab_size(const og_bpe *t) { return t->vocab_size; }

int32_t og_bpe_token_id(const og_bpe *t, const char *token)
{
    int32_t id = og_tok_added_id(t->added, t->n_added, token);
    if (id >= 0)
        return id;
    return str_map_get(&t->vocab, token, strlen(token));
}

/* ---- encoding ----------------------------------------------------------------------------- */

typedef struct {
    int32_t rank, pos, merged;
} heap_item;

static bool heap_less(const heap_item *a, const heap_item *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_item *h, int *n, heap_item it)
{
    int i = (*n)++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!heap_less(&it, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = it;
}

static heap_item heap_pop(heap_item *h, int *n)
{
    heap_item top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c]))
            c++;
        if (!heap_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static bool merge_of(const og_bpe *t, int32_t a, int32_t b, int32_t *rank, int32_t *merged)
{
    size_t s = pair_slot(&t->merges, pair_key(a, b));
    if (!t->merges.keys[s])
        return false;
    *rank = t->merges.rank[s];
    *merged = t->merges.merged[s];
    return true;
}

/* BPE of one pre-token (raw bytes). Symbols form a linked list; a heap holds candidate merges
 * ordered by (rank, position); a popped candidate whose pair has changed since it was pushed is
 * stale and skipped. This is tokenizers' merge order: lowest rank first, leftmost among equals. */
static og_status bpe_piece(const og_bpe *t, const unsigned char *s, int n, og_tok_ids *out)
{
    if (t->ignore_merges) {
        char buf[512];
        size_t k = 0;
        for (int i = 0; i < n && k + 3 < sizeof buf; i++) {
            size_t cl = strlen(t->byte_char[s[i]]);
            memcpy(buf + k, t->byte_char[s[i]], cl);
            k += cl;
        }
        int32_t id = (size_t)n * 2 < sizeof buf ? str_map_get(&t->vocab, buf, k) : -1;
        if (id >= 0)
            return og_tok_push_id(out, id);
    }
    if (n == 1)
        return og_tok_push_id(out, t->byte_id[s[0]]);
    int32_t *sym = malloc((size_t)n * sizeof *sym);
    int *prev = malloc((size_t)n * sizeof *prev), *next = malloc((size_t)n * sizeof *next);
    heap_item *heap = malloc((size_t)n * 2 * sizeof *heap);
    og_status st = OG_OK;
    if (!sym || !prev || !next || !heap) {
        st = og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        goto done;
    }
    int hn = 0;
    for (int i = 0; i < n; i++) {
        sym[i] = t->byte_id[s[i]];
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < n; i++) {
        heap_item it = {0, i, 0};
        if (merge_of(t, sym[i], sym[i + 1], &it.rank, &it.merged))
            heap_push(heap, &hn, it);
    }
    while (hn > 0) {
        heap_item it = heap_pop(heap, &hn);
        int p = it.pos, q = next[p];
        if (sym[p] < 0 || q < 0)
            continue;
        int32_t r, m;
        if (!merge_of(t, sym[p], sym[q], &r, &m) || r != it.rank || m != it.merged)
            continue;
        sym[p] = m;
        sym[q] = -1;
        next[p] = next[q];
        if (next[q] >= 0)
            prev[next[q]] = p;
        /* Each merge pops one candidate and pushes at most two, and there are at most n - 1
         * merges: the heap never exceeds 2n - 2 items. */
        heap_item c;
        if (prev[p] >= 0 && merge_of(t, sym[prev[p]], sym[p], &c.rank, &c.merged)) {
            c.pos = prev[p];
            heap_push(heap, &hn, c);
        }
        if (next[p] >= 0 && merge_of(t, sym[p], sym[next[p]], &c.rank, &c.merged)) {
            c.pos = p;
            heap_push(heap, &hn, c);
        }
    }
    for (int i = 0; i >= 0 && st == OG_OK; i = next[i])
        st = og_tok_push_id(out, sym[i]);
done:
    free(sym);
    free(prev);
    free(next);
    free(heap);
    return st;
}

/* Splits s[0..n) by regex number r (Isolated: matches and gaps are pieces), recursing into the
 * next regex; after the last one every piece goes through BPE. */
static og_status split_regex(const og_bpe *t, int r, const char *s, size_t n, og_tok_ids *out,
                             pcre2_match_data **md)
{
    if (n == 0)
        return OG_OK;
    if (r == t->n_regex)
        return bpe_piece(t, (const unsigned char *)s, (int)n, out);
    size_t pos = 0, gap = 0;
    while (pos < n) {
        int rc = pcre2_match(t->regex[r], (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, md[r], NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return og_fail(OG_ERR_INTERNAL, "pre-tokenizer regex failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md[r]);
        size_t b = ov[0], e = ov[1];
        if (e == b) { /* an empty match splits nothing: step over one character */
            pos = b + 1;
            while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        OG_TRY(split_regex(t, r + 1, s + gap, b - gap, out, md));
        OG_TRY(split_regex(t, r + 1, s + b, e - b, out, md));
        pos = gap = e;
    }
    return split_regex(t, r + 1, s + gap, n - gap, out, md);
}

/* One encode call: the tokenizer and its match data (one per regex). */
typedef struct {
    const og_bpe *t;
    pcre2_match_data **md;
} bpe_run;

static og_status split_piece(const void *ctx, const char *s, size_t n, og_tok_ids *out)
{
    const bpe_run *r = ctx;
    return split_regex(r->t, 0, s, n, out, r->md);
}

/* Text between raw added tokens: normalize, split on normalized added tokens, pre-tokenize. */
static og_status encode_plain(const void *ctx, const char *s, size_t n, og_tok_ids *out)
{
    const og_bpe *t = ((const bpe_run *)ctx)->t;
    if (n == 0)
        return OG_OK;
    char *norm = NULL;
    size_t nn = n;
    if (t->nfc) {
        OG_TRY(og_nfc(s, n, &norm, &nn));
        s = norm;
    }
    og_status st = og_tok_split_added(t->added, t->n_added, s, nn, true, split_piece, ctx, out);
    free(norm);
    return st;
}

og_status og_bpe_encode(const og_bpe *t, const char *text, size_t len, int32_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    OG_TRY(og_tok_check_utf8(text, len));

    pcre2_match_data *md[OG_BPE_MAX_REGEX] = {0};
    og_status st = OG_OK;
    for (int r = 0; r < t->n_regex && st == OG_OK; r++) {
        md[r] = pcre2_match_data_create_from_pattern(t->regex[r], NULL);
        if (!md[r])
            st = og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    }
    og_tok_ids out = {0};
    const bpe_run run = {t, md};
    if (st == OG_OK)
        st = og_tok_split_added(t->added, t->n_added, text, len, false, encode_plain, &run, &out);
    for (int r = 0; r < t->n_regex; r++)
        pcre2_match_data_free(md[r]);
    if (st != OG_OK) {
        free(out.ids);
        return st;
    }
    *ids = out.ids;
    *n = out.n;
    return OG_OK;
}

og_status og_bpe_apply_chat(const og_bpe *t, const char *prompt, char **out)
{
    static const char pre[] = "<|im_start|>user\n", post[] = "<|im_end|>\n<|im_start|>assistant\n";
    *out = NULL;
    if (og_bpe_token_id(t, "<|im_start|>") < 0 || og_bpe_token_id(t, "<|im_end|>") < 0)
        return og_fail(OG_ERR_UNSUPPORTED,
                       "the tokenizer has no <|im_start|>/<|im_end|> tokens: not a Qwen chat "
                       "tokenizer");
    size_t n = strlen(prompt);
    char *s = malloc(sizeof pre - 1 + n + sizeof post);
    if (!s)
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    memcpy(s, pre, sizeof pre - 1);
    memcpy(s + sizeof pre - 1, prompt, n);
    memcpy(s + sizeof pre - 1 + n, post, sizeof post);
    *out = s;
    return OG_OK;
}

og_status og_bpe_encode_chat(const og_bpe *t, const char *prompt, int max_len, int32_t **ids,
                             int *n)
{
    char *chat;
    OG_TRY(og_bpe_apply_chat(t, prompt, &chat));
    og_status st = og_bpe_encode(t, chat, strlen(chat), ids, n);
    free(chat);
    OG_TRY(st);
    if (max_len > 0 && *n > max_len) {
        og_log(OG_LOG_WARN, "the prompt is %d tokens with the chat template; only the first %d are "
               "used (the rest, including the end of the template, is cut as the reference does)",
               *n, max_len);
        *n = max_len;
    }
    return OG_OK;
}
