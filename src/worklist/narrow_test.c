/* The index of an SPS row (mwl_sps_index_build) and the folding property
 * narrowing relies on. The filter-versus-matcher differential test is
 * store_narrow_test (it needs a store). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist_int.h"

/* The index form folds with every option at once. For a name to be a
 * candidate whenever it matches under some options O, characters equal
 * after folding with O must be equal after the widest folding W:
 * W(x) == W(O(x)) for every x and O. Checked for every code point and for
 * the undecodable bytes (0x110000 + byte). */
static void test_widest_folding_covers_every_option(void)
{
    const unsigned widest = MWL_FOLD_CASE | MWL_FOLD_ACCENT;
    long bad = 0;
    for (uint32_t x = 0; x < 0x110000 + 256; x++) {
        for (unsigned o = 0; o <= widest; o++) {
            if (mwl_fold_char(x, widest) != mwl_fold_char(mwl_fold_char(x, o), widest) && bad++ < 5)
                fprintf(stderr, "  U+%04X option %u\n", x, o);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static int build(mwl_arena *a, const char *spec, const char *worklist, mwl_sps_index *ix, mwl_diag *d)
{
    mwl_ds *row = wlt_ds(a, spec);
    const mwl_elem *seq = mwl_ds_find(row, MWL_TAG_ScheduledProcedureStepSequence);
    return mwl_sps_index_build(row, seq->items[0], worklist, a, ix, d);
}

static void test_index(void)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_diag d;
    mwl_sps_index ix;
    CHECK_EQ_INT(build(&a,
                       "SpecificCharacterSet=ISO_IR 192|PatientName=Yamada^Tarou=山田^太郎=YAMADA^TAROU|"
                       "PatientID= P1 |AccessionNumber=A1|StudyInstanceUID=1.2.3.4|RequestedProcedureID=RP1|"
                       "ScheduledProcedureStepSequence[ScheduledStationAETitle=CT1\\ CT2 \\CT1\\|"
                       "ScheduledProcedureStepStartDate=2026.01.05|ScheduledProcedureStepStartTime=10:30|"
                       "Modality=CT|ScheduledProcedureStepID=SPS1|ScheduledProcedureStepStatus=SCHEDULED]",
                       "WL01", &ix, &d),
                 MWL_OK);
    CHECK_EQ_STR(ix.start_date, "20260105"); /* canonical */
    CHECK_EQ_STR(ix.start_time, "1030");
    CHECK_EQ_STR(ix.patient_id, "P1"); /* trimmed */
    CHECK_EQ_STR(ix.modality, "CT");
    CHECK_EQ_STR(ix.sps_status, "SCHEDULED");
    CHECK_EQ_STR(ix.charset, "ISO_IR 192");
    CHECK_EQ_INT(ix.station_count, 2); /* every value, once, no empty */
    CHECK_EQ_STR(ix.stations[0], "CT1");
    CHECK_EQ_STR(ix.stations[1], "CT2");
    CHECK_EQ_INT(ix.name_count, 2); /* groups, folded, once */
    CHECK_EQ_STR(ix.names[0], "yamada^tarou");
    CHECK_EQ_STR(ix.names[1], "山田^太郎");
    /* the identity strings of the first schema */
    CHECK_EQ_STR(ix.natural_key, "sps|7:1.2.3.4|2:A1|3:RP1|4:SPS1|4:WL01");
    CHECK(ix.dataset_length > 0);

    CHECK_EQ_INT(build(&a,
                       "PatientName=X|StudyInstanceUID=1.2.3.4|ScheduledProcedureStepSequence["
                       "ScheduledProcedureStepStartTime=120000.5|ScheduledProcedureStepID=S2]",
                       NULL, &ix, &d),
                 MWL_OK);
    CHECK_EQ_STR(ix.natural_key, "sps|7:1.2.3.4|0:|0:|2:S2|0:");
    CHECK_EQ_STR(ix.start_date, ""); /* absent: "" (never NULL) */
    CHECK_EQ_STR(ix.start_time, "120000.500000");
    CHECK(ix.accession == NULL && ix.modality == NULL);
    CHECK_EQ_INT(ix.station_count, 0);

    /* without SPS ID the content is the identity */
    const char *nosps = "PatientName=X|StudyInstanceUID=1.2.3.4|ScheduledProcedureStepSequence[Modality=MR]";
    mwl_sps_index a1, a2, b1;
    CHECK_EQ_INT(build(&a, nosps, NULL, &a1, &d), MWL_OK);
    CHECK_EQ_INT(build(&a, nosps, NULL, &a2, &d), MWL_OK);
    CHECK_EQ_INT(build(&a, nosps, "WL", &b1, &d), MWL_OK);
    CHECK_EQ_MEM(a1.natural_key, 8, "content|", 8);
    char expect[64];
    snprintf(expect, sizeof expect, "|%zu|0:", a1.dataset_length);
    CHECK(strstr(a1.natural_key, expect) != NULL);
    CHECK_EQ_INT(strlen(a1.natural_key), 8 + 16 + strlen(expect));
    CHECK_EQ_STR(a1.natural_key, a2.natural_key);
    CHECK(strcmp(a1.natural_key, b1.natural_key) != 0); /* another worklist */

    /* refused: several values in a key of VM 1, a date that is no date */
    CHECK_EQ_INT(build(&a, "PatientID=A\\B|ScheduledProcedureStepSequence[]", NULL, &ix, &d), MWL_E_INVALID);
    CHECK_EQ_INT(d.tag, MWL_TAG_PatientID);
    CHECK_EQ_INT(
        build(&a, "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20261301]", NULL, &ix, &d),
        MWL_E_INVALID);
    CHECK_EQ_INT(build(&a, "SpecificCharacterSet=ISO_IR 999|PatientName=X|ScheduledProcedureStepSequence[]",
                       NULL, &ix, &d),
                 MWL_E_UNSUPPORTED);
    mwl_arena_clear(&a);
}

static void test_set_name(void)
{
    mwl_filter f;
    mwl_filter_init(&f);
    mwl_filter_set_name(&f, MWL_FILTER_PREFIX, "Mül");
    CHECK_EQ_INT(f.patient_name.match, MWL_FILTER_PREFIX);
    CHECK_EQ_STR(f.patient_name.value, "mul");
    mwl_filter_set_name(&f, MWL_FILTER_EXACT, "Smith ^ Ann^^");
    CHECK_EQ_STR(f.patient_name.value, "smith^ann");
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    mwl_filter_set_name(&f, MWL_FILTER_PREFIX, longer);
    CHECK_EQ_INT(mwl_filter_cond_match(&f.patient_name), MWL_FILTER_ANY); /* too long: narrows nothing */
    CHECK(mwl_filter_is_empty(&f));
}

int main(void)
{
    RUN_TEST(test_widest_folding_covers_every_option);
    RUN_TEST(test_index);
    RUN_TEST(test_set_name);
    return check_report("narrow_test");
}
