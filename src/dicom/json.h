/* The DICOM JSON Model (PS3.18 Annex F.2): a data set as a JSON object
 * keyed by tag, for scripts (`mwl find --json`) and web services.
 *
 *     {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou",
 *                                          "Ideographic": "山田^太郎"}]},
 *      "00400100": {"vr": "SQ", "Value": [{ ...item... }]}}
 *
 * The encoder converts text to UTF-8 (RFC 8259) through the Specific
 * Character Set in effect for each item (dicom/charset.h), whose own
 * (0008,0005) value is kept as it was: PS3.18 F.2.2 note 3 says it
 * describes the source encoding, not the JSON's. The decoder
 * (json_decode.c, on jansson) is its inverse: outside JSON -- a REST body,
 * a file dropped in a folder -- becomes a data set. */
#ifndef MWL_DICOM_JSON_H
#define MWL_DICOM_JSON_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/status.h"
#include "dicom/dataset.h"

typedef struct mwl_json_options {
    /* Spaces per nesting level, one attribute per line; 0 (the default)
     * writes the whole object on one line. At most 8. */
    unsigned indent;
} mwl_json_options;

/* Fills the defaults above. Never fails. */
MWL_API void mwl_json_options_init(mwl_json_options *opt);

/* Values the encoder had to adapt; the output is valid JSON regardless. */
typedef struct mwl_json_report {
    /* Text not valid in its character set (or in an unknown one): the
     * value is given from its raw bytes, every byte that is not ASCII
     * (or, for VRs the character set does not affect, not UTF-8) as
     * U+FFFD. */
    size_t charset_problems;
    /* IS or DS text that is not a number, and FL/FD values that are NaN or
     * infinite: given as JSON strings ("NaN", "Infinity", or the text),
     * since JSON numbers cannot hold them. */
    size_t number_problems;
    uint32_t first_tag; /* the first element with a problem, 0 when none */
    char msg[128];      /* what was wrong with it, "" when none */
} mwl_json_report;

/* Appends the DICOM JSON Model object of `ds` to `out` (PS3.18 F.2):
 *   - attributes in ascending tag order, named by 8 uppercase hex digits;
 *     group length elements (gggg,0000) are left out (F.2.2);
 *   - each has "vr" and, unless its value is empty, "Value" (an array) or
 *     "InlineBinary" (F.2.5: an empty attribute has neither);
 *   - string VRs: one JSON string per value, split at '\' after conversion
 *     to UTF-8, padding removed per VR; an empty value among several is
 *     null (F.2.5); LT, ST, UT and UR are single-valued;
 *   - PN: one object per value with its non-empty component groups as
 *     "Alphabetic", "Ideographic" and "Phonetic" (F.2.2);
 *   - IS, DS and the binary numbers (US SS UL SL FL FD SV UV): JSON
 *     numbers; SV/UV beyond +-2^53 (which a double cannot hold exactly)
 *     and IS/DS text that is not a number are JSON strings, which F.2.3
 *     allows for IS, DS, SV and UV;
 *   - AT: "GGGGEEEE" strings (F.2.3);
 *   - OB OD OF OL OV OW UN: "InlineBinary", base64 of the little-endian
 *     value bytes (F.2.7);
 *   - SQ: "Value" holds one object per item, {} for an empty item.
 * `opt` NULL = defaults; `report` may be NULL. Returns MWL_OK;
 * MWL_E_INVALID (NULL ds or out); MWL_E_NOMEM or MWL_E_LIMIT (out's
 * sticky status; out then holds a partial object). */
MWL_API MWL_MUST_CHECK int mwl_ds_encode_json(const mwl_ds *ds, const mwl_json_options *opt, mwl_wbuf *out,
                                              mwl_json_report *report /* out */);

/* Appends `len` bytes of UTF-8 as a JSON string literal with its quotes:
 * '"', '\' and control characters escaped (\n, \t, ... or \u00XX), bytes
 * that are not well-formed UTF-8 as U+FFFD. Returns the number of bytes
 * replaced. */
MWL_API size_t mwl_json_put_string(mwl_wbuf *out, const char *utf8, size_t len);

/* ---- decoding ------------------------------------------------------------ */

typedef struct mwl_json_decode_options {
    /* Input size in bytes; default 16 MiB. The parsed JSON tree (jansson's,
     * from malloc) takes a few times this while a call runs. */
    size_t max_bytes;
    /* Sequence nesting (a top-level sequence's items are at depth 1);
     * default 16. */
    size_t max_depth;
    /* Elements and items in total, per data set; default 100000. */
    size_t max_elements;
    /* false (the default): text is stored in UTF-8, and a data set with any
     * text that is not ASCII gets (0008,0005) ISO_IR 192 (its items' own
     * (0008,0005) are removed), whatever the JSON said: PS3.18 F.2.2 note 3
     * says that value describes the source the JSON was made from. true:
     * the text is re-encoded into the top level's (0008,0005) as given in
     * the JSON (to rebuild the source's bytes); MWL_E_CHARSET when a
     * character cannot be written in it, MWL_E_UNSUPPORTED when it names a
     * character set we do not know. Items' own (0008,0005) values are
     * replaced by the top level's in both modes. All-ASCII data sets keep
     * every (0008,0005) as given. In both modes a (0008,0005) that is not
     * CS or names a character set we do not know (dicom/charset.h) is an
     * error (MWL_E_UNSUPPORTED): text in it could not be read later. */
    bool keep_charset;
} mwl_json_decode_options;

/* Fills the defaults above. Never fails. */
MWL_API void mwl_json_decode_options_init(mwl_json_decode_options *opt);

/* Decodes one DICOM JSON Model object (PS3.18 F.2) of `len` bytes of
 * UTF-8 into a new data set in `arena` (the input may be freed afterwards):
 *   - property names are 8 hex digits (either case) GGGGEEEE; group
 *     lengths (gggg,0000) and file meta elements (group 0002) are dropped
 *     (F.2.2 leaves them out of the model; group 0002 describes a file, not
 *     the data set); command elements (group 0000), item tags (FFFE,xxxx),
 *     the groups PS3.5 §7.1 forbids (0001 0003 0005 0007 FFFF) and a tag
 *     given twice (keys that differ in case) are errors;
 *   - "vr" is required and must be a VR of PS3.5 Table 6.2-1; it is taken
 *     as given, as in Explicit VR, except that SQ against a non-SQ
 *     dictionary VR (or the reverse) is an error (UN is always accepted);
 *   - each attribute has at most one of "Value" and "InlineBinary"; an
 *     attribute with neither is zero-length; "BulkDataURI" gives
 *     MWL_E_UNSUPPORTED (we do not fetch URIs); other members are errors;
 *   - string VRs: "Value" is an array of strings, null for an empty value
 *     (["A", null] -> "A\"); a value holding the separator '\' (F.2.4)
 *     or control characters (other than TAB CR LF FF in LT ST UT) is an
 *     error, and so is text that is not ASCII in a VR the character set
 *     does not cover (AE AS CS DA DT TM UI UR, IS DS); LT ST UT UR take
 *     one value;
 *   - PN: objects with "Alphabetic", "Ideographic", "Phonetic" strings,
 *     joined with '=' with trailing empty groups dropped; a plain string
 *     is taken as the whole value (a common writer's mistake);
 *   - IS and DS: numbers, or strings in DICOM's own syntax (F.2.3). IS must
 *     be an integer in [-2^31, 2^31-1]; DS numbers are written in the
 *     shortest form that reads back as the same double, rounded to fit 16
 *     characters when that is longer; DS strings longer than 16 characters
 *     are errors;
 *   - US SS UL SL: integers in range (a real with an integral value is
 *     accepted); SV UV: integers, or decimal strings for values a double
 *     cannot hold; FL FD: numbers, or "NaN", "Infinity", "-Infinity" (as
 *     the encoder writes them); FL out of range is an error; AT: "GGGGEEEE";
 *   - OB OD OF OL OV OW UN: "InlineBinary", strict base64 (base/base64.h;
 *     a one-element array of it is accepted too), a whole number of words;
 *   - SQ: "Value" is an array of objects, one per item.
 * Text and the character set: see keep_charset. Parsing rejects duplicate
 * keys and "\u0000". `opt` NULL = defaults. Returns MWL_OK; MWL_E_MALFORMED
 * (not JSON, or not the model: diag->offset is the byte offset for JSON
 * syntax errors; diag->tag names the element, and diag->msg its path and
 * the reason, for the others); MWL_E_UNSUPPORTED; MWL_E_CHARSET; MWL_E_LIMIT
 * (size, depth or element count); MWL_E_NOMEM; MWL_E_INVALID (NULL
 * arguments). On error *out is untouched (the arena may hold partial
 * allocations). */
MWL_API MWL_MUST_CHECK int mwl_ds_decode_json(const char *json, size_t len, mwl_arena *arena,
                                              const mwl_json_decode_options *opt, mwl_ds **out,
                                              mwl_diag *diag);

/* As mwl_ds_decode_json for a JSON array of such objects (the form of a
 * search response, F.2): *out gets `*count` data sets (an array in
 * `arena`; NULL when the array is empty). The limits apply to each object;
 * max_bytes to the whole input. An error names the object ("object 3:
 * ..."). */
MWL_API MWL_MUST_CHECK int mwl_ds_decode_json_array(const char *json, size_t len, mwl_arena *arena,
                                                    const mwl_json_decode_options *opt, mwl_ds ***out,
                                                    size_t *count, mwl_diag *diag);

#endif
