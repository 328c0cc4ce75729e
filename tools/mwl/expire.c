/* mwl expire: removes Scheduled Procedure Steps scheduled too long ago
 * and finished too long ago, as `mwl serve` does with its expire-* keys
 * (the same mwl_worklist_expire). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "util.h"
#include "service/worklist.h"
#include "store/store.h"

#define FINISHED "COMPLETED,DISCONTINUED,CANCELED"

static void usage(FILE *out)
{
    fprintf(out, "usage: mwl expire [--db FILE] [--days N] [--statuses-after-hours H] [--statuses LIST]\n"
                 "\n"
                 "Removes stored Scheduled Procedure Steps, at least one of:\n"
                 "  --days N                   steps whose SPS Start Date is more than N days before\n"
                 "                             today (local date; 0 = any day before today); steps\n"
                 "                             without a start date are kept\n"
                 "  --statuses-after-hours H   steps whose SPS Status is one of LIST and has been\n"
                 "                             for more than H hours (0 = however long)\n"
                 "  --statuses LIST            comma-separated SPS Status values (default " FINISHED ");\n"
                 "                             alone, as --statuses-after-hours 0\n"
                 "  --db FILE                  the worklist database (default mwl.db)\n"
                 "\n"
                 "Prints how many steps each part removed. `mwl serve` does the same at start and\n"
                 "every expire-interval with expire-after-days and expire-statuses-after-hours.\n"
                 "exit status: 0 done, 1 database error, 2 bad command line.\n");
}

/* A decimal count in [0, max]. */
/* A whole number 0..max (tool_parse_long's rules). */
static bool parse_count(const char *s, uint32_t max, uint32_t *out)
{
    long v;
    if (!tool_parse_long(s, 0, (long)max, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

int mwl_cmd_expire(int argc, char **argv)
{
    const char *db = "mwl.db";
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"days", required_argument, NULL, 'D'},
                                         {"statuses-after-hours", required_argument, NULL, 'H'},
                                         {"statuses", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    mwl_worklist_expiry e = {false, 0, false, 0, FINISHED};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:D:H:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'D':
            if (!parse_count(optarg, 36500, &e.days)) {
                fprintf(stderr, "mwl expire: --days: '%s' is not a number of days (0..36500)\n", optarg);
                return MWL_EXIT_USAGE;
            }
            e.by_date = true;
            break;
        case 'H':
            if (!parse_count(optarg, 876000, &e.hours)) {
                fprintf(stderr, "mwl expire: --statuses-after-hours: '%s' is not a number of hours\n",
                        optarg);
                return MWL_EXIT_USAGE;
            }
            e.by_status = true;
            break;
        case 's':
            e.statuses = optarg;
            e.by_status = true;
            break;
        case 'h': usage(stdout); return MWL_EXIT_OK;
        default: usage(stderr); return MWL_EXIT_USAGE;
        }
    }
    if (optind != argc || (!e.by_date && !e.by_status)) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    /* The list is checked before the database is opened: a typo is a usage error. */
    char buf[256];
    const char *items[MWL_FILTER_EXCLUDE_MAX];
    size_t n;
    mwl_diag d;
    mwl_diag_clear(&d);
    if (e.by_status && (mwl_worklist_status_list(e.statuses, buf, sizeof buf, items, MWL_FILTER_EXCLUDE_MAX,
                                                 &n, &d) != MWL_OK ||
                        n == 0)) {
        fprintf(stderr, "mwl expire: --statuses: %s\n", n == 0 && !d.msg[0] ? "no statuses given" : d.msg);
        return MWL_EXIT_USAGE;
    }
    mwl_store *store;
    if (mwl_store_open(db, NULL, &store, &d) != MWL_OK) {
        fprintf(stderr, "mwl expire: %s\n", d.msg);
        return MWL_EXIT_FAILURE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    mwl_worklist_expiry_result r;
    int rc = mwl_worklist_expire(store, &e, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &r, &d);
    mwl_store_free(store);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl expire: %s\n", d.msg[0] ? d.msg : mwl_status_str(rc));
        return MWL_EXIT_FAILURE;
    }
    if (e.by_date)
        printf("mwl expire: %zu scheduled procedure step%s scheduled before %s removed\n", r.scheduled,
               r.scheduled == 1 ? "" : "s", r.before_date);
    if (e.by_status)
        printf("mwl expire: %zu scheduled procedure step%s with status %s%s%s removed\n", r.finished,
               r.finished == 1 ? "" : "s", e.statuses, r.finished_before[0] ? " since before " : "",
               r.finished_before);
    return MWL_EXIT_OK;
}
