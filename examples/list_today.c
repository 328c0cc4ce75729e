/* list_today: today's Modality Worklist for one station, the way modality
 * software would ask for it with libmwl (client/client.h).
 *
 *     list_today HOST PORT STATION [CALLED-AE]
 *
 * Prints one line per Scheduled Procedure Step: start time, accession,
 * patient ID, patient name (UTF-8, whatever character set the server
 * used) and the step's description; then the final C-FIND status. Exit 0
 * when the C-FIND succeeded, 1 otherwise.
 *
 * Build it against an installed libmwl:
 *     cc list_today.c $(pkg-config --cflags --libs mwl) -o list_today */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"
#include "dicom/charset.h"
#include "dicom/datetime.h"

/* Value `tag` of `ds` in UTF-8, or "" when absent or empty. Strings come
 * from `arena` and live until it is cleared. */
static const char *text(const mwl_ds *ds, uint32_t tag, mwl_arena *arena)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    const char *s = NULL;
    size_t len = 0;
    if (!e || mwl_ds_get_utf8_all(ds, e, arena, &s, &len, NULL) != MWL_OK)
        return "";
    /* Trailing padding is not part of the value. */
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
        len--;
    const char *copy = mwl_arena_strndup(arena, s, len);
    return copy ? copy : "";
}

/* Called by mwl_scu_find for each matching step (a Pending response). */
static int on_item(void *user, const mwl_scu_find_rsp *rsp)
{
    mwl_arena *arena = user;
    if (rsp->decode_status != MWL_OK) {
        fprintf(stderr, "list_today: response %zu does not decode: %s\n", rsp->index + 1, rsp->decode_error);
        return MWL_SCU_FIND_CONTINUE;
    }
    const mwl_ds *ds = rsp->identifier;
    const mwl_elem *seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    const mwl_ds *sps = seq && seq->item_count ? seq->items[0] : NULL;
    const char *time = text(sps, MWL_TAG_ScheduledProcedureStepStartTime, arena);
    printf("%.2s:%.2s  %-12s %-12s %-30s %s\n", time, strlen(time) >= 4 ? time + 2 : "",
           text(ds, MWL_TAG_AccessionNumber, arena), text(ds, MWL_TAG_PatientID, arena),
           text(ds, MWL_TAG_PatientName, arena), text(sps, MWL_TAG_ScheduledProcedureStepDescription, arena));
    mwl_arena_clear(arena); /* the identifier itself is only valid during the callback */
    return MWL_SCU_FIND_CONTINUE;
}

/* The identifier (PS3.4 K.6-1): matching keys with values, return keys
 * empty; the SPS attributes go inside the SPS sequence's single item. */
static int build_query(mwl_arena *arena, const char *station, mwl_ds **out)
{
    char today[9];
    mwl_date date;
    mwl_date_today(&date);
    mwl_date_format(&date, today, sizeof today);
    mwl_ds *ds, *sps;
    int rc = mwl_ds_new(arena, NULL, &ds);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_AccessionNumber, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_StudyInstanceUID, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_NONE, station);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartDate, MWL_VR_NONE, today);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartTime, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_Modality, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepDescription, MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepID, MWL_VR_NONE, "");
    *out = ds;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: list_today HOST PORT STATION [CALLED-AE]\n");
        return 2;
    }
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    cfg.host = argv[1];
    cfg.called_ae = argc == 5 ? argv[4] : MWL_SCU_DEFAULT_CALLED_AE;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    if (mwl_net_parse_port(argv[2], &cfg.port, &diag) != MWL_OK || cfg.port == 0) {
        fprintf(stderr, "list_today: bad port '%s'\n", argv[2]);
        return 2;
    }

    mwl_arena query_arena, item_arena;
    mwl_arena_init(&query_arena, NULL);
    mwl_arena_init(&item_arena, NULL);
    mwl_ds *query = NULL;
    mwl_scu *scu = NULL;
    int status = 1;
    if (build_query(&query_arena, argv[3], &query) != MWL_OK) {
        fprintf(stderr, "list_today: cannot build the query (bad station AE title?)\n");
        goto done;
    }
    if (mwl_scu_new(&cfg, &scu, &diag) != MWL_OK) {
        fprintf(stderr, "list_today: %s\n", diag.msg);
        goto done;
    }
    if (mwl_scu_associate(scu) != MWL_OK) {
        fprintf(stderr, "list_today: %s\n", mwl_scu_last_error(scu)->msg);
        goto done;
    }
    mwl_scu_find_result res;
    if (mwl_scu_find(scu, query, MWL_DIMSE_PRIORITY_MEDIUM, on_item, &item_arena, &res) != MWL_OK) {
        fprintf(stderr, "list_today: %s\n", mwl_scu_last_error(scu)->msg);
        goto done;
    }
    printf("%zu scheduled for %s today; final status 0x%04X (%s)\n", res.pending_count, argv[3],
           (unsigned)res.status, mwl_dimse_status_str(res.status));
    if (res.status == MWL_DIMSE_STATUS_SUCCESS)
        status = 0;
    if (mwl_scu_release(scu) != MWL_OK)
        fprintf(stderr, "list_today: release: %s\n", mwl_scu_last_error(scu)->msg);
done:
    mwl_scu_free(scu);
    mwl_arena_clear(&item_arena);
    mwl_arena_clear(&query_arena);
    return status;
}
