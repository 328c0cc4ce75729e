/* Test helpers for the store tests: temporary databases and generated
 * worklist items. Test code only. */
#ifndef MWL_STORE_STORE_TEST_UTIL_H
#define MWL_STORE_STORE_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/codec.h"
#include "store/store.h"

/* A fresh folder for databases; removed by stu_cleanup. */
static char stu_dir[] = "/tmp/mwl_store_test_XXXXXX";

static inline void stu_setup(void)
{
    if (!mkdtemp(stu_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static inline void stu_cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", stu_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

/* The path of database `name` in the folder (a static buffer per call site is enough for tests). */
static inline const char *stu_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", stu_dir, name);
    return buf;
}

static inline mwl_store *stu_open(const char *path)
{
    mwl_store *s;
    mwl_diag d;
    if (mwl_store_open(path, NULL, &s, &d) != MWL_OK) {
        fprintf(stderr, "open %s: %s\n", path, d.msg);
        exit(1);
    }
    return s;
}

typedef struct stu_item {
    const char *patient_id, *issuer, *name, *accession, *study_uid, *rp_id;
    const char *station, *date, *time, *modality, *sps_id, *status;
    const char *charset;
} stu_item;

static inline void stu_set(mwl_ds *ds, uint32_t tag, const char *v, int *rc)
{
    if (v && *rc == MWL_OK)
        *rc = mwl_ds_set_str(ds, tag, MWL_VR_NONE, v);
}

/* A worklist item with one SPS from `it` (NULL fields are left out). */
static inline mwl_ds *stu_item_ds(mwl_arena *a, const stu_item *it)
{
    mwl_ds *ds, *sps;
    if (mwl_ds_new(a, NULL, &ds) != MWL_OK)
        return NULL;
    int rc = MWL_OK;
    stu_set(ds, MWL_TAG_SpecificCharacterSet, it->charset, &rc);
    stu_set(ds, MWL_TAG_PatientID, it->patient_id, &rc);
    stu_set(ds, MWL_TAG_IssuerOfPatientID, it->issuer, &rc);
    stu_set(ds, MWL_TAG_PatientName, it->name, &rc);
    stu_set(ds, MWL_TAG_AccessionNumber, it->accession, &rc);
    stu_set(ds, MWL_TAG_StudyInstanceUID, it->study_uid, &rc);
    stu_set(ds, MWL_TAG_RequestedProcedureID, it->rp_id, &rc);
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc == MWL_OK) {
        stu_set(sps, MWL_TAG_ScheduledStationAETitle, it->station, &rc);
        stu_set(sps, MWL_TAG_ScheduledProcedureStepStartDate, it->date, &rc);
        stu_set(sps, MWL_TAG_ScheduledProcedureStepStartTime, it->time, &rc);
        stu_set(sps, MWL_TAG_Modality, it->modality, &rc);
        stu_set(sps, MWL_TAG_ScheduledProcedureStepID, it->sps_id, &rc);
        stu_set(sps, MWL_TAG_ScheduledProcedureStepStatus, it->status, &rc);
    }
    return rc == MWL_OK ? ds : NULL;
}

/* Generated item number i: stations CT1 CT2 MR1 in turn, `dates` days from
 * 20260101, times in 15 minute slots (several items share a slot). */
static inline int stu_put_generated(mwl_store *s, int i, int dates, mwl_diag *d)
{
    static const char *const stations[] = {"CT1", "CT2", "MR1"};
    static const char *const names[] = {"Doe^John", "Roe^Jane", "Mulder^Fox", "Muller^Hans"};
    char pid[16], acc[16], uid[32], sps_id[16], date[24], time[24];
    snprintf(pid, sizeof pid, "P%d", i % 97);
    snprintf(acc, sizeof acc, "A%d", i);
    snprintf(uid, sizeof uid, "1.2.826.0.1.%d", i);
    snprintf(sps_id, sizeof sps_id, "S%d", i);
    snprintf(date, sizeof date, "202601%02u", 1u + (unsigned)(i * 7) % (unsigned)dates);
    snprintf(time, sizeof time, "%02u%02u00", 7u + (unsigned)(i * 13) % 11u, (unsigned)(i * 5) % 4u * 15u);
    const char *station = stations[i % 3];
    stu_item it = {pid,          NULL,
                   names[i % 4], acc,
                   uid,          "RP1",
                   station,      date,
                   time,         i % 3 == 2 ? "MR" : "CT",
                   sps_id,       i % 5 == 0 ? "COMPLETED" : "SCHEDULED",
                   NULL};
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    int rc = mwl_store_put_item(s, stu_item_ds(&a, &it), "gen", NULL, NULL, d);
    mwl_arena_clear(&a);
    return rc;
}

/* Every row id `f` selects, in cursor order, one pass (at most cap). */
static inline size_t stu_ids(mwl_store *s, const mwl_filter *f, int64_t *ids, size_t cap)
{
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag d;
    size_t n = 0;
    while (mwl_store_cursor_next(s, f, &c, &row, &d) == MWL_OK) {
        if (n < cap)
            ids[n] = row.id;
        n++;
    }
    return n;
}

#endif
