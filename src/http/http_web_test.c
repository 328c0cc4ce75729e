/* The embedded page (web.h): every file is there, under the path the page
 * asks for, with its content type; ETag revalidation; and the page refers
 * to nothing outside this server (the CSP would block it in a browser, so
 * catch it here, where the message says which file). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "http/web.h"

static bool contains(const mwl_http_asset *a, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= a->len; i++)
        if (memcmp(a->data + i, needle, n) == 0)
            return true;
    return false;
}

static void test_assets(void)
{
    const mwl_http_asset *page = mwl_http_web_find("/");
    CHECK(page != NULL);
    CHECK(page == mwl_http_web_find("/index.html"));
    CHECK_EQ_STR(mwl_http_web_content_type(page), "text/html; charset=utf-8");
    CHECK(contains(page, "src=\"/app.js\""));
    CHECK(contains(page, "href=\"/app.css\""));
    const mwl_http_asset *js = mwl_http_web_find("/app.js");
    CHECK(js != NULL && js->len > 0);
    CHECK_EQ_STR(mwl_http_web_content_type(js), "text/javascript; charset=utf-8");
    const mwl_http_asset *css = mwl_http_web_find("/app.css");
    CHECK(css != NULL);
    CHECK_EQ_STR(mwl_http_web_content_type(css), "text/css; charset=utf-8");
    CHECK(mwl_http_web_find("/nothing.js") == NULL);
    CHECK(mwl_http_web_find("/app.js/") == NULL);
    CHECK(mwl_http_web_find("") == NULL);
    for (size_t i = 0; i < mwl_http_web_asset_count; i++) {
        const mwl_http_asset *a = &mwl_http_web_assets[i];
        CHECK(a->data[a->len] == 0); /* the generator's terminator, past the content */
        CHECK(!contains(a, "http://") && !contains(a, "https://") && !contains(a, "//cdn"));
        CHECK(a->etag[0] == '"' && strlen(a->etag) == 34);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(a->etag, mwl_http_web_assets[k].etag) != 0);
    }
}

static void test_etag(void)
{
    const mwl_http_asset *a = mwl_http_web_find("/app.js");
    char list[128];
    CHECK(!mwl_http_web_not_modified(a, NULL));
    CHECK(!mwl_http_web_not_modified(a, ""));
    CHECK(!mwl_http_web_not_modified(a, "\"0123\""));
    CHECK(mwl_http_web_not_modified(a, a->etag));
    CHECK(mwl_http_web_not_modified(a, "*"));
    snprintf(list, sizeof list, "\"x\", W/%s", a->etag);
    CHECK(mwl_http_web_not_modified(a, list));
    snprintf(list, sizeof list, "%.20s", a->etag); /* a prefix is another tag */
    CHECK(!mwl_http_web_not_modified(a, list));
    CHECK(!mwl_http_web_not_modified(a, "W"));
    CHECK(!mwl_http_web_not_modified(a, "W/"));
}

/* The route handler: 200 with the file and its headers, 304 when the
 * browser's copy is current, 404 for a path that names no file. */
static void test_serve(void)
{
    mwl_http_request req;
    mwl_http_response res;
    memset(&req, 0, sizeof req);
    memset(&res, 0, sizeof res);
    mwl_wbuf_init(&res.body, NULL);
    req.method = "GET";
    req.path = "/app.css";
    mwl_http_web_serve(&req, &res);
    const mwl_http_asset *a = mwl_http_web_find("/app.css");
    CHECK_EQ_INT(res.status, 200);
    CHECK_EQ_STR(res.content_type, "text/css; charset=utf-8");
    CHECK_EQ_MEM(res.body.data, res.body.len, a->data, a->len);
    CHECK_EQ_STR(res.headers[0][0], "ETag");
    CHECK_EQ_STR(res.headers[0][1], a->etag);
    CHECK_EQ_STR(res.headers[1][1], "no-cache");
    CHECK(strstr(res.headers[2][1], "default-src 'self'") != NULL);
    mwl_wbuf_clear(&res.body);

    memset(&res, 0, sizeof res);
    mwl_wbuf_init(&res.body, NULL);
    req.if_none_match = a->etag;
    mwl_http_web_serve(&req, &res);
    CHECK_EQ_INT(res.status, 304);
    CHECK_EQ_INT(res.body.len, 0);
    CHECK_EQ_STR(res.headers[0][1], a->etag);
    mwl_wbuf_clear(&res.body);

    memset(&res, 0, sizeof res);
    mwl_wbuf_init(&res.body, NULL);
    req.if_none_match = NULL;
    req.path = "/missing.js";
    mwl_http_web_serve(&req, &res);
    CHECK_EQ_INT(res.status, 404);
    mwl_wbuf_clear(&res.body);
}

int main(void)
{
    RUN_TEST(test_assets);
    RUN_TEST(test_etag);
    RUN_TEST(test_serve);
    return check_report("http_web_test");
}
