/* Verification SCP: C-ECHO (PS3.7 §9.1.5, §9.3.5; PS3.4 Annex A). It runs
 * on the loop thread as soon as the request is complete: a C-ECHO never
 * waits for a worker or the store, so it stays prompt while other
 * associations run long queries. */
#include <string.h>

#include "base/log.h"
#include "server/service.h"
#include "server/session.h"

static void echo_request(void *state, session *s, const mwl_service *svc, const mwl_dimse_msg *msg)
{
    (void)state;
    const char *affected = msg->command.affected_sop_class_uid; /* required in C-ECHO-RQ */
    uint16_t status = MWL_DIMSE_STATUS_SUCCESS;
    /* PS3.7 §9.1.5.1.4: a C-ECHO naming another class than its context's
     * is refused, not performed. */
    if (!affected || strcmp(affected, svc->sop_class) != 0)
        status = MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED;
    mwl_wbuf *w = session_scratch(s);
    if (mwl_dimse_encode_echo_rsp(msg->command.message_id, affected ? affected : "", status, w) != MWL_OK) {
        session_abort(s, "cannot encode C-ECHO-RSP");
        return;
    }
    if (session_send(s, msg->context_id, w->data, w->len, NULL, 0) != MWL_OK)
        return;
    session_stat_add(s, SESSION_STAT_ECHOES, 1);
    if (status != MWL_DIMSE_STATUS_SUCCESS)
        mwl_log(MWL_LOG_WARN, "assoc %s %s: C-ECHO on context %u naming %s refused: %04X", session_peer(s),
                session_calling(s), (unsigned)msg->context_id, affected ? affected : "-", (unsigned)status);
    else
        mwl_log(MWL_LOG_DEBUG, "assoc %s %s: C-ECHO answered", session_peer(s), session_calling(s));
}

static const uint16_t echo_commands[] = {MWL_DIMSE_C_ECHO_RQ, 0};

const mwl_scp_class mwl_scp_verification = {
    .name = "echo",
    .commands = echo_commands,
    .request = echo_request,
};
