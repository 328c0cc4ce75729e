/* The importer (store.h mwl_importer_*): batches by count and by age, the
 * commit report naming exactly what became durable, refusals that leave
 * the batch alone, and a database error that loses the open batch and
 * stops. */
#include <sqlite3.h>

#include "check.h"
#include "store/store_test_util.h"

static char path[600];
static uint64_t clock_ms;
static char committed[64][16];
static size_t n_committed, n_reports;

static uint64_t fake_clock(void *user)
{
    (void)user;
    return clock_ms;
}

static void on_commit(void *user, const char *const *sources, size_t count)
{
    (void)user;
    n_reports++;
    for (size_t i = 0; i < count && n_committed < 64; i++)
        snprintf(committed[n_committed++], sizeof committed[0], "%s", sources[i]);
}

static int add(mwl_importer *imp, const char *name, bool complete, mwl_item_problem *p)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    char acc[16], sps[16];
    snprintf(acc, sizeof acc, "ACC-%s", name);
    snprintf(sps, sizeof sps, "S-%s", name);
    stu_item it = {"P1",   NULL, "Doe^John", acc,  "1.2.3", complete ? "RP1" : NULL, "CT1", "20260105",
                   "0900", "CT", sps,        NULL, NULL};
    mwl_diag d;
    int rc = mwl_importer_add(imp, stu_item_ds(&a, &it), name, NULL, p, &d);
    mwl_arena_clear(&a);
    return rc;
}

static int64_t rows_seen_by_another_connection(void)
{
    mwl_store *s;
    mwl_diag d;
    mwl_store_options ro = {.read_only = true};
    if (mwl_store_open(path, &ro, &s, &d) != MWL_OK)
        return -1;
    int64_t n = -1;
    if (mwl_store_count(s, &n, &d) != MWL_OK)
        n = -1;
    mwl_store_free(s);
    return n;
}

static void test_batches_and_report(void)
{
    mwl_store *s = stu_open(path);
    mwl_importer *imp;
    mwl_import_options o = {.batch_size = 3, .batch_ms = 1000, .on_commit = on_commit, .now_ms = fake_clock};
    CHECK_EQ_INT(mwl_importer_new(s, &o, &imp), MWL_OK);
    mwl_item_problem p;
    CHECK_EQ_INT(add(imp, "f1", true, &p), MWL_OK);
    CHECK_EQ_INT(add(imp, "f2", true, &p), MWL_OK);
    CHECK_EQ_INT(rows_seen_by_another_connection(), 0); /* not durable yet */
    CHECK_EQ_INT(add(imp, "bad", false, &p), MWL_E_INVALID);
    CHECK_EQ_INT(p.code, MWL_ITEM_MISSING_KEY);
    CHECK_EQ_INT(p.tag, MWL_TAG_RequestedProcedureID);
    CHECK_EQ_INT(n_reports, 0);
    CHECK_EQ_INT(add(imp, "f3", true, &p), MWL_OK); /* third: commit */
    CHECK_EQ_INT(n_reports, 1);
    CHECK_EQ_INT(n_committed, 3);
    CHECK_EQ_STR(committed[0], "f1");
    CHECK_EQ_STR(committed[2], "f3");
    CHECK_EQ_INT(rows_seen_by_another_connection(), 3);
    CHECK_EQ_INT(add(imp, "f4", true, &p), MWL_OK);
    clock_ms += 1500;
    CHECK_EQ_INT(add(imp, "f5", true, &p), MWL_OK); /* the batch is old: commit */
    CHECK_EQ_INT(n_reports, 2);
    CHECK_EQ_INT(n_committed, 5);
    CHECK_EQ_INT(add(imp, "f1", true, &p), MWL_OK); /* again: an update */
    mwl_diag d;
    CHECK_EQ_INT(mwl_importer_flush(imp, &d), MWL_OK);
    CHECK_EQ_INT(n_committed, 6);
    CHECK_EQ_STR(committed[5], "f1");
    CHECK_EQ_INT(mwl_importer_flush(imp, &d), MWL_OK); /* nothing open: nothing reported */
    CHECK_EQ_INT(n_reports, 3);
    mwl_import_stats st;
    mwl_importer_stats(imp, &st);
    CHECK_EQ_INT(st.items, 6);
    CHECK_EQ_INT(st.inserted, 5);
    CHECK_EQ_INT(st.updated, 1);
    /* refused as the first of a batch: no transaction is left holding the lock */
    CHECK_EQ_INT(add(imp, "bad2", false, &p), MWL_E_INVALID);
    mwl_store *w;
    mwl_store_options quick = {.settings = "sqlite.busy_timeout_ms=50"};
    CHECK_EQ_INT(mwl_store_open(path, &quick, &w, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_begin(w, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_commit(w, &d), MWL_OK);
    mwl_store_free(w);
    /* an uncommitted batch is rolled back by free */
    CHECK_EQ_INT(add(imp, "f9", true, &p), MWL_OK);
    mwl_importer_free(imp);
    CHECK_EQ_INT(rows_seen_by_another_connection(), 5);
    CHECK_EQ_INT(n_committed, 6);
    /* not on a store in a batch */
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_importer_new(s, NULL, &imp), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_rollback(s), MWL_OK);
    mwl_store_free(s);
}

static void test_lenient(void)
{
    mwl_store *s = stu_open(path);
    mwl_importer *imp;
    mwl_import_options o = {.check = MWL_CHECK_LENIENT};
    CHECK_EQ_INT(mwl_importer_new(s, &o, &imp), MWL_OK);
    mwl_item_problem p;
    CHECK_EQ_INT(add(imp, "forced", false, &p), MWL_OK);
    /* a VM 1 key with several values is refused all the same */
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    stu_item it = {"P1",       NULL,   "Doe^John", "A",  "1.2.3", "RP1", "CT1",
                   "20260105", "0900", "MR\\CT",   "SX", NULL,    NULL};
    mwl_diag d;
    CHECK_EQ_INT(mwl_importer_add(imp, stu_item_ds(&a, &it), "multi", NULL, &p, &d), MWL_E_INVALID);
    CHECK_EQ_INT(p.code, MWL_ITEM_MULTI_VALUED);
    mwl_arena_clear(&a);
    CHECK_EQ_INT(mwl_importer_flush(imp, &d), MWL_OK);
    mwl_importer_free(imp);
    CHECK_EQ_INT(rows_seen_by_another_connection(), 6);
    mwl_store_free(s);
}

static void test_store_error_stops(void)
{
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(
        sqlite3_exec(db,
                     "CREATE TRIGGER boom BEFORE INSERT ON sps WHEN new.accession = 'ACC-boom' BEGIN "
                     "SELECT RAISE(ABORT, 'boom'); END;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    mwl_store *s = stu_open(path);
    mwl_importer *imp;
    n_committed = n_reports = 0;
    mwl_import_options o = {.batch_size = 100, .on_commit = on_commit};
    CHECK_EQ_INT(mwl_importer_new(s, &o, &imp), MWL_OK);
    mwl_item_problem p;
    CHECK_EQ_INT(add(imp, "g1", true, &p), MWL_OK);
    CHECK_EQ_INT(add(imp, "boom", true, &p), MWL_E_STORE);
    CHECK_EQ_INT(p.code, MWL_ITEM_OK);
    CHECK_EQ_INT(add(imp, "g2", true, &p), MWL_E_STORE); /* stopped */
    mwl_diag d;
    CHECK_EQ_INT(mwl_importer_flush(imp, &d), MWL_E_STORE);
    CHECK_EQ_INT(n_reports, 0); /* g1 was never durable, and never reported */
    mwl_importer_free(imp);
    CHECK_EQ_INT(rows_seen_by_another_connection(), 6);
    CHECK(!mwl_store_in_batch(s));
    mwl_store_free(s);
}

int main(void)
{
    stu_setup();
    stu_path(path, sizeof path, "import.db");
    RUN_TEST(test_batches_and_report);
    RUN_TEST(test_lenient);
    RUN_TEST(test_store_error_stops);
    stu_cleanup();
    return check_report("import_test");
}
