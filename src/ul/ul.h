/* DICOM Upper Layer association, sans-IO (PS3.8 §7 service procedures,
 * §9.1 transport, §9.2 state machine, Table 9-10; PS3.7 Annex D.3.3
 * negotiation). The session owns no socket and reads no clock: bytes and
 * the current time come in, events and bytes go out (STYLE.md §4).
 *
 * A driver (server or client) runs this loop for one association:
 *
 *     mwl_ul_config cfg;  mwl_ul_config_init(&cfg, MWL_UL_ACCEPTOR);
 *     mwl_ul *ul;         rc = mwl_ul_new(&cfg, &ul);
 *     rc = mwl_ul_transport_connected(ul, now);         // TCP accepted
 *     loop:
 *       poll(fd, readable | (pending output ? writable : 0),
 *            timeout = mwl_ul_deadline(ul) - now);
 *       on readable:   n = read(fd, buf);
 *                      n == 0 -> mwl_ul_transport_closed(ul, now)
 *                      while (n) { rc = mwl_ul_feed(ul, p, n, &used, now);
 *                                  p += used; n -= used;
 *                                  drain_events(); }  // see below
 *       on writable:   len = mwl_ul_pending_output(ul, &out);
 *                      w = write(fd, out, len); mwl_ul_output_written(ul, w);
 *       now >= mwl_ul_deadline(ul): mwl_ul_timer(ul, now); drain_events();
 *       drain_events: while (mwl_ul_next_event(ul, &ev) == MWL_OK) switch (ev.type) …
 *       on MWL_UL_EV_CLOSED: write what is pending if you like, close(fd),
 *                            mwl_ul_free(ul).
 *
 * A requestor (client) differs only at the start: mwl_ul_associate(ul, &rq)
 * (PS3.8 Evt1, "issue a TCP connect request"), then connect() and call
 * mwl_ul_transport_connected() when the connection is up (Evt2), which
 * queues the A-ASSOCIATE-RQ.
 *
 * Status conventions (base/status.h): MWL_OK; MWL_AGAIN "nothing now";
 * negative MWL_E_* errors. MWL_E_NOMEM and MWL_E_INTERNAL are fatal
 * (mwl_is_fatal): the session is unusable, every later call returns the
 * same status, and the driver should close the transport and free it.
 * All other errors leave the session exactly as it was. Protocol outcomes
 * (rejection, abort, their source and reason) are never errors: they are
 * events. */
#ifndef MWL_UL_H
#define MWL_UL_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/mem.h"
#include "base/status.h"
#include "ul/pdu.h"

/* ======================================================================
 * States (PS3.8 §9.2.1). The session is always in exactly one of them.
 *
 *                     acceptor                          requestor
 *   Sta1 --transport_connected(Evt5)--> Sta2   Sta1 --associate(Evt1)--> Sta4
 *   Sta2 --A-ASSOCIATE-RQ in (Evt6)--> Sta3    Sta4 --transport_connected(Evt2)--> Sta5
 *   Sta3 --accept(Evt7)--> Sta6                Sta5 --A-ASSOCIATE-AC in (Evt3)--> Sta6
 *        --reject(Evt8)--> Sta13                    --A-ASSOCIATE-RJ in (Evt4)--> Sta1
 *   Sta6 --release(Evt11)--> Sta7 --A-RELEASE-RP in (Evt13)--> Sta1
 *   Sta6 --A-RELEASE-RQ in (Evt12)--> Sta8 --release_response(Evt14)--> Sta13
 *   any  --abort / bad PDU / A-ABORT in / transport closed--> Sta13 or Sta1
 *
 * MWL_UL_STA1  Idle. The state at creation (no transport yet), and the
 *              state once the association is over and the transport is (to
 *              be) closed; every such return is announced by
 *              MWL_UL_EV_CLOSED. No timer runs; mwl_ul_feed refuses input
 *              (MWL_E_CLOSED).
 * MWL_UL_STA2  Transport open, awaiting A-ASSOCIATE-RQ (acceptor; entered by
 *              mwl_ul_transport_connected, AE-5). ARTIM runs: if no whole
 *              A-ASSOCIATE-RQ arrives in time the transport is closed.
 * MWL_UL_STA3  Awaiting the local A-ASSOCIATE response (acceptor; entered
 *              when a protocol-acceptable RQ arrived, AE-6; the
 *              MWL_UL_EV_ASSOCIATE_RQ event is queued). The driver must call
 *              mwl_ul_accept or mwl_ul_reject (mwl_negotiate computes which).
 * MWL_UL_STA4  Awaiting transport connection (requestor; entered by
 *              mwl_ul_associate, AE-1). The driver connects; no input yet.
 * MWL_UL_STA5  Awaiting A-ASSOCIATE-AC or -RJ (requestor; entered by
 *              mwl_ul_transport_connected, AE-2, which queued the RQ).
 * MWL_UL_STA6  Association established, data transfer (AE-3 / AE-7).
 *              The presentation contexts and the peer's maximum PDU length
 *              are known (mwl_ul_context, mwl_ul_peer_max_pdu_length).
 * MWL_UL_STA7  We sent A-RELEASE-RQ, awaiting A-RELEASE-RP (AR-1). P-DATA
 *              from the peer is still delivered (AR-6); we may not send any.
 * MWL_UL_STA8  Peer sent A-RELEASE-RQ (AR-2, MWL_UL_EV_RELEASE_RQ). We may
 *              still send P-DATA (AR-7), then must call
 *              mwl_ul_release_response (or abort).
 * MWL_UL_STA9  Release collision, requestor side: both sides sent
 *              A-RELEASE-RQ; awaiting our local release response (AR-8).
 * MWL_UL_STA10 Release collision, acceptor side: awaiting A-RELEASE-RP (AR-8).
 * MWL_UL_STA11 Release collision, requestor side: we sent A-RELEASE-RP,
 *              awaiting the peer's A-RELEASE-RP (AR-9).
 * MWL_UL_STA12 Release collision, acceptor side: got A-RELEASE-RP
 *              (MWL_UL_EV_RELEASE_RP with collision set, AR-10); awaiting our
 *              local release response.
 * MWL_UL_STA13 Association gone, awaiting transport close. Entered after we
 *              sent A-ASSOCIATE-RJ, A-RELEASE-RP or A-ABORT. ARTIM runs; the
 *              peer should close first (PS3.8 §9.1.4), else ARTIM expiry
 *              closes (AA-2). Incoming PDUs are ignored (AA-6) or answered
 *              with A-ABORT (AA-7); after an unparseable PDU all further
 *              input is discarded unread, because its framing is lost.
 *
 * Invariant: ARTIM runs exactly in Sta2 and Sta13. The idle timer (see
 * mwl_ul_config.idle_timeout_ms) runs in Sta3..Sta12.
 * ====================================================================== */
typedef enum mwl_ul_state {
    MWL_UL_STA1 = 1,
    MWL_UL_STA2,
    MWL_UL_STA3,
    MWL_UL_STA4,
    MWL_UL_STA5,
    MWL_UL_STA6,
    MWL_UL_STA7,
    MWL_UL_STA8,
    MWL_UL_STA9,
    MWL_UL_STA10,
    MWL_UL_STA11,
    MWL_UL_STA12,
    MWL_UL_STA13
} mwl_ul_state;

typedef enum mwl_ul_role {
    MWL_UL_ACCEPTOR = 1, /* server: waits for A-ASSOCIATE-RQ */
    MWL_UL_REQUESTOR = 2 /* client: sends A-ASSOCIATE-RQ */
} mwl_ul_role;

/* Returns "Sta1" … "Sta13", or "Sta?" for other values; static storage. */
MWL_API const char *mwl_ul_state_name(mwl_ul_state state);

/* ---- configuration ---------------------------------------------------- */

typedef struct mwl_ul_config {
    mwl_ul_role role;
    const mwl_mem *mem; /* NULL = mwl_mem_default(); used for everything */
    /* Our Maximum-length-received (sub-item 51H, PS3.8 D.1): the largest
     * P-DATA-TF PDU-length we accept. It is written into the A-ASSOCIATE-RQ
     * or -AC we send (replacing whatever the caller put in
     * user_info.max_length), so what we advertise is what we enforce: an
     * incoming P-DATA-TF longer than this is aborted (A-ABORT, source 2,
     * reason 6) as soon as its header arrives. 0 ("unlimited") is not
     * allowed. Default 16384. */
    uint32_t max_pdu_length;
    /* Largest PDU-length accepted for A-ASSOCIATE-RQ/-AC PDUs, which 51H
     * does not cover (many presentation contexts make them big).
     * Default 131072. The session never buffers more than
     * 6 + max(max_pdu_length, max_associate_length) input bytes. */
    uint32_t max_associate_length;
    /* Item-count bounds for the decoder (contexts, transfer syntaxes, sub-
     * items, PDVs). Its max_pdu_length is ignored: the session sets it per
     * PDU type from the two fields above. */
    mwl_pdu_limits limits;
    /* ARTIM timer (PS3.8 §9.1.5, "shall be configurable"): how long to wait
     * for the A-ASSOCIATE-RQ after a connection is accepted (Sta2) and for
     * the peer to close after we sent RJ / RP / A-ABORT (Sta13). Default
     * 30000 ms (common practice; the standard gives no value). */
    uint64_t artim_timeout_ms;
    /* Idle/read-stall timer, not part of PS3.8 (it is the application
     * timeout its §9.1.5 note leaves to implementations): in Sta3..Sta12,
     * if no whole PDU arrives and no local request is made for this long,
     * the session aborts (A-ABORT, source 0) and reports
     * MWL_UL_EV_ABORTED with origin MWL_UL_ABORT_TIMEOUT. Bytes of an
     * unfinished PDU do not count as activity, so a peer that sends half a
     * PDU and stalls, or trickles bytes, is cut off. 0 = off (default). */
    uint64_t idle_timeout_ms;
} mwl_ul_config;

/* Fills defaults (see the fields). Never fails. */
MWL_API void mwl_ul_config_init(mwl_ul_config *cfg, mwl_ul_role role);

/* ---- session lifetime ------------------------------------------------- */

typedef struct mwl_ul mwl_ul;

/* Creates a session in Sta1. The config is copied. Returns MWL_OK and
 * *out, or MWL_E_INVALID (NULL argument, unknown role, max_pdu_length < 64,
 * max_associate_length < 1024, artim_timeout_ms 0), or MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_ul_new(const mwl_ul_config *cfg, mwl_ul **out);
/* Frees the session and everything it handed out. NULL is a no-op. */
MWL_API void mwl_ul_free(mwl_ul *ul);

/* ---- input: bytes and time in ---------------------------------------- */

/* Feeds bytes received from the transport. Copies at most enough bytes to
 * complete one PDU into the session (never more than the configured bound)
 * and, when a PDU is complete, runs the state machine on it; *consumed says
 * how many bytes were taken. Call it again with the rest, draining events
 * with mwl_ul_next_event in between, until everything is consumed.
 * Returns:
 *   MWL_OK         *consumed >= 1 when len >= 1; zero or more events are
 *                  queued. A misbehaving peer is not an error here: the
 *                  session answers it (A-ABORT etc.) and reports an event.
 *   MWL_AGAIN      events from the previous PDU are still queued; nothing
 *                  was consumed. Drain them first (their pointers would
 *                  otherwise be invalidated).
 *   MWL_E_CLOSED   no transport is open (Sta1, or Sta4 before
 *                  mwl_ul_transport_connected); nothing consumed.
 *   MWL_E_INVALID  NULL ul/consumed, or NULL in with len > 0.
 *   MWL_E_NOMEM, MWL_E_INTERNAL (fatal).
 * now_ms is the caller's monotonic clock; it restarts the idle timer when a
 * whole PDU arrives. */
MWL_API MWL_MUST_CHECK int mwl_ul_feed(mwl_ul *ul, const uint8_t *in, size_t len, size_t *consumed,
                                       uint64_t now_ms);

/* The earliest time (same clock as now_ms) at which mwl_ul_timer must be
 * called: the ARTIM expiry in Sta2/Sta13, the idle expiry in Sta3..Sta12,
 * or UINT64_MAX when no timer runs. */
MWL_API uint64_t mwl_ul_deadline(const mwl_ul *ul);

/* Runs expired timers: ARTIM (PS3.8 Evt18: in Sta2/Sta13 the transport is
 * closed, AA-2, MWL_UL_EV_CLOSED) or the idle timer, which acts as a local
 * A-ABORT request (Evt15): MWL_UL_EV_ABORTED with origin
 * MWL_UL_ABORT_TIMEOUT, then in Sta3/Sta5..Sta12 an A-ABORT is queued and
 * the session waits in Sta13 (AA-1), in Sta4 the connect is given up and
 * MWL_UL_EV_CLOSED follows (AA-2). Calling it early is harmless.
 * Returns MWL_OK (events may be queued), MWL_E_INVALID (NULL), or a fatal
 * status. */
MWL_API MWL_MUST_CHECK int mwl_ul_timer(mwl_ul *ul, uint64_t now_ms);

/* Local activity on the association (the user is working on a request the
 * peer sent, e.g. a long C-FIND) restarts the idle timer in Sta3..Sta12, as
 * a whole PDU in does: an association is not idle while we owe it an
 * answer. No effect on ARTIM or in other states. Never fails. */
MWL_API void mwl_ul_touch(mwl_ul *ul, uint64_t now_ms);

/* PS3.8 Evt5 (acceptor: a connection was accepted; starts ARTIM, Sta2) or
 * Evt2 (requestor: the connect completed; queues the A-ASSOCIATE-RQ, Sta5).
 * Returns MWL_OK; MWL_E_PROTOCOL if not valid in this state (acceptor not
 * in Sta1, requestor not in Sta4), session unchanged; or a fatal status. */
MWL_API MWL_MUST_CHECK int mwl_ul_transport_connected(mwl_ul *ul, uint64_t now_ms);

/* PS3.8 Evt17: the transport closed (read returned 0, or an I/O error).
 * In Sta13 and Sta2 this is the normal end (AR-5/AA-5); elsewhere the
 * association was lost: MWL_UL_EV_ABORTED (origin MWL_UL_ABORT_TRANSPORT,
 * AA-4). MWL_UL_EV_CLOSED follows in every case. Returns MWL_OK,
 * MWL_E_PROTOCOL in Sta1 (already closed; nothing to do), or fatal. */
MWL_API MWL_MUST_CHECK int mwl_ul_transport_closed(mwl_ul *ul, uint64_t now_ms);

/* ---- output: bytes out ------------------------------------------------- */

/* Points *out at the bytes waiting to be written and returns their count
 * (0 when none; *out is then NULL). The pointer is valid until the next call
 * that is not a const getter (feed, a request, output_written, free). The
 * driver is responsible for back-pressure: stop producing P-DATA while much
 * output is pending. */
MWL_API size_t mwl_ul_pending_output(const mwl_ul *ul, const uint8_t **out);
/* Marks the first n pending bytes as written (n larger than what is pending
 * is clamped). */
MWL_API void mwl_ul_output_written(mwl_ul *ul, size_t n);

/* ---- events out -------------------------------------------------------- */

typedef enum mwl_ul_event_type {
    /* Acceptor, now in Sta3: u.associate_rq is the received RQ (protocol
     * version already checked). Decide with mwl_negotiate, then call
     * mwl_ul_accept or mwl_ul_reject. */
    MWL_UL_EV_ASSOCIATE_RQ = 1,
    /* Requestor, now in Sta6: u.associate_ac. Use mwl_ul_context /
     * mwl_ul_find_context for the accepted presentation contexts. If the
     * application context name is not one you can work in, abort (§7.1.1.2). */
    MWL_UL_EV_ASSOCIATE_AC,
    /* Requestor: u.associate_rj; the session is in Sta1, MWL_UL_EV_CLOSED
     * follows (AE-4). */
    MWL_UL_EV_ASSOCIATE_RJ,
    /* The PDVs of one P-DATA-TF PDU, in order (DT-2 in Sta6, AR-6 in Sta7).
     * Every PDV's context ID is an accepted presentation context. */
    MWL_UL_EV_P_DATA,
    /* The peer asked to release (AR-2 -> Sta8, or, if u.release_rq.collision,
     * AR-8 -> Sta9/Sta10 because we asked too). Answer with
     * mwl_ul_release_response (in Sta8 after any last P-DATA); in Sta10 wait
     * for MWL_UL_EV_RELEASE_RP first. */
    MWL_UL_EV_RELEASE_RQ,
    /* The release we asked for is confirmed. Normally (AR-3) the session is
     * in Sta1 and MWL_UL_EV_CLOSED follows; with u.release_rp.collision set
     * (AR-10, acceptor side of a collision) it is in Sta12 and the driver
     * must now call mwl_ul_release_response. */
    MWL_UL_EV_RELEASE_RP,
    /* The association is aborted (A-ABORT / A-P-ABORT indication); see
     * mwl_ul_abort_origin. No further data will be exchanged. */
    MWL_UL_EV_ABORTED,
    /* The session reached Sta1: close the transport (if still open) and
     * free the session. Always the last event. */
    MWL_UL_EV_CLOSED
} mwl_ul_event_type;

typedef enum mwl_ul_abort_origin {
    /* AA-3: the peer sent A-ABORT; source/reason are from its PDU (source
     * 0 = peer's service user, 2 = peer's service provider). */
    MWL_UL_ABORT_PEER = 1,
    /* AA-8: the peer sent a PDU that is invalid or unexpected in this state;
     * we sent A-ABORT with source 2 and this reason (MWL_ABORT_*). Sta13. */
    MWL_UL_ABORT_PROTOCOL,
    /* AA-4: the transport closed (or failed to connect) while an
     * association existed or was being set up. source/reason are 0. */
    MWL_UL_ABORT_TRANSPORT,
    /* The idle timer expired; we sent A-ABORT source 0 (Sta13), or gave up
     * connecting (Sta4 -> Sta1). */
    MWL_UL_ABORT_TIMEOUT
} mwl_ul_abort_origin;

typedef struct mwl_ul_event {
    mwl_ul_event_type type;
    union {
        const mwl_assoc_rq *associate_rq; /* MWL_UL_EV_ASSOCIATE_RQ */
        const mwl_assoc_ac *associate_ac; /* MWL_UL_EV_ASSOCIATE_AC */
        mwl_assoc_rj associate_rj;        /* MWL_UL_EV_ASSOCIATE_RJ */
        struct {
            const mwl_pdv *pdvs; /* data points into the session's buffer */
            size_t count;
        } p_data;
        struct {
            bool collision;
        } release_rq, release_rp;
        struct {
            mwl_ul_abort_origin origin;
            uint8_t source, reason; /* A-ABORT source / reason (PS3.8 Table 9-26) */
            const char *detail;     /* human-readable cause, "" if none */
        } aborted;
    } u;
} mwl_ul_event;

/* Takes the oldest queued event. Returns MWL_OK with *ev filled, MWL_AGAIN
 * when none is queued, MWL_E_INVALID (NULL), or a fatal status.
 *
 * Lifetime: pointers in an event (PDVs and their data, detail) stay valid
 * until the next mwl_ul_feed() or mwl_ul_free() on this session; the
 * request functions below do not invalidate them. The A-ASSOCIATE-RQ/-AC
 * behind associate_rq/associate_ac live until mwl_ul_free(). */
MWL_API MWL_MUST_CHECK int mwl_ul_next_event(mwl_ul *ul, mwl_ul_event *ev);

/* Returns a static name ("ASSOCIATE_RQ", …, "?" for other values) for logs. */
MWL_API const char *mwl_ul_event_name(mwl_ul_event_type type);

/* ---- requests in (local service primitives, PS3.8 §9.2.3) -------------
 * Each returns MWL_OK, or MWL_E_PROTOCOL when the primitive is not valid in
 * the current state (a "—" cell of PS3.8 Table 9-10: nothing is sent and
 * the state does not change), MWL_E_INVALID for a bad argument (nothing
 * changes either), or a fatal status. now_ms starts timers. */

/* Requestor, Sta1: A-ASSOCIATE request (Evt1, AE-1 -> Sta4). The RQ is
 * encoded now (so errors show here) and sent once the transport connects.
 * user_info.max_length is replaced by cfg.max_pdu_length. The RQ must carry
 * protocol_version, titles (mwl_assoc_rq_set_titles), application_context,
 * 1..128 presentation contexts with distinct odd IDs and at least one
 * transfer syntax each, and an implementation class UID. Nothing of *rq is
 * referenced after the call. MWL_E_INVALID also for an acceptor session or
 * an RQ the encoder refuses. */
MWL_API MWL_MUST_CHECK int mwl_ul_associate(mwl_ul *ul, const mwl_assoc_rq *rq, uint64_t now_ms);

/* Acceptor, Sta3: A-ASSOCIATE response, accept (Evt7, AE-7 -> Sta6). Sends
 * *ac (normally from mwl_negotiate). The session fills in the echo bytes
 * from the RQ and replaces user_info.max_length with cfg.max_pdu_length.
 * Every context ID must have been proposed, and an accepted context's
 * transfer syntax must be one proposed for it (MWL_E_INVALID otherwise).
 * Nothing of *ac is referenced after the call. */
MWL_API MWL_MUST_CHECK int mwl_ul_accept(mwl_ul *ul, const mwl_assoc_ac *ac, uint64_t now_ms);

/* Acceptor, Sta3: A-ASSOCIATE response, reject (Evt8, AE-8 -> Sta13, ARTIM
 * started). result 1|2, source 1..3 (PS3.8 Table 9-21), else MWL_E_INVALID. */
MWL_API MWL_MUST_CHECK int mwl_ul_reject(mwl_ul *ul, const mwl_assoc_rj *rj, uint64_t now_ms);

/* P-DATA request (Evt9): one P-DATA-TF carrying `count` PDVs, in Sta6
 * (DT-1) or Sta8 (AR-7). The fragment bytes are copied. MWL_E_INVALID for
 * count 0, NULL pdvs, or a context ID that is not an accepted presentation
 * context; MWL_E_LIMIT when the PDU-length (sum of 6 + length per PDV)
 * exceeds the peer's maximum (mwl_ul_peer_max_pdu_length, unless 0): split
 * the message into more PDUs (PS3.8 Annex E). */
MWL_API MWL_MUST_CHECK int mwl_ul_send_p_data(mwl_ul *ul, const mwl_pdv *pdvs, size_t count, uint64_t now_ms);
/* Convenience: one PDV. control is MWL_PDV_COMMAND and/or MWL_PDV_LAST. */
MWL_API MWL_MUST_CHECK int mwl_ul_send_pdv(mwl_ul *ul, uint8_t context_id, uint8_t control,
                                           const uint8_t *data, size_t length, uint64_t now_ms);

/* A-RELEASE request (Evt11), Sta6 only: sends A-RELEASE-RQ (AR-1 -> Sta7). */
MWL_API MWL_MUST_CHECK int mwl_ul_release(mwl_ul *ul, uint64_t now_ms);

/* A-RELEASE response (Evt14): sends A-RELEASE-RP. Sta8 and Sta12: AR-4 ->
 * Sta13 with ARTIM (wait for the requestor to close); Sta9: AR-9 -> Sta11. */
MWL_API MWL_MUST_CHECK int mwl_ul_release_response(mwl_ul *ul, uint64_t now_ms);

/* A-ABORT request (Evt15): in Sta3, Sta5..Sta12 sends A-ABORT with source 0
 * (service user), reason 0, and goes to Sta13 with ARTIM (AA-1); in Sta4
 * gives up the connect (AA-2 -> Sta1, MWL_UL_EV_CLOSED). MWL_E_PROTOCOL in
 * Sta1, Sta2 (no association yet: just close the transport) and Sta13. */
MWL_API MWL_MUST_CHECK int mwl_ul_abort(mwl_ul *ul, uint64_t now_ms);

/* ---- queries ------------------------------------------------------------ */

/* The current state and the role (ul must not be NULL). */
MWL_API mwl_ul_state mwl_ul_get_state(const mwl_ul *ul);
MWL_API mwl_ul_role mwl_ul_get_role(const mwl_ul *ul);

/* The peer's Maximum-length-received from its RQ/AC (0 = unlimited; PS3.8
 * D.1): the largest PDU-length mwl_ul_send_p_data will send. 0 before the
 * A-ASSOCIATE-RQ (acceptor) or -AC (requestor) arrived. */
MWL_API uint32_t mwl_ul_peer_max_pdu_length(const mwl_ul *ul);

/* The received A-ASSOCIATE-RQ (acceptor, from Sta3 on) or -AC (requestor,
 * from Sta6 on), else NULL. Valid until mwl_ul_free. */
MWL_API const mwl_assoc_rq *mwl_ul_associate_rq(const mwl_ul *ul);
MWL_API const mwl_assoc_ac *mwl_ul_associate_ac(const mwl_ul *ul);

/* Looks up an accepted presentation context (Sta6 onwards). Returns MWL_OK
 * with its abstract and transfer syntax UIDs (either out pointer may be
 * NULL; strings valid until mwl_ul_free), or MWL_E_NOTFOUND when the ID was
 * not proposed or not accepted. */
MWL_API MWL_MUST_CHECK int mwl_ul_context(const mwl_ul *ul, uint8_t context_id, const char **abstract_syntax,
                                          const char **transfer_syntax);
/* Finds the accepted context with the lowest ID for an abstract syntax.
 * Returns MWL_OK with *context_id (and *transfer_syntax if not NULL), or
 * MWL_E_NOTFOUND. */
MWL_API MWL_MUST_CHECK int mwl_ul_find_context(const mwl_ul *ul, const char *abstract_syntax,
                                               uint8_t *context_id, const char **transfer_syntax);

/* ======================================================================
 * Negotiation (PS3.8 §7.1.1, PS3.7 D.3.3): a pure function of the received
 * A-ASSOCIATE-RQ and the acceptor's policy. Used by the server between
 * MWL_UL_EV_ASSOCIATE_RQ and mwl_ul_accept/mwl_ul_reject.
 * ====================================================================== */

/* One abstract syntax (SOP class) we serve. */
typedef struct mwl_policy_syntax {
    const char *abstract_syntax;
    /* Transfer syntaxes we accept, in OUR order of preference (e.g. Explicit
     * VR LE, Implicit VR LE, Explicit VR BE, Deflated). The first of these
     * that the requestor proposed is chosen. */
    const char *const *transfer_syntaxes;
    size_t transfer_syntax_count;
    /* Roles (PS3.7 D.3.3.4) the REQUESTOR may take for this SOP class: its
     * SCU role means we are the SCP (true for Verification and MWL FIND);
     * its SCP role means we would act as SCU (false for us). Without a 54H
     * sub-item the requestor is SCU. A context whose requestor is left with
     * no role is rejected with result 1 (user rejection). */
    bool accept_scu_role;
    bool accept_scp_role;
} mwl_policy_syntax;

/* Optional user identity check (PS3.7 D.3.3.7). Returns true to accept the
 * identity; may set *server_response / *server_response_length (bytes that
 * must outlive mwl_ul_accept; leave them for types 1 and 2). */
typedef bool (*mwl_identity_check_fn)(void *user, const mwl_user_identity_rq *identity,
                                      const uint8_t **server_response, size_t *server_response_length);

typedef struct mwl_policy {
    const char *ae_title;                /* our AE title */
    bool strict_called_ae;               /* reject (1,1,7) when Called-AE-title != ae_title */
    const char *const *calling_ae_allow; /* if count > 0: only these callers, else (1,1,3) */
    size_t calling_ae_allow_count;
    /* Set by the driver from access rules negotiation cannot evaluate (they
     * need the peer's address): reject (1,1,3) like a title not in the
     * list above, at the same point of the order below. */
    bool calling_ae_refused;
    const mwl_policy_syntax *syntaxes;
    size_t syntax_count;
    uint32_t max_pdu_length;                 /* our 51H; mwl_ul_accept enforces cfg.max_pdu_length */
    const char *implementation_class_uid;    /* 52H, required */
    const char *implementation_version_name; /* 55H, NULL or "" = omit */
    bool too_many_associations;              /* set by the driver: reject (2,3,2) */
    /* The requestor's Maximum Length (51H) must be 0 (no limit) or at least
     * this, else (1,1,1); 0 = any. */
    uint32_t min_peer_max_length;
    /* NULL: user identity sub-items are ignored (accepted, no 59H). Set:
     * an offered identity is checked; on refusal, or when require_identity
     * is set and none was offered, reject (1,2,1). When accepted and the RQ
     * asked for a positive response, the AC carries 59H. */
    mwl_identity_check_fn identity_check;
    void *identity_user;
    bool require_identity;
} mwl_policy;

/* Zeroes *policy and sets max_pdu_length 16384. Never fails. */
MWL_API void mwl_policy_init(mwl_policy *policy);

typedef struct mwl_negotiation {
    bool accepted;   /* true: send ac with mwl_ul_accept; false: rj with mwl_ul_reject */
    mwl_assoc_ac ac; /* valid when accepted */
    mwl_assoc_rj rj; /* valid when rejected */
} mwl_negotiation;

/* Decides the association. Rejections, first matching rule wins:
 *   protocol version bit 0 unset          -> (1, 2, 2) permanent, provider ACSE
 *   application context not DICOM's      -> (1, 1, 2)
 *   called AE not well formed (below)    -> (1, 1, 7)
 *   strict and called AE != our title    -> (1, 1, 7)
 *   calling AE not well formed (below)   -> (1, 1, 3)
 *   allow-list set, calling AE not in it  -> (1, 1, 3)
 *   or calling_ae_refused
 *   peer Maximum Length below the minimum -> (1, 1, 1)
 *   identity refused / required, absent   -> (1, 2, 1)
 *   too_many_associations                 -> (2, 3, 2) transient, local limit
 * AE titles compare exactly after trimming leading/trailing spaces.
 * Otherwise the AC answers every proposed context in order: 0 with OUR
 * preferred transfer syntax among those proposed; 3 if the abstract syntax
 * is not served; 4 if no transfer syntax is common; 1 if role selection
 * leaves the requestor no role; 2 for a repeated context ID. 54H is answered
 * for served SOP classes with an accepted context; 53H with 1/1 if
 * proposed; 56H is not answered (no extended negotiation: literal matching);
 * 57H never appears in an AC.
 * Arrays and copies are carved from `arena`; strings point into *rq and
 * *policy, so the result lives as long as all three.
 * Returns MWL_OK, MWL_E_INVALID (NULL argument, or no implementation class
 * UID / AE title in the policy), or MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_negotiate(const mwl_assoc_rq *rq, const mwl_policy *policy, mwl_arena *arena,
                                         mwl_negotiation *out);

/* Whether an AE title as the decoder gives it (NUL-terminated, at most 16
 * bytes) can name an application entity: not empty or all spaces (PS3.8
 * Table 9-11), no control character (00H-1FH, 7FH) and no backslash
 * (PS3.5 Table 6.2-1, AE). Bytes above 7EH are outside the default
 * repertoire too but are let through: sites configure titles with local
 * letters, and they cannot end a log line or steer a terminal (logs escape
 * them anyway). mwl_negotiate refuses an association whose titles fail. */
MWL_API bool mwl_ae_title_well_formed(const char *title);

#endif
