/* Base64 (RFC 4648 §4: the standard alphabet, '=' padding, no line breaks)
 * for binary values carried in text: DICOM JSON InlineBinary (PS3.18
 * F.2.7), HL7 ED data. */
#ifndef MWL_BASE_BASE64_H
#define MWL_BASE_BASE64_H

#include "base/api.h"

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/status.h"

/* Appends the base64 text of `len` bytes to `out` (no quotes, no NUL). */
MWL_API void mwl_base64_encode(mwl_wbuf *out, const uint8_t *data, size_t len);

/* The most bytes `len` characters of base64 can decode to. */
static inline size_t mwl_base64_decoded_max(size_t len)
{
    return len / 4 * 3;
}

/* Decodes `len` characters of base64 into `out` (room for
 * mwl_base64_decoded_max(len) bytes), setting *out_len. Strict: the length
 * is a multiple of 4, every character is in the alphabet, '=' appears only
 * as the last one or two characters, and the bits padding leaves unused are
 * zero (so every byte string has exactly one encoding). No white space.
 * Returns MWL_OK, or MWL_E_MALFORMED with the offset of the first bad
 * character in *bad_at (may be NULL; `len` when the length is wrong). */
MWL_API MWL_MUST_CHECK int mwl_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len,
                                             size_t *bad_at /* out */);

#endif
