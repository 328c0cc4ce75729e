/* Declarations private to src/worklist: the generated keys table, the pure
 * matching functions of match.c (one per matching type of PS3.4 C.2.2.2,
 * each with a table test in match_test.c), and helpers shared by query.c,
 * match.c and project.c. Not part of the module interface (worklist.h). */
#ifndef MWL_WORKLIST_WORKLIST_INT_H
#define MWL_WORKLIST_WORKLIST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dicom/charset.h"
#include "worklist/worklist.h"

/* ---- keys_gen.c ---------------------------------------------------------- */

extern const mwl_wlkey mwl_wlkeys[];
extern const size_t mwl_wlkey_count;
extern const size_t mwl_wlkey_top_count;

/* ---- the query object ---------------------------------------------------- */

struct mwl_query {
    mwl_arena *arena;
    mwl_qkey *keys; /* top level, tag order */
    size_t count;
    size_t unsupported;
};

/* ---- pure matching functions (match.c) ----------------------------------- */

/* Folding applied before comparing characters: PN only (C.2.2.2.1.1). */
enum { MWL_FOLD_CASE = 1, MWL_FOLD_ACCENT = 2 };

/* Decodes one UTF-8 sequence at s[*i] (i < len) and advances *i. A byte
 * that does not start a valid sequence comes back as 0x110000 + byte, so it
 * is still one character that equals only itself. */
uint32_t mwl_utf8_next(const char *s, size_t len, size_t *i);
/* The character `cp` after folding with MWL_FOLD_* `fold`. */
uint32_t mwl_fold_char(uint32_t cp, unsigned fold);

/* C.2.2.2.3 Universal matching: true when a (trimmed) key value asks for
 * every entity: zero length, or, on a VR where wild cards apply, nothing but
 * '*' (C.2.2.2.4 note 1). */
bool mwl_match_is_universal(mwl_vr vr, const char *key, size_t len);
/* C.2.2.2.1 Single value matching of strings: equal after trimming (done by
 * the caller), byte for byte, so case-sensitive, unless `fold` asks for
 * character folding. */
bool mwl_match_single(const char *key, size_t klen, const char *value, size_t vlen, unsigned fold);
/* C.2.2.2.4 Wild card matching: '*' matches any sequence of characters
 * (also none), '?' exactly one character (not one byte: UTF-8 aware). No
 * escapes (notes 4-6). Runs in O(pattern * value) worst case without
 * recursion. */
bool mwl_match_wildcard(const char *pattern, size_t plen, const char *value, size_t vlen, unsigned fold);
/* C.2.2.2.2 List of UID matching: the UID equals one of `count` keys. */
bool mwl_match_uid_list(const mwl_qvalue *uids, size_t count, const char *uid, size_t len);
/* C.2.2.2.5 Range matching on a comparable key (also single DA/TM/DT
 * values, which are the degenerate range "v-v" matched by meaning,
 * C.2.2.2.1.3): lo <= key <= hi with open ends. */
bool mwl_match_range(bool has_lo, int64_t lo, bool has_hi, int64_t hi, int64_t key);
/* IS/DS single value matching by numeric value (CP-2305). */
bool mwl_match_number(double key, const char *value, size_t len);
/* C.2.2.2.1.1 / C.2.2.2.4 for PN: `key` and `value` are normalised
 * (mwl_pn_normalize). A key without '=' matches when it matches any
 * component group of the value; a key with '=' is compared group by group,
 * an empty key group matching anything. `wildcard` selects wild card
 * matching within each group. */
bool mwl_match_pn(const char *key, size_t klen, bool wildcard, const char *value, size_t vlen, unsigned fold);
/* C.2.2.2.7 Empty value matching: the key "" (two quotation marks). */
bool mwl_match_is_empty_key(const char *key, size_t len);

/* PN normalisation (PS3.5 6.2.1): spaces around each component, trailing
 * empty components of each group and trailing empty groups removed.
 * Appends to `out` (whose status reports a failed allocation). */
void mwl_pn_normalize(const char *s, size_t len, mwl_wbuf *out);

/* An IS or DS value (trimmed) as a number; false when it is not one. */
bool mwl_wl_parse_number(const char *s, size_t len, double *out);

/* ---- text helpers shared by the files ------------------------------------ */

/* The character set of `ds`: its own (0008,0005) if it has one, else
 * `inherited`. MWL_OK or the mwl_charset_parse errors. */
int mwl_wl_charset(const mwl_ds *ds, const mwl_charset *inherited, mwl_charset *out, mwl_diag *diag);
/* The whole value of `e` (VR `vr`) as UTF-8: the raw bytes when they need
 * no conversion (VR not affected by the character set, default repertoire,
 * UTF-8, or all bytes ASCII without escapes), else decoded into `scratch`
 * (reset first). Returns MWL_OK, MWL_E_CHARSET, MWL_E_NOMEM. */
int mwl_wl_text(const mwl_charset *cs, mwl_vr vr, const uint8_t *raw, size_t len, mwl_wbuf *scratch,
                const char **out, size_t *out_len, mwl_diag *diag);
/* Next value of a '\'-separated UTF-8 string (TEXT VRs have one value).
 * `pos` starts at 0; returns false at the end. Values are trimmed per VR. */
bool mwl_wl_next_value(mwl_vr vr, const char *s, size_t len, size_t *pos, const char **value, size_t *vlen);

/* Combined date-time key (C.2.2.2.5.4) from a DA key (YYYYMMDD as an
 * integer, mwl_date_key) and a TM key (microseconds, mwl_time_key): the
 * dates are spread monotonically (not contiguously) so that a whole day of
 * microseconds, leap second included, fits between two dates. */
#define MWL_WL_DAY_SPAN INT64_C(100000000000)
static inline int64_t mwl_wl_datetime_key(int32_t date_key, int64_t time_key)
{
    int64_t year = date_key / 10000, month = date_key / 100 % 100, day = date_key % 100;
    return ((year * 13 + month) * 32 + day) * MWL_WL_DAY_SPAN + time_key;
}

/* The VRs on which wild card matching is defined (C.2.2.2.4). */
static inline bool mwl_vr_allows_wildcard(mwl_vr vr)
{
    switch (vr) {
    case MWL_VR_AE:
    case MWL_VR_CS:
    case MWL_VR_LO:
    case MWL_VR_LT:
    case MWL_VR_PN:
    case MWL_VR_SH:
    case MWL_VR_ST:
    case MWL_VR_UC:
    case MWL_VR_UR:
    case MWL_VR_UT: return true;
    default: return false;
    }
}

/* Whether a stored item's sequence `e` with table row `key` shows only item
 * `expand_index` (the expanded SPS Sequence at top level). */
static inline bool mwl_wl_is_expanded(const mwl_wlkey *key, bool top, size_t expand_index)
{
    return top && key && (key->flags & MWL_WLKEY_EXPAND) && expand_index != SIZE_MAX;
}

/* ---- stored values as the store indexes them (narrow.c, check.c) -------- */

/* The element `tag` of `ds` as the matcher reads it: an element coded UN
 * gets its dictionary VR. False when absent. */
bool mwl_wl_stored_elem(const mwl_ds *ds, uint32_t tag, mwl_elem *out);
/* True when every byte of the value is below 80H and none is ESC: text
 * that reads the same in every character set we decode, so nothing needs
 * decoding to count its values or to know it is valid. */
static inline bool mwl_wl_plain_ascii(const mwl_elem *e)
{
    for (uint32_t i = 0; i < e->length; i++) {
        if (e->value[i] >= 0x80 || e->value[i] == 0x1B)
            return false;
    }
    return true;
}
/* Number of values of `e` (an element of `ds`) counted as the matcher
 * counts them: in UTF-8 after decoding, where a 5CH byte inside a
 * multi-byte character is no delimiter; 1 for the TEXT VRs, 0 when empty.
 * `scratch` holds the decoded text. Returns MWL_OK, MWL_E_CHARSET,
 * MWL_E_UNSUPPORTED, MWL_E_NOMEM. */
int mwl_wl_value_count(const mwl_ds *ds, const mwl_elem *e, mwl_arena *scratch, size_t *count,
                       mwl_diag *diag);

/* The decision on one key `k` at one level `ds` (match.c): *hit, and in
 * *why the reason (never formatted, nothing allocated). The one place a key
 * is judged: mwl_wl_match_level and mwl_explain_match both call it. */
int mwl_wl_match_key(mwl_matcher *m, const mwl_qkey *k, const mwl_ds *ds, const mwl_charset *cs, bool top,
                     size_t expand_index, bool *hit, mwl_explain_reason *why, mwl_diag *diag);

/* Matches one item level (match.c): every key, stopping at the first that
 * fails; used by mwl_match_dataset and by the projection to select the
 * items of sequence keys. */
int mwl_wl_match_level(mwl_matcher *m, const mwl_qkey *keys, size_t count, const mwl_ds *ds,
                       const mwl_charset *cs, bool top, size_t expand_index, bool *matched, mwl_diag *diag);

#endif
