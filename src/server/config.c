/* Server configuration: one table of keys (Redis static_configs[] style:
 * name, type, default, bounds, field) behind the config file parser, the
 * `mwl serve` flags and its --help. Parsing works on a string, so it is
 * unit-tested and fuzzed without files (fuzz/fuzz_config.c). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "server/server.h"

#define FIELD(f) offsetof(mwl_server_config, f)
#define SECONDS(s) ((uint64_t)(s)*1000u)
#define MAX_LINE 4096

static const mwl_config_key config_keys[] = {
    {"port", MWL_CONFIG_UINT, "11112", 0, 65535, FIELD(port),
     "TCP port to listen on; 0 lets the kernel pick one (see port-file)"},
    {"bind", MWL_CONFIG_STRING, "", 0, MWL_NET_HOST_MAX - 1, FIELD(bind),
     "address or host name to listen on; empty or * = all addresses (IPv6 and IPv4)"},
    {"aet", MWL_CONFIG_AET, "MWL", 1, MWL_AE_TITLE_MAX, FIELD(ae_title), "our AE title"},
    {"strict-called-aet", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(strict_called_aet),
     "reject associations whose called AE title is not aet (A-ASSOCIATE-RJ reason 7)"},
    {"calling-aet-allow", MWL_CONFIG_AET_LIST, "", 0, MWL_SERVER_ALLOW_MAX, FIELD(calling_aet_allow),
     "comma-separated calling AE titles allowed in; empty = any (others: A-ASSOCIATE-RJ reason 3)"},
    {"max-associations", MWL_CONFIG_UINT, "64", 1, 1000, FIELD(max_associations),
     "associations at once; more are rejected (A-ASSOCIATE-RJ transient, reason 2)"},
    {"max-pdu", MWL_CONFIG_UINT, "65536", 4096, 16777216, FIELD(max_pdu),
     "largest P-DATA-TF PDU we receive (our Maximum Length, PS3.8 D.1), bytes"},
    {"acse-timeout", MWL_CONFIG_SECONDS, "30", 100, SECONDS(3600), FIELD(acse_timeout_ms),
     "ARTIM: wait this long for the A-ASSOCIATE-RQ, and for the peer to close after release/abort"},
    {"idle-timeout", MWL_CONFIG_SECONDS, "120", 100, SECONDS(86400), FIELD(idle_timeout_ms),
     "abort an association when no whole PDU arrives for this long (DIMSE / read-stall timeout)"},
    {"write-timeout", MWL_CONFIG_SECONDS, "30", 100, SECONDS(3600), FIELD(write_timeout_ms),
     "close a connection whose peer has not read any of our pending output for this long"},
    {"shutdown-grace", MWL_CONFIG_SECONDS, "5", 0, SECONDS(600), FIELD(shutdown_grace_ms),
     "on SIGTERM/SIGINT, let associations finish for this long, then abort them"},
    {"workers", MWL_CONFIG_UINT, "4", 1, 64, FIELD(workers), "worker threads for C-FIND (database) work"},
    {"find-batch", MWL_CONFIG_UINT, "16", 1, 1024, FIELD(find_batch),
     "C-FIND matches a worker fetches and encodes per step before the loop sends them"},
    {"log-level", MWL_CONFIG_LOG_LEVEL, "info", 0, 4, FIELD(log_level), "error, warn, info, debug or trace"},
    {"port-file", MWL_CONFIG_STRING, "", 0, MWL_SERVER_PATH_MAX - 1, FIELD(port_file),
     "write the bound port number to this file once listening (for --port 0)"},
    {"db", MWL_CONFIG_STRING, "mwl.db", 1, MWL_SERVER_PATH_MAX - 1, FIELD(db),
     "worklist database file used by the C-FIND provider"},
    {"pn-case-sensitive", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(pn_case_sensitive),
     "match Patient's Name and other PN keys case-sensitively (default: case-insensitive)"},
    {"pn-accent-insensitive", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(pn_accent_insensitive),
     "PN keys also ignore accents on Latin letters (Muller finds Müller)"},
    {"filter-by-calling-aet", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(filter_by_calling_aet),
     "a query without Scheduled Station AE Title gets only the calling AE title's items"},
    {"max-matches", MWL_CONFIG_UINT, "0", 0, 100000000, FIELD(max_matches),
     "most responses per C-FIND; more end with A700 and a comment; 0 = unlimited"},
    {"response-charset", MWL_CONFIG_STRING, "auto", 1, 7, FIELD(response_charset),
     "auto (the item's set if the SCU reads it, else the query's or ISO_IR 192), item or utf8"},
    {"per-called-aet", MWL_CONFIG_BOOL, "false", 0, 1, FIELD(per_called_aet),
     "serve only the items imported with --per-called-aet into the called AE title's folder (wlmscpfs "
     "style)"},
};

#define KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

const mwl_config_key *mwl_server_config_keys(size_t *count)
{
    if (count)
        *count = KEY_COUNT;
    return config_keys;
}

const mwl_config_key *mwl_server_config_find_key(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

const char *mwl_config_type_hint(mwl_config_type type)
{
    switch (type) {
    case MWL_CONFIG_UINT: return "N";
    case MWL_CONFIG_SECONDS: return "SECONDS";
    case MWL_CONFIG_BOOL: return "BOOL";
    case MWL_CONFIG_STRING: return "TEXT";
    case MWL_CONFIG_AET: return "AET";
    case MWL_CONFIG_AET_LIST: return "AET,...";
    case MWL_CONFIG_LOG_LEVEL: return "LEVEL";
    }
    return "?";
}

/* ---- value parsers ------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Decimal digits only: no sign, no spaces, no hex, at most 10 digits, so
 * the value always fits in 64 bits before the bounds check. */
static bool parse_uint(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10u + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* "30", "0.5", "1.250": seconds with at most 3 decimals, into ms. */
static bool parse_seconds(const char *s, uint64_t *ms)
{
    const char *dot = strchr(s, '.');
    size_t int_len = dot ? (size_t)(dot - s) : strlen(s);
    if (int_len == 0 || int_len > 7)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < int_len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10u + (uint64_t)(s[i] - '0');
    }
    uint64_t frac = 0;
    if (dot) {
        size_t frac_len = strlen(dot + 1);
        if (frac_len == 0 || frac_len > 3)
            return false;
        for (size_t i = 0; i < 3; i++) {
            char c = i < frac_len ? dot[1 + i] : '0';
            if (c < '0' || c > '9')
                return false;
            frac = frac * 10u + (uint64_t)(c - '0');
        }
    }
    *ms = v * 1000u + frac;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* An AE title (PS3.5 Table 6.2-1 "AE"): leading and trailing spaces are not
 * significant; at most 16 characters of the default repertoire without
 * backslash or control characters; not empty. [begin, begin+len) is the
 * untrimmed text. Returns a message for diag, or NULL when valid. */
static const char *check_aet(const char *begin, size_t len, const char **tb, size_t *tl)
{
    while (len > 0 && *begin == ' ') {
        begin++;
        len--;
    }
    while (len > 0 && begin[len - 1] == ' ')
        len--;
    if (len == 0)
        return "an AE title cannot be empty";
    if (len > MWL_AE_TITLE_MAX)
        return "an AE title has at most 16 characters";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)begin[i];
        if (c < 0x20 || c > 0x7E || c == '\\')
            return "an AE title is printable ASCII without '\\'";
    }
    *tb = begin;
    *tl = len;
    return NULL;
}

static void copy_text(char *dst, const char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Applies `value` to `cfg` per `key`. Leaves cfg unchanged on error. */
static int set_value(mwl_server_config *cfg, const mwl_config_key *key, const char *value, mwl_diag *diag)
{
    char *field = (char *)cfg + key->offset;
    switch (key->type) {
    case MWL_CONFIG_UINT: {
        uint64_t v;
        if (!parse_uint(value, &v)) {
            mwl_diag_set(diag, 0, 0, "%s: '%.40s' is not a whole number", key->name, value);
            return MWL_E_INVALID;
        }
        if (v < key->min || v > key->max) {
            mwl_diag_set(diag, 0, 0, "%s: %llu is out of range %llu..%llu", key->name, (unsigned long long)v,
                         (unsigned long long)key->min, (unsigned long long)key->max);
            return MWL_E_INVALID;
        }
        uint32_t u = (uint32_t)v;
        memcpy(field, &u, sizeof u);
        return MWL_OK;
    }
    case MWL_CONFIG_SECONDS: {
        uint64_t ms;
        if (!parse_seconds(value, &ms)) {
            mwl_diag_set(diag, 0, 0, "%s: '%.40s' is not a number of seconds (e.g. 30 or 0.5)", key->name,
                         value);
            return MWL_E_INVALID;
        }
        if (ms < key->min || ms > key->max) {
            mwl_diag_set(diag, 0, 0, "%s: %s s is out of range %llu.%03llu..%llu s", key->name, value,
                         (unsigned long long)(key->min / 1000u), (unsigned long long)(key->min % 1000u),
                         (unsigned long long)(key->max / 1000u));
            return MWL_E_INVALID;
        }
        uint32_t u = (uint32_t)ms;
        memcpy(field, &u, sizeof u);
        return MWL_OK;
    }
    case MWL_CONFIG_BOOL: {
        bool b;
        if (!parse_bool(value, &b)) {
            mwl_diag_set(diag, 0, 0, "%s: '%.40s' is not true/false, yes/no, on/off or 1/0", key->name,
                         value);
            return MWL_E_INVALID;
        }
        memcpy(field, &b, sizeof b);
        return MWL_OK;
    }
    case MWL_CONFIG_STRING: {
        size_t n = strlen(value);
        if (n < key->min || n > key->max) {
            mwl_diag_set(diag, 0, 0, "%s: must have %llu..%llu characters", key->name,
                         (unsigned long long)key->min, (unsigned long long)key->max);
            return MWL_E_INVALID;
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)value[i] < 0x20 || value[i] == 0x7F) {
                mwl_diag_set(diag, 0, 0, "%s: control characters are not allowed", key->name);
                return MWL_E_INVALID;
            }
        }
        copy_text(field, value, n);
        return MWL_OK;
    }
    case MWL_CONFIG_AET: {
        const char *b = NULL;
        size_t n = 0;
        const char *why = check_aet(value, strlen(value), &b, &n);
        if (why) {
            mwl_diag_set(diag, 0, 0, "%s: %s", key->name, why);
            return MWL_E_INVALID;
        }
        copy_text(field, b, n);
        return MWL_OK;
    }
    case MWL_CONFIG_AET_LIST: {
        /* Parsed into a copy first, so a bad entry leaves the list as it was.
         * Only commas separate: a space inside an AE title is significant. */
        char list[MWL_SERVER_ALLOW_MAX][MWL_AE_TITLE_MAX + 1];
        size_t count = 0;
        const char *p = value;
        bool all_blank = true;
        for (const char *q = value; *q; q++)
            if (!is_blank(*q))
                all_blank = false;
        while (!all_blank) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            const char *b = NULL;
            size_t n = 0;
            const char *why = check_aet(p, len, &b, &n);
            if (why) {
                mwl_diag_set(diag, 0, 0, "%s: entry %zu: %s", key->name, count + 1, why);
                return MWL_E_INVALID;
            }
            if (count == MWL_SERVER_ALLOW_MAX) {
                mwl_diag_set(diag, 0, 0, "%s: at most %d AE titles", key->name, MWL_SERVER_ALLOW_MAX);
                return MWL_E_INVALID;
            }
            copy_text(list[count++], b, n);
            if (!comma)
                break;
            p = comma + 1;
        }
        memcpy(cfg->calling_aet_allow, list, sizeof list[0] * count);
        cfg->calling_aet_allow_count = count;
        return MWL_OK;
    }
    case MWL_CONFIG_LOG_LEVEL: {
        mwl_log_level level;
        if (mwl_log_level_parse(value, &level) != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "%s: '%.40s' is not error, warn, info, debug or trace", key->name,
                         value);
            return MWL_E_INVALID;
        }
        memcpy(field, &level, sizeof level);
        return MWL_OK;
    }
    }
    mwl_diag_set(diag, 0, 0, "%s: unknown key type", key->name);
    return MWL_E_INVALID;
}

void mwl_server_config_init(mwl_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        /* The defaults are checked by server_config_test; one that did not
         * parse would leave its field zeroed. */
        int rc = set_value(cfg, &config_keys[i], config_keys[i].default_value, NULL);
        (void)rc;
    }
}

int mwl_server_config_set(mwl_server_config *cfg, const char *key, const char *value, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!cfg || !key || !value)
        return MWL_E_INVALID;
    const mwl_config_key *k = mwl_server_config_find_key(key);
    if (!k) {
        mwl_diag_set(diag, 0, 0, "unknown key '%.60s'", key);
        return MWL_E_NOTFOUND;
    }
    return set_value(cfg, k, value, diag);
}

/* ---- the file format ----------------------------------------------------- */

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && is_blank((*e)[-1]))
        (*e)--;
}

/* Prefixes diag->msg with "line N: ". */
static void at_line(mwl_diag *diag, size_t line, size_t offset)
{
    if (!diag)
        return;
    char msg[sizeof diag->msg];
    memcpy(msg, diag->msg, sizeof msg);
    mwl_diag_set(diag, offset, 0, "line %zu: %s", line, msg);
}

int mwl_server_config_parse(const char *text, size_t len, mwl_server_config *cfg, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!cfg || (!text && len))
        return MWL_E_INVALID;
    /* Work on a copy so that an error anywhere leaves *cfg untouched. */
    mwl_server_config next = *cfg;
    size_t seen_line[KEY_COUNT];
    memset(seen_line, 0, sizeof seen_line);
    char value[MAX_LINE + 1];
    char name[MAX_LINE + 1];

    size_t pos = 0, line = 0;
    while (pos < len) {
        line++;
        size_t start = pos;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        pos = nl ? end + 1 : len;
        if (end - start > MAX_LINE) {
            mwl_diag_set(diag, start, 0, "line %zu: longer than %d bytes", line, MAX_LINE);
            return MWL_E_INVALID;
        }
        if (memchr(text + start, '\0', end - start)) {
            mwl_diag_set(diag, start, 0, "line %zu: contains a NUL byte", line);
            return MWL_E_INVALID;
        }
        const char *b = text + start, *e = text + end;
        if (e > b && e[-1] == '\r') /* files edited on Windows */
            e--;
        trim(&b, &e);
        if (b == e || *b == '#')
            continue;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (!eq) {
            mwl_diag_set(diag, start, 0, "line %zu: expected 'key = value'", line);
            return MWL_E_INVALID;
        }
        const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
        trim(&kb, &ke);
        trim(&vb, &ve);
        if (kb == ke) {
            mwl_diag_set(diag, start, 0, "line %zu: missing key before '='", line);
            return MWL_E_INVALID;
        }
        if (ve - vb >= 2 && *vb == '"' && ve[-1] == '"') {
            vb++;
            ve--;
        } else if (ve > vb && (*vb == '"' || ve[-1] == '"')) {
            mwl_diag_set(diag, start, 0, "line %zu: unbalanced double quote", line);
            return MWL_E_INVALID;
        }
        copy_text(name, kb, (size_t)(ke - kb));
        copy_text(value, vb, (size_t)(ve - vb));
        const mwl_config_key *key = mwl_server_config_find_key(name);
        if (!key) {
            mwl_diag_set(diag, start, 0, "line %zu: unknown key '%.60s'", line, name);
            return MWL_E_INVALID;
        }
        size_t index = (size_t)(key - config_keys);
        if (seen_line[index]) {
            mwl_diag_set(diag, start, 0, "line %zu: '%s' is already set on line %zu", line, key->name,
                         seen_line[index]);
            return MWL_E_INVALID;
        }
        seen_line[index] = line;
        if (set_value(&next, key, value, diag) != MWL_OK) {
            at_line(diag, line, start);
            return MWL_E_INVALID;
        }
    }
    *cfg = next;
    return MWL_OK;
}
