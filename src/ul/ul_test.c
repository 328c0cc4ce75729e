/* The Upper Layer session end to end: whole acceptor and requestor
 * conversations compared byte for byte with what the PDU encoders produce
 * (and with literal bytes for the fixed-length PDUs), two sessions wired
 * back to back (release collision), timers on a fake clock, misbehaving
 * peers, input fed byte by byte versus in big chunks, out-of-memory runs,
 * and the bound on buffered input. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "check.h"
#include "ul/ul.h"

#define UID_VERIFICATION "1.2.840.10008.1.1"
#define UID_MWL_FIND "1.2.840.10008.5.1.4.31"
#define UID_CT_STORAGE "1.2.840.10008.5.1.4.1.1.2"
#define TS_IMPLICIT_LE "1.2.840.10008.1.2"
#define TS_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define TS_EXPLICIT_BE "1.2.840.10008.1.2.2"
#define OUR_CLASS_UID "1.2.826.0.1.3680043.10.1"
#define PEER_CLASS_UID "1.2.3.4.5"

enum { ARTIM = 30000, CFG_MAX_PDU = 32768 };

static const uint8_t RELEASE_RQ[] = {0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0};
static const uint8_t RELEASE_RP[] = {0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0};
static const uint8_t ABORT_USER[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0};
static const uint8_t ABORT_UNRECOGNIZED[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 2, 1};
static const uint8_t ABORT_UNEXPECTED[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2};
static const uint8_t ABORT_INVALID[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6};
static const uint8_t UNKNOWN_PDU[] = {0x09, 0, 0, 0, 0, 4, 0, 0, 0, 0};

/* ======================================================================
 * Fixtures
 * ====================================================================== */

static const char *rq_ts_verification[] = {TS_IMPLICIT_LE, TS_EXPLICIT_LE};
static const char *rq_ts_mwl[] = {TS_IMPLICIT_LE};
static const char *rq_ts_ct[] = {TS_EXPLICIT_LE};
static mwl_pctx_rq rq_contexts[] = {
    {1, UID_VERIFICATION, rq_ts_verification, 2},
    {3, UID_MWL_FIND, rq_ts_mwl, 1},
    {5, UID_CT_STORAGE, rq_ts_ct, 1},
};
static mwl_role_selection rq_roles[] = {{UID_MWL_FIND, 1, 0}};

static void make_rq(mwl_assoc_rq *rq, uint32_t max_length)
{
    memset(rq, 0, sizeof *rq);
    rq->protocol_version = 1;
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(rq, "MWLSCP", "MODALITY1"), MWL_OK);
    rq->application_context = MWL_APPLICATION_CONTEXT_NAME;
    rq->contexts = rq_contexts;
    rq->context_count = 3;
    rq->user_info.max_length = max_length;
    rq->user_info.implementation_class_uid = PEER_CLASS_UID;
    rq->user_info.implementation_version_name = "PEER_1";
    rq->user_info.roles = rq_roles;
    rq->user_info.role_count = 1;
}

static void encode_rq(mwl_wbuf *w, uint32_t max_length)
{
    mwl_assoc_rq rq;
    make_rq(&rq, max_length);
    mwl_wbuf_init(w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_associate_rq(&rq, w), MWL_OK);
}

/* The AC a peer acceptor sends to our requestor. */
static mwl_pctx_ac peer_ac_contexts[] = {
    {1, MWL_PCTX_ACCEPTANCE, TS_EXPLICIT_LE},
    {3, MWL_PCTX_ACCEPTANCE, TS_IMPLICIT_LE},
    {5, MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED, ""},
};

static void encode_peer_ac(mwl_wbuf *w, uint32_t max_length)
{
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    mwl_assoc_ac ac;
    memset(&ac, 0, sizeof ac);
    ac.protocol_version = 1;
    memcpy(ac.echo, rq.echo, sizeof ac.echo);
    ac.application_context = MWL_APPLICATION_CONTEXT_NAME;
    ac.contexts = peer_ac_contexts;
    ac.context_count = 3;
    ac.user_info.max_length = max_length;
    ac.user_info.implementation_class_uid = PEER_CLASS_UID;
    mwl_wbuf_init(w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_associate_ac(&ac, w), MWL_OK);
}

static void encode_pdata(mwl_wbuf *w, const mwl_pdv *pdvs, size_t n)
{
    mwl_wbuf_init(w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_p_data(pdvs, n, w), MWL_OK);
}

/* Our acceptor policy: Verification and MWL FIND, SCP. */
static const char *const our_ts[] = {TS_EXPLICIT_LE, TS_IMPLICIT_LE, TS_EXPLICIT_BE};
static const mwl_policy_syntax our_syntaxes[] = {
    {UID_VERIFICATION, our_ts, 3, true, false},
    {UID_MWL_FIND, our_ts, 3, true, false},
};

static void make_policy(mwl_policy *p)
{
    mwl_policy_init(p);
    p->ae_title = "MWLSCP";
    p->strict_called_ae = true;
    p->syntaxes = our_syntaxes;
    p->syntax_count = 2;
    p->max_pdu_length = 16384; /* differs from CFG_MAX_PDU: the session's value wins */
    p->implementation_class_uid = OUR_CLASS_UID;
    p->implementation_version_name = "MWL_010";
}

static mwl_ul *new_session(mwl_ul_role role, uint32_t max_pdu, uint64_t idle, const mwl_mem *mem)
{
    mwl_ul_config cfg;
    mwl_ul_config_init(&cfg, role);
    cfg.max_pdu_length = max_pdu;
    cfg.artim_timeout_ms = ARTIM;
    cfg.idle_timeout_ms = idle;
    cfg.mem = mem;
    mwl_ul *ul = NULL;
    int rc = mwl_ul_new(&cfg, &ul);
    if (mem == NULL)
        CHECK_EQ_INT(rc, MWL_OK);
    return ul;
}

/* Feeds everything, expecting no pending events on the way. */
static int feed(mwl_ul *ul, const void *data, size_t len, uint64_t now)
{
    size_t used = 0;
    int rc = mwl_ul_feed(ul, data, len, &used, now);
    if (rc == MWL_OK)
        CHECK_EQ_INT(used, len);
    return rc;
}

static int feed_wbuf(mwl_ul *ul, const mwl_wbuf *w, uint64_t now)
{
    return feed(ul, w->data, w->len, now);
}

static bool next(mwl_ul *ul, mwl_ul_event *ev)
{
    return mwl_ul_next_event(ul, ev) == MWL_OK;
}

static void expect_event(mwl_ul *ul, mwl_ul_event_type type, mwl_ul_event *ev)
{
    mwl_ul_event tmp;
    if (!ev)
        ev = &tmp;
    bool got = next(ul, ev);
    CHECK(got);
    if (got && ev->type != type)
        fprintf(stderr, "  got event %s, expected %s\n", mwl_ul_event_name(ev->type),
                mwl_ul_event_name(type));
    CHECK_EQ_INT(got ? (int)ev->type : 0, type);
}

static void expect_no_event(mwl_ul *ul)
{
    mwl_ul_event ev;
    int rc = mwl_ul_next_event(ul, &ev);
    if (rc == MWL_OK)
        fprintf(stderr, "  unexpected event %s\n", mwl_ul_event_name(ev.type));
    CHECK_EQ_INT(rc, MWL_AGAIN);
}

/* Compares and takes all pending output. */
static void expect_output(mwl_ul *ul, const void *want, size_t want_len)
{
    const uint8_t *out;
    size_t n = mwl_ul_pending_output(ul, &out);
    CHECK_EQ_MEM(out, n, want, want_len);
    mwl_ul_output_written(ul, n);
}

static void expect_no_output(mwl_ul *ul)
{
    CHECK_EQ_INT(mwl_ul_pending_output(ul, NULL), 0);
}

/* An acceptor in Sta6 after the usual RQ and our negotiated AC. */
static mwl_ul *acceptor_in_sta6(uint32_t peer_max, uint64_t idle, uint64_t now)
{
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, idle, NULL);
    mwl_wbuf rq;
    encode_rq(&rq, peer_max);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, now), MWL_OK);
    CHECK_EQ_INT(feed_wbuf(ul, &rq, now), MWL_OK);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, &ev);
    mwl_policy p;
    make_policy(&p);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(ev.u.associate_rq, &p, &arena, &n), MWL_OK);
    CHECK(n.accepted);
    CHECK_EQ_INT(mwl_ul_accept(ul, &n.ac, now), MWL_OK);
    mwl_arena_clear(&arena);
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA6);
    mwl_wbuf_clear(&rq);
    return ul;
}

static mwl_ul *requestor_in_sta6(uint32_t peer_max, uint64_t idle, uint64_t now)
{
    mwl_ul *ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, idle, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, now), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, now), MWL_OK);
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    mwl_wbuf ac;
    encode_peer_ac(&ac, peer_max);
    CHECK_EQ_INT(feed_wbuf(ul, &ac, now), MWL_OK);
    expect_event(ul, MWL_UL_EV_ASSOCIATE_AC, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA6);
    mwl_wbuf_clear(&ac);
    return ul;
}

/* ======================================================================
 * Conversations
 * ====================================================================== */

static void test_acceptor_conversation(void)
{
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    CHECK_EQ_INT(mwl_ul_get_role(ul), MWL_UL_ACCEPTOR);
    CHECK(mwl_ul_deadline(ul) == UINT64_MAX);

    /* AE-5: connection accepted, ARTIM runs */
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 100), MWL_OK);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA2);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 100 + ARTIM);
    expect_no_output(ul);

    /* AE-6: the RQ arrives */
    mwl_wbuf rq_bytes;
    encode_rq(&rq_bytes, 20000);
    CHECK_EQ_INT(feed_wbuf(ul, &rq_bytes, 200), MWL_OK);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, &ev);
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA3);
    CHECK(mwl_ul_deadline(ul) == UINT64_MAX); /* ARTIM stopped, idle timer off */
    const mwl_assoc_rq *rq = ev.u.associate_rq;
    CHECK(rq == mwl_ul_associate_rq(ul));
    CHECK_EQ_STR(rq->called_ae, "MWLSCP");
    CHECK_EQ_STR(rq->calling_ae, "MODALITY1");
    CHECK_EQ_INT(rq->context_count, 3);
    CHECK_EQ_STR(rq->user_info.implementation_version_name, "PEER_1");
    CHECK_EQ_INT(mwl_ul_peer_max_pdu_length(ul), 20000);
    CHECK_EQ_INT(mwl_ul_context(ul, 1, NULL, NULL), MWL_E_NOTFOUND); /* nothing accepted yet */

    /* AE-7: our negotiated AC goes out, byte for byte */
    mwl_policy policy;
    make_policy(&policy);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(rq, &policy, &arena, &n), MWL_OK);
    CHECK(n.accepted);
    CHECK_EQ_INT(mwl_ul_accept(ul, &n.ac, 300), MWL_OK);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA6);
    {
        mwl_pctx_ac exp_ctx[] = {{1, 0, TS_EXPLICIT_LE}, {3, 0, TS_IMPLICIT_LE}, {5, 3, ""}};
        mwl_role_selection exp_role[] = {{UID_MWL_FIND, 1, 0}};
        mwl_assoc_ac exp;
        memset(&exp, 0, sizeof exp);
        exp.protocol_version = 1;
        memcpy(exp.echo, rq->echo, sizeof exp.echo);
        exp.application_context = MWL_APPLICATION_CONTEXT_NAME;
        exp.contexts = exp_ctx;
        exp.context_count = 3;
        exp.user_info.max_length = CFG_MAX_PDU; /* the session's, not the policy's 16384 */
        exp.user_info.implementation_class_uid = OUR_CLASS_UID;
        exp.user_info.implementation_version_name = "MWL_010";
        exp.user_info.roles = exp_role;
        exp.user_info.role_count = 1;
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        CHECK_EQ_INT(mwl_pdu_encode_associate_ac(&exp, &w), MWL_OK);
        expect_output(ul, w.data, w.len);
        mwl_wbuf_clear(&w);
    }
    mwl_arena_clear(&arena);
    const char *as = NULL, *ts = NULL;
    CHECK_EQ_INT(mwl_ul_context(ul, 1, &as, &ts), MWL_OK);
    CHECK_EQ_STR(as, UID_VERIFICATION);
    CHECK_EQ_STR(ts, TS_EXPLICIT_LE);
    CHECK_EQ_INT(mwl_ul_context(ul, 3, &as, &ts), MWL_OK);
    CHECK_EQ_STR(ts, TS_IMPLICIT_LE);
    CHECK_EQ_INT(mwl_ul_context(ul, 5, &as, &ts), MWL_E_NOTFOUND); /* rejected */
    CHECK_EQ_INT(mwl_ul_context(ul, 7, &as, &ts), MWL_E_NOTFOUND); /* never proposed */
    CHECK_EQ_INT(mwl_ul_context(ul, 2, &as, &ts), MWL_E_NOTFOUND); /* even */
    uint8_t id = 0;
    CHECK_EQ_INT(mwl_ul_find_context(ul, UID_MWL_FIND, &id, &ts), MWL_OK);
    CHECK_EQ_INT(id, 3);
    CHECK_EQ_INT(mwl_ul_find_context(ul, UID_CT_STORAGE, &id, &ts), MWL_E_NOTFOUND);

    /* DT-2: one P-DATA-TF with three PDVs (command, last command, data) */
    static const uint8_t cmd1[] = {0x00, 0x00, 0x00, 0x00}, cmd2[] = {0x04, 0x00, 0x00, 0x00};
    static const uint8_t data1[] = {0x08, 0x00, 0x50, 0x00, 0x00, 0x00};
    mwl_pdv in_pdvs[] = {{3, MWL_PDV_COMMAND, cmd1, 4},
                         {3, MWL_PDV_COMMAND | MWL_PDV_LAST, cmd2, 4},
                         {3, MWL_PDV_LAST, data1, 6}};
    mwl_wbuf pd;
    encode_pdata(&pd, in_pdvs, 3);
    CHECK_EQ_INT(feed_wbuf(ul, &pd, 400), MWL_OK);
    mwl_wbuf_clear(&pd);
    expect_event(ul, MWL_UL_EV_P_DATA, &ev);
    CHECK_EQ_INT(ev.u.p_data.count, 3);
    for (size_t i = 0; i < 3 && i < ev.u.p_data.count; i++) {
        CHECK_EQ_INT(ev.u.p_data.pdvs[i].context_id, 3);
        CHECK_EQ_INT(ev.u.p_data.pdvs[i].control, in_pdvs[i].control);
        CHECK_EQ_MEM(ev.u.p_data.pdvs[i].data, ev.u.p_data.pdvs[i].length, in_pdvs[i].data,
                     in_pdvs[i].length);
    }
    expect_no_event(ul);

    /* DT-1: two PDVs out in one PDU */
    static const uint8_t rsp_cmd[] = {1, 2, 3, 4, 5, 6}, rsp_data[] = {7, 8};
    mwl_pdv out_pdvs[] = {{3, MWL_PDV_COMMAND | MWL_PDV_LAST, rsp_cmd, 6}, {3, MWL_PDV_LAST, rsp_data, 2}};
    CHECK_EQ_INT(mwl_ul_send_p_data(ul, out_pdvs, 2, 500), MWL_OK);
    encode_pdata(&pd, out_pdvs, 2);
    expect_output(ul, pd.data, pd.len);
    mwl_wbuf_clear(&pd);

    /* refused P-DATA requests change nothing */
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 5, MWL_PDV_LAST, rsp_data, 2, 500), MWL_E_INVALID); /* rejected ctx */
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 9, MWL_PDV_LAST, rsp_data, 2, 500), MWL_E_INVALID); /* unknown ctx */
    CHECK_EQ_INT(mwl_ul_send_p_data(ul, NULL, 0, 500), MWL_E_INVALID);
    static uint8_t big[20000];
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 3, MWL_PDV_LAST, big, 20000 - 6, 500), MWL_OK); /* exactly the max */
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 3, MWL_PDV_LAST, big, 20000 - 5, 500), MWL_E_LIMIT);
    expect_no_output(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA6);

    /* AR-2: the peer releases; AR-7: a last P-DATA; AR-4: the RP */
    CHECK_EQ_INT(feed(ul, RELEASE_RQ, sizeof RELEASE_RQ, 600), MWL_OK);
    expect_event(ul, MWL_UL_EV_RELEASE_RQ, &ev);
    CHECK(!ev.u.release_rq.collision);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA8);
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 1, MWL_PDV_COMMAND | MWL_PDV_LAST, rsp_cmd, 6, 650), MWL_OK);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA8);
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    CHECK_EQ_INT(mwl_ul_release(ul, 700), MWL_E_PROTOCOL); /* not in Sta8 */
    CHECK_EQ_INT(mwl_ul_release_response(ul, 700), MWL_OK);
    expect_output(ul, RELEASE_RP, sizeof RELEASE_RP);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 700 + ARTIM);
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 1, MWL_PDV_LAST, rsp_data, 2, 700), MWL_E_PROTOCOL);

    /* AR-5: the requestor closes */
    CHECK_EQ_INT(mwl_ul_transport_closed(ul, 800), MWL_OK);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    CHECK(mwl_ul_deadline(ul) == UINT64_MAX);
    size_t used = 99;
    CHECK_EQ_INT(mwl_ul_feed(ul, RELEASE_RQ, sizeof RELEASE_RQ, &used, 900), MWL_E_CLOSED);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(mwl_ul_transport_closed(ul, 900), MWL_E_PROTOCOL);
    /* association data outlives the association */
    CHECK_EQ_STR(mwl_ul_associate_rq(ul)->calling_ae, "MODALITY1");
    mwl_wbuf_clear(&rq_bytes);
    mwl_ul_free(ul);
}

static void test_requestor_conversation(void)
{
    mwl_ul *ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 1234);                                              /* replaced by the session's max */
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_E_PROTOCOL); /* Evt2 in Sta1 */
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_OK);              /* AE-1 */
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA4);
    expect_no_output(ul);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_E_PROTOCOL);
    size_t used;
    CHECK_EQ_INT(mwl_ul_feed(ul, RELEASE_RQ, 10, &used, 0), MWL_E_CLOSED); /* not connected yet */

    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 10), MWL_OK); /* AE-2 */
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA5);
    mwl_wbuf w;
    encode_rq(&w, CFG_MAX_PDU);
    expect_output(ul, w.data, w.len);
    mwl_wbuf_clear(&w);

    /* AE-3 */
    encode_peer_ac(&w, 100);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 20), MWL_OK);
    mwl_wbuf_clear(&w);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ASSOCIATE_AC, &ev);
    CHECK(ev.u.associate_ac == mwl_ul_associate_ac(ul));
    CHECK_EQ_INT(ev.u.associate_ac->context_count, 3);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA6);
    CHECK_EQ_INT(mwl_ul_peer_max_pdu_length(ul), 100);
    const char *ts;
    CHECK_EQ_INT(mwl_ul_context(ul, 3, NULL, &ts), MWL_OK);
    CHECK_EQ_STR(ts, TS_IMPLICIT_LE);
    CHECK_EQ_INT(mwl_ul_context(ul, 5, NULL, &ts), MWL_E_NOTFOUND);
    CHECK(mwl_ul_associate_rq(ul) == NULL);

    /* P-DATA both ways; the peer's 100-byte maximum holds */
    static const uint8_t frag[94] = {1};
    mwl_pdv two[] = {{3, MWL_PDV_COMMAND, frag, 40}, {3, MWL_PDV_COMMAND | MWL_PDV_LAST, frag, 40}};
    CHECK_EQ_INT(mwl_ul_send_p_data(ul, two, 2, 30), MWL_OK); /* 46 + 46 = 92 */
    encode_pdata(&w, two, 2);
    expect_output(ul, w.data, w.len);
    mwl_wbuf_clear(&w);
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 3, MWL_PDV_LAST, frag, 94, 30), MWL_OK); /* 100 */
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 3, MWL_PDV_LAST, frag, 95, 30), MWL_E_LIMIT);

    /* AR-1, then P-DATA still arrives (AR-6), then the RP (AR-3) */
    CHECK_EQ_INT(mwl_ul_release(ul, 40), MWL_OK);
    expect_output(ul, RELEASE_RQ, sizeof RELEASE_RQ);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA7);
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 3, MWL_PDV_LAST, frag, 2, 40), MWL_E_PROTOCOL);
    mwl_pdv late = {1, MWL_PDV_LAST, frag, 2};
    encode_pdata(&w, &late, 1);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 50), MWL_OK);
    mwl_wbuf_clear(&w);
    expect_event(ul, MWL_UL_EV_P_DATA, &ev);
    CHECK_EQ_INT(ev.u.p_data.pdvs[0].context_id, 1);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA7);
    CHECK_EQ_INT(feed(ul, RELEASE_RP, sizeof RELEASE_RP, 60), MWL_OK);
    expect_event(ul, MWL_UL_EV_RELEASE_RP, &ev);
    CHECK(!ev.u.release_rp.collision);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    expect_no_output(ul);
    mwl_ul_free(ul);
}

static void test_requestor_rejected(void)
{
    mwl_ul *ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    static const uint8_t rj[] = {0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2};
    CHECK_EQ_INT(feed(ul, rj, sizeof rj, 5), MWL_OK);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RJ, &ev);
    CHECK_EQ_INT(ev.u.associate_rj.result, 2);
    CHECK_EQ_INT(ev.u.associate_rj.source, 3);
    CHECK_EQ_INT(ev.u.associate_rj.reason, 2);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    mwl_ul_free(ul);
}

static void test_acceptor_rejects(void)
{
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    mwl_wbuf w;
    encode_rq(&w, 0);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 0), MWL_OK);
    mwl_wbuf_clear(&w);
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, NULL);
    mwl_assoc_rj bad = {3, 1, 1};
    CHECK_EQ_INT(mwl_ul_reject(ul, &bad, 10), MWL_E_INVALID);
    bad = (mwl_assoc_rj){1, 4, 1};
    CHECK_EQ_INT(mwl_ul_reject(ul, &bad, 10), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA3);
    mwl_assoc_rj rj = {1, 1, 7};
    CHECK_EQ_INT(mwl_ul_reject(ul, &rj, 10), MWL_OK); /* AE-8 */
    static const uint8_t want[] = {0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7};
    expect_output(ul, want, sizeof want);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 10 + ARTIM);
    CHECK_EQ_INT(mwl_ul_timer(ul, 9 + ARTIM), MWL_OK); /* early: nothing */
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_timer(ul, 10 + ARTIM), MWL_OK); /* AA-2 */
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    mwl_ul_free(ul);
}

/* An accept that does not match the RQ is refused, and nothing changes. */
static void test_accept_validation(void)
{
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    mwl_wbuf w;
    encode_rq(&w, 0);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 0), MWL_OK);
    mwl_wbuf_clear(&w);
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, NULL);
    mwl_pctx_ac bad_id[] = {{7, 0, TS_EXPLICIT_LE}};
    mwl_pctx_ac bad_ts[] = {{3, 0, TS_EXPLICIT_LE}}; /* only implicit was proposed for 3 */
    mwl_assoc_ac ac;
    memset(&ac, 0, sizeof ac);
    ac.protocol_version = 1;
    ac.application_context = MWL_APPLICATION_CONTEXT_NAME;
    ac.user_info.implementation_class_uid = OUR_CLASS_UID;
    ac.contexts = bad_id;
    ac.context_count = 1;
    CHECK_EQ_INT(mwl_ul_accept(ul, &ac, 0), MWL_E_INVALID);
    ac.contexts = bad_ts;
    CHECK_EQ_INT(mwl_ul_accept(ul, &ac, 0), MWL_E_INVALID);
    ac.application_context = NULL; /* the encoder refuses */
    bad_ts[0].transfer_syntax = TS_IMPLICIT_LE;
    CHECK_EQ_INT(mwl_ul_accept(ul, &ac, 0), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA3);
    expect_no_output(ul);
    ac.application_context = MWL_APPLICATION_CONTEXT_NAME;
    CHECK_EQ_INT(mwl_ul_accept(ul, &ac, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA6);
    CHECK_EQ_INT(mwl_ul_context(ul, 1, NULL, NULL), MWL_E_NOTFOUND); /* not answered = not accepted */
    mwl_ul_free(ul);
}

static void test_abort_both_ways(void)
{
    /* local abort (AA-1), then ARTIM closes (AA-2) */
    mwl_ul *ul = acceptor_in_sta6(0, 0, 0);
    CHECK_EQ_INT(mwl_ul_abort(ul, 100), MWL_OK);
    expect_output(ul, ABORT_USER, sizeof ABORT_USER);
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    CHECK_EQ_INT(mwl_ul_abort(ul, 100), MWL_E_PROTOCOL);
    CHECK_EQ_INT(mwl_ul_timer(ul, 100 + ARTIM), MWL_OK);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    mwl_ul_free(ul);

    /* the peer aborts (AA-3), provider source */
    ul = acceptor_in_sta6(0, 0, 0);
    static const uint8_t peer_abort[] = {0x07, 0, 0, 0, 0, 4, 0, 0, 2, 6};
    CHECK_EQ_INT(feed(ul, peer_abort, sizeof peer_abort, 10), MWL_OK);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.origin, MWL_UL_ABORT_PEER);
    CHECK_EQ_INT(ev.u.aborted.source, 2);
    CHECK_EQ_INT(ev.u.aborted.reason, 6);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    expect_no_output(ul);
    mwl_ul_free(ul);

    /* requestor: local abort while waiting for the AC, peer abort after */
    ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_abort(ul, 0), MWL_OK); /* AA-2 in Sta4: give up connecting */
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    expect_no_output(ul);
    mwl_ul_free(ul);

    ul = requestor_in_sta6(0, 0, 0);
    CHECK_EQ_INT(feed(ul, ABORT_USER, sizeof ABORT_USER, 10), MWL_OK);
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.source, 0);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    mwl_ul_free(ul);
}

/* ======================================================================
 * Two sessions back to back
 * ====================================================================== */

/* Moves a's pending output into b. */
static void pipe_bytes(mwl_ul *a, mwl_ul *b, uint64_t now)
{
    const uint8_t *out;
    size_t n = mwl_ul_pending_output(a, &out);
    while (n) {
        size_t used = 0;
        int rc = mwl_ul_feed(b, out, n, &used, now);
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK)
            break;
        mwl_ul_output_written(a, used);
        n = mwl_ul_pending_output(a, &out);
    }
}

static void test_back_to_back_and_release_collision(void)
{
    mwl_ul *r = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
    mwl_ul *a = new_session(MWL_UL_ACCEPTOR, 16384, 0, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(r, &rq, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(a, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(r, 0), MWL_OK);
    pipe_bytes(r, a, 1);
    mwl_ul_event ev;
    expect_event(a, MWL_UL_EV_ASSOCIATE_RQ, &ev);
    CHECK_EQ_INT(ev.u.associate_rq->user_info.max_length, CFG_MAX_PDU);
    mwl_policy p;
    make_policy(&p);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(ev.u.associate_rq, &p, &arena, &n), MWL_OK);
    CHECK_EQ_INT(mwl_ul_accept(a, &n.ac, 2), MWL_OK);
    mwl_arena_clear(&arena);
    pipe_bytes(a, r, 3);
    expect_event(r, MWL_UL_EV_ASSOCIATE_AC, NULL);
    CHECK_EQ_INT(mwl_ul_peer_max_pdu_length(r), 16384);
    CHECK_EQ_INT(mwl_ul_peer_max_pdu_length(a), CFG_MAX_PDU);
    const char *ts_r, *ts_a;
    CHECK_EQ_INT(mwl_ul_context(r, 1, NULL, &ts_r), MWL_OK);
    CHECK_EQ_INT(mwl_ul_context(a, 1, NULL, &ts_a), MWL_OK);
    CHECK_EQ_STR(ts_r, ts_a);
    CHECK_EQ_STR(ts_r, TS_EXPLICIT_LE);

    /* a request and a response */
    static const uint8_t msg[] = {0xDE, 0xAD, 0xBE, 0xEF};
    CHECK_EQ_INT(mwl_ul_send_pdv(r, 1, MWL_PDV_COMMAND | MWL_PDV_LAST, msg, 4, 4), MWL_OK);
    pipe_bytes(r, a, 4);
    expect_event(a, MWL_UL_EV_P_DATA, &ev);
    CHECK_EQ_MEM(ev.u.p_data.pdvs[0].data, ev.u.p_data.pdvs[0].length, msg, 4);
    CHECK_EQ_INT(mwl_ul_send_pdv(a, 1, MWL_PDV_COMMAND | MWL_PDV_LAST, msg, 2, 5), MWL_OK);
    pipe_bytes(a, r, 5);
    expect_event(r, MWL_UL_EV_P_DATA, &ev);
    CHECK_EQ_INT(ev.u.p_data.pdvs[0].length, 2);

    /* release collision (PS3.8 §7.2.2.7): both ask at once */
    CHECK_EQ_INT(mwl_ul_release(r, 10), MWL_OK);
    CHECK_EQ_INT(mwl_ul_release(a, 10), MWL_OK);
    pipe_bytes(r, a, 11); /* AR-8 on the acceptor: Sta10 */
    pipe_bytes(a, r, 11); /* AR-8 on the requestor: Sta9 */
    expect_event(a, MWL_UL_EV_RELEASE_RQ, &ev);
    CHECK(ev.u.release_rq.collision);
    expect_event(r, MWL_UL_EV_RELEASE_RQ, &ev);
    CHECK(ev.u.release_rq.collision);
    CHECK_EQ_INT(mwl_ul_get_state(a), MWL_UL_STA10);
    CHECK_EQ_INT(mwl_ul_get_state(r), MWL_UL_STA9);
    CHECK_EQ_INT(mwl_ul_release_response(a, 12), MWL_E_PROTOCOL); /* Sta10 waits for the RP */
    CHECK_EQ_INT(mwl_ul_release_response(r, 12), MWL_OK);         /* AR-9: Sta11 */
    CHECK_EQ_INT(mwl_ul_get_state(r), MWL_UL_STA11);
    pipe_bytes(r, a, 13); /* AR-10: Sta12 */
    expect_event(a, MWL_UL_EV_RELEASE_RP, &ev);
    CHECK(ev.u.release_rp.collision);
    CHECK_EQ_INT(mwl_ul_get_state(a), MWL_UL_STA12);
    CHECK_EQ_INT(mwl_ul_release_response(a, 14), MWL_OK); /* AR-4: Sta13 */
    CHECK_EQ_INT(mwl_ul_get_state(a), MWL_UL_STA13);
    pipe_bytes(a, r, 15); /* AR-3: Sta1 */
    expect_event(r, MWL_UL_EV_RELEASE_RP, &ev);
    CHECK(!ev.u.release_rp.collision);
    expect_event(r, MWL_UL_EV_CLOSED, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(r), MWL_UL_STA1);
    CHECK_EQ_INT(mwl_ul_transport_closed(a, 16), MWL_OK); /* AR-5 */
    expect_event(a, MWL_UL_EV_CLOSED, NULL);
    CHECK_EQ_INT(mwl_ul_get_state(a), MWL_UL_STA1);
    mwl_ul_free(r);
    mwl_ul_free(a);
}

/* ======================================================================
 * Timers
 * ====================================================================== */

static void test_artim(void)
{
    /* connect and send nothing: ARTIM closes (Sta2, AA-2) */
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 5000, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 1000), MWL_OK);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 1000 + ARTIM); /* ARTIM, not the idle timer, in Sta2 */
    CHECK_EQ_INT(mwl_ul_timer(ul, 999 + ARTIM), MWL_OK);
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA2);
    CHECK_EQ_INT(mwl_ul_timer(ul, 1000 + ARTIM), MWL_OK);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    expect_no_output(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    CHECK_EQ_INT(mwl_ul_timer(ul, UINT64_MAX), MWL_OK); /* nothing runs any more */
    expect_no_event(ul);
    mwl_ul_free(ul);

    /* half an A-ASSOCIATE-RQ, then silence: ARTIM still closes */
    ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 5000, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    mwl_wbuf w;
    encode_rq(&w, 0);
    CHECK_EQ_INT(feed(ul, w.data, w.len / 2, 10), MWL_OK);
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_deadline(ul), ARTIM);
    CHECK_EQ_INT(mwl_ul_timer(ul, ARTIM), MWL_OK);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    mwl_wbuf_clear(&w);
    mwl_ul_free(ul);

    /* deadlines never wrap */
    ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, UINT64_MAX - 5), MWL_OK);
    CHECK(mwl_ul_deadline(ul) >= UINT64_MAX - 5 && mwl_ul_deadline(ul) != UINT64_MAX);
    mwl_ul_free(ul);
}

static void test_idle_timeout(void)
{
    /* Sta6: half a PDU then a stall; partial bytes do not count */
    mwl_ul *ul = acceptor_in_sta6(0, 5000, 1000);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 6000);
    static const uint8_t frag[8] = {0};
    mwl_pdv pdv = {1, MWL_PDV_LAST, frag, 8};
    mwl_wbuf w;
    encode_pdata(&w, &pdv, 1);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 4000), MWL_OK); /* a whole PDU: restart */
    expect_event(ul, MWL_UL_EV_P_DATA, NULL);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 9000);
    CHECK_EQ_INT(feed(ul, w.data, 7, 8000), MWL_OK); /* half of the next one */
    CHECK_EQ_INT(mwl_ul_deadline(ul), 9000);
    CHECK_EQ_INT(mwl_ul_timer(ul, 8999), MWL_OK);
    expect_no_event(ul);
    CHECK_EQ_INT(mwl_ul_timer(ul, 9000), MWL_OK);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.origin, MWL_UL_ABORT_TIMEOUT);
    expect_no_event(ul);
    expect_output(ul, ABORT_USER, sizeof ABORT_USER);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 9000 + ARTIM);
    CHECK_EQ_INT(mwl_ul_timer(ul, 9000 + ARTIM), MWL_OK);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    mwl_wbuf_clear(&w);
    mwl_ul_free(ul);

    /* a local request is activity too */
    ul = acceptor_in_sta6(0, 5000, 0);
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 1, MWL_PDV_LAST, frag, 2, 3000), MWL_OK);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 8000);
    mwl_ul_free(ul);

    /* requestor: the AC never comes (Sta5) */
    ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 2000, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 2000); /* the connect is watched too (Sta4) */
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 100), MWL_OK);
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
    CHECK_EQ_INT(mwl_ul_timer(ul, 2100), MWL_OK);
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.origin, MWL_UL_ABORT_TIMEOUT);
    expect_output(ul, ABORT_USER, sizeof ABORT_USER);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    mwl_ul_free(ul);

    /* requestor: the connect never completes (Sta4 -> AA-2) */
    ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 2000, NULL);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_timer(ul, 2000), MWL_OK);
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.origin, MWL_UL_ABORT_TIMEOUT);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    expect_no_output(ul);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    mwl_ul_free(ul);
}

/* ======================================================================
 * Bad peers
 * ====================================================================== */

/* A fresh acceptor in Sta2. */
static mwl_ul *acceptor_in_sta2(uint32_t max_pdu)
{
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, max_pdu, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    return ul;
}

/* Feeds `bytes` to a fresh acceptor in Sta2 and expects AA-1: an A-ABORT
 * with source 0 (PS3.8 Table 9-9), no indication, Sta13, ARTIM. */
static void expect_sta2_aa1(const uint8_t *bytes, size_t len, const char *what)
{
    int before = check_failures;
    mwl_ul *ul = acceptor_in_sta2(CFG_MAX_PDU);
    CHECK_EQ_INT(feed(ul, bytes, len, 50), MWL_OK);
    expect_no_event(ul);
    expect_output(ul, ABORT_USER, sizeof ABORT_USER);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 50 + ARTIM);
    CHECK_EQ_INT(mwl_ul_transport_closed(ul, 60), MWL_OK);
    expect_event(ul, MWL_UL_EV_CLOSED, NULL);
    if (check_failures != before)
        fprintf(stderr, "  sta2 case: %s\n", what);
    mwl_ul_free(ul);
}

/* Feeds `bytes` to an acceptor in Sta6 and expects AA-8 with `abort`. */
static void expect_sta6_aa8(const uint8_t *bytes, size_t len, const uint8_t *abort, uint8_t reason,
                            const char *what)
{
    int before = check_failures;
    mwl_ul *ul = acceptor_in_sta6(0, 0, 0);
    CHECK_EQ_INT(feed(ul, bytes, len, 50), MWL_OK);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.origin, MWL_UL_ABORT_PROTOCOL);
    CHECK_EQ_INT(ev.u.aborted.source, 2);
    CHECK_EQ_INT(ev.u.aborted.reason, reason);
    CHECK(ev.u.aborted.detail && ev.u.aborted.detail[0] != '\0');
    expect_no_event(ul);
    expect_output(ul, abort, 10);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
    CHECK_EQ_INT(mwl_ul_deadline(ul), 50 + ARTIM);
    if (check_failures != before)
        fprintf(stderr, "  sta6 case: %s\n", what);
    mwl_ul_free(ul);
}

static void test_bad_peers(void)
{
    mwl_wbuf rq;
    encode_rq(&rq, 0);

    /* unknown PDU type */
    expect_sta2_aa1(UNKNOWN_PDU, sizeof UNKNOWN_PDU, "unknown PDU type");
    expect_sta6_aa8(UNKNOWN_PDU, sizeof UNKNOWN_PDU, ABORT_UNRECOGNIZED, 1, "unknown PDU type");
    /* an unknown type is judged on its header alone */
    static const uint8_t unknown_huge[] = {0x7F, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    expect_sta6_aa8(unknown_huge, sizeof unknown_huge, ABORT_UNRECOGNIZED, 1, "unknown type, 4 GiB");

    /* 0-length and 4 GiB declared lengths */
    static const uint8_t rq_zero[] = {0x01, 0, 0, 0, 0, 0};
    static const uint8_t pdata_zero[] = {0x04, 0, 0, 0, 0, 0};
    static const uint8_t release_zero[] = {0x05, 0, 0, 0, 0, 0};
    static const uint8_t pdata_huge[] = {0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t rq_huge[] = {0x01, 0, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t release_long[] = {0x05, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0};
    expect_sta2_aa1(rq_zero, sizeof rq_zero, "0-length RQ");
    expect_sta2_aa1(rq_huge, sizeof rq_huge, "4 GiB RQ");
    expect_sta6_aa8(pdata_zero, sizeof pdata_zero, ABORT_INVALID, 6, "0-length P-DATA");
    expect_sta6_aa8(release_zero, sizeof release_zero, ABORT_INVALID, 6, "0-length A-RELEASE-RQ");
    expect_sta6_aa8(pdata_huge, sizeof pdata_huge, ABORT_INVALID, 6, "4 GiB P-DATA");
    expect_sta6_aa8(release_long, sizeof release_long, ABORT_INVALID, 6, "A-RELEASE-RQ of length 5");

    /* P-DATA before the association: AA-1 in Sta2, AA-8 (unexpected) in Sta3 */
    static const uint8_t frag[4] = {1, 2, 3, 4};
    mwl_pdv pdv = {1, MWL_PDV_LAST, frag, 4};
    mwl_wbuf pd;
    encode_pdata(&pd, &pdv, 1);
    expect_sta2_aa1(pd.data, pd.len, "P-DATA in Sta2");
    {
        mwl_ul *ul = acceptor_in_sta2(CFG_MAX_PDU);
        CHECK_EQ_INT(feed_wbuf(ul, &rq, 0), MWL_OK);
        expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, NULL);
        CHECK_EQ_INT(feed_wbuf(ul, &pd, 5), MWL_OK);
        mwl_ul_event ev;
        expect_event(ul, MWL_UL_EV_ABORTED, &ev);
        CHECK_EQ_INT(ev.u.aborted.reason, 2);
        expect_output(ul, ABORT_UNEXPECTED, sizeof ABORT_UNEXPECTED);
        CHECK_EQ_INT(mwl_ul_accept(ul, NULL, 6), MWL_E_INVALID);
        mwl_ul_free(ul);
    }

    /* P-DATA on a context that was not accepted (5) or not proposed (7) */
    pdv.context_id = 5;
    mwl_wbuf pd5;
    encode_pdata(&pd5, &pdv, 1);
    expect_sta6_aa8(pd5.data, pd5.len, ABORT_INVALID, 6, "P-DATA on rejected context");
    mwl_wbuf_clear(&pd5);
    mwl_pdv mixed[] = {{1, 0, frag, 4}, {7, MWL_PDV_LAST, frag, 4}};
    encode_pdata(&pd5, mixed, 2);
    expect_sta6_aa8(pd5.data, pd5.len, ABORT_INVALID, 6, "P-DATA on unknown context");
    mwl_wbuf_clear(&pd5);

    /* PDV length beyond the PDU; even context ID */
    static const uint8_t pdv_overrun[] = {0x04, 0, 0, 0, 0, 8, 0, 0, 0, 9, 1, 3, 0, 0};
    static const uint8_t pdv_even[] = {0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 2, 3, 0, 0};
    expect_sta6_aa8(pdv_overrun, sizeof pdv_overrun, ABORT_INVALID, 6, "PDV past PDU");
    expect_sta6_aa8(pdv_even, sizeof pdv_even, ABORT_INVALID, 6, "even context ID");

    /* another A-ASSOCIATE-RQ during the association: unexpected */
    expect_sta6_aa8(rq.data, rq.len, ABORT_UNEXPECTED, 2, "A-ASSOCIATE-RQ in Sta6");

    /* absurd item lengths inside the A-ASSOCIATE-RQ */
    {
        mwl_wbuf bad;
        mwl_wbuf_init(&bad, NULL);
        mwl_wbuf_put(&bad, rq.data, rq.len);
        bad.data[74 + 2] = 0xFF; /* application context item length */
        bad.data[74 + 3] = 0xFF;
        expect_sta2_aa1(bad.data, bad.len, "item length 65535");
        mwl_wbuf_clear(&bad);
        mwl_wbuf_init(&bad, NULL);
        mwl_wbuf_put(&bad, rq.data, rq.len);
        /* the first presentation context item: after 10H with its name */
        size_t pc = 74 + 4 + strlen(MWL_APPLICATION_CONTEXT_NAME);
        CHECK_EQ_INT(bad.data[pc], 0x20);
        bad.data[pc + 4 + 4 + 2] = 0x7F; /* abstract syntax sub-item length */
        expect_sta2_aa1(bad.data, bad.len, "sub-item overruns its item");
        mwl_wbuf_clear(&bad);
        /* PDU-length shorter than the items inside */
        mwl_wbuf_init(&bad, NULL);
        mwl_wbuf_put(&bad, rq.data, rq.len - 10);
        mwl_store_u32be(bad.data + 2, (uint32_t)(rq.len - 16));
        expect_sta2_aa1(bad.data, bad.len, "items beyond the PDU");
        mwl_wbuf_clear(&bad);
    }

    /* protocol version without bit 0: the provider rejects (AE-6) */
    {
        mwl_ul *ul = acceptor_in_sta2(CFG_MAX_PDU);
        mwl_wbuf v;
        mwl_wbuf_init(&v, NULL);
        mwl_wbuf_put(&v, rq.data, rq.len);
        v.data[7] = 2;
        CHECK_EQ_INT(feed_wbuf(ul, &v, 10), MWL_OK);
        expect_no_event(ul);
        static const uint8_t rj[] = {0x03, 0, 0, 0, 0, 4, 0, 1, 2, 2};
        expect_output(ul, rj, sizeof rj);
        CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA13);
        CHECK_EQ_INT(mwl_ul_deadline(ul), 10 + ARTIM);
        /* Sta13: valid PDUs are ignored (AA-6), an RQ gets one A-ABORT (AA-7),
         * and a second while the first is unwritten adds nothing */
        CHECK_EQ_INT(feed_wbuf(ul, &pd, 11), MWL_OK);
        expect_no_output(ul);
        CHECK_EQ_INT(feed_wbuf(ul, &rq, 12), MWL_OK);
        CHECK_EQ_INT(feed_wbuf(ul, &rq, 12), MWL_OK);
        expect_output(ul, ABORT_UNEXPECTED, sizeof ABORT_UNEXPECTED);
        CHECK_EQ_INT(feed_wbuf(ul, &rq, 13), MWL_OK);
        expect_output(ul, ABORT_UNEXPECTED, sizeof ABORT_UNEXPECTED);
        /* AA-7 for an unparseable PDU, then everything else is discarded */
        CHECK_EQ_INT(feed(ul, UNKNOWN_PDU, sizeof UNKNOWN_PDU, 14), MWL_OK);
        expect_output(ul, ABORT_UNRECOGNIZED, sizeof ABORT_UNRECOGNIZED);
        size_t used = 0;
        CHECK_EQ_INT(mwl_ul_feed(ul, rq.data, rq.len, &used, 15), MWL_OK);
        CHECK_EQ_INT(used, rq.len);
        expect_no_output(ul);
        expect_no_event(ul);
        CHECK_EQ_INT(mwl_ul_deadline(ul), 10 + ARTIM); /* AA-6/AA-7 do not restart ARTIM */
        mwl_wbuf_clear(&v);
        mwl_ul_free(ul);
    }

    /* truncated PDU then close: in Sta2 nothing to report (AA-5) ... */
    {
        mwl_ul *ul = acceptor_in_sta2(CFG_MAX_PDU);
        CHECK_EQ_INT(feed(ul, rq.data, rq.len - 1, 1), MWL_OK);
        expect_no_event(ul);
        CHECK_EQ_INT(mwl_ul_transport_closed(ul, 2), MWL_OK);
        expect_event(ul, MWL_UL_EV_CLOSED, NULL);
        expect_no_output(ul);
        mwl_ul_free(ul);
    }
    /* ... in Sta6 the association is lost (AA-4) */
    {
        mwl_ul *ul = acceptor_in_sta6(0, 0, 0);
        CHECK_EQ_INT(feed(ul, pd.data, pd.len - 1, 1), MWL_OK);
        expect_no_event(ul);
        CHECK_EQ_INT(mwl_ul_transport_closed(ul, 2), MWL_OK);
        mwl_ul_event ev;
        expect_event(ul, MWL_UL_EV_ABORTED, &ev);
        CHECK_EQ_INT(ev.u.aborted.origin, MWL_UL_ABORT_TRANSPORT);
        expect_event(ul, MWL_UL_EV_CLOSED, NULL);
        mwl_ul_free(ul);
    }
    /* PDU length beyond the data: the session waits for the rest, ARTIM ends it */
    {
        mwl_ul *ul = acceptor_in_sta2(CFG_MAX_PDU);
        uint8_t head[6] = {0x01, 0, 0, 0, 0x10, 0x00}; /* claims 4096 bytes */
        CHECK_EQ_INT(feed(ul, head, 6, 1), MWL_OK);
        CHECK_EQ_INT(feed(ul, rq.data + 6, rq.len - 6, 1), MWL_OK);
        expect_no_event(ul);
        expect_no_output(ul);
        CHECK_EQ_INT(mwl_ul_timer(ul, ARTIM), MWL_OK);
        expect_event(ul, MWL_UL_EV_CLOSED, NULL);
        mwl_ul_free(ul);
    }

    /* requestor: an AC answering a context we did not propose */
    {
        mwl_ul *ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
        mwl_assoc_rq r;
        make_rq(&r, 0);
        r.context_count = 1; /* propose only context 1 */
        CHECK_EQ_INT(mwl_ul_associate(ul, &r, 0), MWL_OK);
        CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
        mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
        mwl_wbuf ac;
        encode_peer_ac(&ac, 0);
        CHECK_EQ_INT(feed_wbuf(ul, &ac, 1), MWL_OK);
        mwl_ul_event ev;
        expect_event(ul, MWL_UL_EV_ABORTED, &ev);
        CHECK_EQ_INT(ev.u.aborted.reason, 6);
        expect_output(ul, ABORT_INVALID, sizeof ABORT_INVALID);
        CHECK(mwl_ul_associate_ac(ul) == NULL);
        mwl_wbuf_clear(&ac);
        mwl_ul_free(ul);
    }
    /* requestor: an A-ASSOCIATE-RQ where an AC belongs */
    {
        mwl_ul *ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
        mwl_assoc_rq r;
        make_rq(&r, 0);
        CHECK_EQ_INT(mwl_ul_associate(ul, &r, 0), MWL_OK);
        CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
        mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));
        CHECK_EQ_INT(feed_wbuf(ul, &rq, 1), MWL_OK);
        expect_event(ul, MWL_UL_EV_ABORTED, NULL);
        expect_output(ul, ABORT_UNEXPECTED, sizeof ABORT_UNEXPECTED);
        mwl_ul_free(ul);
    }
    mwl_wbuf_clear(&pd);
    mwl_wbuf_clear(&rq);
}

/* Incoming P-DATA over our advertised maximum is refused on its header:
 * never buffered. */
static void test_max_pdu_enforced(void)
{
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, 1024, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    mwl_wbuf w;
    encode_rq(&w, 0);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 0), MWL_OK);
    mwl_wbuf_clear(&w);
    mwl_ul_event ev;
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, &ev);
    mwl_policy p;
    make_policy(&p);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_negotiation n;
    CHECK_EQ_INT(mwl_negotiate(ev.u.associate_rq, &p, &arena, &n), MWL_OK);
    CHECK_EQ_INT(mwl_ul_accept(ul, &n.ac, 0), MWL_OK);
    mwl_arena_clear(&arena);
    mwl_ul_output_written(ul, mwl_ul_pending_output(ul, NULL));

    static uint8_t frag[1100];
    mwl_pdv ok = {1, MWL_PDV_LAST, frag, 1024 - 6}, over = {1, MWL_PDV_LAST, frag, 1024 - 5};
    encode_pdata(&w, &ok, 1);
    CHECK_EQ_INT(feed_wbuf(ul, &w, 1), MWL_OK);
    mwl_wbuf_clear(&w);
    expect_event(ul, MWL_UL_EV_P_DATA, NULL);
    encode_pdata(&w, &over, 1);
    size_t used = 0;
    CHECK_EQ_INT(mwl_ul_feed(ul, w.data, 6, &used, 2), MWL_OK); /* the header is enough */
    CHECK_EQ_INT(used, 6);
    expect_event(ul, MWL_UL_EV_ABORTED, &ev);
    CHECK_EQ_INT(ev.u.aborted.reason, 6);
    expect_output(ul, ABORT_INVALID, sizeof ABORT_INVALID);
    mwl_wbuf_clear(&w);
    mwl_ul_free(ul);
}

/* ======================================================================
 * Chunking: the same input in pieces of any size gives the same result
 * ====================================================================== */

typedef struct script_run {
    mwl_wbuf trace;  /* events, as text */
    mwl_wbuf output; /* everything the session wrote */
    int final_state;
} script_run;

static void trace_printf(mwl_wbuf *w, const char *fmt, ...) MWL_PRINTF(2, 3);
static void trace_printf(mwl_wbuf *w, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        mwl_wbuf_put(w, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* A small acceptor driver: negotiates, echoes P-DATA, answers releases. */
static void drive(mwl_ul *ul, script_run *run, uint64_t now)
{
    mwl_ul_event ev;
    while (mwl_ul_next_event(ul, &ev) == MWL_OK) {
        trace_printf(&run->trace, "%s", mwl_ul_event_name(ev.type));
        switch (ev.type) {
        case MWL_UL_EV_ASSOCIATE_RQ: {
            mwl_policy p;
            make_policy(&p);
            mwl_arena arena;
            mwl_arena_init(&arena, NULL);
            mwl_negotiation n;
            CHECK_EQ_INT(mwl_negotiate(ev.u.associate_rq, &p, &arena, &n), MWL_OK);
            CHECK_EQ_INT(n.accepted ? mwl_ul_accept(ul, &n.ac, now) : mwl_ul_reject(ul, &n.rj, now), MWL_OK);
            mwl_arena_clear(&arena);
            break;
        }
        case MWL_UL_EV_P_DATA:
            for (size_t i = 0; i < ev.u.p_data.count; i++) {
                const mwl_pdv *p = &ev.u.p_data.pdvs[i];
                trace_printf(&run->trace, " [%u %u %zu:", p->context_id, p->control, p->length);
                for (size_t j = 0; j < p->length; j++)
                    trace_printf(&run->trace, "%02x", p->data[j]);
                trace_printf(&run->trace, "]");
            }
            CHECK_EQ_INT(mwl_ul_send_p_data(ul, ev.u.p_data.pdvs, ev.u.p_data.count, now), MWL_OK);
            break;
        case MWL_UL_EV_RELEASE_RQ: CHECK_EQ_INT(mwl_ul_release_response(ul, now), MWL_OK); break;
        case MWL_UL_EV_ABORTED:
            trace_printf(&run->trace, " %d %u %u", ev.u.aborted.origin, ev.u.aborted.source,
                         ev.u.aborted.reason);
            break;
        case MWL_UL_EV_ASSOCIATE_AC:
        case MWL_UL_EV_ASSOCIATE_RJ:
        case MWL_UL_EV_RELEASE_RP:
        case MWL_UL_EV_CLOSED: break;
        }
        trace_printf(&run->trace, "\n");
    }
    const uint8_t *out;
    size_t n = mwl_ul_pending_output(ul, &out);
    if (n)
        mwl_wbuf_put(&run->output, out, n);
    mwl_ul_output_written(ul, n);
}

static void run_script(const uint8_t *in, size_t len, size_t chunk, script_run *run)
{
    mwl_wbuf_init(&run->trace, NULL);
    mwl_wbuf_init(&run->output, NULL);
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    size_t pos = 0;
    while (pos < len) {
        size_t n = len - pos < chunk ? len - pos : chunk;
        const uint8_t *p = in + pos;
        pos += n;
        while (n) {
            size_t used = 0;
            int rc = mwl_ul_feed(ul, p, n, &used, 1);
            if (rc == MWL_E_CLOSED) {
                pos = len;
                break;
            }
            CHECK_EQ_INT(rc, MWL_OK);
            if (rc != MWL_OK)
                break;
            CHECK(used > 0);
            p += used;
            n -= used;
            drive(ul, run, 1);
        }
    }
    run->final_state = (int)mwl_ul_get_state(ul);
    mwl_ul_free(ul);
}

static void check_chunking(const uint8_t *in, size_t len, const char *name)
{
    static const size_t chunks[] = {1, 2, 3, 5, 7, 64, 1000, SIZE_MAX};
    script_run ref;
    run_script(in, len, SIZE_MAX, &ref);
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        script_run r;
        run_script(in, len, chunks[i], &r);
        int before = check_failures;
        CHECK_EQ_MEM(r.trace.data, r.trace.len, ref.trace.data, ref.trace.len);
        CHECK_EQ_MEM(r.output.data, r.output.len, ref.output.data, ref.output.len);
        CHECK_EQ_INT(r.final_state, ref.final_state);
        if (check_failures != before)
            fprintf(stderr, "  script %s, chunk %zu\n", name, chunks[i]);
        mwl_wbuf_clear(&r.trace);
        mwl_wbuf_clear(&r.output);
    }
    mwl_wbuf_clear(&ref.trace);
    mwl_wbuf_clear(&ref.output);
}

static void test_chunking(void)
{
    mwl_wbuf script;
    encode_rq(&script, 0);
    static const uint8_t a[] = {1, 2, 3, 4, 5, 6}, b[] = {9, 8};
    mwl_pdv p1[] = {{1, MWL_PDV_COMMAND, a, 6}, {1, MWL_PDV_COMMAND | MWL_PDV_LAST, b, 2}};
    mwl_pdv p2[] = {{3, MWL_PDV_LAST, a, 4}};
    CHECK_EQ_INT(mwl_pdu_encode_p_data(p1, 2, &script), MWL_OK);
    CHECK_EQ_INT(mwl_pdu_encode_p_data(p2, 1, &script), MWL_OK);
    size_t good_len = script.len;
    mwl_wbuf_put(&script, RELEASE_RQ, sizeof RELEASE_RQ);
    mwl_wbuf_put(&script, RELEASE_RQ, sizeof RELEASE_RQ); /* Sta13: ignored */

    script_run ref;
    run_script(script.data, script.len, SIZE_MAX, &ref);
    static const char want_trace[] = "ASSOCIATE_RQ\n"
                                     "P_DATA [1 1 6:010203040506] [1 3 2:0908]\n"
                                     "P_DATA [3 2 4:01020304]\n"
                                     "RELEASE_RQ\n";
    CHECK_EQ_MEM(ref.trace.data, ref.trace.len, want_trace, sizeof want_trace - 1);
    CHECK_EQ_INT(ref.final_state, MWL_UL_STA13);
    CHECK(ref.output.len > 20 && ref.output.data[0] == 0x02);
    CHECK_EQ_MEM(ref.output.data + ref.output.len - 10, 10, RELEASE_RP, 10);
    mwl_wbuf_clear(&ref.trace);
    mwl_wbuf_clear(&ref.output);
    check_chunking(script.data, script.len, "conversation");

    /* the same up to the P-DATA, then garbage */
    script.len = good_len;
    mwl_wbuf_put(&script, UNKNOWN_PDU, sizeof UNKNOWN_PDU);
    mwl_wbuf_put(&script, RELEASE_RQ, sizeof RELEASE_RQ);
    check_chunking(script.data, script.len, "garbage after P-DATA");
    /* a declared length over our limit, then bytes */
    script.len = good_len;
    static const uint8_t huge[] = {0x04, 0, 0x7F, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    mwl_wbuf_put(&script, huge, sizeof huge);
    check_chunking(script.data, script.len, "huge P-DATA");
    mwl_wbuf_clear(&script);
}

/* ======================================================================
 * API edges, memory
 * ====================================================================== */

static void test_api_edges(void)
{
    mwl_ul_config cfg;
    mwl_ul *ul = (mwl_ul *)&cfg;
    mwl_ul_config_init(&cfg, MWL_UL_ACCEPTOR);
    CHECK_EQ_INT(mwl_ul_new(NULL, &ul), MWL_E_INVALID);
    CHECK(ul == NULL);
    CHECK_EQ_INT(mwl_ul_new(&cfg, NULL), MWL_E_INVALID);
    cfg.max_pdu_length = 0;
    CHECK_EQ_INT(mwl_ul_new(&cfg, &ul), MWL_E_INVALID);
    mwl_ul_config_init(&cfg, (mwl_ul_role)7);
    CHECK_EQ_INT(mwl_ul_new(&cfg, &ul), MWL_E_INVALID);
    mwl_ul_config_init(&cfg, MWL_UL_ACCEPTOR);
    cfg.artim_timeout_ms = 0;
    CHECK_EQ_INT(mwl_ul_new(&cfg, &ul), MWL_E_INVALID);
    mwl_ul_free(NULL);

    ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_E_INVALID); /* acceptors do not associate */
    size_t used = 0;
    CHECK_EQ_INT(mwl_ul_feed(ul, RELEASE_RQ, 10, &used, 0), MWL_E_CLOSED); /* Sta1 */
    CHECK_EQ_INT(mwl_ul_feed(ul, NULL, 1, &used, 0), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_feed(ul, RELEASE_RQ, 10, NULL, 0), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_abort(ul, 0), MWL_E_PROTOCOL);
    CHECK_EQ_INT(mwl_ul_release(ul, 0), MWL_E_PROTOCOL);
    CHECK_EQ_INT(mwl_ul_transport_closed(ul, 0), MWL_E_PROTOCOL);
    mwl_ul_event ev;
    CHECK_EQ_INT(mwl_ul_next_event(ul, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_next_event(NULL, &ev), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_timer(NULL, 0), MWL_E_INVALID);
    CHECK(mwl_ul_deadline(NULL) == UINT64_MAX);
    CHECK_EQ_INT(mwl_ul_pending_output(NULL, NULL), 0);
    mwl_ul_output_written(NULL, 5);

    /* feed refuses while events wait */
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_E_PROTOCOL);
    mwl_wbuf w;
    encode_rq(&w, 0);
    mwl_wbuf_put(&w, RELEASE_RQ, sizeof RELEASE_RQ);
    CHECK_EQ_INT(mwl_ul_feed(ul, w.data, w.len, &used, 0), MWL_OK);
    CHECK_EQ_INT(used, w.len - sizeof RELEASE_RQ); /* one PDU per call */
    CHECK_EQ_INT(mwl_ul_feed(ul, w.data + used, sizeof RELEASE_RQ, &used, 0), MWL_AGAIN);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(mwl_ul_feed(ul, NULL, 0, &used, 0), MWL_AGAIN);
    expect_event(ul, MWL_UL_EV_ASSOCIATE_RQ, NULL);
    CHECK_EQ_INT(mwl_ul_feed(ul, NULL, 0, &used, 0), MWL_OK);
    mwl_wbuf_clear(&w);

    /* partial writes of output */
    mwl_ul_free(ul);
    ul = acceptor_in_sta6(0, 0, 0);
    CHECK_EQ_INT(mwl_ul_release(ul, 0), MWL_OK);
    const uint8_t *out;
    CHECK_EQ_INT(mwl_ul_pending_output(ul, &out), 10);
    mwl_ul_output_written(ul, 3);
    CHECK_EQ_INT(mwl_ul_pending_output(ul, &out), 7);
    CHECK_EQ_MEM(out, 7, RELEASE_RQ + 3, 7);
    mwl_ul_output_written(ul, 100); /* clamped */
    CHECK_EQ_INT(mwl_ul_pending_output(ul, &out), 0);
    CHECK(out == NULL);
    mwl_ul_free(ul);

    CHECK_EQ_STR(mwl_ul_state_name(MWL_UL_STA13), "Sta13");
    CHECK_EQ_STR(mwl_ul_state_name((mwl_ul_state)0), "Sta?");
    CHECK_EQ_STR(mwl_ul_event_name(MWL_UL_EV_CLOSED), "CLOSED");
    CHECK_EQ_STR(mwl_ul_event_name((mwl_ul_event_type)0), "?");
}

/* Output written in pieces while more is queued keeps its order. */
static void test_partial_writes(void)
{
    mwl_ul *ul = acceptor_in_sta6(0, 0, 0);
    static const uint8_t a[] = {1, 2, 3, 4}, b[] = {5, 6};
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 1, MWL_PDV_LAST, a, 4, 0), MWL_OK);
    mwl_wbuf want;
    mwl_pdv pa = {1, MWL_PDV_LAST, a, 4}, pb = {3, MWL_PDV_COMMAND, b, 2};
    encode_pdata(&want, &pa, 1);
    CHECK_EQ_INT(mwl_pdu_encode_p_data(&pb, 1, &want), MWL_OK);
    mwl_wbuf_put(&want, ABORT_USER, sizeof ABORT_USER);
    mwl_ul_output_written(ul, 3);
    CHECK_EQ_INT(mwl_ul_send_pdv(ul, 3, MWL_PDV_COMMAND, b, 2, 0), MWL_OK);
    mwl_ul_output_written(ul, 5);
    CHECK_EQ_INT(mwl_ul_abort(ul, 0), MWL_OK);
    expect_output(ul, want.data + 8, want.len - 8);
    mwl_wbuf_clear(&want);
    mwl_ul_free(ul);
}

/* A-ASSOCIATE requests the encoder or the session refuse change nothing. */
static void test_associate_validation(void)
{
    mwl_ul *ul = new_session(MWL_UL_REQUESTOR, CFG_MAX_PDU, 0, NULL);
    mwl_assoc_rq rq;
    make_rq(&rq, 0);
    rq.context_count = 0;
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_E_INVALID);
    mwl_pctx_rq even[] = {{2, UID_VERIFICATION, rq_ts_mwl, 1}};
    make_rq(&rq, 0);
    rq.contexts = even;
    rq.context_count = 1;
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_E_INVALID);
    mwl_pctx_rq twice[] = {{1, UID_VERIFICATION, rq_ts_mwl, 1}, {1, UID_MWL_FIND, rq_ts_mwl, 1}};
    rq.contexts = twice;
    rq.context_count = 2;
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_associate(ul, NULL, 0), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA1);
    make_rq(&rq, 0);
    CHECK_EQ_INT(mwl_ul_associate(ul, &rq, 0), MWL_OK);
    CHECK_EQ_INT(mwl_ul_get_state(ul), MWL_UL_STA4);
    mwl_ul_free(ul);
}

static char last_log[256];
static void log_sink(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

/* Transitions are traced through the log hook at debug level. */
static void test_transition_log(void)
{
    mwl_log_level saved = mwl_log_get_level();
    mwl_log_set_sink(log_sink, NULL);
    mwl_log_set_level(MWL_LOG_DEBUG);
    mwl_ul *ul = new_session(MWL_UL_ACCEPTOR, CFG_MAX_PDU, 0, NULL);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    CHECK_EQ_STR(last_log, "ul: Sta1 Evt5 AE-5 -> Sta2");
    mwl_ul_free(ul);
    mwl_log_set_sink(NULL, NULL);
    mwl_log_set_level(saved);
}

/* An allocator that records the largest block and what is live. */
typedef struct tracking_mem {
    mwl_mem mem;
    size_t live, largest;
} tracking_mem;

static void *track_malloc(size_t size, void *user)
{
    tracking_mem *t = user;
    size_t *p = malloc(size + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = size;
    t->live += size;
    if (size > t->largest)
        t->largest = size;
    return p + 2;
}
static void track_free(void *ptr, void *user)
{
    tracking_mem *t = user;
    if (!ptr)
        return;
    size_t *p = (size_t *)ptr - 2;
    t->live -= p[0];
    free(p);
}
static void *track_realloc(void *ptr, size_t size, void *user)
{
    if (!ptr)
        return track_malloc(size, user);
    size_t old = ((size_t *)ptr)[-2];
    void *n = track_malloc(size, user);
    if (!n)
        return NULL;
    memcpy(n, ptr, old < size ? old : size);
    track_free(ptr, user);
    return n;
}

/* Input buffering never exceeds 6 + the limit for the PDU type, whatever
 * the peer declares. */
static void test_bounded_input(void)
{
    tracking_mem t = {{track_malloc, track_realloc, track_free, NULL}, 0, 0};
    t.mem.user = &t;
    mwl_ul_config cfg;
    mwl_ul_config_init(&cfg, MWL_UL_ACCEPTOR);
    cfg.mem = &t.mem;
    cfg.max_pdu_length = 4096;
    cfg.max_associate_length = 8192;
    mwl_ul *ul = NULL;
    CHECK_EQ_INT(mwl_ul_new(&cfg, &ul), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    /* an RQ claiming 8193 bytes: refused on the header */
    static const uint8_t rq_over[] = {0x01, 0, 0, 0, 0x20, 0x01};
    static uint8_t junk[100000];
    CHECK_EQ_INT(feed(ul, rq_over, sizeof rq_over, 0), MWL_OK);
    CHECK_EQ_INT(feed(ul, junk, sizeof junk, 0), MWL_OK);
    CHECK(t.largest < 8192);
    mwl_ul_free(ul);
    CHECK_EQ_INT(t.live, 0);

    /* an RQ claiming exactly 8192: buffered, nothing more */
    t.largest = 0;
    CHECK_EQ_INT(mwl_ul_new(&cfg, &ul), MWL_OK);
    CHECK_EQ_INT(mwl_ul_transport_connected(ul, 0), MWL_OK);
    static const uint8_t rq_max[] = {0x01, 0, 0, 0, 0x20, 0x00};
    CHECK_EQ_INT(feed(ul, rq_max, sizeof rq_max, 0), MWL_OK);
    CHECK_EQ_INT(feed(ul, junk, 5000, 0), MWL_OK);
    expect_no_event(ul);
    CHECK(t.largest <= 8192 + 6);
    mwl_ul_free(ul);
    CHECK_EQ_INT(t.live, 0);
}

/* Every allocation failure gives a fatal status, sticks, and leaks
 * nothing (ASan checks the last part). */
static void test_out_of_memory(void)
{
    int saw_nomem = 0;
    for (size_t fail = 1; fail < 60; fail++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, fail);
        mwl_ul_config cfg;
        mwl_ul_config_init(&cfg, MWL_UL_ACCEPTOR);
        cfg.mem = &f.mem;
        mwl_ul *ul = NULL;
        int rc = mwl_ul_new(&cfg, &ul);
        if (rc != MWL_OK) {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
            saw_nomem++;
            continue;
        }
        mwl_wbuf w;
        encode_rq(&w, 0);
        rc = mwl_ul_transport_connected(ul, 0);
        if (rc == MWL_OK)
            rc = feed_wbuf(ul, &w, 0);
        mwl_ul_event ev;
        if (rc == MWL_OK && mwl_ul_next_event(ul, &ev) == MWL_OK) {
            mwl_policy p;
            make_policy(&p);
            mwl_arena arena;
            mwl_arena_init(&arena, NULL);
            mwl_negotiation n;
            CHECK_EQ_INT(mwl_negotiate(ev.u.associate_rq, &p, &arena, &n), MWL_OK);
            rc = mwl_ul_accept(ul, &n.ac, 0);
            mwl_arena_clear(&arena);
        }
        static const uint8_t d[4] = {1, 2, 3, 4};
        if (rc == MWL_OK)
            rc = mwl_ul_send_pdv(ul, 1, MWL_PDV_LAST, d, 4, 0);
        mwl_pdv pdv = {1, MWL_PDV_LAST, d, 4};
        mwl_wbuf pd;
        encode_pdata(&pd, &pdv, 1);
        if (rc == MWL_OK)
            rc = feed_wbuf(ul, &pd, 0);
        mwl_wbuf_clear(&pd);
        if (rc != MWL_OK) {
            CHECK(mwl_is_fatal(rc));
            saw_nomem++;
            /* sticky: every call now says so */
            size_t used;
            CHECK_EQ_INT(mwl_ul_feed(ul, w.data, w.len, &used, 0), rc);
            CHECK_EQ_INT(mwl_ul_release(ul, 0), rc);
            CHECK_EQ_INT(mwl_ul_next_event(ul, &ev), rc);
            CHECK_EQ_INT(mwl_ul_pending_output(ul, NULL), 0);
        }
        mwl_wbuf_clear(&w);
        mwl_ul_free(ul);
        if (f.count < fail)
            break; /* the whole run fit under this many allocations */
    }
    CHECK(saw_nomem > 3);
}

int main(void)
{
    RUN_TEST(test_acceptor_conversation);
    RUN_TEST(test_requestor_conversation);
    RUN_TEST(test_requestor_rejected);
    RUN_TEST(test_acceptor_rejects);
    RUN_TEST(test_accept_validation);
    RUN_TEST(test_abort_both_ways);
    RUN_TEST(test_back_to_back_and_release_collision);
    RUN_TEST(test_artim);
    RUN_TEST(test_idle_timeout);
    RUN_TEST(test_bad_peers);
    RUN_TEST(test_max_pdu_enforced);
    RUN_TEST(test_chunking);
    RUN_TEST(test_api_edges);
    RUN_TEST(test_partial_writes);
    RUN_TEST(test_associate_validation);
    RUN_TEST(test_transition_log);
    RUN_TEST(test_bounded_input);
    RUN_TEST(test_out_of_memory);
    return check_report("ul_test");
}
