/* The GPU VAE decode's memory plan (og_vae_device_plan_for), on the CPU: the weight bytes against
 * the decoder's tensors counted straight from the checkpoint, the activation buffer against the
 * decoder's feature maps listed layer by layer, the total against its parts, growth with the
 * latent size, hand-computed numbers for the FLUX VAE at 1024x1024, and bad sizes; the weights
 * again on a variant of the fixture with a post_quant_conv. */
#include <string.h>

#include "io/weights.h"
#include "testutil.h"
#include "vae/autoencoder_kl_internal.h"
#include "vae_testutil.h"

#define VAE_DIR "tests/fixtures/zimage/base/model/vae"

static size_t al64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Device bytes of the decoder's tensors as stored in the folder: every decoder.* (and, when the
 * config uses it, post_quant_conv.*) tensor, matrices (ndim >= 2) as bf16, vectors as f32. */
static size_t checkpoint_weight_bytes(const char *dir, bool post_quant)
{
    og_weights *w;
    if (og_weights_open_dir(&w, dir) != OG_OK)
        return 0;
    size_t bytes = 0;
    for (int i = 0; i < og_weights_count(w); i++) {
        const char *name = og_weights_name(w, i);
        if (strncmp(name, "decoder.", 8) != 0 &&
            !(post_quant && strncmp(name, "post_quant_conv.", 16) == 0))
            continue;
        og_tensor t;
        if (og_weights_get(w, name, &t) != OG_OK)
            continue;
        bytes += al64((size_t)og_tensor_numel(&t) * (t.ndim >= 2 ? 2 : 4));
    }
    og_weights_free(w);
    return bytes;
}

/* The largest feature map of a decode, in elements, listing every map the decoder makes: the
 * latents (and post_quant_conv's output), conv_in and the mid block at the top width, each up
 * block's resnet inputs and outputs, its upsampled map and conv, the output. */
static int64_t largest_map(const og_vae *v, int64_t h, int64_t w)
{
    int64_t hw = h * w, best = v->latent_c * hw;
    const int64_t top = v->block_out[v->n_blocks - 1];
    best = top * hw > best ? top * hw : best;
    int64_t c = top;
    for (int i = 0; i < v->n_blocks; i++) {
        const int64_t cout = v->block_out[v->n_blocks - 1 - i];
        for (int j = 0; j < v->up[i].n_res; j++) {
            const int64_t m = (c > cout ? c : cout) * hw;
            best = m > best ? m : best;
            c = cout;
        }
        if (v->up[i].upsample) {
            hw *= 4;
            best = c * hw > best ? c * hw : best;
        }
    }
    return 3 * hw > best ? 3 * hw : best;
}

static void check_plan(const og_vae *v, int64_t h, int64_t w)
{
    og_vae_device_plan p;
    CHECK_OK(og_vae_device_plan_for(v, h, w, &p));
    const int64_t top = v->block_out[v->n_blocks - 1];
    CHECK(p.buffer == al64((size_t)largest_map(v, h, w) * 2), "%lldx%lld: buffer %zu, largest "
          "map %lld elements", (long long)h, (long long)w, p.buffer,
          (long long)largest_map(v, h, w));
    CHECK(p.latent == al64((size_t)(v->latent_c * h * w) * 2), "latent bytes %zu", p.latent);
    CHECK(p.attention == (v->has_attn ? 3 * al64((size_t)(h * w * top) * 2) : 0),
          "attention bytes %zu", p.attention);
    CHECK(p.workspace == OG_VAE_CONV_WORKSPACE, "workspace %zu", p.workspace);
    CHECK(p.work == p.latent + 3 * p.buffer + p.attention + p.workspace,
          "work %zu is not the sum of its parts", p.work);
}

/* The FLUX / Z-Image VAE's decoder shape (block_out 128 256 512 512, 3 resnets per up block,
 * 16 latent channels) with no weights: only the activation plan is checked, by hand. */
static void check_flux_numbers(void)
{
    og_vae v;
    memset(&v, 0, sizeof v);
    v.n_blocks = 4;
    const int64_t blocks[4] = {128, 256, 512, 512};
    memcpy(v.block_out, blocks, sizeof blocks);
    v.latent_c = 16;
    v.out_c = 3;
    v.groups = 32;
    v.has_attn = true;
    for (int i = 0; i < 4; i++) {
        v.up[i].n_res = 3;
        v.up[i].upsample = i < 3;
    }
    og_vae_device_plan p;
    CHECK_OK(og_vae_device_plan_for(&v, 128, 128, &p));
    /* 1024x1024: the largest map is up block 2's 256 channels upsampled to 1024^2 (up block 3's
     * first resnet reads them and makes 128): 256 * 1024^2 bf16 = 512 MiB. */
    const size_t mib = (size_t)1 << 20;
    CHECK(p.buffer == 512 * mib, "FLUX 1024: buffer %zu MiB, expected 512", p.buffer / mib);
    CHECK(p.latent == 16 * 128 * 128 * 2, "FLUX 1024: latent %zu", p.latent);
    CHECK(p.attention == 48 * mib, "FLUX 1024: attention %zu MiB, expected 48", p.attention / mib);
    CHECK(p.work == 16 * 128 * 128 * 2 + 3 * 512 * mib + 48 * mib + OG_VAE_CONV_WORKSPACE,
          "FLUX 1024: work %zu", p.work);
    check_plan(&v, 128, 128);
    check_plan(&v, 96, 160);
}

int main(void)
{
    check_flux_numbers();

    og_vae *v;
    og_status s = og_vae_load(&v, VAE_DIR);
    if (s == OG_ERR_NOT_FOUND || s == OG_ERR_IO) {
        if (og_test_failures)
            return og_test_finish("test_vae_plan");
        printf("SKIPPED: no fixture VAE at %s\n", VAE_DIR);
        return OG_TEST_SKIP;
    }
    CHECK_OK(s);
    if (og_test_failures)
        return og_test_finish("test_vae_plan");

    og_vae_device_plan a, b;
    CHECK_OK(og_vae_device_plan_for(v, 1, 1, &a));
    const size_t ref = checkpoint_weight_bytes(VAE_DIR, v->has_post_quant);
    printf("fixture VAE: %zu weight bytes on the device (checkpoint count %zu)\n", a.weights, ref);
    CHECK(ref > 0 && a.weights == ref, "weight bytes %zu, checkpoint count %zu", a.weights, ref);
    const size_t plain_weights = a.weights;

    const int64_t sizes[][2] = {{1, 1}, {2, 3}, {8, 8}, {17, 9}, {32, 28}, {64, 64}, {128, 96}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_plan(v, sizes[i][0], sizes[i][1]);
    /* Growth: one more latent row or column never needs less, and the weights never change. */
    for (int64_t h = 1; h <= 40; h += 3)
        for (int64_t w = 1; w <= 40; w += 5) {
            CHECK_OK(og_vae_device_plan_for(v, h, w, &a));
            CHECK_OK(og_vae_device_plan_for(v, h + 1, w, &b));
            CHECK(b.work >= a.work && b.weights == a.weights, "%lldx%lld -> +1 row: %zu -> %zu",
                  (long long)h, (long long)w, a.work, b.work);
            CHECK_OK(og_vae_device_plan_for(v, h, w + 1, &b));
            CHECK(b.work >= a.work, "%lldx%lld -> +1 column: %zu -> %zu", (long long)h,
                  (long long)w, a.work, b.work);
        }

    const int64_t bad[][2] = {{0, 8}, {8, 0}, {-1, 8}, {65537, 8}, {8, 65537}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(og_vae_device_plan_for(v, bad[i][0], bad[i][1], &a) == OG_ERR_INVALID_ARG,
              "latent %lldx%lld accepted", (long long)bad[i][0], (long long)bad[i][1]);

    /* With a post_quant_conv: its [C, C, 1, 1] weight and [C] bias come on top. */
    char pq[64];
    if (og_test_vae_post_quant(VAE_DIR, pq)) {
        og_vae *vq;
        CHECK_OK(og_vae_load(&vq, pq));
        if (!og_test_failures) {
            const int64_t c = og_vae_latent_channels(vq);
            CHECK_OK(og_vae_device_plan_for(vq, 4, 4, &b));
            CHECK(b.weights == checkpoint_weight_bytes(pq, true), "post_quant weights %zu vs "
                  "checkpoint %zu", b.weights, checkpoint_weight_bytes(pq, true));
            CHECK(b.weights == plain_weights + al64((size_t)(c * c) * 2) + al64((size_t)c * 4),
                  "post_quant adds %zu bytes", b.weights - plain_weights);
            check_plan(vq, 12, 20);
            og_vae_free(vq);
        }
        og_test_vae_remove(pq);
    } else {
        CHECK(false, "no post_quant_conv variant of %s", VAE_DIR);
    }
    og_vae_free(v);
    return og_test_finish("test_vae_plan");
}
