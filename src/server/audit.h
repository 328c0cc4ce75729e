/* The audit trail (`audit-log`): one JSON object per line, per association
 * decided (accepted, or refused and why), per connection refused before an
 * association (a TLS handshake that failed, a connection closed to make
 * room), and per C-FIND answered (its query, status, number of matches and
 * the Patient IDs it returned) — who saw which patient's order, the
 * question a hospital's privacy officer asks. Every value from the wire is
 * a JSON string (escaped), never structure. Written on the loop thread,
 * one write(2) per record, O_APPEND; SIGHUP reopens the file (rotation).
 *
 * Private to the server module. */
#ifndef MWL_SERVER_AUDIT_H
#define MWL_SERVER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

typedef struct mwl_server mwl_server;

/* Who is on the other end, as the records name them. */
typedef struct audit_peer {
    const char *peer;    /* "127.0.0.1:40000" */
    const char *calling; /* "" before the A-ASSOCIATE-RQ */
    const char *called;
    const char *transport;   /* "tcp", "tls" */
    const char *tls_subject; /* the client certificate's subject, "" = none */
} audit_peer;

/* An association decided: accepted, or refused with `reason` (the
 * A-ASSOCIATE-RJ result/source/reason and why). */
void audit_association(mwl_server *srv, const audit_peer *who, bool accepted, const char *reason);
/* A connection that ended before an association: why. */
void audit_connection(mwl_server *srv, const audit_peer *who, const char *why);

/* The Patient IDs a C-FIND returned, collected as it streams. */
typedef struct audit_ids {
    mwl_wbuf text; /* NUL-terminated IDs, one after the other */
    size_t count;
    bool truncated; /* more than fit: the record says so */
} audit_ids;

/* Adds an ID unless it is already there (worker or loop thread: the owner's). */
void audit_ids_add(audit_ids *ids, const char *utf8);
void audit_ids_reset(audit_ids *ids);

/* A C-FIND's final response went out, or the C-FIND was refused at once
 * or abandoned with its association: `result` says which ("completed",
 * "refused: why", "abandoned with the association"). */
void audit_find(mwl_server *srv, const audit_peer *who, uint16_t message_id, const char *query,
                const char *result, uint16_t status, uint64_t matches, const audit_ids *ids,
                uint64_t duration_ms);

#endif
