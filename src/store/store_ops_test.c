/* The store's operations beyond put and find: the backend factory and its
 * settings, batches, get / set status by natural key, patient update and
 * merge, expire, remove (all or nothing), read-only refusals, and the
 * migration of a schema 2 database. */
#include <sqlite3.h>

#include "check.h"
#include "dicom/charset.h"
#include "store/store_int.h"
#include "store/store_test_util.h"

static char path[600];

static mwl_store *fresh(const char *name)
{
    char p[600];
    stu_path(p, sizeof p, name);
    unlink(p);
    snprintf(path, sizeof path, "%s", p);
    return stu_open(path);
}

static int put(mwl_store *s, const stu_item *it, const char *worklist)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_diag d;
    int rc = mwl_store_put_item(s, stu_item_ds(&a, it), "test", worklist, NULL, &d);
    mwl_arena_clear(&a);
    return rc;
}

static int64_t count(mwl_store *s)
{
    int64_t n = -1;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_count(s, &n, &d), MWL_OK);
    return n;
}

static size_t candidates(mwl_store *s, const mwl_filter *f)
{
    int64_t ids[64];
    return stu_ids(s, f, ids, 64);
}

/* Runs SQL on the database directly (triggers that make writes fail). */
static void raw_sql(const char *sql)
{
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK);
    if (err)
        fprintf(stderr, "  sql: %s\n", err);
    sqlite3_free(err);
    sqlite3_close(db);
}

/* Value of `tag` in the stored row `ref` names, as UTF-8 ("" when absent). */
static const char *stored_text(mwl_store *s, const mwl_sps_ref *ref, uint32_t tag, bool in_sps, mwl_arena *a)
{
    mwl_ds *ds;
    mwl_diag d;
    if (mwl_store_get(s, ref, a, &ds, NULL, &d) != MWL_OK)
        return "(no row)";
    const mwl_ds *from = ds;
    if (in_sps)
        from = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence)->items[0];
    const mwl_elem *e = mwl_ds_find(from, tag);
    const char *v;
    if (!e || !e->length || mwl_ds_get_utf8(from, e, 0, a, &v, &d) != MWL_OK)
        return "";
    return v;
}

static const stu_item base = {"P1",       "X",    "Doe^John", "A1", "1.2.3.1",   "RP1", "CT1",
                              "20260105", "0900", "CT",       "S1", "SCHEDULED", NULL};

static void test_factory_and_settings(void)
{
    mwl_store *s = NULL;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_open("postgresql://db.example/mwl", NULL, &s, &d), MWL_E_UNSUPPORTED);
    CHECK(strstr(d.msg, "PostgreSQL backend not built") != NULL);
    CHECK(s == NULL);
    CHECK_EQ_INT(mwl_store_open("postgres://x", NULL, &s, &d), MWL_E_UNSUPPORTED);
    char p[600];
    stu_path(p, sizeof p, "settings.db");
    mwl_store_options o = {.settings = "sqlite.busy_timeout_ms=100, sqlite.bulk=1 postgresql.pool=4"};
    CHECK_EQ_INT(mwl_store_open(p, &o, &s, &d), MWL_OK);
    CHECK_EQ_STR(mwl_store_backend_name(s), "sqlite");
    CHECK_EQ_INT(mwl_store_schema_version(s), 4);
    mwl_store_free(s);
    o.settings = "sqlite.bulkk=1";
    CHECK_EQ_INT(mwl_store_open(p, &o, &s, &d), MWL_E_INVALID);
    CHECK(strstr(d.msg, "bulkk") != NULL);
    o.settings = "bulk=1";
    CHECK_EQ_INT(mwl_store_open(p, &o, &s, &d), MWL_E_INVALID);
    o.settings = "sqlite.busy_timeout_ms=abc";
    CHECK_EQ_INT(mwl_store_open(p, &o, &s, &d), MWL_E_INVALID);
    mwl_store_free(NULL);
}

static void test_batches(void)
{
    mwl_store *s = fresh("batch.db");
    mwl_diag d;
    raw_sql("CREATE TRIGGER no_a9 BEFORE INSERT ON sps WHEN new.accession = 'A9' BEGIN SELECT RAISE(ABORT, "
            "'no A9'); END;");
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK(mwl_store_in_batch(s));
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_E_INVALID);
    CHECK_EQ_INT(put(s, &base, NULL), MWL_OK);
    /* a refused item inside the batch: nothing of it written, batch goes on */
    stu_item multi = base;
    multi.modality = "MR\\CT";
    multi.sps_id = "S2";
    CHECK_EQ_INT(put(s, &multi, NULL), MWL_E_INVALID);
    stu_item bad_date = base;
    bad_date.date = "2026-01-05";
    bad_date.sps_id = "S3";
    CHECK_EQ_INT(put(s, &bad_date, NULL), MWL_E_INVALID);
    /* a database error inside the batch: the batch is rolled back */
    stu_item a9 = base;
    a9.accession = "A9";
    a9.sps_id = "S9";
    CHECK_EQ_INT(put(s, &a9, NULL), MWL_E_STORE);
    CHECK_EQ_INT(mwl_store_clear(s, NULL, &d), MWL_OK); /* a savepoint: undone below with the batch */
    CHECK_EQ_INT(count(s), 0);
    CHECK_EQ_INT(mwl_store_rollback(s), MWL_OK);
    CHECK(!mwl_store_in_batch(s));
    CHECK_EQ_INT(count(s), 0);
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(put(s, &base, NULL), MWL_OK);
    CHECK_EQ_INT(put(s, &multi, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    CHECK_EQ_INT(count(s), 1);
    mwl_store_free(s);
}

static void test_get_and_status(void)
{
    mwl_store *s = fresh("get.db");
    mwl_diag d;
    CHECK_EQ_INT(put(s, &base, NULL), MWL_OK);
    CHECK_EQ_INT(put(s, &base, "OTHER"), MWL_OK); /* the same SPS in a second worklist */
    stu_item two = base;
    two.sps_id = "S2";
    two.time = "1000";
    CHECK_EQ_INT(put(s, &two, NULL), MWL_OK);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds;
    int64_t id = 0;
    mwl_sps_ref ref = {.study_uid = "1.2.3.1", .sps_id = "S2"};
    CHECK_EQ_INT(mwl_store_get(s, &ref, &a, &ds, &id, &d), MWL_OK);
    CHECK(id > 0);
    CHECK_EQ_STR(stored_text(s, &ref, MWL_TAG_ScheduledProcedureStepStartTime, true, &a), "1000");
    ref = (mwl_sps_ref){.accession = "A1", .sps_id = "S1"};
    CHECK_EQ_INT(mwl_store_get(s, &ref, &a, &ds, NULL, &d), MWL_E_INVALID); /* two worklists */
    CHECK(strstr(d.msg, "several") != NULL);
    ref.worklist_aet = "OTHER";
    CHECK_EQ_INT(mwl_store_get(s, &ref, &a, &ds, NULL, &d), MWL_OK);
    ref = (mwl_sps_ref){.study_uid = "1.2.3.1", .sps_id = "S7"};
    CHECK_EQ_INT(mwl_store_get(s, &ref, &a, &ds, NULL, &d), MWL_E_NOTFOUND);
    ref = (mwl_sps_ref){.sps_id = "S1"};
    CHECK_EQ_INT(mwl_store_get(s, &ref, &a, &ds, NULL, &d), MWL_E_INVALID); /* no study/accession */

    /* status: the data set and the index column, in every worklist */
    size_t n = 0;
    ref = (mwl_sps_ref){.study_uid = "1.2.3.1", .sps_id = "S1"};
    CHECK_EQ_INT(mwl_store_set_status(s, &ref, "STARTED", &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2);
    ref.worklist_aet = "OTHER";
    CHECK_EQ_STR(stored_text(s, &ref, MWL_TAG_ScheduledProcedureStepStatus, true, &a), "STARTED");
    mwl_filter f;
    mwl_filter_init(&f);
    f.sps_status = (mwl_filter_cond){MWL_FILTER_EXACT, "STARTED"};
    CHECK_EQ_INT(candidates(s, &f), 2);
    f.sps_status = (mwl_filter_cond){MWL_FILTER_EXACT, "SCHEDULED"};
    CHECK_EQ_INT(candidates(s, &f), 1);
    CHECK_EQ_INT(mwl_store_set_status(s, &ref, "", &n, &d), MWL_OK); /* removed */
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(stored_text(s, &ref, MWL_TAG_ScheduledProcedureStepStatus, true, &a), "");
    CHECK_EQ_INT(mwl_store_set_status(s, &ref, "started", &n, &d), MWL_E_INVALID);
    ref.sps_id = "S8";
    CHECK_EQ_INT(mwl_store_set_status(s, &ref, "COMPLETED", &n, &d), MWL_E_NOTFOUND);
    CHECK_EQ_INT(count(s), 3);
    mwl_arena_clear(&a);
    mwl_store_free(s);
}

static void test_patient_update(void)
{
    mwl_store *s = fresh("patient.db");
    mwl_diag d;
    stu_item it = base;
    CHECK_EQ_INT(put(s, &it, NULL), MWL_OK);
    it.accession = "A2", it.sps_id = "S2", it.study_uid = "1.2.3.2";
    it.charset = "ISO_IR 100";
    it.name = "M\xFCller^Hans"; /* Latin-1 */
    CHECK_EQ_INT(put(s, &it, NULL), MWL_OK);
    it.accession = "A3", it.sps_id = "S3", it.study_uid = "1.2.3.3", it.issuer = "Y", it.charset = NULL;
    it.name = "Doe^John";
    CHECK_EQ_INT(put(s, &it, NULL), MWL_OK); /* same ID, another issuer */

    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *demo;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &demo), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(demo, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(demo, MWL_TAG_PatientName, MWL_VR_PN, "Иванов^Иван"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(demo, MWL_TAG_PatientBirthDate, MWL_VR_DA, "19700101"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(demo, MWL_TAG_PatientSex, MWL_VR_CS, NULL, 0), MWL_OK);
    size_t n = 0;
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", "X", demo, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2);
    mwl_sps_ref r1 = {.accession = "A1", .sps_id = "S1"}, r2 = {.accession = "A2", .sps_id = "S2"},
                r3 = {.accession = "A3", .sps_id = "S3"};
    CHECK_EQ_STR(stored_text(s, &r1, MWL_TAG_PatientName, false, &a), "Иванов^Иван");
    CHECK_EQ_STR(stored_text(s, &r2, MWL_TAG_PatientName, false, &a),
                 "Иванов^Иван"); /* recoded from Latin-1 */
    CHECK_EQ_STR(stored_text(s, &r2, MWL_TAG_SpecificCharacterSet, false, &a), "ISO_IR 192");
    CHECK_EQ_STR(stored_text(s, &r2, MWL_TAG_PatientBirthDate, false, &a), "19700101");
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_PatientName, false, &a), "Doe^John"); /* other issuer */
    mwl_filter f;
    mwl_filter_init(&f);
    mwl_filter_set_name(&f, MWL_FILTER_EXACT, "иванов^иван"); /* the name index follows */
    CHECK_EQ_INT(candidates(s, &f), 2);
    mwl_filter_set_name(&f, MWL_FILTER_PREFIX, "Doe");
    CHECK_EQ_INT(candidates(s, &f), 1);

    /* not demographics: refused, nothing changed */
    mwl_ds *bad;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &bad), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(bad, MWL_TAG_PatientID, MWL_VR_LO, "P2"), MWL_OK);
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", NULL, bad, &n, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &bad), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(bad, MWL_TAG_AccessionNumber, MWL_VR_SH, "Z"), MWL_OK);
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", NULL, bad, &n, &d), MWL_E_INVALID);
    /* a change that would make the items invalid: refused */
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &bad), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(bad, MWL_TAG_PatientName, MWL_VR_PN, "A^B\\C^D"), MWL_OK);
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", NULL, bad, &n, &d), MWL_E_INVALID);
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_PatientName, false, &a), "Doe^John");

    /* all or nothing: the second row's write fails, the first is undone */
    raw_sql("CREATE TRIGGER no_a2 BEFORE UPDATE ON sps WHEN new.accession = 'A2' BEGIN SELECT RAISE(ABORT, "
            "'no A2'); END;");
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &demo), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(demo, MWL_TAG_PatientName, MWL_VR_PN, "Zed^Zoe"), MWL_OK);
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", NULL, demo, &n, &d), MWL_E_STORE);
    CHECK_EQ_STR(stored_text(s, &r1, MWL_TAG_PatientName, false, &a), "Иванов^Иван");
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_PatientName, false, &a), "Doe^John");
    raw_sql("DROP TRIGGER no_a2;");

    /* merge: P1/X -> P9/Z; the issuer Y item stays */
    CHECK_EQ_INT(mwl_store_patient_merge(s, "P1", "X", "P9", "Z", NULL, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(stored_text(s, &r1, MWL_TAG_PatientID, false, &a), "P9");
    CHECK_EQ_STR(stored_text(s, &r2, MWL_TAG_IssuerOfPatientID, false, &a), "Z");
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_PatientID, false, &a), "P1");
    mwl_filter_init(&f);
    f.patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, "P9"};
    CHECK_EQ_INT(candidates(s, &f), 2);
    f.patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, "P1"};
    CHECK_EQ_INT(candidates(s, &f), 1);
    /* with demographics, no issuer, an ID the item's character set (the
     * default repertoire) cannot hold: the item goes to ISO_IR 192 */
    CHECK_EQ_INT(mwl_store_patient_merge(s, "P1", NULL, "PÖ1", NULL, demo, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_PatientID, false, &a), "PÖ1");
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_PatientName, false, &a), "Zed^Zoe");
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_IssuerOfPatientID, false, &a), "");
    CHECK_EQ_STR(stored_text(s, &r3, MWL_TAG_SpecificCharacterSet, false, &a), "ISO_IR 192");
    /* no items of that patient: no error */
    CHECK_EQ_INT(mwl_store_patient_update(s, "NOBODY", NULL, demo, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(count(s), 3);
    mwl_arena_clear(&a);
    mwl_store_free(s);
}

static void test_expire(void)
{
    mwl_store *s = fresh("expire.db");
    mwl_diag d;
    const struct {
        const char *date, *status;
    } rows[] = {{"20260101", "COMPLETED"}, {"20260102", "SCHEDULED"}, {"20260103", "DISCONTINUED"},
                {"20260110", "COMPLETED"}, {"20260111", "SCHEDULED"}, {NULL, "COMPLETED"},
                {NULL, "SCHEDULED"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char sps[8];
        snprintf(sps, sizeof sps, "E%zu", i);
        stu_item it = base;
        it.sps_id = sps, it.date = rows[i].date, it.status = rows[i].status;
        CHECK_EQ_INT(put(s, &it, NULL), MWL_OK);
    }
    mwl_store_expiry e = {0};
    size_t n = 9;
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_E_INVALID);
    e.before_date = "2026-01-05";
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_E_INVALID);
    const char *done[] = {"COMPLETED", "DISCONTINUED"};
    e = (mwl_store_expiry){.before_date = "20260105", .statuses = done, .status_count = 2};
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2); /* 0101 COMPLETED, 0103 DISCONTINUED */
    e = (mwl_store_expiry){.before_date = "20260105"};
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 1); /* 0102; the rows without a date stay */
    e = (mwl_store_expiry){.statuses = done, .status_count = 1};
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2); /* 0110 and the dateless COMPLETED */
    CHECK_EQ_INT(count(s), 2);
    mwl_store_free(s);
}

static void test_remove_is_atomic(void)
{
    mwl_store *s = fresh("remove.db");
    mwl_diag d;
    for (int i = 1; i <= 5; i++) {
        char acc[8], sps[8];
        snprintf(acc, sizeof acc, "A%d", i);
        snprintf(sps, sizeof sps, "S%d", i);
        stu_item it = base;
        it.accession = acc, it.sps_id = sps;
        CHECK_EQ_INT(put(s, &it, NULL), MWL_OK);
    }
    raw_sql("CREATE TRIGGER keep_a3 BEFORE DELETE ON sps WHEN old.accession = 'A3' BEGIN SELECT RAISE(ABORT, "
            "'A3 stays'); END;");
    mwl_filter f;
    mwl_filter_init(&f);
    f.accession = (mwl_filter_cond){MWL_FILTER_PREFIX, "A"};
    size_t n = 7;
    CHECK_EQ_INT(mwl_store_remove(s, &f, &n, &d), MWL_E_STORE);
    CHECK(strstr(d.msg, "A3 stays") != NULL);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(count(s), 5); /* none removed, though A1 and A2 come first */
    /* the same inside a batch: undone alone, the batch goes on */
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    f.accession = (mwl_filter_cond){MWL_FILTER_EXACT, "A1"};
    CHECK_EQ_INT(mwl_store_remove(s, &f, &n, &d), MWL_OK);
    f.accession = (mwl_filter_cond){MWL_FILTER_PREFIX, "A"};
    CHECK_EQ_INT(mwl_store_remove(s, &f, &n, &d), MWL_E_STORE);
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    CHECK_EQ_INT(count(s), 4);
    raw_sql("DROP TRIGGER keep_a3;");
    CHECK_EQ_INT(mwl_store_remove(s, &f, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 4);
    mwl_filter_init(&f);
    CHECK_EQ_INT(mwl_store_remove(s, &f, &n, &d), MWL_E_INVALID); /* everything: use clear */
    mwl_store_free(s);
}

static void test_read_only(void)
{
    mwl_store *w = fresh("ro.db");
    CHECK_EQ_INT(put(w, &base, NULL), MWL_OK);
    mwl_store_free(w);
    mwl_store *s;
    mwl_diag d;
    mwl_store_options ro = {.read_only = true};
    CHECK_EQ_INT(mwl_store_open(path, &ro, &s, &d), MWL_OK);
    CHECK_EQ_INT(count(s), 1);
    CHECK_EQ_INT(put(s, &base, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_E_INVALID);
    mwl_filter f;
    mwl_filter_init(&f);
    f.accession = (mwl_filter_cond){MWL_FILTER_EXACT, "A1"};
    size_t n;
    CHECK_EQ_INT(mwl_store_remove(s, &f, &n, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_clear(s, &n, &d), MWL_E_INVALID);
    mwl_sps_ref ref = {.accession = "A1", .sps_id = "S1"};
    CHECK_EQ_INT(mwl_store_set_status(s, &ref, "STARTED", &n, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_patient_merge(s, "P1", NULL, "P2", NULL, NULL, &n, &d), MWL_E_INVALID);
    const char *st[] = {"SCHEDULED"};
    mwl_store_expiry e = {.statuses = st, .status_count = 1};
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_E_INVALID);
    CHECK_EQ_INT(count(s), 1);
    mwl_store_free(s);
}

/* A database at schema 2 (migrations 1 and 2 of schema.sql), with a row
 * whose start date and time are NULL, opens migrated: the cursor walks
 * every row, the index tables have the copied dates. */
extern const char mwl_store_schema_sql[];

static void test_migration_from_2(void)
{
    char p[600];
    stu_path(p, sizeof p, "v2.db");
    unlink(p);
    snprintf(path, sizeof path, "%s", p);
    const char *m3 = strstr(mwl_store_schema_sql, "-- migration 3");
    CHECK(m3 != NULL);
    if (!m3)
        return;
    char *v2 = sqlite3_mprintf("%.*s; PRAGMA user_version = 2;", (int)(m3 - mwl_store_schema_sql),
                               mwl_store_schema_sql);
    raw_sql(v2);
    sqlite3_free(v2);
    /* rows as the old store wrote them; the blob of a real item */
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_ds_encode(stu_item_ds(&a, &base), MWL_TS_EXPLICIT_LE, &w), MWL_OK);
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    CHECK_EQ_INT(
        sqlite3_prepare_v2(db,
                           "INSERT INTO sps(id, natural_key, start_date, start_time, accession, dataset,"
                           " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
                           -1, &st, NULL),
        SQLITE_OK);
    const char *dates[] = {"20260102", NULL, "20260101"}, *times[] = {"0800", NULL, NULL};
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        sqlite3_bind_int(st, 1, i + 1);
        sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
        if (dates[i])
            sqlite3_bind_text(st, 3, dates[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 3);
        if (times[i])
            sqlite3_bind_text(st, 4, times[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, "A1", -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 6, w.data, (int)w.len, SQLITE_STATIC);
        CHECK_EQ_INT(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    CHECK_EQ_INT(sqlite3_exec(db,
                              "INSERT INTO sps_station(aet, start_date, sps) VALUES ('CT1', '20260102', 1);"
                              "INSERT INTO sps_name(name, sps) VALUES ('doe^john', 1);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&a);

    /* read-only first: refused, the schema is older */
    mwl_store *s;
    mwl_diag d;
    mwl_store_options ro = {.read_only = true};
    CHECK_EQ_INT(mwl_store_open(path, &ro, &s, &d), MWL_E_UNSUPPORTED);
    CHECK(strstr(d.msg, "open it once for writing") != NULL);
    s = stu_open(path);
    CHECK_EQ_INT(mwl_store_schema_version(s), 4);
    mwl_filter f;
    mwl_filter_init(&f);
    int64_t ids[8];
    CHECK_EQ_INT(stu_ids(s, &f, ids, 8), 3);
    CHECK_EQ_INT(ids[0], 2); /* '' first */
    CHECK_EQ_INT(ids[1], 3);
    CHECK_EQ_INT(ids[2], 1);
    f.station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "CT1"};
    CHECK_EQ_INT(stu_ids(s, &f, ids, 8), 1);
    mwl_filter_init(&f);
    mwl_filter_set_name(&f, MWL_FILTER_EXACT, "Doe^John");
    CHECK_EQ_INT(stu_ids(s, &f, ids, 8), 1);
    mwl_store_free(s);
    CHECK_EQ_INT(mwl_store_open(path, &ro, &s, &d), MWL_OK);
    mwl_store_free(s);
}

int main(void)
{
    stu_setup();
    RUN_TEST(test_factory_and_settings);
    RUN_TEST(test_batches);
    RUN_TEST(test_get_and_status);
    RUN_TEST(test_patient_update);
    RUN_TEST(test_expire);
    RUN_TEST(test_remove_is_atomic);
    RUN_TEST(test_read_only);
    RUN_TEST(test_migration_from_2);
    stu_cleanup();
    return check_report("store_ops_test");
}
