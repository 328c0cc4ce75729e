/* The session API the services use: one association as seen from a DIMSE
 * service (service.h) — send a message, answer with a status, abort, look
 * up a presentation context, the peer and AE titles, the output still
 * queued, and the counters. Everything here runs on the loop thread.
 *
 * Private to the server module. */
#ifndef MWL_SERVER_SESSION_H
#define MWL_SERVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/log.h"
#include "base/status.h"
#include "dimse/dimse.h"
#include "server/audit.h"
#include "server/server.h"

typedef struct session session;

/* Output back-pressure shared with the services: a service producing a
 * stream of responses queues more only while the unsent output is below
 * this (a quarter of max-output; drained() tells it when it is again). */
size_t session_output_low(const session *s);

/* Fragments one message into P-DATA-TF PDUs on `context_id` and queues
 * them. `dataset` NULL = none. MWL_OK, or an error after which the session
 * is aborted or done (the caller sends nothing more). */
int session_send(session *s, uint8_t context_id, const uint8_t *command, size_t command_length,
                 const uint8_t *dataset, size_t dataset_length);

/* Answers request `rq` with a response carrying only `status` (and, for a
 * Failure or Warning, the error comment when non-NULL): the command field
 * with the response bit, Message ID Being Responded To, and the request's
 * Affected SOP Class/Instance UIDs echoed. */
int session_reply_status(session *s, const mwl_dimse_msg *rq, uint16_t status, const char *comment);

/* Sends A-ABORT (if an association exists) and records `why` for the log
 * line; every service's abandon() runs. */
void session_abort(session *s, const char *why);

/* The abstract syntax and transfer syntax UIDs of an accepted context.
 * MWL_OK or MWL_E_NOTFOUND. */
int session_context(const session *s, uint8_t context_id, const char **abstract_syntax,
                    const char **transfer_syntax);

const char *session_peer(const session *s);
const char *session_calling(const session *s);
const char *session_called(const session *s);
mwl_server *session_server(const session *s);
const mwl_server_config *session_config(const session *s);
const mwl_mem *session_mem(const session *s);

/* Bytes queued for the peer and not written yet. */
size_t session_pending_output(const session *s);

/* Re-evaluates the session after something happened outside its own
 * callbacks (a worker operation came back): writes, tears down a session
 * that is done, frees a zombie whose services are idle. `s` may be freed. */
void session_service(session *s);

/* True once the association is releasing, aborted or gone: a service
 * sends nothing more. */
bool session_closing(const session *s);

/* The session's encode buffer for one response on the loop thread,
 * emptied. Valid until the next call. */
mwl_wbuf *session_scratch(session *s);

/* The audit record of one C-FIND (audit.h), with this session's peer. */
void session_audit_find(session *s, uint16_t message_id, const char *query, const char *result,
                        uint16_t status, uint64_t matches, const audit_ids *ids, uint64_t duration_ms);

/* Server-wide counters (mwl_server_stats) a service adds to. */
typedef enum session_stat {
    SESSION_STAT_ECHOES,
    SESSION_STAT_FINDS,
    SESSION_STAT_FIND_MATCHES,
    SESSION_STAT_FIND_CANCELS,
    SESSION_STAT_FIND_STEPS
} session_stat;
void session_stat_add(session *s, session_stat which, uint64_t n);

#endif
