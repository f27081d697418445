/* QwenImagePipeline's prompt encoding for one prompt: template, tokenization, the Qwen2.5-VL
 * text model's hidden_states[-1], the 34-row drop and the max_sequence_length cut (see
 * text/qwenimage_prompt.h). */
#include "text/qwenimage_prompt.h"

#include <stdlib.h>
#include <string.h>

#include "text/qwen3_internal.h"

static const char TEMPLATE_HEAD[] =
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, "
    "quantity, text, spatial relationships of the objects and background:<|im_end|>\n"
    "<|im_start|>user\n";
static const char TEMPLATE_TAIL[] = "<|im_end|>\n<|im_start|>assistant\n";

og_status og_qwenimage_prompt_text(const char *prompt, char **out)
{
    *out = NULL;
    if (!prompt)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image prompt: no prompt given");
    size_t h = sizeof TEMPLATE_HEAD - 1, n = strlen(prompt);
    char *s = malloc(h + n + sizeof TEMPLATE_TAIL);
    if (!s)
        return og_fail(OG_ERR_OOM, "Qwen-Image prompt: out of memory");
    memcpy(s, TEMPLATE_HEAD, h);
    memcpy(s + h, prompt, n);
    memcpy(s + h + n, TEMPLATE_TAIL, sizeof TEMPLATE_TAIL);
    *out = s;
    return OG_OK;
}

og_status og_qwenimage_prompt_ids(const og_bpe *tok, const char *prompt, int32_t **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    if (og_bpe_token_id(tok, "<|im_start|>") < 0 || og_bpe_token_id(tok, "<|im_end|>") < 0)
        return og_fail(OG_ERR_UNSUPPORTED, "the tokenizer has no <|im_start|>/<|im_end|> tokens: "
                       "not a Qwen chat tokenizer");
    char *text;
    OG_TRY(og_qwenimage_prompt_text(prompt, &text));
    og_status s = og_bpe_encode(tok, text, strlen(text), ids, n);
    free(text);
    OG_TRY(s);
    const int max = OG_QWENIMAGE_MAX_SEQUENCE + OG_QWENIMAGE_DROP_TOKENS;
    if (*n > max) {
        og_log(OG_LOG_WARN, "the prompt is %d tokens with the Qwen-Image template; only the first "
               "%d are used (the rest, including the end of the template, is cut as the reference "
               "does)", *n, max);
        *n = max;
    }
    return OG_OK;
}

og_status og_qwenimage_encode_prompt(const og_bpe *tok, const og_qwen3 *te, const char *prompt,
                                     int max_sequence_length, float **embeds, int *n)
{
    *embeds = NULL;
    *n = 0;
    if (!te->final_norm)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image prompt: the text encoder must be loaded "
                       "for hidden_states[-1] (og_qwen3_load_output with "
                       "OG_QWEN3_OUT_LAST_NORMED)");
    if (max_sequence_length < 1 || max_sequence_length > OG_QWENIMAGE_MAX_SEQUENCE)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image prompt: max_sequence_length %d is outside "
                       "1..%d", max_sequence_length, OG_QWENIMAGE_MAX_SEQUENCE);
    int32_t *ids;
    int total;
    OG_TRY(og_qwenimage_prompt_ids(tok, prompt, &ids, &total));
    if (total <= OG_QWENIMAGE_DROP_TOKENS) {
        free(ids);
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image prompt: the template is %d tokens, no more "
                       "than the %d the pipeline drops (not a Qwen tokenizer?)", total,
                       OG_QWENIMAGE_DROP_TOKENS);
    }
    /* Attention is causal: the kept rows never see the tokens past them, so those are not run. */
    if (total > OG_QWENIMAGE_DROP_TOKENS + max_sequence_length)
        total = OG_QWENIMAGE_DROP_TOKENS + max_sequence_length;
    const size_t H = (size_t)te->hidden;
    float *all = malloc((size_t)total * H * sizeof *all);
    if (!all) {
        free(ids);
        return og_fail(OG_ERR_OOM, "Qwen-Image prompt: out of memory for %d tokens", total);
    }
    og_status s = og_qwen3_encode(te, ids, total, all);
    free(ids);
    if (s != OG_OK) {
        free(all);
        return s;
    }
    const int keep = total - OG_QWENIMAGE_DROP_TOKENS;
    memmove(all, all + OG_QWENIMAGE_DROP_TOKENS * H, (size_t)keep * H * sizeof *all);
    float *shrunk = realloc(all, (size_t)keep * H * sizeof *all);
    *embeds = shrunk ? shrunk : all;
    *n = keep;
    return OG_OK;
}
