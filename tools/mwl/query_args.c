/* The query options shared by mwl find and mwl explain (query_args.h). */
#include "query_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "dicom/keypath.h"
#include "util.h"

bool tool_query_args_init(tool_query_args *qa, int argc)
{
    memset(qa, 0, sizeof *qa);
    /* Every argument is at most one key: argc bounds the list. */
    qa->keys = calloc((size_t)argc + 1, sizeof *qa->keys);
    return qa->keys != NULL;
}

void tool_query_args_free(tool_query_args *qa)
{
    free(qa->keys);
    qa->keys = NULL;
}

static void add_key(tool_query_args *qa, const char *path, size_t path_len, const char *value)
{
    tool_key_arg *k = &qa->keys[qa->key_count++];
    k->path = path;
    k->path_len = path_len;
    k->value = value;
}

/* Splits "-k KEY=VALUE". */
static void add_k_option(tool_query_args *qa, const char *arg)
{
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    /* A Specific Character Set given as a key says how to encode the other
     * values: the same as --charset (findscu users write it this way). */
    mwl_keypath kp;
    mwl_diag d;
    if (eq && mwl_keypath_parse(arg, n, &kp, &d) == MWL_OK && kp.count == 1 &&
        kp.steps[0].tag == MWL_TAG_SpecificCharacterSet) {
        qa->charset = eq + 1;
        return;
    }
    add_key(qa, arg, n, eq ? eq + 1 : NULL);
}

int tool_query_option(const char *cmd, int argc, char **argv, int *i, tool_query_args *qa)
{
    static const struct {
        const char *option;
        const char *path;
    } plain[] = {
        {"--station", TOOL_SPS "ScheduledStationAETitle"},
        {"--time", TOOL_SPS "ScheduledProcedureStepStartTime"},
        {"--modality", TOOL_SPS "Modality"},
        {"--patient-id", "PatientID"},
        {"--patient-name", "PatientName"},
        {"--accession", "AccessionNumber"},
        {"--study-uid", "StudyInstanceUID"},
        {"--sps-status", TOOL_SPS "ScheduledProcedureStepStatus"},
    };
    const char *arg = argv[*i];
    const char *v;
    bool missing = false;
    for (size_t p = 0; p < sizeof plain / sizeof plain[0]; p++) {
        if (!(v = tool_option_value(cmd, argc, argv, i, plain[p].option, &missing)))
            continue;
        if (missing)
            return -1;
        if (strcmp(plain[p].option, "--time") == 0) {
            mwl_time_range tr;
            if (mwl_time_range_parse(v, strlen(v), &tr) != MWL_OK) {
                fprintf(stderr, "mwl %s: --time wants HHMM[SS] or a range HHMM-HHMM, not '%s'\n", cmd, v);
                return -1;
            }
        }
        add_key(qa, plain[p].path, strlen(plain[p].path), v);
        return 1;
    }
    if (strncmp(arg, "-k", 2) == 0) {
        /* findscu takes "-k KEY"; "-kKEY" is accepted too. */
        v = arg[2] ? arg + 2 : (*i + 1 < argc ? argv[++*i] : NULL);
        if (!v || !*v) {
            fprintf(stderr, "mwl %s: -k needs KEY or KEY=VALUE\n", cmd);
            return -1;
        }
        add_k_option(qa, v);
        return 1;
    }
    if ((v = tool_option_value(cmd, argc, argv, i, "--date", &missing))) {
        char lo[9], hi[9];
        if (missing)
            return -1;
        if (!tool_parse_date_option(v, lo, hi)) {
            fprintf(stderr,
                    "mwl %s: --date wants today, tomorrow, yesterday, YYYYMMDD, FROM-TO, FROM-, -TO "
                    "or all, not '%s'\n",
                    cmd, v);
            return -1;
        }
        qa->date_given = true;
        if (lo[0] && strcmp(lo, hi) == 0)
            snprintf(qa->date_value, sizeof qa->date_value, "%s", lo);
        else if (lo[0] || hi[0])
            snprintf(qa->date_value, sizeof qa->date_value, "%s-%s", lo, hi);
        else
            qa->date_value[0] = '\0'; /* all: universal matching */
        add_key(qa, TOOL_SPS "ScheduledProcedureStepStartDate",
                strlen(TOOL_SPS "ScheduledProcedureStepStartDate"), qa->date_value);
        return 1;
    }
    if ((v = tool_option_value(cmd, argc, argv, i, "--query", &missing))) {
        qa->query_file = v;
        return missing ? -1 : 1;
    }
    if ((v = tool_option_value(cmd, argc, argv, i, "--charset", &missing))) {
        qa->charset = v;
        return missing ? -1 : 1;
    }
    return 0;
}

/* ---- building the identifier --------------------------------------------- */

/* Sets the element a path names to `value` (UTF-8 from the command line,
 * NULL = empty) through dicom/keypath.h, values of VRs the character set
 * affects encoded into `cs`; on failure writes why into err. */
static int set_key(mwl_ds *root, const char *path, size_t path_len, const char *value, const mwl_charset *cs,
                   char *err, size_t errcap)
{
    mwl_diag diag;
    int rc = mwl_ds_set_path(root, path, path_len, value, cs, &diag);
    if (rc == MWL_E_CHARSET)
        snprintf(err, errcap, "'%.200s' cannot be written in the query's character set (%s); see --charset",
                 value ? value : "", diag.msg);
    else if (rc != MWL_OK)
        snprintf(err, errcap, "%s", diag.msg);
    return rc;
}

static bool has_non_ascii(const char *s)
{
    for (; s && *s; s++) {
        if ((unsigned char)*s >= 0x80)
            return true;
    }
    return false;
}

bool tool_query_build(const char *cmd, const tool_query_args *qa, const char *const *defaults,
                      size_t n_defaults, bool default_date, mwl_arena *arena, mwl_ds **out)
{
    mwl_diag diag;
    mwl_diag_clear(&diag);
    mwl_ds *ds = NULL;
    int rc;
    if (qa->query_file) {
        uint8_t *data = NULL;
        size_t len = 0;
        rc = mwl_file_read(qa->query_file, NULL, 0, &data, &len, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: %s\n", cmd, diag.msg[0] ? diag.msg : mwl_status_str(rc));
            return false;
        }
        mwl_part10 p10;
        rc = mwl_part10_decode(data, len, arena, NULL, &p10, &diag);
        mwl_mem_free(NULL, data);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: %s: %s at offset %zu\n", cmd, qa->query_file,
                    diag.msg[0] ? diag.msg : mwl_status_str(rc), diag.offset);
            return false;
        }
        ds = p10.dataset;
    } else if (mwl_ds_new(arena, NULL, &ds) != MWL_OK) {
        fprintf(stderr, "mwl %s: out of memory\n", cmd);
        return false;
    }

    /* The character set: asked for (the file's text is converted to it),
     * else the file's, else UTF-8 as soon as a value needs more than
     * ASCII (K.4.1.1.3: (0008,0005) only when needed). */
    mwl_charset cs;
    mwl_charset_init_default(&cs);
    if (qa->charset) {
        rc = mwl_charset_parse(qa->charset, strlen(qa->charset), &cs, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: --charset '%s': %s\n", cmd, qa->charset,
                    diag.msg[0] ? diag.msg : mwl_status_str(rc));
            return false;
        }
        rc = mwl_ds_recode(ds, &cs, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: the query cannot be written in '%s': %s\n", cmd, qa->charset,
                    diag.msg[0] ? diag.msg : mwl_status_str(rc));
            return false;
        }
    } else if (mwl_ds_find(ds, MWL_TAG_SpecificCharacterSet)) {
        rc = mwl_charset_of(ds, &cs, &diag);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: %s: %s\n", cmd, qa->query_file,
                    diag.msg[0] ? diag.msg : mwl_status_str(rc));
            return false;
        }
    } else {
        for (size_t i = 0; i < qa->key_count; i++) {
            if (has_non_ascii(qa->keys[i].value)) {
                rc = mwl_charset_parse("ISO_IR 192", 10, &cs, &diag);
                if (rc == MWL_OK)
                    rc = mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192");
                if (rc != MWL_OK) {
                    fprintf(stderr, "mwl %s: %s\n", cmd, mwl_status_str(rc));
                    return false;
                }
                break;
            }
        }
    }
    if (qa->charset) {
        /* Say it even when no text needs it: the server may answer in it. */
        char name[80];
        rc = mwl_charset_name(&cs, name, sizeof name);
        if (rc == MWL_OK)
            rc = name[0] ? mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, name) : MWL_OK;
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: %s\n", cmd, mwl_status_str(rc));
            return false;
        }
    }

    char err[400] = "";
    if (!qa->query_file) {
        for (size_t i = 0; i < n_defaults; i++) {
            rc = set_key(ds, defaults[i], strlen(defaults[i]), NULL, &cs, err, sizeof err);
            if (rc != MWL_OK) {
                fprintf(stderr, "mwl %s: default key %s: %s\n", cmd, defaults[i],
                        err[0] ? err : mwl_status_str(rc));
                return false;
            }
        }
        if (default_date && !qa->date_given) {
            char today[9];
            mwl_date d;
            mwl_date_today(&d);
            mwl_date_format(&d, today, sizeof today);
            rc = set_key(ds, TOOL_SPS "ScheduledProcedureStepStartDate",
                         strlen(TOOL_SPS "ScheduledProcedureStepStartDate"), today, &cs, err, sizeof err);
            if (rc != MWL_OK) {
                fprintf(stderr, "mwl %s: %s\n", cmd, mwl_status_str(rc));
                return false;
            }
        }
    }
    for (size_t i = 0; i < qa->key_count; i++) {
        const tool_key_arg *k = &qa->keys[i];
        err[0] = '\0';
        rc = set_key(ds, k->path, k->path_len, k->value, &cs, err, sizeof err);
        if (rc != MWL_OK) {
            fprintf(stderr, "mwl %s: key '%.*s': %s\n", cmd, (int)k->path_len, k->path,
                    err[0] ? err : mwl_status_str(rc));
            return false;
        }
    }
    *out = ds;
    return true;
}
