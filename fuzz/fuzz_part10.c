/* Fuzz target: read the input as a Part 10 file (or raw data set); when it
 * reads, write it as a Part 10 file in the same transfer syntax and check
 * that it reads back to the same data set (odd values padded by one byte,
 * groups 0000-0002 left out of the data set), and that writing is then
 * stable byte for byte. Any difference aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool low_group(const mwl_elem *e)
{
    return MWL_TAG_GROUP(e->tag) <= 0x0002;
}

/* Same tree, except that an odd-length value of `a` may be followed in `b`
 * by the VR's padding byte, and, when `skip_low`, that `a`'s elements of
 * groups 0000-0002 are absent from `b` (mwl_part10_encode leaves them out). */
static bool equal_padded(const mwl_ds *a, const mwl_ds *b, bool skip_low)
{
    size_t na = mwl_ds_count(a), nb = mwl_ds_count(b), i = 0, j = 0;
    for (;; i++, j++) {
        while (skip_low && i < na && low_group(mwl_ds_at(a, i)))
            i++;
        if (i == na || j == nb)
            return i == na && j == nb;
        const mwl_elem *x = mwl_ds_at(a, i), *y = mwl_ds_at(b, j);
        if (x->tag != y->tag || x->vr != y->vr || x->item_count != y->item_count)
            return false;
        if (x->length & 1u) {
            if (y->length != x->length + 1u || y->value[x->length] != mwl_vr_get_info(x->vr)->pad)
                return false;
        } else if (y->length != x->length) {
            return false;
        }
        if (x->length && memcmp(x->value, y->value, x->length) != 0)
            return false;
        for (size_t k = 0; k < x->item_count; k++) {
            if (!equal_padded(x->items[k], y->items[k], false))
                return false;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mwl_decode_limits lim;
    mwl_decode_limits_init(&lim);
    lim.max_inflated = (size_t)4 << 20;
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_part10 f1, f2, f3;
    if (mwl_part10_decode(data, size, &arena, &lim, &f1, NULL) != MWL_OK) {
        mwl_arena_clear(&arena);
        return 0;
    }
    mwl_wbuf w1, w2;
    mwl_wbuf_init(&w1, NULL);
    mwl_wbuf_init(&w2, NULL);
    int rc = mwl_part10_encode(f1.dataset, f1.ts, &w1);
    if (rc != MWL_OK) {
        /* A value too long for a 16-bit length field (see fuzz_dataset.c). */
        if (rc != MWL_E_INVALID || f1.ts == MWL_TS_IMPLICIT_LE)
            abort();
        mwl_wbuf_clear(&w1);
        mwl_arena_clear(&arena);
        return 0;
    }
    lim.max_inflated *= 2;
    if (mwl_part10_decode(w1.data, w1.len, &arena, &lim, &f2, NULL) != MWL_OK)
        abort();
    if (f2.ts != f1.ts || !f2.meta || !equal_padded(f1.dataset, f2.dataset, true))
        abort();
    if (mwl_part10_encode(f2.dataset, f2.ts, &w2) != MWL_OK)
        abort();
    if (w1.len != w2.len || memcmp(w1.data, w2.data, w1.len) != 0)
        abort();
    if (mwl_part10_decode(w2.data, w2.len, &arena, &lim, &f3, NULL) != MWL_OK ||
        !mwl_ds_equal(f2.dataset, f3.dataset) || !mwl_ds_equal(f2.meta, f3.meta))
        abort();
    mwl_wbuf_clear(&w1);
    mwl_wbuf_clear(&w2);
    mwl_arena_clear(&arena);
    return 0;
}
