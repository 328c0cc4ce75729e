/* Site settings of the HL7 mapping (docs/hl7.md): hl7-station rules and
 * hl7-default rows, parsed from and formatted to their configuration
 * lines. */
#include "hl7/hl7.h"
#include "hl7/map_int.h"

#include <stdio.h>
#include <string.h>

#include "dicom/dict.h"
#include "dicom/tags_gen.h"
#include "dicom/vr.h"

void mwl_hl7_map_config_init(mwl_hl7_map_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->patient_issuer = "";
    cfg->uid_policy = MWL_HL7_UID_GENERATE;
    cfg->uid_root = "";
}

static bool copy_token(const char *s, size_t len, char *out, size_t cap)
{
    if (len >= cap)
        return false;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

int mwl_hl7_station_rule_parse(const char *text, mwl_hl7_station_rule *out, mwl_diag *diag)
{
    const char *tok[4];
    size_t len[4], n = 0;
    memset(out, 0, sizeof *out);
    for (const char *p = text; *p;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        if (n == 3) {
            mwl_diag_set(diag, (size_t)(p - text), 0,
                         "hl7-station: more than MODALITY[@LOCATION] AET [NAME]");
            return MWL_E_INVALID;
        }
        tok[n] = p;
        while (*p && !is_space(*p))
            p++;
        len[n] = (size_t)(p - tok[n]);
        n++;
    }
    if (n < 2) {
        mwl_diag_set(diag, 0, 0, "hl7-station: expected MODALITY[@LOCATION] AET [STATION_NAME]");
        return MWL_E_INVALID;
    }
    const char *at = memchr(tok[0], '@', len[0]);
    size_t mlen = at ? (size_t)(at - tok[0]) : len[0];
    if (!mlen || !copy_token(tok[0], mlen, out->modality, sizeof out->modality)) {
        mwl_diag_set(diag, 0, 0, "hl7-station: modality empty or longer than 16 characters");
        return MWL_E_INVALID;
    }
    if (at && (len[0] - mlen - 1 == 0 ||
               !copy_token(at + 1, len[0] - mlen - 1, out->location, sizeof out->location))) {
        mwl_diag_set(diag, 0, 0, "hl7-station: location empty or longer than 64 characters");
        return MWL_E_INVALID;
    }
    if (!copy_token(tok[1], len[1], out->aet, sizeof out->aet)) {
        mwl_diag_set(diag, (size_t)(tok[1] - text), 0, "hl7-station: AE title longer than 16 characters");
        return MWL_E_INVALID;
    }
    if (n == 3 && !copy_token(tok[2], len[2], out->station_name, sizeof out->station_name)) {
        mwl_diag_set(diag, (size_t)(tok[2] - text), 0, "hl7-station: station name longer than 16 characters");
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

int mwl_hl7_station_rule_format(const mwl_hl7_station_rule *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s%s %s%s%s", r->modality, r->location[0] ? "@" : "", r->location, r->aet,
                     r->station_name[0] ? " " : "", r->station_name);
    return n < 0 || (size_t)n >= cap ? MWL_E_LIMIT : MWL_OK;
}

/* (map_int.h) A default may name an attribute of the mapping table that holds a
 * plain string (not a sequence, not the identity done in code except the
 * station, which rules and defaults exist for). */
bool mwl_hl7_default_allowed(uint32_t tag)
{
    const mwl_hl7_map_row *row = mwl_hl7_map_row_find(tag);
    if (!row)
        return false;
    if (row->conv == MWL_HL7_CONV_SPECIAL && tag != MWL_TAG_ScheduledStationAETitle &&
        tag != MWL_TAG_ScheduledStationName)
        return false;
    return mwl_vr_is_string(mwl_dict_vr(tag));
}

int mwl_hl7_default_parse(const char *text, mwl_hl7_default *out, mwl_diag *diag)
{
    memset(out, 0, sizeof *out);
    const char *eq = strchr(text, '=');
    if (!eq) {
        mwl_diag_set(diag, 0, 0, "hl7-default: expected KEYWORD=VALUE");
        return MWL_E_INVALID;
    }
    const char *k = text, *kend = eq;
    while (is_space(*k))
        k++;
    while (kend > k && is_space(kend[-1]))
        kend--;
    const char *v = eq + 1, *vend = eq + strlen(eq);
    while (is_space(*v))
        v++;
    while (vend > v && is_space(vend[-1]))
        vend--;
    if (!copy_token(k, (size_t)(kend - k), out->keyword, sizeof out->keyword)) {
        mwl_diag_set(diag, 0, 0, "hl7-default: keyword too long");
        return MWL_E_INVALID;
    }
    const mwl_dict_entry *e = mwl_dict_find_keyword(out->keyword);
    if (!e) {
        mwl_diag_set(diag, 0, 0, "hl7-default: unknown keyword %s", out->keyword);
        return MWL_E_INVALID;
    }
    if (!mwl_hl7_default_allowed(e->tag)) {
        mwl_diag_set(diag, 0, e->tag, "hl7-default: %s is not a mapped worklist attribute with a text value",
                     out->keyword);
        return MWL_E_INVALID;
    }
    size_t vlen = (size_t)(vend - v);
    uint32_t max = mwl_vr_get_info((mwl_vr)e->vr)->max_len;
    if (!vlen || !copy_token(v, vlen, out->value, sizeof out->value) || (max && vlen > max) ||
        memchr(v, '\\', vlen)) {
        mwl_diag_set(diag, (size_t)(v - text), e->tag,
                     "hl7-default: %s: empty, too long or multi-valued value", out->keyword);
        return MWL_E_INVALID;
    }
    return MWL_OK;
}

int mwl_hl7_default_format(const mwl_hl7_default *d, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s=%s", d->keyword, d->value);
    return n < 0 || (size_t)n >= cap ? MWL_E_LIMIT : MWL_OK;
}
