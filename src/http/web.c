/* The embedded web page's lookup (web.h). The bytes are generated into the
 * build folder from src/http/web/ (cmake/EmbedWeb.cmake). */
#include "http/web.h"

#include <string.h>

const mwl_http_asset *mwl_http_web_find(const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < mwl_http_web_asset_count; i++)
        if (strcmp(path, mwl_http_web_assets[i].path) == 0)
            return &mwl_http_web_assets[i];
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

const char *mwl_http_web_content_type(const mwl_http_asset *asset)
{
    if (ends_with(asset->path, ".html"))
        return "text/html; charset=utf-8";
    if (ends_with(asset->path, ".js"))
        return "text/javascript; charset=utf-8"; /* RFC 9239 */
    if (ends_with(asset->path, ".css"))
        return "text/css; charset=utf-8";
    if (ends_with(asset->path, ".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

bool mwl_http_web_not_modified(const mwl_http_asset *asset, const char *if_none_match)
{
    if (!if_none_match)
        return false;
    /* A list of entity tags, maybe weak (W/"..."): a weak comparison is
     * what If-None-Match asks for (RFC 9110 13.1.2). */
    size_t etag_len = strlen(asset->etag);
    for (const char *p = if_none_match; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        size_t n = strcspn(p, ", \t");
        if (n == etag_len && memcmp(p, asset->etag, n) == 0)
            return true;
        p += n;
    }
    return false;
}

void mwl_http_web_serve(const mwl_http_request *req, mwl_http_response *res)
{
    const mwl_http_asset *a = mwl_http_web_find(req->path);
    if (!a) { /* only routes naming a file lead here */
        mwl_http_error(res, 404, NULL, "not found");
        return;
    }
    res->headers[0][0] = "ETag";
    res->headers[0][1] = a->etag;
    res->headers[1][0] = "Cache-Control";
    res->headers[1][1] = MWL_HTTP_WEB_CACHE_CONTROL;
    res->headers[2][0] = "Content-Security-Policy";
    res->headers[2][1] = MWL_HTTP_WEB_CSP;
    res->headers[3][0] = "X-Content-Type-Options";
    res->headers[3][1] = "nosniff";
    if (mwl_http_web_not_modified(a, req->if_none_match)) {
        res->status = 304; /* RFC 9110 15.4.5: no body, the same validators */
        return;
    }
    res->status = 200;
    res->content_type = mwl_http_web_content_type(a);
    mwl_wbuf_put(&res->body, a->data, a->len);
}
