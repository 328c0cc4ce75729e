/* Tests for the PDU codec (src/ul/pdu.c): byte vectors both ways, every
 * truncation, round trips, corrupted lengths and counts, unknown items,
 * out-of-memory at every allocation, encoder argument checks.
 *
 * Vectors live in tests/vectors/pdu/ (hex files) (found through MWL_SOURCE_DIR,
 * which CTest sets): dcmtk_* were captured from DCMTK 3.6.7 on loopback,
 * hand_* are written by make_hand_vectors.py from the PS3.8 tables. */
#include "ul/pdu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/status.h"
#include "check.h"
#include "vectors.h"

#define APP_CONTEXT "1.2.840.10008.3.1.1.1"
#define VERIFICATION "1.2.840.10008.1.1"
#define MWL_FIND "1.2.840.10008.5.1.4.31"
#define IMPLICIT_LE "1.2.840.10008.1.2"
#define EXPLICIT_LE "1.2.840.10008.1.2.1"
#define DEFLATED_LE "1.2.840.10008.1.2.1.99"
#define EXPLICIT_BE "1.2.840.10008.1.2.2"
#define CT_IMAGE "1.2.840.10008.5.1.4.1.1.2"
#define ENHANCED_CT "1.2.840.10008.5.1.4.1.1.2.1"
#define LEGACY_CT "1.2.840.10008.5.1.4.1.1.2.2"
#define STORAGE_SERVICE "1.2.840.10008.4.2"
#define IMPL_UID "1.2.3.999.1.1"
#define IMPL_VERSION "MWL_0.1.0"
#define DCMTK_IMPL_UID "1.2.276.0.7230010.3.0.3.6.7"
#define DCMTK_VERSION "OFFIS_DCMTK_367"

/* ---- vectors ------------------------------------------------------------ */

typedef test_vector vec;

/* A missing or malformed vector stops the test (tests/harness/vectors.h). */
static vec load_vector(const char *name)
{
    vec v = test_vector_load("pdu", name);
    CHECK(v.len >= MWL_PDU_HEADER_SIZE);
    return v;
}

/* ---- deep comparison ---------------------------------------------------- */

/* mwl_pdu_equal, naming the first difference on stderr. */
static bool pdu_same(const mwl_pdu *a, const mwl_pdu *b, bool compare_rq_echo)
{
    const char *what;
    if (mwl_pdu_equal(a, b, compare_rq_echo, &what))
        return true;
    fprintf(stderr, "  structs differ: %s\n", what);
    return false;
}

/* ---- helpers ------------------------------------------------------------ */

static int decode(const uint8_t *in, size_t len, mwl_arena *arena, const mwl_pdu_limits *lim, mwl_pdu *out,
                  mwl_diag *diag)
{
    size_t consumed = 0;
    int rc = mwl_pdu_decode(in, len, arena, lim, out, &consumed, diag);
    if (rc == MWL_OK)
        CHECK_EQ_INT(consumed, len);
    return rc;
}

/* Decodes `len` bytes with default limits and expects `want`; on an error
 * the diag message must say something. */
static void expect_status(const uint8_t *in, size_t len, int want, const char *what)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu pdu;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    /* An exact-size heap copy, so ASan sees any read past the input. */
    uint8_t *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, in, len);
    int rc = decode(copy, len, &arena, NULL, &pdu, &diag);
    free(copy);
    if (rc != want)
        fprintf(stderr, "case \"%s\": got %s (%s), want %s\n", what, mwl_status_str(rc), diag.msg,
                mwl_status_str(want));
    CHECK_EQ_INT(rc, want);
    if (want < 0 && want != MWL_E_NOMEM)
        CHECK(diag.msg[0] != '\0');
    mwl_arena_clear(&arena);
}

/* The checks every valid vector goes through:
 *  - it decodes, consuming exactly its bytes, also with more bytes behind it;
 *  - every strict prefix gives MWL_NEED_MORE (STYLE.md §12.3);
 *  - re-encoding gives the same bytes (`canonical`) and decodes to the same
 *    struct either way.
 * Returns the decoded PDU in `out` (allocated from `arena`). */
static void check_vector(const vec *v, mwl_pdu_type type, bool canonical, mwl_arena *arena, mwl_pdu *out)
{
    memset(out, 0, sizeof *out); /* callers look at it even when decoding failed */
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = decode(v->data, v->len, arena, NULL, out, &diag);
    if (rc != MWL_OK)
        fprintf(stderr, "decode: %s at %zu: %s\n", mwl_status_str(rc), diag.offset, diag.msg);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc != MWL_OK)
        return;
    CHECK_EQ_INT(out->type, type);
    CHECK_EQ_INT(out->length, v->len - MWL_PDU_HEADER_SIZE);

    mwl_arena scratch;
    mwl_arena_init(&scratch, NULL);
    mwl_pdu other;
    for (size_t n = 0; n < v->len; n++) {
        /* An exact-size copy, so ASan sees any read past the prefix. */
        uint8_t *prefix = malloc(n ? n : 1);
        if (n)
            memcpy(prefix, v->data, n);
        size_t consumed = 12345;
        rc = mwl_pdu_decode(prefix, n, &scratch, NULL, &other, &consumed, NULL);
        if (rc != MWL_NEED_MORE)
            fprintf(stderr, "prefix of %zu bytes: %s\n", n, mwl_status_str(rc));
        CHECK_EQ_INT(rc, MWL_NEED_MORE);
        CHECK_EQ_INT(consumed, 12345);
        free(prefix);
    }

    uint8_t *longer = malloc(v->len + 7);
    memcpy(longer, v->data, v->len);
    memcpy(longer + v->len, "\x05\x00\x00\x00\x00\x04\x00", 7);
    size_t consumed = 0;
    CHECK_EQ_INT(mwl_pdu_decode(longer, v->len + 7, &scratch, NULL, &other, &consumed, NULL), MWL_OK);
    CHECK_EQ_INT(consumed, v->len);
    free(longer);

    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode(out, &w), MWL_OK);
    if (canonical)
        CHECK_EQ_MEM(w.data, w.len, v->data, v->len);
    rc = decode(w.data, w.len, &scratch, NULL, &other, NULL);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc == MWL_OK)
        CHECK(pdu_same(out, &other, canonical));
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&scratch);
}

/* Encodes `expected` and compares with the vector's bytes; decodes the
 * vector and compares with `expected` (the "both ways" check). */
static void check_both_ways(const vec *v, const mwl_pdu *decoded, const mwl_pdu *expected, bool same_bytes)
{
    CHECK(pdu_same(decoded, expected, true));
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode(expected, &w), MWL_OK);
    if (same_bytes)
        CHECK_EQ_MEM(w.data, w.len, v->data, v->len);
    mwl_wbuf_clear(&w);
}

/* Walks items with 16-bit lengths in [from, end) and returns the offset of
 * the n-th (0-based) item of `type`, or 0. */
static size_t find_item(const uint8_t *p, size_t from, size_t end, uint8_t type, int n)
{
    while (from + 4 <= end) {
        if (p[from] == type && n-- == 0)
            return from;
        from += 4 + mwl_load_u16be(p + from + 2);
    }
    return 0;
}

static size_t item_end_offset(const uint8_t *p, size_t at)
{
    return at + 4 + mwl_load_u16be(p + at + 2);
}

/* ---- expected structs for the hand-built vectors ------------------------ */

static const char *rq_ts1[] = {IMPLICIT_LE};
static const char *rq_ts3[] = {EXPLICIT_LE, DEFLATED_LE, IMPLICIT_LE};
static mwl_pctx_rq rq_contexts[] = {
    {1, VERIFICATION, rq_ts1, 1},
    {3, MWL_FIND, rq_ts3, 3},
};
static mwl_role_selection rq_roles[] = {{MWL_FIND, 1, 0}};
static const uint8_t rq_ext_info[] = {1, 1, 1, 1};
static mwl_ext_negotiation rq_exts[] = {{MWL_FIND, rq_ext_info, sizeof rq_ext_info}};
static const char *rq_related[] = {ENHANCED_CT, LEGACY_CT};
static mwl_common_ext_negotiation rq_commons[] = {{CT_IMAGE, STORAGE_SERVICE, rq_related, 2}};

static void make_rq_full(mwl_pdu *p)
{
    memset(p, 0, sizeof *p);
    p->type = MWL_PDU_ASSOCIATE_RQ;
    mwl_assoc_rq *rq = &p->u.associate_rq;
    rq->protocol_version = 1;
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(rq, "MWL_SCP", "MODALITY 1"), MWL_OK);
    rq->application_context = APP_CONTEXT;
    rq->contexts = rq_contexts;
    rq->context_count = 2;
    mwl_user_info *ui = &rq->user_info;
    ui->max_length = 16384;
    ui->implementation_class_uid = IMPL_UID;
    ui->implementation_version_name = IMPL_VERSION;
    ui->has_async_window = true;
    ui->max_operations_invoked = 5;
    ui->max_operations_performed = 3;
    ui->roles = rq_roles;
    ui->role_count = 1;
    ui->ext_negotiations = rq_exts;
    ui->ext_negotiation_count = 1;
    ui->common_ext_negotiations = rq_commons;
    ui->common_ext_negotiation_count = 1;
    ui->has_user_identity_rq = true;
    ui->user_identity_rq.type = 2;
    ui->user_identity_rq.positive_response_requested = 1;
    ui->user_identity_rq.primary_field = (const uint8_t *)"alice";
    ui->user_identity_rq.primary_length = 5;
    ui->user_identity_rq.secondary_field = (const uint8_t *)"secret";
    ui->user_identity_rq.secondary_length = 6;
}

static mwl_pctx_ac ac_contexts[] = {
    {1, MWL_PCTX_ACCEPTANCE, IMPLICIT_LE},
    {3, MWL_PCTX_TRANSFER_SYNTAXES_NOT_SUPPORTED, ""},
    {5, MWL_PCTX_ABSTRACT_SYNTAX_NOT_SUPPORTED, EXPLICIT_BE},
};
static mwl_role_selection ac_roles[] = {{MWL_FIND, 1, 0}};
static const uint8_t ac_ext_info[] = {1, 1, 0};
static mwl_ext_negotiation ac_exts[] = {{MWL_FIND, ac_ext_info, sizeof ac_ext_info}};

static void make_ac_full(mwl_pdu *p)
{
    mwl_pdu rq;
    make_rq_full(&rq);
    memset(p, 0, sizeof *p);
    p->type = MWL_PDU_ASSOCIATE_AC;
    mwl_assoc_ac *ac = &p->u.associate_ac;
    ac->protocol_version = 1;
    memcpy(ac->echo, rq.u.associate_rq.echo, sizeof ac->echo);
    ac->application_context = APP_CONTEXT;
    ac->contexts = ac_contexts;
    ac->context_count = 3;
    mwl_user_info *ui = &ac->user_info;
    ui->max_length = 32768;
    ui->implementation_class_uid = IMPL_UID;
    ui->implementation_version_name = IMPL_VERSION;
    ui->has_async_window = true;
    ui->max_operations_invoked = 1;
    ui->max_operations_performed = 1;
    ui->roles = ac_roles;
    ui->role_count = 1;
    ui->ext_negotiations = ac_exts;
    ui->ext_negotiation_count = 1;
    ui->has_user_identity_ac = true;
    ui->server_response = (const uint8_t *)"tckt";
    ui->server_response_length = 4;
}

/* ---- tests: limits and header ------------------------------------------- */

static void test_limits_and_header(void)
{
    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    CHECK_EQ_INT(lim.max_pdu_length, 1048576 + 6);
    CHECK_EQ_INT(lim.max_contexts, 128);
    CHECK_EQ_INT(lim.max_transfer_syntaxes, 64);
    CHECK_EQ_INT(lim.max_sub_items, 128);
    CHECK_EQ_INT(lim.max_pdvs, 1024);

    const uint8_t h[] = {0x09, 0xAA, 0x12, 0x34, 0x56, 0x78};
    uint8_t type = 0;
    uint32_t length = 0;
    for (size_t n = 0; n < sizeof h; n++)
        CHECK_EQ_INT(mwl_pdu_peek_header(h, n, &type, &length), MWL_NEED_MORE);
    CHECK_EQ_INT(mwl_pdu_peek_header(h, sizeof h, &type, &length), MWL_OK);
    CHECK_EQ_INT(type, 0x09); /* unknown types are reported as received */
    CHECK_EQ_INT(length, 0x12345678);
}

/* ---- tests: hand-built vectors ------------------------------------------ */

static void test_hand_associate_rq(void)
{
    vec v = load_vector("hand_associate_rq_full.hex");
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu got, want;
    check_vector(&v, MWL_PDU_ASSOCIATE_RQ, true, &arena, &got);
    make_rq_full(&want);
    check_both_ways(&v, &got, &want, true);
    CHECK_EQ_STR(got.u.associate_rq.calling_ae, "MODALITY 1");
    mwl_arena_clear(&arena);

    /* Unknown items and sub-items are skipped; padding, reserved bytes and
     * item order do not matter: the struct is the same as above. */
    vec u = load_vector("hand_associate_rq_unknown_items.hex");
    check_vector(&u, MWL_PDU_ASSOCIATE_RQ, false, &arena, &got);
    CHECK(pdu_same(&got, &want, false));
    if (u.data)
        CHECK(memcmp(got.u.associate_rq.echo, u.data + 10, 64) == 0); /* raw bytes 11-74 */
    mwl_arena_clear(&arena);
    free(u.data);
    free(v.data);
}

static void test_hand_associate_ac(void)
{
    vec v = load_vector("hand_associate_ac_full.hex");
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu got, want;
    check_vector(&v, MWL_PDU_ASSOCIATE_AC, true, &arena, &got);
    make_ac_full(&want);
    check_both_ways(&v, &got, &want, true);
    mwl_arena_clear(&arena);
    free(v.data);
}

static void test_hand_fixed_and_p_data(void)
{
    static const struct {
        const char *file;
        mwl_pdu_type type;
        uint8_t a, b, c;
    } cases[] = {
        {"hand_associate_rj.hex", MWL_PDU_ASSOCIATE_RJ, MWL_RJ_RESULT_PERMANENT, MWL_RJ_SOURCE_USER,
         MWL_RJ_USER_CALLED_AE_NOT_RECOGNIZED},
        {"hand_release_rq.hex", MWL_PDU_RELEASE_RQ, 0, 0, 0},
        {"hand_release_rp.hex", MWL_PDU_RELEASE_RP, 0, 0, 0},
        {"hand_abort_user.hex", MWL_PDU_ABORT, MWL_ABORT_SOURCE_USER, MWL_ABORT_REASON_NOT_SPECIFIED, 0},
        {"hand_abort_provider.hex", MWL_PDU_ABORT, MWL_ABORT_SOURCE_PROVIDER, MWL_ABORT_UNEXPECTED_PDU, 0},
    };
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vec v = load_vector(cases[i].file);
        mwl_pdu got, want;
        memset(&want, 0, sizeof want);
        want.type = cases[i].type;
        if (cases[i].type == MWL_PDU_ASSOCIATE_RJ) {
            want.u.associate_rj.result = cases[i].a;
            want.u.associate_rj.source = cases[i].b;
            want.u.associate_rj.reason = cases[i].c;
        } else if (cases[i].type == MWL_PDU_ABORT) {
            want.u.abort.source = cases[i].a;
            want.u.abort.reason = cases[i].b;
        }
        check_vector(&v, cases[i].type, true, &arena, &got);
        check_both_ways(&v, &got, &want, true);
        CHECK_EQ_INT(v.len, 10);
        free(v.data);
    }

    vec v = load_vector("hand_p_data_multi.hex");
    mwl_pdu got, want;
    const uint8_t cmd[] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17};
    const uint8_t data[] = {0x08, 0x00, 0x50, 0x00};
    mwl_pdv pdvs[] = {
        {1, MWL_PDV_COMMAND | MWL_PDV_LAST, cmd, sizeof cmd},
        {1, 0, data, sizeof data},
        {1, MWL_PDV_LAST, NULL, 0},
    };
    memset(&want, 0, sizeof want);
    want.type = MWL_PDU_P_DATA_TF;
    want.u.p_data.pdvs = pdvs;
    want.u.p_data.pdv_count = 3;
    check_vector(&v, MWL_PDU_P_DATA_TF, true, &arena, &got);
    check_both_ways(&v, &got, &want, true);
    /* PDV data points into the input, not into a copy. */
    if (v.data && got.u.p_data.pdv_count == 3)
        CHECK(got.u.p_data.pdvs[0].data == v.data + 12);
    free(v.data);
    mwl_arena_clear(&arena);
}

/* ---- tests: DCMTK captures ---------------------------------------------- */

/* DCMTK sends FFH in byte 7 of each 20H item (reserved, not tested on
 * receipt); our encoder sends 00H there. Zero it to compare bytes. */
static void zero_pctx_reserved(vec *v)
{
    for (int n = 0;; n++) {
        size_t at = find_item(v->data, 74, v->len, 0x20, n);
        if (!at)
            break;
        v->data[at + 6] = 0;
    }
}

static void test_dcmtk_associate(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu p;

    vec v = load_vector("dcmtk_echoscu_associate_rq.hex");
    check_vector(&v, MWL_PDU_ASSOCIATE_RQ, false, &arena, &p);
    const mwl_assoc_rq *rq = &p.u.associate_rq;
    CHECK_EQ_INT(rq->protocol_version, 1);
    CHECK_EQ_STR(rq->called_ae, "ANY-SCP");
    CHECK_EQ_STR(rq->calling_ae, "ECHOSCU");
    CHECK_EQ_STR(rq->application_context, MWL_APPLICATION_CONTEXT_NAME);
    CHECK_EQ_INT(rq->context_count, 1);
    if (rq->context_count == 1) {
        CHECK_EQ_INT(rq->contexts[0].id, 1);
        CHECK_EQ_STR(rq->contexts[0].abstract_syntax, VERIFICATION);
        CHECK_EQ_INT(rq->contexts[0].transfer_syntax_count, 1);
        CHECK_EQ_STR(rq->contexts[0].transfer_syntaxes[0], IMPLICIT_LE);
    }
    CHECK_EQ_INT(rq->user_info.max_length, 16384);
    CHECK_EQ_STR(rq->user_info.implementation_class_uid, DCMTK_IMPL_UID);
    CHECK_EQ_STR(rq->user_info.implementation_version_name, DCMTK_VERSION);
    CHECK(!rq->user_info.has_async_window && !rq->user_info.has_user_identity_rq);
    if (v.data && p.type == MWL_PDU_ASSOCIATE_RQ) {
        CHECK(memcmp(rq->echo, v.data + 10, 64) == 0);
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        CHECK_EQ_INT(mwl_pdu_encode_associate_rq(rq, &w), MWL_OK);
        zero_pctx_reserved(&v);
        CHECK_EQ_MEM(w.data, w.len, v.data, v.len);
        mwl_wbuf_clear(&w);
    }
    free(v.data);
    mwl_arena_clear(&arena);

    v = load_vector("dcmtk_findscu_associate_rq.hex");
    check_vector(&v, MWL_PDU_ASSOCIATE_RQ, false, &arena, &p);
    CHECK_EQ_STR(rq->called_ae, "WLMSCP");
    CHECK_EQ_STR(rq->calling_ae, "FINDSCU");
    CHECK_EQ_INT(rq->context_count, 1);
    if (rq->context_count == 1) {
        CHECK_EQ_STR(rq->contexts[0].abstract_syntax, MWL_FIND);
        CHECK_EQ_INT(rq->contexts[0].transfer_syntax_count, 3);
        if (rq->contexts[0].transfer_syntax_count == 3) {
            CHECK_EQ_STR(rq->contexts[0].transfer_syntaxes[0], EXPLICIT_LE);
            CHECK_EQ_STR(rq->contexts[0].transfer_syntaxes[1], EXPLICIT_BE);
            CHECK_EQ_STR(rq->contexts[0].transfer_syntaxes[2], IMPLICIT_LE);
        }
    }
    if (v.data && p.type == MWL_PDU_ASSOCIATE_RQ) {
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        CHECK_EQ_INT(mwl_pdu_encode_associate_rq(rq, &w), MWL_OK);
        zero_pctx_reserved(&v);
        CHECK_EQ_MEM(w.data, w.len, v.data, v.len);
        mwl_wbuf_clear(&w);
    }
    free(v.data);
    mwl_arena_clear(&arena);

    static const struct {
        const char *file, *ts;
    } acs[] = {{"dcmtk_storescp_associate_ac.hex", IMPLICIT_LE},
               {"dcmtk_wlmscpfs_associate_ac.hex", EXPLICIT_LE}};
    for (size_t i = 0; i < 2; i++) {
        v = load_vector(acs[i].file);
        check_vector(&v, MWL_PDU_ASSOCIATE_AC, true, &arena, &p);
        const mwl_assoc_ac *ac = &p.u.associate_ac;
        CHECK_EQ_INT(ac->context_count, 1);
        if (ac->context_count == 1) {
            CHECK_EQ_INT(ac->contexts[0].id, 1);
            CHECK_EQ_INT(ac->contexts[0].result, MWL_PCTX_ACCEPTANCE);
            CHECK_EQ_STR(ac->contexts[0].transfer_syntax, acs[i].ts);
        }
        CHECK_EQ_INT(ac->user_info.max_length, 16384);
        CHECK_EQ_STR(ac->user_info.implementation_class_uid, DCMTK_IMPL_UID);
        free(v.data);
        mwl_arena_clear(&arena);
    }
}

static void test_dcmtk_other(void)
{
    static const struct {
        const char *file;
        mwl_pdu_type type;
        uint8_t control; /* of the single PDV */
        size_t length;   /* of its fragment */
    } cases[] = {
        {"dcmtk_echoscu_p_data_c_echo_rq.hex", MWL_PDU_P_DATA_TF, 3, 68},
        {"dcmtk_storescp_p_data_c_echo_rsp.hex", MWL_PDU_P_DATA_TF, 3, 78},
        {"dcmtk_findscu_p_data_c_find_rq_command.hex", MWL_PDU_P_DATA_TF, 3, 82},
        {"dcmtk_findscu_p_data_c_find_rq_identifier.hex", MWL_PDU_P_DATA_TF, 2, 62},
        {"dcmtk_wlmscpfs_p_data_c_find_rsp.hex", MWL_PDU_P_DATA_TF, 3, 82},
        {"dcmtk_echoscu_release_rq.hex", MWL_PDU_RELEASE_RQ, 0, 0},
        {"dcmtk_findscu_release_rq.hex", MWL_PDU_RELEASE_RQ, 0, 0},
        {"dcmtk_storescp_release_rp.hex", MWL_PDU_RELEASE_RP, 0, 0},
        {"dcmtk_wlmscpfs_release_rp.hex", MWL_PDU_RELEASE_RP, 0, 0},
    };
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vec v = load_vector(cases[i].file);
        mwl_pdu p;
        check_vector(&v, cases[i].type, true, &arena, &p);
        if (cases[i].type == MWL_PDU_P_DATA_TF && p.type == MWL_PDU_P_DATA_TF) {
            CHECK_EQ_INT(p.u.p_data.pdv_count, 1);
            CHECK_EQ_INT(p.u.p_data.pdvs[0].context_id, 1);
            CHECK_EQ_INT(p.u.p_data.pdvs[0].control, cases[i].control);
            CHECK_EQ_INT(p.u.p_data.pdvs[0].length, cases[i].length);
            /* Commands start with (0000,0000) CommandGroupLength, implicit VR LE. */
            if (cases[i].control & MWL_PDV_COMMAND)
                CHECK(memcmp(p.u.p_data.pdvs[0].data, "\0\0\0\0\x04\0\0\0", 8) == 0);
        }
        free(v.data);
        mwl_arena_clear(&arena);
    }
}

/* ---- tests: corrupted input --------------------------------------------- */

/* A small byte builder for inputs the encoder refuses to make. */
typedef struct tb {
    uint8_t d[1 << 17];
    size_t n;
} tb;

static tb b; /* 128 KiB: static */

static void tb_put(const void *p, size_t n)
{
    memcpy(b.d + b.n, p, n);
    b.n += n;
}
static void tb_u8(uint8_t v)
{
    b.d[b.n++] = v;
}
static void tb_u16(uint16_t v)
{
    mwl_store_u16be(b.d + b.n, v);
    b.n += 2;
}
static void tb_u32(uint32_t v)
{
    mwl_store_u32be(b.d + b.n, v);
    b.n += 4;
}
static size_t tb_item_begin(uint8_t type)
{
    tb_u8(type);
    tb_u8(0);
    tb_u16(0);
    return b.n - 2;
}
static void tb_item_end(size_t at)
{
    mwl_store_u16be(b.d + at, (uint16_t)(b.n - at - 2));
}
static void tb_str_item(uint8_t type, const char *s)
{
    size_t at = tb_item_begin(type);
    tb_put(s, strlen(s));
    tb_item_end(at);
}
/* PDU header and fixed part of an A-ASSOCIATE-RQ/AC. */
static void tb_associate_begin(uint8_t type)
{
    b.n = 0;
    tb_u8(type);
    tb_u8(0);
    tb_u32(0);
    tb_u16(1);
    tb_u16(0);
    tb_put("CALLED          CALLING         ", 32);
    memset(b.d + b.n, 0, 32);
    b.n += 32;
}
static void tb_pdu_end(void)
{
    mwl_store_u32be(b.d + 2, (uint32_t)(b.n - 6));
}
static void tb_pctx_rq(uint8_t id, const char *abstract, int ts_count)
{
    size_t at = tb_item_begin(0x20);
    tb_put((const uint8_t[]){id, 0, 0, 0}, 4);
    if (abstract)
        tb_str_item(0x30, abstract);
    for (int i = 0; i < ts_count; i++)
        tb_str_item(0x40, IMPLICIT_LE);
    tb_item_end(at);
}
static void tb_max_length(void)
{
    tb_put((const uint8_t[]){0x51, 0, 0, 4, 0, 0, 0x40, 0}, 8);
}
/* An RQ with one context and a minimal user information item, plus the
 * raw bytes `ui_extra` inside the user information item. */
static void tb_simple_rq(const void *ui_extra, size_t ui_extra_len)
{
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, VERIFICATION, 1);
    size_t ui = tb_item_begin(0x50);
    tb_max_length();
    tb_put(ui_extra, ui_extra_len);
    tb_item_end(ui);
    tb_pdu_end();
}

static void test_corrupt_headers(void)
{
    uint8_t h[10];
    /* PDU-length 0 and 0xFFFFFFFF for every type, with only the header
     * present: the answer comes without waiting for the body. */
    for (uint8_t t = 1; t <= 7; t++) {
        memcpy(h, (const uint8_t[]){t, 0, 0, 0, 0, 0}, 6);
        expect_status(h, 6, MWL_E_MALFORMED, "PDU-length 0");
        memcpy(h, (const uint8_t[]){t, 0, 0xFF, 0xFF, 0xFF, 0xFF}, 6);
        bool fixed = t == 3 || t >= 5;
        expect_status(h, 6, fixed ? MWL_E_MALFORMED : MWL_E_LIMIT, "PDU-length 0xFFFFFFFF");
        /* a fixed-length PDU with length 5 or 3 */
        memcpy(h, (const uint8_t[]){t, 0, 0, 0, 0, 5}, 6);
        if (fixed)
            expect_status(h, 6, MWL_E_MALFORMED, "fixed PDU of length 5");
        memcpy(h, (const uint8_t[]){t, 0, 0, 0, 0, 3}, 6);
        expect_status(h, 6, MWL_E_MALFORMED, "PDU of length 3");
    }
    /* A-ASSOCIATE-RQ shorter than its fixed part (68 bytes after the header). */
    memcpy(h, (const uint8_t[]){1, 0, 0, 0, 0, 67}, 6);
    expect_status(h, 6, MWL_E_MALFORMED, "RQ of 67 bytes");
    /* Unknown PDU types are reported as soon as the header is there. */
    const uint8_t unknown[] = {0x00, 0x08, 0x10, 0x44, 0xFF};
    for (size_t i = 0; i < sizeof unknown; i++) {
        memcpy(h, (const uint8_t[]){unknown[i], 0, 0, 0, 0, 4}, 6);
        expect_status(h, 5, MWL_NEED_MORE, "unknown type, 5 bytes");
        expect_status(h, 6, MWL_E_UNSUPPORTED, "unknown type");
    }
    /* The limit is checked against the caller's max_pdu_length. */
    vec v = load_vector("hand_associate_rq_full.hex");
    if (v.data) {
        mwl_pdu_limits lim;
        mwl_pdu_limits_init(&lim);
        lim.max_pdu_length = (uint32_t)(v.len - 7);
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_pdu p;
        size_t consumed;
        CHECK_EQ_INT(mwl_pdu_decode(v.data, 6, &arena, &lim, &p, &consumed, NULL), MWL_E_LIMIT);
        lim.max_pdu_length = (uint32_t)(v.len - 6);
        CHECK_EQ_INT(mwl_pdu_decode(v.data, v.len, &arena, &lim, &p, &consumed, NULL), MWL_OK);
        mwl_arena_clear(&arena);
    }
    free(v.data);
}

/* Mutations of the hand-built RQ; each is one corrupted length or field. */
static void test_corrupt_rq(void)
{
    vec v = load_vector("hand_associate_rq_full.hex");
    if (!v.data)
        return;
    uint8_t *m = malloc(v.len);
    const size_t app = find_item(v.data, 74, v.len, 0x10, 0);
    const size_t ctx1 = find_item(v.data, 74, v.len, 0x20, 0);
    const size_t ctx3 = find_item(v.data, 74, v.len, 0x20, 1);
    const size_t ui = find_item(v.data, 74, v.len, 0x50, 0);
    CHECK(app && ctx1 && ctx3 && ui);
    const size_t ui_end = item_end_offset(v.data, ui);
    const size_t s51 = find_item(v.data, ui + 4, ui_end, 0x51, 0);
    const size_t s52 = find_item(v.data, ui + 4, ui_end, 0x52, 0);
    const size_t s54 = find_item(v.data, ui + 4, ui_end, 0x54, 0);
    const size_t s56 = find_item(v.data, ui + 4, ui_end, 0x56, 0);
    const size_t s57 = find_item(v.data, ui + 4, ui_end, 0x57, 0);
    const size_t s58 = find_item(v.data, ui + 4, ui_end, 0x58, 0);
    CHECK(s51 && s52 && s54 && s56 && s57 && s58);

#define MUTATE(stmt, want, what)                                                                             \
    do {                                                                                                     \
        memcpy(m, v.data, v.len);                                                                            \
        stmt;                                                                                                \
        expect_status(m, v.len, want, what);                                                                 \
    } while (0)

    MUTATE((void)0, MWL_OK, "unchanged");
    /* lengths */
    MUTATE(mwl_store_u16be(m + app + 2, 0xFFFF), MWL_E_MALFORMED, "10H length past the PDU");
    MUTATE(mwl_store_u32be(m + 2, (uint32_t)(v.len - 7)), MWL_E_MALFORMED, "PDU-length cuts the last item");
    MUTATE(mwl_store_u16be(m + ctx1 + 10, mwl_load_u16be(m + ctx1 + 2)), MWL_E_MALFORMED,
           "30H longer than its 20H");
    MUTATE(mwl_store_u16be(m + ctx1 + 2, (uint16_t)(mwl_load_u16be(m + ctx1 + 2) - 1)), MWL_E_MALFORMED,
           "20H one byte short of its last 40H");
    MUTATE(mwl_store_u16be(m + s52 + 2, (uint16_t)(ui_end - s52)), MWL_E_MALFORMED,
           "52H longer than its 50H");
    MUTATE(mwl_store_u16be(m + s54 + 4, 0x17), MWL_E_MALFORMED, "54H UID length one too long");
    MUTATE(mwl_store_u16be(m + s54 + 4, 0x15), MWL_E_MALFORMED, "54H UID length one too short");
    MUTATE(mwl_store_u16be(m + s56 + 4, 0x100), MWL_E_MALFORMED, "56H UID past the sub-item");
    MUTATE(mwl_store_u16be(m + s57 + 4, 0x100), MWL_E_MALFORMED, "57H SOP class UID past the sub-item");
    MUTATE(m[s57 + 4 + 2 + 0x19 + 2 + 0x11 + 1] = 0x3b, MWL_E_MALFORMED,
           "57H related list past the sub-item");
    MUTATE(m[s57 + 4 + 2 + 0x19 + 2 + 0x11 + 2 + 1] = 0x1c, MWL_E_MALFORMED, "57H related UID past its list");
    MUTATE(m[s58 + 4 + 4 + 5 + 1] = 7, MWL_E_MALFORMED, "58H secondary field past the sub-item");
    MUTATE(m[s58 + 4 + 4 + 5 + 1] = 5, MWL_E_MALFORMED, "58H bytes left after the secondary field");
    /* presentation context IDs */
    MUTATE(m[ctx1 + 4] = 2, MWL_E_MALFORMED, "even context ID");
    MUTATE(m[ctx1 + 4] = 0, MWL_E_MALFORMED, "context ID 0");
    MUTATE(m[ctx3 + 4] = 1, MWL_E_MALFORMED, "context ID used twice");
    /* missing, duplicate and misplaced items */
    MUTATE(m[app] = 0x11, MWL_E_MALFORMED, "no application context");
    MUTATE((m[ctx1] = 0x22, m[ctx3] = 0x22), MWL_E_MALFORMED, "no presentation context");
    MUTATE(m[ui] = 0x5E, MWL_E_MALFORMED, "no user information");
    MUTATE(m[s51] = 0x5E, MWL_E_MALFORMED, "no maximum length");
    MUTATE(m[s51] = 0x55, MWL_E_MALFORMED, "two 55H sub-items");
    MUTATE(m[ctx1] = 0x21, MWL_E_MALFORMED, "21H item in an RQ");
    MUTATE(m[ctx1] = 0x10, MWL_E_MALFORMED, "two application context items");
    MUTATE(m[ctx1 + 8] = 0x40, MWL_E_MALFORMED, "no abstract syntax");
    MUTATE(m[ctx1 + 8 + 4 + 0x11] = 0x30, MWL_E_MALFORMED, "two abstract syntaxes, no transfer syntax");
    MUTATE(m[ctx3 + 8] = 0x21, MWL_E_MALFORMED, "21H sub-item inside a 20H item");
    /* unknown sub-items are skipped, even where a known one was */
    MUTATE(m[s54] = 0x5A, MWL_OK, "54H turned into unknown 5AH");
    MUTATE(m[s52] = 0xFF, MWL_OK, "52H turned into unknown FFH");
    MUTATE(m[ctx1 + 8 + 4 + 0x11] = 0x41, MWL_E_MALFORMED, "the only 40H turned into unknown 41H");
    /* strings */
    MUTATE(m[12] = 0, MWL_E_MALFORMED, "NUL inside the called AE title");
    MUTATE(m[app + 6] = 0, MWL_E_MALFORMED, "NUL inside a UID");
    MUTATE(memset(m + 10, ' ', 16), MWL_OK, "all-space called AE decodes to \"\"");
#undef MUTATE
    free(m);
    free(v.data);
}

static void test_corrupt_built(void)
{
    char uid[80];
    memset(uid, '1', sizeof uid);

    /* UIDs: 64 bytes is the maximum (PS3.5 9.1), 65 is malformed. */
    uid[64] = '\0';
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, uid, 1);
    size_t ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_OK, "64-byte UID");
    uid[64] = '1';
    uid[65] = '\0';
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, uid, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "65-byte abstract syntax");
    uint8_t uid52[4 + 65] = {0x52, 0, 0, 65};
    memcpy(uid52 + 4, uid, 65);
    tb_simple_rq(uid52, sizeof uid52);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "65-byte implementation class UID");
    tb_simple_rq(uid52, sizeof uid52 - 1);
    mwl_store_u16be(b.d + b.n - 64 - 2, 64);
    expect_status(b.d, b.n, MWL_OK, "64-byte implementation class UID");
    tb_associate_begin(0x01);
    tb_str_item(0x10, uid); /* 65 bytes */
    tb_pctx_rq(1, VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "65-byte application context");

    /* 129 presentation contexts (more than max_contexts = 128). */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    for (int i = 0; i < 129; i++)
        tb_pctx_rq((uint8_t)(2 * (i % 128) + 1), VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_LIMIT, "129 contexts");
    /* 128 distinct ones are fine. */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    for (int i = 0; i < 128; i++)
        tb_pctx_rq((uint8_t)(2 * i + 1), VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_OK, "128 contexts");

    /* 65 transfer syntaxes in one context (max 64). */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, VERIFICATION, 65);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_LIMIT, "65 transfer syntaxes");

    /* 129 role selection sub-items (max_sub_items = 128). */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    for (int i = 0; i < 129; i++)
        tb_put((const uint8_t[]){0x54, 0, 0, 7, 0, 3, '1', '.', '2', 1, 0}, 11);
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_LIMIT, "129 role selections");

    /* Fixed-size sub-items of the wrong size. */
    tb_simple_rq((const uint8_t[]){0x51, 0, 0, 3, 0, 0, 0}, 7); /* second 51H: also a duplicate */
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two 51H");
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_put((const uint8_t[]){0x51, 0, 0, 5, 0, 0, 0x40, 0, 0}, 9);
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "51H of 5 bytes");
    tb_simple_rq((const uint8_t[]){0x53, 0, 0, 2, 0, 1}, 6);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "53H of 2 bytes");
    tb_simple_rq((const uint8_t[]){0x55, 0,   0,   17,  'A', 'B', 'C', 'D', 'E', 'F', 'G',
                                   'H',  'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q'},
                 21);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "55H of 17 bytes");
    tb_simple_rq((const uint8_t[]){0x54, 0, 0, 1, 0}, 5);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "54H of 1 byte");
    tb_simple_rq((const uint8_t[]){0x56, 0, 0, 1, 0}, 5);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "56H of 1 byte");
    tb_simple_rq((const uint8_t[]){0x59, 0, 0, 3, 0, 2, 'x'}, 7);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "59H response past the sub-item");
    tb_simple_rq((const uint8_t[]){0x58, 0, 0, 4, 1, 0, 0, 0}, 8);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "58H without secondary length");
    tb_simple_rq((const uint8_t[]){0x58, 0, 0, 6, 1, 0, 0, 0, 0, 0}, 10);
    expect_status(b.d, b.n, MWL_OK, "58H with empty fields");
    /* 57H with trailing reserved bytes (later sub-item versions) is fine. */
    tb_simple_rq((const uint8_t[]){0x57, 1, 0, 11, 0, 1, '1', 0, 1, '2', 0, 0, 9, 9, 9}, 15);
    expect_status(b.d, b.n, MWL_OK, "57H with trailing reserved bytes");
    /* Duplicates of single-valued sub-items, each one valid on its own. */
    tb_simple_rq((const uint8_t[]){0x51, 0, 0, 4, 0, 0, 0x40, 0}, 8);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two valid 51H");
    tb_simple_rq((const uint8_t[]){0x52, 0, 0, 1, '1', 0x52, 0, 0, 1, '2'}, 10);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two valid 52H");
    tb_simple_rq((const uint8_t[]){0x53, 0, 0, 4, 0, 1, 0, 1, 0x53, 0, 0, 4, 0, 1, 0, 1}, 16);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two valid 53H");
    tb_simple_rq((const uint8_t[]){0x59, 0, 0, 2, 0, 0, 0x59, 0, 0, 2, 0, 0}, 12);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two valid 59H");
    tb_simple_rq((const uint8_t[]){0x54, 0, 0, 5, 0, 1, '1', 1, 0, 0x54, 0, 0, 5, 0, 1, '1', 1, 0}, 18);
    expect_status(b.d, b.n, MWL_OK, "54H twice for the same SOP class (negotiation decides)");
    /* Two abstract syntaxes in one context, with a transfer syntax. */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    size_t pc = tb_item_begin(0x20);
    tb_put((const uint8_t[]){1, 0, 0, 0}, 4);
    tb_str_item(0x30, VERIFICATION);
    tb_str_item(0x30, MWL_FIND);
    tb_str_item(0x40, IMPLICIT_LE);
    tb_item_end(pc);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two abstract syntaxes");
    /* Two application context or user information items. */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "two 10H");
    for (int twice = 0; twice < 2; twice++) {
        tb_associate_begin(0x01);
        tb_str_item(0x10, APP_CONTEXT);
        tb_pctx_rq(1, VERIFICATION, 1);
        for (int i = 0; i <= twice; i++) {
            ui = tb_item_begin(0x50);
            tb_max_length();
            tb_item_end(ui);
        }
        tb_pdu_end();
        expect_status(b.d, b.n, twice ? MWL_E_MALFORMED : MWL_OK, "one or two 50H");
    }
    /* A truncated item header at the end of the user information. */
    tb_simple_rq((const uint8_t[]){0x52, 0}, 2);
    expect_status(b.d, b.n, MWL_E_MALFORMED, "2 stray bytes in 50H");
    /* A 20H item too short for its fixed fields. */
    tb_associate_begin(0x01);
    tb_str_item(0x10, APP_CONTEXT);
    tb_put((const uint8_t[]){0x20, 0, 0, 3, 1, 0, 0}, 7);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "20H of 3 bytes");

    /* A-ASSOCIATE-AC: accepted contexts need a transfer syntax; rejected
     * ones may lack it or carry anything (not tested, PS3.8 9.3.3.2). */
    static const struct {
        uint8_t result;
        const char *ts; /* NULL: no 40H */
        int want;
        const char *decoded;
    } ac_cases[] = {
        {0, IMPLICIT_LE, MWL_OK, IMPLICIT_LE},
        {0, NULL, MWL_E_MALFORMED, NULL},
        {0, "", MWL_E_MALFORMED, NULL},
        {3, NULL, MWL_OK, ""},
        {4, "", MWL_OK, ""},
        {1, EXPLICIT_BE, MWL_OK, EXPLICIT_BE},
        {2, "1111111111111111111111111111111111111111111111111111111111111111111111", MWL_OK, ""},
    };
    for (size_t i = 0; i < sizeof ac_cases / sizeof ac_cases[0]; i++) {
        tb_associate_begin(0x02);
        tb_str_item(0x10, APP_CONTEXT);
        size_t at = tb_item_begin(0x21);
        tb_put((const uint8_t[]){1, 0, ac_cases[i].result, 0}, 4);
        if (ac_cases[i].ts)
            tb_str_item(0x40, ac_cases[i].ts);
        tb_item_end(at);
        ui = tb_item_begin(0x50);
        tb_max_length();
        tb_item_end(ui);
        tb_pdu_end();
        expect_status(b.d, b.n, ac_cases[i].want, "AC context result/transfer syntax");
        if (ac_cases[i].want == MWL_OK) {
            mwl_arena arena;
            mwl_arena_init(&arena, NULL);
            mwl_pdu p;
            if (decode(b.d, b.n, &arena, NULL, &p, NULL) == MWL_OK && p.u.associate_ac.context_count == 1)
                CHECK_EQ_STR(p.u.associate_ac.contexts[0].transfer_syntax, ac_cases[i].decoded);
            mwl_arena_clear(&arena);
        }
    }
    /* A 20H item in an AC is out of place. */
    tb_associate_begin(0x02);
    tb_str_item(0x10, APP_CONTEXT);
    tb_pctx_rq(1, VERIFICATION, 1);
    ui = tb_item_begin(0x50);
    tb_max_length();
    tb_item_end(ui);
    tb_pdu_end();
    expect_status(b.d, b.n, MWL_E_MALFORMED, "20H item in an AC");
}

static void test_corrupt_p_data(void)
{
    static const struct {
        uint8_t bytes[24];
        size_t len;
        int want;
        const char *what;
    } cases[] = {
        {{4, 0, 0, 0, 0, 6, 0, 0, 0, 2, 1, 3}, 12, MWL_OK, "one empty PDV"},
        {{4, 0, 0, 0, 0, 6, 0, 0, 0, 1, 1, 3}, 12, MWL_E_MALFORMED, "PDV length 1"},
        {{4, 0, 0, 0, 0, 11, 0, 0, 0, 1, 1, 0, 0, 0, 2, 1, 3},
         17,
         MWL_E_MALFORMED,
         "PDV length 1, then a PDV"},
        {{4, 0, 0, 0, 0, 6, 0, 0, 0, 0, 1, 3}, 12, MWL_E_MALFORMED, "PDV length 0"},
        {{4, 0, 0, 0, 0, 6, 0, 0, 0, 3, 1, 3}, 12, MWL_E_MALFORMED, "PDV past the PDU"},
        {{4, 0, 0, 0, 0, 6, 0xFF, 0xFF, 0xFF, 0xFF, 1, 3}, 12, MWL_E_MALFORMED, "PDV length 0xFFFFFFFF"},
        {{4, 0, 0, 0, 0, 6, 0, 0, 0, 2, 2, 3}, 12, MWL_E_MALFORMED, "even PDV context ID"},
        {{4, 0, 0, 0, 0, 6, 0, 0, 0, 2, 0, 3}, 12, MWL_E_MALFORMED, "PDV context ID 0"},
        {{4, 0, 0, 0, 0, 9, 0, 0, 0, 2, 1, 3, 0, 0, 0}, 15, MWL_E_MALFORMED, "3 stray bytes after a PDV"},
        {{4, 0, 0, 0, 0, 5, 0, 0, 0, 1, 1}, 11, MWL_E_MALFORMED, "PDU-length 5"},
        {{4, 0, 0, 0, 0, 12, 0, 0, 0, 2, 1, 3, 0, 0, 0, 2, 3, 0xFF}, 18, MWL_OK, "two PDVs, bits 2-7 set"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_status(cases[i].bytes, cases[i].len, cases[i].want, cases[i].what);

    /* Control header bits 2-7 are not checked on receipt (Annex E.2): they
     * are dropped, so the struct only ever holds defined bits. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu p;
    if (decode(cases[10].bytes, cases[10].len, &arena, NULL, &p, NULL) == MWL_OK) {
        CHECK_EQ_INT(p.u.p_data.pdv_count, 2);
        CHECK_EQ_INT(p.u.p_data.pdvs[0].control, 3);
        CHECK_EQ_INT(p.u.p_data.pdvs[1].control, 3);
        CHECK_EQ_INT(p.u.p_data.pdvs[1].context_id, 3);
    }
    mwl_arena_clear(&arena);

    /* More PDVs than max_pdvs. */
    mwl_pdu_limits lim;
    mwl_pdu_limits_init(&lim);
    lim.max_pdvs = 3;
    b.n = 0;
    tb_u8(4);
    tb_u8(0);
    tb_u32(0);
    for (int i = 0; i < 4; i++)
        tb_put((const uint8_t[]){0, 0, 0, 2, 1, 0}, 6);
    tb_pdu_end();
    size_t consumed;
    CHECK_EQ_INT(mwl_pdu_decode(b.d, b.n, &arena, &lim, &p, &consumed, NULL), MWL_E_LIMIT);
    lim.max_pdvs = 4;
    CHECK_EQ_INT(mwl_pdu_decode(b.d, b.n, &arena, &lim, &p, &consumed, NULL), MWL_OK);
    mwl_arena_clear(&arena);
}

/* Limits other than the defaults are honoured. */
static void test_custom_limits(void)
{
    vec v = load_vector("hand_associate_rq_full.hex");
    if (!v.data)
        return;
    static const struct {
        size_t contexts, ts, subs;
        int want;
    } cases[] = {
        {2, 3, 2, MWL_OK},      {1, 3, 2, MWL_E_LIMIT}, /* two contexts */
        {2, 2, 2, MWL_E_LIMIT},                         /* three transfer syntaxes in context 3 */
        {2, 3, 1, MWL_E_LIMIT},                         /* two related SOP classes in 57H */
        {2, 3, 0, MWL_E_LIMIT},                         /* one 54H */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_pdu_limits lim;
        mwl_pdu_limits_init(&lim);
        lim.max_contexts = cases[i].contexts;
        lim.max_transfer_syntaxes = cases[i].ts;
        lim.max_sub_items = cases[i].subs;
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_pdu p;
        size_t consumed;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        CHECK_EQ_INT(mwl_pdu_decode(v.data, v.len, &arena, &lim, &p, &consumed, &diag), cases[i].want);
        if (cases[i].want != MWL_OK)
            CHECK(diag.msg[0] != '\0' && diag.offset > 74 && diag.offset < v.len);
        mwl_arena_clear(&arena);
    }
    free(v.data);
}

/* ---- tests: out of memory ----------------------------------------------- */

/* Runs the decode once to count allocations, then fails the 1st, 2nd, ...
 * (nghttp2 failmalloc). A small chunk size gives every arena allocation a
 * malloc of its own, so each one is failed in turn. ASan checks leaks. */
static void oom_run(const char *file, size_t min_allocations)
{
    vec v = load_vector(file);
    if (!v.data)
        return;
    mwl_mem_failing f;
    mwl_mem_failing_init(&f, 0);
    mwl_arena arena;
    mwl_arena_init(&arena, &f.mem);
    arena.chunk_size = 16;
    mwl_pdu p;
    size_t consumed;
    CHECK_EQ_INT(mwl_pdu_decode(v.data, v.len, &arena, NULL, &p, &consumed, NULL), MWL_OK);
    mwl_arena_clear(&arena);
    size_t total = f.count;
    CHECK(total >= min_allocations);
    for (size_t i = 1; i <= total; i++) {
        mwl_mem_failing_init(&f, i);
        mwl_arena_init(&arena, &f.mem);
        arena.chunk_size = 16;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = mwl_pdu_decode(v.data, v.len, &arena, NULL, &p, &consumed, &diag);
        if (rc != MWL_E_NOMEM)
            fprintf(stderr, "%s: failing allocation %zu of %zu gave %s\n", file, i, total,
                    mwl_status_str(rc));
        CHECK_EQ_INT(rc, MWL_E_NOMEM);
        CHECK(diag.msg[0] != '\0');
        mwl_arena_clear(&arena);
    }
    free(v.data);
}

static void test_oom(void)
{
    /* RQ: 2 arrays + 2 contexts' abstract syntax and TS arrays and 4 TS
     * strings + application context + user info strings and arrays... */
    oom_run("hand_associate_rq_full.hex", 20);
    oom_run("hand_associate_ac_full.hex", 10);
    oom_run("dcmtk_findscu_associate_rq.hex", 7);
    oom_run("hand_p_data_multi.hex", 1);

    /* Encoders report a failed buffer allocation. */
    mwl_pdu rq, ac;
    make_rq_full(&rq);
    make_ac_full(&ac);
    const uint8_t frag[] = {1, 2};
    mwl_pdv pdv = {1, MWL_PDV_LAST, frag, 2};
    mwl_assoc_rj rj = {1, 1, 1};
    for (int which = 0; which < 7; which++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, 1);
        mwl_wbuf w;
        mwl_wbuf_init(&w, &f.mem);
        int rc = MWL_OK;
        switch (which) {
        case 0: rc = mwl_pdu_encode_associate_rq(&rq.u.associate_rq, &w); break;
        case 1: rc = mwl_pdu_encode_associate_ac(&ac.u.associate_ac, &w); break;
        case 2: rc = mwl_pdu_encode_associate_rj(&rj, &w); break;
        case 3: rc = mwl_pdu_encode_release_rq(&w); break;
        case 4: rc = mwl_pdu_encode_release_rp(&w); break;
        case 5: rc = mwl_pdu_encode_abort(0, 0, &w); break;
        case 6: rc = mwl_pdu_encode_p_data(&pdv, 1, &w); break;
        }
        CHECK_EQ_INT(rc, MWL_E_NOMEM);
        mwl_wbuf_clear(&w);
    }
    /* A write limit on the buffer comes back as MWL_E_LIMIT. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    w.limit = 100;
    CHECK_EQ_INT(mwl_pdu_encode_associate_rq(&rq.u.associate_rq, &w), MWL_E_LIMIT);
    mwl_wbuf_clear(&w);
}

/* ---- tests: encoders ---------------------------------------------------- */

static void test_encode_fixed(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_assoc_rj rj = {MWL_RJ_RESULT_TRANSIENT, MWL_RJ_SOURCE_PROVIDER_PRESENTATION,
                       MWL_RJ_PRES_LOCAL_LIMIT_EXCEEDED};
    CHECK_EQ_INT(mwl_pdu_encode_associate_rj(&rj, &w), MWL_OK);
    CHECK_EQ_INT(mwl_pdu_encode_release_rq(&w), MWL_OK);
    CHECK_EQ_INT(mwl_pdu_encode_release_rp(&w), MWL_OK);
    CHECK_EQ_INT(mwl_pdu_encode_abort(MWL_ABORT_SOURCE_PROVIDER, MWL_ABORT_INVALID_PDU_PARAMETER_VALUE, &w),
                 MWL_OK);
    const uint8_t want[] = {
        3, 0, 0, 0, 0, 4, 0, 2, 3, 2, /* RJ transient, presentation, local limit */
        5, 0, 0, 0, 0, 4, 0, 0, 0, 0, /* A-RELEASE-RQ */
        6, 0, 0, 0, 0, 4, 0, 0, 0, 0, /* A-RELEASE-RP */
        7, 0, 0, 0, 0, 4, 0, 0, 2, 6, /* A-ABORT provider, invalid parameter value */
    };
    CHECK_EQ_MEM(w.data, w.len, want, sizeof want);

    /* The encoders append: decode the four PDUs back one after another. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    size_t at = 0, consumed = 0;
    mwl_pdu p;
    const mwl_pdu_type types[] = {MWL_PDU_ASSOCIATE_RJ, MWL_PDU_RELEASE_RQ, MWL_PDU_RELEASE_RP,
                                  MWL_PDU_ABORT};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(mwl_pdu_decode(w.data + at, w.len - at, &arena, NULL, &p, &consumed, NULL), MWL_OK);
        CHECK_EQ_INT(p.type, types[i]);
        at += consumed;
    }
    CHECK_EQ_INT(at, w.len);
    CHECK_EQ_INT(p.u.abort.source, 2);
    CHECK_EQ_INT(p.u.abort.reason, 6);
    mwl_arena_clear(&arena);
    mwl_wbuf_clear(&w);
}

/* Every MWL_E_INVALID leaves the buffer as it was. */
static void expect_invalid_rq(const mwl_pdu *p, const char *what)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_wbuf_put(&w, "xyz", 3);
    int rc = p->type == MWL_PDU_ASSOCIATE_RQ ? mwl_pdu_encode_associate_rq(&p->u.associate_rq, &w)
                                             : mwl_pdu_encode_associate_ac(&p->u.associate_ac, &w);
    if (rc != MWL_E_INVALID)
        fprintf(stderr, "case \"%s\": got %s\n", what, mwl_status_str(rc));
    CHECK_EQ_INT(rc, MWL_E_INVALID);
    CHECK_EQ_INT(w.len, 3);
    CHECK_EQ_INT(w.status, MWL_OK);
    mwl_wbuf_clear(&w);
}

static void test_encode_invalid(void)
{
    char long_uid[70];
    memset(long_uid, '1', sizeof long_uid);
    long_uid[65] = '\0';
    static uint8_t big[70000];

    mwl_pdu p;
    mwl_pctx_rq ctx[2];
    const char *bad_ts[2] = {IMPLICIT_LE, NULL};

#define RQ_CASE(stmt, what)                                                                                  \
    do {                                                                                                     \
        make_rq_full(&p);                                                                                    \
        memcpy(ctx, rq_contexts, sizeof ctx);                                                                \
        p.u.associate_rq.contexts = ctx;                                                                     \
        stmt;                                                                                                \
        expect_invalid_rq(&p, what);                                                                         \
    } while (0)

    RQ_CASE(ctx[0].id = 0, "context ID 0");
    RQ_CASE(ctx[0].id = 4, "even context ID");
    RQ_CASE(ctx[1].id = 1, "context ID twice");
    RQ_CASE(ctx[0].abstract_syntax = long_uid, "65-byte abstract syntax");
    RQ_CASE(ctx[0].abstract_syntax = NULL, "no abstract syntax");
    RQ_CASE(ctx[0].transfer_syntax_count = 0, "no transfer syntax");
    RQ_CASE((ctx[0].transfer_syntaxes = bad_ts, ctx[0].transfer_syntax_count = 2), "NULL transfer syntax");
    RQ_CASE(p.u.associate_rq.context_count = 0, "no context");
    RQ_CASE(p.u.associate_rq.application_context = NULL, "no application context");
    RQ_CASE(p.u.associate_rq.application_context = long_uid, "65-byte application context");
    RQ_CASE(memset(p.u.associate_rq.called_ae, 'A', sizeof p.u.associate_rq.called_ae), "17-byte called AE");
    RQ_CASE(memset(p.u.associate_rq.calling_ae, 'A', sizeof p.u.associate_rq.calling_ae),
            "17-byte calling AE");
    RQ_CASE(p.u.associate_rq.user_info.implementation_class_uid = long_uid, "65-byte implementation UID");
    RQ_CASE(p.u.associate_rq.user_info.implementation_version_name = "12345678901234567", "17-char version");
    RQ_CASE(p.u.associate_rq.user_info.roles = NULL, "NULL role array");
    RQ_CASE(p.u.associate_rq.user_info.user_identity_rq.primary_length = 65536, "65536-byte username");
    RQ_CASE(p.u.associate_rq.user_info.user_identity_rq.primary_field = NULL, "NULL username");
    RQ_CASE((p.u.associate_rq.user_info.user_identity_rq.primary_field = big,
             p.u.associate_rq.user_info.user_identity_rq.primary_length = 65400),
            "user info item over 65535 bytes");
    mwl_ext_negotiation ext = {MWL_FIND, big, 65534};
    RQ_CASE(p.u.associate_rq.user_info.ext_negotiations = &ext, "56H over 65535 bytes");
    mwl_ext_negotiation ext_null = {MWL_FIND, NULL, 3};
    RQ_CASE(p.u.associate_rq.user_info.ext_negotiations = &ext_null, "56H info NULL");
    const char *related_null[1] = {NULL};
    mwl_common_ext_negotiation common_null = {CT_IMAGE, STORAGE_SERVICE, related_null, 1};
    RQ_CASE(p.u.associate_rq.user_info.common_ext_negotiations = &common_null, "57H related UID NULL");
    RQ_CASE((p.u.associate_rq.user_info.has_user_identity_ac = true,
             p.u.associate_rq.user_info.server_response_length = 1),
            "59H response NULL with length 1");
    mwl_role_selection role = {long_uid, 1, 1};
    RQ_CASE(p.u.associate_rq.user_info.roles = &role, "65-byte role UID");
    const char *related[1] = {long_uid};
    mwl_common_ext_negotiation common = {CT_IMAGE, STORAGE_SERVICE, related, 1};
    RQ_CASE(p.u.associate_rq.user_info.common_ext_negotiations = &common, "65-byte related UID");
#undef RQ_CASE

    /* AC: accepted context without a transfer syntax; context ID rules. */
    mwl_pctx_ac actx[3];
#define AC_CASE(stmt, what)                                                                                  \
    do {                                                                                                     \
        make_ac_full(&p);                                                                                    \
        memcpy(actx, ac_contexts, sizeof actx);                                                              \
        p.u.associate_ac.contexts = actx;                                                                    \
        stmt;                                                                                                \
        expect_invalid_rq(&p, what);                                                                         \
    } while (0)
    AC_CASE(actx[0].transfer_syntax = "", "accepted with empty TS");
    AC_CASE(actx[0].transfer_syntax = NULL, "accepted with NULL TS");
    AC_CASE(actx[1].id = 0, "AC context ID 0");
    AC_CASE(actx[1].id = 1, "AC context ID twice");
    AC_CASE(actx[2].transfer_syntax = long_uid, "65-byte TS in a rejected context");
    AC_CASE(p.u.associate_ac.context_count = 0, "AC without contexts");
#undef AC_CASE
    /* A rejected context with a NULL transfer syntax gets an empty 40H. */
    make_ac_full(&p);
    memcpy(actx, ac_contexts, sizeof actx);
    actx[1].transfer_syntax = NULL;
    p.u.associate_ac.contexts = actx;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_associate_ac(&p.u.associate_ac, &w), MWL_OK);
    vec v = load_vector("hand_associate_ac_full.hex");
    CHECK_EQ_MEM(w.data, w.len, v.data, v.len);
    free(v.data);
    mwl_wbuf_clear(&w);

    /* P-DATA: context ID, control bits, empty PDU, NULL data. */
    const uint8_t frag[4] = {1, 2, 3, 4};
    static const struct {
        uint8_t id, control;
        bool null_data;
        size_t count;
    } pd[] = {
        {0, 0, false, 1},    {2, 0, false, 1}, {1, 4, false, 1},
        {1, 0x80, false, 1}, {1, 0, true, 1},  {1, 0, false, 0},
    };
    for (size_t i = 0; i < sizeof pd / sizeof pd[0]; i++) {
        mwl_pdv pdvs[2] = {{1, 0, frag, 4}, {pd[i].id, pd[i].control, pd[i].null_data ? NULL : frag, 4}};
        mwl_wbuf_init(&w, NULL);
        CHECK_EQ_INT(mwl_pdu_encode_p_data(pd[i].count ? pdvs : NULL, pd[i].count ? 2 : 0, &w),
                     MWL_E_INVALID);
        CHECK_EQ_INT(w.len, 0);
        mwl_wbuf_clear(&w);
    }
}

static void test_encode_p_data_and_titles(void)
{
    /* Several PDVs, as the DIMSE layer sends the last command fragment and
     * the first data fragment together (upper-layer.md 7). */
    const uint8_t cmd[6] = {0xA, 0xB, 0xC, 0xD, 0xE, 0xF};
    const uint8_t data[2] = {0x55, 0xAA};
    mwl_pdv pdvs[2] = {{3, MWL_PDV_COMMAND | MWL_PDV_LAST, cmd, 6}, {3, MWL_PDV_LAST, data, 2}};
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_p_data(pdvs, 2, &w), MWL_OK);
    const uint8_t want[] = {4,   0,   0,   0,   0,   20, 0, 0, 0, 8, 3, 3,    0xA,
                            0xB, 0xC, 0xD, 0xE, 0xF, 0,  0, 0, 4, 3, 2, 0x55, 0xAA};
    CHECK_EQ_MEM(w.data, w.len, want, sizeof want);
    mwl_wbuf_clear(&w);

    /* Titles: trimmed, checked for the AE repertoire, echo filled. */
    mwl_assoc_rq rq;
    memset(&rq, 0, sizeof rq);
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(&rq, "  SCP ", "SCU"), MWL_OK);
    CHECK_EQ_STR(rq.called_ae, "SCP");
    CHECK_EQ_STR(rq.calling_ae, "SCU");
    CHECK(memcmp(rq.echo, "SCP             SCU             ", 32) == 0);
    for (int i = 32; i < 64; i++)
        CHECK_EQ_INT(rq.echo[i], 0);
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(&rq, "0123456789ABCDEF", "X"), MWL_OK);
    CHECK_EQ_STR(rq.called_ae, "0123456789ABCDEF");
    static const char *bad[] = {NULL, "", "    ", "0123456789ABCDEFG", "A\\B", "A\tB", "A\x7f", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(mwl_assoc_rq_set_titles(&rq, bad[i], "SCU"), MWL_E_INVALID);
        CHECK_EQ_INT(mwl_assoc_rq_set_titles(&rq, "SCP", bad[i]), MWL_E_INVALID);
    }
    CHECK_EQ_STR(rq.called_ae, "0123456789ABCDEF"); /* unchanged by the failures */
}

/* encode -> decode gives back the struct, for structs with optional parts
 * left out (no 52H/55H/53H, empty user identity fields). */
static void test_encode_decode_minimal(void)
{
    const char *ts[] = {EXPLICIT_LE};
    mwl_pctx_rq ctx = {255, MWL_FIND, ts, 1};
    mwl_pdu want;
    memset(&want, 0, sizeof want);
    want.type = MWL_PDU_ASSOCIATE_RQ;
    mwl_assoc_rq *rq = &want.u.associate_rq;
    rq->protocol_version = 1;
    CHECK_EQ_INT(mwl_assoc_rq_set_titles(rq, "A", "B"), MWL_OK);
    rq->application_context = MWL_APPLICATION_CONTEXT_NAME;
    rq->contexts = &ctx;
    rq->context_count = 1;
    rq->user_info.implementation_class_uid = "";
    rq->user_info.implementation_version_name = "";
    rq->user_info.has_user_identity_rq = true;
    rq->user_info.user_identity_rq.type = 1;
    rq->user_info.user_identity_rq.primary_field = (const uint8_t *)"";
    rq->user_info.user_identity_rq.secondary_field = (const uint8_t *)"";

    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_associate_rq(rq, &w), MWL_OK);
    /* fixed part + 10H (25) + 20H (8 + 26 + 23) + 50H (4 + 8 + 10) */
    CHECK_EQ_INT(w.len, 74 + 25 + 57 + 22);
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_pdu got;
    CHECK_EQ_INT(decode(w.data, w.len, &arena, NULL, &got, NULL), MWL_OK);
    CHECK(pdu_same(&got, &want, true));
    CHECK_EQ_INT(got.u.associate_rq.user_info.max_length, 0); /* 0 = no limit, still sent */
    /* NULL optional strings encode like "" */
    rq->user_info.implementation_class_uid = NULL;
    rq->user_info.implementation_version_name = NULL;
    mwl_wbuf w2;
    mwl_wbuf_init(&w2, NULL);
    CHECK_EQ_INT(mwl_pdu_encode_associate_rq(rq, &w2), MWL_OK);
    CHECK_EQ_MEM(w2.data, w2.len, w.data, w.len);
    mwl_wbuf_clear(&w2);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_limits_and_header);
    RUN_TEST(test_hand_associate_rq);
    RUN_TEST(test_hand_associate_ac);
    RUN_TEST(test_hand_fixed_and_p_data);
    RUN_TEST(test_dcmtk_associate);
    RUN_TEST(test_dcmtk_other);
    RUN_TEST(test_corrupt_headers);
    RUN_TEST(test_corrupt_rq);
    RUN_TEST(test_corrupt_built);
    RUN_TEST(test_corrupt_p_data);
    RUN_TEST(test_custom_limits);
    RUN_TEST(test_oom);
    RUN_TEST(test_encode_fixed);
    RUN_TEST(test_encode_invalid);
    RUN_TEST(test_encode_p_data_and_titles);
    RUN_TEST(test_encode_decode_minimal);
    return check_report("pdu_test");
}
