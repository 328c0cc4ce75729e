/* The router (router.h): patterns with {} segments, 404 vs 405 with the
 * Allow list, HEAD as GET, captures and their bounds. */
#include <string.h>

#include "check.h"
#include "http/router.h"

static void handler(const mwl_http_request *req, mwl_http_response *res)
{
    (void)req;
    res->status = 200;
}

static const mwl_http_route routes[] = {
    {"GET", "/healthz", MWL_HTTP_ROLE_NONE, false, handler},
    {"GET", "/mwlitems", MWL_HTTP_ROLE_READ, false, handler},
    {"POST", "/mwlitems", MWL_HTTP_ROLE_WRITE, true, handler},
    {"GET", "/mwlitems/count", MWL_HTTP_ROLE_READ, false, handler},
    {"GET", "/mwlitems/{}/{}", MWL_HTTP_ROLE_READ, false, handler},
    {"PUT", "/mwlitems/{}/{}", MWL_HTTP_ROLE_WRITE, true, handler},
    {"DELETE", "/mwlitems/{}/{}", MWL_HTTP_ROLE_WRITE, false, handler},
    {"POST", "/mwlitems/{}/{}/status/{}", MWL_HTTP_ROLE_WRITE, false, handler},
};
enum { N = sizeof routes / sizeof routes[0] };

static int find(const char *method, const char *path, const mwl_http_route **r, mwl_http_request *req,
                char *allow)
{
    memset(req, 0, sizeof *req);
    return mwl_http_route_find(routes, N, method, path, r, req, allow, 64);
}

int main(void)
{
    const mwl_http_route *r;
    mwl_http_request req;
    char allow[64];
    CHECK_EQ_INT(find("GET", "/healthz", &r, &req, allow), MWL_OK);
    CHECK(r == &routes[0]);
    CHECK_EQ_INT(find("HEAD", "/mwlitems", &r, &req, allow), MWL_OK);
    CHECK(r == &routes[1]);
    CHECK_EQ_INT(find("POST", "/mwlitems", &r, &req, allow), MWL_OK);
    CHECK(r == &routes[2] && r->takes_body);
    CHECK_EQ_INT(find("GET", "/mwlitems/count", &r, &req, allow), MWL_OK);
    CHECK(r == &routes[3]);
    CHECK_EQ_INT(find("PUT", "/mwlitems/1.2.3/SPS1", &r, &req, allow), MWL_OK);
    CHECK(r == &routes[5]);
    CHECK_EQ_INT(req.param_count, 2);
    CHECK(strcmp(req.params[0], "1.2.3") == 0 && strcmp(req.params[1], "SPS1") == 0);
    CHECK_EQ_INT(find("POST", "/mwlitems/1.2.3/SPS1/status/STARTED", &r, &req, allow), MWL_OK);
    CHECK_EQ_INT(req.param_count, 3);
    CHECK(strcmp(req.params[2], "STARTED") == 0);
    /* Known path, other method: 405 with every method of the path once. */
    CHECK_EQ_INT(find("PATCH", "/mwlitems/1.2.3/SPS1", &r, &req, allow), MWL_E_UNSUPPORTED);
    CHECK(strcmp(allow, "GET, HEAD, PUT, DELETE") == 0);
    CHECK_EQ_INT(find("DELETE", "/mwlitems", &r, &req, allow), MWL_E_UNSUPPORTED);
    CHECK(strcmp(allow, "GET, HEAD, POST") == 0);
    CHECK_EQ_INT(find("POST", "/healthz", &r, &req, allow), MWL_E_UNSUPPORTED);
    CHECK(strcmp(allow, "GET, HEAD") == 0);
    /* Unknown: wrong depth, empty segments, no leading slash, prefixes. */
    const char *unknown[] = {"/",
                             "",
                             "mwlitems",
                             "/mwlitems/",
                             "/mwlitems//SPS1",
                             "/mwlitems/a/b/c",
                             "/mwlitems/a/b/status",
                             "/mwlitemsx",
                             "/healthz/x",
                             "/mwlitems/a/b/state/X"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK_EQ_INT(find("GET", unknown[i], &r, &req, allow), MWL_E_NOTFOUND);
    /* A segment longer than a capture may hold is refused, not cut. */
    char longpath[MWL_HTTP_PARAM_MAX + 32] = "/mwlitems/";
    memset(longpath + 10, 'x', MWL_HTTP_PARAM_MAX + 1);
    strcpy(longpath + 10 + MWL_HTTP_PARAM_MAX + 1, "/S");
    CHECK_EQ_INT(find("GET", longpath, &r, &req, allow), MWL_E_LIMIT);
    /* The least role of a path decides whether a token is needed. */
    CHECK(mwl_http_route_any(routes, N, "/healthz")->role == MWL_HTTP_ROLE_NONE);
    CHECK(mwl_http_route_any(routes, N, "/mwlitems")->role == MWL_HTTP_ROLE_READ);
    CHECK(mwl_http_route_any(routes, N, "/nothing") == NULL);
    /* Error bodies are JSON with the attribute when given. */
    mwl_http_response res;
    memset(&res, 0, sizeof res);
    mwl_wbuf_init(&res.body, NULL);
    mwl_http_error(&res, 400, "PatientID", "bad \"%s\"", "x");
    mwl_wbuf_put(&res.body, "", 1);
    CHECK(strcmp((const char *)res.body.data,
                 "{\"error\":\"bad \\\"x\\\"\",\"attribute\":\"PatientID\",\"status\":400}\n") == 0);
    mwl_wbuf_clear(&res.body);
    return check_report("router_test");
}
