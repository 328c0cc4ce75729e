/* The event loop: timer order, cancel and move, bounded work per turn,
 * fd callbacks, wakeup and stop from another thread, posted tasks,
 * signals, and a small echo server showing that a stalled peer does not
 * delay another one. Every wait is bounded by a safety timer or deadline. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net/net_int.h"

/* Wall-clock bounds hold on a loaded 2-core CI machine too: a test never
 * asserts that something took less than a few hundred milliseconds. It
 * proves "did not wait for X" by making X long (LONG_WAIT_MS: a max_wait or
 * a safety timer that ends the wait should the thing under test fail) and
 * checking the wait ended well before it (PROMPT_MS), and "not before its
 * time" with lower bounds, which load cannot break. */
#define LONG_WAIT_MS 20000
#define PROMPT_MS 10000

static mwl_loop *new_loop(size_t max_fds, size_t max_timers)
{
    mwl_loop_config config = {max_fds, max_timers, 0, 0};
    mwl_loop *loop = NULL;
    int rc = mwl_loop_new(&config, NULL, &loop, NULL);
    CHECK_EQ_INT(rc, MWL_OK);
    return loop;
}

/* Runs turns until *done or `ms` pass; returns whether *done was reached. */
static bool run_until(mwl_loop *loop, const int *done, int ms)
{
    uint64_t deadline = mwl_deadline_in(ms);
    while (!*done && mwl_now_ms() < deadline)
        CHECK_EQ_INT(mwl_loop_run_once(loop, 50), MWL_OK);
    return *done != 0;
}

/* ---- timers -------------------------------------------------------------- */

typedef struct fire_log {
    int order[16];
    uint64_t fired_at[16];
    uint64_t due[16];
    int count;
    int done;
    int expect;
} fire_log;

typedef struct timer_ctx {
    fire_log *log;
    int tag;
    uint64_t due;
} timer_ctx;

static void on_timer(mwl_loop *loop, uint64_t id, void *user)
{
    (void)id;
    timer_ctx *t = user;
    fire_log *log = t->log;
    if (log->count < 16) {
        log->order[log->count] = t->tag;
        log->fired_at[log->count] = mwl_loop_now(loop);
        log->due[log->count] = t->due;
    }
    log->count++;
    if (log->count == log->expect)
        log->done = 1;
}

static void test_timers_in_order(void)
{
    mwl_loop *loop = new_loop(4, 16);
    if (!loop)
        return;
    fire_log log;
    memset(&log, 0, sizeof log);
    uint64_t now = mwl_now_ms();
    /* tag: expected position. Equal deadlines fire in insertion order. */
    timer_ctx t[7] = {
        {&log, 5, now + 60}, {&log, 1, now + 20}, {&log, 4, now + 40}, {&log, 2, now + 20},
        {&log, 0, now},      {&log, 9, now + 30}, {&log, 3, now + 80},
    };
    uint64_t ids[7];
    for (int i = 0; i < 7; i++) {
        CHECK_EQ_INT(mwl_loop_timer_add(loop, t[i].due, on_timer, &t[i], &ids[i]), MWL_OK);
        CHECK(ids[i] != 0);
    }
    CHECK_EQ_INT(mwl_loop_timer_count(loop), 7);
    /* Cancel tag 9; move tag 3 from +80 to +30, between tags 2 and 4. */
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, ids[5]), MWL_OK);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, ids[5]), MWL_E_NOTFOUND);
    t[6].due = now + 30;
    CHECK_EQ_INT(mwl_loop_timer_move(loop, ids[6], t[6].due), MWL_OK);
    CHECK_EQ_INT(mwl_loop_timer_count(loop), 6);

    log.expect = 6;
    CHECK(run_until(loop, &log.done, LONG_WAIT_MS));
    CHECK_EQ_INT(log.count, 6);
    for (int i = 0; i < 6 && i < log.count; i++) {
        CHECK_EQ_INT(log.order[i], i);
        CHECK(log.fired_at[i] >= log.due[i]); /* never early; late only by the machine's load */
    }
    /* Fired timers are gone; their ids are stale. */
    CHECK_EQ_INT(mwl_loop_timer_count(loop), 0);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, ids[0]), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_loop_timer_move(loop, ids[0], now), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, 0), MWL_E_NOTFOUND);
    mwl_loop_free(loop);
}

static void test_timer_ties_fifo(void)
{
    mwl_loop *loop = new_loop(1, 16);
    if (!loop)
        return;
    fire_log log;
    memset(&log, 0, sizeof log);
    /* Equal deadlines, added in tag order, interleaved with later and
     * cancelled timers that reshape the heap between them. */
    uint64_t at = mwl_now_ms() + 5;
    timer_ctx t[12], later = {&log, 99, at + 1000};
    uint64_t id, later_id;
    for (int i = 0; i < 12; i++) {
        t[i] = (timer_ctx){&log, i, at};
        CHECK_EQ_INT(mwl_loop_timer_add(loop, at, on_timer, &t[i], &id), MWL_OK);
        if (i % 3 == 0) {
            CHECK_EQ_INT(mwl_loop_timer_add(loop, later.due, on_timer, &later, &later_id), MWL_OK);
            CHECK_EQ_INT(mwl_loop_timer_cancel(loop, later_id), MWL_OK);
        }
    }
    log.expect = 12;
    CHECK(run_until(loop, &log.done, LONG_WAIT_MS));
    CHECK_EQ_INT(log.count, 12);
    for (int i = 0; i < 12 && i < log.count; i++)
        CHECK_EQ_INT(log.order[i], i);
    mwl_loop_free(loop);
}

static void test_timer_limits_and_reuse(void)
{
    mwl_loop *loop = new_loop(1, 2);
    if (!loop)
        return;
    fire_log log;
    memset(&log, 0, sizeof log);
    timer_ctx t = {&log, 0, 0};
    uint64_t a, b, c;
    CHECK_EQ_INT(mwl_loop_timer_add(loop, UINT64_MAX - 1, on_timer, &t, &a), MWL_OK);
    CHECK_EQ_INT(mwl_loop_timer_add(loop, UINT64_MAX - 1, on_timer, &t, &b), MWL_OK);
    CHECK_EQ_INT(mwl_loop_timer_add(loop, 0, on_timer, &t, &c), MWL_E_LIMIT);
    CHECK_EQ_INT(c, 0);
    /* A freed slot is reused under a new id; the old id stays dead. */
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, a), MWL_OK);
    CHECK_EQ_INT(mwl_loop_timer_add(loop, UINT64_MAX - 1, on_timer, &t, &c), MWL_OK);
    CHECK(c != a);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, a), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, c), MWL_OK);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, b), MWL_OK);
    /* Far-future timers do not make a turn wait beyond max_wait (else it
     * would wait for ever). */
    CHECK_EQ_INT(mwl_loop_timer_add(loop, UINT64_MAX - 1, on_timer, &t, &a), MWL_OK);
    uint64_t start = mwl_now_ms();
    CHECK_EQ_INT(mwl_loop_run_once(loop, 30), MWL_OK);
    CHECK(mwl_now_ms() - start < PROMPT_MS);
    CHECK_EQ_INT(log.count, 0);
    mwl_loop_free(loop);

    mwl_loop_config bad = {0, 1, 0, 0};
    mwl_loop *none = NULL;
    CHECK_EQ_INT(mwl_loop_new(&bad, NULL, &none, NULL), MWL_E_INVALID);
    CHECK(none == NULL);
}

typedef struct rearm_ctx {
    int fired;
    uint64_t turn_seen[8];
} rearm_ctx;

static void on_rearm(mwl_loop *loop, uint64_t id, void *user)
{
    (void)id;
    rearm_ctx *r = user;
    r->fired++;
    uint64_t next;
    /* Due at once: must wait for the next turn, or this would never end. */
    CHECK_EQ_INT(mwl_loop_timer_add(loop, 0, on_rearm, r, &next), MWL_OK);
}

static void test_bounded_turns(void)
{
    mwl_loop_config config = {2, 4, 0, 3};
    mwl_loop *loop = NULL;
    CHECK_EQ_INT(mwl_loop_new(&config, NULL, &loop, NULL), MWL_OK);
    if (!loop)
        return;
    rearm_ctx r = {0, {0}};
    uint64_t id;
    CHECK_EQ_INT(mwl_loop_timer_add(loop, 0, on_rearm, &r, &id), MWL_OK);
    for (int turn = 1; turn <= 5; turn++) {
        CHECK_EQ_INT(mwl_loop_run_once(loop, 0), MWL_OK);
        CHECK_EQ_INT(r.fired, turn);
    }
    mwl_loop_free(loop);
}

/* ---- posted tasks and wakeups ---------------------------------------------- */

typedef struct counted_task {
    mwl_loop_task task; /* first: the callback gets it back */
    int *counter;
} counted_task;

static void count_task(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    counted_task *t = (counted_task *)task;
    (*t->counter)++;
}

static void test_posted_tasks_bounded_per_turn(void)
{
    mwl_loop_config config = {2, 2, 0, 3};
    mwl_loop *loop = NULL;
    CHECK_EQ_INT(mwl_loop_new(&config, NULL, &loop, NULL), MWL_OK);
    if (!loop)
        return;
    int counter = 0;
    counted_task tasks[7];
    for (int i = 0; i < 7; i++) {
        tasks[i] = (counted_task){{count_task, NULL}, &counter};
        mwl_loop_post(loop, &tasks[i].task);
    }
    CHECK_EQ_INT(mwl_loop_run_once(loop, 0), MWL_OK);
    CHECK_EQ_INT(counter, 3);
    /* Work still queued: the next turn must not sleep. */
    uint64_t start = mwl_now_ms();
    CHECK_EQ_INT(mwl_loop_run_once(loop, LONG_WAIT_MS), MWL_OK);
    CHECK(mwl_now_ms() - start < PROMPT_MS);
    CHECK_EQ_INT(counter, 6);
    CHECK_EQ_INT(mwl_loop_run_once(loop, LONG_WAIT_MS), MWL_OK);
    CHECK_EQ_INT(counter, 7);
    mwl_loop_free(loop);
}

typedef struct poster {
    mwl_loop *loop;
    counted_task tasks[50];
    int *counter;
} poster;

static void *poster_main(void *arg)
{
    poster *p = arg;
    for (int i = 0; i < 50; i++) {
        p->tasks[i] = (counted_task){{count_task, NULL}, p->counter};
        mwl_loop_post(p->loop, &p->tasks[i].task);
        if (i % 10 == 0)
            usleep(500);
    }
    return NULL;
}

static void test_post_from_threads(void)
{
    mwl_loop *loop = new_loop(2, 2);
    if (!loop)
        return;
    int counter = 0;
    static poster posters[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        posters[i].loop = loop;
        posters[i].counter = &counter;
        CHECK_EQ_INT(pthread_create(&threads[i], NULL, poster_main, &posters[i]), 0);
    }
    uint64_t deadline = mwl_deadline_in(LONG_WAIT_MS);
    while (counter < 200 && mwl_now_ms() < deadline)
        CHECK_EQ_INT(mwl_loop_run_once(loop, 100), MWL_OK);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    CHECK_EQ_INT(counter, 200);
    mwl_loop_free(loop);
}

typedef struct stopper {
    mwl_loop *loop;
    int delay_ms;
} stopper;

static void *stopper_main(void *arg)
{
    stopper *s = arg;
    usleep((useconds_t)s->delay_ms * 1000);
    mwl_loop_stop(s->loop);
    return NULL;
}

static void safety_stop(mwl_loop *loop, uint64_t id, void *user)
{
    (void)id;
    *(int *)user = 1;
    mwl_loop_stop(loop);
}

static void test_wakeup_stops_run(void)
{
    mwl_loop *loop = new_loop(2, 2);
    if (!loop)
        return;
    /* If the wakeup were lost, run() would sleep until this safety timer;
     * safety == 0 afterwards is the proof that it was not. */
    int safety = 0;
    uint64_t safety_id;
    CHECK_EQ_INT(mwl_loop_timer_add(loop, mwl_deadline_in(LONG_WAIT_MS), safety_stop, &safety, &safety_id),
                 MWL_OK);
    stopper s = {loop, 50};
    pthread_t thread;
    uint64_t start = mwl_now_ms();
    CHECK_EQ_INT(pthread_create(&thread, NULL, stopper_main, &s), 0);
    CHECK_EQ_INT(mwl_loop_run(loop), MWL_OK);
    uint64_t took = mwl_now_ms() - start;
    pthread_join(thread, NULL);
    CHECK_EQ_INT(safety, 0);
    CHECK(took >= 40); /* not before the stop was asked for */
    /* run() consumed the stop: the loop is usable again. */
    CHECK(!mwl_loop_stopping(loop));
    /* A stop requested before run() returns it after one turn. */
    mwl_loop_stop(loop);
    CHECK(mwl_loop_stopping(loop));
    start = mwl_now_ms();
    CHECK_EQ_INT(mwl_loop_run(loop), MWL_OK);
    CHECK(mwl_now_ms() - start < PROMPT_MS);
    CHECK_EQ_INT(safety, 0);
    /* A plain wake ends a long wait early. */
    mwl_loop_wake(loop);
    start = mwl_now_ms();
    CHECK_EQ_INT(mwl_loop_run_once(loop, LONG_WAIT_MS), MWL_OK);
    CHECK(mwl_now_ms() - start < PROMPT_MS);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, safety_id), MWL_OK);
    mwl_loop_free(loop);
}

/* ---- signals ------------------------------------------------------------- */

typedef struct signal_seen {
    int signo[4];
    int count;
} signal_seen;

static void on_signal_seen(mwl_loop *loop, int signo, void *user)
{
    (void)loop;
    signal_seen *s = user;
    if (s->count < 4)
        s->signo[s->count] = signo;
    s->count++;
}

static void test_signals(void)
{
    mwl_loop *loop = new_loop(2, 2);
    mwl_loop *other = new_loop(2, 2);
    if (!loop || !other) {
        mwl_loop_free(loop);
        mwl_loop_free(other);
        return;
    }
    struct sigaction before;
    sigaction(SIGTERM, NULL, &before);

    signal_seen seen = {{0}, 0};
    CHECK_EQ_INT(mwl_net_signals_install(loop, on_signal_seen, &seen), MWL_OK);
    CHECK_EQ_INT(mwl_net_signals_install(other, NULL, NULL), MWL_E_INVALID);
    /* SIGPIPE is ignored while installed. */
    struct sigaction pipe_action;
    sigaction(SIGPIPE, NULL, &pipe_action);
    CHECK(pipe_action.sa_handler == SIG_IGN);

    CHECK_EQ_INT(raise(SIGTERM), 0);
    uint64_t start = mwl_now_ms();
    CHECK_EQ_INT(mwl_loop_run_once(loop, LONG_WAIT_MS), MWL_OK); /* the handler already wrote the pipe */
    CHECK(mwl_now_ms() - start < PROMPT_MS);
    CHECK_EQ_INT(seen.count, 1);
    CHECK_EQ_INT(seen.signo[0], SIGTERM);
    CHECK(!mwl_loop_stopping(loop)); /* the callback decides */

    /* Without a callback a signal stops run(). */
    CHECK_EQ_INT(mwl_net_signals_install(loop, NULL, NULL), MWL_OK);
    int safety = 0;
    uint64_t safety_id;
    CHECK_EQ_INT(mwl_loop_timer_add(loop, mwl_deadline_in(LONG_WAIT_MS), safety_stop, &safety, &safety_id),
                 MWL_OK);
    CHECK_EQ_INT(raise(SIGINT), 0);
    CHECK_EQ_INT(mwl_loop_run(loop), MWL_OK);
    CHECK_EQ_INT(safety, 0);
    CHECK_EQ_INT(mwl_loop_timer_cancel(loop, safety_id), MWL_OK);

    mwl_net_signals_restore();
    struct sigaction after;
    sigaction(SIGTERM, NULL, &after);
    CHECK(after.sa_handler == before.sa_handler);
    sigaction(SIGPIPE, NULL, &pipe_action);
    CHECK(pipe_action.sa_handler == SIG_DFL);
    /* Freed loops give the handlers back too. */
    CHECK_EQ_INT(mwl_net_signals_install(other, on_signal_seen, &seen), MWL_OK);
    mwl_loop_free(other);
    CHECK_EQ_INT(mwl_net_signals_install(loop, on_signal_seen, &seen), MWL_OK);
    mwl_net_signals_restore();
    mwl_loop_free(loop);
}

/* ---- fd callbacks -------------------------------------------------------- */

typedef struct io_probe {
    mwl_loop_io *io;
    mwl_loop_io *victim; /* removed by this callback, if set */
    unsigned events;
    int calls;
} io_probe;

static void on_io(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    io_probe *p = user;
    (void)io;
    p->events |= events;
    p->calls++;
    if (p->victim) {
        mwl_loop_remove(loop, p->victim);
        p->victim = NULL;
    }
}

static void test_fd_events(void)
{
    mwl_loop *loop = new_loop(4, 2);
    int a[2], b[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
    if (!loop)
        goto out;
    io_probe pa = {NULL, NULL, 0, 0}, pb = {NULL, NULL, 0, 0};
    CHECK_EQ_INT(mwl_loop_add(loop, a[0], MWL_NET_READ, on_io, &pa, &pa.io), MWL_OK);
    CHECK_EQ_INT(mwl_loop_add(loop, b[0], MWL_NET_READ, on_io, &pb, &pb.io), MWL_OK);
    CHECK_EQ_INT(mwl_loop_interest(pa.io), MWL_NET_READ);

    /* Nothing ready: no callback. */
    CHECK_EQ_INT(mwl_loop_run_once(loop, 20), MWL_OK);
    CHECK_EQ_INT(pa.calls + pb.calls, 0);

    /* Readable. */
    CHECK_EQ_INT(write(a[1], "x", 1), 1);
    CHECK_EQ_INT(mwl_loop_run_once(loop, 1000), MWL_OK);
    CHECK_EQ_INT(pa.calls, 1);
    CHECK_EQ_INT(pa.events, MWL_NET_READ);
    CHECK_EQ_INT(pb.calls, 0);

    /* Writable when asked; READ still reported while the byte is unread. */
    pa.events = 0;
    mwl_loop_set_interest(loop, pa.io, MWL_NET_READ | MWL_NET_WRITE);
    CHECK_EQ_INT(mwl_loop_run_once(loop, 1000), MWL_OK);
    CHECK_EQ_INT(pa.events, MWL_NET_READ | MWL_NET_WRITE);

    /* Paused (interest 0): even a hung-up peer does not wake it, so a
     * connection waiting for back-pressure to clear cannot spin the loop. */
    mwl_loop_set_interest(loop, pa.io, 0);
    close(a[1]);
    a[1] = -1;
    pa.calls = 0;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(mwl_loop_run_once(loop, 10), MWL_OK);
    CHECK_EQ_INT(pa.calls, 0);
    /* Resumed: the hang-up shows as readable (a read then says EOF). */
    pa.events = 0;
    mwl_loop_set_interest(loop, pa.io, MWL_NET_READ);
    CHECK_EQ_INT(mwl_loop_run_once(loop, 1000), MWL_OK);
    CHECK_EQ_INT(pa.calls, 1);
    CHECK(pa.events & MWL_NET_READ);

    /* Both ready in one turn; the first callback to run removes the other,
     * whose callback must then not run (its event is stale). */
    CHECK_EQ_INT(write(b[1], "y", 1), 1);
    pa.calls = pb.calls = 0;
    pa.victim = pb.io;
    pb.victim = pa.io;
    CHECK_EQ_INT(mwl_loop_run_once(loop, 1000), MWL_OK);
    CHECK_EQ_INT(pa.calls + pb.calls, 1);
    mwl_loop_io *left = pa.calls ? pa.io : pb.io;
    mwl_loop_remove(loop, left);
    mwl_loop_remove(loop, left); /* a second remove is ignored */

    /* Registrations are bounded. */
    mwl_loop_io *ios[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(mwl_loop_add(loop, b[0], 0, on_io, &pb, &ios[i]), MWL_OK);
    mwl_loop_io *extra = NULL;
    CHECK_EQ_INT(mwl_loop_add(loop, b[0], 0, on_io, &pb, &extra), MWL_E_LIMIT);
    for (int i = 0; i < 4; i++)
        mwl_loop_remove(loop, ios[i]);
out:
    mwl_loop_free(loop);
    for (int i = 0; i < 2; i++) {
        if (a[i] >= 0)
            close(a[i]);
        close(b[i]);
    }
}

/* ---- a stalled peer does not delay another -------------------------------- */

/* An echo server on the loop with bounded output per connection: when a
 * peer stops reading, its connection stops being read (interest WRITE
 * only) instead of buffering without limit, and the loop goes on serving
 * the others. This is the shape the server driver takes. */
#define ECHO_BUF 65536
#define ECHO_CONNS 4

typedef struct echo_conn {
    mwl_conn *conn;
    mwl_loop_io *io;
    uint8_t buf[ECHO_BUF];
    size_t len, off;
} echo_conn;

typedef struct echo_server {
    mwl_loop *loop;
    mwl_listener *listener;
    mwl_loop_io *listen_io;
    echo_conn conns[ECHO_CONNS];
    int accepted;
    int run_rc; /* read after join: CHECK is not thread-safe */
} echo_server;

static void echo_drop(echo_server *srv, echo_conn *ec)
{
    mwl_loop_remove(srv->loop, ec->io);
    mwl_conn_close(ec->conn);
    ec->conn = NULL;
    ec->io = NULL;
}

static void on_echo(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)io;
    (void)events;
    echo_server *srv = user;
    echo_conn *ec = NULL;
    for (int i = 0; i < ECHO_CONNS; i++)
        if (srv->conns[i].io == io)
            ec = &srv->conns[i];
    if (!ec)
        return;
    /* One read and one write per turn: bounded work per callback. */
    if (ec->len == 0) {
        size_t n = 0;
        int rc = mwl_conn_read(ec->conn, ec->buf, ECHO_BUF, &n);
        if (rc == MWL_OK) {
            ec->len = n;
            ec->off = 0;
        } else if (rc != MWL_AGAIN) {
            echo_drop(srv, ec);
            return;
        }
    }
    if (ec->len > ec->off) {
        size_t n = 0;
        int rc = mwl_conn_write(ec->conn, ec->buf + ec->off, ec->len - ec->off, &n);
        if (rc == MWL_OK) {
            ec->off += n;
        } else if (rc != MWL_AGAIN) {
            echo_drop(srv, ec);
            return;
        }
        if (ec->off == ec->len)
            ec->len = ec->off = 0;
    }
    mwl_loop_set_interest(loop, ec->io, ec->len ? MWL_NET_WRITE : MWL_NET_READ);
}

static void on_accept(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)io;
    (void)events;
    echo_server *srv = user;
    mwl_conn *c = NULL;
    if (mwl_listener_accept(srv->listener, &c, NULL) != MWL_OK)
        return;
    for (int i = 0; i < ECHO_CONNS; i++) {
        echo_conn *ec = &srv->conns[i];
        if (ec->conn)
            continue;
        ec->conn = c;
        ec->len = ec->off = 0;
        if (mwl_loop_add(loop, mwl_conn_fd(c), MWL_NET_READ, on_echo, srv, &ec->io) != MWL_OK) {
            mwl_conn_close(c);
            ec->conn = NULL;
        } else {
            srv->accepted++;
        }
        return;
    }
    mwl_conn_close(c); /* full: a real server would send A-ASSOCIATE-RJ first */
}

static void *echo_loop_main(void *arg)
{
    echo_server *srv = arg;
    srv->run_rc = mwl_loop_run(srv->loop);
    return NULL;
}

static void test_stalled_peer_does_not_block_others(void)
{
    static echo_server srv;
    memset(&srv, 0, sizeof srv);
    srv.loop = new_loop(ECHO_CONNS + 1, 4);
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = "127.0.0.1";
    CHECK_EQ_INT(mwl_listener_open(&opts, NULL, &srv.listener, NULL), MWL_OK);
    if (!srv.loop || !srv.listener) {
        mwl_listener_close(srv.listener);
        mwl_loop_free(srv.loop);
        return;
    }
    /* Small, fixed socket buffers (accepted sockets inherit the listener's)
     * so "the peer stopped reading" shows after kilobytes, not after the
     * tens of megabytes loopback autotuning would otherwise absorb. */
    int small = 64 << 10;
    CHECK_EQ_INT(setsockopt(mwl_listener_fd(srv.listener), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    CHECK_EQ_INT(setsockopt(mwl_listener_fd(srv.listener), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    CHECK_EQ_INT(
        mwl_loop_add(srv.loop, mwl_listener_fd(srv.listener), MWL_NET_READ, on_accept, &srv, &srv.listen_io),
        MWL_OK);
    pthread_t thread;
    CHECK_EQ_INT(pthread_create(&thread, NULL, echo_loop_main, &srv), 0);

    uint16_t port = mwl_listener_port(srv.listener);
    mwl_conn *stalled = NULL, *lively = NULL;
    CHECK_EQ_INT(mwl_net_connect("127.0.0.1", port, PROMPT_MS, NULL, &stalled, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_net_connect("127.0.0.1", port, PROMPT_MS, NULL, &lively, NULL), MWL_OK);
    if (stalled) {
        CHECK_EQ_INT(setsockopt(mwl_conn_fd(stalled), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
        CHECK_EQ_INT(setsockopt(mwl_conn_fd(stalled), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    }

    /* The stalled peer sends far more than the socket buffers hold and
     * never reads the echo, so the server's write side for it fills up. */
    static uint8_t flood[8u << 20];
    memset(flood, 0x5A, sizeof flood);
    size_t pushed = 0;
    mwl_iov iov = {flood, sizeof flood};
    int rc =
        stalled ? mwl_conn_write_all_deadline(stalled, &iov, 1, mwl_deadline_in(300), &pushed) : MWL_E_IO;
    CHECK_EQ_INT(rc, MWL_E_TIMEOUT); /* the server stopped reading it: back-pressure */
    CHECK(pushed > 0);

    /* Meanwhile the other peer is answered, every time, while the first
     * stays stalled: behind it the echo would never come, so a generous
     * deadline per echo proves it; a tight one would only measure the
     * machine's load. */
    for (int i = 0; lively && i < 20; i++) {
        char ping[8];
        snprintf(ping, sizeof ping, "ping%02d", i);
        size_t n = 0;
        uint64_t deadline = mwl_deadline_in(PROMPT_MS);
        mwl_iov p = {ping, 6};
        CHECK_EQ_INT(mwl_conn_write_all_deadline(lively, &p, 1, deadline, NULL), MWL_OK);
        char back[8];
        size_t have = 0;
        while (have < 6) {
            rc = mwl_conn_read_deadline(lively, back + have, 6 - have, &n, deadline);
            CHECK_EQ_INT(rc, MWL_OK);
            if (rc != MWL_OK)
                break;
            have += n;
        }
        CHECK_EQ_MEM(back, have, ping, 6);
    }

    mwl_loop_stop(srv.loop);
    pthread_join(thread, NULL);
    CHECK_EQ_INT(srv.run_rc, MWL_OK);
    CHECK_EQ_INT(srv.accepted, 2);
    mwl_conn_close(stalled);
    mwl_conn_close(lively);
    for (int i = 0; i < ECHO_CONNS; i++)
        if (srv.conns[i].conn)
            echo_drop(&srv, &srv.conns[i]);
    mwl_loop_remove(srv.loop, srv.listen_io);
    mwl_listener_close(srv.listener);
    mwl_loop_free(srv.loop);
}

int main(void)
{
    size_t before = 0, after = 0;
    CHECK_EQ_INT(mwl_net_count_fds(&before), MWL_OK);
    RUN_TEST(test_timers_in_order);
    RUN_TEST(test_timer_ties_fifo);
    RUN_TEST(test_timer_limits_and_reuse);
    RUN_TEST(test_bounded_turns);
    RUN_TEST(test_posted_tasks_bounded_per_turn);
    RUN_TEST(test_post_from_threads);
    RUN_TEST(test_wakeup_stops_run);
    RUN_TEST(test_signals);
    RUN_TEST(test_fd_events);
    RUN_TEST(test_stalled_peer_does_not_block_others);
    CHECK_EQ_INT(mwl_net_count_fds(&after), MWL_OK);
    CHECK_EQ_INT(after, before);
    return check_report("net_loop_test");
}
