/* The Modality Worklist service (PS3.4 Annex K) for the server: a C-FIND
 * provider (server.h) where the store narrows the candidates (store/), the
 * worklist matcher decides and builds each response (worklist/), and the
 * response's character set is chosen for the SCU. Its settings are its own
 * configuration table, so `mwl serve` and a library caller get the same
 * keys, defaults and checks. */
#ifndef MWL_SERVICE_WORKLIST_H
#define MWL_SERVICE_WORKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/mem.h"
#include "server/server.h"
#include "store/store.h"
#include "worklist/worklist.h"

#define MWL_WORKLIST_PATH_MAX 1024

typedef struct mwl_worklist_config {
    char db[MWL_WORKLIST_PATH_MAX]; /* db: the worklist store (a file path for SQLite) */
    bool pn_case_sensitive;         /* pn-case-sensitive */
    bool pn_accent_insensitive;     /* pn-accent-insensitive */
    /* filter-by-calling-aet: Scheduled Station AE Title universal or absent
     * in the query: match only items scheduled for the calling AE title
     * (modalities that leave the key empty). */
    bool filter_by_calling_aet;
    uint32_t max_matches;          /* max-matches: 0 = unlimited; reached: final A700 with a comment */
    uint32_t max_find_duration_ms; /* max-find-duration: 0 = unlimited; reached: final A700 */
    /* response-charset: "auto": the item's own character set when the SCU
     * can read it (its query declared the same set, or the response is
     * plain ASCII), otherwise converted to the query's set, or ISO_IR 192
     * when the query's set cannot hold a character (or declared none);
     * never lossy. "item": always as stored. "utf8": always ISO_IR 192
     * (unless plain ASCII). */
    char response_charset[8];
    /* per-called-aet: only items imported into the called AE title's
     * worklist (mwl import --per-called-aet), as DCMTK's wlmscpfs serves one
     * folder per AE title. */
    bool per_called_aet;
    /* hide-statuses: comma-separated SPS Status values (CS, at most
     * MWL_FILTER_EXCLUDE_MAX) whose steps a C-FIND does not return unless
     * its identifier has SPS Status (0040,0020) with a value (then the
     * usual matching decides); "" = hide none. */
    char hide_statuses[256];
    /* Expiry, run by mwl_worklist_service_start_expiry at start and every
     * expire-interval: steps scheduled more than expire-after-days days
     * before today (local date; 0 = never), and steps whose status is one
     * of expire-statuses since more than expire-statuses-after-hours hours
     * (0 = never). */
    uint32_t expire_after_days;
    uint32_t expire_statuses_after_hours;
    char expire_statuses[256];
    uint32_t expire_interval_ms; /* expire-interval */
} mwl_worklist_config;

/* The keys above, their defaults, bounds and help. */
const mwl_config_table *mwl_worklist_config_table(void);
void mwl_worklist_config_init(mwl_worklist_config *cfg);

/* The checks mwl_worklist_service_new and _reconfigure make: MWL_OK or
 * MWL_E_INVALID with diag naming the key. */
MWL_MUST_CHECK int mwl_worklist_config_check(const mwl_worklist_config *cfg, mwl_diag *diag);

typedef struct mwl_worklist_service mwl_worklist_service;

/* Checks the config (as the parser would: a config built by hand gets the
 * same checks), creates or migrates the database and opens it read-only
 * once, so that a foreign or broken database is reported at start-up, not
 * at the first C-FIND. Store connections are pooled: a C-FIND step borrows
 * one and gives it back when the step ends, so there are never more than
 * the server's workers. `mem` NULL = default. Returns MWL_OK,
 * MWL_E_INVALID (config: diag names the key), MWL_E_STORE (diag),
 * MWL_E_UNSUPPORTED, MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_worklist_service_new(const mwl_worklist_config *cfg, const mwl_mem *mem,
                                            mwl_worklist_service **out, mwl_diag *diag);
/* Replaces the options (the SIGHUP reload): C-FINDs that begin afterwards
 * use them, those running keep theirs. `db` changes only with a restart
 * (kept, with a warning). MWL_OK or MWL_E_INVALID (diag names the key; the
 * running options stay). Thread-safe. */
MWL_MUST_CHECK int mwl_worklist_service_reconfigure(mwl_worklist_service *svc, const mwl_worklist_config *cfg,
                                                    mwl_diag *diag);
/* The C-FIND provider to put in the server's service table
 * ({&mwl_scp_find, MWL_UID_ModalityWorklistInformationModelFind, provider}).
 * Valid until mwl_worklist_service_free. */
const mwl_find_provider *mwl_worklist_service_provider(const mwl_worklist_service *svc);
/* Starts the expiry of the config's expire-* keys on a thread of its own:
 * one run now, then one every expire-interval, each with the options then
 * in force (a reload applies at the next run), each logging one line when
 * it removed or was asked to remove anything. mwl_worklist_service_free
 * stops it (waiting for a run in progress). Returns MWL_OK, MWL_E_INVALID
 * (already started), MWL_E_NOMEM (no thread). */
MWL_MUST_CHECK int mwl_worklist_service_start_expiry(mwl_worklist_service *svc, mwl_diag *diag);

/* What one expiry run removes: with by_date, steps whose SPS Start Date
 * is before the local date of `now_unix_ms` minus `days` days; with
 * by_status, steps whose status is one of `statuses` (comma-separated CS
 * values) and has been since before `now_unix_ms` minus `hours` hours (0 =
 * whenever). */
typedef struct mwl_worklist_expiry {
    bool by_date;
    uint32_t days;
    bool by_status;
    uint32_t hours;
    const char *statuses;
} mwl_worklist_expiry;

typedef struct mwl_worklist_expiry_result {
    size_t scheduled;         /* removed as scheduled too long ago */
    size_t finished;          /* removed as finished too long ago */
    char before_date[9];      /* YYYYMMDD, "" when days = 0 */
    char finished_before[24]; /* local "YYYY-MM-DD HH:MM", "" when hours = 0 */
} mwl_worklist_expiry_result;

/* One expiry run on `store` (a transaction per part). The line `mwl serve`
 * logs is mwl_worklist_expiry_summary's. Returns MWL_OK, MWL_E_INVALID (a
 * bad statuses list, read-only store), MWL_E_STORE. */
MWL_MUST_CHECK int mwl_worklist_expire(mwl_store *store, const mwl_worklist_expiry *e, int64_t now_unix_ms,
                                       mwl_worklist_expiry_result *out, mwl_diag *diag);
/* "expire: removed N steps scheduled before YYYYMMDD, M finished before
 * YYYY-MM-DD HH:MM" (the parts that ran), or "" when neither ran. */
void mwl_worklist_expiry_summary(const mwl_worklist_expiry *e, const mwl_worklist_expiry_result *r, char *out,
                                 size_t cap);
/* Splits a comma-separated list of CS values (blanks around items
 * ignored) into `buf` (a copy), `items` pointing into it. "" = none.
 * MWL_OK, or MWL_E_INVALID (an empty item, a value that is no CS value,
 * more than `cap` items, or longer than `buf`). */
MWL_MUST_CHECK int mwl_worklist_status_list(const char *list, char *buf, size_t buf_size, const char **items,
                                            size_t cap, size_t *count, mwl_diag *diag);

/* ---- the same search for other front ends (REST) ------------------------ */

/* Called once per match of mwl_worklist_service_search with the response a
 * C-FIND would send for it (`response`, valid during the call). Return
 * MWL_OK for the next match, MWL_AGAIN to stop (enough matches), or a
 * negative MWL_E_* to stop with that error. */
typedef int (*mwl_worklist_match_fn)(void *user, const mwl_ds *response);

/* Runs `identifier` (a C-FIND identifier, decoded) against the store
 * exactly as a C-FIND would -- the same parse, store narrowing,
 * hide-statuses, matcher and response projection and character set -- and
 * calls `fn` per match. What a front end without DIMSE differs in: no
 * calling AE title (filter-by-calling-aet does not apply), no called AE
 * title (per-called-aet does not filter: every worklist is searched),
 * and max-matches does not apply (a front end that pages has its own
 * limit); max-find-duration does. On the calling thread, borrowing one
 * pooled read-only connection for the whole run.
 * Returns MWL_OK with `final` set as a C-FIND's final status would be:
 * 0000, or a Failure (A900/C000 for an identifier the parser refused,
 * with the comment and the offending element; A700 when
 * max-find-duration ran out); or the first negative MWL_E_* of the store
 * or of `fn` (diag). */
MWL_MUST_CHECK int mwl_worklist_service_search(mwl_worklist_service *svc, const mwl_ds *identifier,
                                               mwl_worklist_match_fn fn, void *user,
                                               mwl_find_status *final /* out */, mwl_diag *diag);

/* The stored item `ref` names, through a pooled read-only connection:
 * mwl_store_get's contract. */
MWL_MUST_CHECK int mwl_worklist_service_get(mwl_worklist_service *svc, const mwl_sps_ref *ref,
                                            mwl_arena *arena, mwl_ds **out, mwl_diag *diag);

/* The db key the service was started with (the store writers open). */
const char *mwl_worklist_service_db(const mwl_worklist_service *svc);

/* Store connections opened so far (for tests: bounded by concurrency). */
size_t mwl_worklist_service_connections(const mwl_worklist_service *svc);
/* After the server is freed. NULL-safe. */
void mwl_worklist_service_free(mwl_worklist_service *svc);

#endif
