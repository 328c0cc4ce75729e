/* The Modality Worklist C-FIND provider (see worklist_provider.h). */
#include "server/worklist_provider.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/datetime.h"
#include "store/store.h"

typedef struct conn_slot {
    mwl_store *store;
    struct conn_slot *next;
} conn_slot;

struct mwl_worklist_provider {
    mwl_worklist_options opts;
    char *db_path;
    pthread_mutex_t lock;
    conn_slot *idle; /* connections not lent to a C-FIND */
};

typedef struct find_state {
    mwl_worklist_provider *p;
    conn_slot *conn;
    mwl_arena arena;     /* the query */
    mwl_arena row_arena; /* the current candidate, cleared per row */
    mwl_query *q;
    mwl_matcher matcher;
    mwl_charset query_cs;
    mwl_charset utf8; /* ISO_IR 192, parsed once */
    size_t matches;
    size_t candidates;
    bool no_results; /* answer with no matches (no store search was started) */
} find_state;

static const uint32_t sps = MWL_TAG_ScheduledProcedureStepSequence;

/* ---- connections --------------------------------------------------------- */

static int borrow(mwl_worklist_provider *p, conn_slot **out, mwl_diag *diag)
{
    pthread_mutex_lock(&p->lock);
    conn_slot *c = p->idle;
    if (c)
        p->idle = c->next;
    pthread_mutex_unlock(&p->lock);
    if (c) {
        *out = c;
        return MWL_OK;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return MWL_E_NOMEM;
    mwl_store_options ro = {.read_only = true};
    int rc = mwl_store_open(p->db_path, &ro, &c->store, diag);
    if (rc != MWL_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return MWL_OK;
}

static void give_back(mwl_worklist_provider *p, conn_slot *c)
{
    mwl_store_find_end(c->store);
    pthread_mutex_lock(&p->lock);
    c->next = p->idle;
    p->idle = c;
    pthread_mutex_unlock(&p->lock);
}

/* "station=CT01 date=20261125-20261125 modality=CT" for the log line. */
static void summarize(const mwl_store_filter *f, const find_state *st, char *out, size_t cap)
{
    const struct {
        const char *name;
        const mwl_store_cond *cond;
    } items[] = {
        {"station", &f->station_aet}, {"modality", &f->modality}, {"sps", &f->sps_id},
        {"status", &f->sps_status},   {"pid", &f->patient_id},    {"name", &f->patient_name},
        {"accession", &f->accession}, {"study", &f->study_uid},   {"rp", &f->requested_procedure_id}};
    size_t len = 0;
    out[0] = '\0';
    if (f->date_lo || f->date_hi)
        len += (size_t)snprintf(out + len, cap - len, "date=%s-%s ", f->date_lo ? f->date_lo : "",
                                f->date_hi ? f->date_hi : "");
    for (size_t i = 0; i < sizeof items / sizeof items[0] && len < cap; i++) {
        if (items[i].cond->match != MWL_STORE_ANY)
            len += (size_t)snprintf(out + len, cap - len, "%s=%s%s ", items[i].name, items[i].cond->value,
                                    items[i].cond->match == MWL_STORE_PREFIX ? "*" : "");
    }
    if (len < cap)
        snprintf(out + len, cap - len, "keys=%zu%s", mwl_query_key_count(st->q),
                 mwl_query_unsupported_count(st->q) ? " (some optional keys unsupported)" : "");
}

/* ---- provider callbacks -------------------------------------------------- */

static void state_free(find_state *st)
{
    if (!st)
        return;
    if (st->conn)
        give_back(st->p, st->conn);
    mwl_matcher_clear(&st->matcher);
    mwl_arena_clear(&st->row_arena);
    mwl_arena_clear(&st->arena);
    free(st);
}

static void set_failure(mwl_find_status *s, uint16_t status, const char *comment, uint32_t offending)
{
    s->status = status;
    /* (0000,0902) is LO: at most 64 characters (the server also cleans it) */
    size_t n = strlen(comment);
    if (n >= sizeof s->error_comment)
        n = sizeof s->error_comment - 1;
    memcpy(s->error_comment, comment, n);
    s->error_comment[n] = '\0';
    s->offending_element_count = 0;
    if (offending) {
        s->offending_elements[0] = offending;
        s->offending_element_count = 1;
    }
}

static int wl_begin(void *user, mwl_find_request *req, void **state, mwl_find_status *early)
{
    mwl_worklist_provider *p = user;
    find_state *st = calloc(1, sizeof *st);
    if (!st)
        return MWL_E_NOMEM;
    st->p = p;
    mwl_arena_init(&st->arena, NULL);
    mwl_arena_init(&st->row_arena, NULL);
    mwl_matcher_init(&st->matcher, &p->opts.match, NULL);
    *state = st;
    mwl_diag d;
    mwl_diag_clear(&d);
    int rc = mwl_query_parse(req->identifier, &st->arena, &st->q, &d);
    if (rc != MWL_OK) {
        set_failure(early, mwl_query_failure_status(rc), d.msg[0] ? d.msg : mwl_status_str(rc), d.tag);
        snprintf(req->summary, sizeof req->summary, "refused: %s", d.msg);
        return MWL_OK;
    }
    if (mwl_charset_of(req->identifier, &st->query_cs, NULL) != MWL_OK)
        mwl_charset_init_default(&st->query_cs); /* parse succeeded, so this cannot happen */
    if (mwl_charset_parse("ISO_IR 192", 10, &st->utf8, NULL) != MWL_OK) {
        state_free(st); /* a failed begin cleans up itself (server.h) */
        *state = NULL;
        return MWL_E_INTERNAL;
    }
    const uint32_t aet_path[2] = {sps, MWL_TAG_ScheduledStationAETitle};
    if (p->opts.filter_by_calling_aet && req->calling_ae && req->calling_ae[0] &&
        mwl_query_is_universal(st->q, aet_path, 2)) {
        /* The calling AE title is a literal: '*', '?' or '\\' in it would be
         * read as a pattern or a list, so such a title gets no items. */
        if (strpbrk(req->calling_ae, "*?\\")) {
            st->no_results = true;
            snprintf(req->summary, sizeof req->summary, "calling AE title %s is not a literal: no items",
                     req->calling_ae);
            return MWL_OK;
        }
        rc = mwl_query_constrain(st->q, aet_path, 2, req->calling_ae, &d);
        if (rc != MWL_OK) {
            set_failure(early, 0xC001, "cannot filter by the calling AE title", 0);
            return MWL_OK;
        }
    }
    mwl_store_filter f;
    mwl_filter_from_query(st->q, &f);
    if (p->opts.per_called_aet)
        f.worklist_aet = (mwl_store_cond){MWL_STORE_EXACT, req->called_ae ? req->called_ae : ""};
    summarize(&f, st, req->summary, sizeof req->summary);
    rc = borrow(p, &st->conn, &d);
    if (rc == MWL_OK)
        rc = mwl_store_find_begin(st->conn->store, &f, &d);
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "worklist store: %s", d.msg);
        set_failure(early, rc == MWL_E_NOMEM ? 0xA700 : 0xC001, "worklist database unavailable", 0);
    }
    return MWL_OK;
}

/* Builds the response for `item` in `arena`, in the character set chosen
 * for the SCU (see mwl_response_charset). */
static int build_response(find_state *st, const mwl_ds *item, mwl_arena *arena, mwl_ds **out, mwl_diag *d)
{
    mwl_ds *resp;
    int rc = mwl_project(&st->matcher, st->q, item, 0, arena, &resp, d);
    if (rc != MWL_OK)
        return rc;
    *out = resp;
    mwl_response_charset mode = st->p->opts.response_charset;
    if (mode == MWL_RESPONSE_CHARSET_ITEM || mwl_ds_text_is_ascii(resp))
        return MWL_OK;
    mwl_charset item_cs;
    rc = mwl_charset_of(resp, &item_cs, d);
    if (rc != MWL_OK)
        return rc;
    if (mode == MWL_RESPONSE_CHARSET_UTF8)
        return mwl_charset_is_utf8(&item_cs) ? MWL_OK : mwl_ds_recode(resp, &st->utf8, d);
    if (item_cs.count == st->query_cs.count && memcmp(item_cs.ids, st->query_cs.ids, item_cs.count) == 0)
        return MWL_OK;
    if (st->query_cs.count > 0) {
        rc = mwl_ds_recode(resp, &st->query_cs, d);
        if (rc != MWL_E_CHARSET)
            return rc;
        /* The query's set cannot hold a character, and the response is
         * partly converted: build it again and send it in UTF-8. */
        rc = mwl_project(&st->matcher, st->q, item, 0, arena, &resp, d);
        if (rc != MWL_OK)
            return rc;
        *out = resp;
    }
    return mwl_ds_recode(resp, &st->utf8, d);
}

static int wl_next(void *state, const mwl_find_request *req, mwl_arena *arena, const mwl_ds **match,
                   uint16_t *status, mwl_find_status *fst)
{
    find_state *st = state;
    *match = NULL;
    if (st->no_results)
        return MWL_OK;
    mwl_diag d;
    for (;;) {
        if (mwl_find_request_cancelled(req))
            return MWL_OK;
        /* At the limit, keep scanning only to learn whether one more match
         * exists: exactly max-matches matches is a complete answer. */
        bool at_limit = st->p->opts.max_matches && st->matches >= st->p->opts.max_matches;
        mwl_store_row row;
        mwl_diag_clear(&d);
        int rc = mwl_store_find_next(st->conn->store, &row, &d);
        if (rc == MWL_E_NOTFOUND)
            return MWL_OK;
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_ERROR, "worklist store: %s", d.msg);
            set_failure(fst, 0xC001, "worklist database error", 0);
            return rc;
        }
        st->candidates++;
        mwl_arena_clear(&st->row_arena);
        mwl_ds *item;
        rc = mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, &st->row_arena, NULL, &item, &d);
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "worklist: stored row %lld does not decode (%s); skipped",
                    (long long)row.id, d.msg);
            continue;
        }
        /* Rows hold one SPS each (store.h); expansion index 0 is that SPS. */
        bool hit = false;
        rc = mwl_match_dataset(&st->matcher, st->q, item, 0, &hit, &d);
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "worklist: stored row %lld cannot be matched (%s); skipped",
                    (long long)row.id, d.msg);
            continue;
        }
        if (!hit)
            continue;
        if (at_limit) {
            /* PS3.4 K.4-1 has no warning status: A700 tells the SCU the list
             * is incomplete (never a silent truncation). */
            char comment[65];
            snprintf(comment, sizeof comment, "more than %zu matches; refine the query",
                     st->p->opts.max_matches);
            set_failure(fst, 0xA700, comment, 0);
            return MWL_OK;
        }
        mwl_ds *resp;
        rc = build_response(st, item, arena, &resp, &d);
        if (rc == MWL_E_NOMEM)
            return rc;
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "worklist: response for row %lld cannot be built (%s); skipped",
                    (long long)row.id, d.msg[0] ? d.msg : mwl_status_str(rc));
            continue;
        }
        st->matches++;
        *match = resp;
        *status = mwl_query_pending_status(st->q);
        return MWL_OK;
    }
}

static void wl_end(void *state)
{
    state_free(state);
}

/* ---- lifecycle ----------------------------------------------------------- */

int mwl_worklist_provider_new(const mwl_worklist_options *opts, mwl_worklist_provider **out,
                              mwl_find_provider *provider, mwl_diag *diag)
{
    mwl_worklist_provider *p = calloc(1, sizeof *p);
    if (!p)
        return MWL_E_NOMEM;
    p->opts = *opts;
    p->db_path = strdup(opts->db_path ? opts->db_path : "mwl.db");
    if (!p->db_path) {
        free(p);
        return MWL_E_NOMEM;
    }
    p->opts.db_path = p->db_path;
    pthread_mutex_init(&p->lock, NULL);
    /* Create (and migrate) the database if needed, then open one read-only
     * connection now: a foreign or broken database is reported at start-up,
     * not at the first C-FIND. */
    mwl_store *rw;
    int rc = mwl_store_open(p->db_path, NULL, &rw, diag);
    mwl_store_free(rw);
    if (rc != MWL_OK) {
        mwl_worklist_provider_free(p);
        return rc;
    }
    conn_slot *c;
    rc = borrow(p, &c, diag);
    if (rc != MWL_OK) {
        mwl_worklist_provider_free(p);
        return rc;
    }
    give_back(p, c);
    provider->begin = wl_begin;
    provider->next = wl_next;
    provider->end = wl_end;
    provider->user = p;
    *out = p;
    return MWL_OK;
}

void mwl_worklist_provider_free(mwl_worklist_provider *p)
{
    if (!p)
        return;
    while (p->idle) {
        conn_slot *c = p->idle;
        p->idle = c->next;
        mwl_store_free(c->store);
        free(c);
    }
    pthread_mutex_destroy(&p->lock);
    free(p->db_path);
    free(p);
}
