/* umT5 encoder against transformers' UMT5EncoderModel (tools/make_wan_umt5_fixtures.py): the
 * relative-position buckets for distances -600..600, WanPipeline's prompt embeddings (the real
 * tokens' last_hidden_state, zero-padded to max_sequence_length) for five prompts including one
 * truncated at the limit, with their ids from text/unigram.c equal to the pipeline's; an unpadded
 * 401-token prompt whose distances reach past max_distance; the same model stored in bf16 (as
 * released); refused configs, checkpoints and ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/diffusers.h"
#include "io/weights.h"
#include "json_testutil.h"
#include "testutil.h"
#include "text/umt5.h"
#include "text/unigram.h"

#define FIX "tests/fixtures/wan/umt5"
static const double TOL = 1e-5;

static void check_buckets(const og_weights *ref)
{
    og_tensor t;
    CHECK_OK(og_weights_get(ref, "buckets_32_128", &t));
    if (!t.data)
        return;
    CHECK(t.dtype == OG_I64 && t.shape[0] == 1201, "bucket table shape");
    int bad = 0;
    for (int i = 0; i < 1201; i++) {
        int b = og_umt5_bucket(i - 600, 32, 128);
        if (b != ((const int64_t *)t.data)[i] && bad++ < 5)
            fprintf(stderr, "distance %d: bucket %d, reference %lld\n", i - 600, b,
                    (long long)((const int64_t *)t.data)[i]);
    }
    CHECK(bad == 0, "%d buckets differ from transformers'", bad);
}

/* The pipeline's ids of a prompt (WanPipeline: max_length, truncation, "</s>") from the
 * tokenizer. */
static void check_ids(const og_unigram *tok, const og_weights *ref, const char *prompt,
                      const char *ids_name, int max_len)
{
    og_tensor rid;
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(og_weights_get(ref, ids_name, &rid));
    CHECK_OK(og_unigram_encode(tok, prompt, strlen(prompt), true, max_len, &ids, &n));
    bool same = rid.data && ids && rid.shape[0] == n;
    for (int i = 0; same && i < n; i++)
        same = ((const int64_t *)rid.data)[i] == ids[i];
    CHECK(same, "%s: the tokenizer's ids differ from the pipeline's", ids_name);
    free(ids);
}

/* ids from the fixture -> embeddings of n rows, then padding to max_len, against the reference. */
static void check_prompt(const og_umt5 *te, const og_weights *ref, const char *ids_name,
                         const char *emb_name, int max_len)
{
    og_tensor rid, remb;
    CHECK_OK(og_weights_get(ref, ids_name, &rid));
    CHECK_OK(og_weights_get(ref, emb_name, &remb));
    if (!rid.data || !remb.data)
        return;
    int n = (int)rid.shape[0], D = og_umt5_hidden(te);
    int rows = max_len > 0 ? max_len : n;
    CHECK(remb.ndim == 2 && remb.shape[0] == rows && remb.shape[1] == D, "%s shape", emb_name);
    if (remb.shape[0] != rows || remb.shape[1] != D)
        return;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    float *out = malloc((size_t)rows * D * sizeof *out);
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)((const int64_t *)rid.data)[i];
    for (size_t i = 0; i < (size_t)rows * D; i++)
        out[i] = 1e30f; /* padding must be written, not left over */
    CHECK_OK(og_umt5_encode(te, ids, n, out));
    if (max_len > 0)
        og_umt5_pad_embeds(out, n, max_len, D);
    double err = og_test_rel_err_f(out, remb.data, (size_t)rows * D);
    printf("%s: %d tokens, %d rows, rel err %.2e\n", emb_name, n, rows, err);
    CHECK(err <= TOL, "%s: rel err %.3e > %.0e", emb_name, err, TOL);
    int pad_ok = 1;
    for (size_t i = (size_t)n * D; i < (size_t)rows * D; i++)
        pad_ok &= out[i] == 0.0f;
    CHECK(pad_ok, "%s: padding rows are not zero", emb_name);
    free(ids);
    free(out);
}

/* A copy of the fixture encoder whose config.json has `from` replaced by `to`; expects load to
 * fail with `want`. */
static void check_bad_config(const char *from, const char *to, og_status want)
{
    char dir[] = "/tmp/og_umt5_XXXXXX";
    if (!mkdtemp(dir))
        return;
    char *cfg = og_test_read_file(FIX "/text_encoder/config.json", NULL);
    char *at = cfg ? strstr(cfg, from) : NULL;
    CHECK(at != NULL, "config lacks %s", from);
    char cpath[600], wpath[600];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    snprintf(wpath, sizeof wpath, "%s/model.safetensors", dir);
    if (at) {
        char *edited = malloc(strlen(cfg) + strlen(to) + 1);
        sprintf(edited, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from));
        og_test_write_text(cpath, edited);
        free(edited);
        og_test_copy_file(FIX "/text_encoder/model.safetensors", wpath);
        og_umt5 *m = NULL;
        og_status s = og_umt5_load(&m, dir);
        CHECK(s == want && m == NULL, "config with %s: %s (%s), expected %s", to,
              og_status_name(s), og_error_message(), og_status_name(want));
        if (s != OG_OK)
            printf("refused as expected: %s\n", og_error_message());
        og_umt5_free(m);
    }
    free(cfg);
    unlink(cpath);
    unlink(wpath);
    rmdir(dir);
}

int main(void)
{
    og_weights *ref = NULL;
    og_config *meta = NULL;
    og_umt5 *te = NULL;
    CHECK_OK(og_weights_open_file(&ref, FIX "/reference.safetensors"));
    CHECK_OK(og_config_load(&meta, FIX "/meta.json"));
    CHECK_OK(og_umt5_load(&te, FIX "/text_encoder"));
    if (ref)
        check_buckets(ref);
    for (int r = 0; r < 1201; r++) /* symmetric structure: keys after the query in the top half */
        CHECK((og_umt5_bucket(r - 600, 32, 128) >= 16) == (r - 600 > 0), "bucket half");
    if (ref && meta && te) {
        CHECK(og_umt5_hidden(te) == 32, "d_model");
        int64_t max_len = 0;
        CHECK_OK(og_config_int(meta, "max_sequence_length", &max_len));
        og_unigram *tok = NULL;
        CHECK_OK(og_unigram_load(&tok, FIX "/tokenizer"));
        for (int i = 0; i < 5; i++) {
            char idn[32], en[32], key[64];
            snprintf(idn, sizeof idn, "ids_%d", i);
            snprintf(en, sizeof en, "embeds_%d", i);
            snprintf(key, sizeof key, "prompt_%d", i);
            const char *prompt = NULL;
            CHECK_OK(og_config_string(meta, key, &prompt));
            if (tok && prompt)
                check_ids(tok, ref, prompt, idn, (int)max_len);
            check_prompt(te, ref, idn, en, (int)max_len);
        }
        og_unigram_free(tok);
        check_prompt(te, ref, "long_ids", "long_embeds", 0);

        /* The released encoder is bf16: the same weights stored as bf16. */
        og_umt5 *bf = NULL;
        CHECK_OK(og_umt5_load(&bf, FIX "/text_encoder_bf16"));
        if (bf) {
            check_prompt(bf, ref, "ids_0", "bf16_embeds_0", 0);
            check_prompt(bf, ref, "ids_4", "bf16_embeds_4", 0);
        }
        og_umt5_free(bf);

        int32_t ids[] = {5, 207, 0}, bad[] = {5, 208};
        float out[3 * 32];
        og_status s = og_umt5_encode(te, bad, 2, out);
        CHECK(s == OG_ERR_INVALID_ARG, "out-of-vocabulary id gave %s", og_status_name(s));
        s = og_umt5_encode(te, ids, 0, out);
        CHECK(s == OG_ERR_INVALID_ARG, "zero tokens gave %s", og_status_name(s));
        CHECK_OK(og_umt5_encode(te, ids, 3, out));
    }
    og_umt5 *m = NULL;
    og_status s = og_umt5_load(&m, "tests/fixtures/wan/umt5/no_such_dir");
    CHECK(s != OG_OK && m == NULL, "a missing folder loaded");
    check_bad_config("\"num_layers\": 2", "\"num_layers\": 3", OG_ERR_NOT_FOUND);
    check_bad_config("\"gelu_new\"", "\"relu\"", OG_ERR_UNSUPPORTED);
    check_bad_config("\"is_decoder\": false", "\"is_decoder\": true", OG_ERR_UNSUPPORTED);
    check_bad_config("\"d_kv\": 8", "\"d_kv\": 16", OG_ERR_SHAPE);
    check_bad_config("\"relative_attention_num_buckets\": 32",
                     "\"relative_attention_num_buckets\": 16", OG_ERR_SHAPE);
    check_bad_config("\"model_type\": \"umt5\"", "\"model_type\": \"t5\"", OG_ERR_UNSUPPORTED);
    og_umt5_free(te);
    og_config_free(meta);
    og_weights_free(ref);
    return og_test_finish("test_umt5");
}
