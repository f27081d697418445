/* Qwen-Image's 2x2 latent packing and the pipeline's decode step around the Wan-shaped VAE. */
#include "vae/qwenimage_latents.h"

#include <stdlib.h>

#include "vae/autoencoder_kl_internal.h"

#define QI_MAX_SIDE 65536

og_status og_qwenimage_latent_size(int64_t height, int64_t width, int64_t vae_scale, int64_t *h,
                                   int64_t *w)
{
    if (height < 1 || width < 1 || vae_scale < 1)
        return og_fail(OG_ERR_INVALID_ARG, "Qwen-Image: bad image size %lldx%lld (VAE scale %lld)",
                       (long long)height, (long long)width, (long long)vae_scale);
    *h = 2 * (height / (2 * vae_scale));
    *w = 2 * (width / (2 * vae_scale));
    if (*h < 2 || *w < 2)
        return og_fail(OG_ERR_INVALID_ARG,
                       "Qwen-Image: image size %lldx%lld is below %lld (2 x the VAE scale) "
                       "on a side",
                       (long long)height, (long long)width, (long long)(2 * vae_scale));
    return OG_OK;
}

static og_status check_grid(const char *what, int64_t c, int64_t h, int64_t w)
{
    if (c < 1 || h < 2 || w < 2 || h % 2 || w % 2 || h > QI_MAX_SIDE || w > QI_MAX_SIDE)
        return og_fail(OG_ERR_INVALID_ARG,
                       "Qwen-Image %s: latents [%lld, %lld, %lld] (the height and width must be "
                       "even, 2x2 patches)",
                       what, (long long)c, (long long)h, (long long)w);
    return OG_OK;
}

og_status og_qwenimage_pack(float *tokens, const float *latents, int64_t c, int64_t h, int64_t w)
{
    OG_TRY(check_grid("pack", c, h, w));
    const int64_t gw = w / 2, n = h / 2 * gw;
    for (int64_t tok = 0; tok < n; tok++) {
        const int64_t i = tok / gw, j = tok % gw;
        float *out = tokens + tok * 4 * c;
        for (int64_t ch = 0; ch < c; ch++)
            for (int ph = 0; ph < 2; ph++)
                for (int pw = 0; pw < 2; pw++)
                    out[ch * 4 + ph * 2 + pw] = latents[(ch * h + 2 * i + ph) * w + 2 * j + pw];
    }
    return OG_OK;
}

/* The unpack's sizes: tokens [n, channels] for h x w latents. */
static og_status check_tokens(int64_t n, int64_t channels, int64_t h, int64_t w)
{
    if (channels < 4 || channels % 4)
        return og_fail(OG_ERR_INVALID_ARG,
                       "Qwen-Image unpack: %lld channels per token (a multiple of 4, 2x2 patches)",
                       (long long)channels);
    OG_TRY(check_grid("unpack", channels / 4, h, w));
    if (n != h / 2 * (w / 2))
        return og_fail(OG_ERR_INVALID_ARG,
                       "Qwen-Image unpack: %lld tokens for %lldx%lld latents (expected %lld)",
                       (long long)n, (long long)h, (long long)w, (long long)(h / 2 * (w / 2)));
    return OG_OK;
}

og_status og_qwenimage_unpack(float *latents, const float *tokens, int64_t n, int64_t channels,
                              int64_t h, int64_t w)
{
    OG_TRY(check_tokens(n, channels, h, w));
    const int64_t c = channels / 4, gw = w / 2;
    for (int64_t tok = 0; tok < n; tok++) {
        const int64_t i = tok / gw, j = tok % gw;
        const float *in = tokens + tok * channels;
        for (int64_t ch = 0; ch < c; ch++)
            for (int ph = 0; ph < 2; ph++)
                for (int pw = 0; pw < 2; pw++)
                    latents[(ch * h + 2 * i + ph) * w + 2 * j + pw] = in[ch * 4 + ph * 2 + pw];
    }
    return OG_OK;
}

og_status og_qwenimage_decode(og_wan_vae *vae, const float *tokens, int64_t n, int64_t channels,
                              int64_t h, int64_t w, float *image)
{
    if (channels != 4 * og_wan_vae_z_dim(vae))
        return og_fail(OG_ERR_INVALID_ARG,
                       "Qwen-Image decode: %lld channels per token, the VAE takes %lld (4 x z_dim)",
                       (long long)channels, (long long)(4 * og_wan_vae_z_dim(vae)));
    OG_TRY(check_tokens(n, channels, h, w));
    const int64_t c = channels / 4, f = og_wan_vae_scale_factor(vae);
    float *z = malloc(sizeof(float) * (size_t)(c * h * w));
    if (!z)
        return og_fail(OG_ERR_OOM, "Qwen-Image decode: no memory for %lldx%lld latents",
                       (long long)h, (long long)w);
    og_status s = og_qwenimage_unpack(z, tokens, n, channels, h, w);
    if (s == OG_OK) {
        og_wan_vae_unscale(vae, z, z, 1, h, w); /* elementwise, so in place */
        s = og_wan_vae_decode(vae, z, c, 1, h, w, image); /* [3, 1, H, W]: the one frame */
    }
    free(z);
    if (s == OG_OK)
        og_vae_postprocess(image, 3 * f * h * f * w);
    return s;
}
