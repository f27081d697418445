/* omnigen — text to image, the public C API. This is the one header an application includes.
 *
 *     #include "pipeline/omnigen.h"
 *
 *     og_ctx *ctx;
 *     og_load_params lp = OG_LOAD_PARAMS_DEFAULT;
 *     if (og_load_dir(&ctx, "models/zimage-tiny", &lp) != OG_OK) {
 *         fprintf(stderr, "omnigen: %s\n", og_error_message());
 *         return 1;
 *     }
 *     og_gen_params p = OG_GEN_PARAMS_DEFAULT;
 *     p.prompt = "a cat on a windowsill";
 *     p.width = p.height = 256;
 *     p.seed = 7;
 *     p.parallel.ulysses_degree = 2;     // 2 in-process ranks split the attention heads
 *     p.output = "cat.png";              // optional: also write a PNG (atomically)
 *     og_image_result img;
 *     if (og_generate(ctx, &p, &img) != OG_OK)
 *         fprintf(stderr, "omnigen: %s\n", og_error_message());
 *     else
 *         use(img.rgb, img.width, img.height);   // RGB, uint8, row-major HWC
 *     og_image_result_free(&img);
 *     og_free(ctx);
 *
 * What happens where:
 *   - og_load_dir reads model_index.json and every component's config, checks the pipeline and
 *     component classes (ZImagePipeline: ZImageTransformer2DModel, AutoencoderKL, Qwen3Model,
 *     a Qwen2 tokenizer, FlowMatchEulerDiscreteScheduler; QwenImagePipeline:
 *     QwenImageTransformer2DModel, AutoencoderKLQwenImage, Qwen2_5_VLForConditionalGeneration, a
 *     Qwen2 tokenizer, FlowMatch Euler — CPU fp32 only, docs/qwen-image.md; WanPipeline:
 *     WanTransformer3DModel, AutoencoderKLWan, UMT5EncoderModel, a T5 tokenizer, UniPC or FlowMatch Euler — text to
 *     video, CPU fp32 only, docs/wan.md) and loads the tokenizer. Weights are
 *     memory-mapped and checked on the first og_generate, after that call's parameters were
 *     validated, and then stay loaded for every later call (a batch loads them once).
 *   - og_generate validates every parameter before touching weights: sizes (a multiple of
 *     og_size_multiple(ctx), 16 for Z-Image: VAE factor 8 × patch 2), steps >= 1, and the
 *     parallel layout against the model's heads, the image-token count and the devices. It then
 *     encodes the prompt (and the negative prompt when guidance_scale > 0), draws seeded noise,
 *     runs the denoising loop on cfg·ring·ulysses ranks (threads of this process, or one rank
 *     per process with og_load_params.world), decodes on rank 0 and
 *     writes the PNG when p.output is set. The same seed gives the same image for every parallel
 *     layout and thread count.
 *   - Errors: every call returns an og_status; the message is in og_error_message() (per
 *     thread). Nothing in the library prints errors; progress goes only to the callback.
 *   - Thread safety: one og_generate at a time per og_ctx. */
#ifndef OG_OMNIGEN_H
#define OG_OMNIGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "parallel/config.h"

typedef struct og_ctx og_ctx;

/* AUTO: cuda when the build has CUDA, a GPU is visible and the folder's pipeline runs on it
 * (Z-Image), else cpu; og_load_dir resolves it, so a loaded context never holds AUTO. */
typedef enum { OG_BACKEND_CPU = 0, OG_BACKEND_CUDA, OG_BACKEND_AUTO } og_backend;

/* "cpu" / "cuda" / "auto"; OG_ERR_INVALID_ARG naming the valid values otherwise. */
og_status og_backend_parse(const char *s, og_backend *out);
const char *og_backend_name(og_backend b);

/* CPU compute precision. fp32 (the default) reproduces the reference to fp32 rounding; bf16 runs
 * the matrix products on AMX through oneDNN (about 2.5x faster per DiT step on the development
 * CPU, about 3e-3 relative error) and fails with OG_ERR_UNSUPPORTED in an OpenBLAS build. The
 * setting is process-wide (it is og_gemm_set_precision), applied when the weights load. */
typedef enum { OG_PRECISION_FP32 = 0, OG_PRECISION_BF16 } og_precision;

/* "fp32" / "bf16"; OG_ERR_INVALID_ARG naming the valid values otherwise. */
og_status og_precision_parse(const char *s, og_precision *out);
const char *og_precision_name(og_precision p);

typedef struct og_comm og_comm; /* parallel/comm.h */

typedef struct {
    og_backend backend;     /* where the weights live and the DiT runs */
    const char *devices;    /* GPUs to use with cuda, e.g. "0,1"; NULL = every visible GPU */
    og_precision precision; /* CPU compute precision */
    /* NULL (or a world of 1): the ranks are threads of this process. Otherwise a host
     * communicator over several processes (og_comm_mpi_world), one rank each: every process
     * calls og_load_dir, og_validate and og_generate in the same order with the same arguments.
     * Failures before and after the denoising loop are agreed on (every process returns the
     * failing rank's error, "rank N: ..."); a failure inside it ends the job (og_comm_abort).
     * Only world rank 0 decodes and writes the output. The caller owns the communicator. */
    og_comm *world;
} og_load_params;

#define OG_LOAD_PARAMS_DEFAULT                                                               \
    ((og_load_params){.backend = OG_BACKEND_CPU, .devices = NULL, .precision = OG_PRECISION_FP32, \
                      .world = NULL})

/* The stages of one generation, as progress reports them. */
typedef enum { OG_PHASE_ENCODE = 0, OG_PHASE_DENOISE, OG_PHASE_DECODE, OG_PHASE_DONE } og_phase;

/* Progress report: `phase` is starting (ENCODE, DECODE) or finished (DENOISE step `step` of
 * `steps`, counted from 1; DONE). `elapsed_s` counts from the start of the denoising loop for
 * DENOISE, and from the start of og_generate otherwise. Called from one thread at a time. */
typedef void (*og_progress_fn)(void *user, og_phase phase, int step, int steps, double elapsed_s);

typedef struct {
    const char *prompt;          /* required, UTF-8 */
    const char *negative_prompt; /* used when guidance_scale > 0; NULL = "" (Qwen-Image: true
                                  * CFG needs one and guidance_scale > 1; Wan: scale > 1) */
    int width, height;           /* pixels; multiples of og_size_multiple() */
    int steps;                   /* denoising steps, >= 1 */
    float guidance_scale;        /* 0 = no classifier-free guidance (Turbo); > 0 runs both branches */
    uint64_t seed;               /* the noise seed: same seed, same image, on every layout */
    int max_sequence_length;     /* prompt tokens kept after the chat template (reference: 512) */
    og_parallel_config parallel; /* ulysses × ring × cfg ranks (see og_load_params.world) */
    int threads;                 /* CPU threads of this process, split over its ranks; <= 0 =
                                  * its share of the node's cores */
    const char *output;          /* when set, the PNG is written there (temp file + rename) */
    og_progress_fn progress;     /* optional */
    void *progress_user;
    /* Test hook: when set, [16, height/8, width/8] f32 latents used instead of the seeded noise
     * (the reference fixtures were drawn by torch's RNG, which omnigen does not reproduce);
     * [16, latent frames, height/8, width/8] for a video model. */
    const float *initial_latents;
    /* Video models (og_model_is_video): frames to make, 1 + 4k for Wan2.1 (0 = the model's
     * default, 81 for Wan2.1); output ending in .mp4 gets an MP4 at fps frames per second (0 =
     * the model's, 16 for Wan2.1), .png the frame of a 1-frame request. Wan guides only when
     * guidance_scale > 1, as WanPipeline (its default is 5). Image models take frames 0 or 1. */
    int frames;
    int fps;
} og_gen_params;

#define OG_GEN_PARAMS_DEFAULT                                                              \
    ((og_gen_params){.prompt = NULL, .negative_prompt = NULL, .width = 1024, .height = 1024, \
                     .steps = 8, .guidance_scale = 0.0f, .seed = 42, .max_sequence_length = 512, \
                     .parallel = OG_PARALLEL_CONFIG_DEFAULT, .threads = 0, .output = NULL,    \
                     .progress = NULL, .progress_user = NULL, .initial_latents = NULL})

typedef struct {
    int width, height;  /* pixels */
    int frames;         /* 1 for an image; a video's frame count */
    uint8_t *rgb;       /* frames x width*height*3 bytes, row-major, RGB, frame after frame */
    /* The final latents before the VAE ([latent_channels, latent_height, latent_width] f32). */
    int latent_channels, latent_height, latent_width;
    int latent_frames; /* video: latents are [latent_channels, latent_frames, h, w]; else 1 */
    float *latents;
    double seconds_encode, seconds_denoise, seconds_decode;
} og_image_result;

/* Opens a diffusers model folder (see the top of this file). */
og_status og_load_dir(og_ctx **out, const char *model_dir, const og_load_params *lp);
void og_free(og_ctx *ctx);

/* The pixel multiple width and height must be (VAE scale factor × transformer patch size). */
int og_size_multiple(const og_ctx *ctx);
/* The attention heads of the DiT (what ulysses_degree divides). */
int og_model_heads(const og_ctx *ctx);
/* True for a text-to-video folder (WanPipeline): og_gen_params.frames applies. */
bool og_model_is_video(const og_ctx *ctx);
/* Sets p's size, frames, steps, guidance_scale and fps to the model's own defaults: for Wan2.1
 * WanPipeline's 832x480 (each side clipped to what the transformer's RoPE table holds), 81
 * frames, 50 steps, guidance 5, and 16 fps; for Qwen-Image QwenImagePipeline's 1024x1024, 50
 * steps, guidance (its true_cfg_scale) 4; Z-Image leaves p as it is (OG_GEN_PARAMS_DEFAULT holds
 * Z-Image's). */
void og_model_defaults(const og_ctx *ctx, og_gen_params *p);
/* The folder og_load_dir was given. */
const char *og_model_path(const og_ctx *ctx);

/* Checks p against the model and this build without loading or computing anything: the
 * checks og_generate runs first. */
og_status og_validate(const og_ctx *ctx, const og_gen_params *p);

/* Runs one generation. On success *out owns its buffers (og_image_result_free); on failure *out
 * is zeroed and no output file exists (a partial PNG is never left behind). With a
 * multi-process world (og_load_params.world), *out holds the image only on world rank 0. */
og_status og_generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out);
void og_image_result_free(og_image_result *r);

#endif
