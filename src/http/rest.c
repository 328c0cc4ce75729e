/* The REST worklist API (rest.h, docs/http.md).
 *
 * A search is a C-FIND: the query parameters become a C-FIND identifier
 * (keys by keyword or tag, nested with '.', values exactly as a C-FIND
 * identifier would hold them) and run through the worklist service's own
 * C-FIND code (mwl_worklist_service_search), so matching, hide-statuses
 * and the response's keys cannot differ between DIMSE and HTTP.
 *
 * Writes go through mwl_store_put_item, whose mwl_worklist_check_item is
 * the one every intake (import, HL7) passes, after the stricter check a
 * REST client can act on (MWL_CHECK_IDENTITY: an item without SPS ID or
 * Study Instance UID could never be addressed again). Each write is one
 * batch on the shared write connection: the look-up that decides 201 or
 * 200 (or 409) and the change are one transaction. */
#include "http/rest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "dicom/charset.h"
#include "dicom/dict.h"
#include "dicom/json.h"
#include "dicom/keypath.h"
#include "dicom/tags_gen.h"
#include "dicom/xml.h"
#include "store/store.h"
#include "worklist/worklist.h"

struct mwl_rest {
    mwl_worklist_service *wl;
    char db[MWL_WORKLIST_PATH_MAX];
    pthread_mutex_t write_mu;     /* guards writer */
    mwl_store *writer;            /* opened at the first write */
    atomic_uint_fast64_t changes; /* writes answered 2xx (mwl_rest_changes) */
    /* mwl_worklist_default_return_keys, parsed once: every search adds
     * them, and parsing them (a keyword lookup a step) cost a search more
     * than adding them. */
    mwl_keypath *default_keys;
    size_t default_key_count;
};

int mwl_rest_new(mwl_worklist_service *wl, mwl_rest **out)
{
    *out = NULL;
    mwl_rest *r = calloc(1, sizeof *r);
    if (!r)
        return MWL_E_NOMEM;
    r->wl = wl;
    atomic_init(&r->changes, 0);
    /* Copied now, on the starting thread: the service's config is changed
     * by reloads on the loop thread (db itself never changes). */
    snprintf(r->db, sizeof r->db, "%s", mwl_worklist_service_db(wl));
    size_t n = 0;
    const char *const *keys = mwl_worklist_default_return_keys(&n);
    r->default_keys = calloc(n ? n : 1, sizeof *r->default_keys);
    if (!r->default_keys) {
        free(r);
        return MWL_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        mwl_diag d;
        if (mwl_keypath_parse(keys[i], strlen(keys[i]), &r->default_keys[i], &d) != MWL_OK) {
            /* a fixed list of dictionary keywords: cannot happen */
            mwl_log(MWL_LOG_ERROR, "http: default return key %s: %s", keys[i], d.msg);
            free(r->default_keys);
            free(r);
            return MWL_E_INTERNAL;
        }
    }
    r->default_key_count = n;
    pthread_mutex_init(&r->write_mu, NULL);
    *out = r;
    return MWL_OK;
}

void mwl_rest_free(mwl_rest *r)
{
    if (!r)
        return;
    mwl_store_free(r->writer);
    pthread_mutex_destroy(&r->write_mu);
    free(r->default_keys);
    free(r);
}

static const uint32_t sps_tag = MWL_TAG_ScheduledProcedureStepSequence;

/* ---- small helpers ----------------------------------------------------------- */

/* The attribute an error names: its keyword, or GGGGEEEE. */
static const char *attribute_name(uint32_t tag, char *buf, size_t cap)
{
    if (!tag)
        return NULL;
    const char *kw = mwl_dict_keyword(tag);
    if (kw && kw[0])
        return kw;
    snprintf(buf, cap, "%08X", (unsigned)tag);
    return buf;
}

static void respond_dataset(mwl_http_response *res, unsigned status, const mwl_ds *ds)
{
    res->status = status;
    res->content_type = "application/dicom+json";
    res->body.len = 0;
    if (mwl_ds_encode_json(ds, NULL, &res->body, NULL) != MWL_OK)
        mwl_http_error(res, 500, NULL, "out of memory");
    else
        mwl_wbuf_put(&res->body, "\n", 1);
}

static bool parse_count(const char *text, unsigned long max, unsigned long *out)
{
    if (!text || !*text || strlen(text) > 9)
        return false;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    unsigned long v = strtoul(text, NULL, 10);
    if (v > max)
        return false;
    *out = v;
    return true;
}

/* The UTF-8 text of `tag` in `ds` (first value, trimmed), or "". */
static const char *text_of(const mwl_ds *ds, uint32_t tag, mwl_arena *arena)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    const char *s = NULL;
    if (!e || e->length == 0 || mwl_ds_get_utf8(ds, e, 0, arena, &s, NULL) != MWL_OK || !s)
        return "";
    return s;
}

static const mwl_ds *first_sps(const mwl_ds *item)
{
    const mwl_elem *seq = mwl_ds_find(item, sps_tag);
    return seq && seq->vr == MWL_VR_SQ && seq->item_count > 0 ? seq->items[0] : NULL;
}

/* ---- search ------------------------------------------------------------------ */

/* Every key of the worklist model under `parent` (NULL: top level) that
 * `ds` lacks, as an empty return key; sequences get one item holding
 * their own keys (K.6.1.2.2: an empty item asks for every key in it,
 * but listing them is what every SCP understands). */
static int add_all_keys(mwl_ds *ds, const mwl_wlkey *parent)
{
    size_t n = mwl_wlkey_child_count(parent);
    for (size_t i = 0; i < n; i++) {
        const mwl_wlkey *k = mwl_wlkey_child(parent, i);
        if (!k || (k->flags & (MWL_WLKEY_IGNORE | MWL_WLKEY_CHARSET)))
            continue;
        const mwl_elem *have = mwl_ds_find(ds, k->tag);
        int rc = MWL_OK;
        if ((mwl_vr)k->vr == MWL_VR_SQ) {
            mwl_ds *item = NULL;
            if (!have) {
                rc = mwl_ds_add_item(ds, k->tag, &item);
            } else if (have->vr == MWL_VR_SQ && have->item_count > 0) {
                item = have->items[0];
            }
            if (rc == MWL_OK && item)
                rc = add_all_keys(item, k);
        } else if (!have) {
            rc = mwl_ds_set(ds, k->tag, (mwl_vr)k->vr, NULL, 0);
        }
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

/* A return key named by includefield or the defaults: added empty unless
 * the query already has it (a matching key is returned anyway). */
static int add_return_key(mwl_ds *ds, const char *path, size_t len, mwl_diag *d)
{
    mwl_keypath kp;
    int rc = mwl_keypath_parse(path, len, &kp, d);
    if (rc != MWL_OK)
        return rc;
    if (mwl_keypath_find(ds, &kp, NULL))
        return MWL_OK;
    return mwl_keypath_set(ds, &kp, NULL, NULL, d);
}

/* The two dialects of one search. /mwlitems keeps its own convention
 * (backslash UID lists, 400 for what it does not do, 200 []); the
 * standard route follows PS3.18 ch. 14 and 8.3.4 where they differ. Both
 * build the identifier and run it with the same code below. */
typedef enum search_dialect { DIALECT_MWLITEMS, DIALECT_STANDARD } search_dialect;

/* How results are written: the JSON array, the count, or multipart parts
 * (one data set per part) in DICOM JSON or the Native DICOM Model XML. */
typedef enum search_form { FORM_JSON, FORM_COUNT, FORM_MULTIPART_JSON, FORM_MULTIPART_XML } search_form;

typedef struct search_query {
    mwl_ds *id;
    unsigned long offset, limit;
    bool limit_given; /* the client asked for at most `limit` (then no "additional results" warning) */
    bool fuzzy, empty, multiple; /* ...matching=true asked for (not done: a warning each) */
} search_query;

/* The standard's true|false flags (PS3.18 8.3.4): anything else is a
 * malformed value. */
static bool parse_flag(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0)
        *out = false;
    else
        return false;
    return true;
}

static bool same_path(const mwl_keypath *a, const mwl_keypath *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (a->steps[i].tag != b->steps[i].tag || a->steps[i].index != b->steps[i].index)
            return false;
    return true;
}

/* One match parameter in the standard dialect: `k` parsed as a path
 * (false: not an attribute, so an unknown parameter name, which 8.3
 * says to ignore). A UID attribute takes a comma list (8.3.4.1), and may
 * be repeated (the lists are joined); any other attribute given twice is
 * 400, since multiple value matching is not done. *value gets the
 * identifier's text in `arena`; NULL when this parameter was already
 * taken with an earlier one of the same path. */
static bool std_match_value(const mwl_http_request *req, size_t at, const mwl_keypath *kp, mwl_arena *arena,
                            mwl_http_response *res, const char **value, bool *ok)
{
    *ok = true;
    *value = NULL;
    mwl_diag d;
    for (size_t j = 0; j < at; j++) {
        mwl_keypath other;
        if (mwl_keypath_parse(req->args[j].key, strlen(req->args[j].key), &other, &d) == MWL_OK &&
            same_path(&other, kp))
            return true; /* taken with parameter j */
    }
    bool uid = kp->steps[kp->count - 1].vr == MWL_VR_UI;
    size_t total = 0, count = 0;
    for (size_t j = at; j < req->arg_count; j++) {
        mwl_keypath other;
        if (j > at && (mwl_keypath_parse(req->args[j].key, strlen(req->args[j].key), &other, &d) != MWL_OK ||
                       !same_path(&other, kp)))
            continue;
        total += strlen(req->args[j].value ? req->args[j].value : "") + 1;
        count++;
    }
    if (count > 1 && !uid) {
        mwl_http_error(res, 400, req->args[at].key,
                       "%s is given %zu times: multiple value matching is not supported", req->args[at].key,
                       count);
        *ok = false;
        return true;
    }
    char *text = mwl_arena_alloc(arena, total + 1);
    if (!text) {
        mwl_http_error(res, 503, NULL, "out of memory");
        *ok = false;
        return true;
    }
    size_t len = 0;
    for (size_t j = at; j < req->arg_count; j++) {
        mwl_keypath other;
        if (j > at && (mwl_keypath_parse(req->args[j].key, strlen(req->args[j].key), &other, &d) != MWL_OK ||
                       !same_path(&other, kp)))
            continue;
        const char *v = req->args[j].value ? req->args[j].value : "";
        if (len && *v)
            text[len++] = '\\';
        for (; *v; v++)
            text[len++] = uid && *v == ',' ? '\\' : *v; /* the identifier's list separator */
    }
    text[len] = '\0';
    *value = text;
    return true;
}

/* Builds the identifier and the paging from the query parameters; false
 * with the error answered. */
/* True when the parameter name is a key path to Specific Character Set,
 * at the top or in an item. */
static bool names_charset(const char *k)
{
    mwl_keypath kp;
    mwl_diag d;
    if (mwl_keypath_parse(k, strlen(k), &kp, &d) != MWL_OK)
        return false;
    for (size_t i = 0; i < kp.count; i++)
        if (kp.steps[i].tag == MWL_TAG_SpecificCharacterSet)
            return true;
    return false;
}

static bool build_query(const mwl_http_request *req, mwl_http_response *res, search_dialect dialect,
                        bool count_only, mwl_arena *arena, search_query *q)
{
    mwl_charset utf8;
    mwl_diag d;
    mwl_diag_clear(&d);
    bool all = false, named = false;
    char tagbuf[12];
    memset(q, 0, sizeof *q);
    q->limit = MWL_REST_LIMIT_DEFAULT;
    /* Query parameters are UTF-8 (RFC 3986 percent-encoding of UTF-8):
     * the identifier says ISO_IR 192, and the responses come back in it
     * (response-charset auto converts to the query's set). */
    if (mwl_ds_new(arena, NULL, &q->id) != MWL_OK ||
        mwl_charset_parse("ISO_IR 192", 10, &utf8, NULL) != MWL_OK ||
        mwl_ds_set_str(q->id, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192") != MWL_OK) {
        mwl_http_error(res, 500, NULL, "out of memory");
        return false;
    }
    bool std = dialect == DIALECT_STANDARD;
    for (size_t i = 0; i < req->arg_count; i++) {
        const char *k = req->args[i].key, *v = req->args[i].value ? req->args[i].value : "";
        if (strcmp(k, "limit") == 0) {
            /* The standard's limit is any uint: above the server's
             * maximum it is cut to it (and the warning says so). */
            unsigned long max = std ? 999999999ul : MWL_REST_LIMIT_MAX;
            if (!parse_count(v, max, &q->limit) || (!std && q->limit == 0)) {
                if (std)
                    mwl_http_error(res, 400, NULL, "limit: a whole number (at most %d are returned)",
                                   MWL_REST_LIMIT_MAX);
                else
                    mwl_http_error(res, 400, NULL, "limit: a number from 1 to %d", MWL_REST_LIMIT_MAX);
                return false;
            }
            q->limit_given = q->limit <= MWL_REST_LIMIT_MAX;
            if (q->limit > MWL_REST_LIMIT_MAX)
                q->limit = MWL_REST_LIMIT_MAX;
        } else if (strcmp(k, "offset") == 0) {
            if (!parse_count(v, 999999999ul, &q->offset)) {
                mwl_http_error(res, 400, NULL, "offset: a number from 0");
                return false;
            }
        } else if (strcmp(k, "fuzzymatching") == 0) {
            /* PS3.18 8.3.4.1 lets a server without fuzzy matching refuse
             * true: /mwlitems does, rather than silently match exactly;
             * the standard route matches literally and warns. */
            bool on = false;
            if (!parse_flag(v, &on) || (!std && on)) {
                mwl_http_error(res, 400, NULL, "fuzzymatching: only %s is supported",
                               std ? "true or false" : "false");
                return false;
            }
            q->fuzzy = on;
        } else if (std && (strcmp(k, "emptyvaluematching") == 0 || strcmp(k, "multiplevaluematching") == 0)) {
            bool on = false;
            if (!parse_flag(v, &on)) {
                mwl_http_error(res, 400, NULL, "%s: true or false", k);
                return false;
            }
            if (k[0] == 'e')
                q->empty = on;
            else
                q->multiple = on;
        } else if (std && (strcmp(k, "accept") == 0 || strcmp(k, "charset") == 0)) {
            /* accept: negotiated by the caller. charset: the answer is
             * always UTF-8 (RFC 8259 for JSON; XML declared so), which
             * 8.3.3.2 lets a server answer with. */
        } else if (strcmp(k, "includefield") == 0) {
            /* Comma-separated or repeated (PS3.18 8.3.4.3). */
            for (const char *p = v; *p;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                if (n == 3 && memcmp(p, "all", 3) == 0) {
                    all = true;
                } else if (n > 0) {
                    named = true;
                    if (add_return_key(q->id, p, n, &d) != MWL_OK) {
                        mwl_http_error(res, 400, attribute_name(d.tag, tagbuf, sizeof tagbuf),
                                       "includefield: %s", d.msg[0] ? d.msg : "bad attribute");
                        return false;
                    }
                }
                p += n + (comma ? 1 : 0);
            }
        } else if (names_charset(k)) {
            /* Also nested (00400100.00080005): an item's own character set
             * would say how its values are encoded, and they are UTF-8. */
            mwl_http_error(res, 400, "SpecificCharacterSet", "query parameters are always UTF-8");
            return false;
        } else if (std) {
            mwl_keypath kp;
            mwl_diag_clear(&d);
            if (mwl_keypath_parse(k, strlen(k), &kp, &d) != MWL_OK)
                continue; /* 8.3: an unknown parameter name is ignored */
            const char *value = NULL;
            bool ok = true;
            (void)std_match_value(req, i, &kp, arena, res, &value, &ok);
            if (!ok)
                return false;
            if (!value)
                continue;
            int rc = mwl_keypath_set(q->id, &kp, value, &utf8, &d);
            if (rc != MWL_OK) {
                const char *attr = attribute_name(d.tag, tagbuf, sizeof tagbuf);
                mwl_http_error(res, 400, attr ? attr : k, "%s: %s", k, d.msg[0] ? d.msg : mwl_status_str(rc));
                return false;
            }
        } else {
            int rc = mwl_ds_set_path(q->id, k, strlen(k), v, &utf8, &d);
            if (rc != MWL_OK) {
                const char *attr = attribute_name(d.tag, tagbuf, sizeof tagbuf);
                mwl_http_error(res, 400, attr ? attr : k, "%s: %s", k, d.msg[0] ? d.msg : mwl_status_str(rc));
                return false;
            }
        }
    }
    if (std && all && named) {
        mwl_http_error(res, 400, NULL,
                       "includefield: all cannot be combined with attributes (PS3.18 8.3.4.3)");
        return false;
    }
    if (!count_only) {
        int rc = MWL_OK;
        /* The same return keys as `mwl find`'s, so the two answer alike. */
        const mwl_rest *r = req->rest;
        for (size_t i = 0; rc == MWL_OK && i < r->default_key_count; i++) {
            if (!mwl_keypath_find(q->id, &r->default_keys[i], NULL))
                rc = mwl_keypath_set(q->id, &r->default_keys[i], NULL, NULL, &d);
        }
        if (rc == MWL_OK && all)
            rc = add_all_keys(q->id, NULL);
        if (rc != MWL_OK) {
            /* The identifier is the client's: what it holds can make a
             * return key fail to fit (400), only memory is ours (503). */
            mwl_http_error(res, rc == MWL_E_NOMEM ? 503 : 400, attribute_name(d.tag, tagbuf, sizeof tagbuf),
                           "return keys: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
            return false;
        }
    } else if (!mwl_ds_find(q->id, sps_tag)) {
        /* The identifier needs the SPS sequence to be a worklist query at
         * all; a count with no key asks for every step. */
        mwl_ds *item;
        if (mwl_ds_add_item(q->id, sps_tag, &item) != MWL_OK) {
            mwl_http_error(res, 500, NULL, "out of memory");
            return false;
        }
    }
    return true;
}

typedef struct search_page {
    mwl_wbuf *out;
    search_form form;
    unsigned long offset, limit;
    unsigned long seen, emitted;
    bool count_rest; /* go on counting past the page (for the additional-results warning) */
    size_t *ends;    /* multipart: where each part ends in out */
    size_t ends_cap;
} search_page;

static int on_match(void *user, const mwl_ds *response)
{
    search_page *pg = user;
    pg->seen++;
    if (pg->form == FORM_COUNT || pg->seen <= pg->offset)
        return MWL_OK;
    if (pg->emitted >= pg->limit)
        return pg->count_rest ? MWL_OK : MWL_AGAIN;
    int rc;
    switch (pg->form) {
    case FORM_MULTIPART_XML: rc = mwl_ds_encode_xml(response, pg->out); break;
    case FORM_MULTIPART_JSON:
        /* application/dicom+json is an array (F.2): each part one. */
        mwl_wbuf_put(pg->out, "[", 1);
        rc = mwl_ds_encode_json(response, NULL, pg->out, NULL);
        mwl_wbuf_put(pg->out, "]\n", 2);
        break;
    default:
        if (pg->emitted)
            mwl_wbuf_put(pg->out, ",", 1);
        rc = mwl_ds_encode_json(response, NULL, pg->out, NULL);
        break;
    }
    if (rc == MWL_OK)
        rc = pg->out->status;
    if (rc != MWL_OK)
        return rc;
    if (pg->form == FORM_MULTIPART_XML || pg->form == FORM_MULTIPART_JSON) {
        if (pg->emitted == pg->ends_cap) {
            size_t cap = pg->ends_cap ? pg->ends_cap * 2 : 64;
            size_t *ends = realloc(pg->ends, cap * sizeof *ends);
            if (!ends)
                return MWL_E_NOMEM;
            pg->ends = ends;
            pg->ends_cap = cap;
        }
        pg->ends[pg->emitted] = pg->out->len;
    }
    pg->emitted++;
    return pg->emitted >= pg->limit && !pg->count_rest ? MWL_AGAIN : MWL_OK;
}

/* Runs the identifier; the page's results are in pg->out. False with the
 * error answered. */
static bool run_search(const mwl_http_request *req, mwl_http_response *res, const search_query *q,
                       search_page *pg)
{
    char tagbuf[12];
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_find_status final;
    int rc = mwl_worklist_service_search(req->rest->wl, q->id, on_match, pg, &final, &d);
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "http search: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
        mwl_http_error(res, rc == MWL_E_LIMIT || rc == MWL_E_NOMEM ? 503 : 500, NULL, "search failed: %s",
                       mwl_status_str(rc));
        return false;
    }
    if (final.status != 0) {
        /* A900 / C000-CFFF: the identifier was refused, as a C-FIND's
         * would be -- the client's input, so 400 with what and where. */
        uint32_t tag = final.offending_element_count ? final.offending_elements[0] : 0;
        unsigned http = final.status == 0xA700 ? 503 : 400;
        mwl_http_error(res, http, attribute_name(tag, tagbuf, sizeof tagbuf), "%s (C-FIND status %04X)",
                       final.error_comment[0] ? final.error_comment : "query refused",
                       (unsigned) final.status);
        return false;
    }
    if (pg->out->status != MWL_OK) {
        mwl_http_error(res, 503, NULL, "out of memory for the response");
        return false;
    }
    return true;
}

/* GET /mwlitems and /mwlitems/count. */
static void search(const mwl_http_request *req, mwl_http_response *res, bool count_only)
{
    if (!req->rest) {
        mwl_http_error(res, 503, NULL, "no worklist service");
        return;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    search_query q;
    mwl_wbuf out;
    mwl_wbuf_init(&out, NULL);
    /* Room for a station's day (tens of items, ~1.6 KiB each) at once,
     * instead of doubling up to it. */
    if (!count_only)
        (void)mwl_wbuf_reserve(&out, 64 * 1024);
    if (!build_query(req, res, DIALECT_MWLITEMS, count_only, &arena, &q))
        goto done;
    if (!count_only)
        mwl_wbuf_put(&out, "[", 1);
    search_page pg = {&out, count_only ? FORM_COUNT : FORM_JSON, q.offset, q.limit, 0, 0, false, NULL, 0};
    if (!run_search(req, res, &q, &pg))
        goto done;
    res->body.len = 0;
    if (count_only) {
        char num[48];
        int n = snprintf(num, sizeof num, "{\"count\":%lu}\n", pg.seen);
        mwl_wbuf_put(&res->body, num, (size_t)n);
        res->content_type = "application/json";
    } else {
        mwl_wbuf_put(&out, "]\n", 2);
        /* The answer is `out` itself, moved rather than copied. */
        mwl_wbuf_clear(&res->body);
        res->body = out;
        mwl_wbuf_init(&out, NULL);
        res->content_type = "application/dicom+json";
    }
    if (res->body.status != MWL_OK) {
        mwl_wbuf_clear(&res->body);
        mwl_wbuf_init(&res->body, NULL);
        mwl_http_error(res, 503, NULL, "out of memory for the response");
        goto done;
    }
    res->status = 200;
done:
    mwl_wbuf_clear(&out);
    mwl_arena_clear(&arena);
}

void mwl_rest_search(const mwl_http_request *req, mwl_http_response *res)
{
    search(req, res, false);
}

void mwl_rest_count(const mwl_http_request *req, mwl_http_response *res)
{
    search(req, res, true);
}

/* ---- the standard search (PS3.18 ch. 14) ---------------------------------- */

/* The form one media range asks for; false when we offer nothing in it.
 * A single-part application/dicom+xml body holds one Native DICOM Model
 * document, i.e. one data set, so a search's results in XML go as
 * multipart/related parts (PS3.18 8.7.3: XML results are multipart) --
 * docs/http.md. */
static bool form_of(const char *type, size_t tlen, const char *param_type, size_t plen, search_form *form)
{
#define IS(lit) (tlen == sizeof lit - 1 && strncasecmp(type, lit, tlen) == 0)
#define PIS(lit) (plen == sizeof lit - 1 && strncasecmp(param_type, lit, plen) == 0)
    if (IS("application/dicom+json") || IS("application/json") || IS("application/*") || IS("*/*"))
        *form = FORM_JSON;
    else if (IS("application/dicom+xml"))
        *form = FORM_MULTIPART_XML;
    else if ((IS("multipart/related") || IS("multipart/*")) && (plen == 0 || PIS("application/dicom+xml")))
        *form = FORM_MULTIPART_XML;
    else if ((IS("multipart/related") || IS("multipart/*")) && PIS("application/dicom+json"))
        *form = FORM_MULTIPART_JSON;
    else
        return false;
    return true;
#undef IS
#undef PIS
}

/* An RFC 9110 qvalue ("0", "0.5", "1", "1.000": at most three decimals,
 * never above 1) in thousandths; -1 when s[0..len) is not one. */
static int parse_qvalue(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1') || (len > 1 && s[1] != '.') || len > 5)
        return -1;
    int q = (s[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < len; i++, scale /= 10) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q <= 1000 ? q : -1;
}

/* Content negotiation (RFC 9110 12.5.1): the acceptable form with the
 * highest q, the first listed among equals. `accept` NULL or blank: the
 * default, DICOM JSON. False: none acceptable (406). */
static bool negotiate(const char *accept, search_form *form)
{
    *form = FORM_JSON;
    if (!accept || !accept[strspn(accept, " \t")])
        return true;
    int best_q = -1;
    const char *p = accept;
    while (*p) {
        /* One media range: up to a comma outside quotes. */
        const char *end = p;
        bool quoted = false;
        while (*end && (quoted || *end != ',')) {
            if (*end == '"')
                quoted = !quoted;
            end++;
        }
        const char *t = p + strspn(p, " \t");
        size_t tlen = 0;
        while (t + tlen < end && t[tlen] != ';' && t[tlen] != ' ' && t[tlen] != '\t')
            tlen++;
        const char *ptype = "";
        size_t plen = 0;
        int qv = 1000;
        for (const char *s = t + tlen; s < end;) {
            s = memchr(s, ';', (size_t)(end - s));
            if (!s)
                break;
            s++;
            s += strspn(s, " \t");
            /* The parameter runs to the next ';': a '=' past it belongs
             * to the next parameter ("a;b;q=0" is a, b and q=0). */
            const char *pend = memchr(s, ';', (size_t)(end - s));
            if (!pend)
                pend = end;
            const char *eq = memchr(s, '=', (size_t)(pend - s));
            if (!eq) {
                s = pend;
                continue;
            }
            const char *v = eq + 1, *vend = pend;
            const char *vv = v;
            size_t vlen = (size_t)(vend - v);
            while (vlen && (vv[vlen - 1] == ' ' || vv[vlen - 1] == '\t'))
                vlen--;
            if (vlen >= 2 && vv[0] == '"' && vv[vlen - 1] == '"') {
                vv++;
                vlen -= 2;
            }
            size_t nlen = (size_t)(eq - s);
            while (nlen && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
                nlen--;
            if (nlen == 4 && strncasecmp(s, "type", 4) == 0) {
                ptype = vv;
                plen = vlen;
            } else if (nlen == 1 && (s[0] == 'q' || s[0] == 'Q')) {
                /* A qvalue that is not one (RFC 9110 12.4.2) is ignored
                 * rather than read as 0, which would refuse the type. */
                int parsed = parse_qvalue(vv, vlen);
                if (parsed >= 0)
                    qv = parsed;
            }
            s = vend;
        }
        search_form f;
        if (qv > 0 && qv > best_q && form_of(t, tlen, ptype, plen, &f)) {
            best_q = qv;
            *form = f;
        }
        p = *end ? end + 1 : end;
    }
    return best_q > 0;
}

/* The service's base URI for the Warning texts (8.3.4: "{service}"):
 * http:// and the Host the client used, if it is a plain host[:port]
 * (anything else could put text of the client's into a header). */
static void service_uri(const mwl_http_request *req, char *out, size_t cap)
{
    const char *host = req->host;
    bool plain = host && host[0] && strlen(host) < 200;
    for (const char *p = host; plain && *p; p++)
        plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr(".-:[]", *p) != NULL;
    snprintf(out, cap, "http://%s", plain ? host : "localhost");
}

static void add_warning(mwl_http_response *res, const char *service, const char *text)
{
    for (size_t i = 0; i < MWL_HTTP_WARNINGS_MAX; i++)
        if (!res->warnings[i][0]) {
            snprintf(res->warnings[i], sizeof res->warnings[i], "299 %s: %s", service, text);
            return;
        }
}

/* A boundary (RFC 2046 5.1.1) that occurs nowhere in the parts. */
static void pick_boundary(const mwl_wbuf *parts, char *out, size_t cap)
{
    for (unsigned n = 0;; n++) {
        snprintf(out, cap, "mwl-part-boundary-%u", n);
        size_t len = strlen(out);
        bool found = false;
        for (size_t i = 0; !found && parts->len >= len && i <= parts->len - len; i++)
            found = memcmp(parts->data + i, out, len) == 0;
        if (!found)
            return;
    }
}

void mwl_rest_std_search(const mwl_http_request *req, mwl_http_response *res)
{
    if (!req->rest) {
        mwl_http_error(res, 503, NULL, "no worklist service");
        return;
    }
    /* 8.3.3.1: the accept parameter is used instead of the header. */
    const char *accept = req->accept;
    for (size_t i = 0; i < req->arg_count; i++)
        if (strcmp(req->args[i].key, "accept") == 0)
            accept = req->args[i].value ? req->args[i].value : "";
    search_form form;
    if (!negotiate(accept, &form)) {
        mwl_http_error(res, 406, NULL,
                       "acceptable: application/dicom+json, application/dicom+xml, multipart/related; "
                       "type=\"application/dicom+xml\" or type=\"application/dicom+json\"");
        return;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    search_query q;
    mwl_wbuf out;
    mwl_wbuf_init(&out, NULL);
    (void)mwl_wbuf_reserve(&out, 64 * 1024);
    search_page pg = {&out, form, 0, 0, 0, 0, false, NULL, 0};
    if (!build_query(req, res, DIALECT_STANDARD, false, &arena, &q))
        goto done;
    pg.offset = q.offset;
    pg.limit = q.limit;
    /* Counting on past the page costs the rest of the scan; only needed
     * when the server's maximum, not the client, cut the list. */
    pg.count_rest = !q.limit_given;
    if (form == FORM_JSON)
        mwl_wbuf_put(&out, "[", 1);
    if (!run_search(req, res, &q, &pg))
        goto done;
    char service[256];
    service_uri(req, service, sizeof service);
    if (q.fuzzy)
        add_warning(
            res, service,
            "The fuzzymatching parameter is not supported. Only literal matching has been performed.");
    if (q.empty)
        add_warning(res, service,
                    "The emptyvaluematching parameter is not supported. Empty Value Matching has not been "
                    "performed.");
    if (q.multiple)
        add_warning(res, service,
                    "The multiplevaluematching parameter is not supported. Multiple Value Matching has not "
                    "been performed.");
    unsigned long past = pg.seen > q.offset ? pg.seen - q.offset : 0;
    if (pg.count_rest && past > pg.emitted) {
        char text[96];
        snprintf(text, sizeof text, "There are %lu additional results that can be requested",
                 past - pg.emitted);
        add_warning(res, service, text);
    }
    res->body.len = 0;
    if (pg.emitted == 0) {
        /* 14.4.3: no matches is 204 (/mwlitems answers 200 []). */
        res->status = 204;
        res->content_type = NULL;
        goto done;
    }
    if (form == FORM_JSON) {
        mwl_wbuf_put(&out, "]\n", 2);
        /* The answer is `out` itself, moved rather than copied: a copy
         * of a large answer into fresh memory cost a page fault per 4 KiB. */
        mwl_wbuf_clear(&res->body);
        res->body = out;
        mwl_wbuf_init(&out, NULL);
        res->content_type = "application/dicom+json";
    } else {
        const char *type = form == FORM_MULTIPART_XML ? "application/dicom+xml" : "application/dicom+json";
        char boundary[48];
        pick_boundary(&out, boundary, sizeof boundary);
        snprintf(res->content_type_buf, sizeof res->content_type_buf,
                 "multipart/related; type=\"%s\"; boundary=%s", type, boundary);
        res->content_type = res->content_type_buf;
        size_t from = 0;
        for (unsigned long i = 0; i < pg.emitted; i++) {
            char head[160];
            int n = snprintf(head, sizeof head, "--%s\r\nContent-Type: %s; charset=utf-8\r\n\r\n", boundary,
                             type);
            mwl_wbuf_put(&res->body, head, (size_t)n);
            mwl_wbuf_put(&res->body, out.data + from, pg.ends[i] - from);
            mwl_wbuf_put(&res->body, "\r\n", 2);
            from = pg.ends[i];
        }
        char tail[64];
        int n = snprintf(tail, sizeof tail, "--%s--\r\n", boundary);
        mwl_wbuf_put(&res->body, tail, (size_t)n);
    }
    if (res->body.status != MWL_OK) {
        mwl_wbuf_clear(&res->body);
        mwl_wbuf_init(&res->body, NULL);
        mwl_http_error(res, 503, NULL, "out of memory for the response");
        goto done;
    }
    res->status = 200;
done:
    free(pg.ends);
    mwl_wbuf_clear(&out);
    mwl_arena_clear(&arena);
}

/* ---- one SPS ----------------------------------------------------------------- */

/* One line in the server log and one audit record per write, answered
 * however. */
static void record_write(const mwl_http_request *req, const mwl_http_response *res, const char *result,
                         const char *patient_id, const char *study, const char *sps_id)
{
    const char *role = !req->auth ? "none" : req->role == MWL_HTTP_ROLE_WRITE ? "write" : "read";
    mwl_log(MWL_LOG_INFO, "http %s %.200s from %s: %u %s%s%.64s", req->method, req->path, req->peer,
            res->status, result, patient_id && patient_id[0] ? ", patient " : "",
            patient_id ? patient_id : "");
    mwl_audit_write rec = {req->method, req->path,  req->peer, role,  result,
                           res->status, patient_id, study,     sps_id};
    mwl_server_audit_write(req->srv, &rec);
    if (res->status >= 200 && res->status < 300 && req->rest)
        atomic_fetch_add(&req->rest->changes, 1);
}

uint64_t mwl_rest_changes(mwl_rest *rest)
{
    return atomic_load(&rest->changes);
}

/* The body as a worklist item: JSON decoded (text to UTF-8), then the
 * checks an addressable item needs. False with the 400/415 answered. */
static bool decode_body(const mwl_http_request *req, mwl_http_response *res, mwl_arena *arena, mwl_ds **out)
{
    char tagbuf[12];
    const char *ct = req->content_type ? req->content_type : "";
    size_t ct_len = strcspn(ct, ";");
    while (ct_len > 0 && ct[ct_len - 1] == ' ')
        ct_len--;
    if (!((ct_len == 22 && strncasecmp(ct, "application/dicom+json", 22) == 0) ||
          (ct_len == 16 && strncasecmp(ct, "application/json", 16) == 0))) {
        mwl_http_error(res, 415, NULL, "the body must be application/dicom+json or application/json");
        return false;
    }
    mwl_json_decode_options opt;
    mwl_json_decode_options_init(&opt);
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_ds *item = NULL;
    int rc = mwl_ds_decode_json((const char *)req->body, req->body_len, arena, &opt, &item, &d);
    if (rc == MWL_E_NOMEM) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return false;
    }
    if (rc != MWL_OK) {
        if (d.offset && !d.tag)
            mwl_http_error(res, 400, NULL, "body: %s (byte %zu)", d.msg[0] ? d.msg : mwl_status_str(rc),
                           d.offset);
        else
            mwl_http_error(res, 400, attribute_name(d.tag, tagbuf, sizeof tagbuf), "body: %s",
                           d.msg[0] ? d.msg : mwl_status_str(rc));
        return false;
    }
    const mwl_elem *seq = mwl_ds_find(item, sps_tag);
    if (seq && seq->vr == MWL_VR_SQ && seq->item_count > 1) {
        mwl_http_error(res, 400, "ScheduledProcedureStepSequence",
                       "one Scheduled Procedure Step per item (an MWL-RS item is one step)");
        return false;
    }
    *out = item;
    return true;
}

static bool check_item(mwl_http_response *res, const mwl_ds *item)
{
    char tagbuf[12];
    mwl_item_problem problem;
    memset(&problem, 0, sizeof problem);
    int rc = mwl_worklist_check_item(item, MWL_CHECK_IDENTITY, &problem);
    if (rc == MWL_E_NOMEM) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return false;
    }
    if (rc != MWL_OK) {
        mwl_http_error(res, 400, attribute_name(problem.tag, tagbuf, sizeof tagbuf), "%s (%s)", problem.msg,
                       mwl_item_problem_name(problem.code));
        return false;
    }
    return true;
}

/* The write connection, opened at the first write. Caller holds
 * write_mu. synchronous=full: the answer goes out after the commit, and a
 * client that got 201 must find the item after a power loss, as an HL7
 * sender that got AA does. */
static int writer(mwl_rest *r, mwl_diag *d)
{
    if (r->writer)
        return MWL_OK;
    mwl_store_options so = {false, NULL, "sqlite.synchronous=full"};
    return mwl_store_open(r->db, &so, &r->writer, d);
}

/* The status a store error gets: the client's when it is about the input. */
static void store_error(mwl_http_response *res, int rc, const mwl_diag *d)
{
    char tagbuf[12];
    const char *msg = d->msg[0] ? d->msg : mwl_status_str(rc);
    if (rc == MWL_E_NOTFOUND)
        mwl_http_error(res, 404, NULL, "no such scheduled procedure step");
    else if (rc == MWL_E_INVALID || rc == MWL_E_MALFORMED || rc == MWL_E_CHARSET || rc == MWL_E_UNSUPPORTED ||
             rc == MWL_E_LIMIT)
        mwl_http_error(res, 400, attribute_name(d->tag, tagbuf, sizeof tagbuf), "%s", msg);
    else {
        mwl_log(MWL_LOG_ERROR, "http: worklist store: %s", msg);
        mwl_http_error(res, rc == MWL_E_NOMEM ? 503 : 500, NULL, "worklist store: %s", mwl_status_str(rc));
    }
}

/* Looks the step up on the writer inside the open batch: MWL_OK (*found
 * says whether it exists), or 409/5xx answered (false). */
static bool lookup_for_write(mwl_rest *r, mwl_http_response *res, const mwl_sps_ref *ref, mwl_arena *arena,
                             mwl_ds **item, bool *found)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    *found = false;
    int rc = mwl_store_get(r->writer, ref, arena, item, NULL, &d);
    if (rc == MWL_OK) {
        *found = true;
        return true;
    }
    if (rc == MWL_E_NOTFOUND)
        return true;
    if (rc == MWL_E_INVALID)
        /* The parts are all there (checked before), so several rows: the
         * same step stored into several per-AE worklists. */
        mwl_http_error(res, 409, NULL, "the natural key names several stored steps: %s", d.msg);
    else
        store_error(res, rc, &d);
    return false;
}

/* Location: /mwlitems/{study}/{sps}, each segment percent-encoded (RFC
 * 3986: bytes outside the unreserved set and the sub-delimiters, e.g. an
 * SPS ID in UTF-8), so the header is the address a client can use as is. */
static void location_of(char *out, size_t cap, const char *study, const char *sps_id)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char safe[] = "-._~!$&'()*+,;=:@";
    size_t n = (size_t)snprintf(out, cap, "/mwlitems");
    const char *seg[2] = {study, sps_id};
    for (int k = 0; k < 2 && n + 1 < cap; k++) {
        out[n++] = '/';
        for (const unsigned char *p = (const unsigned char *)seg[k]; *p && n + 4 < cap; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                strchr(safe, *p)) {
                out[n++] = (char)*p;
            } else {
                out[n++] = '%';
                out[n++] = hex[*p >> 4];
                out[n++] = hex[*p & 15];
            }
        }
    }
    out[n < cap ? n : cap - 1] = 0;
}

/* Stores `item` (checked) as the step study/sps_id: created or replaced. */
static void store_item(const mwl_http_request *req, mwl_http_response *res, mwl_ds *item, const char *study,
                       const char *sps_id)
{
    mwl_rest *r = req->rest;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    const char *patient = text_of(item, MWL_TAG_PatientID, &arena);
    const char *result = "refused";
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_sps_ref ref = {study, NULL, sps_id, NULL, NULL};
    /* The two are the item's address (/mwlitems/{study}/{sps}): a value
     * with a character that ends or escapes a path segment could be
     * stored and then never be read, changed or deleted here again. UIDs
     * never hold them; an SPS ID (SH) could. */
    const char *bad = strpbrk(sps_id, "/?#% ")  ? "ScheduledProcedureStepID"
                      : strpbrk(study, "/?#% ") ? "StudyInstanceUID"
                                                : NULL;
    if (bad) {
        mwl_http_error(res, 400, bad,
                       "%s holds a character ('/', '?', '#', '%%' or a space) that cannot be part "
                       "of the item's address /mwlitems/{StudyInstanceUID}/{SPSID}",
                       bad);
        record_write(req, res, "refused", patient, study, sps_id);
        mwl_arena_clear(&arena);
        return;
    }
    pthread_mutex_lock(&r->write_mu);
    int rc = writer(r, &d);
    if (rc == MWL_OK)
        rc = mwl_store_begin(r->writer, &d);
    if (rc != MWL_OK) {
        store_error(res, rc, &d);
        goto unlock;
    }
    mwl_ds *old = NULL;
    bool found = false;
    if (!lookup_for_write(r, res, &ref, &arena, &old, &found)) {
        (void)mwl_store_rollback(r->writer);
        goto unlock;
    }
    mwl_store_put_stats stats = {0, 0};
    rc = mwl_store_put_item(r->writer, item, "http", NULL, &stats, &d);
    if (rc == MWL_OK)
        rc = mwl_store_commit(r->writer, &d);
    if (rc != MWL_OK) {
        (void)mwl_store_rollback(r->writer);
        store_error(res, rc, &d);
        goto unlock;
    }
    /* The stored form (text in UTF-8, the character set as stored) is the
     * answer, read back as a GET would read it. */
    mwl_ds *stored = NULL;
    rc = mwl_store_get(r->writer, &ref, &arena, &stored, NULL, &d);
    if (rc != MWL_OK) {
        store_error(res, rc, &d);
        goto unlock;
    }
    result = found ? "replaced" : "created";
    respond_dataset(res, found ? 200 : 201, stored);
    if (!found)
        location_of(res->location, sizeof res->location, study, sps_id);
unlock:
    pthread_mutex_unlock(&r->write_mu);
    record_write(req, res, res->status < 300 ? result : "refused", patient, study, sps_id);
    mwl_arena_clear(&arena);
}

void mwl_rest_create(const mwl_http_request *req, mwl_http_response *res)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *item = NULL;
    bool recorded = false; /* store_item records its own outcome */
    if (!req->rest) {
        mwl_http_error(res, 503, NULL, "no worklist service");
    } else if (decode_body(req, res, &arena, &item) && check_item(res, item)) {
        const char *study = text_of(item, MWL_TAG_StudyInstanceUID, &arena);
        const char *sps_id = text_of(first_sps(item), MWL_TAG_ScheduledProcedureStepID, &arena);
        if (!study[0]) {
            mwl_http_error(res, 400, "StudyInstanceUID",
                           "Study Instance UID is needed: it is half of the item's address");
        } else {
            store_item(req, res, item, study, sps_id);
            recorded = true;
        }
    }
    if (!recorded)
        record_write(req, res, "refused", item ? text_of(item, MWL_TAG_PatientID, &arena) : "", NULL, NULL);
    mwl_arena_clear(&arena);
}

/* PUT's body may leave out the UIDs the path gives; when it has them they
 * must agree (a PUT never moves a step to another address). */
static bool agree_with_path(mwl_http_response *res, mwl_ds *item, const char *study, const char *sps_id,
                            mwl_arena *arena)
{
    const char *have = text_of(item, MWL_TAG_StudyInstanceUID, arena);
    if (have[0] && strcmp(have, study) != 0) {
        mwl_http_error(res, 400, "StudyInstanceUID", "the body's Study Instance UID %.64s is not the path's",
                       have);
        return false;
    }
    mwl_ds *sps = (mwl_ds *)(uintptr_t)first_sps(item);
    if (!sps) {
        mwl_http_error(res, 400, "ScheduledProcedureStepSequence",
                       "missing Scheduled Procedure Step Sequence (0040,0100)");
        return false;
    }
    const char *have_sps = text_of(sps, MWL_TAG_ScheduledProcedureStepID, arena);
    if (have_sps[0] && strcmp(have_sps, sps_id) != 0) {
        mwl_http_error(res, 400, "ScheduledProcedureStepID", "the body's SPS ID %.16s is not the path's",
                       have_sps);
        return false;
    }
    if ((!have[0] && mwl_ds_set_str(item, MWL_TAG_StudyInstanceUID, MWL_VR_UI, study) != MWL_OK) ||
        (!have_sps[0] &&
         mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepID, MWL_VR_SH, sps_id) != MWL_OK)) {
        mwl_http_error(res, 503, NULL, "out of memory");
        return false;
    }
    return true;
}

void mwl_rest_put(const mwl_http_request *req, mwl_http_response *res)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *item = NULL;
    const char *study = req->params[0], *sps_id = req->params[1];
    bool recorded = false;
    if (!req->rest) {
        mwl_http_error(res, 503, NULL, "no worklist service");
    } else if (decode_body(req, res, &arena, &item) && agree_with_path(res, item, study, sps_id, &arena) &&
               check_item(res, item)) {
        store_item(req, res, item, study, sps_id);
        recorded = true;
    }
    if (!recorded)
        record_write(req, res, "refused", item ? text_of(item, MWL_TAG_PatientID, &arena) : "", study,
                     sps_id);
    mwl_arena_clear(&arena);
}

void mwl_rest_get(const mwl_http_request *req, mwl_http_response *res)
{
    if (!req->rest) {
        mwl_http_error(res, 503, NULL, "no worklist service");
        return;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_sps_ref ref = {req->params[0], NULL, req->params[1], NULL, NULL};
    mwl_ds *item = NULL;
    mwl_diag d;
    mwl_diag_clear(&d);
    int rc = mwl_worklist_service_get(req->rest->wl, &ref, &arena, &item, &d);
    if (rc == MWL_OK)
        respond_dataset(res, 200, item);
    else if (rc == MWL_E_INVALID)
        mwl_http_error(res, 409, NULL, "the natural key names several stored steps: %s", d.msg);
    else
        store_error(res, rc, &d);
    mwl_arena_clear(&arena);
}

/* The SPS Status values PS3.3 C.4.10 defines (Scheduled Procedure Step
 * Status, 0040,0020). */
static const char *const statuses[] = {"SCHEDULED", "ARRIVED",      "READY",    "STARTED",
                                       "COMPLETED", "DISCONTINUED", "CANCELED", NULL};

/* DELETE and the status change: a look-up (404, 409) and the change in
 * one batch; `status` NULL = delete. */
static void change(const mwl_http_request *req, mwl_http_response *res, const char *status)
{
    mwl_rest *r = req->rest;
    const char *study = req->params[0], *sps_id = req->params[1];
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    const char *patient = "";
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_sps_ref ref = {study, NULL, sps_id, NULL, NULL};
    if (!r) {
        mwl_http_error(res, 503, NULL, "no worklist service");
        goto out;
    }
    pthread_mutex_lock(&r->write_mu);
    int rc = writer(r, &d);
    if (rc == MWL_OK)
        rc = mwl_store_begin(r->writer, &d);
    if (rc != MWL_OK) {
        store_error(res, rc, &d);
        goto unlock;
    }
    mwl_ds *item = NULL;
    bool found = false;
    if (!lookup_for_write(r, res, &ref, &arena, &item, &found)) {
        (void)mwl_store_rollback(r->writer);
        goto unlock;
    }
    if (!found) {
        (void)mwl_store_rollback(r->writer);
        mwl_http_error(res, 404, NULL, "no such scheduled procedure step");
        goto unlock;
    }
    patient = text_of(item, MWL_TAG_PatientID, &arena);
    if (status) {
        size_t updated = 0;
        rc = mwl_store_set_status(r->writer, &ref, status, &updated, &d);
    } else {
        mwl_filter f;
        mwl_filter_init(&f);
        f.study_uid = (mwl_filter_cond){MWL_FILTER_EXACT, study};
        f.sps_id = (mwl_filter_cond){MWL_FILTER_EXACT, sps_id};
        size_t removed = 0;
        rc = mwl_store_remove(r->writer, &f, &removed, &d);
    }
    if (rc == MWL_OK)
        rc = mwl_store_commit(r->writer, &d);
    if (rc != MWL_OK) {
        (void)mwl_store_rollback(r->writer);
        store_error(res, rc, &d);
        goto unlock;
    }
    if (!status) {
        res->status = 204;
        res->content_type = NULL;
        res->body.len = 0;
        goto unlock;
    }
    rc = mwl_store_get(r->writer, &ref, &arena, &item, NULL, &d);
    if (rc == MWL_OK)
        respond_dataset(res, 200, item);
    else
        store_error(res, rc, &d);
unlock:
    pthread_mutex_unlock(&r->write_mu);
out:;
    char result[48];
    if (res->status >= 300)
        snprintf(result, sizeof result, "refused");
    else if (status)
        snprintf(result, sizeof result, "status %s", status);
    else
        snprintf(result, sizeof result, "deleted");
    record_write(req, res, result, patient, study, sps_id);
    mwl_arena_clear(&arena);
}

void mwl_rest_delete(const mwl_http_request *req, mwl_http_response *res)
{
    change(req, res, NULL);
}

void mwl_rest_status(const mwl_http_request *req, mwl_http_response *res)
{
    const char *word = req->params[2];
    for (size_t i = 0; statuses[i]; i++)
        if (strcmp(word, statuses[i]) == 0) {
            change(req, res, statuses[i]);
            return;
        }
    mwl_http_error(
        res, 400, "ScheduledProcedureStepStatus",
        "'%.32s' is not an SPS status (SCHEDULED, ARRIVED, READY, STARTED, COMPLETED, DISCONTINUED, "
        "CANCELED)",
        word);
    record_write(req, res, "refused", "", req->params[0], req->params[1]);
}
