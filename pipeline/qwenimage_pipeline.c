/* Qwen-Image text to image behind the public API (diffusers QwenImagePipeline 0.42.1, batch 1,
 * on the CPU in fp32): the folder's classes and configs at og_load_dir, validation, the weights
 * at the first og_generate, then one generation: encode_prompt for the prompt (and the negative
 * prompt under true CFG), seeded noise [16, 1, H/8, W/8] packed into 2x2-patch tokens, the
 * schedule sigmas = linspace(1, 1/N, N) shifted by the scheduler with mu from the token count,
 * the denoising loop on cfg·ring·ulysses ranks through og_ctx_run_ranks (the launch machinery
 * of Z-Image and Wan), unpack + VAE decode on one thread (world rank 0), the PNG.
 *
 * As in zimage_pipeline.c every rank holds all tokens and gets the whole prediction back from
 * og_qwenimage_forward, so the Euler step runs replicated and no broadcast is needed. True CFG
 * is QwenImagePipeline's: on only with a negative prompt and a scale above 1 (the API's
 * guidance_scale plays true_cfg_scale), `neg + s·(cond − neg)` rescaled per token to the norm
 * of cond; cfg_degree 2 gives each CFG group one branch and the two swap their predictions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/threads.h"
#include "dit/qwenimage.h"
#include "io/image.h"
#include "parallel/sp.h"
#include "pipeline/pipeline_internal.h"
#include "samplers/flowmatch.h"
#include "samplers/noise.h"
#include "text/qwen3.h"
#include "text/qwenimage_prompt.h"
#include "vae/autoencoder_kl_wan.h"
#include "vae/qwenimage_latents.h"

/* QwenImagePipeline.__call__'s defaults: default_sample_size 128 latents = 1024 pixels, 50
 * steps, true_cfg_scale 4. */
#define QWEN_DEFAULT_SIZE 1024
#define QWEN_DEFAULT_STEPS 50
#define QWEN_DEFAULT_TRUE_CFG 4.0f

struct og_qwenimage_pipe {
    og_qwenimage_config dit_cfg;
    og_flowmatch_config sched;
    char dit_dir[4096], vae_dir[4096], text_dir[4096];
    og_bpe *tok;
    int z_dim, vae_scale; /* latent channels; pixels per latent pixel */
    /* Loaded on the first og_generate. */
    og_qwen3 *text;
    og_qwenimage *dit;
    og_wan_vae *vae;
};

/* ---- the folder ------------------------------------------------------------------------------- */

/* z_dim and the spatial factor 2^len(temperal_downsample), as the pipeline's vae_scale_factor;
 * the transformer must take z_dim·4 channels and predict z_dim·4 (patch 2). */
static og_status read_vae_config(og_ctx *ctx, og_qwenimage_pipe *q)
{
    og_config *cfg;
    OG_TRY(og_model_dir_config(ctx->md, "vae", NULL, "AutoencoderKLQwenImage", &cfg));
    int64_t z_dim;
    bool down[16];
    int n_down = 3;
    og_status s = og_config_int_or(cfg, "z_dim", 16, &z_dim);
    if (s == OG_OK && og_config_has(cfg, "temperal_downsample"))
        s = og_config_bool_array(cfg, "temperal_downsample", down, 16, &n_down);
    og_config_free(cfg);
    OG_TRY(s);
    q->z_dim = (int)z_dim;
    q->vae_scale = 1 << n_down;
    const og_qwenimage_config *c = &q->dit_cfg;
    const int packed = q->z_dim * c->patch * c->patch;
    if (c->in_channels != packed || c->out_channels * c->patch * c->patch != packed)
        return og_fail(OG_ERR_FORMAT, "vae/config.json has z_dim %d (packed tokens of %d "
                                      "channels) but the transformer takes %d and predicts %d",
                       q->z_dim, packed, c->in_channels, c->out_channels * c->patch * c->patch);
    return OG_OK;
}

/* The text encoder's hidden size (nested text_config, or the older flat layout) is the
 * transformer's joint_attention_dim. */
static og_status read_text_config(og_ctx *ctx, og_qwenimage_pipe *q)
{
    og_config *cfg;
    OG_TRY(og_model_dir_config(ctx->md, "text_encoder", NULL, NULL, &cfg));
    int64_t hidden;
    og_status s = og_config_int(cfg, og_config_has(cfg, "text_config.hidden_size")
                                         ? "text_config.hidden_size"
                                         : "hidden_size",
                                &hidden);
    og_config_free(cfg);
    OG_TRY(s);
    if (hidden != q->dit_cfg.joint_dim)
        return og_fail(OG_ERR_FORMAT, "text_encoder/config.json has hidden_size %lld but the "
                                      "transformer's joint_attention_dim is %d",
                       (long long)hidden, q->dit_cfg.joint_dim);
    return OG_OK;
}

og_status og_qwenimage_pipe_open(og_ctx *ctx)
{
    if (ctx->lp.backend != OG_BACKEND_CPU)
        return og_fail(OG_ERR_UNSUPPORTED, "Qwen-Image runs on the CPU only so far: use "
                                           "--backend cpu");
    if (ctx->lp.precision != OG_PRECISION_FP32)
        return og_fail(OG_ERR_UNSUPPORTED, "Qwen-Image runs in fp32 only so far: use "
                                           "--precision fp32");
    og_qwenimage_pipe *q = calloc(1, sizeof *q);
    if (!q)
        return og_fail(OG_ERR_OOM, "out of memory");
    ctx->qwen = q;
    const og_model_dir *md = ctx->md;
    OG_TRY(og_expect_component(md, "transformer",
                               (const char *[]){"QwenImageTransformer2DModel", NULL}));
    OG_TRY(og_expect_component(md, "vae", (const char *[]){"AutoencoderKLQwenImage", NULL}));
    OG_TRY(og_expect_component(md, "text_encoder",
                               (const char *[]){"Qwen2_5_VLForConditionalGeneration", NULL}));
    OG_TRY(og_expect_component(md, "tokenizer",
                               (const char *[]){"Qwen2Tokenizer", "Qwen2TokenizerFast", NULL}));
    OG_TRY(og_expect_component(md, "scheduler",
                               (const char *[]){"FlowMatchEulerDiscreteScheduler", NULL}));
    char tok_dir[4096], sched_path[4096];
    OG_TRY(og_model_dir_path(md, "transformer", NULL, q->dit_dir, sizeof q->dit_dir));
    OG_TRY(og_model_dir_path(md, "vae", NULL, q->vae_dir, sizeof q->vae_dir));
    OG_TRY(og_model_dir_path(md, "text_encoder", NULL, q->text_dir, sizeof q->text_dir));
    OG_TRY(og_model_dir_path(md, "tokenizer", NULL, tok_dir, sizeof tok_dir));
    OG_TRY(og_model_dir_path(md, "scheduler", "scheduler_config.json", sched_path,
                             sizeof sched_path));
    og_status s = og_bpe_load(&q->tok, tok_dir);
    if (s != OG_OK)
        return og_fail_context(s, "loading the tokenizer");
    if ((s = og_flowmatch_config_read(sched_path, &q->sched)) != OG_OK)
        return og_fail_context(s, "scheduler");
    if ((s = og_qwenimage_read_config(q->dit_dir, &q->dit_cfg)) != OG_OK)
        return og_fail_context(s, "transformer");
    if (q->dit_cfg.patch != 2)
        return og_fail(OG_ERR_UNSUPPORTED, "transformer/config.json has patch_size %d; "
                                           "QwenImagePipeline packs 2x2 patches",
                       q->dit_cfg.patch);
    OG_TRY(read_vae_config(ctx, q));
    return read_text_config(ctx, q);
}

void og_qwenimage_pipe_free(og_qwenimage_pipe *q)
{
    if (!q)
        return;
    og_qwen3_free(q->text);
    og_qwenimage_free(q->dit);
    og_wan_vae_free(q->vae);
    og_bpe_free(q->tok);
    free(q);
}

int og_qwenimage_pipe_size_multiple(const og_qwenimage_pipe *q)
{
    return q->vae_scale * q->dit_cfg.patch;
}

int og_qwenimage_pipe_heads(const og_qwenimage_pipe *q) { return q->dit_cfg.heads; }

void og_qwenimage_pipe_defaults(const og_qwenimage_pipe *q, og_gen_params *p)
{
    (void)q;
    p->width = p->height = QWEN_DEFAULT_SIZE;
    p->steps = QWEN_DEFAULT_STEPS;
    p->guidance_scale = QWEN_DEFAULT_TRUE_CFG;
}

og_status og_qwenimage_pipe_load_weights(og_ctx *ctx)
{
    og_qwenimage_pipe *q = ctx->qwen;
    og_status s;
    if (!q->text && (s = og_qwen3_load_output(&q->text, q->text_dir,
                                              OG_QWEN3_OUT_LAST_NORMED)) != OG_OK)
        return og_fail_context(s, "loading the text encoder");
    if (!q->dit && (s = og_qwenimage_load(&q->dit, q->dit_dir)) != OG_OK)
        return og_fail_context(s, "loading the transformer");
    if (!q->vae && (s = og_wan_vae_load(&q->vae, q->vae_dir)) != OG_OK)
        return og_fail_context(s, "loading the VAE");
    if (og_wan_vae_z_dim(q->vae) != q->z_dim || og_wan_vae_scale_factor(q->vae) != q->vae_scale)
        return og_fail(OG_ERR_FORMAT, "the VAE's weights do not match vae/config.json");
    if (og_qwen3_hidden(q->text) != q->dit_cfg.joint_dim)
        return og_fail(OG_ERR_FORMAT, "the text encoder's weights do not match its config");
    return OG_OK;
}

/* ---- the request ------------------------------------------------------------------------------ */

/* QwenImagePipeline's do_true_cfg: a negative prompt and true_cfg_scale > 1. */
static bool uses_cfg(const og_gen_params *p)
{
    return p->negative_prompt && p->guidance_scale > 1.0f;
}

static const char *branch_text(const og_gen_params *p, int branch)
{
    return branch ? p->negative_prompt : p->prompt;
}

/* The rows encode_prompt keeps for a branch: the template's tokens less the 34 dropped, at most
 * max_sequence_length (text/qwenimage_prompt.h), without running the encoder. */
static og_status prompt_rows(const og_qwenimage_pipe *q, const og_gen_params *p, int branch,
                             int64_t *rows)
{
    int32_t *ids;
    int n;
    og_status s = og_qwenimage_prompt_ids(q->tok, branch_text(p, branch), &ids, &n);
    if (s != OG_OK)
        return og_fail_context(s, branch ? "negative prompt" : "prompt");
    free(ids);
    if (n <= OG_QWENIMAGE_DROP_TOKENS)
        return og_fail(OG_ERR_INVALID_ARG, "%s: the template gives %d tokens, no more than the "
                                           "%d the pipeline drops (a tokenizer that is not "
                                           "Qwen's?)",
                       branch ? "negative prompt" : "prompt", n, OG_QWENIMAGE_DROP_TOKENS);
    n -= OG_QWENIMAGE_DROP_TOKENS;
    *rows = n < p->max_sequence_length ? n : p->max_sequence_length;
    return OG_OK;
}

og_status og_qwenimage_pipe_validate(const og_ctx *ctx, const og_gen_params *p)
{
    const og_qwenimage_pipe *q = ctx->qwen;
    if (!p->prompt)
        return og_fail(OG_ERR_INVALID_ARG, "no prompt given");
    if (p->max_sequence_length < 1 || p->max_sequence_length > OG_QWENIMAGE_MAX_SEQUENCE)
        return og_fail(OG_ERR_INVALID_ARG, "max_sequence_length must be in 1..%d for Qwen-Image, "
                                           "got %d",
                       OG_QWENIMAGE_MAX_SEQUENCE, p->max_sequence_length);
    OG_TRY(og_check_image_request(p, og_qwenimage_pipe_size_multiple(q)));
    if (p->parallel.cfg_degree == 2 && !uses_cfg(p))
        return og_fail(OG_ERR_PARALLEL, "cfg_degree 2 runs the two guidance branches on separate "
                                        "ranks, but Qwen-Image guides only with a negative prompt "
                                        "and guidance_scale > 1 (got %g%s): use --cfg-degree 1, "
                                        "or give both",
                       p->guidance_scale, p->negative_prompt ? "" : ", no negative prompt");
    const int64_t hp = p->height / q->vae_scale / 2, wp = p->width / q->vae_scale / 2;
    for (int b = 0; b < (uses_cfg(p) ? 2 : 1); b++) {
        int64_t rows = 0;
        OG_TRY(prompt_rows(q, p, b, &rows));
        OG_TRY(og_qwenimage_check_layout(&q->dit_cfg, &p->parallel, hp, wp, rows, 0));
    }
    OG_TRY(og_ctx_check_launch(ctx, p));
    if (p->output && og_ctx_writes_outputs(ctx))
        OG_TRY(og_check_output(p->output));
    return OG_OK;
}

/* ---- the denoising loop, one call per rank ---------------------------------------------------- */

typedef struct {
    og_qwenimage_pipe *q;
    const og_gen_params *p;
    int64_t hp, wp, n;    /* token grid; n = hp·wp·channels */
    int64_t channels;     /* per token: z_dim·4 */
    const float *cap[2];  /* [0] the prompt, [1] the negative prompt (true CFG) */
    int64_t cap_len[2];
    const float *sigmas;    /* steps + 1 */
    const float *timesteps; /* steps */
    const float *init;      /* packed initial tokens */
    float *final;           /* world rank 0 writes the final tokens here */
} qwen_job;

typedef struct {
    og_sp *sp;
    og_arena scratch;
    float *x, *v, *other;
} qwen_rank;

static void qwen_rank_free(qwen_rank *r)
{
    free(r->x);
    free(r->v);
    free(r->other);
    og_arena_free(&r->scratch);
    og_sp_free(r->sp);
}

static og_status qwen_forward(const qwen_job *j, qwen_rank *r, float t, int branch, float *out)
{
    return og_qwenimage_forward(j->q->dit, r->sp, r->x, j->hp, j->wp, t, j->cap[branch], NULL,
                                j->cap_len[branch], out, &r->scratch);
}

typedef struct {
    const qwen_job *j;
    qwen_rank *r;
    float t;
} qwen_branch_arg;

static og_status qwen_forward_branch(void *arg, int branch, float *out)
{
    const qwen_branch_arg *a = arg;
    return qwen_forward(a->j, a->r, a->t, branch, out);
}

/* The pipeline's true CFG in fp32: comb = neg + s·(cond − neg), then each token's row scaled
 * by ‖cond‖ / ‖comb‖ (torch.norm over the channels). out may be cond or neg. */
static void true_cfg(float *out, const float *cond, const float *neg, int64_t tokens,
                     int64_t channels, float s)
{
    for (int64_t t = 0; t < tokens; t++) {
        const float *c = cond + t * channels, *u = neg + t * channels;
        float *o = out + t * channels;
        double cc = 0, mm = 0;
        for (int64_t k = 0; k < channels; k++) {
            float d = c[k] - u[k];
            float sd = s * d;
            float comb = u[k] + sd;
            cc += (double)c[k] * c[k];
            mm += (double)comb * comb;
            o[k] = comb;
        }
        const float ratio = (float)sqrt(cc) / (float)sqrt(mm);
        for (int64_t k = 0; k < channels; k++)
            o[k] = o[k] * ratio;
    }
}

/* The model output in r->v for timestep t (the pipeline's t / 1000). */
static og_status qwen_velocity(const qwen_job *j, qwen_rank *r, float t)
{
    const og_gen_params *p = j->p;
    if (!uses_cfg(p))
        return qwen_forward(j, r, t, 0, r->v);
    const float *cond, *neg;
    qwen_branch_arg a = {j, r, t};
    OG_TRY(og_cfg_branches(r->sp, p->parallel.cfg_degree, j->n, qwen_forward_branch, &a, r->v,
                           r->other, &cond, &neg));
    true_cfg(r->v, cond, neg, j->hp * j->wp, j->channels, p->guidance_scale);
    return OG_OK;
}

static og_status qwen_rank_run(og_comm *world, const qwen_job *j, qwen_rank *r)
{
    const og_gen_params *p = j->p;
    OG_TRY(og_sp_create(&r->sp, &p->parallel, world));
    const int64_t cap_max = j->cap_len[0] > j->cap_len[1] ? j->cap_len[0] : j->cap_len[1];
    OG_TRY(og_arena_init(&r->scratch,
                         og_qwenimage_scratch_bytes(j->q->dit, j->hp, j->wp, cap_max, r->sp)));
    OG_TRY(og_rank_latents(j->init, j->n, &r->x, &r->v, &r->other));
    bool reporter = og_sp_world_rank(r->sp) == 0;
    double t0 = og_now_s();
    for (int i = 0; i < p->steps; i++) {
        OG_TRY(qwen_velocity(j, r, j->timesteps[i] / 1000.0f));
        og_flowmatch_step(j->sigmas, i, r->x, r->v, j->n, false);
        if (reporter && p->progress)
            p->progress(p->progress_user, OG_PHASE_DENOISE, i + 1, p->steps, og_now_s() - t0);
    }
    if (reporter)
        memcpy(j->final, r->x, sizeof(float) * (size_t)j->n);
    return OG_OK;
}

static og_status qwen_rank_fn(og_comm *world, void *arg)
{
    qwen_rank r = {0};
    og_status s = qwen_rank_run(world, arg, &r);
    qwen_rank_free(&r);
    return s;
}

/* ---- one generation --------------------------------------------------------------------------- */

typedef struct {
    float *cap[2];
    float *init_lat, *tokens, *final_tokens, *sigmas, *timesteps, *image;
} qwen_buffers;

static void qwen_buffers_free(qwen_buffers *b)
{
    free(b->cap[0]);
    free(b->cap[1]);
    free(b->init_lat);
    free(b->tokens);
    free(b->final_tokens);
    free(b->sigmas);
    free(b->timesteps);
    free(b->image);
}

static og_status decode(og_qwenimage_pipe *q, const og_gen_params *p, og_image_result *out,
                        const float *tokens, int64_t channels, qwen_buffers *b)
{
    const int64_t h = out->latent_height, w = out->latent_width;
    b->image = malloc(sizeof(float) * 3 * (size_t)p->width * p->height);
    out->rgb = malloc(3 * (size_t)p->width * p->height);
    if (!b->image || !out->rgb)
        return og_fail(OG_ERR_OOM, "out of memory for a %dx%d image", p->width, p->height);
    OG_TRY(og_qwenimage_decode(q->vae, tokens, (h / 2) * (w / 2), channels, h, w, b->image));
    og_image_to_u8(out->rgb, b->image, p->height, p->width);
    out->width = p->width;
    out->height = p->height;
    return OG_OK;
}

static og_status generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out,
                          double t_start, qwen_buffers *b)
{
    og_qwenimage_pipe *q = ctx->qwen;
    og_set_threads(og_ctx_threads(ctx, p));
    og_report_phase(p, OG_PHASE_ENCODE, t_start);
    int64_t cap_len[2] = {0, 0};
    for (int br = 0; br < (uses_cfg(p) ? 2 : 1); br++) {
        int n;
        og_status s = og_qwenimage_encode_prompt(q->tok, q->text, branch_text(p, br),
                                                 p->max_sequence_length, &b->cap[br], &n);
        if (s != OG_OK)
            return og_fail_context(s, br ? "negative prompt" : "prompt");
        cap_len[br] = n;
    }

    int64_t h, w;
    OG_TRY(og_qwenimage_latent_size(p->height, p->width, q->vae_scale, &h, &w));
    const int64_t channels = (int64_t)q->z_dim * 4, tokens = (h / 2) * (w / 2);
    const int64_t n = (int64_t)q->z_dim * h * w;
    out->latent_channels = q->z_dim;
    out->latent_height = (int)h;
    out->latent_width = (int)w;
    out->frames = out->latent_frames = 1;
    const size_t bytes = sizeof(float) * (size_t)n;
    if (!(out->latents = malloc(bytes)) || !(b->init_lat = malloc(bytes)) ||
        !(b->tokens = malloc(bytes)) || !(b->final_tokens = malloc(bytes)) ||
        !(b->sigmas = malloc(sizeof(float) * (size_t)(p->steps + 1))) ||
        !(b->timesteps = malloc(sizeof(float) * (size_t)p->steps)))
        return og_fail(OG_ERR_OOM, "out of memory for the latents");
    if (p->initial_latents)
        memcpy(b->init_lat, p->initial_latents, bytes);
    else
        og_noise_normal(b->init_lat, n, p->seed, 0);
    OG_TRY(og_qwenimage_pack(b->tokens, b->init_lat, q->z_dim, h, w));

    og_flowmatch_linspace_f64(b->sigmas, 1.0, 1.0 / p->steps, p->steps); /* np.linspace */
    const double mu = og_flowmatch_calculate_shift(&q->sched, tokens);
    OG_TRY(og_flowmatch_set_timesteps(&q->sched, p->steps, b->sigmas, &mu, b->sigmas,
                                      b->timesteps));
    out->seconds_encode = og_now_s() - t_start;

    double t_loop = og_now_s();
    qwen_job job = {.q = q, .p = p, .hp = h / 2, .wp = w / 2, .n = n, .channels = channels,
                    .cap = {b->cap[0], b->cap[1]}, .cap_len = {cap_len[0], cap_len[1]},
                    .sigmas = b->sigmas, .timesteps = b->timesteps, .init = b->tokens,
                    .final = b->final_tokens};
    OG_TRY(og_ctx_run_ranks(ctx, p, qwen_rank_fn, &job));
    out->seconds_denoise = og_now_s() - t_loop;
    if (!og_ctx_writes_outputs(ctx)) { /* world rank 0 decodes and writes */
        og_image_result_free(out);
        return OG_OK;
    }
    OG_TRY(og_qwenimage_unpack(out->latents, b->final_tokens, tokens, channels, h, w));

    double t_dec = og_now_s();
    og_report_phase(p, OG_PHASE_DECODE, t_start);
    OG_TRY(decode(q, p, out, b->final_tokens, channels, b));
    if (p->output)
        OG_TRY(og_write_image_png(ctx, p, out, uses_cfg(p)));
    out->seconds_decode = og_now_s() - t_dec;
    og_report_phase(p, OG_PHASE_DONE, t_start);
    return OG_OK;
}

og_status og_qwenimage_pipe_generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out,
                                     double t_start)
{
    qwen_buffers b = {0};
    og_status s = generate(ctx, p, out, t_start, &b);
    qwen_buffers_free(&b);
    return s;
}
