/* Batch prompt files for the omnigen program (--prompt-file). One job per line: either a plain
 * prompt, or a JSON object with any of prompt, negative_prompt, seed, width, height, steps,
 * guidance_scale, output. Blank lines and lines starting with '#' are skipped. A bad line is kept
 * as a job with its error, so the caller reports it by line number and runs the others. */
#ifndef OG_BATCH_H
#define OG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "pipeline/omnigen.h"

typedef struct {
    int line;              /* 1-based line number in the file */
    char *error;           /* why the line is unusable, or NULL */
    char *prompt;          /* owned; NULL only when error is set */
    char *negative_prompt; /* owned; NULL = not given */
    char *output;          /* owned; NULL = not given */
    bool has_seed, has_width, has_height, has_steps, has_guidance;
    uint64_t seed;
    int width, height, steps;
    float guidance_scale;
} og_batch_job;

typedef struct {
    og_batch_job *jobs;
    int count;
} og_batch;

/* Reads and parses the whole file. Fails only when the file cannot be read (or is not text);
 * per-line problems are in jobs[i].error. */
og_status og_batch_read(const char *path, og_batch *out);
/* Parses one line (without its newline) into *job; returns false for a blank or comment line. */
bool og_batch_parse_line(const char *text, int line, og_batch_job *job);
void og_batch_job_clear(og_batch_job *job);
void og_batch_free(og_batch *b);

/* The output of a job that names none: "<base without .png>-<line>.png", so line 3 of a batch
 * run with -o out/cat.png writes out/cat-3.png (default base: omnigen.png → omnigen-3.png). */
void og_batch_output_name(char *buf, size_t cap, const char *base, int line);

/* Overrides the fields of *p that the job sets (strings point into the job). */
void og_batch_apply(const og_batch_job *job, og_gen_params *p);

#endif
