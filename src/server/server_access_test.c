/* Access control at association time (calling-aet-allow and the `allow`
 * rules), through the whole session: connections over socketpairs whose
 * transport reports a chosen peer address ("10.1.2.3:5000",
 * "[2001:db8::7]:104", ...), as TCP and TLS connections do, so every
 * address family is covered without a network. Checks the A-ASSOCIATE-AC
 * or -RJ (result, source, reason) and the one log line that says why. */
#include "server_test_util.h"

static const tc_context echo_ctx[] = {
    {1, MWL_UID_Verification, {MWL_UID_ImplicitVRLittleEndian}, 1},
};

/* ---- a pass-through transport with the peer address we choose ------------- */

static int peer_read(mwl_conn *c, void *buf, size_t cap, size_t *n, unsigned *wants)
{
    mwl_conn *inner = mwl_conn_impl(c);
    int rc = mwl_conn_read(inner, buf, cap, n);
    if (rc == MWL_AGAIN)
        *wants = mwl_conn_wants(inner);
    return rc;
}

static int peer_writev(mwl_conn *c, const mwl_iov *iov, size_t count, size_t *n, unsigned *wants)
{
    mwl_conn *inner = mwl_conn_impl(c);
    int rc = mwl_conn_writev(inner, iov, count, n);
    if (rc == MWL_AGAIN)
        *wants = mwl_conn_wants(inner);
    return rc;
}

static int peer_shutdown(mwl_conn *c)
{
    return mwl_conn_shutdown(mwl_conn_impl(c));
}

static void peer_close(mwl_conn *c)
{
    mwl_conn_close(mwl_conn_impl(c));
}

static const mwl_conn_ops peer_ops = {.name = "peer-as",
                                      .read = peer_read,
                                      .writev = peer_writev,
                                      .shutdown = peer_shutdown,
                                      .close = peer_close};

/* tc_open, with the connection claiming to come from `peer` (NULL: the
 * socketpair's own "unix", which has no IP address). */
static bool open_from(tclient *c, mwl_server *srv, const char *peer)
{
    if (!peer)
        return tc_open(c, srv);
    memset(c, 0, sizeof *c);
    c->srv = srv;
    c->fd = -1;
    c->in = malloc(TC_BUF);
    c->pdu = malloc(TC_BUF);
    mwl_dimse_assembler_init(&c->as, NULL, NULL);
    mwl_arena_init(&c->arena, NULL);
    int fds[2];
    if (!c->in || !c->pdu || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
        CHECK(0);
        return false;
    }
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    mwl_conn *inner = NULL, *outer = NULL;
    int rc = mwl_net_conn_from_fd(fds[1], true, NULL, &inner, NULL);
    if (rc == MWL_OK) {
        rc = mwl_conn_new(&peer_ops, inner, mwl_conn_fd(inner), true, peer, NULL, &outer);
        if (rc != MWL_OK)
            mwl_conn_close(inner);
    } else {
        close(fds[1]);
    }
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc != MWL_OK) {
        close(fds[0]);
        return false;
    }
    c->fd = fds[0];
    return mwl_server_adopt(srv, outer) == MWL_OK;
}

/* ---- the log ------------------------------------------------------------------ */

static char log_lines[16384];
static size_t log_used;

static void capture(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    int n = snprintf(log_lines + log_used, sizeof log_lines - log_used, "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof log_lines - log_used)
        log_used += (size_t)n;
}

static void log_start(void)
{
    log_used = 0;
    log_lines[0] = '\0';
    mwl_log_set_sink(capture, NULL);
    mwl_log_set_level(MWL_LOG_INFO);
}

static size_t active(mwl_server *srv)
{
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    return st.active;
}

static void settle(mwl_server *srv)
{
    uint64_t until = mwl_deadline_in(3000);
    while (active(srv) > 0 && mwl_now_ms() < until) {
        int rc;
        (void)mwl_server_run_once(srv, 5, &rc);
    }
    CHECK_EQ_INT(active(srv), 0);
}

/* One association attempt from `peer`: AC (then released) or RJ with the
 * given codes; `line` must then appear in the log (NULL: not checked). */
static void attempt(mwl_server *srv, const char *calling, const char *called, const char *peer, bool accept,
                    uint8_t reason, const char *line)
{
    tclient c;
    if (!open_from(&c, srv, peer))
        return;
    int type = tc_associate(&c, calling, called, echo_ctx, 1, NULL);
    if (accept) {
        if (type != MWL_PDU_ASSOCIATE_AC) {
            check_failures++;
            fprintf(stderr, "%s from %s: PDU %d, want an A-ASSOCIATE-AC\n", calling, peer ? peer : "unix",
                    type);
        } else {
            CHECK(tc_send_echo(&c, 1, 1));
            tc_msg m;
            CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
            CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SUCCESS);
            tc_msg_free(&m);
            CHECK(tc_release(&c));
        }
    } else {
        bool ok = type == MWL_PDU_ASSOCIATE_RJ && c.pdu_len == 10 && c.pdu[7] == 1 && c.pdu[8] == 1 &&
                  c.pdu[9] == reason;
        if (!ok) {
            check_failures++;
            fprintf(stderr, "%s from %s: PDU %d, want A-ASSOCIATE-RJ (1,1,%u)\n", calling,
                    peer ? peer : "unix", type, (unsigned)reason);
        }
        CHECK(tc_wait_eof(&c, 3000));
        CHECK(!c.reset);
    }
    tc_close(&c);
    settle(srv);
    if (line && !strstr(log_lines, line)) {
        check_failures++;
        fprintf(stderr, "%s from %s: the log lacks \"%s\":\n%s", calling, peer ? peer : "unix", line,
                log_lines);
    }
}

static mwl_server *server_with(const char *const *rules, const char *titles)
{
    static mwl_server_config cfg;
    tu_config(&cfg);
    mwl_diag diag;
    for (; rules && *rules; rules++)
        CHECK_EQ_INT(mwl_server_config_set(&cfg, "allow", *rules, &diag), MWL_OK);
    if (titles)
        CHECK_EQ_INT(mwl_server_config_set(&cfg, "calling-aet-allow", titles, &diag), MWL_OK);
    return tu_server(&cfg, NULL);
}

static void test_rules(void)
{
    static const char *const rules[] = {"CT1@10.0.0.0/8",    "MR1",     "*@192.168.0.0/16",
                                        "NM1@2001:db8::/32", "NM1@::1", NULL};
    log_start();
    mwl_server *srv = server_with(rules, NULL);
    if (!srv)
        return;
    CHECK(strstr(log_lines, "access: 0 calling-aet-allow titles, 5 allow rules") != NULL);
    /* An allowed AE from an allowed address. */
    attempt(srv, "CT1", "MWL", "10.1.2.3:5000", true, 0, "assoc 10.1.2.3:5000 CT1 -> MWL: accepted");
    attempt(srv, "CT1", "MWL", "::ffff:10.0.0.9", true, 0, NULL);     /* IPv4 via a dual-stack socket */
    attempt(srv, "CT1", "MWL", "192.168.200.1:104", true, 0, NULL);   /* via the "*" rule */
    attempt(srv, "NM1", "MWL", "[2001:db8:5::7]:104", true, 0, NULL); /* IPv6 range */
    attempt(srv, "NM1", "MWL", "[::1]:40000", true, 0, NULL);         /* IPv6 host */
    attempt(srv, "MR1", "MWL", "203.0.113.9:1000", true, 0, NULL);    /* from anywhere */
    attempt(srv, "MR1", "MWL", NULL, true, 0, NULL);                  /* even without an address */
    attempt(srv, "ANYONE", "MWL", "192.168.0.1:1", true, 0, NULL);    /* any AE from there */
    /* A known AE from another address: (1,1,3), saying from where it may come. */
    attempt(srv, "CT1", "MWL", "127.0.0.1:5000", false, 3,
            "rejected (1,1,3): calling AE title 'CT1' from 127.0.0.1: allowed only from 10.0.0.0/8, "
            "192.168.0.0/16");
    attempt(
        srv, "NM1", "MWL", "[2001:db9::7]:104", false, 3,
        "calling AE title 'NM1' from [2001:db9::7]: allowed only from 192.168.0.0/16, 2001:db8::/32, ::1");
    attempt(srv, "NM1", "MWL", "[fe80::1%2]:104", false, 3, "calling AE title 'NM1' from [fe80::1%2]");
    attempt(srv, "CT1", "MWL", NULL, false, 3, "calling AE title 'CT1' from unix: allowed only from");
    /* An AE no rule names: (1,1,3) too. */
    attempt(
        srv, "NOBODY", "MWL", "127.0.0.1:5000", false, 3,
        "rejected (1,1,3): calling AE title 'NOBODY' from 127.0.0.1: no rule for this AE title; any AE only "
        "from 192.168.0.0/16");
    attempt(srv, "ct1", "MWL", "10.1.2.3:5000", false, 3, "calling AE title 'ct1'"); /* titles are exact */
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.associations, 8);
    CHECK_EQ_INT(st.rejected, 6);
    CHECK_EQ_INT(st.rejected_busy, 0);
    mwl_server_free(srv);
    mwl_log_set_sink(NULL, NULL);
}

/* calling-aet-allow keeps working alone, and with rules the allowed set is
 * the union. */
static void test_with_calling_aet_allow(void)
{
    log_start();
    mwl_server *srv = server_with(NULL, "LEGACY, MR 2");
    if (!srv)
        return;
    attempt(srv, "LEGACY", "MWL", "127.0.0.1:1", true, 0, NULL);
    attempt(srv, "MR 2", "MWL", "[2001:db8::1]:1", true, 0, NULL);
    attempt(srv, "OTHER", "MWL", "127.0.0.1:1", false, 3,
            "rejected (1,1,3): calling AE title 'OTHER' from 127.0.0.1: no rule for this AE title");
    mwl_server_free(srv);

    static const char *const rules[] = {"CT1@10.0.0.0/8", NULL};
    log_start();
    srv = server_with(rules, "LEGACY");
    if (!srv)
        return;
    CHECK(strstr(log_lines, "access: 1 calling-aet-allow titles, 1 allow rules") != NULL);
    attempt(srv, "LEGACY", "MWL", "127.0.0.1:1", true, 0, NULL);
    attempt(srv, "LEGACY", "MWL", "10.0.0.1:1", true, 0, NULL);
    attempt(srv, "CT1", "MWL", "10.0.0.1:1", true, 0, NULL);
    attempt(srv, "CT1", "MWL", "127.0.0.1:1", false, 3, "'CT1' from 127.0.0.1: allowed only from 10.0.0.0/8");
    attempt(srv, "OTHER", "MWL", "10.0.0.1:1", false, 3, "'OTHER' from 10.0.0.1: no rule for this AE title");
    mwl_server_free(srv);
    mwl_log_set_sink(NULL, NULL);
}

/* The called AE title is checked first; nothing configured lets anyone in. */
static void test_order_and_open(void)
{
    static mwl_server_config cfg;
    tu_config(&cfg);
    cfg.strict_called_aet = true;
    mwl_diag diag;
    CHECK_EQ_INT(mwl_server_config_set(&cfg, "allow", "CT1@10.0.0.0/8", &diag), MWL_OK);
    log_start();
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    attempt(srv, "NOBODY", "WRONG", "127.0.0.1:1", false, 7,
            "rejected (1,1,7: called AE title not recognized)");
    attempt(srv, "CT1", "MWL", "10.0.0.1:1", true, 0, NULL);
    mwl_server_free(srv);

    log_start();
    srv = server_with(NULL, NULL);
    if (!srv)
        return;
    CHECK(strstr(log_lines, "access: any calling AE title from any address") != NULL);
    attempt(srv, "WHOEVER", "MWL", "198.51.100.1:1", true, 0, NULL);
    attempt(srv, "WHOEVER", "MWL", NULL, true, 0, NULL);
    mwl_server_free(srv);
    mwl_log_set_sink(NULL, NULL);
}

int main(void)
{
    tu_log_init();
    RUN_TEST(test_rules);
    RUN_TEST(test_with_calling_aet_allow);
    RUN_TEST(test_order_and_open);
    return check_report("server_access_test");
}
