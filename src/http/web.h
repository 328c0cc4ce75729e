/* The worklist web page (docs/http.md "The page"): src/http/web/'s files,
 * embedded in the binary at build time (cmake/EmbedWeb.cmake), and the
 * route handler that serves them. Private to the http module. */
#ifndef MWL_HTTP_WEB_H
#define MWL_HTTP_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "http/router.h"

typedef struct mwl_http_asset {
    const char *path;          /* "/index.html", "/app.js", ... */
    const unsigned char *data; /* the file's bytes (static storage) */
    size_t len;
    const char *etag; /* quoted, from the content's SHA-256 */
} mwl_http_asset;

/* Generated (web_assets_gen.c in the build folder). */
extern const mwl_http_asset mwl_http_web_assets[];
extern const size_t mwl_http_web_asset_count;

/* The asset a request path names ("/" is "/index.html"; a query string is
 * not part of `path`), or NULL. */
const mwl_http_asset *mwl_http_web_find(const char *path);

/* The Content-Type for an asset, from its name's extension; UTF-8 for text. */
const char *mwl_http_web_content_type(const mwl_http_asset *asset);

/* True when an If-None-Match header value (NULL = none) names the asset's
 * ETag, or is "*": the answer is then 304 without a body (RFC 9110 13.1.2). */
bool mwl_http_web_not_modified(const mwl_http_asset *asset, const char *if_none_match);

/* Headers every asset answer carries: "no-cache" makes the browser ask
 * again each time (the ETag makes that a 304), so a new binary's page is
 * used at once; the CSP allows nothing but this server (no CDN, no inline
 * script), which is also how the page promises to load no external
 * resource. */
#define MWL_HTTP_WEB_CACHE_CONTROL "no-cache"
#define MWL_HTTP_WEB_CSP                                                                                     \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "    \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The route handler for the page's files (GET and HEAD of "/",
 * "/index.html", "/app.js", "/app.css"): 200 with the file, its
 * Content-Type, Cache-Control, ETag, the CSP and nosniff; 304 without a
 * body when If-None-Match names the ETag; 404 for a path that names no
 * file. Routed without a token: the files are the same for everyone and
 * hold no worklist data, and a browser cannot send a bearer token when it
 * loads a page, so the page asks for the token itself when the API answers
 * 401. */
void mwl_http_web_serve(const mwl_http_request *req, mwl_http_response *res);

#endif
