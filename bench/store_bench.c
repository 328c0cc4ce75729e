/* store_bench: walks a worklist database with the store's keyset cursor,
 * for several filters, once in one pass and once pausing (ending the
 * statement, as a server step does) every N rows, and prints the times.
 * Shows that resuming from a position is a seek: pausing every 256 rows
 * costs about the same as one pass, however far into the walk.
 *
 *   build/mwl demo --db /tmp/big.db --count 1000000 --replace
 *   build/bench/store_bench /tmp/big.db [PAGE]
 *
 * With MWL_PLANS set it also prints each filter's query plan (EXPLAIN
 * QUERY PLAN, from the start and from a position). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h" /* private: the SQLite plans (like a test) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long walk(mwl_store *s, const mwl_filter *f, long page, double *seconds)
{
    double t0 = now_s();
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    mwl_diag d;
    long n = 0;
    int rc;
    while ((rc = mwl_store_cursor_next(s, f, &c, &row, &d)) == MWL_OK) {
        n++;
        if (page && n % page == 0)
            mwl_store_cursor_pause(s);
    }
    mwl_store_cursor_pause(s);
    if (rc != MWL_E_NOTFOUND)
        fprintf(stderr, "store_bench: %s\n", d.msg);
    *seconds = now_s() - t0;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store_bench DB [PAGE]\n");
        return 2;
    }
    long page = argc > 2 ? atol(argv[2]) : 256;
    mwl_store *s;
    mwl_diag d;
    mwl_store_options ro = {.read_only = true};
    if (mwl_store_open(argv[1], &ro, &s, &d) != MWL_OK) {
        fprintf(stderr, "store_bench: %s\n", d.msg);
        return 1;
    }
    /* the first date in the database, for date filters */
    mwl_filter all;
    mwl_filter_init(&all);
    mwl_store_cursor c;
    mwl_store_cursor_init(&c);
    mwl_store_row row;
    char day[32] = "20000101";
    if (mwl_store_cursor_next(s, &all, &c, &row, &d) == MWL_OK)
        snprintf(day, sizeof day, "%s", c.last_date);
    mwl_store_cursor_pause(s);

    struct {
        const char *name;
        mwl_filter f;
    } cases[8];
    size_t n = 0;
    mwl_filter_init(&cases[n].f), cases[n++].name = "full scan (e.g. PatientName=*ZZZ*)";
    mwl_filter_init(&cases[n].f), cases[n].f.date_lo = cases[n].f.date_hi = day, cases[n++].name = "one date";
    mwl_filter_init(&cases[n].f), cases[n].f.station_aet = (mwl_filter_cond){MWL_FILTER_EXACT, "CT01"},
                                  cases[n].f.date_lo = day,
                                  cases[n++].name = "station CT01, from the first date";
    mwl_filter_init(&cases[n].f), cases[n].f.modality = (mwl_filter_cond){MWL_FILTER_EXACT, "MR"},
                                  cases[n++].name = "modality MR";
    mwl_filter_init(&cases[n].f), mwl_filter_set_name(&cases[n].f, MWL_FILTER_PREFIX, "mul"),
        cases[n].f.date_lo = day, cases[n++].name = "name mul*, from the first date";
    mwl_filter_init(&cases[n].f), mwl_filter_set_name(&cases[n].f, MWL_FILTER_PREFIX, "smith"),
        cases[n++].name = "name smith* only";
    mwl_filter_init(&cases[n].f), mwl_filter_set_name(&cases[n].f, MWL_FILTER_EXACT, "smith^john"),
        cases[n++].name = "name smith^john";
    mwl_filter_init(&cases[n].f), cases[n].f.patient_id = (mwl_filter_cond){MWL_FILTER_EXACT, "PID0007919"},
                                  cases[n++].name = "patient id (sorted plan)";
    printf("%-40s %9s %10s %14s\n", "filter", "rows", "one pass", "paused/page");
    for (size_t i = 0; i < n; i++) {
        double one, paged;
        long rows = walk(s, &cases[i].f, 0, &one);
        long rows2 = walk(s, &cases[i].f, page, &paged);
        printf("%-40s %9ld %9.3fs %9.3fs/%ld%s\n", cases[i].name, rows, one, paged, page,
               rows == rows2 ? "" : "  ROW COUNTS DIFFER");
        for (int positioned = 0; getenv("MWL_PLANS") && positioned < 2; positioned++) {
            char plan[2048];
            if (mwl_store_sqlite_plan(mwl_store_backend_of(s), &cases[i].f, positioned, plan, sizeof plan,
                                      &d) == MWL_OK)
                printf("    %s:\n%s", positioned ? "from a position" : "from the start", plan);
        }
    }
    mwl_store_free(s);
    return 0;
}
