/* Fuzz target: the input is a C-FIND identifier in Implicit VR Little Endian
 * (the default DIMSE transfer syntax). Decode it, parse it into a worklist
 * query, constrain the Scheduled Station AE Title as an SCP filtering on
 * the calling AE would, match it against a few fixed worklist items (every
 * SPS expansion, both PN options) and build and encode each response.
 * Invariants checked (abort on failure): a parse failure maps to A900, A700
 * or Cxxx with the offending tag set; a response contains no key that was
 * not requested except (0008,0005), (0008,0201) and (0040,A390); the
 * expanded SPS Sequence of a response holds at most one item. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/codec.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ITEMS[] = {
    "SpecificCharacterSet=ISO_IR 100|PatientName=M\xDCLLER^HANS|PatientID=P1|PatientBirthDate=19700101|"
    "PatientSex=M|AccessionNumber=A1|StudyInstanceUID=1.2.3.4|RequestedProcedureID=RP1|"
    "RequestedProcedureDescription=CT HEAD|TimezoneOffsetFromUTC=+0100|PatientWeight=70.5|PregnancyStatus=4|"
    "MedicalAlerts=LATEX\\IODINE|OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=X][PatientID=B2]|"
    "ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle=CT1\\CT2|"
    "ScheduledProcedureStepStartDate=20240105|ScheduledProcedureStepStartTime=0930|"
    "ScheduledPerformingPhysicianName=DR^WHO|ScheduledProcedureStepID=S1|ScheduledProtocolCodeSequence["
    "CodeValue=P1|CodingSchemeDesignator=99L|CodeMeaning=Head]][Modality=MR|ScheduledStationAETitle=MR1|"
    "ScheduledProcedureStepStartDate=20240106|ScheduledProcedureStepStartTime=1400|ScheduledProcedureStepID="
    "S2]",
    "SpecificCharacterSet=\\ISO 2022 IR "
    "87|PatientName=Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@"
    "\x1b(B^\x1b$B$?$m$&\x1b(B|PatientID=J1|ReferencedStudySequence[ReferencedSOPClassUID=1.2.840.10008.3.1."
    "2.3.1|"
    "ReferencedSOPInstanceUID=1.2.3]|ScheduledProcedureStepSequence[Modality=US|ScheduledStationAETitle=US1|"
    "ScheduledProcedureStepStartDate=20240105|ScheduledProcedureStepStartTime=2359]",
    "PatientName=DOE^JOHN|PatientID=|PatientAge=054Y|00091010=ACME",
};

static bool allowed_extra(uint32_t tag)
{
    return tag == MWL_TAG_SpecificCharacterSet || tag == MWL_TAG_TimezoneOffsetFromUTC ||
           tag == MWL_TAG_HL7StructuredDocumentReferenceSequence;
}

/* Every element of `resp` is requested in `req` (or an allowed extra), and
 * so on inside the items of requested sequences that are not "all keys". */
static void check_subset(const mwl_ds *resp, const mwl_ds *req, bool top)
{
    for (size_t i = 0; i < mwl_ds_count(resp); i++) {
        const mwl_elem *e = mwl_ds_at(resp, i);
        const mwl_elem *r = mwl_ds_find(req, e->tag);
        if (!r) {
            if (!allowed_extra(e->tag))
                abort();
            continue;
        }
        if (e->vr != MWL_VR_SQ)
            continue;
        if (top && e->tag == MWL_TAG_ScheduledProcedureStepSequence && e->item_count > 1)
            abort();
        if (r->vr != MWL_VR_SQ || r->item_count == 0)
            continue;
        const mwl_ds *ri = r->items[0];
        size_t keys = mwl_ds_count(ri) - (mwl_ds_find(ri, MWL_TAG_SpecificCharacterSet) != NULL);
        if (keys == 0)
            continue; /* "the whole sequence": every table key may come back */
        for (size_t k = 0; k < e->item_count; k++)
            check_subset(e->items[k], ri, false);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_decode_limits lim;
    mwl_decode_limits_init(&lim);
    lim.max_elements = 4096;
    mwl_ds *id;
    mwl_diag diag;
    if (mwl_ds_decode(data, size, MWL_TS_IMPLICIT_LE, &arena, &lim, &id, &diag) != MWL_OK) {
        mwl_arena_clear(&arena);
        return 0;
    }
    mwl_query *q;
    int rc = mwl_query_parse(id, &arena, &q, &diag);
    if (rc != MWL_OK) {
        uint16_t st = mwl_query_failure_status(rc);
        if (st != 0xA900 && st != 0xA700 && st != 0xC000)
            abort();
        if (st == 0xA900 && (diag.tag == 0 || diag.msg[0] == '\0'))
            abort();
        mwl_arena_clear(&arena);
        return 0;
    }
    const uint32_t aet[2] = {MWL_TAG_ScheduledProcedureStepSequence, MWL_TAG_ScheduledStationAETitle};
    if (size & 1u && mwl_query_is_universal(q, aet, 2) &&
        mwl_query_constrain(q, aet, 2, "CT1", &diag) != MWL_OK)
        abort();
    for (int strict = 0; strict < 2; strict++) {
        mwl_match_opts opts;
        mwl_match_opts_init(&opts);
        opts.pn_case_sensitive = strict != 0;
        opts.pn_accent_insensitive = strict == 0;
        mwl_matcher m;
        mwl_matcher_init(&m, &opts, NULL);
        for (size_t i = 0; i < sizeof ITEMS / sizeof ITEMS[0]; i++) {
            mwl_arena items;
            mwl_arena_init(&items, NULL);
            mwl_ds *item = wlt_ds(&items, ITEMS[i]);
            for (size_t x = 0, n = mwl_expand_count(item); x < n; x++) {
                bool hit = false;
                if (mwl_match_dataset(&m, q, item, x, &hit, &diag) != MWL_OK || !hit)
                    continue;
                mwl_ds *resp;
                if (mwl_project(&m, q, item, x, &items, &resp, &diag) != MWL_OK)
                    abort();
                check_subset(resp, id, true);
                mwl_wbuf out;
                mwl_wbuf_init(&out, NULL);
                if (mwl_ds_encode(resp, MWL_TS_IMPLICIT_LE, &out) != MWL_OK)
                    abort();
                mwl_wbuf_clear(&out);
            }
            mwl_arena_clear(&items);
        }
        mwl_matcher_clear(&m);
    }
    mwl_arena_clear(&arena);
    return 0;
}
