/* Tests for dicom/json_decode.c (PS3.18 F.2 in): every VR family in, as
 * the value bytes it gives and as it encodes again; empty values, PN
 * groups, numbers as strings, the limits, the character set in both modes,
 * the array form, every error with the tag it names, and every allocation
 * failing in turn.
 *
 * With file arguments it is also the round-trip check of
 * tests/integration/json_dcmtk.py: each Part 10 file is encoded to JSON,
 * decoded back (in both character set modes) and compared element by
 * element (tests/harness/ds_equiv.h). */
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "check.h"
#include "dicom/codec.h"
#include "dicom/json.h"
#include "ds_equiv.h"

static int decode(const char *json, mwl_arena *arena, const mwl_json_decode_options *opt, mwl_ds **out,
                  mwl_diag *diag)
{
    return mwl_ds_decode_json(json, strlen(json), arena, opt, out, diag);
}

static char *encode(const mwl_ds *ds)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    int rc = mwl_ds_encode_json(ds, NULL, &w, NULL);
    CHECK_EQ_INT(rc, MWL_OK);
    char *s = malloc(w.len + 1);
    memcpy(s, w.data ? (const char *)w.data : "", w.len);
    s[w.len] = '\0';
    mwl_wbuf_clear(&w);
    return s;
}

/* Decodes `json` and checks that it encodes to `want`. */
static void expect_again(const char *json, const char *want)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = NULL;
    mwl_diag diag;
    int rc = decode(json, &arena, NULL, &ds, &diag);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc == MWL_OK) {
        char *got = encode(ds);
        CHECK_EQ_STR(got, want);
        free(got);
    } else {
        fprintf(stderr, "  %s: %s\n", json, diag.msg);
    }
    mwl_arena_clear(&arena);
}

/* Decodes `json` and checks the stored bytes of `tag`. */
static void expect_bytes(const char *json, uint32_t tag, mwl_vr vr, const void *bytes, size_t len)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = NULL;
    mwl_diag diag;
    int rc = decode(json, &arena, NULL, &ds, &diag);
    CHECK_EQ_INT(rc, MWL_OK);
    const mwl_elem *e = rc == MWL_OK ? mwl_ds_find(ds, tag) : NULL;
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_INT(e->vr, vr);
        CHECK_EQ_MEM(e->value, e->length, bytes, len);
    } else {
        fprintf(stderr, "  %s: %s\n", json, diag.msg);
    }
    mwl_arena_clear(&arena);
}

static void test_strings(void)
{
    /* Padding to even length with the VR's byte; null is an empty value. */
    expect_bytes("{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"P1\",null,\"X\"]}}", MWL_TAG_PatientID, MWL_VR_LO,
                 "P1\\\\X ", 6);
    expect_bytes("{\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]}}", MWL_TAG(0x0020, 0x000D), MWL_VR_UI,
                 "1.2.3\0", 6);
    /* No Value, an empty array, [""] and [null]: zero-length. */
    static const char *const empties[] = {
        "{\"00080050\":{\"vr\":\"SH\"}}",
        "{\"00080050\":{\"vr\":\"SH\",\"Value\":[]}}",
        "{\"00080050\":{\"vr\":\"SH\",\"Value\":[\"\"]}}",
        "{\"00080050\":{\"vr\":\"SH\",\"Value\":[null]}}",
    };
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++)
        expect_bytes(empties[i], MWL_TAG(0x0008, 0x0050), MWL_VR_SH, "", 0);
    /* Text VRs keep '\' and leading spaces; TAB CR LF FF are allowed there. */
    expect_bytes("{\"00400400\":{\"vr\":\"LT\",\"Value\":[\"  a\\\\b\\r\\n\\t\"]}}", MWL_TAG(0x0040, 0x0400),
                 MWL_VR_LT, "  a\\b\r\n\t", 8);
    /* Keys in lower case; attributes in any order come out in tag order. */
    expect_again(
        "{\"0040a30a\":{\"vr\":\"DS\",\"Value\":[1]},\"00080060\":{\"vr\":\"CS\",\"Value\":[\"MR\"]}}",
        "{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"MR\"]},\"0040A30A\":{\"vr\":\"DS\",\"Value\":[1]}}");
}

static void test_person_names(void)
{
    /* Groups joined with '=', trailing empty ones dropped. */
    expect_bytes("{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A^B\",\"Phonetic\":\"P\"},"
                 "{\"Ideographic\":\"I\"},{},{\"Alphabetic\":\"C\",\"Ideographic\":\"\"}]}}",
                 MWL_TAG_PatientName, MWL_VR_PN, "A^B==P\\=I\\\\C", 12);
    /* A plain string is taken whole. */
    expect_bytes("{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"Doe^J=D\"]}}", MWL_TAG_PatientName, MWL_VR_PN,
                 "Doe^J=D ", 8);
}

static void test_numbers(void)
{
    /* IS and DS: numbers and strings, trimmed; DS in the shortest form. */
    expect_again("{\"00081160\":{\"vr\":\"IS\",\"Value\":[7,\" -12 \",\"+5\",1e3,null]},"
                 "\"00101030\":{\"vr\":\"DS\",\"Value\":[72.50,\"007.5\",1e300,0.1,1000,-0.0,"
                 "12345678901234567,0.30000000000000004,\"1E5\"]}}",
                 "{\"00081160\":{\"vr\":\"IS\",\"Value\":[7,-12,5,1000,null]},"
                 "\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5,7.5,1e+300,0.1,1000,0,"
                 "1.2345678901e+16,0.3,1E5]}}");
    expect_bytes("{\"00101030\":{\"vr\":\"DS\",\"Value\":[1000,0.30000000000000004,1e-7]}}",
                 MWL_TAG_PatientWeight, MWL_VR_DS, "1000\\0.3\\1e-07", 14);
    /* Binary numbers, little-endian; reals with integral values accepted. */
    static const uint8_t us[] = {4, 0, 0xff, 0xff};
    expect_bytes("{\"001021C0\":{\"vr\":\"US\",\"Value\":[4,65535.0]}}", MWL_TAG(0x0010, 0x21C0), MWL_VR_US,
                 us, sizeof us);
    static const uint8_t ss[] = {0x00, 0x80, 0xff, 0x7f};
    expect_bytes("{\"00189219\":{\"vr\":\"SS\",\"Value\":[-32768,32767]}}", MWL_TAG(0x0018, 0x9219),
                 MWL_VR_SS, ss, sizeof ss);
    static const uint8_t ul[] = {0xff, 0xff, 0xff, 0xff};
    expect_bytes("{\"00189220\":{\"vr\":\"UL\",\"Value\":[4294967295]}}", MWL_TAG(0x0018, 0x9220), MWL_VR_UL,
                 ul, sizeof ul);
    static const uint8_t sl[] = {0x00, 0x00, 0x00, 0x80};
    expect_bytes("{\"00189220\":{\"vr\":\"SL\",\"Value\":[-2147483648]}}", MWL_TAG(0x0018, 0x9220), MWL_VR_SL,
                 sl, sizeof sl);
    static const uint8_t fl[] = {0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0xc0, 0x7f};
    expect_bytes("{\"00189221\":{\"vr\":\"FL\",\"Value\":[1.5,\"NaN\"]}}", MWL_TAG(0x0018, 0x9221), MWL_VR_FL,
                 fl, sizeof fl);
    static const uint8_t fd[] = {0, 0, 0, 0, 0, 0, 0x02, 0xc0, 0, 0, 0, 0, 0, 0, 0xf0, 0xff};
    expect_bytes("{\"00189222\":{\"vr\":\"FD\",\"Value\":[-2.25,\"-Infinity\"]}}", MWL_TAG(0x0018, 0x9222),
                 MWL_VR_FD, fd, sizeof fd);
    static const uint8_t uv[] = {1, 0, 0, 0, 0, 0, 0x20, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_bytes("{\"00189223\":{\"vr\":\"UV\",\"Value\":[\"9007199254740993\",\"18446744073709551615\"]}}",
                 MWL_TAG(0x0018, 0x9223), MWL_VR_UV, uv, sizeof uv);
    static const uint8_t sv[] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_bytes("{\"00189224\":{\"vr\":\"SV\",\"Value\":[\"-9223372036854775808\",-2]}}",
                 MWL_TAG(0x0018, 0x9224), MWL_VR_SV, sv, sizeof sv);
    static const uint8_t at[] = {0x10, 0x00, 0x20, 0x00, 0x40, 0x00, 0x00, 0x01};
    expect_bytes("{\"00209165\":{\"vr\":\"AT\",\"Value\":[\"00100020\",\"00400100\"]}}",
                 MWL_TAG(0x0020, 0x9165), MWL_VR_AT, at, sizeof at);
}

static void test_binary_and_sequences(void)
{
    expect_bytes("{\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":\"TWFu/w==\"}}", MWL_TAG(0x0009, 0x1001),
                 MWL_VR_OB, "Man\xff", 4);
    expect_bytes("{\"00091001\":{\"vr\":\"UN\",\"InlineBinary\":[\"TWFu\"]}}", MWL_TAG(0x0009, 0x1001),
                 MWL_VR_UN, "Man", 3);
    expect_bytes("{\"00091002\":{\"vr\":\"OW\"}}", MWL_TAG(0x0009, 0x1002), MWL_VR_OW, "", 0);
    /* Group lengths and file meta elements are dropped. */
    expect_again("{\"00020010\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.1.2.1\"]},"
                 "\"00100000\":{\"vr\":\"UL\",\"Value\":[12]},"
                 "\"00081110\":{\"vr\":\"SQ\"},"
                 "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00400008\":{\"vr\":\"SQ\",\"Value\":["
                 "{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"X1\"]}},{}]}},{}]}}",
                 "{\"00081110\":{\"vr\":\"SQ\"},"
                 "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00400008\":{\"vr\":\"SQ\",\"Value\":["
                 "{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"X1\"]}},{}]}},{}]}}");
    /* Items know their parent (for the inherited character set). */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(decode("{\"00400100\":{\"vr\":\"SQ\",\"Value\":[{}]}}", &arena, NULL, &ds, NULL), MWL_OK);
    const mwl_elem *seq = ds ? mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence) : NULL;
    CHECK(seq && seq->item_count == 1 && mwl_ds_parent(seq->items[0]) == ds);
    mwl_arena_clear(&arena);
}

static void test_charset(void)
{
    /* Non-ASCII text: ISO_IR 192, whatever the JSON said, items' own
     * (0008,0005) removed. */
    const char *latin = "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]},"
                        "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"M\xc3\xbcller\"}]},"
                        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00080005\":{\"vr\":\"CS\",\"Value\":"
                        "[\"ISO_IR 100\"]},\"00400007\":{\"vr\":\"LO\",\"Value\":[\"Kn\xc3\xa9\"]}}]}}";
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(decode(latin, &arena, NULL, &ds, NULL), MWL_OK);
    char cs[32] = "";
    CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_SpecificCharacterSet, 0, cs, sizeof cs), MWL_OK);
    CHECK_EQ_STR(cs, "ISO_IR 192");
    const mwl_elem *pn = mwl_ds_find(ds, MWL_TAG_PatientName);
    CHECK(pn != NULL);
    if (pn)
        CHECK_EQ_MEM(pn->value, pn->length, "M\xc3\xbcller ", 8);
    const mwl_elem *seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    CHECK(seq && seq->item_count == 1 && !mwl_ds_find(seq->items[0], MWL_TAG_SpecificCharacterSet));

    /* keep_charset: re-encoded into the JSON's set. */
    mwl_json_decode_options opt;
    mwl_json_decode_options_init(&opt);
    opt.keep_charset = true;
    CHECK_EQ_INT(decode(latin, &arena, &opt, &ds, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_SpecificCharacterSet, 0, cs, sizeof cs), MWL_OK);
    CHECK_EQ_STR(cs, "ISO_IR 100");
    pn = mwl_ds_find(ds, MWL_TAG_PatientName);
    CHECK(pn != NULL);
    if (pn)
        CHECK_EQ_MEM(pn->value, pn->length, "M\xfcller", 6);
    seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    const mwl_elem *desc =
        seq && seq->item_count ? mwl_ds_find(seq->items[0], MWL_TAG(0x0040, 0x0007)) : NULL;
    CHECK(desc != NULL);
    if (desc)
        CHECK_EQ_MEM(desc->value, desc->length, "Kn\xe9 ", 4);

    /* ... and without a (0008,0005), or when it is UTF-8 already. */
    CHECK_EQ_INT(
        decode("{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"\xe5\xb1\xb1\"]}}", &arena, &opt, &ds, NULL),
        MWL_OK);
    CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_SpecificCharacterSet, 0, cs, sizeof cs), MWL_OK);
    CHECK_EQ_STR(cs, "ISO_IR 192");

    /* ASCII only: (0008,0005) kept as given, in items too. */
    CHECK_EQ_INT(decode("{\"00080005\":{\"vr\":\"CS\",\"Value\":[null,\"ISO 2022 IR 87\"]},"
                        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00080005\":{\"vr\":\"CS\",\"Value\":"
                        "[\"ISO_IR 100\"]}}]}}",
                        &arena, NULL, &ds, NULL),
                 MWL_OK);
    CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_SpecificCharacterSet, 1, cs, sizeof cs), MWL_OK);
    CHECK_EQ_STR(cs, "ISO 2022 IR 87");
    seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    CHECK(seq && seq->item_count == 1 && mwl_ds_find(seq->items[0], MWL_TAG_SpecificCharacterSet));

    /* keep_charset errors: a character the set lacks, an unknown set. */
    mwl_diag diag;
    CHECK_EQ_INT(decode("{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]},"
                        "\"00100010\":{\"vr\":\"PN\",\"Value\":[\"\xe5\xb1\xb1\"]}}",
                        &arena, &opt, &ds, &diag),
                 MWL_E_CHARSET);
    CHECK_EQ_INT(diag.tag, MWL_TAG_PatientName);
    CHECK_EQ_INT(decode("{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 999\"]},"
                        "\"00100010\":{\"vr\":\"PN\",\"Value\":[\"\xc3\xa9\"]}}",
                        &arena, &opt, &ds, &diag),
                 MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(diag.tag, MWL_TAG_SpecificCharacterSet);
    mwl_arena_clear(&arena);
}

typedef struct bad_case {
    const char *json;
    int rc;
    uint32_t tag;
    const char *msg; /* a part of diag.msg */
} bad_case;

static void test_errors(void)
{
    static const bad_case cases[] = {
        /* JSON itself */
        {"", MWL_E_MALFORMED, 0, "JSON line"},
        {"{\"00100020\":{\"vr\":\"LO\"}", MWL_E_MALFORMED, 0, "JSON line 1"},
        {"{\"00100020\":{\"vr\":\"LO\"},\"00100020\":{\"vr\":\"LO\"}}", MWL_E_MALFORMED, 0, "duplicate"},
        {"{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"a\\u0000b\"]}}", MWL_E_MALFORMED, 0, "JSON"},
        {"[]", MWL_E_MALFORMED, 0, "expected an object"},
        /* keys */
        {"{\"PatientID\":{\"vr\":\"LO\"}}", MWL_E_MALFORMED, 0, "\"PatientID\" is not a tag"},
        {"{\"0010002\":{\"vr\":\"LO\"}}", MWL_E_MALFORMED, 0, "not a tag"},
        {"{\"0010002G\":{\"vr\":\"LO\"}}", MWL_E_MALFORMED, 0, "not a tag"},
        {"{\"0010002a\":{\"vr\":\"LO\"},\"0010002A\":{\"vr\":\"LO\"}}", MWL_E_MALFORMED,
         MWL_TAG(0x0010, 0x002A), "given twice"},
        {"{\"00000900\":{\"vr\":\"US\"}}", MWL_E_MALFORMED, MWL_TAG(0x0000, 0x0900), "group 0000"},
        {"{\"00010010\":{\"vr\":\"LO\"}}", MWL_E_MALFORMED, MWL_TAG(0x0001, 0x0010), "not allowed"},
        {"{\"FFFEE000\":{\"vr\":\"SQ\"}}", MWL_E_MALFORMED, MWL_TAG_ITEM, "item"},
        /* the attribute object */
        {"{\"00100020\":\"P1\"}", MWL_E_MALFORMED, MWL_TAG_PatientID, "expected an object"},
        {"{\"00100020\":{\"Value\":[\"P1\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientID, "no \"vr\""},
        {"{\"00100020\":{\"vr\":\"XX\"}}", MWL_E_MALFORMED, MWL_TAG_PatientID, "\"XX\" is not a VR"},
        {"{\"00100020\":{\"vr\":\"lo\"}}", MWL_E_MALFORMED, MWL_TAG_PatientID, "is not a VR"},
        {"{\"00100020\":{\"vr\":7}}", MWL_E_MALFORMED, MWL_TAG_PatientID, "a number is not a VR"},
        {"{\"00100020\":{\"vr\":\"LO\",\"value\":[\"P1\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientID,
         "unexpected member \"value\""},
        {"{\"00100020\":{\"vr\":\"LO\",\"Value\":\"P1\"}}", MWL_E_MALFORMED, MWL_TAG_PatientID,
         "expected an array"},
        {"{\"00100020\":{\"vr\":\"LO\",\"BulkDataURI\":\"http://x/1\"}}", MWL_E_UNSUPPORTED,
         MWL_TAG_PatientID, "BulkDataURI"},
        {"{\"00091001\":{\"vr\":\"OB\",\"Value\":[1],\"InlineBinary\":\"AA==\"}}", MWL_E_MALFORMED,
         MWL_TAG(0x0009, 0x1001), "both"},
        {"{\"00100020\":{\"vr\":\"LO\",\"InlineBinary\":\"AA==\"}}", MWL_E_MALFORMED, MWL_TAG_PatientID,
         "not InlineBinary"},
        {"{\"00091001\":{\"vr\":\"OB\",\"Value\":[1]}}", MWL_E_MALFORMED, MWL_TAG(0x0009, 0x1001),
         "not Value"},
        {"{\"00400100\":{\"vr\":\"LO\",\"Value\":[\"x\"]}}", MWL_E_MALFORMED,
         MWL_TAG_ScheduledProcedureStepSequence, "ScheduledProcedureStepSequence is SQ"},
        {"{\"00100020\":{\"vr\":\"SQ\"}}", MWL_E_MALFORMED, MWL_TAG_PatientID, "VR SQ"},
        /* the character set: known, even for ASCII text */
        {"{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"19700215\"]}}", MWL_E_UNSUPPORTED,
         MWL_TAG_SpecificCharacterSet, "19700215"},
        {"{\"00080005\":{\"vr\":\"LO\",\"Value\":[\"ISO_IR 100\"]}}", MWL_E_MALFORMED,
         MWL_TAG_SpecificCharacterSet, "must be CS"},
        /* strings */
        {"{\"00100020\":{\"vr\":\"LO\",\"Value\":[7]}}", MWL_E_MALFORMED, MWL_TAG_PatientID,
         "Value[0] is a number, expected a string"},
        {"{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"a\\\\b\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientID, "'\\'"},
        {"{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"a\\nb\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientID,
         "control character U+000A"},
        {"{\"00080060\":{\"vr\":\"CS\",\"Value\":[\"\xc3\xa9\"]}}", MWL_E_MALFORMED, MWL_TAG_Modality,
         "not ASCII"},
        {"{\"00400400\":{\"vr\":\"LT\",\"Value\":[\"a\",\"b\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0040, 0x0400),
         "one value"},
        {"{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A=B\"}]}}", MWL_E_MALFORMED,
         MWL_TAG_PatientName, "'='"},
        {"{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"alphabetic\":\"A\"}]}}", MWL_E_MALFORMED,
         MWL_TAG_PatientName, "\"alphabetic\""},
        {"{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":1}]}}", MWL_E_MALFORMED,
         MWL_TAG_PatientName, "Alphabetic is a number"},
        {"{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A=B=C=D\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientName,
         "more than 3"},
        {"{\"00100010\":{\"vr\":\"PN\",\"Value\":[[]]}}", MWL_E_MALFORMED, MWL_TAG_PatientName, "an array"},
        /* IS, DS */
        {"{\"00081160\":{\"vr\":\"IS\",\"Value\":[1.5]}}", MWL_E_MALFORMED, MWL_TAG(0x0008, 0x1160),
         "integer"},
        {"{\"00081160\":{\"vr\":\"IS\",\"Value\":[2147483648]}}", MWL_E_MALFORMED, MWL_TAG(0x0008, 0x1160),
         "outside"},
        {"{\"00081160\":{\"vr\":\"IS\",\"Value\":[\"12a\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0008, 0x1160),
         "\"12a\""},
        {"{\"00081160\":{\"vr\":\"IS\",\"Value\":[\"-2147483649\"]}}", MWL_E_MALFORMED,
         MWL_TAG(0x0008, 0x1160), "outside"},
        {"{\"00081160\":{\"vr\":\"IS\",\"Value\":[true]}}", MWL_E_MALFORMED, MWL_TAG(0x0008, 0x1160),
         "a boolean"},
        {"{\"00101030\":{\"vr\":\"DS\",\"Value\":[\"1.2345678901234567\"]}}", MWL_E_MALFORMED,
         MWL_TAG_PatientWeight, "16 characters"},
        {"{\"00101030\":{\"vr\":\"DS\",\"Value\":[\"NaN\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientWeight,
         "decimal"},
        {"{\"00101030\":{\"vr\":\"DS\",\"Value\":[\"0x10\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientWeight,
         "decimal"},
        {"{\"00101030\":{\"vr\":\"DS\",\"Value\":[1e999]}}", MWL_E_MALFORMED, 0, "JSON"},
        {"{\"00101030\":{\"vr\":\"DS\",\"Value\":[\"-1e873\"]}}", MWL_E_MALFORMED, MWL_TAG_PatientWeight,
         "beyond the range"},
        /* binary numbers */
        {"{\"001021C0\":{\"vr\":\"US\",\"Value\":[65536]}}", MWL_E_MALFORMED, MWL_TAG(0x0010, 0x21C0),
         "range"},
        {"{\"001021C0\":{\"vr\":\"US\",\"Value\":[-1]}}", MWL_E_MALFORMED, MWL_TAG(0x0010, 0x21C0), "range"},
        {"{\"001021C0\":{\"vr\":\"US\",\"Value\":[1.5]}}", MWL_E_MALFORMED, MWL_TAG(0x0010, 0x21C0),
         "integer"},
        {"{\"001021C0\":{\"vr\":\"US\",\"Value\":[\"4\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0010, 0x21C0),
         "a string, expected a number"},
        {"{\"001021C0\":{\"vr\":\"US\",\"Value\":[null]}}", MWL_E_MALFORMED, MWL_TAG(0x0010, 0x21C0), "null"},
        {"{\"00189219\":{\"vr\":\"SS\",\"Value\":[32768]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9219),
         "range"},
        {"{\"00189220\":{\"vr\":\"UL\",\"Value\":[4294967296]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9220),
         "range"},
        {"{\"00189220\":{\"vr\":\"SL\",\"Value\":[2147483648]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9220),
         "range"},
        {"{\"00189223\":{\"vr\":\"UV\",\"Value\":[\"-1\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9223),
         "range"},
        {"{\"00189223\":{\"vr\":\"UV\",\"Value\":[\"18446744073709551616\"]}}", MWL_E_MALFORMED,
         MWL_TAG(0x0018, 0x9223), "range"},
        {"{\"00189224\":{\"vr\":\"SV\",\"Value\":[\"1e3\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9224),
         "range"},
        {"{\"00189221\":{\"vr\":\"FL\",\"Value\":[1e39]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9221),
         "range"},
        {"{\"00189222\":{\"vr\":\"FD\",\"Value\":[\"nan\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0018, 0x9222),
         "a string, expected a number"},
        {"{\"00209165\":{\"vr\":\"AT\",\"Value\":[\"0010002\"]}}", MWL_E_MALFORMED, MWL_TAG(0x0020, 0x9165),
         "GGGGEEEE"},
        {"{\"00209165\":{\"vr\":\"AT\",\"Value\":[1048608]}}", MWL_E_MALFORMED, MWL_TAG(0x0020, 0x9165),
         "GGGGEEEE"},
        /* bytes */
        {"{\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":\"TWF\"}}", MWL_E_MALFORMED, MWL_TAG(0x0009, 0x1001),
         "multiple of 4"},
        {"{\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":\"TW F\"}}", MWL_E_MALFORMED, MWL_TAG(0x0009, 0x1001),
         "character 2"},
        {"{\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":\"TWF=\"}}", MWL_E_MALFORMED, MWL_TAG(0x0009, 0x1001),
         "not base64"},
        {"{\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":5}}", MWL_E_MALFORMED, MWL_TAG(0x0009, 0x1001),
         "a number"},
        {"{\"00091001\":{\"vr\":\"OW\",\"InlineBinary\":\"TWFu\"}}", MWL_E_MALFORMED, MWL_TAG(0x0009, 0x1001),
         "2-byte words"},
        {"{\"00091001\":{\"vr\":\"OD\",\"InlineBinary\":\"TWFuTWFu\"}}", MWL_E_MALFORMED,
         MWL_TAG(0x0009, 0x1001), "8-byte words"},
        /* sequences, and the path in messages */
        {"{\"00400100\":{\"vr\":\"SQ\",\"Value\":[\"x\"]}}", MWL_E_MALFORMED,
         MWL_TAG_ScheduledProcedureStepSequence, "expected an object (an item)"},
        {"{\"00400100\":{\"vr\":\"SQ\",\"Value\":[{},{\"00080060\":{\"vr\":\"CS\",\"Value\":[1]}}]}}",
         MWL_E_MALFORMED, MWL_TAG_Modality, "(0040,0100)[1] (0008,0060): CS Value[0] is a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_ds *ds = NULL;
        mwl_diag diag;
        int rc = decode(c->json, &arena, NULL, &ds, &diag);
        CHECK_EQ_INT(rc, c->rc);
        CHECK_EQ_INT(diag.tag, c->tag);
        CHECK(strstr(diag.msg, c->msg) != NULL);
        CHECK(ds == NULL);
        if (rc != c->rc || diag.tag != c->tag || !strstr(diag.msg, c->msg))
            fprintf(stderr, "  case %zu %s: %s (%s)\n", i, c->json, mwl_status_str(rc), diag.msg);
        mwl_arena_clear(&arena);
    }
}

static void test_limits(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_json_decode_options opt;
    mwl_json_decode_options_init(&opt);
    CHECK_EQ_INT(opt.max_depth, 16);
    mwl_ds *ds = NULL;
    mwl_diag diag;
    /* Nesting: three levels pass with max_depth 3, not with 2. */
    const char *nested = "{\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00400008\":{\"vr\":\"SQ\",\"Value\":["
                         "{\"00081199\":{\"vr\":\"SQ\",\"Value\":[{}]}}]}}]}}";
    opt.max_depth = 3;
    CHECK_EQ_INT(decode(nested, &arena, &opt, &ds, &diag), MWL_OK);
    opt.max_depth = 2;
    CHECK_EQ_INT(decode(nested, &arena, &opt, &ds, &diag), MWL_E_LIMIT);
    CHECK_EQ_INT(diag.tag, MWL_TAG(0x0008, 0x1199));
    CHECK(strstr(diag.msg, "(0040,0100)[0] (0040,0008)[0] (0008,1199): sequences nested deeper than 2") !=
          NULL);
    /* Elements and items, counted together. */
    mwl_json_decode_options_init(&opt);
    opt.max_elements = 6;
    CHECK_EQ_INT(decode(nested, &arena, &opt, &ds, &diag), MWL_OK);
    opt.max_elements = 5;
    CHECK_EQ_INT(decode(nested, &arena, &opt, &ds, &diag), MWL_E_LIMIT);
    /* Size. */
    mwl_json_decode_options_init(&opt);
    opt.max_bytes = strlen(nested) - 1;
    CHECK_EQ_INT(decode(nested, &arena, &opt, &ds, &diag), MWL_E_LIMIT);
    /* Deeper than jansson parses (2048 levels) is a limit too. */
    size_t deep = 3000;
    char *brackets = malloc(deep * 2 + 1);
    memset(brackets, '[', deep);
    memset(brackets + deep, ']', deep);
    brackets[deep * 2] = '\0';
    CHECK_EQ_INT(decode(brackets, &arena, NULL, &ds, &diag), MWL_E_LIMIT);
    free(brackets);
    CHECK_EQ_INT(mwl_ds_decode_json(NULL, 0, &arena, NULL, &ds, NULL), MWL_E_INVALID);
    mwl_arena_clear(&arena);
}

static void test_array(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds **list = NULL;
    size_t n = 99;
    mwl_diag diag;
    const char *two = "[{\"00100020\":{\"vr\":\"LO\",\"Value\":[\"A\"]}},"
                      "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"\xc3\xa9\"]}}]";
    CHECK_EQ_INT(mwl_ds_decode_json_array(two, strlen(two), &arena, NULL, &list, &n, &diag), MWL_OK);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        char s[32];
        CHECK_EQ_INT(mwl_ds_copy_str(list[0], MWL_TAG_PatientID, 0, s, sizeof s), MWL_OK);
        CHECK_EQ_STR(s, "A");
        /* The character set is settled per object. */
        CHECK(mwl_ds_find(list[0], MWL_TAG_SpecificCharacterSet) == NULL);
        CHECK(mwl_ds_find(list[1], MWL_TAG_SpecificCharacterSet) != NULL);
    }
    CHECK_EQ_INT(mwl_ds_decode_json_array("[]", 2, &arena, NULL, &list, &n, &diag), MWL_OK);
    CHECK_EQ_INT(n, 0);
    CHECK(list == NULL);
    const char *bad = "[{},{\"00100020\":{\"vr\":\"LO\",\"Value\":[1]}}]";
    CHECK_EQ_INT(mwl_ds_decode_json_array(bad, strlen(bad), &arena, NULL, &list, &n, &diag), MWL_E_MALFORMED);
    CHECK(strncmp(diag.msg, "object 1: (0010,0020): ", 23) == 0);
    CHECK_EQ_INT(mwl_ds_decode_json_array("{}", 2, &arena, NULL, &list, &n, &diag), MWL_E_MALFORMED);
    mwl_arena_clear(&arena);
}

static void test_out_of_memory(void)
{
    const char *json =
        "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]},"
        "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"M\xc3\xbcller\"}]},"
        "\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":\"TWFu\"},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00400007\":{\"vr\":\"LO\",\"Value\":[\"Kn\xc3\xa9\"]},"
        "\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}}]}}";
    for (int keep = 0; keep < 2; keep++) {
        bool completed = false;
        for (size_t fail_at = 1; fail_at < 500 && !completed; fail_at++) {
            mwl_mem_failing failing;
            mwl_mem_failing_init(&failing, fail_at);
            mwl_arena arena;
            mwl_arena_init(&arena, &failing.mem);
            mwl_json_decode_options opt;
            mwl_json_decode_options_init(&opt);
            opt.keep_charset = keep;
            mwl_ds *ds = NULL;
            int rc = decode(json, &arena, &opt, &ds, NULL);
            if (rc == MWL_OK)
                completed = true;
            else
                CHECK_EQ_INT(rc, MWL_E_NOMEM);
            mwl_arena_clear(&arena);
        }
        CHECK(completed);
    }
}

/* ds_equiv, which the round trips rely on, sees each kind of difference. */
static void test_equiv_self_check(void)
{
    static const char *const base =
        "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]},"
        "\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A^B\"]},"
        "\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}}]}}";
    static const char *const same[] = {
        /* padding, trailing empty PN groups, DS spelling, no (0008,0005) */
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A^B \"}]},"
        "\"00101030\":{\"vr\":\"DS\",\"Value\":[\"72.50\"]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}}]}}",
    };
    static const char *const different[] = {
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A^C\"]},\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}}]}}",
        "{\"00100010\":{\"vr\":\"LO\",\"Value\":[\"A^B\"]},\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}}]}}",
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A^B\"]},\"00101030\":{\"vr\":\"DS\",\"Value\":[72.6]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}}]}}",
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A^B\"]},\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[5]}}]}}",
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A^B\"]},\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]},"
        "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"001021C0\":{\"vr\":\"US\",\"Value\":[4]}},{}]}}",
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[\"A^B\"]},\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]}}",
    };
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *a = NULL, *b = NULL;
    CHECK_EQ_INT(decode(base, &arena, NULL, &a, NULL), MWL_OK);
    char why[200];
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        CHECK_EQ_INT(decode(same[i], &arena, NULL, &b, NULL), MWL_OK);
        CHECK(ds_equiv(a, b, why, sizeof why));
    }
    for (size_t i = 0; i < sizeof different / sizeof different[0]; i++) {
        CHECK_EQ_INT(decode(different[i], &arena, NULL, &b, NULL), MWL_OK);
        CHECK(!ds_equiv(a, b, why, sizeof why));
    }
    mwl_arena_clear(&arena);
}

/* ---- files: the DCMTK round trip ---------------------------------------- */

static int round_trip_file(const char *path)
{
    mwl_diag diag;
    mwl_diag_clear(&diag);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = mwl_file_read(path, NULL, 0, &data, &len, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "%s: %s\n", path, diag.msg);
        return 1;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_part10 file;
    rc = mwl_part10_decode(data, len, &arena, NULL, &file, &diag);
    mwl_mem_free(NULL, data);
    int failed = 0;
    if (rc != MWL_OK) {
        fprintf(stderr, "%s: does not decode: %s\n", path, diag.msg);
        failed = 1;
    }
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_json_report report;
    if (!failed && mwl_ds_encode_json(file.dataset, NULL, &w, &report) != MWL_OK) {
        fprintf(stderr, "%s: does not encode\n", path);
        failed = 1;
    }
    size_t elements = 0;
    for (int keep = 0; keep < 2 && !failed; keep++) {
        mwl_json_decode_options opt;
        mwl_json_decode_options_init(&opt);
        opt.keep_charset = keep;
        mwl_ds *back = NULL;
        rc = mwl_ds_decode_json((const char *)w.data, w.len, &arena, &opt, &back, &diag);
        char why[200] = "";
        if (rc != MWL_OK) {
            fprintf(stderr, "%s: the JSON does not decode (%s): %s\n", path, keep ? "keep_charset" : "UTF-8",
                    diag.msg);
            failed = 1;
        } else if (!ds_equiv(file.dataset, back, why, sizeof why)) {
            fprintf(stderr, "%s: differs after the round trip (%s): %s\n", path,
                    keep ? "keep_charset" : "UTF-8", why);
            failed = 1;
        } else if (keep) {
            /* The source's character set comes back as it was. */
            const mwl_elem *a = mwl_ds_find(file.dataset, MWL_TAG_SpecificCharacterSet);
            const mwl_elem *b = mwl_ds_find(back, MWL_TAG_SpecificCharacterSet);
            char x[80] = "", y[80] = "";
            for (size_t i = 0; a && i < mwl_elem_vm(a); i++) {
                const char *s;
                size_t n;
                if (mwl_elem_get_str(a, i, &s, &n) == MWL_OK)
                    snprintf(x + strlen(x), sizeof x - strlen(x), "%.*s\\", (int)n, s);
            }
            for (size_t i = 0; b && i < mwl_elem_vm(b); i++) {
                const char *s;
                size_t n;
                if (mwl_elem_get_str(b, i, &s, &n) == MWL_OK)
                    snprintf(y + strlen(y), sizeof y - strlen(y), "%.*s\\", (int)n, s);
            }
            if (strcmp(x, y) != 0 && !(mwl_ds_text_is_ascii(file.dataset) && !b)) {
                fprintf(stderr, "%s: Specific Character Set \"%s\" came back as \"%s\"\n", path, x, y);
                failed = 1;
            }
        }
        elements = mwl_ds_count(file.dataset);
    }
    if (!failed)
        printf("%s: %zu top-level elements, %zu bytes of JSON: same after the round trip\n", path, elements,
               w.len);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&arena);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        int failed = 0;
        for (int i = 1; i < argc; i++)
            failed += round_trip_file(argv[i]);
        printf("json round trip: %d files, %d failed\n", argc - 1, failed);
        return failed ? 1 : 0;
    }
    RUN_TEST(test_strings);
    RUN_TEST(test_person_names);
    RUN_TEST(test_numbers);
    RUN_TEST(test_binary_and_sequences);
    RUN_TEST(test_charset);
    RUN_TEST(test_errors);
    RUN_TEST(test_limits);
    RUN_TEST(test_array);
    RUN_TEST(test_out_of_memory);
    RUN_TEST(test_equiv_self_check);
    return check_report("json_decode_test");
}
