/* Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2/Qwen3, GPT-2 style),
 * and the Qwen chat prompt the Z-Image pipeline feeds its text encoder.
 *
 *     og_bpe *tok;
 *     OG_TRY(og_bpe_load(&tok, "models/zimage-tiny/tokenizer"));   // folder or tokenizer.json
 *     int32_t *ids;
 *     int n;
 *     OG_TRY(og_bpe_encode_chat(tok, "a cat on a windowsill", 512, &ids, &n));
 *     ...                                                             // ids[0..n)
 *     free(ids);
 *     og_bpe_free(tok);
 *
 * Encoding follows tokenizers' pipeline exactly: added tokens (special or not) are found first,
 * leftmost-longest, on the raw text (those marked "normalized" on the normalized text) and map
 * to their ids; every other span is normalized (NFC, or none), split by the pre-tokenizer regexes
 * (PCRE2 with UTF and Unicode properties; behaviour "Isolated": matches and the gaps between
 * them are pieces), mapped byte by byte to the GPT-2 byte alphabet, and merged by BPE: the
 * lowest-ranked adjacent pair first, leftmost among equals, until no pair has a merge.
 *
 * Supported tokenizer.json parts (anything else is refused at load with OG_ERR_UNSUPPORTED
 * naming the part): model BPE (merges as "a b" strings or [a, b] pairs; ignore_merges; no
 * dropout, no byte_fallback, no subword prefix/suffix); normalizer null, NFC, or a Sequence of
 * NFC; pre_tokenizer ByteLevel (use_regex: the GPT-2 regex, add_prefix_space false) or a
 * Sequence of Split(Regex, Isolated, invert false) and one final ByteLevel; post_processor null or
 * ByteLevel (offsets only: adds no ids); added tokens without lstrip/rstrip/single_word.
 * A loaded tokenizer is read-only: encode from many threads at once. */
#ifndef OG_TEXT_BPE_H
#define OG_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct og_bpe og_bpe;

/* `path` is a folder holding tokenizer.json, or the file itself. */
og_status og_bpe_load(og_bpe **out, const char *path);
void og_bpe_free(og_bpe *t);

/* Encodes len bytes of UTF-8 text; *ids is malloc'd (free()), *n its count (0 for ""). Invalid
 * UTF-8 is OG_ERR_INVALID_ARG. */
og_status og_bpe_encode(const og_bpe *t, const char *text, size_t len, int32_t **ids, int *n);

/* The chat prompt ZImagePipeline renders with the Qwen3 template (one user message,
 * add_generation_prompt, enable_thinking=True, which adds no think block):
 * "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n". *out is malloc'd.
 * OG_ERR_UNSUPPORTED if the tokenizer lacks <|im_start|> or <|im_end|>. */
og_status og_bpe_apply_chat(const og_bpe *t, const char *prompt, char **out);

/* og_bpe_apply_chat then og_bpe_encode, keeping the first max_len ids (the pipeline's
 * truncation=True, max_length=512) with a warning when it cuts; max_len <= 0: no limit. */
og_status og_bpe_encode_chat(const og_bpe *t, const char *prompt, int max_len, int32_t **ids,
                             int *n);

/* One past the largest id (vocabulary and added tokens). */
int og_bpe_vocab_size(const og_bpe *t);
/* The id of a vocabulary entry or added token (exact string), or -1. */
int32_t og_bpe_token_id(const og_bpe *t, const char *token);

#endif
