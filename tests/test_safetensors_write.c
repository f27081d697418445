/* og_st_write against the reference writer: the same tensors must give the same bytes as
 * writer_ref.safetensors (written by the Python safetensors package), the file must read back,
 * and refused inputs must leave no file behind. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_safetensors_common.h"

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The formula tools/make_safetensors_fixtures.py fills writer_ref.safetensors with. */
static void fill(og_tensor *t, void *buf)
{
    int64_t n = og_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)((i % 7 - 3) * 0.5);
        switch (t->dtype) {
        case OG_F32: ((float *)buf)[i] = v; break;
        case OG_BF16: ((uint16_t *)buf)[i] = og_f32_to_bf16(v); break;
        case OG_F16: ((uint16_t *)buf)[i] = og_f32_to_f16(v); break;
        case OG_I64: ((int64_t *)buf)[i] = i - 2; break;
        case OG_I32: ((int32_t *)buf)[i] = (int32_t)(i - 2); break;
        case OG_U8: ((uint8_t *)buf)[i] = (uint8_t)i; break;
        default: break;
        }
    }
    t->data = buf;
}

int main(void)
{
    char dir[] = "/tmp/og_st_write_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256];
    snprintf(path, sizeof path, "%s/out.safetensors", dir);

    /* Deliberately not in the writer's layout order: it must sort them itself. */
    const char *names[] = {"w.u8", "w.f32", "w.empty", "w.bf16", "w.scalar", "w.i64", "w.f16", "w.i32"};
    struct { og_dtype t; int nd; int64_t shape[2]; } spec[] = {
        {OG_U8, 1, {5}}, {OG_F32, 2, {2, 3}}, {OG_BF16, 2, {0, 4}}, {OG_BF16, 1, {5}},
        {OG_F32, 0, {0}}, {OG_I64, 1, {4}}, {OG_F16, 2, {1, 3}}, {OG_I32, 1, {3}},
    };
    enum { N = 8 };
    og_tensor ts[N];
    uint64_t bufs[N][8];
    for (int i = 0; i < N; i++) {
        ts[i] = og_tensor_make(NULL, spec[i].t, spec[i].nd, spec[i].shape);
        fill(&ts[i], bufs[i]);
    }
    const char *meta[] = {"format", "pt", NULL};
    CHECK_OK(og_st_write(path, N, names, ts, meta));
    CHECK(count_files(dir) == 1, "temporary file left behind (%d files)", count_files(dir));

    size_t nref = 0, nout = 0;
    unsigned char *ref = og_test_read_file(ST_FIXTURES "/writer_ref.safetensors", &nref);
    unsigned char *out = og_test_read_file(path, &nout);
    size_t at = 0;
    while (ref && out && at < nref && at < nout && ref[at] == out[at])
        at++;
    CHECK(ref && out && nref == nout && at == nref,
          "written file (%zu bytes) differs from the reference writer's (%zu bytes) at byte %zu",
          nout, nref, at);
    free(ref);
    free(out);

    og_st_file *f = NULL;
    CHECK_OK(og_st_open(&f, path));
    if (f) {
        CHECK(og_st_count(f) == N, "read back %d tensors", og_st_count(f));
        for (int i = 0; i < N; i++) {
            og_tensor t;
            CHECK_OK(og_st_get(f, names[i], &t));
            CHECK(t.dtype == ts[i].dtype && t.ndim == ts[i].ndim &&
                      og_tensor_nbytes(&t) == og_tensor_nbytes(&ts[i]) &&
                      (og_tensor_nbytes(&t) == 0 ||
                       memcmp(t.data, ts[i].data, og_tensor_nbytes(&t)) == 0),
                  "%s does not read back", names[i]);
        }
        const char *fmt = og_st_metadata(f, "format");
        CHECK(fmt && !strcmp(fmt, "pt"), "metadata lost");
        og_st_close(f);
    }

    /* Refused inputs: nothing is written, the existing file stays. */
    const char *dup[] = {"a", "a"};
    og_status s = og_st_write(path, 2, dup, ts, NULL);
    CHECK(s == OG_ERR_INVALID_ARG && strstr(og_error_message(), "\"a\" given twice"),
          "duplicate names gave %s: %s", og_status_name(s), og_error_message());
    og_tensor strided = ts[1];
    strided.stride[0] = 4;
    s = og_st_write(path, 1, names, &strided, NULL);
    CHECK(s == OG_ERR_INVALID_ARG && strstr(og_error_message(), "not a contiguous tensor"),
          "strided tensor gave %s: %s", og_status_name(s), og_error_message());
    const char *odd_meta[] = {"key", NULL};
    s = og_st_write(path, 1, names, ts, odd_meta);
    CHECK(s == OG_ERR_INVALID_ARG && strstr(og_error_message(), "metadata key \"key\" has no value"),
          "odd metadata gave %s: %s", og_status_name(s), og_error_message());
    CHECK(count_files(dir) == 1, "a refused write left files (%d)", count_files(dir));

    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    s = og_st_write(missing, 1, names, ts, NULL);
    CHECK(s == OG_ERR_IO && strstr(og_error_message(), "cannot create"),
          "unwritable path gave %s: %s", og_status_name(s), og_error_message());

    unlink(path);
    rmdir(dir);
    return og_test_finish("test_safetensors_write");
}
