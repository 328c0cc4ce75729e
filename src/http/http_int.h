/* What the files of the HTTP module share: server.c (the listener, the
 * routes, /healthz, /metrics) and observe.c (/queries, /explain,
 * /openapi.json and the metrics beyond the server's counters).
 *
 * Private to the http module. Request handlers run on libmicrohttpd's
 * thread. */
#ifndef MWL_HTTP_HTTP_INT_H
#define MWL_HTTP_HTTP_INT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/log.h"
#include "http/http.h"

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

void put(text_out *o, const char *fmt, ...) MWL_PRINTF(2, 3);

/* Queues an answer (the body is copied). `allow`: an Allow header, or NULL. */
enum MHD_Result respond(mwl_http *http, struct MHD_Connection *conn, unsigned status,
                        const char *content_type, const char *body, size_t len, const char *allow);
/* {"error":ERROR,"status":N}: `error` is a fixed phrase, not escaped. */
enum MHD_Result respond_json_error(mwl_http *http, struct MHD_Connection *conn, unsigned status,
                                   const char *error, const char *allow);

/* The server (NULL before the first accepted connection, so never for a
 * request) and the HL7 feed (NULL without one). */
mwl_server *http_server(mwl_http *http);
mwl_hl7_feed *http_hl7(mwl_http *http);

/* ---- observe.c ---- */
typedef struct http_observe http_observe;
http_observe *observe_new(void); /* NULL: out of memory */
void observe_free(http_observe *o);
http_observe *http_get_observe(mwl_http *http);

enum MHD_Result serve_queries(mwl_http *http, struct MHD_Connection *conn);
enum MHD_Result serve_explain(mwl_http *http, struct MHD_Connection *conn);
enum MHD_Result serve_openapi(mwl_http *http, struct MHD_Connection *conn);

/* The C-FIND counters by status and calling AE title and the latency
 * histogram (in place of the plain C-FIND count). */
void observe_metrics_find(mwl_http *http, text_out *o);
/* HL7 answers by message type and ACK code. */
void observe_metrics_hl7(const mwl_hl7_feed_stats *h, text_out *o);
/* Associations by outcome, refusals by reason, items stored. */
void observe_metrics_more(mwl_http *http, const mwl_server_stats *s, text_out *o);

/* docs/openapi.json, NUL-terminated, embedded at build time
 * (cmake/EmbedFile.cmake). */
extern const char mwl_openapi_json[];

#endif
