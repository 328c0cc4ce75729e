/* The server: listeners, loop, worker pool, the service table, connection
 * and association limits, graceful shutdown. Sessions (session.c) do the
 * per-association work; this file decides who gets a session and when the
 * whole thing stops.
 *
 * Limits on who gets in (docs/security.md-style threat: connections that
 * never send an A-ASSOCIATE-RQ must not lock modalities out):
 *   - max-peer-connections: connections from one address at once; more are
 *     closed as they are accepted;
 *   - max-pending: sessions without an association (waiting for the RQ,
 *     or rejected and closing); a new connection over it closes the oldest
 *     such session, which has had the most time to ask;
 *   - associate-timeout: a connection has this long for its whole RQ;
 *   - max-associations: decided when the RQ arrives, answered (2,3,2).
 *
 * Shutdown phases (server_phase):
 *   RUNNING   accepting.
 *   DRAINING  entered on the first SIGTERM/SIGINT or mwl_server_shutdown:
 *             the listener is closed, associations finish on their own;
 *             a timer of shutdown-grace ms runs.
 *   ABORTING  grace over: every association is sent A-ABORT (lingering
 *             SERVER_SHUTDOWN_LINGER_MS); a last timer of
 *             SERVER_SHUTDOWN_HARD_MS closes whatever is left.
 *   DONE      no session is left (zombies included: their provider states
 *             have ended): the loop stops and mwl_server_run returns.
 * A second signal skips to closing everything at once. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "dicom/tag.h"
#include "server/server_int.h"

void server_stat_add(atomic_uint_fast64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

const char *mwl_server_ts_name(const char *uid)
{
    if (!uid)
        return "?";
    if (strcmp(uid, MWL_UID_ExplicitVRLittleEndian) == 0)
        return "ExplicitLE";
    if (strcmp(uid, MWL_UID_ImplicitVRLittleEndian) == 0)
        return "ImplicitLE";
    if (strcmp(uid, MWL_UID_DeflatedExplicitVRLittleEndian) == 0)
        return "DeflatedLE";
    if (strcmp(uid, MWL_UID_ExplicitVRBigEndian) == 0)
        return "ExplicitBE";
    return uid;
}

/* Our transfer syntax preference (PS3.8 §7.1.1.13 lets the acceptor pick):
 * Explicit VR LE first, since it is unambiguous without a dictionary and
 * what most peers use; then Implicit VR LE, the one every peer has; then
 * the two that are rarely needed and cost more. */
static const char *const transfer_syntaxes[] = {
    MWL_UID_ExplicitVRLittleEndian,
    MWL_UID_ImplicitVRLittleEndian,
    MWL_UID_DeflatedExplicitVRLittleEndian,
    MWL_UID_ExplicitVRBigEndian,
};

/* ---- shutdown ------------------------------------------------------------ */

static void stop_loop(mwl_server *srv)
{
    srv->phase = PHASE_DONE;
    if (srv->grace_timer)
        (void)mwl_loop_timer_cancel(srv->loop, srv->grace_timer);
    if (srv->hard_timer)
        (void)mwl_loop_timer_cancel(srv->loop, srv->hard_timer);
    srv->grace_timer = srv->hard_timer = 0;
    srv->loop_stopped = true;
    mwl_loop_stop(srv->loop);
}

static void close_listener(server_listener *l)
{
    mwl_server *srv = l->srv;
    if (l->io) {
        mwl_loop_remove(srv->loop, l->io);
        l->io = NULL;
    }
    if (l->accept_timer) {
        (void)mwl_loop_timer_cancel(srv->loop, l->accept_timer);
        l->accept_timer = 0;
    }
    mwl_listener_close(l->listener);
    l->listener = NULL;
}

static void close_listeners(mwl_server *srv)
{
    for (size_t i = 0; i < srv->listener_count; i++)
        close_listener(&srv->listeners[i]);
}

/* Connections of protocol listeners still open. */
static size_t protocol_active(const mwl_server *srv)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->listener_count; i++) {
        const server_listener *l = &srv->listeners[i];
        if (l->spec.accept && l->spec.active)
            n += l->spec.active(l->spec.user);
    }
    return n;
}

static void protocol_stop(mwl_server *srv, bool now)
{
    for (size_t i = 0; i < srv->listener_count; i++) {
        server_listener *l = &srv->listeners[i];
        if (l->spec.accept && l->spec.stop && (!now || !l->stopped)) {
            l->stopped = now;
            l->spec.stop(l->spec.user, now);
        }
    }
}

static bool everything_closed(const mwl_server *srv)
{
    return !srv->sessions && protocol_active(srv) == 0;
}

/* Closes every connection now; sessions with a provider state wait as
 * zombies for their END step. */
static void close_all(mwl_server *srv, const char *why)
{
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        session_close(s, why); /* may free s; `next` was read first */
    }
    protocol_stop(srv, true);
}

static void check_shutdown_done(mwl_server *srv);

/* While draining, protocol listeners' connections close on their own: look
 * every 50 ms whether everything has. */
static void on_drain_poll(mwl_loop *loop, uint64_t id, void *user)
{
    (void)id;
    mwl_server *srv = user;
    check_shutdown_done(srv);
    if (srv->phase != PHASE_DONE && protocol_active(srv) > 0) {
        uint64_t next;
        if (mwl_loop_timer_add(loop, mwl_deadline_in(50), on_drain_poll, srv, &next) != MWL_OK)
            mwl_log(MWL_LOG_WARN, "shutdown: no timer left to watch other connections");
    }
}

static void on_hard_timer(mwl_loop *loop, uint64_t id, void *user)
{
    (void)loop;
    (void)id;
    mwl_server *srv = user;
    srv->hard_timer = 0;
    size_t left = 0;
    for (session *s = srv->sessions; s; s = s->next)
        left++;
    mwl_log(MWL_LOG_WARN, "shutdown: %zu sessions still open after the aborts; closing them", left);
    close_all(srv, "closed by shutdown");
    /* Zombies left here wait on a provider step that has not returned; the
     * loop stops anyway and mwl_server_free joins the workers. */
    if (srv->phase != PHASE_DONE)
        stop_loop(srv);
}

static void on_grace_timer(mwl_loop *loop, uint64_t id, void *user)
{
    (void)loop;
    (void)id;
    mwl_server *srv = user;
    srv->grace_timer = 0;
    if (srv->phase != PHASE_DRAINING)
        return;
    srv->phase = PHASE_ABORTING;
    size_t left = 0;
    for (session *s = srv->sessions; s; s = s->next)
        left++;
    mwl_log(MWL_LOG_INFO, "shutdown: grace period over, aborting %zu associations", left);
    if (mwl_loop_timer_add(srv->loop, mwl_deadline_in(SERVER_SHUTDOWN_HARD_MS), on_hard_timer, srv,
                           &srv->hard_timer) != MWL_OK)
        srv->hard_timer = 0;
    session_abort_all(srv, "server shutting down");
    protocol_stop(srv, true);
    if (everything_closed(srv) && srv->phase != PHASE_DONE)
        stop_loop(srv);
}

static void begin_shutdown(mwl_server *srv, const char *why)
{
    if (srv->phase != PHASE_RUNNING)
        return;
    srv->phase = PHASE_DRAINING;
    close_listeners(srv);
    protocol_stop(srv, false);
    size_t left = 0;
    for (session *s = srv->sessions; s; s = s->next)
        left++;
    mwl_log(MWL_LOG_INFO,
            "shutdown (%s): not accepting; %zu associations and %zu other connections active, "
            "grace %u ms",
            why, left, protocol_active(srv), (unsigned)srv->cfg.shutdown_grace_ms);
    if (everything_closed(srv)) {
        stop_loop(srv);
        return;
    }
    if (protocol_active(srv) > 0)
        on_drain_poll(srv->loop, 0, srv);
    if (mwl_loop_timer_add(srv->loop, mwl_deadline_in(srv->cfg.shutdown_grace_ms), on_grace_timer, srv,
                           &srv->grace_timer) != MWL_OK) {
        srv->grace_timer = 0;
        on_grace_timer(srv->loop, 0, srv);
    }
}

static void reload(mwl_server *srv);

static void on_signal(mwl_loop *loop, int signo, void *user)
{
    (void)loop;
    mwl_server *srv = user;
    if (signo == SIGHUP) {
        if (srv->phase == PHASE_RUNNING)
            reload(srv);
        return;
    }
    const char *name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
    if (srv->phase == PHASE_RUNNING) {
        begin_shutdown(srv, name);
        return;
    }
    if (srv->phase == PHASE_DONE)
        return;
    mwl_log(MWL_LOG_WARN, "second %s: closing every connection now", name);
    close_all(srv, "closed by a second signal");
    if (srv->phase != PHASE_DONE)
        stop_loop(srv);
}

static void on_shutdown_task(mwl_loop *loop, mwl_loop_task *task)
{
    (void)loop;
    mwl_server *srv = (mwl_server *)((char *)task - offsetof(mwl_server, shutdown_task));
    begin_shutdown(srv, "requested");
}

void mwl_server_shutdown(mwl_server *srv)
{
    if (srv && !atomic_exchange(&srv->shutdown_requested, true))
        mwl_loop_post(srv->loop, &srv->shutdown_task);
}

static void pend_unlink(mwl_server *srv, session *s)
{
    if (!s->pend_listed)
        return;
    if (s->pend_prev)
        s->pend_prev->pend_next = s->pend_next;
    else
        srv->pend_head = s->pend_next;
    if (s->pend_next)
        s->pend_next->pend_prev = s->pend_prev;
    else
        srv->pend_tail = s->pend_prev;
    s->pend_prev = s->pend_next = NULL;
    s->pend_listed = false;
    srv->pending_count--;
}

void server_session_link(mwl_server *srv, session *s)
{
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    s->pend_prev = srv->pend_tail;
    s->pend_next = NULL;
    if (srv->pend_tail)
        srv->pend_tail->pend_next = s;
    else
        srv->pend_head = s;
    srv->pend_tail = s;
    s->pend_listed = true;
    srv->pending_count++;
    atomic_fetch_add(&srv->stats.active, 1);
}

void server_session_associated(mwl_server *srv, session *s)
{
    pend_unlink(srv, s);
    s->associated = true;
    srv->associated_count++;
}

void server_session_freed(mwl_server *srv, session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pend_unlink(srv, s);
    if (s->associated)
        srv->associated_count--;
    atomic_fetch_sub(&srv->stats.active, 1);
    if (srv->phase != PHASE_RUNNING && srv->phase != PHASE_DONE && everything_closed(srv))
        stop_loop(srv);
}

/* A protocol listener's connection count dropped: the shutdown may be
 * complete. Called by the server when a protocol listener reports it (its
 * active() is polled on the shutdown timers too). */
static void check_shutdown_done(mwl_server *srv)
{
    if (srv->phase != PHASE_RUNNING && srv->phase != PHASE_DONE && everything_closed(srv))
        stop_loop(srv);
}

/* ---- reloading ----------------------------------------------------------- */

static void build_policy(mwl_server *srv);

/* Keys whose new value needs a restart: the listeners, and everything the
 * loop and the pool are sized by. */
static void keep_restart_keys(const mwl_server_config *old, mwl_server_config *next)
{
    static const struct {
        const char *name;
        size_t offset, size;
    } fixed[] = {
        {"port", offsetof(mwl_server_config, port), sizeof old->port},
        {"bind", offsetof(mwl_server_config, bind), sizeof old->bind},
        /* each connection's UL is made with it; the A-ASSOCIATE-AC must
         * advertise what that UL accepts */
        {"max-pdu", offsetof(mwl_server_config, max_pdu), sizeof old->max_pdu},
        {"max-associations", offsetof(mwl_server_config, max_associations), sizeof old->max_associations},
        {"max-pending", offsetof(mwl_server_config, max_pending), sizeof old->max_pending},
        {"workers", offsetof(mwl_server_config, workers), sizeof old->workers},
        {"background-workers", offsetof(mwl_server_config, background_workers),
         sizeof old->background_workers},
        {"port-file", offsetof(mwl_server_config, port_file), sizeof old->port_file},
        {"tls-port", offsetof(mwl_server_config, tls_port), sizeof old->tls_port},
        {"tls-bind", offsetof(mwl_server_config, tls_bind), sizeof old->tls_bind},
        {"tls-port-file", offsetof(mwl_server_config, tls_port_file), sizeof old->tls_port_file},
        {"query-log-size", offsetof(mwl_server_config, query_log_size), sizeof old->query_log_size},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        char *n = (char *)next + fixed[i].offset;
        const char *o = (const char *)old + fixed[i].offset;
        if (memcmp(n, o, fixed[i].size) != 0) {
            mwl_log(MWL_LOG_WARN, "reload: %s changes only with a restart; keeping the running value",
                    fixed[i].name);
            memcpy(n, o, fixed[i].size);
        }
    }
}

int mwl_server_reconfigure(mwl_server *srv, const mwl_server_config *cfg, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!srv || !cfg)
        return MWL_E_INVALID;
    mwl_server_config next = *cfg;
    keep_restart_keys(&srv->cfg, &next);
    int rc = mwl_server_config_check(&next, diag);
    if (rc != MWL_OK)
        return rc;
    /* Everything that can fail first, so a refusal changes nothing: the
     * TLS certificates (read again even when the paths are the same: the
     * files may have been renewed) and the audit file (reopened: a
     * rotation may have renamed it). */
    mwl_tls *tls = NULL;
    if (next.tls_port[0]) {
        mwl_tls_config tc;
        mwl_tls_config_init(&tc, true);
        tc.cert_file = next.tls_cert;
        tc.key_file = next.tls_key;
        tc.ca_file = next.tls_ca;
        tc.verify_peer = next.tls_verify_peer;
        rc = mwl_tls_new(&tc, srv->mem, &tls, diag);
        if (rc != MWL_OK)
            return rc;
    }
    mwl_file_log *audit = NULL;
    if (next.audit_log[0]) {
        rc = mwl_file_log_open(next.audit_log, srv->mem, &audit, diag);
        if (rc != MWL_OK) {
            mwl_tls_free(tls);
            return rc;
        }
    }
    /* Apply. TLS connections in flight keep the context they were made
     * with; the allow rules decide at each
     * A-ASSOCIATE-RQ; the timeouts and max-output apply from each session's
     * next pass, in flight or new. */
    if (srv->tls_listener != SIZE_MAX) {
        mwl_tls_free(srv->tls);
        srv->tls = tls;
    } else {
        mwl_tls_free(tls);
    }
    pthread_mutex_lock(&srv->audit_mu);
    mwl_file_log_close(srv->audit);
    srv->audit = audit;
    pthread_mutex_unlock(&srv->audit_mu);
    srv->cfg = next;
    build_policy(srv);
    mwl_log_set_level(next.log_level);
    return MWL_OK;
}

void mwl_server_set_reload(mwl_server *srv, mwl_server_reload_fn fn, void *user)
{
    srv->reload_fn = fn;
    srv->reload_user = user;
}

const mwl_server_config *mwl_server_get_config(const mwl_server *srv)
{
    return &srv->cfg;
}

static void reload(mwl_server *srv)
{
    mwl_log(MWL_LOG_INFO, "SIGHUP: reloading the configuration");
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc;
    if (srv->reload_fn) {
        rc = srv->reload_fn(srv->reload_user, srv, &diag);
    } else {
        mwl_server_config same = srv->cfg;
        rc = mwl_server_reconfigure(srv, &same, &diag);
    }
    if (rc != MWL_OK) {
        mwl_log(MWL_LOG_ERROR, "reload refused, the running configuration stays: %s",
                diag.msg[0] ? diag.msg : mwl_status_str(rc));
        return;
    }
    mwl_log(MWL_LOG_INFO,
            "reload done: %zu calling-aet-allow titles, %zu allow rules, max %u per peer, timeouts "
            "associate %u/idle %u ms, log %s%s%s",
            srv->cfg.calling_aet_allow.count, srv->cfg.allow.count, (unsigned)srv->cfg.max_peer_connections,
            (unsigned)srv->cfg.associate_timeout_ms, (unsigned)srv->cfg.idle_timeout_ms,
            mwl_log_level_name(srv->cfg.log_level), srv->tls ? ", TLS certificates read again" : "",
            srv->audit ? ", audit log reopened" : "");
}

/* ---- accepting ------------------------------------------------------------ */

static void on_accept(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user);

static void on_accept_resume(mwl_loop *loop, uint64_t id, void *user)
{
    (void)loop;
    (void)id;
    server_listener *l = user;
    l->accept_timer = 0;
    if (l->io)
        mwl_loop_set_interest(l->srv->loop, l->io, MWL_NET_READ);
}

/* Connections from `addr` that count against max-peer-connections: those
 * whose association has ended (Sta13: our last PDU sent, lingering until
 * the peer closes) are on their way out and do not. */
static size_t connections_from(const mwl_server *srv, const char *addr)
{
    size_t n = 0;
    for (const session *s = srv->sessions; s; s = s->next)
        if (!s->zombie && s->ul && mwl_ul_get_state(s->ul) != MWL_UL_STA13 && strcmp(s->peer_addr, addr) == 0)
            n++;
    return n;
}

/* The oldest session without an association that can be closed now: of
 * anyone (addr NULL), or of `addr` among those that count against
 * max-peer-connections (closing a rejected one, lingering in Sta13, would
 * make no room: it does not count). */
static session *oldest_pending(const mwl_server *srv, const char *addr)
{
    for (session *s = srv->pend_head; s; s = s->pend_next) {
        if (s->zombie)
            continue;
        if (!addr)
            return s;
        if (strcmp(s->peer_addr, addr) == 0 && s->ul && mwl_ul_get_state(s->ul) != MWL_UL_STA13)
            return s;
    }
    return NULL;
}

static void evict(mwl_server *srv, session *old, const char *limit)
{
    server_stat_add(&srv->stats.evicted, 1);
    mwl_log(MWL_LOG_WARN, "conn %s: closed after %llu ms without an association, to make room (%s)",
            old->peer, (unsigned long long)(mwl_now_ms() - old->started_ms), limit);
    char why[96];
    snprintf(why, sizeof why, "closed without an association to make room (%s)", limit);
    session_close(old, why);
}

/* A DICOM connection from `l` (NULL: adopted). Takes `conn`. A connection
 * that has not sent its A-ASSOCIATE-RQ yet never keeps a new one out: over
 * a limit, the oldest such connection (of that peer, or of anyone) makes
 * room, so idle connections cannot lock modalities out; only when a peer's
 * connections all have associations is its new one closed. */
static int admit(mwl_server *srv, const server_listener *l, mwl_conn *conn)
{
    server_stat_add(&srv->stats.connections, 1);
    if (srv->phase != PHASE_RUNNING) {
        mwl_conn_close(conn);
        return MWL_E_CLOSED;
    }
    char addr[MWL_NET_ADDRSTRLEN];
    session_peer_address(mwl_conn_peer(conn), addr, sizeof addr);
    size_t from_peer = connections_from(srv, addr);
    if (from_peer >= srv->cfg.max_peer_connections) {
        session *old = oldest_pending(srv, addr);
        if (!old) {
            server_stat_add(&srv->stats.dropped, 1);
            mwl_log(MWL_LOG_WARN, "conn %s: dropped: %zu associations from %s already (max-peer-connections)",
                    mwl_conn_peer(conn), from_peer, addr);
            mwl_conn_close(conn);
            return MWL_E_LIMIT;
        }
        evict(srv, old, "max-peer-connections");
    }
    if (srv->pending_count >= srv->cfg.max_pending) {
        session *old = oldest_pending(srv, NULL);
        if (old)
            evict(srv, old, "max-pending");
        if (srv->pending_count >= srv->cfg.max_pending) {
            server_stat_add(&srv->stats.dropped, 1);
            mwl_log(MWL_LOG_WARN, "conn %s: dropped: %u connections pending (max-pending)",
                    mwl_conn_peer(conn), (unsigned)srv->cfg.max_pending);
            mwl_conn_close(conn);
            return MWL_E_LIMIT;
        }
    }
    return session_create(srv, l, conn);
}

static void on_accept(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)loop;
    (void)io;
    (void)events;
    server_listener *l = user;
    mwl_server *srv = l->srv;
    for (int i = 0; i < SERVER_ACCEPT_PER_TURN && l->listener; i++) {
        mwl_conn *conn = NULL;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_listener_accept(l->listener, &conn, &diag);
        if (rc == MWL_AGAIN)
            return;
        if (rc == MWL_E_LIMIT) {
            /* Out of fds: the connection stays queued and the listener
             * readable, so polling it now would spin. Pause, retry later. */
            mwl_log(MWL_LOG_WARN, "accept on %s: out of file descriptors; pausing %d ms", l->name,
                    SERVER_ACCEPT_BACKOFF_MS);
            mwl_loop_set_interest(srv->loop, l->io, 0);
            if (mwl_loop_timer_add(srv->loop, mwl_deadline_in(SERVER_ACCEPT_BACKOFF_MS), on_accept_resume, l,
                                   &l->accept_timer) != MWL_OK)
                on_accept_resume(srv->loop, 0, l);
            return;
        }
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "accept on %s: %s: %s", l->name, mwl_status_str(rc), diag.msg);
            return;
        }
        if (l->spec.wrap) {
            mwl_conn *wrapped = NULL;
            char peer[MWL_NET_ADDRSTRLEN];
            snprintf(peer, sizeof peer, "%s", mwl_conn_peer(conn));
            mwl_diag_clear(&diag);
            rc = l->spec.wrap(l->spec.user, conn, &wrapped, &diag); /* takes conn */
            if (rc != MWL_OK || !wrapped) {
                mwl_log(MWL_LOG_WARN, "conn %s on %s: refused by the transport: %s", peer, l->name,
                        diag.msg[0] ? diag.msg : mwl_status_str(rc));
                continue;
            }
            conn = wrapped;
        }
        if (l->spec.accept) {
            if (srv->phase != PHASE_RUNNING) {
                mwl_conn_close(conn);
                continue;
            }
            (void)l->spec.accept(l->spec.user, srv, conn); /* takes conn, logs what it refuses */
            continue;
        }
        /* admit logs and closes what it cannot take */
        if (admit(srv, l, conn) == MWL_E_NOMEM)
            mwl_log(MWL_LOG_ERROR, "accept: out of memory for a session");
    }
}

int mwl_server_adopt(mwl_server *srv, mwl_conn *conn)
{
    if (!srv || !conn) {
        mwl_conn_close(conn);
        return MWL_E_INVALID;
    }
    return admit(srv, srv->listener_count ? &srv->listeners[0] : NULL, conn);
}

/* ---- lifetime --------------------------------------------------------------- */

static bool has_sop_class(const mwl_server *srv, const char *uid)
{
    for (size_t i = 0; i < srv->service_count; i++)
        if (strcmp(srv->services[i].sop_class, uid) == 0)
            return true;
    return false;
}

/* Copies the service table (Verification first when the setup lacks it)
 * and checks each entry. */
static int build_services(mwl_server *srv, const mwl_server_setup *setup, mwl_diag *diag)
{
    size_t n = setup ? setup->service_count : 0;
    bool has_echo = false;
    for (size_t i = 0; i < n; i++)
        if (setup->services[i].sop_class && strcmp(setup->services[i].sop_class, MWL_UID_Verification) == 0)
            has_echo = true;
    if (n + (has_echo ? 0 : 1) > MWL_SERVER_SERVICES_MAX) {
        mwl_diag_set(diag, 0, 0, "at most %d services", MWL_SERVER_SERVICES_MAX);
        return MWL_E_INVALID;
    }
    if (!has_echo)
        srv->services[srv->service_count++] =
            (mwl_service){&mwl_scp_verification, MWL_UID_Verification, NULL};
    for (size_t i = 0; i < n; i++) {
        const mwl_service *svc = &setup->services[i];
        if (!svc->cls || !svc->sop_class || !svc->sop_class[0] || !svc->cls->request) {
            mwl_diag_set(diag, 0, 0, "service %zu: a class and a SOP class are required", i);
            return MWL_E_INVALID;
        }
        if (has_sop_class(srv, svc->sop_class)) {
            mwl_diag_set(diag, 0, 0, "service %zu: SOP class %s is offered twice", i, svc->sop_class);
            return MWL_E_INVALID;
        }
        if (svc->cls->check) {
            int rc = svc->cls->check(svc->config, diag);
            if (rc != MWL_OK)
                return rc;
        }
        srv->services[srv->service_count++] = *svc;
    }
    return MWL_OK;
}

static void build_policy(mwl_server *srv)
{
    mwl_server_config *cfg = &srv->cfg;
    /* One negotiation entry per service: the presentation contexts we
     * accept are exactly the table's SOP classes. */
    for (size_t i = 0; i < srv->service_count; i++) {
        mwl_policy_syntax *syn = &srv->syntaxes[i];
        syn->abstract_syntax = srv->services[i].sop_class;
        syn->transfer_syntaxes = transfer_syntaxes;
        syn->transfer_syntax_count = sizeof transfer_syntaxes / sizeof transfer_syntaxes[0];
        syn->accept_scu_role = true;  /* the peer is the SCU: we are the SCP */
        syn->accept_scp_role = false; /* we never act as SCU for these */
    }
    mwl_policy_init(&srv->policy);
    srv->policy.ae_title = cfg->ae_title;
    srv->policy.strict_called_ae = cfg->strict_called_aet;
    /* calling-aet-allow and the allow rules are decided per association
     * with the peer's address (session.c, mwl_allow_check). */
    srv->policy.syntaxes = srv->syntaxes;
    srv->policy.syntax_count = srv->service_count;
    srv->policy.max_pdu_length = cfg->max_pdu;
    srv->policy.min_peer_max_length = SERVER_MIN_PEER_PDU;
    srv->policy.implementation_class_uid = MWL_IMPLEMENTATION_CLASS_UID;
    srv->policy.implementation_version_name = MWL_IMPLEMENTATION_VERSION_NAME;

    mwl_ul_config_init(&srv->ul_cfg, MWL_UL_ACCEPTOR);
    srv->ul_cfg.mem = srv->mem;
    srv->ul_cfg.max_pdu_length = cfg->max_pdu;
    srv->ul_cfg.artim_timeout_ms = cfg->acse_timeout_ms;
    srv->ul_cfg.idle_timeout_ms = cfg->idle_timeout_ms;
}

static int open_listener(mwl_server *srv, const mwl_listener_spec *spec, mwl_diag *diag)
{
    if (srv->listener_count == MWL_SERVER_LISTENERS_MAX) {
        mwl_diag_set(diag, 0, 0, "at most %d listeners", MWL_SERVER_LISTENERS_MAX);
        return MWL_E_INVALID;
    }
    server_listener *l = &srv->listeners[srv->listener_count];
    memset(l, 0, sizeof *l);
    l->srv = srv;
    l->index = srv->listener_count;
    l->spec = *spec;
    snprintf(l->name, sizeof l->name, "%s", spec->name && spec->name[0] ? spec->name : "dicom");
    snprintf(l->bind, sizeof l->bind, "%s", spec->bind ? spec->bind : "");
    l->spec.name = l->name;
    l->spec.bind = l->bind;
    mwl_listen_opts opts;
    mwl_listen_opts_init(&opts);
    opts.host = l->bind;
    opts.port = spec->port;
    opts.nonblocking = true;
    int rc = mwl_listener_open(&opts, srv->mem, &l->listener, diag);
    if (rc == MWL_OK)
        rc = mwl_loop_add(srv->loop, mwl_listener_fd(l->listener), MWL_NET_READ, on_accept, l, &l->io);
    if (rc != MWL_OK) {
        if (diag && diag->msg[0]) {
            char msg[sizeof diag->msg];
            memcpy(msg, diag->msg, sizeof msg);
            mwl_diag_set(diag, 0, 0, "%s listener: %s", l->name, msg);
        }
        mwl_listener_close(l->listener);
        l->listener = NULL;
        return rc;
    }
    srv->listener_count++;
    return MWL_OK;
}

/* The TLS listener's wrap hook: every accepted TCP connection becomes a
 * TLS one on the current context (its handshake runs in the session's
 * first reads, under associate-timeout like any RQ). */
static int tls_wrap(void *user, mwl_conn *conn, mwl_conn **out, mwl_diag *diag)
{
    mwl_server *srv = user;
    return mwl_tls_wrap(srv->tls, conn, NULL, out, diag);
}

static int open_tls_listener(mwl_server *srv, mwl_diag *diag)
{
    const mwl_server_config *cfg = &srv->cfg;
    mwl_tls_config tc;
    mwl_tls_config_init(&tc, true);
    tc.cert_file = cfg->tls_cert;
    tc.key_file = cfg->tls_key;
    tc.ca_file = cfg->tls_ca;
    tc.verify_peer = cfg->tls_verify_peer;
    int rc = mwl_tls_new(&tc, srv->mem, &srv->tls, diag);
    if (rc != MWL_OK)
        return rc;
    uint16_t port = 0;
    rc = mwl_net_parse_port(cfg->tls_port, &port, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_listener_spec spec = {"dicom-tls", cfg->tls_bind[0] ? cfg->tls_bind : cfg->bind,
                              port,        tls_wrap,
                              NULL,        NULL,
                              NULL,        srv,
                              0,           0};
    srv->tls_listener = srv->listener_count;
    return open_listener(srv, &spec, diag);
}

int mwl_server_new(const mwl_server_config *cfg, const mwl_server_setup *setup, mwl_server **out,
                   mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!out)
        return MWL_E_INVALID;
    *out = NULL;
    if (!cfg)
        return MWL_E_INVALID;
    int rc = mwl_server_config_check(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    if (setup && setup->listener_count + 2 > MWL_SERVER_LISTENERS_MAX) {
        mwl_diag_set(diag, 0, 0, "at most %d listeners", MWL_SERVER_LISTENERS_MAX);
        return MWL_E_INVALID;
    }
    const mwl_mem *mem = setup && setup->mem ? setup->mem : mwl_mem_default();
    mwl_server *srv = mwl_mem_calloc(mem, 1, sizeof *srv);
    if (!srv)
        return MWL_E_NOMEM;
    srv->mem = mem;
    srv->cfg = *cfg;
    srv->tls_listener = SIZE_MAX;
    pthread_mutex_init(&srv->audit_mu, NULL);
    mwl_wbuf_init(&srv->scratch, mem);
    mwl_wbuf_init(&srv->audit_buf, mem);
    if (cfg->audit_log[0]) {
        rc = mwl_file_log_open(cfg->audit_log, mem, &srv->audit, diag);
        if (rc != MWL_OK) {
            mwl_server_free(srv);
            return rc;
        }
    }
    rc = mwl_query_log_new(cfg->query_log_size, &srv->query_log);
    if (rc != MWL_OK) {
        mwl_server_free(srv);
        return rc;
    }
    atomic_init(&srv->shutdown_requested, false);
    srv->shutdown_task.fn = on_shutdown_task;
    srv->phase = PHASE_RUNNING;
    rc = build_services(srv, setup, diag);
    if (rc != MWL_OK) {
        mwl_server_free(srv);
        return rc;
    }
    build_policy(srv);

    /* Everything is sized here, once (docs/architecture.md, promise 2):
     * DICOM sessions (associated + pending), the other protocols'
     * connections, and one pool job per session or connection. */
    size_t sessions = (size_t)cfg->max_associations + cfg->max_pending;
    size_t extra_fds = 0, extra_jobs = 0;
    for (size_t i = 0; setup && i < setup->listener_count; i++) {
        extra_fds += setup->listeners[i].max_connections;
        extra_jobs += setup->listeners[i].max_jobs;
    }
    size_t listeners = (cfg->tls_port[0] ? 2u : 1u) + (setup ? setup->listener_count : 0u);
    mwl_loop_config lc = {sessions + extra_fds + listeners, 2 * (sessions + extra_fds) + 8 + listeners, 0, 0};
    rc = mwl_loop_new(&lc, mem, &srv->loop, diag);
    if (rc == MWL_OK) {
        /* Background work (long scans) runs on its own threads at the
         * lowest CPU priority, so short queries always find a worker and
         * most of the CPU. */
        mwl_pool_config pc;
        mwl_pool_config_init(&pc, cfg->workers, sessions + extra_jobs + 1);
        /* By default half the CPUs: scans never occupy every core, so a
         * short query always finds one free of them (measured on 2 CPUs:
         * p99 1.9 ms with one scan thread, 4.4 ms with two). */
        size_t cpus = mwl_cpu_count();
        size_t half = cpus > 1 ? cpus / 2 : 1;
        pc.background_threads = cfg->background_workers ? cfg->background_workers : (half > 64 ? 64 : half);
        rc = mwl_pool_new_ex(&pc, mem, &srv->pool, diag);
    }
    if (rc == MWL_OK) {
        mwl_listener_spec dicom = {"dicom", cfg->bind, (uint16_t)cfg->port, NULL, NULL, NULL, NULL, NULL,
                                   0,       0};
        rc = open_listener(srv, &dicom, diag);
    }
    if (rc == MWL_OK && cfg->tls_port[0])
        rc = open_tls_listener(srv, diag);
    for (size_t i = 0; rc == MWL_OK && setup && i < setup->listener_count; i++)
        rc = open_listener(srv, &setup->listeners[i], diag);
    if (rc != MWL_OK) {
        mwl_server_free(srv);
        return rc;
    }
    char services[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < srv->service_count && used < sizeof services; i++) {
        int n = snprintf(services + used, sizeof services - used, "%s%s", i ? ", " : "",
                         srv->services[i].cls->name);
        used += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < srv->listener_count; i++)
        mwl_log(MWL_LOG_INFO, "listening on %s (%s)", mwl_listener_addr(srv->listeners[i].listener),
                srv->listeners[i].name);
    mwl_log(MWL_LOG_INFO,
            "AE title %s: services %s; max %u associations, %u pending, %u per peer; max PDU %u; "
            "%u workers, %u background",
            cfg->ae_title, services, (unsigned)cfg->max_associations, (unsigned)cfg->max_pending,
            (unsigned)cfg->max_peer_connections, (unsigned)cfg->max_pdu, (unsigned)cfg->workers,
            (unsigned)(mwl_pool_threads(srv->pool) - cfg->workers));
    if (cfg->calling_aet_allow.count || cfg->allow.count)
        mwl_log(MWL_LOG_INFO,
                "access: %zu calling-aet-allow titles, %zu allow rules; other callers get (1,1,3)",
                cfg->calling_aet_allow.count, cfg->allow.count);
    else
        mwl_log(MWL_LOG_INFO, "access: any calling AE title from any address");
    *out = srv;
    return MWL_OK;
}

void mwl_server_free(mwl_server *srv)
{
    if (!srv)
        return;
    if (srv->loop) {
        close_all(srv, "server freed");
        /* Jobs still queued run now and post their results; END steps
         * submitted after this run inline (server_op_submit without a pool). */
        mwl_pool_free(srv->pool);
        srv->pool = NULL;
        /* The tasks those jobs posted run now (a protocol listener's too:
         * a few turns even when no session is left). */
        for (int i = 0; i < 10000 && (srv->sessions || i < 3); i++)
            if (mwl_loop_run_once(srv->loop, srv->sessions ? 10 : 0) != MWL_OK)
                break;
        if (srv->sessions)
            mwl_log(MWL_LOG_ERROR, "server freed with sessions whose worker steps never returned");
    } else {
        mwl_pool_free(srv->pool);
    }
    close_listeners(srv);
    mwl_loop_free(srv->loop);
    mwl_tls_free(srv->tls);
    mwl_file_log_close(srv->audit);
    pthread_mutex_destroy(&srv->audit_mu);
    mwl_wbuf_clear(&srv->audit_buf);
    mwl_wbuf_clear(&srv->scratch);
    mwl_query_log_free(srv->query_log);
    mwl_mem_free(srv->mem, srv);
}

uint16_t mwl_server_listener_port(const mwl_server *srv, size_t index)
{
    if (!srv || index >= srv->listener_count || !srv->listeners[index].listener)
        return 0;
    return mwl_listener_port(srv->listeners[index].listener);
}

uint16_t mwl_server_port(const mwl_server *srv)
{
    return mwl_server_listener_port(srv, 0);
}

uint16_t mwl_server_tls_port(const mwl_server *srv)
{
    return srv && srv->tls_listener != SIZE_MAX ? mwl_server_listener_port(srv, srv->tls_listener) : 0;
}

const char *mwl_server_addr(const mwl_server *srv)
{
    return srv && srv->listener_count && srv->listeners[0].listener
               ? mwl_listener_addr(srv->listeners[0].listener)
               : "";
}

mwl_loop *mwl_server_loop(mwl_server *srv)
{
    return srv ? srv->loop : NULL;
}

mwl_pool *mwl_server_pool(mwl_server *srv)
{
    return srv ? srv->pool : NULL;
}

int mwl_server_install_signals(mwl_server *srv)
{
    if (!srv)
        return MWL_E_INVALID;
    int rc = mwl_net_signals_install(srv->loop, on_signal, srv);
    if (rc == MWL_OK)
        srv->signals_installed = true;
    return rc;
}

int mwl_server_run(mwl_server *srv)
{
    if (!srv)
        return MWL_E_INVALID;
    if (srv->phase == PHASE_DONE)
        return MWL_OK;
    return mwl_loop_run(srv->loop);
}

bool mwl_server_run_once(mwl_server *srv, int max_wait_ms, int *rc)
{
    int r = mwl_loop_run_once(srv->loop, max_wait_ms);
    check_shutdown_done(srv);
    if (rc)
        *rc = r;
    return srv->phase != PHASE_DONE;
}

void mwl_server_get_stats(const mwl_server *srv, mwl_server_stats *out)
{
    /* The counters are atomics so that a test thread may read them while
     * the loop runs; cast away const for the atomic loads. */
    stat_counters *c = (stat_counters *)(uintptr_t)&srv->stats;
    out->connections = atomic_load(&c->connections);
    out->associations = atomic_load(&c->associations);
    out->rejected = atomic_load(&c->rejected);
    out->rejected_busy = atomic_load(&c->rejected_busy);
    out->rejected_calling_ae = atomic_load(&c->rejected_calling_ae);
    out->rejected_called_ae = atomic_load(&c->rejected_called_ae);
    out->dropped = atomic_load(&c->dropped);
    out->evicted = atomic_load(&c->evicted);
    out->find_steps = atomic_load(&c->find_steps);
    out->aborted = atomic_load(&c->aborted);
    out->echoes = atomic_load(&c->echoes);
    out->finds = atomic_load(&c->finds);
    out->find_matches = atomic_load(&c->find_matches);
    out->find_cancels = atomic_load(&c->find_cancels);
    out->active = atomic_load(&c->active);
}

mwl_query_log *mwl_server_query_log(mwl_server *srv)
{
    return srv ? srv->query_log : NULL;
}
