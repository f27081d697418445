/* SentencePiece-Unigram tokenizer read from a Hugging Face tokenizer.json, as T5 / umT5 ship it
 * (Wan2.1's tokenizer/ folder).
 *
 *     og_unigram *tok;
 *     OG_TRY(og_unigram_load(&tok, "models/wan/tokenizer"));   // folder or tokenizer.json
 *     int32_t *ids;
 *     int n;
 *     OG_TRY(og_unigram_encode(tok, prompt, strlen(prompt), true, 512, &ids, &n));
 *     ...                                                       // ids[0..n), "</s>" last
 *     free(ids);
 *     og_unigram_free(tok);
 *
 * Encoding follows tokenizers' pipeline: added tokens are found first, leftmost-longest, on the
 * raw text (those marked "normalized" on the normalized text); every other span is normalized,
 * pre-tokenized and segmented by the Unigram model (Viterbi over the piece scores: the path of
 * highest total score; a character no piece starts with is <unk> at the lowest score minus 10;
 * adjacent unknowns fuse into one <unk>, or into byte tokens <0xXX> with byte_fallback); with
 * special tokens the template post-processor wraps the ids ("$A </s>" for T5) and truncation
 * keeps the first max_len minus the template's tokens.
 *
 * Supported tokenizer.json parts (anything else is refused at load with OG_ERR_UNSUPPORTED naming
 * the part): model Unigram (unk_id, byte_fallback); normalizer null or a Sequence of Precompiled
 * (SentencePiece's charsmap: a darts-clone double-array trie over UTF-8 keys and their
 * replacement strings, applied per extended grapheme cluster exactly as tokenizers does), Replace
 * (String or Regex pattern; PCRE2), Strip, NFC; pre_tokenizer null, WhitespaceSplit, Metaspace
 * (prepend_scheme always or never, or the older add_prefix_space; split), or a Sequence of
 * WhitespaceSplit then Metaspace; post_processor null or TemplateProcessing; added tokens without
 * lstrip/rstrip/single_word. A loaded tokenizer is read-only: encode from many threads at once.
 * transformers 5's T5Tokenizer ignores the file's pre-tokenizer, normalizers other than
 * Precompiled, and byte_fallback (docs/wan.md): for T5's usual file the ids are the same. */
#ifndef OG_TEXT_UNIGRAM_H
#define OG_TEXT_UNIGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct og_unigram og_unigram;

/* `path` is a folder holding tokenizer.json, or the file itself. */
og_status og_unigram_load(og_unigram **out, const char *path);
void og_unigram_free(og_unigram *t);

/* Encodes len bytes of UTF-8 text; with add_special the post-processor's template is applied.
 * max_len > 0 truncates as the pipeline's truncation=True, max_length=max_len does (the template's
 * tokens are kept, the text's ids are cut, with a warning); max_len <= 0: no limit. *ids is
 * malloc'd (free()), *n its count. Invalid UTF-8, or a max_len below the template's own tokens,
 * is OG_ERR_INVALID_ARG. */
og_status og_unigram_encode(const og_unigram *t, const char *text, size_t len, bool add_special,
                            int max_len, int32_t **ids, int *n);

/* The normalizer alone: *out is a new NUL-terminated string (free()), *out_len its length. */
og_status og_unigram_normalize(const og_unigram *t, const char *text, size_t len, char **out,
                               size_t *out_len);

/* One past the largest id (vocabulary and added tokens). */
int og_unigram_vocab_size(const og_unigram *t);
/* The id of an added token or vocabulary piece (exact string), or -1. */
int32_t og_unigram_token_id(const og_unigram *t, const char *token);

#endif
