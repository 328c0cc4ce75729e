/* Explaining a match: every key of a query against one stored item, with
 * the matcher's own per-key decision (mwl_wl_match_key in match.c) and its
 * reason, for people asking why an item is not in their worklist.
 *
 * Nothing here judges a key: the verdicts come from the function the C-FIND
 * path runs. This file only walks further than that path does (past the
 * first failing key, into every item of a sequence), runs the same
 * comparison again under the other name options for the PN hint, and turns
 * values into UTF-8 text. It allocates and formats freely; the C-FIND path
 * never comes here. */
#include <stdio.h>
#include <string.h>

#include "dicom/dict.h"
#include "dicom/json.h"
#include "worklist/worklist_int.h"

typedef struct explain_ctx {
    mwl_matcher *m;
    mwl_arena *arena;
    mwl_diag *diag;
    mwl_explain_key *keys;
    size_t count, cap;
} explain_ctx;

static mwl_explain_key *add_entry(explain_ctx *c)
{
    if (c->count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        mwl_explain_key *keys =
            mwl_arena_realloc(c->arena, c->keys, c->cap * sizeof *keys, cap * sizeof *keys);
        if (!keys)
            return NULL;
        c->keys = keys;
        c->cap = cap;
    }
    mwl_explain_key *e = &c->keys[c->count++];
    memset(e, 0, sizeof *e);
    e->item = SIZE_MAX;
    return e;
}

/* ---- values as text -------------------------------------------------------- */

/* A binary value of `len` bytes (little endian, as stored) as decimal
 * numbers for the integer VRs, else as a byte count. */
static void put_binary(mwl_wbuf *w, mwl_vr vr, const uint8_t *p, size_t len)
{
    char num[64];
    size_t unit = vr == MWL_VR_US || vr == MWL_VR_SS ? 2 : vr == MWL_VR_UL || vr == MWL_VR_SL ? 4 : 0;
    if (!unit || len % unit != 0) {
        int n = snprintf(num, sizeof num, "(%zu bytes)", len);
        mwl_wbuf_put(w, num, (size_t)n);
        return;
    }
    for (size_t off = 0; off < len; off += unit) {
        uint32_t v = unit == 2 ? mwl_load_u16le(p + off) : mwl_load_u32le(p + off);
        int n;
        if (vr == MWL_VR_SS)
            n = snprintf(num, sizeof num, "%d", (int)(int16_t)v);
        else if (vr == MWL_VR_SL)
            n = snprintf(num, sizeof num, "%ld", (long)(int32_t)v);
        else
            n = snprintf(num, sizeof num, "%lu", (unsigned long)v);
        if (off)
            mwl_wbuf_put_u8(w, '\\');
        mwl_wbuf_put(w, num, (size_t)n);
    }
}

static const char *wbuf_str(explain_ctx *c, mwl_wbuf *w)
{
    if (w->status != MWL_OK)
        return NULL;
    return mwl_arena_strndup(c->arena, w->len ? (const char *)w->data : "", w->len);
}

/* The key's values as the query holds them (UTF-8, trimmed, PN
 * normalised), '\' between them. */
static void put_query_values(mwl_wbuf *w, const mwl_qkey *k)
{
    if (k->kind == MWL_Q_EMPTY) {
        mwl_wbuf_put(w, "\"\"", 2);
        return;
    }
    const mwl_vr_info *info = mwl_vr_get_info((mwl_vr)k->vr);
    bool text = info->kind == MWL_VR_KIND_STRING || info->kind == MWL_VR_KIND_TEXT;
    if (k->value_count == 0 && k->elem && k->elem->length && text && mwl_wl_plain_ascii(k->elem)) {
        /* Ignored and universal keys keep no parsed values; ASCII reads the
         * same in any character set, so the identifier's bytes will do. */
        const char *s = (const char *)k->elem->value;
        size_t len = k->elem->length;
        mwl_str_trim((mwl_vr)k->vr, &s, &len);
        mwl_wbuf_put(w, s, len);
        return;
    }
    for (size_t i = 0; i < k->value_count; i++) {
        if (i)
            mwl_wbuf_put_u8(w, '\\');
        if (text)
            mwl_wbuf_put(w, k->values[i].text, k->values[i].len);
        else
            put_binary(w, (mwl_vr)k->vr, (const uint8_t *)k->values[i].text, k->values[i].len);
    }
}

/* The stored element's values in UTF-8; false when absent. */
static int put_item_value(explain_ctx *c, mwl_wbuf *w, const mwl_ds *ds, const mwl_charset *cs, uint32_t tag,
                          mwl_vr vr, bool *present)
{
    const mwl_elem *e = mwl_ds_find(ds, tag);
    *present = e != NULL;
    if (!e)
        return MWL_OK;
    if (e->vr == MWL_VR_SQ) {
        char num[48];
        int n = snprintf(num, sizeof num, "(%zu item%s)", e->item_count, e->item_count == 1 ? "" : "s");
        mwl_wbuf_put(w, num, (size_t)n);
        return MWL_OK;
    }
    if (vr == MWL_VR_NONE || vr == MWL_VR_UN)
        vr = (mwl_vr)e->vr;
    const mwl_vr_info *info = mwl_vr_get_info(vr);
    if (info->kind != MWL_VR_KIND_STRING && info->kind != MWL_VR_KIND_TEXT) {
        put_binary(w, vr, e->value, e->length);
        return MWL_OK;
    }
    const char *text;
    size_t len;
    int rc = mwl_wl_text(cs, vr, e->value, e->length, &c->m->text, &text, &len, c->diag);
    if (rc != MWL_OK)
        return rc;
    mwl_str_trim(vr, &text, &len);
    mwl_wbuf_put(w, text, len);
    return MWL_OK;
}

static const char *key_path(explain_ctx *c, const char *parent, uint32_t tag)
{
    const char *kw = mwl_dict_keyword(tag);
    char tagbuf[16];
    if (!kw || !kw[0]) {
        snprintf(tagbuf, sizeof tagbuf, "(%04X,%04X)", (unsigned)(tag >> 16), (unsigned)(tag & 0xFFFF));
        kw = tagbuf;
    }
    size_t plen = parent ? strlen(parent) : 0, klen = strlen(kw);
    char *s = mwl_arena_alloc(c->arena, plen + 1 + klen + 1);
    if (!s)
        return NULL;
    if (parent) {
        memcpy(s, parent, plen);
        s[plen++] = '>';
    }
    memcpy(s + plen, kw, klen + 1);
    return s;
}

/* ---- walking the query ------------------------------------------------------ */

static mwl_explain_result result_of(bool hit, mwl_explain_reason why)
{
    if (why == MWL_WHY_UNIVERSAL || why == MWL_WHY_NOT_MATCHED_ON)
        return MWL_EXPLAIN_NA;
    return hit ? MWL_EXPLAIN_MATCH : MWL_EXPLAIN_NOMATCH;
}

static const mwl_qkey *paired_time(const mwl_qkey *keys, size_t count, const mwl_qkey *date)
{
    uint32_t tag = mwl_wlkeys[date->key->pair].tag;
    for (size_t i = 0; i < count; i++) {
        if (keys[i].tag == tag)
            return &keys[i];
    }
    return NULL;
}

/* The same per-key decision under each combination of the name options. */
static int pn_alternatives(explain_ctx *c, const mwl_qkey *k, const mwl_ds *ds, const mwl_charset *cs,
                           mwl_explain_key *e)
{
    mwl_match_opts saved = c->m->opts;
    int rc = MWL_OK;
    for (unsigned combo = 0; combo < 4 && rc == MWL_OK; combo++) {
        c->m->opts.pn_case_sensitive = (combo & MWL_EXPLAIN_PN_CASE_SENSITIVE) != 0;
        c->m->opts.pn_accent_insensitive = (combo & MWL_EXPLAIN_PN_ACCENT_INSENSITIVE) != 0;
        bool hit;
        mwl_explain_reason why;
        rc = mwl_wl_match_key(c->m, k, ds, cs, false, SIZE_MAX, &hit, &why, c->diag);
        if (hit)
            e->pn_matches |= (uint8_t)(1u << combo);
    }
    c->m->opts = saved;
    e->pn_checked = rc == MWL_OK;
    return rc;
}

static int explain_level(explain_ctx *c, const mwl_qkey *keys, size_t count, const mwl_ds *ds,
                         const mwl_charset *cs, bool top, size_t expand_index, const char *parent,
                         size_t depth, size_t item, bool *all_hit);

/* The keys inside a sequence key that constrains nothing: none of them can
 * (query.c made the sequence universal because none does), so they are
 * listed, each not applicable, without looking into the item. */
static int list_inactive(explain_ctx *c, const mwl_qkey *keys, size_t count, const char *parent, size_t depth)
{
    for (size_t i = 0; i < count; i++) {
        const mwl_qkey *k = &keys[i];
        mwl_explain_key *e = add_entry(c);
        if (!e)
            return MWL_E_NOMEM;
        e->path = key_path(c, parent, k->tag);
        e->tag = k->tag;
        e->vr = k->vr;
        e->depth = depth;
        e->kind = (mwl_qkind)k->kind;
        e->result = MWL_EXPLAIN_NA;
        e->reason = k->kind == MWL_Q_IGNORED ? MWL_WHY_NOT_MATCHED_ON : MWL_WHY_UNIVERSAL;
        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        put_query_values(&w, k);
        e->query_value = wbuf_str(c, &w);
        mwl_wbuf_clear(&w);
        if (!e->path || !e->query_value)
            return MWL_E_NOMEM;
        const char *path = e->path;
        int rc = list_inactive(c, k->children, k->child_count, path, depth + 1);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

static int explain_items(explain_ctx *c, const mwl_qkey *k, const mwl_ds *ds, const mwl_charset *cs, bool top,
                         size_t expand_index, const char *path, size_t depth)
{
    const mwl_elem *e = mwl_ds_find(ds, k->tag);
    if (!e || e->vr != MWL_VR_SQ)
        return MWL_OK;
    bool expanded = mwl_wl_is_expanded(k->key, top, expand_index);
    for (size_t i = 0; i < e->item_count; i++) {
        if (expanded && i != expand_index)
            continue;
        mwl_charset item_cs;
        int rc = mwl_wl_charset(e->items[i], cs, &item_cs, c->diag);
        if (rc != MWL_OK)
            return rc;
        size_t at = c->count;
        mwl_explain_key *ie = add_entry(c);
        if (!ie)
            return MWL_E_NOMEM;
        ie->path = path;
        ie->tag = k->tag;
        ie->vr = MWL_VR_SQ;
        ie->depth = depth;
        ie->item = i;
        ie->is_item = true;
        ie->kind = MWL_Q_SEQUENCE;
        ie->query_value = "";
        bool all_hit;
        rc = explain_level(c, k->children, k->child_count, e->items[i], &item_cs, false, SIZE_MAX, path,
                           depth + 1, i, &all_hit);
        if (rc != MWL_OK)
            return rc;
        ie = &c->keys[at]; /* the array may have moved */
        ie->result = all_hit ? MWL_EXPLAIN_MATCH : MWL_EXPLAIN_NOMATCH;
        ie->reason = all_hit ? MWL_WHY_MATCHED : MWL_WHY_ITEM_KEY;
    }
    return MWL_OK;
}

static int explain_level(explain_ctx *c, const mwl_qkey *keys, size_t count, const mwl_ds *ds,
                         const mwl_charset *cs, bool top, size_t expand_index, const char *parent,
                         size_t depth, size_t item, bool *all_hit)
{
    *all_hit = true;
    for (size_t i = 0; i < count; i++) {
        const mwl_qkey *k = &keys[i];
        bool hit;
        mwl_explain_reason why;
        int rc = mwl_wl_match_key(c->m, k, ds, cs, top, expand_index, &hit, &why, c->diag);
        if (rc != MWL_OK)
            return rc;
        *all_hit = *all_hit && hit;

        mwl_explain_key *e = add_entry(c);
        if (!e)
            return MWL_E_NOMEM;
        e->path = key_path(c, parent, k->tag);
        e->tag = k->tag;
        e->vr = k->vr;
        e->depth = depth;
        e->item = item;
        e->kind = k->paired ? MWL_Q_DATETIME : (mwl_qkind)k->kind;
        e->result = result_of(hit, why);
        e->reason = why;

        mwl_wbuf w;
        mwl_wbuf_init(&w, NULL);
        bool present = false;
        const mwl_qkey *time = k->kind == MWL_Q_DATETIME ? paired_time(keys, count, k) : NULL;
        put_query_values(&w, k);
        if (time) {
            mwl_wbuf_put_u8(&w, ' ');
            put_query_values(&w, time);
        }
        e->query_value = wbuf_str(c, &w);
        w.len = 0;
        rc = put_item_value(c, &w, ds, cs, k->tag, (mwl_vr)k->vr, &present);
        if (rc == MWL_OK && time) {
            bool time_present;
            mwl_wbuf_put_u8(&w, ' ');
            rc = put_item_value(c, &w, ds, cs, time->tag, (mwl_vr)time->vr, &time_present);
            present = present || time_present;
        }
        e->item_value = rc == MWL_OK && present ? wbuf_str(c, &w) : NULL;
        bool failed = w.status != MWL_OK || !e->path || !e->query_value || (present && !e->item_value);
        mwl_wbuf_clear(&w);
        if (rc != MWL_OK)
            return rc;
        if (failed)
            return MWL_E_NOMEM;

        if (k->vr == MWL_VR_PN && (k->kind == MWL_Q_SINGLE || k->kind == MWL_Q_WILDCARD) &&
            why != MWL_WHY_NO_VALUE) {
            rc = pn_alternatives(c, k, ds, cs, e);
            if (rc != MWL_OK)
                return rc;
        }
        const char *path = e->path;
        if (k->kind == MWL_Q_SEQUENCE)
            rc = explain_items(c, k, ds, cs, top, expand_index, path, depth);
        else
            rc = list_inactive(c, k->children, k->child_count, path, depth + 1);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

int mwl_explain_match(mwl_matcher *m, const mwl_query *q, const mwl_ds *item, size_t expand_index,
                      mwl_arena *arena, mwl_explain *out, mwl_diag *diag)
{
    memset(out, 0, sizeof *out);
    out->opts = m->opts;
    mwl_charset base, cs;
    mwl_charset_init_default(&base);
    int rc = mwl_wl_charset(item, &base, &cs, diag);
    if (rc != MWL_OK)
        return rc;
    explain_ctx c = {.m = m, .arena = arena, .diag = diag};
    bool all_hit;
    rc = explain_level(&c, q->keys, q->count, item, &cs, true, expand_index, NULL, 0, SIZE_MAX, &all_hit);
    if (rc != MWL_OK)
        return rc;
    out->keys = c.keys;
    out->count = c.count;
    out->matched = all_hit;
    return MWL_OK;
}

/* ---- words ----------------------------------------------------------------- */

const char *mwl_explain_kind_name(mwl_qkind kind)
{
    switch (kind) {
    case MWL_Q_UNIVERSAL: return "universal";
    case MWL_Q_SINGLE: return "single value";
    case MWL_Q_UID_LIST: return "list of UIDs";
    case MWL_Q_WILDCARD: return "wildcard";
    case MWL_Q_RANGE: return "range";
    case MWL_Q_DATETIME: return "date-time range";
    case MWL_Q_SEQUENCE: return "sequence";
    case MWL_Q_EMPTY: return "empty value";
    case MWL_Q_IGNORED: return "not matched";
    }
    return "?";
}

const char *mwl_explain_result_name(mwl_explain_result result)
{
    switch (result) {
    case MWL_EXPLAIN_MATCH: return "match";
    case MWL_EXPLAIN_NOMATCH: return "no match";
    case MWL_EXPLAIN_NA: return "n/a";
    }
    return "?";
}

static bool is_temporal(uint8_t vr)
{
    return vr == MWL_VR_DA || vr == MWL_VR_TM || vr == MWL_VR_DT;
}

/* Why a key whose values were compared did not match, by how it was
 * compared. */
static const char *different_phrase(const mwl_explain_key *k)
{
    switch (k->kind) {
    case MWL_Q_RANGE: return "outside the range";
    case MWL_Q_DATETIME: return "outside the date-time range";
    case MWL_Q_UID_LIST: return "not one of the UIDs";
    case MWL_Q_WILDCARD:
        return k->vr == MWL_VR_PN
                   ? "does not fit the pattern (names: case-insensitive unless pn-case-sensitive)"
                   : "does not fit the pattern (wildcard matching is case-sensitive)";
    default: break;
    }
    if (is_temporal(k->vr))
        return "outside the range (a single date or time names a whole period)";
    if (k->vr == MWL_VR_IS || k->vr == MWL_VR_DS)
        return "a different number";
    if (k->vr == MWL_VR_PN)
        return "a different name";
    return "single value matching is exact";
}

const char *mwl_explain_phrase(const mwl_explain_key *k)
{
    switch (k->reason) {
    case MWL_WHY_MATCHED:
        if (k->is_item)
            return "every key of the item matches";
        return k->kind == MWL_Q_EMPTY ? "the item has no value, as asked" : "matches";
    case MWL_WHY_UNIVERSAL: return "return key only: universal matching";
    case MWL_WHY_NOT_MATCHED_ON:
        return k->kind == MWL_Q_DATETIME ? "matched together with the date (see its line)"
                                         : "not matched on (returned only)";
    case MWL_WHY_NO_VALUE: return "the item has no value, and an unknown value never matches";
    case MWL_WHY_DIFFERENT: return different_phrase(k);
    case MWL_WHY_BAD_VALUE: return "the item's value is not a valid date or time";
    case MWL_WHY_HAS_VALUE: return "the query asks for an empty value and the item has one";
    case MWL_WHY_NO_SEQUENCE: return "the item has no such sequence (or no item of it to look at)";
    case MWL_WHY_NO_ITEM:
        return "no item of the sequence matches every key (they must match in the same item)";
    case MWL_WHY_ITEM_KEY: return "a key of this item does not match";
    }
    return "?";
}

bool mwl_explain_pn_hint(const mwl_explain_key *k, const mwl_match_opts *opts, char *buf, size_t cap)
{
    if (!k->pn_checked || k->result != MWL_EXPLAIN_NOMATCH || !k->pn_matches || cap == 0)
        return false;
    unsigned now = (opts->pn_case_sensitive ? (unsigned)MWL_EXPLAIN_PN_CASE_SENSITIVE : 0u) |
                   (opts->pn_accent_insensitive ? (unsigned)MWL_EXPLAIN_PN_ACCENT_INSENSITIVE : 0u);
    /* Prefer changing one option, the accent one first (it is the one
     * people miss: a modality's keyboard without the accent). */
    static const unsigned flips[] = {MWL_EXPLAIN_PN_ACCENT_INSENSITIVE, MWL_EXPLAIN_PN_CASE_SENSITIVE,
                                     MWL_EXPLAIN_PN_ACCENT_INSENSITIVE | MWL_EXPLAIN_PN_CASE_SENSITIVE};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        unsigned combo = now ^ flips[i];
        if (!(k->pn_matches & (1u << combo)))
            continue;
        const char *accent = "", *kase = "", *sep = "";
        if (flips[i] & MWL_EXPLAIN_PN_ACCENT_INSENSITIVE)
            accent =
                combo & MWL_EXPLAIN_PN_ACCENT_INSENSITIVE ? "pn-accent-insensitive" : "pn-accent-sensitive";
        if (flips[i] & MWL_EXPLAIN_PN_CASE_SENSITIVE)
            kase = combo & MWL_EXPLAIN_PN_CASE_SENSITIVE ? "pn-case-sensitive" : "pn-case-insensitive";
        if (accent[0] && kase[0])
            sep = " and ";
        snprintf(buf, cap, "matches only with %s%s%s", kase, sep, accent);
        return true;
    }
    return false;
}

/* ---- JSON (mwl explain --json, GET /explain) ---------------------------------- */

bool mwl_explain_is_failing(const mwl_explain_key *k)
{
    return k->result == MWL_EXPLAIN_NOMATCH && !k->is_item &&
           (k->kind != MWL_Q_SEQUENCE || k->reason == MWL_WHY_NO_SEQUENCE);
}

static void put_text(mwl_wbuf *out, const char *s)
{
    mwl_wbuf_put(out, s, strlen(s));
}

static void put_json(mwl_wbuf *out, const char *s)
{
    if (s)
        mwl_json_put_string(out, s, strlen(s));
    else
        put_text(out, "null");
}

const char *mwl_explain_key_name(const mwl_explain_key *k)
{
    const mwl_dict_entry *d = mwl_dict_find(k->tag);
    return d && d->name && d->name[0] ? d->name : k->path;
}

void mwl_explain_write_json(const mwl_explain *ex, mwl_wbuf *out)
{
    char num[32];
    put_text(out, ex->matched ? "\"matched\":true,\"failing\":[" : "\"matched\":false,\"failing\":[");
    const char *sep = "";
    for (size_t i = 0; i < ex->count; i++) {
        if (mwl_explain_is_failing(&ex->keys[i])) {
            put_text(out, sep);
            put_json(out, ex->keys[i].path);
            sep = ",";
        }
    }
    put_text(out, "],\"keys\":[");
    for (size_t i = 0; i < ex->count; i++) {
        const mwl_explain_key *k = &ex->keys[i];
        put_text(out, i ? ",\n  {\"path\":" : "\n  {\"path\":");
        put_json(out, k->path);
        put_text(out, ",\"name\":");
        put_json(out, mwl_explain_key_name(k));
        snprintf(num, sizeof num, ",\"depth\":%zu,\"item\":", k->depth);
        put_text(out, num);
        if (k->item == SIZE_MAX)
            put_text(out, "null");
        else {
            snprintf(num, sizeof num, "%zu", k->item);
            put_text(out, num);
        }
        put_text(out, k->is_item ? ",\"isItem\":true,\"kind\":" : ",\"isItem\":false,\"kind\":");
        put_json(out, mwl_explain_kind_name(k->kind));
        put_text(out, ",\"query\":");
        put_json(out, k->is_item ? NULL : k->query_value);
        put_text(out, ",\"value\":");
        put_json(out, k->item_value);
        put_text(out, ",\"result\":");
        put_json(out, mwl_explain_result_name(k->result));
        put_text(out, ",\"reason\":");
        put_json(out, mwl_explain_phrase(k));
        char hint[128];
        put_text(out, ",\"hint\":");
        put_json(out, mwl_explain_pn_hint(k, &ex->opts, hint, sizeof hint) ? hint : NULL);
        put_text(out, "}");
    }
    put_text(out, "]");
}
