/* The session glue without TCP: a server driven turn by turn from this
 * thread, peers on socketpairs sending raw PDUs. Covers negotiation
 * (titles, limits, transfer syntax preference), C-ECHO, refusals of other
 * DIMSE requests, protocol errors, every timeout, back-pressure with a
 * peer that does not read, and graceful shutdown. */
#include <signal.h>

#include "server_test_util.h"

static const tc_context verification_only[] = {
    {1, MWL_UID_Verification, {MWL_UID_ImplicitVRLittleEndian, MWL_UID_ExplicitVRLittleEndian}, 2},
};

static size_t active(mwl_server *srv)
{
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    return st.active;
}

/* Pumps until no session is left (closed and freed). */
static bool settle(mwl_server *srv, int ms)
{
    uint64_t until = mwl_deadline_in(ms);
    while (active(srv) > 0 && mwl_now_ms() < until) {
        int rc;
        (void)mwl_server_run_once(srv, 5, &rc);
    }
    return active(srv) == 0;
}

/* A provider with no matches, so that MWL FIND contexts are accepted. */
static int empty_begin(void *user, mwl_find_request *req, void **state, mwl_find_status *early)
{
    (void)user;
    (void)req;
    (void)early;
    *state = NULL;
    return MWL_OK;
}
static int empty_next(void *state, const mwl_find_request *req, mwl_arena *arena, const mwl_ds **match,
                      uint16_t *status, mwl_find_status *st)
{
    (void)state;
    (void)req;
    (void)arena;
    (void)status;
    (void)st;
    *match = NULL;
    return MWL_OK;
}
static void empty_end(void *state)
{
    (void)state;
}
static const mwl_find_provider empty_provider = {empty_begin, empty_next, NULL, empty_end, NULL};

static void test_echo_roundtrip(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    mwl_pdu ac;
    memset(&ac, 0, sizeof ac);
    CHECK_EQ_INT(tc_associate(&c, "TESTSCU", "ANY-SCP", verification_only, 1, &ac), MWL_PDU_ASSOCIATE_AC);
    if (ac.type == MWL_PDU_ASSOCIATE_AC) {
        const mwl_assoc_ac *a = &ac.u.associate_ac;
        CHECK_EQ_INT(a->context_count, 1);
        CHECK_EQ_INT(a->contexts[0].result, MWL_PCTX_ACCEPTANCE);
        /* Our preference, not the proposal's order. */
        CHECK_EQ_STR(a->contexts[0].transfer_syntax, MWL_UID_ExplicitVRLittleEndian);
        CHECK_EQ_INT(a->user_info.max_length, cfg.max_pdu);
        CHECK_EQ_STR(a->user_info.implementation_class_uid, MWL_IMPLEMENTATION_CLASS_UID);
        CHECK_EQ_STR(a->application_context, MWL_APPLICATION_CONTEXT_NAME);
    }
    for (uint16_t id = 7; id < 10; id++) {
        CHECK(tc_send_echo(&c, 1, id));
        tc_msg m;
        CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
        CHECK_EQ_INT(m.command_field, MWL_DIMSE_C_ECHO_RSP);
        CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SUCCESS);
        CHECK_EQ_INT(m.responded_to, id);
        CHECK_EQ_STR(m.affected, MWL_UID_Verification);
        CHECK(!m.has_dataset);
        tc_msg_free(&m);
    }
    CHECK(tc_release(&c));
    CHECK(settle(srv, 2000));
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.associations, 1);
    CHECK_EQ_INT(st.echoes, 3);
    CHECK_EQ_INT(st.aborted, 0);
    tc_close(&c);
    mwl_server_free(srv);
}

/* A-ASSOCIATE-RJ bytes 7..9 are result, source, reason (PS3.8 Table 9-21). */
static void expect_rj(tclient *c, const char *calling, const char *called, uint8_t result, uint8_t source,
                      uint8_t reason)
{
    CHECK_EQ_INT(tc_associate(c, calling, called, verification_only, 1, NULL), MWL_PDU_ASSOCIATE_RJ);
    CHECK_EQ_INT(c->pdu_len, 10);
    CHECK_EQ_INT(c->pdu[7], result);
    CHECK_EQ_INT(c->pdu[8], source);
    CHECK_EQ_INT(c->pdu[9], reason);
    /* Then an orderly close (FIN after the RJ), not a reset. */
    CHECK(tc_wait_eof(c, 3000));
    CHECK(!c->reset);
}

static void test_title_checks(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.strict_called_aet = true;
    snprintf(cfg.ae_title, sizeof cfg.ae_title, "WORKLIST");
    snprintf(cfg.calling_aet_allow.aet[0], sizeof cfg.calling_aet_allow.aet[0], "CT1");
    snprintf(cfg.calling_aet_allow.aet[1], sizeof cfg.calling_aet_allow.aet[1], "MR 2");
    cfg.calling_aet_allow.count = 2;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    expect_rj(&c, "CT1", "OTHER", 1, 1, 7); /* called title checked first */
    tc_close(&c);
    CHECK(tc_open(&c, srv));
    expect_rj(&c, "UNKNOWN", "WORKLIST", 1, 1, 3);
    tc_close(&c);
    CHECK(tc_open(&c, srv));
    CHECK_EQ_INT(tc_associate(&c, "MR 2", "WORKLIST", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_release(&c));
    tc_close(&c);
    CHECK(settle(srv, 3000));
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.rejected, 2);
    CHECK_EQ_INT(st.rejected_busy, 0);
    mwl_server_free(srv);
}

static void test_max_associations(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.max_associations = 2;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient a, b, c;
    CHECK(tc_open(&a, srv));
    CHECK(tc_open(&b, srv));
    CHECK(tc_associate_default(&a));
    CHECK_EQ_INT(tc_associate(&b, "B", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_open(&c, srv));
    expect_rj(&c, "C", "MWL", 2, 3, 2); /* transient, presentation, local limit */
    tc_close(&c);
    uint64_t until = mwl_deadline_in(2000);
    while (active(srv) > 2 && mwl_now_ms() < until)
        tu_pump(srv, 5);
    CHECK_EQ_INT(active(srv), 2);

    /* Connections without an association yet do not count against
     * max-associations: each still gets its answer when its RQ comes. */
    tclient idle[4];
    for (int i = 0; i < 4; i++)
        CHECK(tc_open(&idle[i], srv));
    CHECK_EQ_INT(tc_associate(&idle[3], "D", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_RJ);
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.dropped, 0);
    CHECK_EQ_INT(st.rejected_busy, 2);
    for (int i = 0; i < 4; i++)
        tc_close(&idle[i]);

    /* A slot frees up once an association ends. */
    CHECK(tc_release(&b));
    tc_close(&b);
    until = mwl_deadline_in(2000);
    while (active(srv) > 1 && mwl_now_ms() < until)
        tu_pump(srv, 5);
    CHECK_EQ_INT(active(srv), 1);
    CHECK(tc_open(&c, srv));
    CHECK_EQ_INT(tc_associate(&c, "C", "MWL", verification_only, 1, NULL), MWL_PDU_ASSOCIATE_AC);
    CHECK(tc_release(&c));
    tc_close(&c);
    CHECK(tc_release(&a));
    tc_close(&a);
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

static void test_transfer_syntax_choice(void)
{
    static const struct {
        const char *ts[3];
        size_t n;
        const char *abstract_syntax;
        uint8_t result;
        const char *chosen;
    } cases[] = {
        {{MWL_UID_ImplicitVRLittleEndian, MWL_UID_ExplicitVRLittleEndian},
         2,
         MWL_UID_Verification,
         0,
         MWL_UID_ExplicitVRLittleEndian},
        {{MWL_UID_ImplicitVRLittleEndian}, 1, MWL_UID_Verification, 0, MWL_UID_ImplicitVRLittleEndian},
        {{MWL_UID_ExplicitVRBigEndian, MWL_UID_ImplicitVRLittleEndian},
         2,
         MWL_UID_Verification,
         0,
         MWL_UID_ImplicitVRLittleEndian},
        {{MWL_UID_ExplicitVRBigEndian}, 1, MWL_UID_Verification, 0, MWL_UID_ExplicitVRBigEndian},
        {{MWL_UID_DeflatedExplicitVRLittleEndian, MWL_UID_ExplicitVRBigEndian},
         2,
         MWL_UID_Verification,
         0,
         MWL_UID_DeflatedExplicitVRLittleEndian},
        {{"1.2.840.10008.1.2.4.50"}, 1, MWL_UID_Verification, MWL_PCTX_TRANSFER_SYNTAXES_NOT_SUPPORTED, NULL},
        {{MWL_UID_ExplicitVRLittleEndian},
         1,
         "1.2.840.10008.5.1.4.1.1.2",
         MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED,
         NULL},
        /* No provider: MWL FIND is not offered. */
        {{MWL_UID_ExplicitVRLittleEndian},
         1,
         MWL_UID_ModalityWorklistInformationModelFind,
         MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED,
         NULL},
    };
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tc_context ctx = {1, cases[i].abstract_syntax, {NULL}, cases[i].n};
        for (size_t j = 0; j < cases[i].n; j++)
            ctx.ts[j] = cases[i].ts[j];
        tclient c;
        CHECK(tc_open(&c, srv));
        mwl_pdu ac;
        memset(&ac, 0, sizeof ac);
        CHECK_EQ_INT(tc_associate(&c, "TS", "MWL", &ctx, 1, &ac), MWL_PDU_ASSOCIATE_AC);
        if (ac.type == MWL_PDU_ASSOCIATE_AC && ac.u.associate_ac.context_count == 1) {
            CHECK_EQ_INT(ac.u.associate_ac.contexts[0].result, cases[i].result);
            if (cases[i].chosen)
                CHECK_EQ_STR(ac.u.associate_ac.contexts[0].transfer_syntax, cases[i].chosen);
        }
        static const uint8_t abort_pdu[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0};
        CHECK(tc_send(&c, abort_pdu, sizeof abort_pdu));
        tc_close(&c);
    }
    CHECK(settle(srv, 3000));
    mwl_server_free(srv);
}

static void send_command(tclient *c, uint8_t ctx, const mwl_dimse_command *cmd)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_command(cmd, &w), MWL_OK);
    CHECK(tc_send_message(c, ctx, &w, NULL));
    mwl_wbuf_clear(&w);
}

static void test_dimse_refusals(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    mwl_server *srv = tu_server(&cfg, &empty_provider);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    CHECK(tc_associate_default(&c));
    tc_msg m;

    /* C-ECHO on the MWL FIND context: refused 0122. */
    CHECK(tc_send_echo(&c, 3, 1));
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
    CHECK_EQ_INT(m.command_field, MWL_DIMSE_C_ECHO_RSP);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED);
    tc_msg_free(&m);

    /* C-FIND on the Verification context: 0122, no identifier. */
    CHECK(tc_send_find(&c, 1, 2, MWL_TS_EXPLICIT_LE, "X"));
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
    CHECK_EQ_INT(m.command_field, MWL_DIMSE_C_FIND_RSP);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED);
    CHECK_EQ_INT(m.responded_to, 2);
    CHECK_EQ_STR(m.affected, MWL_UID_ModalityWorklistInformationModelFind);
    CHECK(!m.has_dataset);
    CHECK(m.comment[0] != '\0');
    tc_msg_free(&m);

    /* C-FIND without an identifier: A900. */
    mwl_dimse_command cmd;
    mwl_dimse_command_init(&cmd);
    cmd.command_field = MWL_DIMSE_C_FIND_RQ;
    cmd.present = MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID | MWL_DIMSE_HAS_MESSAGE_ID | MWL_DIMSE_HAS_PRIORITY;
    cmd.affected_sop_class_uid = MWL_UID_ModalityWorklistInformationModelFind;
    cmd.message_id = 3;
    send_command(&c, 3, &cmd);
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH);
    tc_msg_free(&m);

    /* C-STORE-RQ: not performed here, 0211 in a C-STORE-RSP. */
    mwl_dimse_command_init(&cmd);
    cmd.command_field = MWL_DIMSE_C_STORE_RQ;
    cmd.present = MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID | MWL_DIMSE_HAS_MESSAGE_ID | MWL_DIMSE_HAS_PRIORITY |
                  MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID;
    cmd.affected_sop_class_uid = "1.2.840.10008.5.1.4.1.1.7";
    cmd.affected_sop_instance_uid = "1.2.3.4.5";
    cmd.message_id = 4;
    send_command(&c, 1, &cmd);
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
    CHECK_EQ_INT(m.command_field, MWL_DIMSE_C_STORE_RSP);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_UNRECOGNIZED_OPERATION);
    CHECK_EQ_INT(m.responded_to, 4);
    tc_msg_free(&m);

    /* The association still works. */
    CHECK(tc_send_echo(&c, 1, 5));
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 1);
    CHECK_EQ_INT(m.status, MWL_DIMSE_STATUS_SUCCESS);
    tc_msg_free(&m);

    /* A command field outside PS3.7 Table E.1-1: A-ABORT, then close. */
    mwl_dimse_command_init(&cmd);
    cmd.command_field = 0x0040;
    cmd.present = MWL_DIMSE_HAS_MESSAGE_ID;
    cmd.message_id = 6;
    send_command(&c, 1, &cmd);
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 0);
    CHECK_EQ_INT(c.pdu_type, MWL_PDU_ABORT);
    CHECK(tc_wait_eof(&c, 3000));
    tc_close(&c);

    /* A response from the peer (we sent no request): A-ABORT. */
    CHECK(tc_open(&c, srv));
    CHECK(tc_associate_default(&c));
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rsp(1, MWL_UID_Verification, 0, &w), MWL_OK);
    CHECK(tc_send_message(&c, 1, &w, NULL));
    mwl_wbuf_clear(&w);
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 0);
    CHECK_EQ_INT(c.pdu_type, MWL_PDU_ABORT);
    tc_close(&c);

    /* A data fragment before any command fragment (PS3.8 Annex E). */
    CHECK(tc_open(&c, srv));
    CHECK(tc_associate_default(&c));
    static const uint8_t data_first[] = {0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 1, 0x02, 0xAA, 0xBB};
    CHECK(tc_send(&c, data_first, sizeof data_first));
    CHECK_EQ_INT(tc_read_message(&c, &m, 2000), 0);
    CHECK_EQ_INT(c.pdu_type, MWL_PDU_ABORT);
    tc_close(&c);

    CHECK(settle(srv, 3000));
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.aborted, 3);
    mwl_server_free(srv);
}

/* Each silent or stalled peer is closed (after an A-ABORT where an
 * association exists) within its timeout, and frees everything. */
static void test_timeouts(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.acse_timeout_ms = 300;
    cfg.idle_timeout_ms = 400;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    enum { NOTHING, HALF_HEADER, HALF_RQ, IDLE, HALF_PDATA, PDATA_FIRST, NO_CLOSE_AFTER_RELEASE, CASES };
    static const char *const names[] = {
        "nothing",          "half header",           "half RQ", "idle", "half P-DATA",
        "P-DATA before RQ", "no close after release"};
    for (int k = 0; k < CASES; k++) {
        tclient c;
        CHECK(tc_open(&c, srv));
        int timeout = 300;
        uint8_t expect_pdu = 0;
        switch (k) {
        case NOTHING: break;
        case HALF_HEADER: CHECK(tc_send(&c, "\x01\x00\x00", 3)); break;
        case HALF_RQ: CHECK(tc_send(&c, "\x01\x00\x00\x00\x00\x80\x00\x01", 8)); break;
        case IDLE:
            CHECK(tc_associate_default(&c));
            timeout = 400;
            expect_pdu = MWL_PDU_ABORT;
            break;
        case HALF_PDATA:
            CHECK(tc_associate_default(&c));
            CHECK(tc_send(&c, "\x04\x00\x00\x00\x00\x50\x00\x00", 8));
            timeout = 400;
            expect_pdu = MWL_PDU_ABORT;
            break;
        case PDATA_FIRST:
            CHECK(tc_send(&c, "\x04\x00\x00\x00\x00\x06\x00\x00\x00\x02\x01\x03", 12));
            timeout = 0;
            expect_pdu = MWL_PDU_ABORT;
            break;
        case NO_CLOSE_AFTER_RELEASE:
            /* RP, then our FIN at once (shutdown); the server closes its
             * end when ARTIM (300 ms) expires, since we never close. */
            CHECK(tc_associate_default(&c));
            CHECK(tc_send(&c, "\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00", 10));
            expect_pdu = MWL_PDU_RELEASE_RP;
            timeout = 0;
            break;
        default: break;
        }
        uint64_t t0 = mwl_now_ms();
        if (expect_pdu) {
            CHECK_EQ_INT(tc_next_pdu(&c, 3000), 1);
            if (c.pdu_type != expect_pdu)
                fprintf(stderr, "  case %s: PDU %u\n", names[k], (unsigned)c.pdu_type);
            CHECK_EQ_INT(c.pdu_type, expect_pdu);
        }
        /* Closed, and not before its time; how late on a loaded machine is
         * not the point (the wait itself is bounded). */
        bool closed = tc_wait_eof(&c, 10000);
        uint64_t took = mwl_now_ms() - t0;
        if (!closed || took + 50 < (uint64_t)timeout) {
            check_failures++;
            fprintf(stderr, "timeout case %s: closed %d after %llu ms (timeout %d)\n", names[k], closed,
                    (unsigned long long)took, timeout);
        }
        if (k == NO_CLOSE_AFTER_RELEASE) {
            CHECK(settle(srv, 10000));
            took = mwl_now_ms() - t0;
            if (took < 250) {
                check_failures++;
                fprintf(stderr, "linger after release: session freed after %llu ms\n",
                        (unsigned long long)took);
            }
        }
        tc_close(&c);
    }
    CHECK(settle(srv, 3000));
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK_EQ_INT(st.active, 0);
    CHECK_EQ_INT(st.associations, 3);
    mwl_server_free(srv);
}

/* A peer that sends requests but never reads the responses: the server
 * stops reading it at the high watermark and, after write-timeout with no
 * progress, closes it. */
static void test_peer_not_reading(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.write_timeout_ms = 400;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient c;
    CHECK(tc_open(&c, srv));
    CHECK(tc_associate_default(&c));
    /* One C-ECHO-RQ in one P-DATA-TF, repeated. */
    mwl_wbuf cmd, pdu;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&pdu, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(1, &cmd), MWL_OK);
    CHECK_EQ_INT(mwl_dimse_fragment(1, cmd.data, cmd.len, NULL, 0, c.peer_max_pdu, &pdu), MWL_OK);
    size_t sent = 0;
    bool blocked = false;
    uint64_t until = mwl_deadline_in(5000);
    while (mwl_now_ms() < until && sent < 20000) {
        ssize_t n = send(c.fd, pdu.data, pdu.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == (ssize_t)pdu.len) {
            sent++;
            continue;
        }
        if (n > 0) { /* finish a partial PDU so framing stays intact */
            size_t off = (size_t)n;
            while (off < pdu.len && mwl_now_ms() < until) {
                tu_pump(srv, 2);
                ssize_t m = send(c.fd, pdu.data + off, pdu.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (m > 0)
                    off += (size_t)m;
                else if (m < 0 && errno != EAGAIN)
                    break;
            }
            sent++;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            break; /* closed by the server */
        blocked = true;
        tu_pump(srv, 10);
        if (active(srv) == 0)
            break;
    }
    CHECK(blocked); /* the server stopped reading us */
    CHECK(settle(srv, 3000));
    mwl_server_stats st;
    mwl_server_get_stats(srv, &st);
    CHECK(st.echoes > 1000); /* it did answer until the peer stalled */
    CHECK(st.echoes < sent);
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&pdu);
    tc_close(&c);
    mwl_server_free(srv);
}

static void test_graceful_shutdown(void)
{
    mwl_server_config cfg;
    tu_config(&cfg);
    cfg.shutdown_grace_ms = 400;
    mwl_server *srv = tu_server(&cfg, NULL);
    if (!srv)
        return;
    tclient a, b;
    CHECK(tc_open(&a, srv));
    CHECK(tc_open(&b, srv));
    CHECK(tc_associate_default(&a));
    CHECK(tc_associate_default(&b));
    uint64_t t0 = mwl_now_ms();
    mwl_server_shutdown(srv);
    mwl_server_shutdown(srv); /* idempotent */
    tu_pump(srv, 20);
    /* No new connections. */
    tclient late;
    CHECK(!tc_open(&late, srv));
    tc_close(&late);
    /* An in-flight association keeps working during the grace period. */
    CHECK(tc_send_echo(&a, 1, 1));
    tc_msg m;
    CHECK_EQ_INT(tc_read_message(&a, &m, 2000), 1);
    CHECK_EQ_INT(m.status, 0);
    tc_msg_free(&m);
    CHECK(tc_release(&a));
    /* b stays idle: it is aborted when the grace period ends. */
    CHECK_EQ_INT(tc_next_pdu(&b, 10000), 1);
    CHECK_EQ_INT(b.pdu_type, MWL_PDU_ABORT);
    uint64_t aborted_at = mwl_now_ms() - t0;
    CHECK(aborted_at >= 350); /* not before the grace period ends */
    tc_close(&b);
    bool running = true;
    uint64_t until = mwl_deadline_in(10000);
    while (running && mwl_now_ms() < until)
        running = mwl_server_run_once(srv, 10, NULL);
    CHECK(!running);
    tc_close(&a);
    mwl_server_free(srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    tu_log_init();
    RUN_TEST(test_echo_roundtrip);
    RUN_TEST(test_title_checks);
    RUN_TEST(test_max_associations);
    RUN_TEST(test_transfer_syntax_choice);
    RUN_TEST(test_dimse_refusals);
    RUN_TEST(test_timeouts);
    RUN_TEST(test_peer_not_reading);
    RUN_TEST(test_graceful_shutdown);
    return check_report("server_session_test");
}
