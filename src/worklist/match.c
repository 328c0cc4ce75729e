/* C-FIND matching (PS3.4 C.2.2.2, applied to the worklist by K.2.2.2).
 *
 * The first half holds one pure function per matching type; each has a
 * table test in match_test.c that cites its clause. The second half walks a
 * stored item against a parsed query (query.c decided, once, which kind of
 * matching every key gets). Stored string values are seen as UTF-8: as they
 * are when they need no conversion, else decoded into the matcher's scratch
 * buffer, which is reused from item to item, so matching does not allocate
 * once the scratch has grown to the largest value. */
#include <string.h>

#include "dicom/datetime.h"
#include "worklist/worklist_int.h"

/* ---- pure matching functions --------------------------------------------- */

/* C.2.2.2.3: a zero-length value is universal; C.2.2.2.4 note 1: so is a
 * value of only '*' on a VR where wild cards apply (it matches any value,
 * empty ones included). */
bool mwl_match_is_universal(mwl_vr vr, const char *key, size_t len)
{
    if (len == 0)
        return true;
    if (!mwl_vr_allows_wildcard(vr))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (key[i] != '*')
            return false;
    }
    return true;
}

/* C.2.2.2.7: the key is exactly two QUOTATION MARKs. */
bool mwl_match_is_empty_key(const char *key, size_t len)
{
    return len == 2 && key[0] == '"' && key[1] == '"';
}

/* C.2.2.2.1: single value matching is exact (case-sensitive, encoding
 * sensitive) for every VR but PN, whose folding the caller chooses. */
bool mwl_match_single(const char *key, size_t klen, const char *value, size_t vlen, unsigned fold)
{
    if (fold == 0)
        return klen == vlen && (klen == 0 || memcmp(key, value, klen) == 0);
    size_t i = 0, j = 0;
    while (i < klen && j < vlen) {
        if (mwl_fold_char(mwl_utf8_next(key, klen, &i), fold) !=
            mwl_fold_char(mwl_utf8_next(value, vlen, &j), fold))
            return false;
    }
    return i == klen && j == vlen;
}

/* C.2.2.2.4: '*' any run of characters (also none), '?' exactly one
 * character. Greedy scan remembering the last '*': on a mismatch the '*'
 * takes one more character and the scan resumes after it. Characters, not
 * bytes: multi-byte UTF-8 sequences count as one. */
bool mwl_match_wildcard(const char *pattern, size_t plen, const char *value, size_t vlen, unsigned fold)
{
    size_t p = 0, v = 0;
    size_t star_p = SIZE_MAX, star_v = 0;
    while (v < vlen) {
        if (p < plen) {
            size_t pn = p;
            uint32_t pc = mwl_utf8_next(pattern, plen, &pn);
            if (pc == '*') {
                star_p = pn;
                star_v = v;
                p = pn;
                continue;
            }
            size_t vn = v;
            uint32_t vc = mwl_utf8_next(value, vlen, &vn);
            if (pc == '?' || mwl_fold_char(pc, fold) == mwl_fold_char(vc, fold)) {
                p = pn;
                v = vn;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return false;
        (void)mwl_utf8_next(value, vlen, &star_v);
        v = star_v;
        p = star_p;
    }
    while (p < plen) {
        if (mwl_utf8_next(pattern, plen, &p) != '*')
            return false;
    }
    return true;
}

/* C.2.2.2.2: a UI key with several values matches a UID equal to any. */
bool mwl_match_uid_list(const mwl_qvalue *uids, size_t count, const char *uid, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        if (mwl_match_single(uids[i].text, uids[i].len, uid, len, 0))
            return true;
    }
    return false;
}

/* C.2.2.2.5: "lo-hi", "-hi", "lo-" inclusive; DA/TM/DT single values are
 * matched by meaning as "v-v" (C.2.2.2.1.3), hi standing for the end of the
 * period it names. */
bool mwl_match_range(bool has_lo, int64_t lo, bool has_hi, int64_t hi, int64_t key)
{
    return (!has_lo || key >= lo) && (!has_hi || key <= hi);
}

/* Numeric strings by value ("+7" = "007" = "7.0"), as CP-2305 advises. */
bool mwl_match_number(double key, const char *value, size_t len)
{
    double v;
    return mwl_wl_parse_number(value, len, &v) && v == key;
}

/* Component group `index` of a normalised PN ("" past the last). */
static void pn_group(const char *s, size_t len, size_t index, const char **g, size_t *glen)
{
    size_t start = 0;
    for (size_t k = 0; k < index; k++) {
        const char *eq = memchr(s + start, '=', len - start);
        if (!eq) {
            *g = s + len;
            *glen = 0;
            return;
        }
        start = (size_t)(eq - s) + 1;
    }
    const char *eq = memchr(s + start, '=', len - start);
    *g = s + start;
    *glen = eq ? (size_t)(eq - (s + start)) : len - start;
}

static bool pn_compare(const char *key, size_t klen, bool wildcard, const char *value, size_t vlen,
                       unsigned fold)
{
    return wildcard ? mwl_match_wildcard(key, klen, value, vlen, fold)
                    : mwl_match_single(key, klen, value, vlen, fold);
}

/* C.2.2.2.1.1 leaves PN matching to the SCP. Comparing whole values would
 * make "Yamada^Tarou" miss a stored "Yamada^Tarou=<kanji>=<kana>" (the note
 * on "=" in C.2.2.2.1), so a key with one component group may match any
 * group of the value, and a key with several is compared group by group. */
bool mwl_match_pn(const char *key, size_t klen, bool wildcard, const char *value, size_t vlen, unsigned fold)
{
    if (!memchr(key, '=', klen)) {
        size_t start = 0;
        for (;;) {
            const char *eq = memchr(value + start, '=', vlen - start);
            size_t glen = eq ? (size_t)(eq - (value + start)) : vlen - start;
            if (glen && pn_compare(key, klen, wildcard, value + start, glen, fold))
                return true;
            if (!eq)
                return false;
            start += glen + 1;
        }
    }
    size_t kpos = 0;
    for (size_t g = 0;; g++) {
        const char *eq = memchr(key + kpos, '=', klen - kpos);
        size_t kgl = eq ? (size_t)(eq - (key + kpos)) : klen - kpos;
        if (kgl) { /* an empty key group matches anything */
            const char *vg;
            size_t vgl;
            pn_group(value, vlen, g, &vg, &vgl);
            if (vgl == 0 || !pn_compare(key + kpos, kgl, wildcard, vg, vgl, fold))
                return false;
        }
        if (!eq)
            return true;
        kpos += kgl + 1;
    }
}

/* ---- walking a stored item ----------------------------------------------- */

static unsigned pn_fold(const mwl_matcher *m)
{
    return (m->opts.pn_case_sensitive ? 0u : (unsigned)MWL_FOLD_CASE) |
           (m->opts.pn_accent_insensitive ? (unsigned)MWL_FOLD_ACCENT : 0u);
}

/* A DA, TM or DT stored value as a comparable key; false if malformed. */
static bool temporal_key(mwl_vr vr, const char *s, size_t len, int64_t *key)
{
    switch (vr) {
    case MWL_VR_DA: {
        mwl_date d;
        if (mwl_date_parse(s, len, &d) != MWL_OK)
            return false;
        *key = mwl_date_key(&d);
        return true;
    }
    case MWL_VR_TM: {
        mwl_time t;
        if (mwl_time_parse(s, len, &t) != MWL_OK)
            return false;
        *key = mwl_time_key(&t, false);
        return true;
    }
    case MWL_VR_DT: {
        mwl_datetime dt;
        if (mwl_datetime_parse(s, len, &dt) != MWL_OK)
            return false;
        *key = mwl_datetime_key(&dt, false);
        return true;
    }
    default: return false;
    }
}

/* One stored value (trimmed, non-empty) against the key's values: any.
 * 1 matched, 0 not, -1 a DA/TM/DT value that does not parse (which matches
 * nothing either; told apart only so that explain can say so). */
static int match_string_value(mwl_matcher *m, const mwl_qkey *k, const char *sv, size_t svlen)
{
    mwl_vr vr = (mwl_vr)k->vr;
    switch (vr) {
    case MWL_VR_DA:
    case MWL_VR_TM:
    case MWL_VR_DT: {
        int64_t key;
        if (!temporal_key(vr, sv, svlen, &key))
            return -1;
        for (size_t i = 0; i < k->value_count; i++) {
            const mwl_qvalue *qv = &k->values[i];
            if (mwl_match_range(qv->has_lo, qv->lo, qv->has_hi, qv->hi, key))
                return 1;
        }
        return 0;
    }
    case MWL_VR_IS:
    case MWL_VR_DS:
        for (size_t i = 0; i < k->value_count; i++) {
            if (mwl_match_number(k->values[i].number, sv, svlen))
                return 1;
        }
        return 0;
    case MWL_VR_UI: return mwl_match_uid_list(k->values, k->value_count, sv, svlen);
    case MWL_VR_PN: {
        mwl_wbuf *norm = &m->norm;
        norm->len = 0;
        norm->status = MWL_OK;
        mwl_pn_normalize(sv, svlen, norm);
        if (norm->status != MWL_OK)
            return 0; /* reported by the caller through norm.status */
        const char *nv = norm->len ? (const char *)norm->data : "";
        for (size_t i = 0; i < k->value_count; i++) {
            const mwl_qvalue *qv = &k->values[i];
            if (mwl_match_pn(qv->text, qv->len, qv->kind == MWL_Q_WILDCARD, nv, norm->len, pn_fold(m)))
                return 1;
        }
        return 0;
    }
    default:
        for (size_t i = 0; i < k->value_count; i++) {
            const mwl_qvalue *qv = &k->values[i];
            bool hit = qv->kind == MWL_Q_WILDCARD ? mwl_match_wildcard(qv->text, qv->len, sv, svlen, 0)
                                                  : mwl_match_single(qv->text, qv->len, sv, svlen, 0);
            if (hit)
                return 1;
        }
        return 0;
    }
}

/* Single value / wild card / UID list / range matching of one key against
 * a stored element: any stored value matching any key value (C.2.2.3). */
static int match_values(mwl_matcher *m, const mwl_qkey *k, const mwl_elem *e, const mwl_charset *cs,
                        bool *matched, mwl_explain_reason *why, mwl_diag *diag)
{
    *matched = false;
    *why = MWL_WHY_DIFFERENT;
    mwl_vr vr = (mwl_vr)k->vr;
    const mwl_vr_info *info = mwl_vr_get_info(vr);
    if (info->kind == MWL_VR_KIND_STRING || info->kind == MWL_VR_KIND_TEXT) {
        const char *text;
        size_t len;
        int rc = mwl_wl_text(cs, vr, e->value, e->length, &m->text, &text, &len, diag);
        if (rc != MWL_OK) {
            if (diag)
                diag->tag = e->tag;
            return rc;
        }
        size_t pos = 0;
        const char *sv;
        size_t svlen;
        while (mwl_wl_next_value(vr, text, len, &pos, &sv, &svlen)) {
            /* An empty value among several is unknown: it matches nothing. */
            int hit = svlen ? match_string_value(m, k, sv, svlen) : 0;
            if (hit > 0) {
                *matched = true;
                *why = MWL_WHY_MATCHED;
                break;
            }
            if (hit < 0)
                *why = MWL_WHY_BAD_VALUE;
        }
        return vr == MWL_VR_PN && m->norm.status != MWL_OK ? MWL_E_NOMEM : MWL_OK;
    }
    /* Binary VRs: value by value for numbers (US, SL, FD, AT ...), the whole
     * value for byte streams; compared as stored bytes. */
    size_t unit = info->kind == MWL_VR_KIND_NUMBER ? info->max_len : e->length;
    for (size_t off = 0; unit && off + unit <= e->length; off += unit) {
        for (size_t i = 0; i < k->value_count; i++) {
            const mwl_qvalue *qv = &k->values[i];
            if (qv->len == unit && memcmp(qv->text, e->value + off, unit) == 0) {
                *matched = true;
                *why = MWL_WHY_MATCHED;
                return MWL_OK;
            }
        }
    }
    return MWL_OK;
}

/* C.2.2.2.7: absent, zero length, or only empty values. */
static bool elem_is_empty(const mwl_elem *e)
{
    if (!e)
        return true;
    if (e->vr == MWL_VR_SQ)
        return e->item_count == 0;
    if (e->length == 0)
        return true;
    if (!mwl_vr_is_string(e->vr))
        return false;
    for (uint32_t i = 0; i < e->length; i++) {
        uint8_t c = e->value[i];
        if (c != ' ' && c != '\0' && c != '\\')
            return false;
    }
    return true;
}

/* Value `index` of a stored DA or TM element as a key; false when it is
 * absent, empty or malformed. */
static bool temporal_at(const mwl_elem *e, mwl_vr vr, size_t index, int64_t *key)
{
    mwl_elem as_vr = *e;
    as_vr.vr = vr; /* read with the model's VR even if stored as UN */
    const char *s;
    size_t len;
    if (mwl_elem_get_str(&as_vr, index, &s, &len) != MWL_OK || len == 0)
        return false;
    return temporal_key(vr, s, len, key);
}

static size_t temporal_count(const mwl_elem *e, mwl_vr vr)
{
    if (!e || e->vr == MWL_VR_SQ)
        return 0;
    mwl_elem as_vr = *e;
    as_vr.vr = vr;
    return mwl_elem_vm(&as_vr);
}

/* C.2.2.2.5.4 and the Table K.6-1 remark on (0040,0002)/(0040,0003): the
 * date and time ranges are one date-time range; an item matches when any of
 * its date values with any of its time values falls inside. */
static bool match_datetime(const mwl_qkey *k, const mwl_ds *ds, mwl_explain_reason *why)
{
    const mwl_wlkey *time_key = &mwl_wlkeys[k->key->pair];
    const mwl_elem *de = mwl_ds_find(ds, k->tag);
    const mwl_elem *te = mwl_ds_find(ds, time_key->tag);
    size_t dn = temporal_count(de, MWL_VR_DA), tn = temporal_count(te, MWL_VR_TM);
    *why = dn && tn ? MWL_WHY_DIFFERENT : MWL_WHY_NO_VALUE;
    for (size_t i = 0; i < dn; i++) {
        int64_t dk, tk;
        if (!temporal_at(de, MWL_VR_DA, i, &dk))
            continue;
        for (size_t j = 0; j < tn; j++) {
            if (!temporal_at(te, MWL_VR_TM, j, &tk))
                continue;
            int64_t key = mwl_wl_datetime_key((int32_t)dk, tk);
            if (mwl_match_range(k->dt_has_lo, k->dt_lo, k->dt_has_hi, k->dt_hi, key)) {
                *why = MWL_WHY_MATCHED;
                return true;
            }
        }
    }
    return false;
}

static int match_sequence(mwl_matcher *m, const mwl_qkey *k, const mwl_ds *ds, const mwl_charset *cs,
                          bool top, size_t expand_index, bool *matched, mwl_explain_reason *why,
                          mwl_diag *diag)
{
    /* C.2.2.2.6: the entity matches when one item of its sequence matches
     * every key of the query's item. */
    *matched = false;
    *why = MWL_WHY_NO_SEQUENCE;
    const mwl_elem *e = mwl_ds_find(ds, k->tag);
    if (!e || e->vr != MWL_VR_SQ)
        return MWL_OK;
    bool expanded = mwl_wl_is_expanded(k->key, top, expand_index);
    for (size_t i = 0; i < e->item_count; i++) {
        if (expanded && i != expand_index)
            continue;
        *why = MWL_WHY_NO_ITEM;
        mwl_charset item_cs;
        int rc = mwl_wl_charset(e->items[i], cs, &item_cs, diag);
        if (rc != MWL_OK)
            return rc;
        rc = mwl_wl_match_level(m, k->children, k->child_count, e->items[i], &item_cs, false, SIZE_MAX,
                                matched, diag);
        if (rc != MWL_OK)
            return rc;
        if (*matched) {
            *why = MWL_WHY_MATCHED;
            return MWL_OK;
        }
    }
    return MWL_OK;
}

int mwl_wl_match_key(mwl_matcher *m, const mwl_qkey *k, const mwl_ds *ds, const mwl_charset *cs, bool top,
                     size_t expand_index, bool *hit, mwl_explain_reason *why, mwl_diag *diag)
{
    *hit = true;
    *why = MWL_WHY_MATCHED;
    if (k->paired) {
        *why = MWL_WHY_NOT_MATCHED_ON; /* matched with its date (MWL_Q_DATETIME) */
        return MWL_OK;
    }
    switch ((mwl_qkind)k->kind) {
    case MWL_Q_UNIVERSAL: *why = MWL_WHY_UNIVERSAL; return MWL_OK;
    case MWL_Q_IGNORED: *why = MWL_WHY_NOT_MATCHED_ON; return MWL_OK;
    case MWL_Q_EMPTY:
        *hit = elem_is_empty(mwl_ds_find(ds, k->tag));
        if (!*hit)
            *why = MWL_WHY_HAS_VALUE;
        return MWL_OK;
    case MWL_Q_SEQUENCE: return match_sequence(m, k, ds, cs, top, expand_index, hit, why, diag);
    case MWL_Q_DATETIME: *hit = match_datetime(k, ds, why); return MWL_OK;
    case MWL_Q_SINGLE:
    case MWL_Q_UID_LIST:
    case MWL_Q_WILDCARD:
    case MWL_Q_RANGE: {
        /* K.2.2.1.1.1: an unknown (absent or empty) value never matches
         * a non-universal key. */
        const mwl_elem *e = mwl_ds_find(ds, k->tag);
        if (!e || e->length == 0 || e->vr == MWL_VR_SQ) {
            *hit = false;
            *why = MWL_WHY_NO_VALUE;
            return MWL_OK;
        }
        return match_values(m, k, e, cs, hit, why, diag);
    }
    }
    return MWL_OK;
}

int mwl_wl_match_level(mwl_matcher *m, const mwl_qkey *keys, size_t count, const mwl_ds *ds,
                       const mwl_charset *cs, bool top, size_t expand_index, bool *matched, mwl_diag *diag)
{
    /* The fast path of the C-FIND: the first key that fails decides, and
     * the reason mwl_wl_match_key gives is dropped (mwl_explain keeps it). */
    *matched = false;
    for (size_t i = 0; i < count; i++) {
        bool hit;
        mwl_explain_reason why;
        int rc = mwl_wl_match_key(m, &keys[i], ds, cs, top, expand_index, &hit, &why, diag);
        if (rc != MWL_OK || !hit)
            return rc;
    }
    *matched = true;
    return MWL_OK;
}

/* ---- public entry points ------------------------------------------------- */

void mwl_match_opts_init(mwl_match_opts *opts)
{
    opts->pn_case_sensitive = false;
    opts->pn_accent_insensitive = false;
}

void mwl_matcher_init(mwl_matcher *m, const mwl_match_opts *opts, const mwl_mem *mem)
{
    if (opts)
        m->opts = *opts;
    else
        mwl_match_opts_init(&m->opts);
    mwl_wbuf_init(&m->text, mem);
    mwl_wbuf_init(&m->norm, mem);
}

void mwl_matcher_clear(mwl_matcher *m)
{
    if (!m)
        return;
    mwl_wbuf_clear(&m->text);
    mwl_wbuf_clear(&m->norm);
}

int mwl_match_dataset(mwl_matcher *m, const mwl_query *q, const mwl_ds *item, size_t expand_index,
                      bool *matched, mwl_diag *diag)
{
    *matched = false;
    mwl_charset base, cs;
    mwl_charset_init_default(&base);
    int rc = mwl_wl_charset(item, &base, &cs, diag);
    if (rc != MWL_OK)
        return rc;
    return mwl_wl_match_level(m, q->keys, q->count, item, &cs, true, expand_index, matched, diag);
}
