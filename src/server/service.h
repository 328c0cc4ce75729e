/* The contract of a DIMSE service class (mwl_scp_class, server.h): what
 * the session loop calls, so that a new service (MPPS N-CREATE/N-SET is
 * next) is a new file and a table entry, not an edit of session.c.
 *
 * The session routes each DIMSE request by its presentation context: the
 * context's abstract syntax picks the table entry, and the entry's class
 * must list the command. A request whose command some other entry handles
 * is answered 0122 (SOP class not supported on this context); one no entry
 * handles, 0211 (unrecognized operation); a C-CANCEL goes to the context's
 * class. Each class gets its own state per session, allocated on first use.
 *
 * Private to the server module. */
#ifndef MWL_SERVER_SERVICE_H
#define MWL_SERVER_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dimse/dimse.h"
#include "server/server.h"
#include "server/session.h"

struct mwl_scp_class {
    const char *name;         /* "echo", "find": for the association log line */
    const uint16_t *commands; /* request command fields handled, 0-terminated */
    size_t state_size;        /* per-session state, 0 = none */
    /* Checks the service's config when the server is created. May be NULL. */
    int (*check)(const void *config, mwl_diag *diag);
    /* Sets up / releases the per-session state (zeroed before init). */
    void (*init)(void *state, session *s, const mwl_service *svc);
    void (*clear)(void *state);
    /* A request this class handles, on the entry's context. */
    void (*request)(void *state, session *s, const mwl_service *svc, const mwl_dimse_msg *msg);
    /* C-CANCEL-RQ on the entry's context. May be NULL (then ignored). */
    void (*cancel)(void *state, session *s, const mwl_dimse_msg *msg);
    /* The association is releasing or going away: send nothing more, end
     * outstanding work (maybe through the pool). May be NULL. */
    void (*abandon)(void *state, session *s);
    /* True while the session must not be freed (work on a worker, state
     * to end). May be NULL (never busy). */
    bool (*busy)(const void *state);
    /* The unsent output fell below session_output_low(). May be NULL. */
    void (*drained)(void *state, session *s);
};

#endif
