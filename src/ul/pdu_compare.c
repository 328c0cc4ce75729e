/* Generic encoding and field-by-field comparison of decoded PDUs (the
 * round-trip checks of the PDU tests and of the PDU fuzz target). */
#include <string.h>

#include "ul/pdu.h"

int mwl_pdu_encode(const mwl_pdu *p, mwl_wbuf *w)
{
    switch (p->type) {
    case MWL_PDU_ASSOCIATE_RQ: return mwl_pdu_encode_associate_rq(&p->u.associate_rq, w);
    case MWL_PDU_ASSOCIATE_AC: return mwl_pdu_encode_associate_ac(&p->u.associate_ac, w);
    case MWL_PDU_ASSOCIATE_RJ: return mwl_pdu_encode_associate_rj(&p->u.associate_rj, w);
    case MWL_PDU_P_DATA_TF: return mwl_pdu_encode_p_data(p->u.p_data.pdvs, p->u.p_data.pdv_count, w);
    case MWL_PDU_RELEASE_RQ: return mwl_pdu_encode_release_rq(w);
    case MWL_PDU_RELEASE_RP: return mwl_pdu_encode_release_rp(w);
    case MWL_PDU_ABORT: return mwl_pdu_encode_abort(p->u.abort.source, p->u.abort.reason, w);
    }
    return MWL_E_INVALID;
}

/* On the first difference: name it in *what and report "not equal". */
#define SAME(cond)                                                                                           \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            *what = #cond;                                                                                   \
            return false;                                                                                    \
        }                                                                                                    \
    } while (0)

static bool str_same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static bool mem_same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || (a && b && memcmp(a, b, an) == 0));
}

static bool user_info_same(const mwl_user_info *a, const mwl_user_info *b, const char **what)
{
    SAME(a->max_length == b->max_length);
    SAME(str_same(a->implementation_class_uid, b->implementation_class_uid));
    SAME(str_same(a->implementation_version_name, b->implementation_version_name));
    SAME(a->has_async_window == b->has_async_window);
    if (a->has_async_window) {
        SAME(a->max_operations_invoked == b->max_operations_invoked);
        SAME(a->max_operations_performed == b->max_operations_performed);
    }
    SAME(a->role_count == b->role_count);
    for (size_t i = 0; i < a->role_count; i++) {
        SAME(str_same(a->roles[i].sop_class_uid, b->roles[i].sop_class_uid));
        SAME(a->roles[i].scu_role == b->roles[i].scu_role);
        SAME(a->roles[i].scp_role == b->roles[i].scp_role);
    }
    SAME(a->ext_negotiation_count == b->ext_negotiation_count);
    for (size_t i = 0; i < a->ext_negotiation_count; i++) {
        const mwl_ext_negotiation *x = &a->ext_negotiations[i], *y = &b->ext_negotiations[i];
        SAME(str_same(x->sop_class_uid, y->sop_class_uid));
        SAME(mem_same(x->info, x->info_length, y->info, y->info_length));
    }
    SAME(a->common_ext_negotiation_count == b->common_ext_negotiation_count);
    for (size_t i = 0; i < a->common_ext_negotiation_count; i++) {
        const mwl_common_ext_negotiation *x = &a->common_ext_negotiations[i],
                                         *y = &b->common_ext_negotiations[i];
        SAME(str_same(x->sop_class_uid, y->sop_class_uid));
        SAME(str_same(x->service_class_uid, y->service_class_uid));
        SAME(x->related_count == y->related_count);
        for (size_t j = 0; j < x->related_count; j++)
            SAME(str_same(x->related_sop_classes[j], y->related_sop_classes[j]));
    }
    SAME(a->has_user_identity_rq == b->has_user_identity_rq);
    if (a->has_user_identity_rq) {
        const mwl_user_identity_rq *x = &a->user_identity_rq, *y = &b->user_identity_rq;
        SAME(x->type == y->type);
        SAME(x->positive_response_requested == y->positive_response_requested);
        SAME(mem_same(x->primary_field, x->primary_length, y->primary_field, y->primary_length));
        SAME(mem_same(x->secondary_field, x->secondary_length, y->secondary_field, y->secondary_length));
    }
    SAME(a->has_user_identity_ac == b->has_user_identity_ac);
    if (a->has_user_identity_ac)
        SAME(mem_same(a->server_response, a->server_response_length, b->server_response,
                      b->server_response_length));
    return true;
}

bool mwl_pdu_equal(const mwl_pdu *a, const mwl_pdu *b, bool compare_rq_echo, const char **what)
{
    const char *ignored;
    if (!what)
        what = &ignored;
    *what = "";
    SAME(a->type == b->type);
    switch (a->type) {
    case MWL_PDU_ASSOCIATE_RQ: {
        const mwl_assoc_rq *x = &a->u.associate_rq, *y = &b->u.associate_rq;
        SAME(x->protocol_version == y->protocol_version);
        SAME(str_same(x->called_ae, y->called_ae));
        SAME(str_same(x->calling_ae, y->calling_ae));
        if (compare_rq_echo)
            SAME(memcmp(x->echo, y->echo, sizeof x->echo) == 0);
        SAME(str_same(x->application_context, y->application_context));
        SAME(x->context_count == y->context_count);
        for (size_t i = 0; i < x->context_count; i++) {
            const mwl_pctx_rq *p = &x->contexts[i], *q = &y->contexts[i];
            SAME(p->id == q->id);
            SAME(str_same(p->abstract_syntax, q->abstract_syntax));
            SAME(p->transfer_syntax_count == q->transfer_syntax_count);
            for (size_t j = 0; j < p->transfer_syntax_count; j++)
                SAME(str_same(p->transfer_syntaxes[j], q->transfer_syntaxes[j]));
        }
        return user_info_same(&x->user_info, &y->user_info, what);
    }
    case MWL_PDU_ASSOCIATE_AC: {
        const mwl_assoc_ac *x = &a->u.associate_ac, *y = &b->u.associate_ac;
        SAME(x->protocol_version == y->protocol_version);
        SAME(memcmp(x->echo, y->echo, sizeof x->echo) == 0);
        SAME(str_same(x->application_context, y->application_context));
        SAME(x->context_count == y->context_count);
        for (size_t i = 0; i < x->context_count; i++) {
            SAME(x->contexts[i].id == y->contexts[i].id);
            SAME(x->contexts[i].result == y->contexts[i].result);
            SAME(str_same(x->contexts[i].transfer_syntax, y->contexts[i].transfer_syntax));
        }
        return user_info_same(&x->user_info, &y->user_info, what);
    }
    case MWL_PDU_ASSOCIATE_RJ:
        SAME(a->u.associate_rj.result == b->u.associate_rj.result);
        SAME(a->u.associate_rj.source == b->u.associate_rj.source);
        SAME(a->u.associate_rj.reason == b->u.associate_rj.reason);
        return true;
    case MWL_PDU_ABORT:
        SAME(a->u.abort.source == b->u.abort.source);
        SAME(a->u.abort.reason == b->u.abort.reason);
        return true;
    case MWL_PDU_P_DATA_TF:
        SAME(a->u.p_data.pdv_count == b->u.p_data.pdv_count);
        for (size_t i = 0; i < a->u.p_data.pdv_count; i++) {
            const mwl_pdv *p = &a->u.p_data.pdvs[i], *q = &b->u.p_data.pdvs[i];
            SAME(p->context_id == q->context_id);
            SAME(p->control == q->control);
            SAME(mem_same(p->data, p->length, q->data, q->length));
        }
        return true;
    case MWL_PDU_RELEASE_RQ:
    case MWL_PDU_RELEASE_RP: return true;
    }
    *what = "unknown PDU type";
    return false;
}
