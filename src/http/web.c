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
