/* mwl find: a Modality Worklist SCU (PS3.4 Annex K) for people and scripts.
 * Builds a C-FIND identifier from plain options (--station, --date, ...),
 * DCMTK findscu style keys (-k ScheduledProcedureStepSequence.Modality=CT)
 * or a data set file (--query), sends it through the client library
 * (client/client.h), and shows each Pending response as a table row, DICOM
 * JSON (PS3.18 F.2), a dcmdump-style tree, and/or a Part 10 file. Exit
 * status: 0 success, 1 a failure or cancel status from the peer, 2 usage,
 * 3 network or association failure; each failure is one line on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/file.h"
#include "base/log.h"
#include "client/client.h"
#include "commands.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "dicom/format.h"
#include "dicom/json.h"
#include "dicom/keypath.h"
#include "query_args.h"
#include "worklist/worklist.h"
#include "table.h"
#include "util.h"

#define SPS TOOL_SPS

/* The return keys sent unless --keys-only or --query: the worklist
 * module's default list (mwl_worklist_default_return_keys). */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mwl find [options] HOST PORT\n"
            "\n"
            "Queries a Modality Worklist server (C-FIND) and shows one row per Scheduled\n"
            "Procedure Step. Without --keys-only or --query the query asks for the keys a\n"
            "modality reads to start an exam (listed below) and matches today's steps.\n"
            "\n"
            "matching (values in UTF-8; * and ? are wildcards where the standard allows):\n"
            "  --station AE        Scheduled Station AE Title\n"
            "  --date WHEN         SPS start date: today (default), tomorrow, yesterday,\n"
            "                      YYYYMMDD, FROM-TO, FROM-, -TO, or all (no date matching)\n"
            "  --time HHMM[-HHMM]  SPS start time or time range\n"
            "  --modality MOD      Modality in the SPS (CT, MR, ...)\n"
            "  --patient-id ID     Patient ID\n"
            "  --patient-name PN   Patient's Name, e.g. 'DOE^J*'\n"
            "  --accession ACC     Accession Number\n"
            "  --study-uid UID     Study Instance UID\n"
            "  --sps-status S      Scheduled Procedure Step Status (SCHEDULED, ...)\n"
            "  -k KEY[=VALUE]      any key, as DCMTK findscu: KEY is a keyword or gggg,eeee;\n"
            "                      a path reaches into sequences, e.g.\n"
            "                      -k ScheduledProcedureStepSequence.Modality=CT\n"
            "                      ([N] picks item N, as in findscu); without a value it\n"
            "                      is a return key. Later keys override earlier ones.\n"
            "  --query FILE        start from the data set in FILE (Part 10 or raw, e.g.\n"
            "                      from dump2dcm); options above are applied on top\n"
            "  --keys-only         send only the keys given (no defaults, no date)\n"
            "  --charset CS        Specific Character Set of the query, e.g. 'ISO_IR 100'\n"
            "                      (default: none, or ISO_IR 192 when a value is not ASCII);\n"
            "                      -k SpecificCharacterSet=CS says the same\n"
            "\n"
            "output (stdout; --out-dir adds to the others):\n"
            "  (default)           a table: date, time, station, modality, patient, birth\n"
            "                      date, sex, accession, SPS ID, description; names in UTF-8\n"
            "  --json              one JSON array of DICOM JSON objects (PS3.18 F.2)\n"
            "  --dump              each response as a tree, as 'mwl dump' prints it\n"
            "  --out-dir DIR       write each response as a Part 10 file DIR/rspNNNN.dcm\n"
            "\n"
            "association:\n"
            "  --aet AE            our (calling) AE title (default %s)\n"
            "  --aec AE            the server's (called) AE title (default %s)\n"
            "  --timeout S         seconds allowed to connect, to associate and for each\n"
            "                      response (default 10; fractions allowed)\n"
            "  --limit N           send C-CANCEL after N responses; the final status\n"
            "                      (normally FE00 Cancel) is reported\n"
            "  --tls               DICOM over TLS (PS3.15 Annex B; TLS 1.2 or 1.3); the\n"
            "                      server's certificate is checked against --tls-ca, or\n"
            "                      the system's trusted certificates, and must name HOST\n"
            "                      (DNS or IP subjectAltName)\n"
            "  --tls-no-name-check accept a trusted certificate that does not name HOST\n"
            "                      (implies --tls)\n"
            "  --tls-ca FILE       PEM certificates trusted to sign the server's (implies --tls)\n"
            "  --tls-cert FILE, --tls-key FILE\n"
            "                      our certificate and private key (PEM), for a server that\n"
            "                      requires one (imply --tls)\n"
            "  -v, --verbose       log the association on stderr\n"
            "  -h, --help          show this help\n"
            "\n"
            "default return keys:\n",
            MWL_SCU_DEFAULT_CALLING_AE, MWL_SCU_DEFAULT_CALLED_AE);
    /* Top-level keys first, then those of the SPS item, wrapped. */
    size_t n_default = 0;
    const char *const *default_keys = mwl_worklist_default_return_keys(&n_default);
    for (int sps = 0; sps < 2; sps++) {
        size_t col = (size_t)fprintf(out, sps ? "  in the SPS item:" : " ");
        bool first = true;
        for (size_t i = 0; i < n_default; i++) {
            const char *k = default_keys[i];
            bool in_sps = strncmp(k, SPS, strlen(SPS)) == 0;
            if (in_sps != (sps == 1))
                continue;
            if (in_sps)
                k += strlen(SPS);
            size_t len = strlen(k) + (first ? 1 : 2);
            if (col + len > 78) {
                fputs(first ? "\n   " : ",\n   ", out);
                col = 3;
            } else if (!first) {
                fputc(',', out);
                col++;
            }
            col += (size_t)fprintf(out, " %s", k);
            first = false;
        }
        fputc('\n', out);
    }
    fputs("\n"
          "exit status: 0 success; 1 a failure or cancel status from the server (or a\n"
          "response that does not decode, or an --out-dir file that cannot be written);\n"
          "2 bad command line or query file; 3 network or association failure.\n",
          out);
}

/* ---- options -------------------------------------------------------------- */

typedef struct options {
    const char *host;
    uint16_t port;
    const char *calling_ae, *called_ae;
    int timeout_ms;
    long limit; /* 0 = none */
    bool verbose, keys_only, json, dump;
    const char *out_dir;
    tool_query_args query; /* the keys and where they come from */
    tool_tls tls;
} options;

/* Parses argv into *o. Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->calling_ae = MWL_SCU_DEFAULT_CALLING_AE;
    o->called_ae = MWL_SCU_DEFAULT_CALLED_AE;
    o->timeout_ms = 10000;
    if (!tool_query_args_init(&o->query, argc)) {
        fprintf(stderr, "mwl find: out of memory\n");
        return MWL_EXIT_FAILURE;
    }
    const char *positional[2];
    int npos = 0;
    bool missing = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *v = NULL;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return MWL_EXIT_OK;
        }
        if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            o->verbose = true;
            continue;
        }
        if (strcmp(arg, "--keys-only") == 0) {
            o->keys_only = true;
            continue;
        }
        if (strncmp(arg, "--tls", 5) == 0) {
            int t = tool_tls_option("find", argc, argv, &i, &o->tls);
            if (t < 0)
                return MWL_EXIT_USAGE;
            if (t > 0)
                continue;
        }
        if (strcmp(arg, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(arg, "--dump") == 0) {
            o->dump = true;
            continue;
        }
        int q = tool_query_option("find", argc, argv, &i, &o->query);
        if (q < 0)
            return MWL_EXIT_USAGE;
        if (q > 0)
            continue;
        if ((v = tool_option_value("find", argc, argv, &i, "--aet", &missing))) {
            o->calling_ae = v;
        } else if ((v = tool_option_value("find", argc, argv, &i, "--aec", &missing))) {
            o->called_ae = v;
        } else if ((v = tool_option_value("find", argc, argv, &i, "--timeout", &missing))) {
            if (!missing && !tool_parse_seconds(v, &o->timeout_ms)) {
                fprintf(stderr, "mwl find: --timeout wants seconds > 0 and <= 86400, not '%s'\n", v);
                return MWL_EXIT_USAGE;
            }
        } else if ((v = tool_option_value("find", argc, argv, &i, "--limit", &missing))) {
            if (!missing && !tool_parse_long(v, 1, 1000000000L, &o->limit)) {
                fprintf(stderr, "mwl find: --limit wants a count from 1, not '%s'\n", v);
                return MWL_EXIT_USAGE;
            }
        } else if ((v = tool_option_value("find", argc, argv, &i, "--out-dir", &missing))) {
            o->out_dir = v;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "mwl find: unknown option '%s' (see 'mwl find --help')\n", arg);
            return MWL_EXIT_USAGE;
        } else if (npos < 2) {
            positional[npos++] = arg;
        } else {
            fprintf(stderr, "mwl find: too many arguments (see 'mwl find --help')\n");
            return MWL_EXIT_USAGE;
        }
        if (missing)
            return MWL_EXIT_USAGE;
    }
    if (npos != 2) {
        fprintf(stderr, "mwl find: HOST and PORT are required (see 'mwl find --help')\n");
        return MWL_EXIT_USAGE;
    }
    if (o->json && o->dump) {
        fprintf(stderr, "mwl find: --json and --dump both write to stdout: choose one\n");
        return MWL_EXIT_USAGE;
    }
    if (o->out_dir && !o->out_dir[0]) {
        fprintf(stderr, "mwl find: --out-dir needs a folder\n");
        return MWL_EXIT_USAGE;
    }
    o->host = positional[0];
    mwl_diag diag;
    mwl_diag_clear(&diag);
    if (mwl_net_parse_port(positional[1], &o->port, &diag) != MWL_OK || o->port == 0) {
        fprintf(stderr, "mwl find: bad port '%s'\n", positional[1]);
        return MWL_EXIT_USAGE;
    }
    return -1;
}

/* ---- the table ------------------------------------------------------------- */

typedef enum { FMT_PLAIN, FMT_DATE, FMT_TIME, FMT_NAME } cell_format;

typedef struct column {
    const char *title;
    int width; /* 0: the last column, as wide as its text */
    uint32_t tag;
    bool in_sps;
    cell_format format;
    uint32_t fallback; /* a top-level tag used when `tag` is empty, or 0 */
} column;

static const column columns[] = {
    {"DATE", 10, MWL_TAG_ScheduledProcedureStepStartDate, true, FMT_DATE, 0},
    {"TIME", 5, MWL_TAG_ScheduledProcedureStepStartTime, true, FMT_TIME, 0},
    {"STATION", 8, MWL_TAG_ScheduledStationAETitle, true, FMT_PLAIN, 0},
    {"MOD", 3, MWL_TAG_Modality, true, FMT_PLAIN, 0},
    {"PATIENT ID", 12, MWL_TAG_PatientID, false, FMT_PLAIN, 0},
    {"PATIENT NAME", 28, MWL_TAG_PatientName, false, FMT_NAME, 0},
    {"BIRTH DATE", 10, MWL_TAG_PatientBirthDate, false, FMT_DATE, 0},
    {"SEX", 3, MWL_TAG_PatientSex, false, FMT_PLAIN, 0},
    {"ACCESSION", 12, MWL_TAG_AccessionNumber, false, FMT_PLAIN, 0},
    {"SPS ID", 12, MWL_TAG_ScheduledProcedureStepID, true, FMT_PLAIN, 0},
    {"DESCRIPTION", 0, MWL_TAG_ScheduledProcedureStepDescription, true, FMT_PLAIN,
     MWL_TAG_RequestedProcedureDescription},
};
enum { N_COLUMNS = sizeof columns / sizeof columns[0] };

static void print_cell(const char *s, int width, bool last)
{
    tool_table_cell(stdout, s, width, last);
}

/* "Family^Given^Middle^Prefix^Suffix" for a person at a console:
 * "Family, Prefix Given Middle, Suffix"; component groups (alphabetic,
 * ideographic, phonetic) joined by " = ". */
static void format_name(const char *pn, mwl_wbuf *w)
{
    size_t group_start = 0, len = strlen(pn);
    bool first_group = true;
    for (size_t g = 0; g <= len; g++) {
        if (g < len && pn[g] != '=')
            continue;
        const char *parts[5] = {"", "", "", "", ""};
        size_t lens[5] = {0};
        size_t c = 0, start = group_start;
        for (size_t i = group_start; i <= g && c < 5; i++) {
            if (i < g && pn[i] != '^')
                continue;
            parts[c] = pn + start;
            lens[c] = i - start;
            c++;
            start = i + 1;
        }
        if (g > group_start) {
            if (!first_group)
                mwl_wbuf_put(w, " = ", 3);
            first_group = false;
            mwl_wbuf_put(w, parts[0], lens[0]);
            static const int order[3] = {3, 1, 2}; /* prefix, given, middle */
            bool comma = false;
            for (int k = 0; k < 3; k++) {
                size_t idx = (size_t)order[k];
                if (!lens[idx])
                    continue;
                mwl_wbuf_put(w, comma ? " " : (lens[0] ? ", " : ""), comma ? 1 : (lens[0] ? 2 : 0));
                comma = true;
                mwl_wbuf_put(w, parts[idx], lens[idx]);
            }
            if (lens[4]) {
                mwl_wbuf_put(w, ", ", 2);
                mwl_wbuf_put(w, parts[4], lens[4]);
            }
        }
        group_start = g + 1;
    }
}

/* The text of a column for one SPS item, in UTF-8, in `arena`. Values that
 * do not convert are shown with '?' for the bytes that are not ASCII, and
 * counted in *bad. */
static const char *cell_text(const mwl_ds *ds, const mwl_ds *sps, const column *c, mwl_arena *a, size_t *bad)
{
    const mwl_ds *from = c->in_sps ? sps : ds;
    const mwl_elem *e = from ? mwl_ds_find(from, c->tag) : NULL;
    if ((!e || !e->length) && c->fallback) {
        from = ds;
        e = mwl_ds_find(ds, c->fallback);
    }
    if (!e || !e->length || !mwl_vr_is_string(e->vr))
        return "";
    const char *s;
    size_t len;
    if (mwl_ds_get_utf8_all(from, e, a, &s, &len, NULL) != MWL_OK) {
        (*bad)++;
        char *copy = mwl_arena_strndup(a, (const char *)e->value, e->length);
        if (!copy)
            return "";
        for (char *p = copy; *p; p++) {
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        }
        s = copy;
        len = strlen(copy);
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\0'))
        len--;
    while (len && s[0] == ' ' && mwl_vr_get_info(e->vr)->kind == MWL_VR_KIND_STRING) {
        s++;
        len--;
    }
    char *text = mwl_arena_strndup(a, s, len);
    if (!text)
        return "";
    /* Control characters would break the row. */
    for (char *p = text; *p; p++) {
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    }
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    switch (c->format) {
    case FMT_DATE:
        /* YYYYMMDD -> YYYY-MM-DD; anything else (a range, a retired form)
         * is shown as it is. */
        if (len == 8 && strspn(text, "0123456789") == 8) {
            mwl_wbuf_put(&w, text, 4);
            mwl_wbuf_put_u8(&w, '-');
            mwl_wbuf_put(&w, text + 4, 2);
            mwl_wbuf_put_u8(&w, '-');
            mwl_wbuf_put(&w, text + 6, 2);
        }
        break;
    case FMT_TIME:
        /* HHMM[SS[.F]] -> HH:MM: seconds do not matter on a schedule. */
        if (len >= 4 && strspn(text, "0123456789") >= 4) {
            mwl_wbuf_put(&w, text, 2);
            mwl_wbuf_put_u8(&w, ':');
            mwl_wbuf_put(&w, text + 2, 2);
        }
        break;
    case FMT_NAME: format_name(text, &w); break;
    case FMT_PLAIN: break;
    }
    const char *result = text;
    if (w.len && w.status == MWL_OK) {
        char *formatted = mwl_arena_strndup(a, (const char *)w.data, w.len);
        if (formatted)
            result = formatted;
    }
    mwl_wbuf_clear(&w);
    return result;
}

static void print_header(void)
{
    for (size_t i = 0; i < N_COLUMNS; i++)
        print_cell(columns[i].title, columns[i].width, i + 1 == N_COLUMNS);
    putchar('\n');
}

static void print_rows(const mwl_ds *ds, mwl_arena *a, size_t *bad)
{
    const mwl_elem *seq = mwl_ds_find(ds, MWL_TAG_ScheduledProcedureStepSequence);
    size_t items = seq && seq->vr == MWL_VR_SQ ? seq->item_count : 0;
    /* One row per SPS: a response holds one (PS3.4 K.6.1.2.1), but a row
     * per item shows a server that sends more, and one without any. */
    for (size_t k = 0; k < (items ? items : 1); k++) {
        const mwl_ds *sps = items ? seq->items[k] : NULL;
        for (size_t i = 0; i < N_COLUMNS; i++)
            print_cell(cell_text(ds, sps, &columns[i], a, bad), columns[i].width, i + 1 == N_COLUMNS);
        putchar('\n');
    }
}

/* ---- Part 10 files ---------------------------------------------------------- */

/* A Part 10 image of one response: the meta header names the MWL FIND SOP
 * class (what the file holds is one of its identifiers; DCMTK's findscu
 * uses a private class for the same purpose) and a fresh instance UID. */
static int part10_image(const mwl_ds *ds, mwl_wbuf *out)
{
    char uid[MWL_UID_MAX + 1];
    mwl_uid_generate(uid, sizeof uid);
    return mwl_part10_encode_as(ds, MWL_TS_EXPLICIT_LE, MWL_UID_ModalityWorklistInformationModelFind, uid,
                                out);
}

/* ---- the C-FIND ------------------------------------------------------------- */

typedef struct run {
    const options *o;
    size_t received;    /* responses delivered */
    size_t shown;       /* responses shown on stdout */
    size_t warnings;    /* FF01 */
    size_t undecodable; /* identifiers that did not decode */
    size_t charset_bad; /* values shown with replacement characters */
    bool output_failed; /* a response could not be shown or written */
    mwl_wbuf buf;
    mwl_arena cells;
} run;

static int on_response(void *user, const mwl_scu_find_rsp *rsp)
{
    run *r = user;
    const options *o = r->o;
    r->received++;
    if (rsp->status == MWL_DIMSE_STATUS_PENDING_WARNING)
        r->warnings++;
    if (rsp->decode_status != MWL_OK) {
        r->undecodable++;
        fprintf(stderr, "mwl find: response %zu: the identifier does not decode: %s\n", rsp->index + 1,
                rsp->decode_error[0] ? rsp->decode_error : mwl_status_str(rsp->decode_status));
    } else {
        const mwl_ds *ds = rsp->identifier;
        if (o->json) {
            /* One array, one object per line, valid JSON at every point. */
            r->buf.len = 0;
            mwl_wbuf_put(&r->buf, r->shown ? ",\n" : "\n", r->shown ? 2 : 1);
            mwl_json_report report;
            int rc = mwl_ds_encode_json(ds, NULL, &r->buf, &report);
            if (rc == MWL_OK) {
                fwrite(r->buf.data, 1, r->buf.len, stdout);
                r->shown++;
                r->charset_bad += report.charset_problems;
            } else {
                fprintf(stderr, "mwl find: response %zu: %s\n", rsp->index + 1, mwl_status_str(rc));
                r->output_failed = true;
                return MWL_SCU_FIND_CANCEL;
            }
        } else if (o->dump) {
            printf("\n# Response %zu (status 0x%04X)\n# Used TransferSyntax: %s\n", rsp->index + 1,
                   (unsigned)rsp->status, mwl_scu_ts_name(rsp->ts));
            mwl_format_report report;
            int rc = mwl_ds_format_file(ds, rsp->ts, 0, NULL, stdout, &report);
            if (rc != MWL_OK) {
                fprintf(stderr, "mwl find: response %zu: %s\n", rsp->index + 1, mwl_status_str(rc));
                r->output_failed = true;
                return MWL_SCU_FIND_CANCEL;
            }
            r->charset_bad += report.charset_problems;
            r->shown++;
        } else {
            if (r->shown++ == 0)
                print_header();
            print_rows(ds, &r->cells, &r->charset_bad);
            mwl_arena_clear(&r->cells);
        }
        if (o->out_dir) {
            /* Numbered by arrival, never named after what the server sent
             * (a UID or value of "../x" or "/etc/x" must not choose a
             * path). */
            char path[4096];
            mwl_diag diag;
            mwl_diag_clear(&diag);
            int n = snprintf(path, sizeof path, "%s/rsp%04zu.dcm", o->out_dir, rsp->index + 1);
            int rc = MWL_OK;
            if (n < 0 || (size_t)n >= sizeof path) {
                mwl_diag_set(&diag, 0, 0, "--out-dir path too long");
                rc = MWL_E_INVALID;
            }
            r->buf.len = 0;
            if (rc == MWL_OK)
                rc = part10_image(ds, &r->buf);
            if (rc == MWL_OK)
                rc = mwl_file_write(path, r->buf.data, r->buf.len, false, &diag);
            if (rc != MWL_OK) {
                fprintf(stderr, "mwl find: cannot write %s: %s\n", path,
                        diag.msg[0] ? diag.msg : mwl_status_str(rc));
                r->output_failed = true;
                return MWL_SCU_FIND_CANCEL; /* stop asking for what cannot be kept */
            }
        }
    }
    fflush(stdout);
    if (o->limit && r->received >= (size_t)o->limit)
        return MWL_SCU_FIND_CANCEL;
    return MWL_SCU_FIND_CONTINUE;
}

static void log_to_stderr(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    fprintf(stderr, "mwl find: %s: %s\n", mwl_log_level_name(level), msg);
}

static void describe_failure(const mwl_scu *scu)
{
    const mwl_scu_error *e = mwl_scu_last_error(scu);
    fprintf(stderr, "mwl find: %s\n", e->msg[0] ? e->msg : mwl_status_str(e->status));
}

/* The final status in one line: code, class and meaning (PS3.7 Annex C,
 * PS3.4 K.4-1), and what the server added. */
static void describe_status(const mwl_scu_find_result *res, const run *r)
{
    uint16_t st = res->status;
    mwl_dimse_class cls = mwl_dimse_status_class(st);
    const char *meaning = mwl_dimse_status_str(st);
    const char *cls_name = mwl_dimse_class_str(cls);
    fprintf(stderr, "mwl find: C-FIND %s: status 0x%04X %s%s%s",
            cls == MWL_DIMSE_CLASS_CANCEL    ? "cancelled"
            : cls == MWL_DIMSE_CLASS_WARNING ? "warning"
                                             : "failed",
            (unsigned)st, cls_name, strcmp(cls_name, meaning) ? ": " : "",
            strcmp(cls_name, meaning) ? meaning : "");
    if (res->has_error_comment) {
        /* the server's text: control characters escaped, as in a log line */
        char comment[sizeof res->error_comment * 6];
        (void)mwl_log_escape(res->error_comment, strlen(res->error_comment), comment, sizeof comment, NULL);
        fprintf(stderr, "; error comment \"%s\"", comment);
    }
    for (size_t i = 0; i < res->offending_element_count && i < MWL_SCU_OFFENDING_MAX; i++)
        fprintf(stderr, "%s(%04x,%04x)", i ? ", " : "; offending element(s) ",
                (unsigned)(res->offending_elements[i] >> 16),
                (unsigned)(res->offending_elements[i] & 0xFFFF));
    if (res->has_error_id)
        fprintf(stderr, "; error ID %u", (unsigned)res->error_id);
    if (cls == MWL_DIMSE_CLASS_CANCEL)
        fprintf(stderr, " (after %zu response%s%s)", r->received, r->received == 1 ? "" : "s",
                r->o->limit ? ", --limit" : "");
    fputc('\n', stderr);
}

static int run_find(const options *o, const mwl_ds *query)
{
    mwl_scu_config cfg;
    mwl_scu_config_init(&cfg);
    cfg.host = o->host;
    cfg.port = o->port;
    cfg.calling_ae = o->calling_ae;
    cfg.called_ae = o->called_ae;
    cfg.connect_timeout_ms = o->timeout_ms;
    cfg.acse_timeout_ms = o->timeout_ms;
    cfg.dimse_timeout_ms = o->timeout_ms;
    tool_tls_apply(&o->tls, &cfg);
    mwl_diag diag;
    mwl_diag_clear(&diag);
    mwl_scu *scu;
    int rc = mwl_scu_new(&cfg, &scu, &diag);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl find: %s\n", diag.msg[0] ? diag.msg : mwl_status_str(rc));
        return rc == MWL_E_INVALID ? MWL_EXIT_USAGE : MWL_EXIT_FAILURE;
    }
    if (mwl_scu_associate(scu) != MWL_OK) {
        describe_failure(scu);
        mwl_scu_free(scu);
        return MWL_EXIT_NETWORK;
    }
    const mwl_scu_assoc_info *info = mwl_scu_get_assoc_info(scu);
    if (!info->find_accepted) {
        fprintf(stderr, "mwl find: %s port %u does not accept Modality Worklist FIND: %s\n", o->host,
                (unsigned)o->port, mwl_scu_pctx_result_str(info->find_result));
        if (mwl_scu_release(scu) != MWL_OK)
            describe_failure(scu);
        mwl_scu_free(scu);
        return MWL_EXIT_NETWORK;
    }

    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    mwl_wbuf_init(&r.buf, NULL);
    mwl_arena_init(&r.cells, NULL);
    if (o->json)
        fputs("[", stdout);
    mwl_scu_find_result res;
    rc = mwl_scu_find(scu, query, MWL_DIMSE_PRIORITY_MEDIUM, on_response, &r, &res);
    if (o->json)
        fputs(r.shown ? "\n]\n" : "]\n", stdout);
    mwl_wbuf_clear(&r.buf);
    mwl_arena_clear(&r.cells);

    int exit_code = MWL_EXIT_OK;
    if (rc != MWL_OK) {
        fflush(stdout);
        describe_failure(scu);
        mwl_scu_free(scu);
        return rc == MWL_E_INVALID ? MWL_EXIT_USAGE : MWL_EXIT_NETWORK;
    }
    mwl_dimse_class cls = mwl_dimse_status_class(res.status);
    if (!o->json && !o->dump &&
        (r.received || cls == MWL_DIMSE_CLASS_SUCCESS || cls == MWL_DIMSE_CLASS_WARNING)) {
        if (r.received == 0)
            printf("no matching scheduled procedure steps\n");
        else if (res.discarded_count)
            printf("%zu response%s (%zu more arrived after the C-CANCEL, not shown)\n", r.received,
                   r.received == 1 ? "" : "s", res.discarded_count);
        else
            printf("%zu response%s\n", r.received, r.received == 1 ? "" : "s");
    }
    fflush(stdout);
    if (r.output_failed || r.undecodable) {
        exit_code = MWL_EXIT_FAILURE; /* already explained */
    } else if (cls == MWL_DIMSE_CLASS_SUCCESS) {
        exit_code = MWL_EXIT_OK;
    } else if (cls == MWL_DIMSE_CLASS_WARNING) {
        describe_status(&res, &r); /* the responses are there: still a success */
    } else {
        describe_status(&res, &r);
        exit_code = MWL_EXIT_FAILURE;
    }
    if (r.charset_bad)
        fprintf(stderr, "mwl find: %zu value(s) not valid in their character set, shown with replacements\n",
                r.charset_bad);
    if (mwl_scu_release(scu) != MWL_OK) {
        describe_failure(scu);
        if (exit_code == MWL_EXIT_OK)
            exit_code = MWL_EXIT_NETWORK;
    }
    mwl_scu_free(scu);
    return exit_code;
}

int mwl_cmd_find(int argc, char **argv)
{
    options o;
    int code = parse_args(argc, argv, &o);
    if (code >= 0) {
        tool_query_args_free(&o.query);
        return code;
    }
    if (o.verbose) {
        mwl_log_set_sink(log_to_stderr, NULL);
        mwl_log_set_level(MWL_LOG_DEBUG);
    }
    if (o.out_dir && mkdir(o.out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "mwl find: cannot create %s: %s\n", o.out_dir, strerror(errno));
        tool_query_args_free(&o.query);
        return MWL_EXIT_FAILURE;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *query = NULL;
    size_t n_default = 0;
    const char *const *default_keys = mwl_worklist_default_return_keys(&n_default);
    if (!tool_query_build("find", &o.query, default_keys, o.keys_only ? 0 : n_default, !o.keys_only, &arena,
                          &query)) {
        mwl_arena_clear(&arena);
        tool_query_args_free(&o.query);
        return MWL_EXIT_USAGE;
    }
    code = run_find(&o, query);
    mwl_arena_clear(&arena);
    tool_query_args_free(&o.query);
    return code;
}
