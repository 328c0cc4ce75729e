/* Configuration tables: value parsers, the file format, and formatting a
 * value back to text (see config.h). */
#include "base/config.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

#define MAX_LINE 4096

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
    case MWL_CONFIG_ENUM: return "CHOICE";
    case MWL_CONFIG_LIST: return "ITEM";
    }
    return "?";
}

const char *const *mwl_config_choices(const mwl_config_key *k)
{
    return k && k->type == MWL_CONFIG_ENUM ? (const char *const *)k->type_data : NULL;
}

const mwl_config_list_ops *mwl_config_list(const mwl_config_key *k)
{
    return k && k->type == MWL_CONFIG_LIST ? (const mwl_config_list_ops *)k->type_data : NULL;
}

const char *mwl_config_key_hint(const mwl_config_key *k)
{
    const mwl_config_list_ops *ops = mwl_config_list(k);
    if (ops && ops->hint)
        return ops->hint;
    return mwl_config_type_hint(k->type);
}

const mwl_config_key *mwl_config_find(const mwl_config_table *t, const char *name)
{
    if (!t || !name)
        return NULL;
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->keys[i].name, name) == 0)
            return &t->keys[i];
    return NULL;
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
 * significant; at most `max` characters of the default repertoire without
 * backslash or control characters; not empty. [begin, begin+len) is the
 * untrimmed text. Returns a message for diag, or NULL when valid. */
static const char *check_aet(const char *begin, size_t len, size_t max, const char **tb, size_t *tl)
{
    while (len > 0 && *begin == ' ') {
        begin++;
        len--;
    }
    while (len > 0 && begin[len - 1] == ' ')
        len--;
    if (len == 0)
        return "an AE title cannot be empty";
    if (len > max)
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

const char *mwl_config_aet_check(const char *text, size_t len, const char **begin, size_t *n)
{
    return check_aet(text, len, MWL_CONFIG_AET_MAX, begin, n);
}

/* ---- repeatable keys: a count, then the items ---------------------------- */

static size_t list_count(const mwl_config_key *key, const void *field)
{
    size_t n;
    memcpy(&n, field, sizeof n);
    return n < key->max ? n : (size_t)key->max;
}

static const void *list_item(const mwl_config_key *key, const void *field, size_t i)
{
    const mwl_config_list_ops *ops = mwl_config_list(key);
    return (const char *)field + ops->items_offset + i * ops->item_size;
}

static void copy_text(char *dst, const char *src, size_t len)
{
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static size_t aet_max(const mwl_config_key *key)
{
    return key->max && key->max < MWL_CONFIG_AET_MAX ? (size_t)key->max : MWL_CONFIG_AET_MAX;
}

/* Applies `value` to obj per `key`. Leaves obj unchanged on error. */
static int set_value(void *obj, const mwl_config_key *key, const char *value, mwl_diag *diag)
{
    char *field = (char *)obj + key->offset;
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
        const char *why = check_aet(value, strlen(value), aet_max(key), &b, &n);
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
        mwl_config_aet_list list;
        memset(&list, 0, sizeof list);
        size_t cap =
            key->max && key->max < MWL_CONFIG_AET_LIST_MAX ? (size_t)key->max : MWL_CONFIG_AET_LIST_MAX;
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
            const char *why = check_aet(p, len, MWL_CONFIG_AET_MAX, &b, &n);
            if (why) {
                mwl_diag_set(diag, 0, 0, "%s: entry %zu: %s", key->name, list.count + 1, why);
                return MWL_E_INVALID;
            }
            if (list.count == cap) {
                mwl_diag_set(diag, 0, 0, "%s: at most %zu AE titles", key->name, cap);
                return MWL_E_INVALID;
            }
            copy_text(list.aet[list.count++], b, n);
            if (!comma)
                break;
            p = comma + 1;
        }
        memcpy(field, &list, sizeof list);
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
    case MWL_CONFIG_ENUM: {
        const char *const *choices = mwl_config_choices(key);
        for (size_t i = 0; choices && choices[i]; i++) {
            if (strcmp(value, choices[i]) == 0 && strlen(value) <= key->max) {
                copy_text(field, value, strlen(value));
                return MWL_OK;
            }
        }
        char list[160] = "";
        size_t used = 0;
        for (size_t i = 0; choices && choices[i] && used < sizeof list; i++) {
            int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
            used += n > 0 ? (size_t)n : 0;
        }
        mwl_diag_set(diag, 0, 0, "%s: '%.40s' is not one of %s", key->name, value, list);
        return MWL_E_INVALID;
    }
    case MWL_CONFIG_LIST: {
        const mwl_config_list_ops *ops = mwl_config_list(key);
        size_t n;
        memcpy(&n, field, sizeof n);
        if (!ops || !ops->parse) {
            mwl_diag_set(diag, 0, 0, "%s: no item parser", key->name);
            return MWL_E_INVALID;
        }
        if (n >= key->max) {
            mwl_diag_set(diag, 0, 0, "%s: at most %llu of them", key->name, (unsigned long long)key->max);
            return MWL_E_INVALID;
        }
        const char *v = value;
        while (is_blank(*v))
            v++;
        if (!*v) {
            mwl_diag_set(diag, 0, 0, "%s: empty value", key->name);
            return MWL_E_INVALID;
        }
        /* Parsed straight into the free slot: the count, not the slot,
         * says what is set, so a failed parse changes nothing. */
        char *slot = field + ops->items_offset + n * ops->item_size;
        mwl_diag item_diag;
        mwl_diag_clear(&item_diag);
        if (ops->parse(value, slot, &item_diag) != MWL_OK) {
            mwl_diag_set(diag, 0, 0, "%s: %s", key->name, item_diag.msg[0] ? item_diag.msg : "invalid value");
            return MWL_E_INVALID;
        }
        n++;
        memcpy(field, &n, sizeof n);
        return MWL_OK;
    }
    }
    mwl_diag_set(diag, 0, 0, "%s: unknown key type", key->name);
    return MWL_E_INVALID;
}

void mwl_config_init(const mwl_config_table *t, void *obj)
{
    memset(obj, 0, t->struct_size);
    for (size_t i = 0; i < t->count; i++)
        mwl_config_reset(&t->keys[i], obj);
}

void mwl_config_reset(const mwl_config_key *k, void *obj)
{
    if (k->type == MWL_CONFIG_LIST) {
        size_t zero = 0; /* no items: the default of every LIST key */
        memcpy((char *)obj + k->offset, &zero, sizeof zero);
        return;
    }
    /* The defaults are checked by the config tests; one that did not
     * parse would leave its field as it was (zeroed by init). */
    int rc = set_value(obj, k, k->default_value, NULL);
    (void)rc;
}

int mwl_config_set(const mwl_config_table *t, void *obj, const char *name, const char *value, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!t || !obj || !name || !value)
        return MWL_E_INVALID;
    const mwl_config_key *k = mwl_config_find(t, name);
    if (!k) {
        mwl_diag_set(diag, 0, 0, "unknown key '%.60s'", name);
        return MWL_E_NOTFOUND;
    }
    return set_value(obj, k, value, diag);
}

/* ---- formatting back ----------------------------------------------------- */

size_t mwl_config_count(const mwl_config_key *k, const void *obj)
{
    if (k->type != MWL_CONFIG_LIST)
        return 1;
    return list_count(k, (const char *)obj + k->offset);
}

size_t mwl_config_format_at(const mwl_config_key *k, const void *obj, size_t index, char *out, size_t cap)
{
    if (k->type != MWL_CONFIG_LIST)
        return index == 0 ? mwl_config_format(k, obj, out, cap) : mwl_config_format(k, obj, out, 0);
    const char *field = (const char *)obj + k->offset;
    if (cap)
        out[0] = '\0';
    const mwl_config_list_ops *ops = mwl_config_list(k);
    if (index >= list_count(k, field) || !ops || !ops->format)
        return 0;
    return ops->format(list_item(k, field, index), out, cap);
}

size_t mwl_config_format(const mwl_config_key *k, const void *obj, char *out, size_t cap)
{
    const char *field = (const char *)obj + k->offset;
    int n = 0;
    switch (k->type) {
    case MWL_CONFIG_UINT: {
        uint32_t v;
        memcpy(&v, field, sizeof v);
        n = snprintf(out, cap, "%u", (unsigned)v);
        break;
    }
    case MWL_CONFIG_SECONDS: {
        uint32_t v;
        memcpy(&v, field, sizeof v);
        n = snprintf(out, cap, "%u.%03u", (unsigned)(v / 1000u), (unsigned)(v % 1000u));
        break;
    }
    case MWL_CONFIG_BOOL: {
        bool b;
        memcpy(&b, field, sizeof b);
        n = snprintf(out, cap, "%s", b ? "true" : "false");
        break;
    }
    case MWL_CONFIG_STRING:
    case MWL_CONFIG_AET:
    case MWL_CONFIG_ENUM: n = snprintf(out, cap, "%s", field); break;
    case MWL_CONFIG_AET_LIST: {
        const mwl_config_aet_list *l = (const mwl_config_aet_list *)(const void *)field;
        size_t used = 0;
        if (cap)
            out[0] = '\0';
        for (size_t i = 0; i < l->count && i < MWL_CONFIG_AET_LIST_MAX; i++) {
            int m = snprintf(used < cap ? out + used : NULL, used < cap ? cap - used : 0, "%s%s",
                             i ? "," : "", l->aet[i]);
            used += m > 0 ? (size_t)m : 0;
        }
        return used;
    }
    case MWL_CONFIG_LOG_LEVEL: {
        mwl_log_level level;
        memcpy(&level, field, sizeof level);
        n = snprintf(out, cap, "%s", mwl_log_level_name(level));
        break;
    }
    case MWL_CONFIG_LIST: {
        size_t used = 0;
        if (cap)
            out[0] = '\0';
        for (size_t i = 0; i < mwl_config_count(k, obj); i++) {
            if (i) {
                if (used + 1 < cap) {
                    out[used] = '\n';
                    out[used + 1] = '\0';
                }
                used++;
            }
            used +=
                mwl_config_format_at(k, obj, i, used < cap ? out + used : NULL, used < cap ? cap - used : 0);
        }
        return used;
    }
    }
    return n > 0 ? (size_t)n : 0;
}

bool mwl_config_equal(const mwl_config_key *k, const void *a, const void *b)
{
    const char *fa = (const char *)a + k->offset, *fb = (const char *)b + k->offset;
    switch (k->type) {
    case MWL_CONFIG_UINT:
    case MWL_CONFIG_SECONDS: return memcmp(fa, fb, sizeof(uint32_t)) == 0;
    case MWL_CONFIG_BOOL: return memcmp(fa, fb, sizeof(bool)) == 0;
    case MWL_CONFIG_STRING:
    case MWL_CONFIG_AET:
    case MWL_CONFIG_ENUM: return strcmp(fa, fb) == 0;
    case MWL_CONFIG_AET_LIST: {
        const mwl_config_aet_list *la = (const void *)fa, *lb = (const void *)fb;
        if (la->count != lb->count)
            return false;
        for (size_t i = 0; i < la->count && i < MWL_CONFIG_AET_LIST_MAX; i++)
            if (strcmp(la->aet[i], lb->aet[i]) != 0)
                return false;
        return true;
    }
    case MWL_CONFIG_LOG_LEVEL: return memcmp(fa, fb, sizeof(mwl_log_level)) == 0;
    case MWL_CONFIG_LIST: {
        const mwl_config_list_ops *ops = mwl_config_list(k);
        size_t n = list_count(k, fa);
        if (n != list_count(k, fb) || !ops || !ops->equal)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!ops->equal(list_item(k, fa, i), list_item(k, fb, i)))
                return false;
        return true;
    }
    }
    return false;
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

enum { MAX_TABLES = 8 };

int mwl_config_parse(const char *text, size_t len, const mwl_config_table *const *tables, void *const *objs,
                     size_t count, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if ((!text && len) || count > MAX_TABLES || (count && (!tables || !objs)))
        return MWL_E_INVALID;
    /* Work on copies so that an error anywhere leaves every struct as it was;
     * `seen` records the line each key was set on. */
    void *next[MAX_TABLES] = {0};
    size_t *seen[MAX_TABLES] = {0};
    int rc = MWL_OK;
    for (size_t t = 0; t < count && rc == MWL_OK; t++) {
        next[t] = mwl_mem_alloc(NULL, tables[t]->struct_size);
        seen[t] = mwl_mem_calloc(NULL, tables[t]->count + 1, sizeof(size_t));
        if (!next[t] || !seen[t])
            rc = MWL_E_NOMEM;
        else
            memcpy(next[t], objs[t], tables[t]->struct_size);
    }
    char *vbuf = NULL, *nbuf = NULL;
    if (rc == MWL_OK) {
        vbuf = mwl_mem_alloc(NULL, MAX_LINE + 1);
        nbuf = mwl_mem_alloc(NULL, MAX_LINE + 1);
        if (!vbuf || !nbuf)
            rc = MWL_E_NOMEM;
    }
    size_t pos = 0, line = 0;
    while (rc == MWL_OK && pos < len) {
        line++;
        size_t start = pos;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        pos = nl ? end + 1 : len;
        if (end - start > MAX_LINE) {
            mwl_diag_set(diag, start, 0, "line %zu: longer than %d bytes", line, MAX_LINE);
            rc = MWL_E_INVALID;
            break;
        }
        if (memchr(text + start, '\0', end - start)) {
            mwl_diag_set(diag, start, 0, "line %zu: contains a NUL byte", line);
            rc = MWL_E_INVALID;
            break;
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
            rc = MWL_E_INVALID;
            break;
        }
        const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
        trim(&kb, &ke);
        trim(&vb, &ve);
        if (kb == ke) {
            mwl_diag_set(diag, start, 0, "line %zu: missing key before '='", line);
            rc = MWL_E_INVALID;
            break;
        }
        if (ve - vb >= 2 && *vb == '"' && ve[-1] == '"') {
            vb++;
            ve--;
        } else if (ve > vb && (*vb == '"' || ve[-1] == '"')) {
            mwl_diag_set(diag, start, 0, "line %zu: unbalanced double quote", line);
            rc = MWL_E_INVALID;
            break;
        }
        copy_text(nbuf, kb, (size_t)(ke - kb));
        copy_text(vbuf, vb, (size_t)(ve - vb));
        const mwl_config_key *key = NULL;
        size_t t = 0;
        for (; t < count && !key; t++)
            key = mwl_config_find(tables[t], nbuf);
        if (!key) {
            mwl_diag_set(diag, start, 0, "line %zu: unknown key '%.60s'", line, nbuf);
            rc = MWL_E_INVALID;
            break;
        }
        t--;
        size_t index = (size_t)(key - tables[t]->keys);
        if (seen[t][index] && key->type != MWL_CONFIG_LIST) {
            mwl_diag_set(diag, start, 0, "line %zu: '%s' is already set on line %zu", line, key->name,
                         seen[t][index]);
            rc = MWL_E_INVALID;
            break;
        }
        seen[t][index] = line;
        if (set_value(next[t], key, vbuf, diag) != MWL_OK) {
            at_line(diag, line, start);
            rc = MWL_E_INVALID;
            break;
        }
    }
    for (size_t t = 0; t < count; t++) {
        if (rc == MWL_OK)
            memcpy(objs[t], next[t], tables[t]->struct_size);
        mwl_mem_free(NULL, next[t]);
        mwl_mem_free(NULL, seen[t]);
    }
    mwl_mem_free(NULL, vbuf);
    mwl_mem_free(NULL, nbuf);
    return rc;
}
