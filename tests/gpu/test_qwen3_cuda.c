/* The Qwen3 text encoder on a GPU against the CPU encoder (fp32, itself within 1e-4 of
 * transformers, tests/test_qwen3.c): the fixtures' encoder (every variant links the bundled
 * models/zimage-tiny) on the prompts test_qwen3 uses (plain, truncated at 512 tokens, negative,
 * per variant), and a random checkpoint written here with bf16 weights, head_dim 128 (the
 * tensor-core attention kernel, as Qwen3-4B), q_dim != hidden, GQA and attention biases. Also:
 * the plan sized for exactly n tokens is enough for n, more tokens than planned or an
 * out-of-vocabulary id is refused, and a plan that cannot fit fails with the shortfall message
 * instead of allocating.
 *
 * Tolerance: the GPU keeps weights, the residual stream and every activation in bf16 (unit
 * roundoff 2^-9 = 2e-3) with fp32 accumulation, as bf16 inference in transformers does; the CPU
 * runs everything in fp32. A CPU emulation of exactly these storage points (weights and each
 * stored activation rounded to bf16, fp32 math) differs from the fp32 encoder by 0.6e-2 to
 * 1.0e-2 (max |diff| / max |ref|) on both models at 1 to 512 tokens; 3e-2 leaves room for the
 * GPU's other summation order and fast-math exp, and stays far below what a wrong mask, RoPE
 * convention or head mapping gives (order 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cuda/qwen3_cuda.h"
#include "gpu_testutil.h"
#include "io/diffusers.h"
#include "io/safetensors.h"
#include "text/bpe.h"
#include "text/qwen3.h"

#define GPU_VS_CPU_TOL 3e-2

/* Encodes ids on the CPU and the GPU and compares. */
static void check_ids(og_qwen3_cuda *g, const og_qwen3 *te, const int32_t *ids, int n,
                      const char *what)
{
    const size_t len = (size_t)n * og_qwen3_hidden(te);
    float *cpu = malloc(len * sizeof *cpu), *gpu = malloc(len * sizeof *gpu);
    float *again = malloc(len * sizeof *again);
    CHECK_OK(og_qwen3_encode(te, ids, n, cpu));
    CHECK_OK(og_qwen3_cuda_encode(g, ids, n, gpu));
    double err = og_test_rel_err_f(gpu, cpu, len);
    printf("%s: %d tokens, GPU vs CPU rel err %.2e\n", what, n, err);
    CHECK(err <= GPU_VS_CPU_TOL, "%s: rel err %.3e > %.0e", what, err, GPU_VS_CPU_TOL);
    /* A second run on the same encoder sees no state of the first. */
    CHECK_OK(og_qwen3_cuda_encode(g, ids, n, again));
    CHECK(memcmp(gpu, again, len * sizeof *gpu) == 0, "%s: a second encode differs", what);
    free(cpu);
    free(gpu);
    free(again);
}

static void check_prompt(og_qwen3_cuda *g, const og_qwen3 *te, const og_bpe *tok,
                         const char *prompt, const char *what)
{
    int32_t *ids = NULL;
    int n = 0;
    CHECK_OK(og_bpe_encode_chat(tok, prompt, 512, &ids, &n));
    if (ids)
        check_ids(g, te, ids, n, what);
    free(ids);
}

/* A model folder (tokenizer/ and text_encoder/) with the prompts of a fixture's meta.json. */
static void check_model(const char *model, const char *meta_path, const char *name)
{
    char path[512];
    og_config *meta = NULL;
    og_bpe *tok = NULL;
    og_qwen3 *te = NULL;
    og_qwen3_cuda *g = NULL;
    CHECK_OK(og_config_load(&meta, meta_path));
    snprintf(path, sizeof path, "%s/tokenizer", model);
    CHECK_OK(og_bpe_load(&tok, path));
    snprintf(path, sizeof path, "%s/text_encoder", model);
    CHECK_OK(og_qwen3_load(&te, path));
    if (te)
        CHECK_OK(og_qwen3_cuda_load(&g, te, 0, 512));
    static const char *const keys[] = {"prompt", "long_prompt", "negative_prompt"};
    for (int i = 0; i < 3 && meta && tok && g; i++) {
        const char *prompt;
        if (!og_config_has(meta, keys[i]) || og_config_string(meta, keys[i], &prompt) != OG_OK)
            continue; /* absent or null */
        char what[128];
        snprintf(what, sizeof what, "%s %s", name, keys[i]);
        check_prompt(g, te, tok, prompt, what);
    }
    og_qwen3_cuda_free(g);
    og_qwen3_free(te);
    og_bpe_free(tok);
    og_config_free(meta);
}

/* ---- a random Qwen3 checkpoint with bf16 weights ------------------------------------------- */

enum { R_H = 256, R_HEADS = 4, R_KV = 2, R_HD = 128, R_I = 320, R_LAYERS = 3, R_VOCAB = 500 };

typedef struct {
    int n;
    char *names[64];
    og_tensor t[64];
} tensor_list;

static void add(tensor_list *l, og_test_rng *r, const char *name, int64_t rows, int64_t cols,
                float base, float scale)
{
    const int64_t shape[2] = {rows, cols};
    const size_t n = (size_t)(rows * (cols ? cols : 1));
    uint16_t *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = og_f32_to_bf16(base + scale * og_test_uniform(r));
    l->names[l->n] = strdup(name);
    l->t[l->n] = og_tensor_make(d, OG_BF16, cols ? 2 : 1, shape);
    l->n++;
}

static bool write_random_model(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "{\"model_type\": \"qwen3\", \"hidden_size\": %d, \"num_hidden_layers\": %d, "
               "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d, "
               "\"intermediate_size\": %d, \"vocab_size\": %d, \"rms_norm_eps\": 1e-06, "
               "\"rope_theta\": 1000000.0, \"hidden_act\": \"silu\", \"attention_bias\": true}\n",
            R_H, R_LAYERS, R_HEADS, R_KV, R_HD, R_I, R_VOCAB);
    fclose(f);
    og_test_rng r = {0x9e3779b97f4a7c15ULL};
    tensor_list l = {0};
    const int q = R_HEADS * R_HD, kv = R_KV * R_HD;
    add(&l, &r, "embed_tokens.weight", R_VOCAB, R_H, 0, 1);
    for (int i = 0; i < R_LAYERS; i++) {
        char k[128];
#define ADD(name, rows, cols, base, scale)                          \
    do {                                                            \
        snprintf(k, sizeof k, "layers.%d.%s", i, name);             \
        add(&l, &r, k, rows, cols, base, scale);                    \
    } while (0)
        ADD("input_layernorm.weight", R_H, 0, 1, 0.2f);
        ADD("post_attention_layernorm.weight", R_H, 0, 1, 0.2f);
        ADD("self_attn.q_norm.weight", R_HD, 0, 1, 0.2f);
        ADD("self_attn.k_norm.weight", R_HD, 0, 1, 0.2f);
        ADD("self_attn.q_proj.weight", q, R_H, 0, 0.1f);
        ADD("self_attn.k_proj.weight", kv, R_H, 0, 0.1f);
        ADD("self_attn.v_proj.weight", kv, R_H, 0, 0.1f);
        ADD("self_attn.o_proj.weight", R_H, q, 0, 0.05f);
        ADD("self_attn.q_proj.bias", q, 0, 0, 0.1f);
        ADD("self_attn.k_proj.bias", kv, 0, 0, 0.1f);
        ADD("self_attn.v_proj.bias", kv, 0, 0, 0.1f);
        ADD("self_attn.o_proj.bias", R_H, 0, 0, 0.1f);
        ADD("mlp.gate_proj.weight", R_I, R_H, 0, 0.1f);
        ADD("mlp.up_proj.weight", R_I, R_H, 0, 0.1f);
        ADD("mlp.down_proj.weight", R_H, R_I, 0, 0.05f);
#undef ADD
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    og_status s = og_st_write(path, l.n, (const char *const *)l.names, l.t, NULL);
    for (int i = 0; i < l.n; i++) {
        free(l.names[i]);
        free(l.t[i].data);
    }
    CHECK_OK(s);
    return s == OG_OK;
}

static void check_random_model(void)
{
    char dir[] = "/tmp/og_qwen3_cuda_XXXXXX", cfg[600], st[600];
    if (!mkdtemp(dir)) {
        CHECK(0, "cannot create a temporary folder");
        return;
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    og_qwen3 *te = NULL;
    if (write_random_model(dir))
        CHECK_OK(og_qwen3_load(&te, dir));
    og_test_rng r = {12345};
    int32_t ids[200];
    for (int i = 0; i < 200; i++)
        ids[i] = (int32_t)(og_test_next(&r) % R_VOCAB);
    /* Token counts around the flash kernel's 64-row tiles; each planned for exactly n. */
    static const int counts[] = {1, 63, 64, 65, 200};
    for (int c = 0; c < 5 && te; c++) {
        og_qwen3_cuda *g = NULL;
        CHECK_OK(og_qwen3_cuda_load(&g, te, 0, counts[c]));
        if (!g)
            continue;
        char what[64];
        snprintf(what, sizeof what, "random head_dim 128, bf16, biases");
        check_ids(g, te, ids, counts[c], what);
        if (c == 1) {
            float out[64 * R_H];
            og_status s = og_qwen3_cuda_encode(g, ids, 64, out);
            CHECK(s == OG_ERR_INVALID_ARG, "64 tokens on a plan for 63 gave %s",
                  og_status_name(s));
            int32_t bad[2] = {3, R_VOCAB};
            s = og_qwen3_cuda_encode(g, bad, 2, out);
            CHECK(s == OG_ERR_INVALID_ARG, "an out-of-vocabulary id gave %s", og_status_name(s));
        }
        og_qwen3_cuda_free(g);
    }
    /* A plan far past any GPU: the reservation's shortfall message, no allocation. */
    if (te) {
        og_qwen3_cuda *g = NULL;
        og_status s = og_qwen3_cuda_load(&g, te, 0, 1 << 28);
        CHECK(s == OG_ERR_OOM && !g && strstr(og_error_message(), "short"),
              "an impossible plan gave %s: %s", og_status_name(s), og_error_message());
    }
    og_qwen3_free(te);
    unlink(cfg);
    unlink(st);
    rmdir(dir);
}

int main(void)
{
    if (og_cuda_device_count() == 0) {
        printf("test_qwen3_cuda: SKIPPED: no CUDA device\n");
        return OG_TEST_SKIP;
    }
    static const char *const variants[] = {"base", "odd", "cfg", "h30"};
    char model[256], meta[256];
    for (int i = 0; i < 4; i++) {
        snprintf(model, sizeof model, "tests/fixtures/zimage/%s/model", variants[i]);
        snprintf(meta, sizeof meta, "tests/fixtures/zimage/%s/meta.json", variants[i]);
        check_model(model, meta, variants[i]);
    }
    check_random_model();
    return og_test_finish("test_qwen3_cuda");
}
