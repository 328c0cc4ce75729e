/* Expiry of worklist steps (worklist.h): those scheduled too long ago and
 * those finished too long ago, for `mwl serve` (expire-* keys, on a
 * thread of the service) and `mwl expire` alike. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/worklist.h"

/* The local date `days` days before the local date of `now`: noon of that
 * day, so a daylight saving change never moves it to another day. */
static void local_date_before(int64_t now_unix_ms, uint32_t days, char out[9])
{
    time_t t = (time_t)(now_unix_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    tm.tm_mday -= (int)days;
    tm.tm_hour = 12;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    mktime(&tm);
    if (strftime(out, 9, "%Y%m%d", &tm) != 8)
        out[0] = '\0'; /* a year past 9999: the store refuses the date */
}

int mwl_worklist_expire(mwl_store *store, const mwl_worklist_expiry *e, int64_t now_unix_ms,
                        mwl_worklist_expiry_result *out, mwl_diag *diag)
{
    memset(out, 0, sizeof *out);
    int rc = MWL_OK;
    if (e->by_date) {
        local_date_before(now_unix_ms, e->days, out->before_date);
        mwl_store_expiry x = {.before_date = out->before_date};
        rc = mwl_store_expire(store, &x, &out->scheduled, diag);
    }
    if (rc != MWL_OK || !e->by_status)
        return rc;
    char buf[256];
    const char *items[MWL_FILTER_EXCLUDE_MAX];
    size_t n = 0;
    rc = mwl_worklist_status_list(e->statuses ? e->statuses : "", buf, sizeof buf, items,
                                  MWL_FILTER_EXCLUDE_MAX, &n, diag);
    if (rc != MWL_OK)
        return rc;
    if (n == 0) {
        mwl_diag_set(diag, 0, 0, "no statuses to expire");
        return MWL_E_INVALID;
    }
    mwl_store_expiry x = {.statuses = items, .status_count = n};
    if (e->hours) {
        x.changed_before_unix_ms = now_unix_ms - (int64_t)e->hours * 3600000;
        time_t t = (time_t)(x.changed_before_unix_ms / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        if (!strftime(out->finished_before, sizeof out->finished_before, "%Y-%m-%d %H:%M", &tm))
            out->finished_before[0] = '\0';
    }
    return mwl_store_expire(store, &x, &out->finished, diag);
}

void mwl_worklist_expiry_summary(const mwl_worklist_expiry *e, const mwl_worklist_expiry_result *r, char *out,
                                 size_t cap)
{
    out[0] = '\0';
    if (!e->by_date && !e->by_status)
        return;
    size_t len = (size_t)snprintf(out, cap, "expire: removed");
    if (e->by_date && len < cap)
        len += (size_t)snprintf(out + len, cap - len, " %zu steps scheduled before %s", r->scheduled,
                                r->before_date);
    if (e->by_status && len < cap)
        len += (size_t)snprintf(out + len, cap - len, "%s %zu finished (%s)%s%s", e->by_date ? "," : "",
                                r->finished, e->statuses ? e->statuses : "",
                                r->finished_before[0] ? " before " : "", r->finished_before);
}
