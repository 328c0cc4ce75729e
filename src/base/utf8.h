/* Strict UTF-8 decoding (RFC 3629), shared by the character set code and
 * the printers that must never emit invalid text. */
#ifndef MWL_BASE_UTF8_H
#define MWL_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 character at s[0] (len >= 1 bytes
 * available), storing its code point in *cp when cp is not NULL; 0 when it
 * is invalid or truncated: overlong forms, surrogates and code points past
 * U+10FFFF are not well formed. */
size_t mwl_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);

#endif
