/* Image output: float -> byte rounding against numpy's (x * 255).round() done by hand, PNG round
 * trips (pixels read back with libpng, or stb_image in builds without it; text chunks read by
 * walking the file's chunks), and failing writes that must leave no file and no temporary. */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "dirutil.h"
#include "testutil.h"

#ifdef OG_HAVE_PNG
#include <png.h>
#else
#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop
#endif

/* numpy: float32 product, then round half to even. */
static uint8_t ref_u8(float x)
{
    x = x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
    float p = x * 255.0f;
    double fl = floor((double)p), frac = (double)p - fl;
    double r = frac > 0.5 ? fl + 1 : (frac < 0.5 ? fl : (fmod(fl, 2.0) == 0.0 ? fl : fl + 1));
    return (uint8_t)r;
}

static void check_to_u8(void)
{
    enum { H = 7, W = 64 };
    float chw[3 * H * W];
    og_test_rng rng = {42};
    og_test_fill(&rng, chw, 3 * H * W, 0.7f);
    for (int i = 0; i < 3 * H * W; i++)
        chw[i] += 0.5f; /* [-0.2, 1.2]: both clamps are exercised */
    /* Exact ties: an x whose f32 product with 255 is k + 0.5, for k even and odd. */
    int ties = 0;
    for (int k = 0; k < 254 && ties < W; k++) {
        float x = (float)((k + 0.5) / 255.0);
        for (int u = 0; u < 8; u++, x = nextafterf(x, 2.0f)) {
            if (x * 255.0f == (float)k + 0.5f) {
                chw[ties++] = x;
                break;
            }
        }
    }
    CHECK(ties >= 8, "found only %d exact ties", ties);
    uint8_t hwc[3 * H * W];
    og_image_to_u8(hwc, chw, H, W);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < H * W; i++)
            bad += hwc[i * 3 + c] != ref_u8(chw[c * H * W + i]);
    CHECK(bad == 0, "%d bytes differ from numpy rounding", bad);
}

/* Reads the text chunks of a PNG file: fills keys/values (malloc'd), returns the count. */
static int read_text_chunks(const char *path, char **keys, char **vals, int cap, int *itxt)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    unsigned char sig[8], hdr[8];
    int n = 0;
    *itxt = 0;
    if (fread(sig, 1, 8, fp) != 8 || memcmp(sig, "\x89PNG\r\n\x1a\n", 8) != 0) {
        fclose(fp);
        return -1;
    }
    while (fread(hdr, 1, 8, fp) == 8) {
        uint32_t len = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
        char *data = malloc(len + 1);
        if (fread(data, 1, len, fp) != len || fseek(fp, 4, SEEK_CUR) != 0) {
            free(data);
            break;
        }
        data[len] = 0;
        bool t = memcmp(hdr + 4, "tEXt", 4) == 0, it = memcmp(hdr + 4, "iTXt", 4) == 0;
        if ((t || it) && n < cap) {
            size_t kl = strlen(data);
            const char *v = data + kl + 1;
            if (it) { /* flag, method, language\0, translated key\0 */
                v += 2;
                v += strlen(v) + 1;
                v += strlen(v) + 1;
                (*itxt)++;
            }
            keys[n] = strdup(data);
            vals[n] = strndup(v, (size_t)(data + len - v));
            n++;
        }
        free(data);
        if (memcmp(hdr + 4, "IEND", 4) == 0)
            break;
    }
    fclose(fp);
    return n;
}

/* Decodes the PNG's pixels as 8-bit RGB; returns NULL on failure. */
static uint8_t *read_pixels(const char *path, int *w, int *h)
{
#ifdef OG_HAVE_PNG
    png_image img = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_file(&img, path))
        return NULL;
    img.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return px;
#else
    int n;
    return stbi_load(path, w, h, &n, 3);
#endif
}

static void check_round_trip(const char *dir)
{
    enum { W = 37, H = 23 };
    uint8_t px[W * H * 3];
    og_test_rng rng = {7};
    for (int i = 0; i < W * H * 3; i++)
        px[i] = (uint8_t)(og_test_next(&rng) >> 56);
    const og_image_text kv[] = {
        {"prompt", "a cat on a windowsill, 猫 🐱"},
        {"negative_prompt", "blurry\nlow quality"},
        {"seed", "42"},
        {"steps", "8"},
        {"guidance", "0"},
        {"size", "37x23"},
        {"model", "zimage-tiny"},
        {"parallel", "ulysses=2 ring=2"},
    };
    const int n_kv = (int)(sizeof kv / sizeof kv[0]);
    char path[600];
    snprintf(path, sizeof path, "%s/round trip.png", dir);
    CHECK_OK(og_image_write_png(path, px, W, H, kv, n_kv));
    int w = 0, h = 0;
    uint8_t *back = read_pixels(path, &w, &h);
    CHECK(back && w == W && h == H, "read back %dx%d", w, h);
    if (back) {
        CHECK(memcmp(back, px, sizeof px) == 0, "pixels differ after the round trip");
        free(back);
    }
    char *keys[16], *vals[16];
    int itxt = 0, n = read_text_chunks(path, keys, vals, 16, &itxt);
    CHECK(n == n_kv, "%d text chunks, wrote %d", n, n_kv);
    CHECK(itxt == 1, "%d iTXt chunks (the UTF-8 prompt only)", itxt);
    for (int i = 0; i < n && i < n_kv; i++) {
        CHECK(strcmp(keys[i], kv[i].key) == 0 && strcmp(vals[i], kv[i].value) == 0,
              "chunk %d: %s=%s", i, keys[i], vals[i]);
    }
    for (int i = 0; i < n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    /* A normal file (0666 less the umask), not the private mode of a temporary. */
    mode_t mask = umask(0);
    umask(mask);
    struct stat st = {0};
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == (0666 & ~mask), "mode %o",
          (unsigned)(st.st_mode & 0777));
    CHECK(og_test_count_entries(dir) == 1, "%d entries in the folder, expected only the image",
          og_test_count_entries(dir));
    unlink(path);
}

static void check_failures(const char *dir)
{
    uint8_t px[4 * 4 * 3] = {0};
    char path[700];

    /* A folder that does not exist. */
    snprintf(path, sizeof path, "%s/missing/out.png", dir);
    og_status s = og_image_write_png(path, px, 4, 4, NULL, 0);
    CHECK(s == OG_ERR_IO, "missing folder -> %s", og_status_name(s));
    CHECK(strstr(og_error_message(), path) != NULL, "message lacks the path: %s",
          og_error_message());

    /* A parent that is a file. */
    char file[600];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *fp = fopen(file, "w");
    if (fp)
        fclose(fp);
    snprintf(path, sizeof path, "%s/out.png", file);
    s = og_image_write_png(path, px, 4, 4, NULL, 0);
    CHECK(s == OG_ERR_IO, "file as folder -> %s", og_status_name(s));
    unlink(file);

    /* A folder without write permission (root writes anyway, so only checked for others). */
    if (geteuid() != 0) {
        char ro[600];
        snprintf(ro, sizeof ro, "%s/readonly", dir);
        mkdir(ro, 0555);
        snprintf(path, sizeof path, "%s/out.png", ro);
        s = og_image_write_png(path, px, 4, 4, NULL, 0);
        CHECK(s == OG_ERR_IO && strstr(og_error_message(), path) != NULL,
              "read-only folder -> %s: %s", og_status_name(s), og_error_message());
        CHECK(og_test_count_entries(ro) == 0, "a refused write left %d entries",
              og_test_count_entries(ro));
        rmdir(ro);
    }

    /* A bad key, a bad size. */
    snprintf(path, sizeof path, "%s/out.png", dir);
    og_image_text bad[] = {{"", "x"}};
    CHECK(og_image_write_png(path, px, 4, 4, bad, 1) == OG_ERR_INVALID_ARG, "empty key accepted");
    og_image_text bad2[] = {{"two  spaces", "x"}};
    CHECK(og_image_write_png(path, px, 4, 4, bad2, 1) == OG_ERR_INVALID_ARG,
          "doubled space accepted");
    CHECK(og_image_write_png(path, px, 0, 4, NULL, 0) == OG_ERR_INVALID_ARG, "width 0 accepted");
    CHECK(og_test_count_entries(dir) == 0, "a refused write left %d entries",
          og_test_count_entries(dir));

    /* A write that fails half way (file size limit) keeps the previous file intact and leaves
     * no temporary. */
    enum { BW = 256, BH = 256 };
    uint8_t *big = malloc(BW * BH * 3);
    og_test_rng rng = {99};
    for (int i = 0; i < BW * BH * 3; i++)
        big[i] = (uint8_t)(og_test_next(&rng) >> 56);
    CHECK_OK(og_image_write_png(path, px, 4, 4, NULL, 0));
    struct stat before;
    stat(path, &before);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        s = og_image_write_png(path, big, BW, BH, NULL, 0);
        setrlimit(RLIMIT_FSIZE, &old);
        CHECK(s == OG_ERR_IO, "oversized write -> %s", og_status_name(s));
        printf("failed write reports: %s\n", og_error_message());
        CHECK(strstr(og_error_message(), path) != NULL, "message: %s", og_error_message());
        struct stat after;
        CHECK(stat(path, &after) == 0 && after.st_size == before.st_size &&
                  after.st_ino == before.st_ino,
              "the previous file was replaced by a failed write");
        CHECK(og_test_count_entries(dir) == 1, "a failed write left %d entries",
              og_test_count_entries(dir));
    }
    CHECK_OK(og_image_write_png(path, big, BW, BH, NULL, 0));
    int w, h;
    uint8_t *back = read_pixels(path, &w, &h);
    CHECK(back && w == BW && h == BH && memcmp(back, big, BW * BH * 3) == 0,
          "the replacing write did not land");
    free(back);
    free(big);
    unlink(path);
}

int main(void)
{
    char dir[] = "/tmp/og_test_image_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    check_to_u8();
    check_round_trip(dir);
    check_failures(dir);
    CHECK(og_test_count_entries(dir) == 0, "left %d entries behind", og_test_count_entries(dir));
    rmdir(dir);
    return og_test_finish("test_image");
}
