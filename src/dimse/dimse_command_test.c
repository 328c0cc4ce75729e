/* Command set encode/decode tests (PS3.7 §6.3.1, §9.3): byte-exact vectors,
 * round trips, every strict prefix, and each rule of the decoder. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/dict.h"
#include "dimse/dimse.h"
#include "dimse/dimse_int.h"

/* Vectors laid out one element per line. */
/* clang-format off */
/* dimse.md §3: C-ECHO-RQ, MessageID 1, 68 bytes. */
static const uint8_t echo_rq_1[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x38, 0x00, 0x00, 0x00,     /* (0000,0000) UL 56 */
    0x00, 0x00, 0x02, 0x00, 0x12, 0x00, 0x00, 0x00,                             /* (0000,0002) UI 18 */
    '1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8', '.', '1', '.', '1', 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x30, 0x00,                 /* (0000,0100) 0030H */
    0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,                 /* (0000,0110) 1 */
    0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,                 /* (0000,0800) 0101H */
};

/* C-CANCEL-RQ for MessageID 7 (Table 9.3-5), written out by hand. */
static const uint8_t cancel_rq_7[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x1E, 0x00, 0x00, 0x00,     /* group length 30 */
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0xFF, 0x0F,                 /* CommandField 0FFFH */
    0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00,                 /* responded to 7 */
    0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,                 /* no data set */
};

/* C-FIND-RQ, MWL, MessageID 1234H, priority LOW (Table 9.3-3). */
static const uint8_t find_rq[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x46, 0x00, 0x00, 0x00,     /* group length 70 */
    0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00,                             /* (0000,0002) UI 22 */
    '1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8', '.', '5', '.', '1', '.', '4', '.', '3', '1',
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x00,                 /* CommandField 0020H */
    0x00, 0x00, 0x10, 0x01, 0x02, 0x00, 0x00, 0x00, 0x34, 0x12,                 /* MessageID 1234H */
    0x00, 0x00, 0x00, 0x07, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00,                 /* Priority LOW */
    0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00,                 /* data set follows */
};

/* C-FIND-RSP A900 with OffendingElement (0008,0050),(0040,0100) and
 * ErrorComment "bad key" (Table 9.3-4). */
static const uint8_t find_rsp_a900[] = {
    0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x66, 0x00, 0x00, 0x00,     /* group length 102 */
    0x00, 0x00, 0x02, 0x00, 0x16, 0x00, 0x00, 0x00,                             /* (0000,0002) UI 22 */
    '1', '.', '2', '.', '8', '4', '0', '.', '1', '0', '0', '0', '8', '.', '5', '.', '1', '.', '4', '.', '3', '1',
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x20, 0x80,                 /* CommandField 8020H */
    0x00, 0x00, 0x20, 0x01, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00,                 /* responded to 5 */
    0x00, 0x00, 0x00, 0x08, 0x02, 0x00, 0x00, 0x00, 0x01, 0x01,                 /* no data set */
    0x00, 0x00, 0x00, 0x09, 0x02, 0x00, 0x00, 0x00, 0x00, 0xA9,                 /* Status A900H */
    0x00, 0x00, 0x01, 0x09, 0x08, 0x00, 0x00, 0x00,                             /* (0000,0901) AT 8 */
    0x08, 0x00, 0x50, 0x00, 0x40, 0x00, 0x00, 0x01,
    0x00, 0x00, 0x02, 0x09, 0x08, 0x00, 0x00, 0x00,                             /* (0000,0902) LO 8 */
    'b', 'a', 'd', ' ', 'k', 'e', 'y', ' ',
};
/* clang-format on */

static mwl_arena arena;

static int decode(const uint8_t *p, size_t n, mwl_dimse_command *c, mwl_diag *diag)
{
    mwl_arena_clear(&arena);
    return mwl_dimse_decode_command(p, n, &arena, c, NULL, diag);
}

static bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Field-by-field equality of two decoded commands. */
static bool same_command(const mwl_dimse_command *a, const mwl_dimse_command *b)
{
    if (a->command_field != b->command_field || a->data_set_type != b->data_set_type ||
        a->present != b->present)
        return false;
    unsigned p = a->present;
    if ((p & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID) &&
        !str_eq(a->affected_sop_class_uid, b->affected_sop_class_uid))
        return false;
    if ((p & MWL_DIMSE_HAS_MESSAGE_ID) && a->message_id != b->message_id)
        return false;
    if ((p & MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO) &&
        a->message_id_being_responded_to != b->message_id_being_responded_to)
        return false;
    if ((p & MWL_DIMSE_HAS_PRIORITY) && a->priority != b->priority)
        return false;
    if ((p & MWL_DIMSE_HAS_STATUS) && a->status != b->status)
        return false;
    if (p & MWL_DIMSE_HAS_OFFENDING_ELEMENT) {
        if (a->offending_element_count != b->offending_element_count)
            return false;
        for (size_t i = 0; i < a->offending_element_count; i++)
            if (a->offending_elements[i] != b->offending_elements[i])
                return false;
    }
    if ((p & MWL_DIMSE_HAS_ERROR_COMMENT) && !str_eq(a->error_comment, b->error_comment))
        return false;
    if ((p & MWL_DIMSE_HAS_ERROR_ID) && a->error_id != b->error_id)
        return false;
    if ((p & MWL_DIMSE_HAS_AFFECTED_SOP_INSTANCE_UID) &&
        !str_eq(a->affected_sop_instance_uid, b->affected_sop_instance_uid))
        return false;
    return true;
}

static void test_echo_rq_bytes(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(1, &w), MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, echo_rq_1, sizeof echo_rq_1);

    mwl_dimse_command c;
    CHECK_EQ_INT(decode(echo_rq_1, sizeof echo_rq_1, &c, NULL), MWL_OK);
    CHECK_EQ_INT(c.command_field, MWL_DIMSE_C_ECHO_RQ);
    CHECK_EQ_INT(c.message_id, 1);
    CHECK_EQ_STR(c.affected_sop_class_uid, MWL_UID_Verification);
    CHECK(!mwl_dimse_command_has_dataset(&c));
    CHECK_EQ_INT(c.present, MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID | MWL_DIMSE_HAS_MESSAGE_ID);
    mwl_wbuf_clear(&w);
}

static void test_vectors_exact(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_cancel_rq(7, &w), MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, cancel_rq_7, sizeof cancel_rq_7);

    w.len = 0;
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(0x1234, MWL_UID_ModalityWorklistInformationModelFind,
                                          MWL_DIMSE_PRIORITY_LOW, &w),
                 MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, find_rq, sizeof find_rq);

    w.len = 0;
    const uint32_t offending[] = {MWL_TAG_AccessionNumber, MWL_TAG_ScheduledProcedureStepSequence};
    CHECK_EQ_INT(mwl_dimse_encode_find_rsp(5, MWL_UID_ModalityWorklistInformationModelFind,
                                           MWL_DIMSE_STATUS_IDENTIFIER_MISMATCH, "bad key", offending, 2, &w),
                 MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, find_rsp_a900, sizeof find_rsp_a900);

    mwl_dimse_command c;
    CHECK_EQ_INT(decode(find_rsp_a900, sizeof find_rsp_a900, &c, NULL), MWL_OK);
    CHECK_EQ_INT(c.command_field, MWL_DIMSE_C_FIND_RSP);
    CHECK_EQ_INT(c.status, 0xA900);
    CHECK_EQ_INT(c.message_id_being_responded_to, 5);
    CHECK_EQ_INT(c.offending_element_count, 2);
    CHECK_EQ_INT(c.offending_elements[0], 0x00080050);
    CHECK_EQ_INT(c.offending_elements[1], 0x00400100);
    CHECK_EQ_STR(c.error_comment, "bad key"); /* LO pad space dropped */
    CHECK(!mwl_dimse_command_has_dataset(&c));

    CHECK_EQ_INT(decode(find_rq, sizeof find_rq, &c, NULL), MWL_OK);
    CHECK_EQ_INT(c.command_field, MWL_DIMSE_C_FIND_RQ);
    CHECK_EQ_INT(c.priority, MWL_DIMSE_PRIORITY_LOW);
    CHECK_EQ_INT(c.message_id, 0x1234);
    CHECK(mwl_dimse_command_has_dataset(&c));
    CHECK_EQ_STR(c.affected_sop_class_uid, MWL_UID_ModalityWorklistInformationModelFind);

    CHECK_EQ_INT(decode(cancel_rq_7, sizeof cancel_rq_7, &c, NULL), MWL_OK);
    CHECK_EQ_INT(c.command_field, MWL_DIMSE_C_CANCEL_RQ);
    CHECK_EQ_INT(c.present, MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO);
    CHECK_EQ_INT(c.message_id_being_responded_to, 7);
    mwl_wbuf_clear(&w);
}

/* Encodes with `fn`-like builders, decodes, re-encodes the decoded struct:
 * same fields, same bytes. */
static void roundtrip_bytes(const uint8_t *bytes, size_t len)
{
    mwl_dimse_command c, c2;
    CHECK_EQ_INT(decode(bytes, len, &c, NULL), MWL_OK);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_command(&c, &w), MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, bytes, len);
    mwl_arena a2;
    mwl_arena_init(&a2, NULL);
    CHECK_EQ_INT(mwl_dimse_decode_command(w.data, w.len, &a2, &c2, NULL, NULL), MWL_OK);
    CHECK(same_command(&c, &c2));
    mwl_arena_clear(&a2);
    mwl_wbuf_clear(&w);
}

static void test_roundtrips(void)
{
    roundtrip_bytes(echo_rq_1, sizeof echo_rq_1);
    roundtrip_bytes(cancel_rq_7, sizeof cancel_rq_7);
    roundtrip_bytes(find_rq, sizeof find_rq);
    roundtrip_bytes(find_rsp_a900, sizeof find_rsp_a900);

    static const uint16_t statuses[] = {0x0000, 0xFF00, 0xFF01, 0xFE00, 0xA700, 0xC001, 0x0122};
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        w.len = 0;
        uint16_t st = statuses[i];
        bool failure = mwl_dimse_status_class(st) == MWL_DIMSE_CLASS_FAILURE;
        CHECK_EQ_INT(mwl_dimse_encode_find_rsp(0xFFFF, MWL_UID_ModalityWorklistInformationModelFind, st,
                                               failure ? "database unavailable" : NULL, NULL, 0, &w),
                     MWL_OK);
        mwl_dimse_command c;
        CHECK_EQ_INT(decode(w.data, w.len, &c, NULL), MWL_OK);
        CHECK_EQ_INT(c.status, st);
        CHECK_EQ_INT(c.message_id_being_responded_to, 0xFFFF);
        /* PS3.7 §9.1.2.1.5: an Identifier with Pending only. */
        CHECK_EQ_INT(mwl_dimse_command_has_dataset(&c), mwl_dimse_status_is_pending(st));
        CHECK_EQ_INT((c.present & MWL_DIMSE_HAS_ERROR_COMMENT) != 0, failure);
        if (failure)
            CHECK_EQ_STR(c.error_comment, "database unavailable");
        roundtrip_bytes(w.data, w.len);
    }

    w.len = 0;
    CHECK_EQ_INT(mwl_dimse_encode_echo_rsp(9, MWL_UID_Verification, 0x0000, &w), MWL_OK);
    mwl_dimse_command c;
    CHECK_EQ_INT(decode(w.data, w.len, &c, NULL), MWL_OK);
    CHECK_EQ_INT(c.command_field, MWL_DIMSE_C_ECHO_RSP);
    CHECK_EQ_INT(c.message_id_being_responded_to, 9);
    CHECK_EQ_INT(c.status, 0);
    CHECK_EQ_STR(c.affected_sop_class_uid, MWL_UID_Verification);
    CHECK(!mwl_dimse_command_has_dataset(&c));
    roundtrip_bytes(w.data, w.len);

    /* U(=): the SOP class may be left out of a response. */
    w.len = 0;
    CHECK_EQ_INT(mwl_dimse_encode_echo_rsp(9, NULL, 0x0122, &w), MWL_OK);
    CHECK_EQ_INT(decode(w.data, w.len, &c, NULL), MWL_OK);
    CHECK(!(c.present & MWL_DIMSE_HAS_AFFECTED_SOP_CLASS_UID));
    CHECK_EQ_INT(c.status, 0x0122);

    /* Every field at once, through the generic encoder. */
    const uint32_t tags[] = {0x00100010, 0x00100020, 0x7FE00010};
    mwl_dimse_command all;
    mwl_dimse_command_init(&all);
    all.command_field = MWL_DIMSE_C_STORE_RSP;
    all.data_set_type = MWL_DIMSE_DATASET_NONE;
    all.present = MWL_DIMSE_HAS_ALL;
    all.affected_sop_class_uid = "1.2.3";
    all.message_id = 1;
    all.message_id_being_responded_to = 2;
    all.priority = MWL_DIMSE_PRIORITY_HIGH;
    all.status = 0xB000;
    all.offending_elements = tags;
    all.offending_element_count = 3;
    all.error_comment = "x";
    all.error_id = 42;
    all.affected_sop_instance_uid = "1.2.3.4.5";
    w.len = 0;
    CHECK_EQ_INT(mwl_dimse_encode_command(&all, &w), MWL_OK);
    CHECK_EQ_INT(decode(w.data, w.len, &c, NULL), MWL_OK);
    CHECK(same_command(&all, &c));
    roundtrip_bytes(w.data, w.len);
    mwl_wbuf_clear(&w);
}

/* picohttpparser's "incomplete 1..n": no strict prefix decodes. */
static void prefixes_fail(const uint8_t *p, size_t n)
{
    for (size_t len = 0; len < n; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size, for ASan */
        memcpy(copy, p, len);
        mwl_dimse_command c;
        mwl_diag diag;
        mwl_diag_clear(&diag);
        int rc = decode(len ? copy : NULL, len, &c, &diag);
        CHECK_EQ_INT(rc, MWL_E_MALFORMED);
        CHECK(diag.msg[0] != '\0');
        free(copy);
    }
}

static void test_prefixes(void)
{
    prefixes_fail(echo_rq_1, sizeof echo_rq_1);
    prefixes_fail(cancel_rq_7, sizeof cancel_rq_7);
    prefixes_fail(find_rq, sizeof find_rq);
    prefixes_fail(find_rsp_a900, sizeof find_rsp_a900);
}

/* ---- hand-built command sets for the decoder rules ---------------------- */

typedef struct raw {
    uint8_t b[512];
    size_t n;
} raw;

static void raw_elem(raw *r, uint32_t tag, const void *value, uint32_t len)
{
    mwl_store_u16le(r->b + r->n, MWL_TAG_GROUP(tag));
    mwl_store_u16le(r->b + r->n + 2, MWL_TAG_ELEMENT(tag));
    mwl_store_u32le(r->b + r->n + 4, len);
    r->n += 8;
    if (len != 0xFFFFFFFFu) {
        memcpy(r->b + r->n, value, len);
        r->n += len;
    }
}

static void raw_us(raw *r, uint32_t tag, uint16_t v)
{
    uint8_t b[2];
    mwl_store_u16le(b, v);
    raw_elem(r, tag, b, 2);
}

static void raw_begin(raw *r)
{
    r->n = 0;
    uint8_t zero[4] = {0};
    raw_elem(r, MWL_TAG_CommandGroupLength, zero, 4);
}

static void raw_end(raw *r)
{
    mwl_store_u32le(r->b + 8, (uint32_t)(r->n - 12));
}

static int raw_decode(raw *r, mwl_diag *diag)
{
    mwl_dimse_command c;
    mwl_diag_clear(diag);
    return decode(r->b, r->n, &c, diag);
}

static void test_decoder_rules(void)
{
    raw r;
    mwl_diag diag;

    /* A valid C-ECHO-RSP built by hand: the baseline. */
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_OK);

    /* Group length value wrong by 2. */
    mwl_store_u32le(r.b + 8, (uint32_t)(r.n - 12 + 2));
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_CommandGroupLength);

    /* No group length at all. */
    r.n = 0;
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);

    /* An element outside group 0000. */
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0);
    raw_elem(&r, 0x00080005, "ISO_IR 100", 10);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, 0x00080005);

    /* Out of order, and a duplicate. */
    raw_begin(&r);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_CommandField);
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);

    /* Undefined length. */
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RSP);
    raw_elem(&r, 0x00000101, NULL, 0xFFFFFFFFu);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);

    /* US of the wrong size; AT not a multiple of 4. */
    raw_begin(&r);
    raw_elem(&r, MWL_TAG_CommandField, "\x30\x80\x00\x00", 4);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_CommandField);
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_FIND_RSP);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0xA900);
    raw_elem(&r, MWL_TAG_OffendingElement, "\x08\x00\x50\x00\x10\x00", 6);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_OffendingElement);

    /* UIDs: letters refused, 65 characters refused, 64 accepted, a space
     * pad tolerated. */
    const char *uids[] = {"1.2.abc", "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25",
                          "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.2", "1.2.3 "};
    const int expect[] = {MWL_E_MALFORMED, MWL_E_MALFORMED, MWL_OK, MWL_OK};
    for (size_t i = 0; i < 4; i++) {
        raw_begin(&r);
        raw_elem(&r, MWL_TAG_AffectedSOPClassUID, uids[i], (uint32_t)strlen(uids[i]));
        raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RQ);
        raw_us(&r, MWL_TAG_MessageID, 1);
        raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
        raw_end(&r);
        CHECK_EQ_INT(raw_decode(&r, &diag), expect[i]);
    }
    mwl_dimse_command c;
    CHECK_EQ_INT(decode(r.b, r.n, &c, NULL), MWL_OK);
    CHECK_EQ_STR(c.affected_sop_class_uid, "1.2.3");

    /* Missing CommandField; missing CommandDataSetType. */
    raw_begin(&r);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_CommandField);
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_CANCEL_RQ);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_end(&r);
    CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_CommandDataSetType);

    /* Required elements per command (PS3.7 Tables 9.3-3/4/5/12). */
    struct {
        uint16_t field;
        uint32_t omit;
    } cases[] = {
        {MWL_DIMSE_C_ECHO_RQ, MWL_TAG_MessageID},
        {MWL_DIMSE_C_ECHO_RQ, MWL_TAG_AffectedSOPClassUID},
        {MWL_DIMSE_C_FIND_RQ, MWL_TAG_Priority},
        {MWL_DIMSE_C_FIND_RQ, MWL_TAG_AffectedSOPClassUID},
        {MWL_DIMSE_C_FIND_RQ, MWL_TAG_MessageID},
        {MWL_DIMSE_C_FIND_RSP, MWL_TAG_Status},
        {MWL_DIMSE_C_FIND_RSP, MWL_TAG_MessageIDBeingRespondedTo},
        {MWL_DIMSE_C_ECHO_RSP, MWL_TAG_Status},
        {MWL_DIMSE_C_CANCEL_RQ, MWL_TAG_MessageIDBeingRespondedTo},
        {MWL_DIMSE_C_STORE_RQ, MWL_TAG_MessageID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Start from a command set that has every field, then drop one. */
        raw_begin(&r);
        uint32_t tags[] = {MWL_TAG_AffectedSOPClassUID,
                           MWL_TAG_CommandField,
                           MWL_TAG_MessageID,
                           MWL_TAG_MessageIDBeingRespondedTo,
                           MWL_TAG_Priority,
                           MWL_TAG_CommandDataSetType,
                           MWL_TAG_Status};
        for (size_t t = 0; t < sizeof tags / sizeof tags[0]; t++) {
            if (tags[t] == cases[i].omit)
                continue;
            if (tags[t] == MWL_TAG_AffectedSOPClassUID)
                raw_elem(&r, tags[t], "1.2.840.10008.1.1\0", 18);
            else if (tags[t] == MWL_TAG_CommandField)
                raw_us(&r, tags[t], cases[i].field);
            else if (tags[t] == MWL_TAG_CommandDataSetType)
                raw_us(&r, tags[t], 0x0101);
            else
                raw_us(&r, tags[t], 1);
        }
        raw_end(&r);
        CHECK_EQ_INT(raw_decode(&r, &diag), MWL_E_MALFORMED);
        CHECK_EQ_INT(diag.tag, cases[i].omit);
    }

    /* ErrorComment: the C string ends at a NUL, then spaces are trimmed, so
     * it re-encodes to itself (found by fuzz_dimse). */
    raw_begin(&r);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_FIND_RSP);
    raw_us(&r, MWL_TAG_MessageIDBeingRespondedTo, 3);
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_us(&r, MWL_TAG_Status, 0xC000);
    raw_elem(&r, MWL_TAG_ErrorComment, "  bad ? \0\0 \x01", 12);
    raw_end(&r);
    mwl_dimse_command ec;
    CHECK_EQ_INT(decode(r.b, r.n, &ec, NULL), MWL_OK);
    CHECK_EQ_STR(ec.error_comment, "bad ?");

    /* Empty input. */
    CHECK_EQ_INT(decode(NULL, 0, &c, &diag), MWL_E_MALFORMED);
}

/* Retired elements (PS3.7 Annex E.2) are accepted and ignored, and the raw
 * command set keeps them, with dictionary VRs, in order. */
static void test_retired_and_raw(void)
{
    raw r;
    raw_begin(&r);
    uint8_t ul[4];
    mwl_store_u32le(ul, 1234);
    raw_elem(&r, 0x00000001, ul, 4); /* CommandLengthToEnd (retired) */
    raw_elem(&r, MWL_TAG_AffectedSOPClassUID, "1.2.840.10008.1.1\0", 18);
    raw_us(&r, MWL_TAG_CommandField, MWL_DIMSE_C_ECHO_RQ);
    raw_us(&r, MWL_TAG_MessageID, 77);
    raw_elem(&r, 0x00000600, "DEST_AE ", 8); /* MoveDestination */
    raw_us(&r, MWL_TAG_CommandDataSetType, 0x0101);
    raw_elem(&r, 0x00004000, "hello ", 6); /* retired DialogReceiver-era element */
    raw_end(&r);

    mwl_arena_clear(&arena);
    mwl_dimse_command c;
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(mwl_dimse_decode_command(r.b, r.n, &arena, &c, &ds, NULL), MWL_OK);
    CHECK_EQ_INT(c.message_id, 77);
    CHECK(ds != NULL);
    if (ds) {
        CHECK_EQ_INT(mwl_ds_count(ds), 8);
        const mwl_elem *e = mwl_ds_find(ds, 0x00000600);
        CHECK(e && e->vr == MWL_VR_AE && e->length == 8);
        e = mwl_ds_find(ds, MWL_TAG_CommandField);
        CHECK(e && e->vr == MWL_VR_US && e->length == 2);
        e = mwl_ds_find(ds, MWL_TAG_CommandGroupLength);
        CHECK(e && e->vr == MWL_VR_UL);
        for (size_t i = 1; i < mwl_ds_count(ds); i++)
            CHECK(mwl_ds_at(ds, i - 1)->tag < mwl_ds_at(ds, i)->tag);
    }
    /* Re-encoding keeps what mwl understands and drops the rest. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_dimse_encode_command(&c, &w), MWL_OK);
    mwl_dimse_command c2;
    mwl_arena a2;
    mwl_arena_init(&a2, NULL);
    CHECK_EQ_INT(mwl_dimse_decode_command(w.data, w.len, &a2, &c2, NULL, NULL), MWL_OK);
    CHECK(same_command(&c, &c2));
    CHECK(w.len < r.n);
    mwl_arena_clear(&a2);
    mwl_wbuf_clear(&w);
}

static void test_encoder_checks(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_dimse_command c;

    /* Missing required field: nothing appended. */
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_FIND_RSP;
    c.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO;
    CHECK_EQ_INT(mwl_dimse_encode_command(&c, &w), MWL_E_INVALID);
    CHECK_EQ_INT(w.len, 0);

    /* Bad UIDs. */
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(1, "1.2.x", 0, &w), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(1, NULL, 0, &w), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(1, "1.2.3", 3, &w), MWL_E_INVALID); /* no such priority */
    CHECK_EQ_INT(mwl_dimse_encode_find_rq(
                     1, "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25", 0, &w),
                 MWL_E_INVALID);
    CHECK_EQ_INT(w.len, 0);

    /* Unknown present bits; offending list without storage. */
    mwl_dimse_command_init(&c);
    c.command_field = MWL_DIMSE_C_CANCEL_RQ;
    c.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | (1u << 20);
    CHECK_EQ_INT(mwl_dimse_encode_command(&c, &w), MWL_E_INVALID);
    c.present = MWL_DIMSE_HAS_MESSAGE_ID_RESPONDED_TO | MWL_DIMSE_HAS_OFFENDING_ELEMENT;
    c.offending_element_count = 2;
    CHECK_EQ_INT(mwl_dimse_encode_command(&c, &w), MWL_E_INVALID);
    CHECK_EQ_INT(w.len, 0);

    /* Error comment / offending element only with failures and warnings. */
    CHECK_EQ_INT(mwl_dimse_encode_find_rsp(1, NULL, 0xFF00, "x", NULL, 0, &w), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_dimse_encode_find_rsp(1, NULL, 0x0000, "x", NULL, 0, &w), MWL_E_INVALID);
    const uint32_t tag = MWL_TAG_PatientName;
    CHECK_EQ_INT(mwl_dimse_encode_find_rsp(1, NULL, 0xFE00, NULL, &tag, 1, &w), MWL_E_INVALID);
    CHECK_EQ_INT(w.len, 0);

    /* A long comment with a backslash and a newline: cut to 64 characters
     * of the default repertoire, never refused. */
    char longtext[200];
    memset(longtext, 'a', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    longtext[3] = '\\';
    longtext[5] = '\n';
    CHECK_EQ_INT(mwl_dimse_encode_find_rsp(1, NULL, 0xC001, longtext, NULL, 0, &w), MWL_OK);
    mwl_dimse_command d;
    CHECK_EQ_INT(decode(w.data, w.len, &d, NULL), MWL_OK);
    CHECK_EQ_INT(strlen(d.error_comment), 64);
    CHECK_EQ_INT(d.error_comment[3], '?');
    CHECK_EQ_INT(d.error_comment[5], '?');
    CHECK_EQ_INT(d.error_comment[63], 'a');

    /* A sticky error in the output buffer is reported. */
    mwl_wbuf_clear(&w);
    mwl_mem_failing f;
    mwl_mem_failing_init(&f, 1);
    mwl_wbuf_init(&w, &f.mem);
    CHECK_EQ_INT(mwl_dimse_encode_echo_rq(1, &w), MWL_E_NOMEM);
    mwl_wbuf_clear(&w);
}

static void test_names(void)
{
    CHECK_EQ_STR(mwl_dimse_command_name(0x0020), "C-FIND-RQ");
    CHECK_EQ_STR(mwl_dimse_command_name(0x8020), "C-FIND-RSP");
    CHECK_EQ_STR(mwl_dimse_command_name(0x0FFF), "C-CANCEL-RQ");
    CHECK_EQ_STR(mwl_dimse_command_name(0x8030), "C-ECHO-RSP");
    CHECK_EQ_STR(mwl_dimse_command_name(0x8FFF), "unknown");
    CHECK(mwl_dimse_is_response(0x8001));
    CHECK(!mwl_dimse_is_response(0x0FFF));
}

static void test_scan(void)
{
    uint16_t v = 0;
    CHECK(mwl_dimse_scan_u16(find_rq, sizeof find_rq, MWL_TAG_CommandDataSetType, &v));
    CHECK_EQ_INT(v, 0x0001);
    CHECK(mwl_dimse_scan_u16(cancel_rq_7, sizeof cancel_rq_7, MWL_TAG_CommandDataSetType, &v));
    CHECK_EQ_INT(v, 0x0101);
    CHECK(!mwl_dimse_scan_u16(cancel_rq_7, sizeof cancel_rq_7, MWL_TAG_Status, &v));
    CHECK(!mwl_dimse_scan_u16(cancel_rq_7, sizeof cancel_rq_7 - 1, MWL_TAG_CommandDataSetType, &v));
}

int main(void)
{
    mwl_arena_init(&arena, NULL);
    RUN_TEST(test_echo_rq_bytes);
    RUN_TEST(test_vectors_exact);
    RUN_TEST(test_roundtrips);
    RUN_TEST(test_prefixes);
    RUN_TEST(test_decoder_rules);
    RUN_TEST(test_retired_and_raw);
    RUN_TEST(test_encoder_checks);
    RUN_TEST(test_names);
    RUN_TEST(test_scan);
    mwl_arena_clear(&arena);
    return check_report("dimse_command_test");
}
