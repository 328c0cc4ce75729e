#include "base/utf8.h"

#include <stdbool.h>

#include "base/utf8_int.h"

size_t mwl_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        if (cp)
            *cp = b0;
        return 1;
    }
    size_t n;
    uint32_t c, min;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2;
        c = b0 & 0x1Fu;
        min = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        c = b0 & 0x0Fu;
        min = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        c = b0 & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[k] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    if (cp)
        *cp = c;
    return n;
}

static bool in_ranges(const mwl_utf8_range *r, size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cp > r[mid].hi)
            lo = mid + 1;
        else if (cp < r[mid].lo)
            hi = mid;
        else
            return true;
    }
    return false;
}

int mwl_utf8_char_width(uint32_t cp)
{
    if (cp < 0x300)
        return 1; /* ASCII and Latin-1: the common case, no search */
    if (in_ranges(mwl_utf8_zero_width, mwl_utf8_zero_width_count, cp))
        return 0;
    if (cp >= 0x1100 && in_ranges(mwl_utf8_wide, mwl_utf8_wide_count, cp))
        return 2;
    return 1;
}

/* The character at s[0]: its byte length (1 for a byte that is not
 * well-formed UTF-8) and columns. */
static size_t next(const char *s, size_t len, size_t *cols)
{
    uint32_t cp;
    size_t n = mwl_utf8_decode((const uint8_t *)s, len, &cp);
    if (n == 0) {
        *cols = 1;
        return 1;
    }
    *cols = (size_t)mwl_utf8_char_width(cp);
    return n;
}

size_t mwl_utf8_width(const char *s, size_t len)
{
    size_t w = 0, i = 0;
    while (i < len) {
        size_t cols;
        i += next(s + i, len - i, &cols);
        w += cols;
    }
    return w;
}

size_t mwl_utf8_fit(const char *s, size_t len, size_t columns, size_t *width)
{
    size_t w = 0, i = 0;
    while (i < len) {
        size_t cols;
        size_t n = next(s + i, len - i, &cols);
        if (w + cols > columns)
            break;
        w += cols;
        i += n;
    }
    if (width)
        *width = w;
    return i;
}
