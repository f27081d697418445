/* The HTTP image endpoint (built when libmicrohttpd is found: OG_HAVE_SERVER).
 *
 *     POST /v1/images/generations
 *     {"prompt": "a cat", "negative_prompt": "...", "seed": 7, "width": 512, "height": 512,
 *      "steps": 8, "guidance_scale": 0}
 *
 * answers 200 with the PNG (image/png, the same text chunks as the CLI writes). Every field but
 * prompt is optional and defaults to the server's options. Problems are JSON bodies
 * {"error": {"message": "..."}}: 400 for a body that is not a JSON object, an unknown key, a bad
 * value or a request the model refuses (size, layout), 404 for another path, 405 for another
 * method, 413 for a body over max_body bytes, 500 when the generation itself fails.
 * Requests are served one at a time on the daemon's thread (one og_ctx runs one generation at a
 * time); the parallel layout and thread count of the defaults apply to every request. */
#ifndef OG_SERVE_SERVER_H
#define OG_SERVE_SERVER_H

#include <stddef.h>

#include "pipeline/omnigen.h"

typedef struct {
    const char *host;        /* IPv4 address to bind, e.g. "127.0.0.1" or "0.0.0.0" */
    int port;                /* 0 = any free port: see og_server_port */
    og_gen_params defaults;  /* prompt and output are ignored */
    size_t max_body;         /* bytes; 0 = 64 KiB */
} og_server_options;

typedef struct og_server og_server;

/* Starts listening; requests run on the daemon's own thread until og_server_stop. The context
 * must outlive the server. */
og_status og_server_start(og_server **out, og_ctx *ctx, const og_server_options *o);
/* The bound TCP port. */
int og_server_port(const og_server *s);
void og_server_stop(og_server *s);

#endif
