/* The Qwen-Image prompt encoder: QwenImagePipeline.encode_prompt for one prompt, on the CPU.
 *
 *     og_bpe *tok;    OG_TRY(og_bpe_load(&tok, "<model>/tokenizer"));
 *     og_qwen3 *te;   OG_TRY(og_qwen3_load_output(&te, "<model>/text_encoder",
 *                                                  OG_QWEN3_OUT_LAST_NORMED));
 *     float *emb;
 *     int n;
 *     OG_TRY(og_qwenimage_encode_prompt(tok, te, "a cat", 512, &emb, &n));  // emb[n, hidden]
 *     free(emb);
 *
 * The prompt goes into the pipeline's template (a system message asking for an image
 * description, then the user message, then the assistant turn's start), which is tokenized with
 * the model's byte-level BPE and cut at 1024 + 34 tokens (the tokenizer call's max_length and
 * truncation; a longer prompt loses the template's end, as in the reference). The Qwen2.5-VL
 * text model gives hidden_states[-1] (after the final norm) of all those tokens; the first 34
 * rows are dropped (the template's system part when the real Qwen tokenizer is used: a fixed
 * count, whatever the tokenizer, as in the reference) and at most max_sequence_length rows kept.
 * For one prompt every kept row is a real token, so the pipeline's mask is all ones (it then
 * passes None); a batch pads each prompt's rows with zeros to the longest and masks them, which
 * is these n rows followed by zero rows. */
#ifndef OG_TEXT_QWENIMAGE_PROMPT_H
#define OG_TEXT_QWENIMAGE_PROMPT_H

#include <stdint.h>

#include "core/error.h"
#include "text/bpe.h"
#include "text/qwen3.h"

/* prompt_template_encode_start_idx of QwenImagePipeline (diffusers 0.42.1). */
#define OG_QWENIMAGE_DROP_TOKENS 34
/* tokenizer_max_length: the most rows after the drop, and check_inputs' max_sequence_length. */
#define OG_QWENIMAGE_MAX_SEQUENCE 1024

/* The template with the prompt in it; *out is malloc'd. */
og_status og_qwenimage_prompt_text(const char *prompt, char **out);

/* The template's ids, at most 1024 + 34 (a warning when it cuts); *ids malloc'd.
 * OG_ERR_UNSUPPORTED if the tokenizer lacks <|im_start|> or <|im_end|>; OG_ERR_INVALID_ARG for
 * invalid UTF-8. */
og_status og_qwenimage_prompt_ids(const og_bpe *tok, const char *prompt, int32_t **ids, int *n);

/* *embeds [*n, og_qwen3_hidden(te)] (malloc'd) = the pipeline's prompt_embeds[0], *n = the
 * number of ones in its mask. te must be loaded with OG_QWEN3_OUT_LAST_NORMED (else
 * OG_ERR_INVALID_ARG). max_sequence_length in 1..1024 (the pipeline refuses more; its
 * __call__ default is 512, encode_prompt's 1024). OG_ERR_INVALID_ARG also when the template
 * leaves no token after the drop (a tokenizer that is not Qwen's). */
og_status og_qwenimage_encode_prompt(const og_bpe *tok, const og_qwen3 *te, const char *prompt,
                                     int max_sequence_length, float **embeds, int *n);

#endif
