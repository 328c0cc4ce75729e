/* mwl_negotiate: one table row per rule (PS3.8 §7.1.1, Tables 9-18 and
 * 9-21; PS3.7 D.3.3). Each row changes the base request or policy and
 * states the whole expected outcome. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ul/ul.h"

#define UID_VERIFICATION "1.2.840.10008.1.1"
#define UID_MWL_FIND "1.2.840.10008.5.1.4.31"
#define UID_CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define UID_PEER_ROLES "1.2.3.999" /* a made-up class for which we accept both roles */
#define TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"
#define TS_EXPLICIT_BE "1.2.840.10008.1.2.2"
#define TS_JPEG "1.2.840.10008.1.2.4.50"
#define OUR_CLASS_UID "1.2.826.0.1.3680043.10.1"

/* ---- the policy ------------------------------------------------------- */

static const char *const our_ts_short[] = {TS_EXPLICIT_LE, TS_IMPLICIT_LE};
static const char *const our_ts_long[] = {TS_EXPLICIT_LE, TS_IMPLICIT_LE, TS_EXPLICIT_BE, TS_DEFLATED};
static const mwl_policy_syntax our_syntaxes[] = {
    {UID_VERIFICATION, our_ts_short, 2, true, false},
    {UID_MWL_FIND, our_ts_long, 4, true, false},
    {UID_PEER_ROLES, our_ts_short, 2, true, true},
};
static const char *const allow[] = {"MOD1", " SCU2 "};

static bool identity_result;
static const uint8_t identity_token[] = {'o', 'k'};
static int identity_calls;

static bool check_identity(void *user, const mwl_user_identity_rq *id, const uint8_t **response,
                           size_t *response_length)
{
    (void)user;
    identity_calls++;
    if (id->type == 3) { /* Kerberos: a server ticket goes back */
        *response = identity_token;
        *response_length = sizeof identity_token;
    }
    return identity_result && id->primary_length == 4 && memcmp(id->primary_field, "user", 4) == 0;
}

static void base_policy(mwl_policy *p)
{
    mwl_policy_init(p);
    p->ae_title = "MWLSCP";
    p->syntaxes = our_syntaxes;
    p->syntax_count = 3;
    p->max_pdu_length = 32768;
    p->implementation_class_uid = OUR_CLASS_UID;
    p->implementation_version_name = "MWL_010";
}

/* ---- the request: storage the test cases edit ------------------------- */

typedef struct request {
    mwl_assoc_rq rq;
    mwl_pctx_rq contexts[4];
    const char *ts[4][4];
    mwl_role_selection roles[3];
    mwl_ext_negotiation ext;
} request;

static const uint8_t mwl_ext_info[] = {1, 1, 1};

static void base_request(request *r)
{
    memset(r, 0, sizeof *r);
    mwl_assoc_rq *rq = &r->rq;
    rq->protocol_version = 1;
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(rq, "MWLSCP", "SCU2"), MWL_OK);
    rq->application_context = MWL_APPLICATION_CONTEXT_NAME;
    /* Verification offered implicit first: our preference must still win */
    r->ts[0][0] = TS_IMPLICIT_LE;
    r->ts[0][1] = TS_EXPLICIT_LE;
    r->contexts[0] = (mwl_pctx_rq){1, UID_VERIFICATION, r->ts[0], 2};
    r->ts[1][0] = TS_IMPLICIT_LE;
    r->contexts[1] = (mwl_pctx_rq){3, UID_MWL_FIND, r->ts[1], 1};
    rq->contexts = r->contexts;
    rq->context_count = 2;
    rq->user_info.max_length = 16384;
    rq->user_info.implementation_class_uid = "1.2.3.4";
    rq->user_info.roles = r->roles;
    rq->user_info.ext_negotiations = &r->ext;
}

/* ---- the table -------------------------------------------------------- */

typedef struct expect_ctx {
    uint8_t id, result;
    const char *ts; /* accepted transfer syntax, or NULL */
} expect_ctx;

typedef struct expect_role {
    const char *sop_class;
    uint8_t scu, scp;
} expect_role;

typedef struct neg_case {
    const char *name;
    void (*edit)(request *r, mwl_policy *p);
    bool accepted;
    mwl_assoc_rj rj;
    expect_ctx ctx[4];
    size_t ctx_count;
    expect_role roles[3];
    size_t role_count;
} neg_case;

static void edit_none(request *r, mwl_policy *p)
{
    (void)r;
    (void)p;
}
static void edit_unknown_abstract(request *r, mwl_policy *p)
{
    (void)p;
    r->contexts[1].abstract_syntax = UID_CT_STORAGE;
}
static void edit_no_common_ts(request *r, mwl_policy *p)
{
    (void)p;
    r->ts[1][0] = TS_JPEG;
}
static void edit_preference(request *r, mwl_policy *p)
{
    (void)p;
    /* their order: deflated, explicit BE, implicit; ours: implicit first */
    r->ts[1][0] = TS_DEFLATED;
    r->ts[1][1] = TS_EXPLICIT_BE;
    r->ts[1][2] = TS_IMPLICIT_LE;
    r->contexts[1].transfer_syntax_count = 3;
    /* and a third context offering only the "others" */
    r->ts[2][0] = TS_DEFLATED;
    r->ts[2][1] = TS_EXPLICIT_BE;
    r->contexts[2] = (mwl_pctx_rq){5, UID_MWL_FIND, r->ts[2], 2};
    r->rq.context_count = 3;
}
static void edit_version_0(request *r, mwl_policy *p)
{
    (void)p;
    r->rq.protocol_version = 2; /* bit 0 unset */
}
static void edit_version_3(request *r, mwl_policy *p)
{
    (void)p;
    r->rq.protocol_version = 3; /* only bit 0 is tested */
}
static void edit_app_context(request *r, mwl_policy *p)
{
    (void)p;
    r->rq.application_context = "1.2.840.10008.3.1.1.2";
}
static void edit_version_and_context(request *r, mwl_policy *p)
{
    edit_version_0(r, p);
    edit_app_context(r, p);
}
static void edit_called_strict(request *r, mwl_policy *p)
{
    (void)r;
    p->strict_called_ae = true;
    p->ae_title = "OTHER";
}
static void edit_called_lenient(request *r, mwl_policy *p)
{
    (void)r;
    p->ae_title = "OTHER";
}
static void edit_called_strict_padded(request *r, mwl_policy *p)
{
    (void)r;
    p->strict_called_ae = true;
    p->ae_title = "  MWLSCP  ";
}
static void edit_called_case(request *r, mwl_policy *p)
{
    (void)r;
    p->strict_called_ae = true;
    p->ae_title = "mwlscp"; /* AE titles are compared exactly */
}
static void edit_allow_miss(request *r, mwl_policy *p)
{
    (void)r;
    p->calling_ae_allow = allow;
    p->calling_ae_allow_count = 1;
}
static void edit_allow_hit(request *r, mwl_policy *p)
{
    (void)r;
    p->calling_ae_allow = allow;
    p->calling_ae_allow_count = 2;
}
static void edit_refused(request *r, mwl_policy *p)
{
    (void)r;
    p->calling_ae_refused = true; /* the driver's access rules said no */
}
static void edit_calling_escape(request *r, mwl_policy *p)
{
    (void)p;
    snprintf(r->rq.calling_ae, sizeof r->rq.calling_ae, "\x1b[31mEVIL");
}
static void edit_calling_crlf(request *r, mwl_policy *p)
{
    (void)p;
    snprintf(r->rq.calling_ae, sizeof r->rq.calling_ae, "A\r\nB");
}
static void edit_calling_backslash(request *r, mwl_policy *p)
{
    (void)p;
    snprintf(r->rq.calling_ae, sizeof r->rq.calling_ae, "CT\\MR");
}
static void edit_calling_empty(request *r, mwl_policy *p)
{
    (void)p;
    r->rq.calling_ae[0] = '\0'; /* sixteen spaces on the wire */
}
static void edit_calling_latin1(request *r, mwl_policy *p)
{
    (void)p;
    snprintf(r->rq.calling_ae, sizeof r->rq.calling_ae, "R\xd6NTGEN"); /* let through */
}
static void edit_called_del(request *r, mwl_policy *p)
{
    (void)p;
    snprintf(r->rq.called_ae, sizeof r->rq.called_ae, "MWL\x7f");
}
static void edit_called_tab_and_calling_bad(request *r, mwl_policy *p)
{
    (void)p;
    snprintf(r->rq.called_ae, sizeof r->rq.called_ae, "MWL\tSCP");
    snprintf(r->rq.calling_ae, sizeof r->rq.calling_ae, "\x01");
}
static void edit_refused_and_busy(request *r, mwl_policy *p)
{
    (void)r;
    p->calling_ae_refused = true;
    p->too_many_associations = true;
}
static void edit_refused_wrong_called(request *r, mwl_policy *p)
{
    (void)r;
    p->calling_ae_refused = true;
    p->strict_called_ae = true;
    p->ae_title = "OTHER";
}
static void edit_too_many(request *r, mwl_policy *p)
{
    (void)r;
    p->too_many_associations = true;
}
static void edit_tiny_max_length(request *r, mwl_policy *p)
{
    p->min_peer_max_length = 1024;
    r->rq.user_info.max_length = 8;
}
static void edit_floor_max_length(request *r, mwl_policy *p)
{
    p->min_peer_max_length = 1024;
    r->rq.user_info.max_length = 1024;
}
static void edit_unlimited_max_length(request *r, mwl_policy *p)
{
    p->min_peer_max_length = 1024;
    r->rq.user_info.max_length = 0;
}
static void edit_too_many_and_called(request *r, mwl_policy *p)
{
    edit_too_many(r, p);
    edit_called_strict(r, p);
}
static void edit_role_scu_scp(request *r, mwl_policy *p)
{
    (void)p;
    r->roles[0] = (mwl_role_selection){UID_MWL_FIND, 1, 1};
    r->rq.user_info.role_count = 1;
}
static void edit_role_scp_only(request *r, mwl_policy *p)
{
    (void)p;
    r->roles[0] = (mwl_role_selection){UID_MWL_FIND, 0, 1};
    r->rq.user_info.role_count = 1;
}
static void edit_role_unserved(request *r, mwl_policy *p)
{
    (void)p;
    r->roles[0] = (mwl_role_selection){UID_CT_STORAGE, 1, 1};
    r->roles[1] = (mwl_role_selection){UID_VERIFICATION, 1, 0};
    r->rq.user_info.role_count = 2;
}
static void edit_role_both_allowed(request *r, mwl_policy *p)
{
    (void)p;
    r->ts[2][0] = TS_EXPLICIT_LE;
    r->contexts[2] = (mwl_pctx_rq){7, UID_PEER_ROLES, r->ts[2], 1};
    r->rq.context_count = 3;
    r->roles[0] = (mwl_role_selection){UID_PEER_ROLES, 1, 1};
    r->roles[1] = (mwl_role_selection){UID_PEER_ROLES, 0, 0}; /* a repeat: ignored */
    r->rq.user_info.role_count = 2;
}
static void edit_no_scu_by_default(request *r, mwl_policy *p)
{
    (void)r;
    static const mwl_policy_syntax scu_only[] = {{UID_VERIFICATION, our_ts_short, 2, false, true}};
    p->syntaxes = scu_only;
    p->syntax_count = 1;
}
static void edit_duplicate_id(request *r, mwl_policy *p)
{
    (void)p;
    r->contexts[1].id = 1;
}

static const neg_case cases[] = {
    {"accept, our transfer syntax preference",
     edit_none,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"abstract syntax not supported -> 3",
     edit_unknown_abstract,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 3, NULL}},
     2,
     {{0}},
     0},
    {"no common transfer syntax -> 4",
     edit_no_common_ts,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 4, NULL}},
     2,
     {{0}},
     0},
    {"preference order among the others",
     edit_preference,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}, {5, 0, TS_EXPLICIT_BE}},
     3,
     {{0}},
     0},
    {"protocol version bit 0 unset -> (1,2,2)", edit_version_0, false, {1, 2, 2}, {{0}}, 0, {{0}}, 0},
    {"protocol version 3: only bit 0 counts",
     edit_version_3,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"application context -> (1,1,2)", edit_app_context, false, {1, 1, 2}, {{0}}, 0, {{0}}, 0},
    {"version checked before context", edit_version_and_context, false, {1, 2, 2}, {{0}}, 0, {{0}}, 0},
    {"strict called AE -> (1,1,7)", edit_called_strict, false, {1, 1, 7}, {{0}}, 0, {{0}}, 0},
    {"lenient called AE accepts",
     edit_called_lenient,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"strict called AE ignores padding spaces",
     edit_called_strict_padded,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"strict called AE is case-sensitive", edit_called_case, false, {1, 1, 7}, {{0}}, 0, {{0}}, 0},
    {"calling AE not on allow-list -> (1,1,3)", edit_allow_miss, false, {1, 1, 3}, {{0}}, 0, {{0}}, 0},
    {"calling AE on allow-list (padded entry)",
     edit_allow_hit,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"calling AE refused by the driver -> (1,1,3)", edit_refused, false, {1, 1, 3}, {{0}}, 0, {{0}}, 0},
    {"calling AE with ESC -> (1,1,3)", edit_calling_escape, false, {1, 1, 3}, {{0}}, 0, {{0}}, 0},
    {"calling AE with CR LF -> (1,1,3)", edit_calling_crlf, false, {1, 1, 3}, {{0}}, 0, {{0}}, 0},
    {"calling AE with a backslash -> (1,1,3)", edit_calling_backslash, false, {1, 1, 3}, {{0}}, 0, {{0}}, 0},
    {"calling AE with a byte above 7EH accepts",
     edit_calling_latin1,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"calling AE all spaces -> (1,1,3)", edit_calling_empty, false, {1, 1, 3}, {{0}}, 0, {{0}}, 0},
    {"called AE with DEL -> (1,1,7) though not strict",
     edit_called_del,
     false,
     {1, 1, 7},
     {{0}},
     0,
     {{0}},
     0},
    {"malformed called AE before malformed calling AE",
     edit_called_tab_and_calling_bad,
     false,
     {1, 1, 7},
     {{0}},
     0,
     {{0}},
     0},
    {"refused calling AE before busy (permanent first)",
     edit_refused_and_busy,
     false,
     {1, 1, 3},
     {{0}},
     0,
     {{0}},
     0},
    {"called AE checked before the refused calling AE",
     edit_refused_wrong_called,
     false,
     {1, 1, 7},
     {{0}},
     0,
     {{0}},
     0},
    {"too many associations -> (2,3,2)", edit_too_many, false, {2, 3, 2}, {{0}}, 0, {{0}}, 0},
    {"peer Maximum Length 8 below the floor -> (1,1,1)",
     edit_tiny_max_length,
     false,
     {1, 1, 1},
     {{0}},
     0,
     {{0}},
     0},
    {"peer Maximum Length at the floor accepts",
     edit_floor_max_length,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"peer Maximum Length 0 (no limit) accepts",
     edit_unlimited_max_length,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{0}},
     0},
    {"permanent reasons before busy", edit_too_many_and_called, false, {1, 1, 7}, {{0}}, 0, {{0}}, 0},
    {"role: SCU granted, SCP refused",
     edit_role_scu_scp,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{UID_MWL_FIND, 1, 0}},
     1},
    {"role: SCP only -> context rejected (1), no 54H",
     edit_role_scp_only,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 1, NULL}},
     2,
     {{0}},
     0},
    {"role: unserved class omitted",
     edit_role_unserved,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}},
     2,
     {{UID_VERIFICATION, 1, 0}},
     1},
    {"role: both allowed by policy, repeat ignored",
     edit_role_both_allowed,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}, {7, 0, TS_EXPLICIT_LE}},
     3,
     {{UID_PEER_ROLES, 1, 1}},
     1},
    {"role: default SCU refused by policy -> 1",
     edit_no_scu_by_default,
     true,
     {0, 0, 0},
     {{1, 1, NULL}, {3, 3, NULL}},
     2,
     {{0}},
     0},
    {"duplicate context ID -> 2 for the repeat",
     edit_duplicate_id,
     true,
     {0, 0, 0},
     {{1, 0, TS_EXPLICIT_LE}, {1, 2, NULL}},
     2,
     {{0}},
     0},
};

static void run_case(const neg_case *c)
{
    request r;
    mwl_policy p;
    base_request(&r);
    base_policy(&p);
    c->edit(&r, &p);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    int before = check_failures;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &n), MWL_OK);
    CHECK_EQ_INT(n.accepted, c->accepted);
    if (!c->accepted) {
        CHECK_EQ_INT(n.rj.result, c->rj.result);
        CHECK_EQ_INT(n.rj.source, c->rj.source);
        CHECK_EQ_INT(n.rj.reason, c->rj.reason);
    } else {
        const mwl_assoc_ac *ac = &n.ac;
        CHECK_EQ_INT(ac->protocol_version, 1);
        CHECK_EQ_STR(ac->application_context, MWL_APPLICATION_CONTEXT_NAME);
        CHECK_EQ_MEM(ac->echo, 64, r.rq.echo, 64);
        CHECK_EQ_INT(ac->user_info.max_length, 32768);
        CHECK_EQ_STR(ac->user_info.implementation_class_uid, OUR_CLASS_UID);
        CHECK_EQ_STR(ac->user_info.implementation_version_name, "MWL_010");
        CHECK_EQ_INT(ac->context_count, c->ctx_count);
        for (size_t i = 0; i < c->ctx_count && i < ac->context_count; i++) {
            CHECK_EQ_INT(ac->contexts[i].id, c->ctx[i].id);
            CHECK_EQ_INT(ac->contexts[i].result, c->ctx[i].result);
            if (c->ctx[i].ts)
                CHECK_EQ_STR(ac->contexts[i].transfer_syntax, c->ctx[i].ts);
        }
        CHECK_EQ_INT(ac->user_info.role_count, c->role_count);
        for (size_t i = 0; i < c->role_count && i < ac->user_info.role_count; i++) {
            CHECK_EQ_STR(ac->user_info.roles[i].sop_class_uid, c->roles[i].sop_class);
            CHECK_EQ_INT(ac->user_info.roles[i].scu_role, c->roles[i].scu);
            CHECK_EQ_INT(ac->user_info.roles[i].scp_role, c->roles[i].scp);
        }
        CHECK(!ac->user_info.has_async_window);
        CHECK(!ac->user_info.has_user_identity_ac);
        CHECK_EQ_INT(ac->user_info.ext_negotiation_count, 0);
        CHECK_EQ_INT(ac->user_info.common_ext_negotiation_count, 0);
        /* What the negotiation produces must be sendable and read back
         * the same way (the duplicate-ID case is deliberately unsendable). */
        if (c->edit != edit_duplicate_id) {
            mwl_wbuf w;
            mwl_wbuf_init(&w, NULL);
            CHECK_EQ_INT(mwl_pdu_encode_associate_ac(ac, &w), MWL_OK);
            mwl_pdu pdu;
            size_t used = 0;
            mwl_arena a2;
            mwl_arena_init(&a2, NULL);
            CHECK_EQ_INT(mwl_pdu_decode(w.data, w.len, &a2, NULL, &pdu, &used, NULL), MWL_OK);
            CHECK_EQ_INT(pdu.u.associate_ac.context_count, c->ctx_count);
            for (size_t i = 0; i < c->ctx_count && i < pdu.u.associate_ac.context_count; i++)
                CHECK_EQ_INT(pdu.u.associate_ac.contexts[i].result, c->ctx[i].result);
            mwl_arena_clear(&a2);
            mwl_wbuf_clear(&w);
        }
    }
    if (check_failures != before)
        fprintf(stderr, "  case: %s\n", c->name);
    mwl_arena_clear(&arena);
}

static void test_rules(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
}

/* ---- sub-items beyond roles ------------------------------------------ */

static void test_async_window(void)
{
    request r;
    mwl_policy p;
    base_request(&r);
    base_policy(&p);
    r.rq.user_info.has_async_window = true;
    r.rq.user_info.max_operations_invoked = 5;
    r.rq.user_info.max_operations_performed = 0; /* unlimited */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &n), MWL_OK);
    CHECK(n.accepted);
    CHECK(n.ac.user_info.has_async_window);
    CHECK_EQ_INT(n.ac.user_info.max_operations_invoked, 1);
    CHECK_EQ_INT(n.ac.user_info.max_operations_performed, 1);
    mwl_arena_clear(&arena);
}

static void test_extended_negotiation_not_answered(void)
{
    request r;
    mwl_policy p;
    base_request(&r);
    base_policy(&p);
    r.ext = (mwl_ext_negotiation){UID_MWL_FIND, mwl_ext_info, sizeof mwl_ext_info};
    r.rq.user_info.ext_negotiation_count = 1;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &n), MWL_OK);
    CHECK(n.accepted);
    CHECK_EQ_INT(n.ac.user_info.ext_negotiation_count, 0);
    mwl_arena_clear(&arena);
}

static void identity_case(bool configured, bool require, bool offered, uint8_t type, bool positive,
                          bool check_ok, bool want_accept, bool want_59, size_t want_response)
{
    request r;
    mwl_policy p;
    base_request(&r);
    base_policy(&p);
    if (configured)
        p.identity_check = check_identity;
    p.require_identity = require;
    identity_result = check_ok;
    identity_calls = 0;
    if (offered) {
        r.rq.user_info.has_user_identity_rq = true;
        r.rq.user_info.user_identity_rq =
            (mwl_user_identity_rq){type, positive ? 1 : 0, (const uint8_t *)"user", 4, NULL, 0};
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    int before = check_failures;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &n), MWL_OK);
    CHECK_EQ_INT(n.accepted, want_accept);
    CHECK_EQ_INT(identity_calls, configured && offered ? 1 : 0);
    if (want_accept) {
        CHECK_EQ_INT(n.ac.user_info.has_user_identity_ac, want_59);
        CHECK_EQ_INT(n.ac.user_info.server_response_length, want_response);
    } else {
        /* PS3.7 D.3.3.7.3: rejected-permanent, service-provider (ACSE) */
        CHECK_EQ_INT(n.rj.result, 1);
        CHECK_EQ_INT(n.rj.source, 2);
        CHECK_EQ_INT(n.rj.reason, 1);
    }
    if (check_failures != before)
        fprintf(stderr, "  identity case configured=%d require=%d offered=%d type=%u positive=%d ok=%d\n",
                configured, require, offered, type, positive, check_ok);
    mwl_arena_clear(&arena);
}

static void test_user_identity(void)
{
    /* configured require offered type positive check_ok -> accept 59H response */
    identity_case(false, false, true, 1, true, false, true, false, 0);  /* no check: ignored, no 59H */
    identity_case(false, true, false, 1, false, false, true, false, 0); /* require without a check: no-op */
    identity_case(true, false, true, 1, true, true, true, true, 0);     /* accepted, positive asked */
    identity_case(true, false, true, 2, false, true, true, false, 0);   /* accepted, no response asked */
    identity_case(true, false, true, 3, true, true, true, true, 2);     /* Kerberos: server ticket */
    identity_case(true, false, true, 1, true, false, false, false, 0);  /* refused -> (1,2,1) */
    identity_case(true, false, false, 0, false, false, true, false, 0); /* optional and absent */
    identity_case(true, true, false, 0, false, false, false, false, 0); /* required and absent */
}

static void test_invalid_and_nomem(void)
{
    request r;
    mwl_policy p;
    base_request(&r);
    base_policy(&p);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(NULL, &p, &arena, &n), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_negotiate(&r.rq, NULL, &arena, &n), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, NULL, &n), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, NULL), MWL_E_INVALID);
    p.implementation_class_uid = NULL;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &n), MWL_E_INVALID);
    base_policy(&p);
    p.ae_title = NULL;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &n), MWL_E_INVALID);
    mwl_arena_clear(&arena);

    /* Out of memory at each allocation: a clean status, never a half AC. */
    base_policy(&p);
    edit_role_scu_scp(&r, &p);
    for (size_t fail = 1; fail < 4; fail++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, fail);
        mwl_arena_init(&arena, &f.mem);
        int rc = mwl_negotiate(&r.rq, &p, &arena, &n);
        CHECK(rc == MWL_E_NOMEM || (rc == MWL_OK && f.count < fail));
        mwl_arena_clear(&arena);
    }
}

/* The function is pure: same inputs, same answer, inputs untouched. */
static void test_pure(void)
{
    request r, copy;
    mwl_policy p;
    base_request(&r);
    base_policy(&p);
    edit_preference(&r, &p);
    memcpy(&copy, &r, sizeof r);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation a, b;
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &a), MWL_OK);
    CHECK_EQ_INT(mwl_negotiate(&r.rq, &p, &arena, &b), MWL_OK);
    CHECK(memcmp(&r.contexts, &copy.contexts, sizeof r.contexts) == 0);
    CHECK(memcmp(&r.ts, &copy.ts, sizeof r.ts) == 0);
    CHECK_EQ_INT(a.ac.context_count, b.ac.context_count);
    for (size_t i = 0; i < a.ac.context_count; i++) {
        CHECK_EQ_INT(a.ac.contexts[i].result, b.ac.contexts[i].result);
        CHECK_EQ_STR(a.ac.contexts[i].transfer_syntax, b.ac.contexts[i].transfer_syntax);
    }
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_rules);
    RUN_TEST(test_async_window);
    RUN_TEST(test_extended_negotiation_not_answered);
    RUN_TEST(test_user_identity);
    RUN_TEST(test_invalid_and_nomem);
    RUN_TEST(test_pure);
    return check_report("negotiate_test");
}
