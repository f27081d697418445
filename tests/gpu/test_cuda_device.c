/* Device discovery and memory errors: without a GPU, asking for CUDA is a clear error naming the
 * fix (this part runs everywhere); with one, --devices lists are checked, an arena that does not
 * fit names the shortfall, and uploads round-trip through bf16. */
#include <string.h>

#include "gpu_testutil.h"

static void check_no_gpu(void)
{
    og_cuda_ctx *ctx = (og_cuda_ctx *)1;
    CHECK(og_cuda_init(0, &ctx) == OG_ERR_DEVICE, "init without a GPU must fail cleanly");
    CHECK(ctx == NULL, "no context on failure");
    CHECK(strstr(og_error_message(), "--backend cpu") != NULL, "message names the fix: %s",
          og_error_message());
    int devs[4], n = -1;
    CHECK(og_cuda_parse_devices("0", devs, 4, &n) == OG_ERR_DEVICE, "--devices without a GPU");
    CHECK(n == 0, "no devices parsed");
    char name[128];
    CHECK(og_cuda_device_name(0, name, sizeof name)[0] == '\0', "no name for a missing device");
}

static void check_device_lists(int count)
{
    int devs[8], n;
    CHECK_OK(og_cuda_parse_devices("0", devs, 8, &n));
    CHECK(n == 1 && devs[0] == 0, "\"0\" gives device 0");
    const char *bad[] = {"", "a", "0,", ",0", "0,,1", "-1", "0;1", "0,0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        og_status s = og_cuda_parse_devices(bad[i], devs, 8, &n);
        CHECK(s == OG_ERR_INVALID_ARG, "--devices '%s' must be refused, got %s", bad[i],
              og_status_name(s));
    }
    char past[32];
    snprintf(past, sizeof past, "0,%d", count);
    CHECK(og_cuda_parse_devices(past, devs, 8, &n) == OG_ERR_INVALID_ARG, "device %d is past the end",
          count);
    CHECK(strstr(og_error_message(), "does not exist") != NULL, "%s", og_error_message());
    if (count >= 2) {
        CHECK_OK(og_cuda_parse_devices("1,0", devs, 8, &n));
        CHECK(n == 2 && devs[0] == 1 && devs[1] == 0, "order is kept");
    }
}

static void check_memory(void)
{
    og_cuda_ctx *ctx;
    CHECK_OK(og_cuda_init(0, &ctx));
    if (!ctx)
        return;
    size_t free_b, total_b;
    CHECK_OK(og_cuda_mem_info(ctx, &free_b, &total_b));
    CHECK(og_cuda_reserve(ctx, total_b * 2, "a model twice this GPU") == OG_ERR_OOM,
          "an arena larger than the GPU must fail");
    CHECK(strstr(og_error_message(), "short") && strstr(og_error_message(), "twice this GPU"),
          "the message names the request and the shortfall: %s", og_error_message());
    CHECK_OK(og_cuda_reserve(ctx, 64 << 20, "test"));
    og_arena *a = og_cuda_arena(ctx);
    CHECK(og_arena_alloc(a, 128 << 20) == NULL, "the arena is bounded");

    og_test_rng r = {7};
    const size_t n = 3000;
    float *x = malloc(n * sizeof *x), *back = malloc(n * sizeof *back);
    og_test_fill(&r, x, n, 4.0f);
    uint16_t *h16 = malloc(n * 2);
    og_from_f32(h16, OG_F16, x, n);
    void *d = og_arena_alloc(a, n * 4);
    /* f32 -> device bf16 -> host f32 rounds exactly as og_f32_to_bf16 does. */
    CHECK_OK(og_cuda_upload(ctx, d, OG_BF16, x, OG_F32, n));
    CHECK_OK(og_cuda_download(ctx, back, d, OG_BF16, n));
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += back[i] != og_bf16_to_f32(og_f32_to_bf16(x[i]));
    CHECK(bad == 0, "%d bf16 round trips differ", bad);
    /* f16 host weights widen on the way up. */
    CHECK_OK(og_cuda_upload(ctx, d, OG_F32, h16, OG_F16, n));
    CHECK_OK(og_cuda_download(ctx, back, d, OG_F32, n));
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += back[i] != og_f16_to_f32(h16[i]);
    CHECK(bad == 0, "%d f16 uploads differ", bad);
    CHECK(og_cuda_peak_bytes(ctx) >= n * 4, "peak counts the arena");
    /* Empty transfers succeed and touch nothing. */
    CHECK_OK(og_cuda_upload(ctx, d, OG_BF16, x, OG_F32, 0));
    CHECK_OK(og_cuda_download(ctx, back, d, OG_BF16, 0));
    free(x);
    free(back);
    free(h16);
    og_cuda_free(ctx);
}

int main(void)
{
    int count = og_cuda_device_count();
    if (count == 0) {
        check_no_gpu();
        return og_test_finish("test_cuda_device (no GPU: error paths only)");
    }
    char name[128];
    printf("GPU 0: %s\n", og_cuda_device_name(0, name, sizeof name));
    check_device_lists(count);
    check_memory();
    return og_test_finish("test_cuda_device");
}
