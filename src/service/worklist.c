/* The Modality Worklist service: its configuration table and its C-FIND
 * provider (see worklist.h). */
#include "service/worklist.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/datetime.h"
#include "net/net.h"
#include "store/store.h"

/* ---- configuration ------------------------------------------------------- */

#define FIELD(f) offsetof(mwl_worklist_config, f)

static const char *const charset_modes[] = {"auto", "item", "utf8", NULL};

static const mwl_config_key worklist_keys[] = {
    {"db", MWL_CONFIG_STRING, "mwl.db", 1, MWL_WORKLIST_PATH_MAX - 1, FIELD(db),
     "worklist database file used by the C-FIND provider", NULL},
    {"pn-case-sensitive", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(pn_case_sensitive),
     "match Patient's Name and other PN keys case-sensitively (default: case-insensitive)", NULL},
    {"pn-accent-insensitive", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(pn_accent_insensitive),
     "PN keys also ignore accents on Latin letters (Muller finds Müller)", NULL},
    {"filter-by-calling-aet", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(filter_by_calling_aet),
     "a query without Scheduled Station AE Title gets only the calling AE title's items", NULL},
    {"max-matches", MWL_CONFIG_UINT, "0", 0, 100000000, FIELD(max_matches),
     "most responses per C-FIND; more end with A700 and a comment; 0 = unlimited", NULL},
    {"max-find-duration", MWL_CONFIG_SECONDS, "0", 0, 86400000, FIELD(max_find_duration_ms),
     "longest a C-FIND may run (reading included); longer ends with A700 and a comment; 0 = unlimited", NULL},
    {"response-charset", MWL_CONFIG_ENUM, "auto", 1, 7, FIELD(response_charset),
     "auto (the item's set if the SCU reads it, else the query's or ISO_IR 192), item or utf8",
     charset_modes},
    {"per-called-aet", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(per_called_aet),
     "serve only the items imported with --per-called-aet into the called AE title's folder (wlmscpfs "
     "style)",
     NULL},
    {"hide-statuses", MWL_CONFIG_STRING, "COMPLETED,DISCONTINUED,CANCELED", 0, 255, FIELD(hide_statuses),
     "SPS Status values hidden from queries that do not ask for SPS Status; empty = none", NULL},
    {"expire-after-days", MWL_CONFIG_UINT, "0", 0, 36500, FIELD(expire_after_days),
     "remove steps scheduled more than N days before today (local date); 0 = never", NULL},
    {"expire-statuses-after-hours", MWL_CONFIG_UINT, "0", 0, 876000, FIELD(expire_statuses_after_hours),
     "remove steps whose status has been one of expire-statuses for more than N hours; 0 = never", NULL},
    {"expire-statuses", MWL_CONFIG_STRING, "COMPLETED,DISCONTINUED,CANCELED", 0, 255, FIELD(expire_statuses),
     "the finished SPS Status values expire-statuses-after-hours applies to", NULL},
    {"expire-interval", MWL_CONFIG_SECONDS, "3600", 1000, 86400000, FIELD(expire_interval_ms),
     "time between expiry runs (the first is at start)", NULL},
};

static const mwl_config_table worklist_table = {
    "worklist", worklist_keys, sizeof worklist_keys / sizeof worklist_keys[0], sizeof(mwl_worklist_config)};

const mwl_config_table *mwl_worklist_config_table(void)
{
    return &worklist_table;
}

void mwl_worklist_config_init(mwl_worklist_config *cfg)
{
    mwl_config_init(&worklist_table, cfg);
}

/* What the parser guarantees, for a config built by hand. */
int mwl_worklist_config_check(const mwl_worklist_config *cfg, mwl_diag *diag)
{
    const char *bad = NULL;
    if (!cfg->db[0] || !memchr(cfg->db, '\0', sizeof cfg->db))
        bad = "db";
    else if (cfg->max_matches > 100000000)
        bad = "max-matches";
    else if (cfg->max_find_duration_ms > 86400000)
        bad = "max-find-duration";
    else if (cfg->expire_after_days > 36500)
        bad = "expire-after-days";
    else if (cfg->expire_statuses_after_hours > 876000)
        bad = "expire-statuses-after-hours";
    else if (cfg->expire_interval_ms < 1000 || cfg->expire_interval_ms > 86400000)
        bad = "expire-interval";
    const char *lists[][2] = {{cfg->hide_statuses, "hide-statuses"},
                              {cfg->expire_statuses, "expire-statuses"}};
    for (size_t i = 0; !bad && i < 2; i++) {
        char buf[256];
        const char *items[MWL_FILTER_EXCLUDE_MAX];
        size_t n;
        mwl_diag d;
        mwl_diag_set(&d, 0, 0, "not a string");
        if (!memchr(lists[i][0], '\0', 256) ||
            mwl_worklist_status_list(lists[i][0], buf, sizeof buf, items, MWL_FILTER_EXCLUDE_MAX, &n, &d) !=
                MWL_OK) {
            mwl_diag_set(diag, 0, 0, "%s: %s", lists[i][1], d.msg);
            return MWL_E_INVALID;
        }
    }
    if (!bad) {
        bool known = false;
        for (size_t i = 0; charset_modes[i]; i++)
            known = known || strcmp(cfg->response_charset, charset_modes[i]) == 0;
        if (!known)
            bad = "response-charset";
    }
    if (bad) {
        mwl_diag_set(diag, 0, 0, "%s: invalid value", bad);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

static bool is_cs_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' || c == '_';
}

int mwl_worklist_status_list(const char *list, char *buf, size_t buf_size, const char **items, size_t cap,
                             size_t *count, mwl_diag *diag)
{
    *count = 0;
    size_t len = strlen(list);
    if (len >= buf_size) {
        mwl_diag_set(diag, 0, 0, "status list too long");
        return MWL_E_INVALID;
    }
    memcpy(buf, list, len + 1);
    char *p = buf;
    while (*p == ' ')
        p++;
    if (!*p)
        return MWL_OK; /* "": none */
    for (;;) {
        char *end = strchr(p, ',');
        char *next = end ? end + 1 : NULL;
        if (!end)
            end = p + strlen(p);
        while (*p == ' ')
            p++;
        char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        *last = '\0';
        size_t n = (size_t)(last - p);
        bool ok = n > 0 && n <= 16;
        for (size_t i = 0; ok && i < n; i++)
            ok = is_cs_char(p[i]);
        if (!ok) {
            mwl_diag_set(diag, 0, 0, "'%.20s' is not an SPS Status value (CS: A-Z 0-9 _ space, 1-16)", p);
            return MWL_E_INVALID;
        }
        if (*count == cap) {
            mwl_diag_set(diag, 0, 0, "more than %zu statuses", cap);
            return MWL_E_INVALID;
        }
        items[(*count)++] = p;
        if (!next)
            return MWL_OK;
        p = next;
    }
}

/* ---- the provider -------------------------------------------------------- */

typedef enum response_charset { CHARSET_AUTO = 0, CHARSET_ITEM, CHARSET_UTF8 } response_charset;

typedef struct conn_slot {
    mwl_store *store;
    struct conn_slot *next;
} conn_slot;

/* More store connections than this at once is a bug (the server has at
 * most 64 workers and 64 background workers, and a C-FIND holds one only
 * during a step). */
enum { MAX_CONNECTIONS = 128 };

struct mwl_worklist_service {
    const mwl_mem *mem;
    mwl_worklist_config cfg;
    mwl_match_opts match;
    response_charset charset;
    mwl_find_provider provider;
    pthread_mutex_t lock;
    conn_slot *idle; /* connections not lent to a C-FIND step */
    size_t opened;   /* connections that exist */
    /* the expiry thread (mwl_worklist_service_start_expiry); `lock` guards
     * `stopping`, `wake` interrupts its wait */
    pthread_t expiry_thread;
    pthread_cond_t wake;
    bool expiry_started;
    bool stopping;
};

typedef struct find_state {
    mwl_worklist_service *p;
    /* The options when this C-FIND began (a reload changes the service's,
     * never a C-FIND's halfway). */
    mwl_worklist_config cfg;
    response_charset charset;
    conn_slot *conn;   /* borrowed for one step: given back at pause and end */
    mwl_filter filter; /* what the store narrows on (points into itself: never copied) */
    mwl_store_cursor cursor;
    mwl_arena arena;     /* the query */
    mwl_arena row_arena; /* the current candidate, cleared per row */
    mwl_query *q;
    mwl_matcher matcher;
    mwl_charset query_cs;
    mwl_charset utf8; /* ISO_IR 192, parsed once */
    size_t matches;
    size_t candidates;
    bool no_results; /* answer with no matches (no store search was started) */
    /* hide-statuses, parsed: what filter.exclude_statuses points to */
    char hidden_text[256];
    const char *hidden[MWL_FILTER_EXCLUDE_MAX];
} find_state;

static const uint32_t sps = MWL_TAG_ScheduledProcedureStepSequence;

/* ---- connections --------------------------------------------------------- */

static int borrow(mwl_worklist_service *p, conn_slot **out, mwl_diag *diag)
{
    pthread_mutex_lock(&p->lock);
    conn_slot *c = p->idle;
    bool full = false;
    if (c)
        p->idle = c->next;
    else if (p->opened >= MAX_CONNECTIONS)
        full = true;
    else
        p->opened++; /* reserved: opened below */
    pthread_mutex_unlock(&p->lock);
    if (c) {
        *out = c;
        return MWL_OK;
    }
    if (full) {
        mwl_diag_set(diag, 0, 0, "all %d store connections in use", MAX_CONNECTIONS);
        return MWL_E_LIMIT;
    }
    c = mwl_mem_calloc(p->mem, 1, sizeof *c);
    mwl_store_options ro = {.read_only = true, .mem = p->mem};
    int rc = c ? mwl_store_open(p->cfg.db, &ro, &c->store, diag) : MWL_E_NOMEM;
    if (rc != MWL_OK) {
        mwl_mem_free(p->mem, c);
        pthread_mutex_lock(&p->lock);
        p->opened--;
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    *out = c;
    return MWL_OK;
}

static void give_back(mwl_worklist_service *p, conn_slot *c)
{
    /* The statement ends here: no read transaction outlives the step. */
    mwl_store_cursor_pause(c->store);
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
        mwl_filter_match m = mwl_filter_cond_match(items[i].cond);
        if (m != MWL_FILTER_ANY)
            len += (size_t)snprintf(out + len, cap - len, "%s=%s%s ", items[i].name, items[i].cond->value,
                                    m == MWL_FILTER_PREFIX ? "*" : "");
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
    st->conn = NULL;
    mwl_matcher_clear(&st->matcher);
    mwl_arena_clear(&st->row_arena);
    mwl_arena_clear(&st->arena);
    mwl_mem_free(st->p->mem, st);
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

static bool store_should_yield(void *user)
{
    return mwl_find_request_step_over(user);
}

static int wl_begin(void *user, mwl_find_request *req, void **state, mwl_find_status *early)
{
    mwl_worklist_service *p = user;
    find_state *st = mwl_mem_calloc(p->mem, 1, sizeof *st);
    if (!st)
        return MWL_E_NOMEM;
    st->p = p;
    pthread_mutex_lock(&p->lock);
    st->cfg = p->cfg;
    st->charset = p->charset;
    mwl_match_opts match = p->match;
    pthread_mutex_unlock(&p->lock);
    mwl_arena_init(&st->arena, p->mem);
    mwl_arena_init(&st->row_arena, p->mem);
    mwl_matcher_init(&st->matcher, &match, p->mem);
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
    if (st->cfg.filter_by_calling_aet && req->calling_ae && req->calling_ae[0] &&
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
    mwl_filter_from_query(st->q, &st->filter);
    /* Hidden steps (hide-statuses) are excluded by the store, unless the
     * query asks for a status itself: then the matcher decides. The list
     * was checked with the config. */
    const uint32_t status_path[2] = {sps, MWL_TAG_ScheduledProcedureStepStatus};
    const mwl_qkey *status_key = mwl_query_find(st->q, status_path, 2);
    size_t hidden = 0;
    if ((!status_key || !status_key->elem || status_key->elem->length == 0) &&
        mwl_worklist_status_list(st->cfg.hide_statuses, st->hidden_text, sizeof st->hidden_text, st->hidden,
                                 MWL_FILTER_EXCLUDE_MAX, &hidden, NULL) == MWL_OK &&
        hidden > 0) {
        st->filter.exclude_statuses = st->hidden;
        st->filter.exclude_status_count = hidden;
    }
    /* No called AE title (a REST search, mwl_worklist_service_search):
     * no worklist to keep to, every worklist is searched. */
    if (st->cfg.per_called_aet && req->called_ae)
        st->filter.worklist_aet = (mwl_filter_cond){MWL_FILTER_EXACT, req->called_ae};
    summarize(&st->filter, st, req->summary, sizeof req->summary);
    mwl_store_cursor_init(&st->cursor);
    /* The store asks this between rows it passes over, so one call never
     * outlasts the step's budget (find-step-time), a cancel or a deadline. */
    st->cursor.yield = store_should_yield;
    st->cursor.yield_user = req;
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
    response_charset mode = st->charset;
    if (mode == CHARSET_ITEM || mwl_ds_text_is_ascii(resp))
        return MWL_OK;
    mwl_charset item_cs;
    rc = mwl_charset_of(resp, &item_cs, d);
    if (rc != MWL_OK)
        return rc;
    if (mode == CHARSET_UTF8)
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

/* PS3.4 K.4-1 has no warning status: A700 tells the SCU the list is
 * incomplete (never a silent truncation), as for max-matches. */
static int duration_exceeded(const mwl_worklist_config *cfg, mwl_find_status *fst)
{
    char comment[65];
    snprintf(comment, sizeof comment, "query ran over %u.%03u s; refine the query",
             (unsigned)(cfg->max_find_duration_ms / 1000u), (unsigned)(cfg->max_find_duration_ms % 1000u));
    set_failure(fst, 0xA700, comment, 0);
    return MWL_OK;
}

static int wl_next(void *state, const mwl_find_request *req, mwl_arena *arena, const mwl_ds **match,
                   uint16_t *status, mwl_find_status *fst)
{
    find_state *st = state;
    *match = NULL;
    if (st->no_results)
        return MWL_OK;
    const mwl_worklist_config *c = &st->cfg;
    if (c->max_find_duration_ms && mwl_now_ms() - req->started_ms > c->max_find_duration_ms)
        return duration_exceeded(c, fst);
    mwl_diag d;
    const mwl_worklist_config *cfg = &st->cfg;
    for (size_t examined = 0;; examined++) {
        if (mwl_find_request_cancelled(req))
            return MWL_OK;
        /* Every few candidates: give the worker back when the step's budget
         * is used (the C-FIND goes on in a later step), and end a C-FIND
         * that has run longer than max-find-duration. */
        if (examined > 0 && examined % 32 == 0) {
            if (cfg->max_find_duration_ms && mwl_now_ms() - req->started_ms > cfg->max_find_duration_ms)
                return duration_exceeded(cfg, fst);
            if (mwl_find_request_step_over(req))
                return MWL_AGAIN;
        }
        /* At the limit, keep scanning only to learn whether one more match
         * exists: exactly max-matches matches is a complete answer. */
        bool at_limit = cfg->max_matches && st->matches >= cfg->max_matches;
        mwl_store_row row;
        mwl_diag_clear(&d);
        int rc = MWL_OK;
        if (!st->conn) {
            /* The step's connection: borrowed here, given back at pause. */
            rc = borrow(st->p, &st->conn, &d);
            if (rc != MWL_OK) {
                mwl_log(MWL_LOG_ERROR, "worklist store: %s", d.msg);
                set_failure(fst, rc == MWL_E_NOMEM || rc == MWL_E_LIMIT ? 0xA700 : 0xC001,
                            "worklist database unavailable", 0);
                return rc;
            }
        }
        rc = mwl_store_cursor_next(st->conn->store, &st->filter, &st->cursor, &row, &d);
        if (rc == MWL_E_NOTFOUND)
            return MWL_OK;
        if (rc == MWL_AGAIN) {
            /* The store passed over many rows its per-row conditions
             * rejected and the step's budget ran out (or a cancel came). */
            if (cfg->max_find_duration_ms && mwl_now_ms() - req->started_ms > cfg->max_find_duration_ms)
                return duration_exceeded(cfg, fst);
            return MWL_AGAIN;
        }
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_ERROR, "worklist store: %s", d.msg);
            set_failure(fst, 0xC001, "worklist database error", 0);
            return rc;
        }
        st->candidates++;
        mwl_arena_reset(&st->row_arena); /* per row: keep the chunk */
        mwl_ds *item;
        rc = mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, &st->row_arena, NULL, &item, &d);
        if (mwl_is_fatal(rc))
            return rc; /* out of memory is no reason to skip a row: the answer would be incomplete */
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "worklist: stored row %lld does not decode (%s); skipped",
                    (long long)row.id, d.msg);
            continue;
        }
        /* Rows hold one SPS each (store.h); expansion index 0 is that SPS. */
        bool hit = false;
        rc = mwl_match_dataset(&st->matcher, st->q, item, 0, &hit, &d);
        if (mwl_is_fatal(rc))
            return rc;
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
            snprintf(comment, sizeof comment, "more than %u matches; refine the query",
                     (unsigned)cfg->max_matches);
            set_failure(fst, 0xA700, comment, 0);
            return MWL_OK;
        }
        mwl_ds *resp;
        rc = build_response(st, item, arena, &resp, &d);
        if (mwl_is_fatal(rc))
            return rc;
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "worklist: response for row %lld cannot be built (%s); skipped",
                    (long long)row.id, d.msg[0] ? d.msg : mwl_status_str(rc));
            continue;
        }
        /* Whose order this is, for the audit trail, even when the query
         * did not ask for Patient ID. */
        const mwl_elem *pid = mwl_ds_find(item, MWL_TAG_PatientID);
        const char *patient = NULL;
        if (pid && pid->length && mwl_ds_get_utf8(item, pid, 0, &st->row_arena, &patient, NULL) == MWL_OK)
            mwl_find_request_set_patient(req, patient);
        st->matches++;
        *match = resp;
        *status = mwl_query_pending_status(st->q);
        return MWL_OK;
    }
}

static void wl_pause(void *state)
{
    find_state *st = state;
    if (st->conn)
        give_back(st->p, st->conn);
    st->conn = NULL;
}

static void wl_end(void *state)
{
    state_free(state);
}

/* ---- the search for other front ends ------------------------------------ */

int mwl_worklist_service_search(mwl_worklist_service *p, const mwl_ds *identifier, mwl_worklist_match_fn fn,
                                void *user, mwl_find_status *final, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    memset(final, 0, sizeof *final);
    /* The provider's own callbacks, driven here as the server drives them,
     * so that a REST search and a C-FIND cannot drift apart. No control
     * block: never cancelled, and no step budget (the caller's thread is
     * its own, not a shared worker). */
    mwl_find_request req;
    memset(&req, 0, sizeof req);
    req.identifier = identifier;
    req.transfer_syntax = MWL_TS_EXPLICIT_LE;
    req.sop_class_uid = MWL_UID_ModalityWorklistInformationModelFind;
    req.calling_ae = "";
    req.called_ae = NULL;
    req.peer = "";
    req.started_ms = mwl_now_ms();
    void *state = NULL;
    int rc = wl_begin(p, &req, &state, final);
    if (rc != MWL_OK)
        return rc;
    find_state *st = state;
    /* max-matches bounds what a DIMSE SCU, which cannot page, gets at once;
     * a front end that pages brings its own limit. */
    st->cfg.max_matches = 0;
    mwl_arena arena;
    mwl_arena_init(&arena, p->mem);
    while (final->status == 0) {
        mwl_arena_reset(&arena); /* per match: keep the chunk */
        const mwl_ds *match = NULL;
        uint16_t status = 0xFF00;
        rc = wl_next(st, &req, &arena, &match, &status, final);
        if (rc == MWL_AGAIN) {
            wl_pause(st);
            rc = MWL_OK;
            continue;
        }
        if (rc != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "%s",
                         final->error_comment[0] ? final->error_comment : mwl_status_str(rc));
            break;
        }
        if (!match)
            break;
        rc = fn(user, match);
        if (rc == MWL_AGAIN) {
            rc = MWL_OK;
            break;
        }
        if (rc != MWL_OK)
            break;
    }
    mwl_arena_clear(&arena);
    wl_end(st);
    return rc;
}

int mwl_worklist_service_get(mwl_worklist_service *p, const mwl_sps_ref *ref, mwl_arena *arena, mwl_ds **out,
                             mwl_diag *diag)
{
    conn_slot *c = NULL;
    int rc = borrow(p, &c, diag);
    if (rc != MWL_OK)
        return rc;
    rc = mwl_store_get(c->store, ref, arena, out, NULL, diag);
    give_back(p, c);
    return rc;
}

const char *mwl_worklist_service_db(const mwl_worklist_service *svc)
{
    /* db never changes after start (reconfigure keeps it), so no lock. */
    return svc->cfg.db;
}

/* ---- expiry -------------------------------------------------------------- */

/* One run with the options in force; a connection of its own for it (the
 * pooled ones are read-only), closed after, so nothing is held between
 * runs. */
static void expiry_run(mwl_worklist_service *p, const mwl_worklist_config *cfg)
{
    mwl_worklist_expiry e = {cfg->expire_after_days > 0, cfg->expire_after_days,
                             cfg->expire_statuses_after_hours > 0, cfg->expire_statuses_after_hours,
                             cfg->expire_statuses};
    if (!e.by_date && !e.by_status)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_store *store = NULL;
    mwl_store_options opt = {.mem = p->mem};
    mwl_worklist_expiry_result r;
    int rc = mwl_store_open(cfg->db, &opt, &store, &d);
    if (rc == MWL_OK)
        rc = mwl_worklist_expire(store, &e, now, &r, &d);
    mwl_store_free(store);
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "expire: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
        return;
    }
    char line[256];
    mwl_worklist_expiry_summary(&e, &r, line, sizeof line);
    mwl_log(MWL_LOG_INFO, "%s", line);
}

static void *expiry_main(void *arg)
{
    mwl_worklist_service *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        mwl_worklist_config cfg = p->cfg;
        pthread_mutex_unlock(&p->lock);
        expiry_run(p, &cfg);
        pthread_mutex_lock(&p->lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)(p->cfg.expire_interval_ms % 1000u) * 1000000u;
        until.tv_sec += (time_t)(p->cfg.expire_interval_ms / 1000u) + (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int mwl_worklist_service_start_expiry(mwl_worklist_service *p, mwl_diag *diag)
{
    if (p->expiry_started) {
        mwl_diag_set(diag, 0, 0, "expiry already started");
        return MWL_E_INVALID;
    }
    if (pthread_create(&p->expiry_thread, NULL, expiry_main, p) != 0) {
        mwl_diag_set(diag, 0, 0, "cannot start the expiry thread");
        return MWL_E_NOMEM;
    }
    p->expiry_started = true;
    return MWL_OK;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* The matching and response options derived from the config (the caller
 * holds the lock, or the service is not shared yet). */
static void apply_options(mwl_worklist_service *p, const mwl_worklist_config *cfg)
{
    mwl_match_opts_init(&p->match);
    p->match.pn_case_sensitive = cfg->pn_case_sensitive;
    p->match.pn_accent_insensitive = cfg->pn_accent_insensitive;
    p->charset = strcmp(cfg->response_charset, "item") == 0   ? CHARSET_ITEM
                 : strcmp(cfg->response_charset, "utf8") == 0 ? CHARSET_UTF8
                                                              : CHARSET_AUTO;
}

int mwl_worklist_service_reconfigure(mwl_worklist_service *p, const mwl_worklist_config *cfg, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!p || !cfg)
        return MWL_E_INVALID;
    int rc = mwl_worklist_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_worklist_config next = *cfg;
    if (strcmp(next.db, p->cfg.db) != 0) {
        mwl_log(MWL_LOG_WARN, "reload: db changes only with a restart; keeping %s", p->cfg.db);
        memcpy(next.db, p->cfg.db, sizeof next.db);
    }
    pthread_mutex_lock(&p->lock);
    p->cfg = next;
    apply_options(p, &next);
    pthread_mutex_unlock(&p->lock);
    return MWL_OK;
}

int mwl_worklist_service_new(const mwl_worklist_config *cfg, const mwl_mem *mem, mwl_worklist_service **out,
                             mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!cfg || !out)
        return MWL_E_INVALID;
    *out = NULL;
    int rc = mwl_worklist_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    if (!mem)
        mem = mwl_mem_default();
    mwl_worklist_service *p = mwl_mem_calloc(mem, 1, sizeof *p);
    if (!p)
        return MWL_E_NOMEM;
    p->mem = mem;
    p->cfg = *cfg;
    apply_options(p, cfg);
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        mwl_mem_free(mem, p);
        return MWL_E_NOMEM;
    }
    /* The expiry wait is on the monotonic clock: a wall-clock step must not
     * make it run early or sleep for hours. */
    pthread_condattr_t ca;
    bool cond_ok = pthread_condattr_init(&ca) == 0;
    if (cond_ok) {
        cond_ok =
            pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&p->wake, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond_ok) {
        pthread_mutex_destroy(&p->lock);
        mwl_mem_free(mem, p);
        return MWL_E_NOMEM;
    }
    /* Create (and migrate) the database if needed, then open one read-only
     * connection now: a foreign or broken database is reported at start-up,
     * not at the first C-FIND. */
    mwl_store *rw = NULL;
    rc = mwl_store_open(p->cfg.db, NULL, &rw, diag);
    mwl_store_free(rw);
    conn_slot *c = NULL;
    if (rc == MWL_OK)
        rc = borrow(p, &c, diag);
    if (rc != MWL_OK) {
        mwl_worklist_service_free(p);
        return rc;
    }
    give_back(p, c);
    p->provider = (mwl_find_provider){wl_begin, wl_next, wl_pause, wl_end, p};
    *out = p;
    return MWL_OK;
}

const mwl_find_provider *mwl_worklist_service_provider(const mwl_worklist_service *svc)
{
    return svc ? &svc->provider : NULL;
}

size_t mwl_worklist_service_connections(const mwl_worklist_service *svc)
{
    if (!svc)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)(uintptr_t)&svc->lock);
    size_t n = svc->opened;
    pthread_mutex_unlock((pthread_mutex_t *)(uintptr_t)&svc->lock);
    return n;
}

void mwl_worklist_service_free(mwl_worklist_service *p)
{
    if (!p)
        return;
    if (p->expiry_started) {
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->expiry_thread, NULL);
    }
    while (p->idle) {
        conn_slot *c = p->idle;
        p->idle = c->next;
        mwl_store_free(c->store);
        mwl_mem_free(p->mem, c);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    mwl_mem_free(p->mem, p);
}
