/* mwl_worklist_check_item: one case per rejection code (worklist.h), the
 * flags, and the messages naming the key and its tag. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "worklist/wl_test_util.h"

#define SPS_OK                                                                                               \
    "ScheduledStationAETitle=CT1\\CT2|ScheduledProcedureStepStartDate=20260105|"                             \
    "ScheduledProcedureStepStartTime=0930|Modality=CT|ScheduledProcedureStepID=S1"
#define ITEM_OK "PatientName=Doe^John|PatientID=P1|StudyInstanceUID=1.2.3|RequestedProcedureID=RP1"

static void expect(const char *spec, unsigned flags, mwl_item_code code, uint32_t tag, size_t sps_index,
                   const char *msg_part)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_item_problem p;
    int rc = mwl_worklist_check_item(wlt_ds(&a, spec), flags, &p);
    bool ok = rc == (code ? MWL_E_INVALID : MWL_OK) && p.code == code && (!code || p.tag == tag) &&
              p.sps_index == sps_index && (!msg_part || strstr(p.msg, msg_part));
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "  %s\n  flags %u: rc %d, %s (%u) tag %08X sps %zu: %s\n", spec, flags, rc,
                mwl_item_problem_name(p.code), p.code, p.tag, p.sps_index, p.msg);
    mwl_arena_clear(&a);
}

static void test_codes(void)
{
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "]", 0, MWL_ITEM_OK, 0, SIZE_MAX, NULL);
    /* 1: no SPS */
    expect(ITEM_OK, 0, MWL_ITEM_NO_SPS_SEQUENCE, MWL_TAG_ScheduledProcedureStepSequence, SIZE_MAX,
           "Scheduled Procedure Step Sequence (0040,0100)");
    expect(ITEM_OK "|ScheduledProcedureStepSequence<>", MWL_CHECK_LENIENT, MWL_ITEM_NO_SPS_SEQUENCE,
           MWL_TAG_ScheduledProcedureStepSequence, SIZE_MAX, NULL);
    /* 2: missing type 1 keys, unless lenient */
    expect("PatientName=Doe^John|StudyInstanceUID=1.2.3|RequestedProcedureID=RP1|"
           "ScheduledProcedureStepSequence[" SPS_OK "]",
           0, MWL_ITEM_MISSING_KEY, MWL_TAG_PatientID, SIZE_MAX, "missing type 1 key PatientID (0010,0020)");
    expect("PatientName=Doe^John|PatientID=  |StudyInstanceUID=1.2.3|RequestedProcedureID=RP1|"
           "ScheduledProcedureStepSequence[" SPS_OK "]",
           0, MWL_ITEM_MISSING_KEY, MWL_TAG_PatientID, SIZE_MAX, NULL); /* blanks only */
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "][ScheduledStationAETitle=CT1|"
                   "ScheduledProcedureStepStartDate=20260105|ScheduledProcedureStepStartTime=1000|"
                   "ScheduledProcedureStepID=S2]",
           0, MWL_ITEM_MISSING_KEY, MWL_TAG_Modality, 1,
           "SPS item 2: missing type 1 key Modality (0008,0060)");
    expect("PatientName=Doe^John|ScheduledProcedureStepSequence[Modality=CT]", MWL_CHECK_LENIENT, MWL_ITEM_OK,
           0, SIZE_MAX, NULL);
    /* 3: several values in an indexed key of VM 1, lenient or not */
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|Modality=MR\\CT]", MWL_CHECK_LENIENT,
           MWL_ITEM_MULTI_VALUED, MWL_TAG_Modality, 0, "Modality (0008,0060) has 2 values");
    expect("PatientName=A^B\\C^D|ScheduledProcedureStepSequence[]", MWL_CHECK_LENIENT, MWL_ITEM_MULTI_VALUED,
           MWL_TAG_PatientName, SIZE_MAX, "PatientName (0010,0010)");
    expect(ITEM_OK "|AccessionNumber=A1\\|ScheduledProcedureStepSequence[" SPS_OK "]", 0,
           MWL_ITEM_MULTI_VALUED, MWL_TAG_AccessionNumber, SIZE_MAX,
           NULL); /* an empty second value is a value */
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|ScheduledProcedureStepStatus=A\\B]", 0,
           MWL_ITEM_MULTI_VALUED, MWL_TAG_ScheduledProcedureStepStatus, 0, NULL);
    expect(ITEM_OK "|MedicalAlerts=X\\Y|ScheduledProcedureStepSequence[" SPS_OK "]", 0, MWL_ITEM_OK, 0,
           SIZE_MAX, NULL); /* not indexed: any VM */
    /* ISO 2022 IR 87: a 5CH byte inside a kanji is no delimiter (counted after decoding) */
    expect("SpecificCharacterSet=\\ISO 2022 IR 87|PatientName=Yamada^Tarou=\x1b$B\x3f\x5c\x1b(B^"
           "\x1b$B\x42\x40\x4f\x3a\x1b(B|PatientID=P1|StudyInstanceUID=1.2.3|RequestedProcedureID=RP1|"
           "ScheduledProcedureStepSequence[" SPS_OK "]",
           0, MWL_ITEM_OK, 0, SIZE_MAX, NULL);
    /* 4: identity, only when asked */
    expect("PatientName=X|StudyInstanceUID=1.2.3|ScheduledProcedureStepSequence[Modality=CT]",
           MWL_CHECK_LENIENT | MWL_CHECK_IDENTITY, MWL_ITEM_NO_IDENTITY, MWL_TAG_ScheduledProcedureStepID, 0,
           "ScheduledProcedureStepID (0040,0009)");
    expect("PatientName=X|ScheduledProcedureStepSequence[ScheduledProcedureStepID=S1]",
           MWL_CHECK_LENIENT | MWL_CHECK_IDENTITY, MWL_ITEM_NO_IDENTITY, MWL_TAG_StudyInstanceUID, SIZE_MAX,
           NULL);
    expect("PatientName=X|AccessionNumber=A1|ScheduledProcedureStepSequence[ScheduledProcedureStepID=S1]",
           MWL_CHECK_LENIENT | MWL_CHECK_IDENTITY, MWL_ITEM_OK, 0, SIZE_MAX, NULL);
    expect("PatientName=X|ScheduledProcedureStepSequence[Modality=CT]", MWL_CHECK_LENIENT, MWL_ITEM_OK, 0,
           SIZE_MAX, NULL);
    /* 5: character set */
    expect("SpecificCharacterSet=ISO_IR 999|PatientName=X|ScheduledProcedureStepSequence[]",
           MWL_CHECK_LENIENT, MWL_ITEM_BAD_CHARSET, MWL_TAG_SpecificCharacterSet, SIZE_MAX, "(0008,0005)");
    expect("SpecificCharacterSet=ISO_IR 192|PatientName=M\xc3\x28ller|ScheduledProcedureStepSequence[]",
           MWL_CHECK_LENIENT, MWL_ITEM_BAD_CHARSET, MWL_TAG_PatientName, SIZE_MAX, "PatientName (0010,0010)");
    expect("SpecificCharacterSet=ISO_IR 192|PatientName=X|ScheduledProcedureStepSequence["
           "ScheduledProcedureStepDescription=\xff\xfe]",
           MWL_CHECK_LENIENT, MWL_ITEM_BAD_CHARSET, MWL_TAG_ScheduledProcedureStepDescription, SIZE_MAX,
           NULL);
    expect("SpecificCharacterSet=ISO_IR 100|PatientName=M\xfcller|ScheduledProcedureStepSequence[]",
           MWL_CHECK_LENIENT, MWL_ITEM_OK, 0, SIZE_MAX, NULL);
    /* an SPS item's own Specific Character Set, unknown though its values are ASCII (fuzz_import) */
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|SpecificCharacterSet=CT]", MWL_CHECK_LENIENT,
           MWL_ITEM_BAD_CHARSET, MWL_TAG_SpecificCharacterSet, SIZE_MAX, "\"CT\"");
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|SpecificCharacterSet=ISO_IR 100]", 0,
           MWL_ITEM_OK, 0, SIZE_MAX, NULL);
    /* 6: values the store reads */
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|ScheduledProcedureStepStartDate=2026-01-05]",
           MWL_CHECK_LENIENT, MWL_ITEM_BAD_VALUE, MWL_TAG_ScheduledProcedureStepStartDate, 0, "'2026-01-05'");
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|ScheduledProcedureStepStartTime=2500]",
           MWL_CHECK_LENIENT, MWL_ITEM_BAD_VALUE, MWL_TAG_ScheduledProcedureStepStartTime, 0,
           "is not a time");
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "|ScheduledProcedureStepStartDate=2026.01.05|"
                   "ScheduledProcedureStepStartTime=09:30]",
           0, MWL_ITEM_OK, 0, SIZE_MAX, NULL); /* the retired forms */
    /* 7: two SPS with one SPS ID */
    expect(ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "][" SPS_OK "]", 0, MWL_ITEM_DUPLICATE_SPS,
           MWL_TAG_ScheduledProcedureStepID, 1, "as SPS item 1");
    /* the same ID as the natural key holds it (UTF-8), spelled with a redundant escape */
    expect("SpecificCharacterSet=\\ISO 2022 IR 87|" ITEM_OK "|ScheduledProcedureStepSequence[" SPS_OK "]["
           "ScheduledStationAETitle=CT1|ScheduledProcedureStepStartDate=20260105|"
           "ScheduledProcedureStepStartTime=0930|Modality=CT|ScheduledProcedureStepID=\x1b(BS1]",
           0, MWL_ITEM_DUPLICATE_SPS, MWL_TAG_ScheduledProcedureStepID, 1, "'S1' as SPS item 1");
}

static void test_names(void)
{
    const char *seen[8];
    for (int c = 0; c < 8; c++) {
        seen[c] = mwl_item_problem_name((mwl_item_code)c);
        CHECK(strcmp(seen[c], "unknown") != 0);
        for (int k = 0; k < c; k++)
            CHECK(strcmp(seen[k], seen[c]) != 0);
    }
    CHECK_EQ_STR(mwl_item_problem_name(MWL_ITEM_MULTI_VALUED), "multi-valued");
    CHECK_EQ_STR(mwl_item_problem_name((mwl_item_code)99), "unknown");
    /* the numbers are an interface */
    CHECK_EQ_INT(MWL_ITEM_NO_SPS_SEQUENCE, 1);
    CHECK_EQ_INT(MWL_ITEM_MISSING_KEY, 2);
    CHECK_EQ_INT(MWL_ITEM_MULTI_VALUED, 3);
    CHECK_EQ_INT(MWL_ITEM_NO_IDENTITY, 4);
    CHECK_EQ_INT(MWL_ITEM_BAD_CHARSET, 5);
    CHECK_EQ_INT(MWL_ITEM_BAD_VALUE, 6);
    CHECK_EQ_INT(MWL_ITEM_DUPLICATE_SPS, 7);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    CHECK_EQ_INT(mwl_worklist_check_item(wlt_ds(&a, "PatientName=X"), 0, NULL), MWL_E_INVALID); /* out NULL */
    mwl_arena_clear(&a);
}

/* Out of memory: every allocation of a check failing in turn gives
 * MWL_E_NOMEM or the verdict, never a crash or a leak (ASan). */
static void test_out_of_memory(void)
{
    const char *spec =
        "SpecificCharacterSet=ISO_IR 100|PatientName=M\xfcller\\X|ScheduledProcedureStepSequence[]";
    int nomem = 0, verdicts = 0;
    for (size_t fail_at = 1; fail_at < 50; fail_at++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, 0);
        mwl_arena a;
        mwl_arena_init(&a, &f.mem);
        mwl_ds *ds = wlt_ds(&a, spec);
        f.fail_at = f.count + fail_at;
        mwl_item_problem p;
        int rc = mwl_worklist_check_item(ds, 0, &p);
        CHECK(rc == MWL_E_NOMEM || (rc == MWL_E_INVALID && p.code == MWL_ITEM_MULTI_VALUED));
        nomem += rc == MWL_E_NOMEM;
        verdicts += rc == MWL_E_INVALID;
        f.fail_at = 0;
        mwl_arena_clear(&a);
    }
    CHECK(nomem > 0);
    CHECK(verdicts > 0);
}

int main(void)
{
    RUN_TEST(test_codes);
    RUN_TEST(test_names);
    RUN_TEST(test_out_of_memory);
    return check_report("check_test");
}
