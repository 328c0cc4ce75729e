/* Fuzz target for hl7/map.c: whatever parses is mapped onto worklist items
 * with a site configuration that uses every setting (station rules, a
 * default, a patient issuer, either Study UID policy). A refusal must say
 * why with an AE or AR; a plan must be whole: every step an item with
 * exactly one SPS that encodes, with the identity the feed looks it up by,
 * and a CREATE item that the store's own check (lenient, as the store
 * applies it) takes or refuses without crashing. */
#include <stdlib.h>
#include <string.h>

#include "dicom/codec.h"
#include "dicom/tag.h"
#include "hl7/hl7.h"
#include "worklist/worklist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_step(const mwl_hl7_step *s)
{
    if (!s->item || !s->sps_id || !s->sps_id[0])
        abort();
    const mwl_elem *e = mwl_ds_find(s->item, MWL_TAG_ScheduledProcedureStepSequence);
    if (!e || e->item_count != 1)
        abort();
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    int rc = mwl_ds_encode(s->item, MWL_TS_EXPLICIT_LE, &w);
    if (rc != MWL_OK && rc != MWL_E_NOMEM)
        abort();
    mwl_wbuf_clear(&w);
    if (s->op == MWL_HL7_STEP_CREATE) {
        mwl_item_problem p;
        rc = mwl_worklist_check_item(s->item, MWL_CHECK_LENIENT, &p);
        if (rc != MWL_OK && rc != MWL_E_INVALID && rc != MWL_E_NOMEM)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_hl7_msg *m = NULL;
    mwl_hl7_error err;
    if (mwl_hl7_parse(data, size, NULL, &a, &m, &err) != MWL_OK) {
        mwl_arena_clear(&a);
        return 0;
    }
    mwl_hl7_station_rule rules[2];
    mwl_hl7_default defs[1];
    mwl_diag d;
    if (mwl_hl7_station_rule_parse("CT@RAD-CT CT01 CTROOM1", &rules[0], &d) != MWL_OK ||
        mwl_hl7_station_rule_parse("* ANY01", &rules[1], &d) != MWL_OK ||
        mwl_hl7_default_parse("ScheduledStationName=ROOM9", &defs[0], &d) != MWL_OK)
        abort();
    mwl_hl7_map_config cfg;
    mwl_hl7_map_config_init(&cfg);
    cfg.stations = rules;
    cfg.station_count = size % 3 == 0 ? 0 : 2;
    cfg.defaults = defs;
    cfg.default_count = size % 2;
    cfg.patient_issuer = size % 5 == 0 ? "HOSP" : "";
    cfg.uid_policy = size % 4 == 0 ? MWL_HL7_UID_REJECT : MWL_HL7_UID_GENERATE;
    cfg.station_aet_from_orc18 = size % 7 == 0;
    mwl_hl7_plan plan;
    memset(&err, 0, sizeof err);
    int rc = mwl_hl7_map(m, &cfg, &a, &plan, &err);
    if (rc == MWL_OK) {
        if (plan.action == MWL_HL7_ORDER) {
            for (size_t i = 0; i < plan.step_count; i++)
                check_step(&plan.steps[i]);
        } else if (plan.action == MWL_HL7_PATIENT_UPDATE || plan.action == MWL_HL7_PATIENT_MERGE) {
            if (!plan.patient_id || !plan.patient_id[0])
                abort();
            if (plan.action == MWL_HL7_PATIENT_MERGE && (!plan.prior_id || !plan.prior_id[0]))
                abort();
        }
    } else if (rc == MWL_E_INVALID) {
        if (err.ack != MWL_HL7_AE && err.ack != MWL_HL7_AR)
            abort(); /* a refusal always says which */
    } else if (rc != MWL_E_NOMEM) {
        abort();
    }
    mwl_arena_clear(&a);
    return 0;
}
