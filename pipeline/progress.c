/* The progress bar of the omnigen program (see progress.h). On a terminal one line is redrawn
 * with "\r" and cleared to its end; elsewhere every report is a line of its own. */
#include "pipeline/progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void og_progress_bar_init(og_progress_bar *b, FILE *f, const char *label, int tty)
{
    b->f = f;
    b->tty = tty < 0 ? isatty(fileno(f)) : tty > 0;
    b->label = label;
    b->t_decode = 0;
}

static void format_seconds(char *buf, size_t cap, double s)
{
    if (s < 60)
        snprintf(buf, cap, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void og_progress_format(char *buf, size_t cap, const char *label, int step, int steps,
                        double elapsed_s, int bar_width)
{
    double per = step > 0 ? elapsed_s / step : 0;
    char eta[32];
    format_seconds(eta, sizeof eta, per * (steps - step));
    size_t n = 0;
    if (label && *label)
        n += snprintf(buf + n, cap - n, "%s ", label);
    if (bar_width > 0 && n < cap) {
        int filled = steps > 0 ? (int)((long long)bar_width * step / steps) : 0;
        n += snprintf(buf + n, cap - n, "[");
        for (int i = 0; i < bar_width && n + 1 < cap; i++)
            buf[n++] = i < filled ? '#' : '-';
        buf[n < cap ? n : cap - 1] = '\0';
        if (n < cap)
            n += snprintf(buf + n, cap - n, "] ");
    }
    /* Small models take milliseconds per step: keep two significant digits either way. */
    if (n < cap && per < 0.1 && per > 0)
        snprintf(buf + n, cap - n, "step %d/%d  %.1f ms/step  ETA %s", step, steps, per * 1e3, eta);
    else if (n < cap)
        snprintf(buf + n, cap - n, "step %d/%d  %.2f s/step  ETA %s", step, steps, per, eta);
}

void og_progress_bar_report(void *user, og_phase phase, int step, int steps, double elapsed_s)
{
    og_progress_bar *b = user;
    const char *label = b->label ? b->label : "";
    const char *sep = b->label ? " " : "";
    char line[512];
    switch (phase) {
    case OG_PHASE_ENCODE:
        fprintf(b->f, "%s%sencoding the prompt\n", label, sep);
        break;
    case OG_PHASE_DENOISE:
        og_progress_format(line, sizeof line, b->label, step, steps, elapsed_s, b->tty ? 30 : 0);
        if (b->tty)
            fprintf(b->f, "\r%s\033[K%s", line, step == steps ? "\n" : "");
        else
            fprintf(b->f, "%s\n", line);
        break;
    case OG_PHASE_DECODE:
        b->t_decode = now_s();
        fprintf(b->f, "%s%sdecoding\n", label, sep);
        break;
    case OG_PHASE_DONE:
        fprintf(b->f, "%s%sdone in %.2fs (decode %.2fs)\n", label, sep, elapsed_s,
                b->t_decode > 0 ? now_s() - b->t_decode : 0.0);
        break;
    }
    fflush(b->f);
}
