/* Mapping of HL7 v2 order and patient messages onto worklist items (IHE
 * RAD-4/13 and RAD-1/12; spec/hl7.md §5-§7, docs/hl7.md). The attribute
 * mapping is the table in map_table.c; this file walks it and does in code
 * what a table row cannot say: the patient's identity, the Study Instance
 * UID (sent or derived), the Scheduled Station, order control and status,
 * the grouping of ORC/OBR/IPC segments into steps, and site defaults. */
#include "hl7/hl7.h"
#include "hl7/map_int.h"

#include <openssl/evp.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/utf8.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "dicom/tags_gen.h"
#include "dicom/vr.h"

#define MAP_TEXT_MAX 12288 /* longest value we build (LT is 10240 characters) */

/* ======================================================================
 * Mapping context and value helpers
 * ====================================================================== */

typedef struct map_ctx {
    const mwl_hl7_msg *m;
    const mwl_hl7_map_config *cfg;
    mwl_arena *arena;
    mwl_hl7_error *err;
    bool omi;       /* OMI^O23: the 2.5.1 IPC column of the table */
    bool create;    /* CREATE: "" is as good as absent (defaults apply) */
    bool non_ascii; /* some value of the current item is not ASCII */
    /* the segments of the step being built (NULL when not in the message) */
    const mwl_hl7_seg *pid, *pv1, *orc, *tq1, *obr, *ipc, *zds;
    size_t obr_index; /* segment index of obr, for the NTE after it */
} map_ctx;

static int fail(map_ctx *c, mwl_hl7_ack_code ack, int code, const char *seg, unsigned seq, unsigned field,
                unsigned comp, const char *fmt, ...) MWL_PRINTF(8, 9);
static int fail(map_ctx *c, mwl_hl7_ack_code ack, int code, const char *seg, unsigned seq, unsigned field,
                unsigned comp, const char *fmt, ...)
{
    char text[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    mwl_hl7_error_set(c->err, ack, code, seg, seq, field, comp, "%s", text);
    return MWL_E_INVALID;
}

/* An AE naming a field of segment s (s may be NULL: seq 1). */
static int fail_at(map_ctx *c, int code, const char *seg, const mwl_hl7_seg *s, unsigned field, unsigned comp,
                   const char *what)
{
    unsigned seq = s ? mwl_hl7_seg_seq(s) : 1;
    if (comp)
        return fail(c, MWL_HL7_AE, code, seg, seq, field, comp, "%s-%u.%u: %s", seg, field, comp, what);
    return fail(c, MWL_HL7_AE, code, seg, seq, field, comp, "%s-%u: %s", seg, field, what);
}

static const mwl_hl7_seg *seg_for(const map_ctx *c, const char *name)
{
    if (!strcmp(name, "PID"))
        return c->pid;
    if (!strcmp(name, "PV1"))
        return c->pv1;
    if (!strcmp(name, "ORC"))
        return c->orc;
    if (!strcmp(name, "TQ1"))
        return c->tq1;
    if (!strcmp(name, "OBR"))
        return c->obr;
    if (!strcmp(name, "IPC"))
        return c->ipc;
    if (!strcmp(name, "ZDS"))
        return c->zds;
    return NULL;
}

static mwl_hl7_presence get(const map_ctx *c, const mwl_hl7_seg *s, unsigned field, unsigned rep,
                            unsigned comp, unsigned sub, const char **v)
{
    *v = "";
    if (!s)
        return MWL_HL7_ABSENT;
    return mwl_hl7_get(c->m, s, field, rep, comp, sub, v);
}

/* A field as a whole: "" sent, something sent, or nothing. No copy: it
 * is asked for every mapped field of every step, and a field may be as
 * large as the message. */
static mwl_hl7_presence field_presence(const map_ctx *c, const mwl_hl7_seg *s, unsigned field)
{
    return mwl_hl7_field_presence(c->m, s, field);
}

static size_t count_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        uint32_t cp;
        size_t k = mwl_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        i += k ? k : 1;
    }
    return n;
}

/* Checks one value (not yet joined with others) against its VR: no
 * backslash where it separates values, not longer than the VR allows (PN:
 * per component group). A long value is refused rather than cut, so the
 * RIS learns of it (spec §6.4). */
static bool value_fits(mwl_vr vr, const char *v, const char **why)
{
    const mwl_vr_info *info = mwl_vr_get_info(vr);
    if (info->kind == MWL_VR_KIND_STRING && strchr(v, '\\')) {
        *why = "contains a backslash";
        return false;
    }
    if (!info->max_len)
        return true;
    if (vr == MWL_VR_PN) {
        for (const char *g = v;;) {
            const char *end = strchr(g, '=');
            size_t len = end ? (size_t)(end - g) : strlen(g);
            if (count_chars(g, len) > info->max_len) {
                *why = "longer than 64 characters (PN)";
                return false;
            }
            if (!end)
                break;
            g = end + 1;
        }
        return true;
    }
    if (count_chars(v, strlen(v)) > info->max_len) {
        *why = vr == MWL_VR_AE   ? "longer than 16 characters (AE)"
               : vr == MWL_VR_SH ? "longer than 16 characters (SH)"
               : vr == MWL_VR_LO ? "longer than 64 characters (LO)"
               : vr == MWL_VR_UI ? "longer than 64 characters (UI)"
               : vr == MWL_VR_CS ? "longer than 16 characters (CS)"
                                 : "too long for its DICOM VR";
        return false;
    }
    return true;
}

static void note_ascii(map_ctx *c, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p >= 0x80) {
            c->non_ascii = true;
            return;
        }
}

/* Control characters (\.br\ and friends) only belong in text VRs; in
 * others they become spaces. Returns v itself when nothing changes. */
static const char *clean(map_ctx *c, mwl_vr vr, const char *v)
{
    if (mwl_vr_get_info(vr)->kind == MWL_VR_KIND_TEXT)
        return v;
    const char *p = v;
    while (*p && (unsigned char)*p >= 0x20)
        p++;
    if (!*p)
        return v;
    char *copy = mwl_arena_strndup(c->arena, v, strlen(v));
    if (!copy)
        return NULL;
    for (char *q = copy; *q; q++)
        if ((unsigned char)*q < 0x20)
            *q = ' ';
    return copy;
}

/* Sets `tag` (dictionary VR) to v after the checks above; an error names
 * seg-field.comp. */
static int put_checked(map_ctx *c, mwl_ds *ds, uint32_t tag, const char *v, const char *seg,
                       const mwl_hl7_seg *s, unsigned field, unsigned comp)
{
    mwl_vr vr = mwl_dict_vr(tag);
    const char *why = NULL;
    v = clean(c, vr, v);
    if (!v)
        return MWL_E_NOMEM;
    if (!value_fits(vr, v, &why)) {
        char what[128];
        snprintf(what, sizeof what, "%s %s", mwl_dict_keyword(tag), why);
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, seg, s, field, comp, what);
    }
    note_ascii(c, v);
    return mwl_ds_set_str(ds, tag, vr, v);
}

/* A zero-length element: the message sent "" (clear what is stored). */
static int put_null(mwl_ds *ds, uint32_t tag)
{
    mwl_vr vr = mwl_dict_vr(tag);
    if (vr == MWL_VR_SQ)
        return mwl_ds_set_seq(ds, tag, NULL);
    return mwl_ds_set(ds, tag, vr, "", 0);
}

/* A growing text in the arena-free stack buffer of the caller. */
typedef struct text {
    char buf[MAP_TEXT_MAX];
    size_t len;
    bool overflow;
} text;

static void text_add(text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n >= sizeof t->buf) {
        t->overflow = true;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* Removes trailing `ch` (empty trailing PN components and groups). */
static void text_trim(text *t, char ch)
{
    while (t->len && t->buf[t->len - 1] == ch)
        t->buf[--t->len] = '\0';
}

/* ======================================================================
 * Converters (one per mwl_hl7_conv)
 * ====================================================================== */

/* One person name into t: parts[0..4] = family, given, middle, suffix,
 * prefix as HL7 orders them; DICOM wants family^given^middle^prefix^suffix
 * (the degree is dropped). Delimiters inside a part become spaces. */
static void pn_build(text *t, const char *parts[5])
{
    static const int order[5] = {0, 1, 2, 4, 3};
    size_t start = t->len;
    for (int i = 0; i < 5; i++) {
        if (i)
            text_add(t, "^");
        size_t at = t->len;
        text_add(t, parts[order[i]]);
        for (size_t k = at; k < t->len; k++)
            if (t->buf[k] == '^' || t->buf[k] == '=' || t->buf[k] == '\\')
                t->buf[k] = ' ';
    }
    while (t->len > start && t->buf[t->len - 1] == '^')
        t->buf[--t->len] = '\0';
}

/* Name parts of repetition rep: XPN (first = 1), XCN (first = 2, after the
 * ID) with components, each read at sub-component 1 (2.5 FN family name);
 * CNN with sub-components of component 1 (first = 2). */
static void name_parts(const map_ctx *c, const mwl_hl7_seg *s, unsigned field, unsigned rep, unsigned first,
                       bool in_subs, const char *parts[5])
{
    for (unsigned i = 0; i < 5; i++) {
        if (in_subs)
            (void)get(c, s, field, rep, 1, first + i, &parts[i]);
        else
            (void)get(c, s, field, rep, first + i, 1, &parts[i]);
    }
}

static bool parts_empty(const char *parts[5])
{
    for (int i = 0; i < 5; i++)
        if (parts[i][0])
            return false;
    return true;
}

/* XPN: the alphabetic group from the first repetition without XPN-8 (or
 * with A), preferring the legal name (XPN-7 L); ideographic (I) and
 * phonetic (P) repetitions fill the other groups (PS3.5 6.2.1). */
static int conv_xpn(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                    mwl_ds *ds, mwl_hl7_presence *out)
{
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    unsigned reps = mwl_hl7_reps(c->m, s, src->field);
    unsigned pick[3] = {0, 0, 0};
    bool legal = false;
    for (unsigned r = 1; r <= reps; r++) {
        const char *parts[5], *code, *type;
        name_parts(c, s, src->field, r, 1, false, parts);
        if (parts_empty(parts))
            continue;
        (void)get(c, s, src->field, r, 8, 1, &code);
        (void)get(c, s, src->field, r, 7, 1, &type);
        int g = !strcmp(code, "I") ? 1 : !strcmp(code, "P") ? 2 : 0;
        if (g == 0 && (!pick[0] || (!legal && !strcmp(type, "L")))) {
            pick[0] = r;
            legal = !strcmp(type, "L");
        } else if (g && !pick[g]) {
            pick[g] = r;
        }
    }
    if (!pick[0] && !pick[1] && !pick[2]) {
        *out = MWL_HL7_ABSENT;
        return MWL_OK;
    }
    text t = {.len = 0};
    t.buf[0] = '\0';
    for (int g = 0; g < 3; g++) {
        if (g)
            text_add(&t, "=");
        if (pick[g]) {
            const char *parts[5];
            name_parts(c, s, src->field, pick[g], 1, false, parts);
            pn_build(&t, parts);
        }
    }
    text_trim(&t, '=');
    if (t.overflow)
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, src->seg, s, src->field, 0, "name too long");
    return put_checked(c, ds, row->tag, t.buf, src->seg, s, src->field, 0);
}

/* XCN (ID first) or CNN (all in sub-components of component 1; some
 * senders use the XCN form there, read when sub-component 2 is empty):
 * every repetition is one value. */
static int conv_xcn(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                    mwl_ds *ds, mwl_hl7_presence *out)
{
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    unsigned reps = mwl_hl7_reps(c->m, s, src->field);
    text t = {.len = 0};
    t.buf[0] = '\0';
    bool any = false;
    for (unsigned r = 1; r <= reps; r++) {
        const char *parts[5], *probe;
        bool subs = false;
        if (row->conv == MWL_HL7_CONV_CNN)
            subs = get(c, s, src->field, r, 1, 2, &probe) == MWL_HL7_VALUE;
        name_parts(c, s, src->field, r, 2, subs, parts);
        if (parts_empty(parts))
            continue;
        if (any)
            text_add(&t, "\\");
        size_t at = t.len;
        pn_build(&t, parts);
        const char *why;
        if (!value_fits(MWL_VR_PN, t.buf + at, &why))
            return fail_at(c, MWL_HL7_ERR_DATA_TYPE, src->seg, s, src->field, 0, why);
        any = true;
    }
    if (!any) {
        *out = MWL_HL7_ABSENT;
        return MWL_OK;
    }
    if (t.overflow)
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, src->seg, s, src->field, 0, "names too long");
    note_ascii(c, t.buf);
    return mwl_ds_set_str(ds, row->tag, MWL_VR_PN, t.buf);
}

/* TS "YYYYMMDD[HH[MM[SS[.S...]]]][+-ZZZZ]": the date and the time as
 * sent; a UTC offset is dropped (the RIS and the modalities share a local
 * clock in practice; docs/hl7.md). Less than a full date is refused. */
static bool ts_split(const char *v, char date[9], char time[16])
{
    size_t n = strcspn(v, "+-");
    if (n < 8 || n - 8 > 13)
        return false;
    memcpy(date, v, 8);
    date[8] = '\0';
    memcpy(time, v + 8, n - 8);
    time[n - 8] = '\0';
    mwl_date d;
    if (mwl_date_parse(date, 8, &d) != MWL_OK)
        return false;
    for (size_t i = 0; i < 8; i++)
        if (date[i] < '0' || date[i] > '9')
            return false;
    if (time[0]) {
        mwl_time t;
        if (strchr(time, ':') || mwl_time_parse(time, strlen(time), &t) != MWL_OK)
            return false;
    }
    if (v[n]) { /* the offset: +HHMM or -HHMM */
        const char *o = v + n + 1;
        if (strlen(o) != 4 || strspn(o, "0123456789") != 4)
            return false;
    }
    return true;
}

static int conv_ts(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                   mwl_ds *ds, mwl_hl7_presence *out)
{
    const char *v;
    unsigned comp = src->comp ? src->comp : 1;
    *out = get(c, s, src->field, 1, comp, 1, &v);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    char date[9], time[16];
    if (!ts_split(v, date, time))
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, src->seg, s, src->field, src->comp,
                       "not a date/time YYYYMMDD[HHMM[SS]]");
    int rc = mwl_ds_set_str(ds, row->tag, MWL_VR_DA, date);
    if (rc == MWL_OK && row->conv == MWL_HL7_CONV_TS && row->tag2) {
        if (time[0])
            rc = mwl_ds_set_str(ds, row->tag2, MWL_VR_TM, time);
        else if (!c->create) /* the new date has no time: the old one is void */
            rc = put_null(ds, row->tag2);
    }
    return rc;
}

static int conv_st(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                   mwl_ds *ds, mwl_hl7_presence *out)
{
    const char *v;
    unsigned comp = src->comp ? src->comp : 1;
    *out = get(c, s, src->field, 1, comp, 1, &v);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    return put_checked(c, ds, row->tag, v, src->seg, s, src->field, src->comp);
}

/* CE as text: its text (.2), else the code (.1). */
static int conv_ce_text(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                        mwl_ds *ds, mwl_hl7_presence *out)
{
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    const char *v;
    if (get(c, s, src->field, 1, 2, 1, &v) != MWL_HL7_VALUE &&
        get(c, s, src->field, 1, 1, 1, &v) != MWL_HL7_VALUE) {
        *out = MWL_HL7_ABSENT;
        return MWL_OK;
    }
    return put_checked(c, ds, row->tag, v, src->seg, s, src->field, 0);
}

/* One code item (PS3.3 8.8): Code Value, or Long Code Value when longer
 * than 16; Coding Scheme Designator; Code Meaning. */
static int code_item(map_ctx *c, mwl_ds *ds, uint32_t seq, const char *code, const char *scheme,
                     const char *meaning, const char *segname, const mwl_hl7_seg *s, unsigned field,
                     unsigned comp)
{
    mwl_ds *item;
    int rc = mwl_ds_add_item(ds, seq, &item);
    if (rc != MWL_OK)
        return rc;
    uint32_t code_tag = count_chars(code, strlen(code)) > 16 ? MWL_TAG_LongCodeValue : MWL_TAG_CodeValue;
    rc = put_checked(c, item, code_tag, code, segname, s, field, comp);
    if (rc == MWL_OK)
        rc = put_checked(c, item, MWL_TAG_CodingSchemeDesignator, scheme, segname, s, field, comp + 2);
    if (rc == MWL_OK && meaning[0])
        rc = put_checked(c, item, MWL_TAG_CodeMeaning, meaning, segname, s, field, comp + 1);
    return rc;
}

/* CE triplet at src->comp; only codes with a coding scheme make an item
 * (never invent a scheme, spec §6.4); every repetition may add one. */
static int conv_ce_seq(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                       mwl_ds *ds, mwl_hl7_presence *out)
{
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    unsigned base = src->comp ? src->comp : 1;
    unsigned reps = mwl_hl7_reps(c->m, s, src->field);
    bool any = false;
    for (unsigned r = 1; r <= reps; r++) {
        const char *code, *meaning, *scheme;
        (void)get(c, s, src->field, r, base, 1, &code);
        (void)get(c, s, src->field, r, base + 1, 1, &meaning);
        (void)get(c, s, src->field, r, base + 2, 1, &scheme);
        if (!code[0] || !scheme[0])
            continue;
        if (!any) {
            int rc = mwl_ds_set_seq(ds, row->tag, NULL);
            if (rc != MWL_OK)
                return rc;
        }
        any = true;
        int rc = code_item(c, ds, row->tag, code, scheme, meaning, src->seg, s, src->field, base);
        if (rc != MWL_OK)
            return rc;
    }
    if (!any)
        *out = MWL_HL7_ABSENT;
    return MWL_OK;
}

/* The issuer item of an EI/CX/HD: namespace (0040,0031), universal ID
 * (0040,0032) and its type (0040,0033); none when all three are empty
 * (an empty issuer sequence misleads, dcm4chee #3432). */
static int issuer_item(map_ctx *c, mwl_ds *ds, uint32_t seq, const char *ns, const char *uid,
                       const char *type, const char *segname, const mwl_hl7_seg *s, unsigned field)
{
    if (!ns[0] && !uid[0])
        return MWL_OK;
    mwl_ds *item;
    int rc = mwl_ds_set_seq(ds, seq, NULL);
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(ds, seq, &item);
    if (rc == MWL_OK && ns[0])
        rc = put_checked(c, item, MWL_TAG_LocalNamespaceEntityID, ns, segname, s, field, 0);
    if (rc == MWL_OK && uid[0])
        rc = put_checked(c, item, MWL_TAG_UniversalEntityID, uid, segname, s, field, 0);
    if (rc == MWL_OK && uid[0] && type[0])
        rc = put_checked(c, item, MWL_TAG_UniversalEntityIDType, type, segname, s, field, 0);
    return rc;
}

static int conv_ei(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                   mwl_ds *ds, mwl_hl7_presence *out)
{
    const char *id;
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    if (get(c, s, src->field, 1, 1, 1, &id) != MWL_HL7_VALUE) {
        *out = MWL_HL7_ABSENT;
        return MWL_OK;
    }
    int rc = put_checked(c, ds, row->tag, id, src->seg, s, src->field, 1);
    if (rc != MWL_OK || !row->tag2)
        return rc;
    const char *ns, *uid, *type;
    if (row->conv == MWL_HL7_CONV_CX) {
        (void)get(c, s, src->field, 1, 4, 1, &ns);
        (void)get(c, s, src->field, 1, 4, 2, &uid);
        (void)get(c, s, src->field, 1, 4, 3, &type);
    } else {
        (void)get(c, s, src->field, 1, 2, 1, &ns);
        (void)get(c, s, src->field, 1, 3, 1, &uid);
        (void)get(c, s, src->field, 1, 4, 1, &type);
    }
    rc = issuer_item(c, ds, row->tag2, ns, uid, type, src->seg, s, src->field);
    if (rc == MWL_OK && !c->create && !ns[0] && !uid[0])
        rc = put_null(ds, row->tag2); /* an update that names no issuer clears the old one */
    return rc;
}

/* XAD, PL: the components of the first repetition joined by '^'. */
static int conv_join(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                     mwl_ds *ds, mwl_hl7_presence *out)
{
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    text t = {.len = 0};
    t.buf[0] = '\0';
    for (unsigned k = 1; k <= 12; k++) {
        const char *v;
        if (k > 1)
            text_add(&t, "^");
        (void)get(c, s, src->field, 1, k, 1, &v);
        text_add(&t, v);
    }
    text_trim(&t, '^');
    if (!t.len) {
        *out = MWL_HL7_ABSENT;
        return MWL_OK;
    }
    return put_checked(c, ds, row->tag, t.buf, src->seg, s, src->field, 0);
}

/* HL7 priority (table 0027) to DICOM (IHE via dcm4chee): S STAT; A, P, C
 * HIGH; R ROUTINE; T MEDIUM; others give nothing. */
static int conv_priority(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                         mwl_ds *ds, mwl_hl7_presence *out)
{
    const char *v;
    *out = get(c, s, src->field, 1, src->comp ? src->comp : 1, 1, &v);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    static const char *const map[][2] = {{"S", "STAT"}, {"A", "HIGH"},    {"P", "HIGH"},
                                         {"C", "HIGH"}, {"R", "ROUTINE"}, {"T", "MEDIUM"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(v, map[i][0]))
            return mwl_ds_set_str(ds, row->tag, MWL_VR_NONE, map[i][1]);
    *out = MWL_HL7_ABSENT;
    return MWL_OK;
}

/* M, F, O as sent; U (unknown) and others: the sex is not known, an empty
 * value. */
static int conv_sex(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                    mwl_ds *ds, mwl_hl7_presence *out)
{
    const char *v;
    *out = get(c, s, src->field, 1, 1, 1, &v);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    bool known = !strcmp(v, "M") || !strcmp(v, "F") || !strcmp(v, "O");
    if (!known && c->create) {
        *out = MWL_HL7_ABSENT;
        return MWL_OK;
    }
    return mwl_ds_set_str(ds, row->tag, MWL_VR_CS, known ? v : "");
}

/* DICOM modality defined terms a worklist may schedule (PS3.3 C.7.3.1.1.1). */
static const char *const dicom_modalities[] = {
    "AR",  "ASMT",    "AU", "BDUS", "BI",  "BMD",    "CR",     "CT",  "DG",  "DOC", "DX", "ECG", "EPS",
    "ES",  "GM",      "HC", "HD",   "IO",  "IVOCT",  "IVUS",   "KER", "LEN", "LS",  "MG", "MR",  "NM",
    "OAM", "OCT",     "OP", "OPM",  "OPT", "OPTBSV", "OPTENF", "OPV", "OSS", "OT",  "PT", "PX",  "RF",
    "RG",  "RTIMAGE", "SM", "SMR",  "SRF", "TG",     "US",     "VA",  "XA",  "XC"};

/* HL7 table 0074 (diagnostic service section) codes that name one DICOM
 * modality. RAD, RX, XRC and others could be several, so they are refused. */
static const char *const hl7_modalities[][2] = {{"CAT", "CT"}, {"MRI", "MR"}, {"NMR", "MR"}, {"NMS", "NM"},
                                                {"RUS", "US"}, {"CUS", "US"}, {"OUS", "US"}, {"VUS", "US"}};

static const char *modality_of(const char *v)
{
    for (size_t i = 0; i < sizeof dicom_modalities / sizeof dicom_modalities[0]; i++)
        if (!strcmp(v, dicom_modalities[i]))
            return dicom_modalities[i];
    for (size_t i = 0; i < sizeof hl7_modalities / sizeof hl7_modalities[0]; i++)
        if (!strcmp(v, hl7_modalities[i][0]))
            return hl7_modalities[i][1];
    return NULL;
}

static int conv_modality(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                         mwl_ds *ds, mwl_hl7_presence *out)
{
    const char *v;
    *out = get(c, s, src->field, 1, src->comp ? src->comp : 1, 1, &v);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    const char *mod = modality_of(v);
    if (!mod) {
        char what[96];
        snprintf(what, sizeof what, "modality '%.40s' is no DICOM modality", v);
        return fail_at(c, MWL_HL7_ERR_TABLE_VALUE, src->seg, s, src->field, 0, what);
    }
    return mwl_ds_set_str(ds, row->tag, MWL_VR_CS, mod);
}

/* PV1-15 ambulatory status (table 0009): B6 = pregnant -> 3 (definitely
 * pregnant). Other codes say nothing about pregnancy. */
static int conv_pregnancy(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src,
                          const mwl_hl7_seg *s, mwl_ds *ds, mwl_hl7_presence *out)
{
    *out = field_presence(c, s, src->field);
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    unsigned reps = mwl_hl7_reps(c->m, s, src->field);
    for (unsigned r = 1; r <= reps; r++) {
        const char *v;
        if (get(c, s, src->field, r, 1, 1, &v) == MWL_HL7_VALUE && !strcmp(v, "B6"))
            return mwl_ds_set_u16(ds, row->tag, 3);
    }
    *out = MWL_HL7_ABSENT;
    return MWL_OK;
}

/* The comments: NTE-3 of the NTE segments right after the OBR. */
static int conv_nte(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                    mwl_ds *ds, mwl_hl7_presence *out)
{
    (void)s;
    *out = MWL_HL7_ABSENT;
    if (!c->obr)
        return MWL_OK;
    text t = {.len = 0};
    t.buf[0] = '\0';
    const mwl_hl7_seg *first = NULL;
    for (size_t i = c->obr_index + 1;; i++) {
        const mwl_hl7_seg *n = mwl_hl7_segment_at(c->m, i);
        if (!n || strcmp(mwl_hl7_seg_name(n), "NTE"))
            break;
        if (!first)
            first = n;
        mwl_hl7_presence p = field_presence(c, n, src->field);
        if (p == MWL_HL7_NULL && *out == MWL_HL7_ABSENT)
            *out = MWL_HL7_NULL;
        if (p != MWL_HL7_VALUE)
            continue;
        unsigned reps = mwl_hl7_reps(c->m, n, src->field);
        for (unsigned r = 1; r <= reps; r++) {
            const char *v;
            (void)get(c, n, src->field, r, 1, 1, &v);
            if (t.len)
                text_add(&t, "\r\n");
            text_add(&t, v);
        }
        *out = MWL_HL7_VALUE;
    }
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    if (t.overflow)
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, "NTE", first, src->field, 0,
                       "comments longer than LT allows");
    return put_checked(c, ds, row->tag, t.buf, "NTE", first, src->field, 0);
}

/* Allergies: the text of AL1-3 of every AL1 segment, one value each. */
static int conv_al1(map_ctx *c, const mwl_hl7_map_row *row, const mwl_hl7_src *src, const mwl_hl7_seg *s,
                    mwl_ds *ds, mwl_hl7_presence *out)
{
    (void)s;
    *out = MWL_HL7_ABSENT;
    text t = {.len = 0};
    t.buf[0] = '\0';
    size_t from = 0, idx = 0;
    for (const mwl_hl7_seg *al; (al = mwl_hl7_find(c->m, "AL1", from, &idx)) != NULL; from = idx + 1) {
        mwl_hl7_presence p = field_presence(c, al, src->field);
        if (p == MWL_HL7_NULL && *out == MWL_HL7_ABSENT)
            *out = MWL_HL7_NULL;
        const char *v;
        if (get(c, al, src->field, 1, 2, 1, &v) != MWL_HL7_VALUE &&
            get(c, al, src->field, 1, 1, 1, &v) != MWL_HL7_VALUE)
            continue;
        const char *why;
        v = clean(c, MWL_VR_LO, v);
        if (!v)
            return MWL_E_NOMEM;
        if (!value_fits(MWL_VR_LO, v, &why))
            return fail_at(c, MWL_HL7_ERR_DATA_TYPE, "AL1", al, src->field, 0, why);
        if (t.len)
            text_add(&t, "\\");
        text_add(&t, v);
        *out = MWL_HL7_VALUE;
    }
    if (*out != MWL_HL7_VALUE)
        return MWL_OK;
    note_ascii(c, t.buf);
    return mwl_ds_set_str(ds, row->tag, MWL_VR_LO, t.buf);
}

typedef int (*conv_fn)(map_ctx *, const mwl_hl7_map_row *, const mwl_hl7_src *, const mwl_hl7_seg *, mwl_ds *,
                       mwl_hl7_presence *);

static conv_fn conv_for(mwl_hl7_conv conv)
{
    switch (conv) {
    case MWL_HL7_CONV_ST: return conv_st;
    case MWL_HL7_CONV_XPN: return conv_xpn;
    case MWL_HL7_CONV_XCN:
    case MWL_HL7_CONV_CNN: return conv_xcn;
    case MWL_HL7_CONV_DA:
    case MWL_HL7_CONV_TS: return conv_ts;
    case MWL_HL7_CONV_CE_TEXT: return conv_ce_text;
    case MWL_HL7_CONV_CE_SEQ: return conv_ce_seq;
    case MWL_HL7_CONV_EI:
    case MWL_HL7_CONV_CX: return conv_ei;
    case MWL_HL7_CONV_JOIN: return conv_join;
    case MWL_HL7_CONV_PRIORITY: return conv_priority;
    case MWL_HL7_CONV_SEX: return conv_sex;
    case MWL_HL7_CONV_MODALITY: return conv_modality;
    case MWL_HL7_CONV_PREGNANCY: return conv_pregnancy;
    case MWL_HL7_CONV_NTE: return conv_nte;
    case MWL_HL7_CONV_AL1: return conv_al1;
    case MWL_HL7_CONV_SPECIAL: break;
    }
    return NULL;
}

/* Only what mwl_store_patient_update accepts goes into ADT demographics. */
static bool is_demographic(const mwl_hl7_map_row *row)
{
    if (row->level != MWL_HL7_LEVEL_PATIENT || row->conv == MWL_HL7_CONV_SPECIAL)
        return false;
    return MWL_TAG_GROUP(row->tag) == 0x0010 || row->tag == MWL_TAG_PatientState;
}

/* Walks the table into top (patient, request) and sps (may be NULL). For
 * each row the first source sent wins; "" clears (except in CREATE). */
static int map_rows(map_ctx *c, mwl_ds *top, mwl_ds *sps, bool demographics)
{
    for (size_t i = 0; i < mwl_hl7_map_row_count; i++) {
        const mwl_hl7_map_row *row = &mwl_hl7_map_rows[i];
        conv_fn fn = conv_for((mwl_hl7_conv)row->conv);
        if (!fn || (demographics && !is_demographic(row)))
            continue;
        mwl_ds *ds = row->level == MWL_HL7_LEVEL_SPS ? sps : top;
        if (!ds)
            continue;
        const mwl_hl7_src *alts = c->omi ? row->omi : row->orm;
        mwl_hl7_presence p = MWL_HL7_ABSENT;
        for (size_t a = 0; a < MWL_HL7_ALTS && alts[a].seg[0] && p == MWL_HL7_ABSENT; a++) {
            int rc = fn(c, row, &alts[a], seg_for(c, alts[a].seg), ds, &p);
            if (rc != MWL_OK)
                return rc;
        }
        if (p == MWL_HL7_NULL && !c->create) {
            int rc = put_null(ds, row->tag);
            if (rc == MWL_OK && row->tag2)
                rc = put_null(ds, row->tag2);
            if (rc != MWL_OK)
                return rc;
        }
    }
    return MWL_OK;
}

/* ======================================================================
 * Identity: patient, Study Instance UID
 * ====================================================================== */

typedef struct patient_ref {
    const char *id, *issuer, *uid, *uid_type;
    unsigned rep; /* 0 = none */
} patient_ref;

/* PID-3 (or MRG-1): the repetition whose assigning authority (.4.1) is
 * the configured issuer, else the first with an ID. */
static void pick_patient(const map_ctx *c, const mwl_hl7_seg *s, unsigned field, patient_ref *out)
{
    memset(out, 0, sizeof *out);
    out->id = out->issuer = out->uid = out->uid_type = "";
    if (!s)
        return;
    const char *want = c->cfg->patient_issuer ? c->cfg->patient_issuer : "";
    unsigned reps = mwl_hl7_reps(c->m, s, field);
    for (unsigned r = 1; r <= reps; r++) {
        const char *id, *issuer;
        if (get(c, s, field, r, 1, 1, &id) != MWL_HL7_VALUE)
            continue;
        (void)get(c, s, field, r, 4, 1, &issuer);
        if (!out->rep || (want[0] && !strcmp(issuer, want) && strcmp(out->issuer, want))) {
            out->rep = r;
            out->id = id;
            out->issuer = issuer;
        }
    }
    if (!out->rep)
        return;
    (void)get(c, s, field, out->rep, 4, 2, &out->uid);
    (void)get(c, s, field, out->rep, 4, 3, &out->uid_type);
    if (!out->issuer[0])
        out->issuer = want;
}

/* Patient ID, Issuer (+ qualifiers) and the other PID-3 repetitions as
 * Other Patient IDs Sequence. */
static int map_patient_id(map_ctx *c, mwl_ds *top, const patient_ref *p)
{
    int rc = put_checked(c, top, MWL_TAG_PatientID, p->id, "PID", c->pid, 3, 1);
    if (rc == MWL_OK && p->issuer[0])
        rc = put_checked(c, top, MWL_TAG_IssuerOfPatientID, p->issuer, "PID", c->pid, 3, 4);
    if (rc == MWL_OK && p->uid[0]) {
        mwl_ds *q;
        rc = mwl_ds_add_item(top, MWL_TAG_IssuerOfPatientIDQualifiersSequence, &q);
        if (rc == MWL_OK)
            rc = put_checked(c, q, MWL_TAG_UniversalEntityID, p->uid, "PID", c->pid, 3, 4);
        if (rc == MWL_OK && p->uid_type[0])
            rc = put_checked(c, q, MWL_TAG_UniversalEntityIDType, p->uid_type, "PID", c->pid, 3, 4);
    }
    unsigned reps = mwl_hl7_reps(c->m, c->pid, 3);
    for (unsigned r = 1; rc == MWL_OK && r <= reps; r++) {
        const char *id, *issuer;
        if (r == p->rep || get(c, c->pid, 3, r, 1, 1, &id) != MWL_HL7_VALUE)
            continue;
        (void)get(c, c->pid, 3, r, 4, 1, &issuer);
        mwl_ds *o;
        rc = mwl_ds_add_item(top, MWL_TAG_OtherPatientIDsSequence, &o);
        if (rc == MWL_OK)
            rc = put_checked(c, o, MWL_TAG_PatientID, id, "PID", c->pid, 3, 1);
        if (rc == MWL_OK && issuer[0])
            rc = put_checked(c, o, MWL_TAG_IssuerOfPatientID, issuer, "PID", c->pid, 3, 4);
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(o, MWL_TAG_TypeOfPatientID, MWL_VR_CS, "TEXT");
    }
    return rc;
}

static bool uid_valid(const char *u)
{
    size_t n = strlen(u);
    if (!n || n > MWL_UID_MAX || u[0] == '.' || u[n - 1] == '.' || strstr(u, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (u[i] != '.' && (u[i] < '0' || u[i] > '9'))
            return false;
        /* no leading zero in a component (PS3.5 9.1) */
        if (u[i] == '0' && (i == 0 || u[i - 1] == '.') && i + 1 < n && u[i + 1] != '.')
            return false;
    }
    return true;
}

/* root + "." + the first 128 bits of SHA-256(identity) in decimal, cut to
 * fit 64 characters: the same order gives the same UID in every message
 * and after restarts. */
static int derive_uid(map_ctx *c, const char *identity, char out[MWL_UID_MAX + 1])
{
    const char *root = c->cfg->uid_root && c->cfg->uid_root[0] ? c->cfg->uid_root : "2.25";
    size_t rlen = strlen(root);
    if (!uid_valid(root) || rlen > MWL_UID_MAX - 11)
        return fail(c, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "", 0, 0, 0,
                    "hl7-uid-root '%.64s' is not a usable UID root", root);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(identity, strlen(identity), md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
        return fail(c, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "", 0, 0, 0, "SHA-256 unavailable");
    memcpy(out, root, rlen);
    out[rlen] = '.';
    (void)mwl_uid_put_decimal(out, MWL_UID_MAX + 1, rlen + 1, md); /* the first 128 bits */
    return MWL_OK;
}

/* The Study Instance UID of a step: ZDS-1.1 / IPC-3.1, or per policy. */
static int study_uid(map_ctx *c, const char *accession, const char **out)
{
    const char *v;
    const char *seg = c->omi ? "IPC" : "ZDS";
    const mwl_hl7_seg *s = c->omi ? c->ipc : c->zds;
    unsigned field = c->omi ? 3 : 1;
    if (get(c, s, field, 1, 1, 1, &v) == MWL_HL7_VALUE) {
        if (!uid_valid(v))
            return fail_at(c, MWL_HL7_ERR_DATA_TYPE, seg, s, field, 1,
                           "Study Instance UID is not a valid UID");
        *out = v;
        return MWL_OK;
    }
    /* a missing ZDS is reported at the number its OBR has */
    const mwl_hl7_seg *at = s ? s : c->obr;
    if (c->cfg->uid_policy == MWL_HL7_UID_REJECT)
        return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, seg, at, field, 0, "Study Instance UID missing");
    const mwl_hl7_msh *h = mwl_hl7_header(c->m);
    const char *placer, *filler, *kind, *id;
    if (get(c, c->orc, 2, 1, 1, 1, &placer) == MWL_HL7_VALUE)
        kind = "placer", id = placer;
    else if (get(c, c->orc, 3, 1, 1, 1, &filler) == MWL_HL7_VALUE)
        kind = "filler", id = filler;
    else if (accession[0])
        kind = "accession", id = accession;
    else
        return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, seg, at, field, 0,
                       "Study Instance UID missing and no order number to derive one from");
    size_t n = strlen(h->sending_facility) + strlen(kind) + strlen(id) + 32;
    char *identity = mwl_arena_alloc(c->arena, n);
    char *uid = mwl_arena_alloc(c->arena, MWL_UID_MAX + 1);
    if (!identity || !uid)
        return MWL_E_NOMEM;
    snprintf(identity, n, "mwl-hl7-study\n%s\n%s\n%s", h->sending_facility, kind, id);
    int rc = derive_uid(c, identity, uid);
    *out = uid;
    return rc;
}

/* ======================================================================
 * Orders
 * ====================================================================== */

/* ORC-1 and ORC-5 -> what happens (spec §5; docs/hl7.md). */
typedef enum order_kind { ORDER_IGNORE, ORDER_CREATE, ORDER_UPDATE, ORDER_STATUS } order_kind;

/* ORC-5 (table 0038) as an SPS status; NULL = no change. */
static const char *status_of(const char *orc5)
{
    static const char *const map[][2] = {{"SC", "SCHEDULED"},
                                         {"IP", "STARTED"},
                                         {"CM", "COMPLETED"},
                                         {"CA", "CANCELED"},
                                         {"DC", "DISCONTINUED"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(orc5, map[i][0]))
            return map[i][1];
    return NULL;
}

static int order_control(map_ctx *c, order_kind *kind, const char **status)
{
    /* responses and number assignments (table 0119): nothing to do */
    static const char *const ignored[] = {"OK", "UA", "CR", "UC", "DR", "UD", "NA", "SN", "HR", "OR",
                                          "RQ", "XR", "UH", "UM", "UR", "UX", "RR", "SR", "OE"};
    const char *ctl, *orc5;
    (void)get(c, c->orc, 5, 1, 1, 1, &orc5);
    if (get(c, c->orc, 1, 1, 1, 1, &ctl) != MWL_HL7_VALUE)
        return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, "ORC", c->orc, 1, 0, "order control missing");
    *status = NULL;
    if (!strcmp(ctl, "NW")) {
        *kind = ORDER_CREATE;
        *status = "SCHEDULED";
    } else if (!strcmp(ctl, "XO")) {
        *kind = ORDER_UPDATE;
        *status = status_of(orc5);
    } else if (!strcmp(ctl, "SC")) {
        *status = status_of(orc5);
        *kind = *status ? ORDER_STATUS : ORDER_IGNORE;
    } else if (!strcmp(ctl, "CA") || !strcmp(ctl, "OC")) {
        *kind = ORDER_STATUS;
        *status = "CANCELED";
    } else if (!strcmp(ctl, "DC") || !strcmp(ctl, "OD")) {
        *kind = ORDER_STATUS;
        *status = "DISCONTINUED";
    } else {
        for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
            if (!strcmp(ctl, ignored[i])) {
                *kind = ORDER_IGNORE;
                return MWL_OK;
            }
        char what[64];
        snprintf(what, sizeof what, "order control '%.8s' not supported", ctl);
        return fail_at(c, MWL_HL7_ERR_TABLE_VALUE, "ORC", c->orc, 1, 0, what);
    }
    return MWL_OK;
}

/* An ORC (with its TQ1), an OBR, what follows the OBR (NTE, ZDS) and its
 * IPC segments. */
typedef struct order_group {
    const mwl_hl7_seg *orc, *tq1, *obr, *zds;
    size_t obr_index;
    size_t ipc_first, ipc_count; /* into the ipcs array */
} order_group;

typedef struct plan_builder {
    mwl_hl7_step *steps;
    size_t count, cap;
} plan_builder;

static int push_step(map_ctx *c, plan_builder *b, const mwl_hl7_step *st)
{
    /* Pairs (or IPCs) with one SPS ID are one step: their protocol codes
     * add up (dcm4chee #2132). */
    for (size_t i = 0; i < b->count; i++) {
        mwl_hl7_step *o = &b->steps[i];
        if (o->op != st->op || strcmp(o->study_uid, st->study_uid) || strcmp(o->sps_id, st->sps_id))
            continue;
        const mwl_elem *seq = mwl_ds_find(st->item, MWL_TAG_ScheduledProcedureStepSequence);
        const mwl_elem *oseq = mwl_ds_find(o->item, MWL_TAG_ScheduledProcedureStepSequence);
        if (!seq || !oseq || !seq->item_count || !oseq->item_count)
            return MWL_OK;
        const mwl_elem *codes = mwl_ds_find(seq->items[0], MWL_TAG_ScheduledProtocolCodeSequence);
        for (size_t k = 0; codes && k < codes->item_count; k++) {
            mwl_ds *item;
            int rc = mwl_ds_add_item(oseq->items[0], MWL_TAG_ScheduledProtocolCodeSequence, &item);
            for (size_t e = 0; rc == MWL_OK && e < mwl_ds_count(codes->items[k]); e++)
                rc = mwl_ds_copy_elem(item, mwl_ds_at(codes->items[k], e));
            if (rc != MWL_OK)
                return rc;
        }
        return MWL_OK;
    }
    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        mwl_hl7_step *n = mwl_arena_realloc(c->arena, b->steps, b->cap * sizeof *n, cap * sizeof *n);
        if (!n)
            return MWL_E_NOMEM;
        b->steps = n;
        b->cap = cap;
    }
    b->steps[b->count++] = *st;
    return MWL_OK;
}

static const char *elem_text(map_ctx *c, const mwl_ds *ds, uint32_t tag)
{
    const mwl_elem *e = ds ? mwl_ds_find(ds, tag) : NULL;
    const char *v;
    size_t len;
    if (!e || mwl_elem_get_str(e, 0, &v, &len) != MWL_OK)
        return "";
    const char *copy = mwl_arena_strndup(c->arena, v, len);
    return copy ? copy : "";
}

/* Scheduled Station AE Title and Name: IPC-9 / IPC-7 (repeated in
 * practice, dcm4chee #1435: multi-valued), else ORC-18 when configured,
 * else the first station rule matching modality and location. */
static int map_station(map_ctx *c, mwl_ds *sps, bool modality_sent)
{
    static const struct {
        uint32_t tag;
        unsigned field;
    } ipc_fields[] = {{MWL_TAG_ScheduledStationAETitle, 9}, {MWL_TAG_ScheduledStationName, 7}};
    for (size_t f = 0; c->omi && f < 2; f++) {
        mwl_hl7_presence p = field_presence(c, c->ipc, ipc_fields[f].field);
        if (p == MWL_HL7_NULL && !c->create) {
            int rc = put_null(sps, ipc_fields[f].tag);
            if (rc != MWL_OK)
                return rc;
        }
        if (p != MWL_HL7_VALUE)
            continue;
        text t = {.len = 0};
        t.buf[0] = '\0';
        unsigned reps = mwl_hl7_reps(c->m, c->ipc, ipc_fields[f].field);
        mwl_vr vr = mwl_dict_vr(ipc_fields[f].tag);
        for (unsigned r = 1; r <= reps; r++) {
            const char *v, *why;
            if (get(c, c->ipc, ipc_fields[f].field, r, 1, 1, &v) != MWL_HL7_VALUE)
                continue;
            if (!value_fits(vr, v, &why))
                return fail_at(c, MWL_HL7_ERR_DATA_TYPE, "IPC", c->ipc, ipc_fields[f].field, 0, why);
            if (t.len)
                text_add(&t, "\\");
            text_add(&t, v);
        }
        if (t.len) {
            note_ascii(c, t.buf);
            int rc = mwl_ds_set_str(sps, ipc_fields[f].tag, vr, t.buf);
            if (rc != MWL_OK)
                return rc;
        }
    }
    if (!mwl_ds_find(sps, MWL_TAG_ScheduledStationAETitle) && c->cfg->station_aet_from_orc18) {
        const char *v;
        if (get(c, c->orc, 18, 1, 1, 1, &v) == MWL_HL7_VALUE) {
            int rc = put_checked(c, sps, MWL_TAG_ScheduledStationAETitle, v, "ORC", c->orc, 18, 1);
            if (rc != MWL_OK)
                return rc;
        }
    }
    if (mwl_ds_find(sps, MWL_TAG_ScheduledStationAETitle) || (!c->create && !modality_sent))
        return MWL_OK;
    const char *modality = elem_text(c, sps, MWL_TAG_Modality);
    const char *point_of_care, *location;
    (void)get(c, c->pv1, 3, 1, 1, 1, &point_of_care);
    (void)get(c, c->ipc, 8, 1, 1, 1, &location);
    for (size_t i = 0; i < c->cfg->station_count; i++) {
        const mwl_hl7_station_rule *r = &c->cfg->stations[i];
        if (strcmp(r->modality, "*") && strcmp(r->modality, modality))
            continue;
        if (r->location[0] && strcmp(r->location, point_of_care) && strcmp(r->location, location))
            continue;
        int rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationAETitle, MWL_VR_AE, r->aet);
        if (rc == MWL_OK && r->station_name[0] && !mwl_ds_find(sps, MWL_TAG_ScheduledStationName))
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledStationName, MWL_VR_SH, r->station_name);
        return rc;
    }
    return MWL_OK;
}

/* hl7-default rows fill what the message left absent or empty. The
 * station's defaults wait for the rules (second pass). */
static int apply_defaults(map_ctx *c, mwl_ds *top, mwl_ds *sps, bool station)
{
    for (size_t i = 0; i < c->cfg->default_count; i++) {
        const mwl_hl7_default *d = &c->cfg->defaults[i];
        const mwl_dict_entry *e = mwl_dict_find_keyword(d->keyword);
        if (!e || !mwl_hl7_default_allowed(e->tag))
            continue;
        bool is_station = e->tag == MWL_TAG_ScheduledStationAETitle || e->tag == MWL_TAG_ScheduledStationName;
        if (is_station != station)
            continue;
        const mwl_hl7_map_row *row = mwl_hl7_map_row_find(e->tag);
        mwl_ds *ds = row->level == MWL_HL7_LEVEL_SPS ? sps : top;
        const mwl_elem *have = mwl_ds_find(ds, e->tag);
        if (have && have->length)
            continue;
        note_ascii(c, d->value);
        int rc = mwl_ds_set_str(ds, e->tag, MWL_VR_NONE, d->value);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

/* The identity of a step: accession, Requested Procedure ID, SPS ID (or
 * the first of RP ID and accession when the RIS sends none, one SPS per
 * Requested Procedure), Study UID. */
typedef struct step_id {
    const char *accession, *rpid, *sps_id, *study_uid;
} step_id;

static int step_identity(map_ctx *c, step_id *id)
{
    const mwl_hl7_seg *s = c->omi ? c->ipc : c->obr;
    const char *seg = c->omi ? "IPC" : "OBR";
    unsigned f_acc = c->omi ? 1 : 18, f_rp = c->omi ? 2 : 19, f_sps = c->omi ? 4 : 20;
    (void)get(c, s, f_acc, 1, 1, 1, &id->accession);
    (void)get(c, s, f_rp, 1, 1, 1, &id->rpid);
    (void)get(c, s, f_sps, 1, 1, 1, &id->sps_id);
    if (!id->sps_id[0])
        id->sps_id = id->rpid[0] ? id->rpid : id->accession;
    if (!id->sps_id[0])
        return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, seg, s, f_sps, 0,
                       "SPS ID missing (and no Requested Procedure ID or accession to use)");
    const char *why;
    if (!value_fits(MWL_VR_SH, id->sps_id, &why))
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, seg, s, f_sps, 0, why);
    return study_uid(c, id->accession, &id->study_uid);
}

static int build_step(map_ctx *c, order_kind kind, const char *status, plan_builder *b)
{
    mwl_hl7_step st;
    memset(&st, 0, sizeof st);
    st.op = kind == ORDER_CREATE   ? MWL_HL7_STEP_CREATE
            : kind == ORDER_UPDATE ? MWL_HL7_STEP_UPDATE
                                   : MWL_HL7_STEP_STATUS;
    st.status = status;
    st.segment_seq = mwl_hl7_seg_seq(c->omi ? c->ipc : c->obr);
    c->create = kind == ORDER_CREATE;
    c->non_ascii = false;
    step_id id;
    int rc = step_identity(c, &id);
    if (rc != MWL_OK)
        return rc;
    mwl_ds *top, *sps;
    rc = mwl_ds_new(c->arena, NULL, &top);
    if (rc == MWL_OK)
        rc = mwl_ds_add_item(top, MWL_TAG_ScheduledProcedureStepSequence, &sps);
    if (rc != MWL_OK)
        return rc;
    if (kind == ORDER_STATUS) {
        if (id.accession[0])
            rc = put_checked(c, top, MWL_TAG_AccessionNumber, id.accession, c->omi ? "IPC" : "OBR",
                             c->omi ? c->ipc : c->obr, c->omi ? 1 : 18, 0);
        if (rc == MWL_OK && id.rpid[0])
            rc = put_checked(c, top, MWL_TAG_RequestedProcedureID, id.rpid, c->omi ? "IPC" : "OBR",
                             c->omi ? c->ipc : c->obr, c->omi ? 2 : 19, 0);
    } else {
        rc = map_rows(c, top, sps, false);
        patient_ref p;
        pick_patient(c, c->pid, 3, &p);
        if (rc == MWL_OK && p.rep)
            rc = map_patient_id(c, top, &p);
        else if (rc == MWL_OK && c->create)
            return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, "PID", c->pid, 3, 0, "Patient ID missing");
        const mwl_elem *mod = mwl_ds_find(sps, MWL_TAG_Modality);
        if (rc == MWL_OK && c->create)
            rc = apply_defaults(c, top, sps, false);
        if (rc == MWL_OK)
            rc = map_station(c, sps, mod && mod->length);
        if (rc == MWL_OK && c->create)
            rc = apply_defaults(c, top, sps, true);
        if (rc == MWL_OK && c->create && !mwl_ds_find(sps, MWL_TAG_Modality))
            return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, c->omi ? "IPC" : "OBR", c->omi ? c->ipc : c->obr,
                           c->omi ? 5 : 24, 0, "Modality missing");
        if (rc == MWL_OK && status)
            rc = mwl_ds_set_str(sps, MWL_TAG_ScheduledProcedureStepStatus, MWL_VR_CS, status);
    }
    /* the identity as resolved, whatever the rows said ("" never clears it) */
    if (rc == MWL_OK)
        rc = mwl_ds_set_str(top, MWL_TAG_StudyInstanceUID, MWL_VR_UI, id.study_uid);
    if (rc == MWL_OK)
        rc = put_checked(c, sps, MWL_TAG_ScheduledProcedureStepID, id.sps_id, c->omi ? "IPC" : "OBR",
                         c->omi ? c->ipc : c->obr, c->omi ? 4 : 20, 0);
    if (rc == MWL_OK && c->non_ascii)
        rc = mwl_ds_set_str(top, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192");
    if (rc != MWL_OK)
        return rc;
    st.item = top;
    st.study_uid = id.study_uid;
    st.accession = id.accession;
    st.requested_procedure_id = id.rpid;
    st.sps_id = id.sps_id;
    return push_step(c, b, &st);
}

/* Splits the message into order groups: ORC [TQ1] OBR [NTE] [ZDS] [IPC...];
 * an OBR without its own ORC shares the previous one; an ORC without OBR
 * is a group of its own (obr NULL), acceptable only for a code we ignore. */
static int order_groups(map_ctx *c, order_group **out, size_t *count, const mwl_hl7_seg ***ipcs)
{
    size_t n = mwl_hl7_segment_count(c->m), ng = 0, ni = 0;
    order_group *g = mwl_arena_calloc(c->arena, (n + 1) * sizeof *g);
    const mwl_hl7_seg **ipc = mwl_arena_calloc(c->arena, (n + 1) * sizeof *ipc);
    if (!g || !ipc)
        return MWL_E_NOMEM;
    const mwl_hl7_seg *orc = NULL, *tq1 = NULL;
    bool orc_used = true;
    for (size_t i = 1; i < n; i++) {
        const mwl_hl7_seg *s = mwl_hl7_segment_at(c->m, i);
        const char *name = mwl_hl7_seg_name(s);
        if (!strcmp(name, "ORC")) {
            if (!orc_used) /* an ORC alone: fine for a response code (map_order decides) */
                g[ng++] = (order_group){.orc = orc, .tq1 = tq1, .ipc_first = ni};
            orc = s;
            tq1 = NULL;
            orc_used = false;
        } else if (!strcmp(name, "TQ1")) {
            if (!tq1)
                tq1 = s;
        } else if (!strcmp(name, "OBR")) {
            if (!orc)
                return fail_at(c, MWL_HL7_ERR_SEGMENT_SEQUENCE, "OBR", s, 0, 0, "OBR without ORC");
            g[ng].orc = orc;
            g[ng].tq1 = tq1;
            g[ng].obr = s;
            g[ng].obr_index = i;
            g[ng].ipc_first = ni;
            ng++;
            orc_used = true;
        } else if (ng && !strcmp(name, "ZDS")) {
            if (!g[ng - 1].zds)
                g[ng - 1].zds = s;
        } else if (ng && !strcmp(name, "IPC")) {
            ipc[ni++] = s;
            g[ng - 1].ipc_count++;
        }
    }
    if (!orc_used)
        g[ng++] = (order_group){.orc = orc, .tq1 = tq1, .ipc_first = ni};
    if (!ng)
        return fail(c, MWL_HL7_AE, MWL_HL7_ERR_SEGMENT_SEQUENCE, "ORC", 1, 0, 0, "no ORC/OBR order group");
    *out = g;
    *count = ng;
    *ipcs = ipc;
    return MWL_OK;
}

static int map_order(map_ctx *c, mwl_hl7_plan *plan, const char *type)
{
    order_group *groups = NULL;
    size_t ng = 0;
    const mwl_hl7_seg **ipcs = NULL;
    int rc = order_groups(c, &groups, &ng, &ipcs);
    if (rc != MWL_OK)
        return rc;
    plan_builder b = {NULL, 0, 0};
    const char *first_ctl = "";
    for (size_t gi = 0; gi < ng; gi++) {
        order_group *g = &groups[gi];
        c->orc = g->orc;
        c->tq1 = g->tq1;
        c->obr = g->obr;
        c->obr_index = g->obr_index;
        c->zds = g->zds;
        c->ipc = NULL;
        order_kind kind;
        const char *status;
        rc = order_control(c, &kind, &status);
        if (rc != MWL_OK)
            return rc;
        if (!first_ctl[0])
            (void)get(c, c->orc, 1, 1, 1, 1, &first_ctl);
        if (kind == ORDER_IGNORE)
            continue;
        if (!g->obr)
            return fail_at(c, MWL_HL7_ERR_SEGMENT_SEQUENCE, "ORC", g->orc, 0, 0, "ORC without OBR");
        if (!c->omi) {
            rc = build_step(c, kind, status, &b);
        } else if (!g->ipc_count) {
            return fail(c, MWL_HL7_AE, MWL_HL7_ERR_REQUIRED_MISSING, "IPC", (unsigned)g->ipc_first + 1, 0, 0,
                        "OBR %u has no IPC segment", mwl_hl7_seg_seq(g->obr));
        }
        for (size_t k = 0; c->omi && rc == MWL_OK && k < g->ipc_count; k++) {
            c->ipc = ipcs[g->ipc_first + k];
            rc = build_step(c, kind, status, &b);
        }
        if (rc != MWL_OK)
            return rc;
    }
    plan->steps = b.steps;
    plan->step_count = b.count;
    plan->action = b.count ? MWL_HL7_ORDER : MWL_HL7_IGNORE;
    char buf[192];
    if (b.count)
        snprintf(buf, sizeof buf, "%s %s: %zu SPS of accession %s, study %s", type, first_ctl, b.count,
                 b.steps[0].accession[0] ? b.steps[0].accession : "(none)", b.steps[0].study_uid);
    else
        snprintf(buf, sizeof buf, "%s %s: nothing to change", type, first_ctl);
    plan->summary = mwl_arena_strndup(c->arena, buf, strlen(buf));
    return plan->summary ? MWL_OK : MWL_E_NOMEM;
}

/* ======================================================================
 * Patients (ADT)
 * ====================================================================== */

static int map_patient(map_ctx *c, mwl_hl7_plan *plan, const char *type, bool merge)
{
    patient_ref p, prior;
    pick_patient(c, c->pid, 3, &p);
    if (!p.rep)
        return fail_at(c, MWL_HL7_ERR_REQUIRED_MISSING, "PID", c->pid, 3, 0, "Patient ID missing");
    const char *why;
    if (!value_fits(MWL_VR_LO, p.id, &why) || !value_fits(MWL_VR_LO, p.issuer, &why))
        return fail_at(c, MWL_HL7_ERR_DATA_TYPE, "PID", c->pid, 3, 0, why);
    plan->patient_id = p.id;
    plan->issuer = p.issuer;
    if (merge) {
        const mwl_hl7_seg *mrg = mwl_hl7_find(c->m, "MRG", 0, NULL);
        pick_patient(c, mrg, 1, &prior);
        if (!prior.rep)
            return fail(c, MWL_HL7_AE, MWL_HL7_ERR_REQUIRED_MISSING, "MRG", 1, 1, 0,
                        "MRG-1: prior Patient ID missing");
        if (!value_fits(MWL_VR_LO, prior.id, &why) || !value_fits(MWL_VR_LO, prior.issuer, &why))
            return fail_at(c, MWL_HL7_ERR_DATA_TYPE, "MRG", mrg, 1, 0, why);
        plan->prior_id = prior.id;
        plan->prior_issuer = prior.issuer;
    }
    c->create = false;
    c->non_ascii = false;
    mwl_ds *demo;
    int rc = mwl_ds_new(c->arena, NULL, &demo);
    if (rc == MWL_OK)
        rc = map_rows(c, demo, NULL, true);
    if (rc == MWL_OK && c->non_ascii)
        rc = mwl_ds_set_str(demo, MWL_TAG_SpecificCharacterSet, MWL_VR_CS, "ISO_IR 192");
    if (rc != MWL_OK)
        return rc;
    plan->demographics = demo;
    plan->action = merge ? MWL_HL7_PATIENT_MERGE : MWL_HL7_PATIENT_UPDATE;
    char buf[192];
    if (merge)
        snprintf(buf, sizeof buf, "%s: patient %s (%s) merged into %s (%s)", type, prior.id, prior.issuer,
                 p.id, p.issuer);
    else
        snprintf(buf, sizeof buf, "%s: patient %s (%s), %zu demographic elements", type, p.id, p.issuer,
                 mwl_ds_count(demo));
    plan->summary = mwl_arena_strndup(c->arena, buf, strlen(buf));
    return plan->summary ? MWL_OK : MWL_E_NOMEM;
}

/* ======================================================================
 * Entry point
 * ====================================================================== */

static bool version_supported(const char *v)
{
    /* 2.3, 2.3.1, 2.4, 2.5, 2.5.1, 2.6, 2.7, 2.7.1, 2.8, 2.8.1, 2.8.2 */
    return v[0] == '2' && v[1] == '.' && v[2] >= '3' && v[2] <= '8' && (v[3] == '\0' || v[3] == '.');
}

int mwl_hl7_map(const mwl_hl7_msg *m, const mwl_hl7_map_config *cfg, mwl_arena *arena, mwl_hl7_plan *plan,
                mwl_hl7_error *err)
{
    mwl_hl7_map_config defaults;
    if (!cfg) {
        mwl_hl7_map_config_init(&defaults);
        cfg = &defaults;
    }
    memset(plan, 0, sizeof *plan);
    plan->summary = "";
    mwl_hl7_error_set(err, MWL_HL7_AA, 0, "", 0, 0, 0, "%s", "");
    map_ctx c = {.m = m, .cfg = cfg, .arena = arena, .err = err};
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    const char *type = h->message_type, *event = h->trigger_event;
    char what[32];
    snprintf(what, sizeof what, "%.3s^%.3s", type, event);

    if (!version_supported(h->version)) {
        fail(&c, MWL_HL7_AR, MWL_HL7_ERR_VERSION, "MSH", 1, 12, 0,
             "version '%.16s' not supported (2.3 to 2.8)", h->version);
        return MWL_E_INVALID;
    }
    /* T (training) and D (debugging) are accepted like P: a test feed
     * usually points at a test server, and refusing it helps nobody. */
    if (strcmp(h->processing_id, "P") && strcmp(h->processing_id, "T") && strcmp(h->processing_id, "D")) {
        fail(&c, MWL_HL7_AR, MWL_HL7_ERR_PROCESSING_ID, "MSH", 1, 11, 0, "processing ID '%.8s' not supported",
             h->processing_id);
        return MWL_E_INVALID;
    }
    static const struct {
        const char *type, *event;
        int kind; /* 0 order, 1 patient update, 2 merge */
        bool omi;
    } accepted[] = {{"ORM", "O01", 0, false}, {"OMG", "O19", 0, false}, {"OMI", "O23", 0, true},
                    {"ADT", "A01", 1, false}, {"ADT", "A04", 1, false}, {"ADT", "A05", 1, false},
                    {"ADT", "A08", 1, false}, {"ADT", "A31", 1, false}, {"ADT", "A40", 2, false}};
    bool type_known = false;
    int rc = MWL_E_INVALID;
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        if (strcmp(type, accepted[i].type))
            continue;
        type_known = true;
        if (strcmp(event, accepted[i].event))
            continue;
        c.omi = accepted[i].omi;
        c.pid = mwl_hl7_find(m, "PID", 0, NULL);
        c.pv1 = mwl_hl7_find(m, "PV1", 0, NULL);
        rc = accepted[i].kind == 0 ? map_order(&c, plan, what)
                                   : map_patient(&c, plan, what, accepted[i].kind == 2);
        if (rc != MWL_OK) {
            /* all steps or none */
            memset(plan, 0, sizeof *plan);
            plan->summary = "";
            if (rc == MWL_E_NOMEM)
                mwl_hl7_error_set(err, MWL_HL7_AR, MWL_HL7_ERR_INTERNAL, "", 0, 0, 0, "out of memory");
        }
        return rc;
    }
    if (type_known)
        fail(&c, MWL_HL7_AR, MWL_HL7_ERR_EVENT, "MSH", 1, 9, 2, "event %.3s of %.3s not supported", event,
             type);
    else
        fail(&c, MWL_HL7_AR, MWL_HL7_ERR_MESSAGE_TYPE, "MSH", 1, 9, 1, "message type '%.8s' not supported",
             type);
    return MWL_E_INVALID;
}

bool mwl_hl7_locate(const mwl_hl7_msg *m, uint32_t tag, char segment[4], unsigned *field)
{
    segment[0] = '\0';
    *field = 0;
    const mwl_hl7_map_row *row = mwl_hl7_map_row_find(tag);
    if (!row || !m)
        return false;
    const mwl_hl7_msh *h = mwl_hl7_header(m);
    const mwl_hl7_src *alts = h && strcmp(h->message_type, "OMI") == 0 ? row->omi : row->orm;
    /* The first source the message sent, as the mapping reads them; else
     * the first the table names. */
    for (size_t i = 0; i < MWL_HL7_ALTS && alts[i].seg[0]; i++) {
        const mwl_hl7_seg *s = mwl_hl7_find(m, alts[i].seg, 0, NULL);
        if (s && mwl_hl7_reps(m, s, alts[i].field) > 0) {
            memcpy(segment, alts[i].seg, 4);
            *field = alts[i].field;
            return true;
        }
    }
    if (!alts[0].seg[0])
        return false;
    memcpy(segment, alts[0].seg, 4);
    *field = alts[0].field;
    return true;
}
