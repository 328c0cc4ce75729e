/* The DICOM server: one non-blocking event loop (net) that owns every socket
 * and drives the sans-IO Upper Layer (ul) and DIMSE (dimse) cores for each
 * association, plus a small worker pool for C-FIND work. It answers C-ECHO
 * (Verification, PS3.4 Annex A) on the loop thread and streams C-FIND
 * (Modality Worklist, PS3.4 Annex K) through a provider interface whose
 * steps run on the workers. The model and its bounds are described in
 * docs/architecture.md ("Concurrency and transport", "Server").
 *
 * Conventions: functions return MWL_OK or a negative MWL_E_* (base/status.h);
 * protocol outcomes (DIMSE statuses, A-ASSOCIATE-RJ reasons) are data. */
#ifndef MWL_SERVER_SERVER_H
#define MWL_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/status.h"
#include "dicom/codec.h"
#include "dicom/dataset.h"
#include "net/net.h"
#include "ul/pdu.h"

/* ======================================================================
 * Configuration (STYLE.md §12.11): every key is one row of a table (name,
 * type, default, bounds, field), and the same table serves the config file,
 * the command line and `mwl serve --help`.
 * ====================================================================== */

#define MWL_SERVER_PATH_MAX 1024
/* Most calling AE titles in the allow-list. */
#define MWL_SERVER_ALLOW_MAX 64

typedef struct mwl_server_config {
    uint32_t port;                       /* port: 0 = let the kernel pick */
    char bind[MWL_NET_HOST_MAX];         /* bind: "" = all addresses */
    char ae_title[MWL_AE_TITLE_MAX + 1]; /* aet: our AE title */
    bool strict_called_aet;              /* strict-called-aet: (1,1,7) on a mismatch */
    char calling_aet_allow[MWL_SERVER_ALLOW_MAX][MWL_AE_TITLE_MAX + 1]; /* calling-aet-allow */
    size_t calling_aet_allow_count;                                     /* 0 = any calling AE title */
    uint32_t max_associations;                                          /* max-associations */
    uint32_t max_pdu;                    /* max-pdu: our Maximum Length (51H) */
    uint32_t acse_timeout_ms;            /* acse-timeout: ARTIM (PS3.8 §9.1.5) */
    uint32_t idle_timeout_ms;            /* idle-timeout: no whole PDU in this long -> A-ABORT */
    uint32_t write_timeout_ms;           /* write-timeout: output pending, no progress -> close */
    uint32_t shutdown_grace_ms;          /* shutdown-grace */
    uint32_t workers;                    /* workers: pool threads */
    uint32_t find_batch;                 /* find-batch: matches per worker step */
    mwl_log_level log_level;             /* log-level */
    char port_file[MWL_SERVER_PATH_MAX]; /* port-file: "" = none */
    char db[MWL_SERVER_PATH_MAX];        /* db: worklist database for the provider */
    /* The worklist provider's matching and response options. */
    bool pn_case_sensitive;     /* pn-case-sensitive */
    bool pn_accent_insensitive; /* pn-accent-insensitive */
    bool filter_by_calling_aet; /* filter-by-calling-aet */
    uint32_t max_matches;       /* max-matches: 0 = unlimited */
    char response_charset[8];   /* response-charset: auto, item or utf8 */
    bool per_called_aet;        /* per-called-aet: the called AE title selects the worklist */
} mwl_server_config;

/* Fills every field with its key's default (the table's default text, run
 * through the same parser as the file). Never fails. */
void mwl_server_config_init(mwl_server_config *cfg);

/* Sets one key from its text form, as a `key = value` line would. Returns
 * MWL_OK, or MWL_E_NOTFOUND (unknown key) or MWL_E_INVALID (bad value; diag
 * says why, e.g. "max-associations: 0 is out of range 1..1000"); on error
 * *cfg is unchanged. */
MWL_MUST_CHECK int mwl_server_config_set(mwl_server_config *cfg, const char *key, const char *value,
                                         mwl_diag *diag);

/* Parses a config file image of `len` bytes: `key = value` lines; blank
 * lines and lines whose first non-blank character is '#' are ignored;
 * leading and trailing blanks around key and value are dropped; a value in
 * double quotes keeps its inner blanks. Each key may appear once. Applies
 * every line on success; on any error *cfg is unchanged, MWL_E_INVALID is
 * returned and diag->msg starts with "line N:" (diag->offset is the byte
 * offset of that line). NUL bytes and lines over 4096 bytes are errors. */
MWL_MUST_CHECK int mwl_server_config_parse(const char *text, size_t len, mwl_server_config *cfg,
                                           mwl_diag *diag);

/* What kind of value a key takes. */
typedef enum mwl_config_type {
    MWL_CONFIG_UINT,     /* decimal integer in [min, max] */
    MWL_CONFIG_SECONDS,  /* seconds with up to 3 decimals ("0.25"), stored in ms, [min, max] ms */
    MWL_CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0 */
    MWL_CONFIG_STRING,   /* free text up to the field's size (paths, bind address) */
    MWL_CONFIG_AET,      /* an AE title: 1..16 characters of the default repertoire, no '\' */
    MWL_CONFIG_AET_LIST, /* comma-separated AE titles, empty = none */
    MWL_CONFIG_LOG_LEVEL /* error, warn, info, debug, trace */
} mwl_config_type;

/* One row of the table, for help text and tests. */
typedef struct mwl_config_key {
    const char *name; /* "max-associations": also the flag --max-associations */
    mwl_config_type type;
    const char *default_value; /* as text */
    uint64_t min, max;         /* bounds for UINT and SECONDS (ms); max length for strings */
    size_t offset;             /* field in mwl_server_config */
    const char *help;          /* one line */
} mwl_config_key;

/* The table, in the order `mwl serve --help` prints it. */
const mwl_config_key *mwl_server_config_keys(size_t *count /* out */);
const mwl_config_key *mwl_server_config_find_key(const char *name);
/* "N", "SECONDS", "BOOL", "TEXT", "AET", "AET,…", "LEVEL": a placeholder for help. */
const char *mwl_config_type_hint(mwl_config_type type);

/* ======================================================================
 * C-FIND provider (the worklist engine plugs in here)
 *
 * The server does the DIMSE side of C-FIND (PS3.4 K.4.1.2, PS3.7 §9.1.2):
 * it checks the presentation context, decodes the Identifier in the
 * context's transfer syntax, encodes each match in that transfer syntax,
 * sends one Pending response per match, honours C-CANCEL, and sends the
 * final response. The provider only finds matches:
 *
 *   begin  once per C-FIND: parse/validate the identifier, open a cursor;
 *   next   once per match: return the next response identifier, or none;
 *   end    once per successful begin, always (after the last next, after a
 *          cancel, when the association dies, or at shutdown).
 *
 * Threads. begin, next and end run on the server's worker threads, never on
 * the loop thread, so they may block on a database. For one C-FIND they
 * are called strictly one after another (never concurrently), though not
 * necessarily on the same thread; the pool's queue orders their memory
 * effects. Different associations' C-FINDs run concurrently on different
 * workers, so anything reachable from `user` must be thread-safe (e.g. open
 * one SQLite connection per C-FIND in begin, or per worker).
 *
 * Pacing. Each worker step calls next up to find-batch times, then hands
 * the encoded responses to the loop, which sends them and submits the next
 * step only once the association's unsent output is below a low watermark:
 * a slow reader holds no worker. Between matches a step also stops early
 * when a C-CANCEL has arrived (mwl_find_request.cancelled becomes true;
 * a long next may poll it too). After a cancel no further Pending response
 * is sent and the final status is FE00 (Cancel); next is not called again.
 *
 * Statuses (PS3.4 Table K.4-1):
 *   - begin may refuse the query up front by setting early->status to a
 *     Failure (A900 identifier does not match SOP class, A700 out of
 *     resources, C000-CFFF unable to process) with an error comment and
 *     offending elements; it still returns MWL_OK and a state to end.
 *   - next sets *match and *status FF00, or FF01 when optional keys were not
 *     supported; or *match NULL at the end, with st->status left at 0000
 *     (Success) or set to a Warning or Failure, e.g. when a configured
 *     maximum number of matches was reached.
 *   - A negative return from begin or next is a failure of the provider:
 *     the final status is what the provider put in *st if it is a Failure,
 *     else A700 for MWL_E_NOMEM/MWL_E_LIMIT and C000 for anything else,
 *     with the status text as comment. After begin fails end is not called
 *     (begin cleans up itself); after next fails it is.
 *   Pending, Cancel or Success given where a Failure is required (and vice
 *   versa) is a provider bug answered with C000 "provider returned status
 *   XXXX".
 *
 * Memory. Everything in *req (the decoded identifier, the strings) is owned
 * by the server and stays valid and unchanged from begin until end returns.
 * A match returned by next must live in `arena` (or in memory the provider
 * keeps until end); the server encodes it before the next call and then
 * may clear the arena, so the provider must not keep pointers into it.
 * ====================================================================== */

#define MWL_FIND_SUMMARY_MAX 160
/* Opaque: an atomic "cancelled" flag owned by the server. */
typedef struct mwl_find_cancel mwl_find_cancel;
#define MWL_FIND_OFFENDING_MAX 8

/* A final or early status with its optional fields (PS3.7 Annex C). */
typedef struct mwl_find_status {
    uint16_t status;
    char error_comment[65]; /* (0000,0902) LO; "" = none; sent as default repertoire */
    uint32_t offending_elements[MWL_FIND_OFFENDING_MAX]; /* (0000,0901) */
    size_t offending_element_count;
} mwl_find_status;

typedef struct mwl_find_request {
    /* input, valid from begin until end */
    const mwl_ds *identifier;  /* decoded; values in the request's character set */
    mwl_ts transfer_syntax;    /* of the presentation context (responses use it too) */
    const char *sop_class_uid; /* Affected SOP Class UID of the C-FIND-RQ */
    uint16_t message_id;
    uint16_t priority;      /* MWL_DIMSE_PRIORITY_*; informational */
    const char *calling_ae; /* trimmed, as in the A-ASSOCIATE-RQ */
    const char *called_ae;
    const char *peer; /* "127.0.0.1:40000", for logs and policies */
    /* Set (by the loop thread) when a C-CANCEL for this C-FIND arrived or
     * the association went away; read it with mwl_find_request_cancelled. */
    const struct mwl_find_cancel *cancel;
    /* output: begin may write a short description of the query ("keys:
     * PatientID=123 Modality=CT date=20260101-") for the one log line each
     * C-FIND gets. NUL-terminated; "" = the server logs nothing for keys. */
    char summary[MWL_FIND_SUMMARY_MAX];
} mwl_find_request;

/* True once the C-FIND has been cancelled (thread-safe). */
bool mwl_find_request_cancelled(const mwl_find_request *req);

typedef struct mwl_find_provider {
    /* Starts one C-FIND. On MWL_OK *state is the provider's per-query state
     * (may be NULL) that next and end receive; early->status is 0000 on
     * entry: leave it to go on with next, or set a Failure to answer with it
     * (end is still called). Worker thread. */
    int (*begin)(void *user, mwl_find_request *req, void **state, mwl_find_status *early);
    /* The next match: MWL_OK with *match set (a data set in `arena` or in the
     * provider's own memory) and *status FF00/FF01 (preset to FF00); or
     * MWL_OK with *match NULL when there are no more (st->status preset to
     * 0000 may be changed to a Warning/Failure with comment); or a negative
     * MWL_E_* (see above). Worker thread. */
    int (*next)(void *state, const mwl_find_request *req, mwl_arena *arena, const mwl_ds **match,
                uint16_t *status, mwl_find_status *st);
    /* Releases the state. Always called once after a successful begin. */
    void (*end)(void *state);
    void *user;
} mwl_find_provider;

/* ======================================================================
 * Server
 * ====================================================================== */

typedef struct mwl_server mwl_server;

/* Counters, for tests and logs. Read with mwl_server_get_stats (any thread). */
typedef struct mwl_server_stats {
    uint64_t connections;   /* accepted TCP connections */
    uint64_t associations;  /* A-ASSOCIATE-AC sent */
    uint64_t rejected;      /* A-ASSOCIATE-RJ sent (any reason) */
    uint64_t rejected_busy; /* of which (2,3,2) for max-associations */
    uint64_t dropped;       /* closed at once: over the limit and no reject slot */
    uint64_t aborted;       /* associations that ended in A-ABORT or a lost transport */
    uint64_t echoes;        /* C-ECHO-RSP sent */
    uint64_t finds;         /* C-FIND final responses sent */
    uint64_t find_matches;  /* Pending responses sent */
    uint64_t find_cancels;  /* finals with status FE00 */
    size_t active;          /* sessions alive now (incl. reject slots) */
} mwl_server_stats;

/* Creates the server: validates the config, opens the listener on
 * cfg->bind:cfg->port (so mwl_server_port is known before running), and
 * allocates the loop (fds, timers) and the worker pool, all sized by the
 * config. `provider` NULL means no worklist: the MWL FIND SOP class is then
 * not offered, so a C-FIND is refused at negotiation (context result 3).
 * The provider struct is copied; `user` must outlive the server. Returns
 * MWL_OK, MWL_E_INVALID (config; diag says which key), MWL_E_IO (cannot
 * bind: diag), MWL_E_NOMEM. Does not install signal handlers. */
MWL_MUST_CHECK int mwl_server_new(const mwl_server_config *cfg, const mwl_find_provider *provider,
                                  const mwl_mem *mem, mwl_server **out, mwl_diag *diag);

/* Stops the workers (running the jobs still queued), closes every
 * connection and frees everything. NULL is a no-op. Not while running. */
void mwl_server_free(mwl_server *srv);

/* The bound port (the kernel's choice when cfg.port is 0) and address. */
uint16_t mwl_server_port(const mwl_server *srv);
const char *mwl_server_addr(const mwl_server *srv);

/* Makes SIGTERM and SIGINT start a graceful shutdown (a second one stops at
 * once) and ignores SIGPIPE. One server at a time. MWL_OK, MWL_E_INVALID
 * (another loop owns the handlers), MWL_E_IO. The handlers are restored by
 * mwl_server_free. */
MWL_MUST_CHECK int mwl_server_install_signals(mwl_server *srv);

/* Serves until a shutdown completes: stop accepting, let associations
 * finish for up to shutdown-grace, then A-ABORT those left, wait (bounded)
 * for their provider states to end, return. MWL_OK, or MWL_E_IO if the
 * loop fails. Call once, on the thread that created the server. */
MWL_MUST_CHECK int mwl_server_run(mwl_server *srv);

/* One loop turn, waiting at most max_wait_ms (< 0: until something
 * happens), for tests and embedding; returns true while the server has not
 * finished shutting down. *rc (may be NULL) gets MWL_OK or MWL_E_IO. */
bool mwl_server_run_once(mwl_server *srv, int max_wait_ms, int *rc);

/* Requests a graceful shutdown, as the first SIGTERM does. Thread-safe;
 * later calls do nothing. */
void mwl_server_shutdown(mwl_server *srv);

/* Adds an already connected transport as if it had been accepted (inetd
 * style, and tests over socketpairs). Loop thread only. Takes ownership of
 * `conn` in every case. MWL_OK; MWL_E_LIMIT when over max-associations and
 * no reject slot is free (the connection is closed); MWL_E_CLOSED while
 * shutting down (closed); MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_server_adopt(mwl_server *srv, mwl_conn *conn);

void mwl_server_get_stats(const mwl_server *srv, mwl_server_stats *out);

/* Short name of a transfer syntax for logs ("ExplicitLE", ...). */
const char *mwl_server_ts_name(const char *uid);

#endif
