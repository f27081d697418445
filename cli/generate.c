/* `omnigen [generate]`: one prompt or a batch prompt file, progress on stderr.
 * Exit codes: 0 every image written, 1 a generation failed, 2 a usage error (bad flag or value). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"
#include "parallel/plan.h"
#include "pipeline/batch.h"
#include "pipeline/omnigen.h"
#include "pipeline/progress.h"

/* ---- running ---------------------------------------------------------------------------------- */

/* One generation with progress on stderr (the leader's only, under MPI); prints the error with
 * `where` in front. */
static bool run_one(og_ctx *ctx, const og_gen_params *p, const char *label, const char *where,
                    bool leader)
{
    og_progress_bar bar;
    og_progress_bar_init(&bar, stderr, label, -1);
    og_gen_params q = *p;
    q.progress = leader ? og_progress_bar_report : NULL;
    q.progress_user = &bar;
    og_image_result img;
    if (og_generate(ctx, &q, &img) != OG_OK) {
        fprintf(stderr, "omnigen: %s%s\n", where, og_error_message());
        return false;
    }
    if (leader && img.frames > 1)
        fprintf(stderr, "omnigen: wrote %s (%d frames %dx%d, seed %llu, %d steps, %.2fs)\n",
                q.output, img.frames, img.width, img.height, (unsigned long long)q.seed, q.steps,
                img.seconds_encode + img.seconds_denoise + img.seconds_decode);
    else if (leader)
        fprintf(stderr, "omnigen: wrote %s (%dx%d, seed %llu, %d steps, %.2fs)\n", q.output,
            img.width, img.height, (unsigned long long)q.seed, q.steps,
            img.seconds_encode + img.seconds_denoise + img.seconds_decode);
    og_image_result_free(&img);
    return true;
}

static int run_batch(og_ctx *ctx, const og_cli_opts *o)
{
    og_batch batch;
    og_status st = og_batch_read(o->prompt_file, &batch);
    if (o->lp.world) /* a file missing on one node must fail every process */
        st = og_comm_agree(o->lp.world, st);
    if (st != OG_OK) {
        og_batch_free(&batch);
        fprintf(stderr, "omnigen: --prompt-file: %s\n", og_error_message());
        return OG_EXIT_USAGE;
    }
    if (batch.count == 0) {
        fprintf(stderr, "omnigen: --prompt-file %s: no prompts in the file\n", o->prompt_file);
        og_batch_free(&batch);
        return OG_EXIT_USAGE;
    }
    int failed = 0;
    char failed_lines[256] = "";
    for (int i = 0; i < batch.count; i++) {
        const og_batch_job *job = &batch.jobs[i];
        char where[512], label[64], out_name[4096];
        snprintf(where, sizeof where, "%s:%d: ", o->prompt_file, job->line);
        bool ok;
        if (job->error) {
            if (og_cli_leader(o))
                fprintf(stderr, "omnigen: %s%s\n", where, job->error);
            ok = false;
        } else {
            og_gen_params p = o->p;
            og_batch_output_name(out_name, sizeof out_name, o->p.output, job->line);
            p.output = out_name;
            og_batch_apply(job, &p);
            snprintf(label, sizeof label, "[%d/%d line %d]", i + 1, batch.count, job->line);
            ok = run_one(ctx, &p, label, where, og_cli_leader(o));
        }
        if (!ok) {
            size_t n = strlen(failed_lines);
            if (n + 16 < sizeof failed_lines)
                snprintf(failed_lines + n, sizeof failed_lines - n, "%s%d", n ? ", " : "",
                         job->line);
            failed++;
        }
    }
    if (failed && og_cli_leader(o))
        fprintf(stderr, "omnigen: %d of %d prompts failed (line %s of %s)\n", failed, batch.count,
                failed_lines, o->prompt_file);
    og_batch_free(&batch);
    return failed ? 1 : 0;
}

int og_cli_generate(int argc, char **argv)
{
    og_cli_opts o;
    int rc = og_cli_parse(&o, OG_CLI_GENERATE, argc, argv);
    if (rc >= 0)
        return rc;
    if ((rc = og_cli_world_start(&o)) >= 0)
        return rc;

    og_ctx *ctx;
    if (og_load_dir(&ctx, o.model, &o.lp) != OG_OK) {
        fprintf(stderr, "omnigen: --model %s: %s\n", o.model, og_error_message());
        og_cli_world_end(&o);
        return 1;
    }
    og_cli_model_defaults(&o, ctx);
    if (o.prompt_file) {
        rc = run_batch(ctx, &o);
    } else if (og_validate(ctx, &o.p) != OG_OK) {
        fprintf(stderr, "omnigen: %s\n", og_error_message());
        rc = OG_EXIT_USAGE;
    } else {
        rc = run_one(ctx, &o.p, NULL, "", og_cli_leader(&o)) ? 0 : 1;
    }
    og_free(ctx);
    og_cli_world_end(&o);
    return rc;
}
