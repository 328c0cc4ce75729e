/* Strict UTF-8 decoding (RFC 3629), shared by the character set code and
 * the printers that must never emit invalid text. */
#ifndef MWL_BASE_UTF8_H
#define MWL_BASE_UTF8_H

#include "base/api.h"

#include <stddef.h>
#include <stdint.h>

/* Length of the well-formed UTF-8 character at s[0] (len >= 1 bytes
 * available), storing its code point in *cp when cp is not NULL; 0 when it
 * is invalid or truncated: overlong forms, surrogates and code points past
 * U+10FFFF are not well formed. */
MWL_API size_t mwl_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp);

/* ---- display width (text tables at a terminal) --------------------------- */

/* Columns a terminal gives code point `cp`: 0 for combining marks and
 * other zero-width characters (U+0300.., U+200B.., Hangul Jamo vowels and
 * finals), 2 for East Asian wide and full-width ones (CJK, kana, Hangul
 * syllables, full-width forms, most emoji: UAX #11 W and F), else 1 --
 * control characters too, which a printer should replace. The tables come
 * from scripts/gen_width.py (the Unicode version is in utf8_width_gen.c). */
MWL_API int mwl_utf8_char_width(uint32_t cp);

/* Columns of `len` bytes of UTF-8: the sum of mwl_utf8_char_width, each
 * byte that is not well-formed UTF-8 taking 1 (a printer shows it as one
 * replacement character). */
MWL_API size_t mwl_utf8_width(const char *s, size_t len);

/* The longest prefix of `len` bytes of UTF-8 that takes at most `columns`
 * columns, ending at a character boundary and keeping the zero-width
 * characters that follow the last one that fits (its combining marks).
 * Returns its length in bytes; *width (may be NULL) gets its columns. */
MWL_API size_t mwl_utf8_fit(const char *s, size_t len, size_t columns, size_t *width);

#endif
