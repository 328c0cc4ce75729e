/* The HTTP module's routing and its plain request/response structs
 * (private to src/http/). A route is a method and a path pattern whose
 * `{}` segments match any one segment; the handler sees the request with
 * those segments, the query arguments and the body already collected, and
 * fills a response: no libmicrohttpd type crosses this header, so the
 * handlers (rest.c) and the router are testable without a socket. */
#ifndef MWL_HTTP_ROUTER_H
#define MWL_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"
#include "http/http.h"

/* Most `{}` segments in a pattern, and the longest segment captured. */
#define MWL_HTTP_PARAMS_MAX 4
#define MWL_HTTP_PARAM_MAX 256
/* Most extra headers a response carries (mwl_http_response.headers). */
#define MWL_HTTP_HEADERS_MAX 4
/* Most Warning headers a response carries (mwl_http_response.warnings). */
#define MWL_HTTP_WARNINGS_MAX 4
/* Most query arguments a request may carry (more: 400). */
#define MWL_HTTP_ARGS_MAX 64

typedef struct mwl_http_arg {
    const char *key; /* decoded */
    const char *value;
} mwl_http_arg;

typedef struct mwl_rest mwl_rest;

typedef struct mwl_http_request {
    const char *method;                                       /* "GET", ...; HEAD is routed as GET */
    const char *path;                                         /* decoded, without the query */
    char params[MWL_HTTP_PARAMS_MAX][MWL_HTTP_PARAM_MAX + 1]; /* the `{}` segments, in order */
    size_t param_count;
    const mwl_http_arg *args;
    size_t arg_count;
    const char *content_type;  /* NULL = none */
    const char *if_none_match; /* the If-None-Match header; NULL = none */
    const char *accept;        /* the Accept header; NULL = none */
    const char *host;          /* the Host header; NULL = none */
    const uint8_t *body;       /* NULL unless the route takes one */
    size_t body_len;
    const char *peer;   /* "127.0.0.1:40000" */
    mwl_http_role role; /* the bearer token's; MWL_HTTP_ROLE_NONE without tokens */
    bool auth;          /* tokens are in use */
    mwl_http *http;     /* for /metrics */
    mwl_rest *rest;     /* for /mwlitems; NULL without a worklist service */
    mwl_server *srv;    /* for the audit log; NULL before the first connection */
} mwl_http_request;

typedef struct mwl_http_response {
    unsigned status;
    const char *content_type; /* static text, or content_type_buf */
    /* A content type made for this response (a multipart boundary). */
    char content_type_buf[128];
    mwl_wbuf body;
    char location[640]; /* "" = no Location header */
    char allow[64];     /* "" = no Allow header */
    /* More headers (name, value), static text; unused rows have a NULL
     * name. The web page's files set Cache-Control, ETag and their CSP. */
    const char *headers[MWL_HTTP_HEADERS_MAX][2];
    /* Warning header values ("299 {service}: text", RFC 7234 5.5), one
     * header each; "" = unused. Built per request: they name the host. */
    char warnings[MWL_HTTP_WARNINGS_MAX][384];
} mwl_http_response;

typedef void (*mwl_http_handler)(const mwl_http_request *req, mwl_http_response *res);

typedef struct mwl_http_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern; /* "/mwlitems/{}/{}": `{}` = one non-empty segment */
    mwl_http_role role;  /* the least a token must grant (with tokens) */
    bool takes_body;     /* the body is collected (up to http-max-body) before the handler runs */
    mwl_http_handler fn;
} mwl_http_route;

/* Finds the route for `method` and `path` in `routes`. Returns MWL_OK with
 * *route set and req->params/param_count filled; MWL_E_NOTFOUND when no
 * pattern matches the path; MWL_E_UNSUPPORTED when patterns match the
 * path but not with this method: `allow` (cap bytes) then lists the
 * methods that would ("GET, HEAD, PUT, DELETE"); MWL_E_LIMIT when a
 * segment a `{}` would capture is longer than MWL_HTTP_PARAM_MAX. HEAD
 * finds the GET route. */
MWL_MUST_CHECK int mwl_http_route_find(const mwl_http_route *routes, size_t count, const char *method,
                                       const char *path, const mwl_http_route **route /* out */,
                                       mwl_http_request *req /* out: params */, char *allow, size_t cap);

/* The most permissive route of `path` (any method): for deciding whether
 * a token is needed before the method is looked at. NULL when none. */
const mwl_http_route *mwl_http_route_any(const mwl_http_route *routes, size_t count, const char *path);

/* Response helpers: a JSON body {"error": msg, "status": N} with
 * "attribute" (a keyword or the tag as GGGGEEEE) when `attribute` is not
 * NULL or "". */
void mwl_http_error(mwl_http_response *res, unsigned status, const char *attribute, const char *fmt, ...)
    MWL_PRINTF(4, 5);

#endif
