/* Table tests for the matching functions, one table per matching type of
 * PS3.4 C.2.2.2, then the vectors of tests/vectors/query/match.tsv run
 * through parse + match, sequence matching, combined date-time matching and
 * character set cross matching. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dicom/datetime.h"
#include "worklist/wl_test_util.h"
#include "worklist/worklist_int.h"

#define CASE MWL_FOLD_CASE
#define ACCENT MWL_FOLD_ACCENT

/* ---- C.2.2.2.3 universal ------------------------------------------------- */

static void test_universal(void)
{
    static const struct {
        mwl_vr vr;
        const char *key;
        bool universal;
    } rows[] = {
        {MWL_VR_PN, "", true},    /* C.2.2.2.3: zero length */
        {MWL_VR_PN, "*", true},   /* C.2.2.2.4 note 1 */
        {MWL_VR_LO, "***", true}, /* only '*' */
        {MWL_VR_CS, "*?", false}, /* '?' needs a character */
        {MWL_VR_PN, "A*", false}, /* a wild card, not universal */
        {MWL_VR_DA, "*", false},  /* C.2.2.2.4: not applicable to DA */
        {MWL_VR_UI, "*", false},  /* nor to UI */
        {MWL_VR_DA, "", true},    /* zero length on any VR */
        {MWL_VR_UT, "*", true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool got = mwl_match_is_universal(rows[i].vr, rows[i].key, strlen(rows[i].key));
        if (got != rows[i].universal)
            fprintf(stderr, "  row %zu: %s \"%s\"\n", i, mwl_vr_code(rows[i].vr), rows[i].key);
        CHECK(got == rows[i].universal);
    }
}

/* ---- C.2.2.2.1 single value ---------------------------------------------- */

static void test_single(void)
{
    static const struct {
        const char *key, *value;
        unsigned fold;
        bool match;
    } rows[] = {
        {"CT", "CT", 0, true},
        {"CT", "ct", 0, false}, /* C.2.2.2.1: case-sensitive */
        {"CT", "CTX", 0, false},
        {"", "", 0, true},
        {"SMITH", "smith", CASE, true},   /* C.2.2.2.1.1: PN may fold case */
        {"MÜLLER", "müller", CASE, true}, /* Latin-1 capitals */
        {"ŁÓDŹ", "łódź", CASE, true},     /* Latin Extended-A pairs */
        {"ĹĽ", "ĺľ", CASE, true},         /* ... with flipped parity in U+0139..U+0148 */
        {"Ÿ", "ÿ", CASE, true},
        {"ИВАНОВ", "иванов", CASE, true}, /* Cyrillic */
        {"ЁЖ", "ёж", CASE, true},
        {"ＡＢ", "ａｂ", CASE, true},      /* full-width Latin */
        {"Müller", "Muller", CASE, false}, /* accents count unless asked */
        {"Müller", "Muller", ACCENT, true},
        {"Müller", "MULLER", ACCENT, false},
        {"Müller", "MULLER", CASE | ACCENT, true},
        {"Straße", "Strase", CASE | ACCENT, false}, /* sharp s is not "s + mark" */
        {"Æ", "A", CASE | ACCENT, false},
        {"Łukasz", "lukasz", CASE | ACCENT, true},
        {"M\xFF", "M\xFF", 0, true}, /* invalid UTF-8 compares as bytes */
        {"M\xFF", "M\xFE", CASE, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool got = mwl_match_single(rows[i].key, strlen(rows[i].key), rows[i].value, strlen(rows[i].value),
                                    rows[i].fold);
        if (got != rows[i].match)
            fprintf(stderr, "  row %zu: \"%s\" vs \"%s\"\n", i, rows[i].key, rows[i].value);
        CHECK(got == rows[i].match);
    }
}

/* ---- C.2.2.2.4 wild card ------------------------------------------------- */

static void test_wildcard(void)
{
    static const struct {
        const char *pattern, *value;
        unsigned fold;
        bool match;
    } rows[] = {
        {"*", "", 0, true},
        {"*", "anything", 0, true},
        {"?", "", 0, false},
        {"?", "a", 0, true},
        {"?", "ab", 0, false},
        {"DOE*", "DOE^JOHN", 0, true},
        {"*JOHN", "DOE^JOHN", 0, true},
        {"*OE^J*", "DOE^JOHN", 0, true},
        {"D?E^JOHN", "DOE^JOHN", 0, true},
        {"D?E", "DOE^JOHN", 0, false},
        {"*a*b*c*", "xaybzc", 0, true},
        {"*a*b*c*", "xaybz", 0, false},
        {"*ab", "aab", 0, true}, /* the '*' must give back */
        {"a*b?", "ab", 0, false},
        {"a**b", "ab", 0, true},
        {"do*", "DOE", 0, false},        /* C.2.2.2.4: case-sensitive ... */
        {"do*", "DOE", CASE, true},      /* ... except PN if the SCP says so */
        {"M?ller", "Müller", 0, true},   /* '?' is one character ... */
        {"M??ller", "Müller", 0, false}, /* ... not one byte */
        {"山?", "山田", 0, true},
        {"?田", "山田", 0, true},
        {"??", "山田", 0, true},
        {"???", "山田", 0, false},
        {"*Ö*", "hör", CASE, true},
        {"*o*", "hör", CASE | ACCENT, true},
        {"a\\b*", "a\\bc", 0, true}, /* no escapes: '\' is literal here */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool got = mwl_match_wildcard(rows[i].pattern, strlen(rows[i].pattern), rows[i].value,
                                      strlen(rows[i].value), rows[i].fold);
        if (got != rows[i].match)
            fprintf(stderr, "  row %zu: \"%s\" vs \"%s\"\n", i, rows[i].pattern, rows[i].value);
        CHECK(got == rows[i].match);
    }
    /* A pathological pattern stays cheap (no exponential backtracking). */
    char value[4001];
    memset(value, 'a', 4000);
    value[4000] = '\0';
    CHECK(!mwl_match_wildcard("*a*a*a*a*a*a*a*a*b", 18, value, 4000, 0));
}

/* ---- C.2.2.2.2 list of UID ----------------------------------------------- */

static void test_uid_list(void)
{
    mwl_qvalue uids[3];
    memset(uids, 0, sizeof uids);
    const char *list[] = {"1.2.840.10008.5.1.4.31", "1.2.3", "1.2.3.4"};
    for (int i = 0; i < 3; i++) {
        uids[i].text = list[i];
        uids[i].len = strlen(list[i]);
    }
    static const struct {
        const char *uid;
        bool match;
    } rows[] = {
        {"1.2.3", true},   {"1.2.3.4", true}, {"1.2.840.10008.5.1.4.31", true},
        {"1.2.34", false}, {"1.2", false},    {"", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK(mwl_match_uid_list(uids, 3, rows[i].uid, strlen(rows[i].uid)) == rows[i].match);
    CHECK(!mwl_match_uid_list(uids, 0, "1.2.3", 5));
}

/* ---- C.2.2.2.5 range ----------------------------------------------------- */

static int64_t da(const char *s)
{
    mwl_date d;
    CHECK(mwl_date_parse(s, strlen(s), &d) == MWL_OK);
    return mwl_date_key(&d);
}

static void test_range(void)
{
    /* C.2.2.2.5.1 DA: D1-D2, -D2, D1- inclusive. */
    static const struct {
        const char *range, *value;
        bool match;
    } dates[] = {
        {"20240105-20240107", "20240105", true},  {"20240105-20240107", "20240107", true},
        {"20240105-20240107", "20240104", false}, {"20240105-20240107", "20240108", false},
        {"-20240107", "19000101", true},          {"-20240107", "20240108", false},
        {"20240105-", "99991231", true},          {"20240105-", "20240104", false},
        {"20240105", "20240105", true},           {"20240105", "20240106", false},
    };
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        mwl_date_range r;
        CHECK(mwl_date_range_parse(dates[i].range, strlen(dates[i].range), &r) == MWL_OK);
        int64_t lo = r.has_lo ? mwl_date_key(&r.lo) : 0, hi = r.has_hi ? mwl_date_key(&r.hi) : 0;
        CHECK(mwl_match_range(r.has_lo, lo, r.has_hi, hi, da(dates[i].value)) == dates[i].match);
    }
    /* C.2.2.2.5.3 DT: moments in time, UTC offsets taken into account. */
    static const struct {
        const char *range, *value;
        bool match;
    } dts[] = {
        {"20240105100000-20240105180000", "20240105120000", true},
        {"20240105100000-20240105180000", "20240105190000", false},
        {"20240105100000+0000-20240105180000+0000", "20240105120000+0100", true},  /* 11:00 UTC */
        {"20240105100000+0000-20240105180000+0000", "20240105100000+0100", false}, /* 09:00 UTC */
        {"2024-", "20240101", true},
        {"-2023", "20231231235959", true},
        {"-2023", "20240101", false},
    };
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        mwl_datetime_range r;
        mwl_datetime v;
        CHECK(mwl_datetime_range_parse(dts[i].range, strlen(dts[i].range), &r) == MWL_OK);
        CHECK(mwl_datetime_parse(dts[i].value, strlen(dts[i].value), &v) == MWL_OK);
        int64_t lo = r.has_lo ? mwl_datetime_key(&r.lo, false) : 0;
        int64_t hi = r.has_hi ? mwl_datetime_key(&r.hi, true) : 0;
        bool got = mwl_match_range(r.has_lo, lo, r.has_hi, hi, mwl_datetime_key(&v, false));
        if (got != dts[i].match)
            fprintf(stderr, "  DT row %zu: %s vs %s\n", i, dts[i].range, dts[i].value);
        CHECK(got == dts[i].match);
    }
    CHECK(mwl_match_range(false, 0, false, 0, INT64_MIN));
    CHECK(!mwl_match_range(true, 5, true, 4, 5));
}

/* ---- C.2.2.2.1.1 PN, C.2.2.2.7 empty, numbers ---------------------------- */

static void test_pn(void)
{
    static const struct {
        const char *key, *value;
        bool wildcard;
        bool match;
    } rows[] = {
        {"Yamada^Tarou", "Yamada^Tarou=山田^太郎=やまだ^たろう", false, true}, /* any group */
        {"山田^太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう", false, true},
        {"やまだ^たろう", "Yamada^Tarou=山田^太郎=やまだ^たろう", false, true},
        {"山田*", "Yamada^Tarou=山田^太郎", true, true},
        {"=山田^太郎", "Yamada^Tarou=山田^太郎", false, true}, /* group by group */
        {"Yamada^Tarou=山田^太郎", "Yamada^Tarou=山田^太郎", false, true},
        {"Yamada^Tarou=山田^花子", "Yamada^Tarou=山田^太郎", false, false},
        {"==やまだ*", "Yamada^Tarou=山田^太郎", true, false}, /* no phonetic group */
        {"Yamada*=", "Yamada^Tarou=山田^太郎", true, true},
        {"DOE^JOHN", "DOE^JOHN", false, true},
        {"DOE", "DOE^JOHN", false, false},
        {"DOE", "=DOE", false, true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool got = mwl_match_pn(rows[i].key, strlen(rows[i].key), rows[i].wildcard, rows[i].value,
                                strlen(rows[i].value), 0);
        if (got != rows[i].match)
            fprintf(stderr, "  row %zu: \"%s\" vs \"%s\"\n", i, rows[i].key, rows[i].value);
        CHECK(got == rows[i].match);
    }
}

static void test_pn_normalize(void)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"DOE^JOHN^^^", "DOE^JOHN"},
        {" DOE ^ JOHN ", "DOE^JOHN"},
        {"DOE^^^JR", "DOE^^^JR"},
        {"^JOHN", "^JOHN"},
        {"DOE==", "DOE"},
        {"=山田", "=山田"},
        {"A^=B^", "A=B"},
        {"", ""},
        {"^^=^", ""},
    };
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        w.len = 0;
        mwl_pn_normalize(rows[i].in, strlen(rows[i].in), &w);
        CHECK_EQ_MEM(w.data, w.len, rows[i].out, strlen(rows[i].out));
    }
    mwl_wbuf_clear(&w);
}

static void test_empty_and_number(void)
{
    /* C.2.2.2.7: exactly two quotation marks. */
    CHECK(mwl_match_is_empty_key("\"\"", 2));
    CHECK(!mwl_match_is_empty_key("\"", 1));
    CHECK(!mwl_match_is_empty_key("\"a\"", 3));
    /* CP-2305: IS/DS by value. */
    CHECK(mwl_match_number(7, "+7", 2));
    CHECK(mwl_match_number(7, "007", 3));
    CHECK(mwl_match_number(7, "7.0", 3));
    CHECK(mwl_match_number(70, "7E1", 3));
    CHECK(!mwl_match_number(7, "7x", 2));
    CHECK(!mwl_match_number(7, "", 0));
}

static void test_values(void)
{
    /* PS3.5 6.4 and 6.2: splitting on '\' and trimming per VR. */
    const char *v;
    size_t n, pos = 0;
    const char *s = " CT \\MR\\\\US ";
    const char *want[] = {"CT", "MR", "", "US"};
    size_t k = 0;
    while (mwl_wl_next_value(MWL_VR_CS, s, strlen(s), &pos, &v, &n)) {
        CHECK(k < 4);
        if (k < 4)
            CHECK_EQ_MEM(v, n, want[k], strlen(want[k]));
        k++;
    }
    CHECK_EQ_INT(k, 4);
    pos = 0;
    s = " a\\b ";
    CHECK(mwl_wl_next_value(MWL_VR_LT, s, strlen(s), &pos, &v, &n));
    CHECK_EQ_MEM(v, n, " a\\b", 4); /* one value, leading space kept */
    CHECK(!mwl_wl_next_value(MWL_VR_LT, s, strlen(s), &pos, &v, &n));
    pos = 0;
    CHECK(!mwl_wl_next_value(MWL_VR_CS, "", 0, &pos, &v, &n));
    pos = 0;
    s = "1.2.3\0";
    CHECK(mwl_wl_next_value(MWL_VR_UI, s, 6, &pos, &v, &n));
    CHECK_EQ_MEM(v, n, "1.2.3", 5);
}

/* ---- vectors: tests/vectors/query/match.tsv ------------------------------ */

static void run_vector(int line, char **f, void *user)
{
    (void)user;
    const char *clause = f[0], *key = f[1], *options = f[2], *qcs = f[3], *query = f[4], *scs = f[5],
               *stored = f[6], *expect = f[7];
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *id = wlt_vector_ds(&arena, qcs, key, query);
    mwl_ds *item = wlt_vector_ds(&arena, scs, key, stored);
    mwl_match_opts opts;
    mwl_match_opts_init(&opts);
    opts.pn_case_sensitive = strstr(options, "pn_strict") != NULL;
    opts.pn_accent_insensitive = strstr(options, "accents") != NULL;
    mwl_query *q = NULL;
    mwl_diag diag;
    int rc = mwl_query_parse(id, &arena, &q, &diag);
    bool ok;
    if (strcmp(expect, "A900") == 0) {
        ok = rc != MWL_OK && mwl_query_failure_status(rc) == 0xA900 && diag.msg[0] != '\0';
    } else if (rc != MWL_OK) {
        ok = false;
    } else {
        mwl_matcher m;
        mwl_matcher_init(&m, &opts, NULL);
        bool matched = false;
        rc = mwl_match_dataset(&m, q, item, 0, &matched, &diag);
        mwl_matcher_clear(&m);
        if (strcmp(expect, "ignored") == 0)
            ok = rc == MWL_OK && matched && mwl_query_pending_status(q) == 0xFF01;
        else
            ok = rc == MWL_OK && matched == (strcmp(expect, "match") == 0) &&
                 mwl_query_pending_status(q) == 0xFF00;
    }
    check_count++;
    if (!ok) {
        check_failures++;
        fprintf(stderr, "match.tsv:%d (%s) %s: \"%s\" vs \"%s\" expected %s (rc %d, %s)\n", line, clause, key,
                query, stored, expect, rc, diag.msg);
    }
    mwl_arena_clear(&arena);
}

static void test_vectors(void)
{
    int rows = wlt_match_vectors(run_vector, NULL);
    CHECK(rows > 100);
}

/* ---- C.2.2.2.6 sequence matching ----------------------------------------- */

static void test_sequence(void)
{
    const char *item =
        "PatientID=P1|OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=X][PatientID=B2|"
        "IssuerOfPatientID=Y]|ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle=CT1]";
    /* Every key of the query item must match within one stored item. */
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=X]", item, NULL),
                 1);
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[PatientID=B2|IssuerOfPatientID=Y]", item, NULL),
                 1);
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[PatientID=A1|IssuerOfPatientID=Y]", item, NULL),
                 0);
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[PatientID=*2]", item, NULL), 1);
    /* Universal sequences: empty, one empty item, only return keys. */
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence<>", item, NULL), 1);
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[]", item, NULL), 1);
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[PatientID=]", "PatientID=P1", NULL), 1);
    /* A non-universal sequence key against an item without the sequence. */
    CHECK_EQ_INT(wlt_count_matches("OtherPatientIDsSequence[PatientID=A1]", "PatientID=P1", NULL), 0);
    CHECK_EQ_INT(
        wlt_count_matches("OtherPatientIDsSequence[PatientID=A1]", "OtherPatientIDsSequence<>", NULL), 0);
    /* Nested sequences. */
    const char *nested =
        "ScheduledProcedureStepSequence[Modality=CT|ScheduledProtocolCodeSequence[CodeValue=P1|"
        "CodingSchemeDesignator=99L][CodeValue=P2|CodingSchemeDesignator=99L]]";
    CHECK_EQ_INT(
        wlt_count_matches("ScheduledProcedureStepSequence[ScheduledProtocolCodeSequence[CodeValue=P2]]",
                          nested, NULL),
        1);
    CHECK_EQ_INT(
        wlt_count_matches("ScheduledProcedureStepSequence[ScheduledProtocolCodeSequence[CodeValue=P3]]",
                          nested, NULL),
        0);
    CHECK_EQ_INT(wlt_count_matches("ScheduledProcedureStepSequence[Modality=MR|ScheduledProtocolCodeSequence["
                                   "CodeValue=P2]]",
                                   nested, NULL),
                 0);
    /* Keys of different levels: all must match. */
    CHECK_EQ_INT(wlt_count_matches("PatientID=P1|ScheduledProcedureStepSequence[Modality=CT]", item, NULL),
                 1);
    CHECK_EQ_INT(wlt_count_matches("PatientID=P2|ScheduledProcedureStepSequence[Modality=CT]", item, NULL),
                 0);
}

/* ---- K.6.1.2.1 one candidate per SPS ------------------------------------- */

static void test_multi_sps(void)
{
    const char *item =
        "PatientName=DOE^JANE|ScheduledProcedureStepSequence[Modality=CT|ScheduledStationAETitle="
        "CT1|ScheduledProcedureStepStartDate=20240105][Modality=MR|ScheduledStationAETitle=MR1|"
        "ScheduledProcedureStepStartDate=20240106]";
    CHECK_EQ_INT(wlt_count_matches("PatientName=", item, NULL), 2);
    CHECK_EQ_INT(wlt_count_matches("ScheduledProcedureStepSequence[Modality=MR]", item, NULL), 1);
    /* The keys of the query item must hold in the same SPS. */
    CHECK_EQ_INT(wlt_count_matches("ScheduledProcedureStepSequence[Modality=MR|ScheduledStationAETitle=CT1]",
                                   item, NULL),
                 0);
    CHECK_EQ_INT(wlt_count_matches(
                     "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=20240101-]", item, NULL),
                 2);
    /* An item without SPS is one candidate that no SPS key can match. */
    CHECK_EQ_INT(wlt_count_matches("ScheduledProcedureStepSequence[Modality=CT]", "PatientName=X", NULL), 0);
    CHECK_EQ_INT(wlt_count_matches("PatientName=X", "PatientName=X", NULL), 1);
}

/* ---- C.2.2.2.5.4 combined date-time -------------------------------------- */

static int sps_at(const char *date_key, const char *time_key, const char *date, const char *time)
{
    char id[256], item[256];
    snprintf(id, sizeof id,
             "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=%s|"
             "ScheduledProcedureStepStartTime=%s]",
             date_key, time_key);
    snprintf(item, sizeof item,
             "ScheduledProcedureStepSequence[ScheduledProcedureStepStartDate=%s|"
             "ScheduledProcedureStepStartTime=%s]",
             date, time);
    return wlt_count_matches(id, item, NULL);
}

static void test_combined_datetime(void)
{
    static const struct {
        const char *dk, *tk, *date, *time;
        int match;
    } rows[] = {
        /* Table K.6-1 remark: 5-7 July + 10:00-18:00 = 5 July 10:00 to 7 July 18:00. */
        {"20060705-20060707", "1000-1800", "20060705", "0959", 0},
        {"20060705-20060707", "1000-1800", "20060705", "1000", 1},
        {"20060705-20060707", "1000-1800", "20060706", "0800", 1}, /* not 10-18 on each day */
        {"20060705-20060707", "1000-1800", "20060706", "2300", 1},
        {"20060705-20060707", "1000-1800", "20060707", "1800", 1},
        {"20060705-20060707", "1000-1800", "20060707", "1801", 0},
        {"20060705-20060707", "1000-1800", "20060708", "1200", 0},
        /* Open ends. */
        {"20060705-", "1000-", "20060705", "0900", 0},
        {"20060705-", "1000-", "20060710", "0500", 1},
        {"-20060707", "-1800", "20000101", "2300", 1},
        {"-20060707", "-1800", "20060707", "1900", 0},
        {"20060705-20060707", "-1800", "20060705", "0000", 1}, /* open time end: whole day */
        {"20060705-20060707", "1000-", "20060707", "235959", 1},
        /* Only one of the pair a range: each matched alone. */
        {"20060705-20060707", "1000", "20060706", "0800", 0},
        {"20060705-20060707", "1000", "20060706", "1000", 1},
        {"20060706", "1000-1800", "20060706", "0800", 0},
        {"20060706", "1000-1800", "20060706", "1200", 1},
        /* An item without a start time cannot be placed in the range. */
        {"20060705-20060707", "1000-1800", "20060706", "", 0},
        /* Across midnight (issue 10): 1 January 23:00 to 2 January 01:00; the
         * upper bound "0100" names a minute, so it ends at 01:00:59.999999. */
        {"20260101-20260102", "2300-0100", "20260101", "0030", 0},
        {"20260101-20260102", "2300-0100", "20260101", "2259", 0},
        {"20260101-20260102", "2300-0100", "20260101", "225959.999999", 0},
        {"20260101-20260102", "2300-0100", "20260101", "2300", 1},
        {"20260101-20260102", "2300-0100", "20260101", "235959", 1},
        {"20260101-20260102", "2300-0100", "20260102", "000000", 1},
        {"20260101-20260102", "2300-0100", "20260102", "0030", 1},
        {"20260101-20260102", "2300-0100", "20260102", "010000", 1},
        {"20260101-20260102", "2300-0100", "20260102", "010059.999999", 1},
        {"20260101-20260102", "2300-0100", "20260102", "0101", 0},
        {"20260101-20260102", "2300-0100", "20260102", "2330", 0},
        {"20260101-20260102", "2300-0100", "20251231", "2330", 0},
        /* ... over several days: every moment in between. */
        {"20260101-20260103", "2300-0100", "20260102", "1200", 1},
        {"20260101-20260103", "2300-0100", "20260103", "0100", 1},
        {"20260101-20260103", "2300-0100", "20260103", "2300", 0},
        /* ... with an open end, only the closed end's time counts. */
        {"20260101-", "2300-0100", "20260101", "2259", 0},
        {"20260101-", "2300-0100", "20260105", "0500", 1},
        {"-20260102", "2300-0100", "20251201", "1200", 1},
        {"-20260102", "2300-0100", "20260102", "0101", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int got = sps_at(rows[i].dk, rows[i].tk, rows[i].date, rows[i].time);
        if (got != rows[i].match)
            fprintf(stderr, "  row %zu: %s %s vs %s %s\n", i, rows[i].dk, rows[i].tk, rows[i].date,
                    rows[i].time);
        CHECK_EQ_INT(got, rows[i].match);
    }
}

/* ---- matcher reuse: no allocation per item once warm --------------------- */

static void test_no_allocation_per_item(void)
{
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *id =
        wlt_ds(&arena, "PatientName=m?ller*|ScheduledProcedureStepSequence[Modality=CT|"
                       "ScheduledProcedureStepStartDate=20240101-20240131|ScheduledProcedureStepStartTime="
                       "0800-1700]");
    mwl_ds *item =
        wlt_ds(&arena, "SpecificCharacterSet=ISO_IR 100|PatientName=M\xDCLLER^HANS|"
                       "ScheduledProcedureStepSequence[Modality=CT|ScheduledProcedureStepStartDate="
                       "20240115|ScheduledProcedureStepStartTime=0930]");
    mwl_query *q;
    mwl_diag diag;
    CHECK(mwl_query_parse(id, &arena, &q, &diag) == MWL_OK);
    mwl_mem_failing failing;
    mwl_mem_failing_init(&failing, 0);
    mwl_matcher m;
    mwl_matcher_init(&m, NULL, &failing.mem);
    bool matched = false;
    CHECK(mwl_match_dataset(&m, q, item, 0, &matched, &diag) == MWL_OK);
    CHECK(matched);
    size_t warm = failing.count;
    for (int i = 0; i < 100; i++) {
        CHECK(mwl_match_dataset(&m, q, item, 0, &matched, &diag) == MWL_OK);
        CHECK(matched);
    }
    CHECK_EQ_INT(failing.count, warm);
    /* And an allocation failure in the scratch is reported, not ignored. */
    mwl_matcher_clear(&m);
    mwl_mem_failing_init(&failing, 1);
    mwl_matcher_init(&m, NULL, &failing.mem);
    CHECK_EQ_INT(mwl_match_dataset(&m, q, item, 0, &matched, &diag), MWL_E_NOMEM);
    mwl_matcher_clear(&m);
    mwl_arena_clear(&arena);
}

int main(void)
{
    RUN_TEST(test_universal);
    RUN_TEST(test_single);
    RUN_TEST(test_wildcard);
    RUN_TEST(test_uid_list);
    RUN_TEST(test_range);
    RUN_TEST(test_pn);
    RUN_TEST(test_pn_normalize);
    RUN_TEST(test_empty_and_number);
    RUN_TEST(test_values);
    RUN_TEST(test_vectors);
    RUN_TEST(test_sequence);
    RUN_TEST(test_multi_sps);
    RUN_TEST(test_combined_datetime);
    RUN_TEST(test_no_allocation_per_item);
    return check_report("match_test");
}
