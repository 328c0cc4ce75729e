#include "dicom/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "dicom/dict.h"

struct mwl_ds {
    mwl_arena *arena;
    mwl_ds *parent;
    mwl_elem *elems; /* sorted by tag, unique */
    size_t count;
    size_t cap;
};

int mwl_ds_new(mwl_arena *arena, mwl_ds *parent, mwl_ds **out)
{
    mwl_ds *ds = mwl_arena_calloc(arena, sizeof *ds);
    if (!ds)
        return MWL_E_NOMEM;
    ds->arena = arena;
    ds->parent = parent;
    *out = ds;
    return MWL_OK;
}

mwl_arena *mwl_ds_arena(const mwl_ds *ds)
{
    return ds->arena;
}
mwl_ds *mwl_ds_parent(const mwl_ds *ds)
{
    return ds->parent;
}
size_t mwl_ds_count(const mwl_ds *ds)
{
    return ds->count;
}

const mwl_elem *mwl_ds_at(const mwl_ds *ds, size_t index)
{
    return index < ds->count ? &ds->elems[index] : NULL;
}

/* Index of `tag`, or of where it would be inserted; *found says which. */
static size_t lower_bound(const mwl_ds *ds, uint32_t tag, bool *found)
{
    /* Decoders and builders add in ascending order: check the end first. */
    if (ds->count == 0 || ds->elems[ds->count - 1].tag < tag) {
        *found = false;
        return ds->count;
    }
    size_t lo = 0, hi = ds->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->elems[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < ds->count && ds->elems[lo].tag == tag;
    return lo;
}

const mwl_elem *mwl_ds_find(const mwl_ds *ds, uint32_t tag)
{
    bool found;
    size_t i = lower_bound(ds, tag, &found);
    return found ? &ds->elems[i] : NULL;
}

/* Returns the slot for `tag` (existing one cleared, or a new one inserted). */
static mwl_elem *slot_for(mwl_ds *ds, uint32_t tag)
{
    bool found;
    size_t i = lower_bound(ds, tag, &found);
    if (!found) {
        if (ds->count == ds->cap) {
            size_t cap = ds->cap ? ds->cap * 2 : 8;
            mwl_elem *e = mwl_arena_realloc(ds->arena, ds->elems, ds->cap * sizeof *e, cap * sizeof *e);
            if (!e)
                return NULL;
            ds->elems = e;
            ds->cap = cap;
        }
        memmove(&ds->elems[i + 1], &ds->elems[i], (ds->count - i) * sizeof *ds->elems);
        ds->count++;
    }
    mwl_elem *e = &ds->elems[i];
    memset(e, 0, sizeof *e);
    e->tag = tag;
    return e;
}

int mwl_ds_set_ref(mwl_ds *ds, uint32_t tag, mwl_vr vr, const uint8_t *value, size_t len)
{
    if (vr == MWL_VR_SQ || vr == MWL_VR_NONE || (unsigned)vr >= MWL_VR_COUNT || len > 0xFFFFFFFEu)
        return MWL_E_INVALID;
    mwl_elem *e = slot_for(ds, tag);
    if (!e)
        return MWL_E_NOMEM;
    e->vr = vr;
    e->length = (uint32_t)len;
    e->value = len ? value : NULL;
    return MWL_OK;
}

int mwl_ds_set(mwl_ds *ds, uint32_t tag, mwl_vr vr, const void *value, size_t len)
{
    if (len > 0xFFFFFFFEu)
        return MWL_E_INVALID;
    const uint8_t *copy = NULL;
    if (len) {
        copy = mwl_arena_memdup(ds->arena, value, len);
        if (!copy)
            return MWL_E_NOMEM;
    }
    return mwl_ds_set_ref(ds, tag, vr, copy, len);
}

int mwl_ds_set_str(mwl_ds *ds, uint32_t tag, mwl_vr vr, const char *value)
{
    if (vr == MWL_VR_NONE)
        vr = mwl_dict_vr(tag);
    if (!mwl_vr_is_string(vr))
        return MWL_E_INVALID;
    size_t len = strlen(value);
    if (len >= 0xFFFFFFFEu)
        return MWL_E_INVALID;
    size_t padded = len + (len & 1);
    uint8_t *copy = NULL;
    if (padded) {
        copy = mwl_arena_alloc(ds->arena, padded);
        if (!copy)
            return MWL_E_NOMEM;
        memcpy(copy, value, len);
        if (padded != len)
            copy[len] = mwl_vr_get_info(vr)->pad;
    }
    return mwl_ds_set_ref(ds, tag, vr, copy, padded);
}

int mwl_ds_set_u16(mwl_ds *ds, uint32_t tag, uint16_t value)
{
    uint8_t b[2];
    mwl_store_u16le(b, value);
    mwl_vr vr = mwl_dict_vr(tag);
    if (vr != MWL_VR_SS)
        vr = MWL_VR_US;
    return mwl_ds_set(ds, tag, vr, b, 2);
}

int mwl_ds_set_u32(mwl_ds *ds, uint32_t tag, uint32_t value)
{
    uint8_t b[4];
    mwl_store_u32le(b, value);
    mwl_vr vr = mwl_dict_vr(tag);
    if (vr != MWL_VR_SL)
        vr = MWL_VR_UL;
    return mwl_ds_set(ds, tag, vr, b, 4);
}

int mwl_ds_set_seq(mwl_ds *ds, uint32_t tag, mwl_elem **out)
{
    mwl_elem *e = slot_for(ds, tag);
    if (!e)
        return MWL_E_NOMEM;
    e->vr = MWL_VR_SQ;
    if (out)
        *out = e;
    return MWL_OK;
}

static int elem_add_item(mwl_ds *ds, mwl_elem *e, mwl_ds **item_out)
{
    mwl_ds *item;
    int rc = mwl_ds_new(ds->arena, ds, &item);
    if (rc != MWL_OK)
        return rc;
    /* Items grow by powers of two; the capacity is implied by the count. */
    size_t n = e->item_count;
    if ((n & (n - 1)) == 0) {
        size_t cap = n ? n * 2 : 1;
        mwl_ds **items = mwl_arena_realloc(ds->arena, e->items, n * sizeof *items, cap * sizeof *items);
        if (!items)
            return MWL_E_NOMEM;
        e->items = items;
    }
    e->items[n] = item;
    e->item_count = n + 1;
    if (item_out)
        *item_out = item;
    return MWL_OK;
}

int mwl_ds_add_item(mwl_ds *ds, uint32_t tag, mwl_ds **item_out)
{
    bool found;
    size_t i = lower_bound(ds, tag, &found);
    mwl_elem *e;
    if (found) {
        e = &ds->elems[i];
        if (e->vr != MWL_VR_SQ)
            return MWL_E_INVALID;
    } else {
        int rc = mwl_ds_set_seq(ds, tag, &e);
        if (rc != MWL_OK)
            return rc;
    }
    return elem_add_item(ds, e, item_out);
}

int mwl_ds_remove(mwl_ds *ds, uint32_t tag)
{
    bool found;
    size_t i = lower_bound(ds, tag, &found);
    if (!found)
        return MWL_E_NOTFOUND;
    memmove(&ds->elems[i], &ds->elems[i + 1], (ds->count - i - 1) * sizeof *ds->elems);
    ds->count--;
    return MWL_OK;
}

static int copy_into(mwl_ds *dst, const mwl_ds *src);

int mwl_ds_copy_elem(mwl_ds *ds, const mwl_elem *elem)
{
    if (elem->vr != MWL_VR_SQ)
        return mwl_ds_set(ds, elem->tag, elem->vr, elem->value, elem->length);
    int rc = mwl_ds_set_seq(ds, elem->tag, NULL);
    if (rc != MWL_OK)
        return rc;
    uint32_t tag = elem->tag;
    for (size_t i = 0; i < elem->item_count; i++) {
        mwl_ds *item;
        rc = mwl_ds_add_item(ds, tag, &item);
        if (rc != MWL_OK)
            return rc;
        rc = copy_into(item, elem->items[i]);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

static int copy_into(mwl_ds *dst, const mwl_ds *src)
{
    for (size_t i = 0; i < src->count; i++) {
        int rc = mwl_ds_copy_elem(dst, &src->elems[i]);
        if (rc != MWL_OK)
            return rc;
    }
    return MWL_OK;
}

int mwl_ds_copy(const mwl_ds *src, mwl_arena *arena, mwl_ds *parent, mwl_ds **out)
{
    mwl_ds *ds;
    int rc = mwl_ds_new(arena, parent, &ds);
    if (rc != MWL_OK)
        return rc;
    rc = copy_into(ds, src);
    if (rc != MWL_OK)
        return rc;
    *out = ds;
    return MWL_OK;
}

bool mwl_ds_equal(const mwl_ds *a, const mwl_ds *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        const mwl_elem *x = &a->elems[i], *y = &b->elems[i];
        if (x->tag != y->tag || x->vr != y->vr || x->length != y->length || x->item_count != y->item_count)
            return false;
        if (x->length && memcmp(x->value, y->value, x->length) != 0)
            return false;
        for (size_t k = 0; k < x->item_count; k++) {
            if (!mwl_ds_equal(x->items[k], y->items[k]))
                return false;
        }
    }
    return true;
}

/* ---- typed accessors --------------------------------------------------- */

size_t mwl_elem_vm(const mwl_elem *e)
{
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    switch (info->kind) {
    case MWL_VR_KIND_SEQUENCE: return e->item_count;
    case MWL_VR_KIND_NUMBER: return e->length / info->max_len;
    case MWL_VR_KIND_TEXT: return e->length ? 1 : 0;
    case MWL_VR_KIND_STRING: {
        if (e->length == 0)
            return 0;
        size_t n = 1;
        for (uint32_t i = 0; i < e->length; i++)
            n += e->value[i] == '\\';
        return n;
    }
    default: return e->length ? 1 : 0;
    }
}

int mwl_elem_get_str(const mwl_elem *e, size_t index, const char **out, size_t *out_len)
{
    const mwl_vr_info *info = mwl_vr_get_info(e->vr);
    if (info->kind != MWL_VR_KIND_STRING && info->kind != MWL_VR_KIND_TEXT)
        return MWL_E_INVALID;
    const char *s = (const char *)e->value;
    size_t len = e->length;
    if (len == 0)
        return MWL_E_NOTFOUND;
    if (info->kind == MWL_VR_KIND_STRING) {
        size_t start = 0, k = 0;
        for (size_t i = 0; i <= len; i++) {
            if (i == len || s[i] == '\\') {
                if (k == index) {
                    const char *p = s + start;
                    size_t n = i - start;
                    mwl_str_trim(e->vr, &p, &n);
                    *out = p;
                    *out_len = n;
                    return MWL_OK;
                }
                k++;
                start = i + 1;
            }
        }
        return MWL_E_NOTFOUND;
    }
    if (index != 0)
        return MWL_E_NOTFOUND;
    mwl_str_trim(e->vr, &s, &len);
    *out = s;
    *out_len = len;
    return MWL_OK;
}

int mwl_elem_copy_str(const mwl_elem *e, size_t index, char *buf, size_t cap)
{
    const char *s;
    size_t n;
    int rc = mwl_elem_get_str(e, index, &s, &n);
    if (rc != MWL_OK) {
        if (cap)
            buf[0] = '\0';
        return rc;
    }
    if (cap == 0)
        return MWL_E_LIMIT;
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(buf, s, c);
    buf[c] = '\0';
    return c == n ? MWL_OK : MWL_E_LIMIT;
}

int mwl_ds_copy_str(const mwl_ds *ds, uint32_t tag, size_t index, char *buf, size_t cap)
{
    const mwl_elem *e = mwl_ds_find(ds, tag);
    if (!e) {
        if (cap)
            buf[0] = '\0';
        return MWL_E_NOTFOUND;
    }
    return mwl_elem_copy_str(e, index, buf, cap);
}

int mwl_elem_get_int(const mwl_elem *e, size_t index, int64_t *out)
{
    const uint8_t *p;
    switch (e->vr) {
    case MWL_VR_US:
    case MWL_VR_SS:
        if (index >= e->length / 2)
            return MWL_E_NOTFOUND;
        p = e->value + index * 2;
        *out = e->vr == MWL_VR_US ? (int64_t)mwl_load_u16le(p) : (int64_t)(int16_t)mwl_load_u16le(p);
        return MWL_OK;
    case MWL_VR_UL:
    case MWL_VR_SL:
        if (index >= e->length / 4)
            return MWL_E_NOTFOUND;
        p = e->value + index * 4;
        *out = e->vr == MWL_VR_UL ? (int64_t)mwl_load_u32le(p) : (int64_t)(int32_t)mwl_load_u32le(p);
        return MWL_OK;
    case MWL_VR_SV:
    case MWL_VR_UV:
        if (index >= e->length / 8)
            return MWL_E_NOTFOUND;
        p = e->value + index * 8;
        if (e->vr == MWL_VR_UV && mwl_load_u64le(p) > INT64_MAX)
            return MWL_E_LIMIT;
        *out = (int64_t)mwl_load_u64le(p);
        return MWL_OK;
    case MWL_VR_IS: {
        char buf[32];
        int rc = mwl_elem_copy_str(e, index, buf, sizeof buf);
        if (rc != MWL_OK)
            return rc == MWL_E_LIMIT ? MWL_E_MALFORMED : rc;
        if (!buf[0])
            return MWL_E_MALFORMED;
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end || errno)
            return MWL_E_MALFORMED;
        *out = v;
        return MWL_OK;
    }
    default: return MWL_E_INVALID;
    }
}

int mwl_elem_get_double(const mwl_elem *e, size_t index, double *out)
{
    switch (e->vr) {
    case MWL_VR_FL: {
        if (index >= e->length / 4)
            return MWL_E_NOTFOUND;
        uint32_t bits = mwl_load_u32le(e->value + index * 4);
        float f;
        memcpy(&f, &bits, 4);
        *out = f;
        return MWL_OK;
    }
    case MWL_VR_FD: {
        if (index >= e->length / 8)
            return MWL_E_NOTFOUND;
        uint64_t bits = mwl_load_u64le(e->value + index * 8);
        memcpy(out, &bits, 8);
        return MWL_OK;
    }
    case MWL_VR_DS: {
        char buf[32];
        int rc = mwl_elem_copy_str(e, index, buf, sizeof buf);
        if (rc != MWL_OK)
            return rc == MWL_E_LIMIT ? MWL_E_MALFORMED : rc;
        if (!buf[0])
            return MWL_E_MALFORMED;
        char *end;
        errno = 0;
        double v = strtod(buf, &end);
        if (*end || errno || !isfinite(v))
            return MWL_E_MALFORMED;
        *out = v;
        return MWL_OK;
    }
    default: {
        int64_t v;
        int rc = mwl_elem_get_int(e, index, &v);
        if (rc == MWL_OK)
            *out = (double)v;
        return rc;
    }
    }
}

int mwl_elem_get_tag(const mwl_elem *e, size_t index, uint32_t *out)
{
    if (e->vr != MWL_VR_AT)
        return MWL_E_INVALID;
    if (index >= e->length / 4)
        return MWL_E_NOTFOUND;
    const uint8_t *p = e->value + index * 4;
    *out = MWL_TAG(mwl_load_u16le(p), mwl_load_u16le(p + 2));
    return MWL_OK;
}
