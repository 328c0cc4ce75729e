/* Declarations private to src/dimse (not part of the dimse.h API). */
#ifndef MWL_DIMSE_DIMSE_INT_H
#define MWL_DIMSE_DIMSE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of one Implicit VR LE element header: tag (4) + length (4). */
#define MWL_DIMSE_ELEM_HEADER 8u
/* Size of a PDV item header inside a P-DATA-TF: item length (4), presentation
 * context ID (1), message control header (1) (PS3.8 Table 9-23). */
#define MWL_DIMSE_PDV_HEADER 6u

/* Looks for a US element `tag` in Implicit VR LE command set bytes without
 * decoding the rest: walks element headers, stops at the first malformed
 * one. True with *value set when found with a 2-byte value. */
bool mwl_dimse_scan_u16(const uint8_t *data, size_t len, uint32_t tag, uint16_t *value);

#endif
