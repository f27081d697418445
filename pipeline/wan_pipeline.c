/* Wan2.1 text-to-video behind the public API (diffusers WanPipeline, text-to-video, batch 1, on
 * the CPU in fp32): the folder's classes and configs at og_load_dir, validation, the weights at
 * the first og_generate, then one generation: the prompt (and, with guidance > 1, the negative
 * prompt) through the umT5 tokenizer and encoder, zero-padded to max_sequence_length rows;
 * seeded noise [z_dim, T, H/8, W/8]; the denoising loop on cfg·ring·ulysses ranks through
 * og_ctx_run_ranks (the launch machinery Z-Image uses); the VAE decode on one thread (world
 * rank 0); the frames as RGB bytes and, when asked, an MP4 (or a PNG for one frame).
 *
 * As in zimage_pipeline.c every rank holds the whole latent and gets the whole flow prediction
 * back from og_wan_forward, so the scheduler step runs replicated (each rank its own og_unipc,
 * bit-identical) and no broadcast is needed. Guidance is WanPipeline's
 * `uncond + s·(cond − uncond)`, on only when s > 1; cfg_degree 2 gives each CFG group one branch
 * and the two swap their predictions (og_sp_cfg_exchange). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/wan.h"
#include "io/image.h"
#include "io/video.h"
#include "parallel/sp.h"
#include "pipeline/pipeline_internal.h"
#include "samplers/flowmatch.h"
#include "samplers/noise.h"
#include "samplers/unipc.h"
#include "text/prompt_clean.h"
#include "text/umt5.h"
#include "text/unigram.h"
#include "vae/autoencoder_kl_wan.h"

#define WAN_DEFAULT_FRAMES 81 /* WanPipeline's num_frames default */
#define WAN_DEFAULT_FPS 16    /* the frame rate Wan2.1 was trained at */

struct og_wan_pipe {
    og_wan_config dit_cfg;
    char dit_dir[4096], vae_dir[4096], text_dir[4096];
    og_unigram *tok;
    bool euler; /* FlowMatchEulerDiscreteScheduler instead of UniPC */
    og_unipc_config unipc;
    og_flowmatch_config flow;
    int z_dim, vae_spatial, vae_temporal; /* latent channels; pixels / frames per latent one */
    /* Loaded on the first og_generate. */
    og_umt5 *text;
    og_wan *dit;
    og_wan_vae *vae;
};

/* ---- the folder ------------------------------------------------------------------------------- */

/* The VAE's spatial and temporal factors from its structure (what the decoder produces), checked
 * against scale_factor_spatial / scale_factor_temporal when the config has them. */
static og_status read_vae_config(og_ctx *ctx, og_wan_pipe *w)
{
    og_config *cfg;
    OG_TRY(og_model_dir_config(ctx->md, "vae", NULL, "AutoencoderKLWan", &cfg));
    int64_t mult[16], z_dim, sf_s, sf_t;
    bool down[16];
    int n_mult = 0, n_down = 0;
    og_status s = og_config_int_or(cfg, "z_dim", 16, &z_dim);
    if (s == OG_OK && og_config_has(cfg, "dim_mult"))
        s = og_config_int_array(cfg, "dim_mult", mult, 16, &n_mult);
    else
        n_mult = 4;
    if (s == OG_OK && og_config_has(cfg, "temperal_downsample"))
        s = og_config_bool_array(cfg, "temperal_downsample", down, 16, &n_down);
    else
        down[0] = false, down[1] = down[2] = true, n_down = 3;
    int t = 1;
    for (int i = 0; i < n_down; i++)
        t *= down[i] ? 2 : 1;
    w->z_dim = (int)z_dim;
    w->vae_spatial = n_mult >= 1 ? 1 << (n_mult - 1) : 1;
    w->vae_temporal = t;
    if (s == OG_OK)
        s = og_config_int_or(cfg, "scale_factor_spatial", w->vae_spatial, &sf_s);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "scale_factor_temporal", w->vae_temporal, &sf_t);
    og_config_free(cfg);
    OG_TRY(s);
    if (sf_s != w->vae_spatial || sf_t != w->vae_temporal)
        return og_fail(OG_ERR_FORMAT, "vae/config.json: scale_factor_spatial %lld / "
                                      "scale_factor_temporal %lld do not match dim_mult and "
                                      "temperal_downsample (%d / %d)",
                       (long long)sf_s, (long long)sf_t, w->vae_spatial, w->vae_temporal);
    if (w->z_dim != w->dit_cfg.in_channels || w->z_dim != w->dit_cfg.out_channels)
        return og_fail(OG_ERR_FORMAT, "vae/config.json has z_dim %d but the transformer takes %d "
                                      "channels and predicts %d",
                       w->z_dim, w->dit_cfg.in_channels, w->dit_cfg.out_channels);
    return OG_OK;
}

static og_status read_text_config(og_ctx *ctx, og_wan_pipe *w)
{
    og_config *cfg;
    OG_TRY(og_model_dir_config(ctx->md, "text_encoder", NULL, NULL, &cfg));
    int64_t d_model;
    og_status s = og_config_int(cfg, "d_model", &d_model);
    og_config_free(cfg);
    OG_TRY(s);
    if (d_model != w->dit_cfg.text_dim)
        return og_fail(OG_ERR_FORMAT, "text_encoder/config.json has d_model %lld but the "
                                      "transformer's text_dim is %d",
                       (long long)d_model, w->dit_cfg.text_dim);
    return OG_OK;
}

static og_status read_scheduler(og_ctx *ctx, og_wan_pipe *w)
{
    const char *cls;
    OG_TRY(og_model_dir_component(ctx->md, "scheduler", NULL, &cls));
    w->euler = strcmp(cls, "FlowMatchEulerDiscreteScheduler") == 0;
    if (!w->euler && strcmp(cls, "UniPCMultistepScheduler") != 0)
        return og_fail(OG_ERR_UNSUPPORTED, "model_index.json lists the scheduler as %s; omnigen "
                                           "runs Wan with UniPCMultistepScheduler or "
                                           "FlowMatchEulerDiscreteScheduler",
                       cls);
    char path[4096];
    OG_TRY(og_model_dir_path(ctx->md, "scheduler", "scheduler_config.json", path, sizeof path));
    og_status s = w->euler ? og_flowmatch_config_read(path, &w->flow)
                           : og_unipc_config_read(path, &w->unipc);
    if (s == OG_OK && w->euler && w->flow.use_dynamic_shifting)
        s = og_fail(OG_ERR_UNSUPPORTED, "use_dynamic_shifting needs a mu that WanPipeline never "
                                        "passes");
    return s == OG_OK ? OG_OK : og_fail_context(s, "scheduler");
}

og_status og_wan_pipe_open(og_ctx *ctx)
{
    if (ctx->lp.backend != OG_BACKEND_CPU)
        return og_fail(OG_ERR_UNSUPPORTED, "Wan2.1 runs on the CPU only so far: use --backend "
                                           "cpu");
    if (ctx->lp.precision != OG_PRECISION_FP32)
        return og_fail(OG_ERR_UNSUPPORTED, "Wan2.1 runs in fp32 only so far: use --precision "
                                           "fp32");
    og_wan_pipe *w = calloc(1, sizeof *w);
    if (!w)
        return og_fail(OG_ERR_OOM, "out of memory");
    ctx->wan = w;
    const og_model_dir *md = ctx->md;
    OG_TRY(og_expect_component(md, "transformer",
                               (const char *[]){"WanTransformer3DModel", NULL}));
    OG_TRY(og_expect_component(md, "vae", (const char *[]){"AutoencoderKLWan", NULL}));
    OG_TRY(og_expect_component(md, "text_encoder",
                               (const char *[]){"UMT5EncoderModel", "T5EncoderModel", NULL}));
    OG_TRY(og_expect_component(md, "tokenizer",
                               (const char *[]){"T5TokenizerFast", "T5Tokenizer", NULL}));
    const char *cls2;
    if (og_model_dir_component(md, "transformer_2", NULL, &cls2) == OG_OK)
        return og_fail(OG_ERR_UNSUPPORTED, "model_index.json has a transformer_2 (Wan2.2's "
                                           "two-stage denoising), which omnigen does not run");
    char tok_dir[4096];
    OG_TRY(og_model_dir_path(md, "transformer", NULL, w->dit_dir, sizeof w->dit_dir));
    OG_TRY(og_model_dir_path(md, "vae", NULL, w->vae_dir, sizeof w->vae_dir));
    OG_TRY(og_model_dir_path(md, "text_encoder", NULL, w->text_dir, sizeof w->text_dir));
    OG_TRY(og_model_dir_path(md, "tokenizer", NULL, tok_dir, sizeof tok_dir));
    og_status s = og_unigram_load(&w->tok, tok_dir);
    if (s != OG_OK)
        return og_fail_context(s, "loading the tokenizer");
    OG_TRY(read_scheduler(ctx, w));
    if ((s = og_wan_read_config(w->dit_dir, &w->dit_cfg)) != OG_OK)
        return og_fail_context(s, "transformer");
    OG_TRY(read_vae_config(ctx, w));
    return read_text_config(ctx, w);
}

void og_wan_pipe_free(og_wan_pipe *w)
{
    if (!w)
        return;
    og_umt5_free(w->text);
    og_wan_free(w->dit);
    og_wan_vae_free(w->vae);
    og_unigram_free(w->tok);
    free(w);
}

int og_wan_pipe_size_multiple(const og_wan_pipe *w)
{
    return w->vae_spatial * w->dit_cfg.patch[1];
}

int og_wan_pipe_heads(const og_wan_pipe *w) { return w->dit_cfg.heads; }

static int min_int(int a, int b) { return a < b ? a : b; }

void og_wan_pipe_defaults(const og_wan_pipe *w, og_gen_params *p)
{
    const og_wan_config *c = &w->dit_cfg;
    p->height = min_int(480, c->rope_max_seq_len * c->patch[1] * w->vae_spatial);
    p->width = min_int(832, c->rope_max_seq_len * c->patch[2] * w->vae_spatial);
    p->frames = min_int(WAN_DEFAULT_FRAMES, 1 + w->vae_temporal * (c->rope_max_seq_len * c->patch[0] - 1));
    p->steps = 50;
    p->guidance_scale = 5.0f;
    p->fps = WAN_DEFAULT_FPS;
}

og_status og_wan_pipe_load_weights(og_ctx *ctx)
{
    og_wan_pipe *w = ctx->wan;
    og_status s;
    if (!w->text && (s = og_umt5_load(&w->text, w->text_dir)) != OG_OK)
        return og_fail_context(s, "loading the text encoder");
    if (!w->dit && (s = og_wan_load(&w->dit, w->dit_dir)) != OG_OK)
        return og_fail_context(s, "loading the transformer");
    if (!w->vae && (s = og_wan_vae_load(&w->vae, w->vae_dir)) != OG_OK)
        return og_fail_context(s, "loading the VAE");
    if (og_wan_vae_z_dim(w->vae) != w->z_dim ||
        og_wan_vae_scale_factor(w->vae) != w->vae_spatial ||
        og_wan_vae_frames(w->vae, 2) != 1 + w->vae_temporal)
        return og_fail(OG_ERR_FORMAT, "the VAE's weights do not match vae/config.json");
    return OG_OK;
}

/* ---- the request ------------------------------------------------------------------------------ */

static bool uses_cfg(const og_gen_params *p) { return p->guidance_scale > 1.0f; }

static int frames_of(const og_gen_params *p) { return p->frames ? p->frames : WAN_DEFAULT_FRAMES; }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static og_status prompt_ids(const og_wan_pipe *w, const og_gen_params *p, int branch,
                            int32_t **ids, int *n)
{
    const char *text = branch ? (p->negative_prompt ? p->negative_prompt : "") : p->prompt;
    char *clean;
    og_status s = og_prompt_clean(text, &clean); /* WanPipeline's prompt_clean (no ftfy) */
    if (s != OG_OK)
        return og_fail_context(s, branch ? "negative prompt" : "prompt");
    s = og_unigram_encode(w->tok, clean, strlen(clean), true, p->max_sequence_length, ids, n);
    free(clean);
    return s == OG_OK ? OG_OK : og_fail_context(s, branch ? "negative prompt" : "prompt");
}

static og_status check_frames(const og_wan_pipe *w, int frames)
{
    const int k = w->vae_temporal;
    if (frames < 1)
        return og_fail(OG_ERR_INVALID_ARG, "frames must be at least 1, got %d (valid: 1, %d, %d, "
                                           "...: 1 + %dk)",
                       frames, 1 + k, 1 + 2 * k, k);
    if ((frames - 1) % k != 0) {
        int lo = (frames - 1) / k * k + 1;
        return og_fail(OG_ERR_INVALID_ARG, "frames %d is not 1 + %dk (the VAE makes %d frames "
                                           "per latent frame after the first): try %d or %d",
                       frames, k, k, lo, lo + k);
    }
    return OG_OK;
}

static og_status check_output_kind(const og_gen_params *p, int frames)
{
    if (ends_with(p->output, ".mp4")) {
        if (!og_video_encoder_name())
            return og_fail(OG_ERR_UNSUPPORTED, "cannot write %s: this omnigen was built without "
                                               "FFmpeg's libraries (libavcodec)",
                           p->output);
        return OG_OK;
    }
    if (ends_with(p->output, ".png")) {
        if (frames != 1)
            return og_fail(OG_ERR_INVALID_ARG, "%s: a PNG holds one frame but this video has %d; "
                                               "write an .mp4, or ask for 1 frame",
                           p->output, frames);
        return OG_OK;
    }
    return og_fail(OG_ERR_INVALID_ARG, "%s: a video model writes .mp4 files (or .png for a single "
                                       "frame)",
                   p->output);
}

og_status og_wan_pipe_validate(const og_ctx *ctx, const og_gen_params *p)
{
    const og_wan_pipe *w = ctx->wan;
    if (!p->prompt)
        return og_fail(OG_ERR_INVALID_ARG, "no prompt given");
    if (p->max_sequence_length < 1)
        return og_fail(OG_ERR_INVALID_ARG, "max_sequence_length must be at least 1, got %d",
                       p->max_sequence_length);
    const int frames = frames_of(p);
    OG_TRY(check_frames(w, frames));
    const int m = og_wan_pipe_size_multiple(w);
    OG_TRY(og_check_size("width", p->width, m));
    OG_TRY(og_check_size("height", p->height, m));
    if (p->steps < 1)
        return og_fail(OG_ERR_INVALID_ARG, "steps must be at least 1, got %d", p->steps);
    if (!isfinite(p->guidance_scale) || p->guidance_scale < 0)
        return og_fail(OG_ERR_INVALID_ARG, "guidance_scale must be a number >= 0, got %g",
                       p->guidance_scale);
    if (p->fps < 0)
        return og_fail(OG_ERR_INVALID_ARG, "fps must be positive, got %d", p->fps);
    if (p->parallel.cfg_degree == 2 && !uses_cfg(p))
        return og_fail(OG_ERR_PARALLEL, "cfg_degree 2 runs the two guidance branches on separate "
                                        "ranks, but Wan guides only when guidance_scale > 1 "
                                        "(got %g): use --cfg-degree 1 or a larger scale",
                       p->guidance_scale);
    for (int b = 0; b < (uses_cfg(p) ? 2 : 1); b++) {
        int32_t *ids;
        int n;
        OG_TRY(prompt_ids(w, p, b, &ids, &n));
        free(ids);
    }
    const int64_t T = (frames - 1) / w->vae_temporal + 1;
    OG_TRY(og_wan_check_layout(&w->dit_cfg, &p->parallel, T, p->height / w->vae_spatial,
                               p->width / w->vae_spatial, p->max_sequence_length, 0));
    OG_TRY(og_ctx_check_launch(ctx, p));
    if (p->output && og_ctx_writes_outputs(ctx)) {
        OG_TRY(check_output_kind(p, frames));
        OG_TRY(og_check_output(p->output));
    }
    return OG_OK;
}

/* ---- the denoising loop, one call per rank ---------------------------------------------------- */

typedef struct {
    og_wan_pipe *w;
    const og_gen_params *p;
    int64_t T, h, w_lat, n; /* latent frames, height, width; n = z_dim·T·h·w */
    int64_t text_len;       /* rows of each prompt embedding (max_sequence_length) */
    const float *cap[2];    /* [0] the prompt, [1] the negative prompt (with guidance) */
    const float *init;
    float *final; /* world rank 0 writes the final latents here */
} wan_job;

typedef struct {
    og_sp *sp;
    og_arena scratch;
    og_unipc unipc;
    float *sigmas, *timesteps; /* FlowMatch Euler's schedule */
    float *x, *v, *other;
} wan_rank;

static void wan_rank_free(wan_rank *r)
{
    free(r->x);
    free(r->v);
    free(r->other);
    free(r->sigmas);
    free(r->timesteps);
    og_unipc_free(&r->unipc);
    og_arena_free(&r->scratch);
    og_sp_free(r->sp);
}

static og_status wan_forward(const wan_job *j, wan_rank *r, float t, int branch, float *out)
{
    return og_wan_forward(j->w->dit, r->sp, r->x, j->T, j->h, j->w_lat, t, j->cap[branch],
                          j->text_len, out, &r->scratch);
}

typedef struct {
    const wan_job *j;
    wan_rank *r;
    float t;
} wan_branch_arg;

static og_status wan_forward_branch(void *arg, int branch, float *out)
{
    const wan_branch_arg *a = arg;
    return wan_forward(a->j, a->r, a->t, branch, out);
}

/* The guided prediction in r->v: WanPipeline's uncond + s·(cond − uncond) in fp32. */
static og_status wan_velocity(const wan_job *j, wan_rank *r, float t)
{
    const og_gen_params *p = j->p;
    if (!uses_cfg(p))
        return wan_forward(j, r, t, 0, r->v);
    const float *pos, *neg;
    wan_branch_arg a = {j, r, t};
    OG_TRY(og_cfg_branches(r->sp, p->parallel.cfg_degree, j->n, wan_forward_branch, &a, r->v,
                           r->other, &pos, &neg));
    const float s = p->guidance_scale;
    float *out = r->v;
    for (int64_t i = 0; i < j->n; i++) {
        float d = pos[i] - neg[i];
        float sd = s * d;
        out[i] = neg[i] + sd;
    }
    return OG_OK;
}

static og_status wan_rank_run(og_comm *world, const wan_job *j, wan_rank *r)
{
    const og_gen_params *p = j->p;
    OG_TRY(og_sp_create(&r->sp, &p->parallel, world));
    OG_TRY(og_arena_init(&r->scratch,
                         og_wan_scratch_bytes(j->w->dit, j->T, j->h, j->w_lat, j->text_len, r->sp)));
    OG_TRY(og_rank_latents(j->init, j->n, &r->x, &r->v, &r->other));
    const og_wan_pipe *w = j->w;
    if (w->euler) {
        r->sigmas = malloc(sizeof(float) * (size_t)(p->steps + 1));
        r->timesteps = malloc(sizeof(float) * (size_t)p->steps);
        if (!r->sigmas || !r->timesteps)
            return og_fail(OG_ERR_OOM, "out of memory");
        OG_TRY(og_flowmatch_set_timesteps(&w->flow, p->steps, NULL, NULL, r->sigmas,
                                          r->timesteps));
    } else {
        OG_TRY(og_unipc_init(&r->unipc, &w->unipc, j->n));
        OG_TRY(og_unipc_set_timesteps(&r->unipc, p->steps, NULL));
        og_unipc_set_begin_index(&r->unipc, 0);
    }
    bool reporter = og_sp_world_rank(r->sp) == 0;
    double t0 = og_now_s();
    for (int i = 0; i < p->steps; i++) {
        if (w->euler) {
            OG_TRY(wan_velocity(j, r, r->timesteps[i]));
            og_flowmatch_step(r->sigmas, i, r->x, r->v, j->n, false);
        } else {
            int64_t t = r->unipc.timesteps[i];
            OG_TRY(wan_velocity(j, r, (float)t));
            OG_TRY(og_unipc_step(&r->unipc, r->v, t, r->x));
        }
        if (reporter && p->progress)
            p->progress(p->progress_user, OG_PHASE_DENOISE, i + 1, p->steps, og_now_s() - t0);
    }
    if (reporter)
        memcpy(j->final, r->x, sizeof(float) * (size_t)j->n);
    return OG_OK;
}

static og_status wan_rank_fn(og_comm *world, void *arg)
{
    wan_rank r = {0};
    og_status s = wan_rank_run(world, arg, &r);
    wan_rank_free(&r);
    return s;
}

/* ---- one generation --------------------------------------------------------------------------- */

/* Each branch's embedding [max_sequence_length, text_dim]: the real tokens' rows, then zeros. */
static og_status encode_prompts(og_wan_pipe *w, const og_gen_params *p, float **cap)
{
    const int dim = og_umt5_hidden(w->text), L = p->max_sequence_length;
    for (int b = 0; b < (uses_cfg(p) ? 2 : 1); b++) {
        int32_t *ids;
        int n;
        OG_TRY(prompt_ids(w, p, b, &ids, &n));
        cap[b] = malloc(sizeof(float) * (size_t)L * dim);
        og_status s = cap[b] ? og_umt5_encode(w->text, ids, n, cap[b])
                             : og_fail(OG_ERR_OOM, "out of memory for the prompt embeddings");
        free(ids);
        OG_TRY(s);
        og_umt5_pad_embeds(cap[b], n, L, dim);
    }
    return OG_OK;
}

static og_status write_output(const og_ctx *ctx, const og_gen_params *p,
                              const og_image_result *out, int fps)
{
    char seed[32], steps[16], guidance[32], frames[16], fps_s[16], parallel[128], software[64];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    snprintf(steps, sizeof steps, "%d", p->steps);
    snprintf(guidance, sizeof guidance, "%g", p->guidance_scale);
    snprintf(frames, sizeof frames, "%d", out->frames);
    snprintf(fps_s, sizeof fps_s, "%d", fps);
    snprintf(parallel, sizeof parallel, "ulysses %d x ring %d x cfg %d (%s)",
             p->parallel.ulysses_degree, p->parallel.ring_degree, p->parallel.cfg_degree,
             og_ulysses_mode_name(p->parallel.ulysses_mode));
    snprintf(software, sizeof software, "omnigen %s", OG_VERSION);
    og_image_text kv[10] = {
        {"prompt", p->prompt}, {"seed", seed}, {"steps", steps}, {"guidance_scale", guidance},
        {"frames", frames}, {"model", og_model_path(ctx)}, {"parallel", parallel},
        {"software", software}, {"fps", fps_s},
    };
    int n = 9;
    if (uses_cfg(p))
        kv[n++] = (og_image_text){"negative_prompt", p->negative_prompt ? p->negative_prompt : ""};
    if (ends_with(p->output, ".png"))
        return og_image_write_png(p->output, out->rgb, out->width, out->height, kv, n);
    return og_video_write_mp4(p->output, out->rgb, out->frames, out->width, out->height, fps, kv,
                              n);
}

static og_status decode(og_wan_pipe *w, const og_gen_params *p, og_image_result *out)
{
    const int64_t T = out->latent_frames, h = out->latent_height, wl = out->latent_width;
    const int64_t F = out->frames, H = p->height, W = p->width;
    const int64_t n_lat = (int64_t)w->z_dim * T * h * wl, n_px = 3 * F * H * W;
    float *z = malloc(sizeof(float) * (size_t)n_lat);
    float *video = malloc(sizeof(float) * (size_t)n_px);
    float *frames = malloc(sizeof(float) * (size_t)n_px);
    out->rgb = malloc((size_t)n_px);
    og_status s = OG_OK;
    if (!z || !video || !frames || !out->rgb)
        s = og_fail(OG_ERR_OOM, "out of memory for %lld frames of %lldx%lld", (long long)F,
                    (long long)W, (long long)H);
    if (s == OG_OK) {
        og_wan_vae_unscale(w->vae, z, out->latents, T, h, wl);
        s = og_wan_vae_decode(w->vae, z, w->z_dim, T, h, wl, video);
    }
    if (s == OG_OK) {
        og_wan_vae_to_frames(frames, video, F, H, W);
        for (int64_t f = 0; f < F; f++)
            og_image_to_u8(out->rgb + f * 3 * H * W, frames + f * 3 * H * W, H, W);
    }
    free(z);
    free(video);
    free(frames);
    return s;
}

og_status og_wan_pipe_generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out,
                               double t_start)
{
    og_wan_pipe *w = ctx->wan;
    og_set_threads(og_ctx_threads(ctx, p));
    og_report_phase(p, OG_PHASE_ENCODE, t_start);
    float *cap[2] = {NULL, NULL}, *init = NULL;
    og_status s = encode_prompts(w, p, cap);

    const int frames = frames_of(p);
    const int64_t T = (frames - 1) / w->vae_temporal + 1;
    const int64_t h = p->height / w->vae_spatial, wl = p->width / w->vae_spatial;
    const int64_t n = (int64_t)w->z_dim * T * h * wl;
    out->latent_channels = w->z_dim;
    out->latent_frames = (int)T;
    out->latent_height = (int)h;
    out->latent_width = (int)wl;
    out->frames = frames;
    if (s == OG_OK && (!(out->latents = malloc(sizeof(float) * (size_t)n)) ||
                       !(init = malloc(sizeof(float) * (size_t)n))))
        s = og_fail(OG_ERR_OOM, "out of memory for the latents");
    if (s == OG_OK) {
        if (p->initial_latents)
            memcpy(init, p->initial_latents, sizeof(float) * (size_t)n);
        else
            og_noise_normal(init, n, p->seed, 0);
        out->seconds_encode = og_now_s() - t_start;
        double t_loop = og_now_s();
        wan_job job = {.w = w, .p = p, .T = T, .h = h, .w_lat = wl, .n = n,
                       .text_len = p->max_sequence_length, .cap = {cap[0], cap[1]},
                       .init = init, .final = out->latents};
        s = og_ctx_run_ranks(ctx, p, wan_rank_fn, &job);
        out->seconds_denoise = og_now_s() - t_loop;
    }
    free(cap[0]);
    free(cap[1]);
    free(init);
    OG_TRY(s);
    if (!og_ctx_writes_outputs(ctx)) { /* world rank 0 decodes and writes */
        og_image_result_free(out);
        return OG_OK;
    }
    double t_dec = og_now_s();
    og_report_phase(p, OG_PHASE_DECODE, t_start);
    OG_TRY(decode(w, p, out));
    out->width = p->width;
    out->height = p->height;
    if (p->output)
        OG_TRY(write_output(ctx, p, out, p->fps ? p->fps : WAN_DEFAULT_FPS));
    out->seconds_decode = og_now_s() - t_dec;
    og_report_phase(p, OG_PHASE_DONE, t_start);
    return OG_OK;
}
