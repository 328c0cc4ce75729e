/* Out-of-memory runs over the store (STYLE.md §10): each scenario is run
 * once to count the allocations it makes through the store's mwl_mem,
 * then again with the 1st, 2nd, ... Nth failing. Every run must end in
 * MWL_OK or MWL_E_NOMEM, leave the database as it was when it failed
 * (each operation is all or nothing), and leak nothing (ASan). */
#include <sqlite3.h>

#include "check.h"
#include "store/store_test_util.h"

static char path[600];

/* The database's content, as one comparable string. */
static void fingerprint(char *out, size_t cap)
{
    sqlite3 *db;
    out[0] = '\0';
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            db,
            "SELECT count(*) || ':' || group_concat(natural_key || '/' || coalesce(sps_status, '') ||"
            " '/' || coalesce(patient_id, '') || '/' || hex(dataset), ',') ||"
            " (SELECT ':' || count(*) FROM sps_name) || (SELECT ':' || count(*) FROM sps_station)"
            " FROM (SELECT * FROM sps ORDER BY id)",
            -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

static const stu_item latin1 = {"P1",  NULL,        "M\xfcller^Hans", "A1",   "1.2.3.1",
                                "RP1", "CT1",       "20260105",       "0900", "CT",
                                "S1",  "SCHEDULED", "ISO_IR 100"};

/* A fresh database with two items of patient P1. */
static void reset(void)
{
    char p[640];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    mwl_store *s = stu_open(path);
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_diag d;
    stu_item second = latin1;
    second.accession = "A2", second.sps_id = "S2", second.charset = NULL, second.name = "Doe^John";
    CHECK_EQ_INT(mwl_store_put_item(s, stu_item_ds(&a, &latin1), "t", NULL, NULL, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(s, stu_item_ds(&a, &second), "t", NULL, NULL, &d), MWL_OK);
    mwl_arena_clear(&a);
    mwl_store_free(s);
}

typedef int (*scenario_fn)(mwl_store *s, const mwl_mem *mem);

static int sc_put(mwl_store *s, const mwl_mem *mem)
{
    mwl_arena a;
    mwl_arena_init(&a, mem);
    stu_item it = latin1;
    it.accession = "A3", it.sps_id = "S3";
    mwl_ds *ds = stu_item_ds(&a, &it);
    mwl_diag d;
    int rc = ds ? mwl_store_put_item(s, ds, "t", "WL", NULL, &d) : MWL_E_NOMEM;
    mwl_arena_clear(&a);
    return rc;
}

static int sc_find(mwl_store *s, const mwl_mem *mem)
{
    (void)mem;
    mwl_filter f;
    mwl_filter_init(&f);
    f.patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, "P1"};
    mwl_diag d;
    int rc = mwl_store_find_begin(s, &f, &d); /* copies the filter */
    mwl_store_row row;
    int n = 0;
    while (rc == MWL_OK && (rc = mwl_store_find_next(s, &row, &d)) == MWL_OK)
        n++;
    mwl_store_find_end(s);
    return rc == MWL_E_NOTFOUND ? (n == 2 ? MWL_OK : MWL_E_INTERNAL) : rc;
}

static int sc_get(mwl_store *s, const mwl_mem *mem)
{
    mwl_arena a;
    mwl_arena_init(&a, mem);
    mwl_sps_ref ref = {.accession = "A1", .sps_id = "S1"};
    mwl_ds *ds;
    mwl_diag d;
    int rc = mwl_store_get(s, &ref, &a, &ds, NULL, &d);
    mwl_arena_clear(&a);
    return rc;
}

static int sc_status(mwl_store *s, const mwl_mem *mem)
{
    (void)mem;
    mwl_sps_ref ref = {.study_uid = "1.2.3.1", .sps_id = "S2"};
    mwl_diag d;
    return mwl_store_set_status(s, &ref, "COMPLETED", NULL, &d);
}

static int sc_patient(mwl_store *s, const mwl_mem *mem)
{
    mwl_arena a;
    mwl_arena_init(&a, mem);
    mwl_ds *demo;
    int rc = mwl_ds_new(&a, NULL, &demo);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(demo, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(demo, MWL_TAG_PatientName, MWL_VR_PN, "Ωmega^Ann"); /* recodes the Latin-1 item */
    mwl_diag d;
    if (rc == MWL_OK)
        rc = mwl_store_patient_merge(s, "P1", NULL, "P2", "ISS", demo, NULL, &d);
    mwl_arena_clear(&a);
    return rc;
}

static int sc_remove(mwl_store *s, const mwl_mem *mem)
{
    (void)mem;
    mwl_filter f;
    mwl_filter_init(&f);
    mwl_filter_set_name(&f, MWL_FILTER_PREFIX, "MUL");
    size_t n;
    mwl_diag d;
    return mwl_store_remove(s, &f, &n, &d);
}

static int sc_import(mwl_store *s, const mwl_mem *mem)
{
    mwl_importer *imp;
    int rc = mwl_importer_new(s, NULL, &imp);
    if (rc != MWL_OK)
        return rc;
    mwl_arena a;
    mwl_arena_init(&a, mem);
    mwl_diag d;
    for (int i = 0; rc == MWL_OK && i < 3; i++) {
        char acc[8], sps[8];
        snprintf(acc, sizeof acc, "I%d", i);
        snprintf(sps, sizeof sps, "IS%d", i);
        stu_item it = latin1;
        it.accession = acc, it.sps_id = sps;
        mwl_ds *ds = stu_item_ds(&a, &it);
        rc = ds ? mwl_importer_add(imp, ds, acc, NULL, NULL, &d) : MWL_E_NOMEM;
    }
    if (rc == MWL_OK)
        rc = mwl_importer_flush(imp, &d);
    mwl_importer_free(imp);
    mwl_arena_clear(&a);
    return rc;
}

/* Opens a store with `mem`, runs the scenario, closes. */
static int run_once(scenario_fn fn, const mwl_mem *mem)
{
    mwl_store *s;
    mwl_diag d;
    mwl_store_options o = {.mem = mem};
    int rc = mwl_store_open(path, &o, &s, &d);
    if (rc != MWL_OK)
        return rc;
    rc = fn(s, mem);
    mwl_store_free(s);
    return rc;
}

static void run(const char *name, scenario_fn fn)
{
    reset();
    mwl_mem_failing f;
    mwl_mem_failing_init(&f, 0);
    CHECK_EQ_INT(run_once(fn, &f.mem), MWL_OK);
    size_t total = f.count;
    CHECK(total > 1);
    size_t nomem = 0;
    static char before[1 << 16], after[1 << 16];
    for (size_t k = 1; k <= total; k++) {
        reset();
        fingerprint(before, sizeof before);
        mwl_mem_failing_init(&f, k);
        int rc = run_once(fn, &f.mem);
        bool ok = rc == MWL_OK || rc == MWL_E_NOMEM;
        CHECK(ok);
        if (rc == MWL_E_NOMEM) {
            nomem++;
            fingerprint(after, sizeof after);
            bool same = strcmp(before, after) == 0;
            CHECK(same);
            if (!same)
                fprintf(stderr, "  %s: allocation %zu failed and the database changed\n", name, k);
        } else if (!ok) {
            fprintf(stderr, "  %s: allocation %zu failed: %d\n", name, k, rc);
        }
    }
    CHECK(nomem > 0);
    if (getenv("MWL_VERBOSE"))
        fprintf(stderr, "  %s: %zu allocations, %zu failures seen\n", name, total, nomem);
}

static void test_out_of_memory(void)
{
    run("put", sc_put);
    run("find", sc_find);
    run("get", sc_get);
    run("set status", sc_status);
    run("patient merge", sc_patient);
    run("remove", sc_remove);
    run("import", sc_import);
}

int main(void)
{
    stu_setup();
    stu_path(path, sizeof path, "mem.db");
    RUN_TEST(test_out_of_memory);
    stu_cleanup();
    return check_report("store_mem_test");
}
