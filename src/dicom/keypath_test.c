/* Tests for dicom/keypath.c: every form of a path step, nesting and item
 * indexes, every VR converted from text, the character set, finding, and
 * every error with its message. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "dicom/dict.h"
#include "dicom/keypath.h"

static mwl_ds *new_ds(mwl_arena *arena)
{
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(mwl_ds_new(arena, NULL, &ds), MWL_OK);
    return ds;
}

static void test_tag_parse(void)
{
    static const struct {
        const char *text;
        bool ok;
        uint32_t tag;
    } cases[] = {
        {"(0010,0010)", true, 0x00100010u},
        {"0010,0010", true, 0x00100010u},
        {"00100010", true, 0x00100010u},
        {"(0040,a30A)", true, 0x0040A30Au},
        {"0040a30a", true, 0x0040A30Au},
        {"0010,001", false, 0},
        {"(0010,0010", false, 0},
        {"0010;0010", false, 0},
        {"0010001G", false, 0},
        {"001000100", false, 0},
        {"", false, 0},
        {"(00100010)", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t tag = 0xDEADBEEF;
        CHECK_EQ_INT(mwl_tag_parse(cases[i].text, strlen(cases[i].text), &tag), cases[i].ok);
        CHECK_EQ_INT(tag, cases[i].ok ? cases[i].tag : 0xDEADBEEF);
    }
}

static void test_parse_forms(void)
{
    /* The same path in every spelling. */
    static const char *const same[] = {
        "ScheduledProcedureStepSequence.Modality",
        "(0040,0100).(0008,0060)",
        "0040,0100.0008,0060",
        "00400100.00080060",
        "ScheduledProcedureStepSequence.00080060",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        mwl_keypath kp;
        mwl_diag diag;
        CHECK_EQ_INT(mwl_keypath_parse(same[i], strlen(same[i]), &kp, &diag), MWL_OK);
        CHECK_EQ_INT(kp.count, 2);
        CHECK_EQ_INT(kp.steps[0].tag, MWL_TAG_ScheduledProcedureStepSequence);
        CHECK_EQ_INT(kp.steps[0].vr, MWL_VR_SQ);
        CHECK_EQ_INT(kp.steps[0].index, -1);
        CHECK_EQ_INT(kp.steps[1].tag, MWL_TAG_Modality);
        CHECK_EQ_INT(kp.steps[1].vr, MWL_VR_CS);
    }
    mwl_keypath kp;
    const char *indexed = "ScheduledProcedureStepSequence[3].ScheduledProtocolCodeSequence[10000].CodeValue";
    CHECK_EQ_INT(mwl_keypath_parse(indexed, strlen(indexed), &kp, NULL), MWL_OK);
    CHECK_EQ_INT(kp.count, 3);
    CHECK_EQ_INT(kp.steps[0].index, 3);
    CHECK_EQ_INT(kp.steps[1].index, 10000);
    CHECK_EQ_INT(kp.steps[2].index, -1);
    /* Only `len` bytes count. */
    CHECK_EQ_INT(mwl_keypath_parse("PatientID=123", 9, &kp, NULL), MWL_OK);
    CHECK_EQ_INT(kp.count, 1);
    CHECK_EQ_INT(kp.steps[0].tag, MWL_TAG_PatientID);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *path;
        uint32_t tag;
        const char *msg;
    } cases[] = {
        {"NoSuchKeyword", 0, "unknown keyword 'NoSuchKeyword' (keywords are PS3.6's, e.g. PatientName)"},
        {"patientname", 0, "unknown keyword 'patientname' (keywords are PS3.6's, e.g. PatientName)"},
        {"(0009,1001)", 0x00091001u, "(0009,1001) is not in the data dictionary, so its VR is not known"},
        {"00091001", 0x00091001u, "(0009,1001) is not in the data dictionary, so its VR is not known"},
        {"(0011,0000)", 0x00110000u, "(0011,0000) is not in the data dictionary, so its VR is not known"},
        {"", 0, "empty or overlong key in the path"},
        {"PatientName.", 0, "empty or overlong key in the path"},
        {".PatientName", 0, "empty or overlong key in the path"},
        {"ScheduledProcedureStepSequence[x].Modality", 0,
         "bad item index in 'ScheduledProcedureStepSequence[x]'"},
        {"ScheduledProcedureStepSequence[-1]", 0, "bad item index in 'ScheduledProcedureStepSequence[-1]'"},
        {"ScheduledProcedureStepSequence[10001]", 0,
         "bad item index in 'ScheduledProcedureStepSequence[10001]'"},
        {"ScheduledProcedureStepSequence[]", 0, "bad item index in 'ScheduledProcedureStepSequence[]'"},
        {"ScheduledProcedureStepSequence[1", 0, "bad item index in 'ScheduledProcedureStepSequence[1'"},
        {"[1]", 0, "empty or overlong key in the path"},
        {"A.B.C.D.E.F.G.H.I", 0, "unknown keyword 'A' (keywords are PS3.6's, e.g. PatientName)"},
        {"PatientID.PatientID.PatientID.PatientID.PatientID.PatientID.PatientID.PatientID.PatientID", 0,
         "key path nested deeper than 8 levels"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_keypath kp;
        mwl_diag diag;
        CHECK_EQ_INT(mwl_keypath_parse(cases[i].path, strlen(cases[i].path), &kp, &diag), MWL_E_INVALID);
        CHECK_EQ_STR(diag.msg, cases[i].msg);
        CHECK_EQ_INT(diag.tag, cases[i].tag);
    }
}

/* Sets `path` to `value` in a new data set and checks the bytes stored. */
static void expect_value(const char *path, const char *value, mwl_vr vr, const void *bytes, size_t len)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_diag diag;
    int rc = mwl_ds_set_path(ds, path, strlen(path), value, NULL, &diag);
    CHECK_EQ_INT(rc, MWL_OK);
    mwl_keypath kp;
    CHECK_EQ_INT(mwl_keypath_parse(path, strlen(path), &kp, NULL), MWL_OK);
    const mwl_elem *e = mwl_keypath_find(ds, &kp, NULL);
    CHECK(e != NULL);
    if (e) {
        CHECK_EQ_INT(e->vr, vr);
        CHECK_EQ_MEM(e->value, e->length, bytes, len);
    } else {
        fprintf(stderr, "  %s=%s: %s\n", path, value, diag.msg);
    }
    mwl_arena_clear(&arena);
}

static void test_values(void)
{
    /* Strings as they are, padded; '\' separates values. */
    expect_value("Modality", "CT\\MR", MWL_VR_CS, "CT\\MR ", 6);
    expect_value("StudyInstanceUID", "1.2.3", MWL_VR_UI, "1.2.3\0", 6);
    expect_value("PatientID", NULL, MWL_VR_LO, "", 0);
    expect_value("PatientID", "", MWL_VR_LO, "", 0);
    /* Binary VRs from text. */
    expect_value("PregnancyStatus", "4\\65535", MWL_VR_US, "\x04\x00\xff\xff", 4);
    static const uint8_t ss[] = {0x00, 0x80, 0xff, 0x7f};
    expect_value("(0018,9219)", "-32768\\32767", MWL_VR_SS, ss, sizeof ss);
    expect_value("Rows", "512", MWL_VR_US, "\x00\x02", 2);
    static const uint8_t ul[] = {0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff};
    expect_value("ReferencedSamplePositions", "305419896\\4294967295", MWL_VR_UL, ul, sizeof ul);
    static const uint8_t sl[] = {0x00, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0x7f};
    expect_value("ReferencePixelX0", "-2147483648\\2147483647", MWL_VR_SL, sl, sizeof sl);
    expect_value("ExaminedBodyThickness", "1.5", MWL_VR_FL, "\x00\x00\xc0\x3f", 4);
    expect_value("FloatingPointValue", "-2.25\\1.5", MWL_VR_FD,
                 "\x00\x00\x00\x00\x00\x00\x02\xc0\x00\x00\x00\x00\x00\x00\xf8\x3f", 16);
    expect_value("SelectorSVValue", "-2", MWL_VR_SV, "\xfe\xff\xff\xff\xff\xff\xff\xff", 8);
    expect_value("SelectorUVValue", "18446744073709551615", MWL_VR_UV, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    /* DS and IS are strings: taken as they are. */
    expect_value("FlipAngle", "90", MWL_VR_DS, "90", 2);
    static const uint8_t at[] = {0x10, 0x00, 0x10, 0x00, 0x40, 0x00, 0x00, 0x01, 0x08, 0x00, 0x60, 0x00};
    expect_value("(0020,9165)", "PatientName\\(0040,0100)\\00080060", MWL_VR_AT, at, sizeof at);
}

/* The binary conversions one by one, through mwl_value_from_text. */
static void test_value_from_text(void)
{
    static const struct {
        mwl_vr vr;
        const char *text;
        int rc;
        const char *bytes;
        size_t len;
        const char *msg;
    } cases[] = {
        {MWL_VR_US, "0\\65535", MWL_OK, "\x00\x00\xff\xff", 4, ""},
        {MWL_VR_US, "65536", MWL_E_INVALID, "", 0, "bad value '65536' for VR US"},
        {MWL_VR_US, "-1", MWL_E_INVALID, "", 0, "bad value '-1' for VR US"},
        {MWL_VR_US, "1x", MWL_E_INVALID, "", 0, "bad value '1x' for VR US"},
        {MWL_VR_US, "1\\\\2", MWL_E_INVALID, "", 0, "bad value '1\\\\2' for VR US"},
        {MWL_VR_SS, "-32769", MWL_E_INVALID, "", 0, "bad value '-32769' for VR SS"},
        {MWL_VR_UL, "4294967296", MWL_E_INVALID, "", 0, "bad value '4294967296' for VR UL"},
        {MWL_VR_SL, "2147483648", MWL_E_INVALID, "", 0, "bad value '2147483648' for VR SL"},
        {MWL_VR_SV, "-9223372036854775808", MWL_OK, "\x00\x00\x00\x00\x00\x00\x00\x80", 8, ""},
        {MWL_VR_SV, "9223372036854775808", MWL_E_INVALID, "", 0, "bad value '9223372036854775808' for VR SV"},
        {MWL_VR_UV, "18446744073709551615", MWL_OK, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, ""},
        {MWL_VR_UV, "-1", MWL_E_INVALID, "", 0, "bad value '-1' for VR UV"},
        {MWL_VR_FL, "1.5", MWL_OK, "\x00\x00\xc0\x3f", 4, ""},
        {MWL_VR_FL, "1e39", MWL_E_INVALID, "", 0, "bad value '1e39' for VR FL"},
        {MWL_VR_FD, "1e999", MWL_E_INVALID, "", 0, "bad value '1e999' for VR FD"},
        {MWL_VR_FD, "abc", MWL_E_INVALID, "", 0, "bad value 'abc' for VR FD"},
        {MWL_VR_AT, "Modality", MWL_OK, "\x08\x00\x60\x00", 4, ""},
        {MWL_VR_AT, "(0008,0060)\\0008,0060\\00080060", MWL_OK,
         "\x08\x00\x60\x00\x08\x00\x60\x00\x08\x00\x60\x00", 12, ""},
        {MWL_VR_AT, "NoSuchKeyword", MWL_E_INVALID, "", 0, "bad value 'NoSuchKeyword' for VR AT"},
        {MWL_VR_US, "", MWL_OK, "", 0, ""},
        {MWL_VR_OB, "1", MWL_E_INVALID, "", 0, "values of VR OB cannot be given as text"},
        {MWL_VR_UN, "1", MWL_E_INVALID, "", 0, "values of VR UN cannot be given as text"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        mwl_diag diag;
        mwl_diag_clear(&diag);
        CHECK_EQ_INT(mwl_value_from_text(cases[i].vr, cases[i].text, &w, &diag), cases[i].rc);
        CHECK_EQ_STR(diag.msg, cases[i].msg);
        if (cases[i].rc == MWL_OK)
            CHECK_EQ_MEM(w.data, w.len, cases[i].bytes, cases[i].len);
        mwl_wbuf_clear(&w);
    }
    /* "nan" and "inf" are numbers to strtod. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_value_from_text(MWL_VR_FD, "nan\\-inf", &w, NULL), MWL_OK);
    CHECK_EQ_INT(w.len, 16);
    mwl_wbuf_clear(&w);
}

static void test_nesting(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_diag diag;
    const char *p1 = "ScheduledProcedureStepSequence.Modality";
    const char *p2 = "ScheduledProcedureStepSequence[1].Modality";
    const char *p3 = "ScheduledProcedureStepSequence[1].ScheduledProtocolCodeSequence.CodeValue";
    CHECK_EQ_INT(mwl_ds_set_path(ds, p1, strlen(p1), "CT", NULL, &diag), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_path(ds, p2, strlen(p2), "MR", NULL, &diag), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_path(ds, p3, strlen(p3), "X1", NULL, &diag), MWL_OK);
    const mwl_elem *seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    CHECK(seq && seq->item_count == 2);
    char s[16];
    if (seq && seq->item_count == 2) {
        CHECK_EQ_INT(mwl_ds_copy_str(seq->items[0], MWL_TAG_Modality, 0, s, sizeof s), MWL_OK);
        CHECK_EQ_STR(s, "CT");
        CHECK_EQ_INT(mwl_ds_copy_str(seq->items[1], MWL_TAG_Modality, 0, s, sizeof s), MWL_OK);
        CHECK_EQ_STR(s, "MR");
    }
    mwl_keypath kp;
    CHECK_EQ_INT(mwl_keypath_parse(p3, strlen(p3), &kp, NULL), MWL_OK);
    const mwl_ds *holder = NULL;
    const mwl_elem *e = mwl_keypath_find(ds, &kp, &holder);
    CHECK(e && e->tag == MWL_TAG_CodeValue && holder && mwl_ds_parent(holder) != ds);
    /* A sequence without a value: kept when there, empty when not; [N]
     * makes sure the item exists. */
    const char *sq = "ScheduledProcedureStepSequence";
    CHECK_EQ_INT(mwl_ds_set_path(ds, sq, strlen(sq), NULL, NULL, &diag), MWL_OK);
    seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    CHECK(seq && seq->item_count == 2);
    const char *sq2 = "ScheduledProcedureStepSequence[2]";
    CHECK_EQ_INT(mwl_ds_set_path(ds, sq2, strlen(sq2), "", NULL, &diag), MWL_OK);
    seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    CHECK(seq && seq->item_count == 3);
    const char *ref = "ReferencedStudySequence";
    CHECK_EQ_INT(mwl_ds_set_path(ds, ref, strlen(ref), NULL, NULL, &diag), MWL_OK);
    seq = mwl_ds_find(ds, MWL_TAG_ReferencedStudySequence);
    CHECK(seq && seq->vr == MWL_VR_SQ && seq->item_count == 0);
    /* Not found: absent element, item or sequence. */
    const char *p4 = "ScheduledProcedureStepSequence[5].Modality";
    CHECK_EQ_INT(mwl_keypath_parse(p4, strlen(p4), &kp, NULL), MWL_OK);
    CHECK(mwl_keypath_find(ds, &kp, NULL) == NULL);
    CHECK_EQ_INT(mwl_keypath_parse("PatientID", 9, &kp, NULL), MWL_OK);
    CHECK(mwl_keypath_find(ds, &kp, NULL) == NULL);
    mwl_arena_clear(&arena);
}

static void test_set_errors(void)
{
    static const struct {
        const char *path;
        const char *value;
        uint32_t tag;
        const char *msg;
    } cases[] = {
        {"PatientName.PatientID", "1", MWL_TAG_PatientName, "PatientName is not a sequence"},
        {"ScheduledProcedureStepSequence", "CT", MWL_TAG_ScheduledProcedureStepSequence,
         "ScheduledProcedureStepSequence is a sequence: it takes no value"},
        {"ScheduledProcedureStepSequence[2].Modality", "CT", MWL_TAG_ScheduledProcedureStepSequence,
         "ScheduledProcedureStepSequence has 1 item(s): item [2] would leave a gap"},
        {"PatientName[0]", "x", MWL_TAG_PatientName, "PatientName is not a sequence: no [N]"},
        {"PregnancyStatus", "x", MWL_TAG(0x0010, 0x21C0), "bad value 'x' for VR US"},
        {"PatientID.ReferencedStudySequence", NULL, MWL_TAG_PatientID, "PatientID is not a sequence"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_ds *ds = new_ds(&arena);
        const char *setup = "ScheduledProcedureStepSequence.Modality";
        CHECK_EQ_INT(mwl_ds_set_path(ds, setup, strlen(setup), "MR", NULL, NULL), MWL_OK);
        CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_LO, "P1"), MWL_OK);
        mwl_diag diag;
        CHECK_EQ_INT(mwl_ds_set_path(ds, cases[i].path, strlen(cases[i].path), cases[i].value, NULL, &diag),
                     MWL_E_INVALID);
        CHECK_EQ_STR(diag.msg, cases[i].msg);
        CHECK_EQ_INT(diag.tag, cases[i].tag);
        mwl_arena_clear(&arena);
    }
    /* A data set already holding a non-sequence where a path goes in. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_ScheduledProcedureStepSequence, MWL_VR_LO, "x"), MWL_OK);
    mwl_diag diag;
    const char *p = "ScheduledProcedureStepSequence.Modality";
    CHECK_EQ_INT(mwl_ds_set_path(ds, p, strlen(p), "CT", NULL, &diag), MWL_E_INVALID);
    CHECK_EQ_STR(diag.msg, "ScheduledProcedureStepSequence is not a sequence");
    mwl_arena_clear(&arena);
}

static void test_charset(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_charset latin1;
    CHECK_EQ_INT(mwl_charset_parse("ISO_IR 100", 10, &latin1, NULL), MWL_OK);
    mwl_diag diag;
    /* Encoded into the character set given. */
    CHECK_EQ_INT(mwl_ds_set_path(ds, "PatientName", 11, "M\xc3\xbcller^Hans", &latin1, &diag), MWL_OK);
    const mwl_elem *e = mwl_ds_find(ds, MWL_TAG_PatientName);
    CHECK(e && e->length == 12 && memcmp(e->value, "M\xfcller^Hans ", 12) == 0);
    /* VRs the character set does not cover are taken as they are. */
    CHECK_EQ_INT(mwl_ds_set_path(ds, "Modality", 8, "CT", &latin1, &diag), MWL_OK);
    /* A character the set lacks. */
    CHECK_EQ_INT(mwl_ds_set_path(ds, "PatientName", 11, "\xe5\xb1\xb1", &latin1, &diag), MWL_E_CHARSET);
    CHECK_EQ_INT(diag.tag, MWL_TAG_PatientName);
    CHECK(diag.msg[0] != '\0');
    /* NULL: the character set in effect where the element goes (an item
     * inherits the top's). */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100"), MWL_OK);
    const char *p = "ScheduledProcedureStepSequence.ScheduledProcedureStepDescription";
    CHECK_EQ_INT(mwl_ds_set_path(ds, p, strlen(p), "Kn\xc3\xa9", NULL, &diag), MWL_OK);
    mwl_keypath kp;
    CHECK_EQ_INT(mwl_keypath_parse(p, strlen(p), &kp, NULL), MWL_OK);
    e = mwl_keypath_find(ds, &kp, NULL);
    CHECK(e && e->length == 4 && memcmp(e->value, "Kn\xe9 ", 4) == 0);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 999"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_path(ds, "PatientName", 11, "A", NULL, &diag), MWL_E_UNSUPPORTED);
    mwl_arena_clear(&arena);
}

static void test_out_of_memory(void)
{
    const char *p = "ScheduledProcedureStepSequence[0].ScheduledProtocolCodeSequence.CodeMeaning";
    mwl_charset utf8;
    CHECK_EQ_INT(mwl_charset_parse("ISO_IR 192", 10, &utf8, NULL), MWL_OK);
    bool completed = false;
    for (size_t fail_at = 1; fail_at < 100 && !completed; fail_at++) {
        mwl_mem_failing failing;
        mwl_mem_failing_init(&failing, fail_at);
        mwl_arena arena;
        mwl_arena_init(&arena, &failing.mem);
        mwl_ds *ds = NULL;
        int rc = mwl_ds_new(&arena, NULL, &ds);
        if (rc == MWL_OK)
            rc = mwl_ds_set_path(ds, p, strlen(p), "Kn\xc3\xa9", &utf8, NULL);
        if (rc == MWL_OK)
            rc = mwl_ds_set_path(ds, "PregnancyStatus", 15, "4", NULL, NULL);
        if (rc == MWL_OK)
            completed = true;
        else
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
        mwl_arena_clear(&arena);
    }
    CHECK(completed);
}

int main(void)
{
    RUN_TEST(test_tag_parse);
    RUN_TEST(test_parse_forms);
    RUN_TEST(test_parse_errors);
    RUN_TEST(test_values);
    RUN_TEST(test_value_from_text);
    RUN_TEST(test_nesting);
    RUN_TEST(test_set_errors);
    RUN_TEST(test_charset);
    RUN_TEST(test_out_of_memory);
    return check_report("keypath_test");
}
