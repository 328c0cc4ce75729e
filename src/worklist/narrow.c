/* Narrowing rules shared by every store backend (worklist.h, "support for
 * narrowing in the store"): the filter a query implies, and the indexed
 * values of one stored SPS row. The two are written side by side because
 * they must agree: a filter condition tests exactly a value built here. */
#include <stdio.h>
#include <string.h>

#include "dicom/charset.h"
#include "dicom/codec.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "worklist/worklist_int.h"

static const uint32_t sps_tag = MWL_TAG_ScheduledProcedureStepSequence;

/* ---- the filter ------------------------------------------------------------ */

void mwl_filter_init(mwl_filter *f)
{
    memset(f, 0, sizeof *f);
}

bool mwl_filter_is_empty(const mwl_filter *f)
{
    const mwl_filter_cond *conds[] = {&f->station_aet, &f->modality,   &f->sps_id,
                                      &f->sps_status,  &f->patient_id, &f->patient_name,
                                      &f->accession,   &f->study_uid,  &f->requested_procedure_id,
                                      &f->worklist_aet};
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        if (mwl_filter_cond_match(conds[i]) != MWL_FILTER_ANY)
            return false;
    }
    return !f->date_lo && !f->date_hi;
}

/* Index form of a name (or name prefix) into `buf`; false when it does not
 * fit or cannot be made. */
static bool name_index(const char *utf8, size_t len, bool normalize, char buf[MWL_FILTER_VALUE_MAX])
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, NULL);
    mwl_pn_index_form(utf8, len, normalize, &w);
    bool ok = w.status == MWL_OK && w.len > 0 && w.len < MWL_FILTER_VALUE_MAX;
    if (ok) {
        memcpy(buf, w.data, w.len);
        buf[w.len] = '\0';
    }
    mwl_wbuf_clear(&w);
    return ok;
}

void mwl_filter_set_name(mwl_filter *f, mwl_filter_match match, const char *utf8)
{
    char *buf = f->text[5];
    f->patient_name = (mwl_filter_cond){MWL_FILTER_ANY, NULL};
    if (match == MWL_FILTER_ANY || !utf8 || !name_index(utf8, strlen(utf8), true, buf))
        return;
    f->patient_name = (mwl_filter_cond){match, buf};
}

/* A key with one value that an index can test exactly or by prefix. Keys
 * with several values (any may match), empty-value keys and UID lists are
 * left to the matcher: narrowing must never drop a match. */
static void narrow_text(const mwl_query *q, const uint32_t *path, size_t depth, mwl_filter_cond *cond,
                        char buf[MWL_FILTER_VALUE_MAX], bool pn)
{
    const mwl_qkey *k = mwl_query_find(q, path, depth);
    if (!k || k->value_count != 1 || (k->kind != MWL_Q_SINGLE && k->kind != MWL_Q_WILDCARD))
        return;
    const mwl_qvalue *v = &k->values[0];
    size_t n = v->len;
    if (pn) {
        /* A key with '=' is compared group by group: its first group against
         * the name's first group, which is one of the indexed groups. */
        const char *eq = memchr(v->text, '=', n);
        if (eq)
            n = (size_t)(eq - v->text);
    }
    size_t lit = 0;
    while (lit < n && v->text[lit] != '*' && v->text[lit] != '?')
        lit++;
    bool wild = lit < n;
    if (lit == 0)
        return;
    if (pn) {
        /* the key is normalised already (mwl_query_parse) */
        if (!name_index(v->text, lit, false, buf))
            return;
    } else {
        if (lit >= MWL_FILTER_VALUE_MAX)
            return;
        memcpy(buf, v->text, lit);
        buf[lit] = '\0';
    }
    cond->match = wild ? MWL_FILTER_PREFIX : MWL_FILTER_EXACT;
    cond->value = buf;
}

static void narrow_date(const mwl_query *q, mwl_filter *f)
{
    const uint32_t path[2] = {sps_tag, MWL_TAG_ScheduledProcedureStepStartDate};
    const mwl_qkey *k = mwl_query_find(q, path, 2);
    if (!k || k->value_count != 1 ||
        (k->kind != MWL_Q_SINGLE && k->kind != MWL_Q_RANGE && k->kind != MWL_Q_DATETIME))
        return;
    const mwl_qvalue *v = &k->values[0];
    if (v->has_lo && v->lo >= 0 && v->lo <= 99991231) {
        snprintf(f->dates[0], sizeof f->dates[0], "%08d", (int)v->lo);
        f->date_lo = f->dates[0];
    }
    if (v->has_hi && v->hi >= 0 && v->hi <= 99991231) {
        snprintf(f->dates[1], sizeof f->dates[1], "%08d", (int)v->hi);
        f->date_hi = f->dates[1];
    }
}

void mwl_filter_from_query(const mwl_query *q, mwl_filter *f)
{
    mwl_filter_init(f);
    const struct {
        uint32_t path[2];
        size_t depth;
        mwl_filter_cond *cond;
        size_t slot; /* f->text[slot] */
        bool pn;
    } keys[] = {
        {{sps_tag, MWL_TAG_ScheduledStationAETitle}, 2, &f->station_aet, 0, false},
        {{sps_tag, MWL_TAG_Modality}, 2, &f->modality, 1, false},
        {{sps_tag, MWL_TAG_ScheduledProcedureStepID}, 2, &f->sps_id, 2, false},
        {{sps_tag, MWL_TAG_ScheduledProcedureStepStatus}, 2, &f->sps_status, 3, false},
        {{MWL_TAG_PatientID, 0}, 1, &f->patient_id, 4, false},
        {{MWL_TAG_PatientName, 0}, 1, &f->patient_name, 5, true},
        {{MWL_TAG_AccessionNumber, 0}, 1, &f->accession, 6, false},
        {{MWL_TAG_StudyInstanceUID, 0}, 1, &f->study_uid, 7, false},
        {{MWL_TAG_RequestedProcedureID, 0}, 1, &f->requested_procedure_id, 8, false},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        narrow_text(q, keys[i].path, keys[i].depth, keys[i].cond, f->text[keys[i].slot], keys[i].pn);
    narrow_date(q, f);
}

/* ---- stored values ----------------------------------------------------------- */

bool mwl_wl_stored_elem(const mwl_ds *ds, uint32_t tag, mwl_elem *out)
{
    const mwl_elem *e = mwl_ds_find(ds, tag);
    if (!e)
        return false;
    *out = *e;
    /* An element coded UN (e.g. by a converter that did not know it) is
     * read with its dictionary VR, as the matcher reads it. */
    if (out->vr == MWL_VR_UN)
        out->vr = mwl_dict_vr(tag);
    return true;
}

int mwl_wl_value_count(const mwl_ds *ds, const mwl_elem *e, mwl_arena *scratch, size_t *count, mwl_diag *diag)
{
    *count = 0;
    if (e->length == 0 || !mwl_vr_is_string(e->vr))
        return MWL_OK;
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    if (info->kind == MWL_VR_KIND_TEXT) {
        *count = 1;
        return MWL_OK;
    }
    if (!info->charset || mwl_wl_plain_ascii(e)) {
        *count = mwl_elem_vm(e);
        return MWL_OK;
    }
    const char *s;
    size_t len;
    int rc = mwl_ds_get_utf8_all(ds, e, scratch, &s, &len, diag);
    if (rc != MWL_OK)
        return rc;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\\';
    *count = n;
    return MWL_OK;
}

#define TAGFMT "%s (%04X,%04X)"
#define TAGARG(t) mwl_dict_keyword(t), (unsigned)MWL_TAG_GROUP(t), (unsigned)MWL_TAG_ELEMENT(t)

/* The one value of `tag` in `ds` as trimmed UTF-8 in the arena; NULL when
 * absent or empty. Several values: MWL_E_INVALID (see MWL_ITEM_MULTI_VALUED). */
static int single_value(const mwl_ds *ds, uint32_t tag, mwl_arena *arena, const char **out, mwl_diag *diag)
{
    *out = NULL;
    mwl_elem e;
    if (!mwl_wl_stored_elem(ds, tag, &e) || e.length == 0 || !mwl_vr_is_string(e.vr))
        return MWL_OK;
    size_t n;
    int rc = mwl_wl_value_count(ds, &e, arena, &n, diag);
    if (rc != MWL_OK)
        return rc;
    if (n > 1) {
        mwl_diag_set(diag, 0, tag, TAGFMT " has %zu values but value multiplicity 1", TAGARG(tag), n);
        return MWL_E_INVALID;
    }
    const char *s;
    rc = mwl_ds_get_utf8(ds, &e, 0, arena, &s, diag);
    if (rc == MWL_E_NOTFOUND)
        return MWL_OK;
    if (rc != MWL_OK)
        return rc;
    *out = s[0] ? s : NULL;
    return MWL_OK;
}

static bool listed(const char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0)
            return true;
    }
    return false;
}

static int stations_of(const mwl_ds *sps, mwl_arena *arena, mwl_sps_index *ix)
{
    mwl_elem e;
    if (!mwl_wl_stored_elem(sps, MWL_TAG_ScheduledStationAETitle, &e) || !mwl_vr_is_string(e.vr))
        return MWL_OK;
    size_t n = mwl_elem_vm(&e);
    if (n == 0)
        return MWL_OK;
    const char **list = mwl_arena_alloc(arena, n * sizeof *list);
    if (!list)
        return MWL_E_NOMEM;
    ix->stations = list;
    for (size_t i = 0; i < n; i++) {
        const char *v;
        size_t len;
        if (mwl_elem_get_str(&e, i, &v, &len) != MWL_OK || len == 0)
            continue;
        char *copy = mwl_arena_strndup(arena, v, len);
        if (!copy)
            return MWL_E_NOMEM;
        if (!listed(list, ix->station_count, copy))
            list[ix->station_count++] = copy;
    }
    return MWL_OK;
}

/* Every non-empty component group of the name, in index form. */
static int names_of(const char *name, mwl_arena *arena, mwl_sps_index *ix)
{
    mwl_wbuf w;
    mwl_wbuf_init(&w, arena->mem);
    mwl_pn_index_form(name, strlen(name), true, &w);
    int rc = w.status;
    size_t groups = 1;
    for (size_t i = 0; rc == MWL_OK && i < w.len; i++)
        groups += w.data[i] == '=';
    const char **list = rc == MWL_OK ? mwl_arena_alloc(arena, groups * sizeof *list) : NULL;
    if (rc == MWL_OK && !list)
        rc = MWL_E_NOMEM;
    const char *g = (const char *)w.data;
    size_t left = w.len;
    while (rc == MWL_OK && left) {
        const char *eq = memchr(g, '=', left);
        size_t glen = eq ? (size_t)(eq - g) : left;
        if (glen) {
            char *copy = mwl_arena_strndup(arena, g, glen);
            if (!copy)
                rc = MWL_E_NOMEM;
            else if (!listed(list, ix->name_count, copy))
                list[ix->name_count++] = copy;
        }
        if (!eq)
            break;
        left -= glen + 1;
        g = eq + 1;
    }
    ix->names = list;
    mwl_wbuf_clear(&w);
    return rc;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The row's identity (see mwl_sps_index.natural_key). The strings are
 * those of the first schema, so stored rows keep their identity. */
static int natural_key(mwl_sps_index *ix, mwl_arena *arena)
{
    /* Each part is length-prefixed, so no value can fake a separator; the
     * worklist (per called AE title) is part of the identity, so the same
     * item in two AE folders is two rows. */
#define KEY_PART(v) (int)strlen((v) ? (v) : ""), (v) ? (v) : ""
    const char *wl = ix->worklist_aet;
    int n;
    char *key;
    if (ix->sps_id && (ix->study_uid || ix->accession)) {
        n = snprintf(NULL, 0, "sps|%d:%s|%d:%s|%d:%s|%d:%s|%d:%s", KEY_PART(ix->study_uid),
                     KEY_PART(ix->accession), KEY_PART(ix->requested_procedure_id), KEY_PART(ix->sps_id),
                     KEY_PART(wl));
        if (n < 0 || !(key = mwl_arena_alloc(arena, (size_t)n + 1)))
            return MWL_E_NOMEM;
        snprintf(key, (size_t)n + 1, "sps|%d:%s|%d:%s|%d:%s|%d:%s|%d:%s", KEY_PART(ix->study_uid),
                 KEY_PART(ix->accession), KEY_PART(ix->requested_procedure_id), KEY_PART(ix->sps_id),
                 KEY_PART(wl));
    } else {
        /* Without an SPS ID the content itself is the identity, so storing
         * the same file twice does not duplicate it. */
        unsigned long long h = (unsigned long long)fnv1a(ix->dataset, ix->dataset_length);
        n = snprintf(NULL, 0, "content|%016llx|%zu|%d:%s", h, ix->dataset_length, KEY_PART(wl));
        if (n < 0 || !(key = mwl_arena_alloc(arena, (size_t)n + 1)))
            return MWL_E_NOMEM;
        snprintf(key, (size_t)n + 1, "content|%016llx|%zu|%d:%s", h, ix->dataset_length, KEY_PART(wl));
    }
#undef KEY_PART
    ix->natural_key = key;
    return MWL_OK;
}

int mwl_sps_index_build(const mwl_ds *row, const mwl_ds *sps, const char *worklist_aet, mwl_arena *arena,
                        mwl_sps_index *out, mwl_diag *diag)
{
    static const struct {
        uint32_t tag;
        bool in_sps;
        size_t offset;
    } columns[] = {
        {MWL_TAG_ScheduledProcedureStepStartDate, true, offsetof(mwl_sps_index, start_date)},
        {MWL_TAG_ScheduledProcedureStepStartTime, true, offsetof(mwl_sps_index, start_time)},
        {MWL_TAG_Modality, true, offsetof(mwl_sps_index, modality)},
        {MWL_TAG_ScheduledProcedureStepID, true, offsetof(mwl_sps_index, sps_id)},
        {MWL_TAG_ScheduledProcedureStepStatus, true, offsetof(mwl_sps_index, sps_status)},
        {MWL_TAG_PatientID, false, offsetof(mwl_sps_index, patient_id)},
        {MWL_TAG_AccessionNumber, false, offsetof(mwl_sps_index, accession)},
        {MWL_TAG_StudyInstanceUID, false, offsetof(mwl_sps_index, study_uid)},
        {MWL_TAG_RequestedProcedureID, false, offsetof(mwl_sps_index, requested_procedure_id)},
    };
    mwl_sps_index ix;
    memset(&ix, 0, sizeof ix);
    int rc = MWL_OK;
    for (size_t i = 0; rc == MWL_OK && i < sizeof columns / sizeof columns[0]; i++)
        rc = single_value(columns[i].in_sps ? sps : row, columns[i].tag, arena,
                          (const char **)((char *)&ix + columns[i].offset), diag);
    const char *name = NULL;
    if (rc == MWL_OK)
        rc = single_value(row, MWL_TAG_PatientName, arena, &name, diag);
    if (rc != MWL_OK)
        return rc;

    /* Dates and times are compared and ordered as text: keep one spelling
     * per meaning (the retired YYYY.MM.DD and HH:MM:SS forms, fractions of
     * any length). */
    char canon[32];
    if (ix.start_date) {
        mwl_date d;
        if (mwl_date_parse(ix.start_date, strlen(ix.start_date), &d) != MWL_OK) {
            mwl_diag_set(diag, 0, MWL_TAG_ScheduledProcedureStepStartDate, TAGFMT " '%s' is not a date",
                         TAGARG(MWL_TAG_ScheduledProcedureStepStartDate), ix.start_date);
            return MWL_E_INVALID;
        }
        mwl_date_format(&d, canon, sizeof canon);
        if (!(ix.start_date = mwl_arena_strndup(arena, canon, strlen(canon))))
            return MWL_E_NOMEM;
    }
    if (ix.start_time) {
        mwl_time t;
        if (mwl_time_parse(ix.start_time, strlen(ix.start_time), &t) != MWL_OK) {
            mwl_diag_set(diag, 0, MWL_TAG_ScheduledProcedureStepStartTime, TAGFMT " '%s' is not a time",
                         TAGARG(MWL_TAG_ScheduledProcedureStepStartTime), ix.start_time);
            return MWL_E_INVALID;
        }
        mwl_time_format(&t, canon, sizeof canon);
        if (!(ix.start_time = mwl_arena_strndup(arena, canon, strlen(canon))))
            return MWL_E_NOMEM;
    }
    if (!ix.start_date)
        ix.start_date = "";
    if (!ix.start_time)
        ix.start_time = "";

    const mwl_elem *cs = mwl_ds_find(row, MWL_TAG_SpecificCharacterSet);
    if (cs && cs->length && !(ix.charset = mwl_arena_strndup(arena, (const char *)cs->value, cs->length)))
        return MWL_E_NOMEM;
    if (worklist_aet && !(ix.worklist_aet = mwl_arena_strndup(arena, worklist_aet, strlen(worklist_aet))))
        return MWL_E_NOMEM;
    rc = stations_of(sps, arena, &ix);
    if (rc == MWL_OK && name)
        rc = names_of(name, arena, &ix);
    if (rc != MWL_OK)
        return rc;

    mwl_wbuf w;
    mwl_wbuf_init(&w, arena->mem);
    rc = mwl_ds_encode(row, MWL_TS_EXPLICIT_LE, &w);
    if (rc == MWL_OK && !(ix.dataset = mwl_arena_memdup(arena, w.data, w.len)))
        rc = MWL_E_NOMEM;
    ix.dataset_length = w.len;
    mwl_wbuf_clear(&w);
    if (rc != MWL_OK) {
        if (rc != MWL_E_NOMEM)
            mwl_diag_set(diag, 0, 0, "cannot encode the item: %s", mwl_status_str(rc));
        return rc;
    }
    rc = natural_key(&ix, arena);
    if (rc == MWL_OK)
        *out = ix;
    return rc;
}
