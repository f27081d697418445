/* og_run_ranks: in-process ranks as threads, each with its own OpenMP team. The first rank to
 * fail aborts the world, so its peers return instead of waiting for it, and its message becomes
 * the caller's. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "parallel/comm.h"
#include "parallel/sp.h"

typedef struct {
    og_inproc_world *world;
    og_rank_fn fn;
    void *arg;
    int threads;
    pthread_mutex_t mu;
    og_status first; /* the first failure in time: the cause; later ones are its echoes */
    char message[1024];
} run_state;

typedef struct {
    run_state *run;
    int rank;
} rank_thread;

static void *rank_main(void *p)
{
    rank_thread *t = p;
    run_state *run = t->run;
    og_set_threads(run->threads);
    og_status st = run->fn(og_inproc_comm(run->world, t->rank), run->arg);
    if (st != OG_OK) {
        pthread_mutex_lock(&run->mu);
        if (run->first == OG_OK) {
            run->first = st;
            snprintf(run->message, sizeof run->message, "%s", og_error_message());
        }
        pthread_mutex_unlock(&run->mu);
        og_inproc_world_abort(run->world);
    }
    return NULL;
}

og_status og_run_ranks_copy(int world, int threads_per_rank, const og_inproc_copy *copy,
                            og_rank_fn fn, void *arg)
{
    run_state run = {.fn = fn, .arg = arg, .first = OG_OK};
    run.threads = threads_per_rank > 0 ? threads_per_rank : og_num_cores() / (world > 0 ? world : 1);
    if (run.threads < 1)
        run.threads = 1;
    OG_TRY(og_inproc_world_create(&run.world, world, copy));
    pthread_t *tid = calloc((size_t)world, sizeof *tid);
    rank_thread *ts = calloc((size_t)world, sizeof *ts);
    if (!tid || !ts) {
        free(tid);
        free(ts);
        og_inproc_world_free(run.world);
        return og_fail(OG_ERR_OOM, "cannot allocate %d rank threads", world);
    }
    pthread_mutex_init(&run.mu, NULL);
    int started = 0;
    for (; started < world; started++) {
        ts[started] = (rank_thread){.run = &run, .rank = started};
        if (pthread_create(&tid[started], NULL, rank_main, &ts[started]) != 0)
            break;
    }
    if (started < world) {
        pthread_mutex_lock(&run.mu);
        if (run.first == OG_OK) {
            run.first = OG_ERR_INTERNAL;
            snprintf(run.message, sizeof run.message, "cannot start thread for rank %d", started);
        }
        pthread_mutex_unlock(&run.mu);
        og_inproc_world_abort(run.world);
    }
    for (int r = 0; r < started; r++)
        pthread_join(tid[r], NULL);
    pthread_mutex_destroy(&run.mu);
    og_inproc_world_free(run.world);
    free(tid);
    free(ts);
    if (run.first != OG_OK)
        return og_fail(run.first, "%s", run.message);
    return OG_OK;
}

og_status og_run_ranks(int world, int threads_per_rank, og_rank_fn fn, void *arg)
{
    return og_run_ranks_copy(world, threads_per_rank, NULL, fn, arg);
}
