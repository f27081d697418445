/* AutoencoderKL decoder against the reference pipeline: every fixture variant's latents_final
 * decoded and compared with diffusers' float image and its saved 8-bit image; tiled decoding
 * against untiled on a latent larger than one tile; load errors.
 * Arguments (optional): fixture variant folders holding model/vae and reference.safetensors;
 * by default every tests/fixtures/zimage/<variant>. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "io/safetensors.h"
#include "testutil.h"
#include "vae/autoencoder_kl.h"

#define FIXTURES "tests/fixtures/zimage"

/* Stated tolerance of a tiled decode against the untiled one with 20-latent tiles (2x2 tiles on
 * 32x28 latents) at the default overlap ratio (overlap = tile / 4), on [0, 1] images. Measured
 * on the fixture VAE: max 0.151, mean 0.0108; what remains is GroupNorm statistics taken per
 * tile, and it shrinks as tiles grow (see docs/outputs.md). */
#define TILED_MAX_ABS 0.2
#define TILED_MEAN_ABS 0.015

static int check_variant(const char *dir)
{
    char path[1024];
    og_st_file *ref;
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    og_status s = og_st_open(&ref, path);
    CHECK_OK(s);
    if (s != OG_OK)
        return 0;
    og_tensor lat, img, u8;
    CHECK_OK(og_st_get(ref, "latents_final", &lat));
    CHECK_OK(og_st_get(ref, "image", &img));
    CHECK_OK(og_st_get(ref, "image_u8", &u8));
    og_vae *vae;
    snprintf(path, sizeof path, "%s/model/vae", dir);
    CHECK_OK(og_vae_load(&vae, path));
    if (og_test_failures) {
        og_st_close(ref);
        return 0;
    }
    const int64_t c = lat.shape[0], h = lat.shape[1], w = lat.shape[2];
    const int64_t f = og_vae_scale_factor(vae), H = f * h, W = f * w;
    CHECK(c == og_vae_latent_channels(vae), "latent channels %lld", (long long)c);
    CHECK(img.ndim == 3 && img.shape[0] == 3 && img.shape[1] == H && img.shape[2] == W,
          "image shape vs latent %lldx%lld", (long long)h, (long long)w);
    CHECK(u8.dtype == OG_U8 && u8.shape[0] == H && u8.shape[1] == W && u8.shape[2] == 3,
          "image_u8 shape");
    float *rgb = malloc(sizeof(float) * 3 * H * W);
    uint8_t *px = malloc(3 * H * W);
    CHECK_OK(og_vae_decode(vae, lat.data, h, w, rgb, NULL));
    double rel = og_test_rel_err_f(rgb, img.data, 3 * H * W);
    og_image_to_u8(px, rgb, H, W);
    int64_t exact;
    const int64_t within1 = og_test_u8_within1(px, u8.data, 3 * H * W, &exact);
    double frac1 = (double)within1 / (double)(3 * H * W);
    printf("%s: %lldx%lld image, float rel err %.3g, u8 exact %.4f%%, within 1/255 %.4f%%\n", dir,
           (long long)W, (long long)H, rel, 100.0 * exact / (3 * H * W), 100.0 * frac1);
    CHECK(rel <= 1e-4, "%s: float image rel err %g", dir, rel);
    CHECK(frac1 >= 0.999, "%s: only %.4f%% of bytes within 1/255", dir, 100.0 * frac1);
    free(rgb);
    free(px);
    og_vae_free(vae);
    og_st_close(ref);
    return 1;
}

/* Decodes random latents larger than the tile untiled and tiled, and holds the difference to
 * the stated tolerance; a latent no larger than the tile is decoded untiled, bit for bit. */
static void check_tiling(const char *vae_dir)
{
    og_vae *vae;
    CHECK_OK(og_vae_load(&vae, vae_dir));
    if (og_test_failures)
        return;
    const int64_t c = og_vae_latent_channels(vae), f = og_vae_scale_factor(vae);
    const int64_t h = 32, w = 28, n = 3 * f * h * f * w;
    float *lat = malloc(sizeof(float) * c * h * w);
    float *full = malloc(sizeof(float) * n), *tiled = malloc(sizeof(float) * n);
    og_test_rng rng = {0x5eed};
    og_test_fill(&rng, lat, (size_t)(c * h * w), 1.0f);
    CHECK_OK(og_vae_decode(vae, lat, h, w, full, NULL));

    og_vae_tiling whole = {.tile = 32, .overlap = 8};
    CHECK_OK(og_vae_decode(vae, lat, h, w, tiled, &whole));
    CHECK(memcmp(full, tiled, sizeof(float) * n) == 0,
          "a latent within one tile was not decoded untiled");

    og_vae_tiling t = {.tile = 20, .overlap = 5};
    CHECK_OK(og_vae_decode(vae, lat, h, w, tiled, &t));
    double max_abs = 0, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)tiled[i] - full[i]);
        max_abs = d > max_abs ? d : max_abs;
        sum += d;
    }
    printf("tiled (tile %lld, overlap %lld) vs untiled on %lldx%lld latents: max %.4g, mean %.4g\n",
           (long long)t.tile, (long long)t.overlap, (long long)h, (long long)w, max_abs,
           sum / (double)n);
    CHECK(max_abs <= TILED_MAX_ABS, "tiled max abs diff %g", max_abs);
    CHECK(sum / (double)n <= TILED_MEAN_ABS, "tiled mean abs diff %g", sum / (double)n);

    og_vae_tiling bad = {.tile = 16, .overlap = 9};
    CHECK(og_vae_decode(vae, lat, h, w, tiled, &bad) == OG_ERR_INVALID_ARG,
          "overlap above tile/2 accepted");
    free(lat);
    free(full);
    free(tiled);
    og_vae_free(vae);
}

int main(int argc, char **argv)
{
    og_status s = og_vae_load(&(og_vae *){NULL}, "/nonexistent/vae");
    CHECK(s == OG_ERR_NOT_FOUND || s == OG_ERR_IO, "missing folder -> %s", og_status_name(s));
    CHECK(strstr(og_error_message(), "/nonexistent/vae") != NULL, "message: %s",
          og_error_message());

    /* A folder holding another model's config is refused, naming the file. */
    char tmp[] = "/tmp/og_test_vae_XXXXXX";
    if (mkdtemp(tmp)) {
        char cfg[600];
        snprintf(cfg, sizeof cfg, "%s/config.json", tmp);
        FILE *fp = fopen(cfg, "w");
        if (fp) {
            fputs("{\"_class_name\": \"AutoencoderKLWan\", \"base_dim\": 96}", fp);
            fclose(fp);
        }
        s = og_vae_load(&(og_vae *){NULL}, tmp);
        CHECK(s == OG_ERR_FORMAT && strstr(og_error_message(), "AutoencoderKL") != NULL,
              "wrong class -> %s: %s", og_status_name(s), og_error_message());
        unlink(cfg);
        rmdir(tmp);
    }

    char dir[1100], first[1200];
    int checked = og_test_each_variant(argc, argv, FIXTURES, "reference.safetensors", check_variant,
                                       NULL, dir, sizeof dir);
    snprintf(first, sizeof first, "%s/model/vae", dir);
    if (!checked && !og_test_failures) {
        printf("SKIPPED: no fixtures under %s\n", FIXTURES);
        return OG_TEST_SKIP;
    }
    if (!og_test_failures)
        check_tiling(first);
    return og_test_finish("test_vae");
}
