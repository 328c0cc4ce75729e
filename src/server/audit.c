/* The audit trail (see audit.h). */
#include "server/audit.h"

#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "base/log.h"
#include "base/utf8.h"
#include "net/net.h"
#include "server/server_int.h"

enum {
    /* Patient IDs one C-FIND record lists at most (a worklist query for a
     * station's day returns tens); beyond, "patient_ids_truncated". */
    AUDIT_MAX_IDS = 1000,
    AUDIT_MAX_ID_BYTES = 64 * 1024
};

/* A JSON string that is also safe to read in a terminal (tail -f, less):
 * besides what JSON requires, DEL, C1 controls, line/paragraph separators
 * and bidirectional controls are \uNNNN (mwl_log_control_point), so a
 * value from the wire can neither forge a record nor reorder one on
 * screen. A byte that is not UTF-8 (an AE title in Latin-1) becomes the
 * code point of the same number, \u00NN: valid JSON, and the byte is
 * still there to read. */
static void put_json_text(mwl_wbuf *w, const char *text, size_t len)
{
    const uint8_t *s = (const uint8_t *)text;
    char esc[8];
    mwl_wbuf_put(w, "\"", 1);
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = mwl_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            cp = s[i];
            n = 1;
        } else if (n > 1 && !mwl_log_control_point(cp)) {
            mwl_wbuf_put(w, s + i, n);
            i += n;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            mwl_wbuf_put(w, esc, 2);
        } else if (cp < 0x20 || cp >= 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
            mwl_wbuf_put(w, esc, 6);
        } else {
            mwl_wbuf_put(w, s + i, 1);
        }
        i += n;
    }
    mwl_wbuf_put(w, "\"", 1);
}

static void put_str(mwl_wbuf *w, const char *key, const char *value)
{
    mwl_wbuf_put(w, ",\"", 2);
    mwl_wbuf_put(w, key, strlen(key));
    mwl_wbuf_put(w, "\":", 2);
    put_json_text(w, value ? value : "", value ? strlen(value) : 0);
}

static void put_uint(mwl_wbuf *w, const char *key, uint64_t v)
{
    char num[48];
    int n = snprintf(num, sizeof num, ",\"%s\":%llu", key, (unsigned long long)v);
    mwl_wbuf_put(w, num, n > 0 ? (size_t)n : 0);
}

/* {"time":...,"event":...,"peer":...,"calling":...,"called":...,
 * "transport":...,"tls_subject":... */
static mwl_wbuf *begin_record(mwl_server *srv, const char *event, const audit_peer *who)
{
    if (!srv->audit)
        return NULL;
    mwl_wbuf *w = &srv->audit_buf;
    if (w->status != MWL_OK)
        mwl_wbuf_clear(w);
    w->len = 0;
    char when[MWL_UTC_TIMESTAMP_SIZE];
    mwl_utc_timestamp(when);
    mwl_wbuf_put(w, "{\"time\":\"", 9);
    mwl_wbuf_put(w, when, strlen(when));
    mwl_wbuf_put(w, "\"", 1);
    put_str(w, "event", event);
    put_str(w, "peer", who->peer);
    put_str(w, "calling_ae", who->calling);
    put_str(w, "called_ae", who->called);
    put_str(w, "transport", who->transport);
    put_str(w, "tls_subject", who->tls_subject);
    return w;
}

static void end_record(mwl_server *srv, mwl_wbuf *w)
{
    mwl_wbuf_put(w, "}\n", 2);
    if (w->status != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "audit: out of memory for a record");
        return;
    }
    if (mwl_file_log_write(srv->audit, w->data, w->len) != MWL_OK)
        mwl_log(MWL_LOG_ERROR, "audit: cannot write to %s", mwl_file_log_path(srv->audit));
    if (w->cap > 256u * 1024u)
        mwl_wbuf_clear(w); /* give back what a big record took */
}

void audit_association(mwl_server *srv, const audit_peer *who, bool accepted, const char *reason)
{
    mwl_wbuf *w = begin_record(srv, "association", who);
    if (!w)
        return;
    put_str(w, "result", accepted ? "accepted" : "refused");
    if (!accepted)
        put_str(w, "reason", reason);
    end_record(srv, w);
}

void audit_connection(mwl_server *srv, const audit_peer *who, const char *why)
{
    mwl_wbuf *w = begin_record(srv, "connection", who);
    if (!w)
        return;
    put_str(w, "result", "closed before an association");
    put_str(w, "reason", why);
    end_record(srv, w);
}

void audit_ids_reset(audit_ids *ids)
{
    ids->text.len = 0;
    ids->count = 0;
    ids->truncated = false;
    if (ids->text.status != MWL_OK || ids->text.cap > 4u * AUDIT_MAX_ID_BYTES)
        mwl_wbuf_clear(&ids->text);
}

void audit_ids_add(audit_ids *ids, const char *utf8)
{
    size_t n = strlen(utf8);
    /* Linear: a C-FIND's result usually holds a few patients; the bound
     * keeps the worst case small. */
    for (size_t off = 0; off < ids->text.len;) {
        const char *have = (const char *)ids->text.data + off;
        size_t len = strlen(have);
        if (len == n && memcmp(have, utf8, n) == 0)
            return;
        off += len + 1;
    }
    if (ids->count >= AUDIT_MAX_IDS || ids->text.len + n + 1 > AUDIT_MAX_ID_BYTES) {
        ids->truncated = true;
        return;
    }
    mwl_wbuf_put(&ids->text, utf8, n + 1);
    if (ids->text.status == MWL_OK)
        ids->count++;
    else
        ids->truncated = true;
}

void audit_find(mwl_server *srv, const audit_peer *who, uint16_t message_id, const char *query,
                const char *result, uint16_t status, uint64_t matches, const audit_ids *ids,
                uint64_t duration_ms)
{
    mwl_wbuf *w = begin_record(srv, "c-find", who);
    if (!w)
        return;
    put_uint(w, "message_id", message_id);
    put_str(w, "query", query);
    put_str(w, "result", result);
    char st[8];
    snprintf(st, sizeof st, "%04X", (unsigned)status);
    put_str(w, "status", st);
    put_uint(w, "matches", matches);
    mwl_wbuf_put(w, ",\"patient_ids\":[", 16);
    size_t listed = 0;
    for (size_t off = 0; ids && ids->text.status == MWL_OK && off < ids->text.len; listed++) {
        const char *id = (const char *)ids->text.data + off;
        size_t len = strlen(id);
        if (listed)
            mwl_wbuf_put(w, ",", 1);
        put_json_text(w, id, len);
        off += len + 1;
    }
    mwl_wbuf_put(w, "]", 1);
    if (ids && ids->truncated)
        mwl_wbuf_put(w, ",\"patient_ids_truncated\":true", 28);
    put_uint(w, "duration_ms", duration_ms);
    end_record(srv, w);
}

void mwl_server_audit_write(mwl_server *srv, const mwl_audit_write *rec)
{
    if (!srv)
        return;
    /* The record is built outside the lock, in a buffer of its own: the
     * loop thread's audit_buf is not this thread's. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, srv->mem);
    char when[MWL_UTC_TIMESTAMP_SIZE];
    mwl_utc_timestamp(when);
    mwl_wbuf_put(&w, "{\"time\":\"", 9);
    mwl_wbuf_put(&w, when, strlen(when));
    mwl_wbuf_put(&w, "\"", 1);
    put_str(&w, "event", "http-write");
    put_str(&w, "method", rec->method);
    put_str(&w, "path", rec->path);
    put_str(&w, "peer", rec->peer);
    put_str(&w, "token_role", rec->token_role);
    put_str(&w, "result", rec->result);
    put_uint(&w, "status", rec->status);
    put_str(&w, "patient_id", rec->patient_id);
    put_str(&w, "study_uid", rec->study_uid);
    put_str(&w, "sps_id", rec->sps_id);
    mwl_wbuf_put(&w, "}\n", 2);
    if (w.status != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "audit: out of memory for a record");
    } else {
        pthread_mutex_lock(&srv->audit_mu);
        if (srv->audit && mwl_file_log_write(srv->audit, w.data, w.len) != MWL_OK)
            mwl_log(MWL_LOG_ERROR, "audit: cannot write to %s", mwl_file_log_path(srv->audit));
        pthread_mutex_unlock(&srv->audit_mu);
    }
    mwl_wbuf_clear(&w);
}
