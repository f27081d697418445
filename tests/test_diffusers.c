/* Diffusers folders: the hand-written tests/fixtures/diffusers_min (model_index.json, configs of
 * every kind, a single-file transformer and a sharded text encoder), the typed config getters, and
 * the errors for wrong classes, missing files and bad JSON, built in a temporary folder. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/diffusers.h"
#include "test_safetensors_common.h"

#define MINI OG_SOURCE_DIR "/tests/fixtures/diffusers_min"

#define CHECK_FAIL(expr, code, substr)                                                          \
    do {                                                                                        \
        og_status s_ = (expr);                                                                  \
        CHECK(s_ == (code) && strstr(og_error_message(), (substr)) != NULL,                     \
              "%s -> %s: \"%s\", expected %s with \"%s\"", #expr, og_status_name(s_),            \
              og_error_message(), og_status_name(code), (substr));                              \
    } while (0)

static void check_folder(void)
{
    og_model_dir *md = NULL;
    CHECK_OK(og_model_dir_open(&md, MINI));
    if (!md)
        return;
    CHECK(!strcmp(og_model_dir_root(md), MINI), "root %s", og_model_dir_root(md));
    CHECK(og_model_dir_class(md) && !strcmp(og_model_dir_class(md), "ZImagePipeline"),
          "pipeline class %s", og_model_dir_class(md));
    /* Listed in file order; the [null, null] safety_checker and the boolean flag are not components. */
    const char *want[] = {"scheduler", "text_encoder", "tokenizer", "transformer", "vae"};
    CHECK(og_model_dir_component_count(md) == 5, "%d components", og_model_dir_component_count(md));
    for (int i = 0; i < 5 && i < og_model_dir_component_count(md); i++)
        CHECK(!strcmp(og_model_dir_component_name(md, i), want[i]), "component %d is %s", i,
              og_model_dir_component_name(md, i));
    const char *lib = NULL, *cls = NULL;
    CHECK_OK(og_model_dir_component(md, "text_encoder", &lib, &cls));
    CHECK(lib && cls && !strcmp(lib, "transformers") && !strcmp(cls, "Qwen3Model"), "text_encoder %s %s",
          lib, cls);
    CHECK_FAIL(og_model_dir_component(md, "safety_checker", NULL, NULL), OG_ERR_NOT_FOUND,
               "component \"safety_checker\" as absent");
    CHECK_FAIL(og_model_dir_component(md, "unet", NULL, NULL), OG_ERR_NOT_FOUND,
               "model_index.json lists no component \"unet\"");
    CHECK_FAIL(og_model_dir_component(md, "_class_name", NULL, NULL), OG_ERR_NOT_FOUND,
               "no component \"_class_name\"");
    char path[512];
    CHECK_OK(og_model_dir_path(md, "vae", "config.json", path, sizeof path));
    CHECK(!strcmp(path, MINI "/vae/config.json"), "path %s", path);
    CHECK_OK(og_model_dir_path(md, "vae", NULL, path, sizeof path));
    CHECK(!strcmp(path, MINI "/vae"), "path %s", path);
    CHECK_FAIL(og_model_dir_path(md, "vae", "config.json", path, 10), OG_ERR_INVALID_ARG, "too long");

    /* The transformer config: every getter kind, with and without defaults. */
    og_config *cfg = NULL;
    CHECK_OK(og_model_dir_config(md, "transformer", NULL, "ZImageTransformer2DModel", &cfg));
    if (cfg) {
        int64_t v = 0;
        double d = 0;
        bool b = false;
        const char *str = NULL;
        CHECK_OK(og_config_int(cfg, "n_layers", &v));
        CHECK(v == 2, "n_layers %lld", (long long)v);
        CHECK_OK(og_config_int(cfg, "dim", &v));
        CHECK(v == 8, "dim %lld", (long long)v);
        CHECK_OK(og_config_float(cfg, "norm_eps", &d));
        CHECK(d == 1e-5, "norm_eps %g", d);
        CHECK_OK(og_config_float(cfg, "cap_feat_dim", &d)); /* an integer is a number too */
        CHECK(d == 16.0, "cap_feat_dim %g", d);
        CHECK_OK(og_config_int(cfg, "rope_theta", &v)); /* 256.0 is integral */
        CHECK(v == 256, "rope_theta %lld", (long long)v);
        CHECK_OK(og_config_bool(cfg, "qk_norm", &b));
        CHECK(b, "qk_norm false");
        CHECK_OK(og_config_string(cfg, "_class_name", &str));
        CHECK(str && !strcmp(str, "ZImageTransformer2DModel"), "_class_name %s", str);
        int64_t axes[4] = {0};
        int n = 0;
        CHECK_OK(og_config_int_array(cfg, "axes_dims", axes, 4, &n));
        CHECK(n == 3 && axes[0] == 2 && axes[1] == 2 && axes[2] == 4, "axes_dims n=%d", n);
        CHECK_FAIL(og_config_int_array(cfg, "axes_lens", axes, 2, &n), OG_ERR_FORMAT,
                   "\"axes_lens\" has 3 elements, more than the 2 expected");
        CHECK_FAIL(og_config_int_array(cfg, "dim", axes, 4, &n), OG_ERR_FORMAT,
                   "\"dim\" is not an array of integers");
        double fl[4] = {0};
        CHECK_OK(og_config_float_array(cfg, "axes_dims", fl, 4, &n));
        CHECK(n == 3 && fl[0] == 2.0 && fl[1] == 2.0 && fl[2] == 4.0, "float axes_dims n=%d", n);
        CHECK_FAIL(og_config_float_array(cfg, "axes_dims", fl, 2, &n), OG_ERR_FORMAT,
                   "\"axes_dims\" has 3 elements, more than the 2 expected");
        bool flags[4];
        CHECK_FAIL(og_config_bool_array(cfg, "axes_dims", flags, 4, &n), OG_ERR_FORMAT,
                   "\"axes_dims\" is not an array of true/false");

        CHECK(!og_config_has(cfg, "siglip_feat_dim"), "null counts as present");
        CHECK(og_config_has(cfg, "dim") && !og_config_has(cfg, "nope"), "has() wrong");
        CHECK_OK(og_config_int_or(cfg, "siglip_feat_dim", -7, &v));
        CHECK(v == -7, "null did not take the default: %lld", (long long)v);
        CHECK_OK(og_config_int_or(cfg, "n_heads", 99, &v));
        CHECK(v == 2, "present value ignored: %lld", (long long)v);
        CHECK_OK(og_config_float_or(cfg, "missing_eps", 0.25, &d));
        CHECK(d == 0.25, "float default %g", d);
        CHECK_OK(og_config_bool_or(cfg, "missing_flag", true, &b));
        CHECK(b, "bool default");
        CHECK_OK(og_config_string_or(cfg, "missing_str", "dflt", &str));
        CHECK(str && !strcmp(str, "dflt"), "string default");

        CHECK_FAIL(og_config_int(cfg, "norm_eps", &v), OG_ERR_FORMAT, "\"norm_eps\" is not an integer");
        CHECK_FAIL(og_config_int_or(cfg, "qk_norm", 1, &v), OG_ERR_FORMAT, "\"qk_norm\" is not an integer");
        CHECK_FAIL(og_config_bool(cfg, "dim", &b), OG_ERR_FORMAT, "\"dim\" is not true or false");
        CHECK_FAIL(og_config_string(cfg, "dim", &str), OG_ERR_FORMAT, "\"dim\" is not a string");
        CHECK_FAIL(og_config_float(cfg, "_class_name", &d), OG_ERR_FORMAT, "is not a number");
        CHECK_FAIL(og_config_int(cfg, "num_layers", &v), OG_ERR_NOT_FOUND,
                   "transformer/config.json has no \"num_layers\"");
        CHECK_FAIL(og_config_int(cfg, "siglip_feat_dim", &v), OG_ERR_NOT_FOUND,
                   "has no \"siglip_feat_dim\"");
        CHECK_OK(og_config_expect_class(cfg, "ZImageTransformer2DModel"));
        CHECK_FAIL(og_config_expect_class(cfg, "WanTransformer3DModel"), OG_ERR_FORMAT,
                   "transformer/config.json has _class_name ZImageTransformer2DModel, expected "
                   "WanTransformer3DModel");
        og_config_free(cfg);
    }

    /* A transformers config has no _class_name: only model_index.json's class is checked. */
    CHECK_OK(og_model_dir_config(md, "text_encoder", NULL, "Qwen3Model", &cfg));
    if (cfg) {
        double theta = 0, eps = 0;
        CHECK_OK(og_config_float(cfg, "rope_theta", &theta));
        CHECK_OK(og_config_float(cfg, "rms_norm_eps", &eps));
        CHECK(theta == 1e6 && eps == 1e-6, "rope_theta %g eps %g", theta, eps);
        CHECK_FAIL(og_config_expect_class(cfg, "Qwen3Model"), OG_ERR_NOT_FOUND,
                   "expected class Qwen3Model");
        og_config_free(cfg);
    }
    CHECK_FAIL(og_model_dir_config(md, "text_encoder", NULL, "UMT5EncoderModel", &cfg),
               OG_ERR_FORMAT, "lists text_encoder as Qwen3Model, expected UMT5EncoderModel");
    CHECK(cfg == NULL, "config left set on failure");

    /* Other config file names; dotted keys reach nested objects. */
    CHECK_OK(og_model_dir_config(md, "scheduler", "scheduler_config.json",
                                 "FlowMatchEulerDiscreteScheduler", &cfg));
    if (cfg) {
        double shift = 0;
        bool dyn = true;
        CHECK_OK(og_config_float(cfg, "shift", &shift));
        CHECK_OK(og_config_bool(cfg, "use_dynamic_shifting", &dyn));
        CHECK(shift == 3.0 && !dyn, "shift %g dynamic %d", shift, dyn);
        og_config_free(cfg);
    }
    CHECK_OK(og_model_dir_config(md, "tokenizer", "tokenizer_config.json", NULL, &cfg));
    if (cfg) {
        const char *tok = NULL;
        bool special = false;
        int64_t maxlen = 0;
        CHECK_OK(og_config_string(cfg, "added_tokens_decoder.151643.content", &tok));
        CHECK(tok && !strcmp(tok, "<|endoftext|>"), "nested string %s", tok);
        CHECK_OK(og_config_bool(cfg, "added_tokens_decoder.151643.special", &special));
        CHECK(special, "nested bool");
        CHECK_OK(og_config_int(cfg, "model_max_length", &maxlen));
        CHECK(maxlen == 131072, "model_max_length %lld", (long long)maxlen);
        CHECK(!og_config_has(cfg, "added_tokens_decoder.151644.content"), "absent nested key found");
        CHECK(!og_config_has(cfg, "eos_token.content"), "a string treated as an object");
        og_config_free(cfg);
    }
    CHECK_OK(og_model_dir_config(md, "vae", NULL, "AutoencoderKL", &cfg));
    if (cfg) {
        double scale = 0, shift = 0;
        int64_t blocks[8];
        int n = 0;
        CHECK_OK(og_config_float(cfg, "scaling_factor", &scale));
        CHECK_OK(og_config_float(cfg, "shift_factor", &shift));
        CHECK_OK(og_config_int_array(cfg, "block_out_channels", blocks, 8, &n));
        CHECK(scale == 0.3611 && shift == 0.1159 && n == 2 && blocks[1] == 64, "vae config");
        og_config_free(cfg);
    }

    /* Weights through the folder: one file for the transformer, two shards for the encoder. */
    cJSON *expected = st_load_manifest(ST_FIXTURES "/expected.json");
    const char *comps[] = {"transformer", "text_encoder"};
    for (int c = 0; c < 2; c++) {
        og_weights *w = NULL;
        CHECK_OK(og_model_dir_weights(md, comps[c], &w));
        char key[64];
        snprintf(key, sizeof key, "diffusers_min/%s", comps[c]);
        const cJSON *tensors = cJSON_GetObjectItem(cJSON_GetObjectItem(expected, key), "tensors");
        CHECK(w && tensors && og_weights_count(w) == cJSON_GetArraySize(tensors), "%s: tensor count",
              comps[c]);
        for (const cJSON *kv = tensors ? tensors->child : NULL; w && kv; kv = kv->next) {
            og_tensor t;
            og_status s = og_weights_get(w, kv->string, &t);
            CHECK_OK(s);
            if (s == OG_OK)
                st_check_tensor(key, kv->string, &t, kv);
        }
        og_weights_free(w);
    }
    cJSON_Delete(expected);
    og_weights *w = (og_weights *)&w;
    CHECK_FAIL(og_model_dir_weights(md, "scheduler", &w), OG_ERR_NOT_FOUND,
               "no .safetensors file in " MINI "/scheduler");
    CHECK(w == NULL, "weights left set on failure");
    og_model_dir_free(md);
}

static void write_text(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0755);
    *slash = '/';
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

/* Broken folders, written fresh into a temporary directory. */
static void check_faults(void)
{
    char dir[] = "/tmp/og_diffusers_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    og_model_dir *md = (og_model_dir *)&md;
    CHECK_FAIL(og_model_dir_open(&md, dir), OG_ERR_NOT_FOUND, "/model_index.json");
    CHECK(md == NULL, "model dir left set on failure");
    CHECK_FAIL(og_model_dir_open(&md, "/nonexistent/model"), OG_ERR_NOT_FOUND,
               "cannot open /nonexistent/model/model_index.json");

    write_text(dir, "model_index.json", "{\"_class_name\": \"ZImagePipeline\",\n \"vae\": [\"diffusers\"]}");
    CHECK_FAIL(og_model_dir_open(&md, dir), OG_ERR_FORMAT, "component \"vae\" is not [library, class]");
    write_text(dir, "model_index.json", "[\"ZImagePipeline\"]");
    CHECK_FAIL(og_model_dir_open(&md, dir), OG_ERR_FORMAT, "model_index.json is not a JSON object");
    write_text(dir, "model_index.json", "{\"_class_name\": \"ZImagePipeline\",\n  \"vae\": [\"diffusers\" \"AutoencoderKL\"]}");
    CHECK_FAIL(og_model_dir_open(&md, dir), OG_ERR_FORMAT, "model_index.json is not valid JSON (line 2");
    write_text(dir, "model_index.json", "{\"a\": 1} trailing");
    CHECK_FAIL(og_model_dir_open(&md, dir), OG_ERR_FORMAT, "is not valid JSON");

    write_text(dir, "model_index.json",
               "{\"_class_name\": \"ZImagePipeline\", \"transformer\": [\"diffusers\", "
               "\"ZImageTransformer2DModel\"], \"vae\": [\"diffusers\", \"AutoencoderKL\"], "
               "\"text_encoder\": [\"transformers\", \"Qwen3Model\"]}");
    write_text(dir, "transformer/config.json", "{\"_class_name\": \"FluxTransformer2DModel\"}");
    write_text(dir, "text_encoder/config.json", "{\"hidden_size\": 16,\n\"num_hidden_layers\": }");
    md = NULL;
    CHECK_OK(og_model_dir_open(&md, dir));
    if (md) {
        og_config *cfg = (og_config *)&cfg;
        CHECK_FAIL(og_model_dir_config(md, "transformer", NULL, "ZImageTransformer2DModel", &cfg),
                   OG_ERR_FORMAT, "transformer/config.json has _class_name FluxTransformer2DModel, "
                   "expected ZImageTransformer2DModel");
        CHECK(cfg == NULL, "config left set on failure");
        CHECK_FAIL(og_model_dir_config(md, "vae", NULL, "AutoencoderKL", &cfg), OG_ERR_NOT_FOUND,
                   "vae/config.json");
        CHECK_FAIL(og_model_dir_config(md, "text_encoder", NULL, "Qwen3Model", &cfg), OG_ERR_FORMAT,
                   "text_encoder/config.json is not valid JSON (line 2");
        CHECK_FAIL(og_model_dir_config(md, "scheduler", "scheduler_config.json",
                                       "FlowMatchEulerDiscreteScheduler", &cfg),
                   OG_ERR_NOT_FOUND, "lists no component \"scheduler\"");
        og_weights *w = NULL;
        CHECK_FAIL(og_model_dir_weights(md, "vae", &w), OG_ERR_NOT_FOUND, "cannot open folder");
        og_model_dir_free(md);
    }
    const char *files[] = {"model_index.json", "transformer/config.json", "text_encoder/config.json"};
    for (int i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    char p[512];
    snprintf(p, sizeof p, "%s/transformer", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/text_encoder", dir);
    rmdir(p);
    rmdir(dir);
}

int main(void)
{
    check_folder();
    check_faults();
    return og_test_finish("test_diffusers");
}
