/* The HTTP listener: accepted on the server's loop, served by libmicrohttpd
 * (http.h).
 *
 * Why libmicrohttpd gets the accepted sockets (MHD_USE_NO_LISTEN_SOCKET and
 * MHD_add_connection) and runs its own polling thread:
 *   - The listening socket stays the server's: bind, port 0 and the port
 *     file, the allow rules' addresses, and the shutdown (no new
 *     connections once draining) work as for every other listener, and the
 *     loop and its fd budget are not touched by HTTP connections after the
 *     accept.
 *   - A request never runs on the loop thread, which must never block
 *     (docs/architecture.md): the REST API to come reads and writes the
 *     store. libmicrohttpd's "external select" mode would put its fds in
 *     our loop instead, but its set changes with every request and its
 *     callbacks would then run on the loop thread.
 * The cost is one thread, bounded by http-max-connections connections. The
 * socket leaves its mwl_conn with mwl_conn_release_fd, so the loop's
 * listener takes plain TCP only; HTTPS (http-tls-cert) is libmicrohttpd's
 * own TLS (GnuTLS), which does the handshake on the handed-over socket in
 * the connection's thread, so a slow or silent TLS peer never holds up the
 * loop either.
 *
 * Threads: on_accept, on_stop, on_active and reconfigure run on the loop
 * thread; the request callbacks on libmicrohttpd's. They share the tokens
 * (under a mutex), the counters (under the same mutex) and atomics. */
#include "http/http.h"
#include "http/http_int.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/file.h"
#include "base/log.h"
#include "http/rest.h"
#include "http/https_cert.h"
#include "http/router.h"
#include "http/web.h"
#include "net/net.h"

/* ---- configuration ----------------------------------------------------------- */

#define FIELD(f) offsetof(mwl_http_config, f)

static const mwl_config_key http_keys[] = {
    {"http-port", MWL_CONFIG_STRING, "", 0, 5, FIELD(port),
     "also serve HTTP (GET /healthz, /metrics; docs/http.md) on this port (0 = the kernel picks; empty = no "
     "HTTP listener)",
     NULL},
    {"http-bind", MWL_CONFIG_STRING, "127.0.0.1", 1, MWL_NET_HOST_MAX - 1, FIELD(bind),
     "address for the HTTP listener; * = all addresses; anything but loopback needs http-tokens-file", NULL},
    {"http-port-file", MWL_CONFIG_STRING, "", 0, MWL_HTTP_PATH_MAX - 1, FIELD(port_file),
     "write the HTTP listener's port to this file once listening", NULL},
    {"http-tokens-file", MWL_CONFIG_STRING, "", 0, MWL_HTTP_PATH_MAX - 1, FIELD(tokens_file),
     "bearer tokens, one 'TOKEN ROLE' per line (ROLE read or write); with it every request but /healthz "
     "needs one",
     NULL},
    {"http-tls-cert", MWL_CONFIG_STRING, "", 0, MWL_HTTP_PATH_MAX - 1, FIELD(tls_cert),
     "serve HTTPS (TLS 1.2/1.3, AEAD suites) with this PEM certificate chain; needs http-tls-key; read "
     "again on SIGHUP (a renewed certificate)",
     NULL},
    {"http-tls-key", MWL_CONFIG_STRING, "", 0, MWL_HTTP_PATH_MAX - 1, FIELD(tls_key),
     "the PEM private key (unencrypted) of http-tls-cert; read again on SIGHUP", NULL},
    {"http-max-connections", MWL_CONFIG_UINT, "32", 1, 1000, FIELD(max_connections),
     "HTTP connections at once; more are refused by the HTTP library", NULL},
    {"http-max-body", MWL_CONFIG_UINT, "1048576", 1024, 268435456, FIELD(max_body),
     "largest request body in bytes (a POSTed or PUT worklist item); larger is answered 413", NULL},
};

static const mwl_config_table http_table = {"http", http_keys, sizeof http_keys / sizeof http_keys[0],
                                            sizeof(mwl_http_config)};

const mwl_config_table *mwl_http_config_table(void)
{
    return &http_table;
}

void mwl_http_config_init(mwl_http_config *cfg)
{
    mwl_config_init(&http_table, cfg);
}

bool mwl_http_enabled(const mwl_http_config *cfg)
{
    return cfg->port[0] != 0;
}

/* Loopback only, decided without resolving names: a name other than
 * localhost could resolve to anything. */
static bool is_loopback(const char *bind)
{
    if (strcmp(bind, "localhost") == 0)
        return true;
    mwl_net_addr a;
    if (mwl_net_addr_parse(bind, strlen(bind), &a) != MWL_OK)
        return false;
    if (a.family == 4)
        return a.bytes[0] == 127;
    static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(a.bytes, v6_loopback, 16) == 0;
}

int mwl_http_config_check(const mwl_http_config *cfg, mwl_diag *diag)
{
    const struct {
        const char *text;
        size_t size;
        const char *key;
    } strings[] = {{cfg->port, sizeof cfg->port, "http-port"},
                   {cfg->bind, sizeof cfg->bind, "http-bind"},
                   {cfg->port_file, sizeof cfg->port_file, "http-port-file"},
                   {cfg->tokens_file, sizeof cfg->tokens_file, "http-tokens-file"},
                   {cfg->tls_cert, sizeof cfg->tls_cert, "http-tls-cert"},
                   {cfg->tls_key, sizeof cfg->tls_key, "http-tls-key"}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if (!memchr(strings[i].text, '\0', strings[i].size)) {
            mwl_diag_set(diag, 0, 0, "%s: too long", strings[i].key);
            return MWL_E_INVALID;
        }
    if (cfg->max_connections < 1 || cfg->max_connections > 1000) {
        mwl_diag_set(diag, 0, 0, "http-max-connections: out of range");
        return MWL_E_INVALID;
    }
    if (cfg->max_body < 1024 || cfg->max_body > 268435456) {
        mwl_diag_set(diag, 0, 0, "http-max-body: out of range");
        return MWL_E_INVALID;
    }
    if (cfg->port[0]) {
        uint16_t port;
        mwl_diag d;
        if (mwl_net_parse_port(cfg->port, &port, &d) != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "http-port: %s", d.msg);
            return MWL_E_INVALID;
        }
    }
    if (!cfg->port[0] && cfg->port_file[0]) {
        mwl_diag_set(diag, 0, 0, "http-port-file: needs http-port");
        return MWL_E_INVALID;
    }
    if (!cfg->bind[0]) {
        mwl_diag_set(diag, 0, 0, "http-bind: empty (use * for all addresses)");
        return MWL_E_INVALID;
    }
    /* One without the other is a mistake, not a wish for plain HTTP: the
     * operator meant HTTPS, so do not fall back silently. */
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        mwl_diag_set(diag, 0, 0, "%s: needs %s as well", cfg->tls_cert[0] ? "http-tls-cert" : "http-tls-key",
                     cfg->tls_cert[0] ? "http-tls-key" : "http-tls-cert");
        return MWL_E_INVALID;
    }
    /* Without tokens anyone who reaches the port may read it: only this
     * machine may then (TLS alone authenticates nobody). */
    if (cfg->port[0] && !cfg->tokens_file[0] && !is_loopback(cfg->bind)) {
        mwl_diag_set(diag, 0, 0,
                     "http-bind: '%s' is not a loopback address; serving HTTP beyond this machine needs "
                     "http-tokens-file",
                     cfg->bind);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

/* ---- tokens ------------------------------------------------------------------ */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int mwl_http_tokens_parse(const char *text, size_t len, mwl_http_tokens *out, mwl_diag *diag)
{
    memset(out, 0, sizeof *out);
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        line_no++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        size_t i = 0;
        while (i < n && is_blank(line[i]))
            i++;
        if (i == n || line[i] == '#')
            continue;
        size_t tok = i;
        while (i < n && !is_blank(line[i]))
            i++;
        size_t tok_len = i - tok;
        while (i < n && is_blank(line[i]))
            i++;
        size_t role = i;
        while (i < n && !is_blank(line[i]))
            i++;
        size_t role_len = i - role;
        while (i < n && is_blank(line[i]))
            i++;
        /* The message names the line, never the token: logs are not for
         * secrets. */
        if (role_len == 0 || i != n) {
            mwl_diag_set(diag, 0, 0, "line %zu: expected 'TOKEN ROLE'", line_no);
            return MWL_E_INVALID;
        }
        mwl_http_role r = MWL_HTTP_ROLE_NONE;
        if (role_len == 4 && memcmp(line + role, "read", 4) == 0)
            r = MWL_HTTP_ROLE_READ;
        else if (role_len == 5 && memcmp(line + role, "write", 5) == 0)
            r = MWL_HTTP_ROLE_WRITE;
        if (r == MWL_HTTP_ROLE_NONE) {
            mwl_diag_set(diag, 0, 0, "line %zu: the role is read or write", line_no);
            return MWL_E_INVALID;
        }
        if (tok_len < MWL_HTTP_TOKEN_MIN || tok_len > MWL_HTTP_TOKEN_MAX) {
            mwl_diag_set(diag, 0, 0, "line %zu: a token has %d to %d characters", line_no, MWL_HTTP_TOKEN_MIN,
                         MWL_HTTP_TOKEN_MAX);
            return MWL_E_INVALID;
        }
        for (size_t k = tok; k < tok + tok_len; k++)
            if ((unsigned char)line[k] < 0x21 || (unsigned char)line[k] > 0x7e) {
                mwl_diag_set(diag, 0, 0, "line %zu: a token is printable ASCII", line_no);
                return MWL_E_INVALID;
            }
        for (size_t k = 0; k < out->count; k++)
            if (out->item[k].len == tok_len && memcmp(out->item[k].token, line + tok, tok_len) == 0) {
                mwl_diag_set(diag, 0, 0, "line %zu: the token of an earlier line again", line_no);
                return MWL_E_INVALID;
            }
        if (out->count == MWL_HTTP_TOKENS_MAX) {
            mwl_diag_set(diag, 0, 0, "line %zu: more than %d tokens", line_no, MWL_HTTP_TOKENS_MAX);
            return MWL_E_INVALID;
        }
        memcpy(out->item[out->count].token, line + tok, tok_len);
        out->item[out->count].token[tok_len] = 0;
        out->item[out->count].len = tok_len;
        out->item[out->count].role = r;
        out->count++;
    }
    return MWL_OK;
}

/* Equality in time that depends on `want`'s length only: every byte of the
 * stored token is looked at whatever `given` holds, and differences are
 * OR-ed together rather than ending the loop. (OpenSSL's CRYPTO_memcmp
 * would do, but OpenSSL stays in net/tls.c.) */
static bool token_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
    volatile unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)want[i]);
    }
    return diff == 0;
}

mwl_http_role mwl_http_tokens_check(const mwl_http_tokens *tokens, const char *authorization)
{
    if (!authorization)
        return MWL_HTTP_ROLE_NONE;
    /* RFC 6750 2.1: "Bearer" (the scheme is case-insensitive, RFC 9110
     * 11.1), one or more spaces, the token. */
    static const char scheme[] = "bearer";
    for (size_t i = 0; i < 6; i++) {
        char c = authorization[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return MWL_HTTP_ROLE_NONE;
    }
    const char *t = authorization + 6;
    if (*t != ' ')
        return MWL_HTTP_ROLE_NONE;
    while (*t == ' ')
        t++;
    size_t len = strnlen(t, MWL_HTTP_TOKEN_MAX + 1);
    while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t'))
        len--;
    if (len == 0 || len > MWL_HTTP_TOKEN_MAX)
        return MWL_HTTP_ROLE_NONE;
    /* Every token is compared, no early exit. */
    mwl_http_role role = MWL_HTTP_ROLE_NONE;
    for (size_t i = 0; i < tokens->count; i++)
        if (token_equal(t, len, tokens->item[i].token, tokens->item[i].len))
            role = tokens->item[i].role;
    return role;
}

static int load_tokens(const char *path, mwl_http_tokens *out, mwl_diag *diag)
{
    uint8_t *text = NULL;
    size_t len = 0;
    mwl_diag d;
    int rc = mwl_file_read(path, NULL, 1024 * 1024, &text, &len, &d);
    if (rc != MWL_OK) {
        mwl_diag_set(diag, 0, 0, "http-tokens-file: %s: %s", path, d.msg);
        return rc == MWL_E_NOMEM ? rc : MWL_E_IO;
    }
    rc = mwl_http_tokens_parse((const char *)text, len, out, &d);
    mwl_mem_free(NULL, text);
    if (rc != MWL_OK) {
        mwl_diag_set(diag, 0, 0, "http-tokens-file: %s: %s", path, d.msg);
        return rc;
    }
    if (out->count == 0) {
        mwl_diag_set(diag, 0, 0, "http-tokens-file: %s: no token", path);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

/* libmicrohttpd's TLS (GnuTLS) as docs/security.md's profile for DICOM:
 * TLS 1.2 and 1.3 only, AEAD suites only, and (the -KX part) forward-secret
 * key exchange only: SECURE128 alone would also admit TLS_RSA_* suites. */
#define HTTP_TLS_PRIORITIES                                                                                  \
    "SECURE256:SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"         \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA"

/* ---- state ------------------------------------------------------------------- */

struct mwl_http {
    mwl_http_config cfg;         /* the running settings (loop thread) */
    char bind[MWL_NET_HOST_MAX]; /* for the listener: "" = all addresses */
    struct MHD_Daemon *daemon;
    mwl_hl7_feed *hl7;
    _Atomic(mwl_server *) srv; /* set at the first accept, read by requests */
    atomic_bool stopping;      /* draining: no new connections, answers close theirs */
    atomic_bool closed;        /* shutdown-grace over: nothing is waited for */
    atomic_size_t in_flight;   /* requests begun and not completed */

    mwl_rest *rest;                /* /mwlitems; NULL without a worklist service */
    atomic_uint_fast32_t max_body; /* http-max-body (a reload changes it) */

    bool https; /* holds the process's HTTPS certificate slot (https_cert.h) */
    /* What mwl_http_reload_prepare read for mwl_http_reconfigure (loop
     * thread): a certificate (NULL: none new) and the tokens. */
    bool pending;
    https_cert *pending_cert;
    mwl_http_tokens *pending_tokens;

    pthread_mutex_t mu;
    bool auth;              /* a tokens file is in use */
    mwl_http_tokens tokens; /* under mu */
    mwl_http_stats stats;   /* under mu */
    http_observe *observe;  /* observe.c: /queries, /explain, the metrics beyond the counters */
};

mwl_server *http_server(mwl_http *http)
{
    return atomic_load(&http->srv);
}

mwl_hl7_feed *http_hl7(mwl_http *http)
{
    return http->hl7;
}

http_observe *http_get_observe(mwl_http *http)
{
    return http->observe;
}

/* *con_cls: one request from its headers to its completion. A route that
 * takes a body is answered only once the body is in (libmicrohttpd hands
 * it over in pieces, over several calls); everything else on the first
 * call. */
typedef struct request_state {
    const mwl_http_route *route; /* NULL until routed */
    mwl_http_role role;          /* the token's */
    bool answered;               /* a response is queued: the rest of any body is dropped */
    bool too_large;              /* over http-max-body; 413 at the end if not queued at once */
    mwl_wbuf body;
} request_state;

/* ---- requests (libmicrohttpd's thread) ------------------------------------- */

static enum MHD_Result respond(mwl_http *http, struct MHD_Connection *conn, unsigned status,
                               const char *content_type, const char *body, size_t len, const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (ok == MHD_YES && allow)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (ok == MHD_YES && status == MHD_HTTP_UNAUTHORIZED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"mwl\"");
    /* Draining: the answer ends the connection, so shutdown need not wait
     * for an idle keep-alive client. */
    if (ok == MHD_YES && atomic_load(&http->stopping))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_json_error(mwl_http *http, struct MHD_Connection *conn, unsigned status,
                                          const char *error, const char *allow)
{
    /* `error` is one of our fixed phrases: nothing from the request is
     * echoed, so nothing needs JSON escaping. */
    char body[128];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%u}\n", error, status);
    return respond(http, conn, status, "application/json", body, (size_t)n, allow);
}

/* Appends printf-style text to the metrics page, growing it up to
 * HTTP_TEXT_MAX; beyond that the page is marked truncated. */
void text_put(text_out *o, const char *fmt, ...)
{
    if (o->truncated)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = o->buf ? vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap) : -1;
        va_end(ap);
        if (o->buf && n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 16384;
        char *grown = cap <= HTTP_TEXT_MAX ? realloc(o->buf, cap) : NULL;
        if (!grown || (n < 0 && o->buf)) {
            o->truncated = true;
            return;
        }
        o->buf = grown;
        o->cap = cap;
    }
}

/* Appends one counter or gauge with its HELP and TYPE lines (Prometheus
 * text format 0.0.4). */
static void metric(text_out *o, const char *name, const char *type, const char *help, uint64_t value)
{
    text_put(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
             (unsigned long long)value);
}

static void serve_metrics(const mwl_http_request *req, mwl_http_response *res)
{
    mwl_http *http = req->http;
    text_out o = {NULL, 0, 0, false};
    mwl_server *srv = atomic_load(&http->srv);
    mwl_server_stats s;
    memset(&s, 0, sizeof s);
    if (srv)
        mwl_server_get_stats(srv, &s);
    metric(&o, "mwl_connections_total", "counter", "DICOM connections accepted.", s.connections);
    metric(&o, "mwl_associations_total", "counter", "Associations accepted (A-ASSOCIATE-AC sent).",
           s.associations);
    metric(&o, "mwl_associations_rejected_total", "counter", "A-ASSOCIATE-RJ sent, for any reason.",
           s.rejected);
    metric(&o, "mwl_associations_rejected_busy_total", "counter",
           "A-ASSOCIATE-RJ sent because max-associations was reached.", s.rejected_busy);
    metric(&o, "mwl_associations_aborted_total", "counter",
           "Associations that ended in A-ABORT or a lost transport.", s.aborted);
    metric(&o, "mwl_connections_evicted_total", "counter",
           "Connections without an association closed to make room (max-pending, max-peer-connections).",
           s.evicted);
    metric(&o, "mwl_connections_dropped_total", "counter",
           "Connections closed at once because their peer's connections were all associated.", s.dropped);
    metric(&o, "mwl_associations_active", "gauge", "DICOM sessions open now.", (uint64_t)s.active);
    metric(&o, "mwl_echo_total", "counter", "C-ECHO responses sent.", s.echoes);
    observe_metrics_find(http, &o);
    metric(&o, "mwl_cfind_matches_total", "counter", "C-FIND Pending responses (matches) sent.",
           s.find_matches);
    metric(&o, "mwl_cfind_cancels_total", "counter", "C-FIND final responses with status FE00 (Cancel).",
           s.find_cancels);
    /* What changed the worklist through this server: the items-stored
     * gauge counts again after any of it. */
    uint64_t changes = http->rest ? mwl_rest_changes(http->rest) : 0;
    if (http->hl7) {
        mwl_hl7_feed_stats h;
        mwl_hl7_feed_get_stats(http->hl7, &h);
        changes += h.commits;
        metric(&o, "mwl_hl7_connections_total", "counter", "HL7 (MLLP) connections accepted.", h.connections);
        metric(&o, "mwl_hl7_connections_refused_total", "counter", "HL7 connections closed at once.",
               h.refused);
        observe_metrics_hl7(&h, &o);
        metric(&o, "mwl_hl7_duplicates_total", "counter", "HL7 resends answered from the intake log.",
               h.duplicates);
        metric(&o, "mwl_hl7_commits_total", "counter", "HL7 intake transactions synced to disk.", h.commits);
    }
    mwl_http_stats hs;
    pthread_mutex_lock(&http->mu);
    hs = http->stats;
    pthread_mutex_unlock(&http->mu);
    metric(&o, "mwl_http_requests_total", "counter", "HTTP requests answered (this one included).",
           hs.requests);
    metric(&o, "mwl_http_unauthorized_total", "counter", "HTTP requests refused 401.", hs.unauthorized);
    metric(&o, "mwl_http_connections_total", "counter", "HTTP connections accepted.", hs.connections);
    metric(&o, "mwl_http_connections_refused_total", "counter",
           "HTTP connections closed at once: address not allowed, over http-max-connections or "
           "max-peer-connections, shutting down.",
           hs.refused);
    observe_metrics_more(http, &s, changes, &o);
    if (o.truncated) /* out of memory, or over HTTP_TEXT_MAX: never send half a page */
        mwl_http_error(res, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "metrics too large");
    else {
        res->status = MHD_HTTP_OK;
        res->content_type = "text/plain; version=0.0.4; charset=utf-8";
        mwl_wbuf_put(&res->body, o.buf, o.len);
    }
    free(o.buf);
}

static void serve_healthz(const mwl_http_request *req, mwl_http_response *res)
{
    (void)req;
    res->status = MHD_HTTP_OK;
    res->content_type = "text/plain; charset=utf-8";
    mwl_wbuf_put(&res->body, "ok\n", 3);
}

/* The endpoints. /healthz needs no token: a liveness probe carries no
 * secret, and the answer tells nothing but that the process answers.
 * /mwlitems/count comes before /mwlitems/{}/{}-like patterns only by
 * having fewer segments: patterns never overlap. */
static const mwl_http_route routes[] = {
    {"GET", "/healthz", MWL_HTTP_ROLE_NONE, false, serve_healthz},
    {"GET", "/metrics", MWL_HTTP_ROLE_READ, false, serve_metrics},
    {"GET", "/mwlitems", MWL_HTTP_ROLE_READ, false, mwl_rest_search},
    {"POST", "/mwlitems", MWL_HTTP_ROLE_WRITE, true, mwl_rest_create},
    {"GET", "/mwlitems/count", MWL_HTTP_ROLE_READ, false, mwl_rest_count},
    {"GET", "/mwlitems/{}/{}", MWL_HTTP_ROLE_READ, false, mwl_rest_get},
    {"PUT", "/mwlitems/{}/{}", MWL_HTTP_ROLE_WRITE, true, mwl_rest_put},
    {"DELETE", "/mwlitems/{}/{}", MWL_HTTP_ROLE_WRITE, false, mwl_rest_delete},
    {"POST", "/mwlitems/{}/{}/status/{}", MWL_HTTP_ROLE_WRITE, false, mwl_rest_status},
    /* The standard search (PS3.18 ch. 14) and dcm4chee-arc's paths for
     * /mwlitems (its clients put the archive's AE title in the path; we
     * have one worklist, so any AE title names it). */
    {"GET", "/modality-scheduled-procedure-steps", MWL_HTTP_ROLE_READ, false, mwl_rest_std_search},
    {"GET", "/aets/{}/rs/mwlitems", MWL_HTTP_ROLE_READ, false, mwl_rest_search},
    {"GET", "/aets/{}/rs/mwlitems/count", MWL_HTTP_ROLE_READ, false, mwl_rest_count},
    {"GET", "/queries", MWL_HTTP_ROLE_READ, false, serve_queries},
    {"GET", "/explain", MWL_HTTP_ROLE_READ, false, serve_explain},
    {"POST", "/explain", MWL_HTTP_ROLE_READ, true, serve_explain},
    {"GET", "/openapi.json", MWL_HTTP_ROLE_READ, false, serve_openapi},
    {"GET", "/status", MWL_HTTP_ROLE_READ, false, serve_status},
    /* The web page (web.h): no token, see mwl_http_web_serve. */
    {"GET", "/", MWL_HTTP_ROLE_NONE, false, mwl_http_web_serve},
    {"GET", "/index.html", MWL_HTTP_ROLE_NONE, false, mwl_http_web_serve},
    {"GET", "/app.js", MWL_HTTP_ROLE_NONE, false, mwl_http_web_serve},
    {"GET", "/app.css", MWL_HTTP_ROLE_NONE, false, mwl_http_web_serve},
};
enum { ROUTE_COUNT = sizeof routes / sizeof routes[0] };

/* Queues `res` (with its Location and Allow). */
static enum MHD_Result send_response(mwl_http *http, struct MHD_Connection *conn, mwl_http_response *res)
{
    if (res->body.status != MWL_OK)
        return respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
    /* The body's buffer (malloc'd: the default allocator) is handed to
     * libmicrohttpd, which frees it once sent: a search answer is tens of
     * KiB, and copying it was a visible part of its cost. */
    struct MHD_Response *r = NULL;
    if (res->body.data && (!res->body.mem || res->body.mem == mwl_mem_default())) {
        r = MHD_create_response_from_buffer_with_free_callback(res->body.len, res->body.data, free);
        if (r) {
            res->body.data = NULL;
            res->body.len = res->body.cap = 0;
        }
    } else {
        r = MHD_create_response_from_buffer(res->body.len, res->body.data, MHD_RESPMEM_MUST_COPY);
    }
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_YES;
    if (res->content_type)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    if (ok == MHD_YES && res->location[0])
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, res->location);
    if (ok == MHD_YES && res->allow[0])
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
    for (size_t i = 0; ok == MHD_YES && i < MWL_HTTP_HEADERS_MAX && res->headers[i][0]; i++)
        ok = MHD_add_response_header(r, res->headers[i][0], res->headers[i][1]);
    for (size_t i = 0; ok == MHD_YES && i < MWL_HTTP_WARNINGS_MAX && res->warnings[i][0]; i++)
        ok = MHD_add_response_header(r, "Warning", res->warnings[i]);
    if (ok == MHD_YES && atomic_load(&http->stopping))
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, res->status, r);
    MHD_destroy_response(r);
    return ok;
}

typedef struct arg_list {
    mwl_http_arg item[MWL_HTTP_ARGS_MAX];
    size_t count;
    bool overflow;
} arg_list;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    arg_list *a = cls;
    if (a->count == MWL_HTTP_ARGS_MAX) {
        a->overflow = true;
        return MHD_NO;
    }
    a->item[a->count].key = key;
    a->item[a->count].value = value;
    a->count++;
    return MHD_YES;
}

/* "127.0.0.1:40000" / "[::1]:40000" for logs and the audit. */
static void peer_text(struct MHD_Connection *conn, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    /* libmicrohttpd keeps the address in a sockaddr_storage. */
    mwl_net_format_sockaddr(ci ? ci->client_addr : NULL, sizeof(struct sockaddr_storage), out, cap);
}

/* Runs the route's handler and queues its answer. */
static enum MHD_Result dispatch(mwl_http *http, struct MHD_Connection *conn, const char *url,
                                const char *method, request_state *rs)
{
    mwl_http_request *req = calloc(1, sizeof *req); /* 1 KiB of parameters: not on a thread's stack */
    arg_list *args = calloc(1, sizeof *args);
    if (!req || !args) {
        free(req);
        free(args);
        return respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
    }
    char peer[64];
    peer_text(conn, peer, sizeof peer);
    const mwl_http_route *route = NULL;
    char allow[64];
    if (mwl_http_route_find(routes, ROUTE_COUNT, method, url, &route, req, allow, sizeof allow) != MWL_OK ||
        route != rs->route)
        route = rs->route; /* routed on the first call; the parameters again here */
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, args);
    mwl_http_response res;
    memset(&res, 0, sizeof res);
    mwl_wbuf_init(&res.body, NULL);
    req->method = method;
    req->path = url;
    req->args = args->item;
    req->arg_count = args->count;
    req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    req->if_none_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    req->accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req->host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    /* An empty body is a body: the handler says what is wrong with it. */
    req->body = route->takes_body ? (rs->body.data ? rs->body.data : (const uint8_t *)"") : NULL;
    req->body_len = route->takes_body ? rs->body.len : 0;
    req->peer = peer;
    req->role = rs->role;
    req->auth = http->auth;
    req->http = http;
    req->rest = http->rest;
    req->srv = atomic_load(&http->srv);
    if (args->overflow)
        mwl_http_error(&res, MHD_HTTP_BAD_REQUEST, NULL, "more than %d query parameters", MWL_HTTP_ARGS_MAX);
    else
        route->fn(req, &res);
    if (res.status == 0)
        mwl_http_error(&res, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "no answer");
    mwl_log(MWL_LOG_DEBUG, "http %s %.200s: %u", method, url, res.status);
    enum MHD_Result rc = send_response(http, conn, &res);
    mwl_wbuf_clear(&res.body);
    free(args);
    free(req);
    return rc;
}

/* A change refused before its handler ran (no or a read token, a method
 * the path does not take, a body over http-max-body) is audited as the
 * handler's own answers are: the attempts a privacy officer most wants to
 * see are the ones that never reached the store. Reads are not audited. */
static void audit_refused(mwl_http *http, struct MHD_Connection *conn, const char *method, const char *url,
                          unsigned status, mwl_http_role role, const char *why)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0 ||
        strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return;
    mwl_server *srv = atomic_load(&http->srv);
    if (!srv)
        return;
    char peer[64];
    peer_text(conn, peer, sizeof peer);
    const char *token = !http->auth                   ? "none"
                        : role == MWL_HTTP_ROLE_WRITE ? "write"
                        : role == MWL_HTTP_ROLE_READ  ? "read"
                                                      : "no valid token";
    mwl_audit_write rec = {method, url, peer, token, why, status, NULL, NULL, NULL};
    mwl_server_audit_write(srv, &rec);
}

/* The first call of a request: authentication and routing, which need
 * only the headers; answers what can be answered before any body. */
static enum MHD_Result first_call(mwl_http *http, struct MHD_Connection *conn, const char *url,
                                  const char *method, request_state *rs)
{
    const mwl_http_route *any = mwl_http_route_any(routes, ROUTE_COUNT, url);
    unsigned status = 0;
    pthread_mutex_lock(&http->mu);
    http->stats.requests++;
    /* With tokens, everything but /healthz needs one, unknown paths too, so
     * that what exists cannot be probed without a token. */
    mwl_http_role role = MWL_HTTP_ROLE_WRITE; /* without tokens: loopback only, all allowed */
    if (http->auth && (!any || any->role != MWL_HTTP_ROLE_NONE)) {
        const char *authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        role = mwl_http_tokens_check(&http->tokens, authorization);
        if (role == MWL_HTTP_ROLE_NONE) {
            status = MHD_HTTP_UNAUTHORIZED;
            http->stats.unauthorized++;
        }
    }
    pthread_mutex_unlock(&http->mu);
    rs->role = http->auth ? role : MWL_HTTP_ROLE_NONE;
    rs->answered = true; /* unless the route waits for a body, below */
    if (status == MHD_HTTP_UNAUTHORIZED) {
        mwl_log(MWL_LOG_INFO, "http %s %.200s: 401, no valid bearer token", method, url);
        audit_refused(http, conn, method, url, status, MWL_HTTP_ROLE_NONE, "refused: no valid bearer token");
        return respond_json_error(http, conn, status, "unauthorized", NULL);
    }
    mwl_http_request *scratch = calloc(1, sizeof *scratch);
    if (!scratch)
        return respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
    const mwl_http_route *route = NULL;
    char allow[64];
    int rc = mwl_http_route_find(routes, ROUTE_COUNT, method, url, &route, scratch, allow, sizeof allow);
    free(scratch);
    if (rc == MWL_E_UNSUPPORTED) {
        mwl_log(MWL_LOG_DEBUG, "http %s %.200s: 405", method, url);
        audit_refused(http, conn, method, url, MHD_HTTP_METHOD_NOT_ALLOWED, role,
                      "refused: method not allowed");
        return respond_json_error(http, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", allow);
    }
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_DEBUG, "http %s %.200s: 404", method, url);
        return respond_json_error(http, conn, MHD_HTTP_NOT_FOUND, "not found", NULL);
    }
    if (http->auth && role < route->role) {
        /* A valid token without the right: 403, so the client knows that
         * another token, not a retry, is what it needs. */
        mwl_log(MWL_LOG_INFO, "http %s %.200s: 403, the token's role is read", method, url);
        audit_refused(http, conn, method, url, MHD_HTTP_FORBIDDEN, role, "refused: a read token");
        return respond_json_error(http, conn, MHD_HTTP_FORBIDDEN, "forbidden: this needs a write token",
                                  NULL);
    }
    rs->route = route;
    if (route->takes_body) {
        /* A declared length over the limit is refused before any byte of
         * it is read. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > atomic_load(&http->max_body)) {
            mwl_log(MWL_LOG_INFO, "http %s %.200s: 413, Content-Length %.20s over http-max-body", method, url,
                    cl);
            audit_refused(http, conn, method, url, MHD_HTTP_CONTENT_TOO_LARGE, role,
                          "refused: body too large");
            return respond_json_error(http, conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                      "body too large (http-max-body)", NULL);
        }
        rs->answered = false;
        return MHD_YES; /* the body comes in the next calls */
    }
    /* Answered on the next call, not this one: libmicrohttpd takes an
     * answer queued on the first call as "early" (before it knows whether
     * a body follows) and closes the connection after it, so every request
     * would pay a new TCP connection and thread. Refusals above may close. */
    rs->answered = false;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    mwl_http *http = cls;
    request_state *rs = *con_cls;
    if (!rs) {
        rs = calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO; /* libmicrohttpd closes the connection */
        mwl_wbuf_init(&rs->body, NULL);
        *con_cls = rs;
        atomic_fetch_add(&http->in_flight, 1);
        /* A body that arrives with the headers comes in the next call:
         * libmicrohttpd gives the first call none. */
        return first_call(http, conn, url, method, rs);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rs->answered || rs->too_large)
            return MHD_YES; /* dropped: the answer is given or decided */
        if (rs->body.len + n > atomic_load(&http->max_body)) {
            /* Refused as the bytes arrive, not after buffering them all. */
            rs->too_large = true;
            mwl_wbuf_clear(&rs->body);
            mwl_wbuf_init(&rs->body, NULL);
            mwl_log(MWL_LOG_INFO, "http %s %.200s: 413, body over http-max-body", method, url);
            audit_refused(http, conn, method, url, MHD_HTTP_CONTENT_TOO_LARGE, rs->role,
                          "refused: body too large");
            if (respond_json_error(http, conn, MHD_HTTP_CONTENT_TOO_LARGE, "body too large (http-max-body)",
                                   NULL) == MHD_YES)
                rs->answered = true;
            return MHD_YES;
        }
        mwl_wbuf_put(&rs->body, upload_data, n);
        return MHD_YES;
    }
    if (rs->answered)
        return MHD_YES;
    rs->answered = true;
    if (rs->too_large)
        return respond_json_error(http, conn, MHD_HTTP_CONTENT_TOO_LARGE, "body too large (http-max-body)",
                                  NULL);
    if (rs->body.status != MWL_OK)
        return respond_json_error(http, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory", NULL);
    return dispatch(http, conn, url, method, rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    mwl_http *http = cls;
    request_state *rs = *con_cls;
    if (rs) {
        *con_cls = NULL;
        mwl_wbuf_clear(&rs->body);
        free(rs);
        atomic_fetch_sub(&http->in_flight, 1);
    }
}

/* libmicrohttpd's own messages (a malformed request, a failed send) go to
 * our log; mwl_log escapes whatever they quote. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = 0;
    mwl_log(MWL_LOG_DEBUG, "http: %s", text);
}

/* ---- the loop side ----------------------------------------------------------- */

static int on_accept(void *user, mwl_server *srv, mwl_conn *conn)
{
    mwl_http *http = user;
    atomic_store(&http->srv, srv);
    char peer[MWL_NET_ADDRSTRLEN];
    snprintf(peer, sizeof peer, "%s", mwl_conn_peer(conn));
    const char *refuse = NULL;
    if (atomic_load(&http->stopping))
        refuse = "shutting down";
    else if (!mwl_allow_peer_address(&mwl_server_get_config(srv)->allow, peer))
        refuse = "address not allowed (allow rules)";
    bool own_conn = true; /* until the socket leaves it */
    int fd = -1;
    if (!refuse) {
        if (mwl_conn_release_fd(conn, &fd) == MWL_OK)
            own_conn = false;
        else
            refuse = "not a plain TCP connection";
    }
    /* libmicrohttpd wants the peer's address (for its logs and limits);
     * the socket is no longer an mwl_conn, so ask the kernel. */
    struct sockaddr_storage addr;
    socklen_t addr_len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    if (!refuse && getpeername(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        close(fd);
        refuse = "peer gone";
    }
    if (refuse) {
        mwl_log(MWL_LOG_WARN, "http %s: connection refused: %s", peer, refuse);
        if (own_conn)
            mwl_conn_close(conn);
        pthread_mutex_lock(&http->mu);
        http->stats.refused++;
        pthread_mutex_unlock(&http->mu);
        return MWL_E_LIMIT;
    }
    /* From here the socket is libmicrohttpd's, which closes it in every
     * case, also when it cannot take it (over http-max-connections). */
    /* Logged first: the request may be answered before the call returns. */
    mwl_log(MWL_LOG_DEBUG, "http %s: connected", peer);
    if (MHD_add_connection(http->daemon, fd, (const struct sockaddr *)&addr, addr_len) != MHD_YES) {
        mwl_log(MWL_LOG_WARN,
                "http %s: connection refused by the HTTP library: http-max-connections (%u) or "
                "max-peer-connections (%u) reached",
                peer, (unsigned)http->cfg.max_connections, (unsigned)http->cfg.max_peer_connections);
        pthread_mutex_lock(&http->mu);
        http->stats.refused++;
        pthread_mutex_unlock(&http->mu);
        return MWL_E_LIMIT;
    }
    pthread_mutex_lock(&http->mu);
    http->stats.connections++;
    pthread_mutex_unlock(&http->mu);
    return MWL_OK;
}

static void on_stop(void *user, bool now)
{
    mwl_http *http = user;
    atomic_store(&http->stopping, true);
    /* After shutdown-grace nothing is waited for: mwl_http_stop closes
     * what is left once the loop has stopped. */
    if (now)
        atomic_store(&http->closed, true);
}

/* What the shutdown waits for: requests being answered. Idle keep-alive
 * connections do not hold it up; they are closed by mwl_http_stop. */
static size_t on_active(void *user)
{
    mwl_http *http = user;
    if (atomic_load(&http->closed))
        return 0;
    return atomic_load(&http->in_flight);
}

/* ---- life cycle -------------------------------------------------------------- */

int mwl_http_new(const mwl_http_config *cfg, mwl_hl7_feed *hl7, mwl_worklist_service *wl, mwl_http **out,
                 mwl_diag *diag)
{
    *out = NULL;
    int rc = mwl_http_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_http *http = calloc(1, sizeof *http);
    if (!http)
        return MWL_E_NOMEM;
    http->cfg = *cfg;
    http->hl7 = hl7;
    snprintf(http->bind, sizeof http->bind, "%s", strcmp(cfg->bind, "*") == 0 ? "" : cfg->bind);
    atomic_init(&http->srv, NULL);
    atomic_init(&http->stopping, false);
    atomic_init(&http->closed, false);
    atomic_init(&http->in_flight, 0);
    atomic_init(&http->max_body, cfg->max_body);
    pthread_mutex_init(&http->mu, NULL);
    http->observe = observe_new();
    if (!http->observe || (wl && mwl_rest_new(wl, &http->rest) != MWL_OK)) {
        mwl_http_free(http);
        return MWL_E_NOMEM;
    }
    if (cfg->tokens_file[0]) {
        rc = load_tokens(cfg->tokens_file, &http->tokens, diag);
        if (rc != MWL_OK) {
            mwl_http_free(http);
            return rc;
        }
        http->auth = true;
    }
    if (cfg->tls_cert[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
            MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
            mwl_diag_set(diag, 0, 0, "http-tls-cert: this libmicrohttpd is built without TLS (GnuTLS)");
            mwl_http_free(http);
            return MWL_E_UNSUPPORTED;
        }
        https_cert *cert = NULL;
        rc = https_cert_load(cfg->tls_cert, cfg->tls_key, &cert, diag);
        if (rc == MWL_OK) {
            rc = https_cert_install(cert, diag);
            if (rc != MWL_OK)
                https_cert_free(cert);
            else
                http->https = true;
        }
        if (rc != MWL_OK) {
            mwl_http_free(http);
            return rc;
        }
        mwl_log(MWL_LOG_INFO, "http: HTTPS certificate %s: %s", cfg->tls_cert, https_cert_describe(cert));
    }
    /* A thread per connection: a search over many steps or a write
     * waiting for the database lock holds up only its own connection, not
     * /healthz or another client. MHD_USE_ITC: a connection added from the
     * loop thread wakes libmicrohttpd at once. The memory limit bounds one
     * connection's request line and headers (more: 431/413, answered by
     * libmicrohttpd); bodies are ours (http-max-body); the timeout closes
     * idle keep-alive connections. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* The logger comes first: libmicrohttpd sends what it says about the
     * options before it to stderr. The TLS options come last, after an
     * option that is MHD_OPTION_END for plain HTTP, so that one call starts
     * either daemon (what follows an END is not read). The certificate
     * comes from a callback at each handshake, not as PEM text at the
     * start, so that a reload can renew it (https_cert.h). The idle
     * timeout also bounds a TLS handshake that never finishes. */
    if (http->https)
        flags |= MHD_USE_TLS;
    http->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, http,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_peer_connections, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
        http->https ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, https_cert_callback(),
        MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES, MHD_OPTION_END);
    if (!http->daemon) {
        /* The certificate and key were checked above: what is left is the
         * library itself (no TLS in it, or out of memory). */
        if (http->https)
            mwl_diag_set(diag, 0, 0,
                         "http-tls-cert: the HTTP library (libmicrohttpd/GnuTLS) did not start HTTPS");
        else
            mwl_diag_set(diag, 0, 0, "http: the HTTP library (libmicrohttpd) did not start");
        rc = http->https ? MWL_E_UNSUPPORTED : MWL_E_NOMEM;
        mwl_http_free(http);
        return rc;
    }
    if (http->https)
        mwl_log(MWL_LOG_INFO, "http: HTTPS with %s (TLS 1.2/1.3, AEAD suites)", cfg->tls_cert);
    *out = http;
    return MWL_OK;
}

void mwl_http_listener(mwl_http *http, mwl_listener_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->name = "http";
    spec->bind = http->bind;
    uint16_t port = 0;
    mwl_diag d;
    if (mwl_net_parse_port(http->cfg.port, &port, &d) != MWL_OK)
        port = 0; /* checked in mwl_http_new */
    spec->port = port;
    spec->accept = on_accept;
    spec->stop = on_stop;
    spec->active = on_active;
    spec->user = http;
    /* An accepted socket leaves the loop at once (to libmicrohttpd): the
     * loop needs no room for HTTP connections. */
    spec->max_connections = 1;
    spec->max_jobs = 0;
}

void mwl_http_reload_abandon(mwl_http *http)
{
    if (!http)
        return;
    https_cert_free(http->pending_cert);
    http->pending_cert = NULL;
    if (http->pending_tokens) {
        /* Tokens are secrets: do not leave them in freed memory. */
        memset(http->pending_tokens, 0, sizeof *http->pending_tokens);
        free(http->pending_tokens);
    }
    http->pending_tokens = NULL;
    http->pending = false;
}

int mwl_http_reload_prepare(mwl_http *http, const mwl_http_config *cfg, mwl_diag *diag)
{
    mwl_http_reload_abandon(http);
    int rc = mwl_http_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    /* HTTPS: the certificate and key are read again (also new contents
     * under the same paths: a renewal) and checked as at start-up. The
     * same certificate again (a SIGHUP for another reason) is dropped
     * here, so reloads do not pile up certificates (https_cert.h). */
    if (http->https && cfg->tls_cert[0]) {
        https_cert *cert = NULL;
        rc = https_cert_load(cfg->tls_cert, cfg->tls_key, &cert, diag);
        if (rc != MWL_OK)
            return rc; /* the running certificate stays */
        if (https_cert_is_serving(cert))
            https_cert_free(cert);
        else
            http->pending_cert = cert;
    }
    /* The tokens file (maybe another path) again. */
    if (http->auth) {
        const char *path = cfg->tokens_file[0] ? cfg->tokens_file : http->cfg.tokens_file;
        http->pending_tokens = malloc(sizeof *http->pending_tokens);
        if (!http->pending_tokens) {
            mwl_http_reload_abandon(http);
            return MWL_E_NOMEM;
        }
        rc = load_tokens(path, http->pending_tokens, diag);
        if (rc != MWL_OK) {
            mwl_http_reload_abandon(http);
            return rc;
        }
    }
    http->pending = true;
    return MWL_OK;
}

int mwl_http_reconfigure(mwl_http *http, const mwl_http_config *cfg, mwl_diag *diag)
{
    /* Without a prepare of its own, read the files first: whatever fails
     * there, nothing has changed yet. */
    if (!http->pending) {
        int rc = mwl_http_reload_prepare(http, cfg, diag);
        if (rc != MWL_OK)
            return rc;
    }
    if (strcmp(cfg->port, http->cfg.port) != 0 || strcmp(cfg->bind, http->cfg.bind) != 0 ||
        strcmp(cfg->port_file, http->cfg.port_file) != 0 ||
        cfg->max_connections != http->cfg.max_connections ||
        cfg->max_peer_connections != http->cfg.max_peer_connections ||
        (cfg->tokens_file[0] != 0) != http->auth)
        mwl_log(MWL_LOG_WARN, "reload: http-port, http-bind, http-port-file, http-max-connections, "
                              "max-peer-connections (for HTTP) and turning http-tokens-file on or off change "
                              "only with a restart");
    /* The new certificate serves from the next handshake on; connections
     * keep theirs. Turning HTTPS on or off changes the daemon: that waits
     * for a restart. */
    if (http->pending_cert) {
        https_cert *cert = http->pending_cert;
        http->pending_cert = NULL;
        mwl_log(MWL_LOG_INFO, "reload: HTTPS certificate %s: %s", cfg->tls_cert, https_cert_describe(cert));
        https_cert_replace(cert);
        snprintf(http->cfg.tls_cert, sizeof http->cfg.tls_cert, "%s", cfg->tls_cert);
        snprintf(http->cfg.tls_key, sizeof http->cfg.tls_key, "%s", cfg->tls_key);
    } else if (http->https != (cfg->tls_cert[0] != 0)) {
        mwl_log(MWL_LOG_WARN, "reload: turning HTTPS %s (http-tls-cert) needs a restart",
                http->https ? "off" : "on");
    }
    atomic_store(&http->max_body, cfg->max_body);
    http->cfg.max_body = cfg->max_body;
    /* A new token works and a removed one stops working at once. */
    if (http->pending_tokens) {
        pthread_mutex_lock(&http->mu);
        http->tokens = *http->pending_tokens;
        pthread_mutex_unlock(&http->mu);
        if (cfg->tokens_file[0])
            snprintf(http->cfg.tokens_file, sizeof http->cfg.tokens_file, "%s", cfg->tokens_file);
    }
    mwl_http_reload_abandon(http); /* frees what was taken over */
    return MWL_OK;
}

void mwl_http_get_stats(const mwl_http *http, mwl_http_stats *out)
{
    mwl_http *h = (mwl_http *)http;
    pthread_mutex_lock(&h->mu);
    *out = h->stats;
    pthread_mutex_unlock(&h->mu);
}

void mwl_http_stop(mwl_http *http)
{
    if (!http || !http->daemon)
        return;
    atomic_store(&http->stopping, true);
    MHD_stop_daemon(http->daemon);
    http->daemon = NULL;
}

void mwl_http_free(mwl_http *http)
{
    if (!http)
        return;
    mwl_http_stop(http);
    /* After the daemon has stopped: no handshake can hold a certificate. */
    mwl_http_reload_abandon(http);
    if (http->https)
        https_cert_release();
    observe_free(http->observe);
    mwl_rest_free(http->rest);
    pthread_mutex_destroy(&http->mu);
    /* Tokens are secrets: do not leave them in freed memory. */
    memset(&http->tokens, 0, sizeof http->tokens);
    free(http);
}
