/* mwl dump FILE...: prints DICOM files (Part 10 or raw data sets) as an
 * indented tree in the layout of DCMTK's dcmdump, with text shown in UTF-8,
 * so the two can be compared line by line (tests/integration/dump_dcmtk).
 * The printer itself is the library's (dicom/format.h), shared with
 * `mwl find --dump`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/status.h"
#include "commands.h"
#include "dicom/codec.h"
#include "dicom/format.h"

static void usage(FILE *out)
{
    fputs("usage: mwl dump [options] FILE...\n"
          "\n"
          "Prints each DICOM file (Part 10, or a raw data set in Implicit or Explicit VR\n"
          "Little Endian) as an indented tree: tag, VR, value, then \"# length, VM keyword\".\n"
          "Text is shown in UTF-8 after applying the Specific Character Set; strings are in\n"
          "[brackets] without their trailing padding; binary numbers are shown in decimal,\n"
          "other binary values as hex. Lengths of sequences and items are those of an\n"
          "encoding with explicit lengths (the decoder does not keep how the file wrote them).\n"
          "\n"
          "options:\n"
          "  -h, --help          show this help\n"
          "  --meta              print the file meta information header (default)\n"
          "  --no-meta           do not print it\n"
          "  --max-value N       show at most N characters of each value (0 = all, default)\n"
          "\n"
          "exit status: 0 success; 1 a file could not be read or decoded, or held text not\n"
          "valid in its character set (shown as &#xNN; bytes); 2 usage error.\n",
          out);
}

/* Decodes and prints one file. Returns MWL_OK or the failing status, after
 * printing the one-line error. */
static int dump_file(const char *path, bool show_meta, size_t max_value, bool header)
{
    mwl_diag diag;
    mwl_diag_clear(&diag);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = mwl_file_read(path, NULL, 0, &data, &len, &diag);
    if (rc != MWL_OK) {
        /* mwl_file_read's message already names the file. */
        fprintf(stderr, "mwl dump: %s\n", diag.msg[0] ? diag.msg : mwl_status_str(rc));
        return rc;
    }
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_part10 p10;
    memset(&p10, 0, sizeof p10);
    rc = mwl_part10_decode(data, len, &arena, NULL, &p10, &diag);
    mwl_mem_free(NULL, data); /* the decoded data set holds copies */
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl dump: %s: %s at offset %zu", path, diag.msg[0] ? diag.msg : mwl_status_str(rc),
                diag.offset);
        if (diag.tag)
            fprintf(stderr, " (tag %04x,%04x)", (unsigned)MWL_TAG_GROUP(diag.tag),
                    (unsigned)MWL_TAG_ELEMENT(diag.tag));
        fputc('\n', stderr);
        mwl_arena_clear(&arena);
        return rc;
    }

    if (header)
        printf("\n# File: %s\n", path);
    mwl_format_options opt;
    mwl_format_options_init(&opt);
    opt.show_meta = show_meta;
    opt.max_value = max_value;
    mwl_format_report report;
    rc = mwl_part10_format_file(&p10, &opt, stdout, &report);
    if (rc != MWL_OK) {
        fprintf(stderr, "mwl dump: %s: %s\n", path, mwl_status_str(rc));
    } else if (report.charset_problems) {
        fprintf(stderr, "mwl dump: %s: %zu value(s) not convertible to UTF-8, first (%04x,%04x): %s\n", path,
                report.charset_problems, (unsigned)MWL_TAG_GROUP(report.charset_tag),
                (unsigned)MWL_TAG_ELEMENT(report.charset_tag), report.charset_msg);
        rc = MWL_E_CHARSET;
    }
    mwl_arena_clear(&arena);
    return rc;
}

static bool parse_size(const char *s, size_t *out)
{
    if (!s || !*s)
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || s[0] == '-' || v > SIZE_MAX)
        return false;
    *out = (size_t)v;
    return true;
}

int mwl_cmd_dump(int argc, char **argv)
{
    bool show_meta = true;
    size_t max_value = 0;
    int first = argc; /* index of the first file */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            first = i + 1;
            break;
        }
        if (a[0] != '-' || a[1] == '\0') {
            first = i;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return MWL_EXIT_OK;
        } else if (strcmp(a, "--meta") == 0) {
            show_meta = true;
        } else if (strcmp(a, "--no-meta") == 0) {
            show_meta = false;
        } else if (strcmp(a, "--max-value") == 0 || strncmp(a, "--max-value=", 12) == 0) {
            const char *v = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            if (!parse_size(v, &max_value)) {
                fprintf(stderr, "mwl dump: --max-value needs a number of characters\n");
                return MWL_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "mwl dump: unknown option '%s'\n", a);
            usage(stderr);
            return MWL_EXIT_USAGE;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return MWL_EXIT_USAGE;
    }
    int status = MWL_EXIT_OK;
    bool several = argc - first > 1;
    for (int i = first; i < argc; i++) {
        if (dump_file(argv[i], show_meta, max_value, several) != MWL_OK)
            status = MWL_EXIT_FAILURE;
        /* Keep stdout and stderr in order when both go to one terminal. */
        fflush(stdout);
    }
    return status;
}
