/* The HTTP image endpoint on libmicrohttpd (see server.h). The request body is parsed by the
 * batch-file JSON parser, so a request accepts exactly what a batch line accepts (less "output");
 * the PNG is written by the pipeline into a private temporary folder and sent back. */
#include "serve/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "io/file.h"
#include "pipeline/batch.h"

/* The PNG this server just wrote; the limit only guards against reading a runaway file. */
#define OG_MAX_PNG_BYTES ((size_t)1 << 30)

#define OG_SERVE_PATH "/v1/images/generations"

struct og_server {
    og_ctx *ctx;
    og_server_options opt;
    struct MHD_Daemon *daemon;
    char tmpdir[64];   /* holds the PNG of the request being served */
    char png[96];
};

/* The body of one request, collected across calls of the access handler. */
typedef struct {
    char *data;
    size_t len;
    bool too_large;
} request_body;

/* Sends `data` (malloc'd, owned by the response from here on). */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
                             void *data, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *msg)
{
    og_log(OG_LOG_INFO, "serve: %u %s", code, msg);
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", msg);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    char *body = malloc(n + 2);
    if (!body) {
        cJSON_free(text);
        return MHD_NO;
    }
    memcpy(body, text, n);
    body[n] = '\n';
    body[n + 1] = '\0';
    cJSON_free(text);
    return reply(c, code, "application/json", body, n + 1);
}

static enum MHD_Result generate(og_server *srv, struct MHD_Connection *c, const request_body *b)
{
    if (b->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the request body is over %zu bytes", srv->opt.max_body);
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, msg);
    }
    const char *text = b->data ? b->data : "";
    if (strlen(text) != b->len)
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "the request body holds a NUL byte");
    size_t lead = strspn(text, " \t\r\n");
    if (text[lead] != '{')
        return reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "expected a JSON object such as {\"prompt\": \"a cat\"}");
    og_batch_job job;
    og_batch_parse_line(text, 0, &job);
    enum MHD_Result ret;
    if (job.error) {
        ret = reply_error(c, MHD_HTTP_BAD_REQUEST, job.error);
    } else if (job.output) {
        ret = reply_error(c, MHD_HTTP_BAD_REQUEST, "\"output\" is not accepted over HTTP: the "
                                                   "image is the response");
    } else {
        og_gen_params p = srv->opt.defaults;
        og_batch_apply(&job, &p);
        p.output = srv->png;
        p.progress = NULL;
        og_image_result img;
        og_status s = og_generate(srv->ctx, &p, &img);
        char *png = NULL;
        size_t len = 0;
        if (s == OG_OK) {
            og_image_result_free(&img);
            s = og_read_file(srv->png, OG_MAX_PNG_BYTES, &png, &len);
            unlink(srv->png);
        }
        if (s == OG_OK) {
            og_log(OG_LOG_INFO, "serve: 200 %dx%d seed %llu: %s", p.width, p.height,
                   (unsigned long long)p.seed, p.prompt);
            ret = reply(c, MHD_HTTP_OK, "image/png", png, len);
        } else {
            /* A request the model refuses is the client's to fix; anything else is ours. */
            bool client = s == OG_ERR_INVALID_ARG || s == OG_ERR_PARALLEL;
            ret = reply_error(c, client ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR,
                              og_error_message());
        }
    }
    og_batch_job_clear(&job);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    og_server *srv = cls;
    if (strcmp(url, OG_SERVE_PATH) != 0)
        return reply_error(c, MHD_HTTP_NOT_FOUND, "not found: the endpoint is POST " OG_SERVE_PATH);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST " OG_SERVE_PATH);
    request_body *b = *con_cls;
    if (!b) {
        b = calloc(1, sizeof *b);
        *con_cls = b;
        return b ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (b->too_large || b->len + n > srv->opt.max_body) {
            b->too_large = true;
            return MHD_YES;
        }
        char *grown = realloc(b->data, b->len + n + 1);
        if (!grown)
            return MHD_NO;
        memcpy(grown + b->len, upload_data, n);
        b->data = grown;
        b->len += n;
        b->data[b->len] = '\0';
        return MHD_YES;
    }
    return generate(srv, c, b);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request_body *b = *con_cls;
    if (b)
        free(b->data);
    free(b);
    *con_cls = NULL;
}

og_status og_server_start(og_server **out, og_ctx *ctx, const og_server_options *o)
{
    *out = NULL;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (o->port < 0 || o->port > 65535)
        return og_fail(OG_ERR_INVALID_ARG, "port %d is not a TCP port", o->port);
    if (inet_pton(AF_INET, o->host, &addr.sin_addr) != 1)
        return og_fail(OG_ERR_INVALID_ARG, "host '%s' is not an IPv4 address (e.g. 127.0.0.1)",
                       o->host);
    og_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return og_fail(OG_ERR_OOM, "out of memory");
    srv->ctx = ctx;
    srv->opt = *o;
    if (!srv->opt.max_body)
        srv->opt.max_body = 64 * 1024;
    snprintf(srv->tmpdir, sizeof srv->tmpdir, "/tmp/omnigen-serve-XXXXXX");
    if (!mkdtemp(srv->tmpdir)) {
        free(srv);
        return og_fail(OG_ERR_IO, "cannot create a temporary folder in /tmp: %s",
                       strerror(errno));
    }
    snprintf(srv->png, sizeof srv->png, "%s/image.png", srv->tmpdir);
    srv->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)o->port, NULL, NULL,
                                   on_request, srv, MHD_OPTION_SOCK_ADDR, &addr,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        rmdir(srv->tmpdir);
        free(srv);
        return og_fail(OG_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this "
                                  "machine)", o->host, o->port);
    }
    *out = srv;
    return OG_OK;
}

int og_server_port(const og_server *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : s->opt.port;
}

void og_server_stop(og_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    rmdir(s->tmpdir);
    free(s);
}
