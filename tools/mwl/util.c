#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dicom/datetime.h"

void tool_add_days(const mwl_date *base, int days, char out[9])
{
    /* timegm normalises the day overflow into months and years; noon keeps
     * clear of any daylight-saving edge. */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = base->year - 1900;
    tm.tm_mon = base->month - 1;
    tm.tm_mday = base->day + days;
    tm.tm_hour = 12;
    timegm(&tm);
    mwl_date d = {(int16_t)(tm.tm_year + 1900), (int8_t)(tm.tm_mon + 1), (int8_t)tm.tm_mday};
    mwl_date_format(&d, out, 9);
}

static bool day_relative(int offset_days, char out[9])
{
    mwl_date today;
    mwl_date_today(&today);
    tool_add_days(&today, offset_days, out);
    return true;
}

/* One end of a range: a date or a relative word; "" stays open. */
static bool parse_end(const char *s, size_t len, char out[9])
{
    out[0] = '\0';
    if (len == 0)
        return true;
    if (len == 5 && strncmp(s, "today", 5) == 0)
        return day_relative(0, out);
    if (len == 8 && strncmp(s, "tomorrow", 8) == 0)
        return day_relative(1, out);
    if (len == 9 && strncmp(s, "yesterday", 9) == 0)
        return day_relative(-1, out);
    mwl_date d;
    if (len != 8 || mwl_date_parse(s, len, &d) != MWL_OK)
        return false;
    memcpy(out, s, 8);
    out[8] = '\0';
    return true;
}

bool tool_parse_date_option(const char *arg, char lo[9], char hi[9])
{
    lo[0] = hi[0] = '\0';
    if (strcmp(arg, "all") == 0)
        return true;
    const char *dash = strchr(arg, '-');
    if (!dash) {
        if (!parse_end(arg, strlen(arg), lo))
            return false;
        memcpy(hi, lo, 9);
        return lo[0] != '\0';
    }
    if (strchr(dash + 1, '-'))
        return false;
    if (!parse_end(arg, (size_t)(dash - arg), lo) || !parse_end(dash + 1, strlen(dash + 1), hi))
        return false;
    if (!lo[0] && !hi[0])
        return false;
    return !(lo[0] && hi[0] && strcmp(lo, hi) > 0);
}

void tool_json_string(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20)
                fprintf(out, "\\u%04x", c);
            else
                fputc(c, out);
        }
    }
    fputc('"', out);
}

bool tool_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool tool_parse_seconds(const char *s, int *ms)
{
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 86400)
        return false;
    double r = v * 1000.0;
    int whole = (int)r;
    *ms = whole < r ? whole + 1 : whole; /* round up: never shorter than asked */
    if (*ms < 1)
        *ms = 1;
    return true;
}

const char *tool_option_value(const char *cmd, int argc, char **argv, int *i, const char *name, bool *missing)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "mwl %s: %s needs a value\n", cmd, name);
        if (missing)
            *missing = true;
        return "";
    }
    return argv[++*i];
}

int tool_tls_option(const char *cmd, int argc, char **argv, int *i, tool_tls *t)
{
    if (strcmp(argv[*i], "--tls") == 0) {
        t->on = true;
        return 1;
    }
    if (strcmp(argv[*i], "--tls-no-name-check") == 0) {
        t->on = true;
        t->no_name_check = true;
        return 1;
    }
    static const char *const names[] = {"--tls-ca", "--tls-cert", "--tls-key"};
    for (size_t k = 0; k < 3; k++) {
        bool missing = false;
        const char *v = tool_option_value(cmd, argc, argv, i, names[k], &missing);
        if (!v)
            continue;
        if (missing || !v[0]) {
            if (!missing)
                fprintf(stderr, "mwl %s: %s needs a file\n", cmd, names[k]);
            return -1;
        }
        t->on = true;
        if (k == 0)
            t->ca = v;
        else if (k == 1)
            t->cert = v;
        else
            t->key = v;
        return 1;
    }
    return 0;
}

void tool_tls_apply(const tool_tls *t, mwl_scu_config *cfg)
{
    cfg->tls = t->on;
    cfg->tls_skip_name_check = t->no_name_check;
    cfg->tls_ca_file = t->ca;
    cfg->tls_cert_file = t->cert;
    cfg->tls_key_file = t->key;
}
