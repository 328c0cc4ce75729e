/* find_bench: repeats one C-FIND R times on one open association and
 * prints the elapsed time, so a runner can take the marginal cost of a
 * query as (t(2R) - t(R)) / R, free of process start-up and association
 * set-up. It also measures its own floor: the time this client spends
 * decoding the responses it received (what any SCU pays, whatever the
 * server).
 *
 *   find_bench HOST PORT AEC REPEATS [--station AE] [--date D|A-B]
 *              [--modality M] [--patient-id ID] [--patient-name PN]
 *              [--accession A]
 *
 * Output (one line): repeats=R matches=M elapsed_ms=T decode_floor_ms=F
 * where M is the number of matches of one query and F the client-side
 * decode time of one query's responses. Exit 0 only if every C-FIND ended
 * with status 0000. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client.h"
#include "dicom/codec.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct capture {
    size_t count;
    bool keep;
    size_t n_raw;
    uint8_t **raw;
    size_t *raw_len;
    mwl_ts ts;
} capture;

static int on_rsp(void *user, const mwl_scu_find_rsp *rsp)
{
    capture *c = user;
    c->count++;
    if (c->keep) {
        uint8_t **r = realloc(c->raw, (c->n_raw + 1) * sizeof *r);
        size_t *l = realloc(c->raw_len, (c->n_raw + 1) * sizeof *l);
        if (r)
            c->raw = r;
        if (l)
            c->raw_len = l;
        uint8_t *copy = malloc(rsp->raw_length ? rsp->raw_length : 1);
        if (!r || !l || !copy) {
            free(copy);
            return MWL_SCU_FIND_ABORT;
        }
        memcpy(copy, rsp->raw, rsp->raw_length);
        c->raw[c->n_raw] = copy;
        c->raw_len[c->n_raw++] = rsp->raw_length;
        c->ts = rsp->ts;
    }
    return MWL_SCU_FIND_CONTINUE;
}

/* The return keys a modality typically asks for (PS3.4 Table K.6-1). */
static int build_query(mwl_arena *a, int argc, char **argv, mwl_ds **out)
{
    mwl_ds *q, *sps;
    int rc = mwl_ds_new(a, NULL, &q);
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(q, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    static const uint32_t top[] = {MWL_TAG_AccessionNumber,      MWL_TAG_ReferringPhysicianName,
                                   MWL_TAG_PatientName,          MWL_TAG_PatientID,
                                   MWL_TAG_PatientBirthDate,     MWL_TAG_PatientSex,
                                   MWL_TAG_StudyInstanceUID,     MWL_TAG_RequestedProcedureDescription,
                                   MWL_TAG_RequestedProcedureID, MWL_TAG_RequestedProcedurePriority};
    static const uint32_t in_sps[] = {MWL_TAG_Modality,
                                      MWL_TAG_ScheduledStationAETitle,
                                      MWL_TAG_ScheduledProcedureStepStartDate,
                                      MWL_TAG_ScheduledProcedureStepStartTime,
                                      MWL_TAG_ScheduledPerformingPhysicianName,
                                      MWL_TAG_ScheduledProcedureStepDescription,
                                      MWL_TAG_ScheduledStationName,
                                      MWL_TAG_ScheduledProcedureStepLocation,
                                      MWL_TAG_ScheduledProcedureStepID};
    for (size_t i = 0; rc == MWL_OK && i < sizeof top / sizeof top[0]; i++)
        rc = mwl_ds_set_str(q, top[i], MWL_VR_NONE, "");
    for (size_t i = 0; rc == MWL_OK && i < sizeof in_sps / sizeof in_sps[0]; i++)
        rc = mwl_ds_set_str(sps, in_sps[i], MWL_VR_NONE, "");
    if (rc == MWL_OK)
        rc = mwl_ds_set_seq(sps, MWL_TAG_ScheduledProtocolCodeSequence, NULL);
    for (int i = 0; rc == MWL_OK && i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (strcmp(opt, "--station") == 0)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_NONE, val);
        else if (strcmp(opt, "--date") == 0)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartDate, MWL_VR_NONE, val);
        else if (strcmp(opt, "--modality") == 0)
            rc = mwl_ds_set_str(sps, MWL_TAG_Modality, MWL_VR_NONE, val);
        else if (strcmp(opt, "--patient-id") == 0)
            rc = mwl_ds_set_str(q, MWL_TAG_PatientID, MWL_VR_NONE, val);
        else if (strcmp(opt, "--patient-name") == 0)
            rc = mwl_ds_set_str(q, MWL_TAG_PatientName, MWL_VR_NONE, val);
        else if (strcmp(opt, "--accession") == 0)
            rc = mwl_ds_set_str(q, MWL_TAG_AccessionNumber, MWL_VR_NONE, val);
        else {
            fprintf(stderr, "find_bench: unknown option %s\n", opt);
            return MWL_E_INVALID;
        }
    }
    if (argc % 2) {
        fprintf(stderr, "find_bench: option %s needs a value\n", argv[argc - 1]);
        return MWL_E_INVALID;
    }
    *out = q;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: find_bench HOST PORT AEC REPEATS [query options]\n");
        return 2;
    }
    long repeats = strtol(argv[4], NULL, 10);
    if (repeats < 1) {
        fprintf(stderr, "find_bench: REPEATS must be >= 1\n");
        return 2;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *query;
    if (build_query(&arena, argc - 5, argv + 5, &query) != MWL_OK)
        return 2;
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    cfg.host = argv[1];
    cfg.port = (uint16_t)atoi(argv[2]);
    cfg.called_ae = argv[3];
    cfg.max_pdu_length = 65536;
    cfg.dimse_timeout_ms = 600000;
    mwl_scu *scu;
    mwl_diag d;
    if (mwl_scu_new(&cfg, &scu, &d) != MWL_OK || mwl_scu_associate(scu) != MWL_OK) {
        fprintf(stderr, "find_bench: cannot associate\n");
        return 3;
    }
    capture cap;
    memset(&cap, 0, sizeof cap);
    int status = 0;
    double t0 = now_ms();
    for (long i = 0; i < repeats; i++) {
        cap.count = 0;
        cap.keep = i == 0;
        mwl_scu_find_result res;
        if (mwl_scu_find(scu, query, 0, on_rsp, &cap, &res) != MWL_OK || res.status != 0) {
            fprintf(stderr, "find_bench: C-FIND failed (status %04X)\n", res.status);
            status = 1;
            break;
        }
    }
    double elapsed = now_ms() - t0;
    if (mwl_scu_release(scu) != MWL_OK)
        status = status ? status : 3;
    mwl_scu_free(scu);

    /* The floor: decoding one query's responses again, as the client did. */
    double floor_ms = 0;
    if (cap.n_raw) {
        int rounds = 20;
        double f0 = now_ms();
        for (int r = 0; r < rounds; r++) {
            for (size_t k = 0; k < cap.n_raw; k++) {
                mwl_arena da;
                mwl_arena_init(&da, NULL);
                mwl_ds *ds;
                if (mwl_ds_decode(cap.raw[k], cap.raw_len[k], cap.ts, &da, NULL, &ds, NULL) != MWL_OK)
                    status = 1;
                mwl_arena_clear(&da);
            }
        }
        floor_ms = (now_ms() - f0) / rounds;
    }
    printf("repeats=%ld matches=%zu elapsed_ms=%.3f decode_floor_ms=%.4f\n", repeats, cap.count, elapsed,
           floor_ms);
    for (size_t k = 0; k < cap.n_raw; k++)
        free(cap.raw[k]);
    free(cap.raw);
    free(cap.raw_len);
    mwl_arena_clear(&arena);
    return status;
}
