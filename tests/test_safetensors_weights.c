/* Weight sets: a sharded folder (index.json), the single-file and unindexed fallbacks, every
 * element against the values the reference library wrote, the shape/dtype checks model code
 * relies on, f32 copies shared between threads, and each faulty folder's own error. */
#include <pthread.h>
#include <string.h>

#include "io/weights.h"
#include "test_safetensors_common.h"

/* Checks every tensor of a set against the manifest entry for its folder. */
static void check_set(const char *rel, const og_weights *w, const cJSON *want)
{
    const cJSON *tensors = cJSON_GetObjectItem(want, "tensors");
    CHECK(og_weights_count(w) == cJSON_GetArraySize(tensors), "%s: %d tensors, expected %d", rel,
          og_weights_count(w), cJSON_GetArraySize(tensors));
    for (int i = 0; i < og_weights_count(w); i++) {
        const char *name = og_weights_name(w, i);
        if (i > 0)
            CHECK(strcmp(og_weights_name(w, i - 1), name) < 0, "%s: names not sorted", rel);
        const cJSON *wt = cJSON_GetObjectItem(tensors, name);
        og_tensor t;
        CHECK(wt && og_weights_has(w, name), "%s: unexpected tensor %s", rel, name);
        og_status s = og_weights_get(w, name, &t);
        CHECK_OK(s);
        if (!wt || s != OG_OK)
            continue;
        st_check_tensor(rel, name, &t, wt);
    }
}

static void check_model_api(void)
{
    og_weights *w = NULL;
    const char *dir = ST_FIXTURES "/dirs/sharded";
    CHECK_OK(og_weights_open_dir(&w, dir));
    if (!w)
        return;
    CHECK(!strcmp(og_weights_source(w), dir), "source %s", og_weights_source(w));
    og_tensor t;
    CHECK_OK(og_weights_expect(w, "embed.weight", 2, (int64_t[]){4, 3}, &t));
    CHECK(t.dtype == OG_BF16, "embed.weight is %s", og_dtype_name(t.dtype));
    CHECK_OK(og_weights_expect(w, "embed.weight", 2, (int64_t[]){-1, 3}, &t));

    og_status s = og_weights_expect(w, "embed.weight", 2, (int64_t[]){3, 4}, &t);
    CHECK(s == OG_ERR_SHAPE && strstr(og_error_message(), "[4, 3]") &&
              strstr(og_error_message(), "[3, 4]") && strstr(og_error_message(), "embed.weight") &&
              strstr(og_error_message(), dir),
          "wrong shape gave %s: %s", og_status_name(s), og_error_message());
    s = og_weights_expect(w, "embed.weight", 1, (int64_t[]){12}, &t);
    CHECK(s == OG_ERR_SHAPE, "wrong rank gave %s", og_status_name(s));

    s = og_weights_get(w, "layers.9.missing", &t);
    CHECK(s == OG_ERR_NOT_FOUND && strstr(og_error_message(), "\"layers.9.missing\"") &&
              strstr(og_error_message(), dir),
          "missing key gave %s: %s", og_status_name(s), og_error_message());
    CHECK(!og_weights_has(w, "layers.9.missing"), "has() invents a tensor");

    /* f32 copies: from bf16 and f16, equal to the stored values, one copy per tensor. */
    float *bias = NULL, *bias2 = NULL, *norm = NULL;
    CHECK_OK(og_weights_vector_f32(w, "layers.1.proj.bias", 2, &bias));
    CHECK_OK(og_weights_get(w, "layers.1.proj.bias", &t));
    for (int i = 0; bias && i < 2; i++)
        CHECK(bias[i] == og_bf16_to_f32(((uint16_t *)t.data)[i]), "bias[%d] = %g", i, bias[i]);
    CHECK_OK(og_weights_vector_f32(w, "layers.1.proj.bias", 2, &bias2));
    CHECK(bias == bias2, "second request made another copy");
    CHECK_OK(og_weights_vector_f32(w, "layers.0.norm.weight", 3, &norm));
    CHECK_OK(og_weights_get(w, "layers.0.norm.weight", &t));
    for (int i = 0; norm && i < 3; i++)
        CHECK(norm[i] == og_f16_to_f32(((uint16_t *)t.data)[i]), "norm[%d] = %g", i, norm[i]);
    float *mat = NULL;
    CHECK_OK(og_weights_vector_f32(w, "layers.1.proj.weight", 6, &mat));
    CHECK_OK(og_weights_get(w, "layers.1.proj.weight", &t));
    CHECK(mat && memcmp(mat, t.data, 24) == 0, "f32 copy of an f32 tensor differs");
    s = og_weights_vector_f32(w, "layers.1.proj.bias", 3, &bias);
    CHECK(s == OG_ERR_SHAPE && strstr(og_error_message(), "[2] (2 elements), expected 3"),
          "wrong count gave %s: %s", og_status_name(s), og_error_message());
    og_weights_free(w);

    /* Integer tensors have no f32 copy; unsupported dtypes are named. */
    CHECK_OK(og_weights_open_file(&w, ST_FIXTURES "/valid/dtypes.safetensors"));
    if (w) {
        s = og_weights_vector_f32(w, "i32", 4, &bias);
        CHECK(s == OG_ERR_UNSUPPORTED && strstr(og_error_message(), "is I32"),
              "i32 copy gave %s: %s", og_status_name(s), og_error_message());
        float *scalar = NULL;
        CHECK_OK(og_weights_vector_f32(w, "scalar", 1, &scalar));
        CHECK(scalar && scalar[0] == 2.5f, "scalar copy");
        float *empty = NULL;
        CHECK_OK(og_weights_vector_f32(w, "empty", 0, &empty));
        og_weights_free(w);
    }
    CHECK_OK(og_weights_open_file(&w, ST_FIXTURES "/valid/unsupported.safetensors"));
    if (w) {
        s = og_weights_get(w, "f64", &t);
        CHECK(s == OG_ERR_UNSUPPORTED && strstr(og_error_message(), "has dtype F64"),
              "f64 gave %s: %s", og_status_name(s), og_error_message());
        og_weights_free(w);
    }
}

/* In-process ranks ask for the same f32 copies at once: all must get the one copy. */
typedef struct {
    og_weights *w;
    float *got[4];
    og_status s;
} race_arg;

static void *race(void *p)
{
    race_arg *a = p;
    const char *names[] = {"layers.1.proj.bias", "layers.0.norm.weight", "layers.1.proj.weight",
                           "embed.weight"};
    const int64_t n[] = {2, 3, 6, 12};
    for (int i = 0; i < 4 && a->s == OG_OK; i++)
        a->s = og_weights_vector_f32(a->w, names[i], n[i], &a->got[i]);
    return NULL;
}

static void check_threads(void)
{
    og_weights *w = NULL;
    CHECK_OK(og_weights_open_dir(&w, ST_FIXTURES "/dirs/sharded"));
    if (!w)
        return;
    enum { T = 4 };
    pthread_t th[T];
    race_arg args[T] = {0};
    for (int i = 0; i < T; i++) {
        args[i].w = w;
        pthread_create(&th[i], NULL, race, &args[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) {
        CHECK(args[i].s == OG_OK, "thread %d failed", i);
        for (int k = 0; k < 4; k++)
            CHECK(args[i].got[k] == args[0].got[k], "thread %d got its own copy of tensor %d", i, k);
    }
    og_weights_free(w);
}

int main(void)
{
    cJSON *valid = st_load_manifest(ST_FIXTURES "/expected.json");
    const char *good[] = {"dirs/sharded", "dirs/single", "dirs/unindexed"};
    for (int i = 0; i < 3; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", ST_FIXTURES, good[i]);
        og_weights *w = NULL;
        CHECK_OK(og_weights_open_dir(&w, path));
        const cJSON *want = cJSON_GetObjectItem(valid, good[i]);
        CHECK(want != NULL, "manifest lacks %s", good[i]);
        if (w && want)
            check_set(good[i], w, want);
        og_weights_free(w);
    }
    cJSON_Delete(valid);
    check_model_api();
    check_threads();

    cJSON *bad = st_load_manifest(ST_FIXTURES "/dirs/expected.json");
    CHECK(cJSON_GetArraySize(bad) >= 11, "manifest lists %d faulty folders", cJSON_GetArraySize(bad));
    for (const cJSON *kv = bad->child; kv; kv = kv->next) {
        char path[1024];
        snprintf(path, sizeof path, "%s/dirs/%s", ST_FIXTURES, kv->string);
        og_weights *w = (og_weights *)&w; /* must be reset to NULL on failure */
        og_status s = og_weights_open_dir(&w, path);
        st_check_failure(kv->string, s, kv);
        CHECK(w == NULL, "%s: output not cleared on failure", kv->string);
        CHECK(strstr(og_error_message(), kv->string) != NULL, "%s: message does not name the folder",
              kv->string);
        if (s == OG_OK)
            og_weights_free(w);
    }
    cJSON_Delete(bad);
    return og_test_finish("test_safetensors_weights");
}
