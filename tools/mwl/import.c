/* mwl import: DICOM worklist files (.wl, Part 10 or raw data sets) and
 * whole folders (including DCMTK wlmscpfs trees, one subfolder per AE
 * title) into the store. Each file is all-or-nothing: the store writes
 * nothing for an item it cannot fully prepare, and a database error rolls
 * the whole batch back. A batch commits every --batch files, and with
 * --verbose each file is listed only once its batch has committed, so the
 * list printed is exactly what the database holds even if mwl is killed. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/file.h"
#include "commands.h"
#include "dicom/codec.h"
#include "dicom/dict.h"
#include "store/store.h"

typedef struct import_ctx {
    mwl_store *store;
    bool force;
    bool verbose;
    bool per_called_aet; /* record each file's folder name as its worklist */
    size_t batch_size;
    /* files of the open batch, printed after it commits */
    char **pending;
    size_t pending_count;
    uint64_t batch_started_ms;
    size_t files_ok, files_rejected, files_skipped;
    mwl_store_put_stats stats;
    /* of the open batch: added to the totals only once it commits */
    size_t batch_ok;
    mwl_store_put_stats batch_stats;
    int fatal; /* a store error: stop */
} import_ctx;

/* The keys a modality needs to start an exam (return type 1 in PS3.4
 * Table K.6-1): an item without them is refused unless --force. */
static const uint32_t required_item_keys[] = {MWL_TAG_PatientName, MWL_TAG_PatientID,
                                              MWL_TAG_StudyInstanceUID, MWL_TAG_RequestedProcedureID};
static const uint32_t required_sps_keys[] = {
    MWL_TAG_ScheduledStationAETitle, MWL_TAG_ScheduledProcedureStepStartDate,
    MWL_TAG_ScheduledProcedureStepStartTime, MWL_TAG_Modality, MWL_TAG_ScheduledProcedureStepID};

static bool has_value(const mwl_ds *ds, uint32_t tag)
{
    const mwl_elem *e = mwl_ds_find(ds, tag);
    if (!e || e->length == 0)
        return false;
    for (uint32_t i = 0; i < e->length; i++) {
        if (e->value[i] != ' ' && e->value[i] != '\0')
            return true;
    }
    return false;
}

/* Keys of value multiplicity 1 that the store indexes for narrowing: a
 * stored value with several would only be found by its first. */
static const uint32_t single_valued_item_keys[] = {MWL_TAG_PatientName, MWL_TAG_PatientID,
                                                   MWL_TAG_AccessionNumber, MWL_TAG_StudyInstanceUID,
                                                   MWL_TAG_RequestedProcedureID};
static const uint32_t single_valued_sps_keys[] = {
    MWL_TAG_ScheduledProcedureStepStartDate, MWL_TAG_ScheduledProcedureStepStartTime, MWL_TAG_Modality,
    MWL_TAG_ScheduledProcedureStepID, MWL_TAG_ScheduledProcedureStepStatus};

static bool check_single(const mwl_ds *ds, const uint32_t *tags, size_t n, const char *where, char *why,
                         size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        const mwl_elem *e = mwl_ds_find(ds, tags[i]);
        if (e && mwl_vr_is_string(e->vr) && mwl_elem_vm(e) > 1) {
            snprintf(why, cap, "%s%s (%04X,%04X) has %zu values but value multiplicity 1", where,
                     mwl_dict_keyword(tags[i]), MWL_TAG_GROUP(tags[i]), MWL_TAG_ELEMENT(tags[i]),
                     mwl_elem_vm(e));
            return false;
        }
    }
    return true;
}

/* Names the first missing type 1 key (or a VM 1 key with several values)
 * in `why`; true when complete. */
static bool check_required(const mwl_ds *ds, char *why, size_t cap)
{
    if (!check_single(ds, single_valued_item_keys,
                      sizeof single_valued_item_keys / sizeof single_valued_item_keys[0], "", why, cap))
        return false;
    for (size_t i = 0; i < sizeof required_item_keys / sizeof required_item_keys[0]; i++) {
        uint32_t t = required_item_keys[i];
        if (!has_value(ds, t)) {
            snprintf(why, cap, "missing type 1 key %s (%04X,%04X)", mwl_dict_keyword(t), MWL_TAG_GROUP(t),
                     MWL_TAG_ELEMENT(t));
            return false;
        }
    }
    const mwl_elem *seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    if (!seq || seq->vr != MWL_VR_SQ || seq->item_count == 0) {
        snprintf(why, cap, "missing Scheduled Procedure Step Sequence (0040,0100)");
        return false;
    }
    for (size_t k = 0; k < seq->item_count; k++) {
        if (!check_single(seq->items[k], single_valued_sps_keys,
                          sizeof single_valued_sps_keys / sizeof single_valued_sps_keys[0], "SPS item: ", why,
                          cap))
            return false;
        for (size_t i = 0; i < sizeof required_sps_keys / sizeof required_sps_keys[0]; i++) {
            uint32_t t = required_sps_keys[i];
            if (!has_value(seq->items[k], t)) {
                snprintf(why, cap, "SPS item %zu: missing type 1 key %s (%04X,%04X)", k + 1,
                         mwl_dict_keyword(t), MWL_TAG_GROUP(t), MWL_TAG_ELEMENT(t));
                return false;
            }
        }
    }
    return true;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void reject(import_ctx *ctx, const char *path, const char *why)
{
    fprintf(stderr, "mwl import: %s: rejected: %s\n", path, why);
    ctx->files_rejected++;
}

static int commit_batch(import_ctx *ctx)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    if (mwl_store_commit(ctx->store, &d) != MWL_OK) {
        fprintf(stderr, "mwl import: commit failed: %s\n", d.msg);
        mwl_store_rollback(ctx->store);
        ctx->fatal = 1;
    } else {
        ctx->files_ok += ctx->batch_ok;
        ctx->stats.inserted += ctx->batch_stats.inserted;
        ctx->stats.updated += ctx->batch_stats.updated;
        if (ctx->verbose) {
            for (size_t i = 0; i < ctx->pending_count; i++)
                printf("imported %s\n", ctx->pending[i]);
            fflush(stdout);
        }
    }
    ctx->batch_ok = 0;
    ctx->batch_stats.inserted = ctx->batch_stats.updated = 0;
    for (size_t i = 0; i < ctx->pending_count; i++)
        free(ctx->pending[i]);
    ctx->pending_count = 0;
    return ctx->fatal ? -1 : 0;
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
    if (!ctx->force && !check_required(file.dataset, why, sizeof why)) {
        size_t n = strlen(why);
        snprintf(why + n, sizeof why - n, " (use --force to import anyway)");
        reject(ctx, path, why);
        mwl_arena_clear(&arena);
        return;
    }
    if (ctx->pending_count == 0)
        ctx->batch_started_ms = now_ms();
    if (ctx->pending_count == 0 && mwl_store_begin(ctx->store, &d) != MWL_OK) {
        fprintf(stderr, "mwl import: %s\n", d.msg);
        ctx->fatal = 1;
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
    mwl_store_put_stats st = {0, 0};
    rc = mwl_store_put_item(ctx->store, file.dataset, path, worklist_aet[0] ? worklist_aet : NULL, &st, &d);
    mwl_arena_clear(&arena);
    if (rc != MWL_OK) {
        snprintf(why, sizeof why, "%s", d.msg[0] ? d.msg : mwl_status_str(rc));
        reject(ctx, path, why);
        if (rc == MWL_E_STORE || mwl_is_fatal(rc)) {
            /* the item may be half written: the whole batch goes */
            ctx->fatal = 1;
            mwl_store_rollback(ctx->store);
        } else if (ctx->pending_count == 0) {
            commit_batch(ctx); /* nothing was written: close the empty transaction */
        }
        return;
    }
    ctx->batch_stats.inserted += st.inserted;
    ctx->batch_stats.updated += st.updated;
    ctx->batch_ok++;
    char *copy = strdup(path);
    char **grown = realloc(ctx->pending, (ctx->pending_count + 1) * sizeof *grown);
    if (!copy || !grown) {
        free(copy);
        if (grown)
            ctx->pending = grown;
        fprintf(stderr, "mwl import: out of memory\n");
        ctx->fatal = 1;
        mwl_store_rollback(ctx->store);
        return;
    }
    ctx->pending = grown;
    ctx->pending[ctx->pending_count++] = copy;
    /* Commit by count, and at least every second so a long import keeps
     * making durable progress. */
    if (ctx->pending_count >= ctx->batch_size || now_ms() - ctx->batch_started_ms >= 1000)
        commit_batch(ctx);
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
            "  --force       import items that lack type 1 keys a modality needs, or hold several\n"
            "                values in a key of value multiplicity 1 (only the first is indexed)\n"
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
    ctx.batch_size = 5000;
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
            ctx.batch_size = (size_t)v;
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
    mwl_store_options bulk = {false, 5000, true};
    if (mwl_store_open(db, &bulk, &ctx.store, &d) != MWL_OK) {
        fprintf(stderr, "mwl import: %s\n", d.msg);
        return MWL_EXIT_FAILURE;
    }
    for (int i = optind; i < argc && !ctx.fatal; i++)
        import_path(&ctx, argv[i], 0);
    if (ctx.pending_count && !ctx.fatal)
        commit_batch(&ctx);
    for (size_t i = 0; i < ctx.pending_count; i++)
        free(ctx.pending[i]);
    free(ctx.pending);
    mwl_store_free(ctx.store);
    printf("mwl import: %zu file%s imported (%zu SPS added, %zu updated), %zu rejected\n", ctx.files_ok,
           ctx.files_ok == 1 ? "" : "s", ctx.stats.inserted, ctx.stats.updated, ctx.files_rejected);
    if (ctx.fatal)
        fprintf(stderr, "mwl import: stopped on a store error; files not listed as imported were not kept\n");
    return (ctx.fatal || ctx.files_rejected) ? MWL_EXIT_FAILURE : MWL_EXIT_OK;
}
