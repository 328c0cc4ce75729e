/* TCP: the mwl_conn_ops for plain sockets, client connect with a timeout,
 * and the listener (PS3.8 §9.1: requestor connects, acceptor listens). */

/* accept4() is a GNU/BSD extension; it sets close-on-exec atomically, so
 * a fork+exec on another thread can never inherit a peer's socket. */
#define _GNU_SOURCE 1

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/net_int.h"

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0 /* SO_NOSIGPIPE is set on the socket instead */
#endif

/* ---- connection ops ------------------------------------------------------ */

static int tcp_read(mwl_conn *c, void *buf, size_t cap, size_t *n, unsigned *wants)
{
    for (;;) {
        ssize_t got = recv(c->fd, buf, cap, 0);
        if (got > 0) {
            *n = (size_t)got;
            return MWL_OK;
        }
        if (got == 0)
            return MWL_E_CLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *wants = MWL_NET_READ;
            return MWL_AGAIN;
        }
        c->sys_errno = errno;
        return mwl_net_errno_status(errno);
    }
}

static int tcp_writev(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n, unsigned *wants)
{
    struct iovec vec[MWL_CONN_IOV_MAX];
    for (size_t i = 0; i < count; i++) {
        /* struct iovec has no const member; sendmsg only reads it. */
        vec[i].iov_base = (void *)(uintptr_t)iov[i].data;
        vec[i].iov_len = iov[i].len;
    }
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = vec;
    msg.msg_iovlen = count;
    for (;;) {
        /* sendmsg rather than writev: writev cannot take MSG_NOSIGNAL, and
         * a peer that vanished must give EPIPE here, not kill the server. */
        ssize_t put = sendmsg(c->fd, &msg, SEND_FLAGS);
        if (put > 0) {
            *n = (size_t)put;
            return MWL_OK;
        }
        if (put == 0) {
            *wants = MWL_NET_WRITE;
            return MWL_AGAIN;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
            *wants = MWL_NET_WRITE;
            return MWL_AGAIN;
        }
        c->sys_errno = errno;
        return mwl_net_errno_status(errno);
    }
}

static int tcp_shutdown(mwl_conn *c)
{
    if (shutdown(c->fd, SHUT_WR) != 0) {
        c->sys_errno = errno;
        /* Already reset by the peer: nothing left to close politely. */
        return errno == ENOTCONN ? MWL_E_CLOSED : MWL_E_IO;
    }
    return MWL_OK;
}

static void tcp_close(mwl_conn *c)
{
    if (c->fd >= 0) {
        /* No SO_LINGER: close() returns at once and the kernel still sends
         * queued data, which is PS3.8 §9.1.4's "don't linger". EINTR is not
         * retried: on Linux the fd is released anyway. */
        close(c->fd);
        c->fd = -1;
    }
}

const mwl_conn_ops mwl_tcp_conn_ops = {
    .name = "tcp",
    .read = tcp_read,
    .writev = tcp_writev,
    .pending = NULL,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
};

/* ---- socket set-up ------------------------------------------------------- */

/* A socket with close-on-exec and the blocking mode asked for, atomically
 * where the system allows it. */
static int open_socket(int family, bool nonblocking)
{
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
    return socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
#else
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd >= 0 && mwl_net_fd_setup(fd, nonblocking) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
#endif
}

/* Options every connected socket gets. TCP_NODELAY matters: a DIMSE
 * response is often a small PDU after a larger one, and Nagle plus the
 * peer's delayed ACK would hold it back ~40 ms each time. */
static void tune_connected(int fd)
{
    int one = 1;
    /* Failing only for non-TCP sockets (a socketpair in tests); harmless. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
}

static void peer_name(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        mwl_net_format_sockaddr((const struct sockaddr *)&ss, len, out, size);
    else
        snprintf(out, size, "?");
}

static int wrap_fd(int fd, bool nonblocking, const char *peer, const mwl_mem *mem, mwl_conn **out)
{
    return mwl_conn_new(&mwl_tcp_conn_ops, NULL, fd, nonblocking, peer, mem, out);
}

int mwl_net_conn_from_fd(int fd, bool nonblocking, const mwl_mem *mem, mwl_conn **out, mwl_diag *diag)
{
    if (!out || fd < 0)
        return MWL_E_INVALID;
    *out = NULL;
    if (mwl_net_fd_setup(fd, nonblocking) != 0) {
        mwl_diag_set(diag, 0, 0, "fcntl: %s", strerror(errno));
        return MWL_E_IO;
    }
    tune_connected(fd);
    char peer[MWL_NET_ADDRSTRLEN];
    peer_name(fd, peer, sizeof peer);
    return wrap_fd(fd, nonblocking, peer, mem, out);
}

/* ---- connect ------------------------------------------------------------- */

/* One non-blocking connect attempt, bounded by `deadline`. Returns MWL_OK
 * with *fd_out, or an error with diag filled (the fd is closed). */
static int connect_one(const struct addrinfo *ai, uint64_t deadline, int *fd_out, mwl_diag *diag)
{
    char where[MWL_NET_ADDRSTRLEN];
    mwl_net_format_sockaddr(ai->ai_addr, ai->ai_addrlen, where, sizeof where);
    int fd = open_socket(ai->ai_family, true);
    if (fd < 0) {
        mwl_diag_set(diag, 0, 0, "socket for %s: %s", where, strerror(errno));
        return MWL_E_IO;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
        mwl_diag_set(diag, 0, 0, "connect to %s: %s", where, strerror(errno));
        close(fd);
        return MWL_E_IO;
    }
    if (rc != 0) {
        /* In progress (or interrupted, which on POSIX also continues
         * asynchronously): writable means finished, one way or the other. */
        struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
        for (;;) {
            uint64_t now = mwl_now_ms();
            if (deadline != UINT64_MAX && now >= deadline) {
                mwl_diag_set(diag, 0, 0, "connect to %s: timed out", where);
                close(fd);
                return MWL_E_TIMEOUT;
            }
            uint64_t left = deadline == UINT64_MAX ? UINT64_MAX : deadline - now;
            int timeout = left > 1000000 ? 1000000 : (int)left;
            int ready = poll(&pfd, 1, timeout);
            if (ready > 0)
                break;
            if (ready < 0 && errno != EINTR) {
                mwl_diag_set(diag, 0, 0, "poll: %s", strerror(errno));
                close(fd);
                return MWL_E_IO;
            }
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            mwl_diag_set(diag, 0, 0, "connect to %s: %s", where, strerror(err));
            close(fd);
            return err == ETIMEDOUT ? MWL_E_TIMEOUT : MWL_E_IO;
        }
    }
    *fd_out = fd;
    return MWL_OK;
}

int mwl_net_connect(const char *host, uint16_t port, int timeout_ms, const mwl_mem *mem, mwl_conn **out,
                    mwl_diag *diag)
{
    if (!out || !host || !*host) {
        mwl_diag_set(diag, 0, 0, "no host to connect to");
        return MWL_E_INVALID;
    }
    *out = NULL;
    uint64_t deadline = mwl_deadline_in(timeout_ms);

    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* No AI_ADDRCONFIG: glibc ignores loopback addresses when deciding
     * which families are "configured", so on an isolated host it would hide
     * ::1 and 127.0.0.1 themselves. Unusable families just fail quickly. */
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai != 0) {
        mwl_diag_set(diag, 0, 0, "resolve %.100s: %s", host, gai_strerror(gai));
        return MWL_E_IO;
    }

    size_t left = 0;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next)
        left++;
    int rc = MWL_E_IO;
    int fd = -1;
    for (const struct addrinfo *ai = list; ai; ai = ai->ai_next, left--) {
        uint64_t attempt_deadline = deadline;
        if (deadline != UINT64_MAX && left > 1) {
            uint64_t now = mwl_now_ms();
            attempt_deadline = now < deadline ? now + (deadline - now) / left : now;
        }
        rc = connect_one(ai, attempt_deadline, &fd, diag);
        if (rc == MWL_OK)
            break;
        if (deadline != UINT64_MAX && mwl_now_ms() >= deadline)
            break;
    }
    freeaddrinfo(list);
    if (rc != MWL_OK)
        return rc;

    tune_connected(fd);
    char peer[MWL_NET_ADDRSTRLEN];
    peer_name(fd, peer, sizeof peer);
    rc = wrap_fd(fd, true, peer, mem, out);
    if (rc != MWL_OK)
        close(fd);
    return rc;
}

/* ---- listener ------------------------------------------------------------ */

struct mwl_listener {
    const mwl_mem *mem;
    int fd;
    bool nonblocking;
    uint16_t port;
    char addr[MWL_NET_ADDRSTRLEN];
};

void mwl_listen_opts_init(mwl_listen_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->backlog = 128;
    opts->nonblocking = true;
}

/* Creates a socket for `sa` and binds and listens on it. Returns the fd,
 * or -1 with errno set and diag filled. */
static int bind_listen(int family, const struct sockaddr *sa, socklen_t len, bool dual_stack,
                       const mwl_listen_opts *opts, mwl_diag *diag)
{
    char where[MWL_NET_ADDRSTRLEN];
    mwl_net_format_sockaddr(sa, len, where, sizeof where);
    int fd = open_socket(family, opts->nonblocking);
    if (fd < 0) {
        int err = errno;
        mwl_diag_set(diag, 0, 0, "socket for %s: %s", where, strerror(err));
        errno = err;
        return -1;
    }
    int one = 1, zero = 0;
    /* SO_REUSEADDR: a restarted server can bind while old connections sit
     * in TIME_WAIT. (It does not allow two live listeners on one port.) */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        goto fail;
    if (family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one) != 0) {
        /* Some systems cannot turn V6ONLY off; the caller falls back to IPv4. */
        if (dual_stack)
            goto fail;
    }
    if (bind(fd, sa, len) != 0)
        goto fail;
    if (listen(fd, opts->backlog > 0 ? opts->backlog : 128) != 0)
        goto fail;
    return fd;
fail:;
    int err = errno;
    mwl_diag_set(diag, 0, 0, "listen on %s: %s", where, strerror(err));
    close(fd);
    errno = err;
    return -1;
}

static int open_any(const mwl_listen_opts *opts, mwl_diag *diag)
{
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = in6addr_any;
    in6.sin6_port = htons(opts->port);
    int fd = bind_listen(AF_INET6, (const struct sockaddr *)&in6, sizeof in6, true, opts, diag);
    if (fd >= 0)
        return fd;
    /* Only "no IPv6 here" falls back; "port in use" must stay an error,
     * not silently become an IPv4-only listener. */
    if (errno != EAFNOSUPPORT && errno != EPROTONOSUPPORT && errno != EADDRNOTAVAIL && errno != EINVAL &&
        errno != ENOPROTOOPT)
        return -1;
    struct sockaddr_in in4;
    memset(&in4, 0, sizeof in4);
    in4.sin_family = AF_INET;
    in4.sin_addr.s_addr = htonl(INADDR_ANY);
    in4.sin_port = htons(opts->port);
    return bind_listen(AF_INET, (const struct sockaddr *)&in4, sizeof in4, false, opts, diag);
}

static int open_named(const mwl_listen_opts *opts, mwl_diag *diag)
{
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)opts->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(opts->host, service, &hints, &list);
    if (gai != 0) {
        mwl_diag_set(diag, 0, 0, "resolve %.100s: %s", opts->host, gai_strerror(gai));
        errno = EINVAL;
        return -1;
    }
    int fd = -1;
    for (const struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
        /* An explicit IPv6 address means exactly that address, except the
         * IPv4-mapped form, which only works with V6ONLY off. */
        bool mapped = false;
        if (ai->ai_family == AF_INET6) {
            struct sockaddr_in6 in6;
            memcpy(&in6, ai->ai_addr, sizeof in6);
            mapped = IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr);
        }
        fd = bind_listen(ai->ai_family, ai->ai_addr, ai->ai_addrlen, mapped, opts, diag);
    }
    freeaddrinfo(list);
    return fd;
}

int mwl_listener_open(const mwl_listen_opts *opts, const mwl_mem *mem, mwl_listener **out, mwl_diag *diag)
{
    if (!opts || !out)
        return MWL_E_INVALID;
    *out = NULL;
    mwl_listener *l = mwl_mem_calloc(mem, 1, sizeof *l);
    if (!l)
        return MWL_E_NOMEM;
    bool any = !opts->host || !opts->host[0] || strcmp(opts->host, "*") == 0;
    int fd = any ? open_any(opts, diag) : open_named(opts, diag);
    if (fd < 0) {
        mwl_mem_free(mem, l);
        return MWL_E_IO;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        mwl_diag_set(diag, 0, 0, "getsockname: %s", strerror(errno));
        close(fd);
        mwl_mem_free(mem, l);
        return MWL_E_IO;
    }
    l->mem = mem;
    l->fd = fd;
    l->nonblocking = opts->nonblocking;
    if (ss.ss_family == AF_INET6)
        l->port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    else
        l->port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    mwl_net_format_sockaddr((const struct sockaddr *)&ss, len, l->addr, sizeof l->addr);
    *out = l;
    return MWL_OK;
}

int mwl_listener_accept(mwl_listener *l, mwl_conn **out, mwl_diag *diag)
{
    if (!l || !out)
        return MWL_E_INVALID;
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
    int fd =
        accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | (l->nonblocking ? SOCK_NONBLOCK : 0));
#else
    int fd = accept(l->fd, (struct sockaddr *)&ss, &len);
    if (fd >= 0 && mwl_net_fd_setup(fd, l->nonblocking) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        fd = -1;
    }
#endif
    if (fd < 0) {
        int err = errno;
        switch (err) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINTR:
        /* The connection died while queued, or (Linux) a network error
         * pending on it: accept(2) says to treat these like EAGAIN. */
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case EOPNOTSUPP:
        case EPERM: /* a firewall rule refused it (Linux) */ return MWL_AGAIN;
        case EMFILE:
        case ENFILE: mwl_diag_set(diag, 0, 0, "accept: %s", strerror(err)); return MWL_E_LIMIT;
        case ENOBUFS:
        case ENOMEM: mwl_diag_set(diag, 0, 0, "accept: %s", strerror(err)); return MWL_E_NOMEM;
        default: mwl_diag_set(diag, 0, 0, "accept: %s", strerror(err)); return MWL_E_IO;
        }
    }
    tune_connected(fd);
    char peer[MWL_NET_ADDRSTRLEN];
    mwl_net_format_sockaddr((const struct sockaddr *)&ss, len, peer, sizeof peer);
    int rc = wrap_fd(fd, l->nonblocking, peer, l->mem, out);
    if (rc != MWL_OK)
        close(fd);
    return rc;
}

int mwl_listener_fd(const mwl_listener *l)
{
    return l->fd;
}
uint16_t mwl_listener_port(const mwl_listener *l)
{
    return l->port;
}
const char *mwl_listener_addr(const mwl_listener *l)
{
    return l->addr;
}

void mwl_listener_close(mwl_listener *l)
{
    if (!l)
        return;
    close(l->fd);
    mwl_mem_free(l->mem, l);
}
