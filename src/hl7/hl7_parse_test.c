/* Tests of the sans-IO half of src/hl7: the MLLP framer (every chunking of
 * a stream), the parser (delimiters, terminators, character sets,
 * escapes, presence, limits, errors) and the ACK builder and reader. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hl7/hl7.h"

/* ---- helpers ------------------------------------------------------------- */

static mwl_arena arena;

static mwl_hl7_msg *parse_opt(const char *text, size_t len, const mwl_hl7_parse_options *opt, int want_rc,
                              mwl_hl7_error *err)
{
    mwl_hl7_msg *m = NULL;
    mwl_hl7_error e;
    int rc = mwl_hl7_parse((const uint8_t *)text, len, opt, &arena, &m, err ? err : &e);
    CHECK_EQ_INT(rc, want_rc);
    return m;
}

static mwl_hl7_msg *parse(const char *text)
{
    return parse_opt(text, strlen(text), NULL, MWL_OK, NULL);
}

/* The value at a position of the first segment named `seg`. */
static const char *value(const mwl_hl7_msg *m, const char *seg, unsigned f, unsigned r, unsigned c,
                         unsigned s)
{
    const char *v;
    mwl_hl7_get(m, mwl_hl7_find(m, seg, 0, NULL), f, r, c, s, &v);
    return v;
}

static mwl_hl7_presence presence(const mwl_hl7_msg *m, const char *seg, unsigned f, unsigned r, unsigned c)
{
    const char *v;
    return mwl_hl7_get(m, mwl_hl7_find(m, seg, 0, NULL), f, r, c, 1, &v);
}

#define ORM                                                                                                  \
    "MSH|^~\\&|RIS|RADDEPT|MWL|MWLSRV|20250301101500||ORM^O01|MSG00042|P|2.3.1\r"                            \
    "PID|||PAT123^^^HOSP&1.2.3.4.5&ISO~OTHER^^^X||MUELLER^ANNA||19700215|F\r"                                \
    "PV1||O|RAD^XR1\r"                                                                                       \
    "ORC|NW|PL1001|FL2002||SC\r"                                                                             \
    "OBR|1|PL1001|FL2002|CTCHEST^CT chest\r"                                                                 \
    "ORC|NW|PL1002|FL2003||SC\r"                                                                             \
    "OBR|2|PL1002|FL2003|CTABD^CT abdomen|||\r"

/* ---- MLLP ----------------------------------------------------------------- */

/* Feeds `stream` in chunks of `chunk` bytes, collecting frames into `out`
 * separated by '#', LIMIT as "!". */
static void mllp_run(const char *stream, size_t len, size_t chunk, size_t max, char *out, size_t cap)
{
    mwl_mllp f;
    mwl_mllp_init(&f, max, NULL);
    size_t o = 0, pos = 0;
    out[0] = '\0';
    while (pos < len) {
        size_t n = len - pos < chunk ? len - pos : chunk, used = 0;
        const uint8_t *p;
        size_t pl;
        int rc = mwl_mllp_feed(&f, (const uint8_t *)stream + pos, n, &used, &p, &pl);
        CHECK(used <= n);
        if (rc == MWL_OK) {
            CHECK(used > 0);
            if (o + pl + 2 < cap) {
                memcpy(out + o, p, pl);
                o += pl;
                out[o++] = '#';
            }
        } else if (rc == MWL_E_LIMIT) {
            CHECK(used > 0);
            out[o++] = '!';
        } else {
            CHECK_EQ_INT(rc, MWL_AGAIN);
            CHECK_EQ_INT(used, n);
        }
        out[o] = '\0';
        pos += used;
    }
    mwl_mllp_clear(&f);
}

static void test_mllp(void)
{
    static const struct {
        const char *in;
        size_t max;
        const char *want;
    } rows[] = {
        {"\x0b"
         "abc\x1c\r",
         100, "abc#"},
        {"\x0b"
         "abc\x1c\r\x0b"
         "de\x1c\r",
         100, "abc#de#"},
        {"noise\r\x0b"
         "abc\x1c\r",
         100, "abc#"}, /* resync */
        {"\x0b"
         "ab\x0b"
         "cd\x1c\r",
         100, "cd#"}, /* restart inside a frame */
        {"\x0b"
         "abc\x1c\x0b"
         "de\x1c",
         100, "abc#de#"},         /* no CR after 0x1C */
        {"\x0b\x1c\r", 100, "#"}, /* empty frame */
        {"\x0b"
         "abcdef\x1c\r\x0b"
         "ab\x1c\r",
         4, "!ab#"}, /* oversize once, then the next */
        {"\x0b"
         "abcd\x1c\r",
         4, "abcd#"}, /* exactly max */
        {"\x1c\r\x0b"
         "x\x1c\r\r\r",
         4, "x#"}, /* stray end block and CRs */
        {"\x0b"
         "abc",
         100, ""}, /* unfinished */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t len = strlen(rows[i].in);
        for (size_t chunk = 1; chunk <= len; chunk++) {
            char got[256];
            mllp_run(rows[i].in, len, chunk, rows[i].max, got, sizeof got);
            if (strcmp(got, rows[i].want) != 0)
                fprintf(stderr, "  row %zu chunk %zu: \"%s\"\n", i, chunk, got);
            CHECK_EQ_STR(got, rows[i].want);
        }
    }

    /* The CR after the end block, in the next call, is not resync noise
     * that hides anything, and partial() tells an open frame. */
    mwl_mllp f;
    mwl_mllp_init(&f, 100, NULL);
    const uint8_t *p;
    size_t pl, used;
    CHECK_EQ_INT(mwl_mllp_feed(&f, (const uint8_t *)"\x0bxy", 3, &used, &p, &pl), MWL_AGAIN);
    CHECK(mwl_mllp_partial(&f));
    CHECK_EQ_INT(mwl_mllp_feed(&f, (const uint8_t *)"\x1c", 1, &used, &p, &pl), MWL_OK);
    CHECK_EQ_MEM(p, pl, "xy", 2);
    CHECK(!mwl_mllp_partial(&f));
    CHECK_EQ_INT(mwl_mllp_feed(&f, (const uint8_t *)"\r\x0bz\x1c\r", 5, &used, &p, &pl), MWL_OK);
    CHECK_EQ_INT(used, 5);
    CHECK_EQ_MEM(p, pl, "z", 1);
    mwl_mllp_clear(&f);
    mwl_mllp_clear(NULL);

    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_mllp_wrap("MSH", 3, &w);
    CHECK_EQ_MEM(w.data, w.len, "\x0bMSH\x1c\r", 6);
    mwl_wbuf_clear(&w);
}

/* ---- parsing ---------------------------------------------------------------- */

static void test_basic(void)
{
    mwl_hl7_msg *m = parse(ORM);
    if (!m)
        return;
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    CHECK_EQ_STR(h->sending_application, "RIS");
    CHECK_EQ_STR(h->receiving_facility, "MWLSRV");
    CHECK_EQ_STR(h->message_type, "ORM");
    CHECK_EQ_STR(h->trigger_event, "O01");
    CHECK_EQ_STR(h->structure, "");
    CHECK_EQ_STR(h->control_id, "MSG00042");
    CHECK_EQ_STR(h->version, "2.3.1");
    CHECK_EQ_STR(h->charset, "");
    CHECK(h->field_sep == '|' && h->component_sep == '^' && h->repetition_sep == '~' &&
          h->escape_char == '\\' && h->subcomponent_sep == '&');
    CHECK_EQ_STR(mwl_hl7_dicom_charset(m), "ISO_IR 100"); /* the default, 8859/1 */
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 7);
    CHECK_EQ_STR(mwl_hl7_seg_name(mwl_hl7_segment_at(m, 0)), "MSH");
    CHECK(mwl_hl7_segment_at(m, 7) == NULL);

    /* MSH-1, MSH-2 literally */
    const mwl_hl7_seg *msh = mwl_hl7_segment_at(m, 0);
    const char *v;
    CHECK_EQ_INT(mwl_hl7_get(m, msh, 1, 1, 1, 1, &v), MWL_HL7_VALUE);
    CHECK_EQ_STR(v, "|");
    CHECK_EQ_INT(mwl_hl7_get(m, msh, 2, 1, 1, 1, &v), MWL_HL7_VALUE);
    CHECK_EQ_STR(v, "^~\\&");
    CHECK_EQ_INT(mwl_hl7_get(m, msh, 2, 1, 2, 1, &v), MWL_HL7_ABSENT);
    CHECK_EQ_INT(mwl_hl7_reps(m, msh, 2), 1);
    CHECK_EQ_STR(value(m, "MSH", 3, 1, 1, 1), "RIS");
    CHECK_EQ_STR(value(m, "MSH", 12, 1, 1, 1), "2.3.1");

    /* field, repetition, component, sub-component */
    CHECK_EQ_STR(value(m, "PID", 3, 1, 1, 1), "PAT123");
    CHECK_EQ_STR(value(m, "PID", 3, 1, 4, 1), "HOSP");
    CHECK_EQ_STR(value(m, "PID", 3, 1, 4, 2), "1.2.3.4.5");
    CHECK_EQ_STR(value(m, "PID", 3, 1, 4, 3), "ISO");
    CHECK_EQ_INT(presence(m, "PID", 3, 1, 5), MWL_HL7_ABSENT);
    CHECK_EQ_STR(value(m, "PID", 3, 2, 1, 1), "OTHER");
    CHECK_EQ_STR(value(m, "PID", 3, 2, 4, 1), "X");
    CHECK_EQ_INT(presence(m, "PID", 3, 3, 1), MWL_HL7_ABSENT);
    CHECK_EQ_INT(mwl_hl7_reps(m, mwl_hl7_find(m, "PID", 0, NULL), 3), 2);
    CHECK_EQ_INT(mwl_hl7_reps(m, mwl_hl7_find(m, "PID", 0, NULL), 2), 0);
    CHECK_EQ_INT(mwl_hl7_reps(m, mwl_hl7_find(m, "PID", 0, NULL), 99), 0);
    CHECK_EQ_STR(value(m, "PID", 5, 1, 2, 1), "ANNA");
    CHECK_EQ_STR(value(m, "PID", 8, 1, 1, 1), "F");
    CHECK_EQ_INT(presence(m, "PID", 9, 1, 1), MWL_HL7_ABSENT); /* missing trailing field */
    CHECK_EQ_INT(presence(m, "PID", 0, 1, 1), MWL_HL7_ABSENT);
    CHECK_EQ_INT(presence(m, "PID", 3, 0, 1), MWL_HL7_ABSENT);
    CHECK_EQ_STR(mwl_hl7_raw_field(m, mwl_hl7_find(m, "PID", 0, NULL), 3),
                 "PAT123^^^HOSP&1.2.3.4.5&ISO~OTHER^^^X");
    CHECK_EQ_STR(mwl_hl7_raw_field(m, mwl_hl7_find(m, "PID", 0, NULL), 30), "");

    /* find and seq */
    size_t idx = 0;
    const mwl_hl7_seg *orc = mwl_hl7_find(m, "ORC", 0, &idx);
    CHECK_EQ_INT(idx, 3);
    CHECK_EQ_INT(mwl_hl7_seg_seq(orc), 1);
    orc = mwl_hl7_find(m, "ORC", idx + 1, &idx);
    CHECK_EQ_INT(idx, 5);
    CHECK_EQ_INT(mwl_hl7_seg_seq(orc), 2);
    CHECK(mwl_hl7_find(m, "ORC", idx + 1, &idx) == NULL);
    CHECK(mwl_hl7_find(m, "ZDS", 0, NULL) == NULL);
    const mwl_hl7_seg *obr2 = mwl_hl7_segment_at(m, 6);
    CHECK_EQ_INT(mwl_hl7_seg_seq(obr2), 2);
    const char *v2;
    CHECK_EQ_INT(mwl_hl7_get(m, obr2, 4, 1, 2, 1, &v2), MWL_HL7_VALUE);
    CHECK_EQ_STR(v2, "CT abdomen");
    CHECK_EQ_INT(mwl_hl7_get(m, obr2, 7, 1, 1, 1, &v2), MWL_HL7_ABSENT); /* trailing separators */
}

static void test_terminators(void)
{
    /* CR LF counts as one; blank lines are skipped */
    mwl_hl7_msg *m = parse("MSH|^~\\&|A||||||ADT^A08|1|P|2.5\r\nEVN||x\r\n\r\nPID|||7\r\n");
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 3);
    CHECK_EQ_STR(value(m, "PID", 3, 1, 1, 1), "7");
    /* no CR at all: split at LF */
    m = parse("MSH|^~\\&|A||||||ADT^A08|1|P|2.5\nEVN||x\n\nPID|||7\n");
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 3);
    CHECK_EQ_STR(value(m, "PID", 3, 1, 1, 1), "7");
    /* with CRs, a lone LF is data */
    m = parse("MSH|^~\\&|A||||||ORM^O01|1|P|2.3.1\rNTE|||line 1\nline 2\r");
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 2);
    CHECK_EQ_STR(value(m, "NTE", 3, 1, 1, 1), "line 1\nline 2");
    /* no terminator at the end, leading CR LF */
    m = parse("\r\nMSH|^~\\&|A||||||ORM^O01|1|P|2.3.1\rPID|||9");
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 2);
    CHECK_EQ_STR(value(m, "PID", 3, 1, 1, 1), "9");
    /* other delimiters, with a truncation character */
    m = parse("MSH#*@!$%#A#B#####ORM*O01#1#P#2.7\rPID###X*Y$Z@W!F!\r");
    CHECK_EQ_STR(value(m, "PID", 3, 1, 2, 2), "Z");
    CHECK_EQ_STR(value(m, "PID", 3, 2, 1, 1), "W#");
    CHECK_EQ_STR(mwl_hl7_header(m)->trigger_event, "O01");
    CHECK_EQ_STR(value(m, "MSH", 2, 1, 1, 1), "*@!$%");
}

static void test_escapes(void)
{
    mwl_hl7_msg *m = parse("MSH|^~\\&|A||||||ORM^O01|1|P|2.3.1||||||8859/1\r"
                           "NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\r"
                           "NTE|2||x\\.br\\y\\H\\bold\\N\\\\.sp 2\\z\r"
                           "NTE|3||\\X0D0A\\|\\XE9\\t\\XZZ\\!\\X00\\0\r"
                           "NTE|4||\\Q\\ \\Zlocal\\ \\C2842\\\\M2442\\ \\.zz\\ end\\open\r"
                           "NTE|5||\"\"|\\H\\|\"\"^b|\"x\"\r"
                           "NTE|6||\\P\\\r");
    CHECK_EQ_STR(value(m, "NTE", 3, 1, 1, 1), "a|b^c&d~e\\f");
    const mwl_hl7_seg *s = mwl_hl7_segment_at(m, 2);
    const char *v;
    mwl_hl7_get(m, s, 3, 1, 1, 1, &v);
    CHECK_EQ_STR(v, "x\r\nyboldz");
    s = mwl_hl7_segment_at(m, 3);
    mwl_hl7_get(m, s, 3, 1, 1, 1, &v);
    CHECK_EQ_STR(v, "\r\n");
    mwl_hl7_get(m, s, 4, 1, 1, 1, &v);
    CHECK_EQ_STR(v, "\xc3\xa9t!0"); /* \XE9\ in Latin-1; bad hex and NUL dropped */
    s = mwl_hl7_segment_at(m, 4);
    mwl_hl7_get(m, s, 3, 1, 1, 1, &v);
    CHECK_EQ_STR(v, "\\Q\\   \\.zz\\ end\\open"); /* unknown and unterminated kept */
    s = mwl_hl7_segment_at(m, 5);
    CHECK_EQ_INT(mwl_hl7_get(m, s, 3, 1, 1, 1, &v), MWL_HL7_NULL);
    CHECK_EQ_STR(v, "");
    CHECK_EQ_INT(mwl_hl7_get(m, s, 4, 1, 1, 1, &v), MWL_HL7_ABSENT); /* \H\ alone */
    CHECK_EQ_INT(mwl_hl7_get(m, s, 5, 1, 1, 1, &v), MWL_HL7_NULL);   /* "" in component 1 */
    CHECK_EQ_INT(mwl_hl7_get(m, s, 5, 1, 2, 1, &v), MWL_HL7_VALUE);
    CHECK_EQ_INT(mwl_hl7_get(m, s, 6, 1, 1, 1, &v), MWL_HL7_VALUE);
    CHECK_EQ_STR(v, "\"x\"");
    s = mwl_hl7_segment_at(m, 6);
    mwl_hl7_get(m, s, 3, 1, 1, 1, &v);
    CHECK_EQ_STR(v, "\\P\\"); /* no truncation character before 2.7 */

    /* \X..\ in UTF-8 must be UTF-8; invalid bytes are dropped */
    m = parse("MSH|^~\\&|A||||||ORM^O01|1|P|2.5.1||||||UNICODE UTF-8\rNTE|||a\\XC3A9\\b\\XC3\\c\\XFF\\d\r");
    CHECK_EQ_STR(value(m, "NTE", 3, 1, 1, 1), "a\xc3\xa9"
                                              "bcd");
    CHECK_EQ_STR(mwl_hl7_dicom_charset(m), "ISO_IR 192");
}

static void test_charsets(void)
{
    /* Latin-1 with MSH-18 empty: the default */
    mwl_hl7_msg *m = parse("MSH|^~\\&|A||||||ADT^A08|1|P|2.3.1\rPID|||1||M\xdcLLER^J\xd6RG\r");
    CHECK_EQ_STR(value(m, "PID", 5, 1, 1, 1), "M\xc3\x9cLLER");
    CHECK_EQ_STR(value(m, "PID", 5, 1, 2, 1), "J\xc3\x96RG");

    /* the default as an option */
    mwl_hl7_parse_options opt = {.default_charset = "UNICODE UTF-8"};
    const char *utf8 = "MSH|^~\\&|A||||||ADT^A08|1|P|2.3.1\rPID|||1||M\xc3\x9cLLER\r";
    m = parse_opt(utf8, strlen(utf8), &opt, MWL_OK, NULL);
    CHECK_EQ_STR(value(m, "PID", 5, 1, 1, 1), "M\xc3\x9cLLER");
    opt.default_charset = "ASCII";
    mwl_hl7_error e;
    m = parse_opt(utf8, strlen(utf8), &opt, MWL_E_CHARSET, &e);
    CHECK(m != NULL); /* the MSH, for the ACK */
    CHECK_EQ_STR(mwl_hl7_header(m)->control_id, "1");
    CHECK_EQ_INT(e.ack, MWL_HL7_AE);
    CHECK_EQ_INT(e.code, MWL_HL7_ERR_DATA_TYPE);
    CHECK_EQ_STR(e.segment, "PID");
    CHECK_EQ_INT(e.seq, 1);

    /* invalid UTF-8, in the second PID */
    const char *bad = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||UNICODE UTF-8\rPID|||1\rPID|||\xc3(\r";
    m = parse_opt(bad, strlen(bad), NULL, MWL_E_CHARSET, &e);
    CHECK_EQ_STR(e.segment, "PID");
    CHECK_EQ_INT(e.seq, 2);
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 1);

    /* ISO IR87: JIS X 0208 bytes equal '|' '^' '\' in two-byte mode.
     * 0x7C21 is not assigned, so use 0x305E (=U+6021... any kanji) with
     * a '^' second byte: 0x30 0x5E. */
    const char *jp = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||ISO IR87\r"
                     "PID|||1||\x1b$B\x30\x5e\x24\x5c\x1b(B^TARO\r";
    m = parse_opt(jp, strlen(jp), NULL, MWL_OK, NULL);
    CHECK_EQ_STR(mwl_hl7_dicom_charset(m), "ISO 2022 IR 87");
    CHECK_EQ_STR(value(m, "PID", 5, 1, 2, 1), "TARO");
    CHECK(strlen(value(m, "PID", 5, 1, 1, 1)) == 6); /* two kanji/kana, 3 bytes each */

    /* JAHIS: MSH-18 "~ISO IR87" (ASCII first, the code extension named
     * after it), and a Japanese RIS that names no set at all: both read
     * as ISO 2022 JP. */
    const char *jahis = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||~ISO IR87||ISO 2022-1994\r"
                        "PID|||1||\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B\r";
    m = parse_opt(jahis, strlen(jahis), NULL, MWL_OK, NULL);
    CHECK_EQ_STR(value(m, "PID", 5, 1, 1, 1), "\xe5\xb1\xb1\xe7\x94\xb0"); /* 山田 */
    CHECK_EQ_STR(value(m, "PID", 5, 1, 2, 1), "\xe5\xa4\xaa\xe9\x83\x8e"); /* 太郎 */
    const char *unnamed = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5\rPID|||1||\x1b$B;3ED\x1b(B\r";
    m = parse_opt(unnamed, strlen(unnamed), NULL, MWL_OK, NULL);
    CHECK_EQ_STR(value(m, "PID", 5, 1, 1, 1), "\xe5\xb1\xb1\xe7\x94\xb0");

    /* ISO IR14: half-width katakana, '\' stays the escape character */
    const char *kana = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||ISO IR14\rPID|||1||\xb1\\S\\\xb2\r";
    m = parse_opt(kana, strlen(kana), NULL, MWL_OK, NULL);
    CHECK_EQ_STR(value(m, "PID", 5, 1, 1, 1), "\xef\xbd\xb1^\xef\xbd\xb2");

    /* unknown and unsupported MSH-18 */
    const char *unk = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||KLINGON\rPID|||1\r";
    m = parse_opt(unk, strlen(unk), NULL, MWL_E_CHARSET, &e);
    CHECK_EQ_INT(e.code, MWL_HL7_ERR_TABLE_VALUE);
    CHECK_EQ_INT(e.field, 18);
    CHECK(m != NULL);
    const char *u16 = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||UNICODE UTF-16~8859/1\rPID|||1\r";
    m = parse_opt(u16, strlen(u16), NULL, MWL_E_CHARSET, &e);
    CHECK_EQ_INT(e.ack, MWL_HL7_AR);
    /* the first repetition counts, case and separators do not */
    const char *rep = "MSH|^~\\&|A||||||ADT^A08|1|P|2.5||||||8859-15~UNICODE UTF-8\rPID|||\xa4\r";
    m = parse_opt(rep, strlen(rep), NULL, MWL_OK, NULL);
    CHECK_EQ_STR(value(m, "PID", 3, 1, 1, 1), "\xe2\x82\xac");
    CHECK_EQ_STR(mwl_hl7_header(m)->charset, "8859-15");
}

static void test_errors(void)
{
    mwl_hl7_error e;
    const char *t;
    parse_opt("", 0, NULL, MWL_E_MALFORMED, &e);
    CHECK_EQ_INT(e.ack, MWL_HL7_AR);
    t = "PID|||1\r";
    CHECK(parse_opt(t, strlen(t), NULL, MWL_E_MALFORMED, &e) == NULL);
    t = "MSH|^~\r";
    CHECK(parse_opt(t, strlen(t), NULL, MWL_E_MALFORMED, &e) == NULL);
    t = "MSH|^~\\^|A\r";
    CHECK(parse_opt(t, strlen(t), NULL, MWL_E_MALFORMED, &e) == NULL);
    t = "MSHA^~\\&|A\r";
    CHECK(parse_opt(t, strlen(t), NULL, MWL_E_MALFORMED, &e) == NULL);

    /* a bad segment name: AE 100, the MSH kept */
    t = "MSH|^~\\&|A||||||ADT^A08|C1|P|2.5\rPID|||1\rpv1|x\r";
    mwl_hl7_msg *m = parse_opt(t, strlen(t), NULL, MWL_E_MALFORMED, &e);
    CHECK_EQ_INT(e.ack, MWL_HL7_AE);
    CHECK_EQ_INT(e.code, MWL_HL7_ERR_SEGMENT_SEQUENCE);
    CHECK(strstr(e.text, "segment 3") != NULL);
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 1);
    CHECK_EQ_STR(mwl_hl7_header(m)->control_id, "C1");
    t = "MSH|^~\\&|A||||||ADT^A08|C1|P|2.5\rPIDX|1\r";
    parse_opt(t, strlen(t), NULL, MWL_E_MALFORMED, &e);

    /* limits: segments, fields, repetitions */
    mwl_hl7_parse_options opt = {.max_segments = 2};
    t = "MSH|^~\\&|A||||||ADT^A08|C1|P|2.5\rPID|||1\rPV1|\r";
    m = parse_opt(t, strlen(t), &opt, MWL_E_LIMIT, &e);
    CHECK_EQ_INT(mwl_hl7_segment_count(m), 1);
    char big[8192];
    strcpy(big, "MSH|^~\\&|A||||||ADT^A08|C1|P|2.5\rNTE");
    size_t n = strlen(big);
    memset(big + n, '|', 1001);
    big[n + 1001] = '\0';
    parse_opt(big, strlen(big), NULL, MWL_E_LIMIT, &e);
    big[n + 1000] = '\0';
    parse_opt(big, strlen(big), NULL, MWL_OK, &e);
    strcpy(big + n, "|");
    memset(big + n + 1, '~', 1000);
    big[n + 1001] = '\0';
    parse_opt(big, strlen(big), NULL, MWL_E_LIMIT, &e);
    big[n + 1000] = '\0';
    m = parse_opt(big, strlen(big), NULL, MWL_OK, &e);
    CHECK_EQ_INT(mwl_hl7_reps(m, mwl_hl7_find(m, "NTE", 0, NULL), 1), 1000);

    /* error_set */
    mwl_hl7_error_set(&e, MWL_HL7_AE, 101, "PIDX", 2, 3, 4, "missing %s", "ID");
    CHECK_EQ_STR(e.segment, "PID");
    CHECK_EQ_STR(e.text, "missing ID");
    CHECK(e.seq == 2 && e.field == 3 && e.component == 4);
    char longtext[400];
    memset(longtext, 'a', sizeof longtext);
    memcpy(longtext + 159, "\xc3\xa9", 2); /* cut inside: dropped whole */
    longtext[399] = '\0';
    mwl_hl7_error_set(&e, MWL_HL7_AE, 101, "PID", 1, 3, 0, "%s", longtext + 1);
    CHECK_EQ_INT(strlen(e.text), 158);
    mwl_hl7_error_set(NULL, MWL_HL7_AE, 101, "PID", 1, 3, 0, "x");
}

/* ---- acknowledgements ------------------------------------------------------- */

static void ack_of(const char *msg, const mwl_hl7_error *err, const char *want)
{
    mwl_hl7_msg *m = msg ? parse(msg) : NULL;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_hl7_ack_build(m, err, "MWL000001", "20250301101501", &w);
    CHECK_EQ_INT(w.status, MWL_OK);
    if (w.len != strlen(want) || memcmp(w.data, want, w.len) != 0)
        fprintf(stderr, "  got  %.*s\n  want %s\n", (int)w.len, (const char *)w.data, want);
    CHECK_EQ_MEM(w.data, w.len, want, strlen(want));
    mwl_wbuf_clear(&w);
}

static void test_ack(void)
{
    const char *omi = "MSH|^~\\&|RIS|RADDEPT|MWL|MWLSRV|20250301101500||OMI^O23^OMI_O23|MSG00042|P|2.5.1\r"
                      "PID|||1\r";
    ack_of(omi, NULL,
           "MSH|^~\\&|MWL|MWLSRV|RIS|RADDEPT|20250301101501||ACK^O23^ACK|MWL000001|P|2.5.1\r"
           "MSA|AA|MSG00042\r");
    mwl_hl7_error e;
    mwl_hl7_error_set(&e, MWL_HL7_AE, MWL_HL7_ERR_REQUIRED_MISSING, "IPC", 1, 3, 0,
                      "Missing Study Instance UID");
    ack_of(omi, &e,
           "MSH|^~\\&|MWL|MWLSRV|RIS|RADDEPT|20250301101501||ACK^O23^ACK|MWL000001|P|2.5.1\r"
           "MSA|AE|MSG00042\r"
           "ERR||IPC^1^3|101^Required field missing^HL70357|E||||Missing Study Instance UID\r");
    mwl_hl7_error_set(&e, MWL_HL7_AE, MWL_HL7_ERR_DATA_TYPE, "TQ1", 1, 7, 1, "bad date|time^x");
    ack_of(omi, &e,
           "MSH|^~\\&|MWL|MWLSRV|RIS|RADDEPT|20250301101501||ACK^O23^ACK|MWL000001|P|2.5.1\r"
           "MSA|AE|MSG00042\r"
           "ERR||TQ1^1^7^^1|102^Data type error^HL70357|E||||bad date\\F\\time\\S\\x\r");

    const char *orm = "MSH|^~\\&|RIS^1.2^ISO|RAD|MWL|SRV|20250301101500||ORM^O01|M\\T\\1|T|2.3.1\rPID|||1\r";
    mwl_hl7_error_set(&e, MWL_HL7_AE, MWL_HL7_ERR_REQUIRED_MISSING, "PID", 1, 3, 0, "Patient ID missing");
    ack_of(orm, &e,
           "MSH|^~\\&|MWL|SRV|RIS^1.2^ISO|RAD|20250301101501||ACK^O01|MWL000001|T|2.3.1\r"
           "MSA|AE|M\\T\\1|Patient ID missing\r"
           "ERR|PID^1^3^101&Patient ID missing&HL70357\r");
    mwl_hl7_error_set(&e, MWL_HL7_AR, MWL_HL7_ERR_MESSAGE_TYPE, "", 0, 0, 0, "M\xc3\xbc");
    ack_of(orm, &e,
           "MSH|^~\\&|MWL|SRV|RIS^1.2^ISO|RAD|20250301101501||ACK^O01|MWL000001|T|2.3.1||||||UNICODE UTF-8\r"
           "MSA|AR|M\\T\\1|M\xc3\xbc\r"
           "ERR|^^^200&M\xc3\xbc&HL70357\r");
    /* no original at all */
    mwl_hl7_error_set(&e, MWL_HL7_AR, MWL_HL7_ERR_SEGMENT_SEQUENCE, "", 0, 0, 0, "no MSH");
    ack_of(NULL, &e,
           "MSH|^~\\&|||||20250301101501||ACK^^ACK|MWL000001|P|2.5.1\r"
           "MSA|AR|\r"
           "ERR|||100^Segment sequence error^HL70357|E||||no MSH\r");
}

/* ack_build then ack_read gives back the code, control ID and text, in
 * both ERR forms, with delimiters in the text and the control ID. */
static void test_ack_round_trip(void)
{
    static const char *const versions[] = {"2.3", "2.3.1", "2.4", "2.5.1", "2.8", ""};
    static const mwl_hl7_ack_code codes[] = {MWL_HL7_AA, MWL_HL7_AE, MWL_HL7_AR};
    for (size_t vi = 0; vi < sizeof versions / sizeof versions[0]; vi++) {
        for (size_t ci = 0; ci < 3; ci++) {
            char msg[256];
            snprintf(msg, sizeof msg, "MSH|^~\\&|RIS||||20250301||ORM^O01|C\\F\\1~2|P|%s\rPID|||1\r",
                     versions[vi]);
            mwl_hl7_msg *m = parse(msg);
            mwl_hl7_error e;
            mwl_hl7_error_set(&e, codes[ci], 101, "OBR", 2, 18, 0, "Acc|ession ^&~\\ mi\xc3\x9fing");
            mwl_wbuf w;
            mwl_wbuf_init(&w, NULL);
            mwl_hl7_ack_build(m, &e, "X1", "20250301", &w);
            char code[3], ctl[64], text[200];
            CHECK_EQ_INT(mwl_hl7_ack_read(w.data, w.len, code, ctl, sizeof ctl, text, sizeof text), MWL_OK);
            static const char *const names[] = {"AA", "AE", "AR"};
            CHECK_EQ_STR(code, names[ci]);
            CHECK_EQ_STR(ctl, "C|1");
            CHECK_EQ_STR(text, ci == 0 ? "" : "Acc|ession ^&~\\ mi\xc3\x9fing");
            /* small buffers cut, at a character boundary */
            if (ci) {
                char small[20];
                CHECK_EQ_INT(mwl_hl7_ack_read(w.data, w.len, code, ctl, 1, small, sizeof small), MWL_OK);
                CHECK_EQ_STR(ctl, "");
                CHECK_EQ_STR(small, "Acc|ession ^&~\\ mi");
            }
            mwl_wbuf_clear(&w);
        }
    }
    /* a control ID that really is two double quotes, and '-' as a
     * delimiter with non-ASCII text (MSH-18 then says UNICODE) */
    {
        const char *q = "MSH|^-\\&|R||||||ORM^O01|\\X22\\\"|P|2.3.1\r";
        mwl_hl7_msg *m = parse(q);
        CHECK_EQ_STR(mwl_hl7_header(m)->control_id, "\"\"");
        mwl_hl7_error e;
        mwl_hl7_error_set(&e, MWL_HL7_AE, 101, "PID", 1, 3, 0, "\xc3\xa9-");
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        mwl_hl7_ack_build(m, &e, "X", "2025", &w);
        char code[3], ctl[8], text[8];
        CHECK_EQ_INT(mwl_hl7_ack_read(w.data, w.len, code, ctl, sizeof ctl, text, sizeof text), MWL_OK);
        CHECK_EQ_STR(ctl, "\"\"");
        CHECK_EQ_STR(text, "\xc3\xa9-");
        mwl_wbuf_clear(&w);
    }
    char code[3], ctl[8], text[8];
    CHECK_EQ_INT(mwl_hl7_ack_read((const uint8_t *)"junk", 4, code, ctl, sizeof ctl, text, sizeof text),
                 MWL_E_MALFORMED);
    const char *foreign = "MSH|^~\\&|X||||||ACK|9|P|2.3.1\rMSA|CA|42\r";
    CHECK_EQ_INT(
        mwl_hl7_ack_read((const uint8_t *)foreign, strlen(foreign), code, ctl, sizeof ctl, text, sizeof text),
        MWL_OK);
    CHECK_EQ_STR(code, "CA");
    CHECK_EQ_STR(ctl, "42");
    CHECK_EQ_STR(text, "");
}

int main(void)
{
    mwl_arena_init(&arena, NULL);
    RUN_TEST(test_mllp);
    RUN_TEST(test_basic);
    RUN_TEST(test_terminators);
    RUN_TEST(test_escapes);
    RUN_TEST(test_charsets);
    RUN_TEST(test_errors);
    RUN_TEST(test_ack);
    RUN_TEST(test_ack_round_trip);
    mwl_arena_clear(&arena);
    return check_report("hl7_parse_test");
}
