/* `omnigen serve`: loads the model once and answers POST /v1/images/generations until SIGINT or
 * SIGTERM (see serve/server.h). A build without libmicrohttpd says so and exits 2. */
#include <signal.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "core/error.h"

#ifdef OG_HAVE_SERVER
#include <pthread.h>

#include "serve/server.h"

int og_cli_serve(int argc, char **argv)
{
    og_cli_opts o;
    int rc = og_cli_parse(&o, OG_CLI_SERVE, argc, argv);
    if (rc >= 0)
        return rc;

    /* Block the stop signals in every thread (the daemon's inherits the mask) and wait for
     * them here, so a signal never interrupts a generation half-way. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    og_ctx *ctx;
    if (og_load_dir(&ctx, o.model, &o.lp) != OG_OK) {
        fprintf(stderr, "omnigen serve: --model %s: %s\n", o.model, og_error_message());
        return 1;
    }
    og_cli_model_defaults(&o, ctx);
    og_server_options so = {.host = o.host, .port = o.port, .defaults = o.p};
    og_server *srv;
    if (og_server_start(&srv, ctx, &so) != OG_OK) {
        fprintf(stderr, "omnigen serve: %s\n", og_error_message());
        og_free(ctx);
        return 1;
    }
    fprintf(stderr, "omnigen serve: listening on http://%s:%d/v1/images/generations (model %s)\n",
            o.host, og_server_port(srv), o.model);
    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "omnigen serve: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    og_server_stop(srv);
    og_free(ctx);
    return 0;
}

#else

int og_cli_serve(int argc, char **argv)
{
    fprintf(stderr, "omnigen serve: not available: this omnigen was built without the HTTP "
                    "server (libmicrohttpd was not found; run scripts/install-deps.sh and "
                    "rebuild)\n");
    return 2;
}

#endif
