/* mwl dump FILE...: prints DICOM files (Part 10 or raw data sets) as an
 * indented tree in the layout of DCMTK's dcmdump, with text shown in UTF-8,
 * so the two can be compared line by line (tests/integration/dump_dcmtk). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/status.h"
#include "commands.h"
#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/dataset.h"
#include "dicom/dict.h"
#include "dicom/vr.h"

/* dcmdump puts the "#" comment after a 40-column value field; keeping its
 * layout lets people (and the comparison test) read both the same way. */
#define VALUE_COLUMNS 40
#define INDENT_STEP 2

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

typedef struct dumper {
    size_t max_value; /* characters; 0 = unlimited */
    mwl_arena *arena; /* UTF-8 copies of values, freed with the file */
    mwl_wbuf line;    /* the value being rendered */
    mwl_wbuf scratch; /* encodings used to measure sequence and item lengths */
    /* Values that could not be converted to UTF-8: counted, first one kept,
     * and reported in one line per file. */
    size_t charset_problems;
    uint32_t charset_tag;
    char charset_msg[128];
    int fatal; /* MWL_E_NOMEM while printing */
} dumper;

/* ---- rendering a value into d->line ------------------------------------ */

static void put_str(mwl_wbuf *w, const char *s)
{
    mwl_wbuf_put(w, s, strlen(s));
}

static void put_fmt(mwl_wbuf *w, const char *fmt, ...) MWL_PRINTF(2, 3);
static void put_fmt(mwl_wbuf *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        mwl_wbuf_put(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the UTF-8 sequence starting at s (at most `left` bytes), or 0
 * when it is not well formed (overlong forms and surrogates included). */
static size_t utf8_len(const uint8_t *s, size_t left)
{
    uint8_t c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/* Text for a terminal: control characters (a CR LF in a comment would break
 * the one-line-per-element layout) and bytes that are not UTF-8 are written
 * as "&#N;" / "&#xNN;", the markup dcmdump +Qn uses. */
static void put_text(mwl_wbuf *w, const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_len(s + i, len - i);
        if (n == 0) {
            put_fmt(w, "&#x%02X;", s[i]);
            i++;
        } else if (n == 1 && (s[i] < 0x20 || s[i] == 0x7F)) {
            put_fmt(w, "&#%u;", s[i]);
            i++;
        } else {
            mwl_wbuf_put(w, s + i, n);
            i += n;
        }
    }
}

/* Shortest "%.*g" that reads back as the same double. */
static void put_double(mwl_wbuf *w, double v)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    put_str(w, tmp);
}

static void put_float(mwl_wbuf *w, float v)
{
    /* 9 significant digits identify every float. */
    put_fmt(w, "%.9g", (double)v);
}

/* Binary values as dcmdump writes them: numbers (OL, OV, OF, OD included)
 * in decimal, OB/UN bytes and OW words in hex, '\' between values.
 * Stored values are little-endian (dataset.h). */
static void render_binary(mwl_wbuf *w, const mwl_elem *e)
{
    const uint8_t *p = e->value;
    size_t size;
    switch (e->vr) {
    case MWL_VR_US:
    case MWL_VR_SS:
    case MWL_VR_OW: size = 2; break;
    case MWL_VR_UL:
    case MWL_VR_SL:
    case MWL_VR_FL:
    case MWL_VR_AT:
    case MWL_VR_OL:
    case MWL_VR_OF: size = 4; break;
    case MWL_VR_FD:
    case MWL_VR_SV:
    case MWL_VR_UV:
    case MWL_VR_OD:
    case MWL_VR_OV: size = 8; break;
    default: size = 1; break;
    }
    size_t count = e->length / size;
    for (size_t i = 0; i < count; i++, p += size) {
        if (i)
            mwl_wbuf_put_u8(w, '\\');
        switch (e->vr) {
        case MWL_VR_US: put_fmt(w, "%u", (unsigned)mwl_load_u16le(p)); break;
        case MWL_VR_SS: put_fmt(w, "%d", (int)(int16_t)mwl_load_u16le(p)); break;
        case MWL_VR_OW: put_fmt(w, "%04x", (unsigned)mwl_load_u16le(p)); break;
        case MWL_VR_UL:
        case MWL_VR_OL: put_fmt(w, "%" PRIu32, mwl_load_u32le(p)); break;
        case MWL_VR_SL: put_fmt(w, "%" PRId32, (int32_t)mwl_load_u32le(p)); break;

        case MWL_VR_AT:
            put_fmt(w, "(%04x,%04x)", (unsigned)mwl_load_u16le(p), (unsigned)mwl_load_u16le(p + 2));
            break;
        case MWL_VR_FL:
        case MWL_VR_OF: {
            uint32_t bits = mwl_load_u32le(p);
            float f;
            memcpy(&f, &bits, sizeof f);
            put_float(w, f);
            break;
        }
        case MWL_VR_FD:
        case MWL_VR_OD: {
            uint64_t bits = mwl_load_u64le(p);
            double v;
            memcpy(&v, &bits, sizeof v);
            put_double(w, v);
            break;
        }
        case MWL_VR_SV: put_fmt(w, "%" PRId64, (int64_t)mwl_load_u64le(p)); break;
        case MWL_VR_UV:
        case MWL_VR_OV: put_fmt(w, "%" PRIu64, mwl_load_u64le(p)); break;
        default: put_fmt(w, "%02x", (unsigned)p[0]); break;
        }
    }
    /* A length that is not a multiple of the value size is malformed but
     * tolerated by the decoder: show the leftover bytes rather than hide them. */
    for (size_t i = count * size; i < e->length; i++)
        put_fmt(w, "%s%02x", i ? "\\" : "", (unsigned)e->value[i]);
}

/* Counts values in UTF-8 text: after conversion a '\' byte is always the
 * delimiter (in ISO 2022 JIS text the raw 0x5C byte may be half a kanji). */
static size_t text_vm(mwl_vr vr, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (mwl_vr_get_info(vr)->kind == MWL_VR_KIND_TEXT)
        return 1;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\\';
    return n;
}

/* Renders the value of a non-sequence element into d->line and returns its VM. */
static size_t render_value(dumper *d, const mwl_ds *ds, const mwl_elem *e)
{
    mwl_wbuf *w = &d->line;
    if (e->length == 0) {
        put_str(w, "(no value available)");
        return 0;
    }
    if (!mwl_vr_is_string(e->vr)) {
        render_binary(w, e);
        const mwl_vr_info *info = mwl_vr_get_info(e->vr);
        return info->kind == MWL_VR_KIND_NUMBER ? e->length / info->max_len : 1;
    }
    const char *text = NULL;
    size_t len = 0;
    mwl_diag diag;
    mwl_diag_clear(&diag);
    int rc = mwl_ds_get_utf8_all(ds, e, d->arena, &text, &len, &diag);
    if (rc == MWL_E_NOMEM) {
        d->fatal = rc;
        return 0;
    }
    if (rc != MWL_OK) {
        /* Show the raw bytes (non-ASCII as &#xNN;) and report once per file. */
        if (d->charset_problems++ == 0) {
            d->charset_tag = e->tag;
            snprintf(d->charset_msg, sizeof d->charset_msg, "%s",
                     diag.msg[0] ? diag.msg : mwl_status_str(rc));
        }
        text = (const char *)e->value;
        len = e->length;
        while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\0'))
            len--;
        mwl_wbuf_put_u8(w, '[');
        for (size_t i = 0; i < len; i++) {
            uint8_t c = e->value[i];
            if (c >= 0x20 && c < 0x7F)
                mwl_wbuf_put_u8(w, c);
            else
                put_fmt(w, "&#x%02X;", c);
        }
        mwl_wbuf_put_u8(w, ']');
        return text_vm(e->vr, text, len);
    }
    /* Trailing padding is not part of the value (PS3.5 §6.2): spaces, and
     * the NUL that pads UI. Leading spaces stay: they are significant in the
     * text VRs and worth seeing in the others. */
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\0'))
        len--;
    mwl_wbuf_put_u8(w, '[');
    put_text(w, (const uint8_t *)text, len);
    mwl_wbuf_put_u8(w, ']');
    return text_vm(e->vr, text, len);
}

/* ---- lines ------------------------------------------------------------- */

/* Number of characters (UTF-8 code points) in s[0..len). */
static size_t char_count(const uint8_t *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (s[i] & 0xC0) != 0x80;
    return n;
}

/* Byte length of the first `chars` characters of s. */
static size_t char_prefix(const uint8_t *s, size_t len, size_t chars)
{
    size_t i = 0;
    while (i < len && chars > 0) {
        i++;
        while (i < len && (s[i] & 0xC0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

/* One line: indent, "(gggg,eeee) VR ", the value in d->line padded to the
 * value column, then "# length, VM keyword". `length` NULL prints "?". */
static void print_line(dumper *d, size_t depth, uint32_t tag, const char *vr, const char *length, size_t vm,
                       const char *keyword)
{
    const uint8_t *v = d->line.data ? d->line.data : (const uint8_t *)"";
    size_t len = d->line.len;
    bool cut = false;
    if (d->max_value && char_count(v, len) > d->max_value) {
        len = char_prefix(v, len, d->max_value);
        cut = true;
    }
    printf("%*s(%04x,%04x) %s %.*s%s", (int)(depth * INDENT_STEP), "", (unsigned)MWL_TAG_GROUP(tag),
           (unsigned)MWL_TAG_ELEMENT(tag), vr, (int)len, (const char *)v, cut ? "..." : "");
    size_t shown = char_count(v, len) + (cut ? 3 : 0);
    printf("%*s #%4s, %zu%s%s\n", shown < VALUE_COLUMNS ? (int)(VALUE_COLUMNS - shown) : 0, "",
           length ? length : "?", vm, keyword[0] ? " " : "", keyword);
    d->line.len = 0;
}

/* Length of `item` encoded in `ts` (codec.h: always explicit lengths), via
 * the codec itself so the figure is what mwl writes. */
static bool item_length(dumper *d, const mwl_ds *item, mwl_ts ts, size_t *out)
{
    /* Deflate compresses the whole data set, not each item: inside it the
     * lengths are those of Explicit VR Little Endian. */
    if (ts == MWL_TS_DEFLATED_LE)
        ts = MWL_TS_EXPLICIT_LE;
    d->scratch.len = 0;
    d->scratch.status = MWL_OK;
    int rc = mwl_ds_encode(item, ts, &d->scratch);
    if (rc == MWL_OK)
        rc = d->scratch.status;
    if (rc == MWL_E_NOMEM)
        d->fatal = rc;
    *out = d->scratch.len;
    return rc == MWL_OK;
}

static void print_ds(dumper *d, const mwl_ds *ds, mwl_ts ts, size_t depth);

static void print_sequence(dumper *d, const mwl_elem *e, mwl_ts ts, size_t depth)
{
    /* Each item's length first: the sequence's is their sum plus headers. */
    size_t total = 0;
    bool known = true;
    size_t *lengths = e->item_count ? mwl_arena_alloc(d->arena, e->item_count * sizeof *lengths) : NULL;
    if (e->item_count && !lengths) {
        d->fatal = MWL_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < e->item_count; i++) {
        if (!item_length(d, e->items[i], ts, &lengths[i])) {
            known = false;
            lengths[i] = SIZE_MAX;
        } else {
            total += 8 + lengths[i]; /* (FFFE,E000) tag + 32-bit length */
        }
    }
    char num[24];
    snprintf(num, sizeof num, "%zu", total);
    put_fmt(&d->line, "(Sequence with explicit length #=%zu)", e->item_count);
    print_line(d, depth, e->tag, "SQ", known ? num : NULL, 1, mwl_dict_keyword(e->tag));
    for (size_t i = 0; i < e->item_count && !d->fatal; i++) {
        const mwl_ds *item = e->items[i];
        put_fmt(&d->line, "(Item with explicit length #=%zu)", mwl_ds_count(item));
        snprintf(num, sizeof num, "%zu", lengths[i]);
        print_line(d, depth + 1, MWL_TAG_ITEM, "na", lengths[i] != SIZE_MAX ? num : NULL, 1, "Item");
        print_ds(d, item, ts, depth + 2);
        put_str(&d->line, "(ItemDelimitationItem)");
        print_line(d, depth + 1, MWL_TAG_ITEM_DELIM, "na", "0", 0, "ItemDelimitationItem");
    }
    put_str(&d->line, "(SequenceDelimitationItem)");
    print_line(d, depth, MWL_TAG_SEQ_DELIM, "na", "0", 0, "SequenceDelimitationItem");
}

static void print_ds(dumper *d, const mwl_ds *ds, mwl_ts ts, size_t depth)
{
    size_t count = mwl_ds_count(ds);
    for (size_t i = 0; i < count && !d->fatal; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        const char *keyword = mwl_dict_keyword(e->tag);
        if (e->vr == MWL_VR_SQ) {
            print_sequence(d, e, ts, depth);
            continue;
        }
        size_t vm = render_value(d, ds, e);
        char num[24];
        snprintf(num, sizeof num, "%" PRIu32, e->length);
        const char *code = mwl_vr_code(e->vr);
        print_line(d, depth, e->tag, code[0] ? code : "??", num, vm, keyword);
    }
}

static const char *ts_name(mwl_ts ts)
{
    const mwl_uid_entry *u = mwl_uid_find(mwl_ts_uid(ts));
    return u ? u->name : mwl_ts_uid(ts);
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

    dumper d;
    memset(&d, 0, sizeof d);
    d.max_value = max_value;
    d.arena = &arena;
    mwl_wbuf_init(&d.line, NULL);
    mwl_wbuf_init(&d.scratch, NULL);

    if (header)
        printf("\n# File: %s\n", path);
    if (p10.meta) {
        printf("\n# Dicom-File-Format\n");
        if (show_meta) {
            printf("\n# Dicom-Meta-Information-Header\n# Used TransferSyntax: %s\n",
                   ts_name(MWL_TS_EXPLICIT_LE));
            print_ds(&d, p10.meta, MWL_TS_EXPLICIT_LE, 0);
        }
    }
    if (!d.fatal) {
        printf("\n# Dicom-Data-Set%s\n# Used TransferSyntax: %s\n",
               p10.meta ? "" : " (no file meta information)", ts_name(p10.ts));
        print_ds(&d, p10.dataset, p10.ts, 0);
    }
    if (d.line.status != MWL_OK || d.scratch.status == MWL_E_NOMEM)
        d.fatal = MWL_E_NOMEM;

    rc = MWL_OK;
    if (d.fatal) {
        fprintf(stderr, "mwl dump: %s: %s\n", path, mwl_status_str(d.fatal));
        rc = d.fatal;
    } else if (d.charset_problems) {
        fprintf(stderr, "mwl dump: %s: %zu value(s) not convertible to UTF-8, first (%04x,%04x): %s\n", path,
                d.charset_problems, (unsigned)MWL_TAG_GROUP(d.charset_tag),
                (unsigned)MWL_TAG_ELEMENT(d.charset_tag), d.charset_msg);
        rc = MWL_E_CHARSET;
    }
    mwl_wbuf_clear(&d.line);
    mwl_wbuf_clear(&d.scratch);
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
