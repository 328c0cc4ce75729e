/* Parsing a C-FIND identifier into a query (PS3.4 K.2.2, C.2.2.2): which
 * keys it has, which table row each is, and which matching each gets,
 * decided once so that matching an item is only comparisons.
 *
 * For every element of the identifier (and of the one item of each sequence
 * key) the keys table says whether the model has the key and which matching
 * types we support for it; the value says which type is asked for
 * (C.2.2.2: zero length = universal, '*'/'?' = wild card, '-' in DA/TM/DT =
 * range, '\' in UI = UID list, "" = empty value, else single value). */
#include <stdio.h>
#include <string.h>

#include "dicom/datetime.h"
#include "worklist/worklist_int.h"

typedef struct parse_ctx {
    mwl_query *q;
    mwl_arena *arena;
    mwl_wbuf text; /* a value decoded to UTF-8 */
    mwl_wbuf norm; /* a PN value normalised */
    mwl_diag *diag;
} parse_ctx;

/* Error Comment (0000,0902) is LO: keep messages under 64 characters. */
#define BAD(c, tag, ...) (mwl_diag_set((c)->diag, 0, (tag), __VA_ARGS__), MWL_E_MALFORMED)
#define TAGFMT "(%04X,%04X)"
#define TAGARG(t) (unsigned)MWL_TAG_GROUP(t), (unsigned)MWL_TAG_ELEMENT(t)

static void mark_unsupported(parse_ctx *c, mwl_qkey *k)
{
    k->unsupported = true;
    c->q->unsupported++;
}

/* ---- values -------------------------------------------------------------- */

static bool valid_uid(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return false;
    }
    return true;
}

/* One trimmed, non-empty value: its kind and, for DA/TM/DT, IS/DS, UI, its
 * parsed form. Invalid values are identifier errors (A900). */
static int parse_value(parse_ctx *c, uint32_t tag, mwl_vr vr, const char *v, size_t n, mwl_qvalue *qv)
{
    qv->kind = MWL_Q_SINGLE;
    /* C.2.2.2.4: on these VRs a '*' or '?' always means wild card matching
     * (there is no escape). */
    if (mwl_vr_allows_wildcard(vr) && (memchr(v, '*', n) || memchr(v, '?', n))) {
        qv->kind = MWL_Q_WILDCARD;
        return MWL_OK;
    }
    bool dash = memchr(v, '-', n) != NULL;
    switch (vr) {
    case MWL_VR_DA: {
        mwl_date_range r;
        if (mwl_date_range_parse(v, n, &r) != MWL_OK)
            return BAD(c, tag, TAGFMT " invalid date or date range", TAGARG(tag));
        qv->has_lo = r.has_lo;
        qv->has_hi = r.has_hi;
        qv->lo = r.has_lo ? mwl_date_key(&r.lo) : 0;
        qv->hi = r.has_hi ? mwl_date_key(&r.hi) : 0;
        break;
    }
    case MWL_VR_TM: {
        mwl_time_range r;
        if (mwl_time_range_parse(v, n, &r) != MWL_OK)
            return BAD(c, tag, TAGFMT " invalid time or time range", TAGARG(tag));
        qv->has_lo = r.has_lo;
        qv->has_hi = r.has_hi;
        /* A partial upper bound names a period: "10" ends at 10:59:59.999999. */
        qv->lo = r.has_lo ? mwl_time_key(&r.lo, false) : 0;
        qv->hi = r.has_hi ? mwl_time_key(&r.hi, true) : 0;
        break;
    }
    case MWL_VR_DT: {
        mwl_datetime_range r;
        if (mwl_datetime_range_parse(v, n, &r) != MWL_OK)
            return BAD(c, tag, TAGFMT " invalid date-time or range", TAGARG(tag));
        qv->has_lo = r.has_lo;
        qv->has_hi = r.has_hi;
        qv->lo = r.has_lo ? mwl_datetime_key(&r.lo, false) : 0;
        qv->hi = r.has_hi ? mwl_datetime_key(&r.hi, true) : 0;
        break;
    }
    case MWL_VR_UI:
        if (!valid_uid(v, n))
            return BAD(c, tag, TAGFMT " invalid UID in key", TAGARG(tag));
        return MWL_OK;
    case MWL_VR_IS:
    case MWL_VR_DS:
        if (!mwl_wl_parse_number(v, n, &qv->number))
            return BAD(c, tag, TAGFMT " invalid number", TAGARG(tag));
        return MWL_OK;
    default: return MWL_OK;
    }
    if (dash)
        qv->kind = MWL_Q_RANGE;
    /* C.2.2.2.5.1/3: for DA and DT "D1-D2" requires D1 <= D2. A TM range
     * whose start is after its end is judged once the level is parsed
     * (check_level): alone it would cross midnight, which C.2.2.2.5.2 does
     * not support, but as the time half of a combined SPS start date-time
     * range (C.2.2.2.5.4) "2300-0100" is the evening of the first date to
     * the night of the last. */
    if (vr != MWL_VR_TM && qv->has_lo && qv->has_hi && qv->lo > qv->hi)
        return BAD(c, tag, TAGFMT " range start after its end", TAGARG(tag));
    return MWL_OK;
}

static bool reversed_time(const mwl_qkey *k)
{
    if (k->vr != MWL_VR_TM || k->kind != MWL_Q_RANGE)
        return false;
    for (size_t i = 0; i < k->value_count; i++) {
        const mwl_qvalue *v = &k->values[i];
        if (v->kind == MWL_Q_RANGE && v->has_lo && v->has_hi && v->lo > v->hi)
            return true;
    }
    return false;
}

/* Reads the UTF-8 value `s` of key `k` (VR k->vr): sets k->kind and
 * k->values. */
static int parse_text(parse_ctx *c, mwl_qkey *k, const char *s, size_t len)
{
    mwl_vr vr = (mwl_vr)k->vr;
    const char *t = s;
    size_t tlen = len;
    mwl_str_trim(vr, &t, &tlen);
    k->value_count = 0;
    k->values = NULL;
    if (tlen == 0) {
        k->kind = MWL_Q_UNIVERSAL;
        return MWL_OK;
    }
    if (mwl_match_is_empty_key(t, tlen)) {
        k->kind = MWL_Q_EMPTY;
        return MWL_OK;
    }
    size_t n = 0, pos = 0;
    const char *v;
    size_t vlen;
    while (mwl_wl_next_value(vr, s, len, &pos, &v, &vlen))
        n++;
    mwl_qvalue *values = mwl_arena_calloc(c->arena, n * sizeof *values);
    if (!values)
        return MWL_E_NOMEM;
    size_t kept = 0;
    bool range = false, wildcard = false;
    pos = 0;
    while (mwl_wl_next_value(vr, s, len, &pos, &v, &vlen)) {
        /* An empty value in a list ("CT\") asks for nothing. */
        if (vlen == 0)
            continue;
        if (mwl_match_is_universal(vr, v, vlen)) {
            k->kind = MWL_Q_UNIVERSAL;
            return MWL_OK;
        }
        mwl_qvalue *qv = &values[kept];
        int rc = parse_value(c, k->tag, vr, v, vlen, qv);
        if (rc != MWL_OK)
            return rc;
        if (vr == MWL_VR_PN) {
            c->norm.len = 0;
            c->norm.status = MWL_OK;
            mwl_pn_normalize(v, vlen, &c->norm);
            if (c->norm.status != MWL_OK)
                return MWL_E_NOMEM;
            v = c->norm.len ? (const char *)c->norm.data : "";
            vlen = c->norm.len;
        }
        char *copy = mwl_arena_strndup(c->arena, v, vlen);
        if (!copy)
            return MWL_E_NOMEM;
        qv->text = copy;
        qv->len = vlen;
        range |= qv->kind == MWL_Q_RANGE;
        wildcard |= qv->kind == MWL_Q_WILDCARD;
        kept++;
    }
    if (kept == 0) {
        k->kind = MWL_Q_UNIVERSAL;
        return MWL_OK;
    }
    k->values = values;
    k->value_count = kept;
    if (vr == MWL_VR_UI && kept > 1)
        k->kind = MWL_Q_UID_LIST;
    else if (range)
        k->kind = MWL_Q_RANGE;
    else if (wildcard)
        k->kind = MWL_Q_WILDCARD;
    else
        k->kind = MWL_Q_SINGLE;
    return MWL_OK;
}

/* Matching types the key's values ask for (MWL_MATCH_* bits). Several
 * values on a non-UI key (CP-282 leaves them undefined) are taken as "any
 * of", each value needing its own type. */
static unsigned needed_matching(const mwl_qkey *k)
{
    if (k->kind == MWL_Q_UID_LIST)
        return MWL_MATCH_UID_LIST;
    unsigned need = 0;
    for (size_t i = 0; i < k->value_count; i++) {
        switch ((mwl_qkind)k->values[i].kind) {
        case MWL_Q_WILDCARD: need |= MWL_MATCH_WILDCARD; break;
        case MWL_Q_RANGE: need |= MWL_MATCH_RANGE; break;
        default: need |= MWL_MATCH_SINGLE; break;
        }
    }
    return need;
}

/* Whether `v` (a US value as two little-endian bytes, or a trimmed string)
 * is one of the '\'-separated values of `list` (decimal for US). */
static bool in_enumeration(const char *list, mwl_vr vr, const char *v, size_t len)
{
    char num[8];
    if (vr == MWL_VR_US) {
        if (len != 2)
            return false;
        unsigned n = (unsigned)(uint8_t)v[0] | (unsigned)(uint8_t)v[1] << 8;
        snprintf(num, sizeof num, "%u", n);
        v = num;
        len = strlen(num);
    }
    for (const char *p = list;;) {
        const char *end = strchr(p, '\\');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, v, len) == 0)
            return true;
        if (!end)
            return false;
        p = end + 1;
    }
}

/* False when a single value of `k` lies outside its key's Enumerated
 * Values (wild cards are not checked: they only ever match stored values). */
static bool values_enumerated(const mwl_qkey *k)
{
    const char *list = k->key ? k->key->enumerated : NULL;
    if (!list)
        return true;
    for (size_t i = 0; i < k->value_count; i++) {
        const mwl_qvalue *v = &k->values[i];
        if (v->kind == MWL_Q_SINGLE && !in_enumeration(list, (mwl_vr)k->vr, v->text, v->len))
            return false;
    }
    return true;
}

/* Binary VRs (US, FD, AT, OB ...): single values compared as stored bytes. */
static int parse_binary(parse_ctx *c, mwl_qkey *k, const mwl_elem *e)
{
    const mwl_vr_info *info = mwl_vr_get_info((mwl_vr)k->vr);
    size_t unit = info->kind == MWL_VR_KIND_NUMBER ? info->max_len : e->length;
    if (unit == 0 || e->length % unit != 0)
        return BAD(c, e->tag, TAGFMT " length %u invalid for %s", TAGARG(e->tag), (unsigned)e->length,
                   info->code);
    size_t n = e->length / unit;
    mwl_qvalue *values = mwl_arena_calloc(c->arena, n * sizeof *values);
    if (!values)
        return MWL_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        values[i].kind = MWL_Q_SINGLE;
        values[i].text = (const char *)e->value + i * unit;
        values[i].len = unit;
    }
    k->values = values;
    k->value_count = n;
    k->kind = MWL_Q_SINGLE;
    return MWL_OK;
}

/* ---- keys and levels ----------------------------------------------------- */

static bool is_active(const mwl_qkey *k)
{
    return k->kind != MWL_Q_UNIVERSAL && k->kind != MWL_Q_IGNORED;
}

static bool any_active(const mwl_qkey *keys, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (is_active(&keys[i]))
            return true;
    }
    return false;
}

/* Index of the key `tag` in a level, or `count` when it has none. */
static size_t level_index(const mwl_qkey *keys, size_t count, uint32_t tag)
{
    size_t i = 0;
    while (i < count && keys[i].tag != tag)
        i++;
    return i;
}

static bool single_range(const mwl_qkey *k)
{
    return k->kind == MWL_Q_RANGE && k->value_count == 1 && k->values[0].kind == MWL_Q_RANGE;
}

/* C.2.2.2.5.4 with the Table K.6-1 remark: when a DA key and its paired TM
 * key are both ranges they form one date-time range ("20060705-20060707" +
 * "1000-1800" = 5 July 10:00 to 7 July 18:00). If only one is a range, each
 * is matched alone. Idempotent, so mwl_query_constrain can run it again. */
static void pair_level(mwl_qkey *keys, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        keys[i].paired = false;
        if (keys[i].kind == MWL_Q_DATETIME)
            keys[i].kind = MWL_Q_RANGE;
    }
    for (size_t i = 0; i < count; i++) {
        mwl_qkey *d = &keys[i];
        if (!d->key || d->key->pair < 0 || !single_range(d))
            continue;
        size_t ti = level_index(keys, count, mwl_wlkeys[d->key->pair].tag);
        if (ti == count || !single_range(&keys[ti]))
            continue;
        mwl_qkey *t = &keys[ti];
        const mwl_qvalue *dv = &d->values[0], *tv = &t->values[0];
        d->dt_has_lo = dv->has_lo;
        d->dt_has_hi = dv->has_hi;
        /* An open time end on a closed date end means the whole day. */
        d->dt_lo = dv->has_lo ? mwl_wl_datetime_key((int32_t)dv->lo, tv->has_lo ? tv->lo : 0) : 0;
        d->dt_hi =
            dv->has_hi ? mwl_wl_datetime_key((int32_t)dv->hi, tv->has_hi ? tv->hi : MWL_WL_DAY_SPAN - 1) : 0;
        d->kind = MWL_Q_DATETIME;
        t->paired = true;
    }
}

/* The range checks that need the whole level (run after pair_level): a TM
 * range whose start is after its end is valid only as the time half of a
 * combined date-time range (C.2.2.2.5.4), and then the combined range must
 * not end before it starts ("20260101-20260101" with "2300-0100" would be
 * 1 January 23:00 to 1 January 01:00). Alone it crosses midnight
 * (C.2.2.2.5.2). MWL_OK or MWL_E_MALFORMED naming the time key. */
static int check_level(const mwl_qkey *keys, size_t count, mwl_diag *diag)
{
    for (size_t i = 0; i < count; i++) {
        const mwl_qkey *k = &keys[i];
        if (k->kind == MWL_Q_DATETIME && k->dt_has_lo && k->dt_has_hi && k->dt_lo > k->dt_hi) {
            uint32_t t = mwl_wlkeys[k->key->pair].tag;
            mwl_diag_set(diag, 0, t, TAGFMT " date-time range ends before it starts", TAGARG(t));
            return MWL_E_MALFORMED;
        }
        if (!k->paired && reversed_time(k)) {
            mwl_diag_set(diag, 0, k->tag, TAGFMT " time range crosses midnight", TAGARG(k->tag));
            return MWL_E_MALFORMED;
        }
    }
    return MWL_OK;
}

static int parse_level(parse_ctx *c, const mwl_ds *ds, const mwl_wlkey *parent, bool matchable,
                       const mwl_charset *cs, mwl_qkey **out, size_t *out_count);

/* An item that holds no key at all ((0008,0005) aside). */
static bool item_is_empty(const mwl_ds *item)
{
    size_t n = mwl_ds_count(item);
    return n == 0 || (n == 1 && mwl_ds_at(item, 0)->tag == MWL_TAG_SpecificCharacterSet);
}

static int parse_sequence(parse_ctx *c, mwl_qkey *k, const mwl_elem *e, bool matchable, const mwl_charset *cs)
{
    /* C.2.2.2.6: a sequence key holds a single item. */
    if (e->item_count > 1)
        return BAD(c, e->tag, TAGFMT " sequence key has %zu items, not 1", TAGARG(e->tag), e->item_count);
    /* K.2.2.1.2 note 4: a zero-length sequence or one empty item asks for
     * the whole sequence (universal matching). */
    if (e->item_count == 0 || item_is_empty(e->items[0])) {
        k->all_children = true;
        k->kind = MWL_Q_UNIVERSAL;
        return MWL_OK;
    }
    mwl_charset item_cs;
    int rc = mwl_wl_charset(e->items[0], cs, &item_cs, c->diag);
    if (rc != MWL_OK)
        return rc;
    bool inner = matchable && (k->key->matching & MWL_MATCH_SEQUENCE) != 0;
    rc = parse_level(c, e->items[0], k->key, inner, &item_cs, &k->children, &k->child_count);
    if (rc != MWL_OK)
        return rc;
    k->kind = any_active(k->children, k->child_count) ? MWL_Q_SEQUENCE : MWL_Q_UNIVERSAL;
    return MWL_OK;
}

/* Whether a string value is blank (zero length once trimmed) without
 * decoding it: spaces and NULs are the same bytes in every character set. */
static bool raw_is_blank(const mwl_elem *e)
{
    for (uint32_t i = 0; i < e->length; i++) {
        if (e->value[i] != ' ' && e->value[i] != '\0')
            return false;
    }
    return true;
}

static int parse_key(parse_ctx *c, mwl_qkey *k, const mwl_elem *e, bool matchable, const mwl_charset *cs)
{
    const mwl_wlkey *key = k->key;
    if (!key) {
        /* Not in our model: neither matched nor known (K.2.2.1.1.2); it is
         * returned only if an item happens to have it, and costs FF01. */
        k->vr = (uint8_t)e->vr;
        k->kind = MWL_Q_IGNORED;
        mark_unsupported(c, k);
        return MWL_OK;
    }
    /* Explicit VR identifiers carry a VR; it must be the model's. UN is
     * what an SCU without the key in its dictionary sends: its bytes are
     * read with the model's VR. */
    if (e->vr != key->vr && !(e->vr == MWL_VR_UN && key->vr != MWL_VR_SQ))
        return BAD(c, e->tag, TAGFMT " has VR %s, expected %s", TAGARG(e->tag), mwl_vr_code(e->vr),
                   mwl_vr_code((mwl_vr)key->vr));
    k->vr = key->vr;
    if (key->vr == MWL_VR_SQ)
        return parse_sequence(c, k, e, matchable, cs);
    const mwl_vr_info *info = mwl_vr_get_info((mwl_vr)key->vr);
    bool text = info->kind == MWL_VR_KIND_STRING || info->kind == MWL_VR_KIND_TEXT;
    if (e->length == 0 || (text && raw_is_blank(e))) {
        k->kind = MWL_Q_UNIVERSAL;
        return MWL_OK;
    }
    if (!matchable || (key->matching & ~MWL_MATCH_UNIVERSAL) == 0) {
        /* A value on a key that is not a matching key (Table K.6-1 "-", or
         * inside a sequence we only match universally) is ignored for
         * matching; the SCU learns it through FF01. */
        k->kind = MWL_Q_IGNORED;
        mark_unsupported(c, k);
        return MWL_OK;
    }
    int rc;
    if (text) {
        const char *s;
        size_t len;
        rc = mwl_wl_text(cs, (mwl_vr)k->vr, e->value, e->length, &c->text, &s, &len, c->diag);
        if (rc == MWL_E_CHARSET) {
            mwl_diag_set(c->diag, 0, e->tag, TAGFMT " bytes invalid in the character set", TAGARG(e->tag));
            return rc;
        }
        if (rc != MWL_OK)
            return rc;
        rc = parse_text(c, k, s, len);
    } else {
        rc = parse_binary(c, k, e);
    }
    if (rc != MWL_OK || !is_active(k) || k->kind == MWL_Q_EMPTY)
        return rc;
    unsigned need = needed_matching(k);
    if (need & ~(unsigned)key->matching) {
        /* K.2.2.1.1.2: an optional key whose matching we do not support is
         * ignored for matching (and still returned); a required key must be
         * supported, so asking one for something else is an error. */
        if (key->key_type == MWL_WLKEY_R)
            return BAD(c, e->tag, TAGFMT " matching type not supported", TAGARG(e->tag));
        k->kind = MWL_Q_IGNORED;
        mark_unsupported(c, k);
        return MWL_OK;
    }
    if (!values_enumerated(k)) {
        /* A value outside the attribute's Enumerated Values (PS3.3) can
         * match no conformant item, and is what some SCUs send for "no
         * value" where they cannot send zero length (dcmjs-dimse's worklist
         * request has Pregnancy Status 0). Matching on it would return
         * nothing, so it is treated as a matching we do not support:
         * ignored with FF01 on an optional key, A900 on a required one. */
        if (key->key_type == MWL_WLKEY_R)
            return BAD(c, e->tag, TAGFMT " value outside its enumerated values", TAGARG(e->tag));
        k->kind = MWL_Q_IGNORED;
        mark_unsupported(c, k);
    }
    return MWL_OK;
}

static int parse_level(parse_ctx *c, const mwl_ds *ds, const mwl_wlkey *parent, bool matchable,
                       const mwl_charset *cs, mwl_qkey **out, size_t *out_count)
{
    size_t n = mwl_ds_count(ds);
    mwl_qkey *keys = mwl_arena_calloc(c->arena, (n ? n : 1) * sizeof *keys);
    if (!keys)
        return MWL_E_NOMEM;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        const mwl_wlkey *key = mwl_wlkey_find(parent, e->tag);
        /* (0008,0005) was applied when decoding, at whatever level it sits
         * (an item may carry its own, PS3.5 6.1.2.3); it is never a key
         * (K.2.2.2). (0008,0052) is not part of the MWL identifier and is
         * dropped without complaint. */
        if (e->tag == MWL_TAG_SpecificCharacterSet ||
            (key && (key->flags & (MWL_WLKEY_CHARSET | MWL_WLKEY_IGNORE))))
            continue;
        mwl_qkey *k = &keys[count++];
        k->tag = e->tag;
        k->elem = e;
        k->key = key;
        k->returned = true;
        int rc = parse_key(c, k, e, matchable, cs);
        if (rc != MWL_OK)
            return rc;
    }
    pair_level(keys, count);
    int rc = check_level(keys, count, c->diag);
    if (rc != MWL_OK)
        return rc;
    *out = keys;
    *out_count = count;
    return MWL_OK;
}

static void ctx_init(parse_ctx *c, mwl_query *q, mwl_arena *arena, mwl_diag *diag)
{
    c->q = q;
    c->arena = arena;
    c->diag = diag;
    mwl_wbuf_init(&c->text, arena->mem);
    mwl_wbuf_init(&c->norm, arena->mem);
}

static void ctx_clear(parse_ctx *c)
{
    mwl_wbuf_clear(&c->text);
    mwl_wbuf_clear(&c->norm);
}

int mwl_query_parse(const mwl_ds *identifier, mwl_arena *arena, mwl_query **out, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    mwl_query *q = mwl_arena_calloc(arena, sizeof *q);
    if (!q)
        return MWL_E_NOMEM;
    q->arena = arena;
    mwl_charset base, cs;
    mwl_charset_init_default(&base);
    int rc = mwl_wl_charset(identifier, &base, &cs, diag);
    if (rc != MWL_OK) {
        mwl_diag_set(diag, 0, MWL_TAG_SpecificCharacterSet, "(0008,0005) character set not supported");
        return rc == MWL_E_NOMEM ? rc : MWL_E_UNSUPPORTED;
    }
    parse_ctx c;
    ctx_init(&c, q, arena, diag);
    rc = parse_level(&c, identifier, NULL, true, &cs, &q->keys, &q->count);
    ctx_clear(&c);
    if (rc != MWL_OK)
        return rc;
    *out = q;
    return MWL_OK;
}

/* ---- accessors and status ------------------------------------------------ */

uint16_t mwl_query_pending_status(const mwl_query *q)
{
    return q->unsupported ? 0xFF01 : 0xFF00;
}

size_t mwl_query_unsupported_count(const mwl_query *q)
{
    return q->unsupported;
}

uint16_t mwl_query_failure_status(int rc)
{
    switch (rc) {
    case MWL_E_MALFORMED:
    case MWL_E_UNSUPPORTED:
    case MWL_E_CHARSET:
    case MWL_E_INVALID: return 0xA900; /* identifier does not match SOP class */
    case MWL_E_NOMEM:
    case MWL_E_LIMIT: return 0xA700; /* out of resources */
    default: return 0xC000;          /* unable to process */
    }
}

size_t mwl_query_key_count(const mwl_query *q)
{
    return q->count;
}

const mwl_qkey *mwl_query_key_at(const mwl_query *q, size_t index)
{
    return index < q->count ? &q->keys[index] : NULL;
}

const mwl_qkey *mwl_query_find(const mwl_query *q, const uint32_t *path, size_t depth)
{
    const mwl_qkey *keys = q->keys;
    size_t count = q->count;
    const mwl_qkey *k = NULL;
    for (size_t d = 0; d < depth; d++) {
        size_t i = level_index(keys, count, path[d]);
        if (i == count)
            return NULL;
        k = &keys[i];
        keys = k->children;
        count = k->child_count;
    }
    return k;
}

bool mwl_query_is_universal(const mwl_query *q, const uint32_t *path, size_t depth)
{
    const mwl_qkey *k = mwl_query_find(q, path, depth);
    return !k || !is_active(k);
}

/* Inserts a match-only key `key` into a level, keeping tag order. */
static mwl_qkey *level_insert(mwl_arena *arena, mwl_qkey **keys, size_t *count, const mwl_wlkey *key)
{
    mwl_qkey *grown = mwl_arena_calloc(arena, (*count + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    size_t at = 0;
    while (at < *count && (*keys)[at].tag < key->tag)
        at++;
    if (at)
        memcpy(grown, *keys, at * sizeof *grown);
    if (*count > at)
        memcpy(grown + at + 1, *keys + at, (*count - at) * sizeof *grown);
    mwl_qkey *k = &grown[at];
    k->tag = key->tag;
    k->vr = key->vr;
    k->key = key;
    k->kind = MWL_Q_UNIVERSAL;
    k->returned = false;
    *keys = grown;
    *count += 1;
    return k;
}

/* Runs check_level on a copy of the level that `leaf` (at `path`) will sit
 * in, as it will be once constrained, so that a constraint that would make
 * a range invalid (a time range left crossing midnight without its date
 * range) is refused before the query changes. */
static int check_constrained_level(mwl_query *q, const uint32_t *path, size_t depth, const mwl_qkey *leaf,
                                   mwl_diag *diag)
{
    const mwl_qkey *level = q->keys;
    size_t count = q->count;
    for (size_t d = 0; d + 1 < depth && count; d++) {
        size_t i = level_index(level, count, path[d]);
        if (i == count) {
            count = 0;
            break;
        }
        count = level[i].child_count;
        level = level[i].children;
    }
    mwl_qkey *copy = mwl_arena_calloc(q->arena, (count + 1) * sizeof *copy);
    if (!copy)
        return MWL_E_NOMEM;
    if (count)
        memcpy(copy, level, count * sizeof *copy);
    size_t at = level_index(copy, count, leaf->tag);
    if (at == count) {
        copy[count++] = *leaf;
    } else {
        copy[at].kind = leaf->kind;
        copy[at].values = leaf->values;
        copy[at].value_count = leaf->value_count;
    }
    pair_level(copy, count);
    return check_level(copy, count, diag);
}

int mwl_query_constrain(mwl_query *q, const uint32_t *path, size_t depth, const char *utf8, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (depth == 0 || depth > 8 || !utf8)
        return MWL_E_INVALID;
    /* Resolve the whole path in the table first, so a bad path changes
     * nothing. */
    const mwl_wlkey *keys[8];
    const mwl_wlkey *parent = NULL;
    for (size_t d = 0; d < depth; d++) {
        keys[d] = mwl_wlkey_find(parent, path[d]);
        bool last = d + 1 == depth;
        if (!keys[d] || (!last && !(keys[d]->matching & MWL_MATCH_SEQUENCE)) ||
            (last &&
             (!mwl_vr_is_string((mwl_vr)keys[d]->vr) || !(keys[d]->matching & ~MWL_MATCH_UNIVERSAL)))) {
            mwl_diag_set(diag, 0, path[d], TAGFMT " cannot be constrained", TAGARG(path[d]));
            return MWL_E_INVALID;
        }
        parent = keys[d];
    }
    /* Parse the value into a detached key before touching the query. */
    parse_ctx c;
    ctx_init(&c, q, q->arena, diag);
    mwl_qkey leaf;
    memset(&leaf, 0, sizeof leaf);
    leaf.tag = path[depth - 1];
    leaf.vr = keys[depth - 1]->vr;
    leaf.key = keys[depth - 1];
    int rc = parse_text(&c, &leaf, utf8, strlen(utf8));
    ctx_clear(&c);
    if (rc != MWL_OK)
        return rc;
    if (is_active(&leaf) && leaf.kind != MWL_Q_EMPTY &&
        (needed_matching(&leaf) & ~(unsigned)leaf.key->matching)) {
        mwl_diag_set(diag, 0, leaf.tag, TAGFMT " matching type not supported", TAGARG(leaf.tag));
        return MWL_E_INVALID;
    }
    rc = check_constrained_level(q, path, depth, &leaf, diag);
    if (rc != MWL_OK)
        return rc;
    mwl_qkey **level = &q->keys;
    size_t *count = &q->count;
    mwl_qkey *chain[8];
    for (size_t d = 0; d < depth; d++) {
        size_t i = level_index(*level, *count, path[d]);
        mwl_qkey *k = i < *count ? &(*level)[i] : level_insert(q->arena, level, count, keys[d]);
        if (!k)
            return MWL_E_NOMEM;
        chain[d] = k;
        if (d + 1 < depth) {
            level = &k->children;
            count = &k->child_count;
        }
    }
    mwl_qkey *k = chain[depth - 1];
    k->kind = leaf.kind;
    k->values = leaf.values;
    k->value_count = leaf.value_count;
    if (k->unsupported) {
        k->unsupported = false;
        q->unsupported--;
    }
    pair_level(*level, *count);
    for (size_t d = depth - 1; d-- > 0;) {
        mwl_qkey *s = chain[d];
        s->kind = any_active(s->children, s->child_count) ? MWL_Q_SEQUENCE : MWL_Q_UNIVERSAL;
    }
    return MWL_OK;
}
