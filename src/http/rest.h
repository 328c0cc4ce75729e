/* The REST worklist API (issue 13; MWL-RS conventions, docs/http.md):
 * /mwlitems search and count with C-FIND's own matching, and create,
 * read, replace, delete and status change of one Scheduled Procedure Step
 * by its natural key (Study Instance UID, SPS ID). Private to src/http/;
 * the handlers see router.h's plain request and response, never
 * libmicrohttpd. */
#ifndef MWL_HTTP_REST_H
#define MWL_HTTP_REST_H

#include <stdint.h>

#include "http/router.h"
#include "service/worklist.h"

/* Search results a request may ask for at once (limit), and the default. */
#define MWL_REST_LIMIT_MAX 10000
#define MWL_REST_LIMIT_DEFAULT 100

/* The REST state: the worklist service (searches and reads through its
 * pool) and one write connection to its database, opened at the first
 * write and shared by the request threads under a lock (SQLite has one
 * writer at a time anyway). MWL_OK or MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_rest_new(mwl_worklist_service *wl, mwl_rest **out);
void mwl_rest_free(mwl_rest *rest); /* NULL-safe */
/* Writes to the worklist answered 2xx so far: a stamp that tells a cache
 * of what the store holds (the items-stored gauge) that it may be stale. */
uint64_t mwl_rest_changes(mwl_rest *rest);

void mwl_rest_search(const mwl_http_request *req, mwl_http_response *res); /* GET /mwlitems */
void mwl_rest_count(const mwl_http_request *req, mwl_http_response *res);  /* GET /mwlitems/count */
/* GET /modality-scheduled-procedure-steps: the same search under PS3.18
 * ch. 14's rules (comma UID lists, Warning headers, 204, Accept with
 * DICOM JSON, Native DICOM Model XML and multipart/related; 406). */
void mwl_rest_std_search(const mwl_http_request *req, mwl_http_response *res);
void mwl_rest_create(const mwl_http_request *req, mwl_http_response *res); /* POST /mwlitems */
void mwl_rest_get(const mwl_http_request *req, mwl_http_response *res);    /* GET /mwlitems/{}/{} */
void mwl_rest_put(const mwl_http_request *req, mwl_http_response *res);    /* PUT /mwlitems/{}/{} */
void mwl_rest_delete(const mwl_http_request *req, mwl_http_response *res); /* DELETE /mwlitems/{}/{} */
void mwl_rest_status(const mwl_http_request *req, mwl_http_response *res); /* POST .../status/{} */

#endif
