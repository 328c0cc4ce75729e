/* Key paths: elements named in text, as people, DCMTK's findscu (-k), QIDO
 * query parameters (PS3.18 8.3.4.1) and intake mappings (HL7, REST) name
 * them, and values set from text.
 *
 *     PatientName                        a keyword (PS3.6, case-sensitive)
 *     (0010,0010)  0010,0010  00100010   a tag, hex digits in either case
 *     ScheduledProcedureStepSequence.Modality      into the first item
 *     ScheduledProcedureStepSequence[1].Modality   into item 1 (from 0)
 *     00400100.00080060                  QIDO style
 *
 * Tags must be in the data dictionary (their VR comes from it): private
 * and unknown tags cannot be named. */
#ifndef MWL_DICOM_KEYPATH_H
#define MWL_DICOM_KEYPATH_H

#include "base/api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"
#include "dicom/charset.h"
#include "dicom/dataset.h"

/* Deepest path accepted (PS3.4 Table K.6-1 nests three levels). */
#define MWL_KEYPATH_MAX_STEPS 8

typedef struct mwl_keypath_step {
    uint32_t tag;
    mwl_vr vr;  /* the dictionary's */
    long index; /* the item given as [N], 0..10000; -1 when none */
} mwl_keypath_step;

typedef struct mwl_keypath {
    mwl_keypath_step steps[MWL_KEYPATH_MAX_STEPS];
    size_t count; /* >= 1 after a successful parse */
} mwl_keypath;

/* "(gggg,eeee)", "gggg,eeee" or "ggggeeee" (hex, either case) -> *tag.
 * False for anything else, *tag untouched. */
MWL_API bool mwl_tag_parse(const char *s, size_t len, uint32_t *tag);

/* Parses `len` bytes of a path (steps separated by '.'; each a keyword or
 * a tag, with an optional [N]). Returns MWL_OK, or MWL_E_INVALID with the
 * reason in diag->msg ("unknown keyword 'X' ...", "bad item index in ...",
 * "(gggg,eeee) is not in the data dictionary ...", "key path nested deeper
 * than 8 levels") and the tag, when known, in diag->tag. */
MWL_API MWL_MUST_CHECK int mwl_keypath_parse(const char *text, size_t len, mwl_keypath *out, mwl_diag *diag);

/* Sets the element `path` names in `root` to `value` (UTF-8 text, NULL =
 * empty), creating the sequences and items on the way: a step's [N] (none
 * = 0) picks an existing item or appends the next one; a gap is an error.
 *   - string VRs take the text as it is ('\' separates values); for those
 *     the character set affects (SH LO UC ST LT UT PN) it is encoded into
 *     `cs` (NULL: the character set in effect where the element goes);
 *   - US SS UL SL SV UV FL FD AT are converted (mwl_value_from_text);
 *   - a path ending at a sequence makes it an empty sequence (keeping one
 *     already there, which a query may have filled), or with [N] makes
 *     sure item N exists; it takes no value.
 * Returns MWL_OK; MWL_E_INVALID (what is wrong in diag->msg: "X is not a
 * sequence", "X has 1 item(s): item [3] would leave a gap", "X is a
 * sequence: it takes no value", "X is not a sequence: no [N]", "bad value
 * 'v' for VR US", ...); MWL_E_CHARSET (a character `cs` cannot hold;
 * diag->msg is the character set's reason); MWL_E_UNSUPPORTED (cs NULL and
 * an unknown character set in effect); MWL_E_NOMEM. diag->tag names the
 * element concerned. */
MWL_API MWL_MUST_CHECK int mwl_keypath_set(mwl_ds *root, const mwl_keypath *path, const char *value,
                                           const mwl_charset *cs, mwl_diag *diag);

/* mwl_keypath_parse then mwl_keypath_set. */
MWL_API MWL_MUST_CHECK int mwl_ds_set_path(mwl_ds *root, const char *path, size_t path_len, const char *value,
                                           const mwl_charset *cs, mwl_diag *diag);

/* The element `path` names in `ds` (a missing [N] means item 0), or NULL
 * when it or a sequence or item on the way is absent. */
MWL_API const mwl_elem *mwl_keypath_find(const mwl_ds *ds, const mwl_keypath *path,
                                         const mwl_ds **holder /* out */);

/* Converts text to the stored (little-endian) value of a binary VR,
 * appended to `out`: '\'-separated values; US SS UL SL SV UV as decimal
 * integers in the VR's range, FL FD as C floating point numbers (strtod: a
 * float out of FL's range is an error), AT as a keyword or tag
 * (mwl_tag_parse). "" gives no bytes. Returns MWL_OK, MWL_E_INVALID ("bad
 * value 'x' for VR US"; "values of VR OB cannot be given as text" for
 * other VRs), MWL_E_NOMEM. */
MWL_API MWL_MUST_CHECK int mwl_value_from_text(mwl_vr vr, const char *text, mwl_wbuf *out, mwl_diag *diag);

#endif
