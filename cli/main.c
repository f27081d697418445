/* Entry point: picks the subcommand. `omnigen --prompt ...` is `omnigen generate --prompt ...`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "bench") == 0) {
        if (argc >= 3 && strcmp(argv[2], "attention") == 0)
            return og_cli_bench_attention(argc - 2, argv + 2);
        fprintf(stderr, "omnigen: unknown benchmark '%s'; available: attention\n",
                argc >= 3 ? argv[2] : "");
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return og_cli_serve(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "generate") == 0)
        return og_cli_generate(argc - 1, argv + 1);
    return og_cli_generate(argc, argv);
}
