/* A fixed-size worker pool with a bounded FIFO of intrusive jobs. The
 * server runs store work here (candidate search, one batch of C-FIND
 * matches) so a slow query never holds up the loop thread that answers
 * C-ECHO and moves bytes for every other association. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"

typedef struct worker {
    struct mwl_pool *pool;
    size_t index;
    pthread_t thread;
} worker;

struct mwl_pool {
    const mwl_mem *mem;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    mwl_pool_job *head, *tail;       /* normal jobs, FIFO */
    mwl_pool_job *bg_head, *bg_tail; /* background jobs, FIFO */
    size_t queued, max_queued;       /* both queues together */
    size_t bg_running, bg_limit;     /* background jobs running, and how many may */
    bool closing;
    worker *workers;
    size_t threads;
};

/* The next job a worker may run: a normal one first; a background one
 * only while fewer than bg_limit run (closing lifts the limit, so the
 * queue drains). NULL when none may run now. Mutex held. */
static mwl_pool_job *take(mwl_pool *pool, bool *background)
{
    mwl_pool_job *job = pool->head;
    *background = false;
    if (job) {
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
    } else if (pool->bg_head && (pool->bg_running < pool->bg_limit || pool->closing)) {
        job = pool->bg_head;
        pool->bg_head = job->next;
        if (!pool->bg_head)
            pool->bg_tail = NULL;
        *background = true;
        pool->bg_running++;
    } else {
        return NULL;
    }
    pool->queued--;
    job->next = NULL;
    return job;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    mwl_pool *pool = w->pool;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        bool background = false;
        mwl_pool_job *job = take(pool, &background);
        if (!job) {
            if (pool->closing && !pool->head && !pool->bg_head)
                break; /* closing and the queues are drained */
            pthread_cond_wait(&pool->cond, &pool->mutex);
            continue;
        }
        pthread_mutex_unlock(&pool->mutex);
        job->fn(job, w->index); /* may free the job */
        pthread_mutex_lock(&pool->mutex);
        if (background) {
            pool->bg_running--;
            if (pool->bg_head)
                pthread_cond_signal(&pool->cond); /* a waiting background job may start now */
        }
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

/* Joins the first `started` workers after telling them to finish. */
static void stop_workers(mwl_pool *pool, size_t started)
{
    pthread_mutex_lock(&pool->mutex);
    pool->closing = true;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    for (size_t i = 0; i < started; i++)
        pthread_join(pool->workers[i].thread, NULL);
}

int mwl_pool_new(size_t threads, size_t max_queued, const mwl_mem *mem, mwl_pool **out, mwl_diag *diag)
{
    if (!out)
        return MWL_E_INVALID;
    *out = NULL;
    if (threads == 0 || threads > 1024 || max_queued == 0) {
        mwl_diag_set(diag, 0, 0, "pool: threads must be 1..1024 and max_queued >= 1");
        return MWL_E_INVALID;
    }
    mwl_pool *pool = mwl_mem_calloc(mem, 1, sizeof *pool);
    if (!pool)
        return MWL_E_NOMEM;
    pool->mem = mem;
    pool->max_queued = max_queued;
    pool->bg_limit = threads;
    pool->workers = mwl_mem_calloc(mem, threads, sizeof *pool->workers);
    if (!pool->workers) {
        mwl_mem_free(mem, pool);
        return MWL_E_NOMEM;
    }
    if (pthread_mutex_init(&pool->mutex, NULL) != 0) {
        mwl_mem_free(mem, pool->workers);
        mwl_mem_free(mem, pool);
        return MWL_E_NOMEM;
    }
    if (pthread_cond_init(&pool->cond, NULL) != 0) {
        pthread_mutex_destroy(&pool->mutex);
        mwl_mem_free(mem, pool->workers);
        mwl_mem_free(mem, pool);
        return MWL_E_NOMEM;
    }

    /* Workers inherit the creating thread's signal mask. Blocking the
     * asynchronous signals there means SIGTERM/SIGINT are handled on a
     * thread that is not inside a job, and the loop's handler never runs
     * on a worker. Synchronous faults (SIGSEGV, …) must stay deliverable. */
    sigset_t block, old;
    sigfillset(&block);
    sigdelset(&block, SIGSEGV);
    sigdelset(&block, SIGBUS);
    sigdelset(&block, SIGFPE);
    sigdelset(&block, SIGILL);
    sigdelset(&block, SIGABRT);
    sigdelset(&block, SIGTRAP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    size_t started = 0;
    int err = 0;
    for (; started < threads; started++) {
        pool->workers[started].pool = pool;
        pool->workers[started].index = started;
        err = pthread_create(&pool->workers[started].thread, NULL, worker_main, &pool->workers[started]);
        if (err != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pool->threads = started;
    if (started < threads) {
        mwl_diag_set(diag, 0, 0, "pool: cannot start thread %zu: %s", started, strerror(err));
        stop_workers(pool, started);
        pthread_cond_destroy(&pool->cond);
        pthread_mutex_destroy(&pool->mutex);
        mwl_mem_free(mem, pool->workers);
        mwl_mem_free(mem, pool);
        return MWL_E_IO;
    }
    *out = pool;
    return MWL_OK;
}

int mwl_pool_submit(mwl_pool *pool, mwl_pool_job *job)
{
    if (!pool || !job || !job->fn)
        return MWL_E_INVALID;
    pthread_mutex_lock(&pool->mutex);
    if (pool->closing) {
        pthread_mutex_unlock(&pool->mutex);
        return MWL_E_CLOSED;
    }
    if (pool->queued >= pool->max_queued) {
        pthread_mutex_unlock(&pool->mutex);
        return MWL_E_LIMIT;
    }
    job->next = NULL;
    mwl_pool_job **head = job->background ? &pool->bg_head : &pool->head;
    mwl_pool_job **tail = job->background ? &pool->bg_tail : &pool->tail;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
    pool->queued++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
    return MWL_OK;
}

void mwl_pool_set_background_limit(mwl_pool *pool, size_t limit)
{
    pthread_mutex_lock(&pool->mutex);
    pool->bg_limit = limit ? limit : 1;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->mutex);
}

size_t mwl_pool_threads(const mwl_pool *pool)
{
    return pool->threads;
}

void mwl_pool_free(mwl_pool *pool)
{
    if (!pool)
        return;
    stop_workers(pool, pool->threads);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->mutex);
    mwl_mem_free(pool->mem, pool->workers);
    mwl_mem_free(pool->mem, pool);
}
