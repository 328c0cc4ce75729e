#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"

static char db_dir[] = "/tmp/mwl_store_test_XXXXXX";
static char db_path[512];

/* An item with `n_sps` steps on station `aet`, date `date`, modality `mod`. */
static mwl_ds *make_item(mwl_arena *a, const char *pid, const char *name, const char *acc, const char *aets,
                         const char *date, const char *mod, int n_sps)
{
    mwl_ds *ds;
    if (mwl_ds_new(a, NULL, &ds) != MWL_OK)
        return NULL;
    int rc = mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, 0, "ISO_IR 192");
    rc |= mwl_ds_set_str(ds, MWL_TAG_PatientID, 0, pid);
    rc |= mwl_ds_set_str(ds, MWL_TAG_PatientName, 0, name);
    rc |= mwl_ds_set_str(ds, MWL_TAG_AccessionNumber, 0, acc);
    rc |= mwl_ds_set_str(ds, MWL_TAG_StudyInstanceUID, 0, "1.2.3.4");
    rc |= mwl_ds_set_str(ds, MWL_TAG_RequestedProcedureID, 0, "RP1");
    for (int i = 0; i < n_sps; i++) {
        mwl_ds *sps;
        char id[16];
        snprintf(id, sizeof id, "SPS%d", i + 1);
        rc |= mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
        rc |= mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, 0, aets);
        rc |= mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartDate, 0, date);
        rc |= mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStartTime, 0, i ? "1100" : "1000");
        rc |= mwl_ds_set_str(sps, MWL_TAG_Modality, 0, mod);
        rc |= mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepID, 0, id);
    }
    return rc == MWL_OK ? ds : NULL;
}

static size_t count_matches(mwl_store *s, const mwl_store_filter *f)
{
    mwl_diag d;
    size_t n = 0;
    mwl_store_row row;
    if (mwl_store_find_begin(s, f, &d) != MWL_OK)
        return (size_t)-1;
    int rc;
    while ((rc = mwl_store_find_next(s, &row, &d)) == MWL_OK) {
        CHECK(row.length > 0);
        n++;
    }
    CHECK_EQ_INT(rc, MWL_E_NOTFOUND);
    return n;
}

static void test_put_find(void)
{
    mwl_store *s;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_open(db_path, NULL, &s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_schema_version(s), 4);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_store_put_stats st = {0, 0};
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(s, make_item(&a, "P1", "Müller^Hans", "A1", "CT01", "20261125", "CT", 2),
                                    "f1", NULL, &st, &d),
                 MWL_OK);
    CHECK_EQ_INT(
        mwl_store_put_item(s, make_item(&a, "P2", "Mulder^Fox", "A2", "CT01\\CT02", "20261126", "CT", 1),
                           "f2", NULL, &st, &d),
        MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(s, make_item(&a, "P3", "Smith ^Ann^^", "A3", "MR01", "20261125", "MR", 1),
                                    "f3", NULL, &st, &d),
                 MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(
                     s, make_item(&a, "P4", "Yamada^Tarou=山田^太郎", "A4", "MR02", "20261127", "MR", 1),
                     "f4", NULL, &st, &d),
                 MWL_OK);
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    CHECK_EQ_INT(st.inserted, 5);
    CHECK_EQ_INT(st.updated, 0);
    int64_t n = 0;
    CHECK_EQ_INT(mwl_store_count(s, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 5);

    /* re-import updates */
    CHECK_EQ_INT(mwl_store_put_item(s, make_item(&a, "P1", "Müller^Hans", "A1", "CT01", "20261125", "CT", 2),
                                    "f1", NULL, &st, &d),
                 MWL_OK);
    CHECK_EQ_INT(st.updated, 2);
    CHECK_EQ_INT(mwl_store_count(s, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 5);

    mwl_store_filter f;
    mwl_store_filter_init(&f);
    CHECK_EQ_INT(count_matches(s, &f), 5);
    f.station_aet = (mwl_store_cond){MWL_STORE_EXACT, "CT01"};
    CHECK_EQ_INT(count_matches(s, &f), 3);
    f.date_lo = f.date_hi = "20261125";
    CHECK_EQ_INT(count_matches(s, &f), 2);
    f.station_aet = (mwl_store_cond){MWL_STORE_EXACT, "CT02"};
    CHECK_EQ_INT(count_matches(s, &f), 0);
    f.date_lo = f.date_hi = NULL;
    CHECK_EQ_INT(count_matches(s, &f), 1);
    /* an SPS with two station values matching a prefix comes once */
    f.station_aet = (mwl_store_cond){MWL_STORE_PREFIX, "CT"};
    CHECK_EQ_INT(count_matches(s, &f), 3);
    f.station_aet = (mwl_store_cond){MWL_STORE_PREFIX, "\xFF\xFF"};
    CHECK_EQ_INT(count_matches(s, &f), 0);
    mwl_store_filter_init(&f);
    f.modality = (mwl_store_cond){MWL_STORE_EXACT, "MR"};
    CHECK_EQ_INT(count_matches(s, &f), 2);
    mwl_store_filter_init(&f);
    mwl_filter_set_name(&f, MWL_STORE_PREFIX, "mul");
    CHECK_EQ_INT(count_matches(s, &f), 3); /* MÜLLER (2 SPS) and MULDER */
    mwl_filter_set_name(&f, MWL_STORE_PREFIX, "Mül");
    CHECK_EQ_INT(count_matches(s, &f), 3); /* folded like the matcher's widest option */
    mwl_filter_set_name(&f, MWL_STORE_EXACT, "smith^ann");
    CHECK_EQ_INT(count_matches(s, &f), 1);
    mwl_filter_set_name(&f, MWL_STORE_PREFIX, "山田");
    CHECK_EQ_INT(count_matches(s, &f), 1); /* any component group */
    mwl_filter_set_name(&f, MWL_STORE_PREFIX, "yamada^t");
    CHECK_EQ_INT(count_matches(s, &f), 1);
    mwl_filter_set_name(&f, MWL_STORE_PREFIX, "tarou");
    CHECK_EQ_INT(count_matches(s, &f), 0);
    mwl_store_filter_init(&f);
    f.accession = (mwl_store_cond){MWL_STORE_EXACT, "A2"};
    CHECK_EQ_INT(count_matches(s, &f), 1);
    f.accession = (mwl_store_cond){MWL_STORE_PREFIX, "A"};
    CHECK_EQ_INT(count_matches(s, &f), 5);
    mwl_store_filter_init(&f);
    f.patient_id = (mwl_store_cond){MWL_STORE_EXACT, "P1"};
    f.sps_id = (mwl_store_cond){MWL_STORE_EXACT, "SPS2"};
    CHECK_EQ_INT(count_matches(s, &f), 1);

    /* an item without SPS is refused */
    mwl_ds *bad;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &bad), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(bad, MWL_TAG_PatientID, 0, "X"), MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(s, bad, NULL, NULL, NULL, &d), MWL_E_INVALID);

    /* an item imported into a worklist (per called AE title) */
    CHECK_EQ_INT(mwl_store_put_item(s, make_item(&a, "P7", "Wl^Item", "A7", "XA01", "20261125", "XA", 1),
                                    "f7", "OFFIS", &st, &d),
                 MWL_OK);
    mwl_store_filter_init(&f);
    f.worklist_aet = (mwl_store_cond){MWL_STORE_EXACT, "OFFIS"};
    CHECK_EQ_INT(count_matches(s, &f), 1);
    f.worklist_aet = (mwl_store_cond){MWL_STORE_EXACT, "OTHER"};
    CHECK_EQ_INT(count_matches(s, &f), 0);
    mwl_store_filter_init(&f);
    f.accession = (mwl_store_cond){MWL_STORE_EXACT, "A7"};
    size_t gone = 0;
    CHECK_EQ_INT(mwl_store_remove(s, &f, &gone, &d), MWL_OK);
    CHECK_EQ_INT(gone, 1);

    /* a transaction rolled back leaves nothing behind */
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(s, make_item(&a, "P9", "Gone^X", "A9", "CT09", "20261125", "CT", 1), NULL,
                                    NULL, NULL, &d),
                 MWL_OK);
    CHECK_EQ_INT(mwl_store_rollback(s), MWL_OK);
    CHECK_EQ_INT(mwl_store_count(s, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 5);

    /* remove by accession */
    size_t removed = 0;
    mwl_store_filter_init(&f);
    CHECK_EQ_INT(mwl_store_remove(s, &f, &removed, &d), MWL_E_INVALID);
    f.accession = (mwl_store_cond){MWL_STORE_EXACT, "A1"};
    CHECK_EQ_INT(mwl_store_remove(s, &f, &removed, &d), MWL_OK);
    CHECK_EQ_INT(removed, 2);
    mwl_store_filter_init(&f);
    f.station_aet = (mwl_store_cond){MWL_STORE_EXACT, "CT01"};
    CHECK_EQ_INT(count_matches(s, &f), 1);
    mwl_store_free(s);

    /* read-only reopen sees the data and refuses writes */
    mwl_store_options ro = {.read_only = true, .settings = "sqlite.busy_timeout_ms=1000"};
    CHECK_EQ_INT(mwl_store_open(db_path, &ro, &s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_count(s, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(mwl_store_put_item(s, make_item(&a, "P9", "X", "A9", "CT09", "20261125", "CT", 1), NULL,
                                    NULL, NULL, &d),
                 MWL_E_INVALID);
    mwl_store_free(s);
    mwl_arena_clear(&a);
}

static void test_bad_open(void)
{
    mwl_store *s = NULL;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_open("/nonexistent-dir/x.db", NULL, &s, &d), MWL_E_STORE);
    CHECK(d.msg[0] != '\0');
    char notdb[600];
    snprintf(notdb, sizeof notdb, "%s/not.db", db_dir);
    FILE *f = fopen(notdb, "w");
    if (f) {
        fputs("this is not a database file, just text padding padding padding padding padding", f);
        fclose(f);
    }
    CHECK_EQ_INT(mwl_store_open(notdb, NULL, &s, &d), MWL_E_STORE);
    unlink(notdb);
}

int main(void)
{
    if (!mkdtemp(db_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db_path, sizeof db_path, "%s/test.db", db_dir);
    RUN_TEST(test_put_find);
    RUN_TEST(test_bad_open);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", db_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return check_report("store_test");
}
