/* mwl ls / mwl export: list stored worklist items (a table for people, or
 * JSON), or write them back out as DICOM files. Both select rows with the
 * same options. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "commands.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/dict.h"
#include "store/store.h"
#include "table.h"
#include "util.h"

typedef struct select_opts {
    const char *db;
    char date_lo[9], date_hi[9];
    const char *station, *modality, *patient_id, *accession, *sps_id;
    long limit;
    bool json;
    const char *out_dir;
} select_opts;

/* Columns of the table and of the JSON objects: (title, width, where). */
typedef struct column {
    const char *title;
    const char *json;
    int width;
    uint32_t tag;
    bool in_sps; /* inside the SPS item */
} column;

static const column columns[] = {
    {"DATE", "date", 8, MWL_TAG_ScheduledProcedureStepStartDate, true},
    {"TIME", "time", 6, MWL_TAG_ScheduledProcedureStepStartTime, true},
    {"STATION", "station", 8, MWL_TAG_ScheduledStationAETitle, true},
    {"MOD", "modality", 3, MWL_TAG_Modality, true},
    {"PATIENT ID", "patientId", 12, MWL_TAG_PatientID, false},
    {"PATIENT NAME", "patientName", 28, MWL_TAG_PatientName, false},
    {"ACCESSION", "accession", 12, MWL_TAG_AccessionNumber, false},
    {"SPS ID", "spsId", 11, MWL_TAG_ScheduledProcedureStepID, true},
    {"DESCRIPTION", "description", 0, MWL_TAG_ScheduledProcedureStepDescription, true},
};
enum { N_COLUMNS = sizeof columns / sizeof columns[0] };

/* All values of a column as UTF-8 ('\' between values), "" when absent. */
static const char *column_text(const mwl_ds *ds, const mwl_ds *sps, const column *c, mwl_arena *a)
{
    const mwl_ds *from = c->in_sps ? sps : ds;
    if (!from)
        return "";
    const mwl_elem *e = mwl_ds_find(from, c->tag);
    if (!e || !e->length)
        return "";
    const char *s;
    size_t len;
    if (mwl_ds_get_utf8_all(from, e, a, &s, &len, NULL) != MWL_OK)
        return "?";
    /* trim the padding */
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\0'))
        len--;
    return mwl_arena_strndup(a, s, len);
}

static void print_cell(const char *s, int width, bool last)
{
    tool_table_cell(stdout, s, width, last);
}

static int select_rows(const select_opts *o, const char *cmd,
                       int (*each)(const select_opts *, const mwl_ds *, int64_t, void *), void *user)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_store *store;
    mwl_store_options ro = {.read_only = true};
    if (mwl_store_open(o->db, &ro, &store, &d) != MWL_OK) {
        fprintf(stderr, "mwl %s: %s\n", cmd, d.msg);
        return MWL_EXIT_FAILURE;
    }
    mwl_store_filter f;
    mwl_store_filter_init(&f);
    f.date_lo = o->date_lo[0] ? o->date_lo : NULL;
    f.date_hi = o->date_hi[0] ? o->date_hi : NULL;
    if (o->station)
        f.station_aet = (mwl_store_cond){MWL_STORE_EXACT, o->station};
    if (o->modality)
        f.modality = (mwl_store_cond){MWL_STORE_EXACT, o->modality};
    if (o->patient_id)
        f.patient_id = (mwl_store_cond){MWL_STORE_EXACT, o->patient_id};
    if (o->accession)
        f.accession = (mwl_store_cond){MWL_STORE_EXACT, o->accession};
    if (o->sps_id)
        f.sps_id = (mwl_store_cond){MWL_STORE_EXACT, o->sps_id};
    int status = MWL_EXIT_OK;
    int rc = MWL_OK;
    mwl_store_cursor cursor;
    mwl_store_cursor_init(&cursor);
    long n = 0;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    /* A page of rows is read and decoded, the cursor paused, then the page
     * printed: a slow stdout (a pager) never keeps a read transaction open. */
    enum { PAGE = 256 };
    struct {
        mwl_ds *ds;
        int64_t id;
    } page[PAGE];
    while (rc == MWL_OK) {
        size_t got = 0;
        mwl_store_row row;
        while (got < PAGE && (o->limit == 0 || n < o->limit) &&
               (rc = mwl_store_cursor_next(store, &f, &cursor, &row, &d)) == MWL_OK) {
            n++;
            if (mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, &arena, NULL, &page[got].ds, &d) !=
                MWL_OK) {
                fprintf(stderr, "mwl %s: stored row %lld does not decode: %s\n", cmd, (long long)row.id,
                        d.msg);
                status = MWL_EXIT_FAILURE;
                continue;
            }
            page[got++].id = row.id;
        }
        mwl_store_cursor_pause(store);
        for (size_t i = 0; i < got; i++) {
            if (each(o, page[i].ds, page[i].id, user) != 0)
                status = MWL_EXIT_FAILURE;
        }
        mwl_arena_clear(&arena);
        if (got < PAGE)
            break;
    }
    if (rc != MWL_OK && rc != MWL_E_NOTFOUND) {
        fprintf(stderr, "mwl %s: %s\n", cmd, d.msg);
        status = MWL_EXIT_FAILURE;
    }
    mwl_store_free(store);
    return status;
}

static const mwl_ds *first_sps(const mwl_ds *ds)
{
    const mwl_elem *seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    return seq && seq->item_count ? seq->items[0] : NULL;
}

typedef struct ls_state {
    long rows;
} ls_state;

static int print_row(const select_opts *o, const mwl_ds *ds, int64_t id, void *user)
{
    ls_state *st = user;
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    const mwl_ds *sps = first_sps(ds);
    if (o->json) {
        fputs(st->rows ? ",\n  {" : "\n  {", stdout);
        printf("\"id\": %lld", (long long)id);
        for (int i = 0; i < N_COLUMNS; i++) {
            const char *v = column_text(ds, sps, &columns[i], &a);
            printf(", \"%s\": ", columns[i].json);
            tool_json_string(stdout, v, strlen(v));
        }
        fputc('}', stdout);
    } else {
        for (int i = 0; i < N_COLUMNS; i++)
            print_cell(column_text(ds, sps, &columns[i], &a), columns[i].width, i == N_COLUMNS - 1);
        fputc('\n', stdout);
    }
    st->rows++;
    mwl_arena_clear(&a);
    return 0;
}

static int export_row(const select_opts *o, const mwl_ds *ds, int64_t id, void *user)
{
    (void)user;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    /* A worklist item is no composite instance: label the file as DCMTK's
     * and mwl find's worklist files are, with the MWL FIND SOP class. */
    char uid[MWL_UID_MAX + 1];
    mwl_uid_generate(uid, sizeof uid);
    int rc =
        mwl_part10_encode_as(ds, MWL_TS_EXPLICIT_LE, MWL_UID_ModalityWorklistInformationModelFind, uid, &w);
    /* Named by the row's id, never by a value of the item. */
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%08lld.wl", o->out_dir, (long long)id);
    mwl_diag d;
    mwl_diag_clear(&d);
    if (rc == MWL_OK && (n < 0 || (size_t)n >= sizeof path)) {
        mwl_diag_set(&d, 0, 0, "--out-dir path too long");
        rc = MWL_E_INVALID;
    }
    if (rc == MWL_OK)
        rc = mwl_file_write(path, w.data, w.len, false, &d);
    mwl_wbuf_clear(&w);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl export: %s: %s\n", path, d.msg[0] ? d.msg : mwl_status_str(rc));
        return -1;
    }
    printf("%s\n", path);
    return 0;
}

static void usage(FILE *out, const char *cmd)
{
    fprintf(out,
            "usage: mwl %s [--db FILE] [--date WHEN] [--station AET] [--modality MOD] [--patient-id ID]\n"
            "              [--accession ACC] [--sps-id ID] [--limit N] %s\n"
            "\n"
            "%s\n"
            "\n"
            "  --date WHEN   today (default), tomorrow, yesterday, YYYYMMDD, FROM-TO, FROM-, -TO, or all\n"
            "  --db FILE     the database (default mwl.db)\n",
            cmd, strcmp(cmd, "ls") == 0 ? "[--json]" : "--out-dir DIR",
            strcmp(cmd, "ls") == 0
                ? "Lists stored Scheduled Procedure Steps as a table (names in UTF-8), or as a JSON array."
                : "Writes each selected Scheduled Procedure Step as a DICOM Part 10 file (<id>.wl) in DIR.");
}

static int run(int argc, char **argv, const char *cmd)
{
    select_opts o;
    memset(&o, 0, sizeof o);
    o.db = "mwl.db";
    tool_parse_date_option("today", o.date_lo, o.date_hi);
    bool is_ls = strcmp(cmd, "ls") == 0;
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"date", required_argument, NULL, 'D'},
                                         {"station", required_argument, NULL, 's'},
                                         {"modality", required_argument, NULL, 'm'},
                                         {"patient-id", required_argument, NULL, 'p'},
                                         {"accession", required_argument, NULL, 'a'},
                                         {"sps-id", required_argument, NULL, 'i'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"out-dir", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:D:s:m:p:a:i:l:jo:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o.db = optarg; break;
        case 'D':
            if (!tool_parse_date_option(optarg, o.date_lo, o.date_hi)) {
                fprintf(stderr, "mwl %s: bad --date '%s'\n", cmd, optarg);
                return MWL_EXIT_USAGE;
            }
            break;
        case 's': o.station = optarg; break;
        case 'm': o.modality = optarg; break;
        case 'p': o.patient_id = optarg; break;
        case 'a': o.accession = optarg; break;
        case 'i': o.sps_id = optarg; break;
        case 'l':
            if (!tool_parse_long(optarg, 1, 1000000000L, &o.limit)) {
                fprintf(stderr, "mwl %s: bad --limit '%s'\n", cmd, optarg);
                return MWL_EXIT_USAGE;
            }
            break;
        case 'j': o.json = true; break;
        case 'o': o.out_dir = optarg; break;
        case 'h': usage(stdout, cmd); return MWL_EXIT_OK;
        default: usage(stderr, cmd); return MWL_EXIT_USAGE;
        }
    }
    if (optind != argc || (is_ls && o.out_dir) || (!is_ls && (o.json || !o.out_dir))) {
        usage(stderr, cmd);
        return MWL_EXIT_USAGE;
    }
    if (!is_ls) {
        if (mkdir(o.out_dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "mwl export: %s: %s\n", o.out_dir, strerror(errno));
            return MWL_EXIT_FAILURE;
        }
        return select_rows(&o, cmd, export_row, NULL);
    }
    ls_state st = {0};
    if (o.json) {
        fputs("[", stdout);
    } else {
        for (int i = 0; i < N_COLUMNS; i++)
            print_cell(columns[i].title, columns[i].width, i == N_COLUMNS - 1);
        fputc('\n', stdout);
    }
    int status = select_rows(&o, cmd, print_row, &st);
    if (o.json)
        fputs(st.rows ? "\n]\n" : "]\n", stdout);
    else if (st.rows == 0)
        fprintf(stderr, "(no scheduled procedure steps match)\n");
    return status;
}

int mwl_cmd_ls(int argc, char **argv)
{
    return run(argc, argv, "ls");
}
int mwl_cmd_export(int argc, char **argv)
{
    return run(argc, argv, "export");
}
