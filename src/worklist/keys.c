/* Look-ups in the Modality Worklist keys table (PS3.4 Table K.6-1), which
 * scripts/gen_worklist_keys.py generates from data/worklist/keys.tsv into
 * keys_gen.c: breadth first, each parent's children contiguous and sorted
 * by tag. */
#include "worklist/worklist_int.h"

static void child_range(const mwl_wlkey *parent, size_t *first, size_t *count)
{
    if (!parent) {
        *first = 0;
        *count = mwl_wlkey_top_count;
    } else {
        *first = parent->first_child;
        *count = parent->child_count;
    }
}

const mwl_wlkey *mwl_wlkey_find(const mwl_wlkey *parent, uint32_t tag)
{
    size_t lo, count;
    child_range(parent, &lo, &count);
    size_t hi = lo + count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mwl_wlkeys[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t first, n;
    child_range(parent, &first, &n);
    return lo < first + n && mwl_wlkeys[lo].tag == tag ? &mwl_wlkeys[lo] : NULL;
}

size_t mwl_wlkey_child_count(const mwl_wlkey *parent)
{
    size_t first, count;
    child_range(parent, &first, &count);
    return count;
}

const mwl_wlkey *mwl_wlkey_child(const mwl_wlkey *parent, size_t i)
{
    size_t first, count;
    child_range(parent, &first, &count);
    return i < count ? &mwl_wlkeys[first + i] : NULL;
}

const mwl_wlkey *mwl_wlkey_parent(const mwl_wlkey *key)
{
    return key->parent >= 0 ? &mwl_wlkeys[key->parent] : NULL;
}

const mwl_wlkey *mwl_wlkey_expand_key(void)
{
    for (size_t i = 0; i < mwl_wlkey_top_count; i++) {
        if (mwl_wlkeys[i].flags & MWL_WLKEY_EXPAND)
            return &mwl_wlkeys[i];
    }
    return NULL;
}

/* The return keys a client sends when it asks for "what a modality reads
 * to start an exam" (PS3.4 Table K.6-1 and modality conformance practice):
 * who the patient is, what was ordered, the study to create, and the
 * scheduled step with its codes. One list, so `mwl find` and the REST
 * search answer alike. */
#define SPS "ScheduledProcedureStepSequence."
static const char *const default_return_keys[] = {
    "AccessionNumber",
    "ReferringPhysicianName",
    "ReferencedStudySequence.ReferencedSOPClassUID",
    "ReferencedStudySequence.ReferencedSOPInstanceUID",
    "ReferencedPatientSequence.ReferencedSOPClassUID",
    "ReferencedPatientSequence.ReferencedSOPInstanceUID",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientSize",
    "PatientWeight",
    "MedicalAlerts",
    "Allergies",
    "PregnancyStatus",
    "StudyInstanceUID",
    "RequestingPhysician",
    "RequestedProcedureDescription",
    "RequestedProcedureCodeSequence.CodeValue",
    "RequestedProcedureCodeSequence.CodingSchemeDesignator",
    "RequestedProcedureCodeSequence.CodeMeaning",
    "AdmissionID",
    "SpecialNeeds",
    "CurrentPatientLocation",
    "PatientState",
    SPS "Modality",
    SPS "RequestedContrastAgent",
    SPS "ScheduledStationAETitle",
    SPS "ScheduledProcedureStepStartDate",
    SPS "ScheduledProcedureStepStartTime",
    SPS "ScheduledPerformingPhysicianName",
    SPS "ScheduledProcedureStepDescription",
    SPS "ScheduledProtocolCodeSequence.CodeValue",
    SPS "ScheduledProtocolCodeSequence.CodingSchemeDesignator",
    SPS "ScheduledProtocolCodeSequence.CodeMeaning",
    SPS "ScheduledProcedureStepID",
    SPS "ScheduledStationName",
    SPS "ScheduledProcedureStepLocation",
    SPS "PreMedication",
    SPS "ScheduledProcedureStepStatus",
    "RequestedProcedureID",
    "RequestedProcedurePriority",
};
#undef SPS

const char *const *mwl_worklist_default_return_keys(size_t *count)
{
    *count = sizeof default_return_keys / sizeof default_return_keys[0];
    return default_return_keys;
}
