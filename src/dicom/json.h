/* The DICOM JSON Model (PS3.18 Annex F.2): a data set as a JSON object
 * keyed by tag, for scripts (`mwl find --json`) and web services.
 *
 *     {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou",
 *                                          "Ideographic": "山田^太郎"}]},
 *      "00400100": {"vr": "SQ", "Value": [{ ...item... }]}}
 *
 * Encoding only. Text is converted to UTF-8 (RFC 8259) through the
 * Specific Character Set in effect for each item (dicom/charset.h), whose
 * own (0008,0005) value is kept as it was: PS3.18 F.2.2 note 3 says it
 * describes the source encoding, not the JSON's. */
#ifndef MWL_DICOM_JSON_H
#define MWL_DICOM_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"
#include "dicom/dataset.h"

typedef struct mwl_json_options {
    /* Spaces per nesting level, one attribute per line; 0 (the default)
     * writes the whole object on one line. At most 8. */
    unsigned indent;
} mwl_json_options;

/* Fills the defaults above. Never fails. */
void mwl_json_options_init(mwl_json_options *opt);

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
MWL_MUST_CHECK int mwl_ds_encode_json(const mwl_ds *ds, const mwl_json_options *opt, mwl_wbuf *out,
                                      mwl_json_report *report /* out */);

/* Appends `len` bytes of UTF-8 as a JSON string literal with its quotes:
 * '"', '\' and control characters escaped (\n, \t, ... or \u00XX), bytes
 * that are not well-formed UTF-8 as U+FFFD. Returns the number of bytes
 * replaced. */
size_t mwl_json_put_string(mwl_wbuf *out, const char *utf8, size_t len);

#endif
