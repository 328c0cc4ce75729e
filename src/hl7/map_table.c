/* The HL7 v2 -> Modality Worklist mapping (IHE RAD TF-2x Appendix B as
 * reconstructed in spec/hl7.md §6): one row per attribute, with its HL7
 * source in the 2.3.1 ORM^O01 style and in the 2.5.1 OMI^O23 style. map.c
 * walks the rows; rows marked SPECIAL are done by code there and listed
 * for the documentation. Keep docs/hl7.md in step: hl7_map_test checks
 * that every row's keyword and sources appear in it. */
#include "hl7/map_int.h"

#include <stdio.h>
#include <string.h>

#include "dicom/tags_gen.h"

#define S(seg, f, c)                                                                                         \
    {                                                                                                        \
        seg, f, c                                                                                            \
    }
#define NONE                                                                                                 \
    {                                                                                                        \
        {                                                                                                    \
            "", 0, 0                                                                                         \
        }                                                                                                    \
    }
#define P MWL_HL7_LEVEL_PATIENT
#define R MWL_HL7_LEVEL_REQUEST
#define SPS MWL_HL7_LEVEL_SPS

/* clang-format off */
const mwl_hl7_map_row mwl_hl7_map_rows[] = {
    /* ---- patient and visit (spec §6.1) ---- */
    {"PatientName", MWL_TAG_PatientName, 0, P, MWL_HL7_CONV_XPN, {S("PID", 5, 0)}, {S("PID", 5, 0)}},
    /* ID + Issuer (+ qualifiers), other repetitions -> Other Patient IDs Sequence */
    {"PatientID", MWL_TAG_PatientID, MWL_TAG_IssuerOfPatientID, P, MWL_HL7_CONV_SPECIAL,
     {S("PID", 3, 0)}, {S("PID", 3, 0)}},
    {"PatientBirthDate", MWL_TAG_PatientBirthDate, 0, P, MWL_HL7_CONV_DA, {S("PID", 7, 0)}, {S("PID", 7, 0)}},
    {"PatientSex", MWL_TAG_PatientSex, 0, P, MWL_HL7_CONV_SEX, {S("PID", 8, 0)}, {S("PID", 8, 0)}},
    {"PatientMotherBirthName", MWL_TAG_PatientMotherBirthName, 0, P, MWL_HL7_CONV_XPN,
     {S("PID", 6, 0)}, {S("PID", 6, 0)}},
    {"PatientAddress", MWL_TAG_PatientAddress, 0, P, MWL_HL7_CONV_JOIN, {S("PID", 11, 0)}, {S("PID", 11, 0)}},
    {"MedicalAlerts", MWL_TAG_MedicalAlerts, 0, P, MWL_HL7_CONV_ST, {S("OBR", 13, 0)}, {S("OBR", 13, 0)}},
    {"Allergies", MWL_TAG_Allergies, 0, P, MWL_HL7_CONV_AL1, {S("AL1", 3, 0)}, {S("AL1", 3, 0)}},
    {"PregnancyStatus", MWL_TAG_PregnancyStatus, 0, P, MWL_HL7_CONV_PREGNANCY,
     {S("PV1", 15, 0)}, {S("PV1", 15, 0)}},
    {"PatientState", MWL_TAG_PatientState, 0, P, MWL_HL7_CONV_CE_TEXT, {S("OBR", 12, 0)}, {S("OBR", 12, 0)}},
    {"AdmissionID", MWL_TAG_AdmissionID, MWL_TAG_IssuerOfAdmissionIDSequence, P, MWL_HL7_CONV_CX,
     {S("PV1", 19, 0), S("PID", 18, 0)}, {S("PV1", 19, 0), S("PID", 18, 0)}},
    {"CurrentPatientLocation", MWL_TAG_CurrentPatientLocation, 0, P, MWL_HL7_CONV_JOIN,
     {S("PV1", 3, 0)}, {S("PV1", 3, 0)}},

    /* ---- imaging service request and requested procedure (spec §6.2) ---- */
    {"AccessionNumber", MWL_TAG_AccessionNumber, MWL_TAG_IssuerOfAccessionNumberSequence, R, MWL_HL7_CONV_EI,
     {S("OBR", 18, 0)}, {S("IPC", 1, 0)}},
    {"PlacerOrderNumberImagingServiceRequest", MWL_TAG_PlacerOrderNumberImagingServiceRequest,
     MWL_TAG_OrderPlacerIdentifierSequence, R, MWL_HL7_CONV_EI,
     {S("ORC", 2, 0), S("OBR", 2, 0)}, {S("ORC", 2, 0), S("OBR", 2, 0)}},
    {"FillerOrderNumberImagingServiceRequest", MWL_TAG_FillerOrderNumberImagingServiceRequest,
     MWL_TAG_OrderFillerIdentifierSequence, R, MWL_HL7_CONV_EI,
     {S("ORC", 3, 0), S("OBR", 3, 0)}, {S("ORC", 3, 0), S("OBR", 3, 0)}},
    {"RequestingPhysician", MWL_TAG_RequestingPhysician, 0, R, MWL_HL7_CONV_XCN,
     {S("OBR", 16, 0)}, {S("OBR", 16, 0)}},
    {"ReferringPhysicianName", MWL_TAG_ReferringPhysicianName, 0, R, MWL_HL7_CONV_XCN,
     {S("PV1", 8, 0)}, {S("PV1", 8, 0)}},
    {"RequestedProcedureID", MWL_TAG_RequestedProcedureID, 0, R, MWL_HL7_CONV_ST,
     {S("OBR", 19, 0)}, {S("IPC", 2, 1)}},
    /* ZDS-1.1 / IPC-3.1, or generated (policy) */
    {"StudyInstanceUID", MWL_TAG_StudyInstanceUID, 0, R, MWL_HL7_CONV_SPECIAL,
     {S("ZDS", 1, 1)}, {S("IPC", 3, 1)}},
    {"RequestedProcedureDescription", MWL_TAG_RequestedProcedureDescription, 0, R, MWL_HL7_CONV_ST,
     {S("OBR", 44, 2)}, {S("OBR", 44, 2)}},
    {"RequestedProcedureCodeSequence", MWL_TAG_RequestedProcedureCodeSequence, 0, R, MWL_HL7_CONV_CE_SEQ,
     {S("OBR", 44, 1)}, {S("OBR", 44, 1)}},
    {"ReasonForTheRequestedProcedure", MWL_TAG_ReasonForTheRequestedProcedure, 0, R, MWL_HL7_CONV_CE_TEXT,
     {S("OBR", 31, 0)}, {S("OBR", 31, 0)}},
    {"ReasonForRequestedProcedureCodeSequence", MWL_TAG_ReasonForRequestedProcedureCodeSequence, 0, R,
     MWL_HL7_CONV_CE_SEQ, {S("OBR", 31, 1)}, {S("OBR", 31, 1)}},
    {"RequestedProcedurePriority", MWL_TAG_RequestedProcedurePriority, 0, R, MWL_HL7_CONV_PRIORITY,
     {S("ORC", 7, 6), S("TQ1", 9, 1)}, {S("TQ1", 9, 1), S("ORC", 7, 6)}},
    {"PatientTransportArrangements", MWL_TAG_PatientTransportArrangements, 0, R, MWL_HL7_CONV_ST,
     {S("OBR", 30, 0)}, {S("OBR", 30, 0)}},
    {"ConfidentialityCode", MWL_TAG_ConfidentialityCode, 0, R, MWL_HL7_CONV_ST,
     {S("ORC", 28, 2)}, {S("ORC", 28, 2)}},
    {"RequestedProcedureComments", MWL_TAG_RequestedProcedureComments, 0, R, MWL_HL7_CONV_NTE,
     {S("NTE", 3, 0)}, {S("NTE", 3, 0)}},

    /* ---- scheduled procedure step (spec §6.3) ---- */
    /* IPC-9, else ORC-18 when configured, else the station rules */
    {"ScheduledStationAETitle", MWL_TAG_ScheduledStationAETitle, 0, SPS, MWL_HL7_CONV_SPECIAL,
     {S("ORC", 18, 1)}, {S("IPC", 9, 0), S("ORC", 18, 1)}},
    {"ScheduledProcedureStepStartDate", MWL_TAG_ScheduledProcedureStepStartDate,
     MWL_TAG_ScheduledProcedureStepStartTime, SPS, MWL_HL7_CONV_TS,
     {S("TQ1", 7, 1), S("ORC", 7, 4), S("OBR", 27, 4)}, {S("TQ1", 7, 1), S("ORC", 7, 4), S("OBR", 27, 4)}},
    {"Modality", MWL_TAG_Modality, 0, SPS, MWL_HL7_CONV_MODALITY, {S("OBR", 24, 1)}, {S("IPC", 5, 1)}},
    {"ScheduledPerformingPhysicianName", MWL_TAG_ScheduledPerformingPhysicianName, 0, SPS, MWL_HL7_CONV_CNN,
     {S("OBR", 34, 0)}, {S("OBR", 34, 0)}},
    {"ScheduledProcedureStepDescription", MWL_TAG_ScheduledProcedureStepDescription, 0, SPS, MWL_HL7_CONV_ST,
     {S("OBR", 4, 5)}, {S("IPC", 6, 2)}},
    {"ScheduledProtocolCodeSequence", MWL_TAG_ScheduledProtocolCodeSequence, 0, SPS, MWL_HL7_CONV_CE_SEQ,
     {S("OBR", 4, 4)}, {S("IPC", 6, 1)}},
    {"ScheduledProcedureStepID", MWL_TAG_ScheduledProcedureStepID, 0, SPS, MWL_HL7_CONV_ST,
     {S("OBR", 20, 0)}, {S("IPC", 4, 1)}},
    /* IPC-7, else the station rules */
    {"ScheduledStationName", MWL_TAG_ScheduledStationName, 0, SPS, MWL_HL7_CONV_SPECIAL, NONE,
     {S("IPC", 7, 0)}},
    {"ScheduledProcedureStepLocation", MWL_TAG_ScheduledProcedureStepLocation, 0, SPS, MWL_HL7_CONV_ST, NONE,
     {S("IPC", 8, 1)}},
    /* ORC-1 with ORC-5 (docs/hl7.md, order control) */
    {"ScheduledProcedureStepStatus", MWL_TAG_ScheduledProcedureStepStatus, 0, SPS, MWL_HL7_CONV_SPECIAL,
     {S("ORC", 1, 0), S("ORC", 5, 0)}, {S("ORC", 1, 0), S("ORC", 5, 0)}},
};
/* clang-format on */

const size_t mwl_hl7_map_row_count = sizeof mwl_hl7_map_rows / sizeof mwl_hl7_map_rows[0];

const mwl_hl7_map_row *mwl_hl7_map_row_find(uint32_t tag)
{
    for (size_t i = 0; i < mwl_hl7_map_row_count; i++)
        if (mwl_hl7_map_rows[i].tag == tag || (mwl_hl7_map_rows[i].tag2 && mwl_hl7_map_rows[i].tag2 == tag))
            return &mwl_hl7_map_rows[i];
    return NULL;
}

void mwl_hl7_src_format(const mwl_hl7_src *alts, char *out, size_t cap)
{
    size_t len = 0;
    if (cap)
        out[0] = '\0';
    for (size_t i = 0; i < MWL_HL7_ALTS && alts[i].seg[0]; i++) {
        int n = alts[i].comp ? snprintf(out + len, cap - len, "%s%s-%u.%u", i ? ", " : "", alts[i].seg,
                                        (unsigned)alts[i].field, (unsigned)alts[i].comp)
                             : snprintf(out + len, cap - len, "%s%s-%u", i ? ", " : "", alts[i].seg,
                                        (unsigned)alts[i].field);
        if (n < 0 || (size_t)n >= cap - len)
            return;
        len += (size_t)n;
    }
}
