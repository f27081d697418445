/* Command-line flags shared by `omnigen generate` and `omnigen serve`: one flag table, strict
 * value parsing (every bad value names its flag), the default model folder and the backend check.
 * Messages go to stderr; functions that fail return the process exit code to use. */
#ifndef OG_CLI_OPTIONS_H
#define OG_CLI_OPTIONS_H

#include <stdbool.h>

#include "parallel/plan.h"
#include "pipeline/omnigen.h"

#define OG_EXIT_USAGE 2

typedef enum { OG_CLI_GENERATE = 0, OG_CLI_SERVE } og_cli_mode;

typedef struct {
    og_cli_mode mode;
    const char *model;       /* the model folder */
    const char *prompt_file; /* generate */
    const char *host;        /* serve: address to bind (default 127.0.0.1) */
    int port;                /* serve: 0 = any free port (printed at start) */
    og_gen_params p;         /* generate: the request; serve: the defaults of every request */
    og_load_params lp;       /* lp.world: set by og_cli_world_start under MPI */
    og_launcher launcher;    /* generate: threads or mpi once parsed (auto resolved) */
    int verbose;
    uint64_t given;          /* a bit per flag given on the command line (options.c) */
} og_cli_opts;

/* Fills o for the subcommand from argv[1..argc) (argv[0] is the subcommand or program): the
 * flags, a prompt for generate, the log level of -v, the backend check (--backend cuda needs a
 * CUDA build and a visible GPU; --devices needs --backend cuda) and the model folder (when not
 * given: $OMNIGEN_MODEL, else the bundled models/zimage-tiny of the source tree). Returns -1 to
 * go on, else the exit code: 0 after --help or --version, OG_EXIT_USAGE after a bad flag, value
 * or combination (message printed). */
int og_cli_parse(og_cli_opts *o, og_cli_mode mode, int argc, char **argv);

/* With the mpi launcher: starts MPI and sets o->lp.world (see og_load_params.world). Returns -1
 * to go on, else the exit code (message printed). og_cli_world_end frees the world and ends MPI;
 * both are no-ops with the threads launcher. */
int og_cli_world_start(og_cli_opts *o);
void og_cli_world_end(og_cli_opts *o);
/* True on the process that prints progress and results: world rank 0, or the only process. */
bool og_cli_leader(const og_cli_opts *o);

/* After og_load_dir: the model's own defaults (og_model_defaults: Wan2.1's and Qwen-Image's;
 * a video model also gets output omnigen.mp4) for the flags the command line left out. Nothing
 * changes for Z-Image. */
void og_cli_model_defaults(og_cli_opts *o, const og_ctx *ctx);

#endif
