/* DA, TM and DT values (PS3.5 Table 6.2-1) and their range forms for
 * C-FIND range matching (PS3.4 C.2.2.2.5).
 *
 * Parsing is strict about the grammar (exact digit counts, calendar checks)
 * because these values decide which worklist items a modality sees; the only
 * tolerances are the ones the standard names: trailing space padding and the
 * retired ACR-NEMA forms "YYYY.MM.DD" and "HH:MM:SS".
 *
 * Keys. A partial value names a period ("2020" is a whole year, TM "10" a
 * whole hour). As a lower bound it stands for the start of that period; as an
 * upper bound for its end ("10" = 10:59:59.999999), so that "-10" includes
 * 10:30 and the single value "2230" equals "223000" (C.2.2.2.1.3). A
 * fraction is a value, not a period: "10:30:00.5" is 10:30:00.500000 either
 * way, which makes "103000.5000" equal "103000.5" as C.2.2.2.1.3 asks.
 *
 * DT ranges and negative UTC offsets. "-" both separates a range and signs a
 * negative offset. PS3.4 C.2.2.2.1 (note 3) says a single DT key value cannot
 * carry a negative offset because the "-" makes it a range: so a hyphen is
 * never read as an offset sign when that would leave no range separator, and
 * "20200101-0500" is the range from 2020-01-01 to the year 0500 (which then
 * matches nothing). When a value holds several hyphens, each is tried as the
 * separator, and the value is accepted only if exactly one choice leaves two
 * valid DT bounds (either may be empty): "20200101-0500-20200102-0500" is
 * 2020-01-01 (UTC-5) to 2020-01-02 (UTC-5). Two valid readings (a contrived
 * value such as "2020-0100-0100") are rejected as ambiguous rather than
 * guessed. */
#include "dicom/datetime.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_DAY (INT64_C(86400) * USEC_PER_SEC)

/* Padding is a trailing space (PS3.5 Table 6.2-1: DA, TM and DT are padded
 * with spaces); a NUL is not a valid pad for these VRs. */
static size_t trim_trailing(const char *s, size_t len)
{
    while (len > 0 && s[len - 1] == ' ')
        len--;
    return len;
}

/* Reads exactly n decimal digits. */
static bool read_digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap(year))
        return 29;
    return days[month - 1];
}

static bool valid_ymd(int year, int month, int day)
{
    return year >= 0 && year <= 9999 && month >= 1 && month <= 12 && day >= 1 &&
           day <= days_in_month(year, month);
}

/* Days from 0000-01-01 to year-month-day in the proleptic Gregorian calendar
 * (year 0 is a leap year, as 2000 is). */
static int64_t days_since_epoch0(int year, int month, int day)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    /* Leap years among 0 .. year-1. */
    int64_t leaps = (year + 3) / 4 - (year + 99) / 100 + (year + 399) / 400;
    int64_t days = (int64_t)year * 365 + leaps + before[month - 1] + (day - 1);
    if (month > 2 && is_leap(year))
        days++;
    return days;
}

/* ---- DA ---------------------------------------------------------------- */

/* Exactly "YYYYMMDD" or "YYYY.MM.DD", no padding. */
static bool parse_date_exact(const char *s, size_t len, mwl_date *out)
{
    int y, m, d;
    if (len == 8) {
        if (!read_digits(s, 4, &y) || !read_digits(s + 4, 2, &m) || !read_digits(s + 6, 2, &d))
            return false;
    } else if (len == 10 && s[4] == '.' && s[7] == '.') {
        /* Retired ACR-NEMA form, still written by old equipment. */
        if (!read_digits(s, 4, &y) || !read_digits(s + 5, 2, &m) || !read_digits(s + 8, 2, &d))
            return false;
    } else {
        return false;
    }
    if (!valid_ymd(y, m, d))
        return false;
    out->year = (int16_t)y;
    out->month = (int8_t)m;
    out->day = (int8_t)d;
    return true;
}

int mwl_date_parse(const char *s, size_t len, mwl_date *out)
{
    if (!s || !out)
        return MWL_E_INVALID;
    len = trim_trailing(s, len);
    mwl_date d;
    if (!parse_date_exact(s, len, &d))
        return MWL_E_MALFORMED;
    *out = d;
    return MWL_OK;
}

/* ---- TM ---------------------------------------------------------------- */

/* ".F{1,6}" at s (len bytes, all of them): the fraction in microseconds. */
static bool parse_fraction(const char *s, size_t len, int32_t *out)
{
    if (len < 2 || len > 7 || s[0] != '.')
        return false;
    int v;
    if (!read_digits(s + 1, len - 1, &v))
        return false;
    for (size_t i = len - 1; i < 6; i++)
        v *= 10;
    *out = (int32_t)v;
    return true;
}

/* Exactly "HH[MM[SS[.F{1,6}]]]", or with `retired` also "HH:MM[:SS[.F{1,6}]]". */
static bool parse_time_exact(const char *s, size_t len, bool retired, mwl_time *out)
{
    mwl_time t = {.hour = -1, .minute = -1, .second = -1, .fraction = -1, .precision = 0};
    int v;
    if (len < 2 || !read_digits(s, 2, &v) || v > 23)
        return false;
    t.hour = (int8_t)v;
    t.precision = 1;
    size_t pos = 2;
    bool colons = retired && len > 2 && s[2] == ':';
    if (pos < len) {
        if (colons)
            pos++;
        if (len - pos < 2 || !read_digits(s + pos, 2, &v) || v > 59)
            return false;
        t.minute = (int8_t)v;
        t.precision = 2;
        pos += 2;
    }
    if (pos < len && s[pos] != '.') {
        if (colons) {
            if (s[pos] != ':')
                return false;
            pos++;
        }
        /* 60 is a leap second (PS3.5 Table 6.2-1, TM). */
        if (len - pos < 2 || !read_digits(s + pos, 2, &v) || v > 60)
            return false;
        t.second = (int8_t)v;
        t.precision = 3;
        pos += 2;
    }
    if (pos < len) {
        /* A fraction only follows seconds. */
        if (t.precision != 3 || !parse_fraction(s + pos, len - pos, &t.fraction))
            return false;
        t.precision = 4;
    }
    *out = t;
    return true;
}

int mwl_time_parse(const char *s, size_t len, mwl_time *out)
{
    if (!s || !out)
        return MWL_E_INVALID;
    len = trim_trailing(s, len);
    mwl_time t;
    if (!parse_time_exact(s, len, true, &t))
        return MWL_E_MALFORMED;
    *out = t;
    return MWL_OK;
}

/* ---- DT ---------------------------------------------------------------- */

/* Exactly "YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]". */
static bool parse_datetime_exact(const char *s, size_t len, mwl_datetime *out)
{
    mwl_datetime dt;
    memset(&dt, 0, sizeof dt);
    dt.time = (mwl_time){.hour = -1, .minute = -1, .second = -1, .fraction = -1, .precision = 0};

    /* The body is digits and '.', so a sign five from the end can only be
     * the start of the offset. */
    if (len >= 5 && (s[len - 5] == '+' || s[len - 5] == '-')) {
        int hh, mm;
        if (!read_digits(s + len - 4, 2, &hh) || !read_digits(s + len - 2, 2, &mm) || mm > 59)
            return false;
        int minutes = hh * 60 + mm;
        if (s[len - 5] == '-')
            minutes = -minutes;
        /* PS3.5 Table 6.2-1: offsets run from -1200 to +1400. */
        if (minutes < -720 || minutes > 840)
            return false;
        dt.has_offset = true;
        dt.offset_minutes = (int16_t)minutes;
        len -= 5;
    }

    int v;
    if (len < 4 || !read_digits(s, 4, &v))
        return false;
    dt.date.year = (int16_t)v;
    dt.date.month = 1;
    dt.date.day = 1;
    dt.precision = 1;
    if (len > 4) {
        if (len < 6 || !read_digits(s + 4, 2, &v) || v < 1 || v > 12)
            return false;
        dt.date.month = (int8_t)v;
        dt.precision = 2;
    }
    if (len > 6) {
        if (len < 8 || !read_digits(s + 6, 2, &v) || !valid_ymd(dt.date.year, dt.date.month, v))
            return false;
        dt.date.day = (int8_t)v;
        dt.precision = 3;
    }
    if (len > 8) {
        /* The time part uses the TM grammar; DT never had a colon form. */
        if (!parse_time_exact(s + 8, len - 8, false, &dt.time))
            return false;
        dt.precision = (uint8_t)(3 + dt.time.precision);
    }
    *out = dt;
    return true;
}

int mwl_datetime_parse(const char *s, size_t len, mwl_datetime *out)
{
    if (!s || !out)
        return MWL_E_INVALID;
    len = trim_trailing(s, len);
    mwl_datetime dt;
    if (!parse_datetime_exact(s, len, &dt))
        return MWL_E_MALFORMED;
    *out = dt;
    return MWL_OK;
}

/* ---- keys -------------------------------------------------------------- */

int32_t mwl_date_key(const mwl_date *d)
{
    return (int32_t)d->year * 10000 + (int32_t)d->month * 100 + (int32_t)d->day;
}

int64_t mwl_time_key(const mwl_time *t, bool upper)
{
    if (t->hour < 0)
        return upper ? USEC_PER_DAY - 1 : 0;
    int64_t minute = t->minute >= 0 ? t->minute : (upper ? 59 : 0);
    int64_t second = t->second >= 0 ? t->second : (upper ? 59 : 0);
    int64_t fraction = t->fraction >= 0 ? t->fraction : (upper ? 999999 : 0);
    return ((t->hour * INT64_C(60) + minute) * 60 + second) * USEC_PER_SEC + fraction;
}

int64_t mwl_datetime_key(const mwl_datetime *dt, bool upper)
{
    int year = dt->date.year;
    int month = dt->precision >= 2 ? dt->date.month : (upper ? 12 : 1);
    int day = dt->precision >= 3 ? dt->date.day : (upper ? days_in_month(year, month) : 1);
    int64_t key = days_since_epoch0(year, month, day) * USEC_PER_DAY;
    if (dt->precision >= 4)
        key += mwl_time_key(&dt->time, upper);
    else if (upper)
        key += USEC_PER_DAY - 1;
    /* Local time = UTC + offset, so UTC = local - offset. */
    if (dt->has_offset)
        key -= (int64_t)dt->offset_minutes * 60 * USEC_PER_SEC;
    return key;
}

/* ---- ranges ------------------------------------------------------------ */

/* DA and TM values contain no '-', so at most one may appear: the range
 * separator. Returns the number of bounds found: 1 (single value, in *lo) or
 * 2 (range); 0 when malformed. Empty sides come back with length 0. */
static int split_simple(const char *s, size_t len, size_t *lo_len, const char **hi, size_t *hi_len)
{
    const char *dash = len ? memchr(s, '-', len) : NULL;
    if (!dash) {
        *lo_len = len;
        return len ? 1 : 0;
    }
    size_t at = (size_t)(dash - s);
    if (memchr(dash + 1, '-', len - at - 1))
        return 0;
    *lo_len = at;
    *hi = dash + 1;
    *hi_len = len - at - 1;
    /* "-" alone is no range at all. */
    return (at == 0 && *hi_len == 0) ? 0 : 2;
}

int mwl_date_range_parse(const char *s, size_t len, mwl_date_range *out)
{
    if (!s || !out)
        return MWL_E_INVALID;
    len = trim_trailing(s, len);
    mwl_date_range r;
    memset(&r, 0, sizeof r);
    size_t lo_len = 0, hi_len = 0;
    const char *hi = NULL;
    int parts = split_simple(s, len, &lo_len, &hi, &hi_len);
    if (parts == 0)
        return MWL_E_MALFORMED;
    if (parts == 1) {
        if (!parse_date_exact(s, lo_len, &r.lo))
            return MWL_E_MALFORMED;
        r.hi = r.lo;
        r.has_lo = r.has_hi = true;
    } else {
        if (lo_len && !parse_date_exact(s, lo_len, &r.lo))
            return MWL_E_MALFORMED;
        if (hi_len && !parse_date_exact(hi, hi_len, &r.hi))
            return MWL_E_MALFORMED;
        r.has_lo = lo_len > 0;
        r.has_hi = hi_len > 0;
    }
    *out = r;
    return MWL_OK;
}

int mwl_time_range_parse(const char *s, size_t len, mwl_time_range *out)
{
    if (!s || !out)
        return MWL_E_INVALID;
    len = trim_trailing(s, len);
    mwl_time_range r;
    memset(&r, 0, sizeof r);
    size_t lo_len = 0, hi_len = 0;
    const char *hi = NULL;
    int parts = split_simple(s, len, &lo_len, &hi, &hi_len);
    if (parts == 0)
        return MWL_E_MALFORMED;
    if (parts == 1) {
        if (!parse_time_exact(s, lo_len, true, &r.lo))
            return MWL_E_MALFORMED;
        r.hi = r.lo;
        r.has_lo = r.has_hi = true;
    } else {
        if (lo_len && !parse_time_exact(s, lo_len, true, &r.lo))
            return MWL_E_MALFORMED;
        if (hi_len && !parse_time_exact(hi, hi_len, true, &r.hi))
            return MWL_E_MALFORMED;
        r.has_lo = lo_len > 0;
        r.has_hi = hi_len > 0;
    }
    *out = r;
    return MWL_OK;
}

int mwl_datetime_range_parse(const char *s, size_t len, mwl_datetime_range *out)
{
    if (!s || !out)
        return MWL_E_INVALID;
    len = trim_trailing(s, len);
    if (len == 0)
        return MWL_E_MALFORMED;
    mwl_datetime_range r;
    memset(&r, 0, sizeof r);
    if (!memchr(s, '-', len)) {
        if (!parse_datetime_exact(s, len, &r.lo))
            return MWL_E_MALFORMED;
        r.hi = r.lo;
        r.has_lo = r.has_hi = true;
        *out = r;
        return MWL_OK;
    }
    /* Try every hyphen as the separator; see the comment at the top. */
    int readings = 0;
    for (size_t at = 0; at < len; at++) {
        if (s[at] != '-')
            continue;
        size_t hi_len = len - at - 1;
        if (at == 0 && hi_len == 0)
            continue;
        mwl_datetime lo, hi;
        if (at > 0 && !parse_datetime_exact(s, at, &lo))
            continue;
        if (hi_len > 0 && !parse_datetime_exact(s + at + 1, hi_len, &hi))
            continue;
        if (++readings > 1)
            return MWL_E_MALFORMED;
        r.has_lo = at > 0;
        r.has_hi = hi_len > 0;
        if (r.has_lo)
            r.lo = lo;
        if (r.has_hi)
            r.hi = hi;
    }
    if (readings != 1)
        return MWL_E_MALFORMED;
    *out = r;
    return MWL_OK;
}

/* ---- clock and formatting ---------------------------------------------- */

void mwl_date_today(mwl_date *out)
{
    time_t now = time(NULL);
    struct tm tm;
    /* localtime_r, not localtime: the server answers queries on several
     * threads and localtime's static buffer would be shared. */
    if (now == (time_t)-1 || !localtime_r(&now, &tm)) {
        /* Only a broken clock gets here; the epoch keeps the value valid. */
        memset(&tm, 0, sizeof tm);
        tm.tm_year = 70;
        tm.tm_mday = 1;
    }
    out->year = (int16_t)(tm.tm_year + 1900);
    out->month = (int8_t)(tm.tm_mon + 1);
    out->day = (int8_t)tm.tm_mday;
}

void mwl_date_format(const mwl_date *d, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    snprintf(buf, cap, "%04d%02d%02d", d->year, d->month, d->day);
}

void mwl_time_format(const mwl_time *t, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return;
    buf[0] = '\0';
    if (t->hour < 0)
        return;
    /* Only the components present are written: padding an omitted minute
     * with "00" would turn the period "10" into the instant 10:00:00 and
     * change its meaning as an upper bound. */
    if (t->minute < 0)
        snprintf(buf, cap, "%02d", t->hour);
    else if (t->second < 0)
        snprintf(buf, cap, "%02d%02d", t->hour, t->minute);
    else if (t->fraction < 0)
        snprintf(buf, cap, "%02d%02d%02d", t->hour, t->minute, t->second);
    else
        snprintf(buf, cap, "%02d%02d%02d.%06ld", t->hour, t->minute, t->second, (long)t->fraction);
}
