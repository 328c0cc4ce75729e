/* What the HL7 order feed (issue 12) needs of the store: the intake log
 * (lookup, record, prune; durable across a reopen; an indexed point
 * query), savepoints inside a batch (one message all or nothing, every
 * writing operation nested under one), the synchronous setting, and expiry
 * by the time of the last status change. */
#include <sqlite3.h>
#include <time.h>

#include "check.h"
#include "store/store_int.h"
#include "store/store_test_util.h"

static char path[600];

static mwl_store *fresh(const char *name)
{
    stu_path(path, sizeof path, name);
    unlink(path);
    return stu_open(path);
}

static int put(mwl_store *s, const stu_item *it)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_diag d;
    int rc = mwl_store_put_item(s, stu_item_ds(&a, it), "test", NULL, NULL, &d);
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

/* Runs SQL on the database through a connection of its own. */
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

/* The first column of the first row of `sql`, as text, into out. */
static const char *raw_text(const char *sql, char *out, size_t cap)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = '\0';
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    size_t len = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, sqlite3_column_count(st) - 1);
        int n = snprintf(out + len, cap - len, "%s\n", t ? (const char *)t : "");
        if (n > 0 && (size_t)n < cap - len)
            len += (size_t)n;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static int64_t raw_int(const char *sql)
{
    char buf[64];
    return strtoll(raw_text(sql, buf, sizeof buf), NULL, 10);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const stu_item base = {"P1",       "X",    "Doe^John", "A1", "1.2.3.1",   "RP1", "CT1",
                              "20260105", "0900", "CT",       "S1", "SCHEDULED", NULL};

static stu_item sps(const char *sps_id)
{
    stu_item it = base;
    it.sps_id = sps_id;
    return it;
}

static void test_settings(void)
{
    char p[600];
    stu_path(p, sizeof p, "sync.db");
    mwl_store *s = NULL;
    mwl_diag d;
    const char *good[] = {"sqlite.synchronous=full", "sqlite.synchronous=normal",
                          "sqlite.synchronous=full sqlite.busy_timeout_ms=100"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mwl_store_options o = {.settings = good[i]};
        CHECK_EQ_INT(mwl_store_open(p, &o, &s, &d), MWL_OK);
        CHECK_EQ_INT(mwl_store_schema_version(s), 4);
        mwl_store_free(s);
    }
    const char *bad[] = {"sqlite.synchronous=off", "sqlite.synchronous=FULL", "sqlite.synchronous=1",
                         "sqlite.synchronous"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mwl_store_options o = {.settings = bad[i]};
        CHECK_EQ_INT(mwl_store_open(p, &o, &s, &d), MWL_E_INVALID);
        CHECK(strstr(d.msg, "synchronous") != NULL);
    }
}

static void test_intake_log(void)
{
    mwl_store *s = fresh("intake.db");
    mwl_diag d;
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    const char *reply = "x";
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|1", &a, &reply, &d), MWL_E_NOTFOUND);
    CHECK(reply == NULL);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "", &a, &reply, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_intake_record(s, "", "ack", &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|1", NULL, &d), MWL_E_INVALID);
    int64_t before = now_ms();
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|1", "MSH|^~\\&|ACK 1\r", &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|1", &a, &reply, &d), MWL_OK);
    CHECK_EQ_STR(reply, "MSH|^~\\&|ACK 1\r");
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|1", "ACK 1b", &d), MWL_OK); /* replaces */
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|1", &a, &reply, &d), MWL_OK);
    CHECK_EQ_STR(reply, "ACK 1b");

    /* a few KiB of key and reply, as a long sender name and a long ACK */
    char key[4097], big[8193];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(mwl_store_intake_record(s, key, big, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, key, &a, &reply, &d), MWL_OK);
    CHECK_EQ_INT(strlen(reply), sizeof big - 1);

    /* in a batch: the batch's records are seen, and undone with it */
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|2", "ACK 2", &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|2", &a, &reply, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_rollback(s), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|2", &a, &reply, &d), MWL_E_NOTFOUND);

    /* the time recorded is wall-clock ms */
    int64_t at = raw_int("SELECT recorded_at FROM intake WHERE key = 'RIS|1'");
    CHECK(at >= before - 1000 && at <= now_ms() + 1000);

    /* a point query on the key's index */
    char plan[512];
    raw_text("EXPLAIN QUERY PLAN SELECT reply FROM intake WHERE key = 'RIS|1'", plan, sizeof plan);
    CHECK(strstr(plan, "SEARCH") != NULL && strstr(plan, "INDEX") != NULL);
    raw_text("EXPLAIN QUERY PLAN DELETE FROM intake WHERE recorded_at < 5", plan, sizeof plan);
    CHECK(strstr(plan, "intake_recorded_at") != NULL);
    mwl_store_free(s);

    /* after a restart */
    s = stu_open(path);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|1", &a, &reply, &d), MWL_OK);
    CHECK_EQ_STR(reply, "ACK 1b");
    mwl_store_free(s);
    mwl_store_options ro = {.read_only = true};
    CHECK_EQ_INT(mwl_store_open(path, &ro, &s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|1", &a, &reply, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|3", "ACK 3", &d), MWL_E_INVALID);
    size_t n = 9;
    CHECK_EQ_INT(mwl_store_intake_prune(s, now_ms(), &n, &d), MWL_E_INVALID);
    mwl_store_free(s);

    /* pruning goes by the time recorded */
    s = stu_open(path);
    raw_sql("UPDATE intake SET recorded_at = 1000 WHERE key = 'RIS|1'");
    CHECK_EQ_INT(mwl_store_intake_prune(s, 1000, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(mwl_store_intake_prune(s, 1001, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|1", &a, &reply, &d), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, key, &a, &reply, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_prune(s, now_ms() + 1000, NULL, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, key, &a, &reply, &d), MWL_E_NOTFOUND);
    mwl_arena_clear(&a);
    mwl_store_free(s);
}

static void test_savepoints(void)
{
    mwl_store *s = fresh("savepoint.db");
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_E_INVALID); /* no batch */
    CHECK_EQ_INT(mwl_store_release(s, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_E_INVALID);

    /* batch { savepoint; put A; put B; rollback_to } { savepoint; put C; release } commit: only C */
    stu_item a = sps("A"), b = sps("B"), c = sps("C");
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_release(s, &d), MWL_E_INVALID); /* none open */
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK);
    CHECK_EQ_INT(put(s, &a), MWL_OK);
    CHECK_EQ_INT(put(s, &b), MWL_OK);
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_OK);
    CHECK_EQ_INT(count(s), 0);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK);
    CHECK_EQ_INT(put(s, &c), MWL_OK);
    CHECK_EQ_INT(mwl_store_release(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_E_INVALID); /* released: none open */
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    CHECK_EQ_INT(count(s), 1);
    mwl_arena ar;
    mwl_arena_init(&ar, NULL);
    mwl_ds *ds;
    mwl_sps_ref ref_c = {.study_uid = "1.2.3.1", .sps_id = "C"};
    CHECK_EQ_INT(mwl_store_get(s, &ref_c, &ar, &ds, NULL, &d), MWL_OK);

    /* every writing operation (and get) nested under a savepoint: all
     * undone by rolling back to it, the batch going on */
    mwl_ds *demo;
    CHECK_EQ_INT(mwl_ds_new(&ar, NULL, &demo), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(demo, MWL_TAG_PatientBirthDate, MWL_VR_DA, "19700101"), MWL_OK);
    size_t n = 0;
    const char *reply;
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK);
    CHECK_EQ_INT(put(s, &a), MWL_OK);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK); /* nested */
    CHECK_EQ_INT(mwl_store_set_status(s, &ref_c, "COMPLETED", &n, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", NULL, demo, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(mwl_store_patient_merge(s, "P1", NULL, "P9", NULL, NULL, &n, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|7", "ACK 7", &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_get(s, &ref_c, &ar, &ds, NULL, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|7", &ar, &reply, &d), MWL_OK);
    CHECK_EQ_INT(raw_int("SELECT count(*) FROM sps"), 1); /* another connection sees the last commit */
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_OK);       /* the inner one */
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|7", &ar, &reply, &d), MWL_E_NOTFOUND);
    CHECK_EQ_INT(count(s), 2); /* A stays: the outer savepoint is open */
    CHECK_EQ_STR(raw_text("SELECT sps_status FROM sps", (char[64]){0}, 64), "SCHEDULED\n");
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_OK); /* the outer one */
    CHECK_EQ_INT(count(s), 1);
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    CHECK_EQ_INT(count(s), 1);
    mwl_ds *got;
    CHECK_EQ_INT(mwl_store_get(s, &ref_c, &ar, &got, NULL, &d), MWL_OK);
    CHECK(mwl_ds_find(got, MWL_TAG_PatientBirthDate) == NULL);
    mwl_store_free(s);
    mwl_arena_clear(&ar);
}

/* A database error inside a savepoint: rolling back to it is enough, the
 * batch goes on. */
static void test_savepoint_after_error(void)
{
    mwl_store *s = fresh("savepoint_error.db");
    mwl_diag d;
    raw_sql("CREATE TRIGGER no_a9 BEFORE INSERT ON sps WHEN new.accession = 'A9' BEGIN SELECT RAISE(ABORT, "
            "'no A9'); END;");
    stu_item a = sps("A"), bad = sps("B"), c = sps("C");
    bad.accession = "A9";
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(put(s, &a), MWL_OK);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|B", "ACK B", &d), MWL_OK);
    CHECK_EQ_INT(put(s, &bad), MWL_E_STORE);
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_OK);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK);
    CHECK_EQ_INT(put(s, &c), MWL_OK);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK); /* left open: commit ends it */
    CHECK_EQ_INT(mwl_store_intake_record(s, "RIS|C", "ACK C", &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_rollback_to(s), MWL_E_INVALID); /* the commit ended them */
    CHECK_EQ_INT(count(s), 2);
    mwl_arena ar;
    mwl_arena_init(&ar, NULL);
    const char *reply;
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|B", &ar, &reply, &d), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_store_intake_lookup(s, "RIS|C", &ar, &reply, &d), MWL_OK);
    /* a rollback ends open savepoints too */
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_savepoint(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_rollback(s), MWL_OK);
    CHECK_EQ_INT(mwl_store_begin(s, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_release(s, &d), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_store_commit(s, &d), MWL_OK);
    mwl_arena_clear(&ar);
    mwl_store_free(s);
}

static void test_expire_by_status_time(void)
{
    mwl_store *s = fresh("expire_time.db");
    mwl_diag d;
    stu_item a = sps("A"), b = sps("B"), c = sps("C");
    a.status = "COMPLETED";
    CHECK_EQ_INT(put(s, &a), MWL_OK);
    CHECK_EQ_INT(put(s, &b), MWL_OK);
    CHECK_EQ_INT(put(s, &c), MWL_OK);
    int64_t t0 = raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'B'");
    CHECK(t0 > now_ms() - 60000 && t0 <= now_ms());
    /* an hour ago, as if time had passed */
    raw_sql("UPDATE sps SET status_changed_at = status_changed_at - 3600000");
    int64_t old = raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'B'");
    int64_t old_a = raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'A'");

    /* a status change moves it; a demographics change or the same status again does not */
    mwl_sps_ref ref_b = {.study_uid = "1.2.3.1", .sps_id = "B"};
    size_t n;
    CHECK_EQ_INT(mwl_store_set_status(s, &ref_b, "COMPLETED", &n, &d), MWL_OK);
    CHECK(raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'B'") > old);
    mwl_arena ar;
    mwl_arena_init(&ar, NULL);
    mwl_ds *demo;
    CHECK_EQ_INT(mwl_ds_new(&ar, NULL, &demo), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(demo, MWL_TAG_PatientBirthDate, MWL_VR_DA, "19700101"), MWL_OK);
    CHECK_EQ_INT(mwl_store_patient_update(s, "P1", NULL, demo, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'A'"), old_a);
    CHECK_EQ_INT(put(s, &a), MWL_OK); /* stored again, same status */
    CHECK_EQ_INT(raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'A'"), old_a);
    c.status = "COMPLETED"; /* stored again with a new status */
    CHECK_EQ_INT(put(s, &c), MWL_OK);
    CHECK(raw_int("SELECT status_changed_at FROM sps WHERE sps_id = 'C'") > old);

    /* finished more than half an hour ago: A only (B and C just now) */
    const char *done[] = {"COMPLETED"};
    mwl_store_expiry e = {.changed_before_unix_ms = now_ms() - 1800000};
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_E_INVALID); /* a time needs statuses */
    e = (mwl_store_expiry){.statuses = done, .status_count = 1, .changed_before_unix_ms = -5};
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_E_INVALID);
    e.changed_before_unix_ms = now_ms() - 1800000;
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(raw_int("SELECT count(*) FROM sps WHERE sps_id = 'A'"), 0);
    e.changed_before_unix_ms = 0; /* any time */
    CHECK_EQ_INT(mwl_store_expire(s, &e, &n, &d), MWL_OK);
    CHECK_EQ_INT(n, 2);
    mwl_arena_clear(&ar);
    mwl_store_free(s);
}

int main(void)
{
    stu_setup();
    RUN_TEST(test_settings);
    RUN_TEST(test_intake_log);
    RUN_TEST(test_savepoints);
    RUN_TEST(test_savepoint_after_error);
    RUN_TEST(test_expire_by_status_time);
    stu_cleanup();
    return check_report("store_intake_test");
}
