/* Data set encoding and decoding (PS3.5 §7, §10, Annex A) and Part 10 files
 * (PS3.10 §7.1). Decoding is bounded: every length and count read from the
 * input is checked against what remains before use, nesting depth and
 * element count are limited, and a malformed input yields MWL_E_MALFORMED
 * (or MWL_E_LIMIT) with the byte offset and tag in the mwl_diag. */
#ifndef MWL_DICOM_CODEC_H
#define MWL_DICOM_CODEC_H

#include "base/api.h"

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/status.h"
#include "dicom/dataset.h"

typedef enum mwl_ts {
    MWL_TS_IMPLICIT_LE = 0, /* 1.2.840.10008.1.2 */
    MWL_TS_EXPLICIT_LE,     /* 1.2.840.10008.1.2.1 */
    MWL_TS_EXPLICIT_BE,     /* 1.2.840.10008.1.2.2 (retired) */
    MWL_TS_DEFLATED_LE,     /* 1.2.840.10008.1.2.1.99 */
    MWL_TS_COUNT
} mwl_ts;

/* The UID of a transfer syntax, e.g. "1.2.840.10008.1.2.1"; NULL when out of range. */
MWL_API const char *mwl_ts_uid(mwl_ts ts);
/* UID (trailing NUL/space ignored) -> mwl_ts; MWL_E_UNSUPPORTED otherwise. */
MWL_API MWL_MUST_CHECK int mwl_ts_from_uid(const char *uid, size_t len, mwl_ts *out);

typedef struct mwl_decode_limits {
    size_t max_depth;    /* sequence nesting; default 16 */
    size_t max_elements; /* elements + items in total; default 100000 */
    size_t max_inflated; /* Deflated TS: max bytes after inflating; default 64 MiB */
} mwl_decode_limits;

/* Fills the defaults above. */
MWL_API void mwl_decode_limits_init(mwl_decode_limits *lim);

/* Decodes a whole data set (no preamble, no meta header) of `len` bytes in
 * `ts`. All memory (data set, copies of values) comes from `arena`; the
 * input buffer may be freed afterwards. Big-endian values are swapped to the
 * little-endian storage form. Sequences and items of defined or undefined
 * length are accepted; odd value lengths are tolerated; group length
 * elements other than groups 0000/0002 are dropped. `lim` NULL = defaults.
 * For the Deflated syntax, error offsets refer to the inflated bytes and
 * bytes after the end of the deflate stream are ignored. On error *out is
 * untouched (the arena may hold partial allocations).
 * Returns MWL_OK, MWL_E_MALFORMED, MWL_E_LIMIT, MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_ds_decode(const uint8_t *data, size_t len, mwl_ts ts, mwl_arena *arena,
                                         const mwl_decode_limits *lim, mwl_ds **out, mwl_diag *diag);

/* Appends the encoding of `ds` in `ts` to `out`: every element present,
 * explicit lengths for every sequence and item (except that in Implicit VR a
 * sequence the dictionary does not list as SQ -- a private one -- gets an
 * undefined length and a delimiter, or a reader would take it for UN bytes),
 * odd values padded to even with the VR's padding byte, and a deflated
 * stream of odd length followed by one 00H (PS3.5 A.5): the result always
 * has even length, as PDV fragments must (PS3.8 E.1). (The decoder drops group length elements
 * (gggg,0000) of groups other than 0000 and 0002: they are retired and would
 * go stale when a data set is edited.) Returns MWL_OK, MWL_E_NOMEM,
 * MWL_E_LIMIT, MWL_E_INVALID (a value too long for a short-form length, an
 * (FFFE,xxxx) tag or VR NONE); on error out->len is restored. */
MWL_API MWL_MUST_CHECK int mwl_ds_encode(const mwl_ds *ds, mwl_ts ts, mwl_wbuf *out);

/* ---- Part 10 files ----------------------------------------------------- */

typedef struct mwl_part10 {
    mwl_ds *meta;    /* group 0002 (NULL for a raw data set) */
    mwl_ds *dataset; /* the data set proper */
    mwl_ts ts;       /* its transfer syntax */
} mwl_part10;

/* Reads a Part 10 file image (128-byte preamble + "DICM" + meta header +
 * data set). Also accepts a raw data set without preamble or meta header
 * (as DCMTK's .wl files may be), guessing Implicit or Explicit VR LE from
 * its first element. Returns the mwl_ds_decode statuses and
 * MWL_E_UNSUPPORTED for a transfer syntax we do not decode. */
MWL_API MWL_MUST_CHECK int mwl_part10_decode(const uint8_t *data, size_t len, mwl_arena *arena,
                                             const mwl_decode_limits *lim, mwl_part10 *out, mwl_diag *diag);

/* Appends a Part 10 image of `ds` in `ts` to `out`: zero preamble, "DICM",
 * a meta header with group length, version 00 01, Media Storage SOP Class
 * and Instance UIDs taken from `ds`'s (0008,0016)/(0008,0018) (empty when
 * absent), the transfer syntax and our implementation class UID/version. */
MWL_API MWL_MUST_CHECK int mwl_part10_encode(const mwl_ds *ds, mwl_ts ts, mwl_wbuf *out);
/* As mwl_part10_encode, with the Media Storage SOP Class and Instance UIDs
 * given (NULL: taken from `ds` as above) -- for data sets that are no
 * composite instance, such as a worklist item or a C-FIND response. */
MWL_API MWL_MUST_CHECK int mwl_part10_encode_as(const mwl_ds *ds, mwl_ts ts, const char *sop_class_uid,
                                                const char *sop_instance_uid, mwl_wbuf *out);

/* Our implementation identity, sent in associations and file meta headers. */
/* A UUID-derived UID (PS3.5 Annex B.2): needs no registered root. */
#define MWL_IMPLEMENTATION_CLASS_UID "2.25.215763971923820676394163837824302003638"
#define MWL_IMPLEMENTATION_VERSION_NAME "MWL_" MWL_VERSION_STRING
#ifndef MWL_VERSION
#define MWL_VERSION "0.0.0"
#endif
#define MWL_VERSION_STRING MWL_VERSION

#endif
