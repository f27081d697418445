/* Flag parsing for the omnigen subcommands (see options.h): the flag table, value parsers that
 * name the flag in every message, --help and --version. */
#include "cli/options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "parallel/comm.h"

#if defined(OG_HAVE_CUDA) && __has_include("core/cuda/cuda_backend.h")
#include "core/cuda/cuda_backend.h"
#define OG_CLI_CUDA 1
#endif

static const char generate_usage[] =
    "usage: omnigen [generate] [--model DIR] (--prompt TEXT | --prompt-file FILE) [options]\n"
    "\n"
    "Text to image with a diffusers Z-Image or Qwen-Image model folder, or text to video\n"
    "(MP4) with a Wan2.1 one.\n"
    "\n"
    "  --model DIR            model folder (default: $OMNIGEN_MODEL, else the bundled\n"
    "                         models/zimage-tiny)\n"
    "  --prompt TEXT          what to draw\n"
    "  --negative-prompt TEXT what to avoid (used when --guidance-scale > 0; Wan2.1 and\n"
    "                         Qwen-Image: > 1)\n"
    "  --prompt-file FILE     one prompt per line, or a JSON object per line with any of\n"
    "                         prompt, negative_prompt, seed, width, height, steps,\n"
    "                         guidance_scale, output; '#' lines and blank lines are skipped.\n"
    "                         Line N without \"output\" writes <output stem>-N.png\n"
    "  --width N, --height N  image size in pixels, multiples of 16 (default 1024)\n"
    "  --steps N              denoising steps (default 8)\n"
    "  --guidance-scale X     classifier-free guidance; 0 turns it off (default 0)\n"
    "  --frames N             video models (Wan2.1): frames to make, 1 + 4k (default 81)\n"
    "  --fps N                video models: MP4 frame rate (default 16)\n"
    "  --seed N               noise seed; the same seed gives the same image on every\n"
    "                         parallel layout (default 42)\n"
    "  -o, --output FILE      PNG to write (default omnigen.png); a video model writes an\n"
    "                         MP4 (default omnigen.mp4), or a PNG of a 1-frame video\n"
    "  --ulysses-degree N     ranks splitting attention heads (default 1)\n"
    "  --ring-degree N        ranks passing K/V around a ring (default 1)\n"
    "  --ulysses-mode MODE    strict (heads divisible by the Ulysses degree) or advanced_uaa\n"
    "  --cfg-degree N         2 runs the two guidance branches on separate ranks (default 1)\n"
    "  --backend B            cpu, cuda or auto (default): cuda for Z-Image when a GPU is\n"
    "                         visible, else cpu\n"
    "  --devices LIST         GPUs to use with --backend cuda, e.g. 0,1 (default: all)\n"
    "  --precision fp32|bf16  CPU compute: fp32 matches the reference; bf16 runs the matrix\n"
    "                         products on AMX, ~2.5x faster, ~3e-3 relative error (default fp32)\n"
    "  --threads N            CPU threads of this process, shared by its ranks (default: its\n"
    "                         share of the node's cores)\n"
    "  --launcher MODE        threads: the ranks are threads of this process; mpi: one rank per\n"
    "                         process of mpiexec; auto: mpi when started by mpiexec with several\n"
    "                         processes (default auto)\n"
    "  -v, --verbose          more log output (twice: debug)\n"
    "  --help, --version\n"
    "\n"
    "A Wan2.1 (WanPipeline) folder makes a video; flags left out take its defaults:\n"
    "832x480 (less where the model's RoPE table is smaller), 81 frames, 50 steps,\n"
    "guidance 5 (guidance is on above 1), 16 fps.\n"
    "A Qwen-Image (QwenImagePipeline) folder: 1024x1024, 50 steps, guidance 4 (its\n"
    "true_cfg_scale: on only with --negative-prompt and a scale above 1).\n"
    "\n"
    "World size = cfg x ring x ulysses degree: threads of this process, or under\n"
    "mpiexec -np <world size> one rank per process (rank 0 prints and writes).\n"
    "omnigen serve --help: the HTTP endpoint.\n";

static const char serve_usage[] =
    "usage: omnigen serve [--model DIR] [--host ADDR] [--port N] [options]\n"
    "\n"
    "HTTP endpoint: POST /v1/images/generations with a JSON object holding prompt and any of\n"
    "negative_prompt, seed, width, height, steps, guidance_scale; the reply is the PNG.\n"
    "\n"
    "  --model DIR            model folder (default: $OMNIGEN_MODEL, else models/zimage-tiny)\n"
    "  --host ADDR            address to listen on (default 127.0.0.1)\n"
    "  --port N               TCP port; 0 picks a free one (default 8080)\n"
    "  --width, --height, --steps, --guidance-scale, --seed, --negative-prompt\n"
    "                         defaults for requests that leave them out\n"
    "  --ulysses-degree, --ring-degree, --ulysses-mode, --cfg-degree, --threads,\n"
    "  --backend, --devices, --precision\n"
    "                         as for generate, for every request\n"
    "  -v, --verbose, --help, --version\n";

/* ---- flag values ----------------------------------------------------------------------------- */

static bool usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "omnigen: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(omnigen --help lists the flags)\n");
    return false;
}

static bool parse_int(const char *flag, const char *s, long long lo, long long hi,
                      const char *what, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "omnigen: %s: expected %s, got '%s'\n", flag, what, s);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_pos_int(const char *flag, const char *s, int *out)
{
    long long v;
    if (!parse_int(flag, s, 1, INT_MAX, "a positive integer", &v))
        return false;
    *out = (int)v;
    return true;
}

static bool parse_seed(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || s[0] == '+' || s[0] == ' ') {
        fprintf(stderr, "omnigen: %s: expected an integer from 0 to %llu, got '%s'\n", flag,
                (unsigned long long)UINT64_MAX, s);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_guidance(const char *flag, const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < 0 || v > 1e6) {
        fprintf(stderr, "omnigen: %s: expected a number >= 0, got '%s'\n", flag, s);
        return false;
    }
    *out = (float)v;
    return true;
}

/* ---- flag table ------------------------------------------------------------------------------- */

typedef enum {
    F_HOST, F_PORT, F_MODEL, F_PROMPT, F_NEG, F_WIDTH, F_HEIGHT, F_STEPS, F_GUIDANCE, F_SEED, F_OUTPUT,
    F_ULYSSES, F_RING, F_UMODE, F_CFG, F_BACKEND, F_DEVICES, F_PRECISION, F_THREADS, F_PROMPT_FILE,
    F_LAUNCHER, F_HELP, F_VERSION, F_VERBOSE, F_FRAMES, F_FPS
} flag_id;

enum { GEN = 1 << OG_CLI_GENERATE, SERVE = 1 << OG_CLI_SERVE, BOTH = GEN | SERVE };

typedef struct {
    const char *name, *alias;
    flag_id id;
    bool takes_value;
    int modes; /* the subcommands that accept it */
} flag_def;

static const flag_def flags[] = {
    {"--host", NULL, F_HOST, true, SERVE},
    {"--port", NULL, F_PORT, true, SERVE},
    {"--model", NULL, F_MODEL, true, BOTH},
    {"--prompt", NULL, F_PROMPT, true, GEN},
    {"--negative-prompt", NULL, F_NEG, true, BOTH},
    {"--width", NULL, F_WIDTH, true, BOTH},
    {"--height", NULL, F_HEIGHT, true, BOTH},
    {"--steps", NULL, F_STEPS, true, BOTH},
    {"--guidance-scale", NULL, F_GUIDANCE, true, BOTH},
    {"--seed", NULL, F_SEED, true, BOTH},
    {"--output", "-o", F_OUTPUT, true, GEN},
    {"--ulysses-degree", NULL, F_ULYSSES, true, BOTH},
    {"--ring-degree", NULL, F_RING, true, BOTH},
    {"--ulysses-mode", NULL, F_UMODE, true, BOTH},
    {"--cfg-degree", NULL, F_CFG, true, BOTH},
    {"--backend", NULL, F_BACKEND, true, BOTH},
    {"--devices", NULL, F_DEVICES, true, BOTH},
    {"--precision", NULL, F_PRECISION, true, BOTH},
    {"--threads", NULL, F_THREADS, true, BOTH},
    {"--prompt-file", NULL, F_PROMPT_FILE, true, GEN},
    {"--launcher", NULL, F_LAUNCHER, true, GEN},
    {"--frames", NULL, F_FRAMES, true, BOTH},
    {"--fps", NULL, F_FPS, true, GEN},
    {"--help", "-h", F_HELP, false, BOTH},
    {"--version", NULL, F_VERSION, false, BOTH},
    {"--verbose", "-v", F_VERBOSE, false, BOTH},
};

static const flag_def *find_flag(const char *arg, size_t len)
{
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const flag_def *f = &flags[i];
        if ((strlen(f->name) == len && strncmp(arg, f->name, len) == 0) ||
            (f->alias && strlen(f->alias) == len && strncmp(arg, f->alias, len) == 0))
            return &flags[i];
    }
    return NULL;
}

static bool apply_flag(og_cli_opts *o, const flag_def *f, const char *name, const char *v)
{
    og_gen_params *p = &o->p;
    long long n;
    switch (f->id) {
    case F_HOST: o->host = v; return true;
    case F_PORT:
        if (!parse_int(name, v, 0, 65535, "a port number from 0 to 65535", &n))
            return false;
        o->port = (int)n;
        return true;
    case F_MODEL: o->model = v; return true;
    case F_PROMPT: p->prompt = v; return true;
    case F_NEG: p->negative_prompt = v; return true;
    case F_WIDTH: return parse_pos_int(name, v, &p->width);
    case F_HEIGHT: return parse_pos_int(name, v, &p->height);
    case F_STEPS: return parse_pos_int(name, v, &p->steps);
    case F_GUIDANCE: return parse_guidance(name, v, &p->guidance_scale);
    case F_SEED: return parse_seed(name, v, &p->seed);
    case F_OUTPUT:
        if (!*v)
            return usage_error("%s: expected a file name, got '%s'", name, v);
        p->output = v;
        return true;
    case F_ULYSSES: return parse_pos_int(name, v, &p->parallel.ulysses_degree);
    case F_RING: return parse_pos_int(name, v, &p->parallel.ring_degree);
    case F_CFG: return parse_pos_int(name, v, &p->parallel.cfg_degree);
    case F_UMODE:
        if (og_ulysses_mode_parse(v, &p->parallel.ulysses_mode) != OG_OK)
            return usage_error("%s: expected strict or advanced_uaa, got '%s'", name, v);
        return true;
    case F_BACKEND:
        if (og_backend_parse(v, &o->lp.backend) != OG_OK)
            return usage_error("%s: expected cpu, cuda or auto, got '%s'", name, v);
        return true;
    case F_DEVICES: o->lp.devices = v; return true;
    case F_PRECISION:
        if (og_precision_parse(v, &o->lp.precision) != OG_OK)
            return usage_error("%s: expected fp32 or bf16, got '%s'", name, v);
        return true;
    case F_THREADS:
        if (!parse_int(name, v, 0, 4096, "a thread count from 0 (all cores) to 4096", &n))
            return false;
        p->threads = (int)n;
        return true;
    case F_PROMPT_FILE: o->prompt_file = v; return true;
    case F_LAUNCHER:
        if (og_launcher_parse(v, &o->launcher) != OG_OK)
            return usage_error("%s: expected auto, threads or mpi, got '%s'", name, v);
        return true;
    case F_FRAMES: return parse_pos_int(name, v, &p->frames);
    case F_FPS:
        if (!parse_int(name, v, 1, 240, "a frame rate from 1 to 240", &n))
            return false;
        p->fps = (int)n;
        return true;
    case F_HELP: case F_VERSION: case F_VERBOSE: return true;
    }
    return false;
}

static void opts_init(og_cli_opts *o, og_cli_mode mode)
{
    *o = (og_cli_opts){.mode = mode, .host = "127.0.0.1", .port = 8080,
                       .p = OG_GEN_PARAMS_DEFAULT, .lp = OG_LOAD_PARAMS_DEFAULT};
    o->p.output = mode == OG_CLI_GENERATE ? "omnigen.png" : NULL;
    o->lp.backend = OG_BACKEND_AUTO; /* og_load_dir picks cuda for a GPU model on a GPU */
}

/* The flags of argv[1..argc); -1 to go on, else the exit code. */
static int parse_flags(og_cli_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const flag_def *f = arg[0] == '-' ? find_flag(arg, len) : NULL;
        if (!f) {
            if (arg[0] == '-')
                fprintf(stderr, "omnigen: unknown flag '%.*s'\n", (int)len, arg);
            else
                fprintf(stderr, "omnigen: unexpected argument '%s' (a prompt goes after "
                                "--prompt)\n", arg);
            fprintf(stderr, "(omnigen --help lists the flags)\n");
            return OG_EXIT_USAGE;
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)len, arg);
        if (!(f->modes & (1 << o->mode))) {
            fprintf(stderr, "omnigen: %s is not a flag of `omnigen %s`%s\n", name,
                    o->mode == OG_CLI_SERVE ? "serve" : "generate",
                    o->mode == OG_CLI_SERVE ? " (each request carries its prompt)" : "");
            return OG_EXIT_USAGE;
        }
        if (!f->takes_value) {
            if (eq) {
                usage_error("%s takes no value, got '%s'", name, eq + 1);
                return OG_EXIT_USAGE;
            }
            if (f->id == F_HELP) {
                fputs(o->mode == OG_CLI_SERVE ? serve_usage : generate_usage, stdout);
                return 0;
            }
            if (f->id == F_VERSION) {
                printf("omnigen %s (cpu", OG_VERSION);
#ifdef OG_HAVE_CUDA
                printf(", cuda");
#endif
#ifdef OG_HAVE_MPI
                printf(", mpi");
#endif
#ifdef OG_HAVE_SERVER
                printf(", server");
#endif
                printf(")\n");
                return 0;
            }
            o->verbose++;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            /* A value that is itself a known flag means the real value was forgotten. */
            bool next_is_flag = i + 1 < argc && strncmp(argv[i + 1], "--", 2) == 0 &&
                                find_flag(argv[i + 1], strcspn(argv[i + 1], "="));
            if (i + 1 >= argc || next_is_flag) {
                fprintf(stderr, "omnigen: %s: missing value\n(omnigen --help lists the flags)\n",
                        name);
                return OG_EXIT_USAGE;
            }
            v = argv[++i];
        }
        if (!apply_flag(o, f, name, v))
            return OG_EXIT_USAGE;
        o->given |= UINT64_C(1) << f->id;
    }
    return -1;
}

/* ---- model folder and devices ----------------------------------------------------------------- */

/* $OMNIGEN_MODEL, else the bundled models/zimage-tiny of the source tree. */
static const char *default_model(void)
{
    const char *env = getenv("OMNIGEN_MODEL");
    if (env && *env)
        return env;
    return OG_SOURCE_DIR "/models/zimage-tiny";
}

/* --backend cuda needs a CUDA build and a visible GPU; --devices needs cuda (or auto on a
 * machine where auto can pick it). */
static bool check_backend(const og_load_params *lp)
{
    bool gpu_visible = false;
#ifdef OG_CLI_CUDA
    gpu_visible = og_cuda_device_count() > 0;
#endif
    if (lp->backend == OG_BACKEND_AUTO) {
        if (!lp->devices)
            return true; /* og_load_dir decides */
        if (!gpu_visible) {
            fprintf(stderr, "omnigen: --devices: only used with --backend cuda, and no CUDA GPU "
                            "is visible\n");
            return false;
        }
    }
    if (lp->backend == OG_BACKEND_CPU) {
        if (lp->devices)
            fprintf(stderr, "omnigen: --devices: only used with --backend cuda\n");
        return !lp->devices;
    }
#ifdef OG_CLI_CUDA
    int n = og_cuda_device_count();
    if (n <= 0) {
        fprintf(stderr, "omnigen: --backend cuda: no CUDA GPU is visible on this machine "
                        "(use --backend cpu)\n");
        return false;
    }
    int devices[64], count;
    if (lp->devices && og_cuda_parse_devices(lp->devices, devices, 64, &count) != OG_OK) {
        fprintf(stderr, "omnigen: --devices: %s\n", og_error_message());
        return false;
    }
    return true;
#else
    fprintf(stderr, "omnigen: --backend cuda: this omnigen was built without CUDA "
                    "(rebuild with the CUDA toolkit installed, or use --backend cpu)\n");
    return false;
#endif
}

/* ---- the whole command line ------------------------------------------------------------------- */

int og_cli_parse(og_cli_opts *o, og_cli_mode mode, int argc, char **argv)
{
    opts_init(o, mode);
    int rc = parse_flags(o, argc, argv);
    if (rc >= 0)
        return rc;
    if (mode == OG_CLI_GENERATE && !o->prompt_file && !o->p.prompt) {
        fprintf(stderr, "omnigen: nothing to draw: give --prompt TEXT or --prompt-file FILE\n"
                        "(omnigen --help lists the flags)\n");
        return OG_EXIT_USAGE;
    }
    if (o->prompt_file && o->p.prompt) {
        fprintf(stderr, "omnigen: --prompt and --prompt-file: give one of them\n");
        return OG_EXIT_USAGE;
    }
    og_log_set_level(o->verbose >= 2 ? OG_LOG_DEBUG : o->verbose ? OG_LOG_INFO : OG_LOG_WARN);
    if (!check_backend(&o->lp))
        return OG_EXIT_USAGE;
    if (!o->model)
        o->model = default_model();
#ifdef OG_HAVE_MPI
    const bool have_mpi = true;
#else
    const bool have_mpi = false;
#endif
    if (mode == OG_CLI_GENERATE &&
        og_launcher_resolve(o->launcher, og_launcher_env_size(), have_mpi, &o->launcher) != OG_OK) {
        fprintf(stderr, "omnigen: %s\n", og_error_message());
        return OG_EXIT_USAGE;
    }
    return -1;
}

/* ---- the process world ------------------------------------------------------------------------ */

int og_cli_world_start(og_cli_opts *o)
{
    if (o->launcher != OG_LAUNCHER_MPI)
        return -1;
#ifdef OG_HAVE_MPI
    if (og_mpi_init(NULL, NULL) != OG_OK || og_comm_mpi_world(&o->lp.world) != OG_OK) {
        fprintf(stderr, "omnigen: --launcher mpi: %s\n", og_error_message());
        og_mpi_finalize();
        return 1;
    }
#endif
    return -1;
}

void og_cli_world_end(og_cli_opts *o)
{
    if (o->launcher != OG_LAUNCHER_MPI)
        return;
#ifdef OG_HAVE_MPI
    og_comm_free(o->lp.world);
    o->lp.world = NULL;
    og_mpi_finalize();
#endif
}

bool og_cli_leader(const og_cli_opts *o) { return !o->lp.world || o->lp.world->rank == 0; }

void og_cli_model_defaults(og_cli_opts *o, const og_ctx *ctx)
{
    og_gen_params d = o->p; /* Z-Image: OG_GEN_PARAMS_DEFAULT already holds its defaults */
    og_model_defaults(ctx, &d);
#define TAKE(flag, field)                                                                    \
    if (!(o->given & (UINT64_C(1) << (flag))))                                               \
        o->p.field = d.field;
    TAKE(F_WIDTH, width)
    TAKE(F_HEIGHT, height)
    TAKE(F_FRAMES, frames)
    TAKE(F_STEPS, steps)
    TAKE(F_GUIDANCE, guidance_scale)
    TAKE(F_FPS, fps)
#undef TAKE
    if (og_model_is_video(ctx) && o->mode == OG_CLI_GENERATE &&
        !(o->given & (UINT64_C(1) << F_OUTPUT)))
        o->p.output = "omnigen.mp4";
}
