/* The safetensors reader against files written by the reference library (every element checked
 * against the values numpy/torch recorded) and against each malformed file, which must fail with
 * its own status and message and never crash. */
#include <stdint.h>
#include <string.h>

#include "test_safetensors_common.h"

static void check_valid_file(const char *rel, const cJSON *want)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ST_FIXTURES, rel);
    og_st_file *f = NULL;
    og_status s = og_st_open(&f, path);
    CHECK_OK(s);
    if (s != OG_OK)
        return;
    const cJSON *tensors = cJSON_GetObjectItem(want, "tensors");
    CHECK(og_st_count(f) == cJSON_GetArraySize(tensors), "%s: %d tensors, expected %d", rel,
          og_st_count(f), cJSON_GetArraySize(tensors));
    for (int i = 0; i < og_st_count(f); i++) {
        const og_st_entry *e = og_st_entry_at(f, i);
        if (i > 0)
            CHECK(strcmp(og_st_entry_at(f, i - 1)->name, e->name) < 0, "%s: entries not sorted", rel);
        const cJSON *w = cJSON_GetObjectItem(tensors, e->name);
        CHECK(w != NULL, "%s: unexpected tensor %s", rel, e->name);
        if (!w)
            continue;
        CHECK(og_st_find(f, e->name) == e, "%s: og_st_find(%s) misses", rel, e->name);
        size_t align = e->supported ? og_dtype_size(e->dtype) : 1;
        CHECK(e->nbytes == 0 || (uintptr_t)e->data % align == 0, "%s %s: data misaligned", rel,
              e->name);
        st_check_entry(rel, e, w);
        og_tensor t;
        s = og_st_get(f, e->name, &t);
        if (e->supported) {
            CHECK_OK(s);
            CHECK(s != OG_OK || (t.data == e->data && t.ndim == e->ndim &&
                                 og_tensor_nbytes(&t) == e->nbytes && og_tensor_is_contiguous(&t)),
                  "%s %s: og_st_get view differs from the entry", rel, e->name);
        } else {
            CHECK(s == OG_ERR_UNSUPPORTED, "%s %s: unsupported dtype gave %s", rel, e->name,
                  og_status_name(s));
            char want_msg[64];
            snprintf(want_msg, sizeof want_msg, "has dtype %s", e->dtype_name);
            CHECK(strstr(og_error_message(), want_msg) && strstr(og_error_message(), e->name),
                  "%s: message \"%s\"", rel, og_error_message());
        }
    }
    const cJSON *meta = cJSON_GetObjectItem(want, "metadata");
    for (const cJSON *kv = meta->child; kv; kv = kv->next) {
        const char *got = og_st_metadata(f, kv->string);
        CHECK(got && !strcmp(got, kv->valuestring), "%s: metadata %s = %s, expected %s", rel,
              kv->string, got ? got : "(none)", kv->valuestring);
    }
    CHECK(og_st_metadata(f, "absent") == NULL, "%s: metadata invents a key", rel);

    og_tensor t;
    s = og_st_get(f, "no.such.tensor", &t);
    CHECK(s == OG_ERR_NOT_FOUND && strstr(og_error_message(), "\"no.such.tensor\"") &&
              strstr(og_error_message(), rel),
          "%s: missing tensor gave %s: %s", rel, og_status_name(s), og_error_message());
    CHECK(og_st_find(f, "no.such.tensor") == NULL, "%s: og_st_find invents a tensor", rel);
    og_st_close(f);
}

/* Specific facts the manifest walk does not spell out. */
static void check_details(void)
{
    og_st_file *f = NULL;
    CHECK_OK(og_st_open(&f, ST_FIXTURES "/valid/dtypes.safetensors"));
    if (!f)
        return;
    og_tensor t;
    CHECK_OK(og_st_get(f, "scalar", &t));
    CHECK(t.ndim == 0 && og_tensor_numel(&t) == 1 && ((float *)t.data)[0] == 2.5f,
          "0-d scalar: ndim %d", t.ndim);
    CHECK_OK(og_st_get(f, "empty", &t));
    CHECK(t.ndim == 2 && t.shape[0] == 0 && t.shape[1] == 3 && og_tensor_nbytes(&t) == 0,
          "empty tensor: ndim %d", t.ndim);
    CHECK_OK(og_st_get(f, "bf16", &t));
    CHECK(t.dtype == OG_BF16 && t.shape[0] == 4 && t.shape[1] == 5 && t.stride[0] == 5,
          "bf16 view: dtype %d", t.dtype);
    og_st_close(f);

    /* The F32 tensor starts 3 bytes into the data section: it must come back aligned and intact. */
    CHECK_OK(og_st_open(&f, ST_FIXTURES "/valid/misaligned.safetensors"));
    if (f) {
        CHECK_OK(og_st_get(f, "floats", &t));
        CHECK((uintptr_t)t.data % 4 == 0 && ((float *)t.data)[0] == 1.25f &&
                  ((float *)t.data)[1] == -3.5f,
              "misaligned tensor not copied correctly");
        og_st_close(f);
    }

    og_status s = og_st_open(&f, ST_FIXTURES "/valid/nope.safetensors");
    CHECK(s == OG_ERR_NOT_FOUND && f == NULL && strstr(og_error_message(), "nope.safetensors"),
          "missing file gave %s: %s", og_status_name(s), og_error_message());
    s = og_st_open(&f, ST_FIXTURES "/valid");
    CHECK(s == OG_ERR_IO && f == NULL && strstr(og_error_message(), "not a regular file"),
          "a folder gave %s: %s", og_status_name(s), og_error_message());
}

int main(void)
{
    cJSON *valid = st_load_manifest(ST_FIXTURES "/expected.json");
    int nvalid = 0;
    for (const cJSON *kv = valid->child; kv; kv = kv->next)
        if (!strncmp(kv->string, "valid/", 6)) {
            check_valid_file(kv->string, kv);
            nvalid++;
        }
    CHECK(nvalid == 4, "manifest lists %d valid files", nvalid);
    cJSON_Delete(valid);
    check_details();

    cJSON *bad = st_load_manifest(ST_FIXTURES "/bad/expected.json");
    CHECK(cJSON_GetArraySize(bad) >= 28, "manifest lists %d malformed files", cJSON_GetArraySize(bad));
    for (const cJSON *kv = bad->child; kv; kv = kv->next) {
        char path[1024];
        snprintf(path, sizeof path, "%s/bad/%s", ST_FIXTURES, kv->string);
        og_st_file *f = (og_st_file *)&f; /* must be reset to NULL on failure */
        og_status s = og_st_open(&f, path);
        st_check_failure(kv->string, s, kv);
        CHECK(f == NULL, "%s: output not cleared on failure", kv->string);
        CHECK(strstr(og_error_message(), kv->string) != NULL, "%s: message does not name the file",
              kv->string);
        if (s == OG_OK)
            og_st_close(f);
    }
    cJSON_Delete(bad);
    return og_test_finish("test_safetensors");
}
