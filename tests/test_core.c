/* Tensor views, the arena allocator and the per-thread error context: sizes, strides, shape checks
 * and their messages, alignment, exhaustion, mark/release, peak, and error isolation between
 * threads (in-process ranks are threads). */
#include <pthread.h>
#include <string.h>

#include "core/arena.h"
#include "core/tensor.h"
#include "testutil.h"

static og_status fails_inside(void)
{
    OG_TRY(og_fail(OG_ERR_NOT_FOUND, "tensor %s missing", "w"));
    return OG_OK;
}

static void *thread_errors(void *arg)
{
    og_fail(OG_ERR_IO, "thread %d failed", *(int *)arg);
    static _Thread_local char copy[64];
    snprintf(copy, sizeof copy, "%s", og_error_message());
    return strcmp(copy, *(int *)arg ? "thread 1 failed" : "thread 0 failed") == 0 ? arg : NULL;
}

int main(void)
{
    /* tensor */
    float buf[2 * 3 * 4];
    int64_t shape[3] = {2, 3, 4};
    og_tensor t = og_tensor_make(buf, OG_F32, 3, shape);
    CHECK(t.stride[0] == 12 && t.stride[1] == 4 && t.stride[2] == 1, "row-major strides");
    CHECK(og_tensor_numel(&t) == 24 && og_tensor_nbytes(&t) == 96, "numel/nbytes");
    CHECK(og_tensor_is_contiguous(&t), "fresh tensor is contiguous");
    og_tensor v = t;
    v.shape[2] = 2; /* a column slice keeps the parent's strides */
    CHECK(!og_tensor_is_contiguous(&v), "sliced view is not contiguous");
    og_tensor bf = og_tensor_make(buf, OG_BF16, 3, shape);
    CHECK(og_tensor_nbytes(&bf) == 48, "bf16 nbytes");
    int64_t ok_shape[3] = {2, -1, 4}, bad_shape[3] = {2, 5, 4};
    CHECK_OK(og_tensor_expect(&t, "x", 3, ok_shape));
    CHECK(og_tensor_expect(&t, "blocks.0.attn.qkv.weight", 3, bad_shape) == OG_ERR_SHAPE,
          "wrong shape refused");
    CHECK(strcmp(og_error_message(),
                 "blocks.0.attn.qkv.weight has shape [2, 3, 4], expected [2, 5, 4]") == 0,
          "shape message: %s", og_error_message());
    CHECK(og_tensor_expect(&t, "x", 2, ok_shape) == OG_ERR_SHAPE, "wrong rank refused");
    char sb[8];
    CHECK(strcmp(og_shape_str(sb, sizeof sb, 3, shape), "[2, 3, ") == 0, "truncated shape: %s", sb);
    og_tensor scalar = og_tensor_make(buf, OG_F32, 0, NULL);
    CHECK(og_tensor_numel(&scalar) == 1, "0-d tensor has one element");

    /* arena */
    og_arena a;
    CHECK_OK(og_arena_init(&a, 1000));
    CHECK(a.cap == 1024, "capacity rounded to 64: %zu", a.cap);
    char *p1 = og_arena_alloc(&a, 10), *p2 = og_arena_alloc(&a, 100);
    CHECK(p1 && p2 && ((uintptr_t)p1 % 64) == 0 && ((uintptr_t)p2 % 64) == 0 && p2 - p1 == 64,
          "64-byte aligned bump allocation");
    size_t mark = og_arena_mark(&a);
    char *p3 = og_arena_calloc(&a, 500);
    int nonzero = 0;
    for (int i = 0; i < 500; i++)
        nonzero += p3 && p3[i] != 0;
    CHECK(p3 && nonzero == 0, "calloc zero-fills");
    memset(p3, 0xab, 500);
    CHECK(a.peak == 192 + 500, "peak %zu", a.peak);
    og_clear_error();
    CHECK(og_arena_alloc(&a, 1024) == NULL, "exhausted arena returns NULL");
    CHECK(strstr(og_error_message(), "arena exhausted") != NULL, "OOM message: %s",
          og_error_message());
    CHECK(og_arena_alloc(&a, SIZE_MAX) == NULL, "huge request does not wrap around");
    og_arena_release(&a, mark);
    CHECK(og_arena_calloc(&a, 500) == p3 && p3[0] == 0, "release recycles memory");
    CHECK(a.peak == 692, "peak is kept over release");
    og_arena_reset(&a);
    CHECK(og_arena_alloc(&a, 1024) == p1, "reset: the whole capacity again");
    CHECK(og_arena_alloc(&a, 1) == NULL, "full after a whole-capacity allocation");
    og_arena_free(&a);
    CHECK(a.base == NULL && a.cap == 0, "free clears the arena");
    CHECK_OK(og_arena_init(&a, 0));
    CHECK(og_arena_alloc(&a, 1) == NULL, "empty arena allocates nothing");
    og_arena_free(&a);

    /* errors */
    CHECK(fails_inside() == OG_ERR_NOT_FOUND, "OG_TRY propagates the status");
    CHECK(strcmp(og_error_message(), "tensor w missing") == 0, "message: %s", og_error_message());
    CHECK(og_fail_context(OG_ERR_NOT_FOUND, "loading %s", "transformer") == OG_ERR_NOT_FOUND,
          "context keeps the status");
    CHECK(strcmp(og_error_message(), "loading transformer: tensor w missing") == 0,
          "context message: %s", og_error_message());
    og_clear_error();
    CHECK(og_error_message()[0] == '\0', "clear");
    CHECK(strcmp(og_status_name(OG_ERR_SHAPE), "shape mismatch") == 0 &&
              strcmp(og_status_name(OG_ERR_INTERNAL), "internal error") == 0 &&
              strcmp(og_status_name((og_status)99), "unknown status") == 0,
          "status names");
    char longmsg[4000];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    og_fail(OG_ERR_IO, "%s", longmsg);
    CHECK(strlen(og_error_message()) < 4000 && strlen(og_error_message()) > 1000,
          "long messages are truncated, not overflowed");
    og_fail(OG_ERR_IO, "main thread");
    pthread_t th[2];
    int ids[2] = {0, 1};
    void *res[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, thread_errors, &ids[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], &res[i]);
    CHECK(res[0] == &ids[0] && res[1] == &ids[1], "each thread sees its own message");
    CHECK(strcmp(og_error_message(), "main thread") == 0, "other threads leave ours alone");
    og_log_set_level(OG_LOG_DEBUG);
    CHECK(og_log_get_level() == OG_LOG_DEBUG, "log level");
    og_log_set_level(OG_LOG_WARN);
    return og_test_finish("test_core");
}
