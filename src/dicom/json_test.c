/* Tests for dicom/json.c (PS3.18 F.2): exact output for each VR family
 * (strings with padding and empty values, PN component groups, numbers in
 * text and binary, AT, base64 of every tail length, sequences and empty
 * items), names in Latin-1, UTF-8 and ISO 2022 Japanese coming out as the
 * same UTF-8, character set problems, string escapes, indentation, and
 * every allocation failing in turn. Each expected object is also decoded
 * (json_decode.c) and encoded again: the decoder is the encoder's inverse. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/json.h"
#include "ds_equiv.h"
#include "json_compact.h"

static char *to_json(const mwl_ds *ds, unsigned indent, mwl_json_report *report, int *rc)
{
    mwl_json_options opt;
    mwl_json_options_init(&opt);
    opt.indent = indent;
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    *rc = mwl_ds_encode_json(ds, &opt, &w, report);
    char *s = malloc(w.len + 1);
    memcpy(s, w.data ? (const char *)w.data : "", w.len);
    s[w.len] = '\0';
    mwl_wbuf_clear(&w);
    return s;
}

static mwl_ds *new_ds(mwl_arena *arena)
{
    mwl_ds *ds = NULL;
    CHECK_EQ_INT(mwl_ds_new(arena, NULL, &ds), MWL_OK);
    return ds;
}

/* Decoding `json` gives a data set equal to `ds` in the model, and, with
 * the JSON's character set kept, one that encodes to `again` (`json`
 * itself unless the encoder normalized numbers the decoder read). */
static void expect_round_trip(const mwl_ds *ds, const char *json, const char *again)
{
    for (int keep = 0; keep < 2; keep++) {
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_json_decode_options opt;
        mwl_json_decode_options_init(&opt);
        opt.keep_charset = keep;
        mwl_ds *back = NULL;
        mwl_diag diag;
        int rc = mwl_ds_decode_json(json, strlen(json), &arena, &opt, &back, &diag);
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  decoding %s: %s\n", json, diag.msg);
            mwl_arena_clear(&arena);
            return;
        }
        char why[200] = "";
        CHECK(ds_equiv(ds, back, why, sizeof why));
        if (why[0])
            fprintf(stderr, "  %s\n", why);
        if (keep) {
            mwl_json_report report;
            char *got = to_json(back, 0, &report, &rc);
            CHECK_EQ_INT(rc, MWL_OK);
            CHECK_EQ_STR(got, again);
            free(got);
        }
        mwl_arena_clear(&arena);
    }
}

/* Encoding `ds` gives `want`; decoding `want` and encoding again gives
 * `again`. */
static void expect_json_again(const mwl_ds *ds, const char *want, const char *again)
{
    mwl_json_report report;
    int rc;
    char *got = to_json(ds, 0, &report, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK_EQ_STR(got, want);
    CHECK_EQ_INT(report.charset_problems + report.number_problems, 0);
    free(got);
    CHECK(json_paths_agree(ds));
    expect_round_trip(ds, want, again);
}

static void expect_json(const mwl_ds *ds, const char *want)
{
    expect_json_again(ds, want, want);
}

static void test_strings(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    /* Padding goes, an empty value among several is null (F.2.5), an
     * attribute with no value has no "Value" at all. */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "\\ISO 2022 IR 87"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_AccessionNumber, MWL_VR_SH, " A1 "), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_Modality, MWL_VR_CS, ""), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_StudyInstanceUID, MWL_VR_UI, "1.2.3"), MWL_OK); /* NUL-padded */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_ScheduledStationAETitle, MWL_VR_AE, "CT1\\\\CT2 "), MWL_OK);
    /* LT keeps leading spaces and its backslashes (single-valued). */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0040, 0x0400), MWL_VR_LT, "  a\\b \"q\"\r\n"), MWL_OK);
    expect_json(ds, "{\"00080005\":{\"vr\":\"CS\",\"Value\":[null,\"ISO 2022 IR 87\"]},"
                    "\"00080050\":{\"vr\":\"SH\",\"Value\":[\"A1\"]},"
                    "\"00080060\":{\"vr\":\"CS\"},"
                    "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"1.2.3\"]},"
                    "\"00400001\":{\"vr\":\"AE\",\"Value\":[\"CT1\",null,\"CT2\"]},"
                    "\"00400400\":{\"vr\":\"LT\",\"Value\":[\"  a\\\\b \\\"q\\\"\\r\\n\"]}}");
    mwl_arena_clear(&arena);
}

/* The same name in three character sets gives the same JSON (PS3.5 H.3-1
 * for ISO 2022: escapes around each kanji/kana run). */
static void test_person_names(void)
{
    static const struct {
        const char *charset;
        const char *bytes;
    } cases[] = {
        {"\\ISO 2022 IR 87",
         "Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B"},
        {"ISO_IR 192", "Yamada^Tarou=\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e="
                       "\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86"},
    };
    const char *want =
        "{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Yamada^Tarou\","
        "\"Ideographic\":\"\xe5\xb1\xb1\xe7\x94\xb0^\xe5\xa4\xaa\xe9\x83\x8e\","
        "\"Phonetic\":\"\xe3\x82\x84\xe3\x81\xbe\xe3\x81\xa0^\xe3\x81\x9f\xe3\x82\x8d\xe3\x81\x86\"}]}}";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_arena arena;
        mwl_arena_init(&arena, NULL);
        mwl_ds *ds = new_ds(&arena);
        CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, cases[i].charset), MWL_OK);
        CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, cases[i].bytes), MWL_OK);
        mwl_json_report report;
        int rc;
        char *got = to_json(ds, 0, &report, &rc);
        CHECK_EQ_INT(rc, MWL_OK);
        const char *body = strstr(got, "\"00100010\"");
        CHECK(body != NULL);
        if (body)
            CHECK_EQ_STR(body, want + 1);
        expect_round_trip(ds, got, got);
        free(got);
        mwl_arena_clear(&arena);
    }

    /* Latin-1, in a sequence item inheriting the top's character set; an
     * empty middle group is left out, an empty value among two is null. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_ds *item = NULL;
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_ScheduledPerformingPhysicianName, MWL_VR_PN,
                                "Fran\xe7ois^Ren\xe9==fr^re\\"),
                 MWL_OK);
    expect_json(ds, "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 100\"]},"
                    "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00400006\":{\"vr\":\"PN\",\"Value\":["
                    "{\"Alphabetic\":\"Fran\xc3\xa7ois^Ren\xc3\xa9\",\"Phonetic\":\"fr^re\"},null]}}]}}");
    mwl_arena_clear(&arena);
}

static void test_numbers(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    /* DICOM allows "+7", "007", ".5", "1." -- JSON does not: normalized. */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG(0x0008, 0x1160), MWL_VR_IS, "+7\\007\\-12\\0"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientWeight, MWL_VR_DS, " 72.50 "), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_NumericValue, MWL_VR_DS, ".5\\1.\\-1e3\\+2.5E-2"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_u16(ds, MWL_TAG_PregnancyStatus, 4), MWL_OK);
    static const uint8_t ss[] = {0xfe, 0xff, 0x02, 0x00};
    static const uint8_t sl[] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t fl[] = {0x00, 0x00, 0xc0, 0x3f}; /* 1.5f */
    static const uint8_t fd[] = {0,    0,    0,    0,    0,    0,    0x02, 0xc0,
                                 0x9a, 0x99, 0x99, 0x99, 0x99, 0x99, 0xb9, 0x3f};
    static const uint8_t uv[] = {1, 0, 0, 0, 0, 0, 0x20, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t at[] = {0x10, 0x00, 0x20, 0x00, 0x40, 0x00, 0x00, 0x01};
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9219), MWL_VR_SS, ss, sizeof ss), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9220), MWL_VR_SL, sl, sizeof sl), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9221), MWL_VR_FL, fl, sizeof fl), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9222), MWL_VR_FD, fd, sizeof fd), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0018, 0x9223), MWL_VR_UV, uv, sizeof uv), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0020, 0x9165), MWL_VR_AT, at, sizeof at), MWL_OK);
    /* The decoder reads 72.50 and -1e3 as doubles and writes them back in
     * the shortest form. */
    expect_json_again(
        ds,
        "{\"00081160\":{\"vr\":\"IS\",\"Value\":[7,7,-12,0]},"
        "\"00101030\":{\"vr\":\"DS\",\"Value\":[72.50]},"
        "\"001021C0\":{\"vr\":\"US\",\"Value\":[4]},"
        "\"00189219\":{\"vr\":\"SS\",\"Value\":[-2,2]},"
        "\"00189220\":{\"vr\":\"SL\",\"Value\":[-1]},"
        "\"00189221\":{\"vr\":\"FL\",\"Value\":[1.5]},"
        "\"00189222\":{\"vr\":\"FD\",\"Value\":[-2.25,0.1]},"
        /* 2^53 + 1 is not exact in a double: a string (F.2.3) */
        "\"00189223\":{\"vr\":\"UV\",\"Value\":[\"9007199254740993\",\"18446744073709551615\"]},"
        "\"00209165\":{\"vr\":\"AT\",\"Value\":[\"00100020\",\"00400100\"]},"
        "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[0.5,1,-1e3,0.025]}}",
        "{\"00081160\":{\"vr\":\"IS\",\"Value\":[7,7,-12,0]},"
        "\"00101030\":{\"vr\":\"DS\",\"Value\":[72.5]},"
        "\"001021C0\":{\"vr\":\"US\",\"Value\":[4]},"
        "\"00189219\":{\"vr\":\"SS\",\"Value\":[-2,2]},"
        "\"00189220\":{\"vr\":\"SL\",\"Value\":[-1]},"
        "\"00189221\":{\"vr\":\"FL\",\"Value\":[1.5]},"
        "\"00189222\":{\"vr\":\"FD\",\"Value\":[-2.25,0.1]},"
        /* 2^53 + 1 is not exact in a double: a string (F.2.3) */
        "\"00189223\":{\"vr\":\"UV\",\"Value\":[\"9007199254740993\",\"18446744073709551615\"]},"
        "\"00209165\":{\"vr\":\"AT\",\"Value\":[\"00100020\",\"00400100\"]},"
        "\"0040A30A\":{\"vr\":\"DS\",\"Value\":[0.5,1,-1000,0.025]}}");

    /* Not numbers: strings, counted. */
    mwl_ds *bad = new_ds(&arena);
    CHECK_EQ_INT(mwl_ds_set_str(bad, MWL_TAG(0x0008, 0x1160), MWL_VR_IS, "1.5\\abc"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(bad, MWL_TAG_PatientWeight, MWL_VR_DS, "0x10"), MWL_OK);
    static const uint8_t nan[] = {0x00, 0x00, 0xc0, 0x7f};
    CHECK_EQ_INT(mwl_ds_set(bad, MWL_TAG(0x0018, 0x9221), MWL_VR_FL, nan, sizeof nan), MWL_OK);
    mwl_json_report report;
    int rc;
    char *got = to_json(bad, 0, &report, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK_EQ_STR(got, "{\"00081160\":{\"vr\":\"IS\",\"Value\":[\"1.5\",\"abc\"]},"
                      "\"00101030\":{\"vr\":\"DS\",\"Value\":[\"0x10\"]},"
                      "\"00189221\":{\"vr\":\"FL\",\"Value\":[\"NaN\"]}}");
    CHECK_EQ_INT(report.number_problems, 4);
    CHECK_EQ_INT(report.first_tag, MWL_TAG(0x0008, 0x1160));
    free(got);
    mwl_arena_clear(&arena);
}

static void test_binary_and_sequences(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    static const uint8_t bytes[] = {'M', 'a', 'n', 0xff, 0x00};
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0009, 0x1001), MWL_VR_OB, bytes, 3), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0009, 0x1002), MWL_VR_OB, bytes, 4), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0009, 0x1003), MWL_VR_UN, bytes, 5), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0009, 0x1004), MWL_VR_OW, NULL, 0), MWL_OK);
    /* A group length is not part of the JSON model (F.2.2). */
    CHECK_EQ_INT(mwl_ds_set_u32(ds, MWL_TAG(0x0010, 0x0000), 99), MWL_OK);
    /* An empty sequence (no Value), one with an empty item ({}), nesting. */
    CHECK_EQ_INT(mwl_ds_set_seq(ds, MWL_TAG_ReferencedStudySequence, NULL), MWL_OK);
    mwl_ds *item = NULL, *code = NULL;
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(item, MWL_TAG_ScheduledProtocolCodeSequence, &code), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(code, MWL_TAG_CodeValue, MWL_VR_SH, "X1"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(item, MWL_TAG_ScheduledProtocolCodeSequence, &code), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    expect_json(ds, "{\"00081110\":{\"vr\":\"SQ\"},"
                    "\"00091001\":{\"vr\":\"OB\",\"InlineBinary\":\"TWFu\"},"
                    "\"00091002\":{\"vr\":\"OB\",\"InlineBinary\":\"TWFu/w==\"},"
                    "\"00091003\":{\"vr\":\"UN\",\"InlineBinary\":\"TWFu/wA=\"},"
                    "\"00091004\":{\"vr\":\"OW\"},"
                    "\"00400100\":{\"vr\":\"SQ\",\"Value\":[{\"00400008\":{\"vr\":\"SQ\",\"Value\":["
                    "{\"00080100\":{\"vr\":\"SH\",\"Value\":[\"X1\"]}},{}]}},{}]}}");
    mwl_arena_clear(&arena);
}

static void test_charset_problems(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "Bad\xff^N\"ame"), MWL_OK);
    /* CS is not affected by the character set: a stray byte is not UTF-8. */
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientSex, MWL_VR_CS, "M\x80"), MWL_OK);
    mwl_json_report report;
    int rc;
    char *got = to_json(ds, 0, &report, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK_EQ_STR(got,
                 "{\"00080005\":{\"vr\":\"CS\",\"Value\":[\"ISO_IR 192\"]},"
                 "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"Bad\xef\xbf\xbd^N\\\"ame\"}]},"
                 "\"00100040\":{\"vr\":\"CS\",\"Value\":[\"M\xef\xbf\xbd\"]}}");
    CHECK_EQ_INT(report.charset_problems, 2);
    CHECK_EQ_INT(report.first_tag, MWL_TAG_PatientName);
    CHECK(report.msg[0] != '\0');
    free(got);

    /* An unknown character set: ASCII kept, the rest replaced. */
    mwl_ds *unknown = new_ds(&arena);
    CHECK_EQ_INT(mwl_ds_set_str(unknown, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 999"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(unknown, MWL_TAG_PatientID, MWL_VR_LO, "ID\xe9"), MWL_OK);
    got = to_json(unknown, 0, &report, &rc);
    CHECK(strstr(got, "\"00100020\":{\"vr\":\"LO\",\"Value\":[\"ID\xef\xbf\xbd\"]}") != NULL);
    CHECK_EQ_INT(report.charset_problems, 1);
    free(got);
    mwl_arena_clear(&arena);
}

static void test_string_escapes(void)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_json_put_string(&w, "a\"\\\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\xe2\x82", 15), 2);
    static const char want[] =
        "\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\"";
    CHECK_EQ_MEM(w.data, w.len, want, sizeof want - 1);
    /* Overlong forms and surrogates are not well formed. */
    w.len = 0;
    CHECK_EQ_INT(mwl_json_put_string(&w, "\xc0\xaf\xed\xa0\x80", 5), 5);
    mwl_wbuf_clear(&w);

    /* Whole elements of ASCII text (the encoder's fast path): every byte
     * 01H-7FH but ESC, in an LT, an LO with several values and a PN. */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    char all[128];
    size_t n = 0;
    for (int c = 1; c < 0x80; c++) {
        if (c != 0x1B)
            all[n++] = (char)c;
    }
    CHECK_EQ_INT(mwl_ds_set(ds, MWL_TAG(0x0040, 0x0400), MWL_VR_LT, all, n), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "A\"B\x01=\tC"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_AdmittingDiagnosesDescription, MWL_VR_LO, "x\x7f\\ \\\"y\""),
                 MWL_OK);
    static const char want_el[] =
        "{\"00081080\":{\"vr\":\"LO\",\"Value\":[\"x\x7f\",null,\"\\\"y\\\"\"]},"
        "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"A\\\"B\\u0001\",\"Ideographic\":\"\\tC\"}]}"
        ","
        "\"00400400\":{\"vr\":\"LT\",\"Value\":[\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
        "\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
        "\\u001a\\u001c\\u001d\\u001e\\u001f !\\\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        "[\\\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f\"]}}";
    int rc;
    char *got = to_json(ds, 0, NULL, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK_EQ_STR(got, want_el);
    free(got);
    CHECK(json_paths_agree(ds));
    mwl_arena_clear(&arena);
}

static void test_indent(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_ds *item = NULL;
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientID, MWL_VR_LO, "P1"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_Modality, MWL_VR_CS, "MR"), MWL_OK);
    int rc;
    char *got = to_json(ds, 2, NULL, &rc);
    CHECK_EQ_INT(rc, MWL_OK);
    CHECK_EQ_STR(got, "{\n"
                      "  \"00100020\": {\"vr\":\"LO\",\"Value\":[\"P1\"]},\n"
                      "  \"00400100\": {\"vr\":\"SQ\",\"Value\":[\n"
                      "    {\n"
                      "      \"00080060\": {\"vr\":\"CS\",\"Value\":[\"MR\"]}\n"
                      "    }\n"
                      "  ]}\n"
                      "}");
    free(got);
    /* An empty data set is an empty object either way. */
    mwl_ds *empty = new_ds(&arena);
    got = to_json(empty, 2, NULL, &rc);
    CHECK_EQ_STR(got, "{}");
    free(got);
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    CHECK_EQ_INT(mwl_ds_encode_json(NULL, NULL, &w, NULL), MWL_E_INVALID);
    mwl_wbuf_clear(&w);
    mwl_arena_clear(&arena);
}

static void test_out_of_memory(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *ds = new_ds(&arena);
    mwl_ds *item = NULL;
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 100"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(ds, MWL_TAG_PatientName, MWL_VR_PN, "M\xfcller^Hans"), MWL_OK);
    CHECK_EQ_INT(mwl_ds_add_item(ds, MWL_TAG_ScheduledProcedureStepSequence, &item), MWL_OK);
    CHECK_EQ_INT(mwl_ds_set_str(item, MWL_TAG_ScheduledProcedureStepDescription, MWL_VR_LO, "Kn\xe9"),
                 MWL_OK);
    int rc;
    char *want = to_json(ds, 0, NULL, &rc);
    bool completed = false;
    for (size_t fail_at = 1; fail_at < 200 && !completed; fail_at++) {
        mwl_mem_failing failing;
        mwl_mem_failing_init(&failing, fail_at);
        mwl_wbuf w;
        mwl_wbuf_init(&w, &failing.mem);
        rc = mwl_ds_encode_json(ds, NULL, &w, NULL);
        if (rc == MWL_OK) {
            CHECK_EQ_MEM(w.data, w.len, want, strlen(want));
            completed = true;
        } else {
            CHECK_EQ_INT(rc, MWL_E_NOMEM);
        }
        mwl_wbuf_clear(&w);
    }
    CHECK(completed);
    free(want);
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_strings);
    RUN_TEST(test_person_names);
    RUN_TEST(test_numbers);
    RUN_TEST(test_binary_and_sequences);
    RUN_TEST(test_charset_problems);
    RUN_TEST(test_string_escapes);
    RUN_TEST(test_indent);
    RUN_TEST(test_out_of_memory);
    return check_report("json_test");
}
