/* Association negotiation for the acceptor (PS3.8 §7.1.1, §9.3.3/§9.3.4;
 * PS3.7 Annex D.3.3): a pure function from a received A-ASSOCIATE-RQ and a
 * policy to either an A-ASSOCIATE-AC or an A-ASSOCIATE-RJ. No state, no I/O;
 * the only side effect is memory taken from the caller's arena. */
#include <string.h>

#include "ul/ul.h"

void mwl_policy_init(mwl_policy *policy)
{
    memset(policy, 0, sizeof *policy);
    policy->max_pdu_length = 16384;
}

/* AE titles: leading and trailing spaces are not significant (PS3.5 AE,
 * PS3.8 Table 9-11); embedded ones are. The decoder already trims the RQ's
 * titles, but policy strings come from configuration. */
static void trim(const char *s, const char **begin, size_t *length)
{
    size_t n = strlen(s);
    while (n > 0 && *s == ' ') {
        s++;
        n--;
    }
    while (n > 0 && s[n - 1] == ' ')
        n--;
    *begin = s;
    *length = n;
}

static bool same_ae_title(const char *a, const char *b)
{
    const char *pa, *pb;
    size_t na, nb;
    trim(a, &pa, &na);
    trim(b, &pb, &nb);
    return na == nb && memcmp(pa, pb, na) == 0;
}

bool mwl_ae_title_well_formed(const char *title)
{
    if (!title)
        return false;
    bool any = false;
    for (const unsigned char *c = (const unsigned char *)title; *c; c++) {
        if (*c < 0x20 || *c == 0x7F || *c == '\\')
            return false;
        any = any || *c != ' ';
    }
    return any;
}

static bool same_uid(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static const mwl_policy_syntax *find_syntax(const mwl_policy *policy, const char *abstract_syntax)
{
    for (size_t i = 0; i < policy->syntax_count; i++)
        if (same_uid(policy->syntaxes[i].abstract_syntax, abstract_syntax))
            return &policy->syntaxes[i];
    return NULL;
}

/* The first 54H sub-item for a SOP class; later duplicates are ignored. */
static const mwl_role_selection *find_role(const mwl_user_info *ui, const char *sop_class)
{
    for (size_t i = 0; i < ui->role_count; i++)
        if (same_uid(ui->roles[i].sop_class_uid, sop_class))
            return &ui->roles[i];
    return NULL;
}

/* Roles the requestor ends up with for one SOP class (PS3.7 D.3.3.4):
 * without a 54H sub-item it is the SCU (the default); with one, each role it
 * proposed is granted if the policy allows it. */
static void grant_roles(const mwl_policy_syntax *syn, const mwl_role_selection *proposed, uint8_t *scu,
                        uint8_t *scp)
{
    if (!proposed) {
        *scu = syn->accept_scu_role ? 1 : 0;
        *scp = 0;
        return;
    }
    *scu = (proposed->scu_role && syn->accept_scu_role) ? 1 : 0;
    *scp = (proposed->scp_role && syn->accept_scp_role) ? 1 : 0;
}

/* Our preference decides, not the requestor's order: the first of our
 * transfer syntaxes that appears anywhere in the proposal (PS3.8 §7.1.1.13
 * lets the acceptor pick any one of those offered). */
static const char *choose_transfer_syntax(const mwl_policy_syntax *syn, const mwl_pctx_rq *pc)
{
    for (size_t i = 0; i < syn->transfer_syntax_count; i++)
        for (size_t j = 0; j < pc->transfer_syntax_count; j++)
            if (same_uid(syn->transfer_syntaxes[i], pc->transfer_syntaxes[j]))
                return syn->transfer_syntaxes[i];
    return NULL;
}

static void set_reject(mwl_negotiation *out, uint8_t result, uint8_t source, uint8_t reason)
{
    out->accepted = false;
    out->rj.result = result;
    out->rj.source = source;
    out->rj.reason = reason;
}

static bool calling_ae_allowed(const mwl_policy *policy, const char *calling_ae)
{
    if (policy->calling_ae_allow_count == 0)
        return true;
    for (size_t i = 0; i < policy->calling_ae_allow_count; i++)
        if (policy->calling_ae_allow[i] && same_ae_title(policy->calling_ae_allow[i], calling_ae))
            return true;
    return false;
}

/* Association-level checks in a fixed order, first failure wins. Returns
 * true when the association may go on to context negotiation. */
static bool check_association(const mwl_assoc_rq *rq, const mwl_policy *policy, mwl_negotiation *out,
                              const uint8_t **identity_response, size_t *identity_response_length)
{
    /* PS3.8 Table 9-11: receivers test only bit 0 of the protocol version. */
    if (!(rq->protocol_version & 1)) {
        set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_PROVIDER_ACSE,
                   MWL_RJ_ACSE_PROTOCOL_VERSION_NOT_SUPPORTED);
        return false;
    }
    /* PS3.7 A.2.1: the DICOM application context is the only one. */
    if (!same_uid(rq->application_context, MWL_APPLICATION_CONTEXT_NAME)) {
        set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_USER, MWL_RJ_USER_APP_CONTEXT_NOT_SUPPORTED);
        return false;
    }
    /* A title with a control character, a backslash or nothing in it names
     * no AE anyone configured, whatever the policy: it is a probe at logs,
     * terminals or file names, or a broken peer. */
    if (!mwl_ae_title_well_formed(rq->called_ae)) {
        set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_USER, MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED);
        return false;
    }
    /* §7.1.1.4 note: checking the called title is the acceptor user's job. */
    if (policy->strict_called_ae && !same_ae_title(rq->called_ae, policy->ae_title)) {
        set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_USER, MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED);
        return false;
    }
    if (!mwl_ae_title_well_formed(rq->calling_ae) || policy->calling_ae_refused ||
        !calling_ae_allowed(policy, rq->calling_ae)) {
        set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_USER, MWL_RJ_USER_CALLING_AE_NOT_RECOGNIZED);
        return false;
    }
    /* A Maximum Length (PS3.8 D.1) too small to carry a response in a sane
     * number of PDUs: every message would be cut into pieces of a few
     * bytes. 0 means "no limit" and is fine. Permanent, user, no reason:
     * Table 9-21 has no reason closer to "your parameters are unusable". */
    if (policy->min_peer_max_length && rq->user_info.max_length != 0 &&
        rq->user_info.max_length < policy->min_peer_max_length) {
        set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_USER, MWL_RJ_USER_NO_REASON);
        return false;
    }
    /* PS3.7 D.3.3.7.3: an identity that fails authorization is rejected
     * permanent, source 2 (service provider, ACSE); the reason byte is not
     * specified there, so "no reason given". Without a check configured the
     * sub-item is ignored, which D.3.3.7 allows. */
    if (policy->identity_check) {
        const mwl_user_info *ui = &rq->user_info;
        bool ok;
        if (ui->has_user_identity_rq)
            ok = policy->identity_check(policy->identity_user, &ui->user_identity_rq, identity_response,
                                        identity_response_length);
        else
            ok = !policy->require_identity;
        if (!ok) {
            set_reject(out, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_PROVIDER_ACSE, MWL_RJ_ACSE_NO_REASON);
            return false;
        }
    }
    /* Transient: the requestor may try again later (Table 9-21). Checked
     * last so that a permanent problem is reported even when busy. */
    if (policy->too_many_associations) {
        set_reject(out, MWL_RJ_RESULT_TRANSIENT, MWL_RJ_SOURCE_PROVIDER_PRESENTATION,
                   MWL_RJ_PRES_LOCAL_LIMIT_EXCEEDED);
        return false;
    }
    return true;
}

static void answer_context(const mwl_assoc_rq *rq, const mwl_policy *policy, size_t index, mwl_pctx_ac *ac)
{
    const mwl_pctx_rq *pc = &rq->contexts[index];
    ac->id = pc->id;
    ac->transfer_syntax = ""; /* not significant unless accepted (Table 9-18) */

    /* Context IDs are unique within an association (§7.1.1.13); a repeat
     * cannot be accepted twice, so the later ones get a plain rejection. */
    for (size_t i = 0; i < index; i++) {
        if (rq->contexts[i].id == pc->id) {
            ac->result = MWL_PCTX_NO_REASON;
            return;
        }
    }
    const mwl_policy_syntax *syn = find_syntax(policy, pc->abstract_syntax);
    if (!syn) {
        ac->result = MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED;
        return;
    }
    const char *ts = choose_transfer_syntax(syn, pc);
    if (!ts) {
        ac->result = MWL_PCTX_TRANSFER_SYNTAXES_NOT_SUPPORTED;
        return;
    }
    uint8_t scu, scp;
    grant_roles(syn, find_role(&rq->user_info, pc->abstract_syntax), &scu, &scp);
    if (!scu && !scp) {
        /* Nobody could invoke or perform anything on this context. */
        ac->result = MWL_PCTX_USER_REJECTION;
        return;
    }
    ac->result = MWL_PCTX_ACCEPTANCE;
    ac->transfer_syntax = ts;
}

/* 54H answers (PS3.7 D.3.3.4): one per SOP class that the RQ asked about,
 * that we serve and for which a context was accepted; omitted otherwise. */
static int answer_roles(const mwl_assoc_rq *rq, const mwl_policy *policy, const mwl_pctx_ac *contexts,
                        mwl_arena *arena, mwl_user_info *ui)
{
    const mwl_user_info *rq_ui = &rq->user_info;
    if (rq_ui->role_count == 0)
        return MWL_OK;
    mwl_role_selection *roles = mwl_arena_calloc(arena, rq_ui->role_count * sizeof *roles);
    if (!roles)
        return MWL_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < rq_ui->role_count; i++) {
        const mwl_role_selection *r = &rq_ui->roles[i];
        if (find_role(rq_ui, r->sop_class_uid) != r)
            continue; /* a repeat of an earlier 54H for the same class */
        const mwl_policy_syntax *syn = find_syntax(policy, r->sop_class_uid);
        if (!syn)
            continue;
        bool accepted = false;
        for (size_t c = 0; c < rq->context_count && !accepted; c++)
            accepted = contexts[c].result == MWL_PCTX_ACCEPTANCE &&
                       same_uid(rq->contexts[c].abstract_syntax, r->sop_class_uid);
        if (!accepted)
            continue;
        roles[n].sop_class_uid = r->sop_class_uid;
        grant_roles(syn, r, &roles[n].scu_role, &roles[n].scp_role);
        n++;
    }
    ui->roles = n ? roles : NULL;
    ui->role_count = n;
    return MWL_OK;
}

int mwl_negotiate(const mwl_assoc_rq *rq, const mwl_policy *policy, mwl_arena *arena, mwl_negotiation *out)
{
    if (!rq || !policy || !arena || !out || !policy->ae_title || !policy->implementation_class_uid ||
        (policy->syntax_count && !policy->syntaxes) ||
        (policy->calling_ae_allow_count && !policy->calling_ae_allow))
        return MWL_E_INVALID;
    memset(out, 0, sizeof *out);

    const uint8_t *identity_response = NULL;
    size_t identity_response_length = 0;
    if (!check_association(rq, policy, out, &identity_response, &identity_response_length))
        return MWL_OK;

    mwl_assoc_ac *ac = &out->ac;
    ac->protocol_version = 1;
    memcpy(ac->echo, rq->echo, sizeof ac->echo); /* Table 9-17: bytes 11-74 as received */
    ac->application_context = MWL_APPLICATION_CONTEXT_NAME;

    /* §7.1.1.13: one result for every proposed context. */
    if (rq->context_count) {
        ac->contexts = mwl_arena_calloc(arena, rq->context_count * sizeof *ac->contexts);
        if (!ac->contexts)
            return MWL_E_NOMEM;
        for (size_t i = 0; i < rq->context_count; i++)
            answer_context(rq, policy, i, &ac->contexts[i]);
    }
    ac->context_count = rq->context_count;

    mwl_user_info *ui = &ac->user_info;
    ui->max_length = policy->max_pdu_length;
    ui->implementation_class_uid = policy->implementation_class_uid;
    ui->implementation_version_name =
        policy->implementation_version_name ? policy->implementation_version_name : "";
    /* PS3.7 D.3.3.3: answered only if proposed; we perform and invoke one
     * operation at a time, which every peer must support. */
    if (rq->user_info.has_async_window) {
        ui->has_async_window = true;
        ui->max_operations_invoked = 1;
        ui->max_operations_performed = 1;
    }
    int rc = answer_roles(rq, policy, ac->contexts, arena, ui);
    if (rc != MWL_OK)
        return rc;
    /* PS3.7 D.3.3.7.2: 59H only when the RQ asked for a positive response
     * and the identity was actually checked and accepted. */
    if (policy->identity_check && rq->user_info.has_user_identity_rq &&
        rq->user_info.user_identity_rq.positive_response_requested) {
        ui->has_user_identity_ac = true;
        ui->server_response = identity_response;
        ui->server_response_length = identity_response ? identity_response_length : 0;
    }
    /* 56H (SOP class extended negotiation) is not answered: we support no
     * extended behaviour, and an absent answer means "not supported"
     * (PS3.7 D.3.3.5; for MWL, literal PN matching, PS3.4 K.5.1). */
    out->accepted = true;
    return MWL_OK;
}
