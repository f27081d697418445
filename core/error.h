/* Status codes, the per-thread error context and levelled logging.
 * Functions return an og_status; on failure the message is stored for the calling thread and read
 * with og_error_message(). Deep code never prints errors itself: the caller decides. */
#ifndef OG_ERROR_H
#define OG_ERROR_H

#include <stdarg.h>

typedef enum {
    OG_OK = 0,
    OG_ERR_INVALID_ARG,   /* a bad flag, size or argument: the user can fix it */
    OG_ERR_IO,            /* open/read/write/mmap failed */
    OG_ERR_FORMAT,        /* a file is malformed (safetensors, JSON, tokenizer) */
    OG_ERR_SHAPE,         /* a tensor has the wrong shape or dtype */
    OG_ERR_NOT_FOUND,     /* a file, tensor or key is missing */
    OG_ERR_OOM,           /* allocation failed or an arena is exhausted */
    OG_ERR_UNSUPPORTED,   /* valid request this build or model cannot serve */
    OG_ERR_PARALLEL,      /* an impossible parallel layout */
    OG_ERR_COMM,          /* a communicator failed */
    OG_ERR_DEVICE,        /* a GPU error, or no GPU */
    OG_ERR_INTERNAL
} og_status;

/* Stores a formatted message for this thread and returns `code`, so callers write
 * `return og_fail(OG_ERR_IO, "cannot open %s", path);`. */
og_status og_fail(og_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with context: "loading transformer: <old message>". */
og_status og_fail_context(og_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *og_error_message(void);
const char *og_status_name(og_status s);
void og_clear_error(void);

/* Propagate a failing status unchanged. */
#define OG_TRY(expr)                    \
    do {                                \
        og_status og_try_s_ = (expr);   \
        if (og_try_s_ != OG_OK)         \
            return og_try_s_;           \
    } while (0)

typedef enum { OG_LOG_ERROR = 0, OG_LOG_WARN, OG_LOG_INFO, OG_LOG_DEBUG } og_log_level;

void og_log_set_level(og_log_level level);
og_log_level og_log_get_level(void);
void og_log(og_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
