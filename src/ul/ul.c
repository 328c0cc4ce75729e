/* The Upper Layer session (PS3.8 §9.2): input framing, the actions of
 * PS3.8 Tables 9-6..9-9 driven by the state table in fsm.c, timers, the
 * output queue and the event queue. The states and their invariants are
 * described once, in ul.h.
 *
 * Input framing: bytes are copied into `in` until the 6-byte header is
 * there; mwl_pdu_decode then judges the header alone (unknown type, length
 * over our limit for that type, impossible fixed length) before a single
 * byte more is buffered, so a peer's 4 GiB claim costs nothing. Only then
 * is `in` sized to the whole PDU. One PDU is processed per mwl_ul_feed call,
 * so the P-DATA event's PDVs can point into `in` until the next feed.
 *
 * Memory: `scratch` holds what the decoder carves for the current PDU and is
 * cleared when the next PDU starts; the one A-ASSOCIATE-RQ/-AC that becomes
 * association state moves, arena and all, into `assoc`. That is enough
 * because mwl_pdu_decode copies every string and byte field into its arena;
 * only PDV data points into `in`, which is reused for the next PDU. `local`
 * holds our copy of the contexts we proposed (requestor).
 *
 * Bounds: input <= 6 + max(max_pdu_length, max_associate_length); events
 * <= 8 (at most two per transition, drained before each feed); output
 * caused by the peer alone is one A-ASSOCIATE-RJ or A-ABORT, or in Sta13 at
 * most one unwritten A-ABORT at a time (AA-7); the rest of the output is
 * what the driver asked to send. */
#include <string.h>

#include "base/log.h"
#include "ul/ul_int.h"

enum { EVENT_QUEUE = 8, CONTEXT_SLOTS = 128 /* odd IDs 1..255 */ };

typedef struct context_slot {
    bool proposed;
    bool accepted;
    const char *abstract_syntax;
    const char *const *transfer_syntaxes; /* as proposed */
    size_t transfer_syntax_count;
    const char *transfer_syntax; /* accepted one, one of the above */
} context_slot;

struct mwl_ul {
    mwl_ul_config cfg;
    const mwl_mem *mem;
    mwl_ul_state state;
    int fatal; /* 0, or the sticky fatal status */

    /* input */
    uint8_t *in;
    size_t in_len, in_cap;
    size_t pdu_total;   /* 6 + PDU-length once the header passed, else 0 */
    bool pdu_done;      /* `in` holds a processed PDU; dropped on next feed */
    bool discard_input; /* framing lost after an unparseable PDU */
    mwl_pdu pdu;        /* the last decoded PDU (scratch arena, `in`) */
    mwl_diag diag;

    /* output: bytes out.data[out_pos .. out.len) are pending */
    mwl_wbuf out;
    size_t out_pos;
    size_t abort_end; /* end of the last queued A-ABORT in out.data, if still pending */

    /* events: a small ring; at most two events per transition */
    mwl_ul_event events[EVENT_QUEUE];
    size_t event_head, event_count;
    char abort_detail[sizeof(((mwl_diag *)0)->msg)];

    /* timers, UINT64_MAX when stopped */
    uint64_t artim_deadline;
    uint64_t idle_deadline;

    /* association */
    mwl_arena scratch, assoc, local;
    mwl_wbuf rq_bytes; /* requestor: encoded A-ASSOCIATE-RQ, sent on Evt2 */
    mwl_assoc_rq rq;   /* acceptor: as received (assoc arena) */
    mwl_assoc_ac ac;   /* requestor: as received (assoc arena) */
    bool has_rq, has_ac;
    uint32_t peer_max_pdu_length;
    context_slot contexts[CONTEXT_SLOTS];
};

/* Arguments a primitive or a PDU brings to its action. */
typedef struct action_args {
    const mwl_assoc_rq *rq; /* Evt1 */
    const mwl_assoc_ac *ac; /* Evt7 */
    const mwl_assoc_rj *rj; /* Evt8 */
    const mwl_pdv *pdvs;    /* Evt9 */
    size_t pdv_count;
    uint8_t abort_reason; /* Evt19: provider reason for AA-7/AA-8 */
    bool timeout;         /* Evt15 raised by the idle timer */
} action_args;

/* ======================================================================
 * Names, config, lifetime
 * ====================================================================== */

const char *mwl_ul_state_name(mwl_ul_state state)
{
    static const char *const names[] = {"Sta1", "Sta2", "Sta3",  "Sta4",  "Sta5",  "Sta6", "Sta7",
                                        "Sta8", "Sta9", "Sta10", "Sta11", "Sta12", "Sta13"};
    if (state < MWL_UL_STA1 || state > MWL_UL_STA13)
        return "Sta?";
    return names[(size_t)state - 1];
}

const char *mwl_ul_event_name(mwl_ul_event_type type)
{
    switch (type) {
    case MWL_UL_EV_ASSOCIATE_RQ: return "ASSOCIATE_RQ";
    case MWL_UL_EV_ASSOCIATE_AC: return "ASSOCIATE_AC";
    case MWL_UL_EV_ASSOCIATE_RJ: return "ASSOCIATE_RJ";
    case MWL_UL_EV_P_DATA: return "P_DATA";
    case MWL_UL_EV_RELEASE_RQ: return "RELEASE_RQ";
    case MWL_UL_EV_RELEASE_RP: return "RELEASE_RP";
    case MWL_UL_EV_ABORTED: return "ABORTED";
    case MWL_UL_EV_CLOSED: return "CLOSED";
    default: return "?";
    }
}

void mwl_ul_config_init(mwl_ul_config *cfg, mwl_ul_role role)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->role = role;
    cfg->mem = NULL;
    cfg->max_pdu_length = 16384;
    cfg->max_associate_length = 131072;
    mwl_pdu_limits_init(&cfg->limits);
    cfg->artim_timeout_ms = 30000;
    cfg->idle_timeout_ms = 0;
}

int mwl_ul_new(const mwl_ul_config *cfg, mwl_ul **out)
{
    if (!out)
        return MWL_E_INVALID;
    *out = NULL;
    if (!cfg || (cfg->role != MWL_UL_ACCEPTOR && cfg->role != MWL_UL_REQUESTOR) || cfg->max_pdu_length < 64 ||
        cfg->max_associate_length < 1024 || cfg->artim_timeout_ms == 0)
        return MWL_E_INVALID;
    const mwl_mem *mem = cfg->mem ? cfg->mem : mwl_mem_default();
    mwl_ul *ul = mwl_mem_calloc(mem, 1, sizeof *ul);
    if (!ul)
        return MWL_E_NOMEM;
    ul->cfg = *cfg;
    ul->mem = mem;
    ul->state = MWL_UL_STA1;
    mwl_wbuf_init(&ul->out, mem);
    mwl_wbuf_init(&ul->rq_bytes, mem);
    mwl_arena_init(&ul->scratch, mem);
    mwl_arena_init(&ul->assoc, mem);
    mwl_arena_init(&ul->local, mem);
    ul->artim_deadline = UINT64_MAX;
    ul->idle_deadline = UINT64_MAX;
    *out = ul;
    return MWL_OK;
}

void mwl_ul_free(mwl_ul *ul)
{
    if (!ul)
        return;
    mwl_mem_free(ul->mem, ul->in);
    mwl_wbuf_clear(&ul->out);
    mwl_wbuf_clear(&ul->rq_bytes);
    mwl_arena_clear(&ul->scratch);
    mwl_arena_clear(&ul->assoc);
    mwl_arena_clear(&ul->local);
    mwl_mem_free(ul->mem, ul);
}

/* ======================================================================
 * Helpers: events, output, timers, contexts
 * ====================================================================== */

static int push_event(mwl_ul *ul, const mwl_ul_event *ev)
{
    if (ul->event_count == EVENT_QUEUE)
        return MWL_E_INTERNAL; /* at most two per transition, drained before each feed */
    ul->events[(ul->event_head + ul->event_count) % EVENT_QUEUE] = *ev;
    ul->event_count++;
    return MWL_OK;
}

static int push_simple(mwl_ul *ul, mwl_ul_event_type type)
{
    mwl_ul_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    return push_event(ul, &ev);
}

/* A-ABORT / A-P-ABORT indication. At most one per session: every action
 * that issues one leads to Sta13 or Sta1, where none is issued again. */
static int push_aborted(mwl_ul *ul, mwl_ul_abort_origin origin, uint8_t source, uint8_t reason,
                        const char *detail)
{
    mwl_ul_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = MWL_UL_EV_ABORTED;
    ev.u.aborted.origin = origin;
    ev.u.aborted.source = source;
    ev.u.aborted.reason = reason;
    size_t n = strlen(detail);
    if (n >= sizeof ul->abort_detail)
        n = sizeof ul->abort_detail - 1;
    memcpy(ul->abort_detail, detail, n);
    ul->abort_detail[n] = '\0';
    ev.u.aborted.detail = ul->abort_detail;
    return push_event(ul, &ev);
}

/* Drops written bytes from the front before appending, so the buffer holds
 * only what is pending and never memmoves on each partial write. */
static void out_compact(mwl_ul *ul)
{
    if (ul->out_pos == 0)
        return;
    size_t shift = ul->out_pos;
    mwl_wbuf_consume(&ul->out, shift);
    ul->out_pos = 0;
    ul->abort_end = ul->abort_end > shift ? ul->abort_end - shift : 0;
}

/* A fixed-length PDU; only an allocation failure can stop it. */
static int queue_abort(mwl_ul *ul, uint8_t source, uint8_t reason)
{
    out_compact(ul);
    int rc = mwl_pdu_encode_abort(source, reason, &ul->out);
    if (rc == MWL_OK)
        ul->abort_end = ul->out.len;
    return rc;
}

static void artim_start(mwl_ul *ul, uint64_t now)
{
    uint64_t t = ul->cfg.artim_timeout_ms;
    ul->artim_deadline = now > UINT64_MAX - t ? UINT64_MAX - 1 : now + t;
}

static void artim_stop(mwl_ul *ul)
{
    ul->artim_deadline = UINT64_MAX;
}

static bool idle_state(mwl_ul_state s)
{
    return s >= MWL_UL_STA3 && s <= MWL_UL_STA12;
}

/* Activity (a whole PDU in, a primitive accepted) restarts the idle timer
 * in the states where it runs and stops it elsewhere. */
static void idle_rearm(mwl_ul *ul, uint64_t now)
{
    uint64_t t = ul->cfg.idle_timeout_ms;
    if (t == 0 || !idle_state(ul->state))
        ul->idle_deadline = UINT64_MAX;
    else
        ul->idle_deadline = now > UINT64_MAX - t ? UINT64_MAX - 1 : now + t;
}

static context_slot *slot_for(mwl_ul *ul, uint8_t id)
{
    return (id & 1) ? &ul->contexts[id >> 1] : NULL;
}

static const context_slot *slot_for_const(const mwl_ul *ul, uint8_t id)
{
    return (id & 1) ? &ul->contexts[id >> 1] : NULL;
}

/* The proposed transfer syntax equal to `ts`, or NULL. */
static const char *proposed_ts(const context_slot *s, const char *ts)
{
    if (!ts)
        return NULL;
    for (size_t i = 0; i < s->transfer_syntax_count; i++)
        if (strcmp(s->transfer_syntaxes[i], ts) == 0)
            return s->transfer_syntaxes[i];
    return NULL;
}

/* An A-ASSOCIATE-AC (ours to send, or the peer's) must answer only
 * contexts that were proposed, each accepted one with a transfer syntax
 * that was proposed for it (PS3.8 §7.1.1.13/§7.1.1.14). */
static bool ac_consistent(const mwl_ul *ul, const mwl_assoc_ac *ac)
{
    if (ac->context_count && !ac->contexts)
        return false;
    for (size_t i = 0; i < ac->context_count; i++) {
        const mwl_pctx_ac *c = &ac->contexts[i];
        const context_slot *s = slot_for_const(ul, c->id);
        if (!s || !s->proposed)
            return false;
        if (c->result == MWL_PCTX_ACCEPTANCE && !proposed_ts(s, c->transfer_syntax))
            return false;
    }
    return true;
}

static void record_accepted(mwl_ul *ul, const mwl_assoc_ac *ac)
{
    for (size_t i = 0; i < ac->context_count; i++) {
        const mwl_pctx_ac *c = &ac->contexts[i];
        context_slot *s = slot_for(ul, c->id);
        if (c->result != MWL_PCTX_ACCEPTANCE || s->accepted)
            continue;
        s->accepted = true;
        s->transfer_syntax = proposed_ts(s, c->transfer_syntax); /* lives with the proposal */
    }
}

static bool pdvs_on_accepted_contexts(const mwl_ul *ul, const mwl_pdv *pdvs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const context_slot *s = slot_for_const(ul, pdvs[i].context_id);
        if (!s || !s->accepted)
            return false;
    }
    return true;
}

/* ======================================================================
 * Actions (PS3.8 §9.2.2, Tables 9-6..9-9)
 *
 * Each returns MWL_OK and sets *next, or fails before changing anything
 * (MWL_E_INVALID / MWL_E_LIMIT for a bad primitive argument) or fatally.
 * ====================================================================== */

/* AE-1, requestor: remember what we propose and encode the RQ now, so a
 * bad RQ is refused before the state changes. */
static int act_ae1(mwl_ul *ul, const mwl_assoc_rq *rq)
{
    if (!rq || rq->context_count == 0 || rq->context_count > CONTEXT_SLOTS || !rq->contexts)
        return MWL_E_INVALID;
    mwl_assoc_rq copy = *rq;
    copy.user_info.max_length = ul->cfg.max_pdu_length; /* advertise what we enforce */
    mwl_wbuf_clear(&ul->rq_bytes);
    int rc = mwl_pdu_encode_associate_rq(&copy, &ul->rq_bytes);
    if (rc != MWL_OK) {
        mwl_wbuf_clear(&ul->rq_bytes);
        return rc;
    }
    /* The encoder checked odd, unique IDs and non-empty syntax lists. */
    for (size_t i = 0; i < rq->context_count; i++) {
        const mwl_pctx_rq *c = &rq->contexts[i];
        context_slot *s = slot_for(ul, c->id);
        const char **ts = mwl_arena_alloc(&ul->local, c->transfer_syntax_count * sizeof *ts);
        const char *as = mwl_arena_strndup(&ul->local, c->abstract_syntax, strlen(c->abstract_syntax));
        if (!ts || !as)
            return MWL_E_NOMEM;
        for (size_t j = 0; j < c->transfer_syntax_count; j++) {
            ts[j] = mwl_arena_strndup(&ul->local, c->transfer_syntaxes[j], strlen(c->transfer_syntaxes[j]));
            if (!ts[j])
                return MWL_E_NOMEM;
        }
        s->proposed = true;
        s->abstract_syntax = as;
        s->transfer_syntaxes = ts;
        s->transfer_syntax_count = c->transfer_syntax_count;
    }
    return MWL_OK;
}

/* The decoded RQ/AC becomes association state: its arena moves. */
static void keep_scratch(mwl_ul *ul)
{
    mwl_arena_clear(&ul->assoc); /* empty: only one RQ/AC is ever kept */
    ul->assoc = ul->scratch;
    mwl_arena_init(&ul->scratch, ul->mem);
}

/* AE-6, acceptor: "if the A-ASSOCIATE-RQ is acceptable to the service
 * provider". The provider's own condition is the protocol version (Table
 * 9-11: bit 0 must be set; reject source 2 = service provider, ACSE). */
static int act_ae6(mwl_ul *ul, uint64_t now, uint8_t *next, const mwl_ul_transition *t)
{
    artim_stop(ul);
    const mwl_assoc_rq *rq = &ul->pdu.u.associate_rq;
    if (!(rq->protocol_version & 1)) {
        mwl_assoc_rj rj = {MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_PROVIDER_ACSE,
                           MWL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED};
        out_compact(ul);
        int rc = mwl_pdu_encode_associate_rj(&rj, &ul->out);
        if (rc != MWL_OK)
            return rc;
        artim_start(ul, now);
        *next = t->next_alt;
        return MWL_OK;
    }
    keep_scratch(ul);
    ul->rq = *rq;
    ul->has_rq = true;
    ul->peer_max_pdu_length = rq->user_info.max_length;
    for (size_t i = 0; i < rq->context_count; i++) {
        const mwl_pctx_rq *c = &rq->contexts[i];
        context_slot *s = slot_for(ul, c->id); /* the decoder checked odd, unique IDs */
        if (!s)
            return MWL_E_INTERNAL;
        s->proposed = true;
        s->abstract_syntax = c->abstract_syntax;
        s->transfer_syntaxes = c->transfer_syntaxes;
        s->transfer_syntax_count = c->transfer_syntax_count;
    }
    mwl_ul_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = MWL_UL_EV_ASSOCIATE_RQ;
    ev.u.associate_rq = &ul->rq;
    *next = t->next;
    return push_event(ul, &ev);
}

/* AE-7, acceptor: send the A-ASSOCIATE-AC. */
static int act_ae7(mwl_ul *ul, const mwl_assoc_ac *ac)
{
    if (!ac || !ac_consistent(ul, ac))
        return MWL_E_INVALID;
    mwl_assoc_ac copy = *ac;
    memcpy(copy.echo, ul->rq.echo, sizeof copy.echo); /* Table 9-17: bytes 11-74 of the RQ */
    copy.user_info.max_length = ul->cfg.max_pdu_length;
    out_compact(ul);
    int rc = mwl_pdu_encode_associate_ac(&copy, &ul->out);
    if (rc != MWL_OK)
        return rc;
    record_accepted(ul, ac);
    return MWL_OK;
}

/* DT-1 / AR-7: one P-DATA-TF, within the peer's Maximum-length-received
 * (PS3.8 D.1: exceeding it is a protocol error on our side). */
static int act_send_p_data(mwl_ul *ul, const mwl_pdv *pdvs, size_t count)
{
    if (!pdvs || count == 0)
        return MWL_E_INVALID;
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (pdvs[i].length > UINT32_MAX)
            return MWL_E_LIMIT;
        total += 6 + (uint64_t)pdvs[i].length; /* 4-byte item length, ID, control header */
        if (total > UINT32_MAX)
            return MWL_E_LIMIT;
    }
    if (ul->peer_max_pdu_length != 0 && total > ul->peer_max_pdu_length)
        return MWL_E_LIMIT;
    if (!pdvs_on_accepted_contexts(ul, pdvs, count))
        return MWL_E_INVALID;
    out_compact(ul);
    return mwl_pdu_encode_p_data(pdvs, count, &ul->out);
}

static int act_send_fixed(mwl_ul *ul, mwl_pdu_type type)
{
    out_compact(ul);
    return type == MWL_PDU_RELEASE_RQ ? mwl_pdu_encode_release_rq(&ul->out)
                                      : mwl_pdu_encode_release_rp(&ul->out);
}

static int push_p_data(mwl_ul *ul)
{
    mwl_ul_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = MWL_UL_EV_P_DATA;
    ev.u.p_data.pdvs = ul->pdu.u.p_data.pdvs;
    ev.u.p_data.count = ul->pdu.u.p_data.pdv_count;
    return push_event(ul, &ev);
}

static int push_release(mwl_ul *ul, mwl_ul_event_type type, bool collision)
{
    mwl_ul_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    if (type == MWL_UL_EV_RELEASE_RQ)
        ev.u.release_rq.collision = collision;
    else
        ev.u.release_rp.collision = collision;
    return push_event(ul, &ev);
}

/* Runs the action of cell `t`. */
static int run_action(mwl_ul *ul, const mwl_ul_transition *t, const action_args *a, uint64_t now,
                      uint8_t *next)
{
    int rc = MWL_OK;
    *next = t->next;
    switch ((mwl_ul_action)t->action) {
    case MWL_UL_ACT_NONE: return MWL_E_PROTOCOL;

    /* ---- establishment (Table 9-6) ---- */
    case MWL_UL_AE_1: /* the driver now connects (we own no socket) */ return act_ae1(ul, a->rq);
    case MWL_UL_AE_2:
        out_compact(ul);
        mwl_wbuf_put(&ul->out, ul->rq_bytes.data, ul->rq_bytes.len);
        rc = ul->out.status;
        mwl_wbuf_clear(&ul->rq_bytes);
        return rc;
    case MWL_UL_AE_3: {
        keep_scratch(ul);
        ul->ac = ul->pdu.u.associate_ac;
        ul->has_ac = true;
        ul->peer_max_pdu_length = ul->ac.user_info.max_length;
        record_accepted(ul, &ul->ac);
        mwl_ul_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = MWL_UL_EV_ASSOCIATE_AC;
        ev.u.associate_ac = &ul->ac;
        return push_event(ul, &ev);
    }
    case MWL_UL_AE_4: {
        mwl_ul_event ev;
        memset(&ev, 0, sizeof ev);
        ev.type = MWL_UL_EV_ASSOCIATE_RJ;
        ev.u.associate_rj = ul->pdu.u.associate_rj;
        if ((rc = push_event(ul, &ev)) != MWL_OK)
            return rc;
        return push_simple(ul, MWL_UL_EV_CLOSED);
    }
    case MWL_UL_AE_5: artim_start(ul, now); return MWL_OK;
    case MWL_UL_AE_6: return act_ae6(ul, now, next, t);
    case MWL_UL_AE_7: return act_ae7(ul, a->ac);
    case MWL_UL_AE_8: {
        const mwl_assoc_rj *rj = a->rj;
        if (!rj || (rj->result != MWL_RJ_RESULT_PERMANENT && rj->result != MWL_RJ_RESULT_TRANSIENT) ||
            rj->source < MWL_RJ_SOURCE_USER || rj->source > MWL_RJ_SOURCE_PROVIDER_PRESENTATION)
            return MWL_E_INVALID;
        out_compact(ul);
        if ((rc = mwl_pdu_encode_associate_rj(rj, &ul->out)) != MWL_OK)
            return rc;
        artim_start(ul, now);
        return MWL_OK;
    }

    /* ---- data transfer (Table 9-7) ---- */
    case MWL_UL_DT_1:
    case MWL_UL_AR_7: return act_send_p_data(ul, a->pdvs, a->pdv_count);
    case MWL_UL_DT_2:
    case MWL_UL_AR_6: return push_p_data(ul);

    /* ---- release (Table 9-8) ---- */
    case MWL_UL_AR_1: return act_send_fixed(ul, MWL_PDU_RELEASE_RQ);
    case MWL_UL_AR_2: return push_release(ul, MWL_UL_EV_RELEASE_RQ, false);
    case MWL_UL_AR_3:
        if ((rc = push_release(ul, MWL_UL_EV_RELEASE_RP, false)) != MWL_OK)
            return rc;
        return push_simple(ul, MWL_UL_EV_CLOSED);
    case MWL_UL_AR_4:
        if ((rc = act_send_fixed(ul, MWL_PDU_RELEASE_RP)) != MWL_OK)
            return rc;
        artim_start(ul, now);
        return MWL_OK;
    case MWL_UL_AR_5: artim_stop(ul); return push_simple(ul, MWL_UL_EV_CLOSED);
    case MWL_UL_AR_8:
        /* Release collision (§7.2.2.7): which side we are decides the path. */
        if (ul->cfg.role != MWL_UL_REQUESTOR)
            *next = t->next_alt;
        return push_release(ul, MWL_UL_EV_RELEASE_RQ, true);
    case MWL_UL_AR_9: return act_send_fixed(ul, MWL_PDU_RELEASE_RP);
    case MWL_UL_AR_10: return push_release(ul, MWL_UL_EV_RELEASE_RP, true);

    /* ---- abort (Table 9-9) ---- */
    case MWL_UL_AA_1:
        /* "service-user source": the table's text, also when AA-1 answers a
         * bad first PDU in Sta2 (no association exists yet). */
        if ((rc = queue_abort(ul, MWL_ABORT_SOURCE_USER, MWL_ABORT_REASON_NOT_SPECIFIED)) != MWL_OK)
            return rc;
        artim_start(ul, now);
        if (a->timeout)
            return push_aborted(ul, MWL_UL_ABORT_TIMEOUT, MWL_ABORT_SOURCE_USER, 0, "idle timeout");
        return MWL_OK;
    case MWL_UL_AA_2:
        artim_stop(ul);
        if (a->timeout && (rc = push_aborted(ul, MWL_UL_ABORT_TIMEOUT, 0, 0, "idle timeout")) != MWL_OK)
            return rc;
        return push_simple(ul, MWL_UL_EV_CLOSED);
    case MWL_UL_AA_3:
        if ((rc = push_aborted(ul, MWL_UL_ABORT_PEER, ul->pdu.u.abort.source, ul->pdu.u.abort.reason,
                               "A-ABORT received")) != MWL_OK)
            return rc;
        return push_simple(ul, MWL_UL_EV_CLOSED);
    case MWL_UL_AA_4:
        if ((rc = push_aborted(ul, MWL_UL_ABORT_TRANSPORT, 0, 0, "transport closed")) != MWL_OK)
            return rc;
        return push_simple(ul, MWL_UL_EV_CLOSED);
    case MWL_UL_AA_5: artim_stop(ul); return push_simple(ul, MWL_UL_EV_CLOSED);
    case MWL_UL_AA_6: return MWL_OK; /* ignore the PDU */
    case MWL_UL_AA_7: {
        /* Sta13: the association is already gone; one unwritten A-ABORT
         * says it all, so a peer that keeps sending cannot grow our output. */
        if (ul->abort_end > ul->out_pos)
            return MWL_OK;
        uint8_t reason = t->event == MWL_UL_EVT19 ? a->abort_reason : MWL_ABORT_UNEXPECTED_PDU;
        return queue_abort(ul, MWL_ABORT_SOURCE_PROVIDER, reason);
    }
    case MWL_UL_AA_8: {
        uint8_t reason = t->event == MWL_UL_EVT19 ? a->abort_reason : MWL_ABORT_UNEXPECTED_PDU;
        if ((rc = queue_abort(ul, MWL_ABORT_SOURCE_PROVIDER, reason)) != MWL_OK)
            return rc;
        artim_start(ul, now);
        const char *detail = t->event == MWL_UL_EVT19 ? ul->diag.msg : "unexpected PDU";
        return push_aborted(ul, MWL_UL_ABORT_PROTOCOL, MWL_ABORT_SOURCE_PROVIDER, reason, detail);
    }
    case MWL_UL_ACTION_COUNT: break;
    }
    return MWL_E_INTERNAL;
}

/* Looks up (state, event) in Table 9-10 and runs the cell. A "—" cell
 * refuses (MWL_E_PROTOCOL) and changes nothing. */
static int fire(mwl_ul *ul, mwl_ul_fsm_event event, const action_args *args, uint64_t now)
{
    const mwl_ul_transition *t = mwl_ul_fsm_lookup((int)ul->state, (int)event);
    if (!t)
        return MWL_E_INTERNAL;
    if (t->action == MWL_UL_ACT_NONE)
        return MWL_E_PROTOCOL;
    uint8_t next = t->next;
    int rc = run_action(ul, t, args, now, &next);
    if (rc != MWL_OK) {
        if (mwl_is_fatal(rc) || ul->out.status != MWL_OK) {
            ul->fatal = mwl_is_fatal(rc) ? rc : MWL_E_NOMEM;
            return ul->fatal;
        }
        return rc;
    }
    if (mwl_log_enabled(MWL_LOG_DEBUG))
        mwl_log(MWL_LOG_DEBUG, "ul: %s Evt%d %s -> %s", mwl_ul_state_name(ul->state), (int)event,
                mwl_ul_action_name(t->action), mwl_ul_state_name((mwl_ul_state)next));
    ul->state = (mwl_ul_state)next;
    idle_rearm(ul, now);
    return MWL_OK;
}

/* ======================================================================
 * Input
 * ====================================================================== */

static mwl_ul_fsm_event pdu_event(mwl_pdu_type type)
{
    switch (type) {
    case MWL_PDU_ASSOCIATE_RQ: return MWL_UL_EVT6;
    case MWL_PDU_ASSOCIATE_AC: return MWL_UL_EVT3;
    case MWL_PDU_ASSOCIATE_RJ: return MWL_UL_EVT4;
    case MWL_PDU_P_DATA_TF: return MWL_UL_EVT10;
    case MWL_PDU_RELEASE_RQ: return MWL_UL_EVT12;
    case MWL_PDU_RELEASE_RP: return MWL_UL_EVT13;
    case MWL_PDU_ABORT: return MWL_UL_EVT16;
    }
    return MWL_UL_EVT19;
}

/* Evt19 with the provider reason for the A-ABORT (PS3.8 Table 9-26). */
static int invalid_pdu(mwl_ul *ul, uint8_t reason, uint64_t now)
{
    action_args a;
    memset(&a, 0, sizeof a);
    a.abort_reason = reason;
    return fire(ul, MWL_UL_EVT19, &a, now);
}

/* A whole, well-formed PDU: map it to its event. Two checks only the
 * session can make turn a well-formed PDU into an invalid one (Evt19,
 * "invalid-PDU-parameter value"): P-DATA on a context that was not
 * accepted, and an A-ASSOCIATE-AC answering contexts we did not propose. */
static int handle_pdu(mwl_ul *ul, uint64_t now)
{
    mwl_ul_fsm_event event = pdu_event(ul->pdu.type);
    const mwl_ul_transition *t = mwl_ul_fsm_lookup((int)ul->state, (int)event);
    if (!t)
        return MWL_E_INTERNAL;
    if ((t->action == MWL_UL_DT_2 || t->action == MWL_UL_AR_6) &&
        !pdvs_on_accepted_contexts(ul, ul->pdu.u.p_data.pdvs, ul->pdu.u.p_data.pdv_count)) {
        mwl_diag_set(&ul->diag, 0, 0, "P-DATA-TF on a presentation context that was not accepted");
        return invalid_pdu(ul, MWL_ABORT_INVALID_PDU_PARAMETER_VALUE, now);
    }
    if (t->action == MWL_UL_AE_3 && !ac_consistent(ul, &ul->pdu.u.associate_ac)) {
        mwl_diag_set(&ul->diag, 0, 0, "A-ASSOCIATE-AC answers a presentation context we did not propose");
        return invalid_pdu(ul, MWL_ABORT_INVALID_PDU_PARAMETER_VALUE, now);
    }
    action_args a;
    memset(&a, 0, sizeof a);
    return fire(ul, event, &a, now);
}

/* The decoder's verdict on a PDU it could not accept, as an A-ABORT reason
 * (PS3.8 Table 9-26): an unknown type is "unrecognized-PDU"; lengths over
 * our limits and malformed items are "invalid-PDU-parameter value". */
static uint8_t abort_reason_for(int status)
{
    return status == MWL_E_UNSUPPORTED ? MWL_ABORT_UNRECOGNIZED_PDU : MWL_ABORT_INVALID_PDU_PARAMETER_VALUE;
}

static int ensure_input(mwl_ul *ul, size_t need)
{
    if (need <= ul->in_cap)
        return MWL_OK;
    uint8_t *p = mwl_mem_realloc(ul->mem, ul->in, need);
    if (!p)
        return MWL_E_NOMEM;
    ul->in = p;
    ul->in_cap = need;
    return MWL_OK;
}

/* The limits for one PDU: P-DATA-TF by our advertised maximum (PS3.8
 * D.1), A-ASSOCIATE-RQ/AC by max_associate_length; the fixed-length PDUs
 * are held to 4 by the decoder itself. */
static void limits_for(const mwl_ul *ul, uint8_t type, mwl_pdu_limits *lim)
{
    *lim = ul->cfg.limits;
    lim->max_pdu_length = type == MWL_PDU_P_DATA_TF ? ul->cfg.max_pdu_length : ul->cfg.max_associate_length;
}

int mwl_ul_feed(mwl_ul *ul, const uint8_t *in, size_t len, size_t *consumed, uint64_t now_ms)
{
    if (!ul || !consumed || (!in && len))
        return MWL_E_INVALID;
    *consumed = 0;
    if (ul->fatal)
        return ul->fatal;
    if (ul->event_count)
        return MWL_AGAIN;
    if (ul->state == MWL_UL_STA1 || ul->state == MWL_UL_STA4)
        return MWL_E_CLOSED;
    if (ul->discard_input) {
        *consumed = len;
        return MWL_OK;
    }
    if (ul->pdu_done) {
        /* The previous PDU's events are drained: its bytes can go. */
        ul->in_len = 0;
        ul->pdu_total = 0;
        ul->pdu_done = false;
        mwl_arena_clear(&ul->scratch);
        mwl_diag_clear(&ul->diag);
    }
    size_t used = 0;
    int rc = MWL_OK;
    while (used < len) {
        size_t want = ul->pdu_total ? ul->pdu_total : MWL_PDU_HEADER_SIZE;
        if ((rc = ensure_input(ul, want)) != MWL_OK)
            break;
        size_t take = want - ul->in_len;
        if (take > len - used)
            take = len - used;
        memcpy(ul->in + ul->in_len, in + used, take);
        ul->in_len += take;
        used += take;
        if (ul->in_len < want)
            break; /* everything consumed, PDU still incomplete */

        mwl_pdu_limits lim;
        size_t n = 0;
        limits_for(ul, ul->in[0], &lim);
        rc = mwl_pdu_decode(ul->in, ul->in_len, &ul->scratch, &lim, &ul->pdu, &n, &ul->diag);
        if (rc == MWL_NEED_MORE && ul->pdu_total == 0) {
            /* The header passed the decoder's checks, so the length is
             * within our limit for this type: now it may be buffered. */
            uint32_t length = mwl_load_u32be(ul->in + 2);
            if (length > lim.max_pdu_length) { /* never trust a length unchecked */
                rc = MWL_E_INTERNAL;
                break;
            }
            ul->pdu_total = MWL_PDU_HEADER_SIZE + (size_t)length;
            rc = MWL_OK;
            continue;
        }
        ul->pdu_done = true;
        if (rc == MWL_OK) {
            rc = handle_pdu(ul, now_ms);
        } else if (rc == MWL_NEED_MORE || mwl_is_fatal(rc)) {
            rc = rc == MWL_NEED_MORE ? MWL_E_INTERNAL : rc; /* all bytes were there */
        } else {
            /* Framing cannot be trusted past a PDU we could not parse. */
            ul->discard_input = true;
            rc = invalid_pdu(ul, abort_reason_for(rc), now_ms);
        }
        break;
    }
    if (rc != MWL_OK && mwl_is_fatal(rc))
        ul->fatal = rc;
    *consumed = used;
    if (ul->discard_input && rc == MWL_OK)
        *consumed = len; /* nothing after the bad PDU will be read */
    return rc;
}

/* ======================================================================
 * Timers, transport, output, events
 * ====================================================================== */

void mwl_ul_touch(mwl_ul *ul, uint64_t now_ms)
{
    if (ul->idle_deadline != UINT64_MAX)
        idle_rearm(ul, now_ms);
}

uint64_t mwl_ul_deadline(const mwl_ul *ul)
{
    if (!ul || ul->fatal)
        return UINT64_MAX;
    return ul->artim_deadline < ul->idle_deadline ? ul->artim_deadline : ul->idle_deadline;
}

int mwl_ul_timer(mwl_ul *ul, uint64_t now_ms)
{
    if (!ul)
        return MWL_E_INVALID;
    if (ul->fatal)
        return ul->fatal;
    action_args a;
    memset(&a, 0, sizeof a);
    /* UINT64_MAX means "stopped" (starting a timer saturates below it). */
    if (ul->artim_deadline != UINT64_MAX && now_ms >= ul->artim_deadline)
        return fire(ul, MWL_UL_EVT18, &a, now_ms);
    if (ul->idle_deadline != UINT64_MAX && now_ms >= ul->idle_deadline) {
        /* The application-level timeout acts as the local user would:
         * an A-ABORT request (Evt15), reported since nobody asked for it. */
        a.timeout = true;
        return fire(ul, MWL_UL_EVT15, &a, now_ms);
    }
    return MWL_OK;
}

int mwl_ul_transport_connected(mwl_ul *ul, uint64_t now_ms)
{
    if (!ul)
        return MWL_E_INVALID;
    if (ul->fatal)
        return ul->fatal;
    action_args a;
    memset(&a, 0, sizeof a);
    return fire(ul, ul->cfg.role == MWL_UL_ACCEPTOR ? MWL_UL_EVT5 : MWL_UL_EVT2, &a, now_ms);
}

int mwl_ul_transport_closed(mwl_ul *ul, uint64_t now_ms)
{
    if (!ul)
        return MWL_E_INVALID;
    if (ul->fatal)
        return ul->fatal;
    action_args a;
    memset(&a, 0, sizeof a);
    return fire(ul, MWL_UL_EVT17, &a, now_ms);
}

size_t mwl_ul_pending_output(const mwl_ul *ul, const uint8_t **out)
{
    if (out)
        *out = NULL;
    if (!ul || ul->fatal || ul->out_pos >= ul->out.len)
        return 0;
    if (out)
        *out = ul->out.data + ul->out_pos;
    return ul->out.len - ul->out_pos;
}

void mwl_ul_output_written(mwl_ul *ul, size_t n)
{
    if (!ul || ul->fatal)
        return;
    size_t pending = ul->out.len - ul->out_pos;
    ul->out_pos += n < pending ? n : pending;
    if (ul->out_pos == ul->out.len) {
        ul->out.len = 0;
        ul->out_pos = 0;
        ul->abort_end = 0;
    }
}

int mwl_ul_next_event(mwl_ul *ul, mwl_ul_event *ev)
{
    if (!ul || !ev)
        return MWL_E_INVALID;
    if (ul->fatal)
        return ul->fatal;
    if (ul->event_count == 0)
        return MWL_AGAIN;
    *ev = ul->events[ul->event_head];
    ul->event_head = (ul->event_head + 1) % EVENT_QUEUE;
    ul->event_count--;
    return MWL_OK;
}

/* ======================================================================
 * Requests (local primitives)
 * ====================================================================== */

static int request(mwl_ul *ul, mwl_ul_fsm_event event, const action_args *a, uint64_t now)
{
    if (!ul)
        return MWL_E_INVALID;
    if (ul->fatal)
        return ul->fatal;
    return fire(ul, event, a, now);
}

int mwl_ul_associate(mwl_ul *ul, const mwl_assoc_rq *rq, uint64_t now_ms)
{
    if (!ul || !rq || ul->cfg.role != MWL_UL_REQUESTOR)
        return MWL_E_INVALID;
    action_args a;
    memset(&a, 0, sizeof a);
    a.rq = rq;
    return request(ul, MWL_UL_EVT1, &a, now_ms);
}

int mwl_ul_accept(mwl_ul *ul, const mwl_assoc_ac *ac, uint64_t now_ms)
{
    if (!ac)
        return MWL_E_INVALID;
    action_args a;
    memset(&a, 0, sizeof a);
    a.ac = ac;
    return request(ul, MWL_UL_EVT7, &a, now_ms);
}

int mwl_ul_reject(mwl_ul *ul, const mwl_assoc_rj *rj, uint64_t now_ms)
{
    if (!rj)
        return MWL_E_INVALID;
    action_args a;
    memset(&a, 0, sizeof a);
    a.rj = rj;
    return request(ul, MWL_UL_EVT8, &a, now_ms);
}

int mwl_ul_send_p_data(mwl_ul *ul, const mwl_pdv *pdvs, size_t count, uint64_t now_ms)
{
    action_args a;
    memset(&a, 0, sizeof a);
    a.pdvs = pdvs;
    a.pdv_count = count;
    return request(ul, MWL_UL_EVT9, &a, now_ms);
}

int mwl_ul_send_pdv(mwl_ul *ul, uint8_t context_id, uint8_t control, const uint8_t *data, size_t length,
                    uint64_t now_ms)
{
    mwl_pdv pdv = {context_id, control, data, length};
    return mwl_ul_send_p_data(ul, &pdv, 1, now_ms);
}

int mwl_ul_release(mwl_ul *ul, uint64_t now_ms)
{
    action_args a;
    memset(&a, 0, sizeof a);
    return request(ul, MWL_UL_EVT11, &a, now_ms);
}

int mwl_ul_release_response(mwl_ul *ul, uint64_t now_ms)
{
    action_args a;
    memset(&a, 0, sizeof a);
    return request(ul, MWL_UL_EVT14, &a, now_ms);
}

int mwl_ul_abort(mwl_ul *ul, uint64_t now_ms)
{
    action_args a;
    memset(&a, 0, sizeof a);
    return request(ul, MWL_UL_EVT15, &a, now_ms);
}

/* ======================================================================
 * Queries
 * ====================================================================== */

mwl_ul_state mwl_ul_get_state(const mwl_ul *ul)
{
    return ul->state;
}

mwl_ul_role mwl_ul_get_role(const mwl_ul *ul)
{
    return ul->cfg.role;
}

uint32_t mwl_ul_peer_max_pdu_length(const mwl_ul *ul)
{
    return ul->peer_max_pdu_length;
}

const mwl_assoc_rq *mwl_ul_associate_rq(const mwl_ul *ul)
{
    return ul && ul->has_rq ? &ul->rq : NULL;
}

const mwl_assoc_ac *mwl_ul_associate_ac(const mwl_ul *ul)
{
    return ul && ul->has_ac ? &ul->ac : NULL;
}

int mwl_ul_context(const mwl_ul *ul, uint8_t context_id, const char **abstract_syntax,
                   const char **transfer_syntax)
{
    const context_slot *s = ul ? slot_for_const(ul, context_id) : NULL;
    if (!s || !s->accepted)
        return MWL_E_NOTFOUND;
    if (abstract_syntax)
        *abstract_syntax = s->abstract_syntax;
    if (transfer_syntax)
        *transfer_syntax = s->transfer_syntax;
    return MWL_OK;
}

int mwl_ul_find_context(const mwl_ul *ul, const char *abstract_syntax, uint8_t *context_id,
                        const char **transfer_syntax)
{
    if (!ul || !abstract_syntax)
        return MWL_E_NOTFOUND;
    for (size_t i = 0; i < CONTEXT_SLOTS; i++) {
        const context_slot *s = &ul->contexts[i];
        if (s->accepted && strcmp(s->abstract_syntax, abstract_syntax) == 0) {
            if (context_id)
                *context_id = (uint8_t)(2 * i + 1);
            if (transfer_syntax)
                *transfer_syntax = s->transfer_syntax;
            return MWL_OK;
        }
    }
    return MWL_E_NOTFOUND;
}
