/* The Native DICOM Model (PS3.19 Annex A.1): a data set as XML, for the
 * application/dicom+xml results of the standard search (PS3.18 ch. 14).
 *
 *     <NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">
 *       <DicomAttribute tag="00100010" vr="PN" keyword="PatientName">
 *         <PersonName number="1"><Alphabetic><FamilyName>Yamada</FamilyName>
 *           <GivenName>Tarou</GivenName></Alphabetic></PersonName></DicomAttribute>
 *       <DicomAttribute tag="00400100" vr="SQ" keyword="ScheduledProcedureStepSequence">
 *         <Item number="1">...</Item></DicomAttribute>
 *     </NativeDicomModel>
 *
 * The sibling of json.h: the same walk (tag order, no group lengths, text
 * converted to UTF-8 through the character set in effect, padding trimmed
 * per VR), so an XML result and a JSON result of one data set carry the
 * same values. Written on one line (no whitespace between elements):
 * whitespace in XML content is data. */
#ifndef MWL_DICOM_XML_H
#define MWL_DICOM_XML_H

#include "base/api.h"

#include <stddef.h>

#include "base/buf.h"
#include "base/status.h"
#include "dicom/dataset.h"

/* Appends `<?xml ...?>` and one NativeDicomModel element for `ds` to
 * `out`:
 *   - one DicomAttribute per element in ascending tag order (group lengths
 *     left out), with tag (8 uppercase hex digits), vr and, when the
 *     dictionary knows it, keyword;
 *   - string and number VRs: one <Value number="N"> per value (N from 1),
 *     empty values as an empty Value element; a zero-length attribute has
 *     no child;
 *   - PN: <PersonName number="N"> with <Alphabetic>, <Ideographic>,
 *     <Phonetic> (the non-empty groups), each holding its non-empty
 *     components as FamilyName, GivenName, MiddleName, NamePrefix,
 *     NameSuffix;
 *   - AT: "GGGGEEEE" values; OB OD OF OL OV OW UN: <InlineBinary>, base64;
 *   - SQ: one <Item number="N"> per item;
 *   - text: & < > " ' escaped, CR as &#13; (parsers would turn it into LF),
 *     other control characters XML 1.0 cannot hold and bytes that are not
 *     UTF-8 as U+FFFD; text whose character set cannot be applied is
 *     given as its ASCII, other bytes as U+FFFD.
 * Returns MWL_OK; MWL_E_INVALID (NULL ds or out); MWL_E_NOMEM or
 * MWL_E_LIMIT (out's sticky status; out then holds a partial document). */
MWL_API MWL_MUST_CHECK int mwl_ds_encode_xml(const mwl_ds *ds, mwl_wbuf *out);

/* Appends `len` bytes of UTF-8 as XML character data, escaped as above.
 * Returns the number of bytes or characters replaced by U+FFFD. */
MWL_API size_t mwl_xml_put_text(mwl_wbuf *out, const char *utf8, size_t len);

#endif
