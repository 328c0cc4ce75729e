/* mwl explain: why a stored worklist item is (not) an answer to a query.
 * Builds the identifier as mwl find does (query_args.h), reads the chosen
 * Scheduled Procedure Steps from the store, and prints the matcher's own
 * decision on every key (mwl_explain_match in worklist.h): one line per
 * key, then the verdict. Exit status: 0 every chosen SPS matches, 1 one
 * does not (or none is stored, or the query is refused), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "dicom/codec.h"
#include "query_args.h"
#include "store/store.h"
#include "util.h"
#include "worklist/worklist.h"

/* More SPS than anyone reads through. */
enum { MAX_STEPS = 100 };

static void usage(FILE *out)
{
    fprintf(out, "usage: mwl explain [--db FILE] [query options] (--sps-id ID | --accession ACC |\n"
                 "                   --study-uid UID)... [--json] [--pn-case-sensitive]\n"
                 "                   [--pn-accent-insensitive]\n"
                 "\n"
                 "Says, for every key of a C-FIND query, whether a stored Scheduled Procedure\n"
                 "Step matches it and why not, with the server's own matching (not a copy of\n"
                 "it). Only the keys given are in the query: no default keys, no default date.\n"
                 "\n"
                 "the stored SPS (every one that all of these select is explained):\n"
                 "  --sps-id ID         Scheduled Procedure Step ID\n"
                 "  --accession ACC     Accession Number\n"
                 "  --study-uid UID     Study Instance UID\n"
                 "  --db FILE           the database (default mwl.db)\n"
                 "\n"
                 "the query (values in UTF-8; * and ? are wildcards where the standard allows):\n"
                 "  --station AE        Scheduled Station AE Title\n"
                 "  --date WHEN         SPS start date: today, tomorrow, yesterday, YYYYMMDD,\n"
                 "                      FROM-TO, FROM-, -TO, or all\n"
                 "  --time HHMM[-HHMM]  SPS start time or time range\n"
                 "  --modality MOD      Modality in the SPS (CT, MR, ...)\n"
                 "  --patient-id ID     Patient ID\n"
                 "  --patient-name PN   Patient's Name, e.g. 'DOE^J*'\n"
                 "  --sps-status S      Scheduled Procedure Step Status (SCHEDULED, ...)\n"
                 "  -k KEY[=VALUE]      any key, as in mwl find: -k AccessionNumber=A1,\n"
                 "                      -k ScheduledProcedureStepSequence.Modality=CT\n"
                 "  --query FILE        start from the data set in FILE (Part 10 or raw), e.g. a\n"
                 "                      modality's query; options above are applied on top\n"
                 "  --charset CS        Specific Character Set of the query (see mwl find)\n"
                 "\n"
                 "matching options (as the server's):\n"
                 "  --pn-case-sensitive     compare names case-sensitively\n"
                 "  --pn-accent-insensitive compare names ignoring accents\n"
                 "\n"
                 "output:\n"
                 "  (default)           one line per key (result, name, query and item values,\n"
                 "                      why), items of sequences one by one, then a verdict line\n"
                 "  --json              one JSON object\n"
                 "  -h, --help          show this help\n"
                 "\n"
                 "Policies of 'mwl serve' outside matching (the calling AE title as station,\n"
                 "hidden statuses, per-AE worklists) are not applied.\n"
                 "\n"
                 "exit status: 0 every selected SPS matches; 1 one does not, none is stored,\n"
                 "or the query is refused (A900); 2 bad command line or query file.\n");
}

typedef struct options {
    const char *db;
    const char *sps_id, *accession, *study_uid;
    bool json;
    mwl_match_opts match;
    tool_query_args query;
} options;

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->db = "mwl.db";
    mwl_match_opts_init(&o->match);
    if (!tool_query_args_init(&o->query, argc)) {
        fprintf(stderr, "mwl explain: out of memory\n");
        return MWL_EXIT_FAILURE;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *v;
        bool missing = false;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return MWL_EXIT_OK;
        }
        if (strcmp(arg, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(arg, "--pn-case-sensitive") == 0) {
            o->match.pn_case_sensitive = true;
            continue;
        }
        if (strcmp(arg, "--pn-accent-insensitive") == 0) {
            o->match.pn_accent_insensitive = true;
            continue;
        }
        /* These select the stored SPS here, not keys of the query (mwl
         * find's --accession and --study-uid): checked before the query
         * options. */
        if ((v = tool_option_value("explain", argc, argv, &i, "--db", &missing)))
            o->db = v;
        else if ((v = tool_option_value("explain", argc, argv, &i, "--sps-id", &missing)))
            o->sps_id = v;
        else if ((v = tool_option_value("explain", argc, argv, &i, "--accession", &missing)))
            o->accession = v;
        else if ((v = tool_option_value("explain", argc, argv, &i, "--study-uid", &missing)))
            o->study_uid = v;
        if (v) {
            if (missing || !v[0]) {
                if (!missing)
                    fprintf(stderr, "mwl explain: %s needs a value\n", arg);
                return MWL_EXIT_USAGE;
            }
            continue;
        }
        int q = tool_query_option("explain", argc, argv, &i, &o->query);
        if (q < 0)
            return MWL_EXIT_USAGE;
        if (q > 0)
            continue;
        fprintf(stderr, "mwl explain: unknown %s '%s' (see 'mwl explain --help')\n",
                arg[0] == '-' ? "option" : "argument", arg);
        return MWL_EXIT_USAGE;
    }
    if (!o->sps_id && !o->accession && !o->study_uid) {
        fprintf(stderr, "mwl explain: say which stored SPS: --sps-id, --accession or --study-uid\n");
        return MWL_EXIT_USAGE;
    }
    return -1;
}

/* ---- the stored SPS ---------------------------------------------------------- */

typedef struct step {
    int64_t id;
    const char *worklist_aet;
    mwl_ds *item;
} step;

/* Reads every row the selectors name (at most MAX_STEPS) into `arena`. */
static int read_steps(const options *o, mwl_arena *arena, step *steps, size_t *count)
{
    *count = 0;
    mwl_diag d;
    mwl_diag_clear(&d);
    mwl_store *store;
    mwl_store_options so = {.read_only = true};
    if (mwl_store_open(o->db, &so, &store, &d) != MWL_OK) {
        fprintf(stderr, "mwl explain: %s\n", d.msg);
        return MWL_EXIT_FAILURE;
    }
    mwl_store_filter f;
    mwl_store_filter_init(&f);
    if (o->sps_id)
        f.sps_id = (mwl_store_cond){MWL_STORE_EXACT, o->sps_id};
    if (o->accession)
        f.accession = (mwl_store_cond){MWL_STORE_EXACT, o->accession};
    if (o->study_uid)
        f.study_uid = (mwl_store_cond){MWL_STORE_EXACT, o->study_uid};
    mwl_store_cursor cursor;
    mwl_store_cursor_init(&cursor);
    mwl_store_row row;
    int rc, status = MWL_EXIT_OK;
    while (*count < MAX_STEPS && (rc = mwl_store_cursor_next(store, &f, &cursor, &row, &d)) == MWL_OK) {
        step *s = &steps[*count];
        if (mwl_ds_decode(row.dataset, row.length, MWL_TS_EXPLICIT_LE, arena, NULL, &s->item, &d) != MWL_OK) {
            fprintf(stderr, "mwl explain: stored row %lld does not decode: %s\n", (long long)row.id, d.msg);
            status = MWL_EXIT_FAILURE;
            continue;
        }
        s->id = row.id;
        s->worklist_aet =
            row.worklist_aet ? mwl_arena_strndup(arena, row.worklist_aet, strlen(row.worklist_aet)) : NULL;
        (*count)++;
    }
    if (*count < MAX_STEPS && rc != MWL_E_NOTFOUND) {
        fprintf(stderr, "mwl explain: %s\n", d.msg[0] ? d.msg : mwl_status_str(rc));
        status = MWL_EXIT_FAILURE;
    }
    mwl_store_cursor_pause(store);
    mwl_store_free(store);
    return status;
}

/* ---- output ------------------------------------------------------------------- */

/* "Scheduled Station AE Title" for the last step of a path. */
/* A stored value of the SPS row for the header line, "" when absent. */
static void row_value(const mwl_ds *item, uint32_t tag, bool in_sps, char *buf, size_t cap)
{
    buf[0] = '\0';
    const mwl_ds *from = item;
    if (in_sps) {
        const mwl_elem *sq = mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepSequence);
        from = sq && sq->vr == MWL_VR_SQ && sq->item_count ? sq->items[0] : NULL;
    }
    if (from && mwl_ds_copy_str(from, tag, 0, buf, cap) != MWL_OK)
        buf[0] = '\0';
}

static void print_text(const step *s, const mwl_explain *ex)
{
    char acc[70], sps_id[70];
    row_value(s->item, MWL_TAG_AccessionNumber, false, acc, sizeof acc);
    row_value(s->item, MWL_TAG_ScheduledProcedureStepID, true, sps_id, sizeof sps_id);
    printf("SPS %s (accession %s, row %lld%s%s)\n", sps_id[0] ? sps_id : "-", acc[0] ? acc : "-",
           (long long)s->id, s->worklist_aet ? ", worklist " : "", s->worklist_aet ? s->worklist_aet : "");
    for (size_t i = 0; i < ex->count; i++) {
        const mwl_explain_key *k = &ex->keys[i];
        const char *result =
            k->result == MWL_EXPLAIN_NOMATCH ? "NO MATCH" : mwl_explain_result_name(k->result);
        printf("  %-8s %*s", result, (int)(2 * k->depth), "");
        if (k->is_item) {
            printf("item %zu of %s — %s\n", k->item + 1, mwl_explain_key_name(k), mwl_explain_phrase(k));
            continue;
        }
        if (k->vr == MWL_VR_SQ) {
            /* Its keys follow, item by item: only the count is worth a word. */
            printf("%s: item has %s — %s [%s, %s]\n", mwl_explain_key_name(k),
                   k->item_value ? k->item_value : "none", mwl_explain_phrase(k),
                   mwl_explain_kind_name(k->kind), k->path);
            continue;
        }
        printf("%s: query `%s`, item ", mwl_explain_key_name(k), k->query_value);
        if (k->item_value)
            printf("`%s`", k->item_value);
        else
            printf("(absent)");
        char hint[128];
        if (mwl_explain_pn_hint(k, &ex->opts, hint, sizeof hint))
            printf(" — %s; %s", mwl_explain_phrase(k), hint);
        else
            printf(" — %s", mwl_explain_phrase(k));
        printf(" [%s, %s]\n", mwl_explain_kind_name(k->kind), k->path);
    }
    if (ex->matched) {
        printf("verdict: match\n");
        return;
    }
    printf("verdict: no match; failing:");
    const char *sep = " ";
    for (size_t i = 0; i < ex->count; i++) {
        if (mwl_explain_is_failing(&ex->keys[i])) {
            printf("%s%s", sep, ex->keys[i].path);
            sep = ", ";
        }
    }
    printf("\n");
}

static void json_str(const char *s)
{
    if (s)
        tool_json_string(stdout, s, strlen(s));
    else
        fputs("null", stdout);
}

static void print_json_step(const step *s, const mwl_explain *ex)
{
    char acc[70], sps_id[70];
    row_value(s->item, MWL_TAG_AccessionNumber, false, acc, sizeof acc);
    row_value(s->item, MWL_TAG_ScheduledProcedureStepID, true, sps_id, sizeof sps_id);
    printf("{\"row\":%lld,\"worklistAet\":", (long long)s->id);
    json_str(s->worklist_aet);
    printf(",\"accession\":");
    json_str(acc);
    printf(",\"spsId\":");
    json_str(sps_id);
    /* The members after these are the library's, shared with the HTTP
     * listener's /explain. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_explain_write_json(ex, &w);
    fputc(',', stdout);
    if (w.status == MWL_OK)
        fwrite(w.data, 1, w.len, stdout);
    else
        fputs("\"error\":\"out of memory\"", stdout);
    mwl_wbuf_clear(&w);
    printf("}");
}

/* ---- the command -------------------------------------------------------------- */

static int explain_steps(const options *o, const mwl_query *q, const step *steps, size_t count,
                         mwl_arena *arena)
{
    mwl_matcher m;
    mwl_matcher_init(&m, &o->match, NULL);
    int status = MWL_EXIT_OK;
    if (o->json)
        printf("{\"options\":{\"pnCaseSensitive\":%s,\"pnAccentInsensitive\":%s},\"steps\":[",
               o->match.pn_case_sensitive ? "true" : "false",
               o->match.pn_accent_insensitive ? "true" : "false");
    bool all = true;
    for (size_t i = 0; i < count; i++) {
        mwl_explain ex;
        mwl_diag d;
        mwl_diag_clear(&d);
        /* Each stored row holds one SPS: expansion 0 is what the server
         * matches. */
        int rc = mwl_explain_match(&m, q, steps[i].item, 0, arena, &ex, &d);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl explain: row %lld: %s\n", (long long)steps[i].id,
                    d.msg[0] ? d.msg : mwl_status_str(rc));
            status = MWL_EXIT_FAILURE;
            all = false;
            continue;
        }
        all = all && ex.matched;
        if (o->json) {
            fputs(i ? ",\n" : "\n", stdout);
            print_json_step(&steps[i], &ex);
        } else {
            if (i)
                putchar('\n');
            print_text(&steps[i], &ex);
        }
    }
    if (o->json)
        printf("],\"matched\":%s}\n", all && count ? "true" : "false");
    mwl_matcher_clear(&m);
    return all ? status : MWL_EXIT_FAILURE;
}

int mwl_cmd_explain(int argc, char **argv)
{
    options o;
    int code = parse_args(argc, argv, &o);
    if (code >= 0) {
        tool_query_args_free(&o.query);
        return code;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *identifier = NULL;
    step *steps = calloc(MAX_STEPS, sizeof *steps);
    size_t count = 0;
    if (!steps) {
        fprintf(stderr, "mwl explain: out of memory\n");
        code = MWL_EXIT_FAILURE;
    } else if (!tool_query_build("explain", &o.query, NULL, 0, false, &arena, &identifier)) {
        code = MWL_EXIT_USAGE;
    } else {
        code = read_steps(&o, &arena, steps, &count);
    }
    if (code == MWL_EXIT_OK && count == 0) {
        fprintf(stderr, "mwl explain: no stored SPS has that %s\n",
                o.sps_id      ? "SPS ID"
                : o.accession ? "accession number"
                              : "Study Instance UID");
        code = MWL_EXIT_FAILURE;
    }
    if (code == MWL_EXIT_OK) {
        mwl_query *q;
        mwl_diag d;
        mwl_diag_clear(&d);
        int rc = mwl_query_parse(identifier, &arena, &q, &d);
        if (rc != MWL_OK) {
            /* What the server would answer: a failure status, no item. */
            fprintf(stderr, "mwl explain: the server refuses this query (%04X): (%04X,%04X) %s\n",
                    (unsigned)mwl_query_failure_status(rc), (unsigned)(d.tag >> 16),
                    (unsigned)(d.tag & 0xFFFF), d.msg);
            code = MWL_EXIT_FAILURE;
        } else {
            code = explain_steps(&o, q, steps, count, &arena);
        }
    }
    free(steps);
    mwl_arena_clear(&arena);
    tool_query_args_free(&o.query);
    return code;
}
