/* A C-FIND probe driven by tests/integration/client_dcmtk.py against DCMTK's
 * wlmscpfs: it queries through the public client API (client.h) and prints
 * one tab-separated line per Pending response and one for the final
 * status, which the script compares with what DCMTK's own findscu gets for
 * the same query. It needs a live server, so it is not a unit test: run
 * without arguments it says so and exits 77 ("skipped").
 *
 *   client_dcmtk_test [--aec AE] [--aet AE] [--modality M] [--cancel-after N]
 *                  [--timeout-ms MS] [--ts explicit|implicit|big|deflated]...
 *                  HOST PORT
 *
 *   item  INDEX STATUS PatientID AccessionNumber PatientName Modality SPSStartDate SPSID
 *   final STATUS PENDING DISCARDED CANCEL_SENT MEANING
 *
 * Exit 0 when the exchange completed (whatever the final status), 1 when
 * the client reported an error, 2 for bad arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

typedef struct probe {
    long cancel_after;
} probe;

static void print_value(const mwl_ds *ds, uint32_t tag)
{
    char buf[256];
    if (!ds || mwl_ds_copy_str(ds, tag, 0, buf, sizeof buf) != MWL_OK)
        buf[0] = '\0';
    printf("\t%s", buf);
}

static int on_response(void *user, const mwl_scu_find_rsp *rsp)
{
    probe *p = user;
    printf("item\t%zu\t0x%04X", rsp->index, (unsigned)rsp->status);
    const mwl_ds *id = rsp->identifier;
    const mwl_ds *sps = NULL;
    if (id) {
        const mwl_elem *seq = mwl_ds_find(id, MWL_TAG_ScheduledProcedureStepSequence);
        if (seq && seq->item_count > 0)
            sps = seq->items[0];
    } else {
        fprintf(stderr, "client_dcmtk_test: response %zu does not decode: %s\n", rsp->index,
                rsp->decode_error);
    }
    print_value(id, MWL_TAG_PatientID);
    print_value(id, MWL_TAG_AccessionNumber);
    print_value(id, MWL_TAG_PatientName);
    print_value(sps, MWL_TAG_Modality);
    print_value(sps, MWL_TAG_ScheduledProcedureStepStartDate);
    print_value(sps, MWL_TAG_ScheduledProcedureStepID);
    printf("\n");
    fflush(stdout);
    if (p->cancel_after > 0 && (long)rsp->index + 1 >= p->cancel_after)
        return MWL_SCU_FIND_CANCEL;
    return MWL_SCU_FIND_CONTINUE;
}

/* The identifier: universal return keys at the top level and in one
 * Scheduled Procedure Step item, with Modality as the matching key. */
static int build_query(mwl_arena *a, const char *modality, mwl_ds **out)
{
    mwl_ds *q, *sps;
    int rc;
    if ((rc = mwl_ds_new(a, NULL, &q)) != MWL_OK)
        return rc;
    static const uint32_t top[] = {MWL_TAG_AccessionNumber, MWL_TAG_PatientName, MWL_TAG_PatientID,
                                   MWL_TAG_PatientBirthDate, MWL_TAG_RequestedProcedureID};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if ((rc = mwl_ds_set_str(q, top[i], 0, "")) != MWL_OK)
            return rc;
    if ((rc = mwl_ds_add_item(q, MWL_TAG_ScheduledProcedureStepSequence, &sps)) != MWL_OK)
        return rc;
    static const uint32_t inner[] = {MWL_TAG_ScheduledStationAETitle, MWL_TAG_ScheduledProcedureStepStartDate,
                                     MWL_TAG_ScheduledProcedureStepStartTime,
                                     MWL_TAG_ScheduledProcedureStepID,
                                     MWL_TAG_ScheduledProcedureStepDescription};
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++)
        if ((rc = mwl_ds_set_str(sps, inner[i], 0, "")) != MWL_OK)
            return rc;
    if ((rc = mwl_ds_set_str(sps, MWL_TAG_Modality, 0, modality)) != MWL_OK)
        return rc;
    *out = q;
    return MWL_OK;
}

static bool parse_ts(const char *s, mwl_ts *ts)
{
    static const struct {
        const char *name;
        mwl_ts ts;
    } names[] = {{"explicit", MWL_TS_EXPLICIT_LE},
                 {"implicit", MWL_TS_IMPLICIT_LE},
                 {"big", MWL_TS_EXPLICIT_BE},
                 {"deflated", MWL_TS_DEFLATED_LE}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *ts = names[i].ts;
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "client_dcmtk_test: needs a live worklist server (run by client_dcmtk.py); skipped\n");
        return 77;
    }
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    const char *modality = "";
    probe p = {0};
    size_t ts_count = 0;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *opt = argv[i], *v = argv[i + 1];
        if (strcmp(opt, "--aec") == 0) {
            cfg.called_ae = v;
        } else if (strcmp(opt, "--aet") == 0) {
            cfg.calling_ae = v;
        } else if (strcmp(opt, "--modality") == 0) {
            modality = v;
        } else if (strcmp(opt, "--cancel-after") == 0) {
            p.cancel_after = strtol(v, NULL, 10);
        } else if (strcmp(opt, "--timeout-ms") == 0) {
            int ms = (int)strtol(v, NULL, 10);
            cfg.connect_timeout_ms = cfg.acse_timeout_ms = cfg.dimse_timeout_ms = ms;
        } else if (strcmp(opt, "--ts") == 0 && ts_count < MWL_SCU_TS_MAX &&
                   parse_ts(v, &cfg.transfer_syntaxes[ts_count])) {
            cfg.transfer_syntax_count = ++ts_count;
        } else {
            fprintf(stderr, "client_dcmtk_test: bad option %s %s\n", opt, v);
            return 2;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "client_dcmtk_test: HOST PORT expected\n");
        return 2;
    }
    cfg.host = argv[i];
    cfg.port = (uint16_t)strtol(argv[i + 1], NULL, 10);

    mwl_diag diag;
    mwl_diag_clear(&diag);
    mwl_scu *scu;
    if (mwl_scu_new(&cfg, &scu, &diag) != MWL_OK) {
        fprintf(stderr, "client_dcmtk_test: %s\n", diag.msg);
        return 2;
    }
    int status = 1;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *query = NULL;
    mwl_scu_find_result res;
    if (mwl_scu_associate(scu) != MWL_OK) {
        fprintf(stderr, "client_dcmtk_test: %s\n", mwl_scu_last_error(scu)->msg);
    } else if (build_query(&arena, modality, &query) != MWL_OK) {
        fprintf(stderr, "client_dcmtk_test: cannot build the query\n");
    } else if (mwl_scu_find(scu, query, MWL_DIMSE_PRIORITY_MEDIUM, on_response, &p, &res) != MWL_OK) {
        fprintf(stderr, "client_dcmtk_test: %s\n", mwl_scu_last_error(scu)->msg);
    } else {
        printf("final\t0x%04X\t%zu\t%zu\t%d\t%s\n", (unsigned)res.status, res.pending_count,
               res.discarded_count, res.cancel_sent ? 1 : 0, mwl_dimse_status_str(res.status));
        if (res.has_error_comment)
            printf("comment\t%s\n", res.error_comment);
        const mwl_scu_assoc_info *info = mwl_scu_get_assoc_info(scu);
        printf("ts\t%s\n", mwl_scu_ts_name(info->find_ts));
        if (mwl_scu_release(scu) != MWL_OK)
            fprintf(stderr, "client_dcmtk_test: release: %s\n", mwl_scu_last_error(scu)->msg);
        else
            status = 0;
    }
    mwl_arena_clear(&arena);
    mwl_scu_free(scu);
    return status;
}
