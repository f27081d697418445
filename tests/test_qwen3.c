/* Qwen3 text encoder against transformers: for every Z-Image fixture variant, the prompt's ids
 * from og_bpe_encode_chat must equal the pipeline's, and og_qwen3_encode on them must reproduce
 * the pipeline's prompt_embeds (hidden_states[-2] of the real tokens) to 1e-4 relative, also for
 * a prompt truncated at 512 tokens; plus argument errors, a "model."-prefixed checkpoint and the
 * device memory plan of the GPU encoder (og_qwen3_gpu_plan_for) against the checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/diffusers.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "testutil.h"
#include "text/bpe.h"
#include "text/qwen3.h"
#include "text/qwen3_internal.h"

static const double TOL = 1e-4;

/* Encodes `prompt` with the tokenizer and the encoder; compares with the fixture's ids/embeds. */
static void check_prompt(const og_bpe *tok, const og_qwen3 *te, const og_weights *ref,
                         const char *variant, const char *prompt, const char *ids_name,
                         const char *emb_name)
{
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(og_bpe_encode_chat(tok, prompt, 512, &ids, &n));
    og_tensor rid, remb;
    CHECK_OK(og_weights_get(ref, ids_name, &rid));
    CHECK_OK(og_weights_get(ref, emb_name, &remb));
    if (!ids || !rid.data || !remb.data)
        return;
    CHECK(rid.dtype == OG_I64 && rid.shape[0] == n, "%s: %d ids, reference has %lld", variant, n,
          (long long)rid.shape[0]);
    int same = rid.shape[0] == n;
    for (int i = 0; i < n && same; i++)
        same = ((const int64_t *)rid.data)[i] == ids[i];
    CHECK(same, "%s %s: token ids differ from the pipeline's", variant, ids_name);

    int H = og_qwen3_hidden(te);
    CHECK(remb.ndim == 2 && remb.shape[0] == n && remb.shape[1] == H, "%s: embeds shape", variant);
    float *out = malloc((size_t)n * H * sizeof *out);
    CHECK_OK(og_qwen3_encode(te, ids, n, out));
    double err = og_test_rel_err_f(out, remb.data, (size_t)n * H);
    printf("%s %s: %d tokens, rel err %.2e\n", variant, emb_name, n, err);
    CHECK(err <= TOL, "%s %s: rel err %.3e > %.0e", variant, emb_name, err, TOL);
    free(out);
    free(ids);
}

static void check_variant(const char *variant)
{
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/meta.json", variant);
    og_config *meta = NULL;
    CHECK_OK(og_config_load(&meta, path));
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/reference.safetensors", variant);
    og_weights *ref = NULL;
    CHECK_OK(og_weights_open_file(&ref, path));
    og_bpe *tok = NULL;
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/model/tokenizer", variant);
    CHECK_OK(og_bpe_load(&tok, path));
    og_qwen3 *te = NULL;
    snprintf(path, sizeof path, "tests/fixtures/zimage/%s/model/text_encoder", variant);
    CHECK_OK(og_qwen3_load(&te, path));
    if (meta && ref && tok && te) {
        CHECK(og_qwen3_layers(te) == 3 && og_qwen3_hidden(te) == 32, "%s: config", variant);
        const char *prompt, *neg;
        CHECK_OK(og_config_string(meta, "prompt", &prompt));
        check_prompt(tok, te, ref, variant, prompt, "token_ids", "prompt_embeds");
        if (og_config_has(meta, "long_prompt")) {
            const char *lp;
            CHECK_OK(og_config_string(meta, "long_prompt", &lp));
            check_prompt(tok, te, ref, variant, lp, "long_token_ids", "long_prompt_embeds");
        }
        if (og_config_has(meta, "negative_prompt")) {
            CHECK_OK(og_config_string(meta, "negative_prompt", &neg));
            check_prompt(tok, te, ref, variant, neg, "neg_token_ids", "neg_prompt_embeds");
        }
    }
    og_qwen3_free(te);
    og_bpe_free(tok);
    og_weights_free(ref);
    og_config_free(meta);
}

/* The bundled encoder re-saved with "model." on every key (Qwen3ForCausalLM's layout) must
 * give the same output. */
static void check_model_prefix(void)
{
    const char *src = "models/zimage-tiny/text_encoder";
    og_weights *w = NULL;
    CHECK_OK(og_weights_open_dir(&w, src));
    char dir[] = "/tmp/og_qwen3_XXXXXX";
    if (!w || !mkdtemp(dir)) {
        og_weights_free(w);
        return;
    }
    int n = og_weights_count(w);
    char **names = calloc((size_t)n, sizeof *names);
    og_tensor *ts = calloc((size_t)n, sizeof *ts);
    for (int i = 0; i < n; i++) {
        names[i] = malloc(strlen(og_weights_name(w, i)) + 8);
        sprintf(names[i], "model.%s", og_weights_name(w, i));
        CHECK_OK(og_weights_get(w, og_weights_name(w, i), &ts[i]));
    }
    char path[600], cfg_src[600], cfg_dst[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(og_st_write(path, n, (const char *const *)names, ts, NULL));
    snprintf(cfg_src, sizeof cfg_src, "%s/config.json", src);
    snprintf(cfg_dst, sizeof cfg_dst, "%s/config.json", dir);
    og_test_copy_file(cfg_src, cfg_dst);

    og_qwen3 *a = NULL, *b = NULL;
    CHECK_OK(og_qwen3_load(&a, src));
    CHECK_OK(og_qwen3_load(&b, dir));
    if (a && b) {
        int32_t ids[] = {1, 974, 500, 7, 998, 0, 42};
        int H = og_qwen3_hidden(a);
        float oa[7 * 32], ob[7 * 32];
        CHECK_OK(og_qwen3_encode(a, ids, 7, oa));
        CHECK_OK(og_qwen3_encode(b, ids, 7, ob));
        CHECK(memcmp(oa, ob, sizeof oa) == 0 && H == 32, "prefixed checkpoint differs");

        /* Causality: the first rows do not depend on later tokens. */
        float oc[3 * 32];
        CHECK_OK(og_qwen3_encode(a, ids, 3, oc));
        CHECK(og_test_rel_err_f(oc, oa, 3 * 32) < 1e-5, "rows depend on later tokens");

        int32_t bad[] = {1, 999};
        og_status s = og_qwen3_encode(a, bad, 2, oa);
        CHECK(s == OG_ERR_INVALID_ARG, "out-of-vocabulary id gave %s", og_status_name(s));
        s = og_qwen3_encode(a, ids, 0, oa);
        CHECK(s == OG_ERR_INVALID_ARG, "zero tokens gave %s", og_status_name(s));
    }
    og_qwen3_free(a);
    og_qwen3_free(b);
    unlink(path);
    unlink(cfg_dst);
    rmdir(dir);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(ts);
    og_weights_free(w);

    og_qwen3 *none = NULL;
    og_status s = og_qwen3_load(&none, "models/zimage-tiny/no-such-folder");
    CHECK(s == OG_ERR_NOT_FOUND && !none, "missing folder gave %s", og_status_name(s));
    s = og_qwen3_load(&none, "models/zimage-tiny/transformer");
    CHECK(s != OG_OK && !none, "a transformer folder loaded as a text encoder");
}

/* The GPU encoder's device plan (og_qwen3_gpu_plan_for) against the checkpoint itself: the
 * weight bytes are the used layers' tensors as the GPU stores them (matrices bf16, vectors f32),
 * counted from the file, up to the 64-byte rounding of each buffer; the work bytes are the
 * activations of one layer for n tokens up to the same rounding, and grow linearly in n. */
static void check_gpu_plan(void)
{
    const char *dir = "models/zimage-tiny/text_encoder";
    og_qwen3 *te = NULL;
    og_weights *w = NULL;
    CHECK_OK(og_qwen3_load(&te, dir));
    CHECK_OK(og_weights_open_dir(&w, dir));
    if (!te || !w) {
        og_qwen3_free(te);
        og_weights_free(w);
        return;
    }
    size_t bytes = 0;
    int tensors = 0;
    for (int i = 0; i < og_weights_count(w); i++) {
        const char *name = og_weights_name(w, i);
        int layer;
        if (sscanf(name, "layers.%d.", &layer) != 1 || layer >= og_qwen3_layers(te) - 1)
            continue; /* the embedding stays on the host; the last layer never runs */
        og_tensor t;
        CHECK_OK(og_weights_get(w, name, &t));
        bytes += (size_t)og_tensor_numel(&t) * (t.ndim == 2 ? 2 : 4);
        tensors++;
    }
    og_qwen3_gpu_plan p1, p512;
    CHECK_OK(og_qwen3_gpu_plan_for(te, 1, &p1));
    CHECK_OK(og_qwen3_gpu_plan_for(te, 512, &p512));
    CHECK(tensors == 2 * 11 && p1.weight_bytes >= bytes && p1.weight_bytes <= bytes + 64 * tensors,
          "plan weights %zu bytes, the checkpoint's %d used tensors %zu", p1.weight_bytes,
          tensors, bytes);
    CHECK(p512.weight_bytes == p1.weight_bytes, "weights depend on the token count");
    /* Per token: x, h (hidden), q | k | v, attention out, gate | up, SwiGLU (bf16), cos and sin
     * (f32, head_dim / 2 each). */
    CHECK(te->hidden == 32 && te->heads == 4 && te->kv_heads == 2 && te->head_dim == 16 &&
          te->inter == 96, "the bundled encoder's config changed");
    const size_t H = 32, hd = 16, q = 4 * hd, kv = 2 * hd, I = 96;
    const size_t per_token = 2 * (2 * H + q + 2 * kv + q + 2 * I + I) + 4 * hd;
    CHECK(p512.work_bytes >= 512 * per_token && p512.work_bytes <= 512 * per_token + 8 * 64,
          "plan work %zu bytes for 512 tokens, expected %zu (+ rounding)", p512.work_bytes,
          512 * per_token);
    og_qwen3_gpu_plan p0;
    og_status s = og_qwen3_gpu_plan_for(te, 0, &p0);
    CHECK(s == OG_ERR_INVALID_ARG, "a plan for 0 tokens gave %s", og_status_name(s));
    og_weights_free(w);
    og_qwen3_free(te);
}

int main(void)
{
    static const char *const variants[] = {"base", "odd", "cfg", "h30"};
    for (int i = 0; i < 4; i++)
        check_variant(variants[i]);
    check_model_prefix();
    check_gpu_plan();
    return og_test_finish("test_qwen3");
}
