/* SentencePiece-Unigram tokenizer against the reference (tools/make_wan_umt5_fixtures.py: a tiny
 * umT5-structured tokenizer.json; ids from transformers' AutoTokenizer, which the script checks
 * against the tokenizers library): ids with "</s>" for ~100 prompts (Unicode, CJK, emoji, combining
 * marks, compatibility forms, whitespace runs, inline special tokens, long prompts), the same
 * truncated at 64 as WanPipeline truncates, the normalizer's output string, grapheme clusters
 * against the regex package's \X, a byte-fallback variant in the newer converter's layout, and
 * refused tokenizer files and inputs. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_testutil.h"
#include "testutil.h"
#include "text/unicode_grapheme.h"
#include "text/unicode_nfc.h"
#include "text/unigram.h"

#define FIX "tests/fixtures/wan/umt5"

static void check_graphemes(const char *text, const cJSON *lens, int case_i)
{
    size_t len = strlen(text);
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    int64_t m = og_utf8_decode(text, len, cps);
    int k = 0;
    bool ok = m >= 0;
    for (size_t i = 0; ok && i < (size_t)m; k++) {
        size_t e = og_grapheme_next(cps, (size_t)m, i);
        const cJSON *want = cJSON_GetArrayItem(lens, k);
        ok = want && (size_t)want->valueint == e - i;
        i = e;
    }
    CHECK(ok && k == cJSON_GetArraySize(lens), "case %d: grapheme %d differs from \\X", case_i, k);
    free(cps);
}

static int check_cases(const og_unigram *tok, const og_unigram *variant, const cJSON *root)
{
    int max_len = cJSON_GetObjectItem(root, "max_length")->valueint, i = 0, fails = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases"))
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        size_t len = strlen(text);
        int32_t *ids;
        int n;
        CHECK_OK(og_unigram_encode(tok, text, len, true, 0, &ids, &n));
        fails += !og_test_same_ids(ids, n, cJSON_GetObjectItem(c, "ids"), "ids", i);
        free(ids);
        CHECK_OK(og_unigram_encode(tok, text, len, true, max_len, &ids, &n));
        fails += !og_test_same_ids(ids, n, cJSON_GetObjectItem(c, "ids_64"), "ids_64", i);
        free(ids);
        CHECK_OK(og_unigram_encode(variant, text, len, true, 0, &ids, &n));
        fails +=
            !og_test_same_ids(ids, n, cJSON_GetObjectItem(c, "variant_ids"), "byte fallback", i);
        free(ids);

        char *norm;
        size_t nl;
        CHECK_OK(og_unigram_normalize(tok, text, len, &norm, &nl));
        const char *want = cJSON_GetObjectItem(c, "normalized")->valuestring;
        CHECK(norm && nl == strlen(want) && memcmp(norm, want, nl) == 0,
              "case %d: normalized \"%s\", expected \"%s\"", i, norm ? norm : "", want);
        free(norm);
        check_graphemes(text, cJSON_GetObjectItem(c, "graphemes"), i);
        i++;
    }
    printf("%d cases, %d id mismatches\n", i, fails);
    CHECK(i >= 100, "only %d cases", i);
    return fails;
}

/* The byte-fallback variant: the fixture tokenizer.json with the parts the script swapped in. */
static cJSON *variant_json(const cJSON *tj, const cJSON *parts)
{
    cJSON *v = cJSON_Duplicate(tj, true);
    cJSON_ReplaceItemInObject(v, "model",
                              cJSON_Duplicate(cJSON_GetObjectItem(parts, "model"), true));
    cJSON_ReplaceItemInObject(v, "pre_tokenizer",
                              cJSON_Duplicate(cJSON_GetObjectItem(parts, "pre_tokenizer"), true));
    cJSON *list = cJSON_GetObjectItem(cJSON_GetObjectItem(v, "normalizer"), "normalizers");
    while (cJSON_GetArraySize(list) > 1)
        cJSON_DeleteItemFromArray(list, 1);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(parts, "normalizer_rest"))
        cJSON_AddItemToArray(list, cJSON_Duplicate(e, true));
    return v;
}

/* Loads json (consumed) from a temporary folder; returns the status, the tokenizer in *out. */
static og_status load_json_tok(cJSON *json, og_unigram **out)
{
    char dir[] = "/tmp/og_unigram_XXXXXX", path[600];
    *out = NULL;
    if (!mkdtemp(dir)) {
        cJSON_Delete(json);
        return OG_ERR_IO;
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    char *text = cJSON_PrintUnformatted(json);
    og_test_write_text(path, text);
    free(text);
    cJSON_Delete(json);
    og_status s = og_unigram_load(out, dir);
    unlink(path);
    rmdir(dir);
    return s;
}

static void expect_refused(const cJSON *tj, const char *what, const char *key, const char *json,
                           og_status want)
{
    cJSON *v = cJSON_Duplicate(tj, true);
    cJSON *part = cJSON_Parse(json);
    if (strcmp(key, "charsmap") == 0) {
        cJSON *pre = cJSON_GetArrayItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(v, "normalizer"), "normalizers"), 0);
        cJSON_ReplaceItemInObject(pre, "precompiled_charsmap", part);
    } else if (strncmp(key, "model.", 6) == 0) {
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(v, "model"), key + 6, part);
    } else {
        cJSON_ReplaceItemInObject(v, key, part);
    }
    og_unigram *t;
    og_status s = load_json_tok(v, &t);
    CHECK(s == want && !t, "%s: %s (%s), expected %s", what, og_status_name(s),
          og_error_message(), og_status_name(want));
    if (s != OG_OK)
        printf("refused as expected (%s): %s\n", what, og_error_message());
    og_unigram_free(t);
}

/* Damaged trie units must not read out of bounds (ASan) and must still give some string. */
static void check_damaged_trie(const cJSON *tj)
{
    cJSON *v = cJSON_Duplicate(tj, true);
    cJSON *pre = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(v, "normalizer"), "normalizers"), 0);
    char *b64 = strdup(cJSON_GetObjectItem(pre, "precompiled_charsmap")->valuestring);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    og_test_rng rng = {12345};
    size_t len = strlen(b64);
    for (int i = 0; i < 4000; i++) { /* the trie sits after the 8-character size prefix */
        size_t at = 8 + og_test_next(&rng) % (len / 2);
        b64[at] = alphabet[og_test_next(&rng) % 64];
    }
    cJSON_ReplaceItemInObject(pre, "precompiled_charsmap", cJSON_CreateString(b64));
    free(b64);
    og_unigram *t;
    CHECK_OK(load_json_tok(v, &t));
    if (t) {
        const char *text = "ｆｕｌｌ café 東京 ① 🐱 e\xcc\x81 \t x";
        int32_t *ids;
        int n;
        CHECK_OK(og_unigram_encode(t, text, strlen(text), true, 0, &ids, &n));
        CHECK(n >= 1, "damaged trie gave no ids");
        free(ids);
    }
    og_unigram_free(t);
}

int main(void)
{
    char *text = og_test_read_file(FIX "/cases.json", NULL);
    char *tj_text = og_test_read_file(FIX "/tokenizer/tokenizer.json", NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL, *tj = tj_text ? cJSON_Parse(tj_text) : NULL;
    free(text);
    free(tj_text);
    CHECK(root && tj, "fixtures missing");
    og_unigram *tok = NULL, *variant = NULL;
    CHECK_OK(og_unigram_load(&tok, FIX "/tokenizer"));
    if (root && tj)
        CHECK_OK(load_json_tok(variant_json(tj, cJSON_GetObjectItem(root, "variant")), &variant));
    if (tok && variant) {
        CHECK(check_cases(tok, variant, root) == 0, "ids differ from the reference");
        CHECK(og_unigram_token_id(tok, "</s>") == 1 && og_unigram_token_id(tok, "<extra_id_0>") ==
              207 && og_unigram_token_id(tok, "no such piece") == -1, "token ids");
        CHECK(og_unigram_vocab_size(tok) == 208, "vocab size %d", og_unigram_vocab_size(tok));
        int32_t *ids = NULL;
        int n;
        og_status s = og_unigram_encode(tok, "bad \xC3\x28 utf8", 10, true, 0, &ids, &n);
        CHECK(s == OG_ERR_INVALID_ARG && !ids, "invalid UTF-8 gave %s", og_status_name(s));
        CHECK_OK(og_unigram_encode(tok, "a cat", 5, false, 0, &ids, &n));
        CHECK(n == 2 && ids && ids[n - 1] != 1, "without special tokens: %d ids", n);
        free(ids);
        CHECK_OK(og_unigram_encode(tok, "a cat sat", 9, true, 1, &ids, &n));
        CHECK(n == 1 && ids && ids[0] == 1, "max_len 1 keeps only </s>");
        free(ids);
    }
    if (tj) {
        expect_refused(tj, "BPE model", "model",
                       "{\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}", OG_ERR_UNSUPPORTED);
        expect_refused(tj, "no unk_id", "model.unk_id", "null", OG_ERR_UNSUPPORTED);
        expect_refused(tj, "bad vocab", "model.vocab", "[[\"a\", \"x\"]]", OG_ERR_FORMAT);
        expect_refused(tj, "Lowercase", "normalizer", "{\"type\": \"Lowercase\"}",
                       OG_ERR_UNSUPPORTED);
        expect_refused(tj, "charsmap not base64", "charsmap", "\"@@@@\"", OG_ERR_FORMAT);
        expect_refused(tj, "charsmap trie past the end", "charsmap", "\"/////wAAAAA=\"",
                       OG_ERR_FORMAT);
        expect_refused(tj, "prepend_scheme first", "pre_tokenizer",
                       "{\"type\": \"Metaspace\", \"replacement\": \"_\", \"prepend_scheme\": "
                       "\"first\"}", OG_ERR_UNSUPPORTED);
        expect_refused(tj, "BertPreTokenizer", "pre_tokenizer", "{\"type\": \"BertPreTokenizer\"}",
                       OG_ERR_UNSUPPORTED);
        expect_refused(tj, "template with $B only", "post_processor",
                       "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": "
                       "\"B\", \"type_id\": 0}}], \"special_tokens\": {}}", OG_ERR_UNSUPPORTED);
        expect_refused(tj, "ByteLevel post-processor", "post_processor",
                       "{\"type\": \"ByteLevel\"}", OG_ERR_UNSUPPORTED);
        check_damaged_trie(tj);
    }
    og_unigram *t = NULL;
    og_status s = og_unigram_load(&t, FIX "/no_such_dir");
    CHECK(s != OG_OK && !t, "a missing tokenizer loaded");
    og_unigram_free(tok);
    og_unigram_free(variant);
    cJSON_Delete(root);
    cJSON_Delete(tj);
    return og_test_finish("test_unigram");
}
