/* Wan2.1 VAE decoder against diffusers' AutoencoderKLWan (tools/make_wan_vae_fixtures.py): on
 * every case of every fixture variant, the pipeline's unscale, the decode (clamped video) and the
 * 8-bit frames; decoding a case again gives the same bytes (the caches start from zero every
 * decode); bad inputs and folders give clear errors.
 * Arguments (optional): variant folders holding vae/ and cases.safetensors; by default every
 * tests/fixtures/wan/vae/<variant>. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "io/safetensors.h"
#include "testutil.h"
#include "vae/autoencoder_kl_wan.h"
#include "vae_testutil.h"

#define FIXTURES "tests/fixtures/wan/vae"

/* Measured: decode <= 2.4e-6, unscale exact (see docs/wan.md). */
#define DECODE_REL_TOL 1e-5

static void check_case(og_wan_vae *vae, og_st_file *st, const char *dir, const char *name)
{
    char key[256];
    og_tensor lat, z, video, u8;
    snprintf(key, sizeof key, "%s.latents", name);
    CHECK_OK(og_st_get(st, key, &lat));
    snprintf(key, sizeof key, "%s.z", name);
    CHECK_OK(og_st_get(st, key, &z));
    snprintf(key, sizeof key, "%s.video", name);
    CHECK_OK(og_st_get(st, key, &video));
    snprintf(key, sizeof key, "%s.video_u8", name);
    CHECK_OK(og_st_get(st, key, &u8));
    if (og_test_failures)
        return;
    const int64_t c = lat.shape[0], t = lat.shape[1], h = lat.shape[2], w = lat.shape[3];
    const int64_t f = og_wan_vae_scale_factor(vae), F = og_wan_vae_frames(vae, t);
    const int64_t H = f * h, W = f * w, n = 3 * F * H * W;
    CHECK(c == og_wan_vae_z_dim(vae), "%s: %lld latent channels", name, (long long)c);
    CHECK(video.ndim == 4 && video.shape[0] == 3 && video.shape[1] == F && video.shape[2] == H &&
              video.shape[3] == W,
          "%s/%s: reference video [3, %lld, %lld, %lld] vs %lld frames of %lldx%lld", dir, name,
          (long long)video.shape[1], (long long)video.shape[2], (long long)video.shape[3],
          (long long)F, (long long)H, (long long)W);
    CHECK(u8.dtype == OG_U8 && u8.ndim == 4 && u8.shape[0] == F && u8.shape[3] == 3,
          "%s: video_u8 shape", name);
    if (og_test_failures)
        return;
    const size_t nz = (size_t)(c * t * h * w);
    float *zz = malloc(sizeof(float) * nz), *out = malloc(sizeof(float) * (size_t)n);
    float *again = malloc(sizeof(float) * (size_t)n), *frames = malloc(sizeof(float) * (size_t)n);
    uint8_t *px = malloc((size_t)n);

    og_wan_vae_unscale(vae, zz, lat.data, t, h, w);
    const double rel_z = og_test_rel_err_f(zz, z.data, nz);
    CHECK(rel_z <= 1e-7, "%s/%s: unscale rel err %g", dir, name, rel_z);

    CHECK_OK(og_wan_vae_decode(vae, z.data, c, t, h, w, out));
    const double rel = og_test_rel_err_f(out, video.data, (size_t)n);
    CHECK(rel <= DECODE_REL_TOL, "%s/%s: video rel err %g", dir, name, rel);
    CHECK_OK(og_wan_vae_decode(vae, z.data, c, t, h, w, again));
    CHECK(memcmp(out, again, sizeof(float) * (size_t)n) == 0, "%s/%s: a second decode differs",
          dir, name);

    og_wan_vae_to_frames(frames, out, F, H, W);
    for (int64_t i = 0; i < F; i++)
        og_image_to_u8(px + i * 3 * H * W, frames + i * 3 * H * W, H, W);
    int64_t exact;
    const int64_t within1 = og_test_u8_within1(px, u8.data, n, &exact);
    printf("%s/%s: latents [%lld, %lld, %lld, %lld] -> video [3, %lld, %lld, %lld]: rel err %.3g, "
           "u8 exact %.3f%%, within 1/255 %.3f%%\n",
           dir, name, (long long)c, (long long)t, (long long)h, (long long)w, (long long)F,
           (long long)H, (long long)W, rel, 100.0 * exact / n, 100.0 * within1 / n);
    CHECK(within1 == n, "%s/%s: %lld bytes off by more than 1/255", dir, name,
          (long long)(n - within1));
    free(zz);
    free(out);
    free(again);
    free(frames);
    free(px);
}

static int check_variant(const char *dir)
{
    return og_test_wan_vae_cases(dir, ".latents", check_case);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

/* A copy of the variant folder src/vae in dir: its config (with `from` replaced by `to` when
 * given) and its weights without the tensor `drop` (NULL keeps all). */
static bool copy_vae(const char *src, const char *dir, const char *from, const char *to,
                     const char *drop)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vae/config.json", src);
    char *cfg = og_test_read_file(path, NULL);
    char *at = cfg && from ? strstr(cfg, from) : NULL;
    bool ok = cfg && (!from || at);
    if (ok) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "w");
        ok = f && (from ? fprintf(f, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from))
                        : fputs(cfg, f)) >= 0;
        ok &= f && fclose(f) == 0;
    }
    free(cfg);
    og_st_file *st = NULL;
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", src);
    ok = ok && og_st_open(&st, path) == OG_OK;
    const int n = ok ? og_st_count(st) : 0;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    og_tensor *ts = calloc((size_t)n + 1, sizeof *ts);
    int kept = 0;
    ok = ok && names && ts;
    for (int i = 0; ok && i < n; i++) {
        const og_st_entry *e = og_st_entry_at(st, i);
        if (drop && strcmp(e->name, drop) == 0)
            continue;
        names[kept] = e->name;
        ok = og_st_entry_tensor(e, path, &ts[kept++]) == OG_OK;
    }
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    ok = ok && og_st_write(path, kept, names, ts, NULL) == OG_OK;
    free(names);
    free(ts);
    og_st_close(st);
    CHECK(ok, "cannot copy %s/vae to %s", src, dir);
    return ok;
}

static void remove_vae(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    unlink(path);
}

/* Loads dir and expects status `want` with `text` in the message. */
static void expect_load_error(const char *dir, og_status want, const char *text)
{
    og_wan_vae *vae = NULL;
    og_status s = og_wan_vae_load(&vae, dir);
    CHECK(s == want && strstr(og_error_message(), text) != NULL,
          "expected %s with \"%s\", got %s: %s", og_status_name(want), text, og_status_name(s),
          og_error_message());
    CHECK(vae == NULL, "a failed load returned a VAE");
    og_wan_vae_free(vae);
}

static void check_errors(const char *variant)
{
    og_status s = og_wan_vae_load(&(og_wan_vae *){NULL}, "/nonexistent/wan/vae");
    CHECK(s == OG_ERR_NOT_FOUND || s == OG_ERR_IO, "missing folder -> %s", og_status_name(s));
    CHECK(strstr(og_error_message(), "/nonexistent/wan/vae") != NULL, "message: %s",
          og_error_message());

    char dir[] = "/tmp/og_test_wan_vae_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(false, "mkdtemp failed");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"_class_name\": \"AutoencoderKL\", \"block_out_channels\": [32]}");
    expect_load_error(dir, OG_ERR_FORMAT, "AutoencoderKLWan");
    remove_vae(dir);

    if (copy_vae(variant, dir, NULL, NULL, "decoder.conv_out.weight"))
        expect_load_error(dir, OG_ERR_NOT_FOUND, "decoder.conv_out.weight");
    remove_vae(dir);
    if (copy_vae(variant, dir, "\"is_residual\": false", "\"is_residual\": true", NULL))
        expect_load_error(dir, OG_ERR_UNSUPPORTED, "is_residual");
    remove_vae(dir);
    if (copy_vae(variant, dir, "\"z_dim\": 16", "\"z_dim\": 8", NULL))
        expect_load_error(dir, OG_ERR_FORMAT, "latents_mean");
    remove_vae(dir);
    if (copy_vae(variant, dir, "\"temperal_downsample\": [", "\"temperal_downsample\": [true, ",
                 NULL))
        expect_load_error(dir, OG_ERR_FORMAT, "temperal_downsample");
    remove_vae(dir);

    /* A good copy: decode refuses latents of the wrong channel count or size. */
    if (copy_vae(variant, dir, NULL, NULL, NULL)) {
        og_wan_vae *vae = NULL;
        CHECK_OK(og_wan_vae_load(&vae, dir));
        if (vae) {
            float z[8 * 2 * 2 * 3] = {0}, video[3 * 64 * 64 * 4];
            s = og_wan_vae_decode(vae, z, 8, 1, 2, 3, video);
            CHECK(s == OG_ERR_INVALID_ARG && strstr(og_error_message(), "z_dim"),
                  "8 channels -> %s: %s", og_status_name(s), og_error_message());
            s = og_wan_vae_decode(vae, z, 16, 0, 2, 3, video);
            CHECK(s == OG_ERR_INVALID_ARG, "0 frames -> %s", og_status_name(s));
            s = og_wan_vae_decode(vae, z, 16, 1, 0, 3, video);
            CHECK(s == OG_ERR_INVALID_ARG, "height 0 -> %s", og_status_name(s));
            og_wan_vae_plan plan;
            CHECK(og_wan_vae_plan_for(vae, 70000, 4, &plan) == OG_ERR_INVALID_ARG,
                  "huge latent planned");
        }
        og_wan_vae_free(vae);
    }
    remove_vae(dir);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    char first[1100];
    int checked = og_test_each_variant(argc, argv, FIXTURES, "cases.safetensors", check_variant,
                                       "/tiny", first, sizeof first);
    if (!checked && !og_test_failures) {
        printf("SKIPPED: no fixtures under %s\n", FIXTURES);
        return OG_TEST_SKIP;
    }
    check_errors(first);
    return og_test_finish("test_wan_vae");
}
