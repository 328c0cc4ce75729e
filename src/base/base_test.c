#include "base/arena.h"
#include "base/base64.h"
#include "base/buf.h"
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

int main(void)
{
    RUN_TEST(test_arena);
    RUN_TEST(test_arena_oom);
    RUN_TEST(test_buf);
    RUN_TEST(test_status);
    RUN_TEST(test_base64);
    RUN_TEST(test_utf8_width);
    return check_report("base_test");
}
