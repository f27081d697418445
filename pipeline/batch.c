/* Batch prompt files (see batch.h): line splitting, plain and JSON lines, output naming. */
#include "pipeline/batch.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void set_error(og_batch_job *job, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(job->error);
    job->error = dup_str(buf);
}

void og_batch_job_clear(og_batch_job *job)
{
    free(job->error);
    free(job->prompt);
    free(job->negative_prompt);
    free(job->output);
    memset(job, 0, sizeof *job);
}

static bool json_string(og_batch_job *job, const cJSON *v, char **dst)
{
    if (!cJSON_IsString(v)) {
        set_error(job, "\"%s\" must be a string", v->string);
        return false;
    }
    *dst = dup_str(v->valuestring);
    return true;
}

/* An integral JSON number in [lo, hi]. Seeds above 2^53 cannot be exact in JSON numbers. */
static bool json_integer(og_batch_job *job, const cJSON *v, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        char *text = cJSON_PrintUnformatted(v);
        set_error(job, "\"%s\" must be an integer from %.0f to %.0f, got %s", v->string, lo, hi,
                  text ? text : "?");
        free(text);
        return false;
    }
    *out = v->valuedouble;
    return true;
}

static void parse_json(const char *text, og_batch_job *job)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        set_error(job, "invalid JSON near column %d", end ? (int)(end - text) + 1 : 1);
        return;
    }
    if (!cJSON_IsObject(root)) {
        set_error(job, "expected a JSON object");
        cJSON_Delete(root);
        return;
    }
    double d = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, root) {
        bool ok = true;
        if (strcmp(v->string, "prompt") == 0)
            ok = json_string(job, v, &job->prompt);
        else if (strcmp(v->string, "negative_prompt") == 0)
            ok = json_string(job, v, &job->negative_prompt);
        else if (strcmp(v->string, "output") == 0)
            ok = json_string(job, v, &job->output);
        else if (strcmp(v->string, "seed") == 0) {
            ok = json_integer(job, v, 0, 9007199254740992.0, &d);
            job->seed = (uint64_t)d, job->has_seed = true;
        } else if (strcmp(v->string, "width") == 0) {
            ok = json_integer(job, v, 1, 1 << 16, &d);
            job->width = (int)d, job->has_width = true;
        } else if (strcmp(v->string, "height") == 0) {
            ok = json_integer(job, v, 1, 1 << 16, &d);
            job->height = (int)d, job->has_height = true;
        } else if (strcmp(v->string, "steps") == 0) {
            ok = json_integer(job, v, 1, 10000, &d);
            job->steps = (int)d, job->has_steps = true;
        } else if (strcmp(v->string, "guidance_scale") == 0) {
            ok = cJSON_IsNumber(v) && v->valuedouble >= 0 && isfinite(v->valuedouble);
            if (!ok)
                set_error(job, "\"guidance_scale\" must be a number >= 0");
            job->guidance_scale = (float)v->valuedouble, job->has_guidance = true;
        } else {
            set_error(job, "unknown key \"%s\" (known: prompt, negative_prompt, seed, width, "
                           "height, steps, guidance_scale, output)", v->string);
            ok = false;
        }
        if (!ok)
            break;
    }
    cJSON_Delete(root);
    if (!job->error && (!job->prompt || !job->prompt[0]))
        set_error(job, "no \"prompt\" (a non-empty string is required)");
    if (!job->error && job->output && !job->output[0])
        set_error(job, "\"output\" is empty");
}

bool og_batch_parse_line(const char *text, int line, og_batch_job *job)
{
    memset(job, 0, sizeof *job);
    job->line = line;
    while (isspace((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    if (n == 0 || text[0] == '#')
        return false;
    char *s = malloc(n + 1);
    if (!s) {
        set_error(job, "out of memory");
        return true;
    }
    memcpy(s, text, n);
    s[n] = '\0';
    if (s[0] == '{') {
        parse_json(s, job);
        free(s);
    } else {
        job->prompt = s;
    }
    if (job->error) {
        free(job->prompt);
        free(job->negative_prompt);
        free(job->output);
        job->prompt = job->negative_prompt = job->output = NULL;
    }
    return true;
}

og_status og_batch_read(const char *path, og_batch *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return og_fail(OG_ERR_IO, "cannot open prompt file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, jobs_cap = 0;
    og_status st = OG_OK;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            st = og_fail(OG_ERR_FORMAT, "%s:%d: a NUL byte: this is not a text file", path,
                         lineno);
            break;
        }
        og_batch_job job;
        if (!og_batch_parse_line(line, lineno, &job))
            continue;
        if (out->count == jobs_cap) {
            jobs_cap = jobs_cap ? 2 * jobs_cap : 16;
            og_batch_job *nj = realloc(out->jobs, (size_t)jobs_cap * sizeof *nj);
            if (!nj) {
                og_batch_job_clear(&job);
                st = og_fail(OG_ERR_OOM, "reading %s: out of memory", path);
                break;
            }
            out->jobs = nj;
        }
        out->jobs[out->count++] = job;
    }
    if (st == OG_OK && ferror(f))
        st = og_fail(OG_ERR_IO, "reading %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (st != OG_OK)
        og_batch_free(out);
    return st;
}

void og_batch_free(og_batch *b)
{
    for (int i = 0; i < b->count; i++)
        og_batch_job_clear(&b->jobs[i]);
    free(b->jobs);
    b->jobs = NULL;
    b->count = 0;
}

void og_batch_output_name(char *buf, size_t cap, const char *base, int line)
{
    size_t n = strlen(base);
    const char *ext = n >= 4 && strcasecmp(base + n - 4, ".mp4") == 0 ? ".mp4" : ".png";
    if (n >= 4 && strcasecmp(base + n - 4, ext) == 0)
        n -= 4;
    snprintf(buf, cap, "%.*s-%d%s", (int)n, base, line, ext);
}

void og_batch_apply(const og_batch_job *job, og_gen_params *p)
{
    p->prompt = job->prompt;
    if (job->negative_prompt)
        p->negative_prompt = job->negative_prompt;
    if (job->has_seed)
        p->seed = job->seed;
    if (job->has_width)
        p->width = job->width;
    if (job->has_height)
        p->height = job->height;
    if (job->has_steps)
        p->steps = job->steps;
    if (job->has_guidance)
        p->guidance_scale = job->guidance_scale;
    if (job->output)
        p->output = job->output;
}
