/* Internals of the AutoencoderKL decoder shared by the CPU decoder (vae/autoencoder_kl.c) and the
 * GPU one (core/cuda/vae_cuda.c): the weight record, a walk over its tensors (the GPU upload and
 * its byte count both use it), the device memory plan, and the host steps both decoders share. */
#ifndef OG_VAE_AUTOENCODER_KL_INTERNAL_H
#define OG_VAE_AUTOENCODER_KL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/dtype.h"
#include "io/weights.h"
#include "vae/autoencoder_kl.h"

#define VAE_MAX_BLOCKS 8
#define VAE_MAX_RESNETS 8
#define VAE_EPS 1e-6f /* resnet_eps of every norm in the decoder */

typedef struct {
    const void *w; /* [cout, cin, k, k], stored dtype */
    og_dtype wt;
    const float *b;
    int64_t cin, cout;
    int k;
} vae_conv;

typedef struct {
    const float *w, *b;
} vae_norm;

typedef struct {
    const void *w; /* [c, c], stored dtype */
    og_dtype wt;
    const float *b;
} vae_linear;

typedef struct {
    int64_t cin, cout;
    vae_norm norm1, norm2;
    vae_conv conv1, conv2;
    vae_conv shortcut; /* 1x1, only when cin != cout (w == NULL otherwise) */
} vae_resnet;

typedef struct {
    vae_norm norm;
    vae_linear q, k, v, o;
} vae_attn;

typedef struct {
    int n_res;
    vae_resnet res[VAE_MAX_RESNETS];
    bool upsample;
    vae_conv up_conv;
} vae_up_block;

struct og_vae {
    og_weights *w;
    int n_blocks;
    int64_t block_out[VAE_MAX_BLOCKS];
    int64_t latent_c, out_c;
    int groups;
    float scaling, shift;
    bool has_post_quant, has_attn;
    vae_conv post_quant, conv_in, conv_out;
    vae_resnet mid_res[2];
    vae_attn attn;
    vae_up_block up[VAE_MAX_BLOCKS];
    vae_norm norm_out;
    og_arena arena;
};

/* Called once per tensor of the decoder with its data, its dtype (matrices: the stored dtype,
 * which fn may change; vectors: OG_F32) and its element count; returns what the record keeps in
 * its place (the same pointer when counting, a device pointer when uploading). */
typedef const void *(*og_vae_tensor_fn)(void *arg, const void *data, og_dtype *dt, int64_t n,
                                        bool matrix);
/* Visits every conv and linear weight (matrix) and every bias and norm vector of v, replacing
 * each pointer by fn's result. Run it on a copy of the record to retarget that copy. */
void og_vae_walk_tensors(og_vae *v, og_vae_tensor_fn fn, void *arg);

/* The device memory of a GPU decode of h x w latents. Weights live in a context of their own
 * (reserved once); each decode reserves `work` in a fresh context. Every size is rounded up to
 * the arena's 64-byte alignment. */
typedef struct {
    size_t weights;   /* matrices as bf16, vectors f32 */
    size_t latent;    /* the unscaled latents, bf16 [latent_c, h, w] */
    size_t buffer;    /* each of the three bf16 activation buffers (the largest feature map) */
    size_t attention; /* q, k, v of the mid-block attention, bf16 [h*w, top] each, together */
    size_t workspace; /* headroom for cuDNN's convolution workspace */
    size_t work;      /* latent + 3 buffers + attention + workspace */
} og_vae_device_plan;

/* Room kept in the work arena for cuDNN: og_cuda_conv2d picks the fastest algorithm whose
 * workspace fits in what is left, so more room only buys speed. */
#define OG_VAE_CONV_WORKSPACE ((size_t)256 << 20)

/* Fills the plan; OG_ERR_INVALID_ARG for a latent size below 1 or above 65536. */
og_status og_vae_device_plan_for(const og_vae *v, int64_t h, int64_t w, og_vae_device_plan *out);

/* latents / scaling_factor + shift_factor, in f32 (the pipeline's expression). */
void og_vae_unscale(const og_vae *v, float *z, const float *latents, int64_t n);
/* VaeImageProcessor.denormalize: clamp(x * 0.5 + 0.5, 0, 1), in place. */
void og_vae_postprocess(float *rgb, int64_t n);

#endif
