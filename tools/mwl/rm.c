/* mwl rm: removes stored Scheduled Procedure Steps by SPS ID or accession. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "store/store.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: mwl rm [--db FILE] (--sps-id ID | --accession ACC | --all)...\n"
                 "\n"
                 "Removes the stored Scheduled Procedure Steps with that SPS ID or Accession Number\n"
                 "(several options remove each), or all of them with --all. Prints how many were removed;\n"
                 "exit status 1 when an ID or accession matched nothing.\n");
}

int mwl_cmd_rm(int argc, char **argv)
{
    const char *db = "mwl.db";
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"sps-id", required_argument, NULL, 'i'},
                                         {"accession", required_argument, NULL, 'a'},
                                         {"all", no_argument, NULL, 'A'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    /* First pass: options and the database; second: the removals, in order. */
    int c, n_selectors = 0;
    bool all = false;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:i:a:Ah", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'i':
        case 'a': n_selectors++; break;
        case 'A': all = true; break;
        case 'h': usage(stdout); return MWL_EXIT_OK;
        default: usage(stderr); return MWL_EXIT_USAGE;
        }
    }
    if (optind != argc || (n_selectors == 0) == !all) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_store *store;
    if (mwl_store_open(db, NULL, &store, &d) != MWL_OK) {
        fprintf(stderr, "mwl rm: %s\n", d.msg);
        return MWL_EXIT_FAILURE;
    }
    int status = MWL_EXIT_OK;
    size_t total = 0;
    if (all) {
        if (mwl_store_clear(store, &total, &d) != MWL_OK) {
            fprintf(stderr, "mwl rm: %s\n", d.msg);
            status = MWL_EXIT_FAILURE;
        }
    } else {
        optind = 1;
        while ((c = getopt_long(argc, argv, "d:i:a:Ah", opts, NULL)) != -1) {
            if (c != 'i' && c != 'a')
                continue;
            mwl_store_filter f;
            mwl_store_filter_init(&f);
            mwl_store_cond cond = {MWL_STORE_EXACT, optarg};
            if (c == 'i')
                f.sps_id = cond;
            else
                f.accession = cond;
            size_t removed = 0;
            if (mwl_store_remove(store, &f, &removed, &d) != MWL_OK) {
                fprintf(stderr, "mwl rm: %s\n", d.msg);
                status = MWL_EXIT_FAILURE;
                break;
            }
            if (removed == 0) {
                fprintf(stderr, "mwl rm: no scheduled procedure step with %s '%s'\n",
                        c == 'i' ? "SPS ID" : "accession number", optarg);
                status = MWL_EXIT_FAILURE;
            }
            total += removed;
        }
    }
    mwl_store_free(store);
    printf("mwl rm: %zu scheduled procedure step%s removed\n", total, total == 1 ? "" : "s");
    return status;
}
