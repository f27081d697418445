/* diffusers' prompt_clean, which WanPipeline applies to every prompt before tokenizing:
 * html.unescape twice, strip, every run of whitespace to one space, strip again, with Python's
 * definitions: HTML5 named and numeric character references with their legacy and invalid forms;
 * the runs are the regex package's \s (White_Space), the strips str.isspace (which adds
 * U+001C..U+001F, so those survive inside the prompt but not at its ends). ftfy's fix_text,
 * which diffusers runs first when ftfy is installed, is not applied (the reference environment
 * has no ftfy). The tables come from tools/gen_html_entities.py. */
#ifndef OG_TEXT_PROMPT_CLEAN_H
#define OG_TEXT_PROMPT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    const char *name, *value; /* name as in html.entities.html5 ("amp;", "amp"), UTF-8 value */
} og_html_entity;

typedef struct {
    uint32_t num, cp;
} og_html_charref;

extern const og_html_entity og_html_entities[]; /* sorted by name bytes */
extern const int og_html_entity_count;
extern const og_html_charref og_html_invalid_charrefs[]; /* sorted by num */
extern const int og_html_invalid_charref_count;
extern const uint32_t og_html_invalid_codepoints[]; /* sorted */
extern const int og_html_invalid_codepoint_count;
extern const uint32_t og_python_space[]; /* str.isspace, sorted */
extern const int og_python_space_count;
extern const uint32_t og_regex_space[]; /* the regex package's \s, sorted */
extern const int og_regex_space_count;

/* Python's html.unescape of valid UTF-8 text; *out is malloc'd and NUL-terminated. */
og_status og_html_unescape(const char *s, size_t len, char **out, size_t *out_len);

/* WanPipeline's prompt_clean (without ftfy); *out is malloc'd and NUL-terminated. Invalid UTF-8
 * is OG_ERR_INVALID_ARG. */
og_status og_prompt_clean(const char *prompt, char **out);

#endif
