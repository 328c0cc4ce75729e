/* The worker pool and its hand-off to the loop: jobs run off the loop
 * thread and post their results back; the queue is bounded; a slow job
 * does not hold up the loop's timers; free drains queued jobs. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "net/net_int.h"

#define THREADS 3

typedef struct result_job {
    mwl_pool_job job;   /* runs on a worker */
    mwl_loop_task task; /* then reports on the loop thread */
    mwl_loop *loop;
    size_t worker;
    pthread_t ran_on;
    int value, square;
    int *delivered; /* loop-thread only */
} result_job;

static void deliver(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    result_job *r = (result_job *)((char *)task - offsetof(result_job, task));
    (*r->delivered)++;
}

static void compute(mwl_pool_job *job, size_t worker)
{
    result_job *r = (result_job *)job; /* job is the first member */
    r->worker = worker;
    r->ran_on = pthread_self();
    r->square = r->value * r->value;
    r->task.fn = deliver;
    mwl_loop_post(r->loop, &r->task);
}

static void test_jobs_post_back(void)
{
    mwl_loop_config config = {1, 1, 0, 0};
    mwl_loop *loop = NULL;
    mwl_pool *pool = NULL;
    CHECK_EQ_INT(mwl_loop_new(&config, NULL, &loop, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_pool_new(THREADS, 64, NULL, &pool, NULL), MWL_OK);
    if (!loop || !pool) {
        mwl_pool_free(pool);
        mwl_loop_free(loop);
        return;
    }
    CHECK_EQ_INT(mwl_pool_threads(pool), THREADS);
    static result_job jobs[60];
    int delivered = 0;
    for (int i = 0; i < 60; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].job.fn = compute;
        jobs[i].loop = loop;
        jobs[i].value = i;
        jobs[i].delivered = &delivered;
        CHECK_EQ_INT(mwl_pool_submit(pool, &jobs[i].job), MWL_OK);
    }
    uint64_t deadline = mwl_deadline_in(30000);
    while (delivered < 60 && mwl_now_ms() < deadline)
        CHECK_EQ_INT(mwl_loop_run_once(loop, 100), MWL_OK);
    CHECK_EQ_INT(delivered, 60);
    pthread_t self = pthread_self();
    for (int i = 0; i < 60; i++) {
        CHECK_EQ_INT(jobs[i].square, i * i);
        CHECK(jobs[i].worker < THREADS);
        CHECK(!pthread_equal(jobs[i].ran_on, self));
    }
    mwl_pool_free(pool);
    mwl_loop_free(loop);
}

/* A job that blocks until released, to fill the pool on purpose. */
typedef struct gate_job {
    mwl_pool_job job;
    atomic_int *open;
    atomic_int *started;
    atomic_int *finished;
} gate_job;

static void wait_at_gate(mwl_pool_job *job, size_t worker)
{
    (void)worker;
    gate_job *g = (gate_job *)job;
    atomic_fetch_add(g->started, 1);
    /* Bounded: the test opens the gate well within this. */
    for (int i = 0; i < 2000 && !atomic_load(g->open); i++)
        usleep(1000);
    atomic_fetch_add(g->finished, 1);
}

static void test_queue_bound(void)
{
    mwl_pool *pool = NULL;
    CHECK_EQ_INT(mwl_pool_new(1, 2, NULL, &pool, NULL), MWL_OK);
    if (!pool)
        return;
    atomic_int open = 0, started = 0, finished = 0;
    gate_job jobs[4];
    for (int i = 0; i < 4; i++)
        jobs[i] = (gate_job){{wait_at_gate, false, NULL}, &open, &started, &finished};
    CHECK_EQ_INT(mwl_pool_submit(pool, &jobs[0].job), MWL_OK);
    /* Wait until the single worker holds job 0, so the queue is empty. */
    for (int i = 0; i < 1000 && atomic_load(&started) == 0; i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&started), 1);
    CHECK_EQ_INT(mwl_pool_submit(pool, &jobs[1].job), MWL_OK);
    CHECK_EQ_INT(mwl_pool_submit(pool, &jobs[2].job), MWL_OK);
    /* Full: refused at once rather than blocking the caller (the loop):
     * were it to block until the queue had room, it would return only
     * after the gate opens, which nothing does before it returns. */
    CHECK_EQ_INT(mwl_pool_submit(pool, &jobs[3].job), MWL_E_LIMIT);
    CHECK_EQ_INT(atomic_load(&finished), 0);
    atomic_store(&open, 1);
    /* Free runs what was queued before it returns. */
    mwl_pool_free(pool);
    CHECK_EQ_INT(atomic_load(&finished), 3);

    mwl_pool *none = NULL;
    CHECK_EQ_INT(mwl_pool_new(0, 1, NULL, &none, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_pool_new(1, 0, NULL, &none, NULL), MWL_E_INVALID);
    CHECK(none == NULL);
}

typedef struct slow_job {
    mwl_pool_job job;
    mwl_loop_task task;
    mwl_loop *loop;
    atomic_int *ticks; /* counted by the loop's timer */
    int ticks_seen;    /* ticks that ran on the loop while the job ran */
    int done;
} slow_job;

static void slow_done(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    slow_job *s = (slow_job *)((char *)task - offsetof(slow_job, task));
    s->done = 1;
}

/* A long store query: it runs until the loop has fired 10 ticks, or for
 * 20 s. A loop blocked behind it would fire none meanwhile. */
static void run_slow(mwl_pool_job *job, size_t worker)
{
    (void)worker;
    slow_job *s = (slow_job *)job;
    int first = atomic_load(s->ticks);
    for (int i = 0; i < 20000 && atomic_load(s->ticks) - first < 10; i++)
        usleep(1000);
    s->ticks_seen = atomic_load(s->ticks) - first;
    s->task.fn = slow_done;
    mwl_loop_post(s->loop, &s->task);
}

static void count_tick(mwl_loop *loop, uint64_t id, void *user)
{
    (void)id;
    atomic_int *ticks = user;
    atomic_fetch_add(ticks, 1);
    uint64_t next;
    CHECK_EQ_INT(mwl_loop_timer_add(loop, mwl_now_ms() + 10, count_tick, user, &next), MWL_OK);
}

static void test_slow_job_does_not_block_loop(void)
{
    mwl_loop_config config = {1, 4, 0, 0};
    mwl_loop *loop = NULL;
    mwl_pool *pool = NULL;
    CHECK_EQ_INT(mwl_loop_new(&config, NULL, &loop, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_pool_new(1, 4, NULL, &pool, NULL), MWL_OK);
    if (!loop || !pool) {
        mwl_pool_free(pool);
        mwl_loop_free(loop);
        return;
    }
    /* A 10 ms tick (standing in for C-ECHOs and ARTIM timers on other
     * associations) keeps running while the job runs: the job itself
     * counts the ticks it sees (it goes on until it has seen 10), so the
     * proof holds however late a loaded machine runs either thread. */
    atomic_int ticks = 0;
    slow_job s;
    memset(&s, 0, sizeof s);
    s.job.fn = run_slow;
    s.loop = loop;
    s.ticks = &ticks;
    CHECK_EQ_INT(mwl_pool_submit(pool, &s.job), MWL_OK);
    uint64_t id;
    CHECK_EQ_INT(mwl_loop_timer_add(loop, mwl_now_ms() + 10, count_tick, &ticks, &id), MWL_OK);
    uint64_t deadline = mwl_deadline_in(30000);
    while (!s.done && mwl_now_ms() < deadline)
        CHECK_EQ_INT(mwl_loop_run_once(loop, 100), MWL_OK);
    CHECK(s.done);
    CHECK(s.ticks_seen >= 10);
    mwl_pool_free(pool);
    mwl_loop_free(loop);
}

/* Background jobs (long scans) hold at most the background limit of
 * workers; a normal job submitted after them starts on a free worker at
 * once, ahead of the background jobs still queued. */
static void test_background_limit(void)
{
    mwl_pool *pool = NULL;
    CHECK_EQ_INT(mwl_pool_new(2, 8, NULL, &pool, NULL), MWL_OK);
    if (!pool)
        return;
    mwl_pool_set_background_limit(pool, 1);
    atomic_int bg_open = 0, bg_started = 0, bg_finished = 0;
    atomic_int fg_open = 1, fg_started = 0, fg_finished = 0;
    gate_job bg[3], fg;
    for (int i = 0; i < 3; i++) {
        bg[i] = (gate_job){{wait_at_gate, true, NULL}, &bg_open, &bg_started, &bg_finished};
        CHECK_EQ_INT(mwl_pool_submit(pool, &bg[i].job), MWL_OK);
    }
    for (int i = 0; i < 1000 && atomic_load(&bg_started) == 0; i++)
        usleep(1000);
    usleep(20000); /* time for a second background job to start, were it allowed */
    CHECK_EQ_INT(atomic_load(&bg_started), 1);
    fg = (gate_job){{wait_at_gate, false, NULL}, &fg_open, &fg_started, &fg_finished};
    CHECK_EQ_INT(mwl_pool_submit(pool, &fg.job), MWL_OK);
    for (int i = 0; i < 2000 && atomic_load(&fg_finished) == 0; i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&fg_finished), 1); /* while the first background job still waits */
    CHECK_EQ_INT(atomic_load(&bg_finished), 0);
    CHECK_EQ_INT(atomic_load(&bg_started), 1);
    atomic_store(&bg_open, 1);
    mwl_pool_free(pool); /* runs the queued background jobs too */
    CHECK_EQ_INT(atomic_load(&bg_finished), 3);
}

/* A job that records the worker that ran it. */
typedef struct where_job {
    mwl_pool_job job;
    atomic_int *open;
    atomic_int *done;
    size_t worker;
} where_job;

static void record_worker(mwl_pool_job *job, size_t worker)
{
    where_job *w = (where_job *)job;
    w->worker = worker;
    for (int i = 0; i < 2000 && !atomic_load(w->open); i++)
        usleep(1000);
    atomic_fetch_add(w->done, 1);
}

/* Dedicated background workers: background jobs run on them only (their
 * indexes come after the normal workers'), and normal jobs never do, so a
 * normal job starts at once while every background worker is busy. */
static void test_background_workers(void)
{
    mwl_pool_config cfg;
    mwl_pool_config_init(&cfg, 2, 16);
    cfg.background_threads = 1;
    mwl_pool *pool = NULL;
    CHECK_EQ_INT(mwl_pool_new_ex(&cfg, NULL, &pool, NULL), MWL_OK);
    if (!pool)
        return;
    CHECK_EQ_INT(mwl_pool_threads(pool), 3);
    atomic_int bg_open = 0, bg_done = 0, fg_open = 1, fg_done = 0;
    where_job bg[3], fg[4];
    for (int i = 0; i < 3; i++) {
        bg[i] = (where_job){{record_worker, true, NULL}, &bg_open, &bg_done, 99};
        CHECK_EQ_INT(mwl_pool_submit(pool, &bg[i].job), MWL_OK);
    }
    for (int i = 0; i < 4; i++) {
        fg[i] = (where_job){{record_worker, false, NULL}, &fg_open, &fg_done, 99};
        CHECK_EQ_INT(mwl_pool_submit(pool, &fg[i].job), MWL_OK);
    }
    for (int i = 0; i < 2000 && atomic_load(&fg_done) < 4; i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&fg_done), 4); /* while the background worker holds bg[0] */
    CHECK_EQ_INT(atomic_load(&bg_done), 0);
    for (int i = 0; i < 4; i++)
        CHECK(fg[i].worker < 2);
    atomic_store(&bg_open, 1);
    for (int i = 0; i < 2000 && atomic_load(&bg_done) < 3; i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&bg_done), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(bg[i].worker, 2);
    mwl_pool_free(pool);
    mwl_pool_config_init(&cfg, 0, 1);
    CHECK_EQ_INT(mwl_pool_new_ex(&cfg, NULL, &pool, NULL), MWL_E_INVALID);
}

int main(void)
{
    size_t before = 0, after = 0;
    CHECK_EQ_INT(mwl_net_count_fds(&before), MWL_OK);
    RUN_TEST(test_jobs_post_back);
    RUN_TEST(test_queue_bound);
    RUN_TEST(test_slow_job_does_not_block_loop);
    RUN_TEST(test_background_limit);
    RUN_TEST(test_background_workers);
    CHECK_EQ_INT(mwl_net_count_fds(&after), MWL_OK);
    CHECK_EQ_INT(after, before);
    return check_report("net_pool_test");
}
