/* Fuzz target: the REST searches' query parameters and Accept header,
 * which come from outside as they are (issue 13: "never a 500 for bad
 * input"). The input is a route selector byte ('0' GET /mwlitems, '1' GET
 * /mwlitems/count, anything else GET /modality-scheduled-procedure-steps),
 * then lines (LF or NUL ends one): the Accept header ("" = none), then up
 * to 64 query arguments as key=value (no '=': a key without a value), as
 * libmicrohttpd would hand them over decoded. The handlers run against a
 * worklist service on a small database of items in three character sets
 * (made once, in a temporary directory removed at exit).
 * Invariants (abort on failure): the status is one a client's input may
 * cause (200, 204, 400, 406; never 5xx); an error has a JSON body with
 * "status" and "error"; a 200 JSON answer is valid JSON: an array of
 * objects for a search, {"count": N} for a count; a 204 has no body; a
 * multipart answer has the boundary its Content-Type names, and ends with
 * it. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/json.h"
#include "http/rest.h"
#include "service/worklist.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The stored items, as DICOM JSON: Latin-1 with two SPS, ISO 2022
 * Japanese, UTF-8 with an empty type 2 key and a sequence. */
static const char *const ITEMS[] = {
    "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR "
    "100\"]},\"00080050\":{\"vr\":\"SH\",\"Value\":[\"A1\"]},"
    "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"M\xC3\xBCller^Hans\"}]},"
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"P1\"]},\"00100030\":{\"vr\":\"DA\",\"Value\":[\"19700101\"]},"
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.826.0.1.3680043.10.1\"]},"
    "\"00401001\":{\"vr\":\"SH\",\"Value\":[\"RP1\"]},"
    "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"CT\"]},"
    "\"00400001\":{\"vr\":\"AE\",\"Value\":[\"CT01\"]},\"00400002\":{\"vr\":\"DA\",\"Value\":[\"20261205\"]},"
    "\"00400003\":{\"vr\":\"TM\",\"Value\":[\"0930\"]},\"00400009\":{\"vr\":\"SH\",\"Value\":[\"S1\"]},"
    "\"00400020\":{\"vr\":\"CS\",\"Value\":[\"SCHEDULED\"]}},"
    "{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"MR\"]},\"00400001\":{\"vr\":\"AE\",\"Value\":[\"MR01\"]},"
    "\"00400002\":{\"vr\":\"DA\",\"Value\":[\"20261206\"]},\"00400009\":{\"vr\":\"SH\",\"Value\":[\"S2\"]}}]}"
    "}",
    "{\"00080005\":{\"vr\":\"CS\",\"Value\":[null,\"ISO 2022 IR 87\"]},"
    "\"00080050\":{\"vr\":\"SH\",\"Value\":[\"J1\"]},"
    "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Yamada^Tarou\",\"Ideographic\":"
    "\"\xE5\xB1\xB1\xE7\x94\xB0^\xE5\xA4\xAA\xE9\x83\x8E\"}]},"
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"J1\"]},"
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.826.0.1.3680043.10.2\"]},"
    "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"US\"]},"
    "\"00400001\":{\"vr\":\"AE\",\"Value\":[\"US01\"]},\"00400002\":{\"vr\":\"DA\",\"Value\":[\"20261205\"]},"
    "\"00400009\":{\"vr\":\"SH\",\"Value\":[\"S3\"]}}]}}",
    "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]},\"00080050\":{\"vr\":\"SH\"},"
    "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"O'Brien^Se\xC3\xA1n\"}]},"
    "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"U1\"]},"
    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.826.0.1.3680043.10.3\"]},"
    "\"00321064\":{\"vr\":\"SQ\",\"Value\":[{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"X1\"]},"
    "\"00080102\":{\"vr\":\"SH\",\"Value\":[\"99L\"]},\"00080104\":{\"vr\":\"LO\",\"Value\":[\"Chest\"]}}]},"
    "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"CT\"]},"
    "\"00400001\":{\"vr\":\"AE\",\"Value\":[\"CT01\"]},\"00400002\":{\"vr\":\"DA\",\"Value\":[\"20261205\"]},"
    "\"00400009\":{\"vr\":\"SH\",\"Value\":[\"S4\"]},\"00400020\":{\"vr\":\"CS\",\"Value\":[\"CANCELED\"]}}]}"
    "}",
};

static char dir[64];
static char db[128];
static mwl_worklist_service *wl;
static mwl_rest *rest;

static void clean_up(void)
{
    mwl_rest_free(rest);
    mwl_worklist_service_free(wl);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", db, suffixes[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void set_up(void)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz_rest.XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(db, sizeof db, "%s/wl.db", dir);
    mwl_diag d;
    mwl_store *store = NULL;
    if (mwl_store_open(db, NULL, &store, &d) != MWL_OK)
        abort();
    for (size_t i = 0; i < sizeof ITEMS / sizeof ITEMS[0]; i++) {
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_json_decode_options opt;
        mwl_json_decode_options_init(&opt);
        mwl_ds *item = NULL;
        if (mwl_ds_decode_json(ITEMS[i], strlen(ITEMS[i]), &arena, &opt, &item, &d) != MWL_OK ||
            mwl_store_put_item(store, item, "fuzz", NULL, NULL, &d) != MWL_OK) {
            fprintf(stderr, "fuzz_rest: item %zu: %s\n", i, d.msg);
            abort();
        }
        mwl_arena_clear(&arena);
    }
    mwl_store_free(store);
    mwl_worklist_config cfg;
    mwl_worklist_config_init(&cfg);
    snprintf(cfg.db, sizeof cfg.db, "%s", db);
    if (mwl_worklist_service_new(&cfg, NULL, &wl, &d) != MWL_OK || mwl_rest_new(wl, &rest) != MWL_OK)
        abort();
    atexit(clean_up);
}

/* The next line of the input (up to LF or NUL) as a C string in `out`. */
static bool next_line(const uint8_t **p, const uint8_t *end, char *out, size_t cap)
{
    if (*p >= end)
        return false;
    size_t n = 0;
    while (*p < end && **p != '\n' && **p != 0) {
        if (n + 1 < cap)
            out[n++] = (char)**p;
        (*p)++;
    }
    out[n] = '\0';
    if (*p < end)
        (*p)++; /* the separator */
    return true;
}

static void check_error_body(const mwl_http_response *res)
{
    json_error_t err;
    json_t *j = json_loadb((const char *)res->body.data, res->body.len, 0, &err);
    if (!j || json_integer_value(json_object_get(j, "status")) != (json_int_t)res->status ||
        !json_is_string(json_object_get(j, "error"))) {
        fprintf(stderr, "error %u without its JSON body: %.*s\n", res->status, (int)res->body.len,
                (const char *)res->body.data);
        abort();
    }
    json_decref(j);
}

static void check_json_answer(const mwl_http_response *res, bool count)
{
    json_error_t err;
    json_t *j = json_loadb((const char *)res->body.data, res->body.len, 0, &err);
    bool ok = j && (count ? json_is_integer(json_object_get(j, "count")) : json_is_array(j));
    if (ok && !count) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) ok = ok && json_is_object(v);
    }
    if (!ok) {
        fprintf(stderr, "200 answer is not the JSON it should be (%s): %.*s\n", j ? "shape" : err.text,
                (int)(res->body.len > 2000 ? 2000 : res->body.len), (const char *)res->body.data);
        abort();
    }
    json_decref(j);
}

static void check_multipart(const mwl_http_response *res)
{
    const char *b = strstr(res->content_type, "boundary=");
    if (!b)
        abort();
    char open[96], close[100];
    snprintf(open, sizeof open, "--%s\r\n", b + 9);
    snprintf(close, sizeof close, "--%s--\r\n", b + 9);
    size_t lo = strlen(open), lc = strlen(close);
    if (res->body.len < lo + lc || memcmp(res->body.data, open, lo) != 0 ||
        memcmp(res->body.data + res->body.len - lc, close, lc) != 0) {
        fprintf(stderr, "multipart answer does not use its boundary %s\n", b + 9);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!wl)
        set_up();
    if (size == 0)
        return 0;
    const uint8_t *p = data, *end = data + size;
    char accept[512];
    (void)next_line(&p, end, accept, sizeof accept); /* the selector's line */
    if (!next_line(&p, end, accept, sizeof accept))
        accept[0] = '\0';
    static char lines[MWL_HTTP_ARGS_MAX][1024];
    mwl_http_arg args[MWL_HTTP_ARGS_MAX];
    size_t n = 0;
    while (n < MWL_HTTP_ARGS_MAX && next_line(&p, end, lines[n], sizeof lines[n])) {
        char *eq = strchr(lines[n], '=');
        if (eq)
            *eq = '\0';
        args[n].key = lines[n];
        args[n].value = eq ? eq + 1 : NULL;
        n++;
    }
    mwl_http_request req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.args = args;
    req.arg_count = n;
    req.accept = accept[0] ? accept : NULL;
    req.host = "localhost";
    req.peer = "127.0.0.1:40000";
    req.rest = rest;
    mwl_http_response res;
    memset(&res, 0, sizeof res);
    mwl_wbuf_init(&res.body, NULL);
    int route = data[0] == '0' ? 0 : data[0] == '1' ? 1 : 2;
    if (route == 0) {
        req.path = "/mwlitems";
        mwl_rest_search(&req, &res);
    } else if (route == 1) {
        req.path = "/mwlitems/count";
        mwl_rest_count(&req, &res);
    } else {
        req.path = "/modality-scheduled-procedure-steps";
        mwl_rest_std_search(&req, &res);
    }
    switch (res.status) {
    case 200:
        if (!res.content_type)
            abort();
        if (strncmp(res.content_type, "multipart/related", 17) == 0)
            check_multipart(&res);
        else
            check_json_answer(&res, route == 1);
        break;
    case 204:
        if (route != 2 || res.body.len != 0)
            abort();
        break;
    case 400:
    case 406: check_error_body(&res); break;
    default: fprintf(stderr, "status %u for client input\n", res.status); abort();
    }
    mwl_wbuf_clear(&res.body);
    return 0;
}
