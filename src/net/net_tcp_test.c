/* TCP connections over loopback: listen on port 0, connect, exchange,
 * timeouts against silent peers, partial writes, peer close, IPv6, and fd
 * accounting. Only 127.0.0.1 / ::1 and dynamic ports; every wait bounded.
 *
 * SIGPIPE is deliberately left at its default here: a write to a closed
 * peer that raised it would kill the test. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "net/net_int.h"

static bool ipv6_ok; /* set by test_ipv6 when ::1 can be used */

static bool sockopt_on(int fd, int level, int name)
{
    int value = 0;
    socklen_t len = sizeof value;
    return getsockopt(fd, level, name, &value, &len) == 0 && value != 0;
}

static bool has_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && (flags & FD_CLOEXEC);
}

static mwl_listener *listen_on(const char *host)
{
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = host;
    mwl_listener *l = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_listener_open(&opts, NULL, &l, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "listen on %s: %s (%s)\n", host, mwl_status_str(rc), diag.msg);
        return NULL;
    }
    return l;
}

/* Accepts one connection, waiting at most 1 s. */
static mwl_conn *accept_one(mwl_listener *l)
{
    uint64_t deadline = mwl_deadline_in(1000);
    while (mwl_now_ms() < deadline) {
        struct pollfd pfd = {.fd = mwl_listener_fd(l), .events = POLLIN, .revents = 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        mwl_conn *c = NULL;
        int rc = mwl_listener_accept(l, &c, NULL);
        if (rc == MWL_OK)
            return c;
        if (rc != MWL_AGAIN)
            return NULL;
    }
    return NULL;
}

/* A connected client/server pair over `host`, or false. */
static bool make_pair(const char *host, mwl_listener **l, mwl_conn **client, mwl_conn **server)
{
    *client = *server = NULL;
    *l = listen_on(host);
    if (!*l)
        return false;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_net_connect(host, mwl_listener_port(*l), 1000, NULL, client, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "connect %s: %s (%s)\n", host, mwl_status_str(rc), diag.msg);
        return false;
    }
    *server = accept_one(*l);
    return *server != NULL;
}

static void close_pair(mwl_listener *l, mwl_conn *client, mwl_conn *server)
{
    mwl_conn_close(client);
    mwl_conn_close(server);
    mwl_listener_close(l);
}

static void test_listen_port0(void)
{
    mwl_listener *l = listen_on("127.0.0.1");
    CHECK(l != NULL);
    if (!l)
        return;
    uint16_t port = mwl_listener_port(l);
    CHECK(port != 0);
    char want[MWL_NET_ADDRSTRLEN];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)port);
    CHECK_EQ_STR(mwl_listener_addr(l), want);

    /* The same port cannot be bound twice, and that is an error with a
     * reason, not a silent fallback. */
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = "127.0.0.1";
    opts.port = port;
    mwl_listener *again = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    CHECK_EQ_INT(mwl_listener_open(&opts, NULL, &again, &diag), MWL_E_IO);
    CHECK(again == NULL);
    CHECK(strstr(diag.msg, "in use") != NULL);

    /* Nothing pending on a non-blocking listener. */
    mwl_conn *c = NULL;
    CHECK_EQ_INT(mwl_listener_accept(l, &c, NULL), MWL_AGAIN);
    CHECK(c == NULL);
    mwl_listener_close(l);
}

static void test_exchange(void)
{
    mwl_listener *l;
    mwl_conn *client, *server;
    CHECK(make_pair("127.0.0.1", &l, &client, &server));
    if (!server) {
        close_pair(l, client, server);
        return;
    }
    char want[MWL_NET_ADDRSTRLEN];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)mwl_listener_port(l));
    CHECK_EQ_STR(mwl_conn_peer(client), want);
    CHECK(strncmp(mwl_conn_peer(server), "127.0.0.1:", 10) == 0);
    CHECK_EQ_STR(mwl_conn_transport(client), "tcp");
    CHECK(mwl_conn_is_nonblocking(client) && mwl_conn_is_nonblocking(server));
    CHECK_EQ_INT(mwl_conn_pending(client), 0);
    /* Small PDUs must not wait for Nagle; no fd may leak into a child. */
    CHECK(sockopt_on(mwl_conn_fd(client), IPPROTO_TCP, TCP_NODELAY));
    CHECK(sockopt_on(mwl_conn_fd(server), IPPROTO_TCP, TCP_NODELAY));
    CHECK(has_cloexec(mwl_conn_fd(client)));
    CHECK(has_cloexec(mwl_conn_fd(server)));
    CHECK(has_cloexec(mwl_listener_fd(l)));
    CHECK(sockopt_on(mwl_listener_fd(l), SOL_SOCKET, SO_REUSEADDR));

    /* Nothing to read yet. */
    uint8_t buf[64];
    size_t n = 99;
    CHECK_EQ_INT(mwl_conn_read(server, buf, sizeof buf, &n), MWL_AGAIN);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(mwl_conn_wants(server), MWL_NET_READ);
    CHECK_EQ_INT(mwl_conn_read(server, buf, 0, &n), MWL_E_INVALID);

    /* Client -> server as header + body in one gathered write. */
    const uint8_t header[6] = {0x04, 0x00, 0x00, 0x00, 0x00, 0x05};
    const uint8_t body[5] = {'h', 'e', 'l', 'l', 'o'};
    mwl_iov iov[3] = {{header, sizeof header}, {NULL, 0}, {body, sizeof body}};
    size_t written = 0;
    CHECK_EQ_INT(mwl_conn_write_all_deadline(client, iov, 3, mwl_deadline_in(1000), &written), MWL_OK);
    CHECK_EQ_INT(written, 11);
    uint8_t got[11];
    size_t have = 0;
    while (have < sizeof got) {
        int rc = mwl_conn_read_deadline(server, got + have, sizeof got - have, &n, mwl_deadline_in(1000));
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK)
            break;
        have += n;
    }
    CHECK_EQ_MEM(got, have, "\x04\x00\x00\x00\x00\x05hello", 11);

    /* Server -> client with the plain write. */
    CHECK_EQ_INT(mwl_conn_write(server, "pong", 4, &n), MWL_OK);
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
    CHECK_EQ_MEM(buf, n, "pong", 4);

    /* Empty writes take nothing and do not touch the socket. */
    CHECK_EQ_INT(mwl_conn_write(server, "", 0, &n), MWL_OK);
    CHECK_EQ_INT(n, 0);
    close_pair(l, client, server);
}

static void test_connect_refused(void)
{
    /* A bound but not listening socket owns the port for the whole test,
     * so nothing else can start listening there meanwhile. */
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(holder >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(bind(holder, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    CHECK_EQ_INT(getsockname(holder, (struct sockaddr *)&sa, &len), 0);
    uint16_t port = ntohs(sa.sin_port);

    mwl_conn *c = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    /* A refusal ends the attempt at once, not at the timeout (made long,
     * so that a loaded machine cannot blur the two). */
    uint64_t start = mwl_now_ms();
    int rc = mwl_net_connect("127.0.0.1", port, 30000, NULL, &c, &diag);
    uint64_t took = mwl_now_ms() - start;
    CHECK_EQ_INT(rc, MWL_E_IO);
    CHECK(c == NULL);
    CHECK(took < 10000);
    CHECK(strstr(diag.msg, "refused") != NULL);
    close(holder);

    /* No host at all. (An unresolvable name is not tried: that would ask
     * whatever DNS the test machine has.) */
    CHECK_EQ_INT(mwl_net_connect("", 104, 100, NULL, &c, NULL), MWL_E_INVALID);
}

#ifdef __linux__
static void test_connect_timeout(void)
{
    /* Linux drops SYNs for a listener whose accept queue is full, so a
     * connect to it hangs: the closest loopback gets to a black hole. */
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = "127.0.0.1";
    opts.backlog = 1;
    mwl_listener *l = NULL;
    CHECK_EQ_INT(mwl_listener_open(&opts, NULL, &l, NULL), MWL_OK);
    if (!l)
        return;
    mwl_conn *filler[8] = {NULL};
    bool timed_out = false;
    for (size_t i = 0; i < 8 && !timed_out; i++) {
        uint64_t start = mwl_now_ms();
        int rc = mwl_net_connect("127.0.0.1", mwl_listener_port(l), 150, NULL, &filler[i], NULL);
        uint64_t took = mwl_now_ms() - start;
        if (rc == MWL_E_TIMEOUT) {
            timed_out = true;
            CHECK(took >= 140 && took < 10000); /* not before its time; no hang */
        } else {
            CHECK_EQ_INT(rc, MWL_OK);
        }
    }
    CHECK(timed_out);
    for (size_t i = 0; i < 8; i++)
        mwl_conn_close(filler[i]);
    mwl_listener_close(l);
}
#endif

static void test_read_timeout(void)
{
    mwl_listener *l;
    mwl_conn *client, *server;
    CHECK(make_pair("127.0.0.1", &l, &client, &server));
    if (server) {
        uint8_t buf[16];
        size_t n = 1;
        uint64_t start = mwl_now_ms();
        CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, start + 200), MWL_E_TIMEOUT);
        uint64_t took = mwl_now_ms() - start;
        CHECK_EQ_INT(n, 0);
        CHECK(took >= 200 && took < 10000); /* not before its time; no hang */
        /* An already-passed deadline still tries once, then times out. */
        CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, 0), MWL_E_TIMEOUT);
        CHECK_EQ_INT(mwl_conn_wait(client, MWL_NET_READ, mwl_deadline_in(50)), MWL_E_TIMEOUT);
        CHECK_EQ_INT(mwl_conn_wait(client, MWL_NET_WRITE, mwl_deadline_in(50)), MWL_OK);
    }
    close_pair(l, client, server);
}

/* ---- partial writes and a slow reader ----------------------------------- */

#define BIG (24u << 20)

static uint8_t pattern_at(size_t i)
{
    return (uint8_t)((i * 7u) ^ (i >> 11));
}

typedef struct slow_reader {
    mwl_conn *conn;
    size_t got;
    bool ok;
    int rc;
} slow_reader;

static void *slow_reader_main(void *arg)
{
    slow_reader *r = arg;
    static uint8_t buf[256 << 10];
    r->ok = true;
    uint64_t deadline = mwl_deadline_in(5000);
    unsigned turns = 0;
    while (r->got < BIG) {
        size_t n = 0;
        r->rc = mwl_conn_read_deadline(r->conn, buf, sizeof buf, &n, deadline);
        if (r->rc != MWL_OK)
            break;
        for (size_t i = 0; i < n; i++) {
            if (buf[i] != pattern_at(r->got + i)) {
                r->ok = false;
                break;
            }
        }
        r->got += n;
        /* Slow: pause now and then so the writer keeps meeting a full
         * socket buffer. */
        if (++turns % 16 == 0)
            usleep(2000);
    }
    return NULL;
}

static void test_partial_writes(void)
{
    mwl_listener *l;
    mwl_conn *client, *server;
    CHECK(make_pair("127.0.0.1", &l, &client, &server));
    uint8_t *big = malloc(BIG);
    CHECK(big != NULL);
    if (!server || !big) {
        free(big);
        close_pair(l, client, server);
        return;
    }
    for (size_t i = 0; i < BIG; i++)
        big[i] = pattern_at(i);

    /* Nobody reads yet: one write takes only what fits in the buffers. */
    size_t first = 0;
    CHECK_EQ_INT(mwl_conn_write(client, big, BIG, &first), MWL_OK);
    CHECK(first > 0 && first < BIG);

    /* With the peer still silent, write-all gives up at its deadline and
     * says how far it got. */
    size_t written = 0;
    mwl_iov rest = {big + first, BIG - first};
    uint64_t start = mwl_now_ms();
    CHECK_EQ_INT(mwl_conn_write_all_deadline(client, &rest, 1, start + 150, &written), MWL_E_TIMEOUT);
    uint64_t took = mwl_now_ms() - start;
    CHECK(took >= 150 && took < 10000); /* not before its time; no hang */
    CHECK(written < BIG - first);
    size_t sent = first + written;

    /* Now a slow reader drains it and the writer finishes. */
    slow_reader r = {server, 0, false, MWL_OK};
    pthread_t thread;
    CHECK_EQ_INT(pthread_create(&thread, NULL, slow_reader_main, &r), 0);
    rest = (mwl_iov){big + sent, BIG - sent};
    CHECK_EQ_INT(mwl_conn_write_all_deadline(client, &rest, 1, mwl_deadline_in(5000), &written), MWL_OK);
    CHECK_EQ_INT(written, BIG - sent);
    pthread_join(thread, NULL);
    CHECK_EQ_INT(r.rc, MWL_OK);
    CHECK_EQ_INT(r.got, BIG);
    CHECK(r.ok);
    free(big);
    close_pair(l, client, server);
}

static void test_peer_close(void)
{
    mwl_listener *l;
    mwl_conn *client, *server;
    CHECK(make_pair("127.0.0.1", &l, &client, &server));
    if (!server) {
        close_pair(l, client, server);
        return;
    }
    /* Bytes sent before the close still arrive, then EOF. */
    size_t n = 0;
    CHECK_EQ_INT(mwl_conn_write(server, "bye", 3, &n), MWL_OK);
    mwl_conn_close(server);
    server = NULL;
    uint8_t buf[16];
    CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
    CHECK_EQ_MEM(buf, n, "bye", 3);
    CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_E_CLOSED);
    CHECK_EQ_INT(mwl_conn_read(client, buf, sizeof buf, &n), MWL_E_CLOSED);

    /* Writing to the closed peer: the first write may still be accepted,
     * the peer answers with RST, then writes fail with MWL_E_CLOSED — and
     * no SIGPIPE, which would end this test. */
    int rc = MWL_OK;
    for (int i = 0; i < 100 && rc == MWL_OK; i++) {
        rc = mwl_conn_write(client, "data", 4, &n);
        if (rc == MWL_OK)
            usleep(5000);
    }
    CHECK_EQ_INT(rc, MWL_E_CLOSED);
    CHECK(mwl_conn_errno(client) == EPIPE || mwl_conn_errno(client) == ECONNRESET);
    close_pair(l, client, server);
}

static void test_shutdown_lingering_close(void)
{
    mwl_listener *l;
    mwl_conn *client, *server;
    CHECK(make_pair("127.0.0.1", &l, &client, &server));
    if (!server) {
        close_pair(l, client, server);
        return;
    }
    /* The server sends its last PDU and half-closes; the client sees the
     * bytes then EOF, and can still send (its A-RELEASE-RP, say). */
    size_t n = 0;
    CHECK_EQ_INT(mwl_conn_write(server, "last", 4, &n), MWL_OK);
    CHECK_EQ_INT(mwl_conn_shutdown(server), MWL_OK);
    uint8_t buf[16];
    CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
    CHECK_EQ_MEM(buf, n, "last", 4);
    CHECK_EQ_INT(mwl_conn_read_deadline(client, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_E_CLOSED);
    CHECK_EQ_INT(mwl_conn_write(client, "ack", 3, &n), MWL_OK);
    CHECK_EQ_INT(mwl_conn_read_deadline(server, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
    CHECK_EQ_MEM(buf, n, "ack", 3);
    CHECK_EQ_INT(mwl_conn_shutdown(client), MWL_OK);
    CHECK_EQ_INT(mwl_conn_read_deadline(server, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_E_CLOSED);
    close_pair(l, client, server);
}

static void test_ipv6(void)
{
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = "::1";
    mwl_listener *l = NULL;
    if (mwl_listener_open(&opts, NULL, &l, NULL) != MWL_OK) {
        printf("net_tcp_test: IPv6 loopback unavailable, IPv6 checks skipped\n");
        return;
    }
    ipv6_ok = true;
    char want[MWL_NET_ADDRSTRLEN];
    snprintf(want, sizeof want, "[::1]:%u", (unsigned)mwl_listener_port(l));
    CHECK_EQ_STR(mwl_listener_addr(l), want);

    /* Through the "[v6]:port" text a configuration would hold. */
    char host[MWL_NET_HOST_MAX];
    uint16_t port = 0;
    CHECK_EQ_INT(mwl_net_parse_hostport(want, 104, host, sizeof host, &port, NULL), MWL_OK);
    mwl_conn *client = NULL, *server = NULL;
    CHECK_EQ_INT(mwl_net_connect(host, port, 1000, NULL, &client, NULL), MWL_OK);
    server = client ? accept_one(l) : NULL;
    CHECK(server != NULL);
    if (server) {
        CHECK_EQ_STR(mwl_conn_peer(client), want);
        CHECK(strncmp(mwl_conn_peer(server), "[::1]:", 6) == 0);
        size_t n = 0;
        uint8_t buf[8];
        CHECK_EQ_INT(mwl_conn_write(client, "v6", 2, &n), MWL_OK);
        CHECK_EQ_INT(mwl_conn_read_deadline(server, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
        CHECK_EQ_MEM(buf, n, "v6", 2);
    }
    close_pair(l, client, server);
}

static void test_ipv4_mapped(void)
{
    if (!ipv6_ok)
        return;
    /* An IPv6 socket with V6ONLY off, bound to the mapped loopback: the
     * dual-stack path without binding every address. IPv4 clients reach
     * it, and logs show them as plain IPv4. */
    mwl_listener *l = listen_on("::ffff:127.0.0.1");
    if (!l) {
        printf("net_tcp_test: IPv4-mapped listener unsupported, skipped\n");
        return;
    }
    char want[MWL_NET_ADDRSTRLEN];
    snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)mwl_listener_port(l));
    CHECK_EQ_STR(mwl_listener_addr(l), want);
    mwl_conn *client = NULL;
    CHECK_EQ_INT(mwl_net_connect("127.0.0.1", mwl_listener_port(l), 1000, NULL, &client, NULL), MWL_OK);
    mwl_conn *server = client ? accept_one(l) : NULL;
    CHECK(server != NULL);
    if (server)
        CHECK(strncmp(mwl_conn_peer(server), "127.0.0.1:", 10) == 0);
    close_pair(l, client, server);
}

static void test_localhost_name(void)
{
    /* A name with several addresses: every result is tried, and the
     * listener sits on the first one that binds, so connect must find it
     * whichever family that is. */
    mwl_listener *l = listen_on("localhost");
    if (!l) {
        printf("net_tcp_test: \"localhost\" does not resolve, skipped\n");
        return;
    }
    mwl_conn *client = NULL;
    CHECK_EQ_INT(mwl_net_connect("localhost", mwl_listener_port(l), 1000, NULL, &client, NULL), MWL_OK);
    mwl_conn *server = client ? accept_one(l) : NULL;
    CHECK(server != NULL);
    close_pair(l, client, server);
}

static void test_blocking_listener(void)
{
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = "127.0.0.1";
    opts.nonblocking = false;
    mwl_listener *l = NULL;
    CHECK_EQ_INT(mwl_listener_open(&opts, NULL, &l, NULL), MWL_OK);
    if (!l)
        return;
    mwl_conn *client = NULL, *server = NULL;
    CHECK_EQ_INT(mwl_net_connect("127.0.0.1", mwl_listener_port(l), 1000, NULL, &client, NULL), MWL_OK);
    /* The connection is already queued, so this blocking accept returns. */
    CHECK_EQ_INT(mwl_listener_accept(l, &server, NULL), MWL_OK);
    if (server) {
        CHECK(!mwl_conn_is_nonblocking(server));
        /* The deadline helpers refuse a blocking connection rather than
         * block past their deadline. */
        uint8_t buf[4];
        size_t n;
        CHECK_EQ_INT(mwl_conn_read_deadline(server, buf, sizeof buf, &n, mwl_deadline_in(10)), MWL_E_INVALID);
        CHECK_EQ_INT(mwl_conn_write(client, "blk", 3, &n), MWL_OK);
        CHECK_EQ_INT(mwl_conn_read(server, buf, sizeof buf, &n), MWL_OK);
        CHECK_EQ_MEM(buf, n, "blk", 3);
    }
    close_pair(l, client, server);
}

static void test_from_fd(void)
{
    int sv[2];
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    mwl_conn *a = NULL, *b = NULL;
    CHECK_EQ_INT(mwl_net_conn_from_fd(sv[0], true, NULL, &a, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_net_conn_from_fd(sv[1], true, NULL, &b, NULL), MWL_OK);
    if (a && b) {
        CHECK_EQ_STR(mwl_conn_peer(a), "unix");
        CHECK_EQ_INT(mwl_conn_fd(a), sv[0]);
        size_t n;
        uint8_t buf[8];
        CHECK_EQ_INT(mwl_conn_read(a, buf, sizeof buf, &n), MWL_AGAIN);
        CHECK_EQ_INT(mwl_conn_write(b, "sp", 2, &n), MWL_OK);
        CHECK_EQ_INT(mwl_conn_read_deadline(a, buf, sizeof buf, &n, mwl_deadline_in(1000)), MWL_OK);
        CHECK_EQ_MEM(buf, n, "sp", 2);
    }
    mwl_conn_close(a);
    mwl_conn_close(b);
    CHECK_EQ_INT(mwl_net_conn_from_fd(-1, true, NULL, &a, NULL), MWL_E_INVALID);
}

static void test_accept_out_of_fds(void)
{
    mwl_listener *l = listen_on("127.0.0.1");
    if (!l)
        return;
    mwl_conn *client = NULL;
    CHECK_EQ_INT(mwl_net_connect("127.0.0.1", mwl_listener_port(l), 1000, NULL, &client, NULL), MWL_OK);
    struct pollfd pfd = {.fd = mwl_listener_fd(l), .events = POLLIN, .revents = 0};
    CHECK_EQ_INT(poll(&pfd, 1, 1000), 1);

    /* RLIMIT_NOFILE caps fd numbers: set it to the lowest free fd and no
     * new fd can be made, which is EMFILE for accept. */
    struct rlimit saved;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int lowest = dup(0);
    if (lowest < 0)
        lowest = dup(1);
    CHECK(lowest >= 0);
    close(lowest);
    struct rlimit tight = saved;
    tight.rlim_cur = (rlim_t)lowest;
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &tight), 0);
    mwl_conn *server = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_listener_accept(l, &server, &diag);
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &saved), 0);
    CHECK_EQ_INT(rc, MWL_E_LIMIT);
    CHECK(server == NULL);
    CHECK(diag.msg[0] != '\0');
    /* The connection stayed queued; with fds back it is accepted. */
    server = accept_one(l);
    CHECK(server != NULL);
    close_pair(l, client, server);
}

static void test_fds_return_to_baseline(void)
{
    size_t before = 0, during = 0, after = 0;
    CHECK_EQ_INT(mwl_net_count_fds(&before), MWL_OK);
    mwl_listener *l = listen_on("127.0.0.1");
    mwl_conn *clients[10] = {NULL}, *servers[10] = {NULL};
    for (size_t i = 0; l && i < 10; i++) {
        CHECK_EQ_INT(mwl_net_connect("127.0.0.1", mwl_listener_port(l), 1000, NULL, &clients[i], NULL),
                     MWL_OK);
        servers[i] = accept_one(l);
        CHECK(servers[i] != NULL);
    }
    CHECK_EQ_INT(mwl_net_count_fds(&during), MWL_OK);
    CHECK_EQ_INT(during, before + 21);
    for (size_t i = 0; i < 10; i++) {
        mwl_conn_close(clients[i]);
        mwl_conn_close(servers[i]);
    }
    mwl_listener_close(l);
    CHECK_EQ_INT(mwl_net_count_fds(&after), MWL_OK);
    CHECK_EQ_INT(after, before);
}

int main(void)
{
    size_t before = 0, after = 0;
    CHECK_EQ_INT(mwl_net_count_fds(&before), MWL_OK);
    RUN_TEST(test_listen_port0);
    RUN_TEST(test_exchange);
    RUN_TEST(test_connect_refused);
#ifdef __linux__
    RUN_TEST(test_connect_timeout);
#endif
    RUN_TEST(test_read_timeout);
    RUN_TEST(test_partial_writes);
    RUN_TEST(test_peer_close);
    RUN_TEST(test_shutdown_lingering_close);
    RUN_TEST(test_ipv6);
    RUN_TEST(test_ipv4_mapped);
    RUN_TEST(test_localhost_name);
    RUN_TEST(test_blocking_listener);
    RUN_TEST(test_from_fd);
    RUN_TEST(test_accept_out_of_fds);
    RUN_TEST(test_fds_return_to_baseline);
    /* Every test cleaned up after itself, failures included. */
    CHECK_EQ_INT(mwl_net_count_fds(&after), MWL_OK);
    CHECK_EQ_INT(after, before);
    return check_report("net_tcp_test");
}
