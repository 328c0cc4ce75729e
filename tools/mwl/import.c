/* mwl import: DICOM worklist files (.wl, Part 10 or raw data sets) and
 * whole folders (including DCMTK wlmscpfs trees, one subfolder per AE
 * title) into the store. This file walks folders, reads files and prints;
 * the store's importer (mwl_importer_*) checks each item, stores it all or
 * nothing, commits every --batch files (or every second) and reports each
 * commit, so with --verbose a file is listed only once its batch has
 * committed: the list printed is exactly what the database holds even if
 * mwl is killed. A database error rolls the open batch back and stops. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "commands.h"
#include "dicom/codec.h"
#include "dicom/dict.h"
#include "store/store.h"

typedef struct import_ctx {
    mwl_importer *imp;
    bool force;
    bool verbose;
    bool per_called_aet; /* record each file's folder name as its worklist */
    size_t files_rejected, files_skipped;
    int fatal; /* a store error: stop */
} import_ctx;

static void reject(import_ctx *ctx, const char *path, const char *why)
{
    fprintf(stderr, "mwl import: %s: rejected: %s\n", path, why);
    ctx->files_rejected++;
}

/* The importer's commit report: exactly the files now in the database. */
static void on_commit(void *user, const char *const *sources, size_t count)
{
    import_ctx *ctx = user;
    if (!ctx->verbose)
        return;
    for (size_t i = 0; i < count; i++)
        printf("imported %s\n", sources[i]);
    fflush(stdout);
}

static void import_file(import_ctx *ctx, const char *path)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = mwl_file_read(path, NULL, 64u << 20, &data, &len, &d);
    if (rc != MWL_OK) {
        reject(ctx, path, d.msg);
        return;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_part10 file;
    rc = mwl_part10_decode(data, len, &arena, NULL, &file, &d);
    free(data);
    char why[300];
    if (rc != MWL_OK) {
        if (d.tag)
            snprintf(why, sizeof why, "not a readable DICOM file: %s at offset %zu (tag %04X,%04X)", d.msg,
                     d.offset, MWL_TAG_GROUP(d.tag), MWL_TAG_ELEMENT(d.tag));
        else
            snprintf(why, sizeof why, "not a readable DICOM file: %s", d.msg[0] ? d.msg : mwl_status_str(rc));
        reject(ctx, path, why);
        mwl_arena_clear(&arena);
        return;
    }
    /* In a wlmscpfs tree, DIR/<AE title>/item.wl: the folder names the
     * worklist that a called AE title selects (serve --per-called-aet). */
    char worklist_aet[64] = "";
    if (ctx->per_called_aet) {
        const char *end = strrchr(path, '/');
        const char *start = end;
        while (start && start > path && start[-1] != '/')
            start--;
        if (end && start && end > start && (size_t)(end - start) < sizeof worklist_aet)
            memcpy(worklist_aet, start, (size_t)(end - start));
    }
    mwl_item_problem problem;
    rc = mwl_importer_add(ctx->imp, file.dataset, path, worklist_aet[0] ? worklist_aet : NULL, &problem, &d);
    mwl_arena_clear(&arena);
    if (rc == MWL_OK)
        return;
    if (rc == MWL_E_INVALID && problem.code != MWL_ITEM_OK)
        snprintf(why, sizeof why, "%s%s", problem.msg,
                 problem.code == MWL_ITEM_MISSING_KEY ? " (use --force to import anyway)" : "");
    else
        snprintf(why, sizeof why, "%s", d.msg[0] ? d.msg : mwl_status_str(rc));
    reject(ctx, path, why);
    if (rc == MWL_E_STORE || mwl_is_fatal(rc))
        ctx->fatal = 1; /* the importer rolled the batch back and stopped */
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks a folder in name order (deterministic imports), depth-bounded. */
static void import_path(import_ctx *ctx, const char *path, int depth)
{
    struct stat st;
    if (ctx->fatal)
        return;
    if (stat(path, &st) != 0) {
        char why[200];
        snprintf(why, sizeof why, "%s", strerror(errno));
        reject(ctx, path, why);
        return;
    }
    if (S_ISREG(st.st_mode)) {
        import_file(ctx, path);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        ctx->files_skipped++;
        return;
    }
    if (depth > 16) {
        reject(ctx, path, "folders nested too deeply");
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        reject(ctx, path, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        /* Hidden files, and DCMTK's lockfile, are not worklist items. */
        if (e->d_name[0] == '.' || strcmp(e->d_name, "lockfile") == 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(names, cap * sizeof *g);
            if (!g) {
                fprintf(stderr, "mwl import: %s: out of memory listing the folder\n", path);
                ctx->fatal = 1;
                break;
            }
            names = g;
        }
        size_t need = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(need);
        if (!names[n]) {
            fprintf(stderr, "mwl import: %s: out of memory listing the folder\n", path);
            ctx->fatal = 1;
            break;
        }
        snprintf(names[n], need, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(dir);
    if (n)
        qsort(names, n, sizeof *names, name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (!ctx->fatal)
            import_path(ctx, names[i], depth + 1);
        free(names[i]);
    }
    free(names);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mwl import [--db FILE] [--force] [--verbose] [--per-called-aet] [--batch N] PATH...\n"
            "\n"
            "Imports worklist items from DICOM files (.wl, Part 10 or raw data sets) and folders\n"
            "(walked recursively, e.g. a DCMTK wlmscpfs tree) into the store. Each file is imported\n"
            "whole or not at all; an SPS imported again replaces the stored one.\n"
            "\n"
            "  --db FILE     the database (default mwl.db; created if absent)\n"
            "  --force       import items that lack type 1 keys a modality needs (items with\n"
            "                several values in an indexed key of value multiplicity 1, undecodable\n"
            "                text or a bad SPS start date or time are refused all the same)\n"
            "  --verbose     print 'imported PATH' for each file once it is committed\n"
            "  --per-called-aet  record each file's folder name (a wlmscpfs AE folder) as the\n"
            "                worklist it belongs to, for mwl serve --per-called-aet\n"
            "  --batch N     files per transaction (default 5000; a batch also commits after 1 s)\n"
            "\n"
            "Prints one line per rejected file (why) on stderr and a summary. Exit status: 0 all\n"
            "imported, 1 some file rejected or the store failed, 2 usage error.\n");
}

int mwl_cmd_import(int argc, char **argv)
{
    const char *db = "mwl.db";
    import_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    mwl_import_options iopt = {.batch_size = 5000, .on_commit = on_commit, .user = &ctx};
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"force", no_argument, NULL, 'f'},
                                         {"verbose", no_argument, NULL, 'v'},
                                         {"per-called-aet", no_argument, NULL, 'P'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:fvb:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'f': ctx.force = true; break;
        case 'v': ctx.verbose = true; break;
        case 'P': ctx.per_called_aet = true; break;
        case 'b': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000) {
                fprintf(stderr, "mwl import: --batch wants a number from 1 to 1000000\n");
                return MWL_EXIT_USAGE;
            }
            iopt.batch_size = (size_t)v;
            break;
        }
        case 'h': usage(stdout); return MWL_EXIT_OK;
        default: usage(stderr); return MWL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_store_options bulk = {.settings = "sqlite.bulk=1"};
    mwl_store *store;
    if (mwl_store_open(db, &bulk, &store, &d) != MWL_OK) {
        fprintf(stderr, "mwl import: %s\n", d.msg);
        return MWL_EXIT_FAILURE;
    }
    iopt.check = ctx.force ? MWL_CHECK_LENIENT : 0;
    if (mwl_importer_new(store, &iopt, &ctx.imp) != MWL_OK) {
        fprintf(stderr, "mwl import: out of memory\n");
        mwl_store_free(store);
        return MWL_EXIT_FAILURE;
    }
    for (int i = optind; i < argc && !ctx.fatal; i++)
        import_path(&ctx, argv[i], 0);
    if (!ctx.fatal && mwl_importer_flush(ctx.imp, &d) != MWL_OK) {
        fprintf(stderr, "mwl import: commit failed: %s\n", d.msg);
        ctx.fatal = 1;
    }
    mwl_import_stats stats;
    mwl_importer_stats(ctx.imp, &stats);
    mwl_importer_free(ctx.imp);
    mwl_store_free(store);
    printf("mwl import: %zu file%s imported (%zu SPS added, %zu updated), %zu rejected\n", stats.items,
           stats.items == 1 ? "" : "s", stats.inserted, stats.updated, ctx.files_rejected);
    if (ctx.fatal)
        fprintf(stderr, "mwl import: stopped on a store error; files not listed as imported were not kept\n");
    return (ctx.fatal || ctx.files_rejected) ? MWL_EXIT_FAILURE : MWL_EXIT_OK;
}
