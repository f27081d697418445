/* The omnigen program's subcommands. main.c dispatches on the first argument; each subcommand
 * parses its own flags, prints its own errors and returns the process exit code. */
#ifndef OG_CLI_H
#define OG_CLI_H

/* omnigen [generate] --model DIR --prompt ... : text to image/video (the default subcommand). */
int og_cli_generate(int argc, char **argv);
/* omnigen bench attention ... : SP attention on in-process ranks against single-rank. */
int og_cli_bench_attention(int argc, char **argv);
/* omnigen serve ... : the HTTP image endpoint (when built with libmicrohttpd). */
int og_cli_serve(int argc, char **argv);

#endif
