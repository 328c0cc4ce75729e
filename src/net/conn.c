/* The transport-independent half of mwl_conn: argument checks around the
 * vtable, and the poll-based deadline helpers the blocking client uses. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net/net_int.h"

int mwl_conn_new(const mwl_conn_ops *ops, void *impl, int fd, bool nonblocking, const char *peer,
                 const mwl_mem *mem, mwl_conn **out)
{
    if (!ops || !ops->read || !ops->writev || !ops->close || !out)
        return MWL_E_INVALID;
    *out = NULL;
    mwl_conn *c = mwl_mem_calloc(mem, 1, sizeof *c);
    if (!c)
        return MWL_E_NOMEM;
    c->ops = ops;
    c->impl = impl;
    c->mem = mem;
    c->fd = fd;
    c->nonblocking = nonblocking;
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
    *out = c;
    return MWL_OK;
}

void *mwl_conn_impl(const mwl_conn *c)
{
    return c->impl;
}

void mwl_conn_set_errno(mwl_conn *c, int err)
{
    c->sys_errno = err;
}

int mwl_conn_read(mwl_conn *c, void *buf, size_t cap, size_t *n)
{
    if (n)
        *n = 0;
    if (!c || !buf || !n || cap == 0)
        return MWL_E_INVALID;
    unsigned wants = MWL_NET_READ;
    int rc = c->ops->read(c, buf, cap, n, &wants);
    if (rc == MWL_AGAIN)
        c->wants = wants;
    return rc;
}

int mwl_conn_writev(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n)
{
    if (n)
        *n = 0;
    if (!c || !n || (count > 0 && !iov) || count > MWL_CONN_IOV_MAX)
        return MWL_E_INVALID;
    /* Drop empty buffers so the op never sees a zero-length write, which
     * would be indistinguishable from "nothing taken". */
    mwl_iov nonempty[MWL_CONN_IOV_MAX];
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        if (iov[i].len == 0)
            continue;
        if (!iov[i].data)
            return MWL_E_INVALID;
        nonempty[used++] = iov[i];
    }
    if (used == 0)
        return MWL_OK;
    unsigned wants = MWL_NET_WRITE;
    int rc = c->ops->writev(c, nonempty, used, n, &wants);
    if (rc == MWL_AGAIN)
        c->wants = wants;
    return rc;
}

int mwl_conn_write(mwl_conn *c, const void *buf, size_t len, size_t *n)
{
    mwl_iov one = {buf, len};
    return mwl_conn_writev(c, &one, 1, n);
}

int mwl_conn_shutdown(mwl_conn *c)
{
    if (!c)
        return MWL_E_INVALID;
    if (c->ops->shutdown)
        return c->ops->shutdown(c);
    if (c->fd < 0)
        return MWL_OK;
    if (shutdown(c->fd, SHUT_WR) != 0) {
        c->sys_errno = errno;
        return MWL_E_IO;
    }
    return MWL_OK;
}

void mwl_conn_close(mwl_conn *c)
{
    if (!c)
        return;
    c->ops->close(c);
    mwl_mem_free(c->mem, c);
}

int mwl_conn_fd(const mwl_conn *c)
{
    return c->fd;
}

int mwl_conn_release_fd(mwl_conn *c, int *fd)
{
    /* Only TCP: its whole state is the fd. */
    if (!c || !fd || c->ops != &mwl_tcp_conn_ops || c->fd < 0)
        return MWL_E_INVALID;
    *fd = c->fd;
    c->fd = -1;
    mwl_mem_free(c->mem, c);
    return MWL_OK;
}
unsigned mwl_conn_wants(const mwl_conn *c)
{
    return c->wants;
}
size_t mwl_conn_pending(const mwl_conn *c)
{
    return c->ops->pending ? c->ops->pending(c) : 0;
}
const char *mwl_conn_peer(const mwl_conn *c)
{
    return c->peer;
}
const char *mwl_conn_peer_subject(const mwl_conn *c)
{
    return c && c->ops->peer_subject ? c->ops->peer_subject(c) : "";
}

const char *mwl_conn_error_text(const mwl_conn *c)
{
    return c && c->ops->error_text ? c->ops->error_text(c) : "";
}

int mwl_conn_errno(const mwl_conn *c)
{
    return c->sys_errno;
}
const char *mwl_conn_transport(const mwl_conn *c)
{
    return c->ops->name ? c->ops->name : "?";
}
bool mwl_conn_is_nonblocking(const mwl_conn *c)
{
    return c->nonblocking;
}

/* Milliseconds to pass to poll() for an absolute deadline: -1 for none,
 * else the time left (capped to int), 0 once it has passed. */
static int poll_timeout(uint64_t deadline_ms, uint64_t now)
{
    if (deadline_ms == UINT64_MAX)
        return -1;
    if (deadline_ms <= now)
        return 0;
    uint64_t left = deadline_ms - now;
    return left > (uint64_t)INT_MAX ? INT_MAX : (int)left;
}

int mwl_conn_wait(mwl_conn *c, unsigned events, uint64_t deadline_ms)
{
    if (!c || !(events & (MWL_NET_READ | MWL_NET_WRITE)) || c->fd < 0)
        return MWL_E_INVALID;
    if ((events & MWL_NET_READ) && mwl_conn_pending(c) > 0)
        return MWL_OK;
    struct pollfd pfd = {.fd = c->fd, .events = 0, .revents = 0};
    if (events & MWL_NET_READ)
        pfd.events |= POLLIN;
    if (events & MWL_NET_WRITE)
        pfd.events |= POLLOUT;
    for (;;) {
        uint64_t now = mwl_now_ms();
        /* Checked before polling too: readiness need not mean progress (a
         * TLS transport may want WRITE again and again), and the retry
         * loops in the helpers below rely on this to end. */
        if (deadline_ms != UINT64_MAX && now >= deadline_ms)
            return MWL_E_TIMEOUT;
        int timeout = poll_timeout(deadline_ms, now);
        int rc = poll(&pfd, 1, timeout);
        if (rc > 0)
            return MWL_OK; /* ready, or an error the retried operation reports */
        if (rc == 0) {
            /* poll() may wake a little early; only the clock decides. */
            if (deadline_ms != UINT64_MAX && mwl_now_ms() >= deadline_ms)
                return MWL_E_TIMEOUT;
            continue;
        }
        if (errno == EINTR)
            continue;
        c->sys_errno = errno;
        return MWL_E_IO;
    }
}

int mwl_conn_read_deadline(mwl_conn *c, void *buf, size_t cap, size_t *n, uint64_t deadline_ms)
{
    if (n)
        *n = 0;
    if (!c || !c->nonblocking)
        return MWL_E_INVALID;
    for (;;) {
        int rc = mwl_conn_read(c, buf, cap, n);
        if (rc != MWL_AGAIN)
            return rc;
        rc = mwl_conn_wait(c, c->wants ? c->wants : MWL_NET_READ, deadline_ms);
        if (rc != MWL_OK)
            return rc;
    }
}

int mwl_conn_write_all_deadline(mwl_conn *c, const mwl_iov *iov, size_t count, uint64_t deadline_ms,
                                size_t *written)
{
    if (written)
        *written = 0;
    if (!c || !c->nonblocking || count > MWL_CONN_IOV_MAX || (count > 0 && !iov))
        return MWL_E_INVALID;
    mwl_iov rest[MWL_CONN_IOV_MAX];
    size_t first = 0;
    for (size_t i = 0; i < count; i++)
        rest[i] = iov[i];
    size_t total = 0;
    for (;;) {
        while (first < count && rest[first].len == 0)
            first++;
        if (first == count)
            return MWL_OK;
        size_t n = 0;
        int rc = mwl_conn_writev(c, rest + first, count - first, &n);
        if (rc == MWL_AGAIN) {
            rc = mwl_conn_wait(c, c->wants ? c->wants : MWL_NET_WRITE, deadline_ms);
            if (rc != MWL_OK)
                return rc;
            continue;
        }
        if (rc != MWL_OK)
            return rc;
        total += n;
        if (written)
            *written = total;
        /* Advance past what was taken, possibly mid-buffer. */
        for (size_t i = first; i < count && n > 0; i++) {
            size_t take = n < rest[i].len ? n : rest[i].len;
            rest[i].data = (const uint8_t *)rest[i].data + take;
            rest[i].len -= take;
            n -= take;
        }
        /* A peer that reads slowly but steadily keeps this loop going; the
         * deadline bounds it as a whole, not per write. */
        if (deadline_ms != UINT64_MAX && mwl_now_ms() >= deadline_ms) {
            while (first < count && rest[first].len == 0)
                first++;
            return first == count ? MWL_OK : MWL_E_TIMEOUT;
        }
    }
}
