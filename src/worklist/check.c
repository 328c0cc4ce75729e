/* Checking a worklist item before it is stored (worklist.h,
 * mwl_worklist_check_item): one list of rejection reasons for every intake
 * (files, HL7, REST) and for the store itself. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dicom/charset.h"
#include "dicom/datetime.h"
#include "dicom/dict.h"
#include "worklist/worklist_int.h"

/* The keys a modality needs to start an exam (return type 1 in PS3.4
 * Table K.6-1). */
static const uint32_t required_item_keys[] = {MWL_TAG_PatientName, MWL_TAG_PatientID,
                                              MWL_TAG_StudyInstanceUID, MWL_TAG_RequestedProcedureID};
static const uint32_t required_sps_keys[] = {
    MWL_TAG_ScheduledStationAETitle, MWL_TAG_ScheduledProcedureStepStartDate,
    MWL_TAG_ScheduledProcedureStepStartTime, MWL_TAG_Modality, MWL_TAG_ScheduledProcedureStepID};

/* Keys of value multiplicity 1 that the store indexes (mwl_sps_index): a
 * stored value with several could only be indexed by one of them, while
 * the matcher matches any (C.2.2.3). */
static const uint32_t single_item_keys[] = {MWL_TAG_PatientName, MWL_TAG_PatientID, MWL_TAG_AccessionNumber,
                                            MWL_TAG_StudyInstanceUID, MWL_TAG_RequestedProcedureID};
static const uint32_t single_sps_keys[] = {
    MWL_TAG_ScheduledProcedureStepStartDate, MWL_TAG_ScheduledProcedureStepStartTime, MWL_TAG_Modality,
    MWL_TAG_ScheduledProcedureStepID, MWL_TAG_ScheduledProcedureStepStatus};

#define TAGFMT "%s (%04X,%04X)"
#define TAGARG(t) mwl_dict_keyword(t), (unsigned)MWL_TAG_GROUP(t), (unsigned)MWL_TAG_ELEMENT(t)

const char *mwl_item_problem_name(mwl_item_code code)
{
    switch (code) {
    case MWL_ITEM_OK: return "ok";
    case MWL_ITEM_NO_SPS_SEQUENCE: return "no-sps-sequence";
    case MWL_ITEM_MISSING_KEY: return "missing-key";
    case MWL_ITEM_MULTI_VALUED: return "multi-valued";
    case MWL_ITEM_NO_IDENTITY: return "no-identity";
    case MWL_ITEM_BAD_CHARSET: return "bad-charset";
    case MWL_ITEM_BAD_VALUE: return "bad-value";
    case MWL_ITEM_DUPLICATE_SPS: return "duplicate-sps";
    }
    return "unknown";
}

typedef struct check_ctx {
    mwl_item_problem *out;
    mwl_arena scratch;
} check_ctx;

static int refuse(check_ctx *c, mwl_item_code code, uint32_t tag, size_t sps_index, const char *fmt, ...)
    MWL_PRINTF(5, 6);
static int refuse(check_ctx *c, mwl_item_code code, uint32_t tag, size_t sps_index, const char *fmt, ...)
{
    mwl_item_problem *p = c->out;
    p->code = code;
    p->tag = tag;
    p->sps_index = sps_index;
    size_t n = 0;
    if (sps_index != SIZE_MAX)
        n = (size_t)snprintf(p->msg, sizeof p->msg, "SPS item %zu: ", sps_index + 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg + n, sizeof p->msg - n, fmt, ap);
    va_end(ap);
    return MWL_E_INVALID;
}

static bool has_value(const mwl_ds *ds, uint32_t tag)
{
    const mwl_elem *e = mwl_ds_find(ds, tag);
    if (!e || e->length == 0)
        return false;
    for (uint32_t i = 0; i < e->length; i++) {
        if (e->value[i] != ' ' && e->value[i] != '\0')
            return true;
    }
    return false;
}

/* Every text value affected by the character set decodes, in items too. */
static int check_text(check_ctx *c, const mwl_ds *ds, size_t sps_index)
{
    /* A sequence item may carry its own Specific Character Set (PS3.5
     * 7.5.3); the store reads it (for an SPS item, the row's), so it must
     * be one we know even when every value in the item is ASCII. */
    if (mwl_ds_find(ds, MWL_TAG_SpecificCharacterSet)) {
        mwl_charset cs;
        mwl_diag d;
        mwl_diag_clear(&d);
        if (mwl_charset_of(ds, &cs, &d) != MWL_OK)
            return refuse(c, MWL_ITEM_BAD_CHARSET, MWL_TAG_SpecificCharacterSet, sps_index,
                          "Specific Character Set (0008,0005): %s", d.msg[0] ? d.msg : "not supported");
    }
    for (size_t i = 0, n = mwl_ds_count(ds); i < n; i++) {
        const mwl_elem *e = mwl_ds_at(ds, i);
        if (e->vr == MWL_VR_SQ) {
            for (size_t k = 0; k < e->item_count; k++) {
                int rc = check_text(c, e->items[k], sps_index);
                if (rc != MWL_OK)
                    return rc;
            }
            continue;
        }
        mwl_elem v = *e;
        if (v.vr == MWL_VR_UN)
            v.vr = mwl_dict_vr(v.tag);
        if (v.length == 0 || !mwl_vr_is_string(v.vr) || !mwl_vr_get_info(v.vr)->charset ||
            mwl_wl_plain_ascii(&v))
            continue;
        const char *s;
        size_t len;
        mwl_diag d;
        mwl_diag_clear(&d);
        int rc = mwl_ds_get_utf8_all(ds, &v, &c->scratch, &s, &len, &d);
        if (rc == MWL_E_NOMEM)
            return rc;
        if (rc != MWL_OK)
            return refuse(c, MWL_ITEM_BAD_CHARSET, v.tag, sps_index, TAGFMT ": %s", TAGARG(v.tag),
                          d.msg[0] ? d.msg : mwl_status_str(rc));
    }
    return MWL_OK;
}

static int check_single(check_ctx *c, const mwl_ds *ds, const uint32_t *tags, size_t n, size_t sps_index)
{
    for (size_t i = 0; i < n; i++) {
        mwl_elem e;
        if (!mwl_wl_stored_elem(ds, tags[i], &e))
            continue;
        size_t count;
        mwl_diag d;
        mwl_diag_clear(&d);
        int rc = mwl_wl_value_count(ds, &e, &c->scratch, &count, &d);
        if (rc == MWL_E_NOMEM)
            return rc;
        if (rc != MWL_OK)
            return refuse(c, MWL_ITEM_BAD_CHARSET, tags[i], sps_index, TAGFMT ": %s", TAGARG(tags[i]), d.msg);
        if (count > 1)
            return refuse(c, MWL_ITEM_MULTI_VALUED, tags[i], sps_index,
                          TAGFMT " has %zu values but value multiplicity 1", TAGARG(tags[i]), count);
    }
    return MWL_OK;
}

static int check_dates(check_ctx *c, const mwl_ds *sps, size_t sps_index)
{
    static const uint32_t tags[] = {MWL_TAG_ScheduledProcedureStepStartDate,
                                    MWL_TAG_ScheduledProcedureStepStartTime};
    for (size_t i = 0; i < 2; i++) {
        mwl_elem e;
        const char *s;
        size_t len;
        if (!mwl_wl_stored_elem(sps, tags[i], &e) || e.length == 0 || !mwl_vr_is_string(e.vr) ||
            mwl_elem_get_str(&e, 0, &s, &len) != MWL_OK || len == 0)
            continue;
        bool ok;
        if (i == 0) {
            mwl_date d;
            ok = mwl_date_parse(s, len, &d) == MWL_OK;
        } else {
            mwl_time t;
            ok = mwl_time_parse(s, len, &t) == MWL_OK;
        }
        if (!ok)
            return refuse(c, MWL_ITEM_BAD_VALUE, tags[i], sps_index, TAGFMT " '%.*s' is not a %s",
                          TAGARG(tags[i]), len > 32 ? 32 : (int)len, s, i == 0 ? "date" : "time");
    }
    return MWL_OK;
}

/* The SPS ID of `sps` as its natural key holds it (trimmed UTF-8, see
 * single_value in narrow.c), in the scratch arena; NULL when absent or
 * empty. The text decoded in check_text, so only MWL_E_NOMEM fails. */
static int sps_id_utf8(check_ctx *c, const mwl_ds *sps, const char **out)
{
    *out = NULL;
    mwl_elem e;
    if (!mwl_wl_stored_elem(sps, MWL_TAG_ScheduledProcedureStepID, &e) || e.length == 0 ||
        !mwl_vr_is_string(e.vr))
        return MWL_OK;
    const char *s;
    int rc = mwl_ds_get_utf8(sps, &e, 0, &c->scratch, &s, NULL);
    if (rc == MWL_E_NOMEM)
        return rc;
    if (rc == MWL_OK && s[0])
        *out = s;
    return MWL_OK;
}

static int check_item(check_ctx *c, const mwl_ds *item, unsigned flags)
{
    const uint32_t seq_tag = MWL_TAG_ScheduledProcedureStepSequence;
    const mwl_elem *seq = mwl_ds_find(item, seq_tag);
    if (!seq || seq->vr != MWL_VR_SQ || seq->item_count == 0)
        return refuse(c, MWL_ITEM_NO_SPS_SEQUENCE, seq_tag, SIZE_MAX,
                      "missing Scheduled Procedure Step Sequence (0040,0100)");

    mwl_charset cs;
    mwl_diag d;
    mwl_diag_clear(&d);
    if (mwl_charset_of(item, &cs, &d) != MWL_OK)
        return refuse(c, MWL_ITEM_BAD_CHARSET, MWL_TAG_SpecificCharacterSet, SIZE_MAX,
                      "Specific Character Set (0008,0005): %s", d.msg[0] ? d.msg : "not supported");
    int rc = check_text(c, item, SIZE_MAX);
    if (rc != MWL_OK)
        return rc;

    rc = check_single(c, item, single_item_keys, sizeof single_item_keys / sizeof single_item_keys[0],
                      SIZE_MAX);
    for (size_t k = 0; rc == MWL_OK && k < seq->item_count; k++)
        rc = check_single(c, seq->items[k], single_sps_keys,
                          sizeof single_sps_keys / sizeof single_sps_keys[0], k);
    for (size_t k = 0; rc == MWL_OK && k < seq->item_count; k++)
        rc = check_dates(c, seq->items[k], k);
    if (rc != MWL_OK)
        return rc;

    if (!(flags & MWL_CHECK_LENIENT)) {
        for (size_t i = 0; i < sizeof required_item_keys / sizeof required_item_keys[0]; i++) {
            uint32_t t = required_item_keys[i];
            if (!has_value(item, t))
                return refuse(c, MWL_ITEM_MISSING_KEY, t, SIZE_MAX, "missing type 1 key " TAGFMT, TAGARG(t));
        }
        for (size_t k = 0; k < seq->item_count; k++) {
            for (size_t i = 0; i < sizeof required_sps_keys / sizeof required_sps_keys[0]; i++) {
                uint32_t t = required_sps_keys[i];
                if (!has_value(seq->items[k], t))
                    return refuse(c, MWL_ITEM_MISSING_KEY, t, k, "missing type 1 key " TAGFMT, TAGARG(t));
            }
        }
    }

    if (flags & MWL_CHECK_IDENTITY) {
        if (!has_value(item, MWL_TAG_StudyInstanceUID) && !has_value(item, MWL_TAG_AccessionNumber))
            return refuse(c, MWL_ITEM_NO_IDENTITY, MWL_TAG_StudyInstanceUID, SIZE_MAX,
                          "neither " TAGFMT " nor " TAGFMT ": the item could never be updated",
                          TAGARG(MWL_TAG_StudyInstanceUID), TAGARG(MWL_TAG_AccessionNumber));
        for (size_t k = 0; k < seq->item_count; k++) {
            if (!has_value(seq->items[k], MWL_TAG_ScheduledProcedureStepID))
                return refuse(c, MWL_ITEM_NO_IDENTITY, MWL_TAG_ScheduledProcedureStepID, k,
                              "no " TAGFMT ": the SPS could never be updated",
                              TAGARG(MWL_TAG_ScheduledProcedureStepID));
        }
    }

    /* Two SPS items with one SPS ID would be one stored SPS (the same
     * natural key): the second would silently replace the first. Compared
     * as the natural key holds them, decoded to UTF-8 (mwl_sps_index_build):
     * raw bytes differ for one ID spelled with a redundant ISO 2022 escape
     * (an item with "SPS1" and "ESC ( B SPS1" passed, and one SPS replaced
     * the other: fuzz/corpus/fuzz_import/crash-*). */
    const char **ids = mwl_arena_alloc(&c->scratch, seq->item_count * sizeof *ids);
    if (!ids)
        return MWL_E_NOMEM;
    for (size_t k = 0; k < seq->item_count; k++) {
        rc = sps_id_utf8(c, seq->items[k], &ids[k]);
        if (rc != MWL_OK)
            return rc;
        for (size_t j = 0; ids[k] && j < k; j++) {
            if (ids[j] && strcmp(ids[k], ids[j]) == 0)
                return refuse(c, MWL_ITEM_DUPLICATE_SPS, MWL_TAG_ScheduledProcedureStepID, k,
                              "same " TAGFMT " '%.32s' as SPS item %zu",
                              TAGARG(MWL_TAG_ScheduledProcedureStepID), ids[k], j + 1);
        }
    }
    return MWL_OK;
}

int mwl_worklist_check_item(const mwl_ds *item, unsigned flags, mwl_item_problem *out)
{
    mwl_item_problem local;
    check_ctx c;
    c.out = out ? out : &local;
    memset(c.out, 0, sizeof *c.out);
    c.out->sps_index = SIZE_MAX;
    /* scratch for decoded text, from the item's own allocator */
    mwl_arena *owner = mwl_ds_arena(item);
    mwl_arena_init(&c.scratch, owner ? owner->mem : NULL);
    int rc = check_item(&c, item, flags);
    mwl_arena_clear(&c.scratch);
    if (rc == MWL_E_NOMEM)
        memset(c.out, 0, sizeof *c.out);
    return rc;
}
