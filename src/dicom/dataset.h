/* The data set model (PS3.5 §7): elements in ascending tag order, each a VR
 * and a value, sequences holding items that are data sets themselves, to any
 * depth. All memory comes from one mwl_arena (STYLE.md §6): there is no
 * per-element free; mwl_arena_clear releases a whole message at once.
 *
 * Values are kept as raw bytes in *little-endian* form whatever transfer
 * syntax they were read from (the codec swaps big-endian input), and string
 * values keep their original character set bytes and padding, so an
 * encode after a decode reproduces the input. Use the accessors below (and
 * dicom/charset.h for UTF-8) to read them. */
#ifndef MWL_DICOM_DATASET_H
#define MWL_DICOM_DATASET_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/status.h"
#include "dicom/tag.h"
#include "dicom/vr.h"

typedef struct mwl_ds mwl_ds;

typedef struct mwl_elem {
    uint32_t tag;
    mwl_vr vr;
    uint32_t length;      /* value bytes (0 for SQ); may be odd if the input was */
    const uint8_t *value; /* `length` bytes, little-endian; NULL when length is 0 */
    mwl_ds **items;       /* SQ only: item_count items, in order */
    size_t item_count;
} mwl_elem;

/* A new empty data set in `arena`. `parent` is the data set holding the
 * sequence this one is an item of (NULL at top level); it is used to find
 * the inherited Specific Character Set. Returns MWL_OK or MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_ds_new(mwl_arena *arena, mwl_ds *parent, mwl_ds **out);

MWL_API mwl_arena *mwl_ds_arena(const mwl_ds *ds);
MWL_API mwl_ds *mwl_ds_parent(const mwl_ds *ds);
MWL_API size_t mwl_ds_count(const mwl_ds *ds);
/* Element `index` (0 .. count-1) in tag order. Valid until the data set changes. */
MWL_API const mwl_elem *mwl_ds_at(const mwl_ds *ds, size_t index);
/* The element with `tag`, or NULL. Binary search. */
MWL_API const mwl_elem *mwl_ds_find(const mwl_ds *ds, uint32_t tag);

/* Sets `tag` to a copy of `len` bytes of `value` (already in little-endian
 * form, as stored), replacing any existing element with the same tag and
 * keeping tag order. No padding is added. Returns MWL_OK, MWL_E_NOMEM,
 * MWL_E_INVALID (vr SQ or NONE, or a value longer than 0xFFFFFFFE). */
MWL_API MWL_MUST_CHECK int mwl_ds_set(mwl_ds *ds, uint32_t tag, mwl_vr vr, const void *value, size_t len);
/* As mwl_ds_set, but does not copy: `value` must outlive the arena. */
MWL_API MWL_MUST_CHECK int mwl_ds_set_ref(mwl_ds *ds, uint32_t tag, mwl_vr vr, const uint8_t *value,
                                          size_t len);
/* Sets a string value (several values joined by '\' by the caller) and pads
 * to even length with the VR's padding byte. `vr` 0 (MWL_VR_NONE) means
 * "the dictionary's VR". */
MWL_API MWL_MUST_CHECK int mwl_ds_set_str(mwl_ds *ds, uint32_t tag, mwl_vr vr, const char *value);
/* Binary setters: one value of a US/SS/UL/SL/... element. */
MWL_API MWL_MUST_CHECK int mwl_ds_set_u16(mwl_ds *ds, uint32_t tag, uint16_t value);
MWL_API MWL_MUST_CHECK int mwl_ds_set_u32(mwl_ds *ds, uint32_t tag, uint32_t value);
/* Makes `tag` an empty sequence (replacing any element with that tag) and
 * returns it through *out (may be NULL). */
MWL_API MWL_MUST_CHECK int mwl_ds_set_seq(mwl_ds *ds, uint32_t tag, mwl_elem **out);
/* Appends a new empty item to sequence `tag` (created if absent) and
 * returns it. MWL_E_INVALID if `tag` exists and is not a sequence. */
MWL_API MWL_MUST_CHECK int mwl_ds_add_item(mwl_ds *ds, uint32_t tag, mwl_ds **item_out);
/* Removes `tag`; MWL_E_NOTFOUND if absent. */
MWL_API int mwl_ds_remove(mwl_ds *ds, uint32_t tag);

/* Deep copy of `src` (values copied) into `arena` with `parent`. */
MWL_API MWL_MUST_CHECK int mwl_ds_copy(const mwl_ds *src, mwl_arena *arena, mwl_ds *parent, mwl_ds **out);
/* Copies one element (deeply) from another data set into `ds`. */
MWL_API MWL_MUST_CHECK int mwl_ds_copy_elem(mwl_ds *ds, const mwl_elem *elem);

/* Trees equal: same tags, VRs, value bytes, item counts, recursively. */
MWL_API bool mwl_ds_equal(const mwl_ds *a, const mwl_ds *b);

/* ---- typed accessors --------------------------------------------------- */

/* Removes the padding PS3.5 6.2 says is not part of one string value
 * s[0..len): trailing spaces and NULs (NULs pad UI, and some writers pad
 * other VRs with them), and leading spaces except in LT ST UT UR UC, where
 * they are data. The one trimming mwl_elem_get_str and the JSON and XML
 * encoders apply. Inline: the encoders call it for every value. */
static inline void mwl_str_trim(mwl_vr vr, const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    bool leading =
        vr != MWL_VR_LT && vr != MWL_VR_ST && vr != MWL_VR_UT && vr != MWL_VR_UR && vr != MWL_VR_UC;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    if (leading) {
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
    }
    *s = p;
    *len = n;
}

/* True when a value has nothing but padding (spaces, NULs): empty as the
 * JSON and XML models see it (F.2.5: the attribute without a value). */
static inline bool mwl_elem_is_blank(const mwl_elem *e)
{
    for (uint32_t i = 0; i < e->length; i++)
        if (e->value[i] != ' ' && e->value[i] != '\0')
            return false;
    return true;
}

/* Number of values: for string VRs, '\'-separated parts (1 for TEXT VRs; 0
 * for an empty value); for numbers, length / size; items for SQ; 1 for
 * other binary. */
MWL_API size_t mwl_elem_vm(const mwl_elem *e);
/* Value `index` of a string element as a slice into the element (no copy,
 * not NUL-terminated), trimmed per VR: leading and trailing spaces for AE
 * CS DS IS LO SH PN AS DA DT TM, trailing spaces for LT ST UT UR UC, trailing
 * NULs (and spaces, tolerated) for UI. MWL_E_NOTFOUND past the last value,
 * MWL_E_INVALID for a non-string VR. */
MWL_API MWL_MUST_CHECK int mwl_elem_get_str(const mwl_elem *e, size_t index, const char **out,
                                            size_t *out_len);
/* Copies value `index` into `buf` (NUL-terminated, trimmed as above).
 * MWL_E_LIMIT if it does not fit (buf then holds a truncated copy). */
MWL_API MWL_MUST_CHECK int mwl_elem_copy_str(const mwl_elem *e, size_t index, char *buf, size_t cap);
/* Value `index` as an integer: US SS UL SL SV UV (binary) and IS (text).
 * MWL_E_MALFORMED for IS text that is not an integer. */
MWL_API MWL_MUST_CHECK int mwl_elem_get_int(const mwl_elem *e, size_t index, int64_t *out);
/* Value `index` as a double: FL FD (binary), DS (text), and the integer VRs. */
MWL_API MWL_MUST_CHECK int mwl_elem_get_double(const mwl_elem *e, size_t index, double *out);
/* AT value `index` as a tag. */
MWL_API MWL_MUST_CHECK int mwl_elem_get_tag(const mwl_elem *e, size_t index, uint32_t *out);

/* Convenience: value `index` of `tag` in `ds` copied into buf; MWL_E_NOTFOUND
 * when the element is absent. */
MWL_API MWL_MUST_CHECK int mwl_ds_copy_str(const mwl_ds *ds, uint32_t tag, size_t index, char *buf,
                                           size_t cap);

#endif
