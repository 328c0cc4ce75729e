/* Character sets (PS3.5 §6.1, PS3.3 C.12.1.1.2): the one boundary where
 * text in any Specific Character Set (0008,0005) becomes UTF-8 and back
 * (STYLE.md §13). Conversions use glibc iconv; ISO 2022 code extensions are
 * handled by splitting on escape sequences and converting each run. */
#ifndef MWL_DICOM_CHARSET_H
#define MWL_DICOM_CHARSET_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/status.h"
#include "dicom/dataset.h"

/* True when v[0..len) has no byte >= 80H and no ESC: text that reads as
 * the same ASCII characters in every character set here (see
 * mwl_ds_recode) and needs no conversion. Eight bytes at a time: the
 * encoders ask it of every value they write. */
static inline bool mwl_text_is_ascii(const uint8_t *v, size_t len)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u, esc = 0x1B1B1B1B1B1B1B1Bu;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, v + i, 8);
        uint64_t e = x ^ esc; /* a zero byte where x has ESC */
        if ((x | ((e - ones) & ~e)) & highs)
            return false;
    }
    for (; i < len; i++) {
        if (v[i] >= 0x80 || v[i] == 0x1B)
            return false;
    }
    return true;
}

/* A parsed Specific Character Set value: up to 8 defined terms. */
typedef struct mwl_charset {
    uint8_t count;  /* number of values; 0 = default repertoire (ASCII) */
    uint8_t ids[8]; /* internal identifiers of each defined term, in order */
    bool iso2022;   /* code extensions in use (multi-valued, "ISO 2022 ..." terms) */
} mwl_charset;

/* The default repertoire (no (0008,0005)). Never fails. */
MWL_API void mwl_charset_init_default(mwl_charset *cs);
/* Parses the raw value of (0008,0005) (e.g. "\ISO 2022 IR 87", "ISO_IR 100").
 * Unknown defined terms -> MWL_E_UNSUPPORTED with the term in diag. An empty
 * value means the default repertoire. */
MWL_API MWL_MUST_CHECK int mwl_charset_parse(const char *value, size_t len, mwl_charset *out, mwl_diag *diag);
/* The Specific Character Set in effect for `ds`: its own (0008,0005), else
 * its parent's, recursively, else the default repertoire. */
MWL_API MWL_MUST_CHECK int mwl_charset_of(const mwl_ds *ds, mwl_charset *out, mwl_diag *diag);
/* The canonical (0008,0005) string for `cs` ("" for the default), written
 * into buf. */
MWL_API MWL_MUST_CHECK int mwl_charset_name(const mwl_charset *cs, char *buf, size_t cap);
MWL_API bool mwl_charset_is_utf8(const mwl_charset *cs);

/* Decodes `len` bytes of text of VR `vr` in `cs` to UTF-8, appended to
 * `out` (no NUL). For PN the ISO 2022 state resets at '^' and '='; for
 * every VR at '\', CR, LF, FF and TAB (PS3.5 §6.1.2.5.3). Bytes invalid in
 * the character set give MWL_E_CHARSET (with the offset in diag).
 * Returns MWL_OK, MWL_E_CHARSET, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_charset_decode(const mwl_charset *cs, mwl_vr vr, const uint8_t *in, size_t len,
                                              mwl_wbuf *out, mwl_diag *diag);
/* Encodes UTF-8 text into `cs`, appended to `out`: for ISO 2022 sets the
 * encoder picks, for each run of characters, the first listed set that can
 * represent it, inserts the escape sequences and switches back to the
 * initial set before delimiters as PS3.5 §6.1.2.5.3 requires. A character no
 * listed set can represent gives MWL_E_CHARSET (never dropped silently). */
MWL_API MWL_MUST_CHECK int mwl_charset_encode(const mwl_charset *cs, mwl_vr vr, const char *utf8, size_t len,
                                              mwl_wbuf *out, mwl_diag *diag);

/* Convenience: value `index` of element `e` of data set `ds` (whose
 * character set applies) as a NUL-terminated UTF-8 string in `arena`,
 * trimmed per VR as mwl_elem_get_str does. VRs not affected by the
 * character set are returned as they are (they are ASCII). */
MWL_API MWL_MUST_CHECK int mwl_ds_get_utf8(const mwl_ds *ds, const mwl_elem *e, size_t index,
                                           mwl_arena *arena, const char **out, mwl_diag *diag);
/* The whole value (all values, '\' kept) of `e` in UTF-8, untrimmed. */
MWL_API MWL_MUST_CHECK int mwl_ds_get_utf8_all(const mwl_ds *ds, const mwl_elem *e, mwl_arena *arena,
                                               const char **out, size_t *out_len, mwl_diag *diag);

/* Re-encodes every text value of `ds` (SH LO UC ST LT UT PN, in items too)
 * from the character set in effect for it into `to`, replaces the items'
 * own (0008,0005) with one at the top naming `to` (none for the default
 * repertoire). For a response to an SCU that cannot read the stored
 * character set. MWL_E_CHARSET (diag->tag names the element) when a
 * character cannot be represented in `to` -- nothing is dropped; the data
 * set may then be partly converted. Also MWL_E_UNSUPPORTED, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_ds_recode(mwl_ds *ds, const mwl_charset *to, mwl_diag *diag);
/* True when no text value affected by the character set (in items too)
 * has a byte >= 0x80 or an escape: the data set reads the same in any
 * character set. */
MWL_API bool mwl_ds_text_is_ascii(const mwl_ds *ds);

#endif
