/* Tests for dicom/format.c: the dcmdump-style tree of a data set built in
 * memory, line for line (layout, UTF-8 conversion through the character
 * set, binary values, sequences with their lengths, --max-value cuts),
 * text that does not convert, the FILE variant against the buffer one,
 * Part 10 headers, and every allocation failing in turn. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/format.h"

/* The item built by make_ds, as the printer must show it (explicit VR LE
 * lengths for the sequence and its item). */
static const char expected_tree[] =
    "(0008,0005) CS [ISO_IR 100]                             #  10, 1 SpecificCharacterSet\n"
    "(0008,0050) SH (no value available)                     #   0, 0 AccessionNumber\n"
    "(0010,0010) PN [M\xc3\xbcller^J\xc3\xbcrgen]                          #  14, 1 PatientName\n"
    "(0010,1030) DS [72.5]                                   #   4, 1 PatientWeight\n"
    "(0010,21c0) US 4                                        #   2, 1 PregnancyStatus\n"
    "(0040,0100) SQ (Sequence with explicit length #=1)      #  36, 1 ScheduledProcedureStepSequence\n"
    "  (fffe,e000) na (Item with explicit length #=2)          #  28, 1 Item\n"
    "    (0008,0060) CS [CT]                                     #   2, 1 Modality\n"
    "    (0040,0001) AE [CT01\\CT02]                              #  10, 2 ScheduledStationAETitle\n"
    "  (fffe,e00d) na (ItemDelimitationItem)                   #   0, 0 ItemDelimitationItem\n"
    "(fffe,e0dd) na (SequenceDelimitationItem)               #   0, 0 SequenceDelimitationItem\n"
    "(0040,a30a) DS [1.5\\-2]                                 #   6, 2 NumericValue\n";

static mwl_ds *make_ds(mwl_arena *arena)
{
    mwl_ds *ds = NULL;
    if (mwl_ds_new(arena, NULL, &ds) != MWL_OK)
        return NULL;
    mwl_ds *sps = NULL;
    int rc = mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_AccessionNumber, MWL_VR_SH, "");
    /* Latin-1 bytes: shown as UTF-8, the column counted in characters. */
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "M\xfcller^J\xfcrgen");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_PatientWeight, MWL_VR_DS, "72.5");
    if (rc == MWL_OK)
        rc = mwl_ds_set_u16(ds, MWL_TAG_PregnancyStatus, 4);
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_Modality, MWL_VR_CS, "CT");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_AE, "CT01\\CT02");
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(ds, MWL_TAG_NumericValue, MWL_VR_DS, "1.5\\-2");
    return rc == MWL_OK ? ds : NULL;
}

static char *format_to_string(const mwl_ds *ds, mwl_ts ts, size_t depth, const mwl_format_options *opt,
                              mwl_format_report *report, int *rc)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    *rc = mwl_ds_format(ds, ts, depth, opt, &w, report);
    char *s = malloc(w.len + 1);
    memcpy(s, w.data ? (const char *)w.data : "", w.len);
    s[w.len] = '\0';
    mwl_wbuf_clear(&w);
    return s;
}

static void test_tree(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = make_ds(&arena);
    CHECK(ds != NULL);
    if (!ds)
        return;
    mwl_format_report report;
    int rc;
    char *s = format_to_string(ds, MWL_TS_EXPLICIT_LE, 0, NULL, &report, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK_EQ_STR(s, expected_tree);
    CHECK_EQ_INT(report.charset_problems, 0);
    free(s);

    /* The lengths are those of the transfer syntax: in Implicit VR a
     * sequence header has 8 bytes, not Explicit VR's 12. */
    s = format_to_string(ds, MWL_TS_IMPLICIT_LE, 0, NULL, NULL, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK(strstr(s, "#  28, 1 Item\n") != NULL);
    mwl_ds *outer = NULL, *inner = NULL;
    CHECK_EQ_INT(mwl_ds_new(&arena, NULL, &outer), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(outer, MWL_TAG_ReferencedStudySequence, &inner), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_seq(inner, MWL_TAG_ScheduledProtocolCodeSequence, NULL), MWL_OK);
    free(s);
    s = format_to_string(outer, MWL_TS_IMPLICIT_LE, 0, NULL, NULL, &rc);
    CHECK(strstr(s, "#  16, 1 ReferencedStudySequence\n") != NULL && strstr(s, "#   8, 1 Item\n") != NULL);
    free(s);
    s = format_to_string(outer, MWL_TS_EXPLICIT_LE, 0, NULL, NULL, &rc);
    CHECK(strstr(s, "#  20, 1 ReferencedStudySequence\n") != NULL && strstr(s, "#  12, 1 Item\n") != NULL);
    free(s);

    /* A starting depth indents every line. */
    s = format_to_string(ds, MWL_TS_EXPLICIT_LE, 1, NULL, NULL, &rc);
    CHECK(strncmp(s, "  (0008,0005) CS [ISO_IR 100]", 29) == 0);
    CHECK(strstr(s, "\n      (0008,0060) CS [CT]") != NULL);
    free(s);

    /* --max-value cuts by characters, never inside a UTF-8 sequence. */
    mwl_format_options opt;
    mwl_format_options_init(&opt);
    CHECK(opt.show_meta);
    CHECK_EQ_INT(opt.max_value, 0);
    opt.max_value = 3;
    s = format_to_string(ds, MWL_TS_EXPLICIT_LE, 0, &opt, NULL, &rc);
    CHECK(
        strstr(s, "(0010,0010) PN [M\xc3\xbc...                                   #  14, 1 PatientName\n") !=
        NULL);
    free(s);
    mwl_arena_clear(&arena);
}

static void test_binary_and_text(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds;
    CHECK_EQ_INT(mwl_ds_new(&arena, NULL, &ds), MWL_OK);
    static const uint8_t ob[] = {0x00, 0x01, 0xff};
    static const uint8_t ss[] = {0xfe, 0xff, 0x02, 0x00};       /* -2, 2 */
    static const uint8_t at[] = {0x10, 0x00, 0x20, 0x00};       /* (0010,0020) */
    static const uint8_t fd[] = {0, 0, 0, 0, 0, 0, 0x02, 0xc0}; /* -2.25 */
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0009, 0x1001), MWL_VR_OB, ob, sizeof ob), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9219), MWL_VR_SS, ss, sizeof ss), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0020, 0x9165), MWL_VR_AT, at, sizeof at), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9087), MWL_VR_FD, fd, sizeof fd), MWL_OK);
    /* A control character and a tab in text: markup keeps one line. */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0040, 0x0400), MWL_VR_LT, "a\r\nb\tc"), MWL_OK);
    int rc;
    char *s = format_to_string(ds, MWL_TS_EXPLICIT_LE, 0, NULL, NULL, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK(strstr(s, "(0009,1001) OB 00\\01\\ff ") != NULL);
    CHECK(strstr(s, "(0018,9219) SS -2\\2 ") != NULL && strstr(s, "#   4, 2 ") != NULL);
    CHECK(strstr(s, "(0020,9165) AT (0010,0020) ") != NULL);
    CHECK(strstr(s, "(0018,9087) FD -2.25 ") != NULL);
    CHECK(strstr(s, "(0040,0400) LT [a&#13;&#10;b&#9;c]") != NULL);
    free(s);
    mwl_arena_clear(&arena);
}

static void test_charset_problem(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds;
    CHECK_EQ_INT(mwl_ds_new(&arena, NULL, &ds), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "Bad\xff\xfeName"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_LO, "\xc3"), MWL_OK);
    mwl_format_report report;
    int rc;
    char *s = format_to_string(ds, MWL_TS_EXPLICIT_LE, 0, NULL, &report, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK(strstr(s, "(0010,0010) PN [Bad&#xFF;&#xFE;Name]") != NULL);
    CHECK_EQ_INT(report.charset_problems, 2);
    CHECK_EQ_INT(report.charset_tag, MWL_TAG_PatientName);
    CHECK(report.charset_msg[0] != '\0');
    free(s);
    mwl_arena_clear(&arena);
}

/* The FILE variant writes what the buffer variant returns, also for a data
 * set bigger than its block size. */
static void test_file_matches_buffer(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = make_ds(&arena);
    CHECK(ds != NULL);
    if (!ds)
        return;
    for (int i = 0; i < 200; i++) {
        char text[32];
        snprintf(text, sizeof text, "value %d", i);
        CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0011, 0x1000u + (unsigned)i), MWL_VR_LO, text), MWL_OK);
    }
    int rc;
    char *expected = format_to_string(ds, MWL_TS_EXPLICIT_LE, 0, NULL, NULL, &rc);
    CHECK(strlen(expected) > 4096 * 2);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ_INT(mwl_ds_format_file(ds, MWL_TS_EXPLICIT_LE, 0, NULL, f, NULL), MWL_OK);
        long size = ftell(f);
        CHECK_EQ_INT(size, (long)strlen(expected));
        rewind(f);
        char *got = calloc(1, (size_t)size + 1);
        CHECK_EQ_INT(fread(got, 1, (size_t)size, f), (size_t)size);
        CHECK_EQ_STR(got, expected);
        free(got);
        fclose(f);
    }
    free(expected);
    mwl_arena_clear(&arena);
}

static void test_part10(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = make_ds(&arena);
    mwl_wbuf file;
    mwl_wbuf_init(&file, NULL);
    CHECK_EQ_INT(mwl_part10_encode(ds, MWL_TS_IMPLICIT_LE, &file), MWL_OK);
    mwl_part10 p10;
    CHECK_EQ_INT(mwl_part10_decode(file.data, file.len, &arena, NULL, &p10, NULL), MWL_OK);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_part10_format(&p10, NULL, &w, NULL), MWL_OK);
    mwl_wbuf_put_u8(&w, 0);
    const char *s = (const char *)w.data;
    static const char head[] = "\n# Dicom-File-Format\n\n# Dicom-Meta-Information-Header\n"
                               "# Used TransferSyntax: Explicit VR Little Endian\n(0002,0000) UL ";
    CHECK(strncmp(s, head, sizeof head - 1) == 0);
    const char *data = strstr(s, "\n# Dicom-Data-Set\n# Used TransferSyntax: Implicit VR Little Endian\n");
    CHECK(data != NULL);
    if (data)
        CHECK_EQ_STR(strchr(data + 2, (int)'('), expected_tree);

    /* Without the meta header: only the file format line stays. */
    mwl_format_options opt;
    mwl_format_options_init(&opt);
    opt.show_meta = false;
    w.len = 0;
    CHECK_EQ_INT(mwl_part10_format(&p10, &opt, &w, NULL), MWL_OK);
    mwl_wbuf_put_u8(&w, 0);
    CHECK(strstr((const char *)w.data, "(0002,") == NULL);
    static const char no_meta[] = "\n# Dicom-File-Format\n\n# Dicom-Data-Set\n";
    CHECK(strncmp((const char *)w.data, no_meta, sizeof no_meta - 1) == 0);

    /* A raw data set says so. */
    p10.meta = NULL;
    w.len = 0;
    CHECK_EQ_INT(mwl_part10_format(&p10, NULL, &w, NULL), MWL_OK);
    mwl_wbuf_put_u8(&w, 0);
    static const char raw[] = "\n# Dicom-Data-Set (no file meta information)\n";
    CHECK(strncmp((const char *)w.data, raw, sizeof raw - 1) == 0);

    CHECK_EQ_INT(mwl_part10_format(NULL, NULL, &w, NULL), MWL_E_INVALID);
    CHECK_EQ_INT(mwl_ds_format(NULL, MWL_TS_EXPLICIT_LE, 0, NULL, &w, NULL), MWL_E_INVALID);
    mwl_wbuf_clear(&w);
    mwl_wbuf_clear(&file);
    mwl_arena_clear(&arena);
}

/* Every allocation failing in turn: a clean MWL_E_NOMEM, no leak (ASan),
 * and once enough succeed, the full tree. */
static void test_out_of_memory(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = make_ds(&arena);
    bool completed = false;
    for (size_t fail_at = 1; fail_at < 200 && !completed; fail_at++) {
        mwl_mem_failing failing;
        mwl_mem_failing_init(&failing, fail_at);
        mwl_wbuf w;
        mwl_wbuf_init(&w, &failing.mem);
        int rc = mwl_ds_format(ds, MWL_TS_EXPLICIT_LE, 0, NULL, &w, NULL);
        if (rc == MWL_OK) {
            CHECK_EQ_MEM(w.data, w.len, expected_tree, strlen(expected_tree));
            completed = true;
        } else {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
        }
        mwl_wbuf_clear(&w);
    }
    CHECK(completed);
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_tree);
    RUN_TEST(test_binary_and_text);
    RUN_TEST(test_charset_problem);
    RUN_TEST(test_file_matches_buffer);
    RUN_TEST(test_part10);
    RUN_TEST(test_out_of_memory);
    return check_report("format_test");
}
