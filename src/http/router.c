/* Routing by method and path pattern (router.h). */
#include "http/router.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dicom/json.h"

/* One segment of a path or pattern from *p: [*s, *s + *n), *p moved past
 * it and its '/'. False at the end. */
static bool next_segment(const char **p, const char **s, size_t *n)
{
    if (**p == '\0')
        return false;
    if (**p == '/')
        (*p)++;
    *s = *p;
    while (**p && **p != '/')
        (*p)++;
    *n = (size_t)(*p - *s);
    return true;
}

/* Matches `path` against `pattern`; captures into req when not NULL.
 * 1 match, 0 no match, -1 a capture too long. */
static int match_pattern(const char *pattern, const char *path, mwl_http_request *req)
{
    if (path[0] != '/' || pattern[0] != '/')
        return 0;
    const char *pp = pattern, *qp = path;
    size_t captured = 0;
    for (;;) {
        const char *ps, *qs;
        size_t pn, qn;
        bool more_p = next_segment(&pp, &ps, &pn);
        bool more_q = next_segment(&qp, &qs, &qn);
        if (!more_p || !more_q)
            return more_p == more_q ? 1 : 0;
        if (pn == 2 && memcmp(ps, "{}", 2) == 0) {
            /* "/mwlitems//x" names nothing: an empty segment is no value. */
            if (qn == 0 || captured == MWL_HTTP_PARAMS_MAX)
                return 0;
            if (qn > MWL_HTTP_PARAM_MAX)
                return -1;
            if (req) {
                memcpy(req->params[captured], qs, qn);
                req->params[captured][qn] = '\0';
                req->param_count = captured + 1;
            }
            captured++;
        } else if (pn != qn || memcmp(ps, qs, pn) != 0) {
            return 0;
        }
    }
}

const mwl_http_route *mwl_http_route_any(const mwl_http_route *routes, size_t count, const char *path)
{
    const mwl_http_route *best = NULL;
    for (size_t i = 0; i < count; i++)
        if (match_pattern(routes[i].pattern, path, NULL) != 0 && (!best || routes[i].role < best->role))
            best = &routes[i];
    return best;
}

int mwl_http_route_find(const mwl_http_route *routes, size_t count, const char *method, const char *path,
                        const mwl_http_route **route, mwl_http_request *req, char *allow, size_t cap)
{
    *route = NULL;
    if (cap)
        allow[0] = '\0';
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool known = false, too_long = false;
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        int m = match_pattern(routes[i].pattern, path, NULL);
        if (m < 0)
            too_long = true;
        if (m <= 0)
            continue;
        known = true;
        if (strcmp(routes[i].method, want) == 0) {
            req->param_count = 0;
            (void)match_pattern(routes[i].pattern, path, req);
            *route = &routes[i];
            return MWL_OK;
        }
        /* Allow lists each method once; GET brings HEAD with it. */
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen = seen || (strcmp(routes[k].method, routes[i].method) == 0 &&
                            match_pattern(routes[k].pattern, path, NULL) > 0);
        if (seen)
            continue;
        int n = snprintf(allow + len, cap > len ? cap - len : 0, "%s%s%s", len ? ", " : "", routes[i].method,
                         strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
        if (n > 0 && (size_t)n < cap - len)
            len += (size_t)n;
    }
    if (known)
        return MWL_E_UNSUPPORTED;
    return too_long ? MWL_E_LIMIT : MWL_E_NOTFOUND;
}

void mwl_http_error(mwl_http_response *res, unsigned status, const char *attribute, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    res->status = status;
    res->content_type = "application/json";
    res->body.len = 0;
    mwl_wbuf_put(&res->body, "{\"error\":", 9);
    (void)mwl_json_put_string(&res->body, msg, strlen(msg));
    if (attribute && attribute[0]) {
        mwl_wbuf_put(&res->body, ",\"attribute\":", 13);
        (void)mwl_json_put_string(&res->body, attribute, strlen(attribute));
    }
    char tail[32];
    int n = snprintf(tail, sizeof tail, ",\"status\":%u}\n", status);
    mwl_wbuf_put(&res->body, tail, (size_t)n);
}
