/* The Modality Worklist C-FIND provider for the server: SQLite narrows the
 * candidates (store/), the worklist matcher decides and builds each response
 * (worklist/), and the response's character set is chosen for the SCU. */
#ifndef MWL_SERVER_WORKLIST_PROVIDER_H
#define MWL_SERVER_WORKLIST_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "server/server.h"
#include "worklist/worklist.h"

typedef enum mwl_response_charset {
    /* The item's own character set when the SCU can read it (its query
     * declared the same set, or the response is plain ASCII); otherwise
     * converted to the query's character set, or ISO_IR 192 when the query's
     * set cannot hold a character (or declared none). Never lossy. */
    MWL_RESPONSE_CHARSET_AUTO = 0,
    MWL_RESPONSE_CHARSET_ITEM, /* always as stored */
    MWL_RESPONSE_CHARSET_UTF8  /* always ISO_IR 192 (unless plain ASCII) */
} mwl_response_charset;

typedef struct mwl_worklist_options {
    const char *db_path;
    mwl_match_opts match;
    /* Scheduled Station AE Title universal or absent in the query: match
     * only items scheduled for the calling AE title (modalities that leave
     * the key empty). */
    bool filter_by_calling_aet;
    size_t max_matches; /* 0 = unlimited; reached: final A700 with a comment */
    /* Only items imported into the called AE title's worklist (mwl import
     * --per-called-aet), as DCMTK's wlmscpfs serves one folder per AE. */
    bool per_called_aet;
    mwl_response_charset response_charset;
} mwl_worklist_options;

typedef struct mwl_worklist_provider mwl_worklist_provider;

/* Checks that the database opens (read-only) and fills *provider for
 * mwl_server_new. Store connections are pooled: a C-FIND borrows one for its
 * duration. Returns MWL_OK, MWL_E_STORE (diag), MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_worklist_provider_new(const mwl_worklist_options *opts, mwl_worklist_provider **out,
                                             mwl_find_provider *provider, mwl_diag *diag);
/* After the server is freed. NULL-safe. */
void mwl_worklist_provider_free(mwl_worklist_provider *p);

#endif
