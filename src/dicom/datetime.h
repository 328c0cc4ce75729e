/* DA, TM and DT values (PS3.5 Table 6.2-1) parsed into structs, with
 * validation, and range values ("A-B", "-B", "A-") for C-FIND range
 * matching (PS3.4 C.2.2.2.5). */
#ifndef MWL_DICOM_DATETIME_H
#define MWL_DICOM_DATETIME_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct mwl_date {
    int16_t year; /* 0000..9999 */
    int8_t month; /* 1..12 */
    int8_t day;   /* 1..31, checked against the month and leap years */
} mwl_date;

typedef struct mwl_time {
    int8_t hour;       /* 0..23 */
    int8_t minute;     /* 0..59, or -1 when omitted */
    int8_t second;     /* 0..60 (leap second), or -1 when omitted */
    int32_t fraction;  /* microseconds 0..999999, or -1 when omitted */
    uint8_t precision; /* number of components given: 1 = HH ... 4 = fraction */
} mwl_time;

typedef struct mwl_datetime {
    mwl_date date;          /* month/day 1 when omitted */
    mwl_time time;          /* hour -1 when no time part */
    uint8_t precision;      /* components given: 1 = YYYY, 2 = MM, 3 = DD, 4 = HH ... 7 = fraction */
    bool has_offset;        /* &ZZXX given */
    int16_t offset_minutes; /* UTC offset, -720..+840 */
} mwl_datetime;

/* "YYYYMMDD" (also the retired "YYYY.MM.DD" form, tolerated on input).
 * Trailing spaces allowed. MWL_E_MALFORMED otherwise. */
MWL_API MWL_MUST_CHECK int mwl_date_parse(const char *s, size_t len, mwl_date *out);
/* "HH[MM[SS[.F{1,6}]]]" (also the retired "HH:MM:SS" form). */
MWL_API MWL_MUST_CHECK int mwl_time_parse(const char *s, size_t len, mwl_time *out);
/* "YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]". */
MWL_API MWL_MUST_CHECK int mwl_datetime_parse(const char *s, size_t len, mwl_datetime *out);

/* Comparable keys. A date key is YYYYMMDD as an integer; a time key is
 * microseconds since midnight; for the *upper* bound of a range a partial
 * value stands for the end of the period it names ("10" = 10:59:59.999999). */
MWL_API int32_t mwl_date_key(const mwl_date *d);
MWL_API int64_t mwl_time_key(const mwl_time *t, bool upper);
/* Microseconds since 0000-01-01 in UTC when an offset is known (else local),
 * with the same upper-bound rule. */
MWL_API int64_t mwl_datetime_key(const mwl_datetime *dt, bool upper);

/* A range value: "A-B", "A-", "-B" or a single value "A" (lo == hi). Open
 * ends have has_lo/has_hi false. */
typedef struct mwl_date_range {
    bool has_lo, has_hi;
    mwl_date lo, hi;
} mwl_date_range;
typedef struct mwl_time_range {
    bool has_lo, has_hi;
    mwl_time lo, hi;
} mwl_time_range;
typedef struct mwl_datetime_range {
    bool has_lo, has_hi;
    mwl_datetime lo, hi;
} mwl_datetime_range;

MWL_API MWL_MUST_CHECK int mwl_date_range_parse(const char *s, size_t len, mwl_date_range *out);
MWL_API MWL_MUST_CHECK int mwl_time_range_parse(const char *s, size_t len, mwl_time_range *out);
MWL_API MWL_MUST_CHECK int mwl_datetime_range_parse(const char *s, size_t len, mwl_datetime_range *out);

/* Today's date and the current time in local time (for "today" queries). */
MWL_API void mwl_date_today(mwl_date *out);

/* Formats into buf: a date as "YYYYMMDD" (cap >= 9); a time with only the components
 * it has ("10", "1030", "103015", "103015.500000"; cap >= 14), since zero-padding
 * would change what a partial value means as a range bound. */
MWL_API void mwl_date_format(const mwl_date *d, char *buf, size_t cap);
MWL_API void mwl_time_format(const mwl_time *t, char *buf, size_t cap);

#endif
