/* What server.c (the listener, the routes, /healthz, /metrics) and
 * observe.c (/queries, /explain, /openapi.json and the metrics beyond the
 * server's counters) share. Handlers see router.h's plain request and
 * response, no libmicrohttpd type.
 *
 * Private to the http module. Request handlers run on libmicrohttpd's
 * threads. */
#ifndef MWL_HTTP_HTTP_INT_H
#define MWL_HTTP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/log.h"
#include "http/http.h"
#include "http/router.h"

/* Largest text page (/metrics) built: the label sets are bounded (256
 * calling AE titles, 32 HL7 types), so this is never reached in practice;
 * if it is, the page is refused rather than sent half. */
#define HTTP_TEXT_MAX (4u * 1024u * 1024u)

/* A growing text page (malloc; the caller frees buf). */
typedef struct text_out {
    char *buf;
    size_t cap, len;
    bool truncated; /* out of memory or over HTTP_TEXT_MAX: do not send */
} text_out;

void text_put(text_out *o, const char *fmt, ...) MWL_PRINTF(2, 3);

/* The server (NULL before the first accepted connection, so never for a
 * request). */
mwl_server *http_server(mwl_http *http);
/* The HL7 feed whose counters the server shows, NULL without one. */
mwl_hl7_feed *http_hl7(mwl_http *http);

/* ---- observe.c ---- */
typedef struct http_observe http_observe;
http_observe *observe_new(void); /* NULL: out of memory */
void observe_free(http_observe *o);
http_observe *http_get_observe(mwl_http *http);

/* GET /queries, GET and POST /explain, GET /openapi.json, GET /status. */
void serve_queries(const mwl_http_request *req, mwl_http_response *res);
void serve_status(const mwl_http_request *req, mwl_http_response *res);
void serve_explain(const mwl_http_request *req, mwl_http_response *res);
void serve_openapi(const mwl_http_request *req, mwl_http_response *res);

/* The C-FIND counters by status and calling AE title and the latency
 * histogram (in place of the plain C-FIND count). */
void observe_metrics_find(mwl_http *http, text_out *o);
/* HL7 answers by message type and ACK code. */
void observe_metrics_hl7(const mwl_hl7_feed_stats *h, text_out *o);
/* Associations by outcome, refusals by reason, items stored. */
void observe_metrics_more(mwl_http *http, const mwl_server_stats *s, uint64_t changes, text_out *o);

/* docs/openapi.json, NUL-terminated, embedded at build time
 * (cmake/EmbedFile.cmake). */
extern const char mwl_openapi_json[];

#endif
