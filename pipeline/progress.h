/* Progress display for the omnigen program: an og_progress_fn that draws a bar with step i/N,
 * seconds per step and ETA on a terminal, and plain one-line reports when stderr is a pipe or
 * a file (logs stay readable). */
#ifndef OG_PROGRESS_H
#define OG_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "pipeline/omnigen.h"

typedef struct {
    FILE *f;
    bool tty;          /* redraw one line in place */
    const char *label; /* printed in front, e.g. "[2/5] cat.png"; may be NULL */
    double t_decode;   /* when the decode phase started (for its report) */
} og_progress_bar;

/* tty < 0: decide with isatty(fileno(f)). */
void og_progress_bar_init(og_progress_bar *b, FILE *f, const char *label, int tty);
/* An og_progress_fn; user is the og_progress_bar. */
void og_progress_bar_report(void *user, og_phase phase, int step, int steps, double elapsed_s);
/* The bar line for step/steps (without "\r"), for tests: "[#####-----] 3/8 0.52 s/step ETA 2.6s". */
void og_progress_format(char *buf, size_t cap, const char *label, int step, int steps,
                        double elapsed_s, int bar_width);

#endif
