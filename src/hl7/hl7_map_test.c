/* mwl_hl7_map: the worked example of spec/hl7.md §6.5 attribute by
 * attribute, ORM^O01 with and without ZDS, OMI^O23 with several IPCs,
 * character sets, every order control code, the errors (bad date, unknown
 * modality, long value, unsupported type, event, version, processing ID),
 * ADT updates and merges, "" against absent in an update, site defaults
 * and station rules, and docs/hl7.md against the mapping table. */
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "check.h"
#include "dicom/dict.h"
#include "dicom/tags_gen.h"
#include "hl7/hl7.h"
#include "hl7/map_int.h"

static mwl_arena arena;

/* Parses text whose segments end with '\n' (turned into CR). */
static const mwl_hl7_msg *parse(const char *text)
{
    size_t n = strlen(text);
    char *copy = mwl_arena_strndup(&arena, text, n);
    for (size_t i = 0; i < n; i++)
        if (copy[i] == '\n')
            copy[i] = '\r';
    mwl_hl7_msg *m = NULL;
    mwl_hl7_error err;
    int rc = mwl_hl7_parse((const uint8_t *)copy, n, NULL, &arena, &m, &err);
    CHECK_EQ_INT(rc, MWL_OK);
    if (rc != MWL_OK)
        fprintf(stderr, "  parse: %s\n", err.text);
    return m;
}

static int map_cfg(const char *text, const mwl_hl7_map_config *cfg, mwl_hl7_plan *plan, mwl_hl7_error *err)
{
    const mwl_hl7_msg *m = parse(text);
    if (!m)
        return MWL_E_MALFORMED;
    return mwl_hl7_map(m, cfg, &arena, plan, err);
}

static int map(const char *text, mwl_hl7_plan *plan, mwl_hl7_error *err)
{
    mwl_hl7_map_config cfg;
    mwl_hl7_map_config_init(&cfg);
    return map_cfg(text, &cfg, plan, err);
}

/* The whole value of `tag` (all values, '\' kept), trailing padding cut;
 * NULL when absent. */
static const char *val(const mwl_ds *ds, uint32_t tag)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    if (!e)
        return NULL;
    size_t len = e->length;
    while (len && (e->value[len - 1] == ' ' || e->value[len - 1] == '\0'))
        len--;
    return len ? mwl_arena_strndup(&arena, (const char *)e->value, len) : "";
}

static const mwl_ds *item(const mwl_ds *ds, uint32_t seq, size_t i)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, seq) : NULL;
    return e && i < e->item_count ? e->items[i] : NULL;
}

static size_t items(const mwl_ds *ds, uint32_t seq)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, seq) : NULL;
    return e ? e->item_count : 0;
}

static const mwl_ds *sps(const mwl_hl7_step *st)
{
    return item(st->item, MWL_TAG_ScheduledProcedureStepSequence, 0);
}

/* An error as "AE 102 TQ1^1^7". */
static const char *where(const mwl_hl7_error *e)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s %d %s^%u^%u",
             e->ack == MWL_HL7_AR   ? "AR"
             : e->ack == MWL_HL7_AE ? "AE"
                                    : "AA",
             e->code, e->segment, e->seq, e->field);
    return mwl_arena_strndup(&arena, buf, strlen(buf));
}

/* ---- messages ------------------------------------------------------------ */

#define OMI_MSH                                                                                              \
    "MSH|^~\\&|RIS|RADDEPT|MWL|MWLSRV|20250301101500||OMI^O23^OMI_O23|MSG00042|P|2.5.1||||||UNICODE UTF-8\n"

static const char worked_example[] = OMI_MSH
    "PID|||PAT123^^^HOSP&1.2.3.4.5&ISO^MR||M\xc3\x9cLLER^ANNA^B^^DR||19700215|F\n"
    "PV1||O|RAD^XR1^^HOSP|||||1234^WELBY^MARCUS^^^DR|||||||||||V5678^^^HOSP\n"
    "ORC|NW|PL1001^EHR|FL2002^RIS||SC||||20250301101400|||1234^WELBY^MARCUS^^^DR\n"
    "TQ1|1||||||20250302083000||R^Routine^HL70485\n"
    "OBR|1|PL1001^EHR|FL2002^RIS|CTCHEST^CT chest^L||||||||||||1234^WELBY^MARCUS^^^DR||||||||CT|||||||"
    "^Cough 3 weeks|||||||||||||CTCHEST^CT chest^L\n"
    "IPC|ACC555^RIS|RP555|1.2.826.0.1.3680043.9.7777.1|SPS555|CT|P01^Chest routine^L|CTROOM1|RAD-CT|CT01\n";

static void test_worked_example(void)
{
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(worked_example, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.action, MWL_HL7_ORDER);
    CHECK_EQ_INT(plan.step_count, 1);
    if (plan.step_count != 1)
        return;
    const mwl_hl7_step *st = &plan.steps[0];
    const mwl_ds *top = st->item, *s = sps(st);
    CHECK_EQ_INT(st->op, MWL_HL7_STEP_CREATE);
    CHECK_EQ_STR(st->status, "SCHEDULED");
    CHECK_EQ_STR(st->study_uid, "1.2.826.0.1.3680043.9.7777.1");
    CHECK_EQ_STR(st->accession, "ACC555");
    CHECK_EQ_STR(st->requested_procedure_id, "RP555");
    CHECK_EQ_STR(st->sps_id, "SPS555");
    CHECK_EQ_STR(val(top, MWL_TAG_SpecificCharacterSet), "ISO_IR 192");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientName), "M\xc3\x9cLLER^ANNA^B^DR");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientID), "PAT123");
    CHECK_EQ_STR(val(top, MWL_TAG_IssuerOfPatientID), "HOSP");
    const mwl_ds *q = item(top, MWL_TAG_IssuerOfPatientIDQualifiersSequence, 0);
    CHECK_EQ_STR(val(q, MWL_TAG_UniversalEntityID), "1.2.3.4.5");
    CHECK_EQ_STR(val(q, MWL_TAG_UniversalEntityIDType), "ISO");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientBirthDate), "19700215");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientSex), "F");
    CHECK_EQ_STR(val(top, MWL_TAG_AdmissionID), "V5678");
    CHECK_EQ_STR(val(item(top, MWL_TAG_IssuerOfAdmissionIDSequence, 0), MWL_TAG_LocalNamespaceEntityID),
                 "HOSP");
    CHECK_EQ_STR(val(top, MWL_TAG_CurrentPatientLocation), "RAD^XR1^^HOSP");
    CHECK_EQ_STR(val(top, MWL_TAG_ReferringPhysicianName), "WELBY^MARCUS^^DR");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestingPhysician), "WELBY^MARCUS^^DR");
    CHECK_EQ_STR(val(top, MWL_TAG_AccessionNumber), "ACC555");
    CHECK_EQ_STR(val(item(top, MWL_TAG_IssuerOfAccessionNumberSequence, 0), MWL_TAG_LocalNamespaceEntityID),
                 "RIS");
    CHECK_EQ_STR(val(top, MWL_TAG_PlacerOrderNumberImagingServiceRequest), "PL1001");
    CHECK_EQ_STR(val(item(top, MWL_TAG_OrderPlacerIdentifierSequence, 0), MWL_TAG_LocalNamespaceEntityID),
                 "EHR");
    CHECK_EQ_STR(val(top, MWL_TAG_FillerOrderNumberImagingServiceRequest), "FL2002");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedureID), "RP555");
    CHECK_EQ_STR(val(top, MWL_TAG_StudyInstanceUID), "1.2.826.0.1.3680043.9.7777.1");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedureDescription), "CT chest");
    const mwl_ds *rpc = item(top, MWL_TAG_RequestedProcedureCodeSequence, 0);
    CHECK_EQ_STR(val(rpc, MWL_TAG_CodeValue), "CTCHEST");
    CHECK_EQ_STR(val(rpc, MWL_TAG_CodingSchemeDesignator), "L");
    CHECK_EQ_STR(val(rpc, MWL_TAG_CodeMeaning), "CT chest");
    CHECK_EQ_STR(val(top, MWL_TAG_ReasonForTheRequestedProcedure), "Cough 3 weeks");
    CHECK(!mwl_ds_find(top, MWL_TAG_ReasonForRequestedProcedureCodeSequence)); /* no scheme, no item */
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedurePriority), "ROUTINE");
    CHECK_EQ_INT(items(top, MWL_TAG_ScheduledProcedureStepSequence), 1);
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledStationAETitle), "CT01");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartDate), "20250302");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartTime), "083000");
    CHECK_EQ_STR(val(s, MWL_TAG_Modality), "CT");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepID), "SPS555");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepDescription), "Chest routine");
    const mwl_ds *pc = item(s, MWL_TAG_ScheduledProtocolCodeSequence, 0);
    CHECK_EQ_STR(val(pc, MWL_TAG_CodeValue), "P01");
    CHECK_EQ_STR(val(pc, MWL_TAG_CodingSchemeDesignator), "L");
    CHECK_EQ_STR(val(pc, MWL_TAG_CodeMeaning), "Chest routine");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledStationName), "CTROOM1");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepLocation), "RAD-CT");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStatus), "SCHEDULED");
    CHECK(strstr(plan.summary, "OMI^O23 NW: 1 SPS of accession ACC555") != NULL);
}

/* ORM^O01 2.3.1: PID PV1 {ORC OBR [NTE] ZDS}, two SPS of one procedure. */
#define ORM_MSH(ctl_id) "MSH|^~\\&|RIS|HOSP|MWL|MWLSRV|20250301101500||ORM^O01|" ctl_id "|P|2.3.1\n"
#define ORM_PID "PID|||P7^^^HOSP||DOE^JOHN^Q^JR^MR^PHD||19601231|M|||MAIN ST 1^^SPRINGFIELD^IL^62701\n"
#define ORM_PV1 "PV1||I|WARD1^101^A|||||DRREF^REF^ROB|||||||||||VIS1\n"

static void test_orm_zds_two_pairs(void)
{
    static const char msg[] = ORM_MSH("M1") ORM_PID ORM_PV1
        "ORC|NW|PO1|FO1||SC||^^^20250310090000^^S\n"
        "OBR|1|PO1|FO1|^^^P1^Head plain^L|||||||||ALERT1|||1^REQ^RAY||A77|RP77|S1||||MR||||||PORT||||"
        "55&TECH&TOM\n"
        "NTE|1||Bring old films\n"
        "NTE|2||Claustrophobic\n"
        "ZDS|1.2.3.4.77^RIS^Application^DICOM\n"
        "ORC|NW|PO1|FO1||SC||^^^20250310100000^^S\n"
        "OBR|2|PO1|FO1|^^^P2^Head contrast^L||||||||||||||A77|RP77|S2||||MRI\n"
        "ZDS|1.2.3.4.77^RIS^Application^DICOM\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(msg, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.step_count, 2);
    if (plan.step_count != 2)
        return;
    const mwl_ds *top = plan.steps[0].item, *s = sps(&plan.steps[0]);
    CHECK_EQ_STR(val(top, MWL_TAG_PatientName), "DOE^JOHN^Q^MR^JR"); /* degree dropped */
    CHECK_EQ_STR(val(top, MWL_TAG_PatientID), "P7");
    CHECK_EQ_STR(val(top, MWL_TAG_IssuerOfPatientID), "HOSP");
    CHECK(!mwl_ds_find(top, MWL_TAG_IssuerOfPatientIDQualifiersSequence));
    CHECK(!mwl_ds_find(top, MWL_TAG_SpecificCharacterSet));
    CHECK_EQ_STR(val(top, MWL_TAG_PatientAddress), "MAIN ST 1^^SPRINGFIELD^IL^62701");
    CHECK_EQ_STR(val(top, MWL_TAG_MedicalAlerts), "ALERT1");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestingPhysician), "REQ^RAY");
    CHECK_EQ_STR(val(top, MWL_TAG_ReferringPhysicianName), "REF^ROB");
    CHECK_EQ_STR(val(top, MWL_TAG_AdmissionID), "VIS1");
    CHECK(!mwl_ds_find(top, MWL_TAG_IssuerOfAdmissionIDSequence));
    CHECK(!mwl_ds_find(top, MWL_TAG_OrderPlacerIdentifierSequence));
    CHECK_EQ_STR(val(top, MWL_TAG_AccessionNumber), "A77");
    CHECK(!mwl_ds_find(top, MWL_TAG_IssuerOfAccessionNumberSequence));
    CHECK_EQ_STR(val(top, MWL_TAG_StudyInstanceUID), "1.2.3.4.77");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedurePriority), "STAT");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientTransportArrangements), "PORT");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedureComments), "Bring old films\r\nClaustrophobic");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepID), "S1");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepDescription), "Head plain");
    CHECK_EQ_STR(val(item(s, MWL_TAG_ScheduledProtocolCodeSequence, 0), MWL_TAG_CodeValue), "P1");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartDate), "20250310");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartTime), "090000");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledPerformingPhysicianName), "TECH^TOM");
    CHECK_EQ_STR(val(s, MWL_TAG_Modality), "MR");
    CHECK(!mwl_ds_find(s, MWL_TAG_ScheduledStationAETitle)); /* no rule */
    const mwl_ds *s2 = sps(&plan.steps[1]);
    CHECK_EQ_STR(plan.steps[1].study_uid, "1.2.3.4.77");
    CHECK_EQ_STR(val(s2, MWL_TAG_ScheduledProcedureStepID), "S2");
    CHECK_EQ_STR(val(s2, MWL_TAG_Modality), "MR"); /* MRI (table 0074) */
    CHECK_EQ_STR(val(s2, MWL_TAG_ScheduledProcedureStepStartTime), "100000");
    CHECK(!mwl_ds_find(plan.steps[1].item, MWL_TAG_RequestedProcedureComments)); /* NTE belongs to OBR 1 */
}

/* Two ORC/OBR pairs with the same OBR-20: one SPS with both protocols. */
static void test_orm_equal_sps_merge(void)
{
    static const char msg[] =
        ORM_MSH("M2") ORM_PID "ORC|NW|PO2|FO2||SC\n"
                              "OBR|1|PO2|FO2|^^^P1^Head^L||||||||||||||A78|RP78|S1||||CT\n"
                              "ZDS|1.2.3.4.78\n"
                              "ORC|NW|PO2|FO2||SC\n"
                              "OBR|2|PO2|FO2|^^^P2^Neck^L||||||||||||||A78|RP78|S1||||CT\n"
                              "ZDS|1.2.3.4.78\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(msg, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.step_count, 1);
    if (plan.step_count != 1)
        return;
    const mwl_ds *s = sps(&plan.steps[0]);
    CHECK_EQ_INT(items(s, MWL_TAG_ScheduledProtocolCodeSequence), 2);
    CHECK_EQ_STR(val(item(s, MWL_TAG_ScheduledProtocolCodeSequence, 1), MWL_TAG_CodeValue), "P2");
}

/* No ZDS: a UID derived from facility + placer order number, the same in
 * NW and a later XO, another for another order; REJECT refuses. */
static void test_generated_uid(void)
{
    static const char nw[] = ORM_MSH("M3") ORM_PID "ORC|NW|PO9|FO9||SC\n"
                                                   "OBR|1|PO9|FO9|||||||||||||||A9|RP9|S9||||CT\n";
    static const char xo[] = ORM_MSH("M4") "ORC|XO|PO9|FO9||CM\n"
                                           "OBR|1|PO9|FO9|||||||||||||||A9|RP9|S9\n";
    static const char other[] = ORM_MSH("M5") ORM_PID "ORC|NW|PO10|FO9||SC\n"
                                                      "OBR|1|PO10|FO9|||||||||||||||A9|RP9|S9||||CT\n";
    mwl_hl7_plan a, b, o;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(nw, &a, &err), MWL_OK);
    CHECK_EQ_INT(map(xo, &b, &err), MWL_OK);
    CHECK_EQ_INT(map(other, &o, &err), MWL_OK);
    if (a.step_count != 1 || b.step_count != 1 || o.step_count != 1) {
        CHECK(0);
        return;
    }
    const char *uid = a.steps[0].study_uid;
    CHECK(strncmp(uid, "2.25.", 5) == 0);
    CHECK(strlen(uid) <= 64 && strlen(uid) > 20);
    CHECK(strspn(uid, "0123456789.") == strlen(uid));
    CHECK_EQ_STR(b.steps[0].study_uid, uid);
    CHECK_EQ_STR(val(b.steps[0].item, MWL_TAG_StudyInstanceUID), uid);
    CHECK(strcmp(o.steps[0].study_uid, uid) != 0);
    CHECK_EQ_INT(b.steps[0].op, MWL_HL7_STEP_UPDATE);
    CHECK_EQ_STR(b.steps[0].status, "COMPLETED");

    /* a configured root, and a long one cut to 64 characters */
    mwl_hl7_map_config cfg;
    mwl_hl7_map_config_init(&cfg);
    cfg.uid_root = "1.2.826.0.1.3680043.9.7777";
    CHECK_EQ_INT(map_cfg(nw, &cfg, &a, &err), MWL_OK);
    if (a.step_count == 1) {
        CHECK(strncmp(a.steps[0].study_uid, "1.2.826.0.1.3680043.9.7777.", 27) == 0);
        CHECK_EQ_INT(strlen(a.steps[0].study_uid), 64);
    }
    cfg.uid_root = "1.2.3.";
    CHECK_EQ_INT(map_cfg(nw, &cfg, &a, &err), MWL_E_INVALID);

    mwl_hl7_map_config_init(&cfg);
    cfg.uid_policy = MWL_HL7_UID_REJECT;
    CHECK_EQ_INT(map_cfg(nw, &cfg, &a, &err), MWL_E_INVALID);
    CHECK_EQ_STR(where(&err), "AE 101 ZDS^1^1");
    CHECK_EQ_INT(a.step_count, 0);
}

/* OMI^O23 with two IPCs sharing ORC/TQ1/OBR, and a second order group. */
static void test_omi_two_ipcs(void)
{
    static const char msg[] = OMI_MSH "PID|||PAT9^^^HOSP||ROE^JANE\n"
                                      "ORC|NW|PL9|FL9||SC\n"
                                      "TQ1|1||||||202503040915||S\n"
                                      "OBR|1|PL9|FL9|XR^Chest^L\n"
                                      "IPC|ACC9|RP9|1.2.3.9|SPS9A|DX|P1^PA^L||RAD-XR|XR01~XR02\n"
                                      "IPC|ACC9|RP9|1.2.3.9|SPS9B|DX|P2^LAT^L||RAD-XR|XR01\n"
                                      "ORC|NW|PL10|FL10||SC\n"
                                      "TQ1|1||||||20250305||R\n"
                                      "OBR|2|PL10|FL10|US^Abdomen^L\n"
                                      "IPC|ACC10|RP10|1.2.3.10|SPS10|US\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(msg, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.step_count, 3);
    if (plan.step_count != 3)
        return;
    for (size_t i = 0; i < 2; i++) {
        const mwl_ds *s = sps(&plan.steps[i]);
        CHECK_EQ_STR(val(plan.steps[i].item, MWL_TAG_RequestedProcedurePriority), "STAT");
        CHECK_EQ_STR(val(plan.steps[i].item, MWL_TAG_AccessionNumber), "ACC9");
        CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartDate), "20250304");
        CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartTime), "0915");
        CHECK_EQ_STR(val(s, MWL_TAG_Modality), "DX");
    }
    CHECK_EQ_STR(plan.steps[0].sps_id, "SPS9A");
    CHECK_EQ_STR(plan.steps[1].sps_id, "SPS9B");
    CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle), "XR01\\XR02");
    CHECK_EQ_STR(val(sps(&plan.steps[1]), MWL_TAG_ScheduledStationAETitle), "XR01");
    CHECK_EQ_INT(plan.steps[0].segment_seq, 1);
    CHECK_EQ_INT(plan.steps[1].segment_seq, 2);
    CHECK_EQ_STR(plan.steps[2].study_uid, "1.2.3.10");
    CHECK_EQ_STR(val(plan.steps[2].item, MWL_TAG_RequestedProcedurePriority), "ROUTINE");
    CHECK_EQ_STR(val(sps(&plan.steps[2]), MWL_TAG_ScheduledProcedureStepStartDate), "20250305");
    CHECK(!mwl_ds_find(sps(&plan.steps[2]), MWL_TAG_ScheduledProcedureStepStartTime));

    /* an OBR without IPC in OMI */
    static const char no_ipc[] = OMI_MSH "PID|||PAT9\nORC|NW|PL9\nOBR|1|PL9\n";
    CHECK_EQ_INT(map(no_ipc, &plan, &err), MWL_E_INVALID);
    CHECK_EQ_INT(err.code, MWL_HL7_ERR_REQUIRED_MISSING);
    CHECK_EQ_STR(err.segment, "IPC");
}

/* Latin-1 with MSH-18 empty (the parser's default), and Japanese names
 * in ideographic and phonetic repetitions. */
static void test_charsets(void)
{
    static const char latin1[] = "MSH|^~\\&|RIS|H|MWL|M|20250301||ORM^O01|L1|P|2.3.1\n"
                                 "PID|||P1||M\xfcller^J\xfcrgen\n"
                                 "ORC|NW|PO1\nOBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\nZDS|1.2.3\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(latin1, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK_EQ_STR(val(plan.steps[0].item, MWL_TAG_PatientName), "M\xc3\xbcller^J\xc3\xbcrgen");
        CHECK_EQ_STR(val(plan.steps[0].item, MWL_TAG_SpecificCharacterSet), "ISO_IR 192");
    }
    static const char japanese[] =
        OMI_MSH "PID|||P2||Yamada^Tarou^^^^^L^A~\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e^^^^^L^I~"
                "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86^^^^^L^P\n"
                "ORC|NW|PL1\nOBR|1|PL1\nIPC|A2|RP2|1.2.4|S2|MR\n";
    CHECK_EQ_INT(map(japanese, &plan, &err), MWL_OK);
    if (plan.step_count == 1)
        CHECK_EQ_STR(val(plan.steps[0].item, MWL_TAG_PatientName),
                     "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
                     "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86");
    /* 2.5 FN: family name as sub-components */
    static const char fn[] =
        OMI_MSH "PID|||P3||van&Dijk^Anna\nORC|NW|PL1\nOBR|1|PL1\nIPC|A2|RP2|1.2.4|S2|MR\n";
    CHECK_EQ_INT(map(fn, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK_EQ_STR(val(plan.steps[0].item, MWL_TAG_PatientName), "van^Anna");
        CHECK(!mwl_ds_find(plan.steps[0].item, MWL_TAG_SpecificCharacterSet));
    }
}

/* Every order control code with its status (docs/hl7.md). */
static void test_order_control(void)
{
    static const struct {
        const char *orc1, *orc5;
        int rc;
        mwl_hl7_action action;
        mwl_hl7_step_op op;
        const char *status; /* NULL = none */
        const char *err;    /* for MWL_E_INVALID */
    } cases[] = {
        {"NW", "SC", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_CREATE, "SCHEDULED", NULL},
        {"NW", "IP", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_CREATE, "SCHEDULED", NULL},
        {"NW", "", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_CREATE, "SCHEDULED", NULL},
        {"XO", "SC", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, "SCHEDULED", NULL},
        {"XO", "IP", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, "STARTED", NULL},
        {"XO", "CM", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, "COMPLETED", NULL},
        {"XO", "CA", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, "CANCELED", NULL},
        {"XO", "DC", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, "DISCONTINUED", NULL},
        {"XO", "", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, NULL, NULL},
        {"XO", "HD", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_UPDATE, NULL, NULL},
        {"SC", "IP", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "STARTED", NULL},
        {"SC", "CM", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "COMPLETED", NULL},
        {"SC", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"CA", "CA", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "CANCELED", NULL},
        {"CA", "", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "CANCELED", NULL},
        {"OC", "CA", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "CANCELED", NULL},
        {"DC", "CA", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "DISCONTINUED", NULL},
        {"OD", "", MWL_OK, MWL_HL7_ORDER, MWL_HL7_STEP_STATUS, "DISCONTINUED", NULL},
        {"OK", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"UA", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"CR", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"UC", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"DR", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"UD", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"NA", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"SN", "", MWL_OK, MWL_HL7_IGNORE, 0, NULL, NULL},
        {"HD", "", MWL_E_INVALID, 0, 0, NULL, "AE 103 ORC^1^1"},
        {"RL", "", MWL_E_INVALID, 0, 0, NULL, "AE 103 ORC^1^1"},
        {"RP", "", MWL_E_INVALID, 0, 0, NULL, "AE 103 ORC^1^1"},
        {"RU", "", MWL_E_INVALID, 0, 0, NULL, "AE 103 ORC^1^1"},
        {"ZZ", "", MWL_E_INVALID, 0, 0, NULL, "AE 103 ORC^1^1"},
        {"", "", MWL_E_INVALID, 0, 0, NULL, "AE 101 ORC^1^1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 ORM_MSH("C%zu") ORM_PID "ORC|%s|PO1|FO1||%s\nOBR|1|PO1|FO1|||||||||||||||A1|RP1|S1||||CT\n"
                                         "ZDS|1.2.3.4\n",
                 i, cases[i].orc1, cases[i].orc5);
        mwl_hl7_plan plan;
        mwl_hl7_error err;
        int rc = map(msg, &plan, &err);
        bool ok = rc == cases[i].rc;
        if (ok && rc == MWL_OK) {
            ok = plan.action == cases[i].action;
            if (ok && plan.action == MWL_HL7_ORDER)
                ok = plan.step_count == 1 && plan.steps[0].op == cases[i].op &&
                     (cases[i].status ? plan.steps[0].status && !strcmp(plan.steps[0].status, cases[i].status)
                                      : !plan.steps[0].status);
        } else if (ok) {
            ok = !strcmp(where(&err), cases[i].err) && plan.step_count == 0;
        }
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  ORC %s/%s: rc %d action %d %s\n", cases[i].orc1, cases[i].orc5, rc,
                    plan.action, rc ? where(&err) : "");
    }
    /* STATUS carries the identity only */
    static const char ca[] =
        ORM_MSH("C99") ORM_PID "ORC|CA|PO1|FO1||CA\n"
                               "OBR|1|PO1|FO1|||||||||||||||A1|RP1|S1||||CT\nZDS|1.2.3.4\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(ca, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        const mwl_ds *top = plan.steps[0].item;
        CHECK_EQ_INT(mwl_ds_count(top), 4); /* accession, Study UID, RP ID, SPS sequence */
        CHECK(!mwl_ds_find(top, MWL_TAG_PatientID));
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledProcedureStepID), "S1");
        CHECK(!mwl_ds_find(sps(&plan.steps[0]), MWL_TAG_Modality));
    }
}

static void expect_error(const char *msg, const char *want, const char *text_part)
{
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    int rc = map(msg, &plan, &err);
    CHECK_EQ_INT(rc, MWL_E_INVALID);
    CHECK_EQ_STR(where(&err), want);
    CHECK_EQ_INT(plan.step_count, 0);
    CHECK_EQ_INT(plan.action, MWL_HL7_IGNORE);
    if (text_part && !strstr(err.text, text_part)) {
        CHECK(0);
        fprintf(stderr, "  error text '%s' lacks '%s'\n", err.text, text_part);
    }
}

static void test_errors(void)
{
    /* bad dates name the field */
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nTQ1|1||||||20250230\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|CT\n",
                 "AE 102 TQ1^1^7", "TQ1-7");
    expect_error(ORM_MSH("E1") ORM_PID "ORC|NW|PO1|FO1||SC||^^^2025031x\n"
                                       "OBR|1|PO1|FO1|||||||||||||||A1|RP1|S1||||CT\nZDS|1.2.3\n",
                 "AE 102 ORC^1^7", "ORC-7.4");
    expect_error(ORM_MSH("E2") "PID|||P1||X^Y||1970\nORC|NW|PO1\nOBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\n"
                               "ZDS|1.2.3\n",
                 "AE 102 PID^1^7", "PID-7");
    /* unknown or ambiguous modality */
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|RAD\n", "AE 103 IPC^1^5", "RAD");
    expect_error(ORM_MSH("E3") ORM_PID "ORC|NW|PO1\nOBR|1|PO1||||||||||||||||A1|RP1|S1||||XYZ\nZDS|1.2.3\n",
                 "AE 103 OBR^1^24", NULL);
    /* values too long for their VR are refused, not cut */
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC|ACCESSION12345678|RP|1.2.3|S|CT\n",
                 "AE 102 IPC^1^1", "SH");
    expect_error(ORM_MSH("E4") ORM_PID
                 "ORC|NW|PO1\nOBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\n"
                 "ZDS|1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26\n",
                 "AE 102 ZDS^1^1", NULL);
    expect_error(OMI_MSH "PID|||P1||"
                         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA^B\n"
                         "ORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|CT\n",
                 "AE 102 PID^1^5", "PN");
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|CT||||AE_TITLE_TOO_LONG1\n",
                 "AE 102 IPC^1^9", "AE");
    /* required fields */
    expect_error(OMI_MSH "PID|||^^^HOSP\nORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|CT\n", "AE 101 PID^1^3",
                 NULL);
    expect_error(OMI_MSH "ORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|CT\n", "AE 101 PID^1^3", NULL);
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC||||\n", "AE 101 IPC^1^4", NULL);
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S\n", "AE 101 IPC^1^5", "Modality");
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.x|S|CT\n", "AE 102 IPC^1^3", NULL);
    /* the second group fails: no step of the first comes out */
    expect_error(OMI_MSH "PID|||P1\nORC|NW|PL1\nOBR|1|PL1\nIPC|A|RP|1.2.3|S|CT\n"
                         "ORC|NW|PL2\nOBR|2|PL2\nIPC|B|RP|1.2.4|S|BAD\n",
                 "AE 103 IPC^2^5", NULL);
    expect_error(ORM_MSH("E5") ORM_PID "OBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\n", "AE 100 OBR^1^0", NULL);
    expect_error(ORM_MSH("E6") ORM_PID "ORC|NW|PO1\n", "AE 100 ORC^1^0", NULL);
    expect_error(ORM_MSH("E7") ORM_PID "ORC|NW|PO1\nORC|NW|PO2\nOBR|1|PO2||||||||||||||||A1|RP1|S1||||CT\n",
                 "AE 100 ORC^1^0", NULL);
    {
        /* a response code needs no OBR */
        mwl_hl7_plan plan;
        mwl_hl7_error err;
        CHECK_EQ_INT(map(ORM_MSH("E8") ORM_PID "ORC|OK|PO1\n", &plan, &err), MWL_OK);
        CHECK_EQ_INT(plan.action, MWL_HL7_IGNORE);
    }
    /* unsupported types, events, versions, processing IDs */
    expect_error("MSH|^~\\&|A|B|C|D|20250301||ORU^R01|X1|P|2.5.1\nPID|||P1\n", "AR 200 MSH^1^9", NULL);
    expect_error("MSH|^~\\&|A|B|C|D|20250301||ORM^O02|X2|P|2.3.1\nPID|||P1\n", "AR 201 MSH^1^9", NULL);
    expect_error("MSH|^~\\&|A|B|C|D|20250301||ADT^A02|X3|P|2.3.1\nPID|||P1\n", "AR 201 MSH^1^9", NULL);
    expect_error("MSH|^~\\&|A|B|C|D|20250301||ADT^A08|X4|P|2.2\nPID|||P1\n", "AR 203 MSH^1^12", NULL);
    expect_error("MSH|^~\\&|A|B|C|D|20250301||ADT^A08|X5|P|2.9\nPID|||P1\n", "AR 203 MSH^1^12", NULL);
    expect_error("MSH|^~\\&|A|B|C|D|20250301||ADT^A08|X6|X|2.5\nPID|||P1\n", "AR 202 MSH^1^11", NULL);
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map("MSH|^~\\&|A|B|C|D|20250301||ADT^A08|X7|T|2.8.2\nPID|||P1\n", &plan, &err), MWL_OK);
    CHECK_EQ_INT(map("MSH|^~\\&|A|B|C|D|20250301||ADT^A08|X7|D|2.3\nPID|||P1\n", &plan, &err), MWL_OK);
}

static void expect_error_cfg(const char *msg, const mwl_hl7_map_config *cfg, const char *want)
{
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map_cfg(msg, cfg, &plan, &err), MWL_E_INVALID);
    CHECK_EQ_STR(where(&err), want);
    CHECK_EQ_INT(plan.step_count, 0);
}

/* Rows the other tests leave out: other patient IDs, pregnancy, patient
 * state, confidentiality, mother's name, allergies in an order, coded
 * reason, long code values, priority in ORC-7.6. */
static void test_more_rows(void)
{
    static const char msg[] = "MSH|^~\\&|RIS|HOSP|MWL|MWLSRV|20250301101500||ORM^O01|R1|P|2.4\n"
                              "PID|||OLD1^^^OTHER~P55^^^HOSP||DOE^JANE||19800101|F||||||||||||||||||||||\n"
                              "PV1||O|||||||||||||B6~B1\n"
                              "AL1|1||IOD^Iodine contrast\n"
                              "ORC|NW|PO1|FO1||SC||^^^20250310^^A|||||||||||||||||||||^restricted\n"
                              "OBR|1|PO1|FO1|^^^A_PROTOCOL_CODE_LONGER_THAN_16^Long^LOCAL||||||||ISOLATION|"
                              "ALERT|||||A1|RP1|S1||||CT||||||"
                              "|R51^Headache^I10\n"
                              "ZDS|1.2.3\n";
    mwl_hl7_map_config cfg;
    mwl_hl7_map_config_init(&cfg);
    cfg.patient_issuer = "HOSP";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map_cfg(msg, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count != 1) {
        CHECK(0);
        fprintf(stderr, "  %s\n", err.text);
        return;
    }
    const mwl_ds *top = plan.steps[0].item, *s = sps(&plan.steps[0]);
    CHECK_EQ_STR(val(top, MWL_TAG_PatientID), "P55");
    CHECK_EQ_STR(val(top, MWL_TAG_IssuerOfPatientID), "HOSP");
    const mwl_ds *o = item(top, MWL_TAG_OtherPatientIDsSequence, 0);
    CHECK_EQ_INT(items(top, MWL_TAG_OtherPatientIDsSequence), 1);
    CHECK_EQ_STR(val(o, MWL_TAG_PatientID), "OLD1");
    CHECK_EQ_STR(val(o, MWL_TAG_IssuerOfPatientID), "OTHER");
    CHECK_EQ_STR(val(o, MWL_TAG_TypeOfPatientID), "TEXT");
    const mwl_elem *preg = mwl_ds_find(top, MWL_TAG_PregnancyStatus);
    int64_t v = 0;
    CHECK(preg && mwl_elem_get_int(preg, 0, &v) == MWL_OK && v == 3);
    CHECK_EQ_STR(val(top, MWL_TAG_PatientState), "ISOLATION");
    CHECK_EQ_STR(val(top, MWL_TAG_MedicalAlerts), "ALERT");
    CHECK_EQ_STR(val(top, MWL_TAG_ConfidentialityCode), "restricted");
    CHECK_EQ_STR(val(top, MWL_TAG_Allergies), "Iodine contrast");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedurePriority), "HIGH");
    CHECK_EQ_STR(val(top, MWL_TAG_ReasonForTheRequestedProcedure), "Headache");
    const mwl_ds *r = item(top, MWL_TAG_ReasonForRequestedProcedureCodeSequence, 0);
    CHECK_EQ_STR(val(r, MWL_TAG_CodeValue), "R51");
    CHECK_EQ_STR(val(r, MWL_TAG_CodingSchemeDesignator), "I10");
    const mwl_ds *pc = item(s, MWL_TAG_ScheduledProtocolCodeSequence, 0);
    CHECK(!mwl_ds_find(pc, MWL_TAG_CodeValue));
    CHECK_EQ_STR(val(pc, MWL_TAG_LongCodeValue), "A_PROTOCOL_CODE_LONGER_THAN_16");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepStartDate), "20250310");
    CHECK(!mwl_ds_find(s, MWL_TAG_ScheduledProcedureStepStartTime));

    /* REJECT names the ZDS by the number of its OBR */
    static const char two[] =
        ORM_MSH("R2") ORM_PID "ORC|NW|PO1\nOBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\n"
                              "ZDS|1.2.3\nORC|NW|PO2\nOBR|2|PO2||||||||||||||||A2|RP2|S2||||CT\n";
    cfg.uid_policy = MWL_HL7_UID_REJECT;
    expect_error_cfg(two, &cfg, "AE 101 ZDS^2^1");
}

static void test_adt(void)
{
    static const char a08[] = "MSH|^~\\&|ADT|H|MWL|M|20250301||ADT^A08^ADT_A01|A1|P|2.5.1\n"
                              "EVN|A08|20250301\n"
                              "PID|||OLD1^^^OTHER~P55^^^HOSP||NEW^NAME||19800101|\"\"|||\"\"\n"
                              "PV1||I|W1||||||||||||||||||||||||||||||||||||||||||||||||||||\n"
                              "AL1|1||PEN^Penicillin\nAL1|2||^Latex\n";
    mwl_hl7_map_config cfg;
    mwl_hl7_map_config_init(&cfg);
    cfg.patient_issuer = "HOSP";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map_cfg(a08, &cfg, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.action, MWL_HL7_PATIENT_UPDATE);
    CHECK_EQ_STR(plan.patient_id, "P55");
    CHECK_EQ_STR(plan.issuer, "HOSP");
    const mwl_ds *d = plan.demographics;
    CHECK_EQ_STR(val(d, MWL_TAG_PatientName), "NEW^NAME");
    CHECK_EQ_STR(val(d, MWL_TAG_PatientBirthDate), "19800101");
    CHECK_EQ_STR(val(d, MWL_TAG_PatientSex), ""); /* "" clears */
    CHECK_EQ_STR(val(d, MWL_TAG_PatientAddress), "");
    CHECK_EQ_STR(val(d, MWL_TAG_Allergies), "Penicillin\\Latex");
    CHECK(!mwl_ds_find(d, MWL_TAG_PatientID));
    CHECK(!mwl_ds_find(d, MWL_TAG_PatientMotherBirthName)); /* not sent: kept */
    CHECK(!mwl_ds_find(d, MWL_TAG_CurrentPatientLocation)); /* not a demographic */
    CHECK(!mwl_ds_find(d, MWL_TAG_OtherPatientIDsSequence));
    for (size_t i = 0; i < mwl_ds_count(d); i++) {
        uint32_t t = mwl_ds_at(d, i)->tag;
        CHECK(MWL_TAG_GROUP(t) == 0x0010 || t == MWL_TAG_SpecificCharacterSet || t == MWL_TAG_PatientState);
    }
    /* without a configured issuer: the first repetition */
    CHECK_EQ_INT(map(a08, &plan, &err), MWL_OK);
    CHECK_EQ_STR(plan.patient_id, "OLD1");
    CHECK_EQ_STR(plan.issuer, "OTHER");

    static const char a40[] =
        "MSH|^~\\&|ADT|H|MWL|M|20250301||ADT^A40^ADT_A39|A2|P|2.5.1||||||UNICODE UTF-8\n"
        "EVN|A40|20250301\n"
        "PID|||P56||R\xc3\xa9my^Ann\n"
        "MRG|P12^^^HOSP\n";
    CHECK_EQ_INT(map_cfg(a40, &cfg, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.action, MWL_HL7_PATIENT_MERGE);
    CHECK_EQ_STR(plan.patient_id, "P56");
    CHECK_EQ_STR(plan.issuer, "HOSP"); /* the configured issuer for an ID without one */
    CHECK_EQ_STR(plan.prior_id, "P12");
    CHECK_EQ_STR(plan.prior_issuer, "HOSP");
    CHECK_EQ_STR(val(plan.demographics, MWL_TAG_PatientName), "R\xc3\xa9my^Ann");
    CHECK_EQ_STR(val(plan.demographics, MWL_TAG_SpecificCharacterSet), "ISO_IR 192");
    CHECK(strstr(plan.summary, "P12") != NULL);

    expect_error("MSH|^~\\&|ADT|H|MWL|M|20250301||ADT^A40|A3|P|2.3.1\nPID|||P56\nMRG|\n", "AE 101 MRG^1^1",
                 NULL);
    expect_error("MSH|^~\\&|ADT|H|MWL|M|20250301||ADT^A31|A4|P|2.3.1\nPID|||\n", "AE 101 PID^1^3", NULL);
    expect_error("MSH|^~\\&|ADT|H|MWL|M|20250301||ADT^A01|A5|P|2.3.1\nEVN|A01\n", "AE 101 PID^1^3", NULL);
}

/* XO: absent fields are absent, "" gives a zero-length element. */
static void test_update_null_vs_absent(void)
{
    static const char xo[] =
        ORM_MSH("U1") "PID|||P7||\"\"||||||||\n"
                      "ORC|XO|PO1|FO1\n"
                      "OBR|1|PO1|FO1||||||||||\"\"|||||A1|\"\"|S1||||\"\"||||||\"\"|\"\"\n"
                      "ZDS|1.2.3.4\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map(xo, &plan, &err), MWL_OK);
    CHECK_EQ_INT(plan.step_count, 1);
    if (plan.step_count != 1)
        return;
    const mwl_hl7_step *st = &plan.steps[0];
    const mwl_ds *top = st->item, *s = sps(st);
    CHECK_EQ_INT(st->op, MWL_HL7_STEP_UPDATE);
    CHECK(!st->status);
    CHECK(!mwl_ds_find(s, MWL_TAG_ScheduledProcedureStepStatus));
    CHECK_EQ_STR(val(top, MWL_TAG_PatientName), "");
    CHECK_EQ_STR(val(top, MWL_TAG_MedicalAlerts), "");
    CHECK_EQ_STR(val(top, MWL_TAG_RequestedProcedureID), "");
    CHECK_EQ_STR(val(s, MWL_TAG_Modality), "");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientTransportArrangements), "");
    CHECK(mwl_ds_find(top, MWL_TAG_ReasonForRequestedProcedureCodeSequence) != NULL);
    CHECK_EQ_INT(items(top, MWL_TAG_ReasonForRequestedProcedureCodeSequence), 0);
    CHECK_EQ_STR(val(top, MWL_TAG_ReasonForTheRequestedProcedure), "");
    CHECK_EQ_STR(val(top, MWL_TAG_PatientID), "P7");
    /* not sent: absent */
    CHECK(!mwl_ds_find(top, MWL_TAG_PatientBirthDate));
    CHECK(!mwl_ds_find(top, MWL_TAG_PatientSex));
    CHECK(!mwl_ds_find(top, MWL_TAG_RequestingPhysician));
    CHECK(!mwl_ds_find(top, MWL_TAG_ReferringPhysicianName));
    CHECK(!mwl_ds_find(s, MWL_TAG_ScheduledProcedureStepStartDate));
    CHECK(!mwl_ds_find(s, MWL_TAG_ScheduledStationAETitle));
    CHECK(!mwl_ds_find(top, MWL_TAG_RequestedProcedurePriority));
    /* the identity stays */
    CHECK_EQ_STR(val(top, MWL_TAG_StudyInstanceUID), "1.2.3.4");
    CHECK_EQ_STR(val(s, MWL_TAG_ScheduledProcedureStepID), "S1");

    /* in NW, "" is as good as absent */
    static const char nw[] = ORM_MSH("U2") "PID|||P7||\"\"\nORC|NW|PO1|FO1\n"
                                           "OBR|1|PO1|FO1||||||||||\"\"|||||A1|RP1|S1||||CT\nZDS|1.2.3.4\n";
    CHECK_EQ_INT(map(nw, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK(!mwl_ds_find(plan.steps[0].item, MWL_TAG_PatientName));
        CHECK(!mwl_ds_find(plan.steps[0].item, MWL_TAG_MedicalAlerts));
    }
}

static void test_defaults_and_stations(void)
{
    mwl_hl7_station_rule rules[3];
    mwl_diag diag;
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("CT@WARD1 CT_WARD CTW", &rules[0], &diag), MWL_OK);
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("  CT   CT_MAIN ", &rules[1], &diag), MWL_OK);
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("* ANY_AE", &rules[2], &diag), MWL_OK);
    CHECK_EQ_STR(rules[0].location, "WARD1");
    CHECK_EQ_STR(rules[0].station_name, "CTW");
    CHECK_EQ_STR(rules[1].station_name, "");
    char buf[128];
    CHECK_EQ_INT(mwl_hl7_station_rule_format(&rules[0], buf, sizeof buf), MWL_OK);
    CHECK_EQ_STR(buf, "CT@WARD1 CT_WARD CTW");
    CHECK_EQ_INT(mwl_hl7_station_rule_format(&rules[0], buf, 5), MWL_E_LIMIT);
    mwl_hl7_station_rule bad;
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("CT", &bad, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("CT A B C", &bad, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("CT@ AET", &bad, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_station_rule_parse("CT AE_TITLE_IS_TOO_LONG", &bad, &diag), MWL_E_INVALID);

    mwl_hl7_default defs[3];
    CHECK_EQ_INT(mwl_hl7_default_parse("Modality=OT", &defs[0], &diag), MWL_OK);
    CHECK_EQ_INT(mwl_hl7_default_parse(" ScheduledStationAETitle = FALLBACK ", &defs[1], &diag), MWL_OK);
    CHECK_EQ_INT(mwl_hl7_default_parse("PatientTransportArrangements=WALK", &defs[2], &diag), MWL_OK);
    CHECK_EQ_STR(defs[1].keyword, "ScheduledStationAETitle");
    CHECK_EQ_STR(defs[1].value, "FALLBACK");
    CHECK_EQ_INT(mwl_hl7_default_format(&defs[1], buf, sizeof buf), MWL_OK);
    CHECK_EQ_STR(buf, "ScheduledStationAETitle=FALLBACK");
    mwl_hl7_default bd;
    CHECK_EQ_INT(mwl_hl7_default_parse("NoSuchKeyword=1", &bd, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_default_parse("PatientID=X", &bd, &diag), MWL_E_INVALID);        /* identity */
    CHECK_EQ_INT(mwl_hl7_default_parse("StudyDescription=X", &bd, &diag), MWL_E_INVALID); /* not mapped */
    CHECK_EQ_INT(mwl_hl7_default_parse("ScheduledProtocolCodeSequence=X", &bd, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_default_parse("Modality", &bd, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_default_parse("Modality=", &bd, &diag), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_hl7_default_parse("ScheduledStationAETitle=MUCH_TOO_LONG_AE_TITLE", &bd, &diag),
                 MWL_E_INVALID);

    mwl_hl7_map_config cfg;
    mwl_hl7_map_config_init(&cfg);
    cfg.stations = rules;
    cfg.station_count = 2;
    cfg.defaults = defs;
    cfg.default_count = 3;
    /* PV1-3.1 WARD1 + CT: the first rule */
    static const char ward[] =
        ORM_MSH("S1") ORM_PID ORM_PV1 "ORC|NW|PO1\n"
                                      "OBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\nZDS|1.2.3\n";
    mwl_hl7_plan plan;
    mwl_hl7_error err;
    CHECK_EQ_INT(map_cfg(ward, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle), "CT_WARD");
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationName), "CTW");
        CHECK_EQ_STR(val(plan.steps[0].item, MWL_TAG_PatientTransportArrangements), "WALK");
    }
    /* elsewhere: the second rule */
    static const char other[] = ORM_MSH("S2") ORM_PID "ORC|NW|PO1\n"
                                                      "OBR|1|PO1||||||||||||||||A1|RP1|S1||||CT\nZDS|1.2.3\n";
    CHECK_EQ_INT(map_cfg(other, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle), "CT_MAIN");
        CHECK(!mwl_ds_find(sps(&plan.steps[0]), MWL_TAG_ScheduledStationName));
    }
    /* no modality sent: the default OT, no rule matches: the default AE */
    static const char nomod[] =
        ORM_MSH("S3") ORM_PID "ORC|NW|PO1\n"
                              "OBR|1|PO1||||||||||||||||A1|RP1|S1||||||||||PORT\nZDS|1.2.3\n";
    CHECK_EQ_INT(map_cfg(nomod, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_Modality), "OT");
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle), "FALLBACK");
        CHECK_EQ_STR(val(plan.steps[0].item, MWL_TAG_PatientTransportArrangements), "PORT"); /* sent wins */
    }
    /* a "*" rule, and ORC-18 when configured */
    cfg.stations = rules + 2;
    cfg.station_count = 1;
    CHECK_EQ_INT(map_cfg(ward, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count == 1)
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle), "ANY_AE");
    cfg.station_aet_from_orc18 = true;
    static const char orc18[] = ORM_MSH("S4") ORM_PID "ORC|NW|PO1||||||||||||||||MR_ORC18\n"
                                                      "OBR|1|PO1||||||||||||||||A1|RP1|S1||||MR\nZDS|1.2.3\n";
    CHECK_EQ_INT(map_cfg(orc18, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count == 1)
        CHECK_EQ_STR(val(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle), "MR_ORC18");
    /* defaults never fill an update */
    static const char xo[] = ORM_MSH("S5") "ORC|XO|PO1\nOBR|1|PO1||||||||||||||||A1|RP1|S1\nZDS|1.2.3\n";
    CHECK_EQ_INT(map_cfg(xo, &cfg, &plan, &err), MWL_OK);
    if (plan.step_count == 1) {
        CHECK(!mwl_ds_find(sps(&plan.steps[0]), MWL_TAG_Modality));
        CHECK(!mwl_ds_find(sps(&plan.steps[0]), MWL_TAG_ScheduledStationAETitle));
    }
}

/* Every row of map_table.c appears in docs/hl7.md: a table line that
 * starts with its keyword and names its sources. */
static void test_docs_in_sync(void)
{
    const char *dir = getenv("MWL_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/hl7.md", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static char doc[200000];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    doc[n] = '\0';
    fclose(f);
    for (size_t i = 0; i < mwl_hl7_map_row_count; i++) {
        const mwl_hl7_map_row *row = &mwl_hl7_map_rows[i];
        char head[128], orm[96], omi[96];
        snprintf(head, sizeof head, "\n| %s |", row->keyword);
        CHECK(mwl_dict_find_keyword(row->keyword) && mwl_dict_find_keyword(row->keyword)->tag == row->tag);
        const char *line = strstr(doc, head);
        mwl_hl7_src_format(row->orm, orm, sizeof orm);
        mwl_hl7_src_format(row->omi, omi, sizeof omi);
        bool ok = line != NULL;
        if (ok) {
            const char *end = strchr(line + 1, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            char *l = mwl_arena_strndup(&arena, line, len);
            ok = (!orm[0] || strstr(l, orm)) && (!omi[0] || strstr(l, omi));
        }
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  docs/hl7.md: no line '| %s | ... %s ... %s'\n", row->keyword, orm, omi);
    }
}

/* Every prefix of the example messages (cut anywhere, also inside a
 * field) parses and maps to a plan or a clean error, never a crash (the
 * ASan build runs this). */
static void test_prefixes(void)
{
    static const char *const msgs[] = {worked_example, ORM_MSH("T1") ORM_PID ORM_PV1
                                       "ORC|NW|PO1|FO1||SC||^^^20250310090000^^S\n"
                                       "OBR|1|PO1|FO1|^^^P1^Head^L|||||||||||||||A1|RP1|S1||||MR\nNTE|1||x\n"
                                       "ZDS|1.2.3\n"};
    for (size_t k = 0; k < 2; k++) {
        size_t n = strlen(msgs[k]);
        for (size_t len = 12; len <= n; len++) {
            char *copy = mwl_arena_strndup(&arena, msgs[k], len);
            for (size_t i = 0; i < len; i++)
                if (copy[i] == '\n')
                    copy[i] = '\r';
            mwl_hl7_msg *m = NULL;
            mwl_hl7_error err;
            if (mwl_hl7_parse((const uint8_t *)copy, len, NULL, &arena, &m, &err) != MWL_OK)
                continue;
            mwl_hl7_plan plan;
            int rc = mwl_hl7_map(m, NULL, &arena, &plan, &err);
            CHECK(rc == MWL_OK || (rc == MWL_E_INVALID && err.ack != MWL_HL7_AA && plan.step_count == 0));
        }
    }
}

/* Out of memory at each allocation of the mapping: MWL_E_NOMEM (AR 207),
 * never a partial plan, until it completes. */
static void test_out_of_memory(void)
{
    const mwl_hl7_msg *m = parse(worked_example);
    if (!m)
        return;
    bool completed = false;
    for (size_t fail_at = 1; fail_at < 2000 && !completed; fail_at++) {
        mwl_mem_failing failing;
        mwl_mem_failing_init(&failing, fail_at);
        mwl_arena a;
        mwl_arena_init(&a, &failing.mem);
        mwl_hl7_plan plan;
        mwl_hl7_error err;
        int rc = mwl_hl7_map(m, NULL, &a, &plan, &err);
        if (rc == MWL_OK) {
            completed = true;
            CHECK_EQ_INT(plan.step_count, 1);
        } else {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
            CHECK_EQ_INT(plan.step_count, 0);
            CHECK_EQ_INT(err.ack, MWL_HL7_AR);
        }
        mwl_arena_clear(&a);
    }
    CHECK(completed);
}

/* mwl_hl7_locate: where an attribute came from, for the ERR of a value a
 * later check refuses. */
static void test_locate(void)
{
    const mwl_hl7_msg *m = parse(worked_example);
    char seg[4];
    unsigned field = 0;
    CHECK(mwl_hl7_locate(m, MWL_TAG_ReferringPhysicianName, seg, &field));
    CHECK_EQ_STR(seg, "PV1");
    CHECK_EQ_INT(field, 8);
    CHECK(mwl_hl7_locate(m, MWL_TAG_AccessionNumber, seg, &field)); /* OMI: IPC-1 */
    CHECK_EQ_STR(seg, "IPC");
    CHECK_EQ_INT(field, 1);
    CHECK(!mwl_hl7_locate(m, MWL_TAG_SOPClassUID, seg, &field));
    CHECK_EQ_STR(seg, "");
}

int main(void)
{
    mwl_arena_init(&arena, NULL);
    RUN_TEST(test_worked_example);
    RUN_TEST(test_orm_zds_two_pairs);
    RUN_TEST(test_orm_equal_sps_merge);
    RUN_TEST(test_generated_uid);
    RUN_TEST(test_omi_two_ipcs);
    RUN_TEST(test_charsets);
    RUN_TEST(test_order_control);
    RUN_TEST(test_errors);
    RUN_TEST(test_more_rows);
    RUN_TEST(test_adt);
    RUN_TEST(test_update_null_vs_absent);
    RUN_TEST(test_defaults_and_stations);
    RUN_TEST(test_prefixes);
    RUN_TEST(test_out_of_memory);
    RUN_TEST(test_docs_in_sync);
    RUN_TEST(test_locate);
    mwl_arena_clear(&arena);
    return check_report("hl7_map_test");
}
