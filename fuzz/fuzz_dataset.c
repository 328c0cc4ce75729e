/* Fuzz target: decode the input as a data set in each transfer syntax; when
 * it decodes, encode it again in the same syntax and check that the result
 * decodes to the same tree (odd values come back padded by one byte), and
 * that encoding is then stable byte for byte; and that its DICOM JSON is
 * the same compact and pretty-printed (json_compact.h: arbitrary bytes
 * reach the JSON encoder's fast path here). Any difference aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dicom/codec.h"
#include "json_compact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Same tree, except that an odd-length value of `a` may be followed in `b`
 * by the VR's padding byte (PS3.5 §7.1.1: the encoder pads to even). */
static bool equal_padded(const mwl_ds *a, const mwl_ds *b)
{
    if (mwl_ds_count(a) != mwl_ds_count(b))
        return false;
    for (size_t i = 0; i < mwl_ds_count(a); i++) {
        const mwl_elem *x = mwl_ds_at(a, i), *y = mwl_ds_at(b, i);
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
            if (!equal_padded(x->items[k], y->items[k]))
                return false;
        }
    }
    return true;
}

static void check_syntax(const uint8_t *data, size_t size, mwl_ts ts)
{
    mwl_decode_limits lim;
    mwl_decode_limits_init(&lim);
    lim.max_inflated = (size_t)4 << 20; /* keep each run small and fast */
    mwl_arena arena;
    mwl_arena_init(&arena, NULL);
    mwl_ds *t1, *t2, *t3;
    if (mwl_ds_decode(data, size, ts, &arena, &lim, &t1, NULL) != MWL_OK) {
        mwl_arena_clear(&arena);
        return;
    }
    mwl_wbuf w1, w2;
    mwl_wbuf_init(&w1, NULL);
    mwl_wbuf_init(&w2, NULL);
    int rc = mwl_ds_encode(t1, ts, &w1);
    if (rc != MWL_OK) {
        /* Only a value too long for a 16-bit length field (one read with a
         * 32-bit length inside an undefined-length UN, or 0xFFFF odd bytes)
         * cannot be written back, and only in Explicit VR. */
        if (rc != MWL_E_INVALID || ts == MWL_TS_IMPLICIT_LE)
            abort();
        mwl_wbuf_clear(&w1);
        mwl_arena_clear(&arena);
        return;
    }
    /* Padding may add a byte per value: allow for it when re-inflating. */
    lim.max_inflated *= 2;
    if (mwl_ds_decode(w1.data, w1.len, ts, &arena, &lim, &t2, NULL) != MWL_OK)
        abort();
    if (!equal_padded(t1, t2))
        abort();
    if (ts == MWL_TS_EXPLICIT_LE && !json_paths_agree(t1))
        abort();
    if (mwl_ds_encode(t2, ts, &w2) != MWL_OK)
        abort();
    if (w1.len != w2.len || (w1.len && memcmp(w1.data, w2.data, w1.len) != 0))
        abort();
    if (mwl_ds_decode(w2.data, w2.len, ts, &arena, &lim, &t3, NULL) != MWL_OK || !mwl_ds_equal(t2, t3))
        abort();
    mwl_wbuf_clear(&w1);
    mwl_wbuf_clear(&w2);
    mwl_arena_clear(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int ts = 0; ts < MWL_TS_COUNT; ts++)
        check_syntax(data, size, (mwl_ts)ts);
    return 0;
}
