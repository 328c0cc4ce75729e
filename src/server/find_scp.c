/* C-FIND SCP (PS3.7 §9.1.2, §9.3.2; PS3.4 K.4.1.2), a service class
 * (service.h): the request is checked on the loop thread, then handed to
 * the provider (server.h) in steps on the worker pool (op.h). Each step runs
 * begin and/or next calls until find-batch matches, 64 KiB of responses or
 * the step's time budget, encodes the matches as Pending responses, and
 * posts them back; the loop queues them and submits the next step once the
 * association's unsent output is below session_output_low(). A C-FIND that has
 * used more than a few steps of worker time continues as background work
 * (net.h, mwl_pool_job.background), so long scans leave workers to short
 * queries.
 *
 *   RQ --(loop: checks)--> BEGIN step --> NEXT step --> ... --> final RSP
 *                             |  worker      |  worker
 *   C-CANCEL sets the atomic flag: the step in flight stops at the next
 *   match, its Pending responses are dropped, the provider is ended, and
 *   the final response is FE00.
 *
 * At most one step per association is in the pool or in flight
 * (find_op.op.outstanding), so the pool's queue bound (one per session)
 * is never exceeded and a session is never freed under a worker. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "dicom/charset.h"
#include "dicom/tag.h"
#include "server/op.h"
#include "server/service.h"
#include "server/session.h"

enum {
    /* A C-FIND step stops adding matches after this many encoded bytes. */
    FIND_STEP_BYTES = 64 * 1024,
    /* A C-FIND whose steps have used this many times the step budget of
     * worker time goes on as background work. */
    FIND_BACKGROUND_STEPS = 2
};

/* Patient IDs longer than this (64 characters of LO, up to 4 bytes each)
 * are cut for the audit trail. */
#define FIND_PATIENT_MAX 256

struct mwl_find_control {
    atomic_bool cancelled;
    uint64_t step_deadline_ms; /* set by the worker before each step */
    /* mwl_find_request_set_patient: the current match's patient (worker) */
    bool patient_set;
    char patient[FIND_PATIENT_MAX + 1];
};

bool mwl_find_request_cancelled(const mwl_find_request *req)
{
    return req && req->control && atomic_load(&((mwl_find_control *)(uintptr_t)req->control)->cancelled);
}

bool mwl_find_request_step_over(const mwl_find_request *req)
{
    if (!req || !req->control)
        return false;
    return mwl_find_request_cancelled(req) || mwl_now_ms() >= req->control->step_deadline_ms;
}

void mwl_find_request_set_patient(const mwl_find_request *req, const char *patient_id)
{
    if (!req || !req->control)
        return;
    /* The control block is the server's; the provider sees it const. */
    mwl_find_control *c = (mwl_find_control *)(uintptr_t)req->control;
    c->patient_set = true;
    snprintf(c->patient, sizeof c->patient, "%s", patient_id ? patient_id : "");
}

static void status_set(mwl_find_status *st, uint16_t status, const char *fmt, ...) MWL_PRINTF(3, 4);
static void status_set(mwl_find_status *st, uint16_t status, const char *fmt, ...)
{
    memset(st, 0, sizeof *st);
    st->status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->error_comment, sizeof st->error_comment, fmt, ap);
        va_end(ap);
    }
}

typedef enum find_step { FIND_STEP_BEGIN = 1, FIND_STEP_NEXT, FIND_STEP_END } find_step;

/* The C-FIND service's per-session state: one C-FIND at a time. */
typedef struct find_op {
    /* ---- loop thread ---- */
    session *owner;
    const mwl_find_provider *provider;
    server_op op;
    bool active;        /* between the C-FIND-RQ and its final response */
    bool abandoned;     /* the association is going away: send nothing more */
    bool waiting_drain; /* the next step waits for output below session_output_low() */
    uint8_t context_id;
    uint64_t matches; /* Pending responses queued */
    uint64_t steps;

    /* ---- set on the loop before the first step, read-only afterwards ---- */
    mwl_find_control control;
    char sop_class[MWL_DIMSE_UID_MAX + 1];
    char calling[MWL_AE_TITLE_MAX + 1], called[MWL_AE_TITLE_MAX + 1];
    char peer[MWL_NET_ADDRSTRLEN];
    mwl_ts ts;
    uint16_t message_id, priority;
    uint32_t batch;
    uint32_t step_ms;
    /* What an identifier may decode (a deflated one inflate) to: the same
     * bound as a whole DIMSE message (max-message); and its nesting. */
    uint32_t max_identifier, max_depth;
    uint64_t started_ms;
    uint8_t *identifier; /* copy of the identifier bytes (mem) */
    size_t identifier_length;
    const mwl_mem *mem;

    /* ---- worker (owned by the step in flight) ---- */
    find_step step;
    mwl_find_request req;
    mwl_arena id_arena;    /* the decoded identifier, begin .. end */
    mwl_arena match_arena; /* one match at a time */
    void *state;
    bool begun, ended;
    uint64_t worker_ms; /* worker time used so far */
    audit_ids ids;      /* the Patient IDs returned, for the audit trail */
    /* Step output: records [u32 command length][command][u32 data set
     * length][data set], read by the loop. */
    mwl_wbuf out;
    bool step_final;       /* the C-FIND is decided: send `final` after `out` */
    mwl_find_status final; /* its final status, comment, offending elements */
} find_op;

/* ======================================================================
 * Worker side
 * ====================================================================== */

static void end_provider(find_op *f)
{
    const mwl_find_provider *p = f->provider;
    if (f->begun && !f->ended) {
        p->end(f->state);
        f->ended = true;
        f->state = NULL;
    }
}

/* The final response of this C-FIND is decided: `st` (with its comment). */
static void final(find_op *f, const mwl_find_status *st)
{
    f->final = *st;
    f->step_final = true;
}

/* A negative status from the provider: its own Failure if it gave one,
 * else A700 for resource errors and C000 for the rest. */
static void final_from_error(find_op *f, int rc, const mwl_find_status *st)
{
    mwl_find_status out;
    if (st && mwl_dimse_status_class(st->status) == MWL_DIMSE_CLASS_FAILURE) {
        out = *st;
    } else {
        uint16_t code = (rc == MWL_E_NOMEM || rc == MWL_E_LIMIT) ? MWL_DIMSE_STATUS_OUT_OF_RESOURCES
                                                                 : MWL_DIMSE_STATUS_UNABLE_TO_PROCESS;
        status_set(&out, code, "worklist provider: %s", mwl_status_str(rc));
    }
    final(f, &out);
}

/* Appends one record ([u32 length][bytes]) whose bytes `encode` writes. */
static size_t record_begin(mwl_wbuf *w)
{
    size_t at = w->len;
    mwl_wbuf_put_u32le(w, 0);
    return at;
}

static void record_end(mwl_wbuf *w, size_t at)
{
    if (w->status == MWL_OK)
        mwl_store_u32le(w->data + at, (uint32_t)(w->len - at - 4));
}

/* One Pending response: command set, then the match in the context's
 * transfer syntax, then the match's Patient ID for the audit trail (UTF-8,
 * maybe empty; recorded only once the response is queued). On failure
 * `out` is rolled back. */
static int append_pending(find_op *f, const mwl_ds *match, uint16_t status, const char *patient)
{
    mwl_wbuf *w = &f->out;
    size_t start = w->len;
    size_t at = record_begin(w);
    int rc = mwl_dimse_encode_find_rsp(f->message_id, f->sop_class, status, NULL, NULL, 0, w);
    record_end(w, at);
    if (rc == MWL_OK) {
        at = record_begin(w);
        rc = mwl_ds_encode(match, f->ts, w); /* even in every syntax (codec.h) */
        record_end(w, at);
    }
    if (rc == MWL_OK) {
        at = record_begin(w);
        mwl_wbuf_put(w, patient, strlen(patient));
        record_end(w, at);
    }
    if (rc == MWL_OK && w->status != MWL_OK)
        rc = w->status;
    if (rc == MWL_OK && w->len - start > UINT32_MAX)
        rc = MWL_E_LIMIT;
    if (rc != MWL_OK && w->status == MWL_OK)
        w->len = start;
    return rc;
}

/* The match's Patient ID for the audit trail, in UTF-8 whatever the
 * response's character set: what the provider named, else the response's. */
static const char *match_patient(find_op *f, const mwl_ds *match)
{
    if (f->control.patient_set)
        return f->control.patient;
    const mwl_elem *e = mwl_ds_find(match, MWL_TAG_PatientID);
    const char *id = NULL;
    if (e && e->length && mwl_ds_get_utf8(match, e, 0, &f->match_arena, &id, NULL) == MWL_OK && id)
        return id;
    return "";
}

static void run_begin(find_op *f)
{
    const mwl_find_provider *p = f->provider;
    mwl_ds *identifier = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    mwl_arena_clear(&f->id_arena);
    /* A deflated identifier inflates within the same bound as the message
     * itself: a small bomb must not cost the codec's generous default. */
    mwl_decode_limits lim;
    mwl_decode_limits_init(&lim);
    lim.max_inflated = f->max_identifier;
    lim.max_depth = f->max_depth;
    int rc =
        mwl_ds_decode(f->identifier, f->identifier_length, f->ts, &f->id_arena, &lim, &identifier, &diag);
    if (rc != MWL_OK) {
        mwl_find_status st;
        if (rc == MWL_E_LIMIT)
            status_set(&st, MWL_DIMSE_STATUS_OUT_OF_RESOURCES, "identifier too large: %s", diag.msg);
        else if (rc == MWL_E_NOMEM)
            status_set(&st, MWL_DIMSE_STATUS_OUT_OF_RESOURCES, "out of memory decoding the identifier");
        else
            status_set(&st, MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH, "identifier does not decode: %s", diag.msg);
        final(f, &st);
        return;
    }
    memset(&f->req, 0, sizeof f->req);
    f->req.identifier = identifier;
    f->req.transfer_syntax = f->ts;
    f->req.sop_class_uid = f->sop_class;
    f->req.message_id = f->message_id;
    f->req.priority = f->priority;
    f->req.calling_ae = f->calling;
    f->req.called_ae = f->called;
    f->req.peer = f->peer;
    f->req.started_ms = f->started_ms;
    f->req.control = &f->control;

    mwl_find_status early;
    status_set(&early, MWL_DIMSE_STATUS_SUCCESS, NULL);
    void *state = NULL;
    rc = p->begin(p->user, &f->req, &state, &early);
    f->req.summary[sizeof f->req.summary - 1] = '\0';
    if (rc != MWL_OK) {
        final_from_error(f, rc, &early);
        return;
    }
    f->begun = true;
    f->state = state;
    if (early.status != MWL_DIMSE_STATUS_SUCCESS) {
        if (mwl_dimse_status_class(early.status) != MWL_DIMSE_CLASS_FAILURE)
            status_set(&early, MWL_DIMSE_STATUS_UNABLE_TO_PROCESS, "provider returned status %04X at begin",
                       (unsigned)early.status);
        final(f, &early);
        end_provider(f);
    }
}

/* Up to `batch` matches (or FIND_STEP_BYTES of output, or the step's
 * time budget). */
static void produce(find_op *f)
{
    const mwl_find_provider *p = f->provider;
    for (uint32_t produced = 0; produced < f->batch && f->out.len < FIND_STEP_BYTES; produced++) {
        /* A cancel and the budget are checked before every match but the
         * first, so each step makes progress and a cancelled one stops
         * within a match. */
        if (produced > 0 &&
            (atomic_load(&f->control.cancelled) || mwl_now_ms() >= f->control.step_deadline_ms))
            break;
        mwl_arena_reset(&f->match_arena); /* per match: keep the chunk */
        f->control.patient_set = false;
        const mwl_ds *match = NULL;
        uint16_t pending = MWL_DIMSE_STATUS_PENDING;
        mwl_find_status st;
        status_set(&st, MWL_DIMSE_STATUS_SUCCESS, NULL);
        int rc = p->next(f->state, &f->req, &f->match_arena, &match, &pending, &st);
        if (rc == MWL_AGAIN && !match)
            break; /* no match yet: the worker goes back; the next step goes on */
        if (rc != MWL_OK) {
            final_from_error(f, rc, &st);
            break;
        }
        if (!match) {
            mwl_dimse_class cls = mwl_dimse_status_class(st.status);
            if (cls != MWL_DIMSE_CLASS_SUCCESS && cls != MWL_DIMSE_CLASS_WARNING &&
                cls != MWL_DIMSE_CLASS_FAILURE)
                status_set(&st, MWL_DIMSE_STATUS_UNABLE_TO_PROCESS, "provider returned final status %04X",
                           (unsigned)st.status);
            final(f, &st);
            break;
        }
        if (!mwl_dimse_status_is_pending(pending)) {
            status_set(&st, MWL_DIMSE_STATUS_UNABLE_TO_PROCESS, "provider returned status %04X for a match",
                       (unsigned)pending);
            final(f, &st);
            break;
        }
        rc = append_pending(f, match, pending, match_patient(f, match));
        if (rc != MWL_OK) {
            if (rc == MWL_E_NOMEM || rc == MWL_E_LIMIT)
                status_set(&st, MWL_DIMSE_STATUS_OUT_OF_RESOURCES, "cannot encode a match: %s",
                           mwl_status_str(rc));
            else
                status_set(&st, MWL_DIMSE_STATUS_UNABLE_TO_PROCESS, "cannot encode a match: %s",
                           mwl_status_str(rc));
            final(f, &st);
            break;
        }
    }
    mwl_arena_clear(&f->match_arena);
    if (f->step_final)
        end_provider(f);
    else if (p->pause && f->begun && !f->ended)
        p->pause(f->state); /* nothing held while the association waits */
}

static void find_step_run(server_op *op, size_t worker)
{
    (void)worker;
    find_op *f = op->user;
    uint64_t t0 = mwl_now_ms();
    f->control.step_deadline_ms = t0 + f->step_ms;
    if (f->out.status != MWL_OK || f->out.cap > 4u * FIND_STEP_BYTES)
        mwl_wbuf_clear(&f->out);
    f->out.len = 0;
    f->step_final = false;
    bool cancelled = atomic_load(&f->control.cancelled);
    switch (f->step) {
    case FIND_STEP_BEGIN:
        if (cancelled)
            break;
        run_begin(f);
        if (!f->step_final)
            produce(f);
        break;
    case FIND_STEP_NEXT:
        if (cancelled) {
            end_provider(f);
            break;
        }
        produce(f);
        break;
    case FIND_STEP_END: end_provider(f); break;
    }
    f->worker_ms += mwl_now_ms() - t0;
}

/* ======================================================================
 * Loop side
 * ====================================================================== */

static void find_step_done(server_op *op);

static void find_init(void *state, session *owner, const mwl_service *svc)
{
    find_op *f = state;
    const mwl_mem *mem = session_mem(owner);
    f->owner = owner;
    f->provider = svc->config;
    f->mem = mem;
    atomic_init(&f->control.cancelled, false);
    mwl_arena_init(&f->id_arena, mem);
    mwl_arena_init(&f->match_arena, mem);
    mwl_wbuf_init(&f->out, mem);
    mwl_wbuf_init(&f->ids.text, mem);
    server_op_init(&f->op, session_server(owner), find_step_run, find_step_done, f);
}

static void find_clear(void *state)
{
    find_op *f = state;
    mwl_mem_free(f->mem, f->identifier);
    f->identifier = NULL;
    f->identifier_length = 0;
    mwl_arena_clear(&f->id_arena);
    mwl_arena_clear(&f->match_arena);
    mwl_wbuf_clear(&f->out);
    mwl_wbuf_clear(&f->ids.text);
}

static bool find_busy(const void *state)
{
    const find_op *f = state;
    return f->op.outstanding || (f->begun && !f->ended);
}

static void submit(find_op *f, find_step step)
{
    f->step = step;
    /* Beyond a few steps' worth of worker time, a C-FIND is a long scan or
     * a big result: it continues as background work. A step that only ends
     * the provider (END, or NEXT after a cancel) is cheap, frees a provider
     * state and lets the FE00 go out: never background. */
    f->op.background = step == FIND_STEP_NEXT && !atomic_load(&f->control.cancelled) &&
                       f->worker_ms >= (uint64_t)FIND_BACKGROUND_STEPS * f->step_ms;
    f->steps++;
    session_stat_add(f->owner, SESSION_STAT_FIND_STEPS, 1);
    server_op_submit(&f->op);
}

/* Records one C-FIND in the server's query log (GET /queries): a bounded
 * copy, no allocation (the log's ring is allocated up front). */
static void record_query(session *s, const char *keys, const char *comment, uint64_t matches, uint16_t status,
                         uint64_t ms, mwl_ts ts, const uint8_t *identifier, size_t identifier_length)
{
    mwl_query_record rec;
    memset(&rec, 0, offsetof(mwl_query_record, identifier));
    snprintf(rec.calling, sizeof rec.calling, "%s", session_calling(s));
    snprintf(rec.called, sizeof rec.called, "%s", session_called(s));
    snprintf(rec.peer, sizeof rec.peer, "%s", session_peer(s));
    snprintf(rec.keys, sizeof rec.keys, "%s", keys);
    snprintf(rec.comment, sizeof rec.comment, "%s", comment ? comment : "");
    rec.matches = matches;
    rec.status = status;
    rec.duration_ms = ms;
    rec.ts = ts;
    if (identifier && identifier_length <= MWL_QUERY_IDENTIFIER_MAX) {
        memcpy(rec.identifier, identifier, identifier_length);
        rec.identifier_length = (uint32_t)identifier_length;
    }
    mwl_query_log_add(mwl_server_query_log(session_server(s)), &rec);
}

/* Logs the C-FIND's one line and makes the association ready for the next. */
static void finish(find_op *f, uint16_t status, const char *note)
{
    session *s = f->owner;
    uint64_t ms = mwl_now_ms() - f->started_ms;
    record_query(s, f->begun && f->req.summary[0] ? f->req.summary : "", note ? note : f->final.error_comment,
                 f->matches, note ? MWL_DIMSE_STATUS_CANCEL : status, ms, f->ts, f->identifier,
                 f->identifier_length);
    if (note) {
        mwl_log(MWL_LOG_INFO, "C-FIND %s %s -> %s: %s after %llu matches, %llu ms", f->peer, f->calling,
                f->called, note, (unsigned long long)f->matches, (unsigned long long)ms);
    } else {
        const char *summary = f->begun && f->req.summary[0] ? f->req.summary : "-";
        mwl_log(MWL_LOG_INFO, "C-FIND %s %s -> %s: %s; %llu matches; status %04X (%s)%s%s; %llu ms", f->peer,
                f->calling, f->called, summary, (unsigned long long)f->matches, (unsigned)status,
                mwl_dimse_status_str(status), f->final.error_comment[0] ? ": " : "", f->final.error_comment,
                (unsigned long long)ms);
        session_stat_add(s, SESSION_STAT_FINDS, 1);
        if (status == MWL_DIMSE_STATUS_CANCEL)
            session_stat_add(s, SESSION_STAT_FIND_CANCELS, 1);
    }
    session_audit_find(s, f->message_id, f->begun && f->req.summary[0] ? f->req.summary : "-",
                       note ? note : "completed", note ? MWL_DIMSE_STATUS_CANCEL : status, f->matches,
                       &f->ids, ms);
    f->active = false;
    f->abandoned = false;
    f->waiting_drain = false;
    f->begun = f->ended = false;
    f->state = NULL;
    f->step_final = false;
    mwl_mem_free(f->mem, f->identifier);
    f->identifier = NULL;
    f->identifier_length = 0;
    mwl_arena_clear(&f->id_arena);
    mwl_arena_clear(&f->match_arena);
    memset(&f->final, 0, sizeof f->final);
}

/* Encodes and queues a response without identifier. */
static int send_final_response(session *s, uint8_t context_id, uint16_t message_id, const char *sop_class,
                               const mwl_find_status *st)
{
    mwl_dimse_class cls = mwl_dimse_status_class(st->status);
    bool detail = cls == MWL_DIMSE_CLASS_FAILURE || cls == MWL_DIMSE_CLASS_WARNING;
    mwl_wbuf *w = session_scratch(s);
    int rc = mwl_dimse_encode_find_rsp(
        message_id, sop_class, st->status, detail && st->error_comment[0] ? st->error_comment : NULL,
        detail ? st->offending_elements : NULL, detail ? st->offending_element_count : 0, w);
    if (rc != MWL_OK) {
        session_abort(s, "cannot encode C-FIND-RSP");
        return rc;
    }
    return session_send(s, context_id, w->data, w->len, NULL, 0);
}

static void final_now(find_op *f, const mwl_find_status *st)
{
    f->final = *st;
    (void)send_final_response(f->owner, f->context_id, f->message_id, f->sop_class, st);
    /* A failed send aborts the session, whose abandon may have finished
     * this C-FIND already (logged as abandoned): not twice. */
    if (f->active)
        finish(f, st->status, NULL);
}

/* Answers a C-FIND-RQ at once, before any provider work (refusals). */
static void refuse(session *s, const mwl_dimse_msg *msg, uint16_t status, const char *comment)
{
    mwl_find_status st;
    status_set(&st, status, "%s", comment);
    (void)send_final_response(s, msg->context_id, msg->command.message_id,
                              msg->command.affected_sop_class_uid, &st);
    session_stat_add(s, SESSION_STAT_FINDS, 1);
    mwl_log(MWL_LOG_WARN, "C-FIND %s %s -> %s: refused %04X (%s): %s", session_peer(s), session_calling(s),
            session_called(s), (unsigned)status, mwl_dimse_status_str(status), comment);
    mwl_ts ts = MWL_TS_IMPLICIT_LE;
    const char *ts_uid = NULL;
    bool ts_known = session_context(s, msg->context_id, NULL, &ts_uid) == MWL_OK &&
                    mwl_ts_from_uid(ts_uid, strlen(ts_uid), &ts) == MWL_OK;
    record_query(s, "", comment, 0, status, 0, ts, ts_known && msg->has_dataset ? msg->dataset : NULL,
                 ts_known && msg->has_dataset ? msg->dataset_length : 0);
    char result[96];
    snprintf(result, sizeof result, "refused: %s", comment);
    session_audit_find(s, msg->command.message_id, "-", result, status, 0, NULL, 0);
}

static void find_request(void *state, session *s, const mwl_service *svc, const mwl_dimse_msg *msg)
{
    find_op *f = state;
    const mwl_dimse_command *c = &msg->command;
    if (f->active) {
        /* No asynchronous operations window is negotiated (PS3.7 D.3.3.3),
         * so a second request while one is outstanding breaks the rules;
         * it is refused without disturbing the first. */
        if (c->message_id == f->message_id)
            refuse(s, msg, MWL_DIMSE_STATUS_DUPLICATE_INVOCATION, "message ID already in use");
        else
            refuse(s, msg, MWL_DIMSE_STATUS_OUT_OF_RESOURCES, "a C-FIND is already in progress");
        return;
    }
    const char *ts_uid = NULL;
    mwl_ts ts = MWL_TS_IMPLICIT_LE;
    if (session_context(s, msg->context_id, NULL, &ts_uid) != MWL_OK ||
        mwl_ts_from_uid(ts_uid, strlen(ts_uid), &ts) != MWL_OK) {
        refuse(s, msg, MWL_DIMSE_STATUS_UNABLE_TO_PROCESS, "transfer syntax not supported");
        return;
    }
    /* dimse.md §6.4: FIND naming a SOP class other than its context's is
     * refused with 0122. */
    if (!c->affected_sop_class_uid || strcmp(c->affected_sop_class_uid, svc->sop_class) != 0) {
        refuse(s, msg, MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED, "SOP class not supported on this context");
        return;
    }
    if (!msg->has_dataset) {
        refuse(s, msg, MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH, "C-FIND-RQ without an identifier");
        return;
    }
    uint8_t *copy = mwl_mem_alloc(f->mem, msg->dataset_length ? msg->dataset_length : 1);
    if (!copy) {
        refuse(s, msg, MWL_DIMSE_STATUS_OUT_OF_RESOURCES, "out of memory");
        return;
    }
    const mwl_server_config *cfg = session_config(s);
    if (msg->dataset_length)
        memcpy(copy, msg->dataset, msg->dataset_length);
    f->identifier = copy;
    f->identifier_length = msg->dataset_length;
    f->context_id = msg->context_id;
    f->message_id = c->message_id;
    f->priority = c->priority;
    f->ts = ts;
    f->batch = cfg->find_batch;
    f->step_ms = cfg->find_step_ms ? cfg->find_step_ms : 1;
    f->max_identifier = cfg->max_message;
    f->max_depth = cfg->max_depth;
    snprintf(f->sop_class, sizeof f->sop_class, "%s", c->affected_sop_class_uid);
    snprintf(f->calling, sizeof f->calling, "%s", session_calling(s));
    snprintf(f->called, sizeof f->called, "%s", session_called(s));
    snprintf(f->peer, sizeof f->peer, "%s", session_peer(s));
    f->started_ms = mwl_now_ms();
    f->matches = 0;
    f->steps = 0;
    f->worker_ms = 0;
    audit_ids_reset(&f->ids);
    f->active = true;
    f->abandoned = false;
    f->waiting_drain = false;
    f->begun = f->ended = false;
    f->state = NULL;
    memset(&f->final, 0, sizeof f->final);
    atomic_store(&f->control.cancelled, false);
    submit(f, FIND_STEP_BEGIN);
}

static void find_cancel(void *state, session *s, const mwl_dimse_msg *msg)
{
    find_op *f = state;
    uint16_t id = msg->command.message_id_being_responded_to;
    /* PS3.7 §9.3.2.4 / dimse.md §4.5: a cancel for an operation that is
     * not outstanding (e.g. it arrived after the final response) is
     * ignored; it has no response of its own. */
    if (!f->active || f->abandoned || id != f->message_id || atomic_load(&f->control.cancelled)) {
        mwl_log(MWL_LOG_DEBUG, "assoc %s: C-CANCEL for message %u ignored", session_peer(s), (unsigned)id);
        return;
    }
    atomic_store(&f->control.cancelled, true);
    if (f->op.outstanding)
        return; /* find_step_done sees the flag */
    f->waiting_drain = false;
    if (f->begun && !f->ended) {
        submit(f, FIND_STEP_NEXT); /* a cancelled step only ends the provider */
        return;
    }
    mwl_find_status st;
    status_set(&st, MWL_DIMSE_STATUS_CANCEL, NULL);
    final_now(f, &st);
}

static void find_abandon(void *state, session *s)
{
    (void)s;
    find_op *f = state;
    if (!f->active || f->abandoned)
        return;
    f->abandoned = true;
    f->waiting_drain = false;
    atomic_store(&f->control.cancelled, true);
    if (f->op.outstanding)
        return;
    if (f->begun && !f->ended) {
        submit(f, FIND_STEP_END);
        return;
    }
    finish(f, MWL_DIMSE_STATUS_CANCEL, "abandoned with the association");
}

static void find_drained(void *state, session *s)
{
    (void)s;
    find_op *f = state;
    if (!f->waiting_drain)
        return;
    f->waiting_drain = false;
    submit(f, FIND_STEP_NEXT);
}

static uint32_t record_length(const uint8_t *p)
{
    return mwl_load_u32le(p);
}

/* Queues the step's Pending responses; false if the session failed. */
static bool queue_pending(find_op *f)
{
    const uint8_t *p = f->out.data, *end = f->out.data + f->out.len;
    while (p && p + 12 <= end) {
        uint32_t clen = record_length(p);
        const uint8_t *cmd = p + 4;
        uint32_t dlen = record_length(cmd + clen);
        const uint8_t *ds = cmd + clen + 4;
        uint32_t plen = record_length(ds + dlen);
        const uint8_t *patient = ds + dlen + 4;
        p = patient + plen;
        if (session_send(f->owner, f->context_id, cmd, clen, ds, dlen) != MWL_OK)
            return false;
        /* Recorded once the response is on its way: a step dropped after a
         * C-CANCEL showed nobody its patients. */
        if (plen) {
            char id[FIND_PATIENT_MAX + 1];
            size_t n = plen < FIND_PATIENT_MAX ? plen : FIND_PATIENT_MAX;
            memcpy(id, patient, n);
            id[n] = '\0';
            audit_ids_add(&f->ids, id);
        }
        f->matches++;
        session_stat_add(f->owner, SESSION_STAT_FIND_MATCHES, 1);
    }
    return true;
}

static void find_step_done(server_op *op)
{
    find_op *f = op->user;
    session *s = f->owner;
    if (f->abandoned || session_closing(s)) {
        if (!f->abandoned) {
            f->abandoned = true;
            atomic_store(&f->control.cancelled, true);
        }
        if (f->begun && !f->ended)
            submit(f, FIND_STEP_END);
        else
            finish(f, MWL_DIMSE_STATUS_CANCEL, "abandoned with the association");
        session_service(s);
        return;
    }
    if (atomic_load(&f->control.cancelled)) {
        /* After a C-CANCEL nothing but the final FE00 goes out, even if the
         * step had found more (dimse.md §4.5 step 4). */
        if (f->begun && !f->ended) {
            submit(f, FIND_STEP_NEXT);
        } else {
            mwl_find_status st;
            status_set(&st, MWL_DIMSE_STATUS_CANCEL, NULL);
            final_now(f, &st);
        }
        session_service(s);
        return;
    }
    if (!queue_pending(f)) {
        if (f->active && !f->abandoned)
            find_abandon(f, s); /* responses can no longer be sent */
    } else {
        if (f->step_final) {
            mwl_find_status st = f->final;
            final_now(f, &st);
        } else if (session_pending_output(s) < session_output_low(s)) {
            submit(f, FIND_STEP_NEXT);
        } else {
            f->waiting_drain = true;
        }
    }
    session_service(s);
}

static const uint16_t find_commands[] = {MWL_DIMSE_C_FIND_RQ, 0};

static int find_check(const void *config, mwl_diag *diag)
{
    const mwl_find_provider *p = config;
    if (!p || !p->begin || !p->next || !p->end) {
        mwl_diag_set(diag, 0, 0, "find provider: begin, next and end are required");
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

const mwl_scp_class mwl_scp_find = {
    .name = "find",
    .commands = find_commands,
    .state_size = sizeof(find_op),
    .check = find_check,
    .init = find_init,
    .clear = find_clear,
    .request = find_request,
    .cancel = find_cancel,
    .abandon = find_abandon,
    .busy = find_busy,
    .drained = find_drained,
};
