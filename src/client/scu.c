/* The blocking SCU driver (STYLE.md §4): every public call runs the same
 * small loop, pump(): write what the upper layer has queued, stop if the
 * call's goal is reached, else read (bounded by the call's deadline and the
 * upper layer's own timer), feed the bytes to the session, and dispatch its
 * events: association results, aborts, and PDVs, which the DIMSE assembler
 * turns into messages for the one outstanding operation.
 *
 * Failure handling has one rule: the first cause recorded in scu->err wins
 * (a timeout that makes us abort is reported as the timeout, not as the
 * "transport closed" that follows), and every call that ends the
 * association goes through teardown(), which sends A-ABORT when the
 * association still needs one and closes the transport.
 *
 * Client states (scu->state):
 *   IDLE         created, nothing sent; mwl_scu_associate* is allowed.
 *   ASSOCIATING  connected or connecting, awaiting A-ASSOCIATE-AC/-RJ.
 *   ESTABLISHED  the upper layer is in Sta6; operations may be sent. At
 *                most one operation is outstanding (scu->op), and only
 *                while a call runs: between calls no response is expected.
 *   RELEASING    A-RELEASE-RQ sent, awaiting A-RELEASE-RP.
 *   CLOSED       the association is over and the transport closed; only
 *                the getters and mwl_scu_free remain. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "client/client.h"
#include "dicom/dict.h"
#include "ul/ul.h"

enum {
    READ_BUFFER = 16384,
    ABORT_WRITE_MS = 1000, /* most spent writing a final A-ABORT */
    ABORT_LINGER_MS = 500, /* most spent waiting for the peer to close after it */
    MAX_TIMEOUT_MS = 86400000,
    MIN_PDU_LENGTH = 4096, /* as DCMTK's lower bound: below it headers dominate */
    MAX_PDU_LENGTH = 16777216,
    DEFAULT_MAX_RESPONSE = 16 * 1024 * 1024
};

typedef enum scu_state { SCU_IDLE, SCU_ASSOCIATING, SCU_ESTABLISHED, SCU_RELEASING, SCU_CLOSED } scu_state;

typedef enum op_kind { OP_NONE, OP_ECHO, OP_FIND } op_kind;

/* The outstanding request and what its responses must look like. */
typedef struct operation {
    op_kind kind;
    uint16_t message_id;
    uint8_t context_id;
    mwl_ts ts;
    bool done;          /* the final response arrived */
    uint16_t status;    /* C-ECHO: the response's status */
    mwl_scu_find_fn fn; /* C-FIND */
    void *user;
    mwl_scu_find_result *result;
} operation;

struct mwl_scu {
    const mwl_mem *mem;
    char host[MWL_NET_HOST_MAX];
    uint16_t port;
    char calling_ae[MWL_AE_TITLE_MAX + 1];
    char called_ae[MWL_AE_TITLE_MAX + 1];
    int connect_timeout_ms, acse_timeout_ms, dimse_timeout_ms;
    mwl_ts ts[MWL_SCU_TS_MAX];
    size_t ts_count;
    uint32_t max_pdu_length;
    mwl_tls *tls;   /* TLS context, NULL = plain TCP */
    bool tls_owned; /* created from the config's files: freed with the scu */

    scu_state state;
    mwl_ul *ul;
    mwl_conn *conn;
    mwl_dimse_assembler assembler;
    mwl_arena rsp_arena; /* one decoded identifier at a time */
    mwl_wbuf command;    /* the request being sent */
    mwl_wbuf dataset;
    uint16_t next_message_id;
    uint64_t deadline; /* of the current wait (mwl_now_ms clock) */

    bool got_ac;       /* A-ASSOCIATE-AC arrived */
    bool released;     /* A-RELEASE-RP arrived */
    bool ended;        /* the session reported MWL_UL_EV_CLOSED */
    bool stop_reading; /* we aborted: nothing more we read matters */

    bool has_info;
    mwl_scu_assoc_info info;
    mwl_scu_error err;
    operation op;

    uint8_t rbuf[READ_BUFFER];
};

/* ======================================================================
 * Words for codes (PS3.8 Tables 9-18, 9-21, 9-26)
 * ====================================================================== */

const char *mwl_scu_rj_result_str(uint8_t result)
{
    switch (result) {
    case MWL_RJ_RESULT_PERMANENT: return "permanent";
    case MWL_RJ_RESULT_TRANSIENT: return "transient";
    default: return "unknown (reserved) result";
    }
}

const char *mwl_scu_rj_source_str(uint8_t source)
{
    switch (source) {
    case MWL_RJ_SOURCE_USER: return "the service user";
    case MWL_RJ_SOURCE_PROVIDER_ACSE: return "the service provider (ACSE)";
    case MWL_RJ_SOURCE_PROVIDER_PRESENTATION: return "the service provider (presentation)";
    default: return "an unknown (reserved) source";
    }
}

const char *mwl_scu_rj_reason_str(uint8_t source, uint8_t reason)
{
    switch (source) {
    case MWL_RJ_SOURCE_USER:
        switch (reason) {
        case MWL_RJ_USER_NO_REASON: return "no reason given";
        case MWL_RJ_USER_APP_CONTEXT_NOT_SUPPORTED: return "application context name not supported";
        case MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED: return "calling AE title not recognized";
        case MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED: return "called AE title not recognized";
        default: break;
        }
        break;
    case MWL_RJ_SOURCE_PROVIDER_ACSE:
        switch (reason) {
        case MWL_RJ_ACSE_NO_REASON: return "no reason given";
        case MWL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED: return "protocol version not supported";
        default: break;
        }
        break;
    case MWL_RJ_SOURCE_PROVIDER_PRESENTATION:
        switch (reason) {
        case MWL_RJ_PRES_TEMPORARY_CONGESTION: return "temporary congestion";
        case MWL_RJ_PRES_LOCAL_LIMIT_EXCEEDED: return "local limit exceeded";
        default: break;
        }
        break;
    default: break;
    }
    return "unknown (reserved) reason";
}

const char *mwl_scu_abort_source_str(uint8_t source)
{
    switch (source) {
    case MWL_ABORT_SOURCE_USER: return "the service user";
    case MWL_ABORT_SOURCE_PROVIDER: return "the service provider";
    default: return "an unknown (reserved) source";
    }
}

const char *mwl_scu_abort_reason_str(uint8_t source, uint8_t reason)
{
    /* PS3.8 Table 9-26: the reason is significant only for source 2. */
    if (source != MWL_ABORT_SOURCE_PROVIDER)
        return "no reason given";
    switch (reason) {
    case MWL_ABORT_REASON_NOT_SPECIFIED: return "reason not specified";
    case MWL_ABORT_UNRECOGNIZED_PDU: return "unrecognized PDU";
    case MWL_ABORT_UNEXPECTED_PDU: return "unexpected PDU";
    case MWL_ABORT_UNRECOGNIZED_PDU_PARAMETER: return "unrecognized PDU parameter";
    case MWL_ABORT_UNEXPECTED_PDU_PARAMETER: return "unexpected PDU parameter";
    case MWL_ABORT_INVALID_PDU_PARAMETER_VALUE: return "invalid PDU parameter value";
    default: return "unknown (reserved) reason";
    }
}

const char *mwl_scu_pctx_result_str(uint8_t result)
{
    switch (result) {
    case MWL_PCTX_ACCEPTANCE: return "accepted";
    case MWL_PCTX_USER_REJECTION: return "rejected by the user";
    case MWL_PCTX_NO_REASON: return "rejected, no reason given";
    case MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED: return "abstract syntax not supported";
    case MWL_PCTX_TRANSFER_SYNTAXES_NOT_SUPPORTED: return "none of the transfer syntaxes supported";
    default: return "unknown (reserved) result";
    }
}

const char *mwl_scu_ts_name(mwl_ts ts)
{
    const char *uid = (unsigned)ts < MWL_TS_COUNT ? mwl_ts_uid(ts) : NULL;
    const mwl_uid_entry *e = uid ? mwl_uid_find(uid) : NULL;
    return e ? e->name : "unknown transfer syntax";
}

/* ======================================================================
 * Configuration and lifetime
 * ====================================================================== */

void mwl_scu_config_init(mwl_scu_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->calling_ae = MWL_SCU_DEFAULT_CALLING_AE;
    cfg->called_ae = MWL_SCU_DEFAULT_CALLED_AE;
    cfg->connect_timeout_ms = 10000;
    cfg->acse_timeout_ms = 30000;
    cfg->dimse_timeout_ms = 30000;
    cfg->transfer_syntaxes[0] = MWL_TS_EXPLICIT_LE;
    cfg->transfer_syntaxes[1] = MWL_TS_IMPLICIT_LE;
    cfg->transfer_syntax_count = 2;
    cfg->max_pdu_length = 16384;
    cfg->max_response_length = 0;
    cfg->mem = NULL;
}

/* PS3.5 Table 6.2-1 "AE": default repertoire without '\' and control
 * characters, at most 16 bytes; leading and trailing spaces are not
 * significant (PS3.8 §9.3.2), and a title of only spaces is not allowed. */
static int copy_ae(const char *what, const char *in, char out[MWL_AE_TITLE_MAX + 1], mwl_diag *diag)
{
    if (!in) {
        mwl_diag_set(diag, 0, 0, "%s AE title missing", what);
        return MWL_E_INVALID;
    }
    size_t start = 0, end = strlen(in);
    while (start < end && in[start] == ' ')
        start++;
    while (end > start && in[end - 1] == ' ')
        end--;
    if (end == start || end - start > MWL_AE_TITLE_MAX) {
        mwl_diag_set(diag, 0, 0, "%s AE title must have 1 to 16 characters", what);
        return MWL_E_INVALID;
    }
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c > 0x7E || c == '\\') {
            mwl_diag_set(diag, 0, 0, "%s AE title has a character AE does not allow (0x%02X)", what, c);
            return MWL_E_INVALID;
        }
    }
    memcpy(out, in + start, end - start);
    out[end - start] = '\0';
    return MWL_OK;
}

static int check_timeout(const char *what, int ms, mwl_diag *diag)
{
    if (ms < 1 || ms > MAX_TIMEOUT_MS) {
        mwl_diag_set(diag, 0, 0, "%s timeout must be 1 to %d ms", what, MAX_TIMEOUT_MS);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

static int check_config(const mwl_scu_config *cfg, mwl_scu *scu, mwl_diag *diag)
{
    int rc;
    if ((rc = copy_ae("calling", cfg->calling_ae, scu->calling_ae, diag)) != MWL_OK ||
        (rc = copy_ae("called", cfg->called_ae, scu->called_ae, diag)) != MWL_OK ||
        (rc = check_timeout("connect", cfg->connect_timeout_ms, diag)) != MWL_OK ||
        (rc = check_timeout("ACSE", cfg->acse_timeout_ms, diag)) != MWL_OK ||
        (rc = check_timeout("DIMSE", cfg->dimse_timeout_ms, diag)) != MWL_OK)
        return rc;
    if (cfg->host) {
        size_t n = strlen(cfg->host);
        if (n >= sizeof scu->host) {
            mwl_diag_set(diag, 0, 0, "host name longer than %zu characters", sizeof scu->host - 1);
            return MWL_E_INVALID;
        }
        memcpy(scu->host, cfg->host, n + 1);
    }
    if (cfg->transfer_syntax_count < 1 || cfg->transfer_syntax_count > MWL_SCU_TS_MAX) {
        mwl_diag_set(diag, 0, 0, "1 to %d transfer syntaxes must be proposed", MWL_SCU_TS_MAX);
        return MWL_E_INVALID;
    }
    for (size_t i = 0; i < cfg->transfer_syntax_count; i++) {
        if ((unsigned)cfg->transfer_syntaxes[i] >= MWL_TS_COUNT) {
            mwl_diag_set(diag, 0, 0, "unknown transfer syntax %d", (int)cfg->transfer_syntaxes[i]);
            return MWL_E_INVALID;
        }
        for (size_t j = 0; j < i; j++) {
            if (cfg->transfer_syntaxes[j] == cfg->transfer_syntaxes[i]) {
                mwl_diag_set(diag, 0, 0, "transfer syntax %s proposed twice",
                             mwl_scu_ts_name(cfg->transfer_syntaxes[i]));
                return MWL_E_INVALID;
            }
        }
        scu->ts[i] = cfg->transfer_syntaxes[i];
    }
    scu->ts_count = cfg->transfer_syntax_count;
    if (cfg->max_pdu_length < MIN_PDU_LENGTH || cfg->max_pdu_length > MAX_PDU_LENGTH) {
        mwl_diag_set(diag, 0, 0, "maximum PDU length must be %d to %d", MIN_PDU_LENGTH, MAX_PDU_LENGTH);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

int mwl_scu_new(const mwl_scu_config *cfg, mwl_scu **out, mwl_diag *diag)
{
    if (!out)
        return MWL_E_INVALID;
    *out = NULL;
    if (!cfg) {
        mwl_diag_set(diag, 0, 0, "no configuration");
        return MWL_E_INVALID;
    }
    const mwl_mem *mem = cfg->mem ? cfg->mem : mwl_mem_default();
    mwl_scu *scu = mwl_mem_calloc(mem, 1, sizeof *scu);
    if (!scu)
        return MWL_E_NOMEM;
    int rc = check_config(cfg, scu, diag);
    if (rc != MWL_OK) {
        mwl_mem_free(mem, scu);
        return rc;
    }
    scu->mem = mem;
    scu->port = cfg->port;
    scu->connect_timeout_ms = cfg->connect_timeout_ms;
    scu->acse_timeout_ms = cfg->acse_timeout_ms;
    scu->dimse_timeout_ms = cfg->dimse_timeout_ms;
    scu->max_pdu_length = cfg->max_pdu_length;
    mwl_dimse_limits lim;
    mwl_dimse_limits_init(&lim);
    lim.max_message_length = cfg->max_response_length ? cfg->max_response_length : DEFAULT_MAX_RESPONSE;
    if (lim.max_command_length > lim.max_message_length)
        lim.max_command_length = lim.max_message_length;
    mwl_dimse_assembler_init(&scu->assembler, mem, &lim);
    mwl_arena_init(&scu->rsp_arena, mem);
    mwl_wbuf_init(&scu->command, mem);
    mwl_wbuf_init(&scu->dataset, mem);
    scu->state = SCU_IDLE;
    scu->next_message_id = 1;
    scu->deadline = UINT64_MAX;
    if (cfg->tls_context) {
        scu->tls = cfg->tls_context;
    } else if (cfg->tls) {
        mwl_tls_config tc;
        mwl_tls_config_init(&tc, false);
        tc.ca_file = cfg->tls_ca_file;
        tc.cert_file = cfg->tls_cert_file;
        tc.key_file = cfg->tls_key_file;
        tc.verify_name = !cfg->tls_skip_name_check;
        rc = mwl_tls_new(&tc, mem, &scu->tls, diag);
        if (rc != MWL_OK) {
            mwl_scu_free(scu);
            return rc;
        }
        scu->tls_owned = true;
    }
    *out = scu;
    return MWL_OK;
}

/* ======================================================================
 * Failures, output, teardown
 * ====================================================================== */

static void clear_error(mwl_scu *scu)
{
    memset(&scu->err, 0, sizeof scu->err);
}

/* Records the cause of a failure; the first one recorded wins. Returns
 * the status, so callers can `return fail(...)`. */
static int fail(mwl_scu *scu, mwl_scu_failure failure, int status, const char *fmt, ...) MWL_PRINTF(4, 5);
static int fail(mwl_scu *scu, mwl_scu_failure failure, int status, const char *fmt, ...)
{
    if (scu->err.failure != MWL_SCU_FAIL_NONE)
        return scu->err.status;
    scu->err.failure = failure;
    scu->err.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(scu->err.msg, sizeof scu->err.msg, fmt, ap);
    va_end(ap);
    mwl_log(MWL_LOG_DEBUG, "scu: %s", scu->err.msg);
    return status;
}

static const char *peer_name(const mwl_scu *scu)
{
    return scu->conn ? mwl_conn_peer(scu->conn) : "the peer";
}

static uint64_t deadline_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Writes everything the session has queued, within `deadline`. */
static int flush(mwl_scu *scu, uint64_t deadline)
{
    const uint8_t *p;
    size_t len = mwl_ul_pending_output(scu->ul, &p);
    if (len == 0 || !scu->conn)
        return MWL_OK;
    mwl_iov iov = {p, len};
    size_t written = 0;
    int rc = mwl_conn_write_all_deadline(scu->conn, &iov, 1, deadline, &written);
    mwl_ul_output_written(scu->ul, written);
    switch (rc) {
    case MWL_OK: return MWL_OK;
    case MWL_E_TIMEOUT:
        return fail(scu, MWL_SCU_FAIL_TIMEOUT, rc, "timed out sending to %s: it does not read",
                    peer_name(scu));
    case MWL_E_CLOSED: return fail(scu, MWL_SCU_FAIL_CLOSED, rc, "%s closed the connection", peer_name(scu));
    default:
        return fail(scu, MWL_SCU_FAIL_CLOSED, rc, "sending to %s failed: %s", peer_name(scu),
                    strerror(mwl_conn_errno(scu->conn)));
    }
}

/* Throws away the session's events: used once the outcome is decided. */
static void discard_events(mwl_scu *scu)
{
    mwl_ul_event ev;
    /* At most a handful are ever queued (ul.c queues two per transition). */
    for (int i = 0; i < 64 && mwl_ul_next_event(scu->ul, &ev) == MWL_OK; i++)
        ;
}

/* Closes the transport. With a linger, first half-closes and reads until
 * the peer closes too (or the linger passes), so an A-ABORT we just sent
 * is not destroyed by the TCP reset that closing with unread input causes
 * (PS3.8 §9.1.4: the peer closes after an A-ABORT). */
static void close_transport(mwl_scu *scu, int linger_ms)
{
    if (scu->conn) {
        if (linger_ms > 0 && mwl_conn_shutdown(scu->conn) == MWL_OK) {
            uint64_t until = mwl_deadline_in(linger_ms);
            size_t n;
            /* Each read takes at least one byte or ends the wait. */
            while (mwl_conn_read_deadline(scu->conn, scu->rbuf, sizeof scu->rbuf, &n, until) == MWL_OK)
                ;
        }
        mwl_conn_close(scu->conn);
        scu->conn = NULL;
    }
    if (scu->ul && mwl_ul_get_state(scu->ul) != MWL_UL_STA1) {
        /* Evt17: the session goes to Sta1 (its events tell nothing new,
         * and a fatal status leaves nothing to clean up but the free). */
        if (mwl_ul_transport_closed(scu->ul, mwl_now_ms()) == MWL_OK)
            discard_events(scu);
    }
    scu->state = SCU_CLOSED;
    scu->op.kind = OP_NONE;
}

/* True in the states where PS3.8 allows an A-ABORT request that sends a
 * PDU (Sta5..Sta12; Table 9-10 Evt15). */
static bool can_send_abort(const mwl_scu *scu)
{
    mwl_ul_state st = scu->ul ? mwl_ul_get_state(scu->ul) : MWL_UL_STA1;
    return scu->conn && st >= MWL_UL_STA5 && st <= MWL_UL_STA12;
}

/* A-ABORT from us (source 0, service user), queued now, written later. */
static void request_abort(mwl_scu *scu)
{
    if (can_send_abort(scu) && mwl_ul_abort(scu->ul, mwl_now_ms()) == MWL_OK) {
        scu->err.abort_source = MWL_ABORT_SOURCE_USER;
        scu->err.abort_reason = MWL_ABORT_REASON_NOT_SPECIFIED;
    }
    scu->stop_reading = true;
}

/* Ends the association: A-ABORT if it still needs one (the session itself
 * may have queued one for an invalid PDU), written within ABORT_WRITE_MS,
 * then close after `linger_ms` at most. */
static void abort_and_close(mwl_scu *scu, int linger_ms)
{
    if (scu->state == SCU_CLOSED)
        return;
    if (scu->ul && scu->conn) {
        bool had_failure = scu->err.failure != MWL_SCU_FAIL_NONE;
        request_abort(scu);
        (void)flush(scu, mwl_deadline_in(ABORT_WRITE_MS));
        if (!had_failure)
            clear_error(scu); /* failing to write the abort is not news */
    }
    close_transport(scu, linger_ms);
}

/* After a failure. A peer that stalled, closed, aborted or rejected gets
 * no linger: it will not close for us, or has already, and a timeout
 * has already used up the caller's time. */
static void teardown(mwl_scu *scu)
{
    mwl_scu_failure f = scu->err.failure;
    bool gone = f == MWL_SCU_FAIL_TIMEOUT || f == MWL_SCU_FAIL_CLOSED || f == MWL_SCU_FAIL_ABORTED ||
                f == MWL_SCU_FAIL_REJECTED;
    abort_and_close(scu, gone ? 0 : ABORT_LINGER_MS);
}

void mwl_scu_free(mwl_scu *scu)
{
    if (!scu)
        return;
    abort_and_close(scu, 0); /* as documented: no waiting for the peer */
    mwl_ul_free(scu->ul);
    mwl_dimse_assembler_clear(&scu->assembler);
    mwl_arena_clear(&scu->rsp_arena);
    mwl_wbuf_clear(&scu->command);
    mwl_wbuf_clear(&scu->dataset);
    if (scu->tls_owned)
        mwl_tls_free(scu->tls);
    mwl_mem_free(scu->mem, scu);
}

/* ======================================================================
 * Incoming: events and DIMSE messages
 * ====================================================================== */

static int protocol_abort(mwl_scu *scu, const char *fmt, ...) MWL_PRINTF(2, 3);
static int protocol_abort(mwl_scu *scu, const char *fmt, ...)
{
    char text[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    int rc = fail(scu, MWL_SCU_FAIL_PROTOCOL, MWL_E_PROTOCOL, "%s; association aborted", text);
    request_abort(scu);
    return rc;
}

/* Sends one message: the command set and, if any, the data set, as
 * P-DATA-TF PDUs no longer than the peer accepts (PS3.8 D.1, Annex E),
 * each written before the next is built so output stays one PDU deep. */
static int send_message(mwl_scu *scu, uint8_t context_id, const uint8_t *dataset, size_t dataset_length)
{
    mwl_dimse_fragmenter fr;
    int rc = mwl_dimse_fragmenter_init(&fr, context_id, scu->command.data, scu->command.len, dataset,
                                       dataset_length, mwl_ul_peer_max_pdu_length(scu->ul));
    if (rc == MWL_E_UNSUPPORTED)
        return protocol_abort(scu, "%s's maximum PDU length %u is too small to send anything", peer_name(scu),
                              (unsigned)mwl_ul_peer_max_pdu_length(scu->ul));
    if (rc != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot fragment the message: %s", mwl_status_str(rc));
    mwl_pdv pdvs[2];
    size_t count;
    /* Each round produces one PDU's worth of the message, so it ends. */
    while (mwl_dimse_fragmenter_next(&fr, pdvs, &count)) {
        rc = mwl_ul_send_p_data(scu->ul, pdvs, count, mwl_now_ms());
        if (rc != MWL_OK)
            return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot queue P-DATA-TF: %s", mwl_status_str(rc));
        if ((rc = flush(scu, scu->deadline)) != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

static void copy_final_fields(mwl_scu_find_result *res, const mwl_dimse_command *c)
{
    if (c->present & MWL_DIMSE_HAS_ERROR_COMMENT) {
        res->has_error_comment = true;
        snprintf(res->error_comment, sizeof res->error_comment, "%s", c->error_comment);
    }
    if (c->present & MWL_DIMSE_HAS_OFFENDING_ELEMENT) {
        res->offending_element_count = c->offending_element_count;
        for (size_t i = 0; i < c->offending_element_count && i < MWL_SCU_OFFENDING_MAX; i++)
            res->offending_elements[i] = c->offending_elements[i];
    }
    if (c->present & MWL_DIMSE_HAS_ERROR_ID) {
        res->has_error_id = true;
        res->error_id = c->error_id;
    }
}

static int send_cancel(mwl_scu *scu)
{
    mwl_wbuf_clear(&scu->command);
    mwl_wbuf_init(&scu->command, scu->mem);
    int rc = mwl_dimse_encode_cancel_rq(scu->op.message_id, &scu->command);
    if (rc != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot encode C-CANCEL-RQ: %s", mwl_status_str(rc));
    mwl_log(MWL_LOG_DEBUG, "scu: C-CANCEL-RQ for Message ID %u", (unsigned)scu->op.message_id);
    scu->op.result->cancel_sent = true;
    return send_message(scu, scu->op.context_id, NULL, 0);
}

/* One Pending C-FIND-RSP: decode its identifier, hand it to the caller. */
static int on_find_pending(mwl_scu *scu, const mwl_dimse_msg *msg)
{
    operation *op = &scu->op;
    mwl_scu_find_result *res = op->result;
    if (res->cancel_sent) {
        res->discarded_count++; /* already in flight when the cancel went out (PS3.7 §9.1.2.2) */
        return MWL_OK;
    }
    mwl_scu_find_rsp rsp;
    memset(&rsp, 0, sizeof rsp);
    rsp.message_id = op->message_id;
    rsp.status = msg->command.status;
    rsp.index = res->pending_count;
    rsp.ts = op->ts;
    rsp.raw = msg->dataset;
    rsp.raw_length = msg->dataset_length;
    rsp.decode_error = "";
    mwl_diag diag;
    mwl_diag_clear(&diag);
    mwl_ds *ds = NULL;
    if (!msg->has_dataset) {
        rsp.decode_status = MWL_E_NOTFOUND;
        rsp.decode_error = "Pending response without an identifier";
    } else {
        rsp.decode_status =
            mwl_ds_decode(msg->dataset, msg->dataset_length, op->ts, &scu->rsp_arena, NULL, &ds, &diag);
        if (rsp.decode_status == MWL_OK)
            rsp.identifier = ds;
        else if (mwl_is_fatal(rsp.decode_status))
            return fail(scu, MWL_SCU_FAIL_LOCAL, rsp.decode_status, "out of memory decoding a response");
        else
            rsp.decode_error = diag.msg;
    }
    int verdict = op->fn ? op->fn(op->user, &rsp) : MWL_SCU_FIND_CONTINUE;
    /* The time the caller spent is not the peer's: the DIMSE timeout
     * counts from here for the next response. */
    scu->deadline = mwl_deadline_in(scu->dimse_timeout_ms);
    res->pending_count++;
    mwl_arena_clear(&scu->rsp_arena);
    if (verdict == MWL_SCU_FIND_CONTINUE)
        return MWL_OK;
    if (verdict == MWL_SCU_FIND_CANCEL)
        return send_cancel(scu);
    int rc =
        fail(scu, MWL_SCU_FAIL_CANCELLED, MWL_E_CANCELLED,
             "C-FIND aborted by the caller after %zu responses; association aborted", res->pending_count);
    request_abort(scu);
    return rc;
}

/* A whole DIMSE message from the peer. Only a response to the outstanding
 * request, on its context, with its Message ID, is acceptable (PS3.7
 * §9.1.2.1, §9.1.5.1); anything else means the peer and we disagree about
 * the state of the association, and nothing after it can be trusted. */
static int on_message(mwl_scu *scu, const mwl_dimse_msg *msg)
{
    const mwl_dimse_command *c = &msg->command;
    operation *op = &scu->op;
    if (scu->state == SCU_RELEASING) {
        /* P-DATA may still arrive after our A-RELEASE-RQ (PS3.8 AR-6); no
         * request is outstanding, so there is nothing to do with it. */
        mwl_log(MWL_LOG_DEBUG, "scu: ignoring %s during release", mwl_dimse_command_name(c->command_field));
        return MWL_OK;
    }
    if (op->kind == OP_NONE || op->done)
        return protocol_abort(scu, "unexpected %s from %s: no request outstanding",
                              mwl_dimse_command_name(c->command_field), peer_name(scu));
    uint16_t expected = op->kind == OP_ECHO ? MWL_DIMSE_C_ECHO_RSP : MWL_DIMSE_C_FIND_RSP;
    if (c->command_field != expected)
        return protocol_abort(scu, "expected %s, got %s (0x%04X)", mwl_dimse_command_name(expected),
                              mwl_dimse_command_name(c->command_field), (unsigned)c->command_field);
    if (msg->context_id != op->context_id)
        return protocol_abort(scu, "%s on presentation context %u, expected %u",
                              mwl_dimse_command_name(expected), (unsigned)msg->context_id,
                              (unsigned)op->context_id);
    if (c->message_id_being_responded_to != op->message_id)
        return protocol_abort(scu, "%s answers Message ID %u, expected %u", mwl_dimse_command_name(expected),
                              (unsigned)c->message_id_being_responded_to, (unsigned)op->message_id);
    scu->deadline = mwl_deadline_in(scu->dimse_timeout_ms); /* per response */
    mwl_log(MWL_LOG_DEBUG, "scu: %s status 0x%04X", mwl_dimse_command_name(expected), (unsigned)c->status);
    if (op->kind == OP_ECHO) {
        op->status = c->status;
        op->done = true;
        return MWL_OK;
    }
    if (mwl_dimse_status_is_pending(c->status))
        return on_find_pending(scu, msg);
    /* Final: any identifier with it is not permitted (PS3.7 §9.1.2.1.5),
     * and is ignored rather than fatal, since the status says it all. */
    op->result->status = c->status;
    copy_final_fields(op->result, c);
    op->done = true;
    return MWL_OK;
}

static int on_p_data(mwl_scu *scu, const mwl_ul_event *ev)
{
    for (size_t i = 0; i < ev->u.p_data.count && !scu->stop_reading; i++) {
        mwl_dimse_msg msg;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_dimse_assembler_feed(&scu->assembler, &ev->u.p_data.pdvs[i], &msg, &diag);
        if (rc == MWL_AGAIN)
            continue;
        if (rc == MWL_OK) {
            rc = on_message(scu, &msg);
            if (rc != MWL_OK)
                return rc;
            continue;
        }
        if (mwl_is_fatal(rc))
            return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "out of memory receiving a message");
        return protocol_abort(scu, "invalid DIMSE message from %s: %s", peer_name(scu),
                              diag.msg[0] ? diag.msg : mwl_status_str(rc));
    }
    return MWL_OK;
}

static int on_aborted(mwl_scu *scu, const mwl_ul_event *ev)
{
    uint8_t source = ev->u.aborted.source, reason = ev->u.aborted.reason;
    switch (ev->u.aborted.origin) {
    case MWL_UL_ABORT_PEER:
        if (scu->err.failure == MWL_SCU_FAIL_NONE) {
            scu->err.abort_source = source;
            scu->err.abort_reason = reason;
        }
        return fail(scu, MWL_SCU_FAIL_ABORTED, MWL_E_CLOSED,
                    "association aborted by %s (A-ABORT from %s: %s) [%u/%u]", peer_name(scu),
                    mwl_scu_abort_source_str(source), mwl_scu_abort_reason_str(source, reason),
                    (unsigned)source, (unsigned)reason);
    case MWL_UL_ABORT_PROTOCOL:
        if (scu->err.failure == MWL_SCU_FAIL_NONE) {
            scu->err.abort_source = source;
            scu->err.abort_reason = reason;
        }
        scu->stop_reading = true;
        return fail(scu, MWL_SCU_FAIL_PROTOCOL, MWL_E_PROTOCOL,
                    "invalid PDU from %s (%s); association aborted (%s)", peer_name(scu),
                    ev->u.aborted.detail, mwl_scu_abort_reason_str(source, reason));
    case MWL_UL_ABORT_TRANSPORT:
        return fail(scu, MWL_SCU_FAIL_CLOSED, MWL_E_CLOSED,
                    "%s closed the connection without A-ABORT or release", peer_name(scu));
    case MWL_UL_ABORT_TIMEOUT:
        return fail(scu, MWL_SCU_FAIL_TIMEOUT, MWL_E_TIMEOUT, "association with %s timed out",
                    peer_name(scu));
    }
    return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INTERNAL, "unknown abort origin");
}

static int on_event(mwl_scu *scu, const mwl_ul_event *ev)
{
    switch (ev->type) {
    case MWL_UL_EV_ASSOCIATE_AC: scu->got_ac = true; return MWL_OK;
    case MWL_UL_EV_ASSOCIATE_RJ: {
        mwl_assoc_rj rj = ev->u.associate_rj;
        if (scu->err.failure == MWL_SCU_FAIL_NONE)
            scu->err.rj = rj;
        return fail(scu, MWL_SCU_FAIL_REJECTED, MWL_E_CLOSED,
                    "association rejected (%s) by %s: %s [%u/%u/%u]", mwl_scu_rj_result_str(rj.result),
                    mwl_scu_rj_source_str(rj.source), mwl_scu_rj_reason_str(rj.source, rj.reason),
                    (unsigned)rj.result, (unsigned)rj.source, (unsigned)rj.reason);
    }
    case MWL_UL_EV_P_DATA: return on_p_data(scu, ev);
    case MWL_UL_EV_RELEASE_RQ: {
        /* Our own release crossed the peer's (PS3.8 §7.2.2.7): as the
         * requestor we answer at once (Sta9 -> Sta11) and await its RP. */
        if (ev->u.release_rq.collision) {
            int rc = mwl_ul_release_response(scu->ul, mwl_now_ms());
            return rc == MWL_OK
                       ? MWL_OK
                       : fail(scu, MWL_SCU_FAIL_LOCAL, rc, "release collision: %s", mwl_status_str(rc));
        }
        /* The acceptor wants out. Agree (anything else would be an abort
         * anyway); whatever was outstanding will never be answered. */
        int rc = mwl_ul_release_response(scu->ul, mwl_now_ms());
        if (rc != MWL_OK)
            return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot answer A-RELEASE-RQ: %s", mwl_status_str(rc));
        scu->stop_reading = true;
        return fail(scu, MWL_SCU_FAIL_CLOSED, MWL_E_CLOSED, "%s released the association%s", peer_name(scu),
                    scu->op.kind != OP_NONE && !scu->op.done ? " before answering" : "");
    }
    case MWL_UL_EV_RELEASE_RP: scu->released = true; return MWL_OK;
    case MWL_UL_EV_ABORTED: return on_aborted(scu, ev);
    case MWL_UL_EV_CLOSED: scu->ended = true; return MWL_OK;
    case MWL_UL_EV_ASSOCIATE_RQ: break; /* acceptors only */
    }
    return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INTERNAL, "unexpected upper layer event %d", (int)ev->type);
}

/* Handles every queued event. A failure recorded by a handler does not
 * stop the draining: later events (CLOSED after ABORTED) still matter. */
static int drain(mwl_scu *scu)
{
    mwl_ul_event ev;
    /* The session queues at most two events per PDU or primitive. */
    for (int i = 0; i < 64; i++) {
        int rc = mwl_ul_next_event(scu->ul, &ev);
        if (rc == MWL_AGAIN)
            return MWL_OK;
        if (rc != MWL_OK)
            return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "upper layer failed: %s", mwl_status_str(rc));
        rc = on_event(scu, &ev);
        if (rc != MWL_OK && mwl_is_fatal(rc))
            return rc;
    }
    return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INTERNAL, "upper layer event queue does not drain");
}

/* Feeds what was read; the session takes at most one PDU per call and its
 * events must be handled before the next (their pointers die then). */
static int feed(mwl_scu *scu, const uint8_t *p, size_t n)
{
    while (n > 0 && !scu->stop_reading) {
        size_t used = 0;
        int rc = mwl_ul_feed(scu->ul, p, n, &used, mwl_now_ms());
        if (rc == MWL_E_CLOSED)
            return MWL_OK; /* the session is done; the rest does not matter */
        if (rc != MWL_OK)
            return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "upper layer failed: %s", mwl_status_str(rc));
        if (used == 0 || used > n)
            return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INTERNAL, "upper layer consumed no input");
        p += used;
        n -= used;
        if ((rc = drain(scu)) != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

typedef bool (*goal_fn)(const mwl_scu *scu);

static bool goal_associated(const mwl_scu *scu)
{
    return scu->got_ac;
}
static bool goal_response(const mwl_scu *scu)
{
    return scu->op.done;
}
static bool goal_released(const mwl_scu *scu)
{
    return scu->released;
}

/* The loop of every call: runs until `goal` holds, a failure is recorded,
 * or scu->deadline passes. Each round writes, then reads at least one byte,
 * fires a session timer, or reaches a deadline, so it ends by the
 * deadline at the latest. `what` names the awaited answer for messages. */
static int pump(mwl_scu *scu, goal_fn goal, const char *what, int timeout_ms)
{
    for (;;) {
        int rc = flush(scu, scu->deadline);
        if (rc != MWL_OK)
            return rc;
        if (scu->err.failure != MWL_SCU_FAIL_NONE)
            return scu->err.status;
        if (goal(scu))
            return MWL_OK;
        if (scu->ended || scu->stop_reading || !scu->conn)
            return fail(scu, MWL_SCU_FAIL_CLOSED, MWL_E_CLOSED, "association with %s ended while awaiting %s",
                        peer_name(scu), what);
        uint64_t now = mwl_now_ms();
        uint64_t ul_deadline = mwl_ul_deadline(scu->ul);
        if (now >= ul_deadline) {
            if ((rc = mwl_ul_timer(scu->ul, now)) != MWL_OK)
                return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "upper layer failed: %s", mwl_status_str(rc));
            if ((rc = drain(scu)) != MWL_OK)
                return rc;
            continue;
        }
        if (now >= scu->deadline)
            return fail(scu, MWL_SCU_FAIL_TIMEOUT, MWL_E_TIMEOUT, "no %s from %s within %d ms", what,
                        peer_name(scu), timeout_ms);
        size_t n = 0;
        rc = mwl_conn_read_deadline(scu->conn, scu->rbuf, sizeof scu->rbuf, &n,
                                    deadline_min(scu->deadline, ul_deadline));
        if (rc == MWL_E_TIMEOUT)
            continue; /* the checks above say which deadline it was */
        if (rc == MWL_E_CLOSED || rc == MWL_E_IO) {
            if (rc == MWL_E_IO)
                (void)fail(scu, MWL_SCU_FAIL_CLOSED, rc, "connection to %s failed: %s", peer_name(scu),
                           strerror(mwl_conn_errno(scu->conn)));
            /* Evt17: reported as MWL_UL_EV_ABORTED (transport) unless the
             * association had already ended, e.g. after A-RELEASE-RP. */
            if (mwl_ul_get_state(scu->ul) != MWL_UL_STA1 &&
                (rc = mwl_ul_transport_closed(scu->ul, now)) != MWL_OK)
                return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "upper layer failed: %s", mwl_status_str(rc));
            if ((rc = drain(scu)) != MWL_OK)
                return rc;
            mwl_conn_close(scu->conn);
            scu->conn = NULL;
            continue;
        }
        if (rc != MWL_OK)
            return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "read failed: %s", mwl_status_str(rc));
        if ((rc = feed(scu, scu->rbuf, n)) != MWL_OK)
            return rc;
    }
}

/* ======================================================================
 * Association
 * ====================================================================== */

static int build_session(mwl_scu *scu)
{
    mwl_ul_config cfg;
    mwl_ul_config_init(&cfg, MWL_UL_REQUESTOR);
    cfg.mem = scu->mem;
    cfg.max_pdu_length = scu->max_pdu_length;
    /* ARTIM only runs in Sta13 here, after we aborted; we close ourselves
     * then, so it only matters if that close were skipped. */
    cfg.artim_timeout_ms = (uint64_t)scu->acse_timeout_ms;
    int rc = mwl_ul_new(&cfg, &scu->ul);
    if (rc != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot create the association: %s", mwl_status_str(rc));

    const char *ts[MWL_SCU_TS_MAX];
    for (size_t i = 0; i < scu->ts_count; i++)
        ts[i] = mwl_ts_uid(scu->ts[i]);
    /* PS3.8 §9.3.2.2: one context per abstract syntax, each offering every
     * transfer syntax we can encode, in our order of preference. */
    mwl_pctx_rq contexts[2] = {
        {MWL_SCU_CONTEXT_VERIFICATION, MWL_UID_Verification, ts, scu->ts_count},
        {MWL_SCU_CONTEXT_FIND, MWL_UID_ModalityWorklistInformationModelFind, ts, scu->ts_count},
    };
    mwl_assoc_rq rq;
    memset(&rq, 0, sizeof rq);
    rq.protocol_version = 1;
    if ((rc = mwl_assoc_rq_set_titles(&rq, scu->called_ae, scu->calling_ae)) != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "bad AE titles");
    rq.application_context = MWL_APPLICATION_CONTEXT_NAME;
    rq.contexts = contexts;
    rq.context_count = 2;
    rq.user_info.max_length = scu->max_pdu_length; /* the session writes its own, the same */
    rq.user_info.implementation_class_uid = MWL_IMPLEMENTATION_CLASS_UID;
    rq.user_info.implementation_version_name = MWL_IMPLEMENTATION_VERSION_NAME;
    rc = mwl_ul_associate(scu->ul, &rq, mwl_now_ms());
    if (rc != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot build the A-ASSOCIATE-RQ: %s", mwl_status_str(rc));
    return MWL_OK;
}

static void record_context(mwl_scu *scu, uint8_t id, bool *accepted, uint8_t *result, mwl_ts *ts)
{
    const mwl_assoc_ac *ac = mwl_ul_associate_ac(scu->ul);
    *accepted = false;
    *result = MWL_PCTX_NO_REASON; /* if the peer did not answer it at all */
    *ts = scu->ts[0];
    for (size_t i = 0; ac && i < ac->context_count; i++)
        if (ac->contexts[i].id == id)
            *result = ac->contexts[i].result;
    const char *uid;
    if (mwl_ul_context(scu->ul, id, NULL, &uid) == MWL_OK && mwl_ts_from_uid(uid, strlen(uid), ts) == MWL_OK)
        *accepted = true; /* the session checked it is one we proposed */
}

static int finish_association(mwl_scu *scu)
{
    const mwl_assoc_ac *ac = mwl_ul_associate_ac(scu->ul);
    if (!ac)
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INTERNAL, "A-ASSOCIATE-AC missing");
    /* PS3.8 §7.1.1.2: an acceptor may answer with another application
     * context name; we know only DICOM's, so we must abort. */
    if (strcmp(ac->application_context, MWL_APPLICATION_CONTEXT_NAME) != 0)
        return protocol_abort(scu, "%s answered with application context %.64s, not DICOM's", peer_name(scu),
                              ac->application_context);
    mwl_scu_assoc_info *info = &scu->info;
    info->peer_max_pdu_length = mwl_ul_peer_max_pdu_length(scu->ul);
    info->peer_implementation_class_uid = ac->user_info.implementation_class_uid;
    info->peer_implementation_version_name = ac->user_info.implementation_version_name;
    record_context(scu, MWL_SCU_CONTEXT_VERIFICATION, &info->verification_accepted,
                   &info->verification_result, &info->verification_ts);
    record_context(scu, MWL_SCU_CONTEXT_FIND, &info->find_accepted, &info->find_result, &info->find_ts);
    info->tls_subject = scu->tls ? mwl_conn_peer_subject(scu->conn) : NULL;
    info->tls_resumed = scu->tls && mwl_tls_session_reused(scu->conn);
    scu->has_info = true;
    scu->state = SCU_ESTABLISHED;
    mwl_log(MWL_LOG_DEBUG, "scu: associated with %s (max PDU %u, Verification %s, MWL FIND %s)",
            peer_name(scu), (unsigned)info->peer_max_pdu_length,
            mwl_scu_pctx_result_str(info->verification_result), mwl_scu_pctx_result_str(info->find_result));
    return MWL_OK;
}

static int associate(mwl_scu *scu, mwl_conn *conn)
{
    clear_error(scu);
    if (scu->state != SCU_IDLE) {
        mwl_conn_close(conn);
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID,
                    "mwl_scu_associate: an mwl_scu associates only once");
    }
    scu->state = SCU_ASSOCIATING;
    int rc = build_session(scu);
    if (rc != MWL_OK) {
        mwl_conn_close(conn);
        scu->state = SCU_CLOSED;
        return rc;
    }
    if (!conn) {
        mwl_diag diag;
        mwl_diag_clear(&diag);
        rc = mwl_net_connect(scu->host, scu->port, scu->connect_timeout_ms, scu->mem, &conn, &diag);
        if (rc != MWL_OK) {
            scu->state = SCU_CLOSED;
            if (mwl_is_fatal(rc))
                return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot connect: out of memory");
            /* net's message names the address again ("connect to a:p: why");
             * keep only the why after our own "cannot connect to". */
            const char *why = diag.msg[0] ? diag.msg : mwl_status_str(rc);
            const char *colon = strncmp(why, "connect to ", 11) == 0 ? strstr(why, ": ") : NULL;
            return fail(scu, MWL_SCU_FAIL_CONNECT, rc, "cannot connect to %s port %u: %s", scu->host,
                        (unsigned)scu->port, colon ? colon + 2 : why);
        }
    }
    if (scu->tls) {
        /* TLS first (DICOM has no STARTTLS): the handshake within the
         * connect timeout, then the UL inside it unchanged. */
        mwl_diag diag;
        mwl_diag_clear(&diag);
        mwl_conn *tls = NULL;
        rc = mwl_tls_wrap(scu->tls, conn, scu->host[0] ? scu->host : NULL, &tls, &diag); /* takes conn */
        if (rc == MWL_OK)
            rc = mwl_tls_handshake(tls, mwl_deadline_in(scu->connect_timeout_ms), &diag);
        if (rc != MWL_OK) {
            mwl_conn_close(tls);
            scu->state = SCU_CLOSED;
            return fail(scu, rc == MWL_E_TIMEOUT ? MWL_SCU_FAIL_TIMEOUT : MWL_SCU_FAIL_CONNECT, rc,
                        "TLS with %s port %u failed: %s", scu->host[0] ? scu->host : "the peer",
                        (unsigned)scu->port, diag.msg[0] ? diag.msg : mwl_status_str(rc));
        }
        conn = tls;
        mwl_log(MWL_LOG_DEBUG, "scu: TLS with %s (%s)%s", mwl_conn_peer(conn), mwl_conn_peer_subject(conn),
                mwl_tls_session_reused(conn) ? ", session resumed" : "");
    }
    scu->conn = conn;
    mwl_log(MWL_LOG_DEBUG, "scu: connected to %s", mwl_conn_peer(conn));
    scu->deadline = mwl_deadline_in(scu->acse_timeout_ms);
    rc = mwl_ul_transport_connected(scu->ul, mwl_now_ms()); /* Evt2: queues the A-ASSOCIATE-RQ */
    if (rc != MWL_OK)
        rc = fail(scu, MWL_SCU_FAIL_LOCAL, rc, "upper layer failed: %s", mwl_status_str(rc));
    else
        rc = pump(scu, goal_associated, "A-ASSOCIATE-AC", scu->acse_timeout_ms);
    if (rc == MWL_OK)
        rc = finish_association(scu);
    if (rc != MWL_OK)
        teardown(scu);
    return rc;
}

int mwl_scu_associate(mwl_scu *scu)
{
    if (!scu)
        return MWL_E_INVALID;
    if (!scu->host[0] || scu->port == 0) {
        clear_error(scu);
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID, "no host or port configured");
    }
    return associate(scu, NULL);
}

int mwl_scu_associate_conn(mwl_scu *scu, mwl_conn *conn)
{
    if (!scu) {
        mwl_conn_close(conn);
        return MWL_E_INVALID;
    }
    if (!conn || !mwl_conn_is_nonblocking(conn)) {
        mwl_conn_close(conn);
        clear_error(scu);
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID,
                    "mwl_scu_associate_conn needs a non-blocking connection");
    }
    return associate(scu, conn);
}

const mwl_scu_assoc_info *mwl_scu_get_assoc_info(const mwl_scu *scu)
{
    return scu && scu->has_info ? &scu->info : NULL;
}

bool mwl_scu_is_associated(const mwl_scu *scu)
{
    return scu && scu->state == SCU_ESTABLISHED;
}

const mwl_scu_error *mwl_scu_last_error(const mwl_scu *scu)
{
    return scu ? &scu->err : NULL;
}

uint16_t mwl_scu_next_message_id(const mwl_scu *scu)
{
    return scu ? scu->next_message_id : 0;
}

int mwl_scu_release(mwl_scu *scu)
{
    if (!scu)
        return MWL_E_INVALID;
    clear_error(scu);
    if (scu->state != SCU_ESTABLISHED)
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID, "no association to release");
    int rc = mwl_ul_release(scu->ul, mwl_now_ms());
    if (rc != MWL_OK) {
        rc = fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot release: %s", mwl_status_str(rc));
        teardown(scu);
        return rc;
    }
    scu->state = SCU_RELEASING;
    scu->deadline = mwl_deadline_in(scu->acse_timeout_ms);
    rc = pump(scu, goal_released, "A-RELEASE-RP", scu->acse_timeout_ms);
    if (rc != MWL_OK) {
        teardown(scu);
        return rc;
    }
    /* AR-3: the requestor closes the transport once released. */
    close_transport(scu, 0);
    return MWL_OK;
}

int mwl_scu_abort(mwl_scu *scu)
{
    if (!scu)
        return MWL_E_INVALID;
    clear_error(scu);
    if (scu->state != SCU_ESTABLISHED && scu->state != SCU_RELEASING)
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID, "no association to abort");
    abort_and_close(scu, ABORT_LINGER_MS);
    return MWL_OK;
}

/* ======================================================================
 * Operations
 * ====================================================================== */

static uint16_t take_message_id(mwl_scu *scu)
{
    uint16_t id = scu->next_message_id;
    /* Skip 0 on wrap: some peers treat it as "no Message ID". */
    scu->next_message_id = id == UINT16_MAX ? 1 : (uint16_t)(id + 1);
    return id;
}

/* Checks common to operations; on MWL_OK the caller may send. */
static int begin_operation(mwl_scu *scu, const char *name, bool accepted, uint8_t result)
{
    clear_error(scu);
    if (scu->state != SCU_ESTABLISHED)
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID, "%s: no association", name);
    if (!accepted)
        return fail(scu, MWL_SCU_FAIL_NO_CONTEXT, MWL_E_UNSUPPORTED,
                    "%s: %s did not accept the presentation context (%s)", name, peer_name(scu),
                    mwl_scu_pctx_result_str(result));
    mwl_dimse_assembler_reset(&scu->assembler);
    mwl_wbuf_clear(&scu->command);
    mwl_wbuf_init(&scu->command, scu->mem);
    mwl_wbuf_clear(&scu->dataset);
    mwl_wbuf_init(&scu->dataset, scu->mem);
    memset(&scu->op, 0, sizeof scu->op);
    return MWL_OK;
}

/* Sends the request in scu->command (+ data set) and awaits the final
 * response. On failure the association is torn down. */
static int run_operation(mwl_scu *scu, const char *what, const uint8_t *dataset, size_t dataset_length)
{
    scu->deadline = mwl_deadline_in(scu->dimse_timeout_ms);
    int rc = send_message(scu, scu->op.context_id, dataset, dataset_length);
    if (rc == MWL_OK)
        rc = pump(scu, goal_response, what, scu->dimse_timeout_ms);
    scu->op.kind = OP_NONE;
    if (rc != MWL_OK)
        teardown(scu);
    return rc;
}

int mwl_scu_echo(mwl_scu *scu, uint16_t *status)
{
    if (!scu)
        return MWL_E_INVALID;
    int rc = begin_operation(scu, "C-ECHO", scu->info.verification_accepted, scu->info.verification_result);
    if (rc != MWL_OK)
        return rc;
    if (!status)
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID, "C-ECHO: NULL status");
    uint16_t id = take_message_id(scu);
    if ((rc = mwl_dimse_encode_echo_rq(id, &scu->command)) != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot encode C-ECHO-RQ: %s", mwl_status_str(rc));
    scu->op.kind = OP_ECHO;
    scu->op.message_id = id;
    scu->op.context_id = MWL_SCU_CONTEXT_VERIFICATION;
    scu->op.ts = scu->info.verification_ts;
    mwl_log(MWL_LOG_DEBUG, "scu: C-ECHO-RQ Message ID %u", (unsigned)id);
    if ((rc = run_operation(scu, "C-ECHO-RSP", NULL, 0)) != MWL_OK)
        return rc;
    *status = scu->op.status;
    return MWL_OK;
}

int mwl_scu_find(mwl_scu *scu, const mwl_ds *query, uint16_t priority, mwl_scu_find_fn fn, void *user,
                 mwl_scu_find_result *result)
{
    if (!scu)
        return MWL_E_INVALID;
    if (result)
        memset(result, 0, sizeof *result);
    int rc = begin_operation(scu, "C-FIND", scu->info.find_accepted, scu->info.find_result);
    if (rc != MWL_OK)
        return rc;
    if (!query || !result)
        return fail(scu, MWL_SCU_FAIL_LOCAL, MWL_E_INVALID, "C-FIND: NULL query or result");
    mwl_ts ts = scu->info.find_ts;
    uint16_t id = scu->next_message_id;
    if ((rc = mwl_dimse_encode_find_rq(id, MWL_UID_ModalityWorklistInformationModelFind, priority,
                                       &scu->command)) != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot encode C-FIND-RQ: %s", mwl_status_str(rc));
    if ((rc = mwl_ds_encode(query, ts, &scu->dataset)) != MWL_OK)
        return fail(scu, MWL_SCU_FAIL_LOCAL, rc, "cannot encode the query in %s: %s", mwl_scu_ts_name(ts),
                    mwl_status_str(rc));
    (void)take_message_id(scu);
    result->message_id = id;
    scu->op.kind = OP_FIND;
    scu->op.message_id = id;
    scu->op.context_id = MWL_SCU_CONTEXT_FIND;
    scu->op.ts = ts;
    scu->op.fn = fn;
    scu->op.user = user;
    scu->op.result = result;
    mwl_log(MWL_LOG_DEBUG, "scu: C-FIND-RQ Message ID %u, identifier %zu bytes in %s", (unsigned)id,
            scu->dataset.len, mwl_scu_ts_name(ts));
    return run_operation(scu, "C-FIND-RSP", scu->dataset.data, scu->dataset.len);
}
