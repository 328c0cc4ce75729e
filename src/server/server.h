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
#include "base/config.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/status.h"
#include "dicom/codec.h"
#include "dicom/dataset.h"
#include "net/net.h"
#include "ul/pdu.h"

/* ======================================================================
 * Configuration: the protocol and transport keys (base/config.h tables).
 * What a service needs (the worklist's database and matching options) is
 * in that service's own table (src/service/).
 * ====================================================================== */

#define MWL_SERVER_PATH_MAX 1024

/* ---- access rules: `allow = AE[@ADDRESS[/PREFIX]]` --------------------------
 *
 * One rule lets one calling AE title in, from any address or only from one
 * address or CIDR range (IPv4 or IPv6); "*" as the AE title means any AE
 * from there. The text is split at its last '@' when what follows is an
 * address, a range or "*" (any address); otherwise the whole text is the
 * title, since AE titles may contain '@'. But when what follows the last
 * '@' holds a '.', ':' or '/', it was meant as an address: if it is not
 * one (a typo, a host name) the rule is refused rather than read as a
 * title; write "A@B.C@*" for the title "A@B.C" from anywhere. Blanks around
 * the title and the address do not count. No host names: matching never
 * resolves anything. */

#define MWL_ALLOW_RULES_MAX 256
/* Longest rule text: a 16-character title, '@', a range; plus blanks. */
#define MWL_ALLOW_RULE_STRLEN 80

typedef struct mwl_allow_rule {
    char ae[MWL_AE_TITLE_MAX + 1]; /* trimmed; "" = any AE title ("*") */
    bool any_address;              /* no address part, or "@*" */
    mwl_net_cidr from;             /* when !any_address */
} mwl_allow_rule;

typedef struct mwl_allow_list {
    size_t count;
    mwl_allow_rule rule[MWL_ALLOW_RULES_MAX];
} mwl_allow_list;

/* Parses one rule. MWL_OK, or MWL_E_INVALID with diag saying why (a bad
 * title, a bad address or range, "*@*" is accepted and means anyone). */
MWL_MUST_CHECK int mwl_allow_rule_parse(const char *text, mwl_allow_rule *out /* out */, mwl_diag *diag);

/* The rule as text that mwl_allow_rule_parse reads back to an equal rule:
 * "CT1", "CT1@10.0.0.0/8", "*@2001:db8::/32", "*", and "A@B@*" for a title
 * holding '@'. snprintf style. */
size_t mwl_allow_rule_format(const mwl_allow_rule *r, char *out, size_t cap);

bool mwl_allow_rule_equal(const mwl_allow_rule *a, const mwl_allow_rule *b);

/* The verdict on a calling AE title from a peer address. */
typedef enum mwl_allow_verdict {
    MWL_ALLOW_OPEN,         /* no calling-aet-allow titles and no rules: anyone */
    MWL_ALLOW_ACCEPTED,     /* a title of the list, or a rule for this AE (or "*") and address */
    MWL_ALLOW_UNKNOWN_AE,   /* no title, no rule names this AE, and no "*" rule takes the address */
    MWL_ALLOW_WRONG_ADDRESS /* rules name this AE, none for this address */
} mwl_allow_verdict;

/* Decides whether `calling_ae` from `peer` (NULL: the peer has no IP
 * address, e.g. a Unix socket; only rules without an address match) may
 * associate. The allowed set is the union of `titles` (calling-aet-allow:
 * each from any address) and `rules`. AE titles compare exactly after
 * trimming leading and trailing spaces. When refused, `why` (if cap > 0)
 * gets one phrase for the log: "no rule for this AE title" or "allowed
 * only from 10.0.0.0/8, 192.168.1.7". A pure function. */
mwl_allow_verdict mwl_allow_check(const mwl_config_aet_list *titles, const mwl_allow_list *rules,
                                  const char *calling_ae, const mwl_net_addr *peer, char *why, size_t cap);

/* For listeners of protocols that name no AE title (HL7, HTTP): true when
 * `rules` is empty or one of its rules admits `peer` (a mwl_conn_peer
 * string, "10.0.0.7:51234" or "[::1]:51234") by address, whatever its AE
 * title. A pure function. */
bool mwl_allow_peer_address(const mwl_allow_list *rules, const char *peer);

typedef struct mwl_server_config {
    uint32_t port;                         /* port: 0 = let the kernel pick */
    char bind[MWL_NET_HOST_MAX];           /* bind: "" = all addresses */
    char ae_title[MWL_AE_TITLE_MAX + 1];   /* aet: our AE title */
    bool strict_called_aet;                /* strict-called-aet: (1,1,7) on a mismatch */
    mwl_config_aet_list calling_aet_allow; /* calling-aet-allow: empty = any calling AE title */
    mwl_allow_list allow;                  /* allow (repeatable): with the above, who may associate */
    uint32_t max_associations;             /* max-associations */
    uint32_t max_pending;                  /* max-pending: connections not (yet) associated */
    uint32_t max_peer_connections;         /* max-peer-connections: from one address at once */
    uint32_t max_pdu;                      /* max-pdu: our Maximum Length (51H) */
    uint32_t max_message;                  /* max-message: one DIMSE message, or an identifier decoded */
    uint32_t max_depth;                    /* max-depth: sequence nesting in an identifier */
    uint32_t max_output;                   /* max-output: unsent bytes before a session stops reading */
    uint32_t associate_timeout_ms;         /* associate-timeout: connect -> whole A-ASSOCIATE-RQ */
    uint32_t acse_timeout_ms;              /* acse-timeout: ARTIM (PS3.8 §9.1.5) */
    uint32_t idle_timeout_ms;              /* idle-timeout: no whole PDU in this long -> A-ABORT */
    uint32_t write_timeout_ms;             /* write-timeout: output pending, no progress -> close */
    uint32_t shutdown_grace_ms;            /* shutdown-grace */
    uint32_t workers;                      /* workers: pool threads for short work */
    uint32_t background_workers; /* background-workers: threads for long scans, niced; 0 = half the CPUs */
    uint32_t find_batch;         /* find-batch: matches per worker step */
    uint32_t find_step_ms;       /* find-step-time: a worker step's time budget */
    mwl_log_level log_level;     /* log-level */
    char log_format[5];          /* log-format: "text" or "json" (the program's sink reads it) */
    char port_file[MWL_SERVER_PATH_MAX]; /* port-file: "" = none */
    char audit_log[MWL_SERVER_PATH_MAX]; /* audit-log: "" = none */
    /* DICOM over TLS (PS3.15 Annex B): a second listener when tls-port is
     * set ("" = none, "0" = the kernel picks). */
    char tls_port[8];                        /* tls-port */
    char tls_bind[MWL_NET_HOST_MAX];         /* tls-bind: "" = as bind, "*" = all */
    char tls_port_file[MWL_SERVER_PATH_MAX]; /* tls-port-file */
    char tls_cert[MWL_SERVER_PATH_MAX];      /* tls-cert: PEM certificate (chain) */
    char tls_key[MWL_SERVER_PATH_MAX];       /* tls-key: PEM private key */
    char tls_ca[MWL_SERVER_PATH_MAX];        /* tls-ca: PEM CAs trusted for client certificates */
    bool tls_verify_peer;                    /* tls-verify-peer: require a client certificate */
    uint32_t query_log_size;                 /* query-log-size: C-FINDs kept for GET /queries */
} mwl_server_config;

/* The table of the keys above (the one `mwl serve --help` prints first). */
const mwl_config_table *mwl_server_config_table(void);

/* Fills every field with its key's default. Never fails. */
void mwl_server_config_init(mwl_server_config *cfg);

/* Sets one key from its text form, as a `key = value` line would. Returns
 * MWL_OK, or MWL_E_NOTFOUND (unknown key) or MWL_E_INVALID (bad value; diag
 * says why, e.g. "max-associations: 0 is out of range 1..1000"); on error
 * *cfg is unchanged. */
MWL_MUST_CHECK int mwl_server_config_set(mwl_server_config *cfg, const char *key, const char *value,
                                         mwl_diag *diag);

/* Parses a config file image holding server keys only (mwl_config_parse
 * with this one table; see there for the format). */
MWL_MUST_CHECK int mwl_server_config_parse(const char *text, size_t len, mwl_server_config *cfg,
                                           mwl_diag *diag);

/* The key table, in the order `mwl serve --help` prints it. */
const mwl_config_key *mwl_server_config_keys(size_t *count /* out */);
const mwl_config_key *mwl_server_config_find_key(const char *name);

/* Checks a config built by hand as the parser would (bounds, the AE
 * title). MWL_OK or MWL_E_INVALID with the key in diag. */
MWL_MUST_CHECK int mwl_server_config_check(const mwl_server_config *cfg, mwl_diag *diag);

/* ======================================================================
 * Services
 *
 * What the server answers is a table of services built from configuration:
 * each entry names a service class (the DIMSE side: which commands, their
 * checks and responses; the *_scp.c files of src/server) and the SOP class it is offered
 * for, with the class's configuration (for C-FIND, the provider that finds
 * the matches). The presentation contexts accepted at negotiation are the
 * table's SOP classes. Verification is always offered. Adding a service is
 * a new class file and a table entry; the session loop does not change.
 * ====================================================================== */

/* A service class; the contract is in src/server/service.h. */
typedef struct mwl_scp_class mwl_scp_class;

/* Verification (C-ECHO, PS3.4 Annex A). config: NULL. Answered on the loop
 * thread as soon as the request is complete. */
extern const mwl_scp_class mwl_scp_verification;
/* C-FIND and C-CANCEL for a query/retrieve-style FIND SOP class (Modality
 * Worklist, PS3.4 Annex K). config: a `const mwl_find_provider *` (below). */
extern const mwl_scp_class mwl_scp_find;

typedef struct mwl_service {
    const mwl_scp_class *cls;
    const char *sop_class; /* abstract syntax it is offered for; must outlive the server */
    const void *config;    /* the class's configuration; must outlive the server */
} mwl_service;

/* Most services in one server (Verification included). */
#define MWL_SERVER_SERVICES_MAX 8

/* ======================================================================
 * C-FIND provider (the worklist engine plugs in here)
 *
 * The server does the DIMSE side of C-FIND (PS3.4 K.4.1.2, PS3.7 §9.1.2):
 * it checks the presentation context, decodes the Identifier in the
 * context's transfer syntax, encodes each match in that transfer syntax,
 * sends one Pending response per match, honours C-CANCEL, and sends the
 * final response. The provider only finds matches:
 *
 *   begin  once per C-FIND: parse/validate the identifier, set up a cursor;
 *   next   once per match: return the next response identifier, none
 *          (the end), or "none yet" (MWL_AGAIN: give the worker back);
 *   pause  (optional) at the end of every worker step that is not the last:
 *          release what must not be held while the association waits for
 *          the network (a database read transaction);
 *   end    once per successful begin, always (after the last next, after a
 *          cancel, when the association dies, or at shutdown).
 *
 * Threads. begin, next, pause and end run on the server's worker threads,
 * never on the loop thread, so they may block on a database. For one C-FIND
 * they are called strictly one after another (never concurrently), though
 * not necessarily on the same thread; the pool's queue orders their memory
 * effects. Different associations' C-FINDs run concurrently on different
 * workers, so anything reachable from `user` must be thread-safe.
 *
 * Steps. A worker step calls next until find-batch matches, 64 KiB of
 * responses, or the step's time budget (find-step-time) is used; then it
 * calls pause and hands the encoded responses to the loop, which sends them
 * and queues the next step once the association's unsent output is below a
 * low watermark: a slow reader holds no worker. A next that has examined
 * candidates for a while without a match returns MWL_AGAIN (check
 * mwl_find_request_step_over every few candidates, after examining at least
 * one), so one long scan never holds a worker for its whole length: its
 * next step goes to the back of the queue, and once a C-FIND has used more
 * than a few steps' worth of worker time its steps run as background work
 * that leaves workers free for short queries.
 *
 * Cancel. Between matches a step stops early when a C-CANCEL has arrived
 * (mwl_find_request_cancelled; a long next may poll it too). After a cancel
 * no further Pending response is sent and the final status is FE00; next is
 * not called again.
 *
 * Statuses (PS3.4 Table K.4-1):
 *   - begin may refuse the query up front by setting early->status to a
 *     Failure (A900 identifier does not match SOP class, A700 out of
 *     resources, C000-CFFF unable to process) with an error comment and
 *     offending elements; it still returns MWL_OK and a state to end.
 *   - next sets *match and *status FF00, or FF01 when optional keys were not
 *     supported; or *match NULL at the end, with st->status left at 0000
 *     (Success) or set to a Warning or Failure, e.g. when a configured
 *     maximum number of matches or query duration was reached.
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
/* Opaque: the server's per-C-FIND control block (cancel flag, step budget). */
typedef struct mwl_find_control mwl_find_control;
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
    const char *peer;    /* "127.0.0.1:40000", for logs and policies */
    uint64_t started_ms; /* mwl_now_ms() when the C-FIND-RQ arrived */
    /* The server's control block: read it through the functions below. */
    const mwl_find_control *control;
    /* output: begin may write a short description of the query ("keys:
     * PatientID=123 Modality=CT date=20260101-") for the one log line each
     * C-FIND gets. NUL-terminated; "" = the server logs nothing for keys. */
    char summary[MWL_FIND_SUMMARY_MAX];
} mwl_find_request;

/* True once the C-FIND has been cancelled or its association has gone
 * (thread-safe). */
bool mwl_find_request_cancelled(const mwl_find_request *req);
/* True once the current worker step has used its time budget (or the
 * C-FIND was cancelled): a next that has no match yet should return
 * MWL_AGAIN. */
bool mwl_find_request_step_over(const mwl_find_request *req);
/* For the audit trail: the Patient ID (UTF-8) of the stored item behind the
 * match next is about to return, whether or not the response carries it.
 * Call from next before returning the match; NULL or "" = none. Without it
 * the server takes Patient ID from the response, which holds it only when
 * the query asked for it. Worker thread. */
void mwl_find_request_set_patient(const mwl_find_request *req, const char *patient_id);

typedef struct mwl_find_provider {
    /* Starts one C-FIND. On MWL_OK *state is the provider's per-query state
     * (may be NULL) that next, pause and end receive; early->status is 0000
     * on entry: leave it to go on with next, or set a Failure to answer with
     * it (end is still called). Worker thread. */
    int (*begin)(void *user, mwl_find_request *req, void **state, mwl_find_status *early);
    /* The next match: MWL_OK with *match set (a data set in `arena` or in
     * the provider's own memory) and *status FF00/FF01 (preset to FF00); or
     * MWL_OK with *match NULL when there are no more (st->status preset to
     * 0000 may be changed to a Warning/Failure with comment); or MWL_AGAIN
     * with *match NULL: no match yet, call again in a later step; or a
     * negative MWL_E_* (see above). Worker thread. */
    int (*next)(void *state, const mwl_find_request *req, mwl_arena *arena, const mwl_ds **match,
                uint16_t *status, mwl_find_status *st);
    /* May be NULL. The step ends and the C-FIND goes on later, maybe on
     * another thread: release what must not be held meanwhile. */
    void (*pause)(void *state);
    /* Releases the state. Always called once after a successful begin. */
    void (*end)(void *state);
    void *user;
} mwl_find_provider;

/* ======================================================================
 * Listeners
 *
 * The server listens on cfg.port for DICOM. More listeners share its loop
 * and worker pool: further DICOM ports (a TLS port: its `wrap` turns each
 * accepted TCP connection into a TLS one) and other protocols (an HL7 or
 * HTTP listener: its `accept` takes the connection and drives it on the
 * loop, using mwl_server_loop and mwl_server_pool).
 * ====================================================================== */

typedef struct mwl_server mwl_server;

typedef struct mwl_listener_spec {
    const char *name; /* "dicom-tls", "hl7": for logs */
    const char *bind; /* NULL/"" = all addresses */
    uint16_t port;    /* 0 = the kernel picks (mwl_server_listener_port) */
    /* Called on the loop thread for every accepted connection, before
     * anything is read; takes ownership of `conn` in every case. MWL_OK with
     * *out the connection to use (conn itself, or a wrapper that owns it);
     * an error closes the connection (logged with diag). NULL = as is. */
    int (*wrap)(void *user, mwl_conn *conn, mwl_conn **out, mwl_diag *diag);
    /* NULL: a DICOM listener (sessions, the limits of cfg). Otherwise the
     * protocol: called on the loop thread with the (wrapped) connection,
     * which it owns from then on. */
    int (*accept)(void *user, mwl_server *srv, mwl_conn *conn);
    /* A protocol listener's shutdown: stop is called when the server starts
     * draining (close idle connections, finish the rest); the server waits
     * until active returns 0 (or shutdown-grace ends, then stop is called
     * with `now` true: close everything). May be NULL. */
    void (*stop)(void *user, bool now);
    size_t (*active)(void *user);
    void *user;
    /* A protocol listener's most connections, and worker jobs it may have
     * queued at once: the loop and the pool are sized for them up front. */
    size_t max_connections;
    size_t max_jobs;
} mwl_listener_spec;

/* Most listeners in one server (the cfg.port one included). */
#define MWL_SERVER_LISTENERS_MAX 8

/* ======================================================================
 * Server
 * ====================================================================== */

/* What the server runs, beside its config. */
typedef struct mwl_server_setup {
    const mwl_service *services; /* Verification is added when absent */
    size_t service_count;
    const mwl_listener_spec *listeners; /* beside the DICOM listener on cfg.port */
    size_t listener_count;
    const mwl_mem *mem; /* NULL = the default allocator */
} mwl_server_setup;

/* Counters, for tests and logs. Read with mwl_server_get_stats (any thread). */
typedef struct mwl_server_stats {
    uint64_t connections;         /* accepted DICOM connections */
    uint64_t associations;        /* A-ASSOCIATE-AC sent */
    uint64_t rejected;            /* A-ASSOCIATE-RJ sent (any reason) */
    uint64_t rejected_busy;       /* of which (2,3,2) for max-associations */
    uint64_t rejected_calling_ae; /* of which (1,1,3): calling AE title not allowed or malformed */
    uint64_t rejected_called_ae;  /* of which (1,1,7): called AE title not ours (strict-called-aet) */
    uint64_t dropped; /* closed at once: the peer's connections all associated (max-peer-connections) */
    uint64_t evicted; /* closed without an association to make room (max-pending, max-peer-connections) */
    uint64_t aborted; /* associations that ended in A-ABORT or a lost transport */
    uint64_t echoes;  /* C-ECHO-RSP sent */
    uint64_t finds;   /* C-FIND final responses sent */
    uint64_t find_matches; /* Pending responses sent */
    uint64_t find_cancels; /* finals with status FE00 */
    uint64_t find_steps;   /* worker steps run for C-FINDs */
    size_t active;         /* DICOM sessions alive now */
} mwl_server_stats;

/* Creates the server: validates the config and the setup, opens every
 * listener (so the ports are known before running), and allocates the loop
 * (fds, timers) and the worker pool, all sized by the config. `setup` NULL
 * = Verification only. Services and listener specs are copied; what they
 * point to must outlive the server. Returns MWL_OK, MWL_E_INVALID (config
 * or setup; diag says which), MWL_E_IO (cannot bind: diag), MWL_E_NOMEM.
 * Does not install signal handlers. */
MWL_MUST_CHECK int mwl_server_new(const mwl_server_config *cfg, const mwl_server_setup *setup,
                                  mwl_server **out, mwl_diag *diag);

/* Stops the workers (running the jobs still queued), closes every
 * connection and frees everything. NULL is a no-op. Not while running. */
void mwl_server_free(mwl_server *srv);

/* The bound port of the DICOM listener on cfg.port (the kernel's choice
 * when it is 0) and its address; and of listener `index` (0 = that one,
 * then the TLS listener if tls-port is set, then setup->listeners). */
uint16_t mwl_server_port(const mwl_server *srv);
const char *mwl_server_addr(const mwl_server *srv);
/* The TLS listener's port (tls-port), 0 without one. */
uint16_t mwl_server_tls_port(const mwl_server *srv);
uint16_t mwl_server_listener_port(const mwl_server *srv, size_t index);

/* The loop and pool, for protocol listeners (loop thread only). */
mwl_loop *mwl_server_loop(mwl_server *srv);
mwl_pool *mwl_server_pool(mwl_server *srv);

/* Replaces the running configuration (loop thread; the SIGHUP reload):
 * the allow-lists, limits and timeouts for new connections, the log level,
 * the TLS certificate and key (read again), the audit log (reopened).
 * Associations in flight are not touched. Keys that size the server or
 * its listeners (port, bind, max-associations, max-pending, workers,
 * background-workers, tls-port and the port files) keep their running
 * values, with a warning. A config that does not check, a certificate that
 * does not load or an audit file that does not open refuse the whole
 * change: MWL_E_INVALID / MWL_E_IO with diag, the old configuration
 * stays. MWL_OK otherwise. */
MWL_MUST_CHECK int mwl_server_reconfigure(mwl_server *srv, const mwl_server_config *cfg, mwl_diag *diag);

/* On SIGHUP (after mwl_server_install_signals) the server calls `fn` on the
 * loop thread: it builds the new configuration (e.g. reads the config file
 * again and applies the command line over it) and applies it with
 * mwl_server_reconfigure (and its services' own), returning MWL_OK or an
 * error with diag, which is logged ("reload refused"). Without fn a SIGHUP
 * re-applies the running configuration: the TLS files are read again and
 * the audit log reopened. */
typedef int (*mwl_server_reload_fn)(void *user, mwl_server *srv, mwl_diag *diag);
void mwl_server_set_reload(mwl_server *srv, mwl_server_reload_fn fn, void *user);
/* The running configuration (loop thread). */
const mwl_server_config *mwl_server_get_config(const mwl_server *srv);

/* A change made through another front end than DIMSE (the REST API), for
 * the audit log: one {"event":"http-write",...} record. Every field is
 * text (NULL = ""), written as a JSON string; `status` is the HTTP status
 * answered. */
typedef struct mwl_audit_write {
    const char *method;     /* "POST", "PUT", "DELETE" */
    const char *path;       /* "/mwlitems/1.2.3/SPS1" */
    const char *peer;       /* "127.0.0.1:40000" */
    const char *token_role; /* "write", or "none" without tokens */
    const char *result;     /* "created", "replaced", "deleted", "status set", or why refused */
    unsigned status;
    const char *patient_id;
    const char *study_uid;
    const char *sps_id;
} mwl_audit_write;
/* Writes the record when audit-log is set. Any thread: it builds the
 * record in its own buffer and writes it under a lock the reload takes
 * too. */
void mwl_server_audit_write(mwl_server *srv, const mwl_audit_write *rec);

/* Makes SIGTERM and SIGINT start a graceful shutdown (a second one stops at
 * once), SIGHUP reload the configuration, and ignores SIGPIPE. One server at a time. MWL_OK, MWL_E_INVALID
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

/* Adds an already connected transport as if the DICOM listener on cfg.port
 * had accepted it (inetd style, and tests over socketpairs). Loop thread
 * only. Takes ownership of `conn` in every case. MWL_OK; MWL_E_LIMIT when
 * it cannot be admitted (closed: its peer has max-peer-connections
 * associations); MWL_E_CLOSED while shutting down (closed); MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_server_adopt(mwl_server *srv, mwl_conn *conn);

void mwl_server_get_stats(const mwl_server *srv, mwl_server_stats *out);

/* ======================================================================
 * The recent C-FIND log and C-FIND statistics (query-log-size)
 *
 * Every C-FIND's end (its final response, or its end with the association)
 * is recorded by the server, on the loop thread, into a bounded ring of
 * the last query-log-size C-FINDs and into counters by calling AE title and
 * status and a latency histogram. Readers (the HTTP listener) take copies
 * from any thread. Recording is O(1): a bounded copy under a mutex, no
 * allocation, no I/O; the counters by calling AE hold at most
 * MWL_FIND_STATS_AETS_MAX titles (later ones count under "other").
 * ====================================================================== */

/* Identifiers up to this many bytes are kept with their record (typical
 * worklist queries are a few hundred); a larger one keeps only its keys
 * text. */
#define MWL_QUERY_IDENTIFIER_MAX 2048

typedef struct mwl_query_record {
    uint64_t id;                        /* 1, 2, ... in the order C-FINDs ended; set by the log */
    int64_t time_ms;                    /* wall clock, Unix ms, at the end; set by the log */
    char calling[MWL_AE_TITLE_MAX + 1]; /* calling AE title, trimmed */
    char called[MWL_AE_TITLE_MAX + 1];  /* called AE title */
    char peer[MWL_NET_ADDRSTRLEN];      /* "10.0.0.7:51234" */
    char keys[MWL_FIND_SUMMARY_MAX];    /* the provider's summary of the keys, "" = none */
    char comment[96];                   /* error comment, or why it ended early ("abandoned ...") */
    uint64_t matches;                   /* Pending responses sent */
    uint64_t duration_ms;               /* C-FIND-RQ to final response */
    uint16_t status;                    /* final status (FE00 also for an abandoned one) */
    mwl_ts ts;                          /* of the identifier bytes */
    uint32_t identifier_length;         /* 0 = not kept (none, or larger than the bound) */
    uint8_t identifier[MWL_QUERY_IDENTIFIER_MAX];
} mwl_query_record;

typedef struct mwl_query_log mwl_query_log;

/* A log of `capacity` records (0: counters only, no records). MWL_OK or
 * MWL_E_NOMEM. */
MWL_MUST_CHECK int mwl_query_log_new(size_t capacity, mwl_query_log **out);
void mwl_query_log_free(mwl_query_log *log); /* NULL-safe */
/* Records one C-FIND: copies `rec` (its id and time_ms are assigned; only
 * identifier_length bytes of the identifier are copied), overwriting the
 * oldest record when full, and counts it. Thread-safe. */
void mwl_query_log_add(mwl_query_log *log, const mwl_query_record *rec);
/* Copies up to `cap` records, newest first, whose calling AE title equals
 * `calling` (NULL = all) into `out`; returns how many. Thread-safe. */
size_t mwl_query_log_list(mwl_query_log *log, const char *calling, mwl_query_record *out, size_t cap);
/* The record with this id, while still in the ring: MWL_OK or
 * MWL_E_NOTFOUND. Thread-safe. */
MWL_MUST_CHECK int mwl_query_log_get(mwl_query_log *log, uint64_t id, mwl_query_record *out /* out */);
size_t mwl_query_log_capacity(const mwl_query_log *log);

#define MWL_FIND_STATS_AETS_MAX 256
/* Distinct final statuses counted per calling AE; later ones under "other". */
#define MWL_FIND_STATS_STATUSES_MAX 8
/* Upper bounds of the latency histogram's buckets, in ms (+Inf after). */
#define MWL_FIND_DURATION_BUCKETS 12
extern const uint32_t mwl_find_duration_bounds_ms[MWL_FIND_DURATION_BUCKETS];

typedef struct mwl_find_stats_ae {
    char ae[MWL_AE_TITLE_MAX + 1]; /* the calling AE title; "" for the "other" row */
    bool other;                    /* the titles beyond MWL_FIND_STATS_AETS_MAX */
    size_t status_count;
    struct {
        uint16_t status;
        uint64_t count;
    } by_status[MWL_FIND_STATS_STATUSES_MAX];
    uint64_t other_status; /* C-FINDs with a status beyond the first MWL_FIND_STATS_STATUSES_MAX */
    uint64_t matches;
} mwl_find_stats_ae;

typedef struct mwl_find_stats {
    size_t ae_count; /* rows of ae, in the order first seen; the "other" row last */
    mwl_find_stats_ae ae[MWL_FIND_STATS_AETS_MAX + 1];
    uint64_t bucket[MWL_FIND_DURATION_BUCKETS + 1]; /* not cumulative; the last is above every bound */
    uint64_t count;
    uint64_t sum_ms;
} mwl_find_stats;

/* A copy of the counters (about 50 KiB: heap-allocate it). Thread-safe. */
void mwl_query_log_get_stats(mwl_query_log *log, mwl_find_stats *out);

/* The server's log (never NULL once mwl_server_new succeeded). */
mwl_query_log *mwl_server_query_log(mwl_server *srv);

/* Short name of a transfer syntax for logs ("ExplicitLE", ...). */
const char *mwl_server_ts_name(const char *uid);

#endif
