/* The Qwen-Image prompt encoder against QwenImagePipeline.encode_prompt (diffusers 0.42.1,
 * fixtures from tools/make_qwenimage_text_fixtures.py): for two tiny random Qwen2.5-VL text
 * encoders (f32 with a nested text_config and GQA; bf16 with the older flat config) and six
 * prompts (short, Unicode, empty, inline special tokens, cut by max_sequence_length, past the
 * tokenizer's 1058-token limit) the template ids equal the tokenizer call's exactly, the row
 * count equals the pipeline's (its mask is all ones) and the embeddings match to 1e-5 relative;
 * a padded batch's rows and mask are each prompt's rows followed by zeros. Plus refused inputs
 * and configs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/diffusers.h"
#include "io/weights.h"
#include "testutil.h"
#include "text/bpe.h"
#include "text/qwen3.h"
#include "text/qwen3_internal.h"
#include "text/qwenimage_prompt.h"

#define FIX "tests/fixtures/qwenimage/text"
#define TOK "models/zimage-tiny/tokenizer"
static const double TOL = 1e-5;

static void check_case(const og_bpe *tok, const og_qwen3 *te, const og_weights *ref,
                       const char *variant, const og_config *meta, int i)
{
    char key[96], name_key[64];
    const char *name, *prompt;
    int64_t max_seq, rows;
    bool mask_none;
    snprintf(name_key, sizeof name_key, "cases.%d.", i);
#define MK(field) (snprintf(key, sizeof key, "%s%s", name_key, field), key)
    CHECK_OK(og_config_string(meta, MK("name"), &name));
    CHECK_OK(og_config_string(meta, MK("prompt"), &prompt));
    CHECK_OK(og_config_int(meta, MK("max_sequence_length"), &max_seq));
    CHECK_OK(og_config_int(meta, MK("rows"), &rows));
    CHECK_OK(og_config_bool(meta, MK("mask_is_none"), &mask_none));
#undef MK
    /* One prompt: the pipeline's mask is all ones, so it hands None over. */
    CHECK(mask_none, "%s %s: the reference mask is not all ones", variant, name);

    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(og_qwenimage_prompt_ids(tok, prompt, &ids, &n));
    og_tensor rid, remb;
    snprintf(key, sizeof key, "%s_ids", name);
    CHECK_OK(og_weights_get(ref, key, &rid));
    snprintf(key, sizeof key, "%s_embeds", name);
    CHECK_OK(og_weights_get(ref, key, &remb));
    if (!ids || !rid.data || !remb.data) {
        free(ids);
        return;
    }
    int same = rid.dtype == OG_I64 && rid.ndim == 1 && rid.shape[0] == n;
    for (int k = 0; k < n && same; k++)
        same = ((const int64_t *)rid.data)[k] == ids[k];
    CHECK(same, "%s %s: %d template ids differ from the tokenizer's %lld", variant, name, n,
          (long long)rid.shape[0]);
    free(ids);

    float *emb = NULL;
    int rows_out = 0;
    CHECK_OK(og_qwenimage_encode_prompt(tok, te, prompt, (int)max_seq, &emb, &rows_out));
    const int H = og_qwen3_hidden(te);
    CHECK(rows_out == rows && remb.ndim == 2 && remb.shape[0] == rows && remb.shape[1] == H,
          "%s %s: %d rows, the pipeline has %lld", variant, name, rows_out, (long long)rows);
    if (emb && rows_out == rows && remb.shape[0] == rows) {
        double err = og_test_rel_err_f(emb, remb.data, (size_t)rows * H);
        printf("%s %s: %d template tokens -> %d rows, rel err %.2e\n", variant, name, n,
               rows_out, err);
        CHECK(err <= TOL, "%s %s: rel err %.3e > %.0e", variant, name, err, TOL);
    }
    free(emb);
}

/* encode_prompt([a, b]): [2, L, H] zero-padded and a [2, L] mask; each row b must be our single
 * encode of prompt b (n_b rows) then zeros, the mask n_b ones then zeros. */
static void check_batch(const og_bpe *tok, const og_qwen3 *te, const og_weights *ref,
                        const char *variant, const og_config *meta)
{
    og_tensor be, bm;
    CHECK_OK(og_weights_get(ref, "batch_embeds", &be));
    CHECK_OK(og_weights_get(ref, "batch_mask", &bm));
    const int H = og_qwen3_hidden(te);
    if (!be.data || !bm.data || be.ndim != 3 || bm.ndim != 2 || be.shape[0] != 2 ||
        be.shape[2] != H || bm.shape[1] != be.shape[1]) {
        CHECK(0, "%s: batch reference shapes", variant);
        return;
    }
    const int64_t L = be.shape[1];
    for (int b = 0; b < 2; b++) {
        char key[32];
        const char *prompt;
        snprintf(key, sizeof key, "batch.%d", b);
        CHECK_OK(og_config_string(meta, key, &prompt));
        float *emb = NULL;
        int n = 0;
        CHECK_OK(og_qwenimage_encode_prompt(tok, te, prompt, OG_QWENIMAGE_MAX_SEQUENCE, &emb, &n));
        if (!emb || n > L) {
            CHECK(0, "%s batch %d: %d rows, the batch has %lld", variant, b, n, (long long)L);
            free(emb);
            continue;
        }
        const int64_t *mask = (const int64_t *)bm.data + b * L;
        int mask_ok = 1;
        for (int64_t t = 0; t < L; t++)
            mask_ok &= mask[t] == (t < n);
        CHECK(mask_ok, "%s batch %d: the mask is not %d ones then zeros", variant, b, n);
        const float *row = (const float *)be.data + (size_t)b * L * H;
        double err = og_test_rel_err_f(emb, row, (size_t)n * H);
        int zeros = 1;
        for (size_t k = (size_t)n * H; k < (size_t)L * H; k++)
            zeros &= row[k] == 0.0f;
        printf("%s batch %d: %d of %lld rows real, rel err %.2e\n", variant, b, n, (long long)L,
               err);
        CHECK(err <= TOL && zeros, "%s batch %d: rel err %.3e, padding zero %d", variant, b, err,
              zeros);
        free(emb);
    }
}

static void check_variant(const char *variant, int hidden, int layers)
{
    char path[512];
    og_config *meta = NULL;
    og_weights *ref = NULL;
    og_bpe *tok = NULL;
    og_qwen3 *te = NULL;
    snprintf(path, sizeof path, FIX "/%s/meta.json", variant);
    CHECK_OK(og_config_load(&meta, path));
    snprintf(path, sizeof path, FIX "/%s/reference.safetensors", variant);
    CHECK_OK(og_weights_open_file(&ref, path));
    CHECK_OK(og_bpe_load(&tok, TOK));
    snprintf(path, sizeof path, FIX "/%s/text_encoder", variant);
    CHECK_OK(og_qwen3_load_output(&te, path, OG_QWEN3_OUT_LAST_NORMED));
    if (meta && ref && tok && te) {
        CHECK(og_qwen3_hidden(te) == hidden && og_qwen3_layers(te) == layers && !te->qk_norm &&
              te->qkv_bias && !te->o_bias && te->final_norm && te->head_dim == 16,
              "%s: config read wrong", variant);
        int64_t drop, max_len;
        CHECK_OK(og_config_int(meta, "drop_idx", &drop));
        CHECK_OK(og_config_int(meta, "tokenizer_max_length", &max_len));
        CHECK(drop == OG_QWENIMAGE_DROP_TOKENS && max_len == OG_QWENIMAGE_MAX_SEQUENCE,
              "the pipeline's drop_idx %lld / max length %lld changed", (long long)drop,
              (long long)max_len);
        const char *tmpl;
        char *ours = NULL;
        CHECK_OK(og_config_string(meta, "template", &tmpl));
        CHECK_OK(og_qwenimage_prompt_text("{}", &ours));
        CHECK(ours && strcmp(ours, tmpl) == 0, "the template differs from the pipeline's");
        free(ours);
        for (int i = 0; i < 6; i++)
            check_case(tok, te, ref, variant, meta, i);
        check_batch(tok, te, ref, variant, meta);

        /* Refused arguments. */
        float *emb = NULL;
        int n = -1;
        og_status s = og_qwenimage_encode_prompt(tok, te, "a", 0, &emb, &n);
        CHECK(s == OG_ERR_INVALID_ARG && !emb && n == 0, "max_sequence_length 0 gave %s",
              og_status_name(s));
        s = og_qwenimage_encode_prompt(tok, te, "a", 1025, &emb, &n);
        CHECK(s == OG_ERR_INVALID_ARG && !emb, "max_sequence_length 1025 gave %s",
              og_status_name(s));
        s = og_qwenimage_encode_prompt(tok, te, "bad \xC3\x28 utf8", 512, &emb, &n);
        CHECK(s == OG_ERR_INVALID_ARG && !emb, "invalid UTF-8 gave %s", og_status_name(s));
        s = og_qwenimage_encode_prompt(tok, te, NULL, 512, &emb, &n);
        CHECK(s == OG_ERR_INVALID_ARG && !emb, "no prompt gave %s", og_status_name(s));
        og_qwen3_gpu_plan plan;
        s = og_qwen3_gpu_plan_for(te, 64, &plan);
        CHECK(s == OG_ERR_UNSUPPORTED, "the GPU plan took a Qwen2.5-VL encoder: %s",
              og_status_name(s));
    }
    /* The same checkpoint loaded for hidden_states[-2] is refused by the prompt encoder. */
    og_qwen3 *pen = NULL;
    CHECK_OK(og_qwen3_load_output(&pen, path, OG_QWEN3_OUT_PENULTIMATE));
    if (pen && tok) {
        float *emb = NULL;
        int n;
        og_status s = og_qwenimage_encode_prompt(tok, pen, "a", 512, &emb, &n);
        CHECK(s == OG_ERR_INVALID_ARG && !emb, "a hidden_states[-2] encoder gave %s",
              og_status_name(s));
    }
    og_qwen3_free(pen);
    og_qwen3_free(te);
    og_bpe_free(tok);
    og_weights_free(ref);
    og_config_free(meta);
}

/* The base encoder's config.json with one key's value replaced must be refused with `code`. */
static void check_config_refused(const char *from, const char *to, og_status code)
{
    const char *src = FIX "/base/text_encoder";
    char *file = og_test_read_file(FIX "/base/text_encoder/config.json", NULL);
    char *cfg = file ? strdup(file) : NULL; /* a copy keeps gcc's -Wdangling-pointer quiet */
    free(file);
    char dir[] = "/tmp/og_qwenimage_text_XXXXXX";
    if (!cfg || !mkdtemp(dir)) {
        CHECK(0, "cannot set up the config check");
        free(cfg);
        return;
    }
    const char *at = strstr(cfg, from);
    CHECK(at != NULL, "config.json has no %s", from);
    const size_t off = at ? (size_t)(at - cfg) : 0;
    char path[600], st_src[PATH_MAX], st_dst[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "wb");
    if (f && at) {
        fwrite(cfg, 1, off, f);
        fputs(to, f);
        fputs(cfg + off + strlen(from), f);
    }
    if (f)
        fclose(f);
    snprintf(st_dst, sizeof st_dst, "%s/model.safetensors", dir);
    CHECK(realpath(src, st_src) && strlen(st_src) + 20 < sizeof st_src,
          "cannot resolve %s", src);
    strcat(st_src, "/model.safetensors");
    CHECK(symlink(st_src, st_dst) == 0, "cannot link %s", st_dst);
    og_qwen3 *te = NULL;
    og_status s = og_qwen3_load_output(&te, dir, OG_QWEN3_OUT_LAST_NORMED);
    CHECK(s == code && !te, "%s -> %s: got %s (%s), expected %s", from, to, og_status_name(s),
          og_error_message(), og_status_name(code));
    og_qwen3_free(te);
    unlink(st_dst);
    unlink(path);
    rmdir(dir);
    free(cfg);
}

int main(void)
{
    check_variant("base", 32, 3);
    check_variant("flat", 48, 2);
    check_config_refused("\"use_sliding_window\": false", "\"use_sliding_window\": true",
                         OG_ERR_UNSUPPORTED);
    check_config_refused("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"",
                         OG_ERR_UNSUPPORTED);
    check_config_refused("\"model_type\": \"qwen2_5_vl\"", "\"model_type\": \"qwen2_vl\"",
                         OG_ERR_UNSUPPORTED);
    check_config_refused("\"mrope_section\": [\n        2,", "\"mrope_section\": [\n        3,",
                         OG_ERR_FORMAT);
    return og_test_finish("test_qwenimage_text");
}
