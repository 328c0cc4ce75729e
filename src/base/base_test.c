#include "base/arena.h"
#include "base/base64.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/status.h"
#include "base/utf8.h"
#include "check.h"

static void test_arena(void)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    char *s = mwl_arena_strndup(&a, "hello", 5);
    CHECK_EQ_STR(s, "hello");
    for (int i = 0; i < 10000; i++) {
        unsigned char *p = mwl_arena_alloc(&a, (size_t)(i % 300) + 1);
        CHECK(p != NULL);
        if (p)
            p[i % 300] = 1; /* ASan catches an undersized block */
    }
    void *big = mwl_arena_alloc(&a, 3u << 20);
    CHECK(big != NULL);
    unsigned char *g = mwl_arena_alloc(&a, 16);
    g = mwl_arena_realloc(&a, g, 16, 64);
    CHECK(g != NULL);
    if (g)
        g[63] = 1;
    mwl_arena_clear(&a);
    mwl_arena_clear(&a);
    a.limit = 1000;
    CHECK(mwl_arena_alloc(&a, 5000) == NULL);
    mwl_arena_clear(&a);
}

/* reset keeps one chunk: refilling the arena in a loop allocates nothing
 * more once the chunk is big enough, and what was handed out before is
 * forgotten. */
static void test_arena_reset(void)
{
    mwl_arena a;
    mwl_arena_init(&a, NULL);
    mwl_arena_reset(&a); /* empty: nothing to do */
    for (int i = 0; i < 100; i++)
        CHECK(mwl_arena_alloc(&a, 100) != NULL);
    size_t before = a.total;
    CHECK(before > 0);
    mwl_arena_reset(&a);
    CHECK(a.total <= before);
    size_t kept = a.total;
    for (int turn = 0; turn < 50; turn++) {
        char *p = mwl_arena_strndup(&a, "value", 5);
        CHECK(p && strcmp(p, "value") == 0);
        mwl_arena_reset(&a);
    }
    CHECK_EQ_INT((int)a.total, (int)kept);
    mwl_arena_clear(&a);
    CHECK_EQ_INT((int)a.total, 0);
}

static void test_arena_oom(void)
{
    for (size_t fail = 1; fail < 5; fail++) {
        mwl_mem_failing f;
        mwl_mem_failing_init(&f, fail);
        mwl_arena a;
        mwl_arena_init(&a, &f.mem);
        int failed = 0;
        for (int i = 0; i < 100 && !failed; i++)
            failed = mwl_arena_alloc(&a, 1000) == NULL;
        CHECK(failed);
        mwl_arena_clear(&a);
    }
}

static void test_buf(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_wbuf_put_u16le(&w, 0x1234);
    mwl_wbuf_put_u32be(&w, 0xA1B2C3D4);
    mwl_wbuf_fill(&w, 0xEE, 1000);
    CHECK_EQ_INT(w.status, MWL_OK);
    CHECK_EQ_INT(w.len, 1006);
    mwl_rd rd;
    mwl_rd_init(&rd, w.data, w.len);
    uint16_t a;
    uint32_t b;
    CHECK(mwl_rd_u16le(&rd, &a) && a == 0x1234);
    CHECK(mwl_rd_u32be(&rd, &b) && b == 0xA1B2C3D4);
    CHECK(!mwl_rd_skip(&rd, 1001));
    CHECK(mwl_rd_skip(&rd, 1000));
    CHECK(!mwl_rd_u8(&rd, (uint8_t *)&a));
    mwl_wbuf_consume(&w, 6);
    CHECK_EQ_INT(w.len, 1000);
    w.limit = 1001;
    mwl_wbuf_put_u16le(&w, 1);
    CHECK_EQ_INT(w.status, MWL_E_LIMIT);
    mwl_wbuf_clear(&w);

    mwl_mem_failing f;
    mwl_mem_failing_init(&f, 1);
    mwl_wbuf_init(&w, &f.mem);
    mwl_wbuf_put_u8(&w, 1);
    CHECK_EQ_INT(w.status, MWL_E_NOMEM);
    mwl_wbuf_clear(&w);
}

static void test_status(void)
{
    CHECK(mwl_is_fatal(MWL_E_NOMEM));
    CHECK(!mwl_is_fatal(MWL_E_MALFORMED));
    CHECK_EQ_STR(mwl_status_str(MWL_E_LIMIT), "limit exceeded");
    mwl_diag d;
    mwl_diag_set(&d, 12, 0x00100010, "bad %s", "thing");
    CHECK_EQ_STR(d.msg, "bad thing");
    mwl_diag_set(NULL, 0, 0, "ignored");
}

static void test_base64(void)
{
    /* RFC 4648 §10 vectors, both ways. */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        mwl_base64_encode(&w, (const uint8_t *)plain[i], strlen(plain[i]));
        CHECK_EQ_MEM(w.data, w.len, coded[i], strlen(coded[i]));
        mwl_wbuf_clear(&w);
        uint8_t out[8];
        size_t n = 99;
        CHECK_EQ_INT(mwl_base64_decode(coded[i], strlen(coded[i]), out, &n, NULL), MWL_OK);
        CHECK_EQ_MEM(out, n, plain[i], strlen(plain[i]));
    }
    uint8_t all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_base64_encode(&w, all, sizeof all);
    size_t n = 0;
    CHECK_EQ_INT(mwl_base64_decode((const char *)w.data, w.len, back, &n, NULL), MWL_OK);
    CHECK_EQ_MEM(back, n, all, sizeof all);
    mwl_wbuf_clear(&w);
    /* Strict: length, alphabet, '=' only at the end, unused bits zero. */
    static const struct {
        const char *in;
        size_t len, bad_at;
    } bad[] = {
        {"Zg=", 3, 3},  {"Zm9", 3, 3},  {"Zm 9", 4, 2},     {"Zm9\n", 4, 3},
        {"Z===", 4, 1}, {"=Zm9", 4, 0}, {"Zh==", 4, 1},     {"Zg==Zm9v", 8, 2},
        {"Zm9=", 4, 2}, {"Zm-_", 4, 2}, {"Zm8=Zm8=", 8, 3}, {"Zm9v\0", 5, 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[8];
        size_t at = 99;
        CHECK_EQ_INT(mwl_base64_decode(bad[i].in, bad[i].len, out, &n, &at), MWL_E_MALFORMED);
        CHECK_EQ_INT(at, bad[i].bad_at);
    }
}

static void test_utf8_width(void)
{
    static const struct {
        uint32_t cp;
        int width;
    } chars[] = {
        {'A', 1},    {0xE9, 1},    {0xAD, 1},     /* ASCII, Latin-1 e acute, soft hyphen */
        {0x0301, 0}, {0x20DD, 0},  {0x200B, 0},   /* combining acute, enclosing circle, ZWSP */
        {0xFE0F, 0}, {0x1160, 0},  {0x11A8, 0},   /* variation selector, Hangul Jamo vowel and final */
        {0x1100, 2}, {0x3042, 2},  {0x5C71, 2},   /* Hangul Jamo initial, hiragana, CJK */
        {0xAC00, 2}, {0xFF21, 2},  {0x1F600, 2},  /* Hangul syllable, full-width A, emoji */
        {0x3400, 2}, {0x2A6DF, 2}, {0x30000, 2},  /* CJK extension A, B, plane 3 */
        {0xFF61, 1}, {0x0414, 1},  {0x03A0, 1},   /* half-width katakana, Cyrillic, Greek */
        {0x303F, 1}, {0x0E31, 0},  {0x10FFFF, 1}, /* half fill space, Thai vowel sign */
    };
    for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++) {
        CHECK_EQ_INT(mwl_utf8_char_width(chars[i].cp), chars[i].width);
        if (mwl_utf8_char_width(chars[i].cp) != chars[i].width)
            fprintf(stderr, "  U+%04X\n", (unsigned)chars[i].cp);
    }
    static const struct {
        const char *s;
        size_t width;
    } texts[] = {
        {"Smith^John", 10},
        {"M\xc3\xbcller", 6},                                     /* precomposed u umlaut */
        {"Mu\xcc\x88ller", 6},                                    /* u + combining diaeresis */
        {"\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e", 9}, /* Yamada^Tarou in kanji */
        {"\xed\x95\x9c\xea\xb8\x80", 4},                          /* Hangul */
        {"a\xff"
         "b\xe5\xb1",
         5}, /* bytes that are not UTF-8, a truncated character: 1 each */
        {"", 0},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        CHECK_EQ_INT(mwl_utf8_width(texts[i].s, strlen(texts[i].s)), texts[i].width);
    /* Fitting: at character boundaries, combining marks kept with their
     * base, a wide character that does not fit left out. */
    const char *yamada = "\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa";
    size_t w = 99;
    CHECK_EQ_INT(mwl_utf8_fit(yamada, strlen(yamada), 3, &w), 3);
    CHECK_EQ_INT(w, 2);
    CHECK_EQ_INT(mwl_utf8_fit(yamada, strlen(yamada), 5, &w), 7);
    CHECK_EQ_INT(w, 5);
    CHECK_EQ_INT(mwl_utf8_fit(yamada, strlen(yamada), 100, &w), strlen(yamada));
    CHECK_EQ_INT(w, 7);
    const char *mu = "Mu\xcc\x88ller";
    CHECK_EQ_INT(mwl_utf8_fit(mu, strlen(mu), 2, &w), 4);
    CHECK_EQ_INT(w, 2);
    CHECK_EQ_INT(mwl_utf8_fit(mu, strlen(mu), 0, &w), 0);
}

/* ---- log escaping --------------------------------------------------------- */

static char escaped[1200];

static const char *esc(const char *in, size_t len)
{
    size_t out_len = 0;
    size_t used = mwl_log_escape(in, len, escaped, sizeof escaped, &out_len);
    CHECK_EQ_INT(used, len);
    CHECK_EQ_INT(out_len, strlen(escaped));
    return escaped;
}

/* Reads an escaped text back (the rule in log.h); returns its length. */
static size_t unescape(const char *in, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; in[i];) {
        unsigned v;
        if (in[i] == '\\' && in[i + 1] == '\\') {
            out[o++] = '\\';
            i += 2;
        } else if (in[i] == '\\' && in[i + 1] == 'x' && sscanf(in + i + 2, "%2x", &v) == 1) {
            out[o++] = (uint8_t)v;
            i += 4;
        } else if (in[i] == '\\' && in[i + 1] == 'u' && sscanf(in + i + 2, "%4x", &v) == 1) {
            /* the escaped code points are all below U+0800 or 3 bytes */
            if (v < 0x800) {
                out[o++] = (uint8_t)(0xC0 | (v >> 6));
            } else {
                out[o++] = (uint8_t)(0xE0 | (v >> 12));
                out[o++] = (uint8_t)(0x80 | ((v >> 6) & 0x3F));
            }
            out[o++] = (uint8_t)(0x80 | (v & 0x3F));
            i += 6;
        } else {
            out[o++] = (uint8_t)in[i++];
        }
    }
    return o;
}

/* One line of well-formed UTF-8 without control characters. */
static int is_safe_line(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x20 || c == 0x7F)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = mwl_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (n == 0 || cp <= 0x9F || cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) ||
            (cp >= 0x2066 && cp <= 0x2069))
            return 0;
        i += n;
    }
    return 1;
}

static void test_log_escape(void)
{
    static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        const char *want;
    } cases[] = {
        {"assoc 127.0.0.1:4000 PYSCU -> MWL", 0, "assoc 127.0.0.1:4000 PYSCU -> MWL"},
        {"A\nB", 0, "A\\x0aB"},
        {"\x1b[31mEVIL\x1b[0m", 0, "\\x1b[31mEVIL\\x1b[0m"},
        {"x\r\n2024-01-01T00:00:00.000Z mwl[1] info: forged", 0,
         "x\\x0d\\x0a2024-01-01T00:00:00.000Z mwl[1] info: forged"},
        {"tab\there\x7f", 0, "tab\\x09here\\x7f"},
        {"a\0b", 3, "a\\x00b"},
        /* UTF-8 text stays: u umlaut, Yamada^Tarou in kanji, an emoji */
        {"M\xc3\xbcller", 0, "M\xc3\xbcller"},
        {"\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e", 0,
         "\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e"},
        {"\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80"},
        /* bytes that are not UTF-8: Latin-1, overlong, surrogate, truncated, raw C1 */
        {"M\xfcller", 0, "M\\xfcller"},
        {"\xc0\xaf", 0, "\\xc0\\xaf"},
        {"\xed\xa0\x80", 0, "\\xed\\xa0\\x80"},
        {"ab\xe5\xb1", 0, "ab\\xe5\\xb1"},
        {"\x9b"
         "31m",
         0, "\\x9b31m"},
        /* code points that steer a terminal or the text's direction */
        {"\xc2\x9b"
         "31m",
         0, "\\u009b31m"},
        {"a\xe2\x80\xa8"
         "b\xe2\x80\xa9",
         0, "a\\u2028b\\u2029"},
        {"\xe2\x80\xae"
         "txt.exe\xe2\x81\xa6",
         0, "\\u202etxt.exe\\u2066"},
        /* backslashes: a lone one stays (multi-values), one that could
         * start an escape is doubled */
        {"CT\\MR", 0, "CT\\MR"},
        {"ISO 2022 IR 6\\ISO 2022 IR 87", 0, "ISO 2022 IR 6\\ISO 2022 IR 87"},
        {"a\\x0a", 0, "a\\\\x0a"},
        {"a\\u202e", 0, "a\\\\u202e"},
        {"a\\\\b", 0, "a\\\\\\b"},
        {"a\\\nb", 0, "a\\\\\\x0ab"},
        {"end\\", 0, "end\\\\"},
        {"\\", 0, "\\\\"},
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        CHECK_EQ_STR(esc(cases[i].in, len), cases[i].want);
        CHECK(is_safe_line(escaped));
        uint8_t back[sizeof escaped];
        CHECK_EQ_MEM(back, unescape(escaped, back), cases[i].in, len);
    }

    /* Random bytes, rich in backslashes, 'x', 'u', controls and UTF-8
     * lead bytes: always one safe line, always read back exactly. */
    static const uint8_t alphabet[] = {'\\', 'x',  'u',  '0',  'a',  '\n', '\r', 0x1b, 0,    0x7f,
                                       0x80, 0x9b, 0xbf, 0xc2, 0xc3, 0xe2, 0xe5, 0xed, 0xf0, 0xff};
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        uint8_t in[24];
        size_t len = (size_t)(round % 24);
        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            in[k] = (seed >> 16) % 4 ? alphabet[(seed >> 8) % sizeof alphabet] : (uint8_t)(seed >> 20);
        }
        size_t out_len;
        CHECK_EQ_INT(mwl_log_escape((const char *)in, len, escaped, sizeof escaped, &out_len), len);
        if (!is_safe_line(escaped)) {
            CHECK(is_safe_line(escaped));
            break;
        }
        uint8_t back[sizeof escaped];
        size_t back_len = unescape(escaped, back);
        if (back_len != len || memcmp(back, in, len) != 0) {
            CHECK_EQ_MEM(back, back_len, in, len);
            break;
        }
    }

    /* A small buffer: never an escape or a character cut in half. */
    char small[8];
    size_t out_len = 99;
    CHECK_EQ_INT(mwl_log_escape("\n\n\n", 3, small, 6, &out_len), 1);
    CHECK_EQ_STR(small, "\\x0a");
    CHECK_EQ_INT(mwl_log_escape("ab\xe5\xb1\xb1", 5, small, 5, &out_len), 2);
    CHECK_EQ_STR(small, "ab");
    CHECK_EQ_INT(mwl_log_escape("x\\\n", 3, small, 4, &out_len), 2); /* "\\\\" fits, "\\x0a" not */
    CHECK_EQ_STR(small, "x\\\\");
    CHECK_EQ_INT(mwl_log_escape("abc", 3, small, 1, &out_len), 0);
    CHECK_EQ_STR(small, "");
    CHECK_EQ_INT(out_len, 0);
    CHECK_EQ_INT(mwl_log_escape("abc", 3, small, 0, NULL), 0);
}

static char logged[2048];
static int logged_count;

static void capture(void *user, mwl_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    snprintf(logged, sizeof logged, "%s", msg);
    logged_count++;
}

static void test_log_lines(void)
{
    mwl_log_set_sink(capture, NULL);
    mwl_log_set_level(MWL_LOG_INFO);
    /* What a peer sends reaches the sink escaped, whatever the format. */
    mwl_log(MWL_LOG_INFO, "assoc %s %s -> %s: accepted", "127.0.0.1:1234", "A\r\nB", "\x1b[2J");
    CHECK_EQ_STR(logged, "assoc 127.0.0.1:1234 A\\x0d\\x0aB -> \\x1b[2J: accepted");
    mwl_log(MWL_LOG_INFO, "name %s", "Smith^John=\xe5\xb1\xb1\xe7\x94\xb0");
    CHECK_EQ_STR(logged, "name Smith^John=\xe5\xb1\xb1\xe7\x94\xb0");
    logged_count = 0;
    mwl_log(MWL_LOG_DEBUG, "not shown %s", "x");
    CHECK_EQ_INT(logged_count, 0);

    /* Long messages: at most 1023 bytes, ending in "...", one safe line. */
    char big[3000];
    memset(big, 'x', 2000);
    big[2000] = '\0';
    mwl_log(MWL_LOG_WARN, "%s", big);
    CHECK_EQ_INT(strlen(logged), 1023);
    CHECK(strcmp(logged + 1020, "...") == 0);
    memset(big, '\n', 600); /* 2400 bytes once escaped */
    big[600] = '\0';
    mwl_log(MWL_LOG_WARN, "%s", big);
    CHECK(strlen(logged) <= 1023 && strlen(logged) > 1000);
    CHECK(strcmp(logged + strlen(logged) - 3, "...") == 0);
    CHECK(strncmp(logged, "\\x0a\\x0a", 8) == 0);
    CHECK(is_safe_line(logged));
    for (int i = 0; i < 700; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2); /* 1400 bytes of e acute: cut inside one */
    big[1400] = '\0';
    mwl_log(MWL_LOG_WARN, "%s", big);
    CHECK(is_safe_line(logged));
    CHECK_EQ_INT(strlen(logged), 1020 + 3);
    CHECK(strcmp(logged + 1018, "\xc3\xa9...") == 0);
    mwl_log_set_sink(NULL, NULL);
}

int main(void)
{
    RUN_TEST(test_arena);
    RUN_TEST(test_arena_reset);
    RUN_TEST(test_arena_oom);
    RUN_TEST(test_buf);
    RUN_TEST(test_status);
    RUN_TEST(test_base64);
    RUN_TEST(test_utf8_width);
    RUN_TEST(test_log_escape);
    RUN_TEST(test_log_lines);
    return check_report("base_test");
}
