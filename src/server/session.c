/* One association on the loop: the glue between a non-blocking connection
 * (net), the sans-IO Upper Layer (ul) and DIMSE message assembly (dimse).
 *
 * Every entry point (fd ready, timer, a C-FIND step coming back) does a
 * bounded amount of work and ends in session_service(), which is the only
 * place that writes, shuts down, sets poll interest, arms the timer and
 * tears the session down. Nothing here blocks or touches the store.
 *
 * Life of a session:
 *
 *   accepted -> Sta2 (associate-timeout) -> RQ -> negotiate -> AC (Sta6)
 *   or RJ (Sta13)
 *   Sta6: PDVs -> assembler -> routed by context to a service of the
 *   server's table (service.h); commands no service there performs get
 *   0122/0211
 *   release or abort -> Sta13: write the last PDU, shutdown(SHUT_WR), read
 *   and discard until the peer closes (or ARTIM / the linger bound) ->
 *   close -> "zombie" while a service's worker operation is out -> freed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "dicom/tag.h"
#include "server/server_int.h"

static void on_io(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user);
static void on_timer(mwl_loop *loop, uint64_t id, void *user);

static bool association_state(mwl_ul_state st)
{
    return st >= MWL_UL_STA3 && st <= MWL_UL_STA12;
}

static void session_set_outcome(session *s, const char *fmt, ...) MWL_PRINTF(2, 3);
static void session_set_outcome(session *s, const char *fmt, ...)
{
    if (s->outcome[0])
        return; /* the first cause is the one worth logging */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->outcome, sizeof s->outcome, fmt, ap);
    va_end(ap);
}

size_t session_output_low(const session *s)
{
    return s->srv->cfg.max_output / 4;
}

size_t session_pending_output(const session *s)
{
    return s->ul ? mwl_ul_pending_output(s->ul, NULL) : 0;
}

const char *session_peer(const session *s)
{
    return s->peer;
}

const char *session_calling(const session *s)
{
    return s->calling;
}

const char *session_called(const session *s)
{
    return s->called;
}

mwl_server *session_server(const session *s)
{
    return s->srv;
}

const mwl_server_config *session_config(const session *s)
{
    return &s->srv->cfg;
}

const mwl_mem *session_mem(const session *s)
{
    return s->srv->mem;
}

bool session_closing(const session *s)
{
    return s->closing || s->done || s->zombie || !s->ul || mwl_ul_get_state(s->ul) != MWL_UL_STA6;
}

int session_context(const session *s, uint8_t context_id, const char **abstract_syntax,
                    const char **transfer_syntax)
{
    if (!s->ul || mwl_ul_context(s->ul, context_id, abstract_syntax, transfer_syntax) != MWL_OK)
        return MWL_E_NOTFOUND;
    return MWL_OK;
}

mwl_wbuf *session_scratch(session *s)
{
    mwl_wbuf *w = &s->srv->scratch;
    if (w->status != MWL_OK || w->cap > 64u * 1024u)
        mwl_wbuf_clear(w); /* lift a sticky error; give back a big buffer */
    w->len = 0;
    return w;
}

void session_stat_add(session *s, session_stat which, uint64_t n)
{
    stat_counters *c = &s->srv->stats;
    switch (which) {
    case SESSION_STAT_ECHOES: server_stat_add(&c->echoes, n); break;
    case SESSION_STAT_FINDS: server_stat_add(&c->finds, n); break;
    case SESSION_STAT_FIND_MATCHES: server_stat_add(&c->find_matches, n); break;
    case SESSION_STAT_FIND_CANCELS: server_stat_add(&c->find_cancels, n); break;
    case SESSION_STAT_FIND_STEPS: server_stat_add(&c->find_steps, n); break;
    }
}

/* ---- the audit trail ------------------------------------------------------ */

static audit_peer audit_who(const session *s)
{
    audit_peer who = {s->peer, s->calling, s->called, s->conn ? mwl_conn_transport(s->conn) : s->transport,
                      s->conn ? mwl_conn_peer_subject(s->conn) : s->tls_subject};
    return who;
}

void session_audit_find(session *s, uint16_t message_id, const char *query, const char *result,
                        uint16_t status, uint64_t matches, const audit_ids *ids, uint64_t duration_ms)
{
    audit_peer who = audit_who(s);
    audit_find(s->srv, &who, message_id, query, result, status, matches, ids, duration_ms);
}

/* ---- services --------------------------------------------------------------- */

/* The per-session state of service `i`, allocated on first use. NULL when
 * out of memory (the caller aborts). */
static void *svc_state(session *s, size_t i)
{
    const mwl_service *svc = &s->srv->services[i];
    if (s->svc[i].state || svc->cls->state_size == 0)
        return s->svc[i].state;
    void *st = mwl_mem_calloc(s->srv->mem, 1, svc->cls->state_size);
    if (!st)
        return NULL;
    if (svc->cls->init)
        svc->cls->init(st, s, svc);
    s->svc[i].state = st;
    return st;
}

static void services_abandon(session *s)
{
    s->closing = true;
    for (size_t i = 0; i < s->srv->service_count; i++) {
        const mwl_scp_class *c = s->srv->services[i].cls;
        if (s->svc[i].state && c->abandon)
            c->abandon(s->svc[i].state, s);
    }
}

static bool services_busy(const session *s)
{
    for (size_t i = 0; i < s->srv->service_count; i++) {
        const mwl_scp_class *c = s->srv->services[i].cls;
        if (s->svc[i].state && c->busy && c->busy(s->svc[i].state))
            return true;
    }
    return false;
}

static void services_drained(session *s)
{
    for (size_t i = 0; i < s->srv->service_count && !s->done; i++) {
        const mwl_scp_class *c = s->srv->services[i].cls;
        if (s->svc[i].state && c->drained)
            c->drained(s->svc[i].state, s);
    }
}

static void services_clear(session *s)
{
    for (size_t i = 0; i < s->srv->service_count; i++) {
        const mwl_scp_class *c = s->srv->services[i].cls;
        if (!s->svc[i].state)
            continue;
        if (c->clear)
            c->clear(s->svc[i].state);
        mwl_mem_free(s->srv->mem, s->svc[i].state);
        s->svc[i].state = NULL;
    }
}

/* ---- creation ------------------------------------------------------------ */

/* "127.0.0.1:4000" -> "127.0.0.1", "[::1]:104" -> "[::1]": what the
 * per-peer limit counts. */
static void peer_address(const char *peer, char *out, size_t cap)
{
    size_t n = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (peer[0] == '[') {
        const char *close = strchr(peer, ']');
        n = close ? (size_t)(close - peer) + 1 : n;
    } else if (colon && strchr(peer, ':') == colon) {
        n = (size_t)(colon - peer);
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

void session_peer_address(const char *peer, char *out, size_t cap)
{
    peer_address(peer, out, cap);
}

int session_create(mwl_server *srv, const server_listener *listener, mwl_conn *conn)
{
    session *s = mwl_mem_calloc(srv->mem, 1, sizeof *s);
    if (!s) {
        mwl_conn_close(conn);
        return MWL_E_NOMEM;
    }
    s->srv = srv;
    s->listener = listener;
    s->conn = conn;
    s->linger_until = UINT64_MAX;
    s->started_ms = mwl_now_ms();
    snprintf(s->peer, sizeof s->peer, "%s", mwl_conn_peer(conn));
    snprintf(s->transport, sizeof s->transport, "%s", mwl_conn_transport(conn));
    peer_address(s->peer, s->peer_addr, sizeof s->peer_addr);
    mwl_dimse_limits lim;
    mwl_dimse_limits_init(&lim);
    lim.max_message_length = srv->cfg.max_message;
    mwl_dimse_assembler_init(&s->as, srv->mem, &lim);

    int rc = mwl_ul_new(&srv->ul_cfg, &s->ul);
    if (rc == MWL_OK)
        rc = mwl_ul_transport_connected(s->ul, s->started_ms);
    if (rc == MWL_OK)
        rc = mwl_loop_add(srv->loop, mwl_conn_fd(conn), MWL_NET_READ, on_io, s, &s->io);
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "conn %s: cannot set up a session: %s", s->peer, mwl_status_str(rc));
        mwl_ul_free(s->ul);
        mwl_dimse_assembler_clear(&s->as);
        mwl_conn_close(conn);
        mwl_mem_free(srv->mem, s);
        return rc;
    }
    server_session_link(srv, s);
    mwl_log(MWL_LOG_DEBUG, "conn %s: accepted on %s (%s)", s->peer, listener ? listener->name : "adopted",
            mwl_conn_transport(conn));
    session_service(s);
    return MWL_OK;
}

/* ---- the association log line -------------------------------------------- */

static const char *syntax_name(const char *uid)
{
    if (strcmp(uid, MWL_UID_Verification) == 0)
        return "Verification";
    if (strcmp(uid, MWL_UID_ModalityWorklistInformationModelFind) == 0)
        return "MWL-FIND";
    if (strcmp(uid, MWL_UID_ModalityPerformedProcedureStep) == 0)
        return "MPPS";
    return uid;
}

static void describe_contexts(session *s, const mwl_assoc_rq *rq, const mwl_assoc_ac *ac)
{
    size_t used = 0, rejected = 0;
    s->contexts[0] = '\0';
    for (size_t i = 0; i < ac->context_count; i++) {
        const mwl_pctx_ac *c = &ac->contexts[i];
        if (c->result != MWL_PCTX_ACCEPTANCE) {
            rejected++;
            continue;
        }
        const char *as = "?";
        for (size_t j = 0; j < rq->context_count; j++)
            if (rq->contexts[j].id == c->id)
                as = syntax_name(rq->contexts[j].abstract_syntax);
        if (used < sizeof s->contexts) {
            int n = snprintf(s->contexts + used, sizeof s->contexts - used, "%s%u:%s/%s", used ? " " : "",
                             (unsigned)c->id, as, mwl_server_ts_name(c->transfer_syntax));
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (used == 0)
        used = (size_t)snprintf(s->contexts, sizeof s->contexts, "none accepted");
    if (rejected && used < sizeof s->contexts)
        snprintf(s->contexts + used, sizeof s->contexts - used, " (+%zu rejected)", rejected);
}

static void log_end(session *s)
{
    uint64_t ms = mwl_now_ms() - s->started_ms;
    if (!s->outcome[0])
        session_set_outcome(s, "closed");
    if (s->calling[0] || s->called[0]) {
        /* "2 echo, 5 find": one count per service */
        char counts[160] = "";
        size_t used = 0;
        for (size_t i = 0; i < s->srv->service_count && used < sizeof counts; i++) {
            int n = snprintf(counts + used, sizeof counts - used, "%s%llu %s", i ? ", " : "",
                             (unsigned long long)s->svc[i].requests, s->srv->services[i].cls->name);
            used += n > 0 ? (size_t)n : 0;
        }
        mwl_log(MWL_LOG_INFO, "assoc %s %s -> %s: %s after %llu ms; contexts %s; %s", s->peer, s->calling,
                s->called, s->outcome, (unsigned long long)ms, s->contexts[0] ? s->contexts : "-", counts);
    } else {
        mwl_log(MWL_LOG_INFO, "conn %s: %s after %llu ms", s->peer, s->outcome, (unsigned long long)ms);
        audit_peer who = audit_who(s);
        audit_connection(s->srv, &who, s->outcome);
    }
}

/* ---- association establishment --------------------------------------------- */

static const char *rj_text(const mwl_assoc_rj *rj)
{
    if (rj->source == MWL_RJ_SOURCE_USER) {
        switch (rj->reason) {
        case MWL_RJ_USER_APP_CONTEXT_NOT_SUPPORTED: return "application context not supported";
        case MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED: return "calling AE title not recognized";
        case MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED: return "called AE title not recognized";
        default: return "no reason given";
        }
    }
    if (rj->source == MWL_RJ_SOURCE_PROVIDER_ACSE)
        return rj->reason == MWL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED ? "protocol version not supported"
                                                                        : "no reason given (ACSE)";
    return rj->reason == MWL_RJ_PRES_LOCAL_LIMIT_EXCEEDED ? "local limit exceeded" : "temporary congestion";
}

/* What mwl_ae_title_well_formed refuses, for the log line. */
#define AE_TITLE_RULE "empty, or a control character or backslash in it"

static void on_associate_rq(session *s, const mwl_assoc_rq *rq, uint64_t now)
{
    mwl_server *srv = s->srv;
    snprintf(s->calling, sizeof s->calling, "%s", rq->calling_ae);
    snprintf(s->called, sizeof s->called, "%s", rq->called_ae);
    mwl_policy policy = srv->policy;
    policy.too_many_associations = srv->associated_count >= srv->cfg.max_associations;
    /* Who may associate (calling-aet-allow and the allow rules) depends on
     * the peer's address, which negotiation does not see: decided here,
     * passed in as a verdict. */
    char why[128];
    mwl_net_addr addr;
    bool has_addr = mwl_net_addr_from_peer(s->peer, &addr) == MWL_OK;
    mwl_allow_verdict verdict = mwl_allow_check(&srv->cfg.calling_aet_allow, &srv->cfg.allow, rq->calling_ae,
                                                has_addr ? &addr : NULL, why, sizeof why);
    policy.calling_ae_refused = verdict == MWL_ALLOW_UNKNOWN_AE || verdict == MWL_ALLOW_WRONG_ADDRESS;
    mwl_arena arena;
    mwl_arena_init(&arena, srv->mem);
    mwl_negotiation neg;
    int rc = mwl_negotiate(rq, &policy, &arena, &neg);
    if (rc == MWL_OK && neg.accepted) {
        rc = mwl_ul_accept(s->ul, &neg.ac, now);
        if (rc == MWL_OK) {
            server_session_associated(srv, s);
            server_stat_add(&srv->stats.associations, 1);
            describe_contexts(s, rq, &neg.ac);
            const char *subject = mwl_conn_peer_subject(s->conn);
            snprintf(s->tls_subject, sizeof s->tls_subject, "%s", subject);
            audit_peer who = audit_who(s);
            audit_association(srv, &who, true, NULL);
            mwl_log(MWL_LOG_INFO, "assoc %s %s -> %s: accepted%s%s%s%s, max PDU %u/%u, contexts %s", s->peer,
                    s->calling, s->called, strcmp(mwl_conn_transport(s->conn), "tls") == 0 ? " over TLS" : "",
                    subject[0] ? " (certificate " : "", subject, subject[0] ? ")" : "",
                    (unsigned)srv->cfg.max_pdu, (unsigned)rq->user_info.max_length, s->contexts);
        }
    } else if (rc == MWL_OK) {
        rc = mwl_ul_reject(s->ul, &neg.rj, now);
        if (rc == MWL_OK) {
            server_stat_add(&srv->stats.rejected, 1);
            if (neg.rj.result == MWL_RJ_RESULT_TRANSIENT &&
                neg.rj.source == MWL_RJ_SOURCE_PROVIDER_PRESENTATION &&
                neg.rj.reason == MWL_RJ_PRES_LOCAL_LIMIT_EXCEEDED)
                server_stat_add(&srv->stats.rejected_busy, 1);
            if (neg.rj.source == MWL_RJ_SOURCE_USER && neg.rj.reason == MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED)
                server_stat_add(&srv->stats.rejected_calling_ae, 1);
            if (neg.rj.source == MWL_RJ_SOURCE_USER && neg.rj.reason == MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED)
                server_stat_add(&srv->stats.rejected_called_ae, 1);
            if (neg.rj.source == MWL_RJ_SOURCE_USER &&
                neg.rj.reason == MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED &&
                !mwl_ae_title_well_formed(rq->called_ae))
                session_set_outcome(s, "rejected (%u,%u,%u): called AE title '%s' is not an AE title (%s)",
                                    (unsigned)neg.rj.result, (unsigned)neg.rj.source, (unsigned)neg.rj.reason,
                                    s->called, AE_TITLE_RULE);
            else if (neg.rj.source == MWL_RJ_SOURCE_USER &&
                     neg.rj.reason == MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED &&
                     !mwl_ae_title_well_formed(rq->calling_ae))
                session_set_outcome(s, "rejected (%u,%u,%u): calling AE title '%s' is not an AE title (%s)",
                                    (unsigned)neg.rj.result, (unsigned)neg.rj.source, (unsigned)neg.rj.reason,
                                    s->calling, AE_TITLE_RULE);
            else if (policy.calling_ae_refused && neg.rj.source == MWL_RJ_SOURCE_USER &&
                     neg.rj.reason == MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED)
                session_set_outcome(s, "rejected (%u,%u,%u): calling AE title '%s' from %s: %s",
                                    (unsigned)neg.rj.result, (unsigned)neg.rj.source, (unsigned)neg.rj.reason,
                                    s->calling, s->peer_addr, why);
            else if (neg.rj.source == MWL_RJ_SOURCE_USER && neg.rj.reason == MWL_RJ_USER_NO_REASON &&
                     rq->user_info.max_length && rq->user_info.max_length < SERVER_MIN_PEER_PDU)
                session_set_outcome(s, "rejected (%u,%u,%u): peer Maximum Length %u is below %u",
                                    (unsigned)neg.rj.result, (unsigned)neg.rj.source, (unsigned)neg.rj.reason,
                                    (unsigned)rq->user_info.max_length, (unsigned)SERVER_MIN_PEER_PDU);
            else
                session_set_outcome(s, "rejected (%u,%u,%u: %s)", (unsigned)neg.rj.result,
                                    (unsigned)neg.rj.source, (unsigned)neg.rj.reason, rj_text(&neg.rj));
            snprintf(s->tls_subject, sizeof s->tls_subject, "%s", mwl_conn_peer_subject(s->conn));
            audit_peer who = audit_who(s);
            audit_association(srv, &who, false, s->outcome);
        }
    }
    mwl_arena_clear(&arena);
    if (rc != MWL_OK) {
        /* Only an allocation failure or a policy bug gets here; the RQ is
         * in Sta3, where A-ABORT is always possible. */
        mwl_log(MWL_LOG_ERROR, "assoc %s: negotiation failed: %s", s->peer, mwl_status_str(rc));
        session_abort(s, "negotiation failed");
    }
}

/* ---- DIMSE ---------------------------------------------------------------- */

/* The requests of PS3.7 Table E.1-1. */
static bool known_request(uint16_t cf)
{
    switch (cf) {
    case MWL_DIMSE_C_STORE_RQ:
    case MWL_DIMSE_C_GET_RQ:
    case MWL_DIMSE_C_FIND_RQ:
    case MWL_DIMSE_C_MOVE_RQ:
    case MWL_DIMSE_C_ECHO_RQ:
    case MWL_DIMSE_N_EVENT_REPORT_RQ:
    case MWL_DIMSE_N_GET_RQ:
    case MWL_DIMSE_N_SET_RQ:
    case MWL_DIMSE_N_ACTION_RQ:
    case MWL_DIMSE_N_CREATE_RQ:
    case MWL_DIMSE_N_DELETE_RQ:
    case MWL_DIMSE_C_CANCEL_RQ: return true;
    default: return false;
    }
}

static bool handles(const mwl_scp_class *c, uint16_t command_field)
{
    for (const uint16_t *p = c->commands; p && *p; p++)
        if (*p == command_field)
            return true;
    return false;
}

/* The service entry for a context's abstract syntax, or -1. */
static int service_of_context(const session *s, uint8_t context_id)
{
    const char *abstract_syntax = NULL;
    if (session_context(s, context_id, &abstract_syntax, NULL) != MWL_OK)
        return -1;
    for (size_t i = 0; i < s->srv->service_count; i++)
        if (strcmp(s->srv->services[i].sop_class, abstract_syntax) == 0)
            return (int)i;
    return -1;
}

static void dispatch(session *s, const mwl_dimse_msg *msg)
{
    mwl_server *srv = s->srv;
    uint16_t cf = msg->command.command_field;
    if (mwl_log_enabled(MWL_LOG_DEBUG))
        mwl_log(MWL_LOG_DEBUG, "assoc %s: %s on context %u, %zu data set bytes", s->peer,
                mwl_dimse_command_name(cf), (unsigned)msg->context_id, msg->dataset_length);
    if (mwl_dimse_is_response(cf)) {
        /* We never send requests, so no response can be expected. */
        session_abort(s, "unexpected DIMSE response from the peer");
        return;
    }
    if (!known_request(cf)) {
        /* Not a command of PS3.7 Table E.1-1: there is no response message we
         * could form for it (PS3.7 §9.1: an unrecognized service is a
         * protocol error). */
        char why[80];
        snprintf(why, sizeof why, "unknown DIMSE command field %04X", (unsigned)cf);
        session_abort(s, why);
        return;
    }
    int idx = service_of_context(s, msg->context_id);
    const mwl_scp_class *c = idx >= 0 ? srv->services[idx].cls : NULL;
    if (cf == MWL_DIMSE_C_CANCEL_RQ) {
        /* No response of its own (PS3.7 §9.3.2.3): it goes to the context's
         * service, which ignores it when nothing is outstanding. */
        void *st = c && c->cancel ? svc_state(s, (size_t)idx) : NULL;
        if (st)
            c->cancel(st, s, msg);
        else
            mwl_log(MWL_LOG_DEBUG, "assoc %s: C-CANCEL on context %u ignored", s->peer,
                    (unsigned)msg->context_id);
        return;
    }
    if (c && handles(c, cf)) {
        void *st = svc_state(s, (size_t)idx);
        if (!st && c->state_size) {
            session_abort(s, "out of memory for a service");
            return;
        }
        s->svc[idx].requests++;
        c->request(st, s, &srv->services[idx], msg);
        return;
    }
    /* PS3.7 §9.1.x.1.4 / dimse.md §6.4: a command we perform, on a context
     * of another SOP class (or naming another), is refused with 0122; one
     * we do not perform at all gets 0211. */
    bool anyone = false;
    for (size_t i = 0; i < srv->service_count && !anyone; i++)
        anyone = handles(srv->services[i].cls, cf);
    uint16_t status =
        anyone ? MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED : MWL_DIMSE_STATUS_UNRECOGNIZED_OPERATION;
    mwl_log(MWL_LOG_WARN, "assoc %s %s: %s on context %u not supported: answered %04X", s->peer, s->calling,
            mwl_dimse_command_name(cf), (unsigned)msg->context_id, (unsigned)status);
    (void)session_reply_status(s, msg, status, anyone ? "SOP class not supported on this context" : NULL);
}

static void on_p_data(session *s, const mwl_pdv *pdvs, size_t count)
{
    for (size_t i = 0; i < count && !s->done; i++) {
        if (mwl_ul_get_state(s->ul) != MWL_UL_STA6)
            return; /* aborted or releasing: the rest is moot */
        mwl_dimse_msg msg;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_dimse_assembler_feed(&s->as, &pdvs[i], &msg, &diag);
        if (rc == MWL_AGAIN)
            continue;
        if (rc == MWL_OK) {
            dispatch(s, &msg);
            continue;
        }
        if (mwl_is_fatal(rc)) {
            session_set_outcome(s, "out of memory assembling a message");
            s->done = true;
            return;
        }
        /* PS3.8 §7.3.1 / dimse.h: a malformed or out-of-order message
         * cannot be answered with a status; abort the association. */
        char why[160];
        snprintf(why, sizeof why, "bad DIMSE message (%s): %s", mwl_status_str(rc), diag.msg);
        mwl_dimse_assembler_reset(&s->as);
        session_abort(s, why);
        return;
    }
}

/* ---- UL events ------------------------------------------------------------ */

static void handle_event(session *s, const mwl_ul_event *ev, uint64_t now)
{
    switch (ev->type) {
    case MWL_UL_EV_ASSOCIATE_RQ: on_associate_rq(s, ev->u.associate_rq, now); return;
    case MWL_UL_EV_P_DATA: on_p_data(s, ev->u.p_data.pdvs, ev->u.p_data.count); return;
    case MWL_UL_EV_RELEASE_RQ: {
        /* A requestor should not release with an operation outstanding;
         * if it does, it no longer wants the answer. */
        services_abandon(s);
        if (!mwl_dimse_assembler_is_idle(&s->as))
            mwl_log(MWL_LOG_WARN, "assoc %s: released in the middle of a message", s->peer);
        int rc = mwl_ul_release_response(s->ul, now);
        if (mwl_is_fatal(rc))
            s->done = true;
        session_set_outcome(s, "released");
        return;
    }
    case MWL_UL_EV_ABORTED:
        services_abandon(s);
        s->aborted = true;
        switch (ev->u.aborted.origin) {
        case MWL_UL_ABORT_PEER:
            session_set_outcome(s, "aborted by peer (source %u, reason %u)", (unsigned)ev->u.aborted.source,
                                (unsigned)ev->u.aborted.reason);
            break;
        case MWL_UL_ABORT_PROTOCOL:
            session_set_outcome(s, "aborted: protocol error (reason %u): %s", (unsigned)ev->u.aborted.reason,
                                ev->u.aborted.detail);
            break;
        case MWL_UL_ABORT_TRANSPORT: session_set_outcome(s, "connection lost"); break;
        case MWL_UL_ABORT_TIMEOUT: session_set_outcome(s, "aborted: no PDU within idle-timeout"); break;
        }
        return;
    case MWL_UL_EV_CLOSED: s->done = true; return;
    case MWL_UL_EV_RELEASE_RP:
    case MWL_UL_EV_ASSOCIATE_AC:
    case MWL_UL_EV_ASSOCIATE_RJ:
        /* Requestor-side events: an acceptor that never releases first
         * cannot get them. */
        mwl_log(MWL_LOG_WARN, "assoc %s: unexpected UL event %s", s->peer, mwl_ul_event_name(ev->type));
        return;
    }
}

static void drain_events(session *s, uint64_t now)
{
    /* The UL queues at most a few events per input; the bound only guards
     * against a bug turning this into a spin. */
    for (int i = 0; i < 64 && s->ul; i++) {
        mwl_ul_event ev;
        int rc = mwl_ul_next_event(s->ul, &ev);
        if (rc == MWL_AGAIN)
            return;
        if (rc != MWL_OK) {
            session_set_outcome(s, "internal error: %s", mwl_status_str(rc));
            s->done = true;
            return;
        }
        handle_event(s, &ev, now);
    }
}

/* ---- input ---------------------------------------------------------------- */

static void transport_gone(session *s, uint64_t now)
{
    /* A transport that knows why (a TLS alert, a certificate that did not
     * verify) says so first: that is the cause worth logging. */
    const char *why = s->conn ? mwl_conn_error_text(s->conn) : "";
    if (why[0])
        session_set_outcome(s, "connection lost: %s", why);
    if (s->ul && mwl_ul_get_state(s->ul) != MWL_UL_STA1) {
        int rc = mwl_ul_transport_closed(s->ul, now);
        if (rc == MWL_OK)
            drain_events(s, now);
    }
    if (!s->associated && !s->outcome[0])
        session_set_outcome(s, "closed by peer before an association");
    s->done = true;
}

static void read_once(session *s)
{
    mwl_server *srv = s->srv;
    size_t n = 0;
    int rc = mwl_conn_read(s->conn, srv->rbuf, sizeof srv->rbuf, &n);
    uint64_t now = mwl_now_ms();
    if (rc == MWL_AGAIN) {
        /* A TLS read may wait for writability (a handshake message). */
        s->read_wants = mwl_conn_wants(s->conn);
        return;
    }
    s->read_wants = 0;
    if (rc != MWL_OK) {
        transport_gone(s, now);
        return;
    }
    size_t off = 0;
    /* Each feed takes at least one byte or reports events to drain, so
     * this ends after at most n + (PDUs in the buffer) rounds. */
    while (off < n && !s->done && s->ul) {
        size_t used = 0;
        rc = mwl_ul_feed(s->ul, srv->rbuf + off, n - off, &used, now);
        off += used;
        if (rc == MWL_AGAIN || (rc == MWL_OK && used > 0)) {
            drain_events(s, now);
            continue;
        }
        if (rc == MWL_E_CLOSED)
            return; /* Sta1: the session is over; the rest is not read */
        if (rc != MWL_OK) {
            session_set_outcome(s, "internal error: %s", mwl_status_str(rc));
            s->done = true;
        }
        return;
    }
}

/* ---- output ---------------------------------------------------------------- */

static void flush(session *s)
{
    if (!s->conn || !s->ul || s->shut_wr)
        return;
    const uint8_t *p = NULL;
    size_t len = mwl_ul_pending_output(s->ul, &p);
    if (len == 0)
        return;
    /* The UL keeps all queued PDUs in one buffer, so everything pending
     * leaves in one system call; the kernel's partial acceptance is the
     * only reason for a second one. */
    mwl_iov iov = {p, len};
    size_t n = 0;
    int rc = mwl_conn_writev(s->conn, &iov, 1, &n);
    if (rc == MWL_OK) {
        mwl_ul_output_written(s->ul, n);
        s->write_blocked = n < len;
        s->write_wants = n < len ? MWL_NET_WRITE : 0;
        s->write_since_ms = n < len ? mwl_now_ms() : 0;
    } else if (rc == MWL_AGAIN) {
        s->write_blocked = true;
        s->write_wants = mwl_conn_wants(s->conn); /* a TLS write may wait for readability */
    } else {
        transport_gone(s, mwl_now_ms());
    }
}

int session_send(session *s, uint8_t context_id, const uint8_t *command, size_t command_length,
                 const uint8_t *dataset, size_t dataset_length)
{
    if (!s->ul || s->done)
        return MWL_E_CLOSED;
    mwl_dimse_fragmenter fr;
    int rc = mwl_dimse_fragmenter_init(&fr, context_id, command, command_length, dataset, dataset_length,
                                       mwl_ul_peer_max_pdu_length(s->ul));
    if (rc != MWL_OK) {
        char why[96];
        snprintf(why, sizeof why, "cannot send a response (%s)", mwl_status_str(rc));
        session_abort(s, why);
        return rc;
    }
    uint64_t now = mwl_now_ms();
    mwl_pdv pdvs[2];
    size_t count = 0;
    bool first = true;
    while (mwl_dimse_fragmenter_next(&fr, pdvs, &count)) {
        rc = mwl_ul_send_p_data(s->ul, pdvs, count, now);
        if (rc != MWL_OK) {
            if (mwl_is_fatal(rc)) {
                session_set_outcome(s, "internal error: %s", mwl_status_str(rc));
                s->done = true;
            } else if (!first) {
                session_abort(s, "cannot send the rest of a response"); /* half a message went out */
            }
            /* First PDU refused (MWL_E_PROTOCOL): the association is no
             * longer in data transfer; nothing was sent. */
            return rc;
        }
        first = false;
    }
    return MWL_OK;
}

int session_reply_status(session *s, const mwl_dimse_msg *msg, uint16_t status, const char *comment)
{
    const mwl_dimse_command *rq = &msg->command;
    mwl_dimse_command rsp;
    mwl_dimse_command_init(&rsp);
    rsp.command_field = (uint16_t)(rq->command_field | MWL_DIMSE_RSP);
    rsp.data_set_type = MWL_DIMSE_DATASET_NONE;
    rsp.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | MWL_DIMSE_HAS_STATUS;
    rsp.message_id_being_responded_to = rq->message_id;
    rsp.status = status;
    /* U(=) fields echo the request's, which helps the peer match them. */
    if (rq->present & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID) {
        rsp.present |= MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID;
        rsp.affected_sop_class_uid = rq->affected_sop_class_uid;
    }
    if (rq->present & MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID) {
        rsp.present |= MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID;
        rsp.affected_sop_instance_uid = rq->affected_sop_instance_uid;
    }
    mwl_dimse_class cls = mwl_dimse_status_class(status);
    if (comment && comment[0] && (cls == MWL_DIMSE_CLASS_FAILURE || cls == MWL_DIMSE_CLASS_WARNING)) {
        rsp.present |= MWL_DIMSE_HAS_ERROR_COMMENT;
        rsp.error_comment = comment;
    }
    mwl_wbuf *w = session_scratch(s);
    if (mwl_dimse_encode_command(&rsp, w) != MWL_OK) {
        session_abort(s, "cannot encode a response");
        return MWL_E_INTERNAL;
    }
    return session_send(s, msg->context_id, w->data, w->len, NULL, 0);
}

/* ---- aborting and tearing down -------------------------------------------- */

void session_abort(session *s, const char *why)
{
    session_set_outcome(s, "aborted: %s", why);
    services_abandon(s);
    if (!s->ul)
        return;
    mwl_ul_state st = mwl_ul_get_state(s->ul);
    if (association_state(st)) {
        int rc = mwl_ul_abort(s->ul, mwl_now_ms());
        if (mwl_is_fatal(rc))
            s->done = true;
        s->aborted = true;
        mwl_log(MWL_LOG_WARN, "assoc %s %s -> %s: sending A-ABORT: %s", s->peer, s->calling, s->called, why);
    } else if (st == MWL_UL_STA2) {
        s->done = true; /* no association to abort: just close */
    }
}

void session_abort_all(mwl_server *srv, const char *why)
{
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (s->zombie)
            continue;
        session_abort(s, why);
        session_service(s); /* may free s; `next` was read first */
    }
}

void session_close(session *s, const char *why)
{
    if (s->zombie)
        return;
    session_set_outcome(s, "%s", why);
    s->done = true;
    session_service(s);
}

static void session_free(session *s)
{
    mwl_server *srv = s->srv;
    services_clear(s);
    server_session_freed(srv, s); /* unlinks */
    mwl_mem_free(srv->mem, s);
}

static void teardown(session *s)
{
    mwl_server *srv = s->srv;
    if (s->io) {
        mwl_loop_remove(srv->loop, s->io);
        s->io = NULL;
    }
    if (s->conn) {
        mwl_conn_close(s->conn);
        s->conn = NULL;
    }
    if (s->timer_id) {
        (void)mwl_loop_timer_cancel(srv->loop, s->timer_id);
        s->timer_id = 0;
    }
    log_end(s);
    if (s->aborted)
        server_stat_add(&srv->stats.aborted, 1);
    services_abandon(s);
    mwl_ul_free(s->ul);
    s->ul = NULL;
    mwl_dimse_assembler_clear(&s->as);
    s->zombie = true;
    if (!services_busy(s))
        session_free(s);
}

/* ---- service: the end of every entry point ---------------------------------- */

static void arm_timer(session *s, uint64_t at)
{
    mwl_loop *loop = s->srv->loop;
    if (at == UINT64_MAX) {
        if (s->timer_id)
            (void)mwl_loop_timer_cancel(loop, s->timer_id);
        s->timer_id = 0;
        return;
    }
    if (s->timer_id && s->timer_at == at)
        return;
    if (s->timer_id && mwl_loop_timer_move(loop, s->timer_id, at) == MWL_OK) {
        s->timer_at = at;
        return;
    }
    s->timer_id = 0;
    if (mwl_loop_timer_add(loop, at, on_timer, s, &s->timer_id) != MWL_OK) {
        /* The timer heap is sized for every session; running out is a bug,
         * and a session without a timer could live forever. */
        mwl_log(MWL_LOG_ERROR, "conn %s: no timer slot left; closing", s->peer);
        session_set_outcome(s, "internal error: no timer");
        s->done = true;
        return;
    }
    s->timer_at = at;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

void session_service(session *s)
{
    mwl_server *srv = s->srv;
    if (s->zombie) {
        if (!services_busy(s))
            session_free(s);
        return;
    }
    if (!s->done && (!s->ul || mwl_ul_get_state(s->ul) == MWL_UL_STA1))
        s->done = true;
    if (!s->done && !s->associated && !s->outcome[0] && mwl_ul_get_state(s->ul) == MWL_UL_STA13) {
        /* Sta2 -> Sta13 inside the UL: A-ABORT for a first PDU that is not an
         * A-ASSOCIATE-RQ (AA-1), or A-ASSOCIATE-RJ for its protocol version. */
        session_set_outcome(s, "refused before negotiation: first PDU not a valid A-ASSOCIATE-RQ");
    }
    if (!s->done && !s->write_blocked && session_pending_output(s))
        flush(s);
    if (s->done) {
        teardown(s);
        return;
    }
    uint64_t now = mwl_now_ms();
    size_t pending = session_pending_output(s);
    if (pending == 0)
        s->write_since_ms = 0;
    else if (s->write_since_ms == 0)
        s->write_since_ms = now;

    if (!s->shut_wr && pending == 0 && mwl_ul_get_state(s->ul) == MWL_UL_STA13) {
        /* Our last PDU is out: a lingering close (see SERVER_LINGER_MS). */
        s->shut_wr = true;
        uint64_t linger = srv->phase >= PHASE_ABORTING ? SERVER_SHUTDOWN_LINGER_MS : SERVER_LINGER_MS;
        s->linger_until = now + linger;
        if (mwl_conn_shutdown(s->conn) != MWL_OK) {
            teardown(s);
            return;
        }
    }
    if (pending < session_output_low(s) && s->associated && !s->closing) {
        services_drained(s);
        if (s->done) {
            teardown(s);
            return;
        }
        pending = session_pending_output(s);
    }

    /* Back-pressure: a peer that does not read our output is not read
     * either, so its requests cannot grow our buffers. After shutdown we
     * only read to see the peer's close. A transport (TLS) may need the
     * other direction to make progress: poll for what it wants. */
    unsigned want = 0;
    if (pending <= srv->cfg.max_output || s->shut_wr)
        want |= s->read_wants ? s->read_wants : MWL_NET_READ;
    if (pending && !s->shut_wr)
        want |= s->write_blocked && s->write_wants ? s->write_wants : MWL_NET_WRITE;
    if (want != mwl_loop_interest(s->io))
        mwl_loop_set_interest(srv->loop, s->io, want);

    uint64_t at = mwl_ul_deadline(s->ul);
    if (!s->associated && mwl_ul_get_state(s->ul) == MWL_UL_STA2)
        at = min_u64(at, s->started_ms + srv->cfg.associate_timeout_ms);
    if (pending && !s->shut_wr)
        at = min_u64(at, s->write_since_ms + srv->cfg.write_timeout_ms);
    if (s->shut_wr)
        at = min_u64(at, s->linger_until);
    if (mwl_conn_pending(s->conn) > 0)
        at = now; /* bytes a TLS layer holds that poll cannot see */
    arm_timer(s, at);
    if (s->done)
        teardown(s);
}

/* ---- callbacks --------------------------------------------------------------- */

static void on_io(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)loop;
    (void)io;
    session *s = user;
    /* A ready bit serves whichever operation waits for it: a TLS read may
     * wait for writability and a TLS write for readability. */
    bool write_ready = (events & MWL_NET_WRITE) && (!s->write_wants || (s->write_wants & MWL_NET_WRITE));
    write_ready = write_ready || ((events & MWL_NET_READ) && (s->write_wants & MWL_NET_READ));
    bool read_ready = (events & (MWL_NET_READ | MWL_NET_ERROR)) && !(s->read_wants & MWL_NET_WRITE);
    read_ready = read_ready || ((events & MWL_NET_WRITE) && (s->read_wants & MWL_NET_WRITE));
    if (events & MWL_NET_ERROR)
        read_ready = true;
    if (write_ready && s->write_blocked) {
        s->write_blocked = false;
        flush(s);
    }
    if (read_ready && !s->done && s->conn)
        read_once(s);
    session_service(s);
}

static void on_timer(mwl_loop *loop, uint64_t id, void *user)
{
    (void)loop;
    (void)id;
    session *s = user;
    s->timer_id = 0;
    uint64_t now = mwl_now_ms();
    if (s->conn && mwl_conn_pending(s->conn) > 0)
        read_once(s);
    if (s->done || !s->ul) {
        session_service(s);
        return;
    }
    size_t pending = session_pending_output(s);
    if (s->shut_wr && now >= s->linger_until) {
        session_set_outcome(s, "closed (peer did not close)");
        s->done = true;
    } else if (!s->associated && mwl_ul_get_state(s->ul) == MWL_UL_STA2 &&
               now >= s->started_ms + s->srv->cfg.associate_timeout_ms) {
        session_set_outcome(s, "no A-ASSOCIATE-RQ within associate-timeout");
        s->done = true;
    } else if (!s->shut_wr && pending && now >= s->write_since_ms + s->srv->cfg.write_timeout_ms) {
        mwl_log(MWL_LOG_WARN, "conn %s: peer read nothing of %zu pending bytes for %u ms; closing", s->peer,
                pending, (unsigned)s->srv->cfg.write_timeout_ms);
        session_set_outcome(s, "closed: peer stopped reading (write-timeout)");
        s->aborted = s->associated;
        s->done = true;
    } else if (now >= mwl_ul_deadline(s->ul) && mwl_ul_get_state(s->ul) == MWL_UL_STA6 && services_busy(s)) {
        /* The idle timer fired while a worker is still on this association's
         * C-FIND: it is not idle, we owe it the answer (write-timeout still
         * guards a peer that stops reading). */
        mwl_ul_touch(s->ul, now);
    } else if (now >= mwl_ul_deadline(s->ul)) {
        mwl_ul_state before = mwl_ul_get_state(s->ul);
        if (before == MWL_UL_STA2)
            session_set_outcome(s, "no A-ASSOCIATE-RQ within acse-timeout");
        else if (before == MWL_UL_STA13)
            session_set_outcome(s, "closed: peer did not close within acse-timeout");
        int rc = mwl_ul_timer(s->ul, now);
        if (rc != MWL_OK) {
            session_set_outcome(s, "internal error: %s", mwl_status_str(rc));
            s->done = true;
        } else {
            drain_events(s, now);
        }
    }
    session_service(s);
}
