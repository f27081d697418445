/* `omnigen serve`: the HTTP image endpoint. This build has none, so the subcommand explains that
 * and fails rather than pretending to listen. */
#include <stdio.h>

#include "cli/cli.h"

int og_cli_serve(int argc, char **argv)
{
    fprintf(stderr, "omnigen serve: not available: this omnigen was built without the HTTP "
                    "server; use `omnigen --prompt ...` or the C API (pipeline/omnigen.h)\n");
    return 2;
}
