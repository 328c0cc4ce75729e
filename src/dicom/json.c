/* The DICOM JSON Model encoder (json.h, PS3.18 Annex F.2). */
#include "dicom/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/base64.h"
#include "base/utf8.h"
#include "dicom/charset.h"
#include "dicom/vr.h"

#define MAX_INDENT 8u
/* 2^53: the largest magnitude up to which every integer is a double, so
 * that JSON readers (JavaScript, jq) keep it exact. */
#define EXACT_INT_MAX INT64_C(9007199254740992)

typedef struct encoder {
    mwl_json_options opt;
    mwl_wbuf *out;
    mwl_arena text; /* UTF-8 copies of one element's value */
    mwl_json_report *report;
} encoder;

void mwl_json_options_init(mwl_json_options *opt)
{
    memset(opt, 0, sizeof *opt);
}

/* ---- output helpers ------------------------------------------------------ */

/* Appends without a call when the buffer has room (the common case: a
 * REST answer is thousands of small appends); mwl_wbuf_put otherwise,
 * which grows it or records the failure. Same effect either way. */
static inline void wput(mwl_wbuf *w, const void *p, size_t n)
{
    if (w->status == MWL_OK && w->data && w->cap - w->len >= n && (!w->limit || w->len + n <= w->limit)) {
        /* Most pieces are a few bytes: a loop beats a call to memcpy. */
        if (n <= 16) {
            const uint8_t *src = p;
            uint8_t *dst = w->data + w->len;
            for (size_t i = 0; i < n; i++)
                dst[i] = src[i];
        } else {
            memcpy(w->data + w->len, p, n);
        }
        w->len += n;
    } else {
        mwl_wbuf_put(w, p, n);
    }
}

static inline void wput_u8(mwl_wbuf *w, uint8_t c)
{
    if (w->status == MWL_OK && w->data && w->cap > w->len && (!w->limit || w->len < w->limit))
        w->data[w->len++] = c;
    else
        mwl_wbuf_put_u8(w, c);
}

static void put_str(mwl_wbuf *w, const char *s)
{
    wput(w, s, strlen(s));
}

/* A line break and the indentation for `depth`, when pretty-printing. */
static void newline(encoder *en, size_t depth)
{
    if (!en->opt.indent)
        return;
    wput_u8(en->out, '\n');
    mwl_wbuf_fill(en->out, ' ', depth * en->opt.indent);
}

static void problem(encoder *en, size_t *counter, uint32_t tag, const char *msg)
{
    (*counter)++;
    if (en->report->charset_problems + en->report->number_problems == 1) {
        en->report->first_tag = tag;
        snprintf(en->report->msg, sizeof en->report->msg, "%s", msg);
    }
}

size_t mwl_json_put_string(mwl_wbuf *out, const char *utf8, size_t len)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const uint8_t *s = (const uint8_t *)utf8;
    size_t replaced = 0;
    wput_u8(out, '"');
    size_t i = 0;
    while (i < len) {
        /* A run of printable ASCII that needs no escape goes out in one
         * copy: names, IDs and codes are mostly that. */
        size_t run = i;
        while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            wput(out, s + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = s[i];
        size_t n = mwl_utf8_decode(s + i, len - i, NULL);
        if (n == 0) {
            wput(out, replacement, 3);
            replaced++;
            i++;
            continue;
        }
        if (n == 1) {
            switch (c) {
            case '"': put_str(out, "\\\""); break;
            case '\\': put_str(out, "\\\\"); break;
            case '\n': put_str(out, "\\n"); break;
            case '\r': put_str(out, "\\r"); break;
            case '\t': put_str(out, "\\t"); break;
            case '\b': put_str(out, "\\b"); break;
            case '\f': put_str(out, "\\f"); break;
            default:
                if (c < 0x20)
                    mwl_wbuf_printf(out, "\\u%04x", (unsigned)c);
                else
                    wput_u8(out, c);
            }
        } else {
            wput(out, s + i, n);
        }
        i += n;
    }
    wput_u8(out, '"');
    return replaced;
}

/* A JSON string from text whose character set could not be applied: ASCII
 * as it is, every other byte as U+FFFD. */
static void put_raw_string(mwl_wbuf *out, const char *s, size_t len)
{
    wput_u8(out, '"');
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x80) {
            wput(out, "\xEF\xBF\xBD", 3);
        } else if (c == '"' || c == '\\') {
            wput_u8(out, '\\');
            wput_u8(out, c);
        } else if (c < 0x20) {
            mwl_wbuf_printf(out, "\\u%04x", (unsigned)c);
        } else {
            wput_u8(out, c);
        }
    }
    wput_u8(out, '"');
}

static void put_base64(mwl_wbuf *out, const uint8_t *p, size_t len)
{
    wput_u8(out, '"');
    mwl_base64_encode(out, p, len);
    wput_u8(out, '"');
}

/* ---- numbers in text (IS, DS) -------------------------------------------- */

/* True when s[0..len) is a JSON number literal (RFC 8259 §6), so that it can
 * be written as it is, keeping every digit the sender gave. */
static bool is_json_number(const char *s, size_t len, bool integer_only)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (integer_only)
        return i == len;
    if (i < len && s[i] == '.') {
        i++;
        size_t digits = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t digits = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == digits)
            return false;
    }
    return i == len;
}

/* One IS or DS value (already trimmed) as a JSON number: as written when it
 * is a JSON literal, else normalized ("+7", "007", ".5", "1." are valid
 * DICOM but not JSON), else as a string. */
static void put_decimal_text(encoder *en, uint32_t tag, mwl_vr vr, const char *s, size_t len)
{
    bool integer = vr == MWL_VR_IS;
    if (is_json_number(s, len, integer)) {
        wput(en->out, s, len);
        return;
    }
    char tmp[64];
    if (len > 0 && len < sizeof tmp) {
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *end = NULL;
        errno = 0;
        if (integer) {
            long long v = strtoll(tmp, &end, 10);
            if (errno == 0 && end == tmp + len) {
                mwl_wbuf_printf(en->out, "%lld", v);
                return;
            }
        } else {
            double v = strtod(tmp, &end);
            /* strtod also takes hex floats, "inf" and "nan": DS does not. */
            bool plain = strspn(tmp, "+-.0123456789eE") == len;
            if (errno == 0 && end == tmp + len && plain && isfinite(v)) {
                mwl_wbuf_put_double(en->out, v);
                return;
            }
        }
    }
    problem(en, &en->report->number_problems, tag,
            integer ? "IS value is not an integer" : "DS value is not a number");
    mwl_json_put_string(en->out, s, len);
}

/* ---- string values ------------------------------------------------------- */

/* One PN value: its component groups (PS3.5 §6.2.1) as named members;
 * empty groups are left out (F.2.2). */
static void put_person_name(encoder *en, const char *s, size_t len)
{
    static const char *const names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    wput_u8(en->out, '{');
    size_t group = 0, start = 0;
    bool first = true;
    for (size_t i = 0; i <= len && group < 3; i++) {
        if (i < len && s[i] != '=')
            continue;
        if (i > start) {
            if (!first)
                wput_u8(en->out, ',');
            first = false;
            mwl_wbuf_printf(en->out, "\"%s\":", names[group]);
            mwl_json_put_string(en->out, s + start, i - start);
        }
        group++;
        start = i + 1;
    }
    wput_u8(en->out, '}');
}

/* The "Value" array of a string element (the caller wrote `"Value":`). */
static void put_string_values(encoder *en, const mwl_ds *ds, const mwl_elem *e)
{
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    const char *text = NULL;
    size_t len = 0;
    mwl_diag diag;
    diag.msg[0] = 0; /* cleared in full only on the slow path below */
    bool raw = false;
    /* Plain ASCII (no byte >= 0x80, no ESC) reads the same in every
     * character set DICOM allows, so it needs no decoding and no copy:
     * IDs, dates, UIDs, codes and most names skip the character set
     * lookup and the allocations. */
    bool ascii = mwl_text_is_ascii(e->value, e->length);
    int rc = MWL_OK;
    if (ascii) {
        text = (const char *)e->value;
        len = e->length;
    } else {
        mwl_diag_clear(&diag);
        rc = mwl_ds_get_utf8_all(ds, e, &en->text, &text, &len, &diag);
    }
    if (rc == MWL_E_NOMEM) {
        en->out->status = MWL_E_NOMEM;
        return;
    }
    if (rc != MWL_OK) {
        /* Keep the value visible (ASCII part) rather than lose the element. */
        problem(en, &en->report->charset_problems, e->tag, diag.msg[0] ? diag.msg : mwl_status_str(rc));
        text = (const char *)e->value;
        len = e->length;
        raw = true;
    }
    bool multi = info->kind == MWL_VR_KIND_STRING;
    wput_u8(en->out, '[');
    size_t start = 0;
    bool first = true;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !(multi && text[i] == '\\'))
            continue;
        const char *v = text + start;
        size_t n = i - start;
        mwl_str_trim(e->vr, &v, &n);
        if (!first)
            wput_u8(en->out, ',');
        first = false;
        if (n == 0)
            put_str(en->out, "null");
        else if (e->vr == MWL_VR_PN)
            put_person_name(en, v, n);
        else if (e->vr == MWL_VR_IS || e->vr == MWL_VR_DS)
            put_decimal_text(en, e->tag, e->vr, v, n);
        else if (raw)
            put_raw_string(en->out, v, n);
        else if (mwl_json_put_string(en->out, v, n) > 0)
            problem(en, &en->report->charset_problems, e->tag, "bytes that are not UTF-8");
        start = i + 1;
    }
    wput_u8(en->out, ']');
}

/* ---- the fast path for ASCII strings ------------------------------------ */

/* Most of a search answer is short ASCII strings (IDs, dates, codes,
 * UIDs, most names). For those, the element is written in one go into room
 * reserved for its worst case, with no per-piece checks of the buffer.
 * What it writes is byte for byte what the general path above writes
 * (json_test and fuzz_json compare the two: the general path is the one
 * pretty-printing takes). */

/* Longest JSON of one escaped ASCII byte: \u00XX. */
#define ESCAPED_MAX 6u
/* The PN groups' names and punctuation around one value, at most:
 * {"Alphabetic":"","Ideographic":"","Phonetic":""} */
#define PN_VALUE_EXTRA 52u

/* s[0..n) (ASCII without ESC) as the inside of a JSON string, at p;
 * returns the end. The caller reserved ESCAPED_MAX * n bytes. */
static uint8_t *escape_ascii(uint8_t *p, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = (uint8_t)hex[c >> 4];
            *p++ = (uint8_t)hex[c & 15u];
        }
    }
    return p;
}

static uint8_t *put_lit(uint8_t *p, const char *lit, size_t n)
{
    memcpy(p, lit, n);
    return p + n;
}

/* One PN value (trimmed) as put_person_name writes it. */
static uint8_t *person_name_ascii(uint8_t *p, const uint8_t *s, size_t len)
{
    static const struct {
        const char *text;
        size_t len;
    } names[3] = {{"\"Alphabetic\":\"", 14}, {"\"Ideographic\":\"", 15}, {"\"Phonetic\":\"", 12}};
    *p++ = '{';
    size_t group = 0, start = 0;
    bool first = true;
    for (size_t i = 0; i <= len && group < 3; i++) {
        if (i < len && s[i] != '=')
            continue;
        if (i > start) {
            if (!first)
                *p++ = ',';
            first = false;
            p = put_lit(p, names[group].text, names[group].len);
            p = escape_ascii(p, s + start, i - start);
            *p++ = '"';
        }
        group++;
        start = i + 1;
    }
    *p++ = '}';
    return p;
}

/* The whole element -- `head` ("GGGGEEEE":{"vr":"XX"), its values, the
 * closing brace -- when its value is ASCII and the fast path applies;
 * false (nothing written) otherwise. */
static bool put_ascii_string_element(encoder *en, const mwl_elem *e, const mwl_vr_info *info,
                                     const char *head, size_t head_len)
{
    mwl_wbuf *o = en->out;
    /* IS and DS may need their numbers normalized: the general path. */
    if (en->opt.indent || e->vr == MWL_VR_IS || e->vr == MWL_VR_DS || o->status != MWL_OK)
        return false;
    const uint8_t *v = e->value;
    size_t len = e->length;
    if (!mwl_text_is_ascii(v, len))
        return false;
    size_t used = len; /* without the trailing padding */
    while (used > 0 && (v[used - 1] == ' ' || v[used - 1] == 0))
        used--;
    bool multi = info->kind == MWL_VR_KIND_STRING;
    /* Values: at most one more than the bytes; counted only when that
     * bound would reserve much more than needed. */
    size_t values = multi ? len + 1 : 1;
    if (multi && len > 64) {
        values = 1;
        for (const uint8_t *q = v; (q = memchr(q, '\\', len - (size_t)(q - v))) != NULL; q++)
            values++;
    }
    /* head, ,"Value":[ ... ]} and per value its quotes, comma or null */
    size_t worst = head_len + 16 + ESCAPED_MAX * len + values * (e->vr == MWL_VR_PN ? PN_VALUE_EXTRA : 6);
    if (o->limit && (o->len > o->limit || worst > o->limit - o->len))
        return false; /* near the limit: the general path writes what fits */
    uint8_t *p = mwl_wbuf_reserve(o, worst);
    if (!p)
        return true; /* out of memory: the sticky status says so */
    uint8_t *start_p = p;
    p = put_lit(p, head, head_len);
    if (used > 0) {
        p = put_lit(p, ",\"Value\":[", 10);
        size_t start = 0;
        while (start <= len) {
            const uint8_t *sep = multi ? memchr(v + start, '\\', len - start) : NULL;
            size_t i = sep ? (size_t)(sep - v) : len;
            const char *s = (const char *)v + start;
            size_t n = i - start;
            mwl_str_trim(e->vr, &s, &n);
            if (start)
                *p++ = ',';
            if (n == 0) {
                p = put_lit(p, "null", 4);
            } else if (e->vr == MWL_VR_PN) {
                p = person_name_ascii(p, (const uint8_t *)s, n);
            } else {
                *p++ = '"';
                p = escape_ascii(p, (const uint8_t *)s, n);
                *p++ = '"';
            }
            start = i + 1;
        }
        *p++ = ']';
    }
    *p++ = '}';
    o->len += (size_t)(p - start_p);
    return true;
}

/* ---- binary values ------------------------------------------------------- */

static void put_numbers(encoder *en, const mwl_elem *e)
{
    size_t size = mwl_vr_get_info(e->vr)->max_len; /* the value size for these VRs */
    size_t count = size ? e->length / size : 0;
    const uint8_t *p = e->value;
    mwl_wbuf *o = en->out;
    wput_u8(o, '[');
    for (size_t i = 0; i < count; i++, p += size) {
        if (i)
            wput_u8(o, ',');
        switch (e->vr) {
        case MWL_VR_US: mwl_wbuf_printf(o, "%u", (unsigned)mwl_load_u16le(p)); break;
        case MWL_VR_SS: mwl_wbuf_printf(o, "%d", (int)(int16_t)mwl_load_u16le(p)); break;
        case MWL_VR_UL: mwl_wbuf_printf(o, "%" PRIu32, mwl_load_u32le(p)); break;
        case MWL_VR_SL: mwl_wbuf_printf(o, "%" PRId32, (int32_t)mwl_load_u32le(p)); break;
        case MWL_VR_AT:
            mwl_wbuf_printf(o, "\"%04X%04X\"", (unsigned)mwl_load_u16le(p), (unsigned)mwl_load_u16le(p + 2));
            break;
        case MWL_VR_SV: {
            int64_t v = (int64_t)mwl_load_u64le(p);
            bool exact = v <= EXACT_INT_MAX && v >= -EXACT_INT_MAX;
            mwl_wbuf_printf(o, exact ? "%" PRId64 : "\"%" PRId64 "\"", v);
            break;
        }
        case MWL_VR_UV: {
            uint64_t v = mwl_load_u64le(p);
            mwl_wbuf_printf(o, v <= (uint64_t)EXACT_INT_MAX ? "%" PRIu64 : "\"%" PRIu64 "\"", v);
            break;
        }
        case MWL_VR_FL:
        case MWL_VR_FD: {
            double v;
            if (e->vr == MWL_VR_FL) {
                uint32_t bits = mwl_load_u32le(p);
                float f;
                memcpy(&f, &bits, sizeof f);
                v = (double)f;
            } else {
                uint64_t bits = mwl_load_u64le(p);
                memcpy(&v, &bits, sizeof v);
            }
            if (isfinite(v)) {
                if (e->vr == MWL_VR_FL)
                    mwl_wbuf_printf(o, "%.9g", v); /* 9 significant digits identify every float */
                else
                    mwl_wbuf_put_double(o, v);
            } else {
                problem(en, &en->report->number_problems, e->tag, "floating point value is not finite");
                put_str(o, isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
            }
            break;
        }
        default: break; /* not a number VR: not called for it */
        }
    }
    wput_u8(o, ']');
}

/* ---- the tree ------------------------------------------------------------ */

static void put_object(encoder *en, const mwl_ds *ds, size_t depth);

static void put_element(encoder *en, const mwl_ds *ds, const mwl_elem *e, size_t depth)
{
    mwl_wbuf *o = en->out;
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    /* An element without a known VR (which the decoder does not produce)
     * is shown as bytes, the way F.2.7 treats UN. */
    const char *code = info->code[0] ? info->code : "UN";
    /* "GGGGEEEE":{"vr":"XX" -- two hex digits a byte from a table of all
     * 256 pairs, not formatted: a REST search answer has thousands of
     * elements (printf was the largest cost of an answer). */
    static const char hex_pairs[513] = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
                                       "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"
                                       "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"
                                       "606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F"
                                       "808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F"
                                       "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF"
                                       "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
                                       "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF";
    char head[32];
    size_t h = 0;
    head[h++] = '"';
    for (int shift = 24; shift >= 0; shift -= 8) {
        memcpy(head + h, hex_pairs + 2 * ((e->tag >> shift) & 0xFFu), 2);
        h += 2;
    }
    head[h++] = '"';
    head[h++] = ':';
    if (en->opt.indent)
        head[h++] = ' ';
    memcpy(head + h, "{\"vr\":\"", 7);
    h += 7;
    size_t code_len = strlen(code);
    memcpy(head + h, code, code_len); /* two letters */
    h += code_len;
    head[h++] = '"';
    if ((info->kind == MWL_VR_KIND_STRING || info->kind == MWL_VR_KIND_TEXT) &&
        put_ascii_string_element(en, e, info, head, h))
        return;
    wput(o, head, h);
    switch (info->kind) {
    case MWL_VR_KIND_SEQUENCE:
        if (e->item_count) {
            put_str(o, ",\"Value\":[");
            for (size_t i = 0; i < e->item_count; i++) {
                if (i)
                    wput_u8(o, ',');
                newline(en, depth + 2);
                put_object(en, e->items[i], depth + 2);
            }
            newline(en, depth + 1);
            wput_u8(o, ']');
        }
        break;
    case MWL_VR_KIND_STRING:
    case MWL_VR_KIND_TEXT:
        if (!mwl_elem_is_blank(e)) {
            put_str(o, ",\"Value\":");
            put_string_values(en, ds, e);
            mwl_arena_reset(&en->text);
        }
        break;
    case MWL_VR_KIND_NUMBER:
        if (e->length) {
            put_str(o, ",\"Value\":");
            put_numbers(en, e);
        }
        break;
    case MWL_VR_KIND_BYTES:
    case MWL_VR_KIND_NONE:
    default:
        if (e->length) {
            put_str(o, ",\"InlineBinary\":");
            put_base64(o, e->value, e->length);
        }
        break;
    }
    wput_u8(o, '}');
}

static void put_object(encoder *en, const mwl_ds *ds, size_t depth)
{
    mwl_wbuf *o = en->out;
    wput_u8(o, '{');
    size_t count = mwl_ds_count(ds);
    bool first = true;
    for (size_t i = 0; i < count && o->status == MWL_OK; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (MWL_TAG_ELEMENT(e->tag) == 0x0000)
            continue; /* F.2.2: no group lengths */
        if (!first)
            wput_u8(o, ',');
        first = false;
        newline(en, depth + 1);
        put_element(en, ds, e, depth);
    }
    if (!first)
        newline(en, depth);
    wput_u8(o, '}');
}

int mwl_ds_encode_json(const mwl_ds *ds, const mwl_json_options *opt, mwl_wbuf *out, mwl_json_report *report)
{
    if (!ds || !out)
        return MWL_E_INVALID;
    encoder en;
    memset(&en, 0, sizeof en);
    if (opt)
        en.opt = *opt;
    if (en.opt.indent > MAX_INDENT)
        en.opt.indent = MAX_INDENT;
    en.out = out;
    mwl_json_report local;
    en.report = report ? report : &local;
    memset(en.report, 0, sizeof *en.report);
    mwl_arena_init(&en.text, out->mem);
    if (out->status == MWL_OK)
        put_object(&en, ds, 0);
    mwl_arena_clear(&en.text);
    return out->status;
}
