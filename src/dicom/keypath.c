/* Key paths and values from text (keypath.h). Moved from `mwl find -k`,
 * whose behaviour and messages it keeps. */
#include "dicom/keypath.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/dict.h"

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool hex_digits(const char *s, size_t n, uint32_t *v)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return false;
        *v = (*v << 4) | d;
    }
    return true;
}

bool mwl_tag_parse(const char *s, size_t len, uint32_t *tag)
{
    uint32_t v = 0;
    if (len == 8) {
        if (!hex_digits(s, 8, &v))
            return false;
        *tag = v;
        return true;
    }
    if (len == 11 && s[0] == '(' && s[10] == ')') {
        s++;
        len = 9;
    }
    if (len != 9 || s[4] != ',' || !hex_digits(s, 4, &v) || !hex_digits(s + 5, 4, &v))
        return false;
    *tag = v;
    return true;
}

/* One path component: a keyword or tag, with an optional [N]. */
static int parse_step(const char *s, size_t len, mwl_keypath_step *out, mwl_diag *diag)
{
    out->index = -1;
    const char *bracket = memchr(s, '[', len);
    if (bracket) {
        size_t tail = len - (size_t)(bracket - s);
        char num[16];
        if (tail < 3 || s[len - 1] != ']' || tail - 2 >= sizeof num) {
            mwl_diag_set(diag, 0, 0, "bad item index in '%.*s'", (int)len, s);
            return MWL_E_INVALID;
        }
        memcpy(num, bracket + 1, tail - 2);
        num[tail - 2] = '\0';
        if (!parse_long(num, 0, 10000, &out->index)) {
            mwl_diag_set(diag, 0, 0, "bad item index in '%.*s'", (int)len, s);
            return MWL_E_INVALID;
        }
        len = (size_t)(bracket - s);
    }
    char name[80];
    if (len == 0 || len >= sizeof name) {
        mwl_diag_set(diag, 0, 0, "empty or overlong key in the path");
        return MWL_E_INVALID;
    }
    memcpy(name, s, len);
    name[len] = '\0';
    /* Keywords first: none is 8 hex digits today, and one that were would
     * still be meant as the keyword. */
    const mwl_dict_entry *e = mwl_dict_find_keyword(name);
    if (e) {
        out->tag = e->tag;
        out->vr = (mwl_vr)e->vr;
        return MWL_OK;
    }
    if (mwl_tag_parse(name, len, &out->tag)) {
        if (mwl_tag_is_private(out->tag) || !mwl_dict_find(out->tag)) {
            mwl_diag_set(diag, 0, out->tag,
                         "(%04x,%04x) is not in the data dictionary, so its VR is not known",
                         (unsigned)MWL_TAG_GROUP(out->tag), (unsigned)MWL_TAG_ELEMENT(out->tag));
            return MWL_E_INVALID;
        }
        out->vr = mwl_dict_vr(out->tag);
        return MWL_OK;
    }
    mwl_diag_set(diag, 0, 0, "unknown keyword '%s' (keywords are PS3.6's, e.g. PatientName)", name);
    return MWL_E_INVALID;
}

int mwl_keypath_parse(const char *text, size_t len, mwl_keypath *out, mwl_diag *diag)
{
    mwl_diag_clear(diag);
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '.')
            continue;
        if (n == MWL_KEYPATH_MAX_STEPS) {
            mwl_diag_set(diag, 0, 0, "key path nested deeper than %d levels", MWL_KEYPATH_MAX_STEPS);
            return MWL_E_INVALID;
        }
        int rc = parse_step(text + start, i - start, &out->steps[n], diag);
        if (rc != MWL_OK)
            return rc;
        n++;
        start = i + 1;
    }
    out->count = n;
    return MWL_OK;
}

/* ---- values from text -------------------------------------------------------- */

int mwl_value_from_text(mwl_vr vr, const char *value, mwl_wbuf *out, mwl_diag *diag)
{
    const char *p = value;
    while (*p) {
        const char *end = strchr(p, '\\');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char tmp[64];
        if (n == 0 || n >= sizeof tmp) {
            mwl_diag_set(diag, 0, 0, "bad value '%s' for VR %s", value, mwl_vr_code(vr));
            return MWL_E_INVALID;
        }
        memcpy(tmp, p, n);
        tmp[n] = '\0';
        long l = 0;
        char *stop = NULL;
        bool ok = true;
        uint8_t b[8];
        size_t size = 0;
        switch (vr) {
        case MWL_VR_US:
            ok = parse_long(tmp, 0, 65535, &l);
            mwl_store_u16le(b, (uint16_t)l);
            size = 2;
            break;
        case MWL_VR_SS:
            ok = parse_long(tmp, -32768, 32767, &l);
            mwl_store_u16le(b, (uint16_t)(int16_t)l);
            size = 2;
            break;
        case MWL_VR_UL:
            ok = parse_long(tmp, 0, 4294967295L, &l);
            mwl_store_u32le(b, (uint32_t)l);
            size = 4;
            break;
        case MWL_VR_SL:
            ok = parse_long(tmp, -2147483647L - 1, 2147483647L, &l);
            mwl_store_u32le(b, (uint32_t)(int32_t)l);
            size = 4;
            break;
        case MWL_VR_SV:
        case MWL_VR_UV: {
            errno = 0;
            uint64_t v;
            if (vr == MWL_VR_SV) {
                v = (uint64_t)strtoll(tmp, &stop, 10);
            } else {
                v = (uint64_t)strtoull(tmp, &stop, 10);
                ok = !strchr(tmp, '-');
            }
            ok = ok && errno == 0 && stop != tmp && *stop == '\0';
            mwl_store_u64le(b, v);
            size = 8;
            break;
        }
        case MWL_VR_FL:
        case MWL_VR_FD: {
            errno = 0;
            double d = strtod(tmp, &stop);
            ok = errno == 0 && stop != tmp && *stop == '\0';
            if (vr == MWL_VR_FL) {
                ok = ok && !(isfinite(d) && fabs(d) > FLT_MAX);
                float f = (float)d;
                uint32_t bits;
                memcpy(&bits, &f, sizeof bits);
                mwl_store_u32le(b, bits);
                size = 4;
            } else {
                uint64_t bits;
                memcpy(&bits, &d, sizeof bits);
                mwl_store_u64le(b, bits);
                size = 8;
            }
            break;
        }
        case MWL_VR_AT: {
            uint32_t t = 0;
            const mwl_dict_entry *e = mwl_dict_find_keyword(tmp);
            if (e)
                t = e->tag;
            else
                ok = mwl_tag_parse(tmp, n, &t);
            mwl_store_u16le(b, MWL_TAG_GROUP(t));
            mwl_store_u16le(b + 2, MWL_TAG_ELEMENT(t));
            size = 4;
            break;
        }
        default:
            mwl_diag_set(diag, 0, 0, "values of VR %s cannot be given as text", mwl_vr_code(vr));
            return MWL_E_INVALID;
        }
        if (!ok) {
            mwl_diag_set(diag, 0, 0, "bad value '%s' for VR %s", tmp, mwl_vr_code(vr));
            return MWL_E_INVALID;
        }
        mwl_wbuf_put(out, b, size);
        p += n;
        if (*p == '\\')
            p++;
    }
    return out->status;
}

/* ---- setting ----------------------------------------------------------------- */

/* The item `st->index` (-1 = 0) of sequence `st->tag` in `ds`, created
 * (with the sequence) when it is the next one. */
static int get_item(mwl_ds *ds, const mwl_keypath_step *st, mwl_ds **item, mwl_diag *diag)
{
    const mwl_elem *e = mwl_ds_find(ds, st->tag);
    size_t index = st->index < 0 ? 0 : (size_t)st->index;
    size_t count = e ? e->item_count : 0;
    if (e && e->vr != MWL_VR_SQ) {
        mwl_diag_set(diag, 0, st->tag, "%s is not a sequence", mwl_dict_keyword(st->tag));
        return MWL_E_INVALID;
    }
    if (index < count) {
        *item = e->items[index];
        return MWL_OK;
    }
    if (index > count) {
        mwl_diag_set(diag, 0, st->tag, "%s has %zu item(s): item [%zu] would leave a gap",
                     mwl_dict_keyword(st->tag), count, index);
        return MWL_E_INVALID;
    }
    return mwl_ds_add_item(ds, st->tag, item);
}

int mwl_keypath_set(mwl_ds *root, const mwl_keypath *path, const char *value, const mwl_charset *cs,
                    mwl_diag *diag)
{
    mwl_diag_clear(diag);
    if (!root || !path || path->count == 0 || path->count > MWL_KEYPATH_MAX_STEPS)
        return MWL_E_INVALID;
    mwl_ds *ds = root;
    for (size_t i = 0; i + 1 < path->count; i++) {
        if (path->steps[i].vr != MWL_VR_SQ) {
            mwl_diag_set(diag, 0, path->steps[i].tag, "%s is not a sequence",
                         mwl_dict_keyword(path->steps[i].tag));
            return MWL_E_INVALID;
        }
        int rc = get_item(ds, &path->steps[i], &ds, diag);
        if (rc != MWL_OK)
            return rc;
    }
    const mwl_keypath_step *last = &path->steps[path->count - 1];
    if (last->vr == MWL_VR_SQ) {
        if (value && *value) {
            mwl_diag_set(diag, 0, last->tag, "%s is a sequence: it takes no value",
                         mwl_dict_keyword(last->tag));
            return MWL_E_INVALID;
        }
        const mwl_elem *e = mwl_ds_find(ds, last->tag);
        if (last->index >= 0) {
            mwl_ds *item;
            return get_item(ds, last, &item, diag);
        }
        if (e && e->vr == MWL_VR_SQ)
            return MWL_OK; /* keep what is already asked inside it */
        return mwl_ds_set_seq(ds, last->tag, NULL);
    }
    if (last->index >= 0) {
        mwl_diag_set(diag, 0, last->tag, "%s is not a sequence: no [N]", mwl_dict_keyword(last->tag));
        return MWL_E_INVALID;
    }
    if (!value)
        value = "";
    mwl_wbuf w;
    mwl_wbuf_init(&w, mwl_ds_arena(root)->mem);
    int rc;
    if (!mwl_vr_is_string(last->vr)) {
        rc = mwl_value_from_text(last->vr, value, &w, diag);
        if (rc == MWL_OK)
            rc = mwl_ds_set(ds, last->tag, last->vr, w.data, w.len);
    } else if (!mwl_vr_get_info(last->vr)->charset) {
        rc = mwl_ds_set_str(ds, last->tag, last->vr, value);
    } else {
        mwl_charset in_effect;
        rc = MWL_OK;
        if (!cs) {
            rc = mwl_charset_of(ds, &in_effect, diag);
            cs = &in_effect;
        }
        if (rc == MWL_OK)
            rc = mwl_charset_encode(cs, last->vr, value, strlen(value), &w, diag);
        mwl_wbuf_put_u8(&w, 0);
        if (rc == MWL_OK)
            rc = w.status;
        if (rc == MWL_OK)
            rc = mwl_ds_set_str(ds, last->tag, last->vr, (const char *)w.data);
    }
    mwl_wbuf_clear(&w);
    if (diag && rc != MWL_OK)
        diag->tag = last->tag;
    return rc;
}

int mwl_ds_set_path(mwl_ds *root, const char *path, size_t path_len, const char *value, const mwl_charset *cs,
                    mwl_diag *diag)
{
    mwl_keypath kp;
    int rc = mwl_keypath_parse(path, path_len, &kp, diag);
    if (rc != MWL_OK)
        return rc;
    return mwl_keypath_set(root, &kp, value, cs, diag);
}

const mwl_elem *mwl_keypath_find(const mwl_ds *ds, const mwl_keypath *path, const mwl_ds **holder)
{
    for (size_t i = 0; ds && i < path->count; i++) {
        const mwl_keypath_step *st = &path->steps[i];
        const mwl_elem *e = mwl_ds_find(ds, st->tag);
        if (!e)
            return NULL;
        if (i + 1 == path->count) {
            if (holder)
                *holder = ds;
            return e;
        }
        size_t index = st->index < 0 ? 0 : (size_t)st->index;
        if (e->vr != MWL_VR_SQ || index >= e->item_count)
            return NULL;
        ds = e->items[index];
    }
    return NULL;
}
