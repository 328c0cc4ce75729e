/* Tests for dicom/datetime.c: DA/TM/DT grammar and calendar checks (PS3.5
 * Table 6.2-1), comparison keys, and range values (PS3.4 C.2.2.2.5). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "dicom/datetime.h"

#define USEC INT64_C(1000000)

/* ---- DA ---------------------------------------------------------------- */

static const struct {
    const char *in;
    int year, month, day; /* 0 = must be rejected */
} date_cases[] = {
    {"20240315", 2024, 3, 15},    {"20240229", 2024, 2, 29}, /* leap year */
    {"20000229", 2000, 2, 29},                               /* divisible by 400 */
    {"24000229", 2400, 2, 29},                               /* divisible by 400 */
    {"00000229", 0, 2, 29}, /* year 0 is a leap year in the proleptic calendar */
    {"19000228", 1900, 2, 28},    {"99991231", 9999, 12, 31},  {"20240131", 2024, 1, 31},
    {"20240430", 2024, 4, 30},    {"20240315  ", 2024, 3, 15}, /* trailing padding */
    {"1990.01.02", 1990, 1, 2},                                /* retired ACR-NEMA form */
    {"2024.02.29 ", 2024, 2, 29}, {"20230229", 0, 0, 0},       /* not a leap year */
    {"19000229", 0, 0, 0},                                     /* divisible by 100, not 400 */
    {"21000229", 0, 0, 0},        {"20241301", 0, 0, 0},       /* month 13 */
    {"20240001", 0, 0, 0},                                     /* month 0 */
    {"20240100", 0, 0, 0},                                     /* day 0 */
    {"20240132", 0, 0, 0},        {"20240431", 0, 0, 0},       /* April has 30 days */
    {"2024031", 0, 0, 0},         {"202403155", 0, 0, 0},      {"2024-03-15", 0, 0, 0},
    {"2024.0315", 0, 0, 0},       {" 20240315", 0, 0, 0}, /* leading space is not padding */
    {"2024031a", 0, 0, 0},        {"+0240315", 0, 0, 0},       {"", 0, 0, 0},
    {"        ", 0, 0, 0},
};

static void test_date_parse(void)
{
    for (size_t i = 0; i < sizeof date_cases / sizeof date_cases[0]; i++) {
        mwl_date d = {0, 0, 0};
        int rc = mwl_date_parse(date_cases[i].in, strlen(date_cases[i].in), &d);
        if (date_cases[i].month == 0) {
            CHECK_EQ_INT(rc, MWL_E_MALFORMED);
            if (rc != MWL_E_MALFORMED)
                fprintf(stderr, "  accepted DA \"%s\"\n", date_cases[i].in);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  rejected DA \"%s\"\n", date_cases[i].in);
            continue;
        }
        CHECK_EQ_INT(d.year, date_cases[i].year);
        CHECK_EQ_INT(d.month, date_cases[i].month);
        CHECK_EQ_INT(d.day, date_cases[i].day);
    }
    /* The length bounds the read: the rest of the buffer is not looked at. */
    mwl_date d;
    CHECK_EQ_INT(mwl_date_parse("2024031599", 8, &d), MWL_OK);
    CHECK_EQ_INT(mwl_date_key(&d), 20240315);
}

/* ---- TM ---------------------------------------------------------------- */

static const struct {
    const char *in;
    int ok;
    int hour, minute, second;
    long fraction;
    int precision;
} time_cases[] = {
    {"10", 1, 10, -1, -1, -1, 1},
    {"1030", 1, 10, 30, -1, -1, 2},
    {"103015", 1, 10, 30, 15, -1, 3},
    {"000000", 1, 0, 0, 0, -1, 3},
    {"235959", 1, 23, 59, 59, -1, 3},
    {"235960", 1, 23, 59, 60, -1, 3}, /* leap second */
    {"103015.1", 1, 10, 30, 15, 100000, 4},
    {"103015.12", 1, 10, 30, 15, 120000, 4},
    {"103015.123", 1, 10, 30, 15, 123000, 4},
    {"103015.1234", 1, 10, 30, 15, 123400, 4},
    {"103015.12345", 1, 10, 30, 15, 123450, 4},
    {"103015.123456", 1, 10, 30, 15, 123456, 4},
    {"103015.000001", 1, 10, 30, 15, 1, 4},
    {"1030  ", 1, 10, 30, -1, -1, 2},
    {"10:30:15", 1, 10, 30, 15, -1, 3}, /* retired form */
    {"10:30", 1, 10, 30, -1, -1, 2},
    {"10:30:15.5", 1, 10, 30, 15, 500000, 4},
    {"103015.1234567", 0, 0, 0, 0, 0, 0}, /* 7 fraction digits */
    {"103015.", 0, 0, 0, 0, 0, 0},
    {"240000", 0, 0, 0, 0, 0, 0}, /* hour 24 */
    {"24", 0, 0, 0, 0, 0, 0},
    {"1060", 0, 0, 0, 0, 0, 0},
    {"103061", 0, 0, 0, 0, 0, 0},
    {"1", 0, 0, 0, 0, 0, 0},
    {"103", 0, 0, 0, 0, 0, 0},
    {"10301", 0, 0, 0, 0, 0, 0},
    {"1030.5", 0, 0, 0, 0, 0, 0}, /* fraction without seconds */
    {"10.5", 0, 0, 0, 0, 0, 0},
    {"10:3015", 0, 0, 0, 0, 0, 0},
    {"1030:15", 0, 0, 0, 0, 0, 0},
    {"10:", 0, 0, 0, 0, 0, 0},
    {"10:30:", 0, 0, 0, 0, 0, 0},
    {"103015.12a", 0, 0, 0, 0, 0, 0},
    {" 1030", 0, 0, 0, 0, 0, 0},
    {"", 0, 0, 0, 0, 0, 0},
    {"1030+0100", 0, 0, 0, 0, 0, 0}, /* TM has no offset */
};

static void test_time_parse(void)
{
    for (size_t i = 0; i < sizeof time_cases / sizeof time_cases[0]; i++) {
        mwl_time t;
        memset(&t, 0x55, sizeof t);
        int rc = mwl_time_parse(time_cases[i].in, strlen(time_cases[i].in), &t);
        if (!time_cases[i].ok) {
            CHECK_EQ_INT(rc, MWL_E_MALFORMED);
            if (rc != MWL_E_MALFORMED)
                fprintf(stderr, "  accepted TM \"%s\"\n", time_cases[i].in);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  rejected TM \"%s\"\n", time_cases[i].in);
            continue;
        }
        CHECK_EQ_INT(t.hour, time_cases[i].hour);
        CHECK_EQ_INT(t.minute, time_cases[i].minute);
        CHECK_EQ_INT(t.second, time_cases[i].second);
        CHECK_EQ_INT(t.fraction, time_cases[i].fraction);
        CHECK_EQ_INT(t.precision, time_cases[i].precision);
    }
}

/* ---- DT ---------------------------------------------------------------- */

static const struct {
    const char *in;
    int ok;
    int year, month, day, hour, minute, second;
    long fraction;
    int precision, has_offset, offset;
} dt_cases[] = {
    {"2024", 1, 2024, 1, 1, -1, -1, -1, -1, 1, 0, 0},
    {"202403", 1, 2024, 3, 1, -1, -1, -1, -1, 2, 0, 0},
    {"20240315", 1, 2024, 3, 15, -1, -1, -1, -1, 3, 0, 0},
    {"2024031510", 1, 2024, 3, 15, 10, -1, -1, -1, 4, 0, 0},
    {"202403151030", 1, 2024, 3, 15, 10, 30, -1, -1, 5, 0, 0},
    {"20240315103015", 1, 2024, 3, 15, 10, 30, 15, -1, 6, 0, 0},
    {"20240315103015.5", 1, 2024, 3, 15, 10, 30, 15, 500000, 7, 0, 0},
    {"20240315103015.123456", 1, 2024, 3, 15, 10, 30, 15, 123456, 7, 0, 0},
    {"20161231235960", 1, 2016, 12, 31, 23, 59, 60, -1, 6, 0, 0}, /* leap second */
    {"20240229", 1, 2024, 2, 29, -1, -1, -1, -1, 3, 0, 0},
    {"20240315103015+0100", 1, 2024, 3, 15, 10, 30, 15, -1, 6, 1, 60},
    {"20240315103015-0500", 1, 2024, 3, 15, 10, 30, 15, -1, 6, 1, -300},
    {"20240315103015.5-0330", 1, 2024, 3, 15, 10, 30, 15, 500000, 7, 1, -210},
    {"2024+1400", 1, 2024, 1, 1, -1, -1, -1, -1, 1, 1, 840},
    {"2024-1200", 1, 2024, 1, 1, -1, -1, -1, -1, 1, 1, -720},
    {"2024+0000  ", 1, 2024, 1, 1, -1, -1, -1, -1, 1, 1, 0},
    {"20240315 ", 1, 2024, 3, 15, -1, -1, -1, -1, 3, 0, 0},
    {"2024+1401", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, /* beyond +1400 */
    {"2024-1201", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"2024+0160", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"2024+010", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"2024+01000", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"20230229", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"202413", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"2024031524", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"20240315103015.1234567", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"202403151030.5", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"20240315103015.", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"20240315:10:30", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"202", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"20243", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"2024031", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"202403151", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"+0100", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

static void test_datetime_parse(void)
{
    for (size_t i = 0; i < sizeof dt_cases / sizeof dt_cases[0]; i++) {
        mwl_datetime dt;
        memset(&dt, 0x55, sizeof dt);
        int rc = mwl_datetime_parse(dt_cases[i].in, strlen(dt_cases[i].in), &dt);
        if (!dt_cases[i].ok) {
            CHECK_EQ_INT(rc, MWL_E_MALFORMED);
            if (rc != MWL_E_MALFORMED)
                fprintf(stderr, "  accepted DT \"%s\"\n", dt_cases[i].in);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  rejected DT \"%s\"\n", dt_cases[i].in);
            continue;
        }
        CHECK_EQ_INT(dt.date.year, dt_cases[i].year);
        CHECK_EQ_INT(dt.date.month, dt_cases[i].month);
        CHECK_EQ_INT(dt.date.day, dt_cases[i].day);
        CHECK_EQ_INT(dt.time.hour, dt_cases[i].hour);
        CHECK_EQ_INT(dt.time.minute, dt_cases[i].minute);
        CHECK_EQ_INT(dt.time.second, dt_cases[i].second);
        CHECK_EQ_INT(dt.time.fraction, dt_cases[i].fraction);
        CHECK_EQ_INT(dt.precision, dt_cases[i].precision);
        CHECK_EQ_INT(dt.has_offset, dt_cases[i].has_offset);
        CHECK_EQ_INT(dt.offset_minutes, dt_cases[i].offset);
    }
}

/* ---- keys -------------------------------------------------------------- */

static mwl_time tm_of(const char *s)
{
    mwl_time t;
    memset(&t, 0, sizeof t);
    int rc = mwl_time_parse(s, strlen(s), &t);
    CHECK_EQ_INT(rc, MWL_OK);
    return t;
}

static mwl_datetime dt_of(const char *s)
{
    mwl_datetime dt;
    memset(&dt, 0, sizeof dt);
    int rc = mwl_datetime_parse(s, strlen(s), &dt);
    CHECK_EQ_INT(rc, MWL_OK);
    return dt;
}

static mwl_date da_of(const char *s)
{
    mwl_date d = {0, 0, 0};
    int rc = mwl_date_parse(s, strlen(s), &d);
    CHECK_EQ_INT(rc, MWL_OK);
    return d;
}

static void test_keys(void)
{
    /* Dates order as integers, across month and year ends. */
    const char *dates[] = {"00000101", "19991231", "20000101", "20000229",
                           "20000301", "20231231", "99991231"};
    for (size_t i = 1; i < sizeof dates / sizeof dates[0]; i++) {
        mwl_date a = da_of(dates[i - 1]), b = da_of(dates[i]);
        CHECK(mwl_date_key(&a) < mwl_date_key(&b));
    }
    mwl_date retired = da_of("2000.02.29"), modern = da_of("20000229");
    CHECK_EQ_INT(mwl_date_key(&retired), mwl_date_key(&modern));

    /* Times: lower bound = start of the period, upper = its end. */
    mwl_time t = tm_of("10");
    CHECK_EQ_INT(mwl_time_key(&t, false), 10 * 3600 * USEC);
    CHECK_EQ_INT(mwl_time_key(&t, true), 11 * 3600 * USEC - 1);
    t = tm_of("1030");
    CHECK_EQ_INT(mwl_time_key(&t, false), (10 * 3600 + 30 * 60) * USEC);
    CHECK_EQ_INT(mwl_time_key(&t, true), (10 * 3600 + 31 * 60) * USEC - 1);
    t = tm_of("103015");
    CHECK_EQ_INT(mwl_time_key(&t, true), (10 * 3600 + 30 * 60 + 16) * USEC - 1);
    t = tm_of("103015.5");
    CHECK_EQ_INT(mwl_time_key(&t, false), (10 * 3600 + 30 * 60 + 15) * USEC + 500000);
    CHECK_EQ_INT(mwl_time_key(&t, true), mwl_time_key(&t, false)); /* a fraction is exact */
    /* C.2.2.2.1.3: "2230" means the same as "223000". */
    mwl_time a = tm_of("2230"), b = tm_of("223000");
    CHECK_EQ_INT(mwl_time_key(&a, false), mwl_time_key(&b, false));
    mwl_time r1 = tm_of("10:30:15"), r2 = tm_of("103015");
    CHECK_EQ_INT(mwl_time_key(&r1, true), mwl_time_key(&r2, true));
    const char *times[] = {"00", "000000.000001", "0001",   "09",    "0959", "095959.999999",
                           "10", "1001",          "235959", "235960"};
    for (size_t i = 1; i < sizeof times / sizeof times[0]; i++) {
        mwl_time x = tm_of(times[i - 1]), y = tm_of(times[i]);
        CHECK(mwl_time_key(&x, false) < mwl_time_key(&y, false));
    }

    /* Date-times: partial values span their period. */
    mwl_datetime d = dt_of("2024");
    mwl_datetime d0 = dt_of("20240101000000"), d1 = dt_of("20241231235959.999999");
    CHECK_EQ_INT(mwl_datetime_key(&d, false), mwl_datetime_key(&d0, false));
    CHECK_EQ_INT(mwl_datetime_key(&d, true), mwl_datetime_key(&d1, false));
    d = dt_of("202402"); /* leap February ends on the 29th */
    d1 = dt_of("20240229235959.999999");
    CHECK_EQ_INT(mwl_datetime_key(&d, true), mwl_datetime_key(&d1, false));
    d = dt_of("202302");
    d1 = dt_of("20230228235959.999999");
    CHECK_EQ_INT(mwl_datetime_key(&d, true), mwl_datetime_key(&d1, false));
    d = dt_of("20240315");
    d1 = dt_of("20240316");
    CHECK_EQ_INT(mwl_datetime_key(&d, true) + 1, mwl_datetime_key(&d1, false));
    d = dt_of("2024031510");
    d1 = dt_of("20240315105959.999999");
    CHECK_EQ_INT(mwl_datetime_key(&d, true), mwl_datetime_key(&d1, false));
    /* C.2.2.2.1.3: trailing fraction zeros do not change the meaning. */
    d = dt_of("19980128103000.0000");
    d1 = dt_of("19980128103000");
    CHECK_EQ_INT(mwl_datetime_key(&d, false), mwl_datetime_key(&d1, false));
    /* Exactly one day after 0000-01-01, and across a leap day. */
    d = dt_of("0000");
    d1 = dt_of("00000102");
    CHECK_EQ_INT(mwl_datetime_key(&d, false), 0);
    CHECK_EQ_INT(mwl_datetime_key(&d1, false), 86400 * USEC);
    d = dt_of("20000228");
    d1 = dt_of("20000301");
    CHECK_EQ_INT(mwl_datetime_key(&d1, false) - mwl_datetime_key(&d, false), 2 * 86400 * USEC);
    d = dt_of("19000228");
    d1 = dt_of("19000301");
    CHECK_EQ_INT(mwl_datetime_key(&d1, false) - mwl_datetime_key(&d, false), 86400 * USEC);
    /* 1970-01-01 is 719528 days after 0000-01-01 (proleptic Gregorian). */
    d = dt_of("19700101");
    CHECK_EQ_INT(mwl_datetime_key(&d, false), INT64_C(719528) * 86400 * USEC);

    /* Offsets bring values to UTC: 12:00+0100 is 11:00 UTC = 06:00-0500. */
    mwl_datetime p = dt_of("20240315120000+0100"), u = dt_of("20240315110000+0000"),
                 n = dt_of("20240315060000-0500"), l = dt_of("20240315110000");
    CHECK_EQ_INT(mwl_datetime_key(&p, false), mwl_datetime_key(&u, false));
    CHECK_EQ_INT(mwl_datetime_key(&n, false), mwl_datetime_key(&u, false));
    CHECK_EQ_INT(mwl_datetime_key(&l, false), mwl_datetime_key(&u, false)); /* no offset: taken as is */
    /* An offset moves the date too: 2024-01-01 00:30+0100 is still 2023 in UTC. */
    p = dt_of("202401010030+0100");
    u = dt_of("2023");
    CHECK(mwl_datetime_key(&p, false) < mwl_datetime_key(&u, true));

    const char *asc[] = {
        "19991231235959.999999", "2000", "20000101000000.000001", "20000229", "20000301", "2001",
        "99991231235960"};
    for (size_t i = 1; i < sizeof asc / sizeof asc[0]; i++) {
        mwl_datetime x = dt_of(asc[i - 1]), y = dt_of(asc[i]);
        CHECK(mwl_datetime_key(&x, false) < mwl_datetime_key(&y, false));
        CHECK(mwl_datetime_key(&x, false) <= mwl_datetime_key(&x, true));
    }
}

/* ---- ranges ------------------------------------------------------------ */

static void test_date_range(void)
{
    static const struct {
        const char *in;
        int ok, has_lo, has_hi;
        int32_t lo, hi;
    } cases[] = {
        {"20240101-20240131", 1, 1, 1, 20240101, 20240131},
        {"20240101-", 1, 1, 0, 20240101, 0},
        {"-20240131", 1, 0, 1, 0, 20240131},
        {"20240315", 1, 1, 1, 20240315, 20240315},
        {"20240315 ", 1, 1, 1, 20240315, 20240315},
        {"20240101-20240131  ", 1, 1, 1, 20240101, 20240131},
        {"1990.01.01-1990.12.31", 1, 1, 1, 19900101, 19901231},
        {"20240131-20240101", 1, 1, 1, 20240131, 20240101}, /* reversed: parses, matches nothing */
        {"-", 0, 0, 0, 0, 0},
        {"", 0, 0, 0, 0, 0},
        {"20240101--20240131", 0, 0, 0, 0, 0},
        {"20240101-20240131-", 0, 0, 0, 0, 0},
        {"20240101 -20240131", 0, 0, 0, 0, 0}, /* padding only at the very end */
        {"20240101- 20240131", 0, 0, 0, 0, 0},
        {"20240230-", 0, 0, 0, 0, 0},
        {"-20241301", 0, 0, 0, 0, 0},
        {"2024-", 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_date_range r;
        memset(&r, 0x55, sizeof r);
        int rc = mwl_date_range_parse(cases[i].in, strlen(cases[i].in), &r);
        if (!cases[i].ok) {
            CHECK_EQ_INT(rc, MWL_E_MALFORMED);
            if (rc != MWL_E_MALFORMED)
                fprintf(stderr, "  accepted DA range \"%s\"\n", cases[i].in);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  rejected DA range \"%s\"\n", cases[i].in);
            continue;
        }
        CHECK_EQ_INT(r.has_lo, cases[i].has_lo);
        CHECK_EQ_INT(r.has_hi, cases[i].has_hi);
        if (r.has_lo)
            CHECK_EQ_INT(mwl_date_key(&r.lo), cases[i].lo);
        if (r.has_hi)
            CHECK_EQ_INT(mwl_date_key(&r.hi), cases[i].hi);
    }
}

static void test_time_range(void)
{
    static const struct {
        const char *in;
        int ok, has_lo, has_hi;
        int64_t lo, hi; /* lower key of lo, upper key of hi, in seconds when whole */
    } cases[] = {
        {"1000-1800", 1, 1, 1, 10 * 3600, 18 * 3600 + 60},
        {"10-18", 1, 1, 1, 10 * 3600, 19 * 3600}, /* 18 = up to 18:59:59.999999 */
        {"1000-", 1, 1, 0, 10 * 3600, 0},
        {"-1800", 1, 0, 1, 0, 18 * 3600 + 60},
        {"103000", 1, 1, 1, 10 * 3600 + 1800, 10 * 3600 + 1801},
        {"10:00-18:00", 1, 1, 1, 10 * 3600, 18 * 3600 + 60},
        {"080000-180000 ", 1, 1, 1, 8 * 3600, 18 * 3600 + 1},
        {"2200-0200", 1, 1, 1, 22 * 3600, 2 * 3600 + 60}, /* crosses midnight: parses, caller decides */
        {"-", 0, 0, 0, 0, 0},
        {"", 0, 0, 0, 0, 0},
        {"1000-1800-", 0, 0, 0, 0, 0},
        {"2400-", 0, 0, 0, 0, 0},
        {"-1060", 0, 0, 0, 0, 0},
        {"10-1", 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_time_range r;
        memset(&r, 0x55, sizeof r);
        int rc = mwl_time_range_parse(cases[i].in, strlen(cases[i].in), &r);
        if (!cases[i].ok) {
            CHECK_EQ_INT(rc, MWL_E_MALFORMED);
            if (rc != MWL_E_MALFORMED)
                fprintf(stderr, "  accepted TM range \"%s\"\n", cases[i].in);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  rejected TM range \"%s\"\n", cases[i].in);
            continue;
        }
        CHECK_EQ_INT(r.has_lo, cases[i].has_lo);
        CHECK_EQ_INT(r.has_hi, cases[i].has_hi);
        if (r.has_lo)
            CHECK_EQ_INT(mwl_time_key(&r.lo, false), cases[i].lo * USEC);
        if (r.has_hi)
            CHECK_EQ_INT(mwl_time_key(&r.hi, true), cases[i].hi * USEC - 1);
    }
}

static void test_datetime_range(void)
{
    static const struct {
        const char *in;
        int ok, has_lo, has_hi;
        const char *lo, *hi; /* equivalent single values, compared by lower/upper key */
    } cases[] = {
        {"20240101-20240131", 1, 1, 1, "20240101", "20240131"},
        {"2024-", 1, 1, 0, "2024", NULL},
        {"-2024", 1, 0, 1, NULL, "2024"},
        {"202403151030", 1, 1, 1, "202403151030", "202403151030"},
        {"20240315103000+0100-20240315120000+0100", 1, 1, 1, "20240315103000+0100", "20240315120000+0100"},
        /* Negative offsets on the bounds: the only reading with two valid DTs. */
        {"20240315103000-0500-20240315120000-0500", 1, 1, 1, "20240315103000-0500", "20240315120000-0500"},
        {"20240315103000-0500-", 1, 1, 0, "20240315103000-0500", NULL},
        {"-20240315103000-0500", 1, 0, 1, NULL, "20240315103000-0500"},
        {"20240315103000-0500-2025", 1, 1, 1, "20240315103000-0500", "2025"},
        {"2024-20240315103000-0500", 1, 1, 1, "2024", "20240315103000-0500"},
        /* C.2.2.2.1 note 3: one hyphen is always the separator, never a
         * negative offset, so this is 2020-01-01 .. year 0500. */
        {"20200101-0500", 1, 1, 1, "20200101", "0500"},
        {"20200101+0500", 1, 1, 1, "20200101+0500", "20200101+0500"},
        {"20240101-20240131  ", 1, 1, 1, "20240101", "20240131"},
        {"-", 0, 0, 0, NULL, NULL},
        {"", 0, 0, 0, NULL, NULL},
        {"--", 0, 0, 0, NULL, NULL},
        {"2024--2025", 0, 0, 0, NULL, NULL},
        {"2020-0100-0100", 0, 0, 0, NULL, NULL}, /* two readings: ambiguous */
        {"20240101-20240131-20240201", 0, 0, 0, NULL, NULL},
        {"20241301-", 0, 0, 0, NULL, NULL},
        {"-2024+1500", 0, 0, 0, NULL, NULL},
        {"20240101-202401311", 0, 0, 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mwl_datetime_range r;
        memset(&r, 0x55, sizeof r);
        int rc = mwl_datetime_range_parse(cases[i].in, strlen(cases[i].in), &r);
        if (!cases[i].ok) {
            CHECK_EQ_INT(rc, MWL_E_MALFORMED);
            if (rc != MWL_E_MALFORMED)
                fprintf(stderr, "  accepted DT range \"%s\"\n", cases[i].in);
            continue;
        }
        CHECK_EQ_INT(rc, MWL_OK);
        if (rc != MWL_OK) {
            fprintf(stderr, "  rejected DT range \"%s\"\n", cases[i].in);
            continue;
        }
        CHECK_EQ_INT(r.has_lo, cases[i].has_lo);
        CHECK_EQ_INT(r.has_hi, cases[i].has_hi);
        if (r.has_lo) {
            mwl_datetime want = dt_of(cases[i].lo);
            CHECK_EQ_INT(mwl_datetime_key(&r.lo, false), mwl_datetime_key(&want, false));
            CHECK_EQ_INT(r.lo.precision, want.precision);
            CHECK_EQ_INT(r.lo.has_offset, want.has_offset);
            CHECK_EQ_INT(r.lo.offset_minutes, want.offset_minutes);
        }
        if (r.has_hi) {
            mwl_datetime want = dt_of(cases[i].hi);
            CHECK_EQ_INT(mwl_datetime_key(&r.hi, true), mwl_datetime_key(&want, true));
            CHECK_EQ_INT(r.hi.precision, want.precision);
            CHECK_EQ_INT(r.hi.has_offset, want.has_offset);
            CHECK_EQ_INT(r.hi.offset_minutes, want.offset_minutes);
        }
    }
    /* A range from 10:30 UTC-5 to 12:00 UTC-5 holds 16:00 UTC, not 11:00 UTC. */
    mwl_datetime_range r;
    const char *q = "20240315103000-0500-20240315120000-0500";
    CHECK_EQ_INT(mwl_datetime_range_parse(q, strlen(q), &r), MWL_OK);
    mwl_datetime in = dt_of("20240315160000+0000"), out = dt_of("20240315110000+0000");
    int64_t lo = mwl_datetime_key(&r.lo, false), hi = mwl_datetime_key(&r.hi, true);
    int64_t k_in = mwl_datetime_key(&in, false), k_out = mwl_datetime_key(&out, false);
    CHECK(lo <= k_in && k_in <= hi);
    CHECK(!(lo <= k_out && k_out <= hi));
}

/* ---- clock and formatting ---------------------------------------------- */

static int32_t clock_date_key(void)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm))
        return -1;
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static void test_today_and_format(void)
{
    /* Read the clock independently before and after: a midnight between the
     * reads is the only way the two may differ. */
    int32_t before = clock_date_key();
    mwl_date d;
    mwl_date_today(&d);
    int32_t after = clock_date_key();
    CHECK(mwl_date_key(&d) == before || mwl_date_key(&d) == after);
    char buf[16];
    mwl_date_format(&d, buf, sizeof buf);
    CHECK_EQ_INT(strlen(buf), 8);
    mwl_date back;
    CHECK_EQ_INT(mwl_date_parse(buf, strlen(buf), &back), MWL_OK);
    CHECK_EQ_INT(mwl_date_key(&back), mwl_date_key(&d));

    mwl_date x = da_of("00010203");
    mwl_date_format(&x, buf, sizeof buf);
    CHECK_EQ_STR(buf, "00010203");
    mwl_date_format(&x, buf, 5); /* truncated, still terminated */
    CHECK_EQ_STR(buf, "0001");

    static const struct {
        const char *in, *out;
    } times[] = {
        {"10", "10"},
        {"1030", "1030"},
        {"103015", "103015"},
        {"103015.5", "103015.500000"},
        {"10:30:15.000001", "103015.000001"},
        {"235960", "235960"},
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        mwl_time t = tm_of(times[i].in);
        char tb[14];
        mwl_time_format(&t, tb, sizeof tb);
        CHECK_EQ_STR(tb, times[i].out);
        /* What we write parses back to the same value. */
        mwl_time again = tm_of(tb);
        CHECK_EQ_INT(mwl_time_key(&again, false), mwl_time_key(&t, false));
        CHECK_EQ_INT(mwl_time_key(&again, true), mwl_time_key(&t, true));
    }
}

int main(void)
{
    RUN_TEST(test_date_parse);
    RUN_TEST(test_time_parse);
    RUN_TEST(test_datetime_parse);
    RUN_TEST(test_keys);
    RUN_TEST(test_date_range);
    RUN_TEST(test_time_range);
    RUN_TEST(test_datetime_range);
    RUN_TEST(test_today_and_format);
    return check_report("datetime_test");
}
