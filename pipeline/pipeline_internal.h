/* The og_ctx behind the public API, shared by the loader (omnigen.c) and the Z-Image generation
 * (zimage_pipeline.c). Not part of the public interface. */
#ifndef OG_PIPELINE_INTERNAL_H
#define OG_PIPELINE_INTERNAL_H

#include <stdbool.h>
#include <time.h>

#include "dit/zimage.h"
#include "io/diffusers.h"
#include "pipeline/dit_gpu.h"
#include "pipeline/omnigen.h"
#include "pipeline/vae_gpu.h"
#include "parallel/sp.h"
#include "samplers/flowmatch.h"
#include "text/bpe.h"

typedef struct og_vae og_vae;
typedef struct og_qwen3 og_qwen3;
typedef struct og_wan_pipe og_wan_pipe; /* wan_pipeline.c */
typedef struct og_qwenimage_pipe og_qwenimage_pipe; /* qwenimage_pipeline.c */

struct og_ctx {
    char *root;
    og_load_params lp;
    og_model_dir *md;
    og_zimage_config dit_cfg;
    char dit_dir[4096], vae_dir[4096], text_dir[4096], tok_dir[4096], sched_path[4096];
    int vae_scale;       /* image pixels per latent pixel */
    int latent_channels; /* = the transformer's in_channels */
    og_bpe *tok;         /* loaded with the folder: validation counts prompt tokens */
    og_flowmatch_config sched;
    /* Loaded on the first og_generate, after its parameters were validated. */
    og_qwen3 *text;
    og_zimage *dit;
    og_dit_gpus *gpus; /* --backend cuda: the transformer's weights on each GPU */
    og_vae *vae;
    og_vae_gpu *vae_gpu; /* --backend cuda: the VAE's weights, uploaded at the first decode */
    /* The launch (parallel/plan.h): this process's place on its node, the GPUs it may use. */
    int node_rank, node_size, gpu_count;
    bool gpu_shared;    /* another process of the node has this one's GPU */
    char own_device[16]; /* under MPI with cuda: this process's GPU, lp.devices points here */
    /* Per og_generate with a multi-process world: the agreement before the denoising loop was
     * made (start_agreed) and passed (start_ok); see og_ctx_run_ranks. */
    bool start_agreed, start_ok;
    /* A WanPipeline folder: everything Wan (wan_pipeline.c); NULL for Z-Image. */
    og_wan_pipe *wan;
    /* A QwenImagePipeline folder: everything Qwen-Image (qwenimage_pipeline.c); else NULL. */
    og_qwenimage_pipe *qwen;
};

/* The multi-process world of ctx (lp.world of more than one rank), else NULL. */
og_comm *og_ctx_world(const og_ctx *ctx);
/* False on the world ranks other than 0: they neither decode nor write. */
bool og_ctx_writes_outputs(const og_ctx *ctx);
/* CPU threads of this process for p (--threads, else its share of the node's cores). */
int og_ctx_threads(const og_ctx *ctx, const og_gen_params *p);
/* Runs fn on the ranks of p's layout as the launch plan says: threads of this process (host,
 * device-copy or NCCL communicator), or this process's one rank of the world (MPI or NCCL). With
 * a multi-process world it first agrees with the other processes that all are ready (a rank
 * that failed earlier calls og_comm_agree instead, from og_generate); a failure inside fn then
 * ends the job (og_comm_abort), since the peers may wait inside a collective. */
og_status og_ctx_run_ranks(og_ctx *ctx, const og_gen_params *p, og_rank_fn fn, void *arg);

/* Token ids (malloc'd) of the prompt (branch 0) or the negative prompt (branch 1, "" when
 * none), chat template applied, truncated to p->max_sequence_length. */
og_status og_prompt_ids(const og_ctx *ctx, const og_gen_params *p, int branch, int32_t **ids,
                        int *n);

/* Loads the weights once (no-op when loaded). */
og_status og_ctx_load_weights(og_ctx *ctx);

/* Request checks shared by the pipelines: v a positive multiple of m (the message names the
 * nearest ones); the output file's folder writable; the launch plan of p possible here. */
og_status og_check_size(const char *what, int v, int m);
og_status og_check_output(const char *path);
og_status og_ctx_check_launch(const og_ctx *ctx, const og_gen_params *p);

/* Wan2.1 (wan_pipeline.c): open_dir hands a WanPipeline folder to og_wan_pipe_open, and the
 * public calls dispatch on ctx->wan. */
og_status og_wan_pipe_open(og_ctx *ctx);
void og_wan_pipe_free(og_wan_pipe *w);
int og_wan_pipe_size_multiple(const og_wan_pipe *w);
int og_wan_pipe_heads(const og_wan_pipe *w);
void og_wan_pipe_defaults(const og_wan_pipe *w, og_gen_params *p);
og_status og_wan_pipe_validate(const og_ctx *ctx, const og_gen_params *p);
og_status og_wan_pipe_load_weights(og_ctx *ctx);
og_status og_wan_pipe_generate(og_ctx *ctx, const og_gen_params *p, og_image_result *out,
                               double t_start);

/* Qwen-Image (qwenimage_pipeline.c), dispatched on ctx->qwen the same way. */
og_status og_qwenimage_pipe_open(og_ctx *ctx);
void og_qwenimage_pipe_free(og_qwenimage_pipe *q);
int og_qwenimage_pipe_size_multiple(const og_qwenimage_pipe *q);
int og_qwenimage_pipe_heads(const og_qwenimage_pipe *q);
void og_qwenimage_pipe_defaults(const og_qwenimage_pipe *q, og_gen_params *p);
og_status og_qwenimage_pipe_validate(const og_ctx *ctx, const og_gen_params *p);
og_status og_qwenimage_pipe_load_weights(og_ctx *ctx);
og_status og_qwenimage_pipe_generate(og_ctx *ctx, const og_gen_params *p,
                                     og_image_result *out, double t_start);

/* Writes img to p->output as a PNG with the request in its text chunks (zimage_pipeline.c);
 * negative_prompt is recorded when with_negative. */
og_status og_write_image_png(const og_ctx *ctx, const og_gen_params *p,
                             const og_image_result *img, bool with_negative);

/* ---- pieces the three pipelines share (omnigen.c unless inline) ---- */

/* Seconds on the monotonic clock. */
static inline double og_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Tells p's progress callback (if any) that phase began, t_start seconds into the request. */
static inline void og_report_phase(const og_gen_params *p, og_phase phase, double t_start)
{
    if (p->progress)
        p->progress(p->progress_user, phase, 0, p->steps, og_now_s() - t_start);
}

/* model_index.json must list component name with one of classes (NULL-terminated); the
 * message names the first. */
og_status og_expect_component(const og_model_dir *md, const char *name,
                              const char *const *classes);

/* The image request checks of Z-Image and Qwen-Image: width and height multiples of m, frames
 * 0 or 1, steps >= 1, guidance_scale a number >= 0. */
og_status og_check_image_request(const og_gen_params *p, int m);

/* A rank's latents for its denoising loop: *x a copy of init, *v and *other, n floats each
 * (malloc'd; the caller frees all three, also on failure). */
og_status og_rank_latents(const float *init, int64_t n, float **x, float **v, float **other);

/* One guidance branch's model output into out (branch 0 the prompt, 1 the negative prompt). */
typedef og_status (*og_branch_fn)(void *arg, int branch, float *out);
/* Both branches' outputs of one step: with cfg_degree 2 this rank's own branch into v, then
 * exchanged with the other CFG group's into other (og_sp_cfg_exchange); else branch 0 into v and
 * branch 1 into other. *cond and *neg point to the prompt's and the negative prompt's. */
og_status og_cfg_branches(og_sp *sp, int cfg_degree, int64_t n, og_branch_fn fn, void *arg,
                          float *v, float *other, const float **cond, const float **neg);

#endif
