/* The public API's context: opening a diffusers Z-Image folder (classes and configs, no weights),
 * validating a request against it, loading the weights once, and freeing. The generation itself
 * is in zimage_pipeline.c. */
#include "pipeline/omnigen.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ops.h"
#include "core/threads.h"
#include "parallel/comm.h"
#include "parallel/plan.h"
#include "pipeline/pipeline_internal.h"
#include "text/qwen3.h"
#include "vae/autoencoder_kl.h"

og_status og_backend_parse(const char *s, og_backend *out)
{
    if (strcmp(s, "cpu") == 0)
        *out = OG_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0)
        *out = OG_BACKEND_CUDA;
    else if (strcmp(s, "auto") == 0)
        *out = OG_BACKEND_AUTO;
    else
        return og_fail(OG_ERR_INVALID_ARG, "unknown backend '%s' (expected cpu, cuda or auto)",
                       s);
    return OG_OK;
}

const char *og_backend_name(og_backend b)
{
    return b == OG_BACKEND_CUDA ? "cuda" : b == OG_BACKEND_AUTO ? "auto" : "cpu";
}

/* OG_BACKEND_AUTO: cuda for a Z-Image folder when a GPU is visible (og_dit_gpus_check fails
 * without CUDA or a GPU), cpu for everything else, which runs on the CPU only so far. */
static og_backend resolve_backend(const char *model_dir, og_backend asked)
{
    if (asked != OG_BACKEND_AUTO)
        return asked;
    if (og_dit_gpus_check(NULL) != OG_OK)
        return OG_BACKEND_CPU;
    og_model_dir *md;
    if (og_model_dir_open(&md, model_dir) != OG_OK)
        return OG_BACKEND_CPU; /* the real open reports the folder's fault */
    const char *pipe = og_model_dir_class(md);
    og_backend b = pipe && strcmp(pipe, "ZImagePipeline") == 0 ? OG_BACKEND_CUDA : OG_BACKEND_CPU;
    if (b == OG_BACKEND_CPU)
        og_log(OG_LOG_INFO, "%s runs on the CPU (its GPU path is not written yet)", pipe);
    og_model_dir_free(md);
    return b;
}

og_status og_precision_parse(const char *s, og_precision *out)
{
    if (strcmp(s, "fp32") == 0)
        *out = OG_PRECISION_FP32;
    else if (strcmp(s, "bf16") == 0)
        *out = OG_PRECISION_BF16;
    else
        return og_fail(OG_ERR_INVALID_ARG, "unknown precision '%s' (expected fp32 or bf16)", s);
    return OG_OK;
}

const char *og_precision_name(og_precision p) { return p == OG_PRECISION_BF16 ? "bf16" : "fp32"; }

og_status og_expect_component(const og_model_dir *md, const char *name,
                              const char *const *classes)
{
    const char *cls;
    OG_TRY(og_model_dir_component(md, name, NULL, &cls));
    for (int i = 0; classes[i]; i++)
        if (strcmp(cls, classes[i]) == 0)
            return OG_OK;
    return og_fail(OG_ERR_FORMAT, "model_index.json lists %s as %s, expected %s", name, cls,
                   classes[0]);
}

static og_status read_vae_config(og_ctx *ctx)
{
    og_config *cfg;
    OG_TRY(og_model_dir_config(ctx->md, "vae", NULL, "AutoencoderKL", &cfg));
    int64_t blocks[16], latent;
    int n = 0;
    og_status s = og_config_int_array(cfg, "block_out_channels", blocks, 16, &n);
    if (s == OG_OK)
        s = og_config_int_or(cfg, "latent_channels", 4, &latent);
    og_config_free(cfg);
    OG_TRY(s);
    if (n < 1)
        return og_fail(OG_ERR_FORMAT, "vae/config.json: block_out_channels is empty");
    ctx->vae_scale = 1 << (n - 1);
    if (latent != ctx->dit_cfg.in_channels)
        return og_fail(OG_ERR_FORMAT, "vae/config.json has latent_channels %lld but the "
                                      "transformer takes %d channels",
                       (long long)latent, ctx->dit_cfg.in_channels);
    ctx->latent_channels = (int)latent;
    return OG_OK;
}

/* The text encoder's rows are the transformer's caption features. */
static og_status read_text_config(og_ctx *ctx)
{
    og_config *cfg;
    OG_TRY(og_model_dir_config(ctx->md, "text_encoder", NULL, "Qwen3Model", &cfg));
    int64_t hidden;
    og_status s = og_config_int(cfg, "hidden_size", &hidden);
    og_config_free(cfg);
    OG_TRY(s);
    if (hidden != ctx->dit_cfg.cap_feat_dim)
        return og_fail(OG_ERR_FORMAT, "text_encoder/config.json has hidden_size %lld but the "
                                      "transformer's cap_feat_dim is %d",
                       (long long)hidden, ctx->dit_cfg.cap_feat_dim);
    return OG_OK;
}

static og_status open_dir(og_ctx *ctx, const char *model_dir)
{
    OG_TRY(og_model_dir_open(&ctx->md, model_dir));
    const char *pipe = og_model_dir_class(ctx->md);
    if (pipe && strcmp(pipe, "WanPipeline") == 0)
        return og_wan_pipe_open(ctx);
    if (pipe && strcmp(pipe, "QwenImagePipeline") == 0)
        return og_qwenimage_pipe_open(ctx);
    if (!pipe || strcmp(pipe, "ZImagePipeline") != 0)
        return og_fail(OG_ERR_UNSUPPORTED, "model_index.json is a %s; this omnigen runs "
                                           "ZImagePipeline, QwenImagePipeline and WanPipeline "
                                           "folders",
                       pipe ? pipe : "folder without _class_name");
    OG_TRY(og_expect_component(ctx->md, "transformer",
                               (const char *[]){"ZImageTransformer2DModel", NULL}));
    OG_TRY(og_expect_component(ctx->md, "vae", (const char *[]){"AutoencoderKL", NULL}));
    OG_TRY(og_expect_component(ctx->md, "text_encoder", (const char *[]){"Qwen3Model", NULL}));
    OG_TRY(og_expect_component(ctx->md, "tokenizer",
                               (const char *[]){"Qwen2Tokenizer", "Qwen2TokenizerFast", NULL}));
    OG_TRY(og_expect_component(ctx->md, "scheduler",
                               (const char *[]){"FlowMatchEulerDiscreteScheduler", NULL}));
    OG_TRY(og_model_dir_path(ctx->md, "transformer", NULL, ctx->dit_dir, sizeof ctx->dit_dir));
    OG_TRY(og_model_dir_path(ctx->md, "vae", NULL, ctx->vae_dir, sizeof ctx->vae_dir));
    OG_TRY(og_model_dir_path(ctx->md, "text_encoder", NULL, ctx->text_dir, sizeof ctx->text_dir));
    OG_TRY(og_model_dir_path(ctx->md, "tokenizer", NULL, ctx->tok_dir, sizeof ctx->tok_dir));
    OG_TRY(og_model_dir_path(ctx->md, "scheduler", "scheduler_config.json", ctx->sched_path,
                             sizeof ctx->sched_path));
    og_status st = og_bpe_load(&ctx->tok, ctx->tok_dir);
    if (st != OG_OK)
        return og_fail_context(st, "loading the tokenizer");
    st = og_flowmatch_config_read(ctx->sched_path, &ctx->sched);
    if (st != OG_OK)
        return og_fail_context(st, "scheduler");
    st = og_zimage_read_config(ctx->dit_dir, &ctx->dit_cfg);
    if (st != OG_OK)
        return og_fail_context(st, "transformer");
    OG_TRY(read_vae_config(ctx));
    return read_text_config(ctx);
}

static og_comm *multi_world(og_comm *w) { return w && w->size > 1 ? w : NULL; }

og_comm *og_ctx_world(const og_ctx *ctx) { return multi_world(ctx->lp.world); }

bool og_ctx_writes_outputs(const og_ctx *ctx)
{
    return !og_ctx_world(ctx) || ctx->lp.world->rank == 0;
}

static og_status load_dir(og_ctx **out, const char *model_dir, const og_load_params *params)
{
    if (params->backend == OG_BACKEND_CUDA)
        OG_TRY(og_dit_gpus_check(params->devices));
    og_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx || !(ctx->root = strdup(model_dir))) {
        free(ctx);
        return og_fail(OG_ERR_OOM, "out of memory");
    }
    *out = ctx;
    ctx->lp = *params;
    if (params->backend == OG_BACKEND_CUDA)
        OG_TRY(og_dit_gpus_listed(params->devices, &ctx->gpu_count));
    return open_dir(ctx, model_dir);
}

og_status og_load_dir(og_ctx **out, const char *model_dir, const og_load_params *lp)
{
    *out = NULL;
    og_load_params params = lp ? *lp : OG_LOAD_PARAMS_DEFAULT;
    params.backend = resolve_backend(model_dir, params.backend);
    og_comm *world = multi_world(params.world);
    int node_rank = 0, node_size = 1;
    bool gpu_shared = false;
    int device = -1;
    if (world)
        OG_TRY(og_comm_node_rank(world, &node_rank, &node_size));
    if (world && params.backend == OG_BACKEND_CUDA) {
        /* This process's GPU: its place on the node, round-robin over its list. Processes with
         * their own CUDA_VISIBLE_DEVICES all see "GPU 0", so sharing is told by bus id. */
        char bus[64];
        if (og_dit_gpus_pick(params.devices, node_rank, &device, bus, sizeof bus) != OG_OK)
            snprintf(bus, sizeof bus, "unknown GPU of rank %d", world->rank);
        OG_TRY(og_comm_node_key_shared(world, bus, &gpu_shared));
    }
    og_ctx *ctx = NULL;
    og_status s = load_dir(&ctx, model_dir, &params);
    if (world) /* a folder missing on one node must not leave the others waiting */
        s = og_comm_agree(world, s);
    if (s != OG_OK) {
        og_free(ctx);
        return s;
    }
    ctx->node_rank = node_rank;
    ctx->node_size = node_size;
    ctx->gpu_shared = gpu_shared;
    if (device >= 0) {
        /* Every GPU user (DiT, text encoder, VAE) then takes this process's GPU only. */
        snprintf(ctx->own_device, sizeof ctx->own_device, "%d", device);
        ctx->lp.devices = ctx->own_device;
        ctx->gpu_count = 1;
    }
    *out = ctx;
    return OG_OK;
}

void og_free(og_ctx *ctx)
{
    if (!ctx)
        return;
    og_wan_pipe_free(ctx->wan);
    og_qwenimage_pipe_free(ctx->qwen);
    og_qwen3_free(ctx->text);
    og_dit_gpus_free(ctx->gpus);
    og_zimage_free(ctx->dit);
    og_vae_gpu_free(ctx->vae_gpu);
    og_vae_free(ctx->vae);
    og_bpe_free(ctx->tok);
    og_model_dir_free(ctx->md);
    free(ctx->root);
    free(ctx);
}

int og_size_multiple(const og_ctx *ctx)
{
    if (ctx->qwen)
        return og_qwenimage_pipe_size_multiple(ctx->qwen);
    return ctx->wan ? og_wan_pipe_size_multiple(ctx->wan) : ctx->vae_scale * ctx->dit_cfg.patch_size;
}
int og_model_heads(const og_ctx *ctx)
{
    if (ctx->qwen)
        return og_qwenimage_pipe_heads(ctx->qwen);
    return ctx->wan ? og_wan_pipe_heads(ctx->wan) : ctx->dit_cfg.n_heads;
}
bool og_model_is_video(const og_ctx *ctx) { return ctx->wan != NULL; }
void og_model_defaults(const og_ctx *ctx, og_gen_params *p)
{
    if (ctx->wan)
        og_wan_pipe_defaults(ctx->wan, p);
    if (ctx->qwen)
        og_qwenimage_pipe_defaults(ctx->qwen, p);
}
const char *og_model_path(const og_ctx *ctx) { return ctx->root; }

og_status og_ctx_load_weights(og_ctx *ctx)
{
    og_status s;
    /* Before the transformer loads: in bf16 its block weights are packed for AMX at load. */
    const og_gemm_precision gp = ctx->lp.precision == OG_PRECISION_BF16 ? OG_GEMM_BF16 : OG_GEMM_EXACT;
    if ((s = og_gemm_set_precision(gp)) != OG_OK)
        return og_fail_context(s, "--precision %s", og_precision_name(ctx->lp.precision));
    if (ctx->wan)
        return og_wan_pipe_load_weights(ctx);
    if (ctx->qwen)
        return og_qwenimage_pipe_load_weights(ctx);
    if (!ctx->text && (s = og_qwen3_load(&ctx->text, ctx->text_dir)) != OG_OK)
        return og_fail_context(s, "loading the text encoder");
    if (!ctx->dit && (s = og_zimage_load(&ctx->dit, ctx->dit_dir)) != OG_OK)
        return og_fail_context(s, "loading the transformer");
    if (ctx->lp.backend == OG_BACKEND_CUDA && !ctx->gpus &&
        (s = og_dit_gpus_load(&ctx->gpus, ctx->dit, ctx->lp.devices)) != OG_OK)
        return og_fail_context(s, "putting the transformer on the GPU");
    if (!ctx->vae && (s = og_vae_load(&ctx->vae, ctx->vae_dir)) != OG_OK)
        return og_fail_context(s, "loading the VAE");
    return OG_OK;
}

/* The nearest multiples of m around v, for the error message. */
og_status og_check_size(const char *what, int v, int m)
{
    if (v <= 0)
        return og_fail(OG_ERR_INVALID_ARG, "%s must be positive, got %d", what, v);
    if (v % m != 0) {
        int lo = v / m * m;
        if (lo == 0)
            return og_fail(OG_ERR_INVALID_ARG, "%s %d is not a multiple of %d (the VAE scale "
                                               "times the patch size); try %d",
                           what, v, m, m);
        return og_fail(OG_ERR_INVALID_ARG, "%s %d is not a multiple of %d (the VAE scale times "
                                           "the patch size); try %d or %d",
                       what, v, m, lo, lo + m);
    }
    return OG_OK;
}

/* The folder of an output file must exist and be writable before any work starts. */
og_status og_check_output(const char *path)
{
    if (!*path)
        return og_fail(OG_ERR_INVALID_ARG, "the output file name is empty");
    char *copy = strdup(path);
    if (!copy)
        return og_fail(OG_ERR_OOM, "out of memory");
    const char *dir = dirname(copy);
    og_status s = OG_OK;
    if (access(dir, W_OK) != 0)
        s = og_fail(OG_ERR_IO, "cannot write %s: folder %s: %s", path, dir, strerror(errno));
    free(copy);
    return s;
}

/* The launch plan of p on this process (parallel/plan.h). */
static og_status ctx_plan(const og_ctx *ctx, const og_gen_params *p, og_rank_plan_in *in,
                          og_rank_plan *plan)
{
    og_comm *world = og_ctx_world(ctx);
#ifdef OG_HAVE_NCCL
    const bool have_nccl = true;
#else
    const bool have_nccl = false;
#endif
    *in = (og_rank_plan_in){.ranks = og_parallel_world_size(&p->parallel),
                            .processes = world ? world->size : 1,
                            .node_processes = world ? ctx->node_size : 1,
                            .gpus = ctx->lp.backend == OG_BACKEND_CUDA ? ctx->gpu_count : 0,
                            .gpu_shared = ctx->gpu_shared,
                            .have_nccl = have_nccl, .threads = p->threads,
                            .cores = og_num_cores()};
    return og_rank_plan_make(in, plan);
}

int og_ctx_threads(const og_ctx *ctx, const og_gen_params *p)
{
    og_rank_plan_in in;
    og_rank_plan plan;
    if (!og_ctx_world(ctx) || ctx_plan(ctx, p, &in, &plan) != OG_OK)
        return p->threads;
    return plan.threads_per_rank * plan.local_ranks;
}

og_status og_ctx_check_launch(const og_ctx *ctx, const og_gen_params *p)
{
    og_rank_plan_in in;
    og_rank_plan plan;
    return ctx_plan(ctx, p, &in, &plan);
}

og_status og_ctx_run_ranks(og_ctx *ctx, const og_gen_params *p, og_rank_fn fn, void *arg)
{
    og_rank_plan_in in;
    og_rank_plan plan;
    og_status st = ctx_plan(ctx, p, &in, &plan);
    og_comm *world = og_ctx_world(ctx);
    if (world) {
        st = og_comm_agree(world, st);
        ctx->start_agreed = true;
        ctx->start_ok = st == OG_OK;
    }
    OG_TRY(st);
    og_log(OG_LOG_INFO, "%d rank%s (%s): %d in this process, %d CPU thread%s each", in.ranks,
           in.ranks == 1 ? "" : "s", og_exchange_name(plan.exchange), plan.local_ranks,
           plan.threads_per_rank, plan.threads_per_rank == 1 ? "" : "s");
    if (!world) {
        switch (plan.exchange) {
        case OG_EXCHANGE_INPROC_DEVICE:
            return og_dit_gpus_run_ranks(ctx->gpus, plan.local_ranks, plan.threads_per_rank, fn,
                                         arg);
        case OG_EXCHANGE_NCCL:
            return og_dit_gpus_run_ranks_nccl(ctx->gpus, plan.local_ranks, plan.threads_per_rank,
                                              fn, arg);
        default:
            return og_run_ranks(plan.local_ranks, plan.threads_per_rank, fn, arg);
        }
    }
    /* This process's one rank, on this thread. Its peers may be inside a collective when it
     * fails, so a failure ends the job instead of returning. */
    og_set_threads(plan.threads_per_rank);
    st = plan.exchange == OG_EXCHANGE_NCCL ? og_dit_gpus_nccl(ctx->gpus, world, fn, arg)
                                           : fn(world, arg);
    if (st != OG_OK)
        og_comm_abort(world, og_error_message());
    return st;
}

og_status og_check_image_request(const og_gen_params *p, int m)
{
    OG_TRY(og_check_size("width", p->width, m));
    OG_TRY(og_check_size("height", p->height, m));
    if (p->frames > 1)
        return og_fail(OG_ERR_INVALID_ARG, "frames %d: this is an image model (frames 0 or 1)",
                       p->frames);
    if (p->steps < 1)
        return og_fail(OG_ERR_INVALID_ARG, "steps must be at least 1, got %d", p->steps);
    if (!isfinite(p->guidance_scale) || p->guidance_scale < 0)
        return og_fail(OG_ERR_INVALID_ARG, "guidance_scale must be a number >= 0, got %g",
                       p->guidance_scale);
    return OG_OK;
}

og_status og_rank_latents(const float *init, int64_t n, float **x, float **v, float **other)
{
    size_t bytes = sizeof(float) * (size_t)n;
    *x = malloc(bytes);
    *v = malloc(bytes);
    *other = malloc(bytes);
    if (!*x || !*v || !*other)
        return og_fail(OG_ERR_OOM, "out of memory for the latents");
    memcpy(*x, init, bytes);
    return OG_OK;
}

og_status og_cfg_branches(og_sp *sp, int cfg_degree, int64_t n, og_branch_fn fn, void *arg,
                          float *v, float *other, const float **cond, const float **neg)
{
    if (cfg_degree == 2) {
        int branch = og_sp_cfg_index(sp);
        OG_TRY(fn(arg, branch, v));
        OG_TRY(og_sp_cfg_exchange(sp, v, other, n));
        *cond = branch == 0 ? v : other;
        *neg = branch == 0 ? other : v;
    } else {
        OG_TRY(fn(arg, 0, v));
        OG_TRY(fn(arg, 1, other));
        *cond = v;
        *neg = other;
    }
    return OG_OK;
}

static og_status validate_request(const og_ctx *ctx, const og_gen_params *p,
                                  const int64_t cap_len[2])
{
    OG_TRY(og_check_image_request(p, og_size_multiple(ctx)));
    if (p->parallel.cfg_degree == 2 && p->guidance_scale <= 0)
        return og_fail(OG_ERR_PARALLEL, "cfg_degree 2 runs the two guidance branches on separate "
                                        "ranks, but guidance_scale is 0 (there is one branch): "
                                        "use --cfg-degree 1 or set --guidance-scale");
    int64_t lat_h = p->height / ctx->vae_scale, lat_w = p->width / ctx->vae_scale;
    for (int b = 0; b < (p->guidance_scale > 0 ? 2 : 1); b++)
        OG_TRY(og_zimage_check_layout(&ctx->dit_cfg, &p->parallel, lat_h, lat_w, cap_len[b], 0));
    og_rank_plan_in in;
    og_rank_plan plan;
    OG_TRY(ctx_plan(ctx, p, &in, &plan));
    if (p->output && og_ctx_writes_outputs(ctx))
        OG_TRY(og_check_output(p->output));
    return OG_OK;
}

og_status og_prompt_ids(const og_ctx *ctx, const og_gen_params *p, int branch, int32_t **ids,
                        int *n)
{
    const char *text = branch ? (p->negative_prompt ? p->negative_prompt : "") : p->prompt;
    og_status s = og_bpe_encode_chat(ctx->tok, text, p->max_sequence_length, ids, n);
    if (s != OG_OK)
        return og_fail_context(s, branch ? "negative prompt" : "prompt");
    return OG_OK;
}

static og_status validate(const og_ctx *ctx, const og_gen_params *p)
{
    if (!p->prompt)
        return og_fail(OG_ERR_INVALID_ARG, "no prompt given");
    if (p->max_sequence_length < 1)
        return og_fail(OG_ERR_INVALID_ARG, "max_sequence_length must be at least 1, got %d",
                       p->max_sequence_length);
    int64_t cap_len[2] = {0, 0};
    for (int b = 0; b < (p->guidance_scale > 0 ? 2 : 1); b++) {
        int32_t *ids;
        int n;
        OG_TRY(og_prompt_ids(ctx, p, b, &ids, &n));
        free(ids);
        cap_len[b] = n;
    }
    return validate_request(ctx, p, cap_len);
}

og_status og_validate(const og_ctx *ctx, const og_gen_params *p)
{
    og_status s = ctx->wan    ? og_wan_pipe_validate(ctx, p)
                  : ctx->qwen ? og_qwenimage_pipe_validate(ctx, p)
                              : validate(ctx, p);
    /* The output folder is checked on world rank 0 only, so the verdict is agreed. */
    return og_ctx_world(ctx) ? og_comm_agree(og_ctx_world(ctx), s) : s;
}
