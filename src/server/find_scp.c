/* C-FIND SCP plumbing (PS3.7 §9.1.2, §9.3.2; PS3.4 K.4.1.2): the request
 * is checked on the loop thread, then handed to the provider (server.h) in
 * steps on the worker pool. Each step runs begin and/or up to find-batch
 * next calls, encodes the matches as Pending responses, and posts them
 * back; the loop queues them and submits the next step once the
 * association's unsent output is below SERVER_OUT_LOW.
 *
 *   RQ --(loop: checks)--> BEGIN step --> NEXT step --> ... --> final RSP
 *                             |  worker      |  worker
 *   C-CANCEL sets the atomic flag: the step in flight stops at the next
 *   match, its Pending responses are dropped, the provider is ended, and
 *   the final response is FE00.
 *
 * At most one step per association is in the pool or in flight
 * (find_op.job_outstanding), so the pool's queue bound (one per session)
 * is never exceeded and a session is never freed under a worker. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "dicom/tag.h"
#include "server/server_int.h"

#define FIND_OF_JOB(j) ((find_op *)((char *)(j)-offsetof(find_op, job)))
#define FIND_OF_TASK(t) ((find_op *)((char *)(t)-offsetof(find_op, task)))

bool mwl_find_request_cancelled(const mwl_find_request *req)
{
    return req && req->cancel && atomic_load(&req->cancel->flag);
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

/* ======================================================================
 * Worker side
 * ====================================================================== */

static void end_provider(find_op *f)
{
    const mwl_find_provider *p = &f->owner->srv->provider;
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
 * transfer syntax. On failure `out` is rolled back. */
static int append_pending(find_op *f, const mwl_ds *match, uint16_t status)
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
    if (rc == MWL_OK && w->status != MWL_OK)
        rc = w->status;
    if (rc == MWL_OK && w->len - start > UINT32_MAX)
        rc = MWL_E_LIMIT;
    if (rc != MWL_OK && w->status == MWL_OK)
        w->len = start;
    return rc;
}

static void run_begin(find_op *f)
{
    const mwl_find_provider *p = &f->owner->srv->provider;
    mwl_ds *identifier = NULL;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    mwl_arena_clear(&f->id_arena);
    int rc =
        mwl_ds_decode(f->identifier, f->identifier_length, f->ts, &f->id_arena, NULL, &identifier, &diag);
    if (rc != MWL_OK) {
        mwl_find_status st;
        if (rc == MWL_E_NOMEM)
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
    f->req.cancel = &f->cancel;

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

/* Up to `batch` matches (or SERVER_FIND_STEP_BYTES of output). */
static void produce(find_op *f)
{
    const mwl_find_provider *p = &f->owner->srv->provider;
    for (uint32_t produced = 0; produced < f->batch && f->out.len < SERVER_FIND_STEP_BYTES; produced++) {
        /* A cancel is checked before every match but the first, so each
         * step makes progress and a cancelled one stops within a match. */
        if (produced > 0 && atomic_load(&f->cancel.flag))
            break;
        mwl_arena_clear(&f->match_arena);
        const mwl_ds *match = NULL;
        uint16_t pending = MWL_DIMSE_STATUS_PENDING;
        mwl_find_status st;
        status_set(&st, MWL_DIMSE_STATUS_SUCCESS, NULL);
        int rc = p->next(f->state, &f->req, &f->match_arena, &match, &pending, &st);
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
        rc = append_pending(f, match, pending);
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
}

static void find_job_run(mwl_pool_job *job, size_t worker)
{
    (void)worker;
    find_op *f = FIND_OF_JOB(job);
    mwl_server *srv = f->owner->srv;
    if (f->out.status != MWL_OK || f->out.cap > 4u * SERVER_FIND_STEP_BYTES)
        mwl_wbuf_clear(&f->out);
    f->out.len = 0;
    f->step_final = false;
    f->step_cancelled = false;
    bool cancelled = atomic_load(&f->cancel.flag);
    switch (f->step) {
    case FIND_STEP_BEGIN:
        if (cancelled) {
            f->step_cancelled = true;
            break;
        }
        run_begin(f);
        if (!f->step_final)
            produce(f);
        break;
    case FIND_STEP_NEXT:
        if (cancelled) {
            end_provider(f);
            f->step_cancelled = true;
            break;
        }
        produce(f);
        break;
    case FIND_STEP_END: end_provider(f); break;
    }
    mwl_loop_post(srv->loop, &f->task);
}

/* ======================================================================
 * Loop side
 * ====================================================================== */

static void find_task_done(mwl_loop *loop, mwl_loop_task *task);

void find_scp_init(find_op *f, session *owner, const mwl_mem *mem)
{
    memset(f, 0, sizeof *f);
    f->owner = owner;
    atomic_init(&f->cancel.flag, false);
    mwl_arena_init(&f->id_arena, mem);
    mwl_arena_init(&f->match_arena, mem);
    mwl_wbuf_init(&f->out, mem);
    f->job.fn = find_job_run;
    f->task.fn = find_task_done;
}

void find_scp_clear(find_op *f)
{
    const mwl_mem *mem = f->owner->srv->mem;
    mwl_mem_free(mem, f->identifier);
    f->identifier = NULL;
    f->identifier_length = 0;
    mwl_arena_clear(&f->id_arena);
    mwl_arena_clear(&f->match_arena);
    mwl_wbuf_clear(&f->out);
}

bool find_scp_busy(const session *s)
{
    const find_op *f = &s->find;
    return f->job_outstanding || (f->begun && !f->ended);
}

static void submit(session *s, find_step step)
{
    find_op *f = &s->find;
    mwl_server *srv = s->srv;
    f->step = step;
    f->job_outstanding = true;
    int rc = srv->pool ? mwl_pool_submit(srv->pool, &f->job) : MWL_E_CLOSED;
    if (rc == MWL_OK)
        return;
    /* The queue holds one job per session, so it cannot be full; the pool
     * is gone only while the server is being freed, when finishing the
     * provider inline is the last resort (its result is posted as usual). */
    mwl_log(rc == MWL_E_CLOSED ? MWL_LOG_DEBUG : MWL_LOG_ERROR, "assoc %s: C-FIND step run inline: %s",
            s->peer, mwl_status_str(rc));
    find_job_run(&f->job, 0);
}

/* Logs the C-FIND's one line and makes the association ready for the next. */
static void finish(session *s, uint16_t status, const char *note)
{
    find_op *f = &s->find;
    mwl_server *srv = s->srv;
    uint64_t ms = mwl_now_ms() - f->started_ms;
    if (note) {
        mwl_log(MWL_LOG_INFO, "C-FIND %s %s -> %s: %s after %llu matches, %llu ms", s->peer, s->calling,
                s->called, note, (unsigned long long)f->matches, (unsigned long long)ms);
    } else {
        const char *summary = f->begun && f->req.summary[0] ? f->req.summary : "-";
        mwl_log(MWL_LOG_INFO, "C-FIND %s %s -> %s: %s; %llu matches; status %04X (%s)%s%s; %llu ms", s->peer,
                s->calling, s->called, summary, (unsigned long long)f->matches, (unsigned)status,
                mwl_dimse_status_str(status), f->final.error_comment[0] ? ": " : "", f->final.error_comment,
                (unsigned long long)ms);
        server_stat_add(&srv->stats.finds, 1);
        if (status == MWL_DIMSE_STATUS_CANCEL)
            server_stat_add(&srv->stats.find_cancels, 1);
    }
    f->active = false;
    f->abandoned = false;
    f->waiting_drain = false;
    f->begun = f->ended = false;
    f->state = NULL;
    f->step_final = false;
    mwl_mem_free(srv->mem, f->identifier);
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
    mwl_server *srv = s->srv;
    mwl_dimse_class cls = mwl_dimse_status_class(st->status);
    bool detail = cls == MWL_DIMSE_CLASS_FAILURE || cls == MWL_DIMSE_CLASS_WARNING;
    mwl_wbuf *w = &srv->scratch;
    if (w->status != MWL_OK)
        mwl_wbuf_clear(w);
    w->len = 0;
    int rc = mwl_dimse_encode_find_rsp(
        message_id, sop_class, st->status, detail && st->error_comment[0] ? st->error_comment : NULL,
        detail ? st->offending_elements : NULL, detail ? st->offending_element_count : 0, w);
    if (rc != MWL_OK) {
        session_abort(s, "cannot encode C-FIND-RSP");
        return rc;
    }
    return session_send_message(s, context_id, w->data, w->len, NULL, 0);
}

static void final_now(session *s, const mwl_find_status *st)
{
    find_op *f = &s->find;
    f->final = *st;
    (void)send_final_response(s, f->context_id, f->message_id, f->sop_class, st);
    finish(s, st->status, NULL);
}

/* Answers a C-FIND-RQ at once, before any provider work (refusals). */
static void refuse(session *s, const mwl_dimse_msg *msg, uint16_t status, const char *comment)
{
    mwl_find_status st;
    status_set(&st, status, "%s", comment);
    (void)send_final_response(s, msg->context_id, msg->command.message_id,
                              msg->command.affected_sop_class_uid, &st);
    s->finds++;
    server_stat_add(&s->srv->stats.finds, 1);
    mwl_log(MWL_LOG_WARN, "C-FIND %s %s -> %s: refused %04X (%s): %s", s->peer, s->calling, s->called,
            (unsigned)status, mwl_dimse_status_str(status), comment);
}

void find_scp_request(session *s, const mwl_dimse_msg *msg)
{
    mwl_server *srv = s->srv;
    find_op *f = &s->find;
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
    const char *abstract_syntax = NULL, *ts_uid = NULL;
    mwl_ts ts = MWL_TS_IMPLICIT_LE;
    if (mwl_ul_context(s->ul, msg->context_id, &abstract_syntax, &ts_uid) != MWL_OK ||
        mwl_ts_from_uid(ts_uid, strlen(ts_uid), &ts) != MWL_OK) {
        refuse(s, msg, MWL_DIMSE_STATUS_UNABLE_TO_PROCESS, "transfer syntax not supported");
        return;
    }
    /* dimse.md §6.4: FIND on another SOP class's context, or naming a SOP
     * class other than its context's, is refused with 0122. */
    if (!srv->has_provider || strcmp(abstract_syntax, MWL_UID_ModalityWorklistInformationModelFind) != 0 ||
        strcmp(c->affected_sop_class_uid, abstract_syntax) != 0) {
        refuse(s, msg, MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED, "SOP class not supported on this context");
        return;
    }
    if (!msg->has_dataset) {
        refuse(s, msg, MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH, "C-FIND-RQ without an identifier");
        return;
    }
    uint8_t *copy = mwl_mem_alloc(srv->mem, msg->dataset_length ? msg->dataset_length : 1);
    if (!copy) {
        refuse(s, msg, MWL_DIMSE_STATUS_OUT_OF_RESOURCES, "out of memory");
        return;
    }
    if (msg->dataset_length)
        memcpy(copy, msg->dataset, msg->dataset_length);
    f->identifier = copy;
    f->identifier_length = msg->dataset_length;
    f->context_id = msg->context_id;
    f->message_id = c->message_id;
    f->priority = c->priority;
    f->ts = ts;
    f->batch = srv->cfg.find_batch;
    snprintf(f->sop_class, sizeof f->sop_class, "%s", c->affected_sop_class_uid);
    snprintf(f->calling, sizeof f->calling, "%s", s->calling);
    snprintf(f->called, sizeof f->called, "%s", s->called);
    snprintf(f->peer, sizeof f->peer, "%s", s->peer);
    f->started_ms = mwl_now_ms();
    f->matches = 0;
    f->active = true;
    f->abandoned = false;
    f->waiting_drain = false;
    f->begun = f->ended = false;
    f->state = NULL;
    memset(&f->final, 0, sizeof f->final);
    atomic_store(&f->cancel.flag, false);
    s->finds++;
    submit(s, FIND_STEP_BEGIN);
}

void find_scp_cancel(session *s, const mwl_dimse_msg *msg)
{
    find_op *f = &s->find;
    uint16_t id = msg->command.message_id_being_responded_to;
    /* PS3.7 §9.3.2.4 / dimse.md §4.5: a cancel for an operation that is
     * not outstanding (e.g. it arrived after the final response) is
     * ignored; it has no response of its own. */
    if (!f->active || f->abandoned || id != f->message_id || atomic_load(&f->cancel.flag)) {
        mwl_log(MWL_LOG_DEBUG, "assoc %s: C-CANCEL for message %u ignored", s->peer, (unsigned)id);
        return;
    }
    atomic_store(&f->cancel.flag, true);
    if (f->job_outstanding)
        return; /* find_task_done sees the flag */
    f->waiting_drain = false;
    if (f->begun && !f->ended) {
        submit(s, FIND_STEP_NEXT); /* a cancelled step only ends the provider */
        return;
    }
    mwl_find_status st;
    status_set(&st, MWL_DIMSE_STATUS_CANCEL, NULL);
    final_now(s, &st);
}

void find_scp_abandon(session *s)
{
    find_op *f = &s->find;
    if (!f->active || f->abandoned)
        return;
    f->abandoned = true;
    f->waiting_drain = false;
    atomic_store(&f->cancel.flag, true);
    if (f->job_outstanding)
        return;
    if (f->begun && !f->ended) {
        submit(s, FIND_STEP_END);
        return;
    }
    finish(s, MWL_DIMSE_STATUS_CANCEL, "abandoned with the association");
}

void find_scp_continue(session *s)
{
    find_op *f = &s->find;
    if (!f->waiting_drain)
        return;
    f->waiting_drain = false;
    submit(s, FIND_STEP_NEXT);
}

static uint32_t record_length(const uint8_t *p)
{
    return mwl_load_u32le(p);
}

/* Queues the step's Pending responses; false if the session failed. */
static bool queue_pending(session *s)
{
    find_op *f = &s->find;
    mwl_server *srv = s->srv;
    const uint8_t *p = f->out.data, *end = f->out.data + f->out.len;
    while (p && p + 8 <= end) {
        uint32_t clen = record_length(p);
        const uint8_t *cmd = p + 4;
        uint32_t dlen = record_length(cmd + clen);
        const uint8_t *ds = cmd + clen + 4;
        p = ds + dlen;
        if (session_send_message(s, f->context_id, cmd, clen, ds, dlen) != MWL_OK)
            return false;
        f->matches++;
        server_stat_add(&srv->stats.find_matches, 1);
    }
    return true;
}

static void find_task_done(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    find_op *f = FIND_OF_TASK(task);
    session *s = f->owner;
    f->job_outstanding = false;
    if (s->zombie || f->abandoned) {
        if (f->begun && !f->ended)
            submit(s, FIND_STEP_END);
        else
            finish(s, MWL_DIMSE_STATUS_CANCEL, "abandoned with the association");
        session_service(s);
        return;
    }
    if (atomic_load(&f->cancel.flag)) {
        /* After a C-CANCEL nothing but the final FE00 goes out, even if the
         * step had found more (dimse.md §4.5 step 4). */
        if (f->begun && !f->ended) {
            submit(s, FIND_STEP_NEXT);
        } else {
            mwl_find_status st;
            status_set(&st, MWL_DIMSE_STATUS_CANCEL, NULL);
            final_now(s, &st);
        }
        session_service(s);
        return;
    }
    if (!queue_pending(s)) {
        if (f->active && !f->abandoned)
            find_scp_abandon(s); /* responses can no longer be sent */
    } else {
        if (f->step_final) {
            mwl_find_status st = f->final;
            final_now(s, &st);
        } else if (session_pending_output(s) < SERVER_OUT_LOW) {
            submit(s, FIND_STEP_NEXT);
        } else {
            f->waiting_drain = true;
        }
    }
    session_service(s);
}
