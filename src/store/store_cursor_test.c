/* The keyset cursor (store.h mwl_store_cursor_*): a walk paused at any row
 * and resumed -- on the same connection, interleaved with other cursors,
 * or on another connection -- gives exactly the rows of one pass, in
 * (start date, start time, id) order; a pause leaves no read transaction
 * open; resuming costs a seek, not a rescan; and the statements the
 * common filters run walk an index in cursor order (no sort). */
#include <sqlite3.h>

#include "check.h"
#include "store/store_int.h"
#include "store/store_test_util.h"

enum { N_ROWS = 3000, DATES = 9 };

static char path[600];

typedef struct key {
    char date[32], time[32];
    int64_t id;
} key;

/* Rows in order, with their keys, by a walk that pauses every `every`
 * rows (0 = never). */
static size_t walk(mwl_store *s, const mwl_filter *f, size_t every, key *out, size_t cap)
{
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag d;
    size_t n = 0;
    int rc;
    while ((rc = mwl_store_cursor_next(s, f, &c, &row, &d)) == MWL_OK) {
        if (n < cap) {
            snprintf(out[n].date, sizeof out[n].date, "%s", c.last_date);
            snprintf(out[n].time, sizeof out[n].time, "%s", c.last_time);
            out[n].id = row.id;
        }
        n++;
        if (every && n % every == 0)
            mwl_store_cursor_pause(s);
    }
    CHECK_EQ_INT(rc, MWL_E_NOTFOUND);
    /* exhausted stays exhausted */
    CHECK_EQ_INT(mwl_store_cursor_next(s, f, &c, &row, &d), MWL_E_NOTFOUND);
    return n;
}

static int key_cmp(const key *a, const key *b)
{
    int c = strcmp(a->date, b->date);
    if (!c)
        c = strcmp(a->time, b->time);
    if (!c)
        c = a->id < b->id ? -1 : a->id > b->id;
    return c;
}

static bool ordered(const key *k, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&k[i - 1], &k[i]) >= 0)
            return false;
    }
    return true;
}

/* A few filters covering every plan of sqlite.c build_from_where. */
typedef struct named_filter {
    const char *name;
    mwl_filter f;
} named_filter;

static size_t make_filters(named_filter *nf)
{
    size_t n = 0;
    mwl_filter *f;
    f = &nf[n].f, nf[n++].name = "none";
    mwl_filter_init(f);
    f = &nf[n].f, nf[n++].name = "date range";
    mwl_filter_init(f);
    f->date_lo = "20260102", f->date_hi = "20260105";
    f = &nf[n].f, nf[n++].name = "station + date";
    mwl_filter_init(f);
    f->station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "CT2"};
    f->date_lo = "20260103";
    f = &nf[n].f, nf[n++].name = "station";
    mwl_filter_init(f);
    f->station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "MR1"};
    f = &nf[n].f, nf[n++].name = "modality + date";
    mwl_filter_init(f);
    f->modality = (mwl_filter_cond){MWL_FILTER_EXACT, "CT"};
    f->date_hi = "20260106";
    f = &nf[n].f, nf[n++].name = "status";
    mwl_filter_init(f);
    f->sps_status = (mwl_filter_cond){MWL_FILTER_EXACT, "SCHEDULED"};
    f = &nf[n].f, nf[n++].name = "station prefix";
    mwl_filter_init(f);
    f->station_aet = (mwl_filter_cond){MWL_FILTER_PREFIX, "CT"};
    f = &nf[n].f, nf[n++].name = "name prefix only";
    mwl_filter_init(f);
    mwl_filter_set_name(f, MWL_FILTER_PREFIX, "mul");
    f = &nf[n].f, nf[n++].name = "name exact only";
    mwl_filter_init(f);
    mwl_filter_set_name(f, MWL_FILTER_EXACT, "roe^jane");
    f = &nf[n].f, nf[n++].name = "name prefix + date";
    mwl_filter_init(f);
    mwl_filter_set_name(f, MWL_FILTER_PREFIX, "mul");
    f->date_lo = "20260104";
    f = &nf[n].f, nf[n++].name = "patient id";
    mwl_filter_init(f);
    f->patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, "P7"};
    f = &nf[n].f, nf[n++].name = "patient id + station + modality";
    mwl_filter_init(f);
    f->patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, "P8"};
    f->station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "CT2"};
    f->modality = (mwl_filter_cond){MWL_FILTER_EXACT, "CT"};
    f = &nf[n].f, nf[n++].name = "accession prefix";
    mwl_filter_init(f);
    f->accession = (mwl_filter_cond){MWL_FILTER_PREFIX, "A1"};
    /* a worklist that hides finished steps (hide-statuses) */
    static const char *const hidden[] = {"COMPLETED", "DISCONTINUED", "CANCELED"};
    f = &nf[n].f, nf[n++].name = "station + date, hidden statuses";
    mwl_filter_init(f);
    f->station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "CT2"};
    f->date_lo = "20260103";
    f->exclude_statuses = hidden, f->exclude_status_count = 3;
    f = &nf[n].f, nf[n++].name = "date range, hidden statuses";
    mwl_filter_init(f);
    f->date_lo = "20260102", f->date_hi = "20260105";
    f->exclude_statuses = hidden, f->exclude_status_count = 3;
    return n;
}

static key one[N_ROWS + 10], paged[N_ROWS + 10];

static void test_paging_equals_one_pass(void)
{
    mwl_store *s = stu_open(path);
    named_filter nf[16];
    size_t nfilters = make_filters(nf);
    for (size_t i = 0; i < nfilters; i++) {
        size_t n = walk(s, &nf[i].f, 0, one, N_ROWS + 10);
        CHECK(n > 0);
        CHECK(ordered(one, n));
        size_t everies[] = {1, 7, 256};
        for (size_t e = 0; e < 3; e++) {
            size_t m = walk(s, &nf[i].f, everies[e], paged, N_ROWS + 10);
            bool same = m == n && memcmp(one, paged, n * sizeof *one) == 0;
            CHECK(same);
            if (!same)
                fprintf(stderr, "  filter %s, pause every %zu: %zu rows vs %zu\n", nf[i].name, everies[e], m,
                        n);
        }
    }
    /* the filters select what they should (a cursor that returned nothing
     * would pass the comparison above) */
    mwl_filter all;
    mwl_filter_init(&all);
    CHECK_EQ_INT(walk(s, &all, 0, one, N_ROWS + 10), N_ROWS);
    CHECK_EQ_INT(walk(s, &nf[3].f, 0, one, N_ROWS + 10), N_ROWS / 3);
    /* every fifth row is COMPLETED (stu_put_generated) */
    static const char *const completed[] = {"COMPLETED"};
    all.exclude_statuses = completed, all.exclude_status_count = 1;
    CHECK_EQ_INT(walk(s, &all, 0, one, N_ROWS + 10), N_ROWS - N_ROWS / 5);
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag d;
    all.exclude_status_count = MWL_FILTER_EXCLUDE_MAX + 1;
    CHECK_EQ_INT(mwl_store_cursor_next(s, &all, &c, &row, &d), MWL_E_INVALID);
    mwl_store_free(s);
}

/* Pausing after each row through all rows costs a bounded multiple of one
 * pass (each seek finds the position in the index): counted in SQLite VM
 * steps, which do not depend on the machine. A sort or a rescan per seek
 * would cost about N/2 times one pass. */
static void test_resume_is_a_seek(void)
{
    mwl_store *s = stu_open(path);
    mwl_store_backend *b = mwl_store_backend_of(s);
    named_filter nf[16];
    size_t nfilters = make_filters(nf);
    for (size_t i = 0; i < nfilters; i++) {
        if (strncmp(nf[i].name, "patient id", 10) == 0)
            continue; /* sorted plans: a patient has few rows */
        mwl_store_sqlite_vm_steps(b);
        size_t n = walk(s, &nf[i].f, 0, one, N_ROWS + 10);
        int64_t once = mwl_store_sqlite_vm_steps(b);
        walk(s, &nf[i].f, 1, paged, N_ROWS + 10);
        int64_t each_row = mwl_store_sqlite_vm_steps(b);
        bool linear = each_row < 40 * once;
        CHECK(linear);
        if (!linear || getenv("MWL_VERBOSE"))
            fprintf(stderr, "  %s: %zu rows, %lld VM steps in one pass, %lld pausing at every row\n",
                    nf[i].name, n, (long long)once, (long long)each_row);
    }
    mwl_store_free(s);
}

static void test_changes_between_steps(void)
{
    mwl_store *s = stu_open(path);
    mwl_store *w = stu_open(path); /* another connection writes */
    mwl_filter f;
    mwl_filter_init(&f);
    f.station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "XR9"};
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_diag d;
    const char *times[] = {"0800", "0900", "1000", "1100", "1200"};
    for (int i = 0; i < 5; i++) {
        char acc[8], sps[8];
        snprintf(acc, sizeof acc, "X%d", i);
        snprintf(sps, sizeof sps, "XS%d", i);
        stu_item it = {"PX",       NULL,     "X^Y", acc, "1.9", "RP", "XR9",
                       "20270101", times[i], "DX",  sps, NULL,  NULL};
        CHECK_EQ_INT(mwl_store_put_item(w, stu_item_ds(&a, &it), NULL, NULL, NULL, &d), MWL_OK);
    }
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK); /* 0800 */
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK); /* 0900 */
    int64_t at_0900 = row.id;
    mwl_store_cursor_pause(s);
    /* behind the position: not seen; ahead: seen; removed ahead: not seen;
     * the position's own row removed: the walk goes on after it */
    stu_item behind = {"PX",       NULL,   "X^Y", "XB",  "1.9", "RP", "XR9",
                       "20270101", "0830", "DX",  "XSB", NULL,  NULL};
    stu_item ahead = {"PX",       NULL,   "X^Y", "XA",  "1.9", "RP", "XR9",
                      "20270101", "1030", "DX",  "XSA", NULL,  NULL};
    CHECK_EQ_INT(mwl_store_put_item(w, stu_item_ds(&a, &behind), NULL, NULL, NULL, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_put_item(w, stu_item_ds(&a, &ahead), NULL, NULL, NULL, &d), MWL_OK);
    mwl_filter rm;
    mwl_filter_init(&rm);
    rm.accession = (mwl_filter_cond){MWL_FILTER_EXACT, "X3"}; /* 1100 */
    size_t removed;
    CHECK_EQ_INT(mwl_store_remove(w, &rm, &removed, &d), MWL_OK);
    CHECK_EQ_INT(removed, 1);
    rm.accession = (mwl_filter_cond){MWL_FILTER_EXACT, "X1"}; /* 0900, the position */
    CHECK_EQ_INT(mwl_store_remove(w, &rm, &removed, &d), MWL_OK);
    CHECK_EQ_INT(removed, 1);
    const char *expect[] = {"1000", "1030", "1200"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK);
        CHECK_EQ_STR(c.last_time, expect[i]);
        CHECK(row.id != at_0900);
    }
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_E_NOTFOUND);
    /* Writes on the same connection end its open statement: the walk seeks again. */
    mwl_store_cursor_init(&c);
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK); /* 0800 */
    stu_item late = {"PX",       NULL,   "X^Y", "XL",  "1.9", "RP", "XR9",
                     "20270101", "1300", "DX",  "XSL", NULL,  NULL};
    CHECK_EQ_INT(mwl_store_put_item(s, stu_item_ds(&a, &late), NULL, NULL, NULL, &d), MWL_OK);
    int n = 0;
    while (mwl_store_cursor_next(s, &f, &c, &row, &d) == MWL_OK)
        n++;
    CHECK_EQ_INT(n, 5); /* 0830 1000 1030 1200 1300 */
    rm.accession = (mwl_filter_cond){MWL_FILTER_PREFIX, "X"};
    CHECK_EQ_INT(mwl_store_remove(w, &rm, &removed, &d), MWL_OK);
    CHECK_EQ_INT(removed, 6);
    mwl_arena_clear(&a);
    mwl_store_free(w);
    mwl_store_free(s);
}

static void test_interleaved_cursors(void)
{
    mwl_store *s = stu_open(path);
    mwl_store *s2 = stu_open(path);
    named_filter nf[16];
    make_filters(nf);
    const mwl_filter *fa = &nf[2].f, *fb = &nf[0].f; /* station + date, none */
    static key a1[N_ROWS + 10], b1[N_ROWS + 10];
    size_t na = walk(s, fa, 0, a1, N_ROWS + 10), nb = walk(s, fb, 0, b1, N_ROWS + 10);
    /* Two cursors on one connection, one step each in turn; a third moving
     * between two connections every 3 rows. */
    mwl_store_cursor ca, cb, cm;
    mwl_store_cursor_init(&ca);
    mwl_store_cursor_init(&cb);
    mwl_store_cursor_init(&cm);
    size_t ia = 0, ib = 0, im = 0;
    bool a_done = false, b_done = false, m_done = false, same = true;
    mwl_store_row row;
    mwl_diag d;
    while (!a_done || !b_done || !m_done) {
        if (!a_done) {
            if (mwl_store_cursor_next(s, fa, &ca, &row, &d) == MWL_OK)
                same &= ia < na && a1[ia++].id == row.id;
            else
                a_done = true;
        }
        if (!b_done) {
            if (mwl_store_cursor_next(s, fb, &cb, &row, &d) == MWL_OK)
                same &= ib < nb && b1[ib++].id == row.id;
            else
                b_done = true;
        }
        if (!m_done) {
            mwl_store *on = (im / 3) % 2 ? s2 : s;
            if (mwl_store_cursor_next(on, fb, &cm, &row, &d) == MWL_OK)
                same &= im < nb && b1[im++].id == row.id;
            else
                m_done = true;
        }
    }
    CHECK(same);
    CHECK_EQ_INT(ia, na);
    CHECK_EQ_INT(ib, nb);
    CHECK_EQ_INT(im, nb);
    mwl_store_free(s2);
    mwl_store_free(s);
}

/* "PRAGMA wal_checkpoint(TRUNCATE)" returns busy = 1 while a reader holds
 * a snapshot; after a pause there is none. */
static int checkpoint_busy(void)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(db, 100);
    sqlite3_stmt *st;
    int busy = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            busy = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return busy;
}

static void test_pause_ends_read_transaction(void)
{
    mwl_store *s = stu_open(path);
    mwl_store *w = stu_open(path);
    mwl_filter f;
    mwl_filter_init(&f);
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag d;
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK);
    /* a write after the reader's snapshot, so the WAL has frames it pins */
    CHECK_EQ_INT(stu_put_generated(w, N_ROWS + 1, DATES, &d), MWL_OK);
    CHECK_EQ_INT(checkpoint_busy(), 1); /* the open statement holds the snapshot */
    mwl_store_cursor_pause(s);
    CHECK_EQ_INT(checkpoint_busy(), 0);
    CHECK_EQ_INT(mwl_store_cursor_next(s, &f, &c, &row, &d), MWL_OK); /* and the walk goes on */
    mwl_store_cursor_pause(s);
    /* the deprecated find_end pauses too */
    CHECK_EQ_INT(mwl_store_find_begin(s, &f, &d), MWL_OK);
    CHECK_EQ_INT(mwl_store_find_next(s, &row, &d), MWL_OK);
    CHECK_EQ_INT(stu_put_generated(w, N_ROWS + 2, DATES, &d), MWL_OK);
    CHECK_EQ_INT(checkpoint_busy(), 1);
    mwl_store_find_end(s);
    CHECK_EQ_INT(checkpoint_busy(), 0);
    mwl_filter rm;
    mwl_filter_init(&rm);
    rm.sps_id = (mwl_filter_cond){MWL_FILTER_EXACT, "S3001"};
    size_t removed;
    CHECK_EQ_INT(mwl_store_remove(w, &rm, &removed, &d), MWL_OK);
    rm.sps_id = (mwl_filter_cond){MWL_FILTER_EXACT, "S3002"};
    CHECK_EQ_INT(mwl_store_remove(w, &rm, &removed, &d), MWL_OK);
    mwl_store_free(w);
    mwl_store_free(s);
}

/* The statements of the common filters walk an index in cursor order: no
 * "USE TEMP B-TREE FOR ORDER BY", which would sort every matching row at
 * every seek. */
static void test_plans(void)
{
    mwl_store *s = stu_open(path);
    mwl_store_backend *b = mwl_store_backend_of(s);
    named_filter nf[16];
    size_t n = make_filters(nf);
    char plan[2048];
    mwl_diag d;
    for (size_t i = 0; i < n; i++) {
        for (int positioned = 0; positioned < 2; positioned++) {
            CHECK_EQ_INT(mwl_store_sqlite_plan(b, &nf[i].f, positioned, plan, sizeof plan, &d), MWL_OK);
            bool sorted = strstr(plan, "TEMP B-TREE") != NULL;
            bool expect_sorted = strncmp(nf[i].name, "patient id", 10) == 0;
            CHECK(sorted == expect_sorted);
            if (sorted != expect_sorted || getenv("MWL_VERBOSE"))
                fprintf(stderr, "  plan for %s%s:\n%s", nf[i].name, positioned ? " (from a position)" : "",
                        plan);
            if (strncmp(nf[i].name, "patient id", 10) == 0)
                CHECK(strstr(plan, "sps_patient_id") != NULL); /* the selective index */
            if (strncmp(nf[i].name, "station + date", 14) == 0)
                CHECK(strstr(plan, "SEARCH j USING PRIMARY KEY (aet=?") != NULL);
            if (strcmp(nf[i].name, "date range, hidden statuses") == 0)
                CHECK(strstr(plan, "sps_start") != NULL);
            if (strcmp(nf[i].name, "name exact only") == 0)
                CHECK(strstr(plan, "SEARCH j USING PRIMARY KEY (name=?") != NULL);
        }
    }
    mwl_store_free(s);
}

static int yields_asked;

static bool always_yield(void *user)
{
    (void)user;
    yields_asked++;
    return true;
}

/* A per-row condition that rejects rows does not make one call walk the
 * table: every 64 rows passed over the cursor's yield is asked, and a yes
 * stops the call with MWL_AGAIN at that position. Going on (across pauses)
 * gives exactly the rows of a walk without yields. */
static void test_yield_bounds_one_call(void)
{
    mwl_store *s = stu_open(path);
    static const struct {
        const char *name;
        size_t cond; /* 0 station, 1 accession, 2 name, 3 modality */
        const char *value;
    } cases[] = {{"station prefix, no match", 0, "ZZ"},
                 {"accession prefix, no match", 1, "ZZ"},
                 {"name prefix, no match", 2, "zzz"},
                 {"modality prefix, no match", 3, "ZZ"},
                 {"station prefix, some match", 0, "CT"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mwl_filter f;
        mwl_filter_init(&f);
        mwl_filter_cond pre = {MWL_FILTER_PREFIX, cases[k].value};
        if (cases[k].cond == 0)
            f.station_aet = pre;
        else if (cases[k].cond == 1)
            f.accession = pre;
        else if (cases[k].cond == 3)
            f.modality = pre;
        else
            mwl_filter_set_name(&f, MWL_FILTER_PREFIX, cases[k].value);
        size_t want = walk(s, &f, 0, one, N_ROWS + 10);
        mwl_store_cursor c;
        mwl_store_cursor_init(&c);
        c.yield = always_yield;
        yields_asked = 0;
        mwl_store_row row;
        mwl_diag d;
        size_t got = 0, agains = 0, calls = 0;
        int rc;
        while ((rc = mwl_store_cursor_next(s, &f, &c, &row, &d)) != MWL_E_NOTFOUND && calls++ < 100000) {
            if (rc == MWL_AGAIN) {
                agains++;
                if (agains % 3 == 0)
                    mwl_store_cursor_pause(s); /* as a C-FIND step ends */
                continue;
            }
            CHECK_EQ_INT(rc, MWL_OK);
            if (rc != MWL_OK)
                break;
            if (got < want)
                CHECK_EQ_INT(row.id, one[got].id);
            got++;
        }
        CHECK_EQ_INT(rc, MWL_E_NOTFOUND);
        CHECK_EQ_INT(got, want);
        if (want == 0) {
            /* all N_ROWS passed over, 64 at a time */
            CHECK(agains >= N_ROWS / 64 - 1);
            CHECK(agains <= N_ROWS / 64 + 1);
        }
        CHECK_EQ_INT((size_t)yields_asked, agains);
        if (got != want || (want == 0 && agains < N_ROWS / 64 - 1))
            fprintf(stderr, "  %s: %zu rows (want %zu), %zu MWL_AGAIN\n", cases[k].name, got, want, agains);
    }
    mwl_store_free(s);
}

int main(void)
{
    stu_setup();
    stu_path(path, sizeof path, "cursor.db");
    mwl_store *s = stu_open(path);
    mwl_diag d;
    int rc = mwl_store_begin(s, &d);
    for (int i = 0; rc == MWL_OK && i < N_ROWS; i++)
        rc = stu_put_generated(s, i, DATES, &d);
    if (rc == MWL_OK)
        rc = mwl_store_commit(s, &d);
    mwl_store_free(s);
    if (rc != MWL_OK) {
        fprintf(stderr, "fill: %s\n", d.msg);
        return 1;
    }
    RUN_TEST(test_paging_equals_one_pass);
    RUN_TEST(test_resume_is_a_seek);
    RUN_TEST(test_changes_between_steps);
    RUN_TEST(test_interleaved_cursors);
    RUN_TEST(test_pause_ends_read_transaction);
    RUN_TEST(test_plans);
    RUN_TEST(test_yield_bounds_one_call);
    stu_cleanup();
    return check_report("store_cursor_test");
}
