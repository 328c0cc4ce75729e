/* Tests for dicom/charset.c: the person name examples of PS3.5 Annexes H,
 * I, J and K byte for byte, one name per single-byte character set, error
 * cases, every truncation of the multi-byte vectors, inheritance of
 * (0008,0005) into sequence items, and concurrent use from threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/charset.h"

/* ---- helpers ------------------------------------------------------------- */

static int parse(const char *scs, mwl_charset *cs)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    int rc = mwl_charset_parse(scs, strlen(scs), cs, &d);
    if (rc != MWL_OK)
        fprintf(stderr, "parse \"%s\": %s (%s)\n", scs, mwl_status_str(rc), d.msg);
    return rc;
}

/* Decodes `len` bytes; on success *out holds a malloc'd NUL-terminated copy. */
static int decode(const char *scs, mwl_vr vr, const void *in, size_t len, char **out, mwl_diag *diag)
{
    mwl_charset cs;
    int rc = parse(scs, &cs);
    if (rc != MWL_OK)
        return rc;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    rc = mwl_charset_decode(&cs, vr, in, len, &w, diag);
    if (rc == MWL_OK && out) {
        *out = malloc(w.len + 1);
        memcpy(*out, w.data ? (const char *)w.data : "", w.len);
        (*out)[w.len] = '\0';
    }
    mwl_wbuf_clear(&w);
    return rc;
}

static int encode(const char *scs, mwl_vr vr, const char *utf8, size_t len, mwl_wbuf *w, mwl_diag *diag)
{
    mwl_charset cs;
    int rc = parse(scs, &cs);
    if (rc != MWL_OK)
        return rc;
    return mwl_charset_encode(&cs, vr, utf8, len, w, diag);
}

/* ---- vectors ------------------------------------------------------------- */

typedef struct vector {
    const char *name;
    const char *scs; /* (0008,0005) */
    mwl_vr vr;
    const char *bytes; /* encoded value */
    size_t len;
    const char *utf8;
    bool round_trip; /* encoding utf8 gives exactly `bytes` */
} vector;

#define B(s) s, sizeof(s) - 1

static const vector vectors[] = {
    /* PS3.5 H.3.1, Example H.3-1 (also pydicom chrH31.dcm). */
    {"H.3-1 Japanese, ISO 2022 IR 87", "\\ISO 2022 IR 87", MWL_VR_PN,
     B("Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"),
     "Yamada^Tarou=山田^太郎=やまだ^たろう", true},
    /* PS3.5 H.3.2, Example H.3-2: half-width katakana in G1 without an
     * escape, and ESC ( J back to JIS X 0201 romaji (chrH32.dcm). */
    {"H.3-2 Japanese, ISO 2022 IR 13 + IR 87", "ISO 2022 IR 13\\ISO 2022 IR 87", MWL_VR_PN,
     B("\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b("
       "J"),
     "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", true},
    /* PS3.5 I.2, Example I.2-1 (chrI2.dcm): ESC $ ) C before each run. */
    {"I.2 Korean, ISO 2022 IR 149", "\\ISO 2022 IR 149", MWL_VR_PN,
     B("Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf"),
     "Hong^Gildong=洪^吉洞=홍^길동", true},
    /* PS3.5 J.1: UTF-8. */
    {"J.1 Chinese, ISO_IR 192", "ISO_IR 192", MWL_VR_PN,
     B("Wang^XiaoDong=\xe7\x8e\x8b^\xe5\xb0\x8f\xe6\x9d\xb1="), "Wang^XiaoDong=王^小東=", true},
    /* PS3.5 J.3: GB18030. */
    {"J.3 Chinese, GB18030", "GB18030", MWL_VR_PN, B("Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab="),
     "Wang^XiaoDong=王^小东=", true},
    /* PS3.5 K.2, Example K.2-1: GB 2312 in G1, the value padded to even
     * length with a space. */
    {"K.2 Chinese, ISO 2022 IR 58", "\\ISO 2022 IR 58", MWL_VR_PN,
     B("Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab= "), "Zhang^XiaoDong=张^小东= ", true},
    /* PS3.5 K.3, Example K.3-1 (LT): the example switches G0 back to ASCII
     * before CR LF although G0 never left it; decoders must accept that,
     * our encoder leaves the redundant escape out. */
    {"K.3 Chinese LT, ISO 2022 IR 58", "\\ISO 2022 IR 58", MWL_VR_LT,
     B("1.\x1b$)A\xb5\xda\xd2\xbb\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\x1b(B\r\n"
       "2.\x1b$)A\xb5\xda\xb6\xfe\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\x1b(B\r\n"
       "3.\x1b$)A\xb5\xda\xc8\xfd\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\x1b(B\r\n "),
     "1.第一行文字。\r\n2.第二行文字。\r\n3.第三行文字。\r\n ", false},
    {"K.3 Chinese LT, canonical form", "\\ISO 2022 IR 58", MWL_VR_LT,
     B("1.\x1b$)A\xb5\xda\xd2\xbb\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\r\n"
       "2.\x1b$)A\xb5\xda\xb6\xfe\xd0\xd0\xce\xc4\xd7\xd6\xa1\xa3\r\n"),
     "1.第一行文字。\r\n2.第二行文字。\r\n", true},
    /* Korean LT: the designation is needed again after each CR LF. */
    {"Korean LT, ISO 2022 IR 149", "\\ISO 2022 IR 149", MWL_VR_LT,
     B("The 1st line includes \x1b$)C\xb1\xe6\xb5\xbf.\r\nThe 2nd line includes \x1b$)C\xb1\xe6\xb5\xbf, "
       "too.\r\nThe 3rd line."),
     "The 1st line includes 길동.\r\nThe 2nd line includes 길동, too.\r\nThe 3rd line.", true},
    /* The same text as dcm4che writes it, designating at the start of the
     * line: decodes the same. */
    {"Korean LT, designation at line start", "\\ISO 2022 IR 149", MWL_VR_LT,
     B("\x1b$)CThe 1st line includes \xb1\xe6\xb5\xbf.\r\n\x1b$)CThe 2nd line includes \xb1\xe6\xb5\xbf, "
       "too.\r\nThe 3rd line."),
     "The 1st line includes 길동.\r\nThe 2nd line includes 길동, too.\r\nThe 3rd line.", false},
    /* JIS X 0212 (ISO 2022 IR 159) beside JIS X 0208; cross-checked with
     * Python's iso2022_jp_2. */
    {"JIS X 0212, ISO 2022 IR 159", "\\ISO 2022 IR 87\\ISO 2022 IR 159", MWL_VR_LO,
     B("\x1b$B;3ED\x1b$(D0!\x1b(B"), "山田丂", true},
    /* A JIS X 0208 character whose second byte is 5CH ('\'): not a value
     * delimiter while G0 holds the 2-byte set. */
    {"JIS X 0208 byte 5CH", "\\ISO 2022 IR 87", MWL_VR_LO, B("\x1b$B$\\\x1b(B\\\x1b$B%\\\x1b(B"), "ぼ\\ボ",
     true},
    /* Space inside a JIS X 0208 run is returned to ASCII by our encoder. */
    {"JIS X 0208 with spaces", "\\ISO 2022 IR 87", MWL_VR_LO, B("\x1b$B;3ED\x1b(B \x1b$BB@O:\x1b(B"),
     "山田 太郎", true},
    {"space kept in a 2-byte G0", "\\ISO 2022 IR 87", MWL_VR_LO, B("\x1b$B;3ED B@O:\x1b(B"), "山田 太郎",
     false},
    /* ISO_IR 13 alone: katakana in GR, no escapes. */
    {"JIS X 0201, ISO_IR 13", "ISO_IR 13", MWL_VR_PN, B("\xd4\xcf\xc0\xde^\xc0\xdb\xb3"), "ﾔﾏﾀﾞ^ﾀﾛｳ", true},
    /* ISO 2022 IR 149 as value 1: KS X 1001 is in G1 from the start. */
    {"ISO 2022 IR 149 as value 1", "ISO 2022 IR 149", MWL_VR_PN, B("Hong^\xfb\xf3"), "Hong^洪", true},
    /* JIS X 0201 romaji: 7EH read as '~' (see charset.c). */
    {"ISO_IR 13 romaji", "ISO_IR 13", MWL_VR_LO, B("a~b\xb1"), "a~bｱ", true},
    /* Single-byte sets (bytes cross-checked with Python's codecs; the Greek,
     * Cyrillic, Hebrew and Arabic names are David Clunie's test files). */
    {"Latin-1", "ISO_IR 100", MWL_VR_PN,
     B("M\xfcller^\xd8"
       "deg\xe5rd"),
     "Müller^Ødegård", true},
    {"Latin-2", "ISO_IR 101", MWL_VR_PN, B("Dvo\xf8\xe1k^\xa3ukasz"), "Dvořák^Łukasz", true},
    {"Latin-3", "ISO_IR 109", MWL_VR_PN,
     B("\xd5u\xbf"
       "eppi^\xa1"
       "al"),
     "Ġużeppi^Ħal", true},
    {"Latin-4", "ISO_IR 110", MWL_VR_PN, B("J\xe0nis^B\xbarzi\xf1\xb9"), "Jānis^Bērziņš", true},
    {"Greek", "ISO_IR 126", MWL_VR_PN, B("\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2"), "Διονυσιος", true},
    {"Cyrillic", "ISO_IR 144", MWL_VR_PN,
     B("\xbb\xee\xda"
       "ce\xdc\xd1yp\xd3"),
     "Люкceмбypг", true},
    {"Arabic", "ISO_IR 127", MWL_VR_PN, B("\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1"), "قباني^لنزار", true},
    {"Hebrew", "ISO_IR 138", MWL_VR_PN, B("\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4"), "שרון^דבורה", true},
    {"Latin-5", "ISO_IR 148", MWL_VR_PN, B("\xde\xfckr\xfc^\xd6zt\xfcrk"), "Şükrü^Öztürk", true},
    {"Latin-9", "ISO_IR 203", MWL_VR_LO, B("\xbcuvre \xa4"), "Œuvre €", true},
    {"Thai", "ISO_IR 166", MWL_VR_PN, B("\xca\xc1\xaa\xd2\xc2^\xe3\xa8\xb4\xd5"), "สมชาย^ใจดี", true},
    {"UTF-8", "ISO_IR 192", MWL_VR_PN, B("\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e"), "山田^太郎",
     true},
    /* GBK: 東 is not in GB 2312; 乗 has the trail byte 5CH, which must not
     * be taken for a delimiter. */
    {"GBK", "GBK", MWL_VR_PN, B("\xcd\xf5^\xd0\xa1\x96|\\\x81\\"), "王^小東\\乗", true},
    /* Code extensions between 96-sets: Greek designated for one component,
     * Latin-1 restored before the delimiter and at the end of the value. */
    {"ISO 2022 IR 100 + IR 126", "ISO 2022 IR 100\\ISO 2022 IR 126", MWL_VR_PN,
     B("M\xfcller\x1b-F\xc4\x1b-A^\xe9\x1b-F\xc4\x1b-A"), "MüllerΔ^éΔ", true},
    /* Latin-1 designated by escape when value 1 is empty. */
    {"\\ISO 2022 IR 100", "\\ISO 2022 IR 100", MWL_VR_PN, B("M\x1b-A\xfcller^J\x1b-A\xe9r\xf4me"),
     "Müller^Jérôme", true},
    /* Default repertoire: A0H-FFH read as ISO 8859-1 (see charset.c). */
    {"default repertoire, Latin-1 bytes", "", MWL_VR_PN, B("M\xfcller"), "Müller", false},
    {"default repertoire, ASCII", "", MWL_VR_LO, B("Doe^John\\Smith"), "Doe^John\\Smith", true},
};

static void test_vectors(void)
{
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        const vector *t = &vectors[v];
        int before = check_failures;
        char *got = NULL;
        mwl_diag d;
        mwl_diag_clear(&d);
        int rc = decode(t->scs, t->vr, t->bytes, t->len, &got, &d);
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc == MWL_OK)
            CHECK_EQ_STR(got, t->utf8);
        else
            fprintf(stderr, "  decode: %s at %zu\n", d.msg, d.offset);
        free(got);

        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        rc = encode(t->scs, t->vr, t->utf8, strlen(t->utf8), &w, &d);
        if (t->round_trip) {
            CHECK_EQ_INT(rc, MWL_OK);
            CHECK_EQ_MEM(w.data, w.len, t->bytes, t->len);
        } else if (rc == MWL_OK) {
            /* Not our canonical form, but what we write must read back. */
            got = NULL;
            CHECK_EQ_INT(decode(t->scs, t->vr, w.data, w.len, &got, NULL), MWL_OK);
            CHECK_EQ_STR(got, t->utf8);
            free(got);
        }
        mwl_wbuf_clear(&w);
        if (check_failures != before)
            fprintf(stderr, "  vector \"%s\"\n", t->name);
    }
}

/* Every strict prefix of every vector, decoded and (as UTF-8) encoded:
 * a clean MWL_E_CHARSET or valid output, never a crash (ASan/UBSan build). */
static void test_prefixes(void)
{
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        const vector *t = &vectors[v];
        mwl_charset cs;
        if (parse(t->scs, &cs) != MWL_OK)
            continue;
        for (size_t n = 0; n < t->len; n++) {
            /* An exact-size copy so that ASan catches reads past the end. */
            uint8_t *p = malloc(n ? n : 1);
            memcpy(p, t->bytes, n);
            mwl_wbuf w;
            mwl_wbuf_init(&w, NULL);
            int rc = mwl_charset_decode(&cs, t->vr, p, n, &w, NULL);
            CHECK(rc == MWL_OK || rc == MWL_E_CHARSET);
            if (rc == MWL_OK) {
                /* Valid output re-encodes, or fails cleanly. */
                mwl_wbuf e;
                mwl_wbuf_init(&e, NULL);
                rc = mwl_charset_encode(&cs, t->vr, (const char *)w.data, w.len, &e, NULL);
                CHECK(rc == MWL_OK || rc == MWL_E_CHARSET);
                mwl_wbuf_clear(&e);
            } else {
                CHECK_EQ_INT(w.len, 0); /* output untouched on error */
            }
            mwl_wbuf_clear(&w);
            free(p);
        }
        size_t ul = strlen(t->utf8);
        for (size_t n = 0; n < ul; n++) {
            char *p = malloc(n ? n : 1);
            memcpy(p, t->utf8, n);
            mwl_wbuf w;
            mwl_wbuf_init(&w, NULL);
            int rc = mwl_charset_encode(&cs, t->vr, p, n, &w, NULL);
            CHECK(rc == MWL_OK || rc == MWL_E_CHARSET);
            mwl_wbuf_clear(&w);
            free(p);
        }
    }
    /* A cut multi-byte character is an error, not silently dropped. */
    CHECK_EQ_INT(decode("\\ISO 2022 IR 87", MWL_VR_PN, B("\x1b$B;3E"), NULL, NULL), MWL_E_CHARSET);
    CHECK_EQ_INT(decode("ISO_IR 192", MWL_VR_PN, B("\xe5\xb1"), NULL, NULL), MWL_E_CHARSET);
    CHECK_EQ_INT(decode("GB18030", MWL_VR_PN, B("Wang\xcd"), NULL, NULL), MWL_E_CHARSET);
}

/* ---- errors ---------------------------------------------------------------- */

static void expect_decode_error(const char *scs, mwl_vr vr, const char *bytes, size_t len, size_t offset)
{
    mwl_diag d;
    mwl_diag_clear(&d);
    int rc = decode(scs, vr, bytes, len, NULL, &d);
    CHECK_EQ_INT(rc, MWL_E_CHARSET);
    CHECK_EQ_INT(d.offset, offset);
    CHECK(d.msg[0] != '\0');
}

static void test_decode_errors(void)
{
    /* Invalid UTF-8: a stray continuation, a bad trail, an overlong form,
     * a surrogate, beyond U+10FFFF, a truncated sequence. */
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("ab\x80"), 2);
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("a\xc3(b"), 1);
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("\xc0\x80"), 0);
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("x\xed\xa0\x80"), 1);
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("\xf4\x90\x80\x80"), 0);
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("ok\xe5\xb1"), 2);
    /* No code extensions in UTF-8/GB18030/GBK. */
    expect_decode_error("ISO_IR 192", MWL_VR_LO, B("a\x1b$Bb"), 1);
    expect_decode_error("GBK", MWL_VR_LO, B("a\x1b(B"), 1);
    /* A truncated 2-byte character in G1 and in G0. */
    expect_decode_error("\\ISO 2022 IR 149", MWL_VR_PN, B("Hong=\x1b$)C\xfb\xf3\xd1"), 11);
    expect_decode_error("\\ISO 2022 IR 149", MWL_VR_PN, B("\x1b$)C\xfb^\xf3"), 4);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("\x1b$B;3E\x1b(B"), 5);
    /* Unknown, invalid and truncated escape sequences. */
    expect_decode_error("\\ISO 2022 IR 149", MWL_VR_PN, B("ab\x1b$)Zcd"), 2);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("\x1b(Z"), 0);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN,
                        B("\x1b"
                          "A"),
                        0);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("ab\x1b$"), 2);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("\x1b"), 0);
    /* A known escape for a set that (0008,0005) does not list. */
    expect_decode_error("ISO_IR 100", MWL_VR_PN, B("x\x1b$B;3\x1b(B"), 1);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("\x1b$)C\xfb\xf3"), 0);
    expect_decode_error("", MWL_VR_PN, B("\x1b-A\xe9"), 0);
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("a\x1b(Jb"), 1);
    /* GR bytes without a G1 set: value 1 empty, or G1 forgotten at '^'. */
    expect_decode_error("\\ISO 2022 IR 87", MWL_VR_PN, B("Jos\xe9"), 3);
    expect_decode_error("\\ISO 2022 IR 149", MWL_VR_PN, B("\x1b$)C\xfb\xf3^\xd1\xce"), 7);
    /* C1 bytes, and code points that the set leaves undefined. */
    expect_decode_error("ISO_IR 100", MWL_VR_LO, B("x\x85y"), 1);
    expect_decode_error("", MWL_VR_LO, B("x\x96y"), 1);
    expect_decode_error("ISO_IR 126", MWL_VR_LO, B("ab\xaeg"), 2);
    expect_decode_error("ISO_IR 138", MWL_VR_LO, B("\xe0\xa1"), 1);
    expect_decode_error("ISO_IR 13", MWL_VR_LO, B("\xb1\xe0"), 1);
    expect_decode_error("\\ISO 2022 IR 149", MWL_VR_LO, B("\x1b$)C\xa1\xa0"), 4);
    expect_decode_error("\\ISO 2022 IR 58", MWL_VR_LO, B("\x1b$)A\xaa\xa1"), 4);
    /* ISO 2022 IR 6 alone is strict ASCII. */
    expect_decode_error("ISO 2022 IR 6", MWL_VR_LO, B("M\xfcller"), 1);
}

static void expect_encode_error(const char *scs, mwl_vr vr, const char *utf8, size_t offset)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_wbuf_put(&w, "keep", 4);
    mwl_diag d;
    mwl_diag_clear(&d);
    int rc = encode(scs, vr, utf8, strlen(utf8), &w, &d);
    CHECK_EQ_INT(rc, MWL_E_CHARSET);
    CHECK_EQ_INT(d.offset, offset);
    CHECK(d.msg[0] != '\0');
    CHECK_EQ_MEM(w.data, w.len, "keep", 4); /* nothing half-written */
    mwl_wbuf_clear(&w);
}

static void test_encode_errors(void)
{
    /* Characters that no listed set has: reported, never dropped. */
    expect_encode_error("ISO_IR 100", MWL_VR_PN, "Yamada^山田", 7);
    expect_encode_error("", MWL_VR_PN, "Müller", 1);
    expect_encode_error("ISO 2022 IR 6", MWL_VR_PN, "é", 0);
    expect_encode_error("\\ISO 2022 IR 87", MWL_VR_PN, "山田^홍", 7);
    expect_encode_error("\\ISO 2022 IR 149", MWL_VR_PN, "ｱ", 0);
    expect_encode_error("ISO_IR 13", MWL_VR_PN, "ｱ山", 3);
    expect_encode_error("GB18030", MWL_VR_PN, "ab\xc3", 2);
    expect_encode_error("GBK", MWL_VR_PN, "王^😀", 4);
    expect_encode_error("ISO_IR 126", MWL_VR_LO, "\xc2\x85", 0); /* C1 U+0085 */
    /* Without code extensions the second set is out of reach. */
    expect_encode_error("ISO_IR 100", MWL_VR_LO, "Δ", 0);
    /* Invalid UTF-8 input and ESC. */
    expect_encode_error("ISO_IR 192", MWL_VR_LO, "ab\xff", 2);
    expect_encode_error("ISO_IR 100", MWL_VR_LO, "a\xc3", 1);
    expect_encode_error("\\ISO 2022 IR 87", MWL_VR_LO, "a\x1b(Bb", 1);
    expect_encode_error("ISO_IR 192", MWL_VR_LO, "a\x1b", 1);
}

/* ---- (0008,0005) parsing ------------------------------------------------- */

static void check_name(const char *scs, const char *canonical)
{
    mwl_charset cs;
    if (parse(scs, &cs) != MWL_OK) {
        CHECK(false);
        return;
    }
    char name[128];
    CHECK_EQ_INT(mwl_charset_name(&cs, name, sizeof name), MWL_OK);
    CHECK_EQ_STR(name, canonical);
    /* The canonical name parses to the same character set. */
    mwl_charset again;
    CHECK_EQ_INT(parse(name, &again), MWL_OK);
    CHECK(again.count == cs.count && again.iso2022 == cs.iso2022 && memcmp(again.ids, cs.ids, cs.count) == 0);
}

static void test_parse(void)
{
    check_name("", "");
    check_name("  ", "");
    check_name("ISO_IR 100", "ISO_IR 100");
    check_name("ISO_IR 100 ", "ISO_IR 100");
    check_name("ISO_IR 192", "ISO_IR 192");
    check_name("GB18030", "GB18030");
    check_name("GBK", "GBK");
    check_name("ISO_IR 13", "ISO_IR 13");
    check_name("ISO 2022 IR 100", "ISO 2022 IR 100");
    check_name("\\ISO 2022 IR 87", "\\ISO 2022 IR 87");
    check_name("ISO 2022 IR 13\\ISO 2022 IR 87", "ISO 2022 IR 13\\ISO 2022 IR 87");
    check_name("ISO 2022 IR 6\\ISO 2022 IR 149", "ISO 2022 IR 6\\ISO 2022 IR 149");
    check_name("\\ISO 2022 IR 87\\ISO 2022 IR 159", "\\ISO 2022 IR 87\\ISO 2022 IR 159");
    /* Tolerated variants (documented in charset.c). */
    check_name("ISO_IR 6", "");
    check_name("ISO-IR 100", "ISO_IR 100");
    check_name("iso_ir 144", "ISO_IR 144");
    check_name("ISO_IR100", "ISO_IR 100");
    check_name("ISO_IR 13\\ISO 2022 IR 87", "ISO 2022 IR 13\\ISO 2022 IR 87");
    check_name("ISO 2022 IR 87", "\\ISO 2022 IR 87");
    check_name("ISO_IR 192\\ISO 2022 IR 87", "ISO_IR 192");
    check_name("\\ISO 2022 IR 149\\", "\\ISO 2022 IR 149");

    mwl_charset cs;
    mwl_diag d;
    mwl_diag_clear(&d);
    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 999"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK(strstr(d.msg, "ISO_IR 999") != NULL);
    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 100\\KOI8-R"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK(strstr(d.msg, "KOI8-R") != NULL);
    CHECK_EQ_INT(d.offset, 11);
    CHECK_EQ_INT(mwl_charset_parse(B("ISO 2022 IR 192"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_charset_parse(B("\\ISO_IR 192"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 100\\GB18030"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_charset_parse(B("UTF-8"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 1000"), &cs, &d), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 100\\ISO 2022 IR 101\\ISO 2022 IR 109\\ISO 2022 IR 110\\"
                                     "ISO 2022 IR 144\\ISO 2022 IR 127\\ISO 2022 IR 126\\ISO 2022 IR 138\\"
                                     "ISO 2022 IR 148"),
                                   &cs, &d),
                 MWL_E_LIMIT);

    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 192"), &cs, NULL), MWL_OK);
    CHECK(mwl_charset_is_utf8(&cs));
    CHECK_EQ_INT(mwl_charset_parse(B("ISO_IR 100"), &cs, NULL), MWL_OK);
    CHECK(!mwl_charset_is_utf8(&cs));
    CHECK(!cs.iso2022);
    CHECK_EQ_INT(mwl_charset_parse(B("\\ISO 2022 IR 87"), &cs, NULL), MWL_OK);
    CHECK(cs.iso2022);
    CHECK_EQ_INT(cs.count, 2);
    mwl_charset_init_default(&cs);
    CHECK_EQ_INT(cs.count, 0);
    CHECK(!mwl_charset_is_utf8(&cs));

    char small[8];
    CHECK_EQ_INT(mwl_charset_parse(B("\\ISO 2022 IR 87"), &cs, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_charset_name(&cs, small, sizeof small), MWL_E_LIMIT);
    CHECK(strlen(small) < sizeof small);

    /* A hand-made mwl_charset that parse would never produce. */
    mwl_charset bad = {1, {200}, false};
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_charset_decode(&bad, MWL_VR_LO, (const uint8_t *)"x", 1, &w, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_charset_encode(&bad, MWL_VR_LO, "x", 1, &w, NULL), MWL_E_INVALID);
    mwl_wbuf_clear(&w);
}

/* Delimiters and controls reset the state in the decoder; PN '^' is an
 * ordinary character elsewhere. */
static void test_delimiters(void)
{
    /* In LO, '^' does not reset: the Korean G1 stays designated. */
    char *got = NULL;
    CHECK_EQ_INT(decode("\\ISO 2022 IR 149", MWL_VR_LO, B("\x1b$)C\xfb\xf3^\xd1\xce"), &got, NULL), MWL_OK);
    CHECK_EQ_STR(got, "洪^吉");
    free(got);
    /* In LT, '\' is an ordinary character: no reset. */
    got = NULL;
    CHECK_EQ_INT(decode("\\ISO 2022 IR 149", MWL_VR_LT, B("\x1b$)C\xfb\xf3\\\xd1\xce"), &got, NULL), MWL_OK);
    CHECK_EQ_STR(got, "洪\\吉");
    free(got);
    /* '\' between values resets, TAB resets. */
    CHECK_EQ_INT(decode("\\ISO 2022 IR 149", MWL_VR_LO, B("\x1b$)C\xfb\xf3\\\xd1\xce"), NULL, NULL),
                 MWL_E_CHARSET);
    CHECK_EQ_INT(decode("\\ISO 2022 IR 149", MWL_VR_LT, B("\x1b$)C\xfb\xf3\t\xd1\xce"), NULL, NULL),
                 MWL_E_CHARSET);
    /* The encoder switches back before TAB and before '\' in LO. */
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(encode("\\ISO 2022 IR 87", MWL_VR_LT, B("山\t田"), &w, NULL), MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, "\x1b$B;3\x1b(B\t\x1b$BED\x1b(B", 17);
    w.len = 0;
    CHECK_EQ_INT(encode("\\ISO 2022 IR 87", MWL_VR_LO, B("山\\田"), &w, NULL), MWL_OK);
    CHECK_EQ_MEM(w.data, w.len, "\x1b$B;3\x1b(B\\\x1b$BED\x1b(B", 17);
    /* Empty input is fine and appends nothing. */
    w.len = 0;
    CHECK_EQ_INT(encode("\\ISO 2022 IR 87", MWL_VR_LO, "", 0, &w, NULL), MWL_OK);
    CHECK_EQ_INT(w.len, 0);
    mwl_wbuf_clear(&w);
}

/* ---- data sets ------------------------------------------------------------- */

static void test_dataset(void)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds, *item, *item2, *deep;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &ds), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, " M\xfcller^Hans\\Doe"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0008, 0x0060), MWL_VR_CS, " MR\\CT "), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0032, 0x4000), MWL_VR_LT,
                                "  Gr\xfc\xdf"
                                "e\\x  "),
                 MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG(0x0040, 0x0100), &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG(0x0040, 0x0007), MWL_VR_LO, "J\xe9r\xf4me"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG(0x0040, 0x0100), &item2), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item2, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item2, MWL_TAG(0x0040, 0x0007), MWL_VR_LO, "J\xc3\xa9r\xc3\xb4me"), MWL_OK);
    /* Two levels down, inheriting through an item without its own. */
    CHECK_EQ_INT(mwl_ds_add_item(item, MWL_TAG(0x0040, 0x0008), &deep), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(deep, MWL_TAG(0x0008, 0x0104), MWL_VR_LO, "\xc6gir"), MWL_OK);

    mwl_charset cs;
    CHECK_EQ_INT(mwl_charset_of(item, &cs, NULL), MWL_OK);
    char name[32];
    CHECK_EQ_INT(mwl_charset_name(&cs, name, sizeof name), MWL_OK);
    CHECK_EQ_STR(name, "ISO_IR 100");
    CHECK_EQ_INT(mwl_charset_of(item2, &cs, NULL), MWL_OK);
    CHECK(mwl_charset_is_utf8(&cs));

    const char *s = NULL;
    size_t n = 0;
    const mwl_elem *e = mwl_ds_find(ds, MWL_TAG_PatientName);
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 0, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "Müller^Hans");
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 1, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "Doe");
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 2, &a, &s, NULL), MWL_E_NOTFOUND);
    CHECK_EQ_INT(mwl_ds_get_utf8_all(ds, e, &a, &s, &n, NULL), MWL_OK);
    CHECK_EQ_STR(s, " Müller^Hans\\Doe");
    CHECK_EQ_INT(n, strlen(" Müller^Hans\\Doe"));
    /* CS is not affected by the character set: copied as is, trimmed. */
    e = mwl_ds_find(ds, MWL_TAG(0x0008, 0x0060));
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 1, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "CT");
    /* LT: one value, '\' kept, leading spaces significant. */
    e = mwl_ds_find(ds, MWL_TAG(0x0032, 0x4000));
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 0, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "  Grüße\\x");
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 1, &a, &s, NULL), MWL_E_NOTFOUND);
    /* The item inherits ISO_IR 100; the second item overrides it. */
    e = mwl_ds_find(item, MWL_TAG(0x0040, 0x0007));
    CHECK_EQ_INT(mwl_ds_get_utf8(item, e, 0, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "Jérôme");
    e = mwl_ds_find(item2, MWL_TAG(0x0040, 0x0007));
    CHECK_EQ_INT(mwl_ds_get_utf8(item2, e, 0, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "Jérôme");
    e = mwl_ds_find(deep, MWL_TAG(0x0008, 0x0104));
    CHECK_EQ_INT(mwl_ds_get_utf8(deep, e, 0, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "Ægir");
    /* Non-string VR. */
    CHECK_EQ_INT(mwl_ds_set_u16(ds, MWL_TAG(0x0028, 0x0010), 512), MWL_OK);
    e = mwl_ds_find(ds, MWL_TAG(0x0028, 0x0010));
    CHECK_EQ_INT(mwl_ds_get_utf8(ds, e, 0, &a, &s, NULL), MWL_E_INVALID);

    /* A value that cannot be decoded names its tag. */
    mwl_diag d;
    mwl_diag_clear(&d);
    CHECK_EQ_INT(mwl_ds_set_str(item2, MWL_TAG(0x0040, 0x0009), MWL_VR_SH, "J\xe9r"), MWL_OK);
    e = mwl_ds_find(item2, MWL_TAG(0x0040, 0x0009));
    CHECK_EQ_INT(mwl_ds_get_utf8(item2, e, 0, &a, &s, &d), MWL_E_CHARSET);
    CHECK_EQ_INT(d.tag, MWL_TAG(0x0040, 0x0009));
    CHECK_EQ_INT(d.offset, 1);

    /* An unknown term in the item's own (0008,0005) is an error, not a
     * silent fallback to the parent's. */
    CHECK_EQ_INT(mwl_ds_set_str(item2, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 42"), MWL_OK);
    CHECK_EQ_INT(mwl_charset_of(item2, &cs, &d), MWL_E_UNSUPPORTED);
    CHECK_EQ_INT(d.tag, MWL_TAG_SpecificCharacterSet);
    /* An empty one inherits. */
    CHECK_EQ_INT(mwl_ds_set_str(item2, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, ""), MWL_OK);
    CHECK_EQ_INT(mwl_charset_of(item2, &cs, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_charset_name(&cs, name, sizeof name), MWL_OK);
    CHECK_EQ_STR(name, "ISO_IR 100");

    /* JIS X 0208: a 5CH inside a 2-byte character does not split values. */
    mwl_ds *jp;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &jp), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(jp, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "\\ISO 2022 IR 87"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(jp, MWL_TAG(0x0008, 0x1030), MWL_VR_LO, "\x1b$B$\\\x1b(B\\\x1b$B%\\\x1b(B"),
                 MWL_OK);
    e = mwl_ds_find(jp, MWL_TAG(0x0008, 0x1030));
    CHECK_EQ_INT(mwl_elem_vm(e), 4); /* what a byte-level split would see */
    CHECK_EQ_INT(mwl_ds_get_utf8(jp, e, 0, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "ぼ");
    CHECK_EQ_INT(mwl_ds_get_utf8(jp, e, 1, &a, &s, NULL), MWL_OK);
    CHECK_EQ_STR(s, "ボ");
    CHECK_EQ_INT(mwl_ds_get_utf8(jp, e, 2, &a, &s, NULL), MWL_E_NOTFOUND);

    mwl_arena_clear(&a);
}

/* ---- threads ----------------------------------------------------------------- */

static void *thread_main(void *arg)
{
    size_t *failures = arg;
    for (int round = 0; round < 200; round++) {
        for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
            const vector *t = &vectors[v];
            mwl_charset cs;
            mwl_wbuf w;
            mwl_wbuf_init(&w, NULL);
            if (mwl_charset_parse(t->scs, strlen(t->scs), &cs, NULL) != MWL_OK ||
                mwl_charset_decode(&cs, t->vr, (const uint8_t *)t->bytes, t->len, &w, NULL) != MWL_OK ||
                w.len != strlen(t->utf8) || memcmp(w.data, t->utf8, w.len) != 0)
                (*failures)++;
            if (t->round_trip) {
                w.len = 0;
                if (mwl_charset_encode(&cs, t->vr, t->utf8, strlen(t->utf8), &w, NULL) != MWL_OK ||
                    w.len != t->len || memcmp(w.data, t->bytes, w.len) != 0)
                    (*failures)++;
            }
            mwl_wbuf_clear(&w);
        }
    }
    return NULL;
}

/* Each thread has its own iconv descriptors; four threads converting the
 * same vectors at once must all get the right bytes. */
static void test_threads(void)
{
    enum { N = 4 };
    pthread_t th[N];
    size_t failures[N] = {0};
    int started = 0;
    for (int k = 0; k < N; k++) {
        if (pthread_create(&th[k], NULL, thread_main, &failures[k]) == 0)
            started++;
    }
    CHECK_EQ_INT(started, N);
    for (int k = 0; k < started; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < N; k++)
        CHECK_EQ_INT(failures[k], 0);
}

/* mwl_ds_recode: a Latin-1 item (with a nested item in its own character
 * set) re-encoded to UTF-8 and back; an unrepresentable character fails. */
static void test_recode(void)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_ds *ds, *item;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &ds), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, 0, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "M\xfcller^Hans"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientID, 0, "ID\xe9"), MWL_OK); /* LO */
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_SpecificCharacterSet, 0, "ISO_IR 192"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_ScheduledProcedureStepDescription, 0, "R\xc3\xb6ntgen"),
                 MWL_OK);
    CHECK(!mwl_ds_text_is_ascii(ds));

    mwl_charset utf8, latin1;
    CHECK_EQ_INT(mwl_charset_parse("ISO_IR 192", 10, &utf8, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_charset_parse("ISO_IR 100", 10, &latin1, NULL), MWL_OK);
    CHECK_EQ_INT(mwl_ds_recode(ds, &utf8, NULL), MWL_OK);
    const mwl_elem *e = mwl_ds_find(ds, MWL_TAG_PatientName);
    CHECK(e && e->length == 12 && memcmp(e->value, "M\xc3\xbcller^Hans", 12) == 0);
    char buf[64];
    CHECK_EQ_INT(mwl_ds_copy_str(ds, MWL_TAG_SpecificCharacterSet, 0, buf, sizeof buf), MWL_OK);
    CHECK_EQ_STR(buf, "ISO_IR 192");
    CHECK(mwl_ds_find(item, MWL_TAG_SpecificCharacterSet) == NULL);
    e = mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepDescription);
    CHECK(e && e->length == 8 && memcmp(e->value, "R\xc3\xb6ntgen", 8) == 0);

    CHECK_EQ_INT(mwl_ds_recode(ds, &latin1, NULL), MWL_OK);
    e = mwl_ds_find(item, MWL_TAG_ScheduledProcedureStepDescription);
    CHECK(e && e->length == 8 && memcmp(e->value, "R\xf6ntgen ", 8) == 0);

    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "\xe5\xb1\xb1"),
                 MWL_OK); /* in Latin-1? */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, 0, "ISO_IR 192"), MWL_OK);
    mwl_diag d;
    mwl_diag_clear(&d);
    CHECK_EQ_INT(mwl_ds_recode(ds, &latin1, &d), MWL_E_CHARSET);
    CHECK_EQ_INT(d.tag, MWL_TAG_PatientName);

    mwl_ds *plain;
    CHECK_EQ_INT(mwl_ds_new(&a, NULL, &plain), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(plain, MWL_TAG_PatientName, 0, "Doe^John"), MWL_OK);
    CHECK(mwl_ds_text_is_ascii(plain));
    mwl_arena_clear(&a);
}

int main(void)
{
    RUN_TEST(test_parse);
    RUN_TEST(test_vectors);
    RUN_TEST(test_prefixes);
    RUN_TEST(test_decode_errors);
    RUN_TEST(test_encode_errors);
    RUN_TEST(test_delimiters);
    RUN_TEST(test_dataset);
    RUN_TEST(test_threads);
    RUN_TEST(test_recode);
    return check_report("charset_test");
}
