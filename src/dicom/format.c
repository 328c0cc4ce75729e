/* The data set tree printer (format.h): dcmdump's layout, text in UTF-8. */
#include "dicom/format.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/utf8.h"
#include "dicom/charset.h"
#include "dicom/dict.h"
#include "dicom/vr.h"

/* dcmdump puts the "#" comment after a 40-column value field; keeping its
 * layout lets people (and the comparison tests) read both the same way. */
#define VALUE_COLUMNS 40
#define INDENT_STEP 2
/* Writing to a FILE: lines are collected and written in blocks this big. */
#define FILE_BLOCK 4096

typedef struct printer {
    mwl_format_options opt;
    mwl_wbuf *out;             /* the lines */
    FILE *file;                /* NULL, or where `out` is flushed to */
    mwl_arena text;            /* UTF-8 copies of one element's value */
    mwl_arena lengths;         /* item lengths of the sequences being printed */
    mwl_wbuf line;             /* the value being rendered */
    mwl_wbuf scratch;          /* encodings used to measure sequence and item lengths */
    mwl_format_report *report; /* never NULL inside */
    int fatal;                 /* MWL_E_NOMEM, MWL_E_LIMIT or MWL_E_IO: stop */
} printer;

void mwl_format_options_init(mwl_format_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->show_meta = true;
}

/* ---- rendering into a buffer ------------------------------------------- */

/* Text for a terminal: control characters (a CR LF in a comment would break
 * the one-line-per-element layout) and bytes that are not UTF-8 are written
 * as "&#N;" / "&#xNN;", the markup dcmdump +Qn uses. */
static void put_text(mwl_wbuf *w, const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = mwl_utf8_decode(s + i, len - i, NULL);
        if (n == 0) {
            mwl_wbuf_printf(w, "&#x%02X;", s[i]);
            i++;
        } else if (n == 1 && (s[i] < 0x20 || s[i] == 0x7F)) {
            mwl_wbuf_printf(w, "&#%u;", s[i]);
            i++;
        } else {
            mwl_wbuf_put(w, s + i, n);
            i += n;
        }
    }
}

static void put_float(mwl_wbuf *w, float v)
{
    /* 9 significant digits identify every float. */
    mwl_wbuf_printf(w, "%.9g", (double)v);
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
        case MWL_VR_US: mwl_wbuf_printf(w, "%u", (unsigned)mwl_load_u16le(p)); break;
        case MWL_VR_SS: mwl_wbuf_printf(w, "%d", (int)(int16_t)mwl_load_u16le(p)); break;
        case MWL_VR_OW: mwl_wbuf_printf(w, "%04x", (unsigned)mwl_load_u16le(p)); break;
        case MWL_VR_UL:
        case MWL_VR_OL: mwl_wbuf_printf(w, "%" PRIu32, mwl_load_u32le(p)); break;
        case MWL_VR_SL: mwl_wbuf_printf(w, "%" PRId32, (int32_t)mwl_load_u32le(p)); break;
        case MWL_VR_AT:
            mwl_wbuf_printf(w, "(%04x,%04x)", (unsigned)mwl_load_u16le(p), (unsigned)mwl_load_u16le(p + 2));
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
            mwl_wbuf_put_double(w, v);
            break;
        }
        case MWL_VR_SV: mwl_wbuf_printf(w, "%" PRId64, (int64_t)mwl_load_u64le(p)); break;
        case MWL_VR_UV:
        case MWL_VR_OV: mwl_wbuf_printf(w, "%" PRIu64, mwl_load_u64le(p)); break;
        default: mwl_wbuf_printf(w, "%02x", (unsigned)p[0]); break;
        }
    }
    /* A length that is not a multiple of the value size is malformed but
     * tolerated by the decoder: show the leftover bytes rather than hide them. */
    for (size_t i = count * size; i < e->length; i++)
        mwl_wbuf_printf(w, "%s%02x", i ? "\\" : "", (unsigned)e->value[i]);
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

/* Renders the value of a non-sequence element into p->line and returns its VM. */
static size_t render_value(printer *p, const mwl_ds *ds, const mwl_elem *e)
{
    mwl_wbuf *w = &p->line;
    if (e->length == 0) {
        mwl_wbuf_put_str(w, "(no value available)");
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
    int rc = mwl_ds_get_utf8_all(ds, e, &p->text, &text, &len, &diag);
    if (rc == MWL_E_NOMEM) {
        p->fatal = rc;
        return 0;
    }
    if (rc != MWL_OK) {
        /* Show the raw bytes (non-ASCII as &#xNN;) and report the first. */
        mwl_format_report *r = p->report;
        if (r->charset_problems++ == 0) {
            r->charset_tag = e->tag;
            snprintf(r->charset_msg, sizeof r->charset_msg, "%s",
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
                mwl_wbuf_printf(w, "&#x%02X;", c);
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

/* Writes what has been collected to the FILE, if there is one and enough
 * has piled up (or `all`). */
static void flush(printer *p, bool all)
{
    if (!p->file || p->fatal || p->out->len == 0 || (!all && p->out->len < FILE_BLOCK))
        return;
    if (fwrite(p->out->data, 1, p->out->len, p->file) != p->out->len)
        p->fatal = MWL_E_IO;
    p->out->len = 0;
}

/* One line: indent, "(gggg,eeee) VR ", the value in p->line padded to the
 * value column, then "# length, VM keyword". `length` NULL prints "?". */
static void print_line(printer *p, size_t depth, uint32_t tag, const char *vr, const char *length, size_t vm,
                       const char *keyword)
{
    mwl_wbuf *o = p->out;
    const uint8_t *v = p->line.data ? p->line.data : (const uint8_t *)"";
    size_t len = p->line.len;
    bool cut = false;
    if (p->opt.max_value && char_count(v, len) > p->opt.max_value) {
        len = char_prefix(v, len, p->opt.max_value);
        cut = true;
    }
    mwl_wbuf_fill(o, ' ', depth * INDENT_STEP);
    mwl_wbuf_printf(o, "(%04x,%04x) %s ", (unsigned)MWL_TAG_GROUP(tag), (unsigned)MWL_TAG_ELEMENT(tag), vr);
    mwl_wbuf_put(o, v, len);
    if (cut)
        mwl_wbuf_put_str(o, "...");
    size_t shown = char_count(v, len) + (cut ? 3 : 0);
    if (shown < VALUE_COLUMNS)
        mwl_wbuf_fill(o, ' ', VALUE_COLUMNS - shown);
    mwl_wbuf_printf(o, " #%4s, %zu", length ? length : "?", vm);
    if (keyword[0]) {
        mwl_wbuf_put_u8(o, ' ');
        mwl_wbuf_put_str(o, keyword);
    }
    mwl_wbuf_put_u8(o, '\n');
    p->line.len = 0;
    if (o->status != MWL_OK || p->line.status != MWL_OK)
        p->fatal = o->status != MWL_OK ? o->status : p->line.status;
    flush(p, false);
}

/* Length of `item` encoded in `ts` (codec.h: always explicit lengths), via
 * the codec itself so the figure is what mwl writes. */
static bool item_length(printer *p, const mwl_ds *item, mwl_ts ts, size_t *out)
{
    /* Deflate compresses the whole data set, not each item: inside it the
     * lengths are those of Explicit VR Little Endian. */
    if (ts == MWL_TS_DEFLATED_LE)
        ts = MWL_TS_EXPLICIT_LE;
    p->scratch.len = 0;
    p->scratch.status = MWL_OK;
    int rc = mwl_ds_encode(item, ts, &p->scratch);
    if (rc == MWL_OK)
        rc = p->scratch.status;
    if (rc == MWL_E_NOMEM)
        p->fatal = rc;
    *out = p->scratch.len;
    return rc == MWL_OK;
}

static void print_ds(printer *p, const mwl_ds *ds, mwl_ts ts, size_t depth);

static void print_sequence(printer *p, const mwl_elem *e, mwl_ts ts, size_t depth)
{
    /* Each item's length first: the sequence's is their sum plus headers. */
    size_t total = 0;
    bool known = true;
    size_t *lengths = e->item_count ? mwl_arena_alloc(&p->lengths, e->item_count * sizeof *lengths) : NULL;
    if (e->item_count && !lengths) {
        p->fatal = MWL_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < e->item_count; i++) {
        if (!item_length(p, e->items[i], ts, &lengths[i])) {
            known = false;
            lengths[i] = SIZE_MAX;
        } else {
            total += 8 + lengths[i]; /* (FFFE,E000) tag + 32-bit length */
        }
    }
    char num[24];
    snprintf(num, sizeof num, "%zu", total);
    mwl_wbuf_printf(&p->line, "(Sequence with explicit length #=%zu)", e->item_count);
    print_line(p, depth, e->tag, "SQ", known ? num : NULL, 1, mwl_dict_keyword(e->tag));
    for (size_t i = 0; i < e->item_count && !p->fatal; i++) {
        const mwl_ds *item = e->items[i];
        mwl_wbuf_printf(&p->line, "(Item with explicit length #=%zu)", mwl_ds_count(item));
        snprintf(num, sizeof num, "%zu", lengths[i]);
        print_line(p, depth + 1, MWL_TAG_ITEM, "na", lengths[i] != SIZE_MAX ? num : NULL, 1, "Item");
        print_ds(p, item, ts, depth + 2);
        mwl_wbuf_put_str(&p->line, "(ItemDelimitationItem)");
        print_line(p, depth + 1, MWL_TAG_ITEM_DELIM, "na", "0", 0, "ItemDelimitationItem");
    }
    mwl_wbuf_put_str(&p->line, "(SequenceDelimitationItem)");
    print_line(p, depth, MWL_TAG_SEQ_DELIM, "na", "0", 0, "SequenceDelimitationItem");
}

static void print_ds(printer *p, const mwl_ds *ds, mwl_ts ts, size_t depth)
{
    size_t count = mwl_ds_count(ds);
    for (size_t i = 0; i < count && !p->fatal; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (e->vr == MWL_VR_SQ) {
            print_sequence(p, e, ts, depth);
            continue;
        }
        size_t vm = render_value(p, ds, e);
        /* The UTF-8 copy is in p->line now; its arena copy can go. */
        mwl_arena_clear(&p->text);
        char num[24];
        snprintf(num, sizeof num, "%" PRIu32, e->length);
        const char *code = mwl_vr_code(e->vr);
        print_line(p, depth, e->tag, code[0] ? code : "??", num, vm, mwl_dict_keyword(e->tag));
    }
}

static const char *ts_name(mwl_ts ts)
{
    const mwl_uid_entry *u = mwl_uid_find(mwl_ts_uid(ts));
    return u ? u->name : mwl_ts_uid(ts);
}

/* ---- entry points ------------------------------------------------------ */

static void printer_init(printer *p, const mwl_format_options *opt, mwl_wbuf *out, FILE *file,
                         mwl_format_report *report, mwl_format_report *local)
{
    memset(p, 0, sizeof *p);
    if (opt)
        p->opt = *opt;
    else
        mwl_format_options_init(&p->opt);
    p->out = out;
    p->file = file;
    const mwl_mem *mem = out->mem;
    mwl_arena_init(&p->text, mem);
    mwl_arena_init(&p->lengths, mem);
    mwl_wbuf_init(&p->line, mem);
    mwl_wbuf_init(&p->scratch, mem);
    p->report = report ? report : local;
    memset(p->report, 0, sizeof *p->report);
}

static int printer_finish(printer *p)
{
    flush(p, true);
    if (!p->fatal && p->out->status != MWL_OK)
        p->fatal = p->out->status;
    mwl_arena_clear(&p->text);
    mwl_arena_clear(&p->lengths);
    mwl_wbuf_clear(&p->line);
    mwl_wbuf_clear(&p->scratch);
    return p->fatal ? p->fatal : MWL_OK;
}

static int format_ds(const mwl_ds *ds, mwl_ts ts, size_t depth, const mwl_format_options *opt, mwl_wbuf *out,
                     FILE *file, mwl_format_report *report)
{
    if (!ds || !out)
        return MWL_E_INVALID;
    printer p;
    mwl_format_report local;
    printer_init(&p, opt, out, file, report, &local);
    print_ds(&p, ds, ts, depth);
    return printer_finish(&p);
}

int mwl_ds_format(const mwl_ds *ds, mwl_ts ts, size_t depth, const mwl_format_options *opt, mwl_wbuf *out,
                  mwl_format_report *report)
{
    return format_ds(ds, ts, depth, opt, out, NULL, report);
}

int mwl_ds_format_file(const mwl_ds *ds, mwl_ts ts, size_t depth, const mwl_format_options *opt, FILE *f,
                       mwl_format_report *report)
{
    if (!f)
        return MWL_E_INVALID;
    mwl_wbuf buf;
    mwl_wbuf_init(&buf, NULL);
    int rc = format_ds(ds, ts, depth, opt, &buf, f, report);
    mwl_wbuf_clear(&buf);
    return rc;
}

static int format_part10(const mwl_part10 *file, const mwl_format_options *opt, mwl_wbuf *out, FILE *f,
                         mwl_format_report *report)
{
    if (!file || !file->dataset || !out)
        return MWL_E_INVALID;
    printer p;
    mwl_format_report local;
    printer_init(&p, opt, out, f, report, &local);
    if (file->meta) {
        mwl_wbuf_put_str(out, "\n# Dicom-File-Format\n");
        if (p.opt.show_meta) {
            /* PS3.10 §7.1: the meta header is always Explicit VR Little Endian. */
            mwl_wbuf_printf(out, "\n# Dicom-Meta-Information-Header\n# Used TransferSyntax: %s\n",
                            ts_name(MWL_TS_EXPLICIT_LE));
            print_ds(&p, file->meta, MWL_TS_EXPLICIT_LE, 0);
        }
    }
    if (!p.fatal) {
        mwl_wbuf_printf(out, "\n# Dicom-Data-Set%s\n# Used TransferSyntax: ",
                        file->meta ? "" : " (no file meta information)");
        mwl_wbuf_put_str(out, ts_name(file->ts));
        mwl_wbuf_put_u8(out, '\n');
        print_ds(&p, file->dataset, file->ts, 0);
    }
    return printer_finish(&p);
}

int mwl_part10_format(const mwl_part10 *file, const mwl_format_options *opt, mwl_wbuf *out,
                      mwl_format_report *report)
{
    return format_part10(file, opt, out, NULL, report);
}

int mwl_part10_format_file(const mwl_part10 *file, const mwl_format_options *opt, FILE *f,
                           mwl_format_report *report)
{
    if (!f)
        return MWL_E_INVALID;
    mwl_wbuf buf;
    mwl_wbuf_init(&buf, NULL);
    int rc = format_part10(file, opt, &buf, f, report);
    mwl_wbuf_clear(&buf);
    return rc;
}
