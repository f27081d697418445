/* One Z-Image text-to-image generation: validate, encode the prompt(s), draw the noise, run the
 * denoising loop on cfg·ring·ulysses ranks (threads of this process, or one per process under
 * MPI: og_ctx_run_ranks), decode on one thread (world rank 0), write the PNG.
 *
 * Every rank holds the whole latent and gets the whole velocity back from og_zimage_forward, so
 * the sampler step runs replicated and every rank's latent stays bit-identical without any
 * broadcast. With guidance, cfg_degree 2 gives each CFG group one branch and the two swap their
 * velocities (og_sp_cfg_exchange); cfg_degree 1 runs both branches in turn on the same ranks.
 * Either way the guided velocity is computed with the same fp32 expression. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/threads.h"
#include "io/image.h"
#include "parallel/plan.h"
#include "parallel/sp.h"
#include "pipeline/pipeline_internal.h"
#include "pipeline/text_gpu.h"
#include "samplers/cfg.h"
#include "samplers/flowmatch.h"
#include "samplers/noise.h"
#include "text/qwen3.h"
#include "vae/autoencoder_kl.h"

static bool uses_cfg(const og_gen_params *p) { return p->guidance_scale > 0; }

/* ---- the denoising loop, one call per rank ---------------------------------------------------- */

typedef struct {
    og_ctx *ctx;
    const og_gen_params *p;
    int64_t lat_h, lat_w, n;   /* n = channels * lat_h * lat_w */
    const float *cap[2];       /* [0] the prompt, [1] the negative prompt (with guidance) */
    int64_t cap_len[2];
    const float *sigmas;       /* steps + 1 */
    const float *timesteps;    /* steps */
    const float *init;         /* initial latents */
    float *final;              /* rank 0 writes the final latents here */
} denoise_job;

typedef struct {
    og_sp *sp;
    og_arena scratch;
    og_dit_rank *gpu; /* --backend cuda: this rank's GPU context; NULL on the CPU */
    float *x, *v, *other;
} rank_state;

static void rank_state_free(rank_state *r)
{
    free(r->x);
    free(r->v);
    free(r->other);
    og_arena_free(&r->scratch);
    og_dit_rank_free(r->gpu);
    og_sp_free(r->sp);
}

static og_status forward(const denoise_job *j, rank_state *r, float t_model, int branch,
                         float *out)
{
    if (r->gpu)
        return og_dit_rank_forward(r->gpu, r->sp, r->x, j->lat_h, j->lat_w, t_model,
                                   j->cap[branch], j->cap_len[branch], out);
    return og_zimage_forward(j->ctx->dit, r->sp, r->x, j->lat_h, j->lat_w, t_model,
                             j->cap[branch], j->cap_len[branch], out, &r->scratch);
}

typedef struct {
    const denoise_job *j;
    rank_state *r;
    float t_model;
} branch_arg;

static og_status forward_branch(void *arg, int branch, float *out)
{
    const branch_arg *a = arg;
    return forward(a->j, a->r, a->t_model, branch, out);
}

/* The guided model output in r->v: pos + w·(pos − neg), or pos without guidance. */
static og_status velocity(const denoise_job *j, rank_state *r, float t_model)
{
    const og_gen_params *p = j->p;
    if (!uses_cfg(p))
        return forward(j, r, t_model, 0, r->v);
    const float *pos, *neg;
    branch_arg a = {j, r, t_model};
    OG_TRY(og_cfg_branches(r->sp, p->parallel.cfg_degree, j->n, forward_branch, &a, r->v,
                           r->other, &pos, &neg));
    og_cfg_combine(r->v, pos, neg, j->n, p->guidance_scale, 0.0f);
    return OG_OK;
}

static og_status denoise_rank_run(og_comm *world, const denoise_job *j, rank_state *r)
{
    const og_gen_params *p = j->p;
    OG_TRY(og_sp_create(&r->sp, &p->parallel, world));
    int64_t cap_max = j->cap_len[0] > j->cap_len[1] ? j->cap_len[0] : j->cap_len[1];
    if (j->ctx->gpus)
        OG_TRY(og_dit_rank_start(&r->gpu, j->ctx->gpus, r->sp, j->lat_h, j->lat_w, cap_max));
    else
        OG_TRY(og_arena_init(&r->scratch, og_zimage_scratch_bytes(j->ctx->dit, j->lat_h, j->lat_w,
                                                                  cap_max, r->sp)));
    OG_TRY(og_rank_latents(j->init, j->n, &r->x, &r->v, &r->other));
    bool reporter = og_sp_world_rank(r->sp) == 0;
    double t0 = og_now_s();
    for (int i = 0; i < p->steps; i++) {
        OG_TRY(velocity(j, r, og_zimage_model_time(j->timesteps[i])));
        og_flowmatch_step(j->sigmas, i, r->x, r->v, j->n, true); /* Z-Image negates v */
        if (reporter && p->progress)
            p->progress(p->progress_user, OG_PHASE_DENOISE, i + 1, p->steps, og_now_s() - t0);
    }
    if (reporter)
        memcpy(j->final, r->x, sizeof(float) * (size_t)j->n);
    return OG_OK;
}

static og_status denoise_rank(og_comm *world, void *arg)
{
    rank_state r = {0};
    og_status s = denoise_rank_run(world, arg, &r);
    rank_state_free(&r);
    return s;
}

/* ---- output ----------------------------------------------------------------------------------- */

og_status og_write_image_png(const og_ctx *ctx, const og_gen_params *p,
                             const og_image_result *img, bool with_negative)
{
    char seed[32], steps[16], guidance[32], width[16], height[16], parallel[128], software[64];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)p->seed);
    snprintf(steps, sizeof steps, "%d", p->steps);
    snprintf(guidance, sizeof guidance, "%g", p->guidance_scale);
    snprintf(width, sizeof width, "%d", img->width);
    snprintf(height, sizeof height, "%d", img->height);
    snprintf(parallel, sizeof parallel, "ulysses %d x ring %d x cfg %d (%s)",
             p->parallel.ulysses_degree, p->parallel.ring_degree, p->parallel.cfg_degree,
             og_ulysses_mode_name(p->parallel.ulysses_mode));
    snprintf(software, sizeof software, "omnigen %s", OG_VERSION);
    og_image_text kv[12] = {
        {"prompt", p->prompt}, {"seed", seed}, {"steps", steps}, {"guidance_scale", guidance},
        {"width", width}, {"height", height}, {"model", ctx->root}, {"parallel", parallel},
        {"backend", og_backend_name(ctx->lp.backend)},
        {"precision", og_precision_name(ctx->lp.precision)}, {"software", software},
    };
    int n = 11;
    if (with_negative)
        kv[n++] = (og_image_text){"negative_prompt", p->negative_prompt ? p->negative_prompt : ""};
    return og_image_write_png(p->output, img->rgb, img->width, img->height, kv, n);
}


/* ---- one generation --------------------------------------------------------------------------- */

void og_image_result_free(og_image_result *r)
{
    if (!r)
        return;
    free(r->rgb);
    free(r->latents);
    memset(r, 0, sizeof *r);
}

/* Caption features cap[b] [len[b], cap_feat_dim] of each branch (0 = prompt, 1 = negative
 * prompt). --backend cuda encodes them on the first listed GPU, whose encoder memory is given back
 * before the DiT's ranks reserve theirs (pipeline/text_gpu.h). */
static og_status encode_prompts(og_ctx *ctx, const og_gen_params *p, float **cap, int64_t *len)
{
    const int branches = uses_cfg(p) ? 2 : 1;
    const bool gpu = ctx->lp.backend == OG_BACKEND_CUDA;
    int32_t *ids[2] = {NULL, NULL};
    int n[2] = {0, 0};
    og_status s = OG_OK;
    for (int b = 0; b < branches && s == OG_OK; b++) {
        s = og_prompt_ids(ctx, p, b, &ids[b], &n[b]);
        len[b] = n[b];
        if (s == OG_OK && !(cap[b] = malloc(sizeof(float) * (size_t)n[b] *
                                            (size_t)og_qwen3_hidden(ctx->text))))
            s = og_fail(OG_ERR_OOM, "out of memory for the prompt embeddings");
    }
    if (s == OG_OK && gpu)
        s = og_text_gpu_encode(ctx->text, ctx->lp.devices, branches, (const int32_t *const *)ids,
                               n, cap);
    for (int b = 0; b < branches && s == OG_OK && !gpu; b++)
        s = og_qwen3_encode(ctx->text, ids[b], n[b], cap[b]);
    free(ids[0]);
    free(ids[1]);
    return s;
}


static og_status generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out,
                          double t_start, float **cap, float **init, float *sigmas,
                          float *timesteps)
{
    og_set_threads(og_ctx_threads(ctx, p));
    og_report_phase(p, OG_PHASE_ENCODE, t_start);
    int64_t cap_len[2] = {0, 0};
    OG_TRY(encode_prompts(ctx, p, cap, cap_len));

    int64_t lat_h = p->height / ctx->vae_scale, lat_w = p->width / ctx->vae_scale;
    int64_t n = ctx->latent_channels * lat_h * lat_w;
    out->latent_channels = ctx->latent_channels;
    out->latent_height = (int)lat_h;
    out->latent_width = (int)lat_w;
    out->latents = malloc(sizeof(float) * (size_t)n);
    if (!out->latents || !(*init = malloc(sizeof(float) * (size_t)n)))
        return og_fail(OG_ERR_OOM, "out of memory for the latents");
    if (p->initial_latents)
        memcpy(*init, p->initial_latents, sizeof(float) * (size_t)n);
    else
        og_noise_normal(*init, n, p->seed, 0);

    /* The Z-Image pipeline's schedule: linspace(1, 1/N, N), shifted by the scheduler config. */
    og_flowmatch_linspace(sigmas, 1.0f, 1.0f / p->steps, p->steps);
    double mu = og_flowmatch_calculate_shift(&ctx->sched, (lat_h / 2) * (lat_w / 2));
    OG_TRY(og_flowmatch_set_timesteps(&ctx->sched, p->steps, sigmas, &mu, sigmas, timesteps));
    out->seconds_encode = og_now_s() - t_start;

    double t_loop = og_now_s();
    denoise_job job = {.ctx = ctx, .p = p, .lat_h = lat_h, .lat_w = lat_w, .n = n,
                       .cap = {cap[0], cap[1]}, .cap_len = {cap_len[0], cap_len[1]},
                       .sigmas = sigmas, .timesteps = timesteps, .init = *init,
                       .final = out->latents};
    OG_TRY(og_ctx_run_ranks(ctx, p, denoise_rank, &job));
    out->seconds_denoise = og_now_s() - t_loop;
    if (!og_ctx_writes_outputs(ctx)) { /* world rank 0 decodes and writes */
        og_image_result_free(out);
        return OG_OK;
    }

    double t_dec = og_now_s();
    og_report_phase(p, OG_PHASE_DECODE, t_start);
    float *rgb = malloc(sizeof(float) * 3 * (size_t)p->width * p->height);
    out->rgb = malloc(3 * (size_t)p->width * p->height);
    if (!rgb || !out->rgb) {
        free(rgb);
        return og_fail(OG_ERR_OOM, "out of memory for a %dx%d image", p->width, p->height);
    }
    /* --backend cuda decodes on the first listed GPU, in one piece (pipeline/vae_gpu.h). */
    og_vae_tiling tiling = OG_VAE_TILING_DEFAULT;
    og_status s = ctx->lp.backend == OG_BACKEND_CUDA
                      ? og_vae_gpu_decode(&ctx->vae_gpu, ctx->vae, ctx->lp.devices, out->latents,
                                          lat_h, lat_w, rgb)
                      : og_vae_decode(ctx->vae, out->latents, lat_h, lat_w, rgb, &tiling);
    if (s == OG_OK)
        og_image_to_u8(out->rgb, rgb, p->height, p->width);
    free(rgb);
    OG_TRY(s);
    out->width = p->width;
    out->height = p->height;
    out->frames = out->latent_frames = 1;
    if (p->output)
        OG_TRY(og_write_image_png(ctx, p, out, uses_cfg(p)));
    out->seconds_decode = og_now_s() - t_dec;
    og_report_phase(p, OG_PHASE_DONE, t_start);
    return OG_OK;
}

og_status og_generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out)
{
    memset(out, 0, sizeof *out);
    double t_start = og_now_s();
    OG_TRY(og_validate(ctx, p));
    og_comm *world = og_ctx_world(ctx);
    ctx->start_agreed = ctx->start_ok = false;
    og_status loaded = og_ctx_load_weights(ctx);
    OG_TRY(world ? og_comm_agree(world, loaded) : loaded);
    float *cap[2] = {NULL, NULL}, *init = NULL;
    float *sigmas = malloc(sizeof(float) * (size_t)(p->steps + 1));
    float *timesteps = malloc(sizeof(float) * (size_t)p->steps);
    og_status s = ctx->wan    ? og_wan_pipe_generate(ctx, p, out, t_start)
                  : ctx->qwen ? og_qwenimage_pipe_generate(ctx, p, out, t_start)
                  : sigmas && timesteps
                      ? generate(ctx, p, out, t_start, cap, &init, sigmas, timesteps)
                      : og_fail(OG_ERR_OOM, "out of memory");
    free(cap[0]);
    free(cap[1]);
    free(init);
    free(sigmas);
    free(timesteps);
    /* A multi-process world agrees before the denoising loop (a rank that failed earlier joins
     * that agreement here) and after rank 0 wrote the output. */
    if (world && (!ctx->start_agreed || ctx->start_ok))
        s = og_comm_agree(world, s);
    if (s != OG_OK)
        og_image_result_free(out);
    return s;
}
