/* The DICOM client (SCU) of libmwl: a blocking driver for one association
 * (PS3.8 §7.1 A-ASSOCIATE, §7.2 A-RELEASE, §7.3 A-ABORT) that sends
 * Verification C-ECHO (PS3.7 §9.1.5) and Modality Worklist C-FIND
 * (PS3.4 Annex K, PS3.7 §9.1.2) with C-CANCEL.
 *
 * It glues net (sockets, clock), ul (the sans-IO association state machine),
 * dimse (command sets, reassembly, fragmentation to the peer's maximum PDU)
 * and dicom (data sets and their encoding) together; each call runs a small
 * loop (write what is pending, read, feed, handle events) until its answer
 * arrives or its deadline passes. No call waits without a deadline.
 *
 *     mwl_scu_config cfg;
 *     mwl_scu_config_init(&cfg);
 *     cfg.host = "pacs.example"; cfg.port = 104; cfg.called_ae = "WORKLIST";
 *     mwl_scu *scu;
 *     if (mwl_scu_new(&cfg, &scu, NULL) != MWL_OK) ...
 *     if (mwl_scu_associate(scu) != MWL_OK) {
 *         puts(mwl_scu_last_error(scu)->msg);      // e.g. rejected, and why
 *         mwl_scu_free(scu); ...
 *     }
 *     mwl_scu_find_result res;
 *     rc = mwl_scu_find(scu, query, MWL_DIMSE_PRIORITY_MEDIUM, on_item, ctx, &res);
 *     // rc MWL_OK: res.status is the final DIMSE status (0000, FE00, A700 ...)
 *     rc = mwl_scu_release(scu);
 *     mwl_scu_free(scu);
 *
 * Conventions (STYLE.md §5): functions return MWL_OK or a negative MWL_E_*
 * (base/status.h). DIMSE statuses are data, reported through out-params;
 * an association that ends abnormally (rejected, aborted, timed out, lost)
 * is reported as a status plus an mwl_scu_error with the details
 * (mwl_scu_last_error). One mwl_scu is one association: it is not
 * thread-safe and cannot be associated a second time. Library code never
 * prints; it logs through base/log.h at DEBUG level. */
#ifndef MWL_CLIENT_CLIENT_H
#define MWL_CLIENT_CLIENT_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/status.h"
#include "dicom/codec.h"
#include "dicom/dataset.h"
#include "dimse/dimse.h"
#include "net/net.h"
#include "ul/pdu.h"

/* ---- configuration ------------------------------------------------------ */

/* Most transfer syntaxes proposed per presentation context. */
#define MWL_SCU_TS_MAX 4
/* Default AE titles: ours (calling) and the peer's (called). */
#define MWL_SCU_DEFAULT_CALLING_AE "MWLSCU"
#define MWL_SCU_DEFAULT_CALLED_AE "ANY-SCP"
/* Presentation context IDs we propose (PS3.8 §9.3.2.2: odd, 1..255). */
#define MWL_SCU_CONTEXT_VERIFICATION 1
#define MWL_SCU_CONTEXT_FIND 3

typedef struct mwl_scu_config {
    /* The peer: a host name or an IPv4/IPv6 literal, and a TCP port. Not
     * used by mwl_scu_associate_conn. */
    const char *host;
    uint16_t port;
    /* AE titles, 1..16 characters of the default repertoire without '\'
     * and control characters (PS3.5 Table 6.2-1 "AE"); leading and
     * trailing spaces are not significant and are dropped. */
    const char *calling_ae; /* ours; default MWL_SCU_DEFAULT_CALLING_AE */
    const char *called_ae;  /* the peer's; default MWL_SCU_DEFAULT_CALLED_AE */
    /* Timeouts in milliseconds, each 1..86400000 (a day): every wait is
     * bounded. connect: the TCP connect. acse: from connected to the
     * A-ASSOCIATE-AC/-RJ, and from A-RELEASE-RQ to -RP (DCMTK's "ACSE
     * timeout"). dimse: sending one request, and then each response
     * message in turn, so a C-FIND with many matches may take longer as a
     * whole, but a peer that stalls between responses is cut off (DCMTK's
     * "DIMSE timeout"). When one passes the call returns MWL_E_TIMEOUT and
     * the association is aborted. Defaults 10000 / 30000 / 30000. */
    int connect_timeout_ms;
    int acse_timeout_ms;
    int dimse_timeout_ms;
    /* Transfer syntaxes proposed for both presentation contexts
     * (Verification and MWL FIND), in our order of preference; the peer
     * picks one per context, and that one encodes our C-FIND identifier and
     * decodes its responses. 1..MWL_SCU_TS_MAX distinct values. Default:
     * Explicit VR Little Endian, then Implicit VR Little Endian (the one
     * every peer must support, PS3.5 §10.1). */
    mwl_ts transfer_syntaxes[MWL_SCU_TS_MAX];
    size_t transfer_syntax_count;
    /* Our Maximum-length-received (PS3.8 D.1): the largest P-DATA-TF we
     * accept; the peer must fragment to it. 4096..16777216, default 16384.
     * What we send is bounded by the peer's value, whatever it is. */
    uint32_t max_pdu_length;
    /* The largest response message (command set + identifier) we
     * reassemble; a bigger one aborts the association. 0 = 16 MiB. */
    size_t max_response_length;
    /* DICOM over TLS (PS3.15 Annex B, BCP 195: TLS 1.2 or 1.3). With `tls`
     * set the connection is wrapped in TLS and the handshake done (within
     * connect_timeout_ms) before the A-ASSOCIATE-RQ. The server's
     * certificate is always checked: against tls_ca_file, or the system's
     * trusted store without one. tls_cert_file + tls_key_file (PEM) are our
     * certificate, for a server that asks for one. Or pass a ready
     * `tls_context` (mwl_tls_new with server false; not freed here): many
     * SCUs sharing one resume the TLS session the server gave the last. */
    bool tls;
    /* The server's certificate must also name `host` (DNS or IP
     * subjectAltName) unless this is set: for sites whose certificates
     * name no host. Ignored with a tls_context (its own setting holds). */
    bool tls_skip_name_check;
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    mwl_tls *tls_context;
    /* Allocator for everything the client allocates; NULL = default. */
    const mwl_mem *mem;
} mwl_scu_config;

/* Fills the defaults above; host NULL and port 0, which the caller sets.
 * Never fails. */
MWL_API void mwl_scu_config_init(mwl_scu_config *cfg);

/* ---- what went wrong ---------------------------------------------------- */

typedef enum mwl_scu_failure {
    MWL_SCU_FAIL_NONE = 0,
    /* The TCP connection could not be made: refused, unreachable, unknown
     * host, or timed out (status MWL_E_IO or MWL_E_TIMEOUT); or the TLS
     * handshake failed (a certificate that did not verify: the message
     * says why). */
    MWL_SCU_FAIL_CONNECT,
    /* The peer sent A-ASSOCIATE-RJ: see rj (status MWL_E_CLOSED). */
    MWL_SCU_FAIL_REJECTED,
    /* The peer sent A-ABORT: see abort_source / abort_reason as received
     * (status MWL_E_CLOSED). */
    MWL_SCU_FAIL_ABORTED,
    /* The transport closed or failed without an A-ABORT, or the peer asked
     * to release during an operation (status MWL_E_CLOSED or MWL_E_IO). */
    MWL_SCU_FAIL_CLOSED,
    /* A deadline passed (connect, ACSE or DIMSE timeout); we sent A-ABORT
     * and closed (status MWL_E_TIMEOUT). */
    MWL_SCU_FAIL_TIMEOUT,
    /* The peer broke the protocol: an invalid or unexpected PDU, a DIMSE
     * message that does not decode, an unexpected message (wrong command,
     * presentation context or Message ID Being Responded To). We sent
     * A-ABORT (abort_source / abort_reason say what we sent) and closed
     * (status MWL_E_PROTOCOL). */
    MWL_SCU_FAIL_PROTOCOL,
    /* The presentation context the operation needs was not accepted (see
     * mwl_scu_assoc_info); the association is still usable (status
     * MWL_E_UNSUPPORTED). */
    MWL_SCU_FAIL_NO_CONTEXT,
    /* The caller's callback asked to abort (status MWL_E_CANCELLED). */
    MWL_SCU_FAIL_CANCELLED,
    /* A local problem: bad argument, wrong state, out of memory, an
     * identifier that does not encode (status as returned). */
    MWL_SCU_FAIL_LOCAL
} mwl_scu_failure;

typedef struct mwl_scu_error {
    mwl_scu_failure failure;
    int status;      /* what the failing call returned */
    mwl_assoc_rj rj; /* MWL_SCU_FAIL_REJECTED: result, source, reason (PS3.8 Table 9-21) */
    /* MWL_SCU_FAIL_ABORTED: the peer's A-ABORT; MWL_SCU_FAIL_PROTOCOL /
     * _TIMEOUT / _CANCELLED: the one we sent (PS3.8 Table 9-26). */
    uint8_t abort_source, abort_reason;
    /* One line of English without a trailing newline, naming codes in
     * words, e.g. "association rejected (permanent) by the service user:
     * called AE title not recognized [1/1/7]". "" when failure is NONE. */
    char msg[256];
} mwl_scu_error;

/* ---- lifetime and association ------------------------------------------ */

typedef struct mwl_scu mwl_scu;

/* Creates a client in its idle state; nothing is sent yet. The config,
 * including its strings, is copied. Returns MWL_OK and *out, MWL_E_INVALID
 * (diag says which field: an AE title that is empty, too long or has bad
 * characters; a timeout, PDU length or transfer syntax list out of range;
 * a host longer than MWL_NET_HOST_MAX - 1), or MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_scu_new(const mwl_scu_config *cfg, mwl_scu **out, mwl_diag *diag);

/* Aborts the association if one is still open (A-ABORT, written within a
 * second at most, no waiting for the peer), closes the transport and frees
 * everything. NULL is a no-op. */
MWL_API void mwl_scu_free(mwl_scu *scu);

/* Connects to cfg.host:cfg.port and negotiates the association: proposes
 * Verification (context 1) and Modality Worklist FIND (context 3), each
 * with the configured transfer syntaxes, our maximum PDU length, and
 * MWL_IMPLEMENTATION_CLASS_UID / MWL_IMPLEMENTATION_VERSION_NAME; the
 * requestor takes the SCU role for both (no role selection sub-item).
 * Only once per mwl_scu. Returns:
 *   MWL_OK             the association is established (it may still have
 *                      no usable context: see mwl_scu_assoc_info);
 *   MWL_E_IO           connect failed (refused, unreachable, unknown host),
 *                      or a socket error;
 *   MWL_E_TIMEOUT      connect or ACSE timeout (the attempt was aborted);
 *   MWL_E_CLOSED       rejected (A-ASSOCIATE-RJ), aborted by the peer, or
 *                      the connection was closed;
 *   MWL_E_PROTOCOL     the peer's answer was invalid (we aborted), or its
 *                      application context name is not DICOM's (§7.1.1.2);
 *   MWL_E_INVALID      not in the idle state (already associated or
 *                      closed);
 *   MWL_E_NOMEM.
 * On any error the association is over; mwl_scu_last_error says why. */
MWL_API MWL_MUST_CHECK int mwl_scu_associate(mwl_scu *scu);

/* As mwl_scu_associate over a transport the caller connected (TLS through
 * mwl_conn_new, an inherited socket, one end of a socketpair in tests);
 * cfg.host/port and the connect timeout are not used. `conn` must be
 * non-blocking; the client takes ownership of it in every case (it is
 * closed by the client on error and by mwl_scu_free). Returns as
 * mwl_scu_associate, MWL_E_INVALID also for a NULL or blocking conn. */
MWL_API MWL_MUST_CHECK int mwl_scu_associate_conn(mwl_scu *scu, mwl_conn *conn);

/* What the association negotiated. Valid from a successful associate
 * until mwl_scu_free (it stays readable after release or abort). */
typedef struct mwl_scu_assoc_info {
    uint32_t peer_max_pdu_length;                 /* the peer's Maximum-length-received, 0 = unlimited */
    const char *peer_implementation_class_uid;    /* "" when absent */
    const char *peer_implementation_version_name; /* "" when absent */
    /* Per context: whether it was accepted, the result code the peer gave
     * (MWL_PCTX_*, PS3.8 Table 9-18) and, if accepted, the transfer syntax. */
    bool verification_accepted;
    uint8_t verification_result;
    mwl_ts verification_ts;
    bool find_accepted;
    uint8_t find_result;
    mwl_ts find_ts;
    /* Over TLS: the server certificate's subject (RFC 2253), and whether
     * the TLS session was resumed. tls_subject NULL for plain TCP. */
    const char *tls_subject;
    bool tls_resumed;
} mwl_scu_assoc_info;

/* NULL until an association was accepted. */
MWL_API const mwl_scu_assoc_info *mwl_scu_get_assoc_info(const mwl_scu *scu);

/* True while the association is established and operations may be sent. */
MWL_API bool mwl_scu_is_associated(const mwl_scu *scu);

/* The outcome of the last call that failed, or failure NONE after a call
 * that succeeded (each call but the getters resets it). Never NULL for a
 * non-NULL scu; valid until the next call on scu. */
MWL_API const mwl_scu_error *mwl_scu_last_error(const mwl_scu *scu);

/* Releases the association (A-RELEASE-RQ, then waits for A-RELEASE-RP
 * within the ACSE timeout; a release collision is answered as PS3.8
 * §7.2.2.7 says) and closes the transport. Returns MWL_OK; MWL_E_TIMEOUT
 * (no answer: aborted instead); MWL_E_CLOSED (the peer aborted or closed);
 * MWL_E_PROTOCOL (aborted for an invalid PDU); MWL_E_INVALID when not
 * associated; MWL_E_NOMEM. The mwl_scu must still be freed. */
MWL_API MWL_MUST_CHECK int mwl_scu_release(mwl_scu *scu);

/* Aborts the association (A-ABORT, source service user), waits up to half
 * a second for the peer to close so the PDU is not lost to a TCP reset,
 * and closes. MWL_OK, or MWL_E_INVALID when there is no association. */
MWL_API int mwl_scu_abort(mwl_scu *scu);

/* ---- C-ECHO (Verification, PS3.7 §9.1.5) ------------------------------- */

/* Sends C-ECHO-RQ on the Verification context with the next Message ID and
 * waits (DIMSE timeout) for its C-ECHO-RSP. Returns:
 *   MWL_OK             *status is the response's DIMSE status: 0000 is
 *                      success, anything else a failure the peer reported
 *                      (see mwl_dimse_status_str);
 *   MWL_E_UNSUPPORTED  Verification was not accepted (association intact);
 *   MWL_E_TIMEOUT, MWL_E_CLOSED, MWL_E_IO, MWL_E_PROTOCOL (a response
 *                      that is not a C-ECHO-RSP to this Message ID): the
 *                      association is over, mwl_scu_last_error says how;
 *   MWL_E_INVALID      not associated or NULL status;
 *   MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_scu_echo(mwl_scu *scu, uint16_t *status /* out */);

/* ---- C-FIND (Modality Worklist, PS3.4 K.4, PS3.7 §9.1.2) --------------- */

/* What a response callback returns. */
enum {
    MWL_SCU_FIND_CONTINUE = 0, /* keep receiving */
    /* Send C-CANCEL-FIND-RQ (PS3.7 §9.3.2.3) and keep reading until the
     * final response (normally FE00 Cancel, or a final status that was
     * already on its way). Pending responses arriving meanwhile are not
     * delivered (they are counted in discarded_count). */
    MWL_SCU_FIND_CANCEL = 1,
    /* Abort the association at once; mwl_scu_find returns
     * MWL_E_CANCELLED. */
    MWL_SCU_FIND_ABORT = 2
};

/* One Pending C-FIND-RSP: one matching worklist item. */
typedef struct mwl_scu_find_rsp {
    uint16_t message_id; /* the request's Message ID (= Message ID Being Responded To) */
    uint16_t status;     /* FF00, or FF01 (optional keys not supported) */
    size_t index;        /* 0 for the first Pending response of this C-FIND */
    mwl_ts ts;           /* the negotiated transfer syntax of the identifier */
    /* The identifier, decoded from ts. Owned by the client and carved from
     * an arena that is cleared when the callback returns: read it in the
     * callback, or mwl_ds_copy() it into an arena of your own. Strings are
     * raw bytes in the item's Specific Character Set (0008,0005): convert
     * with dicom/charset.h. NULL when decode_status is not MWL_OK. */
    const mwl_ds *identifier;
    /* MWL_OK; MWL_E_MALFORMED / MWL_E_LIMIT (the bytes do not decode);
     * MWL_E_NOTFOUND (the peer sent Pending without an identifier, which
     * PS3.7 §9.1.2.1.5 forbids). The callback decides whether to go on. */
    int decode_status;
    const char *decode_error; /* detail for decode_status, "" when MWL_OK */
    /* The identifier as received (ts encoding), valid for the callback. */
    const uint8_t *raw;
    size_t raw_length;
} mwl_scu_find_rsp;

/* Called once per Pending response, in order, on the caller's thread,
 * from inside mwl_scu_find. Returns MWL_SCU_FIND_CONTINUE, _CANCEL or
 * _ABORT (any other value counts as _ABORT). It must not call mwl_scu_*
 * functions on the same scu. */
typedef int (*mwl_scu_find_fn)(void *user, const mwl_scu_find_rsp *rsp);

/* Most offending element tags kept in mwl_scu_find_result. */
#define MWL_SCU_OFFENDING_MAX 16

/* The outcome of one C-FIND; caller-owned, holds no pointers. */
typedef struct mwl_scu_find_result {
    uint16_t message_id;    /* the Message ID we used */
    uint16_t status;        /* the final status (0000 Success, FE00 Cancel, A700, A900, Cxxx, 0122 ...) */
    size_t pending_count;   /* Pending responses delivered to the callback */
    size_t discarded_count; /* Pending responses received after our C-CANCEL */
    bool cancel_sent;
    /* Error Comment (0000,0902), Offending Element (0000,0901) and
     * Error ID (0000,0903) of the final response, when present. */
    bool has_error_comment;
    char error_comment[MWL_DIMSE_ERROR_COMMENT_MAX + 1]; /* NUL-terminated, trimmed, cut at 64 */
    size_t offending_element_count; /* as received; the first MWL_SCU_OFFENDING_MAX kept */
    uint32_t offending_elements[MWL_SCU_OFFENDING_MAX]; /* (gggg << 16 | eeee) */
    bool has_error_id;
    uint16_t error_id;
} mwl_scu_find_result;

/* Sends a Modality Worklist C-FIND-RQ with the next Message ID and the
 * identifier `query` (matching and return keys built with dicom/dataset.h,
 * e.g. ScheduledProcedureStepSequence[Modality = "MR", ...]) encoded in
 * the transfer syntax negotiated for the FIND context and fragmented to
 * the peer's maximum PDU length; then receives responses, each within the
 * DIMSE timeout, calling `fn` (may be NULL: count only) for every Pending
 * one, until the final response. `query` is only read, and not referenced
 * after the call; its values are sent as they are (set Specific Character
 * Set in it when they are not ASCII). `priority` is MWL_DIMSE_PRIORITY_*.
 * *result is filled as far as the exchange got, also on error. Returns:
 *   MWL_OK             result->status holds the final status: success,
 *                      cancel, or a failure the peer reported (see
 *                      mwl_dimse_status_str, error_comment, offending
 *                      elements); the association stays usable;
 *   MWL_E_UNSUPPORTED  MWL FIND was not accepted (association intact);
 *   MWL_E_CANCELLED    the callback returned MWL_SCU_FIND_ABORT (aborted);
 *   MWL_E_TIMEOUT, MWL_E_CLOSED, MWL_E_IO, MWL_E_PROTOCOL (a response to
 *                      another Message ID, on another context, not a
 *                      C-FIND-RSP, or undecodable): the association is
 *                      over, mwl_scu_last_error says how;
 *   MWL_E_INVALID      not associated, NULL query or result, bad priority,
 *                      or a query that does not encode (nothing sent;
 *                      association intact);
 *   MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_scu_find(mwl_scu *scu, const mwl_ds *query, uint16_t priority,
                                        mwl_scu_find_fn fn, void *user,
                                        mwl_scu_find_result *result /* out */);

/* The Message ID the next request will use (1, 2, ... 65535, then 1 again;
 * no two outstanding requests can share one since only one is ever
 * outstanding). */
MWL_API uint16_t mwl_scu_next_message_id(const mwl_scu *scu);

/* ---- words for codes ------------------------------------------------------
 * Static strings, never NULL, for messages: A-ASSOCIATE-RJ result, source
 * and reason (PS3.8 Table 9-21), A-ABORT source and reason (Table 9-26),
 * and presentation context results (Table 9-18). Unknown values give
 * "unknown (reserved) ...". */
MWL_API const char *mwl_scu_rj_result_str(uint8_t result);
MWL_API const char *mwl_scu_rj_source_str(uint8_t source);
MWL_API const char *mwl_scu_rj_reason_str(uint8_t source, uint8_t reason);
MWL_API const char *mwl_scu_abort_source_str(uint8_t source);
MWL_API const char *mwl_scu_abort_reason_str(uint8_t source, uint8_t reason);
MWL_API const char *mwl_scu_pctx_result_str(uint8_t result);
/* "Explicit VR Little Endian" etc. */
MWL_API const char *mwl_scu_ts_name(mwl_ts ts);

#endif
