/* Byte-level BPE against the reference tokenizer (transformers' Qwen2Tokenizer on the same
 * tokenizer.json): plain and chat-template ids for a Unicode/whitespace/special-token corpus, the
 * 512-token truncation, NFC on its own, the "a b" merges format, and load/encode errors. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_testutil.h"
#include "testutil.h"
#include "text/bpe.h"
#include "text/unicode_nfc.h"

#define TOK_DIR "models/zimage-tiny/tokenizer"
#define CASES "tests/fixtures/tokenizer/cases.json"

/* Writes root as dir/tokenizer.json (its path goes to path) and deletes it. */
static void write_tokenizer(cJSON *root, const char *dir, char *path, size_t path_size)
{
    char *out = cJSON_PrintUnformatted(root);
    snprintf(path, path_size, "%s/tokenizer.json", dir);
    og_test_write_text(path, out);
    free(out);
    cJSON_Delete(root);
}

static int check_corpus(const og_bpe *tok, const cJSON *cases, const char *label)
{
    int i = 0, fails = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int32_t *ids;
        int n;
        CHECK_OK(og_bpe_encode(tok, text, strlen(text), &ids, &n));
        if (!og_test_same_ids(ids, n, cJSON_GetObjectItem(c, "ids"), label, i))
            fails++;
        free(ids);

        char *chat;
        CHECK_OK(og_bpe_apply_chat(tok, text, &chat));
        CHECK(strcmp(chat, cJSON_GetObjectItem(c, "chat_text")->valuestring) == 0,
              "case %d: chat text differs", i);
        CHECK_OK(og_bpe_encode(tok, chat, strlen(chat), &ids, &n));
        if (!og_test_same_ids(ids, n, cJSON_GetObjectItem(c, "chat_ids"), "chat", i))
            fails++;
        free(ids);
        free(chat);

        CHECK_OK(og_bpe_encode_chat(tok, text, 512, &ids, &n));
        if (!og_test_same_ids(ids, n, cJSON_GetObjectItem(c, "chat_ids_512"), "chat 512", i))
            fails++;
        free(ids);
        i++;
    }
    CHECK(fails == 0, "%s: %d mismatching encodes over %d cases", label, fails, i);
    return i;
}

static void check_nfc(const cJSON *list)
{
    const cJSON *c;
    int i = 0;
    cJSON_ArrayForEach(c, list)
    {
        const char *in = cJSON_GetObjectItem(c, "in")->valuestring;
        const char *exp = cJSON_GetObjectItem(c, "nfc")->valuestring;
        char *out;
        size_t n;
        CHECK_OK(og_nfc(in, strlen(in), &out, &n));
        CHECK(n == strlen(exp) && memcmp(out, exp, n) == 0, "NFC case %d (%s) gives %s, expected %s",
              i, in, out, exp);
        free(out);
        /* Checking only (no code point buffer) counts what decoding does. */
        size_t len = strlen(in);
        uint32_t *cps = malloc((len + 1) * sizeof *cps);
        CHECK(cps && og_utf8_decode(in, len, NULL) == og_utf8_decode(in, len, cps),
              "NFC case %d: og_utf8_decode without a buffer counts differently", i);
        free(cps);
        i++;
    }
    CHECK(i > 10, "only %d NFC cases", i);
}

/* The same tokenizer with merges written as "a b" strings (the older, released Qwen format). */
static void check_string_merges(const char *json, const cJSON *cases, const char *dir)
{
    cJSON *root = cJSON_Parse(json);
    cJSON *merges = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "merges");
    cJSON *strs = cJSON_CreateArray();
    const cJSON *m;
    cJSON_ArrayForEach(m, merges)
    {
        char buf[256];
        snprintf(buf, sizeof buf, "%s %s", cJSON_GetArrayItem(m, 0)->valuestring,
                 cJSON_GetArrayItem(m, 1)->valuestring);
        cJSON_AddItemToArray(strs, cJSON_CreateString(buf));
    }
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(root, "model"), "merges", strs);
    char path[512];
    write_tokenizer(root, dir, path, sizeof path);
    og_bpe *tok;
    CHECK_OK(og_bpe_load(&tok, path));
    if (tok) {
        check_corpus(tok, cases, "string merges");
        og_bpe_free(tok);
    }
}

/* A tokenizer.json edited by `edit` must fail to load with `code`. */
static void check_refused(const char *json, const char *dir, const char *key, const char *value,
                          og_status code)
{
    cJSON *root = cJSON_Parse(json);
    cJSON_ReplaceItemInObject(root, key, cJSON_Parse(value));
    char path[512];
    write_tokenizer(root, dir, path, sizeof path);
    og_bpe *tok = NULL;
    og_status s = og_bpe_load(&tok, dir);
    CHECK(s == code && tok == NULL, "%s=%s: got %s (%s), expected %s", key, value,
          og_status_name(s), og_error_message(), og_status_name(code));
    og_bpe_free(tok);
}

int main(void)
{
    char *cases_text = og_test_read_file(CASES, NULL);
    char *tok_json = og_test_read_file(TOK_DIR "/tokenizer.json", NULL);
    if (!cases_text || !tok_json) {
        fprintf(stderr, "fixtures missing (%s, %s)\n", CASES, TOK_DIR);
        return 1;
    }
    cJSON *doc = cJSON_Parse(cases_text);
    const cJSON *cases = cJSON_GetObjectItem(doc, "cases");
    og_bpe *tok;
    CHECK_OK(og_bpe_load(&tok, TOK_DIR));
    if (!tok)
        return og_test_finish("test_tokenizer");
    int n = check_corpus(tok, cases, "plain");
    CHECK(n >= 30, "only %d corpus cases", n);
    check_nfc(cJSON_GetObjectItem(doc, "nfc"));

    CHECK(og_bpe_vocab_size(tok) == 999, "vocab size %d", og_bpe_vocab_size(tok));
    CHECK(og_bpe_token_id(tok, "<|im_start|>") == 974, "im_start id %d",
          og_bpe_token_id(tok, "<|im_start|>"));
    CHECK(og_bpe_token_id(tok, "no such token") == -1, "unknown token found");

    int32_t *ids;
    int m;
    og_status s = og_bpe_encode(tok, "bad \xC3\x28 utf8", 10, &ids, &m);
    CHECK(s == OG_ERR_INVALID_ARG, "invalid UTF-8 gave %s", og_status_name(s));
    s = og_bpe_encode(tok, "\xED\xA0\x80", 3, &ids, &m);
    CHECK(s == OG_ERR_INVALID_ARG, "a surrogate gave %s", og_status_name(s));
    og_bpe *none = NULL;
    s = og_bpe_load(&none, "tests/fixtures/tokenizer/no-such-dir");
    CHECK(s == OG_ERR_NOT_FOUND && !none, "missing folder gave %s", og_status_name(s));

    char dir[] = "/tmp/og_tokenizer_XXXXXX";
    if (mkdtemp(dir)) {
        check_string_merges(tok_json, cases, dir);
        check_refused(tok_json, dir, "normalizer", "{\"type\":\"NFKC\"}", OG_ERR_UNSUPPORTED);
        check_refused(tok_json, dir, "pre_tokenizer", "{\"type\":\"Metaspace\"}",
                      OG_ERR_UNSUPPORTED);
        check_refused(tok_json, dir, "post_processor",
                      "{\"type\":\"TemplateProcessing\",\"single\":[]}", OG_ERR_UNSUPPORTED);
        check_refused(tok_json, dir, "model", "{\"type\":\"Unigram\"}", OG_ERR_UNSUPPORTED);
        char path[600];
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        og_test_write_text(path, "{\"model\": ");
        s = og_bpe_load(&none, dir);
        CHECK(s == OG_ERR_FORMAT, "truncated JSON gave %s", og_status_name(s));
        unlink(path);
        rmdir(dir);
    }

    og_bpe_free(tok);
    cJSON_Delete(doc);
    free(cases_text);
    free(tok_json);
    return og_test_finish("test_tokenizer");
}
