/* What the two tokenizer.json readers share (text/bpe.c, byte-level BPE; text/unigram.c,
 * SentencePiece-Unigram): finding the file, the JSON "type" tests, the added-token list and its
 * leftmost-longest search, the growing id list and the UTF-8 check of the input. Not part of the
 * public interface. */
#ifndef OG_TEXT_TOKENIZER_COMMON_H
#define OG_TEXT_TOKENIZER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"

/* One entry of tokenizer.json's "added_tokens". */
typedef struct {
    char *content; /* owned, NUL-terminated, never empty */
    size_t len;
    int32_t id;
    bool normalized; /* matched in the normalized text (true) or in the raw input (false) */
} og_tok_added;

/* A growing list of token ids (free ids with free()). */
typedef struct {
    int32_t *ids;
    int n, cap;
} og_tok_ids;

og_status og_tok_push_id(og_tok_ids *l, int32_t id);

/* o's "type" is the string `type`. */
bool og_tok_json_type_is(const cJSON *o, const char *type);
/* o's "type", or "(no type)". */
const char *og_tok_json_type(const cJSON *o);
/* o[key] is absent, null or false. */
bool og_tok_json_is_false_or_null(const cJSON *o, const char *key);

/* Parses `path` (a tokenizer.json, or a folder holding one): *root is the document (cJSON_Delete),
 * file (file_size bytes) the file's path. OG_ERR_INVALID_ARG when that path does not fit. */
og_status og_tok_json_open(const char *path, char *file, size_t file_size, cJSON **root);

/* Reads "added_tokens" (list may be NULL) into *added / *n_added (calloc'ed; free with
 * og_tok_added_free even on failure), raising *vocab_size past the largest id. lstrip, rstrip and
 * single_word other than false are refused (OG_ERR_UNSUPPORTED); path names the file in
 * messages. */
og_status og_tok_load_added(og_tok_added **added, int *n_added, int *vocab_size,
                            const cJSON *list, const char *path);
void og_tok_added_free(og_tok_added *added, int n_added);

/* The id of the added token whose content is `token`, or -1. */
int32_t og_tok_added_id(const og_tok_added *added, int n_added, const char *token);

/* Leftmost-longest added token in s[0..n) among those with normalized == want_normalized (its
 * offset goes to *at), or NULL. */
const og_tok_added *og_tok_find_added(const og_tok_added *added, int n_added, const char *s,
                                      size_t n, bool want_normalized, size_t *at);

/* Encodes one piece of text between added tokens, appending its ids to out. */
typedef og_status (*og_tok_piece_fn)(const void *ctx, const char *s, size_t n, og_tok_ids *out);

/* Splits s[0..n) on its added tokens with normalized == want_normalized (leftmost-longest, as
 * og_tok_find_added): each(ctx, ...) encodes every piece before, between and after them (empty
 * pieces included) and each token's id follows its piece; stops at the first failure. */
og_status og_tok_split_added(const og_tok_added *added, int n_added, const char *s, size_t n,
                             bool want_normalized, og_tok_piece_fn each, const void *ctx,
                             og_tok_ids *out);

/* OG_ERR_INVALID_ARG unless text[0..len) is valid UTF-8 of at most INT32_MAX / 4 bytes. */
og_status og_tok_check_utf8(const char *text, size_t len);

#endif
