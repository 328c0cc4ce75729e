/* C-ECHO SCP (PS3.7 §9.1.5, §9.3.5; PS3.4 Annex A) and the answer to
 * requests we do not perform. Both run on the loop thread as soon as the
 * request is complete: a C-ECHO never waits for a worker or the store,
 * so it stays prompt while other associations run long queries. */
#include <string.h>

#include "base/log.h"
#include "dicom/tag.h"
#include "server/server_int.h"

/* The loop thread's encode buffer, emptied for one message. */
static mwl_wbuf *scratch(mwl_server *srv)
{
    if (srv->scratch.status != MWL_OK || srv->scratch.cap > 64u * 1024u)
        mwl_wbuf_clear(&srv->scratch); /* lift a sticky error; give back a big buffer */
    srv->scratch.len = 0;
    return &srv->scratch;
}

void echo_scp_request(session *s, const mwl_dimse_msg *msg)
{
    mwl_server *srv = s->srv;
    const char *abstract_syntax = NULL;
    /* The UL delivers PDVs of accepted contexts only, so this succeeds. */
    if (mwl_ul_context(s->ul, msg->context_id, &abstract_syntax, NULL) != MWL_OK) {
        session_abort(s, "C-ECHO on a context that is not accepted");
        return;
    }
    const char *affected = msg->command.affected_sop_class_uid; /* required in C-ECHO-RQ */
    uint16_t status = MWL_DIMSE_STATUS_SUCCESS;
    /* PS3.7 §9.1.5.1.4: a C-ECHO on another SOP class's context (or naming
     * another class than its context's) is refused, not performed. */
    if (strcmp(abstract_syntax, MWL_UID_Verification) != 0 || strcmp(affected, abstract_syntax) != 0)
        status = MWL_DIMSE_STATUS_SOP_CLASS_NOT_SUPPORTED;
    mwl_wbuf *w = scratch(srv);
    int rc = mwl_dimse_encode_echo_rsp(msg->command.message_id, affected, status, w);
    if (rc != MWL_OK) {
        session_abort(s, "cannot encode C-ECHO-RSP");
        return;
    }
    if (session_send_message(s, msg->context_id, w->data, w->len, NULL, 0) != MWL_OK)
        return;
    s->echoes++;
    server_stat_add(&srv->stats.echoes, 1);
    if (status != MWL_DIMSE_STATUS_SUCCESS)
        mwl_log(MWL_LOG_WARN, "assoc %s %s: C-ECHO on context %u (%s) refused: %04X", s->peer, s->calling,
                (unsigned)msg->context_id, abstract_syntax, (unsigned)status);
    else
        mwl_log(MWL_LOG_DEBUG, "assoc %s %s: C-ECHO answered", s->peer, s->calling);
}

void scp_reply_unrecognized(session *s, const mwl_dimse_msg *msg)
{
    const mwl_dimse_command *rq = &msg->command;
    mwl_dimse_command rsp;
    mwl_dimse_command_init(&rsp);
    rsp.command_field = (uint16_t)(rq->command_field | MWL_DIMSE_RSP);
    rsp.data_set_type = MWL_DIMSE_DATASET_NONE;
    rsp.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | MWL_DIMSE_HAS_STATUS;
    rsp.message_id_being_responded_to = rq->message_id;
    rsp.status = MWL_DIMSE_STATUS_UNRECOGNIZED_OPERATION;
    /* U(=) fields echo the request's, which helps the peer match them. */
    if (rq->present & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID) {
        rsp.present |= MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID;
        rsp.affected_sop_class_uid = rq->affected_sop_class_uid;
    }
    if (rq->present & MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID) {
        rsp.present |= MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID;
        rsp.affected_sop_instance_uid = rq->affected_sop_instance_uid;
    }
    mwl_wbuf *w = scratch(s->srv);
    if (mwl_dimse_encode_command(&rsp, w) != MWL_OK) {
        session_abort(s, "cannot encode a response to an unsupported request");
        return;
    }
    mwl_log(MWL_LOG_WARN, "assoc %s %s: %s not supported: answered 0211", s->peer, s->calling,
            mwl_dimse_command_name(rq->command_field));
    (void)session_send_message(s, msg->context_id, w->data, w->len, NULL, 0);
}
