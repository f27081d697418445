/* Qwen-Image's VAE decode against diffusers' AutoencoderKLQwenImage and QwenImagePipeline
 * (tools/make_qwenimage_vae_fixtures.py): og_wan_vae_load reads the AutoencoderKLQwenImage folder;
 * on every case the latent size from the requested pixels, _pack_latents of the noise,
 * _unpack_latents of the tokens, the unscale, the decode and the postprocessed image (floats and
 * bytes) equal the reference's; pack and unpack are inverses on odd-shaped random data; bad
 * configs, tokens and sizes are refused with clear errors.
 * Arguments (optional): variant folders holding vae/ and cases.safetensors; by default every
 * tests/fixtures/qwenimage/vae/<variant>. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "io/safetensors.h"
#include "testutil.h"
#include "vae/autoencoder_kl_wan.h"
#include "vae/qwenimage_latents.h"
#include "vae_testutil.h"

#define FIXTURES "tests/fixtures/qwenimage/vae"

/* Measured: decode <= 3.8e-6, image <= 2.2e-6 (see docs/qwen-image.md). */
#define DECODE_REL_TOL 1e-5

static bool get(og_st_file *st, const char *name, const char *what, og_tensor *t)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", name, what);
    og_status s = og_st_get(st, key, t);
    CHECK_OK(s);
    return s == OG_OK;
}

static bool same_floats(const float *a, const og_tensor *ref, size_t n)
{
    return ref->dtype == OG_F32 && og_tensor_numel(ref) == (int64_t)n &&
           memcmp(a, ref->data, sizeof(float) * n) == 0;
}

static void check_case(og_wan_vae *vae, og_st_file *st, const char *dir, const char *name)
{
    const int failures = og_test_failures;
    og_tensor size, noise, packed, tokens, lat, z, dec, img, u8;
    if (!get(st, name, "size", &size) || !get(st, name, "noise", &noise) ||
        !get(st, name, "noise_packed", &packed) || !get(st, name, "tokens", &tokens) ||
        !get(st, name, "latents", &lat) || !get(st, name, "z", &z) ||
        !get(st, name, "decoded", &dec) || !get(st, name, "image", &img) ||
        !get(st, name, "image_u8", &u8))
        return;
    const int64_t *px = size.data;
    const int64_t f = og_wan_vae_scale_factor(vae), c = og_wan_vae_z_dim(vae);
    int64_t h = 0, w = 0;
    CHECK_OK(og_qwenimage_latent_size(px[0], px[1], f, &h, &w));
    CHECK(lat.ndim == 4 && lat.shape[0] == c && lat.shape[1] == 1 && lat.shape[2] == h &&
              lat.shape[3] == w,
          "%s/%s: %lldx%lld px gave %lldx%lld latents, the pipeline [%lld, %lld, %lld, %lld]", dir,
          name, (long long)px[0], (long long)px[1], (long long)h, (long long)w,
          (long long)lat.shape[0], (long long)lat.shape[1], (long long)lat.shape[2],
          (long long)lat.shape[3]);
    const int64_t n = h / 2 * (w / 2), H = f * h, W = f * w;
    CHECK(tokens.ndim == 2 && tokens.shape[0] == n && tokens.shape[1] == 4 * c,
          "%s/%s: tokens shape", dir, name);
    CHECK(dec.ndim == 3 && dec.shape[0] == 3 && dec.shape[1] == H && dec.shape[2] == W,
          "%s/%s: decoded shape", dir, name);
    CHECK(u8.dtype == OG_U8 && u8.ndim == 3 && u8.shape[0] == H && u8.shape[1] == W &&
              u8.shape[2] == 3,
          "%s/%s: image_u8 shape", dir, name);
    if (og_test_failures > failures)
        return;
    const size_t nl = (size_t)(c * h * w), ni = (size_t)(3 * H * W);
    float *buf = malloc(sizeof(float) * nl), *out = malloc(sizeof(float) * ni);
    float *image = malloc(sizeof(float) * ni);
    uint8_t *bytes = malloc(ni);

    /* prepare_latents: the noise packed into tokens, exactly */
    CHECK_OK(og_qwenimage_pack(buf, noise.data, c, h, w));
    CHECK(same_floats(buf, &packed, nl), "%s/%s: pack differs from _pack_latents", dir, name);
    /* the decode step, piece by piece */
    CHECK_OK(og_qwenimage_unpack(buf, tokens.data, n, 4 * c, h, w));
    CHECK(same_floats(buf, &lat, nl), "%s/%s: unpack differs from _unpack_latents", dir, name);
    og_wan_vae_unscale(vae, buf, buf, 1, h, w);
    const double rel_z = og_test_rel_err_f(buf, z.data, nl);
    CHECK(rel_z <= 1e-7, "%s/%s: unscale rel err %g", dir, name, rel_z);
    CHECK_OK(og_wan_vae_decode(vae, z.data, c, 1, h, w, out));
    const double rel = og_test_rel_err_f(out, dec.data, ni);
    CHECK(rel <= DECODE_REL_TOL, "%s/%s: decode rel err %g", dir, name, rel);
    /* and all at once, from the tokens */
    CHECK_OK(og_qwenimage_decode(vae, tokens.data, n, 4 * c, h, w, image));
    const double rel_img = og_test_rel_err_f(image, img.data, ni);
    CHECK(rel_img <= DECODE_REL_TOL, "%s/%s: image rel err %g", dir, name, rel_img);
    og_image_to_u8(bytes, image, H, W);
    int64_t exact;
    const int64_t within1 = og_test_u8_within1(bytes, u8.data, (int64_t)ni, &exact);
    printf("%s/%s: %lldx%lld px -> tokens [%lld, %lld] -> latents [%lld, 1, %lld, %lld] -> image "
           "[3, %lld, %lld]: decode rel err %.3g, image %.3g, u8 exact %.3f%%, within 1/255 "
           "%.3f%%\n",
           dir, name, (long long)px[0], (long long)px[1], (long long)n, (long long)(4 * c),
           (long long)c, (long long)h, (long long)w, (long long)H, (long long)W, rel, rel_img,
           100.0 * exact / (double)ni, 100.0 * within1 / (double)ni);
    CHECK(within1 == (int64_t)ni, "%s/%s: %lld bytes off by more than 1/255", dir, name,
          (long long)((int64_t)ni - within1));
    free(buf);
    free(out);
    free(image);
    free(bytes);
}

static int check_variant(const char *dir)
{
    return og_test_wan_vae_cases(dir, ".tokens", check_case);
}

/* ---- packing on its own ------------------------------------------------------------------- */

/* Pack then unpack gives the input back bit for bit, and each token entry is the latent the
 * (c, ph, pw) order names, on shapes of several sizes. */
static void check_pack_roundtrip(void)
{
    static const int64_t shapes[][3] = {{1, 2, 2}, {3, 4, 6}, {16, 6, 2}, {5, 2, 10}, {16, 8, 8}};
    og_test_rng rng = {0x51ee};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int64_t c = shapes[k][0], h = shapes[k][1], w = shapes[k][2];
        const size_t nl = (size_t)(c * h * w);
        float *lat = malloc(sizeof(float) * nl), *tok = malloc(sizeof(float) * nl);
        float *back = malloc(sizeof(float) * nl);
        og_test_fill(&rng, lat, nl, 1.0f);
        CHECK_OK(og_qwenimage_pack(tok, lat, c, h, w));
        int64_t wrong = 0;
        for (int64_t i = 0; i < h / 2; i++)
            for (int64_t j = 0; j < w / 2; j++)
                for (int64_t ch = 0; ch < c; ch++)
                    for (int64_t ph = 0; ph < 2; ph++)
                        for (int64_t pw = 0; pw < 2; pw++)
                            wrong += tok[(i * (w / 2) + j) * 4 * c + ch * 4 + ph * 2 + pw] !=
                                     lat[(ch * h + 2 * i + ph) * w + 2 * j + pw];
        CHECK(wrong == 0, "[%lld, %lld, %lld]: %lld packed entries misplaced", (long long)c,
              (long long)h, (long long)w, (long long)wrong);
        CHECK_OK(og_qwenimage_unpack(back, tok, h / 2 * (w / 2), 4 * c, h, w));
        CHECK(memcmp(back, lat, sizeof(float) * nl) == 0,
              "[%lld, %lld, %lld]: unpack(pack(x)) != x", (long long)c, (long long)h,
              (long long)w);
        free(lat);
        free(tok);
        free(back);
    }
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void expect(og_status got, og_status want, const char *text, const char *what)
{
    CHECK(got == want && strstr(og_error_message(), text) != NULL,
          "%s: expected %s with \"%s\", got %s: %s", what, og_status_name(want), text,
          og_status_name(got), og_error_message());
}

static void check_bad_sizes(og_wan_vae *vae)
{
    float x[64 * 4] = {0}, y[64 * 4], img[3 * 64 * 64];
    int64_t h, w;
    expect(og_qwenimage_latent_size(15, 64, 8, &h, &w), OG_ERR_INVALID_ARG, "15x64",
           "15 px high");
    expect(og_qwenimage_latent_size(64, 0, 8, &h, &w), OG_ERR_INVALID_ARG, "64x0", "0 px wide");
    expect(og_qwenimage_pack(y, x, 16, 3, 2), OG_ERR_INVALID_ARG, "even", "odd height");
    expect(og_qwenimage_pack(y, x, 0, 2, 2), OG_ERR_INVALID_ARG, "even", "no channels");
    expect(og_qwenimage_unpack(y, x, 1, 62, 2, 2), OG_ERR_INVALID_ARG, "multiple of 4",
           "62 channels");
    expect(og_qwenimage_unpack(y, x, 2, 64, 2, 2), OG_ERR_INVALID_ARG, "2 tokens",
           "token count");
    expect(og_qwenimage_unpack(y, x, 1, 64, 2, 1), OG_ERR_INVALID_ARG, "even", "odd width");
    expect(og_qwenimage_decode(vae, x, 1, 32, 2, 2, img), OG_ERR_INVALID_ARG, "4 x z_dim",
           "32 channels for z_dim 16");
    expect(og_qwenimage_decode(vae, x, 3, 64, 2, 2, img), OG_ERR_INVALID_ARG, "3 tokens",
           "3 tokens for 2x2");
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    ok &= f && fclose(f) == 0;
    CHECK(ok, "cannot write %s", path);
    return ok;
}

/* dir/config.json: the variant's config with `from` replaced by `to`; weights linked in. */
static bool variant_copy(const char *src, const char *dir, const char *from, const char *to)
{
    char path[1024], target[1024];
    snprintf(path, sizeof path, "%s/vae/config.json", src);
    char *cfg = og_test_read_file(path, NULL);
    char *at = cfg ? strstr(cfg, from) : NULL;
    CHECK(at != NULL, "%s has no \"%s\"", path, from);
    bool ok = at != NULL;
    if (ok) {
        char *text = malloc(strlen(cfg) + strlen(to) + 1);
        sprintf(text, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from));
        snprintf(path, sizeof path, "%s/config.json", dir);
        ok = write_text(path, text);
        free(text);
    }
    free(cfg);
    snprintf(path, sizeof path, "%s/diffusion_pytorch_model.safetensors", dir);
    unlink(path);
    snprintf(target, sizeof target, "%s/vae/diffusion_pytorch_model.safetensors", src);
    char *abs_target = realpath(target, NULL);
    ok = ok && abs_target && symlink(abs_target, path) == 0;
    free(abs_target);
    CHECK(ok, "cannot set up %s", dir);
    return ok;
}

static void expect_load(const char *dir, og_status want, const char *text, const char *what)
{
    og_wan_vae *vae = NULL;
    og_status s = og_wan_vae_load(&vae, dir);
    if (want == OG_OK) {
        CHECK(s == OG_OK, "%s: %s", what, og_error_message());
    } else {
        expect(s, want, text, what);
        CHECK(vae == NULL, "%s: a failed load returned a VAE", what);
    }
    og_wan_vae_free(vae);
}

static void check_bad_configs(const char *variant)
{
    char dir[] = "/tmp/og_test_qwenimage_vae_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(false, "mkdtemp failed");
        return;
    }
    const char *cls = "\"_class_name\": \"AutoencoderKLQwenImage\"";
    if (variant_copy(variant, dir, cls, "\"_class_name\": \"AutoencoderKLQwen\""))
        expect_load(dir, OG_ERR_FORMAT, "AutoencoderKLQwenImage", "unknown class");
    if (variant_copy(variant, dir, "\"input_channels\": 3", "\"input_channels\": 4"))
        expect_load(dir, OG_ERR_UNSUPPORTED, "input_channels 4", "4 output channels");
    /* the released Qwen/Qwen-Image vae/config.json has no input_channels (default 3) */
    if (variant_copy(variant, dir, "\"input_channels\": 3,", ""))
        expect_load(dir, OG_OK, "", "no input_channels");
    /* Wan-only keys mean nothing to AutoencoderKLQwenImage (its constructor drops them) */
    if (variant_copy(variant, dir, "\"input_channels\": 3",
                     "\"input_channels\": 3, \"out_channels\": 4, \"is_residual\": true, "
                     "\"patch_size\": 2, \"decoder_base_dim\": 1000"))
        expect_load(dir, OG_OK, "", "Wan2.2 keys in a QwenImage config");
    if (variant_copy(variant, dir, "\"z_dim\": 16", "\"z_dim\": 8"))
        expect_load(dir, OG_ERR_FORMAT, "latents_mean", "z_dim 8 with 16 means");
    if (variant_copy(variant, dir, "\"temperal_downsample\": [",
                     "\"temperal_downsample\": [true, "))
        expect_load(dir, OG_ERR_FORMAT, "temperal_downsample", "temperal_downsample too long");
    if (variant_copy(variant, dir, "\"base_dim\": ", "\"base_dim\": 1"))
        expect_load(dir, OG_ERR_SHAPE, "decoder.", "base_dim the weights do not have");
    og_test_vae_remove(dir);
}

int main(int argc, char **argv)
{
    check_pack_roundtrip();
    char first[1100];
    int checked = og_test_each_variant(argc, argv, FIXTURES, "cases.safetensors", check_variant,
                                       "/tiny", first, sizeof first);
    if (!checked && !og_test_failures) {
        printf("SKIPPED: no fixtures under %s\n", FIXTURES);
        return OG_TEST_SKIP;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/vae", first);
    og_wan_vae *vae = NULL;
    CHECK_OK(og_wan_vae_load(&vae, path));
    if (vae)
        check_bad_sizes(vae);
    og_wan_vae_free(vae);
    check_bad_configs(first);
    return og_test_finish("test_qwenimage_vae");
}
