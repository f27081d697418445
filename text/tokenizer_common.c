/* What the byte-level BPE and Unigram tokenizer.json readers share (text/tokenizer_common.h). */
#include "text/tokenizer_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_file.h"
#include "text/unicode_nfc.h"

og_status og_tok_push_id(og_tok_ids *l, int32_t id)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        int32_t *ni = realloc(l->ids, (size_t)cap * sizeof *ni);
        if (!ni)
            return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        l->ids = ni;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return OG_OK;
}

bool og_tok_json_type_is(const cJSON *o, const char *type)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(v) && strcmp(v->valuestring, type) == 0;
}

const char *og_tok_json_type(const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(v) ? v->valuestring : "(no type)";
}

bool og_tok_json_is_false_or_null(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return !v || cJSON_IsNull(v) || cJSON_IsFalse(v);
}

og_status og_tok_json_open(const char *path, char *file, size_t file_size, cJSON **root)
{
    *root = NULL;
    size_t pl = strlen(path);
    int w = pl > 5 && strcmp(path + pl - 5, ".json") == 0
                ? snprintf(file, file_size, "%s", path)
                : snprintf(file, file_size, "%s/tokenizer.json", path);
    if (w < 0 || (size_t)w >= file_size)
        return og_fail(OG_ERR_INVALID_ARG, "tokenizer path too long: %s", path);
    return og_json_load(file, root);
}

og_status og_tok_load_added(og_tok_added **added, int *n_added, int *vocab_size,
                            const cJSON *list, const char *path)
{
    int n = cJSON_GetArraySize(list);
    if (n == 0)
        return OG_OK;
    og_tok_added *arr = calloc((size_t)n, sizeof *arr);
    if (!arr)
        return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
    *added = arr;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsString(c) || !c->valuestring[0] || !cJSON_IsNumber(id) ||
            id->valuedouble < 0 || id->valuedouble > INT32_MAX - 1)
            return og_fail(OG_ERR_FORMAT, "%s: an added token lacks content or id", path);
        static const char *const flags[] = {"lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 3; k++)
            if (!og_tok_json_is_false_or_null(e, flags[k]))
                return og_fail(OG_ERR_UNSUPPORTED, "%s: added token %s has %s=true (not supported)",
                               path, c->valuestring, flags[k]);
        og_tok_added *a = &arr[(*n_added)++];
        a->content = strdup(c->valuestring);
        if (!a->content)
            return og_fail(OG_ERR_OOM, "tokenizer: out of memory");
        a->len = strlen(a->content);
        a->id = (int32_t)id->valuedouble;
        a->normalized = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "normalized"));
        if (a->id + 1 > *vocab_size)
            *vocab_size = a->id + 1;
    }
    return OG_OK;
}

void og_tok_added_free(og_tok_added *added, int n_added)
{
    for (int i = 0; i < n_added; i++)
        free(added[i].content);
    free(added);
}

int32_t og_tok_added_id(const og_tok_added *added, int n_added, const char *token)
{
    size_t n = strlen(token);
    for (int i = 0; i < n_added; i++)
        if (added[i].len == n && memcmp(added[i].content, token, n) == 0)
            return added[i].id;
    return -1;
}

const og_tok_added *og_tok_find_added(const og_tok_added *added, int n_added, const char *s,
                                      size_t n, bool want_normalized, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        const og_tok_added *best = NULL;
        for (int k = 0; k < n_added; k++) {
            const og_tok_added *a = &added[k];
            if (a->normalized != want_normalized || a->len > n - i || a->content[0] != s[i])
                continue;
            if (memcmp(s + i, a->content, a->len) == 0 && (!best || a->len > best->len))
                best = a;
        }
        if (best) {
            *at = i;
            return best;
        }
    }
    return NULL;
}

og_status og_tok_split_added(const og_tok_added *added, int n_added, const char *s, size_t n,
                             bool want_normalized, og_tok_piece_fn each, const void *ctx,
                             og_tok_ids *out)
{
    og_status st = OG_OK;
    size_t off = 0;
    while (st == OG_OK) {
        size_t at;
        const og_tok_added *a = og_tok_find_added(added, n_added, s + off, n - off,
                                                  want_normalized, &at);
        if (!a) {
            st = each(ctx, s + off, n - off, out);
            break;
        }
        st = each(ctx, s + off, at, out);
        if (st == OG_OK)
            st = og_tok_push_id(out, a->id);
        off += at + a->len;
    }
    return st;
}

og_status og_tok_check_utf8(const char *text, size_t len)
{
    if (len > (size_t)INT32_MAX / 4)
        return og_fail(OG_ERR_INVALID_ARG, "text of %zu bytes is too long to tokenize", len);
    if (og_utf8_decode(text, len, NULL) < 0)
        return og_fail(OG_ERR_INVALID_ARG, "the prompt is not valid UTF-8");
    return OG_OK;
}
