/* The event loop: poll() over registered fds, a binary heap of one-shot
 * timers, tasks posted from other threads, and a self-pipe that signal
 * handlers and other threads write to wake the loop.
 *
 * Everything is allocated in mwl_loop_new, sized by mwl_loop_config, so a
 * running server never allocates here and its fd and timer counts are
 * bounded by configuration (STYLE.md §4).
 *
 * poll() rather than epoll/kqueue: it is portable, the fd count is bounded
 * by the configured association limit (hundreds, not tens of thousands),
 * and the pollfd array is kept dense so one turn costs O(registered fds). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/net_int.h"

#define DEFAULT_PER_TURN 64
#define MAX_SLOTS ((size_t)1 << 20) /* sanity bound on config values */

struct mwl_loop_io {
    mwl_loop_io_fn fn;
    void *user;
    int fd;
    unsigned interest;
    size_t index; /* position in loop->pfds / loop->at while registered */
    uint32_t gen; /* bumped on remove, so a stale ready event is dropped */
    mwl_loop_io *next_free;
};

typedef struct timer_slot {
    uint64_t at;
    uint64_t seq; /* insertion order: ties fire first-in first-out */
    mwl_loop_timer_fn fn;
    void *user;
    size_t heap_index; /* SIZE_MAX when free */
    uint32_t gen;
    uint32_t next_free; /* free-list link, slot index + 1 (0 = end) */
} timer_slot;

typedef struct ready_event {
    mwl_loop_io *io;
    uint32_t gen;
    unsigned events;
} ready_event;

struct mwl_loop {
    const mwl_mem *mem;
    mwl_loop_config config;

    /* pfds[0] is the wakeup pipe; pfds[1..nfds) mirror at[1..nfds). */
    struct pollfd *pfds;
    mwl_loop_io **at;
    size_t nfds;
    mwl_loop_io *ios;
    mwl_loop_io *free_io;
    ready_event *ready;

    timer_slot *timers;
    size_t *heap; /* slot indices, a min-heap on (at, seq) */
    size_t heap_len;
    uint32_t free_timer; /* slot index + 1, 0 = none free */
    uint64_t next_seq;

    int wake_rd, wake_wr;
    atomic_bool stop;
    atomic_uint signals; /* bit 0: SIGTERM, bit 1: SIGINT, bit 2: SIGHUP */
    mwl_signal_fn signal_fn;
    void *signal_user;

    pthread_mutex_t post_mutex;
    bool post_mutex_made;
    mwl_loop_task *post_head, *post_tail;

    uint64_t now;
};

/* ---- timer heap ---------------------------------------------------------- */

static bool timer_before(const mwl_loop *loop, size_t a, size_t b)
{
    const timer_slot *x = &loop->timers[a], *y = &loop->timers[b];
    return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

static void heap_set(mwl_loop *loop, size_t pos, size_t slot)
{
    loop->heap[pos] = slot;
    loop->timers[slot].heap_index = pos;
}

static void heap_up(mwl_loop *loop, size_t pos)
{
    size_t slot = loop->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!timer_before(loop, slot, loop->heap[parent]))
            break;
        heap_set(loop, pos, loop->heap[parent]);
        pos = parent;
    }
    heap_set(loop, pos, slot);
}

static void heap_down(mwl_loop *loop, size_t pos)
{
    size_t slot = loop->heap[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len && timer_before(loop, loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_before(loop, loop->heap[child], slot))
            break;
        heap_set(loop, pos, loop->heap[child]);
        pos = child;
    }
    heap_set(loop, pos, slot);
}

static void heap_remove(mwl_loop *loop, size_t pos)
{
    size_t last = loop->heap[--loop->heap_len];
    if (pos == loop->heap_len)
        return;
    heap_set(loop, pos, last);
    /* The moved element may belong above or below its new place. */
    if (pos > 0 && timer_before(loop, last, loop->heap[(pos - 1) / 2]))
        heap_up(loop, pos);
    else
        heap_down(loop, pos);
}

static void timer_release(mwl_loop *loop, size_t slot)
{
    timer_slot *t = &loop->timers[slot];
    t->heap_index = SIZE_MAX;
    t->gen++;
    if (t->gen == 0) /* keep ids non-zero after 2^32 reuses */
        t->gen = 1;
    t->fn = NULL;
    t->user = NULL;
    t->next_free = loop->free_timer;
    loop->free_timer = (uint32_t)(slot + 1);
}

/* Finds the armed slot for an id, or SIZE_MAX. */
static size_t timer_lookup(const mwl_loop *loop, uint64_t id)
{
    uint64_t slot1 = id & 0xFFFFFFFFu;
    if (slot1 == 0 || slot1 > loop->config.max_timers)
        return SIZE_MAX;
    size_t slot = (size_t)(slot1 - 1);
    const timer_slot *t = &loop->timers[slot];
    if (t->heap_index == SIZE_MAX || t->gen != (uint32_t)(id >> 32))
        return SIZE_MAX;
    return slot;
}

int mwl_loop_timer_add(mwl_loop *loop, uint64_t at_ms, mwl_loop_timer_fn fn, void *user, uint64_t *id)
{
    if (id)
        *id = 0;
    if (!loop || !fn || !id)
        return MWL_E_INVALID;
    if (loop->free_timer == 0)
        return MWL_E_LIMIT;
    size_t slot = loop->free_timer - 1;
    timer_slot *t = &loop->timers[slot];
    loop->free_timer = t->next_free;
    t->at = at_ms;
    t->seq = loop->next_seq++;
    t->fn = fn;
    t->user = user;
    loop->heap[loop->heap_len] = slot;
    t->heap_index = loop->heap_len++;
    heap_up(loop, t->heap_index);
    *id = ((uint64_t)t->gen << 32) | (uint64_t)(slot + 1);
    return MWL_OK;
}

int mwl_loop_timer_move(mwl_loop *loop, uint64_t id, uint64_t at_ms)
{
    size_t slot = loop ? timer_lookup(loop, id) : SIZE_MAX;
    if (slot == SIZE_MAX)
        return MWL_E_NOTFOUND;
    timer_slot *t = &loop->timers[slot];
    t->at = at_ms;
    t->seq = loop->next_seq++; /* a moved timer queues behind equal ones */
    size_t pos = t->heap_index;
    heap_up(loop, pos);
    heap_down(loop, t->heap_index);
    return MWL_OK;
}

int mwl_loop_timer_cancel(mwl_loop *loop, uint64_t id)
{
    size_t slot = loop ? timer_lookup(loop, id) : SIZE_MAX;
    if (slot == SIZE_MAX)
        return MWL_E_NOTFOUND;
    heap_remove(loop, loop->timers[slot].heap_index);
    timer_release(loop, slot);
    return MWL_OK;
}

size_t mwl_loop_timer_count(const mwl_loop *loop)
{
    return loop->heap_len;
}

/* ---- creation ------------------------------------------------------------ */

static int make_pipe(int fds[2])
{
    /* A pipe, not eventfd: one code path on every POSIX system; a wakeup
     * costs one byte. Both ends non-blocking: a full pipe already means
     * "wake up", and the reader drains without blocking. */
    if (pipe(fds) != 0)
        return -1;
    if (mwl_net_fd_setup(fds[0], true) != 0 || mwl_net_fd_setup(fds[1], true) != 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        errno = err;
        return -1;
    }
    return 0;
}

int mwl_loop_new(const mwl_loop_config *config, const mwl_mem *mem, mwl_loop **out, mwl_diag *diag)
{
    if (!config || !out)
        return MWL_E_INVALID;
    *out = NULL;
    if (config->max_fds == 0 || config->max_fds > MAX_SLOTS || config->max_timers == 0 ||
        config->max_timers > MAX_SLOTS) {
        mwl_diag_set(diag, 0, 0, "loop: max_fds and max_timers must be 1..%zu", MAX_SLOTS);
        return MWL_E_INVALID;
    }
    mwl_loop *loop = mwl_mem_calloc(mem, 1, sizeof *loop);
    if (!loop)
        return MWL_E_NOMEM;
    loop->mem = mem;
    loop->config = *config;
    if (loop->config.max_timers_per_turn == 0)
        loop->config.max_timers_per_turn = DEFAULT_PER_TURN;
    if (loop->config.max_tasks_per_turn == 0)
        loop->config.max_tasks_per_turn = DEFAULT_PER_TURN;
    loop->wake_rd = loop->wake_wr = -1;
    atomic_init(&loop->stop, false);
    atomic_init(&loop->signals, 0u);

    size_t nf = config->max_fds, nt = config->max_timers;
    loop->pfds = mwl_mem_calloc(mem, nf + 1, sizeof *loop->pfds);
    loop->at = mwl_mem_calloc(mem, nf + 1, sizeof *loop->at);
    loop->ios = mwl_mem_calloc(mem, nf, sizeof *loop->ios);
    loop->ready = mwl_mem_calloc(mem, nf, sizeof *loop->ready);
    loop->timers = mwl_mem_calloc(mem, nt, sizeof *loop->timers);
    loop->heap = mwl_mem_calloc(mem, nt, sizeof *loop->heap);
    if (!loop->pfds || !loop->at || !loop->ios || !loop->ready || !loop->timers || !loop->heap) {
        mwl_loop_free(loop);
        return MWL_E_NOMEM;
    }
    if (pthread_mutex_init(&loop->post_mutex, NULL) != 0) {
        mwl_loop_free(loop);
        return MWL_E_NOMEM;
    }
    loop->post_mutex_made = true;
    for (size_t i = nf; i-- > 0;) {
        loop->ios[i].next_free = loop->free_io;
        loop->ios[i].gen = 1;
        loop->free_io = &loop->ios[i];
    }
    for (size_t i = nt; i-- > 0;) {
        loop->timers[i].heap_index = SIZE_MAX;
        loop->timers[i].gen = 1;
        loop->timers[i].next_free = loop->free_timer;
        loop->free_timer = (uint32_t)(i + 1);
    }
    int fds[2];
    if (make_pipe(fds) != 0) {
        mwl_diag_set(diag, 0, 0, "loop wakeup pipe: %s", strerror(errno));
        mwl_loop_free(loop);
        return MWL_E_IO;
    }
    loop->wake_rd = fds[0];
    loop->wake_wr = fds[1];
    loop->pfds[0].fd = loop->wake_rd;
    loop->pfds[0].events = POLLIN;
    loop->nfds = 1;
    loop->now = mwl_now_ms();
    *out = loop;
    return MWL_OK;
}

/* ---- signals ------------------------------------------------------------- */

/* The loop the handlers wake. Lock-free atomics are async-signal-safe. */
static _Atomic(mwl_loop *) signal_loop;
static struct sigaction saved_term, saved_int, saved_hup, saved_pipe;
static bool signals_saved;

static unsigned signal_bit(int signo)
{
    return signo == SIGTERM ? 1u : signo == SIGINT ? 2u : signo == SIGHUP ? 4u : 0u;
}

static void on_signal(int signo)
{
    int saved_errno = errno; /* the interrupted code may be about to read errno */
    mwl_loop *loop = atomic_load(&signal_loop);
    if (loop) {
        atomic_fetch_or(&loop->signals, signal_bit(signo));
        mwl_loop_wake(loop);
    }
    errno = saved_errno;
}

int mwl_net_ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGPIPE, &sa, NULL) == 0 ? MWL_OK : MWL_E_IO;
}

int mwl_net_signals_install(mwl_loop *loop, mwl_signal_fn fn, void *user)
{
    if (!loop)
        return MWL_E_INVALID;
    mwl_loop *expected = NULL;
    if (!atomic_compare_exchange_strong(&signal_loop, &expected, loop) && expected != loop)
        return MWL_E_INVALID;
    loop->signal_fn = fn;
    loop->signal_user = user;
    if (signals_saved)
        return MWL_OK; /* re-install on the same loop: only fn changes */

    struct sigaction sa, ign;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART spares other blocking calls an EINTR; poll() is never
     * restarted, and the pipe wakes it regardless. */
    sa.sa_flags = SA_RESTART;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGPIPE, &ign, &saved_pipe) != 0)
        goto fail;
    if (sigaction(SIGTERM, &sa, &saved_term) != 0) {
        sigaction(SIGPIPE, &saved_pipe, NULL);
        goto fail;
    }
    if (sigaction(SIGINT, &sa, &saved_int) != 0) {
        sigaction(SIGPIPE, &saved_pipe, NULL);
        sigaction(SIGTERM, &saved_term, NULL);
        goto fail;
    }
    if (sigaction(SIGHUP, &sa, &saved_hup) != 0) {
        sigaction(SIGPIPE, &saved_pipe, NULL);
        sigaction(SIGTERM, &saved_term, NULL);
        sigaction(SIGINT, &saved_int, NULL);
        goto fail;
    }
    signals_saved = true;
    return MWL_OK;
fail:
    atomic_store(&signal_loop, NULL);
    return MWL_E_IO;
}

void mwl_net_signals_restore(void)
{
    if (signals_saved) {
        sigaction(SIGTERM, &saved_term, NULL);
        sigaction(SIGINT, &saved_int, NULL);
        sigaction(SIGHUP, &saved_hup, NULL);
        sigaction(SIGPIPE, &saved_pipe, NULL);
        signals_saved = false;
    }
    atomic_store(&signal_loop, NULL);
}

void mwl_loop_free(mwl_loop *loop)
{
    if (!loop)
        return;
    if (atomic_load(&signal_loop) == loop)
        mwl_net_signals_restore();
    if (loop->wake_rd >= 0) {
        close(loop->wake_rd);
        close(loop->wake_wr);
    }
    if (loop->post_mutex_made)
        pthread_mutex_destroy(&loop->post_mutex);
    mwl_mem_free(loop->mem, loop->pfds);
    mwl_mem_free(loop->mem, loop->at);
    mwl_mem_free(loop->mem, loop->ios);
    mwl_mem_free(loop->mem, loop->ready);
    mwl_mem_free(loop->mem, loop->timers);
    mwl_mem_free(loop->mem, loop->heap);
    mwl_mem_free(loop->mem, loop);
}

/* ---- fds ----------------------------------------------------------------- */

static void apply_interest(mwl_loop *loop, mwl_loop_io *io)
{
    struct pollfd *p = &loop->pfds[io->index];
    int events = 0;
    if (io->interest & MWL_NET_READ)
        events |= POLLIN;
    if (io->interest & MWL_NET_WRITE)
        events |= POLLOUT;
    p->events = (short)events;
    /* poll() still reports POLLHUP/POLLERR for an fd with no interest, so a
     * paused connection whose peer hung up would wake every turn. A
     * negative fd is skipped entirely; ~fd keeps fd 0 negative too. */
    p->fd = events ? io->fd : ~io->fd;
    p->revents = 0;
}

int mwl_loop_add(mwl_loop *loop, int fd, unsigned interest, mwl_loop_io_fn fn, void *user, mwl_loop_io **out)
{
    if (out)
        *out = NULL;
    if (!loop || fd < 0 || !fn || !out)
        return MWL_E_INVALID;
    if (!loop->free_io)
        return MWL_E_LIMIT;
    mwl_loop_io *io = loop->free_io;
    loop->free_io = io->next_free;
    io->next_free = NULL;
    io->fn = fn;
    io->user = user;
    io->fd = fd;
    io->interest = interest & (MWL_NET_READ | MWL_NET_WRITE);
    io->index = loop->nfds++;
    loop->at[io->index] = io;
    apply_interest(loop, io);
    *out = io;
    return MWL_OK;
}

void mwl_loop_set_interest(mwl_loop *loop, mwl_loop_io *io, unsigned interest)
{
    io->interest = interest & (MWL_NET_READ | MWL_NET_WRITE);
    apply_interest(loop, io);
}

unsigned mwl_loop_interest(const mwl_loop_io *io)
{
    return io->interest;
}

void mwl_loop_remove(mwl_loop *loop, mwl_loop_io *io)
{
    /* fn is NULL on a free slot: a second remove of the same io (before the
     * slot is reused) is ignored instead of corrupting the array. */
    if (!loop || !io || !io->fn)
        return;
    size_t last = loop->nfds - 1;
    if (io->index != last) {
        loop->pfds[io->index] = loop->pfds[last];
        loop->at[io->index] = loop->at[last];
        loop->at[io->index]->index = io->index;
    }
    loop->nfds--;
    io->gen++;
    io->fn = NULL;
    io->user = NULL;
    io->fd = -1;
    io->next_free = loop->free_io;
    loop->free_io = io;
}

/* ---- waking, stopping, posting ------------------------------------------- */

void mwl_loop_wake(mwl_loop *loop)
{
    /* write() is async-signal-safe. EAGAIN means the pipe is full, which
     * already guarantees a wakeup, so the result is deliberately unused. */
    const char byte = 1;
    ssize_t rc = write(loop->wake_wr, &byte, 1);
    (void)rc;
}

void mwl_loop_stop(mwl_loop *loop)
{
    atomic_store(&loop->stop, true);
    mwl_loop_wake(loop);
}

bool mwl_loop_stopping(mwl_loop *loop)
{
    return atomic_load(&loop->stop);
}

void mwl_loop_post(mwl_loop *loop, mwl_loop_task *task)
{
    task->next = NULL;
    pthread_mutex_lock(&loop->post_mutex);
    if (loop->post_tail)
        loop->post_tail->next = task;
    else
        loop->post_head = task;
    loop->post_tail = task;
    pthread_mutex_unlock(&loop->post_mutex);
    mwl_loop_wake(loop);
}

static bool posts_waiting(mwl_loop *loop)
{
    pthread_mutex_lock(&loop->post_mutex);
    bool any = loop->post_head != NULL;
    pthread_mutex_unlock(&loop->post_mutex);
    return any;
}

/* ---- one turn ------------------------------------------------------------ */

static int turn_timeout(mwl_loop *loop, int max_wait_ms)
{
    int timeout = max_wait_ms < 0 ? -1 : max_wait_ms;
    if (timeout != 0 && posts_waiting(loop))
        return 0;
    if (timeout != 0 && loop->heap_len > 0) {
        uint64_t at = loop->timers[loop->heap[0]].at;
        uint64_t now = mwl_now_ms();
        uint64_t left = at > now ? at - now : 0;
        int t = left > (uint64_t)INT_MAX ? INT_MAX : (int)left;
        if (timeout < 0 || t < timeout)
            timeout = t;
    }
    return timeout;
}

static void drain_wakeup(mwl_loop *loop)
{
    char sink[256];
    /* Bounded: the pipe holds at most its capacity, and wakers that write
     * during the drain leave bytes for the next turn, which is harmless. */
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(loop->wake_rd, sink, sizeof sink);
        if (n < (ssize_t)sizeof sink)
            break;
    }
}

static void deliver_signals(mwl_loop *loop)
{
    unsigned bits = atomic_exchange(&loop->signals, 0u);
    static const int order[] = {SIGHUP, SIGTERM, SIGINT};
    for (size_t i = 0; i < 3; i++) {
        if (!(bits & signal_bit(order[i])))
            continue;
        if (loop->signal_fn)
            loop->signal_fn(loop, order[i], loop->signal_user);
        else if (order[i] != SIGHUP)
            mwl_loop_stop(loop);
    }
}

static void dispatch_io(mwl_loop *loop)
{
    /* Snapshot first: callbacks add and remove registrations, which moves
     * entries around in pfds. The generation check drops events for an io
     * that was removed (and maybe reused) earlier in this turn. */
    size_t nready = 0;
    for (size_t i = 1; i < loop->nfds; i++) {
        short re = loop->pfds[i].revents;
        if (!re)
            continue;
        loop->pfds[i].revents = 0;
        mwl_loop_io *io = loop->at[i];
        unsigned ev = 0;
        if ((re & POLLIN) && (io->interest & MWL_NET_READ))
            ev |= MWL_NET_READ;
        if ((re & POLLOUT) && (io->interest & MWL_NET_WRITE))
            ev |= MWL_NET_WRITE;
        if (re & (POLLERR | POLLHUP | POLLNVAL)) {
            ev |= MWL_NET_ERROR | MWL_NET_READ;
            if (io->interest & MWL_NET_WRITE)
                ev |= MWL_NET_WRITE;
        }
        if (re & POLLNVAL) {
            /* The fd was closed while registered (a caller bug). Stop polling
             * it so the loop cannot spin; the callback must remove it. */
            io->interest = 0;
            apply_interest(loop, io);
        }
        if (ev)
            loop->ready[nready++] = (ready_event){io, io->gen, ev};
    }
    for (size_t i = 0; i < nready; i++) {
        mwl_loop_io *io = loop->ready[i].io;
        if (io->gen != loop->ready[i].gen || !io->fn)
            continue;
        io->fn(loop, io, loop->ready[i].events, io->user);
    }
}

static void fire_timers(mwl_loop *loop)
{
    /* Only timers that existed when the turn began and are due: a callback
     * that re-arms itself for "now" runs again next turn, not forever. */
    uint64_t seq_limit = loop->next_seq;
    for (size_t fired = 0; fired < loop->config.max_timers_per_turn && loop->heap_len > 0; fired++) {
        size_t slot = loop->heap[0];
        timer_slot *t = &loop->timers[slot];
        if (t->at > loop->now || t->seq >= seq_limit)
            break;
        uint64_t id = ((uint64_t)t->gen << 32) | (uint64_t)(slot + 1);
        mwl_loop_timer_fn fn = t->fn;
        void *user = t->user;
        heap_remove(loop, 0);
        timer_release(loop, slot); /* first, so the callback may re-arm */
        fn(loop, id, user);
    }
}

static void run_posted(mwl_loop *loop)
{
    pthread_mutex_lock(&loop->post_mutex);
    mwl_loop_task *head = loop->post_head, *tail = head;
    if (!head) {
        pthread_mutex_unlock(&loop->post_mutex);
        return;
    }
    size_t n = 1;
    while (tail->next && n < loop->config.max_tasks_per_turn) {
        tail = tail->next;
        n++;
    }
    loop->post_head = tail->next;
    if (!loop->post_head)
        loop->post_tail = NULL;
    tail->next = NULL;
    pthread_mutex_unlock(&loop->post_mutex);
    while (head) {
        mwl_loop_task *task = head;
        head = head->next;
        task->next = NULL;
        task->fn(loop, task); /* may free task: read ->next before */
    }
}

int mwl_loop_run_once(mwl_loop *loop, int max_wait_ms)
{
    if (!loop)
        return MWL_E_INVALID;
    int timeout = turn_timeout(loop, max_wait_ms);
    int ready = poll(loop->pfds, (nfds_t)loop->nfds, timeout);
    int poll_errno = errno;
    loop->now = mwl_now_ms();
    if (ready < 0 && poll_errno != EINTR)
        return MWL_E_IO;
    if (ready > 0 && loop->pfds[0].revents) {
        loop->pfds[0].revents = 0;
        drain_wakeup(loop);
    }
    deliver_signals(loop);
    if (ready > 0)
        dispatch_io(loop);
    fire_timers(loop);
    run_posted(loop);
    return MWL_OK;
}

int mwl_loop_run(mwl_loop *loop)
{
    if (!loop)
        return MWL_E_INVALID;
    while (!atomic_load(&loop->stop)) {
        int rc = mwl_loop_run_once(loop, -1);
        if (rc != MWL_OK)
            return rc;
    }
    atomic_store(&loop->stop, false);
    return MWL_OK;
}

uint64_t mwl_loop_now(const mwl_loop *loop)
{
    return loop->now;
}
