/* WanPipeline's prompt_clean (text/prompt_clean.h) against diffusers' own function on the
 * fixture's 87 prompts (tools/make_wan_umt5_fixtures.py): named references with and without
 * semicolons and their legacy prefixes, numeric references (remapped, dropped, out of range,
 * huge), double escaping, every kind of whitespace and random mixes of those; invalid UTF-8
 * refused. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text/prompt_clean.h"

int main(void)
{
    char *text = og_test_read_file("tests/fixtures/wan/umt5/prompt_clean.json", NULL);
    cJSON *cases = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(cJSON_IsArray(cases), "fixture missing");
    int i = 0, bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *in = cJSON_GetObjectItem(c, "text")->valuestring;
        const char *want = cJSON_GetObjectItem(c, "clean")->valuestring;
        char *got = NULL;
        CHECK_OK(og_prompt_clean(in, &got));
        if (!got || strcmp(got, want) != 0) {
            fprintf(stderr, "case %d: \"%s\" -> \"%s\", expected \"%s\"\n", i, in,
                    got ? got : "(null)", want);
            bad++;
        }
        free(got);
        i++;
    }
    printf("%d prompts, %d differ\n", i, bad);
    CHECK(bad == 0 && i >= 80, "%d of %d prompts differ", bad, i);
    char *out = NULL;
    og_status s = og_prompt_clean("bad \xC3\x28 utf8", &out);
    CHECK(s == OG_ERR_INVALID_ARG && !out, "invalid UTF-8 gave %s", og_status_name(s));
    cJSON_Delete(cases);
    return og_test_finish("test_prompt_clean");
}
