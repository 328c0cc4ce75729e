/* The DICOM JSON Model decoder (json.h, PS3.18 Annex F.2): the inverse of
 * json.c. JSON syntax is jansson's job; this file walks the parsed tree and
 * builds the data set. The only file that includes jansson.h.
 *
 * Memory: the data set, its values and all scratch text come from the
 * caller's arena (so from its mwl_mem). jansson's own tree comes from
 * malloc: json_set_alloc_funcs() would route it through an mwl_mem, but it
 * is process-global and cannot carry a per-call allocator, so another
 * library in the same process using jansson would get ours too. The tree
 * lives only during a call and is bounded by max_bytes, and is freed before
 * the call returns. */
#include "dicom/json.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "dicom/charset.h"
#include "dicom/dict.h"
#include "dicom/vr.h"

#define DEFAULT_MAX_BYTES ((size_t)16 << 20)
#define DEFAULT_MAX_DEPTH 16
#define DEFAULT_MAX_ELEMENTS 100000
/* Levels of the element path kept for messages. */
#define PATH_MAX_LEVELS 32

void mwl_json_decode_options_init(mwl_json_decode_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_bytes = DEFAULT_MAX_BYTES;
    opt->max_depth = DEFAULT_MAX_DEPTH;
    opt->max_elements = DEFAULT_MAX_ELEMENTS;
}

typedef struct decoder {
    mwl_json_decode_options opt;
    mwl_arena *arena;
    mwl_diag *diag;
    long object; /* index in an array, -1 for a single object */
    size_t elements;
    bool non_ascii; /* some text of a VR the character set covers is not ASCII */
    mwl_wbuf value; /* the value being built */
    /* Where we are, for messages: the sequences and items entered. */
    struct {
        uint32_t tag;
        size_t item;
    } path[PATH_MAX_LEVELS];
    size_t depth;
} decoder;

/* ---- errors ---------------------------------------------------------------- */

/* Records `rc` with the path to `tag` and the reason, e.g.
 * "object 2: (0040,0100)[0] (0008,0060) CS: Value[1] is a number, expected a
 * string". Returns rc. */
static int fail(decoder *d, int rc, uint32_t tag, const char *fmt, ...) MWL_PRINTF(4, 5);
static int fail(decoder *d, int rc, uint32_t tag, const char *fmt, ...)
{
    char where[160] = "", why[128];
    size_t n = 0;
    if (d->object >= 0)
        n += (size_t)snprintf(where, sizeof where, "object %ld: ", d->object);
    /* The innermost levels only: the reason must fit in mwl_diag.msg. */
    size_t shown = d->depth <= PATH_MAX_LEVELS ? d->depth : 0;
    size_t from = shown > 3 ? shown - 3 : 0;
    if (d->depth > PATH_MAX_LEVELS)
        from = 1;
    if (from)
        n += (size_t)snprintf(where + n, sizeof where - n, "... ");
    for (size_t i = from; i < shown && n < sizeof where; i++)
        n += (size_t)snprintf(where + n, sizeof where - n, "(%04X,%04X)[%zu] ",
                              (unsigned)MWL_TAG_GROUP(d->path[i].tag),
                              (unsigned)MWL_TAG_ELEMENT(d->path[i].tag), d->path[i].item);
    if (tag && n < sizeof where)
        snprintf(where + n, sizeof where - n, "(%04X,%04X): ", (unsigned)MWL_TAG_GROUP(tag),
                 (unsigned)MWL_TAG_ELEMENT(tag));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    mwl_diag_set(d->diag, 0, tag, "%s%s", where, why);
    return rc;
}

static int nomem(decoder *d)
{
    mwl_diag_set(d->diag, 0, 0, "out of memory");
    return MWL_E_NOMEM;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* ---- tags ------------------------------------------------------------------ */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "GGGGEEEE" (either case) -> tag. */
static bool parse_hex_tag(const char *s, size_t len, uint32_t *tag)
{
    if (len != 8)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        int h = hex_digit(s[i]);
        if (h < 0)
            return false;
        v = (v << 4) | (uint32_t)h;
    }
    *tag = v;
    return true;
}

/* ---- text values ----------------------------------------------------------- */

/* Checks one string value of `vr` and appends it to d->value. `what` names
 * it in messages ("Value[2]", "Value[0].Ideographic"). */
static int put_text(decoder *d, uint32_t tag, mwl_vr vr, const char *s, size_t len, const char *what,
                    const char *forbidden)
{
    const mwl_vr_info *info = mwl_vr_get_info(vr);
    bool text = info->kind == MWL_VR_KIND_TEXT;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x80) {
            if (!info->charset)
                return fail(d, MWL_E_MALFORMED, tag,
                            "%s %s is not ASCII (only SH LO UC ST LT UT PN take other characters)",
                            info->code, what);
            d->non_ascii = true;
        } else if (c < 0x20 && !(text && (c == '\t' || c == '\r' || c == '\n' || c == '\f'))) {
            return fail(d, MWL_E_MALFORMED, tag, "%s %s holds the control character U+%04X", info->code, what,
                        (unsigned)c);
        } else if (forbidden && strchr(forbidden, c)) {
            return fail(d, MWL_E_MALFORMED, tag, "%s %s holds '%c', a DICOM delimiter (PS3.18 F.2.4)",
                        info->code, what, c);
        }
    }
    mwl_wbuf_put(&d->value, s, len);
    return MWL_OK;
}

/* One PN value: an object of component groups, or a plain string. */
static int put_person_name(decoder *d, uint32_t tag, size_t index, json_t *v)
{
    char what[48];
    if (json_is_string(v)) {
        snprintf(what, sizeof what, "Value[%zu]", index);
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        size_t groups = 1;
        for (size_t i = 0; i < len; i++)
            groups += s[i] == '=';
        if (groups > 3)
            return fail(d, MWL_E_MALFORMED, tag, "PN %s has more than 3 component groups", what);
        return put_text(d, tag, MWL_VR_PN, s, len, what, "\\");
    }
    if (!json_is_object(v))
        return fail(d, MWL_E_MALFORMED, tag, "PN Value[%zu] is %s, expected an object", index,
                    json_type_name(v));
    static const char *const names[3] = {"Alphabetic", "Ideographic", "Phonetic"};
    json_t *group[3];
    size_t last = 0; /* groups up to the last non-empty one */
    for (size_t g = 0; g < 3; g++) {
        group[g] = json_object_get(v, names[g]);
        if (group[g] && !json_is_string(group[g]))
            return fail(d, MWL_E_MALFORMED, tag, "PN Value[%zu].%s is %s, expected a string", index, names[g],
                        json_type_name(group[g]));
        if (group[g] && json_string_length(group[g]) > 0)
            last = g + 1;
    }
    const char *key;
    json_t *member;
    json_object_foreach(v, key, member)
    {
        if (strcmp(key, names[0]) != 0 && strcmp(key, names[1]) != 0 && strcmp(key, names[2]) != 0)
            return fail(d, MWL_E_MALFORMED, tag,
                        "PN Value[%zu] has a member \"%.40s\" (only Alphabetic, Ideographic, Phonetic)",
                        index, key);
    }
    for (size_t g = 0; g < last; g++) {
        if (g)
            mwl_wbuf_put_u8(&d->value, '=');
        if (!group[g])
            continue;
        snprintf(what, sizeof what, "Value[%zu].%s", index, names[g]);
        int rc = put_text(d, tag, MWL_VR_PN, json_string_value(group[g]), json_string_length(group[g]), what,
                          "\\=");
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

/* The shortest text of v that reads back as v ("%.*g" at the lowest
 * precision that does, without an exponent when the integer digits fit),
 * rounded further if needed to fit DS's 16 characters (PS3.5 Table 6.2-1). */
static void format_ds(double v, char out[17])
{
    if (v == 0)
        v = 0; /* -0 would come back from JSON as the integer 0 */
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    int exp10 = v != 0 ? (int)floor(log10(fabs(v))) : 0;
    if (strchr(tmp, 'e') && exp10 >= prec && exp10 < 16)
        prec = exp10 + 1; /* 1000, not 1e+03 */
    for (; prec >= 1; prec--) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strlen(tmp) <= 16)
            break;
    }
    memcpy(out, tmp, strlen(tmp) + 1);
}

/* True for IS text ([+-]digits) and DS text (a decimal or floating point
 * number, PS3.5 Table 6.2-1), already trimmed. */
static bool decimal_syntax(const char *s, size_t len, bool integer)
{
    size_t i = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    size_t digits = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (integer)
        return digits > 0 && i == len;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp++;
        }
        if (exp == 0)
            return false;
    }
    return i == len;
}

/* One IS or DS value: a number, or a string in DICOM's syntax. */
static int put_decimal(decoder *d, uint32_t tag, mwl_vr vr, size_t index, json_t *v)
{
    bool is = vr == MWL_VR_IS;
    char buf[40];
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        while (len && s[len - 1] == ' ')
            len--;
        while (len && s[0] == ' ') {
            s++;
            len--;
        }
        if (len == 0)
            return MWL_OK; /* an empty value */
        if (len > (is ? 12u : 16u) || !decimal_syntax(s, len, is))
            return fail(d, MWL_E_MALFORMED, tag, "%s Value[%zu] \"%.20s\" is not %s", is ? "IS" : "DS", index,
                        json_string_value(v),
                        is ? "an integer string of at most 12 characters"
                           : "a decimal string of at most 16 characters");
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (is) {
            long long n = strtoll(buf, NULL, 10);
            if (n < INT32_MIN || n > INT32_MAX)
                return fail(d, MWL_E_MALFORMED, tag, "IS Value[%zu] %s is outside [-2^31, 2^31-1]", index,
                            buf);
        } else if (isinf(strtod(buf, NULL))) {
            /* It could not be written as a JSON number again. */
            return fail(d, MWL_E_MALFORMED, tag, "DS Value[%zu] %s is beyond the range of a double", index,
                        buf);
        }
        mwl_wbuf_put(&d->value, s, len);
        return MWL_OK;
    }
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (is && (n < INT32_MIN || n > INT32_MAX))
            return fail(d, MWL_E_MALFORMED, tag,
                        "IS Value[%zu] %" JSON_INTEGER_FORMAT " is outside [-2^31, 2^31-1]", index, n);
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, n);
        if (!is && strlen(buf) > 16) {
            char ds[17];
            format_ds((double)n, ds);
            mwl_wbuf_put(&d->value, ds, strlen(ds));
            return MWL_OK;
        }
        mwl_wbuf_put(&d->value, buf, strlen(buf));
        return MWL_OK;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (is) {
            if (x != floor(x) || x < (double)INT32_MIN || x > (double)INT32_MAX)
                return fail(d, MWL_E_MALFORMED, tag, "IS Value[%zu] %g is not an integer in [-2^31, 2^31-1]",
                            index, x);
            snprintf(buf, sizeof buf, "%.0f", x);
            mwl_wbuf_put(&d->value, buf, strlen(buf));
            return MWL_OK;
        }
        char ds[17];
        format_ds(x, ds);
        mwl_wbuf_put(&d->value, ds, strlen(ds));
        return MWL_OK;
    }
    return fail(d, MWL_E_MALFORMED, tag, "%s Value[%zu] is %s, expected a number", is ? "IS" : "DS", index,
                json_type_name(v));
}

/* The "Value" of a string VR, joined with '\'. */
static int decode_strings(decoder *d, mwl_ds *ds, uint32_t tag, mwl_vr vr, json_t *values)
{
    const mwl_vr_info *info = mwl_vr_get_info(vr);
    size_t n = json_array_size(values);
    if (info->kind == MWL_VR_KIND_TEXT && n > 1)
        return fail(d, MWL_E_MALFORMED, tag, "%s takes one value, Value has %zu", info->code, n);
    d->value.len = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(values, i);
        if (i)
            mwl_wbuf_put_u8(&d->value, '\\');
        if (json_is_null(v))
            continue;
        int rc;
        if (vr == MWL_VR_PN) {
            rc = put_person_name(d, tag, i, v);
        } else if (vr == MWL_VR_IS || vr == MWL_VR_DS) {
            rc = put_decimal(d, tag, vr, i, v);
        } else if (json_is_string(v)) {
            char what[32];
            snprintf(what, sizeof what, "Value[%zu]", i);
            rc = put_text(d, tag, vr, json_string_value(v), json_string_length(v), what,
                          info->kind == MWL_VR_KIND_STRING ? "\\" : NULL);
        } else {
            rc = fail(d, MWL_E_MALFORMED, tag, "%s Value[%zu] is %s, expected a string", info->code, i,
                      json_type_name(v));
        }
        if (rc != MWL_OK)
            return rc;
    }
    mwl_wbuf_put_u8(&d->value, 0);
    if (d->value.status != MWL_OK)
        return nomem(d);
    if (d->value.len - 1 >= 0xFFFFFFFEu)
        return fail(d, MWL_E_LIMIT, tag, "value too long");
    int rc = mwl_ds_set_str(ds, tag, vr, (const char *)d->value.data);
    return rc == MWL_E_NOMEM ? nomem(d) : rc;
}

/* ---- binary values --------------------------------------------------------- */

/* A JSON number that is an integer in [lo, hi]. */
static bool get_integer(json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < lo || n > hi)
            return false;
        *out = (int64_t)n;
        return true;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        /* 2^63 is exact in a double; INT64_MAX is not. */
        if (x != floor(x) || x < (double)lo || x >= 9223372036854775808.0 || x > (double)hi)
            return false;
        *out = (int64_t)x;
        return *out >= lo && *out <= hi;
    }
    return false;
}

/* SV and UV values beyond 2^53 come as decimal strings (F.2.3). */
static bool get_64(json_t *v, bool is_signed, uint64_t *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0 || len > 20 || !decimal_syntax(s, len, true) ||
            (!is_signed && (s[0] == '-' || s[0] == '+')))
            return false;
        errno = 0;
        char *end = NULL;
        if (is_signed) {
            long long n = strtoll(s, &end, 10);
            *out = (uint64_t)n;
        } else {
            unsigned long long n = strtoull(s, &end, 10);
            *out = (uint64_t)n;
        }
        return errno == 0 && end == s + len;
    }
    int64_t n;
    if (is_signed) {
        if (!get_integer(v, INT64_MIN, INT64_MAX, &n))
            return false;
        *out = (uint64_t)n;
        return true;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != floor(x) || x < 0 || x >= 18446744073709551616.0)
            return false;
        *out = (uint64_t)x;
        return true;
    }
    if (!get_integer(v, 0, INT64_MAX, &n))
        return false;
    *out = (uint64_t)n;
    return true;
}

static bool get_double(json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "NaN") == 0)
            *out = NAN;
        else if (strcmp(s, "Infinity") == 0)
            *out = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            *out = -INFINITY;
        else
            return false;
        return true;
    }
    return false;
}

static int decode_numbers(decoder *d, mwl_ds *ds, uint32_t tag, mwl_vr vr, json_t *values)
{
    const char *code = mwl_vr_code(vr);
    size_t n = json_array_size(values);
    d->value.len = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(values, i);
        uint8_t b[8];
        size_t size = 0;
        int64_t k = 0;
        uint64_t u = 0;
        double x = 0;
        bool ok = true;
        switch (vr) {
        case MWL_VR_US:
            ok = get_integer(v, 0, UINT16_MAX, &k);
            mwl_store_u16le(b, (uint16_t)k);
            size = 2;
            break;
        case MWL_VR_SS:
            ok = get_integer(v, INT16_MIN, INT16_MAX, &k);
            mwl_store_u16le(b, (uint16_t)(int16_t)k);
            size = 2;
            break;
        case MWL_VR_UL:
            ok = get_integer(v, 0, UINT32_MAX, &k);
            mwl_store_u32le(b, (uint32_t)k);
            size = 4;
            break;
        case MWL_VR_SL:
            ok = get_integer(v, INT32_MIN, INT32_MAX, &k);
            mwl_store_u32le(b, (uint32_t)(int32_t)k);
            size = 4;
            break;
        case MWL_VR_SV:
        case MWL_VR_UV:
            ok = get_64(v, vr == MWL_VR_SV, &u);
            mwl_store_u64le(b, u);
            size = 8;
            break;
        case MWL_VR_FL: {
            ok = get_double(v, &x) && !(isfinite(x) && fabs(x) > FLT_MAX);
            float f = ok ? (float)x : 0.0f;
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            mwl_store_u32le(b, bits);
            size = 4;
            break;
        }
        case MWL_VR_FD: {
            ok = get_double(v, &x);
            uint64_t bits;
            memcpy(&bits, &x, sizeof bits);
            mwl_store_u64le(b, bits);
            size = 8;
            break;
        }
        case MWL_VR_AT: {
            uint32_t t = 0;
            ok = json_is_string(v) && parse_hex_tag(json_string_value(v), json_string_length(v), &t);
            mwl_store_u16le(b, MWL_TAG_GROUP(t));
            mwl_store_u16le(b + 2, MWL_TAG_ELEMENT(t));
            size = 4;
            break;
        }
        default: ok = false; break;
        }
        if (!ok) {
            if (vr == MWL_VR_AT)
                return fail(d, MWL_E_MALFORMED, tag, "AT Value[%zu] is not a tag string \"GGGGEEEE\"", i);
            if (json_is_number(v) || (json_is_string(v) && (vr == MWL_VR_SV || vr == MWL_VR_UV)))
                return fail(d, MWL_E_MALFORMED, tag, "%s Value[%zu] is out of range%s", code, i,
                            vr == MWL_VR_FL || vr == MWL_VR_FD ? "" : " or not an integer");
            return fail(d, MWL_E_MALFORMED, tag, "%s Value[%zu] is %s, expected a number", code, i,
                        json_type_name(v));
        }
        mwl_wbuf_put(&d->value, b, size);
    }
    if (d->value.status != MWL_OK)
        return nomem(d);
    if (d->value.len >= 0xFFFFFFFEu)
        return fail(d, MWL_E_LIMIT, tag, "value too long");
    int rc = mwl_ds_set(ds, tag, vr, d->value.data, d->value.len);
    return rc == MWL_E_NOMEM ? nomem(d) : rc;
}

static int decode_inline_binary(decoder *d, mwl_ds *ds, uint32_t tag, mwl_vr vr, json_t *b64)
{
    const mwl_vr_info *info = mwl_vr_get_info(vr);
    if (json_is_array(b64) && json_array_size(b64) == 1)
        b64 = json_array_get(b64, 0); /* an early PS3.18 example's form */
    if (!json_is_string(b64))
        return fail(d, MWL_E_MALFORMED, tag, "%s InlineBinary is %s, expected a base64 string", info->code,
                    json_type_name(b64));
    const char *s = json_string_value(b64);
    size_t len = json_string_length(b64);
    if (len / 4 * 3 >= 0xFFFFFFFEu)
        return fail(d, MWL_E_LIMIT, tag, "value too long");
    uint8_t *bytes = len ? mwl_arena_alloc(d->arena, mwl_base64_decoded_max(len)) : NULL;
    if (len && !bytes)
        return nomem(d);
    size_t n = 0, bad = 0;
    if (mwl_base64_decode(s, len, bytes, &n, &bad) != MWL_OK) {
        if (bad == len)
            return fail(d, MWL_E_MALFORMED, tag,
                        "%s InlineBinary is not base64: its length %zu is not a multiple of 4", info->code,
                        len);
        return fail(d, MWL_E_MALFORMED, tag, "%s InlineBinary is not base64 (strict RFC 4648): character %zu",
                    info->code, bad);
    }
    if (info->word > 1 && n % info->word != 0)
        return fail(d, MWL_E_MALFORMED, tag, "%s value of %zu bytes is not a whole number of %u-byte words",
                    info->code, n, (unsigned)info->word);
    int rc = mwl_ds_set_ref(ds, tag, vr, bytes, n);
    return rc == MWL_E_NOMEM ? nomem(d) : rc;
}

/* ---- the tree -------------------------------------------------------------- */

static int decode_object(decoder *d, json_t *obj, mwl_ds *ds);

static int decode_sequence(decoder *d, mwl_ds *ds, uint32_t tag, json_t *values)
{
    mwl_elem *seq = NULL;
    int rc = mwl_ds_set_seq(ds, tag, &seq);
    if (rc != MWL_OK)
        return nomem(d);
    size_t n = json_array_size(values);
    if (n && d->depth + 1 > d->opt.max_depth)
        return fail(d, MWL_E_LIMIT, tag, "sequences nested deeper than %zu levels", d->opt.max_depth);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(values, i);
        if (!json_is_object(v))
            return fail(d, MWL_E_MALFORMED, tag, "SQ Value[%zu] is %s, expected an object (an item)", i,
                        json_type_name(v));
        if (++d->elements > d->opt.max_elements)
            return fail(d, MWL_E_LIMIT, tag, "more than %zu elements and items", d->opt.max_elements);
        mwl_ds *item = NULL;
        rc = mwl_ds_add_item(ds, tag, &item);
        if (rc != MWL_OK)
            return nomem(d);
        if (d->depth < PATH_MAX_LEVELS) {
            d->path[d->depth].tag = tag;
            d->path[d->depth].item = i;
        }
        d->depth++;
        rc = decode_object(d, v, item);
        d->depth--;
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

static int decode_attribute(decoder *d, mwl_ds *ds, uint32_t tag, json_t *attr)
{
    if (!json_is_object(attr))
        return fail(d, MWL_E_MALFORMED, tag, "the attribute is %s, expected an object with \"vr\"",
                    json_type_name(attr));
    json_t *jvr = json_object_get(attr, "vr");
    if (!jvr)
        return fail(d, MWL_E_MALFORMED, tag, "no \"vr\"");
    mwl_vr vr = MWL_VR_NONE;
    if (json_is_string(jvr) && json_string_length(jvr) == 2)
        vr = mwl_vr_from_code((const uint8_t *)json_string_value(jvr));
    if (vr == MWL_VR_NONE)
        return fail(d, MWL_E_MALFORMED, tag, "\"vr\" %s%.10s%s is not a VR", json_is_string(jvr) ? "\"" : "",
                    json_is_string(jvr) ? json_string_value(jvr) : json_type_name(jvr),
                    json_is_string(jvr) ? "\"" : "");
    json_t *value = NULL, *inline_binary = NULL;
    const char *key;
    json_t *member;
    json_object_foreach(attr, key, member)
    {
        if (strcmp(key, "vr") == 0)
            continue;
        if (strcmp(key, "Value") == 0)
            value = member;
        else if (strcmp(key, "InlineBinary") == 0)
            inline_binary = member;
        else if (strcmp(key, "BulkDataURI") == 0)
            return fail(d, MWL_E_UNSUPPORTED, tag,
                        "BulkDataURI: values behind URIs are not fetched; send it inline");
        else
            return fail(d, MWL_E_MALFORMED, tag, "unexpected member \"%.40s\" (vr, Value, InlineBinary)",
                        key);
    }
    if (value && inline_binary)
        return fail(d, MWL_E_MALFORMED, tag, "both Value and InlineBinary");

    /* The VR as given, as Explicit VR would; but the structure must agree
     * with the dictionary, or a sequence would be read as text. */
    const mwl_dict_entry *entry = mwl_tag_is_private(tag) ? NULL : mwl_dict_find(tag);
    if (entry && vr != MWL_VR_UN && (vr == MWL_VR_SQ) != (entry->vr == MWL_VR_SQ))
        return fail(d, MWL_E_MALFORMED, tag, "VR %s, but %s is %s", mwl_vr_code(vr),
                    entry->keyword[0] ? entry->keyword : "the dictionary's", mwl_vr_code((mwl_vr)entry->vr));

    const mwl_vr_info *info = mwl_vr_get_info(vr);
    if (inline_binary && info->kind != MWL_VR_KIND_BYTES)
        return fail(d, MWL_E_MALFORMED, tag, "%s takes Value, not InlineBinary (only OB OD OF OL OV OW UN)",
                    info->code);
    if (value && info->kind == MWL_VR_KIND_BYTES)
        return fail(d, MWL_E_MALFORMED, tag, "%s takes InlineBinary, not Value", info->code);
    if (value && !json_is_array(value))
        return fail(d, MWL_E_MALFORMED, tag, "Value is %s, expected an array", json_type_name(value));

    /* No Value (NULL here) is a zero-length attribute. */
    switch (info->kind) {
    case MWL_VR_KIND_SEQUENCE: return decode_sequence(d, ds, tag, value);
    case MWL_VR_KIND_STRING:
    case MWL_VR_KIND_TEXT: return decode_strings(d, ds, tag, vr, value);
    case MWL_VR_KIND_NUMBER: return decode_numbers(d, ds, tag, vr, value);
    case MWL_VR_KIND_BYTES:
        if (!inline_binary) {
            int rc = mwl_ds_set(ds, tag, vr, NULL, 0);
            return rc == MWL_OK ? MWL_OK : nomem(d);
        }
        return decode_inline_binary(d, ds, tag, vr, inline_binary);
    default: return fail(d, MWL_E_MALFORMED, tag, "\"vr\" is not a VR");
    }
}

/* (0008,0005) must name character sets we know, even where the text is
 * ASCII: a data set whose text cannot be read is of no use downstream. */
static int check_charset(decoder *d, const mwl_elem *e)
{
    if (e->vr != MWL_VR_CS)
        return fail(d, MWL_E_MALFORMED, e->tag, "Specific Character Set must be CS, not %s",
                    mwl_vr_code(e->vr));
    mwl_charset cs;
    mwl_diag cd;
    mwl_diag_clear(&cd);
    int rc = mwl_charset_parse((const char *)e->value, e->length, &cs, &cd);
    if (rc != MWL_OK)
        return fail(d, rc == MWL_E_NOMEM ? rc : MWL_E_UNSUPPORTED, e->tag, "%s",
                    cd.msg[0] ? cd.msg : mwl_status_str(rc));
    return MWL_OK;
}

static int decode_object(decoder *d, json_t *obj, mwl_ds *ds)
{
    const char *key;
    json_t *attr;
    json_object_foreach(obj, key, attr)
    {
        uint32_t tag;
        if (!parse_hex_tag(key, strlen(key), &tag))
            return fail(d, MWL_E_MALFORMED, 0, "\"%.40s\" is not a tag (8 hex digits GGGGEEEE)", key);
        uint16_t group = MWL_TAG_GROUP(tag);
        if (group == 0x0000)
            return fail(d, MWL_E_MALFORMED, tag, "command elements (group 0000) do not belong in a data set");
        if (group == 0x0001 || group == 0x0003 || group == 0x0005 || group == 0x0007 || group == 0xFFFF)
            return fail(d, MWL_E_MALFORMED, tag, "group %04X is not allowed (PS3.5 7.1)", (unsigned)group);
        if (group == 0xFFFE)
            return fail(d, MWL_E_MALFORMED, tag, "an item or delimitation tag is not an attribute");
        if (group == 0x0002 || MWL_TAG_ELEMENT(tag) == 0x0000)
            continue; /* file meta information and group lengths: dropped */
        if (mwl_ds_find(ds, tag))
            return fail(d, MWL_E_MALFORMED, tag, "given twice (its keys differ in case)");
        if (++d->elements > d->opt.max_elements)
            return fail(d, MWL_E_LIMIT, tag, "more than %zu elements and items", d->opt.max_elements);
        int rc = decode_attribute(d, ds, tag, attr);
        if (rc == MWL_OK && tag == MWL_TAG_SpecificCharacterSet)
            rc = check_charset(d, mwl_ds_find(ds, tag));
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

/* ---- the character set ----------------------------------------------------- */

static void remove_item_charsets(mwl_ds *ds)
{
    size_t count = mwl_ds_count(ds);
    for (size_t i = 0; i < count; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        for (size_t k = 0; e->vr == MWL_VR_SQ && k < e->item_count; k++) {
            (void)mwl_ds_remove(e->items[k], MWL_TAG_SpecificCharacterSet);
            remove_item_charsets(e->items[k]);
        }
    }
}

/* The text is in UTF-8; say so, or re-encode it (keep_charset). */
static int settle_charset(decoder *d, mwl_ds *ds)
{
    if (!d->non_ascii)
        return MWL_OK;
    remove_item_charsets(ds);
    mwl_charset declared;
    bool recode = false;
    const mwl_elem *given = mwl_ds_find(ds, MWL_TAG_SpecificCharacterSet);
    if (d->opt.keep_charset && given && given->length) {
        mwl_diag cd;
        mwl_diag_clear(&cd);
        int rc = mwl_charset_parse((const char *)given->value, given->length, &declared, &cd);
        if (rc != MWL_OK)
            return fail(d, rc, MWL_TAG_SpecificCharacterSet, "%s", cd.msg[0] ? cd.msg : mwl_status_str(rc));
        recode = !mwl_charset_is_utf8(&declared);
    }
    int rc = mwl_ds_set_str(ds, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192");
    if (rc != MWL_OK)
        return nomem(d);
    if (!recode)
        return MWL_OK;
    mwl_diag cd;
    mwl_diag_clear(&cd);
    rc = mwl_ds_recode(ds, &declared, &cd);
    if (rc == MWL_E_NOMEM)
        return nomem(d);
    if (rc != MWL_OK)
        return fail(d, rc, cd.tag, "cannot be written in the JSON's Specific Character Set: %s",
                    cd.msg[0] ? cd.msg : mwl_status_str(rc));
    return MWL_OK;
}

/* ---- entry points ---------------------------------------------------------- */

static void decoder_init(decoder *d, mwl_arena *arena, const mwl_json_decode_options *opt, mwl_diag *diag)
{
    memset(d, 0, sizeof *d);
    if (opt)
        d->opt = *opt;
    else
        mwl_json_decode_options_init(&d->opt);
    d->arena = arena;
    d->diag = diag;
    d->object = -1;
    mwl_wbuf_init(&d->value, arena->mem);
}

/* Parses the whole input with jansson. */
static int parse(decoder *d, const char *json, size_t len, json_t **root)
{
    if (len > d->opt.max_bytes) {
        mwl_diag_set(d->diag, 0, 0, "JSON of %zu bytes is over the limit of %zu", len, d->opt.max_bytes);
        return MWL_E_LIMIT;
    }
    json_error_t err;
    *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (*root)
        return MWL_OK;
    enum json_error_code code = json_error_code(&err);
    mwl_diag_set(d->diag, err.position >= 0 ? (size_t)err.position : 0, 0, "JSON line %d column %d: %s",
                 err.line, err.column, err.text);
    if (code == json_error_out_of_memory)
        return MWL_E_NOMEM;
    if (code == json_error_stack_overflow)
        return MWL_E_LIMIT;
    return MWL_E_MALFORMED;
}

static int decode_one(decoder *d, json_t *obj, mwl_ds **out)
{
    if (!json_is_object(obj))
        return fail(d, MWL_E_MALFORMED, 0, "the JSON is %s, expected an object (a data set)",
                    json_type_name(obj));
    d->elements = 0;
    d->non_ascii = false;
    d->depth = 0;
    mwl_ds *ds = NULL;
    if (mwl_ds_new(d->arena, NULL, &ds) != MWL_OK)
        return nomem(d);
    int rc = decode_object(d, obj, ds);
    if (rc == MWL_OK)
        rc = settle_charset(d, ds);
    if (rc == MWL_OK)
        *out = ds;
    return rc;
}

int mwl_ds_decode_json(const char *json, size_t len, mwl_arena *arena, const mwl_json_decode_options *opt,
                       mwl_ds **out, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!json || !arena || !out)
        return MWL_E_INVALID;
    decoder d;
    decoder_init(&d, arena, opt, diag);
    json_t *root = NULL;
    int rc = parse(&d, json, len, &root);
    if (rc == MWL_OK)
        rc = decode_one(&d, root, out);
    json_decref(root);
    mwl_wbuf_clear(&d.value);
    return rc;
}

int mwl_ds_decode_json_array(const char *json, size_t len, mwl_arena *arena,
                             const mwl_json_decode_options *opt, mwl_ds ***out, size_t *count, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!json || !arena || !out || !count)
        return MWL_E_INVALID;
    decoder d;
    decoder_init(&d, arena, opt, diag);
    json_t *root = NULL;
    int rc = parse(&d, json, len, &root);
    mwl_ds **list = NULL;
    size_t n = 0;
    if (rc == MWL_OK && !json_is_array(root))
        rc = fail(&d, MWL_E_MALFORMED, 0, "the JSON is %s, expected an array of objects",
                  json_type_name(root));
    if (rc == MWL_OK) {
        n = json_array_size(root);
        if (n) {
            list = mwl_arena_alloc(arena, n * sizeof *list);
            if (!list)
                rc = nomem(&d);
        }
    }
    for (size_t i = 0; rc == MWL_OK && i < n; i++) {
        d.object = (long)i;
        rc = decode_one(&d, json_array_get(root, i), &list[i]);
    }
    if (rc == MWL_OK) {
        *out = list;
        *count = n;
    }
    json_decref(root);
    mwl_wbuf_clear(&d.value);
    return rc;
}
