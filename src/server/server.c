/* The server: listener, loop, worker pool, association limits, graceful
 * shutdown. Sessions (session.c) do the per-association work; this file
 * decides who gets a session and when the whole thing stops.
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

static void close_listener(mwl_server *srv)
{
    if (srv->listen_io) {
        mwl_loop_remove(srv->loop, srv->listen_io);
        srv->listen_io = NULL;
    }
    if (srv->accept_timer) {
        (void)mwl_loop_timer_cancel(srv->loop, srv->accept_timer);
        srv->accept_timer = 0;
    }
    mwl_listener_close(srv->listener);
    srv->listener = NULL;
}

/* Closes every connection now; sessions with a provider state wait as
 * zombies for their END step. */
static void close_all(mwl_server *srv, const char *why)
{
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (s->zombie)
            continue;
        session_set_outcome(s, "%s", why);
        s->done = true;
        session_service(s);
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
    if (!srv->sessions && srv->phase != PHASE_DONE)
        stop_loop(srv);
}

static void begin_shutdown(mwl_server *srv, const char *why)
{
    if (srv->phase != PHASE_RUNNING)
        return;
    srv->phase = PHASE_DRAINING;
    close_listener(srv);
    size_t left = 0;
    for (session *s = srv->sessions; s; s = s->next)
        left++;
    mwl_log(MWL_LOG_INFO, "shutdown (%s): not accepting; %zu associations active, grace %u ms", why, left,
            (unsigned)srv->cfg.shutdown_grace_ms);
    if (!srv->sessions) {
        stop_loop(srv);
        return;
    }
    if (mwl_loop_timer_add(srv->loop, mwl_deadline_in(srv->cfg.shutdown_grace_ms), on_grace_timer, srv,
                           &srv->grace_timer) != MWL_OK) {
        srv->grace_timer = 0;
        on_grace_timer(srv->loop, 0, srv);
    }
}

static void on_signal(mwl_loop *loop, int signo, void *user)
{
    (void)loop;
    mwl_server *srv = user;
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

void server_session_freed(mwl_server *srv, bool reject_slot)
{
    if (reject_slot)
        srv->reject_count--;
    else
        srv->normal_count--;
    atomic_fetch_sub(&srv->stats.active, 1);
    if (srv->phase != PHASE_RUNNING && srv->phase != PHASE_DONE && !srv->sessions)
        stop_loop(srv);
}

/* ---- accepting ------------------------------------------------------------ */

static void on_accept(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user);

static void on_accept_resume(mwl_loop *loop, uint64_t id, void *user)
{
    (void)loop;
    (void)id;
    mwl_server *srv = user;
    srv->accept_timer = 0;
    if (srv->listen_io)
        mwl_loop_set_interest(srv->loop, srv->listen_io, MWL_NET_READ);
}

static void on_accept(mwl_loop *loop, mwl_loop_io *io, unsigned events, void *user)
{
    (void)loop;
    (void)io;
    (void)events;
    mwl_server *srv = user;
    for (int i = 0; i < SERVER_ACCEPT_PER_TURN && srv->listener; i++) {
        mwl_conn *conn = NULL;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_listener_accept(srv->listener, &conn, &diag);
        if (rc == MWL_AGAIN)
            return;
        if (rc == MWL_E_LIMIT) {
            /* Out of fds: the connection stays queued and the listener
             * readable, so polling it now would spin. Pause, retry later. */
            mwl_log(MWL_LOG_WARN, "accept: out of file descriptors; pausing %d ms", SERVER_ACCEPT_BACKOFF_MS);
            mwl_loop_set_interest(srv->loop, srv->listen_io, 0);
            if (mwl_loop_timer_add(srv->loop, mwl_deadline_in(SERVER_ACCEPT_BACKOFF_MS), on_accept_resume,
                                   srv, &srv->accept_timer) != MWL_OK)
                on_accept_resume(srv->loop, 0, srv);
            return;
        }
        if (rc != MWL_OK) {
            mwl_log(MWL_LOG_WARN, "accept: %s: %s", mwl_status_str(rc), diag.msg);
            return;
        }
        /* adopt logs and closes what it cannot take */
        if (mwl_server_adopt(srv, conn) == MWL_E_NOMEM)
            mwl_log(MWL_LOG_ERROR, "accept: out of memory for a session");
    }
}

int mwl_server_adopt(mwl_server *srv, mwl_conn *conn)
{
    if (!srv || !conn) {
        mwl_conn_close(conn);
        return MWL_E_INVALID;
    }
    server_stat_add(&srv->stats.connections, 1);
    if (srv->phase != PHASE_RUNNING) {
        mwl_conn_close(conn);
        return MWL_E_CLOSED;
    }
    bool reject = false;
    if (srv->normal_count >= srv->cfg.max_associations) {
        if (srv->reject_count >= SERVER_REJECT_SLOTS) {
            server_stat_add(&srv->stats.dropped, 1);
            mwl_log(MWL_LOG_WARN, "conn %s: dropped: %u associations and %d rejections in progress",
                    mwl_conn_peer(conn), (unsigned)srv->cfg.max_associations, SERVER_REJECT_SLOTS);
            mwl_conn_close(conn);
            return MWL_E_LIMIT;
        }
        reject = true;
    }
    return session_create(srv, conn, reject);
}

/* ---- lifetime --------------------------------------------------------------- */

static int check_config(const mwl_server_config *cfg, mwl_diag *diag)
{
    /* The parser enforces these; a config built by hand may not. */
    const char *bad = NULL;
    if (cfg->port > 65535)
        bad = "port";
    else if (cfg->max_associations < 1 || cfg->max_associations > 1000)
        bad = "max-associations";
    else if (cfg->max_pdu < 4096 || cfg->max_pdu > 16777216)
        bad = "max-pdu";
    else if (cfg->acse_timeout_ms == 0)
        bad = "acse-timeout";
    else if (cfg->idle_timeout_ms == 0)
        bad = "idle-timeout";
    else if (cfg->write_timeout_ms == 0)
        bad = "write-timeout";
    else if (cfg->workers < 1 || cfg->workers > 64)
        bad = "workers";
    else if (cfg->find_batch < 1 || cfg->find_batch > 1024)
        bad = "find-batch";
    else if (!cfg->ae_title[0] || strlen(cfg->ae_title) > MWL_AE_TITLE_MAX)
        bad = "aet";
    else if (cfg->calling_aet_allow_count > MWL_SERVER_ALLOW_MAX)
        bad = "calling-aet-allow";
    if (bad) {
        mwl_diag_set(diag, 0, 0, "%s: invalid value", bad);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

static void build_policy(mwl_server *srv)
{
    mwl_server_config *cfg = &srv->cfg;
    for (size_t i = 0; i < 2; i++) {
        mwl_policy_syntax *syn = &srv->syntaxes[i];
        syn->abstract_syntax = i == 0 ? MWL_UID_Verification : MWL_UID_ModalityWorklistInformationModelFind;
        syn->transfer_syntaxes = transfer_syntaxes;
        syn->transfer_syntax_count = sizeof transfer_syntaxes / sizeof transfer_syntaxes[0];
        syn->accept_scu_role = true;  /* the peer is the SCU: we are the SCP */
        syn->accept_scp_role = false; /* we never act as SCU for these */
    }
    for (size_t i = 0; i < cfg->calling_aet_allow_count; i++)
        srv->allow[i] = cfg->calling_aet_allow[i];
    mwl_policy_init(&srv->policy);
    srv->policy.ae_title = cfg->ae_title;
    srv->policy.strict_called_ae = cfg->strict_called_aet;
    srv->policy.calling_ae_allow = srv->allow;
    srv->policy.calling_ae_allow_count = cfg->calling_aet_allow_count;
    srv->policy.syntaxes = srv->syntaxes;
    srv->policy.syntax_count = srv->has_provider ? 2 : 1;
    srv->policy.max_pdu_length = cfg->max_pdu;
    srv->policy.implementation_class_uid = MWL_IMPLEMENTATION_CLASS_UID;
    srv->policy.implementation_version_name = MWL_IMPLEMENTATION_VERSION_NAME;

    mwl_ul_config_init(&srv->ul_cfg, MWL_UL_ACCEPTOR);
    srv->ul_cfg.mem = srv->mem;
    srv->ul_cfg.max_pdu_length = cfg->max_pdu;
    srv->ul_cfg.artim_timeout_ms = cfg->acse_timeout_ms;
    srv->ul_cfg.idle_timeout_ms = cfg->idle_timeout_ms;
}

int mwl_server_new(const mwl_server_config *cfg, const mwl_find_provider *provider, const mwl_mem *mem,
                   mwl_server **out, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!out)
        return MWL_E_INVALID;
    *out = NULL;
    if (!cfg)
        return MWL_E_INVALID;
    int rc = check_config(cfg, diag);
    if (rc != MWL_OK)
        return rc;
    if (provider && (!provider->begin || !provider->next || !provider->end)) {
        mwl_diag_set(diag, 0, 0, "find provider: begin, next and end are required");
        return MWL_E_INVALID;
    }
    if (!mem)
        mem = mwl_mem_default();
    mwl_server *srv = mwl_mem_calloc(mem, 1, sizeof *srv);
    if (!srv)
        return MWL_E_NOMEM;
    srv->mem = mem;
    srv->cfg = *cfg;
    if (provider) {
        srv->provider = *provider;
        srv->has_provider = true;
    }
    mwl_wbuf_init(&srv->scratch, mem);
    atomic_init(&srv->shutdown_requested, false);
    srv->shutdown_task.fn = on_shutdown_task;
    srv->phase = PHASE_RUNNING;
    build_policy(srv);

    /* Everything is sized here, once (docs/architecture.md, promise 2). */
    size_t sessions = (size_t)cfg->max_associations + SERVER_REJECT_SLOTS;
    mwl_loop_config lc = {sessions + 1, sessions + 8, 0, 0};
    rc = mwl_loop_new(&lc, mem, &srv->loop, diag);
    if (rc == MWL_OK)
        rc = mwl_pool_new(cfg->workers, sessions + 1, mem, &srv->pool, diag);
    if (rc == MWL_OK) {
        mwl_listen_opts opts;
        mwl_listen_opts_init(&opts);
        opts.host = cfg->bind;
        opts.port = (uint16_t)cfg->port;
        opts.nonblocking = true;
        rc = mwl_listener_open(&opts, mem, &srv->listener, diag);
    }
    if (rc == MWL_OK)
        rc = mwl_loop_add(srv->loop, mwl_listener_fd(srv->listener), MWL_NET_READ, on_accept, srv,
                          &srv->listen_io);
    if (rc != MWL_OK) {
        mwl_server_free(srv);
        return rc;
    }
    mwl_log(MWL_LOG_INFO, "listening on %s as %s: max %u associations, max PDU %u, %u workers%s",
            mwl_listener_addr(srv->listener), cfg->ae_title, (unsigned)cfg->max_associations,
            (unsigned)cfg->max_pdu, (unsigned)cfg->workers,
            srv->has_provider ? "" : ", no worklist provider");
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
         * submitted after this run inline (submit() without a pool). */
        mwl_pool_free(srv->pool);
        srv->pool = NULL;
        for (int i = 0; i < 10000 && srv->sessions; i++)
            if (mwl_loop_run_once(srv->loop, 10) != MWL_OK)
                break;
        if (srv->sessions)
            mwl_log(MWL_LOG_ERROR, "server freed with sessions whose provider steps never returned");
    }
    close_listener(srv);
    mwl_loop_free(srv->loop);
    mwl_wbuf_clear(&srv->scratch);
    mwl_mem_free(srv->mem, srv);
}

uint16_t mwl_server_port(const mwl_server *srv)
{
    return srv && srv->listener ? mwl_listener_port(srv->listener) : 0;
}

const char *mwl_server_addr(const mwl_server *srv)
{
    return srv && srv->listener ? mwl_listener_addr(srv->listener) : "";
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
    out->dropped = atomic_load(&c->dropped);
    out->aborted = atomic_load(&c->aborted);
    out->echoes = atomic_load(&c->echoes);
    out->finds = atomic_load(&c->finds);
    out->find_matches = atomic_load(&c->find_matches);
    out->find_cancels = atomic_load(&c->find_cancels);
    out->active = atomic_load(&c->active);
}
