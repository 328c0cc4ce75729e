/* Declarations not in the public API of the server module: the server and
 * session structs and the helpers shared by server.c, session.c,
 * echo_scp.c and find_scp.c.
 *
 * Threads: everything here belongs to the loop thread, except the fields
 * of find_op marked "worker", which a pool job owns while it is queued or
 * running (find_op.job_outstanding); the pool's and the loop's queues (a
 * mutex each) order the hand-overs, so no other locking is needed. */
#ifndef MWL_SERVER_SERVER_INT_H
#define MWL_SERVER_SERVER_INT_H

#include <stdatomic.h>

#include "dimse/dimse.h"
#include "net/net.h"
#include "server/server.h"
#include "ul/ul.h"

enum {
    /* Connections beyond max-associations that still get a proper
     * A-ASSOCIATE-RJ (2,3,2) (PS3.8 §9.1.4 prefers that to dropping the
     * connection); past these, a connection is closed as it is accepted. */
    SERVER_REJECT_SLOTS = 4,
    /* One read per callback into this loop-thread buffer; the UL copies the
     * bytes into its own per-PDU buffer, so no session owns read memory. */
    SERVER_READ_BUFFER = 64 * 1024,
    /* Output back-pressure: above HIGH unsent bytes a session stops reading;
     * a C-FIND's next step is submitted only below LOW. */
    SERVER_OUT_HIGH = 256 * 1024,
    SERVER_OUT_LOW = 64 * 1024,
    /* A C-FIND step stops adding matches after this many encoded bytes. */
    SERVER_FIND_STEP_BYTES = 64 * 1024,
    /* Largest DIMSE message (command + identifier) we assemble: a worklist
     * identifier is a few KiB; anything near this is not a query. */
    SERVER_MAX_MESSAGE = 1024 * 1024,
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
    SERVER_SHUTDOWN_HARD_MS = 3000
};

struct mwl_find_cancel {
    atomic_bool flag;
};

typedef enum find_step { FIND_STEP_BEGIN = 1, FIND_STEP_NEXT, FIND_STEP_END } find_step;

typedef struct session session;

/* One C-FIND on an association (at most one at a time). */
typedef struct find_op {
    /* ---- loop thread ---- */
    bool active;          /* between the C-FIND-RQ and its final response */
    bool abandoned;       /* the association is going away: send nothing more */
    bool waiting_drain;   /* the next step waits for output below SERVER_OUT_LOW */
    bool job_outstanding; /* a step is queued or running, or its task is posted */
    uint8_t context_id;
    uint64_t started_ms;
    uint64_t matches; /* Pending responses queued */
    mwl_pool_job job;
    mwl_loop_task task;
    session *owner;

    /* ---- set on the loop before the first step, read-only afterwards ---- */
    mwl_find_cancel cancel;
    char sop_class[MWL_DIMSE_UID_MAX + 1];
    char calling[MWL_AE_TITLE_MAX + 1], called[MWL_AE_TITLE_MAX + 1];
    char peer[MWL_NET_ADDRSTRLEN];
    mwl_ts ts;
    uint16_t message_id, priority;
    uint32_t batch;
    uint8_t *identifier; /* copy of the identifier bytes (mem) */
    size_t identifier_length;

    /* ---- worker (owned by the step in flight) ---- */
    find_step step;
    mwl_find_request req;
    mwl_arena id_arena;    /* the decoded identifier, begin .. end */
    mwl_arena match_arena; /* one match at a time */
    void *state;
    bool begun, ended;
    /* Step output: records [u32 command length][command][u32 data set
     * length or UINT32_MAX for none][data set], read by the loop. */
    mwl_wbuf out;
    bool step_final;       /* the C-FIND is decided: send `final` after `out` */
    mwl_find_status final; /* its final status, comment, offending elements */
    bool step_cancelled;   /* the step saw the cancel flag */
} find_op;

struct session {
    mwl_server *srv;
    session *prev, *next;
    bool reject_slot; /* accepted over max-associations: will be rejected */
    mwl_conn *conn;   /* NULL once closed */
    mwl_loop_io *io;
    mwl_ul *ul; /* NULL once torn down */
    mwl_dimse_assembler as;
    uint64_t timer_id; /* 0: none armed */
    uint64_t timer_at;
    uint64_t started_ms;
    uint64_t write_since_ms; /* output pending and no progress since */
    uint64_t linger_until;   /* after shutdown(SHUT_WR), UINT64_MAX before */
    bool shut_wr;
    bool write_blocked; /* the last write was partial: wait for POLLOUT */
    bool aborted;       /* A-ABORT sent or received, or the transport lost */
    bool done;          /* tear down at the end of the current callback */
    bool zombie;        /* torn down, waiting for its find job to come back */
    bool associated;
    char peer[MWL_NET_ADDRSTRLEN];
    char calling[MWL_AE_TITLE_MAX + 1], called[MWL_AE_TITLE_MAX + 1];
    char contexts[200]; /* accepted contexts, for the log line */
    char outcome[160];  /* how the association ended, first cause wins */
    uint64_t echoes, finds;
    find_op find;
};

typedef enum server_phase {
    PHASE_RUNNING = 0,
    PHASE_DRAINING, /* listener closed, associations finishing (grace) */
    PHASE_ABORTING, /* grace over: aborted the rest, waiting for them to go */
    PHASE_DONE
} server_phase;

typedef struct stat_counters {
    atomic_uint_fast64_t connections, associations, rejected, rejected_busy, dropped, aborted, echoes, finds,
        find_matches, find_cancels;
    atomic_size_t active;
} stat_counters;

struct mwl_server {
    const mwl_mem *mem;
    mwl_server_config cfg;
    mwl_find_provider provider;
    bool has_provider;

    mwl_loop *loop;
    mwl_pool *pool;
    mwl_listener *listener;
    mwl_loop_io *listen_io;
    uint64_t accept_timer;

    session *sessions;   /* every live or zombie session */
    size_t normal_count; /* sessions counted against max-associations */
    size_t reject_count; /* sessions in reject slots */

    mwl_ul_config ul_cfg;
    mwl_policy policy;
    mwl_policy_syntax syntaxes[2];
    const char *allow[MWL_SERVER_ALLOW_MAX];

    uint8_t rbuf[SERVER_READ_BUFFER];
    mwl_wbuf scratch; /* encoding responses on the loop thread */

    atomic_bool shutdown_requested;
    mwl_loop_task shutdown_task;
    server_phase phase;
    uint64_t grace_timer, hard_timer;
    bool signals_installed;
    bool loop_stopped;
    stat_counters stats;
};

/* ---- session.c ---- */
int session_create(mwl_server *srv, mwl_conn *conn, bool reject_slot);
/* Re-evaluates a session after anything happened to it: tears it down if
 * it is done, writes output, shuts down/lingers, continues a C-FIND, sets
 * poll interest and arms its timer. Every entry point ends with it. */
void session_service(session *s);
/* Sends A-ABORT (if an association exists) and records `why`. */
void session_abort(session *s, const char *why);
void session_set_outcome(session *s, const char *fmt, ...) MWL_PRINTF(2, 3);
/* Fragments one message into P-DATA-TF PDUs on `context_id` and queues
 * them. `dataset` NULL = none. MWL_OK, or an error after which the session
 * is aborted or done. */
int session_send_message(session *s, uint8_t context_id, const uint8_t *command, size_t command_length,
                         const uint8_t *dataset, size_t dataset_length);
/* Bytes the UL has not written yet. */
size_t session_pending_output(const session *s);
/* Frees a session whose transport is gone and whose find is idle. */
void session_free(session *s);
/* Shutdown: abort every association, close what has none. */
void session_abort_all(mwl_server *srv, const char *why);

/* ---- echo_scp.c ---- */
void echo_scp_request(session *s, const mwl_dimse_msg *msg);
/* Answers a request we do not perform with 0211 (Unrecognized operation). */
void scp_reply_unrecognized(session *s, const mwl_dimse_msg *msg);

/* ---- find_scp.c ---- */
void find_scp_init(find_op *f, session *owner, const mwl_mem *mem);
void find_scp_request(session *s, const mwl_dimse_msg *msg);
void find_scp_cancel(session *s, const mwl_dimse_msg *msg);
/* The association is releasing or gone: no more responses; ends the
 * provider's state through a worker step when needed. */
void find_scp_abandon(session *s);
/* Submits the next step when the output drained below the low watermark. */
void find_scp_continue(session *s);
/* True while the session cannot be freed: a step is in flight or the
 * provider state still needs its end. */
bool find_scp_busy(const session *s);
void find_scp_clear(find_op *f);

/* ---- server.c ---- */
/* A session is gone for good: counts, stats, and shutdown progress. */
void server_session_freed(mwl_server *srv, bool reject_slot);
void server_stat_add(atomic_uint_fast64_t *counter, uint64_t n);

#endif
