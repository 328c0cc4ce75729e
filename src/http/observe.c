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

#include <jansson.h>

#include "dicom/codec.h"
#include "dicom/json.h"
#include "dicom/keypath.h"
#include "dicom/tag.h"
#include "dimse/dimse.h"
#include "http/http_int.h"
#include "http/observe.h"
#include "store/store.h"

/* /queries answers at most this many records by default. */
#define QUERIES_MAX_LIMIT 500
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
    uint64_t items_changes; /* the change stamp the count was taken at */
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

static void put_str(mwl_wbuf *w, const char *s)
{
    if (s)
        mwl_json_put_string(w, s, strlen(s));
    else
        mwl_wbuf_put_str(w, "null");
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
    text_put(o, "%s", esc);
}

/* The value of query argument `name`, NULL when absent. */
static const char *arg(const mwl_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->arg_count; i++)
        if (strcmp(req->args[i].key, name) == 0)
            return req->args[i].value ? req->args[i].value : "";
    return NULL;
}

/* A decimal argument up to max; false when malformed (absent: dflt). */
static bool arg_uint(const mwl_http_request *req, const char *name, uint64_t dflt, uint64_t max,
                     uint64_t *out)
{
    const char *v = arg(req, name);
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

static void json_ok(mwl_http_response *res, mwl_wbuf *w)
{
    if (w->status != MWL_OK) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return;
    }
    res->status = 200;
    res->content_type = "application/json";
    mwl_wbuf_put(&res->body, w->data, w->len);
}

/* ---- GET /queries ----------------------------------------------------------- */

static void put_time(mwl_wbuf *w, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        mwl_wbuf_put_str(w, "null");
        return;
    }
    mwl_wbuf_printf(w, "\"%s.%03dZ\"", buf, (int)(ms % 1000));
}

/* The identifier as DICOM JSON (PS3.18 F.2), or null when it was not kept
 * or does not decode (a refused C-FIND's). */
static void put_identifier(mwl_wbuf *w, const mwl_query_record *r)
{
    if (!r->identifier_length) {
        mwl_wbuf_put_str(w, "null");
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
        mwl_wbuf_put_str(w, "null");
    }
    mwl_arena_clear(&arena);
}

static void put_record(mwl_wbuf *w, const mwl_query_record *r)
{
    mwl_wbuf_printf(w, "{\"id\":%" PRIu64 ",\"time\":", r->id);
    put_time(w, r->time_ms);
    mwl_wbuf_put_str(w, ",\"callingAet\":");
    put_str(w, r->calling);
    mwl_wbuf_put_str(w, ",\"calledAet\":");
    put_str(w, r->called);
    mwl_wbuf_put_str(w, ",\"peer\":");
    put_str(w, r->peer);
    mwl_wbuf_put_str(w, ",\"keys\":");
    put_str(w, r->keys);
    mwl_wbuf_printf(w, ",\"matches\":%" PRIu64 ",\"status\":\"%04X\",\"statusText\":", r->matches,
                    (unsigned)r->status);
    put_str(w, mwl_dimse_status_str(r->status));
    mwl_wbuf_put_str(w, ",\"comment\":");
    put_str(w, r->comment);
    mwl_wbuf_printf(w, ",\"durationMs\":%" PRIu64 ",\"identifier\":", r->duration_ms);
    put_identifier(w, r);
    mwl_wbuf_put_str(w, "}");
}

void serve_queries(const mwl_http_request *req, mwl_http_response *res)
{
    mwl_query_log *log = mwl_server_query_log(http_server(req->http));
    size_t capacity = mwl_query_log_capacity(log);
    uint64_t limit = 0;
    if (!arg_uint(req, "limit", QUERIES_DEFAULT_LIMIT, UINT32_MAX, &limit)) {
        mwl_http_error(res, 400, NULL, "limit: a number from 0");
        return;
    }
    if (limit > capacity)
        limit = capacity;
    /* The copy is made under the log's mutex, which the loop thread takes
     * at the end of every C-FIND: a bounded page keeps that wait short
     * (a record is ~2.4 KiB with its identifier). */
    if (limit > QUERIES_MAX_LIMIT)
        limit = QUERIES_MAX_LIMIT;
    const char *calling = arg(req, "calling");
    mwl_query_record *recs = limit ? malloc((size_t)limit * sizeof *recs) : NULL;
    if (limit && !recs) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return;
    }
    /* Copied under the log's mutex, formatted after it is released. */
    size_t n = recs ? mwl_query_log_list(log, calling, recs, (size_t)limit) : 0;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_wbuf_put_str(&w, "[");
    for (size_t i = 0; i < n; i++) {
        mwl_wbuf_put_str(&w, i ? ",\n" : "\n");
        put_record(&w, &recs[i]);
    }
    mwl_wbuf_put_str(&w, "]\n");
    free(recs);
    json_ok(res, &w);
    mwl_wbuf_clear(&w);
}

/* ---- the POST /explain envelope ------------------------------------------------
 *
 * {"query": <DICOM JSON> | {"keys": {"KEYPATH": "VALUE", ...}},
 *  "item": {"accession": "A"} | {"sps_id": "S", "study_uid": "U"}}
 *
 * Read with jansson (as dicom/json_decode.c reads DICOM JSON); the
 * identifier itself goes to mwl_ds_decode_json. */

/* A copy of a JSON string in `arena`; NULL when `v` is not a string or
 * holds NUL (which no DICOM value can). */
static char *string_value(const json_t *v, mwl_arena *arena)
{
    if (!json_is_string(v))
        return NULL;
    size_t n = json_string_length(v);
    const char *text = json_string_value(v);
    if (memchr(text, '\0', n))
        return NULL;
    return mwl_arena_strndup(arena, text, n);
}

/* ---- /explain ---------------------------------------------------------------- */

typedef struct explain_input {
    const char *accession, *sps_id, *study_uid;
    uint64_t query_id; /* a logged C-FIND; 0 = none */
    struct {
        const char *key, *value;
    } keys[EXPLAIN_MAX_KEYS];
    size_t count;
    bool too_many;
    mwl_ds *identifier; /* POST: a DICOM JSON identifier */
    mwl_arena *arena;
    char problem[160]; /* the envelope's first problem, "" = none */
} explain_input;

static void add_key(explain_input *in, const char *key, const char *value)
{
    if (in->count == EXPLAIN_MAX_KEYS) {
        in->too_many = true;
        return;
    }
    in->keys[in->count].key = key;
    in->keys[in->count].value = value ? value : "";
    in->count++;
}

/* Reads a POST /explain body into `in`. 0, or an HTTP status with
 * in->problem / diag saying why. */
static unsigned read_envelope(const mwl_http_request *req, explain_input *in, mwl_diag *diag)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *query = json_object_get(root, "query"), *item = json_object_get(root, "item");
    unsigned status = 0;
    if (!json_is_object(root) || json_object_size(root) != 2 || !query || !json_is_object(item)) {
        snprintf(in->problem, sizeof in->problem,
                 "the body is {\"query\": DICOM JSON or {\"keys\": {...}}, \"item\": {\"accession\": ...}}");
        status = 400;
        goto done;
    }
    const char *name;
    json_t *value;
    json_object_foreach(item, name, value)
    {
        const char **slot = strcmp(name, "accession") == 0   ? &in->accession
                            : strcmp(name, "sps_id") == 0    ? &in->sps_id
                            : strcmp(name, "study_uid") == 0 ? &in->study_uid
                                                             : NULL;
        if (!slot) {
            snprintf(in->problem, sizeof in->problem, "item: only accession, sps_id and study_uid");
            status = 400;
            goto done;
        }
        if (!(*slot = string_value(value, in->arena))) {
            snprintf(in->problem, sizeof in->problem, "item: values are JSON strings");
            status = 400;
            goto done;
        }
    }
    /* {"keys": {...}} or a DICOM JSON identifier, whose members are tags. */
    json_t *keys = json_object_get(query, "keys");
    if (keys) {
        if (!json_is_object(keys) || json_object_size(query) != 1) {
            snprintf(in->problem, sizeof in->problem, "query.keys: an object of key paths and values");
            status = 400;
            goto done;
        }
        json_object_foreach(keys, name, value)
        {
            char *k = mwl_arena_strndup(in->arena, name, strlen(name));
            char *v = string_value(value, in->arena);
            if (!k || !v) {
                snprintf(in->problem, sizeof in->problem, "query.keys: every key and value is a JSON string");
                status = 400;
                goto done;
            }
            add_key(in, k, v);
        }
        goto done;
    }
    char *text = json_dumps(query, JSON_COMPACT);
    int rc =
        text ? mwl_ds_decode_json(text, strlen(text), in->arena, NULL, &in->identifier, diag) : MWL_E_NOMEM;
    free(text);
    if (rc != MWL_OK) {
        snprintf(in->problem, sizeof in->problem, "query: %s", diag->msg[0] ? diag->msg : mwl_status_str(rc));
        status = 400;
    }
done:
    json_decref(root);
    return status;
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

/* The identifier to explain: the given one, a logged C-FIND's, or built
 * from key paths. 0 or an HTTP status (res filled). */
static unsigned build_identifier(const mwl_http_request *req, explain_input *in, mwl_http_response *res,
                                 mwl_ds **out)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    if (in->identifier) {
        *out = in->identifier;
        return 0;
    }
    if (in->query_id) {
        mwl_query_record *rec = malloc(sizeof *rec);
        if (!rec) {
            mwl_http_error(res, 503, NULL, "out of memory");
            return 503;
        }
        unsigned status = 0;
        if (mwl_query_log_get(mwl_server_query_log(http_server(req->http)), in->query_id, rec) != MWL_OK) {
            mwl_http_error(res, 404, NULL, "query %" PRIu64 ": not (or no longer) in the C-FIND log",
                           in->query_id);
            status = 404;
        } else if (!rec->identifier_length || mwl_ds_decode(rec->identifier, rec->identifier_length, rec->ts,
                                                            in->arena, NULL, out, &d) != MWL_OK) {
            mwl_http_error(res, HTTP_UNPROCESSABLE, NULL,
                           "query %" PRIu64 ": its identifier was not kept or does not decode", in->query_id);
            status = HTTP_UNPROCESSABLE;
        }
        free(rec);
        return status;
    }
    if (mwl_ds_new(in->arena, NULL, out) != MWL_OK) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return 503;
    }
    /* Values are UTF-8: say so, as mwl find does, unless the keys name a
     * character set themselves. */
    bool non_ascii = false, charset_given = false;
    for (size_t i = 0; i < in->count; i++) {
        for (const char *c = in->keys[i].value; *c; c++)
            non_ascii = non_ascii || (unsigned char)*c >= 0x80;
        charset_given = charset_given || strcmp(in->keys[i].key, "SpecificCharacterSet") == 0;
    }
    if (non_ascii && !charset_given &&
        mwl_ds_set_path(*out, "SpecificCharacterSet", 20, "ISO_IR 192", NULL, &d) != MWL_OK) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return 503;
    }
    for (size_t i = 0; i < in->count; i++) {
        const char *key = in->keys[i].key;
        if (mwl_ds_set_path(*out, key, strlen(key), in->keys[i].value, NULL, &d) != MWL_OK) {
            mwl_http_error(res, 400, key, "key %s: %s", key, d.msg);
            return 400;
        }
    }
    return 0;
}

/* Every query argument but the item selectors and `query` is a key of the
 * query: a key path (keypath.h) and its value. */
static void read_args(const mwl_http_request *req, explain_input *in)
{
    static const char *const reserved[] = {"accession", "sps_id", "study_uid", "query", NULL};
    in->accession = arg(req, "accession");
    in->sps_id = arg(req, "sps_id");
    in->study_uid = arg(req, "study_uid");
    for (size_t i = 0; i < req->arg_count; i++) {
        bool skip = false;
        for (size_t k = 0; reserved[k]; k++)
            skip = skip || strcmp(req->args[i].key, reserved[k]) == 0;
        if (!skip)
            add_key(in, req->args[i].key, req->args[i].value);
    }
}

static void explain(const mwl_http_request *req, mwl_http_response *res, explain_input *in)
{
    http_observe *o = http_get_observe(req->http);
    char db[MWL_HTTP_PATH_MAX];
    mwl_match_opts match;
    pthread_mutex_lock(&o->mu);
    snprintf(db, sizeof db, "%s", o->db);
    match = o->match;
    pthread_mutex_unlock(&o->mu);
    if (!db[0]) {
        mwl_http_error(res, 503, NULL, "no worklist database");
        return;
    }
    if ((!in->accession || !*in->accession) && (!in->sps_id || !*in->sps_id) &&
        (!in->study_uid || !*in->study_uid)) {
        mwl_http_error(res, 400, NULL, "say which stored item: accession, sps_id or study_uid");
        return;
    }
    if (in->too_many) {
        mwl_http_error(res, 400, NULL, "more than %d keys", EXPLAIN_MAX_KEYS);
        return;
    }
    if (in->query_id && in->count) {
        mwl_http_error(res, 400, NULL, "either query (a logged C-FIND) or keys, not both");
        return;
    }
    mwl_ds *identifier = NULL;
    if (build_identifier(req, in, res, &identifier) != 0)
        return;
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_query *q = NULL;
    int rc = mwl_query_parse(identifier, in->arena, &q, &d);
    if (rc != MWL_OK) {
        /* What the server would answer the modality: a failure, no item. */
        mwl_http_error(res, HTTP_UNPROCESSABLE, NULL, "the server refuses this query (%04X): (%04X,%04X) %s",
                       (unsigned)mwl_query_failure_status(rc), (unsigned)(d.tag >> 16),
                       (unsigned)(d.tag & 0xFFFF), d.msg);
        return;
    }
    mwl_store *store = NULL;
    mwl_store_options so = {.read_only = true};
    if (mwl_store_open(db, &so, &store, &d) != MWL_OK) {
        mwl_log(MWL_LOG_WARN, "http /explain: %s", d.msg);
        mwl_http_error(res, 503, NULL, "worklist database unavailable");
        return;
    }
    mwl_store_filter f;
    mwl_store_filter_init(&f);
    if (in->accession && *in->accession)
        f.accession = (mwl_store_cond){MWL_STORE_EXACT, in->accession};
    if (in->sps_id && *in->sps_id)
        f.sps_id = (mwl_store_cond){MWL_STORE_EXACT, in->sps_id};
    if (in->study_uid && *in->study_uid)
        f.study_uid = (mwl_store_cond){MWL_STORE_EXACT, in->study_uid};
    mwl_store_cursor cursor;
    mwl_store_cursor_init(&cursor);
    mwl_matcher m;
    mwl_matcher_init(&m, &match, NULL);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_wbuf_put_str(&w, "{\"query\":");
    if (in->query_id)
        mwl_wbuf_printf(&w, "%" PRIu64, in->query_id);
    else
        mwl_wbuf_put_str(&w, "null");
    mwl_wbuf_printf(&w, ",\"options\":{\"pnCaseSensitive\":%s,\"pnAccentInsensitive\":%s},\"steps\":[",
                    match.pn_case_sensitive ? "true" : "false",
                    match.pn_accent_insensitive ? "true" : "false");
    size_t count = 0;
    bool all = true;
    mwl_store_row row;
    while (count < EXPLAIN_MAX_STEPS &&
           (rc = mwl_store_cursor_next(store, &f, &cursor, &row, &d)) == MWL_OK) {
        mwl_ds *item = NULL;
        mwl_explain ex;
        if (mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, in->arena, NULL, &item, &d) !=
                MWL_OK ||
            mwl_explain_match(&m, q, item, 0, in->arena, &ex, &d) != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "http /explain: stored row %lld: %s", (long long)row.id, d.msg);
            all = false;
            continue;
        }
        char acc[70], sps[70];
        row_value(item, MWL_TAG_AccessionNumber, false, acc, sizeof acc);
        row_value(item, MWL_TAG_ScheduledProcedureStepID, true, sps, sizeof sps);
        mwl_wbuf_put_str(&w, count ? ",\n" : "\n");
        mwl_wbuf_printf(&w, "{\"row\":%lld,\"worklistAet\":", (long long)row.id);
        put_str(&w, row.worklist_aet);
        mwl_wbuf_put_str(&w, ",\"accession\":");
        put_str(&w, acc);
        mwl_wbuf_put_str(&w, ",\"spsId\":");
        put_str(&w, sps);
        mwl_wbuf_put_str(&w, ",");
        mwl_explain_write_json(&ex, &w);
        mwl_wbuf_put_str(&w, "}");
        all = all && ex.matched;
        count++;
    }
    mwl_store_cursor_pause(store);
    mwl_store_free(store);
    mwl_matcher_clear(&m);
    if (count < EXPLAIN_MAX_STEPS && rc != MWL_E_NOTFOUND) {
        mwl_log(MWL_LOG_WARN, "http /explain: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
        mwl_http_error(res, 503, NULL, "worklist database unavailable");
    } else if (count == 0) {
        mwl_http_error(res, 404, NULL, "no stored item has that key");
    } else {
        mwl_wbuf_printf(&w, "],\"matched\":%s}\n", all ? "true" : "false");
        json_ok(res, &w);
    }
    mwl_wbuf_clear(&w);
}

void serve_explain(const mwl_http_request *req, mwl_http_response *res)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    explain_input *in = calloc(1, sizeof *in);
    if (!in) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return;
    }
    in->arena = &arena;
    if (req->body) {
        mwl_diag d;
        mwl_diag_clear(&d);
        if (read_envelope(req, in, &d) != 0) {
            mwl_http_error(res, 400, NULL, "%s", in->problem);
            goto done;
        }
    } else {
        read_args(req, in);
        if (!arg_uint(req, "query", 0, UINT64_MAX, &in->query_id)) {
            mwl_http_error(res, 400, NULL, "query: the id of a logged C-FIND (/queries)");
            goto done;
        }
    }
    explain(req, res, in);
done:
    free(in);
    mwl_arena_clear(&arena);
}

/* ---- GET /status ------------------------------------------------------------- */

/* An HL7 event as JSON, null when there was none yet. Its strings came
 * from a sender: escaped like any other data. */
static void put_event(mwl_wbuf *w, const mwl_hl7_feed_event *ev, const char *text_key)
{
    if (!ev->time[0]) {
        mwl_wbuf_put_str(w, "null");
        return;
    }
    mwl_wbuf_put_str(w, "{\"time\":");
    put_str(w, ev->time);
    mwl_wbuf_put_str(w, ",\"sender\":");
    put_str(w, ev->sender);
    mwl_wbuf_put_str(w, ",\"type\":");
    put_str(w, ev->type);
    mwl_wbuf_put_str(w, ",\"control_id\":");
    put_str(w, ev->control_id);
    mwl_wbuf_put_str(w, ",\"ack\":");
    put_str(w, ev->ack);
    mwl_wbuf_printf(w, ",\"%s\":", text_key);
    put_str(w, ev->text);
    mwl_wbuf_put_str(w, "}");
}

/* A few numbers and the HL7 feed's last message and error for the web
 * page: JSON, so the page shows the sender's text without parsing
 * Prometheus labels, and no sender data goes into /metrics. */
void serve_status(const mwl_http_request *req, mwl_http_response *res)
{
    mwl_server *srv = http_server(req->http);
    mwl_server_stats s;
    memset(&s, 0, sizeof s);
    if (srv)
        mwl_server_get_stats(srv, &s);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_wbuf_printf(&w,
                    "{\"associations_active\":%zu,\"associations_total\":%" PRIu64 ",\"cfind_total\":%" PRIu64
                    ",\"hl7\":",
                    s.active, s.associations, s.finds);
    mwl_hl7_feed *feed = http_hl7(req->http);
    if (!feed) {
        mwl_wbuf_put_str(&w, "null}");
    } else {
        /* A few KiB (the by-type table, two events): off the thread's stack. */
        mwl_hl7_feed_stats *h = malloc(sizeof *h);
        if (!h) {
            mwl_wbuf_clear(&w);
            mwl_http_error(res, 503, NULL, "out of memory");
            return;
        }
        mwl_hl7_feed_get_stats(feed, h);
        mwl_wbuf_printf(&w,
                        "{\"messages\":%" PRIu64 ",\"aa\":%" PRIu64 ",\"ae\":%" PRIu64 ",\"ar\":%" PRIu64
                        ",\"last_message\":",
                        h->messages, h->aa, h->ae, h->ar);
        put_event(&w, &h->last_message, "summary");
        mwl_wbuf_put_str(&w, ",\"last_error\":");
        put_event(&w, &h->last_error, "error");
        mwl_wbuf_put_str(&w, "}}");
        free(h);
    }
    json_ok(res, &w);
    mwl_wbuf_clear(&w);
}

/* ---- GET /openapi.json -------------------------------------------------------- */

void serve_openapi(const mwl_http_request *req, mwl_http_response *res)
{
    (void)req;
    res->status = 200;
    res->content_type = "application/json";
    mwl_wbuf_put(&res->body, mwl_openapi_json, strlen(mwl_openapi_json));
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
    text_put(o,
             "# HELP mwl_cfind_total C-FINDs ended, by final status and calling AE title (at most %d titles, "
             "then \"other\"); one abandoned with its association counts as FE00.\n"
             "# TYPE mwl_cfind_total counter\n",
             MWL_FIND_STATS_AETS_MAX);
    for (size_t i = 0; i < st->ae_count; i++) {
        const mwl_find_stats_ae *a = &st->ae[i];
        for (size_t k = 0; k < a->status_count; k++) {
            text_put(o, "mwl_cfind_total{status=\"%04X\",calling_aet=\"", (unsigned)a->by_status[k].status);
            put_label(o, a->other ? "other" : a->ae);
            text_put(o, "\"} %" PRIu64 "\n", a->by_status[k].count);
        }
        if (a->other_status) {
            text_put(o, "mwl_cfind_total{status=\"other\",calling_aet=\"");
            put_label(o, a->other ? "other" : a->ae);
            text_put(o, "\"} %" PRIu64 "\n", a->other_status);
        }
    }
    text_put(o, "# HELP mwl_cfind_duration_seconds Time from C-FIND-RQ to the final response.\n"
                "# TYPE mwl_cfind_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < MWL_FIND_DURATION_BUCKETS; b++) {
        cumulative += st->bucket[b];
        uint32_t ms = mwl_find_duration_bounds_ms[b];
        text_put(o, "mwl_cfind_duration_seconds_bucket{le=\"%u.%03u\"} %" PRIu64 "\n", ms / 1000, ms % 1000,
                 cumulative);
    }
    cumulative += st->bucket[MWL_FIND_DURATION_BUCKETS];
    text_put(o, "mwl_cfind_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    text_put(o, "mwl_cfind_duration_seconds_sum %" PRIu64 ".%03u\n", st->sum_ms / 1000,
             (unsigned)(st->sum_ms % 1000));
    text_put(o, "mwl_cfind_duration_seconds_count %" PRIu64 "\n", st->count);
    free(st);
}

void observe_metrics_hl7(const mwl_hl7_feed_stats *h, text_out *o)
{
    text_put(
        o,
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
            text_put(o, "mwl_hl7_messages_total{type=\"");
            put_label(o, h->by_type[i].type);
            text_put(o, "\",ack=\"%s\"} %" PRIu64 "\n", codes[c], by_code[c]);
        }
    }
}

/* SPS rows stored, counted at most every ITEMS_CACHE_MS (a count is a scan
 * of an index, and scrapers may come often) and again at once after a
 * change through this server (`changes`, REST writes and HL7 commits), so
 * the page shows an item it has just added. False when unknown. */
static bool items_stored(http_observe *ob, uint64_t changes, int64_t *out)
{
    pthread_mutex_lock(&ob->mu);
    char db[MWL_HTTP_PATH_MAX];
    snprintf(db, sizeof db, "%s", ob->db);
    bool fresh =
        ob->items_known && ob->items_changes == changes && monotonic_ms() - ob->items_at_ms < ITEMS_CACHE_MS;
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
    ob->items_changes = changes;
    ob->items_at_ms = monotonic_ms();
    pthread_mutex_unlock(&ob->mu);
    *out = n;
    return true;
}

void observe_metrics_more(mwl_http *http, const mwl_server_stats *s, uint64_t changes, text_out *o)
{
    text_put(
        o,
        "# HELP mwl_association_outcomes_total DICOM associations by outcome: accepted (A-ASSOCIATE-AC), "
        "rejected (A-ASSOCIATE-RJ), aborted (A-ABORT or a lost transport, after acceptance).\n"
        "# TYPE mwl_association_outcomes_total counter\n"
        "mwl_association_outcomes_total{outcome=\"accepted\"} %" PRIu64 "\n"
        "mwl_association_outcomes_total{outcome=\"rejected\"} %" PRIu64 "\n"
        "mwl_association_outcomes_total{outcome=\"aborted\"} %" PRIu64 "\n",
        s->associations, s->rejected, s->aborted);
    uint64_t known = s->rejected_busy + s->rejected_calling_ae + s->rejected_called_ae;
    text_put(o,
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
    if (items_stored(http_get_observe(http), changes, &items))
        text_put(
            o,
            "# HELP mwl_items_stored Scheduled Procedure Steps in the worklist database (counted at most "
            "every %d s).\n"
            "# TYPE mwl_items_stored gauge\n"
            "mwl_items_stored %lld\n",
            ITEMS_CACHE_MS / 1000, (long long)items);
}
