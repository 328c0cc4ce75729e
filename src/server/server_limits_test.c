/* Who gets in, and the seams for more listeners: connections that never
 * send an A-ASSOCIATE-RQ cannot lock others out (max-pending,
 * max-peer-connections, associate-timeout), a peer's tiny Maximum Length
 * is refused, and further listeners share the loop: a DICOM port whose
 * transport is chosen by a wrap hook (and whose poll interest follows what
 * the transport wants), and a protocol listener with its own accept. The
 * server runs turn by turn on this thread; peers are socketpairs or TCP
 * on 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "server_test_util.h"

static const tc_context verification_only[] = {
    {1, MWL_UID_Verification, {MWL_UID_ExplicitVRLittleEndian}, 1},
};

static mwl_server_stats stats(mwl_server *srv)
{
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    return st;
}

static bool settle(mwl_server *srv, int ms)
{
    uint64_t until = mwl_deadline_in(ms);
    while (stats(srv).active > 0 && mwl_now_ms() < until)
        tu_pump(srv, 5);
    return stats(srv).active == 0;
}

/* Seventy connections that never ask (the review's attack) against a
 * budget of 4: each new one closes the oldest idle one, and a modality
 * that does ask is associated at once. */
static void test_idle_connections_do_not_lock_out(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.max_pending = 4;
    cfg.max_associations = 2;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    enum { IDLE = 70 };
    static tclient idle[IDLE];
    for (int i = 0; i < IDLE; i++)
        CHECK(tc_open(&idle[i], srv));
    tu_pump(srv, 10);
    mwl_server_stats st = stats(srv);
    CHECK_EQ_INT(st.evicted, IDLE - 4);
    CHECK(st.active <= 4);
    /* The first ones were closed (an orderly close, no PDU); the last four
     * are still open. */
    CHECK(tc_wait_eof(&idle[0], 3000));
    CHECK(!idle[IDLE - 1].eof);
    tclient modality;
    CHECK(tc_open(&modality, srv));
    CHECK_EQ_INT(tc_associate(&modality, "CT1", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_send_echo(&modality, 1, 1));
    tc_msg m;
    CHECK_EQ_INT(tc_read_message(&modality, &m, 3000), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SUCCESS);
    tc_msg_free(&m);
    CHECK(tc_release(&modality));
    tc_close(&modality);
    for (int i = 0; i < IDLE; i++)
        tc_close(&idle[i]);
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

/* max-peer-connections: over it, the peer's oldest connection without an
 * association makes room; when all have associations the new one is
 * closed. (All socketpair clients share one "address".) */
static void test_peer_limit(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.max_peer_connections = 2;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient a, b, c;
    CHECK(tc_open(&a, srv));
    CHECK_EQ_INT(tc_associate(&a, "A", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_open(&b, srv)); /* idle */
    CHECK(tc_open(&c, srv)); /* b makes room */
    CHECK(tc_wait_eof(&b, 3000));
    CHECK_EQ_INT(stats(srv).evicted, 1);
    CHECK_EQ_INT(tc_associate(&c, "C", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    tclient d;
    CHECK(!tc_open(&d, srv)); /* a and c are associated: d is closed */
    CHECK(tc_wait_eof(&d, 3000));
    CHECK_EQ_INT(stats(srv).dropped, 1);
    tc_close(&d);
    /* An association that ends frees its place. */
    CHECK(tc_release(&a));
    tc_close(&a);
    tu_pump(srv, 20);
    CHECK(tc_open(&d, srv));
    CHECK_EQ_INT(tc_associate(&d, "D", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_release(&d));
    CHECK(tc_release(&c));
    tc_close(&b);
    tc_close(&c);
    tc_close(&d);
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

/* Rejected connections lingering (Sta13) do not count against
 * max-peer-connections, so closing one makes no room: a peer cannot bank
 * them to get past its limit later. */
static void test_peer_limit_not_banked(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.max_peer_connections = 2;
    snprintf(cfg.calling_aet_allow.aet[0], sizeof cfg.calling_aet_allow.aet[0], "OK");
    cfg.calling_aet_allow.count = 1;
    cfg.acse_timeout_ms = 60000; /* the rejected ones linger as long as they stay open */
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    enum { BAD = 5, OK = 6 };
    tclient ok[OK], bad[BAD];
    CHECK(tc_open(&ok[0], srv));
    CHECK_EQ_INT(tc_associate(&ok[0], "OK", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    for (int i = 0; i < BAD; i++) {
        CHECK(tc_open(&bad[i], srv));
        CHECK_EQ_INT(tc_associate(&bad[i], "BAD", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_RJ);
    }
    int associated = 1;
    for (int i = 1; i < OK; i++) {
        if (!tc_open(&ok[i], srv))
            continue;
        if (tc_associate(&ok[i], "OK", "MWL", verification_only, 1, NULL) == MWL_PDU_ASSOCIATE_AC)
            associated++;
    }
    CHECK(associated <= 2);
    for (int i = 0; i < OK; i++)
        tc_close(&ok[i]);
    for (int i = 0; i < BAD; i++)
        tc_close(&bad[i]);
    CHECK(settle(srv, 5000));
    mwl_server_free(srv);
}

/* associate-timeout bounds the time to a whole A-ASSOCIATE-RQ, whatever
 * ARTIM (acse-timeout, for closing) is. */
static void test_associate_timeout(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.associate_timeout_ms = 300;
    cfg.acse_timeout_ms = 600000;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient silent, slow;
    CHECK(tc_open(&silent, srv));
    CHECK(tc_open(&slow, srv));
    uint64_t t0 = mwl_now_ms();
    CHECK(tc_send(&slow, "\x01\x00\x00\x00\x00\x80", 6)); /* a header, then nothing */
    CHECK(tc_wait_eof(&silent, 20000));
    CHECK(tc_wait_eof(&slow, 20000));
    CHECK(mwl_now_ms() - t0 >= 250); /* not before its time */
    tc_close(&silent);
    tc_close(&slow);
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

/* A peer Maximum Length below the floor is refused (1,1,1); 0 (no limit)
 * and the floor itself are fine. */
static void test_min_peer_pdu(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    static const struct {
        uint32_t max;
        uint8_t pdu;
    } cases[] = {{8, MWL_PDU_ASSOCIATE_RJ},
                 {1023, MWL_PDU_ASSOCIATE_RJ},
                 {1024, MWL_PDU_ASSOCIATE_AC},
                 {0, MWL_PDU_ASSOCIATE_AC}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tclient c;
        CHECK(tc_open(&c, srv));
        CHECK(tc_send_rq(&c, "TINY", "MWL", verification_only, 1, cases[i].max));
        CHECK_EQ_INT(tc_next_pdu(&c, 3000), 1);
        CHECK_EQ_INT(c.pdu_type, cases[i].pdu);
        if (c.pdu_type == MWL_PDU_ASSOCIATE_RJ) {
            CHECK_EQ_INT(c.pdu[7], 1);
            CHECK_EQ_INT(c.pdu[8], 1);
            CHECK_EQ_INT(c.pdu[9], 1);
        } else {
            c.peer_max_pdu = 16384;
            CHECK(tc_release(&c));
        }
        tc_close(&c);
    }
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

/* ---- a wrapping transport: its first read waits for writability, as a
 * TLS handshake may; then it passes bytes through and counts them. ---- */

typedef struct wrap_impl {
    mwl_conn *inner;
    bool handshaken;
    size_t *bytes_in;
} wrap_impl;

static int wrap_read(mwl_conn *c, void *buf, size_t cap, size_t *n, unsigned *wants)
{
    wrap_impl *w = mwl_conn_impl(c);
    if (!w->handshaken) {
        w->handshaken = true;
        *n = 0;
        *wants = MWL_NET_WRITE;
        return MWL_AGAIN;
    }
    int rc = mwl_conn_read(w->inner, buf, cap, n);
    if (rc == MWL_OK)
        *w->bytes_in += *n;
    if (rc == MWL_AGAIN)
        *wants = mwl_conn_wants(w->inner);
    return rc;
}

static int wrap_writev(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n, unsigned *wants)
{
    wrap_impl *w = mwl_conn_impl(c);
    int rc = mwl_conn_writev(w->inner, iov, count, n);
    if (rc == MWL_AGAIN)
        *wants = mwl_conn_wants(w->inner);
    return rc;
}

static int wrap_shutdown(mwl_conn *c)
{
    wrap_impl *w = mwl_conn_impl(c);
    return mwl_conn_shutdown(w->inner);
}

static void wrap_close(mwl_conn *c)
{
    wrap_impl *w = mwl_conn_impl(c);
    mwl_conn_close(w->inner);
    free(w);
}

static const mwl_conn_ops wrap_ops = {.name = "wrapped",
                                      .read = wrap_read,
                                      .writev = wrap_writev,
                                      .shutdown = wrap_shutdown,
                                      .close = wrap_close};

typedef struct wrap_user {
    int wraps;
    size_t bytes_in;
} wrap_user;

static int wrap_hook(void *user, mwl_conn *conn, mwl_conn **out, mwl_diag *diag)
{
    (void)diag;
    wrap_user *u = user;
    wrap_impl *w = calloc(1, sizeof *w);
    if (!w) {
        mwl_conn_close(conn);
        return MWL_E_NOMEM;
    }
    w->inner = conn;
    w->bytes_in = &u->bytes_in;
    int rc = mwl_conn_new(&wrap_ops, w, mwl_conn_fd(conn), true, mwl_conn_peer(conn), NULL, out);
    if (rc != MWL_OK) {
        free(w);
        mwl_conn_close(conn);
        return rc;
    }
    u->wraps++;
    return MWL_OK;
}

/* ---- a protocol listener: echoes what it reads, on the server's loop ---- */

typedef struct echo_proto {
    mwl_loop *loop;
    mwl_conn *conn;
    mwl_loop_io *io;
    int accepted, stops, stops_now;
} echo_proto;

static void echo_close(echo_proto *e)
{
    if (e->io)
        mwl_loop_remove(e->loop, e->io);
    mwl_conn_close(e->conn);
    e->io = NULL;
    e->conn = NULL;
}

static void echo_io(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)loop;
    (void)io;
    (void)events;
    echo_proto *e = user;
    char buf[256];
    size_t n = 0;
    int rc = mwl_conn_read(e->conn, buf, sizeof buf, &n);
    if (rc == MWL_AGAIN)
        return;
    if (rc != MWL_OK) {
        echo_close(e);
        return;
    }
    mwl_iov iov = {buf, n};
    size_t w = 0;
    if (mwl_conn_writev(e->conn, &iov, 1, &w) != MWL_OK)
        echo_close(e);
}

static int echo_accept(void *user, mwl_server *srv, mwl_conn *conn)
{
    echo_proto *e = user;
    if (e->conn) {
        mwl_conn_close(conn);
        return MWL_E_LIMIT;
    }
    e->loop = mwl_server_loop(srv);
    e->conn = conn;
    e->accepted++;
    if (mwl_loop_add(e->loop, mwl_conn_fd(conn), MWL_NET_READ, echo_io, e, &e->io) != MWL_OK) {
        echo_close(e);
        return MWL_E_LIMIT;
    }
    return MWL_OK;
}

static void echo_stop(void *user, bool now)
{
    echo_proto *e = user;
    e->stops++;
    if (now) {
        e->stops_now++;
        echo_close(e);
    }
}

static size_t echo_active(void *user)
{
    return ((echo_proto *)user)->conn ? 1 : 0;
}

static int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* A tclient on a TCP connection to `port` (the server accepts it on its
 * next turns). */
static bool tc_connect(tclient *c, mwl_server *srv, uint16_t port)
{
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->in = malloc(TC_BUF);
    c->pdu = malloc(TC_BUF);
    mwl_dimse_assembler_init(&c->as, NULL, NULL);
    mwl_arena_init(&c->arena, NULL);
    c->fd = tcp_connect(port);
    return c->in && c->pdu && c->fd >= 0;
}

static void test_more_listeners(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    wrap_user wu = {0, 0};
    echo_proto ep;
    memset(&ep, 0, sizeof ep);
    mwl_listener_spec specs[2] = {
        {"dicom-wrapped", "127.0.0.1", 0, wrap_hook, NULL, NULL, NULL, &wu, 0, 0},
        {"echo", "127.0.0.1", 0, NULL, echo_accept, echo_stop, echo_active, &ep, 4, 0},
    };
    mwl_server_setup setup = {NULL, 0, specs, 2, NULL};
    mwl_server *srv = NULL;
    mwl_diag diag;
    CHECK_EQ_INT(mwl_server_new(&cfg, &setup, &srv, &diag), MWL_OK);
    if (!srv)
        return;
    uint16_t dicom_port = mwl_server_listener_port(srv, 1), echo_port = mwl_server_listener_port(srv, 2);
    CHECK(dicom_port != 0);
    CHECK(echo_port != 0);
    CHECK(dicom_port != mwl_server_port(srv));

    /* DICOM through the wrapped transport: the first read wanted
     * writability; the session polled for it and went on. */
    tclient c;
    CHECK(tc_connect(&c, srv, dicom_port));
    CHECK_EQ_INT(tc_associate(&c, "WRAPPED", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_send_echo(&c, 1, 5));
    tc_msg m;
    CHECK_EQ_INT(tc_read_message(&c, &m, 3000), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SUCCESS);
    tc_msg_free(&m);
    CHECK(tc_release(&c));
    tc_close(&c);
    CHECK_EQ_INT(wu.wraps, 1);
    CHECK(wu.bytes_in > 0);

    /* The protocol listener's connection lives on the same loop. */
    int fd = tcp_connect(echo_port);
    CHECK(fd >= 0);
    uint64_t until = mwl_deadline_in(3000);
    while (ep.accepted == 0 && mwl_now_ms() < until)
        tu_pump(srv, 5);
    CHECK_EQ_INT(ep.accepted, 1);
    CHECK_EQ_INT(write(fd, "ping", 4), 4);
    char back[8] = "";
    ssize_t got = 0;
    until = mwl_deadline_in(3000);
    while (got < 4 && mwl_now_ms() < until) {
        tu_pump(srv, 5);
        ssize_t r = read(fd, back + got, 4 - (size_t)got);
        if (r > 0)
            got += r;
    }
    CHECK_EQ_INT(got, 4);
    CHECK(memcmp(back, "ping", 4) == 0);

    /* Shutdown waits for the protocol's connection, then (grace over)
     * stops it for good. */
    mwl_server_shutdown(srv);
    tu_pump(srv, 20);
    CHECK(ep.stops >= 1);
    until = mwl_deadline_in(10000);
    int rc = MWL_OK;
    while (mwl_server_run_once(srv, 10, &rc) && mwl_now_ms() < until) {
    }
    CHECK_EQ_INT(ep.stops_now, 1);
    CHECK_EQ_INT(echo_active(&ep), 0);
    close(fd);
    mwl_server_free(srv);
}

int main(void)
{
    tu_log_init();
    RUN_TEST(test_idle_connections_do_not_lock_out);
    RUN_TEST(test_peer_limit);
    RUN_TEST(test_peer_limit_not_banked);
    RUN_TEST(test_associate_timeout);
    RUN_TEST(test_min_peer_pdu);
    RUN_TEST(test_more_listeners);
    return check_report("server_limits_test");
}
