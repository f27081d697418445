/* The per-thread error message and stderr logging. In-process ranks are threads, so each rank
 * keeps its own message. */
#include "core/error.h"

#include <stdio.h>
#include <string.h>

#define OG_ERRBUF 2048

static _Thread_local char og_errbuf[OG_ERRBUF];
static og_log_level og_level = OG_LOG_WARN;

og_status og_fail(og_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(og_errbuf, sizeof og_errbuf, fmt, ap);
    va_end(ap);
    return code;
}

og_status og_fail_context(og_status code, const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right and write "prefix: " in front, truncating the tail if needed. */
    size_t plen = strlen(prefix) + 2;
    size_t olen = strnlen(og_errbuf, OG_ERRBUF - 1);
    if (plen + olen > OG_ERRBUF - 1)
        olen = OG_ERRBUF - 1 - plen;
    memmove(og_errbuf + plen, og_errbuf, olen);
    og_errbuf[plen + olen] = '\0';
    memcpy(og_errbuf, prefix, plen - 2);
    og_errbuf[plen - 2] = ':';
    og_errbuf[plen - 1] = ' ';
    return code;
}

const char *og_error_message(void) { return og_errbuf; }

void og_clear_error(void) { og_errbuf[0] = '\0'; }

const char *og_status_name(og_status s)
{
    static const char *names[] = {
        "ok", "invalid argument", "I/O error", "bad format", "shape mismatch", "not found",
        "out of memory", "unsupported", "invalid parallel layout", "communication error",
        "device error", "internal error",
    };
    if ((unsigned)s < sizeof names / sizeof names[0])
        return names[s];
    return "unknown status";
}

void og_log_set_level(og_log_level level) { og_level = level; }
og_log_level og_log_get_level(void) { return og_level; }

void og_log(og_log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"error", "warning", "info", "debug"};
    if (level > og_level)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line keeps lines from different rank threads whole. */
    fprintf(stderr, "omnigen: %s: %s\n", tags[level], line);
}
