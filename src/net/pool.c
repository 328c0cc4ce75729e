/* A fixed-size worker pool with a bounded FIFO of intrusive jobs. The
 * server runs store work here (candidate search, one batch of C-FIND
 * matches) so a slow query never holds up the loop thread that answers
 * C-ECHO and moves bytes for every other association. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net/net_int.h"

typedef struct worker {
    struct mwl_pool *pool;
    size_t index;
    bool background; /* takes background jobs only, at a lower CPU priority */
    pthread_t thread;
} worker;

struct mwl_pool {
    const mwl_mem *mem;
    pthread_mutex_t mutex;
    pthread_cond_t cond;             /* normal workers wait here */
    pthread_cond_t bg_cond;          /* dedicated background workers wait here */
    mwl_pool_job *head, *tail;       /* normal jobs, FIFO */
    mwl_pool_job *bg_head, *bg_tail; /* background jobs, FIFO */
    size_t queued, max_queued;       /* both queues together */
    size_t bg_running, bg_limit;     /* background jobs running on normal workers, and how many may */
    size_t bg_threads;               /* dedicated background workers (0: none) */
    int bg_nice;                     /* added to their nice value */
    bool closing;
    worker *workers;
    size_t threads; /* all workers, background ones included */
};

/* The next job worker `w` may run. A dedicated background worker takes
 * background jobs only. A normal worker takes a normal job first, and a
 * background one only when there are no dedicated background workers and
 * fewer than bg_limit background jobs run (closing lifts both rules, so
 * the queues drain). NULL when none may run now. Mutex held. */
static mwl_pool_job *take(mwl_pool *pool, const worker *w, bool *background)
{
    mwl_pool_job *job = w->background && !pool->closing ? NULL : pool->head;
    *background = false;
    if (job) {
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
    } else if (pool->bg_head && (pool->closing || w->background ||
                                 (pool->bg_threads == 0 && pool->bg_running < pool->bg_limit))) {
        job = pool->bg_head;
        pool->bg_head = job->next;
        if (!pool->bg_head)
            pool->bg_tail = NULL;
        *background = !w->background; /* counted against bg_limit */
        if (*background)
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
#ifdef __linux__
    /* Linux applies a nice value to one thread when given its thread ID
     * (setpriority(2), NOTES). Lowering one's priority needs no privilege;
     * failing to is harmless (the worker just competes as usual). */
    if (w->background && pool->bg_nice > 0) {
        pid_t tid = (pid_t)syscall(SYS_gettid);
        int cur = getpriority(PRIO_PROCESS, (id_t)tid);
        (void)setpriority(PRIO_PROCESS, (id_t)tid, cur + pool->bg_nice > 19 ? 19 : cur + pool->bg_nice);
    }
#endif
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        bool background = false;
        mwl_pool_job *job = take(pool, w, &background);
        if (!job) {
            if (pool->closing && !pool->head && !pool->bg_head)
                break; /* closing and the queues are drained */
            pthread_cond_wait(w->background ? &pool->bg_cond : &pool->cond, &pool->mutex);
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
    pthread_cond_broadcast(&pool->bg_cond);
    pthread_mutex_unlock(&pool->mutex);
    for (size_t i = 0; i < started; i++)
        pthread_join(pool->workers[i].thread, NULL);
}

void mwl_pool_config_init(mwl_pool_config *cfg, size_t threads, size_t max_queued)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->threads = threads;
    cfg->max_queued = max_queued;
    cfg->background_nice = 19;
}

int mwl_pool_new(size_t threads, size_t max_queued, const mwl_mem *mem, mwl_pool **out, mwl_diag *diag)
{
    mwl_pool_config cfg;
    mwl_pool_config_init(&cfg, threads, max_queued);
    return mwl_pool_new_ex(&cfg, mem, out, diag);
}

int mwl_pool_new_ex(const mwl_pool_config *cfg, const mwl_mem *mem, mwl_pool **out, mwl_diag *diag)
{
    if (!out || !cfg)
        return MWL_E_INVALID;
    *out = NULL;
    size_t threads = cfg->threads + cfg->background_threads, max_queued = cfg->max_queued;
    if (cfg->threads == 0 || threads > 1024 || max_queued == 0 || cfg->background_nice < 0 ||
        cfg->background_nice > 19) {
        mwl_diag_set(diag, 0, 0, "pool: threads must be 1..1024, max_queued >= 1, background_nice 0..19");
        return MWL_E_INVALID;
    }
    mwl_pool *pool = mwl_mem_calloc(mem, 1, sizeof *pool);
    if (!pool)
        return MWL_E_NOMEM;
    pool->mem = mem;
    pool->max_queued = max_queued;
    pool->bg_limit = cfg->threads > 1 ? cfg->threads / 2 : 1;
    pool->bg_threads = cfg->background_threads;
    pool->bg_nice = cfg->background_nice;
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
    if (pthread_cond_init(&pool->bg_cond, NULL) != 0) {
        pthread_cond_destroy(&pool->cond);
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
        pool->workers[started].background = started >= cfg->threads;
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
        pthread_cond_destroy(&pool->bg_cond);
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
    pthread_cond_signal(job->background && pool->bg_threads ? &pool->bg_cond : &pool->cond);
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
    pthread_cond_destroy(&pool->bg_cond);
    pthread_mutex_destroy(&pool->mutex);
    mwl_mem_free(pool->mem, pool->workers);
    mwl_mem_free(pool->mem, pool);
}
