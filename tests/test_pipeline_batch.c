/* Batch prompt files and the progress line: plain and JSON lines, skipped lines, per-line errors
 * with their line numbers, output naming, overriding generation parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/batch.h"
#include "pipeline/progress.h"
#include "testutil.h"

static void test_lines(void)
{
    og_batch_job j;
    CHECK(!og_batch_parse_line("", 1, &j), "blank line is a job");
    CHECK(!og_batch_parse_line("   \t\r", 1, &j), "whitespace line is a job");
    CHECK(!og_batch_parse_line("# a comment", 1, &j), "comment is a job");
    CHECK(!og_batch_parse_line("  # indented comment", 1, &j), "indented comment is a job");

    CHECK(og_batch_parse_line("  a cat on a mat \r", 7, &j), "plain prompt skipped");
    CHECK(j.line == 7 && !j.error && j.prompt && strcmp(j.prompt, "a cat on a mat") == 0,
          "plain prompt: line %d prompt '%s'", j.line, j.prompt ? j.prompt : "(null)");
    CHECK(!j.has_seed && !j.has_width && !j.output, "plain prompt sets more than the prompt");
    og_batch_job_clear(&j);

    CHECK(og_batch_parse_line("{\"prompt\": \"dog\", \"negative_prompt\": \"blur\", \"seed\": 9, "
                              "\"width\": 64, \"height\": 32, \"steps\": 3, "
                              "\"guidance_scale\": 2.5, \"output\": \"d.png\"}", 2, &j),
          "JSON skipped");
    CHECK(!j.error, "JSON line error: %s", j.error ? j.error : "");
    CHECK(j.prompt && strcmp(j.prompt, "dog") == 0, "prompt");
    CHECK(j.negative_prompt && strcmp(j.negative_prompt, "blur") == 0, "negative prompt");
    CHECK(j.has_seed && j.seed == 9, "seed");
    CHECK(j.has_width && j.width == 64 && j.has_height && j.height == 32, "size");
    CHECK(j.has_steps && j.steps == 3, "steps");
    CHECK(j.has_guidance && j.guidance_scale == 2.5f, "guidance");
    CHECK(j.output && strcmp(j.output, "d.png") == 0, "output");

    og_gen_params p = OG_GEN_PARAMS_DEFAULT;
    p.output = "base.png";
    og_batch_apply(&j, &p);
    CHECK(strcmp(p.prompt, "dog") == 0 && strcmp(p.negative_prompt, "blur") == 0 &&
              p.seed == 9 && p.width == 64 && p.height == 32 && p.steps == 3 &&
              p.guidance_scale == 2.5f && strcmp(p.output, "d.png") == 0,
          "og_batch_apply did not copy every field");
    og_batch_job_clear(&j);

    /* A JSON line that sets only the prompt leaves the other parameters alone. */
    og_batch_parse_line("{\"prompt\": \"x\"}", 3, &j);
    p = OG_GEN_PARAMS_DEFAULT;
    p.seed = 5;
    og_batch_apply(&j, &p);
    CHECK(p.seed == 5 && p.width == 1024 && p.steps == 8 && !p.output, "defaults overridden");
    og_batch_job_clear(&j);

    static const char *bad[][2] = {
        {"{\"prompt\": \"x\", \"seed\": -1}", "\"seed\" must be an integer"},
        {"{\"prompt\": \"x\", \"steps\": 2.5}", "\"steps\" must be an integer"},
        {"{\"prompt\": \"x\", \"width\": \"64\"}", "\"width\" must be an integer"},
        {"{\"prompt\": 3}", "\"prompt\" must be a string"},
        {"{\"seed\": 3}", "no \"prompt\""},
        {"{\"prompt\": \"x\", \"sead\": 3}", "unknown key \"sead\""},
        {"{\"prompt\": \"x\"", "invalid JSON"},
        {"{\"prompt\": \"x\"} trailing", "invalid JSON"},
        {"{\"prompt\": \"x\", \"guidance_scale\": -1}", "\"guidance_scale\" must be a number"},
        {"{\"prompt\": \"x\", \"output\": \"\"}", "\"output\" is empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(og_batch_parse_line(bad[i][0], 4, &j), "bad line %zu skipped", i);
        CHECK(j.error && strstr(j.error, bad[i][1]), "line '%s': error '%s', expected '%s'",
              bad[i][0], j.error ? j.error : "(none)", bad[i][1]);
        CHECK(!j.prompt && j.line == 4, "bad line keeps a prompt or loses its number");
        og_batch_job_clear(&j);
    }
}

static void test_file(void)
{
    char path[] = "/tmp/og_batch_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    fputs("# prompts\n"
          "first prompt\n"
          "\n"
          "{\"prompt\": \"second\", \"seed\": 3}\n"
          "{\"prompt\": \"broken\", \"seed\": \"x\"}\n"
          "last without newline", f);
    fclose(f);
    og_batch b;
    CHECK_OK(og_batch_read(path, &b));
    CHECK(b.count == 4, "%d jobs, expected 4", b.count);
    if (b.count == 4) {
        int lines[] = {2, 4, 5, 6};
        for (int i = 0; i < 4; i++)
            CHECK(b.jobs[i].line == lines[i], "job %d on line %d, expected %d", i,
                  b.jobs[i].line, lines[i]);
        CHECK(!b.jobs[0].error && !b.jobs[1].error && b.jobs[2].error && !b.jobs[3].error,
              "errors on the wrong lines");
        CHECK(strcmp(b.jobs[3].prompt, "last without newline") == 0, "last line '%s'",
              b.jobs[3].prompt);
    }
    og_batch_free(&b);
    unlink(path);

    CHECK(og_batch_read("/nonexistent/prompts.txt", &b) == OG_ERR_IO, "missing file");
    CHECK(strstr(og_error_message(), "/nonexistent/prompts.txt"), "message: %s",
          og_error_message());
}

static void test_output_names(void)
{
    char buf[256];
    og_batch_output_name(buf, sizeof buf, "omnigen.png", 3);
    CHECK(strcmp(buf, "omnigen-3.png") == 0, "got %s", buf);
    og_batch_output_name(buf, sizeof buf, "out/cat.PNG", 12);
    CHECK(strcmp(buf, "out/cat-12.png") == 0, "got %s", buf);
    og_batch_output_name(buf, sizeof buf, "noext", 1);
    CHECK(strcmp(buf, "noext-1.png") == 0, "got %s", buf);
}

static void test_progress(void)
{
    char buf[256];
    og_progress_format(buf, sizeof buf, NULL, 2, 8, 1.0, 8);
    CHECK(strcmp(buf, "[##------] step 2/8  0.50 s/step  ETA 3.0s") == 0, "got '%s'", buf);
    og_progress_format(buf, sizeof buf, NULL, 4, 8, 0.1, 0);
    CHECK(strcmp(buf, "step 4/8  25.0 ms/step  ETA 0.1s") == 0, "got '%s'", buf);
    og_progress_format(buf, sizeof buf, "[1/2]", 1, 100, 2.0, 0);
    CHECK(strcmp(buf, "[1/2] step 1/100  2.00 s/step  ETA 3m18s") == 0, "got '%s'", buf);

    /* Not a terminal: one plain line per step, no carriage returns or escapes. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    og_progress_bar bar;
    og_progress_bar_init(&bar, mem, NULL, 0);
    for (int i = 1; i <= 3; i++)
        og_progress_bar_report(&bar, OG_PHASE_DENOISE, i, 3, 0.5 * i);
    fclose(mem);
    CHECK(strcmp(text, "step 1/3  0.50 s/step  ETA 1.0s\nstep 2/3  0.50 s/step  ETA 0.5s\n"
                       "step 3/3  0.50 s/step  ETA 0.0s\n") == 0, "plain output:\n%s", text);
    free(text);

    /* A terminal: the line is redrawn in place and ends with a newline after the last step. */
    mem = open_memstream(&text, &len);
    og_progress_bar_init(&bar, mem, NULL, 1);
    og_progress_bar_report(&bar, OG_PHASE_DENOISE, 1, 2, 1.0);
    og_progress_bar_report(&bar, OG_PHASE_DENOISE, 2, 2, 2.0);
    fclose(mem);
    CHECK(text[0] == '\r' && strchr(text + 1, '\r') && text[len - 1] == '\n' &&
              strchr(text, '\n') == text + len - 1, "terminal output: %s", text);
    free(text);
}

int main(void)
{
    test_lines();
    test_file();
    test_output_names();
    test_progress();
    return og_test_finish("test_pipeline_batch");
}
