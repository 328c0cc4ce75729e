/* Tests for dicom/xml.c (PS3.19 A.1): exact output for strings with
 * padding and empty values, PN groups and components, numbers, AT,
 * binary, sequences; every character XML must escape; Latin-1 text coming
 * out as UTF-8; bytes that are not UTF-8 and control characters replaced;
 * and every allocation failing in turn. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/tags_gen.h"
#include "dicom/xml.h"

#define HEAD                                                                                                 \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                           \
    "<NativeDicomModel xmlns=\"http://dicom.nema.org/PS3.19/models/NativeDICOM\">"
#define TAIL "</NativeDicomModel>\n"

static char *to_xml(const mwl_ds *ds, int *rc)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    *rc = mwl_ds_encode_xml(ds, &w);
    char *s = malloc(w.len + 1);
    memcpy(s, w.data ? (const char *)w.data : "", w.len);
    s[w.len] = '\0';
    mwl_wbuf_clear(&w);
    return s;
}

static void expect_xml(const mwl_ds *ds, const char *body)
{
    int rc;
    char *got = to_xml(ds, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    char want[4096];
    snprintf(want, sizeof want, "%s%s%s", HEAD, body, TAIL);
    CHECK_EQ_STR(got, want);
    free(got);
}

static mwl_ds *new_ds(mwl_arena *arena)
{
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(mwl_ds_new(arena, NULL, &ds), MWL_OK);
    return ds;
}

static void test_strings(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_AccessionNumber, MWL_VR_SH, " A1 "), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_Modality, MWL_VR_CS, ""), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_StudyInstanceUID, MWL_VR_UI, "1.2.3"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_ScheduledStationAETitle, MWL_VR_AE, "CT1\\\\CT2 "), MWL_OK);
    expect_xml(ds, "<DicomAttribute tag=\"00080050\" vr=\"SH\" keyword=\"AccessionNumber\">"
                   "<Value number=\"1\">A1</Value></DicomAttribute>"
                   "<DicomAttribute tag=\"00080060\" vr=\"CS\" keyword=\"Modality\"></DicomAttribute>"
                   "<DicomAttribute tag=\"0020000D\" vr=\"UI\" keyword=\"StudyInstanceUID\">"
                   "<Value number=\"1\">1.2.3</Value></DicomAttribute>"
                   "<DicomAttribute tag=\"00400001\" vr=\"AE\" keyword=\"ScheduledStationAETitle\">"
                   "<Value number=\"1\">CT1</Value><Value number=\"2\"/><Value number=\"3\">CT2</Value>"
                   "</DicomAttribute>");
    mwl_arena_clear(&arena);
}

static void test_person_names(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    /* Latin-1 in, UTF-8 out; the middle group empty; components skipped. */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "M\xfcller^Anna^^Dr==MUELLER^ANNA\\Doe"),
                 MWL_OK);
    expect_xml(ds, "<DicomAttribute tag=\"00080005\" vr=\"CS\" keyword=\"SpecificCharacterSet\">"
                   "<Value number=\"1\">ISO_IR 100</Value></DicomAttribute>"
                   "<DicomAttribute tag=\"00100010\" vr=\"PN\" keyword=\"PatientName\">"
                   "<PersonName number=\"1\"><Alphabetic><FamilyName>M\xc3\xbcller</FamilyName>"
                   "<GivenName>Anna</GivenName><NamePrefix>Dr</NamePrefix></Alphabetic>"
                   "<Phonetic><FamilyName>MUELLER</FamilyName><GivenName>ANNA</GivenName></Phonetic>"
                   "</PersonName><PersonName number=\"2\"><Alphabetic><FamilyName>Doe</FamilyName>"
                   "</Alphabetic></PersonName></DicomAttribute>");
    mwl_arena_clear(&arena);
}

static void test_numbers_binary_sequences(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    uint8_t us[4] = {1, 0, 0xff, 0xff};
    uint8_t at[4] = {0x10, 0x00, 0x20, 0x00};
    uint8_t ob[3] = {'a', 'b', 'c'};
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientSize, MWL_VR_DS, "1.75 "), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0028, 0x0010), MWL_VR_US, us, sizeof us), MWL_OK);
    /* A group length: left out, as in JSON. */
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0020, 0x0000), MWL_VR_UL, us, sizeof us), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0020, 0x9165), MWL_VR_AT, at, sizeof at), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0042, 0x0011), MWL_VR_OB, ob, sizeof ob), MWL_OK);
    mwl_ds *item = NULL;
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_Modality, MWL_VR_CS, "CT"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    expect_xml(ds, "<DicomAttribute tag=\"00101020\" vr=\"DS\" keyword=\"PatientSize\">"
                   "<Value number=\"1\">1.75</Value></DicomAttribute>"
                   "<DicomAttribute tag=\"00209165\" vr=\"AT\" keyword=\"DimensionIndexPointer\">"
                   "<Value number=\"1\">00100020</Value></DicomAttribute>"
                   "<DicomAttribute tag=\"00280010\" vr=\"US\" keyword=\"Rows\">"
                   "<Value number=\"1\">1</Value><Value number=\"2\">65535</Value></DicomAttribute>"
                   "<DicomAttribute tag=\"00400100\" vr=\"SQ\" keyword=\"ScheduledProcedureStepSequence\">"
                   "<Item number=\"1\"><DicomAttribute tag=\"00080060\" vr=\"CS\" keyword=\"Modality\">"
                   "<Value number=\"1\">CT</Value></DicomAttribute></Item><Item number=\"2\"></Item>"
                   "</DicomAttribute>"
                   "<DicomAttribute tag=\"00420011\" vr=\"OB\" keyword=\"EncapsulatedDocument\">"
                   "<InlineBinary>YWJj</InlineBinary></DicomAttribute>");
    mwl_arena_clear(&arena);
}

static void test_escapes(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0040, 0x0400), MWL_VR_LT, "  a<b>&\"q\" 'x'\r\n\x01\xff"),
                 MWL_OK);
    expect_xml(ds,
               "<DicomAttribute tag=\"00080005\" vr=\"CS\" keyword=\"SpecificCharacterSet\">"
               "<Value number=\"1\">ISO_IR 192</Value></DicomAttribute>"
               "<DicomAttribute tag=\"00400400\" vr=\"LT\" keyword=\"CommentsOnTheScheduledProcedureStep\">"
               "<Value number=\"1\">  a&lt;b&gt;&amp;&quot;q&quot; &apos;x&apos;&#13;\n"
               "\xEF\xBF\xBD\xEF\xBF\xBD</Value></DicomAttribute>");
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT((int)mwl_xml_put_text(&w, "ok\xc3\x28\x7f", 5), 1);
    CHECK_EQ_MEM(w.data, w.len, "ok\xEF\xBF\xBD(\x7f", 7);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&arena);
}

static void test_out_of_memory(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_ds *item = NULL;
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "M\xfcller^Hans"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_ScheduledProcedureStepDescription, MWL_VR_LO, "Kn\xe9"),
                 MWL_OK);
    int rc;
    char *want = to_xml(ds, &rc);
    bool completed = false;
    for (size_t fail_at = 1; fail_at < 200 && !completed; fail_at++) {
        mwl_mem_failing failing;
        mwl_mem_failing_init(&failing, fail_at);
        mwl_wbuf w;
        mwl_wbuf_init(&w, &failing.mem);
        rc = mwl_ds_encode_xml(ds, &w);
        if (rc == MWL_OK) {
            CHECK_EQ_MEM(w.data, w.len, want, strlen(want));
            completed = true;
        } else {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
        }
        mwl_wbuf_clear(&w);
    }
    CHECK(completed);
    CHECK_EQ_INT(mwl_ds_encode_xml(NULL, NULL), MWL_E_INVALID);
    free(want);
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_strings);
    RUN_TEST(test_person_names);
    RUN_TEST(test_numbers_binary_sequences);
    RUN_TEST(test_escapes);
    RUN_TEST(test_out_of_memory);
    return check_report("xml_test");
}
