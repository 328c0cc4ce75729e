/* The observability endpoints of the HTTP listener (issue 13): the recent
 * C-FIND log (GET /queries), the explain engine on a stored item (GET
 * /explain), the OpenAPI document (GET /openapi.json) and the metrics
 * beyond the server's counters (docs/http.md). */
#ifndef MWL_HTTP_OBSERVE_H
#define MWL_HTTP_OBSERVE_H

#include "http/http.h"
#include "worklist/worklist.h"

/* What /explain and the items-stored gauge read: the worklist database
 * (`db`, opened read-only for each use, so no connection is held between
 * requests) and the name matching options the C-FIND path uses. Without
 * it /explain answers 503 and the gauge is absent. Call before the server
 * runs, or on SIGHUP (thread-safe). MWL_OK, MWL_E_INVALID (db too long). */
MWL_MUST_CHECK int mwl_http_set_observe(mwl_http *http, const char *db, const mwl_match_opts *match);

#endif
