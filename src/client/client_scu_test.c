/* The SCU driver against scripted peers: each test wires the client to one
 * end of a socketpair and runs a peer thread on the other that speaks raw
 * PDUs built with the ul/pdu.h and dimse.h encoders, so every path the
 * client takes (rejection, abort mid-find, a response to the wrong Message
 * ID, a small peer maximum PDU, cancel, timeouts, negotiated transfer
 * syntaxes, out-of-memory) is driven byte by byte, without DCMTK.
 *
 * The peer thread never calls CHECK (the harness counters are not
 * thread-safe): it records what it saw and its first problem in `peer`,
 * and the main thread checks them after joining it. */
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "client/client.h"
#include "ul/ul.h"

#define TS_IMPLICIT "1.2.840.10008.1.2"
#define TS_EXPLICIT "1.2.840.10008.1.2.1"
#define TS_BIG "1.2.840.10008.1.2.2"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"

enum { PEER_READ_MS = 5000, MAX_SEEN = 16 };

/* ======================================================================
 * The scripted peer
 * ====================================================================== */

typedef struct peer peer;
typedef void (*script_fn)(peer *p);

struct peer {
    int fd;
    script_fn script;
    /* the A-ASSOCIATE-AC to send */
    uint32_t ac_max_length;
    uint8_t verification_result, find_result;
    const char *verification_ts, *find_ts;
    /* knobs for scripts */
    int pending_to_send;
    uint16_t final_status;
    uint32_t response_max_pdu; /* how the peer fragments its own messages */

    /* what it saw */
    char problem[256];
    mwl_arena arena; /* the decoded RQ, PDUs */
    mwl_assoc_rq rq;
    bool got_rq;
    size_t message_count;
    uint16_t message_ids[MAX_SEEN];
    uint16_t command_fields[MAX_SEEN];
    uint8_t context_ids[MAX_SEEN];
    uint16_t priorities[MAX_SEEN];
    uint16_t cancel_for; /* MessageIDBeingRespondedTo of a C-CANCEL-RQ */
    uint32_t largest_pdu;
    size_t pdata_count;
    int end_pdu_type; /* the PDU that ended the script: 5 release, 7 abort, -1 EOF */
    uint8_t abort_source, abort_reason;
    mwl_arena ds_arena;
    mwl_ds *identifier; /* the last C-FIND identifier, decoded */
    size_t identifier_length;

    mwl_dimse_assembler assembler;
    mwl_wbuf in;
    mwl_pdu pdu;
};

static void peer_problem(peer *p, const char *fmt, ...) MWL_PRINTF(2, 3);
static void peer_problem(peer *p, const char *fmt, ...)
{
    if (p->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->problem, sizeof p->problem, fmt, ap);
    va_end(ap);
}

static void peer_init(peer *p, script_fn script)
{
    memset(p, 0, sizeof *p);
    p->script = script;
    p->ac_max_length = 16384;
    p->verification_result = MWL_PCTX_ACCEPTANCE;
    p->find_result = MWL_PCTX_ACCEPTANCE;
    p->verification_ts = TS_EXPLICIT;
    p->find_ts = TS_EXPLICIT;
    p->final_status = MWL_DIMSE_STATUS_SUCCESS;
    p->response_max_pdu = 16384;
    p->end_pdu_type = 0;
    mwl_arena_init(&p->arena, NULL);
    mwl_arena_init(&p->ds_arena, NULL);
    mwl_dimse_assembler_init(&p->assembler, NULL, NULL);
    mwl_wbuf_init(&p->in, NULL);
}

static void peer_clear(peer *p)
{
    mwl_arena_clear(&p->arena);
    mwl_arena_clear(&p->ds_arena);
    mwl_dimse_assembler_clear(&p->assembler);
    mwl_wbuf_clear(&p->in);
}

static bool read_exact(peer *p, uint8_t *buf, size_t len, bool eof_ok)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd pfd = {p->fd, POLLIN, 0};
        int r = poll(&pfd, 1, PEER_READ_MS);
        if (r <= 0) {
            peer_problem(p, "peer: nothing to read for %d ms", PEER_READ_MS);
            return false;
        }
        ssize_t n = read(p->fd, buf + got, len - got);
        if (n <= 0) {
            if (!(eof_ok && got == 0))
                peer_problem(p, "peer: connection closed mid-PDU");
            return false;
        }
        got += (size_t)n;
    }
    return true;
}

static void send_all(peer *p, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(p->fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) {
            peer_problem(p, "peer: send failed");
            return;
        }
        data += n;
        len -= (size_t)n;
    }
}

static void send_wbuf(peer *p, mwl_wbuf *w)
{
    send_all(p, w->data, w->len);
    mwl_wbuf_clear(w);
}

/* Reads and decodes one PDU into p->pdu. Returns its type, -1 at EOF. */
static int read_pdu(peer *p)
{
    uint8_t header[6];
    if (!read_exact(p, header, 6, true))
        return -1;
    uint32_t length = mwl_load_u32be(header + 2);
    if (length > (1u << 24)) {
        peer_problem(p, "peer: PDU length %u", (unsigned)length);
        return -1;
    }
    mwl_wbuf_clear(&p->in);
    mwl_wbuf_init(&p->in, NULL);
    mwl_wbuf_put(&p->in, header, 6);
    uint8_t *body = mwl_wbuf_reserve(&p->in, length + 1);
    if (!body || !read_exact(p, body, length, false))
        return -1;
    p->in.len += length;
    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    lim.max_pdu_length = 1u << 24;
    size_t used;
    if (mwl_pdu_decode(p->in.data, p->in.len, &p->arena, &lim, &p->pdu, &used, NULL) != MWL_OK) {
        peer_problem(p, "peer: undecodable PDU type %u", header[0]);
        return -1;
    }
    if (p->pdu.type == MWL_PDU_P_DATA_TF) {
        p->pdata_count++;
        if (length > p->largest_pdu)
            p->largest_pdu = length;
    }
    if (p->pdu.type == MWL_PDU_ABORT) {
        p->abort_source = p->pdu.u.abort.source;
        p->abort_reason = p->pdu.u.abort.reason;
    }
    return header[0];
}

static bool expect_rq(peer *p)
{
    if (read_pdu(p) != MWL_PDU_ASSOCIATE_RQ) {
        peer_problem(p, "peer: expected A-ASSOCIATE-RQ");
        return false;
    }
    p->rq = p->pdu.u.associate_rq; /* its strings live in p->arena until peer_clear */
    p->got_rq = true;
    return true;
}

static void send_ac(peer *p)
{
    mwl_pctx_ac contexts[2] = {
        {1, p->verification_result, p->verification_ts},
        {3, p->find_result, p->find_ts},
    };
    mwl_assoc_ac ac;
    memset(&ac, 0, sizeof ac);
    ac.protocol_version = 1;
    memcpy(ac.echo, p->rq.echo, sizeof ac.echo);
    ac.application_context = MWL_APPLICATION_CONTEXT_NAME;
    ac.contexts = contexts;
    ac.context_count = 2;
    ac.user_info.max_length = p->ac_max_length;
    ac.user_info.implementation_class_uid = "1.2.3.4";
    ac.user_info.implementation_version_name = "SCRIPTED";
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    if (mwl_pdu_encode_associate_ac(&ac, &w) != MWL_OK)
        peer_problem(p, "peer: cannot encode AC");
    send_wbuf(p, &w);
}

static bool associate(peer *p)
{
    if (!expect_rq(p))
        return false;
    send_ac(p);
    return true;
}

/* Reads P-DATA until one whole message; records its command. Any other
 * PDU ends the wait: its type is left in p->end_pdu_type. */
static bool read_message(peer *p, mwl_dimse_msg *msg)
{
    for (int guard = 0; guard < 10000; guard++) {
        int type = read_pdu(p);
        if (type != MWL_PDU_P_DATA_TF) {
            p->end_pdu_type = type;
            return false;
        }
        for (size_t i = 0; i < p->pdu.u.p_data.pdv_count; i++) {
            int rc = mwl_dimse_assembler_feed(&p->assembler, &p->pdu.u.p_data.pdvs[i], msg, NULL);
            if (rc == MWL_AGAIN)
                continue;
            if (rc != MWL_OK || i + 1 != p->pdu.u.p_data.pdv_count) {
                peer_problem(p, "peer: bad message (%d)", rc);
                return false;
            }
            if (p->message_count < MAX_SEEN) {
                p->message_ids[p->message_count] = msg->command.message_id;
                p->command_fields[p->message_count] = msg->command.command_field;
                p->context_ids[p->message_count] = msg->context_id;
                p->priorities[p->message_count] = msg->command.priority;
            }
            p->message_count++;
            if (msg->command.command_field == MWL_DIMSE_C_CANCEL_RQ)
                p->cancel_for = msg->command.message_id_being_responded_to;
            return true;
        }
    }
    peer_problem(p, "peer: message never completes");
    return false;
}

static bool expect_command(peer *p, uint16_t command_field, mwl_dimse_msg *msg)
{
    if (!read_message(p, msg)) {
        peer_problem(p, "peer: expected %s, got PDU %d", mwl_dimse_command_name(command_field),
                     p->end_pdu_type);
        return false;
    }
    if (msg->command.command_field != command_field) {
        peer_problem(p, "peer: expected %s, got %s", mwl_dimse_command_name(command_field),
                     mwl_dimse_command_name(msg->command.command_field));
        return false;
    }
    return true;
}

static mwl_ts ts_of(const char *uid)
{
    mwl_ts ts = MWL_TS_IMPLICIT_LE;
    if (mwl_ts_from_uid(uid, strlen(uid), &ts) != MWL_OK)
        return MWL_TS_IMPLICIT_LE; /* the scripts only use known UIDs */
    return ts;
}

/* Reads a C-FIND-RQ and decodes its identifier in the FIND context's TS. */
static bool expect_find(peer *p, uint16_t *message_id)
{
    mwl_dimse_msg msg;
    if (!expect_command(p, MWL_DIMSE_C_FIND_RQ, &msg))
        return false;
    *message_id = msg.command.message_id;
    p->identifier_length = msg.dataset_length;
    if (!msg.has_dataset || mwl_ds_decode(msg.dataset, msg.dataset_length, ts_of(p->find_ts), &p->ds_arena,
                                          NULL, &p->identifier, NULL) != MWL_OK) {
        peer_problem(p, "peer: C-FIND identifier does not decode in %s", p->find_ts);
        return false;
    }
    return true;
}

/* Sends a command (in `cmd`) and optional data set, fragmented to
 * p->response_max_pdu. */
static void send_message(peer *p, uint8_t context_id, mwl_wbuf *cmd, mwl_wbuf *ds)
{
    mwl_wbuf out;
    mwl_wbuf_init(&out, NULL);
    if (mwl_dimse_fragment(context_id, cmd->data, cmd->len, ds ? ds->data : NULL, ds ? ds->len : 0,
                           p->response_max_pdu, &out) != MWL_OK)
        peer_problem(p, "peer: cannot fragment");
    send_wbuf(p, &out);
    mwl_wbuf_clear(cmd);
    if (ds)
        mwl_wbuf_clear(ds);
}

static void send_echo_rsp(peer *p, uint16_t message_id, uint16_t status)
{
    mwl_wbuf cmd;
    mwl_wbuf_init(&cmd, NULL);
    if (mwl_dimse_encode_echo_rsp(message_id, MWL_UID_Verification, status, &cmd) != MWL_OK)
        peer_problem(p, "peer: cannot encode C-ECHO-RSP");
    send_message(p, 1, &cmd, NULL);
}

/* A matching worklist item, numbered so the client can tell them apart. */
static void send_pending(peer *p, uint16_t message_id, int number)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds, *item;
    char id[16];
    snprintf(id, sizeof id, "P%d", number);
    if (mwl_ds_new(&a, NULL, &ds) != MWL_OK ||
        mwl_ds_set_str(ds, MWL_TAG_PatientName, 0, "DOE^JOHN") != MWL_OK ||
        mwl_ds_set_str(ds, MWL_TAG_PatientID, 0, id) != MWL_OK ||
        mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item) != MWL_OK ||
        mwl_ds_set_str(item, MWL_TAG_Modality, 0, "MR") != MWL_OK)
        peer_problem(p, "peer: cannot build an item");
    mwl_wbuf cmd, data;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&data, NULL);
    if (mwl_dimse_encode_find_rsp(message_id, MWL_UID_ModalityWorklistInformationModelFind,
                                  MWL_DIMSE_STATUS_PENDING, NULL, NULL, 0, &cmd) != MWL_OK ||
        mwl_ds_encode(ds, ts_of(p->find_ts), &data) != MWL_OK)
        peer_problem(p, "peer: cannot encode a pending response");
    if (data.len % 2)
        mwl_wbuf_put_u8(&data, 0); /* deflated: PS3.5 A.5 pad */
    send_message(p, 3, &cmd, &data);
    mwl_arena_clear(&a);
}

static void send_final(peer *p, uint16_t message_id, uint16_t status, const char *comment,
                       const uint32_t *offending, size_t offending_count)
{
    mwl_wbuf cmd;
    mwl_wbuf_init(&cmd, NULL);
    if (mwl_dimse_encode_find_rsp(message_id, MWL_UID_ModalityWorklistInformationModelFind, status, comment,
                                  offending, offending_count, &cmd) != MWL_OK)
        peer_problem(p, "peer: cannot encode the final response");
    send_message(p, 3, &cmd, NULL);
}

static void send_fixed(peer *p, const uint8_t *pdu, size_t len)
{
    send_all(p, pdu, len);
}

static const uint8_t RELEASE_RP[] = {0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0};

/* Waits for the client's last word: A-RELEASE-RQ (answered), A-ABORT, or
 * the connection closing. */
static void expect_end(peer *p)
{
    int type = read_pdu(p);
    p->end_pdu_type = type;
    if (type == MWL_PDU_RELEASE_RQ)
        send_fixed(p, RELEASE_RP, sizeof RELEASE_RP);
}

static void *peer_main(void *arg)
{
    peer *p = arg;
    p->script(p);
    /* After the script: drain until the client closes, so it never sees a
     * reset it did not cause (bounded by PEER_READ_MS per read). */
    uint8_t buf[512];
    struct pollfd pfd = {p->fd, POLLIN, 0};
    while (poll(&pfd, 1, 2000) > 0 && read(p->fd, buf, sizeof buf) > 0)
        ;
    close(p->fd);
    return NULL;
}

/* ======================================================================
 * Client side fixtures
 * ====================================================================== */

typedef struct run {
    pthread_t thread;
    mwl_scu *scu;
    int assoc_rc;
} run;

static void test_config(mwl_scu_config *cfg)
{
    mwl_scu_config_init(cfg);
    cfg->calling_ae = "MODALITY1";
    cfg->called_ae = "WORKLIST";
    cfg->acse_timeout_ms = 3000;
    cfg->dimse_timeout_ms = 3000;
}

/* Starts the peer and associates the client over a socketpair. */
static void start(run *r, peer *p, const mwl_scu_config *cfg)
{
    int sv[2];
    memset(r, 0, sizeof *r);
    CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p->fd = sv[1];
    CHECK_EQ_INT(pthread_create(&r->thread, NULL, peer_main, p), 0);
    mwl_conn *conn = NULL;
    CHECK_EQ_INT(mwl_net_conn_from_fd(sv[0], true, NULL, &conn, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_scu_new(cfg, &r->scu, NULL), MWL_OK);
    r->assoc_rc = mwl_scu_associate_conn(r->scu, conn);
}

static void finish(run *r, peer *p)
{
    mwl_scu_free(r->scu);
    CHECK_EQ_INT(pthread_join(r->thread, NULL), 0);
    if (p->problem[0])
        fprintf(stderr, "peer problem: %s\n", p->problem);
    CHECK_EQ_STR(p->problem, "");
    /* The peer's observations stay readable until peer_clear. */
}

/* The query the tests send: a few return keys and one matching key. */
static mwl_ds *make_query(mwl_arena *a, const char *modality)
{
    mwl_ds *q = NULL, *item = NULL;
    CHECK_EQ_INT(mwl_ds_new(a, NULL, &q), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(q, MWL_TAG_PatientName, 0, ""), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(q, MWL_TAG_PatientID, 0, ""), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(q, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_Modality, 0, modality), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_ScheduledProcedureStepStartDate, 0, ""), MWL_OK);
    return q;
}

/* What the client's callback saw, and what it answers. */
typedef struct collector {
    size_t calls;
    int cancel_at; /* answer CANCEL on this call (1-based), 0 never */
    int abort_at;
    int sleep_ms; /* a slow caller: time it spends is not the peer's */
    char ids[8][16];
    char modality[8];
    uint16_t statuses[8];
    int decode_status;
    mwl_ts ts;
} collector;

static int collect(void *user, const mwl_scu_find_rsp *rsp)
{
    collector *c = user;
    size_t n = c->calls++;
    if (c->sleep_ms > 0)
        poll(NULL, 0, c->sleep_ms);
    c->decode_status = rsp->decode_status;
    c->ts = rsp->ts;
    if (n < 8) {
        c->statuses[n] = rsp->status;
        if (rsp->identifier) {
            if (mwl_ds_copy_str(rsp->identifier, MWL_TAG_PatientID, 0, c->ids[n], sizeof c->ids[n]) != MWL_OK)
                c->ids[n][0] = '\0';
            const mwl_elem *seq = mwl_ds_find(rsp->identifier, MWL_TAG_ScheduledProcedureStepSequence);
            if (seq && seq->item_count == 1 &&
                mwl_ds_copy_str(seq->items[0], MWL_TAG_Modality, 0, c->modality, sizeof c->modality) !=
                    MWL_OK)
                c->modality[0] = '\0';
        }
    }
    if (c->abort_at && (int)c->calls == c->abort_at)
        return MWL_SCU_FIND_ABORT;
    if (c->cancel_at && (int)c->calls == c->cancel_at)
        return MWL_SCU_FIND_CANCEL;
    return MWL_SCU_FIND_CONTINUE;
}

/* ======================================================================
 * Scripts and tests
 * ====================================================================== */

static void script_echo_twice(peer *p)
{
    if (!associate(p))
        return;
    mwl_dimse_msg msg;
    if (!expect_command(p, MWL_DIMSE_C_ECHO_RQ, &msg))
        return;
    send_echo_rsp(p, msg.command.message_id, MWL_DIMSE_STATUS_SUCCESS);
    if (!expect_command(p, MWL_DIMSE_C_ECHO_RQ, &msg))
        return;
    send_echo_rsp(p, msg.command.message_id, MWL_DIMSE_STATUS_PROCESSING_FAILURE);
    expect_end(p);
}

static void test_echo_and_rq_contents(void)
{
    peer p;
    peer_init(&p, script_echo_twice);
    p.verification_ts = TS_IMPLICIT;
    mwl_scu_config cfg;
    test_config(&cfg);
    cfg.max_pdu_length = 32768;
    run r;
    start(&r, &p, &cfg);
    CHECK_EQ_INT(r.assoc_rc, MWL_OK);
    CHECK(mwl_scu_is_associated(r.scu));
    const mwl_scu_assoc_info *info = mwl_scu_get_assoc_info(r.scu);
    CHECK(info != NULL);
    if (info) {
        CHECK_EQ_INT(info->peer_max_pdu_length, 16384);
        CHECK_EQ_STR(info->peer_implementation_class_uid, "1.2.3.4");
        CHECK_EQ_STR(info->peer_implementation_version_name, "SCRIPTED");
        CHECK(info->verification_accepted);
        CHECK_EQ_INT(info->verification_ts, MWL_TS_IMPLICIT_LE);
        CHECK(info->find_accepted);
        CHECK_EQ_INT(info->find_ts, MWL_TS_EXPLICIT_LE);
    }
    uint16_t status = 1;
    CHECK_EQ_INT(mwl_scu_next_message_id(r.scu), 1);
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_OK);
    CHECK_EQ_INT(status, 0x0000);
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_OK); /* a failure status is data, not an error */
    CHECK_EQ_INT(status, 0x0110);
    CHECK_EQ_INT(mwl_scu_last_error(r.scu)->failure, MWL_SCU_FAIL_NONE);
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    CHECK(!mwl_scu_is_associated(r.scu));
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_E_INVALID); /* after release */
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_E_INVALID);
    finish(&r, &p);

    /* What went over the wire. */
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_RELEASE_RQ);
    CHECK_EQ_INT(p.message_count, 2);
    CHECK_EQ_INT(p.message_ids[0], 1); /* Message IDs increment per request */
    CHECK_EQ_INT(p.message_ids[1], 2);
    CHECK_EQ_INT(p.context_ids[0], 1);
    peer_clear(&p);
}

static void script_check_rq(peer *p)
{
    if (!expect_rq(p))
        return;
    const mwl_assoc_rq *rq = &p->rq;
    if (strcmp(rq->calling_ae, "MODALITY1") || strcmp(rq->called_ae, "WORKLIST"))
        peer_problem(p, "AE titles %s / %s", rq->calling_ae, rq->called_ae);
    if (strcmp(rq->application_context, MWL_APPLICATION_CONTEXT_NAME))
        peer_problem(p, "application context %s", rq->application_context);
    if (rq->context_count != 2 || rq->contexts[0].id != 1 ||
        strcmp(rq->contexts[0].abstract_syntax, MWL_UID_Verification) || rq->contexts[1].id != 3 ||
        strcmp(rq->contexts[1].abstract_syntax, MWL_UID_ModalityWorklistInformationModelFind))
        peer_problem(p, "presentation contexts");
    for (size_t i = 0; i < rq->context_count && i < 2; i++) {
        const mwl_pctx_rq *c = &rq->contexts[i];
        /* the configured order: Big Endian, then Explicit, Implicit, Deflated */
        if (c->transfer_syntax_count != 4 || strcmp(c->transfer_syntaxes[0], TS_BIG) ||
            strcmp(c->transfer_syntaxes[1], TS_EXPLICIT) || strcmp(c->transfer_syntaxes[2], TS_IMPLICIT) ||
            strcmp(c->transfer_syntaxes[3], TS_DEFLATED))
            peer_problem(p, "transfer syntaxes of context %u", c->id);
    }
    if (rq->user_info.max_length != 8192)
        peer_problem(p, "max length %u", (unsigned)rq->user_info.max_length);
    if (strcmp(rq->user_info.implementation_class_uid, MWL_IMPLEMENTATION_CLASS_UID) ||
        strcmp(rq->user_info.implementation_version_name, MWL_IMPLEMENTATION_VERSION_NAME))
        peer_problem(p, "implementation %s %s", rq->user_info.implementation_class_uid,
                     rq->user_info.implementation_version_name);
    if (rq->user_info.role_count != 0)
        peer_problem(p, "unexpected role selection");
    /* Reject, transiently, for local limit: the client must report it. */
    static const uint8_t rj[] = {0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2};
    send_fixed(p, rj, sizeof rj);
}

static void test_rq_contents_and_transient_rejection(void)
{
    peer p;
    peer_init(&p, script_check_rq);
    mwl_scu_config cfg;
    test_config(&cfg);
    cfg.calling_ae = "  MODALITY1 "; /* spaces are not significant */
    cfg.max_pdu_length = 8192;
    cfg.transfer_syntaxes[0] = MWL_TS_EXPLICIT_BE;
    cfg.transfer_syntaxes[1] = MWL_TS_EXPLICIT_LE;
    cfg.transfer_syntaxes[2] = MWL_TS_IMPLICIT_LE;
    cfg.transfer_syntaxes[3] = MWL_TS_DEFLATED_LE;
    cfg.transfer_syntax_count = 4;
    run r;
    start(&r, &p, &cfg);
    CHECK_EQ_INT(r.assoc_rc, MWL_E_CLOSED);
    const mwl_scu_error *e = mwl_scu_last_error(r.scu);
    CHECK_EQ_INT(e->failure, MWL_SCU_FAIL_REJECTED);
    CHECK_EQ_INT(e->status, MWL_E_CLOSED);
    CHECK_EQ_INT(e->rj.result, 2);
    CHECK_EQ_INT(e->rj.source, 3);
    CHECK_EQ_INT(e->rj.reason, 2);
    CHECK(strstr(e->msg, "transient") != NULL);
    CHECK(strstr(e->msg, "local limit exceeded") != NULL);
    CHECK(mwl_scu_get_assoc_info(r.scu) == NULL);
    CHECK(!mwl_scu_is_associated(r.scu));
    CHECK_EQ_INT(mwl_scu_associate_conn(r.scu, NULL), MWL_E_INVALID); /* once only */
    finish(&r, &p);
    peer_clear(&p);
}

static void script_reject_called(peer *p)
{
    if (!expect_rq(p))
        return;
    static const uint8_t rj[] = {0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7};
    send_fixed(p, rj, sizeof rj);
}

static void test_rejected(void)
{
    peer p;
    peer_init(&p, script_reject_called);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    CHECK_EQ_INT(r.assoc_rc, MWL_E_CLOSED);
    const mwl_scu_error *e = mwl_scu_last_error(r.scu);
    CHECK_EQ_INT(e->failure, MWL_SCU_FAIL_REJECTED);
    CHECK_EQ_INT(e->rj.result, 1);
    CHECK_EQ_INT(e->rj.source, 1);
    CHECK_EQ_INT(e->rj.reason, 7);
    CHECK_EQ_STR(e->msg,
                 "association rejected (permanent) by the service user: called AE title not recognized "
                 "[1/1/7]");
    finish(&r, &p);
    peer_clear(&p);
}

static void script_abort_mid_find(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, id, 1);
    static const uint8_t abort_pdu[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0};
    send_fixed(p, abort_pdu, sizeof abort_pdu);
}

static void test_aborted_mid_find(void)
{
    peer p;
    peer_init(&p, script_abort_mid_find);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    CHECK_EQ_INT(r.assoc_rc, MWL_OK);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    collector c;
    memset(&c, 0, sizeof c);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, "MR"), MWL_DIMSE_PRIORITY_MEDIUM, collect, &c, &res),
                 MWL_E_CLOSED);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_STR(c.ids[0], "P1");
    CHECK_EQ_INT(res.pending_count, 1);
    CHECK_EQ_INT(res.message_id, 1);
    const mwl_scu_error *e = mwl_scu_last_error(r.scu);
    CHECK_EQ_INT(e->failure, MWL_SCU_FAIL_ABORTED);
    CHECK_EQ_INT(e->abort_source, 2);
    CHECK_EQ_INT(e->abort_reason, 0);
    CHECK(strstr(e->msg, "aborted") != NULL);
    CHECK(!mwl_scu_is_associated(r.scu));
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_E_INVALID);
    mwl_arena_clear(&a);
    finish(&r, &p);
    peer_clear(&p);
}

static void script_wrong_message_id(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, (uint16_t)(id + 7), 1);
    expect_end(p);
}

static void test_wrong_message_id(void)
{
    peer p;
    peer_init(&p, script_wrong_message_id);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    collector c;
    memset(&c, 0, sizeof c);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, ""), MWL_DIMSE_PRIORITY_HIGH, collect, &c, &res),
                 MWL_E_PROTOCOL);
    CHECK_EQ_INT(c.calls, 0); /* never delivered */
    const mwl_scu_error *e = mwl_scu_last_error(r.scu);
    CHECK_EQ_INT(e->failure, MWL_SCU_FAIL_PROTOCOL);
    CHECK(strstr(e->msg, "Message ID 8, expected 1") != NULL);
    CHECK(!mwl_scu_is_associated(r.scu));
    mwl_arena_clear(&a);
    finish(&r, &p);
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_ABORT); /* we aborted */
    CHECK_EQ_INT(p.abort_source, 0);
    CHECK_EQ_INT(p.priorities[0], MWL_DIMSE_PRIORITY_HIGH);
    peer_clear(&p);
}

static void script_unexpected_command(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_echo_rsp(p, id, 0);
    expect_end(p);
}

static void test_unexpected_command(void)
{
    peer p;
    peer_init(&p, script_unexpected_command);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, ""), MWL_DIMSE_PRIORITY_LOW, NULL, NULL, &res),
                 MWL_E_PROTOCOL);
    CHECK(strstr(mwl_scu_last_error(r.scu)->msg, "expected C-FIND-RSP, got C-ECHO-RSP") != NULL);
    mwl_arena_clear(&a);
    finish(&r, &p);
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_ABORT);
    peer_clear(&p);
}

/* Peer with a 4096-byte maximum: the client must fragment a query far
 * bigger than that; the peer fragments its responses to 300 bytes. */
static void script_small_pdu(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, id, 1);
    send_pending(p, id, 2);
    send_final(p, id, MWL_DIMSE_STATUS_SUCCESS, NULL, NULL, 0);
    expect_end(p);
}

static void test_peer_max_pdu_small(void)
{
    peer p;
    peer_init(&p, script_small_pdu);
    p.ac_max_length = 4096;
    p.response_max_pdu = 300;
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    CHECK_EQ_INT(r.assoc_rc, MWL_OK);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *q = make_query(&a, "MR");
    static char comments[10001];
    memset(comments, 'c', sizeof comments - 1);
    CHECK_EQ_INT(mwl_ds_set_str(q, MWL_TAG_PatientComments, 0, comments), MWL_OK);
    collector c;
    memset(&c, 0, sizeof c);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, q, MWL_DIMSE_PRIORITY_MEDIUM, collect, &c, &res), MWL_OK);
    CHECK_EQ_INT(res.status, 0);
    CHECK_EQ_INT(res.pending_count, 2);
    CHECK_EQ_INT(c.calls, 2);
    CHECK_EQ_STR(c.ids[0], "P1");
    CHECK_EQ_STR(c.ids[1], "P2");
    CHECK_EQ_STR(c.modality, "MR");
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    finish(&r, &p);
    CHECK(p.largest_pdu <= 4096);
    CHECK(p.pdata_count >= 3); /* 10 KB in PDUs of at most 4 KB */
    CHECK(p.identifier != NULL && mwl_ds_equal(p.identifier, q));
    mwl_arena_clear(&a);
    peer_clear(&p);
}

/* Responses 100 ms apart: each is in the socket before a slow caller
 * comes back for it. */
static void script_spaced(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, id, 1);
    poll(NULL, 0, 100);
    send_pending(p, id, 2);
    poll(NULL, 0, 100);
    send_final(p, id, MWL_DIMSE_STATUS_SUCCESS, NULL, NULL, 0);
    expect_end(p);
}

static void test_slow_callback(void)
{
    /* Responses already wait in the socket while the callback takes longer
     * than the DIMSE timeout: that is no timeout of the peer's. */
    peer p;
    peer_init(&p, script_spaced);
    mwl_scu_config cfg;
    test_config(&cfg);
    cfg.dimse_timeout_ms = 300;
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    collector c;
    memset(&c, 0, sizeof c);
    c.sleep_ms = 450;
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, "MR"), 0, collect, &c, &res), MWL_OK);
    CHECK_EQ_INT(res.pending_count, 2);
    CHECK_EQ_INT(res.status, 0);
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    mwl_arena_clear(&a);
    finish(&r, &p);
    peer_clear(&p);
}

static void script_cancel(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, id, 1);
    mwl_dimse_msg msg;
    if (!expect_command(p, MWL_DIMSE_C_CANCEL_RQ, &msg))
        return;
    if (msg.context_id != 3 || msg.command.message_id_being_responded_to != id || msg.has_dataset)
        peer_problem(p, "bad C-CANCEL-RQ");
    send_pending(p, id, 2); /* "in flight" when the cancel arrived */
    send_final(p, id, MWL_DIMSE_STATUS_CANCEL, NULL, NULL, 0);
    /* The association stays usable after a cancel. */
    if (!expect_command(p, MWL_DIMSE_C_ECHO_RQ, &msg))
        return;
    send_echo_rsp(p, msg.command.message_id, 0);
    expect_end(p);
}

static void test_cancel(void)
{
    peer p;
    peer_init(&p, script_cancel);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    collector c;
    memset(&c, 0, sizeof c);
    c.cancel_at = 1;
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, "MR"), MWL_DIMSE_PRIORITY_MEDIUM, collect, &c, &res),
                 MWL_OK);
    CHECK_EQ_INT(res.status, 0xFE00);
    CHECK(res.cancel_sent);
    CHECK_EQ_INT(res.pending_count, 1);
    CHECK_EQ_INT(res.discarded_count, 1);
    CHECK_EQ_INT(c.calls, 1);
    uint16_t status = 1;
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_OK);
    CHECK_EQ_INT(status, 0);
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    mwl_arena_clear(&a);
    finish(&r, &p);
    CHECK_EQ_INT(p.cancel_for, 1);
    CHECK_EQ_INT(p.message_ids[2], 2); /* the echo after the find: the cancel took no ID */
    peer_clear(&p);
}

static void script_failure_status(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    static const uint32_t offending[] = {0x00400100u, 0x00080060u};
    send_final(p, id, MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH, "bad sequence key", offending, 2);
    if (!expect_find(p, &id))
        return;
    send_final(p, id, 0xC001, NULL, NULL, 0);
    expect_end(p);
}

static void test_failure_status(void)
{
    peer p;
    peer_init(&p, script_failure_status);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, "MR"), MWL_DIMSE_PRIORITY_MEDIUM, NULL, NULL, &res),
                 MWL_OK);
    CHECK_EQ_INT(res.status, 0xA900);
    CHECK(res.has_error_comment);
    CHECK_EQ_STR(res.error_comment, "bad sequence key");
    CHECK_EQ_INT(res.offending_element_count, 2);
    CHECK_EQ_INT(res.offending_elements[0], 0x00400100u);
    CHECK_EQ_INT(res.offending_elements[1], 0x00080060u);
    CHECK_EQ_INT(res.pending_count, 0);
    CHECK(mwl_scu_is_associated(r.scu));
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, "CT"), MWL_DIMSE_PRIORITY_MEDIUM, NULL, NULL, &res),
                 MWL_OK);
    CHECK_EQ_INT(res.status, 0xC001);
    CHECK_EQ_INT(res.message_id, 2);
    CHECK(!res.has_error_comment);
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    mwl_arena_clear(&a);
    finish(&r, &p);
    peer_clear(&p);
}

static void script_silent_after_echo(peer *p)
{
    if (!associate(p))
        return;
    mwl_dimse_msg msg;
    if (!expect_command(p, MWL_DIMSE_C_ECHO_RQ, &msg))
        return;
    expect_end(p); /* never answer: the client gives up and aborts */
}

static void test_dimse_timeout(void)
{
    peer p;
    peer_init(&p, script_silent_after_echo);
    mwl_scu_config cfg;
    test_config(&cfg);
    cfg.dimse_timeout_ms = 300;
    run r;
    start(&r, &p, &cfg);
    uint16_t status;
    uint64_t t0 = mwl_now_ms();
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_E_TIMEOUT);
    uint64_t elapsed = mwl_now_ms() - t0;
    /* The timeout fired, not before its time, and not the peer giving up
     * (after PEER_READ_MS it closes, which is no MWL_E_TIMEOUT). */
    CHECK(elapsed >= 300 && elapsed < PEER_READ_MS);
    CHECK_EQ_INT(mwl_scu_last_error(r.scu)->failure, MWL_SCU_FAIL_TIMEOUT);
    CHECK(strstr(mwl_scu_last_error(r.scu)->msg, "no C-ECHO-RSP") != NULL);
    CHECK(!mwl_scu_is_associated(r.scu));
    finish(&r, &p);
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_ABORT);
    peer_clear(&p);
}

static void script_silent(peer *p)
{
    if (!expect_rq(p))
        return;
    expect_end(p);
}

static void test_acse_timeout(void)
{
    peer p;
    peer_init(&p, script_silent);
    mwl_scu_config cfg;
    test_config(&cfg);
    cfg.acse_timeout_ms = 250;
    run r;
    uint64_t t0 = mwl_now_ms();
    start(&r, &p, &cfg);
    uint64_t elapsed = mwl_now_ms() - t0;
    CHECK_EQ_INT(r.assoc_rc, MWL_E_TIMEOUT);
    CHECK(elapsed >= 250 && elapsed < PEER_READ_MS); /* as in test_dimse_timeout */
    CHECK_EQ_INT(mwl_scu_last_error(r.scu)->failure, MWL_SCU_FAIL_TIMEOUT);
    finish(&r, &p);
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_ABORT); /* the attempt is aborted (PS3.8 AA-1 from Sta5) */
    peer_clear(&p);
}

static void script_no_verification(peer *p)
{
    if (!associate(p))
        return;
    expect_end(p);
}

static void test_context_not_accepted(void)
{
    peer p;
    peer_init(&p, script_no_verification);
    p.verification_result = MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED;
    p.find_result = MWL_PCTX_TRANSFER_SYNTAXES_NOT_SUPPORTED;
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    CHECK_EQ_INT(r.assoc_rc, MWL_OK);
    const mwl_scu_assoc_info *info = mwl_scu_get_assoc_info(r.scu);
    CHECK(info && !info->verification_accepted && !info->find_accepted);
    CHECK(info && info->verification_result == MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED);
    uint16_t status;
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_scu_last_error(r.scu)->failure, MWL_SCU_FAIL_NO_CONTEXT);
    CHECK(strstr(mwl_scu_last_error(r.scu)->msg, "abstract syntax not supported") != NULL);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, ""), 0, NULL, NULL, &res), MWL_E_UNSUPPORTED);
    CHECK(mwl_scu_is_associated(r.scu));             /* still usable */
    CHECK_EQ_INT(mwl_scu_next_message_id(r.scu), 1); /* nothing was sent */
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    mwl_arena_clear(&a);
    finish(&r, &p);
    CHECK_EQ_INT(p.message_count, 0);
    peer_clear(&p);
}

/* The negotiated transfer syntax encodes the query and decodes responses. */
static void script_ts_round_trip(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, id, 7);
    send_final(p, id, 0, NULL, NULL, 0);
    expect_end(p);
}

static void test_negotiated_transfer_syntax(void)
{
    static const struct {
        const char *uid;
        mwl_ts ts;
    } cases[] = {
        {TS_BIG, MWL_TS_EXPLICIT_BE}, {TS_DEFLATED, MWL_TS_DEFLATED_LE}, {TS_IMPLICIT, MWL_TS_IMPLICIT_LE}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        peer p;
        peer_init(&p, script_ts_round_trip);
        p.find_ts = cases[i].uid;
        mwl_scu_config cfg;
        test_config(&cfg);
        cfg.transfer_syntaxes[0] = MWL_TS_EXPLICIT_LE;
        cfg.transfer_syntaxes[1] = MWL_TS_IMPLICIT_LE;
        cfg.transfer_syntaxes[2] = MWL_TS_EXPLICIT_BE;
        cfg.transfer_syntaxes[3] = MWL_TS_DEFLATED_LE;
        cfg.transfer_syntax_count = 4;
        run r;
        start(&r, &p, &cfg);
        CHECK_EQ_INT(r.assoc_rc, MWL_OK);
        CHECK_EQ_INT(mwl_scu_get_assoc_info(r.scu)->find_ts, cases[i].ts);
        mwl_arena a;
        mwl_arena_init(&a, NULL);
        mwl_ds *q = make_query(&a, "US");
        collector c;
        memset(&c, 0, sizeof c);
        mwl_scu_find_result res;
        CHECK_EQ_INT(mwl_scu_find(r.scu, q, MWL_DIMSE_PRIORITY_MEDIUM, collect, &c, &res), MWL_OK);
        CHECK_EQ_INT(c.calls, 1);
        CHECK_EQ_INT(c.decode_status, MWL_OK);
        CHECK_EQ_INT(c.ts, cases[i].ts);
        CHECK_EQ_STR(c.ids[0], "P7");
        CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
        finish(&r, &p);
        CHECK(p.identifier != NULL && mwl_ds_equal(p.identifier, q));
        mwl_arena_clear(&a);
        peer_clear(&p);
    }
}

static void script_close_mid_find(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    shutdown(p->fd, SHUT_RDWR); /* gone without A-ABORT */
}

static void test_peer_closes(void)
{
    peer p;
    peer_init(&p, script_close_mid_find);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, ""), 0, NULL, NULL, &res), MWL_E_CLOSED);
    CHECK_EQ_INT(mwl_scu_last_error(r.scu)->failure, MWL_SCU_FAIL_CLOSED);
    mwl_arena_clear(&a);
    finish(&r, &p);
    peer_clear(&p);
}

static void script_callback_abort(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    send_pending(p, id, 1);
    send_pending(p, id, 2);
    expect_end(p);
}

static void test_callback_abort(void)
{
    peer p;
    peer_init(&p, script_callback_abort);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    collector c;
    memset(&c, 0, sizeof c);
    c.abort_at = 1;
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, ""), 0, collect, &c, &res), MWL_E_CANCELLED);
    CHECK_EQ_INT(c.calls, 1);
    CHECK_EQ_INT(mwl_scu_last_error(r.scu)->failure, MWL_SCU_FAIL_CANCELLED);
    mwl_arena_clear(&a);
    finish(&r, &p);
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_ABORT);
    peer_clear(&p);
}

static void script_garbage_pdu(peer *p)
{
    if (!associate(p))
        return;
    mwl_dimse_msg msg;
    if (!expect_command(p, MWL_DIMSE_C_ECHO_RQ, &msg))
        return;
    static const uint8_t unknown[] = {0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0};
    send_fixed(p, unknown, sizeof unknown);
    expect_end(p);
}

static void test_invalid_pdu(void)
{
    peer p;
    peer_init(&p, script_garbage_pdu);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    uint16_t status;
    CHECK_EQ_INT(mwl_scu_echo(r.scu, &status), MWL_E_PROTOCOL);
    const mwl_scu_error *e = mwl_scu_last_error(r.scu);
    CHECK_EQ_INT(e->failure, MWL_SCU_FAIL_PROTOCOL);
    CHECK_EQ_INT(e->abort_source, 2);
    CHECK_EQ_INT(e->abort_reason, 1);
    finish(&r, &p);
    CHECK_EQ_INT(p.end_pdu_type, MWL_PDU_ABORT);
    CHECK_EQ_INT(p.abort_source, 2);
    CHECK_EQ_INT(p.abort_reason, 1); /* unrecognized PDU */
    peer_clear(&p);
}

static void script_bad_identifier(peer *p)
{
    if (!associate(p))
        return;
    uint16_t id;
    if (!expect_find(p, &id))
        return;
    /* A Pending response whose identifier is truncated mid-element. */
    mwl_wbuf cmd, data;
    mwl_wbuf_init(&cmd, NULL);
    mwl_wbuf_init(&data, NULL);
    if (mwl_dimse_encode_find_rsp(id, MWL_UID_ModalityWorklistInformationModelFind, MWL_DIMSE_STATUS_PENDING,
                                  NULL, NULL, 0, &cmd) != MWL_OK)
        peer_problem(p, "encode");
    static const uint8_t truncated[] = {0x10, 0x00, 0x10, 0x00, 'P', 'N', 0x20, 0x00, 'D', 'O'};
    mwl_wbuf_put(&data, truncated, sizeof truncated);
    send_message(p, 3, &cmd, &data);
    send_pending(p, id, 2);
    send_final(p, id, 0, NULL, NULL, 0);
    expect_end(p);
}

static void test_undecodable_identifier(void)
{
    peer p;
    peer_init(&p, script_bad_identifier);
    mwl_scu_config cfg;
    test_config(&cfg);
    run r;
    start(&r, &p, &cfg);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    collector c;
    memset(&c, 0, sizeof c);
    mwl_scu_find_result res;
    CHECK_EQ_INT(mwl_scu_find(r.scu, make_query(&a, ""), 0, collect, &c, &res), MWL_OK);
    CHECK_EQ_INT(c.calls, 2); /* the bad one is delivered with its status, and the find goes on */
    CHECK_EQ_STR(c.ids[0], "");
    CHECK_EQ_STR(c.ids[1], "P2");
    CHECK_EQ_INT(res.status, 0);
    CHECK_EQ_INT(mwl_scu_release(r.scu), MWL_OK);
    mwl_arena_clear(&a);
    finish(&r, &p);
    peer_clear(&p);
}

static void test_config_checks(void)
{
    mwl_scu_config cfg;
    mwl_scu *scu = (mwl_scu *)&cfg; /* must be reset to NULL on failure */
    mwl_diag diag;
    test_config(&cfg);
    cfg.calling_ae = "THIS-IS-17-CHARSX";
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    CHECK(scu == NULL);
    CHECK(strstr(diag.msg, "calling AE title") != NULL);
    test_config(&cfg);
    cfg.called_ae = "A\\B";
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    test_config(&cfg);
    cfg.called_ae = "    ";
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    test_config(&cfg);
    cfg.dimse_timeout_ms = 0;
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    CHECK(strstr(diag.msg, "DIMSE timeout") != NULL);
    test_config(&cfg);
    cfg.transfer_syntax_count = 0;
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    test_config(&cfg);
    cfg.transfer_syntaxes[1] = MWL_TS_EXPLICIT_LE; /* a duplicate */
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    test_config(&cfg);
    cfg.max_pdu_length = 1000;
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_scu_new(NULL, &scu, NULL), MWL_E_INVALID);

    /* No host: associate refuses without connecting. */
    test_config(&cfg);
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, &diag), MWL_OK);
    CHECK_EQ_INT(mwl_scu_associate(scu), MWL_E_INVALID);
    uint16_t status;
    CHECK_EQ_INT(mwl_scu_echo(scu, &status), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_scu_abort(scu), MWL_E_INVALID);
    mwl_scu_free(scu);
    mwl_scu_free(NULL);
}

static void test_connect_refused(void)
{
    /* A port that was just free: bind it, learn it, close it. */
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = "127.0.0.1";
    mwl_listener *l;
    CHECK_EQ_INT(mwl_listener_open(&opts, NULL, &l, NULL), MWL_OK);
    uint16_t port = mwl_listener_port(l);
    mwl_listener_close(l);

    mwl_scu_config cfg;
    test_config(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = port;
    mwl_scu *scu;
    CHECK_EQ_INT(mwl_scu_new(&cfg, &scu, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_scu_associate(scu), MWL_E_IO);
    const mwl_scu_error *e = mwl_scu_last_error(scu);
    CHECK_EQ_INT(e->failure, MWL_SCU_FAIL_CONNECT);
    CHECK(strstr(e->msg, "cannot connect to 127.0.0.1") != NULL);
    mwl_scu_free(scu);
}

static void test_words(void)
{
    CHECK_EQ_STR(mwl_scu_rj_reason_str(1, 3), "calling AE title not recognized");
    CHECK_EQ_STR(mwl_scu_rj_reason_str(2, 2), "protocol version not supported");
    CHECK_EQ_STR(mwl_scu_rj_reason_str(3, 1), "temporary congestion");
    CHECK_EQ_STR(mwl_scu_rj_reason_str(1, 5), "unknown (reserved) reason");
    CHECK_EQ_STR(mwl_scu_abort_reason_str(0, 6), "no reason given");
    CHECK_EQ_STR(mwl_scu_abort_reason_str(2, 6), "invalid PDU parameter value");
    CHECK_EQ_STR(mwl_scu_pctx_result_str(4), "none of the transfer syntaxes supported");
    CHECK_EQ_STR(mwl_scu_ts_name(MWL_TS_EXPLICIT_BE), "Explicit VR Big Endian");
}

/* Out-of-memory: fail the client's Nth allocation during a whole echo +
 * find + release conversation; every outcome must be a clean status (and
 * ASan must see no leak). */
static void script_oom(peer *p)
{
    if (!associate(p))
        return;
    mwl_dimse_msg msg;
    if (!read_message(p, &msg))
        return;
    if (msg.command.command_field == MWL_DIMSE_C_ECHO_RQ)
        send_echo_rsp(p, msg.command.message_id, 0);
    if (!read_message(p, &msg))
        return;
    uint16_t id = msg.command.message_id;
    send_pending(p, id, 1);
    send_final(p, id, 0, NULL, NULL, 0);
    expect_end(p);
}

static void test_out_of_memory(void)
{
    size_t total = 0;
    for (size_t fail_at = 1; fail_at < 400; fail_at++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, fail_at);
        peer p;
        peer_init(&p, script_oom);
        mwl_scu_config cfg;
        test_config(&cfg);
        cfg.mem = &f.mem;
        int sv[2];
        CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        p.fd = sv[1];
        pthread_t thread;
        CHECK_EQ_INT(pthread_create(&thread, NULL, peer_main, &p), 0);
        mwl_conn *conn = NULL;
        CHECK_EQ_INT(mwl_net_conn_from_fd(sv[0], true, NULL, &conn, NULL), MWL_OK);
        mwl_scu *scu = NULL;
        int rc = mwl_scu_new(&cfg, &scu, NULL);
        bool completed = false;
        if (rc == MWL_OK) {
            rc = mwl_scu_associate_conn(scu, conn);
            uint16_t status = 1;
            if (rc == MWL_OK)
                rc = mwl_scu_echo(scu, &status);
            mwl_arena a;
            mwl_arena_init(&a, NULL);
            mwl_scu_find_result res;
            if (rc == MWL_OK)
                rc = mwl_scu_find(scu, make_query(&a, "MR"), 0, NULL, NULL, &res);
            if (rc == MWL_OK)
                rc = mwl_scu_release(scu);
            completed = rc == MWL_OK;
            CHECK(rc == MWL_OK || rc == MWL_E_NOMEM || rc == MWL_E_CLOSED || rc == MWL_E_PROTOCOL);
            mwl_arena_clear(&a);
        } else {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
            mwl_conn_close(conn);
        }
        mwl_scu_free(scu);
        CHECK_EQ_INT(pthread_join(thread, NULL), 0);
        peer_clear(&p);
        if (completed && f.count < fail_at) {
            total = f.count; /* every allocation succeeded: all were covered */
            break;
        }
    }
    CHECK(total > 0);
    printf("out of memory: failed each of %zu allocations in turn\n", total);
}

int main(void)
{
    RUN_TEST(test_config_checks);
    RUN_TEST(test_words);
    RUN_TEST(test_connect_refused);
    RUN_TEST(test_echo_and_rq_contents);
    RUN_TEST(test_rq_contents_and_transient_rejection);
    RUN_TEST(test_rejected);
    RUN_TEST(test_aborted_mid_find);
    RUN_TEST(test_wrong_message_id);
    RUN_TEST(test_unexpected_command);
    RUN_TEST(test_peer_max_pdu_small);
    RUN_TEST(test_slow_callback);
    RUN_TEST(test_cancel);
    RUN_TEST(test_failure_status);
    RUN_TEST(test_dimse_timeout);
    RUN_TEST(test_acse_timeout);
    RUN_TEST(test_context_not_accepted);
    RUN_TEST(test_negotiated_transfer_syntax);
    RUN_TEST(test_peer_closes);
    RUN_TEST(test_callback_abort);
    RUN_TEST(test_invalid_pdu);
    RUN_TEST(test_undecodable_identifier);
    RUN_TEST(test_out_of_memory);
    return check_report("client_scu_test");
}
