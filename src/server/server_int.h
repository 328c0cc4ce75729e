/* The server's and the session's structs, shared by server.c (listeners,
 * limits, shutdown) and session.c (one association). Services see neither:
 * they use session.h and op.h.
 *
 * Threads: everything here belongs to the loop thread; the counters are
 * atomics so that mwl_server_get_stats may read them from any thread.
 *
 * Private to the server module. */
#ifndef MWL_SERVER_SERVER_INT_H
#define MWL_SERVER_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "dimse/dimse.h"
#include "base/file.h"
#include "net/net.h"
#include "server/audit.h"
#include "server/op.h"
#include "server/server.h"
#include "server/service.h"
#include "server/session.h"
#include "ul/ul.h"

enum {
    /* One read per callback into this loop-thread buffer; the UL copies the
     * bytes into its own per-PDU buffer, so no session owns read memory. */
    SERVER_READ_BUFFER = 64 * 1024,
    /* After our last PDU of an association (RJ, RP, A-ABORT) is written we
     * shut down our side and wait this long at most (or ARTIM, if sooner)
     * for the peer to close, reading and discarding, so that closing does
     * not turn into an RST that could destroy the PDU in flight. */
    SERVER_LINGER_MS = 2000,
    SERVER_SHUTDOWN_LINGER_MS = 500,
    /* Accepts per listener callback, and the pause after EMFILE. */
    SERVER_ACCEPT_PER_TURN = 16,
    SERVER_ACCEPT_BACKOFF_MS = 100,
    /* After shutdown-grace and the aborts, how long provider states may
     * take to end before the loop stops regardless. */
    SERVER_SHUTDOWN_HARD_MS = 3000,
    /* The smallest Maximum Length (PS3.8 D.1) we send PDUs within. A peer
     * asking for less would get every response cut into thousands of PDUs
     * (8 bytes made one C-FIND 628,582 PDUs): such an association is
     * rejected (1,1,1) instead. 0 (no limit) is fine. */
    SERVER_MIN_PEER_PDU = 1024
};

typedef struct server_listener {
    mwl_server *srv;
    size_t index;
    mwl_listener_spec spec; /* copied; spec.accept NULL = DICOM */
    char name[32];
    char bind[MWL_NET_HOST_MAX];
    mwl_listener *listener;
    mwl_loop_io *io;
    uint64_t accept_timer;
    bool stopped; /* a protocol listener's stop(now) was called */
} server_listener;

typedef struct session_svc {
    void *state; /* the class's per-session state, NULL until first used */
    uint64_t requests;
} session_svc;

struct session {
    mwl_server *srv;
    const server_listener *listener;
    session *prev, *next;           /* every live or zombie session */
    session *pend_prev, *pend_next; /* not associated, oldest first */
    bool pend_listed;
    mwl_conn *conn; /* NULL once closed */
    mwl_loop_io *io;
    mwl_ul *ul; /* NULL once torn down */
    mwl_dimse_assembler as;
    uint64_t timer_id; /* 0: none armed */
    uint64_t timer_at;
    uint64_t started_ms;
    uint64_t write_since_ms; /* output pending and no progress since */
    uint64_t linger_until;   /* after shutdown(SHUT_WR), UINT64_MAX before */
    unsigned read_wants;     /* what the last read that said MWL_AGAIN waits for */
    unsigned write_wants;    /* what the last blocked write waits for */
    bool shut_wr;
    bool write_blocked; /* the last write was partial: wait for writability */
    bool aborted;       /* A-ABORT sent or received, or the transport lost */
    bool done;          /* tear down at the end of the current callback */
    bool zombie;        /* torn down, waiting for its services' work to come back */
    bool associated;
    bool closing; /* release or abort under way: services send nothing more */
    char peer[MWL_NET_ADDRSTRLEN];
    char peer_addr[MWL_NET_ADDRSTRLEN]; /* the address without the port */
    char calling[MWL_AE_TITLE_MAX + 1], called[MWL_AE_TITLE_MAX + 1];
    char transport[8];     /* "tcp", "tls": kept for the audit after the close */
    char tls_subject[256]; /* the client certificate's subject, once known */
    char contexts[200];    /* accepted contexts, for the log line */
    char outcome[256];     /* how the association ended, first cause wins */
    session_svc svc[MWL_SERVER_SERVICES_MAX];
};

typedef enum server_phase {
    PHASE_RUNNING = 0,
    PHASE_DRAINING, /* listeners closed, associations finishing (grace) */
    PHASE_ABORTING, /* grace over: aborted the rest, waiting for them to go */
    PHASE_DONE
} server_phase;

typedef struct stat_counters {
    atomic_uint_fast64_t connections, associations, rejected, rejected_busy, rejected_calling_ae,
        rejected_called_ae, dropped, evicted, aborted, echoes, finds, find_matches, find_cancels, find_steps;
    atomic_size_t active;
} stat_counters;

struct mwl_server {
    const mwl_mem *mem;
    mwl_server_config cfg;
    mwl_service services[MWL_SERVER_SERVICES_MAX];
    size_t service_count;
    server_listener listeners[MWL_SERVER_LISTENERS_MAX];
    size_t listener_count;
    mwl_tls *tls;        /* the TLS listener's context (NULL: none) */
    size_t tls_listener; /* its index, SIZE_MAX without one */

    mwl_loop *loop;
    mwl_pool *pool;

    session *sessions;              /* every live or zombie session */
    session *pend_head, *pend_tail; /* not associated, oldest first */
    size_t pending_count;           /* sessions without an association (max-pending) */
    size_t associated_count;        /* sessions with one (max-associations) */

    mwl_ul_config ul_cfg;
    mwl_policy policy;
    mwl_policy_syntax syntaxes[MWL_SERVER_SERVICES_MAX];

    uint8_t rbuf[SERVER_READ_BUFFER];
    mwl_wbuf scratch;               /* encoding responses on the loop thread */
    mwl_file_log *audit;            /* audit-log, NULL = none */
    mwl_server_reload_fn reload_fn; /* SIGHUP: the new configuration */
    void *reload_user;
    mwl_wbuf audit_buf; /* one record at a time (loop thread) */
    /* Held by writers off the loop thread (mwl_server_audit_write) and by
     * the loop thread when it swaps `audit` (reload, free): the loop's own
     * records need no lock, since only the loop thread swaps the file. */
    pthread_mutex_t audit_mu;

    atomic_bool shutdown_requested;
    mwl_loop_task shutdown_task;
    server_phase phase;
    uint64_t grace_timer, hard_timer;
    bool signals_installed;
    bool loop_stopped;
    stat_counters stats;
    mwl_query_log *query_log; /* C-FINDs recorded by find_scp.c (thread-safe) */
};

/* ---- session.c ---- */
/* A new DICOM session on an accepted (wrapped) connection; takes `conn`. */
int session_create(mwl_server *srv, const server_listener *listener, mwl_conn *conn);
/* Ends a session now: records `why` (first cause wins) and closes it. */
void session_close(session *s, const char *why);
/* Shutdown: abort every association, close what has none. */
void session_abort_all(mwl_server *srv, const char *why);

/* "127.0.0.1:4000" -> "127.0.0.1", "[::1]:104" -> "[::1]". */
void session_peer_address(const char *peer, char *out, size_t cap);

/* ---- server.c ---- */
/* A new session: into the lists and the pending budget. */
void server_session_link(mwl_server *srv, session *s);
/* The session got its association: it leaves the pending budget. */
void server_session_associated(mwl_server *srv, session *s);
/* A session is gone for good: counts, stats, and shutdown progress. */
void server_session_freed(mwl_server *srv, session *s);
void server_stat_add(atomic_uint_fast64_t *counter, uint64_t n);

#endif
