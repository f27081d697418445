/* The AutoencoderKL decoder on a GPU against the CPU decoder (fp32, itself within 1e-4 of
 * diffusers, test_vae) on the fixture VAEs: every fixture variant's final latents, random latents
 * at two more sizes through one upload (one of them not square), the same on a variant with a
 * post_quant_conv (vae_testutil.h), and the tiny model's VAE when it is there;
 * og_cuda_add_row_bias against a host loop; and decodes too large for the GPU refused before any
 * work: the named shortfall, and cuDNN's size limit.
 *
 * Tolerances. Every activation is bf16 (8 significant bits, a relative rounding of at most
 * 2^-9 = 2e-3 per stored value) through about 30 convolutions, GroupNorms and residual adds,
 * with fp32 accumulation inside each op; independent roundings add up to about sqrt(30) * 2e-3
 * ~ 1e-2 relative, so the [0, 1] images must agree within 2e-2 relative (L2). On 8-bit pixels
 * 2e-3 of a unit swing is half a level: most pixels land on the same or the next level, a few
 * (where roundings line up) further. These are first guesses; never run (no GPU here). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cuda/vae_cuda.h"
#include "gpu_testutil.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "vae_testutil.h"

#define FIXTURES "tests/fixtures/zimage"
#define TINY_VAE "models/zimage-tiny/vae"

#define GPU_VS_CPU_REL 2e-2 /* relative L2 of the [0, 1] images */
#define PIXEL_MEAN 0.75     /* mean |difference| in levels of 255 */
#define PIXEL_WITHIN2 0.98  /* share of bytes within 2 levels */
#define PIXEL_MAX 24        /* largest difference in levels */

/* Decodes lat [C, h, w] on the CPU (untiled) and through g, and holds the two to the
 * tolerances above. */
static void compare(const char *what, og_vae *vae, og_vae_cuda *g, const float *lat, int64_t h,
                    int64_t w)
{
    const int64_t f = og_vae_scale_factor(vae), H = f * h, W = f * w, n = 3 * H * W;
    float *cpu = malloc(sizeof(float) * n), *gpu = malloc(sizeof(float) * n);
    uint8_t *pc = malloc(n), *pg = malloc(n);
    CHECK_OK(og_vae_decode(vae, lat, h, w, cpu, NULL));
    CHECK_OK(og_vae_cuda_decode(g, lat, h, w, gpu));
    if (og_test_failures)
        goto done;
    const double rel = og_test_rel_err_f(gpu, cpu, (size_t)n);
    og_image_to_u8(pc, cpu, H, W);
    og_image_to_u8(pg, gpu, H, W);
    int64_t within2 = 0, sum = 0;
    int worst = 0;
    for (int64_t i = 0; i < n; i++) {
        const int d = abs((int)pc[i] - (int)pg[i]);
        within2 += d <= 2;
        sum += d;
        worst = d > worst ? d : worst;
    }
    const double mean = (double)sum / (double)n, frac = (double)within2 / (double)n;
    printf("%s: %lldx%lld image, rel %.3g, pixels mean %.3f max %d, within 2 levels %.4f%%\n",
           what, (long long)W, (long long)H, rel, mean, worst, 100.0 * frac);
    CHECK(rel <= GPU_VS_CPU_REL, "%s: GPU vs CPU rel %g", what, rel);
    CHECK(mean <= PIXEL_MEAN, "%s: mean pixel difference %g levels", what, mean);
    CHECK(frac >= PIXEL_WITHIN2, "%s: only %.4f%% of bytes within 2 levels", what, 100.0 * frac);
    CHECK(worst <= PIXEL_MAX, "%s: a pixel differs by %d levels", what, worst);
done:
    free(cpu);
    free(gpu);
    free(pc);
    free(pg);
}

/* A decode larger than the free memory (another context holds all but 768 MiB of it) fails
 * with og_cuda_reserve's message, and one past cuDNN's 2^31 elements is refused by size; both
 * before touching the latents (a one-element dummy here). */
static void check_refusals(og_vae_cuda *g)
{
    float dummy[1] = {0};
    og_cuda_ctx *hog = NULL;
    size_t free_b = 0, total_b = 0;
    CHECK_OK(og_cuda_init(0, &hog));
    if (hog)
        CHECK_OK(og_cuda_mem_info(hog, &free_b, &total_b));
    if (free_b > ((size_t)1 << 30)) {
        CHECK_OK(og_cuda_reserve(hog, free_b - ((size_t)768 << 20), "test_vae_cuda's hog"));
        og_status s = og_vae_cuda_decode(g, dummy, 512, 512, dummy);
        CHECK(s == OG_ERR_OOM && strstr(og_error_message(), "VAE decode of a 4096x4096 image") &&
                  strstr(og_error_message(), "MiB short"),
              "decode past the free memory -> %s: %s", og_status_name(s), og_error_message());
    }
    og_cuda_free(hog);
    og_status s = og_vae_cuda_decode(g, dummy, 20000, 20000, dummy);
    CHECK(s == OG_ERR_UNSUPPORTED && strstr(og_error_message(), "2^31"),
          "decode past 2^31 elements -> %s: %s", og_status_name(s), og_error_message());
}

/* Random latents of unit scale at two sizes (the second not square) through one upload, and a
 * decode far beyond any GPU refused with og_cuda_reserve's message. */
static void check_random(const char *vae_dir, bool shortfall)
{
    og_vae *vae;
    og_vae_cuda *g;
    CHECK_OK(og_vae_load(&vae, vae_dir));
    if (og_test_failures)
        return;
    CHECK_OK(og_vae_cuda_upload(&g, 0, vae));
    if (og_test_failures) {
        og_vae_free(vae);
        return;
    }
    const int64_t c = og_vae_latent_channels(vae), sizes[2][2] = {{16, 16}, {12, 20}};
    og_test_rng rng = {0x7ae};
    for (int i = 0; i < 2; i++) {
        const int64_t h = sizes[i][0], w = sizes[i][1];
        float *lat = malloc(sizeof(float) * c * h * w);
        og_test_fill(&rng, lat, (size_t)(c * h * w), 1.0f);
        char what[600];
        snprintf(what, sizeof what, "%s, random %lldx%lld latents", vae_dir, (long long)h,
                 (long long)w);
        compare(what, vae, g, lat, h, w);
        free(lat);
    }
    if (shortfall)
        check_refusals(g);
    og_vae_cuda_free(g);
    og_vae_free(vae);
}

static int check_variant(const char *dir)
{
    char path[1024];
    og_st_file *ref;
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    if (og_st_open(&ref, path) != OG_OK)
        return 0;
    og_tensor lat;
    og_vae *vae = NULL;
    og_vae_cuda *g = NULL;
    snprintf(path, sizeof path, "%s/model/vae", dir);
    CHECK_OK(og_st_get(ref, "latents_final", &lat));
    CHECK_OK(og_vae_load(&vae, path));
    if (!og_test_failures)
        CHECK_OK(og_vae_cuda_upload(&g, 0, vae));
    if (!og_test_failures)
        compare(dir, vae, g, lat.data, lat.shape[1], lat.shape[2]);
    og_vae_cuda_free(g);
    og_vae_free(vae);
    og_st_close(ref);
    return 1;
}

/* og_cuda_add_row_bias on rows `stride` apart: the sum rounded to bf16 exactly as the host
 * rounds it, and the columns past `cols` untouched. */
static void check_row_bias(void)
{
    og_cuda_ctx *ctx = og_gpu_test_start("test_vae_cuda", 16);
    const int64_t rows = 37, cols = 48, stride = 64, n = rows * stride;
    og_test_rng rng = {0xb1a5};
    float *y = og_gpu_rand(&rng, (size_t)n, 4.0f), *bias = malloc(sizeof(float) * cols);
    og_test_fill(&rng, bias, (size_t)cols, 2.0f);
    og_bf16 *yd = og_gpu_put(ctx, y, (size_t)n, OG_BF16);
    float *bd = og_gpu_put(ctx, bias, (size_t)cols, OG_F32);
    CHECK_OK(og_cuda_add_row_bias(ctx, yd, bd, rows, cols, stride));
    float *got = og_gpu_get(ctx, yd, (size_t)n, OG_BF16);
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < stride; c++) {
            const float x = y[r * stride + c];
            const float want = c < cols ? og_bf16_to_f32(og_f32_to_bf16(x + bias[c])) : x;
            bad += got[r * stride + c] != want;
        }
    CHECK(bad == 0, "row bias: %lld of %lld values differ", (long long)bad, (long long)n);
    CHECK(og_cuda_add_row_bias(ctx, yd, bd, rows, cols, cols - 1) == OG_ERR_INVALID_ARG,
          "a stride shorter than the row accepted");
    free(y);
    free(bias);
    free(got);
    og_cuda_free(ctx);
}

int main(void)
{
    if (og_cuda_device_count() == 0) {
        printf("test_vae_cuda: SKIPPED: no CUDA device\n");
        return OG_TEST_SKIP;
    }
    check_row_bias();
    int checked = 0;
    char first[700] = "";
    DIR *d = opendir(FIXTURES);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char dir[600];
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof dir, "%s/%s", FIXTURES, e->d_name);
        if (!check_variant(dir))
            continue;
        if (!checked++)
            snprintf(first, sizeof first, "%s/model/vae", dir);
    }
    if (d)
        closedir(d);
    CHECK(checked > 0, "no fixture variant under %s", FIXTURES);
    if (first[0]) {
        check_random(first, true);
        char pq[64];
        CHECK(og_test_vae_post_quant(first, pq), "no post_quant_conv variant of %s", first);
        if (!og_test_failures)
            check_random(pq, false);
        og_test_vae_remove(pq);
    }
    if (access(TINY_VAE "/config.json", R_OK) == 0)
        check_random(TINY_VAE, false);
    return og_test_finish("test_vae_cuda");
}
