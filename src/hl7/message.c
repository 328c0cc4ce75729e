/* HL7 v2 message parser (spec/hl7.md §2, §4): character set, delimiters,
 * segments and fields; values are split further and unescaped on demand.
 *
 * Order of work, and why:
 *  1. MSH-1, MSH-2 and MSH-18 are read from the raw bytes. They are ASCII
 *     whatever the character set, and MSH-18 says how to read the rest.
 *  2. The whole message is converted to UTF-8 before anything is split:
 *     ISO 2022 text in a two-byte mode (ISO IR87) and the second bytes of
 *     BIG-5 or GB 18030 characters can equal '|', '^' or '\'. After the
 *     conversion every byte below 0x80 is the ASCII character it looks
 *     like, so the delimiters can be searched for byte by byte.
 *  3. Segments and fields are located once (the field table of each
 *     segment), so a bad segment name, too many fields or repetitions are
 *     found at parse time. Components and sub-components are found by a
 *     scan of the one field asked for: mapping asks for few positions, and
 *     a scan costs no more than the field's length.
 *  4. Escape sequences are resolved per value, after splitting (§2), into
 *     a new string in the message's arena.
 *
 * Segment terminators: CR; a CR LF pair is one terminator; only when the
 * message holds no CR at all is it split at LF (LF inside NTE or OBX text is
 * real data in a CR-terminated message). Segments that are empty or only
 * blanks (SP, TAB, LF) are skipped: they are what stray terminators leave. */
#include "hl7/hl7_int.h"

#include "base/utf8.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_FIELDS 1000 /* per segment; far more than any segment defines */
#define MAX_REPS 1000   /* per field */
#define DEFAULT_MAX_SEGMENTS 10000

/* ---- character sets (table 0211, spec/hl7.md §4) ------------------------- */

enum cs_kind {
    CS_ASCII,      /* bytes 00H-7FH only */
    CS_UTF8,       /* validated, copied */
    CS_ICONV,      /* glibc iconv from `iconv` */
    CS_JIS_X0201,  /* 00H-7FH as ASCII, A1H-DFH half-width katakana */
    CS_UNSUPPORTED /* known, but not carried by MLLP or not decodable */
};

typedef struct hl7_charset {
    const char *key; /* MSH-18 upper-cased without ' ', '-', '_' and '/' */
    enum cs_kind kind;
    const char *iconv; /* CS_ICONV: the glibc name */
    const char *dicom; /* (0008,0005) term (spec §4) */
} hl7_charset;

/* ISO IR14 is decoded by hand: glibc's JIS X 0201 decoders turn 5CH into
 * YEN SIGN and 7EH into OVERLINE, which would hide the escape character;
 * DICOM readers take the romaji half as ASCII too (dicom/charset.c).
 * ISO IR159 (JIS X 0212) needs ISO-2022-JP-1; glibc has only its superset
 * ISO-2022-JP-2. Sets without a DICOM term are stored as UTF-8 anyway, so
 * "ISO_IR 192" is what they become. */
static const hl7_charset charsets[] = {
    {"ASCII", CS_ASCII, NULL, ""},
    {"ISOIR6", CS_ASCII, NULL, ""}, /* JAHIS names ASCII so */
    {"88591", CS_ICONV, "ISO-8859-1", "ISO_IR 100"},
    {"88592", CS_ICONV, "ISO-8859-2", "ISO_IR 101"},
    {"88593", CS_ICONV, "ISO-8859-3", "ISO_IR 109"},
    {"88594", CS_ICONV, "ISO-8859-4", "ISO_IR 110"},
    {"88595", CS_ICONV, "ISO-8859-5", "ISO_IR 144"},
    {"88596", CS_ICONV, "ISO-8859-6", "ISO_IR 127"},
    {"88597", CS_ICONV, "ISO-8859-7", "ISO_IR 126"},
    {"88598", CS_ICONV, "ISO-8859-8", "ISO_IR 138"},
    {"88599", CS_ICONV, "ISO-8859-9", "ISO_IR 148"},
    {"885915", CS_ICONV, "ISO-8859-15", "ISO_IR 203"},
    {"ISOIR14", CS_JIS_X0201, NULL, "ISO_IR 13"},
    {"ISOIR87", CS_ICONV, "ISO-2022-JP", "ISO 2022 IR 87"},
    {"ISOIR159", CS_ICONV, "ISO-2022-JP-2", "ISO 2022 IR 159"},
    {"KSX1001", CS_ICONV, "EUC-KR", "ISO 2022 IR 149"},
    {"GB180302000", CS_ICONV, "GB18030", "GB18030"},
    {"BIG5", CS_ICONV, "BIG5", "ISO_IR 192"},
    {"UNICODE", CS_UTF8, NULL, "ISO_IR 192"},
    {"UNICODEUTF8", CS_UTF8, NULL, "ISO_IR 192"},
    {"UTF8", CS_UTF8, NULL, "ISO_IR 192"}, /* not in table 0211, but unambiguous */
    {"UNICODEUTF16", CS_UNSUPPORTED, NULL, ""},
    {"UNICODEUTF32", CS_UNSUPPORTED, NULL, ""},
    {"CNS116431992", CS_UNSUPPORTED, NULL, ""},
};
#define CHARSET_COUNT (sizeof charsets / sizeof charsets[0])

/* The table entry for an MSH-18 value, or -1. */
static int charset_lookup(const char *s, size_t len)
{
    char key[24];
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == '-' || c == '_' || c == '/')
            continue;
        if (k + 1 >= sizeof key)
            return -1;
        key[k++] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    key[k] = '\0';
    for (size_t i = 0; i < CHARSET_COUNT; i++) {
        if (strcmp(key, charsets[i].key) == 0)
            return (int)i;
    }
    return -1;
}

/* Converts `len` bytes in charset `cs` to UTF-8 at `out` (room for `cap`
 * bytes). Returns MWL_OK with *out_len, MWL_E_CHARSET with *bad (offset of
 * the first byte not converted, as far as known), MWL_E_LIMIT when `cap`
 * is too small, MWL_E_NOMEM/MWL_E_UNSUPPORTED when iconv cannot start. */
static int decode_bytes(const hl7_charset *cs, const uint8_t *in, size_t len, char *out, size_t cap,
                        size_t *out_len, size_t *bad)
{
    size_t o = 0;
    *bad = 0;
    switch (cs->kind) {
    case CS_ASCII:
        if (len > cap)
            return MWL_E_LIMIT;
        for (size_t i = 0; i < len; i++) {
            if (in[i] >= 0x80) {
                *bad = i;
                return MWL_E_CHARSET;
            }
        }
        memcpy(out, in, len);
        *out_len = len;
        return MWL_OK;
    case CS_UTF8:
        if (len > cap)
            return MWL_E_LIMIT;
        for (size_t i = 0; i < len;) {
            size_t n = in[i] < 0x80 ? 1 : mwl_utf8_decode(in + i, len - i, NULL);
            if (n == 0) {
                *bad = i;
                return MWL_E_CHARSET;
            }
            i += n;
        }
        memcpy(out, in, len);
        *out_len = len;
        return MWL_OK;
    case CS_JIS_X0201:
        for (size_t i = 0; i < len; i++) {
            uint8_t b = in[i];
            if (b < 0x80) {
                if (o + 1 > cap)
                    return MWL_E_LIMIT;
                out[o++] = (char)b;
            } else if (b >= 0xA1 && b <= 0xDF) {
                /* U+FF61..U+FF9F, three bytes: EF BD A1..BF, EF BE 80..9F */
                unsigned cp = 0xFF61u + (b - 0xA1u);
                if (o + 3 > cap)
                    return MWL_E_LIMIT;
                out[o++] = (char)0xEF;
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                *bad = i;
                return MWL_E_CHARSET;
            }
        }
        *out_len = o;
        return MWL_OK;
    case CS_ICONV: break;
    case CS_UNSUPPORTED: return MWL_E_UNSUPPORTED;
    }

    iconv_t cd = iconv_open("UTF-8", cs->iconv);
    if (cd == (iconv_t)-1)
        return errno == ENOMEM ? MWL_E_NOMEM : MWL_E_UNSUPPORTED;
    char *ip = (char *)(uintptr_t)in; /* iconv's API is not const-correct */
    size_t il = len;
    char *op = out;
    size_t ol = cap;
    int rc = MWL_OK;
    size_t r = iconv(cd, &ip, &il, &op, &ol);
    if (r == (size_t)-1 && errno == E2BIG) {
        rc = MWL_E_LIMIT;
    } else if (r != 0) {
        /* EILSEQ, EINVAL (truncated character); r > 0 counts approximated
         * conversions, which are never accepted. */
        *bad = len - il;
        rc = MWL_E_CHARSET;
    } else if (iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1) {
        rc = MWL_E_LIMIT; /* the final shift sequence did not fit */
    }
    iconv_close(cd);
    *out_len = cap - ol;
    return rc;
}

/* ---- errors ---------------------------------------------------------------- */

/* Cuts a trailing incomplete UTF-8 character left by truncation. */
static void utf8_trim(char *s)
{
    size_t len = strlen(s), i = 0, good = 0;
    while (i < len) {
        size_t n = (unsigned char)s[i] < 0x80 ? 1 : mwl_utf8_decode((const uint8_t *)s + i, len - i, NULL);
        if (n == 0)
            break;
        i += n;
        good = i;
    }
    s[good] = '\0';
}

void mwl_hl7_error_set(mwl_hl7_error *e, mwl_hl7_ack_code ack, int code, const char *segment, unsigned seq,
                       unsigned field, unsigned component, const char *fmt, ...)
{
    if (!e)
        return;
    memset(e, 0, sizeof *e);
    e->ack = ack;
    e->code = code;
    if (segment) {
        size_t n = strnlen(segment, sizeof e->segment - 1);
        memcpy(e->segment, segment, n);
    }
    e->seq = seq;
    e->field = field;
    e->component = component;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
        utf8_trim(e->text);
    }
}

const char *mwl_hl7_error_text(int code)
{
    switch (code) {
    case 0: return "Message accepted";
    case MWL_HL7_ERR_SEGMENT_SEQUENCE: return "Segment sequence error";
    case MWL_HL7_ERR_REQUIRED_MISSING: return "Required field missing";
    case MWL_HL7_ERR_DATA_TYPE: return "Data type error";
    case MWL_HL7_ERR_TABLE_VALUE: return "Table value not found";
    case MWL_HL7_ERR_MESSAGE_TYPE: return "Unsupported message type";
    case MWL_HL7_ERR_EVENT: return "Unsupported event code";
    case MWL_HL7_ERR_PROCESSING_ID: return "Unsupported processing id";
    case MWL_HL7_ERR_VERSION: return "Unsupported version id";
    case MWL_HL7_ERR_UNKNOWN_KEY: return "Unknown key identifier";
    case MWL_HL7_ERR_DUPLICATE_KEY: return "Duplicate key identifier";
    case 206: return "Application record locked";
    case MWL_HL7_ERR_INTERNAL: return "Application internal error";
    default: return "Error";
    }
}

/* ---- splitting --------------------------------------------------------------- */

static bool is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_blank_segment(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n')
            return false;
    }
    return true;
}

/* Locates the fields of segment `s` (text, len set) and checks its name
 * and bounds. `pos` is its 1-based position in the message, for errors. */
static int split_fields(mwl_hl7_msg *m, mwl_hl7_seg *s, size_t pos, mwl_hl7_error *err)
{
    const char *p = s->text;
    size_t len = s->len;
    char fs = m->delims[MWL_HL7_D_FIELD], rs = m->delims[MWL_HL7_D_REP];
    if (len < 3 || !is_name_char(p[0]) || !is_name_char(p[1]) || !is_name_char(p[2]) ||
        (len > 3 && p[3] != fs)) {
        char shown[8];
        size_t n = 0;
        for (size_t i = 0; i < len && i < 4; i++)
            shown[n++] = (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7F ? p[i] : '?';
        shown[n] = '\0';
        mwl_hl7_error_set(err, MWL_HL7_AE, MWL_HL7_ERR_SEGMENT_SEQUENCE, "", 0, 0, 0,
                          "segment %zu has no valid name (\"%s\")", pos, shown);
        return MWL_E_MALFORMED;
    }
    memcpy(s->name, p, 3);
    s->name[3] = '\0';
    bool msh = strcmp(s->name, "MSH") == 0;

    size_t count = msh && len > 3 ? 1 : 0;
    for (size_t i = 3; i < len; i++)
        count += p[i] == fs;
    if (count > MAX_FIELDS) {
        mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, s->name, 0, 0, 0,
                          "segment %zu (%s) has more than %d fields", pos, s->name, MAX_FIELDS);
        return MWL_E_LIMIT;
    }
    s->field_count = count;
    s->fields = NULL;
    if (count == 0)
        return MWL_OK;
    mwl_hl7_span *f = mwl_arena_alloc(m->arena, count * sizeof *f);
    if (!f)
        return MWL_E_NOMEM;
    size_t k = 0;
    if (msh)
        f[k++] = (mwl_hl7_span){3, 1};
    for (size_t i = 3; i < len; i++) {
        if (p[i] != fs)
            continue;
        size_t start = i + 1, end = start, reps = 1;
        while (end < len && p[end] != fs)
            reps += p[end++] == rs;
        /* MSH-2 holds the repetition separator itself. */
        if (reps > MAX_REPS && !(msh && k == 1)) {
            mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, s->name, 0, (unsigned)(k + 1), 0,
                              "field %zu of segment %zu (%s) repeats more than %d times", k + 1, pos, s->name,
                              MAX_REPS);
            return MWL_E_LIMIT;
        }
        f[k++] = (mwl_hl7_span){start, end - start};
        i = end - 1;
    }
    s->fields = f;
    return MWL_OK;
}

/* Appends one segment, doubling the array as needed. */
static int add_segment(mwl_hl7_msg *m, size_t *cap, const char *p, size_t len)
{
    if (m->seg_count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        mwl_hl7_seg *n = mwl_arena_realloc(m->arena, m->segs, *cap * sizeof *n, ncap * sizeof *n);
        if (!n)
            return MWL_E_NOMEM;
        m->segs = n;
        *cap = ncap;
    }
    mwl_hl7_seg *s = &m->segs[m->seg_count++];
    memset(s, 0, sizeof *s);
    s->text = p;
    s->len = len;
    return MWL_OK;
}

/* Numbers the segments of each name (1, 2, ...) through a hash table of
 * names, so a message of many segments costs no more than its length. */
static int number_segments(mwl_hl7_msg *m)
{
    size_t size = 16;
    while (size < m->seg_count * 2)
        size *= 2;
    struct slot {
        uint32_t key; /* 0 = free; names have no NUL, so no key is 0 */
        unsigned count;
    } *t = mwl_arena_calloc(m->arena, size * sizeof *t);
    if (!t)
        return MWL_E_NOMEM;
    for (size_t i = 0; i < m->seg_count; i++) {
        const unsigned char *n = (const unsigned char *)m->segs[i].name;
        uint32_t key = (uint32_t)n[0] << 16 | (uint32_t)n[1] << 8 | n[2];
        size_t h = (key * 2654435761u) & (size - 1);
        while (t[h].key && t[h].key != key)
            h = (h + 1) & (size - 1);
        t[h].key = key;
        m->segs[i].seq = ++t[h].count;
    }
    return MWL_OK;
}

/* Splits UTF-8 `text` into segments. first_only: stop after the first
 * segment (the MSH of a message whose rest could not be read). */
static int split_segments(mwl_hl7_msg *m, const char *text, size_t len, size_t max_segments, bool first_only,
                          mwl_hl7_error *err)
{
    char term = memchr(text, '\r', len) ? '\r' : '\n';
    size_t cap = 0, pos = 0;
    while (pos < len) {
        const char *e = memchr(text + pos, term, len - pos);
        size_t end = e ? (size_t)(e - text) : len;
        size_t next = end + 1;
        if (term == '\r' && next < len && text[next] == '\n')
            next++;
        if (!is_blank_segment(text + pos, end - pos)) {
            if (m->seg_count == max_segments) {
                mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "", 0, 0, 0,
                                  "more than %zu segments", max_segments);
                return MWL_E_LIMIT;
            }
            int rc = add_segment(m, &cap, text + pos, end - pos);
            if (rc != MWL_OK)
                return rc;
            rc = split_fields(m, &m->segs[m->seg_count - 1], m->seg_count, err);
            if (rc != MWL_OK) {
                m->seg_count--;
                return rc;
            }
            if (first_only)
                break;
        }
        pos = next;
    }
    return number_segments(m);
}

/* ---- values ------------------------------------------------------------------ */

/* The n-th (1-based) piece of p[0..len) between `delim`s. */
static bool nth_piece(const char *p, size_t len, char delim, unsigned n, const char **out, size_t *out_len)
{
    size_t start = 0;
    for (unsigned k = 1; k < n; k++) {
        const char *d = memchr(p + start, delim, len - start);
        if (!d)
            return false;
        start = (size_t)(d - p) + 1;
    }
    const char *d = memchr(p + start, delim, len - start);
    *out = p + start;
    *out_len = d ? (size_t)(d - (p + start)) : len - start;
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hex_digit(s[i]) < 0)
            return false;
    }
    return true;
}

/* Formatting commands of FT (\.sp\ \.in\ ...): dropped, like \H\ \N\. */
static bool is_format_command(const char *s, size_t n)
{
    static const char *const cmds[] = {".sp", ".in", ".ti", ".sk", ".ce", ".fi", ".nf"};
    if (n < 3)
        return false;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (memcmp(s, cmds[i], 3) == 0)
            return true;
    }
    return false;
}

/* \Xhh..\: the bytes, in the message's own character set, as UTF-8 at
 * out (room for cap). Returns the length written; 0 for anything invalid
 * (odd digits, bytes invalid in the set): the sequence is then dropped. */
static size_t decode_hex(const mwl_hl7_msg *m, const char *s, size_t n, char *out, size_t cap)
{
    if (n == 0 || n % 2 || !all_hex(s, n) || n / 2 > cap)
        return 0;
    /* Decoded bytes go to the end of the room, the UTF-8 to its start:
     * 2n hex digits give n bytes and at most 3n bytes of UTF-8 (see
     * decode_value), so they do not meet. Converting in place is not
     * allowed by iconv, hence a small buffer when they could. */
    uint8_t tmp[256];
    size_t nb = n / 2;
    uint8_t *bytes = nb <= sizeof tmp ? tmp : (uint8_t *)out + cap - nb;
    for (size_t i = 0; i < nb; i++)
        bytes[i] = (uint8_t)(hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]));
    size_t room = bytes == tmp ? cap : cap - nb, got = 0, bad;
    if (decode_bytes(&charsets[m->charset], bytes, nb, out, room, &got, &bad) != MWL_OK)
        return 0;
    return got;
}

/* Resolves the escape sequences of raw value p[0..len) (spec §2) into
 * out, which has room for 2 * len + 4 bytes: every sequence shrinks but
 * \Xhh\ (2 digits -> up to 3 bytes of UTF-8, plus the 3 bytes of "\X\"
 * it replaces) and \.br\ (5 -> 2). NUL bytes are dropped: values are C
 * strings. Returns the length. */
static size_t decode_value(const mwl_hl7_msg *m, const char *p, size_t len, char *out)
{
    const char *d = m->delims;
    char esc = d[MWL_HL7_D_ESC];
    size_t o = 0, i = 0;
    size_t cap = 2 * len + 4;
    while (i < len) {
        if (p[i] != esc) {
            if (p[i] != '\0')
                out[o++] = p[i];
            i++;
            continue;
        }
        const char *close = memchr(p + i + 1, esc, len - i - 1);
        if (!close) { /* unterminated: kept as sent */
            for (; i < len; i++) {
                if (p[i] != '\0')
                    out[o++] = p[i];
            }
            break;
        }
        const char *s = p + i + 1;
        size_t n = (size_t)(close - s);
        bool verbatim = false;
        if (n >= 1 && s[0] == 'X') {
            size_t got = decode_hex(m, s + 1, n - 1, out + o, cap - o), kept = 0;
            for (size_t k = 0; k < got; k++) {
                if (out[o + k] != '\0')
                    out[o + kept++] = out[o + k];
            }
            o += kept;
        } else if (n == 1) {
            switch (s[0]) {
            case 'F': out[o++] = d[MWL_HL7_D_FIELD]; break;
            case 'S': out[o++] = d[MWL_HL7_D_COMP]; break;
            case 'T': out[o++] = d[MWL_HL7_D_SUB]; break;
            case 'R': out[o++] = d[MWL_HL7_D_REP]; break;
            case 'E': out[o++] = esc; break;
            case 'P':
                if (d[MWL_HL7_D_TRUNC])
                    out[o++] = d[MWL_HL7_D_TRUNC];
                else
                    verbatim = true;
                break;
            case 'H':
            case 'N': break; /* highlighting on/off */
            default: verbatim = true; break;
            }
        } else if (n >= 1 && s[0] == 'Z') {
            /* locally defined: nothing we can interpret */
        } else if (n >= 1 && s[0] == 'C' && n == 5 && all_hex(s + 1, 4)) {
            /* character set switches: the message is already UTF-8 */
        } else if (n >= 1 && s[0] == 'M' && (n == 5 || n == 7) && all_hex(s + 1, n - 1)) {
        } else if (n == 3 && memcmp(s, ".br", 3) == 0) {
            out[o++] = '\r';
            out[o++] = '\n';
        } else if (is_format_command(s, n)) {
        } else {
            verbatim = true;
        }
        if (verbatim) {
            for (size_t k = i; k < i + n + 2; k++) {
                if (p[k] != '\0')
                    out[o++] = p[k];
            }
        }
        i += n + 2;
    }
    return o;
}

/* Finds the raw text at field/rep/comp/sub of s; false when absent. */
static bool locate(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field, unsigned rep, unsigned comp,
                   unsigned sub, const char **p, size_t *len)
{
    if (!m || !s || field == 0 || rep == 0 || comp == 0 || sub == 0 || field > s->field_count)
        return false;
    const mwl_hl7_span *f = &s->fields[field - 1];
    const char *fp = s->text + f->off;
    size_t fl = f->len;
    /* MSH-1 and MSH-2 hold the delimiters themselves: never split. */
    if (s->name[0] == 'M' && strcmp(s->name, "MSH") == 0 && field <= 2) {
        if (rep != 1 || comp != 1 || sub != 1)
            return false;
        *p = fp;
        *len = fl;
        return true;
    }
    const char *rp, *cp;
    size_t rl, cl;
    if (!nth_piece(fp, fl, m->delims[MWL_HL7_D_REP], rep, &rp, &rl) ||
        !nth_piece(rp, rl, m->delims[MWL_HL7_D_COMP], comp, &cp, &cl) ||
        !nth_piece(cp, cl, m->delims[MWL_HL7_D_SUB], sub, p, len))
        return false;
    return true;
}

mwl_hl7_presence mwl_hl7_get(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field, unsigned rep,
                             unsigned comp, unsigned sub, const char **value)
{
    const char *p;
    size_t len;
    *value = "";
    if (!locate(m, s, field, rep, comp, sub, &p, &len) || len == 0)
        return MWL_HL7_ABSENT;
    if (len == 2 && p[0] == '"' && p[1] == '"')
        return MWL_HL7_NULL;
    bool literal = strcmp(s->name, "MSH") == 0 && field <= 2;
    char *out = mwl_arena_alloc(m->arena, 2 * len + 5);
    if (!out)
        return MWL_HL7_ABSENT; /* documented: a value we cannot hold is not there */
    size_t n;
    if (literal) {
        n = 0;
        for (size_t i = 0; i < len; i++) {
            if (p[i] != '\0')
                out[n++] = p[i];
        }
    } else {
        n = decode_value(m, p, len, out);
    }
    out[n] = '\0';
    if (n == 0)
        return MWL_HL7_ABSENT; /* only sequences that mean nothing here (\H\, \Zxx\) */
    *value = out;
    return MWL_HL7_VALUE;
}

unsigned mwl_hl7_reps(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field)
{
    if (!m || !s || field == 0 || field > s->field_count)
        return 0;
    const mwl_hl7_span *f = &s->fields[field - 1];
    if (f->len == 0)
        return 0;
    if (strcmp(s->name, "MSH") == 0 && field <= 2)
        return 1;
    unsigned n = 1;
    const char *p = s->text + f->off;
    for (size_t i = 0; i < f->len; i++)
        n += p[i] == m->delims[MWL_HL7_D_REP];
    return n;
}

const char *mwl_hl7_raw_field(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field)
{
    if (!m || !s || field == 0 || field > s->field_count)
        return "";
    const mwl_hl7_span *f = &s->fields[field - 1];
    char *out = mwl_arena_strndup(m->arena, s->text + f->off, f->len);
    return out ? out : "";
}

mwl_hl7_presence mwl_hl7_field_presence(const mwl_hl7_msg *m, const mwl_hl7_seg *s, unsigned field)
{
    if (!m || !s || field == 0 || field > s->field_count)
        return MWL_HL7_ABSENT;
    const mwl_hl7_span *f = &s->fields[field - 1];
    if (f->len == 0)
        return MWL_HL7_ABSENT;
    return f->len == 2 && memcmp(s->text + f->off, "\"\"", 2) == 0 ? MWL_HL7_NULL : MWL_HL7_VALUE;
}

/* ---- segments -------------------------------------------------------------- */

const mwl_hl7_msh *mwl_hl7_header(const mwl_hl7_msg *m)
{
    return m ? &m->msh : NULL;
}

const char *mwl_hl7_dicom_charset(const mwl_hl7_msg *m)
{
    return m ? charsets[m->charset].dicom : "";
}

size_t mwl_hl7_segment_count(const mwl_hl7_msg *m)
{
    return m ? m->seg_count : 0;
}

const mwl_hl7_seg *mwl_hl7_segment_at(const mwl_hl7_msg *m, size_t i)
{
    return m && i < m->seg_count ? &m->segs[i] : NULL;
}

const mwl_hl7_seg *mwl_hl7_find(const mwl_hl7_msg *m, const char *name, size_t from, size_t *index)
{
    if (!m || !name)
        return NULL;
    for (size_t i = from; i < m->seg_count; i++) {
        if (strcmp(m->segs[i].name, name) == 0) {
            if (index)
                *index = i;
            return &m->segs[i];
        }
    }
    return NULL;
}

const char *mwl_hl7_seg_name(const mwl_hl7_seg *s)
{
    return s ? s->name : "";
}

unsigned mwl_hl7_seg_seq(const mwl_hl7_seg *s)
{
    return s ? s->seq : 0;
}

size_t mwl_hl7_field_count(const mwl_hl7_seg *s)
{
    return s ? s->field_count : 0;
}

/* ---- parsing --------------------------------------------------------------- */

static const char *msh_value(const mwl_hl7_msg *m, unsigned field, unsigned comp)
{
    const char *v;
    mwl_hl7_get(m, &m->segs[0], field, 1, comp, 1, &v);
    return v;
}

static void fill_msh(mwl_hl7_msg *m)
{
    mwl_hl7_msh *h = &m->msh;
    h->field_sep = m->delims[MWL_HL7_D_FIELD];
    h->component_sep = m->delims[MWL_HL7_D_COMP];
    h->repetition_sep = m->delims[MWL_HL7_D_REP];
    h->escape_char = m->delims[MWL_HL7_D_ESC];
    h->subcomponent_sep = m->delims[MWL_HL7_D_SUB];
    h->sending_application = msh_value(m, 3, 1);
    h->sending_facility = msh_value(m, 4, 1);
    h->receiving_application = msh_value(m, 5, 1);
    h->receiving_facility = msh_value(m, 6, 1);
    h->time = msh_value(m, 7, 1);
    h->message_type = msh_value(m, 9, 1);
    h->trigger_event = msh_value(m, 9, 2);
    h->structure = msh_value(m, 9, 3);
    h->control_id = msh_value(m, 10, 1);
    h->processing_id = msh_value(m, 11, 1);
    h->version = msh_value(m, 12, 1);
    h->accept_ack_type = msh_value(m, 15, 1);
    h->app_ack_type = msh_value(m, 16, 1);
    h->charset = msh_value(m, 18, 1);
}

static bool is_delimiter_char(uint8_t c)
{
    return c > 0x20 && c < 0x7F &&
           !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
}

/* Reads MSH-1 and MSH-2 at d (which starts with "MSH"). */
static int read_delimiters(const uint8_t *d, size_t len, char delims[6], mwl_hl7_error *err)
{
    memset(delims, 0, 6);
    if (len < 4 || !is_delimiter_char(d[3])) {
        mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_DATA_TYPE, "MSH", 1, 1, 0,
                          "no field separator in MSH-1");
        return MWL_E_MALFORMED;
    }
    delims[0] = (char)d[3];
    size_t n = 0;
    for (size_t i = 4; i < len && d[i] != d[3] && d[i] != '\r' && d[i] != '\n'; i++) {
        if (n == 5 || !is_delimiter_char(d[i]) || memchr(delims, d[i], n + 1)) {
            mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_DATA_TYPE, "MSH", 1, 2, 0,
                              "MSH-2 is not 4 or 5 distinct encoding characters");
            return MWL_E_MALFORMED;
        }
        delims[1 + n++] = (char)d[i];
    }
    if (n < 4) {
        mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_DATA_TYPE, "MSH", 1, 2, 0,
                          "MSH-2 has %zu encoding characters, 4 are needed", n);
        return MWL_E_MALFORMED;
    }
    return MWL_OK;
}

/* MSH-18, first repetition, trimmed, from the raw first segment. */
static void raw_msh18(const uint8_t *d, size_t len, const char delims[6], const char **v, size_t *vlen)
{
    size_t end = 0;
    while (end < len && d[end] != '\r' && d[end] != '\n')
        end++;
    /* chunk 0 is "MSH", chunk n is MSH-(n+1) */
    unsigned chunk = 0;
    size_t i = 3;
    *v = "";
    *vlen = 0;
    while (i < end && chunk < 17) {
        if (d[i] == (uint8_t)delims[0])
            chunk++;
        i++;
    }
    if (chunk != 17)
        return;
    size_t j = i;
    while (j < end && d[j] != (uint8_t)delims[0] && d[j] != (uint8_t)delims[MWL_HL7_D_REP])
        j++;
    while (i < j && d[i] == ' ')
        i++;
    while (j > i && d[j - 1] == ' ')
        j--;
    *v = (const char *)d + i;
    *vlen = j - i;
}

/* JAHIS (the Japanese HL7 profile) writes MSH-18 as "~ISO IR87": the first
 * repetition empty (ASCII), the code extension named in a later one and
 * reached by ISO 2022 escapes in the text. The set of such a message is
 * ISO 2022 JP (-2 when ISO IR159 is named, its superset in glibc). -1 when
 * no later repetition names either. */
static int msh18_code_extension(const uint8_t *d, size_t len, const char delims[6])
{
    size_t end = 0;
    while (end < len && d[end] != '\r' && d[end] != '\n')
        end++;
    unsigned chunk = 0;
    size_t i = 3;
    while (i < end && chunk < 17) {
        if (d[i] == (uint8_t)delims[0])
            chunk++;
        i++;
    }
    if (chunk != 17)
        return -1;
    int found = -1;
    bool first = true;
    while (i <= end) {
        size_t j = i;
        while (j < end && d[j] != (uint8_t)delims[0] && d[j] != (uint8_t)delims[MWL_HL7_D_REP])
            j++;
        if (!first) {
            int cs = charset_lookup((const char *)d + i, j - i);
            if (cs >= 0 && strcmp(charsets[cs].key, "ISOIR159") == 0)
                found = cs;
            else if (cs >= 0 && strcmp(charsets[cs].key, "ISOIR87") == 0 && found < 0)
                found = cs;
        }
        first = false;
        if (j >= end || d[j] == (uint8_t)delims[0])
            break;
        i = j + 1;
    }
    return found;
}

/* ISO 2022 escapes that designate JIS X 0208 or 0212 (ESC $ @, ESC $ B,
 * ESC $ ( D) in a message whose MSH-18 is empty: a Japanese RIS that names
 * no character set; no other set such a feed uses has ESC in its text. */
static bool has_jis_escapes(const uint8_t *d, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++)
        if (d[i] == 0x1B && d[i + 1] == '$' && (d[i + 2] == '@' || d[i + 2] == 'B' || d[i + 2] == '('))
            return true;
    return false;
}

/* Where a raw byte offset lies: the name and ordinal of its segment, found
 * by the raw terminators (exact for every ASCII-compatible set). */
static void locate_raw(const uint8_t *d, size_t len, size_t at, char name[4], unsigned *seq)
{
    uint8_t term = memchr(d, '\r', len) ? '\r' : '\n';
    size_t start = 0;
    for (size_t i = 0; i < at && i < len; i++) {
        if (d[i] == term || (d[i] == '\n' && i > 0 && d[i - 1] == '\r'))
            start = i + 1;
    }
    name[0] = '\0';
    *seq = 0;
    if (start + 3 > len || !is_name_char((char)d[start]) || !is_name_char((char)d[start + 1]) ||
        !is_name_char((char)d[start + 2]))
        return;
    memcpy(name, d + start, 3);
    name[3] = '\0';
    bool line_start = true;
    for (size_t i = 0; i <= start; i++) {
        if (line_start && i + 3 <= len && memcmp(d + i, name, 3) == 0)
            (*seq)++;
        line_start = d[i] == term || d[i] == '\n';
    }
}

/* The MSH alone, from the raw bytes, for an ACK when the rest cannot be
 * read: bytes that are not ASCII become '?'. NULL when even that fails. */
static mwl_hl7_msg *fallback_msh(mwl_hl7_msg *m, const uint8_t *d, size_t len)
{
    size_t end = 0;
    while (end < len && d[end] != '\r' && d[end] != '\n')
        end++;
    char *t = mwl_arena_alloc(m->arena, end + 1);
    if (!t)
        return NULL;
    for (size_t i = 0; i < end; i++)
        t[i] = d[i] >= 0x80 || d[i] == 0x1B || d[i] == 0 ? '?' : (char)d[i];
    m->charset = 0; /* ASCII */
    m->segs = NULL;
    m->seg_count = 0;
    if (split_segments(m, t, end, 1, true, NULL) != MWL_OK || m->seg_count != 1)
        return NULL;
    fill_msh(m);
    return m;
}

size_t mwl_hl7_msh_start(const uint8_t *data, size_t len)
{
    /* Tolerated before MSH: stray terminators and blanks, a UTF-8 BOM. */
    size_t start = 0;
    if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF)
        start = 3;
    while (start < len &&
           (data[start] == '\r' || data[start] == '\n' || data[start] == ' ' || data[start] == '\t'))
        start++;
    return start;
}

int mwl_hl7_parse(const uint8_t *data, size_t len, const mwl_hl7_parse_options *opt, mwl_arena *arena,
                  mwl_hl7_msg **out, mwl_hl7_error *err)
{
    *out = NULL;
    mwl_hl7_error_set(err, MWL_HL7_AA, 0, "", 0, 0, 0, NULL);
    if (!data && len)
        return MWL_E_INVALID;
    size_t max_segments = opt && opt->max_segments ? opt->max_segments : DEFAULT_MAX_SEGMENTS;
    const char *def = opt && opt->default_charset ? opt->default_charset : "8859/1";

    size_t start = mwl_hl7_msh_start(data, len);
    const uint8_t *d = data + start;
    len -= start;
    if (len < 3 || memcmp(d, "MSH", 3) != 0) {
        mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_SEGMENT_SEQUENCE, "", 0, 0, 0,
                          "the message does not start with MSH");
        return MWL_E_MALFORMED;
    }
    mwl_hl7_msg *m = mwl_arena_calloc(arena, sizeof *m);
    if (!m)
        return MWL_E_NOMEM;
    m->arena = arena;
    int rc = read_delimiters(d, len, m->delims, err);
    if (rc != MWL_OK)
        return rc;

    const char *cs_name;
    size_t cs_len;
    raw_msh18(d, len, m->delims, &cs_name, &cs_len);
    int cs = cs_len ? charset_lookup(cs_name, cs_len) : charset_lookup(def, strlen(def));
    if (cs_len == 0 || (cs >= 0 && charsets[cs].kind == CS_ASCII)) {
        int ext = msh18_code_extension(d, len, m->delims);
        if (ext < 0 && cs_len == 0 && has_jis_escapes(d, len))
            ext = charset_lookup("ISOIR159", 8);
        if (ext >= 0)
            cs = ext;
    }
    if (cs < 0 || charsets[cs].kind == CS_UNSUPPORTED) {
        char shown[32];
        const char *v = cs_len ? cs_name : def;
        size_t vl = cs_len ? cs_len : strlen(def), k = 0;
        for (size_t i = 0; i < vl && k + 1 < sizeof shown; i++)
            shown[k++] = (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7F ? v[i] : '?';
        shown[k] = '\0';
        if (cs < 0)
            mwl_hl7_error_set(err, MWL_HL7_AE, MWL_HL7_ERR_TABLE_VALUE, "MSH", 1, 18, 0,
                              "unknown character set \"%s\"", shown);
        else
            mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_TABLE_VALUE, "MSH", 1, 18, 0,
                              "character set \"%s\" is not supported", shown);
        *out = fallback_msh(m, d, len);
        return MWL_E_CHARSET;
    }

    /* Pure ASCII reads the same in every supported set but ISO 2022 with
     * escapes (ESC is ASCII): no conversion needed. */
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++)
        ascii = d[i] < 0x80 && d[i] != 0x1B;
    char *text;
    size_t tlen = 0;
    if (ascii || charsets[cs].kind == CS_ASCII || charsets[cs].kind == CS_UTF8) {
        size_t bad = 0;
        text = mwl_arena_alloc(arena, len + 1);
        if (!text)
            return MWL_E_NOMEM;
        rc = ascii ? MWL_OK : decode_bytes(&charsets[cs], d, len, text, len, &tlen, &bad);
        if (ascii) {
            memcpy(text, d, len);
            tlen = len;
        }
        if (rc == MWL_E_CHARSET) {
            char seg[4];
            unsigned seq;
            locate_raw(d, len, bad, seg, &seq);
            mwl_hl7_error_set(err, MWL_HL7_AE, MWL_HL7_ERR_DATA_TYPE, seg, seq, 0, 0,
                              "bytes invalid in character set %s at offset %zu", charsets[cs].key,
                              bad + start);
            m->charset = cs;
            *out = fallback_msh(m, d, len);
            return rc;
        }
    } else {
        if (len > (SIZE_MAX - 16) / 3)
            return MWL_E_LIMIT;
        size_t cap = 3 * len + 16, bad = 0;
        text = mwl_arena_alloc(arena, cap);
        if (!text)
            return MWL_E_NOMEM;
        rc = decode_bytes(&charsets[cs], d, len, text, cap, &tlen, &bad);
        if (rc == MWL_E_CHARSET) {
            char seg[4];
            unsigned seq;
            locate_raw(d, len, bad, seg, &seq);
            mwl_hl7_error_set(err, MWL_HL7_AE, MWL_HL7_ERR_DATA_TYPE, seg, seq, 0, 0,
                              "bytes invalid in character set %s at offset %zu", charsets[cs].key,
                              bad + start);
        } else if (rc != MWL_OK) {
            mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "MSH", 1, 18, 0,
                              "cannot convert from %s", charsets[cs].iconv);
        }
        if (rc != MWL_OK) {
            if (rc == MWL_E_LIMIT || rc == MWL_E_UNSUPPORTED)
                rc = MWL_E_CHARSET;
            m->charset = cs;
            *out = fallback_msh(m, d, len);
            return rc;
        }
        /* Give back what the worst case reserved. */
        text = mwl_arena_realloc(arena, text, cap, tlen + 1);
    }
    m->charset = cs;
    rc = split_segments(m, text, tlen, max_segments, false, err);
    if (rc != MWL_OK) {
        if (rc == MWL_E_NOMEM)
            return rc;
        /* Keep the MSH (always the first segment) for the ACK. */
        if (m->seg_count > 0) {
            m->seg_count = 1;
            m->segs[0].seq = 1;
            fill_msh(m);
            *out = m;
        }
        return rc;
    }
    fill_msh(m);
    *out = m;
    return MWL_OK;
}
