/* Equality of two data sets as the DICOM JSON Model (PS3.18 F.2) sees
 * them, for round trips through dicom/json.h: what the model does not keep
 * is ignored, the rest must be equal. Used by json_test, json_decode_test
 * and fuzz_json.
 *   - group lengths (gggg,0000), group 0002 and (0008,0005) are skipped:
 *     text is compared in UTF-8, whatever character set holds it;
 *   - string values are compared one by one after the padding the model
 *     drops (mwl_elem_get_str's trimming), an absent value as empty; PN
 *     without trailing empty component groups and past the third group;
 *     IS and DS as numbers;
 *   - binary numbers by value (NaN equal to NaN), bytes as bytes, items in
 *     order, recursively. */
#ifndef MWL_TEST_DS_EQUIV_H
#define MWL_TEST_DS_EQUIV_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "dicom/charset.h"
#include "dicom/dataset.h"

static bool ds_equiv_skip(const mwl_elem *e)
{
    return MWL_TAG_ELEMENT(e->tag) == 0 || MWL_TAG_GROUP(e->tag) == 0x0002 ||
           e->tag == MWL_TAG_SpecificCharacterSet;
}

/* Value `i` of a string element in UTF-8, trimmed, "" when absent; NULL
 * when it does not convert. */
static const char *ds_equiv_text(const mwl_ds *ds, const mwl_elem *e, size_t i, mwl_arena *a)
{
    if (i >= mwl_elem_vm(e))
        return "";
    const char *s = NULL;
    if (mwl_ds_get_utf8(ds, e, i, a, &s, NULL) != MWL_OK)
        return NULL;
    if (e->vr == MWL_VR_PN) {
        char *p = mwl_arena_strndup(a, s, strlen(s));
        if (!p)
            return NULL;
        char *third = strchr(p, '=');
        if (third)
            third = strchr(third + 1, '=');
        if (third)
            third = strchr(third + 1, '=');
        if (third)
            *third = '\0';
        size_t n = strlen(p);
        while (n && (p[n - 1] == '=' || p[n - 1] == ' '))
            p[--n] = '\0';
        s = p;
    }
    return s;
}

static bool ds_equiv_strings(const mwl_ds *a, const mwl_elem *ea, const mwl_ds *b, const mwl_elem *eb,
                             char *why, size_t cap)
{
    mwl_arena scratch;
    mwl_arena_init(&scratch, NULL);
    size_t n = mwl_elem_vm(ea) > mwl_elem_vm(eb) ? mwl_elem_vm(ea) : mwl_elem_vm(eb);
    bool same = true;
    for (size_t i = 0; i < n && same; i++) {
        const char *x = ds_equiv_text(a, ea, i, &scratch);
        const char *y = ds_equiv_text(b, eb, i, &scratch);
        if (!x && !y) {
            /* Neither converts (an unknown character set on both sides):
             * compare what is there. */
            const char *s;
            size_t len;
            x = mwl_elem_get_str(ea, i, &s, &len) == MWL_OK ? mwl_arena_strndup(&scratch, s, len) : "";
            y = mwl_elem_get_str(eb, i, &s, &len) == MWL_OK ? mwl_arena_strndup(&scratch, s, len) : "";
        }
        if (!x || !y) {
            snprintf(why, cap, "(%04X,%04X) value %zu does not convert to UTF-8",
                     (unsigned)MWL_TAG_GROUP(ea->tag), (unsigned)MWL_TAG_ELEMENT(ea->tag), i);
            same = false;
            break;
        }
        if ((ea->vr == MWL_VR_IS || ea->vr == MWL_VR_DS) && *x && *y) {
            char *ex, *ey;
            double dx = strtod(x, &ex), dy = strtod(y, &ey);
            same = !*ex && !*ey && dx == dy;
        } else {
            same = strcmp(x, y) == 0;
        }
        if (!same)
            snprintf(why, cap, "(%04X,%04X) value %zu: \"%.40s\" vs \"%.40s\"",
                     (unsigned)MWL_TAG_GROUP(ea->tag), (unsigned)MWL_TAG_ELEMENT(ea->tag), i, x, y);
    }
    mwl_arena_clear(&scratch);
    return same;
}

static bool ds_equiv_numbers(const mwl_elem *ea, const mwl_elem *eb)
{
    if (ea->length != eb->length)
        return false;
    if (ea->vr != MWL_VR_FL && ea->vr != MWL_VR_FD)
        return ea->length == 0 || memcmp(ea->value, eb->value, ea->length) == 0;
    size_t size = ea->vr == MWL_VR_FL ? 4 : 8;
    for (size_t i = 0; i + size <= ea->length; i += size) {
        double x, y;
        if (size == 4) {
            float fx, fy;
            uint32_t bx = mwl_load_u32le(ea->value + i), by = mwl_load_u32le(eb->value + i);
            memcpy(&fx, &bx, 4);
            memcpy(&fy, &by, 4);
            x = fx;
            y = fy;
        } else {
            uint64_t bx = mwl_load_u64le(ea->value + i), by = mwl_load_u64le(eb->value + i);
            memcpy(&x, &bx, 8);
            memcpy(&y, &by, 8);
        }
        if (!(x == y || (isnan(x) && isnan(y))))
            return false;
    }
    return true;
}

/* True when equal as above; else false with the first difference in why. */
static bool ds_equiv(const mwl_ds *a, const mwl_ds *b, char *why, size_t cap)
{
    size_t na = mwl_ds_count(a), nb = mwl_ds_count(b), i = 0, k = 0;
    for (;;) {
        while (i < na && ds_equiv_skip(mwl_ds_at(a, i)))
            i++;
        while (k < nb && ds_equiv_skip(mwl_ds_at(b, k)))
            k++;
        if (i == na || k == nb)
            break;
        const mwl_elem *ea = mwl_ds_at(a, i++), *eb = mwl_ds_at(b, k++);
        unsigned g = MWL_TAG_GROUP(ea->tag), el = MWL_TAG_ELEMENT(ea->tag);
        if (ea->tag != eb->tag) {
            snprintf(why, cap, "(%04X,%04X) vs (%04X,%04X)", g, el, (unsigned)MWL_TAG_GROUP(eb->tag),
                     (unsigned)MWL_TAG_ELEMENT(eb->tag));
            return false;
        }
        mwl_vr va = ea->vr == MWL_VR_NONE ? MWL_VR_UN : ea->vr;
        if (va != eb->vr) {
            snprintf(why, cap, "(%04X,%04X) VR %s vs %s", g, el, mwl_vr_code(va), mwl_vr_code(eb->vr));
            return false;
        }
        switch (mwl_vr_get_info(va)->kind) {
        case MWL_VR_KIND_SEQUENCE:
            if (ea->item_count != eb->item_count) {
                snprintf(why, cap, "(%04X,%04X) %zu items vs %zu", g, el, ea->item_count, eb->item_count);
                return false;
            }
            for (size_t n = 0; n < ea->item_count; n++) {
                if (!ds_equiv(ea->items[n], eb->items[n], why, cap))
                    return false;
            }
            break;
        case MWL_VR_KIND_STRING:
        case MWL_VR_KIND_TEXT:
            if (!ds_equiv_strings(a, ea, b, eb, why, cap))
                return false;
            break;
        case MWL_VR_KIND_NUMBER:
            if (!ds_equiv_numbers(ea, eb)) {
                snprintf(why, cap, "(%04X,%04X) numbers differ", g, el);
                return false;
            }
            break;
        default:
            if (ea->length != eb->length || (ea->length && memcmp(ea->value, eb->value, ea->length) != 0)) {
                snprintf(why, cap, "(%04X,%04X) bytes differ (%u vs %u)", g, el, (unsigned)ea->length,
                         (unsigned)eb->length);
                return false;
            }
            break;
        }
    }
    if (i != na || k != nb) {
        const mwl_elem *extra = i != na ? mwl_ds_at(a, i) : mwl_ds_at(b, k);
        snprintf(why, cap, "(%04X,%04X) only in the %s", (unsigned)MWL_TAG_GROUP(extra->tag),
                 (unsigned)MWL_TAG_ELEMENT(extra->tag), i != na ? "first" : "second");
        return false;
    }
    return true;
}

#endif
