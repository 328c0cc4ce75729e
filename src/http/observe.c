/* The observability endpoints (observe.h): GET /queries, GET /explain,
 * GET /openapi.json, and the metrics beyond the server's plain counters.
 *
 * Everything here runs on libmicrohttpd's thread. The C-FIND log and its
 * counters are the server's (server.h, mwl_query_log): a request takes a
 * copy under the log's mutex and formats it afterwards, so the C-FIND
 * path never waits for an HTTP client. The database is opened read-only
 * for each use (explain, the items-stored gauge every few seconds): no
 * connection, and no read transaction, is held between requests. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/codec.h"
#include "dicom/json.h"
#include "dicom/keypath.h"
#include "dicom/tag.h"
#include "dimse/dimse.h"
#include "http/http_int.h"
#include "http/observe.h"
#include "store/store.h"

/* /queries answers at most this many records by default. */
#define QUERIES_DEFAULT_LIMIT 100
/* Stored SPS explained for one request, at most. */
#define EXPLAIN_MAX_STEPS 20
/* Keys a /explain query may name. */
#define EXPLAIN_MAX_KEYS 32
/* 422: libmicrohttpd renamed its constant (ENTITY -> CONTENT, RFC 9110)
 * and deprecates the old name; the number works with every version. */
#define HTTP_UNPROCESSABLE 422u
/* How long the items-stored gauge is reused before counting again. */
#define ITEMS_CACHE_MS 5000

struct http_observe {
    pthread_mutex_t mu;
    char db[MWL_HTTP_PATH_MAX]; /* "" = not set: no /explain, no gauge */
    mwl_match_opts match;
    /* the items-stored gauge, cached */
    bool items_known;
    int64_t items;
    uint64_t items_at_ms;
};

http_observe *observe_new(void)
{
    http_observe *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    pthread_mutex_init(&o->mu, NULL);
    mwl_match_opts_init(&o->match);
    return o;
}

void observe_free(http_observe *o)
{
    if (!o)
        return;
    pthread_mutex_destroy(&o->mu);
    free(o);
}

int mwl_http_set_observe(mwl_http *http, const char *db, const mwl_match_opts *match)
{
    http_observe *o = http_get_observe(http);
    if (!db || strlen(db) >= sizeof o->db)
        return MWL_E_INVALID;
    pthread_mutex_lock(&o->mu);
    if (strcmp(o->db, db) != 0)
        o->items_known = false;
    snprintf(o->db, sizeof o->db, "%s", db);
    if (match)
        o->match = *match;
    pthread_mutex_unlock(&o->mu);
    return MWL_OK;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- small writers ---------------------------------------------------------- */

static void put_raw(mwl_wbuf *w, const char *s)
{
    mwl_wbuf_put(w, s, strlen(s));
}

static void put_fmt(mwl_wbuf *w, const char *fmt, ...) MWL_PRINTF(2, 3);
static void put_fmt(mwl_wbuf *w, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        mwl_wbuf_put(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_str(mwl_wbuf *w, const char *s)
{
    if (s)
        mwl_json_put_string(w, s, strlen(s));
    else
        put_raw(w, "null");
}

/* Prometheus text 0.0.4: in a label value, backslash, double quote and
 * line feed are escaped. AE titles cannot hold a backslash, but HL7 types
 * come from the sender. */
static void put_label(text_out *o, const char *s)
{
    char esc[2 * 64 + 1];
    size_t n = 0;
    for (; *s && n + 2 < sizeof esc; s++) {
        if (*s == '\\' || *s == '"') {
            esc[n++] = '\\';
            esc[n++] = *s;
        } else if (*s == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else {
            esc[n++] = *s;
        }
    }
    esc[n] = '\0';
    put(o, "%s", esc);
}

static enum MHD_Result respond_wbuf(mwl_http *http, struct MHD_Connection *conn, unsigned status, mwl_wbuf *w)
{
    enum MHD_Result rc;
    if (w->status != MWL_OK)
        rc = respond_json_error(http, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    else
        rc = respond(http, conn, status, "application/json", (const char *)w->data, w->len, NULL);
    mwl_wbuf_clear(w);
    return rc;
}

/* {"error":MESSAGE,"status":N} with a message that may quote the request
 * (escaped). */
static enum MHD_Result respond_error_text(mwl_http *http, struct MHD_Connection *conn, unsigned status,
                                          const char *fmt, ...) MWL_PRINTF(4, 5);
static enum MHD_Result respond_error_text(mwl_http *http, struct MHD_Connection *conn, unsigned status,
                                          const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    put_raw(&w, "{\"error\":");
    put_str(&w, msg);
    put_fmt(&w, ",\"status\":%u}\n", status);
    return respond_wbuf(http, conn, status, &w);
}

/* A decimal argument in 1..max; false when absent (dflt) or malformed. */
static bool arg_uint(struct MHD_Connection *conn, const char *name, uint64_t dflt, uint64_t max,
                     uint64_t *out)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    if (!*v || *v < '0' || *v > '9')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n > max)
        return false;
    *out = n;
    return true;
}

/* ---- GET /queries ----------------------------------------------------------- */

static void put_time(mwl_wbuf *w, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        put_raw(w, "null");
        return;
    }
    put_fmt(w, "\"%s.%03dZ\"", buf, (int)(ms % 1000));
}

/* The identifier as DICOM JSON (PS3.18 F.2), or null when it was not kept
 * or does not decode (a refused C-FIND's). */
static void put_identifier(mwl_wbuf *w, const mwl_query_record *r)
{
    if (!r->identifier_length) {
        put_raw(w, "null");
        return;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    size_t before = w->len;
    if (mwl_ds_decode(r->identifier, r->identifier_length, r->ts, &arena, NULL, &ds, &d) != MWL_OK ||
        mwl_ds_encode_json(ds, NULL, w, NULL) != MWL_OK) {
        if (w->status == MWL_OK)
            w->len = before;
        put_raw(w, "null");
    }
    mwl_arena_clear(&arena);
}

static void put_record(mwl_wbuf *w, const mwl_query_record *r)
{
    put_fmt(w, "{\"id\":%" PRIu64 ",\"time\":", r->id);
    put_time(w, r->time_ms);
    put_raw(w, ",\"callingAet\":");
    put_str(w, r->calling);
    put_raw(w, ",\"calledAet\":");
    put_str(w, r->called);
    put_raw(w, ",\"peer\":");
    put_str(w, r->peer);
    put_raw(w, ",\"keys\":");
    put_str(w, r->keys);
    put_fmt(w, ",\"matches\":%" PRIu64 ",\"status\":\"%04X\",\"statusText\":", r->matches,
            (unsigned)r->status);
    put_str(w, mwl_dimse_status_str(r->status));
    put_raw(w, ",\"comment\":");
    put_str(w, r->comment);
    put_fmt(w, ",\"durationMs\":%" PRIu64 ",\"identifier\":", r->duration_ms);
    put_identifier(w, r);
    put_raw(w, "}");
}

enum MHD_Result serve_queries(mwl_http *http, struct MHD_Connection *conn)
{
    mwl_query_log *log = mwl_server_query_log(http_server(http));
    size_t capacity = mwl_query_log_capacity(log);
    uint64_t limit = 0;
    if (!arg_uint(conn, "limit", QUERIES_DEFAULT_LIMIT, UINT32_MAX, &limit))
        return respond_error_text(http, conn, MHD_HTTP_BAD_REQUEST, "limit: a number from 0");
    if (limit > capacity)
        limit = capacity;
    const char *calling = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "calling");
    mwl_query_record *recs = limit ? malloc((size_t)limit * sizeof *recs) : NULL;
    if (limit && !recs)
        return respond_json_error(http, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    /* Copied under the log's mutex, formatted after it is released. */
    size_t n = recs ? mwl_query_log_list(log, calling, recs, (size_t)limit) : 0;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    put_raw(&w, "[");
    for (size_t i = 0; i < n; i++) {
        put_raw(&w, i ? ",\n" : "\n");
        put_record(&w, &recs[i]);
    }
    put_raw(&w, "]\n");
    free(recs);
    return respond_wbuf(http, conn, MHD_HTTP_OK, &w);
}

/* ---- GET /explain ----------------------------------------------------------- */

typedef struct explain_args {
    struct {
        const char *key, *value;
    } keys[EXPLAIN_MAX_KEYS];
    size_t count;
    bool too_many;
} explain_args;

/* Every query parameter but the item selectors and `query` is a key of
 * the query: a key path (keypath.h) and its value. */
static enum MHD_Result collect_key(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    explain_args *a = cls;
    static const char *const reserved[] = {"accession", "sps_id", "study_uid", "query", NULL};
    for (size_t i = 0; reserved[i]; i++)
        if (strcmp(key, reserved[i]) == 0)
            return MHD_YES;
    if (a->count == EXPLAIN_MAX_KEYS) {
        a->too_many = true;
        return MHD_NO;
    }
    a->keys[a->count].key = key;
    a->keys[a->count].value = value ? value : "";
    a->count++;
    return MHD_YES;
}

/* A stored value of the SPS row, "" when absent. */
static void row_value(const mwl_ds *item, uint32_t tag, bool in_sps, char *buf, size_t cap)
{
    buf[0] = '\0';
    const mwl_ds *from = item;
    if (in_sps) {
        const mwl_elem *sq = mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepSequence);
        from = sq && sq->vr == MWL_VR_SQ && sq->item_count ? sq->items[0] : NULL;
    }
    if (from && mwl_ds_copy_str(from, tag, 0, buf, cap) != MWL_OK)
        buf[0] = '\0';
}

enum MHD_Result serve_explain(mwl_http *http, struct MHD_Connection *conn)
{
    http_observe *o = http_get_observe(http);
    char db[MWL_HTTP_PATH_MAX];
    mwl_match_opts match;
    pthread_mutex_lock(&o->mu);
    snprintf(db, sizeof db, "%s", o->db);
    match = o->match;
    pthread_mutex_unlock(&o->mu);
    if (!db[0])
        return respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no worklist database", NULL);

    const char *accession = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "accession");
    const char *sps_id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sps_id");
    const char *study_uid = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "study_uid");
    if ((!accession || !*accession) && (!sps_id || !*sps_id) && (!study_uid || !*study_uid))
        return respond_error_text(http, conn, MHD_HTTP_BAD_REQUEST,
                                  "say which stored item: accession, sps_id or study_uid");
    uint64_t query_id = 0;
    if (!arg_uint(conn, "query", 0, UINT64_MAX, &query_id))
        return respond_error_text(http, conn, MHD_HTTP_BAD_REQUEST, "query: the id of a logged C-FIND");
    explain_args args;
    memset(&args, 0, sizeof args);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_key, &args);
    if (args.too_many)
        return respond_error_text(http, conn, MHD_HTTP_BAD_REQUEST, "more than %d keys", EXPLAIN_MAX_KEYS);
    if (query_id && args.count)
        return respond_error_text(http, conn, MHD_HTTP_BAD_REQUEST,
                                  "either query (a logged C-FIND) or keys, not both");

    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *identifier = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    enum MHD_Result answer;
    mwl_store *store = NULL;
    mwl_query_record *rec = NULL;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    if (query_id) {
        rec = malloc(sizeof *rec);
        if (!rec) {
            answer = respond_json_error(http, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
            goto done;
        }
        if (mwl_query_log_get(mwl_server_query_log(http_server(http)), query_id, rec) != MWL_OK) {
            answer = respond_error_text(http, conn, MHD_HTTP_NOT_FOUND,
                                        "query %" PRIu64 ": not (or no longer) in the C-FIND log", query_id);
            goto done;
        }
        if (!rec->identifier_length || mwl_ds_decode(rec->identifier, rec->identifier_length, rec->ts, &arena,
                                                     NULL, &identifier, &d) != MWL_OK) {
            answer = respond_error_text(http, conn, HTTP_UNPROCESSABLE,
                                        "query %" PRIu64 ": its identifier was not kept or does not decode",
                                        query_id);
            goto done;
        }
    } else {
        if (mwl_ds_new(&arena, NULL, &identifier) != MWL_OK) {
            answer = respond_json_error(http, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
            goto done;
        }
        for (size_t i = 0; i < args.count; i++) {
            const char *key = args.keys[i].key;
            if (mwl_ds_set_path(identifier, key, strlen(key), args.keys[i].value, NULL, &d) != MWL_OK) {
                answer = respond_error_text(http, conn, MHD_HTTP_BAD_REQUEST, "key %s: %s", key, d.msg);
                goto done;
            }
        }
    }
    mwl_query *q = NULL;
    int rc = mwl_query_parse(identifier, &arena, &q, &d);
    if (rc != MWL_OK) {
        /* What the server would answer the modality: a failure, no item. */
        answer = respond_error_text(http, conn, HTTP_UNPROCESSABLE,
                                    "the server refuses this query (%04X): (%04X,%04X) %s",
                                    (unsigned)mwl_query_failure_status(rc), (unsigned)(d.tag >> 16),
                                    (unsigned)(d.tag & 0xFFFF), d.msg);
        goto done;
    }
    mwl_store_options so = {.read_only = true};
    if (mwl_store_open(db, &so, &store, &d) != MWL_OK) {
        mwl_log(MWL_LOG_WARN, "http /explain: %s", d.msg);
        answer = respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "worklist database unavailable",
                                    NULL);
        goto done;
    }
    mwl_store_filter f;
    mwl_store_filter_init(&f);
    if (accession && *accession)
        f.accession = (mwl_store_cond){MWL_STORE_EXACT, accession};
    if (sps_id && *sps_id)
        f.sps_id = (mwl_store_cond){MWL_STORE_EXACT, sps_id};
    if (study_uid && *study_uid)
        f.study_uid = (mwl_store_cond){MWL_STORE_EXACT, study_uid};
    mwl_store_cursor cursor;
    mwl_store_cursor_init(&cursor);
    mwl_matcher m;
    mwl_matcher_init(&m, &match, NULL);
    put_raw(&w, "{\"query\":");
    if (query_id)
        put_fmt(&w, "%" PRIu64, query_id);
    else
        put_raw(&w, "null");
    put_fmt(&w, ",\"options\":{\"pnCaseSensitive\":%s,\"pnAccentInsensitive\":%s},\"steps\":[",
            match.pn_case_sensitive ? "true" : "false", match.pn_accent_insensitive ? "true" : "false");
    size_t count = 0;
    bool all = true;
    mwl_store_row row;
    while (count < EXPLAIN_MAX_STEPS &&
           (rc = mwl_store_cursor_next(store, &f, &cursor, &row, &d)) == MWL_OK) {
        mwl_ds *item = NULL;
        mwl_explain ex;
        if (mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, &arena, NULL, &item, &d) != MWL_OK ||
            mwl_explain_match(&m, q, item, 0, &arena, &ex, &d) != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "http /explain: stored row %lld: %s", (long long)row.id, d.msg);
            all = false;
            continue;
        }
        char acc[70], sps[70];
        row_value(item, MWL_TAG_AccessionNumber, false, acc, sizeof acc);
        row_value(item, MWL_TAG_ScheduledProcedureStepID, true, sps, sizeof sps);
        put_raw(&w, count ? ",\n" : "\n");
        put_fmt(&w, "{\"row\":%lld,\"worklistAet\":", (long long)row.id);
        put_str(&w, row.worklist_aet);
        put_raw(&w, ",\"accession\":");
        put_str(&w, acc);
        put_raw(&w, ",\"spsId\":");
        put_str(&w, sps);
        put_raw(&w, ",");
        mwl_explain_write_json(&ex, &w);
        put_raw(&w, "}");
        all = all && ex.matched;
        count++;
    }
    mwl_store_cursor_pause(store);
    mwl_matcher_clear(&m);
    if (count < EXPLAIN_MAX_STEPS && rc != MWL_E_NOTFOUND) {
        mwl_log(MWL_LOG_WARN, "http /explain: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
        answer = respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "worklist database unavailable",
                                    NULL);
        goto done;
    }
    if (count == 0) {
        answer = respond_json_error(http, conn, MHD_HTTP_NOT_FOUND, "no stored item has that key", NULL);
        goto done;
    }
    put_fmt(&w, "],\"matched\":%s}\n", all ? "true" : "false");
    answer = respond_wbuf(http, conn, MHD_HTTP_OK, &w);
done:
    mwl_wbuf_clear(&w);
    mwl_store_free(store);
    free(rec);
    mwl_arena_clear(&arena);
    return answer;
}

/* ---- GET /openapi.json -------------------------------------------------------- */

enum MHD_Result serve_openapi(mwl_http *http, struct MHD_Connection *conn)
{
    return respond(http, conn, MHD_HTTP_OK, "application/json", mwl_openapi_json, strlen(mwl_openapi_json),
                   NULL);
}

/* ---- metrics ------------------------------------------------------------------ */

void observe_metrics_find(mwl_http *http, text_out *o)
{
    mwl_find_stats *st = malloc(sizeof *st);
    if (!st) {
        o->truncated = true;
        return;
    }
    mwl_query_log_get_stats(mwl_server_query_log(http_server(http)), st);
    put(o,
        "# HELP mwl_cfind_total C-FINDs ended, by final status and calling AE title (at most %d titles, "
        "then \"other\"); one abandoned with its association counts as FE00.\n"
        "# TYPE mwl_cfind_total counter\n",
        MWL_FIND_STATS_AETS_MAX);
    for (size_t i = 0; i < st->ae_count; i++) {
        const mwl_find_stats_ae *a = &st->ae[i];
        for (size_t k = 0; k < a->status_count; k++) {
            put(o, "mwl_cfind_total{status=\"%04X\",calling_aet=\"", (unsigned)a->by_status[k].status);
            put_label(o, a->other ? "other" : a->ae);
            put(o, "\"} %" PRIu64 "\n", a->by_status[k].count);
        }
        if (a->other_status) {
            put(o, "mwl_cfind_total{status=\"other\",calling_aet=\"");
            put_label(o, a->other ? "other" : a->ae);
            put(o, "\"} %" PRIu64 "\n", a->other_status);
        }
    }
    put(o, "# HELP mwl_cfind_duration_seconds Time from C-FIND-RQ to the final response.\n"
           "# TYPE mwl_cfind_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < MWL_FIND_DURATION_BUCKETS; b++) {
        cumulative += st->bucket[b];
        uint32_t ms = mwl_find_duration_bounds_ms[b];
        put(o, "mwl_cfind_duration_seconds_bucket{le=\"%u.%03u\"} %" PRIu64 "\n", ms / 1000, ms % 1000,
            cumulative);
    }
    cumulative += st->bucket[MWL_FIND_DURATION_BUCKETS];
    put(o, "mwl_cfind_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    put(o, "mwl_cfind_duration_seconds_sum %" PRIu64 ".%03u\n", st->sum_ms / 1000,
        (unsigned)(st->sum_ms % 1000));
    put(o, "mwl_cfind_duration_seconds_count %" PRIu64 "\n", st->count);
    free(st);
}

void observe_metrics_hl7(const mwl_hl7_feed_stats *h, text_out *o)
{
    put(o,
        "# HELP mwl_hl7_messages_total HL7 messages answered, by type (MSH-9.1^MSH-9.2, at most %d, then "
        "\"other\"; \"\" = no readable MSH) and ACK code (MSA-1).\n"
        "# TYPE mwl_hl7_messages_total counter\n",
        MWL_HL7_FEED_TYPES_MAX);
    for (size_t i = 0; i < h->type_count; i++) {
        const uint64_t by_code[3] = {h->by_type[i].aa, h->by_type[i].ae, h->by_type[i].ar};
        static const char *const codes[3] = {"AA", "AE", "AR"};
        for (size_t c = 0; c < 3; c++) {
            if (!by_code[c])
                continue;
            put(o, "mwl_hl7_messages_total{type=\"");
            put_label(o, h->by_type[i].type);
            put(o, "\",ack=\"%s\"} %" PRIu64 "\n", codes[c], by_code[c]);
        }
    }
}

/* SPS rows stored, counted at most every ITEMS_CACHE_MS: a count is a scan
 * of an index, and scrapers may come often. False when unknown. */
static bool items_stored(http_observe *ob, int64_t *out)
{
    pthread_mutex_lock(&ob->mu);
    char db[MWL_HTTP_PATH_MAX];
    snprintf(db, sizeof db, "%s", ob->db);
    bool fresh = ob->items_known && monotonic_ms() - ob->items_at_ms < ITEMS_CACHE_MS;
    *out = ob->items;
    pthread_mutex_unlock(&ob->mu);
    if (!db[0])
        return false;
    if (fresh)
        return true;
    mwl_store *store = NULL;
    mwl_store_options so = {.read_only = true};
    mwl_diag d;
    mwl_diag_clear(&d);
    int64_t n = 0;
    int rc = mwl_store_open(db, &so, &store, &d);
    if (rc == MWL_OK)
        rc = mwl_store_count(store, &n, &d);
    mwl_store_free(store);
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_WARN, "http /metrics: items stored: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
        return false;
    }
    pthread_mutex_lock(&ob->mu);
    ob->items = n;
    ob->items_known = true;
    ob->items_at_ms = monotonic_ms();
    pthread_mutex_unlock(&ob->mu);
    *out = n;
    return true;
}

void observe_metrics_more(mwl_http *http, const mwl_server_stats *s, text_out *o)
{
    put(o,
        "# HELP mwl_association_outcomes_total DICOM associations by outcome: accepted (A-ASSOCIATE-AC), "
        "rejected (A-ASSOCIATE-RJ), aborted (A-ABORT or a lost transport, after acceptance).\n"
        "# TYPE mwl_association_outcomes_total counter\n"
        "mwl_association_outcomes_total{outcome=\"accepted\"} %" PRIu64 "\n"
        "mwl_association_outcomes_total{outcome=\"rejected\"} %" PRIu64 "\n"
        "mwl_association_outcomes_total{outcome=\"aborted\"} %" PRIu64 "\n",
        s->associations, s->rejected, s->aborted);
    uint64_t known = s->rejected_busy + s->rejected_calling_ae + s->rejected_called_ae;
    put(o,
        "# HELP mwl_associations_refused_total A-ASSOCIATE-RJ by reason: busy (max-associations), "
        "calling_aet (not allowed or malformed), called_aet (not ours), other.\n"
        "# TYPE mwl_associations_refused_total counter\n"
        "mwl_associations_refused_total{reason=\"busy\"} %" PRIu64 "\n"
        "mwl_associations_refused_total{reason=\"calling_aet\"} %" PRIu64 "\n"
        "mwl_associations_refused_total{reason=\"called_aet\"} %" PRIu64 "\n"
        "mwl_associations_refused_total{reason=\"other\"} %" PRIu64 "\n",
        s->rejected_busy, s->rejected_calling_ae, s->rejected_called_ae,
        s->rejected > known ? s->rejected - known : 0);
    int64_t items = 0;
    if (items_stored(http_get_observe(http), &items))
        put(o,
            "# HELP mwl_items_stored Scheduled Procedure Steps in the worklist database (counted at most "
            "every %d s).\n"
            "# TYPE mwl_items_stored gauge\n"
            "mwl_items_stored %lld\n",
            ITEMS_CACHE_MS / 1000, (long long)items);
}
