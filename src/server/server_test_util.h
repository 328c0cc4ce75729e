/* Helpers for the server tests: a server driven one loop turn at a time
 * from the test's own thread, and a client over a socketpair that speaks
 * raw PDUs (built with the ul and dimse encoders), so a test sees exactly
 * the bytes the server sends. Every wait is bounded. */
#ifndef MWL_SERVER_TEST_UTIL_H
#define MWL_SERVER_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dicom/codec.h"
#include "dicom/tag.h"
#include "dimse/dimse.h"
#include "server/server.h"
#include "ul/pdu.h"

#define TC_BUF (4u * 1024u * 1024u)

static inline void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void tu_log_sink(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    fprintf(stderr, "  [%s] %s\n", mwl_log_level_name(level), msg);
}

/* MWL_TEST_LOG=debug (or another level) shows the server's log. */
static inline void tu_log_init(void)
{
    const char *level = getenv("MWL_TEST_LOG");
    mwl_log_level l;
    if (level && mwl_log_level_parse(level, &l) == MWL_OK) {
        mwl_log_set_sink(tu_log_sink, NULL);
        mwl_log_set_level(l);
    }
}

/* A config for tests: dynamic port on 127.0.0.1, short timeouts. */
static inline void tu_config(mwl_server_config *cfg)
{
    mwl_server_config_init(cfg);
    cfg->port = 0;
    snprintf(cfg->bind, sizeof cfg->bind, "127.0.0.1");
    cfg->acse_timeout_ms = 2000;
    cfg->idle_timeout_ms = 5000;
    cfg->write_timeout_ms = 5000;
    cfg->shutdown_grace_ms = 500;
    cfg->workers = 2;
    /* Every test client is the same socketpair "address". */
    cfg->max_peer_connections = 2000;
}

/* A server with Verification, and MWL FIND over `provider` when not NULL. */
static inline mwl_server *tu_server(const mwl_server_config *cfg, const mwl_find_provider *provider)
{
    mwl_server *srv = NULL;
    mwl_diag diag;
    mwl_service find = {&mwl_scp_find, MWL_UID_ModalityWorklistInformationModelFind, provider};
    mwl_server_setup setup = {&find, provider ? 1 : 0, NULL, 0, NULL};
    int rc = mwl_server_new(cfg, &setup, &srv, &diag);
    if (rc != MWL_OK)
        fprintf(stderr, "mwl_server_new: %s: %s\n", mwl_status_str(rc), diag.msg);
    CHECK_EQ_INT(rc, MWL_OK);
    return srv;
}

/* ---- client over a socketpair ------------------------------------------- */

typedef struct tclient {
    mwl_server *srv; /* pumped while waiting */
    int fd;
    uint8_t *in; /* received, not yet consumed */
    size_t in_len;
    bool eof;
    bool reset;
    uint32_t peer_max_pdu; /* from the A-ASSOCIATE-AC */
    uint8_t pdu_type;
    uint8_t *pdu; /* last PDU taken, header included */
    size_t pdu_len;
    mwl_dimse_assembler as;
    mwl_arena arena;
} tclient;

static inline bool tc_open(tclient *c, mwl_server *srv)
{
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
    mwl_conn *conn = NULL;
    int rc = mwl_net_conn_from_fd(fds[1], true, NULL, &conn, NULL);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc != MWL_OK) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    c->fd = fds[0];
    rc = mwl_server_adopt(srv, conn);
    return rc == MWL_OK;
}

static inline void tc_close(tclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->pdu);
    c->in = c->pdu = NULL;
    mwl_dimse_assembler_clear(&c->as);
    mwl_arena_clear(&c->arena);
}

/* One server turn (at most `ms`), then whatever the client can read. */
static inline void tc_turn(tclient *c, int ms)
{
    if (c->srv) {
        int rc = MWL_OK;
        (void)mwl_server_run_once(c->srv, ms, &rc);
        CHECK_EQ_INT(rc, MWL_OK);
    } else {
        tu_sleep_ms(ms);
    }
    for (int i = 0; i < 64 && c->fd >= 0 && !c->eof && c->in_len < TC_BUF; i++) {
        ssize_t n = recv(c->fd, c->in + c->in_len, TC_BUF - c->in_len, MSG_DONTWAIT);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            c->eof = true;
        else if (errno == ECONNRESET)
            c->eof = c->reset = true;
        break;
    }
}

/* Runs server turns for `ms` without reading the client side. */
static inline void tu_pump(mwl_server *srv, int ms)
{
    uint64_t until = mwl_deadline_in(ms);
    while (mwl_now_ms() < until) {
        int rc = MWL_OK;
        (void)mwl_server_run_once(srv, 5, &rc);
    }
}

/* Sends everything, pumping the server while the socket is full. */
static inline bool tc_send(tclient *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t until = mwl_deadline_in(5000);
    while (len > 0 && mwl_now_ms() < until) {
        ssize_t n = send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return false;
        tc_turn(c, 2);
    }
    return len == 0;
}

/* Waits (pumping) until a whole PDU is buffered; takes it into c->pdu.
 * Returns 1, 0 on EOF before one, -1 on timeout. */
static inline int tc_next_pdu(tclient *c, int timeout_ms)
{
    uint64_t until = mwl_deadline_in(timeout_ms);
    for (;;) {
        if (c->in_len >= 6) {
            uint32_t len = mwl_load_u32be(c->in + 2);
            size_t total = 6 + (size_t)len;
            if (total <= c->in_len) {
                memcpy(c->pdu, c->in, total);
                c->pdu_len = total;
                c->pdu_type = c->in[0];
                memmove(c->in, c->in + total, c->in_len - total);
                c->in_len -= total;
                return 1;
            }
        }
        if (c->eof)
            return 0;
        if (mwl_now_ms() >= until)
            return -1;
        tc_turn(c, 5);
    }
}

/* Waits for the server to close: returns true on EOF (or reset) within the
 * time; any PDU bytes that arrive first are kept in c->in. */
static inline bool tc_wait_eof(tclient *c, int timeout_ms)
{
    uint64_t until = mwl_deadline_in(timeout_ms);
    while (!c->eof && mwl_now_ms() < until)
        tc_turn(c, 5);
    return c->eof;
}

/* ---- association --------------------------------------------------------- */

typedef struct tc_context {
    uint8_t id;
    const char *abstract_syntax;
    const char *ts[4];
    size_t ts_count;
} tc_context;

static inline bool tc_send_rq(tclient *c, const char *calling, const char *called, const tc_context *ctx,
                              size_t n, uint32_t max_pdu)
{
    mwl_pctx_rq pcs[8];
    for (size_t i = 0; i < n; i++) {
        pcs[i].id = ctx[i].id;
        pcs[i].abstract_syntax = ctx[i].abstract_syntax;
        pcs[i].transfer_syntaxes = (const char **)(uintptr_t)ctx[i].ts;
        pcs[i].transfer_syntax_count = ctx[i].ts_count;
    }
    mwl_assoc_rq rq;
    memset(&rq, 0, sizeof rq);
    rq.protocol_version = 1;
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(&rq, called, calling), MWL_OK);
    rq.application_context = MWL_APPLICATION_CONTEXT_NAME;
    rq.contexts = pcs;
    rq.context_count = n;
    rq.user_info.max_length = max_pdu;
    rq.user_info.implementation_class_uid = "1.2.3.4";
    rq.user_info.implementation_version_name = "";
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    int rc = mwl_pdu_encode_associate_rq(&rq, &w);
    CHECK_EQ_INT(rc, MWL_OK);
    bool ok = rc == MWL_OK && tc_send(c, w.data, w.len);
    mwl_wbuf_clear(&w);
    return ok;
}

/* Decodes c->pdu (an AC) into *ac, in c->arena. */
static inline bool tc_decode_pdu(tclient *c, mwl_pdu *pdu)
{
    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    size_t used = 0;
    int rc = mwl_pdu_decode(c->pdu, c->pdu_len, &c->arena, &lim, pdu, &used, NULL);
    CHECK_EQ_INT(rc, MWL_OK);
    return rc == MWL_OK;
}

/* The usual two contexts: 1 Verification, 3 MWL FIND, both offering the
 * four transfer syntaxes in the given order (NULL = ExplicitLE first). */
static const tc_context tc_default_contexts[] = {
    {1, MWL_UID_Verification, {MWL_UID_ImplicitVRLittleEndian, MWL_UID_ExplicitVRLittleEndian}, 2},
    {3,
     MWL_UID_ModalityWorklistInformationModelFind,
     {MWL_UID_ImplicitVRLittleEndian, MWL_UID_ExplicitVRLittleEndian},
     2},
};

/* Associates; returns the AC's PDU type (2 AC, 3 RJ, 7 abort) or -1. */
static inline int tc_associate(tclient *c, const char *calling, const char *called, const tc_context *ctx,
                               size_t n, mwl_pdu *out)
{
    if (!tc_send_rq(c, calling, called, ctx, n, 16384))
        return -1;
    if (tc_next_pdu(c, 3000) != 1)
        return -1;
    mwl_pdu pdu;
    if (!tc_decode_pdu(c, &pdu))
        return -1;
    if (pdu.type == MWL_PDU_ASSOCIATE_AC)
        c->peer_max_pdu = pdu.u.associate_ac.user_info.max_length;
    if (out)
        *out = pdu;
    return (int)pdu.type;
}

static inline bool tc_associate_default(tclient *c)
{
    return tc_associate(c, "TESTSCU", "MWL", tc_default_contexts, 2, NULL) == MWL_PDU_ASSOCIATE_AC;
}

/* ---- DIMSE ---------------------------------------------------------------- */

static inline bool tc_send_message(tclient *c, uint8_t ctx, const mwl_wbuf *cmd, const mwl_wbuf *ds)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    int rc =
        mwl_dimse_fragment(ctx, cmd->data, cmd->len, ds ? (ds->data ? ds->data : (const uint8_t *)"") : NULL,
                           ds ? ds->len : 0, c->peer_max_pdu, &w);
    CHECK_EQ_INT(rc, MWL_OK);
    bool ok = rc == MWL_OK && tc_send(c, w.data, w.len);
    mwl_wbuf_clear(&w);
    return ok;
}

static inline bool tc_send_echo(tclient *c, uint8_t ctx, uint16_t id)
{
    mwl_wbuf cmd;
    mwl_wbuf_init(&cmd, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(id, &cmd), MWL_OK);
    bool ok = tc_send_message(c, ctx, &cmd, NULL);
    mwl_wbuf_clear(&cmd);
    return ok;
}

/* A C-FIND-RQ with an identifier holding PatientID (and whatever `ds`
 * already has), encoded in `ts`. */
static inline bool tc_send_find(tclient *c, uint8_t ctx, uint16_t id, mwl_ts ts, const char *patient_id)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &ds), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_LO, patient_id), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, ""), MWL_OK);
    mwl_wbuf cmd, data;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&data, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(id, MWL_UID_ModalityWorklistInformationModelFind,
                                          MWL_DIMSE_PRIORITY_MEDIUM, &cmd),
                 MWL_OK);
    CHECK_EQ_INT(mwl_ds_encode(ds, ts, &data), MWL_OK);
    if (data.len & 1u) /* a deflate stream is padded to even length */
        mwl_wbuf_put_u8(&data, 0);
    bool ok = tc_send_message(c, ctx, &cmd, &data);
    mwl_wbuf_clear(&cmd);
    mwl_wbuf_clear(&data);
    mwl_arena_clear(&a);
    return ok;
}

static inline bool tc_send_cancel(tclient *c, uint8_t ctx, uint16_t id)
{
    mwl_wbuf cmd;
    mwl_wbuf_init(&cmd, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_cancel_rq(id, &cmd), MWL_OK);
    bool ok = tc_send_message(c, ctx, &cmd, NULL);
    mwl_wbuf_clear(&cmd);
    return ok;
}

/* One received DIMSE message (copied out of the assembler). */
typedef struct tc_msg {
    uint8_t context_id;
    uint16_t command_field, status, responded_to;
    bool has_status;
    char affected[65];
    char comment[80];
    size_t offending_count;
    uint32_t offending[4];
    uint8_t *dataset; /* malloc'ed, or NULL */
    size_t dataset_length;
    bool has_dataset;
} tc_msg;

static inline void tc_msg_free(tc_msg *m)
{
    free(m->dataset);
    m->dataset = NULL;
}

/* Reads PDUs until a whole DIMSE message arrives. Returns 1, 0 when a
 * non-P-DATA PDU came instead (it stays in c->pdu), -1 on timeout/EOF. */
static inline int tc_read_message(tclient *c, tc_msg *m, int timeout_ms)
{
    memset(m, 0, sizeof *m);
    uint64_t until = mwl_deadline_in(timeout_ms);
    for (;;) {
        int left = (int)(until > mwl_now_ms() ? until - mwl_now_ms() : 0);
        int r = tc_next_pdu(c, left);
        if (r != 1)
            return -1;
        if (c->pdu_type != MWL_PDU_P_DATA_TF)
            return 0;
        CHECK(c->pdu_len - 6 <= 16384); /* our advertised Maximum Length (tc_associate) */
        mwl_pdu pdu;
        mwl_arena_clear(&c->arena);
        if (!tc_decode_pdu(c, &pdu))
            return -1;
        for (size_t i = 0; i < pdu.u.p_data.pdv_count; i++) {
            mwl_dimse_msg msg;
            int rc = mwl_dimse_assembler_feed(&c->as, &pdu.u.p_data.pdvs[i], &msg, NULL);
            if (rc == MWL_AGAIN)
                continue;
            CHECK_EQ_INT(rc, MWL_OK);
            if (rc != MWL_OK)
                return -1;
            CHECK(i + 1 == pdu.u.p_data.pdv_count); /* one message at a time */
            m->context_id = msg.context_id;
            m->command_field = msg.command.command_field;
            m->has_status = (msg.command.present & MWL_DIMSE_HAS_STATUS) != 0;
            m->status = msg.command.status;
            m->responded_to = msg.command.message_id_being_responded_to;
            if (msg.command.present & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID)
                snprintf(m->affected, sizeof m->affected, "%s", msg.command.affected_sop_class_uid);
            if (msg.command.present & MWL_DIMSE_HAS_ERROR_COMMENT)
                snprintf(m->comment, sizeof m->comment, "%s", msg.command.error_comment);
            m->offending_count = msg.command.offending_element_count;
            for (size_t k = 0; k < m->offending_count && k < 4; k++)
                m->offending[k] = msg.command.offending_elements[k];
            m->has_dataset = msg.has_dataset;
            if (msg.dataset_length) {
                m->dataset = malloc(msg.dataset_length);
                memcpy(m->dataset, msg.dataset, msg.dataset_length);
                m->dataset_length = msg.dataset_length;
            }
            return 1;
        }
    }
}

/* Sends A-RELEASE-RQ, expects A-RELEASE-RP and then the server's close. */
static inline bool tc_release(tclient *c)
{
    static const uint8_t rq[] = {0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    if (!tc_send(c, rq, sizeof rq))
        return false;
    tc_msg m;
    for (int i = 0; i < 100000; i++) { /* skip responses still in flight */
        int r = tc_read_message(c, &m, 3000);
        tc_msg_free(&m);
        if (r != 1)
            break;
    }
    CHECK_EQ_INT(c->pdu_type, MWL_PDU_RELEASE_RP);
    if (c->pdu_type != MWL_PDU_RELEASE_RP)
        return false;
    close(c->fd); /* the requestor closes first (PS3.8 §9.1.4) */
    c->fd = -1;
    return true;
}

#endif
